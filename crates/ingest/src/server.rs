//! The HTTP server: binding, the route table of every API, the middleware
//! every request passes (authentication, answer counting, keep-alive
//! draining), the health check and `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::util::Timeout;
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, oneshot};

use crate::errors::{CONTENT_TYPE_V2, ProxyError};
use crate::state::{AppState, IngestConfig};
use crate::v2::v2_json;
use crate::{auth, consumers, keep_alive, kinesis, negotiation, v2, v3};
use pipeline_kafka as kafka;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create the Kafka producer: {0}")]
    Producer(KafkaError),
    #[error("cannot listen on {addr}: {source} (is another server, e.g. a REST proxy, using the port? pick another with --listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A running ingest server.
pub struct RunningIngest {
    pub local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// For tests that reach the producer (to fabricate a fatal error).
    #[cfg(test)]
    state: Arc<AppState>,
}

/// How often the server asks its producer whether it has had a fatal error.
const FATAL_ERROR_CHECK: Duration = Duration::from_millis(200);

impl RunningIngest {
    /// Stop accepting requests, finish the ones in flight, flush the producer.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Serve until `signal` resolves, then stop as [`Self::stop`] does; or
    /// until the server stops on its own, after a fatal producer error,
    /// with that error (so the process exits non-zero and its supervisor
    /// restarts it).
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let ended = tokio::select! {
            _ = signal => None,
            ended = &mut self.task => Some(ended),
        };
        match ended {
            None => self.stop().await,
            Some(ended) => ended.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        }
    }
}

/// Create the producer, bind the listener and start serving.
pub async fn start(config: IngestConfig) -> Result<RunningIngest, IngestError> {
    let producer: FutureProducer<kafka::AuthContext> =
        kafka::reliable_producer_config(&config.bootstrap, &config.kafka_auth, &config.kafka_overrides, config.delivery_timeout)
            .create_with_context(config.kafka_auth.context())
            .map_err(IngestError::Producer)?;
    config.kafka_auth.prime(producer.client());
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|source| IngestError::Bind { addr: config.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| IngestError::Bind { addr: config.listen, source })?;
    let budget = config.max_inflight_body_bytes.max(config.max_body_bytes);
    let state = Arc::new(AppState {
        body_budget: Arc::new(Semaphore::new(budget)),
        kinesis: Default::default(),
        producer,
        admin: Default::default(),
        config,
        topics: Mutex::new(HashMap::new()),
        round_robin: Default::default(),
        metrics: Default::default(),
        cluster_id: Default::default(),
        consumers: Default::default(),
    });
    // Idle consumer instances are closed, so forgotten clients hold nothing.
    let expiry_state = Arc::downgrade(&state);
    let idle = state.config.consumer_idle;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(10)));
        loop {
            tick.tick().await;
            let Some(state) = expiry_state.upgrade() else { break };
            state.consumers.expire(idle);
        }
    });
    // Outside the router, so that the trimmed path is the one routed:
    // clients send `POST /consumers/g/` and `GET /topics/`.
    let app = tower_http::normalize_path::NormalizePath::trim_trailing_slash(router(state.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    #[cfg(test)]
    let test_state = state.clone();
    let task = tokio::spawn(async move {
        // A producer after a fatal error stores nothing again: stop serving
        // rather than answer every request with an error.
        let fatal_state = state.clone();
        let fatal = async move {
            loop {
                tokio::time::sleep(FATAL_ERROR_CHECK).await;
                if let Some(error) = fatal_state.fatal_producer_error() {
                    return error;
                }
            }
        };
        let served = axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(app))
            .with_graceful_shutdown(async {
                tokio::select! {
                    _ = rx => {}
                    error = fatal => tracing::error!("{error}; stopping"),
                }
            })
            .await;
        let flush_state = state.clone();
        tokio::task::spawn_blocking(move || flush_state.producer.flush(Timeout::After(Duration::from_secs(10)))).await.ok();
        served?;
        match state.fatal_producer_error() {
            Some(error) => Err(std::io::Error::other(error)),
            None => Ok(()),
        }
    });
    tracing::info!(%local_addr, "ingest server listening (REST Proxy v2 API)");
    Ok(RunningIngest {
        local_addr,
        shutdown: Some(tx),
        task,
        #[cfg(test)]
        state: test_state,
    })
}

fn router(state: Arc<AppState>) -> Router {
    // Every v2 route answers in the type the client accepts.
    let v2 = v2::routes().merge(consumers::routes()).route_layer(axum::middleware::from_fn(negotiate_answer_type));
    Router::new()
        .merge(v2)
        .merge(v3::routes())
        .route("/healthz", get(health))
        .route("/metrics", get(metrics_text))
        .merge(kinesis::routes())
        .fallback(|uri: Uri| async move { ProxyError::not_found(uri.path()) })
        // A known path with another method: the REST Proxy's error body, not
        // axum's empty 405.
        .method_not_allowed_fallback(|method: axum::http::Method, uri: Uri| async move {
            ProxyError::method_not_allowed(method.as_str(), uri.path())
        })
        .layer(axum::middleware::from_fn_with_state(state.config.required_header.clone().map(Arc::new), auth::require_header))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_responses))
        // Outermost, so that every answer, the fallback's too, leaves its
        // connection fit for the next request.
        .layer(axum::middleware::from_fn_with_state(state.config.drain_limits(), keep_alive::drain_unread_body))
        .with_state(state)
}

/// Answer 406 when the client accepts none of the types the v2 routes
/// write, and label the answer with the type it prefers.
async fn negotiate_answer_type(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let accept = req.headers().get(header::ACCEPT).map(|v| v.to_str().unwrap_or("(not text)").to_string());
    let answer_type = match negotiation::answer_type(accept.as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut resp = next.run(req).await;
    if answer_type != CONTENT_TYPE_V2 {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(answer_type));
    }
    resp
}

async fn count_responses(State(state): State<Arc<AppState>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    state.metrics.response(resp.status().as_u16());
    resp
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if let Some(error) = state.fatal_producer_error() {
        return ProxyError::kafka(error).into_response();
    }
    match state.all_metadata().await {
        Ok(md) if !md.brokers().is_empty() => v2_json(StatusCode::OK, json!({ "status": "ok", "brokers": md.brokers().len() })),
        Ok(_) => ProxyError::broker_not_available("metadata lists no brokers").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, pipeline_runtime::metrics::CONTENT_TYPE)], state.metrics.render()).into_response()
}

/// Routing and the answers given before Kafka is asked: no broker is needed
/// (the bootstrap address has nothing behind it), so these run anywhere.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_MAX_RECORD_BYTES, RequiredHeader};
    use serde_json::Value;

    const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

    async fn server(required: Option<RequiredHeader>) -> (RunningIngest, String) {
        let config = IngestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            bootstrap: "127.0.0.1:1".into(),
            required_header: required,
            ..Default::default()
        };
        let server = start(config).await.unwrap();
        let base = format!("http://{}", server.local_addr);
        (server, base)
    }

    async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn routes_methods_and_media_types_are_answered_like_the_rest_proxy() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        // No broker behind the bootstrap address: the health check says so.
        assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 503);
        let (s, body) = answer(http.get(format!("{base}/no/such/endpoint"))).await;
        assert_eq!((s, body["error_code"].as_i64()), (404, Some(404)), "{body}");
        let (s, body) = answer(http.put(format!("{base}/topics/t")).body("{}")).await;
        assert_eq!((s, body["error_code"].as_i64()), (405, Some(405)), "{body}");
        let (s, body) =
            answer(http.post(format!("{base}/topics/t")).header("Content-Type", "application/vnd.kafka.avro.v2+json").body("{}")).await;
        assert_eq!((s, body["error_code"].as_i64()), (415, Some(415)), "{body}");
        let (s, _) =
            answer(http.post(format!("{base}/topics/t")).header("Content-Type", JSON_V2).header("Accept", "text/html").body("{}")).await;
        assert_eq!(s, 406);
        // A partition that is not a number names no endpoint.
        let (s, _) = answer(http.post(format!("{base}/topics/t/partitions/x")).header("Content-Type", JSON_V2).body("{}")).await;
        assert_eq!(s, 404);
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn bodies_are_refused_before_kafka_is_asked() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        let post = |body: Vec<u8>| http.post(format!("{base}/topics/t")).header("Content-Type", JSON_V2).body(body);
        let (s, body) = answer(post(b"{\"records\": [".to_vec())).await;
        assert_eq!((s, body["error_code"].as_i64().map(|c| c / 100)), (422, Some(422)), "malformed JSON: {body}");
        let (s, body) = answer(post(vec![0xff, 0xfe, 0x00])).await;
        assert_eq!((s, body["error_code"].as_i64()), (422, Some(42203)), "not UTF-8: {body}");
        let big = "x".repeat(DEFAULT_MAX_RECORD_BYTES + 1);
        let (s, body) = answer(post(json!({"records": [{"value": big}]}).to_string().into_bytes())).await;
        assert_eq!((s, body["error_code"].as_i64()), (422, Some(42206)), "too large: {}", body["message"]);
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_required_header_guards_every_route_but_the_health_check() {
        let (server, base) = server(Some(RequiredHeader::new("X-Check", "s3cret").unwrap())).await;
        let http = reqwest::Client::new();
        for path in ["/topics", "/topics/t", "/v3/clusters", "/metrics"] {
            let (s, body) = answer(http.get(format!("{base}{path}"))).await;
            assert_eq!((s, body["error_code"].as_i64()), (401, Some(40101)), "{path}: {body}");
        }
        // The health check answers without the header (503 here: no broker).
        assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 503);
        // With the header, the request gets past the check (here to a 415).
        let (s, _) =
            answer(http.post(format!("{base}/topics/t")).header("X-Check", "s3cret").header("Content-Type", "text/csv").body("a")).await;
        assert_eq!(s, 415);
        server.stop().await.unwrap();
    }

    /// API Gateway's Kinesis routes (the table provisioning creates) and
    /// ingest's are kept as two lists: every route of the gateway's must be
    /// one ingest serves, answered by its Kinesis handler (Kinesis's error
    /// shape, here "not configured") and not by the REST proxy's 404 or 405.
    #[tokio::test]
    async fn every_kinesis_route_of_the_gateway_is_served_by_ingest() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        for route in templates::apigateway::KINESIS_ROUTES {
            let path = route.path.replace("{stream-name}", "s");
            let method = reqwest::Method::from_bytes(route.http_method.as_bytes()).unwrap();
            let (s, body) =
                answer(http.request(method, format!("{base}{path}")).header("Content-Type", "application/json").body("{}")).await;
            assert!(body.get("__type").is_some(), "{} {path}: {s} {body}", route.http_method);
        }
        server.stop().await.unwrap();
    }

    /// A fatal producer error, fabricated with librdkafka's own test hook as
    /// MSK would raise one for an idempotent producer refused
    /// WriteDataIdempotently: the health check fails naming it, and the
    /// server stops on its own with that error.
    #[tokio::test]
    async fn a_fatal_producer_error_fails_the_health_check_and_stops_the_server() {
        use rdkafka::types::RDKafkaRespErr;
        let (server, _base) = server(None).await;
        // SAFETY: the producer's handle is live for the call, and the reason
        // is a NUL-terminated string librdkafka copies.
        let raised = unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                server.state.producer.client().native_ptr(),
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                c"fabricated by the test".as_ptr(),
            )
        };
        assert_eq!(raised, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
        let resp = health(State(server.state.clone())).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("stopped for good") && text.contains("fabricated by the test"), "{text}");
        let ended =
            tokio::time::timeout(Duration::from_secs(20), server.run_until(std::future::pending())).await.expect("stops on its own");
        let err = ended.expect_err("a fatal error ends the server with an error").to_string();
        assert!(err.contains("stopped for good"), "{err}");
    }

    /// Confluent's proxy and Karapace route `/topics/t/` as `/topics/t`, and
    /// client libraries send such paths.
    #[tokio::test]
    async fn a_trailing_slash_is_routed_as_without_it() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        for (method, path) in [("POST", "/topics/t"), ("PUT", "/topics/t"), ("POST", "/consumers/g"), ("GET", "/no/such/path")] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let send =
                |path: String| answer(http.request(method.clone(), format!("{base}{path}")).header("Content-Type", "text/csv").body("a"));
            let (without, body) = send(path.to_string()).await;
            let (with, slashed) = send(format!("{path}/")).await;
            assert_eq!((with, &slashed["error_code"]), (without, &body["error_code"]), "{method} {path}/: {slashed}");
            assert_eq!(without == 404, path == "/no/such/path", "{method} {path}: {body}");
        }
        server.stop().await.unwrap();
    }
}

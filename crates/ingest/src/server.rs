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
use crate::metrics::Refusal;
use crate::state::{AppState, IngestConfig};
use crate::v2::v2_json;
use crate::{auth, consumers, keep_alive, kinesis, negotiation, transport, v2, v3};
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
    let budget = config.body_budget_bytes();
    let mut kafka_settings: Vec<(String, String)> = producer_queue_limits(budget)
        .into_iter()
        .filter(|(key, _)| !config.kafka_overrides.iter().any(|(given, _)| given == key))
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    kafka_settings.extend(config.kafka_overrides.iter().cloned());
    let producer: FutureProducer<kafka::AuthContext> =
        kafka::reliable_producer_config(&config.bootstrap, &config.kafka_auth, &kafka_settings, config.delivery_timeout)
            .create_with_context(config.kafka_auth.context())
            .map_err(IngestError::Producer)?;
    config.kafka_auth.prime(producer.client());
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|source| IngestError::Bind { addr: config.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| IngestError::Bind { addr: config.listen, source })?;
    let limits = config.connection_limits();
    let state = Arc::new(AppState {
        request_slots: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
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
        let served = transport::serve(listener, app, limits, state.metrics.clone(), async {
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

/// librdkafka's queue limits, from the in-flight budget (1 GiB and 100,000
/// messages by default): the records of a client that hung up stay queued
/// until delivered or timed out, with no request holding budget for them,
/// so the queue may hold as much again as the budget. A -X setting wins.
fn producer_queue_limits(budget: usize) -> [(&'static str, String); 2] {
    [
        ("queue.buffering.max.kbytes", (budget / 1024).max(1).to_string()),
        ("queue.buffering.max.messages", (budget / crate::state::RECORD_OVERHEAD_BYTES).max(1).to_string()),
    ]
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_header))
        .layer(axum::middleware::from_fn_with_state(state.clone(), shed_load))
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

/// Beyond `max_concurrent_requests` a request is answered 503 at once:
/// queued, it would only wait out a timeout while holding its connection.
/// The health check and `/metrics` are never shed, so an overloaded server
/// still reports on itself.
async fn shed_load(State(state): State<Arc<AppState>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/metrics") {
        return next.run(req).await;
    }
    let Ok(_slot) = state.request_slots.clone().try_acquire_owned() else {
        let limit = state.config.max_concurrent_requests;
        state.metrics.refused(Refusal::Overloaded, &format_args!("{} {}: {limit} requests in flight", req.method(), req.uri().path()));
        return ProxyError::overloaded("requests in flight").into_response();
    };
    next.run(req).await
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

    /// A server on a free port with no broker behind its bootstrap address.
    fn offline() -> IngestConfig {
        IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: "127.0.0.1:1".into(), ..Default::default() }
    }

    async fn server(required: Option<RequiredHeader>) -> (RunningIngest, String) {
        let config = IngestConfig { required_header: required, ..offline() };
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

    async fn limited(header_timeout: Duration, max_connections: usize, max_concurrent_requests: usize) -> (RunningIngest, SocketAddr) {
        let config = IngestConfig { header_timeout, max_connections, max_concurrent_requests, ..offline() };
        let server = start(config).await.unwrap();
        let addr = server.local_addr;
        (server, addr)
    }

    /// What the server sends until it closes the connection; None if it is
    /// still open after `wait`. A reset counts as closed.
    async fn until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        tokio::time::timeout(wait, stream.read_to_end(&mut got)).await.ok().map(|_| got)
    }

    fn refusals(metrics: &str, reason: &str) -> u64 {
        let series = format!("pipeline_ingest_refusals_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series}in {metrics}"))
    }

    async fn metrics_of(addr: SocketAddr) -> String {
        reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap()
    }

    /// Without hyper's timer a head that never ends, or a keep-alive
    /// connection that never sends its next request, held its socket for
    /// ever.
    #[tokio::test]
    async fn a_slow_request_head_and_an_idle_keep_alive_connection_are_closed_after_the_header_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, addr) = limited(Duration::from_millis(500), 100, 100).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /topics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /no/such/path HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut first = [0u8; 64];
        let n = idle.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 404"), "{:?}", String::from_utf8_lossy(&first[..n]));
        assert!(until_closed(&mut slow, Duration::from_secs(5)).await.is_some(), "a slow head is still open after 5 s");
        assert!(until_closed(&mut idle, Duration::from_secs(5)).await.is_some(), "an idle connection is still open after 5 s");
        assert_eq!(refusals(&metrics_of(addr).await, "header_timeout"), 2);
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_answered_503_at_once_and_a_freed_slot_serves_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, addr) = limited(Duration::from_secs(30), 4, 100).await;
        // Four connections that say nothing hold every slot (the server
        // accepts in order, so they have them before the fifth arrives).
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
        let answer = until_closed(&mut over, Duration::from_secs(5)).await.expect("answered and closed, not left waiting");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 503") && text.contains("Retry-After: 1") && text.contains("50301"), "{text}");
        drop(held.pop());
        let mut served = None;
        for _ in 0..50 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /no/such/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            if got.starts_with(b"HTTP/1.1 404") {
                served = Some(got);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served.is_some(), "the slot a closed connection left was never given to another");
        assert!(refusals(&metrics_of(addr).await, "connection_limit") >= 1);
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_request_over_the_concurrency_limit_is_answered_503_at_once_and_the_health_check_never() {
        use tokio::io::AsyncWriteExt;
        let (server, addr) = limited(Duration::from_secs(30), 100, 1).await;
        // The only request slot, held by a body that is declared and never sent.
        let mut holder = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON_V2}\r\nContent-Length: 100\r\n\r\n");
        holder.write_all(head.as_bytes()).await.unwrap();
        let http = reqwest::Client::new();
        let mut shed = None;
        for _ in 0..50 {
            let started = std::time::Instant::now();
            let resp = http.get(format!("http://{addr}/topics")).send().await.unwrap();
            let retry_after = resp.headers().get("retry-after").cloned();
            let (status, body) = (resp.status().as_u16(), resp.json::<Value>().await.unwrap());
            if body["error_code"] == 50301 {
                shed = Some((status, retry_after, started.elapsed()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, retry_after, took) = shed.expect("a second request is shed while the first holds the slot");
        assert_eq!((status, retry_after.as_ref().map(|v| v.to_str().unwrap())), (503, Some("1")));
        // Queued, it would have waited out the 30 s body timeout of the first.
        assert!(took < Duration::from_secs(5), "shed after {took:?}");
        let (s, body) = answer(http.get(format!("http://{addr}/healthz"))).await;
        assert_eq!((s, body["error_code"].as_i64()), (503, Some(50302)), "the health check ran (no broker here): {body}");
        assert!(refusals(&metrics_of(addr).await, "overloaded") >= 1);
        drop(holder);
        server.stop().await.unwrap();
    }

    /// A prior-knowledge HTTP/2 client gets no HTTP/2 server: hyper's
    /// would answer the preface with its SETTINGS frame (frame type 4).
    #[tokio::test]
    async fn http2_cleartext_is_not_served() {
        use tokio::io::AsyncWriteExt;
        let (server, addr) = limited(Duration::from_secs(30), 100, 100).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
        let got = until_closed(&mut s, Duration::from_secs(5)).await.expect("the connection is closed");
        assert!(!(got.len() >= 9 && got[3] == 4), "an HTTP/2 SETTINGS frame came back: {got:?}");
        server.stop().await.unwrap();
    }

    /// The sink's commits say which records are in S3: a REST consumer in
    /// its group could commit past records never written, and they would be
    /// lost. Refused before any consumer is made (no broker needed here).
    #[tokio::test]
    async fn a_rest_consumer_may_not_join_the_sinks_group() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        for group in contract::Names::new(contract::DEFAULT_UID).unwrap().sink_consumer_groups() {
            let (s, body) = answer(http.post(format!("{base}/consumers/{group}")).header("Content-Type", JSON_V2).body("{}")).await;
            assert_eq!((s, body["error_code"].as_i64()), (403, Some(40301)), "{group}: {body}");
        }
        server.stop().await.unwrap();
    }

    /// The cap is checked again where an instance is added: a hundred
    /// creations side by side all passed the first check before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_consumer_instance_cap_holds_under_concurrent_creation() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        let creations = (0..100).map(|i| {
            let request = http
                .post(format!("{base}/consumers/race"))
                .header("Content-Type", JSON_V2)
                .body(json!({"name": format!("c{i}")}).to_string());
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let statuses = futures::future::join_all(creations).await;
        let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
        assert_eq!((count(200), count(429)), (consumers::MAX_INSTANCES, 100 - consumers::MAX_INSTANCES), "{statuses:?}");
        server.stop().await.unwrap();
    }

    /// Fetches wait on the blocking pool, which the health check needs
    /// too: they get a bounded share (one more is refused at once), and a
    /// fetch whose client hung up stops within a poll slice instead of
    /// holding its thread for the rest of its timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_polls_have_a_bounded_share_and_stop_when_their_client_goes() {
        let (server, base) = server(None).await;
        let http = reqwest::Client::new();
        let v2 = "application/vnd.kafka.v2+json";
        let made = http.post(format!("{base}/consumers/readers")).header("Content-Type", v2).body(json!({"name": "a"}).to_string());
        assert_eq!(made.send().await.unwrap().status(), 200);
        let inst = format!("{base}/consumers/readers/instances/a");
        let sub = http.post(format!("{inst}/subscription")).header("Content-Type", v2).body(json!({"topics": ["t"]}).to_string());
        assert_eq!(sub.send().await.unwrap().status(), 204);
        let fetch = |timeout_ms: u64| {
            http.get(format!("{inst}/records?timeout={timeout_ms}")).header("Accept", "application/vnd.kafka.binary.v2+json").send()
        };
        // Long fetches until one more is refused (a fetch that ends early,
        // on an error, gives its slot back).
        let mut waiting = Vec::new();
        let mut refused = None;
        for _ in 0..consumers::MAX_CONCURRENT_FETCHES * 3 {
            waiting.push(tokio::spawn(fetch(30_000)));
            tokio::time::sleep(Duration::from_millis(20)).await;
            let resp = fetch(10).await.unwrap();
            if resp.status() == 503 {
                refused = Some(resp.json::<Value>().await.unwrap());
                break;
            }
        }
        let refused = refused.expect("a fetch beyond the limit is refused at once");
        assert_eq!(refused["error_code"], 50301, "{refused}");
        for w in &waiting {
            w.abort();
        }
        let mut served = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fetch(10).await.unwrap().status() == 200 {
                served = true;
                break;
            }
        }
        assert!(served, "fetches whose clients hung up still hold every slot");
        server.stop().await.unwrap();
    }

    /// A body of many tiny records costs far more memory than its bytes:
    /// its records are charged to the budget, and a body that could never
    /// fit is 413 naming how many would.
    #[tokio::test]
    async fn more_records_than_the_budget_holds_are_refused_naming_how_many_fit() {
        let config = IngestConfig { max_body_bytes: 64 << 10, max_inflight_body_bytes: 64 << 10, ..offline() };
        let server = start(config).await.unwrap();
        let base = format!("http://{}", server.local_addr);
        let records: Vec<Value> = (0..100).map(|i| json!({"value": i})).collect();
        let post = reqwest::Client::new().post(format!("{base}/topics/t")).header("Content-Type", JSON_V2);
        let (s, body) = answer(post.body(json!({"records": records}).to_string())).await;
        assert_eq!((s, body["error_code"].as_i64()), (413, Some(413)), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("100 records") && message.contains("at most 6"), "{message}");
        server.stop().await.unwrap();
    }
}

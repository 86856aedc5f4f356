//! `pipeline ingest`: an HTTP server speaking the Confluent REST Proxy v2
//! produce API (SPEC 3.1), producing to Kafka with an idempotent, acks=all
//! librdkafka producer. A request is answered 200 only after Kafka has
//! acknowledged every one of its records. It also serves API Gateway's
//! Kinesis routes (SPEC 3.2, module `kinesis`).

mod auth;
pub mod cli;
mod consumers;
mod errors;
mod keep_alive;
mod kinesis;
mod metrics;
mod negotiation;
mod request;
mod v3;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, oneshot};

pub use auth::RequiredHeader;
pub use cli::IngestArgs;
pub use errors::{CONTENT_TYPE_V2, ProxyError};
pub use request::{EmbeddedFormat, ProduceRecord, parse_produce};

use pipeline_kafka as kafka;

/// Settings of the ingest server.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Address to listen on; loopback by default.
    pub listen: SocketAddr,
    pub bootstrap: String,
    /// Extra librdkafka settings (e.g. MSK IAM / TLS).
    pub kafka_overrides: Vec<(String, String)>,
    /// How the producer and the other clients authenticate (MSK IAM).
    pub kafka_auth: kafka::KafkaAuth,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Request body bytes held at once over all requests (raised to at
    /// least `max_body_bytes`): what bounds memory when many clients send
    /// large bodies together. Requests beyond it wait for room, up to
    /// `body_timeout`, then get 429 with Retry-After.
    pub max_inflight_body_bytes: usize,
    /// How long a record may wait for Kafka before the request fails
    /// with a retriable error.
    pub delivery_timeout: Duration,
    /// How long topic metadata is cached.
    pub metadata_ttl: Duration,
    /// How long a client may take to send its request body; a slow (or
    /// stalled) client is answered 408 so it cannot hold a connection.
    pub body_timeout: Duration,
    /// Where the Kinesis routes send records; None turns them off.
    pub kinesis: Option<aws_setup::AwsTarget>,
    /// A header every request (but `GET /healthz`) must carry; None admits all.
    pub required_header: Option<RequiredHeader>,
    /// A v2 consumer instance unused for this long is closed (the proxy's
    /// `consumer.instance.timeout.ms`, 5 minutes by default).
    pub consumer_idle: Duration,
}

/// librdkafka's default `message.max.bytes`: the largest record the
/// producer sends (the broker's default limit, 1048588, is above it).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1_000_000;

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            bootstrap: kafka::LOCAL_BOOTSTRAP.to_string(),
            kafka_overrides: Vec::new(),
            kafka_auth: kafka::KafkaAuth::none(),
            max_body_bytes: 8 * 1024 * 1024,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            delivery_timeout: Duration::from_secs(10),
            metadata_ttl: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            kinesis: None,
            required_header: None,
            consumer_idle: Duration::from_secs(300),
        }
    }
}

impl IngestConfig {
    /// The largest record (key plus value) the producer sends: its
    /// `message.max.bytes`, from the Kafka settings when given there. A
    /// larger record is refused with 422 before it reaches Kafka.
    fn max_record_bytes(&self) -> usize {
        self.kafka_overrides
            .iter()
            .rev()
            .find(|(k, _)| k == "message.max.bytes")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_RECORD_BYTES)
    }

    /// What is left of a body after an early answer is drained up to the
    /// body limit, for a few seconds at most (a stalled client's connection
    /// is closed instead).
    fn drain_limits(&self) -> keep_alive::DrainLimits {
        keep_alive::DrainLimits { max_bytes: self.max_body_bytes as u64, max_wait: self.body_timeout.min(Duration::from_secs(5)) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create the Kafka producer: {0}")]
    Producer(KafkaError),
    #[error("cannot listen on {addr}: {source} (is another server, e.g. a REST proxy, using the port? pick another with --listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

#[derive(Debug, Clone)]
struct PartitionInfo {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

#[derive(Debug, Clone)]
struct TopicInfo {
    partitions: Vec<PartitionInfo>,
}

struct AppState {
    producer: FutureProducer<kafka::AuthContext>,
    /// For the topic configs `GET /topics/{topic}` reports; made on first
    /// use, so a server that is never asked opens no second client.
    admin: tokio::sync::OnceCell<rdkafka::admin::AdminClient<kafka::AuthContext>>,
    config: IngestConfig,
    topics: Mutex<HashMap<String, (Instant, TopicInfo)>>,
    round_robin: std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>,
    metrics: metrics::Metrics,
    /// Made on the first Kinesis request (see `kinesis::client`).
    kinesis: tokio::sync::OnceCell<aws_sdk_kinesis::Client>,
    /// Permits are body bytes; see `IngestConfig::max_inflight_body_bytes`.
    body_budget: Arc<Semaphore>,
    /// The broker's cluster id, for the v3 API; asked on first use.
    cluster_id: std::sync::OnceLock<String>,
    /// v2 consumer instances.
    consumers: consumers::Instances,
}

/// A running ingest server.
pub struct RunningIngest {
    pub local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningIngest {
    /// Stop accepting requests, finish the ones in flight, flush the producer.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Run until the server fails (it does not stop on its own).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
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
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        let flush_state = state.clone();
        tokio::task::spawn_blocking(move || flush_state.producer.flush(Timeout::After(Duration::from_secs(10)))).await.ok();
        served
    });
    tracing::info!(%local_addr, "ingest server listening (REST Proxy v2 API)");
    Ok(RunningIngest { local_addr, shutdown: Some(tx), task })
}

/// A request body and its share of the in-flight body budget, given back
/// when the request is answered (the parsed records live as long).
pub(crate) struct RequestBody {
    pub bytes: bytes::Bytes,
    _budget: OwnedSemaphorePermit,
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The request body, within the size limit, the body timeout and the
/// in-flight budget. The budget is taken before a byte is read: the
/// declared Content-Length, or the whole limit for a chunked body.
async fn read_body(state: &AppState, body: Body) -> Result<RequestBody, ProxyError> {
    let limit = state.config.max_body_bytes;
    let after = state.config.body_timeout;
    let declared = HttpBody::size_hint(&body).exact().map(|n| n as usize);
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::body_too_large(limit));
    }
    let wanted = declared.unwrap_or(limit).max(1);
    let budget = match tokio::time::timeout(after, state.body_budget.clone().acquire_many_owned(wanted as u32)).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => unreachable!("the body budget is never closed"),
        Err(_) => return Err(ProxyError::busy(state.config.max_inflight_body_bytes.max(limit))),
    };
    match tokio::time::timeout(after, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(RequestBody { bytes, _budget: budget }),
        Ok(Err(_)) => Err(ProxyError::body_too_large(limit)),
        Err(_) => Err(ProxyError::body_timeout(after)),
    }
}

fn router(state: Arc<AppState>) -> Router {
    let v2 = Router::new()
        .route("/", get(|| async { v2_json(StatusCode::OK, json!({})) }))
        .route("/topics", get(list_topics))
        .route("/topics/{topic}", post(produce).get(get_topic))
        .route("/topics/{topic}/partitions", get(get_partitions))
        .route("/topics/{topic}/partitions/{partition}", post(produce_to_partition).get(get_partition))
        .route("/topics/{topic}/partitions/{partition}/offsets", get(partition_offsets))
        .route("/brokers", get(brokers))
        .route("/consumers/{group}", post(consumers::create))
        .route("/consumers/{group}/instances/{name}", axum::routing::delete(consumers::delete))
        .route("/consumers/{group}/instances/{name}/subscription", post(consumers::subscribe).get(consumers::subscription))
        .route("/consumers/{group}/instances/{name}/records", get(consumers::records))
        .route("/consumers/{group}/instances/{name}/offsets", post(consumers::commit))
        .route_layer(axum::middleware::from_fn(negotiate_answer_type));
    Router::new()
        .merge(v2)
        .route("/v3/clusters", get(v3::list_clusters))
        .route("/v3/clusters/{cluster_id}/topics", get(v3::list_topics))
        .route("/v3/clusters/{cluster_id}/topics/{topic}/records", post(v3::produce))
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

fn v2_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
    resp
}

impl AppState {
    /// Metadata of one topic, cached for `metadata_ttl`. A topic not in the
    /// cache is always looked up, so new topics are seen at once.
    async fn topic(&self, topic: &str) -> Result<TopicInfo, ProxyError> {
        if let Some((at, info)) = self.topics.lock().await.get(topic)
            && at.elapsed() < self.config.metadata_ttl
        {
            return Ok(info.clone());
        }
        let client = self.producer.clone();
        let name = topic.to_string();
        let md = tokio::task::spawn_blocking(move || client.client().fetch_metadata(Some(&name), Duration::from_secs(5)))
            .await
            .map_err(ProxyError::kafka)?
            .map_err(|e| self.unavailable(e))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Err(ProxyError::topic_not_found(topic));
        };
        match t.error() {
            None => {}
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
                return Err(ProxyError::topic_not_found(topic));
            }
            Some(e) => return Err(ProxyError::kafka_retriable(RDKafkaErrorCode::from(e))),
        }
        if t.partitions().is_empty() {
            return Err(ProxyError::topic_not_found(topic));
        }
        let info = TopicInfo {
            partitions: t
                .partitions()
                .iter()
                .map(|p| PartitionInfo { id: p.id(), leader: p.leader(), replicas: p.replicas().to_vec(), isr: p.isr().to_vec() })
                .collect(),
        };
        self.topics.lock().await.insert(topic.to_string(), (Instant::now(), info.clone()));
        Ok(info)
    }

    /// The topic's configs as the broker reports them (defaults included).
    async fn topic_configs(&self, topic: &str) -> Result<serde_json::Map<String, Value>, ProxyError> {
        use rdkafka::admin::{AdminOptions, ResourceSpecifier};
        let admin = self
            .admin
            .get_or_try_init(|| async {
                kafka::admin_client(&self.config.bootstrap, &self.config.kafka_auth, &self.config.kafka_overrides)
            })
            .await
            .map_err(ProxyError::kafka)?;
        // Never polled for the refresh event: a fresh token for each use.
        self.config.kafka_auth.prime(admin.inner());
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let described =
            admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options).await.map_err(ProxyError::broker_not_available)?;
        let resource =
            described.into_iter().next().ok_or_else(|| ProxyError::kafka("no answer to DescribeConfigs"))?.map_err(|code| match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => ProxyError::topic_not_found(topic),
                other => ProxyError::kafka(other),
            })?;
        Ok(resource
            .entries
            .into_iter()
            .map(|e| {
                // Sensitive values are not the proxy's to tell.
                let value = if e.is_sensitive { Value::Null } else { e.value.map_or(Value::Null, Value::String) };
                (e.name, value)
            })
            .collect())
    }

    async fn all_metadata(&self) -> Result<rdkafka::metadata::Metadata, ProxyError> {
        let client = self.producer.clone();
        tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, Duration::from_secs(5)))
            .await
            .map_err(ProxyError::kafka)?
            .map_err(|e| self.unavailable(e))
    }

    /// 503 for a broker that did not answer, saying so when the reason is
    /// that it refused our credentials (MSK IAM): retrying will not help
    /// until those are fixed, and the client should know.
    fn unavailable(&self, e: impl std::fmt::Display) -> ProxyError {
        match self.config.kafka_auth.refusal() {
            Some(refusal) => ProxyError::broker_not_available(format!("{e}; the brokers refused our authentication: {refusal}")),
            None => ProxyError::broker_not_available(e),
        }
    }

    /// A record for `topic` (of `partitions` partitions), the v2 and v3
    /// APIs alike: with neither key nor partition it goes round-robin, as
    /// the REST proxy does; a key alone leaves the choice to the partitioner.
    fn record_to<'a>(
        &self,
        topic: &'a str,
        partitions: usize,
        partition: Option<i32>,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> FutureRecord<'a, [u8], [u8]> {
        let mut rec = FutureRecord::to(topic);
        if let Some(p) = partition.or_else(|| key.is_none().then(|| self.next_partition(topic, partitions))) {
            rec = rec.partition(p);
        }
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        rec
    }

    fn next_partition(&self, topic: &str, count: usize) -> i32 {
        let counter = self.round_robin.lock().unwrap().entry(topic.to_string()).or_default().clone();
        (counter.fetch_add(1, Ordering::Relaxed) % count) as i32
    }
}

fn is_retriable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            MessageTimedOut
                | QueueFull
                | BrokerTransportFailure
                | AllBrokersDown
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
                | LeaderNotAvailable
                | NotLeaderForPartition
                | RequestTimedOut
                | NetworkException
                | BrokerNotAvailable
                | OutOfOrderSequenceNumber
        ),
        None => false,
    }
}

async fn produce(State(state): State<Arc<AppState>>, Path(topic): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match produce_inner(&state, &topic, None, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// `POST /topics/{topic}/partitions/{partition}`: every record to that partition.
async fn produce_to_partition(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(partition) = partition_number(&partition) else { return ProxyError::not_found(uri.path()).into_response() };
    match produce_inner(&state, &topic, Some(partition), &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// A partition in a path: a number, or the path names no endpoint (as a
/// JAX-RS `int` path parameter gives).
fn partition_number(s: &str) -> Option<i32> {
    s.parse::<i32>().ok().filter(|p| *p >= 0)
}

async fn produce_inner(
    state: &AppState,
    topic: &str,
    path_partition: Option<i32>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ProxyError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
    let format = negotiation::embedded_format(content_type)?;
    let bytes = read_body(state, body).await?;
    let mut records = parse_produce(&bytes, format)?;
    let limit = state.config.max_record_bytes();
    for (i, r) in records.iter_mut().enumerate() {
        if r.size() > limit {
            return Err(ProxyError::record_too_large(i, r.size(), limit));
        }
        if let Some(p) = path_partition {
            match r.partition {
                Some(own) if own != p => {
                    return Err(ProxyError::invalid_payload(format!("record {i} names partition {own}, the path partition {p}")));
                }
                _ => r.partition = Some(p),
            }
        }
    }
    let info = state.topic(topic).await?;
    let count = info.partitions.len();
    for r in &records {
        if let Some(p) = r.partition
            && !info.partitions.iter().any(|pi| pi.id == p)
        {
            return Err(ProxyError::partition_not_found(topic, p));
        }
    }

    let started = Instant::now();
    let sends = records.iter().map(|r| {
        let rec = state.record_to(topic, count, r.partition, r.key.as_deref(), r.value.as_deref());
        state.producer.send(rec, Timeout::After(state.config.delivery_timeout))
    });
    let results = futures::future::join_all(sends).await;

    let mut offsets = Vec::with_capacity(results.len());
    let mut first_error: Option<ProxyError> = None;
    let mut failed = 0u64;
    for res in results {
        match res {
            Ok(delivery) => offsets.push(RecordOffset {
                partition: Some(delivery.partition),
                offset: Some(delivery.offset),
                error_code: None,
                error: None,
            }),
            Err((e, _)) => {
                failed += 1;
                let err = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
                    // Over the broker's limit (the producer's was checked above).
                    let i = offsets.len();
                    ProxyError::record_too_large(i, records[i].size(), limit)
                } else if is_retriable(&e) {
                    ProxyError::kafka_retriable(&e)
                } else {
                    ProxyError::kafka(&e)
                };
                offsets.push(RecordOffset { partition: None, offset: None, error_code: Some(err.code), error: Some(err.message.clone()) });
                // A non-retriable failure outranks a retriable one.
                if first_error.as_ref().is_none_or(|f| f.retriable() && !err.retriable()) {
                    first_error = Some(err);
                }
            }
        }
    }
    state.metrics.produced(records.len() as u64 - failed, failed, started.elapsed());

    match first_error {
        None => Ok(v2_typed(StatusCode::OK, &ProduceAnswer { offsets: &offsets, key_schema_id: None, value_schema_id: None })),
        // Never a 200 for a record that is not stored: the client must know
        // to retry, and `offsets` tells it which records did land.
        Some(err) => {
            tracing::warn!(topic, failed, error = %err.message, "produce request not fully stored");
            let status = if err.retriable() { StatusCode::SERVICE_UNAVAILABLE } else { err.status() };
            let mut resp = v2_typed(status, &ProduceFailure { error_code: err.code, message: &err.message, offsets: &offsets });
            if err.retriable() {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Ok(resp)
        }
    }
}

// The produce answers as typed structs: built per request, a `json!` tree
// of a 100-record answer cost 400 map inserts.

/// One entry of `offsets`, in the REST proxy's field order.
#[derive(serde::Serialize)]
struct RecordOffset {
    partition: Option<i32>,
    offset: Option<i64>,
    error_code: Option<u32>,
    error: Option<String>,
}

#[derive(serde::Serialize)]
struct ProduceAnswer<'a> {
    offsets: &'a [RecordOffset],
    key_schema_id: Option<u32>,
    value_schema_id: Option<u32>,
}

#[derive(serde::Serialize)]
struct ProduceFailure<'a> {
    error_code: u32,
    message: &'a str,
    offsets: &'a [RecordOffset],
}

fn v2_typed<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("answers serialise");
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
    resp
}

async fn list_topics(State(state): State<Arc<AppState>>) -> Result<Response, ProxyError> {
    let md = state.all_metadata().await?;
    let mut names: Vec<&str> = md.topics().iter().map(|t| t.name()).filter(|n| !n.starts_with("__")).collect();
    names.sort_unstable();
    Ok(v2_json(StatusCode::OK, json!(names)))
}

fn partitions_json(info: &TopicInfo) -> Value {
    Value::Array(info.partitions.iter().map(partition_json).collect())
}

fn partition_json(p: &PartitionInfo) -> Value {
    let replicas: Vec<Value> =
        p.replicas.iter().map(|b| json!({ "broker": b, "leader": *b == p.leader, "in_sync": p.isr.contains(b) })).collect();
    json!({ "partition": p.id, "leader": p.leader, "replicas": replicas })
}

async fn get_topic(State(state): State<Arc<AppState>>, Path(topic): Path<String>) -> Result<Response, ProxyError> {
    let info = state.topic(&topic).await?;
    let configs = state.topic_configs(&topic).await?;
    Ok(v2_json(StatusCode::OK, json!({ "name": topic, "configs": configs, "partitions": partitions_json(&info) })))
}

/// The partition a `/topics/{topic}/partitions/{partition}` path names:
/// 404 for a path that is no partition number, 40401/40402 for unknown ones.
async fn named_partition(state: &AppState, topic: &str, partition: &str, uri: &Uri) -> Result<PartitionInfo, ProxyError> {
    let id = partition_number(partition).ok_or_else(|| ProxyError::not_found(uri.path()))?;
    let info = state.topic(topic).await?;
    info.partitions.into_iter().find(|p| p.id == id).ok_or_else(|| ProxyError::partition_not_found(topic, id))
}

async fn get_partition(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ProxyError> {
    let p = named_partition(&state, &topic, &partition, &uri).await?;
    Ok(v2_json(StatusCode::OK, partition_json(&p)))
}

/// `GET /topics/{topic}/partitions/{partition}/offsets`: the first offset
/// still stored and the one the next record gets.
async fn partition_offsets(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ProxyError> {
    let id = named_partition(&state, &topic, &partition, &uri).await?.id;
    let client = state.producer.clone();
    let (low, high) = tokio::task::spawn_blocking(move || client.client().fetch_watermarks(&topic, id, Duration::from_secs(5)))
        .await
        .map_err(ProxyError::kafka)?
        .map_err(|e| state.unavailable(e))?;
    Ok(v2_json(StatusCode::OK, json!({ "beginning_offset": low, "end_offset": high })))
}

async fn get_partitions(State(state): State<Arc<AppState>>, Path(topic): Path<String>) -> Result<Response, ProxyError> {
    let info = state.topic(&topic).await?;
    Ok(v2_json(StatusCode::OK, partitions_json(&info)))
}

async fn brokers(State(state): State<Arc<AppState>>) -> Result<Response, ProxyError> {
    let md = state.all_metadata().await?;
    let ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    Ok(v2_json(StatusCode::OK, json!({ "brokers": ids })))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
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
}

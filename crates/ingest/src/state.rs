//! The server's settings and shared state: the producer, the topic
//! metadata cache, the in-flight body budget and the consumer instances,
//! which every API module (v2, v3, consumers, Kinesis) uses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::Value;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::auth::RequiredHeader;
use crate::errors::ProxyError;
use crate::metrics::Refusal;
use crate::{consumers, keep_alive, metrics, transport};
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
    /// large bodies together. Counted as bytes arrive; a request whose
    /// bytes find no room is answered 429 with Retry-After at once.
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
    /// Consumer groups REST consumers may not join (403, error code
    /// 40301): the sink's, whose commits say which records are in S3.
    pub reserved_groups: Vec<String>,
    /// How long a connection may take to send a complete request head, and
    /// how long a keep-alive connection may wait for its next request
    /// (hyper runs one clock for both); then it is closed.
    pub header_timeout: Duration,
    /// Client connections open at once; one more is answered 503 at once
    /// and closed. Lowered, with a warning, to what the open-file limit
    /// leaves after the descriptors Kafka and AWS clients need.
    pub max_connections: usize,
    /// Requests in flight at once (the health check and `/metrics` aside);
    /// one more is answered 503 with Retry-After at once, never queued.
    pub max_concurrent_requests: usize,
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
            reserved_groups: contract::Names::new(contract::DEFAULT_UID).expect("the default uid is valid").sink_consumer_groups().to_vec(),
            header_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_concurrent_requests: 1024,
        }
    }
}

impl IngestConfig {
    /// The largest record (key plus value) the producer sends: its
    /// `message.max.bytes`, from the Kafka settings when given there. A
    /// larger record is refused with 422 before it reaches Kafka.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.kafka_overrides
            .iter()
            .rev()
            .find(|(k, _)| k == "message.max.bytes")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_RECORD_BYTES)
    }

    /// The in-flight budget in bytes: `max_inflight_body_bytes`, raised to
    /// at least one whole body.
    pub(crate) fn body_budget_bytes(&self) -> usize {
        self.max_inflight_body_bytes.max(self.max_body_bytes)
    }

    /// The limits the connection loop keeps, with the connection cap
    /// lowered to what the process's open-file limit leaves room for.
    pub(crate) fn connection_limits(&self) -> transport::ConnectionLimits {
        transport::ConnectionLimits {
            header_timeout: self.header_timeout,
            max_connections: transport::connection_cap(self.max_connections, transport::descriptor_limit()),
        }
    }

    /// What is left of a body after an early answer is drained up to the
    /// body limit, for a few seconds at most (a stalled client's connection
    /// is closed instead).
    pub(crate) fn drain_limits(&self) -> keep_alive::DrainLimits {
        keep_alive::DrainLimits { max_bytes: self.max_body_bytes as u64, max_wait: self.body_timeout.min(Duration::from_secs(5)) }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PartitionInfo {
    pub(crate) id: i32,
    pub(crate) leader: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    pub(crate) partitions: Vec<PartitionInfo>,
}

pub(crate) struct AppState {
    pub(crate) producer: FutureProducer<kafka::AuthContext>,
    /// For the topic configs `GET /topics/{topic}` reports; made on first
    /// use, so a server that is never asked opens no second client.
    pub(crate) admin: tokio::sync::OnceCell<rdkafka::admin::AdminClient<kafka::AuthContext>>,
    pub(crate) config: IngestConfig,
    pub(crate) topics: Mutex<HashMap<String, (Instant, TopicInfo)>>,
    pub(crate) round_robin: std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Permits are requests in flight; see `IngestConfig::max_concurrent_requests`.
    pub(crate) request_slots: Arc<Semaphore>,
    /// Made on the first Kinesis request (see `kinesis::client`).
    pub(crate) kinesis: tokio::sync::OnceCell<aws_sdk_kinesis::Client>,
    /// Permits are body bytes; see `IngestConfig::max_inflight_body_bytes`.
    pub(crate) body_budget: Arc<Semaphore>,
    /// The broker's cluster id, for the v3 API; asked on first use.
    pub(crate) cluster_id: std::sync::OnceLock<String>,
    /// v2 consumer instances.
    pub(crate) consumers: consumers::Instances,
}

impl AppState {
    /// Metadata of one topic, cached for `metadata_ttl`. A topic not in the
    /// cache is always looked up, so new topics are seen at once.
    pub(crate) async fn topic(&self, topic: &str) -> Result<TopicInfo, ProxyError> {
        kafka::check_topic_name(topic).map_err(|why| ProxyError::invalid_topic_name(&why))?;
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
    pub(crate) async fn topic_configs(&self, topic: &str) -> Result<serde_json::Map<String, Value>, ProxyError> {
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

    pub(crate) async fn all_metadata(&self) -> Result<rdkafka::metadata::Metadata, ProxyError> {
        let client = self.producer.clone();
        tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, Duration::from_secs(5)))
            .await
            .map_err(ProxyError::kafka)?
            .map_err(|e| self.unavailable(e))
    }

    /// The producer's fatal error, if it has had one (librdkafka's word for
    /// an error after which it sends nothing, such as an idempotent producer
    /// refused WriteDataIdempotently): said as what an operator should do.
    pub(crate) fn fatal_producer_error(&self) -> Option<String> {
        self.producer.client().fatal_error().map(|(code, reason)| {
            format!("the Kafka producer stopped for good ({code:?}: {reason}); no record can be stored until ingest is restarted")
        })
    }

    /// 503 for a broker that did not answer, saying so when the reason is
    /// that it refused our credentials (MSK IAM): retrying will not help
    /// until those are fixed, and the client should know.
    pub(crate) fn unavailable(&self, e: impl std::fmt::Display) -> ProxyError {
        match self.config.kafka_auth.refusal() {
            Some(refusal) => ProxyError::broker_not_available(format!("{e}; the brokers refused our authentication: {refusal}")),
            None => ProxyError::broker_not_available(e),
        }
    }

    /// A record for `topic` (of `partitions` partitions), the v2 and v3
    /// APIs alike: with neither key nor partition it goes round-robin, as
    /// the REST proxy does; a key alone leaves the choice to the partitioner.
    pub(crate) fn record_to<'a>(
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

    pub(crate) fn next_partition(&self, topic: &str, count: usize) -> i32 {
        let counter = self.round_robin.lock().unwrap().entry(topic.to_string()).or_default().clone();
        (counter.fetch_add(1, Ordering::Relaxed) % count) as i32
    }
}

/// What one parsed record costs beyond its bytes, from parse to answer:
/// its request struct, its send future, librdkafka's copy and its entry in
/// the answer. The figure comes from the measurement in issue 38: a 7.9 MB
/// body of ~12-byte records raised the server's RSS by about 800 MB, some
/// 1.2 KB a record; 1 KiB is charged.
pub(crate) const RECORD_OVERHEAD_BYTES: usize = 1024;

impl AppState {
    /// Room in the in-flight budget for `records` parsed records, beside
    /// the `body_len` bytes of their body already held: a body of many tiny
    /// records takes far more memory than its bytes. 413 when the request
    /// could never fit, 429 (at once) when it could but not now.
    pub(crate) fn reserve_records(&self, records: usize, body_len: usize) -> Result<OwnedSemaphorePermit, ProxyError> {
        let budget = self.config.body_budget_bytes();
        let cost = records.saturating_mul(RECORD_OVERHEAD_BYTES);
        if cost.saturating_add(body_len) > budget {
            let most = budget.saturating_sub(body_len) / RECORD_OVERHEAD_BYTES;
            return Err(ProxyError::too_many_records(records, most));
        }
        self.take_budget(cost, &format_args!("no room for {records} parsed records"))
    }

    /// `bytes` of the in-flight budget now, or 429 at once (never a wait:
    /// a queue let one large waiter hold up every small request), counted
    /// as a refusal with `what` in its log line.
    fn take_budget(&self, bytes: usize, what: &dyn std::fmt::Display) -> Result<OwnedSemaphorePermit, ProxyError> {
        self.body_budget.clone().try_acquire_many_owned(bytes as u32).map_err(|_| {
            self.metrics.refused(Refusal::BodyBudget, what);
            ProxyError::busy(self.config.body_budget_bytes())
        })
    }
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
/// in-flight budget. The budget is taken as bytes arrive, never ahead of
/// them: a client that declares a large body and sends nothing holds
/// nothing. When the budget has no room for bytes that arrived, the request
/// is answered 429 at once: queued, one large waiter held up every small
/// request behind it.
pub(crate) async fn read_body(state: &AppState, body: Body) -> Result<RequestBody, ProxyError> {
    let limit = state.config.max_body_bytes;
    let after = state.config.body_timeout;
    if HttpBody::size_hint(&body).lower() > limit as u64 {
        return Err(ProxyError::body_too_large(limit));
    }
    match tokio::time::timeout(after, take_body(state, body, limit)).await {
        Ok(read) => read,
        Err(_) => {
            state.metrics.refused(Refusal::BodyTimeout, &format_args!("a request body not received within {after:?}"));
            Err(ProxyError::body_timeout(after))
        }
    }
}

/// [`read_body`] without its timeout: each frame's bytes are taken from the
/// budget before they are kept.
async fn take_body(state: &AppState, mut body: Body, limit: usize) -> Result<RequestBody, ProxyError> {
    let mut held = state.body_budget.clone().try_acquire_many_owned(0).expect("the body budget is never closed");
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ProxyError::unreadable_body(&e))?;
        let Ok(data) = frame.into_data() else { continue }; // trailers
        len += data.len();
        if len > limit {
            return Err(ProxyError::body_too_large(limit));
        }
        held.merge(state.take_budget(data.len(), &format_args!("no room for {} more body bytes", data.len()))?);
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => bytes::Bytes::new(),
        1 => chunks.pop().expect("one chunk"),
        _ => {
            // The copy is transient; the budget counts the body once, as
            // it is kept.
            let mut joined = bytes::BytesMut::with_capacity(len);
            chunks.iter().for_each(|c| joined.extend_from_slice(c));
            joined.freeze()
        }
    };
    Ok(RequestBody { bytes, _budget: held })
}

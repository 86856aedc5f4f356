//! The REST Proxy v2 consumer API, for REST clients that read: consumer
//! instances in a group (`POST /consumers/{group}`), their subscription (and
//! its removal) or a manual assignment, `GET .../records` in the json or
//! binary embedded format, offset commits and committed offsets, and
//! `DELETE`. Memory is bounded: at most [`MAX_INSTANCES`] instances, at
//! most [`MAX_RECORDS_BYTES`] per records answer, and an instance that has
//! not been used for the idle time is closed and forgotten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::errors::ProxyError;
use crate::request::EmbeddedFormat;
use crate::state::{AppState, read_body};
use crate::v2::v2_json;
use pipeline_kafka as kafka;

/// The v2 consumer routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/consumers/{group}", post(create))
        .route("/consumers/{group}/instances/{name}", axum::routing::delete(delete))
        .route("/consumers/{group}/instances/{name}/subscription", post(subscribe).get(subscription).delete(unsubscribe))
        .route("/consumers/{group}/instances/{name}/assignments", post(assign).get(assignments))
        .route("/consumers/{group}/instances/{name}/records", get(records))
        .route("/consumers/{group}/instances/{name}/offsets", post(commit).get(committed))
}

/// Consumer instances held at once.
pub const MAX_INSTANCES: usize = 64;
/// The most record bytes one `GET .../records` answer holds.
pub const MAX_RECORDS_BYTES: usize = 8 * 1024 * 1024;
/// How long `GET .../records` waits for records when the client names no timeout.
const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(1000);

struct Instance {
    consumer: Arc<BaseConsumer<kafka::AuthContext>>,
    format: EmbeddedFormat,
    last_used: std::sync::Mutex<Instant>,
    /// A record that could not be rendered after others of the same fetch
    /// were: those are answered, and this error is the next fetch's answer,
    /// so no polled record is dropped unseen.
    deferred_error: std::sync::Mutex<Option<ProxyError>>,
}

/// Fetches (`GET .../records`) waiting at once. Each holds a thread of the
/// blocking pool for up to its timeout; the health check and produce's
/// metadata lookups need threads of the same pool, so fetches get a share.
pub const MAX_CONCURRENT_FETCHES: usize = 32;

/// How often a waiting fetch looks whether its client is still there.
const FETCH_SLICE: Duration = Duration::from_millis(100);

/// The live consumer instances, by (group, name).
pub struct Instances {
    by_name: std::sync::Mutex<HashMap<(String, String), Arc<Instance>>>,
    fetches: Arc<tokio::sync::Semaphore>,
}

impl Default for Instances {
    fn default() -> Self {
        Self { by_name: Default::default(), fetches: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES)) }
    }
}

/// Set when the request it lives in is dropped: axum drops the handler
/// when its client hangs up, and the fetch on the blocking pool stops.
struct HungUp(Arc<std::sync::atomic::AtomicBool>);

impl Drop for HungUp {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Instances {
    fn get(&self, group: &str, name: &str) -> Result<Arc<Instance>, ProxyError> {
        let found = self.by_name.lock().unwrap().get(&(group.to_string(), name.to_string())).cloned();
        let instance = found.ok_or_else(|| ProxyError { code: 40403, message: "Consumer instance not found.".into() })?;
        *instance.last_used.lock().unwrap() = Instant::now();
        Ok(instance)
    }

    /// Close the instances idle for longer than `idle`.
    pub fn expire(&self, idle: Duration) -> usize {
        let mut idle_ones = Vec::new();
        self.by_name.lock().unwrap().retain(|(group, name), i| {
            let keep = i.last_used.lock().unwrap().elapsed() < idle;
            if !keep {
                tracing::info!(group, name, "consumer instance closed after being idle");
                idle_ones.push(i.clone());
            }
            keep
        });
        let closed = idle_ones.len();
        close_off_the_workers(idle_ones);
        closed
    }
}

/// Drop instances on the blocking pool, outside every lock: the last drop
/// of a librdkafka consumer leaves its group, which blocks for as long as
/// the broker takes, and would stall an async worker and whoever waits for
/// the instance map meanwhile.
fn close_off_the_workers(instances: Vec<Arc<Instance>>) {
    if !instances.is_empty() {
        tokio::task::spawn_blocking(move || drop(instances));
    }
}

fn json_body(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ProxyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(bytes).map_err(ProxyError::json_conversion)? {
        Value::Object(m) => Ok(m),
        _ => Err(ProxyError::invalid_payload("the body must be a JSON object")),
    }
}

fn setting(body: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `POST /consumers/{group}`: a new instance.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ProxyError> {
    if state.config.reserved_groups.contains(&group) {
        return Err(ProxyError::reserved_group(&group));
    }
    let body = json_body(&read_body(&state, body).await?)?;
    let name = setting(&body, "name").unwrap_or_else(|| format!("rest-consumer-{}", uuid::Uuid::new_v4().simple()));
    let format = match setting(&body, "format").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("binary") => EmbeddedFormat::Binary,
        Some("json") => EmbeddedFormat::Json,
        Some(other) => return Err(ProxyError::invalid_payload(format!("format {other} is not served; use json or binary"))),
    };
    let reset = setting(&body, "auto.offset.reset").unwrap_or_else(|| "latest".into());
    if !["earliest", "latest", "none"].contains(&reset.as_str()) {
        return Err(ProxyError::invalid_payload(format!("auto.offset.reset {reset} is not earliest, latest or none")));
    }
    let auto_commit = setting(&body, "auto.commit.enable").unwrap_or_else(|| "false".into());
    if !["true", "false"].contains(&auto_commit.as_str()) {
        return Err(ProxyError::invalid_payload(format!("auto.commit.enable {auto_commit} is not true or false")));
    }
    let key = (group.clone(), name.clone());
    // Checked before the consumer is made, so a refused request costs none.
    if let Some(refused) = no_room_for(&state.consumers.by_name.lock().unwrap(), &key) {
        return Err(refused);
    }
    let auth = &state.config.kafka_auth;
    let consumer: BaseConsumer<kafka::AuthContext> = kafka::client_config(&state.config.bootstrap, auth, &state.config.kafka_overrides)
        .set("group.id", &group)
        .set("auto.offset.reset", &reset)
        .set("enable.auto.commit", &auto_commit)
        .set("enable.partition.eof", "false")
        .create_with_context(auth.context())
        .map_err(ProxyError::kafka)?;
    auth.prime(consumer.client());
    let instance = Arc::new(Instance {
        consumer: Arc::new(consumer),
        format,
        last_used: std::sync::Mutex::new(Instant::now()),
        deferred_error: Default::default(),
    });
    // Checked again where the instance is added, under the same lock:
    // requests made side by side all passed the first check.
    let refused = {
        let mut map = state.consumers.by_name.lock().unwrap();
        let refused = no_room_for(&map, &key);
        if refused.is_none() {
            map.insert(key, instance.clone());
        }
        refused
    };
    if let Some(refused) = refused {
        close_off_the_workers(vec![instance]);
        return Err(refused);
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    Ok(v2_json(StatusCode::OK, json!({ "instance_id": name, "base_uri": format!("http://{host}/consumers/{group}/instances/{name}") })))
}

/// Why an instance named `key` cannot be added to `map` now, if it cannot:
/// the name is taken, or [`MAX_INSTANCES`] are open.
fn no_room_for(map: &HashMap<(String, String), Arc<Instance>>, key: &(String, String)) -> Option<ProxyError> {
    if map.contains_key(key) {
        return Some(ProxyError { code: 40902, message: "Consumer instance with the specified name already exists.".into() });
    }
    (map.len() >= MAX_INSTANCES).then(|| ProxyError {
        code: 429,
        message: format!("{MAX_INSTANCES} consumer instances are open; delete unused ones (DELETE /consumers/<group>/instances/<name>)"),
    })
}

/// `DELETE /consumers/{group}/instances/{name}`.
pub async fn delete(State(state): State<Arc<AppState>>, Path((group, name)): Path<(String, String)>) -> Result<Response, ProxyError> {
    let removed = state.consumers.by_name.lock().unwrap().remove(&(group, name));
    match removed {
        Some(instance) => {
            close_off_the_workers(vec![instance]);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ProxyError { code: 40403, message: "Consumer instance not found.".into() }),
    }
}

/// The instance a path names, and the request's JSON object body.
async fn instance_and_body(
    state: &AppState,
    group: &str,
    name: &str,
    body: Body,
) -> Result<(Arc<Instance>, serde_json::Map<String, Value>), ProxyError> {
    let instance = state.consumers.get(group, name)?;
    Ok((instance, json_body(&read_body(state, body).await?)?))
}

/// `POST .../subscription`: `{"topics": [..]}` or `{"topic_pattern": ".."}`.
pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path((group, name)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ProxyError> {
    let (instance, body) = instance_and_body(&state, &group, &name, body).await?;
    let topics: Vec<String> = match (body.get("topics"), body.get("topic_pattern")) {
        (Some(Value::Array(list)), None) => {
            let topics: Vec<String> = list
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| ProxyError::invalid_payload("topics must be strings"))?;
            for topic in &topics {
                pipeline_kafka::check_topic_name(topic).map_err(|why| ProxyError::invalid_topic_name(&why))?;
            }
            topics
        }
        // librdkafka takes a leading `^` as "this is a regex".
        (None, Some(Value::String(pattern))) => vec![if pattern.starts_with('^') { pattern.clone() } else { format!("^{pattern}") }],
        _ => {
            return Err(ProxyError {
                code: 40903,
                message: "Subscription to topics, partitions and pattern are mutually exclusive; give topics or topic_pattern.".into(),
            });
        }
    };
    if !subscribed(&instance)? && instance.consumer.assignment().map_err(ProxyError::kafka)?.count() > 0 {
        return Err(ProxyError::illegal_state("the instance has an assignment; subscription and assignment are mutually exclusive"));
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    instance.consumer.subscribe(&refs).map_err(ProxyError::kafka)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../subscription`.
pub async fn subscription(State(state): State<Arc<AppState>>, Path((group, name)): Path<(String, String)>) -> Result<Response, ProxyError> {
    let instance = state.consumers.get(&group, &name)?;
    let list = instance.consumer.subscription().map_err(ProxyError::kafka)?;
    let topics: Vec<String> = list.elements().iter().map(|e| e.topic().to_string()).collect();
    Ok(v2_json(StatusCode::OK, json!({ "topics": topics })))
}

/// Whether the instance reads by subscription (its partitions given by the
/// group), which excludes an assignment by hand, and the reverse.
fn subscribed(instance: &Instance) -> Result<bool, ProxyError> {
    Ok(instance.consumer.subscription().map_err(ProxyError::kafka)?.count() > 0)
}

/// `DELETE .../subscription`: the instance stops reading its topics.
pub async fn unsubscribe(State(state): State<Arc<AppState>>, Path((group, name)): Path<(String, String)>) -> Result<Response, ProxyError> {
    let instance = state.consumers.get(&group, &name)?;
    instance.consumer.unsubscribe();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How long a call that asks the broker (committed offsets) may take.
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The `{"partitions": [{"topic", "partition"}]}` of a request body.
fn partitions(body: &serde_json::Map<String, Value>) -> Result<Vec<(String, i32)>, ProxyError> {
    let Some(Value::Array(list)) = body.get("partitions") else {
        return Err(ProxyError::invalid_payload("partitions must be an array of {\"topic\", \"partition\"}"));
    };
    list.iter()
        .map(|p| {
            match (p.get("topic").and_then(Value::as_str), p.get("partition").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok())) {
                (Some(topic), Some(partition)) if partition >= 0 => Ok((topic.to_string(), partition)),
                _ => Err(ProxyError::invalid_payload("each partition needs a topic and a partition number")),
            }
        })
        .collect()
}

fn partition_list(parts: &[(String, i32)], offset: Offset) -> Result<TopicPartitionList, ProxyError> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in parts {
        list.add_partition_offset(topic, *partition, offset).map_err(ProxyError::kafka)?;
    }
    Ok(list)
}

/// `POST .../assignments`: read these partitions, outside any group
/// rebalance. Refused while the instance has a subscription, as the
/// reference refuses it.
pub async fn assign(
    State(state): State<Arc<AppState>>,
    Path((group, name)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ProxyError> {
    let (instance, body) = instance_and_body(&state, &group, &name, body).await?;
    let parts = partitions(&body)?;
    for (topic, _) in &parts {
        pipeline_kafka::check_topic_name(topic).map_err(|why| ProxyError::invalid_topic_name(&why))?;
    }
    if subscribed(&instance)? {
        return Err(ProxyError::illegal_state("the instance has a subscription; subscription and assignment are mutually exclusive"));
    }
    instance.consumer.assign(&partition_list(&parts, Offset::Invalid)?).map_err(ProxyError::kafka)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../assignments`: the partitions the instance reads now, given by
/// `POST .../assignments` or by its group.
pub async fn assignments(State(state): State<Arc<AppState>>, Path((group, name)): Path<(String, String)>) -> Result<Response, ProxyError> {
    let instance = state.consumers.get(&group, &name)?;
    let list = instance.consumer.assignment().map_err(ProxyError::kafka)?;
    let parts: Vec<Value> = list.elements().iter().map(|e| json!({"topic": e.topic(), "partition": e.partition()})).collect();
    Ok(v2_json(StatusCode::OK, json!({ "partitions": parts })))
}

/// `GET .../offsets` with `{"partitions": [..]}`: the group's committed
/// offsets, whoever committed them, as Kafka keeps them (the next record to
/// read); partitions without a commit are left out, as in the reference.
pub async fn committed(
    State(state): State<Arc<AppState>>,
    Path((group, name)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ProxyError> {
    let (instance, body) = instance_and_body(&state, &group, &name, body).await?;
    let list = partition_list(&partitions(&body)?, Offset::Invalid)?;
    let consumer = instance.consumer.clone();
    let committed = tokio::task::spawn_blocking(move || consumer.committed_offsets(list, BROKER_CALL_TIMEOUT))
        .await
        .map_err(ProxyError::kafka)?
        .map_err(ProxyError::kafka)?;
    let offsets: Vec<Value> = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => {
                Some(json!({"topic": e.topic(), "partition": e.partition(), "offset": offset, "metadata": e.metadata()}))
            }
            _ => None,
        })
        .collect();
    Ok(v2_json(StatusCode::OK, json!({ "offsets": offsets })))
}

#[derive(serde::Deserialize)]
pub struct FetchParams {
    timeout: Option<u64>,
    max_bytes: Option<usize>,
}

/// `GET .../records?timeout=<ms>&max_bytes=<n>`: what arrives within the
/// timeout, up to `max_bytes` (at most [`MAX_RECORDS_BYTES`]).
pub async fn records(
    State(state): State<Arc<AppState>>,
    Path((group, name)): Path<(String, String)>,
    Query(params): Query<FetchParams>,
) -> Result<Response, ProxyError> {
    let instance = state.consumers.get(&group, &name)?;
    let wait = params.timeout.map_or(DEFAULT_FETCH_WAIT, Duration::from_millis).min(Duration::from_secs(30));
    let max_bytes = params.max_bytes.unwrap_or(MAX_RECORDS_BYTES).min(MAX_RECORDS_BYTES);
    if let Some(deferred) = instance.deferred_error.lock().unwrap().take() {
        return Err(deferred);
    }
    let Ok(slot) = state.consumers.fetches.clone().try_acquire_owned() else {
        return Err(ProxyError::overloaded(&format!("{MAX_CONCURRENT_FETCHES} consumer fetches waiting at once")));
    };
    let consumer = instance.consumer.clone();
    let format = instance.format;
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _hung_up = HungUp(gone.clone());
    let (fetched, deferred) = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let deadline = Instant::now() + wait;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        loop {
            // Nobody to answer: poll no more, so no record is taken from
            // the consumer and then dropped.
            if out.is_empty() && gone.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok((out, None));
            }
            // Once something came, take what is there now and answer.
            let remaining = if out.is_empty() { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            match consumer.poll(remaining.min(FETCH_SLICE)) {
                Some(Ok(m)) => {
                    let size = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                    match record_json(&m, format) {
                        Ok(record) => out.push(record),
                        Err(e) if out.is_empty() => return Err(e),
                        // The consumer is past it already: answer what came
                        // before it, and the error next time.
                        Err(e) => return Ok((out, Some(e))),
                    }
                    bytes += size;
                    if bytes >= max_bytes {
                        break;
                    }
                }
                // librdkafka reports a broker it lost as a consume error and
                // reconnects by itself: wait on, as the fetch would for records.
                Some(Err(e)) if crate::errors::is_retriable(&e) => {
                    tracing::debug!("consumer fetch: {e}");
                    continue;
                }
                Some(Err(e)) => return Err(ProxyError::kafka(e)),
                None if out.is_empty() && Instant::now() < deadline => continue,
                None => break,
            }
        }
        Ok((out, None))
    })
    .await
    .map_err(ProxyError::kafka)??;
    if deferred.is_some() {
        *instance.deferred_error.lock().unwrap() = deferred;
    }
    let mut resp = v2_json(StatusCode::OK, Value::Array(fetched));
    let ct = match format {
        EmbeddedFormat::Json => "application/vnd.kafka.json.v2+json",
        EmbeddedFormat::Binary => "application/vnd.kafka.binary.v2+json",
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

fn record_json(m: &rdkafka::message::BorrowedMessage<'_>, format: EmbeddedFormat) -> Result<Value, ProxyError> {
    let embed = |bytes: Option<&[u8]>| -> Result<Value, ProxyError> {
        let Some(bytes) = bytes else { return Ok(Value::Null) };
        match format {
            EmbeddedFormat::Binary => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))),
            EmbeddedFormat::Json => serde_json::from_slice(bytes).map_err(|e| ProxyError {
                code: 50002,
                message: format!(
                    "the record at {}/{}/{} is not JSON ({e}); read it with a binary consumer",
                    m.topic(),
                    m.partition(),
                    m.offset()
                ),
            }),
        }
    };
    Ok(
        json!({ "topic": m.topic(), "key": embed(m.key())?, "value": embed(m.payload())?, "partition": m.partition(), "offset": m.offset() }),
    )
}

/// `POST .../offsets`: commit the given offsets (each the last record
/// consumed, as in the proxy), or, with no body, everything fetched so far.
pub async fn commit(
    State(state): State<Arc<AppState>>,
    Path((group, name)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ProxyError> {
    let (instance, body) = instance_and_body(&state, &group, &name, body).await?;
    let consumer = instance.consumer.clone();
    let list = match body.get("offsets") {
        None => None,
        Some(Value::Array(offsets)) => {
            let mut list = TopicPartitionList::new();
            for o in offsets {
                let (Some(topic), Some(partition), Some(offset)) = (
                    o.get("topic").and_then(Value::as_str),
                    o.get("partition").and_then(Value::as_i64),
                    o.get("offset").and_then(Value::as_i64),
                ) else {
                    return Err(ProxyError::invalid_payload("each offset needs topic, partition and offset"));
                };
                list.add_partition_offset(topic, partition as i32, Offset::Offset(offset + 1)).map_err(ProxyError::kafka)?;
            }
            Some(list)
        }
        Some(_) => return Err(ProxyError::invalid_payload("offsets must be an array")),
    };
    let committed = tokio::task::spawn_blocking(move || {
        // An instance commits only what it reads: a commit for another
        // partition of the group would move a position some other member
        // reads from, and records there would be skipped.
        if let Some(list) = &list {
            let assigned = consumer.assignment().map_err(ProxyError::kafka)?;
            if let Some(other) = list.elements().iter().find(|e| assigned.find_partition(e.topic(), e.partition()).is_none()) {
                return Err(ProxyError::illegal_state(format!(
                    "partition {}/{} is not assigned to this consumer instance; an instance commits only the partitions it reads",
                    other.topic(),
                    other.partition()
                )));
            }
        }
        Ok(match list {
            Some(list) => consumer.commit(&list, CommitMode::Sync),
            None => consumer.commit_consumer_state(CommitMode::Sync),
        })
    })
    .await
    .map_err(ProxyError::kafka)??;
    match committed {
        // Nothing read since the last commit: nothing to do, as the
        // reference proxy answers it, not an error.
        Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {}
        other => other.map_err(ProxyError::kafka)?,
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_instances_are_forgotten() {
        let instances = Instances::default();
        let consumer: BaseConsumer<kafka::AuthContext> = kafka::client_config("127.0.0.1:1", &kafka::KafkaAuth::none(), &[])
            .set("group.id", "g")
            .create_with_context(Default::default())
            .unwrap();
        let old = Arc::new(Instance {
            consumer: Arc::new(consumer),
            format: EmbeddedFormat::Json,
            last_used: std::sync::Mutex::new(Instant::now() - Duration::from_secs(60)),
            deferred_error: Default::default(),
        });
        instances.by_name.lock().unwrap().insert(("g".into(), "old".into()), old);
        assert_eq!(instances.expire(Duration::from_secs(120)), 0);
        assert!(instances.get("g", "old").is_ok(), "using it renews it");
        assert_eq!(instances.expire(Duration::from_secs(120)), 0);
        *instances.by_name.lock().unwrap()[&("g".to_string(), "old".to_string())].last_used.lock().unwrap() =
            Instant::now() - Duration::from_secs(200);
        assert_eq!(instances.expire(Duration::from_secs(120)), 1);
        assert_eq!(instances.get("g", "old").err().map(|e| e.code), Some(40403));
    }
}

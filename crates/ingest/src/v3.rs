//! The REST Proxy v3 produce API, the one Confluent now recommends:
//! `POST /v3/clusters/{cluster_id}/topics/{topic}/records` with one record,
//! or several concatenated JSON records in one body (the streamed form), and
//! the two listings a v3 client starts with, `GET /v3/clusters` and
//! `GET /v3/clusters/{cluster_id}/topics`. The cluster id is the broker's.
//!
//! One record: the answer's HTTP status is the outcome (200, or the error's
//! status with the v3 error body `{"error_code": <status>, "message": ..}`).
//! Several: HTTP 200 and one delivery report per record, in order, each with
//! its own `error_code` (200 when stored), as the streamed form defines.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::errors::{ProxyError, is_retriable};
use crate::state::{AppState, read_body};

const JSON: &str = "application/json";

/// The v3 routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v3/clusters", get(list_clusters))
        .route("/v3/clusters/{cluster_id}/topics", get(list_topics))
        .route("/v3/clusters/{cluster_id}/topics/{topic}/records", post(produce))
}

/// A v3 error: the HTTP status is the error code.
#[derive(Debug, Clone)]
pub struct V3Error {
    status: StatusCode,
    message: String,
}

impl V3Error {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn body(&self) -> Value {
        json!({ "error_code": self.status.as_u16(), "message": self.message })
    }
}

impl From<ProxyError> for V3Error {
    fn from(e: ProxyError) -> Self {
        Self { status: e.status(), message: e.message }
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        json_answer(self.status, &self.body())
    }
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp
}

impl AppState {
    /// The broker's cluster id, asked once.
    async fn cluster_id(&self) -> Result<String, V3Error> {
        if let Some(id) = self.cluster_id.get() {
            return Ok(id.clone());
        }
        let client = self.producer.clone();
        let id = tokio::task::spawn_blocking(move || client.client().fetch_cluster_id(Duration::from_secs(5)))
            .await
            .map_err(|e| V3Error::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .ok_or_else(|| V3Error::new(StatusCode::SERVICE_UNAVAILABLE, "the broker did not tell its cluster id; retry the request"))?;
        Ok(self.cluster_id.get_or_init(|| id).clone())
    }

    async fn check_cluster(&self, cluster_id: &str) -> Result<String, V3Error> {
        let ours = self.cluster_id().await?;
        if ours != cluster_id {
            return Err(V3Error::new(StatusCode::NOT_FOUND, format!("Cluster {cluster_id} cannot be found (this proxy serves {ours}).")));
        }
        Ok(ours)
    }
}

/// The base URL clients used, for the `self` links.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/v3")
}

pub async fn list_clusters(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, V3Error> {
    let id = state.cluster_id().await?;
    let base = base_url(&headers);
    let cluster = format!("{base}/clusters/{id}");
    let related = |what: &str| json!({ "related": format!("{cluster}/{what}") });
    let data = json!({
        "kind": "KafkaCluster",
        "metadata": { "self": cluster, "resource_name": format!("crn:///kafka={id}") },
        "cluster_id": id,
        "brokers": related("brokers"),
        "topics": related("topics"),
    });
    Ok(json_answer(
        StatusCode::OK,
        &json!({ "kind": "KafkaClusterList", "metadata": { "self": format!("{base}/clusters"), "next": null }, "data": [data] }),
    ))
}

pub async fn list_topics(
    State(state): State<Arc<AppState>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, V3Error> {
    let id = state.check_cluster(&cluster_id).await?;
    let md = state.all_metadata().await?;
    let base = format!("{}/clusters/{id}/topics", base_url(&headers));
    let mut topics: Vec<_> = md.topics().iter().filter(|t| !t.partitions().is_empty()).collect();
    topics.sort_by_key(|t| t.name());
    let data: Vec<Value> = topics
        .iter()
        .map(|t| {
            let name = t.name();
            let this = format!("{base}/{name}");
            json!({
                "kind": "KafkaTopic",
                "metadata": { "self": this, "resource_name": format!("crn:///kafka={id}/topic={name}") },
                "cluster_id": id,
                "topic_name": name,
                "is_internal": name.starts_with("__"),
                "replication_factor": t.partitions().first().map_or(0, |p| p.replicas().len()),
                "partitions_count": t.partitions().len(),
                "partitions": { "related": format!("{this}/partitions") },
                "configs": { "related": format!("{this}/configs") },
            })
        })
        .collect();
    Ok(json_answer(StatusCode::OK, &json!({ "kind": "KafkaTopicList", "metadata": { "self": base, "next": null }, "data": data })))
}

/// One v3 record: `{"partition_id"?, "headers"?, "key"?, "value"?, "timestamp"?}`
/// with key and value as `{"type": "BINARY"|"JSON"|"STRING", "data": ..}`.
struct V3Record {
    partition: Option<i32>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    key: Option<(&'static str, Vec<u8>)>,
    value: Option<(&'static str, Vec<u8>)>,
    timestamp: Option<i64>,
}

/// The bytes of a key or value.
fn data_bytes<'a>(data: &'a Option<(&'static str, Vec<u8>)>) -> Option<&'a [u8]> {
    data.as_ref().map(|(_, b)| b.as_slice())
}

fn bad(message: impl Into<String>) -> V3Error {
    V3Error::new(StatusCode::BAD_REQUEST, message)
}

fn parse_record(raw: &RawValue) -> Result<V3Record, V3Error> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|_| bad("a record must be a JSON object: {\"value\": {\"type\": \"JSON\", \"data\": ...}}"))?;
    let partition = match v.get("partition_id") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| bad(format!("partition_id {p} is not a partition number")))?,
        ),
    };
    let mut headers = Vec::new();
    if let Some(list) = v.get("headers").filter(|h| !h.is_null()) {
        for h in list.as_array().ok_or_else(|| bad("headers must be an array of {\"name\", \"value\"}"))? {
            let name = h.get("name").and_then(Value::as_str).ok_or_else(|| bad("every header needs a string name"))?;
            let value = match h.get("value") {
                None | Some(Value::Null) => None,
                Some(Value::String(b64)) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| bad(format!("header {name}: value is not base64: {e}")))?,
                ),
                Some(_) => return Err(bad(format!("header {name}: value must be a base64 string"))),
            };
            headers.push((name.to_string(), value));
        }
    }
    let timestamp = match v.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| bad(format!("timestamp {s:?} is not an RFC 3339 instant: {e}")))?
                .timestamp_millis(),
        ),
        Some(other) => return Err(bad(format!("timestamp {other} must be an RFC 3339 string"))),
    };
    Ok(V3Record { partition, headers, key: data(&v, "key")?, value: data(&v, "value")?, timestamp })
}

/// A key or value: its bytes and its type name as answers report it.
fn data(record: &serde_json::Map<String, Value>, field: &str) -> Result<Option<(&'static str, Vec<u8>)>, V3Error> {
    let Some(d) = record.get(field).filter(|d| !d.is_null()) else { return Ok(None) };
    let ty = d.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase);
    let payload = d.get("data").unwrap_or(&Value::Null);
    match ty.as_deref() {
        Some("JSON") => Ok(Some(("JSON", payload.to_string().into_bytes()))),
        Some("STRING") => match payload {
            Value::String(s) => Ok(Some(("STRING", s.clone().into_bytes()))),
            _ => Err(bad(format!("{field}: STRING data must be a string"))),
        },
        Some("BINARY") => match payload {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| Some(("BINARY", b)))
                .map_err(|e| bad(format!("{field}: BINARY data is not base64: {e}"))),
            _ => Err(bad(format!("{field}: BINARY data must be a base64 string"))),
        },
        Some("AVRO" | "PROTOBUF" | "JSONSCHEMA") => {
            Err(bad(format!("{field}: schema types need a Schema Registry, which this server has not; use BINARY, JSON or STRING")))
        }
        Some(other) => Err(bad(format!("{field}: unknown type {other}; use BINARY, JSON or STRING"))),
        None => Err(bad(format!("{field}: give its type (BINARY, JSON or STRING) next to its data"))),
    }
}

pub async fn produce(
    State(state): State<Arc<AppState>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, V3Error> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if media.as_deref() != Some(JSON) {
        return Err(V3Error::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the v3 API takes Content-Type: application/json"));
    }
    let cluster_id = state.check_cluster(&cluster_id).await?;
    let bytes = read_body(&state, body).await?;
    // One JSON record, or several concatenated (the streamed form).
    let mut raws = Vec::new();
    for item in serde_json::Deserializer::from_slice(&bytes).into_iter::<&RawValue>() {
        raws.push(item.map_err(|e| bad(format!("the body is not JSON records: {e}")))?);
    }
    if raws.is_empty() {
        return Err(bad("the body holds no record"));
    }
    let _records_budget = state.reserve_records(raws.len(), bytes.len())?;
    let info = state.topic(&topic).await.map_err(|e| match e.code {
        40401 => V3Error::new(StatusCode::NOT_FOUND, "This server does not host this topic-partition."),
        _ => e.into(),
    })?;
    let limit = state.config.max_record_bytes();
    let mut reports = Vec::with_capacity(raws.len());
    // Records are sent in order, each awaited: a streamed client's reports
    // come back in the order of its records.
    let pending: Vec<_> = raws
        .iter()
        .map(|raw| {
            let record = parse_record(raw)?;
            if let Some(p) = record.partition
                && !info.partitions.iter().any(|pi| pi.id == p)
            {
                return Err(V3Error::new(StatusCode::NOT_FOUND, "This server does not host this topic-partition."));
            }
            let size = data_bytes(&record.key).map_or(0, <[u8]>::len) + data_bytes(&record.value).map_or(0, <[u8]>::len);
            if size > limit {
                return Err(V3Error::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the record is {size} bytes, above the producer's message.max.bytes of {limit}"),
                ));
            }
            Ok(record)
        })
        .collect();
    let sends = pending.iter().map(|r| async {
        let r = r.as_ref().map_err(V3Error::clone)?;
        let mut rec = state.record_to(&topic, info.partitions.len(), r.partition, data_bytes(&r.key), data_bytes(&r.value));
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        if !r.headers.is_empty() {
            let mut h = rdkafka::message::OwnedHeaders::new();
            for (name, value) in &r.headers {
                h = h.insert(rdkafka::message::Header { key: name, value: value.as_deref() });
            }
            rec = rec.headers(h);
        }
        state.producer.send(rec, Timeout::After(state.config.delivery_timeout)).await.map_err(|(e, _)| {
            let status = if is_retriable(&e) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
            V3Error::new(status, e.to_string())
        })
    });
    let started = std::time::Instant::now();
    let results = futures::future::join_all(sends).await;
    let (mut stored, mut failed) = (0u64, 0u64);
    for (r, result) in pending.iter().zip(results) {
        let report = match result {
            Ok(delivery) => {
                stored += 1;
                let r = r.as_ref().expect("sent records parsed");
                let ts = delivery.timestamp.to_millis().or(r.timestamp);
                let mut report = json!({
                    "error_code": 200,
                    "cluster_id": cluster_id,
                    "topic_name": topic,
                    "partition_id": delivery.partition,
                    "offset": delivery.offset,
                });
                if let Some(ts) = ts.and_then(chrono::DateTime::from_timestamp_millis) {
                    report["timestamp"] = json!(ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                }
                for (field, d) in [("key", &r.key), ("value", &r.value)] {
                    if let Some((ty, bytes)) = d {
                        report[field] = json!({ "type": ty, "size": bytes.len() });
                    }
                }
                Ok(report)
            }
            Err(e) => {
                failed += 1;
                Err(e)
            }
        };
        reports.push(report);
    }
    state.metrics.produced(stored, failed, started.elapsed());
    if let [only] = reports.as_slice() {
        return match only {
            Ok(report) => Ok(json_answer(StatusCode::OK, report)),
            Err(e) => Err(e.clone()),
        };
    }
    let text: String = reports.iter().map(|r| r.as_ref().map_or_else(V3Error::body, Value::clone).to_string() + "\n").collect();
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(resp)
}

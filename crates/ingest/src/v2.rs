//! The REST Proxy v2 API (SPEC 3.1): produce to a topic or a partition,
//! and topic, partition and broker metadata. The v2 consumer API is in
//! `consumers`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use serde_json::{Value, json};

use crate::errors::{CONTENT_TYPE_V2, ProxyError, is_retriable};
use crate::negotiation;
use crate::request::parse_produce;
use crate::state::{AppState, PartitionInfo, TopicInfo, read_body};

pub(crate) fn v2_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
    resp
}

/// The v2 topic, partition and broker routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { v2_json(StatusCode::OK, json!({})) }))
        .route("/topics", get(list_topics))
        .route("/topics/{topic}", post(produce).get(get_topic))
        .route("/topics/{topic}/partitions", get(get_partitions))
        .route("/topics/{topic}/partitions/{partition}", post(produce_to_partition).get(get_partition))
        .route("/topics/{topic}/partitions/{partition}/offsets", get(partition_offsets))
        .route("/brokers", get(brokers))
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
    let _records_budget = state.reserve_records(records.len(), bytes.len())?;
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
                    ProxyError::record_refused_as_too_large(i, records[i].size())
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

//! API Gateway's Kinesis routes (SPEC 3.2), served next to the REST proxy
//! so that an emulator's `--target` is the same locally and against the
//! deployed gateway. Each route calls the Kinesis action the gateway's
//! mapping template calls (templates::apigateway::KINESIS_ROUTES) and
//! answers with that action's JSON.
//!
//! One deliberate difference: the deployed gateway maps only a 200
//! response, so Kinesis errors arrive there with status 200; here they keep
//! Kinesis's status (400 for a missing stream, 503 when Kinesis is
//! unreachable), with Kinesis's `{"__type", "message"}` body.

use std::sync::Arc;

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use serde_json::value::RawValue;

use crate::state::{AppState, RequestBody, read_body};

/// Kinesis's error shape.
#[derive(Debug)]
pub struct KinesisError {
    status: StatusCode,
    kind: String,
    message: String,
}

impl KinesisError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self { status, kind: kind.into(), message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
        action: &str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Self {
        match &e {
            SdkError::ServiceError(se) => {
                let status = StatusCode::from_u16(se.raw().status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let kind = e.code().unwrap_or("KinesisError").to_string();
                Self::new(status, &kind, e.message().unwrap_or("Kinesis refused the request").to_string())
            }
            _ => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("{action}: Kinesis is not reachable ({}); retry later", aws_sdk_kinesis::error::DisplayErrorContext(&e)),
            ),
        }
    }
}

impl IntoResponse for KinesisError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(json!({"__type": self.kind, "message": self.message}))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

type Answer = Result<axum::Json<Value>, KinesisError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/streams", get(list_streams))
        .route("/streams/{stream}", get(describe_stream).post(create_stream).delete(delete_stream))
        .route("/streams/{stream}/record", put(put_record))
        .route("/streams/{stream}/records", put(put_records))
}

/// The Kinesis client, made on first use: a server used only as a REST
/// proxy never loads an AWS configuration (on a laptop that means asking
/// the instance-metadata service for a region, and logging that it failed).
async fn client(state: &AppState) -> Result<&aws_sdk_kinesis::Client, KinesisError> {
    let Some(target) = &state.config.kinesis else {
        return Err(KinesisError::new(
            StatusCode::NOT_FOUND,
            "NotConfigured",
            "the Kinesis routes are off: start `pipeline ingest` with --kinesis (and --aws-endpoint-url for a local emulator)",
        ));
    };
    // Not checked for credentials: without them a route answers with the
    // SDK's error, and the REST proxy keeps serving.
    Ok(state.kinesis.get_or_init(|| async { aws_sdk_kinesis::Client::new(&target.load().await) }).await)
}

/// PutRecord's body. Fields are kept as the JSON text they came as: a body
/// is read without building a tree of its values, whose memory grew many
/// times the body's size (issue 38). `null` reads as absent.
#[derive(serde::Deserialize)]
struct PutRecordBody<'a> {
    #[serde(rename = "Data", borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "PartitionKey", borrow, default)]
    partition_key: Option<&'a RawValue>,
}

/// PutRecords' body, as the gateway's mapping template reads it.
#[derive(serde::Deserialize)]
struct PutRecordsBody<'a> {
    #[serde(borrow, default, deserialize_with = "kinesis_batch")]
    records: Option<Vec<RecordsEntry<'a>>>,
}

#[derive(serde::Deserialize)]
struct RecordsEntry<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "partition-key", borrow, default)]
    partition_key: Option<&'a RawValue>,
}

/// Kinesis takes at most this many records per PutRecords.
const MAX_RECORDS: usize = 500;

/// The `records` list, refused while it is read once it passes
/// [`MAX_RECORDS`]: a body of a million tiny entries is never held as one.
fn kinesis_batch<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<RecordsEntry<'de>>>, D::Error> {
    struct Batch;
    impl<'de> serde::de::Visitor<'de> for Batch {
        type Value = Option<Vec<RecordsEntry<'de>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of {\"data\": ..., \"partition-key\": ...}")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = seq.next_element()? {
                if entries.len() == MAX_RECORDS {
                    return Err(serde::de::Error::custom(format_args!(
                        "`records` holds more than {MAX_RECORDS} entries; Kinesis takes 1 to {MAX_RECORDS}"
                    )));
                }
                entries.push(entry);
            }
            Ok(Some(entries))
        }
    }
    d.deserialize_any(Batch)
}

/// A stream route's body, read within the in-flight budget.
async fn read_text(state: &AppState, body: Body) -> Result<RequestBody, KinesisError> {
    read_body(state, body).await.map_err(|e| KinesisError::new(e.status(), "ValidationException", e.message))
}

/// The body parsed as `T`. An empty body reads as `{}`; a body that is not
/// JSON is Kinesis's SerializationException, one of the wrong shape a
/// ValidationException.
fn parse<'a, T: serde::Deserialize<'a>>(text: &'a [u8]) -> Result<T, KinesisError> {
    let text: &[u8] = if text.iter().all(u8::is_ascii_whitespace) { b"{}" } else { text };
    serde_json::from_slice(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => KinesisError::bad_request(e.to_string()),
        _ => KinesisError::new(StatusCode::BAD_REQUEST, "SerializationException", format!("body is not JSON: {e}")),
    })
}

/// The record bytes: a string as it is, anything else as its compact JSON
/// text (what the gateway's `$input.json('$.Data')` produces).
fn data_bytes(data: &RawValue) -> Result<Vec<u8>, KinesisError> {
    let text = data.get();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| KinesisError::bad_request(format!("data: {e}")))?;
        return Ok(s.into_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    pipeline_runtime::json::append_compact_parsed(&mut out, text.as_bytes())
        .map_err(|e| KinesisError::bad_request(format!("data: {e}")))?;
    Ok(out)
}

fn partition_key(v: Option<&RawValue>, field: &str) -> Result<String, KinesisError> {
    let Some(v) = v else { return Err(KinesisError::bad_request(format!("`{field}` is required"))) };
    match serde_json::from_str::<String>(v.get()) {
        Ok(s) if !s.is_empty() && s.chars().count() <= 256 => Ok(s),
        _ => Err(KinesisError::bad_request(format!("`{field}` must be a string of 1 to 256 characters"))),
    }
}

async fn put_record(State(state): State<Arc<AppState>>, Path(stream): Path<String>, body: Body) -> Answer {
    let kinesis = client(&state).await?;
    let text = read_text(&state, body).await?;
    let req: PutRecordBody<'_> = parse(&text)?;
    let Some(data) = req.data else {
        return Err(KinesisError::bad_request("`Data` is required: the record (a JSON value) to put"));
    };
    let key = partition_key(req.partition_key, "PartitionKey")?;
    let out = kinesis
        .put_record()
        .stream_name(&stream)
        .data(Blob::new(data_bytes(data)?))
        .partition_key(key)
        .send()
        .await
        .map_err(|e| KinesisError::from_sdk("PutRecord", e))?;
    state.metrics.kinesis_records(1);
    Ok(axum::Json(json!({"SequenceNumber": out.sequence_number(), "ShardId": out.shard_id()})))
}

async fn put_records(State(state): State<Arc<AppState>>, Path(stream): Path<String>, body: Body) -> Answer {
    let kinesis = client(&state).await?;
    let text = read_text(&state, body).await?;
    let req: PutRecordsBody<'_> = parse(&text)?;
    let Some(records) = req.records else {
        return Err(KinesisError::bad_request("`records` must be a list of {\"data\": ..., \"partition-key\": ...}"));
    };
    // Kinesis's own bounds (the upper one is kept while parsing), checked
    // here so the answer names the field.
    if records.is_empty() {
        return Err(KinesisError::bad_request(format!("`records` holds 0 entries; Kinesis takes 1 to {MAX_RECORDS}")));
    }
    let mut entries = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let Some(data) = r.data else {
            return Err(KinesisError::bad_request(format!("records[{i}]: `data` is required")));
        };
        let key = partition_key(r.partition_key, "partition-key")
            .map_err(|e| KinesisError::bad_request(format!("records[{i}]: {}", e.message)))?;
        entries.push(
            PutRecordsRequestEntry::builder().data(Blob::new(data_bytes(data)?)).partition_key(key).build().expect("data and key set"),
        );
    }
    let out = kinesis
        .put_records()
        .stream_name(&stream)
        .set_records(Some(entries))
        .send()
        .await
        .map_err(|e| KinesisError::from_sdk("PutRecords", e))?;
    let answered: Vec<Value> = out
        .records()
        .iter()
        .map(|r| match r.error_code() {
            Some(code) => json!({"ErrorCode": code, "ErrorMessage": r.error_message()}),
            None => json!({"SequenceNumber": r.sequence_number(), "ShardId": r.shard_id()}),
        })
        .collect();
    let failed = out.failed_record_count().unwrap_or(0);
    state.metrics.kinesis_records(answered.len() as u64 - failed as u64);
    Ok(axum::Json(json!({"FailedRecordCount": failed, "Records": answered})))
}

async fn list_streams(State(state): State<Arc<AppState>>) -> Answer {
    let kinesis = client(&state).await?;
    let mut names: Vec<String> = Vec::new();
    loop {
        let page = kinesis
            .list_streams()
            .set_exclusive_start_stream_name(names.last().cloned())
            .send()
            .await
            .map_err(|e| KinesisError::from_sdk("ListStreams", e))?;
        names.extend(page.stream_names().iter().cloned());
        if !page.has_more_streams() || page.stream_names().is_empty() {
            break;
        }
    }
    Ok(axum::Json(json!({"HasMoreStreams": false, "StreamNames": names})))
}

async fn describe_stream(State(state): State<Arc<AppState>>, Path(stream): Path<String>) -> Answer {
    let kinesis = client(&state).await?;
    let out = kinesis.describe_stream().stream_name(&stream).send().await.map_err(|e| KinesisError::from_sdk("DescribeStream", e))?;
    let Some(d) = out.stream_description() else {
        return Err(KinesisError::new(StatusCode::BAD_GATEWAY, "KinesisError", "DescribeStream answered without a description"));
    };
    let shards: Vec<Value> = d
        .shards()
        .iter()
        .map(|s| {
            json!({
                "ShardId": s.shard_id(),
                "HashKeyRange": s.hash_key_range().map(|h| json!({"StartingHashKey": h.starting_hash_key(), "EndingHashKey": h.ending_hash_key()})),
                "SequenceNumberRange": s.sequence_number_range().map(|r| json!({"StartingSequenceNumber": r.starting_sequence_number(), "EndingSequenceNumber": r.ending_sequence_number()})),
            })
        })
        .collect();
    Ok(axum::Json(json!({"StreamDescription": {
        "StreamName": d.stream_name(),
        "StreamARN": d.stream_arn(),
        "StreamStatus": d.stream_status().as_str(),
        "Shards": shards,
        "HasMoreShards": d.has_more_shards(),
        "RetentionPeriodHours": d.retention_period_hours(),
    }})))
}

async fn create_stream(State(state): State<Arc<AppState>>, Path(stream): Path<String>, body: Body) -> Answer {
    let kinesis = client(&state).await?;
    #[derive(serde::Deserialize)]
    struct CreateStreamBody<'a> {
        #[serde(rename = "ShardCount", borrow, default)]
        shard_count: Option<&'a RawValue>,
    }
    let text = read_text(&state, body).await?;
    let req: CreateStreamBody<'_> = parse(&text)?;
    // The gateway's template defaults to 5 shards.
    let shards = match req.shard_count {
        None => 5,
        Some(v) => serde_json::from_str::<i64>(v.get())
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| KinesisError::bad_request("`ShardCount` must be a whole number from 1"))? as i32,
    };
    kinesis.create_stream().stream_name(&stream).shard_count(shards).send().await.map_err(|e| KinesisError::from_sdk("CreateStream", e))?;
    Ok(axum::Json(json!({})))
}

async fn delete_stream(State(state): State<Arc<AppState>>, Path(stream): Path<String>) -> Answer {
    let kinesis = client(&state).await?;
    kinesis.delete_stream().stream_name(&stream).send().await.map_err(|e| KinesisError::from_sdk("DeleteStream", e))?;
    Ok(axum::Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PutRecords body is refused once its list passes Kinesis's 500
    /// while it is read: a body of a million tiny entries is never held.
    #[test]
    fn a_records_list_is_refused_while_it_is_read_once_it_passes_500() {
        let entry = r#"{"data": {"a": 1}, "partition-key": "k"}"#;
        let body = |n: usize| format!(r#"{{"records": [{}]}}"#, vec![entry; n].join(","));
        let text = body(MAX_RECORDS);
        let full: PutRecordsBody = parse(text.as_bytes()).unwrap();
        assert_eq!(full.records.map(|r| r.len()), Some(MAX_RECORDS));
        let over = parse::<PutRecordsBody>(body(MAX_RECORDS + 1).as_bytes()).err().unwrap();
        assert_eq!((over.status, over.kind.as_str()), (StatusCode::BAD_REQUEST, "ValidationException"));
        assert!(over.message.contains("more than 500"), "{}", over.message);
        let broken = parse::<PutRecordsBody>(b"{\"records\": [").err().unwrap();
        assert_eq!(broken.kind, "SerializationException");
        for absent in [&b"  "[..], br#"{"records": null}"#, br#"{"other": [1, 2]}"#] {
            assert!(parse::<PutRecordsBody>(absent).unwrap().records.is_none());
        }
        let wrong = parse::<PutRecordsBody>(br#"{"records": "x"}"#).err().unwrap();
        assert_eq!(wrong.kind, "ValidationException", "{}", wrong.message);
    }

    /// A string is sent as its text, anything else as compact JSON, keys
    /// and numbers as the client wrote them.
    #[test]
    fn data_is_sent_as_the_gateway_sends_it() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        assert_eq!(data_bytes(&raw(r#""a\"b""#)).unwrap(), b"a\"b");
        assert_eq!(data_bytes(&raw(r#"{ "z": [1, 2.50], "a": null }"#)).unwrap(), br#"{"z":[1,2.50],"a":null}"#);
    }
}

//! Error answers of the Confluent REST Proxy v2 (SPEC 3.1): body
//! `{"error_code": <int>, "message": <string>}`, with the HTTP status the
//! proxy uses for each code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde_json::json;

pub const CONTENT_TYPE_V2: &str = "application/vnd.kafka.v2+json";

/// A REST Proxy error code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyError {
    pub code: u32,
    pub message: String,
}

impl ProxyError {
    pub fn topic_not_found(topic: &str) -> Self {
        Self { code: 40401, message: format!("Topic {topic} not found.") }
    }
    /// A name Kafka's rule refuses: no such topic can exist (`why` says
    /// which part of the rule), so not found, and not worth a retry.
    pub fn invalid_topic_name(why: &str) -> Self {
        Self { code: 40401, message: format!("Topic not found: {why}, so no topic has this name.") }
    }
    pub fn partition_not_found(topic: &str, partition: i32) -> Self {
        Self { code: 40402, message: format!("Partition {partition} of topic {topic} not found.") }
    }
    pub fn unsupported_media_type(got: Option<&str>, why: &str) -> Self {
        let got = got.unwrap_or("none");
        Self {
            code: 415,
            message: format!(
                "HTTP 415 Unsupported Media Type: `{got}`: {why}; use application/vnd.kafka.json.v2+json (JSON values) or application/vnd.kafka.binary.v2+json (base64 values)"
            ),
        }
    }
    /// A consumer group that is not the client's to join.
    pub fn reserved_group(group: &str) -> Self {
        Self {
            code: 40301,
            message: format!(
                "Consumer group {group} is reserved: the pipeline's S3 sink commits its progress there, and a REST consumer's commits would make it skip records; use another group"
            ),
        }
    }
    pub fn unauthorized(header: &str) -> Self {
        Self { code: 40101, message: format!("Unauthorized: this server requires the header `{header}` with the deployment's value") }
    }
    pub fn not_acceptable(accept: &str, served: &[&str]) -> Self {
        Self { code: 406, message: format!("HTTP 406 Not Acceptable: `{accept}` accepts none of {}", served.join(", ")) }
    }
    pub fn record_too_large(i: usize, bytes: usize, limit: usize) -> Self {
        Self {
            code: 42206,
            message: format!(
                "Invalid payload: record {i} is {bytes} bytes, more than the producer sends ({limit} bytes, its message.max.bytes); split it, or raise the limit on the broker and with -X message.max.bytes=N"
            ),
        }
    }
    /// The broker refused a record the producer's own limit let through.
    pub fn record_refused_as_too_large(i: usize, bytes: usize) -> Self {
        Self {
            code: 42206,
            message: format!(
                "Invalid payload: record {i} ({bytes} bytes) is larger than the broker or topic accepts (the broker's message.max.bytes, the topic's max.message.bytes); split it or raise those limits"
            ),
        }
    }
    pub fn body_too_large(limit: usize) -> Self {
        Self { code: 413, message: format!("Request body is larger than the limit of {limit} bytes; send fewer records per request") }
    }
    /// The body broke off (the client hung up, or sent a broken chunked encoding).
    pub fn unreadable_body(e: &dyn std::fmt::Display) -> Self {
        Self { code: 400, message: format!("Request body could not be read: {e}") }
    }
    pub fn too_many_records(records: usize, most: usize) -> Self {
        Self {
            code: 413,
            message: format!(
                "Request holds {records} records; at most {most} fit in the server's memory budget at once: send fewer per request"
            ),
        }
    }
    pub fn body_timeout(after: std::time::Duration) -> Self {
        Self { code: 408, message: format!("Request body not received within {after:?}; send it at once (slow clients are cut off)") }
    }
    pub fn json_conversion(detail: impl std::fmt::Display) -> Self {
        Self { code: 42203, message: format!("JSON conversion failed: {detail}") }
    }
    /// The reference's 40903: a request the consumer's state does not allow.
    pub fn illegal_state(detail: impl std::fmt::Display) -> Self {
        Self { code: 40903, message: format!("Illegal state: {detail}") }
    }
    pub fn invalid_payload(detail: impl std::fmt::Display) -> Self {
        Self { code: 42206, message: format!("Invalid payload: {detail}") }
    }
    pub fn empty_records() -> Self {
        Self { code: 422, message: "Payload error. Request includes zero records.".into() }
    }
    pub fn kafka(detail: impl std::fmt::Display) -> Self {
        Self { code: 50002, message: format!("Kafka error: {detail}") }
    }
    pub fn kafka_retriable(detail: impl std::fmt::Display) -> Self {
        Self { code: 50003, message: format!("Kafka retriable error: {detail}; retry the request") }
    }
    pub fn broker_not_available(detail: impl std::fmt::Display) -> Self {
        Self { code: 50302, message: format!("Broker not available: {detail}; retry the request") }
    }
    pub fn busy(budget: usize) -> Self {
        Self {
            code: 429,
            message: format!("Too many request bytes in flight (limit {budget} bytes over all requests); retry the request shortly"),
        }
    }
    /// At the limit of open connections or of requests in flight: answered
    /// at once, never queued, so the client can go elsewhere or come back.
    pub fn overloaded(what: &str) -> Self {
        Self { code: 50301, message: format!("Server at its limit of {what}; retry the request shortly") }
    }
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self { code: 405, message: format!("HTTP 405 Method Not Allowed: {method} is not served on {path}") }
    }
    pub fn not_found(path: &str) -> Self {
        Self { code: 404, message: format!("HTTP 404 Not Found: no endpoint {path}") }
    }

    /// The HTTP status the proxy answers with for this code.
    pub fn status(&self) -> StatusCode {
        let leading = match self.code {
            c if c >= 10_000 => c / 100,
            c => c,
        };
        StatusCode::from_u16(leading as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The answer's JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error_code": self.code, "message": self.message })
    }

    /// Whether a client should retry the same request later.
    pub fn retriable(&self) -> bool {
        matches!(self.code, 429 | 50003 | 50301 | 50302)
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retriable = self.retriable();
        let mut resp = (status, axum::Json(self.body())).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
        if retriable {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Whether a Kafka error may pass if the client sends the request again
/// (a 503 with Retry-After), as opposed to one it must fix first.
pub(crate) fn is_retriable(e: &KafkaError) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_error_code() {
        assert_eq!(ProxyError::topic_not_found("t").status(), StatusCode::NOT_FOUND);
        assert_eq!(ProxyError::partition_not_found("t", 3).status(), StatusCode::NOT_FOUND);
        assert_eq!(ProxyError::unsupported_media_type(None, "x").status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(ProxyError::not_acceptable("text/html", &[CONTENT_TYPE_V2]).status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(ProxyError::record_too_large(0, 2, 1).status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ProxyError::json_conversion("x").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ProxyError::invalid_payload("x").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ProxyError::empty_records().status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ProxyError::kafka("x").status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ProxyError::kafka_retriable("x").status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ProxyError::broker_not_available("x").status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ProxyError::body_too_large(1).status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(ProxyError::method_not_allowed("PUT", "/topics/t").status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}

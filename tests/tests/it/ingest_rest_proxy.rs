//! The ingest server against the real broker: what the REST Proxy v2 API
//! promises (SPEC 3.1), checked from the outside with an HTTP client.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use contract::Kind;
use pipeline_ingest::{self as ingest, IngestConfig, RunningIngest};
use serde_json::{Value, json};

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

async fn start(max_body_bytes: usize) -> (RunningIngest, String) {
    let config =
        IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), max_body_bytes, ..Default::default() };
    let server = ingest::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    (server, base)
}

async fn post(base: &str, topic: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/topics/{topic}")).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/vnd.kafka.v2+json", "status {status}");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn acknowledged_records_are_in_kafka_at_the_answered_offsets() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let topic = names.topic(Kind::Pin);
    let (server, base) = start(8 << 20).await;
    let source = pipeline_emulate::generate::SyntheticSource::new(11, 500);

    let mut expected: HashMap<(i32, i64), Vec<u8>> = HashMap::new();
    // One record per request, as the original emulator sends them.
    for i in 0..30 {
        let value = serde_json::to_value(source.round(i).pin).unwrap();
        let (status, body) = post(&base, &topic, Some(JSON_V2), json!({ "records": [{ "value": value }] }).to_string()).await;
        assert_eq!(status, 200, "{body}");
        let o = &body["offsets"][0];
        assert!(o["error_code"].is_null() && o["error"].is_null());
        assert!(body["key_schema_id"].is_null() && body["value_schema_id"].is_null());
        expected.insert((o["partition"].as_i64().unwrap() as i32, o["offset"].as_i64().unwrap()), serde_json::to_vec(&value).unwrap());
    }
    // Many records per request; offsets come back one per record, in order.
    let values: Vec<Value> = (30..130).map(|i| serde_json::to_value(source.round(i).pin).unwrap()).collect();
    let records: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
    let (status, body) = post(&base, &topic, Some(JSON_V2), json!({ "records": records }).to_string()).await;
    assert_eq!(status, 200, "{body}");
    let offsets = body["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 100);
    for (o, v) in offsets.iter().zip(&values) {
        expected.insert((o["partition"].as_i64().unwrap() as i32, o["offset"].as_i64().unwrap()), serde_json::to_vec(v).unwrap());
    }
    assert_eq!(expected.len(), 130, "no two records share an offset");
    let used: HashSet<i32> = expected.keys().map(|(p, _)| *p).collect();
    assert_eq!(used.len(), 3, "records without key or partition go round-robin");

    assert_eq!(common::consume_all(&topic, 130).await, expected);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn keys_partitions_and_binary_values_are_honoured() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Geo);
    common::create_topics(std::slice::from_ref(&topic), 3).await;
    let (server, base) = start(8 << 20).await;

    let (status, body) = post(&base, &topic, Some(JSON_V2), json!({"records": [{"value": {"a": 1}, "partition": 2}]}).to_string()).await;
    assert_eq!((status, body["offsets"][0]["partition"].as_i64()), (200, Some(2)));
    // The same key always lands on the same partition.
    let mut key_partitions = HashSet::new();
    for _ in 0..5 {
        let (_, body) = post(&base, &topic, Some(JSON_V2), json!({"records": [{"key": "user-9", "value": 1}]}).to_string()).await;
        key_partitions.insert(body["offsets"][0]["partition"].as_i64().unwrap());
    }
    assert_eq!(key_partitions.len(), 1);
    let (status, body) =
        post(&base, &topic, Some("application/vnd.kafka.binary.v2+json"), json!({"records": [{"value": "bm90IGpzb24="}]}).to_string())
            .await;
    assert_eq!(status, 200, "{body}");
    let at = (body["offsets"][0]["partition"].as_i64().unwrap() as i32, body["offsets"][0]["offset"].as_i64().unwrap());
    let stored = common::consume_all(&topic, 7).await;
    assert_eq!(stored[&at], b"not json");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_documented_error_is_answered_with_its_code() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::User);
    common::create_topics(std::slice::from_ref(&topic), 3).await;
    let (server, base) = start(4096).await;
    let one = json!({"records": [{"value": {"ind": 1}}]}).to_string();

    let cases: Vec<(&str, Option<&str>, String, u16, i64)> = vec![
        ("unknown topic", Some(JSON_V2), one.clone(), 404, 40401),
        ("unknown partition", Some(JSON_V2), json!({"records": [{"value": 1, "partition": 7}]}).to_string(), 404, 40402),
        ("wrong content type", Some("text/plain"), one.clone(), 415, 415),
        // No Content-Type is application/octet-stream: binary, so a JSON value is refused.
        ("no content type", None, one.clone(), 422, 42206),
        ("v1 content type", Some("application/vnd.kafka.json.v1+json"), one.clone(), 415, 415),
        ("empty records", Some(JSON_V2), r#"{"records":[]}"#.into(), 422, 422),
        ("malformed JSON", Some(JSON_V2), r#"{"records":[{"value":"#.into(), 422, 42203),
        ("records not an array", Some(JSON_V2), r#"{"records":{"value":1}}"#.into(), 422, 42206),
        ("record not an object", Some(JSON_V2), r#"{"records":[42]}"#.into(), 422, 42206),
        ("oversize body", Some(JSON_V2), json!({"records": [{"value": "x".repeat(5000)}]}).to_string(), 413, 413),
    ];
    for (what, ct, body, status, code) in cases {
        let target = if what == "unknown topic" { format!("{}-missing", topic) } else { topic.clone() };
        let (got_status, got) = post(&base, &target, ct, body).await;
        assert_eq!((got_status, got["error_code"].as_i64()), (status, Some(code)), "{what}: {got}");
        assert!(got["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: message");
    }

    // Invalid UTF-8 is a conversion failure, not a crash.
    let (status, got) = post(&base, &topic, Some(JSON_V2), vec![0xff, 0xfe, 0x00]).await;
    assert_eq!((status, got["error_code"].as_i64()), (422, Some(42203)));

    // Names Kafka's rule refuses are answered before librdkafka sees them
    // (a 600-character one used to panic inside rdkafka, a NUL was a 503
    // "retry"): not found, naming the rule, whether produced to or read.
    for (name, why) in [("bad%20name", "' '"), ("nul%00", "'\\0'"), (&"x".repeat(600), "at most 249")] {
        let (status, got) = post(&base, name, Some(JSON_V2), one.clone()).await;
        assert_eq!((status, got["error_code"].as_i64()), (404, Some(40401)), "POST {name}: {got}");
        assert!(got["message"].as_str().unwrap().contains(why), "POST {name}: {got}");
        let resp = reqwest::get(format!("{base}/topics/{name}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "GET {name}");
    }

    // The read endpoints.
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, body) = get("/topics").await;
    assert_eq!(s, 200);
    let topics: Vec<String> = serde_json::from_str(&body).unwrap();
    assert!(topics.contains(&topic) && !topics.iter().any(|t| t.starts_with("__")));
    let (s, body) = get(&format!("/topics/{topic}")).await;
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, t["name"].as_str(), t["partitions"].as_array().map(Vec::len)), (200, Some(topic.as_str()), Some(3)));
    let (s, body) = get(&format!("/topics/{topic}/partitions")).await;
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, p[0]["replicas"][0]["in_sync"].as_bool()), (200, Some(true)));
    let (s, body) = get("/topics/nope-not-here").await;
    assert_eq!((s, serde_json::from_str::<Value>(&body).unwrap()["error_code"].as_i64()), (404, Some(40401)));
    let (s, body) = get("/brokers").await;
    assert_eq!((s, serde_json::from_str::<Value>(&body).unwrap()["brokers"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(get("/healthz").await.0, 200);
    let (s, body) = get("/no/such/endpoint").await;
    assert_eq!((s, serde_json::from_str::<Value>(&body).unwrap()["error_code"].as_i64()), (404, Some(404)));
    let put = reqwest::Client::new().put(format!("{base}/topics/{topic}")).body("{}").send().await.unwrap();
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(put.headers()["content-type"], "application/vnd.kafka.v2+json");
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["error_code"], 405, "{body}");
    let (s, metrics) = get("/metrics").await;
    assert_eq!(s, 200);
    assert!(metrics.contains("pipeline_ingest_http_responses_total{status=\"415\"} 2"), "{metrics}");
    // Nothing was produced: no record series yet.
    assert!(!metrics.contains("pipeline_ingest_records_total{"), "{metrics}");

    // Still serving after all of that.
    let (status, _) = post(&base, &topic, Some(JSON_V2), one).await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

/// Run one of the Python clients of tests/python/ in the clients venv with
/// `args` and an output path, and return the JSON report it wrote there.
async fn python_client(script: &str, args: &[&str]) -> Value {
    let python = common::python_from_env("PIPELINE_CLIENTS_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let run = tokio::process::Command::new(&python)
        .arg(common::tests_dir().join("python").join(script))
        .args(args)
        .arg(&out)
        .output()
        .await
        .unwrap();
    assert!(run.status.success(), "{script} failed: {}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// A third-party client: Python `requests`, written like the original
/// user_post_emulation.py, gets the answers it expects, and what it sent is
/// in Kafka at the offsets it was told.
#[tokio::test(flavor = "multi_thread")]
async fn python_requests_client_like_the_original_emulator() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let (server, base) = start(8 << 20).await;
    let rounds = 20;
    let report = python_client("rest_proxy_client.py", &[&base, names.uid(), &rounds.to_string()]).await;

    let mut expected: HashMap<String, HashMap<(i32, i64), Value>> = HashMap::new();
    for (sent, answer) in report["sent"].as_array().unwrap().iter().zip(report["answers"].as_array().unwrap()) {
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["content_type"], "application/vnd.kafka.v2+json");
        let o = &answer["body"]["offsets"][0];
        assert!(o["error_code"].is_null(), "{answer}");
        let at = (o["partition"].as_i64().unwrap() as i32, o["offset"].as_i64().unwrap());
        expected.entry(sent["topic"].as_str().unwrap().to_string()).or_default().insert(at, sent["value"].clone());
    }
    assert_eq!(expected.values().map(HashMap::len).sum::<usize>(), rounds * 3);
    for (topic, want) in &expected {
        let got = common::consume_all(topic, want.len()).await;
        for (at, value) in want {
            let stored: Value = serde_json::from_slice(&got[at]).unwrap();
            // Same value, same key order; the datetime as `default=str` wrote it.
            assert_eq!(stored.to_string(), value.to_string(), "{topic} {at:?}");
        }
    }
    let sample = &expected[&names.topic(Kind::Geo)].values().next().unwrap()["timestamp"];
    assert_eq!(sample, "2019-04-07 22:11:02");

    let topics: HashSet<&str> = report["topics"]["body"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(names.topics().iter().all(|t| topics.contains(t.as_str())), "{}", report["topics"]);
    assert_eq!(report["missing_topic"]["status"], 404);
    assert_eq!(report["missing_topic"]["body"]["error_code"], 40401);
    assert_eq!(report["wrong_content_type"]["status"], 415);
    assert_eq!(report["wrong_content_type"]["body"]["error_code"], 415);
    server.stop().await.unwrap();
}

/// A keep-alive client (aiohttp, one pooled connection) that sends a bad
/// request the server answers without reading its body, then a good one,
/// loses none of the good ones: each is answered 200 and is in Kafka.
#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_client_loses_no_request_after_an_early_answer() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 1).await;
    let topic = names.topic(Kind::Pin);
    let (server, base) = start(8 << 20).await;
    let rounds = 20;
    let report = python_client("keep_alive_client.py", &[&base, &topic, &rounds.to_string()]).await;

    let expected_status = [("unknown_route", 404), ("unsupported_media_type", 415), ("method_not_allowed", 405), ("body_on_a_get", 200)];
    let mut acknowledged = HashMap::new();
    for (case, status) in expected_status {
        let r = &report[case];
        assert!(r["statuses"].as_array().unwrap().iter().all(|s| s == status), "{case}: {}", r["statuses"]);
        let follow_ups = r["follow_ups"].as_array().unwrap();
        assert_eq!(follow_ups.len(), rounds);
        let lost: Vec<&Value> = follow_ups.iter().filter(|f| f["status"] != 200).collect();
        assert!(lost.is_empty(), "{case}: {} of {rounds} good requests after it failed: {lost:?}", lost.len());
        for f in follow_ups {
            let o = &f["offsets"][0];
            acknowledged.insert(o["offset"].as_i64().unwrap(), f["round"].as_i64().unwrap());
        }
    }
    let stored = common::consume_all(&topic, acknowledged.len()).await;
    for ((_, offset), value) in &stored {
        let value: Value = serde_json::from_slice(value).unwrap();
        assert_eq!(Some(&value["round"].as_i64().unwrap()), acknowledged.get(offset), "offset {offset}");
    }
    common::report_scenario(&common::ScenarioRow {
        scenario: "keep-alive client, good request after an early answer".into(),
        sent: (expected_status.len() * rounds) as u64,
        acknowledged: acknowledged.len() as u64,
        stored: stored.len() as u64,
        lost: (expected_status.len() * rounds - stored.len()) as u64,
        duplicated: 0,
        good_client_p99: None,
    });
    server.stop().await.unwrap();
}

/// No broker reachable: the server stays up and answers 503 / 50302 with a
/// retry hint, never a 200.
#[tokio::test]
async fn without_a_broker_requests_get_50302_and_a_retry_hint() {
    // A port nobody listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: dead.to_string(), ..Default::default() };
    let server = ingest::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    for _ in 0..2 {
        let resp = reqwest::Client::new()
            .post(format!("{base}/topics/any.pin"))
            .header("Content-Type", JSON_V2)
            .body(json!({"records": [{"value": {"a": 1}}]}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error_code"], 50302, "{body}");
        assert!(body["message"].as_str().unwrap().contains("retry"), "{body}");
    }
    let brokers = reqwest::get(format!("{base}/brokers")).await.unwrap();
    assert_eq!(brokers.status().as_u16(), 503, "reads say the same");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert!(health.status().is_success() || health.status().as_u16() == 503, "the server itself is up");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn partition_endpoints_content_negotiation_and_record_limits_answer_as_the_proxy() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Geo);
    common::create_topics(std::slice::from_ref(&topic), 3).await;
    let (server, base) = start(4 << 20).await;
    let http = reqwest::Client::new();
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        (status, ct, resp.json::<Value>().await.unwrap())
    };

    // Produce to one partition: JSON and binary, with keys; offsets follow.
    let url = format!("{base}/topics/{topic}/partitions/2");
    let (s, _, body) = send(
        http.post(&url)
            .header("Content-Type", JSON_V2)
            .body(json!({"records": [{"value": {"ind": 1}}, {"key": "k", "value": {"ind": 2}}]}).to_string()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["offsets"].as_array().unwrap().iter().all(|o| o["partition"] == 2), "{body}");
    let (s, _, body) = send(
        http.post(&url)
            .header("Content-Type", "application/vnd.kafka.binary.v2+json")
            .body(json!({"records": [{"key": "a2V5", "value": "aGVsbG8="}]}).to_string()),
    )
    .await;
    assert_eq!((s, body["offsets"][0]["partition"].as_i64(), body["offsets"][0]["offset"].as_i64()), (200, Some(2), Some(2)), "{body}");
    let in_kafka = common::consume_all(&topic, 3).await;
    assert_eq!(in_kafka[&(2, 2)], b"hello");
    assert!(in_kafka.keys().all(|(p, _)| *p == 2));

    let (s, _, body) = send(http.get(format!("{base}/topics/{topic}/partitions/2/offsets"))).await;
    assert_eq!((s, &body), (200, &json!({"beginning_offset": 0, "end_offset": 3})));
    let (s, _, body) = send(http.get(format!("{base}/topics/{topic}/partitions/2"))).await;
    assert_eq!((s, body["partition"].as_i64(), body["replicas"][0]["leader"].as_bool()), (200, Some(2), Some(true)), "{body}");

    // Unknown partitions and topics, on every partition endpoint.
    for (method, path) in [("POST", "/partitions/3"), ("GET", "/partitions/3"), ("GET", "/partitions/3/offsets")] {
        let req = if method == "POST" {
            http.post(format!("{base}/topics/{topic}{path}"))
                .header("Content-Type", JSON_V2)
                .body(json!({"records": [{"value": 1}]}).to_string())
        } else {
            http.get(format!("{base}/topics/{topic}{path}"))
        };
        let (s, _, body) = send(req).await;
        assert_eq!((s, body["error_code"].as_i64()), (404, Some(40402)), "{method} {path}: {body}");
        let (s, _, body) = send(http.get(format!("{base}/topics/{topic}-missing{path}"))).await;
        assert_eq!((s, body["error_code"].as_i64()), (404, Some(40401)), "{path}: {body}");
    }
    let (s, _, body) = send(http.get(format!("{base}/topics/{topic}/partitions/two"))).await;
    assert_eq!((s, body["error_code"].as_i64()), (404, Some(404)));
    let (s, _, body) =
        send(http.post(&url).header("Content-Type", JSON_V2).body(json!({"records": [{"value": 1, "partition": 0}]}).to_string())).await;
    assert_eq!((s, body["error_code"].as_i64()), (422, Some(42206)), "a record naming another partition: {body}");

    // The topic's configs come from the broker.
    let (s, _, body) = send(http.get(format!("{base}/topics/{topic}"))).await;
    assert_eq!(s, 200);
    assert_eq!(body["configs"]["cleanup.policy"], "delete", "{body}");
    assert!(body["configs"]["retention.ms"].as_str().is_some_and(|v| v.parse::<i64>().is_ok()), "{body}");

    // Less specific content types: binary assumed.
    for ct in ["application/vnd.kafka.v2+json", "application/vnd.kafka+json", "application/json", "application/octet-stream"] {
        let (s, _, body) = send(
            http.post(format!("{base}/topics/{topic}"))
                .header("Content-Type", ct)
                .body(json!({"records": [{"value": "eA=="}]}).to_string()),
        )
        .await;
        assert_eq!(s, 200, "{ct}: {body}");
        let (s, _, body) = send(
            http.post(format!("{base}/topics/{topic}"))
                .header("Content-Type", ct)
                .body(json!({"records": [{"value": {"ind": 1}}]}).to_string()),
        )
        .await;
        assert_eq!((s, body["error_code"].as_i64()), (422, Some(42206)), "{ct}: {body}");
        assert!(body["message"].as_str().unwrap().contains("application/vnd.kafka.json.v2+json"), "the fix is named: {body}");
    }
    let (s, _, body) =
        send(http.post(format!("{base}/topics/{topic}")).header("Content-Type", "application/vnd.kafka.avro.v2+json").body("{}")).await;
    assert_eq!((s, body["error_code"].as_i64()), (415, Some(415)));
    assert!(body["message"].as_str().unwrap().contains("Schema Registry"), "{body}");

    // Accept: the answer's type, or 406.
    let (s, ct, _) = send(http.get(format!("{base}/topics")).header("Accept", "application/json")).await;
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    let (s, ct, _) =
        send(http.get(format!("{base}/topics")).header("Accept", "application/vnd.kafka.v2+json; q=0.9, application/json; q=0.5")).await;
    assert_eq!((s, ct.as_str()), (200, "application/vnd.kafka.v2+json"));
    let (s, ct, body) = send(
        http.post(format!("{base}/topics/{topic}"))
            .header("Content-Type", JSON_V2)
            .header("Accept", "text/html")
            .body(json!({"records": [{"value": 1}]}).to_string()),
    )
    .await;
    assert_eq!((s, ct.as_str(), body["error_code"].as_i64()), (406, "application/vnd.kafka.v2+json", Some(406)), "{body}");

    // A record above the producer's limit: 422 before Kafka, not a 5xx;
    // the same bytes spread over records are stored.
    let big = "x".repeat(pipeline_ingest::DEFAULT_MAX_RECORD_BYTES + 10);
    let (s, _, body) = send(
        http.post(format!("{base}/topics/{topic}")).header("Content-Type", JSON_V2).body(json!({"records": [{"value": big}]}).to_string()),
    )
    .await;
    assert_eq!((s, body["error_code"].as_i64()), (422, Some(42206)), "{}", &body.to_string()[..200.min(body.to_string().len())]);
    assert!(body["message"].as_str().unwrap().contains("message.max.bytes"));
    let half = "x".repeat(pipeline_ingest::DEFAULT_MAX_RECORD_BYTES / 2);
    let (s, _, _) = send(
        http.post(format!("{base}/topics/{topic}"))
            .header("Content-Type", JSON_V2)
            .body(json!({"records": [{"value": half}, {"value": half}]}).to_string()),
    )
    .await;
    assert_eq!(s, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_required_header_keeps_out_requests_without_it_and_never_shows_its_value() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let secret = format!("secret-{}", uuid::Uuid::new_v4());
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        required_header: Some(ingest::RequiredHeader::new("X-Pipeline-Origin", secret.clone()).unwrap()),
        ..Default::default()
    };
    assert!(!format!("{config:?}").contains(&secret), "the config's Debug shows no secret");
    let server = ingest::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let body = json!({"records": [{"value": {"index": 1}}]}).to_string();
    let post = |value: Option<String>| {
        let mut req = http.post(format!("{base}/topics/{topic}")).header("Content-Type", JSON_V2).body(body.clone());
        if let Some(v) = value {
            req = req.header("X-Pipeline-Origin", v);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for wrong in [None, Some(String::new()), Some(format!("{secret}x")), Some(secret[..secret.len() - 1].to_string())] {
        let (status, text) = post(wrong.clone()).await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status, answer["error_code"].as_i64()), (401, Some(40101)), "{wrong:?}: {text}");
        assert!(!text.contains(&secret), "{text}");
    }
    assert_eq!(post(Some(secret.clone())).await.0, 200);
    // Other routes are guarded too; the health check is not.
    assert_eq!(http.get(format!("{base}/topics")).send().await.unwrap().status(), 401);
    assert_eq!(http.put(format!("{base}/streams/s/record")).body("{}").send().await.unwrap().status(), 401);
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    server.stop().await.unwrap();
}

/// `pipeline emulate --api-key-file` against an ingest server that requires
/// the key (`--require-header x-api-key`, as a deployment without API
/// Gateway would run it): without the key nothing is accepted or stored;
/// with it every record is.
#[tokio::test]
async fn emulate_sends_the_api_key_and_without_it_nothing_is_stored() {
    use pipeline_emulate::{self as emulate, ApiKey, EmulateConfig, RowSource};
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 1).await;
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let server = ingest::start(IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        required_header: Some(ingest::RequiredHeader::new(templates::apigateway::API_KEY_HEADER, key.clone()).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let config = |api_key: Option<ApiKey>| EmulateConfig {
        mode: Default::default(),
        target: format!("http://{}", server.local_addr),
        names: names.clone(),
        source: RowSource::Synthetic(pipeline_emulate::generate::SyntheticSource::new(3, 500)),
        rounds: Some(20),
        duration: None,
        rate: None,
        batch: 1,
        concurrency: 4,
        retries: 0,
        offset_seed: 4,
        progress: false,
        api_key,
    };
    let without = emulate::run(config(None)).await.unwrap();
    assert_eq!((without.sent, without.acked), (60, 0), "{without:?}");
    assert!(without.errors.iter().any(|e| e.starts_with("401") && e.contains("--api-key-file")), "{:?}", without.errors);
    let wrong = emulate::run(config(Some(ApiKey::new(format!("{key}x")).unwrap()))).await.unwrap();
    assert_eq!(wrong.acked, 0, "{wrong:?}");
    let with = emulate::run(config(Some(ApiKey::new(format!("{key}\n")).unwrap()))).await.unwrap();
    assert_eq!((with.sent, with.acked), (60, 60), "{:?}", with.errors);
    let mut stored = 0;
    for kind in Kind::ALL {
        stored += common::consume_all(&names.topic(kind), 20).await.len() as u64;
    }
    assert_eq!(stored, with.acked, "only the authenticated records are in Kafka");
    common::report_scenario(&common::ScenarioRow {
        scenario: "requests without or with a wrong API key".into(),
        sent: without.sent + wrong.sent,
        acknowledged: without.acked + wrong.acked,
        stored: stored - with.acked,
        lost: 0,
        duplicated: 0,
        good_client_p99: None,
    });
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_v3_produce_api_stores_single_and_streamed_records_and_lists_the_cluster() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::User);
    common::create_topics(std::slice::from_ref(&topic), 2).await;
    let (server, base) = start(8 << 20).await;
    let http = reqwest::Client::new();

    // The cluster id is the broker's: the same one an admin client sees.
    let clusters: Value = http.get(format!("{base}/v3/clusters")).send().await.unwrap().json().await.unwrap();
    let id = clusters["data"][0]["cluster_id"].as_str().unwrap().to_string();
    use rdkafka::producer::Producer as _;
    let probe: rdkafka::producer::BaseProducer =
        pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[]).create().unwrap();
    assert_eq!(Some(id.clone()), probe.client().fetch_cluster_id(Duration::from_secs(5)));
    let topics: Value = http.get(format!("{base}/v3/clusters/{id}/topics")).send().await.unwrap().json().await.unwrap();
    let listed = topics["data"].as_array().unwrap().iter().find(|t| t["topic_name"] == topic.as_str()).expect("the topic is listed");
    assert_eq!((listed["partitions_count"].as_i64(), listed["cluster_id"].as_str()), (Some(2), Some(id.as_str())));

    let url = format!("{base}/v3/clusters/{id}/topics/{topic}/records");
    let post = |body: String| {
        let req = http.post(&url).header("Content-Type", "application/json").body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // One record: JSON value, STRING key, a header, an explicit partition.
    let (s, text) = post(
        json!({"partition_id": 1, "headers": [{"name": "h", "value": "aGk="}], "key": {"type": "STRING", "data": "k1"}, "value": {"type": "JSON", "data": {"ind": 1}}}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (report["error_code"].as_i64(), report["partition_id"].as_i64(), report["offset"].as_i64()),
        (Some(200), Some(1), Some(0)),
        "{report}"
    );
    assert_eq!((report["key"]["type"].as_str(), report["value"]["size"].as_i64()), (Some("STRING"), Some(9)));
    // Streamed form: several concatenated records, one report each, in order.
    let streamed = [
        json!({"partition_id": 0, "value": {"type": "BINARY", "data": "aGVsbG8="}}),
        json!({"partition_id": 0, "value": {"type": "AVRO", "data": {}}}),
        json!({"partition_id": 0, "value": {"type": "JSON", "data": [1, 2]}}),
    ];
    let (s, text) = post(streamed.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).await;
    assert_eq!(s, 200, "{text}");
    let reports: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.iter().map(|r| r["error_code"].as_i64().unwrap()).collect::<Vec<_>>(), [200, 400, 200], "{text}");
    assert_eq!((reports[0]["offset"].as_i64(), reports[2]["offset"].as_i64()), (Some(0), Some(1)));
    let stored = common::consume_all(&topic, 3).await;
    assert_eq!(
        (stored[&(1, 0)].as_slice(), stored[&(0, 0)].as_slice(), stored[&(0, 1)].as_slice()),
        (&br#"{"ind":1}"#[..], &b"hello"[..], &b"[1,2]"[..])
    );

    // Errors: the v3 body, the status as its code.
    for (what, target, body, status) in [
        (
            "unknown cluster",
            format!("{base}/v3/clusters/nope/topics/{topic}/records"),
            json!({"value": {"type": "JSON", "data": 1}}).to_string(),
            404,
        ),
        (
            "unknown topic",
            format!("{base}/v3/clusters/{id}/topics/{topic}-missing/records"),
            json!({"value": {"type": "JSON", "data": 1}}).to_string(),
            404,
        ),
        ("unknown partition", url.clone(), json!({"partition_id": 9, "value": {"type": "JSON", "data": 1}}).to_string(), 404),
        ("no type", url.clone(), json!({"value": {"data": 1}}).to_string(), 400),
        ("not JSON", url.clone(), "{oops".to_string(), 400),
    ] {
        let resp = http.post(&target).header("Content-Type", "application/json").body(body).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error_code"].as_i64(), Some(status as i64), "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let wrong_type = http.post(&url).header("Content-Type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(wrong_type.status().as_u16(), 415);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v2_consumers_read_json_and_binary_commit_offsets_and_expire_when_idle() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Geo);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        consumer_idle: Duration::from_secs(2),
        ..Default::default()
    };
    let server = ingest::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let v2 = "application/vnd.kafka.v2+json";
    let values: Vec<Value> = (0..5).map(|i| json!({"ind": i, "country": format!("c{i}")})).collect();
    let records: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
    let (s, _) = post(&base, &topic, Some(JSON_V2), json!({ "records": records }).to_string()).await;
    assert_eq!(s, 200);

    let group = format!("{}-readers", names.uid());
    let create = |body: Value| {
        let req = http.post(format!("{base}/consumers/{group}")).header("Content-Type", v2).body(body.to_string());
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (s, made) = create(json!({"name": "a", "format": "json", "auto.offset.reset": "earliest"})).await;
    assert_eq!((s, made["instance_id"].as_str()), (200, Some("a")), "{made}");
    assert!(made["base_uri"].as_str().unwrap().ends_with(&format!("/consumers/{group}/instances/a")));
    let (s, dup) = create(json!({"name": "a", "format": "json"})).await;
    assert_eq!((s, dup["error_code"].as_i64()), (409, Some(40902)));
    let (s, bad) = create(json!({"name": "c", "format": "avro"})).await;
    assert_eq!((s, bad["error_code"].as_i64()), (422, Some(42206)), "{bad}");
    let inst = format!("{base}/consumers/{group}/instances/a");
    let both = http
        .post(format!("{inst}/subscription"))
        .header("Content-Type", v2)
        .body(json!({"topics": [topic], "topic_pattern": "x.*"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!((both.status().as_u16(), both.json::<Value>().await.unwrap()["error_code"].as_i64()), (409, Some(40903)));
    let nobody = http.post(format!("{base}/consumers/{group}/instances/nobody/subscription")).body("{}").send().await.unwrap();
    assert_eq!((nobody.status().as_u16(), nobody.json::<Value>().await.unwrap()["error_code"].as_i64()), (404, Some(40403)));
    let sub = http
        .post(format!("{inst}/subscription"))
        .header("Content-Type", v2)
        .body(json!({"topics": [topic]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(sub.status().as_u16(), 204);
    let listed: Value = http.get(format!("{inst}/subscription")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["topics"], json!([topic]));

    // Read until all five arrive (the first fetches join the group).
    let mut got: Vec<Value> = Vec::new();
    let started = std::time::Instant::now();
    while got.len() < 5 && started.elapsed() < Duration::from_secs(30) {
        let resp = http.get(format!("{inst}/records?timeout=1000")).header("Accept", JSON_V2).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], JSON_V2);
        got.extend(resp.json::<Vec<Value>>().await.unwrap());
    }
    assert_eq!(got.iter().map(|r| r["value"].clone()).collect::<Vec<_>>(), values, "every record, in order, as JSON");
    assert!(got.iter().all(|r| r["topic"] == topic.as_str() && r["key"].is_null()));
    // Commit up to the third record (offset 2): the group resumes at 3.
    let commit = http
        .post(format!("{inst}/offsets"))
        .header("Content-Type", v2)
        .body(json!({"offsets": [{"topic": topic, "partition": 0, "offset": 2}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(commit.status().as_u16(), 204, "a commit answers No Content, as the reference does");
    assert_eq!(http.delete(&inst).send().await.unwrap().status().as_u16(), 204);
    assert_eq!(http.delete(&inst).send().await.unwrap().status().as_u16(), 404);

    // A binary instance in the same group starts after the commit.
    let (s, _) = create(json!({"name": "b", "format": "binary", "auto.offset.reset": "earliest"})).await;
    assert_eq!(s, 200);
    let inst_b = format!("{base}/consumers/{group}/instances/b");
    http.post(format!("{inst_b}/subscription"))
        .header("Content-Type", v2)
        .body(json!({"topics": [topic]}).to_string())
        .send()
        .await
        .unwrap();
    // Committing what was read, with nothing read yet: a no-op, not an error.
    let nothing = http.post(format!("{inst_b}/offsets")).header("Content-Type", v2).body("{}").send().await.unwrap();
    assert_eq!(nothing.status().as_u16(), 204, "{}", nothing.text().await.unwrap());
    let mut rest: Vec<Value> = Vec::new();
    let started = std::time::Instant::now();
    while rest.len() < 2 && started.elapsed() < Duration::from_secs(30) {
        let resp = http.get(format!("{inst_b}/records?timeout=1000")).send().await.unwrap();
        rest.extend(resp.json::<Vec<Value>>().await.unwrap());
    }
    assert_eq!(rest.iter().map(|r| r["offset"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 4], "{rest:?}");
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, rest[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), values[3]);

    // Unused for longer than the idle time: closed and forgotten.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let gone = http.get(format!("{inst_b}/records")).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    assert_eq!(gone.json::<Value>().await.unwrap()["error_code"], 40403);
    server.stop().await.unwrap();
}

/// More of the reference's v2 consumer API, as a topic browser drives it:
/// a manual assignment, committed offsets read back, and a subscription
/// removed; with the reference's 40903 for what the instance's state does
/// not allow.
#[tokio::test]
async fn v2_consumers_assign_read_committed_offsets_and_unsubscribe() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let (server, base) = start(1 << 20).await;
    let records: Vec<Value> = (0..5).map(|i| json!({"value": {"n": i}})).collect();
    let (s, _) = post(&base, &topic, Some(JSON_V2), json!({ "records": records }).to_string()).await;
    assert_eq!(s, 200);
    let http = reqwest::Client::new();
    let v2 = "application/vnd.kafka.v2+json";
    let call = |method: reqwest::Method, url: String, body: Value| {
        let req = http.request(method, url).header("Content-Type", v2).body(body.to_string());
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
        }
    };
    let group = format!("{}-browser", names.uid());
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{base}/consumers/{group}"),
        json!({"name": "m", "format": "json", "auto.offset.reset": "earliest"}),
    )
    .await;
    assert_eq!(s, 200);
    let inst = format!("{base}/consumers/{group}/instances/m");
    let part = json!({"partitions": [{"topic": topic, "partition": 0}]});
    let offsets_read = |from: Vec<Value>| from.iter().map(|r| r["offset"].as_i64().unwrap()).collect::<Vec<_>>();
    let read = |want: usize| {
        let http = http.clone();
        let url = format!("{inst}/records?timeout=500");
        async move {
            let mut got: Vec<Value> = Vec::new();
            let started = std::time::Instant::now();
            while got.len() < want && started.elapsed() < Duration::from_secs(20) {
                got.extend(http.get(&url).send().await.unwrap().json::<Vec<Value>>().await.unwrap());
            }
            // Nothing beyond what was wanted.
            got.extend(http.get(&url).send().await.unwrap().json::<Vec<Value>>().await.unwrap());
            got
        }
    };

    assert_eq!(call(reqwest::Method::POST, format!("{inst}/assignments"), part.clone()).await.0, 204);
    let (s, assigned) = call(reqwest::Method::GET, format!("{inst}/assignments"), Value::Null).await;
    assert_eq!((s, assigned), (200, part.clone()));
    let (s, refused) = call(reqwest::Method::POST, format!("{inst}/subscription"), json!({"topics": [topic]})).await;
    assert_eq!((s, refused["error_code"].as_i64()), (409, Some(40903)), "assignment and subscription exclude each other: {refused}");

    assert_eq!(offsets_read(read(5).await), [0, 1, 2, 3, 4], "the assigned partition from its beginning");

    // Committed offsets, as Kafka keeps them: the next record to read.
    let (s, committed) = call(reqwest::Method::GET, format!("{inst}/offsets"), part.clone()).await;
    assert_eq!((s, committed), (200, json!({"offsets": []})), "no commit yet");
    let (s, _) =
        call(reqwest::Method::POST, format!("{inst}/offsets"), json!({"offsets": [{"topic": topic, "partition": 0, "offset": 1}]})).await;
    assert_eq!(s, 204);
    let (s, committed) = call(reqwest::Method::GET, format!("{inst}/offsets"), part.clone()).await;
    assert_eq!((s, committed["offsets"][0]["offset"].as_i64()), (200, Some(2)), "{committed}");

    // A subscribed instance's subscription removed.
    let (s, _) = call(reqwest::Method::POST, format!("{base}/consumers/{group}"), json!({"name": "s", "format": "binary"})).await;
    assert_eq!(s, 200);
    let inst_s = format!("{base}/consumers/{group}/instances/s");
    assert_eq!(call(reqwest::Method::POST, format!("{inst_s}/subscription"), json!({"topics": [topic]})).await.0, 204);
    assert_eq!(call(reqwest::Method::DELETE, format!("{inst_s}/subscription"), Value::Null).await.0, 204);
    let (s, listed) = call(reqwest::Method::GET, format!("{inst_s}/subscription"), Value::Null).await;
    assert_eq!((s, listed), (200, json!({"topics": []})));
    let (s, gone) = call(reqwest::Method::DELETE, format!("{base}/consumers/{group}/instances/nobody/subscription"), Value::Null).await;
    assert_eq!((s, gone["error_code"].as_i64()), (404, Some(40403)));
    server.stop().await.unwrap();
}

/// A JSON consumer meets a record that is not JSON between two that are:
/// the one before it is answered, the bad one is the next fetch's error
/// (naming where it is), and the one after comes next. Before, a fetch
/// that held the first when the second failed answered only the error,
/// and the first, already polled, was lost.
#[tokio::test]
async fn a_record_a_json_consumer_cannot_render_loses_none_polled_with_it() {
    use base64::Engine as _;
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Geo);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let (server, base) = start(8 << 20).await;
    let http = reqwest::Client::new();
    let values: [&[u8]; 3] = [b"{\"i\":0}", b"not json", b"{\"i\":2}"];
    let records: Vec<Value> = values.iter().map(|v| json!({"value": base64::engine::general_purpose::STANDARD.encode(v)})).collect();
    let (s, body) = post(&base, &topic, Some("application/vnd.kafka.binary.v2+json"), json!({ "records": records }).to_string()).await;
    assert_eq!(s, 200, "{body}");

    let v2 = "application/vnd.kafka.v2+json";
    let group = format!("{}-readers", names.uid());
    let made = http
        .post(format!("{base}/consumers/{group}"))
        .header("Content-Type", v2)
        .body(json!({"name": "j", "format": "json", "auto.offset.reset": "earliest"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    let inst = format!("{base}/consumers/{group}/instances/j");
    let sub = http.post(format!("{inst}/subscription")).header("Content-Type", v2).body(json!({"topics": [topic]}).to_string());
    assert_eq!(sub.send().await.unwrap().status(), 204);

    // What each fetch brought, in order: records by their "i", or the error.
    let mut seen: Vec<String> = Vec::new();
    let started = std::time::Instant::now();
    while seen.len() < 3 && started.elapsed() < Duration::from_secs(30) {
        let resp = http.get(format!("{inst}/records?timeout=1000")).header("Accept", JSON_V2).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        if status == 200 {
            seen.extend(body.as_array().unwrap().iter().map(|r| format!("record {}", r["value"]["i"])));
        } else {
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("{topic}/0/1")) && message.contains("binary consumer"), "{body}");
            seen.push(format!("error {}", body["error_code"]));
        }
    }
    assert_eq!(seen, ["record 0", "error 50002", "record 2"]);

    // Commits: for the partition it reads, yes; for any other, never.
    let commit = |partition: i32| {
        let offsets = json!({"offsets": [{"topic": topic, "partition": partition, "offset": 2}]});
        http.post(format!("{inst}/offsets")).header("Content-Type", v2).body(offsets.to_string()).send()
    };
    assert_eq!(commit(0).await.unwrap().status(), 204);
    let refused = commit(1).await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], 40903, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&format!("{topic}/1 is not assigned")), "{body}");
    server.stop().await.unwrap();
}

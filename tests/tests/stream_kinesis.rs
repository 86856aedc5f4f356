//! The stream path on moto's Kinesis: the ingest server's API Gateway
//! Kinesis routes (SPEC 3.2), and `pipeline stream` into Delta tables,
//! across a SIGKILL, read back by the `deltalake` Python package.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeline::generate::SyntheticSource;
use pipeline::ingest::IngestConfig;
use pipeline::records::{Kind, Names};
use serde_json::{Value, json};

async fn kinesis() -> aws_sdk_kinesis::Client {
    let aws = infra::aws::AwsTarget::emulator(common::s3_endpoint());
    aws_sdk_kinesis::Client::new(&aws.load().await)
}

async fn create_streams(names: &Names, shards: i32) {
    let k = kinesis().await;
    for kind in Kind::ALL {
        k.create_stream().stream_name(names.stream(kind)).shard_count(shards).send().await.unwrap();
    }
}

async fn ingest_server() -> pipeline::ingest::RunningIngest {
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        kinesis: Some(infra::aws::AwsTarget::emulator(common::s3_endpoint())),
        ..Default::default()
    };
    pipeline::ingest::start(config).await.unwrap()
}

/// Every record on every shard of a stream, in shard order.
async fn stream_contents(stream: &str) -> Vec<Vec<u8>> {
    let k = kinesis().await;
    let mut out = Vec::new();
    let shards = k.list_shards().stream_name(stream).send().await.unwrap();
    for s in shards.shards() {
        let it = k
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(s.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let recs = k.get_records().shard_iterator(it.shard_iterator().unwrap()).send().await.unwrap();
        out.extend(recs.records().iter().map(|r| r.data().as_ref().to_vec()));
    }
    out
}

#[tokio::test]
async fn the_kinesis_routes_answer_like_api_gateway_and_store_the_rows() {
    let names = common::fresh_names();
    let server = ingest_server().await;
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let stream = names.stream(Kind::Pin);

    let created = http.post(format!("{base}/streams/{stream}")).json(&json!({"ShardCount": 2})).send().await.unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let listed: Value = http.get(format!("{base}/streams")).send().await.unwrap().json().await.unwrap();
    assert!(listed["StreamNames"].as_array().unwrap().contains(&json!(stream)), "{listed}");
    let described: Value = http.get(format!("{base}/streams/{stream}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(described["StreamDescription"]["StreamName"], stream);
    assert_eq!(described["StreamDescription"]["Shards"].as_array().unwrap().len(), 2);

    // The original emulator's request: the row as `Data`, the stream from the path.
    let row = SyntheticSource::new(7, 100).round(3).value(Kind::Pin);
    let put = http
        .put(format!("{base}/streams/{stream}/record"))
        .json(&json!({"StreamName": "ignored-by-the-gateway", "Data": row, "PartitionKey": "partition-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let answer: Value = put.json().await.unwrap();
    assert!(answer["SequenceNumber"].is_string() && answer["ShardId"].is_string(), "{answer}");

    let rows: Vec<Value> = (10..15).map(|i| SyntheticSource::new(7, 100).round(i).value(Kind::Pin)).collect();
    let batch: Vec<Value> = rows.iter().map(|r| json!({"data": r, "partition-key": "p"})).collect();
    let answer: Value =
        http.put(format!("{base}/streams/{stream}/records")).json(&json!({"records": batch})).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["FailedRecordCount"], 0, "{answer}");
    assert_eq!(answer["Records"].as_array().unwrap().len(), 5);

    // In Kinesis: each record's data is the row's JSON text.
    let mut stored: Vec<Value> = stream_contents(&stream).await.iter().map(|d| serde_json::from_slice(d).unwrap()).collect();
    let mut want = vec![row];
    want.extend(rows);
    let key = |v: &Value| v["index"].as_i64().unwrap();
    stored.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(stored, want);

    // Errors carry Kinesis's type and a message.
    let missing = http
        .put(format!("{base}/streams/{}-absent/record", names.uid()))
        .json(&json!({"Data": {"a": 1}, "PartitionKey": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["__type"], "ResourceNotFoundException", "{body}");
    for (bad, field) in [(json!({"Data": {"a": 1}}), "PartitionKey"), (json!({"PartitionKey": "k"}), "Data")] {
        let resp = http.put(format!("{base}/streams/{stream}/record")).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["__type"], "ValidationException");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let not_json = http.put(format!("{base}/streams/{stream}/record")).body("{oops").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.json::<Value>().await.unwrap()["__type"], "SerializationException");

    let deleted = http.delete(format!("{base}/streams/{stream}")).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    server.stop().await.unwrap();
}

fn spawn_stream(names: &Names, output: &std::path::Path, idle: Option<f64>) -> Child {
    let mut cmd = Command::new(common::pipeline_bin());
    cmd.args(["stream", "--uid", names.uid(), "--max-records", "7", "--output"])
        .arg(output)
        .env("AWS_ENDPOINT_URL", common::s3_endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(idle) = idle {
        cmd.args(["--stop-when-idle", &idle.to_string()]);
    }
    cmd.spawn().expect("pipeline stream starts")
}

fn delta_versions(table: &std::path::Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count())
        .unwrap_or(0)
}

#[tokio::test]
async fn stream_worker_writes_each_record_once_to_delta_across_a_kill() {
    let names = common::fresh_names();
    create_streams(&names, 2).await;
    let server = ingest_server().await;
    let target = format!("http://{}", server.local_addr);
    let source = SyntheticSource::new(11, 1_000);
    let http = reqwest::Client::new();

    // Distinct rows (the cleaning drops exact duplicates), sent as the
    // original stream emulator sends them.
    let put_rounds = |range: std::ops::Range<u64>| {
        let (http, target, names) = (http.clone(), target.clone(), names.clone());
        async move {
            for i in range {
                let round = source.round(i);
                for kind in Kind::ALL {
                    let stream = names.stream(kind);
                    let body = json!({"StreamName": stream, "Data": round.value(kind), "PartitionKey": format!("p{i}")});
                    let resp = http.put(format!("{target}/streams/{stream}/record")).json(&body).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                }
            }
        }
    };
    put_rounds(0..60).await;
    // One bad record per stream: not JSON, not an object, a wrong type.
    let k = kinesis().await;
    for (kind, data) in [(Kind::Pin, &b"{not json"[..]), (Kind::Geo, &b"[1,2,3]"[..]), (Kind::User, &br#"{"ind":"x"}"#[..])] {
        k.put_record()
            .stream_name(names.stream(kind))
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .partition_key("bad")
            .send()
            .await
            .unwrap();
    }

    let out = tempfile::tempdir().unwrap();
    let pin_table = pipeline::stream::table_path(out.path(), &names, Kind::Pin);
    // Kill the worker once it has committed a few micro-batches (7 records each).
    let mut worker = spawn_stream(&names, out.path(), None);
    let started = Instant::now();
    while delta_versions(&pin_table) < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "no commits from the stream worker");
        std::thread::sleep(Duration::from_millis(20));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let committed_before_kill = delta_versions(&pin_table);

    put_rounds(60..90).await;
    let finisher = spawn_stream(&names, out.path(), Some(3.0));
    let output = finisher.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(delta_versions(&pin_table) > committed_before_kill, "the restart added commits");
    server.stop().await.unwrap();

    // Read by a second engine: the deltalake Python package.
    let python = common::python_from_env("PIPELINE_CLIENTS_PYTHON");
    let tables: Vec<_> = Kind::ALL.iter().map(|k| pipeline::stream::table_path(out.path(), &names, *k)).collect();
    let check = Command::new(python)
        .arg(common::tests_dir().join("python/delta_check.py"))
        .args(&tables)
        .output()
        .expect("python runs");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let read: BTreeMap<String, Value> = serde_json::from_slice(&check.stdout).unwrap();
    for (kind, table) in Kind::ALL.iter().zip(&tables) {
        let got = &read[&table.display().to_string()];
        let mut want: Vec<i64> = (0..90).map(|i| {
            let v = source.round(i).value(*kind);
            v.get("ind").or_else(|| v.get("index")).and_then(Value::as_i64).unwrap()
        }).collect();
        want.sort_unstable();
        let got_ind: Vec<i64> = got["ind"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(got_ind, want, "{kind}: every good record exactly once");
    }

    // The bad records: one dead letter each, with position and reason.
    let dl = out.path().join("_dead_letter");
    for kind in Kind::ALL {
        let files: Vec<_> = std::fs::read_dir(dl.join(names.stream(kind))).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(files.len(), 1, "{kind}");
        let letter: Value = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
        assert!(letter["sequence_number"].is_string() && letter["error"].is_string(), "{letter}");
    }
}

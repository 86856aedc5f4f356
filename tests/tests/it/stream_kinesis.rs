//! The stream path on moto's Kinesis: the ingest server's API Gateway
//! Kinesis routes (SPEC 3.2), and `pipeline stream` into Delta tables,
//! across a SIGKILL, read back by the `deltalake` Python package.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contract::{Kind, Names};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use pipeline_emulate::generate::SyntheticSource;
use pipeline_ingest::IngestConfig;
use pipeline_storage::Location;
use serde_json::{Value, json};

async fn kinesis() -> aws_sdk_kinesis::Client {
    let aws = aws_setup::AwsTarget::emulator(common::s3_endpoint());
    aws_sdk_kinesis::Client::new(&aws.load().await)
}

async fn create_streams(names: &Names, shards: i32) {
    let k = kinesis().await;
    for kind in Kind::ALL {
        k.create_stream().stream_name(names.stream(kind)).shard_count(shards).send().await.unwrap();
    }
}

async fn ingest_server() -> pipeline_ingest::RunningIngest {
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        kinesis: Some(aws_setup::AwsTarget::emulator(common::s3_endpoint())),
        ..Default::default()
    };
    pipeline_ingest::start(config).await.unwrap()
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

fn spawn_stream(names: &Names, output: impl AsRef<std::ffi::OsStr>, idle: Option<f64>) -> Child {
    spawn_stream_with(names, output, idle, Stdio::inherit())
}

/// Small pages by default, so that a run makes many commits.
fn spawn_stream_with(names: &Names, output: impl AsRef<std::ffi::OsStr>, idle: Option<f64>, stderr: Stdio) -> Child {
    spawn_stream_paged(names, output, idle, stderr, 7)
}

fn spawn_stream_paged(names: &Names, output: impl AsRef<std::ffi::OsStr>, idle: Option<f64>, stderr: Stdio, max_records: u32) -> Child {
    let mut cmd = Command::new(common::pipeline_bin());
    cmd.args(["stream", "--uid", names.uid(), "--max-records", &max_records.to_string(), "--output"])
        .arg(output)
        .env("AWS_ENDPOINT_URL", common::s3_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(stderr);
    if let Some(idle) = idle {
        cmd.args(["--stop-when-idle", &idle.to_string()]);
    }
    cmd.spawn().expect("pipeline stream starts")
}

/// Commits in a table's log, wherever the table lives.
async fn delta_versions(output: &Location, table: &str) -> usize {
    let store = pipeline_storage::open(output, &common::moto()).await.unwrap();
    let log = output.join(table).join("_delta_log").prefix();
    let listed: Vec<_> = store.list(Some(&log)).try_collect().await.unwrap_or_default();
    listed.iter().filter(|o| o.location.as_ref().ends_with(".json")).count()
}

/// Records put to Kinesis (60 rounds, one bad record per stream, 30 more
/// rounds), the worker SIGKILLed after 4 commits and restarted: every good
/// record is a row exactly once, as the `deltalake` Python package reads
/// the tables, and every bad one a dead letter.
async fn stream_to_delta_across_a_kill(output: Location, scenario: &str) {
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

    let pin_table = names.delta_table(Kind::Pin);
    // Kill the worker once it has committed a few micro-batches (7 records each).
    let mut worker = spawn_stream(&names, output.to_string(), None);
    let started = Instant::now();
    while delta_versions(&output, &pin_table).await < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "no commits from the stream worker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let committed_before_kill = delta_versions(&output, &pin_table).await;

    put_rounds(60..90).await;
    let finisher = spawn_stream(&names, output.to_string(), Some(3.0));
    let out = finisher.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(delta_versions(&output, &pin_table).await > committed_before_kill, "the restart added commits");
    server.stop().await.unwrap();

    // Read by a second engine: the deltalake Python package.
    let python = common::python_from_env("PIPELINE_CLIENTS_PYTHON");
    let tables: Vec<String> = Kind::ALL.iter().map(|k| output.join(&names.delta_table(*k)).to_string()).collect();
    let check = Command::new(python)
        .arg(common::tests_dir().join("python/delta_check.py"))
        .args(&tables)
        .env("AWS_ENDPOINT_URL", common::s3_endpoint())
        .output()
        .expect("python runs");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let read: BTreeMap<String, Value> = serde_json::from_slice(&check.stdout).unwrap();
    let (mut stored, mut lost, mut duplicated) = (0, 0, 0);
    for (kind, table) in Kind::ALL.iter().zip(&tables) {
        let got = &read[table];
        let mut want: Vec<i64> = (0..90)
            .map(|i| {
                let v = source.round(i).value(*kind);
                v.get("ind").or_else(|| v.get("index")).and_then(Value::as_i64).unwrap()
            })
            .collect();
        want.sort_unstable();
        let got_ind: Vec<i64> = got["ind"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let mut seen = std::collections::HashMap::new();
        for i in &got_ind {
            *seen.entry(*i).or_insert(0u64) += 1;
        }
        stored += got_ind.len() as u64;
        lost += want.iter().filter(|i| !seen.contains_key(i)).count() as u64;
        duplicated += seen.values().filter(|n| **n > 1).map(|n| n - 1).sum::<u64>();
        assert_eq!(got_ind, want, "{kind}: every good record exactly once");
    }
    common::report_scenario(&common::ScenarioRow {
        scenario: scenario.into(),
        sent: 270,
        acknowledged: 270,
        stored,
        lost,
        duplicated,
        good_client_p99: None,
    });

    // The bad records: one dead letter each, with position and reason.
    let dead = output.join("_dead_letter");
    let store = pipeline_storage::open(&dead, &common::moto()).await.unwrap();
    for kind in Kind::ALL {
        let stream = names.stream(kind);
        // The store is rooted at the bucket (S3) or at the directory itself.
        let prefix = match dead.prefix().as_ref() {
            "" => object_store::path::Path::from(stream),
            root => object_store::path::Path::from(format!("{root}/{stream}")),
        };
        let letters: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
        assert_eq!(letters.len(), 1, "{kind}");
        let body = store.get(&letters[0].location).await.unwrap().bytes().await.unwrap();
        let letter: Value = serde_json::from_slice(&body).unwrap();
        assert!(letter["sequence_number"].is_string() && letter["error"].is_string(), "{letter}");
    }
}

#[tokio::test]
async fn stream_worker_writes_each_record_once_to_delta_across_a_kill() {
    let out = tempfile::tempdir().unwrap();
    stream_to_delta_across_a_kill(Location::Local { dir: out.path().to_path_buf() }, "stream worker SIGKILLed, restarted (local Delta)")
        .await;
}

#[tokio::test]
async fn delta_tables_on_s3_commit_each_record_once_across_a_kill() {
    common::set_dummy_aws_env();
    let names = common::fresh_names();
    let bucket = names.sink_bucket();
    common::s3_client().await.create_bucket().bucket(&bucket).send().await.unwrap();
    let output = Location::parse(&format!("s3://{bucket}/delta")).unwrap();
    stream_to_delta_across_a_kill(output, "stream worker SIGKILLed, restarted (Delta on S3)").await;
}

/// Two workers started on the same tables at once: Delta's put-if-absent
/// commit on S3 lets only one write each version, and the worker that loses
/// a race stops with an error naming it instead of adding rows on top:
/// every record is a row exactly once.
#[tokio::test]
async fn a_second_writer_on_the_same_s3_tables_is_stopped_not_duplicated() {
    common::set_dummy_aws_env();
    let names = common::fresh_names();
    let bucket = names.sink_bucket();
    common::s3_client().await.create_bucket().bucket(&bucket).send().await.unwrap();
    create_streams(&names, 1).await;
    let k = kinesis().await;
    let source = SyntheticSource::new(21, 1_000);
    for i in 0..60 {
        let round = source.round(i);
        for kind in Kind::ALL {
            let data = serde_json::to_vec(&round.value(kind)).unwrap();
            k.put_record()
                .stream_name(names.stream(kind))
                .data(aws_sdk_kinesis::primitives::Blob::new(data))
                .partition_key("p")
                .send()
                .await
                .unwrap();
        }
    }
    let output = Location::parse(&format!("s3://{bucket}/delta")).unwrap();
    let workers = [0, 1].map(|_| spawn_stream_with(&names, output.to_string(), Some(2.0), Stdio::piped()));
    let mut failures = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    assert!(failures.len() <= 1, "one worker finishes: {failures:?}");
    for f in &failures {
        assert!(f.contains("another writer committed to Delta table"), "{f}");
    }

    let python = common::python_from_env("PIPELINE_CLIENTS_PYTHON");
    let tables: Vec<String> = Kind::ALL.iter().map(|k| output.join(&names.delta_table(*k)).to_string()).collect();
    let check = Command::new(python)
        .arg(common::tests_dir().join("python/delta_check.py"))
        .args(&tables)
        .env("AWS_ENDPOINT_URL", common::s3_endpoint())
        .output()
        .expect("python runs");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let read: BTreeMap<String, Value> = serde_json::from_slice(&check.stdout).unwrap();
    for table in &tables {
        let ind: Vec<i64> = read[table]["ind"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let mut distinct = ind.clone();
        distinct.dedup();
        assert_eq!((ind.len(), distinct.len()), (60, 60), "{table}: each record once");
    }
}

/// Every emulator variant seen in the wild, and records that are not rows,
/// through the Kinesis routes and `pipeline stream`: the Delta tables hold
/// the cleaned rows the batch job gives for the same records, every bad
/// record is dead-lettered, and the run's summary accounts for each record.
#[tokio::test]
async fn every_wire_variant_reaches_delta_as_the_batch_job_cleans_it() {
    use common::wild::{self, VARIANTS};
    let server = ingest_server().await;
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let rounds: Vec<_> = SyntheticSource::new(11, 150).random_rounds(3).take(200).collect();
    for variant in VARIANTS {
        let names = common::fresh_names();
        // One shard and every record posted before the worker starts: one
        // micro-batch per table, so duplicates are dropped across all rows.
        create_streams(&names, 1).await;
        for kind in Kind::ALL {
            let mut values: Vec<Value> = rounds.iter().map(|r| variant.encode(kind, r)).collect();
            values.extend(wild::bad_records(kind, &rounds[0]).into_iter().map(|(v, _)| v));
            for chunk in values.chunks(100) {
                let records: Vec<Value> = chunk.iter().map(|v| json!({"data": v, "partition-key": "p"})).collect();
                let answer: Value = http
                    .put(format!("{base}/streams/{}/records", names.stream(kind)))
                    .json(&json!({ "records": records }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer["FailedRecordCount"], 0, "{variant:?}: {answer}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_stream_paged(&names, dir.path(), Some(2.0), Stdio::piped(), 10_000);
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(child.wait().unwrap().success(), "{variant:?}: {stderr}");
        assert!(stderr.contains("cleaning summary"), "{stderr}");

        let (cleaned, _) = wild::expected_tables(variant, &rounds).await;
        let summary: pipeline_batch::CleaningSummary =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(pipeline_stream::SUMMARY_FILE)).unwrap()).unwrap();
        for (kind, want) in Kind::ALL.into_iter().zip(&cleaned) {
            let ctx = datafusion::prelude::SessionContext::new();
            let table = pipeline_stream::table_path(dir.path(), &names, kind);
            ctx.register_parquet("t", table.to_str().unwrap(), Default::default()).await.unwrap();
            let batches = ctx.sql("SELECT * FROM t").await.unwrap().collect().await.unwrap();
            wild::assert_same_rows(&format!("{variant:?} {kind}"), &wild::table_rows(&batches), &wild::table_rows(&want.batches));
            let s = summary.kind(kind);
            let bad = wild::bad_record_count(kind, &rounds[0]);
            assert_eq!(s.records_read, rounds.len() as u64 + bad, "{variant:?} {kind}: {s:?}");
            assert_eq!(s.records_read, s.rows + s.duplicates_dropped + s.quarantined, "{variant:?} {kind}: {s:?}");
            assert_eq!((s.quarantined, s.rows), (bad, want.rows() as u64), "{variant:?} {kind}");
            let dead = std::fs::read_dir(dir.path().join("_dead_letter").join(names.stream(kind))).unwrap().count();
            assert_eq!(dead, wild::bad_records(kind, &rounds[0]).len(), "{variant:?} {kind}: one dead letter per bad record");
        }
    }
    server.stop().await.unwrap();
}

/// The worker's metrics, scraped while it runs: records read per stream,
/// dead letters, rows committed, the Delta table's version and how far
/// behind each shard's tip it reads.
#[tokio::test]
async fn stream_metrics_show_reads_commits_versions_and_the_lag() {
    let names = common::fresh_names();
    create_streams(&names, 1).await;
    let k = kinesis().await;
    let source = SyntheticSource::new(23, 1_000);
    let pin = names.stream(Kind::Pin);
    for i in 0..12 {
        let data = source.round(i).value(Kind::Pin).to_string();
        k.put_record()
            .stream_name(&pin)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .partition_key(format!("p{i}"))
            .send()
            .await
            .unwrap();
    }
    k.put_record()
        .stream_name(&pin)
        .data(aws_sdk_kinesis::primitives::Blob::new(&b"{not json"[..]))
        .partition_key("bad")
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = pipeline_stream::StreamConfig {
        names: names.clone(),
        aws: aws_setup::AwsTarget::emulator(common::s3_endpoint()),
        output: Location::Local { dir: dir.path().to_path_buf() },
        dead_letter: None,
        max_records: 5,
        poll_interval: Duration::from_millis(100),
        stop_when_idle: None,
        metrics: Default::default(),
    };
    let mut registry = pipeline_runtime::metrics::Registry::default();
    config.metrics.register(&mut registry);
    let server = pipeline_runtime::metrics::serve("127.0.0.1:0".parse().unwrap(), std::sync::Arc::new(registry)).await.unwrap();
    let url = format!("http://{}/metrics", server.local_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(pipeline_stream::run_observed(
        config,
        async move {
            let _ = stopped.await;
        },
        |_| {},
    ));
    let value = common::metric_value;
    let table = names.delta_table(Kind::Pin);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let metrics = loop {
        let metrics = http.get(&url).send().await.unwrap().text().await.unwrap();
        // Read is counted at the read, rows at the commit after it: wait for both.
        if value(&metrics, &format!("pipeline_stream_records_read_total{{stream=\"{pin}\"}}")) == Some(13.0)
            && value(&metrics, "pipeline_stream_commit_duration_seconds_count") == Some(3.0)
        {
            break metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the worker did not read and commit the 13 records:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(()).unwrap();
    let done = run.await.unwrap().unwrap();
    let stats = &done.stats[&Kind::Pin];
    assert_eq!(value(&metrics, &format!("pipeline_stream_quarantined_records_total{{stream=\"{pin}\"}}")), Some(1.0), "{metrics}");
    assert_eq!(
        value(&metrics, &format!("pipeline_stream_rows_written_total{{table=\"{table}\"}}")),
        Some(stats.rows_written as f64),
        "{metrics}"
    );
    assert_eq!(stats.rows_written, 12);
    // Five records per read: three micro-batches after version 0, which
    // creates the table.
    assert_eq!(stats.commits, 3);
    assert_eq!(value(&metrics, "pipeline_stream_commit_duration_seconds_count"), Some(3.0), "{metrics}");
    assert_eq!(value(&metrics, &format!("pipeline_stream_delta_version{{table=\"{table}\"}}")), Some(3.0), "{metrics}");
    let behind = common::metric_values(&metrics, &format!("pipeline_stream_behind_latest_seconds{{stream=\"{pin}\""));
    assert_eq!(behind.len(), 1, "one gauge for the one shard: {metrics}");
    assert!(behind[0] >= 0.0, "{behind:?}");
}

/// `pipeline status` (the library and the binary): end offsets, the sink
/// group's committed offsets and lag, the sink's objects, the Delta tables'
/// versions and rows, the last batch summary; each against what was done.
#[tokio::test]
async fn status_reports_offsets_lag_objects_delta_tables_and_the_last_batch() {
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 1).await;
    let server = ingest_server().await;
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let source = SyntheticSource::new(31, 1_000);
    let post = |kind: Kind, range: std::ops::Range<u64>| {
        let records: Vec<Value> = range.map(|i| json!({"value": source.round(i).value(kind)})).collect();
        http.post(format!("{base}/topics/{}", names.topic(kind)))
            .header("Content-Type", "application/vnd.kafka.json.v2+json")
            .body(json!({"records": records}).to_string())
            .send()
    };
    for kind in Kind::ALL {
        assert_eq!(post(kind, 0..10).await.unwrap().status(), 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = dir.path().join("sink");
    let group = names.connector();
    let mut sink_config =
        pipeline_sink::SinkConfig::new(&common::bootstrap(), &names.topics_regex(), &group, Location::Local { dir: sink_dir.clone() });
    sink_config.flush_size = 4;
    sink_config.rotate_interval = Duration::from_millis(300);
    sink_config.stop = pipeline_sink::StopWhen::CaughtUp { idle: Duration::from_secs(1) };
    let sunk = pipeline_sink::run(sink_config, std::future::pending()).await.unwrap();
    assert_eq!(sunk.records_written, 30);
    // Five more pin records the sink has not seen: its lag.
    assert_eq!(post(Kind::Pin, 10..15).await.unwrap().status(), 200);
    server.stop().await.unwrap();

    create_streams(&names, 1).await;
    let k = kinesis().await;
    for i in 0..6 {
        let data = source.round(i).value(Kind::Geo).to_string();
        k.put_record()
            .stream_name(names.stream(Kind::Geo))
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .partition_key("p")
            .send()
            .await
            .unwrap();
    }
    let delta = Location::Local { dir: dir.path().join("delta") };
    let streamed = pipeline_stream::run(pipeline_stream::StreamConfig {
        names: names.clone(),
        aws: aws_setup::AwsTarget::emulator(common::s3_endpoint()),
        output: delta.clone(),
        dead_letter: None,
        max_records: 1000,
        poll_interval: Duration::from_millis(100),
        stop_when_idle: Some(Duration::from_secs(1)),
        metrics: Default::default(),
    })
    .await
    .unwrap();
    let geo_commits = streamed.stats[&Kind::Geo].commits as i64;

    let batch_dir = dir.path().join("batch");
    pipeline_batch::run(&pipeline_batch::BatchConfig {
        input: Location::Local { dir: sink_dir.clone() },
        names: names.clone(),
        aws: aws_setup::AwsTarget::default(),
        output: Some(batch_dir.clone()),
        strict: false,
    })
    .await
    .unwrap();

    let config = pipeline::status::StatusConfig {
        kafka_auth: Default::default(),
        names: names.clone(),
        bootstrap: common::bootstrap(),
        kafka_overrides: Vec::new(),
        group_id: group.clone(),
        sink: Some(Location::Local { dir: sink_dir.clone() }),
        delta: Some(delta.clone()),
        batch_output: Some(batch_dir.clone()),
        aws: aws_setup::AwsTarget::emulator(common::s3_endpoint()),
        timeout: Duration::from_secs(10),
    };
    let status = pipeline::status::collect(&config).await;
    let pipeline::status::Part::Ok(topics) = &status.kafka else { panic!("{status:?}") };
    let by_topic: BTreeMap<&str, (i64, i64)> = topics.iter().map(|t| (t.topic.as_str(), (t.end_offset, t.lag))).collect();
    assert_eq!(by_topic[names.topic(Kind::Pin).as_str()], (15, 5), "{status}");
    assert_eq!(by_topic[names.topic(Kind::Geo).as_str()], (10, 0), "{status}");
    assert_eq!(topics[0].partitions[0].committed, Some(10), "{status}");
    let pipeline::status::Part::Ok(objects) = &status.sink_objects else { panic!("{status:?}") };
    for o in objects {
        let dir = sink_dir.join("topics").join(&o.topic).join("partition=0");
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).collect();
        assert_eq!((o.objects, o.bytes), (files.len() as u64, files.iter().sum::<u64>()), "{status}");
        assert_eq!(o.objects, 3, "10 records at flush.size 4: {status}");
    }
    let pipeline::status::Part::Ok(tables) = &status.delta_tables else { panic!("{status:?}") };
    let geo = tables.iter().find(|t| t.table == names.delta_table(Kind::Geo)).unwrap();
    assert_eq!((geo.version, geo.rows), (Some(geo_commits), Some(6)), "{status}");
    let pipeline::status::Part::Ok(summary) = &status.last_batch else { panic!("{status:?}") };
    assert_eq!(summary["pin"]["records_read"], 10, "{summary}");

    // The binary, as a script reads it.
    let out = Command::new(common::pipeline_bin())
        .args(["status", "--uid", names.uid(), "--json", "--bootstrap-servers", &common::bootstrap()])
        .arg("--sink")
        .arg(&sink_dir)
        .arg("--delta")
        .arg(dir.path().join("delta"))
        .arg("--batch-output")
        .arg(&batch_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kafka"]["ok"][0]["lag"], 5, "{json}");
    assert_eq!(json["delta_tables"]["ok"][1]["rows"], 6, "{json}");
}

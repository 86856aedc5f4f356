//! The Prometheus metrics of ingest and sink, scraped while they run and
//! checked against what the run did.

use crate::common;

use std::time::{Duration, Instant};

use contract::Kind;
use pipeline_ingest::{self as ingest, IngestConfig};
use pipeline_sink::{self as sink, SinkConfig};
use pipeline_storage::Location;
use serde_json::json;

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

use common::metric_value as value;

async fn ingest_server() -> (ingest::RunningIngest, String) {
    let config = IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), ..Default::default() };
    let server = ingest::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    (server, base)
}

async fn post_records(http: &reqwest::Client, base: &str, topic: &str, n: usize, first: usize) -> u16 {
    let records: Vec<_> = (first..first + n).map(|i| json!({"value": {"index": i}})).collect();
    let resp = http.post(format!("{base}/topics/{topic}")).header("Content-Type", JSON_V2).body(json!({"records": records}).to_string());
    resp.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn ingest_metrics_count_what_was_answered_and_stored() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let (server, base) = ingest_server().await;
    let http = reqwest::Client::new();
    for round in 0..5 {
        assert_eq!(post_records(&http, &base, &topic, 10, round * 10).await, 200);
    }
    let refused = http.post(format!("{base}/topics/{topic}")).header("Content-Type", "application/vnd.kafka.avro.v2+json").body("{}");
    assert_eq!(refused.send().await.unwrap().status(), 415);

    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text; version=1.0.0"));
    let metrics = resp.text().await.unwrap();
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_ingest_records_total{outcome=\"acknowledged\"}"), Some(50.0), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_ingest_records_total{outcome=\"failed\"}"), Some(0.0), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_ingest_http_responses_total{status=\"200\"}"), Some(5.0), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_ingest_http_responses_total{status=\"415\"}"), Some(1.0), "{metrics}");
    assert!(metrics.contains("# TYPE pipeline_ingest_produce_duration_seconds histogram"), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_ingest_produce_duration_seconds_count"), Some(5.0), "{metrics}");
    let sum = value(&metrics, "pipeline_ingest_produce_duration_seconds_sum").unwrap();
    assert!(sum > 0.0 && sum < 60.0, "{sum}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sink_metrics_match_the_objects_written_and_the_lag_drains_to_zero() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 2).await;
    let (server, base) = ingest_server().await;
    let http = reqwest::Client::new();
    for kind in Kind::ALL {
        // Keyless records spread over both partitions.
        assert_eq!(post_records(&http, &base, &names.topic(kind), 40, 0).await, 200);
    }
    server.stop().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = SinkConfig::new(
        &common::bootstrap(),
        &names.topics_regex(),
        &format!("{}-metrics", names.uid()),
        Location::Local { dir: dir.path().to_path_buf() },
    );
    config.flush_size = 7;
    config.rotate_interval = Duration::from_millis(500);
    let mut registry = pipeline_runtime::metrics::Registry::default();
    config.metrics.register(&mut registry);
    let metrics_server = pipeline_runtime::metrics::serve("127.0.0.1:0".parse().unwrap(), std::sync::Arc::new(registry)).await.unwrap();
    let url = format!("http://{}/metrics", metrics_server.local_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(sink::run(config, async move {
        let _ = stopped.await;
    }));

    // While it runs: every record written, and each of the six partitions
    // reported with no lag once its offsets are committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = http.get(&url).send().await.unwrap().text().await.unwrap();
        let lags = common::metric_values(&metrics, "pipeline_sink_consumer_lag{");
        if value(&metrics, "pipeline_sink_records_written_total") == Some(120.0) && lags.len() == 6 && lags.iter().all(|l| *l == 0.0) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "the sink did not catch up within a minute:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    stop.send(()).unwrap();
    let stats = run.await.unwrap().unwrap();

    let files: Vec<std::fs::Metadata> = walk(dir.path()).into_iter().map(|p| std::fs::metadata(p).unwrap()).collect();
    let bytes: u64 = files.iter().map(|m| m.len()).sum();
    assert_eq!(value(&metrics, "pipeline_sink_objects_written_total"), Some(files.len() as f64), "{metrics}");
    assert_eq!(stats.objects_written, files.len() as u64);
    assert_eq!(value(&metrics, "pipeline_sink_written_bytes_total"), Some(bytes as f64), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_sink_upload_duration_seconds_count"), Some(files.len() as f64), "{metrics}");
    assert_eq!(value(&metrics, "pipeline_sink_dead_letters_total"), Some(0.0), "{metrics}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

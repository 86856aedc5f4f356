//! Memory of the ingest server under many large requests at once: the
//! in-flight body budget keeps it bounded. Measured on the `pipeline ingest`
//! process (peak RSS from /proc), next to the same load against a server
//! whose budget is too large to matter, so the test shows the bound works.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BODY_LIMIT: usize = 4 << 20;
const CLIENTS: usize = 96;

/// A kB figure from /proc/<pid>/status (VmRSS, VmHWM).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(inflight_budget: usize) -> Server {
    let port = free_port();
    let child = Command::new(common::pipeline_bin())
        .args(["ingest", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--max-body-bytes", &BODY_LIMIT.to_string()])
        .args(["--max-inflight-body-bytes", &inflight_budget.to_string()])
        .args(["--body-timeout", "60"])
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("pipeline ingest starts");
    let server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await
            && r.status().is_success()
        {
            return server;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "ingest server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Peak RSS growth (MB) of a server with this budget under CLIENTS
/// simultaneous near-limit bodies that are read whole and then refused
/// (an unterminated JSON string: 42203), or refused with 429 when their
/// bytes find no room, and the answers by status.
async fn peak_growth_mb(inflight_budget: usize, topic: &str) -> (f64, BTreeMap<u16, usize>) {
    let server = start(inflight_budget).await;
    let pid = server.child.id();
    let http = reqwest::Client::new();
    // Warm up the producer, metadata and allocator with real records.
    for i in 0..20 {
        let r = http
            .post(format!("{}/topics/{topic}", server.base))
            .header("Content-Type", "application/vnd.kafka.json.v2+json")
            .body(format!(r#"{{"records":[{{"value":{{"i":{i}}}}}]}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let baseline = status_kb(pid, "VmHWM:");

    let mut body = br#"{"records":[{"value":""#.to_vec();
    body.resize(BODY_LIMIT - 16, b'a');
    let body = bytes::Bytes::from(body);
    let requests = (0..CLIENTS).map(|_| {
        let (http, body, url) = (http.clone(), body.clone(), format!("{}/topics/{topic}", server.base));
        async move {
            http.post(url).header("Content-Type", "application/vnd.kafka.json.v2+json").body(body).send().await.map(|r| r.status().as_u16())
        }
    });
    let mut answers = BTreeMap::new();
    for answer in futures::future::join_all(requests).await {
        *answers.entry(answer.expect("every request is answered")).or_insert(0) += 1;
    }
    let healthy = http.get(format!("{}/healthz", server.base)).send().await.unwrap().status();
    assert!(healthy.is_success(), "the server stays up");
    let peak = status_kb(pid, "VmHWM:");
    (peak.saturating_sub(baseline) as f64 / 1024.0, answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_bodies_at_once_keep_memory_bounded() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 1).await;
    let topic = names.topic(contract::Kind::Pin);

    let budget = 16 << 20;
    let (bounded, answers) = peak_growth_mb(budget, &topic).await;
    let (unbounded, _) = peak_growth_mb(1 << 30, &topic).await;
    println!(
        "{CLIENTS} clients x {} MB bodies at once: peak RSS growth {bounded:.0} MB with a {} MB in-flight budget, {unbounded:.0} MB without one; answers {answers:?}",
        BODY_LIMIT >> 20,
        budget >> 20
    );
    // Each body was read whole and refused as not JSON, or found no room in
    // the budget and was told to retry (429 at once, not queued); none was
    // dropped unanswered, and those that fit were read.
    let (read, shed) = (answers.get(&422).copied().unwrap_or(0), answers.get(&429).copied().unwrap_or(0));
    assert_eq!(read + shed, CLIENTS, "{answers:?}");
    assert!(read >= budget / BODY_LIMIT, "{answers:?}");
    // The bound: bodies in flight (16 MB) plus buffer growth and allocator
    // slack, far below the CLIENTS x 4 MB = 384 MB the load would take.
    assert!(bounded < 96.0, "peak RSS grew {bounded:.0} MB with a 16 MB budget");
    assert!(unbounded > bounded * 2.0, "without the budget the same load takes more ({unbounded:.0} vs {bounded:.0} MB)");
}

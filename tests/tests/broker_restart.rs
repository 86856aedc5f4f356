//! The Kafka broker stopped and restarted under a stream of produce
//! requests: every record answered 200 is in Kafka exactly once, requests
//! during the outage get a retriable error with a retry hint (never a 200),
//! and the ingest server recovers without a restart.
//!
//! This stops the shared local broker, so it is its own test binary, not a
//! module of `it`: cargo runs test binaries one after another, never two at
//! once, while the tests of one binary run side by side.

// The shared fixtures of `it`; this binary uses a few of them.
#[allow(dead_code)]
#[path = "it/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contract::Kind;
use pipeline_ingest::{self as ingest, IngestConfig};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// The broker `cargo xtask local up` started: pid file, command line, log.
struct Broker {
    pid_file: std::path::PathBuf,
    argv: Vec<String>,
    cwd: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Broker {
    fn find() -> Self {
        let local = common::tests_dir().join("../.local");
        let pid_file = local.join("run/kafka.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|_| panic!("{} is missing: this test restarts the broker `cargo xtask test` started", pid_file.display()));
        let pid = pid.trim();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the broker is running");
        let argv = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        Self { pid_file: pid_file.clone(), argv, cwd, log: local.join("logs/kafka.log") }
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(&self.pid_file).unwrap().trim().to_string()
    }

    /// SIGTERM (a clean broker shutdown), and wait until the process is gone.
    fn stop(&self) {
        let pid = self.pid();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let started = Instant::now();
        // Gone, or a zombie: under `cargo xtask test` the broker is a child
        // of xtask, which does not reap it until it exits.
        let running = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
        };
        while running(&pid) {
            assert!(started.elapsed() < Duration::from_secs(60), "the broker did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The same command again, detached like `local up` starts it: it
    /// outlives the test, and the stack (not this process) stops it.
    #[allow(clippy::zombie_processes)]
    fn start(&self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new().append(true).create(true).open(&self.log).unwrap();
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("the broker restarts");
        std::fs::write(&self.pid_file, child.id().to_string()).unwrap();
    }
}

#[derive(Default)]
struct Tally {
    sent: u64,
    acked: Vec<u64>,
    /// error_code -> count, for answers that were not 200.
    refused: BTreeMap<i64, u64>,
    refused_without_retry_hint: u64,
    acked_after_restart: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_broker_restart_exactly_once() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Geo);
    pipeline_kafka::ensure_topics(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[], std::slice::from_ref(&topic), 3, 1)
        .await
        .unwrap();
    let server = ingest::start(IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        delivery_timeout: Duration::from_secs(3),
        metadata_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr);
    let broker = Broker::find();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let restarted_at = Arc::new(Mutex::new(None::<Instant>));

    // Four clients post unique records as fast as they are answered, until
    // records are acknowledged again after the broker is back, or a minute
    // after it. A broker holding many partitions (a long-used local stack)
    // is ready for metadata seconds before it leads them all; a fixed end
    // once left no time after the restart.
    let give_up_at = Instant::now() + Duration::from_secs(240);
    let after_restart = Duration::from_secs(60);
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let (base, topic, tally, restarted_at) = (base.clone(), topic.clone(), tally.clone(), restarted_at.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
            let mut n = 0u64;
            let recovered = || {
                let at = *restarted_at.lock().unwrap();
                at.is_some_and(|at| at.elapsed() > after_restart || tally.lock().unwrap().acked_after_restart >= 40)
            };
            while Instant::now() < give_up_at && !recovered() {
                let id = c * 1_000_000 + n;
                n += 1;
                let body = json!({"records": [{"value": {"ind": id, "country": "x"}}]});
                let sent_at = Instant::now();
                let resp = http.post(format!("{base}/topics/{topic}")).header("Content-Type", JSON_V2).json(&body).send().await;
                // Read the whole answer first; the tally lock is never held across an await.
                let answer = match resp {
                    Ok(r) if r.status() == 200 => None,
                    Ok(r) => {
                        let hinted = r.headers().contains_key("retry-after");
                        let code = r.json::<serde_json::Value>().await.ok().and_then(|v| v["error_code"].as_i64()).unwrap_or(-1);
                        Some((code, hinted))
                    }
                    Err(e) => panic!("the ingest server must answer, even without a broker: {e}"),
                };
                let refused = {
                    let mut t = tally.lock().unwrap();
                    t.sent += 1;
                    match answer {
                        None => {
                            t.acked.push(id);
                            if restarted_at.lock().unwrap().is_some_and(|at| sent_at > at) {
                                t.acked_after_restart += 1;
                            }
                        }
                        Some((code, hinted)) => {
                            *t.refused.entry(code).or_default() += 1;
                            if !hinted {
                                t.refused_without_retry_hint += 1;
                            }
                        }
                    }
                    answer.is_some()
                };
                if refused {
                    // A client that honours the retry hint backs off.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_outage = tally.lock().unwrap().acked.len();
    assert!(before_outage > 0, "records flow before the outage");
    broker.stop();
    tokio::time::sleep(Duration::from_secs(6)).await;
    broker.start();
    pipeline_kafka::wait_ready(&common::bootstrap(), Duration::from_secs(60)).await.expect("the broker is back");
    *restarted_at.lock().unwrap() = Some(Instant::now());
    for c in clients {
        c.await.unwrap();
    }
    server.stop().await.unwrap();

    // Everything in the topic, by id.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", common::bootstrap())
        .set("group.id", format!("{}-check", names.uid()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut stored: HashMap<u64, u32> = HashMap::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(8), consumer.recv()).await {
            Ok(Ok(m)) => {
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                *stored.entry(v["ind"].as_u64().unwrap()).or_default() += 1;
            }
            Ok(Err(e)) => panic!("consuming: {e}"),
            Err(_) => break,
        }
    }

    let t = tally.lock().unwrap();
    let lost = t.acked.iter().filter(|id| !stored.contains_key(id)).count();
    let duplicated = stored.values().filter(|n| **n > 1).count();
    common::report_scenario(&common::ScenarioRow {
        scenario: "broker stopped and restarted mid-run".into(),
        sent: t.sent,
        acknowledged: t.acked.len() as u64,
        stored: stored.len() as u64,
        lost: lost as u64,
        duplicated: duplicated as u64,
        good_client_p99: None,
    });
    println!("refused by error code: {:?}", t.refused);
    assert_eq!(lost, 0, "a record answered 200 is missing from Kafka");
    assert_eq!(duplicated, 0, "a record is in Kafka twice");
    assert!(!t.refused.is_empty(), "requests during the outage were refused");
    assert!(
        t.refused.keys().all(|c| [50002, 50003, 50302].contains(c)),
        "refusals carry the REST proxy's Kafka error codes: {:?}",
        t.refused
    );
    assert_eq!(t.refused_without_retry_hint, t.refused.get(&50002).copied().unwrap_or(0), "retriable refusals carry Retry-After");
    assert!(t.acked_after_restart > 0, "the server recovered without a restart");
}

//! Shared set-up of the integration tests: where the local stack is, and
//! fresh names so tests never see each other's data.

pub mod wild;

use std::time::Duration;

use contract::Names;

/// Kafka of the local stack (`cargo xtask local up`, or set by `cargo xtask test`).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| pipeline_kafka::LOCAL_BOOTSTRAP.to_string())
}

/// moto of the local stack.
pub fn s3_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".to_string())
}

/// A stand-in for AWS's ip-ranges.json, with documentation prefixes
/// (RFC 5737) instead of AWS's: provisioning reads it from a path as it
/// would from ip-ranges.amazonaws.com, which tests must not need.
pub fn ip_ranges_file() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ip-ranges.json").to_string()
}

/// The file's API Gateway prefixes for us-east-1, sorted.
pub const GATEWAY_RANGES_US_EAST_1: [&str; 2] = ["192.0.2.0/26", "198.51.100.0/24"];

/// The value of one series (`name{labels}`, exactly) in a text exposition.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
}

/// The values of every series whose line starts with `prefix`.
pub fn metric_values(metrics: &str, prefix: &str) -> Vec<f64> {
    metrics.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.split_whitespace().last()?.parse().ok()).collect()
}

/// MariaDB of the local stack (a URL with the stack's throwaway password).
pub fn mysql_url() -> String {
    std::env::var("PIPELINE_MYSQL_URL").unwrap_or_else(|_| "mysql://pipeline:pipeline@127.0.0.1:13306/pinterest".to_string())
}

/// Fail fast, naming the fix, when the stack is not running.
pub async fn require_kafka() {
    pipeline_kafka::wait_ready(&bootstrap(), Duration::from_secs(20))
        .await
        .expect("these tests need the local stack: run them with `cargo xtask test` (or `cargo xtask local up` first)");
}

/// A fresh deployment id: every test gets its own topics and bucket.
pub fn fresh_names() -> Names {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Names::new(format!("t{}", &id[..11])).unwrap()
}

/// Make `topics` on the local broker, `partitions` each, replication 1
/// (one broker); topics that exist are kept. Returns those it made.
pub async fn create_topics(topics: &[String], partitions: i32) -> Vec<String> {
    pipeline_kafka::ensure_topics(&bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[], topics, partitions, 1).await.unwrap()
}

/// moto's S3 through the one AWS set-up, with dummy credentials.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let cfg = moto().load().await;
    aws_setup::s3::client(&cfg)
}

/// moto of the local stack as an AWS target (S3 and Kinesis).
pub fn moto() -> aws_setup::AwsTarget {
    aws_setup::AwsTarget::new(Some(s3_endpoint()), Some("us-east-1".into()))
}

/// object_store reads credentials from the environment; moto accepts any.
pub fn set_dummy_aws_env() {
    // SAFETY: set once, to the same values, before any thread reads them.
    unsafe {
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        }
    }
}

/// A Python interpreter of one of the venvs `cargo xtask test` installs
/// (PySpark, Airflow), named by an environment variable it sets.
pub fn python_from_env(var: &str) -> std::path::PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: it names a venv's python that `cargo xtask test` installs; run the tests with `cargo xtask test`")
    });
    let path = std::path::PathBuf::from(path);
    assert!(path.exists(), "{var}={} does not exist: run `cargo xtask test` to install it", path.display());
    path
}

/// One Spark at a time: each JVM wants a core and a gigabyte or more, and
/// Ivy's package cache takes no lock of its own.
static ONE_SPARK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn one_spark() -> std::sync::MutexGuard<'static, ()> {
    ONE_SPARK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where Spark keeps the packages it fetches (Delta's jars): `cargo xtask
/// test` names a directory under .local/ so each run fetches them once;
/// else a folder of the test's own.
pub fn spark_ivy_dir(scratch: &std::path::Path) -> std::path::PathBuf {
    std::env::var_os("PIPELINE_SPARK_IVY_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| scratch.join("ivy"))
}

/// The Spark settings of every local Spark the tests start, as `--conf`
/// arguments: the package cache above; the driver on loopback only; and
/// partition counts for a laptop-sized input (200 shuffle partitions and
/// Delta's 50 snapshot partitions double the run time here).
pub fn spark_confs(scratch: &std::path::Path) -> Vec<String> {
    [
        format!("spark.jars.ivy={}", spark_ivy_dir(scratch).display()),
        "spark.driver.bindAddress=127.0.0.1".into(),
        "spark.driver.host=127.0.0.1".into(),
        "spark.ui.enabled=false".into(),
        "spark.sql.shuffle.partitions=4".into(),
        "spark.databricks.delta.snapshotPartitions=2".into(),
    ]
    .into_iter()
    .flat_map(|c| ["--conf".to_string(), c])
    .collect()
}

/// [`spark_confs`] for a Spark that PySpark starts itself (plain python).
pub fn pyspark_submit_args(scratch: &std::path::Path) -> String {
    spark_confs(scratch).join(" ") + " pyspark-shell"
}

/// Files under tests/ (helper scripts).
pub fn tests_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The `pipeline` binary, for tests that run it as a process (kill -9).
/// `cargo xtask test` builds it and sets PIPELINE_BIN.
pub fn pipeline_bin() -> std::path::PathBuf {
    let path =
        std::env::var_os("PIPELINE_BIN").map(std::path::PathBuf::from).unwrap_or_else(|| tests_dir().join("../target/debug/pipeline"));
    assert!(path.exists(), "{} is missing: run the tests with `cargo xtask test`, which builds it", path.display());
    path
}

/// The `pipeline` binary provisioning ships to the client machine
/// (cargo-zigbuild, glibc 2.34, OpenSSL compiled in).
pub fn portable_bin() -> std::path::PathBuf {
    let path = std::env::var_os("PIPELINE_PORTABLE_BIN")
        .expect("PIPELINE_PORTABLE_BIN is not set: run the tests with `cargo xtask test`, which builds the portable binary");
    let path = std::path::PathBuf::from(path);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// One row of the fault scenarios' summary table (issue 9): what was sent,
/// acknowledged by the system, stored at the end, lost and duplicated.
pub struct ScenarioRow {
    pub scenario: String,
    pub sent: u64,
    pub acknowledged: u64,
    pub stored: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// For scenarios that abuse a server beside a well-behaved client: that
    /// client's 99th percentile answer time.
    pub good_client_p99: Option<Duration>,
}

/// Print the row, and append it to the file `cargo xtask test` names in
/// PIPELINE_SCENARIO_REPORT, which prints all rows as one table at the end
/// (test output is captured by default).
pub fn report_scenario(row: &ScenarioRow) {
    let line = serde_json::json!({
        "scenario": row.scenario, "sent": row.sent, "acknowledged": row.acknowledged,
        "stored": row.stored, "lost": row.lost, "duplicated": row.duplicated,
        "good_p99_ms": row.good_client_p99.map(|d| d.as_millis() as u64),
    });
    println!("{line}");
    if let Some(path) = std::env::var_os("PIPELINE_SCENARIO_REPORT") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("scenario report opens");
        writeln!(file, "{line}").expect("scenario report written");
    }
}

/// A TCP relay on 127.0.0.1 to `target` (host:port) that holds each chunk a
/// client sends for `delay` before passing it on: the real endpoint behind
/// it, only slower, so that requests are still in flight when a test acts.
/// Returns the relay's address as host:port.
pub async fn slow_relay(target: &str, delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let target = target.to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                    tokio::time::sleep(delay).await;
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            });
        }
    });
    addr
}

/// Every record of `topic`, by (partition, offset), once `expected` have
/// arrived; then checks that no more follow.
pub async fn consume_all(topic: &str, expected: usize) -> std::collections::HashMap<(i32, i64), Vec<u8>> {
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = pipeline_kafka::client_config(&bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[])
        .set("group.id", format!("check-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = std::collections::HashMap::new();
    while out.len() < expected {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("records arrive").unwrap();
        out.insert((m.partition(), m.offset()), m.payload().unwrap_or_default().to_vec());
    }
    // Nothing more than what was acknowledged.
    assert!(tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await.is_err(), "no extra records in {topic}");
    out
}

//! One SQL, many Sparks: the batch notebook rendered for Databricks runs,
//! unchanged, on the Sparks Databricks compute offers (classic Spark 4 under
//! plain python, Spark 3.5 as in the 15.4 and 16.4 LTS runtimes, and Spark
//! Connect, the API of serverless and standard compute) over the same sink
//! output as `pipeline batch`; every row of every cleaned table, quarantine
//! and query result must match DataFusion's, in the JSON copy and in the
//! Delta tables the notebook persists.

use crate::common;

use common::wild::{self, Variant};

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contract::{Kind, Names};
use pipeline_batch::{self as batch, BatchConfig, BatchOutput};
use pipeline_emulate::generate::{self as generate, ORIGINAL_TABLE_ROWS, SyntheticSource};
use pipeline_storage::Location;
use serde_json::Value;
use templates::config::PipelineConfig;

/// The sink output both engines read, DataFusion's answers, and the
/// rendered notebook.
struct Oracle {
    dir: tempfile::TempDir,
    input: PathBuf,
    notebook: PathBuf,
    ours: BatchOutput,
    quarantined_lines: BTreeMap<Kind, u64>,
}

async fn oracle() -> Oracle {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sink");
    let names = Names::new("0e2a0bfcc015").unwrap();
    // 4,000 rounds drawn from 11,000-row tables: duplicates, placeholders
    // and ties all occur, as in the original data.
    let source = SyntheticSource::new(20261124, ORIGINAL_TABLE_ROWS);
    generate::write_sink_layout(&input, &names, source.random_rounds(7).take(4000), 500).unwrap();
    // Input as it arrives in the wild, in a partition of its own: each
    // emulator variant's spelling, and lines that are not rows.
    let wild_rounds: Vec<_> = source.random_rounds(8).take(400).collect();
    let mut quarantined_lines = BTreeMap::new();
    for kind in Kind::ALL {
        let mut lines: Vec<String> = wild_rounds
            .iter()
            .enumerate()
            .map(|(i, r)| {
                [Variant::OneElementArray, Variant::ColonDates, Variant::IsoT, Variant::Fractional][i % 4].encode(kind, r).to_string()
            })
            .collect();
        let bad = wild::bad_records(kind, &wild_rounds[0]);
        quarantined_lines.insert(kind, bad.iter().map(|(_, n)| n).sum::<u64>() + 1);
        lines.extend(bad.into_iter().map(|(v, _)| v.to_string()));
        lines.push("{\"not json".to_string());
        lines.push(String::new());
        let dir = input.join(format!("topics/{}/partition=7", names.topic(kind)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}+7+0000000000.json", names.topic(kind))), lines.join("\n") + "\n").unwrap();
    }

    let config = BatchConfig {
        input: Location::parse(input.to_str().unwrap()).unwrap(),
        names: names.clone(),
        aws: Default::default(),
        output: None,
        strict: false,
    };
    let ours = batch::run(&config).await.unwrap();
    for kind in Kind::ALL {
        assert_eq!(ours.summary.kind(kind).quarantined, quarantined_lines[&kind], "{kind}: ours");
    }

    let notebook =
        templates::render::render_one(&templates::Templates::new(), &PipelineConfig::for_uid(names.uid()), "databricks/batch_notebook.py")
            .unwrap();
    let notebook_path = dir.path().join("batch_notebook.py");
    std::fs::write(&notebook_path, notebook).unwrap();
    Oracle { input, notebook: notebook_path, ours, quarantined_lines, dir }
}

impl Oracle {
    /// Run the notebook as a user runs it with plain python; `args` after
    /// `--source`.
    fn run_notebook(&self, python: &Path, args: &[&str]) {
        let run = Command::new(python)
            .arg(&self.notebook)
            .arg("--source")
            .arg(&self.input)
            .args(args)
            .env("PYSPARK_PYTHON", python)
            .env("PYSPARK_SUBMIT_ARGS", common::pyspark_submit_args(self.dir.path()))
            .env_remove("SPARK_REMOTE")
            .output()
            .unwrap();
        assert!(run.status.success(), "the notebook failed ({}):\n{}", args.join(" "), tail(&run.stderr));
    }

    /// Every table of the JSON copy equals DataFusion's; query results in
    /// their order.
    fn check_json_copy(&self, spark_out: &Path, engine: &str) {
        for kind in Kind::ALL {
            let spark_quarantine = json_rows(spark_out, &format!("quarantine_{kind}"));
            assert_eq!(spark_quarantine.len() as u64, self.quarantined_lines[&kind], "{engine}, {kind}: quarantine: {spark_quarantine:?}");
            assert!(
                spark_quarantine.iter().all(|q| q["object"].as_str().unwrap().ends_with("+7+0000000000.json")),
                "{engine}: each quarantined record names its object: {spark_quarantine:?}"
            );
        }
        for table in &self.ours.cleaned {
            let (a, b) = (wild::table_rows(&table.batches), wild::sorted(json_rows(spark_out, &table.name)));
            assert!(!a.is_empty(), "{} is empty", table.name);
            wild::assert_same_rows(&format!("{} (DataFusion, expected as {engine})", table.name), &a, &b);
        }
        for table in &self.ours.results {
            // The queries order their output, so order is compared too.
            let (a, b) = (wild::ordered_rows(&table.batches), json_rows(spark_out, &table.name));
            assert!(!a.is_empty(), "{} is empty: the input does not exercise it", table.name);
            wild::assert_same_rows(&format!("{} (DataFusion, expected as {engine})", table.name), &a, &b);
        }
    }

    /// The Delta tables under `tables` (one directory per table) hold, for
    /// each of `dates`, exactly DataFusion's rows, and no other date.
    fn check_delta(&self, tables: &Path, dates: &[&str], engine: &str) -> BTreeMap<String, u64> {
        let mut names: Vec<String> = self.ours.cleaned.iter().chain(&self.ours.results).map(|t| t.name.clone()).collect();
        names.extend(Kind::ALL.iter().map(|k| format!("quarantine_{k}")));
        let paths: Vec<PathBuf> = names.iter().map(|n| tables.join(n)).collect();
        let read = Command::new(common::python_from_env("PIPELINE_CLIENTS_PYTHON"))
            .arg(common::tests_dir().join("python/delta_rows.py"))
            .args(&paths)
            .output()
            .unwrap();
        assert!(read.status.success(), "deltalake could not read {engine}'s tables:\n{}", tail(&read.stderr));
        let read: Value = serde_json::from_slice(&read.stdout).unwrap();
        let mut versions = BTreeMap::new();
        for (name, path) in names.iter().zip(&paths) {
            let table = &read[path.to_str().unwrap()];
            versions.insert(name.clone(), table["version"].as_u64().unwrap());
            let mut by_date: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for row in table["rows"].as_array().unwrap() {
                let mut row = row.clone();
                let date = row.as_object_mut().unwrap().remove("run_date").expect("each row has its run_date");
                by_date.entry(date.as_str().unwrap().to_string()).or_default().push(wild::normalise(row));
            }
            assert_eq!(by_date.keys().map(String::as_str).collect::<Vec<_>>(), dates, "{engine}: the run dates of {name}");
            let want = match self.ours.cleaned.iter().chain(&self.ours.results).find(|t| &t.name == name) {
                Some(t) => wild::table_rows(&t.batches),
                None => {
                    let kind = Kind::ALL.into_iter().find(|k| name.ends_with(&k.to_string())).unwrap();
                    assert!(by_date.values().all(|rows| rows.len() as u64 == self.quarantined_lines[&kind]), "{engine}: {name}");
                    continue;
                }
            };
            for (date, rows) in by_date {
                wild::assert_same_rows(&format!("{name} of {date} in {engine}'s Delta table"), &want, &wild::sorted(rows));
            }
        }
        versions
    }
}

fn json_rows(dir: &Path, name: &str) -> Vec<Value> {
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Spark wrote no {}: {e}", path.display()));
    text.lines().map(|l| wild::normalise(serde_json::from_str(l).unwrap())).collect()
}

fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_4_agrees_on_every_row_and_a_rerun_replaces_its_date() {
    let python = common::python_from_env("PIPELINE_PYSPARK_PYTHON");
    let oracle = oracle().await;
    let _spark = common::one_spark();
    let (copy, delta) = (oracle.dir.path().join("spark"), oracle.dir.path().join("delta"));
    let delta_arg = delta.to_str().unwrap();
    oracle.run_notebook(&python, &["--run-date", "2026-12-05", "--output", delta_arg, "--json-copy", copy.to_str().unwrap()]);
    oracle.check_json_copy(&copy, "Spark 4");
    let first = oracle.check_delta(&delta, &["2026-12-05"], "Spark 4");

    // The same charts: the report's bars and the notebook's, drawn too.
    for table in &oracle.ours.results {
        let ours = batch::report::chart_bars(table);
        let path = copy.join(format!("chart_{}.json", table.name));
        let spark: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(ours.len(), spark.len(), "{}: bars", table.name);
        for (a, b) in ours.iter().zip(&spark) {
            assert_eq!(a.label, b["label"].as_str().unwrap(), "{}", table.name);
            assert!((a.value - b["value"].as_f64().unwrap()).abs() < 1e-9, "{}: {a:?} vs {b}", table.name);
        }
        let png = std::fs::read(copy.join(format!("chart_{}.png", table.name))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}: the notebook drew its chart", table.name);
    }

    // A retry of the same day replaces that day's rows (a new table version,
    // no row twice); the next day adds its own beside them.
    oracle.run_notebook(&python, &["--run-date", "2026-12-05", "--output", delta_arg]);
    let again = oracle.check_delta(&delta, &["2026-12-05"], "Spark 4, rerun");
    assert!(first.iter().all(|(table, v)| again[table] > *v), "every table was written again: {first:?} then {again:?}");
    oracle.run_notebook(&python, &["--run-date", "2026-12-06", "--output", delta_arg]);
    oracle.check_delta(&delta, &["2026-12-05", "2026-12-06"], "Spark 4, next day");
}

/// Spark 3.5 (the Spark of the 15.4 and 16.4 LTS runtimes) as a cluster
/// runs it: under `spark-submit` with the README's packages and confs. The
/// session must take spark-submit's master, not one of its own: Spark's
/// event log records the master the application ran on.
#[tokio::test(flavor = "multi_thread")]
async fn spark_3_5_under_spark_submit_takes_its_master_and_agrees_on_every_row() {
    let python = common::python_from_env("PIPELINE_PYSPARK35_PYTHON");
    let oracle = oracle().await;
    let _spark = common::one_spark();
    let (copy, delta, events) = (oracle.dir.path().join("spark"), oracle.dir.path().join("delta"), oracle.dir.path().join("events"));
    std::fs::create_dir_all(&events).unwrap();
    let spark_home = spark_home(&python);
    let package = std::env::var("PIPELINE_DELTA_SPARK35_PACKAGE").expect("`cargo xtask test` names the Delta package of Spark 3.5");
    let run = Command::new(spark_home.join("bin/spark-submit"))
        .env("SPARK_HOME", &spark_home)
        .env("PYSPARK_PYTHON", &python)
        .env_remove("PYSPARK_SUBMIT_ARGS")
        .args(["--master", "local[3]", "--packages", &package])
        .args(["--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"])
        .args(["--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"])
        .args(["--conf", "spark.eventLog.enabled=true"])
        .arg("--conf")
        .arg(format!("spark.eventLog.dir=file://{}", events.display()))
        .args(common::spark_confs(oracle.dir.path()))
        .arg(&oracle.notebook)
        .arg("--source")
        .arg(&oracle.input)
        .args(["--run-date", "2026-12-05", "--output", delta.to_str().unwrap(), "--json-copy", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "the notebook failed under spark-submit:\n{}", tail(&run.stderr));
    oracle.check_json_copy(&copy, "Spark 3.5");
    oracle.check_delta(&delta, &["2026-12-05"], "Spark 3.5");
    let logs: Vec<_> = std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "one application: {logs:?}");
    let master = std::fs::read_to_string(&logs[0])
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["Event"] == "SparkListenerEnvironmentUpdate")
        .and_then(|e| e["Spark Properties"].get("spark.master").cloned());
    assert_eq!(master, Some(Value::from("local[3]")), "the application ran on spark-submit's master");
}

/// The Spark a venv's pyspark carries (its `bin/spark-submit`).
fn spark_home(python: &Path) -> PathBuf {
    let home = Command::new(python).args(["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"]).output().unwrap();
    PathBuf::from(String::from_utf8(home.stdout).unwrap().trim())
}

/// A local Spark Connect server with Delta, stopped on drop.
struct ConnectServer {
    child: Child,
    url: String,
}

impl ConnectServer {
    fn start(python: &Path, warehouse: &Path, scratch: &Path, log: &Path) -> Self {
        let spark_home = spark_home(python);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let package =
            std::env::var("PIPELINE_DELTA_SPARK_PACKAGE").expect("`cargo xtask test` names the Delta package of the pyspark venv");
        let child = Command::new(spark_home.join("bin/spark-submit"))
            .env("SPARK_HOME", &spark_home)
            .env("PYSPARK_PYTHON", python)
            .args(["--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--packages", &package])
            .args(["--conf", "spark.connect.grpc.binding.address=127.0.0.1"])
            .arg("--conf")
            .arg(format!("spark.connect.grpc.binding.port={port}"))
            .args(common::spark_confs(scratch))
            .args(["--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"])
            .args(["--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"])
            .arg("--conf")
            .arg(format!("spark.sql.warehouse.dir={}", warehouse.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut server = ConnectServer { child, url: format!("sc://127.0.0.1:{port}") };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(300);
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the Spark Connect server exited ({status}):\n{}", tail(&std::fs::read(log).unwrap()));
            }
            assert!(
                Instant::now() < deadline,
                "the Spark Connect server did not listen within 300 s:\n{}",
                tail(&std::fs::read(log).unwrap())
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        server
    }
}

impl Drop for ConnectServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_connect_as_serverless_compute_agrees_on_every_row() {
    let python = common::python_from_env("PIPELINE_PYSPARK_PYTHON");
    let oracle = oracle().await;
    let _spark = common::one_spark();
    let warehouse = oracle.dir.path().join("warehouse");
    let server = ConnectServer::start(&python, &warehouse, oracle.dir.path(), &oracle.dir.path().join("connect.log"));
    let copy = oracle.dir.path().join("spark");
    // A namespace, as on Databricks: the tables go to the catalog.
    let run = Command::new(&python)
        .arg(&oracle.notebook)
        .arg("--source")
        .arg(&oracle.input)
        .args(["--remote", &server.url, "--run-date", "2026-12-05", "--output", "spark_catalog.pinterest_test", "--json-copy"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(run.status.success(), "the notebook failed on Spark Connect:\n{}", tail(&run.stderr));
    oracle.check_json_copy(&copy, "Spark Connect");
    oracle.check_delta(&warehouse.join("pinterest_test.db"), &["2026-12-05"], "Spark Connect");
}

//! `cargo xtask bench`: every figure next to a peer measured in the same
//! run, as a ratio, with machine facts; written to BENCHMARKS.md on request.
//! Not a test: sizes are large and nothing here runs in CI.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::pipeline_bin::{self, Profile};
use crate::{install, paths, stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    All,
    Ingest,
    Sink,
    Batch,
    E2e,
    Stream,
    Provision,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum, default_value_t = Which::All)]
    pub which: Which,
    /// Runs per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Rounds (three records each) of generated input for the batch
    /// benchmark, drawn from the original's 11,000-row tables.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_rounds: u64,
    /// Engines the batch benchmark runs next to `pipeline batch`, comma
    /// separated. At ten times the default input PySpark takes tens of
    /// minutes a run; leave it out there.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [BatchPeer::Duckdb, BatchPeer::Polars, BatchPeer::Spark])]
    pub batch_peers: Vec<BatchPeer>,
    /// Records per ingest run (the one-record-per-POST case takes at most
    /// 30,000). Short runs make the direct producer's figure noisy.
    #[arg(long, default_value_t = 1_000_000)]
    pub ingest_records: u64,
    /// Records per sink run.
    #[arg(long, default_value_t = 6_000)]
    pub sink_records: u64,
    /// Build profile of the measured binary (release measures what users run).
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
    /// Write the table to BENCHMARKS.md (with date, commit and machine).
    #[arg(long)]
    pub write: bool,
}

/// A peer of `pipeline batch` in the batch benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchPeer {
    Duckdb,
    Polars,
    Spark,
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    bench: String,
    case: String,
    ours: String,
    peer_name: String,
    peer: String,
    ratio: String,
}

pub fn run(args: BenchArgs) -> Result<()> {
    install::ensure_bench_packages()?;
    stack::up()?;
    let bin = pipeline_bin::build_one("pipeline", "pipeline", args.profile)?;
    let bench_bin = pipeline_bin::build_one("bench", "pipeline-bench", args.profile)?;
    let mut rows = Vec::new();
    // A late failure (e.g. the provision bench) must not lose the figures
    // already measured: they are printed before the error is returned.
    let measured = run_benches(&args, &bin, &bench_bin, &mut rows);
    if let Err(e) = measured {
        if !rows.is_empty() {
            println!("{}", render_table(&rows, args.profile));
            eprintln!("the figures above were measured before this failure; BENCHMARKS.md is left as it was");
        }
        return Err(e);
    }
    let table = render_table(&rows, args.profile);
    println!("{table}");
    if args.write {
        let path = paths::repo_root().join("BENCHMARKS.md");
        // Hand-written notes below the generated table survive a rewrite.
        let notes =
            std::fs::read_to_string(&path).ok().and_then(|old| old.find("\n## Notes").map(|i| old[i..].to_string())).unwrap_or_default();
        std::fs::write(&path, table + &notes).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The benchmarks `args` asks for, each adding its rows as it ends.
fn run_benches(args: &BenchArgs, bin: &Path, bench_bin: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let wants = |w: Which| args.which == Which::All || args.which == w;
    if wants(Which::Ingest) {
        rows.extend(component_bench(
            bench_bin,
            &["ingest", "--records", &args.ingest_records.to_string(), "--runs", &args.runs.to_string()],
        )?);
    }
    if wants(Which::Sink) {
        let bucket = "bench-sink-bucket";
        rows.extend(component_bench(
            bench_bin,
            &[
                "sink",
                "--bucket",
                &format!("s3://{bucket}"),
                "--aws-endpoint-url",
                &stack::moto_endpoint(),
                "--records",
                &args.sink_records.to_string(),
                "--runs",
                &args.runs.to_string(),
            ],
        )?);
    }
    if wants(Which::Batch) {
        rows.extend(batch_bench(bin, args.batch_rounds, args.runs, &args.batch_peers)?);
    }
    if wants(Which::E2e) {
        let bucket = "bench-e2e-bucket";
        rows.extend(component_bench(
            bench_bin,
            &[
                "e2e",
                "--bucket",
                &format!("s3://{bucket}"),
                "--aws-endpoint-url",
                &stack::moto_endpoint(),
                "--runs",
                &args.runs.to_string(),
            ],
        )?);
    }
    if wants(Which::Stream) {
        rows.extend(component_bench(
            bench_bin,
            &["stream", "--aws-endpoint-url", &stack::moto_endpoint(), "--runs", &args.runs.to_string()],
        )?);
    }
    if wants(Which::Provision) {
        rows.push(provision_bench(args.runs, bin)?);
    }
    Ok(())
}

/// Run `pipeline-bench ...` and read its JSON lines.
fn component_bench(bin: &Path, args: &[&str]) -> Result<Vec<Row>> {
    eprintln!("\n$ pipeline-bench {}", args.join(" "));
    let out = Command::new(bin)
        .args(args)
        .envs(stack::client_env())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("pipeline-bench {} failed ({})", args.join(" "), out.status);
    }
    String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let m: Value = serde_json::from_str(l)?;
            let (ours, peer) = (m["ours"].as_f64().unwrap_or(0.0), m["peer"].as_f64().unwrap_or(0.0));
            let unit = m["unit"].as_str().unwrap_or("");
            Ok(Row {
                bench: m["bench"].as_str().unwrap_or("").into(),
                case: m["case"].as_str().unwrap_or("").into(),
                ours: format!("{ours:.0} {unit}"),
                peer_name: m["peer_name"].as_str().unwrap_or("").into(),
                peer: format!("{peer:.0} {unit}"),
                ratio: format!("{:.2}x", ours / peer),
            })
        })
        .collect()
}

/// Wall time and peak resident memory of a whole process tree (the JVM
/// under PySpark counts), sampled every 50 ms.
#[derive(Debug, Clone, Copy)]
struct Usage {
    wall: Duration,
    peak_rss_bytes: u64,
}

fn measure(cmd: &mut Command, log: &Path) -> Result<Usage> {
    let file = std::fs::File::create(log)?;
    let started = Instant::now();
    let mut child = cmd.stdout(file.try_clone()?).stderr(file).stdin(Stdio::null()).spawn()?;
    let mut peak = 0u64;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{cmd:?} failed ({status}); see {}:\n{}", log.display(), install::tail(log, 20));
            }
            return Ok(Usage { wall: started.elapsed(), peak_rss_bytes: peak });
        }
        peak = peak.max(tree_rss(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident bytes of a process and all its descendants.
fn tree_rss(pid: u32) -> u64 {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .unwrap_or(0)
        * 1024;
    let children: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    rss + children.into_iter().map(tree_rss).sum::<u64>()
}

fn median_usage(mut runs: Vec<Usage>) -> Usage {
    runs.sort_by_key(|u| u.wall);
    let wall = runs[runs.len() / 2].wall;
    let mut peaks: Vec<u64> = runs.iter().map(|u| u.peak_rss_bytes).collect();
    peaks.sort();
    Usage { wall, peak_rss_bytes: peaks[peaks.len() / 2] }
}

/// The batch peers' venv: DuckDB and Polars as a user would install them.
const BATCH_PEERS_VENV: &[&str] = &["duckdb==2.0.0", "polars==2.1.0"];

/// One engine of the batch bench: how to run it on `data` writing its nine
/// results to `out`.
struct BatchEngine {
    name: &'static str,
    /// How `--batch-peers` names it; `None` for ours, which always runs.
    peer: Option<BatchPeer>,
    peer_name: &'static str,
    log: &'static str,
}

const BATCH_ENGINES: [BatchEngine; 4] = [
    BatchEngine { name: "ours", peer: None, peer_name: "pipeline batch (DataFusion)", log: "bench-batch-ours.log" },
    BatchEngine {
        name: "duckdb",
        peer: Some(BatchPeer::Duckdb),
        peer_name: "DuckDB 2.0 (Python, read_json with the raw schema, 2 threads)",
        log: "bench-batch-duckdb.log",
    },
    BatchEngine {
        name: "polars",
        peer: Some(BatchPeer::Polars),
        peer_name: "Polars 2.1 (Python, lazy scan_ndjson)",
        log: "bench-batch-polars.log",
    },
    BatchEngine {
        name: "spark",
        peer: Some(BatchPeer::Spark),
        peer_name: "same notebook SQL on PySpark local[2]",
        log: "bench-batch-spark.log",
    },
];

/// Clean + all queries on `rounds` generated rounds (rows drawn from the
/// original's 11,000-row tables, so duplicates occur as in the original):
/// `pipeline batch` next to DuckDB, Polars and the rendered Databricks
/// notebook on local PySpark, on the same files. One extra run of each
/// writes its results, and all nine must be equal before anything is
/// timed.
fn batch_bench(bin: &Path, rounds: u64, runs: usize, peers: &[BatchPeer]) -> Result<Vec<Row>> {
    // Ours first: the figures below are ratios to it.
    let engines: Vec<&BatchEngine> = BATCH_ENGINES.iter().filter(|e| e.peer.is_none_or(|p| peers.contains(&p))).collect();
    let bench_dir = paths::local_dir().join("bench");
    let data = bench_dir.join(format!("batch-rounds-{rounds}"));
    let marker = data.join(".complete");
    let uid = contract::DEFAULT_UID;
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&data);
        eprintln!("generating {rounds} rounds into {}...", data.display());
        pipeline_bin::run(
            bin,
            &["generate", "--uid", uid, "--output", &data.display().to_string(), "--count", &rounds.to_string(), "--flush-size", "10000"]
                .map(String::from),
            &[],
        )?;
        std::fs::write(&marker, "")?;
    }
    let spark_python = if peers.contains(&BatchPeer::Spark) {
        install::python_venv("pyspark", install::PYSPARK_VENV)?.join("python")
    } else {
        std::path::PathBuf::new()
    };
    let peers_python = install::python_venv("batch-peers", BATCH_PEERS_VENV)?.join("python");
    let scripts = paths::repo_root().join("crates/bench/python");
    let notebook = bench_dir.join("batch_notebook.py");
    let config = templates::config::PipelineConfig::for_uid(uid);
    std::fs::write(&notebook, templates::render::render_one(&templates::Templates::new(), &config, "databricks/batch_notebook.py")?)?;

    let command = |engine: &str, out: Option<&Path>| -> Command {
        let mut cmd;
        match engine {
            "ours" => {
                cmd = Command::new(bin);
                cmd.args(["batch", "--uid", uid, "--input"]).arg(&data).args(["--print", "none"]);
                if let Some(out) = out {
                    cmd.arg("--output").arg(out);
                }
            }
            "duckdb" | "polars" => {
                cmd = Command::new(&peers_python);
                cmd.arg(scripts.join(format!("batch_{engine}.py"))).arg("--source").arg(&data).args(["--uid", uid]);
                let scratch = bench_dir.join(format!("results-{engine}-timed"));
                cmd.arg("--output").arg(out.unwrap_or(&scratch));
            }
            _ => {
                cmd = Command::new(&spark_python);
                // local[2] as in the recorded figures: the notebook sets no
                // master of its own.
                cmd.arg(&notebook).arg("--source").arg(&data).args(["--master", "local[2]"]).env("PYSPARK_PYTHON", &spark_python);
                if let Some(out) = out {
                    cmd.arg("--json-copy").arg(out);
                }
            }
        }
        cmd
    };

    // Same answers first: a faster engine that answers otherwise proves nothing.
    let logs = paths::log_dir();
    let results = |engine: &str| bench_dir.join(format!("results-{engine}"));
    for engine in &engines {
        let _ = std::fs::remove_dir_all(results(engine.name));
        eprintln!("batch: {} writes its results...", engine.name);
        measure(&mut command(engine.name, Some(&results(engine.name))), &logs.join(engine.log))?;
    }
    let mut compare = Command::new(&peers_python);
    compare.arg(scripts.join("batch_compare.py")).arg("--ours").arg(results("ours"));
    for engine in &engines[1..] {
        compare.arg(format!("{}={}", engine.name, results(engine.name).display()));
    }
    let compared = compare.output().context("running batch_compare.py")?;
    eprint!("{}", String::from_utf8_lossy(&compared.stdout));
    if !compared.status.success() {
        bail!("the engines' results differ (above); no figure is reported for engines that disagree");
    }

    let mut usage: Vec<Vec<Usage>> = engines.iter().map(|_| Vec::new()).collect();
    for i in 0..runs {
        // Alternating the order keeps a warm page cache from favouring one engine.
        let order: Vec<usize> = if i % 2 == 0 { (0..engines.len()).collect() } else { (0..engines.len()).rev().collect() };
        for e in order {
            let engine = engines[e];
            let u = measure(&mut command(engine.name, None), &logs.join(engine.log))?;
            eprintln!(
                "batch run {}/{runs}: {} {:.2} s, {:.0} MiB",
                i + 1,
                engine.name,
                u.wall.as_secs_f64(),
                u.peak_rss_bytes as f64 / 1048576.0
            );
            usage[e].push(u);
        }
    }
    let medians: Vec<Usage> = usage.into_iter().map(median_usage).collect();
    let ours = &medians[0];
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
    let case = format!("clean + 9 queries, {rounds} rounds ({} records), results equal", rounds * 3);
    let mut rows = Vec::new();
    for (engine, peer) in engines.iter().zip(&medians).skip(1) {
        let speed = peer.wall.as_secs_f64() / ours.wall.as_secs_f64();
        rows.push(Row {
            bench: "batch".into(),
            case: format!("{case}: wall"),
            ours: format!("{:.2} s", ours.wall.as_secs_f64()),
            peer_name: engine.peer_name.into(),
            peer: format!("{:.2} s", peer.wall.as_secs_f64()),
            ratio: if speed >= 1.0 { format!("{speed:.2}x faster") } else { format!("{:.2}x slower", 1.0 / speed) },
        });
        let memory = peer.peak_rss_bytes as f64 / ours.peak_rss_bytes.max(1) as f64;
        rows.push(Row {
            bench: "batch".into(),
            case: format!("{case}: peak RSS"),
            ours: mib(ours.peak_rss_bytes),
            peer_name: engine.peer_name.into(),
            peer: mib(peer.peak_rss_bytes),
            ratio: if memory >= 1.0 { format!("{memory:.1}x less") } else { format!("{:.1}x more", 1.0 / memory) },
        });
    }
    Ok(rows)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(paths::repo_root())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn render_table(rows: &[Row], profile: Profile) -> String {
    let date =
        Command::new("date").arg("-u").arg("+%Y-%m-%d").output().ok().and_then(|o| String::from_utf8(o.stdout).ok()).unwrap_or_default();
    let mut out = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` on {} at commit {}, {} build.\nMachine: {}.\nEach figure is the median of the runs; the peer ran in the same run against the same local services.\n\n",
        date.trim(),
        git_commit(),
        profile.name(),
        machine()
    );
    out.push_str("| bench | case | ours | peer | peer figure | ratio |\n|---|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!("| {} | {} | {} | {} | {} | {} |\n", r.bench, r.case, r.ours, r.peer_name, r.peer, r.ratio));
    }
    out
}

/// `provision` against moto: a full apply next to the no-op re-apply of the
/// same stack (which must send no mutating call), then teardown, each as a
/// `pipeline-infra` process the way a user runs it. MSK Connect and MWAA
/// are skipped: moto has neither.
fn provision_bench(runs: usize, pipeline: &Path) -> Result<Row> {
    let bin = pipeline_bin::build_one("infra", "pipeline-infra", Profile::Dev)?;
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    let (mut first_calls, mut second_calls) = (0, 0);
    for run in 0..runs.max(1) {
        let uid = format!("bench{}{run}", std::process::id());
        eprintln!("\nprovision {uid} against moto (run {}/{runs})", run + 1);
        let keys = tempfile_dir(&uid)?;
        let infra = |command: &str, extra: &[&str]| -> Result<(Duration, String)> {
            let started = Instant::now();
            let out = Command::new(&bin)
                .arg(command)
                .args(["--uid", &uid, "--endpoint-url", &stack::moto_endpoint(), "--key-dir"])
                .arg(&keys)
                .args(["--set", &format!("airflow.dags_bucket={uid}-dags")])
                .args(["--set", "kafka.bootstrap_servers=b-1.bench.kafka.us-east-1.amazonaws.com:9098"])
                .args(extra)
                .envs(stack::client_env())
                .env("PIPELINE_LOCAL_DIR", paths::local_dir().join("bench"))
                .stderr(Stdio::inherit())
                .output()?;
            if !out.status.success() {
                bail!("pipeline-infra {command} failed ({})", out.status);
            }
            Ok((started.elapsed(), String::from_utf8(out.stdout)?))
        };
        let mutating = |stdout: &str| -> Result<usize> {
            let line = stdout.lines().find(|l| l.starts_with("applied:")).context("provision printed no `applied:` line")?;
            let calls = line.split(", ").nth(1).and_then(|p| p.split_whitespace().next()).and_then(|n| n.parse().ok());
            calls.with_context(|| format!("cannot read the call count in `{line}`"))
        };
        // The client machine's data path needs a `pipeline` binary to
        // upload; moto never runs it, so the measured one serves.
        let binary = format!("ec2.pipeline_binary={}", pipeline.display());
        let apply = ["--skip", "connect,mwaa", "--wait-timeout", "5m", "--set", binary.as_str()];
        let (first, out) = infra("provision", &apply)?;
        first_calls = mutating(&out)?;
        let (second, out) = infra("provision", &apply)?;
        second_calls = mutating(&out)?;
        infra("teardown", &["--skip", "connect,mwaa", "--yes", "--delete-data"])?;
        firsts.push(first);
        seconds.push(second);
        std::fs::remove_dir_all(&keys).ok();
    }
    if second_calls != 0 {
        bail!("the second apply sent {second_calls} mutating calls; it must send none");
    }
    let (first, second) = (median(&mut firsts), median(&mut seconds));
    Ok(Row {
        bench: "provision (moto)".into(),
        case: "full apply; connect, mwaa skipped (pipeline-infra process)".into(),
        ours: format!("{:.2} s, {first_calls} mutating calls", first.as_secs_f64()),
        peer_name: "no-op re-apply".into(),
        peer: format!("{:.2} s, {second_calls} mutating calls", second.as_secs_f64()),
        ratio: format!("{:.1}x", first.as_secs_f64() / second.as_secs_f64()),
    })
}

fn tempfile_dir(name: &str) -> Result<std::path::PathBuf> {
    let dir = paths::local_dir().join("bench").join(format!("keys-{name}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

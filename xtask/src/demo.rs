//! `cargo xtask demo`: the whole batch path on the local stack. Emulated
//! posts go through the REST-proxy-compatible ingest server into Kafka,
//! the sink writes them to S3 (moto) in the Confluent layout, and the
//! batch job prints the analysis tables.

use anyhow::Result;
use contract::DEFAULT_UID;

use crate::pipeline_bin;
use crate::{install, paths, stack};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Deployment user id (topics <uid>.pin|geo|user, bucket user-<uid>-bucket).
    #[arg(long, default_value = DEFAULT_UID)]
    pub uid: String,
    /// Emulation rounds; each posts one record to each of the three topics.
    #[arg(long, default_value_t = 500)]
    pub count: u64,
    /// Rounds per POST (1 = one record per request, as the original emulator).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Records per S3 object (the original connector uses 1).
    #[arg(long, default_value_t = 1)]
    pub flush_size: usize,
}

pub fn run(args: DemoArgs) -> Result<()> {
    install::ensure_system_packages()?;
    // The stack's jars, venv and data directory are fetched while
    // `pipeline` compiles; the services start after.
    let installs = std::thread::spawn(|| stack::prepare(&stack::Service::DEFAULT));
    // Only the batch path: the demo never compiles the provisioning SDKs,
    // nor Delta.
    let bin = pipeline_bin::build_batch_path(pipeline_bin::Profile::Dev)?;
    installs.join().expect("the installer thread does not panic")?;
    stack::up()?;
    let env = stack::client_env();
    let bucket = contract::Names::new(&args.uid).map_err(anyhow::Error::msg)?.sink_bucket();
    let s3 = format!("s3://{bucket}");

    let uid = ["--uid".to_string(), args.uid.clone()];
    let cat = |parts: &[&str]| -> Vec<String> { parts.iter().map(|s| s.to_string()).chain(uid.iter().cloned()).collect() };
    pipeline_bin::run(&bin, &cat(&["topics", "create"]), &env)?;

    let (ingest, target) = pipeline_bin::start_ingest(&bin, &[], &env, &paths::log_dir().join("demo-ingest.log"))?;
    pipeline_bin::run(
        &bin,
        &cat(&["emulate", "--target", &target, "--count", &args.count.to_string(), "--batch", &args.batch.to_string()]),
        &env,
    )?;
    drop(ingest);

    let endpoint = stack::moto_endpoint();
    pipeline_bin::run(
        &bin,
        &cat(&[
            "sink",
            "--to",
            &s3,
            "--create-bucket",
            "--aws-endpoint-url",
            &endpoint,
            "--flush-size",
            &args.flush_size.to_string(),
            "--until-caught-up",
        ]),
        &env,
    )?;
    let report = paths::local_dir().join("demo-report.html");
    let report_arg = report.display().to_string();
    pipeline_bin::run(&bin, &cat(&["batch", "--input", &s3, "--aws-endpoint-url", &endpoint, "--report", &report_arg]), &env)?;
    eprintln!("\nthe analysis as charts: {} (open it in a browser)", report.display());
    eprintln!("demo done. The stack keeps running (`cargo xtask local status`; `cargo xtask local down` stops it).");
    Ok(())
}

//! `cargo xtask verify`: `pipeline verify` against a provisioned deployment
//! (`--target`, the invoke URL `provision` printed), or against a local
//! deployment it starts on the local stack: its topics, an ingest server
//! that wants an API key as API Gateway does, and a sink into moto.

use std::path::PathBuf;

use anyhow::Result;
use contract::DEFAULT_UID;

use crate::pipeline_bin::{self, Background};
use crate::{install, paths, stack};

/// The key the local deployment's ingest server wants in `x-api-key`, as
/// API Gateway wants the deployment's: made up, like moto's keys.
const LOCAL_API_KEY: &str = "local-verify-api-key";

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The deployment's invoke URL (`provision` prints it). Without it, a
    /// local deployment is started on the local stack and verified.
    #[arg(long)]
    pub target: Option<String>,
    /// The deployment's API key file (`provision` writes .local/keys/<uid>-api-key).
    #[arg(long, requires = "target")]
    pub api_key_file: Option<PathBuf>,
    /// Deployment user id.
    #[arg(long, default_value = DEFAULT_UID)]
    pub uid: String,
    /// More `pipeline verify` options after `--` (e.g. -- --sink-timeout 300 --keep).
    #[arg(last = true)]
    pub rest: Vec<String>,
}

pub fn run(args: VerifyArgs) -> Result<()> {
    install::ensure_system_packages()?;
    // Reading Delta tables needs the stream worker's build; the rest, the
    // batch path's (a third less to compile).
    let bin = if args.rest.iter().any(|a| a == "--delta" || a.starts_with("--delta=")) {
        pipeline_bin::build_for_tests()?
    } else {
        pipeline_bin::build_batch_path(pipeline_bin::Profile::Dev)?
    };
    let mut verify: Vec<String> = vec!["verify".into(), "--uid".into(), args.uid.clone()];
    let Some(target) = args.target else {
        return verify_local(&bin, verify, &args.uid, &args.rest);
    };
    verify.extend(["--target".to_string(), target]);
    if let Some(key) = args.api_key_file {
        verify.extend(["--api-key-file".to_string(), key.display().to_string()]);
    }
    verify.extend(args.rest);
    pipeline_bin::run(&bin, &verify, &[])
}

fn verify_local(bin: &std::path::Path, mut verify: Vec<String>, uid: &str, rest: &[String]) -> Result<()> {
    eprintln!("no --target: verifying a local deployment of {uid} on the local stack");
    stack::up()?;
    let env = stack::client_env();
    let moto = stack::moto_endpoint();
    let s3 = format!("s3://{}", contract::Names::new(uid).map_err(anyhow::Error::msg)?.sink_bucket());
    pipeline_bin::run(bin, &["topics".into(), "create".into(), "--uid".into(), uid.into()], &env)?;
    let key_file = paths::local_dir().join("keys/local-verify-api-key");
    std::fs::create_dir_all(key_file.parent().expect("in a directory"))?;
    std::fs::write(&key_file, format!("{LOCAL_API_KEY}\n"))?;
    let key_arg = key_file.display().to_string();
    let (_ingest, target) = pipeline_bin::start_ingest(
        bin,
        &["--require-header".into(), "x-api-key".into(), "--require-header-value-file".into(), key_arg.clone()],
        &env,
        &paths::log_dir().join("verify-ingest.log"),
    )?;
    let _sink = Background::spawn(
        bin,
        &[
            "sink".into(),
            "--uid".into(),
            uid.into(),
            "--to".into(),
            s3,
            "--create-bucket".into(),
            "--aws-endpoint-url".into(),
            moto.clone(),
        ],
        &env,
        &paths::log_dir().join("verify-sink.log"),
    )?;
    verify.extend(["--target".into(), target, "--api-key-file".into(), key_arg, "--aws-endpoint-url".into(), moto]);
    verify.extend(rest.iter().cloned());
    pipeline_bin::run(bin, &verify, &env)
}

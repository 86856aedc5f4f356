//! `cargo xtask`: the project's commands. Thin: it installs and starts the
//! local stack and drives the binaries as processes (`pipeline` for the data
//! path, `pipeline-infra` for the deployment), building each on demand, so
//! that it links neither rdkafka, DataFusion nor an AWS SDK itself.

mod bench;
mod client_bin;
mod demo;
mod install;
mod lint;
mod local_airflow;
mod msk_tls;
mod paths;
mod pipeline_bin;
mod stack;
mod test_cmd;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Run the Pinterest pipeline locally, provision it on AWS, and test it")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Manage the local stack: Apache Kafka (KRaft), moto and MariaDB (and LocalStack on request), on 127.0.0.1.
    Local {
        #[command(subcommand)]
        action: LocalAction,
    },
    /// Run the batch pipeline end to end on the local stack and print the analysis.
    Demo(demo::DemoArgs),
    /// Install what the tests need, start the local stack, run all tests.
    Test(test_cmd::TestArgs),
    /// rustfmt, clippy (warnings are errors) and the architecture invariants
    /// of docs/ARCHITECTURE.md (`cargo tree`). CI runs the invariants first
    /// and compiles clippy into the test build (`test --clippy`).
    Lint(lint::LintArgs),
    /// Benchmarks, each next to a peer measured in the same run (ingest vs a
    /// direct producer, sink vs raw PUTs, batch vs PySpark).
    Bench(bench::BenchArgs),
    /// Render the deployment's files from pipeline.toml (runs `pipeline-infra render`; --help lists its options).
    #[command(disable_help_flag = true)]
    Render(Forward),
    /// Upload the rendered DAG to the MWAA dags bucket (runs `pipeline-infra deploy-dag`).
    #[command(disable_help_flag = true)]
    DeployDag(Forward),
    /// Create the deployment on AWS; idempotent, --dry-run prints the plan (runs `pipeline-infra provision`).
    #[command(disable_help_flag = true)]
    Provision(Forward),
    /// List the deployment's resources, found by the stack tag (runs `pipeline-infra status`).
    #[command(disable_help_flag = true)]
    Status(Forward),
    /// Delete every resource tagged with the stack (runs `pipeline-infra teardown`).
    #[command(disable_help_flag = true)]
    Teardown(Forward),
    /// Prove a deployment end to end: tagged records through the invoke URL
    /// (with its API key), waited for in the sink bucket, cleaned by the batch
    /// job; each hop with its latency, a broken one named with its likely
    /// cause. Without --target, a local deployment on the local stack.
    Verify(verify::VerifyArgs),
}

/// Arguments for `pipeline-infra`, passed on as given: its options live in
/// one place, and `--help` shows them.
#[derive(Debug, clap::Args)]
struct Forward {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum LocalAction {
    /// Install (first run) and start Kafka, moto and MariaDB; reuses healthy running services.
    Up {
        /// Also start LocalStack (no Docker, Python 3.13) at http://127.0.0.1:4566,
        /// a second local AWS beside moto: S3, STS, IAM, EC2, API Gateway, Kinesis.
        #[arg(long)]
        localstack: bool,
        /// Also start a second Kafka broker whose client listeners take only
        /// MSK IAM tokens (signature checked for the test key pair, operations
        /// authorized by IAM policy): SASL_PLAINTEXT at 127.0.0.1:19094 and
        /// SASL_SSL at localhost:19097, whose test CA is added to the system
        /// trust store (needs a JDK's javac, openssl, ca-certificates).
        #[arg(long)]
        msk_iam: bool,
    },
    /// Start a local Airflow 3 on 127.0.0.1 (under .local/airflow/) with the
    /// local DAG, which runs `pipeline batch` each day over the demo's data;
    /// runs in the foreground until Ctrl-C.
    Airflow(local_airflow::AirflowArgs),
    /// Stop the services.
    Down,
    /// Show each service's state, pid, address and log file, then
    /// `pipeline status` for the default uid (the demo's data).
    Status,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Local { action: LocalAction::Up { localstack, msk_iam } } => {
            let mut services = stack::Service::DEFAULT.to_vec();
            install::ensure_system_packages()?;
            if localstack {
                install::ensure_localstack_packages()?;
                services.push(stack::Service::Localstack);
            }
            if msk_iam {
                install::ensure_msk_iam_packages()?;
                services.push(stack::Service::KafkaMskIam);
            }
            stack::up_services(&services)?;
            for line in stack::status() {
                println!("{line}");
            }
        }
        Cmd::Local { action: LocalAction::Airflow(args) } => local_airflow::run(args)?,
        Cmd::Local { action: LocalAction::Down } => stack::down(&stack::Service::ALL)?,
        Cmd::Local { action: LocalAction::Status } => {
            for line in stack::status() {
                println!("{line}");
            }
            // Where the demo's data stands, when the binary is built.
            let bin = paths::repo_root().join("target/debug/pipeline");
            if bin.exists() && stack::Service::Kafka.healthy() {
                println!();
                let _ = std::process::Command::new(bin).arg("status").envs(stack::client_env()).status();
            }
        }
        Cmd::Demo(args) => demo::run(args)?,
        Cmd::Test(args) => test_cmd::run(args)?,
        Cmd::Lint(args) => lint::run(args)?,
        Cmd::Bench(args) => bench::run(args)?,
        Cmd::Render(f) => infra("render", f)?,
        Cmd::DeployDag(f) => infra("deploy-dag", f)?,
        Cmd::Provision(f) => infra("provision", f)?,
        Cmd::Status(f) => infra("status", f)?,
        Cmd::Teardown(f) => infra("teardown", f)?,
        Cmd::Verify(args) => verify::run(args)?,
    }
    Ok(())
}

/// Build `pipeline-infra` (the provisioning SDKs live only there) and run one
/// of its commands from the repository root, with the repository's `.local/`.
fn infra(command: &str, forward: Forward) -> Result<()> {
    let bin = pipeline_bin::build_one("infra", "pipeline-infra", pipeline_bin::Profile::Dev)?;
    let mut cmd = std::process::Command::new(bin);
    // ec2.data_path = "pipeline" (the default) uploads our binary to the
    // client machine: built here, on demand, for Amazon Linux 2023.
    if let Some(parts) = (command == "provision").then(|| client_bin::provision_needs_binary(&forward.args)).flatten() {
        let client = client_bin::build_portable(client_bin::PortableBuild::Release, parts)?;
        cmd.env("PIPELINE_CLIENT_BINARY", client);
    }
    let status =
        cmd.arg(command).args(&forward.args).current_dir(paths::repo_root()).env("PIPELINE_LOCAL_DIR", paths::local_dir()).status()?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

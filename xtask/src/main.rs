//! `cargo xtask`: the project's commands. Thin: parses arguments and calls
//! the crates (or the `pipeline` binary).

mod bench;
mod demo;
mod install;
mod paths;
mod pipeline_bin;
mod provision;
mod render;
mod stack;
mod test_cmd;

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
    /// Manage the local stack: Apache Kafka (KRaft) and moto, on 127.0.0.1.
    Local {
        #[command(subcommand)]
        action: LocalAction,
    },
    /// Run the batch pipeline end to end on the local stack and print the analysis.
    Demo(demo::DemoArgs),
    /// Install what the tests need, start the local stack, run all tests.
    Test(test_cmd::TestArgs),
    /// Benchmarks, each next to a peer measured in the same run (ingest vs a
    /// direct producer, sink vs raw PUTs, batch vs PySpark).
    Bench(bench::BenchArgs),
    /// Render the deployment's files (Kafka client and REST proxy properties,
    /// connector config, EC2 user-data, Airflow DAG and requirements, Databricks
    /// notebooks) from pipeline.toml. Deterministic; names every missing variable.
    Render(render::RenderArgs),
    /// Render the DAG and requirements.txt and upload them to the MWAA dags
    /// bucket (s3://<airflow.dags_bucket>/dags/), confirming each upload.
    DeployDag(render::DeployDagArgs),
    /// Create the deployment on AWS: buckets, IAM roles, network, MSK cluster,
    /// EC2 client machine, Kinesis streams, API Gateway, MSK Connect, MWAA.
    /// Idempotent (a second run changes nothing); --dry-run prints the plan.
    Provision(provision::ProvisionArgs),
    /// List the deployment's resources, found by the stack tag.
    Status(provision::TargetArgs),
    /// Delete every resource tagged with the stack, in reverse dependency order.
    Teardown(provision::TeardownArgs),
}

#[derive(Subcommand)]
enum LocalAction {
    /// Install (first run) and start Kafka and moto; reuses healthy running services.
    Up,
    /// Stop the services.
    Down,
    /// Show each service's state, pid, address and log file.
    Status,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Local { action: LocalAction::Up } => {
            install::ensure_system_packages()?;
            stack::up()?;
            for line in stack::status() {
                println!("{line}");
            }
        }
        Cmd::Local { action: LocalAction::Down } => stack::down(&stack::Service::ALL)?,
        Cmd::Local { action: LocalAction::Status } => {
            for line in stack::status() {
                println!("{line}");
            }
        }
        Cmd::Demo(args) => demo::run(args)?,
        Cmd::Test(args) => test_cmd::run(args)?,
        Cmd::Bench(args) => bench::run(args)?,
        Cmd::Render(args) => render::run_render(args)?,
        Cmd::DeployDag(args) => render::run_deploy_dag(args)?,
        Cmd::Provision(args) => provision::run_provision(args)?,
        Cmd::Status(args) => provision::run_status(args)?,
        Cmd::Teardown(args) => provision::run_teardown(args)?,
    }
    Ok(())
}

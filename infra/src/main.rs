//! `pipeline-infra`: the deployment on AWS (or an emulator) and the files
//! it is made from. `cargo xtask render | deploy-dag | provision | status |
//! teardown` build this binary on demand and run it, so that only these
//! commands compile the provisioning SDKs.

mod commands;
mod config_args;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pipeline-infra",
    version,
    about = "Render, provision, inspect and tear down the Pinterest pipeline's deployment",
    long_about = "Render, provision, inspect and tear down the Pinterest pipeline's deployment.\n\n\
        Every command reads pipeline.toml (copy pipeline.example.toml), or --uid for defaults. \
        Credentials and region come from the standard AWS chain; --endpoint-url (or AWS_ENDPOINT_URL) \
        targets moto or LocalStack. Usually run as `cargo xtask <command>`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the deployment's files (Kafka client and REST proxy properties,
    /// connector config, EC2 user-data, Airflow DAG and requirements, Databricks
    /// notebooks) from pipeline.toml. Deterministic; names every missing variable.
    Render(commands::RenderArgs),
    /// Render the DAG and requirements.txt and upload them to the MWAA dags
    /// bucket (s3://<airflow.dags_bucket>/dags/), confirming each upload.
    DeployDag(commands::DeployDagArgs),
    /// Create the deployment on AWS: buckets, IAM roles, network, MSK cluster,
    /// EC2 client machine, Kinesis streams, API Gateway, MSK Connect, MWAA.
    /// Idempotent (a second run changes nothing); --dry-run prints the plan.
    Provision(commands::ProvisionArgs),
    /// List the deployment's resources, found by the stack tag.
    Status(commands::TargetArgs),
    /// Delete every resource tagged with the stack, in reverse dependency order.
    Teardown(commands::TeardownArgs),
}

fn main() -> Result<()> {
    use tracing_subscriber::prelude::*;
    let spec = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| "info".into());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .with_filter(tracing_subscriber::filter::filter_fn(infra::log_allowed)),
        )
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    match Cli::parse().command {
        Command::Render(args) => commands::render(args),
        Command::DeployDag(args) => rt.block_on(commands::deploy_dag(args)),
        Command::Provision(args) => rt.block_on(commands::provision(args)),
        Command::Status(args) => rt.block_on(commands::status(args)),
        Command::Teardown(args) => rt.block_on(commands::teardown(args)),
    }
}

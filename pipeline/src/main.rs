//! `pipeline`: run one component of the Pinterest pipeline. Each
//! component's flags, defaults and command live in its crate (`cli`
//! modules); this file only dispatches.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pipeline",
    version,
    about = "The Pinterest data pipeline, locally or against AWS",
    long_about = "The Pinterest data pipeline, locally or against AWS.\n\n\
        Batch path: `emulate` posts records to a Kafka REST Proxy API (`ingest` serves one locally, \
        or use the API Gateway invoke URL), `sink` writes the topics to S3 in the Confluent S3 sink \
        layout, and `batch` cleans the data and prints the analysis tables.\n\n\
        `cargo xtask demo` runs all of it on the local stack."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Each subcommand's help is its component's `Args` doc comment.
enum Command {
    Emulate(pipeline::emulate::cli::EmulateArgs),
    SeedMysql(pipeline::emulate::cli::SeedMysqlArgs),
    Generate(pipeline::emulate::cli::GenerateArgs),
    Ingest(pipeline::ingest::cli::IngestArgs),
    /// Create or list the deployment's topics.
    Topics {
        #[command(subcommand)]
        action: pipeline::topics::TopicsAction,
    },
    Sink(pipeline::sink::cli::SinkArgs),
    #[cfg(feature = "batch")]
    Batch(pipeline::batch::cli::BatchArgs),
    #[cfg(feature = "stream")]
    Stream(pipeline::stream::cli::StreamArgs),
    Status(pipeline::status::StatusArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // Delta's engine logs every snapshot and commit at INFO.
            "info,rdkafka=warn,deltalake_core=warn,buoyant_kernel=warn".into()
        }))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Emulate(args) => args.run().await,
        Command::SeedMysql(args) => args.run().await,
        Command::Generate(args) => args.run(),
        Command::Ingest(args) => args.run().await,
        Command::Topics { action } => action.run().await,
        Command::Sink(args) => args.run().await,
        #[cfg(feature = "batch")]
        Command::Batch(args) => args.run().await,
        #[cfg(feature = "stream")]
        Command::Stream(args) => args.run().await,
        Command::Status(args) => args.run().await,
    }
}

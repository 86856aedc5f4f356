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
    Emulate(pipeline_emulate::cli::EmulateArgs),
    SeedMysql(pipeline_emulate::cli::SeedMysqlArgs),
    Generate(pipeline_emulate::cli::GenerateArgs),
    Ingest(pipeline_ingest::cli::IngestArgs),
    /// Create or list the deployment's topics.
    Topics {
        #[command(subcommand)]
        action: pipeline::topics::TopicsAction,
    },
    Sink(pipeline_sink::cli::SinkArgs),
    #[cfg(feature = "batch")]
    Batch(pipeline_batch::cli::BatchArgs),
    #[cfg(feature = "stream")]
    Stream(pipeline_stream::cli::StreamArgs),
    #[cfg(not(feature = "batch"))]
    #[command(hide = true, disable_help_flag = true)]
    Batch(Absent),
    #[cfg(not(feature = "stream"))]
    #[command(hide = true, disable_help_flag = true)]
    Stream(Absent),
    Status(pipeline::status::StatusArgs),
    #[cfg(feature = "batch")]
    Verify(pipeline::verify::VerifyArgs),
    #[cfg(not(feature = "batch"))]
    #[command(hide = true, disable_help_flag = true)]
    Verify(Absent),
}

/// A component this build leaves out (the demo's and the client machine's
/// builds): named in the error instead of clap's "unrecognized subcommand".
#[cfg(not(all(feature = "batch", feature = "stream")))]
#[derive(clap::Args)]
struct Absent {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

#[cfg(not(all(feature = "batch", feature = "stream")))]
fn absent(component: &str, elsewhere: &str) -> Result<()> {
    anyhow::bail!(
        "this pipeline binary was built without `{component}` (cargo feature `{component}`): \
         run a build that has it, e.g. from `cargo build -p pipeline` (all components){elsewhere}"
    )
}

fn main() -> Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

/// glibc's malloc gives each thread that allocates its own arena (up to
/// eight per core) and keeps what is freed in them. `pipeline batch` reads
/// objects on tokio's blocking threads and frees them on others: at 3
/// million records its peak RSS measured 238-266 MB with the default and
/// 158-170 MB with four arenas, at the same speed (commit 32c7f55). Set
/// before the runtime starts its threads; a `MALLOC_ARENA_MAX` in the
/// environment is left to glibc.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable; no thread allocates yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

async fn run() -> Result<()> {
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
        #[cfg(not(feature = "batch"))]
        Command::Batch(_) => absent("batch", ""),
        #[cfg(not(feature = "stream"))]
        Command::Stream(_) => absent("stream", "; for the client machine, provision with ec2.stream_worker = true"),
        Command::Status(args) => args.run().await,
        #[cfg(feature = "batch")]
        Command::Verify(args) => args.run().await,
        #[cfg(not(feature = "batch"))]
        Command::Verify(_) => absent("verify", ""),
    }
}

//! `pipeline-bench`: one component next to its peer, as JSON lines (one
//! measurement each). `cargo xtask bench` builds and runs it.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pipeline-bench", about = "Measure a pipeline component next to its peer; prints one JSON object per measurement")]
struct Cli {
    #[command(subcommand)]
    what: BenchWhat,
}

/// The local services a bench talks to.
#[derive(Args)]
struct Services {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = pipeline_kafka::LOCAL_BOOTSTRAP)]
    bootstrap_servers: String,
    /// AWS endpoint (moto); default: AWS_ENDPOINT_URL.
    #[arg(long)]
    aws_endpoint_url: Option<String>,
}

impl Services {
    fn aws(&self) -> aws_setup::AwsTarget {
        aws_setup::AwsTarget::new(self.aws_endpoint_url.clone(), None)
    }
}

#[derive(Subcommand)]
enum BenchWhat {
    /// POST -> object in S3 latency (p50, p99) at a fixed rate, flush.size 1,
    /// vs a PUT of the same bytes to the same endpoint.
    E2e {
        #[command(flatten)]
        services: Services,
        /// s3://bucket for the objects.
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value_t = 300)]
        records: u64,
        /// Records per second.
        #[arg(long, default_value_t = 30.0)]
        rate: f64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// PUT -> row in Delta latency (p50, p99) at a fixed rate vs Kinesis's own
    /// PutRecord -> GetRecords latency, and records/s catching up on a
    /// 6,000-record backlog vs bare GetRecords draining it.
    Stream {
        #[command(flatten)]
        services: Services,
        /// Rounds (one record per kind each) per run.
        #[arg(long, default_value_t = 200)]
        rounds: u64,
        /// Rounds per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Records/s through the ingest server (1 and 100 records per POST) vs a direct producer.
    Ingest {
        #[command(flatten)]
        services: Services,
        /// Records per run (at most 30,000 with one record per POST).
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Records/s Kafka -> S3 objects (flush.size 1 and 1000) vs raw PUTs, and
    /// the sink beside ingest at full speed: its records/s and its lag when
    /// ingest ends.
    Sink {
        #[command(flatten)]
        services: Services,
        /// An existing bucket (or directory) to write under: s3://bucket[/prefix].
        #[arg(long)]
        bucket: String,
        /// Records per run (the flush.size 1000 case uses at least 90,000, the
        /// case beside ingest at least 300,000).
        #[arg(long, default_value_t = 6_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The flush.size cases to run, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 1000])]
        flush_sizes: Vec<usize>,
        /// Leave out the case with ingest running beside the sink.
        #[arg(long)]
        no_beside_ingest: bool,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn,deltalake_core=warn,buoyant_kernel=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rows = match Cli::parse().what {
        BenchWhat::Ingest { services, records, runs } => bench::ingest(&services.bootstrap_servers, records, runs).await?,
        BenchWhat::Sink { services, bucket, records, runs, flush_sizes, no_beside_ingest } => {
            let cases = bench::SinkCases { flush_sizes, beside_ingest: !no_beside_ingest };
            bench::sink(&services.bootstrap_servers, &bucket, &services.aws(), records, runs, &cases).await?
        }
        BenchWhat::E2e { services, bucket, records, rate, runs } => {
            bench::e2e(&services.bootstrap_servers, &bucket, &services.aws(), records, rate, runs).await?
        }
        BenchWhat::Stream { services, rounds, rate, runs } => bench::stream(&services.aws(), rounds, rate, runs).await?,
    };
    for m in rows {
        println!("{}", serde_json::to_string(&m)?);
    }
    Ok(())
}

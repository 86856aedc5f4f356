//! `pipeline`: run one component of the Pinterest pipeline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use contract::DEFAULT_UID;
use contract::Names;
use pipeline::emulate::{EmulateConfig, RowSource};
use pipeline::generate::{ORIGINAL_TABLE_ROWS, SyntheticSource};
use pipeline::ingest::IngestConfig;
use pipeline::mysql_source::{self, MysqlSource};
use pipeline::sink::{SinkConfig, StopWhen};
use pipeline::storage::Location;
use pipeline::{batch, emulate, ingest, kafka, sink};

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

#[derive(Args, Clone)]
struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = kafka::LOCAL_BOOTSTRAP)]
    bootstrap_servers: String,
    /// Extra librdkafka setting, repeatable (e.g. -X security.protocol=SASL_SSL).
    /// Given after --kafka-auth's settings, so they can change those.
    #[arg(short = 'X', value_parser = kafka::parse_override)]
    kafka_setting: Vec<(String, String)>,
    /// How the clients authenticate. msk-iam: SASL/OAUTHBEARER over TLS
    /// with a token signed by the standard AWS credentials chain (the
    /// instance profile on EC2), for the IAM listener (port 9098) of the
    /// MSK cluster `cargo xtask provision` makes.
    #[arg(long, value_enum, env = "PIPELINE_KAFKA_AUTH", default_value_t = kafka::KafkaAuthMode::None)]
    kafka_auth: kafka::KafkaAuthMode,
    /// Region of the MSK cluster the tokens are for; default: AWS_REGION,
    /// the profile's, the instance's, then us-east-1.
    #[arg(long, value_name = "REGION")]
    msk_region: Option<String>,
}

impl KafkaArgs {
    /// The authentication the clients share; for MSK IAM the credentials
    /// are looked up now, so their absence is the first error.
    async fn auth(&self) -> Result<kafka::KafkaAuth> {
        Ok(kafka::KafkaAuth::resolve(self.kafka_auth, self.msk_region.clone()).await?)
    }
}

#[derive(Args, Clone)]
struct UidArg {
    /// Deployment user id: topics are <uid>.pin|geo|user, the bucket user-<uid>-bucket.
    #[arg(long, env = "PIPELINE_UID", default_value = DEFAULT_UID)]
    uid: String,
}

impl UidArg {
    fn names(&self) -> Result<Names> {
        Names::new(&self.uid).map_err(anyhow::Error::msg)
    }
}

/// Where AWS calls go: S3 for the sink, batch and stream outputs, Kinesis
/// for the stream routes and the stream worker.
#[derive(Args, Clone)]
struct AwsArgs {
    /// AWS endpoint override (moto, LocalStack); default: AWS_ENDPOINT_URL,
    /// then AWS. A loopback endpoint is an emulator and gets dummy
    /// credentials; otherwise credentials come from the standard AWS chain.
    #[arg(long, alias = "s3-endpoint")]
    aws_endpoint_url: Option<String>,
    /// AWS region; default: AWS_REGION, then the profile's, then us-east-1.
    #[arg(long, alias = "region")]
    aws_region: Option<String>,
}

impl AwsArgs {
    fn target(&self) -> aws_setup::AwsTarget {
        aws_setup::AwsTarget::new(self.aws_endpoint_url.clone(), self.aws_region.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Post emulated user activity (pin, geo, user records) to a REST Proxy API.
    Emulate {
        #[command(flatten)]
        uid: UidArg,
        /// REST proxy base URL: the local ingest server or the API Gateway invoke URL.
        #[arg(long, default_value = "http://127.0.0.1:8082")]
        target: String,
        /// batch: POST to the REST proxy's topics; stream: PUT to the Kinesis
        /// routes /streams/streaming-<uid>-<kind>/record(s), as the original stream emulator.
        #[arg(long, value_enum, default_value = "batch")]
        mode: ModeArg,
        /// Rounds to send; each round posts one record to each of the three topics.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Records per second over all topics (default: as fast as allowed).
        #[arg(long)]
        rate: Option<f64>,
        /// Rounds per request: 1 posts one record per request, as the original emulator.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Retries of a request answered with a retriable error (503).
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// Where rows come from: `synthetic` (seeded generator, the default) or
        /// the original database, `mysql://user:password@host:port/database`
        /// with tables pinterest_data, geolocation_data and user_data (TLS:
        /// append `?require_ssl=true`). Prefer the PIPELINE_MYSQL_URL
        /// variable to keep the password out of shell history.
        #[arg(long, env = "PIPELINE_SOURCE", default_value = "synthetic", hide_env_values = true)]
        source: String,
        /// Seed of the synthetic source tables, and of the row offsets drawn.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows per synthetic source table.
        #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
        rows: u64,
        /// File holding the deployment's API Gateway key, sent as x-api-key
        /// (`provision` writes it to .local/keys/<uid>-api-key). The
        /// PIPELINE_API_KEY variable works too; never on the command line.
        #[arg(long, value_name = "PATH")]
        api_key_file: Option<PathBuf>,
    },
    /// Create the source tables (pinterest_data, geolocation_data, user_data,
    /// the original's columns) in a MySQL/MariaDB database and fill them from
    /// the synthetic generator, so `emulate --source mysql://...` has the
    /// original's database to read. Row i has index/ind i.
    SeedMysql {
        /// `mysql://user:password@host:port/database`.
        #[arg(long, env = "PIPELINE_MYSQL_URL", hide_env_values = true)]
        url: String,
        /// Seed of the synthetic source tables.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows per table.
        #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
        rows: u64,
        /// Empty tables that already hold rows instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// Write generated rounds straight into the S3 sink's layout in a directory,
    /// as if emulate, ingest and sink had run: input for `batch` at any size.
    Generate {
        #[command(flatten)]
        uid: UidArg,
        /// Directory to write `topics/<uid>.<kind>/partition=0/...` under.
        #[arg(long)]
        output: PathBuf,
        /// Rounds to write (one pin, geo and user record each), drawn at random
        /// row offsets like the emulator's, so rows repeat.
        #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
        count: u64,
        /// Records per object.
        #[arg(long, default_value_t = 1000)]
        flush_size: usize,
        /// Seed of the synthetic source tables.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows per synthetic source table.
        #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
        rows: u64,
    },
    /// Serve the Confluent REST Proxy v2 produce API, producing to Kafka.
    Ingest {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Address to listen on (loopback by default; the original proxy uses port 8082).
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// Largest accepted request body in bytes.
        #[arg(long, default_value_t = 8 * 1024 * 1024)]
        max_body_bytes: usize,
        /// Request body bytes held at once over all requests: bounds memory
        /// under many large requests. Beyond it requests wait (up to
        /// --body-timeout), then get 429 with Retry-After.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        max_inflight_body_bytes: usize,
        /// Seconds a record may wait for Kafka before the request fails as retriable.
        #[arg(long, default_value_t = 10.0)]
        delivery_timeout: f64,
        /// Seconds a client may take to send a request body (slow clients get 408).
        #[arg(long, default_value_t = 30.0)]
        body_timeout: f64,
        /// Where the Kinesis routes (PUT /streams/<stream>/record ...) send records.
        #[command(flatten)]
        aws: AwsArgs,
        /// Refuse (401, error code 40101) every request but GET /healthz that
        /// lacks this header with the right value: for a deployment reached
        /// without API Gateway, or whose gateway adds a secret header. The
        /// value comes from --require-header-value-file or
        /// PIPELINE_INGEST_HEADER_VALUE, never from the command line.
        #[arg(long, value_name = "NAME")]
        require_header: Option<String>,
        /// File holding the required header's value (one line).
        #[arg(long, value_name = "PATH", requires = "require_header")]
        require_header_value_file: Option<PathBuf>,
    },
    /// Create or list the deployment's topics.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Write Kafka topics to S3 or a directory in the Confluent S3 sink layout.
    ///
    /// Offsets are committed only after the objects are written, and object
    /// names carry the start offset, so a crashed worker that restarts
    /// rewrites the same keys: no gaps, no duplicates. For a fast restart after
    /// a crash give each worker a stable identity with
    /// `-X group.instance.id=<name>` (static membership); otherwise the group
    /// waits for the dead worker's session to time out (45 s by default).
    Sink {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        uid: UidArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// Destination: s3://bucket[/prefix] or a directory (default: s3://user-<uid>-bucket).
        #[arg(long)]
        to: Option<String>,
        /// topics.regex (default: ^<uid>\..*).
        #[arg(long)]
        topics_regex: Option<String>,
        /// Consumer group (default: <uid>-connector).
        #[arg(long)]
        group_id: Option<String>,
        /// Records per object (flush.size; the original uses 1).
        #[arg(long, default_value_t = 1)]
        flush_size: usize,
        /// Write a partial object after this many milliseconds (rotate.interval.ms).
        #[arg(long, default_value_t = 10_000)]
        rotate_interval_ms: u64,
        /// Objects uploaded at once.
        #[arg(long, default_value_t = sink::DEFAULT_UPLOAD_CONCURRENCY)]
        upload_concurrency: usize,
        /// Exit once everything in the topics is written and committed.
        #[arg(long)]
        until_caught_up: bool,
        /// Create the destination bucket if it is missing (for local
        /// emulators; on AWS `cargo xtask provision` creates it).
        #[arg(long)]
        create_bucket: bool,
        /// Serve Prometheus metrics (records, objects and bytes written,
        /// upload durations, dead letters, consumer lag per partition) at
        /// http://ADDR/metrics while the sink runs, e.g. 127.0.0.1:9102.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Clean the sink output and print the analysis tables.
    Batch {
        #[command(flatten)]
        uid: UidArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// Where the sink wrote: s3://bucket[/prefix] or a directory (default: s3://user-<uid>-bucket).
        #[arg(long)]
        input: Option<String>,
        /// Directory to write cleaned tables and results to, as Parquet, with
        /// the quarantine (quarantine/<kind>.json: lines that are not rows of
        /// their kind, with object key, line number and reason) and the
        /// cleaning summary (summary.json).
        #[arg(long)]
        output: Option<PathBuf>,
        /// How to print the results.
        #[arg(long, value_enum, default_value_t = Print::Table)]
        print: Print,
        /// Exit non-zero when any line was quarantined (after writing
        /// everything); by default such lines are skipped and counted.
        #[arg(long)]
        strict: bool,
        /// Also write a self-contained HTML page: a bar chart per question,
        /// the cleaning summary and the input read (nothing fetched from the
        /// network; open it in any browser).
        #[arg(long, value_name = "PATH")]
        report: Option<PathBuf>,
    },
    /// Kinesis to Delta: read streaming-<uid>-pin|geo|user from the oldest
    /// record, clean each micro-batch with the batch job's SQL, append to the
    /// Delta tables <uid>_pin_table etc.
    ///
    /// Each commit stores the shard positions reached, so a restart (after a
    /// crash too) resumes exactly after the last committed record. Records
    /// that are not rows of their kind go to <output>/_dead_letter/<stream>/.
    /// On S3 each commit is a put-if-absent of the next log entry, so a
    /// second writer on the same table fails its commit instead of
    /// overwriting one.
    Stream {
        #[command(flatten)]
        uid: UidArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// Where the Delta tables go: a directory, or s3://bucket[/prefix]
        /// (the endpoint and region of --aws-endpoint-url/--aws-region apply).
        #[arg(long, default_value = "delta")]
        output: String,
        /// Stop after this many seconds without new records (default: run until Ctrl-C).
        #[arg(long)]
        stop_when_idle: Option<f64>,
        /// Records per GetRecords call (at most 10000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        max_records: i32,
        /// Serve Prometheus metrics (records read, quarantined, rows
        /// committed, seconds behind each shard's tip, Delta versions, commit
        /// durations) at http://ADDR/metrics while the worker runs.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Where the deployment's data stands: the three topics' end offsets, the
    /// sink group's committed offsets and lag, the objects under the sink
    /// prefix, the Delta tables' versions and row counts, and the last batch
    /// run's cleaning summary. A part that cannot be read says why; the
    /// others are still shown.
    Status {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        uid: UidArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// The sink's destination: s3://bucket[/prefix] or a directory
        /// (default s3://user-<uid>-bucket).
        #[arg(long)]
        sink: Option<String>,
        /// The sink's consumer group (default <uid>-connector).
        #[arg(long)]
        group_id: Option<String>,
        /// Where `pipeline stream` writes the Delta tables (not looked at unless given).
        #[arg(long)]
        delta: Option<String>,
        /// The batch job's --output directory, for its summary.json (not looked at unless given).
        #[arg(long)]
        batch_output: Option<PathBuf>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create <uid>.pin, <uid>.geo and <uid>.user if missing.
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        uid: UidArg,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication: i32,
        /// Seconds to wait for a broker to answer before giving up (a new
        /// MSK cluster or a starting local broker can take a while).
        #[arg(long, default_value_t = 60.0)]
        wait_secs: f64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Batch,
    Stream,
}

#[derive(Clone, Copy, ValueEnum)]
enum Print {
    Table,
    Csv,
    Json,
    None,
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
        Command::Generate { uid, output, count, flush_size, seed, rows } => {
            let names = uid.names()?;
            let rounds = SyntheticSource::new(seed, rows).random_rounds(seed.wrapping_add(1)).take(count as usize);
            let written = pipeline::generate::write_sink_layout(&output, &names, rounds, flush_size)
                .with_context(|| format!("writing to {}", output.display()))?;
            println!("wrote {written} rounds ({} records) to {}", written * 3, output.display());
        }
        Command::SeedMysql { url, seed, rows, replace } => {
            let written = mysql_source::seed(&url, &SyntheticSource::new(seed, rows), replace).await?;
            println!("wrote {written} rows to each of pinterest_data, geolocation_data, user_data at {}", mysql_source::redacted(&url));
        }
        Command::Emulate { uid, target, mode, count, duration, rate, batch, concurrency, retries, source, seed, rows, api_key_file } => {
            let source = if source == "synthetic" {
                RowSource::Synthetic(SyntheticSource::new(seed, rows))
            } else if source.starts_with("mysql://") {
                let mysql = MysqlSource::connect(&source).await?;
                eprintln!("reading rows from {} ({} rows per table)", mysql.url(), mysql.rows());
                RowSource::Mysql(mysql)
            } else {
                anyhow::bail!(
                    "--source must be `synthetic` or a mysql://user:password@host:port/database URL, not `{}`",
                    mysql_source::redacted(&source)
                );
            };
            let config = EmulateConfig {
                target,
                mode: match mode {
                    ModeArg::Batch => emulate::Mode::Batch,
                    ModeArg::Stream => emulate::Mode::Stream,
                },
                names: uid.names()?,
                source,
                rounds: count,
                duration: duration.map(Duration::from_secs_f64),
                rate,
                batch,
                concurrency,
                retries,
                offset_seed: seed.wrapping_add(1),
                progress: true,
                api_key: api_key(api_key_file.as_deref())?,
            };
            let summary = emulate::run(config).await?;
            println!("{summary}");
            if summary.failed > 0 {
                anyhow::bail!("{} of {} records were not acknowledged", summary.failed, summary.sent);
            }
        }
        Command::Ingest {
            kafka,
            listen,
            max_body_bytes,
            max_inflight_body_bytes,
            delivery_timeout,
            body_timeout,
            aws,
            require_header,
            require_header_value_file,
        } => {
            let required_header = match require_header {
                None => None,
                Some(name) => Some(required_header(&name, require_header_value_file.as_deref())?),
            };
            let kafka_auth = kafka.auth().await?;
            let config = IngestConfig {
                kafka_auth,
                required_header,
                body_timeout: Duration::from_secs_f64(body_timeout),
                kinesis: Some(aws.target()),
                listen,
                bootstrap: kafka.bootstrap_servers,
                kafka_overrides: kafka.kafka_setting,
                max_body_bytes,
                max_inflight_body_bytes,
                delivery_timeout: Duration::from_secs_f64(delivery_timeout),
                ..Default::default()
            };
            let server = ingest::start(config).await?;
            eprintln!("ingest: REST Proxy v2 API and Kinesis routes on http://{} (Ctrl-C stops)", server.local_addr);
            shutdown_signal().await;
            server.stop().await?;
        }
        Command::Topics { action: TopicsAction::Create { kafka, uid, partitions, replication, wait_secs } } => {
            let names = uid.names()?;
            let wait = Duration::try_from_secs_f64(wait_secs).context("--wait-secs must be a positive number")?;
            let auth = kafka.auth().await?;
            kafka::wait_ready_with(&kafka.bootstrap_servers, &auth, &kafka.kafka_setting, wait).await?;
            let created =
                kafka::ensure_topics(&kafka.bootstrap_servers, &auth, &kafka.kafka_setting, &names.topics(), partitions, replication)
                    .await?;
            for t in names.topics() {
                let state = if created.contains(&t) { "created" } else { "exists" };
                println!("{t}\t{state}");
            }
        }
        Command::Status { kafka, uid, aws, sink, group_id, delta, batch_output, json } => {
            let names = uid.names()?;
            let config = pipeline::status::StatusConfig {
                kafka_auth: kafka.auth().await?,
                bootstrap: kafka.bootstrap_servers,
                kafka_overrides: kafka.kafka_setting,
                group_id: group_id.unwrap_or_else(|| format!("{}-connector", names.uid())),
                sink: Some(Location::parse(&sink.unwrap_or_else(|| format!("s3://{}", names.sink_bucket())))?),
                delta: delta.as_deref().map(Location::parse).transpose()?,
                batch_output,
                aws: aws.target(),
                timeout: Duration::from_secs(10),
                names,
            };
            let status = pipeline::status::collect(&config).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
        }
        Command::Stream { uid, aws, output, stop_when_idle, max_records, metrics_listen } => {
            let config = pipeline::stream::StreamConfig {
                names: uid.names()?,
                aws: aws.target(),
                output: Location::parse(&output)?,
                dead_letter: None,
                max_records,
                poll_interval: Duration::from_millis(500),
                stop_when_idle: stop_when_idle.map(Duration::from_secs_f64),
                metrics: Default::default(),
            };
            let _metrics = serve_metrics(metrics_listen, "stream", |r| config.metrics.register(r)).await?;
            let output = config.output.clone();
            let run = pipeline::stream::run_observed(config, shutdown_signal(), |_| {}).await?;
            for (kind, s) in &run.stats {
                println!(
                    "{kind}: {} read, {} rows written, {} dead-lettered, {} commits",
                    s.read, s.rows_written, s.dead_lettered, s.commits
                );
            }
            print_summary(&run.summary, Some(&format!("{}/{}", output.to_string().trim_end_matches('/'), pipeline::stream::SUMMARY_FILE)));
        }
        Command::Sink {
            kafka,
            uid,
            aws,
            to,
            topics_regex,
            group_id,
            flush_size,
            rotate_interval_ms,
            upload_concurrency,
            until_caught_up,
            create_bucket,
            metrics_listen,
        } => {
            let names = uid.names()?;
            let to = to.unwrap_or_else(|| format!("s3://{}", names.sink_bucket()));
            let location = Location::parse(&to)?;
            if create_bucket {
                pipeline::storage::ensure_bucket(&location, &aws.target()).await?;
            }
            let mut config = SinkConfig::new(
                &kafka.bootstrap_servers,
                &topics_regex.unwrap_or_else(|| names.topics_regex()),
                &group_id.unwrap_or_else(|| format!("{}-connector", names.uid())),
                location.clone(),
            );
            config.kafka_auth = kafka.auth().await?;
            config.kafka_overrides = kafka.kafka_setting;
            config.aws = aws.target();
            config.flush_size = flush_size;
            config.rotate_interval = Duration::from_millis(rotate_interval_ms);
            config.upload_concurrency = upload_concurrency;
            if until_caught_up {
                config.stop = StopWhen::CaughtUp { idle: Duration::from_secs(2) };
            }
            eprintln!("sink: {} -> {location} (flush.size={flush_size})", config.topics_regex);
            let _metrics = serve_metrics(metrics_listen, "sink", |r| config.metrics.register(r)).await?;
            let stats = sink::run(config, shutdown_signal()).await?;
            println!(
                "sink: wrote {} records in {} objects, {} dead letters, {} stale objects replaced",
                stats.records_written, stats.objects_written, stats.dead_letters, stats.stale_objects_removed
            );
        }
        Command::Batch { uid, aws, input, output, print, strict, report } => {
            let names = uid.names()?;
            let input = input.unwrap_or_else(|| format!("s3://{}", names.sink_bucket()));
            let config = batch::BatchConfig { input: Location::parse(&input)?, names, aws: aws.target(), output: output.clone(), strict };
            let out = batch::run(&config).await.context("batch job failed")?;
            print_output(&out, print)?;
            if let Some(path) = &report {
                let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
                std::fs::write(path, batch::report::html(&out, &input, &generated))
                    .with_context(|| format!("writing the report to {}", path.display()))?;
                eprintln!("report: {}", path.display());
            }
            match &output {
                Some(dir) => print_summary(&out.summary, Some(&dir.join("summary.json").display().to_string())),
                None => {
                    print_summary(&out.summary, None);
                    if let Some((kind, q)) = out.quarantined.first() {
                        eprintln!(
                            "warning: {} line(s) quarantined and not kept (pass --output DIR to keep them); the first: {kind} {} line {}: {}",
                            out.quarantined.len(),
                            q.object,
                            q.line,
                            q.reason
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// `--metrics-listen`: serve what `register` puts in a registry while the
/// command runs (the server stops when the returned value is dropped).
async fn serve_metrics(
    listen: Option<std::net::SocketAddr>,
    command: &str,
    register: impl FnOnce(&mut pipeline::metrics::Registry),
) -> Result<Option<pipeline::metrics::MetricsServer>> {
    let Some(addr) = listen else { return Ok(None) };
    let mut registry = pipeline::metrics::Registry::default();
    register(&mut registry);
    let server = pipeline::metrics::serve(addr, std::sync::Arc::new(registry))
        .await
        .with_context(|| format!("--metrics-listen {addr}: cannot listen there (in use, or not this machine's address?)"))?;
    eprintln!("{command}: metrics at http://{}/metrics", server.local_addr);
    Ok(Some(server))
}

/// `emulate`'s API key: from `--api-key-file`, else PIPELINE_API_KEY, else none.
fn api_key(file: Option<&std::path::Path>) -> Result<Option<emulate::ApiKey>> {
    let value = secret_value(file, "PIPELINE_API_KEY", "the API key")?;
    Ok(value.map(emulate::ApiKey::new).transpose()?)
}

/// `--require-header NAME` with its value from a file or the environment.
fn required_header(name: &str, file: Option<&std::path::Path>) -> Result<ingest::RequiredHeader> {
    const ENV: &str = "PIPELINE_INGEST_HEADER_VALUE";
    let value = secret_value(file, ENV, &format!("the value of header {name}"))?
        .with_context(|| format!("--require-header {name} needs its value: set {ENV} or pass --require-header-value-file PATH"))?;
    ingest::RequiredHeader::new(name, value).map_err(|e| anyhow::anyhow!("--require-header: {e}"))
}

/// A secret from its file (without the line end), or else from `env`;
/// `None` when neither is given. Never from the command line.
fn secret_value(file: Option<&std::path::Path>, env: &str, what: &str) -> Result<Option<String>> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {what} from {}", path.display()))?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        None => Ok(std::env::var(env).ok()),
    }
}

/// The cleaning summary on stderr, with a warning per column whose values
/// did not parse.
fn print_summary(summary: &batch::CleaningSummary, written_to: Option<&str>) {
    match written_to {
        Some(path) => eprintln!("cleaning summary (written to {path}):"),
        None => eprintln!("cleaning summary (pass --output DIR to keep it, and the quarantine, next to the results):"),
    }
    for line in summary.lines() {
        eprintln!("  {line}");
    }
    for warning in summary.warnings() {
        eprintln!("warning: {warning}");
    }
}

fn print_output(out: &batch::BatchOutput, print: Print) -> Result<()> {
    use datafusion::arrow::csv::Writer as CsvWriter;
    use datafusion::arrow::json::LineDelimitedWriter;
    let raw: Vec<String> = out.raw_rows.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let clean: Vec<String> = out.cleaned.iter().map(|t| format!("{}: {}", t.name, t.rows())).collect();
    eprintln!("raw rows {}; cleaned rows {}", raw.join(", "), clean.join(", "));
    for t in &out.results {
        match print {
            Print::None => {}
            Print::Table => println!("\n{} ({})\n{}", t.title, t.name, t.pretty()),
            Print::Csv => {
                println!("# {} ({})", t.title, t.name);
                let mut w = CsvWriter::new(std::io::stdout());
                for b in &t.batches {
                    w.write(b)?;
                }
                if t.batches.is_empty() {
                    // No rows: still the header.
                    w.write(&datafusion::arrow::record_batch::RecordBatch::new_empty(t.schema.clone()))?;
                }
            }
            Print::Json => {
                let mut w = LineDelimitedWriter::new(std::io::stdout());
                for b in &t.batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and `kill` send): every
/// long-running command stops cleanly on either.
async fn shutdown_signal() {
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        // A failure to listen for Ctrl-C leaves SIGTERM as the way to stop.
        r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
        _ = sigterm => {}
    }
}

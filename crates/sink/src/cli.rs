//! `pipeline sink`'s flags; their defaults are the sink's own
//! ([`SinkConfig::new`] and the `DEFAULT_*` constants).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use aws_setup::AwsArgs;
use pipeline_kafka::KafkaArgs;
use pipeline_runtime::UidArg;
use pipeline_storage::Location;

use crate::{DEFAULT_FLUSH_SIZE, DEFAULT_ROTATE_INTERVAL, DEFAULT_UPLOAD_CONCURRENCY, SinkConfig, StopWhen};

/// Write Kafka topics to S3 or a directory in the Confluent S3 sink layout.
///
/// Offsets are committed only after the objects are written, and object
/// names carry the start offset, so a crashed worker that restarts
/// rewrites the same keys: no gaps, no duplicates. For a fast restart after
/// a crash give each worker a stable identity with
/// `-X group.instance.id=<name>` (static membership); otherwise the group
/// waits for the dead worker's session to time out (45 s by default).
#[derive(clap::Args, Clone, Debug)]
pub struct SinkArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub uid: UidArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Destination: s3://bucket[/prefix] or a directory (default: s3://user-<uid>-bucket).
    #[arg(long)]
    pub to: Option<String>,
    /// topics.regex (default: ^<uid>\..*).
    #[arg(long)]
    pub topics_regex: Option<String>,
    /// Consumer group (default: <uid>-connector).
    #[arg(long)]
    pub group_id: Option<String>,
    /// Records per object (flush.size; the original uses 1).
    #[arg(long, default_value_t = DEFAULT_FLUSH_SIZE)]
    pub flush_size: usize,
    /// Write a partial object after this many milliseconds (rotate.interval.ms).
    #[arg(long, default_value_t = DEFAULT_ROTATE_INTERVAL.as_millis() as u64)]
    pub rotate_interval_ms: u64,
    /// Objects uploaded at once.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_CONCURRENCY)]
    pub upload_concurrency: usize,
    /// Exit once everything in the topics is written and committed.
    #[arg(long)]
    pub until_caught_up: bool,
    /// Create the destination bucket if it is missing (for local
    /// emulators; on AWS `cargo xtask provision` creates it).
    #[arg(long)]
    pub create_bucket: bool,
    /// Serve Prometheus metrics (records, objects and bytes written,
    /// upload durations, dead letters, consumer lag per partition) at
    /// http://ADDR/metrics while the sink runs, e.g. 127.0.0.1:9102.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl SinkArgs {
    /// The sink's configuration; the defaults derived from the uid are
    /// filled in here (bucket, topics.regex, group).
    pub async fn config(self) -> Result<SinkConfig> {
        let names = self.uid.names()?;
        let to = self.to.unwrap_or_else(|| format!("s3://{}", names.sink_bucket()));
        let mut config = SinkConfig::new(
            &self.kafka.bootstrap_servers,
            &self.topics_regex.unwrap_or_else(|| names.topics_regex()),
            &self.group_id.unwrap_or_else(|| names.connector()),
            Location::parse(&to)?,
        );
        config.kafka_auth = self.kafka.auth().await?;
        config.kafka_overrides = self.kafka.kafka_setting;
        config.aws = self.aws.target();
        config.flush_size = self.flush_size;
        config.rotate_interval = Duration::from_millis(self.rotate_interval_ms);
        config.upload_concurrency = self.upload_concurrency;
        if self.until_caught_up {
            config.stop = StopWhen::CaughtUp { idle: Duration::from_secs(2) };
        }
        Ok(config)
    }

    /// Run until Ctrl-C or SIGTERM (or until caught up), then print the counts.
    pub async fn run(self) -> Result<()> {
        let (create_bucket, metrics_listen) = (self.create_bucket, self.metrics_listen);
        let config = self.config().await?;
        if create_bucket {
            pipeline_storage::ensure_bucket(&config.location, &config.aws).await?;
        }
        eprintln!("sink: {} -> {} (flush.size={})", config.topics_regex, config.location, config.flush_size);
        let _metrics = pipeline_runtime::serve_metrics(metrics_listen, "sink", |r| config.metrics.register(r)).await?;
        let stats = crate::run(config, pipeline_runtime::shutdown_signal()).await?;
        println!(
            "sink: wrote {} records in {} objects, {} dead letters, {} stale objects replaced",
            stats.records_written, stats.objects_written, stats.dead_letters, stats.stale_objects_removed
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<SinkArgs, clap::Error> {
        pipeline_runtime::parse_args(argv)
    }

    #[tokio::test]
    async fn the_uid_names_the_bucket_topics_and_group() {
        let args = parse(&["sink", "--uid", "abc123", "--bootstrap-servers", "127.0.0.1:1"]).unwrap();
        let config = args.config().await.unwrap();
        assert_eq!(config.location.to_string(), "s3://user-abc123-bucket");
        assert_eq!(config.topics_regex, r"^abc123\..*");
        assert_eq!(config.group_id, "abc123-connector");
        assert_eq!(config.flush_size, DEFAULT_FLUSH_SIZE);
        assert_eq!(config.rotate_interval, DEFAULT_ROTATE_INTERVAL);
        assert!(matches!(config.stop, StopWhen::Never));
    }

    #[tokio::test]
    async fn until_caught_up_stops_the_sink() {
        let args = parse(&["sink", "--to", "/tmp/out", "--until-caught-up", "--flush-size", "500"]).unwrap();
        let config = args.config().await.unwrap();
        assert!(matches!(config.stop, StopWhen::CaughtUp { .. }));
        assert_eq!(config.flush_size, 500);
    }
}

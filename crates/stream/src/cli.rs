//! `pipeline stream`'s flags; their defaults are the worker's `DEFAULT_*`.

use std::net::SocketAddr;

use anyhow::Result;
use aws_setup::AwsArgs;
use pipeline_runtime::UidArg;
use pipeline_storage::Location;

use crate::{DEFAULT_MAX_RECORDS, DEFAULT_OUTPUT, DEFAULT_POLL_INTERVAL, SUMMARY_FILE, StreamConfig};

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
#[derive(clap::Args, Clone, Debug)]
pub struct StreamArgs {
    #[command(flatten)]
    pub uid: UidArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Where the Delta tables go: a directory, or s3://bucket[/prefix]
    /// (the endpoint and region of --aws-endpoint-url/--aws-region apply).
    #[arg(long, default_value = DEFAULT_OUTPUT)]
    pub output: String,
    /// Stop after this many seconds without new records (default: run until Ctrl-C).
    #[arg(long)]
    pub stop_when_idle: Option<f64>,
    /// Records per GetRecords call (at most 10000).
    #[arg(long, default_value_t = DEFAULT_MAX_RECORDS, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub max_records: i32,
    /// Serve Prometheus metrics (records read, quarantined, rows
    /// committed, seconds behind each shard's tip, Delta versions, commit
    /// durations) at http://ADDR/metrics while the worker runs.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl StreamArgs {
    pub fn config(&self) -> Result<StreamConfig> {
        let stop_when_idle = self.stop_when_idle.map(|s| pipeline_runtime::seconds(s, "--stop-when-idle")).transpose()?;
        Ok(StreamConfig {
            names: self.uid.names()?,
            aws: self.aws.target(),
            output: Location::parse(&self.output)?,
            dead_letter: None,
            max_records: self.max_records,
            poll_interval: DEFAULT_POLL_INTERVAL,
            stop_when_idle,
            metrics: Default::default(),
        })
    }

    /// Run until idle, Ctrl-C or SIGTERM (between commits), then print the counts.
    pub async fn run(self) -> Result<()> {
        let config = self.config()?;
        let _metrics = pipeline_runtime::serve_metrics(self.metrics_listen, "stream", |r| config.metrics.register(r)).await?;
        let output = config.output.clone();
        let run = crate::run_observed(config, pipeline_runtime::shutdown_signal(), |_| {}).await?;
        for (kind, s) in &run.stats {
            println!("{kind}: {} read, {} rows written, {} dead-lettered, {} commits", s.read, s.rows_written, s.dead_lettered, s.commits);
        }
        let written_to = format!("{}/{SUMMARY_FILE}", output.to_string().trim_end_matches('/'));
        pipeline_batch::cli::print_summary(&run.summary, Some(&written_to));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<StreamArgs, clap::Error> {
        pipeline_runtime::parse_args(argv)
    }

    #[test]
    fn defaults_and_limits() {
        let config = parse(&["stream"]).unwrap().config().unwrap();
        assert_eq!(config.max_records, DEFAULT_MAX_RECORDS);
        assert_eq!(config.output.to_string(), Location::parse(DEFAULT_OUTPUT).unwrap().to_string());
        assert!(config.stop_when_idle.is_none());
        assert!(parse(&["stream", "--max-records", "10001"]).is_err(), "Kinesis allows at most 10000");
        let args = parse(&["stream", "--stop-when-idle=-2"]).unwrap();
        assert!(args.config().is_err());
    }
}

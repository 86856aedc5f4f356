//! `pipeline ingest`'s flags; their defaults are [`IngestConfig::default`]'s.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use aws_setup::AwsArgs;
use pipeline_kafka::KafkaArgs;

use crate::{IngestConfig, RequiredHeader};

fn defaults() -> IngestConfig {
    IngestConfig::default()
}

/// Serve the Confluent REST Proxy API (v2 produce, metadata and consumers;
/// v3 produce), producing to Kafka, and API Gateway's Kinesis routes.
#[derive(clap::Args, Clone, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Address to listen on (loopback by default; the original proxy uses port 8082).
    #[arg(long, default_value_t = defaults().listen)]
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = defaults().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Request body bytes held at once over all requests: bounds memory
    /// under many large requests. Counted as bytes arrive; a request whose
    /// bytes find no room gets 429 with Retry-After at once.
    #[arg(long, default_value_t = defaults().max_inflight_body_bytes)]
    pub max_inflight_body_bytes: usize,
    /// Seconds a record may wait for Kafka before the request fails as retriable.
    #[arg(long, default_value_t = defaults().delivery_timeout.as_secs_f64())]
    pub delivery_timeout: f64,
    /// Seconds a client may take to send a request body (slow clients get 408).
    #[arg(long, default_value_t = defaults().body_timeout.as_secs_f64())]
    pub body_timeout: f64,
    /// Seconds a connection may take to send a request's head, and may stay
    /// idle between requests; then it is closed.
    #[arg(long, default_value_t = defaults().header_timeout.as_secs_f64())]
    pub header_timeout: f64,
    /// Client connections open at once; more are answered 503 (with
    /// Retry-After) and closed. Kept under the open-file limit, which
    /// `pipeline ingest` raises to its hard maximum at start.
    #[arg(long, default_value_t = defaults().max_connections)]
    pub max_connections: usize,
    /// Requests in flight at once; more are answered 503 with Retry-After
    /// at once rather than queued (the health check and /metrics excepted).
    #[arg(long, default_value_t = defaults().max_concurrent_requests)]
    pub max_concurrent_requests: usize,
    /// The deployment: its sink's consumer groups are closed to REST consumers.
    #[command(flatten)]
    pub uid: pipeline_runtime::UidArg,
    /// Another consumer group REST consumers may not join (repeatable), as
    /// the sink's own are not: one whose commits another process relies on.
    #[arg(long, value_name = "GROUP")]
    pub reserved_group: Vec<String>,
    /// Where the Kinesis routes (PUT /streams/<stream>/record ...) send records.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Refuse (401, error code 40101) every request but GET /healthz that
    /// lacks this header with the right value: for a deployment reached
    /// without API Gateway, or whose gateway adds a secret header. The
    /// value comes from --require-header-value-file or
    /// PIPELINE_INGEST_HEADER_VALUE, never from the command line.
    #[arg(long, value_name = "NAME")]
    pub require_header: Option<String>,
    /// File holding the required header's value (one line).
    #[arg(long, value_name = "PATH", requires = "require_header")]
    pub require_header_value_file: Option<PathBuf>,
}

/// Where `--require-header`'s value comes from when no file is given.
pub const HEADER_VALUE_ENV: &str = "PIPELINE_INGEST_HEADER_VALUE";

impl IngestArgs {
    /// The server's configuration; for MSK IAM the credentials are looked
    /// up here, so their absence is the first error.
    pub async fn config(self) -> Result<IngestConfig> {
        let required_header = match &self.require_header {
            None => None,
            Some(name) => Some(required_header(name, self.require_header_value_file.as_deref())?),
        };
        Ok(IngestConfig {
            kafka_auth: self.kafka.auth().await?,
            required_header,
            body_timeout: pipeline_runtime::nonzero_seconds(self.body_timeout, "--body-timeout")?,
            kinesis: Some(self.aws.target()),
            listen: self.listen,
            bootstrap: self.kafka.bootstrap_servers,
            kafka_overrides: self.kafka.kafka_setting,
            max_body_bytes: self.max_body_bytes,
            max_inflight_body_bytes: self.max_inflight_body_bytes,
            delivery_timeout: pipeline_runtime::nonzero_seconds(self.delivery_timeout, "--delivery-timeout")?,
            header_timeout: pipeline_runtime::nonzero_seconds(self.header_timeout, "--header-timeout")?,
            reserved_groups: self.uid.names()?.sink_consumer_groups().into_iter().chain(self.reserved_group).collect(),
            max_connections: positive(self.max_connections, "--max-connections")?,
            max_concurrent_requests: positive(self.max_concurrent_requests, "--max-concurrent-requests")?,
            ..defaults()
        })
    }

    /// Serve until Ctrl-C or SIGTERM, then drain.
    pub async fn run(self) -> Result<()> {
        // Every connection is a descriptor: take what the hard limit allows
        // (systemd's default soft limit is 1024), so that --max-connections
        // is not cut down below its default.
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
        let server = crate::start(self.config().await?).await?;
        eprintln!("ingest: REST Proxy v2 API and Kinesis routes on http://{} (Ctrl-C stops)", server.local_addr);
        // Ends on Ctrl-C or SIGTERM, or with the error of a producer that
        // can store nothing again (a non-zero exit, so systemd restarts it).
        server.run_until(pipeline_runtime::shutdown_signal()).await?;
        Ok(())
    }
}

/// A count where 0 would refuse everything.
fn positive(value: usize, flag: &str) -> Result<usize> {
    anyhow::ensure!(value > 0, "{flag} must be at least 1 (0 would refuse every client)");
    Ok(value)
}

/// `--require-header NAME` with its value from a file or the environment.
fn required_header(name: &str, file: Option<&std::path::Path>) -> Result<RequiredHeader> {
    let value = pipeline_runtime::secret_value(file, HEADER_VALUE_ENV, &format!("the value of header {name}"))?.with_context(|| {
        format!("--require-header {name} needs its value: set {HEADER_VALUE_ENV} or pass --require-header-value-file PATH")
    })?;
    RequiredHeader::new(name, value).map_err(|e| anyhow::anyhow!("--require-header: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<IngestArgs, clap::Error> {
        pipeline_runtime::parse_args(argv)
    }

    #[tokio::test]
    async fn no_flags_give_the_config_defaults() {
        let args = parse(&["ingest", "--bootstrap-servers", "127.0.0.1:1"]).unwrap();
        let config = args.config().await.unwrap();
        let d = defaults();
        assert_eq!(config.listen, d.listen);
        assert_eq!(config.max_body_bytes, d.max_body_bytes);
        assert_eq!(config.max_inflight_body_bytes, d.max_inflight_body_bytes);
        assert_eq!(config.delivery_timeout, d.delivery_timeout);
        assert_eq!(config.body_timeout, d.body_timeout);
        assert_eq!(config.header_timeout, d.header_timeout);
        if std::env::var_os("PIPELINE_UID").is_none() {
            assert_eq!(config.reserved_groups, d.reserved_groups);
        }
        assert_eq!(config.max_connections, d.max_connections);
        assert_eq!(config.max_concurrent_requests, d.max_concurrent_requests);
        assert!(config.required_header.is_none());
    }

    #[tokio::test]
    async fn a_required_header_without_a_value_names_both_ways_to_give_one() {
        let args = parse(&["ingest", "--require-header", "x-origin-secret"]).unwrap();
        if std::env::var_os(HEADER_VALUE_ENV).is_some() {
            return; // set by whoever runs the tests: then there is a value
        }
        let text = format!("{:#}", args.config().await.unwrap_err());
        assert!(text.contains(HEADER_VALUE_ENV) && text.contains("--require-header-value-file"), "{text}");
    }

    #[tokio::test]
    async fn the_sink_groups_of_the_uid_and_any_named_are_reserved() {
        let args = parse(&["ingest", "--uid", "abc123", "--reserved-group", "audit"]).unwrap();
        let config = args.config().await.unwrap();
        assert_eq!(config.reserved_groups, ["abc123-connector", "connect-abc123-connector", "audit"]);
    }

    #[test]
    fn a_value_file_needs_its_header() {
        assert!(parse(&["ingest", "--require-header-value-file", "/tmp/x"]).is_err());
    }

    #[tokio::test]
    async fn a_negative_timeout_is_refused_by_name() {
        let args = parse(&["ingest", "--delivery-timeout=-1"]).unwrap();
        let text = format!("{:#}", args.config().await.unwrap_err());
        assert!(text.contains("--delivery-timeout"), "{text}");
    }

    #[tokio::test]
    async fn a_zero_connection_or_request_limit_is_refused_by_name() {
        for flag in ["--max-connections", "--max-concurrent-requests"] {
            let args = parse(&["ingest", &format!("{flag}=0")]).unwrap();
            let text = format!("{:#}", args.config().await.unwrap_err());
            assert!(text.contains(flag) && text.contains("at least 1"), "{text}");
        }
    }

    /// librdkafka reads a delivery timeout of 0 as "never give up": a
    /// request would then never be answered.
    #[tokio::test]
    async fn a_zero_timeout_is_refused_by_name() {
        for flag in ["--delivery-timeout", "--body-timeout", "--header-timeout"] {
            let args = parse(&["ingest", &format!("{flag}=0")]).unwrap();
            let text = format!("{:#}", args.config().await.unwrap_err());
            assert!(text.contains(flag) && text.contains("more than 0"), "{text}");
        }
    }
}

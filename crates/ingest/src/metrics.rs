//! The ingest server's metrics, on its own `GET /metrics`
//! (`pipeline_ingest_*`, pipeline_runtime::metrics), and the log lines of
//! what it refuses: each refusal class is counted and logged at most once
//! per [`REFUSAL_LOG_PERIOD`], since any client can cause them at any rate.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use pipeline_runtime::log_every::LogEvery;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why the server turned a connection or a request away: the `reason`
/// label of `pipeline_ingest_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A connection over `--max-connections`: 503 at once, then closed.
    ConnectionLimit,
    /// No complete request head within `--header-timeout` (a slow client,
    /// or an idle keep-alive connection): closed.
    HeaderTimeout,
    /// A request over `--max-concurrent-requests`: 503 at once.
    Overloaded,
    /// A body not sent within `--body-timeout`: 408.
    BodyTimeout,
    /// No room in `--max-inflight-body-bytes` within `--body-timeout`: 429.
    BodyBudget,
    /// The required header missing or wrong: 401.
    Unauthorized,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::ConnectionLimit,
        Refusal::HeaderTimeout,
        Refusal::Overloaded,
        Refusal::BodyTimeout,
        Refusal::BodyBudget,
        Refusal::Unauthorized,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::Overloaded => "overloaded",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::BodyBudget => "body_budget",
            Refusal::Unauthorized => "unauthorized",
        }
    }
}

/// At most one log line per refusal class (and for accept errors) in this
/// period; the line says how many it stands for.
pub const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

pub struct Metrics {
    responses: Family<StatusLabel, Counter>,
    records: Family<OutcomeLabel, Counter>,
    produce: Histogram,
    kinesis_records: Counter,
    refusals: Family<ReasonLabel, Counter>,
    refusal_log: [LogEvery; Refusal::ALL.len()],
    accept_errors: Counter,
    accept_error_log: LogEvery,
    open_connections: Gauge<i64, AtomicI64>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let responses = Family::<StatusLabel, Counter>::default();
        let records = Family::<OutcomeLabel, Counter>::default();
        let produce = Histogram::new(pipeline_runtime::metrics::duration_buckets());
        let kinesis_records = Counter::default();
        let refusals = Family::<ReasonLabel, Counter>::default();
        let accept_errors = Counter::default();
        let open_connections = Gauge::<i64, AtomicI64>::default();
        let mut registry = Registry::with_prefix("pipeline_ingest");
        registry.register("http_responses", "HTTP responses by status code", responses.clone());
        registry.register("records", "Records of produce requests by outcome: acknowledged by Kafka, or failed", records.clone());
        registry.register_with_unit(
            "produce_duration",
            "Time from a produce request's arrival to Kafka's last answer",
            Unit::Seconds,
            produce.clone(),
        );
        registry.register("kinesis_records", "Records Kinesis accepted through the stream routes", kinesis_records.clone());
        registry.register(
            "refusals",
            "Connections and requests turned away, by reason (connection_limit, header_timeout, overloaded, body_timeout, body_budget, unauthorized)",
            refusals.clone(),
        );
        registry.register("accept_errors", "Failed accepts on the listening socket (e.g. out of file descriptors)", accept_errors.clone());
        registry.register("open_connections", "Client connections open now", open_connections.clone());
        // Every reason is reported from the start, at 0: a rate() over a
        // series that appears only with its first refusal misses that one.
        for why in Refusal::ALL {
            let _ = refusals.get_or_create(&ReasonLabel { reason: why.label() });
        }
        Self {
            responses,
            records,
            produce,
            kinesis_records,
            refusals,
            refusal_log: std::array::from_fn(|_| LogEvery::new(REFUSAL_LOG_PERIOD)),
            accept_errors,
            accept_error_log: LogEvery::new(REFUSAL_LOG_PERIOD),
            open_connections,
            registry,
        }
    }
}

/// Counts a connection as open while it lives.
pub struct OpenConnection<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn response(&self, status: u16) {
        self.responses.get_or_create(&StatusLabel { status: status.to_string() }).inc();
    }

    pub fn produced(&self, acked: u64, failed: u64, took: Duration) {
        self.records.get_or_create(&OutcomeLabel { outcome: "acknowledged" }).inc_by(acked);
        self.records.get_or_create(&OutcomeLabel { outcome: "failed" }).inc_by(failed);
        self.produce.observe(took.as_secs_f64());
    }

    pub fn kinesis_records(&self, put: u64) {
        self.kinesis_records.inc_by(put);
    }

    /// Count a refusal, and log it unless one of its class was logged
    /// within [`REFUSAL_LOG_PERIOD`].
    pub fn refused(&self, why: Refusal, detail: &dyn std::fmt::Display) {
        self.refusals.get_or_create(&ReasonLabel { reason: why.label() }).inc();
        let index = Refusal::ALL.iter().position(|r| *r == why).expect("every refusal is in ALL");
        if let Some(left_out) = self.refusal_log[index].due() {
            tracing::warn!(reason = why.label(), also_since_last_line = left_out, "refused: {detail}");
        }
    }

    pub fn accept_error(&self, e: &std::io::Error) {
        self.accept_errors.inc();
        if let Some(left_out) = self.accept_error_log.due() {
            tracing::error!(
                also_since_last_line = left_out,
                "cannot accept a connection: {e} (out of file descriptors? see --max-connections)"
            );
        }
    }

    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.open_connections.inc();
        OpenConnection(&self.open_connections)
    }

    pub fn render(&self) -> String {
        pipeline_runtime::metrics::text(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC 8.9 is the operator's list of what `/metrics` serves: every
    /// family the server registers has its row there.
    #[test]
    fn every_metric_served_is_in_the_spec() {
        let spec = include_str!("../../../docs/SPEC.md");
        let table = spec.split("### 8.9 Metrics").nth(1).and_then(|s| s.split("\n### ").next()).expect("SPEC has section 8.9");
        // A labelled family is written once it has a series.
        let metrics = Metrics::default();
        metrics.response(200);
        metrics.produced(1, 0, Duration::ZERO);
        let text = metrics.render();
        let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        assert!(families.len() >= 7, "{text}");
        for family in families {
            assert!(table.contains(&format!("`{family}")), "{family} is served but SPEC 8.9 does not list it");
        }
    }

    #[test]
    fn every_refusal_reason_is_reported_from_the_start() {
        let text = Metrics::default().render();
        for why in Refusal::ALL {
            assert!(text.contains(&format!("pipeline_ingest_refusals_total{{reason=\"{}\"}} 0", why.label())), "{text}");
        }
    }
}

//! The ingest server's metrics, on its own `GET /metrics`
//! (`pipeline_ingest_*`, pipeline_runtime::metrics).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

pub struct Metrics {
    responses: Family<StatusLabel, Counter>,
    records: Family<OutcomeLabel, Counter>,
    produce: Histogram,
    kinesis_records: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let responses = Family::<StatusLabel, Counter>::default();
        let records = Family::<OutcomeLabel, Counter>::default();
        let produce = Histogram::new(pipeline_runtime::metrics::duration_buckets());
        let kinesis_records = Counter::default();
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
        Self { responses, records, produce, kinesis_records, registry }
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

    pub fn render(&self) -> String {
        pipeline_runtime::metrics::text(&self.registry)
    }
}

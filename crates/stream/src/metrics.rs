//! The stream worker's metrics (`pipeline_stream_*`, pipeline_runtime::metrics): what
//! it read and committed, how far behind each shard's tip it reads (Kinesis'
//! own MillisBehindLatest), and each Delta table's version.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ShardLabels {
    stream: String,
    shard: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// Cheap to keep when nobody reads them; shared by reference counting.
#[derive(Debug, Clone)]
pub struct StreamMetrics {
    read: Family<StreamLabel, Counter>,
    quarantined: Family<StreamLabel, Counter>,
    rows: Family<TableLabel, Counter>,
    behind: Family<ShardLabels, Gauge<f64, AtomicU64>>,
    version: Family<TableLabel, Gauge>,
    commit: Histogram,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self {
            read: Family::default(),
            quarantined: Family::default(),
            rows: Family::default(),
            behind: Family::default(),
            version: Family::default(),
            commit: Histogram::new(pipeline_runtime::metrics::duration_buckets()),
        }
    }
}

impl StreamMetrics {
    /// Register under `pipeline_stream_` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("pipeline_stream");
        r.register("records_read", "Records read from the stream's shards", self.read.clone());
        r.register("quarantined_records", "Records refused by the raw-row rule and written as dead letters", self.quarantined.clone());
        r.register("rows_written", "Cleaned rows committed to the Delta table", self.rows.clone());
        r.register_with_unit(
            "behind_latest",
            "How far behind the shard's newest record the last read was (Kinesis MillisBehindLatest)",
            Unit::Seconds,
            self.behind.clone(),
        );
        r.register("delta_version", "Version of the Delta table after the worker's last commit", self.version.clone());
        r.register_with_unit("commit_duration", "Time to write and commit one micro-batch", Unit::Seconds, self.commit.clone());
    }

    pub(super) fn read(&self, stream: &str, shard: &str, records: u64, millis_behind: Option<i64>) {
        self.read.get_or_create(&StreamLabel { stream: stream.to_string() }).inc_by(records);
        if let Some(ms) = millis_behind {
            self.behind.get_or_create(&ShardLabels { stream: stream.to_string(), shard: shard.to_string() }).set(ms as f64 / 1000.0);
        }
    }

    pub(super) fn committed(&self, stream: &str, table: &str, rows: u64, quarantined: u64, version: Option<i64>, seconds: f64) {
        self.quarantined.get_or_create(&StreamLabel { stream: stream.to_string() }).inc_by(quarantined);
        self.rows.get_or_create(&TableLabel { table: table.to_string() }).inc_by(rows);
        if let Some(v) = version {
            self.version.get_or_create(&TableLabel { table: table.to_string() }).set(v);
        }
        self.commit.observe(seconds);
    }
}

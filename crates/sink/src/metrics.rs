//! The sink's metrics (`pipeline_sink_*`, pipeline_runtime::metrics): what it wrote,
//! how long uploads took, and how far behind each partition it is. The lag
//! comes from librdkafka's own statistics (per partition `consumer_lag`:
//! the high watermark minus the committed offset), once a second.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rdkafka::Statistics;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

/// Cheap to keep when nobody reads them; shared by reference counting.
#[derive(Debug, Clone)]
pub struct SinkMetrics {
    records: Counter,
    objects: Counter,
    bytes: Counter,
    dead_letters: Counter,
    upload: Histogram,
    lag: Family<PartitionLabels, Gauge>,
}

impl Default for SinkMetrics {
    fn default() -> Self {
        Self {
            records: Counter::default(),
            objects: Counter::default(),
            bytes: Counter::default(),
            dead_letters: Counter::default(),
            upload: Histogram::new(pipeline_runtime::metrics::duration_buckets()),
            lag: Family::default(),
        }
    }
}

impl SinkMetrics {
    /// Register under `pipeline_sink_` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("pipeline_sink");
        r.register("records_written", "Records written in objects", self.records.clone());
        r.register("objects_written", "Objects written (one per flush.size records)", self.objects.clone());
        r.register_with_unit("written", "Bytes of the objects written", Unit::Bytes, self.bytes.clone());
        r.register("dead_letters", "Records written to the dead-letter prefix instead", self.dead_letters.clone());
        r.register_with_unit("upload_duration", "Time to write one object and its dead letters", Unit::Seconds, self.upload.clone());
        r.register(
            "consumer_lag",
            "Records in the partition past the group's committed offset, from librdkafka's statistics",
            self.lag.clone(),
        );
    }

    pub(super) fn landed(&self, records: u64, objects: u64, bytes: u64, dead_letters: u64) {
        self.records.inc_by(records);
        self.objects.inc_by(objects);
        self.bytes.inc_by(bytes);
        self.dead_letters.inc_by(dead_letters);
    }

    pub(super) fn upload_took(&self, seconds: f64) {
        self.upload.observe(seconds);
    }

    /// librdkafka's statistics callback: the lag of each assigned partition.
    pub(super) fn statistics(&self, stats: &Statistics) {
        for (topic, t) in &stats.topics {
            // Partition -1 is librdkafka's internal "unassigned" one.
            for p in t.partitions.values().filter(|p| p.partition >= 0 && p.consumer_lag >= 0) {
                self.lag.get_or_create(&PartitionLabels { topic: topic.clone(), partition: p.partition.to_string() }).set(p.consumer_lag);
            }
        }
    }
}

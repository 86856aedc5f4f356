//! Counters exposed in Prometheus text format on `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    responses: Mutex<BTreeMap<u16, u64>>,
    records_acked: AtomicU64,
    records_failed: AtomicU64,
    produce_micros_sum: AtomicU64,
    produce_requests: AtomicU64,
    kinesis_records: AtomicU64,
}

impl Metrics {
    pub fn response(&self, status: u16) {
        *self.responses.lock().unwrap().entry(status).or_default() += 1;
    }

    pub fn produced(&self, acked: u64, failed: u64, took: Duration) {
        self.records_acked.fetch_add(acked, Ordering::Relaxed);
        self.records_failed.fetch_add(failed, Ordering::Relaxed);
        self.produce_micros_sum.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn kinesis_records(&self, put: u64) {
        self.kinesis_records.fetch_add(put, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP ingest_http_responses_total HTTP responses by status code.\n");
        out.push_str("# TYPE ingest_http_responses_total counter\n");
        for (status, n) in self.responses.lock().unwrap().iter() {
            out.push_str(&format!("ingest_http_responses_total{{status=\"{status}\"}} {n}\n"));
        }
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        };
        gauge(&mut out, "ingest_records_acked_total", "Records acknowledged by Kafka.", self.records_acked.load(Ordering::Relaxed));
        gauge(&mut out, "ingest_records_failed_total", "Records Kafka did not store.", self.records_failed.load(Ordering::Relaxed));
        gauge(
            &mut out,
            "ingest_produce_requests_total",
            "Produce requests that reached Kafka.",
            self.produce_requests.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "ingest_kinesis_records_total",
            "Records Kinesis accepted through the stream routes.",
            self.kinesis_records.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "ingest_produce_seconds_sum_micros",
            "Sum of produce request durations in microseconds.",
            self.produce_micros_sum.load(Ordering::Relaxed),
        );
        out
    }
}

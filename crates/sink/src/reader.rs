//! The sink's reading side: a thread that polls Kafka, turns records into
//! object bodies and hands sealed objects to the uploader. It runs on its
//! own thread so that reading and validating the next records overlaps with
//! uploading the previous ones, and so that a revoke can wait for uploads
//! without stopping them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::{Coordination, SinkConfig, SinkError, StopWhen, Tp, dead_letter_key, object_key};

/// Longest a revoke waits for the partition's uploads to finish.
const REVOKE_WAIT: Duration = Duration::from_secs(60);

/// How often rotation and the stop conditions are looked at.
const TICK: Duration = Duration::from_millis(100);

pub(super) struct SinkContext {
    pub(super) coord: Arc<Coordination>,
    pub(super) metrics: super::SinkMetrics,
    pub(super) auth: pipeline_kafka::KafkaAuth,
}

impl ClientContext for SinkContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.statistics(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Draining asks for partition ends, and librdkafka reports each one
        // here too: expected, not an error to show.
        if matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)) {
            tracing::debug!("librdkafka: {error}: {reason}");
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.auth.oauth_token()
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let revoked: Vec<Tp> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let mut state = self.coord.state.lock().expect("sink state lock");
        for tp in &revoked {
            // Sealed objects of the old assignment are now neither uploaded
            // nor committed: the partition's next owner reads them again.
            *state.epochs.entry(tp.clone()).or_default() += 1;
        }
        state.revoked.extend(revoked.iter().cloned());
        // Uploads already running must land before the partition moves: its
        // next owner removes uncommitted objects once, when it starts, and an
        // object landing after that would duplicate records.
        let deadline = Instant::now() + REVOKE_WAIT;
        while revoked.iter().any(|tp| state.uploading.get(tp).copied().unwrap_or(0) > 0) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    ?revoked,
                    "uploads of revoked partitions still running after {REVOKE_WAIT:?}; giving the partitions up anyway"
                );
                break;
            }
            state = self.coord.changed.wait_timeout(state, left).expect("sink state lock").0;
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // A refused commit (e.g. during a rebalance) only means those records
        // are written again, to the same keys, by whoever reads them next.
        if let Err(e) = result {
            tracing::debug!(error = %e, "offset commit not accepted");
        }
    }
}

/// A sealed object (or only dead letters) of one partition, with what the
/// uploader needs to write it and commit past it.
pub(super) struct Sealed {
    pub tp: Tp,
    /// Assignment generation the records were read in.
    pub epoch: u64,
    /// First offset read in this generation: objects at or after it that
    /// exist already were written but never committed.
    pub resumed_at: i64,
    pub object: Option<(String, Vec<u8>, usize)>,
    pub dead_letters: Vec<(String, Vec<u8>)>,
    pub next_offset: i64,
}

impl Sealed {
    pub fn bytes(&self) -> usize {
        self.object.as_ref().map_or(0, |(_, b, _)| b.len()) + self.dead_letters.iter().map(|(_, b)| b.len()).sum::<usize>()
    }
}

/// Records of one partition waiting to become an object.
struct Buffer {
    epoch: u64,
    start_offset: Option<i64>,
    lines: Vec<u8>,
    records: usize,
    next_offset: i64,
    first_at: Instant,
    dead_letters: Vec<(String, Vec<u8>)>,
}

/// Cuts each partition's records into objects: flush.size records per
/// object, a partial object once its first record is rotate.interval old,
/// values that are not JSON as dead letters. The part of the reader that
/// needs no consumer, so its rules are tested without a broker.
struct ObjectCutter {
    flush_size: usize,
    rotate_interval: Duration,
    buffers: HashMap<Tp, Buffer>,
    /// Bytes of object bodies in `buffers`.
    buffered_bytes: usize,
    /// First offset read per partition since it was (re)assigned.
    resumed_at: HashMap<Tp, i64>,
    /// Bytes of the last full object: what a new buffer reserves.
    expected_object_bytes: usize,
}

/// The most a new buffer reserves up front.
const MAX_PREALLOCATED_OBJECT: usize = 8 * 1024 * 1024;

impl ObjectCutter {
    fn new(flush_size: usize, rotate_interval: Duration) -> Self {
        Self {
            flush_size,
            rotate_interval,
            buffers: HashMap::new(),
            buffered_bytes: 0,
            resumed_at: HashMap::new(),
            expected_object_bytes: 0,
        }
    }

    /// Add one record; returns the partition's object when it is full.
    /// `epoch` is asked only when the partition's buffer is started.
    fn add(&mut self, tp: &Tp, offset: i64, payload: Option<&[u8]>, epoch: impl FnOnce() -> u64) -> Option<Sealed> {
        // Looked up before inserting: the partition is known for all but
        // its first record, and its key need not be copied for the others.
        if !self.resumed_at.contains_key(tp) {
            self.resumed_at.insert(tp.clone(), offset);
        }
        if !self.buffers.contains_key(tp) {
            let buffer = Buffer {
                epoch: epoch(),
                start_offset: None,
                lines: Vec::with_capacity(self.expected_object_bytes),
                records: 0,
                next_offset: offset,
                first_at: Instant::now(),
                dead_letters: Vec::new(),
            };
            self.buffers.insert(tp.clone(), buffer);
        }
        let buf = self.buffers.get_mut(tp).expect("inserted above");
        buf.next_offset = offset + 1;
        let before = buf.lines.len();
        match payload.filter(|p| pipeline_runtime::json::append_compact(&mut buf.lines, p).is_ok()) {
            Some(_) => {
                buf.start_offset.get_or_insert(offset);
                buf.lines.push(b'\n');
                buf.records += 1;
                self.buffered_bytes += buf.lines.len() - before;
            }
            None => {
                buf.lines.truncate(before);
                tracing::warn!(topic = %tp.0, partition = tp.1, offset, "value is not JSON; writing it to the dead-letter prefix");
                buf.dead_letters.push((dead_letter_key(&tp.0, tp.1, offset), payload.unwrap_or_default().to_vec()));
            }
        }
        if buf.records >= self.flush_size { self.seal(tp) } else { None }
    }

    /// One partition's buffer as a sealed object (and its dead letters).
    fn seal(&mut self, tp: &Tp) -> Option<Sealed> {
        let buf = self.buffers.remove(tp)?;
        self.buffered_bytes -= buf.lines.len();
        if buf.records >= self.flush_size {
            // Full objects of a partition are about the same size: the next
            // buffer starts at that size instead of growing to it.
            self.expected_object_bytes = buf.lines.len().min(MAX_PREALLOCATED_OBJECT);
        }
        Some(Sealed {
            tp: tp.clone(),
            epoch: buf.epoch,
            resumed_at: self.resumed_at.get(tp).copied().unwrap_or(buf.next_offset),
            object: buf.start_offset.map(|start| (object_key(&tp.0, tp.1, start), buf.lines, buf.records)),
            dead_letters: buf.dead_letters,
            next_offset: buf.next_offset,
        })
    }

    /// Buffers whose first record is older than the rotate interval (or
    /// all of them), sealed.
    fn rotate(&mut self, all: bool) -> Vec<Sealed> {
        let due: Vec<Tp> =
            self.buffers.iter().filter(|(_, b)| all || b.first_at.elapsed() >= self.rotate_interval).map(|(tp, _)| tp.clone()).collect();
        due.iter().filter_map(|tp| self.seal(tp)).collect()
    }

    /// Partial objects of partition number `partition` (in any topic) that
    /// hold everything up to their topic partition's end, sealed.
    fn seal_ended(&mut self, partition: i32, end_offset: impl Fn(&Tp) -> Option<i64>) -> Vec<Sealed> {
        let ended: Vec<Tp> = self
            .buffers
            .iter()
            .filter(|(tp, buf)| tp.1 == partition && end_offset(tp).is_some_and(|end| buf.next_offset >= end))
            .map(|(tp, _)| tp.clone())
            .collect();
        ended.iter().filter_map(|tp| self.seal(tp)).collect()
    }

    /// A partition taken away: its unwritten records are dropped, not
    /// committed, so its new owner reads them again.
    fn drop_partition(&mut self, tp: &Tp) {
        if let Some(b) = self.buffers.remove(tp) {
            self.buffered_bytes -= b.lines.len();
        }
        self.resumed_at.remove(tp);
    }
}

/// What the reading thread reports when it ends.
pub(super) struct ReadOutcome {
    pub first_record: Option<Instant>,
}

pub(super) struct Reader {
    config: SinkConfig,
    consumer: Arc<BaseConsumer<SinkContext>>,
    coord: Arc<Coordination>,
    sealed: UnboundedSender<Sealed>,
    objects: ObjectCutter,
}

impl Reader {
    pub fn new(
        config: SinkConfig,
        consumer: Arc<BaseConsumer<SinkContext>>,
        coord: Arc<Coordination>,
        sealed: UnboundedSender<Sealed>,
    ) -> Self {
        let objects = ObjectCutter::new(config.flush_size, config.rotate_interval);
        Self { config, consumer, coord, sealed, objects }
    }

    /// Read until told to stop (or, with `StopWhen::CaughtUp`, until every
    /// assigned partition is written and committed to its end). Everything
    /// read is sealed and handed over before it returns.
    pub fn run(mut self) -> Result<ReadOutcome, SinkError> {
        let started = Instant::now();
        let mut last_record = Instant::now();
        let mut first_record = None;
        let mut rotation_checked = Instant::now();
        let mut tp: Tp = (String::new(), -1);
        let consumer = self.consumer.clone();
        while !self.coord.stopping() {
            self.wait_for_upload_room();
            let msg = consumer.poll(TICK);
            let idle = msg.is_none();
            self.drop_revoked();
            match msg {
                Some(Ok(m)) => {
                    last_record = Instant::now();
                    first_record.get_or_insert(last_record);
                    // Records come in runs of one partition: its name is
                    // copied only when the partition changes.
                    if tp.0 != m.topic() || tp.1 != m.partition() {
                        tp = (m.topic().to_string(), m.partition());
                    }
                    self.add(&tp, m.offset(), m.payload());
                }
                // Retrying with the same credentials cannot succeed: stop,
                // with nothing committed past what was written.
                Some(Err(e)) if pipeline_kafka::is_authentication_error(&e) => {
                    self.coord.stop();
                    return Err(self.config.kafka_auth.refused(&self.config.bootstrap, e.to_string()).into());
                }
                Some(Err(KafkaError::PartitionEOF(partition))) if self.config.stop.seals_at_partition_end() => {
                    self.seal_at_end(partition);
                }
                // Only asked for when draining; not an error otherwise either.
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                // librdkafka's fatal errors (e.g. fenced by a second member
                // with the same group.instance.id) end consuming for good:
                // staying up would look healthy and move nothing.
                Some(Err(e)) => match consumer.client().fatal_error() {
                    Some((code, reason)) => {
                        self.coord.stop();
                        return Err(SinkError::ConsumerFatal(format!("{code:?}: {reason}")));
                    }
                    None => tracing::warn!(error = %e, "Kafka consumer error; retrying"),
                },
                None => {}
            }
            // Checked on a clock, not only when idle: a steady trickle below
            // flush.size must still land every rotate interval.
            if idle || rotation_checked.elapsed() >= TICK {
                self.rotate(false);
                rotation_checked = Instant::now();
            }
            if self.objects.buffered_bytes > self.config.max_buffered_bytes {
                self.rotate(true);
            }
            if let StopWhen::CaughtUp { idle: wait } = self.config.stop
                && idle
                && last_record.elapsed() >= wait
            {
                if consumer.assignment()?.count() == 0 {
                    // Empty mid-rebalance too; only a worker that never
                    // got a record gives up.
                    if first_record.is_none() && started.elapsed() > self.config.assignment_timeout {
                        return Err(SinkError::NothingAssigned {
                            regex: self.config.topics_regex.clone(),
                            waited: self.config.assignment_timeout,
                        });
                    }
                    continue;
                }
                self.rotate(true);
                if self.coord.wait_settled() && self.caught_up()? {
                    break;
                }
                last_record = Instant::now();
            }
        }
        self.rotate(true);
        Ok(ReadOutcome { first_record })
    }

    /// Bounded memory: stop reading while sealed objects not yet uploaded
    /// hold more than the buffer budget.
    fn wait_for_upload_room(&self) {
        let mut state = self.coord.state.lock().expect("sink state lock");
        while state.unsettled_bytes > self.config.max_buffered_bytes && !self.coord.stopping() {
            state = self.coord.changed.wait_timeout(state, TICK).expect("sink state lock").0;
        }
    }

    /// Partitions taken away by a rebalance: their unwritten records are
    /// dropped, not committed, so their new owner reads them again.
    fn drop_revoked(&mut self) {
        let revoked = std::mem::take(&mut self.coord.state.lock().expect("sink state lock").revoked);
        for tp in revoked {
            self.objects.drop_partition(&tp);
        }
    }

    fn add(&mut self, tp: &Tp, offset: i64, payload: Option<&[u8]>) {
        let coord = &self.coord;
        if let Some(sealed) = self.objects.add(tp, offset, payload, || coord.epoch(tp)) {
            self.hand_over(sealed);
        }
    }

    /// Give a sealed object to the uploader.
    fn hand_over(&self, sealed: Sealed) {
        let bytes = sealed.bytes();
        tracing::debug!(topic = %sealed.tp.0, partition = sealed.tp.1, next_offset = sealed.next_offset, bytes, "object sealed");
        self.coord.add_unsettled(bytes);
        if self.sealed.send(sealed).is_err() {
            // The uploader has stopped (it failed); it says why.
            self.coord.stop();
        }
    }

    /// Seal buffers whose first record is older than the rotate interval
    /// (or all of them) and hand them over.
    fn rotate(&mut self, all: bool) {
        for sealed in self.objects.rotate(all) {
            self.hand_over(sealed);
        }
    }

    /// A partition number reached its end in some topic (librdkafka's
    /// end-of-partition event names no topic): seal the partial objects of
    /// that number that hold everything up to their topic's end.
    fn seal_at_end(&mut self, partition: i32) {
        let consumer = self.consumer.clone();
        for sealed in self.objects.seal_ended(partition, |tp| cached_end_offset(&consumer, tp)) {
            self.hand_over(sealed);
        }
    }

    /// Every assigned partition committed up to its high watermark.
    fn caught_up(&self) -> Result<bool, SinkError> {
        let assignment = self.consumer.assignment()?;
        let committed = self.consumer.committed_offsets(assignment, Duration::from_secs(10))?;
        for e in committed.elements() {
            let (low, high) = self.consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?;
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            if at < high {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A partition's end offset as of the consumer's last fetch, without asking
/// the broker (rdkafka wraps only the asking form).
fn cached_end_offset(consumer: &BaseConsumer<SinkContext>, tp: &Tp) -> Option<i64> {
    let topic = std::ffi::CString::new(tp.0.as_str()).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle lives as long as `consumer`; the
    // topic is a NUL-terminated string that outlives the call, and the
    // two out-pointers are valid for writes.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(consumer.client().native_ptr(), topic.as_ptr(), tp.1, &mut low, &mut high)
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> Tp {
        (topic.to_string(), partition)
    }

    #[test]
    fn flush_size_records_make_one_object_named_by_its_first_offset() {
        let mut cut = ObjectCutter::new(3, Duration::from_secs(60));
        let p = tp("u.pin", 1);
        assert!(cut.add(&p, 40, Some(br#"{"a": 1}"#), || 7).is_none());
        assert!(cut.add(&p, 41, Some(b"2"), || unreachable!("the buffer exists")).is_none());
        let sealed = cut.add(&p, 42, Some(b"[3]"), || unreachable!()).expect("third record fills the object");
        let (key, body, records) = sealed.object.expect("an object");
        assert_eq!(key, object_key("u.pin", 1, 40));
        assert_eq!(body, b"{\"a\":1}\n2\n[3]\n", "one compact value per line");
        assert_eq!((records, sealed.next_offset, sealed.epoch, sealed.resumed_at), (3, 43, 7, 40));
        assert_eq!(cut.buffered_bytes, 0);
    }

    #[test]
    fn values_that_are_not_json_become_dead_letters_and_are_not_counted() {
        let mut cut = ObjectCutter::new(2, Duration::from_secs(60));
        let p = tp("u.geo", 0);
        assert!(cut.add(&p, 5, Some(b"not json"), || 0).is_none());
        assert!(cut.add(&p, 6, None, || 0).is_none(), "a record without a value too");
        assert!(cut.add(&p, 7, Some(b"{}"), || 0).is_none());
        let sealed = cut.add(&p, 8, Some(b"{}"), || 0).unwrap();
        let (key, _, records) = sealed.object.clone().unwrap();
        assert_eq!(key, object_key("u.geo", 0, 7), "the object starts at its first JSON record");
        assert_eq!(records, 2);
        let letters: Vec<&str> = sealed.dead_letters.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(letters, [dead_letter_key("u.geo", 0, 5), dead_letter_key("u.geo", 0, 6)]);
        assert_eq!(sealed.dead_letters[0].1, b"not json", "kept byte for byte");
        assert_eq!(sealed.next_offset, 9, "commits past the dead letters too");
    }

    #[test]
    fn only_dead_letters_still_seal_so_their_offsets_commit() {
        let mut cut = ObjectCutter::new(10, Duration::ZERO);
        let p = tp("u.user", 2);
        cut.add(&p, 0, Some(b"\xff"), || 0);
        let sealed = cut.rotate(false);
        assert_eq!(sealed.len(), 1);
        assert!(sealed[0].object.is_none());
        assert_eq!((sealed[0].dead_letters.len(), sealed[0].next_offset), (1, 1));
    }

    #[test]
    fn rotation_seals_partial_objects_only_once_they_are_old_enough() {
        let mut cut = ObjectCutter::new(100, Duration::from_secs(3600));
        cut.add(&tp("t", 0), 0, Some(b"1"), || 0);
        cut.add(&tp("t", 1), 0, Some(b"1"), || 0);
        assert!(cut.rotate(false).is_empty(), "younger than rotate.interval");
        assert_eq!(cut.buffered_bytes, 4);
        let mut all = cut.rotate(true);
        all.sort_by(|a, b| a.tp.cmp(&b.tp));
        assert_eq!(all.iter().map(|s| s.tp.1).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(cut.buffered_bytes, 0);
        assert!(cut.rotate(true).is_empty());
    }

    #[test]
    fn reaching_a_partitions_end_seals_only_the_objects_that_hold_all_of_it() {
        let mut cut = ObjectCutter::new(100, Duration::from_secs(3600));
        for (t, p, offsets) in [("a", 0, 0..10), ("b", 0, 0..5), ("a", 1, 0..3)] {
            for o in offsets {
                cut.add(&tp(t, p), o, Some(b"1"), || 0);
            }
        }
        let ends = |t: &Tp| match (t.0.as_str(), t.1) {
            ("a", 0) => Some(10),
            ("b", 0) => Some(7),
            ("a", 1) => Some(3),
            _ => None,
        };
        let sealed = cut.seal_ended(0, ends);
        let sealed: Vec<(&Tp, i64)> = sealed.iter().map(|s| (&s.tp, s.next_offset)).collect();
        assert_eq!(sealed, [(&tp("a", 0), 10)], "b/0 has records to come; a/1 is another partition");
        assert_eq!(cut.buffered_bytes, 2 * 5 + 2 * 3, "the others keep their records");
        assert!(cut.seal_ended(1, |_| None).is_empty(), "an unknown end seals nothing");
        assert_eq!(cut.seal_ended(1, ends).len(), 1);
    }

    #[test]
    fn a_dropped_partition_forgets_its_records_and_where_it_resumed() {
        let mut cut = ObjectCutter::new(100, Duration::from_secs(3600));
        let p = tp("t", 0);
        cut.add(&p, 10, Some(b"1"), || 1);
        cut.drop_partition(&p);
        assert_eq!(cut.buffered_bytes, 0);
        assert!(cut.rotate(true).is_empty(), "nothing of the old assignment is written");
        // Reassigned later from offset 12, in a new generation.
        cut.add(&p, 12, Some(b"2"), || 2);
        let sealed = cut.rotate(true).pop().unwrap();
        assert_eq!((sealed.epoch, sealed.resumed_at), (2, 12));
        assert_eq!(sealed.object.unwrap().0, object_key("t", 0, 12));
    }
}

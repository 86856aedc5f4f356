//! `pipeline sink`: Kafka to object storage in the Confluent S3 sink layout
//! (SPEC 3.3), the local stand-in for the MSK Connect connector.
//!
//! Exactly-once output comes from the same idea as the original: an
//! object's key is derived from the offset of its first record, and offsets
//! are committed only after the object is written. After a crash the
//! records since the last commit are read again and land on the same keys.
//! Before writing the first object of a partition this worker removes the
//! objects that lie beyond the committed offset (written but not committed
//! before a crash), because a time-based flush may cut the replay into
//! different objects than before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::kafka;
use crate::storage::{Location, S3Settings, StorageError};

/// When the worker stops on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopWhen {
    /// Run until shut down (a service, like the connector).
    Never,
    /// Stop once every matched partition is written and committed up to its
    /// end, after no new record arrived for `idle` (demo and tests).
    CaughtUp { idle: Duration },
}

/// Objects uploaded at once unless configured otherwise.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 16;

/// Longest a sealed object waits for others to share its upload round.
/// Without it a steady trickle of records (never 100 ms apart, never 64
/// objects) held each record for seconds.
const MAX_READY_WAIT: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub bootstrap: String,
    pub kafka_overrides: Vec<(String, String)>,
    /// `topics.regex`, e.g. `^<uid>\..*`.
    pub topics_regex: String,
    pub group_id: String,
    pub location: Location,
    pub s3: S3Settings,
    /// Records per object (`flush.size`); the original uses 1.
    pub flush_size: usize,
    /// Write a partial object once its first record is this old
    /// (`rotate.interval.ms`).
    pub rotate_interval: Duration,
    /// Objects uploaded at once.
    pub upload_concurrency: usize,
    /// Bytes buffered before everything is flushed regardless of size.
    pub max_buffered_bytes: usize,
    pub stop: StopWhen,
    /// How long to wait for any partition to be assigned before giving up
    /// (`CaughtUp` only).
    pub assignment_timeout: Duration,
}

impl SinkConfig {
    pub fn new(bootstrap: &str, topics_regex: &str, group_id: &str, location: Location) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            kafka_overrides: Vec::new(),
            topics_regex: topics_regex.to_string(),
            group_id: group_id.to_string(),
            location,
            s3: S3Settings::default(),
            flush_size: 1,
            rotate_interval: Duration::from_secs(10),
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            max_buffered_bytes: 64 * 1024 * 1024,
            stop: StopWhen::Never,
            assignment_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("writing {key} failed: {source}")]
    Write { key: String, source: object_store::Error },
    #[error("listing {prefix} failed: {source}")]
    List { prefix: String, source: object_store::Error },
    #[error("no topic matching `{regex}` was assigned within {waited:?}: create the topics first (e.g. `pipeline topics create`)")]
    NothingAssigned { regex: String, waited: Duration },
    #[error("flush.size must be at least 1")]
    FlushSize,
}

/// Counts of a sink run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub records_written: u64,
    pub objects_written: u64,
    pub dead_letters: u64,
    pub stale_objects_removed: u64,
    /// From the first record received to the last object written: the time
    /// spent moving data, without group join or the final idle wait.
    pub active: Duration,
}

/// Object key of the Confluent S3 sink's DefaultPartitioner + JsonFormat.
pub fn object_key(topic: &str, partition: i32, start_offset: i64) -> String {
    format!("topics/{topic}/partition={partition}/{topic}+{partition}+{start_offset:010}.json")
}

/// Key of a record that is not valid JSON, named by its coordinates.
pub fn dead_letter_key(topic: &str, partition: i32, offset: i64) -> String {
    format!("dead-letter/topics/{topic}/partition={partition}/{topic}+{partition}+{offset:010}.bin")
}

/// Start offset encoded in an object key made by [`object_key`].
pub fn start_offset_of(key: &str) -> Option<i64> {
    let file = key.rsplit('/').next()?;
    let stem = file.strip_suffix(".json")?;
    stem.rsplit('+').next()?.parse().ok()
}

type Tp = (String, i32);

struct SinkContext {
    revoked: Arc<Mutex<Vec<Tp>>>,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.revoked.lock().unwrap();
            for e in tpl.elements() {
                revoked.push((e.topic().to_string(), e.partition()));
            }
        }
    }
}

/// Records of one partition waiting to become an object.
struct Buffer {
    start_offset: Option<i64>,
    lines: Vec<u8>,
    records: usize,
    next_offset: i64,
    first_at: Instant,
    dead_letters: Vec<(String, Vec<u8>)>,
}

struct Ready {
    tp: Tp,
    object: Option<(String, Vec<u8>, usize)>,
    dead_letters: Vec<(String, Vec<u8>)>,
    next_offset: i64,
}

struct Worker {
    config: SinkConfig,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    consumer: Arc<StreamConsumer<SinkContext>>,
    revoked: Arc<Mutex<Vec<Tp>>>,
    buffers: HashMap<Tp, Buffer>,
    ready: Vec<Ready>,
    /// When the oldest entry of `ready` was sealed.
    oldest_ready: Option<Instant>,
    buffered_bytes: usize,
    verified: HashSet<Tp>,
    stats: SinkStats,
    last_write: Option<Instant>,
}

/// Run the sink until `stop` says so or `shutdown` resolves. Everything
/// consumed is written and committed before it returns.
pub async fn run(config: SinkConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<SinkStats, SinkError> {
    if config.flush_size == 0 {
        return Err(SinkError::FlushSize);
    }
    let store = crate::storage::open(&config.location, &config.s3)?;
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let mut client = kafka::client_config(&config.bootstrap, &[]);
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Regex subscriptions see new topics only on a metadata refresh.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("isolation.level", "read_committed")
        // librdkafka's 500 ms default left the worker idle between fetches
        // even with a backlog: 0.5 s gaps, 28k records/s into a local
        // directory; at 50 ms, 250k. An idle worker asks 20 times a second.
        .set("fetch.wait.max.ms", "50");
    // The caller's -X settings come last, so they can change any of these.
    for (key, value) in &config.kafka_overrides {
        client.set(key, value);
    }
    let consumer: StreamConsumer<SinkContext> = client.create_with_context(SinkContext { revoked: revoked.clone() })?;
    consumer.subscribe(&[&config.topics_regex])?;
    let prefix = config.location.prefix().to_string();
    let mut worker = Worker {
        config,
        store,
        prefix,
        consumer: Arc::new(consumer),
        revoked,
        buffers: HashMap::new(),
        ready: Vec::new(),
        oldest_ready: None,
        buffered_bytes: 0,
        verified: HashSet::new(),
        stats: SinkStats::default(),
        last_write: None,
    };
    worker.run(shutdown).await
}

impl Worker {
    fn full_key(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<SinkStats, SinkError> {
        tokio::pin!(shutdown);
        let started = Instant::now();
        let mut last_record = Instant::now();
        let mut first_record: Option<Instant> = None;
        let idle_poll = Duration::from_millis(100);
        let mut rotation_checked = Instant::now();
        // A local handle: received messages borrow it, not `self`.
        let consumer = self.consumer.clone();
        loop {
            // Wake up in time to upload sealed objects within MAX_READY_WAIT.
            let poll = match self.oldest_ready {
                Some(t) => MAX_READY_WAIT.saturating_sub(t.elapsed()).max(Duration::from_millis(1)),
                None => idle_poll,
            };
            let msg = tokio::select! {
                _ = &mut shutdown => break,
                m = tokio::time::timeout(poll, consumer.recv()) => m,
            };
            let idle = msg.is_err();
            self.drop_revoked();
            match msg {
                Ok(Ok(m)) => {
                    last_record = Instant::now();
                    first_record.get_or_insert(last_record);
                    let tp = (m.topic().to_string(), m.partition());
                    if !self.verified.contains(&tp) {
                        self.remove_uncommitted_objects(&tp).await?;
                        self.verified.insert(tp.clone());
                    }
                    self.add(tp, m.offset(), m.payload());
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error; retrying"),
                Err(_) => {}
            }
            // Checked on a clock, not only when idle: a steady trickle below
            // flush.size must still land every rotate interval.
            if idle || rotation_checked.elapsed() >= idle_poll {
                self.rotate(false);
                rotation_checked = Instant::now();
            }
            if self.buffered_bytes > self.config.max_buffered_bytes {
                self.rotate(true);
            }
            let ready_waited = self.oldest_ready.is_some_and(|t| t.elapsed() >= MAX_READY_WAIT);
            if !self.ready.is_empty() && (idle || ready_waited || self.ready.len() >= self.config.upload_concurrency * 4) {
                self.write_ready().await?;
            }
            if let StopWhen::CaughtUp { idle: wait } = self.config.stop {
                if idle && last_record.elapsed() >= wait {
                    let assigned = self.consumer.assignment()?.count();
                    if assigned == 0 {
                        if started.elapsed() > self.config.assignment_timeout {
                            return Err(SinkError::NothingAssigned {
                                regex: self.config.topics_regex.clone(),
                                waited: self.config.assignment_timeout,
                            });
                        }
                        continue;
                    }
                    self.rotate(true);
                    self.write_ready().await?;
                    if self.caught_up().await? {
                        break;
                    }
                    last_record = Instant::now();
                }
            }
        }
        self.rotate(true);
        self.write_ready().await?;
        if let (Some(first), Some(last)) = (first_record, self.last_write) {
            self.stats.active = last.saturating_duration_since(first);
        }
        Ok(self.stats.clone())
    }

    /// Partitions taken away by a rebalance: their unwritten records are
    /// dropped, not committed, so their new owner reads them again.
    fn drop_revoked(&mut self) {
        let revoked: Vec<Tp> = std::mem::take(&mut *self.revoked.lock().unwrap());
        for tp in revoked {
            if let Some(b) = self.buffers.remove(&tp) {
                self.buffered_bytes -= b.lines.len();
            }
            self.ready.retain(|r| r.tp != tp);
            self.verified.remove(&tp);
        }
        if self.ready.is_empty() {
            self.oldest_ready = None;
        }
    }

    fn add(&mut self, tp: Tp, offset: i64, payload: Option<&[u8]>) {
        let buf = self.buffers.entry(tp.clone()).or_insert_with(|| Buffer {
            start_offset: None,
            lines: Vec::new(),
            records: 0,
            next_offset: offset,
            first_at: Instant::now(),
            dead_letters: Vec::new(),
        });
        buf.next_offset = offset + 1;
        let before = buf.lines.len();
        match payload.filter(|p| crate::json::append_compact(&mut buf.lines, p).is_ok()) {
            Some(_) => {
                buf.start_offset.get_or_insert(offset);
                buf.lines.push(b'\n');
                buf.records += 1;
                self.buffered_bytes += buf.lines.len() - before;
            }
            None => {
                tracing::warn!(topic = %tp.0, partition = tp.1, offset, "value is not JSON; writing it to the dead-letter prefix");
                buf.dead_letters.push((dead_letter_key(&tp.0, tp.1, offset), payload.unwrap_or_default().to_vec()));
            }
        }
        if buf.records >= self.config.flush_size {
            self.seal(&tp);
        }
    }

    fn seal(&mut self, tp: &Tp) {
        let Some(buf) = self.buffers.remove(tp) else { return };
        self.buffered_bytes -= buf.lines.len();
        let object = buf.start_offset.map(|start| (object_key(&tp.0, tp.1, start), buf.lines, buf.records));
        self.oldest_ready.get_or_insert_with(Instant::now);
        self.ready.push(Ready { tp: tp.clone(), object, dead_letters: buf.dead_letters, next_offset: buf.next_offset });
    }

    /// Seal buffers whose first record is older than the rotate interval
    /// (or all of them).
    fn rotate(&mut self, all: bool) {
        let due: Vec<Tp> = self
            .buffers
            .iter()
            .filter(|(_, b)| all || b.first_at.elapsed() >= self.config.rotate_interval)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.seal(&tp);
        }
    }

    /// Upload every sealed object, then commit the offsets they cover.
    async fn write_ready(&mut self) -> Result<(), SinkError> {
        if self.ready.is_empty() {
            return Ok(());
        }
        let ready = std::mem::take(&mut self.ready);
        self.oldest_ready = None;
        let mut puts = Vec::new();
        let mut commit: BTreeMap<Tp, i64> = BTreeMap::new();
        // Consumed: the bytes move into the uploads instead of being copied.
        for r in ready {
            if let Some((key, bytes, records)) = r.object {
                puts.push((self.full_key(&key), bytes, records as u64, false));
            }
            for (key, bytes) in r.dead_letters {
                puts.push((self.full_key(&key), bytes, 1, true));
            }
            let e = commit.entry(r.tp).or_insert(r.next_offset);
            *e = (*e).max(r.next_offset);
        }
        let store = self.store.clone();
        let results: Vec<(u64, bool)> = futures::stream::iter(puts)
            .map(|(path, bytes, records, dead)| {
                let store = store.clone();
                async move {
                    store
                        .put(&path, PutPayload::from(bytes))
                        .await
                        .map(|_| (records, dead))
                        .map_err(|source| SinkError::Write { key: path.to_string(), source })
                }
            })
            .buffer_unordered(self.config.upload_concurrency.max(1))
            .try_collect()
            .await?;
        for (records, dead) in results {
            if dead {
                self.stats.dead_letters += 1;
            } else {
                self.stats.objects_written += 1;
                self.stats.records_written += records;
            }
        }
        self.last_write = Some(Instant::now());
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in commit {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .expect("commit thread does not panic")?;
        Ok(())
    }

    /// Remove objects of this partition that start at or after the offset
    /// reading resumes from: they were written but not committed.
    async fn remove_uncommitted_objects(&mut self, tp: &Tp) -> Result<(), SinkError> {
        let consumer = self.consumer.clone();
        let (topic, partition) = tp.clone();
        let resume_from = tokio::task::spawn_blocking(move || -> Result<i64, rdkafka::error::KafkaError> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&topic, partition);
            let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
            let offset = committed.elements().first().map(|e| e.offset());
            match offset {
                Some(Offset::Offset(o)) => Ok(o),
                _ => Ok(consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))?.0),
            }
        })
        .await
        .expect("offset thread does not panic")?;
        let dir = self.full_key(&format!("topics/{}/partition={}", tp.0, tp.1));
        let stale: Vec<Path> = self
            .store
            .list(Some(&dir))
            .map_err(|source| SinkError::List { prefix: dir.to_string(), source })
            .try_filter_map(|meta| async move {
                Ok(start_offset_of(meta.location.as_ref()).filter(|s| *s >= resume_from).map(|_| meta.location))
            })
            .try_collect()
            .await?;
        for path in stale {
            tracing::info!(%path, resume_from, "removing object written after the last commit; it is rewritten from Kafka");
            self.store.delete(&path).await.map_err(|source| SinkError::Write { key: path.to_string(), source })?;
            self.stats.stale_objects_removed += 1;
        }
        Ok(())
    }

    /// Every assigned partition committed up to its high watermark.
    async fn caught_up(&self) -> Result<bool, SinkError> {
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || -> Result<bool, rdkafka::error::KafkaError> {
            let assignment = consumer.assignment()?;
            let committed = consumer.committed_offsets(assignment, Duration::from_secs(10))?;
            for e in committed.elements() {
                let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?;
                let at = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => low,
                };
                if at < high {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
        .expect("watermark thread does not panic")
        .map_err(SinkError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_confluent_layout() {
        let k = object_key("0e2a0bfcc015.pin", 0, 42);
        assert_eq!(k, "topics/0e2a0bfcc015.pin/partition=0/0e2a0bfcc015.pin+0+0000000042.json");
        assert_eq!(start_offset_of(&k), Some(42));
        assert_eq!(Path::from(k.as_str()).as_ref(), k, "object_store keeps the key as is");
        assert_eq!(start_offset_of("topics/t/partition=0/other.txt"), None);
        assert_eq!(
            dead_letter_key("t.pin", 2, 7),
            "dead-letter/topics/t.pin/partition=2/t.pin+2+0000000007.bin"
        );
    }
}

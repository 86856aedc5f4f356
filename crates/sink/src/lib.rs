//! `pipeline sink`: Kafka to object storage in the Confluent S3 sink layout
//! (SPEC 3.3), the local stand-in for the MSK Connect connector.
//!
//! Exactly-once output comes from the same idea as the original: an
//! object's key is derived from the offset of its first record, and offsets
//! are committed only after the object is written. After a crash the
//! records since the last commit are read again and land on the same keys.
//! Before writing the first object of a partition this worker removes the
//! objects that lie beyond the point reading resumed from (written but not
//! committed before a crash), because a time-based flush may cut the replay
//! into different objects than before.
//!
//! Reading ([`reader`], its own thread) and uploading (here, async) overlap:
//! objects upload while the next records are read, and each partition's
//! offsets are committed in order as its objects land.

pub mod cli;
mod metrics;
mod reader;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

pub use metrics::SinkMetrics;
use pipeline_kafka as kafka;
use pipeline_storage::{Location, StorageError};
use reader::{Reader, Sealed, SinkContext};

/// When the worker stops on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopWhen {
    /// Run until shut down (a service, like the connector).
    Never,
    /// Stop once every matched partition is written and committed up to its
    /// end, after no new record arrived for `idle` (demo and tests).
    CaughtUp { idle: Duration },
}

impl StopWhen {
    /// Whether a partition's partial object is sealed when reading reaches
    /// the partition's end: when draining with no wait for late records,
    /// the end is where reading stops anyway. With a wait, records arriving
    /// in it join the partial object, as rotation would have them.
    fn seals_at_partition_end(self) -> bool {
        matches!(self, StopWhen::CaughtUp { idle } if idle.is_zero())
    }
}

/// Objects uploaded at once unless configured otherwise.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 16;
/// Shortest time between two offset commits while uploads are in flight.
/// A commit per landed object was one broker request per object: at
/// flush.size 1 two bench runs measured 0.87x and 0.88x of raw PUTs, two
/// with commits spaced 1.00x and 1.07x. Objects landed but not yet committed are rewritten
/// to the same keys after a crash, as any uncommitted object is.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Records per object unless configured otherwise: the original's flush.size.
pub const DEFAULT_FLUSH_SIZE: usize = 1;
/// Age of a partial object's first record at which it is written anyway
/// (the original's rotate.interval.ms).
pub const DEFAULT_ROTATE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub bootstrap: String,
    pub kafka_overrides: Vec<(String, String)>,
    /// How the consumer authenticates (MSK IAM).
    pub kafka_auth: kafka::KafkaAuth,
    /// `topics.regex`, e.g. `^<uid>\..*`.
    pub topics_regex: String,
    pub group_id: String,
    pub location: Location,
    /// Endpoint, region and credentials for an S3 location.
    pub aws: aws_setup::AwsTarget,
    /// Records per object (`flush.size`); the original uses 1.
    pub flush_size: usize,
    /// Write a partial object once its first record is this old
    /// (`rotate.interval.ms`).
    pub rotate_interval: Duration,
    /// Objects uploaded at once.
    pub upload_concurrency: usize,
    /// Bytes held in partial objects before all are sealed regardless of
    /// size; reading also pauses while sealed objects waiting for upload
    /// hold more than this.
    pub max_buffered_bytes: usize,
    pub stop: StopWhen,
    /// How long to wait for any partition to be assigned before giving up
    /// (`CaughtUp` only).
    pub assignment_timeout: Duration,
    /// Updated as the sink runs; register them to serve them.
    pub metrics: SinkMetrics,
}

impl SinkConfig {
    pub fn new(bootstrap: &str, topics_regex: &str, group_id: &str, location: Location) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            kafka_overrides: Vec::new(),
            kafka_auth: kafka::KafkaAuth::none(),
            topics_regex: topics_regex.to_string(),
            group_id: group_id.to_string(),
            location,
            aws: aws_setup::AwsTarget::default(),
            flush_size: DEFAULT_FLUSH_SIZE,
            rotate_interval: DEFAULT_ROTATE_INTERVAL,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            max_buffered_bytes: 64 * 1024 * 1024,
            stop: StopWhen::Never,
            assignment_timeout: Duration::from_secs(30),
            metrics: SinkMetrics::default(),
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
    #[error(
        "the Kafka consumer stopped for good ({0}); nothing past what was written is committed. Another sink with the same group.instance.id fences this one: give each worker its own"
    )]
    ConsumerFatal(String),
    #[error(transparent)]
    Client(#[from] kafka::KafkaError),
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

// The layout's keys are the contract's: `generate` and `status` use them too.
use contract::listing_start_after;
pub use contract::{dead_letter_key, object_key, start_offset_of};

type Tp = (String, i32);

/// What the reading thread, its rebalance callback and the uploader share.
#[derive(Default)]
struct SharedState {
    /// Assignment generation per partition, bumped on revoke.
    epochs: HashMap<Tp, u64>,
    /// Revoked partitions the reader has not dropped its buffers for yet.
    revoked: Vec<Tp>,
    /// Uploads (and stale-object removals) running per partition.
    uploading: HashMap<Tp, usize>,
    /// Sealed objects not yet written and committed (or dropped), and
    /// their bytes.
    unsettled: usize,
    unsettled_bytes: usize,
}

impl SharedState {
    /// The partition's current assignment generation.
    fn epoch(&self, tp: &Tp) -> u64 {
        self.epochs.get(tp).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Coordination {
    state: Mutex<SharedState>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Coordination {
    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().expect("sink state lock")
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.changed.notify_all();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn epoch(&self, tp: &Tp) -> u64 {
        self.lock().epoch(tp)
    }

    fn add_unsettled(&self, bytes: usize) {
        let mut state = self.lock();
        state.unsettled += 1;
        state.unsettled_bytes += bytes;
    }

    fn settle(&self, bytes: usize) {
        let mut state = self.lock();
        state.unsettled -= 1;
        state.unsettled_bytes -= bytes;
        drop(state);
        self.changed.notify_all();
    }

    /// Block until every sealed object is written and committed; false if
    /// the sink is stopping instead.
    fn wait_settled(&self) -> bool {
        let mut state = self.lock();
        while state.unsettled > 0 && !self.stopping() {
            state = self.changed.wait_timeout(state, Duration::from_millis(100)).expect("sink state lock").0;
        }
        !self.stopping()
    }
}

/// Marks one partition as having an upload running until dropped, so a
/// revoke waits for it (also when the upload is abandoned on an error).
struct UploadSlot {
    coord: Arc<Coordination>,
    tp: Tp,
}

impl UploadSlot {
    /// A slot for a sealed object of the current assignment; `None` if its
    /// partition was revoked since it was read.
    fn take(coord: &Arc<Coordination>, tp: &Tp, epoch: u64) -> Option<Self> {
        let mut state = coord.lock();
        if state.epoch(tp) != epoch {
            return None;
        }
        *state.uploading.entry(tp.clone()).or_default() += 1;
        Some(Self { coord: coord.clone(), tp: tp.clone() })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut state = self.coord.lock();
        if let Some(n) = state.uploading.get_mut(&self.tp) {
            *n -= 1;
        }
        drop(state);
        self.coord.changed.notify_all();
    }
}

/// One sealed object written (with its dead letters).
struct Landed {
    tp: Tp,
    epoch: u64,
    id: u64,
    records: u64,
    has_object: bool,
    dead_letters: u64,
    bytes: usize,
    /// Bytes of the object itself (its dead letters not counted).
    object_bytes: u64,
}

/// The sink's consumer settings: tuned for throughput, then the caller's
/// -X settings, then the ones exactly once rests on.
fn consumer_config(config: &SinkConfig) -> ClientConfig {
    let mut client = kafka::client_config(&config.bootstrap, &config.kafka_auth, &[]);
    client
        .set("group.id", &config.group_id)
        .set("auto.offset.reset", "earliest")
        // Regex subscriptions see new topics only on a metadata refresh.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("isolation.level", "read_committed")
        // librdkafka's 500 ms default left the worker idle between fetches
        // even with a backlog: 0.5 s gaps, 28k records/s into a local
        // directory; at 50 ms, 250k. An idle worker asks 20 times a second.
        .set("fetch.wait.max.ms", "50")
        // The reader pauses while uploads are behind, librdkafka's local
        // queue fills meanwhile, and by default its fetches then wait a
        // whole second: a bench trace showed 360 ms with nothing read and
        // nothing to upload. 10 ms resumes fetching as soon as the queue
        // drains.
        .set("fetch.queue.backoff.ms", "10")
        // The per-partition lag the metrics show.
        .set("statistics.interval.ms", "1000");
    if config.stop.seals_at_partition_end() {
        // Draining: a partition's last records are written as soon as its
        // end is reached, not after a poll has waited for more.
        client.set("enable.partition.eof", "true");
    }
    // The caller's -X settings come next, so they can tune any of these;
    // then what exactly once rests on, which no -X setting may undo:
    // offsets are committed by the sink after each upload, never by
    // librdkafka on its timer (that would commit records not yet in S3).
    for (key, value) in &config.kafka_overrides {
        client.set(key, value);
    }
    client.set("enable.auto.commit", "false");
    client
}

/// Run the sink until `stop` says so or `shutdown` resolves. Everything
/// consumed is written and committed before it returns.
pub async fn run(config: SinkConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<SinkStats, SinkError> {
    if config.flush_size == 0 {
        return Err(SinkError::FlushSize);
    }
    let store = pipeline_storage::open(&config.location, &config.aws).await?;
    let coord = Arc::new(Coordination::default());
    let client = consumer_config(&config);
    let consumer: Arc<BaseConsumer<SinkContext>> = Arc::new(client.create_with_context(SinkContext {
        coord: coord.clone(),
        metrics: config.metrics.clone(),
        auth: config.kafka_auth.clone(),
    })?);
    config.kafka_auth.prime(consumer.client());
    consumer.subscribe(&[&config.topics_regex])?;
    let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = Reader::new(config.clone(), consumer.clone(), coord.clone(), sealed_tx);
    let reading = tokio::task::spawn_blocking(move || reader.run());
    let prefix = config.location.layout();
    let mut uploader = Uploader {
        concurrency: config.upload_concurrency.max(1),
        store,
        prefix,
        consumer: consumer.clone(),
        coord: coord.clone(),
        stale_checks: HashMap::new(),
        stale_removed: Arc::new(AtomicU64::new(0)),
        order: HashMap::new(),
        next_id: 0,
        to_commit: BTreeMap::new(),
        committed: BTreeMap::new(),
        landed_bytes: Vec::new(),
        stats: SinkStats::default(),
        last_write: None,
        metrics: config.metrics.clone(),
    };
    let uploaded = uploader.run(sealed_rx, shutdown).await;
    // The reader ends on its own once stopped or caught up; on an upload
    // error it is told to stop and its records are left uncommitted.
    if uploaded.is_err() {
        coord.stop();
    }
    let read = reading.await.expect("the reading thread does not panic");
    uploaded?;
    let read = read?;
    uploader.commit_final().await?;
    // Leaving the group waits on the broker; not on the async runtime.
    drop(uploader.consumer);
    tokio::task::spawn_blocking(move || drop(consumer)).await.expect("closing the consumer does not panic");
    let mut stats = uploader.stats;
    stats.stale_objects_removed = uploader.stale_removed.load(Ordering::Relaxed);
    if let (Some(first), Some(last)) = (read.first_record, uploader.last_write) {
        stats.active = last.saturating_duration_since(first);
    }
    Ok(stats)
}

/// One sealed object in a partition's queue: (id, next offset, landed).
type SealedInOrder = (u64, i64, bool);

struct Uploader {
    concurrency: usize,
    store: Arc<dyn ObjectStore>,
    prefix: contract::layout::Prefix,
    consumer: Arc<BaseConsumer<SinkContext>>,
    coord: Arc<Coordination>,
    /// Per partition and assignment generation, its one check for stale
    /// objects: every upload of the generation waits for it before writing.
    stale_checks: HashMap<(Tp, u64), Arc<tokio::sync::OnceCell<()>>>,
    /// Stale objects removed so far (by the checks, inside uploads).
    stale_removed: Arc<AtomicU64>,
    /// Per partition and generation, sealed objects in offset order.
    /// Offsets are committed only past a landed prefix.
    order: HashMap<(Tp, u64), VecDeque<SealedInOrder>>,
    next_id: u64,
    /// Commit points reached since the last commit, with their generation.
    to_commit: BTreeMap<Tp, (u64, i64)>,
    /// Last offset committed per partition, with its generation.
    committed: BTreeMap<Tp, (u64, i64)>,
    /// Bytes of landed objects whose offsets are not committed yet.
    landed_bytes: Vec<usize>,
    stats: SinkStats,
    last_write: Option<Instant>,
    metrics: SinkMetrics,
}

impl Uploader {
    fn full_key(&self, key: &str) -> Path {
        Path::from(self.prefix.join(key))
    }

    /// Upload sealed objects as they come, up to `concurrency` at once,
    /// until the reader has handed over its last one.
    async fn run(
        &mut self,
        mut sealed: tokio::sync::mpsc::UnboundedReceiver<Sealed>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), SinkError> {
        tokio::pin!(shutdown);
        let mut uploads: FuturesUnordered<BoxFuture<'static, Result<Landed, SinkError>>> = FuturesUnordered::new();
        let mut reader_done = false;
        let mut shut_down = false;
        let mut last_commit = tokio::time::Instant::now();
        while !(reader_done && uploads.is_empty()) {
            // Landed objects whose offsets wait for the commit interval.
            let commit_pending = !self.landed_bytes.is_empty();
            tokio::select! {
                _ = &mut shutdown, if !shut_down => {
                    shut_down = true;
                    self.coord.stop();
                }
                Some(landed) = uploads.next(), if !uploads.is_empty() => {
                    self.landed(landed?);
                    // Whatever else has landed meanwhile shares one commit.
                    while let Some(Some(landed)) = uploads.next().now_or_never() {
                        self.landed(landed?);
                    }
                    // With nothing in flight there is no later landing to
                    // commit with: commit now.
                    if uploads.is_empty() || last_commit.elapsed() >= COMMIT_INTERVAL {
                        self.commit()?;
                        last_commit = tokio::time::Instant::now();
                    }
                }
                // An upload that keeps retrying must not hold back the
                // commit of the objects that landed before it.
                _ = tokio::time::sleep_until(last_commit + COMMIT_INTERVAL), if commit_pending => {
                    self.commit()?;
                    last_commit = tokio::time::Instant::now();
                }
                next = sealed.recv(), if !reader_done && uploads.len() < self.concurrency => match next {
                    Some(s) => {
                        if let Some(upload) = self.start(s)? {
                            uploads.push(upload);
                        }
                    }
                    None => reader_done = true,
                },
            }
        }
        Ok(())
    }

    /// Begin writing one sealed object; `None` if its partition was revoked.
    fn start(&mut self, s: Sealed) -> Result<Option<BoxFuture<'static, Result<Landed, SinkError>>>, SinkError> {
        let bytes = s.bytes();
        let Some(slot) = UploadSlot::take(&self.coord, &s.tp, s.epoch) else {
            self.coord.settle(bytes);
            return Ok(None);
        };
        let generation = (s.tp.clone(), s.epoch);
        // The check runs inside the uploads, not here: the uploader goes on
        // starting other partitions' uploads while one partition is listed
        // (a LIST of a large bucket is slow on some stores). Each upload
        // holds its slot while it waits, so a revoke waits for the removal.
        let stale_check = self.stale_checks.entry(generation.clone()).or_default().clone();
        let check = StaleCheck {
            store: self.store.clone(),
            dir: Path::from(self.prefix.partition_dir(&s.tp.0, s.tp.1)),
            start_after: listing_start_after(&s.tp.0, s.tp.1, s.resumed_at).map(|key| self.full_key(&key)),
            resumed_at: s.resumed_at,
            removed: self.stale_removed.clone(),
        };
        let id = self.next_id;
        self.next_id += 1;
        self.order.entry(generation).or_default().push_back((id, s.next_offset, false));
        let mut puts = Vec::new();
        let (records, has_object, object_bytes) = match s.object {
            Some((key, body, records)) => {
                let len = body.len() as u64;
                puts.push((self.full_key(&key), body));
                (records as u64, true, len)
            }
            None => (0, false, 0),
        };
        let dead_letters = s.dead_letters.len() as u64;
        for (key, body) in s.dead_letters {
            puts.push((self.full_key(&key), body));
        }
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let (tp, epoch) = (s.tp, s.epoch);
        Ok(Some(
            async move {
                let _slot = slot;
                // Before anything of this generation is written: a stale
                // object may have the very key this upload writes.
                stale_check.get_or_try_init(|| check.remove_uncommitted_objects()).await?;
                let started = Instant::now();
                futures::future::try_join_all(puts.into_iter().map(|(path, body)| {
                    let store = store.clone();
                    async move {
                        store.put(&path, PutPayload::from(body)).await.map_err(|source| SinkError::Write { key: path.to_string(), source })
                    }
                }))
                .await?;
                let took = started.elapsed().as_secs_f64();
                metrics.upload_took(took);
                tracing::debug!(topic = %tp.0, partition = tp.1, records, bytes, took_ms = took * 1e3, "object written");
                Ok(Landed { tp, epoch, id, records, has_object, dead_letters, bytes, object_bytes })
            }
            .boxed(),
        ))
    }

    /// Count a written object and advance its partition's commit point
    /// past every object in front of it that has landed.
    fn landed(&mut self, l: Landed) {
        self.last_write = Some(Instant::now());
        if l.has_object {
            self.stats.objects_written += 1;
            self.stats.records_written += l.records;
        }
        self.stats.dead_letters += l.dead_letters;
        self.metrics.landed(l.records, u64::from(l.has_object), l.object_bytes, l.dead_letters);
        let generation = (l.tp.clone(), l.epoch);
        if let Some(queue) = self.order.get_mut(&generation) {
            if let Some(entry) = queue.iter_mut().find(|(id, _, _)| *id == l.id) {
                entry.2 = true;
            }
            while let Some(&(_, next, true)) = queue.front() {
                queue.pop_front();
                self.to_commit.insert(l.tp.clone(), (l.epoch, next));
            }
            if queue.is_empty() {
                self.order.remove(&generation);
            }
        }
        self.landed_bytes.push(l.bytes);
    }

    /// Commit the offsets past landed objects, for partitions still held.
    fn commit(&mut self) -> Result<(), SinkError> {
        self.commit_landed()?;
        // Settled only now, so a caught-up check after it sees the commit.
        for bytes in self.landed_bytes.drain(..) {
            self.coord.settle(bytes);
        }
        Ok(())
    }

    fn commit_landed(&mut self) -> Result<(), SinkError> {
        if self.to_commit.is_empty() {
            return Ok(());
        }
        // Under the state lock so a revoke cannot slip between the check
        // and the commit: a revoked partition's offsets are left to its next
        // owner, which may already have removed these objects.
        let state = self.coord.lock();
        let mut tpl = TopicPartitionList::new();
        for (tp, (epoch, next)) in std::mem::take(&mut self.to_commit) {
            if state.epoch(&tp) != epoch {
                continue;
            }
            tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(next))?;
            self.committed.insert(tp, (epoch, next));
        }
        if tpl.count() > 0 {
            self.consumer.commit(&tpl, CommitMode::Async)?;
        }
        Ok(())
    }

    /// A synchronous commit of the last offsets, so they are durable before
    /// the worker leaves its group.
    async fn commit_final(&mut self) -> Result<(), SinkError> {
        let mut tpl = TopicPartitionList::new();
        {
            let state = self.coord.lock();
            // Only partitions still held: another owner's may be further on.
            for ((topic, partition), (epoch, next)) in &self.committed {
                if state.epoch(&(topic.clone(), *partition)) == *epoch {
                    tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
                }
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await.expect("commit thread does not panic")?;
        Ok(())
    }
}

/// Objects of one partition that start at or after the offset reading
/// resumed from were written but not committed (before a crash or a
/// rebalance): they are removed, and rewritten from Kafka.
struct StaleCheck {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    /// Where the listing starts: past the partition's committed history,
    /// which may be millions of objects at flush.size 1.
    start_after: Option<Path>,
    resumed_at: i64,
    removed: Arc<AtomicU64>,
}

impl StaleCheck {
    async fn remove_uncommitted_objects(self) -> Result<(), SinkError> {
        let resumed_at = self.resumed_at;
        let started = Instant::now();
        let listing = match &self.start_after {
            Some(after) => self.store.list_with_offset(Some(&self.dir), after),
            None => self.store.list(Some(&self.dir)),
        };
        let stale: Vec<Path> = listing
            .map_err(|source| SinkError::List { prefix: self.dir.to_string(), source })
            .try_filter_map(|meta| async move {
                Ok(start_offset_of(meta.location.as_ref()).filter(|s| *s >= resumed_at).map(|_| meta.location))
            })
            .try_collect()
            .await?;
        tracing::debug!(dir = %self.dir, resumed_at, stale = stale.len(), took_ms = started.elapsed().as_secs_f64() * 1e3, "listed objects written after the last commit");
        for path in stale {
            tracing::info!(%path, resumed_at, "removing object written after the last commit; it is rewritten from Kafka");
            self.store.delete(&path).await.map_err(|source| SinkError::Write { key: path.to_string(), source })?;
            self.removed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly once rests on the sink committing after each upload: a -X
    /// setting tunes the consumer but cannot turn librdkafka's timed
    /// commits back on.
    #[test]
    fn no_kafka_setting_switches_on_auto_commit() {
        let mut config = SinkConfig::new("b:9092", "^u\\..*", "u-connector", Location::parse("/tmp/x").unwrap());
        config.kafka_overrides = vec![("enable.auto.commit".into(), "true".into()), ("fetch.wait.max.ms".into(), "100".into())];
        let client = consumer_config(&config);
        assert_eq!(client.get("enable.auto.commit"), Some("false"));
        assert_eq!(client.get("fetch.wait.max.ms"), Some("100"), "other settings are the caller's");
        assert_eq!(client.get("group.id"), Some("u-connector"));
    }

    #[test]
    fn object_store_keeps_layout_keys_as_they_are() {
        let k = object_key("0e2a0bfcc015.pin", 0, 42);
        assert_eq!(Path::from(k.as_str()).as_ref(), k);
    }
}

//! `pipeline stream`: the stream half (SPEC 3.2, 7). Reads every shard of
//! `streaming-<uid>-pin|geo|user` from the earliest record, parses each
//! record with the raw schema of SPEC 2, cleans each micro-batch with the
//! batch job's cleaning SQL (`batch::clean_kind`), and appends it to the
//! Delta table `<uid>_<kind>_table`.
//!
//! Exactly once across crashes: the per-shard sequence numbers reached are
//! stored in the same Delta commit as the rows (commit metadata), and a
//! restart resumes after them. Records that are not rows of the kind go to
//! a dead-letter location, one object per record named by shard and
//! sequence number, written before the commit, so a replay rewrites the
//! same objects.
//!
//! Tables live in a directory or on S3 (`s3://bucket/prefix`). On S3 a
//! commit is a put-if-absent of the next log entry (`If-None-Match: *`,
//! which S3 has honoured since 2024), so two writers can never both win a
//! version: Delta's own rule, without the DynamoDB lock table.

pub mod cli;
mod metrics;
pub use metrics::StreamMetrics;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake_core::kernel::StructType;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitProperties, TransactionError};
use deltalake_core::logstore::{LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories};
use deltalake_core::writer::{DeltaWriter, RecordBatchWriter};
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableBuilder};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

use contract::{Kind, Names};
use pipeline_batch::raw_rows::RawRowDecoder;
use pipeline_batch::{self as batch, BatchError, CleaningSummary, KindSummary};
use pipeline_storage::{self as storage, Location, StorageError};

/// Commit-metadata key holding the shard positions of a table.
pub const CHECKPOINT_KEY: &str = "pipeline.stream.checkpoint";

/// Records per GetRecords call unless configured otherwise.
pub const DEFAULT_MAX_RECORDS: i32 = 1000;
/// Pause after a round in which no shard had new records.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Where the Delta tables go unless configured otherwise.
pub const DEFAULT_OUTPUT: &str = "delta";

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub names: Names,
    /// Where Kinesis (and S3, for S3 locations) calls go.
    pub aws: aws_setup::AwsTarget,
    /// Where the Delta tables `<uid>_<kind>_table` live: a directory or
    /// `s3://bucket[/prefix]`.
    pub output: Location,
    /// Dead-letter location (default `<output>/_dead_letter`).
    pub dead_letter: Option<Location>,
    /// Records per GetRecords call (Kinesis allows up to 10,000).
    pub max_records: i32,
    /// Pause when no shard had new records.
    pub poll_interval: Duration,
    /// Stop after this long without new records (None: run until stopped).
    pub stop_when_idle: Option<Duration>,
    /// Updated as the worker runs; register them to serve them.
    pub metrics: StreamMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Kinesis {action} on {stream}: {detail}")]
    Kinesis { action: &'static str, stream: String, detail: String },
    #[error("stream {0} does not exist: create it (`cargo xtask provision`, or PUT/POST /streams/{0} on the ingest server)")]
    NoStream(String),
    #[error("Delta table {table}: {source}")]
    Delta { table: String, source: deltalake_core::DeltaTableError },
    #[error(transparent)]
    Clean(#[from] BatchError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Aws(#[from] aws_setup::AwsSetupError),
    #[error("writing dead letter {path}: {source}")]
    DeadLetter { path: String, source: object_store::Error },
    #[error("writing the cleaning summary {path}: {source}")]
    Summary { path: String, source: object_store::Error },
    #[error(
        "another writer committed to Delta table {table} at the same time; run one `pipeline stream` per uid and output (this one stopped; its positions up to the last commit are kept)"
    )]
    ConcurrentWriter { table: String },
    #[error("the checkpoint in {table} is unreadable ({detail}); it was not written by this tool")]
    Checkpoint { table: String, detail: String },
    #[error("reading data file {path} of Delta table {table}: {detail}")]
    DataFile { table: String, path: String, detail: String },
}

/// Counts of one run, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub read: u64,
    pub rows_written: u64,
    pub dead_lettered: u64,
    pub commits: u64,
}

/// The stream worker's view of one table.
struct TableWorker {
    kind: Kind,
    stream: String,
    table_name: String,
    url: url::Url,
    /// The bucket (or directory) root, for S3 tables.
    root: Option<ObjectStoreRef>,
    table: Option<DeltaTable>,
    /// Last sequence number committed, per shard.
    checkpoint: BTreeMap<String, String>,
    /// Current iterator per shard; None once a closed shard is drained.
    iterators: HashMap<String, Option<String>>,
    stats: StreamStats,
    /// This run's cleaning summary.
    summary: KindSummary,
    metrics: StreamMetrics,
}

/// A record read from a shard.
struct Read {
    shard: String,
    sequence: String,
    data: Vec<u8>,
}

/// A micro-batch made visible in its Delta table: the `ind` of each row
/// committed, and when (for latency measurements).
#[derive(Debug, Clone)]
pub struct Committed {
    pub kind: Kind,
    pub inds: Vec<i64>,
    pub at: Instant,
}

pub async fn run(config: StreamConfig) -> Result<StreamRun, StreamError> {
    run_observed(config, std::future::pending(), |_| {}).await
}

/// Where each run's cleaning summary is written, under the output.
pub const SUMMARY_FILE: &str = "_cleaning_summary.json";

/// What a run did: counts per kind and the cleaning summary (also written
/// to [`SUMMARY_FILE`] under the output).
#[derive(Debug, Clone, Default)]
pub struct StreamRun {
    pub stats: BTreeMap<Kind, StreamStats>,
    pub summary: CleaningSummary,
}

/// `run`, until idle (`stop_when_idle`) or until `stop` resolves (between
/// commits, so nothing half-done is left), calling `observe` after every
/// commit.
pub async fn run_observed(
    config: StreamConfig,
    stop: impl std::future::Future<Output = ()>,
    mut observe: impl FnMut(Committed),
) -> Result<StreamRun, StreamError> {
    // Loaded once: Kinesis, the tables' store and the dead letters share it.
    let sdk = config.aws.load_checked().await?;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dead_letter_location = config.dead_letter.clone().unwrap_or_else(|| config.output.join("_dead_letter"));
    let dead_letter = DeadLetters { store: storage::open_with(&dead_letter_location, &sdk).await?, prefix: dead_letter_location.prefix() };
    let root = storage::open_with(&config.output, &sdk).await?;
    let mut workers = Vec::new();
    for kind in Kind::ALL {
        workers.push(TableWorker::open(&config, kind, &root).await?);
    }
    let mut stop = std::pin::pin!(stop);
    let mut last_new = Instant::now();
    loop {
        let mut got = 0;
        for w in &mut workers {
            let (read, inds) = w.poll_once(&kinesis, config.max_records, &dead_letter).await?;
            if read > 0 {
                observe(Committed { kind: w.kind, inds, at: Instant::now() });
            }
            got += read;
        }
        if futures::FutureExt::now_or_never(stop.as_mut()).is_some() {
            break;
        }
        if got > 0 {
            last_new = Instant::now();
            continue;
        }
        if config.stop_when_idle.is_some_and(|idle| last_new.elapsed() >= idle) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = stop.as_mut() => break,
        }
    }
    let mut run = StreamRun::default();
    for w in workers {
        *run.summary.kind_mut(w.kind) = w.summary;
        run.stats.insert(w.kind, w.stats);
    }
    let path = join_path(&config.output.prefix(), &[SUMMARY_FILE]);
    let text = serde_json::to_string_pretty(&run.summary).expect("summaries serialise") + "\n";
    root.put(&path, PutPayload::from(text.into_bytes())).await.map_err(|source| StreamError::Summary { path: path.to_string(), source })?;
    Ok(run)
}

/// The Delta table of a kind under a local `output` directory.
pub fn table_path(output: &std::path::Path, names: &Names, kind: Kind) -> PathBuf {
    output.join(names.delta_table(kind))
}

/// The Delta table of a kind under `output`, as a URL with a trailing slash.
pub fn table_url(output: &Location, names: &Names, kind: Kind) -> Result<url::Url, StreamError> {
    let table = output.join(&names.delta_table(kind));
    let mut url = table.url()?.to_string();
    if !url.ends_with('/') {
        url.push('/');
    }
    url::Url::parse(&url).map_err(|_| StreamError::Storage(StorageError::BadLocation(url)))
}

/// Delta tables on S3 commit through the default log store: its commit is
/// a put with `PutMode::Create`, which object_store sends to S3 as
/// `If-None-Match: *`. deltalake-core registers log stores for file:// and
/// memory:// only; the S3 one of the `deltalake-aws` crate would bring a
/// second AWS SDK configuration and a DynamoDB lock we do not need.
struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &url::Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

fn register_s3_log_store() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        logstore_factories().insert(url::Url::parse("s3://").expect("valid"), Arc::new(ConditionalPutLogStores));
    });
}

/// Where dead letters go.
struct DeadLetters {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl DeadLetters {
    /// `<prefix>/<stream>/<shard>-<sequence>.json`: the record's bytes
    /// (base64), its position and the reason.
    async fn write(&self, stream: &str, r: &Read, why: &str) -> Result<(), StreamError> {
        let path = join_path(&self.prefix, &[stream, &format!("{}-{}.json", r.shard, r.sequence)]);
        let body = json!({
            "stream": stream,
            "shard_id": r.shard,
            "sequence_number": r.sequence,
            "error": why,
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&r.data),
        });
        self.store
            .put(&path, PutPayload::from(format!("{body}\n").into_bytes()))
            .await
            .map(|_| ())
            .map_err(|source| StreamError::DeadLetter { path: path.to_string(), source })
    }
}

fn join_path(prefix: &ObjectPath, parts: &[&str]) -> ObjectPath {
    let mut path = prefix.clone();
    for p in parts {
        path = path.join(*p);
    }
    path
}

fn delta_err(table: &str) -> impl FnOnce(deltalake_core::DeltaTableError) -> StreamError + '_ {
    move |source| match source {
        // Our commits never retry on top of someone else's (max_retries 0):
        // the positions we store are only right if ours is the only writer.
        deltalake_core::DeltaTableError::VersionAlreadyExists(_)
        | deltalake_core::DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) } => {
            StreamError::ConcurrentWriter { table: table.to_string() }
        }
        source => StreamError::Delta { table: table.to_string(), source },
    }
}

fn kinesis_err<'a, E: std::error::Error>(action: &'static str, stream: &'a str) -> impl FnOnce(E) -> StreamError + 'a {
    move |e| StreamError::Kinesis { action, stream: stream.to_string(), detail: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string() }
}

impl TableWorker {
    async fn open(config: &StreamConfig, kind: Kind, root: &Arc<dyn ObjectStore>) -> Result<Self, StreamError> {
        let table_name = config.names.delta_table(kind);
        let url = table_url(&config.output, &config.names, kind)?;
        let root = match &config.output {
            Location::Local { dir } => {
                let path = table_path(dir, &config.names, kind);
                std::fs::create_dir_all(&path)
                    .map_err(|source| StreamError::Io { what: format!("creating {}", path.display()), source })?;
                None
            }
            Location::S3 { .. } => Some(root.clone()),
        };
        let exists = log_exists(&config.output, root.as_ref(), &config.names, kind).await?;
        let mut worker = Self {
            kind,
            stream: config.names.stream(kind),
            table_name,
            url,
            root,
            table: None,
            checkpoint: BTreeMap::new(),
            iterators: HashMap::new(),
            stats: StreamStats::default(),
            summary: KindSummary::default(),
            metrics: config.metrics.clone(),
        };
        if exists {
            let table = worker.builder()?.load().await.map_err(delta_err(&worker.table_name))?;
            worker.checkpoint = read_checkpoint(&table, &worker.table_name).await?;
            worker.table = Some(table);
        }
        tracing::info!(table = %worker.table_name, shards = worker.checkpoint.len(), "resuming after the committed positions");
        Ok(worker)
    }

    fn builder(&self) -> Result<DeltaTableBuilder, StreamError> {
        delta_builder(&self.url, &self.table_name, self.root.as_ref())
    }

    /// Start iterators for shards not seen yet: after the committed
    /// position, or at the oldest record.
    async fn refresh_shards(&mut self, kinesis: &aws_sdk_kinesis::Client) -> Result<(), StreamError> {
        let mut shards = Vec::new();
        let mut token = None::<String>;
        loop {
            let req = match &token {
                Some(t) => kinesis.list_shards().next_token(t),
                None => kinesis.list_shards().stream_name(&self.stream),
            };
            let out = match req.send().await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                    return Err(StreamError::NoStream(self.stream.clone()));
                }
                Err(e) => return Err(kinesis_err("ListShards", &self.stream)(e)),
            };
            shards.extend(out.shards().iter().map(|s| s.shard_id().to_string()));
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for shard in shards {
            if self.iterators.contains_key(&shard) {
                continue;
            }
            let mut req = kinesis.get_shard_iterator().stream_name(&self.stream).shard_id(&shard);
            req = match self.checkpoint.get(&shard) {
                Some(seq) => req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(seq),
                None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let out = req.send().await.map_err(kinesis_err("GetShardIterator", &self.stream))?;
            self.iterators.insert(shard, out.shard_iterator().map(str::to_string));
        }
        Ok(())
    }

    /// Read what the shards have, and commit it. Returns the records read and
    /// the `ind` of the rows committed.
    async fn poll_once(
        &mut self,
        kinesis: &aws_sdk_kinesis::Client,
        max_records: i32,
        dead_letter: &DeadLetters,
    ) -> Result<(u64, Vec<i64>), StreamError> {
        self.refresh_shards(kinesis).await?;
        let mut reads = Vec::new();
        let shards: Vec<String> = self.iterators.keys().cloned().collect();
        for shard in shards {
            let Some(Some(iterator)) = self.iterators.get(&shard).cloned() else { continue };
            let out = match kinesis.get_records().shard_iterator(iterator).limit(max_records).send().await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_expired_iterator_exception()) => {
                    // Re-open from the committed position on the next poll.
                    self.iterators.remove(&shard);
                    continue;
                }
                Err(e) => return Err(kinesis_err("GetRecords", &self.stream)(e)),
            };
            for r in out.records() {
                reads.push(Read { shard: shard.clone(), sequence: r.sequence_number().to_string(), data: r.data().as_ref().to_vec() });
            }
            self.metrics.read(&self.stream, &shard, out.records().len() as u64, out.millis_behind_latest());
            self.iterators.insert(shard, out.next_shard_iterator().map(str::to_string));
        }
        if reads.is_empty() {
            return Ok((0, Vec::new()));
        }
        let n = reads.len() as u64;
        let inds = self.commit(reads, dead_letter).await?;
        self.stats.read += n;
        Ok((n, inds))
    }

    async fn commit(&mut self, reads: Vec<Read>, dead_letter: &DeadLetters) -> Result<Vec<i64>, StreamError> {
        // A record's data is one JSON text (it may span lines): the batch
        // job's raw-row rule, applied to the whole of it.
        let mut decoder = RawRowDecoder::new(self.kind);
        let mut bad = 0;
        let mut checkpoint = self.checkpoint.clone();
        for r in &reads {
            let outcome = decoder.push(&r.data);
            if !outcome.refused.is_empty() {
                let why = outcome.refused.iter().map(|f| f.reason.as_str()).collect::<Vec<_>>().join("; ");
                dead_letter.write(&self.stream, r, &why).await?;
                bad += outcome.refused.iter().map(|f| f.records).sum::<u64>();
            }
            // Sequence numbers grow within a shard; reads are in order.
            checkpoint.insert(r.shard.clone(), r.sequence.clone());
        }
        let nulled = decoder.nulled();
        let batch::CleanedBatch { schema: cleaned_schema, batches: cleaned, summary: mut cleaned_summary } =
            batch::clean_kind(self.kind, decoder.finish()).await?;
        cleaned_summary.nulled = nulled;
        cleaned_summary.quarantined = bad;
        cleaned_summary.records_read += bad;
        let delta_schema = delta_compatible(&cleaned_schema);
        let table = self.ensure_table(&delta_schema).await?;
        let properties = CommitProperties::default().with_metadata([(CHECKPOINT_KEY.to_string(), json!(checkpoint))]).with_max_retries(0);
        let mut writer = RecordBatchWriter::for_table(table).map_err(delta_err(&self.table_name))?.with_commit_properties(properties);
        let mut written = 0;
        let mut inds = Vec::new();
        for b in cleaned {
            let b = cast_batch(&b, &delta_schema)?;
            written += b.num_rows() as u64;
            if let Some(col) = b.column_by_name("ind").and_then(|c| c.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>()) {
                inds.extend(col.iter().flatten());
            }
            writer.write(b).await.map_err(delta_err(&self.table_name))?;
        }
        let table = self.table.as_mut().expect("ensured");
        let started = std::time::Instant::now();
        writer.flush_and_commit(table).await.map_err(delta_err(&self.table_name))?;
        self.metrics.committed(
            &self.stream,
            &self.table_name,
            written,
            bad,
            table.version().and_then(|v| i64::try_from(v).ok()),
            started.elapsed().as_secs_f64(),
        );
        self.checkpoint = checkpoint;
        self.stats.rows_written += written;
        self.stats.dead_lettered += bad;
        self.stats.commits += 1;
        self.summary.merge(&cleaned_summary);
        tracing::debug!(table = %self.table_name, read = reads.len(), written, bad, "committed");
        Ok(inds)
    }

    async fn ensure_table(&mut self, schema: &SchemaRef) -> Result<&DeltaTable, StreamError> {
        if self.table.is_none() {
            let st: StructType = schema
                .as_ref()
                .try_into_kernel()
                .map_err(|e| delta_err(&self.table_name)(deltalake_core::DeltaTableError::Generic(e.to_string())))?;
            // Built, not loaded: there is no log to load yet.
            let created = self
                .builder()?
                .build()
                .map_err(delta_err(&self.table_name))?
                .create()
                .with_table_name(&self.table_name)
                .with_columns(st.fields().cloned())
                .await;
            let table = match created {
                Ok(table) => table,
                // Created by another worker between our look and our create.
                Err(_) if self.builder()?.load().await.is_ok() => {
                    return Err(StreamError::ConcurrentWriter { table: self.table_name.clone() });
                }
                Err(e) => return Err(delta_err(&self.table_name)(e)),
            };
            self.table = Some(table);
        }
        Ok(self.table.as_ref().expect("just set"))
    }
}

/// A builder for a table, on our S3 store (`s3_root`) when the table is on S3.
fn delta_builder(url: &url::Url, table_name: &str, s3_root: Option<&ObjectStoreRef>) -> Result<DeltaTableBuilder, StreamError> {
    let builder = DeltaTableBuilder::from_url(url.clone()).map_err(delta_err(table_name))?;
    Ok(match s3_root {
        Some(root) => {
            register_s3_log_store();
            builder.with_storage_backend(root.clone(), url.clone())
        }
        None => builder,
    })
}

/// Whether a kind's table under `output` has a log yet: its `_delta_log`
/// directory, or objects under that prefix in `s3_root` (the output's
/// store, given for an S3 output).
async fn log_exists(output: &Location, s3_root: Option<&ObjectStoreRef>, names: &Names, kind: Kind) -> Result<bool, StreamError> {
    match output {
        Location::Local { dir } => Ok(table_path(dir, names, kind).join("_delta_log").is_dir()),
        Location::S3 { bucket, .. } => {
            let root = s3_root.expect("an S3 output comes with its store");
            let log = join_path(&output.prefix(), &[&names.delta_table(kind), "_delta_log"]);
            let listed = root
                .list_with_delimiter(Some(&log))
                .await
                .map_err(|source| StreamError::Storage(StorageError::Open { location: format!("s3://{bucket}/{log}"), source }))?;
            Ok(!listed.objects.is_empty())
        }
    }
}

/// The version and row count of a kind's Delta table under `output`, or
/// `None` when there is no table there yet (for `pipeline status`).
/// `s3_root` is the output's store, for an S3 output; a directory output is
/// only read, never created.
pub async fn table_state(
    output: &Location,
    s3_root: Option<&ObjectStoreRef>,
    names: &Names,
    kind: Kind,
) -> Result<Option<(i64, i64)>, StreamError> {
    if !log_exists(output, s3_root, names, kind).await? {
        return Ok(None);
    }
    let table_name = names.delta_table(kind);
    let url = table_url(output, names, kind)?;
    let table = delta_builder(&url, &table_name, s3_root)?.load().await.map_err(delta_err(&table_name))?;
    let version = table.version().and_then(|v| i64::try_from(v).ok()).unwrap_or(0);
    let adds = table.snapshot().map_err(delta_err(&table_name))?.add_actions_table(true).map_err(delta_err(&table_name))?;
    let rows = adds
        .column_by_name("num_records")
        .and_then(|c| c.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>())
        .map_or(0, |c| c.iter().flatten().sum());
    Ok(Some((version, rows)))
}

/// The `ind` values at or above `floor` in a kind's Delta table under
/// `output` (none when there is no table yet): how `pipeline verify` finds
/// its tagged records. Only the data files whose statistics allow such a
/// value are read, so a large table costs its log and a few files.
pub async fn inds_from(
    output: &Location,
    s3_root: Option<&ObjectStoreRef>,
    names: &Names,
    kind: Kind,
    floor: i64,
) -> Result<std::collections::BTreeSet<i64>, StreamError> {
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let mut found = std::collections::BTreeSet::new();
    if !log_exists(output, s3_root, names, kind).await? {
        return Ok(found);
    }
    let table_name = names.delta_table(kind);
    let url = table_url(output, names, kind)?;
    let table = delta_builder(&url, &table_name, s3_root)?.load().await.map_err(delta_err(&table_name))?;
    let adds = table.snapshot().map_err(delta_err(&table_name))?.add_actions_table(true).map_err(delta_err(&table_name))?;
    let column = |name: &str, to: &DataType| adds.column_by_name(name).and_then(|c| cast(c, to).ok());
    let Some(paths) = column("path", &DataType::Utf8) else { return Ok(found) };
    let paths = paths.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    let max = column("max.ind", &DataType::Int64);
    let max = max.as_ref().and_then(|m| m.as_any().downcast_ref::<Int64Array>());
    let store = table.object_store();
    for row in 0..adds.num_rows() {
        // A file whose largest ind is below the floor cannot hold one.
        if max.is_some_and(|m| m.is_valid(row) && m.value(row) < floor) {
            continue;
        }
        let path = paths.value(row);
        let failed = |detail: String| StreamError::DataFile { table: table_name.clone(), path: path.to_string(), detail };
        let bytes = store
            .get(&ObjectPath::from(path))
            .await
            .map_err(|e| failed(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(|e| failed(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| failed(e.to_string()))?;
            let Some(ind) = batch.column_by_name("ind").and_then(|c| cast(c, &DataType::Int64).ok()) else { continue };
            let ind = ind.as_any().downcast_ref::<Int64Array>().expect("cast to Int64");
            found.extend(ind.iter().flatten().filter(|&v| v >= floor));
        }
    }
    Ok(found)
}

/// The positions committed last: the newest commit carrying them. Commits
/// are read newest first in growing windows (1, 8, 64, ...), so a restart
/// reads back only to the last stream commit, usually the newest of all,
/// and not the table's whole history (which it read every time before).
async fn read_checkpoint(table: &DeltaTable, name: &str) -> Result<BTreeMap<String, String>, StreamError> {
    let mut window = 1usize;
    loop {
        let infos: Vec<_> = table.history(Some(window)).try_collect().await.map_err(delta_err(name))?;
        // Newest first.
        for info in &infos {
            if let Some(v) = info.info.get(CHECKPOINT_KEY) {
                return serde_json::from_value(v.clone())
                    .map_err(|e| StreamError::Checkpoint { table: name.to_string(), detail: e.to_string() });
            }
        }
        // Fewer commits than asked for: the whole (kept) history was read.
        if infos.len() < window {
            return Ok(BTreeMap::new());
        }
        window = window.saturating_mul(8);
    }
}

/// Delta stores timestamps in microseconds (UTC); DataFusion computes
/// nanoseconds without a zone (UTC in this pipeline).
fn delta_compatible(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(_, _) => Field::new(f.name(), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            _ => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, StreamError> {
    let err = |e: datafusion::arrow::error::ArrowError| {
        StreamError::Clean(BatchError::Engine { context: "casting for Delta".into(), source: e.into() })
    };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    RecordBatch::try_new(schema.clone(), columns).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_utc_microseconds() {
        let s = Arc::new(Schema::new(vec![Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, None), false)]));
        assert_eq!(delta_compatible(&s).field(0).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    }

    /// One commit with positions, then commits without (as OPTIMIZE or
    /// another writer would add): the positions are found however many
    /// commits came after, and a table without any has none.
    #[tokio::test]
    async fn the_newest_positions_are_found_behind_later_commits() {
        use datafusion::arrow::array::Int64Array;
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("ind", DataType::Int64, true)]));
        let st: StructType = schema.as_ref().try_into_kernel().unwrap();
        let mut table =
            DeltaTableBuilder::from_url(url).unwrap().build().unwrap().create().with_columns(st.fields().cloned()).await.unwrap();
        assert!(read_checkpoint(&table, "t").await.unwrap().is_empty(), "a new table has no positions");
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let positions = BTreeMap::from([("shardId-000000000000".to_string(), "4960".to_string())]);
        for commit in 0..12 {
            let mut writer = RecordBatchWriter::for_table(&table).unwrap();
            if commit == 0 {
                let properties = CommitProperties::default().with_metadata([(CHECKPOINT_KEY.to_string(), json!(positions))]);
                writer = writer.with_commit_properties(properties);
            }
            writer.write(batch.clone()).await.unwrap();
            writer.flush_and_commit(&mut table).await.unwrap();
            assert_eq!(read_checkpoint(&table, "t").await.unwrap(), positions, "after {commit} later commits");
        }
    }
}

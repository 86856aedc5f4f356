//! `pipeline batch`: reads the sink's output, cleans it (SPEC 4) and runs
//! the analysis queries (SPEC 5) on DataFusion. The SQL comes from the
//! `templates` crate, which renders the same files for Spark into the
//! Databricks notebook.
//!
//! Reading goes through the raw-row rule (`crate::raw_rows`): a line that
//! is not a row of its kind goes to the quarantine (`read`), never fails the
//! job; what cleaning nulls or cannot parse is counted (`summary`).

pub mod cli;
pub mod raw_rows;
mod read;
pub mod report;
pub mod summary;

use std::sync::Arc;

use contract::RawType;
use datafusion::arrow::array::{AsArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use templates::{CLEANING, Engine, QUERIES, Query, Templates};

pub use read::{DecodedChunk, KindInput, Quarantined, decode_object};
pub use summary::{CleaningSummary, KindSummary, Unparsed};

use contract::{Kind, Names};
use pipeline_storage::{Location, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Template(#[from] templates::TemplateError),
    #[error("{context}: {source}")]
    Engine { context: String, source: datafusion::error::DataFusionError },
    #[error("no sink output for `{kind}` under {location}/{prefix}: run the sink first (`pipeline sink`), or check --input and --uid")]
    NoInput { kind: Kind, location: String, prefix: String },
    #[error("listing {location} failed: {source}")]
    List { location: String, source: object_store::Error },
    #[error("writing results to {path}: {source}")]
    Output { path: String, source: std::io::Error },
    #[error("a decoding task failed: {0}")]
    Join(String),
    #[error("cleaning summary: {0}")]
    Summary(String),
    #[error(
        "--strict: {records} record(s) in {lines} line(s) were quarantined{}; fix the input, or run without --strict to skip them",
        .written_to.as_ref().map(|p| format!(" (see {p})")).unwrap_or_default()
    )]
    Strict { records: u64, lines: usize, written_to: Option<String> },
}

fn engine_err(context: impl Into<String>) -> impl FnOnce(datafusion::error::DataFusionError) -> BatchError {
    let context = context.into();
    move |source| BatchError::Engine { context, source }
}

/// The embedded templates, parsed once: cleaning renders them per chunk.
fn templates() -> &'static Templates {
    static TEMPLATES: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(Templates::new)
}

/// The cleaning step of a kind (its SQL, summary SQL and table name).
fn cleaning_step(kind: Kind) -> &'static templates::CleaningStep {
    CLEANING.iter().find(|s| s.kind == kind.as_str()).expect("every kind has a cleaning step")
}

/// Arrow schema of `<kind>_raw`, from the column list the Spark notebook
/// is rendered from too.
pub fn raw_schema(kind: Kind) -> Schema {
    let fields = contract::raw_columns(kind)
        .iter()
        .map(|(name, ty)| {
            let dt = match ty {
                RawType::Int => DataType::Int64,
                RawType::Float => DataType::Float64,
                RawType::Text => DataType::Utf8,
            };
            Field::new(*name, dt, true)
        })
        .collect::<Vec<_>>();
    Schema::new(fields)
}

#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Where the sink wrote `topics/<uid>.<kind>/...`.
    pub input: Location,
    pub names: Names,
    /// Endpoint, region and credentials for an S3 input.
    pub aws: aws_setup::AwsTarget,
    /// Directory for Parquet output of cleaned tables and query results,
    /// the quarantine (`quarantine/<kind>.json`) and the cleaning summary
    /// (`summary.json`).
    pub output: Option<std::path::PathBuf>,
    /// Fail (after writing everything) when any line was quarantined.
    pub strict: bool,
}

/// A computed table.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub title: String,
    /// Kept apart from the batches: a result with no rows has no batch but
    /// still has its columns.
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Human-readable table.
    pub fn pretty(&self) -> String {
        datafusion::arrow::util::pretty::pretty_format_batches_with_schema(self.schema.clone(), &self.batches)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| format!("(cannot format: {e})"))
    }
}

/// Output of a batch run.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    /// Raw rows read per kind, in `Kind::ALL` order (quarantined records
    /// not included).
    pub raw_rows: Vec<(Kind, usize)>,
    pub cleaned: Vec<Table>,
    pub results: Vec<Table>,
    /// Refused lines of every kind, in object and line order.
    pub quarantined: Vec<(Kind, Quarantined)>,
    pub summary: CleaningSummary,
}

/// Read the sink output of the three kinds, cleaned chunk by chunk.
async fn read_input(config: &BatchConfig) -> Result<Vec<(Kind, KindInput)>, BatchError> {
    let store = pipeline_storage::open(&config.input, &config.aws).await?;
    let mut listed = Vec::new();
    for kind in Kind::ALL {
        let topic = config.names.topic(kind);
        let list_prefix = object_store::path::Path::from(config.input.layout().topic_dir(&topic));
        let keys = read::list_objects(&store, &list_prefix)
            .await
            .map_err(|source| BatchError::List { location: config.input.to_string(), source })?;
        // Fail with the fix rather than return empty results.
        if keys.is_empty() {
            return Err(BatchError::NoInput { kind, location: config.input.to_string(), prefix: contract::layout::topic_dir(&topic) });
        }
        listed.push((kind, keys));
    }
    // The kinds are independent: reading them at the same time keeps both
    // cores busy while one kind's chunk is being cleaned.
    let reads = listed.into_iter().map(|(kind, keys)| {
        let store = store.clone();
        async move { read::read_kind(&store, kind, keys).await.map(|input| (kind, input)) }
    });
    futures::future::try_join_all(reads).await
}

/// Exact duplicates dropped from rows of one schema.
async fn distinct(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, BatchError> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema, vec![batches]).map_err(engine_err("building the cleaned parts"))?;
    ctx.register_table("parts", Arc::new(table)).map_err(engine_err("registering the cleaned parts"))?;
    let df = ctx.sql("SELECT DISTINCT * FROM parts").await.map_err(engine_err("planning the cleaned parts"))?;
    df.collect().await.map_err(engine_err("dropping duplicates across chunks"))
}

/// Drop the duplicates across chunks and register the cleaned table.
async fn register_cleaned(ctx: &SessionContext, kind: Kind, input: &mut KindInput) -> Result<Table, BatchError> {
    let step = cleaning_step(kind);
    let schema = input.cleaned_schema.clone();
    let batches = distinct(schema.clone(), std::mem::take(&mut input.cleaned_parts)).await?;
    let table = MemTable::try_new(schema.clone(), vec![batches.clone()]).map_err(engine_err(format!("building {}", step.table)))?;
    ctx.register_table(step.table, Arc::new(table)).map_err(engine_err(format!("registering {}", step.table)))?;
    Ok(Table { name: step.table.to_string(), title: format!("cleaned {}", step.kind), schema, batches })
}

/// Run cleaning and all queries on tables already registered as `*_raw`.
pub async fn clean_and_query(ctx: &SessionContext) -> Result<(Vec<Table>, Vec<Table>), BatchError> {
    let templates = templates();
    let mut cleaned = Vec::new();
    for step in CLEANING {
        let sql = templates.sql(step.template, Engine::DataFusion)?;
        let df = ctx.sql(&sql).await.map_err(engine_err(format!("planning {}", step.template)))?;
        let df = df.cache().await.map_err(engine_err(format!("running {}", step.template)))?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.clone().collect().await.map_err(engine_err(format!("running {}", step.template)))?;
        ctx.register_table(step.table, df.into_view()).map_err(engine_err(format!("registering {}", step.table)))?;
        cleaned.push(Table { name: step.table.to_string(), title: format!("cleaned {}", step.kind), schema, batches });
    }
    Ok((cleaned, run_queries(ctx).await?))
}

/// Run every query on the cleaned tables already registered.
pub async fn run_queries(ctx: &SessionContext) -> Result<Vec<Table>, BatchError> {
    let templates = templates();
    let mut results = Vec::new();
    for q in QUERIES {
        results.push(run_query(ctx, templates, q).await?);
    }
    Ok(results)
}

async fn run_query(ctx: &SessionContext, templates: &Templates, q: Query) -> Result<Table, BatchError> {
    let sql = templates.sql(q.template, Engine::DataFusion)?;
    let df = ctx.sql(&sql).await.map_err(engine_err(format!("planning {}", q.template)))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.clone().collect().await.map_err(engine_err(format!("running {}", q.template)))?;
    // Later queries may read this result (3b reads 3a).
    ctx.register_table(q.id, df.into_view()).map_err(engine_err(format!("registering {}", q.id)))?;
    Ok(Table { name: q.id.to_string(), title: q.title.to_string(), schema, batches })
}

/// The whole job: read, clean, query, optionally write Parquet, the
/// quarantine and the summary.
pub async fn run(config: &BatchConfig) -> Result<BatchOutput, BatchError> {
    let ctx = SessionContext::new();
    let mut inputs = read_input(config).await?;
    let mut summary = CleaningSummary::default();
    let mut cleaned = Vec::new();
    for (kind, input) in &mut inputs {
        let table = register_cleaned(&ctx, *kind, input).await?;
        let s = summary.kind_mut(*kind);
        *s = input.summary.clone();
        s.quarantined = input.quarantined_records();
        s.records_read = input.rows + s.quarantined;
        s.rows = table.rows() as u64;
        s.duplicates_dropped = input.rows - s.rows;
        cleaned.push(table);
    }
    let results = run_queries(&ctx).await?;
    let raw_rows = inputs.iter().map(|(kind, input)| (*kind, input.rows as usize)).collect();
    let quarantined: Vec<(Kind, Quarantined)> =
        inputs.into_iter().flat_map(|(kind, input)| input.quarantined.into_iter().map(move |q| (kind, q))).collect();
    let mut written_to = None;
    if let Some(dir) = &config.output {
        write_parquet(&ctx, dir, &cleaned, &results).await?;
        written_to = Some(write_quarantine(dir, &quarantined)?);
        write_json(&dir.join("summary.json"), &summary)?;
    }
    if config.strict && !quarantined.is_empty() {
        return Err(BatchError::Strict { records: summary.quarantined(), lines: quarantined.len(), written_to });
    }
    Ok(BatchOutput { raw_rows, cleaned, results, quarantined, summary })
}

async fn write_parquet(ctx: &SessionContext, dir: &std::path::Path, cleaned: &[Table], results: &[Table]) -> Result<(), BatchError> {
    for (sub, tables) in [("cleaned", cleaned), ("results", results)] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|source| BatchError::Output { path: d.display().to_string(), source })?;
        for t in tables {
            let path = d.join(format!("{}.parquet", t.name));
            // Through a table with the result's schema, so that a result
            // with no rows is still a file with its columns.
            let table =
                MemTable::try_new(t.schema.clone(), vec![t.batches.clone()]).map_err(engine_err(format!("preparing {}", t.name)))?;
            let df = ctx.read_table(Arc::new(table)).map_err(engine_err(format!("preparing {}", t.name)))?;
            let opts = DataFrameWriteOptions::new().with_single_file_output(true);
            df.write_parquet(&path.display().to_string(), opts, None).await.map_err(engine_err(format!("writing {}", path.display())))?;
        }
    }
    Ok(())
}

/// `quarantine/<kind>.json` under the output, one JSON object per refused
/// line; every kind's file is written, empty when nothing was refused, so
/// that a rerun never leaves an old quarantine behind. Returns the folder.
fn write_quarantine(dir: &std::path::Path, quarantined: &[(Kind, Quarantined)]) -> Result<String, BatchError> {
    let d = dir.join("quarantine");
    let io_err = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| BatchError::Output { path, source }
    };
    std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    for kind in Kind::ALL {
        let mut text = String::new();
        for (_, q) in quarantined.iter().filter(|(k, _)| *k == kind) {
            text.push_str(&serde_json::to_string(q).expect("quarantine entries serialise"));
            text.push('\n');
        }
        let path = d.join(format!("{kind}.json"));
        std::fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(d.display().to_string())
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), BatchError> {
    let text = serde_json::to_string_pretty(value).expect("summaries serialise") + "\n";
    std::fs::write(path, text).map_err(|source| BatchError::Output { path: path.display().to_string(), source })
}

/// One micro-batch cleaned.
#[derive(Debug)]
pub struct CleanedBatch {
    /// The cleaned schema, which an empty batch still has.
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows in, duplicates dropped, values unparsed (quarantined records
    /// and placeholders nulled are counted by the decoder, the caller's to
    /// add).
    pub summary: KindSummary,
}

/// Clean one micro-batch of raw rows of one kind with the batch job's
/// cleaning SQL (the stream path's cleaning: one implementation), and
/// summarise it with the batch job's summary SQL.
pub async fn clean_kind(kind: Kind, raw: Vec<RecordBatch>) -> Result<CleanedBatch, BatchError> {
    let ctx = SessionContext::new();
    let rows_in = register_raw_batches(&ctx, kind, raw)?;
    let templates = templates();
    let mut summary = summary::checks(&ctx, templates, kind).await?;
    let step = cleaning_step(kind);
    let sql = templates.sql(step.template, Engine::DataFusion)?;
    let df = ctx.sql(&sql).await.map_err(engine_err(format!("planning {}", step.template)))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(engine_err(format!("running {}", step.template)))?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    summary.records_read = rows_in;
    summary.rows = rows;
    summary.duplicates_dropped = rows_in - rows;
    Ok(CleanedBatch { schema, batches, summary })
}

/// Register record batches as the raw table of a kind: the decoder's
/// (with [`raw_rows::OCCURRENCES_COLUMN`]) or rows of the raw schema alone,
/// each then counted once (tests, benchmarks). Returns the records they
/// stand for.
pub fn register_raw_batches(ctx: &SessionContext, kind: Kind, batches: Vec<RecordBatch>) -> Result<u64, BatchError> {
    let schema = Arc::new(raw_rows::decoded_schema(kind));
    // One partition per core the session plans for, so cleaning runs on all.
    let mut partitions = vec![Vec::new(); ctx.copied_config().target_partitions().max(1)];
    let n = partitions.len();
    let mut records = 0;
    for (i, b) in batches.into_iter().enumerate() {
        let b = match b.column_by_name(raw_rows::OCCURRENCES_COLUMN) {
            Some(occurrences) => {
                records += occurrences.as_primitive::<UInt64Type>().values().iter().sum::<u64>();
                b
            }
            None => {
                records += b.num_rows() as u64;
                let mut columns = b.columns().to_vec();
                columns.push(Arc::new(UInt64Array::from(vec![1; b.num_rows()])));
                RecordBatch::try_new(schema.clone(), columns).map_err(|e| engine_err("building table")(e.into()))?
            }
        };
        partitions[i % n].push(b);
    }
    let table = MemTable::try_new(schema, partitions).map_err(engine_err("building table"))?;
    ctx.register_table(format!("{kind}_raw"), Arc::new(table)).map_err(engine_err("registering table"))?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::arrow::json::ReaderBuilder;

    fn batches(kind: Kind, rows: &[serde_json::Value]) -> Vec<RecordBatch> {
        let mut decoder = ReaderBuilder::new(Arc::new(raw_schema(kind))).build_decoder().unwrap();
        decoder.serialize(rows).unwrap();
        vec![decoder.flush().unwrap().unwrap()]
    }

    fn pin(index: i64, follower_count: &str, poster: &str, category: &str) -> serde_json::Value {
        serde_json::json!({
            "index": index, "unique_id": format!("id-{index}"), "title": "No Title Data Available",
            "description": "No description available Story format", "poster_name": poster,
            "follower_count": follower_count, "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
            "is_image_or_video": "image", "image_src": "Image src error.", "downloaded": 1,
            "save_location": "Local save in /data/tattoos", "category": category
        })
    }

    async fn ctx_with(pins: &[serde_json::Value], geos: &[serde_json::Value], users: &[serde_json::Value]) -> SessionContext {
        let ctx = SessionContext::new();
        register_raw_batches(&ctx, Kind::Pin, batches(Kind::Pin, pins)).unwrap();
        register_raw_batches(&ctx, Kind::Geo, batches(Kind::Geo, geos)).unwrap();
        register_raw_batches(&ctx, Kind::User, batches(Kind::User, users)).unwrap();
        ctx
    }

    fn col_i64(t: &Table, name: &str) -> Vec<Option<i64>> {
        t.batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name(name).unwrap().as_primitive::<Int64Type>();
                (0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))).collect::<Vec<_>>()
            })
            .collect()
    }

    fn col_str(t: &Table, name: &str) -> Vec<Option<String>> {
        t.batches
            .iter()
            .flat_map(|b| {
                let c = datafusion::arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
                let c = c.as_string::<i32>().clone();
                (0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i).to_string())).collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn pin_cleaning_follows_the_spec() {
        let pins = [
            pin(1, "1.2k", "A", "tattoos"),
            pin(2, "3M", "B", "art"),
            pin(3, "437", "C", "art"),
            pin(4, "User Info Error", "User Info Error", "art"),
            pin(5, "", "", ""),
            pin(1, "1.2k", "A", "tattoos"),
        ];
        let geos =
            [serde_json::json!({"ind": 1, "timestamp": "2019-04-07T22:11:02", "latitude": -12.5, "longitude": 3.25, "country": "Chile"})];
        let users =
            [serde_json::json!({"ind": 1, "first_name": "Amber", "last_name": "Chen", "age": 22, "date_joined": "2015-12-30 05:21:14"})];
        let ctx = ctx_with(&pins, &geos, &users).await;
        let (cleaned, _) = clean_and_query(&ctx).await.unwrap();
        let pin_t = &cleaned[0];
        assert_eq!(pin_t.rows(), 5, "exact duplicate dropped");
        let names: Vec<_> = pin_t.batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(
            names,
            [
                "ind",
                "unique_id",
                "title",
                "description",
                "follower_count",
                "poster_name",
                "tag_list",
                "is_image_or_video",
                "image_src",
                "save_location",
                "category"
            ]
        );
        let mut by_ind: Vec<_> = col_i64(pin_t, "ind").into_iter().zip(col_i64(pin_t, "follower_count")).collect();
        by_ind.sort();
        assert_eq!(by_ind, [(Some(1), Some(1200)), (Some(2), Some(3_000_000)), (Some(3), Some(437)), (Some(4), None), (Some(5), None)]);
        for c in ["title", "description", "tag_list", "image_src"] {
            assert!(col_str(pin_t, c).iter().all(Option::is_none), "{c} placeholders become null");
        }
        assert!(col_str(pin_t, "save_location").iter().all(|s| s.as_deref() == Some("/data/tattoos")));
        assert!(col_str(pin_t, "poster_name").iter().filter(|s| s.is_none()).count() == 2);
        assert!(col_str(pin_t, "category").iter().filter(|s| s.is_none()).count() == 1, "empty string is null");

        let geo_t = &cleaned[1];
        assert_eq!(col_str(geo_t, "timestamp"), [Some("2019-04-07T22:11:02".to_string())]);
        assert_eq!(col_str(geo_t, "coordinates"), [Some("[-12.5, 3.25]".to_string())]);
        let user_t = &cleaned[2];
        assert_eq!(col_str(user_t, "user_name"), [Some("Amber Chen".to_string())]);
    }

    #[tokio::test]
    async fn ties_are_kept_and_medians_are_lower_medians() {
        // Chile: art x2, tattoos x2 (a tie). Ages 22 (18-24) for all.
        let pins = [pin(1, "10", "A", "art"), pin(2, "20", "B", "art"), pin(3, "30", "C", "tattoos"), pin(4, "40", "D", "tattoos")];
        let geo = |i: i64| serde_json::json!({"ind": i, "timestamp": "2020-01-01 00:00:00", "latitude": 1.0, "longitude": 2.0, "country": "Chile"});
        let user = |i: i64| serde_json::json!({"ind": i, "first_name": "U", "last_name": format!("{i}"), "age": 22, "date_joined": "2016-05-05 10:00:00"});
        let ctx = ctx_with(&pins, &[geo(1), geo(2), geo(3), geo(4)], &[user(1), user(2), user(3), user(4)]).await;
        let (_, results) = clean_and_query(&ctx).await.unwrap();
        let q = |id: &str| results.iter().find(|t| t.name == id).unwrap().clone();
        assert_eq!(col_str(&q("q1"), "category"), [Some("art".into()), Some("tattoos".into())]);
        assert_eq!(col_i64(&q("q1"), "category_count"), [Some(2), Some(2)]);
        // Lower median of 10, 20, 30, 40 is 20 (position ceil(4/2) = 2).
        assert_eq!(col_i64(&q("q5"), "median_follower_count"), [Some(20)]);
        assert_eq!(col_str(&q("q5"), "age_group"), [Some("18-24".into())]);
        assert_eq!(col_i64(&q("q3a"), "follower_count"), [Some(40)]);
        assert_eq!(q("q3b").rows(), 1);
        assert_eq!(col_i64(&q("q6"), "number_users_joined"), [Some(4)]);
    }

    #[tokio::test]
    async fn timestamps_in_the_spellings_seen_in_the_wild_parse_and_the_rest_are_counted() {
        let geo = |i: i64, ts: &str| serde_json::json!({"ind": i, "timestamp": ts, "latitude": 1.0, "longitude": 2.0, "country": "C"});
        let rows = [
            geo(1, "2020-11-17 23:17:48"),
            geo(2, "2020-11-17T23:17:48"),
            geo(3, "2020-11-17T23:17:48.250"),
            geo(4, "2020:11:17 23:17:48"),
            geo(5, "17/11/2020"),
            geo(6, "yesterday"),
            geo(7, ""),
        ];
        let cleaned = clean_kind(Kind::Geo, batches(Kind::Geo, &rows)).await.unwrap();
        let t = Table { name: "geo_clean".into(), title: String::new(), schema: cleaned.schema, batches: cleaned.batches };
        let mut by_ind: Vec<_> = col_i64(&t, "ind").into_iter().zip(col_str(&t, "timestamp")).collect();
        by_ind.sort();
        let ts = |s: &str| Some(s.to_string());
        assert_eq!(
            by_ind,
            [
                (Some(1), ts("2020-11-17T23:17:48")),
                (Some(2), ts("2020-11-17T23:17:48")),
                (Some(3), ts("2020-11-17T23:17:48.250")),
                (Some(4), ts("2020-11-17T23:17:48")),
                (Some(5), None),
                (Some(6), None),
                (Some(7), None),
            ]
        );
        // The empty string is a missing value, not an unparsed one.
        assert_eq!(cleaned.summary.unparsed["timestamp"], Unparsed { count: 2, example: "17/11/2020".into() });
        assert_eq!((cleaned.summary.records_read, cleaned.summary.rows, cleaned.summary.duplicates_dropped), (7, 7, 0));
    }

    #[tokio::test]
    async fn the_summary_counts_each_placeholder_and_unparsed_follower_counts() {
        let pins = [pin(1, "User Info Error", "User Info Error", ""), pin(2, "12x", "B", "art"), pin(2, "12x", "B", "art")];
        let text: String = pins.iter().map(|p| format!("{p}\n")).collect();
        let decoded = decode_object(Kind::Pin, "k", text.as_bytes());
        let cleaned = clean_kind(Kind::Pin, decoded.batches).await.unwrap();
        let s = &cleaned.summary;
        assert_eq!((s.records_read, s.rows, s.duplicates_dropped), (3, 2, 1));
        assert_eq!(s.unparsed["follower_count"], Unparsed { count: 2, example: "12x".into() });
        let n = &decoded.nulled;
        assert_eq!(n["follower_count"]["User Info Error"], 1);
        assert_eq!(n["poster_name"]["User Info Error"], 1);
        assert_eq!(n["category"][""], 1);
        assert_eq!(n["title"]["No Title Data Available"], 3);
        assert_eq!(n["description"]["No description available Story format"], 3);
        assert!(!n.contains_key("unique_id") && !n.contains_key("index"));
        // The cleaning nulls exactly what was counted.
        let t = Table { name: "pin_clean".into(), title: String::new(), schema: cleaned.schema, batches: cleaned.batches };
        assert!(col_str(&t, "title").iter().all(Option::is_none));
        assert_eq!(col_str(&t, "category").iter().filter(|c| c.is_none()).count(), 1);
    }

    #[tokio::test]
    async fn a_result_without_rows_keeps_its_columns_in_parquet_and_print() {
        // No geo timestamp parses, so query 2 (grouped by year) is empty.
        let geos = [serde_json::json!({"ind": 1, "timestamp": "never", "latitude": 1.0, "longitude": 2.0, "country": "Chile"})];
        let users = [serde_json::json!({"ind": 1, "first_name": "A", "last_name": "B", "age": 30, "date_joined": "2016-01-01 00:00:00"})];
        let ctx = ctx_with(&[pin(1, "10", "A", "art")], &geos, &users).await;
        let (cleaned, results) = clean_and_query(&ctx).await.unwrap();
        let q2 = results.iter().find(|t| t.name == "q2").unwrap();
        assert_eq!(q2.rows(), 0);
        assert!(q2.pretty().contains("post_year") && q2.pretty().contains("category_count"), "{}", q2.pretty());
        let dir = tempfile::tempdir().unwrap();
        write_parquet(&ctx, dir.path(), &cleaned, &results).await.unwrap();
        let file = std::fs::File::open(dir.path().join("results/q2.parquet")).unwrap();
        let reader = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let names: Vec<_> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["post_year", "category", "category_count"]);
    }
}

//! `pipeline verify`: proves a running deployment end to end, the way a
//! user's records travel. A few tagged records go through the REST proxy
//! (the API Gateway invoke URL with its key, or a local ingest server),
//! are waited for in the sink's objects, and the batch job cleans them; each
//! hop is reported with its latency, and a failed hop is named with its
//! likely cause. The objects that hold only its records are removed.
//!
//! Tagging: the records share `index`/`ind` (as each emulation round does)
//! from [`TAG_FLOOR`] up, far above any row of the source tables, so they
//! are found among a live deployment's records and nobody else's are
//! touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use contract::{Kind, Names};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use pipeline_emulate::ApiKey;
use pipeline_storage::Location;
use serde::Deserialize;

/// The smallest `ind` a verification record carries: the original's
/// tables have about 11,000 rows, the synthetic ones fewer than 10^9.
pub const TAG_FLOOR: i64 = 9_000_000_000_000;

/// Sends a few tagged records through the deployment's REST proxy and
/// follows them: acknowledged by ingest, written by the sink, cleaned by
/// the batch job. Prints each hop with its latency; on a failure, names the
/// hop and its likely cause (auth, network, permissions, a component not
/// running) and exits non-zero. Removes the objects it caused. After
/// `provision`, run it as `cargo xtask verify --target <invoke url>
/// --api-key-file <file>` (provision prints the line).
#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// The REST proxy: the API Gateway invoke URL `provision` printed, or a
    /// local ingest server (http://127.0.0.1:8082).
    #[arg(long)]
    pub target: String,
    /// File holding the API Gateway key, sent as x-api-key (`provision`
    /// writes it to .local/keys/<uid>-api-key); PIPELINE_API_KEY works too.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub uid: pipeline_runtime::UidArg,
    #[command(flatten)]
    pub aws: aws_setup::AwsArgs,
    #[command(flatten)]
    pub sink: crate::SinkLocationArg,
    /// Records posted to each of the three topics.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub records: u32,
    /// Longest wait for the sink to write the records, in seconds.
    #[arg(long, default_value_t = 180, value_name = "SECS")]
    pub sink_timeout: u64,
    /// Leave the objects holding the records in place.
    #[arg(long)]
    pub keep: bool,
    /// Also put the records through the Kinesis routes (`PUT
    /// /streams/<stream>/records`): API Gateway's Kinesis integration and
    /// its role.
    #[arg(long)]
    pub stream: bool,
    /// Where the stream worker writes the Delta tables (e.g.
    /// s3://user-<uid>-bucket/delta): wait for the records there too.
    #[arg(long, requires = "stream")]
    pub delta: Option<String>,
    /// Longest wait for the stream worker to commit them, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub delta_timeout: u64,
}

/// A step of the records' way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// The REST proxy (API Gateway, then the ingest server) acknowledges them.
    Ingest,
    /// The sink writes them to the bucket.
    Sink,
    /// The batch job cleans them.
    Batch,
    /// API Gateway's Kinesis routes put them into the streams.
    Kinesis,
    /// The stream worker commits them to the Delta tables.
    Delta,
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Hop::Ingest => "ingest",
            Hop::Sink => "sink",
            Hop::Batch => "batch",
            Hop::Kinesis => "kinesis",
            Hop::Delta => "delta",
        })
    }
}

/// What most likely broke a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A key or header was refused.
    Auth,
    /// Nothing answered, or a proxy could not reach what is behind it.
    Network,
    /// A role or policy does not allow what the hop does.
    Permissions,
    /// The component behind the hop is not running or is behind.
    NotRunning,
    /// The records arrived but came out different.
    Data,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cause::Auth => "auth",
            Cause::Network => "network",
            Cause::Permissions => "permissions",
            Cause::NotRunning => "not running",
            Cause::Data => "data",
        })
    }
}

/// A hop that failed: its name, likely cause, and what was seen.
#[derive(Debug, thiserror::Error)]
#[error("verify failed at hop `{hop}` (likely cause: {cause}): {detail}")]
pub struct HopFailed {
    pub hop: Hop,
    pub cause: Cause,
    pub detail: String,
}

fn failed(hop: Hop, cause: Cause, detail: impl Into<String>) -> HopFailed {
    HopFailed { hop, cause, detail: detail.into() }
}

/// One record's tag, read from a line of a sink object.
#[derive(Deserialize)]
struct Tag {
    #[serde(alias = "index")]
    ind: Option<i64>,
}

/// What the sink wrote of the records of one run.
#[derive(Default)]
struct Found {
    /// Lines per kind, each a tagged record as the sink wrote it.
    lines: BTreeMap<Kind, Vec<String>>,
    /// Tags seen per kind.
    tags: BTreeMap<Kind, BTreeSet<i64>>,
    /// Objects read, and whether every line of it is one of ours.
    objects: BTreeMap<Path, bool>,
}

impl Found {
    fn count(&self) -> usize {
        self.tags.values().map(BTreeSet::len).sum()
    }
}

impl VerifyArgs {
    pub async fn run(self) -> Result<()> {
        let names = self.uid.names()?;
        let sink = self.sink.location(&names)?;
        let api_key = pipeline_runtime::secret_value(self.api_key_file.as_deref(), pipeline_emulate::cli::API_KEY_ENV, "the API key")?
            .map(ApiKey::new)
            .transpose()?;
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let first_tag = TAG_FLOOR + (millis % 1_000_000_000) * 100;
        let tags: Vec<i64> = (0..i64::from(self.records)).map(|n| first_tag + n).collect();
        println!(
            "verify {}: {} record(s) to each of {} via {} (ind {}..={})",
            names.uid(),
            self.records,
            names.topics().join(", "),
            self.target,
            tags[0],
            tags[tags.len() - 1]
        );

        let started = SystemTime::now();
        let client = http_client(&self.target, api_key.as_ref())?;
        let rounds = tagged_rounds(&tags);
        let acked = post(&client, &self.target, &names, &rounds).await?;
        println!("  {:<7} ok   {} record(s) acknowledged in {:.0} ms", Hop::Ingest, tags.len() * 3, ms(acked));
        if self.stream {
            let put = put_streams(&client, &self.target, &names, &rounds).await?;
            println!(
                "  {:<7} ok   {} record(s) put into {} in {:.0} ms",
                Hop::Kinesis,
                tags.len() * 3,
                names.streams().join(", "),
                ms(put)
            );
        }

        let waited = Instant::now();
        let store = pipeline_storage::open(&sink, &self.aws.target())
            .await
            .map_err(|e| failed(Hop::Sink, Cause::Permissions, format!("opening {sink}: {e}")))?;
        let found = wait_for_sink(store.as_ref(), &sink, &names, &tags, started, Duration::from_secs(self.sink_timeout)).await?;
        println!(
            "  {:<7} ok   {} record(s) in {} object(s) under {sink}, {:.1} s after the acknowledgement",
            Hop::Sink,
            found.count(),
            found.objects.len(),
            waited.elapsed().as_secs_f64()
        );

        if let Some(delta) = &self.delta {
            let waited = Instant::now();
            let delta = Location::parse(delta)?;
            wait_for_delta(&delta, &self.aws.target(), &names, &tags, Duration::from_secs(self.delta_timeout)).await?;
            println!(
                "  {:<7} ok   {} record(s) in the Delta tables under {delta}, {:.1} s after the sink's",
                Hop::Delta,
                tags.len() * 3,
                waited.elapsed().as_secs_f64()
            );
        }

        let cleaned = Instant::now();
        let rows = clean(&found, &names, tags.len()).await?;
        println!("  {:<7} ok   cleaned {rows} rows, nothing quarantined, in {:.0} ms", Hop::Batch, ms(cleaned.elapsed()));

        if self.keep {
            println!("  kept the {} object(s) (--keep)", found.objects.len());
        } else {
            let (removed, mixed) = remove_ours(store.as_ref(), &found).await?;
            println!("  removed {removed} object(s) holding only these records{}", left_note(mixed));
        }
        println!("verified: every hop passed");
        Ok(())
    }
}

fn left_note(mixed: usize) -> String {
    if mixed == 0 { String::new() } else { format!("; {mixed} object(s) also hold other records and were left (flush.size > 1)") }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The HTTP client every request goes out with: the API key on each.
fn http_client(target: &str, api_key: Option<&ApiKey>) -> Result<reqwest::Client, HopFailed> {
    let base = target.trim_end_matches('/');
    if url::Url::parse(base).is_err() || !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(failed(
            Hop::Ingest,
            Cause::Network,
            format!("`{target}` is not an http(s) URL: give the invoke URL provision printed"),
        ));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = api_key {
        key.insert_into(&mut headers);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .map_err(|e| failed(Hop::Ingest, Cause::Network, format!("HTTP client: {e}")))
}

/// Synthetic rounds whose shared `index`/`ind` is each tag.
fn tagged_rounds(tags: &[i64]) -> Vec<contract::Round> {
    let source = pipeline_emulate::generate::SyntheticSource::new(pipeline_emulate::DEFAULT_SEED, 1000);
    tags.iter()
        .enumerate()
        .map(|(n, &tag)| {
            let mut round = source.round(n as u64);
            round.pin.index = tag;
            round.geo.ind = tag;
            round.user.ind = tag;
            round
        })
        .collect()
}

/// Posts each topic's records in one request; returns the slowest
/// request's time. Any refusal is named with its likely cause.
async fn post(client: &reqwest::Client, target: &str, names: &Names, rounds: &[contract::Round]) -> Result<Duration, HopFailed> {
    let base = target.trim_end_matches('/');
    let mut slowest = Duration::ZERO;
    for kind in Kind::ALL {
        let records: Vec<serde_json::Value> = rounds.iter().map(|r| serde_json::json!({ "value": r.value(kind) })).collect();
        let expected = records.len();
        let url = format!("{base}/topics/{}", names.topic(kind));
        let request = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, pipeline_emulate::JSON_V2)
            .json(&serde_json::json!({ "records": records }));
        let nothing_answered = ". Nothing answered: check the URL (region, stage), and that the ingest server runs";
        let (status, body, took) = exchange(request, Hop::Ingest, &format!("POST {url}"), nothing_answered).await?;
        slowest = slowest.max(took);
        if let Some(failure) = refusal(status, &body, &url) {
            return Err(failure);
        }
        let stored = pipeline_emulate::proxy_acknowledged(body.as_bytes());
        if stored != expected {
            return Err(kafka_refusal(&url, stored, expected, &body));
        }
    }
    Ok(slowest)
}

/// Sends one request: its status, body and time. No answer at all is the
/// hop's network failure, named with `what` and `hint`.
async fn exchange(
    request: reqwest::RequestBuilder,
    hop: Hop,
    what: &str,
    hint: &str,
) -> Result<(reqwest::StatusCode, String, Duration), HopFailed> {
    let sent = Instant::now();
    let answer = request.send().await.map_err(|e| failed(hop, Cause::Network, format!("{what}: {e}{hint}")))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    Ok((status, body, sent.elapsed()))
}

/// The start of an answer's body, for an error message.
fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// A top-level member of a JSON answer, if the body is JSON and has it.
fn member(body: &str, name: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(body).ok().and_then(|mut v| v.get_mut(name).map(serde_json::Value::take))
}

/// Puts each stream's records in one PutRecords request through the
/// Kinesis routes; returns the slowest request's time.
async fn put_streams(client: &reqwest::Client, target: &str, names: &Names, rounds: &[contract::Round]) -> Result<Duration, HopFailed> {
    let base = target.trim_end_matches('/');
    let mut slowest = Duration::ZERO;
    for kind in Kind::ALL {
        let records: Vec<serde_json::Value> =
            rounds.iter().map(|r| serde_json::json!({ "data": r.value(kind), "partition-key": pipeline_emulate::PARTITION_KEY })).collect();
        let url = format!("{base}/streams/{}/records", names.stream(kind));
        let request = client.put(&url).json(&serde_json::json!({ "records": records }));
        let (status, body, took) = exchange(request, Hop::Kinesis, &format!("PUT {url}"), "").await?;
        slowest = slowest.max(took);
        let stored = pipeline_emulate::stream_acknowledged(body.as_bytes());
        if stored != records.len() {
            return Err(kinesis_refusal(status, &url, stored, records.len(), &body));
        }
    }
    Ok(slowest)
}

/// Why the Kinesis routes did not store every record: Kinesis's error type
/// (`__type`, passed on by the integration) says whether the streams are
/// missing or the integration's role may not write.
fn kinesis_refusal(status: reqwest::StatusCode, url: &str, stored: usize, sent: usize, body: &str) -> HopFailed {
    if status == reqwest::StatusCode::FORBIDDEN
        && let Some(HopFailed { cause, detail, .. }) = refusal(status, body, url)
    {
        return failed(Hop::Kinesis, cause, detail);
    }
    let short = excerpt(body);
    let seen = format!("PUT {url} answered {status}, {stored} of {sent} record(s) stored: {short}");
    let kind = member(body, "__type").and_then(|t| t.as_str().map(|t| t.rsplit('#').next().unwrap_or(t).to_string())).unwrap_or_default();
    match kind.as_str() {
        "ResourceNotFoundException" => {
            failed(Hop::Kinesis, Cause::NotRunning, format!("{seen}. The streams do not exist: run provision without --skip kinesis"))
        }
        "AccessDeniedException" | "AccessDenied" | "KMSAccessDeniedException" => failed(
            Hop::Kinesis,
            Cause::Permissions,
            format!("{seen}. API Gateway's Kinesis role may not put records (<uid>-kinesis-access-role, docs/SPEC.md's permissions table)"),
        ),
        _ if status.is_server_error() => failed(Hop::Kinesis, Cause::Network, format!("{seen}. The integration could not reach Kinesis")),
        _ => failed(Hop::Kinesis, Cause::Data, seen),
    }
}

/// The likely cause of a REST proxy answer that is not a 200, from its
/// status and who sent it (API Gateway's bodies are `{"message": ...}`,
/// the proxy's `{"error_code": ..., "message": ...}`).
fn refusal(status: reqwest::StatusCode, body: &str, url: &str) -> Option<HopFailed> {
    if status.is_success() {
        return None;
    }
    let short = excerpt(body);
    let seen = format!("POST {url} answered {status}: {short}");
    let proxy_code = member(body, "error_code").and_then(|c| c.as_i64());
    Some(match (status.as_u16(), proxy_code) {
        (401, _) => failed(
            Hop::Ingest,
            Cause::Auth,
            format!(
                "{seen}. The ingest server wants a header it was not sent: on AWS, API Gateway adds it, so send the records \
                 through the invoke URL, not to the machine; locally, pass the key file the server was started with"
            ),
        ),
        (403, _) => failed(
            Hop::Ingest,
            Cause::Auth,
            format!(
                "{seen}. API Gateway refused the API key: pass --api-key-file with the key provision wrote (.local/keys/<uid>-api-key)"
            ),
        ),
        (404, Some(40401)) => failed(
            Hop::Ingest,
            Cause::NotRunning,
            format!(
                "{seen}. The topic does not exist: `pipeline topics create` has not run (on the client machine: journalctl -u pipeline-topics)"
            ),
        ),
        (404, _) => failed(
            Hop::Ingest,
            Cause::Network,
            format!("{seen}. No such route: check the invoke URL's stage and that it ends before /topics"),
        ),
        (429, _) => failed(Hop::Ingest, Cause::Permissions, format!("{seen}. The usage plan's throttle or quota refused the request")),
        (502 | 504, None) => failed(
            Hop::Ingest,
            Cause::Network,
            format!(
                "{seen}. API Gateway could not reach the ingest server: is pipeline-ingest running on the client machine, \
                 and is its port open to API Gateway (security group)?"
            ),
        ),
        (503, Some(_)) => {
            failed(Hop::Ingest, Cause::NotRunning, format!("{seen}. The ingest server is overloaded or draining: run again shortly"))
        }
        (_, Some(_)) => kafka_refusal(url, 0, 0, body),
        _ => failed(Hop::Ingest, Cause::Network, seen),
    })
}

/// The proxy answered but did not store every record: its Kafka producer
/// was refused (an authorization error names the role's policy) or the
/// brokers are away.
fn kafka_refusal(url: &str, stored: usize, sent: usize, body: &str) -> HopFailed {
    let short = excerpt(body);
    let cause = if body.contains("AUTHORIZATION") || body.contains("uthoriz") { Cause::Permissions } else { Cause::NotRunning };
    let hint = match cause {
        Cause::Permissions => "the EC2 role's policy does not allow the write (see docs/SPEC.md, the permissions table)",
        _ => "the ingest server could not write to Kafka: is the cluster up? (journalctl -u pipeline-ingest)",
    };
    let counted = if sent > 0 { format!("{stored} of {sent} record(s) stored; ") } else { String::new() };
    failed(Hop::Ingest, cause, format!("POST {url}: {counted}{short}. Likely: {hint}"))
}

/// Lists the topics' objects written since the run started and reads each
/// new one once, until every tag of every kind is found or `timeout`.
async fn wait_for_sink(
    store: &dyn ObjectStore,
    sink: &Location,
    names: &Names,
    tags: &[i64],
    started: SystemTime,
    timeout: Duration,
) -> Result<Found, HopFailed> {
    let wanted: BTreeSet<i64> = tags.iter().copied().collect();
    // Objects from before the run cannot hold its records; a minute of
    // slack covers a clock that differs from the store's.
    let since = started - Duration::from_secs(60);
    let mut found = Found::default();
    let mut read: BTreeSet<Path> = BTreeSet::new();
    let deadline = Instant::now() + timeout;
    let mut next_note = Instant::now() + Duration::from_secs(10);
    loop {
        for kind in Kind::ALL {
            let prefix = Path::from(sink.layout().topic_dir(&names.topic(kind)));
            let listed: Vec<object_store::ObjectMeta> =
                store.list(Some(&prefix)).try_collect().await.map_err(|e| store_failure(sink, &e))?;
            for meta in listed {
                if SystemTime::from(meta.last_modified) < since || read.contains(&meta.location) {
                    continue;
                }
                let data = store
                    .get(&meta.location)
                    .await
                    .map_err(|e| store_failure(sink, &e))?
                    .bytes()
                    .await
                    .map_err(|e| store_failure(sink, &e))?;
                read.insert(meta.location.clone());
                let mut ours = 0;
                let mut lines = 0;
                for line in String::from_utf8_lossy(&data).lines().filter(|l| !l.trim().is_empty()) {
                    lines += 1;
                    let Some(tag) = serde_json::from_str::<Tag>(line).ok().and_then(|t| t.ind) else { continue };
                    if wanted.contains(&tag) {
                        ours += 1;
                        found.lines.entry(kind).or_default().push(line.to_string());
                        found.tags.entry(kind).or_default().insert(tag);
                    }
                }
                if ours > 0 {
                    found.objects.insert(meta.location, ours == lines);
                }
            }
        }
        if found.count() == tags.len() * Kind::ALL.len() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            let per_kind: Vec<String> =
                Kind::ALL.iter().map(|k| format!("{} {}/{}", k, found.tags.get(k).map_or(0, BTreeSet::len), tags.len())).collect();
            return Err(failed(
                Hop::Sink,
                Cause::NotRunning,
                format!(
                    "after {}s the sink had written {} ({} under {sink}): is pipeline-sink running and caught up? \
                     (`pipeline status` shows its group's lag; on the client machine: journalctl -u pipeline-sink)",
                    timeout.as_secs(),
                    per_kind.join(", "),
                    if found.objects.is_empty() { "no new object".to_string() } else { format!("{} object(s)", found.objects.len()) }
                ),
            ));
        }
        if Instant::now() >= next_note {
            eprintln!("  waiting for the sink: {} of {} record(s) so far", found.count(), tags.len() * Kind::ALL.len());
            next_note += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads the tagged `ind`s of each kind's Delta table until every tag is
/// there or `timeout`.
#[cfg(feature = "stream")]
async fn wait_for_delta(
    delta: &Location,
    aws: &aws_setup::AwsTarget,
    names: &Names,
    tags: &[i64],
    timeout: Duration,
) -> Result<(), HopFailed> {
    let wanted: BTreeSet<i64> = tags.iter().copied().collect();
    let s3_root = match delta {
        Location::S3 { .. } => Some(
            pipeline_storage::open(delta, aws)
                .await
                .map_err(|e| failed(Hop::Delta, Cause::Permissions, format!("opening {delta}: {e}")))?,
        ),
        Location::Local { .. } => None,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for kind in Kind::ALL {
            let found = pipeline_stream::inds_from(delta, s3_root.as_ref(), names, kind, TAG_FLOOR)
                .await
                .map_err(|e| failed(Hop::Delta, Cause::Permissions, format!("reading {}: {e}", names.delta_table(kind))))?;
            let have = wanted.intersection(&found).count();
            if have < wanted.len() {
                missing.push(format!("{} {have}/{}", names.delta_table(kind), wanted.len()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(failed(
                Hop::Delta,
                Cause::NotRunning,
                format!(
                    "after {}s the Delta tables under {delta} held {}: is pipeline-stream running? (on the client machine: \
                     journalctl -u pipeline-stream; `pipeline status --delta {delta}` shows each table's version)",
                    timeout.as_secs(),
                    missing.join(", ")
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(not(feature = "stream"))]
async fn wait_for_delta(_: &Location, _: &aws_setup::AwsTarget, _: &Names, _: &[i64], _: Duration) -> Result<(), HopFailed> {
    Err(failed(
        Hop::Delta,
        Cause::Data,
        "this pipeline binary is built without the stream worker (cargo feature `stream`), so it cannot read Delta tables: \
         run `pipeline verify --delta` from a full build (cargo build -p pipeline)",
    ))
}

fn store_failure(sink: &Location, e: &object_store::Error) -> HopFailed {
    let (cause, hint) = match e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            (Cause::Permissions, "your credentials may not read the sink bucket (s3:ListBucket, s3:GetObject)")
        }
        object_store::Error::NotFound { .. } => (Cause::NotRunning, "the sink bucket does not exist: has provision run for this uid?"),
        _ => (Cause::Network, "check the region and credentials (AWS_PROFILE, AWS_REGION)"),
    };
    failed(Hop::Sink, cause, format!("reading {sink}: {e}. {hint}"))
}

/// Runs the batch job's cleaning on the records the sink wrote, laid out
/// as the sink lays them out; every record must come out as one row.
async fn clean(found: &Found, names: &Names, per_kind: usize) -> Result<u64, HopFailed> {
    let dir = tempfile::tempdir().map_err(|e| failed(Hop::Batch, Cause::Data, format!("a temporary directory: {e}")))?;
    for kind in Kind::ALL {
        let key = contract::layout::object_key(&names.topic(kind), 0, 0);
        let path = dir.path().join(&key);
        let lines = found.lines.get(&kind).map(|l| l.join("\n") + "\n").unwrap_or_default();
        std::fs::create_dir_all(path.parent().expect("an object key has a folder"))
            .and_then(|()| std::fs::write(&path, lines))
            .map_err(|e| failed(Hop::Batch, Cause::Data, format!("writing {}: {e}", path.display())))?;
    }
    let config = pipeline_batch::BatchConfig {
        input: Location::parse(&dir.path().display().to_string()).map_err(|e| failed(Hop::Batch, Cause::Data, e.to_string()))?,
        names: names.clone(),
        aws: aws_setup::AwsTarget::default(),
        output: None,
        strict: true,
    };
    let output = pipeline_batch::run(&config).await.map_err(|e| failed(Hop::Batch, Cause::Data, e.to_string()))?;
    let mut rows = 0;
    for kind in Kind::ALL {
        let summary = output.summary.kind(kind);
        if summary.rows as usize != per_kind {
            return Err(failed(
                Hop::Batch,
                Cause::Data,
                format!("{kind}: {} record(s) went in, {} row(s) came out of cleaning", per_kind, summary.rows),
            ));
        }
        rows += summary.rows;
    }
    Ok(rows)
}

/// Deletes the objects whose every line is one of the run's records;
/// returns how many were removed and how many were left for holding
/// others' records too.
async fn remove_ours(store: &dyn ObjectStore, found: &Found) -> Result<(usize, usize)> {
    let mut removed = 0;
    for (path, only_ours) in &found.objects {
        if *only_ours {
            store.delete(path).await.with_context(|| format!("removing {path}"))?;
            removed += 1;
        }
    }
    Ok((removed, found.objects.len() - removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(status: u16, body: &str) -> Option<(Hop, Cause)> {
        refusal(reqwest::StatusCode::from_u16(status).unwrap(), body, "https://x/topics/t").map(|f| (f.hop, f.cause))
    }

    /// API Gateway's answers and the proxy's are told apart by their
    /// bodies, and each gets the cause a user would act on.
    #[test]
    fn each_refusal_is_given_its_likely_cause() {
        assert_eq!(cause(200, "{}"), None);
        assert_eq!(cause(403, r#"{"message":"Forbidden"}"#), Some((Hop::Ingest, Cause::Auth)));
        assert_eq!(cause(401, r#"{"error_code":40101,"message":"Unauthorized"}"#), Some((Hop::Ingest, Cause::Auth)));
        assert_eq!(cause(404, r#"{"error_code":40401,"message":"Topic not found"}"#), Some((Hop::Ingest, Cause::NotRunning)));
        assert_eq!(cause(404, r#"{"message":"Not Found"}"#), Some((Hop::Ingest, Cause::Network)));
        assert_eq!(cause(502, r#"{"message": "Internal server error"}"#), Some((Hop::Ingest, Cause::Network)));
        assert_eq!(cause(504, r#"{"message": "Endpoint request timed out"}"#), Some((Hop::Ingest, Cause::Network)));
        assert_eq!(
            cause(500, r#"{"error_code":50002,"message":"Broker: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED)"}"#),
            Some((Hop::Ingest, Cause::Permissions))
        );
        assert_eq!(cause(500, r#"{"error_code":50002,"message":"Local: Message timed out"}"#), Some((Hop::Ingest, Cause::NotRunning)));
    }

    #[test]
    fn kinesis_refusals_name_missing_streams_and_the_roles_permission() {
        let cause = |status: u16, body: &str| {
            let f = kinesis_refusal(reqwest::StatusCode::from_u16(status).unwrap(), "https://x/streams/s/records", 0, 3, body);
            (f.hop, f.cause)
        };
        assert_eq!(
            cause(400, r#"{"__type":"ResourceNotFoundException","message":"Stream s not found"}"#),
            (Hop::Kinesis, Cause::NotRunning)
        );
        assert_eq!(cause(400, r#"{"__type":"com.amazon.coral.service#AccessDeniedException"}"#), (Hop::Kinesis, Cause::Permissions));
        assert_eq!(cause(403, r#"{"message":"Forbidden"}"#), (Hop::Kinesis, Cause::Auth));
        assert_eq!(cause(500, r#"{"message":"Internal server error"}"#), (Hop::Kinesis, Cause::Network));
    }

    #[test]
    fn tags_are_read_from_pins_index_and_the_others_ind() {
        let tag = |line: &str| serde_json::from_str::<Tag>(line).ok().and_then(|t| t.ind);
        assert_eq!(tag(r#"{"index": 9000000000001, "unique_id": "x"}"#), Some(9_000_000_000_001));
        assert_eq!(tag(r#"{"ind": 7, "country": "x"}"#), Some(7));
        assert_eq!(tag(r#"{"country": "x"}"#), None);
    }
}

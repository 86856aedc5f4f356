//! `pipeline emulate`: the user_post_emulation equivalent. Each round picks
//! a random row offset, takes the row at that offset from each of the three
//! tables and sends the three records: in batch mode to `<uid>.pin|geo|user`
//! through the REST Proxy API (SPEC 3.1), in stream mode to
//! `streaming-<uid>-pin|geo|user` through API Gateway's Kinesis routes
//! (SPEC 3.2); one record per request like the original, or `batch` rounds
//! per request.

pub mod cli;
pub mod generate;
pub mod mysql_source;

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::generate::{SyntheticSource, random_offsets};
use crate::mysql_source::{MysqlSource, MysqlSourceError};
use contract::{Kind, Names, RecordRef, Round};

/// Where the rows come from: the seeded synthetic tables, or the original
/// MySQL/MariaDB database.
#[derive(Debug, Clone)]
pub enum RowSource {
    Synthetic(SyntheticSource),
    Mysql(MysqlSource),
}

impl RowSource {
    fn rows(&self) -> u64 {
        match self {
            RowSource::Synthetic(s) => s.rows(),
            RowSource::Mysql(m) => m.rows(),
        }
    }

    async fn round(&self, offset: u64) -> Result<Round, MysqlSourceError> {
        match self {
            RowSource::Synthetic(s) => Ok(s.round(offset)),
            RowSource::Mysql(m) => m.round(offset).await,
        }
    }
}

/// Content type the original emulator sends.
pub const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// Partition key of the original stream emulator.
pub const PARTITION_KEY: &str = "partition-1";

/// Which half of the pipeline the records go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// REST Proxy: `POST /topics/<topic>`.
    #[default]
    Batch,
    /// API Gateway Kinesis routes: `PUT /streams/<stream>/record(s)`.
    Stream,
}

/// One request of a run: where it goes, what it carries, and how to count
/// the records its answer acknowledges.
struct Request {
    url: String,
    method: reqwest::Method,
    content_type: &'static str,
    /// Serialised once, straight from the records (no JSON tree), and
    /// reused by retries.
    body: bytes::Bytes,
    mode: Mode,
}

/// A REST Proxy record (`{"value": ...}`).
#[derive(Serialize)]
struct ProxyRecord<'a> {
    value: RecordRef<'a>,
}

/// A record of the Kinesis `records` route.
#[derive(Serialize)]
struct StreamRecord<'a> {
    data: RecordRef<'a>,
    #[serde(rename = "partition-key")]
    partition_key: &'static str,
}

#[derive(Serialize)]
struct Records<T> {
    records: Vec<T>,
}

/// The part of a REST Proxy answer that says which records landed.
#[derive(Deserialize)]
struct ProxyAnswer {
    #[serde(default)]
    offsets: Vec<ProxyOffset>,
}

#[derive(Deserialize)]
struct ProxyOffset {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    error_code: Option<serde::de::IgnoredAny>,
}

/// Records a REST Proxy answer body says were stored (offset given, no
/// error code); 0 for a body that is not such an answer.
pub fn proxy_acknowledged(answer: &[u8]) -> usize {
    serde_json::from_slice::<ProxyAnswer>(answer)
        .map_or(0, |a| a.offsets.iter().filter(|o| o.error_code.is_none() && o.offset.is_some()).count())
}

/// Records a Kinesis route's answer says were stored: PutRecord's
/// `SequenceNumber`, or PutRecords' entries with one and no `ErrorCode`.
pub fn stream_acknowledged(answer: &[u8]) -> usize {
    let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    if answer["SequenceNumber"].is_string() {
        1
    } else {
        answer["Records"].as_array().map_or(0, |r| r.iter().filter(|e| e["SequenceNumber"].is_string() && e["ErrorCode"].is_null()).count())
    }
}

fn to_body<T: Serialize>(body: &T) -> bytes::Bytes {
    serde_json::to_vec(body).expect("records serialise").into()
}

impl Request {
    fn new(mode: Mode, base: &str, names: &Names, kind: Kind, rounds: &[Round]) -> Self {
        match mode {
            Mode::Batch => Self {
                url: format!("{base}/topics/{}", names.topic(kind)),
                method: reqwest::Method::POST,
                content_type: JSON_V2,
                body: to_body(&Records { records: rounds.iter().map(|r| ProxyRecord { value: r.record(kind) }).collect() }),
                mode,
            },
            Mode::Stream => {
                let stream = names.stream(kind);
                if let [round] = rounds {
                    // The original's shape; the gateway ignores StreamName in the body.
                    let body = json!({ "StreamName": stream, "Data": round.value(kind), "PartitionKey": PARTITION_KEY });
                    Self {
                        url: format!("{base}/streams/{stream}/record"),
                        method: reqwest::Method::PUT,
                        content_type: "application/json",
                        body: to_body(&body),
                        mode,
                    }
                } else {
                    let records = rounds.iter().map(|r| StreamRecord { data: r.record(kind), partition_key: PARTITION_KEY }).collect();
                    Self {
                        url: format!("{base}/streams/{stream}/records"),
                        method: reqwest::Method::PUT,
                        content_type: "application/json",
                        body: to_body(&Records { records }),
                        mode,
                    }
                }
            }
        }
    }

    /// Records a 200 answer acknowledges.
    fn acked(&self, answer: &[u8]) -> u64 {
        let count = match self.mode {
            Mode::Batch => proxy_acknowledged(answer),
            Mode::Stream => stream_acknowledged(answer),
        };
        count as u64
    }
}

/// Where the records go unless configured otherwise: the local ingest server.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:8082";
/// Requests in flight at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Retries of a retriable answer unless configured otherwise.
pub const DEFAULT_RETRIES: u32 = 3;
/// Seed of the synthetic tables (and, plus one, of the row offsets drawn).
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Clone)]
pub struct EmulateConfig {
    /// REST proxy base URL (local ingest server or API Gateway invoke URL).
    pub target: String,
    pub mode: Mode,
    pub names: Names,
    pub source: RowSource,
    /// Rounds to run (each round is one record per topic); None = until `duration`.
    pub rounds: Option<u64>,
    pub duration: Option<Duration>,
    /// Records per second over all topics; None = as fast as allowed.
    pub rate: Option<f64>,
    /// Rounds per request (1 = one record per POST, as the original).
    pub batch: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of a request answered with a retriable error.
    pub retries: u32,
    /// Seed of the random row offsets (rows repeat, as in the original).
    pub offset_seed: u64,
    pub progress: bool,
    /// The deployment's API Gateway key, sent with every request.
    pub api_key: Option<ApiKey>,
}

/// An API Gateway key, sent as `x-api-key` (templates::apigateway::API_KEY_HEADER).
/// Its `Debug` and the request's logs never show the value.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Adds the key to `headers` as `x-api-key`, marked sensitive so that
    /// no log shows it.
    pub fn insert_into(&self, headers: &mut reqwest::header::HeaderMap) {
        let mut value = reqwest::header::HeaderValue::from_str(&self.0).expect("checked by ApiKey::new");
        value.set_sensitive(true);
        headers.insert(templates::apigateway::API_KEY_HEADER, value);
    }

    pub fn new(value: impl Into<String>) -> Result<Self, EmulateError> {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() || reqwest::header::HeaderValue::from_str(trimmed).is_err() {
            return Err(EmulateError::BadApiKey);
        }
        Ok(Self(trimmed.to_string()))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error("`{0}` is not an http(s) URL of a REST proxy (e.g. http://127.0.0.1:8082 or an API Gateway invoke URL)")]
    BadTarget(String),
    #[error("give --count or --duration: an emulation must end on its own")]
    Unbounded,
    #[error("the API key is empty or holds characters a header cannot carry: check the key file or PIPELINE_API_KEY")]
    BadApiKey,
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Reading the source failed; what was sent before is in `summary`.
    #[error("{source}\n(stopped after {}; requests in flight were finished)", .summary.sent_line())]
    Source { source: MysqlSourceError, summary: Box<Summary> },
}

/// What happened to the records of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub requests: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// The first few distinct failure reasons, for the report.
    pub errors: Vec<String>,
}

impl Summary {
    pub fn records_per_second(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn sent_line(&self) -> String {
        format!("{} records sent, {} acknowledged, {} failed", self.sent, self.acked, self.failed)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sent {} records in {} requests over {:.1}s: {} acknowledged, {} failed ({:.0} records/s)",
            self.sent,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.acked,
            self.failed,
            self.records_per_second()
        )?;
        write!(f, "request latency p50 {:.1} ms, p99 {:.1} ms", ms(self.p50), ms(self.p99))?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Outcome {
    records: u64,
    acked: u64,
    latency: Duration,
    error: Option<String>,
}

/// Run an emulation against the target and report what was acknowledged.
pub async fn run(config: EmulateConfig) -> Result<Summary, EmulateError> {
    let base = config.target.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) || url::Url::parse(&base).is_err() {
        return Err(EmulateError::BadTarget(config.target.clone()));
    }
    if config.rounds.is_none() && config.duration.is_none() {
        return Err(EmulateError::Unbounded);
    }
    let batch = config.batch.max(1);
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = &config.api_key {
        key.insert_into(&mut headers);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).default_headers(headers).build()?;
    let bar = if config.progress {
        let bar = match config.rounds {
            Some(n) => ProgressBar::new(n * 3),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records {per_sec} {msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut offsets = random_offsets(config.offset_seed, config.source.rows());
    let mut source_error = None;
    // One request carries `batch` records; pace requests to meet the rate.
    let request_interval = config.rate.map(|r| Duration::from_secs_f64(batch as f64 / r.max(1e-6)));
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let mut rounds_done = 0u64;
    let mut next_send = Instant::now();
    let mut outcomes = Vec::new();

    'rounds: loop {
        let remaining = config.rounds.map(|n| n - rounds_done);
        if remaining == Some(0) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let take = remaining.map_or(batch as u64, |r| r.min(batch as u64)) as usize;
        let mut rounds: Vec<Round> = Vec::with_capacity(take);
        for offset in offsets.by_ref().take(take) {
            match config.source.round(offset).await {
                Ok(round) => rounds.push(round),
                Err(e) => {
                    source_error = Some(e);
                    break 'rounds;
                }
            }
        }
        rounds_done += take as u64;
        for kind in Kind::ALL {
            if let Some(interval) = request_interval {
                let now = Instant::now();
                if next_send > now {
                    tokio::time::sleep(next_send - now).await;
                }
                next_send = next_send.max(now) + interval;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break 'rounds;
                }
            }
            let request = Request::new(config.mode, &base, &config.names, kind, &rounds);
            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
            let client = client.clone();
            let retries = config.retries;
            tasks.spawn(async move {
                let out = send(&client, &request, take as u64, retries).await;
                drop(permit);
                out
            });
            while let Some(done) = tasks.try_join_next() {
                let out = done.expect("request task does not panic");
                bar.inc(out.records);
                outcomes.push(out);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        let out = done.expect("request task does not panic");
        bar.inc(out.records);
        outcomes.push(out);
    }
    bar.finish_and_clear();

    let mut summary = Summary { elapsed: started.elapsed(), ..Default::default() };
    let mut latencies: Vec<Duration> = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        summary.sent += o.records;
        summary.acked += o.acked;
        summary.failed += o.records - o.acked;
        summary.requests += 1;
        latencies.push(o.latency);
        if let Some(e) = o.error
            && summary.errors.len() < 5
            && !summary.errors.contains(&e)
        {
            summary.errors.push(e);
        }
    }
    latencies.sort_unstable();
    summary.p50 = percentile(&latencies, 0.50);
    summary.p99 = percentile(&latencies, 0.99);
    match source_error {
        Some(source) => Err(EmulateError::Source { source, summary: Box::new(summary) }),
        None => Ok(summary),
    }
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

async fn send(client: &reqwest::Client, request: &Request, records: u64, retries: u32) -> Outcome {
    let started = Instant::now();
    let url = &request.url;
    let mut attempt = 0;
    loop {
        let res = client
            .request(request.method.clone(), url)
            .header("Content-Type", request.content_type)
            .body(request.body.clone())
            .send()
            .await;
        let (retriable, error) = match res {
            Ok(resp) if resp.status().is_success() => {
                let acked = resp.bytes().await.map_or(0, |b| request.acked(&b));
                let error = (acked != records).then(|| format!("200 answer acknowledged {acked} of {records} records"));
                return Outcome { records, acked, latency: started.elapsed(), error };
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                // API Gateway answers 403 without its key; our ingest 401 without its header.
                let hint = if matches!(status.as_u16(), 401 | 403) {
                    " (does the target need the deployment's API key? pass --api-key-file, or set PIPELINE_API_KEY)"
                } else {
                    ""
                };
                (status.as_u16() == 503 || status.as_u16() == 429, format!("{status}: {}{hint}", text.trim()))
            }
            Err(e) => (e.is_connect() || e.is_timeout(), format!("{url}: {e}")),
        };
        if retriable && attempt < retries {
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            continue;
        }
        return Outcome { records, acked: 0, latency: started.elapsed(), error: Some(error) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}

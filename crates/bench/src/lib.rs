//! Measurements behind `cargo xtask bench`: each figure is taken next to a
//! peer doing the same work against the same service, in the same process,
//! so the ratio means something on any machine. Kept out of the product
//! crates: `pipeline` ships no benchmark code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use contract::{Kind, Names};
use pipeline_emulate as emulate;
use pipeline_emulate::generate::{ORIGINAL_TABLE_ROWS, SyntheticSource};
use pipeline_ingest::{self as ingest, IngestConfig};
use pipeline_kafka as kafka;
use pipeline_sink::{self as sink, SinkConfig, StopWhen};
use pipeline_storage::{self as storage, Location};

/// One benchmark row: our rate and the peer's, medians over `runs`.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub bench: String,
    pub case: String,
    pub unit: String,
    pub ours: f64,
    pub peer_name: String,
    pub peer: f64,
    pub runs: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Step(String),
}

fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError::Step(format!("{what}: {e}"))
}

/// The bucket of an `s3://` location, created if missing (a local emulator's).
async fn ensure_bucket(url: &str, aws: &aws_setup::AwsTarget) -> Result<(), BenchError> {
    let location = Location::parse(url).map_err(step("location"))?;
    storage::ensure_bucket(&location, aws).await.map_err(step("creating the bucket"))
}

/// A bucket of one run's own, created: `<bucket>-<uid>` for an `s3://`
/// URL (any other location is used as it is). moto's LIST walks every key
/// of the bucket (its `list_objects` filters all of `bucket.keys` by the
/// prefix), so in a bucket shared with the earlier cases' tens of thousands
/// of objects each of the sink's per-partition listings paid for all of
/// them, which S3 does not; the raw PUTs it is compared with list nothing.
async fn run_bucket(bucket_url: &str, names: &Names, aws: &aws_setup::AwsTarget) -> Result<String, BenchError> {
    let url = match bucket_url.strip_prefix("s3://") {
        Some(bucket) => format!("s3://{}-{}", bucket.trim_end_matches('/'), names.uid()),
        None => bucket_url.to_string(),
    };
    ensure_bucket(&url, aws).await?;
    Ok(url)
}

/// Remove every object of a run's bucket once it is measured. moto keeps
/// objects in memory: after twenty sink runs it held 1.9 GB, and the peer's
/// PUT rate fell from 160k to 60k-130k records/s between runs.
async fn empty_run_bucket(bucket_url: &str, aws: &aws_setup::AwsTarget) -> Result<(), BenchError> {
    let location = Location::parse(bucket_url).map_err(step("location"))?;
    if !matches!(location, Location::S3 { .. }) {
        return Ok(());
    }
    // An S3 store is the whole bucket; the location's prefix is not in it.
    let store = storage::open(&location, aws).await.map_err(step("opening the store"))?;
    let keys = store.list(None).map_ok(|meta| meta.location).boxed();
    store.delete_stream(keys).try_collect::<Vec<_>>().await.map_err(step("emptying the run's bucket"))?;
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn fresh_names(prefix: &str) -> Names {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Names::new(format!("{prefix}-{}", &id[..10])).expect("valid id")
}

/// The records a run sends: `rounds` emulator rounds, as (topic, JSON bytes).
fn records(names: &Names, rounds: u64) -> Vec<(String, Vec<u8>)> {
    let source = SyntheticSource::new(42, ORIGINAL_TABLE_ROWS);
    source
        .random_rounds(43)
        .take(rounds as usize)
        .flat_map(|r| Kind::ALL.map(|k| (names.topic(k), serde_json::to_vec(&r.value(k)).expect("serialise"))))
        .collect()
}

/// Produce records straight into Kafka with the same producer settings the
/// ingest server uses (idempotent, acks=all), many in flight. Records/s.
///
/// `warm_up` first sends one extra record to each topic, untimed, so the
/// rate excludes the producer id and metadata round trips, as it does for
/// the long-running ingest server it is compared with; left out where the
/// topics must hold exactly `records`.
pub async fn produce_direct(bootstrap: &str, records: &[(String, Vec<u8>)], warm_up: bool) -> Result<f64, BenchError> {
    let producer: FutureProducer = kafka::reliable_producer_config(bootstrap, &kafka::KafkaAuth::none(), &[], Duration::from_secs(60))
        .create()
        .map_err(step("creating the producer"))?;
    if warm_up {
        let topics: std::collections::BTreeSet<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
        for topic in topics {
            producer
                .send(FutureRecord::<(), _>::to(topic).payload("{}"), Duration::from_secs(60))
                .await
                .map_err(|(e, _)| BenchError::Step(format!("warming up the producer: {e}")))?;
        }
    }
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for (topic, value) in records {
        in_flight.push(producer.send(FutureRecord::<(), _>::to(topic).payload(value), Duration::from_secs(60)));
        // Bounded like a client would be; the queue limit is far above this.
        while in_flight.len() >= IN_FLIGHT_RECORDS {
            in_flight.next().await.expect("non-empty").map_err(|(e, _)| BenchError::Step(format!("producing: {e}")))?;
        }
    }
    while let Some(r) = in_flight.next().await {
        r.map_err(|(e, _)| BenchError::Step(format!("producing: {e}")))?;
    }
    Ok(records.len() as f64 / started.elapsed().as_secs_f64())
}

/// Records per run of the one-record-per-POST ingest case.
pub const ONE_PER_POST_RECORDS: u64 = 30_000;

/// Records the direct producer keeps in flight. The REST clients of the
/// ingest benchmark keep as many as requests of `batch` records allow, at
/// most [`MAX_CONNECTIONS`] at once (6,400 at 100 per POST): never more
/// acknowledgements to wait on than the producer has. (100 connections,
/// 10,000 records, measured no better on 2 cores: 0.57x vs 0.76x at 64.)
const IN_FLIGHT_RECORDS: usize = 10_000;
const MAX_CONNECTIONS: usize = 64;

/// POST records to the ingest server, `batch` per request of one topic,
/// `connections` requests in flight; every record must be acknowledged. Records/s from
/// the first request to the last answer; the bodies are built before, and
/// one untimed record per topic warms the server up like the direct
/// producer is warmed up.
async fn post_records(base: &str, records: &[(String, Vec<u8>)], batch: usize, connections: usize) -> Result<f64, BenchError> {
    let body = |values: &[&[u8]]| {
        let mut body = b"{\"records\":[".to_vec();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(b"{\"value\":");
            body.extend_from_slice(v);
            body.push(b'}');
        }
        body.extend_from_slice(b"]}");
        bytes::Bytes::from(body)
    };
    let mut by_topic: std::collections::BTreeMap<&str, Vec<&[u8]>> = Default::default();
    for (topic, value) in records {
        by_topic.entry(topic.as_str()).or_default().push(value);
    }
    // Requests take the topics in turn, as the emulator sends them.
    let per_topic: Vec<(String, Vec<(usize, bytes::Bytes)>)> = by_topic
        .iter()
        .map(|(topic, values)| (format!("{base}/topics/{topic}"), values.chunks(batch).map(|c| (c.len(), body(c))).collect()))
        .collect();
    let mut requests = Vec::new();
    let longest = per_topic.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (url, bodies) in &per_topic {
            if let Some((count, body)) = bodies.get(i) {
                requests.push((url.clone(), *count, body.clone()));
            }
        }
    }
    let client = reqwest::Client::new();
    let post = |url: String, count: usize, body: bytes::Bytes| {
        let client = client.clone();
        async move {
            let resp = client.post(&url).header("Content-Type", emulate::JSON_V2).body(body).send().await.map_err(step("POST"))?;
            let status = resp.status();
            let answer = resp.bytes().await.map_err(step("POST answer"))?;
            let acked = emulate::proxy_acknowledged(&answer);
            if !status.is_success() || acked != count {
                return Err(BenchError::Step(format!("{url} answered {status}: {}", String::from_utf8_lossy(&answer))));
            }
            Ok(count)
        }
    };
    for (url, _) in &per_topic {
        post(url.clone(), 1, body(&[b"{}"])).await?;
    }
    let started = Instant::now();
    let sent: usize = futures::stream::iter(requests)
        .map(|(url, count, body)| post(url, count, body))
        .buffer_unordered(connections)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum::<Result<usize, _>>()?;
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}

/// Records/s through the ingest server (REST Proxy API, 1 and 100 records
/// per POST) next to the direct producer, over `records` records per run
/// (at most [`ONE_PER_POST_RECORDS`] with one record per POST, which is two
/// orders of magnitude slower).
///
/// Both sides start from the same serialised records in memory: ours are
/// wrapped into REST Proxy bodies before the clock starts, so the figure
/// is the server's and not the emulator's record generation, and ours never
/// keeps more records in flight than the producer ([`IN_FLIGHT_RECORDS`]).
/// Runs alternate which side goes first, since the broker (on the same
/// cores) is the noisiest part.
pub async fn ingest(bootstrap: &str, records_per_run: u64, runs: usize) -> Result<Vec<Measurement>, BenchError> {
    let server =
        ingest::start(IngestConfig { bootstrap: bootstrap.to_string(), listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() })
            .await
            .map_err(step("starting the ingest server"))?;
    let base = format!("http://{}", server.local_addr);
    let mut out = Vec::new();
    // As many records in flight as the direct producer; and, to show what
    // a client with few connections sees (each request waits for its
    // slowest acknowledgement, linger included), 100 per POST over 16.
    let cases = [1usize, 100].map(|batch| (batch, (IN_FLIGHT_RECORDS / batch).clamp(1, MAX_CONNECTIONS)));
    for (batch, connections) in cases.into_iter().chain([(100, 16)]) {
        let per_run = if batch == 1 { records_per_run.min(ONE_PER_POST_RECORDS) } else { records_per_run };
        let rounds = (per_run / 3).max(1);
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let names = fresh_names("bench");
            let peer_names = fresh_names("bench");
            for n in [&names, &peer_names] {
                kafka::ensure_topics(bootstrap, &kafka::KafkaAuth::none(), &[], &n.topics(), 3, 1)
                    .await
                    .map_err(step("creating topics"))?;
            }
            // The same records, generated once; the peer's go to its own topics.
            let our_records = records(&names, rounds);
            let peer_records: Vec<(String, Vec<u8>)> = our_records
                .iter()
                .map(|(topic, value)| (peer_names.topic(names.kind_of_topic(topic).expect("a topic of these names")), value.clone()))
                .collect();
            if run % 2 == 0 {
                ours.push(post_records(&base, &our_records, batch, connections).await?);
                peer.push(produce_direct(bootstrap, &peer_records, true).await?);
            } else {
                peer.push(produce_direct(bootstrap, &peer_records, true).await?);
                ours.push(post_records(&base, &our_records, batch, connections).await?);
            }
            let topics: Vec<String> = names.topics().into_iter().chain(peer_names.topics()).collect();
            let _ = kafka::delete_topics(bootstrap, &topics.iter().map(String::as_str).collect::<Vec<_>>()).await;
        }
        out.push(Measurement {
            bench: "ingest".into(),
            case: format!("{batch} record(s) per POST, {connections} connections"),
            unit: "records/s".into(),
            ours: median(ours),
            peer_name: "direct librdkafka producer".into(),
            peer: median(peer),
            runs,
        });
    }
    out.push(ingest_under_wrk(bootstrap, &base, runs).await?);
    server.stop().await.map_err(step("stopping the ingest server"))?;
    Ok(out)
}

/// Keep-alive connections wrk drives in the one-record-per-POST case.
const WRK_CONNECTIONS: usize = 64;
/// How long each wrk run lasts.
const WRK_SECONDS: u64 = 10;

/// One record per POST, as the original emulator sends them, over
/// keep-alive connections driven by wrk: an HTTP load generator in its own
/// process (written in C), so the figure is the server's and not an HTTP
/// client's in our process. Every request wrk counts must be a stored
/// record: the topic's end offsets are checked against wrk's 2xx count.
async fn ingest_under_wrk(bootstrap: &str, base: &str, runs: usize) -> Result<Measurement, BenchError> {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    let dir = tempfile::tempdir().map_err(step("creating a temporary directory"))?;
    for _ in 0..runs {
        let names = fresh_names("bench");
        let topic = names.topic(Kind::Pin);
        kafka::ensure_topics(bootstrap, &kafka::KafkaAuth::none(), &[], std::slice::from_ref(&topic), 3, 1)
            .await
            .map_err(step("creating topics"))?;
        let value = &records(&names, 1)[0].1;
        let body = format!("{{\"records\":[{{\"value\":{}}}]}}", String::from_utf8_lossy(value));
        let script = dir.path().join("post.lua");
        // A Lua long string holds the JSON as it is.
        let lua = format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"{}\"\nwrk.body = [==[{body}]==]\n", emulate::JSON_V2);
        std::fs::write(&script, lua).map_err(step("writing the wrk script"))?;
        let url = format!("{base}/topics/{topic}");
        let output = tokio::process::Command::new("wrk")
            .args(["-t", "2", "-c", &WRK_CONNECTIONS.to_string(), "-d", &format!("{WRK_SECONDS}s"), "-s"])
            .arg(&script)
            .arg(&url)
            .output()
            .await
            .map_err(|e| BenchError::Step(format!("running wrk ({e}); install it: apt-get install wrk (cargo xtask bench does)")))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(BenchError::Step(format!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr))));
        }
        let (requests, seconds, failed) =
            parse_wrk(&text).ok_or_else(|| BenchError::Step(format!("cannot read wrk's summary:\n{text}")))?;
        if failed > 0 {
            return Err(BenchError::Step(format!("{failed} of {requests} requests were not answered 2xx under wrk:\n{text}")));
        }
        let stored = end_offsets_sum(bootstrap, &topic, 3).await?;
        // wrk counts only answered requests; ones cut off at the end of the
        // run may still be stored, never the other way round.
        if stored < requests {
            return Err(BenchError::Step(format!("wrk saw {requests} 2xx answers but {topic} holds {stored} records")));
        }
        ours.push(requests as f64 / seconds);
        let peer_records: Vec<(String, Vec<u8>)> = (0..requests.min(200_000)).map(|_| (topic.clone(), value.clone())).collect();
        peer.push(produce_direct(bootstrap, &peer_records, true).await?);
        let _ = kafka::delete_topics(bootstrap, &[topic.as_str()]).await;
    }
    Ok(Measurement {
        bench: "ingest".into(),
        case: format!("1 record per POST, wrk, {WRK_CONNECTIONS} keep-alive connections"),
        unit: "records/s".into(),
        ours: median(ours),
        peer_name: "direct librdkafka producer".into(),
        peer: median(peer),
        runs,
    })
}

/// From wrk's summary: requests answered, the run's seconds, and the
/// answers that were not 2xx or 3xx.
fn parse_wrk(text: &str) -> Option<(u64, f64, u64)> {
    // "  123456 requests in 10.00s, 45.67MB read"
    let line = text.lines().find(|l| l.contains(" requests in "))?;
    let mut words = line.split_whitespace();
    let requests: u64 = words.next()?.parse().ok()?;
    let seconds = words.nth(2)?.trim_end_matches(',');
    let seconds: f64 = if let Some(ms) = seconds.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else if let Some(m) = seconds.strip_suffix('m') {
        m.parse::<f64>().ok()? * 60.0
    } else {
        seconds.strip_suffix('s')?.parse().ok()?
    };
    let failed =
        text.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    Some((requests, seconds, failed))
}

/// Records stored in a topic: the sum of its partitions' end offsets.
async fn end_offsets_sum(bootstrap: &str, topic: &str, partitions: i32) -> Result<u64, BenchError> {
    let consumer: rdkafka::consumer::BaseConsumer = kafka::client_config(bootstrap, &kafka::KafkaAuth::none(), &[])
        .set("group.id", "bench-offsets")
        .create()
        .map_err(step("creating a consumer"))?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::Consumer as _;
        let mut sum = 0u64;
        for p in 0..partitions {
            let (_, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).map_err(step("reading end offsets"))?;
            sum += high as u64;
        }
        Ok(sum)
    })
    .await
    .map_err(step("reading end offsets"))?
}

/// Which cases of the sink bench run.
pub struct SinkCases {
    pub flush_sizes: Vec<usize>,
    /// The case with ingest running at the same time.
    pub beside_ingest: bool,
}

/// Records/s from Kafka to S3 objects (flush.size 1 and 1000) next to raw
/// PUTs of the objects the sink wrote to the same endpoint, with the same
/// number of uploads in flight.
pub async fn sink(
    bootstrap: &str,
    bucket_url: &str,
    aws: &aws_setup::AwsTarget,
    records_per_run: u64,
    runs: usize,
    cases: &SinkCases,
) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    for &flush_size in &cases.flush_sizes {
        // Large objects need enough records to fill many per partition
        // (3 topics x 3 partitions). At ten each a run took 0.6 s, a fifth
        // of it the wait for each partition's first object and the last
        // ones' uploads, and runs of one binary spread by 40%; the steady
        // rate is what keeping up with ingest asks for.
        let record_count = records_per_run.max(flush_size as u64 * 9 * 50);
        let rounds = (record_count / 3).max(1);
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let names = fresh_names("bench");
            kafka::ensure_topics(bootstrap, &kafka::KafkaAuth::none(), &[], &names.topics(), 3, 1)
                .await
                .map_err(step("creating topics"))?;
            let recs = records(&names, rounds);
            produce_direct(bootstrap, &recs, false).await?;

            let bucket = run_bucket(bucket_url, &names, aws).await?;
            let location = Location::parse(&format!("{bucket}/sink-{run}")).map_err(step("location"))?;
            let mut config = SinkConfig::new(bootstrap, &names.topics_regex(), &format!("{}-sink", names.uid()), location.clone());
            config.aws = aws.clone();
            config.flush_size = flush_size;
            config.stop = StopWhen::CaughtUp { idle: Duration::ZERO };
            let stats = sink::run(config.clone(), std::future::pending()).await.map_err(step("sink"))?;
            if stats.records_written != recs.len() as u64 {
                return Err(BenchError::Step(format!("sink wrote {} of {} records", stats.records_written, recs.len())));
            }
            ours.push(stats.records_written as f64 / stats.active.as_secs_f64());

            // The peer: the objects the sink wrote, byte for byte, PUT
            // directly. The sink cuts each partition into flush.size
            // objects plus a shorter tail, so it writes more objects than
            // the records divided by flush.size; the peer writes as many.
            let store = storage::open(&location, aws).await.map_err(step("opening the store"))?;
            let written: Vec<object_store::ObjectMeta> = store
                .list(Some(&location.prefix()))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(step("listing the sink's objects"))?;
            if written.len() as u64 != stats.objects_written {
                return Err(BenchError::Step(format!(
                    "found {} objects under {location}, the sink wrote {}",
                    written.len(),
                    stats.objects_written
                )));
            }
            let mut objects: Vec<(object_store::path::Path, Vec<u8>)> = Vec::with_capacity(written.len());
            for (i, meta) in written.iter().enumerate() {
                let body = store
                    .get(&meta.location)
                    .await
                    .map_err(step("reading a sink object"))?
                    .bytes()
                    .await
                    .map_err(step("reading a sink object"))?;
                objects.push((object_store::path::Path::from(format!("raw-{run}/{i:010}.json")), body.to_vec()));
            }
            let started = Instant::now();
            futures::stream::iter(objects)
                .map(|(path, body)| {
                    let store = store.clone();
                    async move { store.put(&path, PutPayload::from(body)).await }
                })
                .buffer_unordered(config.upload_concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(step("raw PUT"))?;
            peer.push(recs.len() as f64 / started.elapsed().as_secs_f64());
            eprintln!(
                "sink flush.size {flush_size} run {}/{runs}: {:.0} records/s in {:.0} ms ({} objects), raw PUTs {:.0} records/s",
                run + 1,
                ours[run],
                stats.active.as_secs_f64() * 1e3,
                stats.objects_written,
                peer[run]
            );
            let _ = kafka::delete_topics(bootstrap, &names.topics().iter().map(String::as_str).collect::<Vec<_>>()).await;
            empty_run_bucket(&bucket, aws).await?;
        }
        out.push(Measurement {
            bench: "sink".into(),
            case: format!("flush.size {flush_size}"),
            unit: "records/s".into(),
            ours: median(ours),
            peer_name: format!("raw PUTs of the objects it wrote ({} in flight)", sink::DEFAULT_UPLOAD_CONCURRENCY),
            peer: median(peer),
            runs,
        });
    }
    if cases.beside_ingest {
        out.extend(sink_beside_ingest(bootstrap, bucket_url, aws, records_per_run.max(SINK_BESIDE_INGEST_RECORDS), runs).await?);
    }
    Ok(out)
}

/// Records per run of the ingest-and-sink-at-once case: a few seconds of
/// ingest at full speed.
const SINK_BESIDE_INGEST_RECORDS: u64 = 300_000;
/// The sink's rotate interval in that case: short, so the warm-up records
/// land quickly; a partition that ingest fills at full speed reaches
/// flush.size long before it.
const SINK_BESIDE_INGEST_ROTATE: Duration = Duration::from_secs(1);

/// Ingest (100 records per POST, as many in flight as the direct producer)
/// and the sink (flush.size 1000) running at the same time on the same
/// cores: the sink's records/s while ingest runs next to ingest's own, and
/// the records ingested but not yet written and committed by the sink when
/// ingest ends (its lag), next to the records ingested.
async fn sink_beside_ingest(
    bootstrap: &str,
    bucket_url: &str,
    aws: &aws_setup::AwsTarget,
    records_per_run: u64,
    runs: usize,
) -> Result<Vec<Measurement>, BenchError> {
    let batch = 100;
    let connections = (IN_FLIGHT_RECORDS / batch).clamp(1, MAX_CONNECTIONS);
    let server =
        ingest::start(IngestConfig { bootstrap: bootstrap.to_string(), listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() })
            .await
            .map_err(step("starting the ingest server"))?;
    let base = format!("http://{}", server.local_addr);
    let (mut sink_rates, mut ingest_rates, mut lags, mut ingested, mut catch_ups) = (vec![], vec![], vec![], vec![], vec![]);
    for run in 0..runs.max(1) {
        let names = fresh_names("bench");
        let topics = names.topics();
        kafka::ensure_topics(bootstrap, &kafka::KafkaAuth::none(), &[], &topics, 3, 1).await.map_err(step("creating topics"))?;
        let bucket = run_bucket(bucket_url, &names, aws).await?;
        let location = Location::parse(&format!("{bucket}/beside-{run}")).map_err(step("location"))?;
        let group = format!("{}-sink", names.uid());
        let mut config = SinkConfig::new(bootstrap, &names.topics_regex(), &group, location);
        config.aws = aws.clone();
        config.flush_size = 1000;
        config.rotate_interval = SINK_BESIDE_INGEST_ROTATE;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sink_task = tokio::spawn(sink::run(config, async move {
            let _ = stop_rx.await;
        }));
        let progress = GroupProgress::new(bootstrap, &group, &topics, 3)?;
        // Warm-up, untimed: the sink has joined its group and written
        // something before the clock starts, as a running connector has.
        let warm: Vec<(String, Vec<u8>)> = topics.iter().map(|t| (t.clone(), b"{}".to_vec())).collect();
        post_records(&base, &warm, 1, 1).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (end, committed) = progress.read().await?;
            if committed == end && end > 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Step(format!("the sink wrote {committed} of {end} warm-up records within 60 s")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, committed_before) = progress.read().await?;

        let recs = records(&names, (records_per_run / 3).max(1));
        let started = Instant::now();
        let ingest_rate = post_records(&base, &recs, batch, connections).await?;
        let took = started.elapsed();
        let (end, committed) = progress.read().await?;
        sink_rates.push((committed - committed_before) as f64 / took.as_secs_f64());
        ingest_rates.push(ingest_rate);
        lags.push((end - committed) as f64);
        ingested.push(recs.len() as f64);
        // How long the sink needs after ingest ends to write everything.
        let ended = Instant::now();
        loop {
            let (end, committed) = progress.read().await?;
            if committed >= end {
                break;
            }
            if ended.elapsed() > Duration::from_secs(120) {
                return Err(BenchError::Step(format!("the sink was still {} records behind 120 s after ingest ended", end - committed)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        catch_ups.push(ended.elapsed().as_secs_f64() * 1000.0);
        let _ = stop_tx.send(());
        let stats = sink_task.await.map_err(step("the sink task"))?.map_err(step("sink"))?;
        if stats.records_written < recs.len() as u64 {
            return Err(BenchError::Step(format!("the sink wrote {} of {} records", stats.records_written, recs.len())));
        }
        let _ = kafka::delete_topics(bootstrap, &topics.iter().map(String::as_str).collect::<Vec<_>>()).await;
        empty_run_bucket(&bucket, aws).await?;
    }
    server.stop().await.map_err(step("stopping the ingest server"))?;
    let case = format!("beside ingest ({batch} per POST, {connections} connections), flush.size 1000");
    Ok(vec![
        Measurement {
            bench: "sink".into(),
            case: format!("{case}: records/s while ingest runs"),
            unit: "records/s".into(),
            ours: median(sink_rates),
            peer_name: "ingest's own records/s in the same run".into(),
            peer: median(ingest_rates),
            runs,
        },
        Measurement {
            bench: "sink".into(),
            case: format!("{case}: lag when ingest ends (catch-up {:.0} ms)", median(catch_ups)),
            unit: "records".into(),
            ours: median(lags),
            peer_name: "records ingested".into(),
            peer: median(ingested),
            runs,
        },
    ])
}

/// A sink group's progress on its topics: the records stored (end offsets)
/// and the records it has committed, summed over the partitions.
struct GroupProgress {
    consumer: Arc<rdkafka::consumer::BaseConsumer>,
    partitions: rdkafka::TopicPartitionList,
}

impl GroupProgress {
    fn new(bootstrap: &str, group: &str, topics: &[String], partitions: i32) -> Result<Self, BenchError> {
        // Same group id, never subscribed: it reads the group's commits
        // without joining it.
        let consumer = kafka::client_config(bootstrap, &kafka::KafkaAuth::none(), &[])
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(step("creating a consumer"))?;
        let mut tpl = rdkafka::TopicPartitionList::new();
        for t in topics {
            for p in 0..partitions {
                tpl.add_partition(t, p);
            }
        }
        Ok(Self { consumer: Arc::new(consumer), partitions: tpl })
    }

    /// (records stored, records committed by the group).
    async fn read(&self) -> Result<(u64, u64), BenchError> {
        let (consumer, tpl) = (self.consumer.clone(), self.partitions.clone());
        tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer as _;
            let timeout = Duration::from_secs(10);
            let committed = consumer.committed_offsets(tpl.clone(), timeout).map_err(step("reading committed offsets"))?;
            let (mut end, mut done) = (0u64, 0u64);
            for e in committed.elements() {
                let (_, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout).map_err(step("reading end offsets"))?;
                end += high as u64;
                if let rdkafka::Offset::Offset(o) = e.offset() {
                    done += o as u64;
                }
            }
            Ok((end, done))
        })
        .await
        .map_err(step("reading the group's progress"))?
    }
}

/// Stream path latency on a Kinesis endpoint (moto locally): each record PUT
/// through the ingest server's Kinesis route until its row is committed to
/// Delta by `pipeline stream`, next to the same records put straight into
/// Kinesis and seen by a GetRecords reader polling as often as the worker.
pub async fn stream(aws: &aws_setup::AwsTarget, rounds: u64, rate: f64, runs: usize) -> Result<Vec<Measurement>, BenchError> {
    let poll = Duration::from_millis(50);
    let kinesis = aws_sdk_kinesis::Client::new(&aws.load().await);
    let (mut p50s, mut p99s, mut peer50s, mut peer99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut rates, mut peer_rates) = (Vec::new(), Vec::new());
    let backlog_rounds = 2_000;
    for _ in 0..runs.max(1) {
        let (ours, peer) = stream_catch_up(aws, &kinesis, backlog_rounds).await?;
        rates.push(ours);
        peer_rates.push(peer);
        let names = fresh_names("bs");
        for kind in Kind::ALL {
            kinesis.create_stream().stream_name(names.stream(kind)).shard_count(1).send().await.map_err(step("creating streams"))?;
        }
        let ours = stream_ours(aws, &names, rounds, rate, poll).await?;
        let peer_stream = format!("{}-peer", names.stream(Kind::Pin));
        kinesis.create_stream().stream_name(&peer_stream).shard_count(1).send().await.map_err(step("creating the peer stream"))?;
        let peer = stream_peer(&kinesis, &peer_stream, rounds * 3, rate * 3.0, poll).await?;
        for kind in Kind::ALL {
            let _ = kinesis.delete_stream().stream_name(names.stream(kind)).send().await;
        }
        let _ = kinesis.delete_stream().stream_name(&peer_stream).send().await;
        p50s.push(percentile_ms(&ours, 0.5));
        p99s.push(percentile_ms(&ours, 0.99));
        peer50s.push(percentile_ms(&peer, 0.5));
        peer99s.push(percentile_ms(&peer, 0.99));
    }
    let peer_name = format!("PutRecord -> GetRecords, polled every {} ms", poll.as_millis());
    let row = |case: &str, ours: Vec<f64>, peer: Vec<f64>| Measurement {
        bench: "stream".into(),
        case: format!("{case}, {} records at {} records/s", rounds * 3, rate * 3.0),
        unit: "ms".into(),
        ours: median(ours),
        peer_name: peer_name.clone(),
        peer: median(peer),
        runs,
    };
    let throughput = Measurement {
        bench: "stream".into(),
        case: format!("catch-up: backlog of {} records -> Delta", backlog_rounds * 3),
        unit: "records/s".into(),
        ours: median(rates),
        peer_name: "GetRecords draining the same backlog, no processing".into(),
        peer: median(peer_rates),
        runs,
    };
    Ok(vec![row("PUT -> row in Delta, p50", p50s, peer50s), row("PUT -> row in Delta, p99", p99s, peer99s), throughput])
}

/// A stream worker writing Delta tables under a fresh temporary directory
/// (returned, for clean-up).
fn local_stream_config(
    aws: &aws_setup::AwsTarget,
    names: &Names,
    max_records: i32,
    poll_interval: Duration,
    stop_when_idle: Option<Duration>,
) -> (std::path::PathBuf, pipeline_stream::StreamConfig) {
    let output = std::env::temp_dir().join(format!("pipeline-bench-{}", names.uid()));
    let config = pipeline_stream::StreamConfig {
        names: names.clone(),
        aws: aws.clone(),
        output: pipeline_storage::Location::Local { dir: output.clone() },
        dead_letter: None,
        max_records,
        poll_interval,
        stop_when_idle,
        metrics: Default::default(),
    };
    (output, config)
}

/// Records/s of the worker catching up on a backlog (read, clean, Delta
/// commits; up to its last commit), next to a bare GetRecords reader
/// draining the same streams with the same page size.
async fn stream_catch_up(aws: &aws_setup::AwsTarget, kinesis: &aws_sdk_kinesis::Client, rounds: u64) -> Result<(f64, f64), BenchError> {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
    let names = fresh_names("bt");
    let source = SyntheticSource::new(7, rounds.max(1));
    for kind in Kind::ALL {
        kinesis.create_stream().stream_name(names.stream(kind)).shard_count(1).send().await.map_err(step("creating streams"))?;
        let entries = (0..rounds)
            .map(|i| {
                let data = serde_json::to_vec(&source.round(i).value(kind)).expect("serialise");
                PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(format!("p{i}")).build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(step("record"))?;
        for chunk in entries.chunks(500) {
            kinesis
                .put_records()
                .stream_name(names.stream(kind))
                .set_records(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(step("PutRecords"))?;
        }
    }
    let records = rounds * 3;
    let page = 1000;

    let (output, config) = local_stream_config(aws, &names, page, Duration::from_millis(50), Some(Duration::from_secs(1)));
    let started = Instant::now();
    let mut last_commit = started;
    pipeline_stream::run_observed(config, std::future::pending(), |c| last_commit = last_commit.max(c.at))
        .await
        .map_err(step("stream worker"))?;
    let ours = records as f64 / last_commit.saturating_duration_since(started).as_secs_f64();
    let _ = std::fs::remove_dir_all(&output);

    let started = Instant::now();
    let mut read = 0u64;
    for kind in Kind::ALL {
        let shards = kinesis.list_shards().stream_name(names.stream(kind)).send().await.map_err(step("ListShards"))?;
        for shard in shards.shards() {
            let mut iterator = kinesis
                .get_shard_iterator()
                .stream_name(names.stream(kind))
                .shard_id(shard.shard_id())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(step("GetShardIterator"))?
                .shard_iterator()
                .map(str::to_string);
            while let Some(it) = iterator {
                let out = kinesis.get_records().shard_iterator(it).limit(page).send().await.map_err(step("GetRecords"))?;
                read += out.records().len() as u64;
                if out.records().is_empty() {
                    break;
                }
                iterator = out.next_shard_iterator().map(str::to_string);
            }
        }
    }
    let peer = read as f64 / started.elapsed().as_secs_f64();
    for kind in Kind::ALL {
        let _ = kinesis.delete_stream().stream_name(names.stream(kind)).send().await;
    }
    if read != records {
        return Err(BenchError::Step(format!("the peer read {read} of {records} records")));
    }
    Ok((ours, peer))
}

fn percentile_ms(latencies: &[Duration], q: f64) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    emulate::percentile(&sorted, q).as_secs_f64() * 1000.0
}

/// Latency of every record, ingest route to Delta commit.
async fn stream_ours(
    aws: &aws_setup::AwsTarget,
    names: &Names,
    rounds: u64,
    rate: f64,
    poll: Duration,
) -> Result<Vec<Duration>, BenchError> {
    let server =
        ingest::start(IngestConfig { listen: "127.0.0.1:0".parse().expect("address"), kinesis: Some(aws.clone()), ..Default::default() })
            .await
            .map_err(step("starting the ingest server"))?;
    let (output, config) = local_stream_config(aws, names, 1000, poll, None);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = tokio::spawn(pipeline_stream::run_observed(config, std::future::pending(), move |c| {
        let _ = tx.send(c);
    }));
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let source = SyntheticSource::new(5, rounds.max(1));
    let mut sent = std::collections::HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let mut next = Instant::now();
    for i in 0..rounds {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let round = source.round(i);
        for kind in Kind::ALL {
            let value = round.value(kind);
            let ind = value.get("ind").or_else(|| value.get("index")).and_then(|v| v.as_i64()).unwrap_or_default();
            let stream = names.stream(kind);
            let started = Instant::now();
            let resp = http
                .put(format!("{base}/streams/{stream}/record"))
                .json(&serde_json::json!({"StreamName": stream, "Data": value, "PartitionKey": "partition-1"}))
                .send()
                .await
                .map_err(step("PUT record"))?;
            if !resp.status().is_success() {
                return Err(BenchError::Step(format!("PUT record answered {}", resp.status())));
            }
            sent.insert((kind, ind), started);
        }
    }
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sent.is_empty() && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some(c)) => {
                for ind in c.inds {
                    if let Some(t) = sent.remove(&(c.kind, ind)) {
                        latencies.push(c.at - t);
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    worker.abort();
    let _ = server.stop().await;
    let _ = std::fs::remove_dir_all(&output);
    if !sent.is_empty() {
        return Err(BenchError::Step(format!("{} records never reached Delta within 60 s", sent.len())));
    }
    Ok(latencies)
}

/// Latency of every record, PutRecord to being read by a polling GetRecords.
async fn stream_peer(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    records: u64,
    rate: f64,
    poll: Duration,
) -> Result<Vec<Duration>, BenchError> {
    let shard = kinesis.list_shards().stream_name(stream).send().await.map_err(step("ListShards"))?;
    let shard_id = shard.shards().first().map(|s| s.shard_id().to_string()).unwrap_or_default();
    let it = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(step("GetShardIterator"))?;
    let reader_client = kinesis.clone();
    let mut iterator = it.shard_iterator().map(str::to_string);
    let reader = tokio::spawn(async move {
        let mut seen = std::collections::HashMap::new();
        while (seen.len() as u64) < records {
            let Some(i) = iterator.clone() else { break };
            if let Ok(out) = reader_client.get_records().shard_iterator(i).send().await {
                let now = Instant::now();
                for r in out.records() {
                    seen.insert(r.data().as_ref().to_vec(), now);
                }
                iterator = out.next_shard_iterator().map(str::to_string);
                if out.records().is_empty() {
                    tokio::time::sleep(poll).await;
                }
            }
        }
        seen
    });
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let mut next = Instant::now();
    let mut sent = Vec::new();
    for i in 0..records {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let data = format!("{{\"n\":{i}}}").into_bytes();
        let started = Instant::now();
        kinesis
            .put_record()
            .stream_name(stream)
            .data(aws_sdk_kinesis::primitives::Blob::new(data.clone()))
            .partition_key("p")
            .send()
            .await
            .map_err(step("PutRecord"))?;
        sent.push((data, started));
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(step("reading the peer stream"))?
        .map_err(step("peer reader"))?;
    Ok(sent.into_iter().filter_map(|(d, t)| seen.get(&d).map(|s| s.saturating_duration_since(t))).collect())
}

/// Batch path latency: one record POSTed to the ingest server until its
/// object (flush.size 1, as the original connector) exists in S3, at a fixed
/// rate; next to PUTting the same bytes straight to the same endpoint until
/// HEAD sees them. Objects are watched with HEAD every 10 ms: the key follows
/// from the partition and offset the ingest server answers.
pub async fn e2e(
    bootstrap: &str,
    bucket_url: &str,
    aws: &aws_setup::AwsTarget,
    records: u64,
    rate: f64,
    runs: usize,
) -> Result<Vec<Measurement>, BenchError> {
    ensure_bucket(bucket_url, aws).await?;
    let (mut p50s, mut p99s, mut peer50s, mut peer99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs.max(1) {
        let names = fresh_names("be");
        kafka::ensure_topics(bootstrap, &kafka::KafkaAuth::none(), &[], &names.topics(), 3, 1).await.map_err(step("creating topics"))?;
        let location = Location::parse(&format!("{bucket_url}/e2e-{}-{run}", names.uid())).map_err(step("location"))?;
        let store = storage::open(&location, aws).await.map_err(step("opening the store"))?;
        let mut config = SinkConfig::new(bootstrap, &names.topics_regex(), &format!("{}-sink", names.uid()), location.clone());
        config.aws = aws.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sink_task = tokio::spawn(sink::run(config, async move {
            let _ = stop_rx.await;
        }));
        let server = ingest::start(IngestConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            bootstrap: bootstrap.to_string(),
            ..Default::default()
        })
        .await
        .map_err(step("starting the ingest server"))?;
        let base = format!("http://{}", server.local_addr);
        let http = reqwest::Client::new();
        let source = SyntheticSource::new(9, ORIGINAL_TABLE_ROWS);
        let prefix = location.layout();
        let root = object_store::path::Path::from(prefix.as_str());
        let object_path = move |topic: &str, partition: i32, offset: i64| {
            object_store::path::Path::from(prefix.join(&sink::object_key(topic, partition, offset)))
        };
        // One watcher lists the objects every 20 ms and notes when each key
        // first appears (per-record HEAD polling would load the endpoint more
        // than the sink does).
        let seen = Arc::new(std::sync::Mutex::new(HashMap::<object_store::path::Path, Instant>::new()));
        let watcher = {
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                loop {
                    let listed: Vec<_> = store.list(Some(&root)).collect().await;
                    let now = Instant::now();
                    {
                        let mut seen = seen.lock().expect("seen lock");
                        for meta in listed.into_iter().flatten() {
                            seen.entry(meta.location).or_insert(now);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        // POST one record; its object's key follows from the answer.
        let one = |i: u64| {
            let (http, base, object_path) = (http.clone(), base.clone(), object_path.clone());
            let kind = Kind::ALL[(i % 3) as usize];
            let topic = names.topic(kind);
            let value = source.round(i).value(kind);
            async move {
                let started = Instant::now();
                let answer: serde_json::Value = http
                    .post(format!("{base}/topics/{topic}"))
                    .header("Content-Type", emulate::JSON_V2)
                    .json(&serde_json::json!({"records": [{"value": value}]}))
                    .send()
                    .await
                    .map_err(step("POST"))?
                    .json()
                    .await
                    .map_err(step("POST answer"))?;
                let (p, o) = (answer["offsets"][0]["partition"].as_i64(), answer["offsets"][0]["offset"].as_i64());
                let (Some(p), Some(o)) = (p, o) else { return Err(BenchError::Step(format!("POST answered {answer}"))) };
                Ok((object_path(&topic, p as i32, o), started))
            }
        };
        let wait_for = |path: object_store::path::Path| {
            let seen = seen.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let at = seen.lock().expect("seen lock").get(&path).copied();
                    if let Some(at) = at {
                        return Ok(at);
                    }
                    if Instant::now() > deadline {
                        return Err(BenchError::Step(format!("{path} did not appear within 60 s")));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        // Warm-up: the sink's first assignment takes seconds; not measured.
        let (path, _) = one(records).await?;
        wait_for(path).await?;
        let mut posted = Vec::new();
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let mut next = Instant::now();
        let mut in_flight = FuturesUnordered::new();
        for i in 0..records {
            tokio::time::sleep_until(next.into()).await;
            next += interval;
            in_flight.push(one(i));
            while let Some(Some(r)) = futures::FutureExt::now_or_never(in_flight.next()) {
                posted.push(r?);
            }
        }
        while let Some(r) = in_flight.next().await {
            posted.push(r?);
        }
        let mut ours = Vec::new();
        for (path, started) in posted {
            ours.push(wait_for(path).await?.saturating_duration_since(started));
        }
        watcher.abort();
        let _ = stop_tx.send(());
        let _ = sink_task.await;
        let _ = server.stop().await;

        // The peer: the same bytes PUT to the same endpoint, until HEAD sees them.
        let mut peer = Vec::new();
        let mut next = Instant::now();
        for i in 0..records {
            tokio::time::sleep_until(next.into()).await;
            next += interval;
            let path = object_store::path::Path::from(format!("e2e-peer-{}/{i:010}.json", names.uid()));
            let body = serde_json::to_vec(&source.round(i).value(Kind::ALL[(i % 3) as usize])).expect("serialise");
            let started = Instant::now();
            store.put(&path, PutPayload::from(body)).await.map_err(step("raw PUT"))?;
            while store.head(&path).await.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peer.push(started.elapsed());
        }
        let _ = kafka::delete_topics(bootstrap, &names.topics().iter().map(String::as_str).collect::<Vec<_>>()).await;
        p50s.push(percentile_ms(&ours, 0.5));
        p99s.push(percentile_ms(&ours, 0.99));
        peer50s.push(percentile_ms(&peer, 0.5));
        peer99s.push(percentile_ms(&peer, 0.99));
    }
    let row = |case: &str, ours: Vec<f64>, peer: Vec<f64>| Measurement {
        bench: "end to end".into(),
        case: format!("{case}, {records} records at {rate} records/s, flush.size 1"),
        unit: "ms".into(),
        ours: median(ours),
        peer_name: "PUT of the same bytes until HEAD sees it".into(),
        peer: median(peer),
        runs,
    };
    Ok(vec![row("POST -> object in S3, p50", p50s, peer50s), row("POST -> object in S3, p99", p99s, peer99s)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summaries_are_read() {
        let text = "Running 10s test @ http://127.0.0.1:1/topics/t\n  2 threads and 64 connections\n  Thread Stats   Avg\n  123456 requests in 10.00s, 45.67MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  12345.60\n";
        assert_eq!(parse_wrk(text), Some((123456, 10.0, 3)));
        assert_eq!(parse_wrk("  10 requests in 500.00ms, 1KB read\n"), Some((10, 0.5, 0)));
        assert_eq!(parse_wrk("nothing"), None);
    }
}

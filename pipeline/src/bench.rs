//! Measurements behind `cargo xtask bench`: each figure is taken next to a
//! peer doing the same work against the same service, in the same process,
//! so the ratio means something on any machine.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::{ObjectStoreExt, PutPayload};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use crate::emulate::{self, EmulateConfig};
use crate::generate::{ORIGINAL_TABLE_ROWS, SyntheticSource};
use crate::ingest::{self, IngestConfig};
use crate::records::{Kind, Names};
use crate::kafka;
use crate::sink::{self, SinkConfig, StopWhen};
use crate::storage::{self, Location, S3Settings};

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
pub async fn produce_direct(bootstrap: &str, records: &[(String, Vec<u8>)]) -> Result<f64, BenchError> {
    let producer: FutureProducer = kafka::reliable_producer_config(bootstrap, &[], Duration::from_secs(60))
        .create()
        .map_err(step("creating the producer"))?;
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for (topic, value) in records {
        in_flight.push(producer.send(FutureRecord::<(), _>::to(topic).payload(value), Duration::from_secs(60)));
        // Bounded like a client would be; the queue limit is far above this.
        while in_flight.len() >= 10_000 {
            in_flight.next().await.expect("non-empty").map_err(|(e, _)| BenchError::Step(format!("producing: {e}")))?;
        }
    }
    while let Some(r) = in_flight.next().await {
        r.map_err(|(e, _)| BenchError::Step(format!("producing: {e}")))?;
    }
    Ok(records.len() as f64 / started.elapsed().as_secs_f64())
}

/// Records/s through the ingest server (REST Proxy API, 1 and 100 records
/// per POST) next to the direct producer, over `records` records per run.
pub async fn ingest(bootstrap: &str, records_per_run: u64, runs: usize) -> Result<Vec<Measurement>, BenchError> {
    let rounds = (records_per_run / 3).max(1);
    let server = ingest::start(IngestConfig { bootstrap: bootstrap.to_string(), listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() })
        .await
        .map_err(step("starting the ingest server"))?;
    let base = format!("http://{}", server.local_addr);
    let mut out = Vec::new();
    for batch in [1usize, 100] {
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let names = fresh_names("bench");
            kafka::ensure_topics(bootstrap, &[], &names.topics(), 3, 1).await.map_err(step("creating topics"))?;
            let summary = emulate::run(EmulateConfig {
                mode: Default::default(),
                target: base.clone(),
                names: names.clone(),
                source: SyntheticSource::new(42, ORIGINAL_TABLE_ROWS),
                rounds: Some(rounds),
                duration: None,
                rate: None,
                batch,
                concurrency: 16,
                retries: 0,
                offset_seed: 43,
                progress: false,
            })
            .await
            .map_err(step("emulating"))?;
            if summary.failed > 0 {
                return Err(BenchError::Step(format!("{} records were not acknowledged", summary.failed)));
            }
            ours.push(summary.acked as f64 / summary.elapsed.as_secs_f64());

            let peer_names = fresh_names("bench");
            kafka::ensure_topics(bootstrap, &[], &peer_names.topics(), 3, 1).await.map_err(step("creating topics"))?;
            peer.push(produce_direct(bootstrap, &records(&peer_names, rounds)).await?);
            let topics: Vec<String> = names.topics().into_iter().chain(peer_names.topics()).collect();
            let _ = kafka::delete_topics(bootstrap, &topics.iter().map(String::as_str).collect::<Vec<_>>()).await;
        }
        out.push(Measurement {
            bench: "ingest".into(),
            case: format!("{batch} record(s) per POST"),
            unit: "records/s".into(),
            ours: median(ours),
            peer_name: "direct librdkafka producer".into(),
            peer: median(peer),
            runs,
        });
    }
    server.stop().await.map_err(step("stopping the ingest server"))?;
    Ok(out)
}

/// Records/s from Kafka to S3 objects (flush.size 1 and 1000) next to raw
/// PUTs of objects of the same size to the same endpoint, with the same
/// number of uploads in flight.
pub async fn sink(bootstrap: &str, bucket_url: &str, s3: &S3Settings, records_per_run: u64, runs: usize) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    for flush_size in [1usize, 1000] {
        // Large objects need enough records to fill several per partition
        // (3 topics x 3 partitions), or the case only measures the tail flush.
        let record_count = records_per_run.max(flush_size as u64 * 9 * 10);
        let rounds = (record_count / 3).max(1);
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let names = fresh_names("bench");
            kafka::ensure_topics(bootstrap, &[], &names.topics(), 3, 1).await.map_err(step("creating topics"))?;
            let recs = records(&names, rounds);
            produce_direct(bootstrap, &recs).await?;

            let location = Location::parse(&format!("{bucket_url}/sink-{}-{run}", names.uid())).map_err(step("location"))?;
            let mut config = SinkConfig::new(bootstrap, &names.topics_regex(), &format!("{}-sink", names.uid()), location.clone());
            config.s3 = s3.clone();
            config.flush_size = flush_size;
            config.stop = StopWhen::CaughtUp { idle: Duration::ZERO };
            let stats = sink::run(config.clone(), std::future::pending()).await.map_err(step("sink"))?;
            if stats.records_written != recs.len() as u64 {
                return Err(BenchError::Step(format!("sink wrote {} of {} records", stats.records_written, recs.len())));
            }
            ours.push(stats.records_written as f64 / stats.active.as_secs_f64());

            // The peer: the same bytes per object, PUT directly.
            let per_object = flush_size.min(recs.len());
            let store = storage::open(&Location::parse(&format!("{bucket_url}/raw-{}-{run}", names.uid())).map_err(step("location"))?, s3)
                .map_err(step("opening the store"))?;
            let objects: Vec<(object_store::path::Path, Vec<u8>)> = recs
                .chunks(per_object)
                .enumerate()
                .map(|(i, chunk)| {
                    let mut body = Vec::new();
                    for (_, v) in chunk {
                        body.extend_from_slice(v);
                        body.push(b'\n');
                    }
                    (object_store::path::Path::from(format!("raw/{i:010}.json")), body)
                })
                .collect();
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
            let _ = kafka::delete_topics(bootstrap, &names.topics().iter().map(String::as_str).collect::<Vec<_>>()).await;
        }
        out.push(Measurement {
            bench: "sink".into(),
            case: format!("flush.size {flush_size}"),
            unit: "records/s".into(),
            ours: median(ours),
            peer_name: format!("raw PUTs of the same objects ({} in flight)", sink::DEFAULT_UPLOAD_CONCURRENCY),
            peer: median(peer),
            runs,
        });
    }
    Ok(out)
}

//! The batch path end to end on the real stack: emulator -> ingest server
//! -> Kafka -> sink -> S3 (moto) -> batch job.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use contract::{Kind, Names};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use pipeline_emulate::EmulateConfig;
use pipeline_emulate::generate::SyntheticSource;
use pipeline_ingest::{self as ingest, IngestConfig};
use pipeline_sink::{self as sink, SinkConfig, StopWhen};
use pipeline_storage::{self as storage, Location};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

async fn emulate(names: &Names, rounds: u64, batch: usize) -> pipeline_emulate::Summary {
    let server =
        ingest::start(IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), ..Default::default() })
            .await
            .unwrap();
    let summary = pipeline_emulate::run(EmulateConfig {
        mode: Default::default(),
        target: format!("http://{}", server.local_addr),
        names: names.clone(),
        source: pipeline_emulate::RowSource::Synthetic(SyntheticSource::new(5, 2_000)),
        rounds: Some(rounds),
        duration: None,
        rate: None,
        batch,
        concurrency: 4,
        retries: 0,
        offset_seed: 9,
        progress: false,
        api_key: None,
    })
    .await
    .unwrap();
    server.stop().await.unwrap();
    summary
}

fn sink_config(names: &Names, group: &str, location: Location, flush_size: usize) -> SinkConfig {
    let mut c = SinkConfig::new(&common::bootstrap(), &names.topics_regex(), group, location);
    c.aws = common::moto();
    c.flush_size = flush_size;
    c.rotate_interval = Duration::from_millis(500);
    c.stop = StopWhen::CaughtUp { idle: Duration::from_secs(1) };
    c
}

/// Every record of the deployment's topics, by (topic, partition, offset):
/// the `expected` acknowledged ones, and nothing more arriving after them.
async fn kafka_content(names: &Names, expected: u64) -> BTreeMap<(String, i32, i64), Vec<u8>> {
    let consumer: StreamConsumer = pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[])
        .set("group.id", format!("check-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let topics = names.topics();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs).unwrap();
    let mut out = BTreeMap::new();
    // A fresh broker creates __consumer_offsets on the first group join,
    // which can take seconds: wait generously for what must be there.
    while (out.len() as u64) < expected {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.expect("acknowledged records arrive").unwrap();
        out.insert((m.topic().to_string(), m.partition(), m.offset()), m.payload().unwrap().to_vec());
    }
    while let Ok(m) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        let m = m.unwrap();
        out.insert((m.topic().to_string(), m.partition(), m.offset()), m.payload().unwrap().to_vec());
    }
    out
}

/// Every line of every sink object, by the (topic, partition, offset) its
/// object name and line position say it came from.
async fn sink_content(location: &Location, names: &Names) -> (BTreeMap<(String, i32, i64), Vec<u8>>, usize) {
    let store = storage::open(location, &common::moto()).await.unwrap();
    let metas: Vec<_> = store.list(Some(&"topics".into())).try_collect().await.unwrap();
    let mut out = BTreeMap::new();
    let mut objects = 0;
    for meta in metas {
        let key = meta.location.to_string();
        let file = key.rsplit('/').next().unwrap().strip_suffix(".json").unwrap();
        let mut parts = file.rsplitn(3, '+');
        let start: i64 = parts.next().unwrap().parse().unwrap();
        let partition: i32 = parts.next().unwrap().parse().unwrap();
        let topic = parts.next().unwrap().to_string();
        assert!(names.kind_of_topic(&topic).is_some(), "{key}");
        assert_eq!(key, pipeline_sink::object_key(&topic, partition, start));
        let body = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        assert!(body.ends_with(b"\n"), "{key}: each line ends in a newline");
        objects += 1;
        for (i, line) in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let prev = out.insert((topic.clone(), partition, start + i as i64), line.to_vec());
            assert!(prev.is_none(), "{key}: record stored twice");
        }
    }
    (out, objects)
}

#[tokio::test]
async fn posted_records_reach_s3_exactly_once_and_feed_the_batch_job() {
    common::require_kafka().await;
    common::set_dummy_aws_env();
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let summary = emulate(&names, 120, 1).await;
    assert_eq!((summary.sent, summary.acked, summary.failed), (360, 360, 0), "{summary}");
    let in_kafka = kafka_content(&names, 360).await;
    assert_eq!(in_kafka.len(), 360);

    // flush.size 1 into moto's S3, as the original connector.
    let client = common::s3_client().await;
    aws_setup::s3::ensure_bucket(&client, &names.sink_bucket()).await.unwrap();
    let s3 = Location::parse(&format!("s3://{}", names.sink_bucket())).unwrap();
    let stats = sink::run(sink_config(&names, "sink-a", s3.clone(), 1), std::future::pending()).await.unwrap();
    assert_eq!((stats.records_written, stats.objects_written, stats.dead_letters), (360, 360, 0));
    let (in_s3, objects) = sink_content(&s3, &names).await;
    assert_eq!(objects, 360);
    assert_eq!(in_s3, in_kafka, "S3 holds exactly what Kafka holds");

    // The same group again: everything is committed, nothing is rewritten.
    let again = sink::run(sink_config(&names, "sink-a", s3.clone(), 1), std::future::pending()).await.unwrap();
    assert_eq!(again.records_written, 0);

    // The batch job reads the sink's output.
    let out = pipeline_batch::run(&pipeline_batch::BatchConfig {
        input: s3.clone(),
        names: names.clone(),
        aws: common::moto(),
        output: None,
        strict: false,
    })
    .await
    .unwrap();
    assert_eq!(out.raw_rows, vec![(Kind::Pin, 120), (Kind::Geo, 120), (Kind::User, 120)]);
    let distinct_offsets: std::collections::HashSet<_> =
        in_kafka.iter().filter(|((t, _, _), _)| t.ends_with(".geo")).map(|(_, v)| v.clone()).collect();
    let geo_clean = out.cleaned.iter().find(|t| t.name == "geo_clean").unwrap();
    assert_eq!(geo_clean.rows(), distinct_offsets.len(), "duplicates dropped, nothing else");
    assert_eq!(out.results.len(), 9);
    let q3b = out.results.iter().find(|t| t.name == "q3b").unwrap();
    assert_eq!(q3b.rows(), 1);
}

#[tokio::test]
async fn large_objects_and_uncommitted_rewrites_keep_exactly_once() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let summary = emulate(&names, 300, 25).await;
    assert_eq!(summary.acked, 900, "{summary}");
    let in_kafka = kafka_content(&names, 900).await;
    assert_eq!(in_kafka.len(), 900);

    let dir = std::env::temp_dir().join(format!("sink-{}", names.uid()));
    let local = Location::Local { dir: dir.clone() };
    // flush.size 500 with ~100 records per partition: objects are cut by
    // the rotate interval / end of input, never by size.
    let stats = sink::run(sink_config(&names, "sink-big", local.clone(), 500), std::future::pending()).await.unwrap();
    assert_eq!(stats.records_written, 900);
    let (first, objects) = sink_content(&local, &names).await;
    assert_eq!(first, in_kafka);
    assert!(objects <= 9 * 3, "few large objects, got {objects}");

    // A group with no commits over the same output stands for a crash
    // after writing and before committing: it must replace, not duplicate.
    let stats = sink::run(sink_config(&names, "sink-crashed", local.clone(), 7), std::future::pending()).await.unwrap();
    assert!(stats.stale_objects_removed > 0);
    let (second, _) = sink_content(&local, &names).await;
    assert_eq!(second, in_kafka, "no duplicates, no gaps after the rewrite");
    let per_topic: HashMap<String, usize> = second.keys().fold(HashMap::new(), |mut m, (t, _, _)| {
        *m.entry(t.clone()).or_default() += 1;
        m
    });
    assert!(per_topic.values().all(|n| *n == 300));
    std::fs::remove_dir_all(dir).ok();
}

/// kill -9 of the sink process at several points of its progress, then a
/// final run to the end: S3 holds exactly what Kafka holds.
#[tokio::test(flavor = "multi_thread")]
async fn sink_killed_with_sigkill_and_restarted_loses_and_repeats_nothing() {
    common::require_kafka().await;
    common::set_dummy_aws_env();
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let summary = emulate(&names, 500, 50).await;
    assert_eq!(summary.acked, 1500, "{summary}");
    let in_kafka = kafka_content(&names, 1500).await;
    assert_eq!(in_kafka.len(), 1500);

    let client = common::s3_client().await;
    aws_setup::s3::ensure_bucket(&client, &names.sink_bucket()).await.unwrap();
    let to = format!("s3://{}", names.sink_bucket());
    let bin = common::pipeline_bin();
    let sink_args = |extra: &[&str]| -> Vec<String> {
        // Static group membership: a restarted worker takes its partitions
        // back at once instead of waiting out the killed one's session.
        let instance = format!("group.instance.id={}-sink-0", names.uid());
        [
            "sink",
            "--uid",
            names.uid(),
            "--to",
            &to,
            "--s3-endpoint",
            &common::s3_endpoint(),
            "--flush-size",
            "7",
            "--rotate-interval-ms",
            "300",
            "-X",
            &instance,
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    // Kill points by progress, not by the clock (a faster sink once finished
    // before the first timed kill): each run is killed once the objects
    // written reach the next sixth of the expected count.
    let store = storage::open(&Location::parse(&to).unwrap(), &common::moto()).await.unwrap();
    let expected_objects = in_kafka.len() / 7;
    let mut kills = 0;
    let log = tempfile::NamedTempFile::new().unwrap();
    for step in 1..=4usize {
        let mut child = tokio::process::Command::new(&bin)
            .args(sink_args(&[]))
            .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::OpenOptions::new().append(true).open(log.path()).unwrap())
            .spawn()
            .unwrap();
        let target = expected_objects * step / 6;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            let written = store.list(Some(&"topics".into())).try_collect::<Vec<_>>().await.unwrap().len();
            if written >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL: no flush, no commit, no goodbye
            kills += 1;
        }
        child.wait().await.unwrap();
    }
    assert!(kills >= 3, "the sink was killed mid-run ({kills} kills)");
    let mid = sink_content(&Location::parse(&to).unwrap(), &names).await.0.len();
    assert!(
        mid > 0 && mid < in_kafka.len(),
        "kills landed mid-run: {mid} of {} stored; sink said:\n{}",
        in_kafka.len(),
        std::fs::read_to_string(log.path()).unwrap()
    );

    let last = tokio::process::Command::new(&bin)
        .args(sink_args(&["--until-caught-up"]))
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap())
        .output()
        .await
        .unwrap();
    assert!(last.status.success(), "{}", String::from_utf8_lossy(&last.stderr));
    // sink_content fails on a record stored twice, so duplicates are 0 here.
    let (stored, _) = sink_content(&Location::parse(&to).unwrap(), &names).await;
    common::report_scenario(&common::ScenarioRow {
        scenario: format!("sink SIGKILLed {kills} times, restarted"),
        sent: in_kafka.len() as u64,
        acknowledged: in_kafka.len() as u64,
        stored: stored.len() as u64,
        lost: in_kafka.keys().filter(|k| !stored.contains_key(*k)).count() as u64,
        duplicated: 0,
        good_client_p99: None,
    });
    assert_eq!(stored.len(), in_kafka.len(), "no gaps, no duplicates");
    assert!(stored == in_kafka, "S3 content equals Kafka content");
}

/// A fresh deployment's pin topic with one partition, and a producer for it.
async fn one_partition_topic() -> (Names, String, rdkafka::producer::FutureProducer) {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let producer = pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[]).create().unwrap();
    (names, topic, producer)
}

/// A temporary directory as the sink's output (removed when dropped).
fn local_output() -> (tempfile::TempDir, Location) {
    let dir = tempfile::tempdir().unwrap();
    let local = Location::Local { dir: dir.path().to_path_buf() };
    (dir, local)
}

/// Values that are not JSON are never dropped: each goes to the
/// dead-letter prefix under its coordinates, byte for byte, and the JSON
/// records around it still land under their own offsets.
#[tokio::test]
async fn values_that_are_not_json_go_to_the_dead_letter_prefix() {
    use rdkafka::producer::FutureRecord;
    let (names, topic, producer) = one_partition_topic().await;
    let values: [&[u8]; 4] = [br#"{"a":1}"#, b"not json", br#"{ "a" : 2 }"#, &[0xff, 0xfe, b'{']];
    for v in values {
        producer.send(FutureRecord::<(), [u8]>::to(&topic).payload(v).partition(0), Duration::from_secs(10)).await.unwrap();
    }

    let (dir, local) = local_output();
    let stats = sink::run(sink_config(&names, "dead-letters", local, 1), std::future::pending()).await.unwrap();
    assert_eq!((stats.records_written, stats.dead_letters), (2, 2), "{stats:?}");
    let read = |key: String| std::fs::read(dir.path().join(&key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(read(pipeline_sink::dead_letter_key(&topic, 0, 1)), b"not json");
    assert_eq!(read(pipeline_sink::dead_letter_key(&topic, 0, 3)), [0xff, 0xfe, b'{']);
    assert_eq!(read(pipeline_sink::object_key(&topic, 0, 0)), b"{\"a\":1}\n");
    assert_eq!(read(pipeline_sink::object_key(&topic, 0, 2)), b"{\"a\":2}\n", "stored compact, one line");
}

/// A steady trickle (a record every 40 ms, never idle long enough for the
/// worker's 100 ms poll to time out) with flush.size far above what
/// arrives: objects still land every rotate interval while records keep
/// coming, not only once the stream pauses.
#[tokio::test(flavor = "multi_thread")]
async fn a_steady_trickle_below_flush_size_lands_every_rotate_interval() {
    use rdkafka::producer::FutureRecord;
    let (names, topic, producer) = one_partition_topic().await;

    let (dir, local) = local_output();
    let mut config = sink_config(&names, "trickle", local.clone(), 1000);
    config.rotate_interval = Duration::from_millis(300);
    config.stop = StopWhen::Never;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let objects_now = || {
        let partition_dir = dir.path().join(format!("topics/{topic}/partition=0"));
        std::fs::read_dir(partition_dir).map(|d| d.count()).unwrap_or(0)
    };
    let records = 100u64;
    let sending = async {
        let mut written_while_sending = 0;
        for i in 0..records {
            let value = format!(r#"{{"i":{i}}}"#);
            producer.send(FutureRecord::<(), str>::to(&topic).payload(&value).partition(0), Duration::from_secs(10)).await.unwrap();
            written_while_sending = objects_now();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        stop.send(()).unwrap();
        written_while_sending
    };
    let shutdown = async {
        stopped.await.ok();
    };
    let (stats, written_while_sending) = tokio::join!(sink::run(config, shutdown), sending);
    assert!(written_while_sending >= 2, "objects were cut while records kept arriving: {written_while_sending}");
    let stats = stats.unwrap();
    assert_eq!(stats.records_written, records, "{stats:?}");
    let (stored, _) = sink_content(&local, &names).await;
    let expected: BTreeMap<_, _> = (0..records as i64).map(|i| ((topic.clone(), 0, i), format!(r#"{{"i":{i}}}"#).into_bytes())).collect();
    assert_eq!(stored, expected);
}

/// Draining with no wait for late records: each partition's objects are
/// cut at flush.size and its tail is written when reading reaches the
/// partition's end (not held for the rotate interval, an hour here), and a
/// second drain resumes after the commit with an object of its own.
#[tokio::test]
async fn draining_cuts_at_flush_size_and_writes_the_tail_at_the_partitions_end() {
    use rdkafka::producer::FutureRecord;
    let (names, topic, producer) = one_partition_topic().await;
    let send = |range: std::ops::Range<u64>| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            for i in range {
                let value = format!(r#"{{"i":{i}}}"#);
                producer.send(FutureRecord::<(), str>::to(&topic).payload(&value).partition(0), Duration::from_secs(10)).await.unwrap();
            }
        }
    };
    let (dir, local) = local_output();
    let mut config = sink_config(&names, "drain", local.clone(), 10);
    config.rotate_interval = Duration::from_secs(3600);
    config.stop = StopWhen::CaughtUp { idle: Duration::ZERO };
    let objects = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(format!("topics/{topic}/partition=0")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let key = |start: i64| pipeline_sink::object_key(&topic, 0, start).rsplit('/').next().unwrap().to_string();

    send(0..25).await;
    let stats = sink::run(config.clone(), std::future::pending()).await.unwrap();
    assert_eq!((stats.records_written, stats.objects_written), (25, 3), "{stats:?}");
    assert_eq!(objects(), [key(0), key(10), key(20)]);
    let tail = std::fs::read_to_string(dir.path().join(pipeline_sink::object_key(&topic, 0, 20))).unwrap();
    assert_eq!(tail.lines().count(), 5, "the tail holds the partition's last five records");

    send(25..30).await;
    let stats = sink::run(config, std::future::pending()).await.unwrap();
    assert_eq!((stats.records_written, stats.objects_written, stats.stale_objects_removed), (5, 1, 0), "{stats:?}");
    assert_eq!(objects(), [key(0), key(10), key(20), key(25)]);
    let (stored, _) = sink_content(&local, &names).await;
    let expected: BTreeMap<_, _> = (0..30).map(|i| ((topic.clone(), 0, i), format!(r#"{{"i":{i}}}"#).into_bytes())).collect();
    assert_eq!(stored, expected);
}

/// Two workers in one group while records keep arriving: the second one's
/// join, and the first one's leaving, move partitions between them while
/// objects are being uploaded (through a relay that slows S3 down). Each partition's objects from both workers
/// together hold every record once.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_moving_between_two_workers_lose_and_repeat_nothing() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    common::require_kafka().await;
    common::set_dummy_aws_env();
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let client = common::s3_client().await;
    aws_setup::s3::ensure_bucket(&client, &names.sink_bucket()).await.unwrap();
    let s3 = Location::parse(&format!("s3://{}", names.sink_bucket())).unwrap();
    let producer: FutureProducer =
        pipeline_kafka::reliable_producer_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[], Duration::from_secs(30))
            .create()
            .unwrap();
    let topics = names.topics();

    // Objects cut by time, not size: the next owner of a partition cuts
    // its replay differently, so an object landing late would overlap.
    let mut config = sink_config(&names, "two-workers", s3.clone(), 1000);
    config.rotate_interval = Duration::from_millis(100);
    config.upload_concurrency = 64;
    config.stop = StopWhen::CaughtUp { idle: Duration::from_secs(3) };
    // The first worker reaches S3 through a relay that makes each upload
    // take 700 ms or more, the second directly: when partitions move to the
    // second, the first still has uploads in flight, and the revoke must
    // wait for them, or the second's clean-up of uncommitted objects runs
    // before they land.
    let moto = common::s3_endpoint();
    let relay = common::slow_relay(moto.trim_start_matches("http://"), Duration::from_millis(700)).await;
    let mut slow = config.clone();
    slow.aws.endpoint_url = Some(format!("http://{relay}"));
    let first = tokio::spawn(sink::run(slow, std::future::pending()));

    let stop_producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (stop, topics) = (stop_producing.clone(), topics.clone());
        tokio::spawn(async move {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for topic in &topics {
                    let value = format!(r#"{{"round":{rounds},"topic":"{topic}"}}"#);
                    let key = rounds.to_string();
                    let record = FutureRecord::<str, str>::to(topic).key(&key).payload(&value);
                    producer.send(record, Duration::from_secs(10)).await.unwrap();
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            rounds
        })
    };
    // The second worker joins once the first is writing.
    let store = storage::open(&s3, &common::moto()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed: Vec<_> = store.list(Some(&"topics".into())).try_collect().await.unwrap();
        if !listed.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the first worker wrote nothing within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = tokio::spawn(sink::run(config.clone(), std::future::pending()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_producing.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = producing.await.unwrap();
    let (a, b) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert!(a.records_written > 0 && b.records_written > 0, "both workers wrote: {a:?} {b:?}");

    let in_kafka = kafka_content(&names, rounds * 3).await;
    // sink_content fails on a record stored twice.
    let (stored, _) = sink_content(&s3, &names).await;
    common::report_scenario(&common::ScenarioRow {
        scenario: "partitions moved between two sink workers".into(),
        sent: in_kafka.len() as u64,
        acknowledged: in_kafka.len() as u64,
        stored: stored.len() as u64,
        lost: in_kafka.keys().filter(|k| !stored.contains_key(*k)).count() as u64,
        duplicated: 0,
        good_client_p99: None,
    });
    assert!(stored == in_kafka, "S3 content equals Kafka content");
}

/// Every emulator variant seen in the wild, and records that are not rows,
/// through ingest, Kafka, the sink and the batch job: the tables are what
/// the rows say, every bad record is in the quarantine, and every record
/// read is a row, a dropped duplicate or quarantined.
#[tokio::test]
async fn every_wire_variant_gives_the_expected_tables_and_nothing_goes_unaccounted() {
    use common::wild::{self, VARIANTS};
    common::require_kafka().await;
    common::set_dummy_aws_env();
    let server =
        ingest::start(IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), ..Default::default() })
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let client = common::s3_client().await;
    // Random offsets into a small table: duplicates occur, as in the original.
    let rounds: Vec<_> = SyntheticSource::new(11, 150).random_rounds(3).take(200).collect();
    for variant in VARIANTS {
        let names = common::fresh_names();
        common::create_topics(&names.topics(), 2).await;
        let mut posted = HashMap::new();
        for kind in Kind::ALL {
            let mut values: Vec<serde_json::Value> = rounds.iter().map(|r| variant.encode(kind, r)).collect();
            values.extend(wild::bad_records(kind, &rounds[0]).into_iter().map(|(v, _)| v));
            posted.insert(kind, rounds.len() as u64 + wild::bad_record_count(kind, &rounds[0]));
            for chunk in values.chunks(50) {
                let records: Vec<_> = chunk.iter().map(|v| serde_json::json!({ "value": v })).collect();
                let resp = http
                    .post(format!("http://{}/topics/{}", server.local_addr, names.topic(kind)))
                    .header("Content-Type", pipeline_emulate::JSON_V2)
                    .json(&serde_json::json!({ "records": records }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{variant:?}: {}", resp.text().await.unwrap());
            }
        }
        aws_setup::s3::ensure_bucket(&client, &names.sink_bucket()).await.unwrap();
        let s3 = Location::parse(&format!("s3://{}", names.sink_bucket())).unwrap();
        let stats = sink::run(sink_config(&names, "sink-wild", s3.clone(), 100), std::future::pending()).await.unwrap();
        assert_eq!(stats.dead_letters, 0, "{variant:?}: every value is JSON");

        let out_dir = tempfile::tempdir().unwrap();
        let config = pipeline_batch::BatchConfig {
            input: s3.clone(),
            names: names.clone(),
            aws: common::moto(),
            output: Some(out_dir.path().to_path_buf()),
            strict: false,
        };
        let out = pipeline_batch::run(&config).await.unwrap_or_else(|e| panic!("{variant:?}: the job failed: {e}"));
        let (cleaned, results) = wild::expected_tables(variant, &rounds).await;
        for (ours, want) in out.cleaned.iter().zip(&cleaned) {
            wild::assert_same_rows(
                &format!("{variant:?} {}", ours.name),
                &wild::table_rows(&ours.batches),
                &wild::table_rows(&want.batches),
            );
        }
        // The queries order their output, so order is compared too.
        for (ours, want) in out.results.iter().zip(&results) {
            assert!(want.rows() > 0, "{}: the corpus does not exercise it", want.name);
            wild::assert_same_rows(
                &format!("{variant:?} {}", ours.name),
                &wild::ordered_rows(&ours.batches),
                &wild::ordered_rows(&want.batches),
            );
        }
        let summary: pipeline_batch::CleaningSummary =
            serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary, out.summary);
        for kind in Kind::ALL {
            let s = summary.kind(kind);
            assert_eq!(s.records_read, posted[&kind], "{variant:?} {kind}: every record posted is read");
            assert_eq!(s.records_read, s.rows + s.duplicates_dropped + s.quarantined, "{variant:?} {kind}: {s:?}");
            assert_eq!(s.quarantined, wild::bad_record_count(kind, &rounds[0]), "{variant:?} {kind}");
            assert!(s.duplicates_dropped > 0, "{variant:?} {kind}: the corpus has duplicates");
            assert!(s.unparsed.keys().all(|c| c == "follower_count"), "{variant:?} {kind}: every datetime parses: {:?}", s.unparsed);
            let quarantine = std::fs::read_to_string(out_dir.path().join(format!("quarantine/{kind}.json"))).unwrap();
            let entries: Vec<pipeline_batch::Quarantined> = quarantine.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(entries.len(), wild::bad_records(kind, &rounds[0]).len(), "{variant:?} {kind}: one entry per bad line");
            for e in &entries {
                assert!(e.object.starts_with(&format!("topics/{}/partition=", names.topic(kind))) && e.line >= 1, "{e:?}");
                assert!(!e.reason.is_empty() && !e.raw.is_empty(), "{e:?}");
            }
        }
        // --strict turns the same run into an error that names the quarantine.
        let strict = pipeline_batch::run(&pipeline_batch::BatchConfig { strict: true, ..config }).await.unwrap_err().to_string();
        assert!(strict.contains("--strict") && strict.contains("quarantine"), "{strict}");
    }
    server.stop().await.unwrap();
}

/// Kafka's static membership: a second sink started with the first one's
/// `group.instance.id` fences the first. The first used to log "retrying"
/// for ever, up and moving nothing; now it ends with an error naming the
/// cause, so the process exits non-zero and its supervisor sees it.
#[tokio::test(flavor = "multi_thread")]
async fn a_sink_fenced_by_a_second_with_its_instance_id_ends_with_an_error() {
    common::require_kafka().await;
    let names = common::fresh_names();
    common::create_topics(&names.topics(), 1).await;
    let dir = std::env::temp_dir().join(format!("fenced-{}", names.uid()));
    let local = Location::parse(dir.to_str().unwrap()).unwrap();
    let config = || {
        let mut c = sink_config(&names, "fenced", local.clone(), 1);
        c.stop = StopWhen::Never;
        c.kafka_overrides.push(("group.instance.id".into(), format!("{}-sink-1", names.uid())));
        c
    };
    let first = tokio::spawn(sink::run(config(), std::future::pending()));
    // The first has joined (a static member's join takes a few seconds).
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!first.is_finished(), "the first sink runs until it is fenced");
    let (stop_second, stopped) = tokio::sync::oneshot::channel::<()>();
    let second = tokio::spawn(sink::run(config(), async move {
        let _ = stopped.await;
    }));
    let ended = tokio::time::timeout(Duration::from_secs(90), first).await.expect("the fenced sink ends on its own").unwrap();
    let err = ended.expect_err("fenced is an error").to_string();
    assert!(err.contains("stopped for good") && err.contains("group.instance.id"), "{err}");
    let _ = stop_second.send(());
    let _ = tokio::time::timeout(Duration::from_secs(60), second).await;
    let _ = std::fs::remove_dir_all(dir);
}

//! `pipeline emulate --source mysql://...` against the local MariaDB: the
//! original emulator's database and query, end to end into Kafka.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use contract::Kind;
use mysql_async::prelude::Queryable;
use pipeline_emulate::generate::{SyntheticSource, random_offsets};
use pipeline_emulate::mysql_source::{self as mysql_source, MysqlSource, MysqlSourceError};
use pipeline_emulate::{self as emulate, EmulateConfig, EmulateError, RowSource};
use pipeline_ingest::{self as ingest, IngestConfig};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

/// A database of its own on the local MariaDB; returns its URL.
async fn fresh_database() -> String {
    let base = common::mysql_url();
    let pool = mysql_async::Pool::new(mysql_async::Opts::from_url(&base).unwrap());
    let mut conn = tokio::time::timeout(Duration::from_secs(20), pool.get_conn())
        .await
        .expect("MariaDB answers")
        .expect("these tests need the local stack's MariaDB: run them with `cargo xtask test` (or `cargo xtask local up` first)");
    let name = format!("src_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    conn.query_drop(format!("CREATE DATABASE {name}")).await.unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    url.to_string()
}

async fn consume(topic: &str, expected: usize) -> Vec<Vec<u8>> {
    let consumer: StreamConsumer = pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[])
        .set("group.id", format!("check-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < expected {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("records arrive").unwrap();
        out.push(m.payload().unwrap_or_default().to_vec());
    }
    assert!(tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await.is_err(), "no extra records in {topic}");
    out
}

fn counted<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut map = HashMap::new();
    for i in items {
        *map.entry(i).or_default() += 1;
    }
    map
}

#[tokio::test]
async fn rows_read_from_mysql_reach_kafka_unchanged() {
    common::require_kafka().await;
    let url = fresh_database().await;
    let tables = SyntheticSource::new(77, 150);
    assert_eq!(mysql_source::seed(&url, &tables, false).await.unwrap(), 150);

    // Seeding again would mix two data sets: refused unless asked.
    let err = mysql_source::seed(&url, &tables, false).await.unwrap_err();
    assert!(matches!(err, MysqlSourceError::NotEmpty { rows: 150, .. }), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");

    let source = MysqlSource::connect(&url).await.unwrap();
    assert_eq!(source.rows(), 150);
    // What the database gives back is what was put in, typed columns included
    // (DATETIME as `YYYY-MM-DD HH:MM:SS`, DOUBLE exact).
    for offset in [0, 1, 77, 149] {
        assert_eq!(source.round(offset).await.unwrap(), tables.round(offset), "row at offset {offset}");
    }

    let names = common::fresh_names();
    common::create_topics(&names.topics(), 3).await;
    let server =
        ingest::start(IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), ..Default::default() })
            .await
            .unwrap();
    let rounds = 60;
    let summary = emulate::run(EmulateConfig {
        mode: Default::default(),
        target: format!("http://{}", server.local_addr),
        names: names.clone(),
        source: RowSource::Mysql(source.clone()),
        rounds: Some(rounds),
        duration: None,
        rate: None,
        batch: 1,
        concurrency: 4,
        retries: 0,
        offset_seed: 5,
        progress: false,
        api_key: None,
    })
    .await
    .unwrap();
    assert_eq!((summary.sent, summary.acked, summary.failed), (rounds * 3, rounds * 3, 0), "{summary}");

    // Each topic holds exactly the rows at the drawn offsets, byte for byte
    // as the record types serialise them; the three share `ind`.
    let offsets: Vec<u64> = random_offsets(5, 150).take(rounds as usize).collect();
    for kind in Kind::ALL {
        let got = consume(&names.topic(kind), rounds as usize).await;
        let want = offsets.iter().map(|&o| serde_json::to_vec(&tables.round(o).value(kind)).unwrap());
        assert_eq!(counted(got), counted(want), "{kind} records");
    }

    // The CLI path: `--source` from the environment, password kept out of the output.
    // tokio's Command: this runtime has one thread, and it serves the ingest server.
    let out = tokio::process::Command::new(common::pipeline_bin())
        .args(["emulate", "--uid", names.uid(), "--count", "4", "--target"])
        .arg(format!("http://{}", server.local_addr))
        .env("PIPELINE_SOURCE", &url)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("12 acknowledged") && text.contains("150 rows per table"), "{text}");
    assert!(!text.contains(":pipeline@"), "password shown: {text}");
    source.close().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn source_problems_are_named_with_the_fix() {
    let url = fresh_database().await;
    // Tables there but empty: the emulator cannot draw a row.
    mysql_source::seed(&url, &SyntheticSource::new(1, 5), false).await.unwrap();
    let pool = mysql_async::Pool::new(mysql_async::Opts::from_url(&url).unwrap());
    pool.get_conn().await.unwrap().query_drop("DELETE FROM user_data").await.unwrap();
    let err = MysqlSource::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("`user_data` is empty") && err.contains("pipeline seed-mysql"), "{err}");

    // A NULL where a record needs a value names table, offset and column.
    pool.get_conn().await.unwrap().query_drop("DROP TABLE user_data").await.unwrap();
    pool.get_conn()
        .await
        .unwrap()
        .query_drop(
            "CREATE TABLE user_data (ind INT PRIMARY KEY, first_name VARCHAR(9), last_name VARCHAR(9), age INT, date_joined DATETIME)",
        )
        .await
        .unwrap();
    pool.get_conn()
        .await
        .unwrap()
        .query_drop("INSERT INTO user_data VALUES (0,'A','B',30,'2020-01-02 03:04:05'),(1,'C',NULL,31,'2020-01-02 03:04:05')")
        .await
        .unwrap();
    let source = MysqlSource::connect(&url).await.unwrap();
    assert_eq!(source.rows(), 2);
    assert_eq!(source.round(0).await.unwrap().user.date_joined, "2020-01-02 03:04:05");
    let err = source.round(1).await.unwrap_err().to_string();
    assert!(err.contains("`user_data` row at offset 1, column `last_name`: NULL"), "{err}");

    // The emulator stops on it and still reports what it sent.
    let summary = emulate::run(EmulateConfig {
        mode: Default::default(),
        target: "http://127.0.0.1:9".into(),
        names: common::fresh_names(),
        source: RowSource::Mysql(source),
        rounds: Some(50),
        duration: None,
        rate: None,
        batch: 1,
        concurrency: 1,
        retries: 0,
        offset_seed: 3,
        progress: false,
        api_key: None,
    })
    .await;
    match summary {
        Err(EmulateError::Source { source, summary }) => {
            assert!(matches!(source, MysqlSourceError::Column { offset: 1, column: "last_name", .. }), "{source}");
            assert_eq!(summary.sent % 3, 0, "whole rounds only: {summary}");
        }
        other => panic!("expected a source error, got {other:?}"),
    }

    // A wrong password: the server's refusal, without the password.
    let mut wrong = url::Url::parse(&url).unwrap();
    wrong.set_password(Some("not-the-password")).unwrap();
    let err = MysqlSource::connect(wrong.as_str()).await.unwrap_err().to_string();
    assert!(err.contains("Access denied") && !err.contains("not-the-password"), "{err}");
    pool.disconnect().await.unwrap();
}

//! Hostile clients against the ingest server: stalled and slow bodies, many
//! of them at once, bodies without a length, deep nesting, garbage instead
//! of HTTP. Each gets its documented answer (or the connection closed), and
//! a well-behaved client is served throughout.

use crate::common;

use std::time::{Duration, Instant};

use contract::Kind;
use pipeline_ingest::{self as ingest, IngestConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// Send raw bytes, then wait (up to `wait`) for the answer; returns the
/// status line's code and the body, or None if the server closed silently.
async fn raw(addr: std::net::SocketAddr, head_and_body: &[u8], hold_open: Duration, wait: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head_and_body).await.unwrap();
    tokio::time::sleep(hold_open).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
}

async fn good_post(base: &str, topic: &str) -> (u16, Duration) {
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{base}/topics/{topic}"))
        .header("Content-Type", JSON_V2)
        .json(&json!({"records": [{"value": {"ind": 1}}]}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), started.elapsed())
}

fn error_code(body: &str) -> Option<i64> {
    serde_json::from_str::<Value>(body.trim()).ok()?["error_code"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_get_their_answers_and_others_are_served_meanwhile() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        max_body_bytes: 64 * 1024,
        body_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = ingest::start(config).await.unwrap();
    let addr = server.local_addr;
    let base = format!("http://{addr}");
    let head = |len: Option<usize>| {
        let length = len.map_or("Transfer-Encoding: chunked\r\n".to_string(), |n| format!("Content-Length: {n}\r\n"));
        format!("POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON_V2}\r\n{length}Connection: close\r\n\r\n")
    };
    let mut table = Vec::new();

    // 50 clients promise 1,000 bytes, send 10, and stall.
    let stalled: Vec<_> = (0..50)
        .map(|_| {
            let req = format!("{}{{\"records\"", head(Some(1000)));
            tokio::spawn(async move { raw(addr, req.as_bytes(), Duration::ZERO, Duration::from_secs(5)).await })
        })
        .collect();
    // While they stall, a normal client is answered promptly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took) = good_post(&base, &topic).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "a normal request waited {took:?} behind stalled ones");
    for s in stalled {
        let (code, body) = s.await.unwrap().expect("a stalled client gets an answer, not silence");
        assert_eq!((code, error_code(&body)), (408, Some(408)), "{body}");
    }
    table.push(("50 stalled bodies", "408 each after 1 s"));

    // A chunked body (no length) larger than the limit: 413 once it passes it.
    let mut chunked = head(None).into_bytes();
    for _ in 0..100 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 1024, "a".repeat(1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (code, body) = raw(addr, &chunked, Duration::ZERO, Duration::from_secs(5)).await.unwrap();
    assert_eq!((code, error_code(&body)), (413, Some(413)), "{body}");
    table.push(("100 KiB chunked body, limit 64 KiB", "413"));

    // Deeply nested JSON: a parse error, not a stack overflow.
    let deep = format!("{{\"records\":[{{\"value\":{}1{}}}]}}", "[".repeat(20_000), "]".repeat(20_000));
    let (code, body) =
        raw(addr, format!("{}{deep}", head(Some(deep.len()))).as_bytes(), Duration::ZERO, Duration::from_secs(5)).await.unwrap();
    assert_eq!((code, error_code(&body)), (422, Some(42203)), "{body}");
    table.push(("20,000-deep nesting", "422 42203"));

    // Not HTTP at all: the connection is refused an answer or gets 400.
    let garbage = raw(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n", Duration::ZERO, Duration::from_secs(2)).await;
    assert!(garbage.is_none() || garbage.as_ref().is_some_and(|(c, _)| *c == 400), "{garbage:?}");
    table.push(("TLS bytes / garbage", "closed or 400"));

    // Still serving, and what it stored is only the good records.
    assert_eq!(good_post(&base, &topic).await.0, 200);
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pipeline_ingest_records_total{outcome=\"acknowledged\"} 2"), "{metrics}");
    assert!(metrics.contains("pipeline_ingest_http_responses_total{status=\"408\"} 50"), "{metrics}");
    server.stop().await.unwrap();

    println!("{:<36} answer", "scenario");
    for (scenario, answer) in table {
        println!("{scenario:<36} {answer}");
    }
}

/// A few hundred connections that hold sockets without finishing a request
/// (idle ones, and heads sent a byte at a time) beside a good client: every
/// good request is answered within a second, every acknowledged record is
/// in Kafka once, and the server closes the others after the header
/// timeout. Before the timeout existed they stayed open for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_leave_a_good_client_served_within_a_second() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let header_timeout = Duration::from_secs(3);
    let config =
        IngestConfig { listen: "127.0.0.1:0".parse().unwrap(), bootstrap: common::bootstrap(), header_timeout, ..Default::default() };
    let server = ingest::start(config).await.unwrap();
    let addr = server.local_addr;
    let base = format!("http://{addr}");
    // The first request looks up the topic's metadata: before the abuse,
    // so that the figure is the server's under load, not a cold cache.
    assert_eq!(good_post(&base, &topic).await.0, 200);

    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Each slow client sends its head a byte every 200 ms (it would take
    // 15 s), and notes when the server closed the connection.
    let head = format!("POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON_V2}\r\n\r\n");
    let slow: Vec<_> = (0..100)
        .map(|_| {
            let head = head.clone().into_bytes();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0u8; 256];
                for byte in head {
                    if s.write_all(&[byte]).await.is_err() {
                        return Some(started.elapsed());
                    }
                    if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect();

    let rounds = 40;
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut acknowledged = 0;
    for round in 0..rounds {
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/topics/{topic}"))
            .header("Content-Type", JSON_V2)
            .json(&json!({"records": [{"value": {"round": round}}]}))
            .send()
            .await
            .unwrap();
        latencies.push(started.elapsed());
        if resp.status() == 200 {
            acknowledged += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    assert_eq!(acknowledged, rounds, "every good request is answered 200");
    assert!(p99 < Duration::from_secs(1), "a good client's p99 was {p99:?} beside slow and idle connections");

    for s in slow {
        let closed = s.await.unwrap().expect("the server closes a head that never ends");
        assert!(closed < header_timeout + Duration::from_secs(3), "closed only after {closed:?}");
    }
    for mut s in idle {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "an idle connection is still open after the header timeout");
    }

    let stored = common::consume_all(&topic, rounds + 1).await;
    let rounds_stored: std::collections::BTreeSet<i64> =
        stored.values().filter_map(|v| serde_json::from_slice::<Value>(v).unwrap()["round"].as_i64()).collect();
    assert_eq!(rounds_stored.len(), rounds, "each round once");
    common::report_scenario(&common::ScenarioRow {
        scenario: "ingest: 200 idle + 100 slow heads beside a good client".into(),
        sent: rounds as u64,
        acknowledged: acknowledged as u64,
        stored: rounds_stored.len() as u64,
        lost: (rounds - rounds_stored.len()) as u64,
        duplicated: (stored.len() - 1 - rounds_stored.len()) as u64,
        good_client_p99: Some(p99),
    });
    server.stop().await.unwrap();
}

/// The in-flight body budget is taken as bytes arrive. Clients that
/// declare large bodies and send nothing hold none of it, so a normal
/// request is served at once (it waited out the body timeout when the
/// declared length was reserved up front); bytes that did arrive are held,
/// and a request that finds no room gets 429 with Retry-After at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_budget_follows_the_bytes_that_arrive() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(Kind::Pin);
    common::create_topics(std::slice::from_ref(&topic), 1).await;
    let mib = 1 << 20;
    let config = IngestConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: common::bootstrap(),
        max_body_bytes: mib,
        max_inflight_body_bytes: mib,
        body_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let server = ingest::start(config).await.unwrap();
    let addr = server.local_addr;
    let base = format!("http://{addr}");
    let head = |len: usize| {
        format!("POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON_V2}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };

    // Warm: the first request looks up the topic's metadata.
    assert_eq!(good_post(&base, &topic).await.0, 200);
    let mut promised = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head(mib).as_bytes()).await.unwrap();
        promised.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took) = good_post(&base, &topic).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "a normal request waited {took:?} behind bodies declared and never sent");
    let stored = common::consume_all(&topic, 2).await;
    common::report_scenario(&common::ScenarioRow {
        scenario: "ingest: 8 bodies declared, never sent; a good client".into(),
        sent: 2,
        acknowledged: 2,
        stored: stored.len() as u64,
        lost: 2 - stored.len() as u64,
        duplicated: 0,
        good_client_p99: Some(took),
    });

    // 900 KiB of a promised MiB arrive, then nothing: those bytes are held.
    let mut filler = TcpStream::connect(addr).await.unwrap();
    filler.write_all(head(mib).as_bytes()).await.unwrap();
    filler.write_all(&vec![b' '; 900 * 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let big = json!({"records": [{"value": "x".repeat(200 * 1024)}]}).to_string();
    let started = Instant::now();
    let resp =
        reqwest::Client::new().post(format!("{base}/topics/{topic}")).header("Content-Type", JSON_V2).body(big).send().await.unwrap();
    let took = started.elapsed();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    assert_eq!((resp.status().as_u16(), retry_after.as_deref()), (429, Some("1")));
    assert!(took < Duration::from_secs(2), "429 only after {took:?}");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        common::metric_value(&metrics, "pipeline_ingest_refusals_total{reason=\"body_budget\"}").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    drop((promised, filler));
    server.stop().await.unwrap();
}

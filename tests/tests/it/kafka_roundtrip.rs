//! Produce to and consume from the real local broker.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn records_produced_are_consumed_back_byte_for_byte() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let topic = names.topic(contract::Kind::Pin);
    let created = common::create_topics(std::slice::from_ref(&topic), 3).await;
    assert_eq!(created, vec![topic.clone()]);
    // A second call finds it there and creates nothing.
    assert!(common::create_topics(std::slice::from_ref(&topic), 3).await.is_empty());

    let producer: FutureProducer = pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[])
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let source = pipeline_emulate::generate::SyntheticSource::new(3, 1000);
    let mut sent = HashMap::new();
    for i in 0..200u64 {
        let value = serde_json::to_vec(&source.round(i).pin).unwrap();
        let key = format!("k{i}");
        let rec = FutureRecord::to(&topic).key(&key).payload(&value);
        let delivery = producer.send(rec, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
        sent.insert((delivery.partition, delivery.offset), (key, value));
    }
    assert_eq!(sent.len(), 200, "every record got its own offset");

    let consumer: StreamConsumer = pipeline_kafka::client_config(&common::bootstrap(), &pipeline_kafka::KafkaAuth::none(), &[])
        .set("group.id", format!("{}-roundtrip", names.uid()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = HashMap::new();
    while received.len() < sent.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("all records arrive within 30s").unwrap();
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        received.insert((m.partition(), m.offset()), (key, m.payload().unwrap().to_vec()));
    }
    assert_eq!(received, sent);
    let partitions: std::collections::HashSet<_> = received.keys().map(|(p, _)| *p).collect();
    assert!(partitions.len() > 1, "keys spread over the three partitions");
    pipeline_kafka::delete_topics(&common::bootstrap(), &[&topic]).await.unwrap();
}

/// `pipeline topics create` with client settings the broker does not speak
/// (SASL against the local plaintext listener) fails at once, naming the
/// refused authentication with librdkafka's reason and the settings to
/// check (not the MSK IAM advice: no --kafka-auth was given), and without
/// the password.
#[tokio::test]
async fn topics_create_with_settings_the_broker_refuses_says_why() {
    common::require_kafka().await;
    let names = common::fresh_names();
    let password = "sasl.password=do-not-print-this-7f3a";
    let started = std::time::Instant::now();
    let run = tokio::process::Command::new(common::pipeline_bin())
        .args(["topics", "create", "--uid", names.uid(), "--bootstrap-servers", &common::bootstrap(), "--wait-secs", "30"])
        .args(["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=u", "-X", password])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("gives up").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "a refusal does not wait out --wait-secs: {stderr}");
    assert!(stderr.contains("refused our authentication"), "names what failed: {stderr}");
    assert!(stderr.contains("SASL"), "gives librdkafka's reason: {stderr}");
    assert!(stderr.contains("security.protocol") && !stderr.contains("kafka-cluster:Connect"), "names the settings to check: {stderr}");
    assert!(!stderr.contains("do-not-print-this"), "{stderr}");
}

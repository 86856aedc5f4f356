//! Kafka client settings and topic administration shared by the ingest
//! server, the sink and the tooling.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;

/// Default bootstrap address of the local stack (`cargo xtask local up`).
pub const LOCAL_BOOTSTRAP: &str = "127.0.0.1:19092";

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client { bootstrap: String, source: rdkafka::error::KafkaError },
    #[error(
        "no Kafka broker answered at {bootstrap} within {waited:?}: {detail}. \
         Start the local stack with `cargo xtask local up`, or pass --bootstrap-servers"
    )]
    Unreachable { bootstrap: String, waited: Duration, detail: String },
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
    #[error("Kafka admin request failed: {0}")]
    Admin(rdkafka::error::KafkaError),
}

/// Base client config: the bootstrap servers plus any `key=value` overrides
/// (e.g. the MSK IAM settings of client.properties).
pub fn client_config(bootstrap: &str, overrides: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    // librdkafka logs broker disconnects at error level; our own errors say more.
    cfg.set("log_level", "3");
    for (k, v) in overrides {
        cfg.set(k, v);
    }
    cfg
}

/// A producer that loses nothing it acknowledged and writes nothing twice:
/// idempotent, acks=all, and keyed records land where the Java client (and
/// so the original REST proxy) would put them. Used by the ingest server and
/// by the direct producer the benchmarks compare it with.
pub fn reliable_producer_config(bootstrap: &str, overrides: &[(String, String)], delivery_timeout: Duration) -> ClientConfig {
    let mut cfg = client_config(bootstrap, overrides);
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", delivery_timeout.as_millis().to_string());
    cfg
}

/// Parse `key=value` pairs given on a command line.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not a key=value librdkafka setting"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Wait until a broker answers a metadata request, or fail naming the fix.
pub async fn wait_ready(bootstrap: &str, timeout: Duration) -> Result<Vec<i32>, KafkaError> {
    let cfg = client_config(bootstrap, &[]);
    let admin: AdminClient<DefaultClientContext> = cfg
        .create()
        .map_err(|source| KafkaError::Client { bootstrap: bootstrap.to_string(), source })?;
    let start = std::time::Instant::now();
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let mut last = String::from("no answer");
        while start.elapsed() < timeout {
            match admin.inner().fetch_metadata(None, Duration::from_secs(2)) {
                Ok(md) if !md.brokers().is_empty() => {
                    return Ok(md.brokers().iter().map(|b| b.id()).collect());
                }
                Ok(_) => last = "metadata without brokers".into(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(KafkaError::Unreachable { bootstrap, waited: timeout, detail: last })
    })
    .await
    .expect("metadata thread does not panic")
}

/// Create topics that do not exist yet; existing ones are left as they are.
/// Returns the names that were created.
pub async fn ensure_topics(
    bootstrap: &str,
    overrides: &[(String, String)],
    topics: &[String],
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, overrides)
        .create()
        .map_err(|source| KafkaError::Client { bootstrap: bootstrap.to_string(), source })?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(&new, &opts).await.map_err(KafkaError::Admin)?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    // Metadata reaches all brokers shortly after creation; producers that
    // start right away would otherwise see "unknown topic".
    if !created.is_empty() {
        let names: Vec<String> = topics.to_vec();
        let cfg = client_config(bootstrap, overrides);
        tokio::task::spawn_blocking(move || {
            let consumer: rdkafka::consumer::BaseConsumer = match cfg.create() {
                Ok(c) => c,
                Err(_) => return,
            };
            for _ in 0..40 {
                let ready = names.iter().all(|t| {
                    consumer
                        .fetch_metadata(Some(t), Duration::from_secs(2))
                        .map(|md| md.topics().iter().any(|mt| mt.error().is_none() && !mt.partitions().is_empty()))
                        .unwrap_or(false)
                });
                if ready {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .ok();
    }
    Ok(created)
}

/// Delete topics (test clean-up); missing topics are not an error.
pub async fn delete_topics(bootstrap: &str, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, &[])
        .create()
        .map_err(|source| KafkaError::Client { bootstrap: bootstrap.to_string(), source })?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.delete_topics(topics, &opts).await.map_err(KafkaError::Admin)? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

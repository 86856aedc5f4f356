//! `pipeline status`: where the deployment's data stands, for one uid. The
//! three topics' end offsets, the sink group's committed offsets and lag,
//! the objects under the sink prefix, the Delta tables' versions and row
//! counts, and the last batch run's cleaning summary. Each part is read from
//! wherever it lives (local stack or AWS); a part that cannot be read says
//! why and the others are still shown.

use std::path::PathBuf;
use std::time::Duration;

use contract::Names;
use futures::TryStreamExt;
use object_store::path::Path;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use pipeline_storage::Location;

/// Where the deployment's data stands: the three topics' end offsets, the
/// sink group's committed offsets and lag, the objects under the sink
/// prefix, the Delta tables' versions and row counts, and the last batch
/// run's cleaning summary. A part that cannot be read says why; the
/// others are still shown.
#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub kafka: pipeline_kafka::KafkaArgs,
    #[command(flatten)]
    pub uid: pipeline_runtime::UidArg,
    #[command(flatten)]
    pub aws: aws_setup::AwsArgs,
    #[command(flatten)]
    pub sink: crate::SinkLocationArg,
    /// The sink's consumer group (default <uid>-connector).
    #[arg(long)]
    pub group_id: Option<String>,
    /// Where `pipeline stream` writes the Delta tables (not looked at unless given).
    #[arg(long)]
    pub delta: Option<String>,
    /// The batch job's --output directory, for its summary.json (not looked at unless given).
    #[arg(long)]
    pub batch_output: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

impl StatusArgs {
    pub async fn config(self) -> anyhow::Result<StatusConfig> {
        let names = self.uid.names()?;
        Ok(StatusConfig {
            kafka_auth: self.kafka.auth().await?,
            bootstrap: self.kafka.bootstrap_servers,
            kafka_overrides: self.kafka.kafka_setting,
            group_id: self.group_id.unwrap_or_else(|| names.connector()),
            sink: Some(self.sink.location(&names)?),
            delta: self.delta.as_deref().map(Location::parse).transpose()?,
            batch_output: self.batch_output,
            aws: self.aws.target(),
            timeout: Duration::from_secs(10),
            names,
        })
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let json = self.json;
        let status = collect(&self.config().await?).await;
        if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            print!("{status}");
        }
        Ok(())
    }
}

/// What to look at; a part left `None` is not looked at.
#[derive(Debug, Clone)]
pub struct StatusConfig {
    pub names: Names,
    pub bootstrap: String,
    pub kafka_overrides: Vec<(String, String)>,
    pub kafka_auth: pipeline_kafka::KafkaAuth,
    /// The sink's consumer group (`<uid>-connector` by default).
    pub group_id: String,
    pub sink: Option<Location>,
    pub delta: Option<Location>,
    /// The batch job's `--output` directory (its `summary.json`).
    pub batch_output: Option<PathBuf>,
    pub aws: aws_setup::AwsTarget,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionStatus {
    pub partition: i32,
    pub end_offset: i64,
    /// The sink group's committed offset; `None` before its first commit.
    pub committed: Option<i64>,
    pub lag: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicStatus {
    pub topic: String,
    pub partitions: Vec<PartitionStatus>,
    pub end_offset: i64,
    pub lag: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObjectsStatus {
    pub topic: String,
    pub prefix: String,
    pub objects: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeltaStatus {
    pub table: String,
    /// `None`: no table there yet.
    pub version: Option<i64>,
    pub rows: Option<i64>,
}

/// One part's answer, or why it has none.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Part<T> {
    Ok(T),
    Error(String),
    NotAsked,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub uid: String,
    pub kafka: Part<Vec<TopicStatus>>,
    pub sink_objects: Part<Vec<ObjectsStatus>>,
    pub delta_tables: Part<Vec<DeltaStatus>>,
    pub last_batch: Part<serde_json::Value>,
}

pub async fn collect(config: &StatusConfig) -> Status {
    let kafka = match kafka_status(config.clone()).await {
        Ok(t) => Part::Ok(t),
        Err(e) => Part::Error(e),
    };
    let sink_objects = match &config.sink {
        None => Part::NotAsked,
        Some(location) => match objects(config, location).await {
            Ok(o) => Part::Ok(o),
            Err(e) => Part::Error(e),
        },
    };
    let delta_tables = match &config.delta {
        None => Part::NotAsked,
        Some(location) => match delta_tables(config, location).await {
            Ok(t) => Part::Ok(t),
            Err(e) => Part::Error(e),
        },
    };
    let last_batch = match &config.batch_output {
        None => Part::NotAsked,
        Some(dir) => {
            let path = dir.join("summary.json");
            match std::fs::read_to_string(&path) {
                Ok(text) => match serde_json::from_str(&text) {
                    Ok(v) => Part::Ok(v),
                    Err(e) => Part::Error(format!("{} is not a batch summary: {e}", path.display())),
                },
                Err(e) => Part::Error(format!("{}: {e} (has `pipeline batch --output {}` run?)", path.display(), dir.display())),
            }
        }
    };
    Status { uid: config.names.uid().to_string(), kafka, sink_objects, delta_tables, last_batch }
}

/// End offsets and the group's committed offsets, on a consumer that joins
/// nothing (it only asks), in a blocking task.
async fn kafka_status(config: StatusConfig) -> Result<Vec<TopicStatus>, String> {
    tokio::task::spawn_blocking(move || {
        let mut client = pipeline_kafka::client_config(&config.bootstrap, &config.kafka_auth, &config.kafka_overrides);
        client.set("group.id", &config.group_id).set("enable.auto.commit", "false");
        let consumer: BaseConsumer<pipeline_kafka::AuthContext> =
            client.create_with_context(config.kafka_auth.context()).map_err(|e| format!("Kafka client: {e}"))?;
        config.kafka_auth.prime(consumer.client());
        let mut out = Vec::new();
        for topic in config.names.topics() {
            let metadata = consumer
                .fetch_metadata(Some(&topic), config.timeout)
                .map_err(|e| format!("Kafka at {} did not answer ({e}); is it up?", config.bootstrap))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&topic, *p);
            }
            let committed = if partitions.is_empty() {
                TopicPartitionList::new()
            } else {
                consumer.committed_offsets(tpl, config.timeout).map_err(|e| format!("committed offsets of {topic}: {e}"))?
            };
            let mut status = TopicStatus { topic: topic.clone(), partitions: Vec::new(), end_offset: 0, lag: 0 };
            for p in partitions {
                let (_, high) =
                    consumer.fetch_watermarks(&topic, p, config.timeout).map_err(|e| format!("end offset of {topic}/{p}: {e}"))?;
                let committed = committed.find_partition(&topic, p).and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0);
                let lag = high - committed.unwrap_or(0);
                status.end_offset += high;
                status.lag += lag;
                status.partitions.push(PartitionStatus { partition: p, end_offset: high, committed, lag });
            }
            out.push(status);
        }
        Ok(out)
    })
    .await
    .expect("the Kafka status task does not panic")
}

#[cfg(not(feature = "stream"))]
async fn delta_tables(_config: &StatusConfig, _location: &Location) -> Result<Vec<DeltaStatus>, String> {
    Err("this pipeline binary is built without the stream worker (the `stream` feature), so it cannot read Delta tables; \
         run `pipeline status --delta` from a full build"
        .into())
}

#[cfg(feature = "stream")]
async fn delta_tables(config: &StatusConfig, location: &Location) -> Result<Vec<DeltaStatus>, String> {
    // One store for the three tables on S3; a directory is only read.
    let s3_root = match location {
        Location::S3 { .. } => Some(pipeline_storage::open(location, &config.aws).await.map_err(|e| e.to_string())?),
        Location::Local { .. } => None,
    };
    let mut out = Vec::new();
    for kind in contract::Kind::ALL {
        let table = config.names.delta_table(kind);
        let state = pipeline_stream::table_state(location, s3_root.as_ref(), &config.names, kind)
            .await
            .map_err(|e| format!("{table}: {}", short(&e.to_string())))?;
        out.push(DeltaStatus { table, version: state.map(|s| s.0), rows: state.map(|s| s.1) });
    }
    Ok(out)
}

async fn objects(config: &StatusConfig, location: &Location) -> Result<Vec<ObjectsStatus>, String> {
    let store = pipeline_storage::open(location, &config.aws).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for topic in config.names.topics() {
        let prefix = Path::from(location.layout().topic_dir(&topic));
        let listed: Vec<_> =
            store.list(Some(&prefix)).try_collect().await.map_err(|e| format!("listing {location}/{prefix}: {}", short(&e.to_string())))?;
        out.push(ObjectsStatus {
            topic,
            prefix: format!("{location}/{prefix}"),
            objects: listed.len() as u64,
            bytes: listed.iter().map(|o| o.size).sum(),
        });
    }
    Ok(out)
}

/// An S3 error without its XML body: the error code and message in it, if any.
fn short(error: &str) -> String {
    let between = |open: &str, close: &str| error.split_once(open).and_then(|(_, rest)| rest.split_once(close)).map(|(v, _)| v.to_string());
    match (between("<Code>", "</Code>"), between("<Message>", "</Message>")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => error.split("<?xml").next().unwrap_or(error).trim().to_string(),
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "uid {}", self.uid)?;
        writeln!(f, "kafka (end offsets, sink group committed, lag):")?;
        match &self.kafka {
            Part::Ok(topics) => {
                for t in topics {
                    if t.partitions.is_empty() {
                        writeln!(f, "  {:<28} not created (`pipeline topics create`)", t.topic)?;
                        continue;
                    }
                    writeln!(f, "  {:<28} end {:>10}  lag {:>10}  ({} partitions)", t.topic, t.end_offset, t.lag, t.partitions.len())?;
                    for p in &t.partitions {
                        let committed = p.committed.map_or("-".to_string(), |c| c.to_string());
                        writeln!(
                            f,
                            "    partition {:<3} end {:>10}  committed {:>10}  lag {:>10}",
                            p.partition, p.end_offset, committed, p.lag
                        )?;
                    }
                }
            }
            Part::Error(e) => writeln!(f, "  unavailable: {e}")?,
            Part::NotAsked => {}
        }
        match &self.sink_objects {
            Part::Ok(objects) => {
                writeln!(f, "sink objects:")?;
                for o in objects {
                    writeln!(f, "  {:<28} {:>8} objects  {:>12} bytes  {}", o.topic, o.objects, o.bytes, o.prefix)?;
                }
            }
            Part::Error(e) => writeln!(f, "sink objects: unavailable: {e}")?,
            Part::NotAsked => writeln!(f, "sink objects: not asked (give --sink)")?,
        }
        match &self.delta_tables {
            Part::Ok(tables) => {
                writeln!(f, "delta tables:")?;
                for t in tables {
                    match (t.version, t.rows) {
                        (Some(v), Some(r)) => writeln!(f, "  {:<28} version {v:>6}  rows {r:>10}", t.table)?,
                        _ => writeln!(f, "  {:<28} not created yet", t.table)?,
                    }
                }
            }
            Part::Error(e) => writeln!(f, "delta tables: unavailable: {e}")?,
            Part::NotAsked => writeln!(f, "delta tables: not asked (give --delta)")?,
        }
        match &self.last_batch {
            Part::Ok(summary) => writeln!(f, "last batch run: {}", serde_json::to_string(summary).unwrap_or_default())?,
            Part::Error(e) => writeln!(f, "last batch run: unavailable: {e}")?,
            Part::NotAsked => writeln!(f, "last batch run: not asked (give --batch-output)")?,
        }
        Ok(())
    }
}

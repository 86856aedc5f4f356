//! `pipeline topics create`: the deployment's three topics, created if missing.

use anyhow::Result;
use pipeline_kafka::KafkaArgs;
use pipeline_runtime::UidArg;

/// Default partitions of a created topic.
pub const DEFAULT_PARTITIONS: i32 = 3;
/// Default replication factor (1 for the local single broker).
pub const DEFAULT_REPLICATION: i32 = 1;

#[derive(clap::Subcommand, Clone, Debug)]
pub enum TopicsAction {
    /// Create <uid>.pin, <uid>.geo and <uid>.user if missing.
    Create(CreateArgs),
}

#[derive(clap::Args, Clone, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub uid: UidArg,
    #[arg(long, default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: i32,
    #[arg(long, default_value_t = DEFAULT_REPLICATION)]
    pub replication: i32,
    /// Seconds to wait for a broker to answer before giving up (a new
    /// MSK cluster or a starting local broker can take a while).
    #[arg(long, default_value_t = 60.0)]
    pub wait_secs: f64,
}

impl TopicsAction {
    pub async fn run(self) -> Result<()> {
        match self {
            TopicsAction::Create(args) => args.run().await,
        }
    }
}

impl CreateArgs {
    pub async fn run(self) -> Result<()> {
        let names = self.uid.names()?;
        let wait = pipeline_runtime::seconds(self.wait_secs, "--wait-secs")?;
        let kafka = &self.kafka;
        let auth = kafka.auth().await?;
        pipeline_kafka::wait_ready_with(&kafka.bootstrap_servers, &auth, &kafka.kafka_setting, wait).await?;
        let topics = names.topics();
        let created = pipeline_kafka::ensure_topics(
            &kafka.bootstrap_servers,
            &auth,
            &kafka.kafka_setting,
            &topics,
            self.partitions,
            self.replication,
        )
        .await?;
        for t in topics {
            let state = if created.contains(&t) { "created" } else { "exists" };
            println!("{t}\t{state}");
        }
        Ok(())
    }
}

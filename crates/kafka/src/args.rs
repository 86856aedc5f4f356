//! The Kafka flags every command that talks to Kafka flattens in
//! (`ingest`, `sink`, `topics create`, `status`).

use crate::{KafkaAuth, KafkaAuthMode, LOCAL_BOOTSTRAP, parse_override};

#[derive(clap::Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = LOCAL_BOOTSTRAP)]
    pub bootstrap_servers: String,
    /// Extra librdkafka setting, repeatable (e.g. -X security.protocol=SASL_SSL).
    /// Given after --kafka-auth's settings, so they can change those.
    #[arg(short = 'X', value_parser = parse_override)]
    pub kafka_setting: Vec<(String, String)>,
    /// How the clients authenticate. msk-iam: SASL/OAUTHBEARER over TLS
    /// with a token signed by the standard AWS credentials chain (the
    /// instance profile on EC2), for the IAM listener (port 9098) of the
    /// MSK cluster `cargo xtask provision` makes.
    #[arg(long, value_enum, env = "PIPELINE_KAFKA_AUTH", default_value_t = KafkaAuthMode::None)]
    pub kafka_auth: KafkaAuthMode,
    /// Region of the MSK cluster the tokens are for; default: AWS_REGION,
    /// the profile's, the instance's, then us-east-1.
    #[arg(long, value_name = "REGION")]
    pub msk_region: Option<String>,
}

impl KafkaArgs {
    /// The authentication the clients share; for MSK IAM the credentials
    /// are looked up now, so their absence is the first error.
    pub async fn auth(&self) -> Result<KafkaAuth, aws_setup::msk_iam::MskIamError> {
        KafkaAuth::resolve(self.kafka_auth, self.msk_region.clone()).await
    }
}

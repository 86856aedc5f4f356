//! Names and tags of one deployment ("stack"): every resource name derives
//! from the user id (SPEC 1), and every resource carries the stack tag, by
//! which `status` and `teardown` find them.

use templates::config::PipelineConfig;

pub use contract::STACK_TAG;

#[derive(Debug, Clone)]
pub struct StackNames {
    pub uid: String,
    pub sink_bucket: String,
    pub dags_bucket: String,
    /// IAM path of every role and instance profile of the stack, so that
    /// ListRoles with this prefix finds exactly them.
    pub iam_path: String,
    pub ec2_role: String,
    pub connect_role: String,
    pub kinesis_role: String,
    pub mwaa_role: String,
    /// What the Databricks notebooks run as: an instance profile on classic
    /// compute, or a Unity Catalog storage/service credential.
    pub databricks_role: String,
    pub databricks_profile: String,
    pub instance_profile: String,
    pub key_pair: String,
    pub security_group: String,
    pub mwaa_security_group: String,
    /// The S3 gateway endpoint of the original path (MSK Connect's way to S3).
    pub s3_endpoint: String,
    pub instance: String,
    pub cluster: String,
    pub plugin: String,
    pub connector: String,
    pub api: String,
    pub usage_plan: String,
    pub api_key: String,
    /// File (under the key directory) of the secret API Gateway adds to
    /// what it forwards to the REST port.
    pub gateway_secret: String,
    pub streams: Vec<String>,
    pub mwaa_environment: String,
    pub airflow_connections_prefix: String,
}

impl StackNames {
    pub fn new(config: &PipelineConfig) -> Self {
        let n = config.names();
        Self {
            sink_bucket: config.sink_bucket_name(),
            dags_bucket: config.dags_bucket_name(),
            iam_path: n.iam_path(),
            ec2_role: n.resource("ec2-access-role"),
            connect_role: n.resource("msk-connect-role"),
            kinesis_role: n.resource("kinesis-access-role"),
            mwaa_role: n.resource("mwaa-execution-role"),
            databricks_role: n.resource("databricks-access-role"),
            databricks_profile: n.resource("databricks-access-profile"),
            instance_profile: n.resource("ec2-access-profile"),
            key_pair: n.resource("key-pair"),
            security_group: n.resource("client-sg"),
            mwaa_security_group: n.resource("mwaa-sg"),
            s3_endpoint: n.resource("s3-endpoint"),
            instance: n.resource("kafka-client"),
            cluster: n.cluster(),
            plugin: n.plugin(),
            connector: n.connector(),
            api: n.resource("pipeline-api"),
            usage_plan: n.resource("usage-plan"),
            api_key: n.resource("api-key"),
            gateway_secret: n.resource("gateway-secret"),
            streams: n.streams(),
            mwaa_environment: n.mwaa_environment(),
            airflow_connections_prefix: n.airflow_connections_prefix(),
            uid: n.uid().to_string(),
        }
    }
}

//! Names and tags of one deployment ("stack"): every resource name derives
//! from the user id (SPEC 1), and every resource carries the stack tag, by
//! which `status` and `teardown` find them.

use templates::config::PipelineConfig;

/// Tag key on every resource this tool creates; the value is the uid.
pub const STACK_TAG: &str = "pinterest-pipeline:stack";

/// The Kinesis stream suffixes, in SPEC order.
pub const KINDS: [&str; 3] = ["pin", "geo", "user"];

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
    pub instance_profile: String,
    pub key_pair: String,
    pub security_group: String,
    pub instance: String,
    pub cluster: String,
    pub plugin: String,
    pub connector: String,
    pub api: String,
    pub streams: Vec<String>,
    pub mwaa_environment: String,
}

impl StackNames {
    pub fn new(config: &PipelineConfig) -> Self {
        let uid = config.uid.clone();
        Self {
            sink_bucket: config.sink_bucket_name(),
            dags_bucket: config.airflow.dags_bucket.clone(),
            iam_path: format!("/pinterest-pipeline/{uid}/"),
            ec2_role: format!("{uid}-ec2-access-role"),
            connect_role: format!("{uid}-msk-connect-role"),
            kinesis_role: format!("{uid}-kinesis-access-role"),
            mwaa_role: format!("{uid}-mwaa-execution-role"),
            instance_profile: format!("{uid}-ec2-access-profile"),
            key_pair: format!("{uid}-key-pair"),
            security_group: format!("{uid}-client-sg"),
            instance: format!("{uid}-kafka-client"),
            cluster: format!("{uid}-msk-cluster"),
            plugin: format!("{uid}-plugin"),
            connector: format!("{uid}-connector"),
            api: format!("{uid}-pipeline-api"),
            streams: KINDS.iter().map(|k| templates::config::stream_name(&uid, k)).collect(),
            mwaa_environment: format!("{uid}-mwaa"),
            uid,
        }
    }
}

//! The variables every rendered file draws on: one config file
//! (`pipeline.toml`) plus what provisioning discovered, plus `--set`
//! overrides. Nothing here is a secret: credentials stay in the AWS chain and
//! in Airflow's connection store, never in rendered files.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TemplateError;

/// `pipeline.toml`. Every section and most fields have defaults, so a file
/// holding only `uid = "..."` is valid; fields that only the deployment can
/// tell (bootstrap servers, role ARNs, cluster ids) stay unset until
/// provisioning discovers them or the user sets them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Deployment user id (12 hex characters in the original).
    pub uid: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Port of the REST proxy on the EC2 client (API Gateway forwards to it).
    #[serde(default = "default_rest_proxy_port")]
    pub rest_proxy_port: u16,
    /// The sink bucket; `user-<uid>-bucket` unless set.
    #[serde(default)]
    pub sink_bucket: Option<String>,
    #[serde(default)]
    pub kafka: KafkaVars,
    #[serde(default)]
    pub sink: SinkVars,
    #[serde(default)]
    pub airflow: AirflowVars,
    #[serde(default)]
    pub databricks: DatabricksVars,
    #[serde(default)]
    pub local_airflow: LocalAirflowVars,
    #[serde(default)]
    pub ec2: Ec2Vars,
    #[serde(default)]
    pub connect: ConnectVars,
    #[serde(default)]
    pub kinesis: KinesisVars,
    #[serde(default)]
    pub api_gateway: ApiGatewayVars,
}

pub use contract::{DEFAULT_UID, check_uid};

fn default_region() -> String {
    contract::DEFAULT_REGION.into()
}
fn default_rest_proxy_port() -> u16 {
    8082
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaVars {
    /// MSK bootstrap servers (IAM auth listener, port 9098).
    pub bootstrap_servers: Option<String>,
    /// The EC2 access role the Kafka clients assume (MSK IAM auth).
    pub client_role_arn: Option<String>,
    /// MSK cluster: Kafka version, broker instance type, brokers (a multiple
    /// of the subnets used, one per availability zone), EBS size per broker.
    #[serde(default = "default_msk_version")]
    pub cluster_version: String,
    #[serde(default = "default_broker_type")]
    pub broker_instance_type: String,
    #[serde(default = "default_broker_count")]
    pub broker_count: u32,
    #[serde(default = "default_broker_volume")]
    pub broker_volume_gb: u32,
}

/// The version MSK recommends; the original's 2.8.1 reached its end of
/// support on 2024-09-11, and MSK phases out new clusters on such versions.
fn default_msk_version() -> String {
    "3.8.x".into()
}
fn default_broker_type() -> String {
    "kafka.m5.large".into()
}
fn default_broker_count() -> u32 {
    3
}
fn default_broker_volume() -> u32 {
    100
}

impl Default for KafkaVars {
    fn default() -> Self {
        Self {
            bootstrap_servers: None,
            client_role_arn: None,
            cluster_version: default_msk_version(),
            broker_instance_type: default_broker_type(),
            broker_count: default_broker_count(),
            broker_volume_gb: default_broker_volume(),
        }
    }
}

/// MSK Connect: where the Confluent S3 sink plugin zip comes from (a local
/// path or an http(s) URL; provisioning uploads it to the sink bucket).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectVars {
    pub plugin_source: String,
    pub kafka_connect_version: String,
    pub workers: u32,
}

impl Default for ConnectVars {
    fn default() -> Self {
        Self {
            // The original write-up's plugin (section 5).
            plugin_source: "https://d1i4a15mxbxib1.cloudfront.net/api/plugins/confluentinc/kafka-connect-s3/versions/10.0.3/confluentinc-kafka-connect-s3-10.0.3.zip".into(),
            kafka_connect_version: "2.7.1".into(),
            workers: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisVars {
    pub shard_count: u32,
}

impl Default for KinesisVars {
    fn default() -> Self {
        Self { shard_count: 1 }
    }
}

/// Who may call the deployed API (SPEC 8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiAuth {
    /// Every method needs the deployment's API key, under a usage plan.
    ApiKey,
    /// The original's open API: anyone with the invoke URL may call it.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiGatewayVars {
    pub stage: String,
    pub auth: ApiAuth,
    /// The usage plan: steady requests per second, burst, and a quota of
    /// requests per `quota_period` (DAY, WEEK or MONTH).
    pub throttle_rate_limit: f64,
    pub throttle_burst_limit: i32,
    pub quota_limit: i32,
    pub quota_period: String,
    /// The Kinesis stream management routes (list, describe, create,
    /// delete). Off by default; when on they need IAM-signed requests.
    pub stream_routes: bool,
    /// AWS's published address ranges, read to open the REST port to API
    /// Gateway only: an http(s) URL or a local copy of the file.
    pub ip_ranges_url: String,
}

impl Default for ApiGatewayVars {
    fn default() -> Self {
        Self {
            stage: "prod".into(),
            auth: ApiAuth::ApiKey,
            throttle_rate_limit: 100.0,
            throttle_burst_limit: 200,
            quota_limit: 1_000_000,
            quota_period: "DAY".into(),
            stream_routes: false,
            ip_ranges_url: "https://ip-ranges.amazonaws.com/ip-ranges.json".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkVars {
    pub flush_size: u32,
    pub tasks_max: u32,
}

impl Default for SinkVars {
    fn default() -> Self {
        // The original connector's settings (SPEC 3.3).
        Self { flush_size: 1, tasks_max: 3 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AirflowVars {
    pub owner: String,
    pub retries: u32,
    /// `YYYY-MM-DD`; fixed so that the DAG does not change between renders.
    pub start_date: String,
    /// The DAGs bucket; `airflow-<uid>-dags` unless set.
    pub dags_bucket: Option<String>,
    /// MWAA's Airflow version, for the constraints file of requirements.txt.
    pub version: String,
    pub python_version: String,
    /// MWAA environment class and the two private subnets (with a NAT
    /// route) it runs in; MWAA refuses public subnets, so provisioning
    /// skips the environment until these are set.
    pub environment_class: String,
    pub subnet_ids: Vec<String>,
}

impl Default for AirflowVars {
    fn default() -> Self {
        Self {
            owner: "pinterest-pipeline".into(),
            retries: 1,
            start_date: "2026-01-01".into(),
            dags_bucket: None,
            version: "2.10.3".into(),
            python_version: "3.11".into(),
            environment_class: "mw1.small".into(),
            subnet_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabricksVars {
    /// What runs the DAG's notebook: see [`DatabricksCompute`].
    pub compute: DatabricksCompute,
    /// The all-purpose cluster of `compute = "existing_cluster"`.
    pub cluster_id: Option<String>,
    /// The job cluster of `compute = "job_cluster"`: runtime (an LTS),
    /// node type, workers, and the instance profile it reads S3 with (the
    /// one `provision` creates for Databricks, unless set otherwise).
    pub spark_version: String,
    pub node_type_id: String,
    pub num_workers: u32,
    pub instance_profile_arn: Option<String>,
    /// Your Databricks account id: `provision` then lets Unity Catalog
    /// assume the Databricks role (a storage or service credential), not
    /// only EC2 (an instance profile of classic compute).
    pub account_id: Option<String>,
    /// A notebook run taking longer is cancelled, by Databricks (the run's
    /// `timeout_seconds`) and by Airflow (the task's `execution_timeout`).
    pub timeout_minutes: u32,
    /// Workspace path of the batch notebook.
    pub notebook_path: Option<String>,
    /// Where the notebooks read the sink output; `s3a://<sink bucket>` unless set.
    pub source: Option<String>,
    /// Streaming checkpoints; `s3a://<sink bucket>/checkpoints` unless set.
    pub checkpoint_location: Option<String>,
    /// Where the batch notebook persists its tables as Delta on Databricks:
    /// a schema of the current catalog or `catalog.schema`;
    /// `pinterest_<uid>` (`-` written `_`) unless set.
    pub output: Option<String>,
    /// The workspace URL (`https://dbc-....cloud.databricks.com`) for
    /// Airflow's `databricks_default` connection.
    pub host: Option<String>,
    /// A file holding a Databricks token (a service principal's): with
    /// `host`, `provision` stores the connection in Secrets Manager, where
    /// MWAA reads it. The token itself is never in this file or printed.
    pub token_file: Option<std::path::PathBuf>,
}

impl Default for DatabricksVars {
    fn default() -> Self {
        Self {
            compute: DatabricksCompute::default(),
            cluster_id: None,
            spark_version: "16.4.x-scala2.12".into(),
            node_type_id: "m5d.large".into(),
            num_workers: 1,
            instance_profile_arn: None,
            account_id: None,
            timeout_minutes: 120,
            notebook_path: None,
            source: None,
            checkpoint_location: None,
            output: None,
            host: None,
            token_file: None,
        }
    }
}

/// The local DAG (`airflow/local/<uid>_local_dag.py`): `pipeline batch`
/// on a local Airflow, no Databricks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalAirflowVars {
    /// The `pipeline` binary the task runs (a path, or a name on PATH).
    pub pipeline_bin: String,
    /// Where the sink wrote: `s3://<sink bucket>` unless set; a directory
    /// works too.
    pub input: Option<String>,
    /// Each run writes under `<results_dir>/<run date>/`; `~` is the
    /// worker's home.
    pub results_dir: String,
    /// An S3 endpoint for `input` (the local stack's moto:
    /// http://127.0.0.1:5000); AWS unless set.
    pub aws_endpoint_url: Option<String>,
    pub timeout_minutes: u32,
}

impl Default for LocalAirflowVars {
    fn default() -> Self {
        Self {
            pipeline_bin: "pipeline".into(),
            input: None,
            results_dir: "~/pinterest-pipeline/results".into(),
            aws_endpoint_url: None,
            timeout_minutes: 60,
        }
    }
}

/// `databricks.compute`: what the DAG's notebook run runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabricksCompute {
    /// A new cluster for each run (jobs compute), gone when it ends:
    /// Databricks' idiom for scheduled work, and cheaper than all-purpose.
    #[default]
    JobCluster,
    /// A running all-purpose cluster (`cluster_id`), as the original did.
    ExistingCluster,
    /// No cluster: serverless compute for jobs (the workspace must have it).
    Serverless,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ec2Vars {
    /// The versions of the original write-up.
    pub kafka_version: String,
    pub confluent_version: String,
    pub msk_iam_auth_version: String,
    pub instance_type: String,
    /// Image of the client machine; the latest Amazon Linux 2023 unless set.
    pub ami_id: Option<String>,
    /// Source range allowed to SSH to the client machine (port 22 stays
    /// closed unless set, e.g. "203.0.113.7/32").
    pub ssh_cidr: Option<String>,
    /// What moves the data on AWS: "pipeline" (our `pipeline ingest` and
    /// `pipeline sink` as systemd units on the client machine, MSK IAM
    /// through the instance profile; no MSK Connect) or "original" (the
    /// Confluent REST proxy there, and MSK Connect for the S3 sink).
    pub data_path: DataPath,
    /// Also run `pipeline stream` there (Kinesis to the Delta tables under
    /// s3://<sink bucket>/delta); data_path = "pipeline" only.
    pub stream_worker: bool,
    /// The portable `pipeline` binary (x86_64, glibc 2.34 or older) that
    /// provisioning uploads for data_path = "pipeline"; `cargo xtask
    /// provision` builds it and sets this.
    pub pipeline_binary: Option<String>,
    /// SHA-256 of that binary, set by provisioning from the file it
    /// uploads; the user-data checks the download against it.
    pub pipeline_binary_sha256: Option<String>,
}

/// `ec2.data_path`: see [`Ec2Vars::data_path`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPath {
    #[default]
    Pipeline,
    Original,
}

/// Where the client machine's files live in the sink bucket, apart from
/// the sink's `topics/` and `dead-letter/`.
pub const CLIENT_PREFIX: &str = "pipeline-client/";

impl Ec2Vars {
    /// Object key of the binary with this SHA-256: named by its content, so
    /// a new build never replaces the one a running machine fetched.
    pub fn binary_key(sha256: &str) -> String {
        format!("{CLIENT_PREFIX}pipeline-{}", &sha256[..sha256.len().min(16)])
    }

    /// Object key of the gateway secret the ingest unit checks.
    pub fn gateway_secret_key() -> String {
        format!("{CLIENT_PREFIX}gateway-secret")
    }
}

impl Default for Ec2Vars {
    fn default() -> Self {
        Self {
            kafka_version: "3.8.1".into(),
            confluent_version: "7.2.0".into(),
            msk_iam_auth_version: "1.1.5".into(),
            instance_type: "t2.micro".into(),
            ami_id: None,
            ssh_cidr: None,
            data_path: DataPath::Pipeline,
            stream_worker: false,
            pipeline_binary: None,
            pipeline_binary_sha256: None,
        }
    }
}

impl PipelineConfig {
    /// Config with defaults only.
    pub fn for_uid(uid: impl Into<String>) -> Self {
        toml::from_str(&format!("uid = {:?}", uid.into())).expect("defaults deserialize")
    }

    /// The names derived from the uid (checked by `from_toml`; a bad uid
    /// given to `for_uid` is reported here).
    pub fn names(&self) -> contract::Names {
        contract::Names::new(&self.uid).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The configured sink bucket, or the SPEC 1 default.
    pub fn sink_bucket_name(&self) -> String {
        self.sink_bucket.clone().unwrap_or_else(|| self.names().sink_bucket())
    }

    /// The configured DAGs bucket, or the default derived from the uid.
    pub fn dags_bucket_name(&self) -> String {
        self.airflow.dags_bucket.clone().unwrap_or_else(|| self.names().dags_bucket())
    }

    pub fn from_toml(text: &str) -> Result<Self, TemplateError> {
        let c: Self = toml::from_str(text).map_err(|e| TemplateError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks serde cannot express.
    fn validate(&self) -> Result<(), TemplateError> {
        check_uid(&self.uid).map_err(TemplateError::Config)?;
        if !["DAY", "WEEK", "MONTH"].contains(&self.api_gateway.quota_period.as_str()) {
            return Err(TemplateError::Config(format!(
                "api_gateway.quota_period `{}`: write DAY, WEEK or MONTH",
                self.api_gateway.quota_period
            )));
        }
        if let Some(host) = &self.databricks.host
            && !host.starts_with("https://")
        {
            return Err(TemplateError::Config(format!(
                "databricks.host `{host}`: write the workspace URL, e.g. https://dbc-1234abcd-5678.cloud.databricks.com"
            )));
        }
        if split_date(&self.airflow.start_date).is_none() {
            return Err(TemplateError::Config(format!("airflow.start_date `{}` is not a date: write YYYY-MM-DD", self.airflow.start_date)));
        }
        Ok(())
    }

    /// Fill the derived defaults, then the template context as JSON. Unset
    /// fields are absent (not null) so that a template using one fails,
    /// naming it.
    pub fn to_context(&self) -> Value {
        let mut c = self.clone();
        let bucket = self.sink_bucket_name();
        c.databricks.source.get_or_insert_with(|| format!("s3a://{bucket}"));
        c.databricks.checkpoint_location.get_or_insert_with(|| format!("s3a://{bucket}/checkpoints"));
        c.databricks.output.get_or_insert_with(|| format!("pinterest_{}", self.uid.replace('-', "_")));
        c.local_airflow.input.get_or_insert_with(|| format!("s3://{bucket}"));
        c.sink_bucket = Some(bucket);
        c.airflow.dags_bucket = Some(self.dags_bucket_name());
        let mut v = serde_json::to_value(&c).expect("config serializes");
        drop_nulls(&mut v);
        let e = v["ec2"].as_object_mut().expect("ec2 is a table");
        e.insert("gateway_secret_key".into(), Ec2Vars::gateway_secret_key().into());
        if let Some(sha) = &c.ec2.pipeline_binary_sha256 {
            e.insert("pipeline_binary_key".into(), Ec2Vars::binary_key(sha).into());
        }
        // The DAG wants the start date as numbers.
        if let Some((y, m, d)) = split_date(&c.airflow.start_date) {
            let a = v["airflow"].as_object_mut().expect("airflow is a table");
            a.insert("start_year".into(), y.into());
            a.insert("start_month".into(), m.into());
            a.insert("start_day".into(), d.into());
        }
        let a = v["airflow"].as_object_mut().expect("airflow is a table");
        a.insert("connections_prefix".into(), self.names().airflow_connections_prefix().into());
        v
    }

    /// Set one variable by dotted path (`kafka.bootstrap_servers=...`), as
    /// `--set` and provisioning's discoveries do. Values parse as TOML when
    /// they can (numbers), else are strings.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), TemplateError> {
        let mut v = serde_json::to_value(&*self).expect("config serializes");
        let mut slot = &mut v;
        for part in path.split('.') {
            slot = slot
                .as_object_mut()
                .and_then(|o| o.get_mut(part))
                .ok_or_else(|| TemplateError::Config(format!("unknown variable `{path}`")))?;
        }
        *slot = match (&*slot, value.parse::<i64>()) {
            (Value::Number(_), Ok(n)) => n.into(),
            (Value::Number(_), Err(_)) if value.parse::<f64>().is_ok() => value.parse::<f64>().expect("checked").into(),
            (Value::Bool(_), _) if value == "true" || value == "false" => (value == "true").into(),
            // Lists are written comma-separated: `airflow.subnet_ids=a,b`.
            (Value::Array(_), _) => value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| Value::String(p.into())).collect(),
            _ => Value::String(value.to_string()),
        };
        let updated: Self = serde_json::from_value(v).map_err(|e| TemplateError::Config(format!("`{path}={value}`: {e}")))?;
        updated.validate()?;
        *self = updated;
        Ok(())
    }
}

fn split_date(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    ((1970..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, x| !x.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_spells_out_the_defaults() {
        let example = PipelineConfig::from_toml(include_str!("../../pipeline.example.toml")).expect("example parses");
        let defaults = PipelineConfig::for_uid(example.uid.clone());
        // Every value the example writes out is the default it documents.
        assert_eq!(serde_json::to_value(&example).unwrap(), serde_json::to_value(&defaults).unwrap());
    }

    #[test]
    fn lists_are_set_comma_separated() {
        let mut c = PipelineConfig::for_uid("abc");
        c.set("airflow.subnet_ids", "subnet-1, subnet-2").unwrap();
        assert_eq!(c.airflow.subnet_ids, ["subnet-1", "subnet-2"]);
        c.set("kafka.broker_count", "2").unwrap();
        assert_eq!(c.kafka.broker_count, 2);
        assert!(c.set("kafka.broker_count", "many").unwrap_err().to_string().contains("kafka.broker_count"));
        c.set("api_gateway.stream_routes", "true").unwrap();
        assert!(c.api_gateway.stream_routes);
        c.set("api_gateway.throttle_rate_limit", "12.5").unwrap();
        assert_eq!(c.api_gateway.throttle_rate_limit, 12.5);
        c.set("api_gateway.auth", "none").unwrap();
        assert_eq!(c.api_gateway.auth, ApiAuth::None);
        assert!(c.set("api_gateway.quota_period", "HOUR").unwrap_err().to_string().contains("DAY, WEEK or MONTH"));
    }
}

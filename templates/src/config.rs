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
    pub ec2: Ec2Vars,
}

/// User id of the original write-up, used when none is given.
pub const DEFAULT_UID: &str = "0e2a0bfcc015";

/// The one rule for deployment user ids: they go inside Kafka topic, S3
/// bucket and Kinesis stream names, so lowercase letters, digits and `-`,
/// 1 to 40 characters.
pub fn check_uid(uid: &str) -> Result<(), String> {
    let ok = !uid.is_empty()
        && uid.len() <= 40
        && uid.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user id `{uid}` is not usable in topic and bucket names: use 1-40 lowercase letters, digits or '-' (the original uses 12 hex characters, e.g. {DEFAULT_UID})"
        ))
    }
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_rest_proxy_port() -> u16 {
    8082
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaVars {
    /// MSK bootstrap servers (IAM auth listener, port 9098).
    pub bootstrap_servers: Option<String>,
    /// The EC2 access role the Kafka clients assume (MSK IAM auth).
    pub client_role_arn: Option<String>,
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
    pub dags_bucket: String,
    /// MWAA's Airflow version, for the constraints file of requirements.txt.
    pub version: String,
    pub python_version: String,
}

impl Default for AirflowVars {
    fn default() -> Self {
        Self {
            owner: "pinterest-pipeline".into(),
            retries: 1,
            start_date: "2026-01-01".into(),
            dags_bucket: "mwaa-dags-bucket".into(),
            version: "2.10.3".into(),
            python_version: "3.11".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabricksVars {
    /// The existing cluster the DAG submits the notebook to.
    pub cluster_id: Option<String>,
    /// Workspace path of the batch notebook.
    pub notebook_path: Option<String>,
    /// Where the notebooks read the sink output; `s3a://<sink bucket>` unless set.
    pub source: Option<String>,
    /// Streaming checkpoints; `s3a://<sink bucket>/checkpoints` unless set.
    pub checkpoint_location: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ec2Vars {
    /// The versions of the original write-up.
    pub kafka_version: String,
    pub confluent_version: String,
    pub msk_iam_auth_version: String,
}

impl Default for Ec2Vars {
    fn default() -> Self {
        Self { kafka_version: "2.8.1".into(), confluent_version: "7.2.0".into(), msk_iam_auth_version: "1.1.5".into() }
    }
}

impl PipelineConfig {
    /// Config with defaults only.
    pub fn for_uid(uid: impl Into<String>) -> Self {
        toml::from_str(&format!("uid = {:?}", uid.into())).expect("defaults deserialize")
    }

    pub fn from_toml(text: &str) -> Result<Self, TemplateError> {
        let c: Self = toml::from_str(text).map_err(|e| TemplateError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks serde cannot express.
    fn validate(&self) -> Result<(), TemplateError> {
        check_uid(&self.uid).map_err(TemplateError::Config)?;
        if split_date(&self.airflow.start_date).is_none() {
            return Err(TemplateError::Config(format!(
                "airflow.start_date `{}` is not a date: write YYYY-MM-DD",
                self.airflow.start_date
            )));
        }
        Ok(())
    }

    /// Fill the derived defaults, then the template context as JSON. Unset
    /// fields are absent (not null) so that a template using one fails,
    /// naming it.
    pub fn to_context(&self) -> Value {
        let mut c = self.clone();
        let bucket = c.sink_bucket.clone().unwrap_or_else(|| format!("user-{}-bucket", c.uid));
        c.databricks.source.get_or_insert_with(|| format!("s3a://{bucket}"));
        c.databricks.checkpoint_location.get_or_insert_with(|| format!("s3a://{bucket}/checkpoints"));
        c.sink_bucket = Some(bucket);
        let mut v = serde_json::to_value(&c).expect("config serializes");
        drop_nulls(&mut v);
        // The DAG wants the start date as numbers.
        if let Some((y, m, d)) = split_date(&c.airflow.start_date) {
            let a = v["airflow"].as_object_mut().expect("airflow is a table");
            a.insert("start_year".into(), y.into());
            a.insert("start_month".into(), m.into());
            a.insert("start_day".into(), d.into());
        }
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
            _ => Value::String(value.to_string()),
        };
        let updated: Self =
            serde_json::from_value(v).map_err(|e| TemplateError::Config(format!("`{path}={value}`: {e}")))?;
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

//! Names of a deployment's resources, all derived from its user id
//! (SPEC 1 and 8.1): the one place each rule is written.

use crate::Kind;

/// User id of the original write-up, used when none is given.
pub const DEFAULT_UID: &str = "0e2a0bfcc015";

/// Region of the original deployment, used when none is given.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Tag key on every AWS resource `provision` creates; the value is the uid.
pub const STACK_TAG: &str = "pinterest-pipeline:stack";

/// The one rule for deployment user ids: they go inside Kafka topic, S3
/// bucket and Kinesis stream names, so lowercase letters, digits and `-`,
/// 1 to 40 characters.
pub fn check_uid(uid: &str) -> Result<(), String> {
    let ok = !uid.is_empty() && uid.len() <= 40 && uid.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user id `{uid}` is not usable in topic and bucket names: use 1-40 lowercase letters, digits or '-' (the original uses 12 hex characters, e.g. {DEFAULT_UID})"
        ))
    }
}

/// Names of a deployment's resources, all derived from its user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    uid: String,
}

impl Names {
    /// `uid` must pass [`check_uid`].
    pub fn new(uid: impl Into<String>) -> Result<Self, String> {
        let uid = uid.into();
        check_uid(&uid)?;
        Ok(Self { uid })
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Kafka topic `<uid>.<kind>`.
    pub fn topic(&self, kind: Kind) -> String {
        format!("{}.{}", self.uid, kind)
    }

    /// All three topics.
    pub fn topics(&self) -> Vec<String> {
        Kind::ALL.iter().map(|k| self.topic(*k)).collect()
    }

    /// The sink's `topics.regex`, anchored for librdkafka's regex subscription.
    pub fn topics_regex(&self) -> String {
        format!("^{}\\..*", regex_escape(&self.uid))
    }

    /// S3 bucket the sink writes to, unless the deployment names another:
    /// `user-<uid>-bucket`.
    pub fn sink_bucket(&self) -> String {
        format!("user-{}-bucket", self.uid)
    }

    /// S3 bucket of the Airflow DAGs and requirements, unless the deployment
    /// names another: `airflow-<uid>-dags`. S3 names are global, so a fixed
    /// default (the original's `mwaa-dags-bucket`) belongs to someone else in
    /// every other account; MWAA's guide names its buckets `airflow-...`.
    pub fn dags_bucket(&self) -> String {
        format!("airflow-{}-dags", self.uid)
    }

    /// Kinesis stream `streaming-<uid>-<kind>`.
    pub fn stream(&self, kind: Kind) -> String {
        format!("streaming-{}-{kind}", self.uid)
    }

    /// All three streams.
    pub fn streams(&self) -> Vec<String> {
        Kind::ALL.iter().map(|k| self.stream(*k)).collect()
    }

    /// The sink's consumer group, and the MSK Connect connector: `<uid>-connector`.
    pub fn connector(&self) -> String {
        format!("{}-connector", self.uid)
    }

    /// The consumer groups whose committed offsets say what is in S3: the
    /// sink's (`<uid>-connector`) and, on the original path, the MSK Connect
    /// connector's (Kafka Connect names a sink's group `connect-<name>`).
    /// Nobody else may join or commit in them: records would be lost.
    pub fn sink_consumer_groups(&self) -> [String; 2] {
        [self.connector(), format!("connect-{}", self.connector())]
    }

    /// MSK Connect custom plugin `<uid>-plugin`.
    pub fn plugin(&self) -> String {
        format!("{}-plugin", self.uid)
    }

    /// Airflow DAG id `<uid>_dag` (its file is `<uid>_dag.py`).
    pub fn dag_id(&self) -> String {
        format!("{}_dag", self.uid)
    }

    /// MSK cluster `<uid>-msk-cluster`.
    pub fn cluster(&self) -> String {
        format!("{}-msk-cluster", self.uid)
    }

    /// IAM path of every role and instance profile of the deployment, so
    /// that ListRoles with this prefix finds exactly them.
    pub fn iam_path(&self) -> String {
        format!("/pinterest-pipeline/{}/", self.uid)
    }

    /// A resource of the deployment named `<uid>-<what>` (roles, the
    /// security group, the key pair, the client instance, the API, the
    /// MWAA environment): `what` says which.
    pub fn resource(&self, what: &str) -> String {
        format!("{}-{what}", self.uid)
    }

    /// MWAA environment `<uid>-mwaa`. MWAA names must start with a letter
    /// (its model's pattern `[a-zA-Z][0-9a-zA-Z-_]*`), and uids may start
    /// with a digit (the original's does): those get `pipeline-<uid>-mwaa`.
    /// A uid that starts with a letter keeps the name it always had, so an
    /// existing environment is still found.
    pub fn mwaa_environment(&self) -> String {
        if self.uid.starts_with(|c: char| c.is_ascii_alphabetic()) {
            format!("{}-mwaa", self.uid)
        } else {
            format!("pipeline-{}-mwaa", self.uid)
        }
    }

    /// Where MWAA's Airflow looks up connections in Secrets Manager
    /// (`secrets.backend_kwargs`' connections_prefix): one per deployment,
    /// so that two deployments in an account keep their own
    /// `databricks_default`.
    pub fn airflow_connections_prefix(&self) -> String {
        format!("pinterest-pipeline/{}/connections", self.uid)
    }

    /// Delta table `<uid>_<kind>_table`.
    pub fn delta_table(&self, kind: Kind) -> String {
        format!("{}_{}_table", self.uid, kind)
    }

    /// Which kind a topic of this deployment carries, if any.
    pub fn kind_of_topic(&self, topic: &str) -> Option<Kind> {
        let rest = topic.strip_prefix(&self.uid)?.strip_prefix('.')?;
        rest.parse().ok()
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec() {
        let n = Names::new("0e2a0bfcc015").unwrap();
        assert_eq!(n.topic(Kind::Pin), "0e2a0bfcc015.pin");
        assert_eq!(n.sink_bucket(), "user-0e2a0bfcc015-bucket");
        assert_eq!(n.dags_bucket(), "airflow-0e2a0bfcc015-dags");
        assert_eq!(n.stream(Kind::Geo), "streaming-0e2a0bfcc015-geo");
        assert_eq!(n.delta_table(Kind::User), "0e2a0bfcc015_user_table");
        assert_eq!(n.topics_regex(), "^0e2a0bfcc015\\..*");
        assert_eq!(n.kind_of_topic("0e2a0bfcc015.geo"), Some(Kind::Geo));
        assert_eq!(n.kind_of_topic("0e2a0bfcc015.other"), None);
        assert_eq!(n.kind_of_topic("x.pin"), None);
        assert_eq!(n.streams(), ["streaming-0e2a0bfcc015-pin", "streaming-0e2a0bfcc015-geo", "streaming-0e2a0bfcc015-user"]);
        assert_eq!(n.connector(), "0e2a0bfcc015-connector");
        assert_eq!(n.plugin(), "0e2a0bfcc015-plugin");
        assert_eq!(n.dag_id(), "0e2a0bfcc015_dag");
        assert_eq!(n.cluster(), "0e2a0bfcc015-msk-cluster");
        assert_eq!(n.iam_path(), "/pinterest-pipeline/0e2a0bfcc015/");
        assert_eq!(n.resource("client-sg"), "0e2a0bfcc015-client-sg");
        assert_eq!(n.mwaa_environment(), "pipeline-0e2a0bfcc015-mwaa");
        assert_eq!(Names::new("abc").unwrap().mwaa_environment(), "abc-mwaa");
    }

    #[test]
    fn bad_uids_are_refused_with_the_rule() {
        for bad in ["", "UPPER", "has space", "a.b", &"x".repeat(41)] {
            let err = Names::new(bad).unwrap_err();
            assert!(err.contains("lowercase"), "{err}");
        }
    }
}

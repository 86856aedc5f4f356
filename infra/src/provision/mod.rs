//! Plan, apply and teardown of the original deployment (seed sections 2-6).
//!
//! One code path serves plan and apply: each component observes what exists
//! and records an [`Action`] per resource; with `dry_run` it stops there,
//! otherwise it makes the change. Components run in dependency order;
//! teardown runs them in reverse, over what it finds by the stack tag.

mod airflow_connection;
mod apigateway;
mod buckets;
mod client_instance;
mod connect;
pub use connect::CONNECT_LOG_PREFIX;
mod iam;
pub mod ip_ranges;
mod kinesis;
mod msk;
pub(crate) mod mwaa;
mod mwaa_network;
pub use iam::{ec2_role_policy, policy_documents};
pub use mwaa::SECRETS_BACKEND;
mod network;
mod wait;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use templates::config::PipelineConfig;

use crate::clients::Clients;
use crate::stack::{STACK_TAG, StackNames};

pub use wait::WaitOptions;

/// The parts of the deployment, in apply order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Buckets,
    Iam,
    Network,
    Msk,
    Client,
    Kinesis,
    ApiGateway,
    Connect,
    /// Airflow's Databricks connection, in Secrets Manager.
    AirflowConnection,
    /// MWAA's subnets, checked, and its security group.
    MwaaNetwork,
    Mwaa,
}

impl Component {
    pub const ALL: [Component; 11] = [
        Component::Buckets,
        Component::Iam,
        Component::Network,
        Component::Msk,
        Component::Client,
        Component::Kinesis,
        Component::ApiGateway,
        Component::Connect,
        Component::AirflowConnection,
        Component::MwaaNetwork,
        Component::Mwaa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Buckets => "buckets",
            Component::Iam => "iam",
            Component::Network => "network",
            Component::Msk => "msk",
            Component::Client => "client",
            Component::Kinesis => "kinesis",
            Component::ApiGateway => "api-gateway",
            Component::Connect => "connect",
            Component::AirflowConnection => "airflow-connection",
            Component::MwaaNetwork => "mwaa-network",
            Component::Mwaa => "mwaa",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Component {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Component::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<_> = Component::ALL.iter().map(|c| c.name()).collect();
            format!("unknown component `{s}`: one of {}", names.join(", "))
        })
    }
}

/// What happens (or would happen) to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Exists,
    /// Exists but differs; the text says how.
    Update(String),
    Delete,
    /// Exists without this stack's tag: used, never changed or deleted.
    Foreign,
    Skip(String),
}

impl Action {
    pub fn is_change(&self) -> bool {
        matches!(self, Action::Create | Action::Update(_) | Action::Delete)
    }
}

/// One line of a plan or of an apply's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub component: Component,
    /// Resource kind and name, e.g. `s3 bucket user-x-bucket`.
    pub resource: String,
    pub action: Action,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, note) = match &self.action {
            Action::Create => ("create", String::new()),
            Action::Exists => ("exists", String::new()),
            Action::Update(why) => ("change", format!("  ({why})")),
            Action::Delete => ("delete", String::new()),
            Action::Foreign => ("foreign", "  (not tagged by this stack: used, never changed or deleted)".into()),
            Action::Skip(why) => ("skip", format!("  ({why})")),
        };
        write!(f, "{word:<8} {:<12} {}{note}", self.component.name(), self.resource)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{operation} {resource}: {detail}")]
    Aws { operation: &'static str, resource: String, detail: String },
    /// An answer that says the endpoint lacks the API (HTTP 501, or 404/500
    /// with a body that is not the service's error); against an emulator
    /// the component is reported as not available and the run goes on.
    #[error("{operation} {resource}: {detail}")]
    Unavailable { operation: &'static str, resource: String, detail: String },
    #[error("timed out after {waited:?} waiting for {what} (last state: {last}); re-run to keep waiting, or raise --wait-timeout")]
    Timeout { what: String, waited: Duration, last: String },
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl ProvisionError {
    pub(crate) fn aws<E>(operation: &'static str, resource: impl Into<String>) -> impl FnOnce(SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        move |e| {
            let detail = describe_sdk_error(&e);
            if lacks_the_api(&e) {
                ProvisionError::Unavailable { operation, resource: resource.into(), detail }
            } else {
                ProvisionError::Aws { operation, resource: resource.into(), detail }
            }
        }
    }

    fn is_unavailable(&self) -> bool {
        matches!(self, ProvisionError::Unavailable { .. })
    }

    /// Name the component that failed and how to leave it out.
    fn in_component(self, component: Component) -> Self {
        match self {
            ProvisionError::Aws { operation, resource, detail } | ProvisionError::Unavailable { operation, resource, detail } => {
                ProvisionError::Aws {
                    operation,
                    resource,
                    detail: format!("{detail} [component `{component}`; to leave it out: --skip {component}]"),
                }
            }
            other => other,
        }
    }
}

/// Whether an answer says the endpoint does not implement the API at all:
/// LocalStack's free edition answers 501 for MSK Connect and MWAA, moto a
/// 500 or 404 HTML page for services it lacks. A service's own errors carry
/// an error code and are never taken for this.
fn lacks_the_api<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status == 501 || (matches!(status, 404 | 500) && e.code().is_none())
        }
        _ => false,
    }
}

/// One line a user can act on: the service's error code and message, or for
/// an answer the SDK could not read (an emulator that lacks the API), the
/// HTTP status and the start of the body, not the whole response dump.
fn describe_sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> String {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => {
                    let body = se.raw().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                    let text: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(160).collect();
                    format!("HTTP {status} with an answer the SDK cannot read (does the endpoint implement this API?): {text}")
                }
            }
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Observe and report only; no mutating call.
    pub dry_run: bool,
    pub skip: BTreeSet<Component>,
    pub wait: WaitOptions,
    /// Where the EC2 key pair's private key is written (0600).
    pub key_dir: PathBuf,
    /// Teardown empties the sink bucket (the pipeline's data) only when set.
    pub delete_data: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { dry_run: false, skip: BTreeSet::new(), wait: WaitOptions::default(), key_dir: PathBuf::from("."), delete_data: false }
    }
}

/// What the run learned about the deployment; later components use it, and
/// the summary prints it (invoke URL, bootstrap servers, key file).
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub account_id: Option<String>,
    pub role_arns: std::collections::BTreeMap<String, String>,
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_id: Option<String>,
    /// MWAA's own group, in its subnets' VPC.
    pub mwaa_security_group_id: Option<String>,
    pub key_file: Option<PathBuf>,
    pub cluster_arn: Option<String>,
    pub cluster_state: Option<String>,
    pub bootstrap_servers: Option<String>,
    pub instance_id: Option<String>,
    pub public_dns: Option<String>,
    pub api_id: Option<String>,
    pub invoke_url: Option<String>,
    /// The deployment's API key: its id (safe to show) and the 0600 file
    /// holding its value (never printed).
    pub api_key_id: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub usage_plan_id: Option<String>,
    /// The secret API Gateway adds to forwarded requests (0600 file).
    pub gateway_secret_file: Option<PathBuf>,
    /// Source ranges the REST port is open to, and where they came from.
    pub rest_port_sources: Option<String>,
    pub plugin_arn: Option<String>,
    pub connector_arn: Option<String>,
    pub mwaa_arn: Option<String>,
    /// The secret holding Airflow's Databricks connection (its name).
    pub airflow_connection_secret: Option<String>,
    /// SHA-256 of the `pipeline` binary uploaded for the client machine.
    pub pipeline_binary_sha256: Option<String>,
    /// The Databricks role's instance profile (classic compute registers it).
    pub databricks_instance_profile_arn: Option<String>,
}

impl Discovered {
    /// Config variables the run discovered (for render and deploy-dag).
    pub fn config_values(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(v) = &self.bootstrap_servers {
            out.push(("kafka.bootstrap_servers".to_string(), v.clone()));
        }
        if let Some(v) = self.role_arns.get("ec2") {
            out.push(("kafka.client_role_arn".to_string(), v.clone()));
        }
        out
    }

    /// `name = value` lines of what is known, for the summary.
    pub fn summary(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k.to_string(), v.clone()));
            }
        };
        push("kafka.bootstrap_servers", &self.bootstrap_servers);
        push("kafka.client_role_arn", &self.role_arns.get("ec2").cloned());
        // For the workspace: a storage/service credential of this role, or
        // the instance profile (README, "Databricks prerequisites").
        push("databricks role", &self.role_arns.get("databricks").cloned());
        push("databricks instance profile", &self.databricks_instance_profile_arn);
        push("msk cluster", &self.cluster_arn);
        push("client instance", &self.instance_id);
        push("client public dns", &self.public_dns);
        push("invoke url", &self.invoke_url);
        push("api key id", &self.api_key_id);
        push("api key file", &self.api_key_file.as_ref().map(|p| p.display().to_string()));
        push("usage plan", &self.usage_plan_id);
        push("gateway secret file", &self.gateway_secret_file.as_ref().map(|p| p.display().to_string()));
        push("rest port open to", &self.rest_port_sources);
        push("key file", &self.key_file.as_ref().map(|p| p.display().to_string()));
        push("client binary sha256", &self.pipeline_binary_sha256);
        push("connector", &self.connector_arn);
        push("airflow connection secret", &self.airflow_connection_secret);
        push("mwaa environment", &self.mwaa_arn);
        out
    }
}

/// A found resource of the stack, by tag (status, teardown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub component: Component,
    pub kind: &'static str,
    pub id: String,
    pub state: Option<String>,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<12} {:<22} {}", self.component.name(), self.kind, self.id)?;
        if let Some(s) = &self.state {
            write!(f, "  [{s}]")?;
        }
        Ok(())
    }
}

/// A provisioning run over one stack.
pub struct Provisioner {
    pub clients: Clients,
    pub config: PipelineConfig,
    pub names: StackNames,
    pub options: Options,
    pub found: Discovered,
    pub steps: Vec<Step>,
    on_step: Box<dyn Fn(&Step) + Send + Sync>,
}

impl Provisioner {
    pub fn new(clients: Clients, config: PipelineConfig, options: Options) -> Self {
        let names = StackNames::new(&config);
        Self { clients, config, names, options, found: Discovered::default(), steps: Vec::new(), on_step: Box::new(|_| {}) }
    }

    /// Called with each step as it is decided (for live output).
    pub fn on_step(mut self, f: impl Fn(&Step) + Send + Sync + 'static) -> Self {
        self.on_step = Box::new(f);
        self
    }

    pub(crate) fn record(&mut self, component: Component, resource: impl Into<String>, action: Action) {
        let step = Step { component, resource: resource.into(), action };
        tracing::debug!(%step, "step");
        (self.on_step)(&step);
        self.steps.push(step);
    }

    pub(crate) fn dry_run(&self) -> bool {
        self.options.dry_run
    }

    /// Whether `s3://bucket/key` still has to be uploaded: recorded as
    /// existing when it is there, as to be created otherwise; a dry run
    /// uploads nothing. Its key names what it holds, so one that exists is
    /// kept.
    pub(crate) async fn object_needs_upload(&mut self, component: Component, bucket: &str, key: &str) -> Result<bool, ProvisionError> {
        let resource = format!("s3 object s3://{bucket}/{key}");
        match self.clients.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => {
                self.record(component, resource, Action::Exists);
                return Ok(false);
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            // No bucket yet (dry run before buckets exist): it will be created.
            Err(_) if self.dry_run() => {}
            Err(e) => return Err(ProvisionError::aws("HeadObject", format!("s3://{bucket}/{key}"))(e)),
        }
        self.record(component, resource, Action::Create);
        Ok(!self.dry_run())
    }

    pub(crate) fn uid(&self) -> &str {
        &self.names.uid
    }

    pub(crate) fn stack_tag(&self) -> (String, String) {
        (STACK_TAG.to_string(), self.names.uid.clone())
    }

    /// Plan (dry run) or apply every component not skipped, in order.
    pub async fn apply(&mut self) -> Result<()> {
        self.refuse_the_originals_names()?;
        self.account_id().await?;
        for component in Component::ALL {
            if self.options.skip.contains(&component) {
                self.record(component, "(all)", Action::Skip("--skip".into()));
                continue;
            }
            let result = self.apply_component(component).await;
            self.unless_unavailable(component, result)?;
        }
        Ok(())
    }

    /// On AWS, the original write-up's uid names buckets that exist in
    /// someone else's account (S3 names are global), so the first component
    /// would stop on a 403. Emulators hold no one else's buckets.
    fn refuse_the_originals_names(&self) -> Result<()> {
        let original = self.names.uid == contract::DEFAULT_UID;
        if original && self.clients.endpoint_url.is_none() && self.config.sink_bucket.is_none() {
            return Err(ProvisionError::Config(format!(
                "uid `{}` is the original write-up's: its bucket names (`{}`) belong to another AWS account, and S3 names are global. \
                 Pick a uid of your own (1-40 lowercase letters, digits or '-', e.g. the first 12 characters of `uuidgen | tr -d -`) \
                 with `--set uid=...` or `uid = \"...\"` in pipeline.toml",
                self.names.uid, self.names.sink_bucket
            )));
        }
        Ok(())
    }

    /// Against an emulator (a custom endpoint), a component whose service it
    /// lacks is reported as a skip with the service's answer and the run
    /// goes on; on AWS, or for any other error, the run stops there.
    fn unless_unavailable<T: Default>(&mut self, component: Component, result: Result<T>) -> Result<T> {
        match result {
            Err(e) if e.is_unavailable() && self.clients.endpoint_url.is_some() => {
                let endpoint = self.clients.endpoint_url.clone().unwrap_or_default();
                self.record(component, "(all)", Action::Skip(format!("not available at this endpoint ({endpoint}): {e}")));
                Ok(T::default())
            }
            other => other.map_err(|e| e.in_component(component)),
        }
    }

    /// Plan or apply one component, using what `found` holds from earlier ones.
    pub async fn apply_component(&mut self, component: Component) -> Result<()> {
        match component {
            Component::Buckets => buckets::apply(self).await,
            Component::Iam => iam::apply(self).await,
            Component::Network => network::apply(self).await,
            Component::Msk => msk::apply(self).await,
            Component::Client => client_instance::apply(self).await,
            Component::Kinesis => kinesis::apply(self).await,
            Component::ApiGateway => apigateway::apply(self).await,
            Component::Connect => connect::apply(self).await,
            Component::AirflowConnection => airflow_connection::apply(self).await,
            Component::MwaaNetwork => mwaa_network::apply(self).await,
            Component::Mwaa => mwaa::apply(self).await,
        }
    }

    /// Everything of this stack that exists, found by its tag.
    pub async fn status(&mut self) -> Result<Vec<Found>> {
        self.account_id().await?;
        let mut out = Vec::new();
        for component in Component::ALL {
            if self.options.skip.contains(&component) {
                continue;
            }
            let found = self.discover(component).await;
            out.extend(self.unless_unavailable(component, found)?);
        }
        Ok(out)
    }

    /// One component's resources of this stack, found by tag.
    pub async fn discover(&mut self, component: Component) -> Result<Vec<Found>> {
        match component {
            Component::Buckets => buckets::discover(self).await,
            Component::Iam => iam::discover(self).await,
            Component::Network => network::discover(self).await,
            Component::Msk => msk::discover(self).await,
            Component::Client => client_instance::discover(self).await,
            Component::Kinesis => kinesis::discover(self).await,
            Component::ApiGateway => apigateway::discover(self).await,
            Component::Connect => connect::discover(self).await,
            Component::AirflowConnection => airflow_connection::discover(self).await,
            Component::MwaaNetwork => mwaa_network::discover(self).await,
            Component::Mwaa => mwaa::discover(self).await,
        }
    }

    /// Delete everything tagged with this stack, in reverse dependency
    /// order. With `dry_run`, lists what would go.
    pub async fn teardown(&mut self) -> Result<()> {
        self.account_id().await?;
        for component in Component::ALL.into_iter().rev() {
            if self.options.skip.contains(&component) {
                self.record(component, "(all)", Action::Skip("--skip".into()));
                continue;
            }
            let found = self.discover(component).await;
            let found = self.unless_unavailable(component, found)?;
            for f in &found {
                self.record(component, format!("{} {}", f.kind, f.id), Action::Delete);
            }
            if self.dry_run() || found.is_empty() {
                continue;
            }
            let deleted = self.delete(component, &found).await;
            self.unless_unavailable(component, deleted)?;
        }
        Ok(())
    }

    /// Delete resources `discover` found, waiting until they are gone.
    pub async fn delete(&mut self, component: Component, found: &[Found]) -> Result<()> {
        match component {
            Component::Buckets => buckets::delete(self, found).await,
            Component::Iam => iam::delete(self, found).await,
            Component::Network => network::delete(self, found).await,
            Component::Msk => msk::delete(self, found).await,
            Component::Client => client_instance::delete(self, found).await,
            Component::Kinesis => kinesis::delete(self, found).await,
            Component::ApiGateway => apigateway::delete(self, found).await,
            Component::Connect => connect::delete(self, found).await,
            Component::AirflowConnection => airflow_connection::delete(self, found).await,
            Component::MwaaNetwork => mwaa_network::delete(self, found).await,
            Component::Mwaa => mwaa::delete(self, found).await,
        }
    }

    async fn account_id(&mut self) -> Result<String> {
        if let Some(id) = &self.found.account_id {
            return Ok(id.clone());
        }
        let out = self.clients.sts.get_caller_identity().send().await.map_err(ProvisionError::aws("GetCallerIdentity", "(credentials)"))?;
        let id = out.account().unwrap_or_default().to_string();
        self.found.account_id = Some(id.clone());
        Ok(id)
    }

    /// Connector configuration and user-data, with what this run discovered
    /// (bootstrap servers, the EC2 role) filled in.
    pub(crate) fn provisioning_files(&self) -> Result<templates::render::ProvisioningFiles> {
        let mut config = self.config.clone();
        // What this run discovered wins; without it (msk skipped: a cluster
        // the user brings) the configured value stands.
        if let Some(servers) = &self.found.bootstrap_servers {
            config.kafka.bootstrap_servers = Some(servers.clone());
        }
        if let Some(role) = self.found.role_arns.get("ec2") {
            config.kafka.client_role_arn = Some(role.clone());
        }
        if let Some(sha) = &self.found.pipeline_binary_sha256 {
            config.ec2.pipeline_binary_sha256 = Some(sha.clone());
        }
        templates::render::provisioning_files(&templates::Templates::new(), &config)
            .map_err(|e| ProvisionError::Config(format!("rendering the files provisioning sends: {e}")))
    }

    pub(crate) fn account(&self) -> &str {
        self.found.account_id.as_deref().unwrap_or("000000000000")
    }

    pub(crate) fn region(&self) -> &str {
        &self.clients.region
    }
}

//! AWS side of the pipeline: the clients, DAG deployment, and plan / apply / teardown of the original
//! deployment (`provision`).

pub mod clients;
pub mod cost;
pub mod dags;
pub mod oplog;
pub mod provision;
pub mod stack;

/// Whether `pipeline-infra` logs an event: everything its filter allows
/// except the SDK orchestrator's TRACE events. Those dump each request and
/// response body and each decoded output, and API Gateway's model marks
/// neither an API key's value nor an integration's parameters (the gateway
/// secret) as sensitive, so they would reach the log. The orchestrator's
/// DEBUG lines (attempts, retries, endpoints) stay.
pub fn log_allowed(meta: &tracing::Metadata<'_>) -> bool {
    !(*meta.level() == tracing::Level::TRACE && meta.target().starts_with("aws_smithy_runtime::client::orchestrator"))
}

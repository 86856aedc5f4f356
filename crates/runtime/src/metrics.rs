//! Metrics of the long-running commands (ingest, sink, stream) in the
//! OpenMetrics text format Prometheus scrapes, kept with the Prometheus
//! project's own client crate. Each component registers its metrics under
//! `pipeline_<component>_`; [`serve`] answers `GET /metrics` on
//! `--metrics-listen`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
pub use prometheus_client::registry::Registry;

/// The crate writes the OpenMetrics text format (`# EOF` at the end, `# TYPE`
/// names without `_total`), which Prometheus scrapes under this type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry's metrics in the text format.
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String does not fail");
    out
}

/// Buckets for durations from a millisecond to about a minute.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17)
}

/// A `/metrics` server; stops when dropped.
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `GET /metrics` for `registry` on `listen`.
pub async fn serve(listen: SocketAddr, registry: Arc<Registry>) -> std::io::Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text(&registry)).into_response() }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics server stopped: {e}");
        }
    });
    Ok(MetricsServer { local_addr, task })
}

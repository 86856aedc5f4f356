//! `--require-header`: for a deployment where `pipeline ingest` is reached
//! without API Gateway in front, or where the gateway adds a secret header.
//! Every request but `GET /healthz` must carry the header with the
//! configured value; others get 401 with the REST Proxy's error body (code
//! 40101). The value is compared in constant time and never printed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::errors::ProxyError;
use crate::metrics::Refusal;
use crate::state::AppState;

/// A header every request must carry, and its value.
#[derive(Clone)]
pub struct RequiredHeader {
    name: HeaderName,
    value: Vec<u8>,
}

impl RequiredHeader {
    /// `name` must be a valid header name and `value` non-empty.
    pub fn new(name: &str, value: impl Into<Vec<u8>>) -> Result<Self, String> {
        let name = HeaderName::try_from(name).map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
        let value = value.into();
        if value.is_empty() {
            return Err(format!("the value for header `{name}` is empty"));
        }
        Ok(Self { name, value })
    }

    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    fn admits(&self, given: Option<&[u8]>) -> bool {
        // Constant time in the value; only its length can show.
        given.is_some_and(|g| bool::from(g.ct_eq(&self.value)))
    }
}

// Never print the value: not in logs, not in errors, not in `{:?}`.
impl std::fmt::Debug for RequiredHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequiredHeader").field("name", &self.name).field("value", &"***").finish()
    }
}

/// The middleware: 401 unless the request carries the header.
pub(crate) async fn require_header(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(required) = &state.config.required_header else { return next.run(req).await };
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let given = req.headers().get(&required.name).map(|v| v.as_bytes());
    if required.admits(given) {
        return next.run(req).await;
    }
    let why = if given.is_some() { "wrong" } else { "missing" };
    state.metrics.refused(Refusal::Unauthorized, &format_args!("{} {}: header {} {why}", req.method(), req.uri().path(), required.name));
    ProxyError::unauthorized(required.name.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_value_is_admitted_and_it_is_never_printed() {
        let h = RequiredHeader::new("X-Pipeline-Secret", "s3cr3t-value").unwrap();
        assert!(h.admits(Some(b"s3cr3t-value")));
        for wrong in [&b"s3cr3t-valuf"[..], b"s3cr3t", b"s3cr3t-value2", b""] {
            assert!(!h.admits(Some(wrong)), "{wrong:?}");
        }
        assert!(!h.admits(None));
        assert!(!format!("{h:?}").contains("s3cr3t"), "{h:?}");
        let e = ProxyError::unauthorized(h.name().as_str());
        assert_eq!((e.code, e.status().as_u16()), (40101, 401));
        assert!(!e.message.contains("s3cr3t") && e.message.contains("x-pipeline-secret"), "{}", e.message);
        assert!(RequiredHeader::new("bad header", "v").is_err());
        assert!(RequiredHeader::new("X-Ok", "").is_err());
    }
}

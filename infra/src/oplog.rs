//! Every AWS operation the provisioner sends, recorded by an SDK
//! interceptor: the idempotency check ("a second apply makes no mutating
//! call") and the provisioning benchmark count what really went out, not
//! what the code believes it did. On request ([`OperationLog::keep_requests`])
//! the serialised requests are kept too, so that a test can check each one
//! against the service's published model (`tests/python/aws_request_check.py`):
//! emulators accept requests AWS refuses. A provisioning run does not keep
//! them: their bodies hold the secrets it uploads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// One operation sent: service and operation name (`"S3"`, `"CreateBucket"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub service: String,
    pub name: String,
}

impl Operation {
    /// Read-only by AWS naming convention; everything else changes state.
    pub fn is_mutating(&self) -> bool {
        const READ: [&str; 5] = ["Describe", "Get", "List", "Head", "Lookup"];
        !READ.iter().any(|p| self.name.starts_with(p))
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

/// One request as it went on the wire (each attempt of an operation), for
/// checking against the service model. Credentials are left out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SentRequest {
    pub service: String,
    pub operation: String,
    pub method: String,
    pub uri: String,
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as text; None for a streamed body, one that is not UTF-8,
    /// or one over [`KEPT_BODY_BYTES`] (an uploaded binary).
    pub body: Option<String>,
    pub body_len: Option<u64>,
}

/// Bodies larger than this are not kept: only uploads are that large, and
/// their content is not the model's to check.
pub const KEPT_BODY_BYTES: usize = 1 << 20;

/// Headers whose values are secrets.
const SECRET_HEADERS: [&str; 2] = ["authorization", "x-amz-security-token"];

#[derive(Debug, Clone, Default)]
pub struct OperationLog {
    operations: Arc<Mutex<Vec<Operation>>>,
    requests: Arc<Mutex<Vec<SentRequest>>>,
    keeps_requests: Arc<AtomicBool>,
}

impl OperationLog {
    pub fn operations(&self) -> Vec<Operation> {
        self.operations.lock().expect("log lock").clone()
    }

    pub fn mutating(&self) -> Vec<Operation> {
        self.operations().into_iter().filter(Operation::is_mutating).collect()
    }

    /// From now on keep every request as it is sent, for [`Self::requests`].
    pub fn keep_requests(&self) {
        self.keeps_requests.store(true, Ordering::Relaxed);
    }

    /// Every request sent since [`Self::keep_requests`], in order.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.requests.lock().expect("log lock").clone()
    }

    pub fn clear(&self) {
        self.operations.lock().expect("log lock").clear();
        self.requests.lock().expect("log lock").clear();
    }
}

impl Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    // Once per operation (not per retry), after the operation's config,
    // which holds its name, is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.operations
                .lock()
                .expect("log lock")
                .push(Operation { service: meta.service().to_string(), name: meta.name().to_string() });
        }
        Ok(())
    }

    // Each attempt, once signed: what AWS would receive.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.keeps_requests.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let req = context.request();
        let bytes = req.body().bytes();
        let body = bytes.filter(|b| b.len() <= KEPT_BODY_BYTES).and_then(|b| std::str::from_utf8(b).ok()).map(str::to_string);
        let body_len = bytes.map(|b| b.len() as u64).or_else(|| req.body().content_length());
        let headers = req
            .headers()
            .iter()
            .filter(|(k, _)| !SECRET_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.requests.lock().expect("log lock").push(SentRequest {
            service: meta.service().to_string(),
            operation: meta.name().to_string(),
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            headers,
            body,
            body_len,
        });
        Ok(())
    }
}

//! Every AWS operation the provisioner sends, recorded by an SDK
//! interceptor: the idempotency check ("a second apply makes no mutating
//! call") and the provisioning benchmark count what really went out, not
//! what the code believes it did.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
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

#[derive(Debug, Clone, Default)]
pub struct OperationLog(Arc<Mutex<Vec<Operation>>>);

impl OperationLog {
    pub fn operations(&self) -> Vec<Operation> {
        self.0.lock().expect("log lock").clone()
    }

    pub fn mutating(&self) -> Vec<Operation> {
        self.operations().into_iter().filter(Operation::is_mutating).collect()
    }

    pub fn clear(&self) {
        self.0.lock().expect("log lock").clear();
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
            self.0.lock().expect("log lock").push(Operation { service: meta.service().to_string(), name: meta.name().to_string() });
        }
        Ok(())
    }
}

//! Loading AWS configuration from the standard chain, with an optional
//! endpoint override for moto or LocalStack.

use aws_config::meta::region::ProvideRegion;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where AWS calls go.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// Endpoint override (e.g. `http://127.0.0.1:5000` for moto); the
    /// standard `AWS_ENDPOINT_URL` is honoured when this is None.
    pub endpoint_url: Option<String>,
    /// Region override; otherwise the standard chain, then us-east-1.
    pub region: Option<String>,
    /// Fixed dummy credentials for a local emulator, so that nothing is
    /// looked up (and no real key is ever sent to it).
    pub emulator_credentials: bool,
}

impl AwsTarget {
    /// A local emulator (moto, LocalStack) at `url`, with dummy credentials.
    pub fn emulator(url: impl Into<String>) -> Self {
        Self { endpoint_url: Some(url.into()), region: None, emulator_credentials: true }
    }

    /// An endpoint override (or none) for `region`; a loopback endpoint is
    /// an emulator and gets dummy credentials, never the user's real ones.
    pub fn for_endpoint(endpoint_url: Option<String>, region: &str) -> Self {
        let local =
            endpoint_url.as_deref().is_some_and(|u| u.contains("://127.0.0.1") || u.contains("://localhost") || u.contains("://[::1]"));
        Self { endpoint_url, region: Some(region.to_string()), emulator_credentials: local }
    }

    /// Credentials and region from the standard AWS chain.
    pub async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if self.emulator_credentials {
            loader =
                loader.credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "local-emulator"));
        }
        let region = match &self.region {
            Some(r) => Some(Region::new(r.clone())),
            None => aws_config::default_provider::region::default_provider().region().await,
        };
        loader.region(region.unwrap_or_else(|| Region::new("us-east-1"))).load().await
    }
}

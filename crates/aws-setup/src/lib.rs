//! One AWS set-up for every component (sink, batch, stream, ingest's
//! Kinesis routes, provisioning): where calls go, in which region, with
//! which credentials, and one error when there are none.
//!
//! The rules, in one place:
//! - the endpoint is the one given, else `AWS_ENDPOINT_URL`, else AWS's own;
//! - an endpoint on the loopback address is a local emulator (moto,
//!   LocalStack): it gets fixed dummy credentials, so nothing is looked up
//!   (no instance-metadata call) and no real key is ever sent to it;
//! - the region is the one given, else the standard chain, else us-east-1;
//! - credentials otherwise come from the standard AWS chain (environment,
//!   profile, SSO, web identity, the instance profile on EC2);
//! - every call has time limits ([`timeouts`]): the SDK sets none of its
//!   own, and a stalled connection hung its caller for good.

pub mod msk_iam;
pub mod s3;

use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

pub use aws_config;
pub use aws_credential_types;

/// Region of the original deployment, the fallback when nothing names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Time to open a connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while an answer is read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// One attempt of one call, until its answer's head is read (a streamed
/// body, such as GetObject's, is bounded by the read timeout alone).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// One call with all its retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

/// The time limits every AWS client gets. Generous, as they apply to every
/// service and call; what they stop is a call that would never end.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error(
        "no AWS credentials for {endpoint}: {detail}. Set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or run on a machine with an instance profile; for moto or LocalStack give a loopback endpoint \
         (e.g. --aws-endpoint-url http://127.0.0.1:5000), which needs none"
    )]
    NoCredentials { endpoint: String, detail: String },
}

/// Where AWS calls go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsTarget {
    /// Endpoint override (e.g. `http://127.0.0.1:5000` for moto); when
    /// None, `AWS_ENDPOINT_URL` is honoured, then AWS's own endpoints.
    pub endpoint_url: Option<String>,
    /// Region override; otherwise the standard chain, then us-east-1.
    pub region: Option<String>,
}

/// `--aws-endpoint-url` and `--aws-region`, the AWS CLI's names, for every
/// command that calls AWS (S3 for the sink, batch and stream outputs,
/// Kinesis for the stream routes and the stream worker).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AwsArgs {
    /// AWS endpoint override (moto, LocalStack); default: AWS_ENDPOINT_URL,
    /// then AWS. A loopback endpoint is an emulator and gets dummy
    /// credentials; otherwise credentials come from the standard AWS chain.
    #[arg(long, alias = "s3-endpoint")]
    pub aws_endpoint_url: Option<String>,
    /// AWS region; default: AWS_REGION, then the profile's, then us-east-1.
    #[arg(long, alias = "region")]
    pub aws_region: Option<String>,
}

impl AwsArgs {
    pub fn target(&self) -> AwsTarget {
        AwsTarget::new(self.aws_endpoint_url.clone(), self.aws_region.clone())
    }
}

impl AwsTarget {
    /// A local emulator (moto, LocalStack) at `url`.
    pub fn emulator(url: impl Into<String>) -> Self {
        Self { endpoint_url: Some(url.into()), region: None }
    }

    /// An endpoint override (or none) and a region (or none).
    pub fn new(endpoint_url: Option<String>, region: Option<String>) -> Self {
        Self { endpoint_url, region }
    }

    /// The endpoint calls go to when it is not AWS's own: the override,
    /// else `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> Option<String> {
        self.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|u| !u.is_empty()))
    }

    /// Whether the endpoint is a local emulator: on the loopback address.
    pub fn is_emulator(&self) -> bool {
        self.endpoint().is_some_and(|u| is_loopback_url(&u))
    }

    /// The SDK configuration for this target.
    pub async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts());
        if let Some(url) = self.endpoint() {
            loader = loader.endpoint_url(url);
        }
        if self.is_emulator() {
            loader = loader.credentials_provider(Credentials::new("testing", "testing", None, None, "local-emulator"));
        }
        let region = match &self.region {
            Some(r) => Some(Region::new(r.clone())),
            // A local emulator runs on no EC2 instance: asking the instance
            // metadata service only waits and logs warnings.
            None if self.is_emulator() => aws_config::environment::EnvironmentVariableRegionProvider::new().region().await,
            None => aws_config::default_provider::region::default_provider().region().await,
        };
        loader.region(region.unwrap_or_else(|| Region::new(FALLBACK_REGION))).load().await
    }

    /// The SDK configuration, checked to have credentials: the error every
    /// component gives when there are none, before its first call fails
    /// somewhere less clear.
    pub async fn load_checked(&self) -> Result<SdkConfig, AwsSetupError> {
        let config = self.load().await;
        credentials(&config).await?;
        Ok(config)
    }
}

/// The credentials `config` signs with now.
pub async fn credentials(config: &SdkConfig) -> Result<Credentials, AwsSetupError> {
    let endpoint = config.endpoint_url().unwrap_or("AWS").to_string();
    let Some(provider) = config.credentials_provider() else {
        return Err(AwsSetupError::NoCredentials { endpoint, detail: "no credentials provider is configured".into() });
    };
    provider.provide_credentials().await.map_err(|e| AwsSetupError::NoCredentials { endpoint, detail: error_chain(&e) })
}

/// An error with its sources, one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client is made from this configuration: it carries the limits.
    #[tokio::test]
    async fn every_configuration_carries_the_time_limits() {
        for target in [AwsTarget::emulator("http://127.0.0.1:1"), AwsTarget::new(None, Some("eu-west-1".into()))] {
            let config = target.load().await;
            let limits = config.timeout_config().expect("time limits are set");
            assert_eq!(limits, &timeouts(), "{target:?}");
            assert!(limits.read_timeout().is_some() && limits.operation_timeout().is_some());
        }
    }

    #[test]
    fn loopback_endpoints_are_emulators() {
        for url in ["http://127.0.0.1:5000", "http://localhost:4566/", "http://[::1]:5000", "http://127.0.0.2:9000"] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in ["https://s3.us-east-1.amazonaws.com", "http://127.0.0.1.example.com", "http://10.0.0.1:5000", "not a url"] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[tokio::test]
    async fn an_emulator_gets_dummy_credentials_and_the_given_region() {
        let target = AwsTarget { endpoint_url: Some("http://127.0.0.1:1".into()), region: Some("eu-west-1".into()) };
        let config = target.load_checked().await.unwrap();
        assert_eq!(config.region().unwrap().as_ref(), "eu-west-1");
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:1"));
        let creds = credentials(&config).await.unwrap();
        assert_eq!(creds.access_key_id(), "testing");
    }
}

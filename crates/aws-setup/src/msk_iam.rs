//! MSK IAM authentication: the SASL/OAUTHBEARER token an MSK cluster's IAM
//! listener accepts, and a source of fresh tokens for Kafka clients.
//!
//! The token is what AWS's own signers (`aws-msk-iam-sasl-signer-python`,
//! -go, -js) make: a SigV4 presigned `GET https://kafka.<region>.amazonaws.com/
//! ?Action=kafka-cluster:Connect`, valid for 15 minutes, with a `User-Agent`
//! parameter added after signing, base64url-encoded without padding. The
//! signing is `aws-sigv4`'s; only the URL is assembled here, in the
//! parameter order the Python signer writes, so that the two tokens are
//! byte for byte equal (checked in the integration tests).
//!
//! Credentials come from the standard AWS chain (environment, profile,
//! SSO, web identity, the instance profile on EC2), never from the
//! emulator rule of [`crate::AwsTarget`]: a Kafka cluster that checks IAM
//! is AWS's, whatever endpoint S3 or Kinesis calls go to.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::meta::region::ProvideRegion;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// How long a token is valid; the value AWS's signers use.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// The service name tokens are signed for.
const SIGNING_NAME: &str = "kafka-cluster";
const ACTION: &str = "kafka-cluster:Connect";
/// How long before the credentials expire they are fetched again.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);
/// How often credentials without an expiry are fetched again (a profile
/// may be edited, a role may be switched).
const CREDENTIALS_RECHECK: Duration = Duration::from_secs(300);
/// Wait after a failed credentials refresh before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// RFC 3986 unreserved characters stay as they are; every other byte is
/// percent-encoded, as Python's `urlencode` does for these values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum MskIamError {
    #[error(
        "MSK IAM authentication needs AWS credentials and found none: {detail}. Set AWS_PROFILE, or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run on a machine whose instance profile may \
         kafka-cluster:Connect"
    )]
    NoCredentials { detail: String },
    #[error("signing the MSK IAM token failed: {0}")]
    Signing(String),
}

/// A signed token and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskAuthToken {
    pub token: String,
    pub expires_at: SystemTime,
}

impl MskAuthToken {
    /// Expiry in milliseconds since the Unix epoch, as librdkafka wants it.
    pub fn expires_at_ms(&self) -> i64 {
        self.expires_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// The `User-Agent` parameter of our tokens.
pub fn user_agent() -> String {
    format!("pinterest-pipeline-msk-iam/{}", env!("CARGO_PKG_VERSION"))
}

/// Sign a token for `region` with `credentials` at `now`.
pub fn sign_token(credentials: &Credentials, region: &str, now: SystemTime, user_agent: &str) -> Result<MskAuthToken, MskIamError> {
    let host = format!("kafka.{region}.amazonaws.com");
    let base = format!("https://{host}/");
    let action = utf8_percent_encode(ACTION, QUERY_VALUE).to_string();
    let request_url = format!("{base}?Action={action}");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| MskIamError::Signing(e.to_string()))?
        .into();
    // The payload hashed is the empty body (not UNSIGNED-PAYLOAD), as in
    // botocore's presigned URLs that AWS's signers build on.
    let signable = SignableRequest::new("GET", request_url.as_str(), std::iter::once(("host", host.as_str())), SignableBody::Bytes(&[]))
        .map_err(|e| MskIamError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| MskIamError::Signing(e.to_string()))?.into_parts();
    let (_headers, signed) = instructions.into_parts();
    let value = |name: &str| -> Result<Cow<'static, str>, MskIamError> {
        signed
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| MskIamError::Signing(format!("the signer gave no {name}")))
    };
    // The order the Python signer writes: botocore's presign parameters,
    // the session token (when there is one), the signature, then the
    // unsigned User-Agent.
    let mut url = request_url.clone();
    let mut push = |key: &str, v: &str| {
        url.push('&');
        url.push_str(key);
        url.push('=');
        url.extend(utf8_percent_encode(v, QUERY_VALUE).map(|s| s.to_string()));
    };
    for key in ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"] {
        push(key, &value(key)?);
    }
    if credentials.session_token().is_some() {
        push("X-Amz-Security-Token", &value("X-Amz-Security-Token")?);
    }
    push("X-Amz-Signature", &value("X-Amz-Signature")?);
    push("User-Agent", user_agent);
    // The expiry counts from the signing time in whole seconds, as the
    // signed X-Amz-Date does.
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    Ok(MskAuthToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at: signed_at + TOKEN_LIFETIME,
    })
}

/// Fresh tokens for Kafka clients, signed without waiting: librdkafka asks
/// for one from a callback that must not block on the network, so the
/// credentials are fetched ahead of time and kept fresh by a task.
pub struct MskIamTokens {
    region: String,
    credentials: Arc<RwLock<Credentials>>,
    refresh: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MskIamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskIamTokens").field("region", &self.region).finish_non_exhaustive()
    }
}

impl Drop for MskIamTokens {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

impl MskIamTokens {
    /// Credentials from the standard chain; `region` is the cluster's (else
    /// the standard chain's, else us-east-1). Fails when there are none.
    /// Must be called inside a Tokio runtime: the refresh runs on it.
    pub async fn from_default_chain(region: Option<String>) -> Result<Self, MskIamError> {
        let region = match region {
            Some(r) => Region::new(r),
            None => aws_config::default_provider::region::default_provider()
                .region()
                .await
                .unwrap_or_else(|| Region::new(crate::FALLBACK_REGION)),
        };
        let config = aws_config::defaults(BehaviorVersion::latest()).region(region.clone()).load().await;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| MskIamError::NoCredentials { detail: "no credentials provider is configured".into() })?;
        Self::with_provider(region.to_string(), provider).await
    }

    /// Tokens signed with what `provider` gives.
    pub async fn with_provider(region: String, provider: SharedCredentialsProvider) -> Result<Self, MskIamError> {
        let first = provider.provide_credentials().await.map_err(|e| MskIamError::NoCredentials { detail: crate::error_chain(&e) })?;
        let next_refresh = refresh_delay(&first, SystemTime::now());
        let credentials = Arc::new(RwLock::new(first));
        let kept = Arc::downgrade(&credentials);
        let refresh = tokio::spawn(async move {
            let mut wait = next_refresh;
            loop {
                tokio::time::sleep(wait).await;
                let Some(slot) = kept.upgrade() else { return };
                wait = match provider.provide_credentials().await {
                    Ok(fresh) => {
                        let wait = refresh_delay(&fresh, SystemTime::now());
                        *slot.write().expect("credentials lock") = fresh;
                        wait
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %crate::error_chain(&e),
                            "refreshing the AWS credentials for MSK IAM failed; signing with the previous ones"
                        );
                        RETRY_AFTER
                    }
                };
            }
        });
        Ok(Self { region, credentials, refresh })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The access key id tokens are signed with (not secret).
    pub fn access_key_id(&self) -> String {
        self.credentials.read().expect("credentials lock").access_key_id().to_string()
    }

    /// A token signed now; never waits.
    pub fn token(&self) -> Result<MskAuthToken, MskIamError> {
        let credentials = self.credentials.read().expect("credentials lock").clone();
        sign_token(&credentials, &self.region, SystemTime::now(), &user_agent())
    }
}

/// When to fetch credentials again: ahead of their expiry, and at least
/// every few minutes.
fn refresh_delay(credentials: &Credentials, now: SystemTime) -> Duration {
    let until_expiry = credentials.expiry().map(|at| at.duration_since(now).unwrap_or_default().saturating_sub(CREDENTIALS_MARGIN));
    until_expiry.map_or(CREDENTIALS_RECHECK, |d| d.min(CREDENTIALS_RECHECK)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(token: &str) -> String {
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap()
    }

    fn query(url: &str) -> Vec<(String, String)> {
        url.split_once('?').unwrap().1.split('&').map(|p| p.split_once('=').map(|(k, v)| (k.into(), v.into())).unwrap()).collect()
    }

    #[test]
    fn a_token_is_a_presigned_connect_url_valid_for_fifteen_minutes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_126_400_250);
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let token = sign_token(&creds, "eu-west-1", now, "ua/1").unwrap();
        assert!(!token.token.contains('=') && !token.token.contains('+') && !token.token.contains('/'), "base64url, unpadded");
        let url = decoded(&token.token);
        assert!(url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"), "{url}");
        let keys: Vec<String> = query(&url).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "Action",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
                "User-Agent"
            ]
        );
        let q: std::collections::HashMap<_, _> = query(&url).into_iter().collect();
        assert_eq!(q["X-Amz-Credential"], "AKIDEXAMPLE%2F20261201%2Feu-west-1%2Fkafka-cluster%2Faws4_request");
        assert_eq!(q["X-Amz-Date"], "20261201T120000Z");
        assert_eq!(q["X-Amz-Expires"], "900");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["User-Agent"], "ua%2F1");
        // Whole seconds of the signing time plus 900 s.
        assert_eq!(token.expires_at_ms(), 1_796_126_400_000 + 900_000);
    }

    #[test]
    fn a_session_token_is_signed_into_the_url_before_the_signature() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_126_400);
        let with = Credentials::new("AKID", "secret", Some("tok/en+==".into()), None, "test");
        let without = Credentials::new("AKID", "secret", None, None, "test");
        let url = decoded(&sign_token(&with, "us-east-1", now, "ua").unwrap().token);
        let keys: Vec<String> = query(&url).into_iter().map(|(k, _)| k).collect();
        let at = |k: &str| keys.iter().position(|x| x == k).unwrap();
        assert_eq!(at("X-Amz-Security-Token") + 1, at("X-Amz-Signature"));
        assert!(url.contains("X-Amz-Security-Token=tok%2Fen%2B%3D%3D"), "{url}");
        let sig = |u: &str| query(u).into_iter().find(|(k, _)| k == "X-Amz-Signature").unwrap().1;
        let plain = decoded(&sign_token(&without, "us-east-1", now, "ua").unwrap().token);
        assert_ne!(sig(&url), sig(&plain), "the session token is part of what is signed");
        // The User-Agent is not signed: changing it keeps the signature.
        let other_ua = decoded(&sign_token(&with, "us-east-1", now, "other").unwrap().token);
        assert_eq!(sig(&url), sig(&other_ua));
    }

    #[test]
    fn credentials_are_fetched_again_ahead_of_their_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let static_creds = Credentials::new("a", "b", None, None, "t");
        assert_eq!(refresh_delay(&static_creds, now), CREDENTIALS_RECHECK);
        let in_an_hour = Credentials::new("a", "b", None, Some(now + Duration::from_secs(3600)), "t");
        assert_eq!(refresh_delay(&in_an_hour, now), CREDENTIALS_RECHECK);
        let in_six_minutes = Credentials::new("a", "b", None, Some(now + Duration::from_secs(360)), "t");
        assert_eq!(refresh_delay(&in_six_minutes, now), Duration::from_secs(60));
        let expired = Credentials::new("a", "b", None, Some(now - Duration::from_secs(10)), "t");
        assert_eq!(refresh_delay(&expired, now), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn tokens_come_without_waiting_from_the_credentials_fetched_first() {
        let provider = SharedCredentialsProvider::new(Credentials::new("AKIDFIXED", "s", None, None, "t"));
        let tokens = MskIamTokens::with_provider("ap-south-1".into(), provider).await.unwrap();
        assert_eq!(tokens.access_key_id(), "AKIDFIXED");
        let token = tokens.token().unwrap();
        let url = decoded(&token.token);
        assert!(url.starts_with("https://kafka.ap-south-1.amazonaws.com/"), "{url}");
        assert!(url.ends_with(&format!("User-Agent={}", utf8_percent_encode(&user_agent(), QUERY_VALUE))), "{url}");
        let left = token.expires_at.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(890) && left <= TOKEN_LIFETIME, "{left:?}");
    }
}

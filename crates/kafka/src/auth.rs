//! How our Kafka clients prove who they are: nothing beyond the `-X`
//! settings (the local broker, a cluster with TLS or SCRAM set by hand), or
//! MSK IAM, SASL/OAUTHBEARER with a SigV4-signed token
//! ([`aws_setup::msk_iam`]) that librdkafka asks for again before it expires.

use std::error::Error;
use std::ffi::CString;
use std::sync::{Arc, Mutex};

use aws_setup::msk_iam::MskIamTokens;
use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// The `--kafka-auth` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KafkaAuthMode {
    /// Only what -X settings say (the local broker needs nothing).
    #[default]
    None,
    /// MSK IAM: SASL/OAUTHBEARER over TLS with a token signed by the
    /// standard AWS credentials chain (the instance profile on EC2).
    MskIam,
}

/// The authentication every client of one command shares.
#[derive(Clone, Default)]
pub struct KafkaAuth {
    tokens: Option<Arc<MskIamTokens>>,
    /// The broker's last refusal, so that a timeout can say it was one.
    refused: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for KafkaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tokens {
            None => f.write_str("KafkaAuth::None"),
            Some(t) => write!(f, "KafkaAuth::MskIam({})", t.region()),
        }
    }
}

impl KafkaAuth {
    /// No authentication beyond the client settings.
    pub fn none() -> Self {
        Self::default()
    }

    /// MSK IAM with these tokens.
    pub fn msk_iam(tokens: MskIamTokens) -> Self {
        Self { tokens: Some(Arc::new(tokens)), refused: Default::default() }
    }

    /// The authentication `mode` names; for MSK IAM the credentials are
    /// looked up now, so a machine without any fails here, clearly.
    pub async fn resolve(mode: KafkaAuthMode, region: Option<String>) -> Result<Self, aws_setup::msk_iam::MskIamError> {
        Ok(match mode {
            KafkaAuthMode::None => Self::none(),
            KafkaAuthMode::MskIam => Self::msk_iam(MskIamTokens::from_default_chain(region).await?),
        })
    }

    pub fn is_msk_iam(&self) -> bool {
        self.tokens.is_some()
    }

    /// The client settings MSK IAM needs. They go before the `-X` settings,
    /// so those can change them (a local SASL_PLAINTEXT test broker).
    ///
    /// MSK's certificates chain to Amazon's public CAs, which the client
    /// finds in the system's bundle. The client machine's binary has
    /// OpenSSL compiled in, whose own certificate directory is a build
    /// path that no system has; `probe` makes librdkafka look where
    /// distributions keep the bundle, Amazon Linux 2023's
    /// `/etc/pki/tls/certs/ca-bundle.crt` first and Debian's
    /// `/etc/ssl/certs/ca-certificates.crt` among them. Without it, finding
    /// the bundle would depend on how librdkafka was built.
    pub(super) fn apply(&self, cfg: &mut ClientConfig) {
        if self.tokens.is_some() {
            cfg.set("security.protocol", "SASL_SSL").set("sasl.mechanism", "OAUTHBEARER").set("ssl.ca.location", "probe");
        }
    }

    /// The context for clients that need nothing else.
    pub fn context(&self) -> AuthContext {
        AuthContext { auth: self.clone() }
    }

    /// The broker's last refusal of our credentials, if any.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().expect("not poisoned").clone()
    }

    /// The error for a refusal of our credentials by the brokers at
    /// `bootstrap`, with what to check for this way of authenticating.
    pub fn refused(&self, bootstrap: &str, detail: String) -> crate::KafkaError {
        let fix = if self.is_msk_iam() {
            "With --kafka-auth msk-iam: check that the AWS credentials (AWS_PROFILE, the instance profile) are the ones \
             meant, that their policy allows kafka-cluster:Connect on the cluster, and that --msk-region is the cluster's region"
        } else {
            "Check the security settings (-X security.protocol=..., sasl.*) against the broker's listener; for MSK's IAM \
             listener use --kafka-auth msk-iam"
        };
        crate::KafkaError::Authentication { bootstrap: bootstrap.to_string(), detail, fix }
    }

    /// Give the client a token now. librdkafka asks for tokens through an
    /// event that only a polled client handles; admin clients and
    /// consumers asked only for metadata are never polled, so every client
    /// gets its first token this way, and polled ones renew theirs.
    pub fn prime<C: ClientContext>(&self, client: &Client<C>) {
        let Some(tokens) = &self.tokens else { return };
        match tokens.token() {
            Ok(token) => {
                let (Ok(value), Ok(principal)) = (CString::new(token.token.clone()), CString::new(tokens.access_key_id())) else {
                    return;
                };
                let mut err = [0 as std::os::raw::c_char; 512];
                // SAFETY: the client pointer is live for the borrow; the
                // strings outlive the call, which copies them.
                let code = unsafe {
                    rdkafka::bindings::rd_kafka_oauthbearer_set_token(
                        client.native_ptr(),
                        value.as_ptr(),
                        token.expires_at_ms(),
                        principal.as_ptr(),
                        std::ptr::null_mut(),
                        0,
                        err.as_mut_ptr(),
                        err.len(),
                    )
                };
                if code != rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    // SAFETY: librdkafka wrote a NUL-terminated message.
                    let why = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
                    tracing::warn!("librdkafka did not take the MSK IAM token: {why}");
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// A token for librdkafka's refresh request
    /// ([`ClientContext::generate_oauth_token`] of every context here).
    pub fn oauth_token(&self) -> Result<OAuthToken, Box<dyn Error>> {
        let tokens = self.tokens.as_ref().ok_or("an OAUTHBEARER token was asked for, but --kafka-auth is not msk-iam")?;
        let token = tokens.token()?;
        Ok(OAuthToken { token: token.token.clone(), principal_name: tokens.access_key_id(), lifetime_ms: token.expires_at_ms() })
    }

    /// Note an error event: a refused authentication is kept.
    pub fn observe(&self, error: &RdKafkaError, reason: &str) {
        if is_authentication_error(error) {
            *self.refused.lock().expect("not poisoned") = Some(format!("{error} ({reason})"));
        }
    }
}

/// Whether librdkafka reports a refused authentication.
pub fn is_authentication_error(error: &RdKafkaError) -> bool {
    matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed))
}

/// Context of the clients that need nothing but authentication.
#[derive(Clone, Default)]
pub struct AuthContext {
    auth: KafkaAuth,
}

impl ClientContext for AuthContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        self.auth.oauth_token()
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.auth.observe(&error, reason);
        if is_authentication_error(&error) {
            tracing::warn!("Kafka refused our credentials: {error}: {reason}");
        } else {
            // Disconnects and retries; what fails because of them says so.
            tracing::debug!("Kafka client error: {error}: {reason}");
        }
    }
}

impl ConsumerContext for AuthContext {}

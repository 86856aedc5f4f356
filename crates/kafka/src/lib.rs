//! Kafka client settings and topic administration shared by the ingest
//! server, the sink and the tooling.

mod args;
mod auth;

pub use args::KafkaArgs;
pub use auth::{AuthContext, KafkaAuth, KafkaAuthMode, is_authentication_error};

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

/// Default bootstrap address of the local stack (`cargo xtask local up`).
pub const LOCAL_BOOTSTRAP: &str = "127.0.0.1:19092";

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client { bootstrap: String, source: rdkafka::error::KafkaError },
    #[error("no Kafka broker answered at {bootstrap} within {waited:?}: {detail}. {fix}")]
    Unreachable { bootstrap: String, waited: Duration, detail: String, fix: &'static str },
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
    #[error("Kafka admin request failed: {0}")]
    Admin(rdkafka::error::KafkaError),
    #[error(
        "creating topics at {bootstrap} got no answer within {waited:?}. \
         Check the security settings (-X security.protocol=..., sasl.*) against the broker's listener"
    )]
    AdminTimedOut { bootstrap: String, waited: Duration },
    #[error(
        "the Kafka broker at {bootstrap} presented a certificate this client does not trust: {detail}. \
         With --kafka-auth msk-iam the client reads the system's CA bundle (ssl.ca.location=probe: \
         /etc/pki/tls/certs/ca-bundle.crt on Amazon Linux, /etc/ssl/certs/ca-certificates.crt on Debian): \
         install the ca-certificates package, or name a bundle with -X ssl.ca.location=<file>"
    )]
    UntrustedCertificate { bootstrap: String, detail: String },
    #[error("the Kafka brokers at {bootstrap} refused our authentication: {detail}. {fix}")]
    Authentication { bootstrap: String, detail: String, fix: &'static str },
    #[error(transparent)]
    MskIam(#[from] aws_setup::msk_iam::MskIamError),
}

/// Keeps librdkafka's last client-level error (a failed authentication, a
/// wrong security.protocol, an unresolvable host) so that a timeout can say
/// why nothing answered instead of only that it timed out.
#[derive(Default)]
struct LastClientError {
    last: std::sync::Mutex<Option<String>>,
    /// A failed certificate check: trying again will not help.
    untrusted: std::sync::Mutex<Option<String>>,
    auth: KafkaAuth,
}

impl LastClientError {
    fn describe(&self) -> String {
        self.last.lock().expect("not poisoned").clone().unwrap_or_else(|| "none reported".into())
    }
}

impl ProducerContext for LastClientError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl ClientContext for LastClientError {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.oauth_token()
    }

    // librdkafka says why a connection failed (authentication, protocol
    // mismatch) in its error-level log lines. rdkafka delivers log lines and
    // error events through the main queue, so they arrive only while the
    // client is polled: hence the producer in `wait_ready_with`.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(?level, fac, "librdkafka: {log_message}");
        *self.last.lock().expect("not poisoned") = Some(log_message.to_string());
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "kafka client error");
        self.auth.observe(&error, reason);
        if reason.contains("certificate verify failed") {
            *self.untrusted.lock().expect("not poisoned") = Some(reason.to_string());
        }
        *self.last.lock().expect("not poisoned") = Some(format!("{error} ({reason})"));
    }
}

/// Base client config: the bootstrap servers, what `auth` needs, then any
/// `key=value` overrides (the -X settings), which win.
pub fn client_config(bootstrap: &str, auth: &KafkaAuth, overrides: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    // librdkafka logs broker disconnects at error level; our own errors say more.
    cfg.set("log_level", "3");
    auth.apply(&mut cfg);
    for (k, v) in overrides {
        cfg.set(k, v);
    }
    cfg
}

/// A producer that loses nothing it acknowledged and writes nothing twice:
/// idempotent, acks=all, and keyed records land where the Java client (and
/// so the original REST proxy) would put them. Used by the ingest server and
/// by the direct producer the benchmarks compare it with.
pub fn reliable_producer_config(
    bootstrap: &str,
    auth: &KafkaAuth,
    overrides: &[(String, String)],
    delivery_timeout: Duration,
) -> ClientConfig {
    let mut cfg = client_config(bootstrap, auth, overrides);
    // Batching is a default the caller's -X settings may change (a lower
    // linger trades throughput for latency; `queue.buffering.max.ms` is
    // librdkafka's other name for it). What a 200 promises is set after
    // the -X settings, so none of them can undo it.
    if !overrides.iter().any(|(k, _)| k == "linger.ms" || k == "queue.buffering.max.ms") {
        cfg.set("linger.ms", "5");
    }
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
        // A request for a topic that does not exist never creates it, even
        // on a broker that allows auto-creation: topics are made on purpose.
        .set("allow.auto.create.topics", "false");
    cfg
}

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_CHARS: usize = 249;

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.`
/// or `..`. A name that breaks it can never be a topic; checked before a
/// client library sees it (librdkafka panics in rdkafka on some).
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("a topic name cannot be empty, `.` or `..`".into());
    }
    if name.len() > MAX_TOPIC_NAME_CHARS {
        return Err(format!("a topic name has at most {MAX_TOPIC_NAME_CHARS} characters; this one has {}", name.len()));
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        Some(bad) => Err(format!("a topic name holds only letters, digits, `.`, `_` and `-`; this one holds {bad:?}")),
        None => Ok(()),
    }
}

/// Parse `key=value` pairs given on a command line.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not a key=value librdkafka setting"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Wait until a broker answers a metadata request, or fail naming the fix.
pub async fn wait_ready(bootstrap: &str, timeout: Duration) -> Result<Vec<i32>, KafkaError> {
    wait_ready_with(bootstrap, &KafkaAuth::none(), &[], timeout).await
}

/// [`wait_ready`] with the client settings the caller will use (e.g. MSK IAM
/// authentication), so that a broker that refuses them is reported here,
/// with librdkafka's reason, rather than as a later timeout. A refused
/// authentication ends the wait at once: trying again will not help.
pub async fn wait_ready_with(
    bootstrap: &str,
    auth: &KafkaAuth,
    overrides: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    // A producer, not an admin client: polling it delivers librdkafka's
    // log lines, which say why a broker refused the connection.
    let client: BaseProducer<LastClientError> = client_config(bootstrap, auth, overrides)
        .create_with_context(LastClientError { auth: auth.clone(), ..Default::default() })
        .map_err(|source| KafkaError::Client { bootstrap: bootstrap.to_string(), source })?;
    auth.prime(client.client());
    let start = std::time::Instant::now();
    let bootstrap = bootstrap.to_string();
    let with_settings = !overrides.is_empty() || auth.is_msk_iam();
    tokio::task::spawn_blocking(move || {
        let mut last = String::from("no answer");
        while start.elapsed() < timeout {
            match client.client().fetch_metadata(None, Duration::from_secs(2)) {
                Ok(md) if !md.brokers().is_empty() => {
                    return Ok(md.brokers().iter().map(|b| b.id()).collect());
                }
                Ok(_) => last = "metadata without brokers".into(),
                Err(e) => {
                    client.poll(Duration::from_millis(250));
                    if let Some(detail) = client.context().auth.refusal() {
                        return Err(client.context().auth.refused(&bootstrap, detail));
                    }
                    if let Some(detail) = client.context().untrusted.lock().expect("not poisoned").clone() {
                        return Err(KafkaError::UntrustedCertificate { bootstrap, detail });
                    }
                    last = format!("{e}; the client's last error: {}", client.context().describe());
                    continue;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let fix = if with_settings {
            "Check --bootstrap-servers and the client settings given with -X \
             (security.protocol, sasl.*) against the broker's listener"
        } else {
            "Start the local stack with `cargo xtask local up`, or pass --bootstrap-servers"
        };
        Err(KafkaError::Unreachable { bootstrap, waited: timeout, detail: last, fix })
    })
    .await
    .expect("metadata thread does not panic")
}

/// An admin client with its first token (admin clients are never polled
/// for the refresh event; see [`KafkaAuth::prime`]).
pub fn admin_client(bootstrap: &str, auth: &KafkaAuth, overrides: &[(String, String)]) -> Result<AdminClient<AuthContext>, KafkaError> {
    let admin: AdminClient<AuthContext> = client_config(bootstrap, auth, overrides)
        .create_with_context(auth.context())
        .map_err(|source| KafkaError::Client { bootstrap: bootstrap.to_string(), source })?;
    auth.prime(admin.inner());
    Ok(admin)
}

/// Create topics that do not exist yet; existing ones are left as they are.
/// Returns the names that were created.
pub async fn ensure_topics(
    bootstrap: &str,
    auth: &KafkaAuth,
    overrides: &[(String, String)],
    topics: &[String],
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, KafkaError> {
    let admin = admin_client(bootstrap, auth, overrides)?;
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication))).collect();
    let waited = Duration::from_secs(30);
    let opts = AdminOptions::new().operation_timeout(Some(waited)).request_timeout(Some(waited));
    let timed_out = || KafkaError::AdminTimedOut { bootstrap: bootstrap.to_string(), waited };
    let results = admin.create_topics(&new, &opts).await.map_err(|e| match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::OperationTimedOut) => timed_out(),
        _ => KafkaError::Admin(e),
    })?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, RDKafkaErrorCode::OperationTimedOut)) => return Err(timed_out()),
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    // Metadata reaches all brokers shortly after creation; producers that
    // start right away would otherwise see "unknown topic".
    if !created.is_empty() {
        let names: Vec<String> = topics.to_vec();
        let cfg = client_config(bootstrap, auth, overrides);
        let auth = auth.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: rdkafka::consumer::BaseConsumer<AuthContext> = match cfg.create_with_context(auth.context()) {
                Ok(c) => c,
                Err(_) => return,
            };
            auth.prime(consumer.client());
            for _ in 0..40 {
                let ready = names.iter().all(|t| {
                    consumer
                        .fetch_metadata(Some(t), Duration::from_secs(2))
                        .map(|md| md.topics().iter().any(|mt| mt.error().is_none() && !mt.partitions().is_empty()))
                        .unwrap_or(false)
                });
                if ready {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .ok();
    }
    Ok(created)
}

/// Delete topics (test clean-up); missing topics are not an error.
pub async fn delete_topics(bootstrap: &str, topics: &[&str]) -> Result<(), KafkaError> {
    let admin = admin_client(bootstrap, &KafkaAuth::none(), &[])?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.delete_topics(topics, &opts).await.map_err(KafkaError::Admin)? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn overrides_reach_every_client() {
        let cfg =
            client_config("b:9092", &KafkaAuth::none(), &pairs(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER")]));
        assert_eq!(cfg.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(cfg.get("sasl.mechanism"), Some("OAUTHBEARER"));
    }

    /// `--kafka-auth msk-iam` means SASL_SSL with OAUTHBEARER; -X settings
    /// come after it, so a local SASL_PLAINTEXT broker can still be named.
    #[tokio::test]
    async fn msk_iam_sets_sasl_oauthbearer_and_settings_given_win() {
        let creds = aws_setup::aws_credential_types::Credentials::new("AKID", "s", None, None, "t");
        let provider = aws_setup::aws_credential_types::provider::SharedCredentialsProvider::new(creds);
        let tokens = aws_setup::msk_iam::MskIamTokens::with_provider("us-east-1".into(), provider).await.unwrap();
        let auth = KafkaAuth::msk_iam(tokens);
        let cfg = client_config("b:9098", &auth, &[]);
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(cfg.get("sasl.mechanism"), Some("OAUTHBEARER"));
        // The system's CA bundle, wherever the distribution keeps it.
        assert_eq!(cfg.get("ssl.ca.location"), Some("probe"));
        let cfg =
            client_config("b:9098", &auth, &pairs(&[("security.protocol", "SASL_PLAINTEXT"), ("ssl.ca.location", "/etc/pki/my-ca.pem")]));
        assert_eq!(cfg.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(cfg.get("ssl.ca.location"), Some("/etc/pki/my-ca.pem"));
        let token = auth.oauth_token().unwrap();
        assert_eq!(token.principal_name, "AKID");
        assert!(token.lifetime_ms > chrono::Utc::now().timestamp_millis());
        // Without it, nothing is added and no token is made.
        let none = client_config("b:9092", &KafkaAuth::none(), &[]);
        assert_eq!(none.get("sasl.mechanism"), None);
        assert!(KafkaAuth::none().oauth_token().is_err());
    }

    /// What the ingest server promises (a 200 means stored, once) does not
    /// depend on what a user passes with -X.
    #[test]
    fn the_producer_keeps_its_guarantees_over_overrides() {
        let weaker = pairs(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("allow.auto.create.topics", "true"),
            ("client.id", "mine"),
            ("linger.ms", "0"),
        ]);
        let cfg = reliable_producer_config("b:9092", &KafkaAuth::none(), &weaker, Duration::from_secs(7));
        assert_eq!(cfg.get("acks"), Some("all"));
        assert_eq!(cfg.get("enable.idempotence"), Some("true"));
        assert_eq!(cfg.get("message.timeout.ms"), Some("7000"));
        assert_eq!(cfg.get("allow.auto.create.topics"), Some("false"), "no request creates a topic");
        assert_eq!(cfg.get("client.id"), Some("mine"), "other settings pass through");
        assert_eq!(cfg.get("linger.ms"), Some("0"), "batching is the caller's to tune");
        let defaults = reliable_producer_config("b:9092", &KafkaAuth::none(), &[], Duration::from_secs(7));
        assert_eq!(defaults.get("linger.ms"), Some("5"));
        // Keys land where the Java client (the original proxy) puts them.
        assert_eq!(cfg.get("partitioner"), Some("murmur2_random"));
    }

    #[test]
    fn topic_names_follow_kafkas_rule() {
        for good in ["0e2a0bfcc015.pin", "a", "A_b-c.9", &"x".repeat(MAX_TOPIC_NAME_CHARS)] {
            assert_eq!(check_topic_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".", "empty"),
            ("..", "empty"),
            ("has space", "' '"),
            ("nul\0", "'\\0'"),
            ("é", "'é'"),
            (&"x".repeat(MAX_TOPIC_NAME_CHARS + 1), "at most 249"),
        ] {
            let err = check_topic_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn settings_parse_as_key_value() {
        assert_eq!(parse_override(" sasl.mechanism = PLAIN ").unwrap(), ("sasl.mechanism".into(), "PLAIN".into()));
        assert_eq!(parse_override("a=b=c").unwrap(), ("a".into(), "b=c".into()), "values may hold '='");
        let err = parse_override("acks").unwrap_err();
        assert!(err.contains("`acks`") && err.contains("key=value"), "{err}");
    }
}

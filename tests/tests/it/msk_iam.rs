//! MSK IAM (issue 18, item 1; issue 36, item 3): our token against AWS's own
//! Python signer, and the whole SASL/OAUTHBEARER path against a local
//! broker whose listener checks the token's SigV4 signature and authorizes
//! every Kafka operation against the principal's IAM policy as MSK maps
//! them (`cargo xtask local up --msk-iam`, verifier and authorizer in
//! xtask/files/). Our processes run there with the EC2 role's policy as
//! `provision` makes it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_setup::msk_iam::sign_token;

use crate::common;

struct Case {
    access_key: &'static str,
    secret_key: &'static str,
    session_token: Option<&'static str>,
    region: &'static str,
    epoch_seconds: u64,
}

const CASES: [Case; 4] = [
    Case {
        access_key: "AKIDEXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
        region: "us-east-1",
        epoch_seconds: 1_796_126_400,
    },
    // An instance profile's credentials carry a session token; this one
    // holds characters that must be percent-encoded.
    Case {
        access_key: "ASIAEXAMPLE",
        secret_key: "s3cr3t+/=",
        session_token: Some("IQoJb3JpZ2luX2VjE/+base64=="),
        region: "eu-west-1",
        epoch_seconds: 1_796_129_999,
    },
    Case { access_key: "AKIDOTHER", secret_key: "x", session_token: None, region: "ap-southeast-2", epoch_seconds: 1_700_000_000 },
    Case {
        access_key: "ASIAOTHER",
        secret_key: "another secret",
        session_token: Some("short"),
        region: "us-gov-west-1",
        epoch_seconds: 1_893_456_000,
    },
];

/// For fixed credentials, region and clock, our token is the one AWS's
/// Python signer makes, byte for byte (given its User-Agent, which is not
/// signed), and so is its expiry.
#[test]
fn tokens_equal_those_of_aws_python_signer() {
    let python = common::python_from_env("PIPELINE_CLIENTS_PYTHON");
    let mut child = Command::new(python)
        .arg(common::tests_dir().join("python/msk_iam_token.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().unwrap();
    for c in &CASES {
        let case = serde_json::json!({
            "access_key": c.access_key, "secret_key": c.secret_key, "session_token": c.session_token,
            "region": c.region, "epoch_seconds": c.epoch_seconds,
        });
        writeln!(stdin, "{case}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python signer failed");
    let answers: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), CASES.len());
    for (c, python) in CASES.iter().zip(&answers) {
        let creds = Credentials::new(c.access_key, c.secret_key, c.session_token.map(str::to_string), None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(c.epoch_seconds);
        let ours = sign_token(&creds, c.region, at, python["user_agent"].as_str().unwrap()).unwrap();
        assert_eq!(ours.token, python["token"].as_str().unwrap(), "token for {} in {}", c.access_key, c.region);
        assert_eq!(ours.expires_at_ms(), python["expiry_ms"].as_i64().unwrap(), "expiry for {}", c.access_key);
        // And a different secret gives a different token: the comparison
        // is not between two constant strings.
        let other = Credentials::new(c.access_key, "not the secret", c.session_token.map(str::to_string), None, "test");
        assert_ne!(sign_token(&other, c.region, at, python["user_agent"].as_str().unwrap()).unwrap().token, ours.token);
    }
}

/// The MSK IAM broker `cargo xtask test` starts, and the key pair it takes.
struct MskIamBroker {
    bootstrap: String,
    /// The SASL_SSL listener, by the name its certificate carries.
    tls_bootstrap: String,
    access_key_id: String,
    secret_access_key: String,
    region: String,
    account: String,
    cluster_uid: String,
    policy_dir: std::path::PathBuf,
}

fn msk_iam_broker() -> MskIamBroker {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `cargo xtask test`, which starts the MSK IAM broker (`local up --msk-iam`)")
        })
    };
    MskIamBroker {
        bootstrap: var("PIPELINE_MSK_IAM_BOOTSTRAP"),
        tls_bootstrap: var("PIPELINE_MSK_IAM_TLS_BOOTSTRAP"),
        access_key_id: var("PIPELINE_MSK_IAM_ACCESS_KEY_ID"),
        secret_access_key: var("PIPELINE_MSK_IAM_SECRET_ACCESS_KEY"),
        region: var("PIPELINE_MSK_IAM_REGION"),
        account: var("PIPELINE_MSK_IAM_ACCOUNT"),
        cluster_uid: var("PIPELINE_MSK_IAM_CLUSTER_UID"),
        policy_dir: var("PIPELINE_MSK_IAM_POLICY_DIR").into(),
    }
}

impl MskIamBroker {
    /// An ingest server on an ephemeral port whose producer authenticates with `auth`.
    async fn ingest(&self, auth: &pipeline_kafka::KafkaAuth) -> pipeline_ingest::RunningIngest {
        pipeline_ingest::start(pipeline_ingest::IngestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            bootstrap: self.bootstrap.clone(),
            kafka_overrides: Self::plaintext(),
            kafka_auth: auth.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    /// A sink of `names`' topics into `dir`, authenticating with `auth`,
    /// that stops once caught up.
    fn sink_config(&self, names: &contract::Names, auth: pipeline_kafka::KafkaAuth, dir: &std::path::Path) -> pipeline_sink::SinkConfig {
        let location = pipeline_storage::Location::parse(dir.to_str().unwrap()).unwrap();
        let mut config = pipeline_sink::SinkConfig::new(&self.bootstrap, &names.topics_regex(), &names.connector(), location);
        config.kafka_overrides = Self::plaintext();
        config.kafka_auth = auth;
        config.stop = pipeline_sink::StopWhen::CaughtUp { idle: Duration::from_secs(2) };
        config
    }

    /// The EC2 role's policy as `provision` makes it for a deployment
    /// whose cluster is this broker.
    fn deployment_policy(&self) -> serde_json::Value {
        let config = templates::config::PipelineConfig::for_uid(&self.cluster_uid);
        infra::provision::ec2_role_policy(&config, &self.region, &self.account)
    }

    /// A principal of its own with this IAM policy, as a role's session
    /// would be: an access key id the broker knows by its policy file.
    fn identity_with(&self, policy: &serde_json::Value) -> String {
        let key = format!("AKIDTEST{}", uuid::Uuid::new_v4().simple().to_string().to_uppercase());
        std::fs::write(self.policy_dir.join(format!("{key}.json")), policy.to_string()).unwrap();
        key
    }

    /// Tokens signed with `secret` (the broker's, or not), by the broker's
    /// administrator key.
    async fn auth(&self, secret: &str) -> pipeline_kafka::KafkaAuth {
        self.auth_as(&self.access_key_id, secret).await
    }

    async fn auth_as(&self, access_key_id: &str, secret: &str) -> pipeline_kafka::KafkaAuth {
        let creds = Credentials::new(access_key_id, secret, None, None, "test");
        let provider = aws_credential_types::provider::SharedCredentialsProvider::new(creds);
        pipeline_kafka::KafkaAuth::msk_iam(aws_setup::msk_iam::MskIamTokens::with_provider(self.region.clone(), provider).await.unwrap())
    }

    /// The test broker's listener has no TLS (MSK's has): the one setting
    /// that differs from a real cluster.
    fn plaintext() -> Vec<(String, String)> {
        vec![("security.protocol".into(), "SASL_PLAINTEXT".into())]
    }

    /// `pipeline topics create` as a user runs it: credentials from the
    /// environment (the standard chain), `--kafka-auth msk-iam`.
    async fn topics_create(&self, uid: &str, secret: &str) -> std::process::Output {
        self.topics_create_as(uid, &self.access_key_id, secret).await
    }

    async fn topics_create_as(&self, uid: &str, access_key_id: &str, secret: &str) -> std::process::Output {
        let run = tokio::process::Command::new(common::pipeline_bin())
            .args(["topics", "create", "--uid", uid, "--bootstrap-servers", &self.bootstrap, "--wait-secs", "30"])
            .args(["--kafka-auth", "msk-iam", "--msk-region", &self.region, "-X", "security.protocol=SASL_PLAINTEXT"])
            .env("AWS_ACCESS_KEY_ID", access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("topics create ends within a minute").unwrap()
    }
}

/// Amazon Linux 2023 keeps its CA bundle here; librdkafka's `probe` looks
/// here first.
const AMAZON_LINUX_CA_BUNDLE: &str = "/etc/pki/tls/certs/ca-bundle.crt";

/// MSK's IAM listener is TLS, with certificates that chain to Amazon's
/// public CAs: the client machine trusts them only through Amazon Linux's
/// system bundle. This broker's TLS listener has a certificate from a CA
/// that only the system trust store holds (`local up --msk-iam` puts it
/// there). The binary shipped to EC2, given no CA option and none of the
/// variables that point OpenSSL at a bundle (SSL_CERT_FILE, SSL_CERT_DIR),
/// connects and makes the topics. Given a bundle without that CA it stops
/// at once and says the certificate is not trusted, so the first run
/// really verified the chain.
#[tokio::test]
async fn the_shipped_binary_verifies_msks_certificate_with_the_system_bundle() {
    let broker = msk_iam_broker();
    let names = common::fresh_names();
    let topics_create = |extra: Vec<String>| {
        let run = tokio::process::Command::new(common::portable_bin())
            .args(["topics", "create", "--uid", names.uid(), "--bootstrap-servers", &broker.tls_bootstrap, "--wait-secs", "30"])
            .args(["--kafka-auth", "msk-iam", "--msk-region", &broker.region])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &broker.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &broker.secret_access_key)
            .env("RUST_BACKTRACE", "0")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .kill_on_drop(true)
            .output();
        async move { tokio::time::timeout(Duration::from_secs(60), run).await.expect("topics create ends within a minute").unwrap() }
    };

    let out = topics_create(vec![]).await;
    assert!(out.status.success(), "over TLS with the system bundle: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("created").count(), 3);

    // A real bundle that lacks the broker's CA: one public root.
    let other_ca = std::fs::read_dir("/usr/share/ca-certificates/mozilla")
        .expect("the ca-certificates package is installed")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "crt"))
        .expect("a public root certificate");
    let started = std::time::Instant::now();
    let out = topics_create(vec!["-X".into(), format!("ssl.ca.location={}", other_ca.display())]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broker certificate outside the given bundle was accepted: {stderr}");
    assert!(stderr.contains("does not trust") && stderr.contains("ssl.ca.location"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "an untrusted certificate ends the wait at once, took {:?}", started.elapsed());

    // Where the shipped binary would look on Amazon Linux 2023 (the probe
    // list is compiled into it with librdkafka).
    let binary = std::fs::read(common::portable_bin()).unwrap();
    assert!(
        binary.windows(AMAZON_LINUX_CA_BUNDLE.len()).any(|w| w == AMAZON_LINUX_CA_BUNDLE.as_bytes()),
        "the shipped binary does not know Amazon Linux 2023's bundle path {AMAZON_LINUX_CA_BUNDLE}"
    );
}

/// With the EC2 role's own policy, `topics create`, the ingest server's
/// producer (idempotent), the sink's consumer group and `status` all pass
/// MSK's authorization: records posted to ingest reach the sink's objects,
/// every one, and `status` sees the group caught up.
#[tokio::test]
async fn topics_ingest_sink_and_status_work_with_the_deployments_own_policy() {
    let broker = msk_iam_broker();
    let names = common::fresh_names();
    let role = broker.identity_with(&broker.deployment_policy());
    let out = broker.topics_create_as(names.uid(), &role, &broker.secret_access_key).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "topics create with the role's policy: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("created").count(), 3);

    let auth = broker.auth_as(&role, &broker.secret_access_key).await;
    let server = broker.ingest(&auth).await;
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let source = pipeline_emulate::generate::SyntheticSource::new(5, 1000);
    let rounds = 20u64;
    for i in 0..rounds {
        let round = source.round(i);
        for (kind, value) in [
            (contract::Kind::Pin, serde_json::to_value(&round.pin).unwrap()),
            (contract::Kind::Geo, serde_json::to_value(&round.geo).unwrap()),
            (contract::Kind::User, serde_json::to_value(&round.user).unwrap()),
        ] {
            let resp = http
                .post(format!("{base}/topics/{}", names.topic(kind)))
                .header("content-type", "application/vnd.kafka.json.v2+json")
                .json(&serde_json::json!({ "records": [{ "value": value }] }))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            assert_eq!(status, 200, "{}", resp.text().await.unwrap());
        }
    }
    server.stop().await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let mut config = broker.sink_config(&names, auth.clone(), out.path());
    config.flush_size = 5;
    let stats = tokio::time::timeout(Duration::from_secs(120), pipeline_sink::run(config, std::future::pending()))
        .await
        .expect("the sink catches up")
        .unwrap();
    assert_eq!(stats.records_written, rounds * 3, "every record posted is in an object");
    let mut lines = 0;
    for kind in contract::Kind::ALL {
        let dir = out.path().join(format!("topics/{}", names.topic(kind)));
        for part in std::fs::read_dir(&dir).unwrap() {
            for object in std::fs::read_dir(part.unwrap().path()).unwrap() {
                lines += std::fs::read_to_string(object.unwrap().path()).unwrap().lines().count() as u64;
            }
        }
    }
    assert_eq!(lines, rounds * 3);

    let status = pipeline::status::collect(&pipeline::status::StatusConfig {
        names: names.clone(),
        bootstrap: broker.bootstrap.clone(),
        kafka_overrides: MskIamBroker::plaintext(),
        kafka_auth: auth,
        group_id: names.connector(),
        sink: None,
        delta: None,
        batch_output: None,
        aws: Default::default(),
        timeout: Duration::from_secs(10),
    })
    .await;
    let pipeline::status::Part::Ok(topics) = &status.kafka else { panic!("status with the role's policy: {:?}", status.kafka) };
    assert_eq!(topics.iter().map(|t| (t.end_offset, t.lag)).collect::<Vec<_>>(), [(rounds as i64, 0); 3], "{topics:?}");
}

/// The same policy without `kafka-cluster:WriteDataIdempotently`: MSK
/// refuses the idempotent producer its producer id, which librdkafka makes
/// a fatal error. Ingest must then stop with that error (so systemd
/// restarts it and the journal names the cause), not answer 500 for ever.
#[tokio::test]
async fn without_idempotent_writes_ingest_stops_naming_the_authorization() {
    let broker = msk_iam_broker();
    let names = common::fresh_names();
    assert!(broker.topics_create(names.uid(), &broker.secret_access_key).await.status.success());
    let mut policy = broker.deployment_policy();
    let mut removed = 0;
    for statement in policy["Statement"].as_array_mut().unwrap() {
        if let Some(actions) = statement["Action"].as_array_mut() {
            let before = actions.len();
            actions.retain(|a| a != "kafka-cluster:WriteDataIdempotently");
            removed += before - actions.len();
        }
    }
    assert_eq!(removed, 1, "the role's policy grants WriteDataIdempotently once: {policy}");
    let role = broker.identity_with(&policy);
    let server = broker.ingest(&broker.auth_as(&role, &broker.secret_access_key).await).await;
    let base = format!("http://{}", server.local_addr);
    let resp = reqwest::Client::new()
        .post(format!("{base}/topics/{}", names.topic(contract::Kind::Pin)))
        .header("content-type", "application/vnd.kafka.json.v2+json")
        .body(r#"{"records":[{"value":{"index":1}}]}"#)
        .send()
        .await;
    if let Ok(resp) = resp {
        let status = resp.status();
        assert_ne!(status, 200, "a record is never acknowledged: {}", resp.text().await.unwrap_or_default());
    }
    let ended =
        tokio::time::timeout(Duration::from_secs(60), server.run_until(std::future::pending())).await.expect("ingest stops on its own");
    let err = ended.expect_err("it stops with the producer's fatal error").to_string();
    assert!(err.contains("stopped for good") && err.to_lowercase().contains("authorization"), "{err}");
}

/// A token signed with another secret is refused, and every client says
/// so at once, naming authentication, instead of waiting out its timeout.
#[tokio::test]
async fn a_token_signed_with_the_wrong_secret_is_refused_by_every_client_without_a_hang() {
    let broker = msk_iam_broker();
    let names = common::fresh_names();
    let wrong = "not-the-broker-secret";

    let started = std::time::Instant::now();
    let out = broker.topics_create(names.uid(), wrong).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "topics create with the wrong secret must fail: {stderr}");
    assert!(stderr.contains("refused our authentication"), "{stderr}");
    assert!(!stderr.contains(wrong), "the secret is not printed: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "refused at once, not after --wait-secs 30: {:?}", started.elapsed());

    // Topics made with the right key, so only authentication can fail below.
    assert!(broker.topics_create(names.uid(), &broker.secret_access_key).await.status.success());
    let bad = broker.auth(wrong).await;

    let server = broker.ingest(&bad).await;
    let base = format!("http://{}", server.local_addr);
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{base}/topics/{}", names.topic(contract::Kind::Pin)))
        .header("content-type", "application/vnd.kafka.json.v2+json")
        .body(r#"{"records":[{"value":{"index":1}}]}"#)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("refused our authentication"), "the answer names authentication: {body}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered within the metadata timeout: {:?}", started.elapsed());
    server.stop().await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let config = broker.sink_config(&names, bad, out.path());
    let err = tokio::time::timeout(Duration::from_secs(30), pipeline_sink::run(config, std::future::pending()))
        .await
        .expect("the sink stops instead of retrying forever")
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused our authentication"), "{err}");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing written");
}

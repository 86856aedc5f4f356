//! No secret leaves through what provisioning or the `pipeline` binary prints:
//! for provisioning, the AWS secret key and
//! the EC2 private key appear in no step report, no error message and no log
//! line, even at TRACE level with the SDK's own logging on, on success and on
//! failure (an API moto lacks); the deployment's API key and gateway secret
//! appear in none of those with `pipeline-infra`'s log filter, nor in the
//! rendered files.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use infra::provision::{Component, Options, Provisioner, WaitOptions};
use templates::config::PipelineConfig;

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzEXAMPLE-do-not-leak";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_reports_errors_and_logs() {
    use tracing_subscriber::prelude::*;
    // Everything at TRACE, and what `pipeline-infra` logs at TRACE (its
    // filter drops the SDK's body dumps, infra::log_allowed).
    let logs = Captured::default();
    let tool_logs = Captured::default();
    let (writer, tool_writer) = (logs.clone(), tool_logs.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || tool_writer.clone())
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE)
                .with_filter(tracing_subscriber::filter::filter_fn(infra::log_allowed)),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(common::s3_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("AKIDNOSECRETS", SECRET, None, None, "test"))
        .load()
        .await;
    let uid = common::fresh_names().uid().to_string();
    let mut config = PipelineConfig::for_uid(&uid);
    config.set("kafka.bootstrap_servers", "b-1.x:9098").unwrap();
    config.set("api_gateway.ip_ranges_url", &common::ip_ranges_file()).unwrap();
    // The original data path: MSK Connect and its plugin upload take part.
    config.set("ec2.data_path", "original").unwrap();
    let keys = tempfile::tempdir().unwrap();
    // A local plugin file: provisioning uploads it to the sink bucket.
    let plugin = keys.path().join("connector-plugin.zip");
    std::fs::write(&plugin, b"PK\x03\x04 a stand-in for the Confluent S3 sink zip").unwrap();
    config.set("connect.plugin_source", plugin.to_str().unwrap()).unwrap();
    let options = || Options {
        wait: WaitOptions { timeout: Duration::from_secs(30), interval: Duration::from_millis(100), progress: false },
        key_dir: keys.path().to_path_buf(),
        delete_data: true,
        ..Options::default()
    };
    let mut p = Provisioner::new(infra::clients::Clients::new(&sdk), config.clone(), options());
    // Without --skip: MSK Connect is not in moto, which is reported and passed over.
    p.apply().await.expect("apply against moto");
    assert!(p.steps.iter().any(|s| s.component == Component::Connect && s.to_string().contains("not available at this endpoint")));
    // And a run that fails, for its error message.
    let mut broken_config = config.clone();
    broken_config.set("kafka.broker_count", "5").unwrap();
    let mut broken = Provisioner::new(infra::clients::Clients::new(&sdk), broken_config, options());
    let err = broken.apply().await.expect_err("5 brokers fit no zone layout").to_string();
    let sdk_s3 = aws_setup::s3::client(&sdk);
    let uploaded = sdk_s3.head_object().bucket(format!("user-{uid}-bucket")).key("kafka-connect-s3/connector-plugin.zip").send().await;
    assert!(uploaded.is_ok(), "the plugin zip was uploaded from its local path before MSK Connect was asked");
    let private_key = std::fs::read_to_string(keys.path().join(format!("{uid}-key-pair.pem"))).unwrap();
    let key_body: String = private_key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(key_body.len() > 100, "the private key was written");
    // The deployment's API key and the secret API Gateway adds to what it forwards.
    let api_key = std::fs::read_to_string(keys.path().join(format!("{uid}-api-key"))).unwrap();
    let gateway_secret = std::fs::read_to_string(keys.path().join(format!("{uid}-gateway-secret"))).unwrap();
    assert!(api_key.len() >= 20 && gateway_secret.len() >= 32, "both were written");
    // Rendered files: the client machine's user-data and the connector's settings.
    let mut render_config = config.clone();
    render_config.set("kafka.client_role_arn", "arn:aws:iam::123456789012:role/ec2-access-role").unwrap();
    let rendered = templates::render::provisioning_files(&templates::Templates::new(), &render_config).unwrap();
    let rendered = format!("{}\n{}", rendered.connector_properties, rendered.user_data);

    let mut down = Provisioner::new(infra::clients::Clients::new(&sdk), config, options());
    down.options.skip = [Component::Connect, Component::Mwaa].into();
    down.teardown().await.unwrap();

    let report: String = p.steps.iter().chain(&broken.steps).chain(&down.steps).map(|s| format!("{s}\n")).collect();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.len() > 10_000, "the SDK's trace logs were captured ({} bytes)", logged.len());
    let tool_logged = String::from_utf8(tool_logs.0.lock().unwrap().clone()).unwrap();
    assert!(tool_logged.len() > 10_000, "the tool's trace logs were captured ({} bytes)", tool_logged.len());
    for (what, text) in
        [("error", &err), ("step report", &report), ("logs", &logged), ("tool's logs", &tool_logged), ("rendered files", &rendered)]
    {
        assert!(!text.contains(SECRET), "the AWS secret key is in the {what}");
        // Any 40 consecutive characters of the key would be a leak.
        let chunks: Vec<&str> = key_body.as_bytes().chunks(40).filter(|c| c.len() == 40).map(|c| std::str::from_utf8(c).unwrap()).collect();
        assert!(!chunks.iter().any(|c| text.contains(c)), "private key material is in the {what}");
    }
    // The SDK itself prints API Gateway's key value and integration
    // parameters at TRACE; the tool's own filter keeps them out.
    assert!(logged.contains(&api_key), "the uncapped SDK trace shows the key (else this test proves nothing)");
    for (what, text) in [("error", &err), ("step report", &report), ("tool's logs", &tool_logged), ("rendered files", &rendered)] {
        assert!(!text.contains(&api_key), "the API key is in the {what}");
        assert!(!text.contains(&gateway_secret), "the gateway secret is in the {what}");
    }
    // The error says what failed and how to fix it, in one line.
    assert!(err.contains("kafka.broker_count") && !err.contains('\n'), "{err}");
}

/// Output (stdout + stderr, logs at TRACE) of a `pipeline` run.
async fn pipeline_output(args: &[&str], env: &[(&str, &str)], for_at_most: Duration) -> String {
    let mut cmd = tokio::process::Command::new(common::pipeline_bin());
    cmd.args(args).env("RUST_LOG", "trace").kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let out = match tokio::time::timeout(for_at_most, child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("pipeline {args:?} did not finish in {for_at_most:?}"),
    };
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The data path's secrets: the AWS secret key (S3 via object_store, and
/// Kinesis via the SDK, TRACE logs on), a Kafka SASL password given with
/// -X, and a MySQL password in the source URL, on runs that fail.
#[tokio::test]
async fn the_pipeline_binary_keeps_secrets_out_of_its_output() {
    let names = common::fresh_names();
    let aws = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEPIPELINE"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
    ];
    let bucket_missing = format!("s3://{}-absent", names.sink_bucket());
    let mut outputs = Vec::new();
    // S3 through object_store: the bucket does not exist.
    outputs.push(pipeline_output(&["batch", "--uid", names.uid(), "--input", &bucket_missing], &aws, Duration::from_secs(120)).await);
    // Kinesis through the SDK: the streams do not exist.
    outputs.push(
        pipeline_output(
            &["stream", "--uid", names.uid(), "--output", &format!("{bucket_missing}/delta"), "--stop-when-idle", "1"],
            &aws,
            Duration::from_secs(120),
        )
        .await,
    );
    // Kafka with SASL against a broker that does not speak it: the ingest
    // server's answer to a POST and its logs.
    let sasl = format!("sasl.password={SECRET}-sasl");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "ingest",
        "--listen",
        &listen,
        "--delivery-timeout",
        "2",
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=PLAIN",
        "-X",
        "sasl.username=u",
        "-X",
        &sasl,
    ];
    let server = tokio::process::Command::new(common::pipeline_bin())
        .args(args)
        .env("RUST_LOG", "trace")
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        let sent = http
            .post(format!("http://{listen}/topics/{}", names.topic(contract::Kind::Pin)))
            .header("Content-Type", "application/vnd.kafka.json.v2+json")
            .body(r#"{"records":[{"value":{"a":1}}]}"#)
            .send()
            .await;
        if let Ok(resp) = sent {
            answer = Some(format!("{} {}", resp.status(), resp.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the ingest server answers");
    assert!(!answer.starts_with("200"), "{answer}");
    send_sigterm(server.id().unwrap());
    let out = server.wait_with_output().await.unwrap();
    outputs.push(format!("{answer}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    // MySQL: a wrong password in the source URL.
    let mut url = url::Url::parse(&common::mysql_url()).unwrap();
    url.set_password(Some(SECRET)).unwrap();
    outputs.push(pipeline_output(&["emulate", "--count", "1", "--source", url.as_str()], &[], Duration::from_secs(60)).await);

    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.is_empty(), "run {i} said something");
        assert!(out.contains("rror"), "run {i} failed as it should:\n{out}");
        assert!(!out.contains(SECRET), "run {i} shows a secret:\n{out}");
    }
}

fn send_sigterm(pid: u32) {
    std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
}

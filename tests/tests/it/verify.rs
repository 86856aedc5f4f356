//! `pipeline verify` against a deployment on the local stack (issue 36,
//! item 8): an ingest server that requires the API key as API Gateway
//! does and serves the Kinesis routes on moto's Kinesis, a sink into moto's
//! S3. It passes when every hop works, removes
//! what it wrote, and names the hop and its cause when one is broken on
//! purpose.

use std::time::Duration;

use contract::Names;

use crate::common;

const API_KEY: &str = "local-verify-key";

/// A deployment of `names` on the local stack: its topics, an ingest
/// server that wants `x-api-key`, and (unless stopped) a sink into moto.
struct LocalDeployment {
    names: Names,
    ingest: pipeline_ingest::RunningIngest,
    /// `pipeline sink` as a process, killed when dropped: in-process, its
    /// reader's blocking thread would hold the test's runtime open at its
    /// end, also after a failed assertion.
    sink: Option<tokio::process::Child>,
    key_file: tempfile::NamedTempFile,
}

impl LocalDeployment {
    /// With `streams`, also the Kinesis streams behind the ingest server's
    /// Kinesis routes (moto's Kinesis).
    async fn start(streams: bool) -> Self {
        common::require_kafka().await;
        common::set_dummy_aws_env();
        let names = common::fresh_names();
        common::create_topics(&names.topics(), 3).await;
        if streams {
            let kinesis = aws_sdk_kinesis::Client::new(&common::moto().load().await);
            for stream in names.streams() {
                kinesis.create_stream().stream_name(stream).shard_count(1).send().await.unwrap();
            }
        }
        aws_setup::s3::ensure_bucket(&common::s3_client().await, &names.sink_bucket()).await.unwrap();
        let ingest = pipeline_ingest::start(pipeline_ingest::IngestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            bootstrap: common::bootstrap(),
            required_header: Some(pipeline_ingest::RequiredHeader::new("x-api-key", API_KEY).unwrap()),
            kinesis: Some(common::moto()),
            ..Default::default()
        })
        .await
        .unwrap();
        let sink = tokio::process::Command::new(common::pipeline_bin())
            .args(["sink", "--uid", names.uid(), "--to", &format!("s3://{}", names.sink_bucket())])
            .args(["--bootstrap-servers", &common::bootstrap(), "--aws-endpoint-url", &common::s3_endpoint()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let key_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key_file.path(), format!("{API_KEY}\n")).unwrap();
        Self { names, ingest, sink: Some(sink), key_file }
    }

    async fn stop_sink(&mut self) {
        if let Some(mut sink) = self.sink.take() {
            sink.kill().await.unwrap();
        }
    }

    fn target(&self) -> String {
        format!("http://{}", self.ingest.local_addr)
    }

    /// `pipeline verify` as a user runs it, with these extra arguments.
    async fn verify(&self, key_file: &std::path::Path, extra: &[&str]) -> std::process::Output {
        let run = tokio::process::Command::new(common::pipeline_bin())
            .args(["verify", "--uid", self.names.uid(), "--target", &self.target()])
            .arg("--api-key-file")
            .arg(key_file)
            .args(["--aws-endpoint-url", &common::s3_endpoint()])
            .args(extra)
            .env("RUST_BACKTRACE", "0")
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(Duration::from_secs(120), run).await.expect("verify ends within two minutes").unwrap()
    }

    async fn objects(&self) -> usize {
        let client = common::s3_client().await;
        let listed = client.list_objects_v2().bucket(self.names.sink_bucket()).prefix("topics/").send().await.unwrap();
        listed.contents().len()
    }
}

#[tokio::test]
async fn verify_passes_on_a_working_deployment_and_removes_what_it_wrote() {
    let deployment = LocalDeployment::start(true).await;
    // The stream worker, into Delta tables in a directory.
    let delta = tempfile::tempdir().unwrap();
    let _stream = tokio::process::Command::new(common::pipeline_bin())
        .args(["stream", "--uid", deployment.names.uid(), "--output"])
        .arg(delta.path())
        .env("AWS_ENDPOINT_URL", common::s3_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let delta_arg = delta.path().display().to_string();
    let out = deployment.verify(deployment.key_file.path(), &["--stream", "--delta", &delta_arg]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for hop in ["ingest", "kinesis", "sink", "delta", "batch"] {
        let line = stdout.lines().find(|l| l.trim_start().starts_with(hop)).unwrap_or_else(|| panic!("no {hop} line: {stdout}"));
        assert!(line.contains(" ok "), "{line}");
    }
    assert!(stdout.contains("9 record(s) acknowledged"), "{stdout}");
    assert!(stdout.contains("cleaned 9 rows"), "{stdout}");
    assert!(stdout.contains("removed 9 object(s)"), "{stdout}");
    assert_eq!(deployment.objects().await, 0, "the objects it caused are gone");
}

#[tokio::test]
async fn verify_names_the_broken_hop_and_its_likely_cause() {
    let mut deployment = LocalDeployment::start(false).await;

    // A wrong key: the first hop, refused for auth; nothing is sent on.
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "not-the-key").unwrap();
    let out = deployment.verify(wrong.path(), &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("hop `ingest` (likely cause: auth)"), "{stderr}");

    // Nothing listening: the first hop, for the network.
    let out = tokio::process::Command::new(common::pipeline_bin())
        .args(["verify", "--uid", deployment.names.uid(), "--target", "http://127.0.0.1:9", "--sink-timeout", "5"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("hop `ingest` (likely cause: network)"), "{stderr}");

    // No streams behind the Kinesis routes: that hop, as not running.
    let out = deployment.verify(deployment.key_file.path(), &["--stream"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("hop `kinesis` (likely cause: not running)"), "{stderr}");

    // The sink stopped: ingest passes, the sink hop fails as not running.
    deployment.stop_sink().await;
    let out = deployment.verify(deployment.key_file.path(), &["--sink-timeout", "5"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("ingest") && l.contains(" ok ")), "{stdout}");
    assert!(stderr.contains("hop `sink` (likely cause: not running)"), "{stderr}");
    assert!(stderr.contains("pin 0/3"), "{stderr}");
}

//! `provision`, `status` and `teardown` against LocalStack, the second local
//! AWS (`cargo xtask local up --localstack`; `cargo xtask test` starts it and
//! sets PIPELINE_LOCALSTACK_ENDPOINT). Its free edition has S3, STS, IAM,
//! EC2, API Gateway and Kinesis; MSK, MSK Connect and MWAA are reported as
//! not available there and passed over. The client machine is skipped: its
//! EC2 does not see the instance profiles its IAM makes (docs/SPEC.md 8.8).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use infra::provision::{Action, Component, Options, Provisioner, WaitOptions};
use templates::config::PipelineConfig;

fn endpoint() -> String {
    std::env::var("PIPELINE_LOCALSTACK_ENDPOINT")
        .expect("PIPELINE_LOCALSTACK_ENDPOINT is unset: run the tests with `cargo xtask test`, which starts LocalStack")
}

async fn provisioner(uid: &str, keys: &std::path::Path, dry_run: bool) -> Provisioner {
    let mut config = PipelineConfig::for_uid(uid);
    config.set("kafka.bootstrap_servers", "b-1.localstack:9098").unwrap();
    config.set("api_gateway.ip_ranges_url", &common::ip_ranges_file()).unwrap();
    // The original data path, so that MSK Connect is asked (and found missing).
    config.set("ec2.data_path", "original").unwrap();
    // A local plugin file: provisioning uploads it before it asks MSK Connect.
    let plugin = keys.join("connector-plugin.zip");
    std::fs::write(&plugin, b"PK\x03\x04 a stand-in for the Confluent S3 sink zip").unwrap();
    config.set("connect.plugin_source", plugin.to_str().unwrap()).unwrap();
    let aws = aws_setup::AwsTarget::emulator(endpoint());
    let options = Options {
        dry_run,
        skip: [Component::Client].into(),
        wait: WaitOptions { timeout: Duration::from_secs(60), interval: Duration::from_millis(200), progress: false },
        key_dir: keys.to_path_buf(),
        delete_data: true,
    };
    Provisioner::new(infra::clients::Clients::new(&aws.load().await), config, options)
}

fn unavailable(p: &Provisioner) -> Vec<Component> {
    p.steps
        .iter()
        .filter(|s| matches!(&s.action, Action::Skip(why) if why.starts_with("not available at this endpoint")))
        .map(|s| s.component)
        .collect()
}

#[tokio::test]
async fn localstack_gets_the_components_it_has_and_reports_the_rest() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut first = provisioner(&uid, keys.path(), false).await;
    first.apply().await.expect("apply on LocalStack");
    assert_eq!(unavailable(&first), [Component::Msk, Component::Connect, Component::Mwaa], "{:#?}", first.steps);
    let created: Vec<String> = first.steps.iter().filter(|s| s.action == Action::Create).map(|s| s.resource.clone()).collect();
    for wanted in [
        format!("s3 bucket user-{uid}-bucket"),
        format!("iam role {uid}-ec2-access-role"),
        format!("security group {uid}-client-sg"),
        format!("key pair {uid}-key-pair"),
        format!("kinesis stream streaming-{uid}-pin"),
        format!("rest api {uid}-pipeline-api"),
        format!("usage plan {uid}-usage-plan"),
        format!("api key {uid}-api-key"),
    ] {
        assert!(created.contains(&wanted), "{wanted} not created: {created:?}");
    }
    let mut second = provisioner(&uid, keys.path(), false).await;
    second.apply().await.expect("second apply");
    // The create MSK answers 501 to is tried again; nothing else is sent.
    let sent: Vec<String> =
        second.clients.log.mutating().into_iter().filter(|o| o.service != "Kafka").map(|o| format!("{} {}", o.service, o.name)).collect();
    assert_eq!(sent, Vec::<String>::new(), "a second apply changes nothing");

    let mut status = provisioner(&uid, keys.path(), false).await;
    let found = status.status().await.expect("status on LocalStack");
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &found {
        *kinds.entry(f.kind).or_default() += 1;
    }
    for kind in ["s3 bucket", "iam role", "security group", "key pair", "kinesis stream", "rest api", "usage plan", "api key"] {
        assert!(kinds.contains_key(kind), "status lists no {kind}: {kinds:?}");
    }
    // MSK clusters are looked up through the tagging API, which LocalStack has.
    assert_eq!(unavailable(&status), [Component::Connect, Component::Mwaa]);

    let mut down = provisioner(&uid, keys.path(), false).await;
    down.teardown().await.expect("teardown on LocalStack");
    let mut after = provisioner(&uid, keys.path(), false).await;
    assert_eq!(after.status().await.unwrap(), [], "nothing tagged remains");
}

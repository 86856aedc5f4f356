//! Every request `provision` and `teardown` send, checked against AWS's
//! published service models (botocore's `service-2.json`, pinned in the
//! venv `cargo xtask test` installs), not only against what moto or the
//! replay client accept: required and unknown members, string and list
//! lengths, patterns, enums and numeric ranges, each violation named by
//! operation, member path and rule (`tests/python/aws_request_check.py`).
//!
//! What this cannot see: rules a service applies beyond its model (S3's
//! bucket naming, IAM policy grammar, account quotas, which versions and
//! instance types a region offers). Those are known only on AWS.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use infra::oplog::SentRequest;

use crate::common;

/// The checker's report, Err when it found a violation.
pub(crate) fn check(requests: &[SentRequest]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.json");
    std::fs::write(&file, serde_json::to_vec(requests).unwrap()).unwrap();
    let out = std::process::Command::new(common::python_from_env("PIPELINE_AWSMODEL_PYTHON"))
        .arg(common::tests_dir().join("python/aws_request_check.py"))
        .arg(&file)
        .output()
        .expect("running the service model check");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(text) }
}

/// Requests serialised by the SDK against a replayed answer: what the
/// checker must refuse, so that a pass above means something.
#[tokio::test]
async fn the_check_names_the_operation_the_member_and_the_rule() {
    let answer = || {
        ReplayEvent::new(
            http::Request::builder().uri("https://replayed.invalid/").body(SdkBody::empty()).unwrap(),
            http::Response::builder().status(200).body(SdkBody::from("{}")).unwrap(),
        )
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(StaticReplayClient::new(vec![answer(), answer(), answer()]))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("AKIDREPLAY", "replay-secret", None, None, "replay"))
        .load()
        .await;
    let clients = infra::clients::Clients::new(&sdk);
    clients.log.keep_requests();
    let _ = clients.kafka.create_cluster_v2().cluster_name("c".repeat(65)).send().await;
    let _ = clients.mwaa.get_environment().name("0e2a0bfcc015-mwaa").send().await;
    let _ = clients.kinesis.create_stream().stream_name("s").shard_count(1).send().await;
    let requests = clients.log.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let report = check(&requests).expect_err("violations found");
    assert!(report.contains("Kafka:CreateClusterV2.ClusterName: 65 characters, more than the maximum 64"), "{report}");
    assert!(report.contains("MWAA:GetEnvironment.Name = '0e2a0bfcc015-mwaa': does not match the pattern"), "{report}");
    assert!(!report.lines().any(|l| l.starts_with("Kinesis:")), "a valid request passes: {report}");
    // A valid request alone passes.
    check(&requests[2..]).expect("CreateStream is valid");
}

/// uids at the edges of the uid rule: led by a digit (the original's is),
/// with `-`, and of the longest allowed length.
fn edge_uids() -> Vec<String> {
    let id = common::fresh_names().uid()[1..].to_string();
    vec![format!("0{id}"), format!("a-{id}-z"), format!("{id}{}", "9".repeat(40 - id.len()))]
}

/// A full apply against moto (every component it has), a second apply,
/// and a teardown, for each edge uid, with the moto tests' own settings:
/// every request they sent meets the service models.
#[tokio::test]
async fn every_request_of_apply_and_teardown_meets_the_service_models() {
    use crate::provision_moto::{config, provisioner};
    let keys = tempfile::tempdir().unwrap();
    let mut requests = Vec::new();
    for uid in edge_uids() {
        for step in ["apply", "second apply", "teardown"] {
            let mut p = provisioner(config(&uid), keys.path(), false).await;
            p.clients.log.keep_requests();
            let done = if step == "teardown" { p.teardown().await } else { p.apply().await };
            done.unwrap_or_else(|e| panic!("{step} for {uid}: {e}"));
            requests.extend(p.clients.log.requests());
        }
    }
    let services: std::collections::BTreeSet<_> = requests.iter().map(|r| r.service.as_str()).collect();
    for wanted in ["S3", "IAM", "EC2", "Kafka", "Kinesis", "API Gateway"] {
        assert!(services.contains(wanted), "no {wanted} request was captured: {services:?}");
    }
    match check(&requests) {
        Ok(report) => eprintln!("{report}"),
        Err(report) => panic!("requests AWS would refuse:\n{report}"),
    }
}

/// Findings the linter makes on AWS's own documented policies, which the
/// deployment keeps word for word: (policy name suffix, issue, why).
const DOCUMENTED_EXCEPTIONS: [(&str, &str, &str); 1] = [(
    "-mwaa-execution-role",
    "RESOURCE_MISMATCH",
    "AWS's documented MWAA execution policy grants s3:GetObject*, s3:GetBucket* and s3:List* on the DAGs bucket; \
     the wildcards also name actions of other resource kinds, which these ARNs never grant",
)];

/// Every permission policy `provision` attaches passes parliament
/// (PyPI), an IAM linter, with nothing above LOW severity but the findings
/// listed above: malformed documents, actions that do not exist, resources
/// of the wrong form for an action. IAM itself accepts many of these, and
/// the role then fails only when used.
#[test]
fn every_policy_document_passes_the_iam_linter() {
    let config = templates::config::PipelineConfig::for_uid("0e2a-lint");
    let documents: serde_json::Map<String, serde_json::Value> =
        infra::provision::policy_documents(&config, "us-east-1", "123456789012").into_iter().collect();
    assert!(documents.len() >= 5, "every role's policy: {:?}", documents.keys());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.json");
    std::fs::write(&file, serde_json::to_vec(&documents).unwrap()).unwrap();
    let out = std::process::Command::new(common::python_from_env("PIPELINE_IAMLINT_PYTHON"))
        .arg(common::tests_dir().join("python/iam_lint.py"))
        .arg(&file)
        .output()
        .expect("running parliament");
    assert!(out.status.success(), "parliament failed: {}", String::from_utf8_lossy(&out.stderr));
    let findings: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON finding a line")).collect();
    let serious: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| !matches!(f["severity"].as_str(), Some("LOW" | "INFO")))
        .filter(|f| {
            !DOCUMENTED_EXCEPTIONS
                .iter()
                .any(|(suffix, issue, _)| f["policy"].as_str().is_some_and(|p| p.ends_with(suffix)) && f["issue"] == *issue)
        })
        .collect();
    assert!(serious.is_empty(), "IAM linter findings above LOW:\n{}", serious.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"));
    // An exception that no longer applies goes from the list.
    for (suffix, issue, _) in DOCUMENTED_EXCEPTIONS {
        assert!(
            findings.iter().any(|f| f["policy"].as_str().is_some_and(|p| p.ends_with(suffix)) && f["issue"] == issue),
            "no {issue} on {suffix} any more: remove the exception"
        );
    }
}

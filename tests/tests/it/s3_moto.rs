//! Write and list objects in moto's S3, through the AWS set-up's SDK client
//! and the object_store the sink and batch job use.

use crate::common;

use object_store::{ObjectStoreExt, PutPayload};
use pipeline_storage::{self as storage, Location};

#[tokio::test]
async fn objects_written_are_listed_and_read_back() {
    common::set_dummy_aws_env();
    let client = common::s3_client().await;
    let bucket = common::fresh_names().sink_bucket();
    assert_eq!(aws_setup::s3::ensure_bucket(&client, &bucket).await.unwrap(), aws_setup::s3::BucketState::Created);
    assert_eq!(aws_setup::s3::ensure_bucket(&client, &bucket).await.unwrap(), aws_setup::s3::BucketState::Exists);

    let location = Location::parse(&format!("s3://{bucket}")).unwrap();
    let store = storage::open(&location, &common::moto()).await.unwrap();
    let keys: Vec<String> = (0..25).map(|o| pipeline_sink::object_key("x.pin", o % 2, o as i64)).collect();
    for k in &keys {
        store.put(&k.as_str().into(), PutPayload::from(format!("{{\"k\":\"{k}\"}}\n"))).await.unwrap();
    }

    // Listing pages through more than one response when asked for small pages.
    let mut listed = aws_setup::s3::list_keys(&client, &bucket, "topics/x.pin/").await.unwrap();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(aws_setup::s3::list_keys(&client, &bucket, "topics/none/").await.unwrap().is_empty());

    let body = store.get(&keys[3].as_str().into()).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), format!("{{\"k\":\"{}\"}}\n", keys[3]).as_bytes());
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_that_names_it() {
    let client = common::s3_client().await;
    let err = aws_setup::s3::list_keys(&client, "no-such-bucket-for-tests", "").await.unwrap_err();
    assert!(err.to_string().contains("no-such-bucket-for-tests"), "{err}");
}

/// The `pipeline` binary with no AWS settings of the user's: no keys, no
/// profile, no instance metadata.
fn bare_pipeline() -> std::process::Command {
    let home = tempfile::tempdir().unwrap().keep();
    let mut cmd = std::process::Command::new(common::pipeline_bin());
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", &home).env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// One AWS set-up for every component: a loopback endpoint is an emulator
/// and needs no credentials, for the S3 side too (it used to ask the
/// instance-metadata address and fail with a 403).
#[tokio::test]
async fn a_loopback_endpoint_needs_no_credentials_in_the_environment() {
    let client = common::s3_client().await;
    let names = common::fresh_names();
    aws_setup::s3::ensure_bucket(&client, &names.sink_bucket()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = std::process::Command::new(common::pipeline_bin())
        .args(["generate", "--uid", names.uid(), "--count", "20", "--flush-size", "10", "--output"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let store = storage::open(&Location::parse(&format!("s3://{}", names.sink_bucket())).unwrap(), &common::moto()).await.unwrap();
    for entry in walk(dir.path()) {
        let key = entry.strip_prefix(dir.path()).unwrap().to_str().unwrap().to_string();
        store.put(&key.as_str().into(), PutPayload::from(std::fs::read(&entry).unwrap())).await.unwrap();
    }
    let out = bare_pipeline()
        .args(["batch", "--uid", names.uid(), "--print", "none", "--aws-endpoint-url", &common::s3_endpoint()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("raw rows pin: 20"), "{stderr}");
}

/// Without credentials against a real (non-loopback) endpoint, the error
/// names the problem and the fix, before any request is sent.
#[test]
fn missing_credentials_are_named_with_the_fix() {
    let out = bare_pipeline()
        .args(["batch", "--uid", "abc", "--print", "none", "--aws-endpoint-url", "https://s3.example.invalid"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    assert!(stderr.contains("AWS_PROFILE") && stderr.contains("127.0.0.1"), "names the fixes: {stderr}");
    assert!(!stderr.contains("169.254.169.254"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// The REST proxy needs no AWS credentials: only its Kinesis routes use
/// AWS, and they answer with the SDK's error when there are none.
#[tokio::test]
async fn ingest_starts_without_aws_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = bare_pipeline().args(["ingest", "--listen", &format!("127.0.0.1:{port}")]).spawn().unwrap();
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/")).await {
            answered = Some(resp.status().as_u16());
            break;
        }
        if let Some(status) = server.try_wait().unwrap() {
            panic!("ingest exited without AWS credentials: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(answered, Some(200));
}

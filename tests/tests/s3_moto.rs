//! Write and list objects in moto's S3, through the infra crate's SDK client
//! and the object_store the sink and batch job use.

mod common;

use object_store::{ObjectStoreExt, PutPayload};
use pipeline::storage::{self, Location};

#[tokio::test]
async fn objects_written_are_listed_and_read_back() {
    common::set_dummy_aws_env();
    let client = common::s3_client().await;
    let bucket = common::fresh_names().sink_bucket();
    assert_eq!(infra::s3::ensure_bucket(&client, &bucket).await.unwrap(), infra::s3::BucketState::Created);
    assert_eq!(infra::s3::ensure_bucket(&client, &bucket).await.unwrap(), infra::s3::BucketState::Exists);

    let location = Location::parse(&format!("s3://{bucket}")).unwrap();
    let store = storage::open(&location, &common::s3_settings()).unwrap();
    let keys: Vec<String> = (0..25).map(|o| pipeline::sink::object_key("x.pin", o % 2, o as i64)).collect();
    for k in &keys {
        store.put(&k.as_str().into(), PutPayload::from(format!("{{\"k\":\"{k}\"}}\n"))).await.unwrap();
    }

    // Listing pages through more than one response when asked for small pages.
    let mut listed = infra::s3::list_keys(&client, &bucket, "topics/x.pin/").await.unwrap();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(infra::s3::list_keys(&client, &bucket, "topics/none/").await.unwrap().is_empty());

    let body = store.get(&keys[3].as_str().into()).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), format!("{{\"k\":\"{}\"}}\n", keys[3]).as_bytes());
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_that_names_it() {
    let client = common::s3_client().await;
    let err = infra::s3::list_keys(&client, "no-such-bucket-for-tests", "").await.unwrap_err();
    assert!(err.to_string().contains("no-such-bucket-for-tests"), "{err}");
}

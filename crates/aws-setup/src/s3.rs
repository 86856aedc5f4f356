//! S3 buckets and objects: the client (path-style for emulators) and the
//! few calls that the local stack, the demo and provisioning share.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("creating bucket {bucket} failed: {detail}")]
    CreateBucket { bucket: String, detail: String },
    #[error("listing s3://{bucket}/{prefix} failed: {detail}")]
    List { bucket: String, prefix: String, detail: String },
    #[error("uploading s3://{bucket}/{key} failed: {detail}")]
    Put { bucket: String, key: String, detail: String },
    #[error("s3://{bucket}/{key} is not there after the upload: {detail}")]
    Verify { bucket: String, key: String, detail: String },
}

/// S3 client; path-style addressing when an endpoint override is set,
/// because moto and LocalStack on 127.0.0.1 have no per-bucket host names.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::from_conf(config_builder(config).build())
}

pub fn config_builder(config: &aws_config::SdkConfig) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some())
}

/// Whether the bucket was made by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Created,
    Exists,
}

/// Create the bucket unless this account already owns it.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<BucketState, S3Error> {
    // HeadBucket first: us-east-1 (and moto) answer a repeated CreateBucket
    // with success, which would make "Created" a lie and apply non-idempotent.
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(BucketState::Exists);
    }
    let region = client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let mut req = client.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(BucketState::Created),
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(BucketState::Exists),
        Err(e) => Err(S3Error::CreateBucket { bucket: bucket.to_string(), detail: DisplayErrorContext(&e).to_string() }),
    }
}

/// All keys under a prefix, following continuation tokens.
pub async fn list_keys(client: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| S3Error::List {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            detail: DisplayErrorContext(&e).to_string(),
        })?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}

/// An object as stored: its ETag, and its version in a versioned bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub etag: String,
    pub version_id: Option<String>,
}

/// Upload an object and confirm it landed: HeadObject must report the same
/// size. Returns the object's ETag and version.
pub async fn put_verified(client: &Client, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<StoredObject, S3Error> {
    let len = body.len() as i64;
    let put_err = |detail: String| S3Error::Put { bucket: bucket.to_string(), key: key.to_string(), detail };
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(body.into())
        .send()
        .await
        .map_err(|e| put_err(DisplayErrorContext(&e).to_string()))?;
    let verify_err = |detail: String| S3Error::Verify { bucket: bucket.to_string(), key: key.to_string(), detail };
    let head = client.head_object().bucket(bucket).key(key).send().await.map_err(|e| verify_err(DisplayErrorContext(&e).to_string()))?;
    if head.content_length() != Some(len) {
        return Err(verify_err(format!("size {:?}, uploaded {len} bytes", head.content_length())));
    }
    Ok(StoredObject { etag: head.e_tag().unwrap_or_default().to_string(), version_id: head.version_id().map(str::to_string) })
}

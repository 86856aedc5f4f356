//! S3 buckets and objects.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("creating bucket {bucket} failed: {detail}")]
    CreateBucket { bucket: String, detail: String },
    #[error("listing s3://{bucket}/{prefix} failed: {detail}")]
    List { bucket: String, prefix: String, detail: String },
}

/// S3 client; path-style addressing when an endpoint override is set,
/// because moto and LocalStack on 127.0.0.1 have no per-bucket host names.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
    Client::from_conf(conf)
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

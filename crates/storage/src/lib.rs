//! Where the sink writes and the batch job reads: S3 (real AWS, moto or
//! LocalStack, by endpoint) or a local directory, behind `object_store`.

use std::sync::Arc;

use std::time::{Duration, SystemTime};

use aws_setup::AwsTarget;
use aws_setup::aws_credential_types::Credentials;
use aws_setup::aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{CredentialProvider, ObjectStore};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("`{0}` is not a storage location: use s3://bucket[/prefix], file:///dir or a directory path")]
    BadLocation(String),
    #[error("cannot open {location}: {source}")]
    Open { location: String, source: object_store::Error },
    #[error("cannot create directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error(transparent)]
    Aws(#[from] aws_setup::AwsSetupError),
    #[error(transparent)]
    Bucket(#[from] aws_setup::s3::S3Error),
}

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Local { dir: std::path::PathBuf },
}

impl Location {
    pub fn parse(s: &str) -> Result<Self, StorageError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::BadLocation(s.to_string()));
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
        }
        let dir = match Url::parse(s) {
            Ok(u) if u.scheme() == "file" => u.to_file_path().map_err(|_| StorageError::BadLocation(s.to_string()))?,
            Ok(u) if u.scheme().len() > 1 => return Err(StorageError::BadLocation(s.to_string())),
            _ => std::path::PathBuf::from(s),
        };
        Ok(Location::Local { dir })
    }

    /// URL form DataFusion registers object stores under.
    pub fn url(&self) -> Result<Url, StorageError> {
        match self {
            Location::S3 { bucket, prefix } => {
                Url::parse(&format!("s3://{bucket}/{prefix}")).map_err(|_| StorageError::BadLocation(bucket.clone()))
            }
            Location::Local { dir } => {
                let abs = std::path::absolute(dir).map_err(|source| StorageError::CreateDir { dir: dir.display().to_string(), source })?;
                Url::from_directory_path(&abs).map_err(|_| StorageError::BadLocation(dir.display().to_string()))
            }
        }
    }

    /// A location under this one.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => Location::S3 { bucket: bucket.clone(), prefix: name.to_string() },
            Location::S3 { bucket, prefix } => Location::S3 { bucket: bucket.clone(), prefix: format!("{prefix}/{name}") },
            Location::Local { dir } => Location::Local { dir: dir.join(name) },
        }
    }

    /// Key prefix inside the store (empty for a local directory, which is
    /// the store's root).
    pub fn prefix(&self) -> Path {
        Path::from(self.layout().as_str())
    }

    /// Where the sink layout starts inside the store: the prefix that every
    /// layout key and listing is joined to.
    pub fn layout(&self) -> contract::layout::Prefix {
        match self {
            Location::S3 { prefix, .. } => contract::layout::Prefix::new(prefix),
            Location::Local { .. } => contract::layout::Prefix::default(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Local { dir } => write!(f, "{}", dir.display()),
        }
    }
}

/// Open the object store for a location. Local directories are created.
/// S3 goes through the workspace's one AWS set-up (`aws_setup::AwsTarget`):
/// the same endpoint, region and credential rules as every SDK client, and
/// the same error when there are no credentials.
pub async fn open(location: &Location, aws: &AwsTarget) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match location {
        Location::S3 { .. } => open_with(location, &aws.load().await).await,
        Location::Local { dir } => local_store(location, dir),
    }
}

/// [`open`] with an AWS configuration already loaded, for a caller that
/// talks to several services (the stream worker: Kinesis and S3).
pub async fn open_with(location: &Location, sdk: &aws_setup::aws_config::SdkConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match location {
        Location::S3 { bucket, .. } => {
            // Checked here, so a missing credential is the set-up's error,
            // not a failed request later; the first request then uses them.
            let checked = aws_setup::credentials(sdk).await?;
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(sdk.region().map_or(aws_setup::FALLBACK_REGION, |r| r.as_ref()))
                .with_credentials(Arc::new(SdkCredentials::new(sdk, &checked)));
            let endpoint =
                std::env::var("AWS_ENDPOINT_URL_S3").ok().filter(|u| !u.is_empty()).or_else(|| sdk.endpoint_url().map(str::to_string));
            if let Some(ep) = endpoint {
                b = b.with_endpoint(&ep).with_allow_http(ep.starts_with("http://"));
            }
            let store = b.build().map_err(|source| StorageError::Open { location: location.to_string(), source })?;
            Ok(Arc::new(store))
        }
        Location::Local { dir } => local_store(location, dir),
    }
}

fn local_store(location: &Location, dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, StorageError> {
    std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir { dir: dir.display().to_string(), source })?;
    let store = LocalFileSystem::new_with_prefix(dir).map_err(|source| StorageError::Open { location: location.to_string(), source })?;
    Ok(Arc::new(store))
}

/// Create the bucket of an S3 location if it is missing (a local
/// emulator's; on AWS `provision` creates the deployment's buckets). A
/// directory needs nothing: `open` creates it.
pub async fn ensure_bucket(location: &Location, aws: &AwsTarget) -> Result<(), StorageError> {
    if let Location::S3 { bucket, .. } = location {
        let client = aws_setup::s3::client(&aws.load_checked().await?);
        aws_setup::s3::ensure_bucket(&client, bucket).await?;
    }
    Ok(())
}

/// object_store's S3 client signing with the SDK's credentials. The SDK's
/// providers do not cache (its clients keep an identity cache of their
/// own), so this keeps the last credentials until five minutes before they
/// expire: object_store asks once per request.
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(sdk: &aws_setup::aws_config::SdkConfig, checked: &Credentials) -> Self {
        let provider = sdk.credentials_provider().expect("credentials were found, so there is a provider");
        Self { provider, cached: tokio::sync::Mutex::new(Some((Arc::new(object_store_credential(checked)), checked.expiry()))) }
    }
}

fn object_store_credential(c: &Credentials) -> AwsCredential {
    AwsCredential {
        key_id: c.access_key_id().to_string(),
        secret_key: c.secret_access_key().to_string(),
        token: c.session_token().map(str::to_string),
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        let fresh = |expiry: &Option<SystemTime>| expiry.is_none_or(|at| at > SystemTime::now() + Duration::from_secs(300));
        if let Some((credential, _)) = cached.as_ref().filter(|(_, expiry)| fresh(expiry)) {
            return Ok(credential.clone());
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Unauthenticated { path: String::new(), source: Box::new(e) })?;
        let credential = Arc::new(object_store_credential(&c));
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://user-x-bucket/some/prefix/").unwrap(),
            Location::S3 { bucket: "user-x-bucket".into(), prefix: "some/prefix".into() }
        );
        assert_eq!(Location::parse("s3://b").unwrap(), Location::S3 { bucket: "b".into(), prefix: "".into() });
        assert_eq!(Location::parse("out/dir").unwrap(), Location::Local { dir: "out/dir".into() });
        assert_eq!(Location::parse("file:///tmp/x").unwrap(), Location::Local { dir: "/tmp/x".into() });
        assert!(Location::parse("s3:///nobucket").is_err());
        assert!(Location::parse("gs://other").unwrap_err().to_string().contains("s3://bucket"));
        assert_eq!(Location::parse("s3://b").unwrap().join("t").to_string(), "s3://b/t");
        assert_eq!(Location::parse("s3://b/p/").unwrap().join("t").to_string(), "s3://b/p/t");
        assert_eq!(Location::parse("d").unwrap().join("t"), Location::Local { dir: "d/t".into() });
    }
}

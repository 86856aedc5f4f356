//! Where the sink writes and the batch job reads: S3 (real AWS, moto or
//! LocalStack, by endpoint) or a local directory, behind `object_store`.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("`{0}` is not a storage location: use s3://bucket[/prefix], file:///dir or a directory path")]
    BadLocation(String),
    #[error("cannot open {location}: {source}")]
    Open { location: String, source: object_store::Error },
    #[error("cannot create directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
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
        match self {
            Location::S3 { prefix, .. } => Path::from(prefix.as_str()),
            Location::Local { .. } => Path::from(""),
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

/// S3 connection settings; credentials and region come from the standard
/// AWS environment variables.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint override (moto, LocalStack); `AWS_ENDPOINT_URL` otherwise.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// Open the object store for a location. Local directories are created.
pub fn open(location: &Location, s3: &S3Settings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match location {
        Location::S3 { bucket, .. } => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = s3
                .endpoint
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
            if let Some(ep) = endpoint {
                b = b.with_endpoint(&ep).with_allow_http(ep.starts_with("http://"));
            }
            let region = s3
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            b = b.with_region(region);
            let store = b.build().map_err(|source| StorageError::Open { location: location.to_string(), source })?;
            Ok(Arc::new(store))
        }
        Location::Local { dir } => {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir { dir: dir.display().to_string(), source })?;
            let store =
                LocalFileSystem::new_with_prefix(dir).map_err(|source| StorageError::Open { location: location.to_string(), source })?;
            Ok(Arc::new(store))
        }
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

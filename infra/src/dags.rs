//! Deploying the Airflow DAG to MWAA's bucket: MWAA picks up DAG files from
//! `dags/` and the Python requirements from `requirements.txt` (SPEC 6).

use aws_sdk_s3::Client;

use crate::s3::{self, S3Error};

/// Object keys of a deployed DAG.
pub fn dag_key(uid: &str) -> String {
    format!("dags/{uid}_dag.py")
}

pub const REQUIREMENTS_KEY: &str = "requirements.txt";

/// An uploaded file and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub key: String,
    pub etag: String,
}

/// Upload the rendered DAG and requirements.txt to the dags bucket and
/// confirm both are there.
pub async fn deploy(client: &Client, bucket: &str, uid: &str, dag: &str, requirements: &str) -> Result<Vec<Uploaded>, S3Error> {
    let mut out = Vec::new();
    for (key, body, content_type) in
        [(dag_key(uid), dag, "text/x-python"), (REQUIREMENTS_KEY.to_string(), requirements, "text/plain")]
    {
        let etag = s3::put_verified(client, bucket, &key, body.as_bytes().to_vec(), content_type).await?;
        out.push(Uploaded { key, etag });
    }
    Ok(out)
}

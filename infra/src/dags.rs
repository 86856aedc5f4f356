//! Deploying the Airflow DAG to MWAA's bucket: MWAA picks up DAG files from
//! `dags/` and the Python requirements from `requirements.txt` (SPEC 6).

use aws_sdk_s3::Client;

use aws_setup::s3::{self, S3Error};

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
    for (key, body, content_type) in [(dag_key(uid), dag, "text/x-python"), (REQUIREMENTS_KEY.to_string(), requirements, "text/plain")] {
        let etag = s3::put_verified(client, bucket, &key, body.as_bytes().to_vec(), content_type).await?;
        out.push(Uploaded { key, etag });
    }
    Ok(out)
}

/// What MWAA's Airflow says about a deployed DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagState {
    /// Not parsed yet (MWAA picks up new files within a few minutes).
    NotYetParsed,
    Loaded {
        is_paused: bool,
    },
    /// The file failed to import; the stack trace Airflow recorded.
    ImportError(String),
}

#[derive(Debug, thiserror::Error)]
#[error("asking MWAA environment {environment} about {dag_id}: {detail}")]
pub struct DagStateError {
    pub environment: String,
    pub dag_id: String,
    pub detail: String,
}

fn to_json(doc: &aws_smithy_types::Document) -> serde_json::Value {
    use aws_smithy_types::{Document, Number};
    match doc {
        Document::Object(m) => m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<serde_json::Map<_, _>>().into(),
        Document::Array(a) => a.iter().map(to_json).collect(),
        Document::Number(Number::PosInt(n)) => (*n).into(),
        Document::Number(Number::NegInt(n)) => (*n).into(),
        Document::Number(Number::Float(f)) => (*f).into(),
        Document::String(s) => s.clone().into(),
        Document::Bool(b) => (*b).into(),
        Document::Null => serde_json::Value::Null,
    }
}

/// Ask the environment's Airflow REST API (MWAA InvokeRestApi) for the DAG,
/// and for import errors of its file when Airflow does not know it.
pub async fn dag_state(mwaa: &aws_sdk_mwaa::Client, environment: &str, uid: &str) -> Result<DagState, DagStateError> {
    use aws_sdk_mwaa::types::RestApiMethod;
    let dag_id = format!("{uid}_dag");
    let err = |detail: String| DagStateError { environment: environment.to_string(), dag_id: dag_id.clone(), detail };
    let describe = |e: &dyn std::error::Error| aws_sdk_mwaa::error::DisplayErrorContext(e).to_string();
    match mwaa.invoke_rest_api().name(environment).path(format!("/dags/{dag_id}")).method(RestApiMethod::Get).send().await {
        Ok(out) => {
            let dag = out.rest_api_response().map(to_json).unwrap_or_default();
            return Ok(DagState::Loaded { is_paused: dag["is_paused"].as_bool().unwrap_or(true) });
        }
        Err(e)
            if e.as_service_error().and_then(|s| match s {
                aws_sdk_mwaa::operation::invoke_rest_api::InvokeRestApiError::RestApiClientException(c) => c.rest_api_status_code(),
                _ => None,
            }) == Some(404) => {}
        Err(e) => return Err(err(describe(&e))),
    }
    let out = mwaa
        .invoke_rest_api()
        .name(environment)
        .path("/importErrors")
        .method(RestApiMethod::Get)
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    let errors = out.rest_api_response().map(to_json).unwrap_or_default();
    let file = format!("{dag_id}.py");
    let mine =
        errors["import_errors"].as_array().into_iter().flatten().find(|e| e["filename"].as_str().is_some_and(|f| f.ends_with(&file)));
    Ok(match mine {
        Some(e) => DagState::ImportError(e["stack_trace"].as_str().unwrap_or("(no stack trace)").to_string()),
        None => DagState::NotYetParsed,
    })
}

//! Deploying the Airflow DAG to MWAA's bucket: MWAA picks up DAG files from
//! `dags/` and the Python requirements from `requirements.txt` (SPEC 6).

use aws_sdk_s3::Client;

use aws_setup::s3::{self, S3Error};

use crate::provision::WaitOptions;

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

/// requirements.txt in the dags bucket, as MWAA is to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// The object version holding the rendered text: MWAA installs a
    /// version named in the environment, not whatever the key holds now.
    pub version_id: Option<String>,
    /// Whether this call uploaded it (the text differed, or was missing).
    pub uploaded: bool,
}

/// Make requirements.txt hold `text`. Uploads only when it differs: in a
/// versioned bucket each upload is a new version, and a new version makes
/// the environment reinstall its packages (an update of 10-30 minutes).
pub async fn sync_requirements(client: &Client, bucket: &str, text: &str) -> Result<Requirements, S3Error> {
    let current = client.get_object().bucket(bucket).key(REQUIREMENTS_KEY).send().await;
    if let Ok(object) = current {
        let version_id = object.version_id().map(str::to_string);
        let body = object.body.collect().await.map(|b| b.into_bytes());
        if body.is_ok_and(|b| b == text.as_bytes()) {
            return Ok(Requirements { version_id, uploaded: false });
        }
    }
    let stored = s3::put_verified(client, bucket, REQUIREMENTS_KEY, text.as_bytes().to_vec(), "text/plain").await?;
    Ok(Requirements { version_id: stored.version_id, uploaded: true })
}

/// Upload the rendered DAG (and requirements.txt when it changed) to the
/// dags bucket and confirm both are there.
pub async fn deploy(client: &Client, bucket: &str, uid: &str, dag: &str, requirements: &str) -> Result<(Uploaded, Requirements), S3Error> {
    let key = dag_key(uid);
    let stored = s3::put_verified(client, bucket, &key, dag.as_bytes().to_vec(), "text/x-python").await?;
    let requirements = sync_requirements(client, bucket, requirements).await?;
    Ok((Uploaded { key, etag: stored.etag }, requirements))
}

#[derive(Debug, thiserror::Error)]
pub enum RequirementsUpdateError {
    #[error("reading MWAA environment {environment}: {detail}")]
    Read { environment: String, detail: String },
    #[error(
        "MWAA environment {environment} installs requirements.txt version {installed:?}; the dags bucket holds {wanted:?}. \
         Updating it failed: {detail}"
    )]
    Update { environment: String, installed: Option<String>, wanted: Option<String>, detail: String },
}

/// What [`install_requirements`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementsInstall {
    /// The environment already installs that version.
    Current,
    /// UpdateEnvironment was called and the environment is AVAILABLE again.
    Updated { from: Option<String> },
}

/// Point the environment at `requirements` (path and object version) unless
/// it already installs that version, and wait until the update is done:
/// MWAA installs requirements only at create and update, never on its own.
pub async fn install_requirements(
    mwaa: &aws_sdk_mwaa::Client,
    environment: &str,
    requirements: &Requirements,
    wait_options: &WaitOptions,
) -> Result<RequirementsInstall, RequirementsUpdateError> {
    let describe = |e: &dyn std::error::Error| aws_sdk_mwaa::error::DisplayErrorContext(e).to_string();
    let env = mwaa
        .get_environment()
        .name(environment)
        .send()
        .await
        .map_err(|e| RequirementsUpdateError::Read { environment: environment.into(), detail: describe(&e) })?;
    let env = env.environment();
    let installed = env.and_then(|e| e.requirements_s3_object_version()).map(str::to_string);
    let path_set = env.and_then(|e| e.requirements_s3_path()) == Some(REQUIREMENTS_KEY);
    if path_set && installed == requirements.version_id {
        return Ok(RequirementsInstall::Current);
    }
    let failed = |detail: String| RequirementsUpdateError::Update {
        environment: environment.into(),
        installed: installed.clone(),
        wanted: requirements.version_id.clone(),
        detail,
    };
    mwaa.update_environment()
        .name(environment)
        .requirements_s3_path(REQUIREMENTS_KEY)
        .set_requirements_s3_object_version(requirements.version_id.clone())
        .send()
        .await
        .map_err(|e| failed(describe(&e)))?;
    // On UPDATE_FAILED MWAA rolls back to the previous requirements.
    crate::provision::mwaa::wait_available(
        mwaa,
        environment,
        aws_sdk_mwaa::types::EnvironmentStatus::UpdateFailed,
        wait_options,
        "to install the new requirements",
    )
    .await
    .map_err(|e| failed(e.to_string()))?;
    Ok(RequirementsInstall::Updated { from: installed })
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

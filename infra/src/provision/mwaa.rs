//! The MWAA environment (SPEC 6): reads DAGs from `dags/` and requirements
//! from `requirements.txt` in the dags bucket. MWAA needs two private
//! subnets with a NAT route, which a default VPC does not have, so the
//! environment waits for `airflow.subnet_ids`.

use aws_sdk_mwaa::types::{EnvironmentStatus, NetworkConfiguration, WebserverAccessMode};

use super::wait::{self, Poll};
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Mwaa;

/// The Amazon provider's Secrets Manager backend, which MWAA ships.
pub const SECRETS_BACKEND: &str = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend";

/// (arn, status, tagged by this stack) of the environment, if any.
async fn find(p: &Provisioner) -> Result<Option<(String, String, bool)>> {
    let name = &p.names.mwaa_environment;
    match p.clients.mwaa.get_environment().name(name).send().await {
        Ok(out) => Ok(out.environment().map(|e| {
            (
                e.arn().unwrap_or_default().to_string(),
                e.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                e.tags().and_then(|t| t.get(STACK_TAG)).map(String::as_str) == Some(p.uid()),
            )
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(ProvisionError::aws("GetEnvironment", name.clone())(e)),
    }
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let name = p.names.mwaa_environment.clone();
    let resource = format!("mwaa environment {name}");
    if let Some((arn, status, ours)) = find(p).await? {
        p.record(C, resource, if ours { Action::Exists } else { Action::Foreign });
        p.found.mwaa_arn = Some(arn);
        if status != "AVAILABLE" {
            tracing::warn!("mwaa environment {name} is {status}");
        }
        return Ok(());
    }
    let subnets = p.config.airflow.subnet_ids.clone();
    if subnets.len() != 2 {
        p.record(
            C,
            resource,
            Action::Skip(format!(
                "needs airflow.subnet_ids: two private subnets with a NAT route in different zones (MWAA refuses public subnets); {} given",
                subnets.len()
            )),
        );
        return Ok(());
    }
    p.record(C, resource, Action::Create);
    if p.dry_run() {
        return Ok(());
    }
    let role = p
        .found
        .role_arns
        .get("mwaa")
        .cloned()
        .ok_or_else(|| ProvisionError::Config("the MWAA execution role is unknown: run without --skip iam".into()))?;
    let security_group = p
        .found
        .mwaa_security_group_id
        .clone()
        .ok_or_else(|| ProvisionError::Config("MWAA's security group is unknown: run without --skip mwaa-network".into()))?;
    let bucket = p.names.dags_bucket.clone();
    // MWAA installs requirements only at create and update, from the object
    // version it is given: upload them first, so that the environment is
    // born with the Databricks provider its DAG imports.
    let text =
        templates::render::mwaa_requirements(&templates::Templates::new(), &p.config).map_err(|e| ProvisionError::Config(e.to_string()))?;
    let requirements = crate::dags::sync_requirements(&p.clients.s3, &bucket, &text)
        .await
        .map_err(|e| ProvisionError::Failed { what: "uploading MWAA's requirements.txt".into(), detail: e.to_string() })?;
    let (k, v) = p.stack_tag();
    let out = p
        .clients
        .mwaa
        .create_environment()
        .name(&name)
        .execution_role_arn(role)
        .source_bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .dag_s3_path("dags")
        .requirements_s3_path(crate::dags::REQUIREMENTS_KEY)
        .set_requirements_s3_object_version(requirements.version_id)
        .network_configuration(NetworkConfiguration::builder().set_subnet_ids(Some(subnets)).security_group_ids(security_group).build())
        // Connections come from Secrets Manager: the DAG's databricks_default
        // is the secret <prefix>/databricks_default (README, "Databricks
        // prerequisites").
        .airflow_configuration_options("secrets.backend", SECRETS_BACKEND)
        .airflow_configuration_options(
            "secrets.backend_kwargs",
            serde_json::json!({"connections_prefix": p.names.airflow_connections_prefix}).to_string(),
        )
        .airflow_version(&p.config.airflow.version)
        .environment_class(&p.config.airflow.environment_class)
        .webserver_access_mode(WebserverAccessMode::PublicOnly)
        .tags(k, v)
        .send()
        .await
        .map_err(ProvisionError::aws("CreateEnvironment", name.clone()))?;
    p.found.mwaa_arn = out.arn().map(str::to_string);
    wait_available(&p.clients.mwaa, &name, EnvironmentStatus::CreateFailed, &p.options.wait, "to be AVAILABLE").await
}

/// Wait until the environment is AVAILABLE after a create or an update;
/// `failed` (CREATE_FAILED, UPDATE_FAILED) ends the wait with MWAA's reason.
pub(crate) async fn wait_available(
    mwaa: &aws_sdk_mwaa::Client,
    name: &str,
    failed: EnvironmentStatus,
    options: &wait::WaitOptions,
    what: &str,
) -> Result<()> {
    wait::until(options, &format!("mwaa environment {name} {what}"), || {
        let (mwaa, name, failed) = (mwaa.clone(), name.to_string(), failed.clone());
        async move {
            let out = mwaa.get_environment().name(&name).send().await.map_err(ProvisionError::aws("GetEnvironment", name.clone()))?;
            let env = out.environment();
            Ok(match env.and_then(|e| e.status()) {
                Some(EnvironmentStatus::Available) => Poll::Ready(()),
                Some(s) if *s == failed => Poll::Failed(format!(
                    "{}: {}",
                    s.as_str(),
                    env.and_then(|e| e.last_update()).and_then(|u| u.error()).and_then(|e| e.error_message()).unwrap_or("no reason given")
                )),
                Some(s) => Poll::Pending(s.as_str().to_string()),
                None => Poll::Pending("unknown".into()),
            })
        }
    })
    .await
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    Ok(find(p)
        .await?
        .filter(|(_, _, ours)| *ours)
        .map(|(_, status, _)| Found { component: C, kind: "mwaa environment", id: p.names.mwaa_environment.clone(), state: Some(status) })
        .into_iter()
        .collect())
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let mwaa = p.clients.mwaa.clone();
    for f in found {
        if f.state.as_deref() != Some("DELETING") {
            mwaa.delete_environment().name(&f.id).send().await.map_err(ProvisionError::aws("DeleteEnvironment", f.id.clone()))?;
        }
        wait::until(&p.options.wait, &format!("mwaa environment {} to be deleted", f.id), || {
            let (mwaa, name) = (mwaa.clone(), f.id.clone());
            async move {
                match mwaa.get_environment().name(&name).send().await {
                    Ok(out) => {
                        Ok(Poll::Pending(out.environment().and_then(|e| e.status()).map(|s| s.as_str().to_string()).unwrap_or_default()))
                    }
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(Poll::Ready(())),
                    Err(e) => Err(ProvisionError::aws("GetEnvironment", name.clone())(e)),
                }
            }
        })
        .await?;
    }
    Ok(())
}

//! Airflow's connection to the Databricks workspace (`databricks_default`,
//! which the DAG uses), stored where MWAA's Secrets Manager backend reads
//! it: the secret `<connections prefix>/databricks_default`. Its value is
//! made from `databricks.host` and the token in `databricks.token_file`, so
//! the token is never in a config file, on a command line, in the plan or
//! in the output. A secret the user made by hand (untagged) is used as it
//! is, never changed.

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::AirflowConnection;

/// What `status` and teardown call it.
pub const KIND: &str = "secretsmanager secret";

/// The connection id the rendered DAG names (the Databricks provider's default).
pub const CONNECTION_ID: &str = "databricks_default";

/// Days a secret teardown deleted can still be restored: the fewest Secrets
/// Manager allows. A re-apply within them restores it.
const RECOVERY_WINDOW_DAYS: i64 = 7;

/// The secret's name for this stack.
pub fn secret_name(p: &Provisioner) -> String {
    format!("{}/{CONNECTION_ID}", p.names.airflow_connections_prefix)
}

/// A secret of that name, as Secrets Manager describes it.
struct Existing {
    ours: bool,
    /// Scheduled for deletion (by a teardown): restorable, not usable.
    deleted: bool,
}

async fn describe(p: &Provisioner, name: &str) -> Result<Option<Existing>> {
    match p.clients.secretsmanager.describe_secret().secret_id(name).send().await {
        Ok(out) => Ok(Some(Existing {
            ours: out.tags().iter().any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(p.uid())),
            deleted: out.deleted_date().is_some(),
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(ProvisionError::aws("DescribeSecret", name.to_string())(e)),
    }
}

/// The connection in Airflow's JSON form, which the Secrets Manager backend
/// reads: a token is given as the password, with no login.
fn connection_json(host: &str, token: &str) -> String {
    serde_json::json!({"conn_type": "databricks", "host": host, "password": token}).to_string()
}

/// `~/...` as a shell would read it: the config file is written by hand.
fn home_relative(path: &std::path::Path) -> std::path::PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The secret's wanted value, or None when no token file is configured.
fn wanted_value(p: &Provisioner) -> Result<Option<String>> {
    let d = &p.config.databricks;
    let Some(token_file) = &d.token_file else { return Ok(None) };
    let host = d.host.as_deref().ok_or_else(|| {
        ProvisionError::Config(
            "databricks.token_file is set but databricks.host is not: set it to the workspace URL, \
             e.g. --set databricks.host=https://dbc-1234abcd-5678.cloud.databricks.com"
                .into(),
        )
    })?;
    let token_file = home_relative(token_file);
    let text = std::fs::read_to_string(&token_file)
        .map_err(|source| ProvisionError::Io { what: format!("reading databricks.token_file {}", token_file.display()), source })?;
    let token = text.trim();
    if token.is_empty() || token.lines().count() > 1 {
        return Err(ProvisionError::Config(format!(
            "databricks.token_file {} must hold one Databricks token on one line (a service principal's, for a scheduled job)",
            token_file.display()
        )));
    }
    Ok(Some(connection_json(host, token)))
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let name = secret_name(p);
    let resource = format!("{KIND} {name}");
    let existing = describe(p, &name).await?;
    let wanted = wanted_value(p)?;
    let (k, v) = p.stack_tag();
    let sm = p.clients.secretsmanager.clone();
    match (existing, wanted) {
        (Some(e), _) if !e.ours => p.record(C, resource, Action::Foreign),
        (None, None) => p.record(
            C,
            resource,
            Action::Skip(
                "no databricks.token_file: set it (and databricks.host) to store the DAG's connection, \
                 or create the secret yourself (README, \"Databricks prerequisites\")"
                    .into(),
            ),
        ),
        // Ours, and nothing configured to change it with: kept as it is.
        (Some(e), None) if !e.deleted => p.record(C, resource, Action::Exists),
        (Some(_), None) => p.record(
            C,
            resource,
            Action::Skip("scheduled for deletion by a teardown; set databricks.token_file to restore it with a new value".into()),
        ),
        (None, Some(value)) => {
            p.record(C, resource, Action::Create);
            if !p.dry_run() {
                sm.create_secret()
                    .name(&name)
                    .description(format!("Airflow connection {CONNECTION_ID} of the pinterest pipeline {}", p.uid()))
                    .secret_string(value)
                    .tags(aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build())
                    .send()
                    .await
                    .map_err(ProvisionError::aws("CreateSecret", name.clone()))?;
            }
        }
        (Some(e), Some(value)) => {
            let current = if e.deleted {
                None
            } else {
                let out =
                    sm.get_secret_value().secret_id(&name).send().await.map_err(ProvisionError::aws("GetSecretValue", name.clone()))?;
                out.secret_string().map(str::to_string)
            };
            if current.as_deref() == Some(value.as_str()) {
                p.record(C, resource, Action::Exists);
                return Ok(());
            }
            let why = if e.deleted {
                "scheduled for deletion by a teardown: restored, with the configured value"
            } else {
                "value differs from databricks.host and databricks.token_file"
            };
            p.record(C, resource, Action::Update(why.into()));
            if p.dry_run() {
                return Ok(());
            }
            if e.deleted {
                sm.restore_secret().secret_id(&name).send().await.map_err(ProvisionError::aws("RestoreSecret", name.clone()))?;
            }
            sm.put_secret_value()
                .secret_id(&name)
                .secret_string(value)
                .send()
                .await
                .map_err(ProvisionError::aws("PutSecretValue", name.clone()))?;
        }
    }
    p.found.airflow_connection_secret = Some(name);
    Ok(())
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let name = secret_name(p);
    Ok(match describe(p, &name).await? {
        Some(e) if e.ours && !e.deleted => vec![Found { component: C, kind: KIND, id: name, state: None }],
        _ => Vec::new(),
    })
}

/// Scheduled for deletion, restorable for [`RECOVERY_WINDOW_DAYS`]: the
/// token may be the only copy of a service principal's.
pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    for f in found {
        p.clients
            .secretsmanager
            .delete_secret()
            .secret_id(&f.id)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await
            .map_err(ProvisionError::aws("DeleteSecret", f.id.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_under_home_is_read_there() {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
        assert_eq!(home_relative(std::path::Path::new("~/.databricks/t")), home.join(".databricks/t"));
        assert_eq!(home_relative(std::path::Path::new("/etc/t")), std::path::Path::new("/etc/t"));
    }

    #[test]
    fn the_connection_is_airflow_json_with_the_token_as_password() {
        let v: serde_json::Value = serde_json::from_str(&connection_json("https://dbc-1.cloud.databricks.com", "dapi123")).unwrap();
        assert_eq!(v, serde_json::json!({"conn_type": "databricks", "host": "https://dbc-1.cloud.databricks.com", "password": "dapi123"}));
    }
}

//! MSK Connect (seed section 5): the Confluent S3 sink plugin zip uploaded
//! to the sink bucket, the custom plugin `<uid>-plugin`, and the connector
//! `<uid>-connector` with the original settings (rendered
//! s3-sink-connector.properties).

use std::collections::HashMap;

use aws_sdk_kafkaconnect::types::{
    ApacheKafkaCluster, Capacity, ConnectorState, CustomPlugin, CustomPluginContentType, CustomPluginLocation, CustomPluginState,
    KafkaCluster, KafkaClusterClientAuthentication, KafkaClusterClientAuthenticationType, KafkaClusterEncryptionInTransit,
    KafkaClusterEncryptionInTransitType, LogDelivery, Plugin, ProvisionedCapacity, S3Location, S3LogDelivery, Vpc, WorkerLogDelivery,
};

use super::wait::{self, Poll};

/// Where MSK Connect delivers its workers' logs in the sink bucket.
pub const CONNECT_LOG_PREFIX: &str = "connect-logs";
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Connect;

/// Key of the plugin zip in the sink bucket, as in the original.
pub(crate) fn plugin_key(source: &str) -> String {
    let file = source.rsplit('/').next().filter(|f| !f.is_empty()).unwrap_or("connector.zip");
    format!("kafka-connect-s3/{file}")
}

/// `key=value` lines of a .properties file, comments and blanks skipped.
pub(crate) fn parse_properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    if p.config.ec2.data_path == templates::config::DataPath::Pipeline {
        p.record(C, "(all)", Action::Skip("ec2.data_path = \"pipeline\": `pipeline sink` on the client machine writes the bucket".into()));
        return Ok(());
    }
    upload_plugin(p).await?;
    let plugin_arn = ensure_plugin(p).await?;
    ensure_connector(p, plugin_arn).await
}

async fn upload_plugin(p: &mut Provisioner) -> Result<()> {
    let source = p.config.connect.plugin_source.clone();
    let (bucket, key) = (p.names.sink_bucket.clone(), plugin_key(&source));
    if !p.object_needs_upload(C, &bucket, &key).await? {
        return Ok(());
    }
    let bytes = read_source(&source).await?;
    aws_setup::s3::put_verified(&p.clients.s3, &bucket, &key, bytes, "application/zip")
        .await
        .map_err(|e| ProvisionError::Failed { what: "uploading the connector plugin".into(), detail: e.to_string() })?;
    Ok(())
}

/// The plugin zip from a local path or an http(s) URL.
async fn read_source(source: &str) -> Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let failed = |detail: String| ProvisionError::Failed {
            what: format!("downloading the connector plugin {source}"),
            detail: format!("{detail}; download it yourself and set connect.plugin_source to the file's path"),
        };
        let resp = reqwest::get(source).await.map_err(|e| failed(e.to_string()))?;
        let resp = resp.error_for_status().map_err(|e| failed(e.to_string()))?;
        return Ok(resp.bytes().await.map_err(|e| failed(e.to_string()))?.to_vec());
    }
    std::fs::read(source).map_err(|e| ProvisionError::Io { what: format!("reading connect.plugin_source {source}"), source: e })
}

async fn has_stack_tag(p: &Provisioner, arn: &str) -> Result<bool> {
    let out = p
        .clients
        .connect
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(ProvisionError::aws("ListTagsForResource", arn.to_string()))?;
    Ok(out.tags().and_then(|t| t.get(STACK_TAG)).map(String::as_str) == Some(p.uid()))
}

/// (arn, state) of the custom plugin named `name`.
async fn find_plugin(p: &Provisioner, name: &str) -> Result<Option<(String, String)>> {
    let mut pages = p.clients.connect.list_custom_plugins().name_prefix(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("ListCustomPlugins", name.to_string()))?;
        if let Some(found) = page.custom_plugins().iter().find(|c| c.name() == Some(name)) {
            return Ok(Some((
                found.custom_plugin_arn().unwrap_or_default().to_string(),
                found.custom_plugin_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            )));
        }
    }
    Ok(None)
}

async fn ensure_plugin(p: &mut Provisioner) -> Result<Option<String>> {
    let name = p.names.plugin.clone();
    let resource = format!("custom plugin {name}");
    let arn = match find_plugin(p, &name).await? {
        Some((arn, _)) => {
            let ours = has_stack_tag(p, &arn).await?;
            p.record(C, resource, if ours { Action::Exists } else { Action::Foreign });
            arn
        }
        None => {
            p.record(C, resource, Action::Create);
            if p.dry_run() {
                return Ok(None);
            }
            let bucket_arn = format!("arn:aws:s3:::{}", p.names.sink_bucket);
            let location = S3Location::builder()
                .bucket_arn(bucket_arn)
                .file_key(plugin_key(&p.config.connect.plugin_source))
                .build()
                .expect("bucket and key set");
            let (k, v) = p.stack_tag();
            let out = p
                .clients
                .connect
                .create_custom_plugin()
                .name(&name)
                .content_type(CustomPluginContentType::Zip)
                .location(CustomPluginLocation::builder().s3_location(location).build())
                .description("Confluent S3 sink connector")
                .tags(k, v)
                .send()
                .await
                .map_err(ProvisionError::aws("CreateCustomPlugin", name.clone()))?;
            out.custom_plugin_arn().unwrap_or_default().to_string()
        }
    };
    let connect = p.clients.connect.clone();
    wait::until(&p.options.wait, &format!("custom plugin {name} to be ACTIVE"), || {
        let (connect, arn) = (connect.clone(), arn.clone());
        async move {
            let out = connect
                .describe_custom_plugin()
                .custom_plugin_arn(&arn)
                .send()
                .await
                .map_err(ProvisionError::aws("DescribeCustomPlugin", arn.clone()))?;
            Ok(match out.custom_plugin_state() {
                Some(CustomPluginState::Active) => Poll::Ready(()),
                Some(CustomPluginState::CreateFailed) => Poll::Failed(format!(
                    "CREATE_FAILED: {} (is connect.plugin_source a Kafka Connect plugin zip?)",
                    out.state_description().and_then(|d| d.message()).unwrap_or("no reason given")
                )),
                Some(s) => Poll::Pending(s.as_str().to_string()),
                None => Poll::Pending("unknown".into()),
            })
        }
    })
    .await?;
    p.found.plugin_arn = Some(arn.clone());
    Ok(Some(arn))
}

async fn find_connector(p: &Provisioner, name: &str) -> Result<Option<(String, String)>> {
    let mut pages = p.clients.connect.list_connectors().connector_name_prefix(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("ListConnectors", name.to_string()))?;
        if let Some(c) = page.connectors().iter().find(|c| c.connector_name() == Some(name)) {
            return Ok(Some((
                c.connector_arn().unwrap_or_default().to_string(),
                c.connector_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            )));
        }
    }
    Ok(None)
}

async fn ensure_connector(p: &mut Provisioner, plugin_arn: Option<String>) -> Result<()> {
    let name = p.names.connector.clone();
    let resource = format!("connector {name}");
    if let Some((arn, state)) = find_connector(p, &name).await? {
        let ours = has_stack_tag(p, &arn).await?;
        p.record(C, resource, if ours { Action::Exists } else { Action::Foreign });
        if state != "RUNNING" {
            tracing::warn!("connector {name} is {state}");
        }
        p.found.connector_arn = Some(arn);
        return Ok(());
    }
    p.record(C, resource, Action::Create);
    let Some(plugin_arn) = plugin_arn.filter(|_| !p.dry_run()) else {
        return Ok(());
    };
    // The connector needs a reachable cluster and its bootstrap servers.
    super::msk::wait_active(p).await?;
    let bootstrap = p
        .found
        .bootstrap_servers
        .clone()
        .ok_or_else(|| ProvisionError::Config("the MSK bootstrap servers are unknown: run without --skip msk".into()))?;
    let role = p
        .found
        .role_arns
        .get("connect")
        .cloned()
        .ok_or_else(|| ProvisionError::Config("the MSK Connect role is unknown: run without --skip iam".into()))?;
    let files = p.provisioning_files()?;
    let vpc = Vpc::builder()
        .set_subnets(Some(p.found.subnet_ids.clone()))
        .set_security_groups(p.found.security_group_id.clone().map(|g| vec![g]))
        .build()
        .expect("subnets set");
    let (k, v) = p.stack_tag();
    let out = p
        .clients
        .connect
        .create_connector()
        .connector_name(&name)
        .set_connector_configuration(Some(parse_properties(&files.connector_properties)))
        .capacity(
            Capacity::builder()
                .provisioned_capacity(ProvisionedCapacity::builder().mcu_count(1).worker_count(p.config.connect.workers as i32).build())
                .build(),
        )
        .kafka_cluster(
            KafkaCluster::builder()
                .apache_kafka_cluster(ApacheKafkaCluster::builder().bootstrap_servers(bootstrap).vpc(vpc).build().expect("set"))
                .build(),
        )
        .kafka_cluster_client_authentication(
            KafkaClusterClientAuthentication::builder()
                .authentication_type(KafkaClusterClientAuthenticationType::Iam)
                .build()
                .expect("set"),
        )
        .kafka_cluster_encryption_in_transit(
            KafkaClusterEncryptionInTransit::builder().encryption_type(KafkaClusterEncryptionInTransitType::Tls).build().expect("set"),
        )
        .kafka_connect_version(&p.config.connect.kafka_connect_version)
        .plugins(
            Plugin::builder()
                .custom_plugin(CustomPlugin::builder().custom_plugin_arn(plugin_arn).revision(1).build().expect("set"))
                .build(),
        )
        .service_execution_role_arn(role)
        // The workers' logs (a failing S3 upload shows there and nowhere
        // else: the connector stays RUNNING) go to the sink bucket.
        .log_delivery(
            LogDelivery::builder()
                .worker_log_delivery(
                    WorkerLogDelivery::builder()
                        .s3(S3LogDelivery::builder().enabled(true).bucket(&p.names.sink_bucket).prefix(CONNECT_LOG_PREFIX).build())
                        .build(),
                )
                .build(),
        )
        .tags(k, v)
        .send()
        .await
        .map_err(ProvisionError::aws("CreateConnector", name.clone()))?;
    let arn = out.connector_arn().unwrap_or_default().to_string();
    p.found.connector_arn = Some(arn.clone());
    let connect = p.clients.connect.clone();
    wait::until(&p.options.wait, &format!("connector {name} to be RUNNING"), || {
        let (connect, arn) = (connect.clone(), arn.clone());
        async move {
            let out = connect
                .describe_connector()
                .connector_arn(&arn)
                .send()
                .await
                .map_err(ProvisionError::aws("DescribeConnector", arn.clone()))?;
            Ok(match out.connector_state() {
                Some(ConnectorState::Running) => Poll::Ready(()),
                Some(ConnectorState::Failed) => {
                    Poll::Failed(format!("FAILED: {}", out.state_description().and_then(|d| d.message()).unwrap_or("no reason given")))
                }
                Some(s) => Poll::Pending(s.as_str().to_string()),
                None => Poll::Pending("unknown".into()),
            })
        }
    })
    .await
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    if let Some((arn, state)) = find_connector(p, &p.names.connector.clone()).await?
        && has_stack_tag(p, &arn).await?
    {
        out.push(Found { component: C, kind: "connector", id: arn, state: Some(state) });
    }
    if let Some((arn, state)) = find_plugin(p, &p.names.plugin.clone()).await?
        && has_stack_tag(p, &arn).await?
    {
        out.push(Found { component: C, kind: "custom plugin", id: arn, state: Some(state) });
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let connect = p.clients.connect.clone();
    // The connector first: a plugin in use cannot be deleted.
    for f in found.iter().filter(|f| f.kind == "connector") {
        if f.state.as_deref() != Some("DELETING") {
            connect.delete_connector().connector_arn(&f.id).send().await.map_err(ProvisionError::aws("DeleteConnector", f.id.clone()))?;
        }
        wait::until(&p.options.wait, &format!("connector {} to be deleted", p.names.connector), || {
            let (connect, arn) = (connect.clone(), f.id.clone());
            async move {
                match connect.describe_connector().connector_arn(&arn).send().await {
                    Ok(out) => Ok(Poll::Pending(out.connector_state().map(|s| s.as_str().to_string()).unwrap_or_default())),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(Poll::Ready(())),
                    Err(e) => Err(ProvisionError::aws("DescribeConnector", arn.clone())(e)),
                }
            }
        })
        .await?;
    }
    for f in found.iter().filter(|f| f.kind == "custom plugin") {
        connect
            .delete_custom_plugin()
            .custom_plugin_arn(&f.id)
            .send()
            .await
            .map_err(ProvisionError::aws("DeleteCustomPlugin", f.id.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_like_java_properties() {
        let props = parse_properties("# c\n\n! also a comment\na=1\n b = x=y \n");
        assert_eq!(props.len(), 2);
        assert_eq!(props["a"], "1");
        assert_eq!(props["b"], "x=y");
    }
}

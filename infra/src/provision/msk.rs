//! The MSK cluster (IAM auth, TLS), and its bootstrap servers.
//!
//! Topics are created by the client machine's user-data with kafka-topics.sh,
//! as in the original (seed section 4): MSK has no topic API.

use aws_sdk_kafka::types::{
    BrokerNodeGroupInfo, ClientAuthentication, ClientBroker, ClusterState, EbsStorageInfo, EncryptionInTransit, EncryptionInfo, Iam,
    KafkaVersionStatus, Sasl, StorageInfo,
};

use super::wait::{self, Poll};
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Msk;

/// The stack's cluster, found by its tag with the Resource Groups Tagging
/// API (one call, and independent of ListClusters' output, which some
/// emulators render with timestamps the SDK cannot read).
async fn find(p: &Provisioner) -> Result<Option<String>> {
    let (k, v) = p.stack_tag();
    let out = p
        .clients
        .tagging
        .get_resources()
        .resource_type_filters("kafka:cluster")
        .tag_filters(aws_sdk_resourcegroupstagging::types::TagFilter::builder().key(k).values(v).build())
        .send()
        .await
        .map_err(ProvisionError::aws("GetResources", format!("kafka:cluster tagged {STACK_TAG}")))?;
    let arns: Vec<&str> = out.resource_tag_mapping_list().iter().filter_map(|m| m.resource_arn()).collect();
    match arns.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(ProvisionError::Config(format!(
            "{} MSK clusters carry the tag {STACK_TAG}={}: {}; delete the extra ones",
            many.len(),
            p.uid(),
            many.join(", ")
        ))),
    }
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let name = p.names.cluster.clone();
    let resource = format!("msk cluster {name}");
    match find(p).await? {
        Some(arn) => {
            p.record(C, resource, Action::Exists);
            p.found.cluster_arn = Some(arn);
        }
        None => {
            check_version(p).await?;
            p.record(C, resource, Action::Create);
            if p.dry_run() {
                return Ok(());
            }
            let arn = create(p).await?;
            p.found.cluster_arn = Some(arn);
            p.found.cluster_state = Some("CREATING".into());
        }
    }
    if p.dry_run() {
        return Ok(());
    }
    bootstrap_servers(p).await
}

/// MSK phases out new clusters on versions past their end of support, and
/// the name of a version is not checked by the API's model: ask MSK which
/// versions it offers (ListKafkaVersions) before creating, in the plan too.
/// An emulator without the operation is not asked.
async fn check_version(p: &Provisioner) -> Result<()> {
    let wanted = &p.config.kafka.cluster_version;
    let mut active = Vec::new();
    let mut next = None;
    loop {
        let page = match p.clients.kafka.list_kafka_versions().set_next_token(next).send().await {
            Ok(page) => page,
            Err(e) => {
                let e = ProvisionError::aws("ListKafkaVersions", wanted.clone())(e);
                if e.is_unavailable() && p.clients.endpoint_url.is_some() {
                    tracing::debug!("ListKafkaVersions is not available at this endpoint; kafka.cluster_version not checked");
                    return Ok(());
                }
                return Err(e);
            }
        };
        active.extend(
            page.kafka_versions()
                .iter()
                .filter(|v| v.status() == Some(&KafkaVersionStatus::Active))
                .filter_map(|v| v.version().map(str::to_string)),
        );
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    if active.is_empty() || active.contains(wanted) {
        return Ok(());
    }
    Err(ProvisionError::Config(format!(
        "kafka.cluster_version `{wanted}` is not a version MSK offers for new clusters in {}; it offers {}. Set kafka.cluster_version to one of them",
        p.region(),
        active.join(", ")
    )))
}

async fn create(p: &Provisioner) -> Result<String> {
    let k = &p.config.kafka;
    let brokers = BrokerNodeGroupInfo::builder()
        .instance_type(&k.broker_instance_type)
        .set_client_subnets(Some(p.found.subnet_ids.clone()))
        .set_security_groups(p.found.security_group_id.clone().map(|g| vec![g]))
        .storage_info(
            StorageInfo::builder().ebs_storage_info(EbsStorageInfo::builder().volume_size(k.broker_volume_gb as i32).build()).build(),
        )
        .build();
    let (tag_key, tag_value) = p.stack_tag();
    let out = p
        .clients
        .kafka
        .create_cluster()
        .cluster_name(&p.names.cluster)
        .kafka_version(&k.cluster_version)
        .number_of_broker_nodes(k.broker_count as i32)
        .broker_node_group_info(brokers)
        // IAM access control on port 9098, as the original's client.properties expects.
        .client_authentication(
            ClientAuthentication::builder().sasl(Sasl::builder().iam(Iam::builder().enabled(true).build()).build()).build(),
        )
        .encryption_info(
            EncryptionInfo::builder()
                .encryption_in_transit(EncryptionInTransit::builder().client_broker(ClientBroker::Tls).in_cluster(true).build())
                .build(),
        )
        .tags(tag_key, tag_value)
        .send()
        .await
        .map_err(ProvisionError::aws("CreateCluster", p.names.cluster.clone()))?;
    Ok(out.cluster_arn().unwrap_or_default().to_string())
}

/// The IAM bootstrap string: from `kafka.bootstrap_servers` when set (no
/// wait), else once the cluster is ACTIVE (20-30 minutes after creation).
async fn bootstrap_servers(p: &mut Provisioner) -> Result<()> {
    if let Some(servers) = &p.config.kafka.bootstrap_servers {
        tracing::info!("using kafka.bootstrap_servers from the config; not waiting for the cluster");
        p.found.bootstrap_servers = Some(servers.clone());
        return Ok(());
    }
    wait_active(p).await?;
    let arn = p.found.cluster_arn.clone().expect("cluster known");
    let out = p
        .clients
        .kafka
        .get_bootstrap_brokers()
        .cluster_arn(&arn)
        .send()
        .await
        .map_err(ProvisionError::aws("GetBootstrapBrokers", arn.clone()))?;
    let servers = out.bootstrap_broker_string_sasl_iam().ok_or_else(|| ProvisionError::Failed {
        what: format!("bootstrap servers of {arn}"),
        detail: "the cluster has no IAM (SASL_SSL 9098) listener; it was not made by this tool".into(),
    })?;
    p.found.bootstrap_servers = Some(servers.to_string());
    Ok(())
}

/// Wait until the cluster is ACTIVE (also used by MSK Connect, which needs it).
pub(super) async fn wait_active(p: &mut Provisioner) -> Result<()> {
    let arn = p.found.cluster_arn.clone().ok_or_else(|| ProvisionError::Config("the MSK cluster is unknown: do not --skip msk".into()))?;
    if p.found.cluster_state.as_deref() == Some("ACTIVE") {
        return Ok(());
    }
    let kafka = p.clients.kafka.clone();
    let what = format!("msk cluster {} to be ACTIVE", p.names.cluster);
    wait::until(&p.options.wait, &what, || {
        let (kafka, arn) = (kafka.clone(), arn.clone());
        async move {
            let out =
                kafka.describe_cluster().cluster_arn(&arn).send().await.map_err(ProvisionError::aws("DescribeCluster", arn.clone()))?;
            let info = out.cluster_info();
            Ok(match info.and_then(|i| i.state()) {
                Some(ClusterState::Active) => Poll::Ready(()),
                Some(ClusterState::Failed) => Poll::Failed(format!(
                    "cluster state FAILED: {}",
                    info.and_then(|i| i.state_info()).and_then(|s| s.message()).unwrap_or("no reason given")
                )),
                Some(s) => Poll::Pending(s.as_str().to_string()),
                None => Poll::Pending("unknown".into()),
            })
        }
    })
    .await?;
    p.found.cluster_state = Some("ACTIVE".into());
    Ok(())
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    Ok(find(p).await?.map(|arn| Found { component: C, kind: "msk cluster", id: arn, state: None }).into_iter().collect())
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let kafka = p.clients.kafka.clone();
    for f in found {
        match kafka.delete_cluster().cluster_arn(&f.id).send().await {
            Ok(_) => {}
            // Already being deleted (an interrupted teardown): just wait.
            Err(e) if aws_sdk_kafka::error::ProvideErrorMetadata::code(&e) == Some("BadRequestException") => {}
            Err(e) => return Err(ProvisionError::aws("DeleteCluster", f.id.clone())(e)),
        }
        // The security group can only go once the brokers' interfaces are
        // gone. Watched through the tagging API, like the lookup: a deleted
        // cluster drops out of it.
        let what = format!("msk cluster {} to be deleted", p.names.cluster);
        wait::until(&p.options.wait.clone(), &what, || async {
            Ok(match find(p).await? {
                Some(arn) if arn == f.id => Poll::Pending("DELETING".into()),
                _ => Poll::Ready(()),
            })
        })
        .await?;
    }
    Ok(())
}

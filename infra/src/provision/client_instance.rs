//! The EC2 client machine: Kafka CLI, MSK IAM auth and the REST proxy,
//! installed and configured by the rendered user-data.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{IamInstanceProfileSpecification, InstanceStateName, InstanceType, ResourceType};
use base64::Engine as _;

use super::network::{filter, stack_filter, tag_spec};
use super::wait::{self, Poll};
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Client;
/// States of an instance that still counts as "the" client machine.
const LIVE: [&str; 4] = ["pending", "running", "stopping", "stopped"];

async fn find(p: &Provisioner) -> Result<Option<(String, String, Option<String>)>> {
    let mut req = p.clients.ec2.describe_instances().filters(stack_filter(p)).filters(filter("tag:Name", &p.names.instance));
    req = req.filters(
        aws_sdk_ec2::types::Filter::builder().name("instance-state-name").set_values(Some(LIVE.map(String::from).to_vec())).build(),
    );
    let out = req.send().await.map_err(ProvisionError::aws("DescribeInstances", p.names.instance.clone()))?;
    Ok(out.reservations().iter().flat_map(|r| r.instances()).next().map(|i| {
        (
            i.instance_id().unwrap_or_default().to_string(),
            i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
            i.public_dns_name().filter(|d| !d.is_empty()).map(str::to_string),
        )
    }))
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let resource = format!("ec2 instance {}", p.names.instance);
    if let Some((id, state, dns)) = find(p).await? {
        p.record(C, resource, Action::Exists);
        p.found.instance_id = Some(id);
        p.found.public_dns = dns;
        if state != "running" && !p.dry_run() {
            tracing::warn!("the client machine is {state}; API Gateway's proxy needs it running");
        }
        return Ok(());
    }
    p.record(C, resource, Action::Create);
    if p.dry_run() {
        return Ok(());
    }
    let user_data = p.provisioning_files()?.user_data;
    let image = image_id(p).await?;
    let id = run_instance(p, &image, &user_data).await?;
    p.found.instance_id = Some(id.clone());
    let ec2 = p.clients.ec2.clone();
    let what = format!("ec2 instance {id} to be running");
    let dns = wait::until(&p.options.wait, &what, || {
        let (ec2, id) = (ec2.clone(), id.clone());
        async move {
            let out =
                ec2.describe_instances().instance_ids(&id).send().await.map_err(ProvisionError::aws("DescribeInstances", id.clone()))?;
            let Some(i) = out.reservations().iter().flat_map(|r| r.instances()).next() else {
                return Ok(Poll::Pending("not visible yet".into()));
            };
            Ok(match i.state().and_then(|s| s.name()) {
                Some(InstanceStateName::Running) => Poll::Ready(i.public_dns_name().filter(|d| !d.is_empty()).map(str::to_string)),
                Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) => {
                    Poll::Failed(format!("instance {id} is terminating: {:?}", i.state_reason().and_then(|r| r.message())))
                }
                Some(s) => Poll::Pending(s.as_str().to_string()),
                None => Poll::Pending("unknown".into()),
            })
        }
    })
    .await?;
    p.found.public_dns = dns;
    Ok(())
}

/// `ec2.ami_id`, or the region's latest Amazon Linux 2023 (x86_64) image.
async fn image_id(p: &Provisioner) -> Result<String> {
    if let Some(ami) = &p.config.ec2.ami_id {
        return Ok(ami.clone());
    }
    let out = p
        .clients
        .ec2
        .describe_images()
        .owners("amazon")
        .filters(filter("name", "al2023-ami-2023.*-kernel-*-x86_64"))
        .filters(filter("state", "available"))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeImages", "Amazon Linux 2023"))?;
    out.images()
        .iter()
        .filter(|i| i.image_id().is_some())
        .max_by_key(|i| i.creation_date().unwrap_or_default().to_string())
        .and_then(|i| i.image_id().map(str::to_string))
        .ok_or_else(|| {
            ProvisionError::Config(format!(
                "no Amazon Linux 2023 image found in {}; set ec2.ami_id (e.g. --set ec2.ami_id=ami-...)",
                p.region()
            ))
        })
}

async fn run_instance(p: &Provisioner, image: &str, user_data: &str) -> Result<String> {
    let subnet = p.found.subnet_ids.first().cloned();
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_data);
    // A new instance profile takes a few seconds to be usable by EC2.
    let mut attempt = 0;
    loop {
        let out = p
            .clients
            .ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::from(p.config.ec2.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .key_name(&p.names.key_pair)
            .set_security_group_ids(p.found.security_group_id.clone().map(|g| vec![g]))
            .set_subnet_id(subnet.clone())
            .iam_instance_profile(IamInstanceProfileSpecification::builder().name(&p.names.instance_profile).build())
            .user_data(&encoded)
            .tag_specifications(tag_spec(p, ResourceType::Instance, &p.names.instance))
            .send()
            .await;
        match out {
            Ok(out) => {
                return out
                    .instances()
                    .first()
                    .and_then(|i| i.instance_id())
                    .map(str::to_string)
                    .ok_or_else(|| ProvisionError::Failed { what: "RunInstances".into(), detail: "no instance in the answer".into() });
            }
            Err(e)
                if attempt < 12
                    && e.code() == Some("InvalidParameterValue")
                    && e.message().is_some_and(|m| m.contains("iamInstanceProfile")) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            Err(e) => return Err(ProvisionError::aws("RunInstances", p.names.instance.clone())(e)),
        }
    }
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let out = p
        .clients
        .ec2
        .describe_instances()
        .filters(stack_filter(p))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeInstances", format!("tag {STACK_TAG}")))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .map(|i| Found {
            component: C,
            kind: "ec2 instance",
            id: i.instance_id().unwrap_or_default().to_string(),
            state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()),
        })
        .collect())
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let ec2 = p.clients.ec2.clone();
    let ids: Vec<String> = found.iter().map(|f| f.id.clone()).collect();
    ec2.terminate_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .map_err(ProvisionError::aws("TerminateInstances", ids.join(",")))?;
    // The security group and instance profile stay in use until it is gone.
    wait::until(&p.options.wait, &format!("ec2 instance(s) {} to terminate", ids.join(",")), || {
        let (ec2, ids) = (ec2.clone(), ids.clone());
        async move {
            let out = ec2
                .describe_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(ProvisionError::aws("DescribeInstances", ids.join(",")))?;
            let states: Vec<String> = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.state().and_then(|s| s.name()))
                .filter(|s| **s != InstanceStateName::Terminated)
                .map(|s| s.as_str().to_string())
                .collect();
            Ok(if states.is_empty() { Poll::Ready(()) } else { Poll::Pending(states.join(",")) })
        }
    })
    .await
}

//! The EC2 client machine, set up by the rendered user-data: with
//! `ec2.data_path = "pipeline"` (the default) our portable `pipeline`
//! binary, uploaded here to the sink bucket, and its systemd units; with
//! "original", the Kafka CLI, MSK IAM auth and the Confluent REST proxy.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceStateName,
    InstanceType, ResourceType,
};
use base64::Engine as _;

use sha2::Digest as _;
use templates::config::{CLIENT_PREFIX, DataPath, Ec2Vars};

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

/// Where the binary to upload is: `ec2.pipeline_binary`, else what
/// `cargo xtask provision` built (PIPELINE_CLIENT_BINARY).
fn binary_path(p: &Provisioner) -> Option<String> {
    p.config.ec2.pipeline_binary.clone().or_else(|| std::env::var("PIPELINE_CLIENT_BINARY").ok().filter(|s| !s.is_empty()))
}

/// Upload the portable binary under a key named by its SHA-256 (once; a
/// key that exists holds the same bytes) and remember the hash for the
/// user-data.
async fn upload_binary(p: &mut Provisioner) -> Result<()> {
    let bucket = p.names.sink_bucket.clone();
    let Some(path) = binary_path(p) else {
        if p.dry_run() {
            p.record(C, format!("s3 object s3://{bucket}/{CLIENT_PREFIX}pipeline-<sha256>"), Action::Create);
            return Ok(());
        }
        return Err(ProvisionError::Config(
            "ec2.data_path = \"pipeline\" needs the portable `pipeline` binary for the client machine: `cargo xtask provision` \
             builds it; or set ec2.pipeline_binary=<path> (or ec2.data_path=original for the Confluent proxy and MSK Connect)"
                .into(),
        ));
    };
    let bytes = std::fs::read(&path).map_err(|e| ProvisionError::Io { what: format!("reading the client binary {path}"), source: e })?;
    let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let key = Ec2Vars::binary_key(&sha);
    p.found.pipeline_binary_sha256 = Some(sha);
    if !p.object_needs_upload(C, &bucket, &key).await? {
        return Ok(());
    }
    aws_setup::s3::put_verified(&p.clients.s3, &bucket, &key, bytes, "application/octet-stream")
        .await
        .map_err(|e| ProvisionError::Failed { what: "uploading the client binary".into(), detail: e.to_string() })?;
    Ok(())
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    if p.config.ec2.data_path == DataPath::Pipeline {
        upload_binary(p).await?;
    }
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
            // IMDSv2 only: session tokens for the instance's credentials,
            // whatever the account's or the image's default.
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .build(),
            )
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
    let instances: Vec<Found> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .map(|i| Found {
            component: C,
            kind: INSTANCE,
            id: i.instance_id().unwrap_or_default().to_string(),
            state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()),
        })
        .collect();
    let mut found = Vec::new();
    for instance in instances {
        let units = units_of(p, &instance.id).await?;
        let id = instance.id.clone();
        found.push(instance);
        found.extend(units.into_iter().map(|unit| Found {
            component: C,
            kind: UNIT,
            id: format!("{unit} on {id}"),
            state: Some("in its user-data".into()),
        }));
    }
    found.extend(client_objects(p).await?.into_iter().map(|key| Found {
        component: C,
        kind: OBJECT,
        id: format!("s3://{}/{key}", p.names.sink_bucket),
        state: None,
    }));
    Ok(found)
}

const INSTANCE: &str = "ec2 instance";
const UNIT: &str = "systemd unit";
const OBJECT: &str = "s3 object";

/// The systemd units an instance's user-data installs (EC2 keeps the
/// user-data; what runs there is not visible from the API).
async fn units_of(p: &Provisioner, instance: &str) -> Result<Vec<String>> {
    let out = p
        .clients
        .ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeInstanceAttribute", instance.to_string()))?;
    let Some(encoded) = out.user_data().and_then(|v| v.value()) else { return Ok(Vec::new()) };
    let script =
        base64::engine::general_purpose::STANDARD.decode(encoded).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    Ok(units_in(&script))
}

/// `cat > /etc/systemd/system/<unit> <<...` lines of a user-data script.
fn units_in(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cat > /etc/systemd/system/"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// What this tool put under the client prefix of the sink bucket (the
/// binary, the gateway secret); the bucket may be gone already.
async fn client_objects(p: &Provisioner) -> Result<Vec<String>> {
    let bucket = &p.names.sink_bucket;
    let listed = p.clients.s3.list_objects_v2().bucket(bucket).prefix(CLIENT_PREFIX).send().await;
    match listed {
        Ok(out) => Ok(out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => Ok(Vec::new()),
        Err(e) => Err(ProvisionError::aws("ListObjectsV2", format!("s3://{bucket}/{CLIENT_PREFIX}"))(e)),
    }
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    // Units go with their instance; the uploaded files are removed here,
    // whatever the bucket's fate (they are ours, not pipeline data).
    let bucket = p.names.sink_bucket.clone();
    for f in found.iter().filter(|f| f.kind == OBJECT) {
        let key = f.id.trim_start_matches(&format!("s3://{bucket}/")).to_string();
        p.clients.s3.delete_object().bucket(&bucket).key(&key).send().await.map_err(ProvisionError::aws("DeleteObject", f.id.clone()))?;
    }
    let ids: Vec<String> = found.iter().filter(|f| f.kind == INSTANCE).map(|f| f.id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let ec2 = p.clients.ec2.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_from_the_user_data_that_writes_them() {
        let script = "set -e\ncat > /etc/pipeline/pipeline.env <<'ENV'\nX=1\nENV\n\
                      cat > /etc/systemd/system/pipeline-ingest.service <<'SERVICE'\n[Unit]\nSERVICE\n\
                      cat > /etc/systemd/system/kafka-rest.service <<SERVICE\nSERVICE\n";
        assert_eq!(units_in(script), ["pipeline-ingest.service", "kafka-rest.service"]);
        assert!(units_in("echo none").is_empty());
    }
}

//! Network and access of the client machine and the cluster: the default
//! VPC's subnets, one security group, and the EC2 key pair whose private key
//! is written 0600 and never printed. The group opens the REST port to API
//! Gateway's published ranges for the region only, and SSH only to
//! `ec2.ssh_cidr`; any other source on those ports is revoked. On the
//! original data path, an S3 gateway endpoint in the VPC for MSK Connect.

use std::io::Write;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, KeyType, ResourceType, Tag, TagSpecification, UserIdGroupPair, VpcEndpoint, VpcEndpointType,
};
use templates::config::DataPath;

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Network;
const KEY_PAIR: &str = "key pair";
const S3_ENDPOINT: &str = "s3 gateway endpoint";

pub(super) fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Tags for a new EC2 resource: the stack tag and a Name.
pub(super) fn tag_spec(p: &Provisioner, kind: ResourceType, name: &str) -> TagSpecification {
    let (k, v) = p.stack_tag();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key(k).value(v).build())
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

pub(super) fn stack_filter(p: &Provisioner) -> Filter {
    filter(&format!("tag:{STACK_TAG}"), p.uid())
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    default_vpc(p).await?;
    let ranges = super::ip_ranges::read(&p.config.api_gateway.ip_ranges_url, "API_GATEWAY", p.region()).await?;
    p.found.rest_port_sources =
        Some(format!("{} API Gateway range(s) of {} ({}, created {})", ranges.prefixes.len(), p.region(), ranges.source, ranges.created));
    ensure_security_group(p, &ranges.prefixes).await?;
    ensure_key_pair(p).await?;
    if p.config.ec2.data_path == DataPath::Original {
        ensure_s3_endpoint(p).await?;
    }
    Ok(())
}

/// EC2 answers endpoint states in lower case ("deleted"), which the SDK's
/// enum does not name: compared as text.
fn gone(endpoint: &VpcEndpoint) -> bool {
    endpoint.state().is_some_and(|s| matches!(s.as_str().to_ascii_lowercase().as_str(), "deleted" | "deleting"))
}

/// MSK Connect's workers get no public IP, and the default VPC has no NAT
/// gateway: without a way to S3 the connector shows RUNNING while every
/// upload of the S3 sink fails. A gateway endpoint for S3 (no charge) on
/// every route table of the VPC is that way. An S3 gateway endpoint the
/// VPC already has serves as well and is left as it is.
async fn ensure_s3_endpoint(p: &mut Provisioner) -> Result<()> {
    let vpc =
        p.found.vpc_id.clone().ok_or_else(|| ProvisionError::Config("the VPC is unknown: the network's subnets come first".into()))?;
    let service = format!("com.amazonaws.{}.s3", p.region());
    let resource = format!("s3 gateway endpoint {} in {vpc}", p.names.s3_endpoint);
    let ec2 = p.clients.ec2.clone();
    let existing = ec2
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", &vpc))
        .filters(filter("service-name", &service))
        .filters(filter("vpc-endpoint-type", "Gateway"))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeVpcEndpoints", vpc.clone()))?;
    let (key, uid) = p.stack_tag();
    let live = existing.vpc_endpoints().iter().find(|e| !gone(e));
    if let Some(endpoint) = live {
        let ours = endpoint.tags().iter().any(|t| t.key() == Some(key.as_str()) && t.value() == Some(uid.as_str()));
        p.record(C, resource, if ours { Action::Exists } else { Action::Foreign });
        return Ok(());
    }
    p.record(C, resource, Action::Create);
    if p.dry_run() {
        return Ok(());
    }
    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", &vpc))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeRouteTables", vpc.clone()))?;
    let table_ids: Vec<String> = tables.route_tables().iter().filter_map(|t| t.route_table_id().map(str::to_string)).collect();
    ec2.create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Gateway)
        .vpc_id(&vpc)
        .service_name(&service)
        .set_route_table_ids(Some(table_ids))
        .tag_specifications(tag_spec(p, ResourceType::VpcEndpoint, &p.names.s3_endpoint))
        .send()
        .await
        .map_err(ProvisionError::aws("CreateVpcEndpoint", p.names.s3_endpoint.clone()))?;
    Ok(())
}

/// The region's default VPC and one default subnet per availability zone,
/// as many as the broker count divides evenly (MSK's rule), at most three.
async fn default_vpc(p: &mut Provisioner) -> Result<()> {
    let ec2 = &p.clients.ec2;
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("isDefault", "true"))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeVpcs", "default VPC"))?;
    let vpc = vpcs.vpcs().first().and_then(|v| v.vpc_id()).ok_or_else(|| {
        ProvisionError::Config(format!(
            "region {} has no default VPC; create one with `aws ec2 create-default-vpc` (this tool deploys into it)",
            p.region()
        ))
    })?;
    let subnets = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc))
        .filters(filter("default-for-az", "true"))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeSubnets", vpc.to_string()))?;
    // By zone ID, not name: names map to zones differently in each account,
    // and MSK's rules name zone IDs.
    let by_zone: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter_map(|s| Some((s.availability_zone_id().or(s.availability_zone())?.to_string(), s.subnet_id()?.to_string())))
        .collect();
    let chosen = msk_client_subnets(by_zone, p.config.kafka.broker_count as usize, p.region())?;
    p.found.vpc_id = Some(vpc.to_string());
    p.found.subnet_ids = chosen;
    Ok(())
}

/// Zones MSK places no brokers in: "Client subnets can't occupy the
/// Availability Zone with ID use1-az3" (the API's own documentation).
const MSK_UNSUPPORTED_ZONE_IDS: [&str; 1] = ["use1-az3"];

/// Subnets for MSK from (zone ID, subnet ID) pairs: one per zone, none in a
/// zone MSK refuses, as many as the broker count divides evenly, 2 or 3
/// (2 in us-west-1, where MSK takes exactly two).
fn msk_client_subnets(mut by_zone: Vec<(String, String)>, brokers: usize, region: &str) -> Result<Vec<String>> {
    by_zone.retain(|(zone, _)| !MSK_UNSUPPORTED_ZONE_IDS.contains(&zone.as_str()));
    by_zone.sort();
    by_zone.dedup_by(|a, b| a.0 == b.0);
    let most = if region == "us-west-1" { 2 } else { 3 };
    let n = (2..=by_zone.len().min(most)).rev().find(|n| brokers.is_multiple_of(*n)).ok_or_else(|| {
        ProvisionError::Config(format!(
            "MSK needs the broker count ({brokers}) to be a multiple of the subnets used, 2 or 3 in different zones; the default VPC has {} zone(s) MSK accepts ({} excluded). Set kafka.broker_count to 2, 3, 4 or 6",
            by_zone.len(),
            MSK_UNSUPPORTED_ZONE_IDS.join(", ")
        ))
    })?;
    Ok(by_zone.into_iter().take(n).map(|(_, subnet)| subnet).collect())
}

/// A security group's default quota of inbound rules (one per source range).
const MAX_INGRESS_RULES: usize = 60;

/// Ingress the deployment needs: members of the group reach each other
/// (client to brokers on 9098, MSK Connect), API Gateway reaches the REST
/// port from its published ranges, and SSH from the configured range only.
fn wanted_rules(p: &Provisioner, group_id: &str, gateway_ranges: &[String]) -> Vec<IpPermission> {
    let port = i32::from(p.config.rest_proxy_port);
    let mut rest = IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port);
    for cidr in gateway_ranges {
        rest = rest.ip_ranges(IpRange::builder().cidr_ip(cidr).description("API Gateway HTTP proxy to the REST port").build());
    }
    let mut rules = vec![
        IpPermission::builder().ip_protocol("-1").user_id_group_pairs(UserIdGroupPair::builder().group_id(group_id).build()).build(),
        rest.build(),
    ];
    if let Some(cidr) = &p.config.ec2.ssh_cidr {
        rules.push(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip(cidr).description("SSH").build())
                .build(),
        );
    }
    rules
}

/// Sources on the REST and SSH ports that the wanted rules do not name
/// (0.0.0.0/0 from an older deployment, an SSH range since unset).
fn unwanted_rules(p: &Provisioner, existing: &[IpPermission], wanted: &[IpPermission]) -> Vec<IpPermission> {
    let guarded = [i32::from(p.config.rest_proxy_port), 22];
    let mut out = Vec::new();
    for e in existing.iter().filter(|e| e.ip_protocol() == Some("tcp")) {
        let Some(port) = e.from_port().filter(|port| guarded.contains(port) && e.to_port() == Some(*port)) else { continue };
        let allowed: Vec<&str> = wanted
            .iter()
            .filter(|w| w.ip_protocol() == Some("tcp") && w.from_port() == Some(port))
            .flat_map(|w| w.ip_ranges().iter().filter_map(|r| r.cidr_ip()))
            .collect();
        let extra: Vec<IpRange> = e
            .ip_ranges()
            .iter()
            .filter(|r| r.cidr_ip().is_some_and(|c| !allowed.contains(&c)))
            .map(|r| IpRange::builder().set_cidr_ip(r.cidr_ip().map(str::to_string)).build())
            .collect();
        if !extra.is_empty() {
            out.push(IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port).set_ip_ranges(Some(extra)).build());
        }
    }
    out
}

fn rule_present(existing: &[IpPermission], want: &IpPermission) -> bool {
    existing.iter().any(|e| {
        e.ip_protocol() == want.ip_protocol()
            && (want.ip_protocol() == Some("-1") || (e.from_port() == want.from_port() && e.to_port() == want.to_port()))
            && want.ip_ranges().iter().all(|w| e.ip_ranges().iter().any(|r| r.cidr_ip() == w.cidr_ip()))
            && want.user_id_group_pairs().iter().all(|w| e.user_id_group_pairs().iter().any(|g| g.group_id() == w.group_id()))
    })
}

/// A security group of this stack, as [`stack_group`] finds or makes it.
pub(super) enum StackGroup {
    /// Tagged by this stack (or just created): its id and ingress rules.
    Ours { id: String, rules: Vec<IpPermission>, created: bool },
    /// Same name, not tagged by this stack: used, never changed.
    Foreign(String),
    /// To be created; a dry run stops here.
    Planned,
}

/// The group `name` in `vpc`: found, or created tagged (not in a dry run).
/// Records the step as foreign or create; whether one of ours changes is
/// the caller's to say.
pub(super) async fn stack_group(p: &mut Provisioner, component: Component, name: &str, vpc: &str, description: &str) -> Result<StackGroup> {
    let ec2 = p.clients.ec2.clone();
    let resource = format!("security group {name}");
    let groups = ec2
        .describe_security_groups()
        .filters(filter("group-name", name))
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeSecurityGroups", name.to_string()))?;
    if let Some(g) = groups.security_groups().first() {
        let id = g.group_id().unwrap_or_default().to_string();
        if !g.tags().iter().any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(p.uid())) {
            p.record(component, resource, Action::Foreign);
            return Ok(StackGroup::Foreign(id));
        }
        return Ok(StackGroup::Ours { id, rules: g.ip_permissions().to_vec(), created: false });
    }
    p.record(component, resource, Action::Create);
    if p.dry_run() {
        return Ok(StackGroup::Planned);
    }
    let out = ec2
        .create_security_group()
        .group_name(name)
        .description(description)
        .vpc_id(vpc)
        .tag_specifications(tag_spec(p, ResourceType::SecurityGroup, name))
        .send()
        .await
        .map_err(ProvisionError::aws("CreateSecurityGroup", name.to_string()))?;
    Ok(StackGroup::Ours { id: out.group_id().unwrap_or_default().to_string(), rules: Vec::new(), created: true })
}

async fn ensure_security_group(p: &mut Provisioner, gateway_ranges: &[String]) -> Result<()> {
    let rules = gateway_ranges.len() + 1 + usize::from(p.config.ec2.ssh_cidr.is_some());
    if rules > MAX_INGRESS_RULES {
        return Err(ProvisionError::Config(format!(
            "API Gateway has {} address ranges in {}: with the group's other rules that is {rules} inbound rules, above a security group's default quota of {MAX_INGRESS_RULES}; raise the quota (Service Quotas, \"Inbound or outbound rules per security group\") and re-run",
            gateway_ranges.len(),
            p.region()
        )));
    }
    let ec2 = p.clients.ec2.clone();
    let name = p.names.security_group.clone();
    let vpc = p.found.vpc_id.clone().expect("default_vpc ran");
    let resource = format!("security group {name}");
    let description = format!("Kafka client and MSK of pipeline {}", p.uid());
    let (group_id, existing, created) = match stack_group(p, C, &name, &vpc, &description).await? {
        StackGroup::Ours { id, rules, created } => (id, rules, created),
        StackGroup::Foreign(id) => {
            p.found.security_group_id = Some(id);
            return Ok(());
        }
        StackGroup::Planned => return Ok(()),
    };
    p.found.security_group_id = Some(group_id.clone());
    let wanted = wanted_rules(p, &group_id, gateway_ranges);
    // A rule is missing when any of its sources is; authorizing one that
    // exists fails, so only the missing sources are sent.
    let missing: Vec<IpPermission> = wanted
        .iter()
        .filter(|w| !rule_present(&existing, w))
        .map(|w| {
            let mut w = w.clone();
            let have = |r: &IpRange| {
                existing.iter().any(|e| e.from_port() == w.from_port() && e.ip_ranges().iter().any(|x| x.cidr_ip() == r.cidr_ip()))
            };
            if w.ip_protocol() == Some("tcp") {
                w.ip_ranges = Some(w.ip_ranges().iter().filter(|r| !have(r)).cloned().collect());
            }
            w
        })
        .collect();
    let unwanted = unwanted_rules(p, &existing, &wanted);
    if !created {
        if missing.is_empty() && unwanted.is_empty() {
            p.record(C, resource, Action::Exists);
            return Ok(());
        }
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("{} ingress rule(s) missing", missing.len()));
        }
        let revoked: Vec<String> = unwanted
            .iter()
            .flat_map(|u| {
                u.ip_ranges()
                    .iter()
                    .map(move |r| format!("{} on port {}", r.cidr_ip().unwrap_or_default(), u.from_port().unwrap_or_default()))
            })
            .collect();
        if !revoked.is_empty() {
            why.push(format!("revoke {}", revoked.join(", ")));
        }
        p.record(C, resource, Action::Update(why.join("; ")));
    }
    if p.dry_run() {
        return Ok(());
    }
    if !unwanted.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(&group_id)
            .set_ip_permissions(Some(unwanted))
            .send()
            .await
            .map_err(ProvisionError::aws("RevokeSecurityGroupIngress", name.clone()))?;
    }
    if !missing.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(&group_id)
            .set_ip_permissions(Some(missing))
            .send()
            .await
            .map_err(ProvisionError::aws("AuthorizeSecurityGroupIngress", name))?;
    }
    Ok(())
}

async fn ensure_key_pair(p: &mut Provisioner) -> Result<()> {
    let ec2 = p.clients.ec2.clone();
    let name = p.names.key_pair.clone();
    let path = p.options.key_dir.join(format!("{name}.pem"));
    let resource = format!("key pair {name}");
    let existing = ec2
        .describe_key_pairs()
        .filters(filter("key-name", &name))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeKeyPairs", name.clone()))?;
    let key_saved = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
    let recreate = if !existing.key_pairs().is_empty() {
        if key_saved {
            p.found.key_file = Some(path);
            p.record(C, resource, Action::Exists);
            return Ok(());
        }
        // AWS hands out a private key once, at creation. If it was lost (a
        // run interrupted before the file was written) and no instance uses
        // the pair yet, make a new pair; otherwise say so and go on.
        if key_in_use(p, &name).await? {
            p.record(C, resource, Action::Exists);
            tracing::warn!(
                "key pair {name} exists but its private key is not at {}; SSH needs the .pem saved when it was created",
                path.display()
            );
            return Ok(());
        }
        p.record(C, resource.clone(), Action::Update("private key lost before it was saved: new key pair".into()));
        true
    } else {
        p.record(C, resource, Action::Create);
        false
    };
    if p.dry_run() {
        return Ok(());
    }
    if recreate {
        ec2.delete_key_pair().key_name(&name).send().await.map_err(ProvisionError::aws("DeleteKeyPair", name.clone()))?;
    }
    if !key_saved {
        // An empty file left by a run interrupted between opening it and
        // AWS's answer, whether or not AWS made the pair. A file with a key
        // in it is never removed here: open_private refuses it below.
        remove_private(&path)?;
    }
    std::fs::create_dir_all(&p.options.key_dir)
        .map_err(|source| ProvisionError::Io { what: format!("creating {}", p.options.key_dir.display()), source })?;
    // Open (0600, must not exist) before asking AWS, so that a key is never
    // made that cannot be saved.
    let mut file = open_private(&path)?;
    let out = ec2
        .create_key_pair()
        .key_name(&name)
        .key_type(KeyType::Rsa)
        .tag_specifications(tag_spec(p, ResourceType::KeyPair, &name))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(ProvisionError::aws("CreateKeyPair", name)(e));
        }
    };
    file.write_all(out.key_material().unwrap_or_default().as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| ProvisionError::Io { what: format!("writing {}", path.display()), source })?;
    p.found.key_file = Some(path);
    Ok(())
}

/// Whether a live instance was launched with this key pair.
async fn key_in_use(p: &Provisioner, name: &str) -> Result<bool> {
    let out = p
        .clients
        .ec2
        .describe_instances()
        .filters(filter("key-name", name))
        .filters(
            Filter::builder().name("instance-state-name").values("pending").values("running").values("stopping").values("stopped").build(),
        )
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeInstances", format!("key-name {name}")))?;
    Ok(out.reservations().iter().any(|r| !r.instances().is_empty()))
}

/// Remove a file [`open_private`] made, if it is there.
pub(super) fn remove_private(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ProvisionError::Io { what: format!("removing {}", path.display()), source: e })
        }
        _ => Ok(()),
    }
}

pub(super) fn open_private(path: &std::path::Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| ProvisionError::Io {
        what: format!("creating the private key file {} (move an old one away first)", path.display()),
        source,
    })
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let ec2 = &p.clients.ec2;
    let mut out = Vec::new();
    // Its own group only: MWAA's, tagged too, is mwaa-network's.
    let groups = ec2
        .describe_security_groups()
        .filters(stack_filter(p))
        .filters(filter("group-name", &p.names.security_group))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeSecurityGroups", format!("tag {STACK_TAG}")))?;
    for g in groups.security_groups() {
        out.push(Found { component: C, kind: "security group", id: g.group_id().unwrap_or_default().into(), state: None });
    }
    let keys = ec2
        .describe_key_pairs()
        .filters(stack_filter(p))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeKeyPairs", format!("tag {STACK_TAG}")))?;
    for k in keys.key_pairs() {
        out.push(Found { component: C, kind: "key pair", id: k.key_name().unwrap_or_default().into(), state: None });
    }
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(stack_filter(p))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeVpcEndpoints", format!("tag {STACK_TAG}")))?;
    for e in endpoints.vpc_endpoints().iter().filter(|e| !gone(e)) {
        out.push(Found {
            component: C,
            kind: S3_ENDPOINT,
            id: e.vpc_endpoint_id().unwrap_or_default().into(),
            state: e.state().map(|s| s.as_str().to_string()),
        });
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let ec2 = p.clients.ec2.clone();
    for f in found.iter().filter(|f| f.kind == "key pair") {
        ec2.delete_key_pair().key_name(&f.id).send().await.map_err(ProvisionError::aws("DeleteKeyPair", f.id.clone()))?;
        // The private key is useless once AWS forgot the public half.
        remove_private(&p.options.key_dir.join(format!("{}.pem", f.id)))?;
    }
    let endpoints: Vec<String> = found.iter().filter(|f| f.kind == S3_ENDPOINT).map(|f| f.id.clone()).collect();
    if !endpoints.is_empty() {
        ec2.delete_vpc_endpoints()
            .set_vpc_endpoint_ids(Some(endpoints.clone()))
            .send()
            .await
            .map_err(ProvisionError::aws("DeleteVpcEndpoints", endpoints.join(",")))?;
    }
    let groups: Vec<Found> = found.iter().filter(|f| f.kind == "security group").cloned().collect();
    if let Some(other) = found.iter().find(|f| ![KEY_PAIR, "security group", S3_ENDPOINT].contains(&f.kind)) {
        return Err(ProvisionError::Failed { what: format!("deleting {other}"), detail: "not a resource kind of the network".into() });
    }
    delete_security_groups(p, &groups).await
}

/// Delete security groups, waiting while they are in use: the network
/// interfaces of a cluster, an instance or an environment linger a little
/// after those are gone.
pub(super) async fn delete_security_groups(p: &mut Provisioner, groups: &[Found]) -> Result<()> {
    let ec2 = p.clients.ec2.clone();
    for f in groups {
        let options = p.options.wait.clone();
        let id = f.id.clone();
        super::wait::until(&options, &format!("security group {id} to be free"), || {
            let ec2 = ec2.clone();
            let id = id.clone();
            async move {
                match ec2.delete_security_group().group_id(&id).send().await {
                    Ok(_) => Ok(super::wait::Poll::Ready(())),
                    Err(e) if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e) == Some("DependencyViolation") => {
                        Ok(super::wait::Poll::Pending("in use".into()))
                    }
                    Err(e) => Err(ProvisionError::aws("DeleteSecurityGroup", id.clone())(e)),
                }
            }
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(ids: &[&str]) -> Vec<(String, String)> {
        ids.iter().map(|z| (z.to_string(), format!("subnet-{z}"))).collect()
    }

    #[test]
    fn msk_subnets_skip_the_zone_msk_refuses_and_follow_the_broker_count() {
        let default_vpc = zones(&["use1-az6", "use1-az1", "use1-az2", "use1-az4", "use1-az3", "use1-az5"]);
        let three = msk_client_subnets(default_vpc.clone(), 3, "us-east-1").unwrap();
        assert_eq!(three, ["subnet-use1-az1", "subnet-use1-az2", "subnet-use1-az4"]);
        assert_eq!(msk_client_subnets(default_vpc.clone(), 4, "us-east-1").unwrap().len(), 2);
        // Only use1-az3 and one other: one zone is too few.
        let err = msk_client_subnets(zones(&["use1-az3", "use1-az1"]), 2, "us-east-1").unwrap_err().to_string();
        assert!(err.contains("use1-az3") && err.contains("1 zone(s)"), "{err}");
        // Two subnets of one zone count once.
        assert!(msk_client_subnets(zones(&["usw2-az1", "usw2-az1"]), 2, "us-west-2").is_err());
        // us-west-1 takes exactly two.
        let west = msk_client_subnets(zones(&["usw1-az1", "usw1-az3", "usw1-az2"]), 6, "us-west-1").unwrap();
        assert_eq!(west.len(), 2);
    }
}

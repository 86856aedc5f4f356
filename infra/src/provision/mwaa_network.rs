//! Where the MWAA environment runs: the two subnets of `airflow.subnet_ids`,
//! checked before anything is made (one VPC, two zones, private, with a
//! NAT route: MWAA refuses public subnets and installs `requirements.txt`
//! from PyPI), and a security group of its own in their VPC whose members
//! reach each other, as MWAA documents. The client's group lives in the
//! default VPC, which is rarely the subnets'.

use aws_sdk_ec2::types::{IpPermission, UserIdGroupPair};

use super::network::{StackGroup, filter, stack_filter, stack_group};
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};

const C: Component = Component::MwaaNetwork;
const KIND: &str = "security group";

/// One subnet as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubnetFacts {
    id: String,
    vpc: String,
    zone: String,
    /// The default route's target (`igw-...`, `nat-...`, ...), if any.
    default_route: Option<String>,
}

/// The subnets MWAA can use, or what is wrong with them and how to fix it.
fn check_subnets(subnets: &[SubnetFacts]) -> Result<String> {
    let fix = "airflow.subnet_ids must name two private subnets of one VPC, in different availability zones, \
               each with a default route (0.0.0.0/0) to a NAT gateway";
    let [a, b] = subnets else {
        return Err(ProvisionError::Config(format!("{fix}; {} given", subnets.len())));
    };
    if a.vpc != b.vpc {
        return Err(ProvisionError::Config(format!("{fix}: {} is in {}, {} in {}", a.id, a.vpc, b.id, b.vpc)));
    }
    if a.zone == b.zone {
        return Err(ProvisionError::Config(format!("{fix}: {} and {} are both in zone {}", a.id, b.id, a.zone)));
    }
    for s in subnets {
        match s.default_route.as_deref() {
            Some(target) if target.starts_with("igw-") => {
                return Err(ProvisionError::Config(format!(
                    "{fix}: {} is public (its default route goes to the internet gateway {target})",
                    s.id
                )));
            }
            None => {
                return Err(ProvisionError::Config(format!(
                    "{fix}: {} has no default route, so the environment cannot reach PyPI for requirements.txt",
                    s.id
                )));
            }
            Some(_) => {}
        }
    }
    Ok(a.vpc.clone())
}

async fn subnet_facts(p: &Provisioner, ids: &[String]) -> Result<Vec<SubnetFacts>> {
    let ec2 = &p.clients.ec2;
    let out = ec2.describe_subnets().set_subnet_ids(Some(ids.to_vec())).send().await.map_err(|e| {
        if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e) == Some("InvalidSubnetID.NotFound") {
            ProvisionError::Config(format!("airflow.subnet_ids: {} do not all exist in {}", ids.join(", "), p.region()))
        } else {
            ProvisionError::aws("DescribeSubnets", ids.join(","))(e)
        }
    })?;
    let mut facts = Vec::new();
    for s in out.subnets() {
        let (id, vpc) = (s.subnet_id().unwrap_or_default().to_string(), s.vpc_id().unwrap_or_default().to_string());
        // A subnet without a route table of its own uses its VPC's main one.
        let mut tables = ec2
            .describe_route_tables()
            .filters(filter("association.subnet-id", &id))
            .send()
            .await
            .map_err(ProvisionError::aws("DescribeRouteTables", id.clone()))?;
        if tables.route_tables().is_empty() {
            tables = ec2
                .describe_route_tables()
                .filters(filter("vpc-id", &vpc))
                .filters(filter("association.main", "true"))
                .send()
                .await
                .map_err(ProvisionError::aws("DescribeRouteTables", vpc.clone()))?;
        }
        let default_route =
            tables.route_tables().iter().flat_map(|t| t.routes()).find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).and_then(|r| {
                r.gateway_id()
                    .or(r.nat_gateway_id())
                    .or(r.transit_gateway_id())
                    .or(r.network_interface_id())
                    .or(r.instance_id())
                    .map(str::to_string)
            });
        facts.push(SubnetFacts {
            id,
            vpc,
            zone: s.availability_zone_id().or(s.availability_zone()).unwrap_or_default().to_string(),
            default_route,
        });
    }
    // Same order as configured, for messages that name them as given.
    facts.sort_by_key(|f| ids.iter().position(|i| *i == f.id));
    Ok(facts)
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let name = p.names.mwaa_security_group.clone();
    let resource = format!("{KIND} {name}");
    let subnets = p.config.airflow.subnet_ids.clone();
    if subnets.is_empty() {
        p.record(C, resource, Action::Skip("needs airflow.subnet_ids: two private subnets with a NAT route in different zones".into()));
        return Ok(());
    }
    let vpc = check_subnets(&subnet_facts(p, &subnets).await?)?;
    let description = format!("MWAA environment of pipeline {}", p.uid());
    let (group_id, existing, created) = match stack_group(p, C, &name, &vpc, &description).await? {
        StackGroup::Ours { id, rules, created } => (id, rules, created),
        StackGroup::Foreign(id) => {
            p.found.mwaa_security_group_id = Some(id);
            return Ok(());
        }
        StackGroup::Planned => return Ok(()),
    };
    p.found.mwaa_security_group_id = Some(group_id.clone());
    let members_reach_each_other = existing
        .iter()
        .any(|r| r.ip_protocol() == Some("-1") && r.user_id_group_pairs().iter().any(|g| g.group_id() == Some(group_id.as_str())));
    if members_reach_each_other {
        p.record(C, resource, Action::Exists);
        return Ok(());
    }
    if !created {
        p.record(C, resource, Action::Update("its members may not reach each other".into()));
        if p.dry_run() {
            return Ok(());
        }
    }
    p.clients
        .ec2
        .authorize_security_group_ingress()
        .group_id(&group_id)
        .ip_permissions(
            IpPermission::builder().ip_protocol("-1").user_id_group_pairs(UserIdGroupPair::builder().group_id(&group_id).build()).build(),
        )
        .send()
        .await
        .map_err(ProvisionError::aws("AuthorizeSecurityGroupIngress", name))?;
    Ok(())
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let name = p.names.mwaa_security_group.clone();
    let groups = p
        .clients
        .ec2
        .describe_security_groups()
        .filters(stack_filter(p))
        .filters(filter("group-name", &name))
        .send()
        .await
        .map_err(ProvisionError::aws("DescribeSecurityGroups", name.clone()))?;
    Ok(groups
        .security_groups()
        .iter()
        .map(|g| Found { component: C, kind: KIND, id: g.group_id().unwrap_or_default().to_string(), state: None })
        .collect())
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    super::network::delete_security_groups(p, found).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, vpc: &str, zone: &str, route: Option<&str>) -> SubnetFacts {
        SubnetFacts { id: id.into(), vpc: vpc.into(), zone: zone.into(), default_route: route.map(str::to_string) }
    }

    #[test]
    fn subnets_are_refused_with_the_reason_and_the_fix() {
        let a = subnet("subnet-a", "vpc-1", "use1-az1", Some("nat-1"));
        let b = subnet("subnet-b", "vpc-1", "use1-az2", Some("nat-2"));
        assert_eq!(check_subnets(&[a.clone(), b.clone()]).unwrap(), "vpc-1");
        let refused = |subnets: &[SubnetFacts]| check_subnets(subnets).unwrap_err().to_string();
        assert!(refused(std::slice::from_ref(&a)).contains("1 given"));
        assert!(
            refused(&[a.clone(), subnet("subnet-b", "vpc-2", "use1-az2", Some("nat-2"))])
                .contains("subnet-a is in vpc-1, subnet-b in vpc-2")
        );
        assert!(refused(&[a.clone(), subnet("subnet-b", "vpc-1", "use1-az1", Some("nat-2"))]).contains("both in zone use1-az1"));
        let public = refused(&[a.clone(), subnet("subnet-b", "vpc-1", "use1-az2", Some("igw-9"))]);
        assert!(public.contains("subnet-b is public") && public.contains("NAT gateway"), "{public}");
        assert!(refused(&[subnet("subnet-a", "vpc-1", "use1-az1", None), b]).contains("subnet-a has no default route"));
    }
}

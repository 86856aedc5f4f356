//! IAM roles of the deployment, each with one inline policy, all under the
//! stack's IAM path: the EC2 access role (MSK IAM auth from the client
//! machine, also its instance profile), the MSK Connect service role, the
//! API Gateway role that calls Kinesis, and MWAA's execution role.

use serde_json::{Value, json};

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Iam;

/// One role: its key in `Discovered::role_arns`, name, trust and policy.
struct RoleSpec {
    key: &'static str,
    name: String,
    trust: Value,
    policy: Value,
}

fn trust(services: &[&str], extra: Option<Value>) -> Value {
    let mut statements = vec![json!({
        "Effect": "Allow",
        "Principal": {"Service": services},
        "Action": "sts:AssumeRole"
    })];
    statements.extend(extra);
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The MSK actions the deployment's Kafka clients need, each on the kind
/// of resource MSK checks it against (SPEC 8.13): connecting and
/// describing the cluster (every client), topic creation and description
/// (`pipeline topics create`, metadata), topic configs (the REST proxy's
/// `GET /topics/{topic}`), idempotent writes (ingest), reads and the
/// consumer group (the sink, `status`, REST consumers).
pub const KAFKA_GRANTS: [(&str, &str); 10] = [
    ("Connect", "cluster"),
    ("DescribeCluster", "cluster"),
    ("WriteDataIdempotently", "cluster"),
    ("CreateTopic", "topic"),
    ("DescribeTopic", "topic"),
    ("DescribeTopicDynamicConfiguration", "topic"),
    ("WriteData", "topic"),
    ("ReadData", "topic"),
    ("AlterGroup", "group"),
    ("DescribeGroup", "group"),
];

/// A policy document of the Kafka statements and then `rest` (a JSON array).
fn policy_of(kafka: &[Value], rest: Value) -> Value {
    let mut statements = kafka.to_vec();
    statements.extend(rest.as_array().expect("statements are an array").iter().cloned());
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn roles(p: &Provisioner) -> Vec<RoleSpec> {
    role_specs(&p.names, p.region(), p.account(), p.config.databricks.account_id.as_deref())
}

/// The role Databricks' Unity Catalog assumes for every customer's storage
/// and service credentials (AWS commercial regions), with the customer's
/// Databricks account id as the external id.
pub const DATABRICKS_UC_MASTER_ROLE: &str = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";

/// A role's trust in itself: sessions of the role may assume it again. IAM
/// refuses a role's own ARN as principal before the role exists, so the
/// statement names the account and a condition on the caller's role ARN,
/// which admits nothing else in the account.
fn self_assumption(account: &str, self_arn: &str) -> Value {
    json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole",
           "Condition": {"ArnLike": {"aws:PrincipalArn": self_arn}}})
}

/// Trust of the Databricks role: EC2 (as the instance profile of classic
/// compute) and, given the Databricks account id, Unity Catalog, whose
/// credentials must also be able to assume themselves. The self-assumption
/// names the account with a condition on the role's own ARN, as Databricks
/// documents it: IAM refuses a role's own ARN as principal before the role
/// exists.
fn databricks_trust(databricks_account: Option<&str>, account: &str, self_arn: &str) -> Value {
    let extra = databricks_account.map(|id| {
        json!([
            {"Effect": "Allow", "Principal": {"AWS": DATABRICKS_UC_MASTER_ROLE}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": id}}},
            self_assumption(account, self_arn)
        ])
    });
    let mut doc = trust(&["ec2.amazonaws.com"], None);
    if let Some(Value::Array(statements)) = extra {
        doc["Statement"].as_array_mut().expect("statements").extend(statements);
    }
    doc
}

/// The policy of the EC2 role, which our processes on the client machine
/// run with, as `provision` makes it for `config` in `account`: for checking
/// it where authorization is evaluated (the local authorizing MSK broker).
pub fn ec2_role_policy(config: &templates::config::PipelineConfig, region: &str, account: &str) -> Value {
    let names = crate::stack::StackNames::new(config);
    role_specs(&names, region, account, None).into_iter().find(|r| r.key == "ec2").expect("the EC2 role is specified").policy
}

/// Every permission policy `provision` attaches, by role name, as made for
/// `config` in `account`: for linting them as AWS would read them. (Trust
/// policies name principals, not resources; the unit tests check them.)
pub fn policy_documents(config: &templates::config::PipelineConfig, region: &str, account: &str) -> Vec<(String, Value)> {
    let names = crate::stack::StackNames::new(config);
    role_specs(&names, region, account, config.databricks.account_id.as_deref()).into_iter().map(|r| (r.name, r.policy)).collect()
}

fn role_specs(n: &crate::stack::StackNames, region: &str, account: &str, databricks_account: Option<&str>) -> Vec<RoleSpec> {
    let cluster = |kind: &str| format!("arn:aws:kafka:{region}:{account}:{kind}/{}/*", n.cluster);
    // Each Kafka action a process of the deployment sends, named one by
    // one on its own kind of resource: a wildcard such as `*Topic*` would
    // also grant DeleteTopic. WriteDataIdempotently is the cluster
    // permission MSK asks of an idempotent producer (ingest's); without it
    // every produce fails with CLUSTER_AUTHORIZATION_FAILED.
    let kafka_cluster: Vec<Value> = ["cluster", "topic", "group"]
        .into_iter()
        .map(|kind| {
            let actions: Vec<String> = KAFKA_GRANTS.iter().filter(|(_, k)| *k == kind).map(|(a, _)| format!("kafka-cluster:{a}")).collect();
            json!({"Effect": "Allow", "Action": actions, "Resource": cluster(kind)})
        })
        .collect();
    let ec2_role_arn = format!("arn:aws:iam::{account}:role{}{}", n.iam_path, n.ec2_role);
    let sink = format!("arn:aws:s3:::{}", n.sink_bucket);
    let dags = format!("arn:aws:s3:::{}", n.dags_bucket);
    let databricks_arn = format!("arn:aws:iam::{account}:role{}{}", n.iam_path, n.databricks_role);
    let streams = format!("arn:aws:kinesis:{region}:{account}:stream/streaming-{}-*", n.uid);
    vec![
        RoleSpec {
            key: "databricks",
            name: n.databricks_role.clone(),
            trust: databricks_trust(databricks_account, account, &databricks_arn),
            // The notebooks: the batch job reads the sink's topics/ and may
            // write results/ (an --output URI there); the stream job reads
            // the three streams and keeps its checkpoints and tables under
            // checkpoints/ and delta/. The raw data stays read-only.
            policy: json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": sink.clone()},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("{sink}/topics/*")},
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                 "Resource": [format!("{sink}/results/*"), format!("{sink}/checkpoints/*"), format!("{sink}/delta/*")]},
                {"Effect": "Allow",
                 "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
                            "kinesis:GetShardIterator", "kinesis:GetRecords"],
                 "Resource": streams},
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": databricks_arn}
            ]}),
        },
        RoleSpec {
            key: "ec2",
            name: n.ec2_role.clone(),
            // The MSK IAM library on the client assumes this role by ARN
            // (client.properties' awsRoleArn on the original path): the
            // instance's session of the role may assume it again, nobody
            // else in the account.
            trust: trust(&["ec2.amazonaws.com"], Some(self_assumption(account, &ec2_role_arn))),
            // Our binaries on the machine (ec2.data_path = "pipeline"): the
            // sink writes (and replaces unfinished) objects, ingest and the
            // sink read the uploaded files, the stream worker reads Kinesis.
            policy: policy_of(
                &kafka_cluster,
                json!([
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ec2_role_arn},
                    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": sink.clone()},
                    {"Effect": "Allow",
                     "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                     "Resource": format!("{sink}/*")},
                    {"Effect": "Allow",
                     "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
                                "kinesis:GetShardIterator", "kinesis:GetRecords"],
                     "Resource": format!("arn:aws:kinesis:{region}:{account}:stream/streaming-{}-*", n.uid)}
                ]),
            ),
        },
        RoleSpec {
            key: "connect",
            name: n.connect_role.clone(),
            trust: trust(&["kafkaconnect.amazonaws.com"], None),
            policy: policy_of(
                &kafka_cluster,
                json!([
                    {"Effect": "Allow",
                     "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                     "Resource": sink},
                    {"Effect": "Allow",
                     "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                     "Resource": format!("{sink}/*")}
                ]),
            ),
        },
        RoleSpec {
            key: "kinesis",
            name: n.kinesis_role.clone(),
            trust: trust(&["apigateway.amazonaws.com"], None),
            policy: json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"},
                {"Effect": "Allow",
                 "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStream",
                            "kinesis:CreateStream", "kinesis:DeleteStream"],
                 "Resource": format!("arn:aws:kinesis:{region}:{account}:stream/streaming-{}-*", n.uid)}
            ]}),
        },
        RoleSpec {
            key: "mwaa",
            name: n.mwaa_role.clone(),
            trust: trust(&["airflow.amazonaws.com", "airflow-env.amazonaws.com"], None),
            // MWAA's documented execution-role permissions, scoped to this
            // environment's bucket, logs and queues.
            policy: json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "airflow:PublishMetrics",
                 "Resource": format!("arn:aws:airflow:{region}:{account}:environment/{}", n.mwaa_environment)},
                {"Effect": "Allow", "Action": ["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
                 "Resource": [dags.clone(), format!("{dags}/*")]},
                {"Effect": "Allow",
                 "Action": ["logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents", "logs:GetLogEvents",
                            "logs:GetLogRecord", "logs:GetLogGroupFields", "logs:GetQueryResults"],
                 "Resource": format!("arn:aws:logs:{region}:{account}:log-group:airflow-{}-*", n.mwaa_environment)},
                // Listing log groups and reading the account's public
                // access block have no narrower resource: AWS's policy
                // grants them on every resource.
                {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
                {"Effect": "Allow", "Action": "s3:GetAccountPublicAccessBlock", "Resource": "*"},
                {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
                // The Secrets Manager backend reads the Databricks
                // connection (and any other) under this deployment's prefix.
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                 "Resource": format!("arn:aws:secretsmanager:{region}:{account}:secret:{}/*", n.airflow_connections_prefix)},
                {"Effect": "Allow",
                 "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                            "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"],
                 "Resource": format!("arn:aws:sqs:{region}:*:airflow-celery-*")},
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
                 "NotResource": format!("arn:aws:kms:*:{account}:key/*"),
                 "Condition": {"StringLike": {"kms:ViaService": [format!("sqs.{region}.amazonaws.com")]}}}
            ]}),
        },
    ]
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto returns them
/// plain. Either way, compare as JSON.
fn parse_policy(doc: &str) -> Option<Value> {
    serde_json::from_str(doc).ok().or_else(|| serde_json::from_str(&percent_encoding::percent_decode_str(doc).decode_utf8().ok()?).ok())
}

fn policy_name(role: &str) -> String {
    format!("{role}-policy")
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    for spec in roles(p) {
        ensure_role(p, &spec).await?;
    }
    for (profile, role) in [
        (p.names.instance_profile.clone(), p.names.ec2_role.clone()),
        (p.names.databricks_profile.clone(), p.names.databricks_role.clone()),
    ] {
        ensure_instance_profile(p, &profile, &role).await?;
    }
    p.found.databricks_instance_profile_arn =
        Some(format!("arn:aws:iam::{}:instance-profile{}{}", p.account(), p.names.iam_path, p.names.databricks_profile));
    Ok(())
}

async fn ensure_role(p: &mut Provisioner, spec: &RoleSpec) -> Result<()> {
    let iam = p.clients.iam.clone();
    let resource = format!("iam role {}", spec.name);
    let existing = match iam.get_role().role_name(&spec.name).send().await {
        Ok(out) => out.role,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => None,
        Err(e) => return Err(ProvisionError::aws("GetRole", spec.name.clone())(e)),
    };
    let Some(role) = existing else {
        p.record(C, resource, Action::Create);
        let arn = format!("arn:aws:iam::{}:role{}{}", p.account(), p.names.iam_path, spec.name);
        p.found.role_arns.insert(spec.key.into(), arn);
        if p.dry_run() {
            return Ok(());
        }
        let (k, v) = p.stack_tag();
        let out = iam
            .create_role()
            .role_name(&spec.name)
            .path(&p.names.iam_path)
            .assume_role_policy_document(spec.trust.to_string())
            .description(format!("Pinterest pipeline {}: {} role", p.uid(), spec.key))
            .tags(aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("key and value"))
            .send()
            .await
            .map_err(ProvisionError::aws("CreateRole", spec.name.clone()))?;
        if let Some(r) = out.role {
            p.found.role_arns.insert(spec.key.into(), r.arn().to_string());
        }
        return put_policy(&iam, spec).await;
    };
    p.found.role_arns.insert(spec.key.into(), role.arn().to_string());
    if !role.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == p.uid()) {
        p.record(C, resource, Action::Foreign);
        return Ok(());
    }
    let trust_same = role.assume_role_policy_document().and_then(parse_policy).as_ref() == Some(&spec.trust);
    let current_policy = match iam.get_role_policy().role_name(&spec.name).policy_name(policy_name(&spec.name)).send().await {
        Ok(out) => parse_policy(out.policy_document()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => None,
        Err(e) => return Err(ProvisionError::aws("GetRolePolicy", spec.name.clone())(e)),
    };
    let policy_same = current_policy.as_ref() == Some(&spec.policy);
    let mut differences = Vec::new();
    if !trust_same {
        differences.push("trust policy");
    }
    if !policy_same {
        differences.push("permissions policy");
    }
    if differences.is_empty() {
        p.record(C, resource, Action::Exists);
        return Ok(());
    }
    p.record(C, resource, Action::Update(format!("{} differ", differences.join(" and "))));
    if p.dry_run() {
        return Ok(());
    }
    if !trust_same {
        iam.update_assume_role_policy()
            .role_name(&spec.name)
            .policy_document(spec.trust.to_string())
            .send()
            .await
            .map_err(ProvisionError::aws("UpdateAssumeRolePolicy", spec.name.clone()))?;
    }
    if !policy_same {
        put_policy(&iam, spec).await?;
    }
    Ok(())
}

async fn put_policy(iam: &aws_sdk_iam::Client, spec: &RoleSpec) -> Result<()> {
    iam.put_role_policy()
        .role_name(&spec.name)
        .policy_name(policy_name(&spec.name))
        .policy_document(spec.policy.to_string())
        .send()
        .await
        .map_err(ProvisionError::aws("PutRolePolicy", spec.name.clone()))?;
    Ok(())
}

async fn ensure_instance_profile(p: &mut Provisioner, name: &str, role: &str) -> Result<()> {
    let iam = p.clients.iam.clone();
    let (name, role) = (name.to_string(), role.to_string());
    let resource = format!("iam instance profile {name}");
    let existing = match iam.get_instance_profile().instance_profile_name(&name).send().await {
        Ok(out) => out.instance_profile,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => None,
        Err(e) => return Err(ProvisionError::aws("GetInstanceProfile", name.clone())(e)),
    };
    let has_role = existing.as_ref().is_some_and(|ip| ip.roles().iter().any(|r| r.role_name() == role));
    match (&existing, has_role) {
        (Some(_), true) => {
            p.record(C, resource, Action::Exists);
            return Ok(());
        }
        (Some(_), false) => p.record(C, resource, Action::Update(format!("role {role} not in it"))),
        (None, _) => p.record(C, resource, Action::Create),
    }
    if p.dry_run() {
        return Ok(());
    }
    if existing.is_none() {
        let (k, v) = p.stack_tag();
        iam.create_instance_profile()
            .instance_profile_name(&name)
            .path(&p.names.iam_path)
            .tags(aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("key and value"))
            .send()
            .await
            .map_err(ProvisionError::aws("CreateInstanceProfile", name.clone()))?;
    }
    iam.add_role_to_instance_profile()
        .instance_profile_name(&name)
        .role_name(&role)
        .send()
        .await
        .map_err(ProvisionError::aws("AddRoleToInstanceProfile", name.clone()))?;
    Ok(())
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let iam = &p.clients.iam;
    let mut out = Vec::new();
    let mut profiles = iam.list_instance_profiles().path_prefix(&p.names.iam_path).into_paginator().send();
    while let Some(page) = profiles.next().await {
        let page = page.map_err(ProvisionError::aws("ListInstanceProfiles", p.names.iam_path.clone()))?;
        // Filter again: not every implementation honours the prefix (moto).
        for ip in page.instance_profiles().iter().filter(|ip| ip.path() == p.names.iam_path) {
            out.push(Found { component: C, kind: "iam instance profile", id: ip.instance_profile_name().into(), state: None });
        }
    }
    let mut roles = iam.list_roles().path_prefix(&p.names.iam_path).into_paginator().send();
    while let Some(page) = roles.next().await {
        let page = page.map_err(ProvisionError::aws("ListRoles", p.names.iam_path.clone()))?;
        for r in page.roles().iter().filter(|r| r.path() == p.names.iam_path) {
            out.push(Found { component: C, kind: "iam role", id: r.role_name().into(), state: None });
        }
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let iam = p.clients.iam.clone();
    for f in found.iter().filter(|f| f.kind == "iam instance profile") {
        let ip = iam
            .get_instance_profile()
            .instance_profile_name(&f.id)
            .send()
            .await
            .map_err(ProvisionError::aws("GetInstanceProfile", f.id.clone()))?;
        for role in ip.instance_profile().map(|i| i.roles()).unwrap_or_default() {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(&f.id)
                .role_name(role.role_name())
                .send()
                .await
                .map_err(ProvisionError::aws("RemoveRoleFromInstanceProfile", f.id.clone()))?;
        }
        iam.delete_instance_profile()
            .instance_profile_name(&f.id)
            .send()
            .await
            .map_err(ProvisionError::aws("DeleteInstanceProfile", f.id.clone()))?;
    }
    for f in found.iter().filter(|f| f.kind == "iam role") {
        let policies =
            iam.list_role_policies().role_name(&f.id).send().await.map_err(ProvisionError::aws("ListRolePolicies", f.id.clone()))?;
        for name in policies.policy_names() {
            iam.delete_role_policy()
                .role_name(&f.id)
                .policy_name(name)
                .send()
                .await
                .map_err(ProvisionError::aws("DeleteRolePolicy", f.id.clone()))?;
        }
        iam.delete_role().role_name(&f.id).send().await.map_err(ProvisionError::aws("DeleteRole", f.id.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IAM's matching of an action or resource pattern: `*` any run of
    /// characters, `?` one; actions ignore case, resources do not.
    fn iam_matches(pattern: &str, value: &str, ignore_case: bool) -> bool {
        fn go(p: &[char], v: &[char]) -> bool {
            match (p.first(), v.first()) {
                (None, None) => true,
                (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
                (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
                _ => false,
            }
        }
        let (p, v) = if ignore_case { (pattern.to_lowercase(), value.to_lowercase()) } else { (pattern.into(), value.into()) };
        go(&p.chars().collect::<Vec<_>>(), &v.chars().collect::<Vec<_>>())
    }

    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether an Allow statement of `policy` grants `action` on `resource`.
    fn allows(policy: &Value, action: &str, resource: &str) -> bool {
        policy["Statement"].as_array().unwrap().iter().any(|st| {
            st["Effect"] == "Allow"
                && strings(&st["Action"]).iter().any(|a| iam_matches(a, action, true))
                && strings(&st["Resource"]).iter().any(|r| iam_matches(r, resource, false))
        })
    }

    /// The rows of SPEC 8.13: (action, resource kind).
    fn spec_rows() -> Vec<(String, String)> {
        let spec = include_str!("../../../docs/SPEC.md");
        let section = spec.split("### 8.13").nth(1).expect("SPEC has 8.13");
        section
            .lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| process"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[2].to_string(), cells[3].to_string())
            })
            .collect()
    }

    /// MSK's actions, their resource kind and the actions each requires
    /// alongside it ("Required actions", AWS's MSK developer guide,
    /// "Semantics of IAM authorization policy actions and resources").
    const MSK_ACTIONS: [(&str, &str, &[&str]); 19] = [
        ("Connect", "cluster", &[]),
        ("DescribeCluster", "cluster", &["Connect"]),
        ("AlterCluster", "cluster", &["Connect", "DescribeCluster"]),
        ("DescribeClusterDynamicConfiguration", "cluster", &["Connect"]),
        ("AlterClusterDynamicConfiguration", "cluster", &["Connect", "DescribeClusterDynamicConfiguration"]),
        ("WriteDataIdempotently", "cluster", &["Connect", "WriteData"]),
        ("CreateTopic", "topic", &["Connect"]),
        ("DescribeTopic", "topic", &["Connect"]),
        ("AlterTopic", "topic", &["Connect", "DescribeTopic"]),
        ("DeleteTopic", "topic", &["Connect", "DescribeTopic"]),
        ("DescribeTopicDynamicConfiguration", "topic", &["Connect"]),
        ("AlterTopicDynamicConfiguration", "topic", &["Connect", "DescribeTopicDynamicConfiguration"]),
        ("ReadData", "topic", &["Connect", "DescribeTopic", "AlterGroup"]),
        ("WriteData", "topic", &["Connect", "DescribeTopic"]),
        ("DescribeGroup", "group", &["Connect"]),
        ("AlterGroup", "group", &["Connect", "DescribeGroup"]),
        ("DeleteGroup", "group", &["Connect", "DescribeGroup"]),
        ("DescribeTransactionalId", "transactional-id", &["Connect"]),
        ("AlterTransactionalId", "transactional-id", &["Connect", "DescribeTransactionalId", "WriteData"]),
    ];

    /// Every role that may act on the cluster (the EC2 role and MSK
    /// Connect's) grants, with each MSK action, the actions AWS says it
    /// requires, on their own kind of resource: a policy that grants
    /// WriteData without DescribeTopic fails on MSK, not here.
    #[test]
    fn every_granted_msk_action_comes_with_the_actions_it_requires() {
        let config = templates::config::PipelineConfig::for_uid("abc-1");
        let names = crate::stack::StackNames::new(&config);
        let arn = |kind: &str| match kind {
            "cluster" => format!("arn:aws:kafka:us-east-1:123456789012:cluster/{}/uuid-1", names.cluster),
            _ => format!("arn:aws:kafka:us-east-1:123456789012:{kind}/{}/uuid-1/x", names.cluster),
        };
        let kind_of = |action: &str| MSK_ACTIONS.iter().find(|(a, _, _)| *a == action).map(|(_, k, _)| *k).expect("a known action");
        let mut checked = 0;
        for spec in role_specs(&names, "us-east-1", "123456789012", None) {
            for (action, kind, required) in MSK_ACTIONS {
                if !allows(&spec.policy, &format!("kafka-cluster:{action}"), &arn(kind)) {
                    continue;
                }
                checked += 1;
                for needed in required {
                    assert!(
                        allows(&spec.policy, &format!("kafka-cluster:{needed}"), &arn(kind_of(needed))),
                        "role {}: grants {action} but not {needed}, which MSK requires with it",
                        spec.key
                    );
                }
            }
        }
        assert!(checked >= KAFKA_GRANTS.len(), "the EC2 role's grants were checked: {checked}");
    }

    /// The MWAA execution role grants what AWS's documented execution-role
    /// policy (AWS-owned key) grants, on the resources it names: MWAA
    /// fails in ways no emulator shows when one is missing.
    #[test]
    fn the_mwaa_role_grants_aws_documented_execution_policy() {
        let config = templates::config::PipelineConfig::for_uid("abc-1");
        let names = crate::stack::StackNames::new(&config);
        let (region, account) = ("us-east-1", "123456789012");
        let specs = role_specs(&names, region, account, None);
        let mwaa = specs.iter().find(|s| s.key == "mwaa").expect("the mwaa role");
        let env = &names.mwaa_environment;
        let dags = format!("arn:aws:s3:::{}", names.dags_bucket);
        let log_group = format!("arn:aws:logs:{region}:{account}:log-group:airflow-{env}-DAGProcessing");
        let documented: Vec<(&str, String)> = vec![
            ("airflow:PublishMetrics", format!("arn:aws:airflow:{region}:{account}:environment/{env}")),
            ("s3:GetObject", format!("{dags}/dags/x.py")),
            ("s3:GetObjectVersion", format!("{dags}/requirements.txt")),
            ("s3:GetBucketPublicAccessBlock", dags.clone()),
            ("s3:ListBucket", dags.clone()),
            ("s3:GetAccountPublicAccessBlock", "*".into()),
            ("logs:CreateLogStream", log_group.clone()),
            ("logs:CreateLogGroup", log_group.clone()),
            ("logs:PutLogEvents", log_group.clone()),
            ("logs:GetLogEvents", log_group.clone()),
            ("logs:GetLogRecord", log_group.clone()),
            ("logs:GetLogGroupFields", log_group.clone()),
            ("logs:GetQueryResults", log_group.clone()),
            ("logs:DescribeLogGroups", "*".into()),
            ("cloudwatch:PutMetricData", "*".into()),
            ("sqs:ReceiveMessage", format!("arn:aws:sqs:{region}:111122223333:airflow-celery-abc")),
            ("sqs:SendMessage", format!("arn:aws:sqs:{region}:111122223333:airflow-celery-abc")),
        ];
        for (action, resource) in &documented {
            assert!(allows(&mwaa.policy, action, resource), "AWS's MWAA execution policy grants {action} on {resource}; ours does not");
        }
        assert!(!allows(&mwaa.policy, "s3:GetObject", "arn:aws:s3:::user-abc-1-bucket/topics/x"), "not the sink bucket");
    }

    /// No role trusts a whole account: a statement naming an account (its
    /// root) also names, by condition, the one role or the external id it
    /// admits. Service principals are named as services.
    #[test]
    fn no_trust_policy_admits_a_whole_account() {
        let config = templates::config::PipelineConfig::for_uid("abc-1");
        let names = crate::stack::StackNames::new(&config);
        for spec in role_specs(&names, "us-east-1", "123456789012", Some("0d26daa6-5e44-4c97-a497-ef015f91254a")) {
            for statement in spec.trust["Statement"].as_array().unwrap() {
                let accounts: Vec<String> = strings(&statement["Principal"]["AWS"]).into_iter().filter(|p| p.ends_with(":root")).collect();
                if accounts.is_empty() {
                    continue;
                }
                let condition = &statement["Condition"];
                let narrowed = !condition["ArnLike"]["aws:PrincipalArn"].is_null()
                    || !condition["ArnEquals"]["aws:PrincipalArn"].is_null()
                    || !condition["StringEquals"]["sts:ExternalId"].is_null();
                assert!(narrowed, "role {} trusts all of {accounts:?}: {statement}", spec.key);
            }
        }
    }

    #[test]
    fn iam_matching_follows_the_wildcard_rules() {
        assert!(iam_matches("kafka-cluster:*Topic*", "kafka-cluster:DeleteTopic", true));
        assert!(iam_matches("KAFKA-cluster:connect", "kafka-cluster:Connect", true));
        assert!(iam_matches("arn:aws:kafka:r:1:topic/c/*", "arn:aws:kafka:r:1:topic/c/u/t", false));
        assert!(!iam_matches("arn:aws:kafka:r:1:topic/c/*", "arn:aws:kafka:r:1:group/c/u/g", false));
        assert!(iam_matches("a?c", "abc", false) && !iam_matches("a?c", "ac", false));
    }

    #[test]
    fn the_databricks_role_reads_the_data_and_writes_only_its_outputs() {
        let config = templates::config::PipelineConfig::for_uid("abc-1");
        let names = crate::stack::StackNames::new(&config);
        let account = "123456789012";
        let specs = role_specs(&names, "us-east-1", account, Some("0d26daa6-5e44-4c97-a497-ef015f91254a"));
        let role = specs.iter().find(|s| s.key == "databricks").expect("the databricks role");
        let object = |key: &str| format!("arn:aws:s3:::user-abc-1-bucket/{key}");
        let stream = |kind: &str| format!("arn:aws:kinesis:us-east-1:{account}:stream/streaming-abc-1-{kind}");
        assert!(allows(&role.policy, "s3:GetObject", &object("topics/abc-1.pin/partition=0/x.json")));
        assert!(!allows(&role.policy, "s3:PutObject", &object("topics/abc-1.pin/partition=0/x.json")), "the raw data stays read-only");
        assert!(!allows(&role.policy, "s3:DeleteObject", &object("topics/abc-1.pin/partition=0/x.json")));
        for prefix in ["results", "checkpoints", "delta"] {
            assert!(allows(&role.policy, "s3:PutObject", &object(&format!("{prefix}/t/part-0.parquet"))), "{prefix}");
        }
        assert!(!allows(&role.policy, "s3:GetObject", "arn:aws:s3:::airflow-abc-1-dags/dags/x.py"), "not the DAGs bucket");
        for kind in ["pin", "geo", "user"] {
            assert!(allows(&role.policy, "kinesis:GetRecords", &stream(kind)), "{kind}");
            assert!(!allows(&role.policy, "kinesis:PutRecord", &stream(kind)), "{kind}: reads only");
        }
        // Trusted by EC2 (instance profile), by Unity Catalog with the
        // account id as external id, and by itself through the account.
        let statements = role.trust["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Principal"]["Service"], serde_json::json!(["ec2.amazonaws.com"]));
        assert_eq!(statements[1]["Principal"]["AWS"], DATABRICKS_UC_MASTER_ROLE);
        assert_eq!(statements[1]["Condition"]["StringEquals"]["sts:ExternalId"], "0d26daa6-5e44-4c97-a497-ef015f91254a");
        let self_arn = format!("arn:aws:iam::{account}:role{}{}", names.iam_path, names.databricks_role);
        assert_eq!(statements[2]["Condition"]["ArnLike"]["aws:PrincipalArn"], self_arn.as_str());
        assert!(allows(&role.policy, "sts:AssumeRole", &self_arn));
        // Without the account id, only EC2.
        let plain = role_specs(&names, "us-east-1", account, None);
        let plain = plain.iter().find(|s| s.key == "databricks").unwrap();
        assert_eq!(plain.trust["Statement"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_permissions_table_is_what_the_ec2_role_grants() {
        let config = templates::config::PipelineConfig::for_uid("abc-1");
        let names = crate::stack::StackNames::new(&config);
        let specs = role_specs(&names, "us-east-1", "123456789012", None);
        let ec2 = specs.iter().find(|s| s.key == "ec2").expect("the ec2 role");
        let arn = |kind: &str| format!("arn:aws:kafka:us-east-1:123456789012:{kind}/{}/uuid-1/x", names.cluster);
        let rows = spec_rows();
        assert_eq!(rows.len(), KAFKA_GRANTS.len(), "one row per granted action: {rows:?}");
        for (action, kind) in &rows {
            assert!(allows(&ec2.policy, &format!("kafka-cluster:{action}"), &arn(kind)), "SPEC 8.13 {action} on {kind} is not granted");
        }
        // Nothing beyond the table: every MSK action, on every kind of resource.
        for action in [
            "DeleteTopic",
            "AlterTopic",
            "AlterTopicDynamicConfiguration",
            "DeleteGroup",
            "AlterCluster",
            "AlterClusterDynamicConfiguration",
            "DescribeTransactionalId",
            "AlterTransactionalId",
            "WriteData",
            "ReadData",
        ] {
            for kind in ["cluster", "topic", "group", "transactional-id"] {
                let granted = allows(&ec2.policy, &format!("kafka-cluster:{action}"), &arn(kind));
                let in_table = rows.iter().any(|(a, k)| a == action && k == kind);
                assert_eq!(granted, in_table, "{action} on {kind}: granted {granted}, in SPEC 8.13 {in_table}");
            }
        }
    }
}

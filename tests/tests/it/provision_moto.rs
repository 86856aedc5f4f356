//! `provision`, `status` and `teardown` against moto (S3, IAM, EC2, MSK
//! create/describe, Kinesis, API Gateway). MSK Connect and MWAA, which moto
//! lacks, are skipped here and covered by the infra crate's replay tests;
//! the bootstrap servers (GetBootstrapBrokers, also missing) come from the
//! config, which is how a user supplies them too.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use infra::provision::{Action, Component, Options, Provisioner, WaitOptions};
use templates::config::PipelineConfig;

const BOOTSTRAP: &str = "b-1.moto.kafka.us-east-1.amazonaws.com:9098,b-2.moto.kafka.us-east-1.amazonaws.com:9098";

async fn clients() -> infra::clients::Clients {
    let aws = aws_setup::AwsTarget::emulator(common::s3_endpoint());
    infra::clients::Clients::new(&aws.load().await)
}

/// No `ec2.ami_id`: the latest Amazon Linux 2023 image is looked up, as on
/// AWS. The default data path: our binary on the client machine; the file
/// uploaded as that binary is a stand-in (the portable build is checked in
/// `client_binary`), with bytes of its own per deployment.
pub(crate) fn config(uid: &str) -> PipelineConfig {
    let mut c = PipelineConfig::for_uid(uid);
    c.set("kafka.bootstrap_servers", BOOTSTRAP).unwrap();
    c.set("api_gateway.ip_ranges_url", &common::ip_ranges_file()).unwrap();
    c.set("ec2.pipeline_binary", stand_in_binary(uid).to_str().unwrap()).unwrap();
    c.set("databricks.host", WORKSPACE).unwrap();
    c.set("databricks.token_file", databricks_token_file(uid).to_str().unwrap()).unwrap();
    c
}

const WORKSPACE: &str = "https://dbc-0123abcd-4567.cloud.databricks.com";

/// A token of its own per deployment, in the file `provision` reads.
fn databricks_token_file(uid: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pipeline-databricks-token-{uid}"));
    std::fs::write(&path, format!("{}\n", databricks_token(uid))).unwrap();
    path
}

fn databricks_token(uid: &str) -> String {
    format!("dapi{}", sha256_hex(uid.as_bytes()))
}

fn stand_in_binary(uid: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pipeline-client-binary-{uid}"));
    std::fs::write(&path, format!("\x7fELF stand-in for the pipeline binary of {uid}")).unwrap();
    path
}

/// The original data path: the Confluent proxy on the machine, MSK Connect.
fn original_config(uid: &str) -> PipelineConfig {
    let mut c = config(uid);
    c.set("ec2.data_path", "original").unwrap();
    c
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn provisioner(config: PipelineConfig, key_dir: &std::path::Path, dry_run: bool) -> Provisioner {
    let options = Options {
        dry_run,
        skip: [Component::Connect, Component::Mwaa].into(),
        wait: WaitOptions { timeout: Duration::from_secs(60), interval: Duration::from_millis(100), progress: false },
        key_dir: key_dir.to_path_buf(),
        delete_data: true,
    };
    Provisioner::new(clients().await, config, options)
}

fn kinds(found: &[infra::provision::Found]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for f in found {
        *m.entry(f.kind).or_default() += 1;
    }
    m
}

fn expected_kinds() -> BTreeMap<&'static str, usize> {
    [
        ("s3 bucket", 2),
        ("iam role", 5),
        // The client machine's, and the Databricks role's.
        ("iam instance profile", 2),
        ("security group", 1),
        ("key pair", 1),
        ("msk cluster", 1),
        ("ec2 instance", 1),
        ("kinesis stream", 3),
        ("usage plan", 1),
        ("api key", 1),
        ("rest api", 1),
        // pipeline-topics, -ingest and -sink, as the user-data installs them.
        ("systemd unit", 3),
        // The binary and the gateway secret under pipeline-client/.
        ("s3 object", 2),
        // Airflow's Databricks connection.
        ("secretsmanager secret", 1),
    ]
    .into()
}

/// With the original data path: the proxy's one unit, nothing uploaded,
/// and MSK Connect's way to S3.
fn original_kinds() -> BTreeMap<&'static str, usize> {
    let mut kinds = expected_kinds();
    kinds.insert("systemd unit", 1);
    kinds.remove("s3 object");
    kinds.insert("s3 gateway endpoint", 1);
    kinds
}

#[tokio::test]
async fn provision_twice_changes_nothing_the_second_time_and_teardown_leaves_nothing_tagged() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    // The plan of an empty account: everything is a create, nothing is sent.
    let mut plan = provisioner(config(&uid), keys.path(), true).await;
    plan.apply().await.expect("plan");
    assert_eq!(plan.clients.log.mutating(), [], "a dry run mutates nothing");
    assert!(plan.steps.iter().any(|s| s.action == Action::Create && s.resource.contains("msk cluster")));

    let mut first = provisioner(config(&uid), keys.path(), false).await;
    first.apply().await.expect("first apply");
    let created: Vec<String> = first.steps.iter().filter(|s| s.action == Action::Create).map(|s| s.resource.clone()).collect();
    for wanted in [
        format!("s3 bucket user-{uid}-bucket"),
        format!("s3 bucket airflow-{uid}-dags"),
        format!("iam role {uid}-ec2-access-role"),
        format!("iam role {uid}-kinesis-access-role"),
        format!("iam role {uid}-databricks-access-role"),
        format!("iam instance profile {uid}-databricks-access-profile"),
        format!("security group {uid}-client-sg"),
        format!("key pair {uid}-key-pair"),
        format!("msk cluster {uid}-msk-cluster"),
        format!("ec2 instance {uid}-kafka-client"),
        format!("kinesis stream streaming-{uid}-pin"),
        format!("rest api {uid}-pipeline-api"),
        "/{proxy+} ANY".to_string(),
        "/streams/{stream-name}/record PUT".to_string(),
        format!("usage plan {uid}-usage-plan"),
        format!("api key {uid}-api-key"),
        format!("usage plan key {uid}-api-key"),
        format!("secretsmanager secret pinterest-pipeline/{uid}/connections/databricks_default"),
    ] {
        assert!(created.contains(&wanted), "{wanted} not created: {created:?}");
    }
    // The stream management routes are off by default.
    assert!(!created.iter().any(|r| r.starts_with("/streams ") || r.contains("} POST") || r.contains("} DELETE")), "{created:?}");

    // The private key: written 0600, never in the step report.
    let key_file = first.found.key_file.clone().expect("key file");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(key.starts_with("-----BEGIN"), "a PEM private key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let report: String = first.steps.iter().map(|s| s.to_string()).collect();
    assert!(!report.contains(key.lines().nth(1).unwrap()), "no key material in the report");
    let summary = format!("{:?}", first.found.summary());
    assert!(!report.contains(&databricks_token(&uid)) && !summary.contains(&databricks_token(&uid)), "the token is never shown");
    let api_key_file = first.found.api_key_file.clone().expect("api key file");
    let secret_file = first.found.gateway_secret_file.clone().expect("gateway secret file");
    for file in [&api_key_file, &secret_file] {
        let value = std::fs::read_to_string(file).unwrap();
        assert!(value.len() >= 20, "{} holds a value", file.display());
        assert!(!report.contains(&value), "{} is not in the report", file.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
        }
    }

    // What AWS (moto) now holds, read independently of the provisioner.
    let c = clients().await;
    let dns = first.found.public_dns.clone().expect("the instance has a public DNS name");
    let api_id = first.found.api_id.clone().expect("api id");
    let resources = c.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
    let proxy = resources.items().iter().find(|r| r.path() == Some("/{proxy+}")).expect("proxy resource");
    let integration =
        c.apigateway.get_integration().rest_api_id(&api_id).resource_id(proxy.id().unwrap()).http_method("ANY").send().await.unwrap();
    assert_eq!(integration.uri(), Some(format!("http://{dns}:8082/{{proxy}}").as_str()));
    let record = resources.items().iter().find(|r| r.path() == Some("/streams/{stream-name}/record")).expect("record route");
    let put =
        c.apigateway.get_integration().rest_api_id(&api_id).resource_id(record.id().unwrap()).http_method("PUT").send().await.unwrap();
    assert_eq!(put.uri(), Some("arn:aws:apigateway:us-east-1:kinesis:action/PutRecord"));
    assert_eq!(put.credentials(), first.found.role_arns.get("kinesis").map(String::as_str));

    // Access: every method needs the key; the proxy adds the gateway secret.
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let header = format!("integration.request.header.{}", templates::apigateway::GATEWAY_SECRET_HEADER);
    assert_eq!(integration.request_parameters().and_then(|m| m.get(&header)), Some(&format!("'{secret}'")));
    for r in resources.items() {
        for method in r.resource_methods().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            let m = c.apigateway.get_method().rest_api_id(&api_id).resource_id(r.id().unwrap()).http_method(&method).send().await.unwrap();
            assert_eq!((m.api_key_required(), m.authorization_type()), (Some(true), Some("NONE")), "{} {method}", r.path().unwrap());
        }
    }
    let paths: Vec<&str> =
        resources.items().iter().filter(|r| r.resource_methods().is_some_and(|m| !m.is_empty())).filter_map(|r| r.path()).collect();
    assert!(!paths.contains(&"/streams") && !paths.contains(&"/streams/{stream-name}"), "no stream management routes: {paths:?}");
    let plan = c.apigateway.get_usage_plan().usage_plan_id(first.found.usage_plan_id.clone().unwrap()).send().await.unwrap();
    assert_eq!(plan.throttle().map(|t| (t.rate_limit(), t.burst_limit())), Some((100.0, 200)));
    assert_eq!(plan.quota().map(|q| (q.limit(), q.period().map(|p| p.as_str().to_string()))), Some((1_000_000, Some("DAY".into()))));
    assert!(plan.api_stages().iter().any(|s| s.api_id() == Some(api_id.as_str()) && s.stage() == Some("prod")));
    let key_id = first.found.api_key_id.clone().unwrap();
    let plan_keys = c.apigateway.get_usage_plan_keys().usage_plan_id(plan.id().unwrap()).send().await.unwrap();
    assert!(plan_keys.items().iter().any(|k| k.id() == Some(key_id.as_str())), "the key is in the plan");
    let key_value = c.apigateway.get_api_key().api_key(&key_id).include_value(true).send().await.unwrap();
    assert_eq!(key_value.value().map(str::to_string), Some(std::fs::read_to_string(&api_key_file).unwrap()));

    // The REST port is open to API Gateway's ranges of the region only; SSH is closed.
    let group = c.ec2.describe_security_groups().group_ids(first.found.security_group_id.clone().unwrap()).send().await.unwrap();
    let rules = group.security_groups()[0].ip_permissions();
    let mut sources: Vec<(i32, String)> = rules
        .iter()
        .flat_map(|r| r.ip_ranges().iter().map(move |x| (r.from_port().unwrap_or(-1), x.cidr_ip().unwrap_or_default().to_string())))
        .collect();
    sources.sort();
    assert_eq!(sources, common::GATEWAY_RANGES_US_EAST_1.map(|c| (8082, c.to_string())), "{rules:#?}");
    let instance = first.found.instance_id.clone().unwrap();
    let attr = c
        .ec2
        .describe_instance_attribute()
        .instance_id(&instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = base64::engine::general_purpose::STANDARD.decode(attr.user_data().and_then(|u| u.value()).expect("user data")).unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    assert!(user_data.contains(&format!("KAFKA_BOOTSTRAP_SERVERS={BOOTSTRAP}")), "user-data points our units at the cluster");
    assert!(user_data.contains("PIPELINE_KAFKA_AUTH=msk-iam"), "with MSK IAM");
    assert!(user_data.contains("systemctl enable --now pipeline-topics.service pipeline-ingest.service pipeline-sink.service"));
    assert!(!user_data.contains("kafka-rest") && !user_data.contains(&secret), "no proxy, and the secret stays out of the user-data");
    // The binary it installs is the file given, under a key named by its
    // SHA-256, which the user-data checks.
    let bytes = std::fs::read(stand_in_binary(&uid)).unwrap();
    let sha = sha256_hex(&bytes);
    assert_eq!(first.found.pipeline_binary_sha256.as_deref(), Some(sha.as_str()));
    let key = templates::config::Ec2Vars::binary_key(&sha);
    assert!(user_data.contains(&key) && user_data.contains(&format!("BINARY_SHA256=\"{sha}\"")), "{user_data}");
    let bucket = format!("user-{uid}-bucket");
    let uploaded = c.s3.get_object().bucket(&bucket).key(&key).send().await.expect("the binary is in the sink bucket");
    assert_eq!(uploaded.body.collect().await.unwrap().into_bytes().as_ref(), bytes.as_slice());
    let shared = c.s3.get_object().bucket(&bucket).key(templates::config::Ec2Vars::gateway_secret_key()).send().await.unwrap();
    assert_eq!(shared.body.collect().await.unwrap().into_bytes().as_ref(), secret.as_bytes(), "the ingest unit fetches the secret");
    // The DAG's connection, as MWAA's Secrets Manager backend will read it.
    let secret_name = format!("pinterest-pipeline/{uid}/connections/databricks_default");
    let stored = c.secretsmanager.get_secret_value().secret_id(&secret_name).send().await.unwrap();
    let connection: serde_json::Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(connection, serde_json::json!({"conn_type": "databricks", "host": WORKSPACE, "password": databricks_token(&uid)}));
    let connect: Vec<_> = first.steps.iter().filter(|s| s.component == Component::Connect).collect();
    assert!(!connect.is_empty() && connect.iter().all(|s| matches!(s.action, Action::Skip(_))), "{connect:?}");

    // Second run: only reads.
    let mut second = provisioner(config(&uid), keys.path(), false).await;
    second.apply().await.expect("second apply");
    assert_eq!(second.clients.log.mutating(), [], "second apply sent mutating calls");
    let not_exists: Vec<_> = second.steps.iter().filter(|s| !matches!(s.action, Action::Exists | Action::Skip(_))).collect();
    assert!(not_exists.is_empty(), "second apply: {not_exists:?}");
    assert_eq!(second.found.invoke_url, first.found.invoke_url);

    // Status finds all of it by the tag, and the units the machine runs.
    let mut status = provisioner(config(&uid), keys.path(), false).await;
    let found = status.status().await.expect("status");
    assert_eq!(kinds(&found), expected_kinds(), "{found:#?}");
    let units: Vec<&str> = found.iter().filter(|f| f.kind == "systemd unit").map(|f| f.id.as_str()).collect();
    assert_eq!(
        units,
        ["pipeline-topics.service", "pipeline-ingest.service", "pipeline-sink.service"].map(|u| format!("{u} on {instance}"))
    );

    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown");
    assert_eq!(down.steps.iter().filter(|s| s.action == Action::Delete).count(), expected_kinds().values().sum::<usize>());
    let mut after = provisioner(config(&uid), keys.path(), false).await;
    assert_eq!(after.status().await.expect("status"), [], "nothing tagged remains");
    assert!(!key_file.exists(), "the key file goes with the key pair");
    assert!(!api_key_file.exists() && !secret_file.exists(), "the API key and gateway secret files go with the API");
}

/// Settings changed on a live stack change it in place: the stream
/// management routes on (IAM-signed) then off (deleted), and a REST port an
/// older deployment opened to the world is closed again.
#[tokio::test]
async fn access_settings_change_in_place_and_a_world_open_rest_port_is_revoked() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut with_routes = config(&uid);
    with_routes.set("api_gateway.stream_routes", "true").unwrap();
    let mut first = provisioner(with_routes, keys.path(), false).await;
    first.apply().await.expect("apply with stream routes");
    let c = clients().await;
    let api_id = first.found.api_id.clone().unwrap();
    let method = |path: &'static str, http_method: &'static str| {
        let c = c.clone();
        let api_id = api_id.clone();
        async move {
            let resources = c.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
            let r = resources.items().iter().find(|r| r.path() == Some(path))?.clone();
            c.apigateway.get_method().rest_api_id(&api_id).resource_id(r.id().unwrap()).http_method(http_method).send().await.ok()
        }
    };
    for (path, m) in [("/streams", "GET"), ("/streams/{stream-name}", "POST"), ("/streams/{stream-name}", "DELETE")] {
        let got = method(path, m).await.unwrap_or_else(|| panic!("{path} {m} exists"));
        assert_eq!(got.authorization_type(), Some("AWS_IAM"), "{path} {m}");
    }
    assert_eq!(method("/streams/{stream-name}/record", "PUT").await.unwrap().authorization_type(), Some("NONE"));

    // What an older provision made: the REST port open to everyone.
    let group = first.found.security_group_id.clone().unwrap();
    c.ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(8082)
                .to_port(8082)
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let mut plan = provisioner(config(&uid), keys.path(), true).await;
    plan.apply().await.unwrap();
    assert_eq!(plan.clients.log.mutating(), [], "a plan changes nothing");
    let deletes: Vec<String> = plan.steps.iter().filter(|s| s.action == Action::Delete).map(|s| s.resource.clone()).collect();
    assert_eq!(deletes.len(), 4, "the four management routes go: {deletes:?}");
    let sg = plan.steps.iter().find(|s| s.resource.starts_with("security group")).unwrap();
    assert!(matches!(&sg.action, Action::Update(why) if why.contains("revoke 0.0.0.0/0 on port 8082")), "{sg}");

    let mut second = provisioner(config(&uid), keys.path(), false).await;
    second.apply().await.expect("apply with the defaults");
    for (path, m) in [("/streams", "GET"), ("/streams/{stream-name}", "POST"), ("/streams/{stream-name}", "DELETE")] {
        assert!(method(path, m).await.is_none(), "{path} {m} deleted");
    }
    let rules = c.ec2.describe_security_groups().group_ids(&group).send().await.unwrap();
    let open: Vec<_> = rules.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|r| r.ip_ranges())
        .filter(|r| r.cidr_ip() == Some("0.0.0.0/0"))
        .collect();
    assert!(open.is_empty(), "no rule open to the world remains: {open:?}");
    let mut third = provisioner(config(&uid), keys.path(), false).await;
    third.apply().await.unwrap();
    assert_eq!(third.clients.log.mutating(), [], "converged");

    // The original's open API, one setting away.
    let mut open_config = config(&uid);
    open_config.set("api_gateway.auth", "none").unwrap();
    let mut opened = provisioner(open_config, keys.path(), false).await;
    opened.apply().await.unwrap();
    assert_eq!(method("/streams/{stream-name}/record", "PUT").await.unwrap().api_key_required(), Some(false));

    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown");
    let mut after = provisioner(config(&uid), keys.path(), false).await;
    assert_eq!(after.status().await.unwrap(), [], "nothing tagged remains");
}

/// The original data path is one setting away: the Confluent proxy on the
/// client machine (its user-data creates the topics with the Kafka CLI and
/// runs kafka-rest), nothing of ours uploaded.
#[tokio::test]
async fn the_original_data_path_is_one_setting_away() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut p = provisioner(original_config(&uid), keys.path(), false).await;
    p.clients.log.keep_requests();
    p.apply().await.expect("apply");
    assert_eq!(p.found.pipeline_binary_sha256, None, "no binary uploaded");
    let c = clients().await;
    // MSK Connect's workers have no public IP and the default VPC no NAT:
    // their way to S3 is a gateway endpoint on every route table of the VPC.
    let vpc = p.found.vpc_id.clone().unwrap();
    let endpoints = c
        .ec2
        .describe_vpc_endpoints()
        .filters(aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", contract::STACK_TAG)).values(&uid).build())
        .send()
        .await
        .unwrap();
    let [endpoint] = endpoints.vpc_endpoints() else { panic!("one S3 gateway endpoint: {endpoints:?}") };
    assert_eq!(endpoint.service_name(), Some("com.amazonaws.us-east-1.s3"));
    assert_eq!(endpoint.vpc_id(), Some(vpc.as_str()));
    let tables = c
        .ec2
        .describe_route_tables()
        .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .unwrap();
    let mut all: Vec<&str> = tables.route_tables().iter().filter_map(|t| t.route_table_id()).collect();
    let mut routed: Vec<&str> = endpoint.route_table_ids().iter().map(String::as_str).collect();
    all.sort_unstable();
    routed.sort_unstable();
    assert_eq!(routed, all, "every route table of the VPC");
    // What the original path adds meets the service models too.
    let sent = p.clients.log.requests();
    assert!(sent.iter().any(|r| r.operation == "CreateVpcEndpoint"), "the endpoint's request was captured");
    if let Err(report) = crate::aws_conformance::check(&sent) {
        panic!("requests AWS would refuse:\n{report}");
    }
    let attr = c
        .ec2
        .describe_instance_attribute()
        .instance_id(p.found.instance_id.clone().unwrap())
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = base64::engine::general_purpose::STANDARD.decode(attr.user_data().and_then(|u| u.value()).unwrap()).unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    assert!(user_data.contains(BOOTSTRAP), "user-data points the clients at the cluster");
    assert!(user_data.contains(&p.found.role_arns["ec2"]), "and at the EC2 access role");
    assert!(user_data.contains(&"--topic \"$topic\"".to_string()) && user_data.contains(&format!("{uid}.pin")));
    assert!(user_data.contains("kafka-rest.service") && !user_data.contains("pipeline-ingest"));
    let listed = c.s3.list_objects_v2().bucket(format!("user-{uid}-bucket")).prefix(templates::config::CLIENT_PREFIX).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    let mut status = provisioner(original_config(&uid), keys.path(), false).await;
    assert_eq!(kinds(&status.status().await.unwrap()), original_kinds());
    let mut down = provisioner(original_config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown");
    let left = c.ec2.describe_vpc_endpoints().vpc_endpoint_ids(endpoint.vpc_endpoint_id().unwrap()).send().await;
    let gone =
        left.map_or(true, |l| l.vpc_endpoints().iter().all(|e| e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))));
    assert!(gone, "teardown deletes the endpoint");
}

/// A user who brings a cluster: msk skipped, `kafka.bootstrap_servers`
/// configured. The client machine's user-data points at that cluster.
#[tokio::test]
async fn a_cluster_the_user_brings_reaches_the_client_machine() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut p = provisioner(config(&uid), keys.path(), false).await;
    p.options.skip.insert(Component::Msk);
    p.apply().await.expect("apply with msk skipped");
    assert_eq!(p.found.cluster_arn, None, "no cluster was made or looked up");
    let c = clients().await;
    let attr = c
        .ec2
        .describe_instance_attribute()
        .instance_id(p.found.instance_id.clone().expect("the client machine"))
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = base64::engine::general_purpose::STANDARD.decode(attr.user_data().and_then(|u| u.value()).unwrap()).unwrap();
    assert!(String::from_utf8(user_data).unwrap().contains(BOOTSTRAP), "user-data names the configured cluster");
    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.options.skip.insert(Component::Msk);
    down.teardown().await.expect("teardown");
}

/// Run an apply and drop it (as Ctrl-C would) once it has sent `after`
/// mutating calls; returns how many it had sent when it stopped.
async fn interrupted_apply(p: Provisioner, after: usize) -> usize {
    let log = p.clients.log.clone();
    let mut p = p;
    let run = tokio::spawn(async move { p.apply().await });
    while log.mutating().len() < after && !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if run.is_finished() {
        let ended = run.await.expect("the apply does not panic").err().map(|e| e.to_string());
        panic!("the apply ended before {after} mutating calls, with error {ended:?}");
    }
    run.abort();
    let _ = run.await;
    log.mutating().len()
}

/// Mutating calls each successive run makes before it is stopped; as each
/// run resumes the last, they land at about the 7th, 15th, 25th and 37th
/// call of a whole apply (of ~60): in IAM, network, Kinesis and API Gateway.
/// The first point is after the buckets: S3 cannot create a bucket with its
/// tags in one call on emulators, and an untagged bucket of the same name is
/// (rightly) treated as someone else's.
const INTERRUPT_AT: [usize; 4] = [7, 8, 10, 12];

#[tokio::test]
async fn interrupted_applies_resume_to_the_same_stack_and_a_partial_stack_tears_down() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    for at in INTERRUPT_AT {
        let sent = interrupted_apply(provisioner(config(&uid), keys.path(), false).await, at).await;
        assert!(sent >= at);
    }
    let mut resumed = provisioner(config(&uid), keys.path(), false).await;
    resumed.apply().await.expect("the run after the interruptions completes");
    let mut status = provisioner(config(&uid), keys.path(), false).await;
    assert_eq!(kinds(&status.status().await.unwrap()), expected_kinds(), "one of each, nothing doubled");
    let mut again = provisioner(config(&uid), keys.path(), false).await;
    again.apply().await.unwrap();
    assert_eq!(again.clients.log.mutating(), [], "converged: a further run changes nothing");
    let key = std::fs::read_to_string(keys.path().join(format!("{uid}-key-pair.pem"))).unwrap();
    assert!(key.starts_with("-----BEGIN"), "the key pair's private key was saved");
    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown");

    // Teardown alone removes a stack whose apply was interrupted half-way.
    let uid = common::fresh_names().uid().to_string();
    interrupted_apply(provisioner(config(&uid), keys.path(), false).await, 17).await;
    let mut status = provisioner(config(&uid), keys.path(), false).await;
    assert!(!status.status().await.unwrap().is_empty(), "the partial stack exists");
    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown of a partial stack");
    let mut status = provisioner(config(&uid), keys.path(), false).await;
    assert_eq!(status.status().await.unwrap(), [], "teardown after a partial apply leaves nothing tagged");
}

#[tokio::test]
async fn a_failed_apply_names_the_fix_and_the_fixed_run_reuses_what_was_made() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut bad = config(&uid);
    bad.set("kafka.broker_count", "5").unwrap();
    let mut broken = provisioner(bad, keys.path(), false).await;
    let err = broken.apply().await.expect_err("5 brokers fit no zone layout").to_string();
    assert!(err.contains("kafka.broker_count"), "the error names the setting: {err}");
    let made: Vec<_> = broken.steps.iter().filter(|s| s.action == Action::Create).map(|s| s.resource.clone()).collect();
    assert!(made.iter().any(|r| r.starts_with("iam role")), "{made:?}");

    let mut fixed = provisioner(config(&uid), keys.path(), false).await;
    fixed.apply().await.expect("fixed run");
    for s in fixed.steps.iter().filter(|s| s.resource.starts_with("iam role") || s.resource.starts_with("s3 bucket")) {
        assert_eq!(s.action, Action::Exists, "{s}");
    }
    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.teardown().await.expect("teardown");
    let mut status = provisioner(config(&uid), keys.path(), false).await;
    assert_eq!(status.status().await.unwrap(), []);
}

#[tokio::test]
async fn teardown_keeps_pipeline_data_unless_asked() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let mut only_buckets = provisioner(config(&uid), keys.path(), false).await;
    only_buckets.options.skip = Component::ALL.into_iter().filter(|c| *c != Component::Buckets).collect();
    only_buckets.apply().await.unwrap();
    let c = clients().await;
    let bucket = format!("user-{uid}-bucket");
    c.s3.put_object().bucket(&bucket).key("topics/x/partition=0/x+0+0000000000.json").body(b"{}\n".to_vec().into()).send().await.unwrap();

    let mut down = provisioner(config(&uid), keys.path(), false).await;
    down.options.skip = only_buckets.options.skip.clone();
    down.options.delete_data = false;
    let err = down.teardown().await.expect_err("data kept").to_string();
    assert!(err.contains(&bucket) && err.contains("--delete-data"), "{err}");
    assert!(c.s3.head_object().bucket(&bucket).key("topics/x/partition=0/x+0+0000000000.json").send().await.is_ok());

    down.options.delete_data = true;
    down.teardown().await.expect("teardown with --delete-data");
    assert!(c.s3.head_bucket().bucket(&bucket).send().await.is_err(), "bucket gone");
}

/// moto has neither MSK Connect nor MWAA: apply, status and teardown with
/// nothing skipped report those two as not available at this endpoint,
/// with the service's answer, and carry on with the rest.
#[tokio::test]
async fn services_the_emulator_lacks_are_reported_and_the_rest_goes_on() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let plugin = keys.path().join("connector-plugin.zip");
    std::fs::write(&plugin, b"PK\x03\x04 a stand-in for the Confluent S3 sink zip").unwrap();
    let mut config = original_config(&uid);
    config.set("connect.plugin_source", plugin.to_str().unwrap()).unwrap();
    let unavailable = |p: &Provisioner| -> Vec<Component> {
        p.steps
            .iter()
            .filter(|s| matches!(&s.action, Action::Skip(why) if why.starts_with("not available at this endpoint")))
            .map(|s| s.component)
            .collect()
    };
    let mut apply = provisioner(config.clone(), keys.path(), false).await;
    apply.options.skip.clear();
    apply.apply().await.expect("apply carries on past MSK Connect");
    assert_eq!(unavailable(&apply), [Component::Connect, Component::Mwaa]);
    for c in [Component::Connect, Component::Mwaa] {
        let step = apply.steps.iter().find(|s| s.component == c && matches!(s.action, Action::Skip(_))).unwrap();
        // The endpoint's own answer, not a DNS failure of a prefixed host name.
        assert!(step.to_string().contains("HTTP 500"), "the service's answer is shown: {step}");
    }
    assert!(apply.found.invoke_url.is_some(), "the components after it ran");

    let mut status = provisioner(config.clone(), keys.path(), false).await;
    status.options.skip.clear();
    let found = status.status().await.expect("status carries on");
    assert_eq!(kinds(&found), original_kinds());
    assert_eq!(unavailable(&status), [Component::Connect, Component::Mwaa]);

    let mut down = provisioner(config.clone(), keys.path(), false).await;
    down.options.skip.clear();
    down.teardown().await.expect("teardown carries on");
    assert_eq!(unavailable(&down), [Component::Mwaa, Component::Connect], "in teardown order");
    let mut after = provisioner(config, keys.path(), false).await;
    assert_eq!(after.status().await.unwrap(), [], "the rest was torn down");
}

/// Airflow's Databricks connection: a changed token changes the secret in
/// place; teardown schedules it for deletion and a later apply restores it;
/// a secret the user made by hand is used, never changed; without a token
/// file nothing is stored, and a token file without a host names the fix.
#[tokio::test]
async fn the_databricks_connection_follows_the_token_file_and_survives_a_teardown() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let only_connection = || Component::ALL.into_iter().filter(|c| *c != Component::AirflowConnection).collect();
    let run = |config: PipelineConfig| {
        let keys = keys.path().to_path_buf();
        async move {
            let mut p = provisioner(config, &keys, false).await;
            p.options.skip = only_connection();
            p
        }
    };
    let c = clients().await;
    let name = format!("pinterest-pipeline/{uid}/connections/databricks_default");
    let actions = |p: &Provisioner| -> Vec<Action> {
        p.steps.iter().filter(|s| s.component == Component::AirflowConnection).map(|s| s.action.clone()).collect()
    };

    let mut first = run(config(&uid)).await;
    first.apply().await.unwrap();
    assert_eq!(actions(&first), [Action::Create]);
    assert!(secret_value(&c, &name).await.contains(&databricks_token(&uid)));

    // A new token (a rotated service principal token) changes the value.
    let rotated = keys.path().join("rotated-token");
    std::fs::write(&rotated, "dapi-rotated\n").unwrap();
    let mut with_rotated = config(&uid);
    with_rotated.set("databricks.token_file", rotated.to_str().unwrap()).unwrap();
    let mut second = run(with_rotated.clone()).await;
    second.apply().await.unwrap();
    assert!(matches!(actions(&second)[..], [Action::Update(_)]), "{:?}", second.steps);
    assert!(!format!("{:?}", second.steps).contains("dapi-rotated"), "the plan never shows the token");
    let value: serde_json::Value = serde_json::from_str(&secret_value(&c, &name).await).unwrap();
    assert_eq!(value["password"], "dapi-rotated");
    let mut same = run(with_rotated.clone()).await;
    same.apply().await.unwrap();
    assert_eq!((actions(&same), same.clients.log.mutating()), (vec![Action::Exists], vec![]));

    // Teardown: gone from the stack, restorable; the next apply restores it.
    let mut down = run(with_rotated.clone()).await;
    down.teardown().await.unwrap();
    assert_eq!(run(with_rotated.clone()).await.status().await.unwrap(), []);
    let described = c.secretsmanager.describe_secret().secret_id(&name).send().await.unwrap();
    assert!(described.deleted_date().is_some(), "scheduled for deletion, not destroyed");
    let mut again = run(config(&uid)).await;
    again.apply().await.unwrap();
    assert!(matches!(actions(&again)[..], [Action::Update(ref why)] if why.contains("restored")), "{:?}", again.steps);
    assert!(secret_value(&c, &name).await.contains(&databricks_token(&uid)));
    let mut down = run(config(&uid)).await;
    down.teardown().await.unwrap();

    // Without a token file: nothing to store, and the plan says how.
    let other = common::fresh_names().uid().to_string();
    let mut bare = PipelineConfig::for_uid(&other);
    let mut skipped = run(bare.clone()).await;
    skipped.apply().await.unwrap();
    assert!(matches!(&actions(&skipped)[..], [Action::Skip(why)] if why.contains("databricks.token_file")), "{:?}", skipped.steps);
    // A secret the user stored by hand is used as it is.
    let by_hand = format!("pinterest-pipeline/{other}/connections/databricks_default");
    c.secretsmanager.create_secret().name(&by_hand).secret_string("{\"conn_type\": \"databricks\"}").send().await.unwrap();
    bare.set("databricks.host", WORKSPACE).unwrap();
    bare.set("databricks.token_file", databricks_token_file(&other).to_str().unwrap()).unwrap();
    let mut foreign = run(bare.clone()).await;
    foreign.apply().await.unwrap();
    assert_eq!((actions(&foreign), foreign.clients.log.mutating()), (vec![Action::Foreign], vec![]));
    c.secretsmanager.delete_secret().secret_id(&by_hand).force_delete_without_recovery(true).send().await.unwrap();
    // A token file but no host: the error names the setting.
    let mut no_host = PipelineConfig::for_uid(&other);
    no_host.set("databricks.token_file", databricks_token_file(&other).to_str().unwrap()).unwrap();
    let err = run(no_host).await.apply().await.expect_err("no host").to_string();
    assert!(err.contains("databricks.host"), "{err}");
}

async fn secret_value(c: &infra::clients::Clients, name: &str) -> String {
    c.secretsmanager.get_secret_value().secret_id(name).send().await.unwrap().secret_string().unwrap().to_string()
}

async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, cidr: &str, zone: &str) -> String {
    let out = ec2.create_subnet().vpc_id(vpc).cidr_block(cidr).availability_zone(zone).send().await.unwrap();
    out.subnet().unwrap().subnet_id().unwrap().to_string()
}

/// A route table of `vpc` whose default route goes to `target` (an
/// internet or NAT gateway), associated with `subnets`.
async fn route_default(ec2: &aws_sdk_ec2::Client, vpc: &str, target: &str, subnets: &[&str]) {
    let table = ec2.create_route_table().vpc_id(vpc).send().await.unwrap();
    let table = table.route_table().unwrap().route_table_id().unwrap().to_string();
    let route = ec2.create_route().route_table_id(&table).destination_cidr_block("0.0.0.0/0");
    let route = if target.starts_with("nat-") { route.nat_gateway_id(target) } else { route.gateway_id(target) };
    route.send().await.unwrap();
    for subnet in subnets {
        ec2.associate_route_table().route_table_id(&table).subnet_id(*subnet).send().await.unwrap();
    }
}

/// MWAA's subnets are checked before anything is made (one VPC, two zones,
/// private with a NAT route), and the environment gets a security group of
/// its own in their VPC whose members reach each other; teardown removes
/// it. Every request meets the service models.
#[tokio::test]
async fn mwaa_gets_checked_private_subnets_and_a_security_group_of_its_own() {
    let uid = common::fresh_names().uid().to_string();
    let keys = tempfile::tempdir().unwrap();
    let c = clients().await;
    let ec2 = &c.ec2;
    let vpc = ec2.create_vpc().cidr_block("10.42.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let private_a = create_subnet(ec2, &vpc, "10.42.1.0/24", "us-east-1a").await;
    let private_b = create_subnet(ec2, &vpc, "10.42.2.0/24", "us-east-1b").await;
    let private_a2 = create_subnet(ec2, &vpc, "10.42.4.0/24", "us-east-1a").await;
    let public = create_subnet(ec2, &vpc, "10.42.3.0/24", "us-east-1c").await;
    let igw = ec2.create_internet_gateway().send().await.unwrap().internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
    route_default(ec2, &vpc, &igw, &[&public]).await;
    let eip = ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.unwrap().allocation_id().unwrap().to_string();
    let nat = ec2.create_nat_gateway().subnet_id(&public).allocation_id(&eip).send().await.unwrap();
    let nat = nat.nat_gateway().unwrap().nat_gateway_id().unwrap().to_string();
    route_default(ec2, &vpc, &nat, &[&private_a, &private_b, &private_a2]).await;

    let run = |subnets: &[&str]| {
        let mut config = config(&uid);
        config.set("airflow.subnet_ids", &subnets.join(",")).unwrap();
        let keys = keys.path().to_path_buf();
        async move {
            let mut p = provisioner(config, &keys, false).await;
            p.options.skip = Component::ALL.into_iter().filter(|c| *c != Component::MwaaNetwork).collect();
            p.clients.log.keep_requests();
            p
        }
    };
    let mut requests = Vec::new();
    for (subnets, refusal) in [
        (vec![private_a.as_str(), public.as_str()], format!("{public} is public")),
        (vec![private_a.as_str(), private_a2.as_str()], "are both in zone".to_string()),
        (vec![private_a.as_str()], "1 given".to_string()),
    ] {
        let mut p = run(&subnets).await;
        let err = p.apply().await.expect_err("refused").to_string();
        assert!(err.contains(&refusal) && err.contains("airflow.subnet_ids"), "{subnets:?}: {err}");
        assert_eq!(p.clients.log.mutating(), [], "{subnets:?}: refused before anything is made");
        requests.extend(p.clients.log.requests());
    }

    let mut first = run(&[&private_a, &private_b]).await;
    first.apply().await.expect("private subnets with a NAT route");
    let actions: Vec<_> = first.steps.iter().filter(|s| s.component == Component::MwaaNetwork).map(|s| s.action.clone()).collect();
    assert_eq!(actions, [Action::Create]);
    requests.extend(first.clients.log.requests());
    let group = first.found.mwaa_security_group_id.clone().expect("MWAA's group");
    let described = ec2.describe_security_groups().group_ids(&group).send().await.unwrap();
    let g = &described.security_groups()[0];
    assert_eq!(g.vpc_id(), Some(vpc.as_str()), "in the subnets' VPC, not the default one");
    assert!(
        g.ip_permissions()
            .iter()
            .any(|r| r.ip_protocol() == Some("-1") && r.user_id_group_pairs().iter().any(|p| p.group_id() == Some(group.as_str()))),
        "members reach each other: {:?}",
        g.ip_permissions()
    );
    let mut second = run(&[&private_a, &private_b]).await;
    second.apply().await.unwrap();
    assert_eq!(second.clients.log.mutating(), [], "a second apply changes nothing");
    requests.extend(second.clients.log.requests());

    let mut status = run(&[&private_a, &private_b]).await;
    let found = status.status().await.unwrap();
    assert_eq!(found.iter().map(|f| (f.kind, f.id.clone())).collect::<Vec<_>>(), [("security group", group.clone())]);
    let mut down = run(&[&private_a, &private_b]).await;
    down.teardown().await.unwrap();
    requests.extend(down.clients.log.requests());
    assert_eq!(run(&[&private_a, &private_b]).await.status().await.unwrap(), []);
    crate::aws_conformance::check(&requests).expect("every request meets the service models");
}

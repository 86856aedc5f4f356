//! Provisioning of the parts no local emulator implements (MSK Connect, MWAA,
//! GetBootstrapBrokers), checked against the SDK's own replay client: the
//! operations sent, their order and their parameters.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use templates::config::PipelineConfig;

use infra::clients::Clients;
use infra::provision::{Action, Component, Options, Provisioner, WaitOptions};
use infra::stack::STACK_TAG;

const UID: &str = "abc123def456";
const ACCOUNT: &str = "123456789012";
const CLUSTER_ARN: &str = "arn:aws:kafka:us-east-1:123456789012:cluster/abc123def456-msk-cluster/1111-2222";

fn ok(body: Value) -> ReplayEvent {
    respond(200, &[], body)
}

fn respond(status: u16, headers: &[(&str, &str)], body: Value) -> ReplayEvent {
    answer(status, "application/json", headers, body.to_string())
}

/// An answer of S3's (XML, or empty), with its headers.
fn s3_respond(status: u16, headers: &[(&str, &str)], body: &str) -> ReplayEvent {
    answer(status, "application/xml", headers, body.to_string())
}

fn answer(status: u16, content_type: &str, headers: &[(&str, &str)], body: String) -> ReplayEvent {
    let mut resp = http::Response::builder().status(status).header("content-type", content_type);
    for (k, v) in headers {
        resp = resp.header(*k, *v);
    }
    ReplayEvent::new(
        http::Request::builder().uri("https://replayed.invalid/").body(SdkBody::empty()).unwrap(),
        resp.body(SdkBody::from(body)).unwrap(),
    )
}

fn not_found(error_type: &str) -> ReplayEvent {
    respond(404, &[("x-amzn-errortype", error_type)], json!({"message": "not found", "Message": "not found"}))
}

/// The tagging API's answer: the stack's cluster, found by its tag.
fn tagged_cluster() -> ReplayEvent {
    ok(json!({"ResourceTagMappingList": [{"ResourceARN": CLUSTER_ARN, "Tags": [{"Key": STACK_TAG, "Value": UID}]}]}))
}

async fn provisioner(events: Vec<ReplayEvent>, mut config: PipelineConfig) -> (Provisioner, StaticReplayClient) {
    // MSK Connect is made for the original data path only.
    config.set("ec2.data_path", "original").unwrap();
    let http = StaticReplayClient::new(events);
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("AKIDREPLAY", "replay-secret", None, None, "replay"))
        .load()
        .await;
    let options = Options {
        wait: WaitOptions { timeout: Duration::from_secs(10), interval: Duration::from_millis(1), progress: false },
        ..Options::default()
    };
    let mut p = Provisioner::new(Clients::new(&sdk), config, options);
    // For the service model check (aws_conformance).
    p.clients.log.keep_requests();
    p.found.account_id = Some(ACCOUNT.into());
    (p, http)
}

/// What the earlier components would have found.
fn with_upstream(p: &mut Provisioner) {
    p.found.cluster_arn = Some(CLUSTER_ARN.into());
    p.found.cluster_state = Some("ACTIVE".into());
    p.found.bootstrap_servers = Some("b-1.x.kafka.us-east-1.amazonaws.com:9098,b-2.x.kafka.us-east-1.amazonaws.com:9098".into());
    p.found.subnet_ids = vec!["subnet-a".into(), "subnet-b".into()];
    p.found.security_group_id = Some("sg-1".into());
    p.found.mwaa_security_group_id = Some("sg-mwaa".into());
    for (k, n) in [("ec2", "ec2-access-role"), ("connect", "msk-connect-role"), ("mwaa", "mwaa-execution-role")] {
        p.found.role_arns.insert(k.into(), format!("arn:aws:iam::{ACCOUNT}:role/pinterest-pipeline/{UID}/{UID}-{n}"));
    }
}

fn operations(p: &Provisioner) -> Vec<String> {
    p.clients.log.operations().into_iter().map(|o| o.name).collect()
}

fn body_json(req: &aws_smithy_runtime_api::http::Request) -> Value {
    serde_json::from_slice(req.body().bytes().expect("in-memory body")).expect("JSON body")
}

#[tokio::test]
async fn connect_creates_plugin_then_connector_with_the_original_settings() {
    let plugin_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:custom-plugin/{UID}-plugin/p-1");
    let connector_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:connector/{UID}-connector/c-1");
    let events = vec![
        respond(200, &[("content-length", "0")], json!({})), // HeadObject: the zip is uploaded
        ok(json!({"customPlugins": []})),
        ok(json!({"customPluginArn": plugin_arn, "customPluginState": "CREATING", "name": format!("{UID}-plugin"), "revision": 1})),
        ok(json!({"customPluginArn": plugin_arn, "customPluginState": "CREATING"})),
        ok(json!({"customPluginArn": plugin_arn, "customPluginState": "ACTIVE"})),
        ok(json!({"connectors": []})),
        ok(json!({"connectorArn": connector_arn, "connectorName": format!("{UID}-connector"), "connectorState": "CREATING"})),
        ok(json!({"connectorArn": connector_arn, "connectorState": "RUNNING"})),
    ];
    let (mut p, http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    with_upstream(&mut p);
    p.apply_component(Component::Connect).await.expect("connect applies");

    assert_eq!(
        operations(&p),
        [
            "HeadObject",
            "ListCustomPlugins",
            "CreateCustomPlugin",
            "DescribeCustomPlugin",
            "DescribeCustomPlugin",
            "ListConnectors",
            "CreateConnector",
            "DescribeConnector"
        ]
    );
    let requests: Vec<_> = http.actual_requests().collect();
    assert!(requests[0].uri().ends_with("/kafka-connect-s3/confluentinc-kafka-connect-s3-10.0.3.zip"), "{}", requests[0].uri());
    let plugin = body_json(requests[2]);
    assert_eq!(plugin["name"], format!("{UID}-plugin"));
    assert_eq!(plugin["contentType"], "ZIP");
    assert_eq!(plugin["location"]["s3Location"]["bucketArn"], format!("arn:aws:s3:::user-{UID}-bucket"));
    assert_eq!(plugin["location"]["s3Location"]["fileKey"], "kafka-connect-s3/confluentinc-kafka-connect-s3-10.0.3.zip");
    assert_eq!(plugin["tags"][STACK_TAG], UID);

    let connector = body_json(requests[6]);
    assert_eq!(connector["connectorName"], format!("{UID}-connector"));
    let settings = &connector["connectorConfiguration"];
    // SPEC 3.3 / seed section 5, verbatim.
    for (k, v) in [
        ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
        ("s3.region", "us-east-1"),
        ("flush.size", "1"),
        ("schema.compatibility", "NONE"),
        ("tasks.max", "3"),
        ("topics.regex", &format!("{UID}.*")),
        ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
        ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
        ("value.converter.schemas.enable", "false"),
        ("value.converter", "org.apache.kafka.connect.json.JsonConverter"),
        ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
        ("key.converter", "org.apache.kafka.connect.storage.StringConverter"),
        ("s3.bucket.name", &format!("user-{UID}-bucket")),
    ] {
        assert_eq!(settings[k], v, "{k}");
    }
    assert_eq!(settings.as_object().unwrap().len(), 13, "no extra settings: {settings}");
    let cluster = &connector["kafkaCluster"]["apacheKafkaCluster"];
    assert_eq!(cluster["bootstrapServers"], p.found.bootstrap_servers.clone().unwrap());
    assert_eq!(cluster["vpc"]["subnets"], json!(["subnet-a", "subnet-b"]));
    assert_eq!(cluster["vpc"]["securityGroups"], json!(["sg-1"]));
    assert_eq!(connector["kafkaClusterClientAuthentication"]["authenticationType"], "IAM");
    assert_eq!(connector["kafkaClusterEncryptionInTransit"]["encryptionType"], "TLS");
    assert_eq!(connector["plugins"][0]["customPlugin"]["customPluginArn"], plugin_arn);
    assert_eq!(connector["serviceExecutionRoleArn"], p.found.role_arns["connect"]);
    assert_eq!(connector["tags"][STACK_TAG], UID);
    // The workers' logs, where a failing upload shows, go to the sink bucket.
    let logs = &connector["logDelivery"]["workerLogDelivery"]["s3"];
    assert_eq!((logs["enabled"].as_bool(), logs["bucket"].as_str()), (Some(true), Some(format!("user-{UID}-bucket").as_str())));
    assert_eq!(logs["prefix"], infra::provision::CONNECT_LOG_PREFIX);
    assert_eq!(p.found.connector_arn.as_deref(), Some(connector_arn.as_str()));
    crate::aws_conformance::check(&p.clients.log.requests()).unwrap_or_else(|report| panic!("requests AWS would refuse:\n{report}"));
}

#[tokio::test]
async fn connect_second_run_only_reads() {
    let plugin_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:custom-plugin/{UID}-plugin/p-1");
    let connector_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:connector/{UID}-connector/c-1");
    let tags = json!({"tags": {STACK_TAG: UID}});
    let events = vec![
        respond(200, &[("content-length", "0")], json!({})),
        ok(json!({"customPlugins": [{"name": format!("{UID}-plugin"), "customPluginArn": plugin_arn, "customPluginState": "ACTIVE"}]})),
        ok(tags.clone()),
        ok(json!({"customPluginArn": plugin_arn, "customPluginState": "ACTIVE"})),
        ok(
            json!({"connectors": [{"connectorName": format!("{UID}-connector"), "connectorArn": connector_arn, "connectorState": "RUNNING"}]}),
        ),
        ok(tags),
    ];
    let (mut p, _http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    with_upstream(&mut p);
    p.apply_component(Component::Connect).await.expect("connect applies");
    assert_eq!(p.clients.log.mutating(), [], "a second run sends no mutating call");
    assert!(p.steps.iter().all(|s| s.action == Action::Exists), "{:?}", p.steps);
}

#[tokio::test]
async fn connect_teardown_deletes_the_connector_before_its_plugin() {
    let plugin_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:custom-plugin/{UID}-plugin/p-1");
    let connector_arn = format!("arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:connector/{UID}-connector/c-1");
    let tags = json!({"tags": {STACK_TAG: UID}});
    let events = vec![
        ok(
            json!({"connectors": [{"connectorName": format!("{UID}-connector"), "connectorArn": connector_arn, "connectorState": "RUNNING"}]}),
        ),
        ok(tags.clone()),
        ok(json!({"customPlugins": [{"name": format!("{UID}-plugin"), "customPluginArn": plugin_arn, "customPluginState": "ACTIVE"}]})),
        ok(tags),
        ok(json!({"connectorArn": connector_arn, "connectorState": "DELETING"})),
        ok(json!({"connectorArn": connector_arn, "connectorState": "DELETING"})),
        not_found("NotFoundException"),
        ok(json!({"customPluginArn": plugin_arn, "customPluginState": "DELETING"})),
    ];
    let (mut p, http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    let found = p.discover(Component::Connect).await.expect("discovers");
    assert_eq!(found.len(), 2);
    p.delete(Component::Connect, &found).await.expect("deletes");
    assert_eq!(
        operations(&p),
        [
            "ListConnectors",
            "ListTagsForResource",
            "ListCustomPlugins",
            "ListTagsForResource",
            "DeleteConnector",
            "DescribeConnector",
            "DescribeConnector",
            "DeleteCustomPlugin"
        ]
    );
    let requests: Vec<_> = http.actual_requests().collect();
    assert_eq!(requests[4].method(), "DELETE");
    assert!(requests[4].uri().contains("connector"), "{}", requests[4].uri());
    assert!(requests[7].uri().contains("custom-plugin"), "{}", requests[7].uri());
}

#[tokio::test]
async fn msk_waits_for_active_then_reads_the_iam_bootstrap_servers() {
    let iam_brokers = "b-1.c.kafka.us-east-1.amazonaws.com:9098,b-2.c.kafka.us-east-1.amazonaws.com:9098";
    let events = vec![
        tagged_cluster(),
        ok(json!({"clusterInfo": {"clusterArn": CLUSTER_ARN, "state": "CREATING"}})),
        ok(json!({"clusterInfo": {"clusterArn": CLUSTER_ARN, "state": "ACTIVE"}})),
        ok(json!({"bootstrapBrokerStringTls": "b-1:9094", "bootstrapBrokerStringSaslIam": iam_brokers})),
    ];
    let (mut p, http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    p.apply_component(Component::Msk).await.expect("msk applies");
    assert_eq!(operations(&p), ["GetResources", "DescribeCluster", "DescribeCluster", "GetBootstrapBrokers"]);
    assert_eq!(p.found.bootstrap_servers.as_deref(), Some(iam_brokers));
    let last = http.actual_requests().last().unwrap().uri().to_string();
    assert!(last.contains("/bootstrap-brokers"), "{last}");
    assert!(last.contains("abc123def456-msk-cluster"), "the cluster ARN is in the path: {last}");
    assert_eq!(p.steps[0].action, Action::Exists);
    let lookup = body_json(http.actual_requests().next().unwrap());
    assert_eq!(lookup["ResourceTypeFilters"], json!(["kafka:cluster"]));
    assert_eq!(lookup["TagFilters"], json!([{"Key": STACK_TAG, "Values": [UID]}]));
}

#[tokio::test]
async fn msk_wait_gives_up_with_a_clear_timeout() {
    let mut events = vec![tagged_cluster()];
    events.extend((0..50).map(|_| ok(json!({"clusterInfo": {"clusterArn": CLUSTER_ARN, "state": "CREATING"}}))));
    let (mut p, _http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    p.options.wait = WaitOptions { timeout: Duration::from_millis(30), interval: Duration::from_millis(5), progress: false };
    let err = p.apply_component(Component::Msk).await.expect_err("never ACTIVE");
    let text = err.to_string();
    assert!(text.contains("timed out") && text.contains("CREATING") && text.contains("--wait-timeout"), "{text}");
}

#[tokio::test]
async fn mwaa_environment_reads_dags_and_requirements_from_the_dags_bucket() {
    let mut config = PipelineConfig::for_uid(UID);
    config.set("airflow.subnet_ids", "subnet-private-1,subnet-private-2").unwrap();
    config.set("airflow.dags_bucket", "abc-dags").unwrap();
    let env_arn = format!("arn:aws:airflow:us-east-1:{ACCOUNT}:environment/{UID}-mwaa");
    let requirements = templates::render::mwaa_requirements(&templates::Templates::new(), &config).unwrap();
    let length = requirements.len().to_string();
    let events = vec![
        not_found("ResourceNotFoundException"),
        // No requirements.txt yet: it is uploaded before the environment.
        s3_respond(404, &[], "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"),
        s3_respond(200, &[("etag", "\"e1\""), ("x-amz-version-id", "v1")], ""),
        s3_respond(200, &[("etag", "\"e1\""), ("x-amz-version-id", "v1"), ("content-length", &length)], ""),
        ok(json!({"Arn": env_arn})),
        ok(json!({"Environment": {"Name": format!("{UID}-mwaa"), "Status": "CREATING"}})),
        ok(json!({"Environment": {"Name": format!("{UID}-mwaa"), "Status": "AVAILABLE"}})),
    ];
    let (mut p, http) = provisioner(events, config).await;
    with_upstream(&mut p);
    p.apply_component(Component::Mwaa).await.expect("mwaa applies");
    assert_eq!(
        operations(&p),
        ["GetEnvironment", "GetObject", "PutObject", "HeadObject", "CreateEnvironment", "GetEnvironment", "GetEnvironment"]
    );
    let requests: Vec<_> = http.actual_requests().collect();
    assert!(requests[2].uri().contains("abc-dags") && requests[2].uri().contains("/requirements.txt"), "{}", requests[2].uri());
    assert_eq!(requests[2].body().bytes().unwrap(), requirements.as_bytes(), "the rendered requirements.txt");
    assert!(requirements.contains("apache-airflow-providers-databricks"), "{requirements}");
    let create = body_json(requests[4]);
    assert!(requests[4].uri().ends_with(&format!("/environments/{UID}-mwaa")), "{}", requests[4].uri());
    // The version uploaded: MWAA installs it at creation.
    assert_eq!(create["RequirementsS3ObjectVersion"], "v1");
    // The DAG's databricks_default comes from this deployment's secrets.
    let options = &create["AirflowConfigurationOptions"];
    assert_eq!(options["secrets.backend"], infra::provision::SECRETS_BACKEND);
    let kwargs: Value = serde_json::from_str(options["secrets.backend_kwargs"].as_str().unwrap()).unwrap();
    assert_eq!(kwargs, json!({"connections_prefix": format!("pinterest-pipeline/{UID}/connections")}));
    assert_eq!(create["SourceBucketArn"], "arn:aws:s3:::abc-dags");
    assert_eq!(create["DagS3Path"], "dags");
    assert_eq!(create["RequirementsS3Path"], "requirements.txt");
    assert_eq!(create["ExecutionRoleArn"], p.found.role_arns["mwaa"]);
    assert_eq!(create["NetworkConfiguration"]["SubnetIds"], json!(["subnet-private-1", "subnet-private-2"]));
    // Its own group, in its subnets' VPC (mwaa-network), not the client's.
    assert_eq!(create["NetworkConfiguration"]["SecurityGroupIds"], json!(["sg-mwaa"]));
    assert_eq!(create["AirflowVersion"], "2.10.3");
    assert_eq!(create["Tags"][STACK_TAG], UID);
    assert_eq!(p.found.mwaa_arn.as_deref(), Some(env_arn.as_str()));
    crate::aws_conformance::check(&p.clients.log.requests()).unwrap_or_else(|report| panic!("requests AWS would refuse:\n{report}"));
}

#[tokio::test]
async fn mwaa_without_private_subnets_is_skipped_with_the_reason() {
    let (mut p, _http) = provisioner(vec![not_found("ResourceNotFoundException")], PipelineConfig::for_uid(UID)).await;
    p.apply_component(Component::Mwaa).await.expect("skips");
    assert!(matches!(&p.steps[0].action, Action::Skip(why) if why.contains("airflow.subnet_ids")), "{:?}", p.steps);
    assert_eq!(p.clients.log.mutating(), []);
}

fn environment(status: &str, requirements_version: &str) -> ReplayEvent {
    ok(json!({"Environment": {
        "Name": format!("{UID}-mwaa"),
        "Status": status,
        "RequirementsS3Path": "requirements.txt",
        "RequirementsS3ObjectVersion": requirements_version,
    }}))
}

#[tokio::test]
async fn deploy_dag_updates_the_environment_to_new_requirements_and_waits() {
    let wait = WaitOptions { timeout: Duration::from_secs(10), interval: Duration::from_millis(1), progress: false };
    let requirements = infra::dags::Requirements { version_id: Some("v2".into()), uploaded: true };
    let (p, http) = provisioner(
        vec![
            environment("AVAILABLE", "v1"),
            ok(json!({"Arn": format!("arn:aws:airflow:us-east-1:{ACCOUNT}:environment/{UID}-mwaa")})),
            environment("UPDATING", "v1"),
            environment("AVAILABLE", "v2"),
        ],
        PipelineConfig::for_uid(UID),
    )
    .await;
    let done = infra::dags::install_requirements(&p.clients.mwaa, &format!("{UID}-mwaa"), &requirements, &wait).await.unwrap();
    assert_eq!(done, infra::dags::RequirementsInstall::Updated { from: Some("v1".into()) });
    assert_eq!(operations(&p), ["GetEnvironment", "UpdateEnvironment", "GetEnvironment", "GetEnvironment"]);
    let update = body_json(http.actual_requests().nth(1).unwrap());
    assert_eq!(update["RequirementsS3ObjectVersion"], "v2");
    assert_eq!(update["RequirementsS3Path"], "requirements.txt");
    crate::aws_conformance::check(&p.clients.log.requests()).unwrap_or_else(|report| panic!("requests AWS would refuse:\n{report}"));

    // The version it already installs: nothing to update.
    let (p, _) = provisioner(vec![environment("AVAILABLE", "v2")], PipelineConfig::for_uid(UID)).await;
    let done = infra::dags::install_requirements(&p.clients.mwaa, &format!("{UID}-mwaa"), &requirements, &wait).await.unwrap();
    assert_eq!(done, infra::dags::RequirementsInstall::Current);
    assert_eq!(p.clients.log.mutating(), []);

    // A failed update names the environment, both versions and MWAA's reason.
    let (p, _) = provisioner(
        vec![
            environment("AVAILABLE", "v1"),
            ok(json!({"Arn": "arn"})),
            ok(json!({"Environment": {"Name": "e", "Status": "UPDATE_FAILED", "LastUpdate": {"Error": {"ErrorMessage": "pip could not resolve"}}}})),
        ],
        PipelineConfig::for_uid(UID),
    )
    .await;
    let err = infra::dags::install_requirements(&p.clients.mwaa, "env-1", &requirements, &wait).await.unwrap_err().to_string();
    assert!(err.contains("env-1") && err.contains("v1") && err.contains("v2") && err.contains("pip could not resolve"), "{err}");
}

async fn mwaa_client(events: Vec<ReplayEvent>) -> (aws_sdk_mwaa::Client, StaticReplayClient) {
    let (p, http) = provisioner(events, PipelineConfig::for_uid(UID)).await;
    (p.clients.mwaa.clone(), http)
}

#[tokio::test]
async fn deploy_dag_reads_the_dag_state_through_mwaa_invoke_rest_api() {
    let (mwaa, http) =
        mwaa_client(vec![ok(json!({"RestApiStatusCode": 200, "RestApiResponse": {"dag_id": format!("{UID}_dag"), "is_paused": true}}))])
            .await;
    let state = infra::dags::dag_state(&mwaa, "env-1", UID).await.unwrap();
    assert_eq!(state, infra::dags::DagState::Loaded { is_paused: true });
    let req = http.actual_requests().next().unwrap();
    assert!(req.uri().ends_with("/restapi/env-1"), "{}", req.uri());
    let body = body_json(req);
    assert_eq!(body["Path"], format!("/dags/{UID}_dag"));
    assert_eq!(body["Method"], "GET");
}

#[tokio::test]
async fn deploy_dag_reports_the_import_error_of_its_file() {
    let missing = respond(
        400,
        &[("x-amzn-errortype", "RestApiClientException")],
        json!({"RestApiStatusCode": 404, "RestApiResponse": {"title": "DAG not found"}}),
    );
    let errors = ok(json!({"RestApiStatusCode": 200, "RestApiResponse": {"import_errors": [
        {"filename": "/usr/local/airflow/dags/other_dag.py", "stack_trace": "not ours"},
        {"filename": format!("/usr/local/airflow/dags/{UID}_dag.py"), "stack_trace": "ModuleNotFoundError: No module named 'airflow.providers.databricks'"}
    ], "total_entries": 2}}));
    let (mwaa, http) = mwaa_client(vec![missing, errors]).await;
    let state = infra::dags::dag_state(&mwaa, "env-1", UID).await.unwrap();
    assert_eq!(state, infra::dags::DagState::ImportError("ModuleNotFoundError: No module named 'airflow.providers.databricks'".into()));
    assert_eq!(body_json(http.actual_requests().nth(1).unwrap())["Path"], "/importErrors");

    let (mwaa, _) = mwaa_client(vec![
        respond(400, &[("x-amzn-errortype", "RestApiClientException")], json!({"RestApiStatusCode": 404})),
        ok(json!({"RestApiStatusCode": 200, "RestApiResponse": {"import_errors": []}})),
    ])
    .await;
    assert_eq!(infra::dags::dag_state(&mwaa, "env-1", UID).await.unwrap(), infra::dags::DagState::NotYetParsed);
}

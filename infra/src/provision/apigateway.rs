//! The REST API in front of both paths (seed section 6, SPEC 3.1-3.2):
//! `/{proxy+}` ANY as an HTTP proxy to the REST proxy on the client machine,
//! and the `/streams` routes as AWS integrations calling Kinesis with the
//! API Gateway role. Deployed to one stage; prints the invoke URL.
//!
//! Access (SPEC 8.7): by default every method needs the deployment's API
//! key under a usage plan; the stream management routes exist only when
//! `api_gateway.stream_routes` is on, and then need IAM-signed requests;
//! the HTTP proxy adds a per-deployment secret header so that the REST
//! port can refuse what did not come through the gateway.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use aws_sdk_apigateway::types::{
    ApiStage, EndpointConfiguration, EndpointType, IntegrationType, Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings,
};
use templates::apigateway::{GATEWAY_SECRET_HEADER, KINESIS_ROUTES};
use templates::config::ApiAuth;

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::ApiGateway;

/// One method and its integration, as this stack wants it. Not `Debug`:
/// the proxy route's parameters hold the gateway secret.
#[derive(Clone)]
struct Route {
    path: String,
    http_method: &'static str,
    /// `NONE` or `AWS_IAM`.
    authorization: &'static str,
    api_key_required: bool,
    kind: IntegrationType,
    integration_http_method: &'static str,
    uri: String,
    credentials: Option<String>,
    /// Method request path parameters (`method.request.path.proxy`).
    path_parameters: Vec<String>,
    integration_parameters: Vec<(String, String)>,
    request_template: Option<&'static str>,
}

/// What the methods of the API require of a caller, by route kind.
fn access(p: &Provisioner, manages_streams: bool) -> (&'static str, bool) {
    let key = p.config.api_gateway.auth == ApiAuth::ApiKey;
    (if manages_streams { "AWS_IAM" } else { "NONE" }, key)
}

fn routes(p: &Provisioner, secret: &str) -> (Vec<Route>, Option<String>) {
    let mut out = Vec::new();
    let mut skipped = None;
    // In a plan the instance may not exist yet; its name is known after apply.
    let planned = (p.dry_run() && !p.options.skip.contains(&Component::Client)).then(|| "<client public DNS>".to_string());
    match p.found.public_dns.clone().or(planned) {
        Some(dns) => out.push(Route {
            path: "/{proxy+}".into(),
            http_method: "ANY",
            authorization: access(p, false).0,
            api_key_required: access(p, false).1,
            kind: IntegrationType::HttpProxy,
            integration_http_method: "ANY",
            uri: format!("http://{dns}:{}/{{proxy}}", p.config.rest_proxy_port),
            credentials: None,
            path_parameters: vec!["method.request.path.proxy".into()],
            integration_parameters: vec![
                ("integration.request.path.proxy".into(), "method.request.path.proxy".into()),
                // A static value is written in single quotes.
                (format!("integration.request.header.{GATEWAY_SECRET_HEADER}"), format!("'{secret}'")),
            ],
            request_template: None,
        }),
        None => skipped = Some("the client machine's public DNS is unknown (client skipped or not running)".into()),
    }
    let role = p.found.role_arns.get("kinesis").cloned();
    for r in KINESIS_ROUTES.iter().filter(|r| !r.manages_streams || p.config.api_gateway.stream_routes) {
        let (authorization, api_key_required) = access(p, r.manages_streams);
        out.push(Route {
            path: r.path.into(),
            http_method: r.http_method,
            authorization,
            api_key_required,
            kind: IntegrationType::Aws,
            // Every Kinesis API action is a POST.
            integration_http_method: "POST",
            uri: format!("arn:aws:apigateway:{}:kinesis:action/{}", p.region(), r.action),
            credentials: role.clone(),
            path_parameters: if r.path.contains("{stream-name}") { vec!["method.request.path.stream-name".into()] } else { vec![] },
            integration_parameters: vec![("integration.request.header.Content-Type".into(), "'application/x-amz-json-1.1'".into())],
            request_template: Some(r.request_template),
        });
    }
    (out, skipped)
}

async fn find_api(p: &Provisioner) -> Result<Option<(String, bool)>> {
    let mut pages = p.clients.apigateway.get_rest_apis().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetRestApis", p.names.api.clone()))?;
        if let Some(api) = page.items().iter().find(|a| a.name() == Some(p.names.api.as_str())) {
            let ours = api.tags().and_then(|t| t.get(STACK_TAG)).map(String::as_str) == Some(p.uid());
            return Ok(Some((api.id().unwrap_or_default().to_string(), ours)));
        }
    }
    Ok(None)
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    if p.config.api_gateway.auth == ApiAuth::None {
        tracing::warn!(
            "api_gateway.auth = \"none\": anyone who learns the invoke URL can post records{}; set it to \"api-key\" (the default) to require the deployment's key",
            if p.config.api_gateway.stream_routes { " and create or delete the deployment's streams" } else { "" }
        );
    }
    let secret = gateway_secret(p)?;
    if p.config.ec2.data_path == templates::config::DataPath::Pipeline {
        share_secret_with_client(p, &secret).await?;
    }
    let api_name = p.names.api.clone();
    let (routes, skipped) = routes(p, &secret);
    if let Some(why) = skipped {
        p.record(C, "/{proxy+} ANY (HTTP proxy)", Action::Skip(why));
    }
    let api_id = match find_api(p).await? {
        Some((_, false)) => {
            p.record(C, format!("rest api {api_name}"), Action::Foreign);
            return Ok(());
        }
        Some((id, true)) => {
            p.record(C, format!("rest api {api_name}"), Action::Exists);
            id
        }
        None => {
            p.record(C, format!("rest api {api_name}"), Action::Create);
            for r in &routes {
                p.record(C, format!("{} {}", r.path, r.http_method), Action::Create);
            }
            p.record(C, format!("stage {}", p.config.api_gateway.stage), Action::Create);
            if p.dry_run() {
                return usage(p, None).await;
            }
            let (k, v) = p.stack_tag();
            let out = p
                .clients
                .apigateway
                .create_rest_api()
                .name(&api_name)
                .description(format!("Pinterest pipeline {}: Kafka REST proxy and Kinesis routes", p.uid()))
                .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                .tags(k, v)
                .send()
                .await
                .map_err(ProvisionError::aws("CreateRestApi", api_name.clone()))?;
            let id = out.id().unwrap_or_default().to_string();
            let mut resources = resources(p, &id).await?;
            for r in &routes {
                put_route(p, &id, &mut resources, r).await?;
            }
            deploy(p, &id).await?;
            return usage(p, Some(&id)).await;
        }
    };
    let mut resources = resources(p, &api_id).await?;
    let mut changed = false;
    for r in &routes {
        let label = format!("{} {}", r.path, r.http_method);
        let present = resources.get(&r.path).filter(|res| res.1.contains(&r.http_method.to_string())).map(|res| res.0.clone());
        // `replace`: authorization cannot be patched on every emulator, so
        // the method is deleted and put again, with its integration.
        let (action, replace) = match present {
            None => (Action::Create, false),
            Some(resource_id) => match method_differs(p, &api_id, &resource_id, r).await? {
                Some(why) => (Action::Update(format!("{why}: method replaced")), true),
                None => match integration_differs(p, &api_id, &resource_id, r).await? {
                    Some(why) => (Action::Update(why), false),
                    None => (Action::Exists, false),
                },
            },
        };
        let change = action.is_change();
        p.record(C, label, action);
        if !change {
            continue;
        }
        changed = true;
        if p.dry_run() {
            continue;
        }
        if replace {
            delete_method(p, &api_id, &mut resources, &r.path, r.http_method).await?;
        }
        put_route(p, &api_id, &mut resources, r).await?;
    }
    // Routes the stack no longer wants: the stream management routes after
    // `api_gateway.stream_routes` was turned off.
    let wanted: Vec<(String, &str)> = routes.iter().map(|r| (r.path.clone(), r.http_method)).collect();
    for r in KINESIS_ROUTES.iter().filter(|r| !wanted.contains(&(r.path.to_string(), r.http_method))) {
        if resources.get(r.path).is_some_and(|res| res.1.contains(&r.http_method.to_string())) {
            changed = true;
            p.record(C, format!("{} {}", r.path, r.http_method), Action::Delete);
            if !p.dry_run() {
                delete_method(p, &api_id, &mut resources, r.path, r.http_method).await?;
            }
        }
    }
    let stage = p.config.api_gateway.stage.clone();
    let stage_exists = match p.clients.apigateway.get_stage().rest_api_id(&api_id).stage_name(&stage).send().await {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => false,
        Err(e) => return Err(ProvisionError::aws("GetStage", stage.clone())(e)),
    };
    if changed || !stage_exists {
        p.record(
            C,
            format!("stage {stage}"),
            if stage_exists { Action::Update("routes changed: redeploy".into()) } else { Action::Create },
        );
        if !p.dry_run() {
            deploy(p, &api_id).await?;
        }
    } else {
        p.record(C, format!("stage {stage}"), Action::Exists);
        set_invoke_url(p, &api_id);
    }
    usage(p, Some(&api_id)).await
}

/// The ingest unit on the client machine checks the header against the
/// secret, which it fetches from the sink bucket with the instance
/// profile: the secret stays out of the user-data, which EC2 shows to
/// anyone who may describe the instance. Written when missing or changed.
async fn share_secret_with_client(p: &mut Provisioner, secret: &str) -> Result<()> {
    let (bucket, key) = (p.names.sink_bucket.clone(), templates::config::Ec2Vars::gateway_secret_key());
    let resource = format!("s3 object s3://{bucket}/{key}");
    let current = match p.clients.s3.get_object().bucket(&bucket).key(&key).send().await {
        Ok(out) => out.body.collect().await.ok().map(|b| b.into_bytes()),
        Err(_) => None,
    };
    if current.as_deref() == Some(secret.as_bytes()) {
        p.record(C, resource, Action::Exists);
        return Ok(());
    }
    p.record(C, resource, if current.is_some() { Action::Update("the secret changed".into()) } else { Action::Create });
    if p.dry_run() {
        return Ok(());
    }
    aws_setup::s3::put_verified(&p.clients.s3, &bucket, &key, secret.as_bytes().to_vec(), "text/plain")
        .await
        .map_err(|e| ProvisionError::Failed { what: "storing the gateway secret for the client machine".into(), detail: e.to_string() })?;
    Ok(())
}

/// The per-deployment secret the HTTP proxy integration adds as a header:
/// read from its 0600 file, or made and written there on first apply. A
/// plan that would make one shows a placeholder instead.
fn gateway_secret(p: &mut Provisioner) -> Result<String> {
    let path = p.options.key_dir.join(&p.names.gateway_secret);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            p.found.gateway_secret_file = Some(path);
            return Ok(text.trim().to_string());
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(ProvisionError::Io { what: format!("reading {}", path.display()), source }),
    }
    if p.dry_run() {
        return Ok("<new secret>".into());
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(p, &path, &secret)?;
    p.found.gateway_secret_file = Some(path);
    Ok(secret)
}

/// Write `text` to a 0600 file at `path`, in place of an empty or unreadable
/// one left there (these values, unlike an EC2 key, can be had again).
fn write_private(p: &Provisioner, path: &std::path::Path, text: &str) -> Result<()> {
    super::network::remove_private(path)?;
    std::fs::create_dir_all(&p.options.key_dir)
        .map_err(|source| ProvisionError::Io { what: format!("creating {}", p.options.key_dir.display()), source })?;
    let mut file = super::network::open_private(path)?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| ProvisionError::Io { what: format!("writing {}", path.display()), source })
}

fn key_file(p: &Provisioner) -> PathBuf {
    p.options.key_dir.join(&p.names.api_key)
}

/// The usage plan (throttle, quota, the API's stage), the deployment's API
/// key in it, and the key's value in a 0600 file. Nothing when the API is
/// open (`api_gateway.auth = "none"`). `api_id` is `None` in the plan of an
/// API not made yet.
async fn usage(p: &mut Provisioner, api_id: Option<&str>) -> Result<()> {
    if p.config.api_gateway.auth != ApiAuth::ApiKey {
        return Ok(());
    }
    let gw = p.clients.apigateway.clone();
    let plan_name = p.names.usage_plan.clone();
    let stage = p.config.api_gateway.stage.clone();
    let vars = p.config.api_gateway.clone();
    let throttle = ThrottleSettings::builder().rate_limit(vars.throttle_rate_limit).burst_limit(vars.throttle_burst_limit).build();
    let quota = QuotaSettings::builder().limit(vars.quota_limit).period(QuotaPeriodType::from(vars.quota_period.as_str())).build();
    let (k, v) = p.stack_tag();

    let mut existing_plan = None;
    let mut pages = gw.get_usage_plans().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetUsagePlans", plan_name.clone()))?;
        if let Some(plan) = page.items().iter().find(|u| u.name() == Some(plan_name.as_str())) {
            existing_plan = Some(plan.clone());
            break;
        }
    }
    let label = format!("usage plan {plan_name}");
    let plan_id = match existing_plan {
        Some(plan) => {
            let mut ops = Vec::new();
            let replace = |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
            let t = plan.throttle();
            if t.map(|t| t.rate_limit()) != Some(vars.throttle_rate_limit) {
                ops.push(("throttle rate", replace("/throttle/rateLimit", vars.throttle_rate_limit.to_string())));
            }
            if t.map(|t| t.burst_limit()) != Some(vars.throttle_burst_limit) {
                ops.push(("throttle burst", replace("/throttle/burstLimit", vars.throttle_burst_limit.to_string())));
            }
            let q = plan.quota();
            if q.map(|q| q.limit()) != Some(vars.quota_limit) {
                ops.push(("quota", replace("/quota/limit", vars.quota_limit.to_string())));
            }
            if q.and_then(|q| q.period()).map(|p| p.as_str()) != Some(vars.quota_period.as_str()) {
                ops.push(("quota period", replace("/quota/period", vars.quota_period.clone())));
            }
            if let Some(api_id) = api_id
                && !plan.api_stages().iter().any(|s| s.api_id() == Some(api_id) && s.stage() == Some(stage.as_str()))
            {
                ops.push((
                    "api stage",
                    PatchOperation::builder().op(Op::Add).path("/apiStages").value(format!("{api_id}:{stage}")).build(),
                ));
            }
            if ops.is_empty() {
                p.record(C, label, Action::Exists);
            } else {
                let what: Vec<&str> = ops.iter().map(|(w, _)| *w).collect();
                p.record(C, label, Action::Update(what.join(", ")));
                if !p.dry_run() {
                    gw.update_usage_plan()
                        .usage_plan_id(plan.id().unwrap_or_default())
                        .set_patch_operations(Some(ops.into_iter().map(|(_, op)| op).collect()))
                        .send()
                        .await
                        .map_err(ProvisionError::aws("UpdateUsagePlan", plan_name.clone()))?;
                }
            }
            plan.id().map(str::to_string)
        }
        None => {
            p.record(C, label, Action::Create);
            match api_id {
                Some(api_id) if !p.dry_run() => {
                    let out = gw
                        .create_usage_plan()
                        .name(&plan_name)
                        .description(format!("Throttle and quota of pipeline {}", p.uid()))
                        .throttle(throttle)
                        .quota(quota)
                        .api_stages(ApiStage::builder().api_id(api_id).stage(&stage).build())
                        .tags(&k, &v)
                        .send()
                        .await
                        .map_err(ProvisionError::aws("CreateUsagePlan", plan_name.clone()))?;
                    out.id().map(str::to_string)
                }
                _ => None,
            }
        }
    };

    let key_name = p.names.api_key.clone();
    let path = key_file(p);
    let mut existing_key = None;
    let mut pages = gw.get_api_keys().name_query(&key_name).include_values(true).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetApiKeys", key_name.clone()))?;
        if let Some(key) = page.items().iter().find(|a| a.name() == Some(key_name.as_str())) {
            existing_key = Some(key.clone());
            break;
        }
    }
    let saved = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
    let label = format!("api key {key_name}");
    let key = match existing_key {
        Some(key) => {
            // Unlike an EC2 key pair, the value can be read again.
            p.record(C, label, if saved { Action::Exists } else { Action::Update("value not saved: written again".into()) });
            Some((key.id().unwrap_or_default().to_string(), key.value().unwrap_or_default().to_string()))
        }
        None => {
            p.record(C, label, Action::Create);
            if p.dry_run() {
                None
            } else {
                let out = gw
                    .create_api_key()
                    .name(&key_name)
                    .description(format!("Callers of pipeline {}", p.uid()))
                    .enabled(true)
                    .tags(&k, &v)
                    .send()
                    .await
                    .map_err(ProvisionError::aws("CreateApiKey", key_name.clone()))?;
                Some((out.id().unwrap_or_default().to_string(), out.value().unwrap_or_default().to_string()))
            }
        }
    };
    let Some((key_id, value)) = key else { return Ok(()) };
    if !saved && !p.dry_run() {
        write_private(p, &path, &value)?;
    }
    p.found.api_key_id = Some(key_id.clone());
    p.found.api_key_file = Some(path);
    let Some(plan_id) = plan_id else { return Ok(()) };
    p.found.usage_plan_id = Some(plan_id.clone());
    let keys = gw
        .get_usage_plan_keys()
        .usage_plan_id(&plan_id)
        .send()
        .await
        .map_err(ProvisionError::aws("GetUsagePlanKeys", plan_name.clone()))?;
    let label = format!("usage plan key {key_name}");
    if keys.items().iter().any(|k| k.id() == Some(key_id.as_str())) {
        p.record(C, label, Action::Exists);
    } else {
        p.record(C, label, Action::Create);
        if !p.dry_run() {
            gw.create_usage_plan_key()
                .usage_plan_id(&plan_id)
                .key_id(&key_id)
                .key_type("API_KEY")
                .send()
                .await
                .map_err(ProvisionError::aws("CreateUsagePlanKey", key_name.clone()))?;
        }
    }
    Ok(())
}

/// Why the deployed method's access differs from the wanted one, if it does.
async fn method_differs(p: &Provisioner, api_id: &str, resource_id: &str, r: &Route) -> Result<Option<String>> {
    let m = p
        .clients
        .apigateway
        .get_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(r.http_method)
        .send()
        .await
        .map_err(ProvisionError::aws("GetMethod", format!("{} {}", r.path, r.http_method)))?;
    if m.authorization_type() != Some(r.authorization) {
        return Ok(Some(format!("authorization {} -> {}", m.authorization_type().unwrap_or("none"), r.authorization)));
    }
    if m.api_key_required().unwrap_or(false) != r.api_key_required {
        return Ok(Some(if r.api_key_required { "API key not required yet".into() } else { "API key no longer required".into() }));
    }
    Ok(None)
}

async fn delete_method(
    p: &Provisioner,
    api_id: &str,
    resources: &mut HashMap<String, (String, Vec<String>)>,
    path: &str,
    http_method: &str,
) -> Result<()> {
    let Some((resource_id, methods)) = resources.get_mut(path) else { return Ok(()) };
    p.clients
        .apigateway
        .delete_method()
        .rest_api_id(api_id)
        .resource_id(resource_id.as_str())
        .http_method(http_method)
        .send()
        .await
        .map_err(ProvisionError::aws("DeleteMethod", format!("{path} {http_method}")))?;
    methods.retain(|m| m != http_method);
    Ok(())
}

/// Resources by path: (id, methods).
async fn resources(p: &Provisioner, api_id: &str) -> Result<HashMap<String, (String, Vec<String>)>> {
    let mut out = HashMap::new();
    let mut pages = p.clients.apigateway.get_resources().rest_api_id(api_id).limit(500).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetResources", api_id.to_string()))?;
        for r in page.items() {
            let methods = r.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            out.insert(r.path().unwrap_or_default().to_string(), (r.id().unwrap_or_default().to_string(), methods));
        }
    }
    Ok(out)
}

/// Why the deployed integration differs from the wanted one, if it does.
async fn integration_differs(p: &Provisioner, api_id: &str, resource_id: &str, r: &Route) -> Result<Option<String>> {
    let i =
        match p.clients.apigateway.get_integration().rest_api_id(api_id).resource_id(resource_id).http_method(r.http_method).send().await {
            Ok(i) => i,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(Some("no integration".into())),
            Err(e) => return Err(ProvisionError::aws("GetIntegration", format!("{} {}", r.path, r.http_method))(e)),
        };
    if i.r#type() != Some(&r.kind) {
        return Ok(Some(format!("integration type {:?}", i.r#type())));
    }
    if i.uri() != Some(r.uri.as_str()) {
        return Ok(Some(format!("target {} -> {}", i.uri().unwrap_or("none"), r.uri)));
    }
    if i.credentials() != r.credentials.as_deref() {
        return Ok(Some("integration role".into()));
    }
    let template = i.request_templates().and_then(|t| t.get("application/json")).map(String::as_str);
    if template != r.request_template {
        return Ok(Some("request mapping template".into()));
    }
    let deployed = i.request_parameters();
    // Named, never shown: one of them carries the gateway secret.
    if let Some((name, _)) = r.integration_parameters.iter().find(|(k, v)| deployed.and_then(|d| d.get(k)) != Some(v)) {
        return Ok(Some(format!("integration parameter {name}")));
    }
    Ok(None)
}

/// Create the resource path as needed, then the method, its integration
/// and (for AWS integrations) the 200 responses.
async fn put_route(p: &Provisioner, api_id: &str, resources: &mut HashMap<String, (String, Vec<String>)>, r: &Route) -> Result<()> {
    let gw = &p.clients.apigateway;
    let resource_id = ensure_path(p, api_id, resources, &r.path).await?;
    let label = || format!("{} {}", r.path, r.http_method);
    let methods = &resources.get(&r.path).expect("ensured").1;
    if !methods.contains(&r.http_method.to_string()) {
        let mut m = gw
            .put_method()
            .rest_api_id(api_id)
            .resource_id(&resource_id)
            .http_method(r.http_method)
            .authorization_type(r.authorization)
            .api_key_required(r.api_key_required);
        for param in &r.path_parameters {
            m = m.request_parameters(param, true);
        }
        m.send().await.map_err(ProvisionError::aws("PutMethod", label()))?;
        resources.get_mut(&r.path).expect("ensured").1.push(r.http_method.to_string());
    }
    let mut i = gw
        .put_integration()
        .rest_api_id(api_id)
        .resource_id(&resource_id)
        .http_method(r.http_method)
        .r#type(r.kind.clone())
        .integration_http_method(r.integration_http_method)
        .uri(&r.uri)
        .set_credentials(r.credentials.clone());
    for (k, v) in &r.integration_parameters {
        i = i.request_parameters(k, v);
    }
    if let Some(t) = r.request_template {
        i = i.request_templates("application/json", t).passthrough_behavior("WHEN_NO_TEMPLATES");
    }
    i.send().await.map_err(ProvisionError::aws("PutIntegration", label()))?;
    if r.kind == IntegrationType::Aws {
        // Non-proxy integrations return nothing unless a response is mapped.
        match gw
            .put_method_response()
            .rest_api_id(api_id)
            .resource_id(&resource_id)
            .http_method(r.http_method)
            .status_code("200")
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => {}
            Err(e) => return Err(ProvisionError::aws("PutMethodResponse", label())(e)),
        }
        gw.put_integration_response()
            .rest_api_id(api_id)
            .resource_id(&resource_id)
            .http_method(r.http_method)
            .status_code("200")
            .send()
            .await
            .map_err(ProvisionError::aws("PutIntegrationResponse", label()))?;
    }
    Ok(())
}

/// The id of the resource at `path`, creating missing segments.
async fn ensure_path(p: &Provisioner, api_id: &str, resources: &mut HashMap<String, (String, Vec<String>)>, path: &str) -> Result<String> {
    if let Some((id, _)) = resources.get(path) {
        return Ok(id.clone());
    }
    let (parent, part) = path.rsplit_once('/').expect("paths start with /");
    let parent = if parent.is_empty() { "/" } else { parent };
    let parent_id = Box::pin(ensure_path(p, api_id, resources, parent)).await?;
    let out = p
        .clients
        .apigateway
        .create_resource()
        .rest_api_id(api_id)
        .parent_id(parent_id)
        .path_part(part)
        .send()
        .await
        .map_err(ProvisionError::aws("CreateResource", path.to_string()))?;
    let id = out.id().unwrap_or_default().to_string();
    resources.insert(path.to_string(), (id.clone(), Vec::new()));
    Ok(id)
}

async fn deploy(p: &mut Provisioner, api_id: &str) -> Result<()> {
    p.clients
        .apigateway
        .create_deployment()
        .rest_api_id(api_id)
        .stage_name(&p.config.api_gateway.stage)
        .description(format!("cargo xtask provision ({})", p.uid()))
        .send()
        .await
        .map_err(ProvisionError::aws("CreateDeployment", api_id.to_string()))?;
    set_invoke_url(p, api_id);
    Ok(())
}

fn set_invoke_url(p: &mut Provisioner, api_id: &str) {
    p.found.api_id = Some(api_id.to_string());
    p.found.invoke_url = Some(format!("https://{api_id}.execute-api.{}.amazonaws.com/{}", p.region(), p.config.api_gateway.stage));
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let gw = &p.clients.apigateway;
    let ours = |tags: Option<&HashMap<String, String>>| tags.and_then(|t| t.get(STACK_TAG)).map(String::as_str) == Some(p.uid());
    // In delete order: the plan holds the stage and the key.
    let mut out = Vec::new();
    let mut pages = gw.get_usage_plans().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetUsagePlans", "(all)"))?;
        for plan in page.items().iter().filter(|u| ours(u.tags())) {
            out.push(Found {
                component: C,
                kind: "usage plan",
                id: plan.id().unwrap_or_default().to_string(),
                state: plan.name().map(str::to_string),
            });
        }
    }
    let mut pages = gw.get_api_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetApiKeys", "(all)"))?;
        for key in page.items().iter().filter(|k| ours(k.tags())) {
            // The id only: the value stays in its file.
            out.push(Found {
                component: C,
                kind: "api key",
                id: key.id().unwrap_or_default().to_string(),
                state: key.name().map(str::to_string),
            });
        }
    }
    let mut pages = gw.get_rest_apis().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetRestApis", "(all)"))?;
        for api in page.items().iter().filter(|a| ours(a.tags())) {
            out.push(Found {
                component: C,
                kind: "rest api",
                id: api.id().unwrap_or_default().to_string(),
                state: api.name().map(str::to_string),
            });
        }
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    let gw = p.clients.apigateway.clone();
    for f in found {
        match f.kind {
            "usage plan" => {
                // A plan still holding a stage cannot be deleted.
                let plan =
                    gw.get_usage_plan().usage_plan_id(&f.id).send().await.map_err(ProvisionError::aws("GetUsagePlan", f.id.clone()))?;
                let ops: Vec<PatchOperation> = plan
                    .api_stages()
                    .iter()
                    .map(|s| {
                        PatchOperation::builder()
                            .op(Op::Remove)
                            .path("/apiStages")
                            .value(format!("{}:{}", s.api_id().unwrap_or_default(), s.stage().unwrap_or_default()))
                            .build()
                    })
                    .collect();
                if !ops.is_empty() {
                    gw.update_usage_plan()
                        .usage_plan_id(&f.id)
                        .set_patch_operations(Some(ops))
                        .send()
                        .await
                        .map_err(ProvisionError::aws("UpdateUsagePlan", f.id.clone()))?;
                }
                gw.delete_usage_plan().usage_plan_id(&f.id).send().await.map_err(ProvisionError::aws("DeleteUsagePlan", f.id.clone()))?;
            }
            "api key" => {
                gw.delete_api_key().api_key(&f.id).send().await.map_err(ProvisionError::aws("DeleteApiKey", f.id.clone()))?;
                super::network::remove_private(&key_file(p))?;
            }
            _ => {
                gw.delete_rest_api().rest_api_id(&f.id).send().await.map_err(ProvisionError::aws("DeleteRestApi", f.id.clone()))?;
                // The secret guards nothing once the API is gone.
                super::network::remove_private(&p.options.key_dir.join(&p.names.gateway_secret))?;
            }
        }
    }
    Ok(())
}

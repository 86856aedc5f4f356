//! The REST API in front of both paths (seed section 6, SPEC 3.1-3.2):
//! `/{proxy+}` ANY as an HTTP proxy to the REST proxy on the client machine,
//! and the `/streams` routes as AWS integrations calling Kinesis with the
//! API Gateway role. Deployed to one stage; prints the invoke URL.

use std::collections::HashMap;

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType};
use templates::apigateway::KINESIS_ROUTES;

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::ApiGateway;

/// One method and its integration, as this stack wants it.
#[derive(Debug, Clone)]
struct Route {
    path: String,
    http_method: &'static str,
    kind: IntegrationType,
    integration_http_method: &'static str,
    uri: String,
    credentials: Option<String>,
    /// Method request path parameters (`method.request.path.proxy`).
    path_parameters: Vec<String>,
    integration_parameters: Vec<(String, String)>,
    request_template: Option<&'static str>,
}

fn routes(p: &Provisioner) -> (Vec<Route>, Option<String>) {
    let mut out = Vec::new();
    let mut skipped = None;
    // In a plan the instance may not exist yet; its name is known after apply.
    let planned = (p.dry_run() && !p.options.skip.contains(&Component::Client)).then(|| "<client public DNS>".to_string());
    match p.found.public_dns.clone().or(planned) {
        Some(dns) => out.push(Route {
            path: "/{proxy+}".into(),
            http_method: "ANY",
            kind: IntegrationType::HttpProxy,
            integration_http_method: "ANY",
            uri: format!("http://{dns}:{}/{{proxy}}", p.config.rest_proxy_port),
            credentials: None,
            path_parameters: vec!["method.request.path.proxy".into()],
            integration_parameters: vec![("integration.request.path.proxy".into(), "method.request.path.proxy".into())],
            request_template: None,
        }),
        None => skipped = Some("the client machine's public DNS is unknown (client skipped or not running)".into()),
    }
    let role = p.found.role_arns.get("kinesis").cloned();
    for r in KINESIS_ROUTES {
        out.push(Route {
            path: r.path.into(),
            http_method: r.http_method,
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
    let api_name = p.names.api.clone();
    let (routes, skipped) = routes(p);
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
                return Ok(());
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
            return Ok(());
        }
    };
    let mut resources = resources(p, &api_id).await?;
    let mut changed = false;
    for r in &routes {
        let label = format!("{} {}", r.path, r.http_method);
        let current = match resources.get(&r.path) {
            Some(res) if res.1.contains(&r.http_method.to_string()) => integration_differs(p, &api_id, &res.0, r).await?,
            _ => Some("missing".to_string()),
        };
        match current {
            None => p.record(C, label, Action::Exists),
            Some(why) => {
                changed = true;
                p.record(C, label, if why == "missing" { Action::Create } else { Action::Update(why) });
                if !p.dry_run() {
                    put_route(p, &api_id, &mut resources, r).await?;
                }
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
        let mut m = gw.put_method().rest_api_id(api_id).resource_id(&resource_id).http_method(r.http_method).authorization_type("NONE");
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
    let mut out = Vec::new();
    let mut pages = p.clients.apigateway.get_rest_apis().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProvisionError::aws("GetRestApis", "(all)"))?;
        for api in page.items() {
            if api.tags().and_then(|t| t.get(STACK_TAG)).map(String::as_str) == Some(p.uid()) {
                out.push(Found {
                    component: C,
                    kind: "rest api",
                    id: api.id().unwrap_or_default().to_string(),
                    state: api.name().map(str::to_string),
                });
            }
        }
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    for f in found {
        p.clients
            .apigateway
            .delete_rest_api()
            .rest_api_id(&f.id)
            .send()
            .await
            .map_err(ProvisionError::aws("DeleteRestApi", f.id.clone()))?;
    }
    Ok(())
}

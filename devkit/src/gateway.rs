//! A local stand-in for an API Gateway REST API's deployed stages with HTTP_PROXY integrations,
//! public or private.
//!
//! `GET /<stage>/<path>` is proxied to the integration URI of `GET /<path>` with every
//! `${stageVariables.NAME}` replaced by the stage's variable, as a deployed stage does. The
//! integrations are read from moto once (GetResources, GetIntegration); each stage's variables
//! are read from moto (GetStage) and kept for a short refresh interval, as a deployed stage picks
//! up an UpdateStage within moments. Host names resolve through [`LocalLoadBalancers`].
//!
//! A private integration (`connectionType: VPC_LINK`) sends the request to the network load
//! balancer its VPC link targets, whatever the URI's host, which becomes the `Host` header. Its
//! `connectionId` may be a stage variable (`${stageVariables.vpcLinkId}`). The link is read with
//! GetVpcLink (its `status` and `targetArns`) and kept for the same refresh interval; its load
//! balancer is found by ARN in [`LocalLoadBalancers`] ([`LocalLoadBalancers::name_arn`]). Moto
//! drops an integration's `connectionId` and answers every link `AVAILABLE`: give the gateway a
//! client pointed at the [`crate::FaultProxy`], which keeps the one and plays the other.
//!
//! Answers as API Gateway does: the target's status and body when it answers; `500
//! {"message": "Internal server error"}` when it cannot be reached (or a variable the URI or the
//! connection id needs is missing, or the VPC link is not `AVAILABLE` or does not exist); `504
//! {"message": "Endpoint request timed out"}` when it does not answer in time; `403
//! {"message":"Missing Authentication Token"}` for an unknown stage or path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigateway::types::{ConnectionType, VpcLinkStatus};
use http_body_util::BodyExt;
use hyper::{Method, Response, StatusCode};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{full, serve, Body, ServerHandle};
use crate::lbs::LocalLoadBalancers;
use crate::stages::rest_stage_variables;
use crate::DevkitError;

const INTERNAL: &str = r#"{"message": "Internal server error"}"#;
const TIMED_OUT: &str = r#"{"message": "Endpoint request timed out"}"#;
const MISSING: &str = r#"{"message":"Missing Authentication Token"}"#;

/// A stage's variables (`None`: no such stage) and when they were read.
type Cached = (Instant, Option<BTreeMap<String, String>>);

/// A VPC link's target load balancer ARN while the link is `AVAILABLE` (`None`: not available,
/// or no such link) and when it was read.
type CachedLink = (Instant, Option<String>);

/// A `GET` method's integration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    /// The integration URI, stage variables unresolved.
    uri: String,
    /// A private integration's `connectionId` (a VPC link id, or a stage variable).
    vpc_link: Option<String>,
}

struct Shared {
    client: aws_sdk_apigateway::Client,
    api_id: String,
    /// `GET` path (`/helloworld`) to its integration.
    routes: BTreeMap<String, Route>,
    lbs: LocalLoadBalancers,
    refresh: Duration,
    timeout: Duration,
    stages: Mutex<HashMap<String, Cached>>,
    links: Mutex<HashMap<String, CachedLink>>,
}

/// A running local gateway for one REST API.
pub struct Gateway {
    server: ServerHandle,
}

impl Gateway {
    /// Serve the REST API `api_id` as deployed, its stage variables refreshed every `refresh`.
    pub async fn start(
        client: aws_sdk_apigateway::Client,
        api_id: &str,
        lbs: LocalLoadBalancers,
        refresh: Duration,
    ) -> Result<Gateway, DevkitError> {
        let routes = integrations(&client, api_id).await?;
        let shared = Arc::new(Shared {
            client,
            api_id: api_id.to_string(),
            routes,
            lbs,
            refresh,
            timeout: Duration::from_secs(5),
            stages: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
        });
        let server = serve("gateway", move |req| {
            let shared = shared.clone();
            async move { Ok(shared.handle(req.method().clone(), req.uri().path()).await) }
        })
        .await?;
        Ok(Gateway { server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The invoke URL of a stage.
    pub fn stage_url(&self, stage: &str) -> String {
        format!("{}/{stage}", self.endpoint())
    }

    /// `GET path` (`/prod/helloworld`) as a client of the deployed API: the status and the body.
    pub async fn get(&self, path: &str) -> Result<(u16, bytes::Bytes), DevkitError> {
        crate::http::call(&self.endpoint(), Method::GET, path, "").await
    }
}

/// Every `GET` method with an HTTP_PROXY integration: path to integration.
async fn integrations(
    client: &aws_sdk_apigateway::Client,
    api_id: &str,
) -> Result<BTreeMap<String, Route>, DevkitError> {
    let mut routes = BTreeMap::new();
    for r in crate::seed::resources(client, api_id).await? {
        let (Some(id), Some(path)) = (r.id(), r.path()) else {
            continue;
        };
        if !r.resource_methods().is_some_and(|m| m.contains_key("GET")) {
            continue;
        }
        let integration = client
            .get_integration()
            .rest_api_id(api_id)
            .resource_id(id)
            .http_method("GET")
            .send()
            .await
            .map_err(|e| DevkitError::aws("GetIntegration", e))?;
        let vpc_link = match integration.connection_type() {
            Some(ConnectionType::VpcLink) => Some(integration.connection_id().unwrap_or_default()),
            _ => None,
        };
        if let Some(uri) = integration.uri() {
            let route = Route {
                uri: uri.to_string(),
                vpc_link: vpc_link.map(str::to_owned),
            };
            routes.insert(path.to_string(), route);
        }
    }
    Ok(routes)
}

fn answer(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_default()
}

/// The URI with every `${stageVariables.NAME}` replaced; `None` when a variable is missing.
pub fn substitute(uri: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = uri;
    while let Some(start) = rest.find("${stageVariables.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${stageVariables.".len()..];
        let end = after.find('}')?;
        out.push_str(vars.get(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Shared {
    async fn variables(&self, stage: &str) -> Option<BTreeMap<String, String>> {
        let mut stages = self.stages.lock().await;
        if let Some((at, vars)) = stages.get(stage) {
            if at.elapsed() < self.refresh {
                return vars.clone();
            }
        }
        let vars = match rest_stage_variables(&self.client, &self.api_id, stage).await {
            Ok(vars) => vars,
            // The control plane hiccuped: a deployed stage keeps serving what it had.
            Err(_) => stages.get(stage).and_then(|(_, v)| v.clone()),
        };
        stages.insert(stage.to_string(), (Instant::now(), vars.clone()));
        vars
    }

    /// The load balancer ARN the VPC link `id` targets while it is `AVAILABLE`.
    async fn link_target(&self, id: &str) -> Option<String> {
        let mut links = self.links.lock().await;
        if let Some((at, target)) = links.get(id) {
            if at.elapsed() < self.refresh {
                return target.clone();
            }
        }
        let target = match self.client.get_vpc_link().vpc_link_id(id).send().await {
            Ok(link) if link.status() == Some(&VpcLinkStatus::Available) => {
                link.target_arns().first().cloned()
            }
            Ok(_) => None,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                None
            }
            // The control plane hiccuped: a deployed stage keeps using what it had.
            Err(_) => links.get(id).and_then(|(_, t)| t.clone()),
        };
        links.insert(id.to_string(), (Instant::now(), target.clone()));
        target
    }

    async fn handle(&self, method: Method, path: &str) -> Response<Body> {
        let trimmed = path.trim_start_matches('/');
        let (stage, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let route = format!("/{rest}");
        let Some(route) = self.routes.get(&route).filter(|_| method == Method::GET) else {
            return answer(StatusCode::FORBIDDEN, MISSING);
        };
        let Some(vars) = self.variables(stage).await else {
            return answer(StatusCode::FORBIDDEN, MISSING);
        };
        let Some(target) = substitute(&route.uri, &vars) else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL);
        };
        let via = match &route.vpc_link {
            None => None,
            Some(connection_id) => {
                let Some(id) = substitute(connection_id, &vars) else {
                    return answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL);
                };
                let nlb = self.link_target(&id).await;
                match nlb.and_then(|arn| self.lbs.resolve_arn(&arn)) {
                    Some(addr) => Some(addr),
                    None => return answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
                }
            }
        };
        match tokio::time::timeout(self.timeout, self.forward(&target, via)).await {
            Ok(Some((status, body))) => answer(status, body),
            Ok(None) => answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
            Err(_) => answer(StatusCode::GATEWAY_TIMEOUT, TIMED_OUT),
        }
    }

    /// `GET target`, sent to `via` (a VPC link's load balancer) or else to the target's host;
    /// `None` when that cannot be resolved or reached.
    async fn forward(
        &self,
        target: &str,
        via: Option<SocketAddr>,
    ) -> Option<(StatusCode, bytes::Bytes)> {
        let rest = target.strip_prefix("http://")?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host = host_port.split(':').next().unwrap_or_default();
        let addr: SocketAddr = match via {
            Some(addr) => addr,
            None => self.lbs.resolve(host)?,
        };
        let req = hyper::Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(hyper::header::HOST, host_port)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = crate::http::send(&addr.to_string(), req).await.ok()?;
        let status = resp.status();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_variables_are_substituted() {
        let vars = BTreeMap::from([("helloworldElb".to_string(), "a.elb".to_string())]);
        assert_eq!(
            substitute("http://${stageVariables.helloworldElb}", &vars).as_deref(),
            Some("http://a.elb")
        );
        assert_eq!(substitute("http://${stageVariables.other}/x", &vars), None);
        assert_eq!(
            substitute("http://fixed", &vars).as_deref(),
            Some("http://fixed")
        );
    }
}

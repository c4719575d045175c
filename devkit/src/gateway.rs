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
//! A stage's canary (`canarySettings`, read with GetStage alongside its variables, through the
//! [`crate::FaultProxy`] which plays canaries moto lacks) serves `percentTraffic` percent of the
//! stage's requests with the stage's variables overridden by its `stageVariableOverrides`. API
//! Gateway picks the canary's requests at random; the stand-in picks them as [`CanarySplit`]
//! says: by default evenly, so that after `n` requests under a share `p` exactly
//! `floor(n * p / 100)` went to the canary (at 10%, the 10th, 20th, ... request). The canary's
//! deployment is not played: both sides serve the integrations read at the start.
//! [`Gateway::traffic`] counts each stage's requests, those the canary served and the 5XX answers
//! of both.
//!
//! Answers as API Gateway does: the target's status and body when it answers; `500
//! {"message": "Internal server error"}` when it cannot be reached (or a variable the URI or the
//! connection id needs is missing, or the VPC link is not `AVAILABLE` or does not exist); `504
//! {"message": "Endpoint request timed out"}` when it does not answer in time; `403
//! {"message":"Missing Authentication Token"}` for an unknown stage or path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use aws_sdk_apigateway::types::{ConnectionType, VpcLinkStatus};
use http_body_util::BodyExt;
use hyper::{Method, Response, StatusCode};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{full, serve, Body, ServerHandle};
use crate::lbs::LocalLoadBalancers;
use crate::DevkitError;

mod split;
use split::Split;
pub use split::{even_pick, CanarySplit, StageTraffic};

const INTERNAL: &str = r#"{"message": "Internal server error"}"#;
const TIMED_OUT: &str = r#"{"message": "Endpoint request timed out"}"#;
const MISSING: &str = r#"{"message":"Missing Authentication Token"}"#;

/// A stage's variables and canary (`None`: no such stage) and when they were read.
type Cached = (Instant, Option<StageView>);

/// What a deployed stage serves with: its variables and its canary.
#[derive(Debug, Clone, PartialEq)]
struct StageView {
    variables: BTreeMap<String, String>,
    /// `percentTraffic` and `stageVariableOverrides`, while a canary is enabled.
    canary: Option<(f64, BTreeMap<String, String>)>,
}

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
    split: SyncMutex<CanarySplit>,
    splits: SyncMutex<HashMap<String, Split>>,
    traffic: SyncMutex<HashMap<String, StageTraffic>>,
}

/// A running local gateway for one REST API.
pub struct Gateway {
    server: ServerHandle,
    shared: Arc<Shared>,
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
            split: SyncMutex::new(CanarySplit::default()),
            splits: SyncMutex::new(HashMap::new()),
            traffic: SyncMutex::new(HashMap::new()),
        });
        let handler = shared.clone();
        let server = serve("gateway", move |req| {
            let shared = handler.clone();
            async move { Ok(shared.handle(req.method().clone(), req.uri().path()).await) }
        })
        .await?;
        Ok(Gateway { server, shared })
    }

    /// Picks canary requests as `split` says from now on (every stage's count restarts).
    pub fn set_canary_split(&self, split: CanarySplit) {
        *lock(&self.shared.split) = split;
        lock(&self.shared.splits).clear();
    }

    /// The requests the stage `stage` served so far.
    pub fn traffic(&self, stage: &str) -> StageTraffic {
        lock(&self.shared.traffic)
            .get(stage)
            .copied()
            .unwrap_or_default()
    }

    /// The requests of the stage `stage` that its canary served.
    pub fn canary_requests(&self, stage: &str) -> u64 {
        self.traffic(stage).canary
    }

    /// Forgets the counts of every stage.
    pub fn reset_traffic(&self) {
        lock(&self.shared.traffic).clear();
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

fn lock<T>(mutex: &SyncMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stage as GetStage answers it (`None`: no such stage).
async fn read_stage(
    client: &aws_sdk_apigateway::Client,
    api_id: &str,
    stage: &str,
) -> Result<Option<StageView>, DevkitError> {
    match client
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await
    {
        Ok(s) => Ok(Some(StageView {
            variables: s
                .variables()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            canary: s.canary_settings().map(|c| {
                let overrides = c.stage_variable_overrides().cloned().unwrap_or_default();
                (c.percent_traffic(), overrides.into_iter().collect())
            }),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(DevkitError::aws("GetStage", e)),
    }
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
    async fn view(&self, stage: &str) -> Option<StageView> {
        let mut stages = self.stages.lock().await;
        if let Some((at, vars)) = stages.get(stage) {
            if at.elapsed() < self.refresh {
                return vars.clone();
            }
        }
        let vars = match read_stage(&self.client, &self.api_id, stage).await {
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

    /// Whether the stage's next request goes to its canary serving `percent`.
    fn pick_canary(&self, stage: &str, percent: f64) -> bool {
        let mode = *lock(&self.split);
        let mut splits = lock(&self.splits);
        splits
            .entry(stage.to_string())
            .or_insert_with(|| Split::new(mode, percent))
            .pick(mode, percent)
    }

    fn count(&self, stage: &str, canary: bool, status: StatusCode) {
        let mut traffic = lock(&self.traffic);
        let t = traffic.entry(stage.to_string()).or_default();
        let failed = u64::from(status.is_server_error());
        t.requests += 1;
        t.failed += failed;
        if canary {
            t.canary += 1;
            t.canary_failed += failed;
        }
    }

    async fn handle(&self, method: Method, path: &str) -> Response<Body> {
        let trimmed = path.trim_start_matches('/');
        let (stage, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let route = format!("/{rest}");
        let Some(route) = self.routes.get(&route).filter(|_| method == Method::GET) else {
            return answer(StatusCode::FORBIDDEN, MISSING);
        };
        let Some(view) = self.view(stage).await else {
            return answer(StatusCode::FORBIDDEN, MISSING);
        };
        let mut vars = view.variables;
        let canary = match view.canary {
            Some((percent, overrides)) if self.pick_canary(stage, percent) => {
                vars.extend(overrides);
                true
            }
            _ => false,
        };
        let response = self.serve(route, &vars).await;
        self.count(stage, canary, response.status());
        response
    }

    /// Serves `route` with the stage variables `vars`.
    async fn serve(&self, route: &Route, vars: &BTreeMap<String, String>) -> Response<Body> {
        let Some(target) = substitute(&route.uri, vars) else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL);
        };
        let via = match &route.vpc_link {
            None => None,
            Some(connection_id) => {
                let Some(id) = substitute(connection_id, vars) else {
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

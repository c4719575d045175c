//! An HTTP proxy between the AWS SDK and moto that counts calls and injects faults.
//!
//! Point the SDK at [`FaultProxy::endpoint`] (as `AWS_ENDPOINT_URL` or `endpoint_url`) and the
//! proxy at moto. Each request is classified into `(service, operation)`:
//! - the service is the SigV4 credential scope's service
//!   (`Credential=AKID/20260101/us-east-1/apigateway/aws4_request` gives `apigateway`),
//!   or `unsigned` without one;
//! - the operation is the part after the last `.` of `X-Amz-Target` (JSON protocols, e.g.
//!   `DynamoDB_20120810.Query` gives `Query`), else the `Action` of a form body or query string
//!   (query protocols: CloudFormation, Elastic Load Balancing), else the operation of an
//!   RPCv2 path (`/service/<S>/operation/<Op>`), else `"<METHOD> <path>"` (REST protocols such
//!   as API Gateway, ids left as they are).
//!
//! Every request is recorded with its body and the status it was answered (see
//! [`FaultProxy::counts`], [`FaultProxy::records`], [`FaultProxy::max_rate_per_sec`]).
//! [`Rule`]s pick requests to fail with a [`Fault`]; the draws against a rule's probability use
//! a seeded PRNG, so a run is reproducible. Anything not faulted is forwarded unchanged
//! (method, path and query, headers including Host, body) and the answer is streamed back.
//!
//! CloudFormation's `DescribeStackResource` is always answered by the proxy, from
//! CloudFormation's view of custom resources in [`crate::stack_resources`], which follows the
//! requests the tests send and their answers (moto's stacks cannot hold custom resources).
//!
//! Two modes play API Gateway where moto does not:
//! - [`FaultProxy::enforce_apigateway_quotas`]: the account's quotas as API Gateway answers
//!   them, 10 requests per second with a burst of 40 over every API Gateway call (REST and HTTP
//!   APIs alike), and `CreateDeployment` at one call every 5 seconds; a call over quota is
//!   answered 429 `TooManyRequestsException` without being forwarded and consumes no quota.
//! - [`FaultProxy::play_http_api_stages`]: HTTP API (v2) stages as the service documents them.
//!   `CreateStage` of an existing stage answers 409 `ConflictException` (moto would silently
//!   replace it); `UpdateStage` (`PATCH /v2/apis/{id}/stages/{name}`, which moto lacks) merges
//!   the given `stageVariables` into the stage's (a variable given `""` is removed) by reading
//!   the stage from moto and re-creating it there, and answers the stage as UpdateStage does.
//!
//! Always played: REST API stages' canaries ([`canaries`]: `canarySettings` on `UpdateStage`,
//! `GetStage`, `GetStages`, `CreateDeployment`, `CreateStage`), VPC link states and private
//! integrations' `connectionId` ([`vpc_links`]); CloudWatch's RPCv2 CBOR protocol, which the
//! Rust SDK speaks and moto does not, through moto's JSON protocol (`fault_proxy/cloudwatch.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{header, Request, Response, StatusCode};

use crate::http::{self, Body, DropConnection, ServerHandle};
use crate::DevkitError;

pub mod canaries;
mod cloudwatch;
pub mod vpc_links;
pub use canaries::Canary;
pub use vpc_links::{AVAILABLE_MESSAGE, PENDING_MESSAGE};

/// The PRNG seed [`FaultProxy::start`] uses.
pub const DEFAULT_SEED: u64 = 0x5747_a9e1;

/// What to do to a request picked by a [`Rule`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Throttle without forwarding. REST and JSON protocols get a 429 with
    /// `x-amzn-ErrorType: TooManyRequestsException` and `{"message":"Too Many Requests"}`
    /// (plus `Retry-After` when set); query protocols get a 400 XML `ErrorResponse` with code
    /// `Throttling`.
    Throttle {
        /// Seconds for the `Retry-After` header.
        retry_after: Option<u32>,
    },
    /// Answer this status without forwarding, with an error body in the request's protocol
    /// (`InternalFailure` for 500, `ServiceUnavailable` for 503).
    Status(u16),
    /// Close the connection without answering.
    Reset,
    /// Wait, then forward.
    Delay(Duration),
    /// Wait until the [`Gate`] opens (at most [`HOLD_LIMIT`]), then forward: the test decides
    /// what runs while the request is held.
    Hold(Gate),
}

/// The longest a [`Fault::Hold`] holds a request whose gate never opens.
pub const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// Where [`Fault::Hold`] requests wait. Clones share the gate; it opens once, for every
/// request held and every later one.
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateState>);

#[derive(Debug)]
struct GateState {
    open: tokio::sync::watch::Sender<bool>,
    held: tokio::sync::watch::Sender<usize>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate(Arc::new(GateState {
            open: tokio::sync::watch::Sender::new(false),
            held: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Waits until `n` requests have arrived at the gate (held, or let through since); false
    /// after `timeout`.
    pub async fn held(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.0.held.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|held| *held >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// How many requests have arrived at the gate.
    pub fn arrived(&self) -> usize {
        *self.0.held.borrow()
    }

    /// Lets every held request through, and every later one.
    pub fn open(&self) {
        self.0.open.send_replace(true);
    }

    async fn pass(&self) {
        self.0.held.send_modify(|held| *held += 1);
        let mut rx = self.0.open.subscribe();
        let _ = tokio::time::timeout(HOLD_LIMIT, rx.wait_for(|open| *open)).await;
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new()
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Which requests get a fault, how often and how many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Only requests to this service (as classified), or any when `None`.
    pub service: Option<String>,
    /// Only operations whose name contains this, or any when `None`.
    pub operation_contains: Option<String>,
    /// Only requests whose body contains this (as sent: a query body is form-encoded), or any
    /// when `None`.
    pub body_contains: Option<String>,
    /// The fault to inject.
    pub fault: Fault,
    /// Chance (0 to 1) that a matching request gets the fault.
    pub probability: f64,
    /// Apply at most this many more times, or without limit when `None`.
    pub remaining: Option<u64>,
}

impl Rule {
    /// A rule applying `fault` to every request, always, without limit.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            service: None,
            operation_contains: None,
            body_contains: None,
            fault,
            probability: 1.0,
            remaining: None,
        }
    }

    /// Restricts the rule to one service.
    pub fn service(mut self, service: impl Into<String>) -> Rule {
        self.service = Some(service.into());
        self
    }

    /// Restricts the rule to operations whose name contains `fragment`.
    pub fn operation(mut self, fragment: impl Into<String>) -> Rule {
        self.operation_contains = Some(fragment.into());
        self
    }

    /// Restricts the rule to requests whose body contains `fragment` (a role or stack name).
    pub fn body(mut self, fragment: impl Into<String>) -> Rule {
        self.body_contains = Some(fragment.into());
        self
    }

    /// Sets the chance that a matching request gets the fault.
    pub fn probability(mut self, probability: f64) -> Rule {
        self.probability = probability;
        self
    }

    /// Applies the rule at most `n` times.
    pub fn times(mut self, n: u64) -> Rule {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, service: &str, operation: &str, body: &[u8]) -> bool {
        self.remaining != Some(0)
            && self.service.as_deref().is_none_or(|s| s == service)
            && self
                .operation_contains
                .as_deref()
                .is_none_or(|fragment| operation.contains(fragment))
            && self.body_contains.as_deref().is_none_or(|fragment| {
                body.windows(fragment.len().max(1))
                    .any(|w| w == fragment.as_bytes())
            })
    }
}

/// One request seen by the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The classified service.
    pub service: String,
    /// The classified operation.
    pub operation: String,
    /// When the request arrived.
    pub at: Instant,
    /// The fault injected, if any (a throttle answered by the quotas included).
    pub fault: Option<Fault>,
    /// The request body.
    pub body: Bytes,
    /// The status the proxy answered, once the answer has started (`None` for a reset
    /// connection or an answer still pending).
    pub status: Option<u16>,
    /// Whether the account quotas of [`FaultProxy::enforce_apigateway_quotas`] throttled it.
    pub over_quota: bool,
    /// When the proxy's answer started (`None` while pending or for a reset connection).
    pub answered_at: Option<Instant>,
    /// The request's SigV4 scope: who signed it and for which region (`None` unsigned).
    pub signer: Option<Signer>,
    /// The request's method and path with its query string, as sent (percent-encoding kept).
    pub target: String,
    seq: u64,
}

/// Who signed a request and for which region, from its SigV4 `Credential=` scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The access key id: an assumed role's temporary key differs from the caller's own.
    pub access_key: String,
    /// The region the request was signed for.
    pub region: String,
}

/// The signer of an `Authorization` header value (`Credential=AKID/DATE/REGION/SERVICE/...`).
pub fn signer_from_authorization(value: &str) -> Option<Signer> {
    let credential = value.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    match scope.split('/').collect::<Vec<_>>().as_slice() {
        [key, _, region, _, "aws4_request"] => Some(Signer {
            access_key: (*key).to_string(),
            region: (*region).to_string(),
        }),
        _ => None,
    }
}

impl Record {
    /// The request body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` held.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + gained).min(self.burst);
        self.at = now;
    }
}

/// API Gateway's account quotas, as [`FaultProxy::enforce_apigateway_quotas`] plays them.
#[derive(Debug, Clone)]
struct Quotas {
    account: Bucket,
    deployments: Bucket,
}

/// API Gateway's default account quota: requests per second.
pub const APIGATEWAY_RATE: f64 = 10.0;
/// API Gateway's default account quota: burst.
pub const APIGATEWAY_BURST: f64 = 40.0;
/// API Gateway's `CreateDeployment` quota: one call every 5 seconds.
pub const DEPLOYMENT_INTERVAL: Duration = Duration::from_secs(5);

impl Quotas {
    fn new() -> Quotas {
        Quotas {
            account: Bucket::new(APIGATEWAY_RATE, APIGATEWAY_BURST),
            deployments: Bucket::new(1.0 / DEPLOYMENT_INTERVAL.as_secs_f64(), 1.0),
        }
    }

    /// Whether the call is within quota; a call within quota takes its tokens.
    fn admit(&mut self, operation: &str, now: Instant) -> bool {
        self.account.refill(now);
        self.deployments.refill(now);
        let deployment = is_create_deployment(operation);
        if self.account.tokens < 1.0 || (deployment && self.deployments.tokens < 1.0) {
            return false;
        }
        self.account.tokens -= 1.0;
        if deployment {
            self.deployments.tokens -= 1.0;
        }
        true
    }
}

/// `POST /restapis/{id}/deployments` (REST) or `POST /v2/apis/{id}/deployments` (HTTP).
fn is_create_deployment(operation: &str) -> bool {
    operation.starts_with("POST /") && operation.ends_with("/deployments")
}

#[derive(Debug)]
struct State {
    records: Vec<Record>,
    rules: Vec<Rule>,
    rng: fastrand::Rng,
    quotas: Option<Quotas>,
    http_api_stages: bool,
    /// APIs whose tags this proxy answers in place of moto's, by API id.
    api_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// VPC links answered in place of moto's `AVAILABLE`, by link id.
    vpc_links: BTreeMap<String, vpc_links::Play>,
    /// REST integrations' `connectionId`s (which moto drops), by `api/resource/METHOD`.
    connection_ids: BTreeMap<String, String>,
    /// REST API stages' canaries (which moto lacks), by `(api, stage)`.
    canaries: BTreeMap<(String, String), canaries::Canary>,
    seq: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    upstream: String,
    /// HTTP API stage writes, one at a time: API Gateway checks and creates a stage atomically,
    /// the read-then-write played here must not interleave.
    http_stage_writes: tokio::sync::Mutex<()>,
    /// Writes of REST stages' canaries, one at a time: each reads the stage, then writes it.
    canary_writes: tokio::sync::Mutex<()>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A counting, fault-injecting HTTP proxy in front of one upstream endpoint.
#[derive(Debug)]
pub struct FaultProxy {
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) with [`DEFAULT_SEED`].
    pub async fn start(upstream: &str) -> Result<FaultProxy, DevkitError> {
        Self::start_with_seed(upstream, DEFAULT_SEED).await
    }

    /// Starts a proxy to `upstream` whose probability draws use `seed`.
    pub async fn start_with_seed(upstream: &str, seed: u64) -> Result<FaultProxy, DevkitError> {
        let authority = http::authority_of(upstream)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                records: Vec::new(),
                rules: Vec::new(),
                rng: fastrand::Rng::with_seed(seed),
                quotas: None,
                http_api_stages: false,
                api_tags: BTreeMap::new(),
                vpc_links: BTreeMap::new(),
                connection_ids: BTreeMap::new(),
                canaries: BTreeMap::new(),
                seq: 0,
            }),
            upstream: authority,
            http_stage_writes: tokio::sync::Mutex::new(()),
            canary_writes: tokio::sync::Mutex::new(()),
        });
        let handler_shared = Arc::clone(&shared);
        let server = http::serve("fault proxy", move |req| {
            let shared = Arc::clone(&handler_shared);
            async move { handle(&shared, req).await }
        })
        .await?;
        Ok(FaultProxy { server, shared })
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Adds a rule; rules are tried in the order they were added, the first that fires wins.
    pub fn add_rule(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.lock().rules.clear();
    }

    /// The rules with their remaining counts.
    pub fn rules(&self) -> Vec<Rule> {
        self.lock().rules.clone()
    }

    /// From now on, `GetRestApi` (`GET /restapis/{id}`) and `GetApi` (`GET /v2/apis/{id}`) of
    /// `api_id` answer moto's API with these tags (moto cannot change an API's tags after its
    /// creation; an operator can, with `TagResource` and `UntagResource`).
    pub fn set_api_tags(&self, api_id: &str, tags: &[(&str, &str)]) {
        self.lock().api_tags.insert(
            api_id.to_string(),
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// Enforces API Gateway's account quotas from now on (see the module docs), with full
    /// buckets.
    pub fn enforce_apigateway_quotas(&self) {
        self.lock().quotas = Some(Quotas::new());
    }

    /// Stops enforcing the quotas (what they throttled stays recorded).
    pub fn lift_apigateway_quotas(&self) {
        self.lock().quotas = None;
    }

    /// Plays HTTP API (v2) `CreateStage` conflicts and `UpdateStage` in front of moto from now
    /// on (see the module docs).
    pub fn play_http_api_stages(&self) {
        self.lock().http_api_stages = true;
    }

    /// Requests the account quotas answered 429.
    pub fn over_quota(&self) -> u64 {
        self.lock().records.iter().filter(|r| r.over_quota).count() as u64
    }

    /// Restarts the PRNG from `seed`.
    pub fn set_seed(&self, seed: u64) {
        self.lock().rng = fastrand::Rng::with_seed(seed);
    }

    /// Requests per `(service, operation)`, faulted ones included.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = BTreeMap::new();
        for record in &self.lock().records {
            *counts
                .entry((record.service.clone(), record.operation.clone()))
                .or_insert(0) += 1;
        }
        counts
    }

    /// Requests to `service` and `operation` (exact names).
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        self.lock()
            .records
            .iter()
            .filter(|r| r.service == service && r.operation == operation)
            .count() as u64
    }

    /// Requests to API Gateway (REST operations, `"<METHOD> <path>"`) made with `method` on a
    /// path ending in `suffix` that were answered `status`.
    pub fn answered(&self, method: &str, suffix: &str, status: u16) -> usize {
        let prefix = format!("{method} ");
        self.lock()
            .records
            .iter()
            .filter(|r| r.service == "apigateway" && r.status == Some(status))
            .filter(|r| r.operation.starts_with(&prefix) && r.operation.ends_with(suffix))
            .count()
    }

    /// All requests since the last reset.
    pub fn total(&self) -> u64 {
        self.lock().records.len() as u64
    }

    /// Requests that got a fault.
    pub fn injected(&self) -> u64 {
        self.lock()
            .records
            .iter()
            .filter(|r| r.fault.is_some())
            .count() as u64
    }

    /// Every request since the last reset, in arrival order.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// How many calls arrived before `until`, and the longest chain among them of calls each
    /// made after the one before it was answered: the round trips in sequence (calls made at
    /// once count as one).
    pub fn round_trips_before(&self, until: Instant) -> (usize, usize) {
        let mut calls: Vec<Record> = self.records();
        calls.retain(|r| r.at < until);
        calls.sort_by_key(|r| r.at);
        let mut depth = vec![1usize; calls.len()];
        for i in 0..calls.len() {
            for j in 0..i {
                if calls[j].answered_at.is_some_and(|a| a <= calls[i].at) {
                    depth[i] = depth[i].max(depth[j] + 1);
                }
            }
        }
        (calls.len(), depth.into_iter().max().unwrap_or(0))
    }

    /// Forgets every recorded request (counts and rate observations).
    pub fn reset_counts(&self) {
        self.lock().records.clear();
    }

    /// The largest number of requests to `service` within any one-second window.
    pub fn max_rate_per_sec(&self, service: &str) -> u64 {
        let times: Vec<Instant> = self
            .lock()
            .records
            .iter()
            .filter(|r| r.service == service)
            .map(|r| r.at)
            .collect();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The wire protocol family of a request, which decides the shape of an injected error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Query,
    Rest,
}

/// Classifies a request into `(service, operation)`.
pub fn classify(parts: &Parts, body: &[u8]) -> (String, String) {
    let (service, operation, _) = classify_with_protocol(parts, body);
    (service, operation)
}

fn classify_with_protocol(parts: &Parts, body: &[u8]) -> (String, String, Protocol) {
    let service = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(service_from_authorization)
        .unwrap_or_else(|| "unsigned".to_string());
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        return (service, operation, Protocol::Json);
    }
    let form_action = std::str::from_utf8(body).ok().and_then(form_action);
    let query_action = parts.uri.query().and_then(form_action_str);
    if let Some(action) = form_action.or(query_action) {
        return (service, action, Protocol::Query);
    }
    let path = parts.uri.path();
    let segments: Vec<&str> = path.split('/').collect();
    if let ["", "service", _, "operation", op] = segments.as_slice() {
        return (service, (*op).to_string(), Protocol::Json);
    }
    (
        service,
        format!("{} {}", parts.method, path),
        Protocol::Rest,
    )
}

fn form_action_str(text: &str) -> Option<String> {
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "Action" && !value.is_empty()).then(|| value.to_string())
    })
}

fn form_action(text: &str) -> Option<String> {
    form_action_str(text.trim())
}

/// The service of a SigV4 `Authorization` header's credential scope.
pub fn service_from_authorization(value: &str) -> Option<String> {
    let credential = value.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, _, service, "aws4_request"] if !service.is_empty() => Some((*service).to_string()),
        _ => None,
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let (service, operation, protocol) = classify_with_protocol(&parts, &body);
    let signer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signer_from_authorization);
    let target = format!(
        "{} {}",
        parts.method,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let (seq, fault, over_quota, http_api_stages) = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            rules,
            rng,
            records,
            quotas,
            http_api_stages,
            seq,
            ..
        } = &mut *state;
        let now = Instant::now();
        let mut chosen = None;
        for rule in rules.iter_mut() {
            if !rule.matches(&service, &operation, &body) {
                continue;
            }
            if rng.f64() < rule.probability {
                if let Some(remaining) = rule.remaining.as_mut() {
                    *remaining -= 1;
                }
                chosen = Some(rule.fault.clone());
                break;
            }
        }
        let mut over_quota = false;
        let faulted_before = matches!(
            chosen,
            Some(Fault::Throttle { .. } | Fault::Status(_) | Fault::Reset)
        );
        if let (Some(quotas), false) = (quotas.as_mut(), faulted_before) {
            if service == "apigateway" && !quotas.admit(&operation, now) {
                over_quota = true;
                chosen = Some(Fault::Throttle { retry_after: None });
            }
        }
        *seq += 1;
        records.push(Record {
            service,
            operation: operation.clone(),
            at: now,
            fault: chosen.clone(),
            body: body.clone(),
            status: None,
            over_quota,
            answered_at: None,
            signer,
            target,
            seq: *seq,
        });
        (*seq, chosen, over_quota, *http_api_stages)
    };
    let _ = over_quota;
    let answer = match fault {
        None => Ok(dispatch(shared, parts, body, http_api_stages).await),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            Ok(dispatch(shared, parts, body, http_api_stages).await)
        }
        Some(Fault::Hold(gate)) => {
            gate.pass().await;
            Ok(dispatch(shared, parts, body, http_api_stages).await)
        }
        Some(Fault::Reset) => Err(DropConnection),
        Some(Fault::Throttle { retry_after }) => Ok(throttle(protocol, retry_after)),
        Some(Fault::Status(status)) => Ok(server_error(protocol, status)),
    };
    if let Ok(response) = &answer {
        let status = response.status().as_u16();
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(record) = state.records.iter_mut().rev().find(|r| r.seq == seq) {
            record.status = Some(status);
            record.answered_at = Some(Instant::now());
        }
    }
    answer
}

/// Forwards the request, or plays the HTTP API stage calls moto lacks.
async fn dispatch(
    shared: &Shared,
    parts: Parts,
    body: Bytes,
    http_api_stages: bool,
) -> Response<Body> {
    if let Some(answer) = describe_stack_resource(&parts, &body) {
        return answer;
    }
    if let Some(answer) = api_with_tags(shared, &parts).await {
        return answer;
    }
    if let Some(answer) = vpc_links::play(shared, &parts, &body).await {
        return answer;
    }
    if let Some(answer) = canaries::play(shared, &parts, &body).await {
        return answer;
    }
    if let Some(answer) = cloudwatch::play(shared, &parts, &body).await {
        return answer;
    }
    if http_api_stages {
        let path = parts.uri.path().to_string();
        let segments: Vec<&str> = path.split('/').collect();
        match (&parts.method, segments.as_slice()) {
            (&hyper::Method::POST, ["", "v2", "apis", api, "stages"]) => {
                return http_api::create_stage(shared, &parts, body, api).await;
            }
            (&hyper::Method::PATCH, ["", "v2", "apis", api, "stages", stage]) => {
                return http_api::update_stage(shared, &parts, body, api, stage).await;
            }
            _ => {}
        }
    }
    forward(shared, parts, body).await
}

/// `GetRestApi` / `GetApi` of an API whose tags were set with [`FaultProxy::set_api_tags`].
async fn api_with_tags(shared: &Shared, parts: &Parts) -> Option<Response<Body>> {
    if parts.method != hyper::Method::GET {
        return None;
    }
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    let api = match segments.as_slice() {
        ["", "restapis", api] | ["", "v2", "apis", api] => (*api).to_string(),
        _ => return None,
    };
    let tags = {
        let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.api_tags.get(&api).cloned()?
    };
    let (status, body) =
        match http_api::exchange(shared, parts, parts.method.clone(), &path, Bytes::new()).await {
            Ok(answer) => answer,
            Err(e) => return Some(server_error_text(&e)),
        };
    if status != 200 {
        return Some(http_api::answer(status, body));
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("tags".into(), serde_json::json!(tags));
    }
    Some(http_api::answer(200, Bytes::from(doc.to_string())))
}

fn server_error_text(message: &str) -> Response<Body> {
    response(
        502,
        &[("content-type", "text/plain".to_string())],
        message.to_string(),
    )
}

/// CloudFormation's `DescribeStackResource`, answered from CloudFormation's view of custom
/// resources ([`crate::stack_resources`]): moto's stacks cannot hold custom resources.
fn describe_stack_resource(parts: &Parts, body: &[u8]) -> Option<Response<Body>> {
    let (service, operation, _) = classify_with_protocol(parts, body);
    if service != "cloudformation" || operation != "DescribeStackResource" {
        return None;
    }
    let text = std::str::from_utf8(body).unwrap_or_default();
    let form = if text.trim().is_empty() {
        parts.uri.query().unwrap_or_default()
    } else {
        text
    };
    let stack = crate::stack_resources::form_value(form, "StackName").unwrap_or_default();
    let logical = crate::stack_resources::form_value(form, "LogicalResourceId").unwrap_or_default();
    Some(match crate::stack_resources::describe(&stack, &logical) {
        Ok(declared) => response(
            200,
            &[("content-type", "text/xml".to_string())],
            crate::stack_resources::describe_xml(&declared),
        ),
        Err(message) => query_error(
            400,
            "Sender",
            "ValidationError",
            &crate::stack_resources::xml_escape(&message),
        ),
    })
}

async fn forward(shared: &Shared, parts: Parts, body: Bytes) -> Response<Body> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query)
        .version(hyper::Version::HTTP_11);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let request = match builder.body(Full::new(body)) {
        Ok(request) => request,
        Err(e) => return bad_gateway(&format!("cannot rebuild the request: {e}")),
    };
    match http::send(&shared.upstream, request).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(e) => bad_gateway(&crate::error::error_chain(&e)),
    }
}

fn bad_gateway(message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": format!("fault proxy: {message}") });
    let mut response = Response::new(http::full(body.to_string()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

fn response(status: u16, headers: &[(&str, String)], body: String) -> Response<Body> {
    let mut response = Response::new(http::full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn query_error(status: u16, kind: &str, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>00000000-0000-0000-0000-00000fa17000</RequestId></ErrorResponse>"
    );
    response(
        status,
        &[
            ("content-type", "text/xml".to_string()),
            (
                "x-amzn-requestid",
                "00000000-0000-0000-0000-00000fa17000".to_string(),
            ),
        ],
        body,
    )
}

fn json_error(
    protocol: Protocol,
    status: u16,
    code: &str,
    message: &str,
    extra: &[(&str, String)],
) -> Response<Body> {
    let (content_type, body) = match protocol {
        Protocol::Json => (
            "application/x-amz-json-1.0",
            serde_json::json!({ "__type": code, "message": message }),
        ),
        _ => (
            "application/json",
            serde_json::json!({ "message": message }),
        ),
    };
    let mut headers = vec![
        ("content-type", content_type.to_string()),
        ("x-amzn-errortype", code.to_string()),
        (
            "x-amzn-requestid",
            "00000000-0000-0000-0000-00000fa17000".to_string(),
        ),
    ];
    headers.extend(extra.iter().cloned());
    response(status, &headers, body.to_string())
}

fn throttle(protocol: Protocol, retry_after: Option<u32>) -> Response<Body> {
    let extra: Vec<(&str, String)> = retry_after
        .map(|secs| vec![("retry-after", secs.to_string())])
        .unwrap_or_default();
    match protocol {
        Protocol::Query => query_error(400, "Sender", "Throttling", "Rate exceeded"),
        _ => json_error(
            protocol,
            429,
            "TooManyRequestsException",
            "Too Many Requests",
            &extra,
        ),
    }
}

fn server_error(protocol: Protocol, status: u16) -> Response<Body> {
    let code = match status {
        503 => "ServiceUnavailable",
        500..=599 => "InternalFailure",
        // A principal without the permission, as the services answer it.
        403 => "AccessDeniedException",
        _ => "InjectedFault",
    };
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let message = if status == 403 {
        "User: arn:aws:sts::123456789012:assumed-role/operator/session is not authorized to perform this action (injected by the fault proxy)".to_string()
    } else {
        format!("injected by the fault proxy ({status})")
    };
    match protocol {
        Protocol::Query => query_error(status, kind, code, &message),
        _ => json_error(protocol, status, code, &message, &[]),
    }
}

/// HTTP API (v2) stages as API Gateway documents them, played in front of moto.
mod http_api {
    use super::*;
    use serde_json::{Map, Value};

    /// Sends `method path` with the original request's headers (and `body`) to moto; answers
    /// the status and the collected body.
    pub(super) async fn exchange(
        shared: &Shared,
        original: &Parts,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .version(hyper::Version::HTTP_11);
        for (name, value) in &original.headers {
            if name != header::CONTENT_LENGTH {
                builder = builder.header(name, value);
            }
        }
        let request = builder
            .header(header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = http::send(&shared.upstream, request)
            .await
            .map_err(|e| crate::error::error_chain(&e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading moto's answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    pub(super) fn answer(status: u16, body: Bytes) -> Response<Body> {
        response(
            status,
            &[("content-type", "application/json".to_string())],
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn conflict(message: &str) -> Response<Body> {
        json_error(Protocol::Rest, 409, "ConflictException", message, &[])
    }

    fn bad_request(message: &str) -> Response<Body> {
        json_error(Protocol::Rest, 400, "BadRequestException", message, &[])
    }

    /// `CreateStage`: 409 `ConflictException` when the stage exists, else moto's answer.
    pub(super) async fn create_stage(
        shared: &Shared,
        parts: &Parts,
        body: Bytes,
        api: &str,
    ) -> Response<Body> {
        let name = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            v.get("stageName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let Some(name) = name else {
            return bad_request("stageName is required");
        };
        let _one_at_a_time = shared.http_stage_writes.lock().await;
        let existing = exchange(
            shared,
            parts,
            hyper::Method::GET,
            &format!("/v2/apis/{api}/stages/{name}"),
            Bytes::new(),
        )
        .await;
        match existing {
            Ok((200, _)) => conflict(&format!("Stage {name} already exists")),
            Ok(_) => forward(shared, parts.clone(), body).await,
            Err(e) => bad_gateway(&e),
        }
    }

    /// `UpdateStage`: merges `stageVariables` ("" removes one) and the other given fields into
    /// the stage read from moto, re-creates it there and answers the stage.
    pub(super) async fn update_stage(
        shared: &Shared,
        parts: &Parts,
        body: Bytes,
        api: &str,
        stage: &str,
    ) -> Response<Body> {
        let patch: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => return bad_request("the body must be a JSON object"),
        };
        let path = format!("/v2/apis/{api}/stages/{stage}");
        let _one_at_a_time = shared.http_stage_writes.lock().await;
        let current = match exchange(shared, parts, hyper::Method::GET, &path, Bytes::new()).await {
            Ok((200, body)) => body,
            Ok((status, body)) => return answer(status, body),
            Err(e) => return bad_gateway(&e),
        };
        let Ok(Value::Object(mut merged)) = serde_json::from_slice::<Value>(&current) else {
            return bad_gateway("moto answered a stage that is not a JSON object");
        };
        let mut variables = match merged.remove("stageVariables") {
            Some(Value::Object(v)) => v,
            _ => Map::new(),
        };
        for (key, value) in patch {
            if key == "stageVariables" {
                let Value::Object(given) = value else {
                    return bad_request("stageVariables must be an object");
                };
                for (name, value) in given {
                    match value.as_str() {
                        Some("") => {
                            variables.remove(&name);
                        }
                        Some(_) => {
                            variables.insert(name, value);
                        }
                        None => return bad_request("stage variable values must be strings"),
                    }
                }
            } else {
                merged.insert(key, value);
            }
        }
        merged.insert("stageName".into(), Value::String(stage.to_string()));
        merged.insert("stageVariables".into(), Value::Object(variables));
        // Fields CreateStage does not take.
        for read_only in [
            "createdDate",
            "lastUpdatedDate",
            "apiGatewayManaged",
            "lastDeploymentStatusMessage",
        ] {
            merged.remove(read_only);
        }
        let body = Bytes::from(Value::Object(merged).to_string());
        match exchange(
            shared,
            parts,
            hyper::Method::POST,
            &format!("/v2/apis/{api}/stages"),
            body,
        )
        .await
        {
            Ok((status, body)) if (200..300).contains(&status) => answer(200, body),
            Ok((status, body)) => answer(status, body),
            Err(e) => bad_gateway(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn service_comes_from_the_credential_scope() {
        assert_eq!(
            service_from_authorization(AUTH).as_deref(),
            Some("apigateway")
        );
        assert_eq!(service_from_authorization("Bearer x"), None);
        assert_eq!(
            service_from_authorization("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1"),
            None
        );
    }

    #[test]
    fn operations_per_protocol() {
        let signed = |service: &str| AUTH.replace("apigateway", service);
        let (ddb, cfn) = (signed("dynamodb"), signed("cloudformation"));
        let json_target = [
            ("authorization", ddb.as_str()),
            ("x-amz-target", "DynamoDB_20120810.Query"),
        ];
        // Method, path, headers, body: service and operation.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a [u8],
            (&'a str, &'a str),
        );
        let cases: [Case; 5] = [
            ("POST", "/", &json_target, b"{}", ("dynamodb", "Query")),
            (
                "POST",
                "/",
                &[("authorization", cfn.as_str())],
                b"Action=DescribeStacks&Version=2010-05-15&StackName=x",
                ("cloudformation", "DescribeStacks"),
            ),
            (
                "GET",
                "/?Action=DescribeLoadBalancers&Version=2015-12-01",
                &[],
                b"",
                ("unsigned", "DescribeLoadBalancers"),
            ),
            (
                "PATCH",
                "/restapis/abc123/stages/prod?x=1",
                &[("authorization", AUTH)],
                b"{\"patchOperations\":[]}",
                ("apigateway", "PATCH /restapis/abc123/stages/prod"),
            ),
            (
                "POST",
                "/service/GraniteServiceVersion20100801/operation/GetMetricData",
                &[],
                b"",
                ("unsigned", "GetMetricData"),
            ),
        ];
        for (method, path, headers, body, (service, operation)) in cases {
            assert_eq!(
                classify(&parts(method, path, headers), body),
                (service.to_string(), operation.to_string()),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn quotas_burst_then_refill_and_pace_deployments() {
        let start = Instant::now();
        let mut q = Quotas::new();
        for _ in 0..40 {
            assert!(q.admit("GET /restapis/a/stages/s", start));
        }
        assert!(!q.admit("GET /restapis/a/stages/s", start));
        // 100 ms later one token has come back.
        let later = start + Duration::from_millis(100);
        assert!(q.admit("GET /restapis/a/stages/s", later));
        assert!(!q.admit("GET /restapis/a/stages/s", later));
        let mut q = Quotas::new();
        assert!(q.admit("POST /restapis/a/deployments", start));
        assert!(!q.admit(
            "POST /restapis/a/deployments",
            start + Duration::from_secs(4)
        ));
        assert!(q.admit(
            "POST /restapis/a/deployments",
            start + Duration::from_secs(5)
        ));
        assert!(q.admit("POST /restapis/a/stages", start + Duration::from_secs(5)));
    }

    #[test]
    fn rules_match_service_operation_and_remaining() {
        let rule = Rule::new(Fault::Reset)
            .service("dynamodb")
            .operation("Item");
        assert!(rule.matches("dynamodb", "PutItem", b""));
        assert!(!rule.matches("dynamodb", "Query", b""));
        assert!(!rule.matches("apigateway", "PutItem", b""));
        assert!(!rule.clone().times(0).matches("dynamodb", "PutItem", b""));
        assert!(Rule::new(Fault::Reset).matches("any", "thing", b""));
        let role = Rule::new(Fault::Status(403)).body("role%2Fmissing");
        assert!(role.matches(
            "sts",
            "AssumeRole",
            b"RoleArn=arn%3Aaws%3Aiam%3A%3A2%3Arole%2Fmissing"
        ));
        assert!(!role.matches(
            "sts",
            "AssumeRole",
            b"RoleArn=arn%3Aaws%3Aiam%3A%3A2%3Arole%2Fother"
        ));
    }

    #[test]
    fn injected_errors_have_the_protocol_shape() {
        let query = throttle(Protocol::Query, None);
        assert_eq!(query.status(), 400);
        let json = throttle(Protocol::Json, Some(2));
        assert_eq!(json.status(), 429);
        assert_eq!(
            json.headers()["x-amzn-errortype"],
            "TooManyRequestsException"
        );
        assert_eq!(json.headers()["retry-after"], "2");
        let rest = server_error(Protocol::Rest, 503);
        assert_eq!(rest.status(), 503);
        assert_eq!(rest.headers()["x-amzn-errortype"], "ServiceUnavailable");
    }
}

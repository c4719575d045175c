//! The CloudFormation custom-resource protocol.
//!
//! Every invocation that carries a ResponseURL gets exactly one response, whatever happens:
//! a malformed event, invalid properties, a failed AWS call, a panic, a configuration error at
//! start-up, or a deadline about to pass. The event is decoded in two phases (the envelope,
//! then the properties) so that a properties error is a FAILED response, not a stuck stack.
//! The ResponseURL is a credential: it lives in [`ResponseUrl`], whose `Debug` redacts it, and
//! every text that leaves the function is scrubbed of it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest as Request;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::binding::{self, BindingError};
use crate::props;
use crate::Ports;

/// CloudFormation rejects response bodies over 4096 bytes.
pub const MAX_RESPONSE_BYTES: usize = 4096;
const MAX_ID_BYTES: usize = 1024;

/// The pre-signed S3 URL CloudFormation waits on. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseUrl(String);

impl ResponseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        ResponseUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Remove the URL, and its query string on its own, from a text.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "<ResponseURL>");
        if let Some((_, query)) = self.0.split_once('?') {
            if !query.is_empty() {
                out = out.replace(query, "<redacted>");
            }
        }
        out
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseUrl(<redacted>)")
    }
}

/// The kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Create => "Create",
            RequestType::Update => "Update",
            RequestType::Delete => "Delete",
        }
    }
}

/// The identifiers every response echoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub stack_id: String,
    pub request_id: String,
    pub logical_id: String,
    /// Present on Update and Delete.
    pub physical_id: Option<String>,
}

/// A decoded envelope; the properties are still raw JSON.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub request_type: RequestType,
    pub response_url: ResponseUrl,
    pub ids: Ids,
    pub properties: Value,
    pub old_properties: Option<Value>,
}

/// An event that could not be decoded.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Where to answer, when the event carries a ResponseURL at all.
    pub respond_to: Option<(ResponseUrl, Ids, Option<RequestType>)>,
    pub reason: String,
}

fn str_field(event: &Value, name: &str) -> Option<String> {
    event.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Phase one: the envelope.
pub fn decode(event: &Value) -> Result<Envelope, Box<Malformed>> {
    match Request::deserialize(event) {
        Ok(Request::Create(r)) => Ok(Envelope {
            request_type: RequestType::Create,
            response_url: ResponseUrl(r.response_url),
            ids: Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_id: r.logical_resource_id,
                physical_id: None,
            },
            properties: r.resource_properties,
            old_properties: None,
        }),
        Ok(Request::Update(r)) => Ok(Envelope {
            request_type: RequestType::Update,
            response_url: ResponseUrl(r.response_url),
            ids: Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_id: r.logical_resource_id,
                physical_id: Some(r.physical_resource_id),
            },
            properties: r.resource_properties,
            old_properties: Some(r.old_resource_properties),
        }),
        Ok(Request::Delete(r)) => Ok(Envelope {
            request_type: RequestType::Delete,
            response_url: ResponseUrl(r.response_url),
            ids: Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_id: r.logical_resource_id,
                physical_id: Some(r.physical_resource_id),
            },
            properties: r.resource_properties,
            old_properties: None,
        }),
        Ok(_) => Err(Box::new(Malformed {
            respond_to: None,
            reason: "unsupported RequestType".into(),
        })),
        Err(e) => {
            let url = str_field(event, "ResponseURL").filter(|u| !u.is_empty());
            let request_type = match event.get("RequestType").and_then(Value::as_str) {
                Some("Create") => Some(RequestType::Create),
                Some("Update") => Some(RequestType::Update),
                Some("Delete") => Some(RequestType::Delete),
                _ => None,
            };
            let what = if event.is_object() {
                format!("malformed custom resource event: {e}")
            } else {
                "malformed custom resource event: not a JSON object".to_string()
            };
            let respond_to = url.map(|u| {
                let url = ResponseUrl(u);
                let ids = Ids {
                    stack_id: str_field(event, "StackId").unwrap_or_else(|| "unknown".into()),
                    request_id: str_field(event, "RequestId").unwrap_or_else(|| "unknown".into()),
                    logical_id: str_field(event, "LogicalResourceId")
                        .unwrap_or_else(|| "unknown".into()),
                    physical_id: str_field(event, "PhysicalResourceId"),
                };
                (url, ids, request_type)
            });
            let reason = match &respond_to {
                Some((url, _, _)) => url.scrub(&what),
                None => what,
            };
            Err(Box::new(Malformed { respond_to, reason }))
        }
    }
}

/// SUCCESS or FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

/// The outcome to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub physical_id: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    no_echo: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, String>,
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn non_empty(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// The response body: valid JSON of at most [`MAX_RESPONSE_BYTES`] bytes, by construction.
/// Oversized parts give way in this order: the Reason is shortened, then the Data dropped,
/// then the identifiers shortened.
pub fn response_body(ids: &Ids, outcome: &Outcome) -> Vec<u8> {
    let mut reason = outcome.reason.clone();
    let mut data = outcome.data.clone();
    let mut id_cap = MAX_ID_BYTES;
    loop {
        let cap = |s: &str| truncate_utf8(non_empty(s), id_cap).to_string();
        let (physical, stack, request, logical) = (
            cap(&outcome.physical_id),
            cap(&ids.stack_id),
            cap(&ids.request_id),
            cap(&ids.logical_id),
        );
        let body = Body {
            status: outcome.status,
            reason: reason.as_deref(),
            physical_resource_id: &physical,
            stack_id: &stack,
            request_id: &request,
            logical_resource_id: &logical,
            no_echo: false,
            data: &data,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if bytes.len() <= MAX_RESPONSE_BYTES {
            return bytes;
        }
        let excess = bytes.len() - MAX_RESPONSE_BYTES;
        match &reason {
            Some(r) if r.len() > 16 => {
                // Escaping can make each byte up to six in JSON: cut generously.
                let keep = r.len().saturating_sub(excess + 3).min(r.len() - 16);
                let cut = truncate_utf8(r, keep);
                reason = Some(format!("{cut}..."));
                continue;
            }
            _ => {}
        }
        if !data.is_empty() {
            data.clear();
            continue;
        }
        id_cap = (id_cap / 2).max(1);
        if id_cap == 1 {
            reason = None;
        }
    }
}

/// Room left for `Data` in a SUCCESS response with these identifiers.
pub fn data_limit(ids: &Ids, physical_id: &str) -> usize {
    let empty = Outcome {
        status: Status::Success,
        reason: None,
        physical_id: physical_id.to_string(),
        data: BTreeMap::new(),
    };
    let base = response_body(ids, &empty).len() + r#","Data":"#.len();
    MAX_RESPONSE_BYTES.saturating_sub(base)
}

/// Why a response could not be delivered. Never contains the URL.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the ResponseURL answered HTTP {status} on every one of {attempts} attempts")]
    Status { status: u16, attempts: u32 },
    #[error("the ResponseURL could not be reached in {attempts} attempts: {last}")]
    Transport { attempts: u32, last: String },
    #[error("the ResponseURL is not a valid http(s) URL")]
    BadUrl,
}

/// Delivers responses: one PUT with an empty Content-Type and the exact length, retried with
/// full-jitter exponential backoff on transport errors and non-2xx answers, never following a
/// redirect, bounded in attempts and by the deadline.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub attempt_timeout: Duration,
}

impl Default for Sender {
    fn default() -> Self {
        Sender::new(5, Duration::from_millis(250), Duration::from_secs(10))
    }
}

impl Sender {
    pub fn new(max_attempts: u32, base_delay: Duration, attempt_timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Sender {
            client,
            max_attempts: max_attempts.max(1),
            base_delay,
            attempt_timeout,
        }
    }

    /// Send `body`; the answer's HTTP status on success. Gives up at `deadline`.
    pub async fn send(
        &self,
        url: &ResponseUrl,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<(u16, u32), SendError> {
        let parsed = reqwest::Url::parse(url.expose()).map_err(|_| SendError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SendError::BadUrl);
        }
        let mut last_status = None;
        let mut last_transport = String::new();
        let mut attempts = 0;
        while attempts < self.max_attempts {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let res = self
                .client
                .put(parsed.clone())
                .header(reqwest::header::CONTENT_TYPE, "")
                .body(body.clone())
                .timeout(
                    self.attempt_timeout
                        .min(left.max(Duration::from_millis(100))),
                )
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok((r.status().as_u16(), attempts)),
                Ok(r) => {
                    last_status = Some(r.status().as_u16());
                    tracing::warn!(
                        status = r.status().as_u16(),
                        attempt = attempts,
                        "response PUT refused"
                    );
                }
                Err(e) => {
                    last_status = None;
                    last_transport = url.scrub(&e.without_url().to_string());
                    tracing::warn!(error = %last_transport, attempt = attempts, "response PUT failed");
                }
            }
            if attempts >= self.max_attempts {
                break;
            }
            let cap = self.base_delay.saturating_mul(1 << attempts.min(10));
            let delay = cap.mul_f64(fastrand::f64());
            if Instant::now() + delay >= deadline {
                break;
            }
            tokio::time::sleep(delay).await;
        }
        Err(match last_status {
            Some(status) => SendError::Status { status, attempts },
            None => SendError::Transport {
                attempts,
                last: last_transport,
            },
        })
    }
}

/// Timing policy: how much of the time left is kept for answering.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest time kept back to send the response.
    pub max_reserve: Duration,
    /// Shortest time kept back.
    pub min_reserve: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            max_reserve: Duration::from_secs(10),
            min_reserve: Duration::from_millis(300),
        }
    }
}

impl Timing {
    /// When the work must stop: the earlier of the Lambda deadline and the ServiceTimeout,
    /// less a fifth of the time left (between `min_reserve` and `max_reserve`) for answering.
    pub fn work_deadline(
        &self,
        start: Instant,
        lambda_deadline: Instant,
        service_timeout: Option<Duration>,
    ) -> Instant {
        let hard = match service_timeout {
            Some(t) => lambda_deadline.min(start + t),
            None => lambda_deadline,
        };
        let total = hard.saturating_duration_since(start);
        let reserve = (total / 5).clamp(self.min_reserve, self.max_reserve);
        start + total.saturating_sub(reserve)
    }
}

/// The `stage-binding` function.
#[derive(Clone)]
pub struct Handler {
    ports: Result<Arc<Ports>, String>,
    pub sender: Sender,
    pub timing: Timing,
}

/// What an invocation did, returned to Lambda and logged.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub request_type: Option<&'static str>,
    pub stack_id: Option<String>,
    pub logical_resource_id: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub duration_ms: u64,
    pub response_status: Option<u16>,
    pub response_attempts: u32,
}

/// The invocation could not deliver its response (Lambda's asynchronous retry may try again).
#[derive(Debug, thiserror::Error)]
#[error("could not deliver the custom resource response: {0}")]
pub struct Undelivered(pub SendError);

impl Handler {
    /// A handler over working ports.
    pub fn new(ports: Ports) -> Self {
        Handler {
            ports: Ok(Arc::new(ports)),
            sender: Sender::default(),
            timing: Timing::default(),
        }
    }

    /// A handler for a function whose start-up failed: it answers FAILED with `reason`.
    pub fn misconfigured(reason: impl Into<String>) -> Self {
        Handler {
            ports: Err(reason.into()),
            sender: Sender::default(),
            timing: Timing::default(),
        }
    }

    /// Handle one event. `lambda_deadline` is the invocation's deadline.
    pub async fn handle(
        &self,
        event: Value,
        lambda_deadline: Instant,
    ) -> Result<Report, Undelivered> {
        let start = Instant::now();
        let envelope = match decode(&event) {
            Ok(e) => e,
            Err(m) => return self.answer_malformed(*m, start, lambda_deadline).await,
        };
        let service_timeout = props::service_timeout(&envelope.properties);
        let work_deadline = self
            .timing
            .work_deadline(start, lambda_deadline, service_timeout);
        let outcome = self.run(&envelope, work_deadline).await;
        let outcome = Outcome {
            reason: outcome.reason.map(|r| envelope.response_url.scrub(&r)),
            ..outcome
        };
        let body = response_body(&envelope.ids, &outcome);
        let sent = self
            .sender
            .send(&envelope.response_url, body, lambda_deadline)
            .await;
        let report = Report {
            request_type: Some(envelope.request_type.as_str()),
            stack_id: Some(envelope.ids.stack_id.clone()),
            logical_resource_id: Some(envelope.ids.logical_id.clone()),
            outcome: match outcome.status {
                Status::Success => "SUCCESS",
                Status::Failed => "FAILED",
            },
            reason: outcome.reason.clone(),
            duration_ms: start.elapsed().as_millis() as u64,
            response_status: sent.as_ref().ok().map(|(s, _)| *s),
            response_attempts: match &sent {
                Ok((_, a)) => *a,
                Err(SendError::Status { attempts, .. } | SendError::Transport { attempts, .. }) => {
                    *attempts
                }
                Err(SendError::BadUrl) => 0,
            },
        };
        log(&report, sent.as_ref().err());
        sent.map(|_| report).map_err(Undelivered)
    }

    async fn answer_malformed(
        &self,
        m: Malformed,
        start: Instant,
        lambda_deadline: Instant,
    ) -> Result<Report, Undelivered> {
        let Some((url, ids, request_type)) = m.respond_to else {
            let report = Report {
                request_type: None,
                stack_id: None,
                logical_resource_id: None,
                outcome: "IGNORED",
                reason: Some(format!("{}; no ResponseURL to answer", m.reason)),
                duration_ms: start.elapsed().as_millis() as u64,
                response_status: None,
                response_attempts: 0,
            };
            log(&report, None);
            return Ok(report);
        };
        let outcome = Outcome {
            status: Status::Failed,
            reason: Some(m.reason),
            physical_id: ids
                .physical_id
                .clone()
                .unwrap_or_else(|| failed_physical_id(&ids)),
            data: BTreeMap::new(),
        };
        let sent = self
            .sender
            .send(&url, response_body(&ids, &outcome), lambda_deadline)
            .await;
        let report = Report {
            request_type: request_type.map(RequestType::as_str),
            stack_id: Some(ids.stack_id.clone()),
            logical_resource_id: Some(ids.logical_id.clone()),
            outcome: "FAILED",
            reason: outcome.reason,
            duration_ms: start.elapsed().as_millis() as u64,
            response_status: sent.as_ref().ok().map(|(s, _)| *s),
            response_attempts: sent.as_ref().map(|(_, a)| *a).unwrap_or(0),
        };
        log(&report, sent.as_ref().err());
        sent.map(|_| report).map_err(Undelivered)
    }

    /// Run the lifecycle step under the deadline, turning every failure (panics included) into
    /// a FAILED outcome.
    async fn run(&self, env: &Envelope, work_deadline: Instant) -> Outcome {
        let fail_id = env
            .ids
            .physical_id
            .clone()
            .unwrap_or_else(|| failed_physical_id(&env.ids));
        let failed = |reason: String, physical_id: String| Outcome {
            status: Status::Failed,
            reason: Some(reason),
            physical_id,
            data: BTreeMap::new(),
        };
        let ports = match &self.ports {
            Ok(p) => p.clone(),
            Err(reason) => return failed(format!("stagewire is misconfigured: {reason}"), fail_id),
        };
        // Properties are decoded before anything is written; on Delete they are not needed.
        let spec = match env.request_type {
            RequestType::Delete => None,
            _ => match props::parse(&env.properties) {
                Ok(spec) => Some(spec),
                Err(e) => return failed(format!("invalid properties: {e}"), fail_id),
            },
        };
        let success_id = spec
            .as_ref()
            .map(|s| s.physical_id(&env.ids.logical_id))
            .unwrap_or_else(|| fail_id.clone());
        // A failed Create answers the id it would have had, so that its Delete finds anything
        // it claimed; a failed Update keeps the current id.
        let failure_id = match env.request_type {
            RequestType::Create => success_id.clone(),
            _ => fail_id.clone(),
        };
        let limit = data_limit(&env.ids, &success_id);
        let ids = env.ids.clone();
        let request_type = env.request_type;
        let task = tokio::spawn(async move {
            let now = crate::now_ms();
            match (request_type, spec) {
                (RequestType::Create, Some(spec)) => {
                    binding::create(&ports, &ids.stack_id, &ids.logical_id, &spec, limit, now)
                        .await
                        .map(|a| (a.physical_id, a.data))
                }
                (RequestType::Update, Some(spec)) => binding::update(
                    &ports,
                    &ids.stack_id,
                    &ids.logical_id,
                    ids.physical_id.as_deref().unwrap_or_default(),
                    &spec,
                    limit,
                    now,
                )
                .await
                .map(|a| (a.physical_id, a.data)),
                (_, _) => {
                    let physical = ids.physical_id.clone().unwrap_or_default();
                    binding::delete(&ports, &ids.stack_id, &ids.logical_id, &physical)
                        .await
                        .map(|_| (physical, BTreeMap::new()))
                }
            }
        });
        let abort = task.abort_handle();
        let started = Instant::now();
        match tokio::time::timeout_at(work_deadline, task).await {
            Ok(Ok(Ok((physical_id, data)))) => Outcome {
                status: Status::Success,
                reason: None,
                physical_id,
                data,
            },
            Ok(Ok(Err(e))) => failed(reason_of(&e), failure_id),
            Ok(Err(join)) => {
                let detail = if join.is_panic() {
                    let p = join.into_panic();
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into())
                } else {
                    "the work was cancelled".into()
                };
                failed(format!("internal error in stagewire: {detail}"), failure_id)
            }
            Err(_) => {
                abort.abort();
                failed(
                    format!(
                        "timed out after {:.1}s: the work was stopped to answer before the Lambda timeout or ServiceTimeout; CloudFormation will roll back",
                        started.elapsed().as_secs_f64()
                    ),
                    failure_id,
                )
            }
        }
    }
}

fn reason_of(e: &BindingError) -> String {
    // Every BindingError message already carries its cause (the AWS error code and message).
    e.to_string()
}

impl From<Undelivered> for lambda_runtime::Diagnostic {
    fn from(e: Undelivered) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "ResponseUndelivered".into(),
            error_message: e.to_string(),
        }
    }
}

/// The `Instant` of a deadline given in Unix epoch milliseconds (the Lambda context's).
pub fn deadline_instant(epoch_ms: u64) -> Instant {
    let now_ms = crate::now_ms().max(0) as u64;
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

/// Physical id answered when no better one exists (a Create that failed before its properties
/// could be read). Its Delete finds nothing and succeeds.
fn failed_physical_id(ids: &Ids) -> String {
    format!("stagewire:failed:{}", truncate_utf8(&ids.request_id, 128))
}

fn log(report: &Report, send_error: Option<&SendError>) {
    tracing::info!(
        request_type = report.request_type.unwrap_or("unknown"),
        stack_id = report.stack_id.as_deref().unwrap_or("unknown"),
        logical_resource_id = report.logical_resource_id.as_deref().unwrap_or("unknown"),
        outcome = report.outcome,
        reason = report.reason.as_deref().unwrap_or(""),
        duration_ms = report.duration_ms,
        response_status = report.response_status.unwrap_or(0),
        response_attempts = report.response_attempts,
        response_error = send_error.map(|e| e.to_string()).unwrap_or_default(),
        "custom resource request handled"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> Ids {
        Ids {
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/api/1".into(),
            request_id: "r-1".into(),
            logical_id: "Binding".into(),
            physical_id: None,
        }
    }

    #[test]
    fn response_url_never_printed() {
        let url = ResponseUrl::new("https://bucket.s3.amazonaws.com/x?X-Amz-Signature=SECRET");
        assert_eq!(format!("{url:?}"), "ResponseUrl(<redacted>)");
        let text = "failed for https://bucket.s3.amazonaws.com/x?X-Amz-Signature=SECRET and X-Amz-Signature=SECRET";
        let scrubbed = url.scrub(text);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
    }

    #[test]
    fn body_fits_and_is_json_even_when_huge() {
        let outcome = Outcome {
            status: Status::Failed,
            reason: Some("é\"\u{1}".repeat(5000)),
            physical_id: "p".repeat(5000),
            data: (0..200)
                .map(|i| (format!("v{i}"), "x".repeat(500)))
                .collect(),
        };
        let mut big_ids = ids();
        big_ids.stack_id = "s".repeat(9000);
        let body = response_body(&big_ids, &outcome);
        assert!(body.len() <= MAX_RESPONSE_BYTES, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert!(v["Reason"].as_str().unwrap().ends_with("..."));
    }

    #[test]
    fn small_body_is_untouched() {
        let outcome = Outcome {
            status: Status::Success,
            reason: None,
            physical_id: "stagewire:rest:a:prod:B".into(),
            data: BTreeMap::from([(
                "helloworldElb".to_string(),
                "x.elb.amazonaws.com".to_string(),
            )]),
        };
        let v: Value = serde_json::from_slice(&response_body(&ids(), &outcome)).unwrap();
        assert_eq!(
            v,
            json!({
                "Status": "SUCCESS",
                "PhysicalResourceId": "stagewire:rest:a:prod:B",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/api/1",
                "RequestId": "r-1",
                "LogicalResourceId": "Binding",
                "NoEcho": false,
                "Data": {"helloworldElb": "x.elb.amazonaws.com"}
            })
        );
    }

    #[test]
    fn data_limit_matches_the_body() {
        let limit = data_limit(&ids(), "pid");
        let value_len = limit - r#"{"k":""}"#.len();
        let outcome = Outcome {
            status: Status::Success,
            reason: None,
            physical_id: "pid".into(),
            data: BTreeMap::from([("k".to_string(), "x".repeat(value_len))]),
        };
        let body = response_body(&ids(), &outcome);
        assert_eq!(body.len(), MAX_RESPONSE_BYTES);
        assert!(serde_json::from_slice::<Value>(&body).unwrap()["Data"]["k"].is_string());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }

    #[test]
    fn decode_phases() {
        let ok = json!({
            "RequestType": "Update", "ResponseURL": "http://h/x", "StackId": "s", "RequestId": "r",
            "ResourceType": "Custom::StageBinding", "LogicalResourceId": "L", "PhysicalResourceId": "P",
            "ResourceProperties": {"anything": 1}, "OldResourceProperties": {}
        });
        let env = decode(&ok).unwrap();
        assert_eq!(env.request_type, RequestType::Update);
        assert_eq!(env.ids.physical_id.as_deref(), Some("P"));

        let broken =
            json!({"RequestType": "Create", "ResponseURL": "http://h/x?sig=S", "StackId": 5});
        let m = decode(&broken).unwrap_err();
        let (url, ids, rt) = m.respond_to.unwrap();
        assert_eq!(url.expose(), "http://h/x?sig=S");
        assert_eq!(ids.stack_id, "unknown");
        assert_eq!(rt, Some(RequestType::Create));
        assert!(m.reason.contains("malformed"), "{}", m.reason);

        let no_url = json!({"hello": "world"});
        assert!(decode(&no_url).unwrap_err().respond_to.is_none());
        assert!(decode(&json!([1, 2])).unwrap_err().respond_to.is_none());
    }

    #[test]
    fn work_deadline_keeps_a_reserve() {
        let t = Timing::default();
        let start = Instant::now();
        let d = t.work_deadline(start, start + Duration::from_secs(300), None);
        assert_eq!(d - start, Duration::from_secs(290));
        let d = t.work_deadline(
            start,
            start + Duration::from_secs(300),
            Some(Duration::from_secs(60)),
        );
        assert_eq!(d - start, Duration::from_secs(50));
        let d = t.work_deadline(start, start + Duration::from_secs(1), None);
        assert_eq!(d - start, Duration::from_millis(700));
    }
}

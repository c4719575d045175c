//! The `stage-binding` handler: decode, run the lifecycle step under the deadline, answer once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinError;
use tokio::time::Instant;

use super::security::{self, ResponseHosts};
use super::{
    data_limit, request, response_body, truncate_utf8, Action, Ids, Malformed, Outcome, Request,
    RequestType, ResponseUrl, SendError, Sender, Timing,
};
use crate::binding::{self, BindingError};
use crate::props::Properties;
use crate::wait::HealthWait;
use crate::Ports;

/// The `stage-binding` function.
#[derive(Clone)]
pub struct Handler {
    ports: Result<Arc<Ports>, String>,
    pub sender: Sender,
    pub timing: Timing,
    /// Where responses may go; a request whose ResponseURL is elsewhere is refused unanswered.
    pub response_hosts: ResponseHosts,
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

impl From<Undelivered> for lambda_runtime::Diagnostic {
    fn from(e: Undelivered) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "ResponseUndelivered".into(),
            error_message: e.to_string(),
        }
    }
}

impl Handler {
    /// A handler over working ports.
    pub fn new(ports: Ports) -> Self {
        Handler {
            response_hosts: ResponseHosts::cloudformation(&ports.region),
            ports: Ok(Arc::new(ports)),
            sender: Sender::default(),
            timing: Timing::default(),
        }
    }

    /// The same handler, also answering to these hosts (see [`ResponseHosts::allowing`]).
    pub fn allowing_response_hosts(mut self, hosts: impl IntoIterator<Item = String>) -> Self {
        self.response_hosts = self.response_hosts.allowing(hosts);
        self
    }

    /// A handler for a function whose start-up failed: it answers FAILED with `reason`.
    /// Responses go where `response_hosts` allows.
    pub fn misconfigured(reason: impl Into<String>, response_hosts: ResponseHosts) -> Self {
        Handler {
            response_hosts,
            ports: Err(reason.into()),
            sender: Sender::default(),
            timing: Timing::default(),
        }
    }

    /// Handle one event: decode it, check where the answer goes, run the lifecycle step (which
    /// checks the request is CloudFormation's beside its reads), answer once. `lambda_deadline`
    /// is the invocation's deadline.
    pub async fn handle(
        &self,
        event: Value,
        lambda_deadline: Instant,
    ) -> Result<Report, Undelivered> {
        let start = Instant::now();
        let request = match request(&event) {
            Ok(r) => r,
            Err(m) => return self.answer_malformed(*m, start, lambda_deadline).await,
        };
        if !self.response_hosts.allows(&request.response_url) {
            return Err(self.refuse_url(Some(&request.ids)));
        }
        let service_timeout = request.properties().and_then(|p| p.service_timeout);
        let work_deadline = self
            .timing
            .work_deadline(start, lambda_deadline, service_timeout);
        let (outcome, created) = self.run(&request, work_deadline).await;
        let report = self
            .respond(
                &request.response_url,
                &request.ids,
                Some(request.request_type()),
                outcome,
                start,
                lambda_deadline,
            )
            .await;
        if let Some(created) = created {
            created.undo_if_cancelled(lambda_deadline).await;
        }
        report
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
        let physical_id = ids
            .physical_id
            .clone()
            .unwrap_or_else(|| failed_physical_id(&ids));
        let outcome = Outcome::failed(m.reason, physical_id);
        self.respond(&url, &ids, request_type, outcome, start, lambda_deadline)
            .await
    }

    /// The one response: scrub the reason of the URL, send, then report and log what happened.
    async fn respond(
        &self,
        url: &ResponseUrl,
        ids: &Ids,
        request_type: Option<RequestType>,
        outcome: Outcome,
        start: Instant,
        lambda_deadline: Instant,
    ) -> Result<Report, Undelivered> {
        if !self.response_hosts.allows(url) {
            return Err(self.refuse_url(Some(ids)));
        }
        let outcome = Outcome {
            reason: outcome.reason.map(|r| url.scrub(&r)),
            ..outcome
        };
        let sent = self
            .sender
            .send(url, response_body(ids, &outcome), lambda_deadline)
            .await;
        let report = Report {
            request_type: request_type.map(RequestType::as_str),
            stack_id: Some(ids.stack_id.clone()),
            logical_resource_id: Some(ids.logical_id.clone()),
            outcome: outcome.status.as_str(),
            reason: outcome.reason,
            duration_ms: start.elapsed().as_millis() as u64,
            response_status: sent.as_ref().ok().map(|(s, _)| *s),
            response_attempts: match &sent {
                Ok((_, attempts)) => *attempts,
                Err(e) => e.attempts(),
            },
        };
        log(&report, sent.as_ref().err());
        sent.map(|_| report).map_err(Undelivered)
    }

    /// A request whose ResponseURL points elsewhere than CloudFormation: nothing is done and
    /// nothing is sent (the host is not logged: the URL is a credential, whoever made it).
    fn refuse_url(&self, ids: Option<&Ids>) -> Undelivered {
        security::report(
            "ForeignResponseUrl",
            ids,
            "the ResponseURL is not on CloudFormation's response bucket for this region",
        );
        Undelivered(SendError::ForeignHost)
    }

    /// Run the lifecycle step under the deadline, turning every failure (panics included) into
    /// a FAILED outcome. A Create that succeeded comes back for its check after the answer.
    async fn run(&self, request: &Request, work_deadline: Instant) -> (Outcome, Option<Created>) {
        let ids = &request.ids;
        let current_id = ids
            .physical_id
            .clone()
            .unwrap_or_else(|| failed_physical_id(ids));
        let success_id = request
            .properties()
            .map(|p| p.spec.physical_id(&ids.logical_id))
            .unwrap_or_else(|| current_id.clone());
        // A failed Create answers the id it would have had, so that its Delete finds anything
        // it claimed; a failed Update keeps the current id.
        let failure_id = match request.action {
            Action::Create(_) => success_id.clone(),
            _ => current_id,
        };
        let failed = |reason: String| (Outcome::failed(reason, failure_id.clone()), None);
        let ports = match &self.ports {
            Ok(p) => p.clone(),
            Err(reason) => return failed(format!("stagewire is misconfigured: {reason}")),
        };
        let limits = Limits {
            data: data_limit(ids, &success_id),
            health_poll: self.timing.health_poll,
            deadline: work_deadline,
        };
        let task = tokio::spawn(step(ports, request.clone(), limits));
        let abort = task.abort_handle();
        let started = Instant::now();
        match tokio::time::timeout_at(work_deadline, task).await {
            Ok(Ok(Ok(done))) => (Outcome::success(done.physical_id, done.data), done.created),
            Ok(Ok(Err(e))) => failed(reason_of(&e)),
            Ok(Err(join)) => failed(format!(
                "internal error in stagewire: {}",
                join_detail(join)
            )),
            Err(_) => {
                abort.abort();
                failed(format!(
                    "timed out after {:.1}s: the work was stopped to answer before the Lambda timeout or ServiceTimeout; CloudFormation will roll back",
                    started.elapsed().as_secs_f64()
                ))
            }
        }
    }
}

/// The limits of one lifecycle step.
struct Limits {
    /// Room for `Data` in the response.
    data: usize,
    health_poll: std::time::Duration,
    /// The work deadline.
    deadline: Instant,
}

impl Limits {
    /// The lifecycle's request for these properties.
    fn request<'a>(&self, ids: &'a Ids, p: &'a Properties, now_ms: i64) -> binding::Request<'a> {
        binding::Request {
            stack_id: &ids.stack_id,
            logical_id: &ids.logical_id,
            spec: &p.spec,
            data_limit: self.data,
            now_ms,
            wait: HealthWait {
                enabled: p.wait_for_healthy_targets,
                deadline: self.deadline,
                interval: self.health_poll,
            },
        }
    }
}

/// What a lifecycle step answers: the physical id and Data, and for a Create, what to check
/// after the answer.
struct Done {
    physical_id: String,
    data: BTreeMap<String, String>,
    created: Option<Created>,
}

/// A Create that answered SUCCESS, to be undone if CloudFormation gave up on it meanwhile.
struct Created {
    ports: Arc<Ports>,
    since_ms: i64,
    applied: binding::Applied,
}

impl Created {
    /// The check ends before the invocation's deadline: the answer is out, and an invocation
    /// that timed out could be retried by Lambda and answer again.
    async fn undo_if_cancelled(self, lambda_deadline: Instant) {
        let stop = lambda_deadline
            .checked_sub(AFTER_ANSWER_MARGIN)
            .unwrap_or(lambda_deadline);
        let check = binding::undo_if_cancelled(&self.ports, &self.applied, self.since_ms);
        match tokio::time::timeout_at(stop, check).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not check whether the Create was cancelled")
            }
            Err(_) => tracing::warn!("no time left to check whether the Create was cancelled"),
        }
    }
}

/// Time kept before the invocation's deadline by the work that follows the answer.
const AFTER_ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The lifecycle step itself. CloudFormation is asked whether the request is its own beside
/// the step's first reads; nothing is written unless it is.
async fn step(ports: Arc<Ports>, request: Request, limits: Limits) -> Result<Done, BindingError> {
    let ids = &request.ids;
    let genuine = security::authenticate(ports.outputs.as_ref(), request.request_type(), ids);
    let now_ms = crate::now_ms();
    let lifecycle = |p| limits.request(ids, p, now_ms);
    match &request.action {
        Action::Create(p) => {
            let applied = binding::create(&ports, &lifecycle(p), genuine).await?;
            Ok(Done {
                physical_id: applied.physical_id.clone(),
                data: applied.data.clone(),
                created: Some(Created {
                    ports: ports.clone(),
                    since_ms: now_ms,
                    applied,
                }),
            })
        }
        Action::Update {
            physical_id,
            properties,
        } => {
            let applied =
                binding::update(&ports, &lifecycle(properties), physical_id, genuine).await?;
            Ok(Done {
                physical_id: applied.physical_id,
                data: applied.data,
                created: None,
            })
        }
        Action::Delete {
            physical_id,
            properties,
        } => {
            genuine.await.map_err(BindingError::Refused)?;
            let spec = properties.as_ref().map(|p| &p.spec);
            binding::delete(&ports, &ids.stack_id, &ids.logical_id, physical_id, spec).await?;
            Ok(Done {
                physical_id: physical_id.clone(),
                data: BTreeMap::new(),
                created: None,
            })
        }
    }
}

/// What a task that did not finish says about why: its panic message, or its cancellation.
fn join_detail(join: JoinError) -> String {
    if join.is_panic() {
        let p = join.into_panic();
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    } else {
        "the work was cancelled".into()
    }
}

fn reason_of(e: &BindingError) -> String {
    // Every BindingError message already carries its cause (the AWS error code and message).
    e.to_string()
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
    use std::time::Duration;

    #[tokio::test]
    async fn an_event_without_a_response_url_is_ignored() {
        let handler =
            Handler::misconfigured("no table", ResponseHosts::cloudformation("us-east-1"));
        let report = handler
            .handle(
                json!({"hello": "world"}),
                Instant::now() + Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(report.outcome, "IGNORED");
        assert_eq!(report.response_attempts, 0);
        assert!(report.reason.unwrap().contains("no ResponseURL"));
    }

    #[tokio::test]
    async fn a_response_url_off_the_allowed_hosts_is_undelivered_and_never_printed() {
        let handler =
            Handler::misconfigured("no table", ResponseHosts::cloudformation("us-east-1"));
        let event = json!({"RequestType": "Create", "ResponseURL": "ftp://h/x?sig=SECRET"});
        let handler = handler.allowing_response_hosts(["h".to_string()]);
        let err = handler
            .handle(event, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err.0, SendError::ForeignHost), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("SECRET"));
    }
}

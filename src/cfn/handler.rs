//! The `stage-binding` handler: decode, run the lifecycle step under the deadline, answer once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinError;
use tokio::time::Instant;

use super::security::{self, ResponseHosts};
use super::{
    data_limit, decode, response_body, truncate_utf8, Envelope, Ids, Malformed, Outcome,
    RequestType, ResponseUrl, SendError, Sender, Status, Timing,
};
use crate::binding::{self, BindingError};
use crate::domain::BindingSpec;
use crate::props;
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
        if !self.response_hosts.allows(&envelope.response_url) {
            return Err(self.refuse_url(Some(&envelope.ids)));
        }
        let service_timeout = props::service_timeout(&envelope.properties);
        let work_deadline = self
            .timing
            .work_deadline(start, lambda_deadline, service_timeout);
        let outcome = self.run(&envelope, work_deadline).await;
        self.respond(
            &envelope.response_url,
            &envelope.ids,
            Some(envelope.request_type),
            outcome,
            start,
            lambda_deadline,
        )
        .await
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

    /// Ask CloudFormation whether the event's resource is in the state the request implies.
    async fn authenticate(
        ports: &Ports,
        env: &Envelope,
        work_deadline: Instant,
    ) -> Result<(), String> {
        let lookup = tokio::time::timeout_at(
            work_deadline,
            ports
                .outputs
                .stack_resource(&env.ids.stack_id, &env.ids.logical_id),
        )
        .await;
        let found = match lookup {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                return Err(format!(
                    "could not verify with CloudFormation that this request comes from {} in stack {}: {e}",
                    env.ids.logical_id, env.ids.stack_id
                ))
            }
            Err(_) => {
                return Err(
                    "timed out verifying the request with CloudFormation (DescribeStackResource)"
                        .into(),
                )
            }
        };
        security::verdict(env.request_type, &env.ids, found.as_ref()).map_err(|forged| {
            let detail = forged.to_string();
            security::report("ForgedRequest", Some(&env.ids), &detail);
            format!(
                "refused: this {} is not CloudFormation's: {detail}",
                env.request_type.as_str()
            )
        })
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
        // Properties are decoded before anything is written. A Delete needs none, but uses
        // them where they name the stage (the Delete of a Create that never answered).
        let spec = match env.request_type {
            RequestType::Delete => props::parse(&env.properties).ok(),
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
        // Nothing is written for a request CloudFormation does not stand behind.
        if let Err(reason) = Self::authenticate(&ports, env, work_deadline).await {
            return failed(reason, failure_id);
        }
        let limit = data_limit(&env.ids, &success_id);
        let wait = HealthWait {
            enabled: props::wait_for_healthy_targets(&env.properties),
            deadline: work_deadline,
            interval: self.timing.health_poll,
        };
        let task = tokio::spawn(step(
            ports,
            env.request_type,
            env.ids.clone(),
            spec,
            limit,
            wait,
        ));
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
            Ok(Err(join)) => failed(
                format!("internal error in stagewire: {}", join_detail(join)),
                failure_id,
            ),
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

/// The lifecycle step itself: the physical id and Data to answer.
async fn step(
    ports: Arc<Ports>,
    request_type: RequestType,
    ids: Ids,
    spec: Option<BindingSpec>,
    limit: usize,
    wait: HealthWait,
) -> Result<(String, BTreeMap<String, String>), BindingError> {
    let now = crate::now_ms();
    match (request_type, spec) {
        (RequestType::Create, Some(spec)) => binding::create(
            &ports,
            &ids.stack_id,
            &ids.logical_id,
            &spec,
            limit,
            now,
            &wait,
        )
        .await
        .map(|a| (a.physical_id, a.data)),
        (RequestType::Update, Some(spec)) => binding::update(
            &ports,
            &ids.stack_id,
            &ids.logical_id,
            ids.physical_id.as_deref().unwrap_or_default(),
            &spec,
            limit,
            now,
            &wait,
        )
        .await
        .map(|a| (a.physical_id, a.data)),
        (_, spec) => {
            let physical = ids.physical_id.clone().unwrap_or_default();
            binding::delete(
                &ports,
                &ids.stack_id,
                &ids.logical_id,
                &physical,
                spec.as_ref(),
            )
            .await
            .map(|_| (physical, BTreeMap::new()))
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

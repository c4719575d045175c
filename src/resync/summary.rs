//! What a re-sync did: the variables it changed and every issue it met, each a value (stage,
//! variable, kind, cause) that says whether trying again may help.

use std::fmt;

use serde::Serialize;

use crate::ports::{AwsError, ErrorKind, RegistryError};
use crate::resolve::ResolveError;

/// One variable written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub stage: String,
    pub variable: String,
    pub from: Option<String>,
    pub to: String,
}

/// The kinds of issue a re-sync reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The source cannot be resolved now; the value is kept.
    Unresolved,
    /// A switch held back: the new load balancer has no healthy target yet.
    Deferred,
    /// The stage (or its API) does not exist.
    StageMissing,
    /// A read or a write failed; the variable may be out of date.
    Failed,
    /// The binding's stack may no longer touch the API (its tags changed): the variable is
    /// left as it is and no longer updated until the right is granted again.
    Unauthorized,
    /// A claim the source of truth contradicts (a live stack said to have ended), or an event
    /// naming a resource outside its own account and region: a security event; nothing done.
    Refused,
}

/// One thing that did not go as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub stage: String,
    pub variable: Option<String>,
    pub kind: IssueKind,
    pub cause: String,
    /// Whether the same invocation may succeed later (throttling, a conflict, an outage).
    pub retryable: bool,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(v) => write!(f, "{} variable {v}: {}", self.stage, self.cause),
            None => write!(f, "{}: {}", self.stage, self.cause),
        }
    }
}

/// Whether an error may go away on its own.
pub trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for AwsError {
    fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

impl Retryable for RegistryError {
    fn retryable(&self) -> bool {
        match self {
            RegistryError::Aws(e) => e.retryable(),
            RegistryError::Owned { .. }
            | RegistryError::Cancelled { .. }
            | RegistryError::Corrupt { .. } => false,
        }
    }
}

impl Retryable for crate::binding::BindingError {
    fn retryable(&self) -> bool {
        use crate::binding::BindingError;
        match self {
            BindingError::Registry(e) => e.retryable(),
            BindingError::Stage { source, .. } => source.retryable(),
            _ => false,
        }
    }
}

impl Retryable for ResolveError {
    fn retryable(&self) -> bool {
        match self {
            ResolveError::Aws(e) => e.retryable(),
            ResolveError::Elsewhere { error, .. } => error.retryable(),
            _ => false,
        }
    }
}

impl ErrorKind {
    /// Throttling, conflicts, outages and unknown service errors may pass; a missing resource
    /// or a missing permission stays until someone acts.
    pub fn retryable(self) -> bool {
        !matches!(self, ErrorKind::NotFound | ErrorKind::AccessDenied)
    }
}

/// What a re-sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub trigger: String,
    pub bindings_checked: usize,
    pub changed: Vec<Change>,
    /// Bindings released because the stack that owned them ended.
    pub released: usize,
    pub issues: Vec<Issue>,
}

impl Summary {
    pub fn new(trigger: impl Into<String>) -> Self {
        Summary {
            trigger: trigger.into(),
            ..Summary::default()
        }
    }

    pub fn of_kind(&self, kind: IssueKind) -> Vec<&Issue> {
        self.issues.iter().filter(|i| i.kind == kind).collect()
    }

    /// Sources that could not be resolved (values kept).
    pub fn unresolved(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::Unresolved)
    }

    /// Switches held back because the new load balancer has no healthy target yet.
    pub fn deferred(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::Deferred)
    }

    /// Stages that are gone.
    pub fn missing_stages(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::StageMissing)
    }

    /// Bindings whose stack may no longer touch their API.
    pub fn unauthorized(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::Unauthorized)
    }

    /// Reads and writes that failed.
    pub fn failures(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::Failed)
    }

    /// Claims refused: security events.
    pub fn refused(&self) -> Vec<&Issue> {
        self.of_kind(IssueKind::Refused)
    }

    /// Refuse a claim about `subject`: logged at WARN as a security event of `kind` (field
    /// `security_event`, as the binding function logs its own) and counted in the invocation's
    /// `SecurityEvents` metric. Not retryable: the same claim meets the same truth.
    pub fn refuse(&mut self, kind: &'static str, subject: impl fmt::Display, cause: String) {
        tracing::warn!(security_event = kind, subject = %subject, detail = %cause, "claim refused");
        self.issues.push(Issue {
            stage: subject.to_string(),
            variable: None,
            kind: IssueKind::Refused,
            cause,
            retryable: false,
        });
    }

    /// Record a failure of `stage` (and `variable`), retryable as its cause says.
    pub fn fail(
        &mut self,
        stage: impl fmt::Display,
        variable: Option<&str>,
        cause: &(impl fmt::Display + Retryable),
    ) {
        self.issues.push(Issue {
            stage: stage.to_string(),
            variable: variable.map(str::to_owned),
            kind: IssueKind::Failed,
            cause: cause.to_string(),
            retryable: cause.retryable(),
        });
    }

    /// Add what another part of the same re-sync did.
    pub fn merge(&mut self, other: Summary) {
        self.bindings_checked += other.bindings_checked;
        self.changed.extend(other.changed);
        self.released += other.released;
        self.issues.extend(other.issues);
    }
}

/// Why a re-sync invocation did not bring every variable up to date. Lambda's error type says
/// whether retrying the event may help (`ResyncRetryable`) or not (`ResyncPermanent`).
#[derive(Debug, thiserror::Error)]
#[error("re-sync incomplete: {} failure(s): {}", .0.failures().len(), join(&.0.failures()))]
pub struct Incomplete(pub Box<Summary>);

fn join(issues: &[&Issue]) -> String {
    issues
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Incomplete {
    /// Whether any failure may pass on a retry.
    pub fn retryable(&self) -> bool {
        self.0.failures().iter().any(|i| i.retryable)
    }
}

impl From<Incomplete> for lambda_runtime::Diagnostic {
    fn from(e: Incomplete) -> Self {
        lambda_runtime::Diagnostic {
            error_type: if e.retryable() {
                "ResyncRetryable"
            } else {
                "ResyncPermanent"
            }
            .into(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: ErrorKind) -> AwsError {
        AwsError {
            service: "apigateway",
            operation: "UpdateStage",
            kind,
            code: None,
            message: None,
            source: None,
        }
    }

    #[test]
    fn retryable_follows_the_error_kind() {
        let mut s = Summary::new("t");
        s.fail("stage a", Some("v"), &aws(ErrorKind::NotFound));
        let permanent = Incomplete(Box::new(s.clone()));
        assert!(!permanent.retryable());
        assert_eq!(
            lambda_runtime::Diagnostic::from(permanent).error_type,
            "ResyncPermanent"
        );
        s.fail("stage b", None, &aws(ErrorKind::Throttled));
        let retry = Incomplete(Box::new(s));
        assert!(retry.retryable());
        assert!(retry.to_string().contains("2 failure(s)"), "{retry}");
        assert_eq!(
            lambda_runtime::Diagnostic::from(retry).error_type,
            "ResyncRetryable"
        );
        for kind in [ErrorKind::AccessDenied, ErrorKind::NotFound] {
            assert!(!kind.retryable(), "{kind:?}");
        }
        for kind in [
            ErrorKind::Throttled,
            ErrorKind::Unreachable,
            ErrorKind::ConditionFailed,
            ErrorKind::Conflict,
            ErrorKind::Other,
        ] {
            assert!(kind.retryable(), "{kind:?}");
        }
    }

    #[test]
    fn issues_read_as_before() {
        let mut s = Summary::new("t");
        s.issues.push(Issue {
            stage: "stage prod of REST API a".into(),
            variable: Some("v".into()),
            kind: IssueKind::Deferred,
            cause: "load balancer x has no healthy target yet".into(),
            retryable: true,
        });
        assert_eq!(s.deferred().len(), 1);
        assert!(s.failures().is_empty());
        assert_eq!(
            s.deferred()[0].to_string(),
            "stage prod of REST API a variable v: load balancer x has no healthy target yet"
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap()["issues"][0]["kind"],
            "deferred"
        );
    }
}

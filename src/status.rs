//! Status: every registered stage variable next to its live value and what its source resolves
//! to now, for the operator CLI (`stagewire status`, `stagewire sync --dry-run`).
//!
//! The rows are the re-sync's own plan ([`crate::plan::stage`]): what `sync --dry-run` prints
//! is what `sync` does. Each stage is read once and each source resolved once. A row's [`State`] says whether the
//! variable is in sync, has drifted, lost its source, points at a load balancer without a
//! healthy target, or sits on a stage that no longer exists. Failed AWS calls (throttling,
//! permissions, an unreachable endpoint) are errors, not states: a row never claims a source is
//! missing because it could not be asked.

use std::fmt;

use serde::Serialize;

use crate::domain::{ApiKind, Source, StageRef};
use crate::plan::stage::{Action, Planned, Serving};
use crate::ports::{Record, RegistryError};
use crate::resolve::{ResolveError, Resolver};
use crate::resync::StageUnreadable;
use crate::Ports;

/// Exit status when every row is in sync.
pub const EXIT_IN_SYNC: i32 = 0;
/// Exit status when at least one row needs attention.
pub const EXIT_ATTENTION: i32 = 2;

/// Where one stage variable stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The live value is what the source resolves to.
    InSync,
    /// The live value differs from the resolved one (or the variable is absent).
    Drifted,
    /// The source cannot be resolved (stack, output, service or load balancer gone).
    SourceMissing,
    /// In sync, but the value is an ELBv2 load balancer without a healthy target.
    Unhealthy,
    /// The stage (or its API) does not exist.
    StageMissing,
    /// The binding's stack may no longer touch the API: the re-sync leaves it alone.
    Unauthorized,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::InSync => "in sync",
            State::Drifted => "drifted",
            State::SourceMissing => "source missing",
            State::Unhealthy => "unhealthy",
            State::StageMissing => "stage missing",
            State::Unauthorized => "not authorized",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered stage variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `kind:id`, e.g. `rest:a1b2c3`.
    pub api: String,
    pub kind: ApiKind,
    pub api_id: String,
    pub stage: String,
    pub variable: String,
    /// The source, as people read it (`output EcsElbDnsName of stack EcsHelloworldProd`).
    pub source: String,
    /// The source, structured.
    pub source_spec: Source,
    /// The binding that owns the variable.
    pub owner: String,
    /// The value on the stage now; `None` when absent (or the stage is missing).
    pub live: Option<String>,
    /// What the source resolves to now; `None` when it cannot be resolved.
    pub resolved: Option<String>,
    pub state: State,
    /// Why the state is not `in_sync`, when there is more to say than the state.
    pub note: Option<String>,
    /// Name of the load balancer the resolved value is the DNS name of, when known.
    pub load_balancer: Option<String>,
    /// Whether that load balancer has a healthy target (classic ones count as healthy).
    pub healthy: Option<bool>,
    /// Whether a re-sync holds the change back (the new load balancer does not serve yet while
    /// the current one exists).
    pub deferred: bool,
}

impl Row {
    pub fn stage_ref(&self) -> StageRef {
        StageRef::new(self.kind, self.api_id.clone(), self.stage.clone())
    }
}

/// Which records to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// An API id (`a1b2c3`) or `kind:id` (`rest:a1b2c3`).
    pub api: Option<String>,
    /// A stage name.
    pub stage: Option<String>,
}

impl Filter {
    pub fn matches(&self, record: &Record) -> bool {
        let api_ok = self.api.as_deref().is_none_or(|want| {
            want == record.stage.api_id
                || want == format!("{}:{}", record.stage.kind.as_str(), record.stage.api_id)
        });
        let stage_ok = self
            .stage
            .as_deref()
            .is_none_or(|want| want == record.stage.stage);
        api_ok && stage_ok
    }
}

/// Why the status could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Stage(#[from] StageUnreadable),
    #[error("could not resolve {source_text} for {stage} variable {variable}: {error}")]
    Resolve {
        stage: StageRef,
        variable: String,
        source_text: String,
        error: ResolveError,
    },
}

/// The status of every registered variable that `filter` selects.
pub async fn status(ports: &Ports, filter: &Filter) -> Result<Vec<Row>, StatusError> {
    let records: Vec<Record> = ports
        .registry
        .all()
        .await?
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    rows(ports, records).await
}

/// The status of these records, sorted by API, stage and variable: the re-sync's own plan
/// ([`crate::resync::plans`]), with the health of values already in place.
pub async fn rows(ports: &Ports, records: Vec<Record>) -> Result<Vec<Row>, StatusError> {
    let mut resolver = Resolver::new(ports);
    let plans = crate::resync::plans(ports, &mut resolver, records).await?;
    let mut rights = crate::resync::rights::Rights::default();
    let mut out = Vec::new();
    for plan in plans {
        let mut planned = plan.variables;
        planned.sort_by(|a, b| a.record.variable.cmp(&b.record.variable));
        for p in planned {
            let denied = rights
                .check(ports, &p.record)
                .await
                .map_err(|source| StageUnreadable {
                    stage: plan.stage.clone(),
                    source,
                })?
                .err();
            let mut r = row(&mut resolver, &plan.stage, p).await?;
            if let Some(denied) = denied {
                r.state = State::Unauthorized;
                r.note = Some(format!(
                    "the re-sync no longer updates this variable: {denied}"
                ));
            }
            out.push(r);
        }
    }
    Ok(out)
}

async fn row(
    resolver: &mut Resolver<'_>,
    stage: &StageRef,
    p: Planned,
) -> Result<Row, StatusError> {
    let deferred = matches!(p.action, Action::Defer { .. });
    let record = p.record;
    // The load balancers of the source's account and region.
    let at = record.source.place().cloned().unwrap_or_default();
    let resolve_err = |error: ResolveError| StatusError::Resolve {
        stage: stage.clone(),
        variable: record.variable.clone(),
        source_text: record.source.to_string(),
        error,
    };
    let (state, resolved, note) = match p.action {
        Action::InSync => (State::InSync, p.current.clone(), None),
        Action::Write { to, .. } => {
            let note = p
                .current
                .is_none()
                .then(|| "variable absent from the stage".to_string());
            (State::Drifted, Some(to), note)
        }
        ref deferred @ Action::Defer { ref to, .. } => {
            (State::Drifted, Some(to.clone()), deferred.deferral())
        }
        Action::Unresolved(e @ ResolveError::Aws(_)) => return Err(resolve_err(e)),
        Action::Unresolved(e) => (State::SourceMissing, None, Some(e.to_string())),
        Action::Unchecked { cause, .. } => return Err(resolve_err(cause)),
        Action::StageMissing => (
            State::StageMissing,
            None,
            Some(format!("{stage} does not exist")),
        ),
    };
    // The health of the value the row shows: the new one's is known from the plan; a value
    // already in place is looked up the same way (by DNS name, whatever the source).
    let serving = match (&p.serving, state, &p.current) {
        (Some(s), _, _) => Some(s.clone()),
        (None, State::InSync, Some(value)) => match resolver
            .load_balancer_by_dns_at(&at, value)
            .await
            .map_err(resolve_err)?
        {
            Some(lb) => Some(Serving {
                healthy: resolver
                    .has_healthy_targets_at(&at, &lb)
                    .await
                    .map_err(resolve_err)?,
                name: lb.name,
            }),
            None => None,
        },
        _ => None,
    };
    let (state, note) = match (&serving, state) {
        (Some(s), State::InSync) if !s.healthy => (
            State::Unhealthy,
            Some(format!("load balancer {} has no healthy target", s.name)),
        ),
        (_, state) => (state, note),
    };
    Ok(Row {
        api: format!("{}:{}", stage.kind.as_str(), stage.api_id),
        kind: stage.kind,
        api_id: stage.api_id.clone(),
        stage: stage.stage.clone(),
        variable: record.variable.clone(),
        source: record.source.to_string(),
        source_spec: record.source.clone(),
        owner: record.owner.to_string(),
        live: p.current,
        resolved,
        state,
        note,
        deferred,
        load_balancer: serving.as_ref().map(|s| s.name.clone()),
        healthy: serving.map(|s| s.healthy),
    })
}

/// The exit status these rows call for: [`EXIT_IN_SYNC`] when every row is in sync (or there
/// are none), [`EXIT_ATTENTION`] otherwise.
pub fn exit_code(rows: &[Row]) -> i32 {
    if rows.iter().all(|r| r.state == State::InSync) {
        EXIT_IN_SYNC
    } else {
        EXIT_ATTENTION
    }
}

/// One planned write of a dry-run: a drifted row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub api: String,
    pub stage: String,
    pub variable: String,
    pub from: Option<String>,
    pub to: String,
    /// Why the re-sync holds the change back, when it does.
    pub deferred: Option<String>,
}

/// The changes a re-sync of these rows would make or hold back: one per drifted row.
pub fn plan(rows: &[Row]) -> Vec<PlannedChange> {
    rows.iter()
        .filter(|r| r.state == State::Drifted)
        .filter_map(|r| {
            Some(PlannedChange {
                api: r.api.clone(),
                stage: r.stage.clone(),
                variable: r.variable.clone(),
                from: r.live.clone(),
                to: r.resolved.clone()?,
                deferred: r.deferred.then(|| r.note.clone()).flatten(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: State) -> Row {
        Row {
            api: "rest:abc".into(),
            kind: ApiKind::Rest,
            api_id: "abc".into(),
            stage: "prod".into(),
            variable: "v".into(),
            source: "literal \"x\"".into(),
            source_spec: Source::Literal { value: "x".into() },
            owner: "B in stack S".into(),
            live: Some("old".into()),
            resolved: Some("x".into()),
            state,
            note: None,
            load_balancer: None,
            healthy: None,
            deferred: false,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[row(State::InSync)]), 0);
        for s in [
            State::Drifted,
            State::SourceMissing,
            State::Unhealthy,
            State::StageMissing,
        ] {
            assert_eq!(exit_code(&[row(State::InSync), row(s)]), 2, "{s}");
        }
    }

    #[test]
    fn states_serialize_in_snake_case() {
        let v = serde_json::to_value(row(State::SourceMissing)).unwrap();
        assert_eq!(v["state"], "source_missing");
        assert_eq!(v["api"], "rest:abc");
        assert_eq!(v["source_spec"]["kind"], "literal");
    }

    #[test]
    fn plan_takes_drifted_rows() {
        let rows = [
            row(State::InSync),
            row(State::Drifted),
            row(State::Unhealthy),
        ];
        let p = plan(&rows);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].from.as_deref(), Some("old"));
        assert_eq!(p[0].to, "x");
    }

    #[test]
    fn filters() {
        let f = Filter {
            api: Some("rest:abc".into()),
            stage: None,
        };
        let record = Record {
            stage: StageRef::new(ApiKind::Rest, "abc", "prod"),
            variable: "v".into(),
            owner: crate::domain::Owner {
                stack_id: "s".into(),
                logical_id: "l".into(),
                physical_id: "p".into(),
            },
            source: Source::Literal { value: "x".into() },
            value: None,
            written_at: None,
            via: None,
            created_stage: false,
            last_error: None,
            checked_at: None,
            version: 0,
        };
        assert!(f.matches(&record));
        assert!(Filter {
            api: Some("abc".into()),
            stage: Some("prod".into())
        }
        .matches(&record));
        assert!(!Filter {
            api: Some("http:abc".into()),
            stage: None
        }
        .matches(&record));
        assert!(!Filter {
            api: None,
            stage: Some("dev".into())
        }
        .matches(&record));
    }
}

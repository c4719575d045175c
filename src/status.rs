//! Status: every registered stage variable next to its live value and what its source resolves
//! to now, for the operator CLI (`stagewire status`, `stagewire sync --dry-run`).
//!
//! The rows are the re-sync's own plan ([`crate::plan::stage`]): what `sync --dry-run` prints
//! is what `sync` does. Each stage is read once and each source resolved once. A row's [`State`] says whether the
//! variable is in sync, has drifted, lost its source, points at a load balancer without a
//! healthy target, or sits on a stage that no longer exists. A failed AWS call (throttling,
//! permissions, an unreachable endpoint) makes its rows [`State::Failed`], saying what failed:
//! a row never claims a source is missing because it could not be asked, and one row that
//! cannot be checked does not hide the others.

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
    /// The row could not be checked (an AWS call failed); the note says which and why.
    Failed,
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
            State::Failed => "failed",
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
    /// What stagewire last wrote, and when, as the registry keeps it.
    pub last_write: Option<LastWrite>,
    /// The last error the re-sync recorded for this variable.
    pub last_error: Option<String>,
    /// When the re-sync last checked this variable (RFC 3339, UTC).
    pub checked_at: Option<String>,
}

/// A value stagewire wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastWrite {
    pub value: Option<String>,
    /// RFC 3339, UTC.
    pub at: Option<String>,
}

impl LastWrite {
    /// What the registry keeps of the last write of `record`.
    pub fn of_record(record: &Record) -> Option<Self> {
        (record.value.is_some() || record.written_at.is_some()).then(|| LastWrite {
            value: record.value.clone(),
            at: record.written_at.map(utc),
        })
    }
}

/// Epoch milliseconds as RFC 3339 in UTC, to the second (`2026-12-02T05:43:31Z`).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
/// ([`crate::resync::plans`]), with the health of values already in place. A stage that cannot
/// be read, a source that cannot be asked, fail their own rows ([`State::Failed`]) only.
pub async fn rows(ports: &Ports, records: Vec<Record>) -> Result<Vec<Row>, StatusError> {
    let mut resolver = Resolver::new(ports);
    let mut out = Vec::new();
    let plans = match crate::resync::plans(ports, &mut resolver, records.clone()).await {
        Ok(plans) => plans,
        // Again stage by stage, so that only the rows of the unreadable stages fail.
        Err(_) => per_stage(ports, &mut resolver, records, &mut out).await,
    };
    let mut rights = crate::resync::rights::Rights::default();
    for plan in plans {
        for p in plan.variables {
            let record = p.record.clone();
            let denied = match rights.check(ports, &p.record).await {
                Ok(denied) => denied.err(),
                Err(source) => {
                    let e = StageUnreadable {
                        stage: plan.stage.clone(),
                        source,
                    };
                    out.push(failed_row(&record, &e));
                    continue;
                }
            };
            let mut r = match row(&mut resolver, &plan.stage, p).await {
                Ok(r) => r,
                Err(e) => {
                    out.push(failed_row(&record, &e));
                    continue;
                }
            };
            if let Some(denied) = denied {
                r.state = State::Unauthorized;
                r.note = Some(format!(
                    "the re-sync no longer updates this variable: {denied}"
                ));
            }
            out.push(r);
        }
    }
    out.sort_by(|a, b| (&a.api, &a.stage, &a.variable).cmp(&(&b.api, &b.stage, &b.variable)));
    Ok(out)
}

/// The plans of the stages that can be read; a failed row for each record of the others.
async fn per_stage<'a>(
    ports: &'a Ports,
    resolver: &mut Resolver<'a>,
    records: Vec<Record>,
    failed: &mut Vec<Row>,
) -> Vec<crate::plan::stage::StagePlan> {
    let mut by_stage: std::collections::BTreeMap<StageRef, Vec<Record>> = Default::default();
    for r in records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    let mut plans = Vec::new();
    for (_, records) in by_stage {
        match crate::resync::plans(ports, resolver, records.clone()).await {
            Ok(p) => plans.extend(p),
            Err(e) => failed.extend(records.iter().map(|r| failed_row(r, &e))),
        }
    }
    plans
}

/// The row of a record that could not be checked: what is known from the registry, and why.
fn failed_row(record: &Record, error: &dyn std::error::Error) -> Row {
    let mut note = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !note.contains(&text) {
            note.push_str(&format!(": {text}"));
        }
        cause = c.source();
    }
    base_row(record, State::Failed, None, None, Some(note))
}

fn base_row(
    record: &Record,
    state: State,
    live: Option<String>,
    resolved: Option<String>,
    note: Option<String>,
) -> Row {
    let stage = &record.stage;
    Row {
        api: format!("{}:{}", stage.kind.as_str(), stage.api_id),
        kind: stage.kind,
        api_id: stage.api_id.clone(),
        stage: stage.stage.clone(),
        variable: record.variable.clone(),
        source: record.source.to_string(),
        source_spec: record.source.clone(),
        owner: record.owner.to_string(),
        live,
        resolved,
        state,
        note,
        deferred: false,
        load_balancer: None,
        healthy: None,
        last_write: LastWrite::of_record(record),
        last_error: record.last_error.clone(),
        checked_at: record.checked_at.map(utc),
    }
}

/// The state, the value and the note a row shows for a planned action (other than a failed
/// read, which the caller reports).
fn shown(
    stage: &StageRef,
    action: Action,
    current: &Option<String>,
) -> (State, Option<String>, Option<String>) {
    match action {
        Action::InSync => (State::InSync, current.clone(), None),
        Action::Write { to, .. } => {
            let note = current
                .is_none()
                .then(|| "variable absent from the stage".to_string());
            (State::Drifted, Some(to), note)
        }
        ref deferred @ Action::Defer { ref to, .. } => {
            (State::Drifted, Some(to.clone()), deferred.deferral())
        }
        Action::Refused { to, broken } => (
            State::Drifted,
            Some(to),
            Some(format!("switch refused: {broken}")),
        ),
        Action::Unresolved(e) => (State::SourceMissing, None, Some(e.to_string())),
        // Reported by the caller as the failed read it is.
        Action::Unchecked { to, .. } => (State::Drifted, Some(to), None),
        Action::StageMissing => (
            State::StageMissing,
            None,
            Some(format!("{stage} does not exist")),
        ),
    }
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
        Action::Unresolved(e @ ResolveError::Aws(_)) => return Err(resolve_err(e)),
        Action::Unchecked { cause, .. } => return Err(resolve_err(cause)),
        action => shown(stage, action, &p.current),
    };
    // The health of the value the row shows: the new one's is known from the plan; a value
    // already in place is looked up the same way (by DNS name, whatever the source).
    let serving = match (&p.serving, state, &p.current) {
        (Some(s), _, _) => Some(s.clone()),
        (None, State::InSync, Some(value)) => {
            let link = record.source.may_give_link_id();
            let serving = resolver.target_of(&at, value, None, link).await;
            serving.map_err(resolve_err)?
        }
        _ => None,
    };
    let (state, note) = match (&serving, state) {
        (Some(s), State::InSync) if !s.serves() => (State::Unhealthy, Some(unhealthy(s))),
        (_, state) => (state, note),
    };
    Ok(Row {
        deferred,
        load_balancer: serving.as_ref().map(|s| s.name.clone()),
        healthy: serving.map(|s| s.serves()),
        ..base_row(&record, state, p.current, resolved, note)
    })
}

/// Why a target in place does not serve: its load balancer has no healthy target, or its VPC
/// link is not `AVAILABLE`.
fn unhealthy(s: &Serving) -> String {
    match &s.link {
        None => format!("load balancer {} has no healthy target", s.name),
        Some(l) if !s.healthy && l.status == crate::domain::LinkStatus::Available => format!(
            "the load balancer of VPC link {} has no healthy target",
            s.name
        ),
        Some(l) => format!(
            "VPC link {} is {}: {}",
            s.name,
            l.status,
            l.message.as_deref().unwrap_or("")
        ),
    }
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
            last_write: None,
            last_error: None,
            checked_at: None,
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_795_671_811_000), "2026-11-26T05:43:31Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
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
        let record = crate::memory::record(
            StageRef::new(ApiKind::Rest, "abc", "prod"),
            "v",
            Source::Literal { value: "x".into() },
        );
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

    #[tokio::test]
    async fn a_bound_link_shows_its_state_and_a_held_move_says_why() {
        use crate::domain::{BindingSpec, LinkStatus, StageRef};
        let world = crate::memory::World::new();
        let (lb1, lb2) = {
            let mut s = world.state();
            (s.add_load_balancer("lb1", 1), s.add_load_balancer("lb2", 1))
        };
        let link = |lb: &crate::ports::LoadBalancer, id: &str, status| {
            world
                .state()
                .add_rest_link(id, lb.arn.as_ref().unwrap(), status);
        };
        link(&lb1, "l1", LinkStatus::Available);
        let ports = world.ports();
        let of = |lb: &str| Source::VpcLinkFor {
            target: Box::new(Source::LoadBalancer {
                name: lb.into(),
                at: Default::default(),
            }),
        };
        let spec = |lb: &str| BindingSpec {
            stage: StageRef::new(ApiKind::Rest, "api", "prod"),
            create_stage: true,
            variables: [("vpcLinkId".to_string(), of(lb))].into(),
        };
        let first = spec("lb1");
        let request = crate::binding::Request::test("stack/A", "B", &first, 1);
        let bound = crate::binding::create(&ports, &request, crate::binding::trusted());
        bound.await.unwrap();
        let show = || async {
            rows(&ports, ports.registry.all().await.unwrap())
                .await
                .unwrap()
        };
        let r = &show().await[0];
        assert_eq!((r.state, r.healthy), (State::InSync, Some(true)));
        assert_eq!(r.load_balancer.as_deref(), Some("l1"));

        world.state().set_link_status("l1", LinkStatus::Inactive);
        let r = &show().await[0];
        assert_eq!(r.state, State::Unhealthy);
        assert_eq!(
            r.note.as_deref(),
            Some("VPC link l1 is INACTIVE: link l1 is INACTIVE")
        );

        // The source now names lb2, whose link is PENDING, while l1 serves again.
        world.state().set_link_status("l1", LinkStatus::Available);
        link(&lb2, "l2", LinkStatus::Pending);
        let mut record = ports.registry.all().await.unwrap().remove(0);
        record.source = of("lb2");
        let r = &rows(&ports, vec![record]).await.unwrap()[0];
        assert!(r.deferred && r.state == State::Drifted, "{r:?}");
        assert_eq!(
            r.note.as_deref(),
            Some("VPC link l2 is PENDING; keeping l1, which serves")
        );
    }
}

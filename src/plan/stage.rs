//! The re-sync's plan for one stage, without I/O: from the stage's records, its live variables,
//! what each source resolves to and what is known of the load balancers behind the values, the
//! one patch to write, what to hold back (and why), what cannot be resolved, and what the
//! registry should record for each variable.
//!
//! Whether a variable may move is [`crate::plan::switch`]'s to decide; this plan only asks it,
//! per variable and then for the variables of each binding together ([`switch::together`]):
//! the changing variables of one binding (its host name and its VPC link id) are written in
//! this stage's one patch only when every one of them may move.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::StageRef;
use crate::plan::resolved::{ResolveError, Resolved};
use crate::plan::switch::{self, Decision};
use crate::plan::{patch, Release};
use crate::ports::{Record, StagePatch, SyncUpdate};

/// A load balancer behind a value, and whether it has a healthy target.
pub use crate::plan::switch::Target as Serving;

/// The targets (load balancers, VPC links) behind the new and the current value of a variable
/// about to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gate {
    /// The load balancer the new value is the DNS name of, or the VPC link it is the id of.
    pub new: Option<Serving>,
    /// The load balancer or VPC link behind the current value, while it exists. Only looked
    /// up when the switch rule could hold (the new one does not serve).
    pub current: Option<Serving>,
}

/// What the re-sync learned about one registered variable.
#[derive(Debug, Clone)]
pub struct Observed {
    pub record: Record,
    /// What the source resolves to now.
    pub resolved: Result<Resolved, ResolveError>,
    /// What is known of the load balancers behind the values; the default when the value
    /// would not change.
    pub gate: Result<Gate, ResolveError>,
}

/// What the re-sync does with one variable.
#[derive(Debug, Clone)]
pub enum Action {
    /// The live value is what the source resolves to.
    InSync,
    /// Write the resolved value.
    Write { from: Option<String>, to: String },
    /// Keep the current value: the switch rule holds (the new target does not serve while the
    /// current one does), for this variable or another of its binding.
    Defer { to: String, held: switch::Held },
    /// Keep the current value: the new value is a VPC link that cannot serve (or another
    /// variable of the binding moves to one).
    Refused { to: String, broken: switch::Broken },
    /// The source has no value now; the current value is kept.
    Unresolved(ResolveError),
    /// The load balancers behind the values could not be checked; nothing is written.
    Unchecked { to: String, cause: ResolveError },
    /// The stage (or its API) does not exist.
    StageMissing,
}

impl Action {
    /// Why a switch is held back, as logged and recorded.
    pub fn deferral(&self) -> Option<String> {
        match self {
            Action::Defer { held, .. } => Some(held.to_string()),
            _ => None,
        }
    }
}

/// The plan of one variable.
#[derive(Debug, Clone)]
pub struct Planned {
    pub record: Record,
    /// The variable's value on the stage when planned.
    pub current: Option<String>,
    /// The load balancer behind the new value, when the value would change and one was found.
    pub serving: Option<Serving>,
    pub action: Action,
    /// What to record in the registry (conditional on the record's version), if anything.
    pub update: Option<SyncUpdate>,
}

/// The plan of one stage: one patch and one outcome per variable.
#[derive(Debug, Clone)]
pub struct StagePlan {
    pub stage: StageRef,
    pub patch: StagePatch,
    pub variables: Vec<Planned>,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::InSync => f.write_str("in sync"),
            Action::Write { from, to } => {
                write!(f, "write {} -> {to}", from.as_deref().unwrap_or("(absent)"))
            }
            Action::Defer { .. } => write!(f, "deferred: {}", self.deferral().unwrap_or_default()),
            Action::Refused { broken, .. } => write!(f, "refused: {broken}"),
            Action::Unresolved(e) => write!(f, "unresolved (value kept): {e}"),
            Action::Unchecked { cause, .. } => write!(f, "health check: {cause}"),
            Action::StageMissing => f.write_str("stage missing"),
        }
    }
}

/// Plan one existing stage whose variables are `live`.
pub fn plan(
    stage: &StageRef,
    live: &BTreeMap<String, String>,
    observed: Vec<Observed>,
    now: i64,
) -> StagePlan {
    let mut out = StagePlan {
        stage: stage.clone(),
        patch: StagePatch::default(),
        variables: Vec::with_capacity(observed.len()),
    };
    for o in observed {
        let (action, update) = variable(live, &o, now);
        if let Action::Write { to, .. } = &action {
            out.patch.set.insert(o.record.variable.clone(), to.clone());
        }
        out.variables.push(Planned {
            current: live.get(&o.record.variable).cloned(),
            serving: o.gate.as_ref().ok().and_then(|g| g.new.clone()),
            record: o.record,
            action,
            update,
        });
    }
    hold_together(&mut out, now);
    out
}

/// The switch rule's decision behind a planned action, for a variable that would change.
fn decision(action: &Action) -> Option<Decision> {
    match action {
        Action::Write { .. } => Some(Decision::Now),
        Action::Defer { held, .. } => Some(Decision::Hold(held.clone())),
        Action::Refused { broken, .. } => Some(Decision::Refuse(broken.clone())),
        _ => None,
    }
}

/// Each binding's changing variables, moved together: a write is held back (and taken out of
/// the patch) when another variable of its binding is held or refused.
fn hold_together(plan: &mut StagePlan, now: i64) {
    let mut owners: Vec<String> = plan
        .variables
        .iter()
        .map(|p| p.record.owner.key())
        .collect();
    owners.sort();
    owners.dedup();
    for owner in owners {
        let of_owner: Vec<usize> = (0..plan.variables.len())
            .filter(|&i| plan.variables[i].record.owner.key() == owner)
            .filter(|&i| decision(&plan.variables[i].action).is_some())
            .collect();
        let decisions = of_owner
            .iter()
            .filter_map(|&i| {
                let p = &plan.variables[i];
                Some((p.record.variable.clone(), decision(&p.action)?))
            })
            .collect();
        for (&i, (variable, d)) in of_owner.iter().zip(switch::together(decisions)) {
            let p = &mut plan.variables[i];
            let Action::Write { to, .. } = &p.action else {
                continue;
            };
            let to = to.clone();
            let (action, error) = match d {
                Decision::Now => continue,
                Decision::Hold(held) => {
                    let error = format!("switch deferred: {held}");
                    (Action::Defer { to, held }, error)
                }
                Decision::Refuse(broken) => {
                    let error = format!("switch refused: {broken}");
                    (Action::Refused { to, broken }, error)
                }
            };
            plan.patch.set.remove(&variable);
            p.update = error_update(&p.record, &error, now);
            p.action = action;
        }
    }
}

/// Plan a stage that does not exist (or whose API does not): nothing to write, the error
/// recorded once.
pub fn missing(stage: &StageRef, records: Vec<Record>, now: i64) -> StagePlan {
    let error = format!("{stage} does not exist");
    StagePlan {
        stage: stage.clone(),
        patch: StagePatch::default(),
        variables: records
            .into_iter()
            .map(|record| Planned {
                current: None,
                serving: None,
                update: error_update(&record, &error, now),
                record,
                action: Action::StageMissing,
            })
            .collect(),
    }
}

fn variable(
    live: &BTreeMap<String, String>,
    o: &Observed,
    now: i64,
) -> (Action, Option<SyncUpdate>) {
    let r = &o.record;
    let resolved = match &o.resolved {
        Ok(v) => v,
        Err(e) => {
            let error = format!("cannot resolve {}: {e}", r.source);
            return (Action::Unresolved(e.clone()), error_update(r, &error, now));
        }
    };
    let current = live.get(&r.variable);
    if current == Some(&resolved.value) {
        let stale = r.last_error.is_some()
            || r.value.as_ref() != Some(&resolved.value)
            || r.via != resolved.via();
        let update = stale.then(|| SyncUpdate {
            value: (r.value.as_ref() != Some(&resolved.value)).then(|| resolved.value.clone()),
            via: resolved.via(),
            error: None,
            at: now,
        });
        return (Action::InSync, update);
    }
    let to = resolved.value.clone();
    let gate = match &o.gate {
        Ok(gate) => gate,
        Err(cause) => {
            let cause = cause.clone();
            return (Action::Unchecked { to, cause }, None);
        }
    };
    match switch::decide(gate.current.as_ref(), gate.new.as_ref()) {
        Decision::Hold(held) => {
            let error = format!("switch deferred: {held}");
            (Action::Defer { to, held }, error_update(r, &error, now))
        }
        Decision::Refuse(broken) => {
            let error = format!("switch refused: {broken}");
            (Action::Refused { to, broken }, error_update(r, &error, now))
        }
        Decision::Now => {
            let update = SyncUpdate {
                value: Some(to.clone()),
                via: resolved.via(),
                error: None,
                at: now,
            };
            let from = current.cloned();
            (Action::Write { from, to }, Some(update))
        }
    }
}

/// Record an error, unless the record already says exactly that.
fn error_update(record: &Record, error: &str, at: i64) -> Option<SyncUpdate> {
    (record.last_error.as_deref() != Some(error)).then(|| SyncUpdate {
        value: None,
        via: None,
        error: Some(error.to_string()),
        at,
    })
}

/// Variables written by an invocation whose binding was deleted meanwhile must not outlive it:
/// the patch that removes those still holding what was written (the rule of [`patch`]).
pub fn orphans(
    live: &BTreeMap<String, String>,
    written: &BTreeMap<String, String>,
    still_bound: &[Record],
) -> StagePatch {
    let released: Vec<Release> = written
        .iter()
        .filter(|(v, _)| !still_bound.iter().any(|r| &&r.variable == v))
        .map(|(v, value)| Release {
            variable: v.clone(),
            written: Some(value.clone()),
        })
        .collect();
    patch(live, &BTreeMap::new(), &released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKind, Source};

    fn stage() -> StageRef {
        StageRef::new(ApiKind::Rest, "api", "prod")
    }

    fn record(value: &str, last_error: Option<&str>) -> Record {
        let source = Source::StackOutput {
            stack: "S".into(),
            output_key: "Dns".into(),
            at: Default::default(),
        };
        Record {
            value: Some(value.into()),
            written_at: Some(1),
            last_error: last_error.map(str::to_owned),
            version: 3,
            ..crate::memory::record(stage(), "elb", source)
        }
    }

    fn observed(record: Record, value: &str, gate: Gate) -> Observed {
        Observed {
            record,
            resolved: Ok(Resolved {
                value: value.into(),
                load_balancer: None,
                at: Default::default(),
                may_be_link: false,
            }),
            gate: Ok(gate),
        }
    }

    fn live(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("elb".to_string(), value.to_string())])
    }

    fn serving(name: &str, healthy: bool) -> Option<Serving> {
        Some(Serving::new(name, healthy))
    }

    /// The plan of the stage while its variable holds `a`.
    fn planned(o: Observed) -> StagePlan {
        plan(&stage(), &live("a"), vec![o], 9)
    }

    /// The error the plan records for its variable.
    fn recorded_error(p: &StagePlan) -> String {
        let update = p.variables[0].update.as_ref().expect("an update");
        update.error.clone().expect("an error")
    }

    /// A change from `a` to `b`, through `gate`.
    fn change(gate: Gate) -> StagePlan {
        planned(observed(record("a", None), "b", gate))
    }

    #[test]
    fn in_sync_writes_nothing_and_records_only_what_is_stale() {
        let p = planned(observed(record("a", None), "a", Gate::default()));
        assert!(p.patch.is_empty());
        assert!(matches!(p.variables[0].action, Action::InSync));
        assert!(p.variables[0].update.is_none());

        // A stale error or value is cleared, once.
        let p = planned(observed(record("old", Some("x")), "a", Gate::default()));
        let u = p.variables[0].update.as_ref().unwrap();
        assert_eq!((u.value.as_deref(), u.error.as_deref()), (Some("a"), None));
    }

    #[test]
    fn a_changed_source_is_written_in_one_patch() {
        let gate = Gate {
            new: serving("new", true),
            current: None,
        };
        let p = change(gate);
        assert_eq!(
            p.patch.set,
            BTreeMap::from([("elb".to_string(), "b".to_string())])
        );
        assert!(
            matches!(&p.variables[0].action, Action::Write { from: Some(f), to } if f == "a" && to == "b")
        );
        assert_eq!(
            p.variables[0].update.as_ref().unwrap().value.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_switch_to_a_load_balancer_without_healthy_target_waits_while_the_current_one_exists() {
        let held = Gate {
            new: serving("new", false),
            current: serving("old", true),
        };
        let p = change(held.clone());
        assert!(p.patch.is_empty());
        let reason = p.variables[0].action.deferral().unwrap();
        assert!(
            reason.contains("new has no healthy target") && reason.contains("keeping old"),
            "{reason}"
        );
        let error = recorded_error(&p);
        assert!(error.starts_with("switch deferred"), "{error}");

        // The same deferral is not recorded again.
        let again = planned(observed(record("a", Some(&error)), "b", held));
        assert!(again.variables[0].update.is_none());

        // With the current load balancer serving nobody, holding protects nobody: it moves.
        let dead = Gate {
            new: serving("new", false),
            current: serving("old", false),
        };
        let p = change(dead);
        assert_eq!(p.patch.set.get("elb").map(String::as_str), Some("b"));

        // With the current load balancer gone, the switch happens anyway.
        let gone = Gate {
            new: serving("new", false),
            current: None,
        };
        let p = change(gone);
        assert_eq!(p.patch.set.get("elb").map(String::as_str), Some("b"));
    }

    #[test]
    fn an_unresolved_source_or_an_unchecked_gate_keeps_the_value() {
        let mut o = observed(record("a", None), "b", Gate::default());
        o.resolved = Err(ResolveError::StackNotFound("S".into()));
        let p = planned(o);
        assert!(p.patch.is_empty());
        assert!(matches!(p.variables[0].action, Action::Unresolved(_)));
        assert!(recorded_error(&p).contains("stack S does not exist"));

        let mut o = observed(record("a", None), "b", Gate::default());
        o.gate = Err(ResolveError::LoadBalancerNotFound("x".into()));
        let p = planned(o);
        assert!(p.patch.is_empty());
        assert!(matches!(p.variables[0].action, Action::Unchecked { .. }));
        assert!(p.variables[0].update.is_none());
    }

    #[test]
    fn a_missing_stage_records_its_error_once() {
        let p = missing(&stage(), vec![record("a", None)], 9);
        assert!(p.patch.is_empty());
        let error = recorded_error(&p);
        assert_eq!(error, "stage prod of REST API api does not exist");
        let p = missing(&stage(), vec![record("a", Some(&error))], 9);
        assert!(p.variables[0].update.is_none());
    }

    #[test]
    fn orphans_are_removed_only_while_they_hold_what_was_written() {
        let live = BTreeMap::from([
            ("mine".to_string(), "w".to_string()),
            ("changed".to_string(), "by-hand".to_string()),
            ("bound".to_string(), "w".to_string()),
        ]);
        let written = BTreeMap::from([
            ("mine".to_string(), "w".to_string()),
            ("changed".to_string(), "w".to_string()),
            ("bound".to_string(), "w".to_string()),
        ]);
        let mut still = record("w", None);
        still.variable = "bound".into();
        let p = orphans(&live, &written, &[still]);
        assert_eq!(p.remove, vec!["mine".to_string()]);
        assert!(p.set.is_empty());
    }

    #[test]
    fn the_variables_of_one_binding_move_together_and_others_do_not_wait() {
        use crate::domain::LinkStatus;
        use crate::plan::switch::LinkState;
        let named = |variable: &str, logical_id: &str| {
            let mut r = record("a", None);
            r.variable = variable.into();
            r.owner.logical_id = logical_id.into();
            r
        };
        let link = |status: &str| {
            let state = LinkState {
                status: LinkStatus::parse(status),
                message: Some(format!("the link is {status}")),
                load_balancer: Some("nlb2".into()),
            };
            Some(Serving::link("l2", state, true))
        };
        let live = crate::memory::vars(&[("host", "a"), ("vpcLinkId", "a"), ("other", "a")]);
        let observe = |link_status: &str| {
            vec![
                observed(
                    named("host", "B"),
                    "b",
                    Gate {
                        new: serving("nlb2", true),
                        current: None,
                    },
                ),
                observed(
                    named("vpcLinkId", "B"),
                    "b",
                    Gate {
                        new: link(link_status),
                        current: serving("l1", true),
                    },
                ),
                // Another binding of the same stage.
                observed(named("other", "C"), "b", Gate::default()),
            ]
        };
        // The link is PENDING: the host name waits with it; the other binding moves.
        let p = plan(&stage(), &live, observe("PENDING"), 9);
        assert_eq!(p.patch.set, crate::memory::vars(&[("other", "b")]));
        let Action::Defer { held, .. } = &p.variables[0].action else {
            panic!("{:?}", p.variables[0].action);
        };
        assert_eq!(
            held.to_string(),
            "moves with vpcLinkId, held: VPC link l2 is PENDING; keeping l1, which serves"
        );
        let error = p.variables[0]
            .update
            .as_ref()
            .unwrap()
            .error
            .clone()
            .unwrap();
        assert!(
            error.starts_with("switch deferred: moves with vpcLinkId"),
            "{error}"
        );
        assert!(matches!(p.variables[1].action, Action::Defer { .. }));
        // AVAILABLE: both move, in the one patch.
        let p = plan(&stage(), &live, observe("AVAILABLE"), 9);
        assert_eq!(
            p.patch.set,
            crate::memory::vars(&[("host", "b"), ("vpcLinkId", "b"), ("other", "b")])
        );
        // FAILED: neither moves, both record the link's own message.
        let p = plan(&stage(), &live, observe("FAILED"), 9);
        assert_eq!(p.patch.set, crate::memory::vars(&[("other", "b")]));
        for v in &p.variables[..2] {
            let error = v.update.as_ref().unwrap().error.clone().unwrap();
            assert_eq!(
                error,
                "switch refused: VPC link l2 is FAILED: the link is FAILED"
            );
            assert!(matches!(v.action, Action::Refused { .. }));
        }
    }
}

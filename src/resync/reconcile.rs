//! Reconcile: bring every record's variable in line with its source. Each source is resolved
//! once and each stage read once (one `GetStages` per API when several of its stages are
//! affected); [`crate::plan::stage`] decides, this module only gathers the facts and applies
//! the plan: the registry records of the variables to write move first, each conditional on
//! the version planned from, then one `UpdateStage` per stage. A concurrent invocation that
//! recorded first makes this one re-read and re-resolve before it writes anything, so an older
//! value is never written over a newer one; a variable written here whose binding was deleted
//! meanwhile is removed again on the retry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::rights::Rights;
use super::summary::{Change, Issue, IssueKind, Retryable, Summary};
use crate::domain::{ApiKind, StageRef};
use crate::plan::stage::{self as stage_plan, Action, StagePlan};
use crate::ports::{AwsError, LiveStage, Record};
use crate::resolve::Resolver;
use crate::Ports;

/// Attempts per stage while concurrent writers keep winning.
const ATTEMPTS: usize = 4;

/// Bring every record's variable in line with its source.
pub async fn reconcile(ports: &Ports, records: Vec<Record>) -> Summary {
    let mut summary = Summary::default();
    let mut by_stage: BTreeMap<StageRef, Vec<Record>> = BTreeMap::new();
    let mut rights = Rights::default();
    for r in records {
        // Only bindings whose right to the API still holds are updated.
        match rights.check(ports, &r).await {
            Ok(Ok(())) => by_stage.entry(r.stage.clone()).or_default().push(r),
            Ok(Err(denied)) => {
                tracing::warn!(stage = %r.stage, variable = %r.variable, owner = %r.owner, reason = %denied, "binding no longer authorized: not updated");
                summary.bindings_checked += 1;
                summary.issues.push(Issue {
                    stage: r.stage.to_string(),
                    variable: Some(r.variable.clone()),
                    kind: IssueKind::Unauthorized,
                    cause: format!("not updated, the binding is no longer authorized: {denied}"),
                    retryable: false,
                });
            }
            Err(e) => {
                summary.bindings_checked += 1;
                summary.fail(&r.stage, Some(&r.variable), &e);
            }
        }
    }
    let mut prefetched = prefetch(ports, &by_stage).await;
    let mut resolver = Resolver::new(ports);
    for (stage, records) in by_stage {
        summary.bindings_checked += records.len();
        let known = prefetched.remove(&stage);
        sync_stage(ports, &mut resolver, &stage, records, known, &mut summary).await;
    }
    summary
}

/// A stage that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read {stage}: {source}")]
pub struct StageUnreadable {
    pub stage: StageRef,
    #[source]
    pub source: AwsError,
}

/// The plan of every stage of these records, as a re-sync would make it now; nothing written.
pub async fn plans<'a>(
    ports: &'a Ports,
    resolver: &mut Resolver<'a>,
    records: Vec<Record>,
) -> Result<Vec<StagePlan>, StageUnreadable> {
    let mut by_stage: BTreeMap<StageRef, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    let mut prefetched = prefetch(ports, &by_stage).await;
    let mut out = Vec::new();
    for (stage, records) in by_stage {
        let live = match prefetched.remove(&stage) {
            Some(known) => known,
            None => ports
                .stages(stage.kind)
                .get(&stage)
                .await
                .map_err(|source| StageUnreadable {
                    stage: stage.clone(),
                    source,
                })?,
        };
        out.push(plan(resolver, &stage, live.as_ref(), records).await);
    }
    Ok(out)
}

/// Gather what the plan needs and make it.
async fn plan(
    resolver: &mut Resolver<'_>,
    stage: &StageRef,
    live: Option<&LiveStage>,
    records: Vec<Record>,
) -> StagePlan {
    let now = crate::now_ms();
    let Some(live) = live else {
        return stage_plan::missing(stage, records, now);
    };
    let mut observed = Vec::with_capacity(records.len());
    for r in records {
        let current = live.variables.get(&r.variable).map(String::as_str);
        observed.push(resolver.observe(r, current).await);
    }
    stage_plan::plan(stage, &live.variables, observed, now)
}

/// Read in one call per API the stages of every API with several affected stages (a full
/// reconcile of a thousand stages over a hundred APIs makes a hundred reads, not a thousand).
async fn prefetch(
    ports: &Ports,
    by_stage: &BTreeMap<StageRef, Vec<Record>>,
) -> HashMap<StageRef, Option<LiveStage>> {
    let mut per_api: BTreeMap<(ApiKind, &str), Vec<&StageRef>> = BTreeMap::new();
    for stage in by_stage.keys() {
        per_api
            .entry((stage.kind, stage.api_id.as_str()))
            .or_default()
            .push(stage);
    }
    let mut known = HashMap::new();
    for ((kind, api_id), stages) in per_api {
        if stages.len() < 2 {
            continue;
        }
        match ports.stages(kind).list(kind, api_id).await {
            Ok(Some(mut all)) => {
                for stage in stages {
                    known.insert(stage.clone(), all.remove(&stage.stage));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(api = api_id, error = %e, "listing stages failed: reading them one by one");
            }
        }
    }
    known
}

/// Writers kept changing the stage's records faster than this invocation could finish.
#[derive(Debug)]
struct Contended;

impl std::fmt::Display for Contended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "still contended after {ATTEMPTS} attempts")
    }
}

impl Retryable for Contended {
    fn retryable(&self) -> bool {
        true
    }
}

/// One stage, retried while concurrent writers win the registry's conditional writes.
async fn sync_stage<'a>(
    ports: &'a Ports,
    resolver: &mut Resolver<'a>,
    stage: &StageRef,
    mut records: Vec<Record>,
    mut known: Option<Option<LiveStage>>,
    summary: &mut Summary,
) {
    let variables: BTreeSet<String> = records.iter().map(|r| r.variable.clone()).collect();
    let planned = records.clone();
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    for attempt in 1..=ATTEMPTS {
        // The first attempt may use the stage as listed; a retry reads it afresh.
        let attempt_ended = apply(
            ports,
            resolver,
            stage,
            known.take(),
            &records,
            summary,
            &mut written,
        )
        .await;
        if attempt_ended == Attempt::Settled {
            return;
        }
        if attempt == ATTEMPTS {
            summary.fail(stage, None, &Contended);
            return;
        }
        // Another invocation wrote first: read its result and resolve afresh.
        *resolver = Resolver::new(ports);
        records = match ports.registry.by_stage(stage).await {
            Ok(all) => all
                .into_iter()
                .filter(|r| variables.contains(&r.variable))
                .collect(),
            Err(e) => {
                summary.fail(stage, None, &e);
                return;
            }
        };
        undo_orphans(ports, stage, &planned, &records, &written, summary).await;
    }
}

/// How one attempt at a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// Done, or failed in a way the summary reports: no retry here.
    Settled,
    /// A concurrent writer recorded first: re-read the records and try again.
    Lost,
}

/// One attempt: plan, write the stage, record the outcome.
async fn apply(
    ports: &Ports,
    resolver: &mut Resolver<'_>,
    stage: &StageRef,
    known: Option<Option<LiveStage>>,
    records: &[Record],
    summary: &mut Summary,
    written: &mut BTreeMap<String, String>,
) -> Attempt {
    let live = match known {
        Some(k) => k,
        None => match ports.stages(stage.kind).get(stage).await {
            Ok(l) => l,
            Err(e) => {
                summary.fail(stage, None, &e);
                return Attempt::Settled;
            }
        },
    };
    let plan = plan(resolver, stage, live.as_ref(), records.to_vec()).await;
    report(&plan, summary);
    if !plan.patch.is_empty() {
        match write(ports, &plan, summary).await {
            Written::Yes => {}
            Written::Lost => return Attempt::Lost,
            Written::Failed => return Attempt::Settled,
        }
        written.extend(plan.patch.set.clone());
        // A binding deleted between the registry write and the stage write has released its
        // records and found nothing of this value to remove: the variable goes again here.
        match ports.registry.by_stage(stage).await {
            Ok(still) => {
                undo_orphans(ports, stage, records, &still, &plan.patch.set, summary).await
            }
            Err(e) => summary.fail(stage, None, &e),
        }
    }
    record_the_rest(ports, &plan, summary).await
}

/// Whether a plan's patch reached the stage.
enum Written {
    Yes,
    /// A concurrent writer recorded first; nothing was written.
    Lost,
    /// The stage write failed (reported); the records claimed for it were restored.
    Failed,
}

/// The registry first: each written variable's record moves to its new value on the condition
/// that its version is the one planned from. A concurrent invocation that recorded first (with a
/// value resolved later) wins, and this one re-reads and re-resolves without writing the stage,
/// so an older value never lands after a newer. Then the one stage write.
async fn write(ports: &Ports, plan: &StagePlan, summary: &mut Summary) -> Written {
    let stage = &plan.stage;
    let mut claimed = Vec::new();
    let mut lost = false;
    for p in &plan.variables {
        let (Action::Write { .. }, Some(update)) = (&p.action, &p.update) else {
            continue;
        };
        match ports.registry.record_sync(&p.record, update).await {
            Ok(true) => claimed.push(p),
            Ok(false) => lost = true,
            Err(e) => {
                summary.fail(stage, Some(&p.record.variable), &e);
                lost = true;
            }
        }
    }
    if lost {
        return Written::Lost;
    }
    if let Err(e) = ports.stages(stage.kind).update(stage, &plan.patch).await {
        tracing::error!(%stage, error = %e, "stage update failed");
        summary.fail(stage, None, &e);
        restore(ports, &claimed, &e).await;
        return Written::Failed;
    }
    for p in &plan.variables {
        if let Action::Write { from, to } = &p.action {
            tracing::info!(%stage, variable = %p.record.variable, from = from.as_deref().unwrap_or(""), %to, "variable re-pointed");
            summary.changed.push(Change {
                stage: stage.to_string(),
                variable: p.record.variable.clone(),
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    Written::Yes
}

/// Record what the plan says of the variables not written (errors cleared or noted, values
/// found in sync), each conditional on its version.
async fn record_the_rest(ports: &Ports, plan: &StagePlan, summary: &mut Summary) -> Attempt {
    let mut attempt = Attempt::Settled;
    for p in &plan.variables {
        if matches!(p.action, Action::Write { .. }) && !plan.patch.is_empty() {
            continue;
        }
        let Some(update) = &p.update else { continue };
        match ports.registry.record_sync(&p.record, update).await {
            Ok(true) => {}
            Ok(false) => attempt = Attempt::Lost,
            Err(e) => summary.fail(&plan.stage, Some(&p.record.variable), &e),
        }
    }
    attempt
}

/// After a failed stage write: the records claimed for it go back to the value they held, with
/// the error (best effort; the next re-sync repairs whatever this leaves).
async fn restore(ports: &Ports, claimed: &[&stage_plan::Planned], error: &AwsError) {
    for p in claimed {
        let Some(update) = &p.update else { continue };
        let mut record = p.record.clone();
        record.version += 1;
        let back = crate::ports::SyncUpdate {
            value: p.record.value.clone(),
            via: p.record.via.clone(),
            error: Some(error.to_string()),
            at: update.at,
        };
        if let Err(e) = ports.registry.record_sync(&record, &back).await {
            tracing::warn!(variable = %p.record.variable, error = %e, "could not restore a record after a failed stage write");
        }
    }
}

/// Log and count what the plan holds back.
fn report(plan: &StagePlan, summary: &mut Summary) {
    let stage = &plan.stage;
    let issue = |variable: Option<&str>, kind: IssueKind, cause: String, retryable: bool| Issue {
        stage: stage.to_string(),
        variable: variable.map(str::to_owned),
        kind,
        cause,
        retryable,
    };
    let mut missing = false;
    for p in &plan.variables {
        let variable = p.record.variable.as_str();
        match &p.action {
            Action::InSync | Action::Write { .. } => {}
            Action::Unresolved(e) => {
                tracing::warn!(%stage, variable, error = %e, source = %p.record.source, "source unresolved: value kept");
                summary.issues.push(issue(
                    Some(variable),
                    IssueKind::Unresolved,
                    e.to_string(),
                    e.retryable(),
                ));
            }
            Action::Defer { .. } => {
                let reason = p.action.deferral().unwrap_or_default();
                tracing::warn!(%stage, variable, policy = "defer", %reason, "switch deferred");
                summary
                    .issues
                    .push(issue(Some(variable), IssueKind::Deferred, reason, true));
            }
            Action::Refused { broken, .. } => {
                let cause = format!("switch refused: {broken}");
                summary
                    .issues
                    .push(issue(Some(variable), IssueKind::Failed, cause, false));
            }
            Action::Unchecked { cause, .. } => {
                summary.issues.push(issue(
                    Some(variable),
                    IssueKind::Failed,
                    format!("health check: {cause}"),
                    cause.retryable(),
                ));
            }
            Action::StageMissing => missing = true,
        }
    }
    if missing {
        summary.issues.push(issue(
            None,
            IssueKind::StageMissing,
            "does not exist".into(),
            false,
        ));
    }
}

/// A variable written here (`written`) whose binding was deleted meanwhile (no record of it
/// `still` in the registry) must not outlive it. Nothing is removed on that evidence alone: the
/// stage is read again, only variables still holding the value written here go, and the stage
/// goes only when one of the `planned` bindings created it and nothing lives there any more.
async fn undo_orphans(
    ports: &Ports,
    stage: &StageRef,
    planned: &[Record],
    still: &[Record],
    written: &BTreeMap<String, String>,
    summary: &mut Summary,
) {
    if written
        .keys()
        .all(|v| still.iter().any(|r| &r.variable == v))
    {
        return;
    }
    let stages = ports.stages(stage.kind);
    let live = match stages.get(stage).await {
        Ok(Some(live)) => live,
        Ok(None) => return,
        Err(e) => return summary.fail(stage, None, &e),
    };
    let patch = stage_plan::orphans(&live.variables, written, still);
    if patch.is_empty() {
        return;
    }
    tracing::warn!(%stage, variables = ?patch.remove, "bindings deleted meanwhile: their variables go");
    if let Err(e) = stages.update(stage, &patch).await {
        return summary.fail(stage, None, &e);
    }
    let gone: Vec<&Record> = planned
        .iter()
        .filter(|r| patch.remove.contains(&r.variable))
        .collect();
    if let Err(e) = crate::binding::delete_stage_left_empty(ports, stage, &gone).await {
        summary.fail(stage, None, &e);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::binding;
    use crate::domain::{BindingSpec, Source};
    use crate::memory::World;

    fn stage() -> StageRef {
        StageRef::new(ApiKind::Rest, "api", "prod")
    }

    /// A stack `S` whose output `Dns` is the DNS name of load balancer `lb1` (healthy), and a
    /// binding of `prod`'s `elb` to it.
    async fn bound() -> (World, Ports) {
        let world = World::new();
        {
            let mut s = world.state();
            let lb1 = s.add_load_balancer("lb1", 1);
            s.stacks.insert(
                "S".into(),
                BTreeMap::from([("Dns".to_string(), lb1.dns_name.unwrap())]),
            );
        }
        let ports = world.ports();
        let spec = BindingSpec {
            stage: stage(),
            create_stage: true,
            variables: BTreeMap::from([(
                "elb".to_string(),
                Source::StackOutput {
                    stack: "S".into(),
                    output_key: "Dns".into(),
                    at: Default::default(),
                },
            )]),
        };
        binding::create(
            &ports,
            &binding::Request::test("stack/A", "Binding", &spec, 1),
            binding::trusted(),
        )
        .await
        .unwrap();
        (world, ports)
    }

    /// Point the stack's output at a new load balancer with `healthy` healthy targets.
    fn replace(world: &World, name: &str, healthy: usize) -> String {
        let mut s = world.state();
        let dns = s.add_load_balancer(name, healthy).dns_name.unwrap();
        s.stacks
            .get_mut("S")
            .unwrap()
            .insert("Dns".into(), dns.clone());
        dns
    }

    fn var(world: &World) -> Option<String> {
        world.state().stages[&stage()].get("elb").cloned()
    }

    async fn records(ports: &Ports) -> Vec<Record> {
        ports.registry.all().await.unwrap()
    }

    #[tokio::test]
    async fn a_replaced_source_is_written_once_and_recorded() {
        let (world, ports) = bound().await;
        let dns = replace(&world, "lb2", 1);
        let before = records(&ports).await[0].version;

        let summary = reconcile(&ports, records(&ports).await).await;

        assert_eq!(summary.changed.len(), 1, "{summary:?}");
        assert!(summary.issues.is_empty(), "{summary:?}");
        assert_eq!(var(&world), Some(dns.clone()));
        let r = &records(&ports).await[0];
        assert_eq!(
            (r.value.as_deref(), r.version),
            (Some(dns.as_str()), before + 1)
        );
        // A second run finds nothing to do and writes nothing.
        let calls = world.state().count(crate::ports::op::UPDATE_STAGE);
        let again = reconcile(&ports, records(&ports).await).await;
        assert!(
            again.changed.is_empty() && again.issues.is_empty(),
            "{again:?}"
        );
        assert_eq!(world.state().count(crate::ports::op::UPDATE_STAGE), calls);
        assert_eq!(records(&ports).await[0].version, before + 1);
    }

    #[tokio::test]
    async fn a_switch_waits_for_a_healthy_target_while_the_old_load_balancer_exists() {
        let (world, ports) = bound().await;
        let old = var(&world);
        let dns = replace(&world, "lb2", 0);

        let held = reconcile(&ports, records(&ports).await).await;
        assert_eq!(held.deferred().len(), 1, "{held:?}");
        assert!(held.deferred()[0].retryable);
        assert_eq!(var(&world), old);
        assert!(records(&ports).await[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("deferred"));

        world.state().remove_load_balancer("lb1");
        let switched = reconcile(&ports, records(&ports).await).await;
        assert_eq!(switched.changed.len(), 1, "{switched:?}");
        assert_eq!(var(&world), Some(dns));
        assert_eq!(records(&ports).await[0].last_error, None);
    }

    #[tokio::test]
    async fn a_current_load_balancer_that_serves_nobody_does_not_hold_the_switch() {
        let (world, ports) = bound().await;
        let dns = replace(&world, "lb2", 0);
        world.state().healthy.insert(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/lb1/1".into(),
            0,
        );

        let summary = reconcile(&ports, records(&ports).await).await;

        assert_eq!(summary.changed.len(), 1, "{summary:?}");
        assert!(summary.deferred().is_empty(), "{summary:?}");
        assert_eq!(var(&world), Some(dns));
    }

    #[tokio::test]
    async fn a_concurrent_writer_wins_and_this_invocation_re_reads_and_converges() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        // Another invocation, which saw an even newer stack, records and writes its value
        // between this one's plan and its registry write.
        let newest = {
            let mut s = world.state();
            s.add_load_balancer("lb3", 1).dns_name.unwrap()
        };
        let n = newest.clone();
        world.before(crate::ports::op::RECORD_SYNC, move |s| {
            s.stacks
                .get_mut("S")
                .unwrap()
                .insert("Dns".into(), n.clone());
            s.stages
                .get_mut(&stage())
                .unwrap()
                .insert("elb".into(), n.clone());
            let r = s.registry.values_mut().next().unwrap();
            r.value = Some(n);
            r.version += 1;
        });

        let summary = reconcile(&ports, records(&ports).await).await;

        assert!(summary.failures().is_empty(), "{summary:?}");
        assert_eq!(var(&world), Some(newest.clone()));
        assert_eq!(records(&ports).await[0].value, Some(newest));
        let s = world.state();
        assert_eq!(
            s.count(crate::ports::op::BY_STAGE),
            1,
            "the conflict made it re-read its records"
        );
        assert_eq!(
            s.count(crate::ports::op::UPDATE_STAGE),
            0,
            "the older value was never written, and the retry found the stage in sync"
        );
    }

    #[tokio::test]
    async fn endless_contention_is_a_retryable_failure() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        for _ in 0..ATTEMPTS {
            world.before(crate::ports::op::RECORD_SYNC, |s| {
                s.registry.values_mut().next().unwrap().version += 1;
            });
        }

        let summary = reconcile(&ports, records(&ports).await).await;

        let failures = summary.failures();
        assert_eq!(failures.len(), 1, "{summary:?}");
        assert!(failures[0].cause.contains("still contended"), "{summary:?}");
        assert!(failures[0].retryable);
        assert_eq!(
            world.state().count(crate::ports::op::BY_STAGE),
            ATTEMPTS - 1
        );
    }

    #[tokio::test]
    async fn a_binding_deleted_mid_flight_leaves_no_variable_behind() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        // The binding's Delete runs between this invocation's plan and its registry write: it
        // removes its variable (which still held the value it wrote) and releases the record.
        world.before(crate::ports::op::RECORD_SYNC, |s| {
            s.registry.clear();
            s.stages.get_mut(&stage()).unwrap().remove("elb");
        });

        let summary = reconcile(&ports, records(&ports).await).await;

        assert!(summary.failures().is_empty(), "{summary:?}");
        assert_eq!(var(&world), None, "the orphaned write was undone");
        assert!(records(&ports).await.is_empty());
    }

    #[tokio::test]
    async fn a_binding_deleted_between_the_registry_write_and_the_stage_write_leaves_nothing() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        // The Delete runs after this invocation recorded the new value: the stage still holds
        // the old one, so the Delete removes nothing, and releases the record.
        world.before(crate::ports::op::UPDATE_STAGE, |s| s.registry.clear());

        let summary = reconcile(&ports, records(&ports).await).await;

        assert!(summary.failures().is_empty(), "{summary:?}");
        assert!(
            !world.state().stages.contains_key(&stage()),
            "the variable written for a deleted binding went again, and the stage it created"
        );
        assert!(records(&ports).await.is_empty());
    }

    /// The binding deleted and its variable set by hand meanwhile.
    fn hand_changed(s: &mut crate::memory::State) {
        s.registry.clear();
        s.stages
            .get_mut(&stage())
            .unwrap()
            .insert("elb".into(), "by-hand.example.com".into());
    }

    #[tokio::test]
    async fn an_orphan_changed_by_hand_meanwhile_is_left_alone() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        world.before(crate::ports::op::RECORD_SYNC, hand_changed);

        reconcile(&ports, records(&ports).await).await;

        assert_eq!(var(&world).as_deref(), Some("by-hand.example.com"));
    }

    #[tokio::test]
    async fn an_orphan_is_removed_only_as_the_stage_holds_it_when_read_again() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        // After this invocation's stage write, the binding is deleted and the variable set by
        // hand before the orphan check reads the registry: the stage as written is stale news.
        world.before(crate::ports::op::BY_STAGE, hand_changed);

        let summary = reconcile(&ports, records(&ports).await).await;

        assert!(summary.failures().is_empty(), "{summary:?}");
        assert_eq!(var(&world).as_deref(), Some("by-hand.example.com"));
    }

    #[tokio::test]
    async fn failures_say_whether_a_retry_may_help() {
        let (world, ports) = bound().await;
        replace(&world, "lb2", 1);
        world.fail(
            crate::ports::op::UPDATE_STAGE,
            crate::ports::ErrorKind::Throttled,
            1,
        );
        let throttled = reconcile(&ports, records(&ports).await).await;
        assert!(throttled.failures()[0].retryable, "{throttled:?}");

        world.fail(
            crate::ports::op::UPDATE_STAGE,
            crate::ports::ErrorKind::AccessDenied,
            1,
        );
        let denied = reconcile(&ports, records(&ports).await).await;
        assert!(!denied.failures()[0].retryable, "{denied:?}");

        let ok = reconcile(&ports, records(&ports).await).await;
        assert_eq!(ok.changed.len(), 1, "{ok:?}");
    }

    #[tokio::test]
    async fn the_dry_run_plan_is_the_plan_the_resync_applies() {
        let (world, ports) = bound().await;
        let dns = replace(&world, "lb2", 0);
        let mut resolver = Resolver::new(&ports);
        let planned = plans(&ports, &mut resolver, records(&ports).await)
            .await
            .unwrap();
        assert!(
            matches!(planned[0].variables[0].action, Action::Defer { ref to, .. } if *to == dns)
        );
        let writes = world.state().count(crate::ports::op::UPDATE_STAGE);
        let summary = reconcile(&ports, records(&ports).await).await;
        assert_eq!(summary.deferred().len(), 1);
        assert_eq!(world.state().count(crate::ports::op::UPDATE_STAGE), writes);
    }

    #[tokio::test]
    async fn the_host_and_the_link_of_one_binding_move_together() {
        use crate::domain::LinkStatus;
        let world = World::new();
        let point = |s: &mut crate::memory::State, lb: &crate::ports::LoadBalancer| {
            let outputs = BTreeMap::from([
                ("Dns".to_string(), lb.dns_name.clone().unwrap()),
                ("Arn".to_string(), lb.arn.clone().unwrap()),
            ]);
            s.stacks.insert("S".into(), outputs);
        };
        {
            let mut s = world.state();
            let lb1 = s.add_load_balancer("lb1", 1);
            s.add_rest_link("l1", lb1.arn.as_ref().unwrap(), LinkStatus::Available);
            point(&mut s, &lb1);
        }
        let ports = world.ports();
        let output = |key: &str| Source::StackOutput {
            stack: "S".into(),
            output_key: key.into(),
            at: Default::default(),
        };
        let spec = BindingSpec {
            stage: stage(),
            create_stage: true,
            variables: BTreeMap::from([
                ("host".to_string(), output("Dns")),
                (
                    "vpcLinkId".to_string(),
                    Source::VpcLinkFor {
                        target: Box::new(output("Arn")),
                    },
                ),
            ]),
        };
        let request = binding::Request::test("stack/A", "Binding", &spec, 1);
        binding::create(&ports, &request, binding::trusted())
            .await
            .unwrap();
        let before = world.state().stages[&stage()].clone();
        // The stack replaces its load balancer and link; the new link is not AVAILABLE yet.
        {
            let mut s = world.state();
            let lb2 = s.add_load_balancer("lb2", 1);
            s.add_rest_link("l2", lb2.arn.as_ref().unwrap(), LinkStatus::Pending);
            point(&mut s, &lb2);
        }
        let writes = world.state().count(crate::ports::op::UPDATE_STAGE);

        let held = reconcile(&ports, records(&ports).await).await;
        assert_eq!(held.deferred().len(), 2, "{held:?}");
        assert_eq!(world.state().stages[&stage()], before, "neither moved");
        assert_eq!(world.state().count(crate::ports::op::UPDATE_STAGE), writes);

        world.state().set_link_status("l2", LinkStatus::Available);
        let moved = reconcile(&ports, records(&ports).await).await;
        assert_eq!(moved.changed.len(), 2, "{moved:?}");
        let live = world.state().stages[&stage()].clone();
        assert_eq!(live["vpcLinkId"], "l2");
        assert_eq!(live["host"], "lb2-1.us-east-1.elb.amazonaws.com");
        assert_eq!(
            world.state().count(crate::ports::op::UPDATE_STAGE),
            writes + 1,
            "in one write"
        );
    }
}

//! Re-sync: from an event to the bindings it can affect, and from there to the stage writes
//! that make every variable match its source again.
//!
//! - [`classify`] turns an EventBridge event (or an operator's `{"resync": ...}`) into a
//!   [`Trigger`]; anything unknown is ignored, never an error Lambda would retry.
//! - [`affected`] asks the registry for the bindings of that trigger only (by source, or by the
//!   load balancer a value currently points at), never scanning every API.
//! - [`reconcile`] resolves each source once, reads each stage once, and writes only the
//!   differences, one `UpdateStage` per stage. A source that cannot be resolved keeps its value
//!   and is reported. A switch to an ELBv2 load balancer without healthy targets waits while
//!   the old load balancer still exists. Registry writes are conditional on the item's version,
//!   so a concurrent invocation that wrote first makes this one re-read and re-resolve: stale
//!   values never win.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_lambda_events::event::cloudwatch_events::cloudtrail::AWSAPICall;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::source::{load_balancer_name, stack_name};
use crate::domain::{ApiKind, SourceKey, StageRef};
use crate::ports::{LiveStage, Record, RegistryError, StagePatch, SyncUpdate};
use crate::resolve::{Resolved, Resolver};
use crate::Ports;

/// Stack statuses after which outputs may have changed.
pub const ACTIONABLE_STACK_STATUSES: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
    "DELETE_COMPLETE",
];

/// What an event asks the re-sync to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A stack whose outputs may have changed.
    Stack(String),
    /// A load balancer created or deleted (by name).
    LoadBalancer { name: String, deleted: bool },
    /// An ECS service that changed (deployment, steady state).
    EcsService { cluster: String, service: String },
    /// Every binding (the schedule, or an operator).
    Everything,
    /// Nothing to do, and why.
    Ignored(String),
}

/// `detail` of "CloudFormation Stack Status Change".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StackStatusChange {
    pub stack_id: String,
    pub status_details: StackStatusDetails,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StackStatusDetails {
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// `detail` of "ECS Service Action" and "ECS Deployment State Change" (the fields used).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsServiceEvent {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub cluster_arn: Option<String>,
}

/// An operator's direct invocation.
#[derive(Debug, Clone, Deserialize)]
pub struct Manual {
    pub resync: ManualScope,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ManualScope {
    /// `"all"`.
    All(String),
    /// `{"stack": "..."}`.
    Stack { stack: String },
}

/// The events the re-sync accepts, decoded.
pub fn classify(event: &Value) -> Trigger {
    if event.get("resync").is_some() {
        return match Manual::deserialize(event) {
            Ok(Manual {
                resync: ManualScope::All(s),
            }) if s == "all" => Trigger::Everything,
            Ok(Manual {
                resync: ManualScope::Stack { stack },
            }) if !stack.is_empty() => Trigger::Stack(stack),
            _ => Trigger::Ignored(
                "unrecognised manual request: use {\"resync\": \"all\"} or {\"resync\": {\"stack\": \"NAME\"}}"
                    .into(),
            ),
        };
    }
    let ev = match EventBridgeEvent::<Value>::deserialize(event) {
        Ok(ev) => ev,
        Err(e) => return Trigger::Ignored(format!("not an EventBridge event: {e}")),
    };
    let resources = ev.resources.clone().unwrap_or_default();
    match (ev.source.as_str(), ev.detail_type.as_str()) {
        ("aws.cloudformation", "CloudFormation Stack Status Change") => {
            match serde_json::from_value::<StackStatusChange>(ev.detail) {
                Ok(d) if ACTIONABLE_STACK_STATUSES.contains(&d.status_details.status.as_str()) => {
                    Trigger::Stack(stack_name(&d.stack_id).to_string())
                }
                Ok(d) => Trigger::Ignored(format!(
                    "stack status {}: outputs cannot have changed",
                    d.status_details.status
                )),
                Err(e) => Trigger::Ignored(format!("malformed stack status detail: {e}")),
            }
        }
        ("aws.elasticloadbalancing", "AWS API Call via CloudTrail") => {
            let failed = ev.detail.get("errorCode").is_some();
            match serde_json::from_value::<AWSAPICall<Value, Value>>(ev.detail) {
                Ok(_) if failed => Trigger::Ignored("the API call failed".into()),
                Ok(call) => classify_elb_call(&call),
                Err(e) => Trigger::Ignored(format!("malformed CloudTrail detail: {e}")),
            }
        }
        ("aws.ecs", "ECS Service Action" | "ECS Deployment State Change") => {
            let detail: EcsServiceEvent = serde_json::from_value(ev.detail).unwrap_or_default();
            match resources
                .iter()
                .find(|r| r.contains(":service/"))
                .and_then(|arn| ecs_service_of(arn, detail.cluster_arn.as_deref()))
            {
                Some((cluster, service)) => Trigger::EcsService { cluster, service },
                None => Trigger::Ignored("ECS event without a service ARN".into()),
            }
        }
        ("aws.events", "Scheduled Event") => Trigger::Everything,
        (source, detail_type) => {
            Trigger::Ignored(format!("unhandled event {detail_type:?} from {source}"))
        }
    }
}

fn classify_elb_call(call: &AWSAPICall<Value, Value>) -> Trigger {
    let req = &call.request_parameters;
    let param = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
    match call.event_name.as_str() {
        "CreateLoadBalancer" => match param("name").or_else(|| param("loadBalancerName")) {
            Some(name) => Trigger::LoadBalancer {
                name,
                deleted: false,
            },
            None => Trigger::Ignored("CreateLoadBalancer without a name".into()),
        },
        "DeleteLoadBalancer" => {
            match param("loadBalancerArn").or_else(|| param("loadBalancerName")) {
                Some(id) => Trigger::LoadBalancer {
                    name: load_balancer_name(&id).to_string(),
                    deleted: true,
                },
                None => Trigger::Ignored("DeleteLoadBalancer without a load balancer".into()),
            }
        }
        other => Trigger::Ignored(format!(
            "CloudTrail event {other} does not move load balancers"
        )),
    }
}

/// Cluster and service names from a service ARN (`service/CLUSTER/NAME`, or the older
/// `service/NAME` with the cluster from the event).
fn ecs_service_of(arn: &str, cluster_arn: Option<&str>) -> Option<(String, String)> {
    let path = arn.split_once(":service/")?.1;
    match path.split_once('/') {
        Some((cluster, service)) => Some((cluster.to_string(), service.to_string())),
        None => {
            let cluster = cluster_arn?.rsplit('/').next()?;
            Some((cluster.to_string(), path.to_string()))
        }
    }
}

/// The bindings a trigger can affect, without duplicates.
pub async fn affected(ports: &Ports, trigger: &Trigger) -> Result<Vec<Record>, RegistryError> {
    let mut records = match trigger {
        Trigger::Stack(name) => ports.registry.by_source(&SourceKey::stack(name)).await?,
        Trigger::LoadBalancer { name, .. } => {
            let key = SourceKey::load_balancer(name);
            let mut r = ports.registry.by_source(&key).await?;
            r.extend(ports.registry.by_via(&key).await?);
            r
        }
        Trigger::EcsService { cluster, service } => {
            ports
                .registry
                .by_source(&SourceKey::ecs(cluster, service))
                .await?
        }
        Trigger::Everything => ports.registry.all().await?,
        Trigger::Ignored(_) => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert((r.stage.clone(), r.variable.clone())));
    Ok(records)
}

/// One variable's outcome, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub stage: String,
    pub variable: String,
    pub from: Option<String>,
    pub to: String,
}

/// What a re-sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub trigger: String,
    pub bindings_checked: usize,
    pub changed: Vec<Change>,
    /// Sources that could not be resolved (values kept).
    pub unresolved: Vec<String>,
    /// Switches held back because the new load balancer has no healthy target yet.
    pub deferred: Vec<String>,
    /// Writes that failed.
    pub failures: Vec<String>,
    /// Stages that could not be read or are gone.
    pub missing_stages: Vec<String>,
}

const ATTEMPTS: usize = 4;

/// Bring every record's variable in line with its source.
pub async fn reconcile(ports: &Ports, records: Vec<Record>, summary: &mut Summary) {
    let mut by_stage: BTreeMap<StageRef, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    let mut resolver = Resolver::new(ports);
    let mut prefetched = prefetch(ports, &by_stage).await;
    for (stage, records) in by_stage {
        summary.bindings_checked += records.len();
        let variables: BTreeSet<String> = records.iter().map(|r| r.variable.clone()).collect();
        let mut records = records;
        let mut written: BTreeMap<String, String> = BTreeMap::new();
        for attempt in 0..ATTEMPTS {
            // The first attempt may use the stage as listed; a retry reads it afresh.
            let known = if attempt == 0 {
                prefetched.remove(&stage)
            } else {
                None
            };
            match reconcile_stage(
                ports,
                &mut resolver,
                &stage,
                known,
                &records,
                summary,
                &mut written,
            )
            .await
            {
                StageResult::Done => break,
                StageResult::Conflict if attempt + 1 < ATTEMPTS => {
                    // Another invocation wrote first: read its result and resolve afresh.
                    resolver = Resolver::new(ports);
                    records = match ports.registry.by_stage(&stage).await {
                        Ok(all) => all
                            .into_iter()
                            .filter(|r| variables.contains(&r.variable))
                            .collect(),
                        Err(e) => {
                            summary.failures.push(format!("{stage}: {e}"));
                            break;
                        }
                    };
                    undo_orphans(ports, &stage, &records, &written, summary).await;
                }
                StageResult::Conflict => {
                    summary.failures.push(format!(
                        "{stage}: still contended after {ATTEMPTS} attempts"
                    ));
                }
            }
        }
    }
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

enum StageResult {
    Done,
    Conflict,
}

/// A variable written here whose binding was deleted meanwhile must not outlive it.
async fn undo_orphans(
    ports: &Ports,
    stage: &StageRef,
    records: &[Record],
    written: &BTreeMap<String, String>,
    summary: &mut Summary,
) {
    let orphans: Vec<&String> = written
        .keys()
        .filter(|v| !records.iter().any(|r| &r.variable == *v))
        .collect();
    if orphans.is_empty() {
        return;
    }
    let stages = ports.stages(stage.kind);
    let Ok(Some(live)) = stages.get(stage).await else {
        return;
    };
    let remove: Vec<String> = orphans
        .into_iter()
        .filter(|v| live.variables.get(*v) == written.get(*v))
        .cloned()
        .collect();
    if !remove.is_empty() {
        let patch = StagePatch {
            set: BTreeMap::new(),
            remove,
        };
        if let Err(e) = stages.update(stage, &patch).await {
            summary.failures.push(format!("{stage}: {e}"));
        }
    }
}

async fn reconcile_stage(
    ports: &Ports,
    resolver: &mut Resolver<'_>,
    stage: &StageRef,
    known: Option<Option<LiveStage>>,
    records: &[Record],
    summary: &mut Summary,
    written: &mut BTreeMap<String, String>,
) -> StageResult {
    let now = crate::now_ms();
    let stages = ports.stages(stage.kind);
    let read = match known {
        Some(k) => Ok(k),
        None => stages.get(stage).await,
    };
    let live = match read {
        Ok(Some(live)) => live,
        Ok(None) => {
            summary.missing_stages.push(stage.to_string());
            let error = format!("{stage} does not exist");
            let updates = records
                .iter()
                .filter(|r| r.last_error.as_deref() != Some(error.as_str()))
                .map(|r| (r, error_update(&error, now)))
                .collect();
            return record(ports, updates, summary).await;
        }
        Err(e) => {
            summary.failures.push(format!("{stage}: {e}"));
            return StageResult::Done;
        }
    };
    let mut patch = StagePatch::default();
    let mut updates: Vec<(&Record, SyncUpdate)> = Vec::new();
    let mut changes = Vec::new();
    for r in records {
        let resolved = match resolver.resolve(&r.source).await {
            Ok(v) => v,
            Err(e) => {
                let error = format!("cannot resolve {}: {e}", r.source);
                tracing::warn!(%stage, variable = %r.variable, %error, "source unresolved: value kept");
                summary
                    .unresolved
                    .push(format!("{stage} variable {}: {e}", r.variable));
                if r.last_error.as_deref() != Some(error.as_str()) {
                    updates.push((r, error_update(&error, now)));
                }
                continue;
            }
        };
        let current = live.variables.get(&r.variable);
        if current == Some(&resolved.value) {
            let stale_record = r.last_error.is_some()
                || r.value.as_ref() != Some(&resolved.value)
                || r.via != resolved.via();
            if stale_record {
                updates.push((
                    r,
                    SyncUpdate {
                        value: (r.value.as_ref() != Some(&resolved.value))
                            .then(|| resolved.value.clone()),
                        via: resolved.via(),
                        error: None,
                        at: now,
                    },
                ));
            }
            continue;
        }
        match health_gate(resolver, &live, r, &resolved).await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                tracing::warn!(%stage, variable = %r.variable, policy = "defer", %reason, "switch deferred");
                summary
                    .deferred
                    .push(format!("{stage} variable {}: {reason}", r.variable));
                let error = format!("switch deferred: {reason}");
                if r.last_error.as_deref() != Some(error.as_str()) {
                    updates.push((r, error_update(&error, now)));
                }
                continue;
            }
            Err(e) => {
                summary.failures.push(format!(
                    "{stage} variable {}: health check: {e}",
                    r.variable
                ));
                continue;
            }
        }
        patch.set.insert(r.variable.clone(), resolved.value.clone());
        changes.push(Change {
            stage: stage.to_string(),
            variable: r.variable.clone(),
            from: current.cloned(),
            to: resolved.value.clone(),
        });
        updates.push((
            r,
            SyncUpdate {
                value: Some(resolved.value.clone()),
                via: resolved.via(),
                error: None,
                at: now,
            },
        ));
    }
    if !patch.is_empty() {
        if let Err(e) = stages.update(stage, &patch).await {
            tracing::error!(%stage, error = %e, "stage update failed");
            summary.failures.push(format!("{stage}: {e}"));
            return StageResult::Done;
        }
        for c in &changes {
            tracing::info!(stage = %c.stage, variable = %c.variable, from = c.from.as_deref().unwrap_or(""), to = %c.to, "variable re-pointed");
        }
        written.extend(patch.set.clone());
        summary.changed.extend(changes);
    }
    record(ports, updates, summary).await
}

fn error_update(error: &str, at: i64) -> SyncUpdate {
    SyncUpdate {
        value: None,
        via: None,
        error: Some(error.to_string()),
        at,
    }
}

async fn record(
    ports: &Ports,
    updates: Vec<(&Record, SyncUpdate)>,
    summary: &mut Summary,
) -> StageResult {
    let mut conflict = false;
    for (r, u) in updates {
        match ports.registry.record_sync(r, &u).await {
            Ok(true) => {}
            Ok(false) => conflict = true,
            Err(e) => summary
                .failures
                .push(format!("{} variable {}: {e}", r.stage, r.variable)),
        }
    }
    if conflict {
        StageResult::Conflict
    } else {
        StageResult::Done
    }
}

/// The switch policy: a new ELBv2 load balancer without a healthy target does not take over
/// while the load balancer the variable points at still exists. When the old one is gone,
/// the switch happens anyway (nothing would answer otherwise).
async fn health_gate(
    resolver: &mut Resolver<'_>,
    live: &LiveStage,
    record: &Record,
    new: &Resolved,
) -> Result<Option<String>, crate::resolve::ResolveError> {
    let new_lb = match &new.load_balancer {
        Some(lb) => Some(lb.clone()),
        None => resolver.load_balancer_by_dns(&new.value).await?,
    };
    let Some(new_lb) = new_lb else {
        return Ok(None);
    };
    if resolver.has_healthy_targets(&new_lb).await? {
        return Ok(None);
    }
    let old = match live.variables.get(&record.variable) {
        Some(dns) => resolver.load_balancer_by_dns(dns).await?,
        None => None,
    };
    match old {
        Some(old) => Ok(Some(format!(
            "load balancer {} has no healthy target yet; keeping {} while it exists",
            new_lb.name, old.name
        ))),
        None => {
            tracing::warn!(
                variable = %record.variable,
                policy = "switch",
                new = %new_lb.name,
                "new load balancer has no healthy target, but the old one is gone: switching"
            );
            Ok(None)
        }
    }
}

/// Why an invocation should be retried by Lambda (writes failed).
#[derive(Debug, thiserror::Error)]
#[error("re-sync incomplete: {} failure(s): {}", .0.failures.len(), .0.failures.join("; "))]
pub struct Incomplete(pub Box<Summary>);

impl From<Incomplete> for lambda_runtime::Diagnostic {
    fn from(e: Incomplete) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "ResyncIncomplete".into(),
            error_message: e.to_string(),
        }
    }
}

/// The `stage-resync` function: classify, look up, reconcile, emit metrics.
pub async fn handle(ports: &Ports, event: Value) -> Result<Summary, Incomplete> {
    let start = std::time::Instant::now();
    let trigger = classify(&event);
    let mut summary = Summary {
        trigger: format!("{trigger:?}"),
        ..Summary::default()
    };
    if let Trigger::Ignored(why) = &trigger {
        tracing::info!(reason = %why, "event ignored");
    } else {
        match affected(ports, &trigger).await {
            Ok(records) => reconcile(ports, records, &mut summary).await,
            Err(e) => summary.failures.push(format!("registry: {e}")),
        }
    }
    crate::metrics::emit(&summary, start.elapsed());
    tracing::info!(
        trigger = %summary.trigger,
        checked = summary.bindings_checked,
        changed = summary.changed.len(),
        unresolved = summary.unresolved.len(),
        deferred = summary.deferred.len(),
        failures = summary.failures.len(),
        duration_ms = start.elapsed().as_millis() as u64,
        "re-sync done"
    );
    if summary.failures.is_empty() {
        Ok(summary)
    } else {
        Err(Incomplete(Box::new(summary)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eb(source: &str, detail_type: &str, resources: Value, detail: Value) -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": source, "account": "123456789012",
            "time": "2026-11-25T12:00:00Z", "region": "us-east-1",
            "resources": resources, "detail": detail
        })
    }

    fn trail(event_name: &str, request: Value) -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROA:cfn", "arn": "arn:aws:sts::123456789012:assumed-role/x/y", "accountId": "123456789012"},
            "eventTime": "2026-11-25T12:00:00Z", "eventSource": "elasticloadbalancing.amazonaws.com",
            "eventName": event_name, "awsRegion": "us-east-1", "sourceIPAddress": "cloudformation.amazonaws.com",
            "userAgent": "cloudformation.amazonaws.com", "requestParameters": request, "responseElements": null,
            "requestID": "1", "eventID": "2", "eventType": "AwsApiCall"
        })
    }

    #[test]
    fn stack_status_changes() {
        let arn = "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsHelloworldProd/abc";
        let ev = |status: &str| {
            eb(
                "aws.cloudformation",
                "CloudFormation Stack Status Change",
                json!([arn]),
                json!({"stack-id": arn, "status-details": {"status": status, "status-reason": ""}}),
            )
        };
        assert_eq!(
            classify(&ev("UPDATE_COMPLETE")),
            Trigger::Stack("EcsHelloworldProd".into())
        );
        assert_eq!(
            classify(&ev("CREATE_COMPLETE")),
            Trigger::Stack("EcsHelloworldProd".into())
        );
        assert!(matches!(
            classify(&ev("UPDATE_IN_PROGRESS")),
            Trigger::Ignored(_)
        ));
        assert!(matches!(
            classify(&ev("CREATE_FAILED")),
            Trigger::Ignored(_)
        ));
    }

    #[test]
    fn load_balancer_calls() {
        let create = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail(
                "CreateLoadBalancer",
                json!({"name": "new-alb", "type": "application"}),
            ),
        );
        assert_eq!(
            classify(&create),
            Trigger::LoadBalancer {
                name: "new-alb".into(),
                deleted: false
            }
        );
        let delete = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail(
                "DeleteLoadBalancer",
                json!({"loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/old-alb/123"}),
            ),
        );
        assert_eq!(
            classify(&delete),
            Trigger::LoadBalancer {
                name: "old-alb".into(),
                deleted: true
            }
        );
        let classic = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail("DeleteLoadBalancer", json!({"loadBalancerName": "legacy"})),
        );
        assert_eq!(
            classify(&classic),
            Trigger::LoadBalancer {
                name: "legacy".into(),
                deleted: true
            }
        );
        let mut failed = trail("CreateLoadBalancer", json!({"name": "x"}));
        failed["errorCode"] = json!("DuplicateLoadBalancerName");
        let failed = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            failed,
        );
        assert!(matches!(classify(&failed), Trigger::Ignored(_)));
    }

    #[test]
    fn ecs_events() {
        let svc = "arn:aws:ecs:us-east-1:123456789012:service/prod/helloworld";
        for dt in ["ECS Service Action", "ECS Deployment State Change"] {
            let ev = eb(
                "aws.ecs",
                dt,
                json!([svc]),
                json!({"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"}),
            );
            assert_eq!(
                classify(&ev),
                Trigger::EcsService {
                    cluster: "prod".into(),
                    service: "helloworld".into()
                }
            );
        }
        let old_format = eb(
            "aws.ecs",
            "ECS Service Action",
            json!(["arn:aws:ecs:us-east-1:123456789012:service/helloworld"]),
            json!({"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"}),
        );
        assert_eq!(
            classify(&old_format),
            Trigger::EcsService {
                cluster: "prod".into(),
                service: "helloworld".into()
            }
        );
    }

    #[test]
    fn schedule_manual_and_unknown() {
        let sched = eb(
            "aws.events",
            "Scheduled Event",
            json!(["arn:aws:events:us-east-1:123456789012:rule/r"]),
            json!({}),
        );
        assert_eq!(classify(&sched), Trigger::Everything);
        assert_eq!(classify(&json!({"resync": "all"})), Trigger::Everything);
        assert_eq!(
            classify(&json!({"resync": {"stack": "S"}})),
            Trigger::Stack("S".into())
        );
        assert!(matches!(
            classify(&json!({"resync": "some"})),
            Trigger::Ignored(_)
        ));
        assert!(matches!(
            classify(&json!({"hello": 1})),
            Trigger::Ignored(_)
        ));
        assert!(matches!(classify(&json!("text")), Trigger::Ignored(_)));
        let other = eb("aws.s3", "Object Created", json!([]), json!({}));
        assert!(matches!(classify(&other), Trigger::Ignored(_)));
    }
}

//! `bench --idle`: how many times an idle account invokes `stage-resync` in a day, under the
//! EventBridge rules of an earlier `template.yaml` (`--before REV`, read with `git show`) and of
//! the current one.
//!
//! The day, for an account with [`SERVICES`] ECS services behind load balancers and bindings on
//! [`APIS`] APIs, where nothing is deployed, no stack changes and no load balancer comes or goes:
//! - each service's "ECS Service Action" `SERVICE_STEADY_STATE`: "The service scheduler reports
//!   the status periodically, so you might receive this message multiple times"
//!   (docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_events.html). The page
//!   gives no period; the model takes the 6 hours after which ECS repeats a service's
//!   "has reached a steady state" event message, 4 a day per service.
//! - the schedule, `rate(15 minutes)` (the template's ResyncSchedule default): 96 events;
//! - each schedule's planner sends one unit per API with bindings to the work queue, which the
//!   SQS event source hands to workers in batches of up to 5 (the template's BatchSize):
//!   ceil(APIS / 5) worker invocations per schedule. They reach the function through SQS, not
//!   EventBridge, so the rules do not change them.
//!
//! Each event is run through every EventBridge pattern of the re-sync (one invocation per
//! matching rule, as EventBridge invokes each matching rule's target), with a small matcher:
//! a list of values (or `{exists: false}`, `{prefix: ...}`) per field, nested mappings for
//! `detail`, a field holding a list matching when any element does.

use serde_json::{json, Value as Json};
use serde_yaml::Value;

/// ECS services in the idle account.
pub const SERVICES: u64 = 50;
/// APIs with bindings (one unit each in the full reconcile).
pub const APIS: u64 = 50;
/// `SERVICE_STEADY_STATE` events per service per day.
const STEADY_STATES_PER_DAY: u64 = 4;
/// `rate(15 minutes)`.
const SCHEDULES_PER_DAY: u64 = 24 * 4;
/// The SQS event source's BatchSize.
const BATCH: u64 = 5;

/// The re-sync's EventBridge patterns of a template (SAM events and member-bus rules; the
/// first branch of a conditional pattern, which watches every stack).
fn patterns(template: &str) -> Result<Vec<(String, Value)>, String> {
    let t: Value = serde_yaml::from_str(template).map_err(|e| format!("template: {e}"))?;
    let mut out = Vec::new();
    let events = t["Resources"]["StageResyncFunction"]["Properties"]["Events"]
        .as_mapping()
        .ok_or("the re-sync has no events")?;
    for (name, e) in events {
        if e["Type"].as_str() != Some("EventBridgeRule") {
            continue;
        }
        let pattern = match &e["Properties"]["Pattern"] {
            Value::Tagged(t) => t.value.as_sequence().ok_or("a tagged pattern")?[1].clone(),
            p => p.clone(),
        };
        out.push((name.as_str().unwrap_or("?").to_string(), pattern));
    }
    Ok(out)
}

fn scalar(v: &Value) -> Option<Json> {
    match v {
        Value::String(s) => Some(json!(s)),
        Value::Bool(b) => Some(json!(b)),
        Value::Number(n) => serde_json::to_value(n).ok(),
        _ => None,
    }
}

/// Whether `value` (absent: None) satisfies one of a field's conditions.
fn field_matches(conditions: &[Value], value: Option<&Json>) -> bool {
    let one = |v: &Json| {
        conditions.iter().any(|c| match c {
            Value::Mapping(m) => {
                if let Some(prefix) = m.get("prefix").and_then(Value::as_str) {
                    v.as_str().is_some_and(|s| s.starts_with(prefix))
                } else {
                    m.get("exists").and_then(Value::as_bool) == Some(true)
                }
            }
            other => scalar(other).as_ref() == Some(v),
        })
    };
    match value {
        None => conditions.iter().any(|c| {
            c.as_mapping()
                .and_then(|m| m.get("exists"))
                .and_then(Value::as_bool)
                == Some(false)
        }),
        Some(Json::Array(items)) => items.iter().any(one),
        Some(v) => one(v),
    }
}

/// EventBridge's match of `event` against `pattern`.
pub fn matches(pattern: &Value, event: &Json) -> bool {
    let Some(fields) = pattern.as_mapping() else {
        return false;
    };
    fields.iter().all(|(k, cond)| {
        let value = k.as_str().and_then(|k| event.get(k));
        match cond {
            Value::Mapping(_) => value.is_some_and(|v| matches(cond, v)),
            Value::Sequence(conditions) => field_matches(conditions, value),
            _ => false,
        }
    })
}

fn steady_state(service: u64) -> Json {
    json!({"source": "aws.ecs", "detail-type": "ECS Service Action",
        "resources": [format!("arn:aws:ecs:us-east-1:123456789012:service/prod/svc{service}")],
        "detail": {"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE",
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"}})
}

/// Invocations in the modelled day under `patterns`: (what, events, invocations).
fn day(patterns: &[(String, Value)]) -> Vec<(&'static str, u64, u64)> {
    let via_rules = |event: &Json, per_day: u64| {
        per_day * patterns.iter().filter(|(_, p)| matches(p, event)).count() as u64
    };
    let steady: u64 = (0..SERVICES)
        .map(|s| via_rules(&steady_state(s), STEADY_STATES_PER_DAY))
        .sum();
    let units = APIS.div_ceil(BATCH) * SCHEDULES_PER_DAY;
    vec![
        (
            "ECS SERVICE_STEADY_STATE (4 per service)",
            SERVICES * STEADY_STATES_PER_DAY,
            steady,
        ),
        (
            "schedule rate(15 minutes)",
            SCHEDULES_PER_DAY,
            SCHEDULES_PER_DAY,
        ),
        ("SQS workers (units of 5)", units, units),
    ]
}

/// Prints the table: the day's events and the invocations before and after.
pub fn run(before_rev: &str) -> Result<(), String> {
    let root = stagewire_devkit::workspace_root();
    let out = std::process::Command::new("git")
        .args(["show", &format!("{before_rev}:template.yaml")])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("git show: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git show {before_rev}:template.yaml: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let before = patterns(&String::from_utf8_lossy(&out.stdout))?;
    let now = std::fs::read_to_string(root.join("template.yaml"))
        .map_err(|e| format!("template.yaml: {e}"))?;
    let after = patterns(&now)?;
    println!(
        "Idle account, {SERVICES} ECS services, bindings on {APIS} APIs: stage-resync invocations per day\n"
    );
    println!("| source | events/day | invocations before ({before_rev}) | invocations after |");
    println!("|---|---:|---:|---:|");
    let (b, a) = (day(&before), day(&after));
    let (mut tb, mut ta) = (0, 0);
    for ((what, events, nb), (_, _, na)) in b.iter().zip(&a) {
        println!("| {what} | {events} | {nb} | {na} |");
        tb += nb;
        ta += na;
    }
    println!("| **total** | | **{tb}** | **{ta}** |");
    Ok(())
}

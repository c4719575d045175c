//! The SAM template: every IAM action written out (no `*`), resources scoped where the service
//! allows it (exactly the calls the functions make: tests/integration/iam.rs); the EventBridge
//! rules route exactly the events the re-sync handles, and only the template's rules may
//! invoke it; the production parameters (log retention, permissions boundary, an existing
//! registry table, the member organization) reach every resource they concern.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;
use stagewire::resync::trigger::ENDED_STACK_STATUSES;
use stagewire::resync::{self, Trigger, EVENT_KINDS};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A scalar or a list of scalars (tagged values such as `!Sub` count as scoped strings).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(t) => match &t.value {
            Value::String(s) => vec![format!("{} {s}", t.tag)],
            other => vec![format!("{} {other:?}", t.tag)],
        },
        other => vec![format!("{other:?}")],
    }
}

/// Every policy statement of a function: (actions, resources).
fn statements(function: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let t = template();
    let policies = &t["Resources"][function]["Properties"]["Policies"];
    let mut out = Vec::new();
    for policy in policies
        .as_sequence()
        .expect("Policies is a list of documents")
    {
        for st in policy["Statement"].as_sequence().expect("statements") {
            assert_eq!(st["Effect"].as_str(), Some("Allow"));
            out.push((strings(&st["Action"]), strings(&st["Resource"])));
        }
    }
    out
}

/// Actions that support no resource-level permissions, so may be granted on `*`.
const UNSCOPABLE: &[&str] = &[
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
];

/// Every action written out (no `*`), and only actions without resource-level permissions on
/// every resource. Which actions and resources, exactly: tests/integration/iam.rs.
#[test]
fn every_action_is_written_out_and_scoped_where_the_service_allows() {
    for function in ["StageBindingFunction", "StageResyncFunction"] {
        for (actions, resources) in statements(function) {
            for a in &actions {
                assert!(!a.contains('*'), "{function}: wildcard action {a}");
                if resources.iter().any(|r| r == "*") {
                    assert!(
                        UNSCOPABLE.contains(&a.as_str()),
                        "{function}: {a} is granted on every resource but can be scoped"
                    );
                }
            }
        }
    }
}

/// The re-sync never creates a stage, and deletes only stages (those the bindings it releases
/// created).
#[test]
fn the_resync_creates_no_stage_and_deletes_only_stages() {
    for (actions, resources) in statements("StageResyncFunction") {
        for a in &actions {
            assert!(a != "apigateway:POST", "the re-sync has {a}");
            if a == "apigateway:DELETE" {
                for r in &resources {
                    assert!(r.ends_with("/stages/*"), "apigateway:DELETE on {r}");
                }
            }
        }
    }
}

/// The sample events of `events/`.
fn samples() -> Vec<serde_json::Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("events/") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
    }
    out
}

/// Each `detail` leaf of a pattern: its path and the values it admits.
fn leaves(v: &Value, path: Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(k.as_str().unwrap().to_string());
                leaves(child, p, out);
            }
        }
        Value::Sequence(items) => out.push((
            path,
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        )),
        other => panic!("unexpected pattern value {other:?}"),
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|p| format!("/{p}")).collect()
}

/// The re-sync's SQS event source: the full reconcile's queue, with a dead-letter queue, batch
/// item failures, and the maximum concurrency the function paces itself by.
fn check_work_queue_source(t: &Value, name: &str, props: &Value) {
    let tagged = |v: &Value| match v {
        Value::Tagged(x) => format!("{} {}", x.tag, strings(&x.value).join(".")),
        other => format!("{other:?}"),
    };
    assert_eq!(
        tagged(&props["Queue"]),
        "!GetAtt ReconcileQueue.Arn",
        "{name}"
    );
    assert_eq!(
        strings(&props["FunctionResponseTypes"]),
        ["ReportBatchItemFailures"],
        "{name}"
    );
    let concurrency = tagged(&props["ScalingConfig"]["MaximumConcurrency"]);
    assert_eq!(concurrency, "!Ref ReconcileConcurrency", "{name}");
    let function = &t["Resources"]["StageResyncFunction"]["Properties"];
    let env = &function["Environment"]["Variables"];
    assert_eq!(
        tagged(&env[stagewire::config::WORKERS_VAR]),
        concurrency,
        "every worker paces itself by the event source's maximum concurrency"
    );
    assert_eq!(
        tagged(&env[stagewire::config::QUEUE_VAR]),
        "!Ref ReconcileQueue"
    );
    let queue = &t["Resources"]["ReconcileQueue"]["Properties"];
    assert_eq!(
        tagged(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        "!GetAtt ReconcileDeadLetterQueue.Arn"
    );
    assert!(
        queue["VisibilityTimeout"].as_u64() >= function["Timeout"].as_u64(),
        "SQS's event source needs a visibility timeout of at least the function's timeout"
    );
    assert_eq!(t["Parameters"]["ReconcileConcurrency"]["MinValue"], 2);
}

/// An event built from every value each EventBridge rule's pattern admits is handled by the
/// re-sync; every event kind the re-sync handles has a rule; the stack rule admits exactly the
/// statuses the re-sync acts on.
#[test]
fn every_event_rule_routes_only_events_the_resync_handles() {
    let t = template();
    let samples = samples();
    let mut routed = BTreeSet::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let events = t["Resources"]["StageResyncFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("the re-sync has events");
    for (name, event) in events {
        let name = name.as_str().unwrap();
        let patterns = match event["Type"].as_str() {
            Some("Schedule") => {
                routed.insert(("aws.events".to_string(), "Scheduled Event".to_string()));
                continue;
            }
            Some("SQS") => {
                check_work_queue_source(&t, name, &event["Properties"]);
                continue;
            }
            Some("EventBridgeRule") => match &event["Properties"]["Pattern"] {
                Value::Tagged(t) if t.tag == "!If" => t.value.as_sequence().unwrap()[1..].to_vec(),
                p => vec![p.clone()],
            },
            other => panic!("{name}: unexpected event type {other:?}"),
        };
        for pattern in patterns {
            let mut detail = Vec::new();
            if pattern.get("detail").is_some() {
                leaves(&pattern["detail"], Vec::new(), &mut detail);
            }
            for source in strings(&pattern["source"]) {
                for detail_type in strings(&pattern["detail-type"]) {
                    assert!(
                        EVENT_KINDS
                            .iter()
                            .any(|k| k.source == source && k.detail_type == detail_type),
                        "{name} routes {detail_type:?} from {source}, which the re-sync ignores"
                    );
                    routed.insert((source.clone(), detail_type.clone()));
                    let candidates: Vec<&serde_json::Value> = samples
                        .iter()
                        .filter(|s| {
                            s["source"] == source.as_str()
                                && s["detail-type"] == detail_type.as_str()
                        })
                        .collect();
                    assert!(
                        !candidates.is_empty(),
                        "events/ has no sample of {detail_type:?}"
                    );
                    let mut cases: Vec<serde_json::Value> = Vec::new();
                    for (path, values) in &detail {
                        let at = format!("/detail{}", pointer(path));
                        for value in values {
                            let event = match candidates
                                .iter()
                                .find(|c| c.pointer(&at) == Some(&serde_json::json!(value)))
                            {
                                Some(c) => (*c).clone(),
                                None => {
                                    let mut e = candidates[0].clone();
                                    *e.pointer_mut(&at)
                                        .unwrap_or_else(|| panic!("sample lacks {at}")) =
                                        serde_json::json!(value);
                                    e
                                }
                            };
                            cases.push(event);
                        }
                    }
                    if cases.is_empty() {
                        cases = candidates.iter().map(|c| (*c).clone()).collect();
                    }
                    for event in cases {
                        let trigger = resync::Input::from(event.clone()).trigger();
                        assert!(
                            !matches!(trigger, Trigger::Ignored(_)),
                            "{name}: the re-sync ignores {event}: {trigger:?}"
                        );
                    }
                }
            }
            if let Some(statuses) = detail
                .iter()
                .find(|(p, _)| p.join(".") == "status-details.status")
            {
                listed.extend(statuses.1.iter().cloned());
                // The end of a stack that owns bindings must arrive whatever stacks the
                // re-sync watches as sources.
                if statuses
                    .1
                    .iter()
                    .any(|s| ENDED_STACK_STATUSES.contains(&s.as_str()))
                {
                    assert!(
                        pattern.get("resources").is_none(),
                        "{name}: stack ends are filtered by stack name"
                    );
                }
            }
        }
    }
    let acted: BTreeSet<String> = resync::ACTIONABLE_STACK_STATUSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        listed, acted,
        "the rules and the re-sync disagree on stack statuses"
    );
    for k in EVENT_KINDS {
        assert!(
            routed.contains(&(k.source.to_string(), k.detail_type.to_string())),
            "no rule routes {:?} from {} to the re-sync",
            k.detail_type,
            k.source
        );
    }
}

fn spoke() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spoke.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The event patterns of the re-sync's EventBridge rules on the hub's default bus (both
/// branches of a conditional pattern).
fn resync_patterns(t: &Value) -> Vec<(String, Value)> {
    let events = t["Resources"]["StageResyncFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("the re-sync has events");
    let mut out = Vec::new();
    for (name, event) in events {
        if event["Type"].as_str() != Some("EventBridgeRule") {
            continue;
        }
        let name = name.as_str().unwrap().to_string();
        match &event["Properties"]["Pattern"] {
            Value::Tagged(t) if t.tag == "!If" => {
                for p in &t.value.as_sequence().unwrap()[1..] {
                    out.push((name.clone(), p.clone()));
                }
            }
            p => out.push((name, p.clone())),
        }
    }
    out
}

/// The patterns of the `AWS::Events::Rule` resources of a template that target `target`
/// (a `!Ref` or `!GetAtt` of it, as text).
fn rules_targeting(t: &Value, target: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Events::Rule") {
            continue;
        }
        let targets = r["Properties"]["Targets"].as_sequence().unwrap();
        if targets
            .iter()
            .any(|x| strings(&x["Arn"]).iter().any(|a| a.contains(target)))
        {
            out.push((
                name.as_str().unwrap().to_string(),
                r["Properties"]["EventPattern"].clone(),
            ));
        }
    }
    out
}

/// Whether every event `narrow` matches, `wide` matches too: each of `wide`'s fields is in
/// `narrow`, admitting at least what `narrow` admits there.
fn covers(wide: &Value, narrow: &Value) -> bool {
    let (mut w, mut n) = (Vec::new(), Vec::new());
    leaves(wide, Vec::new(), &mut w);
    let mut narrow = narrow.clone();
    // A hub pattern's stack-name prefix only narrows it.
    if let Value::Mapping(m) = &mut narrow {
        m.remove("resources");
    }
    leaves(&narrow, Vec::new(), &mut n);
    w.iter().all(|(path, admits)| {
        n.iter()
            .find(|(p, _)| p == path)
            .is_some_and(|(_, values)| values.iter().all(|v| admits.contains(v)))
    })
}

/// Member accounts forward every event the hub's re-sync listens to, and the hub's member bus
/// hands each of them to the re-sync: a forwarded event is handled as a local one.
#[test]
fn spokes_forward_every_event_pattern_the_resync_listens_to() {
    let hub = template();
    let spoke = spoke();
    let forwarded = rules_targeting(&spoke, "HubEventBusArn");
    assert_eq!(
        forwarded.len(),
        spoke["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::Events::Rule"))
            .count(),
        "every spoke rule forwards to the hub"
    );
    let on_member_bus = rules_targeting(&hub, "StageResyncFunction.Arn");
    assert!(!on_member_bus.is_empty());
    for (name, _) in &on_member_bus {
        assert_eq!(
            strings(&hub["Resources"][name.as_str()]["Properties"]["EventBusName"]),
            ["!Ref MemberEventBus"],
            "{name}"
        );
    }
    let patterns = resync_patterns(&hub);
    assert!(patterns.len() >= 4, "{patterns:?}");
    for (name, pattern) in &patterns {
        for (what, rules) in [
            ("spoke.yaml", &forwarded),
            ("the hub's member bus", &on_member_bus),
        ] {
            assert!(
                rules.iter().any(|(_, rule)| covers(rule, pattern)),
                "{what} has no rule carrying the re-sync's {name} pattern {pattern:?}"
            );
        }
    }
}

/// The spoke's role only reads (tests/integration/iam.rs checks it grants exactly the reads
/// made through it), and trusts only the hub's function roles, with stagewire's session name.
#[test]
fn the_spoke_role_reads_sources_only_and_trusts_the_hub_functions_only() {
    let spoke = spoke();
    let role = &spoke["Resources"]["SourceReadRole"]["Properties"];
    let mut granted = BTreeSet::new();
    for policy in role["Policies"].as_sequence().unwrap() {
        for st in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            assert_eq!(st["Effect"].as_str(), Some("Allow"));
            let actions = strings(&st["Action"]);
            if strings(&st["Resource"]).iter().any(|r| r == "*") {
                for a in &actions {
                    assert!(UNSCOPABLE.contains(&a.as_str()), "{a} on *");
                }
            }
            granted.extend(actions);
        }
    }
    // Which reads, exactly: tests/integration/iam.rs, from the calls made through the role.
    assert!(!granted.is_empty());

    let trust = role["AssumeRolePolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    assert_eq!(trust.len(), 1);
    let st = &trust[0];
    assert_eq!(
        strings(&st["Principal"]["AWS"]),
        ["!Sub arn:${AWS::Partition}:iam::${HubAccountId}:root"]
    );
    assert_eq!(strings(&st["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        strings(&st["Condition"]["ArnEquals"]["aws:PrincipalArn"]),
        ["!Ref HubRoleArns"]
    );
    assert_eq!(
        st["Condition"]["StringEquals"]["sts:RoleSessionName"].as_str(),
        Some(stagewire::aws::SESSION_NAME)
    );
    // The hub may assume roles of the spoke's default name, and no other.
    let hub = template();
    assert_eq!(
        spoke["Parameters"]["RoleName"]["Default"],
        hub["Parameters"]["SpokeRoleName"]["Default"]
    );
    for function in ["StageBindingFunction", "StageResyncFunction"] {
        for (actions, resources) in statements(function) {
            if actions.iter().any(|a| a.starts_with("sts:")) {
                assert_eq!(actions, ["sts:AssumeRole"]);
                assert_eq!(
                    resources,
                    ["!Sub arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}"]
                );
            }
        }
    }
}

/// The registry's indexes in the last release: an update from it may create or delete only one
/// global secondary index, since DynamoDB does one per table update and CloudFormation fails
/// (and rolls back) a stack update that asks for more.
const RELEASED_INDEXES: [&str; 3] = ["by-source", "by-owner", "by-via"];

#[test]
fn an_update_from_the_last_release_changes_at_most_one_index() {
    let t = template();
    let table = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::DynamoDB::Table")
        .expect("the registry table");
    let now: std::collections::BTreeSet<String> = table["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("the registry's indexes")
        .iter()
        .map(|i| i["IndexName"].as_str().unwrap().to_string())
        .collect();
    let released = RELEASED_INDEXES.map(String::from).into();
    let changed: Vec<_> = now.symmetric_difference(&released).collect();
    assert!(
        changed.len() <= 1,
        "an update from the last release would create or delete {changed:?}: DynamoDB changes one \
         global secondary index per update"
    );
}

/// A tagged value (`!Ref X`, `!GetAtt X.Arn`, `!If [...]`): its tag and value.
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string(), &t.value)),
        _ => None,
    }
}

/// `!Tag scalar` as text, e.g. `!Ref LogRetentionDays`.
fn short(v: &Value) -> String {
    match tagged(v) {
        Some((tag, Value::String(s))) => format!("{tag} {s}"),
        _ => format!("{v:?}"),
    }
}

/// `!If [condition, then, else]`.
fn if_parts(v: &Value) -> Option<(&str, &Value, &Value)> {
    match tagged(v) {
        Some((tag, Value::Sequence(parts))) if tag == "!If" && parts.len() == 3 => {
            Some((parts[0].as_str()?, &parts[1], &parts[2]))
        }
        _ => None,
    }
}

/// Resources of a type, by logical id.
fn resources_of<'t>(t: &'t Value, kind: &str) -> Vec<(String, &'t Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

/// The CloudWatch Logs retention values (PutRetentionPolicy's `retentionInDays`).
const LOG_RETENTION_DAYS: [u64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Each function logs (JSON) into a log group of its own that keeps LogRetentionDays and goes
/// with the stack.
#[test]
fn each_function_logs_to_a_group_with_a_retention_deleted_with_the_stack() {
    let t = template();
    let days = &t["Parameters"]["LogRetentionDays"];
    assert_eq!(days["Default"].as_u64(), Some(30));
    let allowed: Vec<u64> = days["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(allowed, LOG_RETENTION_DAYS);
    let groups = resources_of(&t, "AWS::Logs::LogGroup");
    let mut used = BTreeSet::new();
    for (function, suffix) in [
        ("StageBindingFunction", "stage-binding"),
        ("StageResyncFunction", "stage-resync"),
    ] {
        let logging = &t["Resources"][function]["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{function}");
        assert_eq!(short(&logging["ApplicationLogLevel"]), "!Ref LogLevel");
        let group = short(&logging["LogGroup"]);
        let name = group
            .strip_prefix("!Ref ")
            .unwrap_or_else(|| panic!("{function}: LoggingConfig.LogGroup is {group}"));
        let (_, g) = groups
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{function}: {name} is no AWS::Logs::LogGroup"));
        assert_eq!(g["DeletionPolicy"].as_str(), Some("Delete"), "{name}");
        assert_eq!(g["UpdateReplacePolicy"].as_str(), Some("Delete"), "{name}");
        assert_eq!(
            short(&g["Properties"]["RetentionInDays"]),
            "!Ref LogRetentionDays"
        );
        assert_eq!(
            short(&g["Properties"]["LogGroupName"]),
            format!("!Sub /aws/lambda/${{AWS::StackName}}-{suffix}")
        );
        used.insert(name.to_string());
    }
    assert_eq!(used.len(), groups.len(), "a log group no function uses");
    assert!(
        t["Globals"]["Function"].get("LoggingConfig").is_none(),
        "each function names its own log group"
    );
}

fn check_boundary(v: &Value, what: &str) {
    let (condition, then, otherwise) =
        if_parts(v).unwrap_or_else(|| panic!("{what}: PermissionsBoundary is {v:?}"));
    assert_eq!(condition, "HasBoundary", "{what}");
    assert_eq!(short(then), "!Ref PermissionsBoundary", "{what}");
    assert_eq!(short(otherwise), "!Ref AWS::NoValue", "{what}");
}

/// Every role either template creates takes the PermissionsBoundary parameter (none by default).
#[test]
fn every_role_takes_the_permissions_boundary() {
    let hub = template();
    let spoke = spoke();
    for t in [&hub, &spoke] {
        let p = &t["Parameters"]["PermissionsBoundary"];
        assert_eq!(p["Default"].as_str(), Some(""));
        assert_eq!(
            p["AllowedPattern"].as_str(),
            Some(r"^(arn:aws[-a-z]*:iam::[0-9]{12}:policy/[\w+=,.@/-]+)?$"),
            "a managed policy's ARN, or empty"
        );
    }
    // SAM creates the functions' roles: the boundary is set once, for both, in Globals.
    check_boundary(
        &hub["Globals"]["Function"]["PermissionsBoundary"],
        "Globals",
    );
    let functions = resources_of(&hub, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 2);
    for (name, f) in functions {
        assert!(
            f["Properties"].get("Role").is_none(),
            "{name} brings its own role"
        );
    }
    assert!(resources_of(&hub, "AWS::IAM::Role").is_empty());
    let roles = resources_of(&spoke, "AWS::IAM::Role");
    assert_eq!(roles.len(), 2);
    for (name, role) in roles {
        check_boundary(&role["Properties"]["PermissionsBoundary"], &name);
    }
}

/// Where `name` is referenced in `v` (`!Ref name`, `!GetAtt name.X`, `${name...}` in a
/// `!Sub`), each with whether a `!If [CreateRegistryTable, ...]` branch encloses it, and
/// which branch.
fn references(v: &Value, name: &str, branch: Option<bool>, out: &mut Vec<Option<bool>>) {
    if let Some((condition, then, otherwise)) = if_parts(v) {
        if condition == "CreateRegistryTable" {
            references(then, name, Some(true), out);
            references(otherwise, name, Some(false), out);
            return;
        }
    }
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            match &t.value {
                Value::String(s)
                    if (tag == "!Ref" && s == name)
                        || (tag == "!GetAtt" && s.starts_with(&format!("{name}.")))
                        || (tag == "!Sub" && s.contains(&format!("${{{name}"))) =>
                {
                    out.push(branch)
                }
                other => references(other, name, branch, out),
            }
        }
        Value::Mapping(m) => m.values().for_each(|c| references(c, name, branch, out)),
        Value::Sequence(s) => s.iter().for_each(|c| references(c, name, branch, out)),
        _ => {}
    }
}

/// With ExistingRegistryTable, the stack creates no table and every use of the registry names
/// the given one; the created table outlives its stack (the path back after a re-deploy).
#[test]
fn an_existing_registry_table_replaces_the_created_one_everywhere() {
    let t = template();
    assert_eq!(
        t["Parameters"]["ExistingRegistryTable"]["Default"].as_str(),
        Some("")
    );
    let condition = &t["Conditions"]["CreateRegistryTable"];
    let (tag, args) = tagged(condition).unwrap();
    assert_eq!(tag, "!Equals");
    assert_eq!(
        args.as_sequence()
            .unwrap()
            .iter()
            .map(short)
            .collect::<Vec<_>>()[0],
        "!Ref ExistingRegistryTable"
    );
    let tables = resources_of(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1);
    let (name, table) = &tables[0];
    assert_eq!(table["Condition"].as_str(), Some("CreateRegistryTable"));
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let mut table_uses = Vec::new();
    let mut existing_uses = Vec::new();
    for section in ["Globals", "Resources", "Outputs"] {
        references(&t[section], name, None, &mut table_uses);
        references(
            &t[section],
            "ExistingRegistryTable",
            None,
            &mut existing_uses,
        );
    }
    assert!(table_uses.len() >= 5, "{table_uses:?}");
    assert!(
        table_uses.iter().all(|b| *b == Some(true)),
        "{name} is used outside the CreateRegistryTable branch of an !If: {table_uses:?}"
    );
    assert_eq!(
        existing_uses.len(),
        table_uses.len(),
        "every use of {name} has its ExistingRegistryTable counterpart"
    );
    assert!(existing_uses.iter().all(|b| *b == Some(false)));
}

/// With MemberOrganizationId, both functions may assume spoke roles only in its accounts.
#[test]
fn assuming_spoke_roles_is_limited_to_the_member_organization() {
    let t = template();
    for function in ["StageBindingFunction", "StageResyncFunction"] {
        let policies = &t["Resources"][function]["Properties"]["Policies"];
        let mut found = 0;
        for policy in policies.as_sequence().unwrap() {
            for st in policy["Statement"].as_sequence().unwrap() {
                if !strings(&st["Action"]).iter().any(|a| a == "sts:AssumeRole") {
                    continue;
                }
                found += 1;
                let (condition, then, otherwise) = if_parts(&st["Condition"])
                    .unwrap_or_else(|| panic!("{function}: AssumeRole without a condition"));
                assert_eq!(condition, "HasMemberOrganization");
                assert_eq!(
                    short(&then["StringEquals"]["aws:ResourceOrgID"]),
                    "!Ref MemberOrganizationId"
                );
                assert_eq!(short(otherwise), "!Ref AWS::NoValue");
            }
        }
        assert_eq!(found, 1, "{function}");
    }
}

/// The security alarm and the dashboard count the refusals of both functions.
#[test]
fn the_security_alarm_and_dashboard_cover_both_functions() {
    let t = template();
    let alarm = &t["Resources"]["SecurityEventAlarm"]["Properties"];
    let metrics = alarm["Metrics"].as_sequence().expect("a metric math alarm");
    let mut ids = BTreeMap::new();
    let mut returned = Vec::new();
    for m in metrics {
        let id = m["Id"].as_str().unwrap().to_string();
        if m["ReturnData"].as_bool() == Some(true) {
            returned.push(m["Expression"].as_str().unwrap().to_string());
            continue;
        }
        let metric = &m["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"].as_str(), Some("Stagewire"));
        assert_eq!(metric["MetricName"].as_str(), Some("SecurityEvents"));
        assert_eq!(m["MetricStat"]["Stat"].as_str(), Some("Sum"));
        let dims = metric["Dimensions"].as_sequence().unwrap();
        assert_eq!(dims.len(), 1);
        assert_eq!(dims[0]["Name"].as_str(), Some("Function"));
        ids.insert(dims[0]["Value"].as_str().unwrap().to_string(), id);
    }
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        ["stage-binding", "stage-resync"]
    );
    assert_eq!(returned.len(), 1);
    for id in ids.values() {
        assert!(returned[0].contains(id.as_str()), "{returned:?} lacks {id}");
    }
    assert!(returned[0].starts_with("SUM(["), "{returned:?}");
    assert_eq!(alarm["Threshold"].as_u64(), Some(1));
    let (_, body) =
        tagged(&t["Resources"]["StagewireDashboard"]["Properties"]["DashboardBody"]).unwrap();
    let body = body.as_str().unwrap();
    for function in ["stage-binding", "stage-resync"] {
        assert!(
            body.contains(&format!(
                r#"["Stagewire", "SecurityEvents", "Function", "{function}""#
            )),
            "the dashboard lacks {function}'s security events"
        );
    }
}

/// ECS rules match completed deployments only, load-balancer rules successful calls only: on
/// the default bus, on the member bus and in the spokes.
#[test]
fn ecs_and_load_balancer_rules_match_only_what_the_resync_acts_on() {
    let hub = template();
    let spoke = spoke();
    let mut patterns: Vec<(String, Value)> = resync_patterns(&hub);
    patterns.extend(rules_targeting(&hub, "StageResyncFunction.Arn"));
    patterns.extend(rules_targeting(&spoke, "HubEventBusArn"));
    let (mut ecs, mut elb) = (0, 0);
    for (name, p) in patterns {
        let sources = strings(&p["source"]);
        if sources.contains(&"aws.ecs".to_string()) {
            ecs += 1;
            assert_eq!(
                strings(&p["detail"]["eventName"]),
                ECS_EVENT_NAMES,
                "{name}"
            );
        }
        if sources.contains(&"aws.elasticloadbalancing".to_string()) {
            elb += 1;
            assert_eq!(
                p["detail"]["errorCode"],
                serde_yaml::from_str::<Value>("[{exists: false}]").unwrap(),
                "{name}"
            );
        }
    }
    assert_eq!((ecs, elb), (3, 3));
}

/// The ECS events after which a service's load balancers may differ.
const ECS_EVENT_NAMES: [&str; 1] = ["SERVICE_DEPLOYMENT_COMPLETED"];

/// Only the template's own rules may invoke the re-sync: SAM's events are of kinds whose
/// generated permission names their rule (EventBridgeRule, Schedule) or need none (SQS), and
/// each explicit permission names one rule of the template that targets the re-sync.
#[test]
fn only_the_templates_own_rules_may_invoke_the_resync() {
    let t = template();
    for (name, event) in t["Resources"]["StageResyncFunction"]["Properties"]["Events"]
        .as_mapping()
        .unwrap()
    {
        let kind = event["Type"].as_str().unwrap();
        assert!(
            ["EventBridgeRule", "Schedule", "SQS"].contains(&kind),
            "{name:?}: {kind}"
        );
    }
    let rules: BTreeSet<String> = rules_targeting(&t, "StageResyncFunction.Arn")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut permitted = BTreeSet::new();
    for (name, p) in resources_of(&t, "AWS::Lambda::Permission") {
        let props = &p["Properties"];
        if short(&props["FunctionName"]) != "!Ref StageResyncFunction" {
            continue;
        }
        assert_eq!(props["Action"].as_str(), Some("lambda:InvokeFunction"));
        assert_eq!(props["Principal"].as_str(), Some("events.amazonaws.com"));
        let source = short(&props["SourceArn"]);
        let rule = source
            .strip_prefix("!GetAtt ")
            .and_then(|s| s.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{name}: SourceArn {source} is not a rule's ARN"));
        assert!(rules.contains(rule), "{name}: {rule} is not a re-sync rule");
        assert_eq!(p["Condition"], t["Resources"][rule]["Condition"], "{name}");
        assert!(permitted.insert(rule.to_string()), "{rule} twice");
    }
    assert_eq!(permitted, rules, "a re-sync rule without its permission");
    // What SAM generates for the EventBridgeRule and Schedule events, when its translator is
    // at hand (scripts/bootstrap.sh installs it with sam).
    if let Some(generated) = sam_permissions() {
        assert!(generated.len() >= 5, "{generated:?}");
        for (name, source) in generated {
            let rule = source
                .strip_suffix(".Arn")
                .unwrap_or_else(|| panic!("{name}: {source}"));
            assert!(
                rule.starts_with("StageResyncFunction") || rules.contains(rule),
                "{name}: {source}"
            );
        }
    }
}

/// The `AWS::Lambda::Permission`s of the template as SAM's translator expands it: logical id
/// and `SourceArn` (`Rule.Arn`, from `Fn::GetAtt`), or None without the translator.
fn sam_permissions() -> Option<Vec<(String, String)>> {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if !std::path::Path::new(python).exists() {
        return None;
    }
    let script = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class Policies:
    def load(self):
        return {n: "arn:aws:iam::aws:policy/service-role/" + n for n in
                ["AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole"]}
t = yaml_parse(open(sys.argv[1]).read().replace("CodeUri: .", "CodeUri: s3://bucket/code.zip"))
out = transform(t, {}, Policies())
for k, r in out["Resources"].items():
    if r["Type"] == "AWS::Lambda::Permission":
        print(k, ".".join(r["Properties"]["SourceArn"]["Fn::GetAtt"]))
"#;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            script,
            concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"),
        ])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "SAM's translator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

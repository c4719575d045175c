//! The SAM template's IAM policies: every action written out (no `*`), resources scoped where
//! the service allows it, and every call the functions make granted (the calls found by running
//! each function's flows over the in-memory adapters, their actions as the AWS adapters declare
//! them); the EventBridge rules route exactly the events the re-sync handles.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;
use stagewire::aws::IAM_ACTIONS;
use stagewire::binding;
use stagewire::domain::{ApiKind, BindingSpec, Source, StageRef};
use stagewire::memory::World;
use stagewire::ports::{op, EcsLoadBalancer};
use stagewire::resync::trigger::ENDED_STACK_STATUSES;
use stagewire::resync::{self, Trigger, EVENT_KINDS};
use stagewire::wait::HealthWait;

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
    "elasticloadbalancing:DescribeListeners",
];

fn check(function: &str, needed: &[&str]) {
    let mut granted = BTreeSet::new();
    for (actions, resources) in statements(function) {
        for a in &actions {
            assert!(!a.contains('*'), "{function}: wildcard action {a}");
            granted.insert(a.clone());
        }
        if resources.iter().any(|r| r == "*") {
            for a in &actions {
                assert!(
                    UNSCOPABLE.contains(&a.as_str()),
                    "{function}: {a} is granted on every resource but can be scoped"
                );
            }
        }
    }
    for n in needed {
        assert!(granted.contains(*n), "{function} lacks {n}");
    }
}

/// The IAM actions behind the port operations a function performed, as its AWS adapters
/// declare them ([`stagewire::aws::IAM_ACTIONS`]).
fn actions_of(world: &World) -> Vec<&'static str> {
    let calls: BTreeSet<&str> = world.state().calls.iter().copied().collect();
    let mut actions = BTreeSet::new();
    for call in calls {
        let (_, needs) = IAM_ACTIONS
            .iter()
            .find(|(op, _)| *op == call)
            .unwrap_or_else(|| panic!("no IAM actions declared for port operation {call}"));
        actions.extend(needs.iter().copied());
    }
    actions.into_iter().collect()
}

/// A stack output, an ECS service behind a target group and a load balancer, all pointing at
/// the load balancer `web` (healthy), and a stage `prod` of REST API `api`.
fn world() -> World {
    let world = World::new();
    {
        let mut s = world.state();
        let lb = s.add_load_balancer("web", 1);
        s.stacks.insert(
            "S".into(),
            BTreeMap::from([("Dns".to_string(), lb.dns_name.unwrap())]),
        );
        s.services.insert(
            ("prod".into(), "web".into()),
            vec![EcsLoadBalancer {
                target_group_arn: Some(
                    "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1".into(),
                ),
                load_balancer_name: None,
                container_name: None,
                container_port: None,
            }],
        );
    }
    world
}

fn wait() -> HealthWait {
    HealthWait {
        interval: std::time::Duration::from_millis(10),
        ..HealthWait::until(tokio::time::Instant::now() + std::time::Duration::from_secs(5))
    }
}

fn spec(stage: &str, sources: &[(&str, Source)]) -> BindingSpec {
    BindingSpec {
        stage: StageRef::new(ApiKind::Rest, "api", stage),
        create_stage: true,
        variables: sources
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn every_source() -> Vec<(&'static str, Source)> {
    vec![
        (
            "out",
            Source::StackOutput {
                stack: "S".into(),
                output_key: "Dns".into(),
                at: Default::default(),
            },
        ),
        (
            "ecs",
            Source::EcsService {
                cluster: "prod".into(),
                service: "web".into(),
                container_name: None,
                container_port: None,
                at: Default::default(),
            },
        ),
        (
            "lb",
            Source::LoadBalancer {
                name: "web".into(),
                at: Default::default(),
            },
        ),
        ("lit", Source::Literal { value: "v".into() }),
        (
            "far",
            Source::StackOutput {
                stack: "S".into(),
                output_key: "Dns".into(),
                at: stagewire::domain::Place {
                    region: Some("eu-west-1".into()),
                    role_arn: Some("arn:aws:iam::222222222222:role/stagewire-source".into()),
                },
            },
        ),
    ]
}

/// Every lifecycle step of the custom resource over every source kind.
#[tokio::test]
async fn stage_binding_is_granted_every_action_its_adapters_call() {
    let world = world();
    let ports = world.ports();
    let all = spec("prod", &every_source());
    // The handler's authenticity check, and the authorization rule reading the API's tags.
    ports.outputs.stack_resource("s", "B").await.unwrap();
    let mut tagged = ports.clone();
    tagged.authorization = stagewire::domain::Authorization::ApiTags;
    let _ = binding::authorize(&tagged, "s", &all.stage).await;
    let a = binding::create(&ports, "s", "B", &all, 4096, 1, &wait())
        .await
        .unwrap();
    // The output moves to a load balancer that serves only from its second health check: the
    // update waits for it.
    let next = world.state().add_load_balancer("next", 0);
    world
        .state()
        .stacks
        .get_mut("S")
        .unwrap()
        .insert("Dns".into(), next.dns_name.unwrap());
    let arn = next.arn.unwrap();
    world.before(op::TARGET_HEALTH, |_| {});
    world.before(op::TARGET_HEALTH, |_| {});
    world.before(op::TARGET_HEALTH, move |s| {
        s.healthy.insert(arn, 1);
    });
    binding::update(
        &ports,
        "s",
        "B",
        &a.physical_id,
        &spec("prod", &every_source()[..1]),
        4096,
        2,
        &wait(),
    )
    .await
    .unwrap();
    // A classic load balancer is looked up when no ELBv2 one has the name.
    let classic = spec(
        "prod",
        &[(
            "old",
            Source::LoadBalancer {
                name: "legacy".into(),
                at: Default::default(),
            },
        )],
    );
    binding::create(&ports, "s", "C", &classic, 4096, 3, &wait())
        .await
        .unwrap_err();
    binding::delete(&ports, "s", "B", &a.physical_id, None)
        .await
        .unwrap();
    binding::delete(&ports, "s", "B", "stagewire:failed:1", None)
        .await
        .unwrap();
    // A rename: the variable's holder left the stack's template.
    let one = spec("prod", &every_source()[3..]);
    binding::create(&ports, "s", "Old", &one, 4096, 4, &wait())
        .await
        .unwrap();
    world
        .state()
        .templates
        .insert("s".into(), ["New".to_string()].into());
    binding::create(&ports, "s", "New", &one, 4096, 5, &wait())
        .await
        .unwrap();
    // The Deletes of Creates that never answered, with and without their properties.
    binding::delete(&ports, "s", "Gone", "s-Gone-ABC123", Some(&one))
        .await
        .unwrap();
    binding::delete(&ports, "s", "Gone", "s-Gone-ABC123", None)
        .await
        .unwrap();

    check("StageBindingFunction", &actions_of(&world));
}

/// Every trigger's lookup, and a reconcile that reads several stages of one API, checks a new
/// load balancer's health, loses a conditional write and undoes an orphaned write.
#[tokio::test]
async fn stage_resync_is_granted_every_action_its_adapters_call() {
    let world = world();
    let ports = world.ports();
    // The re-sync's check that a binding's right to its API still holds.
    let mut tagged = ports.clone();
    tagged.authorization = stagewire::domain::Authorization::ApiTags;
    let _ = binding::authorize(&tagged, "s", &spec("prod", &every_source()).stage).await;
    for stage in ["dev", "prod"] {
        binding::create(
            &ports,
            "s",
            stage,
            &spec(stage, &every_source()),
            4096,
            1,
            &wait(),
        )
        .await
        .unwrap();
    }
    world.state().calls.clear();
    {
        let mut s = world.state();
        let dns = s.add_load_balancer("next", 0).dns_name.unwrap();
        s.stacks.get_mut("S").unwrap().insert("Dns".into(), dns);
    }
    world.before(op::RECORD_SYNC, |s| {
        s.registry.values_mut().next().unwrap().version += 1;
    });
    for trigger in [
        Trigger::Stack("S".into()),
        Trigger::LoadBalancer {
            name: "web".into(),
            deleted: true,
        },
        Trigger::EcsService {
            cluster: "prod".into(),
            service: "web".into(),
        },
        Trigger::Everything,
    ] {
        let records = resync::affected(&ports, &trigger).await.unwrap();
        resync::reconcile(&ports, records).await;
    }
    let actions = actions_of(&world);
    assert!(
        actions.contains(&"elasticloadbalancing:DescribeTargetHealth"),
        "{actions:?}"
    );

    check("StageResyncFunction", &actions);
}

#[test]
fn the_resync_cannot_create_or_delete_stages() {
    for (actions, _) in statements("StageResyncFunction") {
        for a in actions {
            assert!(
                a != "apigateway:POST" && a != "apigateway:DELETE",
                "the re-sync only reads and patches stages, yet has {a}"
            );
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
                        let trigger = resync::classify(&event);
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

/// The spoke's role reads exactly what resolving sources calls (least privilege), and trusts
/// only the hub's function roles, with stagewire's session name.
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
    let reads = [
        op::STACK_OUTPUTS,
        op::SERVICE_LOAD_BALANCERS,
        op::LOAD_BALANCER_V2,
        op::LOAD_BALANCER_CLASSIC,
        op::TARGET_GROUP_LOAD_BALANCERS,
        op::TARGET_HEALTH,
        op::ALL_LOAD_BALANCERS,
    ];
    let needed: BTreeSet<String> = IAM_ACTIONS
        .iter()
        .filter(|(op, _)| reads.contains(op))
        .flat_map(|(_, actions)| actions.iter().map(|a| a.to_string()))
        .collect();
    assert_eq!(granted, needed);

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

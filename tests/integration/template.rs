//! The SAM template's IAM policies: every action written out (no `*`), resources scoped where
//! the service allows it, and every call the functions make granted.

use std::collections::BTreeSet;

use serde_yaml::Value;

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

#[test]
fn stage_binding_permissions() {
    check(
        "StageBindingFunction",
        &[
            "apigateway:GET",
            "apigateway:POST",
            "apigateway:PATCH",
            "apigateway:DELETE",
            "cloudformation:DescribeStacks",
            "ecs:DescribeServices",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        ],
    );
}

#[test]
fn stage_resync_permissions() {
    check(
        "StageResyncFunction",
        &[
            "apigateway:GET",
            "apigateway:PATCH",
            "cloudformation:DescribeStacks",
            "ecs:DescribeServices",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:Scan",
        ],
    );
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

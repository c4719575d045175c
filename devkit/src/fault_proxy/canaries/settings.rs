//! A stage's canary as the proxy keeps it, and the `UpdateStage` patch operations applied to it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One stage's canary, as the proxy keeps it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Canary {
    /// The canary's deployment.
    pub deployment_id: Option<String>,
    /// The share of the stage's requests the canary serves, 0.0 to 100.0.
    pub percent_traffic: f64,
    /// The stage variables the canary's requests see in place of (or beside) the stage's.
    pub stage_variable_overrides: BTreeMap<String, String>,
    /// Whether the canary uses the stage's cache.
    pub use_stage_cache: bool,
}

impl Canary {
    /// `canarySettings` as API Gateway answers it.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        if let Some(id) = &self.deployment_id {
            obj.insert("deploymentId".into(), json!(id));
        }
        obj.insert("percentTraffic".into(), json!(self.percent_traffic));
        if !self.stage_variable_overrides.is_empty() {
            obj.insert(
                "stageVariableOverrides".into(),
                json!(self.stage_variable_overrides),
            );
        }
        obj.insert("useStageCache".into(), json!(self.use_stage_cache));
        Value::Object(obj)
    }

    /// Reads `canarySettings` as `CreateDeployment` or `CreateStage` sends it.
    pub(super) fn from_input(input: &Value) -> Result<Canary, String> {
        let mut canary = Canary::default();
        if let Some(p) = input.get("percentTraffic") {
            let p = p.as_f64().ok_or("percentTraffic must be a number")?;
            canary.percent_traffic = percent(p)?;
        }
        if let Some(id) = input.get("deploymentId").and_then(Value::as_str) {
            canary.deployment_id = Some(id.to_string());
        }
        if let Some(cache) = input.get("useStageCache") {
            canary.use_stage_cache = cache.as_bool().ok_or("useStageCache must be a boolean")?;
        }
        if let Some(overrides) = input.get("stageVariableOverrides") {
            let overrides = overrides
                .as_object()
                .ok_or("stageVariableOverrides must be a map")?;
            for (name, value) in overrides {
                let value = value.as_str().ok_or("override values must be strings")?;
                check_variable(name, value)?;
                canary
                    .stage_variable_overrides
                    .insert(name.clone(), value.to_string());
            }
        }
        Ok(canary)
    }
}

/// `p` when it is a share API Gateway accepts (0.0 to 100.0).
fn percent(p: f64) -> Result<f64, String> {
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!(
            "Invalid percentTraffic {p}: it must be between 0.0 and 100.0"
        ))
    }
}

/// A stage variable's name and value as API Gateway accepts them.
pub(super) fn check_variable(name: &str, value: &str) -> Result<(), String> {
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(format!(
            "Invalid stage variable name {name}: use alphanumeric and underscore characters"
        ));
    }
    let value_ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#&=,".contains(c));
    if !value_ok {
        return Err(format!(
            "Invalid stage variable value {value} for {name}: it must match [A-Za-z0-9-._~:/?#&=,]+"
        ));
    }
    Ok(())
}

pub(super) fn field<'a>(op: &'a Value, name: &str) -> &'a str {
    op.get(name).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn touches_canary(op: &Value) -> bool {
    field(op, "path").starts_with("/canarySettings")
        || field(op, "from").starts_with("/canarySettings")
}

/// Applies `ops` in order to the stage's canary (`canary`, `None` when off), given the stage's
/// deployment; answers the canary after them and the operations that go on to moto.
pub(super) fn apply(
    mut canary: Option<Canary>,
    stage_deployment: Option<&str>,
    ops: &[Value],
) -> Result<(Option<Canary>, Vec<Value>), String> {
    let mut upstream = Vec::new();
    for op in ops {
        let (kind, path, from) = (field(op, "op"), field(op, "path"), field(op, "from"));
        let value = || field(op, "value");
        match (kind, path) {
            ("remove", "/canarySettings") => canary = None,
            ("replace", "/canarySettings/percentTraffic") => {
                let p: f64 = value()
                    .parse()
                    .map_err(|_| format!("Invalid percentTraffic {}", value()))?;
                enabled(&mut canary, stage_deployment).percent_traffic = percent(p)?;
            }
            ("replace", "/canarySettings/deploymentId") => {
                enabled(&mut canary, stage_deployment).deployment_id = Some(value().to_string());
            }
            ("replace", "/canarySettings/useStageCache") => {
                enabled(&mut canary, stage_deployment).use_stage_cache = match value() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("Invalid useStageCache {other}")),
                };
            }
            ("copy", "/variables") if from == "/canarySettings/stageVariableOverrides" => {
                let c = canary
                    .as_ref()
                    .ok_or("Canary is not enabled on the stage")?;
                for (name, value) in &c.stage_variable_overrides {
                    let path = format!("/variables/{}", name.replace('~', "~0").replace('/', "~1"));
                    upstream.push(json!({"op": "replace", "path": path, "value": value}));
                }
            }
            ("copy", "/deploymentId") if from == "/canarySettings/deploymentId" => {
                let c = canary
                    .as_ref()
                    .ok_or("Canary is not enabled on the stage")?;
                let id = c
                    .deployment_id
                    .as_ref()
                    .ok_or("The canary has no deploymentId")?;
                upstream.push(json!({"op": "replace", "path": "/deploymentId", "value": id}));
            }
            (_, _) if path.starts_with(OVERRIDES) => {
                apply_override(&mut canary, stage_deployment, op)?;
            }
            _ if touches_canary(op) => {
                return Err(format!(
                    "Invalid patch operation specified: {kind} {path} {from}"
                ))
            }
            _ => upstream.push(op.clone()),
        }
    }
    Ok((canary, upstream))
}

const OVERRIDES: &str = "/canarySettings/stageVariableOverrides/";

/// `replace` or `remove` of `/canarySettings/stageVariableOverrides/NAME`.
fn apply_override(
    canary: &mut Option<Canary>,
    stage_deployment: Option<&str>,
    op: &Value,
) -> Result<(), String> {
    let (kind, path, value) = (field(op, "op"), field(op, "path"), field(op, "value"));
    let name = path[OVERRIDES.len()..]
        .replace("~1", "/")
        .replace("~0", "~");
    match kind {
        "replace" => {
            check_variable(&name, value)?;
            enabled(canary, stage_deployment)
                .stage_variable_overrides
                .insert(name, value.to_string());
        }
        "remove" => {
            if let Some(c) = canary.as_mut() {
                c.stage_variable_overrides.remove(&name);
            }
        }
        other => return Err(format!("Invalid patch operation {other} on {path}")),
    }
    Ok(())
}

/// The canary, created on the stage's deployment with 0.0% and no overrides when it is off.
fn enabled<'a>(canary: &'a mut Option<Canary>, stage_deployment: Option<&str>) -> &'a mut Canary {
    canary.get_or_insert_with(|| Canary {
        deployment_id: stage_deployment.map(str::to_owned),
        ..Canary::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: &str, path: &str, value: &str) -> Value {
        json!({"op": kind, "path": path, "value": value})
    }

    fn copy(from: &str, path: &str) -> Value {
        json!({"op": "copy", "from": from, "path": path})
    }

    #[test]
    fn a_patch_creates_the_canary_on_the_stage_deployment() {
        let ops = [
            op("replace", "/canarySettings/percentTraffic", "10.5"),
            op(
                "replace",
                "/canarySettings/stageVariableOverrides/elb",
                "new.elb",
            ),
            op("replace", "/variables/other", "x"),
        ];
        let (canary, upstream) = apply(None, Some("d1"), &ops).unwrap();
        let canary = canary.unwrap();
        assert_eq!(canary.deployment_id.as_deref(), Some("d1"));
        assert_eq!(canary.percent_traffic, 10.5);
        assert_eq!(canary.stage_variable_overrides["elb"], "new.elb");
        assert!(!canary.use_stage_cache);
        assert_eq!(upstream, [op("replace", "/variables/other", "x")]);
    }

    #[test]
    fn promotion_copies_overrides_and_deployment_then_remove_turns_it_off() {
        let canary = Canary {
            deployment_id: Some("d2".into()),
            percent_traffic: 10.0,
            stage_variable_overrides: BTreeMap::from([("elb".into(), "new.elb".into())]),
            use_stage_cache: false,
        };
        let ops = [
            op("replace", "/canarySettings/percentTraffic", "0.0"),
            copy("/canarySettings/stageVariableOverrides", "/variables"),
            copy("/canarySettings/deploymentId", "/deploymentId"),
        ];
        let (after, upstream) = apply(Some(canary.clone()), Some("d1"), &ops).unwrap();
        assert_eq!(after.as_ref().map(|c| c.percent_traffic), Some(0.0));
        assert_eq!(
            upstream,
            [
                op("replace", "/variables/elb", "new.elb"),
                op("replace", "/deploymentId", "d2"),
            ]
        );
        let off = [json!({"op": "remove", "path": "/canarySettings"})];
        assert_eq!(apply(after, Some("d2"), &off).unwrap(), (None, vec![]));
        // A copy reads the canary as the operations before it left it.
        let both = [
            json!({"op": "remove", "path": "/canarySettings"}),
            copy("/canarySettings/stageVariableOverrides", "/variables"),
        ];
        assert!(apply(Some(canary), Some("d1"), &both).is_err());
    }

    #[test]
    fn invalid_shares_values_and_operations_are_refused() {
        for bad in ["100.1", "-1", "ten"] {
            let ops = [op("replace", "/canarySettings/percentTraffic", bad)];
            assert!(apply(None, None, &ops).is_err(), "{bad}");
        }
        for ok in ["0.0", "100.0", "33.3"] {
            let ops = [op("replace", "/canarySettings/percentTraffic", ok)];
            assert!(apply(None, None, &ops).is_ok(), "{ok}");
        }
        let bad_value = [op(
            "replace",
            "/canarySettings/stageVariableOverrides/v",
            "a b",
        )];
        assert!(apply(None, None, &bad_value).is_err());
        let bad_name = [op(
            "replace",
            "/canarySettings/stageVariableOverrides/a-b",
            "x",
        )];
        assert!(apply(None, None, &bad_name).is_err());
        let unknown = [op("replace", "/canarySettings/other", "x")];
        assert!(apply(None, None, &unknown).is_err());
        let no_canary = [copy("/canarySettings/deploymentId", "/deploymentId")];
        assert!(apply(None, Some("d1"), &no_canary).is_err());
        assert!(Canary::from_input(&json!({"percentTraffic": 101.0})).is_err());
        let read = Canary::from_input(&json!({"percentTraffic": 5.0, "useStageCache": true,
            "stageVariableOverrides": {"elb": "a.elb"}}))
        .unwrap();
        assert_eq!(
            read.to_json(),
            json!({"percentTraffic": 5.0, "useStageCache": true,
                "stageVariableOverrides": {"elb": "a.elb"}})
        );
    }
}

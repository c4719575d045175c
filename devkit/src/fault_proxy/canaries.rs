//! REST API stage canaries (`canarySettings`) as API Gateway documents them, played in front of
//! moto, which keeps no canary (it ignores or misapplies every `/canarySettings` patch).
//!
//! The proxy keeps each stage's canary (`deploymentId`, `percentTraffic`,
//! `stageVariableOverrides`, `useStageCache`) and plays:
//! - `UpdateStage` (`PATCH /restapis/{id}/stages/{name}`): `replace` of
//!   `/canarySettings/percentTraffic` (0.0 to 100.0), `/canarySettings/deploymentId`,
//!   `/canarySettings/useStageCache` (`true` / `false`) and
//!   `/canarySettings/stageVariableOverrides/NAME`; `remove` of an override and of
//!   `/canarySettings` (turns the canary off; removing an absent canary changes nothing);
//!   promotion's `copy` from `/canarySettings/stageVariableOverrides` to `/variables` (each override
//!   becomes the stage's variable; the others stay) and from `/canarySettings/deploymentId` to
//!   `/deploymentId`. A canary created by a patch starts on the stage's deployment with 0.0% and
//!   no overrides. Operations apply in order; the others in the same request go on to moto in one
//!   patch, and the canary changes only when moto accepts it. A copy does not change
//!   `percentTraffic` and leaves the canary enabled, as the service does.
//! - `GetStage` and `GetStages`: the canary is added to moto's answer as `canarySettings`.
//! - `CreateDeployment` with `stageName` and `canarySettings`: the stage must exist (else 400
//!   `Invalid deployment content specified.Stage NAME must already be created before making a
//!   canary release deployment`); the deployment is created in moto without touching the stage
//!   and becomes the canary's, with the given share, overrides and cache flag; the stage keeps its
//!   deployment and variables. `variables` given beside `canarySettings` are refused (the proxy
//!   does not play them).
//! - `CreateDeployment` onto a stage whose canary is enabled, without `canarySettings`: 400
//!   `BadRequestException` `Invalid deployment content specified.Non canary deployment not
//!   supported on stage NAME because Canary is enabled. Provide CanarySettings in
//!   deploymentInput.` A canary is enabled until `/canarySettings` is removed (a promoted canary
//!   at 0.0% still is).
//! - `CreateStage` with `canarySettings`: kept as the stage's canary; `DeleteStage` and
//!   `DeleteRestApi` forget the canaries they delete.
//!
//! Override names must be alphanumeric or `_`, and values match `[A-Za-z0-9-._~:/?#&=,]+`, as
//! for stage variables. Errors are 400 `BadRequestException`.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::{json, Map, Value};

use super::http_api::{answer, exchange};
use super::{bad_gateway, json_error, Protocol, Shared};
use crate::http::Body;
use crate::FaultProxy;

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
    fn from_input(input: &Value) -> Result<Canary, String> {
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
fn check_variable(name: &str, value: &str) -> Result<(), String> {
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

impl FaultProxy {
    /// The canary the proxy keeps for the REST API stage `api`/`stage` (`None`: no canary).
    pub fn canary(&self, api: &str, stage: &str) -> Option<Canary> {
        self.lock()
            .canaries
            .get(&(api.to_string(), stage.to_string()))
            .cloned()
    }
}

fn bad_request(message: &str) -> Response<Body> {
    json_error(Protocol::Rest, 400, "BadRequestException", message, &[])
}

type Key = (String, String);

fn key(api: &str, stage: &str) -> Key {
    (api.to_string(), stage.to_string())
}

/// Answers the calls this module plays; `None` for every other request.
pub(super) async fn play(shared: &Shared, parts: &Parts, body: &Bytes) -> Option<Response<Body>> {
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["", "restapis", api, "stages", stage]) => {
            let canary = shared.lock().canaries.get(&key(api, stage)).cloned()?;
            Some(read_stage(shared, parts, Some(canary), api).await)
        }
        (&Method::GET, ["", "restapis", api, "stages"]) => {
            let any = shared.lock().canaries.keys().any(|(a, _)| a == api);
            any.then_some(())?;
            Some(read_stage(shared, parts, None, api).await)
        }
        (&Method::PATCH, ["", "restapis", api, "stages", stage]) => {
            let ops = patch_operations(body)?;
            let touches = ops.iter().any(touches_canary);
            let has = shared.lock().canaries.contains_key(&key(api, stage));
            (touches || has).then_some(())?;
            Some(update_stage(shared, parts, ops, api, stage).await)
        }
        (&Method::POST, ["", "restapis", api, "deployments"]) => {
            create_deployment(shared, parts, body, api).await
        }
        (&Method::POST, ["", "restapis", api, "stages"]) => {
            let input: Value = serde_json::from_slice(body).ok()?;
            let stale = shared
                .lock()
                .canaries
                .contains_key(&key(api, field(&input, "stageName")));
            (stale || input.get("canarySettings").is_some()).then_some(())?;
            Some(create_stage(shared, parts, &input, body, api).await)
        }
        (&Method::DELETE, ["", "restapis", api, "stages", stage]) => {
            let k = key(api, stage);
            shared.lock().canaries.contains_key(&k).then_some(())?;
            Some(delete_and_forget(shared, parts, |key| *key == k).await)
        }
        (&Method::DELETE, ["", "restapis", api]) => {
            let api = api.to_string();
            let any = shared.lock().canaries.keys().any(|(a, _)| *a == api);
            any.then_some(())?;
            Some(delete_and_forget(shared, parts, |(a, _)| *a == api).await)
        }
        _ => None,
    }
}

fn patch_operations(body: &Bytes) -> Option<Vec<Value>> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    doc.get("patchOperations")?.as_array().cloned()
}

fn field<'a>(op: &'a Value, name: &str) -> &'a str {
    op.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn touches_canary(op: &Value) -> bool {
    field(op, "path").starts_with("/canarySettings")
        || field(op, "from").starts_with("/canarySettings")
}

/// Moto's stage (or stages) with the kept canaries added.
async fn read_stage(
    shared: &Shared,
    parts: &Parts,
    canary: Option<Canary>,
    api: &str,
) -> Response<Body> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = match exchange(shared, parts, Method::GET, path, Bytes::new()).await {
        Ok(answered) => answered,
        Err(e) => return bad_gateway(&e),
    };
    if status != 200 {
        return answer(status, body);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
        return answer(status, body);
    };
    match canary {
        Some(canary) => add_canary(&mut doc, Some(&canary)),
        None => {
            let canaries = shared.lock().canaries.clone();
            if let Some(Value::Array(items)) = doc.get_mut("item") {
                for item in items {
                    let stage = field(item, "stageName").to_string();
                    add_canary(item, canaries.get(&key(api, &stage)));
                }
            }
        }
    }
    answer(200, Bytes::from(doc.to_string()))
}

fn add_canary(stage: &mut Value, canary: Option<&Canary>) {
    if let Some(obj) = stage.as_object_mut() {
        match canary {
            Some(c) => obj.insert("canarySettings".into(), c.to_json()),
            None => obj.remove("canarySettings"),
        };
    }
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
            (_, _) if path.starts_with("/canarySettings/stageVariableOverrides/") => {
                let name = path["/canarySettings/stageVariableOverrides/".len()..]
                    .replace("~1", "/")
                    .replace("~0", "~");
                match kind {
                    "replace" => {
                        check_variable(&name, value())?;
                        enabled(&mut canary, stage_deployment)
                            .stage_variable_overrides
                            .insert(name, value().to_string());
                    }
                    "remove" => {
                        if let Some(c) = canary.as_mut() {
                            c.stage_variable_overrides.remove(&name);
                        }
                    }
                    other => return Err(format!("Invalid patch operation {other} on {path}")),
                }
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

/// The canary, created on the stage's deployment with 0.0% and no overrides when it is off.
fn enabled<'a>(canary: &'a mut Option<Canary>, stage_deployment: Option<&str>) -> &'a mut Canary {
    canary.get_or_insert_with(|| Canary {
        deployment_id: stage_deployment.map(str::to_owned),
        ..Canary::default()
    })
}

async fn update_stage(
    shared: &Shared,
    parts: &Parts,
    ops: Vec<Value>,
    api: &str,
    stage: &str,
) -> Response<Body> {
    let _one_at_a_time = shared.canary_writes.lock().await;
    let path = format!("/restapis/{api}/stages/{stage}");
    let current = match exchange(shared, parts, Method::GET, &path, Bytes::new()).await {
        Ok((200, body)) => serde_json::from_slice::<Value>(&body).unwrap_or_default(),
        Ok((status, body)) => return answer(status, body),
        Err(e) => return bad_gateway(&e),
    };
    let k = key(api, stage);
    let before = shared.lock().canaries.get(&k).cloned();
    let (after, upstream) = match apply(
        before,
        current.get("deploymentId").and_then(Value::as_str),
        &ops,
    ) {
        Ok(applied) => applied,
        Err(message) => return bad_request(&message),
    };
    let patch = Bytes::from(json!({ "patchOperations": upstream }).to_string());
    let (status, body) = match exchange(shared, parts, Method::PATCH, &path, patch).await {
        Ok(answered) => answered,
        Err(e) => return bad_gateway(&e),
    };
    if !(200..300).contains(&status) {
        return answer(status, body);
    }
    {
        let mut state = shared.lock();
        match &after {
            Some(canary) => state.canaries.insert(k, canary.clone()),
            None => state.canaries.remove(&k),
        };
    }
    let mut doc = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    add_canary(&mut doc, after.as_ref());
    answer(status, Bytes::from(doc.to_string()))
}

async fn create_deployment(
    shared: &Shared,
    parts: &Parts,
    body: &Bytes,
    api: &str,
) -> Option<Response<Body>> {
    let input: Value = serde_json::from_slice(body).ok()?;
    let stage = input.get("stageName").and_then(Value::as_str)?.to_string();
    let k = key(api, &stage);
    let Some(settings) = input.get("canarySettings") else {
        if shared.lock().canaries.contains_key(&k) {
            return Some(bad_request(&format!(
                "Invalid deployment content specified.Non canary deployment not supported on stage {stage} because Canary is enabled. Provide CanarySettings in deploymentInput."
            )));
        }
        return None;
    };
    let mut canary = match Canary::from_input(settings) {
        Ok(canary) => canary,
        Err(message) => return Some(bad_request(&message)),
    };
    if input.get("variables").is_some() {
        return Some(bad_request(
            "the fault proxy does not play variables given beside canarySettings",
        ));
    }
    let _one_at_a_time = shared.canary_writes.lock().await;
    let stage_path = format!("/restapis/{api}/stages/{stage}");
    match exchange(shared, parts, Method::GET, &stage_path, Bytes::new()).await {
        Ok((200, _)) => {}
        Ok(_) => {
            return Some(bad_request(&format!(
                "Invalid deployment content specified.Stage {stage} must already be created before making a canary release deployment"
            )))
        }
        Err(e) => return Some(bad_gateway(&e)),
    }
    let mut plain = input.clone();
    if let Some(obj) = plain.as_object_mut() {
        for moved in ["stageName", "stageDescription", "canarySettings"] {
            obj.remove(moved);
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let sent = Bytes::from(plain.to_string());
    let (status, answered) = match exchange(shared, parts, Method::POST, path, sent).await {
        Ok(answered) => answered,
        Err(e) => return Some(bad_gateway(&e)),
    };
    if !(200..300).contains(&status) {
        return Some(answer(status, answered));
    }
    let doc = serde_json::from_slice::<Value>(&answered).unwrap_or_default();
    canary.deployment_id = doc.get("id").and_then(Value::as_str).map(str::to_owned);
    shared.lock().canaries.insert(k, canary);
    Some(answer(status, answered))
}

async fn create_stage(
    shared: &Shared,
    parts: &Parts,
    input: &Value,
    body: &Bytes,
    api: &str,
) -> Response<Body> {
    let canary = match input.get("canarySettings").map(Canary::from_input) {
        Some(Ok(canary)) => Some(canary),
        Some(Err(message)) => return bad_request(&message),
        None => None,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, answered) = match exchange(shared, parts, Method::POST, path, body.clone()).await {
        Ok(answered) => answered,
        Err(e) => return bad_gateway(&e),
    };
    if !(200..300).contains(&status) {
        return answer(status, answered);
    }
    let mut doc = serde_json::from_slice::<Value>(&answered).unwrap_or_default();
    let stage = field(&doc, "stageName").to_string();
    let canary = canary.map(|mut c| {
        if c.deployment_id.is_none() {
            c.deployment_id = doc
                .get("deploymentId")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        c
    });
    {
        let mut state = shared.lock();
        match &canary {
            Some(c) => state.canaries.insert(key(api, &stage), c.clone()),
            None => state.canaries.remove(&key(api, &stage)),
        };
    }
    add_canary(&mut doc, canary.as_ref());
    answer(status, Bytes::from(doc.to_string()))
}

async fn delete_and_forget(
    shared: &Shared,
    parts: &Parts,
    deleted: impl Fn(&Key) -> bool,
) -> Response<Body> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = match exchange(shared, parts, Method::DELETE, path, Bytes::new()).await {
        Ok(answered) => answered,
        Err(e) => return bad_gateway(&e),
    };
    if (200..300).contains(&status) {
        shared.lock().canaries.retain(|k, _| !deleted(k));
    }
    answer(status, body)
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

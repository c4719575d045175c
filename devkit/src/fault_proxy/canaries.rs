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

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::{json, Value};

use super::http_api::{answer, exchange};
use super::{bad_gateway, json_error, Protocol, Shared};
use crate::http::Body;
use crate::FaultProxy;

mod settings;
pub use settings::Canary;
use settings::{apply, field, touches_canary};

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

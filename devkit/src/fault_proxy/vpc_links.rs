//! VPC links and private integrations as API Gateway answers them, played in front of moto.
//!
//! Moto answers every VPC link `AVAILABLE` from its creation and keeps no `statusMessage`; API
//! Gateway takes minutes to make a link `AVAILABLE`, and a link can fail. For links registered
//! with [`FaultProxy::hold_vpc_link`] or [`FaultProxy::fail_vpc_link`] the proxy rewrites the
//! status of moto's answers to `GET /vpclinks`, `GET /vpclinks/{id}` (REST API links: `status`,
//! `statusMessage`), `GET /v2/vpclinks` and `GET /v2/vpclinks/{id}` (`vpcLinkStatus`,
//! `vpcLinkStatusMessage`).
//!
//! Moto also drops a REST integration's `connectionId`: the proxy keeps the one each
//! `PutIntegration` sends and adds it to the answers of `PutIntegration` and `GetIntegration`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::Value;

use super::http_api::{answer, exchange};
use super::{bad_gateway, Shared};
use crate::http::Body;
use crate::FaultProxy;

/// What the proxy answers for one VPC link in place of moto's `AVAILABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Play {
    /// `PENDING` until then, `AVAILABLE` from then on.
    Pending(Instant),
    /// `FAILED` with this status message.
    Failed(String),
}

/// The status message of a link that is `AVAILABLE`.
pub const AVAILABLE_MESSAGE: &str = "Your vpc link is ready for use";
/// The status message of a link held `PENDING`.
pub const PENDING_MESSAGE: &str = "Your vpc link is being created";

impl Play {
    /// The status and status message to answer at `now`.
    fn status(&self, now: Instant) -> (&'static str, &str) {
        match self {
            Play::Pending(until) if now < *until => ("PENDING", PENDING_MESSAGE),
            Play::Pending(_) => ("AVAILABLE", AVAILABLE_MESSAGE),
            Play::Failed(message) => ("FAILED", message),
        }
    }
}

impl FaultProxy {
    /// Answers the VPC link `id` (REST or HTTP API) `PENDING` for `pending` from now, then
    /// `AVAILABLE`.
    pub fn hold_vpc_link(&self, id: &str, pending: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(pending)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.lock()
            .vpc_links
            .insert(id.to_string(), Play::Pending(until));
    }

    /// Answers the VPC link `id` (REST or HTTP API) `FAILED` with `message`, from now on.
    pub fn fail_vpc_link(&self, id: &str, message: &str) {
        self.lock()
            .vpc_links
            .insert(id.to_string(), Play::Failed(message.to_string()));
    }

    /// Answers the VPC link `id` as moto does (`AVAILABLE`) from now on.
    pub fn release_vpc_link(&self, id: &str) {
        self.lock().vpc_links.remove(id);
    }
}

/// Rewrites the status of one link document: REST (`id`, `status`, `statusMessage`) or HTTP API
/// (`vpcLinkId`, `vpcLinkStatus`, `vpcLinkStatusMessage`).
pub(super) fn rewrite_link(link: &mut Value, plays: &BTreeMap<String, Play>, now: Instant) {
    let Some(obj) = link.as_object_mut() else {
        return;
    };
    let (id_key, status_key, message_key) = if obj.contains_key("vpcLinkId") {
        ("vpcLinkId", "vpcLinkStatus", "vpcLinkStatusMessage")
    } else {
        ("id", "status", "statusMessage")
    };
    let Some(play) = obj
        .get(id_key)
        .and_then(Value::as_str)
        .and_then(|id| plays.get(id))
    else {
        return;
    };
    let (status, message) = play.status(now);
    obj.insert(status_key.into(), Value::String(status.into()));
    obj.insert(message_key.into(), Value::String(message.into()));
}

/// Rewrites a link, or each link of a list (`item` for REST, `items` for HTTP APIs).
pub(super) fn rewrite(doc: &mut Value, plays: &BTreeMap<String, Play>, now: Instant) {
    for key in ["item", "items"] {
        if let Some(Value::Array(links)) = doc.get_mut(key) {
            for link in links {
                rewrite_link(link, plays, now);
            }
            return;
        }
    }
    rewrite_link(doc, plays, now);
}

/// The key of a REST integration's path (`/restapis/{api}/resources/{id}/methods/{m}/integration`).
fn integration_key(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "restapis", api, "resources", resource, "methods", method, "integration"] => {
            Some(format!("{api}/{resource}/{}", method.to_ascii_uppercase()))
        }
        _ => None,
    }
}

/// Answers the VPC link reads and the integration calls this module plays; `None` for every
/// other request.
pub(super) async fn play(shared: &Shared, parts: &Parts, body: &Bytes) -> Option<Response<Body>> {
    let path = parts.uri.path();
    let segments: Vec<&str> = path.split('/').collect();
    let link_read = parts.method == Method::GET
        && matches!(
            segments.as_slice(),
            ["", "vpclinks"]
                | ["", "vpclinks", _]
                | ["", "v2", "vpclinks"]
                | ["", "v2", "vpclinks", _]
        );
    if link_read {
        return links(shared, parts).await;
    }
    let key = integration_key(path)?;
    match parts.method {
        Method::PUT => Some(put_integration(shared, parts, body, key).await),
        Method::GET => integration_read(shared, parts, key).await,
        Method::DELETE => {
            shared.lock().connection_ids.remove(&key);
            None
        }
        _ => None,
    }
}

async fn links(shared: &Shared, parts: &Parts) -> Option<Response<Body>> {
    if shared.lock().vpc_links.is_empty() {
        return None;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = match exchange(shared, parts, Method::GET, path, Bytes::new()).await {
        Ok(answered) => answered,
        Err(e) => return Some(bad_gateway(&e)),
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
        return Some(answer(status, body));
    };
    if status == 200 {
        let plays = shared.lock().vpc_links.clone();
        rewrite(&mut doc, &plays, Instant::now());
    }
    Some(answer(status, Bytes::from(doc.to_string())))
}

async fn put_integration(
    shared: &Shared,
    parts: &Parts,
    body: &Bytes,
    key: String,
) -> Response<Body> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let sent = serde_json::from_slice::<Value>(body).unwrap_or_default();
    let connection_id = sent.get("connectionId").and_then(Value::as_str);
    let (status, answered) = match exchange(shared, parts, Method::PUT, path, body.clone()).await {
        Ok(answered) => answered,
        Err(e) => return bad_gateway(&e),
    };
    if !(200..300).contains(&status) {
        return answer(status, answered);
    }
    let mut doc = serde_json::from_slice::<Value>(&answered).unwrap_or_default();
    match connection_id {
        Some(id) => {
            shared.lock().connection_ids.insert(key, id.to_string());
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("connectionId".into(), Value::String(id.to_string()));
            }
        }
        None => {
            shared.lock().connection_ids.remove(&key);
        }
    }
    answer(status, Bytes::from(doc.to_string()))
}

async fn integration_read(shared: &Shared, parts: &Parts, key: String) -> Option<Response<Body>> {
    let connection_id = shared.lock().connection_ids.get(&key).cloned()?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = match exchange(shared, parts, Method::GET, path, Bytes::new()).await {
        Ok(answered) => answered,
        Err(e) => return Some(bad_gateway(&e)),
    };
    if status != 200 {
        return Some(answer(status, body));
    }
    let mut doc = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("connectionId".into(), Value::String(connection_id));
    }
    Some(answer(status, Bytes::from(doc.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn held_and_failed_links_are_rewritten_in_both_shapes() {
        let now = Instant::now();
        let plays = BTreeMap::from([
            (
                "held".to_string(),
                Play::Pending(now + Duration::from_secs(5)),
            ),
            ("over".to_string(), Play::Pending(now)),
            ("bad".to_string(), Play::Failed("NLB not found".to_string())),
        ]);
        let mut list = json!({"item": [
            {"id": "held", "status": "AVAILABLE"},
            {"id": "over", "status": "AVAILABLE"},
            {"id": "bad", "status": "AVAILABLE"},
            {"id": "other", "status": "AVAILABLE"},
        ]});
        rewrite(&mut list, &plays, now);
        let statuses: Vec<(&str, Option<&str>)> = list["item"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["status"].as_str().unwrap(), l["statusMessage"].as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("PENDING", Some(PENDING_MESSAGE)),
                ("AVAILABLE", Some(AVAILABLE_MESSAGE)),
                ("FAILED", Some("NLB not found")),
                ("AVAILABLE", None),
            ]
        );
        let mut v2 = json!({"vpcLinkId": "bad", "vpcLinkStatus": "AVAILABLE"});
        rewrite(&mut v2, &plays, now);
        assert_eq!(v2["vpcLinkStatus"], "FAILED");
        assert_eq!(v2["vpcLinkStatusMessage"], "NLB not found");
    }

    #[test]
    fn integration_paths_are_keyed_by_api_resource_and_method() {
        assert_eq!(
            integration_key("/restapis/a1/resources/r2/methods/get/integration").as_deref(),
            Some("a1/r2/GET")
        );
        assert_eq!(
            integration_key("/restapis/a1/resources/r2/methods/GET/integration/responses/200"),
            None
        );
        assert_eq!(
            integration_key("/restapis/a1/resources/r2/methods/GET"),
            None
        );
    }
}

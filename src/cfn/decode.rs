//! Event decoding in two phases: the envelope (ids, ResponseURL, RequestType), then the
//! properties ([`crate::props`]). A properties error keeps the envelope, so it is still answered
//! FAILED. [`request`] does both and gives a [`Request`] in which a Create and an Update always
//! carry their properties.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest as Event;
use serde::Deserialize;
use serde_json::Value;

use super::ResponseUrl;
use crate::props::{self, Properties};

/// The kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Create => "Create",
            RequestType::Update => "Update",
            RequestType::Delete => "Delete",
        }
    }
}

/// The identifiers every response echoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub stack_id: String,
    pub request_id: String,
    pub logical_id: String,
    /// Present on Update and Delete.
    pub physical_id: Option<String>,
}

impl Ids {
    fn of(
        stack_id: String,
        request_id: String,
        logical_id: String,
        physical_id: Option<String>,
    ) -> Ids {
        Ids {
            stack_id,
            request_id,
            logical_id,
            physical_id,
        }
    }
}

/// A decoded envelope; the properties are still raw JSON.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub request_type: RequestType,
    pub response_url: ResponseUrl,
    pub ids: Ids,
    pub properties: Value,
    pub old_properties: Option<Value>,
}

/// An event that could not be decoded.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Where to answer, when the event carries a ResponseURL at all.
    pub respond_to: Option<(ResponseUrl, Ids, Option<RequestType>)>,
    pub reason: String,
}

/// A request whose properties are decoded: what the handler acts on.
#[derive(Debug, Clone)]
pub struct Request {
    pub response_url: ResponseUrl,
    pub ids: Ids,
    pub action: Action,
}

/// What CloudFormation asks for. A Create and an Update carry valid properties; a Delete may
/// carry none (its properties are used only where they name the stage).
#[derive(Debug, Clone)]
pub enum Action {
    Create(Properties),
    Update {
        physical_id: String,
        properties: Properties,
    },
    Delete {
        physical_id: String,
        properties: Option<Properties>,
    },
}

impl Request {
    pub fn request_type(&self) -> RequestType {
        match self.action {
            Action::Create(_) => RequestType::Create,
            Action::Update { .. } => RequestType::Update,
            Action::Delete { .. } => RequestType::Delete,
        }
    }

    /// The properties, when valid.
    pub fn properties(&self) -> Option<&Properties> {
        match &self.action {
            Action::Create(p) | Action::Update { properties: p, .. } => Some(p),
            Action::Delete { properties, .. } => properties.as_ref(),
        }
    }
}

/// Both phases: the envelope, then the properties. Invalid properties of a Create or an Update
/// are [`Malformed`] with somewhere to answer.
pub fn request(event: &Value) -> Result<Request, Box<Malformed>> {
    let env = decode(event)?;
    let parsed = props::parse(&env.properties);
    let physical_id = env.ids.physical_id.clone().unwrap_or_default();
    let action = match (env.request_type, parsed) {
        (RequestType::Delete, parsed) => Action::Delete {
            physical_id,
            properties: parsed.ok(),
        },
        (RequestType::Create, Ok(p)) => Action::Create(p),
        (RequestType::Update, Ok(properties)) => Action::Update {
            physical_id,
            properties,
        },
        (request_type, Err(e)) => {
            return Err(Box::new(Malformed {
                reason: env.response_url.scrub(&format!("invalid properties: {e}")),
                respond_to: Some((env.response_url, env.ids, Some(request_type))),
            }))
        }
    };
    Ok(Request {
        response_url: env.response_url,
        ids: env.ids,
        action,
    })
}

fn str_field(event: &Value, name: &str) -> Option<String> {
    event.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Phase one: the envelope.
pub fn decode(event: &Value) -> Result<Envelope, Box<Malformed>> {
    let envelope = decode_request(event)?;
    if envelope.response_url.expose().is_empty() {
        // An empty ResponseURL leaves nowhere to answer, as a missing one does.
        return Err(Box::new(Malformed {
            respond_to: None,
            reason: "malformed custom resource event: the ResponseURL is empty".into(),
        }));
    }
    Ok(envelope)
}

fn decode_request(event: &Value) -> Result<Envelope, Box<Malformed>> {
    let envelope = match Event::deserialize(event) {
        Ok(Event::Create(r)) => Envelope {
            request_type: RequestType::Create,
            response_url: ResponseUrl::new(r.response_url),
            // A Create names no physical id, whatever the event carries.
            ids: Ids::of(r.stack_id, r.request_id, r.logical_resource_id, None),
            properties: r.resource_properties,
            old_properties: None,
        },
        Ok(Event::Update(r)) => Envelope {
            request_type: RequestType::Update,
            response_url: ResponseUrl::new(r.response_url),
            ids: Ids::of(
                r.stack_id,
                r.request_id,
                r.logical_resource_id,
                Some(r.physical_resource_id),
            ),
            properties: r.resource_properties,
            old_properties: Some(r.old_resource_properties),
        },
        Ok(Event::Delete(r)) => Envelope {
            request_type: RequestType::Delete,
            response_url: ResponseUrl::new(r.response_url),
            ids: Ids::of(
                r.stack_id,
                r.request_id,
                r.logical_resource_id,
                Some(r.physical_resource_id),
            ),
            properties: r.resource_properties,
            old_properties: None,
        },
        Ok(_) => {
            return Err(Box::new(Malformed {
                respond_to: None,
                reason: "unsupported RequestType".into(),
            }))
        }
        Err(e) => return Err(Box::new(malformed(event, &e))),
    };
    Ok(envelope)
}

/// What can still be salvaged from an event that does not decode: where to answer, and why.
fn malformed(event: &Value, error: &serde_json::Error) -> Malformed {
    let url = str_field(event, "ResponseURL").filter(|u| !u.is_empty());
    let request_type = match event.get("RequestType").and_then(Value::as_str) {
        Some("Create") => Some(RequestType::Create),
        Some("Update") => Some(RequestType::Update),
        Some("Delete") => Some(RequestType::Delete),
        _ => None,
    };
    let what = if event.is_object() {
        format!("malformed custom resource event: {error}")
    } else {
        "malformed custom resource event: not a JSON object".to_string()
    };
    let respond_to = url.map(|u| {
        let url = ResponseUrl::new(u);
        let ids = Ids {
            stack_id: str_field(event, "StackId").unwrap_or_else(|| "unknown".into()),
            request_id: str_field(event, "RequestId").unwrap_or_else(|| "unknown".into()),
            logical_id: str_field(event, "LogicalResourceId").unwrap_or_else(|| "unknown".into()),
            physical_id: str_field(event, "PhysicalResourceId"),
        };
        (url, ids, request_type)
    });
    let reason = match &respond_to {
        Some((url, _, _)) => url.scrub(&what),
        None => what,
    };
    Malformed { respond_to, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decode_phases() {
        let ok = json!({
            "RequestType": "Update", "ResponseURL": "http://h/x", "StackId": "s", "RequestId": "r",
            "ResourceType": "Custom::StageBinding", "LogicalResourceId": "L", "PhysicalResourceId": "P",
            "ResourceProperties": {"anything": 1}, "OldResourceProperties": {}
        });
        let env = decode(&ok).unwrap();
        assert_eq!(env.request_type, RequestType::Update);
        assert_eq!(env.ids.physical_id.as_deref(), Some("P"));

        let broken =
            json!({"RequestType": "Create", "ResponseURL": "http://h/x?sig=S", "StackId": 5});
        let m = decode(&broken).unwrap_err();
        let (url, ids, rt) = m.respond_to.unwrap();
        assert_eq!(url.expose(), "http://h/x?sig=S");
        assert_eq!(ids.stack_id, "unknown");
        assert_eq!(rt, Some(RequestType::Create));
        assert!(m.reason.contains("malformed"), "{}", m.reason);

        let no_url = json!({"hello": "world"});
        assert!(decode(&no_url).unwrap_err().respond_to.is_none());
        assert!(decode(&json!([1, 2])).unwrap_err().respond_to.is_none());
    }
}

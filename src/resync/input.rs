//! What the `stage-resync` function is invoked with, and what it answers, typed once at the
//! edge: an SQS batch of the full reconcile's units, an operator's `{"resync": ...}`, or an
//! EventBridge event. What is none of these is kept with the reason, and ignored.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::trigger::{self, Origin, Trigger};
use super::Summary;

/// The event a re-sync is invoked with.
#[derive(Debug, Clone)]
pub enum Input {
    /// An SQS batch (`Records` of `aws:sqs` messages), each message a unit of the full
    /// reconcile.
    Batch(SqsEvent),
    /// SQS records that do not decode as a batch, and why.
    MalformedBatch(String),
    /// An operator's direct invocation.
    Manual(Manual),
    /// An EventBridge event: stack status changes, load balancer API calls, ECS deployments,
    /// the schedule.
    Event(Box<EventBridgeEvent<Value>>),
    /// Anything else, and why it is none of the above: ignored, never an error Lambda retries.
    Unrecognised(String),
}

/// An operator's direct invocation: `{"resync": "all"}` or `{"resync": {"stack": "NAME"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    All,
    Stack(String),
}

const MANUAL_FORMS: &str =
    "use {\"resync\": \"all\"} or {\"resync\": {\"stack\": \"NAME\"}} (a stack name or ARN)";

#[derive(Deserialize)]
struct ManualRequest {
    resync: ManualScope,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ManualScope {
    All(String),
    Stack { stack: String },
}

impl From<Value> for Input {
    fn from(event: Value) -> Input {
        let sqs = event
            .get("Records")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|first| first.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:sqs");
        if sqs {
            return match serde_json::from_value(event) {
                Ok(batch) => Input::Batch(batch),
                Err(e) => Input::MalformedBatch(format!("not an SQS batch: {e}")),
            };
        }
        if event.get("resync").is_some() {
            let manual = match ManualRequest::deserialize(&event).map(|m| m.resync) {
                Ok(ManualScope::All(s)) if s == "all" => Manual::All,
                Ok(ManualScope::Stack { stack }) if !stack.is_empty() => Manual::Stack(stack),
                _ => {
                    return Input::Unrecognised(format!(
                        "unrecognised manual request: {MANUAL_FORMS}"
                    ))
                }
            };
            return Input::Manual(manual);
        }
        match EventBridgeEvent::<Value>::deserialize(&event) {
            Ok(ev) => Input::Event(Box::new(ev)),
            Err(e) => Input::Unrecognised(format!("not an EventBridge event: {e}")),
        }
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Input, D::Error> {
        Value::deserialize(d).map(Input::from)
    }
}

impl Input {
    /// What the event asks the re-sync to look at.
    pub fn trigger(&self) -> Trigger {
        match self {
            Input::Manual(Manual::All) => Trigger::Everything,
            Input::Manual(Manual::Stack(stack)) => Trigger::Stack(stack.clone()),
            Input::Event(ev) => trigger::of_event(ev),
            Input::Batch(_) => Trigger::Ignored("an SQS batch is worked unit by unit".into()),
            Input::MalformedBatch(why) | Input::Unrecognised(why) => Trigger::Ignored(why.clone()),
        }
    }

    /// Where the event happened: an EventBridge event's `account` and `region` (a member
    /// account's events forwarded to the hub's bus keep theirs); for an operator's request,
    /// those of the stack it names by ARN; otherwise the hub's own.
    pub fn origin(&self) -> Origin {
        let known = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        match self {
            Input::Event(ev) => Origin {
                account: ev.account.as_deref().and_then(known),
                region: ev.region.as_deref().and_then(known),
            },
            Input::Manual(Manual::Stack(stack)) => Origin::of_stack(stack),
            _ => Origin::default(),
        }
    }
}

/// What the function answers: the batch's item failures, or the summary of the re-sync.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Output {
    Batch(SqsBatchResponse),
    Summary(Box<Summary>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_of_input_is_told_apart_and_the_rest_is_kept_with_its_reason() {
        let batch =
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "{}"}]});
        assert!(matches!(Input::from(batch), Input::Batch(b) if b.records.len() == 1));
        let broken = json!({"Records": [{"eventSource": "aws:sqs", "messageId": 5}]});
        assert!(
            matches!(Input::from(broken), Input::MalformedBatch(why) if why.contains("not an SQS batch"))
        );
        assert!(matches!(
            Input::from(json!({"resync": "all"})),
            Input::Manual(Manual::All)
        ));
        assert!(matches!(
            Input::from(json!({"resync": {"stack": "S"}})),
            Input::Manual(Manual::Stack(s)) if s == "S"
        ));
        for bad in [json!({"resync": "some"}), json!({"resync": {"stack": ""}})] {
            let input = Input::from(bad.clone());
            assert!(
                matches!(&input, Input::Unrecognised(why) if why.contains("{\"resync\": \"all\"}")),
                "{bad}"
            );
            assert!(matches!(input.trigger(), Trigger::Ignored(_)));
        }
        let input = Input::from(json!({"hello": "world"}));
        assert!(
            matches!(&input, Input::Unrecognised(why) if why.contains("not an EventBridge event"))
        );
        assert_eq!(input.origin(), Origin::default());
        let input: Input = serde_json::from_value(json!({"resync": "all"})).unwrap();
        assert_eq!(input.trigger(), Trigger::Everything);
    }
}

//! Custom-resource requests as CloudFormation sends them, for tests, the demo and the bench.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use crate::receiver::ResponseReceiver;
use crate::seed;

/// The resource type of a stage binding.
pub const RESOURCE_TYPE: &str = "Custom::StageBinding";

/// CloudFormation's side of one stack's custom resources: builds their requests, each with a
/// fresh `RequestId` and a `ResponseURL` of a [`ResponseReceiver`] whose path is shaped like
/// CloudFormation's (`<stack id>|<logical id>|<n>`, percent-encoded).
#[derive(Debug)]
pub struct CfnEvents {
    stack_id: String,
    service_token: String,
    sent: AtomicUsize,
    declare: bool,
}

impl CfnEvents {
    /// Requests of the stack `stack_id` to the function `service_token`.
    pub fn new(stack_id: impl Into<String>, service_token: impl Into<String>) -> CfnEvents {
        CfnEvents {
            stack_id: stack_id.into(),
            service_token: service_token.into(),
            sent: AtomicUsize::new(0),
            declare: true,
        }
    }

    /// Requests that move nothing in [`crate::stack_resources`]: a forger's, which
    /// CloudFormation knows nothing about. By default every request built here is one
    /// CloudFormation sends: it moves its resource into the state CloudFormation holds while it
    /// waits for the answer, when CloudFormation could send it from the resource's state (see
    /// [`crate::stack_resources::request`]), and the answer the [`ResponseReceiver`] accepts
    /// moves it on.
    pub fn undeclared(mut self) -> CfnEvents {
        self.declare = false;
        self
    }

    /// The stack's id.
    pub fn stack_id(&self) -> &str {
        &self.stack_id
    }

    /// The function's ARN the requests carry as `ServiceToken`.
    pub fn service_token(&self) -> &str {
        &self.service_token
    }

    /// A request of `request_type`, answered to `receiver`; `PhysicalResourceId` when given.
    pub fn event(
        &self,
        receiver: &ResponseReceiver,
        request_type: &str,
        logical_id: &str,
        physical_id: Option<&str>,
        properties: Value,
    ) -> Value {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = seed::uuid();
        if self.declare {
            crate::stack_resources::request(
                &self.stack_id,
                logical_id,
                request_type,
                physical_id,
                &request_id,
            );
        }
        let mut event = json!({
            "RequestType": request_type,
            "ServiceToken": self.service_token,
            "ResponseURL": receiver.url(&format!(
                "{}%7C{logical_id}%7C{n}",
                self.stack_id.replace(':', "%3A").replace('/', "%2F")
            )),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": RESOURCE_TYPE,
            "ResourceProperties": properties,
        });
        if let Some(physical_id) = physical_id {
            event["PhysicalResourceId"] = json!(physical_id);
        }
        event
    }

    /// CloudFormation gives up on the Create of `logical_id` (it cancelled it, or its answer
    /// came too late): see [`crate::stack_resources::give_up`]. Its Delete then names an id
    /// CloudFormation made up.
    pub fn give_up(&self, logical_id: &str) {
        if self.declare {
            crate::stack_resources::give_up(&self.stack_id, logical_id);
        }
    }

    /// A `Create`.
    pub fn create(
        &self,
        receiver: &ResponseReceiver,
        logical_id: &str,
        properties: Value,
    ) -> Value {
        self.event(receiver, "Create", logical_id, None, properties)
    }

    /// An `Update` of `physical_id` from `old` properties.
    pub fn update(
        &self,
        receiver: &ResponseReceiver,
        logical_id: &str,
        physical_id: &str,
        properties: Value,
        old: Value,
    ) -> Value {
        let mut event = self.event(
            receiver,
            "Update",
            logical_id,
            Some(physical_id),
            properties,
        );
        event["OldResourceProperties"] = old;
        event
    }

    /// A `Delete` of `physical_id`.
    pub fn delete(
        &self,
        receiver: &ResponseReceiver,
        logical_id: &str,
        physical_id: &str,
        properties: Value,
    ) -> Value {
        self.event(
            receiver,
            "Delete",
            logical_id,
            Some(physical_id),
            properties,
        )
    }
}

//! CloudFormation's view of custom resources, declared by the tests.
//!
//! moto cannot hold a `Custom::` resource in a stack, so the tests declare the bindings their
//! events stand for here, and every [`crate::FaultProxy`] answers CloudFormation's
//! `DescribeStackResource` from this process-wide registry (the Query protocol's XML), as the
//! service does: the resource's type, status and physical id, or `ValidationError` "Stack with
//! id X does not exist" / "Resource X does not exist for stack Y".

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// A resource as a test declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The stack's id (an ARN).
    pub stack_id: String,
    /// The resource's logical id in the stack.
    pub logical_id: String,
    /// `Custom::StageBinding` unless declared otherwise.
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `UPDATE_IN_PROGRESS`, `DELETE_IN_PROGRESS`, ...
    pub status: String,
    /// The physical id CloudFormation knows, if any.
    pub physical_id: Option<String>,
}

/// The type every binding is declared with unless a test says otherwise.
pub const BINDING_TYPE: &str = "Custom::StageBinding";

fn registry() -> &'static Mutex<BTreeMap<(String, String), Declared>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<(String, String), Declared>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<(String, String), Declared>> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

/// Declare (or re-declare) a resource of a stack.
pub fn declare(
    stack_id: &str,
    logical_id: &str,
    resource_type: &str,
    status: &str,
    physical_id: Option<&str>,
) {
    lock().insert(
        (stack_id.to_string(), logical_id.to_string()),
        Declared {
            stack_id: stack_id.to_string(),
            logical_id: logical_id.to_string(),
            resource_type: resource_type.to_string(),
            status: status.to_string(),
            physical_id: physical_id.map(str::to_owned),
        },
    );
}

/// Declare a binding in the state a request of `request_type` implies: `Create` is
/// `CREATE_IN_PROGRESS`, `Update` is `UPDATE_IN_PROGRESS` with its physical id, `Delete` is
/// `DELETE_IN_PROGRESS` with its physical id.
pub fn declare_for_request(
    stack_id: &str,
    logical_id: &str,
    request_type: &str,
    physical_id: Option<&str>,
) {
    let status = match request_type {
        "Create" => "CREATE_IN_PROGRESS",
        "Update" => "UPDATE_IN_PROGRESS",
        _ => "DELETE_IN_PROGRESS",
    };
    declare(stack_id, logical_id, BINDING_TYPE, status, physical_id);
}

/// Forget a resource (as if it never was in its stack).
pub fn forget(stack_id: &str, logical_id: &str) {
    lock().remove(&(stack_id.to_string(), logical_id.to_string()));
}

/// The declared resource, or CloudFormation's `ValidationError` message. `stack` is a stack id
/// or a stack name, as `DescribeStackResource` accepts either.
pub fn describe(stack: &str, logical_id: &str) -> Result<Declared, String> {
    let map = lock();
    let in_stack: Vec<&Declared> = map
        .values()
        .filter(|d| d.stack_id == stack || stack_name(&d.stack_id) == stack)
        .collect();
    if in_stack.is_empty() {
        return Err(format!("Stack with id {stack} does not exist"));
    }
    in_stack
        .into_iter()
        .find(|d| d.logical_id == logical_id)
        .cloned()
        .ok_or_else(|| format!("Resource {logical_id} does not exist for stack {stack}"))
}

fn stack_name(stack_id: &str) -> &str {
    stack_id
        .split_once(":stack/")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .unwrap_or(stack_id)
}

/// The `DescribeStackResource` answer body for a declared resource.
pub fn describe_xml(d: &Declared) -> String {
    let physical = d
        .physical_id
        .as_deref()
        .map(|p| format!("<PhysicalResourceId>{}</PhysicalResourceId>", xml_escape(p)))
        .unwrap_or_default();
    format!(
        "<DescribeStackResourceResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
         <DescribeStackResourceResult><StackResourceDetail>\
         <StackId>{}</StackId><StackName>{}</StackName><LogicalResourceId>{}</LogicalResourceId>\
         {physical}<ResourceType>{}</ResourceType>\
         <LastUpdatedTimestamp>2026-01-01T00:00:00.000Z</LastUpdatedTimestamp>\
         <ResourceStatus>{}</ResourceStatus>\
         </StackResourceDetail></DescribeStackResourceResult>\
         <ResponseMetadata><RequestId>00000000-0000-0000-0000-0000000c0f00</RequestId></ResponseMetadata>\
         </DescribeStackResourceResponse>",
        xml_escape(&d.stack_id),
        xml_escape(stack_name(&d.stack_id)),
        xml_escape(&d.logical_id),
        xml_escape(&d.resource_type),
        xml_escape(&d.status),
    )
}

/// A text escaped for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The value of `key` in a form-encoded body.
pub fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

/// A form or query value percent-decoded (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_resources_are_described_and_others_are_not() {
        let stack = "arn:aws:cloudformation:us-east-1:1:stack/DeclTest/abc";
        declare_for_request(stack, "B", "Create", None);
        let d = describe(stack, "B").unwrap();
        assert_eq!(d.status, "CREATE_IN_PROGRESS");
        assert_eq!(describe("DeclTest", "B").unwrap(), d);
        assert!(describe(stack, "C")
            .unwrap_err()
            .contains("Resource C does not exist for stack"));
        assert!(describe("arn:other", "B")
            .unwrap_err()
            .contains("Stack with id arn:other does not exist"));
        declare_for_request(stack, "B", "Update", Some("p<1>"));
        let xml = describe_xml(&describe(stack, "B").unwrap());
        assert!(
            xml.contains("<PhysicalResourceId>p&lt;1&gt;</PhysicalResourceId>"),
            "{xml}"
        );
        assert!(xml.contains("<ResourceStatus>UPDATE_IN_PROGRESS</ResourceStatus>"));
        forget(stack, "B");
        assert!(describe(stack, "B").is_err());
    }

    #[test]
    fn form_values_are_decoded() {
        let body = "Action=DescribeStackResource&StackName=arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack%2FS%2F1&LogicalResourceId=B";
        assert_eq!(
            form_value(body, "StackName").as_deref(),
            Some("arn:aws:cloudformation:us-east-1:1:stack/S/1")
        );
        assert_eq!(form_value(body, "LogicalResourceId").as_deref(), Some("B"));
        assert_eq!(form_value(body, "Missing"), None);
    }
}

//! CloudFormation's view of custom resources, following the requests CloudFormation sends and
//! the responses it receives.
//!
//! moto cannot hold a `Custom::` resource in a stack, so every [`crate::FaultProxy`] answers
//! CloudFormation's `DescribeStackResource` from this process-wide view (the Query protocol's
//! XML), as the service does: the resource's type, status and physical id, or `ValidationError`
//! "Stack with id X does not exist" / "Resource X does not exist for stack Y".
//!
//! The view moves as CloudFormation's does. [`request`] (called by [`crate::CfnEvents`] for
//! each request it builds) moves a resource into `*_IN_PROGRESS` only when CloudFormation could
//! send that request from the resource's current state:
//!
//! - `Create`: the resource is absent, or `CREATE_FAILED` (a stack created without rollback,
//!   whose next update creates its failed resources again).
//! - `Update`: the resource is `CREATE_COMPLETE`, `UPDATE_COMPLETE` or `UPDATE_FAILED` (a
//!   rollback), under the physical id CloudFormation holds.
//! - `Delete` of the id CloudFormation holds (or of any id while it holds none, one it made
//!   up): from a settled state (`*_COMPLETE`, `*_FAILED`). A `Delete` of an id the resource had
//!   before an Update answered another one is the cleanup of that replacement: the resource
//!   stays as it is.
//!
//! [`answered`] (called by the [`crate::ResponseReceiver`] for each response it accepts) moves
//! the resource on: `*_COMPLETE` or `*_FAILED` under the answered `PhysicalResourceId`, gone
//! after a successful `Delete`. An Update answered with a new id is a replacement: the old id
//! waits for its cleanup `Delete`. [`give_up`] stands for CloudFormation giving up on a Create
//! (cancelled, or answered too late): `CREATE_FAILED` with no physical id, its answer ignored.
//!
//! A request CloudFormation would not send at that point (a replay, a stale duplicate) leaves
//! the view as it is, and so does the answer to it: the function checks the request against
//! what CloudFormation really holds. [`declare`] sets a resource outright, for a state no
//! sequence of requests reaches (another resource type), and [`forget`] removes it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// A resource as CloudFormation describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The stack's id (an ARN).
    pub stack_id: String,
    /// The resource's logical id in the stack.
    pub logical_id: String,
    /// `Custom::StageBinding` unless declared otherwise.
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `UPDATE_IN_PROGRESS`, ...
    pub status: String,
    /// The physical id CloudFormation knows, if any.
    pub physical_id: Option<String>,
}

/// The type every binding is declared with unless a test says otherwise.
pub const BINDING_TYPE: &str = "Custom::StageBinding";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Delete,
}

impl Kind {
    fn parse(request_type: &str) -> Option<Kind> {
        match request_type {
            "Create" => Some(Kind::Create),
            "Update" => Some(Kind::Update),
            "Delete" => Some(Kind::Delete),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Create => "CREATE",
            Kind::Update => "UPDATE",
            Kind::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone)]
struct Resource {
    described: Declared,
    /// The request CloudFormation waits on the answer of: its `RequestId` and kind.
    waiting: Option<(String, Kind)>,
    /// Physical ids an Update replaced, each waiting for its cleanup Delete.
    replaced: BTreeSet<String>,
    /// Cleanup Deletes sent: request id to the replaced physical id it deletes.
    cleanups: BTreeMap<String, String>,
}

type View = BTreeMap<(String, String), Resource>;

fn lock() -> std::sync::MutexGuard<'static, View> {
    static VIEW: OnceLock<Mutex<View>> = OnceLock::new();
    VIEW.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn key(stack_id: &str, logical_id: &str) -> (String, String) {
    (stack_id.to_string(), logical_id.to_string())
}

/// Set a resource of a stack outright, for a state no sequence of requests reaches (another
/// resource type, an id CloudFormation holds that no answer gave): nothing is pending.
pub fn declare(
    stack_id: &str,
    logical_id: &str,
    resource_type: &str,
    status: &str,
    physical_id: Option<&str>,
) {
    let described = Declared::new(stack_id, logical_id, resource_type, status, physical_id);
    lock().insert(key(stack_id, logical_id), Resource::new(described));
}

impl Declared {
    fn new(
        stack_id: &str,
        logical_id: &str,
        resource_type: &str,
        status: &str,
        physical_id: Option<&str>,
    ) -> Declared {
        Declared {
            stack_id: stack_id.to_string(),
            logical_id: logical_id.to_string(),
            resource_type: resource_type.to_string(),
            status: status.to_string(),
            physical_id: physical_id.map(str::to_owned),
        }
    }
}

impl Resource {
    fn new(described: Declared) -> Resource {
        Resource {
            described,
            waiting: None,
            replaced: BTreeSet::new(),
            cleanups: BTreeMap::new(),
        }
    }
}

/// What [`request`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// CloudFormation sends it from the resource's state: the resource now holds the state
    /// CloudFormation gives it while it waits for the answer.
    Accepted,
    /// The cleanup Delete of an id a replacement left behind: the resource stays as it is.
    Cleanup,
    /// CloudFormation would not send it now (why): the view stays as it is.
    NotCloudFormations(String),
}

/// A request CloudFormation sends (`request_id` is its `RequestId`): moves the resource into
/// the state CloudFormation holds while it waits for the answer, when CloudFormation could send
/// that request from the resource's current state.
pub fn request(
    stack_id: &str,
    logical_id: &str,
    request_type: &str,
    physical_id: Option<&str>,
    request_id: &str,
) -> Sent {
    let Some(kind) = Kind::parse(request_type) else {
        return Sent::NotCloudFormations(format!("{request_type} is no request type"));
    };
    let mut view = lock();
    let claimed = physical_id.unwrap_or_default();
    let waiting = Some((request_id.to_string(), kind));
    let res = match view.entry(key(stack_id, logical_id)) {
        Entry::Occupied(res) => res.into_mut(),
        Entry::Vacant(absent) if kind == Kind::Create => {
            let creating = Declared::new(
                stack_id,
                logical_id,
                BINDING_TYPE,
                "CREATE_IN_PROGRESS",
                None,
            );
            let res = absent.insert(Resource::new(creating));
            res.waiting = waiting;
            return Sent::Accepted;
        }
        Entry::Vacant(_) => {
            return Sent::NotCloudFormations(format!("{logical_id} is not in its stack"))
        }
    };
    let status = res.described.status.clone();
    let known = res.described.physical_id.clone();
    let refuse = |why: String| {
        let under = known.as_deref().map(|p| format!(" under {p}"));
        Sent::NotCloudFormations(format!(
            "{logical_id} is {status}{}: {why}",
            under.unwrap_or_default()
        ))
    };
    let settled = status.ends_with("_COMPLETE") || status.ends_with("_FAILED");
    let physical = match kind {
        Kind::Create if status == "CREATE_FAILED" => None,
        Kind::Create => return refuse("a Create comes only while it is absent or failed".into()),
        Kind::Update
            if !matches!(
                status.as_str(),
                "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_FAILED"
            ) =>
        {
            return refuse("an Update comes only once it is created or updated".into())
        }
        Kind::Delete if res.replaced.contains(claimed) => {
            res.cleanups
                .insert(request_id.to_string(), claimed.to_string());
            return Sent::Cleanup;
        }
        Kind::Delete if !settled => {
            return refuse("a Delete comes only once nothing else is in progress".into())
        }
        Kind::Update | Kind::Delete if known.as_deref().is_some_and(|k| k != claimed) => {
            return refuse(format!("CloudFormation sends that id, not {claimed}"))
        }
        Kind::Update | Kind::Delete => Some(claimed.to_string()),
    };
    res.described.status = format!("{}_IN_PROGRESS", kind.prefix());
    res.described.physical_id = physical;
    res.waiting = waiting;
    Sent::Accepted
}

/// CloudFormation received `body`, a response document: the resource whose request it answers
/// moves to `*_COMPLETE` or `*_FAILED` under the answered `PhysicalResourceId` (or is gone,
/// after a successful Delete). An answer to a request CloudFormation no longer waits on (one
/// it gave up on, a replay) changes nothing.
pub fn answered(body: &Value) {
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let (Some(stack_id), Some(logical_id), Some(request_id)) = (
        field("StackId"),
        field("LogicalResourceId"),
        field("RequestId"),
    ) else {
        return;
    };
    let success = field("Status") == Some("SUCCESS");
    let answered_id = field("PhysicalResourceId").filter(|p| !p.is_empty());
    let mut view = lock();
    let k = key(stack_id, logical_id);
    let Some(res) = view.get_mut(&k) else {
        return;
    };
    if let Some(replaced) = res.cleanups.remove(request_id) {
        if success {
            res.replaced.remove(&replaced);
        }
        return;
    }
    let kind = match &res.waiting {
        Some((waited, kind)) if waited == request_id => *kind,
        _ => return,
    };
    res.waiting = None;
    if kind == Kind::Delete && success {
        view.remove(&k);
        return;
    }
    if let (Kind::Update, true, Some(to)) = (kind, success, answered_id) {
        // Another id than the Update's is a replacement: the Update's id waits for cleanup.
        if let Some(from) = res.described.physical_id.take().filter(|from| from != to) {
            res.replaced.insert(from);
        }
        res.replaced.remove(to);
    }
    let outcome = if success { "COMPLETE" } else { "FAILED" };
    res.described.status = format!("{}_{outcome}", kind.prefix());
    if let Some(id) = answered_id {
        res.described.physical_id = Some(id.to_string());
    }
}

/// CloudFormation gives up on a Create (cancelled while a sibling failed, or its answer came
/// too late): the resource is `CREATE_FAILED` with no physical id, and a late answer to the
/// Create changes nothing. The Delete that follows names an id CloudFormation makes up.
pub fn give_up(stack_id: &str, logical_id: &str) {
    if let Some(res) = lock().get_mut(&key(stack_id, logical_id)) {
        if res.described.status.starts_with("CREATE_") {
            res.described.status = "CREATE_FAILED".into();
            res.described.physical_id = None;
            res.waiting = None;
        }
    }
}

/// Forget a resource (as if it never was in its stack).
pub fn forget(stack_id: &str, logical_id: &str) {
    lock().remove(&key(stack_id, logical_id));
}

/// The resource as CloudFormation describes it, or CloudFormation's `ValidationError` message.
/// `stack` is a stack id or a stack name, as `DescribeStackResource` accepts either.
pub fn describe(stack: &str, logical_id: &str) -> Result<Declared, String> {
    let view = lock();
    let in_stack: Vec<&Declared> = view
        .values()
        .map(|r| &r.described)
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
    use serde_json::json;

    use super::*;

    fn answer(stack: &str, logical: &str, request_id: &str, status: &str, physical: &str) {
        answered(&json!({
            "Status": status, "StackId": stack, "LogicalResourceId": logical,
            "RequestId": request_id, "PhysicalResourceId": physical
        }));
    }

    fn state(stack: &str, logical: &str) -> (String, Option<String>) {
        let d = describe(stack, logical).unwrap();
        (d.status, d.physical_id)
    }

    fn is(status: &str, physical: Option<&str>) -> (String, Option<String>) {
        (status.to_string(), physical.map(str::to_owned))
    }

    #[test]
    fn a_resource_follows_its_requests_and_their_answers() {
        let s = "arn:aws:cloudformation:us-east-1:1:stack/Follow/abc";
        assert_eq!(request(s, "B", "Create", None, "r1"), Sent::Accepted);
        assert_eq!(state(s, "B"), is("CREATE_IN_PROGRESS", None));
        assert_eq!(
            describe("Follow", "B").unwrap().status,
            "CREATE_IN_PROGRESS"
        );
        answer(s, "B", "r1", "SUCCESS", "p1");
        assert_eq!(state(s, "B"), is("CREATE_COMPLETE", Some("p1")));
        // A replayed Create, an Update of another id: not CloudFormation's; nothing moves.
        assert!(matches!(
            request(s, "B", "Create", None, "r1"),
            Sent::NotCloudFormations(_)
        ));
        assert!(matches!(
            request(s, "B", "Update", Some("p0"), "r2"),
            Sent::NotCloudFormations(_)
        ));
        answer(s, "B", "r1", "FAILED", "p9");
        assert_eq!(state(s, "B"), is("CREATE_COMPLETE", Some("p1")));
        // An Update answered with another id: a replacement, whose old id cleanup deletes.
        assert_eq!(request(s, "B", "Update", Some("p1"), "r3"), Sent::Accepted);
        assert_eq!(state(s, "B"), is("UPDATE_IN_PROGRESS", Some("p1")));
        answer(s, "B", "r3", "SUCCESS", "p2");
        assert_eq!(state(s, "B"), is("UPDATE_COMPLETE", Some("p2")));
        assert_eq!(request(s, "B", "Delete", Some("p1"), "r4"), Sent::Cleanup);
        answer(s, "B", "r4", "SUCCESS", "p1");
        assert_eq!(state(s, "B"), is("UPDATE_COMPLETE", Some("p2")));
        // Once cleaned up, the old id is no longer CloudFormation's to delete.
        assert!(matches!(
            request(s, "B", "Delete", Some("p1"), "r5"),
            Sent::NotCloudFormations(_)
        ));
        // A failed Update, then its rollback.
        assert_eq!(request(s, "B", "Update", Some("p2"), "r6"), Sent::Accepted);
        answer(s, "B", "r6", "FAILED", "p2");
        assert_eq!(state(s, "B"), is("UPDATE_FAILED", Some("p2")));
        assert_eq!(request(s, "B", "Update", Some("p2"), "r7"), Sent::Accepted);
        answer(s, "B", "r7", "SUCCESS", "p2");
        // The Delete, then the resource is gone and a replayed Delete moves nothing.
        assert_eq!(request(s, "B", "Delete", Some("p2"), "r8"), Sent::Accepted);
        assert_eq!(state(s, "B"), is("DELETE_IN_PROGRESS", Some("p2")));
        answer(s, "B", "r8", "SUCCESS", "p2");
        assert!(describe(s, "B").is_err());
        assert!(matches!(
            request(s, "B", "Delete", Some("p2"), "r8"),
            Sent::NotCloudFormations(_)
        ));
    }

    #[test]
    fn a_create_given_up_on_is_deleted_under_a_made_up_id_and_its_answer_is_ignored() {
        let s = "arn:aws:cloudformation:us-east-1:1:stack/GiveUp/abc";
        request(s, "B", "Create", None, "c");
        give_up(s, "B");
        assert_eq!(state(s, "B"), is("CREATE_FAILED", None));
        assert_eq!(
            request(s, "B", "Delete", Some("GiveUp-B-MADEUP"), "d"),
            Sent::Accepted
        );
        answer(s, "B", "c", "SUCCESS", "p");
        assert_eq!(
            state(s, "B"),
            is("DELETE_IN_PROGRESS", Some("GiveUp-B-MADEUP"))
        );
        answer(s, "B", "d", "SUCCESS", "GiveUp-B-MADEUP");
        assert!(describe(s, "B").is_err());
    }

    #[test]
    fn declared_resources_are_described_and_others_are_not() {
        let stack = "arn:aws:cloudformation:us-east-1:1:stack/DeclTest/abc";
        declare(stack, "B", BINDING_TYPE, "UPDATE_IN_PROGRESS", Some("p<1>"));
        assert!(describe(stack, "C")
            .unwrap_err()
            .contains("Resource C does not exist for stack"));
        assert!(describe("arn:other", "B")
            .unwrap_err()
            .contains("Stack with id arn:other does not exist"));
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

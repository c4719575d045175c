//! Plays S3 for CloudFormation custom-resource responses.
//!
//! A custom resource answers CloudFormation by a `PUT` of a JSON document to the presigned S3
//! URL in the event's `ResponseURL`. [`ResponseReceiver`] serves such URLs on 127.0.0.1,
//! answers each `PUT` with the next status of a script (then 200), and checks every request
//! the way S3 and CloudFormation would. A failed check is recorded as a violation on the
//! [`Received`] entry; the receiver never panics, so tests assert on what it recorded.
//!
//! The URLs carry a random `X-Amz-Signature` ([`ResponseReceiver::secret`]): the response URL
//! is a credential, and tests can assert that it never shows up in logs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response};
use serde_json::Value;
use tokio::sync::Notify;

use crate::http::{self, Body, DropConnection, ServerHandle};
use crate::DevkitError;

/// The largest response body CloudFormation accepts, in bytes.
pub const MAX_BODY: usize = 4096;

/// Top-level keys of a custom-resource response.
const REQUIRED_STRINGS: [&str; 4] = [
    "StackId",
    "RequestId",
    "LogicalResourceId",
    "PhysicalResourceId",
];
const KNOWN_KEYS: [&str; 8] = [
    "Status",
    "StackId",
    "RequestId",
    "LogicalResourceId",
    "PhysicalResourceId",
    "NoEcho",
    "Reason",
    "Data",
];

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The HTTP status the receiver answered with.
    pub status_returned: u16,
    /// The body parsed as JSON, or `Null` when it is not JSON.
    pub body: Value,
    /// The body as sent.
    pub raw: Vec<u8>,
    /// Every check the request failed; empty for a well-formed response.
    pub violations: Vec<String>,
    /// The request path, without the query string.
    pub path: String,
    /// The request method.
    pub method: String,
    /// When the request arrived.
    pub at: Instant,
}

impl Received {
    /// `Status` of the response document, when present.
    pub fn status(&self) -> Option<&str> {
        self.body.get("Status").and_then(Value::as_str)
    }

    /// A string field of the response document, when present.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug)]
struct State {
    script: VecDeque<u16>,
    always: Option<u16>,
    received: Vec<Received>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
    query: String,
}

/// A local stand-in for the S3 bucket behind CloudFormation's response URLs.
#[derive(Debug)]
pub struct ResponseReceiver {
    server: ServerHandle,
    shared: Arc<Shared>,
    secret: String,
}

impl ResponseReceiver {
    /// Answers each `PUT` with the next status of `script`, then 200 once it is exhausted.
    ///
    /// Any other method is answered 403 (as S3 answers a presigned URL used with the wrong
    /// method) without consuming the script.
    pub async fn start(script: Vec<u16>) -> Result<ResponseReceiver, DevkitError> {
        Self::start_with(script.into(), None).await
    }

    /// Answers every request with `status`.
    pub async fn always(status: u16) -> Result<ResponseReceiver, DevkitError> {
        Self::start_with(VecDeque::new(), Some(status)).await
    }

    async fn start_with(
        script: VecDeque<u16>,
        always: Option<u16>,
    ) -> Result<ResponseReceiver, DevkitError> {
        let mut rng = fastrand::Rng::new();
        let secret: String = (0..64)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
            .collect();
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host\
             &X-Amz-Expires=7200&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Signature={secret}"
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script,
                always,
                received: Vec::new(),
            }),
            notify: Notify::new(),
            query,
        });
        let handler_shared = Arc::clone(&shared);
        let server = http::serve("response receiver", move |req| {
            let shared = Arc::clone(&handler_shared);
            async move { Ok::<_, DropConnection>(handle(&shared, req).await) }
        })
        .await?;
        Ok(ResponseReceiver {
            server,
            shared,
            secret,
        })
    }

    /// A presigned-looking URL for `path`: `http://127.0.0.1:PORT/<path>?X-Amz-...&X-Amz-Signature=<secret>`.
    ///
    /// `path` is used verbatim (it may hold percent-encoded characters, as CloudFormation's do).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}/{}?{}",
            self.server.addr(),
            path.trim_start_matches('/'),
            self.shared.query
        )
    }

    /// The signature carried by every URL: it must never appear in logs.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Everything received so far, in arrival order.
    pub async fn received(&self) -> Vec<Received> {
        lock(&self.shared.state).received.clone()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            {
                let state = lock(&self.shared.state);
                if state.received.len() >= n {
                    return state.received.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return lock(&self.shared.state).received.clone();
            }
        }
    }

    /// Queues more statuses for the coming `PUT`s.
    pub fn push_script(&self, statuses: &[u16]) {
        lock(&self.shared.state)
            .script
            .extend(statuses.iter().copied());
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        lock(&self.shared.state).received.clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let raw: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut violations = Vec::new();
    if parts.method != Method::PUT {
        violations.push(format!("method is {}, expected PUT", parts.method));
    }
    if parts.uri.query().unwrap_or_default() != shared.query {
        violations.push("query string differs from the presigned URL's".to_string());
    }
    violations.extend(check_headers(&parts.headers, raw.len()));
    let body = match serde_json::from_slice::<Value>(&raw) {
        Ok(json) => {
            violations.extend(check_document(&json));
            json
        }
        Err(e) => {
            violations.push(format!("body is not JSON: {e}"));
            Value::Null
        }
    };
    if raw.len() > MAX_BODY {
        violations.push(format!("body is {} bytes, more than {MAX_BODY}", raw.len()));
    }
    let status = {
        let mut state = lock(&shared.state);
        let status = match state.always {
            Some(status) => status,
            None if parts.method == Method::PUT => state.script.pop_front().unwrap_or(200),
            None => 403,
        };
        if status < 300 {
            // CloudFormation has the answer: the resource it answers moves on.
            crate::stack_resources::answered(&body);
        }
        state.received.push(Received {
            status_returned: status,
            body,
            raw: raw.to_vec(),
            violations,
            path: parts.uri.path().to_string(),
            method: parts.method.to_string(),
            at: Instant::now(),
        });
        status
    };
    shared.notify.notify_waiters();
    let payload = if status < 300 {
        Bytes::new()
    } else {
        Bytes::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>injected by the response receiver</Message></Error>",
            if status == 403 { "SignatureDoesNotMatch" } else { "InternalError" }
        ))
    };
    let mut builder = Response::builder()
        .status(status)
        .header("x-amz-request-id", "DEVKITRECEIVER");
    if status < 300 {
        builder = builder.header(header::ETAG, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    } else {
        builder = builder.header(header::CONTENT_TYPE, "application/xml");
    }
    builder.body(http::full(payload)).unwrap_or_else(|_| {
        let mut fallback = Response::new(http::full(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Header checks: no Content-Type value, a Content-Length equal to the body, no chunking.
pub fn check_headers(headers: &hyper::HeaderMap, body_len: usize) -> Vec<String> {
    let mut violations = Vec::new();
    for value in headers.get_all(header::CONTENT_TYPE) {
        if !value.as_bytes().is_empty() {
            violations.push(format!(
                "Content-Type is {:?}, expected absent or empty",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
    }
    match headers.get(header::CONTENT_LENGTH) {
        None => violations.push("Content-Length is missing".to_string()),
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            Some(len) if len == body_len => {}
            Some(len) => violations.push(format!(
                "Content-Length is {len} but the body has {body_len} bytes"
            )),
            None => violations.push(format!("Content-Length is not a number: {value:?}")),
        },
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        violations.push("Transfer-Encoding is set (chunked uploads are refused)".to_string());
    }
    violations
}

/// Checks a response document against CloudFormation's custom-resource response format.
pub fn check_document(doc: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let Some(object) = doc.as_object() else {
        violations.push("body is not a JSON object".to_string());
        return violations;
    };
    let status = object.get("Status").and_then(Value::as_str);
    match status {
        Some("SUCCESS") | Some("FAILED") => {}
        Some(other) => violations.push(format!("Status is {other:?}, expected SUCCESS or FAILED")),
        None => violations.push("Status is missing or not a string".to_string()),
    }
    for key in REQUIRED_STRINGS {
        match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => violations.push(format!("{key} is empty")),
            Some(_) => violations.push(format!("{key} is not a string")),
            None => violations.push(format!("{key} is missing")),
        }
    }
    let failed = status == Some("FAILED");
    match object.get("Reason") {
        None | Some(Value::Null) if failed => {
            violations.push("Reason is missing on a FAILED response".to_string())
        }
        None | Some(Value::Null) => {}
        Some(Value::String(reason)) if failed && reason.is_empty() => {
            violations.push("Reason is empty on a FAILED response".to_string())
        }
        Some(Value::String(_)) => {}
        Some(_) => violations.push("Reason is not a string".to_string()),
    }
    match object.get("Data") {
        None => {}
        Some(Value::Object(data)) => {
            for (key, value) in data {
                if !value.is_string() {
                    violations.push(format!("Data.{key} is not a string"));
                }
            }
        }
        Some(_) => violations.push("Data is not an object".to_string()),
    }
    match object.get("NoEcho") {
        None | Some(Value::Bool(_)) => {}
        Some(Value::String(s)) if s == "true" || s == "false" => {}
        Some(_) => violations.push("NoEcho is not a boolean".to_string()),
    }
    for key in object.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            violations.push(format!("unknown top-level key {key:?}"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "Status": "SUCCESS", "StackId": "s", "RequestId": "r",
            "LogicalResourceId": "l", "PhysicalResourceId": "p"
        })
    }

    #[test]
    fn minimal_and_full_documents_pass() {
        assert!(check_document(&doc()).is_empty());
        let mut full = doc();
        full["Reason"] = Value::Null;
        full["NoEcho"] = json!(true);
        full["Data"] = json!({"a": "b"});
        assert!(check_document(&full).is_empty());
    }

    #[test]
    fn document_violations() {
        let mut d = doc();
        d["StackId"] = json!("");
        d["RequestId"] = json!(3);
        d["Status"] = json!("FAILED");
        d["Reason"] = json!("");
        d["Data"] = json!(["x"]);
        d["NoEcho"] = json!("maybe");
        let v = check_document(&d);
        assert_eq!(v.len(), 5, "{v:?}");
        assert_eq!(
            check_document(&json!([1])),
            vec!["body is not a JSON object"]
        );
    }

    #[test]
    fn header_violations() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        assert!(check_headers(&headers, 10).is_empty());
        assert_eq!(check_headers(&headers, 9).len(), 1);
        headers.insert(header::CONTENT_TYPE, "".parse().unwrap());
        assert!(check_headers(&headers, 10).is_empty());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(check_headers(&headers, 10).len(), 1);
    }
}

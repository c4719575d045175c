//! The response body, kept under CloudFormation's 4096-byte limit by construction.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Ids;

/// CloudFormation rejects response bodies over 4096 bytes.
pub const MAX_RESPONSE_BYTES: usize = 4096;
const MAX_ID_BYTES: usize = 1024;

/// SUCCESS or FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

impl Status {
    /// As written in the response body.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        }
    }
}

/// The outcome to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub physical_id: String,
    pub data: BTreeMap<String, String>,
}

impl Outcome {
    pub fn success(physical_id: String, data: BTreeMap<String, String>) -> Self {
        Outcome {
            status: Status::Success,
            reason: None,
            physical_id,
            data,
        }
    }

    pub fn failed(reason: String, physical_id: String) -> Self {
        Outcome {
            status: Status::Failed,
            reason: Some(reason),
            physical_id,
            data: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    no_echo: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, String>,
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn non_empty(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// The response body: valid JSON of at most [`MAX_RESPONSE_BYTES`] bytes, by construction.
/// Oversized parts give way in this order: the Reason is shortened, then the Data dropped,
/// then the identifiers shortened.
pub fn response_body(ids: &Ids, outcome: &Outcome) -> Vec<u8> {
    let mut reason = outcome.reason.clone();
    let mut data = outcome.data.clone();
    let mut id_cap = MAX_ID_BYTES;
    loop {
        let cap = |s: &str| truncate_utf8(non_empty(s), id_cap).to_string();
        let (physical, stack, request, logical) = (
            cap(&outcome.physical_id),
            cap(&ids.stack_id),
            cap(&ids.request_id),
            cap(&ids.logical_id),
        );
        let body = Body {
            status: outcome.status,
            reason: reason.as_deref(),
            physical_resource_id: &physical,
            stack_id: &stack,
            request_id: &request,
            logical_resource_id: &logical,
            no_echo: false,
            data: &data,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if bytes.len() <= MAX_RESPONSE_BYTES {
            return bytes;
        }
        let excess = bytes.len() - MAX_RESPONSE_BYTES;
        match &reason {
            Some(r) if r.len() > 16 => {
                // Escaping can make each byte up to six in JSON: cut generously.
                let keep = r.len().saturating_sub(excess + 3).min(r.len() - 16);
                let cut = truncate_utf8(r, keep);
                reason = Some(format!("{cut}..."));
                continue;
            }
            _ => {}
        }
        if !data.is_empty() {
            data.clear();
            continue;
        }
        id_cap = (id_cap / 2).max(1);
        if id_cap == 1 {
            reason = None;
        }
    }
}

/// Room left for `Data` (its JSON object) in a SUCCESS response with these identifiers: Data
/// of at most this size is answered whole. Identifiers so long that the response would have to
/// shorten them leave no room (the Data would give way first).
pub fn data_limit(ids: &Ids, physical_id: &str) -> usize {
    let cap = |s: &str| truncate_utf8(non_empty(s), MAX_ID_BYTES).to_string();
    let (physical, stack, request, logical) = (
        cap(physical_id),
        cap(&ids.stack_id),
        cap(&ids.request_id),
        cap(&ids.logical_id),
    );
    let empty = BTreeMap::new();
    let body = Body {
        status: Status::Success,
        reason: None,
        physical_resource_id: &physical,
        stack_id: &stack,
        request_id: &request,
        logical_resource_id: &logical,
        no_echo: false,
        data: &empty,
    };
    let base = serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len()) + r#","Data":"#.len();
    MAX_RESPONSE_BYTES.saturating_sub(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn ids() -> Ids {
        Ids {
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/api/1".into(),
            request_id: "r-1".into(),
            logical_id: "Binding".into(),
            physical_id: None,
        }
    }

    #[test]
    fn body_fits_and_is_json_even_when_huge() {
        let outcome = Outcome {
            status: Status::Failed,
            reason: Some("é\"\u{1}".repeat(5000)),
            physical_id: "p".repeat(5000),
            data: (0..200)
                .map(|i| (format!("v{i}"), "x".repeat(500)))
                .collect(),
        };
        let mut big_ids = ids();
        big_ids.stack_id = "s".repeat(9000);
        let body = response_body(&big_ids, &outcome);
        assert!(body.len() <= MAX_RESPONSE_BYTES, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert!(v["Reason"].as_str().unwrap().ends_with("..."));
    }

    #[test]
    fn small_body_is_untouched() {
        let outcome = Outcome {
            status: Status::Success,
            reason: None,
            physical_id: "stagewire:rest:a:prod:B".into(),
            data: BTreeMap::from([(
                "helloworldElb".to_string(),
                "x.elb.amazonaws.com".to_string(),
            )]),
        };
        let v: Value = serde_json::from_slice(&response_body(&ids(), &outcome)).unwrap();
        assert_eq!(
            v,
            json!({
                "Status": "SUCCESS",
                "PhysicalResourceId": "stagewire:rest:a:prod:B",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/api/1",
                "RequestId": "r-1",
                "LogicalResourceId": "Binding",
                "NoEcho": false,
                "Data": {"helloworldElb": "x.elb.amazonaws.com"}
            })
        );
    }

    #[test]
    fn data_limit_matches_the_body() {
        let limit = data_limit(&ids(), "pid");
        let value_len = limit - r#"{"k":""}"#.len();
        let outcome = Outcome {
            status: Status::Success,
            reason: None,
            physical_id: "pid".into(),
            data: BTreeMap::from([("k".to_string(), "x".repeat(value_len))]),
        };
        let body = response_body(&ids(), &outcome);
        assert_eq!(body.len(), MAX_RESPONSE_BYTES);
        assert!(serde_json::from_slice::<Value>(&body).unwrap()["Data"]["k"].is_string());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}

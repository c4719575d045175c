//! Bytes -> JSON -> custom-resource envelope -> response body: nothing panics, and every
//! event that has somewhere to answer gets a body that is valid JSON of at most 4096 bytes.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stagewire::cfn::{self, Ids, Outcome, Status, MAX_RESPONSE_BYTES};

fn check(ids: &Ids, outcome: &Outcome) {
    let body = cfn::response_body(ids, outcome);
    assert!(body.len() <= MAX_RESPONSE_BYTES, "{} bytes", body.len());
    let doc: Value = serde_json::from_slice(&body).expect("response body is JSON");
    for key in [
        "Status",
        "StackId",
        "RequestId",
        "LogicalResourceId",
        "PhysicalResourceId",
    ] {
        let v = doc.get(key).and_then(Value::as_str).unwrap_or_default();
        assert!(!v.is_empty(), "{key} is not a non-empty string");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let ids = match cfn::decode(&event) {
        Ok(envelope) => {
            let _ = stagewire::props::parse(&envelope.properties);
            let _ = stagewire::props::service_timeout(&envelope.properties);
            envelope.ids
        }
        Err(m) => match m.respond_to {
            Some((_, ids, _)) => ids,
            None => return,
        },
    };
    // A FAILED answer whose Reason echoes the event, and a SUCCESS answer whose Data does.
    let text = String::from_utf8_lossy(data).into_owned();
    let physical_id = ids.physical_id.clone().unwrap_or_else(|| text.clone());
    check(
        &ids,
        &Outcome {
            status: Status::Failed,
            reason: Some(format!("invalid properties: {text}")),
            physical_id: physical_id.clone(),
            data: BTreeMap::new(),
        },
    );
    let data: BTreeMap<String, String> = event
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
        .unwrap_or_default();
    check(
        &ids,
        &Outcome {
            status: Status::Success,
            reason: None,
            physical_id,
            data,
        },
    );
});

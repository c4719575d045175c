//! CloudWatch's RPCv2 CBOR protocol, which the Rust SDK's CloudWatch client speaks and moto does
//! not, answered through moto's JSON protocol for the same operations.
//!
//! A request to `/service/GraniteServiceVersion20100801/operation/<Operation>` has its CBOR body
//! read into a document and sent to moto as `X-Amz-Target:
//! GraniteServiceVersion20100801.<Operation>` with `application/x-amz-json-1.0` (the same
//! shapes); moto's JSON answer, an error's `__type` and `message` included, goes back as CBOR
//! with `smithy-protocol: rpc-v2-cbor`. Timestamps travel as CBOR tag 1 (epoch seconds) and as
//! JSON numbers: on the way back, a number whose member name ends in `Timestamp` (or a list of
//! numbers named `...Timestamps`) is tagged, which covers the alarm answers (`DescribeAlarms`);
//! answers with other timestamp members (`GetMetricData`'s) are not played, nor are blobs.

use bytes::Bytes;
use ciborium::value::{Integer, Value as Cbor};
use hyper::http::request::Parts;
use hyper::{header, Method, Response};
use serde_json::{Map, Number, Value};

use super::http_api::exchange;
use super::{bad_gateway, response, Shared};
use crate::http::Body;

const PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";

/// Answers CloudWatch's RPCv2 CBOR calls; `None` for every other request.
pub(super) async fn play(shared: &Shared, parts: &Parts, body: &Bytes) -> Option<Response<Body>> {
    let operation = parts.uri.path().strip_prefix(PREFIX)?.to_string();
    if parts.method != Method::POST {
        return None;
    }
    let input = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        match ciborium::de::from_reader::<Cbor, _>(&body[..]) {
            Ok(doc) => to_json(doc),
            Err(e) => return Some(bad_gateway(&format!("unreadable CBOR body: {e}"))),
        }
    };
    let mut json_parts = parts.clone();
    json_parts.headers.remove("smithy-protocol");
    json_parts.headers.remove(header::ACCEPT);
    json_parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    let target = format!("GraniteServiceVersion20100801.{operation}");
    if let Ok(value) = header::HeaderValue::from_str(&target) {
        json_parts.headers.insert("x-amz-target", value);
    }
    let sent = Bytes::from(input.to_string());
    let (status, answered) = match exchange(shared, &json_parts, Method::POST, "/", sent).await {
        Ok(answered) => answered,
        Err(e) => return Some(bad_gateway(&e)),
    };
    let doc: Value = if answered.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(&answered) {
            Ok(doc) => doc,
            Err(_) => return Some(bad_gateway(&String::from_utf8_lossy(&answered))),
        }
    };
    let mut out = Vec::new();
    if let Err(e) = ciborium::ser::into_writer(&to_cbor(doc, false), &mut out) {
        return Some(bad_gateway(&format!("cannot write CBOR: {e}")));
    }
    let mut answer = response(
        status,
        &[
            ("content-type", "application/cbor".to_string()),
            ("smithy-protocol", "rpc-v2-cbor".to_string()),
        ],
        String::new(),
    );
    *answer.body_mut() = crate::http::full(out);
    Some(answer)
}

/// A CBOR document as JSON (tags dropped: a timestamp becomes its number).
pub(super) fn to_json(doc: Cbor) -> Value {
    match doc {
        Cbor::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .unwrap_or(Value::Null)
        }
        Cbor::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Cbor::Text(s) => Value::String(s),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Tag(_, inner) => to_json(*inner),
        Cbor::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Cbor::Map(entries) => Value::Object(
            entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(k) => Some((k, to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Cbor::Bytes(_) | Cbor::Null => Value::Null,
        _ => Value::Null,
    }
}

/// A JSON document as CBOR; `timestamp` tags its numbers as epoch seconds (tag 1).
pub(super) fn to_cbor(doc: Value, timestamp: bool) -> Cbor {
    match doc {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(b),
        Value::Number(n) if timestamp => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default())))
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Integer(Integer::from(i)),
            (_, Some(u)) => Cbor::Integer(Integer::from(u)),
            _ => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s),
        Value::Array(items) => Cbor::Array(
            items
                .into_iter()
                .map(|item| to_cbor(item, timestamp))
                .collect(),
        ),
        Value::Object(entries) => Cbor::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let timestamp = k.ends_with("Timestamp") || k.ends_with("Timestamps");
                    (Cbor::Text(k), to_cbor(v, timestamp))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_go_both_ways_and_timestamps_are_tagged() {
        let doc = json!({"AlarmNames": ["a"], "MaxRecords": 5, "Threshold": 1.5,
            "StateUpdatedTimestamp": 1767225600.5, "Nested": [{"x": true}]});
        let cbor = to_cbor(doc.clone(), false);
        let Cbor::Map(entries) = &cbor else {
            panic!("{cbor:?}")
        };
        let stamp = entries
            .iter()
            .find(|(k, _)| *k == Cbor::Text("StateUpdatedTimestamp".into()))
            .map(|(_, v)| v.clone());
        assert_eq!(
            stamp,
            Some(Cbor::Tag(1, Box::new(Cbor::Float(1767225600.5))))
        );
        assert_eq!(to_json(cbor), doc);
    }
}

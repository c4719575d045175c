//! Tests of the CloudFormation response receiver.

use std::time::Duration;

use serde_json::json;
use stagewire_devkit::ResponseReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw HTTP/1.1 bytes to the URL's host and returns the status code.
async fn raw(url: &str, method: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let mut head =
        format!("{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn good_doc() -> serde_json::Value {
    json!({
        "Status": "SUCCESS",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Demo/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "Binding",
        "PhysicalResourceId": "stagewire:abc:prod",
        "Data": { "helloworldElb": "elb.example.com" },
        "NoEcho": false
    })
}

async fn put(url: &str, body: &[u8]) -> u16 {
    raw(
        url,
        "PUT",
        &[("Content-Length", body.len().to_string())],
        body,
    )
    .await
}

#[tokio::test]
async fn good_put_passes() {
    let receiver = ResponseReceiver::start(vec![]).await.unwrap();
    let url = receiver.url("arn%3Aaws%3Acloudformation%7CBinding%7Creq-1");
    assert!(url.contains(receiver.secret()));
    assert!(url.contains("X-Amz-Signature="));
    let body = serde_json::to_vec(&good_doc()).unwrap();
    assert_eq!(put(&url, &body).await, 200);
    // An explicitly empty Content-Type is what CloudFormation's own helpers send.
    let status = raw(
        &url,
        "PUT",
        &[
            ("Content-Type", String::new()),
            ("Content-Length", body.len().to_string()),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let got = receiver.received().await;
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.status_returned, 200);
        assert_eq!(r.path, "/arn%3Aaws%3Acloudformation%7CBinding%7Creq-1");
        assert_eq!(r.status(), Some("SUCCESS"));
        assert_eq!(r.body, good_doc());
        assert_eq!(r.raw, body);
    }
}

#[tokio::test]
async fn failed_with_reason_passes_and_without_reason_does_not() {
    let receiver = ResponseReceiver::start(vec![]).await.unwrap();
    let url = receiver.url("r");
    let mut doc = good_doc();
    doc["Status"] = json!("FAILED");
    doc["Reason"] = json!("variable owned by another binding");
    put(&url, &serde_json::to_vec(&doc).unwrap()).await;
    doc.as_object_mut().unwrap().remove("Reason");
    put(&url, &serde_json::to_vec(&doc).unwrap()).await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert!(got[0].violations.is_empty(), "{:?}", got[0].violations);
    assert!(
        got[1].violations.iter().any(|v| v.contains("Reason")),
        "{:?}",
        got[1].violations
    );
}

#[tokio::test]
async fn each_bad_request_is_a_violation() {
    let receiver = ResponseReceiver::start(vec![]).await.unwrap();
    let url = receiver.url("r");
    let body = serde_json::to_vec(&good_doc()).unwrap();
    let len = body.len().to_string();

    // POST instead of PUT: S3 refuses a PUT-signed URL, 403.
    let status = raw(&url, "POST", &[("Content-Length", len.clone())], &body).await;
    assert_eq!(status, 403);
    // A content type.
    raw(
        &url,
        "PUT",
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", len.clone()),
        ],
        &body,
    )
    .await;
    // Too big.
    let mut big = good_doc();
    big["Data"] = json!({ "blob": "x".repeat(5000) });
    put(&url, &serde_json::to_vec(&big).unwrap()).await;
    // A missing field.
    let mut missing = good_doc();
    missing
        .as_object_mut()
        .unwrap()
        .remove("PhysicalResourceId");
    put(&url, &serde_json::to_vec(&missing).unwrap()).await;
    // Chunked upload.
    let chunked = format!(
        "{:x}\r\n{}\r\n0\r\n\r\n",
        body.len(),
        String::from_utf8_lossy(&body)
    );
    raw(
        &url,
        "PUT",
        &[("Transfer-Encoding", "chunked".into())],
        chunked.as_bytes(),
    )
    .await;
    // Not JSON, an unknown key, a bad status, non-string Data.
    put(&url, b"hello").await;
    let mut unknown = good_doc();
    unknown["Extra"] = json!(1);
    unknown["Status"] = json!("OK");
    unknown["Data"] = json!({ "n": 1 });
    put(&url, &serde_json::to_vec(&unknown).unwrap()).await;
    // A URL whose signature was altered.
    let tampered = url.replace(receiver.secret(), "0000");
    put(&tampered, &body).await;

    let got = receiver.wait_for(8, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 8);
    let has = |i: usize, needle: &str| {
        assert!(
            got[i].violations.iter().any(|v| v.contains(needle)),
            "request {i}: {needle:?} not in {:?}",
            got[i].violations
        )
    };
    has(0, "method is POST");
    has(1, "Content-Type");
    has(2, "more than 4096");
    has(3, "PhysicalResourceId is missing");
    has(4, "Transfer-Encoding");
    has(4, "Content-Length is missing");
    has(5, "not JSON");
    assert_eq!(got[5].body, serde_json::Value::Null);
    has(6, "unknown top-level key \"Extra\"");
    has(6, "Status is \"OK\"");
    has(6, "Data.n is not a string");
    has(7, "query string");
}

#[tokio::test]
async fn scripted_statuses_then_200() {
    let receiver = ResponseReceiver::start(vec![500, 500, 200]).await.unwrap();
    let url = receiver.url("r");
    let body = serde_json::to_vec(&good_doc()).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(put(&url, &body).await);
    }
    assert_eq!(statuses, vec![500, 500, 200, 200]);
    let got = receiver.received().await;
    let returned: Vec<u16> = got.iter().map(|r| r.status_returned).collect();
    assert_eq!(returned, vec![500, 500, 200, 200]);

    let always = ResponseReceiver::always(503).await.unwrap();
    assert_eq!(put(&always.url("x"), &body).await, 503);
    assert_eq!(put(&always.url("x"), &body).await, 503);
}

#[tokio::test]
async fn wait_for_returns_what_arrived_on_timeout() {
    let receiver = ResponseReceiver::start(vec![]).await.unwrap();
    let started = std::time::Instant::now();
    let got = receiver.wait_for(1, Duration::from_millis(200)).await;
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
}

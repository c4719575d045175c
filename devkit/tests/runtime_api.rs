//! Tests of the Lambda Runtime API with a fake function written in Python.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use stagewire_devkit::{DevkitError, LambdaProcess, Outcome, RuntimeApi};

const FUNCTION: &str = r#"#!/usr/bin/env python3
import json, os, sys, time, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
print("fake function started", flush=True)
print("to stderr", file=sys.stderr, flush=True)
if os.environ.get("FAIL_INIT"):
    req = urllib.request.Request(base + "/init/error", data=b'{"errorType":"Init","errorMessage":"no config"}', method="POST")
    urllib.request.urlopen(req).read()
    sys.exit(1)
def post(path, doc):
    req = urllib.request.Request(base + path, data=json.dumps(doc).encode(), method="POST")
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        print("post refused", e.code, flush=True)
while True:
    with urllib.request.urlopen(base + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
        trace = r.headers["Lambda-Runtime-Trace-Id"]
        event = json.loads(r.read())
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        post("/invocation/" + rid + "/error", {"errorType": "Boom", "errorMessage": "asked to fail"})
        continue
    post("/invocation/" + rid + "/response", {
        "echo": event, "request_id": rid, "deadline_ms": deadline, "arn": arn, "trace": trace,
        "now_ms": int(time.time() * 1000),
        "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "extra": os.environ.get("EXTRA"),
    })
"#;

fn write_function(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("stagewire-devkit-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, FUNCTION).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn drives_a_fake_function() {
    let api = RuntimeApi::start().await.unwrap();
    assert!(api.address().starts_with("127.0.0.1:"));
    let binary = write_function("fake-fn");
    let env = vec![("EXTRA".to_string(), "yes".to_string())];
    let process = LambdaProcess::spawn(&binary, &api, &env).unwrap();

    let first = api
        .first_poll(Duration::from_secs(10))
        .await
        .expect("the function polled");
    assert!(first >= process.spawned_at());
    assert!(api.init_error().is_none());

    let inv = api
        .invoke(json!({"hello": "world"}), Duration::from_secs(5))
        .await
        .unwrap();
    let Outcome::Response(body) = &inv.outcome else {
        panic!("expected a response, got {:?}", inv.outcome);
    };
    assert_eq!(body["echo"], json!({"hello": "world"}));
    assert_eq!(body["request_id"], json!(inv.request_id));
    assert_eq!(body["name"], "fake-fn");
    assert_eq!(body["memory"], "128");
    assert_eq!(body["version"], "$LATEST");
    assert_eq!(body["extra"], "yes");
    assert!(body["arn"].as_str().unwrap().starts_with("arn:aws:lambda:"));
    assert!(body["trace"].as_str().unwrap().starts_with("Root=1-"));
    let left = body["deadline_ms"].as_i64().unwrap() - body["now_ms"].as_i64().unwrap();
    assert!((3000..=5100).contains(&left), "deadline {left} ms away");
    assert!(inv.duration < Duration::from_secs(5));

    let failed = api
        .invoke(json!({"fail": true}), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        failed.outcome,
        Outcome::Error(json!({"errorType": "Boom", "errorMessage": "asked to fail"}))
    );

    let late = api
        .invoke(json!({"sleep": 1.0}), Duration::from_millis(300))
        .await;
    assert!(matches!(late, Err(DevkitError::Timeout { .. })), "{late:?}");
    // The late answer is refused; the next invocation still works.
    let again = api
        .invoke(json!({"n": 2}), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.response().unwrap()["echo"], json!({"n": 2}));

    assert!(
        process
            .wait_for_log("post refused 400", Duration::from_secs(2))
            .await
    );
    assert!(
        process
            .wait_for_log("fake function started", Duration::from_secs(2))
            .await
    );
    assert!(process.logs().iter().any(|l| l == "to stderr"));
    let rss = process.peak_rss_kb().expect("VmHWM of a live process");
    assert!(rss > 1000, "{rss} KiB");
    assert!(process.pid().is_some());
}

#[tokio::test]
async fn init_error_is_reported() {
    let api = RuntimeApi::start().await.unwrap();
    let binary = write_function("failing-init");
    let env = vec![("FAIL_INIT".to_string(), "1".to_string())];
    let mut process = LambdaProcess::spawn(&binary, &api, &env).unwrap();
    let started = std::time::Instant::now();
    let result = api.invoke(json!({}), Duration::from_secs(5)).await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(api.init_error().unwrap()["errorType"], "Init");
    process.kill().await.unwrap();
    assert!(process.try_wait().unwrap().is_some());
}

#[tokio::test]
async fn invoke_without_a_function_times_out_on_delivery() {
    let api = RuntimeApi::start().await.unwrap();
    assert!(api.first_poll(Duration::from_millis(50)).await.is_none());
    let started = std::time::Instant::now();
    let result = api
        .invoke(json!({"nobody": "polls"}), Duration::from_secs(1))
        .await;
    let waited = started.elapsed();
    match result {
        Err(DevkitError::Timeout { what, after }) => {
            assert!(what.contains("invocation/next"), "{what}");
            assert_eq!(after, stagewire_devkit::runtime_api::DELIVERY_TIMEOUT);
        }
        other => panic!("expected a delivery timeout, got {other:?}"),
    }
    // The wait is the delivery timeout, not the invocation's own 1 s.
    assert!(
        waited >= stagewire_devkit::runtime_api::DELIVERY_TIMEOUT,
        "gave up after {waited:?}"
    );
    assert!(api.first_poll(Duration::from_millis(10)).await.is_none());
}

//! Faults between stagewire and its dependencies: API Gateway throttling half of the calls, a
//! dependency that stays down, a burst of bindings at once, and ResponseURLs that refuse,
//! cannot be reached or redirect. AWS calls go through the devkit's fault-injecting proxy in
//! front of moto; the custom-resource responses go to local servers.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use stagewire::cfn::{Handler, SendError, Sender, Undelivered};
use stagewire::Ports;
use stagewire_devkit::fault_proxy::{Fault, FaultProxy, Rule};
use stagewire_devkit::receiver::ResponseReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::resync::stack_event;
use crate::support::*;

/// The proxy's seed: `STAGEWIRE_FAULT_SEED` when set, to replay other draws, else `default`.
fn seed(default: u64) -> u64 {
    std::env::var("STAGEWIRE_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// API Gateway calls that got a fault, and all API Gateway calls.
fn apigateway_share(proxy: &FaultProxy) -> (usize, usize) {
    let records = proxy.records();
    let calls: Vec<_> = records
        .iter()
        .filter(|r| r.service == "apigateway")
        .collect();
    (
        calls.iter().filter(|r| r.fault.is_some()).count(),
        calls.len(),
    )
}

/// A scene whose proxy draws from [`seed`]`(2)` and whose stagewire ports retry as the
/// functions do (6 attempts per call), with short backoffs so that the tests stay quick. The
/// fixture clients keep the devkit's 3 attempts: faults are only switched on once the fixtures
/// exist.
async fn retrying_scene(prefix: &str) -> Scene {
    let w = World::builder()
        .seed(seed(2))
        .function_retries()
        .build()
        .await;
    Scene::on(w, prefix).await
}

/// The stages the throttling tests bind, `helloworldElb` of each by a binding `B<stage>`.
const FOUR_STAGES: [&str; 4] = ["prod", "blue", "green", "canary"];

/// Binds each of [`FOUR_STAGES`] to the scene's stack output, one Create after the other.
async fn bind_four_stages(s: &Scene) {
    for stage in FOUR_STAGES {
        let props = seed_props(&s.api, stage, &s.stack.name);
        let logical = format!("B{stage}");
        let r = s.cfn.send_create(&s.w.handler(), &logical, props).await;
        assert_success(&r);
    }
}

/// Each of [`FOUR_STAGES`] holds `dns`.
async fn assert_four_stages_hold(s: &Scene, dns: &str) {
    for stage in FOUR_STAGES {
        let value = s.w.var(&s.api, stage, "helloworldElb").await;
        assert_eq!(value.as_deref(), Some(dns), "stage {stage}");
    }
}

/// Enough API Gateway calls met the throttling to mean anything (a quarter at least).
fn assert_a_share_throttled(proxy: &FaultProxy, what: &str) {
    let (throttled, calls) = apigateway_share(proxy);
    println!("throttled {what}: {throttled} of {calls} API Gateway calls throttled");
    assert!(
        throttled * 4 >= calls,
        "too little throttling to mean anything"
    );
}

/// Half of the API Gateway calls throttled: a quarter with `Retry-After`, a quarter without.
fn throttle_half(proxy: &FaultProxy) {
    proxy.add_rule(
        Rule::new(Fault::Throttle {
            retry_after: Some(1),
        })
        .service("apigateway")
        .probability(0.25),
    );
    // Applies to the three quarters the first rule lets through: 0.75 * 1/3 = 0.25.
    proxy.add_rule(
        Rule::new(Fault::Throttle { retry_after: None })
            .service("apigateway")
            .probability(1.0 / 3.0),
    );
}

#[tokio::test]
async fn a_seed_create_converges_with_half_of_api_gateway_throttled() {
    let s = retrying_scene("EcsThrottledCreate").await;
    let proxy = s.w.proxy();
    proxy.reset_counts();
    throttle_half(proxy);

    // Four bindings one after the other, so that enough calls meet the throttling.
    bind_four_stages(&s).await;

    proxy.clear_rules();
    assert_four_stages_hold(&s, &s.stack.dns).await;
    assert_a_share_throttled(proxy, "create");
}

#[tokio::test]
async fn a_resync_converges_with_half_of_api_gateway_throttled() {
    let s = retrying_scene("EcsThrottledResync").await;
    let proxy = s.w.proxy();
    bind_four_stages(&s).await;
    let replaced = s.w.replace_elb_stack(&s.stack.name).await;
    proxy.reset_counts();
    throttle_half(proxy);

    let event = stack_event(&replaced.stack_id, "UPDATE_COMPLETE");
    let summary = stagewire::resync::handle(&s.w.ports, event)
        .await
        .expect("re-sync succeeded");

    proxy.clear_rules();
    assert_eq!(summary.changed.len(), 4, "{summary:?}");
    assert_four_stages_hold(&s, &replaced.dns).await;
    assert_a_share_throttled(proxy, "re-sync");
}

/// A Create whose stack output cannot be read because CloudFormation stays down gets exactly
/// one FAILED response before the deadline, naming what was down.
async fn create_with_cloudformation_down(fault: Fault) {
    let s = Scene::new("EcsDown").await;
    let proxy = s.w.proxy();
    proxy.add_rule(
        Rule::new(fault.clone())
            .service("cloudformation")
            .operation("DescribeStacks"),
    );
    let budget = Duration::from_secs(8);
    let started = Instant::now();

    let (report, received) = s.create_within("B", "prod", budget).await;

    let took = started.elapsed();
    report.expect("response delivered");
    assert!(took < budget, "answered after {took:?}");
    let r = assert_one_failed(&received, &[]);
    let reason = r.field("Reason").unwrap_or_default();
    let lower = reason.to_lowercase();
    assert!(
        lower.contains("describestacks") || lower.contains("cloudformation"),
        "Reason {reason:?} does not name what was down"
    );
    assert!(proxy.count("cloudformation", "DescribeStacks") >= 1);
    println!("{fault:?}: FAILED after {took:?}: {reason}");
}

#[tokio::test]
async fn cloudformation_answering_503_fails_the_create_once_before_the_deadline() {
    create_with_cloudformation_down(Fault::Status(503)).await;
}

#[tokio::test]
async fn cloudformation_resetting_connections_fails_the_create_once_before_the_deadline() {
    create_with_cloudformation_down(Fault::Reset).await;
}

/// `n` Creates at once, each in a sandbox of its own (a `Handler` over its own adapters, so its
/// own pacer, as each concurrent custom resource gets in Lambda), each binding a new stage
/// `{prefix}{i}` of `api`. Answers each one's report; panics on an undelivered response.
async fn creates_in_separate_sandboxes(
    s: &Scene,
    prefix: &str,
    n: usize,
) -> Vec<stagewire::cfn::Report> {
    let Scene { w, stack, api, cfn } = s;
    // The functions' own retries (the world's clients retry faster, for quick fault tests).
    let sdk = w
        .sdk
        .to_builder()
        .retry_config(stagewire::config::retry_config())
        .build();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let handler = w.handler_over(Ports::aws(&sdk, &w.table).expect("a region"));
            let event = cfn.create(
                &format!("{}{i}", prefix.to_uppercase()),
                seed_props(api, &format!("{prefix}{i}"), &stack.name),
            );
            tokio::spawn(async move {
                handler
                    .handle(event, Instant::now() + Duration::from_secs(300))
                    .await
                    .unwrap_or_else(|e| panic!("binding {i}: {e}"))
            })
        })
        .collect();
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.unwrap());
    }
    reports
}

/// Every binding answered SUCCESS.
fn assert_all_succeeded(reports: &[stagewire::cfn::Report]) {
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(
            report.outcome, "SUCCESS",
            "binding {i}: {:?}",
            report.reason
        );
    }
}

/// The API Gateway calls the quotas answered 429, per operation kind.
fn throttled_by_kind(proxy: &FaultProxy) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for r in proxy.records().iter().filter(|r| r.over_quota) {
        let kind = r
            .operation
            .split('/')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| if i % 2 == 1 { "{id}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        *out.entry(kind).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn a_burst_of_thirty_bindings_on_one_api_all_succeed() {
    let s = retrying_scene("EcsBurst").await;
    let Scene { w, stack, api, cfn } = &s;
    let proxy = w.proxy();
    // The API is deployed once (to another stage); the thirty new stages are made by the
    // bindings, from that deployment.
    w.deploy_stage(api, "base", &[]).await;
    proxy.reset_counts();
    proxy.enforce_apigateway_quotas();
    let started = Instant::now();

    let reports = creates_in_separate_sandboxes(&s, "s", 30).await;

    let took = started.elapsed();
    proxy.lift_apigateway_quotas();
    assert_all_succeeded(&reports);
    let throttled = proxy.over_quota();
    let creates = proxy.answered("POST", "/stages", 201);
    let received = cfn.receiver.received().await;
    assert_eq!(received.len(), 30);
    for r in &received {
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_success(r);
    }
    for i in 0..30 {
        assert_eq!(
            w.var(api, &format!("s{i}"), "helloworldElb")
                .await
                .as_deref(),
            Some(stack.dns.as_str()),
            "stage s{i}"
        );
    }
    println!(
        "30 bindings in separate sandboxes in {took:?}: {creates} stages created, {throttled} API \
         Gateway calls throttled by the account quota ({:?})",
        throttled_by_kind(proxy)
    );
    assert_eq!(creates, 30, "{:?}", proxy.counts());
    // The account's burst of 40 cannot hold 30 sandboxes' reads and creates: the quota was met,
    // and each sandbox backed off instead of hammering it.
    assert!(
        throttled >= 1,
        "the quota was never reached: {:?}",
        proxy.counts()
    );
    // Measured: about 1.5 per binding (43-46 of 30 bindings' calls): a throttled call is not
    // retried by the SDK but waits in its pacer. With the SDK retrying throttles it was 137.
    assert!(
        throttled <= 2 * 30,
        "{throttled} calls throttled: {:?}",
        throttled_by_kind(proxy)
    );
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port on which nothing listens.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Everything an invocation returns, as text: the report, or the error as Lambda sees it.
fn returned_text(result: Result<stagewire::cfn::Report, Undelivered>) -> String {
    match result {
        Ok(report) => format!(
            "{report:?} {}",
            serde_json::to_string(&report).unwrap_or_default()
        ),
        Err(e) => {
            let text = format!("{e} {e:?}");
            let diagnostic = lambda_runtime::Diagnostic::from(e);
            format!(
                "{text} {} {}",
                diagnostic.error_type, diagnostic.error_message
            )
        }
    }
}

// One thread, so that the subscriber installed for this thread sees every task's events.
#[tokio::test(flavor = "current_thread")]
async fn the_response_url_never_reaches_logs_or_returned_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let Scene {
        w,
        stack,
        api,
        cfn: ok,
    } = Scene::new("EcsSecret").await;
    let refusing = Cloudformation::with_receiver(ResponseReceiver::always(403).await.unwrap());
    let handler = w.handler();
    let deadline = || Instant::now() + Duration::from_secs(30);
    let mut secrets: Vec<String> = Vec::new();
    let mut returned: Vec<(&str, String)> = Vec::new();

    // Succeeding: a seed Create.
    let event = ok.create("Ok", seed_props(&api, "prod", &stack.name));
    secrets.push(event["ResponseURL"].as_str().unwrap().to_string());
    let result = handler.handle(event, deadline()).await;
    assert_eq!(result.as_ref().map(|r| r.outcome).ok(), Some("SUCCESS"));
    returned.push(("success", returned_text(result)));

    // A stack that does not exist: delivered FAILED.
    let event = ok.create(
        "Missing",
        seed_props(&api, "missing", &unique("NoSuchStack")),
    );
    secrets.push(event["ResponseURL"].as_str().unwrap().to_string());
    let result = handler.handle(event, deadline()).await;
    assert_eq!(result.as_ref().map(|r| r.outcome).ok(), Some("FAILED"));
    returned.push(("missing stack", returned_text(result)));

    // A malformed event: delivered FAILED.
    let mut event = ok.create("Malformed", seed_props(&api, "bad", &stack.name));
    secrets.push(event["ResponseURL"].as_str().unwrap().to_string());
    event.as_object_mut().unwrap().remove("StackId");
    event["RequestId"] = json!(["not", "a", "string"]);
    let result = handler.handle(event, deadline()).await;
    assert_eq!(result.as_ref().map(|r| r.outcome).ok(), Some("FAILED"));
    returned.push(("malformed", returned_text(result)));

    // A ResponseURL that answers 403 every time.
    let event = refusing.create("Refused", seed_props(&api, "refused", &stack.name));
    secrets.push(event["ResponseURL"].as_str().unwrap().to_string());
    let result = handler.handle(event, deadline()).await;
    assert!(
        matches!(
            &result,
            Err(Undelivered(SendError::Status { status: 403, .. }))
        ),
        "{result:?}"
    );
    returned.push(("403", returned_text(result)));

    // A ResponseURL whose host refuses connections.
    let mut event = ok.create("Unreachable", seed_props(&api, "unreachable", &stack.name));
    let url = event["ResponseURL"].as_str().unwrap().to_string();
    let port = closed_port().await;
    let (_, rest) = url.split_once("://").unwrap();
    let (_, path) = rest.split_once('/').unwrap();
    let unreachable = format!("http://127.0.0.1:{port}/{path}");
    event["ResponseURL"] = json!(unreachable);
    secrets.push(unreachable);
    let result = handler.handle(event, deadline()).await;
    assert!(
        matches!(&result, Err(Undelivered(SendError::Transport { .. }))),
        "{result:?}"
    );
    returned.push(("refused connection", returned_text(result)));

    let captured = logs.text();
    assert!(
        captured.contains("response PUT refused") && captured.contains("response PUT failed"),
        "the capture missed the handler's own events"
    );
    let mut needles: Vec<&str> = vec![ok.receiver.secret(), refusing.receiver.secret()];
    needles.extend(secrets.iter().map(String::as_str));
    for needle in &needles {
        assert!(
            !captured.contains(needle),
            "the logs carry a ResponseURL or its signature"
        );
        for (what, text) in &returned {
            assert!(
                !text.contains(needle),
                "{what}: the returned report or error carries a ResponseURL or its signature"
            );
        }
    }
    println!(
        "{} bytes of logs captured over {} invocations; no ResponseURL or signature in them",
        captured.len(),
        returned.len()
    );
}

/// A server that answers every request with a 307 redirect to `location`, counting requests.
async fn redirecting_server(location: String) -> (String, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let location = location.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                // Read the request head; the body is not needed to answer.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                *counter.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn a_redirecting_response_url_is_not_followed_and_reported_undelivered() {
    let target = ResponseReceiver::start(vec![]).await.unwrap();
    let (origin, hits) = redirecting_server(target.url("cfn-response/redirected")).await;
    let url = format!(
        "{origin}/cfn-response/B?X-Amz-Signature={}",
        "0123456789abcdef".repeat(4)
    );
    let event: Value = json!({
        "RequestType": "Create",
        "ServiceToken": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
        "ResponseURL": url,
        "StackId": format!("arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/S/1"),
        "RequestId": unique("req"),
        "LogicalResourceId": "B",
        "ResourceType": "Custom::StageBinding",
        "ResourceProperties": {"RestApiId": "a", "StageName": "prod", "Variables": {"v": {"Value": "x"}}},
    });
    let mut handler = Handler::misconfigured(
        "x",
        stagewire::cfn::security::ResponseHosts::cloudformation("us-east-1")
            .allowing(local_response_hosts()),
    );
    handler.sender = Sender::new(3, Duration::from_millis(20), Duration::from_secs(3));

    let result = handler
        .handle(event, Instant::now() + Duration::from_secs(20))
        .await;

    match &result {
        Err(Undelivered(SendError::Status {
            status: 307,
            attempts,
        })) => {
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected an undelivered 307, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*hits.lock().unwrap(), 3, "one request per attempt");
    assert!(
        target.received().await.is_empty(),
        "the redirect target received {:?}",
        target.received().await
    );
}

#[tokio::test]
async fn new_stages_at_once_are_made_from_one_deployment() {
    // An API never deployed: the first new stage needs a deployment, the others reuse it.
    let s = retrying_scene("EcsDeploy").await;
    let Scene { w, stack, api, .. } = &s;
    let proxy = w.proxy();
    proxy.reset_counts();
    proxy.enforce_apigateway_quotas();

    let reports = creates_in_separate_sandboxes(&s, "n", 3).await;
    proxy.lift_apigateway_quotas();

    assert_all_succeeded(&reports);
    // Every stage is made by CreateStage from a deployment. Deployments: the quota throttles
    // a second one within 5 s and a sandbox that waited finds its sibling's instead, so one on
    // a quick run; on a loaded machine a sandbox may reach the quota's next slot before it
    // looks again, but none deploys twice.
    let deployments = proxy.answered("POST", "/deployments", 201);
    assert!(
        (1..=3).contains(&deployments),
        "{deployments} deployments: {:?}",
        proxy.counts()
    );
    assert_eq!(
        proxy.answered("POST", "/stages", 201),
        3,
        "{:?}",
        proxy.counts()
    );
    println!(
        "3 new stages in separate sandboxes: {} calls throttled ({:?})",
        proxy.over_quota(),
        throttled_by_kind(proxy)
    );
    for i in 0..3 {
        assert_eq!(
            w.var(api, &format!("n{i}"), "helloworldElb")
                .await
                .as_deref(),
            Some(stack.dns.as_str())
        );
    }
}

#[tokio::test]
async fn a_throttled_create_deployment_is_waited_out() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsDeploy").await;
    let proxy = w.proxy();
    // More throttles in a row than the SDK's own retries absorb (3 attempts in tests).
    proxy.add_rule(
        Rule::new(Fault::Throttle { retry_after: None })
            .service("apigateway")
            .operation(format!("POST /restapis/{api}/deployments"))
            .times(4),
    );

    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &stack.name))
        .await;

    assert_success(&r);
    assert_eq!(proxy.injected(), 4);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

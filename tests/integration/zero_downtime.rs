//! Replacing a load balancer with traffic running: requests go through the local stand-in for
//! API Gateway's HTTP_PROXY integration (stage variables read from moto) to local load
//! balancers, while CloudFormation's order of events for the replacement is played against
//! moto, the custom resource and the re-sync.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use stagewire::cfn::Handler;
use stagewire::Ports;
use stagewire_devkit::choreography::{
    replace_load_balancer, BoxFuture, ByHandTarget, EcsStack, Parties, Placement, Replayed,
    Timeline,
};
use stagewire_devkit::gateway::Gateway;
use stagewire_devkit::lbs::{LocalLoadBalancers, HELLO};
use stagewire_devkit::load::{Load, LoadReport};
use tokio::time::Instant;

use crate::support::*;

const LOGICAL: &str = "HelloworldProdBinding";

/// The binding's properties: `LoadBalancer: !Ref LB` in the ECS stack, or the stack's output.
fn props(api: &str, source: Value, service_timeout: &str) -> Value {
    json!({
        "ServiceToken": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
        "ServiceTimeout": service_timeout,
        "RestApiId": api,
        "StageName": "prod",
        "Variables": {"helloworldElb": source}
    })
}

/// CloudFormation (sending the binding's Updates) and EventBridge (delivering to the re-sync).
struct Actors {
    handler: Handler,
    cfn: Cloudformation,
    ports: Ports,
    api: String,
    physical_id: String,
    service_timeout: String,
    /// Every Update's answer: its Reason when FAILED, and how long it took.
    answers: Mutex<Vec<(Option<String>, Duration)>>,
}

impl Parties for Actors {
    fn update_binding<'a>(&'a self, lb_arn: &'a str, _rollback: bool) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let new = props(
                &self.api,
                json!({"LoadBalancer": lb_arn}),
                &self.service_timeout,
            );
            let event = self
                .cfn
                .update(LOGICAL, &self.physical_id, new.clone(), new);
            let started = Instant::now();
            let r = self.cfn.send(&self.handler, event).await;
            let ok = r.status() == Some("SUCCESS");
            self.answers.lock().unwrap().push((
                (!ok).then(|| r.field("Reason").unwrap_or_default().to_string()),
                started.elapsed(),
            ));
            ok
        })
    }

    fn deliver(&self, event: Value) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = stagewire::resync::handle(&self.ports, event).await;
        })
    }
}

struct Run {
    report: LoadReport,
    replayed: Replayed,
    actors: Arc<Actors>,
    old_dns: String,
    new_dns: String,
    live: Option<String>,
    lbs: LocalLoadBalancers,
}

/// Bind, serve traffic at 50 requests/s through the gateway, replace the load balancer the
/// CloudFormation way with the binding in `placement`, and report.
async fn replace_under_load(
    placement: Placement,
    timeline: Timeline,
    service_timeout: &str,
) -> Run {
    let w = World::new().await;
    let lbs = LocalLoadBalancers::new();
    let mut stack = EcsStack::create(&w.sdk, &unique("EcsHelloworld"), &unique("alb"))
        .await
        .unwrap();
    let old = stack.current().clone();
    stack.register_target(&old).await.unwrap();
    lbs.start(&old.dns, true).await.unwrap();
    let api = w.rest_api().await;

    let source = match placement {
        Placement::SameStack => json!({"LoadBalancer": old.arn}),
        _ => json!({"StackName": stack.name, "OutputKey": "EcsElbDnsName"}),
    };
    let cfn = Cloudformation::new().await;
    let mut handler = w.handler();
    handler.timing.health_poll = Duration::from_millis(250);
    let physical_id = if let Placement::ByHand { .. } = placement {
        // The seed's static variable, set by hand.
        w.deploy_stage(&api, "prod", &[("helloworldElb", &old.dns)])
            .await;
        String::new()
    } else {
        let r = cfn
            .send_create(&handler, LOGICAL, props(&api, source, service_timeout))
            .await;
        assert_success(&r);
        r.field("PhysicalResourceId").unwrap().to_string()
    };
    let by_hand = ByHandTarget {
        apigw: w.apigw.clone(),
        api_id: api.clone(),
        stage: "prod".into(),
        variable: "helloworldElb".into(),
    };
    let actors = Arc::new(Actors {
        handler,
        physical_id,
        cfn,
        ports: w.ports.clone(),
        api: api.clone(),
        service_timeout: service_timeout.to_string(),
        answers: Mutex::new(Vec::new()),
    });

    let gateway = Gateway::start(
        w.apigw.clone(),
        &api,
        lbs.clone(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let url = format!("{}/helloworld", gateway.stage_url("prod"));
    let load = Load::start(&url, 50, HELLO, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replayed = replace_load_balancer(
        &mut stack,
        &unique("alb"),
        &lbs,
        actors.clone(),
        placement,
        timeline,
        Some(&by_hand),
        (ACCOUNT, "us-east-1"),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = load.stop().await;
    let new_dns = stack
        .generations
        .iter()
        .map(|g| g.dns.clone())
        .find(|d| *d != old.dns)
        .unwrap_or_default();
    for line in replayed.lines() {
        eprintln!("{line}");
    }
    eprintln!("{report:?}");
    Run {
        report,
        replayed,
        actors,
        new_dns,
        live: w.var(&api, "prod", "helloworldElb").await,
        old_dns: old.dns,
        lbs,
    }
}

#[tokio::test]
async fn same_stack_binding_switches_when_the_new_load_balancer_serves_and_no_request_fails() {
    let run = replace_under_load(Placement::SameStack, Timeline::default(), "60").await;
    assert_eq!(run.replayed.binding_succeeded, Some(true));
    assert_eq!(run.live.as_deref(), Some(run.new_dns.as_str()));
    assert!(run.report.sent >= 150, "{:?}", run.report);
    assert_eq!(run.report.failed, 0, "{:?}", run.report);
    // The Update waited for the new targets (healthy 2 s after creation) before answering.
    let answers = run.actors.answers.lock().unwrap().clone();
    assert!(answers[0].1 >= Duration::from_millis(1500), "{answers:?}");
    assert!(run.lbs.served(&run.new_dns) > 0);
}

#[tokio::test]
async fn output_fed_binding_is_repointed_at_cleanup_and_no_request_fails() {
    let run = replace_under_load(Placement::Output, Timeline::default(), "60").await;
    assert_eq!(run.live.as_deref(), Some(run.new_dns.as_str()));
    assert_eq!(run.report.failed, 0, "{:?}", run.report);
    assert!(run.lbs.served(&run.new_dns) > 0);
}

/// The rig can see failures: a re-sync that re-points only on UPDATE_COMPLETE leaves the
/// variable on the deleted load balancer for a while.
#[tokio::test]
async fn a_resync_waiting_for_update_complete_fails_requests() {
    let run = replace_under_load(Placement::OutputOnComplete, Timeline::default(), "60").await;
    assert_eq!(run.live.as_deref(), Some(run.new_dns.as_str()));
    assert!(run.report.failed > 0, "{:?}", run.report);
    assert!(run.report.statuses.contains_key(&500), "{:?}", run.report);
}

/// A new load balancer that never gets a healthy target: the Update answers FAILED within the
/// ServiceTimeout (given as a string), the variable keeps the old value, the rollback deletes
/// the new load balancer and the old one serves throughout.
#[tokio::test]
async fn a_new_load_balancer_that_never_serves_fails_the_update_and_keeps_the_old_one() {
    let timeline = Timeline {
        targets_healthy_after: None,
        ..Timeline::default()
    };
    let run = replace_under_load(Placement::SameStack, timeline, "8").await;
    assert_eq!(run.replayed.binding_succeeded, Some(false));
    assert!(run.replayed.rolled_back);
    let answers = run.actors.answers.lock().unwrap().clone();
    let (reason, took) = answers[0].clone();
    let reason = reason.expect("FAILED");
    assert!(
        reason.contains("has no healthy target") && reason.contains("WaitForHealthyTargets"),
        "{reason}"
    );
    // It waited, and answered before the 8 s ServiceTimeout.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(answers[1].0, None, "the rollback Update succeeds");
    assert_eq!(run.live.as_deref(), Some(run.old_dns.as_str()));
    assert_eq!(run.report.failed, 0, "{:?}", run.report);
    assert!(run.lbs.is_running(&run.old_dns));
    assert!(!run.lbs.is_running(&run.new_dns));
}

/// The benchmark of `scripts/bench-swap.sh`: failed requests while the load balancer is
/// replaced, per placement of the binding, as a markdown table.
#[tokio::test]
#[ignore = "a benchmark: run by scripts/bench-swap.sh"]
async fn bench_swap() {
    let ms = Duration::from_millis;
    let timeline = |latency: u64, cleanup: u64| Timeline {
        eventbridge_latency: ms(latency),
        cleanup_delete_delay: ms(cleanup),
        targets_healthy_after: Some(ms(2000)),
    };
    let cases: Vec<(&str, Placement, Timeline)> = vec![
        (
            "stagewire, binding in the ECS stack (`LoadBalancer: !Ref LB`)",
            Placement::SameStack,
            timeline(500, 2000),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(500, 2000),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(500, 1000),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(500, 600),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(500, 250),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(500, 0),
        ),
        (
            "stagewire, binding fed by the output (re-sync on cleanup)",
            Placement::Output,
            timeline(2000, 1000),
        ),
        (
            "static variable set by hand 5 s after UPDATE_COMPLETE (the seed)",
            Placement::ByHand { after: ms(5000) },
            timeline(500, 2000),
        ),
        (
            "re-sync that waits for UPDATE_COMPLETE",
            Placement::OutputOnComplete,
            timeline(500, 2000),
        ),
    ];
    let mut table = String::from(
        "| binding | EventBridge latency | cleanup deletes the old ELB after | requests sent | failed | failing window |\n|---|---|---|---|---|---|\n",
    );
    for (what, placement, t) in cases {
        let run = replace_under_load(placement, t, "60").await;
        let latency = match placement {
            Placement::Output | Placement::OutputOnComplete => {
                format!("{:.2} s", t.eventbridge_latency.as_secs_f64())
            }
            _ => "-".into(),
        };
        table.push_str(&format!(
            "| {what} | {latency} | {:.2} s | {} | {} | {:.2} s |\n",
            t.cleanup_delete_delay.as_secs_f64(),
            run.report.sent,
            run.report.failed,
            run.report.window_secs(),
        ));
    }
    println!("\n{table}");
}

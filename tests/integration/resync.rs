//! The re-sync function against moto: bindings are made through the custom resource, load
//! balancers are replaced the ways moto allows (re-creating the stack, a new load balancer, a
//! moved target group), and the events EventBridge would deliver are handed to the handler.

use std::time::Instant;

use serde_json::{json, Value};
use stagewire::resync::{self, Summary};
use stagewire_devkit::fault_proxy::{Fault, FaultProxy, Rule};

use crate::support::*;

fn eventbridge(source: &str, detail_type: &str, resources: Value, detail: Value) -> Value {
    json!({
        "version": "0", "id": unique("event"), "detail-type": detail_type, "source": source,
        "account": ACCOUNT, "time": "2026-11-25T12:00:00Z", "region": "us-east-1",
        "resources": resources, "detail": detail
    })
}

pub fn stack_event(stack_id: &str, status: &str) -> Value {
    stagewire_devkit::seed::stack_status_event(ACCOUNT, "us-east-1", stack_id, status)
}

fn elb_event(event_name: &str, params: Value) -> Value {
    eventbridge(
        "aws.elasticloadbalancing",
        "AWS API Call via CloudTrail",
        json!([]),
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROA:cfn", "arn": "arn:aws:sts::123456789012:assumed-role/cfn/x", "accountId": ACCOUNT},
            "eventTime": "2026-11-25T12:00:00Z", "eventSource": "elasticloadbalancing.amazonaws.com",
            "eventName": event_name, "awsRegion": "us-east-1", "sourceIPAddress": "cloudformation.amazonaws.com",
            "userAgent": "cloudformation.amazonaws.com", "requestParameters": params, "responseElements": null,
            "requestID": unique("req"), "eventID": unique("ev"), "eventType": "AwsApiCall"
        }),
    )
}

fn ecs_event(cluster: &str, service: &str) -> Value {
    eventbridge(
        "aws.ecs",
        "ECS Deployment State Change",
        json!([format!(
            "arn:aws:ecs:us-east-1:{ACCOUNT}:service/{cluster}/{service}"
        )]),
        json!({"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
               "clusterArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{cluster}")}),
    )
}

fn schedule() -> Value {
    eventbridge(
        "aws.events",
        "Scheduled Event",
        json!([format!(
            "arn:aws:events:us-east-1:{ACCOUNT}:rule/stagewire-full-resync"
        )]),
        json!({}),
    )
}

/// Bind `helloworldElb` of `stage` on `api` to the stack's output, through the custom resource.
async fn bind(w: &World, cfn: &Cloudformation, logical: &str, api: &str, stage: &str, stack: &str) {
    let r = cfn
        .send_create(&w.handler(), logical, seed_props(api, stage, stack))
        .await;
    assert_success(&r);
}

async fn run(w: &World, event: Value) -> Summary {
    resync::handle(&w.ports, event)
        .await
        .expect("re-sync succeeded")
}

#[tokio::test]
async fn seed_prod_replaced_repoints_prod_and_leaves_dev() {
    let w = World::new().await;
    let prod = w.elb_stack(&unique("EcsHelloworldProd")).await;
    let dev = w.elb_stack(&unique("EcsHelloworldDev")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    bind(&w, &cfn, "Prod", &api, "prod", &prod.name).await;
    bind(&w, &cfn, "Dev", &api, "dev", &dev.name).await;

    let replaced = w.replace_elb_stack(&prod.name).await;
    assert_ne!(replaced.dns, prod.dns);
    let started = Instant::now();
    let summary = run(&w, stack_event(&replaced.stack_id, "CREATE_COMPLETE")).await;
    let took = started.elapsed();

    assert_eq!(summary.changed.len(), 1, "{summary:?}");
    assert_eq!(summary.changed[0].from.as_deref(), Some(prod.dns.as_str()));
    w.assert_var(&api, "prod", "helloworldElb", &replaced.dns)
        .await;
    w.assert_var(&api, "dev", "helloworldElb", &dev.dns).await;
    let prod_item = w
        .registry_items()
        .await
        .into_iter()
        .find(|r| r.stage.stage == "prod")
        .unwrap();
    assert_eq!(prod_item.value.as_deref(), Some(replaced.dns.as_str()));
    assert!(prod_item.last_error.is_none());
    println!("seed re-point took {took:?}");
}

#[tokio::test]
async fn two_stages_on_two_apis_follow_one_stack() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsShared")).await;
    let api1 = w.rest_api().await;
    let api2 = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    bind(&w, &cfn, "One", &api1, "prod", &stack.name).await;
    bind(&w, &cfn, "Two", &api2, "live", &stack.name).await;

    let replaced = w.replace_elb_stack(&stack.name).await;
    let summary = run(&w, stack_event(&replaced.stack_id, "UPDATE_COMPLETE")).await;

    assert_eq!(summary.bindings_checked, 2);
    assert_eq!(summary.changed.len(), 2);
    w.assert_var(&api1, "prod", "helloworldElb", &replaced.dns)
        .await;
    w.assert_var(&api2, "live", "helloworldElb", &replaced.dns)
        .await;
}

/// An ECS service `orders` behind the load balancer of stack `EcsOrders…`, and `prod`'s
/// `ordersElb` bound to it by a custom resource: the world, the stack, the cluster and the API.
async fn bound_orders() -> (World, ElbStack, String, String) {
    let Scene { w, stack, api, cfn } = Scene::new("EcsOrders").await;
    let cluster = unique("prod");
    w.ecs_service(&cluster, "orders", &[("helloworld", 80, &stack.tg_arn)])
        .await;
    let props = json!({"RestApiId": api, "StageName": "prod", "Variables": {
        "ordersElb": {"Cluster": cluster, "Service": "orders"}}});
    assert_success(&cfn.send_create(&w.handler(), "Orders", props).await);
    (w, stack, cluster, api)
}

/// A new load balancer beside the stack's, with a healthy target when `healthy`, and the
/// service `orders` moved to its target group: its DNS name and target group.
async fn move_orders(
    w: &World,
    stack: &ElbStack,
    cluster: &str,
    healthy: bool,
) -> (String, String) {
    let (_, dns, tg) = w.new_alb(stack).await;
    if healthy {
        w.register_target(&tg, "10.0.1.10").await;
    }
    w.move_service(cluster, "orders", "helloworld", &tg).await;
    (dns, tg)
}

/// The service's event, which moves `ordersElb` of stage prod to `new_dns`.
async fn orders_event_switches(w: &World, cluster: &str, api: &str, new_dns: &str) -> Summary {
    let summary = run(w, ecs_event(cluster, "orders")).await;
    assert_eq!(summary.changed.len(), 1, "{summary:?}");
    w.assert_var(api, "prod", "ordersElb", new_dns).await;
    summary
}

#[tokio::test]
async fn an_ecs_service_whose_target_group_moved_to_a_new_load_balancer() {
    let (w, stack, cluster, api) = bound_orders().await;

    // A new load balancer whose target group is healthy; the service moves to it.
    let (new_dns, _) = move_orders(&w, &stack, &cluster, true).await;
    orders_event_switches(&w, &cluster, &api, &new_dns).await;
}

#[tokio::test]
async fn a_new_load_balancer_without_healthy_targets_waits_while_the_old_one_serves() {
    let (w, stack, cluster, api) = bound_orders().await;
    w.register_target(&stack.tg_arn, "10.0.1.10").await;
    let (new_dns, new_tg) = move_orders(&w, &stack, &cluster, false).await;

    let held = run(&w, ecs_event(&cluster, "orders")).await;
    assert!(held.changed.is_empty(), "{held:?}");
    assert_eq!(held.deferred().len(), 1);
    assert!(
        held.deferred()[0].to_string().contains("no healthy target"),
        "{:?}",
        held.deferred()
    );
    w.assert_var(&api, "prod", "ordersElb", &stack.dns).await;
    let item = &w.registry_items().await[0];
    assert!(item.last_error.as_deref().unwrap().contains("deferred"));

    // The targets turn healthy: the next event switches.
    w.register_target(&new_tg, "10.0.1.11").await;
    orders_event_switches(&w, &cluster, &api, &new_dns).await;
    assert!(w.registry_items().await[0].last_error.is_none());
}

/// The switch rule holds only while the current load balancer serves: one that serves nobody
/// protects nobody, and the custom resource and the re-sync both switch at once.
#[tokio::test]
async fn a_current_load_balancer_serving_nobody_holds_no_switch_in_the_binding_or_the_resync() {
    let (w, stack, cluster, api) = bound_orders().await;
    let (new_dns, _) = move_orders(&w, &stack, &cluster, false).await;

    let summary = run(&w, ecs_event(&cluster, "orders")).await;
    assert_eq!(summary.changed.len(), 1, "{summary:?}");
    assert!(summary.deferred().is_empty(), "{summary:?}");
    assert_eq!(w.var(&api, "prod", "ordersElb").await, Some(new_dns));

    // The binding's own Update to a load balancer without a healthy target, from one that
    // serves nobody either, answers at once.
    let props = |arn: &str| json!({"RestApiId": api, "StageName": "dev", "Variables": {"e": {"LoadBalancer": arn}}});
    let (second_arn, _, _) = w.new_alb(&stack).await;
    let (third_arn, third_dns, _) = w.new_alb(&stack).await;
    let cfn = Cloudformation::new().await;
    let created = cfn
        .send_create(&w.handler(), "Lb", props(&second_arn))
        .await;
    assert_success(&created);
    let physical = created.field("PhysicalResourceId").unwrap().to_string();
    let started = std::time::Instant::now();
    let update = cfn.update("Lb", &physical, props(&third_arn), props(&second_arn));
    assert_success(&cfn.send(&w.handler(), update).await);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(w.var(&api, "dev", "e").await, Some(third_dns));
}

#[tokio::test]
async fn the_old_load_balancer_deleted_switches_even_without_healthy_targets() {
    let (w, stack, cluster, api) = bound_orders().await;
    let (new_dns, _) = move_orders(&w, &stack, &cluster, false).await;
    w.delete_alb(&stack.lb_arn).await;

    // The CloudTrail DeleteLoadBalancer event finds the binding through the load balancer its
    // value points at.
    let summary = run(
        &w,
        elb_event(
            "DeleteLoadBalancer",
            json!({"loadBalancerArn": stack.lb_arn}),
        ),
    )
    .await;

    assert_eq!(summary.changed.len(), 1, "{summary:?}");
    assert_eq!(w.var(&api, "prod", "ordersElb").await, Some(new_dns));
}

#[tokio::test]
async fn a_classic_elb_recreated() {
    let w = World::new().await;
    let name = unique("classic");
    let dns = w.classic_elb(&name).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({"RestApiId": api, "StageName": "prod", "Variables": {
        "legacyElb": {"LoadBalancer": name}}});
    assert_success(&cfn.send_create(&w.handler(), "Legacy", props).await);

    w.delete_classic_elb(&name).await;
    let gone = run(
        &w,
        elb_event("DeleteLoadBalancer", json!({"loadBalancerName": name})),
    )
    .await;
    assert_eq!(gone.unresolved().len(), 1, "{gone:?}");
    assert_eq!(
        w.var(&api, "prod", "legacyElb").await,
        Some(dns.clone()),
        "kept, never blanked"
    );
    assert!(w.registry_items().await[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("does not exist"));

    // Meanwhile someone points the variable elsewhere; the re-created ELB's event repairs it.
    w.set_var(&api, "prod", "legacyElb", "elsewhere.example.com")
        .await;
    let new_dns = w.classic_elb(&name).await;
    let back = run(
        &w,
        elb_event("CreateLoadBalancer", json!({"loadBalancerName": name})),
    )
    .await;
    assert_eq!(back.changed.len(), 1, "{back:?}");
    assert_eq!(w.var(&api, "prod", "legacyElb").await, Some(new_dns));
    assert!(w.registry_items().await[0].last_error.is_none());
}

/// The `UpdateStage` (PATCH) bodies the proxy forwarded for REST stages.
fn update_stage_bodies(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .records()
        .iter()
        .filter(|r| r.service == "apigateway" && r.operation.starts_with("PATCH /restapis/"))
        .map(|r| r.body_text())
        .collect()
}

/// Waits until the proxy holds a request of `operation` under a Delay rule.
async fn held(proxy: &FaultProxy, service: &str, operation: &str) {
    for _ in 0..500 {
        if proxy.records().iter().any(|r| {
            r.service == service
                && r.operation == operation
                && matches!(r.fault, Some(Fault::Delay(_)))
        }) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no {service} {operation} was held: {:?}", proxy.counts());
}

#[tokio::test]
async fn duplicated_and_reordered_events_converge() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsDup").await;
    let proxy = w.proxy();
    bind(&w, &cfn, "B", &api, "prod", &stack.name).await;
    let version_before = w.registry_items().await[0].version;

    // The stack is replaced; invocation A resolves the replacement's load balancer, and its
    // registry write is held by the proxy.
    let second = w.replace_elb_stack(&stack.name).await;
    let older_event = stack_event(&second.stack_id, "UPDATE_COMPLETE");
    proxy.reset_counts();
    proxy.add_rule(
        Rule::new(Fault::Delay(std::time::Duration::from_secs(4)))
            .service("dynamodb")
            .operation("UpdateItem")
            .times(1),
    );
    let ports = w.ports.clone();
    let a = tokio::spawn(async move { resync::handle(&ports, older_event).await });
    held(proxy, "dynamodb", "UpdateItem").await;

    // Meanwhile the stack is replaced again and invocation B, for the newer stack, runs to the
    // end while A waits.
    let third = w.replace_elb_stack(&stack.name).await;
    let newer_event = stack_event(&third.stack_id, "UPDATE_COMPLETE");
    let b = run(&w, newer_event.clone()).await;
    assert_eq!(b.changed.len(), 1, "{b:?}");
    assert_eq!(b.changed[0].to, third.dns);

    let a = a.await.unwrap().expect("re-sync A succeeded");
    assert!(
        a.changed.is_empty(),
        "A lost the conditional write and found the newer value in place: {a:?}"
    );
    // A duplicate of the newer event changes nothing.
    let c = run(&w, newer_event).await;
    assert!(c.changed.is_empty(), "a duplicate changes nothing: {c:?}");

    let bodies = update_stage_bodies(proxy);
    assert_eq!(bodies.len(), 1, "one UpdateStage in all: {bodies:?}");
    assert!(bodies[0].contains(&third.dns), "{bodies:?}");
    assert!(
        bodies.iter().all(|b| !b.contains(&second.dns)),
        "the older value was written: {bodies:?}"
    );
    let refused = proxy
        .records()
        .iter()
        .filter(|r| r.operation == "UpdateItem" && r.status == Some(400))
        .count();
    assert_eq!(refused, 1, "A's conditional write was refused once");
    w.assert_var(&api, "prod", "helloworldElb", &third.dns)
        .await;
    let item = &w.registry_items().await[0];
    assert_eq!(item.value.as_deref(), Some(third.dns.as_str()));
    assert!(item.version > version_before);
}

#[tokio::test]
async fn eight_concurrent_invocations_for_one_stack() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsBurst").await;
    let proxy = w.proxy();
    for stage in ["prod", "blue", "green"] {
        bind(&w, &cfn, &format!("B{stage}"), &api, stage, &stack.name).await;
    }
    let versions_before: u64 = w.registry_items().await.iter().map(|r| r.version).sum();
    let replaced = w.replace_elb_stack(&stack.name).await;
    let event = stack_event(&replaced.stack_id, "UPDATE_COMPLETE");
    proxy.reset_counts();

    let runs =
        futures::future::join_all((0..8).map(|_| resync::handle(&w.ports, event.clone()))).await;

    let mut changed = 0;
    for r in runs {
        let s = r.expect("no invocation fails");
        changed += s.changed.len();
    }
    let records = proxy.records();
    let answered = |status: u16| {
        records
            .iter()
            .filter(|r| r.operation == "UpdateItem" && r.status == Some(status))
            .count() as u64
    };
    let (accepted, refused) = (answered(200), answered(400));
    let rereads = records
        .iter()
        .filter(|r| r.operation == "Query")
        .count()
        .saturating_sub(8);
    println!(
        "8 invocations: {changed} variables changed, {accepted} registry writes accepted,          {refused} refused on their version, {rereads} re-reads"
    );
    // All eight planned from the same versions: the conditional writes let one win per
    // record, the others were refused and re-read.
    assert!(refused >= 1, "no conditional write was refused");
    assert!(rereads >= 1, "no invocation re-read the registry");
    // Each accepted write moved its record's version by exactly one.
    let versions_after: u64 = w.registry_items().await.iter().map(|r| r.version).sum();
    assert_eq!(versions_after - versions_before, accepted);
    // Every variable written was written with the new value; once per UpdateStage.
    let bodies = update_stage_bodies(proxy);
    assert_eq!(changed, bodies.len(), "{bodies:?}");
    assert!(bodies.len() >= 3);
    assert!(
        bodies.iter().all(|b| b.contains(&replaced.dns)),
        "{bodies:?}"
    );
    for stage in ["prod", "blue", "green"] {
        w.assert_var(&api, stage, "helloworldElb", &replaced.dns)
            .await;
    }
    for item in w.registry_items().await {
        assert_eq!(item.value.as_deref(), Some(replaced.dns.as_str()));
        assert!(item.last_error.is_none());
    }
    // A ninth, later invocation finds nothing to do.
    let after = run(&w, event).await;
    assert!(after.changed.is_empty());
}

#[tokio::test]
async fn a_deleted_source_keeps_the_value_and_records_the_error() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsGone").await;
    bind(&w, &cfn, "B", &api, "prod", &stack.name).await;

    w.delete_stack(&stack.name).await;
    let summary = run(&w, stack_event(&stack.stack_id, "DELETE_COMPLETE")).await;

    assert!(summary.changed.is_empty());
    assert_eq!(summary.unresolved().len(), 1);
    w.assert_var(&api, "prod", "helloworldElb", &stack.dns)
        .await;
    let item = &w.registry_items().await[0];
    assert_eq!(item.value.as_deref(), Some(stack.dns.as_str()));
    let err = item.last_error.as_deref().unwrap();
    assert!(
        err.contains(&stack.name) && err.contains("does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn a_scheduled_reconcile_repairs_a_variable_changed_by_hand() {
    let Scene { w, stack, api, .. } = Scene::new("EcsHand").await;
    let cfn = w.owning_stack().await;
    bind(&w, &cfn, "B", &api, "prod", &stack.name).await;
    w.set_var(&api, "prod", "helloworldElb", "typo.example.com")
        .await;

    let summary = run(&w, schedule()).await;

    assert_eq!(summary.changed.len(), 1, "{summary:?}");
    assert_eq!(summary.changed[0].from.as_deref(), Some("typo.example.com"));
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn unknown_events_are_ignored_without_aws_calls() {
    let w = World::new().await;
    let proxy = w.proxy();
    proxy.reset_counts();
    for event in [
        json!({"hello": "world"}),
        json!("text"),
        eventbridge("aws.s3", "Object Created", json!([]), json!({})),
        stack_event(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/S/1",
            "UPDATE_IN_PROGRESS",
        ),
        json!({"resync": "everything"}),
    ] {
        let s = run(&w, event).await;
        assert!(s.trigger.starts_with("Ignored"), "{}", s.trigger);
        assert_eq!(s.bindings_checked, 0);
    }
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());
}

#[tokio::test]
async fn throttled_api_gateway_calls_are_retried() {
    let w = World::builder().seed(7).build().await;
    let proxy = w.proxy();
    let stack = w.elb_stack(&unique("EcsThrottle")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    bind(&w, &cfn, "B", &api, "prod", &stack.name).await;
    let replaced = w.replace_elb_stack(&stack.name).await;
    proxy.reset_counts();
    // The first two API Gateway calls answer 429 TooManyRequestsException; the SDK retries
    // each (the tests' clients make 3 attempts), so the third attempt gets through.
    proxy.add_rule(
        Rule::new(Fault::Throttle { retry_after: None })
            .service("apigateway")
            .times(2),
    );

    let summary = run(&w, stack_event(&replaced.stack_id, "UPDATE_COMPLETE"));
    let summary = summary.await;
    let apigateway: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.service == "apigateway")
        .collect();

    assert_eq!(summary.changed.len(), 1);
    w.assert_var(&api, "prod", "helloworldElb", &replaced.dns)
        .await;
    let answers: Vec<Option<u16>> = apigateway.iter().map(|r| r.status).collect();
    // The re-sync's GetStage was throttled twice and retried, then its UpdateStage went through.
    assert_eq!(
        answers,
        [Some(429), Some(429), Some(200), Some(200)],
        "{:?}",
        proxy.counts()
    );
    assert_eq!(apigateway[0].operation, apigateway[2].operation);
    assert!(apigateway[3].operation.starts_with("PATCH "));
}

#[tokio::test]
async fn a_write_that_keeps_failing_is_returned_as_an_error() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsDown").await;
    let proxy = w.proxy();
    bind(&w, &cfn, "B", &api, "prod", &stack.name).await;
    let replaced = w.replace_elb_stack(&stack.name).await;
    proxy.add_rule(
        Rule::new(Fault::Status(503))
            .service("apigateway")
            .operation("PATCH"),
    );

    let err = resync::handle(&w.ports, stack_event(&replaced.stack_id, "UPDATE_COMPLETE"))
        .await
        .expect_err("Lambda must see the failure");

    assert_eq!(err.0.failures().len(), 1);
    assert!(err.to_string().contains("UpdateStage"), "{err}");
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn ten_thousand_bindings_one_event_touches_only_its_own() {
    // A server of its own: moto copies every table on each transaction, so a 10,000-item
    // table would slow every other test sharing the server.
    let moto = stagewire_devkit::moto::MotoServer::start().await.unwrap();
    let w = World::builder().own_moto(moto).build().await;
    let proxy = w.proxy();
    let stack = w.elb_stack(&unique("EcsTarget")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    for stage in ["prod", "blue", "green"] {
        bind(&w, &cfn, &format!("B{stage}"), &api, stage, &stack.name).await;
    }
    // 9,997 other bindings over 1,000 stages, registered straight into the registry.
    let filler = crate::support::filler_records(9_997, 1_000);
    w.load_records(&filler).await;
    let replaced = w.replace_elb_stack(&stack.name).await;
    proxy.reset_counts();

    let started = Instant::now();
    let summary = run(&w, stack_event(&replaced.stack_id, "UPDATE_COMPLETE")).await;
    let took = started.elapsed();

    assert_eq!(summary.bindings_checked, 3);
    assert_eq!(summary.changed.len(), 3);
    let calls = proxy.total();
    println!(
        "10,000 bindings, one stack event: {calls} AWS calls in {took:?}: {:?}",
        proxy.counts()
    );
    // One registry query for the lookup, one DescribeStacks, the load balancer listing and
    // health for the switch policy, and per stage one GetStage, one registry write, one
    // UpdateStage and one consistent read of the stage's records after the write (a binding
    // deleted meanwhile must not leave its variable behind).
    assert!(calls <= 18, "{calls} calls: {:?}", proxy.counts());
    assert_eq!(proxy.count("dynamodb", "Scan"), 0);
    assert_eq!(proxy.count("dynamodb", "Query"), 1 + 3);
}

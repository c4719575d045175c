//! Sources in other accounts and regions: a hub (account 123456789012, us-east-1) whose
//! bindings read a stack output of account B in eu-west-1 and an ECS service of account C, the
//! members' events forwarded to the hub, and the failures that must name the role, the account
//! and the region. One moto server holds every account (it maps an assumed role's credentials
//! to the role's account); the hub's calls go through the devkit's proxy, which counts them and
//! can refuse an `AssumeRole` or a read.

use serde_json::{json, Value};
use stagewire::domain::SourceAccess;
use stagewire::resync::{self, Summary};
use stagewire_devkit::fault_proxy::{Fault, Rule};
use stagewire_devkit::seed::stack_status_event;

use crate::support::spoke::{role, B, B_REGION, C, HUB_REGION};
use crate::support::*;

/// The role ARN pattern the hub trusts, as its `SourceRoleArns` parameter would list it.
const TRUSTED: &str = "arn:aws:iam::*:role/stagewire-source*";

/// The hub: its own account known, roles matching [`TRUSTED`] allowed.
async fn hub() -> World {
    World::builder()
        .sources(SourceAccess {
            account: Some(ACCOUNT.into()),
            roles: vec![TRUSTED.into()],
        })
        .build()
        .await
}

async fn run(w: &World, event: Value) -> Summary {
    resync::handle(&w.ports, event)
        .await
        .expect("re-sync succeeded")
}

/// `AssumeRole` calls the hub made (the fixtures' sessions are named `fixtures`).
fn hub_assume_roles(w: &World) -> usize {
    w.proxy()
        .records()
        .iter()
        .filter(|r| r.service == "sts" && r.operation == "AssumeRole")
        .filter(|r| r.body_text().contains("RoleSessionName=stagewire"))
        .count()
}

/// "ECS Deployment State Change" of a service in `account` and `region`, as forwarded to the hub.
fn ecs_event(account: &str, region: &str, cluster: &str, service: &str) -> Value {
    json!({
        "version": "0", "id": unique("event"), "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs", "account": account, "time": "2026-11-25T12:00:00Z",
        "region": region,
        "resources": [format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{service}")],
        "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
            "clusterArn": format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}")}
    })
}

#[tokio::test]
async fn a_stack_output_of_account_b_in_another_region_follows_b_forwarded_event() {
    let hub = hub().await;
    let b = hub.member(B, B_REGION).await;
    let stack = unique("EcsB");
    let first = b.elb_stack(&stack).await;
    // A stack of the same name in the hub's own account and region, bound beside it.
    let local = hub.elb_stack(&stack).await;
    assert_ne!(first.dns, local.dns);
    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({"RestApiId": api, "StageName": "prod", "Variables": {
        "remoteElb": {"StackName": stack, "OutputKey": "EcsElbDnsName",
            "Region": B_REGION, "RoleArn": role(B)},
        // Naming the hub's own region is the same as naming none.
        "localElb": {"StackName": stack, "OutputKey": "EcsElbDnsName", "Region": HUB_REGION}}});
    let r = cfn.send_create(&hub.handler(), "Binding", props).await;
    assert_success(&r);
    assert_eq!(r.body["Data"]["remoteElb"], json!(first.dns));
    assert_eq!(hub.var(&api, "prod", "remoteElb").await, Some(first.dns));
    hub.assert_var(&api, "prod", "localElb", &local.dns).await;
    let mut keys: Vec<String> = hub
        .registry_items()
        .await
        .iter()
        .map(|r| r.source.key().to_string())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("stack#{stack}"),
            format!("stack#{stack}@{B}/{B_REGION}")
        ]
    );

    // B replaces its load balancer. The hub's own event about its stack of that name finds
    // only the binding fed from the hub's stack.
    let second = b.replace_elb_stack(&stack).await;
    let own = run(
        &hub,
        stack_status_event(ACCOUNT, HUB_REGION, &local.stack_id, "UPDATE_COMPLETE"),
    )
    .await;
    assert_eq!(own.bindings_checked, 1, "{own:?}");
    assert!(own.changed.is_empty(), "{own:?}");

    // B's event, forwarded to the hub's bus with B's account and region, re-points the stage.
    let forwarded = run(
        &hub,
        stack_status_event(
            B,
            B_REGION,
            &second.stack_id,
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        ),
    )
    .await;
    assert_eq!(forwarded.bindings_checked, 1, "{forwarded:?}");
    assert_eq!(forwarded.changed.len(), 1, "{forwarded:?}");
    // Its logs and metrics say where the event happened.
    assert_eq!(
        forwarded.trigger,
        format!("Stack(\"{stack}\") in {B}/{B_REGION}")
    );
    hub.assert_var(&api, "prod", "remoteElb", &second.dns).await;
    assert_eq!(hub.var(&api, "prod", "localElb").await, Some(local.dns));

    // The same event from account C (or from B in the hub's region) finds nothing.
    for (account, region) in [(C, B_REGION), (B, HUB_REGION)] {
        let other = run(
            &hub,
            stack_status_event(account, region, &second.stack_id, "UPDATE_COMPLETE"),
        )
        .await;
        assert_eq!(other.bindings_checked, 0, "{account} {region}: {other:?}");
    }

    // An operator's request naming B's stack by its ARN reaches the binding fed from B; by its
    // name, the hub's own stack of that name.
    let third = b.replace_elb_stack(&stack).await;
    let by_arn = run(&hub, json!({"resync": {"stack": third.stack_id}})).await;
    assert_eq!(by_arn.bindings_checked, 1, "{by_arn:?}");
    assert_eq!(by_arn.changed.len(), 1, "{by_arn:?}");
    assert_eq!(hub.var(&api, "prod", "remoteElb").await, Some(third.dns));
    let by_name = run(&hub, json!({"resync": {"stack": stack}})).await;
    assert_eq!(by_name.bindings_checked, 1, "{by_name:?}");
    assert!(by_name.changed.is_empty(), "{by_name:?}");
}

#[tokio::test]
async fn an_ecs_service_of_account_c_is_gated_on_its_own_load_balancers() {
    let hub = hub().await;
    let c = hub.member(C, HUB_REGION).await;
    let stack = c.elb_stack(&unique("EcsC")).await;
    let cluster = unique("prod");
    c.ecs_service(&cluster, "orders", &[("helloworld", 80, &stack.tg_arn)])
        .await;
    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({"RestApiId": api, "StageName": "prod", "Variables": {
        "ordersElb": {"Cluster": cluster, "Service": "orders", "RoleArn": role(C)}}});
    assert_success(&cfn.send_create(&hub.handler(), "Orders", props).await);
    hub.assert_var(&api, "prod", "ordersElb", &stack.dns).await;
    assert_eq!(
        hub.registry_items().await[0].source.key().to_string(),
        format!("ecs#{cluster}/orders@{C}/")
    );

    // C moves the service to a new load balancer without a healthy target: the hub looks at
    // C's load balancers and holds the switch while the old one serves.
    c.register_target(&stack.tg_arn, "10.0.1.9").await;
    let (_, new_dns, new_tg) = c.new_alb(&stack).await;
    c.move_service(&cluster, "orders", "helloworld", &new_tg)
        .await;
    let held = run(&hub, ecs_event(C, HUB_REGION, &cluster, "orders")).await;
    assert_eq!(held.bindings_checked, 1, "{held:?}");
    assert_eq!(held.deferred().len(), 1, "{held:?}");
    assert_eq!(hub.var(&api, "prod", "ordersElb").await, Some(stack.dns));

    c.register_target(&new_tg, "10.0.1.10").await;
    let switched = run(&hub, ecs_event(C, HUB_REGION, &cluster, "orders")).await;
    assert_eq!(switched.changed.len(), 1, "{switched:?}");
    assert_eq!(hub.var(&api, "prod", "ordersElb").await, Some(new_dns));
}

#[tokio::test]
async fn a_role_is_assumed_once_for_every_invocation_of_the_process() {
    let hub = hub().await;
    let b = hub.member(B, B_REGION).await;
    let stack = b.elb_stack(&unique("EcsB")).await;
    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let handler = hub.handler();
    for stage in ["dev", "prod"] {
        let props = json!({"RestApiId": api, "StageName": stage, "Variables": {
            "elb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName",
                "Region": B_REGION, "RoleArn": role(B)}}});
        assert_success(&cfn.send_create(&handler, stage, props).await);
    }
    let summary = run(
        &hub,
        stack_status_event(B, B_REGION, &stack.stack_id, "UPDATE_COMPLETE"),
    )
    .await;
    assert_eq!(summary.bindings_checked, 2, "{summary:?}");
    // Two Creates and a re-sync, each reading B's stack: one AssumeRole, its credentials kept.
    assert_eq!(hub_assume_roles(&hub), 1);
}

#[tokio::test]
async fn roles_that_are_untrusted_refused_or_denied_a_read_are_named_in_the_reason() {
    let hub = hub().await;
    let proxy = hub.proxy();
    let b = hub.member(B, B_REGION).await;
    let stack = b.elb_stack(&unique("EcsB")).await;
    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let bind = |logical: &str, role: &str| {
        cfn.create(
            logical,
            json!({"RestApiId": api, "StageName": logical.to_lowercase(), "Variables": {
                "elb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName",
                    "Region": B_REGION, "RoleArn": role}}}),
        )
    };

    // A role outside the hub's configuration: refused before any call.
    let admin = format!("arn:aws:iam::{B}:role/admin");
    let r = cfn.send(&hub.handler(), bind("Untrusted", &admin)).await;
    assert_failed(
        &r,
        &[
            &format!("role {admin} (account {B}, region {B_REGION}) is not trusted"),
            TRUSTED,
        ],
    );
    assert_eq!(hub_assume_roles(&hub), 0);

    // A trusted role that cannot be assumed (missing, or its trust does not name the hub).
    let missing = format!("arn:aws:iam::{B}:role/stagewire-source-missing");
    proxy.add_rule(
        Rule::new(Fault::Status(403))
            .service("sts")
            .operation("AssumeRole")
            .body("stagewire-source-missing"),
    );
    let r = cfn.send(&hub.handler(), bind("Missing", &missing)).await;
    assert_failed(
        &r,
        &[
            "cloudformation DescribeStacks failed: AssumeRole failed: AccessDenied",
            &format!("account {B}, region {B_REGION}, as role {missing}"),
        ],
    );

    // The role is assumed, but the read is denied in B.
    proxy.add_rule(
        Rule::new(Fault::Status(403))
            .service("cloudformation")
            .operation("DescribeStacks")
            .body(stack.name.as_str()),
    );
    let r = cfn.send(&hub.handler(), bind("Denied", &role(B))).await;
    assert_failed(
        &r,
        &[
            "cloudformation DescribeStacks failed: AccessDenied",
            &format!("account {B}, region {B_REGION}, as role {}", role(B)),
        ],
    );
    assert!(hub.registry_items().await.is_empty());
}

/// The hub's two function binaries, configured as the template configures them, with two
/// spokes: account B's stack output in eu-west-1 and account C's ECS service, both followed
/// from the members' forwarded events.
#[tokio::test]
async fn a_hub_and_two_spokes_end_to_end_through_the_function_binaries() {
    use stagewire::config::{ACCOUNT_VAR, SOURCE_ROLES_VAR};
    use std::time::Duration;

    let hub = World::new().await;
    let b = hub.member(B, B_REGION).await;
    let c = hub.member(C, HUB_REGION).await;
    let b_stack = b.elb_stack(&unique("EcsB")).await;
    let c_stack = c.elb_stack(&unique("EcsC")).await;
    let cluster = unique("prod");
    c.ecs_service(&cluster, "orders", &[("helloworld", 80, &c_stack.tg_arn)])
        .await;

    let env = hub.function_env(&[(ACCOUNT_VAR, ACCOUNT), (SOURCE_ROLES_VAR, TRUSTED)]);
    let binding = launch("stage-binding", &env).await;
    let resync = launch("stage-resync", &env).await;

    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({"RestApiId": api, "StageName": "prod", "Variables": {
        "fromB": {"StackName": b_stack.name, "OutputKey": "EcsElbDnsName",
            "Region": B_REGION, "RoleArn": role(B)},
        "fromC": {"Cluster": cluster, "Service": "orders", "RoleArn": role(C)}}});
    binding
        .api
        .invoke(cfn.create("Binding", props), Duration::from_secs(30))
        .await
        .unwrap();
    let received = cfn.receiver.received().await;
    assert_eq!(received.len(), 1, "{}", binding.process.log_text());
    assert_success(&received[0]);
    hub.assert_var(&api, "prod", "fromB", &b_stack.dns).await;
    hub.assert_var(&api, "prod", "fromC", &c_stack.dns).await;

    // B replaces its load balancer; C moves its service to a new, healthy one.
    let b_new = b.replace_elb_stack(&b_stack.name).await;
    let (_, c_new_dns, c_new_tg) = c.new_alb(&c_stack).await;
    c.register_target(&c_new_tg, "10.0.1.10").await;
    c.move_service(&cluster, "orders", "helloworld", &c_new_tg)
        .await;
    for event in [
        stack_status_event(
            B,
            B_REGION,
            &b_new.stack_id,
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        ),
        ecs_event(C, HUB_REGION, &cluster, "orders"),
    ] {
        let done = resync
            .api
            .invoke(event, Duration::from_secs(30))
            .await
            .unwrap();
        let summary = done
            .response()
            .unwrap_or_else(|| panic!("{:?}\n{}", done.outcome, resync.process.log_text()));
        assert_eq!(
            summary["changed"].as_array().map(Vec::len),
            Some(1),
            "{summary}"
        );
    }
    assert_eq!(hub.var(&api, "prod", "fromB").await, Some(b_new.dns));
    assert_eq!(hub.var(&api, "prod", "fromC").await, Some(c_new_dns));
    // Each process assumed each member's role once.
    assert_eq!(hub_assume_roles(&hub), 4);
}

/// An Update that would move a variable from B's serving load balancer to one of B's without a
/// healthy target waits on B's target health, then answers FAILED naming both, keeping the old
/// value.
#[tokio::test]
async fn an_update_waits_for_the_new_load_balancer_of_account_b_to_serve() {
    let hub = hub().await;
    let b = hub.member(B, B_REGION).await;
    let stack = b.elb_stack(&unique("EcsB")).await;
    b.register_target(&stack.tg_arn, "10.0.1.10").await;
    let (new_arn, _, _) = b.new_alb(&stack).await;
    let api = hub.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = |lb: &str| {
        json!({"ServiceTimeout": "6", "RestApiId": api, "StageName": "prod", "Variables": {
            "elb": {"LoadBalancer": lb, "Region": B_REGION, "RoleArn": role(B)}}})
    };
    let created = cfn
        .send_create(&hub.handler(), "Lb", props(&stack.lb_arn))
        .await;
    assert_success(&created);
    let physical = created.field("PhysicalResourceId").unwrap().to_string();

    let update = cfn.update("Lb", &physical, props(&new_arn), props(&stack.lb_arn));
    let r = cfn.send(&hub.handler(), update).await;
    let new_name = stagewire::domain::source::load_balancer_name(&new_arn);
    assert_failed(&r, &["has no healthy target", new_name, &stack.lb_name]);
    assert_eq!(hub.var(&api, "prod", "elb").await, Some(stack.dns));
}

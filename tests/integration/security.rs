//! The security model: what a request must prove before it writes, what a binding may touch,
//! where the response may go, and what never reaches the logs.

use std::time::Duration;

use serde_json::json;
use stagewire::cfn::SendError;
use stagewire::domain::rights::{ALLOWED_STACKS_TAG, STACK_ID_TAG};
use stagewire::domain::Authorization;
use stagewire_devkit::fault_proxy::{Fault, Rule};
use stagewire_devkit::receiver::ResponseReceiver;
use stagewire_devkit::CfnEvents;
use tokio::time::Instant;

use crate::cli::{bind, cli, code, stderr, stdout};
use crate::support::*;

const TEAM_B: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/TeamB-Api/team-b-id";

/// An attacker's events naming `stack_id`'s resources, with a receiver of their own: no
/// declaration goes to CloudFormation's side, as none would for a forgery.
struct Forger {
    receiver: ResponseReceiver,
    events: CfnEvents,
}

impl Forger {
    async fn naming(stack_id: &str) -> Forger {
        Forger {
            receiver: ResponseReceiver::start(vec![]).await.unwrap(),
            events: CfnEvents::new(
                stack_id,
                format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
            )
            .undeclared(),
        }
    }
}

/// Team A's binding, created by CloudFormation, and CloudFormation's view of it afterwards.
async fn team_a_binding(w: &World) -> (Cloudformation, String, String, serde_json::Value) {
    let a = w.elb_stack(&unique("EcsA")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = seed_props(&api, "prod", &a.name);
    let r = cfn.send_create(&w.handler(), "B", props.clone()).await;
    assert_success(&r);
    let physical = r.field("PhysicalResourceId").unwrap().to_string();
    assert_eq!(
        cfn.described("B"),
        Some(("CREATE_COMPLETE".into(), Some(physical.clone())))
    );
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(a.dns));
    (cfn, api, physical, props)
}

/// A scene whose world checks each API's tags (`ApiTags`), as the template's default does.
async fn tagged() -> Scene {
    let w = World::builder()
        .authorization(Authorization::ApiTags)
        .build()
        .await;
    Scene::on(w, "EcsA").await
}

/// Forged Delete, Update and Create naming team A's stack: each FAILED with the reason, nothing
/// written, each logged as a security event with its EMF metric (the real binary).
#[tokio::test]
async fn forged_events_naming_another_stacks_binding_are_refused() {
    let w = World::new().await;
    let (victim, api, physical, props) = team_a_binding(&w).await;
    let before_var = w.var(&api, "prod", "helloworldElb").await;
    let before_records = w.registry_items().await;
    let function = w.stage_binding_process().await;
    let forger = Forger::naming(&victim.stack_id).await;
    let hijack = json!({
        "RestApiId": api, "StageName": "prod",
        "Variables": {"helloworldElb": {"Value": "attacker.example"}}
    });
    let events = [
        (
            forger
                .events
                .delete(&forger.receiver, "B", &physical, props.clone()),
            "CREATE_COMPLETE",
        ),
        (
            forger.events.update(
                &forger.receiver,
                "B",
                &physical,
                hijack.clone(),
                props.clone(),
            ),
            "CREATE_COMPLETE",
        ),
        (
            forger
                .events
                .create(&forger.receiver, "Intruder", hijack.clone()),
            "holds no resource Intruder",
        ),
    ];
    for (i, (event, why)) in events.into_iter().enumerate() {
        function
            .api
            .invoke(event, Duration::from_secs(20))
            .await
            .unwrap();
        let received = forger.receiver.received().await;
        assert_eq!(received.len(), i + 1, "{received:?}");
        assert_failed(&received[i], &["refused", "is not CloudFormation's", why]);
    }

    assert_eq!(w.var(&api, "prod", "helloworldElb").await, before_var);
    assert_eq!(w.registry_items().await, before_records);
    let logs = function.process.log_text();
    assert_eq!(logs.matches("\"SecurityEvents\":1").count(), 3, "{logs}");
    assert!(
        logs.contains("\"SecurityEvent\":\"ForgedRequest\""),
        "{logs}"
    );
    assert!(logs.contains("security_event"), "{logs}");
    // The stack's own Delete, in the state CloudFormation gives it, still goes through.
    let r = victim
        .send(&w.handler(), victim.delete("B", &physical, props))
        .await;
    assert_success(&r);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, None);
}

/// CloudFormation's own Deletes pass where the resource or its stack is gone, and the cleanup
/// of a replaced physical id passes while the resource is UPDATE_COMPLETE under its new id.
#[tokio::test]
async fn deletes_pass_when_the_stack_is_gone_or_the_id_was_replaced() {
    let w = World::new().await;
    let (victim, api, physical, props) = team_a_binding(&w).await;
    // A replacement: CloudFormation holds the resource under a newer id.
    let mut other = props.clone();
    other["StageName"] = json!("other");
    let update = victim.update("B", &physical, other, props.clone());
    let r = victim.send(&w.handler(), update).await;
    assert_success(&r);
    let (status, newer) = victim.described("B").unwrap();
    assert_eq!(status, "UPDATE_COMPLETE");
    assert_ne!(newer.as_deref(), Some(physical.as_str()));
    // A Delete naming an id it no longer has passes.
    let forger = Forger::naming(&victim.stack_id).await;
    let stale = forger.events.delete(
        &forger.receiver,
        "B",
        "stagewire:rest:stale:prod:B",
        props.clone(),
    );
    let r = forger.receiver_send(&w, stale).await;
    assert_success(&r);
    assert!(w.var(&api, "prod", "helloworldElb").await.is_some());
    // The stack is gone from CloudFormation altogether: its Delete succeeds and cleans up.
    stagewire_devkit::stack_resources::forget(&victim.stack_id, "B");
    let gone = forger
        .events
        .delete(&forger.receiver, "B", &physical, props);
    let r = forger.receiver_send(&w, gone).await;
    assert_success(&r);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, None);
}

impl Forger {
    async fn receiver_send(
        &self,
        w: &World,
        event: serde_json::Value,
    ) -> stagewire_devkit::Received {
        let before = self.receiver.received().await.len();
        w.handler()
            .handle(event, Instant::now() + Duration::from_secs(60))
            .await
            .expect("answered");
        let all = self.receiver.received().await;
        assert_eq!(all.len(), before + 1, "{all:?}");
        all[before].clone()
    }
}

/// A binding on an API of another stack fails, naming the API and the tag; with the tag it
/// succeeds.
#[tokio::test]
async fn a_binding_on_another_stacks_api_needs_its_allow_tag() {
    let Scene { w, stack, api, cfn } = tagged().await;
    w.proxy().set_api_tags(&api, &[(STACK_ID_TAG, TEAM_B)]);
    let props = seed_props(&api, "prod", &stack.name);

    let r = cfn.send_create(&w.handler(), "B", props.clone()).await;
    assert_failed(
        &r,
        &[
            "not authorized",
            &api,
            "TeamB-Api",
            ALLOWED_STACKS_TAG,
            &cfn.stack_name(),
        ],
    );
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(w.registry_items().await.is_empty());

    let allow = format!("Someone-Else, {}*", &cfn.stack_name()[..8]);
    w.proxy().set_api_tags(
        &api,
        &[(STACK_ID_TAG, TEAM_B), (ALLOWED_STACKS_TAG, &allow)],
    );
    let r = cfn.send_create(&w.handler(), "B", props).await;
    assert_success(&r);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

/// An API of the binding's own stack needs no tag of stagewire's.
#[tokio::test]
async fn a_binding_on_its_own_stacks_api_is_allowed() {
    let Scene { w, stack, api, cfn } = tagged().await;
    w.proxy()
        .set_api_tags(&api, &[(STACK_ID_TAG, &cfn.stack_id)]);
    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &stack.name))
        .await;
    assert_success(&r);
}

/// A variable set by hand on a foreign stage, which no binding owns, is not adopted without
/// the right: it keeps its value and the registry stays empty.
#[tokio::test]
async fn adopting_a_hand_set_variable_on_a_foreign_stage_needs_the_right() {
    let Scene { w, stack, api, cfn } = tagged().await;
    w.deploy_stage(&api, "prod", &[("helloworldElb", "team-b.example")])
        .await;
    w.proxy().set_api_tags(&api, &[(STACK_ID_TAG, TEAM_B)]);

    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &stack.name))
        .await;

    assert_failed(&r, &["not authorized", &api, ALLOWED_STACKS_TAG]);
    w.assert_var(&api, "prod", "helloworldElb", "team-b.example")
        .await;
    assert!(w.registry_items().await.is_empty());
}

/// The allow tag removed after binding: the re-sync stops updating the variable, says so in its
/// summary, and `stagewire status` shows it.
#[tokio::test]
async fn the_resync_leaves_a_binding_whose_allow_tag_was_removed() {
    let Scene { w, stack, api, .. } = tagged().await;
    let name = stack.name.clone();
    // The binding's own stack lives on (the re-sync releases the bindings of gone stacks).
    let owner = w.elb_stack(&unique("TeamA")).await;
    let cfn = Cloudformation::for_stack(&owner.stack_id).await;
    w.proxy().set_api_tags(
        &api,
        &[
            (STACK_ID_TAG, TEAM_B),
            (ALLOWED_STACKS_TAG, &cfn.stack_name()),
        ],
    );
    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &name))
        .await;
    assert_success(&r);
    w.proxy().set_api_tags(&api, &[(STACK_ID_TAG, TEAM_B)]);
    let b = w.replace_elb_stack(&name).await;
    assert_ne!(stack.dns, b.dns);

    let summary = stagewire::resync::handle(&w.ports, json!({"resync": "all"}))
        .await
        .unwrap();

    assert_eq!(summary.unauthorized().len(), 1, "{summary:?}");
    assert!(summary.unauthorized()[0].cause.contains(ALLOWED_STACKS_TAG));
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
    let o = cli(&w, &["status"]).await;
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("not authorized"), "{out}");
    assert!(out.contains("re-sync no longer updates"), "{out}");
    let json_out = stdout(&cli(&w, &["status", "--json"]).await);
    assert!(json_out.contains("\"unauthorized\""), "{json_out}");
    assert!(json_out.contains(ALLOWED_STACKS_TAG), "{json_out}");
}

/// A ResponseURL on a host other than CloudFormation's bucket (or the allow-list): nothing is
/// done and no PUT leaves, even though a server listens there.
#[tokio::test]
async fn a_response_url_on_a_foreign_host_is_refused() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    let mut event = cfn.create("B", seed_props(&api, "prod", &stack.name));
    let url = event["ResponseURL"].as_str().unwrap().to_string();
    // Same listener, by another name: only 127.0.0.1 is allowed in the tests.
    event["ResponseURL"] = json!(url.replace("127.0.0.1", "localhost"));

    let result = w
        .handler()
        .handle(event, Instant::now() + Duration::from_secs(20))
        .await;

    assert!(
        matches!(result, Err(ref e) if matches!(e.0, SendError::ForeignHost)),
        "{result:?}"
    );
    assert!(cfn.receiver.received().await.is_empty());
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(w.registry_items().await.is_empty());
}

/// The operator CLI acts with the operator's credentials: a principal API Gateway refuses gets
/// API Gateway's AccessDenied, and nothing is left in the registry.
#[tokio::test]
async fn cli_bind_without_api_gateway_rights_fails_as_api_gateway_says() {
    let Scene { w, stack, api, .. } = Scene::new("EcsA").await;
    w.proxy()
        .add_rule(Rule::new(Fault::Status(403)).service("apigateway"));
    let var = format!("helloworldElb=stack:{}/EcsElbDnsName", stack.name);

    let o = bind(&w, &api, "prod", &["--var", &var]).await;

    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(stderr(&o).contains("AccessDenied"), "{}", stderr(&o));
    w.proxy().clear_rules();
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(w.registry_items().await.is_empty());
}

/// With the most verbose level the template offers, `lambda_runtime` would log the raw event
/// (ResponseURL included) at TRACE: the function's subscriber never writes that target.
#[tokio::test]
async fn the_response_url_stays_out_of_the_logs_at_trace() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    let function = launch(
        "stage-binding",
        &w.function_env(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]),
    )
    .await;

    let event = cfn.create("B", seed_props(&api, "prod", &stack.name));
    let invocation = function
        .api
        .invoke(event, Duration::from_secs(20))
        .await
        .unwrap();
    invocation.response().expect("the function answered");
    let received = cfn.receiver.received().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_success(&received[0]);

    let logs = function.process.log_text();
    assert!(
        logs.contains("TRACE"),
        "the function logged at TRACE: {logs}"
    );
    assert!(
        !logs.contains(cfn.receiver.secret()),
        "the ResponseURL's signature reached the logs:\n{logs}"
    );
    assert!(!logs.contains("ResponseURL\":"), "{logs}");
}

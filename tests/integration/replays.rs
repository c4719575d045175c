//! Requests CloudFormation would not send at that point — a replay of one it sent earlier, a
//! stale duplicate, a Create delivered after CloudFormation gave up on it — checked against
//! CloudFormation's view of the binding as the requests and answers before them left it
//! ([`stagewire_devkit::stack_resources`]): the function refuses each (FAILED, "is not
//! CloudFormation's", naming the state CloudFormation holds), writes nothing, and the view
//! stays as it was.

use serde_json::{json, Value};
use stagewire_devkit::sequences::made_up_id;

use crate::support::*;

/// A scene with the binding `B` of `helloworldElb` on `prod` created: its Create event and
/// physical id.
async fn bound() -> (Scene, Value, String) {
    let s = Scene::new("EcsReplay").await;
    let create = s.cfn.create("B", s.props("prod"));
    let r = s.send(create.clone()).await;
    assert_success(&r);
    let physical = r.field("PhysicalResourceId").unwrap().to_string();
    (s, create, physical)
}

/// Sends a request CloudFormation would not send now: refused, naming `why`, and
/// CloudFormation's view of `B` unchanged.
async fn refused(s: &Scene, event: Value, why: &str) {
    let before = s.cfn.described("B");
    let r = s.send(event).await;
    assert_failed(&r, &["refused", "is not CloudFormation's", why]);
    assert_eq!(s.cfn.described("B"), before, "the refusal moves nothing");
}

/// `helloworldElb` on `prod`, and how many records the registry holds.
async fn bound_value(s: &Scene) -> (Option<String>, usize) {
    let value = s.w.var(&s.api, "prod", "helloworldElb").await;
    (value, s.w.registry_items().await.len())
}

#[tokio::test]
async fn a_create_replayed_or_sent_again_after_create_complete_is_refused() {
    let (s, create, physical) = bound().await;
    assert_eq!(
        s.cfn.described("B"),
        Some(("CREATE_COMPLETE".into(), Some(physical.clone())))
    );

    refused(&s, create, "is CREATE_COMPLETE").await;
    // A stale Create of another stage: another physical id.
    refused(&s, s.cfn.create("B", s.props("next")), "is CREATE_COMPLETE").await;

    assert_eq!(s.w.stage_vars(&s.api, "next").await, None);
    let records = s.w.registry_items().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].owner.physical_id, physical);
}

#[tokio::test]
async fn an_update_replayed_after_a_later_update_completed_is_refused_and_keeps_the_later_value() {
    let (s, _, physical) = bound().await;
    let other = s.w.elb_stack(&unique("EcsOther")).await;
    let moved = seed_props(&s.api, "prod", &other.name);
    let first = s.cfn.update("B", &physical, moved.clone(), s.props("prod"));
    assert_success(&s.send(first.clone()).await);
    let back = s.cfn.update("B", &physical, s.props("prod"), moved);
    assert_success(&s.send(back).await);

    refused(&s, first, "is UPDATE_COMPLETE").await;

    assert_eq!(bound_value(&s).await, (Some(s.stack.dns.clone()), 1));
}

#[tokio::test]
async fn an_update_replayed_after_the_delete_is_refused_and_writes_nothing() {
    let (s, _, physical) = bound().await;
    let mut banner = s.props("prod");
    banner["Variables"]["banner"] = json!({"Value": "v2"});
    let update = s
        .cfn
        .update("B", &physical, banner.clone(), s.props("prod"));
    assert_success(&s.send(update.clone()).await);
    assert_success(&s.send(s.cfn.delete("B", &physical, banner)).await);
    assert_eq!(s.cfn.described("B"), None, "the binding is gone");

    refused(&s, update, "holds no resource B").await;

    assert_eq!(s.w.stage_vars(&s.api, "prod").await, None);
    assert!(s.w.registry_items().await.is_empty());
}

#[tokio::test]
async fn a_delete_replayed_after_the_binding_was_created_again_is_refused_and_the_binding_stays() {
    let (s, _, physical) = bound().await;
    let delete = s.cfn.delete("B", &physical, s.props("prod"));
    assert_success(&s.send(delete.clone()).await);
    let again = s.send(s.cfn.create("B", s.props("prod"))).await;
    assert_success(&again);
    assert_eq!(again.field("PhysicalResourceId"), Some(physical.as_str()));

    refused(&s, delete, "is CREATE_COMPLETE").await;

    assert_eq!(bound_value(&s).await, (Some(s.stack.dns.clone()), 1));
}

#[tokio::test]
async fn a_create_delivered_after_cloudformation_gave_up_on_it_and_deleted_it_is_refused() {
    let s = Scene::new("EcsReplay").await;
    let late = s.cfn.create("B", s.props("prod"));
    s.cfn.give_up("B");
    let made_up = made_up_id(&s.cfn.stack_id, "B");
    assert_success(&s.send(s.cfn.delete("B", &made_up, s.props("prod"))).await);
    assert_eq!(s.cfn.described("B"), None, "the binding is gone");

    refused(&s, late, "holds no resource B").await;

    assert_eq!(s.w.stage_vars(&s.api, "prod").await, None);
    assert!(s.w.registry_items().await.is_empty());
}

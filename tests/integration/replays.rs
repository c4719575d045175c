//! Requests CloudFormation would not send at that point — a replay of one it sent earlier, a
//! stale duplicate, a Create delivered after CloudFormation gave up on it — checked against
//! CloudFormation's view of the binding as the requests and answers before them left it
//! ([`stagewire_devkit::stack_resources`]): the function refuses each (FAILED, "is not
//! CloudFormation's", naming the state CloudFormation holds), writes nothing, and the view
//! stays as it was.

use serde_json::{json, Value};
use stagewire_devkit::sequences::made_up_id;
use stagewire_devkit::Received;

use crate::support::*;

/// A stack's binding `B` of `helloworldElb` on `prod` to a stack output, not created yet.
struct Scene {
    w: World,
    stack: ElbStack,
    api: String,
    cfn: Cloudformation,
    props: Value,
}

impl Scene {
    async fn new() -> Scene {
        let w = World::new().await;
        let stack = w.elb_stack(&unique("EcsReplay")).await;
        let api = w.rest_api().await;
        let props = seed_props(&api, "prod", &stack.name);
        Scene {
            cfn: Cloudformation::new().await,
            w,
            stack,
            api,
            props,
        }
    }

    /// The scene with `B` created: its Create event and physical id.
    async fn bound() -> (Scene, Value, String) {
        let s = Scene::new().await;
        let create = s.cfn.create("B", s.props.clone());
        let r = s.send(create.clone()).await;
        assert_success(&r);
        let physical = r.field("PhysicalResourceId").unwrap().to_string();
        (s, create, physical)
    }

    async fn send(&self, event: Value) -> Received {
        self.cfn.send(&self.w.handler(), event).await
    }

    /// Sends a request CloudFormation would not send now: refused, naming `why`, and
    /// CloudFormation's view of `B` unchanged.
    async fn refused(&self, event: Value, why: &str) {
        let before = self.cfn.described("B");
        let r = self.send(event).await;
        assert_failed(&r, &["refused", "is not CloudFormation's", why]);
        assert_eq!(self.cfn.described("B"), before, "the refusal moves nothing");
    }

    /// `helloworldElb` on `prod`, and how many records the registry holds.
    async fn bound_value(&self) -> (Option<String>, usize) {
        let value = self.w.var(&self.api, "prod", "helloworldElb").await;
        (value, self.w.registry_items().await.len())
    }
}

#[tokio::test]
async fn a_create_replayed_or_sent_again_after_create_complete_is_refused() {
    let (s, create, physical) = Scene::bound().await;
    assert_eq!(
        s.cfn.described("B"),
        Some(("CREATE_COMPLETE".into(), Some(physical.clone())))
    );

    s.refused(create, "is CREATE_COMPLETE").await;
    // A stale Create of another stage: another physical id.
    let mut next = s.props.clone();
    next["StageName"] = json!("next");
    s.refused(s.cfn.create("B", next), "is CREATE_COMPLETE")
        .await;

    assert_eq!(s.w.stage_vars(&s.api, "next").await, None);
    let records = s.w.registry_items().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].owner.physical_id, physical);
}

#[tokio::test]
async fn an_update_replayed_after_a_later_update_completed_is_refused_and_keeps_the_later_value() {
    let (s, _, physical) = Scene::bound().await;
    let other = s.w.elb_stack(&unique("EcsOther")).await;
    let moved = seed_props(&s.api, "prod", &other.name);
    let first = s.cfn.update("B", &physical, moved.clone(), s.props.clone());
    assert_success(&s.send(first.clone()).await);
    let back = s.cfn.update("B", &physical, s.props.clone(), moved);
    assert_success(&s.send(back).await);

    s.refused(first, "is UPDATE_COMPLETE").await;

    assert_eq!(s.bound_value().await, (Some(s.stack.dns.clone()), 1));
}

#[tokio::test]
async fn an_update_replayed_after_the_delete_is_refused_and_writes_nothing() {
    let (s, _, physical) = Scene::bound().await;
    let mut banner = s.props.clone();
    banner["Variables"]["banner"] = json!({"Value": "v2"});
    let update = s
        .cfn
        .update("B", &physical, banner.clone(), s.props.clone());
    assert_success(&s.send(update.clone()).await);
    assert_success(&s.send(s.cfn.delete("B", &physical, banner)).await);
    assert_eq!(s.cfn.described("B"), None, "the binding is gone");

    s.refused(update, "holds no resource B").await;

    assert_eq!(s.w.stage_vars(&s.api, "prod").await, None);
    assert!(s.w.registry_items().await.is_empty());
}

#[tokio::test]
async fn a_delete_replayed_after_the_binding_was_created_again_is_refused_and_the_binding_stays() {
    let (s, _, physical) = Scene::bound().await;
    let delete = s.cfn.delete("B", &physical, s.props.clone());
    assert_success(&s.send(delete.clone()).await);
    let again = s.send(s.cfn.create("B", s.props.clone())).await;
    assert_success(&again);
    assert_eq!(again.field("PhysicalResourceId"), Some(physical.as_str()));

    s.refused(delete, "is CREATE_COMPLETE").await;

    assert_eq!(s.bound_value().await, (Some(s.stack.dns.clone()), 1));
}

#[tokio::test]
async fn a_create_delivered_after_cloudformation_gave_up_on_it_and_deleted_it_is_refused() {
    let s = Scene::new().await;
    let late = s.cfn.create("B", s.props.clone());
    s.cfn.give_up("B");
    let made_up = made_up_id(&s.cfn.stack_id, "B");
    assert_success(&s.send(s.cfn.delete("B", &made_up, s.props.clone())).await);
    assert_eq!(s.cfn.described("B"), None, "the binding is gone");

    s.refused(late, "holds no resource B").await;

    assert_eq!(s.w.stage_vars(&s.api, "prod").await, None);
    assert!(s.w.registry_items().await.is_empty());
}

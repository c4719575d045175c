//! CloudFormation's choreography, replayed against moto through the handler: calls in the
//! order CloudFormation makes them, overlapping where it overlaps them (separate handlers stand
//! for separate Lambda sandboxes, each with its own clients and pacer; the fault proxy holds a
//! call so that another runs meanwhile). Each test's name states the sequence.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stagewire::cfn::Handler;
use stagewire::ports::Record;
use stagewire_devkit::fault_proxy::{Fault, FaultProxy, Rule};

use crate::support::*;

/// A second Lambda sandbox of the same function: its own clients and pacer, the same table.
fn sandbox(w: &World) -> Handler {
    w.handler_over(stagewire::Ports::aws(&w.sdk, &w.table))
}

/// Another view of the same stack with a response receiver of its own, so that calls in flight
/// at the same time each get their own one response.
async fn same_stack(cfn: &Cloudformation) -> Arc<Cloudformation> {
    Arc::new(Cloudformation::for_stack(&cfn.stack_id).await)
}

async fn records(w: &World) -> Vec<Record> {
    w.registry_items().await
}

/// An id as CloudFormation makes one up for a resource whose Create never answered.
fn made_up_id(logical: &str) -> String {
    format!("EcsDemoApiStack-{logical}-{}", unique("X").to_uppercase())
}

#[tokio::test]
async fn create_held_then_made_up_id_delete_then_create_ends_leaves_nothing() {
    let moto = stagewire_devkit::moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let w = World::at(&proxy.endpoint()).await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    let cfn = Arc::new(Cloudformation::new().await);
    let props = seed_props(&api, "prod", &stack.name);
    // The Create's stage write is held while a sibling fails and CloudFormation cancels it.
    proxy.add_rule(
        Rule::new(Fault::Delay(Duration::from_secs(2)))
            .service("apigateway")
            .operation(format!("POST /restapis/{api}/stages"))
            .times(1),
    );
    let create = {
        let (cfn, h, e) = (cfn.clone(), w.handler(), cfn.create("B", props.clone()));
        tokio::spawn(async move { cfn.send(&h, e).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;

    let cfn2 = same_stack(&cfn).await;
    let deleted = cfn2
        .send(
            &sandbox(&w),
            cfn2.delete("B", &made_up_id("B"), props.clone()),
        )
        .await;
    assert_success(&deleted);
    let created = create.await.unwrap();

    assert_failed(&created, &["cancelled"]);
    assert!(records(&w).await.is_empty(), "no record remains");
    assert_eq!(
        w.stage_vars(&api, "prod").await,
        None,
        "the stage it created is gone"
    );
    // The same logical id in a re-created stack of the same name claims at once.
    let again = Cloudformation::new().await;
    assert_success(&again.send(&w.handler(), again.create("B", props)).await);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn create_answered_too_late_then_made_up_id_delete_removes_it() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    let cfn = Cloudformation::new().await;
    let props = seed_props(&api, "prod", &stack.name);
    assert_success(&cfn.send(&w.handler(), cfn.create("B", props.clone())).await);

    // The answer never reached CloudFormation: it gives up and deletes with an id of its own.
    let deleted = cfn
        .send(&w.handler(), cfn.delete("B", &made_up_id("B"), props))
        .await;

    assert_success(&deleted);
    assert!(records(&w).await.is_empty());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("helloworldElb"), None);
    assert_eq!(
        vars["other"], "kept",
        "the stage and what else lives there stay"
    );
}

#[tokio::test]
async fn sibling_creates_of_one_new_stage_overlap_and_both_succeed() {
    let moto = stagewire_devkit::moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let w = World::at(&proxy.endpoint()).await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    let cfn = Arc::new(Cloudformation::new().await);
    // Both read the stage (missing) before either creates it.
    proxy.add_rule(
        Rule::new(Fault::Delay(Duration::from_millis(700)))
            .service("apigateway")
            .operation(format!("GET /restapis/{api}/stages/prod"))
            .times(2),
    );
    let mut a = seed_props(&api, "prod", &stack.name);
    let mut b = a.clone();
    a["Variables"] = json!({"aElb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName"}});
    b["Variables"] = json!({"bElb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName"}});
    let cfn2 = same_stack(&cfn).await;
    let send = |cfn: Arc<Cloudformation>, logical: &str, props, h: Handler| {
        let e = cfn.create(logical, props);
        tokio::spawn(async move { cfn.send(&h, e).await })
    };
    let ra = send(cfn.clone(), "A", a, w.handler());
    let rb = send(cfn2, "B", b, sandbox(&w));

    assert_success(&ra.await.unwrap());
    assert_success(&rb.await.unwrap());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("aElb"), Some(&stack.dns), "{vars:?}");
    assert_eq!(vars.get("bElb"), Some(&stack.dns), "{vars:?}");
    assert_eq!(records(&w).await.len(), 2);
}

#[tokio::test]
async fn create_then_replacing_update_then_rollback_then_cleanup_deletes() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let old = seed_props(&api, "prod", &stack.name);
    let new = seed_props(&api, "next", &stack.name);
    let a = cfn.send(&w.handler(), cfn.create("B", old.clone())).await;
    assert_success(&a);
    let id_a = a.body["PhysicalResourceId"].as_str().unwrap().to_string();
    let b = cfn
        .send(
            &w.handler(),
            cfn.update("B", &id_a, new.clone(), old.clone()),
        )
        .await;
    assert_success(&b);
    let id_b = b.body["PhysicalResourceId"].as_str().unwrap().to_string();
    assert_ne!(id_a, id_b, "a new stage is a replacement");

    // A later resource fails: the rollback sends the old properties to the new id.
    let back = cfn
        .send(
            &w.handler(),
            cfn.update("B", &id_b, old.clone(), new.clone()),
        )
        .await;
    assert_success(&back);
    assert_eq!(back.body["PhysicalResourceId"], json!(id_a));
    // UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS deletes the new id.
    assert_success(&cfn.send(&w.handler(), cfn.delete("B", &id_b, new)).await);
    assert_eq!(
        w.stage_vars(&api, "next").await,
        None,
        "B's stage, created by B, is gone"
    );
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
    // The stack's deletion: A still knows it created its stage.
    assert_success(&cfn.send(&w.handler(), cfn.delete("B", &id_a, old)).await);
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(records(&w).await.is_empty());
}

#[tokio::test]
async fn replacing_update_fails_after_its_claim_then_rollback_keeps_the_binding() {
    let moto = stagewire_devkit::moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let w = World::at(&proxy.endpoint()).await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let old = seed_props(&api, "prod", &stack.name);
    let new = seed_props(&api, "next", &stack.name);
    let a = cfn.send(&w.handler(), cfn.create("B", old.clone())).await;
    let id_a = a.body["PhysicalResourceId"].as_str().unwrap().to_string();
    let before = records(&w).await;
    // The new stage cannot be written (after the claim).
    proxy.add_rule(
        Rule::new(Fault::Status(500))
            .service("apigateway")
            .operation(format!("POST /restapis/{api}/stages"))
            .times(10),
    );

    let failed = cfn
        .send(
            &w.handler(),
            cfn.update("B", &id_a, new.clone(), old.clone()),
        )
        .await;

    assert_failed(&failed, &["next"]);
    assert_eq!(failed.body["PhysicalResourceId"], json!(id_a));
    assert_eq!(
        records(&w).await,
        before,
        "nothing of the failed replacement remains"
    );
    proxy.clear_rules();
    let back = cfn
        .send(&w.handler(), cfn.update("B", &id_a, old.clone(), new))
        .await;
    assert_success(&back);
    assert_eq!(records(&w).await.len(), 1);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn update_renames_the_logical_id_then_cleanup_deletes_the_old_one() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    // The API's stack, as moto can hold it: the bindings' logical ids as placeholders.
    let name = unique("ApiStack");
    let template = |ids: &[&str]| {
        let resources: serde_json::Map<String, serde_json::Value> = ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    json!({"Type": "AWS::CloudFormation::WaitConditionHandle"}),
                )
            })
            .collect();
        json!({"Resources": resources}).to_string()
    };
    let created = w
        .cfn
        .create_stack()
        .stack_name(&name)
        .template_body(template(&["Old", "Other"]))
        .send()
        .await
        .unwrap();
    let cfn = Cloudformation::for_stack(created.stack_id().unwrap()).await;
    let props = seed_props(&api, "prod", &stack.name);
    let old = cfn
        .send(&w.handler(), cfn.create("Old", props.clone()))
        .await;
    assert_success(&old);
    // While both are in the template, a second claim names the owner.
    let other = cfn
        .send(&w.handler(), cfn.create("Other", props.clone()))
        .await;
    assert_failed(&other, &["owned by Old"]);

    // The update renames Old to New: New is created during the update...
    w.cfn
        .update_stack()
        .stack_name(&name)
        .template_body(template(&["New", "Other"]))
        .send()
        .await
        .unwrap();
    assert_success(
        &cfn.send(&w.handler(), cfn.create("New", props.clone()))
            .await,
    );
    // ...and Old deleted in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS.
    let old_id = old.body["PhysicalResourceId"].as_str().unwrap().to_string();
    assert_success(
        &cfn.send(&w.handler(), cfn.delete("Old", &old_id, props))
            .await,
    );

    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
    let r = records(&w).await;
    assert_eq!((r.len(), r[0].owner.logical_id.as_str()), (1, "New"));
}

#[tokio::test]
async fn delete_while_the_api_stack_is_deleted_in_parallel_succeeds() {
    let moto = stagewire_devkit::moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let w = World::at(&proxy.endpoint()).await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    w.deploy_stage(&api, "prod", &[("other", "x")]).await;
    let cfn = Arc::new(Cloudformation::new().await);
    let props = seed_props(&api, "prod", &stack.name);
    let a = cfn.send(&w.handler(), cfn.create("B", props.clone())).await;
    let id = a.body["PhysicalResourceId"].as_str().unwrap().to_string();
    // The Delete's stage write is held; meanwhile the API goes with its own stack.
    proxy.add_rule(
        Rule::new(Fault::Delay(Duration::from_secs(1)))
            .service("apigateway")
            .operation(format!("PATCH /restapis/{api}/stages/prod"))
            .times(1),
    );
    let delete = {
        let (cfn, h, e) = (cfn.clone(), w.handler(), cfn.delete("B", &id, props));
        tokio::spawn(async move { cfn.send(&h, e).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.apigw
        .delete_rest_api()
        .rest_api_id(&api)
        .send()
        .await
        .unwrap();

    assert_success(&delete.await.unwrap());
    assert!(records(&w).await.is_empty());
}

#[tokio::test]
async fn stack_deleted_without_its_bindings_deletes_then_delete_complete_releases_them() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    let cfn = w.owning_stack().await;
    let r = cfn
        .send(
            &w.handler(),
            cfn.create("B", seed_props(&api, "prod", &stack.name)),
        )
        .await;
    assert_success(&r);
    // The stack goes, and the binding's Delete never came (it failed, or was skipped).
    w.cfn
        .delete_stack()
        .stack_name(&cfn.stack_id)
        .send()
        .await
        .unwrap();

    let event = stagewire_devkit::seed::stack_status_event(
        "123456789012",
        "us-east-1",
        &cfn.stack_id,
        "DELETE_COMPLETE",
    );
    let summary = stagewire::resync::handle(&w.ports, event).await.unwrap();

    assert_eq!(summary.released, 1, "{summary:?}");
    assert!(records(&w).await.is_empty());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("helloworldElb"), None);
    assert_eq!(vars["other"], "kept");
}

#[tokio::test]
async fn stack_gone_before_the_scheduled_reconcile_has_its_bindings_released() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsChoreo")).await;
    let api = w.rest_api().await;
    let alive = w.owning_stack().await;
    let gone = w.owning_stack().await;
    for (cfn, stage) in [(&alive, "prod"), (&gone, "dev")] {
        let r = cfn
            .send(
                &w.handler(),
                cfn.create("B", seed_props(&api, stage, &stack.name)),
            )
            .await;
        assert_success(&r);
    }
    w.cfn
        .delete_stack()
        .stack_name(&gone.stack_id)
        .send()
        .await
        .unwrap();

    let summary = stagewire::resync::handle(&w.ports, json!({"resync": "all"}))
        .await
        .unwrap();

    assert_eq!(summary.released, 1, "{summary:?}");
    let left = records(&w).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner.stack_id, alive.stack_id);
    assert_eq!(
        w.stage_vars(&api, "dev").await,
        None,
        "dev was created by the gone stack's binding"
    );
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

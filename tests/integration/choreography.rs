//! CloudFormation's choreography, replayed against moto: each test plays one of the named
//! sequences of [`stagewire_devkit::sequences`] (calls in the order CloudFormation makes them,
//! overlapping where it overlaps them) through the handler or the function binary, the fault
//! proxy holding a call at a [`Gate`] so that another runs meanwhile. Each test's name states
//! the sequence.

use std::time::Duration;

use serde_json::{json, Value};
use stagewire::cfn::Handler;
use stagewire::ports::Record;
use stagewire_devkit::fault_proxy::{Fault, Gate, Rule};
use stagewire_devkit::sequences;

use crate::support::*;

const HOLD: Duration = Duration::from_secs(60);

/// A second Lambda sandbox of the same function: its own clients and pacer, the same table.
fn sandbox(w: &World) -> Handler {
    w.handler_over(stagewire::Ports::aws(&w.sdk, &w.table).expect("a region"))
}

async fn records(w: &World) -> Vec<Record> {
    w.registry_items().await
}

#[tokio::test]
async fn cancelled_create_held_at_its_stage_write_then_made_up_id_delete_leaves_nothing() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsChoreo").await;
    let props = seed_props(&api, "prod", &stack.name);
    // The Create's stage write is held while a sibling fails and CloudFormation cancels it.
    let gate = w.hold(format!("POST /restapis/{api}/stages"), 1);
    let seq = sequences::cancelled_create("B", props.clone());

    let sandboxes = [w.handler(), sandbox(&w)];
    let answers = cfn
        .player(&seq)
        .holding(gate)
        .play(handlers(&sandboxes))
        .await
        .unwrap()
        .to_vec();

    // CloudFormation no longer listens to the Create: it answers, then sees the cancellation
    // and undoes itself before its invocation ends.
    assert_success(&answers[0]);
    assert_success(&answers[1]);
    assert!(records(&w).await.is_empty(), "no record remains");
    assert_eq!(
        w.stage_vars(&api, "prod").await,
        None,
        "the stage it created is gone"
    );
    // The same logical id in a re-created stack of the same name claims at once.
    let again = Cloudformation::new().await;
    assert_success(&again.send_create(&w.handler(), "B", props).await);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn timed_out_create_then_made_up_id_delete_removes_it() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsChoreo").await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    let seq = sequences::timed_out_create("B", seed_props(&api, "prod", &stack.name));

    let h = [w.handler()];
    let answers = cfn.player(&seq).play(handlers(&h)).await.unwrap().to_vec();

    assert_success(&answers[0]);
    assert_success(&answers[1]);
    assert!(records(&w).await.is_empty());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("helloworldElb"), None);
    assert_eq!(
        vars["other"], "kept",
        "the stage and what else lives there stay"
    );
}

/// Properties binding `variable` of `stage` to the stack's output.
fn bind_one(api: &str, stage: &str, stack: &str, variable: &str) -> Value {
    let mut props = seed_props(api, stage, stack);
    props["Variables"] = json!({variable: {"StackName": stack, "OutputKey": "EcsElbDnsName"}});
    props
}

#[tokio::test]
async fn sibling_creates_in_two_function_processes_both_read_the_missing_stage_then_both_succeed() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsChoreo").await;
    // Both read the stage (missing) before either creates it.
    let gate = w.hold(format!("GET /restapis/{api}/stages/prod"), 2);
    let seq = sequences::sibling_creates(
        ("A", bind_one(&api, "prod", &stack.name, "aElb")),
        ("B", bind_one(&api, "prod", &stack.name, "bElb")),
    );

    play_siblings_in_two_processes(&w, &cfn, &seq, &gate).await;

    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("aElb"), Some(&stack.dns), "{vars:?}");
    assert_eq!(vars.get("bElb"), Some(&stack.dns), "{vars:?}");
    assert_eq!(records(&w).await.len(), 2);
}

#[tokio::test]
async fn replacement_rollback_updates_the_new_id_back_then_cleanup_and_stack_deletes() {
    let s = Scene::new("EcsChoreo").await;
    let seq = sequences::replacement_rollback("B", s.props("prod"), s.props("next"));
    let Scene { w, stack, api, cfn } = s;
    let h = [w.handler()];
    let mut player = cfn.player(&seq);

    // Create, the replacing Update, the rollback's Update, the cleanup's Delete.
    let answers = player.play_until(4, handlers(&h)).await.unwrap().to_vec();
    answers.iter().for_each(assert_success);
    let (id_a, id_b) = (player.physical_id(0), player.physical_id(1));
    assert_ne!(id_a, id_b, "a new stage is a replacement");
    assert_eq!(
        player.physical_id(2),
        id_a,
        "the rollback answers the old id"
    );
    assert_eq!(
        w.stage_vars(&api, "next").await,
        None,
        "the new stage, created by the replacement, is gone"
    );
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));

    // The stack's deletion: the old id still knows it created its stage.
    let answers = player.play(handlers(&h)).await.unwrap();
    assert_success(&answers[4]);
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(records(&w).await.is_empty());
}

#[tokio::test]
async fn failed_replacing_update_after_its_claim_then_rollback_keeps_the_binding() {
    let s = Scene::new("EcsChoreo").await;
    let seq = sequences::failed_update_rollback("B", s.props("prod"), s.props("next"));
    let Scene { w, stack, api, cfn } = s;
    let proxy = w.proxy();
    let h = [w.handler()];
    let mut player = cfn.player(&seq);
    player.play_until(1, handlers(&h)).await.unwrap();
    let before = records(&w).await;
    // The new stage cannot be written (after the claim).
    proxy.add_rule(
        Rule::new(Fault::Status(500))
            .service("apigateway")
            .operation(format!("POST /restapis/{api}/stages"))
            .times(10),
    );

    let failed = player.play_until(2, handlers(&h)).await.unwrap()[1].clone();

    assert_failed(&failed, &["next"]);
    assert_eq!(failed.field("PhysicalResourceId"), player.physical_id(0));
    assert_eq!(
        records(&w).await,
        before,
        "nothing of the failed replacement remains"
    );
    proxy.clear_rules();
    let back = player.play(handlers(&h)).await.unwrap()[2].clone();
    assert_success(&back);
    assert_eq!(records(&w).await.len(), 1);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn rename_creates_the_new_logical_id_then_cleanup_deletes_the_old_one() {
    let Scene { w, stack, api, .. } = Scene::new("EcsChoreo").await;
    // The API's stack, as moto can hold it: the bindings' logical ids as placeholders.
    let name = unique("ApiStack");
    let template = |ids: &[&str]| {
        let resources: serde_json::Map<String, Value> = ids
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
    let seq = sequences::rename("Old", "New", props.clone());
    let h = [w.handler()];
    let mut player = cfn.player(&seq);
    assert_success(&player.play_until(1, handlers(&h)).await.unwrap()[0]);
    // While both are in the template, a second claim names the owner.
    let other = cfn.send_create(&w.handler(), "Other", props).await;
    assert_failed(&other, &["owned by Old"]);

    // The update renames Old to New: New is created during the update, Old deleted in cleanup.
    w.cfn
        .update_stack()
        .stack_name(&name)
        .template_body(template(&["New", "Other"]))
        .send()
        .await
        .unwrap();
    let answers = player.play(handlers(&h)).await.unwrap();
    assert_success(&answers[1]);
    assert_success(&answers[2]);

    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
    let r = records(&w).await;
    assert_eq!((r.len(), r[0].owner.logical_id.as_str()), (1, "New"));
}

#[tokio::test]
async fn delete_held_at_its_stage_write_while_the_api_stack_vanishes_succeeds() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsChoreo").await;
    w.deploy_stage(&api, "prod", &[("other", "x")]).await;
    let seq = sequences::delete_while_stack_vanishes("B", seed_props(&api, "prod", &stack.name));
    let h = [w.handler()];
    let mut player = cfn.player(&seq);
    assert_success(&player.play_until(1, handlers(&h)).await.unwrap()[0]);
    // The Delete's stage write is held; meanwhile the API goes with its own stack.
    let gate = w.hold(format!("PATCH /restapis/{api}/stages/prod"), 1);

    let (played, ()) = tokio::join!(player.play(handlers(&h)), async {
        assert!(gate.held(1, HOLD).await, "the Delete's write arrived");
        w.apigw
            .delete_rest_api()
            .rest_api_id(&api)
            .send()
            .await
            .unwrap();
        gate.open();
    });

    assert_success(&played.unwrap()[1]);
    assert!(records(&w).await.is_empty());
}

#[tokio::test]
async fn two_stacks_with_one_logical_id_on_one_stage_each_delete_only_their_own() {
    let Scene { w, stack, api, .. } = Scene::new("EcsChoreo").await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    let (x, y) = (Cloudformation::new().await, Cloudformation::new().await);
    let (a, b) = (
        bind_one(&api, "prod", &stack.name, "aElb"),
        bind_one(&api, "prod", &stack.name, "bElb"),
    );
    let made_x = x.send_create(&w.handler(), "B", a.clone()).await;
    let made_y = y.send_create(&w.handler(), "B", b).await;
    assert_success(&made_x);
    assert_success(&made_y);
    let physical = made_x.field("PhysicalResourceId").unwrap();
    assert_eq!(
        made_y.field("PhysicalResourceId"),
        Some(physical),
        "one name"
    );

    let deleted = x.send(&w.handler(), x.delete("B", physical, a)).await;

    assert_success(&deleted);
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("aElb"), None, "{vars:?}");
    assert_eq!(vars.get("bElb"), Some(&stack.dns), "{vars:?}");
    let left = records(&w).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner.stack_id, y.stack_id);
}

/// A binding of `helloworldElb` on a stage it created, whose source's load balancer has been
/// replaced since: a re-sync re-points it. The re-sync's calls go through a proxy of their own,
/// so that the test holds one side's calls and not the other's.
struct Race {
    w: World,
    api: String,
    cfn: Cloudformation,
    props: Value,
    physical: String,
    /// The re-sync's world: the same registry, through a proxy of its own.
    resync: World,
    event: Value,
    claimed_version: u64,
}

impl Race {
    async fn set_up() -> Race {
        let Scene { w, stack, api, cfn } = Scene::new("EcsRace").await;
        let props = seed_props(&api, "prod", &stack.name);
        let created = cfn.send_create(&w.handler(), "B", props.clone()).await;
        assert_success(&created);
        let replaced = w.replace_elb_stack(&stack.name).await;
        let resync = World::builder().table_of(&w).build().await;
        let claimed_version = records(&w).await[0].version;
        Race {
            resync,
            physical: created.field("PhysicalResourceId").unwrap().to_string(),
            event: crate::resync::stack_event(&replaced.stack_id, "CREATE_COMPLETE"),
            w,
            api,
            cfn,
            props,
            claimed_version,
        }
    }

    async fn delete(&self) -> stagewire_devkit::Received {
        let event = self.cfn.delete("B", &self.physical, self.props.clone());
        self.cfn.send(&self.w.handler(), event).await
    }

    async fn resync(&self) -> Result<stagewire::resync::Summary, stagewire::resync::Incomplete> {
        stagewire::resync::handle(&self.resync.ports, self.event.clone()).await
    }

    /// The version the registry item holds now.
    async fn version(&self) -> u64 {
        records(&self.w).await[0].version
    }

    /// Nothing of the binding is left, and claiming the variable again starts from a version
    /// none of `used` had.
    async fn assert_nothing_left_then_a_new_claim_gets_a_new_version(&self, used: &[u64]) {
        assert!(records(&self.w).await.is_empty(), "no record remains");
        assert_eq!(
            self.w.stage_vars(&self.api, "prod").await,
            None,
            "the stage the binding created is gone, variable and all"
        );
        let again = self.cfn.create("B", self.props.clone());
        assert_success(&self.cfn.send(&self.w.handler(), again).await);
        let version = self.version().await;
        assert!(
            used.iter().all(|u| version > *u),
            "claimed again at version {version}, after {used:?}"
        );
    }
}

#[tokio::test]
async fn delete_while_a_resync_is_held_before_its_registry_write_leaks_nothing() {
    let r = Race::set_up().await;
    // The re-sync has planned the new value; its conditional registry write is held.
    let gate = Gate::new();
    r.resync.proxy().add_rule(
        Rule::new(Fault::Hold(gate.clone()))
            .service("dynamodb")
            .operation("UpdateItem")
            .times(1),
    );

    let (resynced, deleted) = tokio::join!(r.resync(), async {
        assert!(gate.held(1, HOLD).await, "the re-sync's write arrived");
        let deleted = r.delete().await;
        gate.open();
        deleted
    });

    assert_success(&deleted);
    let summary = resynced.unwrap();
    assert!(summary.changed.is_empty(), "{summary:?}");
    r.assert_nothing_left_then_a_new_claim_gets_a_new_version(&[r.claimed_version])
        .await;
}

#[tokio::test]
async fn delete_while_a_resync_is_held_between_its_registry_write_and_its_stage_write_leaks_nothing(
) {
    let r = Race::set_up().await;
    // The re-sync has recorded the new value; its stage write is held.
    let gate = Gate::new();
    r.resync.proxy().add_rule(
        Rule::new(Fault::Hold(gate.clone()))
            .service("apigateway")
            .operation(format!("PATCH /restapis/{}/stages/prod", r.api))
            .times(1),
    );

    let (resynced, (deleted, recorded)) = tokio::join!(r.resync(), async {
        assert!(
            gate.held(1, HOLD).await,
            "the re-sync's stage write arrived"
        );
        let recorded = r.version().await;
        let deleted = r.delete().await;
        gate.open();
        (deleted, recorded)
    });

    assert_success(&deleted);
    assert!(recorded > r.claimed_version, "the re-sync recorded first");
    resynced.unwrap();
    r.assert_nothing_left_then_a_new_claim_gets_a_new_version(&[r.claimed_version, recorded])
        .await;
}

#[tokio::test]
async fn resync_while_a_delete_is_held_at_its_stage_write_leaks_nothing() {
    let r = Race::set_up().await;
    // The Delete has read the stage; its write is held while a whole re-sync runs.
    let gate =
        r.w.hold(format!("PATCH /restapis/{}/stages/prod", r.api), 1);

    let (deleted, (resynced, recorded)) = tokio::join!(r.delete(), async {
        assert!(gate.held(1, HOLD).await, "the Delete's stage write arrived");
        let resynced = r.resync().await;
        let recorded = r.version().await;
        gate.open();
        (resynced, recorded)
    });

    assert_success(&deleted);
    let summary = resynced.unwrap();
    assert_eq!(
        summary.changed.len(),
        1,
        "the re-sync re-pointed it: {summary:?}"
    );
    r.assert_nothing_left_then_a_new_claim_gets_a_new_version(&[r.claimed_version, recorded])
        .await;
}

#[tokio::test]
async fn stack_deleted_without_its_bindings_deletes_then_delete_complete_releases_them() {
    let Scene { w, stack, api, .. } = Scene::new("EcsChoreo").await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    let cfn = w.owning_stack().await;
    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &stack.name))
        .await;
    assert_success(&r);
    // The stack goes, and the binding's Delete never came (it failed, or was skipped).
    w.delete_stack(&cfn.stack_id).await;

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
    let Scene { w, stack, api, .. } = Scene::new("EcsChoreo").await;
    let alive = w.owning_stack().await;
    let gone = w.owning_stack().await;
    for (cfn, stage) in [(&alive, "prod"), (&gone, "dev")] {
        let r = cfn
            .send_create(&w.handler(), "B", seed_props(&api, stage, &stack.name))
            .await;
        assert_success(&r);
    }
    w.delete_stack(&gone.stack_id).await;

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

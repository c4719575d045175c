//! An event is a claim: the real `stage-resync` binary, under the Runtime API stand-in and
//! against moto, releases a stack's bindings only when CloudFormation says the stack ended, and
//! refuses events that name resources outside their own account and region.

use std::time::Duration;

use serde_json::Value;
use stagewire_devkit::seed::stack_status_event;
use stagewire_devkit::Function;

use crate::support::*;

const OTHER_ACCOUNT: &str = "222222222222";

/// The `stage-resync` binary, configured as the template configures it, over this world.
async fn resync_process(w: &World) -> Function {
    let env = w.function_env(&[(stagewire::config::ACCOUNT_VAR, ACCOUNT)]);
    launch("stage-resync", &env).await
}

/// Invoke the process with `event` and answer its summary.
async fn invoke(f: &Function, event: Value) -> Value {
    let done = f.api.invoke(event, Duration::from_secs(30)).await.unwrap();
    done.response()
        .cloned()
        .unwrap_or_else(|| panic!("{:?}\n{}", done.outcome, f.process.log_text()))
}

fn refused(summary: &Value) -> Vec<&Value> {
    summary["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "refused")
        .collect()
}

/// A load balancer stack, a REST API, and a live stack owning a binding of `prod`'s
/// `helloworldElb` to the load balancer stack's output.
struct Bound {
    w: World,
    api: String,
    lb_stack: ElbStack,
    owner: Cloudformation,
}

async fn bound() -> Bound {
    let Scene {
        w,
        stack: lb_stack,
        api,
        ..
    } = Scene::new("EcsClaims").await;
    let owner = w.owning_stack().await;
    let r = owner
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &lb_stack.name))
        .await;
    assert_success(&r);
    Bound {
        w,
        api,
        lb_stack,
        owner,
    }
}

impl Bound {
    async fn var(&self) -> Option<String> {
        self.w.var(&self.api, "prod", "helloworldElb").await
    }
}

#[tokio::test]
async fn a_forged_delete_complete_for_a_live_stack_releases_nothing_and_the_next_replacement_still_repoints(
) {
    let b = bound().await;
    let resync = resync_process(&b.w).await;

    let forged = stack_status_event(ACCOUNT, "us-east-1", &b.owner.stack_id, "DELETE_COMPLETE");
    let summary = invoke(&resync, forged).await;

    assert_eq!(summary["released"], 0, "{summary}");
    let refused = refused(&summary);
    assert_eq!(refused.len(), 1, "{summary}");
    assert!(
        refused[0]["cause"]
            .as_str()
            .unwrap()
            .contains("CloudFormation says CREATE_COMPLETE"),
        "{summary}"
    );
    assert_eq!(b.var().await, Some(b.lb_stack.dns.clone()));
    assert_eq!(b.w.registry_items().await.len(), 1);
    let log = resync.process.log_text();
    assert!(log.contains("ForgedStackEnded"), "{log}");
    assert!(log.contains("\"SecurityEvents\":1"), "{log}");

    // The binding still follows its source.
    let new = b.w.replace_elb_stack(&b.lb_stack.name).await;
    let event = stack_status_event(
        ACCOUNT,
        "us-east-1",
        &new.stack_id,
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    );
    let summary = invoke(&resync, event).await;
    assert_eq!(
        summary["changed"].as_array().map(Vec::len),
        Some(1),
        "{summary}"
    );
    assert_eq!(b.var().await, Some(new.dns));
}

#[tokio::test]
async fn an_event_of_another_account_naming_the_hubs_stack_is_refused() {
    let b = bound().await;
    let resync = resync_process(&b.w).await;
    b.w.proxy().reset_counts();

    for (account, region) in [(OTHER_ACCOUNT, "us-east-1"), (ACCOUNT, "eu-west-1")] {
        let forged = stack_status_event(account, region, &b.owner.stack_id, "DELETE_COMPLETE");
        let summary = invoke(&resync, forged).await;
        assert_eq!(summary["released"], 0, "{summary}");
        assert_eq!(refused(&summary).len(), 1, "{summary}");
    }
    // Nothing was even looked up.
    assert_eq!(b.w.proxy().total(), 0);
    assert_eq!(b.var().await, Some(b.lb_stack.dns.clone()));
    assert_eq!(b.w.registry_items().await.len(), 1);
    assert!(resync.process.log_text().contains("ForeignResource"));
}

#[tokio::test]
async fn a_real_delete_complete_still_releases() {
    let b = bound().await;
    let resync = resync_process(&b.w).await;
    b.w.delete_stack(&b.owner.stack_id).await;

    let event = stack_status_event(ACCOUNT, "us-east-1", &b.owner.stack_id, "DELETE_COMPLETE");
    let summary = invoke(&resync, event).await;

    assert_eq!(summary["released"], 1, "{summary}");
    assert!(refused(&summary).is_empty(), "{summary}");
    assert_eq!(b.var().await, None);
    assert!(b.w.registry_items().await.is_empty());
}

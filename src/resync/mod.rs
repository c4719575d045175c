//! Re-sync: from an event to the bindings it can affect, and from there to the stage writes
//! that make every variable match its source again. The shape of a reconcile loop:
//!
//! - [`input`]: what the function is invoked with ([`Input`]) and answers ([`Output`]).
//! - [`trigger`]: events (EventBridge, the schedule, an operator) into a [`Trigger`].
//! - [`lookup`]: the bindings a trigger can affect, from the registry's indexes.
//! - [`reconcile`]: gather facts, plan each stage ([`crate::plan::stage`]), apply the plan.
//! - [`release`]: the bindings of stacks that ended, let go as their Delete would have.
//! - [`summary`]: what was done and every issue met, retryable or not.
//! - [`metrics`]: the summary as one CloudWatch Embedded Metric Format line.
//! - [`fanout`]: the full reconcile as units on a work queue, and the workers that take them.

pub mod fanout;
pub mod input;
pub mod lookup;
pub mod metrics;
pub mod reconcile;
pub mod release;
pub mod rights;
pub mod summary;
pub mod trigger;

pub use input::{Input, Output};
pub use lookup::affected;
pub use reconcile::{plans, reconcile, StageUnreadable};
pub use summary::{Change, Incomplete, Issue, IssueKind, Summary};
pub use trigger::{EventKind, Origin, Trigger, ACTIONABLE_STACK_STATUSES, EVENT_KINDS};

use crate::ports::Record;
use crate::Ports;

/// The `stage-resync` function: an SQS batch of the full reconcile's units is worked
/// ([`fanout::work`], answering the batch's item failures); any other input is handled.
pub async fn invoke(ports: &Ports, input: impl Into<Input>) -> Result<Output, Incomplete> {
    match input.into() {
        Input::Batch(batch) => Ok(Output::Batch(fanout::work(ports, batch).await)),
        Input::MalformedBatch(why) => {
            tracing::error!(error = %why, "malformed SQS batch");
            let mut summary = Summary::new("SqsBatch(malformed)");
            summary.issues.push(Issue {
                stage: "SQS batch".into(),
                variable: None,
                kind: IssueKind::Failed,
                cause: why,
                retryable: false,
            });
            Err(Incomplete(Box::new(summary)))
        }
        other => handle(ports, other)
            .await
            .map(|s| Output::Summary(Box::new(s))),
    }
}

/// Classify, look up, reconcile, emit metrics. With a work queue, the full reconcile sends its
/// units there ([`fanout::plan`]) instead.
pub async fn handle(ports: &Ports, input: impl Into<Input>) -> Result<Summary, Incomplete> {
    let input = input.into();
    let start = std::time::Instant::now();
    let summary = run(ports, &input.trigger(), &input.origin()).await;
    metrics::emit(&summary, start.elapsed());
    tracing::info!(
        trigger = %summary.trigger,
        checked = summary.bindings_checked,
        changed = summary.changed.len(),
        released = summary.released,
        unresolved = summary.unresolved().len(),
        deferred = summary.deferred().len(),
        failures = summary.failures().len(),
        duration_ms = start.elapsed().as_millis() as u64,
        "re-sync done"
    );
    if summary.failures().is_empty() {
        Ok(summary)
    } else {
        Err(Incomplete(Box::new(summary)))
    }
}

/// What a re-sync does for a trigger, the function's and the operator CLI's `sync` alike:
/// release the bindings of owners whose stacks ended, reconcile the rest. With a work queue, the
/// full reconcile sends its units there ([`fanout::plan`]) instead.
pub async fn run(ports: &Ports, trigger: &Trigger, origin: &Origin) -> Summary {
    let mut summary = Summary::new(match (&origin.account, &origin.region) {
        (Some(account), Some(region)) => format!("{trigger:?} in {account}/{region}"),
        _ => format!("{trigger:?}"),
    });
    match (trigger, &ports.queue) {
        (Trigger::Ignored(why), _) => tracing::info!(reason = %why, "event ignored"),
        (Trigger::Refused(why), _) => {
            summary.refuse("ForeignResource", "event", why.clone());
        }
        (Trigger::Everything, Some(queue)) => {
            let planned = fanout::plan(ports, queue.as_ref(), &mut summary).await;
            tracing::info!(
                units = planned.units,
                stages = planned.stages,
                "full reconcile planned"
            );
        }
        _ => match sort(ports, trigger, origin, &mut summary).await {
            Ok(sorted) => settle(ports, sorted, &mut summary).await,
            Err(e) => summary.fail("registry", None, &e),
        },
    }
    summary
}

/// Release the ended, reconcile the live.
async fn settle(ports: &Ports, sorted: Sorted, summary: &mut Summary) {
    summary.merge(release::release(ports, sorted.ended).await);
    summary.merge(reconcile(ports, sorted.live).await);
}

/// The bindings a trigger can affect, sorted by what becomes of them.
#[derive(Debug, Default)]
pub struct Sorted {
    /// Bindings whose owning stack ended (deleted, rolled back after a failed create, or unknown
    /// to CloudFormation): released.
    pub ended: Vec<Record>,
    /// The rest: reconciled.
    pub live: Vec<Record>,
}

/// The bindings a trigger from `origin` can affect, sorted; a stack that could not be asked
/// about is kept live and its failure noted in `summary`.
pub async fn sort(
    ports: &Ports,
    trigger: &Trigger,
    origin: &Origin,
    summary: &mut Summary,
) -> Result<Sorted, crate::ports::RegistryError> {
    let records = lookup::affected_from(ports, trigger, origin).await?;
    Ok(sort_records(ports, trigger, records, summary).await)
}

/// These records, sorted as [`sort`] sorts what a trigger affects.
pub async fn sort_records(
    ports: &Ports,
    trigger: &Trigger,
    records: Vec<Record>,
    summary: &mut Summary,
) -> Sorted {
    let ended = lookup::ended_owners(ports, trigger, &records, summary).await;
    let (ended, live) = records
        .into_iter()
        .partition(|r| ended.contains(&r.owner.stack_id));
    Sorted { ended, live }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::binding;
    use crate::domain::{ApiKind, BindingSpec, Source, SourceKey, StageRef};
    use crate::memory::World;

    const OWNER: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/Api/1";

    fn stage() -> StageRef {
        StageRef::new(ApiKind::Rest, "api", "prod")
    }

    /// A binding of stack `OWNER` that created stage `prod`, beside a variable set by hand.
    async fn bound() -> (World, Ports) {
        let (world, ports) = World::with_ports();
        let spec = BindingSpec {
            stage: stage(),
            create_stage: true,
            variables: BTreeMap::from([("v".to_string(), Source::Literal { value: "1".into() })]),
        };
        binding::create(
            &ports,
            &binding::Request::test(OWNER, "B", &spec, 1),
            binding::trusted(),
        )
        .await
        .unwrap();
        (world, ports)
    }

    /// CloudFormation says the owning stack lives.
    fn lives(world: &World) {
        let mut state = world.state();
        state
            .statuses
            .insert(OWNER.into(), "UPDATE_COMPLETE".into());
    }

    fn ended(status: &str) -> Value {
        json!({
            "version": "0", "id": "1", "detail-type": "CloudFormation Stack Status Change",
            "source": "aws.cloudformation", "account": "123456789012",
            "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": [OWNER],
            "detail": {"stack-id": OWNER, "status-details": {"status": status}}
        })
    }

    #[tokio::test]
    async fn a_deleted_stack_releases_what_it_owns_even_without_its_delete() {
        for status in ["DELETE_COMPLETE", "ROLLBACK_COMPLETE"] {
            let (world, ports) = bound().await;
            let summary = handle(&ports, ended(status)).await.unwrap();
            assert_eq!(summary.released, 1, "{status}: {summary:?}");
            assert!(ports.registry.all().await.unwrap().is_empty());
            assert!(
                !world.state().stages.contains_key(&stage()),
                "{status}: the stage the binding created went with it"
            );
        }
    }

    #[tokio::test]
    async fn a_stack_said_to_have_ended_while_it_lives_keeps_everything_and_is_refused() {
        let (world, ports) = bound().await;
        lives(&world);
        let summary = handle(&ports, ended("DELETE_COMPLETE")).await.unwrap();
        assert_eq!(summary.released, 0, "{summary:?}");
        assert_eq!(summary.refused().len(), 1, "{summary:?}");
        assert!(summary.refused()[0].cause.contains("UPDATE_COMPLETE"));
        assert_eq!(ports.registry.all().await.unwrap().len(), 1);
        assert_eq!(
            world.state().stages[&stage()].get("v").map(String::as_str),
            Some("1")
        );
        let emf = metrics::document(&summary, std::time::Duration::ZERO, 1);
        assert_eq!(emf[crate::emf::SECURITY_EVENTS], 1);
    }

    #[tokio::test]
    async fn a_stack_of_another_account_or_region_is_refused_before_any_lookup() {
        for (account, region) in [("222222222222", "us-east-1"), ("123456789012", "eu-west-1")] {
            let (world, ports) = bound().await;
            let mut event = ended("DELETE_COMPLETE");
            event["account"] = json!(account);
            event["region"] = json!(region);
            let summary = handle(&ports, event).await.unwrap();
            assert_eq!(
                (summary.released, summary.refused().len()),
                (0, 1),
                "{account}/{region}: {summary:?}"
            );
            assert_eq!(ports.registry.all().await.unwrap().len(), 1);
            assert_eq!(world.state().count(crate::ports::op::BY_STACK), 0);
        }
    }

    #[tokio::test]
    async fn a_stack_that_cannot_be_asked_about_keeps_everything_and_the_event_is_retried() {
        let (world, ports) = bound().await;
        world.fail(
            crate::ports::op::STACK_STATUS,
            crate::ports::ErrorKind::Throttled,
            1,
        );
        let failed = handle(&ports, ended("DELETE_COMPLETE")).await.unwrap_err();
        assert!(failed.retryable(), "{failed}");
        assert_eq!(failed.0.released, 0);
        assert_eq!(ports.registry.all().await.unwrap().len(), 1);
    }

    fn vpc_link_call(event_name: &str, request: Value) -> Value {
        json!({
            "version": "0", "id": "2", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.apigateway", "account": "123456789012",
            "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "eventVersion": "1.09", "eventTime": "2026-11-25T12:00:00Z",
                "eventSource": "apigateway.amazonaws.com", "eventName": event_name,
                "awsRegion": "us-east-1", "sourceIPAddress": "cloudformation.amazonaws.com",
                "userAgent": "cloudformation.amazonaws.com",
                "userIdentity": {"type": "AssumedRole", "accountId": "123456789012"},
                "requestParameters": request, "responseElements": null,
                "requestID": "3", "eventID": "4", "eventType": "AwsApiCall"
            }
        })
    }

    /// `vpcLinkId` bound to the link of load balancer `nlb`, whose link `l1` is deleted.
    async fn bound_to_a_deleted_link() -> (World, Ports, crate::ports::LoadBalancer) {
        use crate::domain::LinkStatus;
        let (world, ports) = World::with_ports();
        let nlb = world.state().add_load_balancer("nlb", 1);
        let arn = nlb.arn.clone().unwrap();
        world
            .state()
            .add_rest_link("l1", &arn, LinkStatus::Available);
        let spec = BindingSpec {
            stage: stage(),
            create_stage: true,
            variables: BTreeMap::from([(
                "vpcLinkId".to_string(),
                Source::VpcLinkFor {
                    target: Box::new(Source::LoadBalancer {
                        name: arn,
                        at: Default::default(),
                    }),
                },
            )]),
        };
        binding::create(
            &ports,
            &binding::Request::test(OWNER, "B", &spec, 1),
            binding::trusted(),
        )
        .await
        .unwrap();
        world.state().links.retain(|l| l.id != "l1");
        (world, ports, nlb)
    }

    #[tokio::test]
    async fn a_deleted_vpc_link_finds_the_bindings_whose_value_it_was_in_one_query() {
        use crate::domain::LinkStatus;
        use crate::ports::op;
        // A new link serves the same load balancer: the value moves to it.
        let (world, ports, nlb) = bound_to_a_deleted_link().await;
        world
            .state()
            .add_rest_link("l2", nlb.arn.as_ref().unwrap(), LinkStatus::Available);
        let counts = || {
            let s = world.state();
            (s.count(op::BY_VIA), s.count(op::BY_SOURCE))
        };
        let (by_via, by_source) = counts();
        let moved = handle(
            &ports,
            vpc_link_call("DeleteVpcLink", json!({"vpcLinkId": "l1"})),
        )
        .await
        .unwrap();
        assert_eq!(moved.changed.len(), 1, "{moved:?}");
        assert_eq!(world.state().stages[&stage()]["vpcLinkId"], "l2");
        assert_eq!(counts(), (by_via + 1, by_source), "one query, by the link");
        let record = ports.registry.all().await.unwrap().remove(0);
        assert_eq!(record.via, Some(SourceKey::VpcLink("l2".into())));

        // No link serves it any more: the value is kept and the binding reported.
        let (world, ports, _) = bound_to_a_deleted_link().await;
        let kept = handle(
            &ports,
            vpc_link_call("DeleteVpcLink", json!({"vpcLinkId": "l1"})),
        )
        .await
        .unwrap();
        assert!(kept.changed.is_empty(), "{kept:?}");
        let unresolved = kept.unresolved();
        assert_eq!(unresolved.len(), 1, "{kept:?}");
        assert!(unresolved[0].cause.contains("no REST VPC link"), "{kept:?}");
        assert_eq!(world.state().stages[&stage()]["vpcLinkId"], "l1");
    }

    #[tokio::test]
    async fn a_vpc_link_created_for_a_load_balancer_re_syncs_its_bindings() {
        use crate::domain::LinkStatus;
        let (world, ports, nlb) = bound_to_a_deleted_link().await;
        let arn = nlb.arn.clone().unwrap();
        world
            .state()
            .add_rest_link("l2", &arn, LinkStatus::Available);
        let moved = handle(
            &ports,
            vpc_link_call("CreateVpcLink", json!({"name": "l2", "targetArns": [arn]})),
        )
        .await
        .unwrap();
        assert_eq!(moved.changed.len(), 1, "{moved:?}");
        assert_eq!(world.state().stages[&stage()]["vpcLinkId"], "l2");
    }

    #[tokio::test]
    async fn the_full_reconcile_releases_the_bindings_of_stacks_that_are_gone() {
        let (world, ports) = bound().await;
        lives(&world);
        let kept = handle(&ports, json!({"resync": "all"})).await.unwrap();
        assert_eq!(kept.released, 0);
        assert_eq!(ports.registry.all().await.unwrap().len(), 1);

        // The stack is gone (no status known any more): what it owned goes.
        world.state().statuses.clear();
        let gone = handle(&ports, json!({"resync": "all"})).await.unwrap();
        assert_eq!(gone.released, 1, "{gone:?}");
        assert!(ports.registry.all().await.unwrap().is_empty());
    }
}

//! The full reconcile, fanned out over a work queue (SQS).
//!
//! - [`plan`] (the schedule's invocation): reads the registry's keys a page at a time
//!   ([`crate::ports::Registry::stage_page`], a keys-only Scan) and sends one [`Unit`] per API
//!   with the stages that hold bindings. It holds one page and the names of the bound stages:
//!   at most API Gateway's quota of APIs times stages per API, whatever the number of bindings.
//! - [`work`] (an SQS batch): each unit's records, read stage by stage, go through the same
//!   release and [`super::reconcile`] as any other trigger. A unit with failures, or a message
//!   that is not a unit, is reported in `batchItemFailures`: SQS delivers it again after the
//!   visibility timeout and, after the queue's `maxReceiveCount`, moves it to the dead-letter
//!   queue. Every invocation paces API Gateway at its share of the account's quota
//!   ([`crate::aws::pace::Pacer::apigateway_share`]).

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use super::{metrics, Summary, Trigger};
use crate::domain::ApiKind;
use crate::ports::{Unit, WorkQueue};
use crate::Ports;

/// Units sent per call to the queue.
const SEND_BATCH: usize = 10;

/// What the planner sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planned {
    pub units: usize,
    pub stages: usize,
}

/// Send one unit per API of the registry to `queue`; failures go into `summary`. The stages
/// are gathered over every page first: pages come in the table's order, not by API.
pub async fn plan(ports: &Ports, queue: &dyn WorkQueue, summary: &mut Summary) -> Planned {
    let mut planned = Planned::default();
    let mut apis: BTreeMap<(ApiKind, String), BTreeSet<String>> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = match ports.registry.stage_page(after.as_ref()).await {
            Ok(page) => page,
            Err(e) => return failed(summary, "registry", &e, planned),
        };
        for stage in page.stages {
            apis.entry((stage.kind, stage.api_id))
                .or_default()
                .insert(stage.stage);
        }
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let units: Vec<Unit> = apis
        .into_iter()
        .map(|((kind, api_id), stages)| Unit {
            kind,
            api_id,
            stages: stages.into_iter().collect(),
        })
        .collect();
    for chunk in units.chunks(SEND_BATCH) {
        if let Err(e) = queue.send(chunk).await {
            return failed(summary, "work queue", &e, planned);
        }
        planned.units += chunk.len();
        planned.stages += chunk.iter().map(|u| u.stages.len()).sum::<usize>();
    }
    planned
}

fn failed(
    summary: &mut Summary,
    what: &str,
    e: &(impl std::fmt::Display + super::summary::Retryable),
    planned: Planned,
) -> Planned {
    tracing::error!(error = %e, units_sent = planned.units, "planning the full reconcile failed");
    summary.fail(what, None, e);
    planned
}

/// A message's unit, or why it is not one.
pub fn unit(message: &SqsMessage) -> Result<Unit, String> {
    let body = message.body.as_deref().ok_or("the message has no body")?;
    let unit: Unit = serde_json::from_str(body).map_err(|e| {
        format!("not a unit of the full reconcile ({e}): expected {{\"kind\": \"rest\"|\"http\", \"api_id\": ..., \"stages\": [...]}}")
    })?;
    if unit.api_id.is_empty() || unit.stages.is_empty() {
        return Err("a unit names an API and at least one stage".into());
    }
    Ok(unit)
}

/// Reconcile each unit of an SQS batch; the messages of units with failures, and messages that
/// are not units, are the batch's item failures.
pub async fn work(ports: &Ports, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let start = std::time::Instant::now();
        let summary = match unit(&message) {
            Ok(unit) => reconcile_unit(ports, &unit).await,
            Err(why) => {
                tracing::error!(message_id = %id, error = %why, "malformed work message: left to SQS's retries and the dead-letter queue");
                let mut s = Summary::new("Unit(malformed)");
                s.issues.push(super::Issue {
                    stage: format!("message {id}"),
                    variable: None,
                    kind: super::IssueKind::Failed,
                    cause: why,
                    retryable: false,
                });
                s
            }
        };
        metrics::emit(&summary, start.elapsed());
        let failures = summary.failures().len();
        tracing::info!(message_id = %id, trigger = %summary.trigger, checked = summary.bindings_checked, changed = summary.changed.len(), released = summary.released, failures, duration_ms = start.elapsed().as_millis() as u64, "unit done");
        if failures > 0 {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            response.batch_item_failures.push(f);
        }
    }
    response
}

/// One unit: its records, then what the full reconcile does with them.
async fn reconcile_unit(ports: &Ports, unit: &Unit) -> Summary {
    let mut summary = Summary::new(format!("Unit({} {})", unit.kind.as_str(), unit.api_id));
    let mut records = Vec::new();
    for stage in unit.stage_refs() {
        match ports.registry.by_stage(&stage).await {
            Ok(r) => records.extend(r),
            Err(e) => summary.fail(&stage, None, &e),
        }
    }
    let sorted = super::sort_records(ports, &Trigger::Everything, records, &mut summary).await;
    super::settle(ports, sorted, &mut summary).await;
    summary
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::binding;
    use crate::domain::{ApiKind, BindingSpec, Source, StageRef};
    use crate::memory::World;
    use crate::ports::{op, PAGE_KEYS};

    /// `apis` APIs with `stages` stages each, `vars` literal variables per stage.
    async fn world(apis: usize, stages: usize, vars: usize) -> (World, Ports) {
        let (world, ports) = World::with_ports();
        for a in 0..apis {
            for s in 0..stages {
                let spec = BindingSpec {
                    stage: StageRef::new(ApiKind::Rest, format!("api{a:03}"), format!("s{s}")),
                    create_stage: true,
                    variables: (0..vars)
                        .map(|v| (format!("v{v}"), Source::Literal { value: "x".into() }))
                        .collect::<BTreeMap<_, _>>(),
                };
                binding::create(
                    &ports,
                    &binding::Request::test("stack/A", &format!("B{a}x{s}"), &spec, 1),
                    binding::trusted(),
                )
                .await
                .unwrap();
            }
        }
        (world, ports)
    }

    #[tokio::test]
    async fn the_planner_sends_each_api_once_with_all_its_stages_across_pages() {
        // 7 APIs x 3 stages x 99 variables: 2,079 records, three pages, each ending within a
        // stage's records.
        let (world, ports) = world(7, 3, 99).await;
        assert!(world.state().registry.len() > 2 * PAGE_KEYS);
        let mut summary = Summary::default();

        // The pages meet the stages of an API apart, as a Scan does.
        let mut runs: Vec<String> = Vec::new();
        let mut after = None;
        loop {
            let page = ports.registry.stage_page(after.as_ref()).await.unwrap();
            for stage in page.stages {
                if runs.last() != Some(&stage.api_id) {
                    runs.push(stage.api_id);
                }
            }
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert!(runs.len() > 7, "every API's stages together: {runs:?}");

        let planned = plan(&ports, world.queue().as_ref(), &mut summary).await;

        assert!(summary.issues.is_empty(), "{summary:?}");
        assert_eq!(
            planned,
            Planned {
                units: 7,
                stages: 21
            }
        );
        let s = world.state();
        assert_eq!(s.count(op::STAGE_PAGE), 6, "three pages, read twice");
        assert_eq!(s.count(op::SEND_UNITS), 1, "seven units, one batch");
        for (a, u) in s.units.iter().enumerate() {
            assert_eq!(u.api_id, format!("api{a:03}"));
            assert_eq!(u.stages, ["s0", "s1", "s2"]);
        }
    }

    #[tokio::test]
    async fn a_worker_reconciles_its_unit_and_reports_what_is_not_a_unit() {
        let (world, ports) = world(2, 2, 1).await;
        // Drift on both APIs; only api000's unit comes.
        for stage in world.state().stages.values_mut() {
            stage.insert("v0".into(), "drifted".into());
        }
        let unit = serde_json::json!({"kind": "rest", "api_id": "api000", "stages": ["s0", "s1"]});
        let event = serde_json::json!({"Records": [
            {"messageId": "good", "body": unit.to_string(), "eventSource": "aws:sqs"},
            {"messageId": "bad", "body": "{\"api\": 1}", "eventSource": "aws:sqs"},
        ]});

        let super::super::Input::Batch(batch) = event.into() else {
            panic!("an SQS batch")
        };
        let response = work(&ports, batch).await;

        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["bad"]);
        let s = world.state();
        let value = |api: &str, stage: &str| {
            s.stages[&StageRef::new(ApiKind::Rest, api, stage)]["v0"].clone()
        };
        assert_eq!(
            (value("api000", "s0"), value("api000", "s1")),
            ("x".into(), "x".into())
        );
        assert_eq!(value("api001", "s0"), "drifted", "not its unit");
    }
}

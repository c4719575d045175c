//! The full reconcile fanned out, end to end: the real `stage-resync` binary plans (the
//! schedule's event) and sends one unit per API to moto's SQS; the devkit plays the SQS event
//! source mapping, invoking real `stage-resync` processes with batches at a set concurrency;
//! API Gateway's account quotas are enforced by the fault proxy in front of moto.

use std::time::Duration;

use serde_json::Value;
use stagewire::domain::{ApiKind, Source, StageRef};
use stagewire::ports::Record;
use stagewire_devkit::event_source::{self, EventSource};

use crate::support::{owner_of, unique, written, World};

/// The event source's maximum concurrency.
const WORKERS: usize = 4;
/// APIs with bindings, two stages each: one `GetStages` and two `UpdateStage` per API, far
/// more API Gateway calls than the account's burst.
const APIS: usize = 30;

fn scheduled_event() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/events/scheduled-event.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Two variables on `stage` of `api`, bound to literals `new`, the stage holding `old`.
fn records(api: &str, stage: &str, stack_id: &str) -> Vec<Record> {
    let physical_id = format!("stagewire:rest:{api}:{stage}:Binding");
    ["a", "b"]
        .iter()
        .map(|v| {
            let source = Source::Literal {
                value: "new".into(),
            };
            written(
                (StageRef::new(ApiKind::Rest, api, stage), (*v).into()),
                owner_of(stack_id, "Binding", &physical_id),
                source,
                "old",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_full_reconcile_fans_out_to_paced_workers_and_a_bad_message_ends_in_the_dead_letter_queue(
) {
    let w = World::new().await;
    let proxy = w.proxy();
    let owner = w.owning_stack().await;
    let mut apis = Vec::new();
    let mut all = Vec::new();
    for _ in 0..APIS {
        let api = w.rest_api().await;
        for stage in ["dev", "prod"] {
            w.deploy_stage(&api, stage, &[("a", "old"), ("b", "old")])
                .await;
            all.extend(records(&api, stage, &owner.stack_id));
        }
        apis.push(api);
    }
    w.load_records(&all).await;
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    // Failed messages come back after 15 s (longer than any invocation here, as SQS's event
    // source requires) and go to the dead-letter queue after two receives.
    let queues = event_source::create_queues(&sqs, &unique("units"), Duration::from_secs(15), 2)
        .await
        .unwrap();
    let env = w.function_env(&[
        ("STAGEWIRE_RECONCILE_QUEUE", queues.url.as_str()),
        ("STAGEWIRE_RECONCILE_WORKERS", &WORKERS.to_string()),
    ]);
    let launch = || crate::support::launch("stage-resync", &env);

    // The schedule: the planner sends one unit per API.
    let planner = launch().await;
    let planned = planner
        .api
        .invoke(scheduled_event(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(planned.response().is_some(), "{planned:?}");
    assert!(
        planner
            .process
            .wait_for_log(&format!("units={APIS}"), Duration::from_secs(30))
            .await,
        "{}",
        planner.process.log_text()
    );
    assert_eq!(
        event_source::depth(&sqs, &queues.url).await.unwrap(),
        (APIS as u64, 0)
    );
    // A message that is not a unit.
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body("{\"resync\": \"all\"}")
        .send()
        .await
        .unwrap();

    // The workers, behind API Gateway's account quotas.
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(launch().await);
    }
    proxy.reset_counts();
    proxy.enforce_apigateway_quotas();
    let source = EventSource {
        client: sqs.clone(),
        queues: queues.clone(),
        batch_size: 2,
        function_timeout: Duration::from_secs(120),
    };
    let apis_ = workers.iter().map(|f| &f.api).collect::<Vec<_>>();
    let delivered = source
        .drain(&apis_, Duration::from_secs(600))
        .await
        .unwrap();
    proxy.lift_apigateway_quotas();
    let logs: String = workers.iter().map(|f| f.process.log_text()).collect();

    for api in &apis {
        for stage in ["dev", "prod"] {
            let vars = w.stage_vars(api, stage).await.unwrap();
            assert_eq!(
                (vars["a"].as_str(), vars["b"].as_str()),
                ("new", "new"),
                "{api} {stage}: {delivered:?}\n{logs}"
            );
        }
    }
    assert!(w
        .registry_items()
        .await
        .iter()
        .all(|r| r.value.as_deref() == Some("new")));
    assert_eq!(
        proxy.over_quota(),
        0,
        "the workers together stayed within the account's quota"
    );
    let apigateway: u64 = proxy
        .counts()
        .iter()
        .filter(|((service, _), _)| service == "apigateway")
        .map(|(_, n)| n)
        .sum();
    assert!(
        apigateway >= 3 * APIS as u64,
        "one GetStages and two UpdateStage per API: {:?}",
        proxy.counts()
    );
    assert_eq!(
        delivered
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        WORKERS
    );
    // The bad message: reported as failed at each of its two receives, then moved.
    assert_eq!(
        delivered
            .item_failures
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    let dead = sqs
        .receive_message()
        .queue_url(&queues.dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["{\"resync\": \"all\"}"]);
    assert!(
        logs.contains("malformed work message")
            && logs.contains("not a unit of the full reconcile"),
        "{logs}"
    );
}

//! Every sample event in `events/` parses as the function it is meant for would parse it.
//!
//! The directory is listed, not named file by file: a new sample without an expectation here
//! fails the test, so none goes unchecked. `cfn-*.json` are `Custom::StageBinding` requests for
//! `stage-binding`; `sqs-*.json` are SQS batches of the full reconcile's units, each of whose
//! messages must be the unit listed below; every other file is an event for `stage-resync` and
//! must classify to the exact trigger listed below.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagewire::cfn::{self, RequestType};
use stagewire::ports::Unit;
use stagewire::props;
use stagewire::resync::{fanout, Input, Trigger};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// Every `*.json` file of `events/`, by file name.
fn samples() -> BTreeMap<String, Value> {
    let dir = events_dir();
    let mut samples = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
        samples.insert(name, value);
    }
    samples
}

/// The custom-resource samples: file name -> (RequestType, whether the Update replaces the
/// binding).
fn cfn_expectations() -> BTreeMap<&'static str, (RequestType, bool)> {
    BTreeMap::from([
        ("cfn-create.json", (RequestType::Create, false)),
        ("cfn-update.json", (RequestType::Update, false)),
        ("cfn-update-replacement.json", (RequestType::Update, true)),
        ("cfn-delete.json", (RequestType::Delete, false)),
    ])
}

/// The re-sync samples: file name -> the trigger `classify` must return.
fn resync_expectations() -> BTreeMap<&'static str, Trigger> {
    let lb = |name: &str, deleted: bool| Trigger::LoadBalancer {
        name: name.into(),
        deleted,
    };
    let helloworld = || Trigger::EcsService {
        cluster: "prod".into(),
        service: "helloworld".into(),
    };
    BTreeMap::from([
        (
            "stack-status-change.json",
            Trigger::Stack("EcsHelloworldProd".into()),
        ),
        (
            "stack-status-cleanup.json",
            Trigger::Stack("EcsHelloworldProd".into()),
        ),
        (
            "member-stack-status-cleanup.json",
            Trigger::Stack("EcsOrders".into()),
        ),
        (
            "elbv2-create-load-balancer.json",
            lb("EcsHel-LoadB-7HQ3N5R8TV2C1", false),
        ),
        (
            "elbv2-delete-load-balancer.json",
            lb("EcsHel-LoadB-1KX2Q7W9ZP3M4", true),
        ),
        (
            "classic-delete-load-balancer.json",
            lb("helloworld-legacy", true),
        ),
        (
            "vpc-link-create.json",
            lb("EcsHel-Priva-5TQ8M2K4WX7N1", false),
        ),
        (
            "vpc-link-delete.json",
            Trigger::VpcLinkDeleted {
                id: "q4m8t2".into(),
            },
        ),
        ("ecs-deployment-state-change.json", helloworld()),
        ("scheduled-event.json", Trigger::Everything),
        ("manual-resync-all.json", Trigger::Everything),
        (
            "manual-resync-stack.json",
            Trigger::Stack("EcsHelloworldProd".into()),
        ),
    ])
}

/// The work-queue samples: file name -> the unit of each message.
fn sqs_expectations() -> BTreeMap<&'static str, Vec<Unit>> {
    BTreeMap::from([(
        "sqs-reconcile-units.json",
        vec![Unit {
            kind: stagewire::domain::ApiKind::Rest,
            api_id: "a1b2c3d4e5".into(),
            stages: vec!["dev".into(), "prod".into()],
        }],
    )])
}

#[test]
fn every_sample_has_an_expectation_and_every_expectation_a_sample() {
    let samples = samples();
    let cfn = cfn_expectations();
    let resync = resync_expectations();
    let sqs = sqs_expectations();
    for name in samples.keys() {
        assert!(
            cfn.contains_key(name.as_str())
                || resync.contains_key(name.as_str())
                || sqs.contains_key(name.as_str()),
            "events/{name} has no expectation in tests/integration/events.rs: add one"
        );
        assert_eq!(
            name.starts_with("cfn-"),
            cfn.contains_key(name.as_str()),
            "events/{name}: cfn-*.json are exactly the custom-resource requests"
        );
    }
    for name in cfn.keys().chain(resync.keys()).chain(sqs.keys()) {
        assert!(samples.contains_key(*name), "events/{name} is missing");
    }
}

#[test]
fn custom_resource_samples_decode() {
    let expectations = cfn_expectations();
    for (name, event) in samples().iter().filter(|(n, _)| n.starts_with("cfn-")) {
        let Some(&(request_type, replacement)) = expectations.get(name.as_str()) else {
            panic!("events/{name} has no expectation");
        };
        let envelope = cfn::decode(event)
            .unwrap_or_else(|m| panic!("events/{name} does not decode: {}", m.reason));
        assert_eq!(envelope.request_type, request_type, "events/{name}");
        assert!(
            envelope.response_url.expose().starts_with("https://"),
            "events/{name}: the ResponseURL is a presigned https URL"
        );
        let spec = props::parse(&envelope.properties)
            .unwrap_or_else(|e| panic!("events/{name}: ResourceProperties: {e}"))
            .spec;
        assert_eq!(
            envelope.ids.physical_id.is_some(),
            request_type != RequestType::Create,
            "events/{name}: a PhysicalResourceId exactly on Update and Delete"
        );
        if let Some(old) = &envelope.old_properties {
            let old_spec = props::parse(old)
                .unwrap_or_else(|e| panic!("events/{name}: OldResourceProperties: {e}"))
                .spec;
            let physical_id = envelope.ids.physical_id.as_deref().unwrap();
            assert_eq!(
                old_spec.physical_id(&envelope.ids.logical_id),
                physical_id,
                "events/{name}: the PhysicalResourceId is the one the old properties gave"
            );
            assert_eq!(
                spec.physical_id(&envelope.ids.logical_id) != physical_id,
                replacement,
                "events/{name}: replacement = {replacement}"
            );
        } else {
            assert!(!replacement, "events/{name}: a replacement is an Update");
            assert_ne!(
                request_type,
                RequestType::Update,
                "events/{name}: an Update carries OldResourceProperties"
            );
        }
    }
}

#[test]
fn resync_samples_classify() {
    let expectations = resync_expectations();
    for (name, event) in samples()
        .iter()
        .filter(|(n, _)| !n.starts_with("cfn-") && !n.starts_with("sqs-"))
    {
        let Some(expected) = expectations.get(name.as_str()) else {
            panic!("events/{name} has no expectation");
        };
        let trigger = Input::from(event.clone()).trigger();
        assert!(
            !matches!(trigger, Trigger::Ignored(_)),
            "events/{name} is ignored: {trigger:?}"
        );
        assert_eq!(&trigger, expected, "events/{name}");
    }
}

/// Every EventBridge sample says where it happened; a member's forwarded event keeps its own
/// account and region, an operator's request names none.
#[test]
fn samples_carry_their_account_and_region() {
    use stagewire::resync::Origin;
    let at = |account: &str, region: &str| Origin {
        account: Some(account.into()),
        region: Some(region.into()),
    };
    for (name, event) in samples() {
        if name.starts_with("cfn-") || name.starts_with("sqs-") {
            continue;
        }
        let expected = if name.starts_with("manual-") {
            Origin::default()
        } else if name.starts_with("member-") {
            at("222222222222", "eu-west-1")
        } else {
            at("123456789012", "us-east-1")
        };
        assert_eq!(Input::from(event.clone()).origin(), expected, "{name}");
    }
}

#[test]
fn work_queue_samples_are_batches_of_units() {
    let expectations = sqs_expectations();
    for (name, event) in samples().iter().filter(|(n, _)| n.starts_with("sqs-")) {
        let batch = match Input::from(event.clone()) {
            Input::Batch(batch) => batch,
            other => panic!("events/{name} is not an SQS batch: {other:?}"),
        };
        let units: Vec<Unit> = batch
            .records
            .iter()
            .map(|m| fanout::unit(m).unwrap_or_else(|e| panic!("events/{name}: {e}")))
            .collect();
        assert_eq!(&units, &expectations[name.as_str()], "events/{name}");
    }
}

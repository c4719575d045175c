//! Properties of the custom-resource protocol over generated inputs: decoding any event that
//! carries a ResponseURL leaves somewhere to answer, every response body is valid, bounded JSON,
//! property parsing never panics and only accepts valid names, and the real handler answers
//! every malformed event exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use stagewire::cfn::{self, Ids, Outcome, Status, MAX_RESPONSE_BYTES};
use stagewire::domain::Source;
use stagewire::domain::{validate_stage_name, validate_variable_name, validate_variable_value};
use stagewire_devkit::receiver::{check_document, ResponseReceiver};

const CASES: u32 = 256;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Short strings over arbitrary unicode, control characters included.
fn short_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,12}",
        proptest::collection::vec(any::<char>(), 0..24).prop_map(|c| c.into_iter().collect()),
        Just(String::new()),
    ]
}

/// Identifiers of any length up to about 10 KB: ASCII, multibyte and control characters.
fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => short_text(),
        1 => proptest::collection::vec(any::<char>(), 0..2600).prop_map(|c| c.into_iter().collect()),
        1 => (0usize..10_240, prop_oneof![Just('a'), Just('é'), Just('\u{1}'), Just('😀'), Just('"')])
            .prop_map(|(n, c)| std::iter::repeat_n(c, n / c.len_utf8().max(1)).collect()),
    ]
}

/// Arbitrary JSON of bounded depth and breadth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        short_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(short_text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for one envelope field: usually a string, sometimes another JSON type, or absent.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => id_text().prop_map(|s| Some(Value::String(s))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn request_type() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => prop_oneof![Just("Create"), Just("Update"), Just("Delete")]
            .prop_map(|s| Some(Value::String(s.into()))),
        1 => short_text().prop_map(|s| Some(Value::String(s))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

/// ResourceProperties that look like a binding's, with random parts.
fn resource_properties() -> impl Strategy<Value = Value> {
    // Mostly plausible names, sometimes anything.
    let text = || prop_oneof![3 => "[a-zA-Z0-9-]{1,20}", 1 => short_text()];
    let variables = proptest::collection::btree_map(
        prop_oneof![8 => "[a-zA-Z0-9_]{1,16}", 1 => short_text()],
        prop_oneof![
            3 => (text(), text())
                .prop_map(|(s, o)| serde_json::json!({"StackName": s, "OutputKey": o})),
            2 => (text(), text())
                .prop_map(|(c, s)| serde_json::json!({"Cluster": c, "Service": s})),
            2 => text().prop_map(|l| serde_json::json!({"LoadBalancer": l})),
            2 => text().prop_map(|v| serde_json::json!({"Value": v})),
            1 => json_value(),
        ],
        1..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        3 => (
            prop_oneof![
                8 => "[a-z0-9]{1,10}".prop_map(Value::String),
                1 => short_text().prop_map(Value::String),
                1 => json_value(),
            ],
            prop_oneof![
                8 => "[a-zA-Z0-9_-]{1,12}".prop_map(Value::String),
                1 => short_text().prop_map(Value::String),
                1 => json_value(),
            ],
            prop_oneof![
                4 => prop_oneof![Just("true"), Just("false")].prop_map(|b| Value::String(b.into())),
                4 => any::<bool>().prop_map(Value::Bool),
                1 => json_value(),
            ],
            variables,
            proptest::option::weighted(0.1, json_value()),
        )
            .prop_map(|(api, stage, create, vars, extra)| {
                let mut m = Map::new();
                m.insert("RestApiId".into(), api);
                m.insert("StageName".into(), stage);
                m.insert("CreateStage".into(), create);
                m.insert("Variables".into(), vars);
                if let Some(extra) = extra {
                    m.insert("Extra".into(), extra);
                }
                Value::Object(m)
            }),
        1 => json_value(),
    ]
}

/// A custom-resource event with a non-empty string ResponseURL and everything else random.
fn event_with_url(url: impl Strategy<Value = String>) -> impl Strategy<Value = Value> {
    (
        url,
        request_type(),
        [field(), field(), field(), field(), field()],
        proptest::option::of(resource_properties()),
        proptest::option::of(resource_properties()),
        proptest::collection::btree_map(short_text(), json_value(), 0..4),
    )
        .prop_map(|(url, rt, fields, props, old, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            let names = [
                "StackId",
                "RequestId",
                "LogicalResourceId",
                "PhysicalResourceId",
                "ResourceType",
            ];
            for (name, value) in names.iter().zip(fields) {
                if let Some(v) = value {
                    m.insert((*name).into(), v);
                }
            }
            if let Some(rt) = rt {
                m.insert("RequestType".into(), rt);
            }
            if let Some(p) = props {
                m.insert("ResourceProperties".into(), p);
            }
            if let Some(p) = old {
                m.insert("OldResourceProperties".into(), p);
            }
            m.insert("ResponseURL".into(), Value::String(url));
            Value::Object(m)
        })
}

fn any_url() -> impl Strategy<Value = String> {
    prop_oneof![
        "https://cloudformation-custom-resource-response-useast1\\.s3\\.amazonaws\\.com/[a-zA-Z0-9%/]{1,40}\\?X-Amz-Signature=[0-9a-f]{64}",
        id_text().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

/// A well-formed custom-resource event (it decodes), with random ids and properties.
fn valid_event() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("Create"), Just("Update"), Just("Delete")],
        "[a-zA-Z0-9:/-]{1,60}",
        "[a-f0-9-]{1,36}",
        "[A-Za-z0-9]{1,40}",
        "[a-zA-Z0-9:_-]{1,60}",
        resource_properties(),
    )
        .prop_map(|(rt, stack, request, logical, physical, props)| {
            let mut m = Map::new();
            m.insert("RequestType".into(), Value::String(rt.into()));
            m.insert(
                "ResponseURL".into(),
                Value::String("https://cfn-response.s3.amazonaws.com/x?X-Amz-Signature=ab".into()),
            );
            m.insert("StackId".into(), Value::String(stack));
            m.insert("RequestId".into(), Value::String(request));
            m.insert("LogicalResourceId".into(), Value::String(logical));
            m.insert(
                "ResourceType".into(),
                Value::String("Custom::StageBinding".into()),
            );
            m.insert("ResourceProperties".into(), props.clone());
            if rt != "Create" {
                m.insert("PhysicalResourceId".into(), Value::String(physical));
            }
            if rt == "Update" {
                m.insert("OldResourceProperties".into(), props);
            }
            Value::Object(m)
        })
}

/// The checks every response body must pass.
fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        body.len() <= MAX_RESPONSE_BYTES,
        "body is {} bytes",
        body.len()
    );
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("body is not JSON: {e}")))?;
    // Among them: Status is SUCCESS or FAILED, and the four ids are non-empty strings.
    let violations = check_document(&doc);
    prop_assert!(violations.is_empty(), "{violations:?}");
    Ok(())
}

fn ids() -> impl Strategy<Value = Ids> {
    (
        id_text(),
        id_text(),
        id_text(),
        proptest::option::of(id_text()),
    )
        .prop_map(|(stack_id, request_id, logical_id, physical_id)| Ids {
            stack_id,
            request_id,
            logical_id,
            physical_id,
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let reason = prop_oneof![
        Just(None),
        id_text().prop_map(Some),
        proptest::collection::vec(any::<char>(), 0..5200)
            .prop_map(|c| Some(c.into_iter().collect::<String>())),
        (0usize..20_480).prop_map(|n| Some("\u{7}é\"".repeat(n / 4))),
    ];
    let data = prop_oneof![
        proptest::collection::btree_map(short_text(), short_text(), 0..300),
        proptest::collection::btree_map(short_text(), id_text(), 0..8),
    ];
    // The handler always gives a FAILED outcome a non-empty Reason.
    (any::<bool>(), reason, id_text(), data).prop_map(|(ok, reason, physical_id, data)| {
        let status = if ok { Status::Success } else { Status::Failed };
        let reason = match (status, reason) {
            (Status::Failed, None) => Some("failed".to_string()),
            (Status::Failed, Some(r)) if r.is_empty() => Some("failed".to_string()),
            (_, r) => r,
        };
        Outcome {
            status,
            reason,
            physical_id,
            data,
        }
    })
}

fn failed(ids: &Ids) -> Outcome {
    Outcome {
        status: Status::Failed,
        reason: Some("malformed".into()),
        physical_id: ids.physical_id.clone().unwrap_or_default(),
        data: BTreeMap::new(),
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn an_event_with_a_response_url_always_leaves_somewhere_to_answer(event in event_with_url(any_url())) {
        let expected_url = event["ResponseURL"].as_str().unwrap_or_default().to_string();
        match cfn::decode(&event) {
            Ok(envelope) => {
                prop_assert_eq!(envelope.response_url.expose(), expected_url.as_str());
                check_body(&cfn::response_body(&envelope.ids, &failed(&envelope.ids)))?;
            }
            Err(m) => {
                let Some((url, ids, _)) = m.respond_to else {
                    return Err(TestCaseError::fail(format!("no respond_to for {event}")));
                };
                prop_assert_eq!(url.expose(), expected_url.as_str());
                // A pre-signed URL never shows in the Reason (an arbitrary short string like "n"
                // may of course occur in any text).
                if expected_url.contains("X-Amz-Signature=") {
                    prop_assert!(!m.reason.contains(&expected_url), "reason carries the URL");
                }
                check_body(&cfn::response_body(&ids, &failed(&ids)))?;
            }
        }
    }

    #[test]
    fn every_response_body_is_valid_bounded_json(ids in ids(), outcome in outcome()) {
        check_body(&cfn::response_body(&ids, &outcome))?;
    }

    #[test]
    fn a_success_carrying_exactly_the_data_limit_keeps_its_data(
        ids in ids(),
        physical_id in id_text(),
        key in "[A-Za-z]{1,12}",
        fill in prop_oneof![Just('a'), Just('é'), Just('😀')],
    ) {
        let limit = cfn::data_limit(&ids, &physical_id);
        // One Data entry whose JSON object (`{"key":"value"}`, as the binding measures it)
        // weighs exactly `limit` bytes.
        let overhead = r#"{"":""}"#.len() + key.len();
        prop_assume!(limit > overhead + fill.len_utf8());
        let room = limit - overhead;
        let mut value: String = std::iter::repeat_n(fill, room / fill.len_utf8()).collect();
        value.extend(std::iter::repeat_n('a', room - value.len()));
        let data = BTreeMap::from([(key.clone(), value.clone())]);
        prop_assert_eq!(serde_json::to_vec(&data).unwrap().len(), limit);
        let outcome = Outcome {
            status: Status::Success,
            reason: None,
            physical_id,
            data,
        };
        let body = cfn::response_body(&ids, &outcome);
        check_body(&body)?;
        let doc: Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(doc["Status"].as_str(), Some("SUCCESS"));
        prop_assert_eq!(
            doc["Data"][key.as_str()].as_str(),
            Some(value.as_str()),
            "the Data was dropped or cut at the limit of {} bytes",
            limit
        );
    }

    #[test]
    fn a_valid_event_without_a_response_url_is_a_clean_error(
        event in valid_event(),
        broken in prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(Value::String(String::new()))),
            any::<i64>().prop_map(|n| Some(Value::from(n))),
            json_value().prop_filter("not a string", |v| !v.is_string()).prop_map(Some),
        ],
    ) {
        // The event decodes with its ResponseURL...
        prop_assert!(cfn::decode(&event).is_ok(), "{}", event);
        // ...and not with it removed or retyped.
        let mut event = event;
        match broken {
            None => { event.as_object_mut().unwrap().remove("ResponseURL"); }
            Some(v) => { event["ResponseURL"] = v; }
        }
        match cfn::decode(&event) {
            Ok(envelope) => {
                return Err(TestCaseError::fail(format!(
                    "decoded without a usable ResponseURL: {:?}",
                    envelope.ids
                )));
            }
            Err(m) => {
                prop_assert!(m.respond_to.is_none(), "somewhere to answer in {}", event);
                prop_assert!(!m.reason.is_empty());
            }
        }
    }

    #[test]
    fn property_parsing_never_panics_and_accepts_only_valid_names(
        props in prop_oneof![3 => resource_properties(), 1 => json_value()]
    ) {
        if let Ok(stagewire::props::Properties { spec, service_timeout, .. }) = stagewire::props::parse(&props) {
            prop_assert!(service_timeout.is_none_or(|t| (1..=3600).contains(&t.as_secs())));
            prop_assert!(validate_stage_name(spec.stage.kind, &spec.stage.stage).is_ok(), "{:?}", spec.stage);
            prop_assert!(!spec.variables.is_empty());
            for (name, source) in &spec.variables {
                prop_assert!(validate_variable_name(name).is_ok(), "{name:?}");
                if let Source::Literal { value } = source {
                    prop_assert!(validate_variable_value(name, value).is_ok(), "{value:?}");
                }
            }
        }
    }
}

/// Strip or retype at least one required envelope field so that the event does not decode.
fn malformed_event(url: String) -> impl Strategy<Value = Value> {
    (
        event_with_url(Just(url)),
        proptest::sample::subsequence(
            vec![
                "StackId",
                "RequestId",
                "LogicalResourceId",
                "ResourceType",
                "ResourceProperties",
                "RequestType",
            ],
            1..4,
        ),
        json_value(),
    )
        .prop_map(|(mut event, broken, replacement)| {
            if let Some(m) = event.as_object_mut() {
                for (i, key) in broken.into_iter().enumerate() {
                    if i == 0 {
                        m.remove(key);
                    } else {
                        m.insert(key.into(), replacement.clone());
                    }
                }
            }
            event
        })
}

#[test]
fn the_handler_answers_every_malformed_event_exactly_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = rt.block_on(ResponseReceiver::start(vec![])).unwrap();
    // A working handler: the FAILED answers come from the decoding, not from configuration.
    let world = rt.block_on(crate::support::World::new());
    let handler = world.handler();
    let mut runner = TestRunner::new(config(32));
    let url = receiver.url("cfn-response/malformed");
    runner
        .run(&malformed_event(url), |event| {
            rt.block_on(async {
                let before = receiver.received().await.len();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                let report = handler.handle(event.clone(), deadline).await;
                let all = receiver.received().await;
                let new = &all[before..];
                prop_assert!(report.is_ok(), "{report:?}");
                let report = report.unwrap();
                prop_assert_eq!(report.outcome, "FAILED");
                prop_assert_eq!(new.len(), 1, "responses for {}", event);
                prop_assert!(new[0].violations.is_empty(), "{:?}", new[0].violations);
                prop_assert_eq!(new[0].status(), Some("FAILED"));
                // The Reason may be shortened (with "...") to keep the body within 4096 bytes.
                const MALFORMED: &str = "malformed custom resource event";
                let reason = new[0].field("Reason").unwrap_or_default();
                let stem = reason.strip_suffix("...").unwrap_or(reason);
                // Identifiers whose JSON fills the body leave the Reason no room at all.
                let ids_json: usize = [
                    "StackId",
                    "RequestId",
                    "LogicalResourceId",
                    "PhysicalResourceId",
                ]
                .iter()
                .filter_map(|k| event.get(*k).and_then(Value::as_str))
                .map(|v| {
                    serde_json::to_string(cfn::truncate_utf8(v, 1024))
                        .unwrap()
                        .len()
                })
                .sum();
                let crowded = ids_json + 200 > MAX_RESPONSE_BYTES;
                prop_assert!(
                    stem.starts_with(MALFORMED)
                        || (stem.len() >= 9 && MALFORMED.starts_with(stem))
                        || (crowded && MALFORMED.starts_with(stem)),
                    "Reason {:?} for {}",
                    reason,
                    event
                );
                let text = format!("{report:?}");
                prop_assert!(
                    !text.contains(receiver.secret()),
                    "report carries the signature"
                );
                Ok(())
            })
        })
        .unwrap();
}

//! The HTTP API (API Gateway v2) path end to end: the real AWS SDK against moto, through the
//! fault proxy's `play_http_api_stages()` mode, which answers what moto lacks as the service
//! does (`CreateStage` of an existing stage is a 409 `ConflictException`; `UpdateStage` merges
//! the given `stageVariables`, `""` removing one).

use serde_json::{json, Value};
use stagewire_devkit::fault_proxy::{FaultProxy, Record};
use stagewire_devkit::sequences;
use std::collections::BTreeMap;

use crate::support::*;

/// A world whose proxy plays HTTP API stages, an HTTP API, and CloudFormation's side of a
/// stack of bindings.
async fn http_scene() -> (World, String, Cloudformation) {
    let w = World::builder().http_api_stages().build().await;
    let api = w.http_api().await;
    (w, api, Cloudformation::new().await)
}

/// The stage's variables, `None` when the stage does not exist.
async fn http_vars(w: &World, api: &str, stage: &str) -> Option<BTreeMap<String, String>> {
    match w
        .apigw2
        .get_stage()
        .api_id(api)
        .stage_name(stage)
        .send()
        .await
    {
        Ok(out) => Some(
            out.stage_variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        ),
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_not_found_exception(), "GetStage: {e:?}");
            None
        }
    }
}

fn props(api: &str, stage: &str, variables: Value) -> Value {
    json!({
        "ServiceToken": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
        "ServiceTimeout": "300",
        "HttpApiId": api,
        "StageName": stage,
        "Variables": variables,
    })
}

/// The v2 calls to one stage (`{method} /v2/apis/{api}/stages[/{stage}]`) the proxy saw.
fn stage_calls(proxy: &FaultProxy, method: &str, api: &str, stage: Option<&str>) -> Vec<Record> {
    let operation = match stage {
        Some(stage) => format!("{method} /v2/apis/{api}/stages/{stage}"),
        None => format!("{method} /v2/apis/{api}/stages"),
    };
    proxy
        .records()
        .into_iter()
        .filter(|r| r.service == "apigateway" && r.operation == operation)
        .collect()
}

/// The `stageVariables` of the one UpdateStage of `stage` the proxy saw, which succeeded.
fn the_one_update_stage(proxy: &FaultProxy, api: &str, stage: &str) -> Value {
    let patches = stage_calls(proxy, "PATCH", api, Some(stage));
    assert_eq!(patches.len(), 1, "one UpdateStage: {patches:?}");
    assert_eq!(patches[0].status, Some(200));
    let body: Value = serde_json::from_slice(&patches[0].body).unwrap();
    body["stageVariables"].clone()
}

#[tokio::test]
async fn an_http_api_binding_is_created_updated_with_only_its_changes_and_deleted() {
    let (w, api, cfn) = http_scene().await;
    let proxy = w.proxy();
    let stack = w.elb_stack(&unique("EcsHttp")).await;
    let elb = json!({"StackName": stack.name, "OutputKey": "EcsElbDnsName"});

    // Create: a new stage with the binding's variables.
    let created = props(
        &api,
        "prod",
        json!({"helloworldElb": elb, "banner": "v1", "color": "red"}),
    );
    let r = cfn.send_create(&w.handler(), "Http", created.clone()).await;
    assert_success(&r);
    let physical = r.field("PhysicalResourceId").unwrap().to_string();
    assert_eq!(
        http_vars(&w, &api, "prod").await,
        Some(vars(&[
            ("helloworldElb", &stack.dns),
            ("banner", "v1"),
            ("color", "red"),
        ]))
    );
    assert_eq!(stage_calls(proxy, "POST", &api, None).len(), 1);

    // Update: one variable changed, one added, one removed; the rest left alone.
    proxy.reset_counts();
    let updated = props(
        &api,
        "prod",
        json!({"helloworldElb": elb, "banner": "v2", "region": "eu-west-1"}),
    );
    let r = cfn
        .send(
            &w.handler(),
            cfn.update("Http", &physical, updated.clone(), created),
        )
        .await;
    assert_success(&r);
    assert_eq!(
        http_vars(&w, &api, "prod").await,
        Some(vars(&[
            ("helloworldElb", &stack.dns),
            ("banner", "v2"),
            ("region", "eu-west-1"),
        ]))
    );
    // UpdateStage carries only the changes.
    let sent = the_one_update_stage(proxy, &api, "prod");
    assert_eq!(
        sent,
        json!({"banner": "v2", "region": "eu-west-1", "color": ""})
    );

    // Delete: the variables go, then the stage the binding created.
    proxy.reset_counts();
    let r = cfn
        .send(&w.handler(), cfn.delete("Http", &physical, updated))
        .await;
    assert_success(&r);
    assert_eq!(http_vars(&w, &api, "prod").await, None, "stage deleted");
    let sent = the_one_update_stage(proxy, &api, "prod");
    assert_eq!(
        sent,
        json!({"helloworldElb": "", "banner": "", "region": ""})
    );
    assert_eq!(
        stage_calls(proxy, "DELETE", &api, Some("prod")).len(),
        1,
        "one DeleteStage"
    );
    assert!(w.registry_items().await.is_empty());
}

#[tokio::test]
async fn sibling_creates_in_two_function_processes_both_read_the_missing_http_stage_then_one_meets_conflict_and_both_succeed(
) {
    let (w, api, cfn) = http_scene().await;
    let proxy = w.proxy();
    let stack = w.elb_stack(&unique("EcsHttpSiblings")).await;
    let elb = json!({"StackName": stack.name, "OutputKey": "EcsElbDnsName"});
    // Both reads of the missing stage are held until both have arrived, so that both bindings
    // see no stage and both create it.
    let gate = w.hold(format!("GET /v2/apis/{api}/stages/shared"), 2);
    let seq = sequences::sibling_creates(
        (
            "Blue",
            props(
                &api,
                "shared",
                json!({"helloworldElb": elb, "color": "blue"}),
            ),
        ),
        ("Banner", props(&api, "shared", json!({"banner": "hello"}))),
    );

    play_siblings_in_two_processes(&w, &cfn, &seq, &gate).await;
    assert_eq!(
        http_vars(&w, &api, "shared").await,
        Some(vars(&[
            ("helloworldElb", &stack.dns),
            ("color", "blue"),
            ("banner", "hello"),
        ]))
    );
    let creates = stage_calls(proxy, "POST", &api, None);
    let statuses: Vec<_> = creates.iter().map(|r| r.status).collect();
    assert_eq!(creates.len(), 2, "both created the stage: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == Some(409)).count(),
        1,
        "one met ConflictException: {statuses:?}"
    );
    let patches = stage_calls(proxy, "PATCH", &api, Some("shared"));
    assert_eq!(patches.len(), 1, "the loser patched the stage: {patches:?}");
    assert_eq!(w.registry_items().await.len(), 3);
}

#[tokio::test]
async fn a_binding_on_the_default_stage_creates_it_answers_the_api_root_and_its_delete_deletes_it()
{
    let (w, api, cfn) = http_scene().await;
    let proxy = w.proxy();
    let bound = props(&api, "$default", json!({"banner": "hello"}));

    let r = cfn
        .send_create(&w.handler(), "Default", bound.clone())
        .await;

    assert_success(&r);
    assert_eq!(
        r.body["Data"]["InvokeUrl"],
        json!(format!("https://{api}.execute-api.us-east-1.amazonaws.com"))
    );
    assert_eq!(
        http_vars(&w, &api, "$default").await,
        Some(vars(&[("banner", "hello")]))
    );
    let physical = r.field("PhysicalResourceId").unwrap().to_string();
    let r = cfn
        .send(&w.handler(), cfn.delete("Default", &physical, bound))
        .await;
    assert_success(&r);
    assert_eq!(http_vars(&w, &api, "$default").await, None);
    let deletes: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| {
            r.operation
                .starts_with(&format!("DELETE /v2/apis/{api}/stages/"))
        })
        .map(|r| r.operation)
        .collect();
    assert_eq!(deletes.len(), 1, "one DeleteStage: {deletes:?}");
    assert!(w.registry_items().await.is_empty());
}

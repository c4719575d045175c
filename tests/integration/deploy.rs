//! The README's deploy, played against moto with the examples as they are: the API stack
//! `EcsDemoApi` from `examples/ecs-demo-api.yaml` (its REST API tagged as the template tags it),
//! then the ECS stacks `EcsHelloworldProd` and `EcsHelloworldDev` from
//! `examples/ecs-helloworld.yaml` with `RestApiId=<the API's id>`, each stack's `StageBinding`
//! created through CloudFormation's sequence with the properties the template gives it, by the
//! binding function under `template.yaml`'s default `BindingAuthorization` (`ApiTags`).
//!
//! Without the API's consent tag `stagewire:allowed-stacks` naming the ECS stacks, the bindings
//! are refused (`not authorized: REST API ... belongs to stack EcsDemoApi`), and so is this deploy.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudformation::types::StackStatus;
use serde_json::{json, Value};
use stagewire::cfn::Handler;
use stagewire::domain::Authorization;
use stagewire_devkit::examples::{
    self, ExampleApi, Refs, Template, ALLOWED_STACKS_TAG, API_STACK, API_TEMPLATE, BINDING,
    DEV_STACK, ECS_TEMPLATE, PROD_STACK,
};
use stagewire_devkit::sequences;

use crate::support::*;

/// The export the ECS template imports by default (its parameter `StageBindingFunctionExport`):
/// the README deploys stagewire as stack `stagewire`.
const EXPORT: &str = "stagewire-StageBindingFunctionArn";

/// `template.yaml`'s default `BindingAuthorization`, the deployed functions' rule.
fn template_authorization() -> Authorization {
    let template = Template::load(&examples::workspace_file("template.yaml")).unwrap();
    match template
        .parameter_default("BindingAuthorization")
        .as_deref()
    {
        Some("ApiTags") => Authorization::ApiTags,
        Some("Open") => Authorization::Open,
        other => panic!("template.yaml: BindingAuthorization defaults to {other:?}"),
    }
}

/// The world of a deployed stagewire: the binding function under the template's defaults.
async fn stagewire_world() -> World {
    World::builder()
        .authorization(template_authorization())
        .build()
        .await
}

/// An ECS stack created from the example template, with what CloudFormation knows of it.
struct EcsStack {
    stack_id: String,
    /// Physical ids by logical id.
    resources: BTreeMap<String, String>,
    /// The output `EcsElbDnsName`.
    dns: String,
}

/// Deletes stack `name` if an earlier run (on an external moto server) left it.
async fn delete_leftover(w: &World, name: &str) {
    let _ = w.cfn.delete_stack().stack_name(name).send().await;
}

/// `aws cloudformation deploy --template-file examples/ecs-helloworld.yaml --stack-name <name>`,
/// less the binding, which moto cannot hold (its Create is played by the test).
async fn create_ecs_stack(w: &World, name: &str, environment: &str) -> EcsStack {
    delete_leftover(w, name).await;
    let text = std::fs::read_to_string(examples::workspace_file(ECS_TEMPLATE)).unwrap();
    let template = examples::without_binding(&text);
    let stack_id = examples::create_ecs_stack(&w.cfn, &template, name, environment)
        .await
        .unwrap();
    let dns = stack_output(w, &stack_id, "EcsElbDnsName").await;
    let listed = w
        .cfn
        .describe_stack_resources()
        .stack_name(&stack_id)
        .send()
        .await
        .unwrap();
    let resources = listed
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.into(),
                r.physical_resource_id()?.into(),
            ))
        })
        .collect();
    EcsStack {
        stack_id,
        resources,
        dns,
    }
}

/// Waits for CREATE_COMPLETE and answers the stack's output `key`.
async fn stack_output(w: &World, stack_id: &str, key: &str) -> String {
    for _ in 0..600 {
        let described = w
            .cfn
            .describe_stacks()
            .stack_name(stack_id)
            .send()
            .await
            .unwrap();
        let stack = described.stacks()[0].clone();
        match stack.stack_status() {
            Some(StackStatus::CreateInProgress) => {}
            Some(StackStatus::CreateComplete) => {
                let output = stack.outputs().iter().find(|o| o.output_key() == Some(key));
                return output.and_then(|o| o.output_value()).unwrap().to_string();
            }
            other => panic!("{stack_id}: {other:?} {:?}", stack.stack_status_reason()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{stack_id} never reached CREATE_COMPLETE");
}

/// The `ResourceProperties` CloudFormation sends for the ECS stack's `StageBinding`, deployed with
/// `EnvironmentName=<environment> RestApiId=<api>` as the README deploys it.
fn binding_properties(stack: &EcsStack, environment: &str, api: &str) -> Value {
    let path = examples::workspace_file(ECS_TEMPLATE);
    let template = Template::load(&path).unwrap();
    let function = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stagewire-StageBinding");
    let refs = Refs {
        parameters: template.parameters(&[("EnvironmentName", environment), ("RestApiId", api)]),
        resources: stack.resources.clone(),
        imports: [(EXPORT.to_string(), function)].into(),
    };
    examples::binding_properties(&template, &refs).unwrap()
}

/// CloudFormation creates the stack's `StageBinding` (the sequence `stack create`), answered
/// by `handler`; the answer.
async fn create_binding(
    handler: &Handler,
    stack: &EcsStack,
    properties: Value,
) -> stagewire_devkit::Received {
    let cfn = Cloudformation::for_stack(&stack.stack_id).await;
    let sequence = sequences::stack_create(BINDING, properties);
    let mut player = cfn.player(&sequence);
    let answers = player
        .play(handlers(std::slice::from_ref(handler)))
        .await
        .unwrap();
    answers[0].clone()
}

/// The API stack `EcsDemoApi` as the README deploys it (the template's defaults).
async fn deploy_api(w: &World, name: &str) -> ExampleApi {
    delete_leftover(w, name).await;
    let path = examples::workspace_file(API_TEMPLATE);
    examples::deploy_api_stack(&w.sdk, &path, name, &[])
        .await
        .unwrap()
}

#[tokio::test]
async fn the_readme_deploy_binds_prod_and_dev_under_the_template_defaults() {
    let w = stagewire_world().await;
    let api = deploy_api(&w, API_STACK).await;
    eprintln!("{API_STACK}: REST API {} tagged {:?}", api.id, api.tags);
    let handler = w.handler();
    for (name, environment) in [(PROD_STACK, "prod"), (DEV_STACK, "dev")] {
        let stack = create_ecs_stack(&w, name, environment).await;
        let properties = binding_properties(&stack, environment, &api.id);
        assert_eq!(properties["RestApiId"], json!(api.id));
        let answer = create_binding(&handler, &stack, properties).await;
        // FAILED here with "not authorized" means the example API does not allow this stack.
        assert_success(&answer);
        let data = &answer.body["Data"];
        assert_eq!(data["helloworldElb"], json!(stack.dns), "{name}");
        let invoke_url = data["InvokeUrl"].as_str().unwrap_or_default();
        assert!(
            invoke_url.ends_with(&format!("/{environment}")),
            "{invoke_url}"
        );
        let live = w.var(&api.id, environment, "helloworldElb").await;
        assert_eq!(live.as_deref(), Some(stack.dns.as_str()), "{name}");
    }
}

#[tokio::test]
async fn a_stack_the_example_api_does_not_name_is_refused_with_the_tag_to_add() {
    let w = stagewire_world().await;
    let api_stack = unique("EcsDemoApi");
    let api = deploy_api(&w, &api_stack).await;
    let allowed = api
        .tags
        .get(ALLOWED_STACKS_TAG)
        .cloned()
        .unwrap_or_default();
    assert!(!allowed.contains("EcsHelloworldStaging"), "{allowed}");
    let stack_id = format!(
        "arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/EcsHelloworldStaging/{}",
        unique("id")
    );
    let cfn = Cloudformation::for_stack(&stack_id).await;
    let mut properties = seed_props(&api.id, "staging", "EcsHelloworldStaging");
    properties["Variables"] = json!({"helloworldElb": {"Value": "staging.example.com"}});
    let answer = cfn.send_create(&w.handler(), BINDING, properties).await;
    assert_failed(
        &answer,
        &[
            "not authorized",
            &format!("belongs to stack {api_stack}"),
            "add EcsHelloworldStaging to its tag stagewire:allowed-stacks",
        ],
    );
    assert_eq!(w.stage_vars(&api.id, "staging").await, None);
}

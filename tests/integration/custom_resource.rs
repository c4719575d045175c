//! `Custom::StageBinding` through its whole lifecycle, against moto, with CloudFormation played
//! by the test: every scenario checks the one response the stack gets and what the stage and
//! the registry hold afterwards.

use std::time::Duration;

use serde_json::json;
use stagewire::cfn::Handler;
use stagewire_devkit::receiver::ResponseReceiver;

use crate::support::*;

#[tokio::test]
async fn create_seed_binds_prod_to_the_stack_output() {
    let s = Scene::new("EcsHelloworldProd").await;

    let r = s.create("HelloworldProdBinding", "prod").await;

    assert_success(&r);
    let Scene { w, stack, api, .. } = s;
    assert_eq!(
        r.field("PhysicalResourceId"),
        Some(format!("stagewire:rest:{api}:prod:HelloworldProdBinding").as_str())
    );
    assert_eq!(r.body["Data"]["helloworldElb"], stack.dns.as_str());
    assert_eq!(
        r.body["Data"]["InvokeUrl"],
        format!("https://{api}.execute-api.us-east-1.amazonaws.com/prod").as_str()
    );
    w.assert_var(&api, "prod", "helloworldElb", &stack.dns)
        .await;
    let items = w.registry_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value.as_deref(), Some(stack.dns.as_str()));
    assert_eq!(items[0].owner.logical_id, "HelloworldProdBinding");
    assert!(items[0].created_stage);
    assert!(items[0].written_at.is_some());
}

#[tokio::test]
async fn create_onto_an_existing_stage_keeps_its_other_variables() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsHelloworldProd").await;
    w.deploy_stage(
        &api,
        "prod",
        &[("color", "blue"), ("helloworldElb", "old.example.com")],
    )
    .await;

    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &stack.name))
        .await;

    assert_success(&r);
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars["color"], "blue");
    assert_eq!(vars["helloworldElb"], stack.dns);
    assert!(!w.registry_items().await[0].created_stage);
}

#[tokio::test]
async fn every_source_kind_resolves() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsHelloworldProd")).await;
    let classic_name = unique("classic");
    let classic_dns = w.classic_elb(&classic_name).await;
    let cluster = unique("prod");
    w.ecs_service(&cluster, "helloworld", &[("helloworld", 80, &stack.tg_arn)])
        .await;
    w.ecs_service(&cluster, "legacy", &[("helloworld", 80, &classic_name)])
        .await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({
        "RestApiId": api,
        "StageName": "prod",
        "Variables": {
            "fromStack": {"StackName": stack.name, "OutputKey": "EcsElbDnsName"},
            "fromStackArn": {"StackName": stack.stack_id, "OutputKey": "EcsElbDnsName"},
            "fromService": {"Cluster": cluster, "Service": "helloworld"},
            "fromClassicService": {"Cluster": cluster, "Service": "legacy"},
            "fromLbName": {"LoadBalancer": stack.lb_name},
            "fromLbArn": {"LoadBalancer": stack.lb_arn},
            "fromClassic": {"LoadBalancer": classic_name},
            "banner": {"Value": "v2"}
        }
    });

    let r = cfn.send_create(&w.handler(), "AllSources", props).await;

    assert_success(&r);
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    for v in ["fromService", "fromLbName", "fromLbArn"] {
        assert_eq!(vars[v], stack.dns, "{v}");
        assert_eq!(r.body["Data"][v], stack.dns.as_str(), "{v}");
    }
    assert_eq!(vars["fromStack"], stack.dns);
    assert_eq!(vars["fromStackArn"], stack.dns);
    assert_eq!(vars["fromClassic"], classic_dns);
    assert_eq!(vars["fromClassicService"], classic_dns);
    assert_eq!(vars["banner"], "v2");
    let items = w.registry_items().await;
    let service_item = items.iter().find(|i| i.variable == "fromService").unwrap();
    assert_eq!(
        service_item.via.as_ref().map(ToString::to_string),
        Some(format!("lb#{}", stack.lb_name))
    );
    assert_eq!(
        service_item.via,
        Some(stagewire::domain::SourceKey::LoadBalancer(
            stack.lb_name.clone()
        ))
    );
}

#[tokio::test]
async fn a_service_with_several_load_balancers_needs_a_choice() {
    let w = World::new().await;
    let a = w.elb_stack(&unique("EcsA")).await;
    let (_, other_dns, other_tg) = w.new_alb(&a).await;
    let cluster = unique("prod");
    w.ecs_service(
        &cluster,
        "orders",
        &[("web", 80, &a.tg_arn), ("admin", 8080, &other_tg)],
    )
    .await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let props = |extra: serde_json::Value| {
        let mut source = json!({"Cluster": cluster, "Service": "orders"});
        for (k, v) in extra.as_object().unwrap() {
            source[k] = v.clone();
        }
        json!({"RestApiId": api, "StageName": "prod", "Variables": {"ordersElb": source}})
    };

    let r = cfn
        .send_create(&w.handler(), "Orders", props(json!({})))
        .await;
    assert_failed(
        &r,
        &[
            "several load balancers",
            "web:80",
            "admin:8080",
            "ContainerName",
        ],
    );
    assert_eq!(w.stage_vars(&api, "prod").await, None, "nothing written");

    let r = cfn
        .send_create(
            &w.handler(),
            "Orders",
            props(json!({"ContainerPort": "8080"})),
        )
        .await;
    assert_success(&r);
    assert_eq!(w.var(&api, "prod", "ordersElb").await, Some(other_dns));
}

#[tokio::test]
async fn update_that_changes_a_source() {
    let s = Scene::new("EcsA").await;
    let physical = s.created("B", "prod").await;
    let b = s.w.elb_stack(&unique("EcsB")).await;
    let moved = seed_props(&s.api, "prod", &b.name);

    let r = s
        .send(s.cfn.update("B", &physical, moved, s.props("prod")))
        .await;

    assert_success(&r);
    assert_eq!(r.field("PhysicalResourceId"), Some(physical.as_str()));
    s.w.assert_var(&s.api, "prod", "helloworldElb", &b.dns)
        .await;
    let items = s.w.registry_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].source.key().to_string(),
        format!("stack#{}", b.name)
    );
    assert_eq!(items[0].value.as_deref(), Some(b.dns.as_str()));
}

#[tokio::test]
async fn update_that_adds_and_removes_variables() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    w.deploy_stage(&api, "prod", &[("color", "blue")]).await;
    let h = w.handler();
    let seed = seed_props(&api, "prod", &stack.name);
    let v1 = plus_literal(seed.clone(), "banner", "v1");
    let v2 = plus_literal(seed, "release", "2026-11");
    let created = cfn.send_create(&h, "B", v1.clone()).await;
    let physical = created.field("PhysicalResourceId").unwrap().to_string();

    let r = cfn.send(&h, cfn.update("B", &physical, v2, v1)).await;

    assert_success(&r);
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars.get("banner"), None, "removed variable is gone");
    assert_eq!(vars["release"], "2026-11");
    assert_eq!(vars["helloworldElb"], stack.dns);
    assert_eq!(vars["color"], "blue", "unowned variable untouched");
    let mut names: Vec<String> = w
        .registry_items()
        .await
        .into_iter()
        .map(|r| r.variable)
        .collect();
    names.sort();
    assert_eq!(names, vec!["helloworldElb", "release"]);
}

#[tokio::test]
async fn update_that_changes_the_stage_is_a_replacement() {
    let s = Scene::new("EcsA").await;
    let old_id = s.created("B", "prod").await;
    let (old_props, new_props) = (s.props("prod"), s.props("live"));
    let Scene { w, stack, api, cfn } = s;
    let h = w.handler();

    let r = cfn
        .send(
            &h,
            cfn.update("B", &old_id, new_props.clone(), old_props.clone()),
        )
        .await;
    assert_success(&r);
    let new_id = r.field("PhysicalResourceId").unwrap().to_string();
    assert_ne!(new_id, old_id);
    w.assert_var(&api, "live", "helloworldElb", &stack.dns)
        .await;

    // CloudFormation then deletes the old resource: only the old binding goes away.
    let d = cfn.send(&h, cfn.delete("B", &old_id, old_props)).await;
    assert_success(&d);
    assert_eq!(
        w.stage_vars(&api, "prod").await,
        None,
        "old stage it created is deleted"
    );
    w.assert_var(&api, "live", "helloworldElb", &stack.dns)
        .await;
    let items = w.registry_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].owner.physical_id, new_id);
}

#[tokio::test]
async fn delete_removes_only_what_it_owns_and_wrote() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    w.deploy_stage(&api, "prod", &[("color", "blue")]).await;
    let h = w.handler();
    let props = plus_literal(seed_props(&api, "prod", &stack.name), "banner", "v1");
    let created = cfn.send_create(&h, "B", props.clone()).await;
    let physical = created.field("PhysicalResourceId").unwrap().to_string();
    // An operator changes one bound variable by hand: stagewire no longer wrote that value.
    w.set_var(&api, "prod", "banner", "hand-set").await;

    let r = cfn.send(&h, cfn.delete("B", &physical, props)).await;

    assert_success(&r);
    assert_eq!(r.field("PhysicalResourceId"), Some(physical.as_str()));
    let vars = w
        .stage_vars(&api, "prod")
        .await
        .expect("pre-existing stage kept");
    assert_eq!(vars.get("helloworldElb"), None);
    assert_eq!(vars["banner"], "hand-set");
    assert_eq!(vars["color"], "blue");
    assert!(w.registry_items().await.is_empty());
}

#[tokio::test]
async fn delete_of_a_stage_it_created_deletes_the_stage() {
    let s = Scene::new("EcsA").await;
    let physical = s.created("B", "prod").await;
    let delete = || s.cfn.delete("B", &physical, s.props("prod"));

    assert_success(&s.send(delete()).await);
    assert_eq!(s.w.stage_vars(&s.api, "prod").await, None);

    assert_success(&s.send(delete()).await);
}

#[tokio::test]
async fn delete_after_a_failed_create_succeeds_and_touches_nothing() {
    let w = World::new().await;
    let api = w
        .rest_api_with_stage("prod", &[("helloworldElb", "kept.example.com")])
        .await;
    let cfn = Cloudformation::new().await;
    let h = w.handler();
    let props = seed_props(&api, "prod", "NoSuchStack");

    let failed = cfn.send_create(&h, "B", props.clone()).await;
    assert_failed(&failed, &["NoSuchStack", "does not exist"]);
    let physical = failed.field("PhysicalResourceId").unwrap().to_string();

    let d = cfn.send(&h, cfn.delete("B", &physical, props)).await;
    assert_success(&d);
    w.assert_var(&api, "prod", "helloworldElb", "kept.example.com")
        .await;
}

#[tokio::test]
async fn delete_after_a_create_with_unreadable_properties() {
    let w = World::new().await;
    let cfn = Cloudformation::new().await;
    let h = w.handler();
    let failed = cfn.send_create(&h, "B", json!({"Nonsense": true})).await;
    assert_failed(&failed, &["invalid properties", "Nonsense"]);
    let physical = failed.field("PhysicalResourceId").unwrap().to_string();
    let d = cfn
        .send(&h, cfn.delete("B", &physical, json!({"Nonsense": true})))
        .await;
    assert_success(&d);
}

#[tokio::test]
async fn delete_when_the_api_is_already_gone() {
    let s = Scene::new("EcsA").await;
    let physical = s.created("B", "prod").await;
    let Scene { w, api, cfn, .. } = &s;
    w.apigw
        .delete_rest_api()
        .rest_api_id(api)
        .send()
        .await
        .unwrap();

    let d = s.send(cfn.delete("B", &physical, s.props("prod"))).await;

    assert_success(&d);
    assert!(w.registry_items().await.is_empty());
}

#[tokio::test]
async fn a_second_binding_cannot_claim_an_owned_variable() {
    let Scene { w, stack, api, .. } = Scene::new("EcsA").await;
    let first = Cloudformation::new().await;
    let second = Cloudformation::new().await;
    let h = w.handler();
    assert_success(
        &first
            .send_create(&h, "Owner", seed_props(&api, "prod", &stack.name))
            .await,
    );

    let r = second
        .send_create(&h, "Intruder", seed_props(&api, "prod", "OtherStack"))
        .await;

    // The intruder's source does not even resolve; give it one that does.
    assert_failed(&r, &["OtherStack"]);
    let b = w.elb_stack(&unique("EcsB")).await;
    let r = second
        .send_create(&h, "Intruder", seed_props(&api, "prod", &b.name))
        .await;
    assert_failed(&r, &["helloworldElb", "owned by", "Owner", &first.stack_id]);
    w.assert_var(&api, "prod", "helloworldElb", &stack.dns)
        .await;
    // Its Delete (after the failed Create) leaves the owner's variable alone.
    let physical = r.field("PhysicalResourceId").unwrap().to_string();
    assert_success(
        &second
            .send(
                &h,
                second.delete("Intruder", &physical, seed_props(&api, "prod", &b.name)),
            )
            .await,
    );
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
    assert_eq!(w.registry_items().await.len(), 1);
}

#[tokio::test]
async fn every_validation_error_fails_before_any_write() {
    let w = World::new().await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let h = w.handler();
    let many: serde_json::Map<String, serde_json::Value> =
        (0..101).map(|i| (format!("v{i}"), json!("x"))).collect();
    let cases = vec![
        (
            json!({"RestApiId": api, "StageName": "bad stage", "Variables": {"v": "x"}}),
            "stage name",
        ),
        (
            json!({"RestApiId": api, "StageName": "x".repeat(129), "Variables": {"v": "x"}}),
            "stage name",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {"bad-name": "x"}}),
            "bad-name",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {"v".repeat(65): "x"}}),
            "variable name",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {"v": {"Value": "a b"}}}),
            "value \"a b\"",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {"v": {"Value": "x".repeat(513)}}}),
            "1 to 512",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": many}),
            "at most 100",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {}}),
            "at least one",
        ),
        (
            json!({"RestApiId": api, "HttpApiId": "h", "StageName": "prod", "Variables": {"v": "x"}}),
            "exactly one of RestApiId and HttpApiId",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "Variables": {"v": {"StackName": "s"}}}),
            "exactly one source",
        ),
        (
            json!({"RestApiId": api, "StageName": "prod", "CreateStage": "yes", "Variables": {"v": "x"}}),
            "CreateStage",
        ),
    ];
    for (props, needle) in cases {
        let r = cfn.send_create(&h, "B", props.clone()).await;
        assert_failed(&r, &[needle]);
    }
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(w.registry_items().await.is_empty());
}

#[tokio::test]
async fn a_value_that_breaks_the_rules_after_resolution_fails() {
    let w = World::new().await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    // A stack whose output is not a valid stage variable value.
    let name = unique("BadOutput");
    w.cfn
        .create_stack()
        .stack_name(&name)
        .template_body(
            r#"{"Resources": {"T": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"EcsElbDnsName": {"Value": "not a dns name"}}}"#,
        )
        .send()
        .await
        .unwrap();
    let r = cfn
        .send_create(&w.handler(), "B", seed_props(&api, "prod", &name))
        .await;
    assert_failed(&r, &["helloworldElb", "not a dns name"]);
    assert_eq!(w.stage_vars(&api, "prod").await, None);
}

#[tokio::test]
async fn missing_sources_are_named() {
    let w = World::new().await;
    let a = w.elb_stack(&unique("EcsA")).await;
    let cluster = unique("prod");
    w.ecs
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let h = w.handler();
    let bind = |source: serde_json::Value| json!({"RestApiId": api, "StageName": "prod", "Variables": {"helloworldElb": source}});
    let cases = vec![
        (
            bind(json!({"StackName": "GhostStack", "OutputKey": "EcsElbDnsName"})),
            vec!["stack GhostStack does not exist"],
        ),
        (
            bind(json!({"StackName": a.name, "OutputKey": "Nope"})),
            vec!["has no output Nope", "EcsElbDnsName"],
        ),
        (
            bind(json!({"Cluster": cluster, "Service": "ghost"})),
            vec!["ECS service ghost does not exist"],
        ),
        (
            bind(json!({"Cluster": "no-such-cluster", "Service": "ghost"})),
            vec!["ECS service ghost"],
        ),
        (
            bind(json!({"LoadBalancer": "ghost-lb"})),
            vec!["load balancer ghost-lb does not exist"],
        ),
        (
            bind(
                json!({"LoadBalancer": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/ghost/1"}),
            ),
            vec!["does not exist"],
        ),
    ];
    for (props, needles) in cases {
        let r = cfn.send_create(&h, "B", props).await;
        assert_failed(&r, &needles);
    }
    assert_eq!(w.stage_vars(&api, "prod").await, None);
}

#[tokio::test]
async fn stringified_scalars_are_accepted() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    let h = w.handler();
    let mut props = seed_props(&api, "prod", &stack.name);
    props["CreateStage"] = json!("false");
    props["ServiceTimeout"] = json!("300");

    let r = cfn.send_create(&h, "B", props.clone()).await;
    assert_failed(&r, &["does not exist and CreateStage is false"]);
    assert_eq!(w.stage_vars(&api, "prod").await, None);

    props["CreateStage"] = json!("true");
    assert_success(&cfn.send_create(&h, "B", props).await);
    assert_eq!(w.var(&api, "prod", "helloworldElb").await, Some(stack.dns));
}

#[tokio::test]
async fn unknown_extra_properties_are_rejected_by_name() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    let mut props = seed_props(&api, "prod", &stack.name);
    props["Varaibles"] = json!({"x": "y"});
    let r = cfn.send_create(&w.handler(), "B", props).await;
    assert_failed(&r, &["unsupported property Varaibles"]);
    assert_eq!(w.stage_vars(&api, "prod").await, None);
}

#[tokio::test]
async fn a_malformed_event_with_a_response_url_gets_one_failed_response() {
    let w = World::new().await;
    let cfn = Cloudformation::new().await;
    let h = w.handler();
    let url = cfn.receiver.url("malformed");
    let events = vec![
        json!({"RequestType": "Create", "ResponseURL": url, "StackId": 42, "RequestId": "r1", "LogicalResourceId": "B"}),
        json!({"RequestType": "Explode", "ResponseURL": url, "StackId": "s", "RequestId": "r2", "LogicalResourceId": "B", "ResourceType": "Custom::StageBinding", "ResourceProperties": {}}),
        json!({"ResponseURL": url}),
    ];
    for event in events {
        let r = cfn.send(&h, event).await;
        assert_failed(&r, &["malformed custom resource event"]);
        let reason = r.field("Reason").unwrap();
        assert!(!reason.contains(cfn.receiver.secret()), "{reason}");
    }
    // Without a ResponseURL there is no one to answer: a clean report, nothing sent.
    let (report, received) = cfn
        .send_raw(&h, json!({"hello": "world"}), Duration::from_secs(5))
        .await;
    assert_eq!(report.unwrap().outcome, "IGNORED");
    assert!(received.is_empty());
}

/// A function binary of the workspace, built by `cargo build --workspace --bins` into the
/// target directory this test binary runs from (`CARGO_TARGET_DIR` honoured).
pub(crate) fn function_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/debug/deps/integration-<hash>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        binary.display()
    );
    binary
}

#[tokio::test]
async fn a_misconfigured_function_answers_failed() {
    assert!(
        std::env::var_os(stagewire::config::TABLE_VAR).is_none(),
        "this test runs the function without {}",
        stagewire::config::TABLE_VAR
    );
    let moto = stagewire_devkit::moto::shared().await;
    let cfn = Cloudformation::new().await;
    // The real binary, started as Lambda starts it, without STAGEWIRE_TABLE.
    let function = stagewire_devkit::Function::launch(
        &function_binary("stage-binding"),
        &stagewire_devkit::moto::process_env(&moto.endpoint()),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let invocation = function
        .api
        .invoke(
            cfn.create("B", seed_props("api", "prod", "S")),
            Duration::from_secs(20),
        )
        .await
        .unwrap();

    let report = invocation.response().expect("the function answered");
    assert_eq!(report["outcome"], "FAILED", "{report}");
    let received = cfn.receiver.received().await;
    assert_one_failed(&received, &["misconfigured", "STAGEWIRE_TABLE is not set"]);
    assert!(
        function.process.log_text().contains("configuration error"),
        "{}",
        function.process.log_text()
    );
}

#[tokio::test]
async fn the_function_answers_before_the_deadline_lambda_gives_it() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsA").await;
    let proxy = w.proxy();
    // Every API Gateway call hangs far beyond the invocation's time.
    proxy.add_rule(
        stagewire_devkit::fault_proxy::Rule::new(stagewire_devkit::fault_proxy::Fault::Delay(
            Duration::from_secs(60),
        ))
        .service("apigateway"),
    );
    let function = w.stage_binding_process().await;
    let budget = Duration::from_secs(4);

    // The Runtime API gives the invocation a deadline 4 s after delivery; the function reads it
    // from the Lambda-Runtime-Deadline-Ms header.
    let invocation = function
        .api
        .invoke(
            cfn.create("B", seed_props(&api, "prod", &stack.name)),
            budget,
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no answer within the deadline: {e}\n{}",
                function.process.log_text()
            )
        });

    assert!(invocation.duration < budget, "{:?}", invocation.duration);
    let received = cfn.receiver.received().await;
    assert_one_failed(&received, &["timed out"]);
}

#[tokio::test]
async fn a_deadline_that_expires_mid_work_answers_before_it() {
    let s = Scene::new("EcsA").await;
    let proxy = s.w.proxy();
    proxy.add_rule(
        stagewire_devkit::fault_proxy::Rule::new(stagewire_devkit::fault_proxy::Fault::Delay(
            Duration::from_secs(20),
        ))
        .service("apigateway"),
    );
    let budget = Duration::from_secs(3);
    let started = std::time::Instant::now();

    let (report, received) = s.create_within("B", "prod", budget).await;

    assert!(
        started.elapsed() < budget,
        "answered after the deadline: {:?}",
        started.elapsed()
    );
    report.unwrap();
    assert_one_failed(&received, &["timed out"]);
    proxy.clear_rules();
}

#[tokio::test]
async fn a_response_url_that_fails_twice_then_accepts() {
    let mut s = Scene::new("EcsA").await;
    s.cfn =
        Cloudformation::with_receiver(ResponseReceiver::start(vec![500, 500, 200]).await.unwrap());

    let (report, received) = s.create_within("B", "prod", Duration::from_secs(30)).await;

    let report = report.expect("delivered on the third attempt");
    assert_eq!(report.response_attempts, 3);
    assert_eq!(
        received
            .iter()
            .map(|r| r.status_returned)
            .collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    for r in &received {
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(
            r.raw, received[0].raw,
            "every attempt sends the same response"
        );
    }
    assert_success(&received[2]);
}

#[tokio::test]
async fn a_response_url_that_never_accepts_is_tried_a_bounded_number_of_times() {
    let mut s = Scene::new("EcsA").await;
    s.cfn = Cloudformation::with_receiver(ResponseReceiver::always(403).await.unwrap());

    let (report, received) = s.create_within("B", "prod", Duration::from_secs(30)).await;

    let err = report.expect_err("undelivered");
    let text = err.to_string();
    assert!(text.contains("403"), "{text}");
    assert!(!text.contains(s.cfn.receiver.secret()), "{text}");
    assert_eq!(received.len() as u32, s.w.handler().sender.max_attempts);
}

#[tokio::test]
async fn http_api_stage_is_created_with_its_variables() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsA")).await;
    let api_id = w.http_api().await;
    let cfn = Cloudformation::new().await;
    let props = json!({"HttpApiId": api_id, "StageName": "prod", "Variables": {
        "helloworldElb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName"}
    }});

    let r = cfn.send_create(&w.handler(), "Http", props).await;

    assert_success(&r);
    assert_eq!(
        r.field("PhysicalResourceId"),
        Some(format!("stagewire:http:{api_id}:prod:Http").as_str())
    );
    let stage = w
        .apigw2
        .get_stage()
        .api_id(&api_id)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    assert_eq!(stage.stage_variables().unwrap()["helloworldElb"], stack.dns);
}

/// A stack-output port that panics: stands for any bug inside the work. Its stack resources
/// come from the real port (the request is authentic).
struct Exploding(std::sync::Arc<dyn stagewire::ports::StackOutputs>);

#[async_trait::async_trait]
impl stagewire::ports::StackOutputs for Exploding {
    async fn stack_resource(
        &self,
        stack_id: &str,
        logical_id: &str,
    ) -> Result<Option<stagewire::ports::StackResource>, stagewire::ports::AwsError> {
        self.0.stack_resource(stack_id, logical_id).await
    }

    async fn outputs(
        &self,
        _stack: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, stagewire::ports::AwsError>
    {
        panic!("boom inside a port")
    }

    async fn template_resources(
        &self,
        _stack: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, stagewire::ports::AwsError> {
        panic!("boom inside a port")
    }

    async fn stack_status(
        &self,
        _stack: &str,
    ) -> Result<Option<String>, stagewire::ports::AwsError> {
        panic!("boom inside a port")
    }
}

#[tokio::test]
async fn a_panic_still_gets_one_failed_response() {
    let w = World::new().await;
    let api = w.rest_api().await;
    let mut ports = w.ports.clone();
    ports.outputs = std::sync::Arc::new(Exploding(ports.outputs.clone()));
    let mut h = Handler::new(ports).allowing_response_hosts(local_response_hosts());
    h.sender = w.handler().sender;
    let cfn = Cloudformation::new().await;

    let r = cfn
        .send_create(&h, "B", seed_props(&api, "prod", "S"))
        .await;

    assert_failed(&r, &["internal error", "boom inside a port"]);
    assert_eq!(w.stage_vars(&api, "prod").await, None);
}

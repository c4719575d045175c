//! Private integrations: a binding of a network load balancer's host name and of the REST VPC
//! link in front of it (`VpcLinkFor`), through the real `stage-binding` function against moto
//! (which answers every REST VPC link `AVAILABLE` at once).

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerTypeEnum, ProtocolEnum, TargetTypeEnum,
};
use serde_json::{json, Value};

use crate::support::*;

/// A network load balancer with a TCP listener forwarding to a target group with one
/// registered target, in the subnets of `stack`: its name, ARN and DNS name.
async fn nlb(w: &World, stack: &stagewire_devkit::elb_stack::ElbStack) -> (String, String, String) {
    let name = unique("nlb");
    let out = w
        .elbv2
        .create_load_balancer()
        .name(&name)
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(stack.subnets.clone()))
        .send()
        .await
        .unwrap();
    let lb = &out.load_balancers()[0];
    let (arn, dns) = (lb.load_balancer_arn().unwrap(), lb.dns_name().unwrap());
    let tg = w
        .elbv2
        .create_target_group()
        .name(unique("tg"))
        .protocol(ProtocolEnum::Tcp)
        .port(80)
        .vpc_id(&stack.vpc)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg_arn)
        .build();
    w.elbv2
        .create_listener()
        .load_balancer_arn(arn)
        .port(80)
        .protocol(ProtocolEnum::Tcp)
        .default_actions(forward)
        .send()
        .await
        .unwrap();
    w.register_target(tg_arn, "10.0.1.10").await;
    (name, arn.to_string(), dns.to_string())
}

/// A REST VPC link targeting `nlb_arn`: its id.
async fn vpc_link(w: &World, nlb_arn: &str) -> String {
    let out = w
        .apigw
        .create_vpc_link()
        .name(unique("link"))
        .target_arns(nlb_arn)
        .send()
        .await
        .unwrap();
    out.id().unwrap().to_string()
}

/// A private integration's binding: `host` the load balancer's DNS name, `vpcLinkId` the link
/// in front of it.
fn private_props(api: &str, nlb_name: &str) -> Value {
    json!({
        "RestApiId": api,
        "StageName": "prod",
        "Variables": {
            "host": {"LoadBalancer": nlb_name},
            "vpcLinkId": {"VpcLinkFor": {"LoadBalancer": nlb_name}},
        }
    })
}

#[tokio::test]
async fn a_binding_writes_the_link_id_and_moves_host_and_link_in_one_write() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("Private")).await;
    let (old_name, old_arn, old_dns) = nlb(&w, &stack).await;
    let old_link = vpc_link(&w, &old_arn).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;
    let function = w.stage_binding_process().await;
    let function = &function;
    let invoke = |event: Value| async move {
        let answer = function.api.invoke(event, Duration::from_secs(30)).await;
        if let Err(e) = answer {
            panic!("no answer: {e}\n{}", function.process.log_text());
        }
    };

    let old_props = private_props(&api, &old_name);
    invoke(cfn.create("B", old_props.clone())).await;
    let created = cfn.receiver.received().await;
    assert_eq!(created.len(), 1);
    assert_success(&created[0]);
    assert_eq!(created[0].body["Data"]["vpcLinkId"], old_link.as_str());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars["host"], old_dns);
    assert_eq!(vars["vpcLinkId"], old_link);

    // The load balancer is replaced, and its link with it.
    let (new_name, new_arn, new_dns) = nlb(&w, &stack).await;
    let new_link = vpc_link(&w, &new_arn).await;
    w.proxy().reset_counts();
    let physical = created[0].field("PhysicalResourceId").unwrap().to_string();
    let new_props = private_props(&api, &new_name);
    invoke(cfn.update("B", &physical, new_props, old_props)).await;

    let received = cfn.receiver.received().await;
    assert_eq!(received.len(), 2);
    assert_success(&received[1]);
    assert_eq!(received[1].body["Data"]["vpcLinkId"], new_link.as_str());
    let vars = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(vars["host"], new_dns);
    assert_eq!(vars["vpcLinkId"], new_link);
    assert_eq!(
        w.proxy().answered("PATCH", "/stages/prod", 200),
        1,
        "both variables in one write: {:?}",
        w.proxy().records()
    );
    let items = w.registry_items().await;
    let link_item = items.iter().find(|i| i.variable == "vpcLinkId").unwrap();
    assert_eq!(link_item.value.as_deref(), Some(new_link.as_str()));
}

#[tokio::test]
async fn a_load_balancer_without_a_link_fails_saying_how_to_make_one() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("Private")).await;
    let (name, arn, _) = nlb(&w, &stack).await;
    let api = w.rest_api().await;
    let cfn = Cloudformation::new().await;

    let r = cfn
        .send_create(&w.handler(), "B", private_props(&api, &name))
        .await;

    assert_failed(
        &r,
        &[
            "vpcLinkId",
            &format!("no REST VPC link targets load balancer {name}"),
            &format!("AWS::ApiGateway::VpcLink with TargetArns: [{arn}]"),
        ],
    );
    assert_eq!(w.stage_vars(&api, "prod").await, None, "nothing written");
}

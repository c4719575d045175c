//! Private integrations: a binding of a network load balancer's host name and of the REST VPC
//! link in front of it (`VpcLinkFor`), through the real `stage-binding` function against moto
//! (which answers every REST VPC link `AVAILABLE` at once); and the replacement of the load
//! balancer and its link under traffic through the gateway stand-in, the fault proxy playing
//! the new link's `PENDING` and `FAILED` states.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerTypeEnum, ProtocolEnum, TargetTypeEnum,
};
use serde_json::{json, Value};
use stagewire_devkit::gateway::Gateway;
use stagewire_devkit::lbs::{LocalLoadBalancers, HELLO};
use stagewire_devkit::load::{Load, LoadReport};
use stagewire_devkit::private::{self, PrivateNlb, HOST_VAR, LINK_VAR, PRIVATE_PATH};
use stagewire_devkit::receiver::Received;
use stagewire_devkit::runtime_api::Function;
use tokio::time::Instant;

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

/// How the fault proxy plays the replacement's new VPC link.
#[derive(Debug, Clone, Copy)]
enum NewLink {
    /// `PENDING` for this long, then `AVAILABLE`.
    PendingFor(Duration),
    /// `FAILED` with this status message.
    Failed(&'static str),
}

/// A private stage served through the gateway stand-in: its network load balancer and link
/// bound by one `Custom::StageBinding` of the ECS stack (`VpcLinkFor` and `LoadBalancer` of
/// `!Ref Nlb`), answered by the real `stage-binding` process.
struct PrivateStage {
    w: World,
    net: stagewire_devkit::elb_stack::ElbStack,
    lbs: LocalLoadBalancers,
    old: PrivateNlb,
    api: String,
    cfn: Cloudformation,
    function: Function,
    physical: String,
    gateway: Gateway,
}

/// The ECS stack's binding of `nlb_arn` (`!Ref Nlb`): the link variable and the host variable.
fn ecs_stack_props(api: &str, nlb_arn: &str, service_timeout: &str) -> Value {
    json!({
        "ServiceToken": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
        "ServiceTimeout": service_timeout,
        "RestApiId": api,
        "StageName": "prod",
        "Variables": {
            LINK_VAR: {"VpcLinkFor": {"LoadBalancer": nlb_arn}},
            HOST_VAR: {"LoadBalancer": nlb_arn},
        }
    })
}

impl PrivateStage {
    /// Creates the load balancer, its link and the private API, and the binding's Create (which
    /// creates stage `prod`), then starts the gateway stand-in.
    async fn bind(service_timeout: &str) -> PrivateStage {
        let w = World::new().await;
        let net = w.elb_stack(&unique("net")).await;
        let lbs = LocalLoadBalancers::new();
        let old = private::private_nlb(
            &w.elbv2,
            &w.apigw,
            &lbs,
            &unique("nlb-old"),
            &net.vpc,
            &net.subnets,
        )
        .await
        .unwrap();
        let api = private::private_rest_api(&w.apigw, &unique("PrivateAPI"))
            .await
            .unwrap();
        let cfn = Cloudformation::new().await;
        let function = w.stage_binding_process().await;
        let props = ecs_stack_props(&api, &old.nlb.arn, service_timeout);
        invoke(&function, cfn.create(LOGICAL, props)).await;
        let created = cfn.receiver.received().await;
        assert_success(&created[0]);
        let physical = created[0].field("PhysicalResourceId").unwrap().to_string();
        let gateway = Gateway::start(w.apigw.clone(), &api, lbs.clone(), REFRESH)
            .await
            .unwrap();
        PrivateStage {
            w,
            net,
            lbs,
            old,
            api,
            cfn,
            function,
            physical,
            gateway,
        }
    }

    /// A new network load balancer and its link, the link played by the proxy as `play`.
    async fn new_nlb(&self, play: NewLink) -> PrivateNlb {
        let new = private::private_nlb(
            &self.w.elbv2,
            &self.w.apigw,
            &self.lbs,
            &unique("nlb-new"),
            &self.net.vpc,
            &self.net.subnets,
        )
        .await
        .unwrap();
        match play {
            NewLink::PendingFor(d) => self.w.proxy().hold_vpc_link(&new.vpc_link_id, d),
            NewLink::Failed(message) => self.w.proxy().fail_vpc_link(&new.vpc_link_id, message),
        }
        new
    }

    /// CloudFormation's Update of the binding from `from` to `to`: its answer and how long the
    /// function took to give it.
    async fn update(&self, from: &str, to: &str, service_timeout: &str) -> (Received, Duration) {
        let old_props = ecs_stack_props(&self.api, from, service_timeout);
        let new_props = ecs_stack_props(&self.api, to, service_timeout);
        let before = self.cfn.receiver.received().await.len();
        let started = Instant::now();
        let event = self
            .cfn
            .update(LOGICAL, &self.physical, new_props, old_props);
        invoke(&self.function, event).await;
        let took = started.elapsed();
        let received = self.cfn.receiver.received().await;
        assert_eq!(received.len(), before + 1, "one answer");
        (received[before].clone(), took)
    }

    async fn vars(&self) -> BTreeMap<String, String> {
        self.w.stage_vars(&self.api, "prod").await.unwrap()
    }
}

const LOGICAL: &str = "PrivateStageBinding";
/// How often the gateway stand-in reads stage variables and links.
const REFRESH: Duration = Duration::from_millis(100);

/// Delivers `event` to the function and waits for its answer.
async fn invoke(function: &Function, event: Value) {
    if let Err(e) = function.api.invoke(event, Duration::from_secs(60)).await {
        panic!("no answer: {e}\n{}", function.process.log_text());
    }
}

/// What a replacement under traffic saw.
struct Replaced {
    stage: PrivateStage,
    new: PrivateNlb,
    report: LoadReport,
    /// The binding's Update: its answer and how long it took.
    answer: Received,
    took: Duration,
    /// The stage's variables while the Update was waiting, 1.5 s after it started.
    while_waiting: BTreeMap<String, String>,
    /// Successful stage writes during the Update.
    writes: usize,
}

/// Binds a private stage, serves 50 requests/s through it, replaces its load balancer and link
/// with a new pair whose link the proxy plays as `play`, updates the binding as CloudFormation
/// does, then runs CloudFormation's cleanup: the old pair deleted after a SUCCESS, or after a
/// FAILED the rollback's Update back to the old pair and the new pair deleted.
async fn replace_under_traffic(play: NewLink, service_timeout: &str) -> Replaced {
    let stage = PrivateStage::bind(service_timeout).await;
    let url = format!("{}{PRIVATE_PATH}", stage.gateway.stage_url("prod"));
    let load = Load::start(&url, 50, HELLO, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = stage.new_nlb(play).await;
    stage.w.proxy().reset_counts();
    let ((answer, took), while_waiting) = tokio::join!(
        stage.update(&stage.old.nlb.arn, &new.nlb.arn, service_timeout),
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stage.vars().await
        }
    );
    let writes = stage.w.proxy().answered("PATCH", "/stages/prod", 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (w, lbs) = (&stage.w, &stage.lbs);
    if answer.status() == Some("SUCCESS") {
        private::delete_private_nlb(&w.elbv2, &w.apigw, lbs, &stage.old)
            .await
            .unwrap();
    } else {
        let (rollback, _) = stage
            .update(&new.nlb.arn, &stage.old.nlb.arn, service_timeout)
            .await;
        assert_success(&rollback);
        private::delete_private_nlb(&w.elbv2, &w.apigw, lbs, &new)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = load.stop().await;
    eprintln!("{report:?}; Update in {took:?}: {:?}", answer.body);
    Replaced {
        stage,
        new,
        report,
        answer,
        took,
        while_waiting,
        writes,
    }
}

/// The ECS stack replaces its network load balancer and link under traffic: the new link is
/// `PENDING` for 3 s while the old pair serves; the binding's Update waits, then moves both
/// variables in one write, and the cleanup deletes the old pair; no request fails.
#[tokio::test]
async fn replacing_the_load_balancer_and_its_link_under_traffic_fails_no_request() {
    let run = replace_under_traffic(NewLink::PendingFor(Duration::from_secs(3)), "60").await;
    let (old, new) = (&run.stage.old, &run.new);
    assert_success(&run.answer);
    assert!(run.took >= Duration::from_millis(2500), "{:?}", run.took);
    assert_eq!(run.while_waiting[LINK_VAR], old.vpc_link_id);
    assert_eq!(run.while_waiting[HOST_VAR], old.nlb.dns);
    let vars = run.stage.vars().await;
    assert_eq!(vars[LINK_VAR], new.vpc_link_id);
    assert_eq!(vars[HOST_VAR], new.nlb.dns);
    assert_eq!(run.writes, 1, "both variables in one write");
    assert!(run.report.sent >= 150, "{:?}", run.report);
    assert_eq!(run.report.failed, 0, "{:?}", run.report);
    assert!(run.stage.lbs.served(&new.nlb.dns) > 0);
    assert!(!run.stage.lbs.is_running(&old.nlb.dns));
}

/// A new link still `PENDING` at the binding's deadline (`ServiceTimeout` 8 s): the Update
/// answers FAILED before it, writes nothing, and the old link and host serve throughout.
#[tokio::test]
async fn a_link_pending_past_the_deadline_fails_the_update_and_keeps_the_old_link() {
    let hour = Duration::from_secs(3600);
    let run = replace_under_traffic(NewLink::PendingFor(hour), "8").await;
    assert_eq!(run.answer.status(), Some("FAILED"), "{:?}", run.answer.body);
    let reason = run.answer.field("Reason").unwrap_or_default();
    let pending = format!("VPC link {} is PENDING", run.new.vpc_link_id);
    assert!(reason.contains(&pending), "{reason}");
    assert!(
        reason.contains(&format!("the stage keeps {}", run.stage.old.vpc_link_id)),
        "{reason}"
    );
    assert!(
        run.took >= Duration::from_secs(3) && run.took < Duration::from_secs(8),
        "{:?}",
        run.took
    );
    assert_kept_old(&run).await;
}

/// A new link that goes `FAILED`: the Update answers FAILED with the link's status message,
/// writes nothing, and the old link and host serve throughout.
#[tokio::test]
async fn a_failed_link_fails_the_update_and_keeps_the_old_link() {
    let message = "NLB subnets are in another VPC";
    let run = replace_under_traffic(NewLink::Failed(message), "60").await;
    assert_eq!(run.answer.status(), Some("FAILED"), "{:?}", run.answer.body);
    let reason = run.answer.field("Reason").unwrap_or_default();
    assert!(reason.contains(message), "{reason}");
    assert!(run.took < Duration::from_secs(5), "at once: {:?}", run.took);
    assert_kept_old(&run).await;
}

/// The stage still on the old pair, nothing written, the old pair served every request.
async fn assert_kept_old(run: &Replaced) {
    let old = &run.stage.old;
    assert_eq!(run.writes, 0, "nothing written");
    let vars = run.stage.vars().await;
    assert_eq!(vars[LINK_VAR], old.vpc_link_id);
    assert_eq!(vars[HOST_VAR], old.nlb.dns);
    assert!(run.report.sent >= 100, "{:?}", run.report);
    assert_eq!(run.report.failed, 0, "{:?}", run.report);
    assert_eq!(run.stage.lbs.served(&run.new.nlb.dns), 0);
    assert!(run.stage.lbs.is_running(&old.nlb.dns));
}

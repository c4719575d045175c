//! The test bench's private integrations: the gateway stand-in sends a private stage's requests
//! to the network load balancer its VPC link targets (the link id a stage variable), answers
//! 500 while the link is not `AVAILABLE` or is gone, and follows the variable to another link;
//! the fault proxy plays a link's `PENDING` and `FAILED` states, which moto lacks, and keeps a
//! private integration's `connectionId`, which moto drops.

use std::time::Duration;

use aws_sdk_apigateway::types::{ConnectionType, VpcLinkStatus};
use stagewire_devkit::fault_proxy::{AVAILABLE_MESSAGE, PENDING_MESSAGE};
use stagewire_devkit::gateway::Gateway;
use stagewire_devkit::lbs::{LocalLoadBalancers, HELLO};
use stagewire_devkit::private::{self, PrivateNlb, CONNECTION_ID, LINK_VAR, PRIVATE_PATH};

use crate::support::*;

/// How often the gateway stand-in reads stage variables and links.
const REFRESH: Duration = Duration::from_millis(100);
/// Longer than [`REFRESH`]: the gateway has seen a change made before it.
const SEEN: Duration = Duration::from_millis(300);
const INTERNAL: &str = r#"{"message": "Internal server error"}"#;

/// Two network load balancers, each with its VPC link, and a REST API whose stage `prod` goes
/// through the first one's link, served by the gateway stand-in.
struct Private {
    w: World,
    lbs: LocalLoadBalancers,
    a: PrivateNlb,
    b: PrivateNlb,
    api: String,
    gateway: Gateway,
}

impl Private {
    async fn new() -> Private {
        let w = World::new().await;
        let net = w.elb_stack(&unique("net")).await;
        let lbs = LocalLoadBalancers::new();
        let mut nlbs = Vec::new();
        for prefix in ["nlb-a", "nlb-b"] {
            let nlb = private::private_nlb(
                &w.elbv2,
                &w.apigw,
                &lbs,
                &unique(prefix),
                &net.vpc,
                &net.subnets,
            )
            .await
            .unwrap();
            nlbs.push(nlb);
        }
        let (b, a) = (nlbs.pop().unwrap(), nlbs.pop().unwrap());
        let api = private::private_rest_api(&w.apigw, &unique("PrivateAPI"))
            .await
            .unwrap();
        w.deploy_stage(&api, "prod", &a.stage_variables()).await;
        let gateway = Gateway::start(w.apigw.clone(), &api, lbs.clone(), REFRESH)
            .await
            .unwrap();
        Private {
            w,
            lbs,
            a,
            b,
            api,
            gateway,
        }
    }

    /// `GET /prod/helloworld` through the gateway: the status and the body.
    async fn get(&self) -> (u16, String) {
        let (status, body) = self
            .gateway
            .get(&format!("/prod{PRIVATE_PATH}"))
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn assert_serves(&self) {
        assert_eq!(self.get().await, (200, HELLO.to_string()));
    }

    async fn assert_internal_error(&self) {
        assert_eq!(self.get().await, (500, INTERNAL.to_string()));
    }

    /// The link's status and status message, as GetVpcLink answers through the proxy.
    async fn link_status(&self, id: &str) -> (Option<VpcLinkStatus>, Option<String>) {
        let link = self
            .w
            .apigw
            .get_vpc_link()
            .vpc_link_id(id)
            .send()
            .await
            .unwrap();
        (
            link.status().cloned(),
            link.status_message().map(str::to_owned),
        )
    }
}

#[tokio::test]
async fn a_private_stage_reaches_the_load_balancer_its_link_targets() {
    let p = Private::new().await;
    p.assert_serves().await;
    assert_eq!(p.lbs.served(&p.a.nlb.dns), 1);
    assert_eq!(p.lbs.served(&p.b.nlb.dns), 0);
    // The URI's host is the Host header.
    assert_eq!(
        p.lbs.last_host(&p.a.nlb.dns).as_deref(),
        Some(p.a.nlb.dns.as_str())
    );
    // The integration keeps its connection through the proxy (moto alone drops the id).
    let resource = stagewire_devkit::seed::resources(&p.w.apigw, &p.api)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.path() == Some(PRIVATE_PATH))
        .unwrap();
    let integration =
        p.w.apigw
            .get_integration()
            .rest_api_id(&p.api)
            .resource_id(resource.id().unwrap())
            .http_method("GET")
            .send()
            .await
            .unwrap();
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::VpcLink)
    );
    assert_eq!(integration.connection_id(), Some(CONNECTION_ID));
}

#[tokio::test]
async fn switching_the_link_variable_moves_traffic_to_the_other_load_balancer() {
    let p = Private::new().await;
    p.assert_serves().await;
    p.w.set_var(&p.api, "prod", LINK_VAR, &p.b.vpc_link_id)
        .await;
    tokio::time::sleep(SEEN).await;
    p.assert_serves().await;
    p.assert_serves().await;
    assert_eq!(p.lbs.served(&p.a.nlb.dns), 1);
    assert_eq!(p.lbs.served(&p.b.nlb.dns), 2);
    // The first load balancer and its link go away, as a stack's cleanup removes them.
    private::delete_private_nlb(&p.w.elbv2, &p.w.apigw, &p.lbs, &p.a)
        .await
        .unwrap();
    assert!(!p.lbs.is_running(&p.a.nlb.dns));
    p.assert_serves().await;
    // The link decides where a request goes; the host variable, still the first one's, only
    // its Host header.
    assert_eq!(
        p.lbs.last_host(&p.b.nlb.dns).as_deref(),
        Some(p.a.nlb.dns.as_str())
    );
}

#[tokio::test]
async fn a_pending_failed_or_deleted_link_answers_500() {
    let p = Private::new().await;
    let (proxy, link) = (p.w.proxy(), p.a.vpc_link_id.as_str());
    p.assert_serves().await;
    assert_eq!(
        p.link_status(link).await,
        (Some(VpcLinkStatus::Available), None)
    );

    proxy.hold_vpc_link(link, Duration::from_secs(1));
    assert_eq!(
        p.link_status(link).await,
        (Some(VpcLinkStatus::Pending), Some(PENDING_MESSAGE.into()))
    );
    let listed = p.w.apigw.get_vpc_links().send().await.unwrap();
    let mine = listed
        .items()
        .iter()
        .find(|l| l.id() == Some(link))
        .unwrap();
    assert_eq!(mine.status(), Some(&VpcLinkStatus::Pending));
    tokio::time::sleep(SEEN).await;
    p.assert_internal_error().await;
    // The hold ends on its own.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        p.link_status(link).await,
        (
            Some(VpcLinkStatus::Available),
            Some(AVAILABLE_MESSAGE.into())
        )
    );
    tokio::time::sleep(SEEN).await;
    p.assert_serves().await;

    let message = format!("NLB ARN is malformed: {}", p.a.nlb.arn);
    proxy.fail_vpc_link(link, &message);
    assert_eq!(
        p.link_status(link).await,
        (Some(VpcLinkStatus::Failed), Some(message))
    );
    tokio::time::sleep(SEEN).await;
    p.assert_internal_error().await;
    proxy.release_vpc_link(link);
    tokio::time::sleep(SEEN).await;
    p.assert_serves().await;

    private::delete_rest_vpc_link(&p.w.apigw, link)
        .await
        .unwrap();
    tokio::time::sleep(SEEN).await;
    p.assert_internal_error().await;
    assert_eq!(p.lbs.served(&p.a.nlb.dns), 3);
}

#[tokio::test]
async fn http_api_links_are_held_and_failed_too() {
    use aws_sdk_apigatewayv2::types::VpcLinkStatus;
    let w = World::new().await;
    let net = w.elb_stack(&unique("net")).await;
    let link = w
        .apigw2
        .create_vpc_link()
        .name(unique("link"))
        .set_subnet_ids(Some(net.subnets.clone()))
        .send()
        .await
        .unwrap();
    let id = link.vpc_link_id().unwrap();
    let status = |id: String| {
        let apigw2 = w.apigw2.clone();
        async move {
            let link = apigw2.get_vpc_link().vpc_link_id(id).send().await.unwrap();
            (
                link.vpc_link_status().cloned(),
                link.vpc_link_status_message().map(str::to_owned),
            )
        }
    };
    w.proxy().hold_vpc_link(id, Duration::from_secs(60));
    assert_eq!(
        status(id.to_string()).await,
        (Some(VpcLinkStatus::Pending), Some(PENDING_MESSAGE.into()))
    );
    w.proxy().fail_vpc_link(id, "subnet is full");
    assert_eq!(
        status(id.to_string()).await,
        (Some(VpcLinkStatus::Failed), Some("subnet is full".into()))
    );
    let listed = w.apigw2.get_vpc_links().send().await.unwrap();
    let mine = listed
        .items()
        .iter()
        .find(|l| l.vpc_link_id() == Some(id))
        .unwrap();
    assert_eq!(mine.vpc_link_status(), Some(&VpcLinkStatus::Failed));
}

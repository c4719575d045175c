//! The bench's private stage: a network load balancer and its REST VPC link, bound by one
//! `Custom::StageBinding` (`VpcLinkFor` and `LoadBalancer`, the ECS-stack placement) through the
//! real `stage-binding`, replaced under traffic through the gateway stand-in while the fault
//! proxy holds the new link `PENDING`; the cleanup then deletes the old pair.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stagewire_devkit::gateway::Gateway;
use stagewire_devkit::lbs::{LocalLoadBalancers, HELLO};
use stagewire_devkit::load::Load;
use stagewire_devkit::private::{self, PrivateNlb, HOST_VAR, LINK_VAR, PRIVATE_PATH};
use stagewire_devkit::{error_chain, CfnEvents, Function, LocalAws, ResponseReceiver};

use super::{err, BenchResult, SERVICE_TOKEN};

/// How long the proxy holds the new link `PENDING`.
pub const PENDING: Duration = Duration::from_secs(3);
/// Requests per second through the gateway stand-in.
const RATE: u32 = 50;
const LOGICAL: &str = "PrivateStageBinding";

/// What the replacement under traffic counted.
pub struct PrivateSwap {
    /// Requests sent through the gateway stand-in.
    pub sent: u64,
    /// Requests without a `200` and the expected body.
    pub failed: u64,
    /// From the new link's creation to the first `AVAILABLE` read through the proxy.
    pub pending: Duration,
    /// From the new link's creation to the binding's Update answered.
    pub update: Duration,
    /// The Update's status.
    pub status: String,
    /// Stage writes the Update made.
    pub writes: usize,
}

/// The binding of the ECS stack: both variables from `!Ref Nlb` (`nlb_arn`).
fn props(api: &str, nlb_arn: &str) -> Value {
    json!({
        "ServiceToken": SERVICE_TOKEN,
        "ServiceTimeout": "60",
        "RestApiId": api,
        "StageName": "prod",
        "Variables": {
            LINK_VAR: {"VpcLinkFor": {"LoadBalancer": nlb_arn}},
            HOST_VAR: {"LoadBalancer": nlb_arn},
        }
    })
}

/// The parties of the replacement: clients through the proxy (which plays the links' states
/// and keeps the integration's `connectionId`), CloudFormation's side, the function.
struct Scene {
    apigw: aws_sdk_apigateway::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    lbs: LocalLoadBalancers,
    vpc: String,
    subnets: Vec<String>,
    receiver: ResponseReceiver,
    events: CfnEvents,
    function: Function,
}

impl Scene {
    async fn start(aws: &LocalAws, binary: &Path) -> BenchResult<Scene> {
        let sdk = stagewire_devkit::moto::sdk_config(&aws.proxy.endpoint()).await;
        let cfn = aws_sdk_cloudformation::Client::new(&aws.sdk);
        let net = stagewire_devkit::deploy_elb_stack(&cfn, "BenchPrivateNet", "bench-priv-alb")
            .await
            .map_err(err("deploying the network stack"))?;
        let owner = stagewire_devkit::examples::placeholder_stack(&cfn, "BenchPrivateEcs")
            .await
            .map_err(err("CreateStack"))?;
        let mut env = aws.function_env();
        env.push(("STAGEWIRE_BINDING_AUTHORIZATION".into(), "Open".into()));
        let function = Function::launch(binary, &env, Duration::from_secs(30))
            .await
            .map_err(err("starting stage-binding"))?;
        Ok(Scene {
            apigw: aws_sdk_apigateway::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            lbs: LocalLoadBalancers::new(),
            vpc: net.vpc,
            subnets: net.subnets,
            receiver: ResponseReceiver::start(Vec::new())
                .await
                .map_err(err("starting the response receiver"))?,
            events: CfnEvents::new(&owner, SERVICE_TOKEN),
            function,
        })
    }

    async fn nlb(&self, name: &str) -> BenchResult<PrivateNlb> {
        private::private_nlb(
            &self.elbv2,
            &self.apigw,
            &self.lbs,
            name,
            &self.vpc,
            &self.subnets,
        )
        .await
        .map_err(|e| error_chain(&e))
    }

    /// Sends `event` to the function; answers the status CloudFormation received and the
    /// physical id.
    async fn send(&self, event: Value) -> BenchResult<(String, String)> {
        self.function
            .api
            .invoke(event, Duration::from_secs(60))
            .await
            .map_err(err("invoking stage-binding"))?;
        let received = self.receiver.received().await;
        let last = received.last().ok_or("no answer received")?;
        let field = |key| last.field(key).unwrap_or_default().to_string();
        Ok((field("Status"), field("PhysicalResourceId")))
    }

    /// Reads the link through the proxy until it is `AVAILABLE`: how long that took from `since`.
    async fn available(&self, id: &str, since: Instant) -> Duration {
        use aws_sdk_apigateway::types::VpcLinkStatus;
        loop {
            let link = self.apigw.get_vpc_link().vpc_link_id(id).send().await;
            if link.is_ok_and(|l| l.status() == Some(&VpcLinkStatus::Available)) {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Binds a private stage, serves [`RATE`] requests/s through it, replaces its load balancer and
/// link (the new link `PENDING` for [`PENDING`]), updates the binding, deletes the old pair.
pub async fn measure(aws: &LocalAws, binary: &Path) -> BenchResult<PrivateSwap> {
    let scene = Scene::start(aws, binary).await?;
    let old = scene.nlb("bench-nlb-old").await?;
    let api = private::private_rest_api(&scene.apigw, "BenchPrivateAPI")
        .await
        .map_err(|e| error_chain(&e))?;
    let create = scene
        .events
        .create(&scene.receiver, LOGICAL, props(&api, &old.nlb.arn));
    let (status, physical) = scene.send(create).await?;
    if status != "SUCCESS" {
        return Err(format!("the private binding's Create answered {status}"));
    }
    let gateway = Gateway::start(
        scene.apigw.clone(),
        &api,
        scene.lbs.clone(),
        Duration::from_millis(100),
    )
    .await
    .map_err(err("starting the gateway stand-in"))?;
    let url = format!("{}{PRIVATE_PATH}", gateway.stage_url("prod"));
    let load = Load::start(&url, RATE, HELLO, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = scene.nlb("bench-nlb-new").await?;
    let created = Instant::now();
    aws.proxy.hold_vpc_link(&new.vpc_link_id, PENDING);
    aws.proxy.reset_counts();
    let update = scene.events.update(
        &scene.receiver,
        LOGICAL,
        &physical,
        props(&api, &new.nlb.arn),
        props(&api, &old.nlb.arn),
    );
    let (status, pending) = tokio::join!(
        scene.send(update),
        scene.available(&new.vpc_link_id, created)
    );
    let ((status, _), update) = (status?, created.elapsed());
    let writes = aws.proxy.answered("PATCH", "/stages/prod", 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    private::delete_private_nlb(&scene.elbv2, &scene.apigw, &scene.lbs, &old)
        .await
        .map_err(|e| error_chain(&e))?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = load.stop().await;
    Ok(PrivateSwap {
        sent: report.sent,
        failed: report.failed,
        pending,
        update,
        status,
        writes,
    })
}

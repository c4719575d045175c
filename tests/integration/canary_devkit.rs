//! The test bench's canaries: the fault proxy plays a REST stage's `canarySettings` as API
//! Gateway does (moto keeps none): UpdateStage sets, promotes and removes it, GetStage and
//! GetStages answer it, a non-canary deployment onto a canary stage is refused; the gateway
//! stand-in sends the canary's share of requests to the override values; local load balancers
//! answer a share of 500s; CloudWatch alarms live in moto, and one can fire from those 500s.

use std::time::Duration;

use aws_sdk_apigateway::error::ProvideErrorMetadata;
use aws_sdk_apigateway::types::{DeploymentCanarySettings, Op, PatchOperation};
use stagewire_devkit::alarms::{AlarmState, AlarmWatch, Alarms, FiresWhen};
use stagewire_devkit::gateway::{CanarySplit, Gateway, StageTraffic};
use stagewire_devkit::lbs::LocalLoadBalancers;

use crate::support::*;

/// How often the gateway stand-in reads stages.
const REFRESH: Duration = Duration::from_millis(100);
/// Longer than [`REFRESH`]: the gateway has seen a change made before it.
const SEEN: Duration = Duration::from_millis(300);
const VAR: &str = "helloworldElb";
const OLD: &str = "old-1.us-east-1.elb.amazonaws.com";
const NEW: &str = "new-1.us-east-1.elb.amazonaws.com";

/// A REST API whose stage `prod` points at the old load balancer, served by the gateway
/// stand-in; the new load balancer runs beside it.
struct Bench {
    w: World,
    lbs: LocalLoadBalancers,
    api: String,
    gateway: Gateway,
}

fn op(kind: Op, path: &str, value: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(kind)
        .path(path)
        .value(value)
        .build()
}

fn copy(from: &str, path: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(Op::Copy)
        .from(from)
        .path(path)
        .build()
}

fn remove(path: &str) -> PatchOperation {
    PatchOperation::builder().op(Op::Remove).path(path).build()
}

/// The canary's operations: `percent` of the requests see `helloworldElb` = [`NEW`].
fn canary_ops(percent: &str) -> Vec<PatchOperation> {
    vec![
        op(Op::Replace, "/canarySettings/percentTraffic", percent),
        op(
            Op::Replace,
            &format!("/canarySettings/stageVariableOverrides/{VAR}"),
            NEW,
        ),
    ]
}

/// Promotion as API Gateway's guide does it.
fn promotion() -> Vec<PatchOperation> {
    vec![
        op(Op::Replace, "/canarySettings/percentTraffic", "0.0"),
        copy("/canarySettings/stageVariableOverrides", "/variables"),
        copy("/canarySettings/deploymentId", "/deploymentId"),
    ]
}

impl Bench {
    async fn new() -> Bench {
        let w = World::new().await;
        let lbs = LocalLoadBalancers::new();
        lbs.start(OLD, true).await.unwrap();
        lbs.start(NEW, true).await.unwrap();
        let api = w.rest_api_with_stage("prod", &[(VAR, OLD)]).await;
        let gateway = Gateway::start(w.apigw.clone(), &api, lbs.clone(), REFRESH)
            .await
            .unwrap();
        Bench {
            w,
            lbs,
            api,
            gateway,
        }
    }

    async fn patch(
        &self,
        ops: Vec<PatchOperation>,
    ) -> Result<
        aws_sdk_apigateway::operation::update_stage::UpdateStageOutput,
        aws_sdk_apigateway::error::SdkError<
            aws_sdk_apigateway::operation::update_stage::UpdateStageError,
        >,
    > {
        self.w
            .apigw
            .update_stage()
            .rest_api_id(&self.api)
            .stage_name("prod")
            .set_patch_operations(Some(ops))
            .send()
            .await
    }

    async fn stage(&self) -> aws_sdk_apigateway::operation::get_stage::GetStageOutput {
        self.w
            .apigw
            .get_stage()
            .rest_api_id(&self.api)
            .stage_name("prod")
            .send()
            .await
            .unwrap()
    }

    /// `n` requests to `GET /prod/helloworld`; the statuses answered.
    async fn traffic(&self, n: usize) -> Vec<u16> {
        let mut statuses = Vec::with_capacity(n);
        for _ in 0..n {
            let (status, _) = self.gateway.get("/prod/helloworld").await.unwrap();
            statuses.push(status);
        }
        statuses
    }
}

#[tokio::test]
async fn a_canary_set_through_update_stage_is_read_back_by_get_stage_and_get_stages() {
    let b = Bench::new().await;
    let before = b.stage().await;
    assert!(before.canary_settings().is_none());
    let mut ops = canary_ops("10.5");
    ops.push(op(Op::Replace, "/canarySettings/useStageCache", "true"));
    let answered = b.patch(ops).await.unwrap();
    let canary = answered
        .canary_settings()
        .expect("UpdateStage answers the canary");
    assert_eq!(canary.percent_traffic(), 10.5);
    let read = b.stage().await;
    let canary = read.canary_settings().expect("GetStage answers the canary");
    assert_eq!(canary.percent_traffic(), 10.5);
    assert!(canary.use_stage_cache());
    // A canary made by UpdateStage starts on the stage's deployment.
    assert_eq!(canary.deployment_id(), before.deployment_id());
    assert_eq!(
        canary.stage_variable_overrides().unwrap()[VAR],
        NEW.to_string()
    );
    // The stage's own variables are untouched.
    assert_eq!(read.variables().unwrap()[VAR], OLD.to_string());
    let stages =
        b.w.apigw
            .get_stages()
            .rest_api_id(&b.api)
            .send()
            .await
            .unwrap();
    let prod = stages
        .item()
        .iter()
        .find(|s| s.stage_name() == Some("prod"))
        .unwrap();
    assert_eq!(prod.canary_settings(), read.canary_settings());
    // A share outside 0.0-100.0 is refused and changes nothing.
    for bad in ["100.5", "-1"] {
        let refused = b
            .patch(vec![op(Op::Replace, "/canarySettings/percentTraffic", bad)])
            .await
            .unwrap_err();
        assert!(refused
            .as_service_error()
            .unwrap()
            .is_bad_request_exception());
    }
    assert_eq!(b.stage().await.canary_settings(), read.canary_settings());
    // Moto alone keeps no canary.
    assert_eq!(
        b.w.proxy().canary(&b.api, "prod").unwrap().percent_traffic,
        10.5
    );
}

#[tokio::test]
async fn the_gateway_sends_the_canary_share_of_requests_to_the_override_values() {
    let b = Bench::new().await;
    b.patch(canary_ops("10")).await.unwrap();
    tokio::time::sleep(SEEN).await;
    let statuses = b.traffic(200).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The even split: exactly a tenth, every tenth request.
    assert_eq!(
        b.gateway.traffic("prod"),
        StageTraffic {
            requests: 200,
            canary: 20,
            failed: 0,
            canary_failed: 0
        }
    );
    assert_eq!((b.lbs.served(NEW), b.lbs.served(OLD)), (20, 180));
    // At random from a seed, as API Gateway picks: within a tolerance.
    b.gateway.set_canary_split(CanarySplit::Seeded(7));
    b.gateway.reset_traffic();
    b.patch(vec![op(
        Op::Replace,
        "/canarySettings/percentTraffic",
        "25",
    )])
    .await
    .unwrap();
    tokio::time::sleep(SEEN).await;
    b.traffic(400).await;
    let canary = b.gateway.canary_requests("prod");
    assert!((70..=130).contains(&canary), "{canary} of 400 at 25%");
}

#[tokio::test]
async fn promotion_copies_the_overrides_into_the_variables_and_removing_the_canary_ends_it() {
    let b = Bench::new().await;
    b.patch(canary_ops("10")).await.unwrap();
    let canary_deployment = b
        .stage()
        .await
        .canary_settings()
        .unwrap()
        .deployment_id()
        .map(str::to_owned);
    let promoted = b.patch(promotion()).await.unwrap();
    assert_eq!(promoted.variables().unwrap()[VAR], NEW.to_string());
    assert_eq!(
        promoted.deployment_id().map(str::to_owned),
        canary_deployment
    );
    // Promotion leaves the canary enabled at 0.0%.
    assert_eq!(promoted.canary_settings().unwrap().percent_traffic(), 0.0);
    let off = b.patch(vec![remove("/canarySettings")]).await.unwrap();
    assert!(off.canary_settings().is_none());
    let read = b.stage().await;
    assert!(read.canary_settings().is_none());
    assert_eq!(read.variables().unwrap()[VAR], NEW.to_string());
    tokio::time::sleep(SEEN).await;
    b.traffic(10).await;
    assert_eq!((b.lbs.served(NEW), b.lbs.served(OLD)), (10, 0));
    assert_eq!(b.gateway.canary_requests("prod"), 0);
}

#[tokio::test]
async fn removing_the_canary_rolls_back_to_the_stage_as_it_was() {
    let b = Bench::new().await;
    let before = b.stage().await;
    b.patch(canary_ops("50")).await.unwrap();
    tokio::time::sleep(SEEN).await;
    b.traffic(10).await;
    assert_eq!((b.lbs.served(NEW), b.lbs.served(OLD)), (5, 5));
    let off = b.patch(vec![remove("/canarySettings")]).await.unwrap();
    assert!(off.canary_settings().is_none());
    let after = b.stage().await;
    assert!(after.canary_settings().is_none());
    assert_eq!(after.variables(), before.variables());
    assert_eq!(after.deployment_id(), before.deployment_id());
    assert!(b.w.proxy().canary(&b.api, "prod").is_none());
    tokio::time::sleep(SEEN).await;
    b.traffic(10).await;
    assert_eq!((b.lbs.served(NEW), b.lbs.served(OLD)), (5, 15));
}

#[tokio::test]
async fn a_non_canary_deployment_onto_a_canary_stage_is_refused() {
    let b = Bench::new().await;
    b.patch(canary_ops("10")).await.unwrap();
    let before = b.stage().await;
    let refused =
        b.w.apigw
            .create_deployment()
            .rest_api_id(&b.api)
            .stage_name("prod")
            .send()
            .await
            .unwrap_err();
    let service = refused.as_service_error().unwrap();
    assert!(service.is_bad_request_exception(), "{service:?}");
    assert!(
        service
            .message()
            .unwrap_or_default()
            .contains("Non canary deployment not supported on stage prod"),
        "{service:?}"
    );
    // Moto would have wiped the stage's variables: nothing reached it.
    assert_eq!(b.stage().await.variables(), before.variables());
    // A canary deployment is the canary's; the stage keeps its own.
    let deployment =
        b.w.apigw
            .create_deployment()
            .rest_api_id(&b.api)
            .stage_name("prod")
            .canary_settings(
                DeploymentCanarySettings::builder()
                    .percent_traffic(20.0)
                    .stage_variable_overrides(VAR, NEW)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    let after = b.stage().await;
    let canary = after.canary_settings().unwrap();
    assert_eq!(canary.deployment_id(), deployment.id());
    assert_eq!(canary.percent_traffic(), 20.0);
    assert_eq!(after.deployment_id(), before.deployment_id());
    assert_eq!(after.variables(), before.variables());
    // Onto a stage that does not exist, a canary deployment is refused.
    let missing =
        b.w.apigw
            .create_deployment()
            .rest_api_id(&b.api)
            .stage_name("nosuch")
            .canary_settings(
                DeploymentCanarySettings::builder()
                    .percent_traffic(5.0)
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
    assert!(missing
        .as_service_error()
        .unwrap()
        .is_bad_request_exception());
    // Once the canary is removed, a plain deployment goes through.
    b.patch(vec![remove("/canarySettings")]).await.unwrap();
    b.w.apigw
        .create_deployment()
        .rest_api_id(&b.api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_canary_on_a_load_balancer_failing_a_third_fails_a_third_of_its_share() {
    let b = Bench::new().await;
    b.lbs.set_error_share(NEW, 1.0 / 3.0);
    b.patch(canary_ops("10")).await.unwrap();
    tokio::time::sleep(SEEN).await;
    let statuses = b.traffic(300).await;
    let failed = statuses.iter().filter(|s| **s == 500).count();
    assert_eq!(failed, 10);
    assert_eq!(
        b.gateway.traffic("prod"),
        StageTraffic {
            requests: 300,
            canary: 30,
            failed: 10,
            canary_failed: 10
        }
    );
    assert_eq!(b.lbs.request_counts(NEW), (30, 10));
    assert_eq!(b.lbs.request_counts(OLD), (270, 0));
}

#[tokio::test]
async fn an_alarm_is_created_set_and_read_in_moto() {
    let w = World::new().await;
    let alarms = Alarms::new(&w.endpoint);
    let name = unique("orders-5xx");
    assert!(alarms.get(&name).await.unwrap().is_none());
    alarms
        .put_5xx_alarm(&name, "app/orders/0123456789abcdef")
        .await
        .unwrap();
    // Moto starts a new alarm OK (CloudWatch: INSUFFICIENT_DATA until it evaluates it).
    assert!(alarms.get(&name).await.unwrap().is_some());
    alarms
        .set_state(&name, AlarmState::InsufficientData, "new")
        .await
        .unwrap();
    assert_eq!(
        alarms.state(&name).await.unwrap(),
        AlarmState::InsufficientData
    );
    alarms
        .set_state(&name, AlarmState::Alarm, "Threshold Crossed: test")
        .await
        .unwrap();
    let read = alarms.get(&name).await.unwrap().unwrap();
    assert_eq!(read.state, AlarmState::Alarm);
    assert_eq!(read.reason, "Threshold Crossed: test");
    alarms
        .set_state(&name, AlarmState::Ok, "back")
        .await
        .unwrap();
    assert_eq!(alarms.state(&name).await.unwrap(), AlarmState::Ok);
    assert_eq!(w.proxy().count("monitoring", "SetAlarmState"), 3);
}

#[tokio::test]
async fn an_alarm_watch_fires_when_a_load_balancers_share_of_500s_passes_its_threshold() {
    let b = Bench::new().await;
    let alarms = Alarms::new(&b.w.endpoint);
    let name = unique("new-5xx");
    alarms.put_5xx_alarm(&name, "app/new/1").await.unwrap();
    let fires = FiresWhen {
        threshold: 0.05,
        window: Duration::from_secs(2),
        min_requests: 5,
    };
    let _watch = AlarmWatch::start(alarms.clone(), &name, b.lbs.clone(), NEW, fires);
    // A canary on a good load balancer: the alarm stays OK.
    b.patch(canary_ops("50")).await.unwrap();
    tokio::time::sleep(SEEN).await;
    b.traffic(40).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(alarms.state(&name).await.unwrap(), AlarmState::Ok);
    // A third of its answers 500: ALARM, with the counts in the reason.
    b.lbs.set_error_share(NEW, 1.0 / 3.0);
    b.traffic(40).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = alarms.get(&name).await.unwrap().unwrap();
    assert_eq!(read.state, AlarmState::Alarm, "{}", read.reason);
    assert!(
        read.reason.starts_with("Threshold Crossed"),
        "{}",
        read.reason
    );
}

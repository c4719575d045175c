//! Triggers: what an event asks the re-sync to look at. An [`Input`](super::Input) (an EventBridge event or an
//! operator's `{"resync": ...}`) becomes a [`Trigger`]; anything unknown is ignored, never an
//! error Lambda would retry.

use aws_lambda_events::event::cloudwatch_events::cloudtrail::AWSAPICall;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::source::{load_balancer_name, stack_name};

/// Stack statuses after which outputs may have changed. An update's cleanup statuses are the
/// first moment its outputs are final: replaced resources (a load balancer) still exist and are
/// deleted only during cleanup, so a re-point then comes before the old one goes.
pub const ACTIONABLE_STACK_STATUSES: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
    "DELETE_COMPLETE",
    "ROLLBACK_COMPLETE",
];

/// Stack statuses after which a stack holds no resources: the bindings it owns are gone
/// whether or not their Delete ever ran.
pub const ENDED_STACK_STATUSES: &[&str] = &["DELETE_COMPLETE", "ROLLBACK_COMPLETE"];

/// What an event asks the re-sync to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A stack whose outputs may have changed.
    Stack(String),
    /// A stack that ended (deleted, or rolled back after a failed create): the bindings it
    /// owns are released, and those fed by its outputs checked.
    StackEnded { stack_id: String, name: String },
    /// A load balancer created or deleted (by name); also a REST VPC link created for it.
    LoadBalancer { name: String, deleted: bool },
    /// A VPC link (REST or v2) deleted, by id: the bindings whose values are that id.
    VpcLinkDeleted { id: String },
    /// An ECS service that changed (deployment, steady state).
    EcsService { cluster: String, service: String },
    /// Every binding (the schedule, or an operator).
    Everything,
    /// Nothing to do, and why.
    Ignored(String),
    /// An event naming a resource outside its own account and region: a security event,
    /// nothing done.
    Refused(String),
}

/// Where an event happened: its `account` and `region` (a member account's events forwarded
/// to the hub's bus keep theirs). Both `None` for an operator's request: the hub's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub account: Option<String>,
    pub region: Option<String>,
}

impl Origin {
    /// Where a stack named by its ARN lives (`arn:<partition>:cloudformation:<region>:<account>:
    /// stack/...`); a stack named by its name is the hub's own.
    pub fn of_stack(stack: &str) -> Origin {
        match Arn::parse(stack) {
            Some(a)
                if a.service == "cloudformation"
                    && a.resource.starts_with("stack/")
                    && !a.region.is_empty()
                    && !a.account.is_empty() =>
            {
                Origin {
                    account: Some(a.account.to_owned()),
                    region: Some(a.region.to_owned()),
                }
            }
            _ => Origin::default(),
        }
    }
}

/// `detail` of "CloudFormation Stack Status Change".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StackStatusChange {
    pub stack_id: String,
    pub status_details: StackStatusDetails,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StackStatusDetails {
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// `detail` of "ECS Service Action" and "ECS Deployment State Change" (the fields used).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsServiceEvent {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub cluster_arn: Option<String>,
}

/// An EventBridge event as a trigger: one of [`EVENT_KINDS`], unless it names a resource
/// outside its own account and region.
pub(super) fn of_event(ev: &EventBridgeEvent<Value>) -> Trigger {
    match EVENT_KINDS
        .iter()
        .find(|k| k.source == ev.source && k.detail_type == ev.detail_type)
    {
        Some(kind) => match foreign_arn(ev) {
            Some(why) => Trigger::Refused(why),
            None => (kind.decode)(ev),
        },
        None => Trigger::Ignored(format!(
            "unhandled event {:?} from {}",
            ev.detail_type, ev.source
        )),
    }
}

/// One kind of EventBridge event the re-sync reacts to: where it comes from and how it becomes
/// a trigger. Adding one is an entry here, its decoder, a rule in `template.yaml` (a test
/// checks that every rule routes only kinds listed here) and a sample in `events/`.
pub struct EventKind {
    pub source: &'static str,
    pub detail_type: &'static str,
    decode: fn(&EventBridgeEvent<Value>) -> Trigger,
}

/// Every EventBridge event the re-sync reacts to.
pub const EVENT_KINDS: &[EventKind] = &[
    EventKind {
        source: "aws.cloudformation",
        detail_type: "CloudFormation Stack Status Change",
        decode: stack_status,
    },
    EventKind {
        source: "aws.elasticloadbalancing",
        detail_type: "AWS API Call via CloudTrail",
        decode: elb_call,
    },
    EventKind {
        source: "aws.apigateway",
        detail_type: "AWS API Call via CloudTrail",
        decode: vpc_link_call,
    },
    EventKind {
        source: "aws.ecs",
        detail_type: "ECS Deployment State Change",
        decode: ecs_service,
    },
    EventKind {
        source: "aws.events",
        detail_type: "Scheduled Event",
        decode: |_| Trigger::Everything,
    },
];

/// The parts of an ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`); region and
/// account may be empty (IAM and S3 ARNs name no region).
struct Arn<'a> {
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

impl<'a> Arn<'a> {
    fn parse(arn: &'a str) -> Option<Arn<'a>> {
        match arn.splitn(6, ':').collect::<Vec<_>>()[..] {
            ["arn", _, service, region, account, resource] => Some(Arn {
                service,
                region,
                account,
                resource,
            }),
            _ => None,
        }
    }
}

/// The ARNs of the resources an event speaks of: its `resources`, and the stack, load balancer
/// (also a VPC link's targets) and cluster its detail names.
fn named_arns(ev: &EventBridgeEvent<Value>) -> Vec<&str> {
    let detail = |path: &[&str]| {
        path.iter()
            .try_fold(&ev.detail, |v, k| v.get(k))
            .and_then(Value::as_str)
    };
    let mut arns: Vec<&str> = ev.resources.iter().flatten().map(String::as_str).collect();
    arns.extend(
        [
            detail(&["stack-id"]),
            detail(&["clusterArn"]),
            detail(&["requestParameters", "loadBalancerArn"]),
        ]
        .into_iter()
        .flatten(),
    );
    arns.extend(
        link_targets(&ev.detail)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    arns
}

/// An event speaks only for its own account and region: the first resource it names elsewhere,
/// said as a reason to refuse it.
fn foreign_arn(ev: &EventBridgeEvent<Value>) -> Option<String> {
    let (account, region) = (ev.account.as_deref(), ev.region.as_deref());
    named_arns(ev).into_iter().find_map(|arn| {
        let Arn {
            region: in_region,
            account: in_account,
            ..
        } = Arn::parse(arn)?;
        let elsewhere = (!in_account.is_empty() && Some(in_account) != account)
            || (!in_region.is_empty() && Some(in_region) != region);
        elsewhere.then(|| {
            format!(
                "event of account {} in {} names {arn}, in account {in_account} region {in_region}",
                account.unwrap_or("(none)"),
                region.unwrap_or("(none)")
            )
        })
    })
}

fn stack_status(ev: &EventBridgeEvent<Value>) -> Trigger {
    match StackStatusChange::deserialize(&ev.detail) {
        Ok(d) if ENDED_STACK_STATUSES.contains(&d.status_details.status.as_str()) => {
            Trigger::StackEnded {
                name: stack_name(&d.stack_id).to_string(),
                stack_id: d.stack_id,
            }
        }
        Ok(d) if ACTIONABLE_STACK_STATUSES.contains(&d.status_details.status.as_str()) => {
            Trigger::Stack(stack_name(&d.stack_id).to_string())
        }
        Ok(d) => Trigger::Ignored(format!(
            "stack status {}: outputs cannot have changed",
            d.status_details.status
        )),
        Err(e) => Trigger::Ignored(format!("malformed stack status detail: {e}")),
    }
}

fn elb_call(ev: &EventBridgeEvent<Value>) -> Trigger {
    let failed = ev.detail.get("errorCode").is_some();
    match AWSAPICall::<Value, Value>::deserialize(&ev.detail) {
        Ok(_) if failed => Trigger::Ignored("the API call failed".into()),
        Ok(call) => classify_elb_call(&call),
        Err(e) => Trigger::Ignored(format!("malformed CloudTrail detail: {e}")),
    }
}

/// CloudTrail's API Gateway calls on VPC links (REST and v2 alike: both are
/// `apigateway.amazonaws.com`): a REST link created for a load balancer re-syncs that load
/// balancer's bindings, as its creation does; a link deleted, those whose values are its id.
fn vpc_link_call(ev: &EventBridgeEvent<Value>) -> Trigger {
    let failed = ev.detail.get("errorCode").is_some();
    match AWSAPICall::<Value, Value>::deserialize(&ev.detail) {
        Ok(_) if failed => Trigger::Ignored("the API call failed".into()),
        Ok(call) => classify_vpc_link_call(&call, &ev.detail),
        Err(e) => Trigger::Ignored(format!("malformed CloudTrail detail: {e}")),
    }
}

/// The calls on VPC links that may move a binding's value.
pub const VPC_LINK_EVENT_NAMES: &[&str] = &["CreateVpcLink", "DeleteVpcLink"];

fn classify_vpc_link_call(call: &AWSAPICall<Value, Value>, detail: &Value) -> Trigger {
    match call.event_name.as_str() {
        "CreateVpcLink" => {
            let first = link_targets(detail)
                .and_then(|t| t.first())
                .and_then(Value::as_str);
            match first {
                Some(arn) => Trigger::LoadBalancer {
                    name: load_balancer_name(arn).to_string(),
                    deleted: false,
                },
                None => Trigger::Ignored(
                    "CreateVpcLink without targetArns (a v2 link): no binding's value is its id yet"
                        .into(),
                ),
            }
        }
        "DeleteVpcLink" => match call
            .request_parameters
            .get("vpcLinkId")
            .and_then(Value::as_str)
        {
            Some(id) if !id.is_empty() => Trigger::VpcLinkDeleted { id: id.to_string() },
            _ => Trigger::Ignored("DeleteVpcLink without a vpcLinkId".into()),
        },
        other => Trigger::Ignored(format!("CloudTrail event {other} does not move VPC links")),
    }
}

/// The load balancers a `CreateVpcLink` call names: `targetArns` of its request, or of its
/// response (the link it made) when the request does not show them.
fn link_targets(detail: &Value) -> Option<&Vec<Value>> {
    ["requestParameters", "responseElements"]
        .iter()
        .find_map(|part| detail.get(part)?.get("targetArns")?.as_array())
}

/// The ECS events after which a service's load balancers can have changed: they change only
/// through CreateService and UpdateService, which start a deployment.
pub const ECS_EVENT_NAMES: &[&str] = &["SERVICE_DEPLOYMENT_COMPLETED"];

fn ecs_service(ev: &EventBridgeEvent<Value>) -> Trigger {
    let detail = match EcsServiceEvent::deserialize(&ev.detail) {
        Ok(d) => d,
        Err(e) => return Trigger::Ignored(format!("malformed ECS detail: {e}")),
    };
    let name = detail.event_name.as_deref().unwrap_or("(none)");
    if !ECS_EVENT_NAMES.contains(&name) {
        return Trigger::Ignored(format!("ECS event {name} does not move load balancers"));
    }
    match ev
        .resources
        .iter()
        .flatten()
        .find(|r| r.contains(":service/"))
        .and_then(|arn| ecs_service_of(arn, detail.cluster_arn.as_deref()))
    {
        Some((cluster, service)) => Trigger::EcsService { cluster, service },
        None => Trigger::Ignored("ECS event without a service ARN".into()),
    }
}

fn classify_elb_call(call: &AWSAPICall<Value, Value>) -> Trigger {
    let req = &call.request_parameters;
    let param = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
    match call.event_name.as_str() {
        "CreateLoadBalancer" => match param("name").or_else(|| param("loadBalancerName")) {
            Some(name) => Trigger::LoadBalancer {
                name,
                deleted: false,
            },
            None => Trigger::Ignored("CreateLoadBalancer without a name".into()),
        },
        "DeleteLoadBalancer" => {
            match param("loadBalancerArn").or_else(|| param("loadBalancerName")) {
                Some(id) => Trigger::LoadBalancer {
                    name: load_balancer_name(&id).to_string(),
                    deleted: true,
                },
                None => Trigger::Ignored("DeleteLoadBalancer without a load balancer".into()),
            }
        }
        other => Trigger::Ignored(format!(
            "CloudTrail event {other} does not move load balancers"
        )),
    }
}

/// Cluster and service names from a service ARN (`service/CLUSTER/NAME`, or the older
/// `service/NAME` with the cluster from the event).
fn ecs_service_of(arn: &str, cluster_arn: Option<&str>) -> Option<(String, String)> {
    let path = arn.split_once(":service/")?.1;
    match path.split_once('/') {
        Some((cluster, service)) => Some((cluster.to_string(), service.to_string())),
        None => {
            let cluster = cluster_arn?.rsplit('/').next()?;
            Some((cluster.to_string(), path.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resync::Input;
    use serde_json::json;

    fn classify(event: &Value) -> Trigger {
        Input::from(event.clone()).trigger()
    }

    fn origin(event: &Value) -> Origin {
        Input::from(event.clone()).origin()
    }

    fn eb(source: &str, detail_type: &str, resources: Value, detail: Value) -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": source, "account": "123456789012",
            "time": "2026-11-25T12:00:00Z", "region": "us-east-1",
            "resources": resources, "detail": detail
        })
    }

    fn trail(event_name: &str, request: Value) -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROA:cfn", "arn": "arn:aws:sts::123456789012:assumed-role/x/y", "accountId": "123456789012"},
            "eventTime": "2026-11-25T12:00:00Z", "eventSource": "elasticloadbalancing.amazonaws.com",
            "eventName": event_name, "awsRegion": "us-east-1", "sourceIPAddress": "cloudformation.amazonaws.com",
            "userAgent": "cloudformation.amazonaws.com", "requestParameters": request, "responseElements": null,
            "requestID": "1", "eventID": "2", "eventType": "AwsApiCall"
        })
    }

    #[test]
    fn stack_status_changes() {
        let arn = "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsHelloworldProd/abc";
        let ev = |status: &str| {
            eb(
                "aws.cloudformation",
                "CloudFormation Stack Status Change",
                json!([arn]),
                json!({"stack-id": arn, "status-details": {"status": status, "status-reason": ""}}),
            )
        };
        assert_eq!(
            classify(&ev("UPDATE_COMPLETE")),
            Trigger::Stack("EcsHelloworldProd".into())
        );
        assert_eq!(
            classify(&ev("CREATE_COMPLETE")),
            Trigger::Stack("EcsHelloworldProd".into())
        );
        for ended in ["DELETE_COMPLETE", "ROLLBACK_COMPLETE"] {
            assert_eq!(
                classify(&ev(ended)),
                Trigger::StackEnded {
                    stack_id: arn.into(),
                    name: "EcsHelloworldProd".into()
                }
            );
        }
        // Outputs are final and the replaced resources still exist.
        for cleanup in [
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        ] {
            assert_eq!(
                classify(&ev(cleanup)),
                Trigger::Stack("EcsHelloworldProd".into())
            );
        }
        assert!(matches!(
            classify(&ev("UPDATE_IN_PROGRESS")),
            Trigger::Ignored(_)
        ));
        assert!(matches!(
            classify(&ev("CREATE_FAILED")),
            Trigger::Ignored(_)
        ));
    }

    #[test]
    fn load_balancer_calls() {
        let create = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail(
                "CreateLoadBalancer",
                json!({"name": "new-alb", "type": "application"}),
            ),
        );
        assert_eq!(
            classify(&create),
            Trigger::LoadBalancer {
                name: "new-alb".into(),
                deleted: false
            }
        );
        let delete = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail(
                "DeleteLoadBalancer",
                json!({"loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/old-alb/123"}),
            ),
        );
        assert_eq!(
            classify(&delete),
            Trigger::LoadBalancer {
                name: "old-alb".into(),
                deleted: true
            }
        );
        let classic = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            trail("DeleteLoadBalancer", json!({"loadBalancerName": "legacy"})),
        );
        assert_eq!(
            classify(&classic),
            Trigger::LoadBalancer {
                name: "legacy".into(),
                deleted: true
            }
        );
        let mut failed = trail("CreateLoadBalancer", json!({"name": "x"}));
        failed["errorCode"] = json!("DuplicateLoadBalancerName");
        let failed = eb(
            "aws.elasticloadbalancing",
            "AWS API Call via CloudTrail",
            json!([]),
            failed,
        );
        assert!(matches!(classify(&failed), Trigger::Ignored(_)));
    }

    fn apigateway_trail(event_name: &str, request: Value, response: Value) -> Value {
        let mut t = trail(event_name, request);
        t["eventSource"] = json!("apigateway.amazonaws.com");
        t["responseElements"] = response;
        eb(
            "aws.apigateway",
            "AWS API Call via CloudTrail",
            json!([]),
            t,
        )
    }

    #[test]
    fn vpc_link_calls() {
        let nlb =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/new-nlb/1a2b";
        let create = apigateway_trail(
            "CreateVpcLink",
            json!({"name": "private-link", "targetArns": [nlb]}),
            json!({"id": "x7k2p9", "status": "PENDING", "targetArns": [nlb]}),
        );
        assert_eq!(
            classify(&create),
            Trigger::LoadBalancer {
                name: "new-nlb".into(),
                deleted: false
            }
        );
        // The targets of the link made, when the request does not show them.
        let from_response = apigateway_trail(
            "CreateVpcLink",
            json!({"name": "private-link"}),
            json!({"id": "x7k2p9", "targetArns": [nlb]}),
        );
        assert_eq!(classify(&from_response), classify(&create));
        let delete = apigateway_trail("DeleteVpcLink", json!({"vpcLinkId": "x7k2p9"}), json!(null));
        assert_eq!(
            classify(&delete),
            Trigger::VpcLinkDeleted {
                id: "x7k2p9".into()
            }
        );
        // A v2 link names subnets, not a load balancer: no binding's value is its id yet.
        let v2 = apigateway_trail(
            "CreateVpcLink",
            json!({"name": "v2", "subnetIds": ["subnet-1"], "securityGroupIds": []}),
            json!({"vpcLinkId": "v2link"}),
        );
        assert!(matches!(classify(&v2), Trigger::Ignored(_)));
        let mut failed =
            apigateway_trail("DeleteVpcLink", json!({"vpcLinkId": "x7k2p9"}), json!(null));
        failed["detail"]["errorCode"] = json!("NotFoundException");
        assert!(matches!(classify(&failed), Trigger::Ignored(_)));
        let other = apigateway_trail("CreateRestApi", json!({"name": "api"}), json!(null));
        assert!(matches!(classify(&other), Trigger::Ignored(_)));
    }

    #[test]
    fn a_vpc_link_for_a_load_balancer_elsewhere_is_refused() {
        let foreign = "arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/net/nlb/1";
        let ev = apigateway_trail(
            "CreateVpcLink",
            json!({"name": "l", "targetArns": [foreign]}),
            json!(null),
        );
        assert!(matches!(classify(&ev), Trigger::Refused(why) if why.contains(foreign)));
    }

    #[test]
    fn ecs_events() {
        let svc = "arn:aws:ecs:us-east-1:123456789012:service/prod/helloworld";
        {
            let ev = eb(
                "aws.ecs",
                "ECS Deployment State Change",
                json!([svc]),
                json!({"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"}),
            );
            assert_eq!(
                classify(&ev),
                Trigger::EcsService {
                    cluster: "prod".into(),
                    service: "helloworld".into()
                }
            );
        }
        let old_format = eb(
            "aws.ecs",
            "ECS Deployment State Change",
            json!(["arn:aws:ecs:us-east-1:123456789012:service/helloworld"]),
            json!({"eventName": "SERVICE_DEPLOYMENT_COMPLETED", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"}),
        );
        assert_eq!(
            classify(&old_format),
            Trigger::EcsService {
                cluster: "prod".into(),
                service: "helloworld".into()
            }
        );
        // Steady-state reports and other deployment stages move no load balancer.
        for name in ["SERVICE_STEADY_STATE", "SERVICE_DEPLOYMENT_IN_PROGRESS"] {
            let ev = eb(
                "aws.ecs",
                "ECS Deployment State Change",
                json!([svc]),
                json!({"eventName": name}),
            );
            assert!(matches!(classify(&ev), Trigger::Ignored(_)), "{name}");
        }
    }

    #[test]
    fn a_manual_request_naming_a_stack_by_arn_comes_from_its_account_and_region() {
        let member = "arn:aws:cloudformation:eu-west-1:222222222222:stack/Ecs/1a2b";
        assert_eq!(
            origin(&json!({"resync": {"stack": member}})),
            Origin {
                account: Some("222222222222".into()),
                region: Some("eu-west-1".into()),
            }
        );
        assert_eq!(
            Origin::of_stack(member),
            origin(&json!({"resync": {"stack": member}}))
        );
        for hub in [
            json!({"resync": {"stack": "Ecs"}}),
            json!({"resync": "all"}),
            json!({"resync": {"stack": "arn:aws:s3:::bucket/stack/x"}}),
        ] {
            assert_eq!(origin(&hub), Origin::default(), "{hub}");
        }
    }

    #[test]
    fn schedule_manual_and_unknown() {
        let sched = eb(
            "aws.events",
            "Scheduled Event",
            json!(["arn:aws:events:us-east-1:123456789012:rule/r"]),
            json!({}),
        );
        assert_eq!(classify(&sched), Trigger::Everything);
        assert_eq!(classify(&json!({"resync": "all"})), Trigger::Everything);
        assert_eq!(
            classify(&json!({"resync": {"stack": "S"}})),
            Trigger::Stack("S".into())
        );
        assert!(matches!(
            classify(&json!({"resync": "some"})),
            Trigger::Ignored(_)
        ));
        assert!(matches!(
            classify(&json!({"hello": 1})),
            Trigger::Ignored(_)
        ));
        assert!(matches!(classify(&json!("text")), Trigger::Ignored(_)));
        let other = eb("aws.s3", "Object Created", json!([]), json!({}));
        assert!(matches!(classify(&other), Trigger::Ignored(_)));
    }
}

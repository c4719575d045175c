//! Private integrations for the test bench: an internal network load balancer with a REST VPC
//! link in front of it, served by a local load balancer, and a REST API whose `GET /helloworld`
//! goes through the link a stage variable names.
//!
//! Moto refuses TCP listeners in CloudFormation templates, so the load balancer, its target
//! group and listener are created through the ELBv2 API, in the subnets of a VPC the caller
//! has (such as [`crate::ElbStack`]'s). Moto drops a private integration's `connectionId`:
//! create the API with a client pointed at the [`crate::FaultProxy`], which keeps it.

use aws_sdk_apigateway::types::{ConnectionType, IntegrationType};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    TargetTypeEnum,
};

use crate::lbs::LocalLoadBalancers;
use crate::DevkitError;

/// The stage variable holding the VPC link id.
pub const LINK_VAR: &str = "vpcLinkId";
/// The stage variable holding the host name the request carries (the `Host` header).
pub const HOST_VAR: &str = "privateHost";
/// The private integration's `connectionId`.
pub const CONNECTION_ID: &str = "${stageVariables.vpcLinkId}";
/// The private integration's URI.
pub const PRIVATE_URI: &str = "http://${stageVariables.privateHost}/";
/// The path of the private method, as [`crate::gateway::Gateway`] serves it under a stage.
pub const PRIVATE_PATH: &str = "/helloworld";

/// An internal network load balancer with a TCP listener on port 80 and its target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlb {
    /// The load balancer's name.
    pub name: String,
    /// The load balancer's ARN (what a VPC link targets).
    pub arn: String,
    /// The load balancer's DNS name.
    pub dns: String,
    /// The target group's ARN.
    pub tg_arn: String,
}

/// A network load balancer and the REST VPC link that targets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateNlb {
    /// The load balancer.
    pub nlb: Nlb,
    /// The REST VPC link's id.
    pub vpc_link_id: String,
}

impl PrivateNlb {
    /// The stage variables that send a private stage to this load balancer.
    pub fn stage_variables(&self) -> [(&'static str, &str); 2] {
        [(LINK_VAR, &self.vpc_link_id), (HOST_VAR, &self.nlb.dns)]
    }
}

/// Creates the internal network load balancer `name` in `subnets` of `vpc`, with a TCP target
/// group (one target registered when `healthy`, which moto then reports healthy) and a TCP
/// listener on port 80, and starts its local stand-in in `lbs` (serving when `healthy`), named by
/// its ARN too.
pub async fn internal_nlb(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    lbs: &LocalLoadBalancers,
    name: &str,
    vpc: &str,
    subnets: &[String],
    healthy: bool,
) -> Result<Nlb, DevkitError> {
    let out = elbv2
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateLoadBalancer", e))?;
    let lb = out
        .load_balancers()
        .first()
        .ok_or_else(|| DevkitError::Unexpected(format!("CreateLoadBalancer {name}: none")))?;
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let dns = lb.dns_name().unwrap_or_default().to_string();
    let tg_arn = tcp_listener(elbv2, &arn, name, vpc).await?;
    if healthy {
        crate::elb_stack::register_target(elbv2, &tg_arn, "10.0.1.10").await?;
    }
    lbs.start(&dns, healthy).await?;
    lbs.name_arn(&arn, &dns);
    Ok(Nlb {
        name: name.to_string(),
        arn,
        dns,
        tg_arn,
    })
}

/// A TCP target group in `vpc` (named after the load balancer `name`) and a TCP listener on
/// port 80 of the load balancer `lb_arn` forwarding to it; answers the target group's ARN.
async fn tcp_listener(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    lb_arn: &str,
    name: &str,
    vpc: &str,
) -> Result<String, DevkitError> {
    let tg = elbv2
        .create_target_group()
        .name(format!("{}-tg", &name[..name.len().min(29)]))
        .protocol(ProtocolEnum::Tcp)
        .port(80)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateTargetGroup", e))?;
    let tg_arn = tg
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .unwrap_or_default()
        .to_string();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(&tg_arn)
        .build();
    elbv2
        .create_listener()
        .load_balancer_arn(lb_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(80)
        .default_actions(forward)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateListener", e))?;
    Ok(tg_arn)
}

/// Creates the REST VPC link `name` targeting the load balancer `target_arn`; answers its id.
pub async fn rest_vpc_link(
    apigw: &aws_sdk_apigateway::Client,
    name: &str,
    target_arn: &str,
) -> Result<String, DevkitError> {
    let link = apigw
        .create_vpc_link()
        .name(name)
        .target_arns(target_arn)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateVpcLink", e))?;
    Ok(link.id().unwrap_or_default().to_string())
}

/// Deletes the REST VPC link `id`.
pub async fn delete_rest_vpc_link(
    apigw: &aws_sdk_apigateway::Client,
    id: &str,
) -> Result<(), DevkitError> {
    apigw
        .delete_vpc_link()
        .vpc_link_id(id)
        .send()
        .await
        .map_err(|e| DevkitError::aws("DeleteVpcLink", e))?;
    Ok(())
}

/// [`internal_nlb`] `name` and a REST VPC link of the same name targeting it.
pub async fn private_nlb(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    apigw: &aws_sdk_apigateway::Client,
    lbs: &LocalLoadBalancers,
    name: &str,
    vpc: &str,
    subnets: &[String],
) -> Result<PrivateNlb, DevkitError> {
    let nlb = internal_nlb(elbv2, lbs, name, vpc, subnets, true).await?;
    let vpc_link_id = rest_vpc_link(apigw, name, &nlb.arn).await?;
    Ok(PrivateNlb { nlb, vpc_link_id })
}

/// Deletes the VPC link of `private`, then its load balancer, in moto and in `lbs` (whose port
/// refuses connections from then on), as a stack's cleanup does after a replacement.
pub async fn delete_private_nlb(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    apigw: &aws_sdk_apigateway::Client,
    lbs: &LocalLoadBalancers,
    private: &PrivateNlb,
) -> Result<(), DevkitError> {
    delete_rest_vpc_link(apigw, &private.vpc_link_id).await?;
    elbv2
        .delete_load_balancer()
        .load_balancer_arn(&private.nlb.arn)
        .send()
        .await
        .map_err(|e| DevkitError::aws("DeleteLoadBalancer", e))?;
    lbs.delete(&private.nlb.dns);
    Ok(())
}

/// A REST API named `name` whose `GET /helloworld` is a private integration: HTTP_PROXY with
/// `connectionType: VPC_LINK`, `connectionId: ${stageVariables.vpcLinkId}` and the URI
/// `http://${stageVariables.privateHost}/`; answers its id.
pub async fn private_rest_api(
    apigw: &aws_sdk_apigateway::Client,
    name: &str,
) -> Result<String, DevkitError> {
    let path_part = PRIVATE_PATH.trim_start_matches('/');
    let (api_id, resource_id) = crate::seed::rest_api_with_get(apigw, name, path_part).await?;
    apigw
        .put_integration()
        .rest_api_id(&api_id)
        .resource_id(&resource_id)
        .http_method("GET")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("GET")
        .connection_type(ConnectionType::VpcLink)
        .connection_id(CONNECTION_ID)
        .uri(PRIVATE_URI)
        .send()
        .await
        .map_err(|e| DevkitError::aws("PutIntegration", e))?;
    Ok(api_id)
}

//! The load-balancer stack of `tests/fixtures/elb-stack.yaml`: a VPC, an ELBv2 load balancer
//! with a target group and a listener, and the outputs a binding reads.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::Parameter;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

use crate::{workspace_root, DevkitError};

/// The template, relative to the workspace root.
pub const ELB_STACK_TEMPLATE: &str = "tests/fixtures/elb-stack.yaml";
/// The output holding the load balancer's DNS name.
pub const DNS_OUTPUT: &str = "EcsElbDnsName";

/// A deployed load-balancer stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElbStack {
    /// The stack's name.
    pub name: String,
    /// The stack's ARN.
    pub stack_id: String,
    /// The load balancer's DNS name (the `EcsElbDnsName` output).
    pub dns: String,
    /// The load balancer's ARN.
    pub lb_arn: String,
    /// The load balancer's name.
    pub lb_name: String,
    /// The target group's ARN.
    pub tg_arn: String,
    /// The VPC's id.
    pub vpc: String,
    /// The subnets' ids.
    pub subnets: Vec<String>,
}

/// Creates the stack `name` holding a load balancer named `lb_name`.
pub async fn deploy_elb_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    lb_name: &str,
) -> Result<ElbStack, DevkitError> {
    let path = workspace_root().join(ELB_STACK_TEMPLATE);
    let template = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| DevkitError::io(format!("reading {}", path.display()), e))?;
    cfn.create_stack()
        .stack_name(name)
        .template_body(template)
        .parameters(
            Parameter::builder()
                .parameter_key("LbName")
                .parameter_value(lb_name)
                .build(),
        )
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateStack", e))?;
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| DevkitError::aws("DescribeStacks", e))?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| DevkitError::Unexpected(format!("DescribeStacks {name}: no stack")))?;
    let outputs: BTreeMap<&str, &str> = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
        .collect();
    let output = |key: &str| {
        outputs
            .get(key)
            .map(|v| v.to_string())
            .ok_or_else(|| DevkitError::Unexpected(format!("stack {name} has no output {key}")))
    };
    Ok(ElbStack {
        name: name.to_string(),
        stack_id: stack.stack_id().unwrap_or_default().to_string(),
        dns: output(DNS_OUTPUT)?,
        lb_arn: output("LoadBalancerArn")?,
        lb_name: lb_name.to_string(),
        tg_arn: output("TargetGroupArn")?,
        vpc: output("VpcId")?,
        subnets: output("SubnetIds")?.split(',').map(str::to_owned).collect(),
    })
}

/// Registers the target `ip`, port 80, in the target group `tg_arn` (moto reports it healthy).
pub async fn register_target(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    tg_arn: &str,
    ip: &str,
) -> Result<(), DevkitError> {
    let target = TargetDescription::builder().id(ip).port(80).build();
    elbv2
        .register_targets()
        .target_group_arn(tg_arn)
        .targets(target)
        .send()
        .await
        .map_err(|e| DevkitError::aws("RegisterTargets", e))?;
    Ok(())
}

//! Elastic Load Balancing: ELBv2 (application and network load balancers) and classic ELBs.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tracing::instrument;

use super::sdk_error;
use crate::ports::{AwsError, ErrorKind, LbFamily, LoadBalancer, LoadBalancers, TargetHealth};

pub struct ElbAdapter {
    v2: aws_sdk_elasticloadbalancingv2::Client,
    classic: aws_sdk_elasticloadbalancing::Client,
}

impl ElbAdapter {
    pub fn new(
        v2: aws_sdk_elasticloadbalancingv2::Client,
        classic: aws_sdk_elasticloadbalancing::Client,
    ) -> Self {
        ElbAdapter { v2, classic }
    }
}

const SERVICE: &str = "elasticloadbalancing";

/// An SDK call's answer, its error classified.
fn answer<T, E>(
    operation: &'static str,
    sent: Result<T, SdkError<E, HttpResponse>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    sent.map_err(|e| sdk_error(SERVICE, operation, e))
}

/// As [`answer`], with a missing load balancer or target group read as `None`.
fn lookup<T, E>(
    operation: &'static str,
    sent: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer(operation, sent) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
        // ELBv2 answers a malformed name or ARN with ValidationError.
        Err(e) if e.code.as_deref() == Some("ValidationError") => Ok(None),
        Err(e) => Err(e),
    }
}

/// A load balancer as the SDKs describe it (an empty DNS name is none).
fn described(
    family: LbFamily,
    name: Option<&str>,
    arn: Option<&str>,
    dns_name: Option<&str>,
) -> LoadBalancer {
    LoadBalancer {
        family,
        name: name.unwrap_or_default().to_string(),
        arn: arn.map(str::to_owned),
        dns_name: dns_name.filter(|d| !d.is_empty()).map(str::to_owned),
    }
}

fn v2_lb(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancer {
    let (name, arn) = (lb.load_balancer_name(), lb.load_balancer_arn());
    described(LbFamily::V2, name, arn, lb.dns_name())
}

fn classic_lb(lb: &aws_sdk_elasticloadbalancing::types::LoadBalancerDescription) -> LoadBalancer {
    described(
        LbFamily::Classic,
        lb.load_balancer_name(),
        None,
        lb.dns_name(),
    )
}

#[async_trait]
impl LoadBalancers for ElbAdapter {
    #[instrument(skip(self))]
    async fn v2(&self, name_or_arn: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let req = self.v2.describe_load_balancers();
        let req = if name_or_arn.starts_with("arn:") {
            req.load_balancer_arns(name_or_arn)
        } else {
            req.names(name_or_arn)
        };
        let out = lookup("DescribeLoadBalancers", req.send().await)?;
        Ok(out.and_then(|o| o.load_balancers().first().map(v2_lb)))
    }

    #[instrument(skip(self))]
    async fn classic(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let req = self.classic.describe_load_balancers();
        let out = lookup(
            "DescribeLoadBalancers",
            req.load_balancer_names(name).send().await,
        )?;
        Ok(out.and_then(|o| o.load_balancer_descriptions().first().map(classic_lb)))
    }

    #[instrument(skip(self))]
    async fn target_group_load_balancers(
        &self,
        target_group_arn: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let req = self.v2.describe_target_groups();
        let sent = req.target_group_arns(target_group_arn).send().await;
        let out = lookup("DescribeTargetGroups", sent)?;
        Ok(out.and_then(|o| {
            o.target_groups()
                .first()
                .map(|tg| tg.load_balancer_arns().to_vec())
        }))
    }

    #[instrument(skip(self))]
    async fn target_health(&self, lb_arn: &str) -> Result<TargetHealth, AwsError> {
        let req = self.v2.describe_target_groups().load_balancer_arn(lb_arn);
        let groups = answer("DescribeTargetGroups", req.send().await)?;
        let mut health = TargetHealth::default();
        for arn in groups
            .target_groups()
            .iter()
            .filter_map(|tg| tg.target_group_arn())
        {
            let req = self.v2.describe_target_health().target_group_arn(arn);
            let out = answer("DescribeTargetHealth", req.send().await)?;
            for d in out.target_health_descriptions() {
                health.total += 1;
                if d.target_health().and_then(|h| h.state())
                    == Some(&TargetHealthStateEnum::Healthy)
                {
                    health.healthy += 1;
                }
            }
        }
        Ok(health)
    }

    #[instrument(skip(self))]
    async fn all(&self) -> Result<Vec<LoadBalancer>, AwsError> {
        let mut all = Vec::new();
        let mut pages = self.v2.describe_load_balancers().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = answer("DescribeLoadBalancers", page)?;
            all.extend(page.load_balancers().iter().map(v2_lb));
        }
        let mut marker = None;
        loop {
            let req = self.classic.describe_load_balancers().set_marker(marker);
            let page = answer("DescribeLoadBalancers", req.send().await)?;
            all.extend(page.load_balancer_descriptions().iter().map(classic_lb));
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(all)
    }
}

//! Elastic Load Balancing: ELBv2 (application and network load balancers) and classic ELBs.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
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

fn not_found_is_none<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
        // ELBv2 answers a malformed name or ARN with ValidationError.
        Err(e) if e.code.as_deref() == Some("ValidationError") => Ok(None),
        Err(e) => Err(e),
    }
}

fn v2_lb(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancer {
    LoadBalancer {
        family: LbFamily::V2,
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        arn: lb.load_balancer_arn().map(str::to_owned),
        dns_name: lb.dns_name().filter(|d| !d.is_empty()).map(str::to_owned),
    }
}

fn classic_lb(lb: &aws_sdk_elasticloadbalancing::types::LoadBalancerDescription) -> LoadBalancer {
    LoadBalancer {
        family: LbFamily::Classic,
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        arn: None,
        dns_name: lb.dns_name().filter(|d| !d.is_empty()).map(str::to_owned),
    }
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
        let out = not_found_is_none(
            req.send()
                .await
                .map_err(|e| sdk_error("elasticloadbalancing", "DescribeLoadBalancers", e)),
        )?;
        Ok(out.and_then(|o| o.load_balancers().first().map(v2_lb)))
    }

    #[instrument(skip(self))]
    async fn classic(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let out = not_found_is_none(
            self.classic
                .describe_load_balancers()
                .load_balancer_names(name)
                .send()
                .await
                .map_err(|e| sdk_error("elasticloadbalancing", "DescribeLoadBalancers", e)),
        )?;
        Ok(out.and_then(|o| o.load_balancer_descriptions().first().map(classic_lb)))
    }

    #[instrument(skip(self))]
    async fn target_group_load_balancers(
        &self,
        target_group_arn: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let out = not_found_is_none(
            self.v2
                .describe_target_groups()
                .target_group_arns(target_group_arn)
                .send()
                .await
                .map_err(|e| sdk_error("elasticloadbalancing", "DescribeTargetGroups", e)),
        )?;
        Ok(out.and_then(|o| {
            o.target_groups()
                .first()
                .map(|tg| tg.load_balancer_arns().to_vec())
        }))
    }

    #[instrument(skip(self))]
    async fn target_health(&self, lb_arn: &str) -> Result<TargetHealth, AwsError> {
        let groups = self
            .v2
            .describe_target_groups()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing", "DescribeTargetGroups", e))?;
        let mut health = TargetHealth::default();
        for tg in groups.target_groups() {
            let Some(arn) = tg.target_group_arn() else {
                continue;
            };
            let out = self
                .v2
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| sdk_error("elasticloadbalancing", "DescribeTargetHealth", e))?;
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
            let page =
                page.map_err(|e| sdk_error("elasticloadbalancing", "DescribeLoadBalancers", e))?;
            all.extend(page.load_balancers().iter().map(v2_lb));
        }
        let mut marker = None;
        loop {
            let page = self
                .classic
                .describe_load_balancers()
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| sdk_error("elasticloadbalancing", "DescribeLoadBalancers", e))?;
            all.extend(page.load_balancer_descriptions().iter().map(classic_lb));
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(all)
    }
}

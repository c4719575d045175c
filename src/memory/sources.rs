//! Where values come from: stack outputs, ECS services and load balancers.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::World;
use crate::ports::{
    op, AwsError, EcsLoadBalancer, EcsServices, LbFamily, LoadBalancer, LoadBalancers,
    StackOutputs, StackResource, TargetHealth,
};

#[async_trait]
impl StackOutputs for World {
    async fn outputs(&self, stack: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        Ok(self.call(op::STACK_OUTPUTS)?.stacks.get(stack).cloned())
    }

    async fn stack_status(&self, stack: &str) -> Result<Option<String>, AwsError> {
        Ok(self.call(op::STACK_STATUS)?.statuses.get(stack).cloned())
    }

    async fn template_resources(&self, stack: &str) -> Result<Option<BTreeSet<String>>, AwsError> {
        Ok(self
            .call(op::TEMPLATE_RESOURCES)?
            .templates
            .get(stack)
            .cloned())
    }

    async fn stack_resource(
        &self,
        stack_id: &str,
        logical_id: &str,
    ) -> Result<Option<StackResource>, AwsError> {
        Ok(self
            .call(op::STACK_RESOURCE)?
            .stack_resources
            .get(&(stack_id.to_string(), logical_id.to_string()))
            .cloned())
    }
}

#[async_trait]
impl EcsServices for World {
    async fn load_balancers(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Vec<EcsLoadBalancer>>, AwsError> {
        let s = self.call(op::SERVICE_LOAD_BALANCERS)?;
        Ok(s.services
            .get(&(cluster.to_string(), service.to_string()))
            .cloned())
    }
}

#[async_trait]
impl LoadBalancers for World {
    async fn v2(&self, name_or_arn: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let s = self.call(op::LOAD_BALANCER_V2)?;
        Ok(s.load_balancers
            .iter()
            .find(|lb| {
                lb.family == LbFamily::V2
                    && (lb.name == name_or_arn || lb.arn.as_deref() == Some(name_or_arn))
            })
            .cloned())
    }

    async fn classic(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let s = self.call(op::LOAD_BALANCER_CLASSIC)?;
        Ok(s.load_balancers
            .iter()
            .find(|lb| lb.family == LbFamily::Classic && lb.name == name)
            .cloned())
    }

    async fn target_group_load_balancers(
        &self,
        target_group_arn: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let s = self.call(op::TARGET_GROUP_LOAD_BALANCERS)?;
        // A target group ARN names its load balancer after `targetgroup/`.
        let name = target_group_arn.rsplit('/').nth(1).unwrap_or_default();
        Ok(s.load_balancers
            .iter()
            .find(|lb| lb.name == name)
            .map(|lb| lb.arn.iter().cloned().collect()))
    }

    async fn target_health(&self, lb_arn: &str) -> Result<TargetHealth, AwsError> {
        let s = self.call(op::TARGET_HEALTH)?;
        let healthy = s.healthy.get(lb_arn).copied().unwrap_or(0);
        Ok(TargetHealth {
            healthy,
            total: healthy.max(1),
        })
    }

    async fn all(&self) -> Result<Vec<LoadBalancer>, AwsError> {
        Ok(self.call(op::ALL_LOAD_BALANCERS)?.load_balancers.clone())
    }
}

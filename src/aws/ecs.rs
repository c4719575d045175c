//! ECS services.

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use tracing::instrument;

use super::{found, sdk_error};
use crate::ports::{AwsError, EcsLoadBalancer, EcsServices};

pub struct EcsAdapter {
    client: Client,
}

impl EcsAdapter {
    pub fn new(client: Client) -> Self {
        EcsAdapter { client }
    }
}

#[async_trait]
impl EcsServices for EcsAdapter {
    #[instrument(skip(self))]
    async fn load_balancers(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Vec<EcsLoadBalancer>>, AwsError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| sdk_error("ecs", "DescribeServices", e));
        let Some(out) = found(out)? else {
            return Ok(None);
        };
        let Some(svc) = out
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
        else {
            return Ok(None);
        };
        Ok(Some(
            svc.load_balancers()
                .iter()
                .map(|lb| EcsLoadBalancer {
                    target_group_arn: lb.target_group_arn().map(str::to_owned),
                    load_balancer_name: lb.load_balancer_name().map(str::to_owned),
                    container_name: lb.container_name().map(str::to_owned),
                    container_port: lb.container_port().and_then(|p| u16::try_from(p).ok()),
                })
                .collect(),
        ))
    }
}

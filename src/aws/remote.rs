//! Sources in other accounts and regions: per place, clients for CloudFormation, ECS and
//! Elastic Load Balancing in that region, with the credentials of the role it names, built
//! once and kept for the life of the process (warm invocations reuse them). The role's
//! credentials come from STS `AssumeRole` (session name `stagewire`); the SDK's identity
//! cache keeps them and assumes the role again shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use super::{CfnStackOutputs, EcsAdapter, ElbAdapter};
use crate::domain::Place;
use crate::ports::{Elsewhere, SourcePorts};

/// The session name of every assumed role: what the member account's CloudTrail shows.
pub const SESSION_NAME: &str = "stagewire";

pub struct Remote {
    sdk: SdkConfig,
    built: Mutex<HashMap<Place, SourcePorts>>,
}

impl Remote {
    pub fn new(sdk: &SdkConfig) -> Self {
        Remote {
            sdk: sdk.clone(),
            built: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, place: &Place) -> Option<SourcePorts> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.get(place).cloned()
    }

    async fn config(&self, place: &Place) -> SdkConfig {
        let mut sdk = self.sdk.to_builder();
        if let Some(region) = &place.region {
            sdk.set_region(Some(Region::new(region.clone())));
        }
        if let Some(role) = &place.role_arn {
            let mut assume = AssumeRoleProvider::builder(role.clone())
                .session_name(SESSION_NAME)
                .configure(&self.sdk);
            if let Some(region) = &place.region {
                // STS of the source's region.
                assume = assume.region(Region::new(region.clone()));
            }
            let provider = assume.build().await;
            sdk.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
        }
        sdk.build()
    }
}

#[async_trait]
impl Elsewhere for Remote {
    async fn at(&self, place: &Place) -> SourcePorts {
        if let Some(ports) = self.cached(place) {
            return ports;
        }
        let sdk = self.config(place).await;
        let ports = SourcePorts {
            outputs: Arc::new(CfnStackOutputs::new(aws_sdk_cloudformation::Client::new(
                &sdk,
            ))),
            ecs: Arc::new(EcsAdapter::new(aws_sdk_ecs::Client::new(&sdk))),
            elb: Arc::new(ElbAdapter::new(
                aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
                aws_sdk_elasticloadbalancing::Client::new(&sdk),
            )),
        };
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        // A concurrent call may have built them first: keep one set.
        built.entry(place.clone()).or_insert(ports).clone()
    }
}

//! stagewire binds API Gateway stage variables to the load balancers behind them and keeps
//! them bound as those load balancers are replaced.
//!
//! # Layout
//! - [`domain`]: bindings, sources, owners and API Gateway's naming rules. No AWS types.
//!   [`domain::source`] holds the one table of source kinds (property keys, CLI forms, help)
//!   and the typed registry key [`domain::SourceKey`].
//! - [`props`]: `Custom::StageBinding` properties into a [`domain::BindingSpec`].
//! - [`ports`]: what the domain needs from AWS, as traits in domain terms.
//! - [`aws`]: one adapter per AWS service implementing those ports with the AWS SDK.
//! - [`resolve`]: sources to values (stack output, ECS service, load balancer, literal).
//! - [`plan`]: what to write, without I/O: the switch rule, a binding's stage patch and the
//!   re-sync's stage plan. It imports no adapter-side module.
//! - [`binding`]: the custom resource's create / update (read at once, claim, write) and
//!   delete over the ports.
//! - [`cfn`]: the CloudFormation custom-resource protocol: decoding, the one response, the
//!   deadline guard, the handler the `stage-binding` function runs.
//! - [`resync`]: its typed input and answer, triggers, lookup of affected bindings, reconcile
//!   (gather, plan, apply), summary and metrics: the handler `stage-resync` runs.
//! - `memory` (unit tests only, not linked into the functions): in-memory adapters of every
//!   port, for fast tests of the flows above.
//! - [`status`]: each registered variable's live and resolved values and state, for the CLI.
//! - [`config`]: configuration read once from the environment.
//! - [`emf`]: the one writer of both functions' metric lines (CloudWatch Embedded Metric Format).
//! - [`wait`]: holding a switch until the new load balancer has a healthy target.

pub mod aws;
pub mod binding;
pub mod cfn;
pub mod config;
pub mod domain;
pub mod emf;
#[cfg(test)]
pub mod memory;
pub mod plan;
pub mod ports;
pub mod props;
pub mod resolve;
pub mod resync;
pub mod status;
pub mod wait;

use std::sync::Arc;

use domain::ApiKind;
use ports::{EcsServices, Elsewhere, LoadBalancers, Registry, SourcePorts, StackOutputs, Stages};

/// Every port the handlers use, plus the region (for invoke URLs).
#[derive(Clone)]
pub struct Ports {
    pub rest: Arc<dyn Stages>,
    pub http: Arc<dyn Stages>,
    pub outputs: Arc<dyn StackOutputs>,
    pub ecs: Arc<dyn EcsServices>,
    pub elb: Arc<dyn LoadBalancers>,
    pub registry: Arc<dyn Registry>,
    /// API Gateway's VPC links, where the APIs are.
    pub links: Arc<dyn ports::VpcLinks>,
    /// The full reconcile's work queue: with one, a full reconcile plans units for the workers
    /// ([`resync::fanout`]); without, it reconciles every binding itself.
    pub queue: Option<Arc<dyn ports::WorkQueue>>,
    pub region: String,
    /// Which APIs a binding may touch (checked at each Create and Update, and by the re-sync).
    pub authorization: domain::Authorization,
    /// The hub's account and the roles it may assume to read sources elsewhere.
    pub sources: domain::SourceAccess,
    /// Sources in other accounts and regions.
    pub elsewhere: Arc<dyn Elsewhere>,
}

impl Ports {
    /// Ports backed by the AWS SDK, in the SDK configuration's region.
    pub fn aws(sdk: &aws_config::SdkConfig, table: &str) -> Result<Self, NoRegion> {
        Self::aws_paced(sdk, table, aws::pace::Pacer::apigateway())
    }

    /// As [`Ports::aws`], with API Gateway calls made at `pacer`'s rate.
    pub fn aws_paced(
        sdk: &aws_config::SdkConfig,
        table: &str,
        pacer: aws::pace::Pacer,
    ) -> Result<Self, NoRegion> {
        let region = sdk.region().ok_or(NoRegion)?.to_string();
        let a = aws::Adapters::with_pacer(sdk, table, pacer);
        Ok(Ports {
            sources: domain::SourceAccess::default(),
            elsewhere: Arc::new(aws::Remote::new(sdk)),
            rest: a.rest,
            http: a.http,
            outputs: a.outputs,
            ecs: a.ecs,
            elb: a.elb,
            registry: a.registry,
            links: a.links,
            queue: None,
            authorization: domain::Authorization::default(),
            region,
        })
    }

    /// The ports that read sources at `place`: the hub's own, or those of another account
    /// and region when the configuration trusts the role it names.
    pub async fn reach(&self, place: &domain::Place) -> Result<SourcePorts, domain::Untrusted> {
        if place.is_home() {
            return Ok(SourcePorts {
                outputs: self.outputs.clone(),
                ecs: self.ecs.clone(),
                elb: self.elb.clone(),
            });
        }
        self.sources.check(place, &self.region)?;
        Ok(self.elsewhere.at(place).await)
    }

    pub fn stages(&self, kind: ApiKind) -> &dyn Stages {
        match kind {
            ApiKind::Rest => self.rest.as_ref(),
            ApiKind::Http => self.http.as_ref(),
        }
    }
}

/// The SDK configuration names no region: stagewire never guesses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or the region of the AWS profile)")]
pub struct NoRegion;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_never_guess_a_region() {
        let none = aws_config::SdkConfig::builder().build();
        assert!(matches!(Ports::aws(&none, "t"), Err(NoRegion)));
        let eu = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        assert_eq!(
            Ports::aws(&eu, "t").map(|p| p.region).ok().as_deref(),
            Some("eu-west-1")
        );
    }
}

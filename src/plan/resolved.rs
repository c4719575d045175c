//! What a source resolved to, or why it has no value now: the facts about sources the plans
//! read. Finding them out takes I/O and is the resolver's, before planning; the plans only
//! read the outcome.

use std::sync::Arc;

use crate::domain::link::may_be_link_id;
use crate::domain::{Place, SourceKey, Untrusted};
use crate::ports::{AwsError, LoadBalancer};

/// A resolved source: the value and, when known, the load balancer it is the DNS name of
/// (with the account and region it is in, when not the hub's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub value: String,
    pub load_balancer: Option<LoadBalancer>,
    pub at: Place,
    /// Whether the value may be a VPC link's id, and so is looked up among the links: the
    /// values of `VpcLinkFor` and of stack outputs. A literal is taken as given, and a load
    /// balancer's or ECS service's value is a DNS name.
    pub may_be_link: bool,
}

impl Resolved {
    /// The registry's `via` key of what is behind the value: the load balancer it is the DNS
    /// name of, else the VPC link whose id it may be (`vpclink#ID`), so that an event naming
    /// either finds the bindings whose values point at it.
    pub fn via(&self) -> Option<SourceKey> {
        let key = match &self.load_balancer {
            Some(lb) => SourceKey::load_balancer(&lb.name),
            None if self.may_be_link && may_be_link_id(&self.value) => {
                SourceKey::VpcLink(self.value.clone())
            }
            None => return None,
        };
        Some(key.at(&self.at))
    }
}

/// Why a source has no value right now. Each names the thing that is missing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("stack {0} does not exist")]
    StackNotFound(String),
    #[error("stack {stack} has no output {key} (outputs: {available})")]
    OutputNotFound {
        stack: String,
        key: String,
        available: String,
    },
    #[error("ECS service {service} does not exist in cluster {cluster}")]
    ServiceNotFound { cluster: String, service: String },
    #[error("ECS service {service} in cluster {cluster} has no load balancer")]
    ServiceWithoutLoadBalancer { cluster: String, service: String },
    #[error(
        "ECS service {service} in cluster {cluster} has several load balancers ({candidates}): set ContainerName and/or ContainerPort to choose one"
    )]
    AmbiguousService {
        cluster: String,
        service: String,
        candidates: String,
    },
    #[error("target group {0} does not exist")]
    TargetGroupNotFound(String),
    #[error("target group {0} is not attached to a load balancer")]
    TargetGroupUnattached(String),
    #[error("load balancer {0} does not exist")]
    LoadBalancerNotFound(String),
    #[error("{0} has no DNS name")]
    NoDnsName(String),
    #[error(
        "{what} resolves to {value:?}, which is neither the DNS name nor the ARN of a load balancer in the account"
    )]
    NotALoadBalancer { what: String, value: String },
    #[error("load balancer {0} is a classic ELB: a REST VPC link targets a network load balancer")]
    ClassicHasNoLink(String),
    #[error(
        "no REST VPC link targets load balancer {load_balancer}: create one, an AWS::ApiGateway::VpcLink with TargetArns: [{arn}], and bind its id once it is AVAILABLE"
    )]
    NoVpcLink { load_balancer: String, arn: String },
    #[error(
        "several REST VPC links target load balancer {load_balancer} ({links}): keep one, or bind the one you mean by its id"
    )]
    SeveralVpcLinks {
        load_balancer: String,
        links: String,
    },
    #[error("{0}")]
    Aws(Arc<AwsError>),
    /// The source names a role the hub does not trust.
    #[error("{0}")]
    Untrusted(#[from] Untrusted),
    /// A source read in another account or region: the error there, and where.
    #[error("{error} (read in {at})")]
    Elsewhere {
        at: String,
        error: Box<ResolveError>,
    },
}

impl From<AwsError> for ResolveError {
    fn from(e: AwsError) -> Self {
        ResolveError::Aws(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(value: &str, load_balancer: Option<&str>, may_be_link: bool) -> Resolved {
        Resolved {
            value: value.into(),
            load_balancer: load_balancer.map(|name| LoadBalancer {
                family: crate::ports::LbFamily::V2,
                name: name.into(),
                arn: None,
                dns_name: None,
            }),
            at: Place::default(),
            may_be_link,
        }
    }

    #[test]
    fn the_via_of_a_value_is_its_load_balancer_else_the_link_it_may_be() {
        let via = |r: Resolved| r.via().map(|k| k.to_string());
        assert_eq!(
            via(resolved("nlb-1.elb.amazonaws.com", Some("nlb-1"), false)),
            Some("lb#nlb-1".into())
        );
        assert_eq!(
            via(resolved("x7k2p9", None, true)),
            Some("vpclink#x7k2p9".into())
        );
        // A literal is taken as given, and a DNS name is no link id.
        assert_eq!(via(resolved("x7k2p9", None, false)), None);
        assert_eq!(via(resolved("a.example.com", None, true)), None);
    }
}

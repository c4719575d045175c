//! The registry key of a source ([`SourceKey`]) and the names it is made of.

use std::fmt;
use std::str::FromStr;

use super::Place;

/// The registry key of a source: what events about stacks, ECS services and load balancers
/// are matched against. Its text form (`stack#NAME`, `ecs#CLUSTER/SERVICE`, `lb#NAME`,
/// `vpclink#ID`, `literal`) is what the registry stores. `vpclink#ID` is never a source's key,
/// only the `via` of a value that is a VPC link's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    Stack(String),
    Ecs {
        cluster: String,
        service: String,
    },
    LoadBalancer(String),
    /// A VPC link, by id: the `via` of a value that is (or may be) a link's id.
    VpcLink(String),
    Literal,
    /// The key of a source read elsewhere: in the account of its role and/or another region
    /// (`None`: the hub's own). Text form: the key, `@ACCOUNT/REGION` (either may be empty).
    At {
        account: Option<String>,
        region: Option<String>,
        key: Box<SourceKey>,
    },
}

impl SourceKey {
    /// This key as read at `place`: unchanged for the hub's own account and region.
    pub fn at(self, place: &Place) -> SourceKey {
        self.located(place.account(), place.region.as_deref())
    }

    /// This key in `account` and `region` (`None`: the hub's own).
    pub fn located(self, account: Option<&str>, region: Option<&str>) -> SourceKey {
        match (account, region, self) {
            (None, None, key) => key,
            (_, _, SourceKey::Literal) => SourceKey::Literal,
            (_, _, SourceKey::At { key, .. }) => key.located(account, region),
            (account, region, key) => SourceKey::At {
                account: account.map(str::to_owned),
                region: region.map(str::to_owned),
                key: Box::new(key),
            },
        }
    }

    /// The key of a stack, by name or stack ARN.
    pub fn stack(name_or_arn: &str) -> SourceKey {
        SourceKey::Stack(stack_name(name_or_arn).to_string())
    }

    /// The key of an ECS service; cluster and service may be names or ARNs.
    pub fn ecs(cluster: &str, service: &str) -> SourceKey {
        SourceKey::Ecs {
            cluster: name_of(cluster).to_string(),
            service: name_of(service).to_string(),
        }
    }

    /// The key of a load balancer, by name or ELBv2 ARN.
    pub fn load_balancer(name_or_arn: &str) -> SourceKey {
        SourceKey::LoadBalancer(load_balancer_name(name_or_arn).to_string())
    }
}

/// A stack's name, taken out of a stack ARN when given one
/// (`arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID`).
pub fn stack_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.split('/').nth(1).unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// A load balancer's name, taken out of an ELBv2 ARN when given one
/// (`arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID`).
pub fn load_balancer_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        let parts: Vec<&str> = name_or_arn.split('/').collect();
        if parts.len() >= 3 {
            return parts[parts.len() - 2];
        }
    }
    name_or_arn
}

/// The last path segment of an ARN-like identifier (`.../name` -> `name`), or the input.
fn name_of(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKey::Stack(name) => write!(f, "stack#{name}"),
            SourceKey::Ecs { cluster, service } => write!(f, "ecs#{cluster}/{service}"),
            SourceKey::LoadBalancer(name) => write!(f, "lb#{name}"),
            SourceKey::VpcLink(id) => write!(f, "vpclink#{id}"),
            SourceKey::Literal => f.write_str("literal"),
            SourceKey::At {
                account,
                region,
                key,
            } => write!(
                f,
                "{key}@{}/{}",
                account.as_deref().unwrap_or(""),
                region.as_deref().unwrap_or("")
            ),
        }
    }
}

/// A stored key that is none of the forms [`SourceKey`] writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a source key (stack#NAME, ecs#CLUSTER/SERVICE, lb#NAME, vpclink#ID or literal, the first four optionally followed by @ACCOUNT/REGION)"
)]
pub struct ParseSourceKeyError(String);

impl FromStr for SourceKey {
    type Err = ParseSourceKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseSourceKeyError(s.to_string());
        if let Some((key, place)) = s.rsplit_once('@') {
            let (account, region) = place.split_once('/').ok_or_else(bad)?;
            fn some(p: &str) -> Option<&str> {
                (!p.is_empty()).then_some(p)
            }
            return match key.parse::<SourceKey>() {
                Ok(SourceKey::Literal | SourceKey::At { .. }) | Err(_) => Err(bad()),
                Ok(_) if some(account).is_none() && some(region).is_none() => Err(bad()),
                Ok(key) => Ok(key.located(some(account), some(region))),
            };
        }
        if s == "literal" {
            return Ok(SourceKey::Literal);
        }
        let (kind, rest) = s.split_once('#').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "stack" => Ok(SourceKey::Stack(rest.to_string())),
            "lb" => Ok(SourceKey::LoadBalancer(rest.to_string())),
            "vpclink" => Ok(SourceKey::VpcLink(rest.to_string())),
            "ecs" => match rest.split_once('/') {
                Some((cluster, service)) if !cluster.is_empty() && !service.is_empty() => {
                    Ok(SourceKey::Ecs {
                        cluster: cluster.to_string(),
                        service: service.to_string(),
                    })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_reduce_arns_to_names() {
        let key = |k: SourceKey| k.to_string();
        assert_eq!(
            key(SourceKey::stack(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsHelloworldProd/0f1e"
            )),
            "stack#EcsHelloworldProd"
        );
        assert_eq!(
            key(SourceKey::stack("EcsHelloworldProd")),
            "stack#EcsHelloworldProd"
        );
        assert_eq!(
            key(SourceKey::load_balancer("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188")),
            "lb#my-alb"
        );
        assert_eq!(key(SourceKey::load_balancer("my-elb")), "lb#my-elb");
        assert_eq!(
            key(SourceKey::ecs(
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                "arn:aws:ecs:us-east-1:123456789012:service/prod/helloworld"
            )),
            "ecs#prod/helloworld"
        );
        assert_eq!(
            stack_name("arn:aws:cloudformation:us-east-1:1:stack/S/uuid"),
            "S"
        );
        assert_eq!(
            load_balancer_name("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/nlb/1"),
            "nlb"
        );
    }

    #[test]
    fn source_keys_read_back_what_they_write() {
        let keys = [
            SourceKey::Stack("EcsHelloworldProd".into()),
            SourceKey::Ecs {
                cluster: "prod".into(),
                service: "helloworld".into(),
            },
            SourceKey::LoadBalancer("my-alb".into()),
            SourceKey::VpcLink("a1b2c3".into()),
            SourceKey::VpcLink("a1b2c3".into()).located(Some("222222222222"), Some("eu-west-1")),
            SourceKey::Literal,
        ];
        for key in keys {
            assert_eq!(key.to_string().parse::<SourceKey>(), Ok(key.clone()));
        }
        for bad in [
            "",
            "stack#",
            "lb",
            "ecs#prod",
            "ecs#/svc",
            "s3#bucket",
            "literal#x",
            "vpclink#",
        ] {
            assert!(bad.parse::<SourceKey>().is_err(), "{bad:?}");
        }
    }
}

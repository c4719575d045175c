//! Sources: where a stage variable's value comes from.
//!
//! - [`kinds`]: [`SOURCE_KINDS`], the one table of source kinds: for each, the
//!   `Custom::StageBinding` property keys that name it, the CLI's `kind:` form and its help, and
//!   how its properties become a [`Source`]. Property parsing, the CLI and their messages are
//!   derived from it.
//! - [`key`]: [`SourceKey`], the registry key events are matched against.
//! - [`place`]: [`Place`], the account and region a source is read in.
//!
//! Adding a kind: a [`Source`] variant, its entry in [`SOURCE_KINDS`] with its build function,
//! its arms below and in [`key`] (the compiler lists them), and its resolution in `resolve.rs`.
//! A kind that wraps another source (as `VpcLinkFor` wraps a load balancer's) declares one
//! required field of [`FieldType::Source`]: its value is a whole source, in the properties an
//! object, on the CLI another source's form after the prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod key;
pub mod kinds;
pub mod place;

pub use key::{load_balancer_name, stack_name, ParseSourceKeyError, SourceKey};
pub use kinds::{
    cli_forms, cli_help, kind_of_cli_prefix, kind_of_properties, readable_kinds,
    readable_wrappable_kinds, Field, FieldType, FieldValue, Fields, SourceKind, REGION, ROLE_ARN,
    SOURCE_KINDS,
};
pub use place::{role_account, Place};

/// Where a stage variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An output of a CloudFormation stack (name or stack ARN).
    StackOutput {
        stack: String,
        output_key: String,
        #[serde(flatten)]
        at: Place,
    },
    /// The load balancer in front of an ECS service.
    EcsService {
        cluster: String,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_port: Option<u16>,
        #[serde(flatten)]
        at: Place,
    },
    /// An ELBv2 load balancer by name or ARN, or a classic ELB by name.
    LoadBalancer {
        name: String,
        #[serde(flatten)]
        at: Place,
    },
    /// A literal value.
    Literal { value: String },
    /// The id of the REST VPC link (v1) whose targets hold the load balancer another source
    /// names (a stack output holding its DNS name or ARN, an ECS service, a load balancer).
    VpcLinkFor { target: Box<Source> },
}

impl Source {
    /// The registry key that events are matched against: every binding whose source has this
    /// key is affected by an event about that stack, service or load balancer.
    pub fn key(&self) -> SourceKey {
        match self {
            Source::StackOutput { stack, at, .. } => SourceKey::stack(stack).at(at),
            Source::EcsService {
                cluster,
                service,
                at,
                ..
            } => SourceKey::ecs(cluster, service).at(at),
            Source::LoadBalancer { name, at } => SourceKey::load_balancer(name).at(at),
            Source::Literal { .. } => SourceKey::Literal,
            // The events that move a load balancer move its link.
            Source::VpcLinkFor { target } => target.key(),
        }
    }

    /// The same source, without a region that is the hub's own (see [`Place::settled`]).
    pub fn settled(mut self, home_region: &str) -> Source {
        match &mut self {
            Source::StackOutput { at, .. }
            | Source::EcsService { at, .. }
            | Source::LoadBalancer { at, .. } => *at = at.settled(home_region),
            Source::VpcLinkFor { target } => {
                **target = target.as_ref().clone().settled(home_region)
            }
            Source::Literal { .. } => {}
        }
        self
    }

    /// Where the source is read: the hub's own account and region unless it says otherwise
    /// (`None` for a literal, which is read nowhere).
    pub fn place(&self) -> Option<&Place> {
        match self {
            Source::StackOutput { at, .. }
            | Source::EcsService { at, .. }
            | Source::LoadBalancer { at, .. } => Some(at),
            Source::VpcLinkFor { target } => target.place(),
            Source::Literal { .. } => None,
        }
    }

    /// Whether the source's value may be a VPC link's id: a `VpcLinkFor`'s always, a stack
    /// output's when the stack says so. A literal is taken as given; a load balancer's or an
    /// ECS service's value is a DNS name.
    pub fn may_give_link_id(&self) -> bool {
        matches!(self, Source::VpcLinkFor { .. } | Source::StackOutput { .. })
    }

    /// Whether the source names a load balancer (and so may be the target of
    /// [`Source::VpcLinkFor`]).
    pub fn names_a_load_balancer(&self) -> bool {
        match self {
            Source::StackOutput { .. }
            | Source::EcsService { .. }
            | Source::LoadBalancer { .. } => true,
            Source::Literal { .. } | Source::VpcLinkFor { .. } => false,
        }
    }

    /// The value itself, for a source that needs no resolving (a literal).
    pub fn literal_value(&self) -> Option<&str> {
        match self {
            Source::Literal { value } => Some(value),
            Source::StackOutput { .. }
            | Source::EcsService { .. }
            | Source::LoadBalancer { .. }
            | Source::VpcLinkFor { .. } => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::StackOutput {
                stack,
                output_key,
                at,
            } => write!(f, "output {output_key} of stack {stack}{at}"),
            Source::EcsService {
                cluster,
                service,
                at,
                ..
            } => write!(f, "ECS service {service} in cluster {cluster}{at}"),
            Source::LoadBalancer { name, at } => write!(f, "load balancer {name}{at}"),
            Source::Literal { value } => write!(f, "literal {value:?}"),
            Source::VpcLinkFor { target } => write!(f, "REST VPC link targeting {target}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_has_its_key() {
        let cases = [
            (
                Source::StackOutput {
                    stack: "S".into(),
                    output_key: "O".into(),
                    at: Default::default(),
                },
                "stack#S",
            ),
            (
                Source::EcsService {
                    cluster: "c".into(),
                    service: "s".into(),
                    container_name: None,
                    container_port: Some(80),
                    at: Default::default(),
                },
                "ecs#c/s",
            ),
            (
                Source::LoadBalancer {
                    name: "lb1".into(),
                    at: Default::default(),
                },
                "lb#lb1",
            ),
            (Source::Literal { value: "v".into() }, "literal"),
        ];
        for (source, key) in cases {
            assert_eq!(source.key().to_string(), key, "{source}");
        }
    }

    #[test]
    fn sources_elsewhere_have_keys_of_their_account_and_region() {
        let role = "arn:aws:iam::222222222222:role/stagewire-source";
        let at = |region: Option<&str>, role_arn: Option<&str>| Place {
            region: region.map(str::to_owned),
            role_arn: role_arn.map(str::to_owned),
        };
        let stack = |at| Source::StackOutput {
            stack: "S".into(),
            output_key: "O".into(),
            at,
        };
        let cases = [
            (at(None, None), "stack#S"),
            (at(Some("eu-west-1"), None), "stack#S@/eu-west-1"),
            (at(None, Some(role)), "stack#S@222222222222/"),
            (
                at(Some("eu-west-1"), Some(role)),
                "stack#S@222222222222/eu-west-1",
            ),
        ];
        for (place, text) in cases {
            let key = stack(place.clone()).key();
            assert_eq!(key.to_string(), text);
            assert_eq!(text.parse::<SourceKey>(), Ok(key), "{text}");
            // The registry's JSON of a source in the hub's own place is what it always was.
            let json = serde_json::to_value(stack(place.clone())).unwrap();
            assert_eq!(json.get("region").is_some(), place.region.is_some());
            assert_eq!(
                serde_json::from_value::<Source>(json).unwrap(),
                stack(place)
            );
        }
        assert_eq!(
            SourceKey::ecs("c", "s")
                .located(Some("333333333333"), None)
                .to_string(),
            "ecs#c/s@333333333333/"
        );
        for bad in [
            "stack#S@",
            "stack#S@/",
            "literal@1/r",
            "stack#S@1/r@2/r",
            "@1/r",
        ] {
            assert!(bad.parse::<SourceKey>().is_err(), "{bad:?}");
        }
        assert_eq!(at(Some("eu-west-1"), Some(role)).problem(), None);
        assert_eq!(at(Some("us-gov-west-1"), None).problem(), None);
        for (place, needle) in [
            (at(Some("Ireland"), None), "Region \"Ireland\""),
            (at(Some("eu-west"), None), "Region"),
            (at(None, Some("arn:aws:iam::2222:role/x")), "RoleArn"),
            (
                at(None, Some("arn:aws:iam::222222222222:user/x")),
                "RoleArn",
            ),
        ] {
            assert!(place.problem().unwrap().contains(needle), "{place:?}");
        }
        assert_eq!(
            stack(at(Some("eu-west-1"), Some(role))).to_string(),
            "output O of stack S in region eu-west-1 through role arn:aws:iam::222222222222:role/stagewire-source (account 222222222222)"
        );
    }
}

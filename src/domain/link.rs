//! VPC links: how API Gateway reaches a private load balancer, in domain terms.

use std::fmt;

/// The state of a VPC link, as API Gateway reports it (v1 and v2 alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    Available,
    Pending,
    Deleting,
    Failed,
    /// v2 only: unused for a while, it serves nothing until API Gateway wakes it.
    Inactive,
    /// A status this version does not know, as reported.
    Other(String),
}

impl LinkStatus {
    /// The status from API Gateway's name of it (`AVAILABLE`, `PENDING`, ...).
    pub fn parse(s: &str) -> LinkStatus {
        match s {
            "AVAILABLE" => LinkStatus::Available,
            "PENDING" => LinkStatus::Pending,
            "DELETING" => LinkStatus::Deleting,
            "FAILED" => LinkStatus::Failed,
            "INACTIVE" => LinkStatus::Inactive,
            other => LinkStatus::Other(other.to_string()),
        }
    }

    /// Whether a link in this state can never serve again by itself: it is failed, being
    /// deleted, or inactive.
    pub fn is_broken(&self) -> bool {
        matches!(
            self,
            LinkStatus::Failed | LinkStatus::Deleting | LinkStatus::Inactive
        )
    }
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkStatus::Available => "AVAILABLE",
            LinkStatus::Pending => "PENDING",
            LinkStatus::Deleting => "DELETING",
            LinkStatus::Failed => "FAILED",
            LinkStatus::Inactive => "INACTIVE",
            LinkStatus::Other(s) => s,
        })
    }
}

/// Which API a VPC link is read through: REST (v1, `apigateway`, one network load balancer)
/// or v2 (`apigatewayv2`, not tied to one load balancer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkFamily {
    Rest,
    V2,
}

/// A VPC link as far as stagewire cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcLink {
    pub family: LinkFamily,
    pub id: String,
    pub name: String,
    /// The load balancers the link targets (v1: one network load balancer's ARN).
    pub target_arns: Vec<String>,
    pub status: LinkStatus,
    pub status_message: Option<String>,
}

impl VpcLink {
    /// `id (name)`, as lists of links show it.
    pub fn label(&self) -> String {
        match self.name.is_empty() {
            true => self.id.clone(),
            false => format!("{} ({})", self.id, self.name),
        }
    }
}

/// Whether a stage variable's value could be a VPC link's id (API Gateway's ids are short
/// alphanumeric strings): only such values are looked up among the links.
pub fn may_be_link_id(value: &str) -> bool {
    (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_and_say_which_are_broken() {
        for s in [
            "AVAILABLE",
            "PENDING",
            "DELETING",
            "FAILED",
            "INACTIVE",
            "NEW",
        ] {
            assert_eq!(LinkStatus::parse(s).to_string(), s);
        }
        let broken: Vec<bool> = ["AVAILABLE", "PENDING", "FAILED", "INACTIVE", "DELETING"]
            .map(|s| LinkStatus::parse(s).is_broken())
            .to_vec();
        assert_eq!(broken, [false, false, true, true, true]);
    }

    #[test]
    fn only_short_alphanumeric_values_may_be_link_ids() {
        assert!(may_be_link_id("abc123"));
        assert!(!may_be_link_id("my-lb-1.elb.amazonaws.com"));
        assert!(!may_be_link_id(""));
        assert!(!may_be_link_id(&"a".repeat(33)));
    }
}

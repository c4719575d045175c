//! Where a source is read: the hub's own account and region, or another.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a source is read: another region, and another account through a role the hub
/// assumes. Both absent: the hub's own account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Place {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl Place {
    /// The hub's own account and region.
    pub fn is_home(&self) -> bool {
        self.region.is_none() && self.role_arn.is_none()
    }

    /// The same place, without a region that is the hub's own: what the registry keys.
    pub fn settled(&self, home_region: &str) -> Place {
        Place {
            region: self.region.clone().filter(|r| r != home_region),
            role_arn: self.role_arn.clone(),
        }
    }

    /// The account of the role (`arn:PARTITION:iam::ACCOUNT:role/NAME`), when there is one.
    pub fn account(&self) -> Option<&str> {
        self.role_arn.as_deref().and_then(role_account)
    }

    /// What is wrong with the place, if anything: a region that is not a region's code, a
    /// role that is not an IAM role ARN.
    pub fn problem(&self) -> Option<String> {
        if let Some(region) = &self.region {
            if !is_region(region) {
                return Some(format!(
                    "Region {region:?} is not a region code (like eu-west-1)"
                ));
            }
        }
        if let Some(role) = &self.role_arn {
            if role_account(role).is_none() {
                return Some(format!(
                    "RoleArn {role:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                ));
            }
        }
        None
    }
}

/// ` in region R through role ARN (account A)`, or nothing for the hub's own place.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(region) = &self.region {
            write!(f, " in region {region}")?;
        }
        if let Some(role) = &self.role_arn {
            write!(
                f,
                " through role {role} (account {})",
                role_account(role).unwrap_or("?")
            )?;
        }
        Ok(())
    }
}

/// The account of an IAM role ARN.
pub fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.len() > "role/".len()
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`: lowercase words and a number.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

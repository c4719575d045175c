//! Which sources in other accounts and regions the hub reads: the roles its configuration
//! trusts, and the registry keys an event from some account and region can match.

use super::rights::glob;
use super::source::{Place, SourceKey};

/// The hub's own account and the role ARN patterns it may assume (`*` matches any run of
/// characters). No pattern: no source may name a role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAccess {
    /// The hub's account, to tell its own events from its members' (`None`: every event is
    /// taken as the hub's own, as in a single-account deployment).
    pub account: Option<String>,
    pub roles: Vec<String>,
}

/// A source names a role the hub's configuration does not trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "role {role} (account {account}, region {region}) is not trusted: the hub's STAGEWIRE_SOURCE_ROLES (template parameter SourceRoleArns) allows {allowed}"
)]
pub struct Untrusted {
    pub role: String,
    pub account: String,
    pub region: String,
    pub allowed: String,
}

impl SourceAccess {
    /// Whether the hub may read at `place` (in `home_region` unless it names one).
    pub fn check(&self, place: &Place, home_region: &str) -> Result<(), Untrusted> {
        let Some(role) = &place.role_arn else {
            return Ok(());
        };
        if self.roles.iter().any(|p| glob(p, role)) {
            return Ok(());
        }
        Err(Untrusted {
            role: role.clone(),
            account: place.account().unwrap_or("?").to_string(),
            region: place.region.as_deref().unwrap_or(home_region).to_string(),
            allowed: if self.roles.is_empty() {
                "no role".into()
            } else {
                self.roles.join(", ")
            },
        })
    }

    /// The registry keys an event about `key` in `account` and `region` can match: a source
    /// names its account through its role and its region only when they are not the hub's,
    /// and may name them when they are.
    pub fn keys_of_event(
        &self,
        key: SourceKey,
        account: Option<&str>,
        region: Option<&str>,
        home_region: &str,
    ) -> Vec<SourceKey> {
        let home_account = match (account, self.account.as_deref()) {
            (None, _) | (_, None) => true,
            (Some(a), Some(home)) => a == home,
        };
        let mut accounts = vec![account];
        if home_account && account.is_some() {
            accounts.push(None);
        }
        let mut regions = vec![region];
        if region == Some(home_region) {
            regions.push(None);
        }
        let mut keys = Vec::new();
        for a in &accounts {
            for r in &regions {
                let k = key.clone().located(*a, *r);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "111111111111";

    fn access(roles: &[&str]) -> SourceAccess {
        SourceAccess {
            account: Some(HUB.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn roles_must_match_a_trusted_pattern() {
        let place = |role: &str| Place {
            region: Some("eu-west-1".into()),
            role_arn: Some(role.into()),
        };
        let a = access(&["arn:aws:iam::*:role/stagewire-source"]);
        assert!(a
            .check(
                &place("arn:aws:iam::222222222222:role/stagewire-source"),
                "us-east-1"
            )
            .is_ok());
        let err = a
            .check(&place("arn:aws:iam::222222222222:role/admin"), "us-east-1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("role arn:aws:iam::222222222222:role/admin (account 222222222222, region eu-west-1) is not trusted"),
            "{err}"
        );
        assert!(
            err.contains("allows arn:aws:iam::*:role/stagewire-source"),
            "{err}"
        );
        let none = access(&[])
            .check(&place("arn:aws:iam::222222222222:role/x"), "us-east-1")
            .unwrap_err();
        assert_eq!(none.allowed, "no role");
        assert!(access(&[]).check(&Place::default(), "us-east-1").is_ok());
    }

    #[test]
    fn an_event_finds_the_keys_of_its_account_and_region() {
        let keys = |account: Option<&str>, region: Option<&str>| -> Vec<String> {
            access(&[])
                .keys_of_event(SourceKey::stack("S"), account, region, "us-east-1")
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(keys(None, None), ["stack#S"]);
        assert_eq!(
            keys(Some(HUB), Some("us-east-1")),
            [
                "stack#S@111111111111/us-east-1",
                "stack#S@111111111111/",
                "stack#S@/us-east-1",
                "stack#S"
            ]
        );
        assert_eq!(
            keys(Some("222222222222"), Some("eu-west-1")),
            ["stack#S@222222222222/eu-west-1"]
        );
        assert_eq!(
            keys(Some("222222222222"), Some("us-east-1")),
            ["stack#S@222222222222/us-east-1", "stack#S@222222222222/"]
        );
        assert_eq!(
            keys(Some(HUB), Some("eu-west-1")),
            ["stack#S@111111111111/eu-west-1", "stack#S@/eu-west-1"]
        );
    }
}

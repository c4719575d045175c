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
#[error("role {role} (account {account}, region {region}) {why}")]
pub struct Untrusted {
    pub role: String,
    pub account: String,
    pub region: String,
    pub why: String,
}

impl SourceAccess {
    /// Whether the hub may read at `place` (in `home_region` unless it names one).
    pub fn check(&self, place: &Place, home_region: &str) -> Result<(), Untrusted> {
        let Some(role) = &place.role_arn else {
            return Ok(());
        };
        let account = place.account().unwrap_or("?");
        let why = if self.account.as_deref() == Some(account) {
            "is in the hub's own account: leave RoleArn out, the hub reads its own account directly"
                .to_string()
        } else if self.roles.iter().any(|p| glob(p, role)) {
            return Ok(());
        } else {
            format!(
                "is not trusted: the hub's STAGEWIRE_SOURCE_ROLES (template parameter SourceRoleArns) allows {}",
                if self.roles.is_empty() {
                    "no role".into()
                } else {
                    self.roles.join(", ")
                }
            )
        };
        Err(Untrusted {
            role: role.clone(),
            account: account.to_string(),
            region: place.region.as_deref().unwrap_or(home_region).to_string(),
            why,
        })
    }

    /// The registry key an event about `key` in `account` and `region` matches: sources name
    /// an account (through their role) and a region only when they are not the hub's, and an
    /// event names both.
    pub fn key_of_event(
        &self,
        key: SourceKey,
        account: Option<&str>,
        region: Option<&str>,
        home_region: &str,
    ) -> SourceKey {
        let account = account.filter(|a| self.account.as_deref().is_some_and(|home| home != *a));
        let region = region.filter(|r| *r != home_region);
        key.located(account, region)
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
        assert!(none.why.ends_with("allows no role"), "{none}");
        let own = access(&["*"])
            .check(&place("arn:aws:iam::111111111111:role/x"), "us-east-1")
            .unwrap_err();
        assert!(
            own.why.contains("the hub's own account: leave RoleArn out"),
            "{own}"
        );
        assert!(access(&[]).check(&Place::default(), "us-east-1").is_ok());
    }

    #[test]
    fn an_event_finds_the_key_of_its_account_and_region() {
        let key = |access: &SourceAccess, account: Option<&str>, region: Option<&str>| {
            access
                .key_of_event(SourceKey::stack("S"), account, region, "us-east-1")
                .to_string()
        };
        let hub = access(&[]);
        assert_eq!(key(&hub, None, None), "stack#S");
        assert_eq!(key(&hub, Some(HUB), Some("us-east-1")), "stack#S");
        assert_eq!(
            key(&hub, Some("222222222222"), Some("eu-west-1")),
            "stack#S@222222222222/eu-west-1"
        );
        assert_eq!(
            key(&hub, Some("222222222222"), Some("us-east-1")),
            "stack#S@222222222222/"
        );
        assert_eq!(
            key(&hub, Some(HUB), Some("eu-west-1")),
            "stack#S@/eu-west-1"
        );
        // Without the hub's account every event is taken as the hub's own.
        let unknown = SourceAccess::default();
        assert_eq!(
            key(&unknown, Some("222222222222"), Some("us-east-1")),
            "stack#S"
        );
    }
}

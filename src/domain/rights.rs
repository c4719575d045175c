//! Which APIs a binding may touch: the authorization rule, pure.
//!
//! Under [`Authorization::ApiTags`] (the default) a binding may touch an API when the API
//! belongs to the binding's own stack (CloudFormation's tag [`STACK_ID_TAG`] on the API names
//! the binding's stack) or when the API's tag [`ALLOWED_STACKS_TAG`] lists a pattern matching
//! the binding's stack name (separated by spaces or commas, `*` matches any run of characters; a pattern may
//! also be a whole stack id). Under [`Authorization::Open`] every binding may touch every API
//! the function can reach (a single-team account).

use std::collections::BTreeMap;
use std::fmt;

/// CloudFormation's own tag on every resource it creates that supports tags.
pub const STACK_ID_TAG: &str = "aws:cloudformation:stack-id";
/// The tag by which an API allows the bindings of other stacks.
pub const ALLOWED_STACKS_TAG: &str = "stagewire:allowed-stacks";

/// The rule `stage-binding` and `stage-resync` apply (template parameter `BindingAuthorization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authorization {
    /// A binding touches its own stack's APIs and those whose tag allows its stack.
    #[default]
    ApiTags,
    /// A binding touches any API.
    Open,
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authorization::ApiTags => "ApiTags",
            Authorization::Open => "Open",
        })
    }
}

/// Why a binding may not touch an API; the message names the API and the tag that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{api} {owner}, not to stack {stack_name}: add {stack_name} to its tag {ALLOWED_STACKS_TAG} (stack names separated by spaces) to allow this binding")]
pub struct Denied {
    /// The API, as `REST API abc123` or `HTTP API h77`.
    pub api: String,
    /// `belongs to stack X` or `belongs to no stack`.
    pub owner: String,
    pub stack_name: String,
}

/// The stack name in a stack id (`arn:aws:cloudformation:r:a:stack/NAME/uuid`), or the id
/// itself when it is not an ARN.
pub fn stack_name(stack_id: &str) -> &str {
    stack_id
        .split_once(":stack/")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .unwrap_or(stack_id)
}

/// Whether a binding of `stack_id` may touch an API tagged `tags` (the API named `api` in
/// messages).
pub fn may_touch(
    rule: Authorization,
    stack_id: &str,
    api: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), Denied> {
    if rule == Authorization::Open {
        return Ok(());
    }
    let owner = tags.get(STACK_ID_TAG);
    if owner.is_some_and(|o| o == stack_id) {
        return Ok(());
    }
    let name = stack_name(stack_id);
    let allowed = tags
        .get(ALLOWED_STACKS_TAG)
        .map(|list| {
            // Spaces separate names (API Gateway's tag values allow letters, digits, spaces and
            // `. : / = + - @`); commas are read too, where a service allows them.
            list.split(|c: char| c == ',' || c.is_whitespace())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .any(|p| glob(p, name) || p == stack_id)
        })
        .unwrap_or(false);
    if allowed {
        return Ok(());
    }
    Err(Denied {
        api: api.to_string(),
        owner: match owner {
            Some(o) => format!("belongs to stack {}", stack_name(o)),
            None => "belongs to no stack".into(),
        },
        stack_name: name.to_string(),
    })
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "arn:aws:cloudformation:us-east-1:1:stack/TeamA-Api/uuid-1";

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn own_stack_or_allowed_by_tag() {
        let rule = Authorization::ApiTags;
        assert!(may_touch(rule, ME, "REST API a", &tags(&[(STACK_ID_TAG, ME)])).is_ok());
        let other = "arn:aws:cloudformation:us-east-1:1:stack/TeamB/uuid-2";
        let denied =
            may_touch(rule, ME, "REST API a", &tags(&[(STACK_ID_TAG, other)])).unwrap_err();
        let msg = denied.to_string();
        assert!(
            msg.contains("REST API a") && msg.contains(ALLOWED_STACKS_TAG) && msg.contains("TeamB"),
            "{msg}"
        );
        for list in [
            "TeamA-Api",
            "x, TeamA-*",
            "x TeamA-Api",
            "y  TeamA-Api z",
            "*-Api",
            "*",
            "Team*Api",
            ME,
        ] {
            let t = tags(&[(STACK_ID_TAG, other), (ALLOWED_STACKS_TAG, list)]);
            assert!(may_touch(rule, ME, "REST API a", &t).is_ok(), "{list}");
        }
        for list in ["TeamA", "TeamB-*", "", "*-Apix", "TeamA-Api-2"] {
            let t = tags(&[(ALLOWED_STACKS_TAG, list)]);
            assert!(may_touch(rule, ME, "REST API a", &t).is_err(), "{list}");
        }
        // A stack of the same name but another id is another stack.
        let twin = "arn:aws:cloudformation:us-east-1:1:stack/TeamA-Api/uuid-9";
        assert!(may_touch(rule, ME, "REST API a", &tags(&[(STACK_ID_TAG, twin)])).is_err());
        assert!(may_touch(Authorization::Open, ME, "REST API a", &tags(&[])).is_ok());
    }

    #[test]
    fn stack_names() {
        assert_eq!(stack_name(ME), "TeamA-Api");
        assert_eq!(stack_name("Plain"), "Plain");
    }
}

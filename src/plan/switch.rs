//! The switch rule, the one place that decides whether a variable may move from the target its
//! current value reaches to the one its new value reaches. Every caller asks it: the custom
//! resource's wait, the re-sync's plan and `stagewire status`.
//!
//! A switch is held only while the current target serves and the new one does not: moving
//! then would turn working requests into failures. In every other case the variable moves now:
//! the new target serves, or nothing serves through the current value (no load balancer behind
//! it, deleted, or without a healthy target), so holding protects nobody.

use std::fmt;

/// What is known of the target behind one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The load balancer's name, as reported.
    pub name: String,
    /// Whether it has a healthy target now.
    pub healthy: bool,
}

impl Target {
    pub fn new(name: impl Into<String>, healthy: bool) -> Self {
        Target {
            name: name.into(),
            healthy,
        }
    }
}

/// The rule's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move the variable now.
    Now,
    /// Keep the current value, and why.
    Hold(Held),
}

/// A switch held back: the new target does not serve yet while the current one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub new: String,
    pub current: String,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "load balancer {} has no healthy target yet; keeping {}, which serves",
            self.new, self.current
        )
    }
}

/// Whether a variable may move from `current` to `new` (`None`: no load balancer behind the
/// value, or none any more).
pub fn decide(current: Option<&Target>, new: Option<&Target>) -> Decision {
    match (current, new) {
        (Some(current), Some(new))
            if current.healthy && !new.healthy && current.name != new.name =>
        {
            Decision::Hold(Held {
                new: new.name.clone(),
                current: current.name.clone(),
            })
        }
        _ => Decision::Now,
    }
}

/// Whether the rule could hold a switch to `new` at all: only when the new target does not
/// serve is the current one worth looking up.
pub fn may_hold(new: Option<&Target>) -> bool {
    new.is_some_and(|n| !n.healthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, healthy: bool) -> Option<Target> {
        Some(Target::new(name, healthy))
    }

    #[test]
    fn holds_only_while_the_current_target_serves_and_the_new_one_does_not() {
        let cases = [
            // (current, new, held)
            (t("old", true), t("new", false), true),
            (t("old", true), t("new", true), false),
            // The dead-current case: nothing serves through the current value, so it moves.
            (t("old", false), t("new", false), false),
            (t("old", false), t("new", true), false),
            // The current load balancer is gone, or the value is not a load balancer's.
            (None, t("new", false), false),
            (t("old", true), None, false),
            (None, None, false),
            // The same load balancer behind both values.
            (t("lb", true), t("lb", false), false),
        ];
        for (current, new, held) in cases {
            let decision = decide(current.as_ref(), new.as_ref());
            assert_eq!(
                matches!(decision, Decision::Hold(_)),
                held,
                "{current:?} -> {new:?}: {decision:?}"
            );
        }
    }

    #[test]
    fn a_hold_names_both_load_balancers() {
        let Decision::Hold(held) = decide(t("old", true).as_ref(), t("new", false).as_ref()) else {
            panic!("held");
        };
        assert_eq!(
            held.to_string(),
            "load balancer new has no healthy target yet; keeping old, which serves"
        );
    }

    #[test]
    fn only_a_new_target_that_does_not_serve_makes_the_current_one_matter() {
        assert!(may_hold(t("new", false).as_ref()));
        assert!(!may_hold(t("new", true).as_ref()));
        assert!(!may_hold(None));
    }
}

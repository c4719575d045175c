//! The switch rule, the one place that decides whether a variable may move from the target its
//! current value reaches to the one its new value reaches. Every caller asks it: the custom
//! resource's wait, the re-sync's plan and `stagewire status`.
//!
//! A target is a load balancer (the value is its DNS name) or a VPC link (the value is its
//! id). A load balancer serves when it has a healthy target; a VPC link when it is
//! `AVAILABLE` and, for a REST link (v1), its network load balancer has a healthy target.
//!
//! A switch is held only while the current target serves and the new one does not: moving
//! then would turn working requests into failures. A new VPC link that can never serve
//! (`FAILED`, `INACTIVE`, `DELETING`) is refused outright, with the link's own status message.
//! In every other case the variable moves now: the new target serves, or nothing serves
//! through the current value (no target behind it, deleted, or not serving), so holding
//! protects nobody.
//!
//! Variables that move together move together ([`together`]): the variables of one binding
//! whose values change are written in one stage write, and only when the rule lets every one
//! of them move.

use std::fmt;

use crate::domain::LinkStatus;

/// What is known of a VPC link behind a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub status: LinkStatus,
    /// The link's own status message, as API Gateway reports it.
    pub message: Option<String>,
    /// A REST link's load balancer (its name, or ARN when it is not found).
    pub load_balancer: Option<String>,
}

/// What is known of the target behind one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The load balancer's name, or the VPC link's id, as reported.
    pub name: String,
    /// Whether the load balancer (a REST link's, for a link) has a healthy target now; a v2
    /// link, not tied to one load balancer, counts as healthy.
    pub healthy: bool,
    /// For a VPC link, its state.
    pub link: Option<LinkState>,
}

impl Target {
    /// A load balancer.
    pub fn new(name: impl Into<String>, healthy: bool) -> Self {
        Target {
            name: name.into(),
            healthy,
            link: None,
        }
    }

    /// A VPC link `id` in `state`, whose load balancer (if any) is `healthy`.
    pub fn link(id: impl Into<String>, state: LinkState, healthy: bool) -> Self {
        Target {
            name: id.into(),
            healthy,
            link: Some(state),
        }
    }

    /// Whether requests through the value are answered now.
    pub fn serves(&self) -> bool {
        self.healthy
            && self
                .link
                .as_ref()
                .is_none_or(|l| l.status == LinkStatus::Available)
    }

    /// The target as sentences name it: `load balancer NAME` or `VPC link ID`.
    pub fn noun(&self) -> String {
        match self.link {
            None => format!("load balancer {}", self.name),
            Some(_) => format!("VPC link {}", self.name),
        }
    }

    /// Why the target does not serve (when it does not).
    fn not_serving(&self) -> String {
        match &self.link {
            None => format!("load balancer {} has no healthy target yet", self.name),
            Some(l) if l.status != LinkStatus::Available => {
                format!("VPC link {} is {}", self.name, l.status)
            }
            Some(l) => format!(
                "load balancer {} of VPC link {} has no healthy target yet",
                l.load_balancer.as_deref().unwrap_or("(unknown)"),
                self.name
            ),
        }
    }

    /// The link's refusal, when the target is a VPC link that can never serve.
    fn broken(&self) -> Option<Broken> {
        let l = self.link.as_ref().filter(|l| l.status.is_broken())?;
        Some(Broken {
            link: self.name.clone(),
            status: l.status.to_string(),
            message: l.message.clone().unwrap_or_default(),
        })
    }
}

/// The rule's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move the variable now.
    Now,
    /// Keep the current value, and why.
    Hold(Held),
    /// Never move to the new value: it is a VPC link that cannot serve.
    Refuse(Broken),
}

/// A switch held back: the new target does not serve yet while the current one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The new target's name.
    pub new: String,
    /// The current target's name.
    pub current: String,
    /// Why the new target does not serve: `load balancer NAME has no healthy target yet`,
    /// `VPC link ID is PENDING`, ...
    pub why: String,
}

impl Held {
    /// A switch held on load balancers `new` and `current`.
    pub fn load_balancers(new: &str, current: &str) -> Held {
        Held {
            new: new.to_string(),
            current: current.to_string(),
            why: Target::new(new, false).not_serving(),
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; keeping {}, which serves", self.why, self.current)
    }
}

/// A VPC link that can never serve as it is: the binding fails with its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VPC link {link} is {status}: {message}")]
pub struct Broken {
    pub link: String,
    pub status: String,
    pub message: String,
}

/// Whether a variable may move from `current` to `new` (`None`: no load balancer or VPC link
/// behind the value, or none any more).
pub fn decide(current: Option<&Target>, new: Option<&Target>) -> Decision {
    if let Some(broken) = new.and_then(Target::broken) {
        return Decision::Refuse(broken);
    }
    match (current, new) {
        (Some(current), Some(new))
            if current.serves() && !new.serves() && current.name != new.name =>
        {
            Decision::Hold(Held {
                new: new.name.clone(),
                current: current.name.clone(),
                why: new.not_serving(),
            })
        }
        _ => Decision::Now,
    }
}

/// Whether the rule could hold a switch to `new` at all: only when the new target does not
/// serve is the current one worth looking up.
pub fn may_hold(new: Option<&Target>) -> bool {
    new.is_some_and(|n| !n.serves())
}

/// The decisions of the variables of one binding whose values change, taken together: every
/// one moves, in one stage write, only when the rule lets each of them move. Otherwise none
/// moves: a refusal wins (the binding fails), then a hold; each variable the rule would have
/// let move is held with the reason of the first variable held (its name given with it).
/// `decisions` are `(variable, decision)`; the answer keeps their order.
pub fn together(decisions: Vec<(String, Decision)>) -> Vec<(String, Decision)> {
    let refused = decisions.iter().find_map(|(v, d)| match d {
        Decision::Refuse(b) => Some((v.clone(), Decision::Refuse(b.clone()))),
        _ => None,
    });
    let held = decisions.iter().find_map(|(v, d)| match d {
        Decision::Hold(h) => Some((v.clone(), h.clone())),
        _ => None,
    });
    let Some((by, blocking)) = refused.or(held.map(|(v, h)| (v, Decision::Hold(h)))) else {
        return decisions;
    };
    decisions
        .into_iter()
        .map(|(v, d)| match d {
            Decision::Now => {
                let d = match &blocking {
                    Decision::Hold(h) => Decision::Hold(Held {
                        why: format!("moves with {by}, held: {}", h.why),
                        ..h.clone()
                    }),
                    other => other.clone(),
                };
                (v, d)
            }
            d => (v, d),
        })
        .collect()
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

    fn link(id: &str, status: &str, nlb_healthy: bool) -> Option<Target> {
        let state = LinkState {
            status: LinkStatus::parse(status),
            message: Some(format!("{id}: {status} because of reasons")),
            load_balancer: Some(format!("nlb-{id}")),
        };
        Some(Target::link(id, state, nlb_healthy))
    }

    #[test]
    fn a_link_moves_only_when_available_with_a_serving_load_balancer() {
        let serving = [t("old", true), link("old-link", "AVAILABLE", true)];
        let not_serving = [
            t("old", false),
            link("old-link", "PENDING", true),
            link("old-link", "AVAILABLE", false),
            None,
        ];
        // (new link, held while the current target serves)
        let waiting = [
            (link("new", "AVAILABLE", true), false),
            (link("new", "PENDING", true), true),
            (link("new", "AVAILABLE", false), true),
            (link("new", "PENDING", false), true),
        ];
        for (new, held_if_serving) in waiting {
            for current in &serving {
                let d = decide(current.as_ref(), new.as_ref());
                assert_eq!(
                    matches!(d, Decision::Hold(_)),
                    held_if_serving,
                    "{current:?} -> {new:?}: {d:?}"
                );
                assert!(!matches!(d, Decision::Refuse(_)));
            }
            for current in &not_serving {
                let d = decide(current.as_ref(), new.as_ref());
                assert_eq!(d, Decision::Now, "{current:?} -> {new:?}");
            }
        }
    }

    #[test]
    fn a_failed_or_inactive_link_is_refused_with_its_own_message_whatever_serves_now() {
        for status in ["FAILED", "INACTIVE"] {
            for current in [t("old", true), t("old", false), None] {
                let new = link("new", status, true);
                let Decision::Refuse(broken) = decide(current.as_ref(), new.as_ref()) else {
                    panic!("{status} refused");
                };
                assert_eq!(
                    broken.to_string(),
                    format!("VPC link new is {status}: new: {status} because of reasons")
                );
            }
        }
    }

    #[test]
    fn a_hold_on_a_link_says_what_it_waits_for() {
        let held = |new: Option<Target>| match decide(t("old", true).as_ref(), new.as_ref()) {
            Decision::Hold(h) => h.to_string(),
            d => panic!("{d:?}"),
        };
        assert_eq!(
            held(link("l2", "PENDING", true)),
            "VPC link l2 is PENDING; keeping old, which serves"
        );
        assert_eq!(
            held(link("l2", "AVAILABLE", false)),
            "load balancer nlb-l2 of VPC link l2 has no healthy target yet; keeping old, which serves"
        );
        assert!(may_hold(link("l2", "PENDING", true).as_ref()));
        assert!(!may_hold(link("l2", "AVAILABLE", true).as_ref()));
    }

    #[test]
    fn the_variables_of_a_binding_move_together() {
        let pending = decide(
            t("old", true).as_ref(),
            link("l2", "PENDING", true).as_ref(),
        );
        let now = || ("host".to_string(), Decision::Now);
        // One variable held keeps the other.
        let out = together(vec![now(), ("link".into(), pending.clone())]);
        let Decision::Hold(h) = &out[0].1 else {
            panic!("{out:?}");
        };
        assert_eq!(out[0].0, "host");
        assert!(
            h.to_string()
                .starts_with("moves with link, held: VPC link l2 is PENDING"),
            "{h}"
        );
        assert_eq!(out[1], ("link".to_string(), pending));
        // A refusal wins over a hold.
        let failed = decide(None, link("l3", "FAILED", true).as_ref());
        let out = together(vec![
            now(),
            ("a".into(), failed.clone()),
            (
                "b".into(),
                decide(t("old", true).as_ref(), t("new", false).as_ref()),
            ),
        ]);
        assert_eq!(out[0].1, failed);
        assert!(matches!(out[2].1, Decision::Hold(_)));
        // All free: all move.
        assert_eq!(together(vec![now(), now()]), vec![now(), now()]);
    }
}

//! What `stagewire bind` and `stagewire unbind` change on one stage, without I/O: each variable's
//! step (added, changed, adopted, removed, released while kept), from the live variables, the
//! values wanted and the binding's own records. The steps are read from the same [`patch`] the
//! write sends, so a dry run shows what the write does.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::patch::{patch, Release};

/// What happens to one variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Absent from the stage (or the stage is created): written.
    Added { new: String },
    /// Held by this binding with another value: rewritten.
    Changed { old: String, new: String },
    /// Held by this binding with the value wanted: nothing to write.
    Unchanged { value: String },
    /// On the stage, owned by no binding: taken over (and written when the value differs).
    Adopted { old: String, new: String },
    /// Owned by another binding: refused.
    Owned { owner: String },
    /// Let go of and still holding what was written: removed from the stage.
    Removed { old: String },
    /// Let go of, and left on the stage as it is: asked to keep it, or it no longer holds what
    /// was written (someone changed it since, so it is theirs now).
    Kept {
        live: Option<String>,
        written: Option<String>,
    },
}

impl Step {
    /// Whether the step writes to the stage or the registry.
    pub fn is_change(&self) -> bool {
        !matches!(self, Step::Unchanged { .. } | Step::Owned { .. })
    }
}

/// One variable and its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarStep {
    pub variable: String,
    #[serde(flatten)]
    pub step: Step,
}

impl fmt::Display for VarStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.variable;
        match &self.step {
            Step::Added { new } => write!(f, "{v}: added = {new}"),
            Step::Changed { old, new } => write!(f, "{v}: {old} -> {new}"),
            Step::Unchanged { value } => write!(f, "{v}: unchanged = {value}"),
            Step::Adopted { old, new } if old == new => write!(f, "{v}: adopted = {new}"),
            Step::Adopted { old, new } => write!(f, "{v}: adopted, {old} -> {new}"),
            Step::Owned { owner } => write!(f, "{v}: refused, owned by {owner}"),
            Step::Removed { old } => write!(f, "{v}: removed (was {old})"),
            Step::Kept { live, written } => match (live, written) {
                (Some(l), Some(w)) if l == w => write!(f, "{v}: released, value kept = {l}"),
                (Some(l), _) => write!(
                    f,
                    "{v}: released, value kept = {l} (changed since stagewire wrote {})",
                    written.as_deref().unwrap_or("it")
                ),
                (None, _) => write!(f, "{v}: released (absent from the stage)"),
            },
        }
    }
}

/// The steps of a bind: `wanted` is the binding's whole set after the bind (variable to
/// resolved value), `ours` what the binding holds now (with the values it wrote), `others` the
/// variables of this stage that other bindings own (variable to owner). `live` is `None` when the
/// stage does not exist yet.
pub fn bind(
    live: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
    ours: &[Release],
    others: &BTreeMap<String, String>,
) -> Vec<VarStep> {
    let empty = BTreeMap::new();
    let on_stage = live.unwrap_or(&empty);
    let released: Vec<Release> = ours
        .iter()
        .filter(|r| !wanted.contains_key(&r.variable))
        .cloned()
        .collect();
    let p = patch(on_stage, wanted, &released);
    let mut steps: Vec<VarStep> = wanted
        .iter()
        .map(|(name, new)| {
            let old = on_stage.get(name).cloned();
            let is_ours = ours.iter().any(|r| &r.variable == name);
            let step = match (others.get(name), old) {
                (Some(owner), _) => Step::Owned {
                    owner: owner.clone(),
                },
                (None, Some(old)) if !is_ours => Step::Adopted {
                    old,
                    new: new.clone(),
                },
                (None, Some(old)) if p.set.contains_key(name) => Step::Changed {
                    old,
                    new: new.clone(),
                },
                (None, Some(value)) => Step::Unchanged { value },
                (None, None) => Step::Added { new: new.clone() },
            };
            VarStep {
                variable: name.clone(),
                step,
            }
        })
        .collect();
    steps.extend(release_steps(on_stage, &released, &p.remove));
    steps
}

/// The steps of an unbind of these records; `keep_values` forgets them and leaves the stage.
pub fn unbind(
    live: Option<&BTreeMap<String, String>>,
    ours: &[Release],
    keep_values: bool,
) -> Vec<VarStep> {
    let empty = BTreeMap::new();
    let on_stage = live.unwrap_or(&empty);
    let removed = if keep_values {
        Vec::new()
    } else {
        patch(on_stage, &BTreeMap::new(), ours).remove
    };
    release_steps(on_stage, ours, &removed).collect()
}

fn release_steps<'a>(
    on_stage: &'a BTreeMap<String, String>,
    released: &'a [Release],
    removed: &'a [String],
) -> impl Iterator<Item = VarStep> + 'a {
    released.iter().map(move |r| {
        let live = on_stage.get(&r.variable).cloned();
        let step = match live {
            Some(old) if removed.contains(&r.variable) => Step::Removed { old },
            live => Step::Kept {
                live,
                written: r.written.clone(),
            },
        };
        VarStep {
            variable: r.variable.clone(),
            step,
        }
    })
}

/// Whether any step writes something.
pub fn pending(steps: &[VarStep]) -> bool {
    steps.iter().any(|s| s.step.is_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::memory::vars as map;

    fn ours(pairs: &[(&str, &str)]) -> Vec<Release> {
        pairs
            .iter()
            .map(|(k, v)| Release {
                variable: k.to_string(),
                written: Some(v.to_string()),
            })
            .collect()
    }

    fn step<'a>(steps: &'a [VarStep], v: &str) -> &'a Step {
        &steps.iter().find(|s| s.variable == v).unwrap().step
    }

    #[test]
    fn bind_classifies_each_variable() {
        let live = map(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "x")]);
        let wanted = map(&[("a", "1"), ("b", "20"), ("c", "30"), ("n", "5"), ("o", "6")]);
        let mine = ours(&[("a", "1"), ("b", "2"), ("d", "4"), ("e", "5")]);
        let others = map(&[("o", "B in stack S")]);
        let steps = bind(Some(&live), &wanted, &mine, &others);
        assert_eq!(step(&steps, "a"), &Step::Unchanged { value: "1".into() });
        assert_eq!(
            step(&steps, "b"),
            &Step::Changed {
                old: "2".into(),
                new: "20".into()
            }
        );
        assert_eq!(
            step(&steps, "c"),
            &Step::Adopted {
                old: "3".into(),
                new: "30".into()
            }
        );
        assert_eq!(step(&steps, "n"), &Step::Added { new: "5".into() });
        assert_eq!(
            step(&steps, "o"),
            &Step::Owned {
                owner: "B in stack S".into()
            }
        );
        assert_eq!(step(&steps, "d"), &Step::Removed { old: "4".into() });
        assert_eq!(
            step(&steps, "e"),
            &Step::Kept {
                live: Some("x".into()),
                written: Some("5".into())
            }
        );
        assert_eq!(steps.len(), 7);
        assert!(pending(&steps));
        assert_eq!(
            steps.iter().map(|s| s.to_string()).collect::<Vec<_>>()[1],
            "b: 2 -> 20"
        );
    }

    #[test]
    fn a_new_stage_adds_everything_and_nothing_to_do_is_not_pending() {
        let steps = bind(None, &map(&[("a", "1")]), &[], &BTreeMap::new());
        assert_eq!(step(&steps, "a"), &Step::Added { new: "1".into() });
        let live = map(&[("a", "1")]);
        let steps = bind(
            Some(&live),
            &map(&[("a", "1")]),
            &ours(&[("a", "1")]),
            &map(&[]),
        );
        assert!(!pending(&steps));
    }

    #[test]
    fn unbind_removes_what_still_holds_the_written_value_unless_asked_to_keep() {
        let live = map(&[("a", "1"), ("b", "changed")]);
        let mine = ours(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let steps = unbind(Some(&live), &mine, false);
        assert_eq!(step(&steps, "a"), &Step::Removed { old: "1".into() });
        assert!(matches!(step(&steps, "b"), Step::Kept { live: Some(l), .. } if l == "changed"));
        assert!(matches!(step(&steps, "c"), Step::Kept { live: None, .. }));
        let steps = unbind(Some(&live), &mine, true);
        assert!(steps.iter().all(|s| matches!(s.step, Step::Kept { .. })));
        assert!(pending(&steps), "forgetting is a change to the registry");
        assert!(unbind(Some(&live), &[], false).is_empty());
    }
}

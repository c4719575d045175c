//! The patch for one stage, without I/O: from the live variables, the values wanted and the
//! variables let go, the one call that makes the stage right.

use std::collections::BTreeMap;

use crate::ports::StagePatch;

/// A variable a binding lets go of, with the value it last wrote there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub variable: String,
    pub written: Option<String>,
}

/// Set every wanted variable that differs; remove every released variable that still holds
/// the value written there (a value changed by someone else since is theirs now).
pub fn patch(
    live: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
    released: &[Release],
) -> StagePatch {
    StagePatch {
        set: wanted
            .iter()
            .filter(|(name, value)| live.get(*name) != Some(*value))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        remove: released
            .iter()
            .filter(|r| !wanted.contains_key(&r.variable))
            .filter(|r| r.written.is_some() && live.get(&r.variable) == r.written.as_ref())
            .map(|r| r.variable.clone())
            .collect(),
    }
}

/// How many variables the stage holds once the patch is applied.
pub fn count_after(live: &BTreeMap<String, String>, patch: &StagePatch) -> usize {
    let added = patch.set.keys().filter(|k| !live.contains_key(*k)).count();
    let removed = patch
        .remove
        .iter()
        .filter(|k| live.contains_key(*k))
        .count();
    live.len() + added - removed
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::memory::vars as map;

    fn release(variable: &str, written: &str) -> Release {
        Release {
            variable: variable.into(),
            written: Some(written.into()),
        }
    }

    #[test]
    fn nothing_to_do_when_every_value_holds() {
        let live = map(&[("a", "1"), ("other", "x")]);
        let p = patch(&live, &map(&[("a", "1")]), &[]);
        assert!(p.is_empty());
        assert_eq!(count_after(&live, &p), 2);
    }

    #[test]
    fn sets_changed_and_new_variables_only() {
        let live = map(&[("a", "1"), ("b", "2")]);
        let p = patch(&live, &map(&[("a", "1"), ("b", "20"), ("c", "3")]), &[]);
        assert_eq!(p.set, map(&[("b", "20"), ("c", "3")]));
        assert!(p.remove.is_empty());
        assert_eq!(count_after(&live, &p), 3);
    }

    #[test]
    fn removes_released_variables_that_still_hold_what_was_written() {
        let live = map(&[("mine", "v1"), ("changed", "by-hand"), ("keep", "k")]);
        let released = [
            release("mine", "v1"),
            release("changed", "v1"),
            release("gone", "v1"),
        ];
        let p = patch(&live, &map(&[("keep", "k")]), &released);
        assert_eq!(p.remove, vec!["mine".to_string()]);
        assert!(p.set.is_empty());
        assert_eq!(count_after(&live, &p), 2);
    }

    #[test]
    fn a_released_variable_that_is_wanted_again_is_not_removed() {
        let live = map(&[("a", "1")]);
        let p = patch(&live, &map(&[("a", "2")]), &[release("a", "1")]);
        assert!(p.remove.is_empty());
        assert_eq!(p.set, map(&[("a", "2")]));
    }

    #[test]
    fn an_unknown_written_value_never_removes() {
        let live = map(&[("a", "1")]);
        let unknown = Release {
            variable: "a".into(),
            written: None,
        };
        assert!(patch(&live, &BTreeMap::new(), &[unknown]).is_empty());
    }
}

//! CloudWatch Embedded Metric Format: one line per re-sync invocation, written to stdout where
//! Lambda's log pipeline turns it into metrics (namespace `Stagewire`, dimension `Function`).

use std::time::Duration;

use serde_json::{json, Value};

use super::Summary;
use crate::emf::{self, Unit};

pub use crate::emf::NAMESPACE;
pub const FUNCTION: &str = "stage-resync";

/// The EMF document for one invocation.
pub fn document(summary: &Summary, elapsed: Duration, timestamp_ms: i64) -> Value {
    let n = |v: usize| v as u64;
    emf::document(
        FUNCTION,
        &[
            ("EventsSeen", Unit::Count, 1),
            ("BindingsChecked", Unit::Count, n(summary.bindings_checked)),
            ("VariablesChanged", Unit::Count, n(summary.changed.len())),
            ("BindingsReleased", Unit::Count, n(summary.released)),
            ("Unresolved", Unit::Count, n(summary.unresolved().len())),
            ("Deferred", Unit::Count, n(summary.deferred().len())),
            ("Failures", Unit::Count, n(summary.failures().len())),
            (
                emf::SECURITY_EVENTS,
                Unit::Count,
                n(summary.refused().len()),
            ),
            ("Duration", Unit::Milliseconds, elapsed.as_millis() as u64),
        ],
        &[("Trigger", json!(summary.trigger))],
        timestamp_ms,
    )
}

/// Print the invocation's metrics line.
pub fn emit(summary: &Summary, elapsed: Duration) {
    emf::emit(&document(summary, elapsed, crate::now_ms()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_a_value() {
        let summary = Summary {
            bindings_checked: 3,
            issues: vec![crate::resync::Issue {
                stage: "s".into(),
                variable: None,
                kind: crate::resync::IssueKind::Failed,
                cause: "x".into(),
                retryable: true,
            }],
            ..Summary::default()
        };
        let doc = document(&summary, Duration::from_millis(12), 1);
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for m in declared {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has no value");
        }
        assert_eq!(doc["BindingsChecked"], 3);
        assert_eq!(doc["Failures"], 1);
        assert_eq!(doc["Function"], FUNCTION);
    }
}

//! CloudWatch Embedded Metric Format: one line per re-sync invocation, written to stdout where
//! Lambda's log pipeline turns it into metrics (namespace `Stagewire`, dimension `Function`).

use std::time::Duration;

use serde_json::{json, Value};

use super::Summary;

pub const NAMESPACE: &str = "Stagewire";
pub const FUNCTION: &str = "stage-resync";

/// The EMF document for one invocation.
pub fn document(summary: &Summary, elapsed: Duration, timestamp_ms: i64) -> Value {
    let metric = |name: &str, unit: &str| json!({"Name": name, "Unit": unit});
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [
                    metric("EventsSeen", "Count"),
                    metric("BindingsChecked", "Count"),
                    metric("VariablesChanged", "Count"),
                    metric("BindingsReleased", "Count"),
                    metric("Unresolved", "Count"),
                    metric("Deferred", "Count"),
                    metric("Failures", "Count"),
                    metric(crate::cfn::security::SECURITY_METRIC, "Count"),
                    metric("Duration", "Milliseconds"),
                ]
            }]
        },
        "Function": FUNCTION,
        "Trigger": summary.trigger,
        "EventsSeen": 1,
        "BindingsChecked": summary.bindings_checked,
        "VariablesChanged": summary.changed.len(),
        "BindingsReleased": summary.released,
        "Unresolved": summary.unresolved().len(),
        "Deferred": summary.deferred().len(),
        "Failures": summary.failures().len(),
        crate::cfn::security::SECURITY_METRIC: summary.refused().len(),
        "Duration": elapsed.as_millis() as u64,
    })
}

/// Print the invocation's metrics line.
pub fn emit(summary: &Summary, elapsed: Duration) {
    println!("{}", document(summary, elapsed, crate::now_ms()));
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

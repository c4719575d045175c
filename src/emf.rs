//! CloudWatch Embedded Metric Format: the one writer of both functions' metric lines. A line
//! on stdout that Lambda's log pipeline turns into metrics in namespace `Stagewire`, dimension
//! `Function`.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Stagewire";

/// The metric counting refused requests and claims, of either function (the template alarms on
/// their sum).
pub const SECURITY_EVENTS: &str = "SecurityEvents";

/// Units the functions' metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric of a line: its name, unit and value.
pub type Metric<'a> = (&'a str, Unit, u64);

/// The EMF document of `function`'s `metrics`, with `properties` (searchable, not metrics).
pub fn document(
    function: &str,
    metrics: &[Metric<'_>],
    properties: &[(&str, Value)],
    timestamp_ms: i64,
) -> Value {
    let declared: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": declared,
            }]
        }),
    );
    doc.insert("Function".into(), json!(function));
    for (name, value) in properties {
        doc.insert((*name).into(), value.clone());
    }
    for (name, _, value) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    Value::Object(doc)
}

/// Print a metric line on stdout, where Lambda's log pipeline reads it.
pub fn emit(document: &Value) {
    println!("{document}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_its_value_and_the_function_its_dimension() {
        let doc = document(
            "f",
            &[("A", Unit::Count, 2), ("B", Unit::Milliseconds, 7)],
            &[("Trigger", json!("t"))],
            5,
        );
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(spec["Dimensions"], json!([["Function"]]));
        assert_eq!(
            spec["Metrics"],
            json!([{"Name": "A", "Unit": "Count"}, {"Name": "B", "Unit": "Milliseconds"}])
        );
        assert_eq!((doc["A"].as_u64(), doc["B"].as_u64()), (Some(2), Some(7)));
        assert_eq!(
            (doc["Function"].as_str(), doc["Trigger"].as_str()),
            (Some("f"), Some("t"))
        );
        assert_eq!(doc["_aws"]["Timestamp"], 5);
    }
}

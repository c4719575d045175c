//! The EMF line of each health wait (namespace `Stagewire`, dimension `Function`).

use std::time::Duration;

use serde_json::Value;

use super::reporting;
use crate::emf::{self, Unit};

pub const FUNCTION: &str = "stage-binding";

/// The EMF document of one wait.
pub fn document(held: usize, waited: Duration, served: bool, timestamp_ms: i64) -> Value {
    emf::document(
        FUNCTION,
        &[
            ("HealthWaits", Unit::Count, 1),
            ("HealthWaitVariables", Unit::Count, held as u64),
            (
                "HealthWaitDuration",
                Unit::Milliseconds,
                waited.as_millis() as u64,
            ),
            ("HealthWaitTimeouts", Unit::Count, u64::from(!served)),
        ],
        &[],
        timestamp_ms,
    )
}

pub(super) fn emit(held: usize, waited: Duration, served: bool) {
    if !reporting().metrics {
        return;
    }
    emf::emit(&document(held, waited, served, crate::now_ms()));
}

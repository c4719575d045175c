//! Re-sync: from an event to the bindings it can affect, and from there to the stage writes
//! that make every variable match its source again. The shape of a reconcile loop:
//!
//! - [`trigger`]: events (EventBridge, the schedule, an operator) into a [`Trigger`].
//! - [`lookup`]: the bindings a trigger can affect, from the registry's indexes.
//! - [`reconcile`]: gather facts, plan each stage ([`crate::plan::stage`]), apply the plan.
//! - [`summary`]: what was done and every issue met, retryable or not.
//! - [`metrics`]: the summary as one CloudWatch Embedded Metric Format line.

pub mod lookup;
pub mod metrics;
pub mod reconcile;
pub mod rights;
pub mod summary;
pub mod trigger;

use serde_json::Value;

pub use lookup::affected;
pub use reconcile::{plans, reconcile, StageUnreadable};
pub use summary::{Change, Incomplete, Issue, IssueKind, Summary};
pub use trigger::{classify, EventKind, Trigger, ACTIONABLE_STACK_STATUSES, EVENT_KINDS};

use crate::Ports;

/// The `stage-resync` function: classify, look up, reconcile, emit metrics.
pub async fn handle(ports: &Ports, event: Value) -> Result<Summary, Incomplete> {
    let start = std::time::Instant::now();
    let trigger = classify(&event);
    let mut summary = Summary::new(format!("{trigger:?}"));
    if let Trigger::Ignored(why) = &trigger {
        tracing::info!(reason = %why, "event ignored");
    } else {
        match affected(ports, &trigger).await {
            Ok(records) => summary.merge(reconcile(ports, records).await),
            Err(e) => summary.fail("registry", None, &e),
        }
    }
    metrics::emit(&summary, start.elapsed());
    tracing::info!(
        trigger = %summary.trigger,
        checked = summary.bindings_checked,
        changed = summary.changed.len(),
        unresolved = summary.unresolved().len(),
        deferred = summary.deferred().len(),
        failures = summary.failures().len(),
        duration_ms = start.elapsed().as_millis() as u64,
        "re-sync done"
    );
    if summary.failures().is_empty() {
        Ok(summary)
    } else {
        Err(Incomplete(Box::new(summary)))
    }
}

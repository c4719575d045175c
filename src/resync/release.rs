//! Release: what the Delete of a binding would have done, for the bindings of stacks that
//! CloudFormation says ended ([`super::lookup::ended_owners`] decides which).

use std::collections::BTreeMap;

use super::Summary;
use crate::domain::StageRef;
use crate::ports::Record;
use crate::Ports;

/// Release the bindings of stacks that ended: remove their variables where they still hold
/// what was written, delete the stages they created once empty, and forget them, as their
/// Delete would have.
pub async fn release(ports: &Ports, records: Vec<Record>) -> Summary {
    let mut summary = Summary::default();
    if records.is_empty() {
        return summary;
    }
    summary.bindings_checked = records.len();
    let mut by_stage: BTreeMap<StageRef, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    for (stage, records) in by_stage {
        match crate::binding::remove(ports, &records).await {
            Ok(done) => {
                tracing::info!(%stage, released = done.records_released, variables_removed = done.variables_removed, stages_deleted = done.stages_deleted, "bindings of an ended stack released");
                summary.released += done.records_released;
            }
            Err(e) => summary.fail(&stage, None, &e),
        }
    }
    summary
}

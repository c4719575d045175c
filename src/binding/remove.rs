//! Delete, and the removal of released records' variables and the stages they created.

use std::collections::BTreeMap;

use super::apply::release_of;
use super::{stage_err, BindingError};
use crate::domain::{stage_of_physical_id, BindingSpec, StageRef};
use crate::plan::{self, Release};
use crate::ports::{ErrorKind, Record};
use crate::Ports;

/// The records held by one physical resource. Its id names its stage, so they are read from the
/// table itself (consistently, unlike an index); an id that names none (a Create that failed
/// early) is looked up by owner.
pub(super) async fn owned(
    ports: &Ports,
    owner_key: &str,
    physical_id: &str,
) -> Result<Vec<Record>, BindingError> {
    let candidates = match stage_of_physical_id(physical_id) {
        Some(stage) => ports.registry.by_stage(&stage).await?,
        None => ports.registry.by_owner(owner_key).await?,
    };
    Ok(candidates
        .into_iter()
        .filter(|r| r.owner.key() == owner_key && r.owner.physical_id == physical_id)
        .collect())
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub variables_removed: usize,
    pub stages_deleted: usize,
    pub records_released: usize,
}

/// Whether CloudFormation has this physical id from stagewire. Any other id is one
/// CloudFormation made up for a Create that never answered (cancelled when a sibling failed, or
/// too late).
fn is_ours(physical_id: &str) -> bool {
    physical_id.starts_with("stagewire:")
}

/// Delete the binding with this physical id: remove the variables it owns that still hold the
/// value it wrote, delete a stage it created once nothing else lives there, and forget it.
/// Deleting what is already gone succeeds.
///
/// A Delete with an id CloudFormation made up ends a Create that never answered and may still
/// be running: it first records the cancellation (so that Create's claim fails, or the Create
/// undoes itself once it sees it), then removes whatever that Create already wrote, found by
/// the stage its properties name (read consistently) or else by owner.
pub async fn delete(
    ports: &Ports,
    stack_id: &str,
    logical_id: &str,
    physical_id: &str,
    spec: Option<&BindingSpec>,
) -> Result<Deleted, BindingError> {
    let owner_key = crate::domain::owner_key(stack_id, logical_id);
    let records = if is_ours(physical_id) {
        owned(ports, &owner_key, physical_id).await?
    } else {
        ports.registry.cancel(&owner_key, crate::now_ms()).await?;
        let candidates = match spec {
            Some(spec) => ports.registry.by_stage(&spec.stage).await?,
            None => ports.registry.by_owner(&owner_key).await?,
        };
        candidates
            .into_iter()
            .filter(|r| r.owner.key() == owner_key)
            .collect()
    };
    remove(ports, &records).await
}

/// Remove these records' variables where they still hold what was written, delete the stages
/// their owners created once nothing else lives there, and forget the records. A stage or API
/// that is gone (its stack deleted in parallel) has nothing left to remove.
pub async fn remove(ports: &Ports, records: &[Record]) -> Result<Deleted, BindingError> {
    let mut by_stage: BTreeMap<StageRef, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    let mut done = Deleted::default();
    for (stage, mine) in by_stage {
        let stages = ports.stages(stage.kind);
        let Some(live) = stages.get(&stage).await.map_err(stage_err(&stage))? else {
            continue;
        };
        let releases: Vec<Release> = mine.iter().map(|r| release_of(r)).collect();
        let patch = plan::patch(&live.variables, &BTreeMap::new(), &releases);
        let remaining = plan::count_after(&live.variables, &patch);
        if !patch.is_empty() {
            match stages.update(&stage, &patch).await {
                Ok(()) => done.variables_removed += patch.remove.len(),
                Err(e) if e.is(ErrorKind::NotFound) => continue,
                Err(e) => return Err(stage_err(&stage)(e)),
            }
        }
        if remaining == 0 && mine.iter().any(|r| r.created_stage) {
            let others = ports
                .registry
                .by_stage(&stage)
                .await?
                .into_iter()
                .filter(|r| {
                    !mine
                        .iter()
                        .any(|m| m.variable == r.variable && m.owner == r.owner)
                })
                .count();
            if others == 0 {
                match stages.delete(&stage).await {
                    Ok(()) => done.stages_deleted += 1,
                    Err(e) if e.is(ErrorKind::NotFound) => {}
                    Err(e) => return Err(stage_err(&stage)(e)),
                }
            }
        }
    }
    done.records_released = ports.registry.release(records).await?;
    Ok(done)
}

/// Delete `stage` if one of these released bindings created it and nothing lives there any
/// more, no variable and no binding: what their Delete would have done, had a re-sync's write not
/// landed after it (the Delete then found the stage holding another value and left it).
pub async fn delete_stage_left_empty(
    ports: &Ports,
    stage: &StageRef,
    released: &[&Record],
) -> Result<bool, BindingError> {
    if !released.iter().any(|r| r.created_stage) {
        return Ok(false);
    }
    let stages = ports.stages(stage.kind);
    let Some(live) = stages.get(stage).await.map_err(stage_err(stage))? else {
        return Ok(false);
    };
    if !live.variables.is_empty() || !ports.registry.by_stage(stage).await?.is_empty() {
        return Ok(false);
    }
    match stages.delete(stage).await {
        Ok(()) => Ok(true),
        Err(e) if e.is(ErrorKind::NotFound) => Ok(false),
        Err(e) => Err(stage_err(stage)(e)),
    }
}

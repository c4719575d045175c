//! The `Custom::StageBinding` lifecycle: create, update (in place or by replacement) and delete,
//! over the ports. The CloudFormation protocol around it lives in [`crate::cfn`].
//!
//! Order of work on create and update: resolve every source and validate every value, read
//! the stage, claim the variables in the registry (atomically, failing on another owner), then
//! write the stage in one call. A failure before the claim writes nothing; a failure of the
//! write releases what the call newly claimed, so a failed call leaves nothing of itself.

use std::collections::BTreeMap;

use crate::domain::{
    stage_of_physical_id, validate_variable_count, validate_variable_value, BindingSpec, Owner,
    StageRef, ValidationError,
};
use crate::plan::{self, Release};
use crate::ports::{AwsError, ErrorKind, Record, RegistryError, StagePatch, Stages};
use crate::resolve::{ResolveError, Resolver};
use crate::Ports;

/// `Fn::GetAtt` name of the stage URL.
pub const INVOKE_URL: &str = "InvokeUrl";

/// What a successful create or update answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub physical_id: String,
    /// `Fn::GetAtt` attributes: each variable's value and `InvokeUrl`.
    pub data: BTreeMap<String, String>,
    /// Whether the stage was created, changed, or already held every value.
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    CreatedStage,
    Updated,
    Unchanged,
}

/// Why a lifecycle step failed; every message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("{}", unresolved_message(.0))]
    Unresolved(Vec<(String, ResolveError)>),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} does not exist and CreateStage is false")]
    StageMissing(StageRef),
    #[error(
        "the attributes of this binding (its variables' values and InvokeUrl) take {size} bytes, more than the {limit} bytes left in CloudFormation's 4096-byte response: split the variables over several bindings"
    )]
    ResponseTooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("could not write {stage}: {source}")]
    Stage {
        stage: StageRef,
        #[source]
        source: AwsError,
    },
}

fn unresolved_message(errors: &[(String, ResolveError)]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|(var, e)| format!("variable {var}: {e}"))
        .collect();
    format!("cannot resolve {}", parts.join("; "))
}

fn stage_err(stage: &StageRef) -> impl FnOnce(AwsError) -> BindingError + '_ {
    move |source| BindingError::Stage {
        stage: stage.clone(),
        source,
    }
}

fn owner_of(stack_id: &str, logical_id: &str, spec: &BindingSpec) -> Owner {
    Owner {
        stack_id: stack_id.to_string(),
        logical_id: logical_id.to_string(),
        physical_id: spec.physical_id(logical_id),
    }
}

/// Create the binding. `data_limit` is the room left for `Data` in the response.
pub async fn create(
    ports: &Ports,
    stack_id: &str,
    logical_id: &str,
    spec: &BindingSpec,
    data_limit: usize,
    now_ms: i64,
) -> Result<Applied, BindingError> {
    let owner = owner_of(stack_id, logical_id, spec);
    apply(ports, &owner, spec, &[], data_limit, now_ms).await
}

/// Update the binding. A change of API or stage is a replacement: the new binding is created
/// under a new physical id and CloudFormation deletes the old one afterwards.
pub async fn update(
    ports: &Ports,
    stack_id: &str,
    logical_id: &str,
    old_physical_id: &str,
    spec: &BindingSpec,
    data_limit: usize,
    now_ms: i64,
) -> Result<Applied, BindingError> {
    let owner = owner_of(stack_id, logical_id, spec);
    // In place, the records are this id's own. A replacement gets a new id with no records yet,
    // except when it is the rollback of a replacement: CloudFormation then sends the old
    // properties to the new id, which names the old binding again, records and all (including
    // whether it created its stage).
    let prior = owned(ports, &owner.key(), &owner.physical_id).await?;
    if owner.physical_id != old_physical_id {
        tracing::info!(from = old_physical_id, to = %owner.physical_id, known = prior.len(), "replacement");
    }
    apply(ports, &owner, spec, &prior, data_limit, now_ms).await
}

async fn apply(
    ports: &Ports,
    owner: &Owner,
    spec: &BindingSpec,
    prior: &[Record],
    data_limit: usize,
    now_ms: i64,
) -> Result<Applied, BindingError> {
    let stage = &spec.stage;

    // 1. Resolve and validate everything before writing anything.
    let mut resolver = Resolver::new(ports);
    let mut resolved = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, source) in &spec.variables {
        match resolver.resolve(source).await {
            Ok(r) => {
                resolved.insert(name.clone(), r);
            }
            Err(e) => errors.push((name.clone(), e)),
        }
    }
    if !errors.is_empty() {
        return Err(BindingError::Unresolved(errors));
    }
    for (name, r) in &resolved {
        validate_variable_value(name, &r.value)?;
    }
    let mut data: BTreeMap<String, String> = resolved
        .iter()
        .map(|(k, r)| (k.clone(), r.value.clone()))
        .collect();
    data.insert(INVOKE_URL.into(), stage.invoke_url(&ports.region));
    let size = serde_json::to_vec(&data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > data_limit {
        return Err(BindingError::ResponseTooLarge {
            size,
            limit: data_limit,
        });
    }

    // 2. Read the stage.
    let stages = ports.stages(stage.kind);
    let live = stages.get(stage).await.map_err(stage_err(stage))?;
    if live.is_none() && !spec.create_stage {
        return Err(BindingError::StageMissing(stage.clone()));
    }
    let released: Vec<Record> = prior
        .iter()
        .filter(|r| !spec.variables.contains_key(&r.variable))
        .cloned()
        .collect();
    let wanted = data_without_url(&data);
    let releases: Vec<Release> = released.iter().map(release_of).collect();
    let patch = live
        .as_ref()
        .map(|l| plan::patch(&l.variables, &wanted, &releases));
    if let (Some(live), Some(patch)) = (&live, &patch) {
        validate_variable_count(stage, plan::count_after(&live.variables, patch))?;
    }

    // 3. Claim the variables.
    let created_stage = live.is_none() || prior.iter().any(|r| r.created_stage);
    let records: Vec<Record> = resolved
        .iter()
        .map(|(name, r)| Record {
            stage: stage.clone(),
            variable: name.clone(),
            owner: owner.clone(),
            source: spec.variables[name].clone(),
            value: Some(r.value.clone()),
            written_at: Some(now_ms),
            via: r.via(),
            created_stage,
            last_error: None,
            checked_at: None,
            version: 0,
        })
        .collect();
    ports.registry.claim(&records, &released).await?;

    // 4. Write the stage in one call. A failure leaves nothing of this call: what it newly
    // claimed is released and what it wrote is undone (no Delete comes for the id of a failed
    // replacement).
    let change = match write(stages, stage, patch, &wanted, &releases).await {
        Ok(change) => change,
        Err(e) => {
            undo(ports, &records, prior).await;
            return Err(stage_err(stage)(e));
        }
    };
    Ok(Applied {
        physical_id: owner.physical_id.clone(),
        data,
        change,
    })
}

/// Create the stage, or patch it. A stage that a concurrent invocation created after it was
/// read (siblings of one template creating one new stage) is patched instead: the outcome is
/// the same stage with every binding's variables.
async fn write(
    stages: &dyn Stages,
    stage: &StageRef,
    patch: Option<StagePatch>,
    wanted: &BTreeMap<String, String>,
    releases: &[Release],
) -> Result<Change, AwsError> {
    match patch {
        None => match stages.create(stage, wanted).await {
            Ok(()) => Ok(Change::CreatedStage),
            Err(e) if e.is(ErrorKind::Conflict) => {
                tracing::info!(%stage, "stage created concurrently: updating it");
                let live = stages.get(stage).await?.unwrap_or_default();
                let patch = plan::patch(&live.variables, wanted, releases);
                if !patch.is_empty() {
                    stages.update(stage, &patch).await?;
                }
                Ok(Change::Updated)
            }
            Err(e) => Err(e),
        },
        Some(patch) if patch.is_empty() => Ok(Change::Unchanged),
        Some(patch) => {
            stages.update(stage, &patch).await?;
            Ok(Change::Updated)
        }
    }
}

/// After a failed write: release the records this call claimed anew (those held before keep
/// their last state), so that the variables are free again. Best effort: the write failed, so
/// there is nothing on the stage to undo but what a partial write may have set, which is
/// removed while it still holds this call's value.
async fn undo(ports: &Ports, claimed: &[Record], prior: &[Record]) {
    let new: Vec<Record> = claimed
        .iter()
        .filter(|r| !prior.iter().any(|p| p.variable == r.variable))
        .cloned()
        .collect();
    if new.is_empty() {
        return;
    }
    let stage = &new[0].stage;
    let stages = ports.stages(stage.kind);
    if let Ok(Some(live)) = stages.get(stage).await {
        let releases: Vec<Release> = new.iter().map(release_of).collect();
        let patch = plan::patch(&live.variables, &BTreeMap::new(), &releases);
        if !patch.is_empty() {
            if let Err(e) = stages.update(stage, &patch).await {
                tracing::warn!(%stage, error = %e, "could not undo a partial write");
            }
        }
    }
    if let Err(e) = ports.registry.release(&new).await {
        tracing::warn!(error = %e, "could not release the claims of a failed write");
    }
}

fn release_of(r: &Record) -> Release {
    Release {
        variable: r.variable.clone(),
        written: r.value.clone(),
    }
}

fn data_without_url(data: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut vars = data.clone();
    vars.remove(INVOKE_URL);
    vars
}

/// The records held by one physical resource. Its id names its stage, so they are read from the
/// table itself (consistently, unlike an index); an id that names none (a Create that failed
/// early) is looked up by owner.
async fn owned(
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

/// Delete the binding with this physical id: remove the variables it owns that still hold the
/// value it wrote, delete a stage it created once nothing else lives there, and forget it.
/// Deleting what is already gone succeeds.
pub async fn delete(
    ports: &Ports,
    stack_id: &str,
    logical_id: &str,
    physical_id: &str,
) -> Result<Deleted, BindingError> {
    let owner_key = crate::domain::owner_key(stack_id, logical_id);
    let records = owned(ports, &owner_key, physical_id).await?;
    let mut by_stage: BTreeMap<StageRef, Vec<&Record>> = BTreeMap::new();
    for r in &records {
        by_stage.entry(r.stage.clone()).or_default().push(r);
    }
    let mut done = Deleted::default();
    for (stage, mine) in by_stage {
        let stages = ports.stages(stage.kind);
        let Some(live) = stages.get(&stage).await.map_err(stage_err(&stage))? else {
            continue; // the stage or its API is gone: nothing to remove
        };
        let releases: Vec<Release> = mine.iter().map(|r| release_of(r)).collect();
        let patch = plan::patch(&live.variables, &BTreeMap::new(), &releases);
        let remaining = plan::count_after(&live.variables, &patch);
        if !patch.is_empty() {
            match stages.update(&stage, &patch).await {
                Ok(()) => done.variables_removed += patch.remove.len(),
                // The stage or its API went away since it was read (its stack is being
                // deleted in parallel): nothing is left to remove.
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
                .filter(|r| r.owner.physical_id != physical_id || r.owner.key() != owner_key)
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
    done.records_released = ports.registry.release(&records).await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKind, Source};
    use crate::memory::World;

    fn spec(variables: &[(&str, &str)]) -> BindingSpec {
        BindingSpec {
            stage: StageRef::new(ApiKind::Rest, "api", "prod"),
            create_stage: true,
            variables: variables
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Source::Literal {
                            value: v.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn live(world: &World) -> Option<BTreeMap<String, String>> {
        world
            .state()
            .stages
            .get(&StageRef::new(ApiKind::Rest, "api", "prod"))
            .cloned()
    }

    #[tokio::test]
    async fn create_makes_the_stage_and_claims_its_variables() {
        let world = World::new();
        let ports = world.ports();
        let applied = create(&ports, "stack/A", "B", &spec(&[("v", "one")]), 4096, 1)
            .await
            .unwrap();
        assert_eq!(applied.change, Change::CreatedStage);
        assert_eq!(applied.data["v"], "one");
        assert!(applied.data[INVOKE_URL].ends_with("/prod"));
        assert_eq!(live(&world).unwrap()["v"], "one");
        let r = ports.registry.all().await.unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].created_stage);
        assert_eq!(r[0].owner.physical_id, applied.physical_id);
    }

    #[tokio::test]
    async fn a_second_owner_is_refused_by_name_and_writes_nothing() {
        let world = World::new();
        let ports = world.ports();
        create(&ports, "stack/A", "First", &spec(&[("v", "one")]), 4096, 1)
            .await
            .unwrap();
        let err = create(
            &ports,
            "stack/B",
            "Second",
            &spec(&[("v", "two"), ("w", "x")]),
            4096,
            2,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("owned by First in stack stack/A"),
            "{err}"
        );
        assert_eq!(live(&world).unwrap().get("w"), None);
        assert_eq!(live(&world).unwrap()["v"], "one");
        assert_eq!(ports.registry.all().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_update_releases_dropped_variables_and_keeps_created_stage() {
        let world = World::new();
        let ports = world.ports();
        let a = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("v", "1"), ("w", "2")]),
            4096,
            1,
        )
        .await
        .unwrap();
        update(
            &ports,
            "stack/A",
            "B",
            &a.physical_id,
            &spec(&[("v", "3")]),
            4096,
            2,
        )
        .await
        .unwrap();
        let vars = live(&world).unwrap();
        assert_eq!(vars.get("w"), None);
        assert_eq!(vars["v"], "3");
        let records = ports.registry.all().await.unwrap();
        assert_eq!(records.len(), 1);
        assert!(
            records[0].created_stage,
            "the binding still knows it created the stage"
        );
    }

    #[tokio::test]
    async fn delete_leaves_hand_changed_variables_and_a_shared_stage() {
        let world = World::new();
        let ports = world.ports();
        let a = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("v", "1"), ("w", "2")]),
            4096,
            1,
        )
        .await
        .unwrap();
        let stage = StageRef::new(ApiKind::Rest, "api", "prod");
        world
            .state()
            .stages
            .get_mut(&stage)
            .unwrap()
            .insert("w".into(), "by-hand".into());

        let done = delete(&ports, "stack/A", "B", &a.physical_id)
            .await
            .unwrap();

        assert_eq!(done.variables_removed, 1);
        assert_eq!(done.stages_deleted, 0, "a variable still lives there");
        assert_eq!(done.records_released, 2);
        assert_eq!(
            live(&world).unwrap(),
            BTreeMap::from([("w".to_string(), "by-hand".to_string())])
        );
        // Deleting again finds nothing and succeeds.
        assert_eq!(
            delete(&ports, "stack/A", "B", &a.physical_id)
                .await
                .unwrap(),
            Deleted::default()
        );
    }

    #[tokio::test]
    async fn delete_of_a_created_stage_deletes_it_once_empty() {
        let world = World::new();
        let ports = world.ports();
        let a = create(&ports, "stack/A", "B", &spec(&[("v", "1")]), 4096, 1)
            .await
            .unwrap();
        let done = delete(&ports, "stack/A", "B", &a.physical_id)
            .await
            .unwrap();
        assert_eq!(done.stages_deleted, 1);
        assert_eq!(live(&world), None);
    }

    #[tokio::test]
    async fn a_failed_stage_write_is_reported_with_its_cause() {
        let world = World::new();
        let ports = world.ports();
        world.fail(
            crate::ports::op::CREATE_STAGE,
            crate::ports::ErrorKind::AccessDenied,
            1,
        );
        let err = create(&ports, "stack/A", "B", &spec(&[("v", "1")]), 4096, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, BindingError::Stage { ref source, .. } if source.kind == crate::ports::ErrorKind::AccessDenied),
            "{err}"
        );
    }

    fn on(stage: &str, variables: &[(&str, &str)]) -> BindingSpec {
        BindingSpec {
            stage: StageRef::new(ApiKind::Rest, "api", stage),
            ..spec(variables)
        }
    }

    fn vars(world: &World, stage: &str) -> Option<BTreeMap<String, String>> {
        world
            .state()
            .stages
            .get(&StageRef::new(ApiKind::Rest, "api", stage))
            .cloned()
    }

    #[tokio::test]
    async fn siblings_creating_one_new_stage_both_succeed_with_both_sets() {
        let world = World::new();
        let ports = world.ports();
        // The sibling creates the stage between this binding's read and its create.
        world.before(crate::ports::op::CREATE_STAGE, |s| {
            s.stages.insert(
                StageRef::new(ApiKind::Rest, "api", "prod"),
                BTreeMap::from([("a".to_string(), "1".to_string())]),
            );
        });
        let b = create(&ports, "stack/A", "B", &spec(&[("b", "2")]), 4096, 1).await;
        assert_eq!(b.unwrap().change, Change::Updated);
        assert_eq!(
            live(&world).unwrap(),
            BTreeMap::from([
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string())
            ])
        );
    }

    #[tokio::test]
    async fn a_failed_replacement_leaves_nothing_and_its_rollback_restores_the_binding() {
        let world = World::new();
        let ports = world.ports();
        let a = create(&ports, "stack/A", "B", &on("prod", &[("v", "1")]), 4096, 1)
            .await
            .unwrap();
        let before = ports.registry.all().await.unwrap();
        world.fail(
            crate::ports::op::CREATE_STAGE,
            crate::ports::ErrorKind::Other,
            1,
        );

        let failed = update(
            &ports,
            "stack/A",
            "B",
            &a.physical_id,
            &on("next", &[("v", "2")]),
            4096,
            2,
        )
        .await;

        assert!(failed.is_err());
        assert_eq!(
            ports.registry.all().await.unwrap(),
            before,
            "no claim of the failed id remains"
        );
        assert_eq!(vars(&world, "next"), None);
        // The rollback: the old properties, the current (old) id.
        let back = update(
            &ports,
            "stack/A",
            "B",
            &a.physical_id,
            &on("prod", &[("v", "1")]),
            4096,
            3,
        )
        .await
        .unwrap();
        assert_eq!(
            (back.physical_id, back.change),
            (a.physical_id, Change::Unchanged)
        );
        assert!(ports
            .registry
            .all()
            .await
            .unwrap()
            .iter()
            .all(|r| r.created_stage));
    }

    #[tokio::test]
    async fn the_rollback_of_a_replacement_keeps_what_the_old_binding_created() {
        let world = World::new();
        let ports = world.ports();
        let a = create(&ports, "stack/A", "B", &on("prod", &[("v", "1")]), 4096, 1)
            .await
            .unwrap();
        let b = update(
            &ports,
            "stack/A",
            "B",
            &a.physical_id,
            &on("dev", &[("v", "2")]),
            4096,
            2,
        )
        .await
        .unwrap();
        assert_ne!(a.physical_id, b.physical_id);
        // A later resource fails: the rollback sends the old properties to the new id.
        let back = update(
            &ports,
            "stack/A",
            "B",
            &b.physical_id,
            &on("prod", &[("v", "1")]),
            4096,
            3,
        )
        .await
        .unwrap();
        assert_eq!(back.physical_id, a.physical_id);
        // Cleanup deletes the new id: only its own variables go.
        delete(&ports, "stack/A", "B", &b.physical_id)
            .await
            .unwrap();
        assert_eq!(vars(&world, "prod").unwrap()["v"], "1");
        assert_eq!(
            vars(&world, "dev").map(|v| v.is_empty()),
            None,
            "dev was created by B: deleted"
        );
        // The final Delete of the old binding deletes the stage it created.
        let done = delete(&ports, "stack/A", "B", &a.physical_id)
            .await
            .unwrap();
        assert_eq!(done.stages_deleted, 1);
        assert_eq!(vars(&world, "prod"), None);
    }

    #[tokio::test]
    async fn a_stage_that_vanishes_mid_delete_makes_the_delete_succeed() {
        let world = World::new();
        let ports = world.ports();
        let a = create(&ports, "stack/A", "B", &spec(&[("v", "1")]), 4096, 1)
            .await
            .unwrap();
        world.before(crate::ports::op::UPDATE_STAGE, |s| s.stages.clear());
        let done = delete(&ports, "stack/A", "B", &a.physical_id)
            .await
            .unwrap();
        assert_eq!(done.records_released, 1);
        assert!(ports.registry.all().await.unwrap().is_empty());
    }
}

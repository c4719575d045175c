//! The `Custom::StageBinding` lifecycle: create, update (in place or by replacement) and delete,
//! over the ports. The CloudFormation protocol around it lives in [`crate::cfn`].
//!
//! Order of work on create and update: resolve every source and validate every value, read
//! the stage, claim the variables in the registry (atomically, failing on another owner), then
//! write the stage in one call. A failure before the claim writes nothing; a failure after it
//! leaves registry items that the following Delete (after a failed Create) or rollback Update
//! cleans up.

use std::collections::BTreeMap;

use crate::domain::{
    stage_of_physical_id, validate_variable_count, validate_variable_value, BindingSpec, Owner,
    StageRef, ValidationError,
};
use crate::plan::{self, Release};
use crate::ports::{AwsError, Record, RegistryError};
use crate::resolve::{ResolveError, Resolver};
use crate::wait::{self, HealthWait, WaitError};
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
    NotServing(#[from] WaitError),
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

/// Create the binding. `data_limit` is the room left for `Data` in the response; `wait` says
/// how long a switch to a load balancer without a healthy target may wait ([`crate::wait`]).
pub async fn create(
    ports: &Ports,
    stack_id: &str,
    logical_id: &str,
    spec: &BindingSpec,
    data_limit: usize,
    now_ms: i64,
    wait: &HealthWait,
) -> Result<Applied, BindingError> {
    let owner = owner_of(stack_id, logical_id, spec);
    apply(ports, &owner, spec, &[], data_limit, now_ms, wait).await
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
    wait: &HealthWait,
) -> Result<Applied, BindingError> {
    let owner = owner_of(stack_id, logical_id, spec);
    let prior: Vec<Record> = if owner.physical_id == old_physical_id {
        owned(ports, &owner.key(), &owner.physical_id).await?
    } else {
        Vec::new()
    };
    apply(ports, &owner, spec, &prior, data_limit, now_ms, wait).await
}

async fn apply(
    ports: &Ports,
    owner: &Owner,
    spec: &BindingSpec,
    prior: &[Record],
    data_limit: usize,
    now_ms: i64,
    health: &HealthWait,
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
        // Switch only to load balancers that serve, before claiming anything.
        wait::until_serving(
            ports,
            &mut resolver,
            &live.variables,
            &patch.set,
            &resolved,
            health,
        )
        .await?;
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

    // 4. Write the stage in one call.
    let change = match patch {
        None => {
            stages
                .create(stage, &wanted)
                .await
                .map_err(stage_err(stage))?;
            Change::CreatedStage
        }
        Some(patch) if patch.is_empty() => Change::Unchanged,
        Some(patch) => {
            stages
                .update(stage, &patch)
                .await
                .map_err(stage_err(stage))?;
            Change::Updated
        }
    };
    Ok(Applied {
        physical_id: owner.physical_id.clone(),
        data,
        change,
    })
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
            done.variables_removed += patch.remove.len();
            stages
                .update(&stage, &patch)
                .await
                .map_err(stage_err(&stage))?;
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
                stages.delete(&stage).await.map_err(stage_err(&stage))?;
                done.stages_deleted += 1;
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
        let applied = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("v", "one")]),
            4096,
            1,
            &HealthWait::off(),
        )
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
        create(
            &ports,
            "stack/A",
            "First",
            &spec(&[("v", "one")]),
            4096,
            1,
            &HealthWait::off(),
        )
        .await
        .unwrap();
        let err = create(
            &ports,
            "stack/B",
            "Second",
            &spec(&[("v", "two"), ("w", "x")]),
            4096,
            2,
            &HealthWait::off(),
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
            &HealthWait::off(),
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
            &HealthWait::off(),
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
            &HealthWait::off(),
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
        let a = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("v", "1")]),
            4096,
            1,
            &HealthWait::off(),
        )
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
        let err = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("v", "1")]),
            4096,
            1,
            &HealthWait::off(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BindingError::Stage { ref source, .. } if source.kind == crate::ports::ErrorKind::AccessDenied),
            "{err}"
        );
    }
}

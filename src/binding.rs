//! The `Custom::StageBinding` lifecycle: create, update (in place or by replacement) and delete,
//! over the ports. The CloudFormation protocol around it lives in [`crate::cfn`].
//!
//! Order of work on create and update: resolve every source and validate every value, read
//! the stage, claim the variables in the registry (atomically, failing on another owner), then
//! write the stage in one call. A failure before the claim writes nothing; a failure of the
//! write releases what the call newly claimed, so a failed call leaves nothing of itself.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::rights::{self, Denied};
use crate::domain::{
    stage_of_physical_id, validate_variable_count, validate_variable_value, BindingSpec, Owner,
    StageRef, ValidationError,
};
use crate::plan::{self, Release};
use crate::ports::{AwsError, ClaimTerms, ErrorKind, Record, RegistryError, StagePatch, Stages};
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
    /// The records claimed.
    pub records: Vec<Record>,
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
    #[error("not authorized: {0}")]
    Unauthorized(#[from] Denied),
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

/// Whether the bindings of `stack_id` may touch the API of `stage`, under the ports' rule
/// ([`crate::domain::rights`]). An API that does not exist passes: the stage calls then fail
/// as API Gateway answers.
pub async fn authorize(
    ports: &Ports,
    stack_id: &str,
    stage: &StageRef,
) -> Result<(), BindingError> {
    if ports.authorization == rights::Authorization::Open {
        return Ok(());
    }
    let tags = ports
        .stages(stage.kind)
        .api_tags(stage.kind, &stage.api_id)
        .await
        .map_err(stage_err(stage))?;
    let Some(tags) = tags else {
        return Ok(());
    };
    let api = match stage.kind {
        crate::domain::ApiKind::Rest => format!("REST API {}", stage.api_id),
        crate::domain::ApiKind::Http => format!("HTTP API {}", stage.api_id),
    };
    rights::may_touch(ports.authorization, stack_id, &api, &tags)?;
    Ok(())
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
    let applied = apply(ports, &owner, spec, &[], data_limit, now_ms, wait).await?;
    // CloudFormation may have given up on this Create while it ran (a sibling failed, or the
    // answer is too late): its Delete, with an id CloudFormation made up, may have come and
    // gone before this call's writes. Undo them; nobody waits for this answer any more.
    if let Some(at) = ports.registry.cancelled(&owner.key()).await? {
        if at > now_ms {
            tracing::warn!(owner = %owner, "the Create was cancelled while it ran: undoing it");
            // What this call wrote, whether or not that Delete already released the records.
            remove(ports, &applied.records).await?;
            return Err(RegistryError::Cancelled {
                owner_key: owner.key(),
            }
            .into());
        }
    }
    Ok(applied)
}

/// Update the binding. A change of API or stage is a replacement: the new binding is created
/// under a new physical id and CloudFormation deletes the old one afterwards.
#[allow(clippy::too_many_arguments)]
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
    // In place, the records are this id's own. A replacement gets a new id with no records yet,
    // except when it is the rollback of a replacement: CloudFormation then sends the old
    // properties to the new id, which names the old binding again, records and all (including
    // whether it created its stage).
    let prior = owned(ports, &owner.key(), &owner.physical_id).await?;
    if owner.physical_id != old_physical_id {
        tracing::info!(from = old_physical_id, to = %owner.physical_id, known = prior.len(), "replacement");
    }
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

    // 2. The binding's right to the API, from the API's tags as they are now.
    authorize(ports, &owner.stack_id, stage).await?;

    // 3. Read the stage.
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

    // 4. Claim the variables.
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
            // The version a newly claimed item starts from.
            version: now_ms.max(0) as u64,
        })
        .collect();
    if let Err(e) = claim(ports, owner, &records, now_ms).await {
        // A claim of more than one transaction (100 variables) may have partly landed: release
        // what it claimed anew (nothing was written to the stage).
        if records.len() > MAX_ONE_TRANSACTION {
            let new: Vec<Record> = records
                .iter()
                .filter(|r| !prior.iter().any(|p| p.variable == r.variable))
                .cloned()
                .collect();
            if let Err(e) = ports.registry.release(&new).await {
                tracing::warn!(error = %e, "could not release a partly landed claim");
            }
        }
        return Err(e);
    }

    // 5. Write the stage in one call. A failure leaves nothing of this call: what it newly
    // claimed is released and what it wrote is undone (no Delete comes for the id of a failed
    // replacement).
    let change = match write(stages, stage, patch, &wanted, &releases).await {
        Ok(change) => change,
        Err(e) => {
            undo(ports, &records, prior).await;
            return Err(stage_err(stage)(e));
        }
    };
    // 6. Forget the variables let go of, now that the stage no longer holds them.
    if !released.is_empty() {
        ports.registry.release(&released).await?;
    }
    Ok(Applied {
        physical_id: owner.physical_id.clone(),
        data,
        change,
        records,
    })
}

/// The most variables one claim transaction holds (DynamoDB's 100 actions, one of them the
/// cancellation check).
const MAX_ONE_TRANSACTION: usize = 99;

/// Attempts at a claim that concurrent transactions keep cancelling.
const CLAIM_ATTEMPTS: u32 = 4;

/// Claim the records' variables. Another owner's claim fails the call with a Reason naming it,
/// unless that owner is this resource under a logical id that left its stack's template (a
/// rename: CloudFormation creates the new logical id during the update and deletes the old one
/// only in cleanup). Transient transaction conflicts are tried again.
async fn claim(
    ports: &Ports,
    owner: &Owner,
    records: &[Record],
    started_ms: i64,
) -> Result<(), BindingError> {
    let mut terms = ClaimTerms {
        started_ms,
        takeover: None,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ports.registry.claim(records, &terms).await {
            Ok(()) => return Ok(()),
            Err(RegistryError::Owned {
                variable,
                stage,
                owner: holder,
            }) => {
                if terms.takeover.is_none() && renamed(ports, owner, &holder).await? {
                    tracing::info!(from = %holder, to = %owner, "taking over the variables of a renamed binding");
                    terms.takeover = Some(holder.key());
                    continue;
                }
                return Err(RegistryError::Owned {
                    variable,
                    stage,
                    owner: holder,
                }
                .into());
            }
            Err(RegistryError::Aws(e)) if e.is(ErrorKind::Conflict) && attempt < CLAIM_ATTEMPTS => {
                let wait = Duration::from_millis(fastrand::u64(50..200) * u64::from(attempt));
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "claim conflicted with a concurrent transaction: trying again"
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `holder` is `owner`'s resource under a former logical id: same stack, and that
/// logical id is no longer in the stack's template.
async fn renamed(ports: &Ports, owner: &Owner, holder: &Owner) -> Result<bool, BindingError> {
    if holder.stack_id != owner.stack_id || holder.logical_id == owner.logical_id {
        return Ok(false);
    }
    let resources = ports
        .outputs
        .template_resources(&owner.stack_id)
        .await
        .map_err(|e| BindingError::Registry(e.into()))?;
    Ok(resources.is_some_and(|r| !r.contains(&holder.logical_id)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{owner_key, ApiKind, Source};
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

        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
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
            delete(&ports, "stack/A", "B", &a.physical_id, None)
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
        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
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
        let b = create(
            &ports,
            "stack/A",
            "B",
            &spec(&[("b", "2")]),
            4096,
            1,
            &HealthWait::off(),
        )
        .await;
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
        let a = create(
            &ports,
            "stack/A",
            "B",
            &on("prod", &[("v", "1")]),
            4096,
            1,
            &HealthWait::off(),
        )
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
            &HealthWait::off(),
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
            &HealthWait::off(),
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
        let a = create(
            &ports,
            "stack/A",
            "B",
            &on("prod", &[("v", "1")]),
            4096,
            1,
            &HealthWait::off(),
        )
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
            &HealthWait::off(),
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
            &HealthWait::off(),
        )
        .await
        .unwrap();
        assert_eq!(back.physical_id, a.physical_id);
        // Cleanup deletes the new id: only its own variables go.
        delete(&ports, "stack/A", "B", &b.physical_id, None)
            .await
            .unwrap();
        assert_eq!(vars(&world, "prod").unwrap()["v"], "1");
        assert_eq!(
            vars(&world, "dev").map(|v| v.is_empty()),
            None,
            "dev was created by B: deleted"
        );
        // The final Delete of the old binding deletes the stage it created.
        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        assert_eq!(done.stages_deleted, 1);
        assert_eq!(vars(&world, "prod"), None);
    }

    #[tokio::test]
    async fn a_stage_that_vanishes_mid_delete_makes_the_delete_succeed() {
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
        world.before(crate::ports::op::UPDATE_STAGE, |s| s.stages.clear());
        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        assert_eq!(done.records_released, 1);
        assert!(ports.registry.all().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_create_cancelled_before_its_claim_writes_nothing() {
        let world = World::new();
        let ports = world.ports();
        // The Delete with CloudFormation's made-up id runs while the Create resolves.
        world.before(crate::ports::op::CLAIM, move |s| {
            s.cancelled.insert(owner_key("stack/A", "B"), i64::MAX);
        });
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
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert!(ports.registry.all().await.unwrap().is_empty());
        assert_eq!(live(&world), None);
    }

    #[tokio::test]
    async fn a_create_cancelled_after_its_write_undoes_itself() {
        let world = World::new();
        let ports = world.ports();
        let delete_ports = ports.clone();
        // The made-up-id Delete comes and goes while the Create's stage write is under way: it
        // records the cancellation and releases the claim, but finds no variable to remove yet.
        let started = crate::now_ms();
        let s = spec(&[("v", "1")]);
        let no_wait = HealthWait::off();
        let create = create(&ports, "stack/A", "B", &s, 4096, started, &no_wait);
        world.before(crate::ports::op::CANCELLED, move |s| {
            s.cancelled.insert(owner_key("stack/A", "B"), started + 1);
            s.registry.clear();
        });
        let err = create.await.unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert!(delete_ports.registry.all().await.unwrap().is_empty());
        assert_eq!(live(&world), None, "the stage it created is gone too");
    }

    #[tokio::test]
    async fn the_made_up_id_delete_of_a_finished_create_removes_it_and_frees_its_variables() {
        let world = World::new();
        let ports = world.ports();
        let s = spec(&[("v", "1")]);
        create(&ports, "stack/A", "B", &s, 4096, 1, &HealthWait::off())
            .await
            .unwrap();
        // The answer never reached CloudFormation: it deletes with an id of its own.
        let done = delete(&ports, "stack/A", "B", "A-B-1XYZ", Some(&s))
            .await
            .unwrap();
        assert_eq!((done.records_released, done.stages_deleted), (1, 1));
        // The same logical id in a re-created stack of the same name claims at once.
        create(
            &ports,
            "stack/A2",
            "B",
            &s,
            4096,
            crate::now_ms() + 1,
            &HealthWait::off(),
        )
        .await
        .unwrap();
        assert_eq!(live(&world).unwrap()["v"], "1");
        // A later Create of the same resource in the same stack is not held by the marker.
        delete(&ports, "stack/A2", "B", &s.physical_id("B"), None)
            .await
            .unwrap();
        create(
            &ports,
            "stack/A",
            "B",
            &s,
            4096,
            crate::now_ms() + 10,
            &HealthWait::off(),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_renamed_logical_id_takes_over_and_the_old_ids_delete_leaves_it_alone() {
        let world = World::new();
        let ports = world.ports();
        let s = spec(&[("v", "1")]);
        let old = create(&ports, "stack/A", "Old", &s, 4096, 1, &HealthWait::off())
            .await
            .unwrap();
        // Both still in the template: the second is refused, naming the first.
        world.state().templates.insert(
            "stack/A".into(),
            ["Old".to_string(), "New".to_string()].into(),
        );
        let err = create(&ports, "stack/A", "New", &s, 4096, 2, &HealthWait::off())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("owned by Old in stack stack/A"),
            "{err}"
        );
        // The update renamed Old to New.
        world
            .state()
            .templates
            .insert("stack/A".into(), ["New".to_string()].into());
        create(&ports, "stack/A", "New", &s, 4096, 3, &HealthWait::off())
            .await
            .unwrap();
        let done = delete(&ports, "stack/A", "Old", &old.physical_id, None)
            .await
            .unwrap();
        assert_eq!(done, Deleted::default());
        assert_eq!(live(&world).unwrap()["v"], "1");
        assert_eq!(
            ports.registry.all().await.unwrap()[0].owner.logical_id,
            "New"
        );
    }

    #[tokio::test]
    async fn transient_transaction_conflicts_are_tried_again() {
        let world = World::new();
        let ports = world.ports();
        world.fail(
            crate::ports::op::CLAIM,
            crate::ports::ErrorKind::Conflict,
            2,
        );
        create(
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
        assert_eq!(world.state().count(crate::ports::op::CLAIM), 3);
    }

    #[tokio::test]
    async fn a_variable_released_and_claimed_again_never_reuses_a_version() {
        let world = World::new();
        let ports = world.ports();
        let s = spec(&[("v", "1")]);
        let a = create(&ports, "stack/A", "B", &s, 4096, 1_000, &HealthWait::off())
            .await
            .unwrap();
        let first = ports.registry.all().await.unwrap()[0].clone();
        delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        create(&ports, "stack/A", "B", &s, 4096, 2_000, &HealthWait::off())
            .await
            .unwrap();
        let again = ports.registry.all().await.unwrap()[0].clone();
        assert!(
            again.version > first.version,
            "{} then {}",
            first.version,
            again.version
        );
    }
}

//! The read, claim and write of a create or update (see the module above for the order).

use std::collections::BTreeMap;
use std::future::Future;

use super::claim::claim;
use super::remove::owned;
use super::{authorize, stage_err, Applied, BindingError, Change, Request, INVOKE_URL};
use crate::domain::StageRef;
use crate::domain::{validate_variable_count, validate_variable_value, BindingSpec, Owner};
use crate::plan::{self, Release};
use crate::ports::{AwsError, ErrorKind, LiveStage, Record, StagePatch, Stages};
use crate::resolve::{Resolved, Resolver};
use crate::wait;
use crate::Ports;

/// What the read phase found.
struct Read<'p> {
    resolver: Resolver<'p>,
    resolved: BTreeMap<String, Resolved>,
    live: Option<LiveStage>,
    prior: Vec<Record>,
}

/// Create (`replaces` is `None`) or update the binding of `request`.
pub(super) async fn apply(
    ports: &Ports,
    request: &Request<'_>,
    replaces: Option<&str>,
    genuine: impl Future<Output = Result<(), String>>,
) -> Result<Applied, BindingError> {
    let owner = request.owner();
    let spec = &settled(request.spec, &ports.region);
    let stage = &spec.stage;
    let Read {
        mut resolver,
        resolved,
        live,
        prior,
    } = read(ports, &owner, spec, replaces, genuine).await?;
    let data = answer_data(ports, spec, &resolved, request.data_limit)?;
    let wanted = data_without_url(&data);
    let (released, releases) = let_go(&prior, spec);
    let patch = live
        .as_ref()
        .map(|l| plan::patch(&l.variables, &wanted, &releases));
    if let (Some(live), Some(patch)) = (&live, &patch) {
        validate_variable_count(stage, plan::count_after(&live.variables, patch))?;
    }
    // Switch only to targets that serve, before claiming anything. On a new stage nothing
    // serves through a variable yet, but a VPC link that cannot serve is refused all the same.
    let none = BTreeMap::new();
    let (vars, changes) = match (&live, &patch) {
        (Some(live), Some(patch)) => (&live.variables, &patch.set),
        _ => (&none, &wanted),
    };
    let wait = &request.wait;
    wait::until_serving(ports, &mut resolver, vars, changes, &resolved, wait).await?;
    let created_stage = live.is_none() || prior.iter().any(|r| r.created_stage);
    let records = records(&owner, spec, &resolved, created_stage, request.now_ms);
    claim(ports, &owner, &records, &prior, request.now_ms).await?;
    // A failed write leaves nothing of this call: what it newly claimed is released and what it
    // wrote is undone (no Delete comes for the id of a failed replacement).
    let written = write(ports.stages(stage.kind), stage, patch, &wanted, &releases).await;
    let change = written.map_err(stage_err(stage));
    if change.is_err() {
        undo(ports, &records, &prior).await;
    }
    let change = change?;
    // Forget the variables let go of, now that the stage no longer holds them.
    if !released.is_empty() {
        ports.registry.release(&released).await?;
    }
    Ok(Applied {
        physical_id: owner.physical_id.clone(),
        owner,
        data,
        change,
        records,
    })
}

/// The records held before of variables the spec no longer names, and their releases.
fn let_go(prior: &[Record], spec: &BindingSpec) -> (Vec<Record>, Vec<Release>) {
    let released: Vec<Record> = prior
        .iter()
        .filter(|r| !spec.variables.contains_key(&r.variable))
        .cloned()
        .collect();
    let releases = released.iter().map(release_of).collect();
    (released, releases)
}

/// The spec with a region that is the hub's own as no region: the registry keys such a source
/// as local.
fn settled(spec: &BindingSpec, region: &str) -> BindingSpec {
    BindingSpec {
        variables: spec
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().settled(region)))
            .collect(),
        ..spec.clone()
    }
}

/// Everything the binding reads before it writes, at once: the caller's check, the sources, the
/// API's tags, the stage and the records already held. Failures come out in that order.
async fn read<'p>(
    ports: &'p Ports,
    owner: &Owner,
    spec: &BindingSpec,
    replaces: Option<&str>,
    genuine: impl Future<Output = Result<(), String>>,
) -> Result<Read<'p>, BindingError> {
    let stage = &spec.stage;
    let mut resolver = Resolver::new(ports);
    let (genuine, resolved, authorized, live, prior) = tokio::join!(
        genuine,
        resolve_all(&mut resolver, spec),
        authorize(ports, &owner.stack_id, stage),
        ports.stages(stage.kind).get(stage),
        held(ports, owner, replaces),
    );
    genuine.map_err(BindingError::Refused)?;
    let resolved = resolved?;
    authorized?;
    let live = live.map_err(stage_err(stage))?;
    if live.is_none() && !spec.create_stage {
        return Err(BindingError::StageMissing(stage.clone()));
    }
    Ok(Read {
        resolver,
        resolved,
        live,
        prior: prior?,
    })
}

/// Every source resolved and its value validated; all failures are named together.
async fn resolve_all(
    resolver: &mut Resolver<'_>,
    spec: &BindingSpec,
) -> Result<BTreeMap<String, Resolved>, BindingError> {
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
    Ok(resolved)
}

/// The records an update starts from. In place, they are this id's own. A replacement gets a
/// new id with no records yet, except when it is the rollback of a replacement: CloudFormation
/// then sends the old properties to the new id, which names the old binding again, records and
/// all (including whether it created its stage).
async fn held(
    ports: &Ports,
    owner: &Owner,
    replaces: Option<&str>,
) -> Result<Vec<Record>, BindingError> {
    let Some(old_physical_id) = replaces else {
        return Ok(Vec::new());
    };
    let prior = owned(ports, &owner.key(), &owner.physical_id).await?;
    if owner.physical_id != old_physical_id {
        tracing::info!(from = old_physical_id, to = %owner.physical_id, known = prior.len(), "replacement");
    }
    Ok(prior)
}

/// The `Fn::GetAtt` attributes: each variable's value and `InvokeUrl`, within the room left in
/// the response.
fn answer_data(
    ports: &Ports,
    spec: &BindingSpec,
    resolved: &BTreeMap<String, Resolved>,
    limit: usize,
) -> Result<BTreeMap<String, String>, BindingError> {
    let mut data: BTreeMap<String, String> = resolved
        .iter()
        .map(|(k, r)| (k.clone(), r.value.clone()))
        .collect();
    data.insert(INVOKE_URL.into(), spec.stage.invoke_url(&ports.region));
    let size = serde_json::to_vec(&data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limit {
        return Err(BindingError::ResponseTooLarge { size, limit });
    }
    Ok(data)
}

/// The records a claim writes.
fn records(
    owner: &Owner,
    spec: &BindingSpec,
    resolved: &BTreeMap<String, Resolved>,
    created_stage: bool,
    now_ms: i64,
) -> Vec<Record> {
    resolved
        .iter()
        .map(|(name, r)| Record {
            stage: spec.stage.clone(),
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
        .collect()
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

pub(super) fn release_of(r: &Record) -> Release {
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

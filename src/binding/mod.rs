//! The `Custom::StageBinding` lifecycle: create, update (in place or by replacement) and delete,
//! over the ports. The CloudFormation protocol around it lives in [`crate::cfn`].
//!
//! Order of work on create and update, three round trips in sequence:
//! 1. read, all at once: the caller's check that the request is genuine, every source, the API's
//!    tags, the stage and (on update) the records held; then validate every value and ask the
//!    switch rule ([`crate::wait`]);
//! 2. claim the variables in the registry (atomically, failing on another owner);
//! 3. write the stage in one call.
//!
//! A failure before the claim writes nothing; a failure of the write releases what the call
//! newly claimed, so a failed call leaves nothing of itself.
//!
//! # Layout
//! - `apply`: the read, claim and write of a create or update.
//! - `claim`: the registry claim, with takeover of a renamed binding and retries of conflicts.
//! - `remove`: delete, and the removal of released records' variables and stages.

mod apply;
mod claim;
mod remove;

pub use remove::{delete, delete_stage_left_empty, remove, Deleted};

use std::collections::BTreeMap;
use std::future::Future;

use crate::domain::rights::{self, Denied};
use crate::domain::{BindingSpec, Owner, StageRef, ValidationError};
use crate::ports::{AwsError, Record, RegistryError};
use crate::resolve::ResolveError;
use crate::wait::{HealthWait, WaitError};
use crate::Ports;

/// `Fn::GetAtt` name of the stage URL.
pub const INVOKE_URL: &str = "InvokeUrl";

/// What a successful create or update answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub physical_id: String,
    /// Whose binding it is.
    pub owner: Owner,
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
    /// The caller's check of the request refused it; nothing was written.
    #[error("{0}")]
    Refused(String),
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
        source: Box<AwsError>,
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
        source: Box::new(source),
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

/// One create or update: whose binding, what it binds, and its limits.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub stack_id: &'a str,
    pub logical_id: &'a str,
    pub spec: &'a BindingSpec,
    /// The room left for `Data` in the response.
    pub data_limit: usize,
    /// When the request started (the claim's start and the records' `written_at`).
    pub now_ms: i64,
    /// How long a switch to a load balancer without a healthy target may wait.
    pub wait: HealthWait,
}

impl Request<'_> {
    fn owner(&self) -> Owner {
        Owner {
            stack_id: self.stack_id.to_string(),
            logical_id: self.logical_id.to_string(),
            physical_id: self.spec.physical_id(self.logical_id),
        }
    }
}

#[cfg(test)]
impl<'a> Request<'a> {
    /// A request of these ids started at `now_ms`, with 4 KB of room for Data and no health wait.
    pub fn test(
        stack_id: &'a str,
        logical_id: &'a str,
        spec: &'a BindingSpec,
        now_ms: i64,
    ) -> Self {
        Request {
            stack_id,
            logical_id,
            spec,
            data_limit: 4096,
            now_ms,
            wait: HealthWait::off(),
        }
    }
}

/// The check of a caller that acts on its own authority (the operator's CLI, tests): none.
pub fn trusted() -> std::future::Ready<Result<(), String>> {
    std::future::ready(Ok(()))
}

/// Create the binding. `genuine` is the caller's check that the request is genuine; it runs
/// beside the reads, and nothing is claimed or written unless it passes.
pub async fn create(
    ports: &Ports,
    request: &Request<'_>,
    genuine: impl Future<Output = Result<(), String>>,
) -> Result<Applied, BindingError> {
    apply::apply(ports, request, None, genuine).await
}

/// Update the binding. A change of API or stage is a replacement: the new binding is created
/// under a new physical id and CloudFormation deletes the old one afterwards.
pub async fn update(
    ports: &Ports,
    request: &Request<'_>,
    old_physical_id: &str,
    genuine: impl Future<Output = Result<(), String>>,
) -> Result<Applied, BindingError> {
    apply::apply(ports, request, Some(old_physical_id), genuine).await
}

/// After a Create answered: CloudFormation may have given up on it while it ran (a sibling
/// failed, or the answer came too late), and its Delete, with an id CloudFormation made up,
/// may have come and gone before this call's writes. Undo them; nobody waits for that Create.
/// `since_ms` is when the Create started. Whether it was undone.
pub async fn undo_if_cancelled(
    ports: &Ports,
    applied: &Applied,
    since_ms: i64,
) -> Result<bool, BindingError> {
    let owner = &applied.owner;
    match ports.registry.cancelled(&owner.key()).await? {
        Some(at) if at > since_ms => {
            tracing::warn!(owner = %owner, "the Create was cancelled while it ran: undoing it");
            // What this call wrote, whether or not that Delete already released the records.
            remove(ports, &applied.records).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod link_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{owner_key, ApiKind, Source};
    use crate::memory::World;
    use crate::ports::{op, ErrorKind};

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

    /// Create the binding `B` of stack `stack/A`, started at `now_ms`.
    async fn create_b(
        ports: &Ports,
        spec: &BindingSpec,
        now_ms: i64,
    ) -> Result<Applied, BindingError> {
        create_as(ports, ("stack/A", "B"), spec, now_ms).await
    }

    /// A world where binding `B` holds `v = 1` and `w = 2` on the stage it created.
    async fn bound_v_and_w() -> (World, Ports, Applied) {
        let (world, ports) = World::with_ports();
        let a = create_b(&ports, &spec(&[("v", "1"), ("w", "2")]), 1)
            .await
            .unwrap();
        (world, ports, a)
    }

    /// Create the binding of this stack and logical id, started at `now_ms`.
    async fn create_as(
        ports: &Ports,
        (stack_id, logical_id): (&str, &str),
        spec: &BindingSpec,
        now_ms: i64,
    ) -> Result<Applied, BindingError> {
        let request = Request::test(stack_id, logical_id, spec, now_ms);
        create(ports, &request, trusted()).await
    }

    /// Update the binding `B` of stack `stack/A` from `old_physical_id`, started at `now_ms`.
    async fn update_b(
        ports: &Ports,
        old_physical_id: &str,
        spec: &BindingSpec,
        now_ms: i64,
    ) -> Result<Applied, BindingError> {
        let request = Request::test("stack/A", "B", spec, now_ms);
        update(ports, &request, old_physical_id, trusted()).await
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
        let (world, ports) = World::with_ports();
        let applied = create_b(&ports, &spec(&[("v", "one")]), 1).await.unwrap();
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
        let (world, ports) = World::with_ports();
        create(
            &ports,
            &Request::test("stack/A", "First", &spec(&[("v", "one")]), 1),
            trusted(),
        )
        .await
        .unwrap();
        let err = create(
            &ports,
            &Request::test("stack/B", "Second", &spec(&[("v", "two"), ("w", "x")]), 2),
            trusted(),
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
        let (world, ports, a) = bound_v_and_w().await;
        update_b(&ports, &a.physical_id, &spec(&[("v", "3")]), 2)
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
        let (world, ports, a) = bound_v_and_w().await;
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
        let (world, ports) = World::with_ports();
        let a = create_b(&ports, &spec(&[("v", "1")]), 1).await.unwrap();
        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        assert_eq!(done.stages_deleted, 1);
        assert_eq!(live(&world), None);
    }

    #[tokio::test]
    async fn a_failed_stage_write_is_reported_with_its_cause() {
        let (world, ports) = World::with_ports();
        world.fail(op::CREATE_STAGE, ErrorKind::AccessDenied, 1);
        let err = create_b(&ports, &spec(&[("v", "1")]), 1).await.unwrap_err();
        assert!(
            matches!(err, BindingError::Stage { ref source, .. } if source.kind == ErrorKind::AccessDenied),
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
        let (world, ports) = World::with_ports();
        // The sibling creates the stage between this binding's read and its create.
        world.before(op::CREATE_STAGE, |s| {
            s.stages.insert(
                StageRef::new(ApiKind::Rest, "api", "prod"),
                BTreeMap::from([("a".to_string(), "1".to_string())]),
            );
        });
        let b = create_b(&ports, &spec(&[("b", "2")]), 1).await;
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
        let (world, ports) = World::with_ports();
        let a = create_b(&ports, &on("prod", &[("v", "1")]), 1)
            .await
            .unwrap();
        let before = ports.registry.all().await.unwrap();
        world.fail(op::CREATE_STAGE, ErrorKind::Other, 1);

        let failed = update_b(&ports, &a.physical_id, &on("next", &[("v", "2")]), 2).await;

        assert!(failed.is_err());
        assert_eq!(
            ports.registry.all().await.unwrap(),
            before,
            "no claim of the failed id remains"
        );
        assert_eq!(vars(&world, "next"), None);
        // The rollback: the old properties, the current (old) id.
        let back = update_b(&ports, &a.physical_id, &on("prod", &[("v", "1")]), 3)
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
        let (world, ports) = World::with_ports();
        let a = create_b(&ports, &on("prod", &[("v", "1")]), 1)
            .await
            .unwrap();
        let b = update_b(&ports, &a.physical_id, &on("dev", &[("v", "2")]), 2)
            .await
            .unwrap();
        assert_ne!(a.physical_id, b.physical_id);
        // A later resource fails: the rollback sends the old properties to the new id.
        let back = update_b(&ports, &b.physical_id, &on("prod", &[("v", "1")]), 3)
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
        let (world, ports) = World::with_ports();
        let a = create_b(&ports, &spec(&[("v", "1")]), 1).await.unwrap();
        world.before(op::UPDATE_STAGE, |s| s.stages.clear());
        let done = delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        assert_eq!(done.records_released, 1);
        assert!(ports.registry.all().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_create_cancelled_before_its_claim_writes_nothing() {
        let (world, ports) = World::with_ports();
        // The Delete with CloudFormation's made-up id runs while the Create resolves.
        world.before(op::CLAIM, move |s| {
            s.cancelled.insert(owner_key("stack/A", "B"), i64::MAX);
        });
        let err = create_b(&ports, &spec(&[("v", "1")]), 1).await.unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert!(ports.registry.all().await.unwrap().is_empty());
        assert_eq!(live(&world), None);
    }

    #[tokio::test]
    async fn a_create_cancelled_after_its_write_undoes_itself() {
        let (world, ports) = World::with_ports();
        let delete_ports = ports.clone();
        // The made-up-id Delete comes and goes while the Create's stage write is under way: it
        // records the cancellation and releases the claim, but finds no variable to remove yet.
        let started = crate::now_ms();
        let s = spec(&[("v", "1")]);
        let no_wait = HealthWait::off();
        let request = Request {
            stack_id: "stack/A",
            logical_id: "B",
            spec: &s,
            data_limit: 4096,
            now_ms: started,
            wait: no_wait,
        };
        world.before(op::CANCELLED, move |s| {
            s.cancelled.insert(owner_key("stack/A", "B"), started + 1);
            s.registry.clear();
        });
        let applied = create(&ports, &request, trusted()).await.unwrap();
        assert!(undo_if_cancelled(&ports, &applied, started).await.unwrap());
        assert!(delete_ports.registry.all().await.unwrap().is_empty());
        assert_eq!(live(&world), None, "the stage it created is gone too");
    }

    #[tokio::test]
    async fn the_made_up_id_delete_of_a_finished_create_removes_it_and_frees_its_variables() {
        let (world, ports) = World::with_ports();
        let s = spec(&[("v", "1")]);
        create_b(&ports, &s, 1).await.unwrap();
        // The answer never reached CloudFormation: it deletes with an id of its own.
        let done = delete(&ports, "stack/A", "B", "A-B-1XYZ", Some(&s))
            .await
            .unwrap();
        assert_eq!((done.records_released, done.stages_deleted), (1, 1));
        // The same logical id in a re-created stack of the same name claims at once.
        create_as(&ports, ("stack/A2", "B"), &s, crate::now_ms() + 1)
            .await
            .unwrap();
        assert_eq!(live(&world).unwrap()["v"], "1");
        // A later Create of the same resource in the same stack is not held by the marker.
        delete(&ports, "stack/A2", "B", &s.physical_id("B"), None)
            .await
            .unwrap();
        create_as(&ports, ("stack/A", "B"), &s, crate::now_ms() + 10)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_renamed_logical_id_takes_over_and_the_old_ids_delete_leaves_it_alone() {
        let (world, ports) = World::with_ports();
        let s = spec(&[("v", "1")]);
        let old = create_as(&ports, ("stack/A", "Old"), &s, 1).await.unwrap();
        // Both still in the template: the second is refused, naming the first.
        world.state().templates.insert(
            "stack/A".into(),
            ["Old".to_string(), "New".to_string()].into(),
        );
        let err = create_as(&ports, ("stack/A", "New"), &s, 2)
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
        create_as(&ports, ("stack/A", "New"), &s, 3).await.unwrap();
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
        let (world, ports) = World::with_ports();
        world.fail(op::CLAIM, ErrorKind::Conflict, 2);
        create_b(&ports, &spec(&[("v", "1")]), 1).await.unwrap();
        assert_eq!(world.state().count(op::CLAIM), 3);
    }

    #[tokio::test]
    async fn a_variable_released_and_claimed_again_never_reuses_a_version() {
        let (_world, ports) = World::with_ports();
        let s = spec(&[("v", "1")]);
        let a = create_as(&ports, ("stack/A", "B"), &s, 1_000)
            .await
            .unwrap();
        let first = ports.registry.all().await.unwrap()[0].clone();
        delete(&ports, "stack/A", "B", &a.physical_id, None)
            .await
            .unwrap();
        create_as(&ports, ("stack/A", "B"), &s, 2_000)
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

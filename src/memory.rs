//! In-memory adapters of every port, beside the AWS ones in [`crate::aws`]: one [`World`] holds
//! stages, stack outputs, ECS services, load balancers and the registry, with the semantics of
//! the AWS adapters (claims conditional on the owner, releases on the physical id, re-sync
//! writes on the version). It counts calls, can make the next calls of an operation fail, and
//! can run a change just before an operation (a concurrent writer, a binding deleted
//! mid-flight), so that flows are tested in microseconds and in orders hard to time against a
//! real service.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{ApiKind, SourceKey, StageRef};
use crate::ports::{
    op, AwsError, ClaimTerms, EcsLoadBalancer, EcsServices, ErrorKind, LbFamily, LiveStage,
    LoadBalancer, LoadBalancers, Record, Registry, RegistryError, StackOutputs, StackResource,
    StagePatch, Stages, SyncUpdate, TargetHealth,
};
use crate::Ports;

type Hook = Box<dyn FnOnce(&mut State) + Send>;

/// Everything a [`World`] holds.
#[derive(Default)]
pub struct State {
    pub stages: BTreeMap<StageRef, BTreeMap<String, String>>,
    pub stacks: BTreeMap<String, BTreeMap<String, String>>,
    /// Each stack's status, by id.
    pub statuses: BTreeMap<String, String>,
    /// The logical ids in each stack's template.
    pub templates: BTreeMap<String, BTreeSet<String>>,
    /// Resources as CloudFormation describes them, by stack id and logical id.
    pub stack_resources: BTreeMap<(String, String), StackResource>,
    /// Each API's tags.
    pub api_tags: BTreeMap<(ApiKind, String), BTreeMap<String, String>>,
    pub services: BTreeMap<(String, String), Vec<EcsLoadBalancer>>,
    pub load_balancers: Vec<LoadBalancer>,
    /// Healthy targets per load balancer ARN.
    pub healthy: HashMap<String, usize>,
    pub registry: BTreeMap<(StageRef, String), Record>,
    /// Cancellation times by owner key.
    pub cancelled: BTreeMap<String, i64>,
    /// The units sent to the work queue, in order.
    pub units: Vec<crate::ports::Unit>,
    /// Every call made, by operation name ([`crate::ports::op`]).
    pub calls: Vec<&'static str>,
    faults: HashMap<&'static str, VecDeque<ErrorKind>>,
    hooks: HashMap<&'static str, VecDeque<Hook>>,
}

impl State {
    /// How many calls of `operation` were made.
    pub fn count(&self, operation: &str) -> usize {
        self.calls.iter().filter(|c| **c == operation).count()
    }

    /// Add an ELBv2 load balancer named `name` with `healthy` healthy targets.
    pub fn add_load_balancer(&mut self, name: &str, healthy: usize) -> LoadBalancer {
        let lb = LoadBalancer {
            family: LbFamily::V2,
            name: name.to_string(),
            arn: Some(format!(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/{name}/1"
            )),
            dns_name: Some(format!("{name}-1.us-east-1.elb.amazonaws.com")),
        };
        self.healthy
            .insert(lb.arn.clone().unwrap_or_default(), healthy);
        self.load_balancers.push(lb.clone());
        lb
    }

    pub fn remove_load_balancer(&mut self, name: &str) {
        self.load_balancers.retain(|lb| lb.name != name);
    }
}

/// An in-memory AWS account.
#[derive(Clone, Default)]
pub struct World {
    state: Arc<Mutex<State>>,
}

fn error(operation: &'static str, kind: ErrorKind) -> AwsError {
    AwsError {
        service: "memory",
        operation,
        kind,
        code: Some(format!("{kind:?}")),
        message: Some(format!("injected {kind:?}")),
        source: None,
    }
}

impl World {
    pub fn new() -> Self {
        World::default()
    }

    /// The state, to arrange a test or to look at its outcome.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ports over this world, in `us-east-1`.
    pub fn ports(&self) -> Ports {
        let me = Arc::new(self.clone());
        Ports {
            rest: me.clone(),
            http: me.clone(),
            outputs: me.clone(),
            ecs: me.clone(),
            elb: me.clone(),
            registry: me.clone(),
            // Every role is trusted here; the rule has tests of its own.
            sources: crate::domain::SourceAccess {
                account: None,
                roles: vec!["*".into()],
            },
            elsewhere: me,
            // The in-process full reconcile; [`World::queue`] fans it out.
            queue: None,
            region: "us-east-1".into(),
            // The flows' own tests; the authorization rule has tests of its own.
            authorization: crate::domain::Authorization::Open,
        }
    }

    /// This world as the full reconcile's work queue.
    pub fn queue(&self) -> Arc<dyn crate::ports::WorkQueue> {
        Arc::new(self.clone())
    }

    /// The next `times` calls of `operation` fail with `kind`.
    pub fn fail(&self, operation: &'static str, kind: ErrorKind, times: usize) {
        let mut s = self.state();
        let q = s.faults.entry(operation).or_default();
        q.extend(std::iter::repeat_n(kind, times));
    }

    /// Run `change` just before the next call of `operation`.
    pub fn before(
        &self,
        operation: &'static str,
        change: impl FnOnce(&mut State) + Send + 'static,
    ) {
        self.state()
            .hooks
            .entry(operation)
            .or_default()
            .push_back(Box::new(change));
    }

    /// Log the call, run a pending hook, and fail if a fault is queued.
    fn call(&self, operation: &'static str) -> Result<MutexGuard<'_, State>, AwsError> {
        let mut s = self.state();
        s.calls.push(operation);
        if let Some(hook) = s.hooks.get_mut(operation).and_then(VecDeque::pop_front) {
            hook(&mut s);
        }
        match s.faults.get_mut(operation).and_then(VecDeque::pop_front) {
            Some(kind) => Err(error(operation, kind)),
            None => Ok(s),
        }
    }
}

#[async_trait]
impl Stages for World {
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError> {
        let s = self.call(op::GET_STAGE)?;
        Ok(s.stages.get(stage).map(|v| LiveStage {
            variables: v.clone(),
        }))
    }

    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut s = self.call(op::CREATE_STAGE)?;
        if s.stages.contains_key(stage) {
            return Err(error(op::CREATE_STAGE, ErrorKind::Conflict));
        }
        s.stages.insert(stage.clone(), variables.clone());
        Ok(())
    }

    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError> {
        let mut s = self.call(op::UPDATE_STAGE)?;
        let vars = s
            .stages
            .get_mut(stage)
            .ok_or_else(|| error(op::UPDATE_STAGE, ErrorKind::NotFound))?;
        for r in &patch.remove {
            vars.remove(r);
        }
        vars.extend(patch.set.clone());
        Ok(())
    }

    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        self.call(op::DELETE_STAGE)?.stages.remove(stage);
        Ok(())
    }

    async fn api_tags(
        &self,
        kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let s = self.call(op::API_TAGS)?;
        Ok(Some(
            s.api_tags
                .get(&(kind, api_id.to_string()))
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn list(
        &self,
        kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        let s = self.call(op::GET_STAGES)?;
        Ok(Some(
            s.stages
                .iter()
                .filter(|(k, _)| k.kind == kind && k.api_id == api_id)
                .map(|(k, v)| {
                    (
                        k.stage.clone(),
                        LiveStage {
                            variables: v.clone(),
                        },
                    )
                })
                .collect(),
        ))
    }
}

#[async_trait]
impl StackOutputs for World {
    async fn outputs(&self, stack: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        Ok(self.call(op::STACK_OUTPUTS)?.stacks.get(stack).cloned())
    }

    async fn stack_status(&self, stack: &str) -> Result<Option<String>, AwsError> {
        Ok(self.call(op::STACK_STATUS)?.statuses.get(stack).cloned())
    }

    async fn template_resources(&self, stack: &str) -> Result<Option<BTreeSet<String>>, AwsError> {
        Ok(self
            .call(op::TEMPLATE_RESOURCES)?
            .templates
            .get(stack)
            .cloned())
    }

    async fn stack_resource(
        &self,
        stack_id: &str,
        logical_id: &str,
    ) -> Result<Option<StackResource>, AwsError> {
        Ok(self
            .call(op::STACK_RESOURCE)?
            .stack_resources
            .get(&(stack_id.to_string(), logical_id.to_string()))
            .cloned())
    }
}

#[async_trait]
impl EcsServices for World {
    async fn load_balancers(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Vec<EcsLoadBalancer>>, AwsError> {
        let s = self.call(op::SERVICE_LOAD_BALANCERS)?;
        Ok(s.services
            .get(&(cluster.to_string(), service.to_string()))
            .cloned())
    }
}

#[async_trait]
impl LoadBalancers for World {
    async fn v2(&self, name_or_arn: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let s = self.call(op::LOAD_BALANCER_V2)?;
        Ok(s.load_balancers
            .iter()
            .find(|lb| {
                lb.family == LbFamily::V2
                    && (lb.name == name_or_arn || lb.arn.as_deref() == Some(name_or_arn))
            })
            .cloned())
    }

    async fn classic(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let s = self.call(op::LOAD_BALANCER_CLASSIC)?;
        Ok(s.load_balancers
            .iter()
            .find(|lb| lb.family == LbFamily::Classic && lb.name == name)
            .cloned())
    }

    async fn target_group_load_balancers(
        &self,
        target_group_arn: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let s = self.call(op::TARGET_GROUP_LOAD_BALANCERS)?;
        // A target group ARN names its load balancer after `targetgroup/`.
        let name = target_group_arn.rsplit('/').nth(1).unwrap_or_default();
        Ok(s.load_balancers
            .iter()
            .find(|lb| lb.name == name)
            .map(|lb| lb.arn.iter().cloned().collect()))
    }

    async fn target_health(&self, lb_arn: &str) -> Result<TargetHealth, AwsError> {
        let s = self.call(op::TARGET_HEALTH)?;
        let healthy = s.healthy.get(lb_arn).copied().unwrap_or(0);
        Ok(TargetHealth {
            healthy,
            total: healthy.max(1),
        })
    }

    async fn all(&self) -> Result<Vec<LoadBalancer>, AwsError> {
        Ok(self.call(op::ALL_LOAD_BALANCERS)?.load_balancers.clone())
    }
}

fn key(r: &Record) -> (StageRef, String) {
    (r.stage.clone(), r.variable.clone())
}

fn owned_error(held: &Record, r: &Record) -> RegistryError {
    RegistryError::Owned {
        variable: r.variable.clone(),
        stage: r.stage.to_string(),
        owner: held.owner.clone(),
    }
}

/// Every account and region is this one world.
#[async_trait]
impl crate::ports::Elsewhere for World {
    async fn at(&self, place: &crate::domain::Place) -> crate::ports::SourcePorts {
        if place.role_arn.is_some() {
            drop(self.call(op::ASSUME_ROLE));
        }
        let me = Arc::new(self.clone());
        crate::ports::SourcePorts {
            outputs: me.clone(),
            ecs: me.clone(),
            elb: me,
        }
    }
}

#[async_trait]
impl Registry for World {
    async fn claim(&self, put: &[Record], terms: &ClaimTerms) -> Result<(), RegistryError> {
        let mut s = self.call(op::CLAIM)?;
        for r in put {
            if let Some(at) = s.cancelled.get(&r.owner.key()) {
                if *at > terms.started_ms {
                    return Err(RegistryError::Cancelled {
                        owner_key: r.owner.key(),
                    });
                }
            }
            if let Some(held) = s.registry.get(&key(r)) {
                let key = held.owner.key();
                if key != r.owner.key() && terms.takeover.as_ref() != Some(&key) {
                    return Err(owned_error(held, r));
                }
            }
        }
        for r in put {
            let old = s.registry.get(&key(r));
            let record = Record {
                version: old.map_or(r.version, |o| o.version) + 1,
                checked_at: old.and_then(|o| o.checked_at),
                last_error: None,
                ..r.clone()
            };
            s.registry.insert(key(r), record);
        }
        Ok(())
    }

    async fn cancel(&self, owner_key: &str, at_ms: i64) -> Result<(), RegistryError> {
        let mut s = self.call(op::CANCEL)?;
        let at = s.cancelled.entry(owner_key.to_string()).or_insert(at_ms);
        *at = (*at).max(at_ms);
        Ok(())
    }

    async fn cancelled(&self, owner_key: &str) -> Result<Option<i64>, RegistryError> {
        Ok(self.call(op::CANCELLED)?.cancelled.get(owner_key).copied())
    }

    async fn release(&self, records: &[Record]) -> Result<usize, RegistryError> {
        let mut s = self.call(op::RELEASE)?;
        let mut removed = 0;
        for r in records {
            if s.registry.get(&key(r)).map(|h| &h.owner.physical_id) == Some(&r.owner.physical_id) {
                s.registry.remove(&key(r));
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn get(&self, stage: &StageRef, variable: &str) -> Result<Option<Record>, RegistryError> {
        let s = self.call(op::GET_RECORD)?;
        Ok(s.registry
            .get(&(stage.clone(), variable.to_string()))
            .cloned())
    }

    async fn by_owner(&self, owner_key: &str) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_OWNER, |r| r.owner.key() == owner_key)
    }

    async fn by_source(&self, source_key: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_SOURCE, |r| r.source.key() == *source_key)
    }

    async fn by_via(&self, via: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_VIA, |r| r.via.as_ref() == Some(via))
    }

    async fn by_stage(&self, stage: &StageRef) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_STAGE, |r| &r.stage == stage)
    }

    async fn by_stack(&self, stack_id: &str) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_STACK, |r| r.owner.stack_id == stack_id)
    }

    async fn all(&self) -> Result<Vec<Record>, RegistryError> {
        self.select(op::ALL_RECORDS, |_| true)
    }

    /// Pages in an order like Scan's: a stage's records together, stages in the order of a
    /// hash of their names, so that the stages of one API are spread over the pages.
    async fn stage_page(
        &self,
        after: Option<&crate::ports::PageKey>,
    ) -> Result<crate::ports::StagePage, RegistryError> {
        let s = self.call(op::STAGE_PAGE)?;
        let scan_key = |stage: &str, variable: &str| {
            let hash = stage.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (hash, stage.to_string(), variable.to_string())
        };
        let mut keys: Vec<_> = s
            .registry
            .keys()
            .map(|(stage, variable)| (scan_key(&stage.to_string(), variable), stage))
            .collect();
        keys.sort();
        let from = after.map(|k| scan_key(&k.pk, &k.sk));
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|(k, _)| from.as_ref().is_none_or(|from| k > from))
            .take(crate::ports::PAGE_KEYS + 1)
            .collect();
        let more = keys.len() > crate::ports::PAGE_KEYS;
        let keys = &keys[..keys.len().min(crate::ports::PAGE_KEYS)];
        let mut page = crate::ports::StagePage::default();
        for (_, stage) in keys {
            if page.stages.last() != Some(*stage) {
                page.stages.push((*stage).clone());
            }
        }
        page.next = more.then(|| {
            let ((_, pk, sk), _) = &keys[keys.len() - 1];
            crate::ports::PageKey {
                pk: pk.clone(),
                sk: sk.clone(),
            }
        });
        Ok(page)
    }

    async fn record_sync(
        &self,
        record: &Record,
        update: &SyncUpdate,
    ) -> Result<bool, RegistryError> {
        let mut s = self.call(op::RECORD_SYNC)?;
        let Some(held) = s.registry.get_mut(&key(record)) else {
            return Ok(false);
        };
        if held.version != record.version {
            return Ok(false);
        }
        held.version += 1;
        held.checked_at = Some(update.at);
        if let Some(v) = &update.value {
            held.value = Some(v.clone());
            held.written_at = Some(update.at);
        }
        if let Some(via) = &update.via {
            held.via = Some(via.clone());
        }
        held.last_error = update.error.clone();
        Ok(true)
    }
}

#[async_trait]
impl crate::ports::WorkQueue for World {
    async fn send(&self, units: &[crate::ports::Unit]) -> Result<(), AwsError> {
        let mut s = self.call(op::SEND_UNITS)?;
        s.units.extend_from_slice(units);
        Ok(())
    }
}

impl World {
    fn select(
        &self,
        operation: &'static str,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Record>, RegistryError> {
        let s = self.call(operation)?;
        Ok(s.registry.values().filter(|r| keep(r)).cloned().collect())
    }
}

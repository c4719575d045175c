//! In-memory adapters of every port, beside the AWS ones in [`crate::aws`]: one [`World`] holds
//! stages, stack outputs, ECS services, load balancers and the registry, with the semantics of
//! the AWS adapters (claims conditional on the owner, releases on the physical id, re-sync
//! writes on the version). It counts calls, can make the next calls of an operation fail, and
//! can run a change just before an operation (a concurrent writer, a binding deleted
//! mid-flight), so that flows are tested in microseconds and in orders hard to time against a
//! real service.
//!
//! The ports are implemented by topic: `stages` (API Gateway stages and API tags), `sources`
//! (stack outputs, ECS services, load balancers), `links` (VPC links) and `registry` (the
//! registry of bindings).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{ApiKind, StageRef};
use crate::ports::{
    op, AwsError, EcsLoadBalancer, ErrorKind, LbFamily, LoadBalancer, Record, StackResource,
};
use crate::Ports;

mod links;
mod registry;
mod sources;
mod stages;

pub use registry::record;

/// A map of variables from `(name, value)` pairs.
pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

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
    /// API Gateway's VPC links, REST and v2.
    pub links: Vec<crate::domain::VpcLink>,
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

    /// A new world and its ports.
    pub fn with_ports() -> (World, Ports) {
        let world = World::new();
        let ports = world.ports();
        (world, ports)
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
            links: me.clone(),
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
impl crate::ports::WorkQueue for World {
    async fn send(&self, units: &[crate::ports::Unit]) -> Result<(), AwsError> {
        let mut s = self.call(op::SEND_UNITS)?;
        s.units.extend_from_slice(units);
        Ok(())
    }
}

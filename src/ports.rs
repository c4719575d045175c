//! Ports: what the domain needs from AWS, in domain terms. Each has one adapter in [`crate::aws`];
//! tests may put fakes of their own behind them.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;

use crate::domain::{ApiKind, Owner, Place, Source, SourceKey, StageRef, VpcLink};

/// Boxed cause of a failed call.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The broad class of a failed AWS call, kept so callers can tell throttling from a missing
/// resource from a permission problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Throttled,
    AccessDenied,
    Conflict,
    /// A write's condition failed (a concurrent writer got there first).
    ConditionFailed,
    /// The request could not be sent or no answer came back (network, timeout).
    Unreachable,
    Other,
}

/// A failed AWS call: which service and operation, its class, the service's error code and
/// message, and the SDK error as the cause.
#[derive(Debug, thiserror::Error)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: Option<String>,
    #[source]
    pub source: Option<BoxError>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} failed", self.service, self.operation)?;
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}"),
            (Some(c), None) => write!(f, ": {c}"),
            (None, Some(m)) => write!(f, ": {m}"),
            (None, None) => match self.kind {
                ErrorKind::Unreachable => write!(f, ": service unreachable or timed out"),
                _ => Ok(()),
            },
        }
    }
}

impl AwsError {
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

/// The variables of a live stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStage {
    pub variables: BTreeMap<String, String>,
}

/// Changes to one stage's variables, sent as one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagePatch {
    /// Variables to set (added or changed).
    pub set: BTreeMap<String, String>,
    /// Variables to remove.
    pub remove: Vec<String>,
}

impl StagePatch {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// API Gateway stages (REST and HTTP APIs).
#[async_trait]
pub trait Stages: Send + Sync {
    /// The stage, or `None` when the stage (or its API) does not exist.
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError>;
    /// Create the stage with these variables.
    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    /// Apply all changes in one call.
    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError>;
    /// Delete the stage; a stage already gone is not an error.
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError>;
    /// The tags of an API, `None` when the API does not exist.
    async fn api_tags(
        &self,
        kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError>;
    /// Every stage of an API in one call, where the API family offers it (`None` otherwise);
    /// an API that does not exist has no stages.
    async fn list(
        &self,
        _kind: ApiKind,
        _api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        Ok(None)
    }
}

/// A resource of a stack, as CloudFormation describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    /// `Custom::StageBinding`, `AWS::CloudFormation::CustomResource`, ...
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `UPDATE_IN_PROGRESS`, `DELETE_IN_PROGRESS`, ...
    pub status: String,
    /// The physical id, when CloudFormation knows one.
    pub physical_id: Option<String>,
}

/// CloudFormation: stack outputs, template resources, and a stack's own resources.
#[async_trait]
pub trait StackOutputs: Send + Sync {
    /// The resource `logical_id` of the stack `stack_id` (a stack ARN or name), `None` when the
    /// stack or the resource does not exist.
    async fn stack_resource(
        &self,
        stack_id: &str,
        logical_id: &str,
    ) -> Result<Option<StackResource>, AwsError>;
    /// Outputs of a live stack, `None` when the stack does not exist (or is deleted).
    async fn outputs(&self, stack: &str) -> Result<Option<BTreeMap<String, String>>, AwsError>;
    /// The logical ids of the resources in a stack's template (during an update, the new
    /// template), `None` when the stack does not exist.
    async fn template_resources(
        &self,
        stack: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, AwsError>;
    /// A stack's status (`DELETE_COMPLETE` for a deleted one asked for by its id), `None` when
    /// CloudFormation knows no such stack.
    async fn stack_status(&self, stack: &str) -> Result<Option<String>, AwsError>;
}

/// A load balancer attachment of an ECS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsLoadBalancer {
    pub target_group_arn: Option<String>,
    pub load_balancer_name: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<u16>,
}

/// ECS services.
#[async_trait]
pub trait EcsServices: Send + Sync {
    /// Load balancers of an active service, `None` when the service does not exist.
    async fn load_balancers(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Vec<EcsLoadBalancer>>, AwsError>;
}

/// ELBv2 or classic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbFamily {
    V2,
    Classic,
}

/// A load balancer as far as stagewire cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub family: LbFamily,
    pub name: String,
    /// ELBv2 only.
    pub arn: Option<String>,
    pub dns_name: Option<String>,
}

/// Target health of an ELBv2 load balancer, over all its target groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetHealth {
    pub healthy: usize,
    pub total: usize,
}

/// Elastic Load Balancing (v2 and classic).
#[async_trait]
pub trait LoadBalancers: Send + Sync {
    /// An ELBv2 load balancer by name or ARN.
    async fn v2(&self, name_or_arn: &str) -> Result<Option<LoadBalancer>, AwsError>;
    /// A classic load balancer by name.
    async fn classic(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError>;
    /// ARNs of the load balancers a target group is attached to, `None` if the group is gone.
    async fn target_group_load_balancers(
        &self,
        target_group_arn: &str,
    ) -> Result<Option<Vec<String>>, AwsError>;
    /// Health of every target behind an ELBv2 load balancer.
    async fn target_health(&self, lb_arn: &str) -> Result<TargetHealth, AwsError>;
    /// Every load balancer of the account and region (both families).
    async fn all(&self) -> Result<Vec<LoadBalancer>, AwsError>;
}

/// API Gateway's VPC links, in the hub's account and region (where its APIs are).
#[async_trait]
pub trait VpcLinks: Send + Sync {
    /// Every REST (v1) VPC link.
    async fn rest_links(&self) -> Result<Vec<VpcLink>, AwsError>;
    /// A REST (v1) VPC link by id, `None` when there is none.
    async fn rest_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError>;
    /// A v2 VPC link by id, `None` when there is none.
    async fn v2_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError>;
}

/// The ports that read sources, at one place (an account and region).
#[derive(Clone)]
pub struct SourcePorts {
    pub outputs: std::sync::Arc<dyn StackOutputs>,
    pub ecs: std::sync::Arc<dyn EcsServices>,
    pub elb: std::sync::Arc<dyn LoadBalancers>,
}

/// Sources in other accounts and regions.
#[async_trait]
pub trait Elsewhere: Send + Sync {
    /// The source ports at `place` (another region, and another account through the role it
    /// names), built once and kept for the life of the process.
    async fn at(&self, place: &Place) -> SourcePorts;
}

/// One stage variable as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stage: StageRef,
    pub variable: String,
    pub owner: Owner,
    pub source: Source,
    /// The value stagewire last wrote (or is writing).
    pub value: Option<String>,
    /// Epoch milliseconds of the last write.
    pub written_at: Option<i64>,
    /// What the value currently points at: its load balancer ([`SourceKey::LoadBalancer`]) or
    /// VPC link ([`SourceKey::VpcLink`]).
    pub via: Option<SourceKey>,
    /// Whether the owner created the stage (and so may delete it).
    pub created_stage: bool,
    pub last_error: Option<String>,
    /// Epoch milliseconds of the last check by the re-sync.
    pub checked_at: Option<i64>,
    /// Optimistic-concurrency counter; bumped by every write.
    pub version: u64,
}

/// What a re-sync learned about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncUpdate {
    /// New value written to the stage, if any.
    pub value: Option<String>,
    pub via: Option<SourceKey>,
    pub error: Option<String>,
    pub at: i64,
}

/// Why the registry refused a write.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The variable is owned by another binding.
    #[error("stage variable {variable} of {stage} is owned by {owner}")]
    Owned {
        variable: String,
        stage: String,
        owner: Owner,
    },
    /// CloudFormation gave up on this owner's Create after the claiming call started.
    #[error("CloudFormation cancelled the Create of {owner_key}")]
    Cancelled { owner_key: String },
    #[error("registry item {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where the next page of [`Registry::stage_page`] starts: the registry's own key of the last
/// item read (for DynamoDB, the `pk` and `sk` of Scan's `LastEvaluatedKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub pk: String,
    pub sk: String,
}

/// Keys read per [`Registry::stage_page`].
pub const PAGE_KEYS: usize = 1000;

/// One page of the registry's keys, as stages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagePage {
    /// The stages of the page's records, each once (a stage's records are read together, but a
    /// stage may end one page and begin the next).
    pub stages: Vec<StageRef>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<PageKey>,
}

/// One unit of the full reconcile's work: an API and the stages of it that hold bindings,
/// all read with one `GetStages`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub kind: ApiKind,
    pub api_id: String,
    pub stages: Vec<String>,
}

impl Unit {
    pub fn stage_refs(&self) -> impl Iterator<Item = StageRef> + '_ {
        self.stages
            .iter()
            .map(|s| StageRef::new(self.kind, &self.api_id, s))
    }
}

/// The queue of the full reconcile's units (SQS), which the workers consume.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Send each unit as one message.
    async fn send(&self, units: &[Unit]) -> Result<(), AwsError>;
}

/// What a claim may do beyond taking free variables and its owner's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimTerms {
    /// Epoch milliseconds when the claiming call started.
    pub started_ms: i64,
    /// The owner key whose variables may be taken over: the same resource under a logical id
    /// that left its stack's template (a rename).
    pub takeover: Option<String>,
}

/// The registry of bindings (a DynamoDB table).
#[async_trait]
pub trait Registry: Send + Sync {
    /// Atomically write `put`, claiming each variable for its owner: fails with
    /// [`RegistryError::Owned`] when another owner holds one (other than `terms.takeover`), and
    /// with [`RegistryError::Cancelled`] when the owner's Creates were cancelled after
    /// `terms.started_ms`. An item claimed anew starts its version at the record's `version`
    /// (the claim's time), so a variable released and claimed again never reuses an old one.
    async fn claim(&self, put: &[Record], terms: &ClaimTerms) -> Result<(), RegistryError>;
    /// Record that CloudFormation gave up on the Creates of `owner_key` at `at_ms` (a Delete
    /// with a physical id CloudFormation made up): claims by calls that started earlier fail.
    async fn cancel(&self, owner_key: &str, at_ms: i64) -> Result<(), RegistryError>;
    /// When the Creates of `owner_key` were last given up on, read consistently.
    async fn cancelled(&self, owner_key: &str) -> Result<Option<i64>, RegistryError>;
    /// Forget records, each only while still held by the same physical resource; answers how
    /// many were removed.
    async fn release(&self, records: &[Record]) -> Result<usize, RegistryError>;
    async fn get(&self, stage: &StageRef, variable: &str) -> Result<Option<Record>, RegistryError>;
    async fn by_owner(&self, owner_key: &str) -> Result<Vec<Record>, RegistryError>;
    /// The records whose source has this key.
    async fn by_source(&self, key: &SourceKey) -> Result<Vec<Record>, RegistryError>;
    /// The records whose value currently comes from this load balancer.
    async fn by_via(&self, via: &SourceKey) -> Result<Vec<Record>, RegistryError>;
    /// Every record of a stage, read consistently.
    async fn by_stage(&self, stage: &StageRef) -> Result<Vec<Record>, RegistryError>;
    /// Every record owned by the bindings of one stack.
    async fn by_stack(&self, stack_id: &str) -> Result<Vec<Record>, RegistryError>;
    async fn all(&self) -> Result<Vec<Record>, RegistryError>;
    /// At most [`PAGE_KEYS`] items' keys after `after`, as the stages of the records among
    /// them. Pages come in the table's own order (Scan's): the records of one stage come
    /// together, the stages of one API need not.
    async fn stage_page(&self, after: Option<&PageKey>) -> Result<StagePage, RegistryError>;
    /// Record a re-sync's outcome if the item still has `record.version`; `Ok(false)` when a
    /// concurrent writer changed (or removed) it first.
    async fn record_sync(
        &self,
        record: &Record,
        update: &SyncUpdate,
    ) -> Result<bool, RegistryError>;
}

/// Names of the port operations: the in-memory adapters count calls by them. (The IAM actions
/// behind them are checked against the requests the AWS adapters make: tests/integration/iam.rs.)
pub mod op {
    pub const GET_STAGE: &str = "GetStage";
    pub const GET_STAGES: &str = "GetStages";
    pub const CREATE_STAGE: &str = "CreateStage";
    pub const UPDATE_STAGE: &str = "UpdateStage";
    pub const DELETE_STAGE: &str = "DeleteStage";
    pub const STACK_OUTPUTS: &str = "StackOutputs";
    pub const TEMPLATE_RESOURCES: &str = "TemplateResources";
    pub const STACK_RESOURCE: &str = "StackResource";
    pub const API_TAGS: &str = "ApiTags";
    pub const STACK_STATUS: &str = "StackStatus";
    pub const SERVICE_LOAD_BALANCERS: &str = "ServiceLoadBalancers";
    pub const LOAD_BALANCER_V2: &str = "LoadBalancerV2";
    pub const LOAD_BALANCER_CLASSIC: &str = "LoadBalancerClassic";
    pub const TARGET_GROUP_LOAD_BALANCERS: &str = "TargetGroupLoadBalancers";
    pub const TARGET_HEALTH: &str = "TargetHealth";
    pub const ALL_LOAD_BALANCERS: &str = "AllLoadBalancers";
    pub const CLAIM: &str = "Claim";
    pub const RELEASE: &str = "Release";
    pub const GET_RECORD: &str = "GetRecord";
    pub const BY_OWNER: &str = "ByOwner";
    pub const BY_SOURCE: &str = "BySource";
    pub const BY_VIA: &str = "ByVia";
    pub const BY_STAGE: &str = "ByStage";
    pub const BY_STACK: &str = "ByStack";
    pub const CANCEL: &str = "Cancel";
    pub const CANCELLED: &str = "Cancelled";
    pub const ALL_RECORDS: &str = "AllRecords";
    pub const RECORD_SYNC: &str = "RecordSync";
    /// Reaching sources through a role in another account.
    pub const ASSUME_ROLE: &str = "AssumeRole";
    pub const STAGE_PAGE: &str = "StagePage";
    pub const SEND_UNITS: &str = "SendUnits";
    pub const REST_VPC_LINKS: &str = "RestVpcLinks";
    pub const REST_VPC_LINK: &str = "RestVpcLink";
    pub const V2_VPC_LINK: &str = "V2VpcLink";
}

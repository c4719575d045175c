//! Local test bench for stagewire.
//!
//! Integration tests, the demo and the benchmarks share these pieces, all running on
//! 127.0.0.1 and driven from tokio:
//!
//! - [`moto`]: a moto server process (the AWS emulator) and an [`aws_config::SdkConfig`]
//!   pointed at it with dummy credentials and bounded retries.
//! - [`local`]: the demo's and the bench's AWS: moto of their own, the registry table, the
//!   fault proxy in front.
//! - [`registry`]: creates the registry DynamoDB table from the definition in `template.yaml`.
//! - [`records`]: registry records as stagewire stores them, to load a registry straight.
//! - [`receiver`]: plays S3 for CloudFormation custom-resource responses and checks each
//!   request the way S3 and CloudFormation would.
//! - [`runtime_api`]: a minimal AWS Lambda Runtime API and a supervisor for function
//!   binaries that poll it.
//! - [`seed`]: the seed scenario's REST API and the events EventBridge delivers.
//! - [`fault_proxy`]: an HTTP proxy between the AWS SDK and moto that counts calls per
//!   service and operation and injects throttling, server errors, resets and delays, or holds
//!   calls at a [`Gate`] until the test opens it; it also plays VPC link states moto lacks
//!   (`PENDING`, `FAILED`), keeps private integrations' `connectionId`, and plays REST stages'
//!   canaries (`canarySettings`), which moto lacks.
//! - [`event_source`]: Lambda's SQS event source mapping over moto's SQS, invoking functions
//!   with batches at a set concurrency and honouring `batchItemFailures`.
//! - [`cfn_event`]: custom-resource requests as CloudFormation sends them.
//! - [`stack_resources`]: CloudFormation's view of those requests' resources, following each
//!   request and its answer, which the fault proxy's `DescribeStackResource` answers from.
//! - [`sequences`]: CloudFormation's sequences of those requests, by name, and their player.
//! - [`stages`]: a REST API stage's variables, as tests and the demo check them.
//! - [`gateway`]: a REST API's deployed stages, public and private integrations, on 127.0.0.1;
//!   a stage's canary serves its share of requests with its variable overrides; [`lbs`]: the
//!   local load balancers behind them, which can answer a share of 500s.
//! - [`alarms`]: CloudWatch metric alarms in moto, and an alarm that fires from a local load
//!   balancer's share of 500s.
//! - [`private`]: an internal network load balancer with its REST VPC link, and a REST API with
//!   a private integration whose link is a stage variable.
//! - [`elb_stack`]: deploys the load-balancer stack of `tests/fixtures/elb-stack.yaml`.
//! - [`examples`]: the example stacks of `examples/` as the README deploys them: the API with
//!   its tags, the ECS template's binding properties.
//! - [`error::error_chain`]: an error and its causes on one line.

#![warn(missing_docs)]

pub mod alarms;
pub mod cfn_event;
pub mod choreography;
pub mod elb_stack;
pub mod error;
pub mod event_source;
pub mod examples;
pub mod fault_proxy;
pub mod gateway;
mod http;
pub mod lbs;
pub mod load;
pub mod local;
pub mod moto;
pub mod private;
pub mod receiver;
pub mod records;
pub mod registry;
pub mod runtime_api;
pub mod seed;
pub mod sequences;
pub mod stack_resources;
pub mod stages;

pub use cfn_event::CfnEvents;
pub use elb_stack::{deploy_elb_stack, ElbStack};
pub use error::{error_chain, DevkitError};
pub use fault_proxy::{Fault, FaultProxy, Gate, Rule};
pub use local::LocalAws;
pub use moto::{sdk_config, MotoServer};
pub use receiver::{Received, ResponseReceiver};
pub use registry::{create_registry_table, create_table_from_template};
pub use runtime_api::{Function, Invocation, LambdaProcess, Outcome, RuntimeApi};

use std::path::PathBuf;

/// The workspace root (the directory holding the root `Cargo.toml`, `template.yaml` and `.venv`).
pub fn workspace_root() -> PathBuf {
    let raw = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    raw.canonicalize().unwrap_or(raw)
}

//! `stage-resync`: re-points stage variables when the load balancers behind them change.
//! Triggered by EventBridge (stack status changes, load balancer API calls, ECS service events,
//! a schedule) or invoked directly with `{"resync": "all"}` / `{"resync": {"stack": "NAME"}}`;
//! with a work queue configured, the full reconcile is sent there as units, and SQS batches of
//! those units are worked.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use stagewire::aws::{pace::Pacer, SqsWorkQueue};
use stagewire::config::{load_sdk_config, Config};
use stagewire::resync::{self, Input};
use stagewire::Ports;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stagewire::config::init_tracing();
    let config = Config::from_env()?;
    let sdk = load_sdk_config().await;
    let mut ports = Ports::aws_paced(&sdk, &config.table, Pacer::apigateway_share(config.workers))?;
    ports.authorization = config.authorization;
    ports.sources = config.sources;
    if let Some(url) = &config.queue {
        ports.queue = Some(Arc::new(SqsWorkQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            url,
        )));
    }
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Input>| async move {
        resync::invoke(ports, event.payload).await
    }))
    .await
}

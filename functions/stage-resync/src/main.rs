//! `stage-resync`: re-points stage variables when the load balancers behind them change.
//! Triggered by EventBridge (stack status changes, load balancer API calls, ECS service events,
//! a schedule) or invoked directly with `{"resync": "all"}` / `{"resync": {"stack": "NAME"}}`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use stagewire::config::{load_sdk_config, Config};
use stagewire::{resync, Ports};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stagewire::config::init_tracing();
    let config = Config::from_env()?;
    let mut ports = Ports::aws(&load_sdk_config().await, &config.table);
    ports.authorization = config.authorization;
    ports.sources = config.sources;
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        resync::handle(ports, event.payload).await
    }))
    .await
}

//! `stage-binding`: the Lambda function behind `Custom::StageBinding`.
//!
//! Start-up never panics on configuration: a missing setting becomes a FAILED answer to every
//! request, so CloudFormation is never left waiting.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use stagewire::cfn::security::ResponseHosts;
use stagewire::cfn::{deadline_instant, Handler};
use stagewire::config::{load_sdk_config, Config};
use stagewire::Ports;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stagewire::config::init_tracing();
    let configured = match Config::from_env() {
        Ok(config) => Ports::aws(&load_sdk_config().await, &config.table)
            .map(|ports| (config, ports))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let handler = match configured {
        Ok((config, mut ports)) => {
            ports.authorization = config.authorization;
            ports.sources = config.sources;
            Handler::new(ports).allowing_response_hosts(config.response_hosts)
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration error: every request will be answered FAILED");
            // Without a region no CloudFormation response bucket is known: only the listed
            // hosts may then be answered (Lambda always sets AWS_REGION).
            let region = stagewire::config::region_from_env().unwrap_or_default();
            let hosts = ResponseHosts::cloudformation(&region)
                .allowing(stagewire::config::response_hosts_from_env());
            Handler::misconfigured(e, hosts)
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline_instant(event.context.deadline);
        handler.handle(event.payload, deadline).await
    }))
    .await
}

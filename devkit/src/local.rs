//! This machine's AWS for the demo and the bench: a moto server of their own, the registry table
//! created in it from `template.yaml`, and a [`FaultProxy`] in front of it for the functions'
//! calls (which counts them, and answers CloudFormation's `DescribeStackResource`).

use aws_config::SdkConfig;

use crate::{create_registry_table, DevkitError, FaultProxy, MotoServer};

/// The environment variable naming the registry table the functions and the CLI use.
pub const TABLE_VAR: &str = "STAGEWIRE_TABLE";

/// A moto server with the registry table, and the proxy in front of it.
#[derive(Debug)]
pub struct LocalAws {
    /// The proxy the functions' calls go through.
    pub proxy: FaultProxy,
    /// Pointed at moto itself: the setup's calls, which the proxy does not count.
    pub sdk: SdkConfig,
    /// The registry table.
    pub table: String,
    /// The moto server (stopped when dropped).
    pub moto: MotoServer,
}

impl LocalAws {
    /// Starts moto, creates the registry table `table` and starts the proxy.
    pub async fn start(table: &str) -> Result<LocalAws, DevkitError> {
        let moto = MotoServer::start().await?;
        let sdk = moto.sdk_config().await;
        create_registry_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await?;
        let proxy = FaultProxy::start(&moto.endpoint()).await?;
        Ok(LocalAws {
            proxy,
            sdk,
            table: table.to_string(),
            moto,
        })
    }

    /// The environment of a function process or the CLI: every AWS call through the proxy,
    /// the registry table named.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = crate::moto::process_env(&self.proxy.endpoint());
        env.push((TABLE_VAR.to_string(), self.table.clone()));
        env
    }
}

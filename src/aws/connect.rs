//! The SDK's HTTP client, connected on first use.
//!
//! Every SDK client checks its HTTP client when it is built, and the default HTTP client does
//! so by building a TLS connector and throwing it away: it loads and parses the system's root
//! certificates once per client (the first time also reading them from disk). The functions
//! build seven clients at start-up, most of which never send a request in a given invocation.
//! [`connect_on_first_use`] keeps the one HTTP client and skips that check: the connector is
//! built when the first request needs it and shared by every client; the root certificates
//! are read from disk on a thread of their own from start-up, beside the rest of it.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

/// `sdk` with its HTTP client wrapped so that building an SDK client builds no connector.
pub fn connect_on_first_use(sdk: SdkConfig) -> SdkConfig {
    let Some(http) = sdk.http_client() else {
        return sdk;
    };
    let early = http.clone();
    std::thread::spawn(move || {
        // The default client's check reads the root certificates into a process-wide cache.
        let _ = early.validate_base_client_config(
            &RuntimeComponentsBuilder::new("stagewire-warm-up"),
            &ConfigBag::base(),
        );
    });
    sdk.into_builder()
        .http_client(SharedHttpClient::new(OnFirstUse(http)))
        .build()
}

#[derive(Debug)]
struct OnFirstUse(SharedHttpClient);

impl HttpClient for OnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

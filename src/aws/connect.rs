//! The SDK's HTTP client: one for every SDK client, checked once.
//!
//! By default each SDK client gets an HTTP client of its own and checks it when it is built,
//! which builds a TLS connector and throws it away: the system's root certificates are parsed
//! once per client (the first time also read from disk), and again when each client sends its
//! first request. The functions build seven clients at start-up, most of which send nothing in
//! a given invocation. [`one_http_client`] gives them one HTTP client, the SDK's default,
//! checked once at start-up (which reads the root certificates into a process-wide cache), and
//! not again per client: its connector is built from that cache by the first request and
//! shared by every client.

use aws_config::SdkConfig;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

/// `sdk` with one HTTP client for every SDK client built from it, checked once here (unless
/// `sdk` brings an HTTP client of its own, which is kept as it is).
pub fn one_http_client(sdk: SdkConfig) -> SdkConfig {
    if sdk.http_client().is_some() {
        return sdk;
    }
    let http = default_https_client();
    // The SDK's own check, once: it builds a connector, reading the root certificates.
    let _ = http.validate_base_client_config(
        &RuntimeComponentsBuilder::new("stagewire"),
        &ConfigBag::base(),
    );
    sdk.into_builder()
        .http_client(SharedHttpClient::new(CheckedOnce(http)))
        .build()
}

/// The client the SDK picks by default (hyper 1 with rustls and aws-lc, proxies from the
/// environment), built once instead of once per SDK client.
fn default_https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .proxy_config(ProxyConfig::from_env());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build()
    })
}

#[derive(Debug)]
struct CheckedOnce(SharedHttpClient);

impl HttpClient for CheckedOnce {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    use aws_config::{BehaviorVersion, Region};

    use super::*;

    /// An HTTP client that counts the SDK's checks of it and is never asked to connect.
    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is sent")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, SeqCst);
            Ok(())
        }
    }

    fn sdk(http: Option<SharedHttpClient>) -> SdkConfig {
        let mut sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"));
        sdk.set_http_client(http);
        sdk.build()
    }

    #[test]
    fn building_a_client_checks_no_connector() {
        let checks = Arc::new(AtomicUsize::new(0));
        let counting = || Some(SharedHttpClient::new(Counting(checks.clone())));
        aws_sdk_sts::Client::new(&sdk(counting()));
        assert_eq!(
            checks.load(SeqCst),
            1,
            "the SDK checks a client's HTTP client"
        );
        let wrapped = SharedHttpClient::new(CheckedOnce(counting().unwrap()));
        aws_sdk_sts::Client::new(&sdk(Some(wrapped)));
        assert_eq!(checks.load(SeqCst), 1, "the wrapped client is not checked");
    }

    #[test]
    fn a_configuration_with_its_own_http_client_keeps_it() {
        let checks = Arc::new(AtomicUsize::new(0));
        let own = SharedHttpClient::new(Counting(checks.clone()));
        let sdk = one_http_client(sdk(Some(own)));
        aws_sdk_sts::Client::new(&sdk);
        assert_eq!(
            checks.load(SeqCst),
            1,
            "its own client, checked as the SDK does"
        );
        assert!(one_http_client(self::sdk(None)).http_client().is_some());
    }
}

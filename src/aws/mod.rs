//! Adapters: one per AWS service, each implementing a port of [`crate::ports`] with the AWS SDK.

mod apigateway;
mod apigatewayv2;
mod cloudformation;
mod connect;
pub mod dynamodb;
mod ecs;
mod elb;
pub mod pace;
mod remote;
mod sqs;
mod vpclink;

use std::error::Error as StdError;
use std::sync::Arc;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use apigateway::RestStages;
pub use apigatewayv2::HttpStages;
pub use cloudformation::CfnStackOutputs;
pub use connect::one_http_client;
pub use dynamodb::DynamoRegistry;
pub use ecs::EcsAdapter;
pub use elb::ElbAdapter;
pub use remote::{Remote, SESSION_NAME};
pub use sqs::SqsWorkQueue;
pub use vpclink::VpcLinkAdapter;

use crate::ports::{AwsError, ErrorKind};

const THROTTLING_CODES: &[&str] = &[
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
];

const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
];

/// A missing resource is an answer (`None`), not an error.
pub(crate) fn found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Classify an SDK error, keeping it as the cause.
pub(crate) fn sdk_error<E>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let mut message = err.message().map(str::to_owned);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let mut kind = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ErrorKind::Unreachable,
        _ => classify(code.as_deref(), status),
    };
    if let Some(cause) = credentials_failure(&err) {
        // The request never left: its credentials (an assumed role's) could not be had.
        kind = ErrorKind::AccessDenied;
        message = Some(cause);
    }
    AwsError {
        service,
        operation,
        kind,
        code,
        message,
        source: Some(Box::new(err)),
    }
}

/// What went wrong when a request failed for want of credentials (an `AssumeRole` that was
/// refused), which the SDK reports as a request it could not build.
fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let mut cause = err.source();
    let mut credentials = None;
    while let Some(e) = cause {
        if let Some(sts) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            let what = match (sts.code(), sts.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => aws_smithy_types::error::display::DisplayErrorContext(sts).to_string(),
            };
            return Some(format!("AssumeRole failed: {what}"));
        }
        if e.downcast_ref::<CredentialsError>().is_some() {
            credentials = Some(e.to_string());
        }
        cause = e.source();
    }
    credentials
}

fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => ErrorKind::Throttled,
        Some(c) if ACCESS_CODES.contains(&c) => ErrorKind::AccessDenied,
        Some("ConditionalCheckFailedException") => ErrorKind::ConditionFailed,
        Some("ConflictException") => ErrorKind::Conflict,
        Some(c) if c.ends_with("NotFoundException") || c.ends_with("NotFound") => {
            ErrorKind::NotFound
        }
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(403) => ErrorKind::AccessDenied,
            Some(404) => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        },
    }
}

/// Every adapter, built once from one SDK configuration.
#[derive(Clone)]
pub struct Adapters {
    pub rest: Arc<RestStages>,
    pub http: Arc<HttpStages>,
    pub outputs: Arc<CfnStackOutputs>,
    pub ecs: Arc<EcsAdapter>,
    pub elb: Arc<ElbAdapter>,
    pub registry: Arc<DynamoRegistry>,
    pub links: Arc<VpcLinkAdapter>,
}

impl Adapters {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self::with_pacer(sdk, table, pace::Pacer::apigateway())
    }

    /// As [`Adapters::new`], with API Gateway calls made at `pacer`'s rate.
    pub fn with_pacer(sdk: &aws_config::SdkConfig, table: &str, pacer: pace::Pacer) -> Self {
        let pacer = Arc::new(pacer);
        // Throttled API Gateway calls are left to the pacer, which slows the whole process
        // down and waits; the SDK still retries transient and server errors.
        let rest = aws_sdk_apigateway::config::Builder::from(sdk)
            .retry_classifier(pace::ThrottlesToPacer)
            .build();
        let http = aws_sdk_apigatewayv2::config::Builder::from(sdk)
            .retry_classifier(pace::ThrottlesToPacer)
            .build();
        let links = Arc::new(VpcLinkAdapter::new(
            aws_sdk_apigateway::Client::from_conf(rest.clone()),
            aws_sdk_apigatewayv2::Client::from_conf(http.clone()),
            pacer.clone(),
        ));
        Adapters {
            links,
            rest: Arc::new(RestStages::new(
                aws_sdk_apigateway::Client::from_conf(rest),
                pacer.clone(),
            )),
            http: Arc::new(HttpStages::new(
                aws_sdk_apigatewayv2::Client::from_conf(http),
                pacer,
            )),
            outputs: Arc::new(CfnStackOutputs::new(aws_sdk_cloudformation::Client::new(
                sdk,
            ))),
            ecs: Arc::new(EcsAdapter::new(aws_sdk_ecs::Client::new(sdk))),
            elb: Arc::new(ElbAdapter::new(
                aws_sdk_elasticloadbalancingv2::Client::new(sdk),
                aws_sdk_elasticloadbalancing::Client::new(sdk),
            )),
            registry: Arc::new(DynamoRegistry::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some("TooManyRequestsException"), Some(429)),
            ErrorKind::Throttled
        );
        assert_eq!(classify(None, Some(429)), ErrorKind::Throttled);
        assert_eq!(
            classify(Some("NotFoundException"), Some(404)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("LoadBalancerNotFound"), Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), Some(403)),
            ErrorKind::AccessDenied
        );
        assert_eq!(classify(None, Some(500)), ErrorKind::Other);
    }
}

//! The HTTP API (API Gateway v2) family of [`GatewayStages`]: a stage needs no deployment to
//! exist, and a patch is merged into the stage's variables.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_apigatewayv2::Client;

use super::apigateway::{sdk_calls, Family, GatewayStages};
use super::pace::Pacer;
use crate::ports::{AwsError, StagePatch};

/// HTTP API stages.
pub type HttpStages = GatewayStages<HttpApi>;

/// The HTTP API family's SDK client.
pub struct HttpApi {
    client: Client,
}

impl HttpStages {
    /// Calls are paced by `pacer` (shared by every API Gateway adapter of the process).
    pub fn new(client: Client, pacer: Arc<Pacer>) -> Self {
        GatewayStages::with(HttpApi { client }, pacer)
    }
}

sdk_calls! {
    family: HttpApi,
    service: "apigatewayv2",
    get_api: get_api / "GetApi",
    api_id: api_id,
    variables: stage_variables / set_stage_variables,
    patch: set_stage_variables,
}

#[async_trait]
impl Family for HttpApi {
    type Patch = HashMap<String, String>;

    /// `UpdateStage` merges the variables it is given into the stage's: a variable is set by
    /// giving its value and removed by giving it the empty string.
    fn patch(patch: &StagePatch) -> HashMap<String, String> {
        let removed = patch
            .remove
            .iter()
            .map(|name| (name.clone(), String::new()));
        removed.chain(patch.set.clone()).collect()
    }

    /// HTTP API stages need no deployment to exist; with auto-deploy off the stage serves its
    /// routes once the API is deployed to it.
    async fn deployment(&self, _pacer: &Pacer, _api_id: &str) -> Result<Option<String>, AwsError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    //! moto cannot update HTTP API stages: the update path is checked against the SDK with
    //! canned answers.
    use std::collections::BTreeMap;

    use aws_sdk_apigatewayv2::operation::get_stage::{GetStageError, GetStageOutput};
    use aws_sdk_apigatewayv2::operation::update_stage::{UpdateStageError, UpdateStageOutput};
    use aws_sdk_apigatewayv2::types::error::{NotFoundException, TooManyRequestsException};
    use aws_sdk_apigatewayv2::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    use std::sync::Arc;

    use super::HttpStages;
    use crate::aws::pace::Pacer;
    use crate::domain::{ApiKind, StageRef};
    use crate::ports::{ErrorKind, StagePatch, Stages};

    fn stage() -> StageRef {
        StageRef::new(ApiKind::Http, "h77", "prod")
    }

    /// The answer of a throttled call, saying `message`.
    fn too_many_requests(message: &str) -> TooManyRequestsException {
        let meta = ErrorMetadata::builder()
            .code("TooManyRequestsException")
            .message(message)
            .build();
        TooManyRequestsException::builder()
            .message(message)
            .meta(meta)
            .build()
    }

    #[tokio::test]
    async fn update_sends_changes_and_empties_removed_variables() {
        // Variables not in the patch (color) are left out: UpdateStage merges.
        let update = mock!(Client::update_stage)
            .match_requests(|req| {
                let vars = req.stage_variables().cloned().unwrap_or_default();
                req.api_id() == Some("h77")
                    && req.stage_name() == Some("prod")
                    && vars.len() == 2
                    && vars.get("helloworldElb").map(String::as_str) == Some("new.elb")
                    && vars.get("banner").map(String::as_str) == Some("")
            })
            .then_output(|| UpdateStageOutput::builder().build());
        let client = mock_client!(aws_sdk_apigatewayv2, [&update]);
        let patch = StagePatch {
            set: BTreeMap::from([("helloworldElb".into(), "new.elb".into())]),
            remove: vec!["banner".into()],
        };
        HttpStages::new(client, Arc::new(Pacer::apigateway()))
            .update(&stage(), &patch)
            .await
            .unwrap();
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_throttled_update_slows_down_and_is_made_again() {
        let throttled = mock!(Client::update_stage).then_error(|| {
            UpdateStageError::TooManyRequestsException(too_many_requests("throttled"))
        });
        let ok = mock!(Client::update_stage).then_output(|| UpdateStageOutput::builder().build());
        let client = mock_client!(
            aws_sdk_apigatewayv2,
            RuleMode::Sequential,
            [&throttled, &ok]
        );
        HttpStages::new(client, Arc::new(Pacer::apigateway()))
            .update(&stage(), &StagePatch::default())
            .await
            .unwrap();
        // The SDK's own attempts were all throttled; the pacer waited and made the call again.
        assert!(throttled.num_calls() >= 1);
        assert_eq!(ok.num_calls(), 1);
    }

    #[tokio::test]
    async fn throttling_is_classified_and_kept() {
        let throttled = mock!(Client::get_stage)
            .then_error(|| GetStageError::TooManyRequestsException(too_many_requests("slow down")));
        let client = mock_client!(aws_sdk_apigatewayv2, [&throttled]);
        // The adapter's own calls wait and try a throttled call again: its classification is
        // checked on the SDK's error.
        let sdk = client
            .get_stage()
            .api_id("h77")
            .stage_name("prod")
            .send()
            .await
            .unwrap_err();
        let err = crate::aws::sdk_error("apigatewayv2", "GetStage", sdk);
        assert_eq!(err.kind, ErrorKind::Throttled);
        assert_eq!(err.code.as_deref(), Some("TooManyRequestsException"));
        assert!(err.to_string().contains("slow down"), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "cause kept");
    }

    #[tokio::test]
    async fn a_missing_stage_reads_as_none_and_variables_as_given() {
        let missing = mock!(Client::get_stage)
            .match_requests(|r| r.stage_name() == Some("gone"))
            .then_error(|| {
                GetStageError::NotFoundException(
                    NotFoundException::builder()
                        .meta(ErrorMetadata::builder().code("NotFoundException").build())
                        .build(),
                )
            });
        let present = mock!(Client::get_stage)
            .match_requests(|r| r.stage_name() == Some("prod"))
            .then_output(|| {
                GetStageOutput::builder()
                    .stage_name("prod")
                    .stage_variables("helloworldElb", "x.elb")
                    .build()
            });
        let client = mock_client!(
            aws_sdk_apigatewayv2,
            RuleMode::MatchAny,
            [&missing, &present]
        );
        let stages = HttpStages::new(client, Arc::new(Pacer::apigateway()));
        let gone = StageRef::new(ApiKind::Http, "h77", "gone");
        assert_eq!(stages.get(&gone).await.unwrap(), None);
        let live = stages.get(&stage()).await.unwrap().unwrap();
        assert_eq!(live.variables["helloworldElb"], "x.elb");
    }
}

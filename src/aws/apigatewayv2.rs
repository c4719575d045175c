//! HTTP API (API Gateway v2) stages.

use std::collections::BTreeMap;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_apigatewayv2::Client;
use tracing::instrument;

use super::pace::Pacer;
use super::{found, sdk_error};
use crate::domain::{ApiKind, StageRef};
use crate::ports::{AwsError, LiveStage, StagePatch, Stages};

const SERVICE: &str = "apigatewayv2";

pub struct HttpStages {
    client: Client,
    pacer: Arc<Pacer>,
}

impl HttpStages {
    /// Calls are paced by `pacer` (shared by every API Gateway adapter of the process).
    pub fn new(client: Client, pacer: Arc<Pacer>) -> Self {
        HttpStages { client, pacer }
    }
}

#[async_trait]
impl Stages for HttpStages {
    #[instrument(skip(self))]
    async fn api_tags(
        &self,
        _kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let res = self
            .pacer
            .call(|| async {
                self.client
                    .get_api()
                    .api_id(api_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetApi", e))
            })
            .await;
        Ok(found(res)?.map(|out| {
            out.tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        }))
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError> {
        let res = self
            .pacer
            .call(|| async {
                self.client
                    .get_stage()
                    .api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetStage", e))
            })
            .await;
        Ok(found(res)?.map(|out| LiveStage {
            variables: out
                .stage_variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    /// HTTP API stages need no deployment to exist; with auto-deploy off the stage serves its
    /// routes once the API is deployed to it.
    #[instrument(skip(self, variables), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.pacer
            .call(|| async {
                self.client
                    .create_stage()
                    .api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .description("stage created by stagewire")
                    .set_stage_variables(Some(variables.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "CreateStage", e))
            })
            .await?;
        Ok(())
    }

    /// HTTP API `UpdateStage` merges the variables it is given into the stage's: a variable is
    /// set by giving its value and removed by giving it the empty string.
    #[instrument(skip(self, patch), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError> {
        let mut vars: std::collections::HashMap<String, String> = patch
            .remove
            .iter()
            .map(|name| (name.clone(), String::new()))
            .collect();
        vars.extend(patch.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.pacer
            .call(|| async {
                self.client
                    .update_stage()
                    .api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .set_stage_variables(Some(vars.clone()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "UpdateStage", e))
            })
            .await?;
        Ok(())
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        let res = self
            .pacer
            .call(|| async {
                self.client
                    .delete_stage()
                    .api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "DeleteStage", e))
            })
            .await;
        // A stage already gone is deleted.
        found(res).map(|_| ())
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
            UpdateStageError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .meta(
                        ErrorMetadata::builder()
                            .code("TooManyRequestsException")
                            .build(),
                    )
                    .build(),
            )
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
        let throttled = mock!(Client::get_stage).then_error(|| {
            GetStageError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .message("slow down")
                    .meta(
                        ErrorMetadata::builder()
                            .code("TooManyRequestsException")
                            .message("slow down")
                            .build(),
                    )
                    .build(),
            )
        });
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
        let err = super::sdk_error(super::SERVICE, "GetStage", sdk);
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

//! HTTP API (API Gateway v2) stages.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_apigatewayv2::Client;
use tracing::instrument;

use super::sdk_error;
use crate::domain::StageRef;
use crate::ports::{AwsError, ErrorKind, LiveStage, StagePatch, Stages};

const SERVICE: &str = "apigatewayv2";

pub struct HttpStages {
    client: Client,
}

impl HttpStages {
    pub fn new(client: Client) -> Self {
        HttpStages { client }
    }
}

#[async_trait]
impl Stages for HttpStages {
    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError> {
        match self
            .client
            .get_stage()
            .api_id(&stage.api_id)
            .stage_name(&stage.stage)
            .send()
            .await
        {
            Ok(out) => Ok(Some(LiveStage {
                variables: out
                    .stage_variables()
                    .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })),
            Err(e) => {
                let e = sdk_error(SERVICE, "GetStage", e);
                if e.is(ErrorKind::NotFound) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// HTTP API stages need no deployment to exist; with auto-deploy off the stage serves its
    /// routes once the API is deployed to it.
    #[instrument(skip(self, variables), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.client
            .create_stage()
            .api_id(&stage.api_id)
            .stage_name(&stage.stage)
            .description("stage created by stagewire")
            .set_stage_variables(Some(variables.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "CreateStage", e))?;
        Ok(())
    }

    /// HTTP API stages take the whole variable map: the live map with the patch applied.
    #[instrument(skip(self, live, patch), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn update(
        &self,
        stage: &StageRef,
        live: &LiveStage,
        patch: &StagePatch,
    ) -> Result<(), AwsError> {
        let mut vars = live.variables.clone();
        for name in &patch.remove {
            vars.remove(name);
        }
        vars.extend(patch.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.client
            .update_stage()
            .api_id(&stage.api_id)
            .stage_name(&stage.stage)
            .set_stage_variables(Some(vars.into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "UpdateStage", e))?;
        Ok(())
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        match self
            .client
            .delete_stage()
            .api_id(&stage.api_id)
            .stage_name(&stage.stage)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_error(SERVICE, "DeleteStage", e);
                if e.is(ErrorKind::NotFound) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

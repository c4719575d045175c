//! REST API (API Gateway v1) stages.

use std::collections::BTreeMap;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_apigateway::Client;
use tracing::instrument;

use super::pace::Pacer;
use super::{found, sdk_error};
use crate::domain::{ApiKind, StageRef};
use crate::ports::{AwsError, ErrorKind, LiveStage, StagePatch, Stages};

const SERVICE: &str = "apigateway";

pub struct RestStages {
    client: Client,
    pacer: Arc<Pacer>,
    deployments: Pacer,
}

/// Attempts at a throttled `CreateDeployment` before giving up (the caller's deadline usually
/// ends the wait first).
const DEPLOYMENT_ATTEMPTS: u32 = 30;

impl RestStages {
    /// Calls are paced by `pacer` (shared by every API Gateway adapter of the process).
    pub fn new(client: Client, pacer: Arc<Pacer>) -> Self {
        RestStages {
            client,
            pacer,
            deployments: Pacer::deployments(),
        }
    }

    /// The id of the API's most recent deployment, if it has one.
    async fn latest_deployment(&self, api_id: &str) -> Result<Option<String>, AwsError> {
        let mut latest: Option<(i64, String)> = None;
        let mut position: Option<String> = None;
        loop {
            let page = self
                .pacer
                .call(|| async {
                    self.client
                        .get_deployments()
                        .rest_api_id(api_id)
                        .limit(500)
                        .set_position(position.clone())
                        .send()
                        .await
                        .map_err(|e| sdk_error(SERVICE, "GetDeployments", e))
                })
                .await?;
            for d in page.items() {
                let at = d.created_date().map(|t| t.secs()).unwrap_or(0);
                if let Some(id) = d.id() {
                    if latest.as_ref().is_none_or(|(t, _)| at >= *t) {
                        latest = Some((at, id.to_string()));
                    }
                }
            }
            match page.position() {
                Some(next) if !next.is_empty() && page.items().len() == 500 => {
                    position = Some(next.to_string());
                }
                _ => break,
            }
        }
        Ok(latest.map(|(_, id)| id))
    }

    /// Deploy the API's current configuration, to no stage. After each wait for the
    /// deployment quota the API is looked at again: a deployment made meanwhile (by a sibling
    /// creating another stage) serves as well, and saves a call of that scarce quota.
    async fn deploy(&self, api_id: &str) -> Result<String, AwsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.deployments.acquire().await;
            if attempt > 1 || self.deployments.waited() {
                if let Some(id) = self.latest_deployment(api_id).await? {
                    return Ok(id);
                }
            }
            self.pacer.acquire().await;
            let res = self
                .client
                .create_deployment()
                .rest_api_id(api_id)
                .description("deployment made by stagewire for a new stage")
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "CreateDeployment", e));
            match res {
                Ok(out) => return Ok(out.id().unwrap_or_default().to_string()),
                Err(e) if e.is(ErrorKind::Throttled) && attempt < DEPLOYMENT_ATTEMPTS => {
                    let wait = Duration::from_millis(1000 + fastrand::u64(..4000));
                    tracing::warn!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "CreateDeployment throttled: waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Stages for RestStages {
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
                    .get_rest_api()
                    .rest_api_id(api_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetRestApi", e))
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
                    .rest_api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetStage", e))
            })
            .await;
        Ok(found(res)?.map(|out| LiveStage {
            variables: out
                .variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    /// A new stage serves the API's latest deployment: one `CreateStage`, at the account's
    /// pace. Only an API never deployed needs a deployment first (`CreateDeployment`, whose
    /// quota is one call every 5 seconds: paced to it, and a throttled call waits a jittered
    /// 1-5 s and tries again). The deployment is made without a stage, so it never touches a
    /// stage a concurrent invocation created meanwhile; that one makes `CreateStage` answer
    /// `ConflictException`, and the caller updates the stage instead.
    #[instrument(skip(self, variables), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let deployment = match self.latest_deployment(&stage.api_id).await? {
            Some(id) => id,
            None => self.deploy(&stage.api_id).await?,
        };
        self.pacer
            .call(|| async {
                self.client
                    .create_stage()
                    .rest_api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .deployment_id(&deployment)
                    .description("stage created by stagewire")
                    .set_variables(Some(variables.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "CreateStage", e))
            })
            .await?;
        Ok(())
    }

    #[instrument(skip(self, patch), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError> {
        let mut ops = Vec::with_capacity(patch.set.len() + patch.remove.len());
        for (name, value) in &patch.set {
            ops.push(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path(format!("/variables/{name}"))
                    .value(value)
                    .build(),
            );
        }
        for name in &patch.remove {
            ops.push(
                PatchOperation::builder()
                    .op(Op::Remove)
                    .path(format!("/variables/{name}"))
                    .build(),
            );
        }
        self.pacer
            .call(|| async {
                self.client
                    .update_stage()
                    .rest_api_id(&stage.api_id)
                    .stage_name(&stage.stage)
                    .set_patch_operations(Some(ops.clone()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "UpdateStage", e))
            })
            .await?;
        Ok(())
    }

    /// One `GetStages` call answers every stage of the API with its variables.
    #[instrument(skip(self, _kind))]
    async fn list(
        &self,
        _kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        let res = self
            .pacer
            .call(|| async {
                self.client
                    .get_stages()
                    .rest_api_id(api_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetStages", e))
            })
            .await;
        match res {
            Ok(out) => Ok(Some(
                out.item()
                    .iter()
                    .filter_map(|s| {
                        let vars = s
                            .variables()
                            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default();
                        Some((s.stage_name()?.to_string(), LiveStage { variables: vars }))
                    })
                    .collect(),
            )),
            Err(e) => {
                if e.is(ErrorKind::NotFound) {
                    Ok(Some(BTreeMap::new()))
                } else {
                    Err(e)
                }
            }
        }
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        let res = self
            .pacer
            .call(|| async {
                self.client
                    .delete_stage()
                    .rest_api_id(&stage.api_id)
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

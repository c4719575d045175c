//! The REST API (API Gateway v1) family: a new stage serves the API's latest deployment, a
//! patch is a list of patch operations, and one call lists every stage with its variables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_apigateway::Client;

use super::{sdk_calls, strings, Family, GatewayStages};
use crate::aws::pace::Pacer;
use crate::aws::{found, sdk_error};
use crate::ports::{AwsError, ErrorKind, LiveStage, StagePatch};

const SERVICE: &str = "apigateway";

/// Attempts at a throttled `CreateDeployment` before giving up (the caller's deadline usually
/// ends the wait first).
const DEPLOYMENT_ATTEMPTS: u32 = 30;

/// REST API stages.
pub type RestStages = GatewayStages<RestApi>;

/// The REST API family's SDK client, and the pace of its deployments.
pub struct RestApi {
    client: Client,
    deployments: Pacer,
}

impl RestStages {
    /// Calls are paced by `pacer` (shared by every API Gateway adapter of the process).
    pub fn new(client: Client, pacer: Arc<Pacer>) -> Self {
        let deployments = Pacer::deployments();
        GatewayStages::with(
            RestApi {
                client,
                deployments,
            },
            pacer,
        )
    }
}

sdk_calls! {
    family: RestApi,
    service: SERVICE,
    get_api: get_rest_api / "GetRestApi",
    api_id: rest_api_id,
    variables: variables / set_variables,
    patch: set_patch_operations,
}

#[async_trait]
impl Family for RestApi {
    type Patch = Vec<PatchOperation>;

    /// A variable set is replaced, one removed is removed: one operation each.
    fn patch(patch: &StagePatch) -> Vec<PatchOperation> {
        let path = |name: &str| format!("/variables/{name}");
        let set = patch.set.iter().map(|(name, value)| {
            PatchOperation::builder()
                .op(Op::Replace)
                .path(path(name))
                .value(value)
                .build()
        });
        let remove = (patch.remove.iter()).map(|name| {
            PatchOperation::builder()
                .op(Op::Remove)
                .path(path(name))
                .build()
        });
        set.chain(remove).collect()
    }

    /// A new stage serves the API's latest deployment. Only an API never deployed needs a
    /// deployment first (`CreateDeployment`, whose quota is one call every 5 seconds: paced to
    /// it, and a throttled call waits a jittered 1-5 s and tries again). The deployment is
    /// made without a stage, so it never touches a stage a concurrent invocation created
    /// meanwhile.
    async fn deployment(&self, pacer: &Pacer, api_id: &str) -> Result<Option<String>, AwsError> {
        match self.latest_deployment(pacer, api_id).await? {
            Some(id) => Ok(Some(id)),
            None => self.deploy(pacer, api_id).await.map(Some),
        }
    }

    /// One `GetStages` call answers every stage of the API with its variables.
    async fn list(
        &self,
        pacer: &Pacer,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        let res = pacer
            .call(|| async {
                self.client
                    .get_stages()
                    .rest_api_id(api_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "GetStages", e))
            })
            .await;
        let Some(out) = found(res)? else {
            return Ok(Some(BTreeMap::new()));
        };
        let stages = out.item().iter().filter_map(|s| {
            let variables = strings(s.variables());
            Some((s.stage_name()?.to_string(), LiveStage { variables }))
        });
        Ok(Some(stages.collect()))
    }
}

impl RestApi {
    /// The id of the API's most recent deployment, if it has one.
    async fn latest_deployment(
        &self,
        pacer: &Pacer,
        api_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let mut latest: Option<(i64, String)> = None;
        let mut position: Option<String> = None;
        loop {
            let page = pacer
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
    async fn deploy(&self, pacer: &Pacer, api_id: &str) -> Result<String, AwsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.deployments.acquire().await;
            if attempt > 1 || self.deployments.waited() {
                if let Some(id) = self.latest_deployment(pacer, api_id).await? {
                    return Ok(id);
                }
            }
            pacer.acquire().await;
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

//! API Gateway stages, for both API families: one [`Stages`] implementation,
//! [`GatewayStages`], over each family's SDK calls. The REST API (v1) family is [`rest`]; the
//! HTTP API (v2) family is `aws::apigatewayv2`.
//!
//! The two SDKs make the same calls under other names: [`sdk_calls!`] writes them once, and
//! each family invokes it with its SDK's names ([`Calls`]). What a family does its own way is
//! its [`Family`]: the deployment a new stage serves, the form of a patch, a listing of every
//! stage in one call.

mod rest;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tracing::instrument;

use super::found;
use super::pace::Pacer;
use crate::domain::{ApiKind, StageRef};
use crate::ports::{AwsError, LiveStage, StagePatch, Stages};

pub use rest::RestStages;

/// Tags, or a stage's variables.
pub type Strings = BTreeMap<String, String>;

/// The stages of one API family, every call made at the pace shared by every API Gateway
/// adapter of the process.
pub struct GatewayStages<F> {
    family: F,
    pacer: Arc<Pacer>,
}

impl<F> GatewayStages<F> {
    /// The stages of `family`, its calls paced by `pacer`.
    pub fn with(family: F, pacer: Arc<Pacer>) -> Self {
        GatewayStages { family, pacer }
    }
}

/// The calls both families make alike, but for the names their SDKs give things: each family's
/// are written by [`sdk_calls!`]. Each is one call; pacing it is the caller's.
#[async_trait]
pub trait Calls: Send + Sync {
    /// The API's tags (`GetRestApi`, `GetApi`).
    async fn tags(&self, api_id: &str) -> Result<Strings, AwsError>;
    /// The stage's variables (`GetStage`).
    async fn variables(&self, stage: &StageRef) -> Result<Strings, AwsError>;
    /// Create the stage, serving `deployment` when given (`CreateStage`).
    async fn create(
        &self,
        stage: &StageRef,
        deployment: Option<&str>,
        variables: &Strings,
    ) -> Result<(), AwsError>;
    /// Apply the patch in one call (`UpdateStage`).
    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError>;
    /// Delete the stage (`DeleteStage`).
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError>;
}

/// What an API family does its own way.
#[async_trait]
pub trait Family: Calls {
    /// A patch, in the form the family's `UpdateStage` takes.
    type Patch: Send + Sync;

    /// The patch in the family's form.
    fn patch(patch: &StagePatch) -> Self::Patch;

    /// The deployment a new stage of the API serves, when the family needs one; its calls are
    /// made at `pacer`'s pace.
    async fn deployment(&self, pacer: &Pacer, api_id: &str) -> Result<Option<String>, AwsError>;

    /// Every stage of an API with its variables, in one call made at `pacer`'s pace, where the
    /// family offers it (`None` otherwise); an API that does not exist has no stages.
    async fn list(
        &self,
        _pacer: &Pacer,
        _api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        Ok(None)
    }
}

/// An SDK's map of strings (tags, stage variables), in order; absent, it is empty.
pub fn strings(map: Option<&std::collections::HashMap<String, String>>) -> Strings {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[async_trait]
impl<F: Family> Stages for GatewayStages<F> {
    #[instrument(skip(self, _kind))]
    async fn api_tags(&self, _kind: ApiKind, api_id: &str) -> Result<Option<Strings>, AwsError> {
        found(self.pacer.call(|| self.family.tags(api_id)).await)
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError> {
        let variables = found(self.pacer.call(|| self.family.variables(stage)).await)?;
        Ok(variables.map(|variables| LiveStage { variables }))
    }

    /// One `CreateStage` at the account's pace, serving the deployment the family wants (see
    /// [`Family::deployment`]). A stage a concurrent invocation created meanwhile makes it
    /// answer `ConflictException`, and the caller updates the stage instead.
    #[instrument(skip(self, variables), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn create(&self, stage: &StageRef, variables: &Strings) -> Result<(), AwsError> {
        let deployment = self.family.deployment(&self.pacer, &stage.api_id).await?;
        let deployment = deployment.as_deref();
        self.pacer
            .call(|| self.family.create(stage, deployment, variables))
            .await
    }

    #[instrument(skip(self, patch), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError> {
        self.pacer.call(|| self.family.update(stage, patch)).await
    }

    #[instrument(skip(self), fields(api = %stage.api_id, stage = %stage.stage))]
    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        // A stage already gone is deleted.
        found(self.pacer.call(|| self.family.delete(stage)).await).map(|_| ())
    }

    #[instrument(skip(self, _kind))]
    async fn list(
        &self,
        _kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        self.family.list(&self.pacer, api_id).await
    }
}

/// Writes a family's [`Calls`], given the names its SDK uses:
///
/// - `family`: the family's type, holding its SDK client in `client`;
/// - `service`: the service, as errors name it;
/// - `get_api`: the call that reads an API, and its operation name;
/// - `api_id`: the parameter naming an API;
/// - `variables`: a stage's variables as read, and their setter;
/// - `patch`: the setter that takes [`Family::patch`]'s form on `UpdateStage`.
///
/// Its `@stage` rule is one call on one stage: `client.$call()` for the stage, with the
/// `$setter($value)`s given, sent, its error classified (as operation `$name`).
macro_rules! sdk_calls {
    (
        family: $family:ty,
        service: $service:expr,
        get_api: $get_api:ident / $get_api_name:literal,
        api_id: $api_id:ident,
        variables: $variables:ident / $set_variables:ident,
        patch: $set_patch:ident $(,)?
    ) => {
        const _: () = {
            use $crate::aws::apigateway::{sdk_calls, strings, Calls, Family, Strings};
            use $crate::aws::sdk_error;
            use $crate::domain::StageRef;
            use $crate::ports::{AwsError, StagePatch};

            #[async_trait::async_trait]
            impl Calls for $family {
                async fn tags(&self, api_id: &str) -> Result<Strings, AwsError> {
                    let sent = self.client.$get_api().$api_id(api_id).send().await;
                    let out = sent.map_err(|e| sdk_error($service, $get_api_name, e))?;
                    Ok(strings(out.tags()))
                }

                async fn variables(&self, stage: &StageRef) -> Result<Strings, AwsError> {
                    let out = sdk_calls!(@stage self, stage, $api_id, $service,
                        get_stage / "GetStage")?;
                    Ok(strings(out.$variables()))
                }

                async fn create(
                    &self,
                    stage: &StageRef,
                    deployment: Option<&str>,
                    variables: &Strings,
                ) -> Result<(), AwsError> {
                    let deployment = deployment.map(str::to_owned);
                    let variables = Some(variables.clone().into_iter().collect());
                    sdk_calls!(@stage self, stage, $api_id, $service,
                        create_stage / "CreateStage",
                        set_deployment_id(deployment),
                        description("stage created by stagewire"),
                        $set_variables(variables))?;
                    Ok(())
                }

                async fn update(
                    &self,
                    stage: &StageRef,
                    patch: &StagePatch,
                ) -> Result<(), AwsError> {
                    let patch = Some(<$family as Family>::patch(patch));
                    sdk_calls!(@stage self, stage, $api_id, $service,
                        update_stage / "UpdateStage", $set_patch(patch))?;
                    Ok(())
                }

                async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
                    sdk_calls!(@stage self, stage, $api_id, $service,
                        delete_stage / "DeleteStage")?;
                    Ok(())
                }
            }
        };
    };
    (
        @stage $self:ident, $stage:ident, $api_id:ident, $service:expr,
        $call:ident / $name:literal $(, $setter:ident($value:expr))* $(,)?
    ) => {
        $self
            .client
            .$call()
            .$api_id(&$stage.api_id)
            .stage_name(&$stage.stage)
            $(.$setter($value))*
            .send()
            .await
            .map_err(|e| $crate::aws::sdk_error($service, $name, e))
    };
}
pub(crate) use sdk_calls;

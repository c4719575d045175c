//! API Gateway stages, and the tags of their APIs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{error, World};
use crate::domain::{ApiKind, StageRef};
use crate::ports::{op, AwsError, ErrorKind, LiveStage, StagePatch, Stages};

#[async_trait]
impl Stages for World {
    async fn get(&self, stage: &StageRef) -> Result<Option<LiveStage>, AwsError> {
        Ok(self.call(op::GET_STAGE)?.stages.get(stage).map(live))
    }

    async fn create(
        &self,
        stage: &StageRef,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut s = self.call(op::CREATE_STAGE)?;
        if s.stages.contains_key(stage) {
            return Err(error(op::CREATE_STAGE, ErrorKind::Conflict));
        }
        s.stages.insert(stage.clone(), variables.clone());
        Ok(())
    }

    async fn update(&self, stage: &StageRef, patch: &StagePatch) -> Result<(), AwsError> {
        let mut s = self.call(op::UPDATE_STAGE)?;
        let vars = s
            .stages
            .get_mut(stage)
            .ok_or_else(|| error(op::UPDATE_STAGE, ErrorKind::NotFound))?;
        for r in &patch.remove {
            vars.remove(r);
        }
        vars.extend(patch.set.clone());
        Ok(())
    }

    async fn delete(&self, stage: &StageRef) -> Result<(), AwsError> {
        self.call(op::DELETE_STAGE)?.stages.remove(stage);
        Ok(())
    }

    async fn api_tags(
        &self,
        kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let api = (kind, api_id.to_string());
        let tags = self.call(op::API_TAGS)?.api_tags.get(&api).cloned();
        Ok(Some(tags.unwrap_or_default()))
    }

    async fn list(
        &self,
        kind: ApiKind,
        api_id: &str,
    ) -> Result<Option<BTreeMap<String, LiveStage>>, AwsError> {
        let s = self.call(op::GET_STAGES)?;
        let of_api = s
            .stages
            .iter()
            .filter(|(k, _)| k.kind == kind && k.api_id == api_id);
        Ok(Some(
            of_api.map(|(k, v)| (k.stage.clone(), live(v))).collect(),
        ))
    }
}

fn live(variables: &BTreeMap<String, String>) -> LiveStage {
    LiveStage {
        variables: variables.clone(),
    }
}

//! Reading API Gateway stages, as tests and the demo check them.

use std::collections::BTreeMap;

use crate::DevkitError;

/// The variables of a REST API stage; `None` when the stage (or its API) does not exist.
pub async fn rest_stage_variables(
    apigw: &aws_sdk_apigateway::Client,
    api_id: &str,
    stage: &str,
) -> Result<Option<BTreeMap<String, String>>, DevkitError> {
    match apigw
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await
    {
        Ok(s) => Ok(Some(
            s.variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        )),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(DevkitError::aws("GetStage", e)),
    }
}

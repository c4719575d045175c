//! CloudFormation stack outputs.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_cloudformation::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tracing::instrument;

use super::{found, sdk_error};
use crate::ports::{AwsError, ErrorKind, StackOutputs, StackResource};

pub struct CfnStackOutputs {
    client: Client,
}

impl CfnStackOutputs {
    pub fn new(client: Client) -> Self {
        CfnStackOutputs { client }
    }
}

#[async_trait]
impl StackOutputs for CfnStackOutputs {
    #[instrument(skip(self))]
    async fn stack_resource(
        &self,
        stack_id: &str,
        logical_id: &str,
    ) -> Result<Option<StackResource>, AwsError> {
        let out = self
            .client
            .describe_stack_resource()
            .stack_name(stack_id)
            .logical_resource_id(logical_id)
            .send()
            .await
            .map_err(|e| cfn_error("DescribeStackResource", e));
        let Some(out) = found(out)? else {
            return Ok(None);
        };
        Ok(out.stack_resource_detail().map(|d| StackResource {
            resource_type: d.resource_type().unwrap_or_default().to_string(),
            status: d
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            physical_id: d
                .physical_resource_id()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        }))
    }

    #[instrument(skip(self))]
    async fn outputs(&self, stack: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let out = self.client.describe_stacks().stack_name(stack).send().await;
        let Some(out) = found(out.map_err(|e| cfn_error("DescribeStacks", e)))? else {
            return Ok(None);
        };
        let Some(stack) = out.stacks().first() else {
            return Ok(None);
        };
        if stack.stack_status() == Some(&StackStatus::DeleteComplete) {
            return Ok(None);
        }
        Ok(Some(
            stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
                .collect(),
        ))
    }

    #[instrument(skip(self))]
    async fn stack_status(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let out = self.client.describe_stacks().stack_name(stack).send().await;
        Ok(
            found(out.map_err(|e| cfn_error("DescribeStacks", e)))?.and_then(|out| {
                out.stacks()
                    .first()
                    .and_then(|s| s.stack_status())
                    .map(|s| s.as_str().to_string())
            }),
        )
    }

    #[instrument(skip(self))]
    async fn template_resources(&self, stack: &str) -> Result<Option<BTreeSet<String>>, AwsError> {
        let out = self.client.get_template().stack_name(stack).send().await;
        let Some(out) = found(out.map_err(|e| cfn_error("GetTemplate", e)))? else {
            return Ok(None);
        };
        let body = out.template_body().unwrap_or_default();
        Ok(Some(logical_ids(body).map_err(|reason| AwsError {
            service: "cloudformation",
            operation: "GetTemplate",
            kind: ErrorKind::Other,
            code: None,
            message: Some(format!("unreadable template: {reason}")),
            source: None,
        })?))
    }
}

/// Classify a CloudFormation error: a missing stack or resource answers `ValidationError`
/// ("Stack with id X does not exist", "Resource X does not exist for stack Y"), which is
/// [`ErrorKind::NotFound`] here.
fn cfn_error<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut e = sdk_error("cloudformation", operation, e);
    if e.code.as_deref() == Some("ValidationError")
        && e.message
            .as_deref()
            .is_some_and(|m| m.contains("does not exist"))
    {
        e.kind = ErrorKind::NotFound;
    }
    e
}

/// The keys of a template's `Resources`, from its JSON or YAML body (YAML's short forms such as
/// `!Ref` read as tagged values).
fn logical_ids(body: &str) -> Result<BTreeSet<String>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(body).map_err(|e| e.to_string())?;
    Ok(doc
        .get("Resources")
        .and_then(serde_yaml::Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_of_json_and_yaml_templates() {
        let yaml = "Resources:\n  A:\n    Type: Custom::StageBinding\n    Properties:\n      RestApiId: !Ref Api\n  Api:\n    Type: AWS::ApiGateway::RestApi\n";
        assert_eq!(
            logical_ids(yaml).unwrap(),
            BTreeSet::from(["A".to_string(), "Api".to_string()])
        );
        let json = r#"{"Resources": {"B": {"Type": "Custom::StageBinding"}}}"#;
        assert_eq!(
            logical_ids(json).unwrap(),
            BTreeSet::from(["B".to_string()])
        );
        assert!(logical_ids("Resources: [").is_err());
    }
}

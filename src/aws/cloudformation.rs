//! CloudFormation stack outputs.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_cloudformation::Client;
use tracing::instrument;

use super::sdk_error;
use crate::ports::{AwsError, ErrorKind, StackOutputs};

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
    async fn outputs(&self, stack: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let out = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = sdk_error("cloudformation", "DescribeStacks", e);
                // A missing stack is a ValidationError "Stack with id X does not exist".
                let missing = e.is(ErrorKind::NotFound)
                    || (e.code.as_deref() == Some("ValidationError")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("does not exist")));
                return if missing { Ok(None) } else { Err(e) };
            }
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
}

//! The full reconcile's work queue in SQS: one message per unit, sent ten at a time.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use tracing::instrument;

use super::sdk_error;
use crate::ports::{AwsError, ErrorKind, Unit, WorkQueue};

const SERVICE: &str = "sqs";
/// SQS's limit of messages in one `SendMessageBatch`.
const MAX_BATCH: usize = 10;

pub struct SqsWorkQueue {
    client: Client,
    url: String,
}

impl SqsWorkQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsWorkQueue {
            client,
            url: url.into(),
        }
    }
}

fn failed(message: String) -> AwsError {
    AwsError {
        service: SERVICE,
        operation: "SendMessageBatch",
        kind: ErrorKind::Other,
        code: None,
        message: Some(message),
        source: None,
    }
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    /// A batch entry SQS refuses fails the call (the planner's invocation then fails and the
    /// next schedule plans again).
    #[instrument(skip_all, fields(units = units.len()))]
    async fn send(&self, units: &[Unit]) -> Result<(), AwsError> {
        for chunk in units.chunks(MAX_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, unit) in chunk.iter().enumerate() {
                let body = serde_json::to_string(unit).map_err(|e| failed(e.to_string()))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| failed(e.to_string()))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(AwsError {
                    code: Some(f.code().to_string()),
                    ..failed(format!(
                        "{} of {} messages refused: {}",
                        out.failed().len(),
                        chunk.len(),
                        f.message().unwrap_or_default()
                    ))
                });
            }
        }
        Ok(())
    }
}

//! Lambda's SQS event source mapping, played against moto's SQS: pollers take batches of up to
//! `batch_size` messages and invoke a function with them (`{"Records": [...]}`, as Lambda sends
//! them); the messages the function answers as done are deleted, those it names in
//! `batchItemFailures` (all of them when the invocation fails) stay, become visible again after
//! the queue's visibility timeout, and moto moves them to the dead-letter queue once received
//! `maxReceiveCount` times. One poller per function, each invoking its function with one batch
//! at a time, as a Lambda execution environment does: the number of functions is the mapping's
//! maximum concurrency.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use serde_json::{json, Value};

use crate::runtime_api::{Outcome, RuntimeApi};
use crate::DevkitError;

/// A work queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct Queues {
    /// The work queue's URL.
    pub url: String,
    /// The work queue's ARN.
    pub arn: String,
    /// The dead-letter queue's URL.
    pub dlq_url: String,
}

/// Creates queue `name` and `name-dlq`, the first redriving to the second after
/// `max_receive_count` receives, with this visibility timeout.
pub async fn create_queues(
    client: &Client,
    name: &str,
    visibility_timeout: Duration,
    max_receive_count: u32,
) -> Result<Queues, DevkitError> {
    let dlq_url = create(client, &format!("{name}-dlq"), Vec::new()).await?;
    let dlq_arn = arn(client, &dlq_url).await?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count});
    let url = create(
        client,
        name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    let arn = arn(client, &url).await?;
    Ok(Queues { url, arn, dlq_url })
}

async fn create(
    client: &Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, DevkitError> {
    let out = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateQueue", e))?;
    out.queue_url
        .ok_or_else(|| DevkitError::Unexpected("CreateQueue answered no QueueUrl".into()))
}

async fn arn(client: &Client, url: &str) -> Result<String, DevkitError> {
    attribute(client, url, QueueAttributeName::QueueArn).await
}

async fn attribute(
    client: &Client,
    url: &str,
    name: QueueAttributeName,
) -> Result<String, DevkitError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(|e| DevkitError::aws("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .ok_or_else(|| DevkitError::Unexpected(format!("queue {url} has no {name}")))
}

/// Messages in a queue: visible, and received but not yet deleted.
pub async fn depth(client: &Client, url: &str) -> Result<(u64, u64), DevkitError> {
    let n = |v: String| v.parse().unwrap_or(0);
    Ok((
        n(attribute(client, url, QueueAttributeName::ApproximateNumberOfMessages).await?),
        n(attribute(
            client,
            url,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .await?),
    ))
}

/// What the mapping did.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Invocations made.
    pub invocations: AtomicU64,
    /// Messages deleted after their invocation reported them done.
    pub deleted: AtomicU64,
    /// Messages reported in `batchItemFailures`.
    pub item_failures: AtomicU64,
    /// Invocations that ended in an error (their whole batch stays).
    pub errors: AtomicU64,
    /// The most invocations running at once.
    pub max_in_flight: AtomicUsize,
    in_flight: AtomicUsize,
}

/// The event source mapping of one queue.
#[derive(Debug, Clone)]
pub struct EventSource {
    /// The SQS client (moto's endpoint).
    pub client: Client,
    /// The queue polled.
    pub queues: Queues,
    /// Messages per invocation, at most (SQS gives at most 10 per receive).
    pub batch_size: i32,
    /// How long an invocation may run.
    pub function_timeout: Duration,
}

impl EventSource {
    /// Polls with one poller per function until the queue holds no message, visible or in
    /// flight (what failed and went to the dead-letter queue included), waiting at most
    /// `timeout` in all.
    pub async fn drain(
        &self,
        functions: &[&RuntimeApi],
        timeout: Duration,
    ) -> Result<Delivered, DevkitError> {
        let delivered = Delivered::default();
        let pollers = functions.iter().map(|f| self.poll(f, &delivered));
        let all = futures::future::try_join_all(pollers);
        match tokio::time::timeout(timeout, all).await {
            Ok(r) => r.map(|_| delivered),
            Err(_) => Err(DevkitError::Timeout {
                what: format!("the queue {} to drain", self.queues.url),
                after: timeout,
            }),
        }
    }

    async fn poll(&self, function: &RuntimeApi, delivered: &Delivered) -> Result<(), DevkitError> {
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queues.url)
                .max_number_of_messages(self.batch_size.clamp(1, 10))
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| DevkitError::aws("ReceiveMessage", e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                if depth(&self.client, &self.queues.url).await? == (0, 0) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
            let now = delivered.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            delivered.max_in_flight.fetch_max(now, Ordering::SeqCst);
            delivered.invocations.fetch_add(1, Ordering::SeqCst);
            let answer = function
                .invoke(json!({ "Records": records }), self.function_timeout)
                .await;
            delivered.in_flight.fetch_sub(1, Ordering::SeqCst);
            let failed: HashSet<String> = match answer.map(|i| i.outcome) {
                Ok(Outcome::Response(v)) => v["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect(),
                // The whole batch stays, as after a function error or a timeout.
                Ok(Outcome::Error(_)) | Err(_) => {
                    delivered.errors.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            };
            delivered
                .item_failures
                .fetch_add(failed.len() as u64, Ordering::SeqCst);
            for m in messages {
                if failed.contains(m.message_id().unwrap_or_default()) {
                    continue;
                }
                self.client
                    .delete_message()
                    .queue_url(&self.queues.url)
                    .set_receipt_handle(m.receipt_handle)
                    .send()
                    .await
                    .map_err(|e| DevkitError::aws("DeleteMessage", e))?;
                delivered.deleted.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// A message as Lambda puts it in the event.
    fn record(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone())))
            .collect();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queues.arn,
            "awsRegion": "us-east-1",
        })
    }
}

//! Reading an SQS queue for good: long polls, each batch handled then deleted (a crash between
//! the two re-delivers it — handlers are idempotent), SQS unreachable or refusing logged once
//! per kind of failure and retried with backoff. The bucket's object notifications and each
//! environment's stack events are read this way.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};

use super::{AwsFailure, LONG_POLL_SECONDS};

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Spawns the reader of `queue_url`; `what` names the queue in logs ("the bucket's
/// notifications"). `handle` gets every batch before it is deleted. The task ends when `stop`
/// says so (checked between polls).
pub fn spawn_reader<H, Fut>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    what: String,
    stop: impl Fn() -> bool + Send + 'static,
    mut handle: H,
) -> tokio::task::JoinHandle<()>
where
    H: FnMut(Vec<Message>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut last_failure: Option<String> = None;
        while !stop() {
            let received = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(LONG_POLL_SECONDS)
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    let failure =
                        AwsFailure::from_sdk(format!("reading {what} from {queue_url}"), e)
                            .to_string();
                    if last_failure.as_ref() != Some(&failure) {
                        tracing::warn!(error = failure, "{what} unavailable; retrying");
                    }
                    last_failure = Some(failure);
                    tokio::time::sleep(crate::backoff::jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if last_failure.take().is_some() {
                tracing::info!("{what} readable again");
            }
            backoff = MIN_BACKOFF;
            let receipts: Vec<DeleteMessageBatchRequestEntry> = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            if messages.is_empty() {
                continue;
            }
            handle(messages).await;
            if !receipts.is_empty()
                && let Err(e) = sqs
                    .delete_message_batch()
                    .queue_url(&queue_url)
                    .set_entries(Some(receipts))
                    .send()
                    .await
            {
                // They come back after their visibility timeout, and are handled again.
                tracing::warn!(error = %AwsFailure::from_sdk(format!("deleting messages read from {what}"), e), "{what}");
            }
        }
    })
}

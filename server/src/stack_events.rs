//! Push, not only poll: CloudFormation announces a stack's events to the SNS topics in its
//! NotificationARNs; the environment's topic delivers them to an SQS queue, which this reads
//! (long polls). Each event wakes the deployment watching that stack, which reads the stack at
//! once instead of at its next poll. The notification is only a signal: what the deployment
//! reports is still read from CloudFormation (DescribeStacks, DescribeStackEvents), so a lost,
//! late, duplicated or forged message changes when the deployer looks, never what it reports —
//! and with the queue unreachable the deployments go on at the poll interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Per stack: wakes the deployment watching it.
#[derive(Default)]
pub struct StackSignals {
    /// `<environment>/<stack name>` → its signal. A permit is kept when nobody waits yet: an
    /// event heard while the watcher was reading the stack wakes its next wait at once.
    stacks: Mutex<HashMap<String, Arc<Notify>>>,
}

impl StackSignals {
    fn signal(&self, environment: &str, stack_name: &str) -> Arc<Notify> {
        self.stacks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(format!("{environment}/{stack_name}"))
            .or_default()
            .clone()
    }

    /// Starts listening for the stack's events (before its first read, so that nothing heard
    /// after it is missed); the guard forgets the stack when dropped.
    pub fn watch(self: &Arc<Self>, environment: &str, stack_name: &str) -> Watching {
        self.signal(environment, stack_name);
        Watching {
            signals: self.clone(),
            environment: environment.to_owned(),
            stack_name: stack_name.to_owned(),
        }
    }

    /// Waits for the stack's next event, or `timeout` (the poll interval). Whether an event
    /// came.
    pub async fn wait(&self, environment: &str, stack_name: &str, timeout: Duration) -> bool {
        let signal = self.signal(environment, stack_name);
        tokio::time::timeout(timeout, signal.notified())
            .await
            .is_ok()
    }

    /// The stack has news; whether a deployment is watching it here.
    pub fn notify(&self, environment: &str, stack_name: &str) -> bool {
        let key = format!("{environment}/{stack_name}");
        let stacks = self
            .stacks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match stacks.get(&key) {
            Some(signal) => {
                signal.notify_one();
                true
            }
            None => false,
        }
    }

    /// Forgets a stack's signal once its deployment ended.
    pub fn forget(&self, environment: &str, stack_name: &str) {
        self.stacks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&format!("{environment}/{stack_name}"));
    }
}

/// A deployment listening for its stack's events; dropped, it stops.
pub struct Watching {
    signals: Arc<StackSignals>,
    environment: String,
    stack_name: String,
}

impl Watching {
    /// The stack's next event, or `timeout`; whether an event came.
    pub async fn next(&self, timeout: Duration) -> bool {
        self.signals
            .wait(&self.environment, &self.stack_name, timeout)
            .await
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.signals.forget(&self.environment, &self.stack_name);
    }
}

/// What one CloudFormation notification says (the fields the deployer uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackNotice {
    pub stack_name: String,
    pub stack_id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
}

/// Reads an SQS message body: the SNS envelope (`{"Type":"Notification","Message":…}`), or the
/// bare message when the subscription delivers raw messages. CloudFormation's message is lines
/// of `Key='value'`. `None` for anything else (a subscription confirmation, a stranger's message).
pub fn parse(body: &str) -> Option<StackNotice> {
    let message = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(envelope) => envelope.get("Message")?.as_str()?.to_owned(),
        Err(_) => body.to_owned(),
    };
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for line in message.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value.trim());
        fields.insert(key.trim(), value);
    }
    let field = |name: &str| fields.get(name).map(|v| (*v).to_owned());
    Some(StackNotice {
        stack_name: field("StackName").filter(|n| !n.is_empty())?,
        stack_id: field("StackId").unwrap_or_default(),
        logical_id: field("LogicalResourceId").unwrap_or_default(),
        resource_type: field("ResourceType").unwrap_or_default(),
        status: field("ResourceStatus").unwrap_or_default(),
    })
}

/// Reads the environment's stack-events queue until the process lets go of the store. SQS
/// hands each message to one reader: with replicas sharing a PostgreSQL store, an event for a
/// stack this replica does not watch is forwarded to the others (`NOTIFY`).
pub fn spawn_listener(
    signals: Arc<StackSignals>,
    environment: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    store: crate::store::Store,
) -> tokio::task::JoinHandle<()> {
    let released = store.clone();
    crate::aws::queue::spawn_reader(
        sqs,
        queue_url,
        format!("{environment}'s stack events"),
        move || released.is_released(),
        move |messages| {
            let notices: Vec<StackNotice> = messages
                .iter()
                .filter_map(|m| m.body().and_then(parse))
                .collect();
            let (signals, environment, store) =
                (signals.clone(), environment.clone(), store.clone());
            async move {
                for notice in notices {
                    let watched = signals.notify(&environment, &notice.stack_name);
                    crate::metrics::stack_notification(&environment, watched);
                    tracing::debug!(
                        environment,
                        stack = notice.stack_name,
                        resource = notice.logical_id,
                        status = notice.status,
                        watched,
                        "stack event heard"
                    );
                    if !watched
                        && store.shares_live_events()
                        && let Err(e) = store
                            .forward_stack_event(&environment, &notice.stack_name)
                            .await
                    {
                        tracing::debug!(error = %e, "could not forward a stack event to the other replicas");
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CloudFormation publishes (the same lines moto sends), inside SNS's envelope as an
    /// SQS subscription receives it.
    const MESSAGE: &str = "StackId='arn:aws:cloudformation:eu-west-1:111111111111:stack/DEV-WEB/0b8a'\nTimestamp='2026-11-28T08:00:01.123Z'\nEventId='4f1c'\nLogicalResourceId='DEV-WEB'\nNamespace='111111111111'\nResourceProperties='null'\nResourceStatus='CREATE_COMPLETE'\nResourceStatusReason=''\nResourceType='AWS::CloudFormation::Stack'\nStackName='DEV-WEB'\nClientRequestToken='null'\n";

    #[test]
    fn reads_cloudformations_message_in_snss_envelope_or_raw() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:eu-west-1:111111111111:deployer-stack-events",
            "Subject": "AWS CloudFormation Notification",
            "Message": MESSAGE,
        })
        .to_string();
        let expected = StackNotice {
            stack_name: "DEV-WEB".into(),
            stack_id: "arn:aws:cloudformation:eu-west-1:111111111111:stack/DEV-WEB/0b8a".into(),
            logical_id: "DEV-WEB".into(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: "CREATE_COMPLETE".into(),
        };
        assert_eq!(parse(&envelope), Some(expected.clone()));
        assert_eq!(parse(MESSAGE), Some(expected));
        assert_eq!(parse(r#"{"Type":"SubscriptionConfirmation"}"#), None);
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(""), None);
    }

    #[tokio::test]
    async fn an_event_wakes_the_watcher_of_its_stack_only() {
        let signals = Arc::new(StackSignals::default());
        assert!(!signals.notify("DEV", "DEV-WEB"), "nobody watches yet");
        let waiting = {
            let signals = signals.clone();
            tokio::spawn(async move {
                signals
                    .wait("DEV", "DEV-WEB", Duration::from_secs(30))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!signals.notify("STG", "DEV-WEB"), "another account's stack");
        assert!(signals.notify("DEV", "DEV-WEB"));
        assert!(waiting.await.unwrap(), "woken by the event");
        // Heard between two waits: the next wait returns at once.
        signals.notify("DEV", "DEV-WEB");
        assert!(
            signals
                .wait("DEV", "DEV-WEB", Duration::from_secs(30))
                .await
        );
        assert!(
            !signals
                .wait("DEV", "DEV-WEB", Duration::from_millis(10))
                .await,
            "no event: the poll interval"
        );
        signals.forget("DEV", "DEV-WEB");
        assert!(!signals.notify("DEV", "DEV-WEB"));
    }
}

//! [`PublishedFeed`]: results announced on their keys' channels (see
//! [`crate::toolkit::RESULT_LUA`]; Python Celery announces the same way), for thousands
//! of watched tasks on one subscription. A lost connection is reopened on the next wait
//! and reported as "maybe", so the watch reads what it may have missed.

use std::collections::HashMap;

use artel_core::{Announced, BrokerResult, ResultFeed, TaskResult};
use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use tokio::time::Instant;

use crate::toolkit::{redis_error, subscribe};

/// Channels subscribed with one command at most.
const SUBSCRIBE_AT_ONCE: usize = 1000;
/// Announcements handed to the watch at once at most.
const ANNOUNCED_AT_ONCE: usize = 1000;

/// A subscription to the result channels of the followed tasks.
pub struct PublishedFeed {
    /// Servers any of which relays the announcements, tried in order.
    servers: Vec<redis::Client>,
    key_of: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Channel → task id, for every followed task.
    followed: HashMap<String, String>,
    subscription: Option<(PubSubSink, PubSubStream)>,
}

impl PublishedFeed {
    /// Follows results stored under `key_of(task_id)` and announced on any of `servers`
    /// (one server, or a cluster's nodes).
    pub fn new(servers: Vec<redis::Client>, key_of: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self { servers, key_of: Box::new(key_of), followed: HashMap::new(), subscription: None }
    }

    /// Opens the subscription and subscribes every followed channel.
    async fn reopen(&mut self) -> BrokerResult<()> {
        let pubsub = subscribe(&self.servers).await.map_err(|e| redis_error("opening a result feed", e))?;
        let (mut sink, stream) = pubsub.split();
        let channels: Vec<&String> = self.followed.keys().collect();
        for chunk in channels.chunks(SUBSCRIBE_AT_ONCE) {
            sink.subscribe(chunk).await.map_err(|e| redis_error("subscribing to results", e))?;
        }
        self.subscription = Some((sink, stream));
        Ok(())
    }

    fn announced(&self, message: &redis::Msg) -> Option<TaskResult> {
        let id = self.followed.get(message.get_channel_name())?;
        let mut result: TaskResult = serde_json::from_slice(message.get_payload_bytes()).ok()?;
        result.task_id.clone_from(id);
        Some(result)
    }
}

impl std::fmt::Debug for PublishedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedFeed").field("followed", &self.followed.len()).finish()
    }
}

#[async_trait]
impl ResultFeed for PublishedFeed {
    async fn follow(&mut self, task_ids: &[String]) -> BrokerResult<()> {
        let channels: Vec<String> = task_ids.iter().map(|id| (self.key_of)(id)).collect();
        for (channel, id) in channels.iter().zip(task_ids) {
            self.followed.insert(channel.clone(), id.clone());
        }
        let Some((sink, _)) = &mut self.subscription else { return Ok(()) };
        for chunk in channels.chunks(SUBSCRIBE_AT_ONCE) {
            if let Err(error) = sink.subscribe(chunk).await {
                // Reopened (with every channel) on the next wait.
                tracing::debug!(%error, "result feed lost; reopening");
                self.subscription = None;
                break;
            }
        }
        Ok(())
    }

    async fn unfollow(&mut self, task_ids: &[String]) -> BrokerResult<()> {
        let channels: Vec<String> = task_ids.iter().map(|id| (self.key_of)(id)).collect();
        for channel in &channels {
            self.followed.remove(channel);
        }
        if let Some((sink, _)) = &mut self.subscription {
            for chunk in channels.chunks(SUBSCRIBE_AT_ONCE) {
                if sink.unsubscribe(chunk).await.is_err() {
                    self.subscription = None;
                    break;
                }
            }
        }
        Ok(())
    }

    async fn next(&mut self, deadline: Instant) -> BrokerResult<Announced> {
        if self.subscription.is_none() {
            self.reopen().await?;
            return Ok(Announced::Maybe);
        }
        let Some((_, stream)) = &mut self.subscription else { return Ok(Announced::Maybe) };
        let first = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Ok(Announced::Nothing),
            Ok(None) => {
                self.subscription = None;
                return Ok(Announced::Maybe);
            }
            Ok(Some(message)) => message,
        };
        let mut messages = vec![first];
        while messages.len() < ANNOUNCED_AT_ONCE {
            match stream.next().now_or_never() {
                Some(Some(message)) => messages.push(message),
                _ => break,
            }
        }
        Ok(Announced::Results(messages.iter().filter_map(|m| self.announced(m)).collect()))
    }
}

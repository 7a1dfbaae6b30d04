//! [`NamedFeed`]: the [`ResultFeed`] of a PostgreSQL watch. Ready-result notifications
//! name the stored tasks (a completion batch's ids, one per line), so a watch reads just
//! those it watches instead of every task; a notification that names none (a lone store,
//! a reconnect) or one the watch fell behind on makes it read them all.

use std::time::Duration;

use artel_core::{Announced, BrokerResult, ResultFeed};
use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::shared::Announcement;

pub(crate) struct NamedFeed {
    pub(crate) announced: broadcast::Receiver<Announcement>,
    /// How long to go without a notification before reading everything anyway (a lost
    /// listener).
    pub(crate) poll: Duration,
}

#[async_trait]
impl ResultFeed for NamedFeed {
    async fn next(&mut self, deadline: Instant) -> BrokerResult<Announced> {
        let wake = deadline.min(Instant::now() + self.poll);
        Ok(match tokio::time::timeout_at(wake, self.announced.recv()).await {
            Ok(Ok(ids)) if !ids.is_empty() => Announced::Stored(ids.to_vec()),
            Ok(Ok(_) | Err(RecvError::Lagged(_))) => Announced::Maybe,
            Ok(Err(RecvError::Closed)) => {
                tokio::time::sleep_until(wake).await;
                Announced::Maybe
            }
            Err(_) if Instant::now() >= deadline => Announced::Nothing,
            Err(_) => Announced::Maybe,
        })
    }
}

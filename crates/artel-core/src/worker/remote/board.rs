//! [`ControlBoard`]: remote control on a broker without Celery's pidbox. Requests are
//! posted for every worker and read by each in the order posted, from where it started
//! reading (a worker that starts later never sees older ones); each reply is kept under
//! its request's ticket for the client to collect ([`ask`]). Both are forgotten after
//! about a minute, so a board never grows with use.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::ControlRequest;
use crate::broker::BrokerResult;
use crate::error::{BrokerError, BrokerErrorKind};

/// Where remote-control requests and replies meet on a native broker.
#[async_trait]
pub trait ControlBoard: Send + Sync + fmt::Debug {
    /// Posts request `body` (pidbox JSON) for every worker.
    async fn post_request(&self, body: &[u8]) -> BrokerResult<()>;

    /// The requests posted after `cursor`, oldest first, and the cursor to read on from;
    /// with no cursor, none: only where the board stands now.
    async fn requests_after(&self, cursor: Option<&str>) -> BrokerResult<(String, Vec<Vec<u8>>)>;

    /// Keeps reply `body` (`{node: reply}` JSON) to the request with `ticket`.
    async fn post_reply(&self, ticket: &str, body: &[u8]) -> BrokerResult<()>;

    /// The replies kept for `ticket` so far, oldest first.
    async fn replies(&self, ticket: &str) -> BrokerResult<Vec<Vec<u8>>>;
}

/// How long a board keeps requests and replies, in milliseconds.
pub const KEPT_MS: i64 = 60_000;

/// A board cursor that is a row id (databases' boards): `None` stays `None`; anything
/// else that is not a number is an error, never a read from the start (which would
/// replay every kept request, `shutdown` included).
pub fn row_cursor(cursor: Option<&str>) -> BrokerResult<Option<i64>> {
    cursor
        .map(|text| {
            text.parse().map_err(|_| {
                BrokerError::new(BrokerErrorKind::Other, format!("remote-control cursor `{text}` is not a row id"))
            })
        })
        .transpose()
}

/// How often a client looks for replies.
const REPLY_POLL: Duration = Duration::from_millis(50);

/// Asks `method` with `arguments` of the workers in `destination` (every worker when
/// empty) through `board`, and collects their replies for `timeout`, or until every
/// named worker replied: `(node, reply)` in the order they came. A reply that is not a
/// `{node: reply}` object is skipped.
pub async fn ask(
    board: &dyn ControlBoard,
    method: &str,
    arguments: &serde_json::Map<String, Value>,
    destination: &[String],
    timeout: Duration,
) -> BrokerResult<Vec<(String, Value)>> {
    let ticket = uuid::Uuid::new_v4().to_string();
    board.post_request(&ControlRequest::encode(method, arguments, destination, &ticket)).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::time::sleep(REPLY_POLL.min(deadline.saturating_duration_since(tokio::time::Instant::now()))).await;
        let bodies = board.replies(&ticket).await?;
        let replies: Vec<(String, Value)> = bodies
            .iter()
            .filter_map(|body| match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(reply)) => reply.into_iter().next(),
                _ => None,
            })
            .collect();
        let everyone = !destination.is_empty() && replies.len() >= destination.len();
        if everyone || tokio::time::Instant::now() >= deadline {
            return Ok(replies);
        }
    }
}

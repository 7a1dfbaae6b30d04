//! Task states and the transitions allowed between them.
//!
//! Every stored state change goes through [`State::can_transition_to`], so a slow or
//! duplicate delivery can never overwrite a finished result (Celery likewise never
//! overwrites SUCCESS).

use serde::{Deserialize, Serialize};

/// Where a task is in its life, with Celery's names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum State {
    /// Unknown or waiting; never stored (a missing result reads as PENDING).
    Pending,
    /// Taken by a worker, not started yet.
    Received,
    /// Running.
    Started,
    /// Returned a value.
    Success,
    /// Failed for good.
    Failure,
    /// Failed and was re-published to run again.
    Retry,
    /// Revoked or expired; it will not run.
    Revoked,
    /// Rejected by the worker (defined by Celery; stored as FAILURE).
    Rejected,
    /// Ran with its result ignored.
    Ignored,
    /// A custom progress state set by the task (`update_state`).
    Progress,
}

impl State {
    /// Every state, for exhaustive checks.
    pub const ALL: [State; 10] = [
        State::Pending,
        State::Received,
        State::Started,
        State::Success,
        State::Failure,
        State::Retry,
        State::Revoked,
        State::Rejected,
        State::Ignored,
        State::Progress,
    ];

    /// The wire name (`"SUCCESS"`, ...), as Celery writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Received => "RECEIVED",
            State::Started => "STARTED",
            State::Success => "SUCCESS",
            State::Failure => "FAILURE",
            State::Retry => "RETRY",
            State::Revoked => "REVOKED",
            State::Rejected => "REJECTED",
            State::Ignored => "IGNORED",
            State::Progress => "PROGRESS",
        }
    }

    /// Whether the task has finished for good (`get()` returns).
    pub fn is_ready(self) -> bool {
        matches!(self, State::Success | State::Failure | State::Revoked | State::Rejected | State::Ignored)
    }

    /// Whether `get()` on this state raises rather than returns a value.
    pub fn is_exception(self) -> bool {
        matches!(self, State::Failure | State::Revoked | State::Rejected)
    }

    /// Whether a stored result in `self` may be replaced by one in `next`.
    ///
    /// Ready states are final. Non-final states may repeat (at-least-once delivery
    /// redelivers), and a retried task may start again.
    pub fn can_transition_to(self, next: State) -> bool {
        use State::*;
        match self {
            Success | Failure | Revoked | Rejected | Ignored => false,
            Pending | Received | Started | Retry | Progress => match next {
                Pending => false,
                Received | Started | Progress | Retry | Success | Failure | Revoked | Rejected | Ignored => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn transition_table() {
        // (from, allowed targets); everything else must be refused.
        let live = vec![Received, Started, Success, Failure, Retry, Revoked, Rejected, Ignored, Progress];
        let table: Vec<(State, Vec<State>)> = vec![
            (Pending, live.clone()),
            (Received, live.clone()),
            (Started, live.clone()),
            (Retry, live.clone()),
            (Progress, live),
            (Success, vec![]),
            (Failure, vec![]),
            (Revoked, vec![]),
            (Rejected, vec![]),
            (Ignored, vec![]),
        ];
        for (from, allowed) in table {
            for to in State::ALL {
                assert_eq!(from.can_transition_to(to), allowed.contains(&to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn wire_names_are_celery_names() {
        assert_eq!(serde_json::to_string(&Success).expect("serializes"), "\"SUCCESS\"");
        assert_eq!(serde_json::from_str::<State>("\"REVOKED\"").expect("parses"), Revoked);
        for state in State::ALL {
            assert_eq!(serde_json::to_value(state).expect("serializes"), state.as_str(), "as_str matches serde");
        }
    }
}

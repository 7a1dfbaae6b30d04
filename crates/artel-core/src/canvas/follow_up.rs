//! [`FollowUp`]: what a finished task's workflow does next, decided from its message
//! alone (no I/O), so the worker only carries it out: publish the calls, mark the doomed
//! steps failed, record the chord membership. The calls continue the trace of the run
//! that ended ([`crate::TraceContext::of_run`]).

use serde_json::{Value, json};

use super::{Lineage, chain};
use crate::message::{Embed, Headers};
use crate::signature::Signature;

/// How a task ended, for its workflow.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// It returned this value.
    Succeeded(&'a Value),
    /// It failed for good (no retry left).
    Failed,
}

/// A chord member's outcome to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ChordMember {
    /// The chord's body, published by whoever completes the set.
    pub body: Signature,
    /// The chord's group id.
    pub group: String,
    /// This member's index in the header.
    pub index: u32,
    /// How many members the body says there are (Celery 5 producers leave it to the
    /// backend's `prepare_chord`).
    pub size: Option<u32>,
}

/// What follows a task now that it has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// Where the calls sit in the workflow: their parent is the task that ended.
    pub lineage: Lineage,
    /// Signatures to publish, each with the value it is called with (prepended to its
    /// arguments): link callbacks and the next chain step get the task's value,
    /// errbacks the failed task's id.
    pub calls: Vec<(Signature, Value)>,
    /// Workflow steps that will never run: each of their tasks is to be stored FAILURE
    /// with the task's error, so waiting on them raises instead of hanging.
    pub doomed: Vec<Signature>,
    /// The chord this task is a member of, if any.
    pub chord: Option<ChordMember>,
}

impl FollowUp {
    /// What follows the task of `headers` and `embed`, ended as `ended`.
    pub fn of(headers: &Headers, embed: &Embed, ended: Ended<'_>) -> Self {
        let id = headers.id.as_str();
        let lineage = Lineage {
            parent_id: Some(id.to_owned()),
            root_id: Some(headers.root_id.clone().unwrap_or_else(|| id.to_owned())),
            trace: Some(crate::TraceContext::of_run(headers)),
        };
        let mut calls = Vec::new();
        let mut doomed = Vec::new();
        match ended {
            Ended::Succeeded(value) => {
                calls.extend(embed.callbacks.iter().flatten().map(|callback| (callback.clone(), value.clone())));
                if let Some(next) = next_step(embed) {
                    calls.push((next, value.clone()));
                }
            }
            Ended::Failed => {
                calls.extend(embed.errbacks.iter().flatten().map(|errback| (errback.clone(), json!(id))));
                doomed.extend(embed.chain.iter().flatten().cloned());
            }
        }
        let chord = match (&embed.chord, &headers.group) {
            (Some(body), Some(group)) => Some(ChordMember {
                body: (**body).clone(),
                group: group.clone(),
                index: headers.group_index.unwrap_or(0),
                size: body.extra.get("chord_size").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
            }),
            _ => None,
        };
        Self { lineage, calls, doomed, chord }
    }
}

/// The next chain step, carrying the steps after it (`embed.chain` is kept reversed, as
/// Celery does: the next step last).
fn next_step(embed: &Embed) -> Option<Signature> {
    let mut rest = embed.chain.clone()?;
    let next = rest.pop()?;
    if rest.is_empty() {
        return Some(next);
    }
    rest.push(next);
    rest.reverse();
    Some(chain(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;
    use crate::canvas::Shape;
    use crate::time::SystemClock;

    fn ended_task(embed: Embed, group: Option<(&str, u32)>) -> (Headers, Embed) {
        let mut headers = Signature::new("t").to_message(SystemClock.now(), "test").headers;
        headers.id = "done".to_owned();
        headers.root_id = Some("root".to_owned());
        if let Some((group, index)) = group {
            headers.group = Some(group.to_owned());
            headers.group_index = Some(index);
        }
        (headers, embed)
    }

    fn names(calls: &[(Signature, Value)]) -> Vec<(&str, &Value)> {
        calls.iter().map(|(s, v)| (s.task.as_str(), v)).collect()
    }

    #[test]
    fn a_success_calls_its_links_then_the_next_chain_step_with_its_value() {
        let embed = Embed {
            callbacks: Some(vec![Signature::new("link")]),
            errbacks: Some(vec![Signature::new("on_error")]),
            chain: Some(vec![Signature::new("third"), Signature::new("second")]),
            ..Embed::default()
        };
        let (headers, embed) = ended_task(embed, None);
        let follow_up = FollowUp::of(&headers, &embed, Ended::Succeeded(&json!(5)));
        let expected = Lineage {
            parent_id: Some("done".into()),
            root_id: Some("root".into()),
            trace: Some(crate::TraceContext::of_run(&headers)),
        };
        assert_eq!(follow_up.lineage, expected, "the calls continue the ended run's trace");
        let calls = names(&follow_up.calls);
        assert_eq!(calls[0], ("link", &json!(5)));
        assert_eq!(calls[1].1, &json!(5));
        let Ok(Shape::Chain(steps)) = follow_up.calls[1].0.shape() else { panic!("the rest of the chain") };
        assert_eq!(steps.iter().map(|s| s.task.as_str()).collect::<Vec<_>>(), ["second", "third"]);
        assert!(follow_up.doomed.is_empty() && follow_up.chord.is_none());
    }

    #[test]
    fn the_last_chain_step_is_called_alone() {
        let embed = Embed { chain: Some(vec![Signature::new("last")]), ..Embed::default() };
        let (headers, embed) = ended_task(embed, None);
        let follow_up = FollowUp::of(&headers, &embed, Ended::Succeeded(&json!(1)));
        assert_eq!(names(&follow_up.calls), [("last", &json!(1))]);
    }

    #[test]
    fn a_failure_calls_its_errbacks_with_its_id_and_dooms_the_rest_of_the_chain() {
        let embed = Embed {
            callbacks: Some(vec![Signature::new("link")]),
            errbacks: Some(vec![Signature::new("on_error")]),
            chain: Some(vec![Signature::new("never")]),
            ..Embed::default()
        };
        let (headers, embed) = ended_task(embed, None);
        let follow_up = FollowUp::of(&headers, &embed, Ended::Failed);
        assert_eq!(names(&follow_up.calls), [("on_error", &json!("done"))]);
        assert_eq!(follow_up.doomed.iter().map(|s| s.task.as_str()).collect::<Vec<_>>(), ["never"]);
    }

    #[test]
    fn a_chord_member_records_its_index_and_the_size_the_body_carries() {
        let mut body = Signature::new("collect");
        body.extra.insert("chord_size".to_owned(), json!(3));
        let embed = Embed { chord: Some(Box::new(body.clone())), ..Embed::default() };
        let (headers, embed) = ended_task(embed, Some(("g", 2)));
        for ended in [Ended::Succeeded(&json!(1)), Ended::Failed] {
            let chord = FollowUp::of(&headers, &embed, ended).chord.expect("a member");
            assert_eq!(chord, ChordMember { body: body.clone(), group: "g".into(), index: 2, size: Some(3) });
        }
        let (alone, embed) = ended_task(Embed { chord: Some(Box::new(body)), ..Embed::default() }, None);
        assert!(FollowUp::of(&alone, &embed, Ended::Failed).chord.is_none(), "no group header: not a member");
    }
}

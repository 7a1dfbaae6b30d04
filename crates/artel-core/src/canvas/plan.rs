//! Turning a workflow signature into the messages that start it, as Celery's
//! `apply_async` does: only the first step of a chain is published (the rest travels in
//! its `embed.chain`), every member of a group or chord header is published at once.

use serde_json::{Value, json};

use super::{CanvasError, Shape, chain, chord, group, to_value};
use crate::message::Message;
use crate::signature::Signature;
use crate::time::Timestamp;

/// Where a message sits in a workflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    /// The task whose success published this one.
    pub parent_id: Option<String>,
    /// The workflow's first task.
    pub root_id: Option<String>,
    /// The trace the messages continue, with the span that publishes them as parent.
    pub trace: Option<crate::TraceContext>,
}

impl Lineage {
    /// A new workflow, continuing the trace of the task run in progress here, if any, else
    /// starting a trace.
    pub fn traced() -> Self {
        Self { trace: Some(crate::trace::current().unwrap_or_else(crate::TraceContext::root)), ..Self::default() }
    }
}

/// Where a workflow's result will be.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// One task's result: a task, a chain's last step, a chord's body.
    Task(String),
    /// A group's members' results, in member order.
    Group {
        /// The group id (members' `group` header).
        id: String,
        /// Each member's outcome.
        members: Vec<Outcome>,
    },
}

impl Outcome {
    /// Every task id whose result this outcome is made of.
    pub fn task_ids(&self) -> Vec<&str> {
        match self {
            Outcome::Task(id) => vec![id.as_str()],
            Outcome::Group { members, .. } => members.iter().flat_map(Outcome::task_ids).collect(),
        }
    }
}

/// The messages that start a workflow, and where its result will be.
#[derive(Debug)]
pub struct Plan {
    /// To publish, each to its own queue (`Message::queue`).
    pub messages: Vec<Message>,
    /// Where the result will be.
    pub outcome: Outcome,
    /// Chords started: (group id, member count), for [`crate::Chords::prepare_chord`]
    /// before the messages are published.
    pub chords: Vec<(String, u32)>,
}

/// Publishes `plans`' messages, one batch per queue, in order, after telling `chords` the
/// size of every chord they start (kept `ttl`), as a Python producer does: the one way
/// both a client (`App::apply`) and a worker (follow-ups of a finished task) start work.
pub async fn publish(
    broker: &dyn crate::Broker,
    chords: &dyn crate::Chords,
    plans: Vec<Plan>,
    ttl: Option<std::time::Duration>,
) -> crate::BrokerResult<()> {
    let mut messages = Vec::new();
    for plan in plans {
        for (group, size) in &plan.chords {
            chords.prepare_chord(group, *size, ttl).await?;
        }
        messages.extend(plan.messages);
    }
    for (queue, batch) in by_queue(messages) {
        broker.publish(&queue, &batch).await?;
    }
    Ok(())
}

/// `messages` in publishing batches: one per queue (an empty routing key meaning the
/// default queue), in first-seen order, each keeping the given order.
pub fn by_queue(messages: Vec<Message>) -> Vec<(String, Vec<Message>)> {
    let mut batches: Vec<(String, Vec<Message>)> = Vec::new();
    for message in messages {
        let queue = match message.queue() {
            "" => crate::signature::DEFAULT_QUEUE,
            queue => queue,
        };
        match batches.iter_mut().find(|(q, _)| q == queue) {
            Some((_, batch)) => batch.push(message),
            None => batches.push((queue.to_owned(), vec![message])),
        }
    }
    batches
}

/// Plans `sig` at `now` for producer `origin`; `parent` (a previous step's result) is
/// prepended to the arguments of mutable signatures.
pub fn plan(
    sig: Signature,
    parent: Option<&Value>,
    lineage: &Lineage,
    now: Timestamp,
    origin: &str,
) -> Result<Plan, CanvasError> {
    let mut planner = Planner { now, origin, messages: Vec::new(), chords: Vec::new() };
    let outcome = planner.apply(sig, parent, lineage, Vec::new())?;
    Ok(Plan { messages: planner.messages, outcome, chords: planner.chords })
}

struct Planner<'a> {
    now: Timestamp,
    origin: &'a str,
    messages: Vec<Message>,
    chords: Vec<(String, u32)>,
}

impl Planner<'_> {
    /// `rest` is what follows in an enclosing chain, next step last.
    fn apply(
        &mut self,
        mut sig: Signature,
        parent: Option<&Value>,
        lineage: &Lineage,
        rest: Vec<Signature>,
    ) -> Result<Outcome, CanvasError> {
        match sig.shape()? {
            Shape::Task => {
                if let (Some(value), false) = (parent, sig.immutable) {
                    sig.args.insert(0, value.clone());
                }
                let id = sig.options.task_id.get_or_insert_with(new_id).clone();
                let mut message = sig.message(self.now, self.origin, rest);
                message.headers.parent_id.clone_from(&lineage.parent_id);
                message.headers.root_id = Some(lineage.root_id.clone().unwrap_or_else(|| id.clone()));
                if let Some(trace) = &lineage.trace {
                    trace.put(&mut message.headers);
                }
                self.messages.push(message);
                Ok(Outcome::Task(id))
            }
            Shape::Chain(steps) => {
                let mut steps = normalize(steps)?;
                let outcomes = steps.iter_mut().map(freeze).collect::<Result<Vec<_>, _>>()?;
                let outcome = outcomes.last().cloned().ok_or(CanvasError::EmptyChain)?;
                let first = steps.remove(0);
                let mut ours = steps;
                ours.reverse();
                let mut following = rest;
                following.extend(ours);
                match first.shape()? {
                    Shape::Chord { header, body } if !following.is_empty() => {
                        // The chain goes on after the chord's body.
                        following.reverse();
                        let body = chain(std::iter::once(*body).chain(following));
                        self.apply(with_options(chord(header, body), &first), parent, lineage, Vec::new())?;
                    }
                    Shape::Group(_) if !following.is_empty() => {
                        return Err(CanvasError::Unsupported("a group cannot be followed here".to_owned()));
                    }
                    _ => {
                        self.apply(first, parent, lineage, following)?;
                    }
                }
                Ok(outcome)
            }
            Shape::Group(members) => {
                let Outcome::Group { id, .. } = freeze(&mut sig)? else { unreachable!("a group freezes to a group") };
                let mut outcomes = Vec::with_capacity(members.len());
                for (index, member) in members.into_iter().enumerate() {
                    let member = join_group(member, &id, index, None)?;
                    outcomes.push(self.apply(member, parent, lineage, Vec::new())?);
                }
                Ok(Outcome::Group { id, members: outcomes })
            }
            Shape::Chord { header, body } => {
                let mut body = *body;
                let outcome = freeze(&mut body)?;
                let group_id = sig.options.group_id.clone().unwrap_or_else(new_id);
                body.options.group_id = Some(group_id.clone());
                body.extra.insert("chord_size".to_owned(), json!(header.len()));
                if header.is_empty() {
                    self.apply(body, Some(&json!([])), lineage, Vec::new())?;
                    return Ok(outcome);
                }
                self.chords.push((group_id.clone(), u32::try_from(header.len()).unwrap_or(u32::MAX)));
                for (index, member) in header.into_iter().enumerate() {
                    let member = join_group(member, &group_id, index, Some(&body))?;
                    self.apply(member, parent, lineage, Vec::new())?;
                }
                Ok(outcome)
            }
        }
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn with_options(mut sig: Signature, from: &Signature) -> Signature {
    sig.options = from.options.clone();
    sig
}

/// Flattens nested chains and turns a group followed by more steps into a chord whose
/// body is the rest of the chain (as Celery does).
fn normalize(steps: Vec<Signature>) -> Result<Vec<Signature>, CanvasError> {
    let mut flat = Vec::with_capacity(steps.len());
    for step in steps {
        match step.shape()? {
            Shape::Chain(inner) => flat.extend(normalize(inner)?),
            _ => flat.push(step),
        }
    }
    if flat.is_empty() {
        return Err(CanvasError::EmptyChain);
    }
    if let Some(at) = flat.iter().position(|s| matches!(s.shape(), Ok(Shape::Group(_)))) {
        if at + 1 < flat.len() {
            let mut after = flat.split_off(at + 1);
            let group_sig = flat.pop().ok_or(CanvasError::EmptyChain)?;
            let Shape::Group(members) = group_sig.shape()? else { unreachable!("found as a group") };
            let body = if after.len() == 1 { after.remove(0) } else { chain(after) };
            let mut upgraded = chord(members, body);
            upgraded.options.group_id = group_sig.options.task_id.clone();
            flat.push(upgraded);
        }
    }
    Ok(flat)
}

/// Pre-assigns ids throughout `sig` (keeping any already there) and says where its
/// result will be, so a workflow's result id is known before anything runs.
fn freeze(sig: &mut Signature) -> Result<Outcome, CanvasError> {
    let (rebuilt, outcome) = match sig.shape()? {
        Shape::Task => return Ok(Outcome::Task(sig.options.task_id.get_or_insert_with(new_id).clone())),
        Shape::Chain(mut steps) => {
            let outcomes = steps.iter_mut().map(freeze).collect::<Result<Vec<_>, _>>()?;
            let last = outcomes.last().cloned().ok_or(CanvasError::EmptyChain)?;
            (chain(steps), last)
        }
        Shape::Group(mut members) => {
            let id = sig.options.task_id.get_or_insert_with(new_id).clone();
            let outcomes = members.iter_mut().map(freeze).collect::<Result<Vec<_>, _>>()?;
            (group(members), Outcome::Group { id, members: outcomes })
        }
        Shape::Chord { mut header, mut body } => {
            header.iter_mut().map(freeze).collect::<Result<Vec<_>, _>>()?;
            let outcome = freeze(&mut body)?;
            sig.options.group_id.get_or_insert_with(new_id);
            (chord(header, *body), outcome)
        }
    };
    *sig = with_options(rebuilt, sig);
    Ok(outcome)
}

/// Makes `member` (a task, or a chain whose last step is a task) member `index` of group
/// `group_id`, reporting to chord `body` when there is one.
fn join_group(
    mut member: Signature,
    group_id: &str,
    index: usize,
    body: Option<&Signature>,
) -> Result<Signature, CanvasError> {
    match member.shape()? {
        Shape::Task => {
            member.options.group_id = Some(group_id.to_owned());
            member.options.group_index = u32::try_from(index).ok();
            if let Some(body) = body {
                member.options.extra.insert("chord".to_owned(), to_value(body));
            }
            Ok(member)
        }
        Shape::Chain(mut steps) => {
            let last = steps.pop().ok_or(CanvasError::EmptyChain)?;
            steps.push(join_group(last, group_id, index, body)?);
            Ok(with_options(chain(steps), &member))
        }
        _ => Err(CanvasError::Unsupported(format!(
            "a group's members must be tasks or chains, not a {} (member {index} of group {group_id})",
            member.subtask_type.as_deref().unwrap_or("composite")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Clock, SystemClock};

    fn task(name: &str) -> Signature {
        Signature::new(name)
    }

    fn run(sig: Signature) -> Plan {
        plan(sig, None, &Lineage::default(), SystemClock.now(), "test").expect("plans")
    }

    #[test]
    fn a_chain_publishes_its_first_step_with_the_rest_reversed_and_answers_with_the_last() {
        let p = run(chain([task("a"), task("b"), task("c").immutable()]));
        assert_eq!(p.messages.len(), 1);
        let body = p.messages[0].decode_body().expect("body");
        let rest: Vec<_> = body.embed.chain.expect("rest").into_iter().map(|s| s.task).collect();
        assert_eq!(rest, vec!["c", "b"], "next step last");
        let Outcome::Task(last) = p.outcome else { panic!("one result") };
        let c = &p.messages[0].decode_body().expect("body").embed.chain.expect("rest")[0];
        assert_eq!(c.options.task_id.as_deref(), Some(last.as_str()), "ids are pre-assigned");
    }

    #[test]
    fn group_members_carry_the_group_id_and_their_index() {
        let p = run(group([task("a"), task("b")]));
        let Outcome::Group { id, members } = &p.outcome else { panic!("a group") };
        assert_eq!(members.len(), 2);
        for (i, m) in p.messages.iter().enumerate() {
            assert_eq!((m.headers.group.as_deref(), m.headers.group_index), (Some(id.as_str()), Some(i as u32)));
            assert_eq!(Outcome::Task(m.headers.id.clone()), members[i]);
        }
    }

    #[test]
    fn chord_members_carry_the_body_with_its_size_and_the_chord_answers_with_the_body() {
        let p = run(chord([task("a"), task("b"), task("c")], task("sum")));
        assert_eq!(p.messages.len(), 3);
        let body = p.messages[0].decode_body().expect("body").embed.chord.expect("chord body");
        assert_eq!((body.task.as_str(), body.extra.get("chord_size")), ("sum", Some(&json!(3))));
        assert_eq!(p.outcome, Outcome::Task(body.options.task_id.clone().expect("frozen")));
        assert_eq!(body.options.group_id, p.messages[2].headers.group);
    }

    #[test]
    fn a_group_followed_by_a_step_becomes_a_chord_and_the_chain_goes_on_after_its_body() {
        let p = run(chain([task("a"), group([task("b"), task("c")]), task("d"), task("e")]));
        let rest = p.messages[0].decode_body().expect("body").embed.chain.expect("rest");
        assert_eq!(rest.len(), 1);
        let Ok(Shape::Chord { header, body }) = rest[0].shape() else { panic!("upgraded to a chord") };
        assert_eq!(header.len(), 2);
        let Ok(Shape::Chain(after)) = body.shape() else { panic!("the body is the rest of the chain") };
        let names: Vec<_> = after.iter().map(|s| s.task.as_str()).collect();
        assert_eq!(names, vec!["d", "e"]);
        let Outcome::Task(last) = p.outcome else { panic!("one result") };
        assert_eq!(after[1].options.task_id.as_deref(), Some(last.as_str()));
    }

    #[test]
    fn a_parent_result_is_prepended_unless_immutable() {
        let lineage = Lineage { parent_id: Some("p".to_owned()), root_id: Some("r".to_owned()), trace: None };
        let sig = group([task("a").with_args(vec![json!(1)]), task("b").with_args(vec![json!(1)]).immutable()]);
        let p = plan(sig, Some(&json!(0)), &lineage, SystemClock.now(), "test").expect("plans");
        let args: Vec<_> = p.messages.iter().map(|m| m.decode_body().expect("body").args).collect();
        assert_eq!(args, vec![vec![json!(0), json!(1)], vec![json!(1)]]);
        assert_eq!(p.messages[0].headers.parent_id.as_deref(), Some("p"));
        assert_eq!(p.messages[0].headers.root_id.as_deref(), Some("r"));
    }

    #[test]
    fn a_chord_cannot_be_a_group_member() {
        let err = plan(group([chord([task("a")], task("b"))]), None, &Lineage::default(), SystemClock.now(), "t");
        assert!(matches!(err, Err(CanvasError::Unsupported(_))), "{err:?}");
    }
}

//! What follows a task in its workflow — the next chain step, link callbacks, errbacks,
//! a chord's body — and the `celery.map` / `celery.starmap` built-ins.
//!
//! Follow-ups are published before the task's own message is acknowledged: a worker that
//! dies in between runs the task again and publishes them again (at least once, never lost).

use std::sync::Arc;

use artel_core::canvas::{ChordMember, Ended, FollowUp, Lineage, Plan, plan};
use artel_core::{
    Arguments, BoxFuture, BrokerError, Context, Embed, Handler, Headers, Registry, Signature, TaskError, TaskOptions,
    TaskResult,
};
use serde_json::{Value, json};

use crate::execute::Dispatcher;

impl Dispatcher {
    /// Carries out what follows `headers`' task now that it has ended (see [`FollowUp`]);
    /// an error means some follow-up could not be published and the task's message
    /// should go back to the queue.
    pub(crate) async fn follow_up(
        &self,
        headers: &Headers,
        embed: &Embed,
        outcome: Result<&Value, &TaskError>,
    ) -> Result<(), BrokerError> {
        let ended = outcome.map_or(Ended::Failed, Ended::Succeeded);
        let FollowUp { lineage, calls, doomed, chord } = FollowUp::of(headers, embed, ended);
        let mut plans = Vec::new();
        for (signature, value) in calls {
            self.plan_into(&mut plans, signature, Some(&value), &lineage);
        }
        if let Err(error) = outcome {
            for step in &doomed {
                self.fail_downstream(step, error).await;
            }
        }
        if let Some(member) = chord {
            let id = headers.id.as_str();
            let result = match outcome {
                Ok(value) => TaskResult::success(id, value.clone(), self.clock.now()),
                Err(error) => TaskResult::failure(id, error, self.clock.now()),
            };
            self.chord_part(&mut plans, &member, &result, &lineage).await?;
        }
        self.publish_all(plans).await
    }

    /// Records a chord member and, when it completes the set, plans the body (or fails it).
    async fn chord_part(
        &self,
        plans: &mut Vec<Plan>,
        member: &ChordMember,
        result: &TaskResult,
        lineage: &Lineage,
    ) -> Result<(), BrokerError> {
        let ChordMember { body, group, index, size } = member;
        let Some(parts) = self.chords.chord_part(group, *index, *size, result, self.result_ttl).await? else {
            return Ok(());
        };
        if let Some(culprit) = parts.iter().find(|p| p.status.is_exception()) {
            let cause = culprit.error().map_or_else(|| "an error".to_owned(), |e| e.to_string());
            let error = TaskError::new(
                artel_core::TaskErrorKind::Failed,
                "ChordError",
                format!("Dependency {} raised {cause}", culprit.task_id),
            );
            tracing::warn!(group = %group, %error, "chord failed");
            let body_id = body.options.task_id.clone().unwrap_or_default();
            self.errbacks(plans, body.link_errors().iter(), &body_id, lineage);
            self.fail_downstream(body, &error).await;
            return Ok(());
        }
        let values = Value::Array(parts.into_iter().map(|p| p.result).collect());
        self.plan_into(plans, body.clone(), Some(&values), lineage);
        Ok(())
    }

    /// Plans errbacks, each called with the failed task's id (Celery's one-argument form).
    fn errbacks<'a>(
        &self,
        plans: &mut Vec<Plan>,
        errbacks: impl Iterator<Item = &'a Signature>,
        failed_id: &str,
        lineage: &Lineage,
    ) {
        let id = json!(failed_id);
        for errback in errbacks {
            self.plan_into(plans, errback.clone(), Some(&id), lineage);
        }
    }

    /// Stores FAILURE for every task of a workflow step that will now never run, so
    /// waiting on it raises instead of hanging.
    async fn fail_downstream(&self, step: &Signature, error: &TaskError) {
        let now = self.clock.now();
        let Ok(planned) = plan(step.clone(), None, &Lineage::default(), now, "") else { return };
        for id in planned.outcome.task_ids() {
            if let Err(e) = self.backend.store(&TaskResult::failure(id, error, now), self.result_ttl).await {
                tracing::warn!(id = %id, error = %e, "could not mark a downstream task failed");
            }
        }
    }

    /// Adds the messages of `sig` to `messages`; a malformed signature is logged and skipped
    /// (running the task again would not mend it).
    fn plan_into(&self, plans: &mut Vec<Plan>, sig: Signature, parent: Option<&Value>, lineage: &Lineage) {
        let task = sig.task.clone();
        match plan(sig, parent, lineage, self.clock.now(), &self.origin) {
            Ok(planned) => plans.push(planned),
            Err(e) => tracing::error!(task = %task, error = %e, "cannot run a workflow step"),
        }
    }

    /// Publishes the plans' messages, one batch per queue, in order, after telling the
    /// backend the size of every chord they start.
    pub(crate) async fn publish_all(&self, plans: Vec<Plan>) -> Result<(), BrokerError> {
        artel_core::canvas::publish(self.broker.as_ref(), self.chords.as_ref(), plans, self.result_ttl).await
    }
}

/// The worker-side built-ins of Celery's canvas, when `name` is one.
pub(crate) fn builtin(name: &str, registry: &Arc<Registry>) -> Option<Arc<dyn Handler>> {
    let star = match name {
        "celery.map" => false,
        "celery.starmap" => true,
        _ => return None,
    };
    Some(Arc::new(Iterate { registry: registry.clone(), star }))
}

/// `celery.map` / `celery.starmap`: calls `kwargs.task` once per item of `kwargs.it`, in
/// this run, and returns the list of results.
struct Iterate {
    registry: Arc<Registry>,
    star: bool,
}

impl Handler for Iterate {
    fn call(&self, mut args: Arguments, ctx: Context) -> BoxFuture<'static, Result<Value, TaskError>> {
        let name = if self.star { "celery.starmap" } else { "celery.map" };
        let parsed = args.take::<Signature>(0, "task").and_then(|task| {
            let items = args.take::<Vec<Value>>(1, "it")?;
            args.finish()?;
            Ok((task, items))
        });
        let registry = self.registry.clone();
        let star = self.star;
        Box::pin(async move {
            let (task, items) = parsed.map_err(|e| TaskError::invalid_arguments(name, e))?;
            let handler = registry.get(&task.task).cloned().ok_or_else(|| TaskError::not_registered(&task.task))?;
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let mut call_args = match (star, item) {
                    (true, Value::Array(values)) => values,
                    (true, other) => {
                        return Err(TaskError::invalid_arguments(name, format!("item {other} is not a list")));
                    }
                    (false, value) => vec![value],
                };
                call_args.extend(task.args.iter().cloned());
                results.push(handler.call(Arguments::new(call_args, task.kwargs.clone()), ctx.clone()).await?);
            }
            Ok(Value::Array(results))
        })
    }

    fn options(&self) -> TaskOptions {
        TaskOptions::default()
    }

    fn signature(&self) -> &'static str {
        if self.star {
            "celery.starmap(task: Signature, it: Vec<Vec<Value>>)"
        } else {
            "celery.map(task: Signature, it: Vec<Value>)"
        }
    }
}

//! Conformance for the task history ([`artel_core::TaskHistory`]): the dashboard's
//! recent and failed lists, a task's page and the overview's throughput.

use artel_core::history::Minute;
use artel_core::{Clock, State, SystemClock, TaskFilter, TaskRecord};

use crate::{Fixture, skip};

fn record(id: &str, task: &str, queue: &str, state: State, at_ms: i64) -> TaskRecord {
    TaskRecord {
        task_id: id.to_owned(),
        task: task.to_owned(),
        queue: queue.to_owned(),
        state,
        worker: "conformance@test".to_owned(),
        args: "(1, 2)".to_owned(),
        error: (state == State::Failure).then(|| "RuntimeError: boom".to_owned()),
        retries: 0,
        parent_id: None,
        root_id: Some(id.to_owned()),
        sent_at_ms: Some(at_ms - 5),
        received_at_ms: Some(at_ms - 3),
        started_at_ms: Some(at_ms - 2),
        updated_at_ms: at_ms,
        runtime_ms: state.is_ready().then_some(2),
    }
}

fn ids(records: &[TaskRecord]) -> Vec<&str> {
    records.iter().map(|r| r.task_id.as_str()).collect()
}

/// Each task has one record, its latest; lists are newest first and filter by state,
/// task, queue and time; finished records are counted in their minute; the least
/// recently updated records beyond the bound are dropped.
pub async fn the_task_history_keeps_each_tasks_latest_record_newest_first(f: &Fixture) {
    let Some(history) = f.backend.history() else { return skip(f, "it keeps no task history") };
    let (q1, q2) = (f.queue("h1"), f.queue("h2"));
    let now = SystemClock.now().timestamp_millis();
    let minute = Minute::start(now);
    let at = |n: i64| minute + n;
    history
        .record(&[record("a", "add", &q1, State::Started, at(1)), record("b", "mul", &q2, State::Started, at(2))])
        .await
        .expect("record");
    history
        .record(&[record("a", "add", &q1, State::Success, at(3)), record("b", "mul", &q2, State::Failure, at(4))])
        .await
        .expect("record");
    let all = TaskFilter { limit: 10, ..TaskFilter::default() };
    let listed = history.recent(&all).await.expect("recent");
    assert_eq!(ids(&listed), ["b", "a"], "one record per task, newest first");
    assert_eq!(listed[1], record("a", "add", &q1, State::Success, at(3)), "the whole latest record");
    let failed = history.recent(&TaskFilter { state: Some(State::Failure), ..all.clone() }).await.expect("recent");
    assert_eq!(ids(&failed), ["b"], "by state");
    let started = history.recent(&TaskFilter { state: Some(State::Started), ..all.clone() }).await.expect("recent");
    assert!(started.is_empty(), "a record leaves its old state's list: {started:?}");
    let add = history.recent(&TaskFilter { task: Some("add".into()), ..all.clone() }).await.expect("recent");
    assert_eq!(ids(&add), ["a"], "by task");
    let in_q2 = history.recent(&TaskFilter { queue: Some(q2.clone()), ..all.clone() }).await.expect("recent");
    assert_eq!(ids(&in_q2), ["b"], "by queue");
    let late = history.recent(&TaskFilter { since_ms: Some(at(4)), ..all.clone() }).await.expect("recent");
    assert_eq!(ids(&late), ["b"], "by time");
    let one = history.recent(&TaskFilter { limit: 1, ..all.clone() }).await.expect("recent");
    assert_eq!(ids(&one), ["b"], "at most the limit");
    assert_eq!(history.find("a").await.expect("find").map(|r| r.state), Some(State::Success));
    assert_eq!(history.find("nobody").await.expect("find"), None);
    let minutes = history.throughput(minute - 60_000).await.expect("throughput");
    assert_eq!(minutes, [Minute { at_ms: minute, succeeded: 1, failed: 1 }], "finished records counted once");

    if f.kept == 0 {
        return;
    }
    let more: Vec<TaskRecord> =
        (0..=f.kept).map(|n| record(&format!("n{n}"), "add", &q1, State::Success, at(10 + i64::from(n)))).collect();
    history.record(&more).await.expect("record");
    let kept = history.recent(&all).await.expect("recent");
    let newest: Vec<String> = (1..=f.kept).rev().map(|n| format!("n{n}")).collect();
    assert_eq!(ids(&kept), newest, "the {} most recently updated", f.kept);
    assert_eq!(history.find("a").await.expect("find"), None, "dropped records are gone");
    let minutes = history.throughput(minute).await.expect("throughput");
    let succeeded = 2 + u64::from(f.kept);
    assert_eq!(minutes, [Minute { at_ms: minute, succeeded, failed: 1 }], "counts outlive dropped records");
}

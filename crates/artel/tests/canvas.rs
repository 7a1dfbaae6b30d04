//! Canvas on every broker: chain, group, chord, map/starmap/chunks, link and link_error.

mod common;

use std::time::Duration;

use artel::{AsyncResult, Registry, ResultError, Signature, State, TaskError, TaskErrorKind, WorkerConfig};
use artel::{chain, chord, group};
use serde_json::{Value, json};

#[artel::task]
async fn add(x: i64, y: i64) -> i64 {
    x + y
}

#[artel::task]
async fn mul(x: i64, y: i64) -> i64 {
    x * y
}

#[artel::task]
async fn tsum(values: Vec<i64>) -> i64 {
    values.iter().sum()
}

#[artel::task]
async fn boom(x: i64) -> Result<i64, TaskError> {
    Err(TaskError::new(TaskErrorKind::Failed, "ValueError", format!("boom {x}")))
}

/// Returns whatever it was called with, to show what a callback or errback received.
#[artel::task]
async fn seen(value: Value) -> Value {
    value
}

fn registry() -> Registry {
    Registry::new().with(add).with(mul).with(tsum).with(boom).with(seen)
}

fn config() -> WorkerConfig {
    WorkerConfig { concurrency: 16, prefetch: 16, ..WorkerConfig::default() }
}

const WAIT: Duration = Duration::from_secs(20);

fn sig<T>(typed: artel::TypedSignature<T>) -> Signature {
    typed.into_signature().expect("arguments encode")
}

fn task_error(err: ResultError) -> TaskError {
    match err {
        ResultError::Task { error, .. } => error,
        other => panic!("expected a task error, got {other}"),
    }
}

fn result_of(app: &artel::App, id: &str) -> AsyncResult {
    AsyncResult::new(id.to_owned(), app.backend())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_passes_each_result_on_and_honours_immutable_steps() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        // add(2, 3) = 5 -> mul(5, 10) = 50 -> add(50, 5) = 55
        let partial = |task: &str, arg: i64| Signature::new(task).with_args(vec![json!(arg)]);
        let steps = chain([sig(add::s(2, 3)), partial("mul", 10), partial("add", 5)]);
        let result = app.send_task(steps).await.expect("sent");
        assert_eq!(result.get(WAIT).await.expect("value"), json!(55), "{name}");
        let frozen = chain([sig(add::s(1, 1)), sig(add::s(7, 8)).immutable()]);
        assert_eq!(app.send_task(frozen).await.expect("sent").get(WAIT).await.expect("value"), json!(15), "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_returns_results_in_member_order() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let members = (0..10).map(|i| sig(add::s(i, i)));
        let result = app.send_group(group(members)).await.expect("sent");
        let values = result.get(WAIT).await.expect("values");
        assert_eq!(values, (0..10).map(|i| json!(i * 2)).collect::<Vec<_>>(), "{name}");
        assert!(result.ready().await.expect("ready"), "{name}");
        assert_eq!(result.completed_count().await.expect("count"), 10, "{name}");
        assert!(result.successful().await.expect("successful"), "{name}");
        result.save().await.expect("save");
        let restored = artel::GroupResult::restore(result.id(), app.backend()).await.expect("restore");
        let restored = restored.expect("saved, so found by its id");
        assert_eq!(restored.get(WAIT).await.expect("values"), values, "{name}: the same members, in order");
        let missing = artel::GroupResult::restore("no-such-group", app.backend()).await.expect("restore");
        assert!(missing.is_none(), "{name}");
        let err = app.send(group([sig(add::s(1, 1))])).await.expect_err("a group has many results");
        assert!(err.to_string().contains("send_group"), "{name}: {err}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chord_calls_its_body_once_with_every_result_in_order() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let header = (0..50).map(|i| sig(add::s(i, 1)));
        let result = app.send_task(chord(header, sig(tsum::s(vec![])).immutable())).await;
        // An immutable body gets nothing prepended: tsum([]) = 0 proves the flag holds.
        assert_eq!(result.expect("sent").get(WAIT).await.expect("value"), json!(0), "{name}");
        let header = (0..50).map(|i| sig(add::s(i, 1)));
        let body = Signature::new("tsum");
        let result = app.send_task(chord(header, body)).await.expect("sent");
        assert_eq!(result.get(WAIT).await.expect("value"), json!((1..=50).sum::<i64>()), "{name}");
        let empty = app.send_task(chord(Vec::new(), Signature::new("tsum"))).await.expect("sent");
        assert_eq!(empty.get(WAIT).await.expect("value"), json!(0), "{name}: an empty header calls the body at once");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_member_fails_the_chord_with_a_clear_error_and_calls_its_errback() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let errback_id = uuid::Uuid::new_v4().to_string();
        let body = Signature::new("tsum").link_error(Signature::new("seen").task_id(errback_id.clone()));
        let failing_id = uuid::Uuid::new_v4().to_string();
        let header = [sig(add::s(1, 1)), sig(boom::s(7)).task_id(failing_id.clone()), sig(add::s(2, 2))];
        let result = app.send_task(chord(header, body)).await.expect("sent");
        let error = task_error(result.get(WAIT).await.expect_err("the chord fails"));
        assert_eq!(error.exc_type(), "ChordError", "{name}");
        assert!(error.message().contains(&failing_id), "{name}: names the member: {error}");
        assert!(error.message().contains("ValueError: boom 7"), "{name}: and its error: {error}");
        let errback = result_of(&app, &errback_id).get(WAIT).await.expect("errback ran");
        assert_eq!(errback, json!(result.id()), "{name}: the errback got the body's id");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chain_step_fails_the_steps_after_it() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let result = app
            .send_task(chain([
                sig(add::s(1, 1)),
                Signature::new("boom"),
                Signature::new("add").with_args(vec![json!(1)]),
            ]))
            .await;
        let error = task_error(result.expect("sent").get(WAIT).await.expect_err("fails"));
        assert_eq!((error.exc_type(), error.message()), ("ValueError", "boom 2"), "{name}: the step's own error");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_inside_a_chain_becomes_a_chord() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let steps = chain([
            sig(add::s(1, 2)),
            group([Signature::new("add").with_args(vec![json!(10)]), Signature::new("mul").with_args(vec![json!(10)])]),
            Signature::new("tsum"),
            Signature::new("mul").with_args(vec![json!(2)]),
        ]);
        // 3 -> [13, 30] -> 43 -> 86
        assert_eq!(app.send_task(steps).await.expect("sent").get(WAIT).await.expect("value"), json!(86), "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_starmap_and_chunks_run_a_task_over_items() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let mapped = app.send_task(Signature::new("seen").map(vec![json!(1), json!("two")])).await.expect("sent");
        assert_eq!(mapped.get(WAIT).await.expect("value"), json!([1, "two"]), "{name}");
        let pairs: Vec<Vec<Value>> = (0..5).map(|i| vec![json!(i), json!(i)]).collect();
        let starred = app.send_task(Signature::new("mul").starmap(pairs.clone())).await.expect("sent");
        assert_eq!(starred.get(WAIT).await.expect("value"), json!([0, 1, 4, 9, 16]), "{name}");
        let chunked = app.send_group(Signature::new("add").chunks(pairs, 2)).await.expect("sent");
        let chunks = chunked.get(WAIT).await.expect("values");
        assert_eq!(chunks, vec![json!([0, 2]), json!([4, 6]), json!([8])], "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_stream_and_chunks_stream_yield_each_call_once_as_it_finishes() {
    use futures_util::StreamExt as _;
    for (name, app, _cleanup) in common::apps(registry, config).await {
        // 2,000 calls, at most 100 in flight; one fails.
        let calls =
            futures_util::stream::iter(0..2000i64).map(|i| if i == 7 { sig(boom::s(i)) } else { sig(add::s(i, i)) });
        let mut outcomes: Vec<(usize, Result<Value, TaskError>)> = app.map_stream(calls, 100).collect().await;
        outcomes.sort_by_key(|(index, _)| *index);
        assert_eq!(outcomes.len(), 2000, "{name}");
        for (index, outcome) in &outcomes {
            let i = i64::try_from(*index).expect("index");
            match outcome {
                Ok(value) => assert_eq!(*value, json!(i * 2), "{name}: call {index}"),
                Err(error) => assert_eq!((i, error.message()), (7, "boom 7"), "{name}"),
            }
        }
        let items = futures_util::stream::iter((0..5).map(|i| vec![json!(i), json!(i)]));
        let mut chunks: Vec<(usize, Result<Value, TaskError>)> =
            app.chunks_stream(&Signature::new("add"), items, 2, 2).collect().await;
        chunks.sort_by_key(|(index, _)| *index);
        let values: Vec<Value> = chunks.into_iter().map(|(_, r)| r.expect("chunk")).collect();
        assert_eq!(values, vec![json!([0, 2]), json!([4, 6]), json!([8])], "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_gets_the_result_and_link_error_gets_the_failed_task_id() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let (callback_id, errback_id) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
        let ok = sig(add::s(20, 22)).link(Signature::new("seen").task_id(callback_id.clone()));
        let ok = app.send_task(ok).await.expect("sent");
        assert_eq!(result_of(&app, &callback_id).get(WAIT).await.expect("callback"), json!(42), "{name}");
        assert_eq!(ok.get(WAIT).await.expect("value"), json!(42), "{name}");
        let bad = sig(boom::s(1)).link_error(Signature::new("seen").task_id(errback_id.clone()));
        let bad = app.send_task(bad).await.expect("sent");
        assert_eq!(result_of(&app, &errback_id).get(WAIT).await.expect("errback"), json!(bad.id()), "{name}");
        assert_eq!(bad.state().await.expect("state"), State::Failure, "{name}");
        app.shutdown().await;
    }
}

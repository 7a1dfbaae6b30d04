//! `artel map --task http` against a slow, rate-limiting server on loopback: 20,000 calls
//! at concurrency 1,000 end with every item ok, the 429s retried (`Retry-After`
//! honoured) and connections reused from the pool rather than opened per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde_json::Value;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    turned_away: AtomicU64,
    connections: AtomicU64,
}

/// Answers after 100 ms: one request in five gets 429 (half of those with `Retry-After: 0`),
/// the rest 200 with the `i` they asked about.
async fn item(
    State(counts): State<Arc<Counts>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, HeaderMap, String) {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let roll = fastrand::u8(0..10);
    if roll < 2 {
        counts.turned_away.fetch_add(1, Ordering::Relaxed);
        let mut headers = HeaderMap::new();
        if roll == 0 {
            headers.insert("retry-after", "0".parse().expect("header value"));
        }
        return (StatusCode::TOO_MANY_REQUESTS, headers, "slow down".to_owned());
    }
    (StatusCode::OK, HeaderMap::new(), query.get("i").cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_http_calls_at_concurrency_1000_all_end_ok_despite_429s() {
    let counts = Arc::new(Counts::default());
    let connections = counts.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let listener = listener.tap_io(move |_| {
        connections.connections.fetch_add(1, Ordering::Relaxed);
    });
    let app = axum::Router::new().route("/item", get(item)).with_state(counts.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("artel-map-http-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (input, output) = (dir.join("items.txt"), dir.join("out.jsonl"));
    let items = 20_000u64;
    std::fs::write(&input, (0..items).map(|i| format!("{i}\n")).collect::<String>()).expect("input");
    let template = format!("[\"http://{address}/item?i={{}}\"]");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["map", "--task", "http", "--enable", "http", "-c", "1000", "--quiet", "--args", &template])
        .args(["--input", &input.display().to_string(), "--output", &output.display().to_string()])
        // The task retries a 429 three times; the map retries the rare item turned away four times.
        .args(["--retries", "3", "--backoff", "0.05"])
        .env_remove("ARTEL_BROKER")
        .env("ARTEL_HTTP_MAX_PER_HOST", "1000")
        .output()
        .await
        .expect("run artel map");
    server.abort();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let text = std::fs::read_to_string(&output).expect("output");
    let mut seen = vec![false; usize::try_from(items).expect("items")];
    for line in text.lines() {
        let result: Value = serde_json::from_str(line).expect("a JSON line");
        let index = result["index"].as_u64().expect("index");
        assert_eq!(result["ok"]["status"], 200, "{line}");
        assert_eq!(result["ok"]["body"], index.to_string(), "{line}");
        let slot = seen.get_mut(usize::try_from(index).expect("index")).expect("an index of the input");
        assert!(!*slot, "index {index} written twice");
        *slot = true;
    }
    assert!(seen.iter().all(|s| *s), "every item written");
    let (requests, turned_away, connections) = (
        counts.requests.load(Ordering::Relaxed),
        counts.turned_away.load(Ordering::Relaxed),
        counts.connections.load(Ordering::Relaxed),
    );
    eprintln!("{requests} requests, {turned_away} turned away, {connections} connections");
    assert_eq!(requests, items + turned_away, "each 429 retried once more, nothing else repeated");
    assert!(turned_away > items / 10, "the server turned some away ({turned_away})");
    assert!(connections <= 1_200, "{connections} connections for {requests} requests: the pool was not reused");
    let _ = std::fs::remove_dir_all(dir);
}

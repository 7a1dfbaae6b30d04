//! Python (cotyledon, supervisord):
//! ```python
//! manager = cotyledon.ServiceManager()
//! manager.add(Worker, workers=2)        # two copies, each its own process, restarted
//! manager.run()                         # when they die; SIGTERM stops them all
//! ```
//! artel's [`Supervisor`] (`artel supervise --config FILE` for any programs,
//! `ServiceManager` for Rust services) keeps N copies of each program running: a copy
//! that dies is restarted with a doubling pause, a crash loop is marked failed instead
//! of restarted forever, and a stop is SIGTERM to each copy's process group, then
//! SIGKILL after a grace period, so no grandchild is left behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::ensure;
use artel::supervise::{Program, Settings, State, Supervisor};

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let runs = std::env::temp_dir().join(format!("artel-recipe-runs-{}", uuid::Uuid::new_v4()));
    let outcome = crate::runtime()?.block_on(supervised(&runs));
    let _ = std::fs::remove_file(&runs);
    outcome
}

async fn supervised(runs: &std::path::Path) -> anyhow::Result<()> {
    let sh = |script: String| vec!["sh".to_owned(), "-c".to_owned(), script];
    let steady = Program {
        name: "steady".to_owned(),
        command: sh(format!("echo steady >> {}; exec sleep 60", runs.display())),
        env: BTreeMap::new(),
        copies: 2,
    };
    // Dies 100 ms after each start.
    let crashing = Program {
        name: "crashing".to_owned(),
        command: sh(format!("echo crashing >> {}; sleep 0.1; exit 3", runs.display())),
        env: BTreeMap::new(),
        copies: 1,
    };
    let settings = Settings {
        grace: Duration::from_secs(2),
        backoff: (Duration::from_millis(50), Duration::from_millis(400)),
        healthy_after: Duration::from_secs(5),
        crash_loop: 4,
    };
    let mut supervisor = Supervisor::new(settings);
    let board = supervisor.board();
    supervisor.apply(&[steady, crashing]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let copies = board.snapshot();
        if let Some(copy) = copies.iter().find(|c| c.service == "crashing" && c.state == State::Failed) {
            break copy.clone();
        }
        ensure!(Instant::now() < deadline, "the crashing copy is marked failed within 20 s: {copies:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let copies = board.snapshot();
    let steady: Vec<_> = copies.iter().filter(|c| c.service == "steady").collect();
    ensure!(steady.len() == 2 && steady.iter().all(|c| c.state == State::Running && c.restarts == 0), "{steady:?}");
    let text = std::fs::read_to_string(runs)?;
    let starts = text.lines().filter(|l| *l == "crashing").count();
    ensure!(starts == 4, "started 4 times before it was marked failed: {starts}");
    println!(
        "2 steady copies running; the crashing one restarted {} times with a doubling pause, then marked failed ({})",
        failed.restarts,
        failed.last_exit.unwrap_or_default()
    );

    let started = Instant::now();
    supervisor.stop().await;
    let stopped = board.snapshot();
    ensure!(stopped.iter().all(|c| c.state != State::Running), "every copy stopped: {stopped:?}");
    println!("stopped with SIGTERM in {} ms", started.elapsed().as_millis());
    Ok(())
}

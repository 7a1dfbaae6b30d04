//! `artel beat` as a process: it sends its schedule's fires, lists them, and picks up an
//! edited schedule without a restart.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artel::connect;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        artel::sqlite::remove_database(format!("{}.db", self.0.display()));
        for suffix in [".toml", ".state"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

const TICK: &str = "[[schedule]]\nname = \"tick\"\ntask = \"echo\"\nargs = [\"tick\"]\nevery = \"1s\"\n";

fn artel(url: &str, schedule: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artel"));
    command.args(["--broker", url, "beat", "--schedule", schedule]);
    command
}

async fn waiting(url: &str, queue: &str) -> u64 {
    let connection = connect(url).await.expect("open");
    connection.backend.broker().len(queue).await.expect("len")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_sends_each_fire_lists_entries_and_picks_up_an_edited_schedule() {
    let scratch = Scratch(std::env::temp_dir().join(format!("artel-beat-{}", uuid::Uuid::new_v4())));
    let (url, schedule) = (format!("sqlite://{}.db", scratch.0.display()), format!("{}.toml", scratch.0.display()));
    std::fs::write(&schedule, TICK).expect("schedule");

    let listed = artel(&url, &schedule).arg("--list").output().expect("list");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && listing.contains("tick") && listing.contains("every 1s"), "{listing}");

    let mut beat = artel(&url, &schedule).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start beat");
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting(&url, "celery").await < 2 {
        assert!(Instant::now() < deadline, "no fires sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let extra = format!("{TICK}[[schedule]]\nname = \"other\"\ntask = \"echo\"\nqueue = \"other\"\nevery = \"1s\"\n");
    std::fs::write(&schedule, extra).expect("edit");
    while waiting(&url, "other").await < 1 {
        assert!(Instant::now() < deadline, "the edited schedule was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill").args(["-TERM", &beat.id().to_string()]).status().expect("kill");
    let status = beat.wait().expect("beat exits");
    assert!(status.success(), "a clean stop: {status}");
    let sent = waiting(&url, "celery").await;
    assert!((2..=12).contains(&sent), "about one a second: {sent}");
}

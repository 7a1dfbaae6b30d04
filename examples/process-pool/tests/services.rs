//! The `services` example under real signals: two copies start as processes of their own
//! and SIGTERM stops both cleanly (their `terminate` made `run` return).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok()))
                == Some(parent)
        })
        .collect()
}

#[test]
fn two_copies_run_as_processes_and_sigterm_stops_them_cleanly() {
    let notes = std::env::temp_dir().join(format!("artel-services-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&notes).expect("notes dir");
    let mut manager = Command::new(env!("CARGO_BIN_EXE_services"))
        .env("TICKER_NOTES", &notes)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the services");
    let deadline = Instant::now() + Duration::from_secs(10);
    let copies = loop {
        let copies = children_of(manager.id());
        if copies.len() == 2 {
            break copies;
        }
        assert!(Instant::now() < deadline, "two copies did not start: {copies:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    Command::new("kill").args(["-TERM", &manager.id().to_string()]).status().expect("kill");
    let status = manager.wait().expect("the manager exits");
    assert!(status.success(), "{status}");
    let mut stopped: Vec<String> =
        std::fs::read_dir(&notes).expect("notes").filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    stopped.sort();
    let mut expected: Vec<String> = copies.iter().map(|pid| format!("stopped-{pid}")).collect();
    expected.sort();
    assert_eq!(stopped, expected, "each copy's run returned after terminate");
    let _ = std::fs::remove_dir_all(&notes);
}

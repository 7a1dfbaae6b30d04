//! An artel worker binary whose tasks may crash or run away, to run with
//! `--pool processes` (its test shows each failure stays in its child):
//!
//! ```sh
//! cargo run -p process-pool --bin process-worker -- worker --pool processes -c 2
//! ```

use artel::{Registry, TaskError};

/// This task's process id: the child that ran it.
#[artel::task(blocking)]
fn whoami() -> u32 {
    std::process::id()
}

/// Aborts the process that runs it, as a crash in native code would.
#[artel::task(blocking)]
fn crash() -> Result<u32, TaskError> {
    std::process::abort()
}

/// Spins forever: only killing its process stops it.
#[artel::task(blocking)]
fn spin() -> u32 {
    loop {
        std::hint::spin_loop();
    }
}

/// Notes its run in `runs`, then aborts its process; declared to run in a child and to
/// be delivered again when that child dies.
#[artel::task(blocking, process, reject_on_worker_lost)]
fn crash_again(runs: String) -> Result<u32, TaskError> {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&runs) {
        let _ = writeln!(file, "run");
    }
    std::process::abort()
}

fn main() -> std::process::ExitCode {
    artel::cli::main(Registry::new().with(whoami).with(crash).with(spin).with(crash_again))
}

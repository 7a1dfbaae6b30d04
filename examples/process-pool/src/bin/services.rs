//! Rust services under artel's service manager, cotyledon-style: two copies of a ticker,
//! each its own process, restarted if it dies, stopped gracefully on SIGTERM.
//!
//! ```sh
//! cargo run -p process-pool --bin services      # Ctrl-C stops both copies
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use artel::supervise::{Service, ServiceManager, Settings};

/// Ticks until told to stop, then notes that it stopped cleanly.
struct Ticker {
    stop: AtomicBool,
    notes: PathBuf,
}

impl Service for Ticker {
    fn run(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::write(self.notes.join(format!("stopped-{}", std::process::id())), "clean");
    }

    fn terminate(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn main() -> std::io::Result<()> {
    let notes = std::env::var_os("TICKER_NOTES").map_or_else(std::env::temp_dir, PathBuf::from);
    let settings = Settings { grace: Duration::from_secs(2), ..Settings::default() };
    ServiceManager::new()
        .settings(settings)
        .add("ticker", 2, move || Ticker { stop: AtomicBool::new(false), notes: notes.clone() })
        .run()
}

//! [`ServiceManager`]: Rust services in N supervised copies each, cotyledon-style. The
//! program starts itself again once per copy, in the service role (`ARTEL_SERVICE`
//! names the service), so every copy is a process of its own: a crash or a leak stays in
//! its copy, which is restarted.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use crate::program::Program;
use crate::run::{OnHangup, supervise};
use crate::supervisor::Settings;

/// The environment variable that names the service a copy runs.
pub const SERVICE_ENV: &str = "ARTEL_SERVICE";

/// A long-running service, run in its own process.
pub trait Service: Send + Sync + 'static {
    /// Runs until [`Service::terminate`] makes it return (or it ends by itself, and is
    /// restarted).
    fn run(&self);

    /// Called from another thread on SIGTERM: make `run` return soon (the supervisor
    /// kills the copy after its grace period otherwise).
    fn terminate(&self);

    /// Called from another thread on SIGHUP.
    fn reload(&self) {}
}

type Factory = Arc<dyn Fn() -> Arc<dyn Service> + Send + Sync>;

/// Services and how many copies of each; [`ServiceManager::run`] supervises them.
#[derive(Default)]
pub struct ServiceManager {
    services: Vec<(String, usize, Factory)>,
    settings: Settings,
}

impl std::fmt::Debug for ServiceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, usize)> = self.services.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
        f.debug_struct("ServiceManager").field("services", &names).finish()
    }
}

impl ServiceManager {
    /// No services yet, default timings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restart and stop timings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Runs `copies` copies of the service `make` builds (once per copy, in the copy).
    pub fn add<S, F>(mut self, name: &str, copies: usize, make: F) -> Self
    where
        S: Service,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.services.push((name.to_owned(), copies, Arc::new(move || Arc::new(make()) as Arc<dyn Service>)));
        self
    }

    /// In the supervisor: starts every copy and supervises them until SIGTERM or SIGINT
    /// (SIGHUP is passed on to the copies). In a copy: runs its service, then exits.
    pub fn run(self) -> std::io::Result<()> {
        if let Some(name) = std::env::var_os(SERVICE_ENV) {
            let name = name.to_string_lossy().into_owned();
            let Some((_, _, make)) = self.services.iter().find(|(n, ..)| *n == name) else {
                return Err(std::io::Error::other(format!("no service named {name:?} in this program")));
            };
            run_copy(make());
        }
        let program = std::env::current_exe()?.to_string_lossy().into_owned();
        let programs = self
            .services
            .iter()
            .map(|(name, copies, _)| Program {
                name: name.clone(),
                command: vec![program.clone()],
                env: [(SERVICE_ENV.to_owned(), name.clone())].into(),
                copies: *copies,
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(supervise(self.settings, programs, OnHangup::Forward, None))
    }
}

/// A copy's life: signals call `terminate`/`reload` from a thread of their own while
/// `run` runs here; the process exits when `run` returns.
fn run_copy(service: Arc<dyn Service>) -> ! {
    let signalled = service.clone();
    let listening = std::thread::Builder::new().name("artel-service-signals".to_owned()).spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async move {
            let (Ok(mut terminate), Ok(mut hangup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = terminate.recv() => signalled.terminate(),
                    _ = hangup.recv() => signalled.reload(),
                }
            }
        });
    });
    if let Err(error) = listening {
        eprintln!("artel service {}: cannot watch for signals: {error}", std::process::id());
    }
    service.run();
    std::process::exit(0)
}

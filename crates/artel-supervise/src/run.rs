//! Running a supervisor as a process does: until SIGTERM or SIGINT, reloading on SIGHUP,
//! answering status requests on a Unix socket.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::program::Program;
use crate::supervisor::{Board, CopyStatus, Settings, Supervisor};

/// What SIGHUP does.
pub enum OnHangup {
    /// Re-read the programs (`None`: keep the current ones, the reason already logged)
    /// and converge on them.
    Reload(Box<dyn FnMut() -> Option<Vec<Program>> + Send>),
    /// Pass SIGHUP on to every running copy (services reload themselves).
    Forward,
}

impl std::fmt::Debug for OnHangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnHangup::Reload(_) => "Reload",
            OnHangup::Forward => "Forward",
        })
    }
}

/// Runs `programs` until SIGTERM or SIGINT, then stops every copy (SIGTERM, SIGKILL after
/// the grace period) and returns; `socket` (if any) answers `artel supervise status`.
pub async fn supervise(
    settings: Settings,
    programs: Vec<Program>,
    mut on_hangup: OnHangup,
    socket: Option<&Path>,
) -> std::io::Result<()> {
    let (mut terminate, mut interrupt, mut hangup) =
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?, signal(SignalKind::hangup())?);
    let mut supervisor = Supervisor::new(settings);
    let listener = socket.map(|path| serve_status(path, supervisor.board())).transpose()?;
    supervisor.apply(&programs).await;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match &mut on_hangup {
                OnHangup::Reload(reload) => {
                    if let Some(programs) = reload() {
                        tracing::info!("reloading: converging on the new configuration");
                        supervisor.apply(&programs).await;
                    }
                }
                OnHangup::Forward => {
                    for copy in supervisor.board().snapshot() {
                        if let Some(pid) = copy.pid.and_then(|p| rustix::process::Pid::from_raw(p.try_into().unwrap_or(0))) {
                            let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
                        }
                    }
                }
            },
        }
    }
    tracing::info!("stopping every service");
    supervisor.stop().await;
    if let Some((task, path)) = listener {
        task.abort();
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Answers every connection on `path` with the board as JSON.
fn serve_status(path: &Path, board: Board) -> std::io::Result<(tokio::task::JoinHandle<()>, PathBuf)> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::other(format!(
            "{} answers already: another supervisor runs with this configuration",
            path.display()
        )));
    }
    // Left by a supervisor that was killed: nobody answers on it.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", path.display())))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => answer(stream, &board).await,
                Err(error) => {
                    tracing::warn!(%error, "status socket");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((task, path.to_owned()))
}

/// The statuses a running supervisor reports on `path`.
pub async fn status(path: &Path) -> std::io::Result<Vec<CopyStatus>> {
    let mut stream = UnixStream::connect(path).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("no supervisor answers on {}: is `artel supervise` running? ({e})", path.display()),
        )
    })?;
    let mut text = Vec::new();
    stream.read_to_end(&mut text).await?;
    serde_json::from_slice(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

async fn answer(mut stream: UnixStream, board: &Board) {
    if let Ok(json) = serde_json::to_vec(&board.snapshot()) {
        let _ = stream.write_all(&json).await;
    }
}

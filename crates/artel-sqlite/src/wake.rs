//! Wake-ups between processes that share the database file (Unix). A process whose
//! consumers wait for messages binds a datagram socket `<pid>-<id>-p.sock` in
//! `<file>.wake/`, one whose result waiters wait binds `…-r.sock`; a process that
//! publishes (or hands a message back) sends one byte to every other `-p` socket there,
//! one that stores a result to every other `-r` socket. So a worker in another process
//! starts a task within a millisecond of its publish, not at its next poll.
//!
//! A sender lists the directory again whenever its modification time changed, so a
//! process that starts waiting is woken from its first wait on. Best effort by design: a
//! lost datagram, a full socket buffer or a system without Unix sockets leaves the change
//! to the poll (`poll_interval`, `result_poll`), as before. A socket whose process died
//! refuses the datagram and is removed; a process removes its own sockets when its broker
//! is dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use artel_core::{StoreSignal, lock};
use tokio::sync::watch;

/// Longer than a file time's tick: a listing made this long after the directory last
/// changed saw every socket bound until then.
const RACY: Duration = Duration::from_millis(20);

/// What a wake-up is about; each has its own sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    /// Messages were published or handed back: consumers look.
    Published,
    /// Results were stored: waiters read.
    Stored,
}

impl Topic {
    fn suffix(self) -> &'static str {
        match self {
            Topic::Published => "-p.sock",
            Topic::Stored => "-r.sock",
        }
    }
}

/// The sockets of one database file, for this process (see the module docs).
#[derive(Debug)]
pub(crate) struct Wake {
    dir: PathBuf,
    /// Unbound, non-blocking: sends never wait.
    sender: Option<std::os::unix::net::UnixDatagram>,
    /// Per topic: the other processes' sockets, and the directory's modification time
    /// when they were listed (a socket bound or removed changes it).
    peers: [Mutex<(Option<SystemTime>, Vec<PathBuf>)>; 2],
    /// Per topic: this process's socket and the task reading it, once something waits.
    own: [Mutex<Option<Listening>>; 2],
}

#[derive(Debug)]
struct Listening {
    path: PathBuf,
    reader: tokio::task::JoinHandle<()>,
}

impl Wake {
    /// The wake-ups of the database file at `db`.
    pub(crate) fn new(db: &Path) -> Self {
        let sender = std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s));
        Self {
            dir: PathBuf::from(format!("{}.wake", db.display())),
            sender: sender.ok(),
            peers: Default::default(),
            own: Default::default(),
        }
    }

    /// Starts this process's socket for `topic` (once; needs a runtime): what arrives
    /// bumps `published` or signals `stored`. Where it cannot be bound, polling stays.
    pub(crate) fn listen(&self, topic: Topic, published: &Arc<watch::Sender<u64>>, stored: &Arc<StoreSignal>) {
        let mut own = lock(&self.own[topic as usize]);
        if own.is_some() {
            return;
        }
        let name =
            format!("{}-{}{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8], topic.suffix());
        let path = self.dir.join(name);
        let bound = std::fs::create_dir_all(&self.dir).and_then(|()| tokio::net::UnixDatagram::bind(&path));
        let socket = match bound {
            Ok(socket) => socket,
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "no wake-up socket; other processes' changes are polled");
                return;
            }
        };
        let (published, stored) = (published.clone(), stored.clone());
        let reader = tokio::spawn(async move {
            let mut byte = [0u8; 16];
            while socket.recv(&mut byte).await.is_ok() {
                match topic {
                    Topic::Published => published.send_modify(|n| *n = n.wrapping_add(1)),
                    Topic::Stored => stored.stored(),
                }
            }
        });
        *own = Some(Listening { path, reader });
    }

    /// Wakes the other processes listening for `topic`.
    pub(crate) fn send(&self, topic: Topic) {
        let Some(sender) = &self.sender else { return };
        let mut peers = lock(&self.peers[topic as usize]);
        let changed = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        match changed {
            // Nobody ever waited on this file.
            None => *peers = (None, Vec::new()),
            // File times tick coarsely (a few ms): a socket bound in the tick of the
            // last listing leaves the time as it was, so a listing made within a tick of
            // the last change is made again.
            Some(at) if changed != peers.0 || at.elapsed().unwrap_or_default() < RACY => {
                let own = lock(&self.own[topic as usize]).as_ref().map(|l| l.path.clone());
                *peers = (changed, self.sockets(topic, own.as_deref()));
            }
            Some(_) => {}
        }
        peers.1.retain(|path| match sender.send_to(&[1], path) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
                // Its process is gone.
                let _ = std::fs::remove_file(path);
                false
            }
            // Sent, or its buffer is full: it has a wake-up pending already.
            _ => true,
        });
    }

    /// The sockets for `topic` in the directory, but `own`.
    fn sockets(&self, topic: Topic, own: Option<&Path>) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.to_string_lossy().ends_with(topic.suffix()) && Some(path.as_path()) != own)
            .collect()
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        for own in &self.own {
            if let Some(listening) = lock(own).take() {
                listening.reader.abort();
                let _ = std::fs::remove_file(&listening.path);
            }
        }
    }
}

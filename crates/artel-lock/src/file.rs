//! [`FileLocks`]: locks shared by the processes of one machine, one file per key.
//!
//! A lock is an exclusive `flock` on `DIR/KEY.lock`: the kernel releases it when the
//! holder closes the file or dies, so a killed holder never leaves it stuck. The file
//! holds the last fencing token; a holder reads and advances it while it holds the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use async_trait::async_trait;
use rustix::fs::{FlockOperation, flock};

use crate::{Guard, LockError, Locks, check_key};

/// Locks across processes, as files in one directory.
#[derive(Debug, Clone)]
pub struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    /// Locks kept in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Locks for FileLocks {
    async fn try_acquire(&self, key: &str) -> Result<Option<Guard>, LockError> {
        check_key(key)?;
        let io = |source: std::io::Error| LockError::Io { key: key.to_owned(), source };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.dir.join(format!("{key}.lock"));
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(errno) => return Err(io(errno.into())),
        }
        let fence = advance(&mut file).map_err(io)?;
        Ok(Some(Guard::new(key, fence, file)))
    }
}

/// Reads the last fence from the held file and writes the next one back.
fn advance(file: &mut File) -> std::io::Result<u64> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    let fence = text.trim().parse::<u64>().unwrap_or(0) + 1;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(fence.to_string().as_bytes())?;
    Ok(fence)
}

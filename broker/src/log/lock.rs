//! The data-dir lock: two brokers writing the same segments would interleave entries and each
//! would believe its own flushed offsets, so a second open must fail loudly and say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{BrokerError, Result};

/// Holds an exclusive `flock` on `<dir>/.lock` until dropped. flock locks belong to the open
/// file description, so a second open in the *same* process conflicts too.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(".lock");
        // No truncate on open: the file holds the current holder's pid, which we must be able
        // to read back if the lock turns out to be taken.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| BrokerError::io("open data-dir lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "holder pid unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                return Err(BrokerError::DataDirLocked { dir: dir.to_path_buf(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(BrokerError::io("lock data dir", &path, e)),
        }
        file.set_len(0).map_err(|e| BrokerError::io("clear data-dir lock", &path, e))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| BrokerError::io("write pid to data-dir lock", &path, e))?;
        tracing::info!(file = %path.display(), pid = std::process::id(), "data dir locked");
        Ok(DirLock { file, path })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the fd would release it anyway; unlocking explicitly makes the release
        // independent of any fd the process may have duplicated.
        if let Err(e) = self.file.unlock() {
            tracing::warn!(file = %self.path.display(), error = %e, "unlocking data dir failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_dir_and_pid_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BrokerError::DataDirLocked { .. }));
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}

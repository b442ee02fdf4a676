//! What a killed run leaves behind. Work that is renamed into place when done (pip's download
//! directory, the archive's staging directory, the registry import's staging directory, an
//! image layout's blobs and indexes, the manifest fragments) sits in a temporary file or
//! directory beside its destination until then; a run killed by SIGKILL (or a
//! power cut) cannot remove it, so it would stay for good, as large as what was being
//! fetched or unpacked, and count against the free space the next run needs.
//!
//! A run holds an exclusive `flock` on the directory it works in for as long as it works
//! there; whoever holds that lock knows every temporary directory of its kind there belongs
//! to a run that is gone, and removes it. The lock is on the directory itself, so nothing is
//! added beside the artifacts, and the kernel releases it when a process dies however it dies.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// An exclusive lock on a directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock(File);

impl DirLock {
    /// Waits for the lock on `dir` (which must exist), then removes the directories and files
    /// whose name starts with `prefix` that earlier runs left there. Returns the lock and how
    /// many were removed.
    pub fn acquire(dir: &Path, prefix: &str) -> std::io::Result<(DirLock, usize)> {
        let f = File::open(dir)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let mut removed = 0;
        for e in std::fs::read_dir(dir)?.flatten() {
            if !e.file_name().to_string_lossy().starts_with(prefix) {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
            removed += 1;
        }
        Ok((DirLock(f), removed))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in `acquire`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_its_kind_and_waits_for_the_holder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".work-1/sub")).unwrap();
        std::fs::write(d.path().join(".work-1/sub/f"), b"x").unwrap();
        std::fs::create_dir(d.path().join("keep")).unwrap();
        std::fs::write(d.path().join(".work-file"), b"a temporary file").unwrap();
        std::fs::write(d.path().join("work-kept"), b"not one").unwrap();
        let (lock, n) = DirLock::acquire(d.path(), ".work-").unwrap();
        assert_eq!(n, 2);
        assert!(!d.path().join(".work-1").exists() && !d.path().join(".work-file").exists());
        assert!(d.path().join("keep").is_dir() && d.path().join("work-kept").is_file());
        // A second holder waits until the first lets go.
        let path = d.path().to_path_buf();
        let t = std::thread::spawn(move || DirLock::acquire(&path, ".work-").map(|(_, n)| n));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!t.is_finished(), "the lock was not exclusive");
        drop(lock);
        assert_eq!(t.join().unwrap().unwrap(), 0);
    }
}

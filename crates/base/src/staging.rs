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

/// An exclusive `flock` on a file or directory, released when dropped (or when the process
/// dies).
#[derive(Debug)]
pub struct FileLock(File);

impl FileLock {
    /// Waits for the lock on `path`, which must exist.
    pub fn lock(path: &Path) -> std::io::Result<FileLock> {
        let f = File::open(path)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in `lock`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// An exclusive lock on a directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _lock: FileLock,
}

impl DirLock {
    /// Waits for the lock on `dir` (which must exist), then removes the directories and files
    /// whose name starts with `prefix` that earlier runs left there. Returns the lock and how
    /// many were removed.
    pub fn acquire(dir: &Path, prefix: &str) -> std::io::Result<(DirLock, usize)> {
        let lock = FileLock::lock(dir)?;
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
        Ok((DirLock { _lock: lock }, removed))
    }
}

/// Takes an exclusive `flock` on a temporary file while it is written, so that
/// [`remove_stale_files`] in another run can tell it from one a killed run left. The kernel
/// drops the lock when the file is closed or the process dies.
pub fn lock_file(f: &File) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor the caller owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Removes the files of `dir` named `.…<suffix>` that no live process holds locked
/// (see [`lock_file`]): what runs killed while writing there left. Each directory is looked at
/// once per process (a module writing thousands of files into one directory must not list it
/// each time). Returns how many were removed; a leftover that cannot be removed is left alone.
pub fn remove_stale_files(dir: &Path, suffix: &str) -> usize {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<std::path::PathBuf>>> = std::sync::Mutex::new(None);
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.get_or_insert_with(Default::default).insert(dir.to_path_buf()) {
            return 0;
        }
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') || !name.ends_with(suffix) || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(f) = File::open(e.path()) else { continue };
        // Locked: a live run is writing it.
        if lock_file(&f).is_ok() && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
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

    #[test]
    fn stale_temporary_files_go_and_those_being_written_stay() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".a.conf.x1.airlock-tmp"), b"left by a killed run").unwrap();
        std::fs::write(d.path().join("a.conf"), b"the file itself").unwrap();
        std::fs::write(d.path().join(".other"), b"not ours").unwrap();
        let live = d.path().join(".a.conf.x2.airlock-tmp");
        let f = File::create(&live).unwrap();
        lock_file(&f).unwrap();
        assert_eq!(remove_stale_files(d.path(), ".airlock-tmp"), 1);
        assert!(!d.path().join(".a.conf.x1.airlock-tmp").exists());
        assert!(live.exists() && d.path().join("a.conf").exists() && d.path().join(".other").exists());
        // Once per directory and process.
        std::fs::write(d.path().join(".b.x3.airlock-tmp"), b"").unwrap();
        assert_eq!(remove_stale_files(d.path(), ".airlock-tmp"), 0);
    }
}

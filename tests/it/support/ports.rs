//! Free TCP ports for the servers the tests start on a port of their own (sshd, docker-registry,
//! pypiserver, `python3 -m http.server`, `airlock serve`, ports Docker publishes).
//!
//! A port found free by binding port 0 and dropping the listener can be handed out again before
//! the server binds it: to another test process (nextest runs every test in its own process,
//! several at once) binding port 0, or to any outgoing connection, since port 0 and outgoing
//! connections draw from the same ephemeral range. So the ports come from outside that range
//! (`net.ipv4.ip_local_port_range`, 32768-60999 by default), where the kernel never hands one
//! out by itself, and every port picked is held until the picking process ends by an exclusive
//! lock on a file named after it, in a directory all test processes share: no two running test
//! processes, and no two picks in one process, get the same port. A port is taken only when its
//! lock is got and nothing listens on it now.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// The lowest port handed out: above the ports system services are usually given.
const LOWEST: u16 = 10_000;

/// The locks of the ports this process picked, held until it ends.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A port of 127.0.0.1 (and of every other address: nothing listens on it anywhere) that no
/// other test process picks while this one runs.
pub fn free_port() -> u16 {
    let dir = std::env::temp_dir().join("airlock-test-ports");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let candidates: Vec<u16> = outside_ephemeral_range();
    let start = fastrand::usize(..candidates.len());
    for &port in candidates[start..].iter().chain(&candidates[..start]) {
        let Some(lock) = try_lock(dir.join(port.to_string())) else { continue };
        // Something else (a server of an earlier run, a service of this machine) has it.
        if TcpListener::bind(("0.0.0.0", port)).is_err() {
            continue;
        }
        HELD.lock().unwrap().push(lock);
        return port;
    }
    panic!("no free port outside the ephemeral range: every one is locked under {} or in use", dir.display());
}

/// `n` distinct free ports, as [`free_port`].
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// The lock file `path`, locked exclusively, or None when another process (or another pick of
/// this one) holds it.
fn try_lock(path: PathBuf) -> Option<File> {
    // Read access is enough for a lock: a file another user's run created still opens.
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).or_else(|_| File::open(&path));
    let file = file.unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(e)) => panic!("locking {}: {e}", path.display()),
    }
}

/// The ports from `LOWEST` up that are outside the kernel's ephemeral range.
fn outside_ephemeral_range() -> Vec<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let bounds: Vec<u16> = range.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let (low, high) = match bounds[..] {
        [low, high] => (low, high),
        _ => (32768, 60999),
    };
    let ports: Vec<u16> = (LOWEST..=u16::MAX).filter(|p| *p < low || *p > high).collect();
    assert!(ports.len() >= 1000, "the ephemeral port range {low}-{high} leaves too few ports above {LOWEST} for the tests");
    ports
}

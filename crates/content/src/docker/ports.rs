//! Who holds a TCP port on this host: a bind test, then the listening sockets of
//! `/proc/net/tcp{,6}` matched to processes through `/proc/<pid>/fd` (which needs root for
//! other users' processes).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

/// A process listening on a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortHolder {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
}

/// Whether `port` on `ip` (`0.0.0.0` for every address) can be bound now. Only a listener
/// makes it fail: the test socket uses SO_REUSEADDR, as Docker's proxy does.
pub fn is_free(ip: &str, port: u16) -> bool {
    let addr: IpAddr = ip.trim_matches(['[', ']']).parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match TcpListener::bind(SocketAddr::new(addr, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    }
}

/// The socket inodes listening on TCP `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && let Ok(inode) = f[9].parse::<u64>()
                && inode != 0
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// The processes listening on TCP `port`, as far as this user may see them.
pub fn holders(port: u16) -> Vec<PortHolder> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|t| {
                    let t = t.to_string_lossy().into_owned();
                    t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse::<u64>().ok())
                })
                .is_some_and(|i| inodes.contains(&i))
        });
        if holds {
            let name = std::fs::read_to_string(p.path().join("comm")).map(|s| s.trim().to_string()).unwrap_or_default();
            found.push(PortHolder { pid, name });
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

/// "process python3 (pid 1234)", or "another process" when none can be seen.
pub fn describe_holders(port: u16) -> String {
    let h = holders(port);
    if h.is_empty() {
        return "another process (run as root to see which)".to_string();
    }
    h.iter().map(|h| format!("process {} (pid {})", h.name, h.pid)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_found_with_its_process() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free("127.0.0.1", port));
        assert!(!is_free("0.0.0.0", port));
        let me = std::process::id();
        let h = holders(port);
        assert!(h.iter().any(|h| h.pid == me), "{h:?} should include pid {me}");
        assert!(describe_holders(port).contains(&format!("(pid {me})")));
        drop(l);
        assert!(is_free("127.0.0.1", port));
    }
}

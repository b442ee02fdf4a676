//! What the integration tests share, one copy of each: the test project that runs the real
//! `airlock` binary (`project`), the upstreams on loopback shaped like the real ones (a Docker
//! registry, pypiserver, Yum repositories, Helm repositories made by the real Helm, a Docker
//! Hub stand-in, scripted faulty servers), `airlock serve` itself, SSH nodes, and small helpers
//! (hashes, file trees, free ports).

pub mod chart_releases;
pub mod helm_client;
mod http;
pub mod hub;
pub mod nodes;
mod ports;
mod project;
pub mod pypiserver;
pub mod registry;
pub mod scripted;
pub mod serve;
pub mod sshd;
pub mod upstreams;
pub mod yumfix;

pub use http::{StaticServer, serve_routes};
pub use ports::{free_port, free_ports};
pub use project::{Project, Run, ansible_playbook_exe};

use std::collections::BTreeMap;
use std::path::Path;

/// sha256 of bytes, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every file under `dir` with its bytes, by `/`-separated path relative to `dir`; empty when
/// `dir` does not exist. Everything under it must be a directory or a regular file (a symlink,
/// a socket or an unreadable directory fails the test).
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &e.path(), out);
            } else {
                assert!(ft.is_file(), "{} is not a regular file", e.path().display());
                out.insert(e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

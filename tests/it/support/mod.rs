//! What the integration tests share, one copy of each: the test project that runs the real
//! `airlock` binary (`project`), the upstreams on loopback shaped like the real ones (a Docker
//! registry, pypiserver, Yum repositories, Helm repositories made by the real Helm, a Docker
//! Hub stand-in, scripted faulty servers), `airlock serve` itself, SSH nodes, and small helpers
//! (hashes, file trees, commands that must succeed, free ports, small HTTP servers).

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

pub use http::{StaticServer, read_request, serve_routes};
pub use ports::{free_port, free_ports};
pub use project::{Project, Run, ansible_playbook_exe};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// An INI inventory of SSH hosts on 127.0.0.1, in the group `nodes`: each (name, port, user),
/// reached with the private key `key` and the ssh options `ssh_args`.
pub fn ssh_inventory<'a>(hosts: impl IntoIterator<Item = (&'a str, u16, &'a str)>, key: &Path, ssh_args: &str) -> String {
    let mut s = String::from("[nodes]\n");
    for (name, port, user) in hosts {
        s.push_str(&format!(
            "{name} ansible_host=127.0.0.1 ansible_port={port} ansible_user={user} ansible_ssh_private_key_file={} ansible_ssh_common_args='{ssh_args}'\n",
            key.display()
        ));
    }
    s
}

/// Runs `cmd`, failing the test (with what it printed) unless it exits 0; its stdout.
#[track_caller]
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (the .ci/setup-* scripts install what the tests run)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

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

/// Runs `f` (which asserts insta snapshots) with `dir` shown as `name` in them, so a snapshot
/// does not hold a temporary directory's random name.
pub fn redacted(dir: &Path, name: &str, f: impl FnOnce()) {
    let dir = dir.display().to_string();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(dir.trim_end_matches('/')), name);
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(f);
}

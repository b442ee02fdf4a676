//! Connections: how a task reaches the host it runs on.
//!
//! `local` runs modules in this process (or in a child under sudo, see `escalate`). `ssh` goes
//! through the system's OpenSSH client, one master connection per host reused by every task
//! (ControlMaster/ControlPersist, as Ansible does). The first task on a host copies this airlock
//! binary there (under `~/.airlock/bin`, named by its hash, so later runs reuse it); each module
//! then runs as `airlock __module` on the host, the same child protocol `become` uses: the
//! request as JSON on stdin, the result as JSON on stdout. The host needs a POSIX shell and
//! coreutils, nothing else; `become` there is `sudo -n`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use super::escalate::{self, ModuleRequest};
use airlock_base::shlex::quote as shlex_quote;

/// The connection types airlock knows.
pub const SUPPORTED: &[&str] = &["local", "ssh"];

/// How to reach a host over SSH, from its variables (`ansible_host`, `ansible_port`,
/// `ansible_user`, `ansible_ssh_private_key_file`, `ansible_ssh_common_args`,
/// `ansible_ssh_extra_args`, `ansible_ssh_timeout`) and `airlock_remote_binary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SshParams {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key: Option<PathBuf>,
    pub common_args: Vec<String>,
    pub extra_args: Vec<String>,
    /// Seconds to wait for the TCP connection (Ansible's default is 10).
    pub timeout: u64,
    /// The airlock binary to copy to the host; this one when unset. For hosts of another
    /// architecture, a build for theirs.
    pub binary: Option<PathBuf>,
}

/// A failure to reach the host: the host is unreachable for the rest of the play.
#[derive(Clone, Debug)]
pub struct Unreachable(pub String);

/// The result Ansible gives for an unreachable host.
pub fn unreachable_result(msg: &str) -> Json {
    json!({"changed": false, "unreachable": true, "msg": msg})
}

/// The open connections of a run, shared by every copy of the executor. The master
/// connections are closed when the last copy is dropped.
#[derive(Clone, Default)]
pub struct Connections(Arc<Inner>);

#[derive(Default)]
struct Inner {
    open: Mutex<HashMap<SshParams, Arc<Ssh>>>,
    /// The sockets of the master connections: a private directory under /tmp (a socket's
    /// path must stay under ~100 bytes).
    control_dir: Mutex<Option<tempfile::TempDir>>,
    /// Binary hashes by path, computed once a run.
    binary_ids: Mutex<HashMap<PathBuf, String>>,
}

/// Why a connection to a host cannot be set up, before any command runs on it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionSetupError {
    /// A connection variable of the host (`ansible_port`, `ansible_ssh_common_args`,
    /// `ansible_password`...) that airlock cannot use; the message names it and the host.
    #[error("{0}")]
    Variable(String),
    #[error("could not create a directory for SSH control sockets under /tmp: {0}")]
    ControlDir(std::io::Error),
    #[error("cannot find the airlock binary to copy to {host}: {source}")]
    LocalBinary { host: String, source: std::io::Error },
    #[error("cannot read the airlock binary {}: {source}", path.display())]
    ReadBinary { path: PathBuf, source: std::io::Error },
}

impl Connections {
    /// The connection for these parameters, opened on first use.
    pub fn ssh(&self, params: &SshParams) -> Result<Arc<Ssh>, ConnectionSetupError> {
        let mut open = self.0.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = open.get(params) {
            return Ok(c.clone());
        }
        let dir = {
            let mut d = self.0.control_dir.lock().unwrap_or_else(|e| e.into_inner());
            if d.is_none() {
                *d = Some(tempfile::Builder::new().prefix("airlock-ssh-").tempdir_in("/tmp").map_err(ConnectionSetupError::ControlDir)?);
            }
            d.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default()
        };
        let local = match &params.binary {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|source| ConnectionSetupError::LocalBinary { host: params.host.clone(), source })?,
        };
        let id = self.binary_id(&local)?;
        let c = Arc::new(Ssh { params: params.clone(), control_dir: dir, local_binary: local, binary_id: id, remote: Mutex::new(None) });
        open.insert(params.clone(), c.clone());
        Ok(c)
    }

    fn binary_id(&self, path: &Path) -> Result<String, ConnectionSetupError> {
        let mut ids = self.0.binary_ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = ids.get(path) {
            return Ok(id.clone());
        }
        let (_, sha) = airlock_base::digest::sha256_file(path).map_err(|source| ConnectionSetupError::ReadBinary { path: path.to_path_buf(), source })?;
        let id = format!("airlock-{}-{}", env!("CARGO_PKG_VERSION"), &sha[..16]);
        ids.insert(path.to_path_buf(), id.clone());
        Ok(id)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let open = self.open.get_mut().unwrap_or_else(|e| e.into_inner());
        for c in open.values() {
            c.close();
        }
    }
}

/// What the first command on a host found there.
#[derive(Clone, Debug)]
struct Remote {
    /// `~/.airlock` on the host, absolute.
    base: String,
    /// The user the connection logs in as.
    user: String,
    /// The airlock binary there.
    binary: String,
}

/// One host reached over SSH.
pub struct Ssh {
    params: SshParams,
    control_dir: PathBuf,
    local_binary: PathBuf,
    binary_id: String,
    /// What the first contact found, or why it failed (not retried within a run: the host
    /// is unreachable for the rest of it, as in Ansible).
    remote: Mutex<Option<Result<Remote, String>>>,
}

impl Ssh {
    /// The options every ssh and scp command gets: the shared master connection, no prompts,
    /// the host's port, user and key, then the site's own arguments.
    fn options(&self) -> Vec<String> {
        let p = &self.params;
        let mut o: Vec<String> = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ControlMaster=auto".into(),
            "-o".into(),
            "ControlPersist=60s".into(),
            "-o".into(),
            format!("ControlPath={}/%C", self.control_dir.display()),
            "-o".into(),
            format!("ConnectTimeout={}", p.timeout.max(1)),
        ];
        if let Some(port) = p.port {
            o.extend(["-o".into(), format!("Port={port}")]);
        }
        if let Some(u) = &p.user {
            o.extend(["-o".into(), format!("User={u}")]);
        }
        if let Some(k) = &p.key {
            o.extend(["-o".into(), format!("IdentityFile={}", k.display()), "-o".into(), "IdentitiesOnly=yes".into()]);
        }
        o.extend(p.common_args.iter().cloned());
        o
    }

    /// Runs `script` with `sh` on the host, `stdin` fed to it. Exit status 255 is ssh's own
    /// failure to connect.
    pub fn exec(&self, script: &str, stdin: &[u8]) -> Result<Output, Unreachable> {
        let mut cmd = Command::new("ssh");
        cmd.args(self.options()).args(&self.params.extra_args).arg("-T").arg("--").arg(&self.params.host).arg(format!("sh -c {}", shlex_quote(script)));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Unreachable(format!("could not run ssh ({e}); install the OpenSSH client")))?;
        if let Some(mut si) = child.stdin.take() {
            // A broken pipe shows up as the command's own failure below.
            let _ = si.write_all(stdin);
        }
        let out = child.wait_with_output().map_err(|e| Unreachable(format!("ssh failed: {e}")))?;
        if out.status.code() == Some(255) {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(Unreachable(format!("Failed to connect to the host via ssh: {err}")));
        }
        Ok(out)
    }

    /// Copies a local file or directory to `remote` (an absolute path) with scp, over the
    /// master connection.
    pub fn put(&self, local: &Path, remote: &str) -> Result<(), Unreachable> {
        let host = if self.params.host.contains(':') { format!("[{}]", self.params.host) } else { self.params.host.clone() };
        let mut cmd = Command::new("scp");
        cmd.arg("-q").arg("-p").args(self.options());
        if local.is_dir() {
            cmd.arg("-r");
        }
        cmd.arg("--").arg(local).arg(format!("{host}:{remote}"));
        let out = cmd.output().map_err(|e| Unreachable(format!("could not run scp ({e}); install the OpenSSH client")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(Unreachable(format!("could not copy {} to {}:{remote} with scp: {err}", local.display(), self.params.host)));
        }
        Ok(())
    }

    /// Connects, and makes sure this airlock binary is on the host. Once per host and run.
    fn prepare(&self) -> Result<Remote, Unreachable> {
        let mut slot = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref() {
            return r.clone().map_err(Unreachable);
        }
        let r = self.first_contact();
        *slot = Some(r.clone().map_err(|Unreachable(m)| m));
        r
    }

    fn first_contact(&self) -> Result<Remote, Unreachable> {
        let id = &self.binary_id;
        let probe = format!(
            "umask 077; b=\"$HOME/.airlock\"; mkdir -p \"$b/bin\" \"$b/tmp\" || exit 3; echo \"$b\"; id -un; uname -m; if test -x \"$b/bin/{id}\"; then echo present; else echo missing; fi"
        );
        let out = self.exec(&probe, b"")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = text.lines().collect();
        if !out.status.success() || lines.len() < 4 {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(Unreachable(format!(
                "the host answered over ssh but could not prepare ~/.airlock (needs a POSIX shell, coreutils and a writable home): {err}"
            )));
        }
        let (base, user, arch, state) = (lines[0].to_string(), lines[1].to_string(), lines[2].trim(), lines[3].trim());
        if self.params.binary.is_none() && arch != std::env::consts::ARCH {
            return Err(Unreachable(format!(
                "{} is {arch} and this airlock is built for {}: set airlock_remote_binary for this host to an airlock built for {arch}",
                self.params.host,
                std::env::consts::ARCH
            )));
        }
        let binary = format!("{base}/bin/{id}");
        if state != "present" {
            // Copied under a temporary name and renamed, so an interrupted copy is never run.
            let tmp = format!("{base}/bin/.{id}.{}-{}", std::process::id(), unique());
            self.put(&self.local_binary, &tmp)?;
            let out = self.exec(&format!("chmod 0755 {t} && mv -f {t} {b}", t = shlex_quote(&tmp), b = shlex_quote(&binary)), b"")?;
            if !out.status.success() {
                return Err(Unreachable(format!("could not install airlock on {}: {}", self.params.host, String::from_utf8_lossy(&out.stderr).trim())));
            }
        }
        Ok(Remote { base, user, binary })
    }

    /// Where airlock is on the host (copying it there first); None when the host cannot be
    /// reached, which the next module run reports.
    pub fn remote_binary(&self) -> Option<String> {
        self.prepare().ok().map(|r| r.binary)
    }

    /// Runs one module on the host, as `become_user` when given (through `sudo -n`), after
    /// copying `uploads` (local path -> the name the request refers to it by, relative to a
    /// private temporary directory that is removed afterwards).
    pub fn run_module(&self, req: &mut ModuleRequest, become_user: Option<&str>, uploads: &[(PathBuf, String)]) -> Json {
        let remote = match self.prepare() {
            Ok(r) => r,
            Err(Unreachable(msg)) => return unreachable_result(&msg),
        };
        let mut tmp = None;
        if !uploads.is_empty() {
            let dir = format!("{}/tmp/{}-{}", remote.base, std::process::id(), unique());
            match self.exec(&format!("mkdir -m 0700 {}", shlex_quote(&dir)), b"") {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    return json!({"changed": false, "failed": true, "msg": format!("could not create {dir} on the host: {}", String::from_utf8_lossy(&o.stderr).trim())});
                }
                Err(Unreachable(msg)) => return unreachable_result(&msg),
            }
            for (local, name) in uploads {
                if let Err(Unreachable(msg)) = self.put(local, &format!("{dir}/{name}")) {
                    return json!({"changed": false, "failed": true, "msg": msg});
                }
            }
            rewrite_uploads(&mut req.args, &dir, uploads);
            tmp = Some(dir);
        }
        let sudo = match become_user {
            Some(u) if u != remote.user => format!("sudo -n -H -u {} -- ", shlex_quote(u)),
            _ => String::new(),
        };
        let mut script = format!("{sudo}{} __module", shlex_quote(&remote.binary));
        if let Some(dir) = &tmp {
            script = format!("{script}; rc=$?; rm -rf {}; exit $rc", shlex_quote(dir));
        }
        let body = serde_json::to_vec(req).unwrap_or_default();
        match self.exec(&script, &body) {
            Ok(out) => escalate::child_result(&out, become_user.filter(|_| !sudo.is_empty())),
            Err(Unreachable(msg)) => unreachable_result(&msg),
        }
    }

    /// Closes the master connection (best effort).
    fn close(&self) {
        let _ = Command::new("ssh").args(self.options()).args(["-O", "exit"]).arg(&self.params.host).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Points the request's `src` at the uploaded copy: `{{ dir }}/name`, keeping a trailing
/// slash (copy's "contents of the directory").
fn rewrite_uploads(args: &mut serde_json::Map<String, Json>, dir: &str, uploads: &[(PathBuf, String)]) {
    if let (Some(Json::String(src)), Some((_, name))) = (args.get("src").cloned(), uploads.first()) {
        let slash = if src.ends_with('/') { "/" } else { "" };
        args.insert("src".into(), Json::String(format!("{dir}/{name}{slash}")));
    }
}

/// A number no other call of this process gets.
fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_keep_a_trailing_slash() {
        let mut a = serde_json::Map::new();
        a.insert("src".into(), json!("conf.d/"));
        rewrite_uploads(&mut a, "/home/u/.airlock/tmp/1-0", &[(PathBuf::from("/p/files/conf.d"), "conf.d".into())]);
        assert_eq!(a["src"], json!("/home/u/.airlock/tmp/1-0/conf.d/"));
        let mut a = serde_json::Map::new();
        a.insert("src".into(), json!("motd"));
        rewrite_uploads(&mut a, "/t", &[(PathBuf::from("/p/files/motd"), "motd".into())]);
        assert_eq!(a["src"], json!("/t/motd"));
    }

    #[test]
    fn options_name_the_host_settings() {
        let s = Ssh {
            params: SshParams {
                host: "10.0.0.5".into(),
                port: Some(2222),
                user: Some("deploy".into()),
                key: Some("/k".into()),
                common_args: vec!["-o".into(), "StrictHostKeyChecking=no".into()],
                timeout: 10,
                ..Default::default()
            },
            control_dir: "/tmp/x".into(),
            local_binary: "/bin/true".into(),
            binary_id: "id".into(),
            remote: Mutex::new(None),
        };
        let o = s.options().join(" ");
        assert!(o.contains("ControlPath=/tmp/x/%C") && o.contains("Port=2222") && o.contains("User=deploy") && o.contains("IdentityFile=/k"), "{o}");
        assert!(o.ends_with("-o StrictHostKeyChecking=no"), "{o}");
    }
}

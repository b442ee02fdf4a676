//! Running the system's own tools (systemctl, apt-get, dnf, rpm, ...) for the modules that
//! manage a node: one place that captures rc/stdout/stderr and words "not installed" errors.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::modules::ModuleFail;

/// What a command printed and how it exited (`rc` -1 when killed by a signal).
#[derive(Clone, Debug, Default)]
pub struct CmdOut {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOut {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.rc == 0
    }

    /// stderr, else stdout, trimmed: what to show when it failed.
    pub fn message(&self) -> String {
        let e = self.stderr.trim();
        if e.is_empty() { self.stdout.trim().to_string() } else { e.to_string() }
    }
}

/// Runs `program args...` with stdin closed, LC_ALL=C (the modules read the tools' output)
/// and `env` added; fails only when the program cannot be started.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<CmdOut, ModuleFail> {
    let mut c = Command::new(program);
    c.args(args).stdin(Stdio::null()).env("LC_ALL", "C");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().map_err(|e| {
        ModuleFail::new(format!("could not run {program} ({e}): is it installed on this host and on PATH?")).with("cmd", cmdline(program, args))
    })?;
    Ok(CmdOut {
        rc: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The command as one line, for results and messages.
pub fn cmdline(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).map(airlock_base::shlex::quote).collect::<Vec<_>>().join(" ")
}

/// Whether `program` is an executable on PATH (or, with a `/`, at that path).
pub fn which(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return is_exe(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    // sudo's secure_path and a login shell may leave the sbin directories out.
    std::env::split_paths(&path).chain(["/usr/sbin", "/sbin"].map(Into::into)).any(|d| is_exe(&d.join(program)))
}

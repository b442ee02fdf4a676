//! `become`: running a module as another user. Already root and becoming root is a no-op;
//! otherwise the module runs in a child `airlock __module` under `sudo -n -u USER`, which
//! reads the request as JSON on stdin and writes the result as JSON on stdout. Hosts reached
//! over SSH run modules through the same child (see `connection`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// What the child needs to run one module.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct ModuleRequest {
    pub module: String,
    pub args: Map<String, Json>,
    pub check_mode: bool,
    pub diff_mode: bool,
    pub search_paths: Vec<PathBuf>,
    /// Templates rendered by the parent (the child has no variables), by path.
    pub rendered: HashMap<PathBuf, String>,
}

/// Whether this process is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The user this process runs as.
pub fn current_user() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return String::new();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
    }
}

/// Whether running as `user` needs a child process.
pub fn needs_switch(user: &str) -> bool {
    user != current_user()
}

/// Runs the module as `user` through sudo and returns its result.
pub fn run_as(user: &str, req: &ModuleRequest) -> Json {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return json!({"changed": false, "failed": true, "msg": format!("become: cannot find the airlock binary: {e}")}),
    };
    let mut cmd = Command::new("sudo");
    cmd.args(["-n", "-H", "-u", user, "--"]).arg(&exe).arg("__module");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return json!({"changed": false, "failed": true, "msg": format!("become: could not run sudo ({e}); install sudo or run airlock as root")});
        }
    };
    let body = serde_json::to_vec(req).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return json!({"changed": false, "failed": true, "msg": format!("become: sudo failed: {e}")}),
    };
    child_result(&out, Some(user))
}

/// The result a `__module` child printed, or a failure that says why there is none (naming
/// sudo's complaint when it ran under `become_user`).
pub fn child_result(out: &std::process::Output, become_user: Option<&str>) -> Json {
    match serde_json::from_slice::<Json>(&out.stdout) {
        Ok(v) if out.status.success() => v,
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let msg = match become_user {
                Some(user) if stderr.contains("a password is required") || stderr.contains("a terminal is required") => {
                    format!("Missing sudo password: become to '{user}' needs passwordless sudo for the user running airlock ({stderr})")
                }
                Some(user) => format!("become to '{user}' failed: {stderr}"),
                None => format!("the module failed to run: {stderr}"),
            };
            json!({"changed": false, "failed": true, "msg": msg, "module_stderr": stderr, "rc": out.status.code()})
        }
    }
}

/// The child side: reads a request on stdin, runs the module, prints the result.
pub fn child_main() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input) {
        eprintln!("airlock __module: reading the request: {e}");
        return 1;
    }
    let req: ModuleRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("airlock __module: bad request: {e}");
            return 1;
        }
    };
    let Some(module) = crate::modules::lookup(&req.module) else {
        eprintln!("airlock __module: no module named {}", req.module);
        return 1;
    };
    let rendered = req.rendered.clone();
    let render = move |p: &Path| -> Result<String, String> {
        rendered.get(p).cloned().ok_or_else(|| format!("template {} was not rendered before become", p.display()))
    };
    let progress = airlock_base::progress::ProgressFactory::default();
    let provided: Vec<PathBuf> = req.rendered.keys().cloned().collect();
    let ctx = crate::modules::ModuleContext {
        check_mode: req.check_mode,
        diff_mode: req.diff_mode,
        search_paths: req.search_paths.clone(),
        render_file: &render,
        progress: &progress,
        provided: &provided,
    };
    let result = super::module_result_json(module(&req.args, &ctx));
    println!("{result}");
    0
}

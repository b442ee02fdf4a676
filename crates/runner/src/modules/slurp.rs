//! The `slurp` module: a file's content, base64-encoded, so that a playbook can read a file of
//! the host the task runs on (`slurp` then `b64decode | from_json`, as Ansible does).

use std::io::ErrorKind;

use base64::Engine as _;

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["src", "path"];

/// Runs `slurp`.
pub fn run(a: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "slurp", ALLOWED)?;
    let src = args::opt_str(a, "src")?.or(args::opt_str(a, "path")?).ok_or_else(|| ModuleFail::new("missing required arguments: src"))?;
    let data = match std::fs::read(&src) {
        Ok(d) => d,
        // ansible-core 2.19's messages, for the same three cases.
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ModuleFail::new(format!("File not found: {src}"))),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(ModuleFail::new(format!("file is not readable: {src} (run the task with become: true to read it as root)")));
        }
        Err(e) if e.kind() == ErrorKind::IsADirectory => return Err(ModuleFail::new(format!("Source is a directory and must be a file: {src}"))),
        Err(e) => return Err(ModuleFail::new(format!("unable to slurp file: {src}: {e}"))),
    };
    Ok(ModuleResult::changed(false).with("content", base64::engine::general_purpose::STANDARD.encode(&data)).with("encoding", "base64").with("source", src))
}

//! The `shell` module: `command` through `/bin/sh -c` (or `executable`).

use serde_json::json;

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, args, command};

const ALLOWED: &[&str] = &["_raw_params", "cmd", "chdir", "creates", "removes", "stdin", "stdin_add_newline", "strip_empty_ends", "executable"];

/// Runs `shell`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "shell", ALLOWED)?;
    let text = args::opt_str(a, "cmd")?.or(args::opt_str(a, "_raw_params")?).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ModuleFail::new("no command given").with("rc", 256));
    }
    let shell = args::opt_str(a, "executable")?.unwrap_or_else(|| "/bin/sh".to_string());
    command::execute(a, ctx, vec![shell, "-c".into(), text.clone()], json!(text))
}

//! The `shell` module: `command` run through a shell (`/bin/sh -c`, or `executable`).

use super::{Args, ModuleContext, ModuleOutcome};

/// Runs `shell`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    super::command::execute(args, ctx, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use serde_json::json;

    #[test]
    fn runs_through_the_shell() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"_raw_params": "echo a | tr a b; echo $AIRLOCK_SH"})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "b");
        assert_eq!(r.data["cmd"], "echo a | tr a b; echo $AIRLOCK_SH");
        let r = run(&args(json!({"cmd": "echo $AIRLOCK_SH", "_environment": {"AIRLOCK_SH": "x y"}})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "x y");
        let r = run(&args(json!({"cmd": "echo $0", "executable": "/bin/bash"})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "/bin/bash");
        let f = run(&args(json!({"cmd": "echo x >&2; exit 4"})), &ctx).unwrap_err();
        assert_eq!(f.msg, "non-zero return code");
        assert_eq!(f.data["rc"], 4);
        assert_eq!(f.data["stderr_lines"], json!(["x"]));
        let r = run(&args(json!({"_raw_params": format!("echo hi > out.txt chdir={}", d.path().display())})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(d.path().join("out.txt")).unwrap(), "hi\n");
        let cctx = ctx_for(true, d.path(), &pf);
        let r = run(&args(json!({"cmd": "touch should-not-exist", "chdir": d.path()})), &cctx).unwrap();
        assert!(r.skipped);
        assert!(!d.path().join("should-not-exist").exists());
        assert!(run(&args(json!({"argv": ["a"]})), &ctx).unwrap_err().msg.starts_with("Unsupported parameters for (shell) module: argv"));
    }
}

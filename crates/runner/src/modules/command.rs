//! The `command` module, and the execution it shares with `shell`.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use airlock_base::shlex;
use serde_json::{Map, Value};

use super::args::{bool_or, check_known, opt_str};
use super::utils::files::{expand_path, expand_user, expand_vars, py_datetime, py_timedelta};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};

const COMMAND_ARGS: &[&str] =
    &["_raw_params", "cmd", "argv", "chdir", "executable", "expand_argument_vars", "creates", "removes", "stdin", "stdin_add_newline", "strip_empty_ends"];

const SHELL_ARGS: &[&str] = &["_raw_params", "cmd", "chdir", "executable", "creates", "removes", "stdin", "stdin_add_newline", "strip_empty_ends"];

/// The `key=value` options Ansible takes out of a command's free-form text.
const FREE_FORM_OPTIONS: &[&str] = &["creates", "removes", "chdir", "executable", "warn", "stdin", "stdin_add_newline", "strip_empty_ends"];

/// Runs `command`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    execute(args, ctx, false)
}

/// Python's `str.splitlines()`.
pub fn py_splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Takes Ansible's `key=value` options (creates=, chdir=, ...) out of free-form text, as
/// its splitter does; the rest of the text is kept as written.
pub fn split_free_form(raw: &str) -> (String, Vec<(String, String)>) {
    // Token spans: runs of non-space outside quotes.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            start.get_or_insert(i);
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            start.get_or_insert(i);
        } else if c.is_whitespace() {
            if let Some(s) = start.take() {
                spans.push((s, i));
            }
        } else {
            start.get_or_insert(i);
        }
    }
    if let Some(s) = start {
        spans.push((s, raw.len()));
    }
    let mut opts = Vec::new();
    let mut removed: Vec<(usize, usize)> = Vec::new();
    for &(s, e) in &spans {
        let tok = &raw[s..e];
        let Some((k, v)) = tok.split_once('=') else { continue };
        if !FREE_FORM_OPTIONS.contains(&k) {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) { &v[1..v.len() - 1] } else { v };
        opts.push((k.to_string(), v.to_string()));
        removed.push((s, e));
    }
    if removed.is_empty() {
        return (raw.to_string(), opts);
    }
    let mut kept: Vec<&str> = Vec::new();
    for &(s, e) in &spans {
        if !removed.contains(&(s, e)) {
            kept.push(&raw[s..e]);
        }
    }
    (kept.join(" "), opts)
}

fn env_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The task's `environment:` as the executor passes it (`_environment`).
pub fn task_environment(args: &Args) -> Vec<(String, String)> {
    match args.get("_environment") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), env_value(v))).collect(),
        _ => Vec::new(),
    }
}

fn glob_exists(pattern: &Path) -> bool {
    let s = pattern.to_string_lossy();
    match glob::glob(&s) {
        Ok(mut paths) => paths.any(|p| p.is_ok()),
        Err(_) => pattern.exists(),
    }
}

/// Shared by `command` and `shell` (`shell` = Ansible's `_uses_shell`).
pub(crate) fn execute(args_in: &Args, ctx: &ModuleContext, shell: bool) -> ModuleOutcome {
    let module = if shell { "shell" } else { "command" };
    let mut args = args_in.clone();
    if let Some(Value::String(raw)) = args.get("_raw_params").cloned() {
        let (rest, opts) = split_free_form(&raw);
        if !opts.is_empty() {
            for (k, v) in opts {
                args.entry(k).or_insert(Value::String(v));
            }
            if rest.trim().is_empty() {
                args.remove("_raw_params");
            } else {
                args.insert("_raw_params".into(), Value::String(rest));
            }
        }
    }
    check_known(&args, module, if shell { SHELL_ARGS } else { COMMAND_ARGS })?;

    let given: Vec<&str> = ["_raw_params", "cmd", "argv"].into_iter().filter(|k| !matches!(args.get(*k), None | Some(Value::Null))).collect();
    if given.len() > 1 {
        return Err(ModuleFail::new("parameters are mutually exclusive: _raw_params|cmd|argv"));
    }
    if given.is_empty() {
        return Err(ModuleFail::new(if shell {
            "one of the following is required: _raw_params, cmd"
        } else {
            "one of the following is required: _raw_params, cmd, argv"
        }));
    }

    let chdir = opt_str(&args, "chdir")?.map(|s| expand_path(&s));
    let executable = opt_str(&args, "executable")?;
    let expand_argument_vars = bool_or(&args, "expand_argument_vars", true)?;
    let creates = opt_str(&args, "creates")?;
    let removes = opt_str(&args, "removes")?;
    let stdin = opt_str(&args, "stdin")?;
    let stdin_add_newline = bool_or(&args, "stdin_add_newline", true)?;
    let strip = bool_or(&args, "strip_empty_ends", true)?;
    let env = task_environment(&args);

    let mut warnings: Vec<String> = Vec::new();
    if !shell && executable.is_some() {
        warnings.push(format!(
            "As of Ansible 2.4, the parameter 'executable' is no longer supported with the 'command' module. Not using '{}'.",
            executable.as_deref().unwrap_or("")
        ));
    }

    // The command: a string for shell, a list for command.
    let text = match args.get("_raw_params").or_else(|| args.get("cmd")) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(env_value(other)),
    };
    let cmd_value: Value;
    let argv: Vec<String>;
    if shell {
        let text = text.unwrap_or_default();
        cmd_value = Value::String(text.clone());
        let sh = executable.clone().unwrap_or_else(|| "/bin/sh".to_string());
        argv = if text.trim().is_empty() { Vec::new() } else { vec![sh, "-c".into(), text] };
    } else {
        let list: Vec<String> = match (&text, args.get("argv")) {
            (Some(t), _) => shlex::split(t).map_err(|e| ModuleFail::new(e.to_string()))?,
            (None, Some(Value::Array(a))) => a.iter().map(env_value).collect(),
            (None, Some(Value::String(s))) => vec![s.clone()],
            _ => Vec::new(),
        };
        cmd_value = Value::Array(list.iter().cloned().map(Value::String).collect());
        let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok());
        argv = if expand_argument_vars { list.iter().map(|a| expand_user(&expand_vars(a, &lookup))).collect() } else { list };
    }

    let mut r = Map::new();
    r.insert("changed".into(), false.into());
    r.insert("stdout".into(), "".into());
    r.insert("stderr".into(), "".into());
    r.insert("rc".into(), Value::Null);
    r.insert("cmd".into(), cmd_value.clone());
    r.insert("start".into(), Value::Null);
    r.insert("end".into(), Value::Null);
    r.insert("delta".into(), Value::Null);
    r.insert("msg".into(), "".into());
    if !warnings.is_empty() {
        r.insert("warnings".into(), warnings.clone().into());
    }

    if argv.is_empty() {
        let mut f = ModuleFail::new("no command given");
        f.data = r;
        f.data.insert("rc".into(), 256.into());
        add_lines(&mut f.data);
        return Err(f);
    }

    if let Some(dir) = &chdir
        && !dir.is_dir()
    {
        let mut f = ModuleFail::new(format!("Unable to change directory before execution: {}", dir.display()));
        f.data = r;
        add_lines(&mut f.data);
        return Err(f);
    }
    let base = chdir.clone().unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
    let resolve = |p: &str| {
        let p = expand_path(p);
        if p.is_absolute() { p } else { base.join(p) }
    };

    let shoulda = if ctx.check_mode { "Would" } else { "Did" };
    let mut skip_msg = None;
    if let Some(c) = &creates
        && glob_exists(&resolve(c))
    {
        skip_msg = Some((format!("{shoulda} not run command since '{c}' exists"), format!("skipped, since {c} exists")));
    }
    if skip_msg.is_none()
        && let Some(rm) = &removes
        && !glob_exists(&resolve(rm))
    {
        skip_msg = Some((format!("{shoulda} not run command since '{rm}' does not exist"), format!("skipped, since {rm} does not exist")));
    }
    if let Some((msg, stdout)) = skip_msg {
        r.insert("msg".into(), msg.clone().into());
        r.insert("stdout".into(), stdout.into());
        r.insert("rc".into(), 0.into());
        return Ok(finish(r, msg, false, false));
    }

    if ctx.check_mode {
        let msg = "Command would have run if not in check mode".to_string();
        r.insert("rc".into(), 0.into());
        r.insert("msg".into(), msg.clone().into());
        let skipped = creates.is_none() && removes.is_none();
        if skipped {
            r.insert("skipped".into(), true.into());
        }
        return Ok(finish(r, msg, !skipped, skipped));
    }

    r.insert("changed".into(), true.into());
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    if let Some(dir) = &chdir {
        command.current_dir(dir);
    }
    for (k, v) in &env {
        command.env(k, v);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });

    let start_wall = SystemTime::now();
    let start = Instant::now();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(257);
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut f = ModuleFail::new(format!("Error executing command: [Errno {errno}] {text}: '{}'", argv[0]));
            f.data = r;
            f.data.insert("changed".into(), false.into());
            f.data.insert("rc".into(), errno.into());
            f.data.insert("cmd".into(), argv.iter().map(|a| shlex::quote(a)).collect::<Vec<_>>().join(" ").into());
            add_lines(&mut f.data);
            return Err(f);
        }
    };
    let writer = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(mut data)) => {
            if stdin_add_newline {
                data.push('\n');
            }
            Some(std::thread::spawn(move || {
                // A child that exits without reading its input is not an error.
                let _ = pipe.write_all(data.as_bytes());
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output().map_err(|e| ModuleFail::new(format!("Error executing command: {e}")))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    let end_wall = start_wall + elapsed;
    let rc = output.status.code().unwrap_or_else(|| -output.status.signal().unwrap_or(0));
    let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if strip {
        stdout = stdout.trim_end_matches(['\r', '\n']).to_string();
        stderr = stderr.trim_end_matches(['\r', '\n']).to_string();
    }
    r.insert("rc".into(), rc.into());
    r.insert("stdout".into(), stdout.into());
    r.insert("stderr".into(), stderr.into());
    r.insert("start".into(), py_datetime(start_wall).into());
    r.insert("end".into(), py_datetime(end_wall).into());
    r.insert("delta".into(), py_timedelta(elapsed).into());
    if rc != 0 {
        let mut f = ModuleFail::new("non-zero return code");
        f.data = r;
        add_lines(&mut f.data);
        return Err(f);
    }
    Ok(finish(r, String::new(), true, false))
}

fn add_lines(m: &mut Map<String, Value>) {
    m.remove("msg");
    for key in ["stdout", "stderr"] {
        let lines = match m.get(key) {
            Some(Value::String(s)) => py_splitlines(s),
            _ => Vec::new(),
        };
        m.insert(format!("{key}_lines"), lines.into());
    }
}

fn finish(mut r: Map<String, Value>, msg: String, changed: bool, skipped: bool) -> ModuleResult {
    r.insert("changed".into(), changed.into());
    add_lines(&mut r);
    r.remove("skipped");
    let mut res = ModuleResult::changed(changed).with_msg(msg);
    res.skipped = skipped;
    res.data = r;
    res
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn ctx_for<'a>(check_mode: bool, dir: &Path, progress: &'a airlock_base::progress::ProgressFactory) -> ModuleContext<'a> {
        ModuleContext {
            check_mode,
            diff_mode: false,
            search_paths: vec![dir.to_path_buf()],
            render_file: &|p| Ok(std::fs::read_to_string(p).unwrap()),
            provided: &[],
            progress,
        }
    }

    pub(crate) fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn splitlines() {
        assert_eq!(py_splitlines("a\n\nb\r\nc\n"), vec!["a", "", "b", "c"]);
    }

    #[test]
    fn free_form_options() {
        let (rest, opts) = split_free_form("touch /tmp/x creates=/tmp/x chdir='/tmp'");
        assert_eq!(rest, "touch /tmp/x");
        assert_eq!(opts, vec![("creates".to_string(), "/tmp/x".to_string()), ("chdir".to_string(), "/tmp".to_string())]);
        let (rest, opts) = split_free_form("echo 'creates=x' a=b");
        assert_eq!(rest, "echo 'creates=x' a=b");
        assert!(opts.is_empty());
    }

    #[test]
    fn runs_and_reports() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"_raw_params": "echo hi 'a  b'"})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(r.data["rc"], 0);
        assert_eq!(r.data["stdout"], "hi a  b");
        assert_eq!(r.data["stdout_lines"], json!(["hi a  b"]));
        assert_eq!(r.data["cmd"], json!(["echo", "hi", "a  b"]));
        assert!(r.data["delta"].as_str().unwrap().starts_with("0:00:0"));
        assert_eq!(r.msg.as_deref(), Some(""));

        let f = run(&args(json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})), &ctx).unwrap_err();
        assert_eq!(f.msg, "non-zero return code");
        assert_eq!(f.data["rc"], 3);
        assert_eq!(f.data["stderr"], "err");
        assert_eq!(f.data["stdout_lines"], json!(["out"]));
        assert_eq!(f.data["changed"], true);

        let f = run(&args(json!({"cmd": "/nonexistent/prog a"})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Error executing command"), "{}", f.msg);
        assert_eq!(f.data["rc"], 2);
    }

    #[test]
    fn stdin_chdir_env_and_expansion() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"cmd": "cat", "stdin": "abc"})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "abc");
        let r = run(&args(json!({"cmd": "cat", "stdin": "abc", "stdin_add_newline": false, "strip_empty_ends": false})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "abc");
        let r = run(&args(json!({"cmd": "printf 'a\\n\\n'", "strip_empty_ends": false})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "a\n\n");
        let r = run(&args(json!({"cmd": "pwd", "chdir": d.path()})), &ctx).unwrap();
        assert_eq!(r.data["stdout"].as_str().unwrap(), std::fs::canonicalize(d.path()).unwrap().to_str().unwrap());
        let r = run(&args(json!({"argv": ["echo", "$AIRLOCK_T1", "${AIRLOCK_T1}x", "$AIRLOCK_NOPE"], "_environment": {"AIRLOCK_T1": "v1"}})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "v1 v1x $AIRLOCK_NOPE");
        let r = run(&args(json!({"argv": ["sh", "-c", "echo $AIRLOCK_T2"], "_environment": {"AIRLOCK_T2": 5}})), &ctx).unwrap();
        assert_eq!(r.data["stdout"], "5");
        let f = run(&args(json!({"cmd": "pwd", "chdir": "/nonexistent-dir"})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Unable to change directory before execution"));
    }

    #[test]
    fn creates_removes_and_check_mode() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let marker = d.path().join("marker");
        std::fs::write(&marker, "").unwrap();
        let ctx = ctx_for(false, d.path(), &pf);
        let m = marker.to_str().unwrap();
        let r = run(&args(json!({"_raw_params": format!("touch {}/new creates={m}", d.path().display())})), &ctx).unwrap();
        assert!(!r.changed && !r.skipped);
        assert_eq!(r.msg.as_deref(), Some(format!("Did not run command since '{m}' exists").as_str()));
        assert_eq!(r.data["stdout"], format!("skipped, since {m} exists"));
        assert!(!d.path().join("new").exists());
        // Relative creates is resolved against chdir, and globs match.
        let r = run(&args(json!({"cmd": "false", "chdir": d.path(), "creates": "mark*"})), &ctx).unwrap();
        assert!(!r.changed);
        let r = run(&args(json!({"cmd": "false", "removes": d.path().join("absent").to_str().unwrap()})), &ctx).unwrap();
        assert!(r.msg.unwrap().ends_with("absent' does not exist"));

        let cctx = ctx_for(true, d.path(), &pf);
        let r = run(&args(json!({"cmd": format!("touch {}/x", d.path().display())})), &cctx).unwrap();
        assert!(r.skipped && !r.changed);
        assert_eq!(r.msg.as_deref(), Some("Command would have run if not in check mode"));
        assert!(!d.path().join("x").exists());
        let r = run(&args(json!({"cmd": "false", "creates": m})), &cctx).unwrap();
        assert_eq!(r.msg.as_deref(), Some(format!("Would not run command since '{m}' exists").as_str()));
        let r = run(&args(json!({"cmd": "false", "creates": d.path().join("nope").to_str().unwrap()})), &cctx).unwrap();
        assert!(r.changed && !r.skipped);
    }

    #[test]
    fn argument_errors() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        assert_eq!(run(&args(json!({"cmd": "a", "argv": ["b"]})), &ctx).unwrap_err().msg, "parameters are mutually exclusive: _raw_params|cmd|argv");
        assert_eq!(run(&args(json!({"chdir": "/"})), &ctx).unwrap_err().msg, "one of the following is required: _raw_params, cmd, argv");
        assert!(run(&args(json!({"cmd": "a", "bogus": 1})), &ctx).unwrap_err().msg.starts_with("Unsupported parameters for (command) module: bogus"));
        assert_eq!(run(&args(json!({"cmd": "echo 'a"})), &ctx).unwrap_err().msg, "No closing quotation");
    }
}

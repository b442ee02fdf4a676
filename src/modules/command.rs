//! The `command` module: runs a program without a shell. `shell` shares this code.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["_raw_params", "cmd", "argv", "chdir", "creates", "removes", "stdin", "stdin_add_newline", "strip_empty_ends", "executable", "expand_argument_vars"];

/// Runs `command`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "command", ALLOWED)?;
    let argv: Vec<String> = if let Some(Value::Array(list)) = a.get("argv") {
        list.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect()
    } else {
        let text = args::opt_str(a, "cmd")?.or(args::opt_str(a, "_raw_params")?).unwrap_or_default();
        split_command(&text).map_err(ModuleFail::new)?
    };
    if argv.is_empty() {
        return Err(ModuleFail::new("no command given").with("rc", 256));
    }
    execute(a, ctx, argv.clone(), json!(argv))
}

/// Splits a command line the way Python's `shlex.split` does (POSIX rules).
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("No closing quotation in: {s}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("No escaped character in: {s}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("No closing quotation in: {s}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(x) => cur.push(x),
                    None => return Err(format!("No escaped character in: {s}")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Ansible's `delta`/`start`/`end` formats.
fn stamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes into the tm we own; secs is a valid time_t.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        d.subsec_micros()
    )
}

fn delta(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}.{:06}", s / 3600, (s / 60) % 60, s % 60, d.subsec_micros())
}

/// Runs `argv` with the common command/shell arguments; `shown_cmd` is the result's `cmd`.
pub fn execute(a: &Args, ctx: &ModuleContext, argv: Vec<String>, shown_cmd: Value) -> ModuleOutcome {
    let chdir = args::opt_str(a, "chdir")?;
    let base = chdir.as_deref().map(Path::new);
    let resolve = |p: &str| -> std::path::PathBuf {
        let p = Path::new(p);
        match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        }
    };
    if let Some(c) = args::opt_str(a, "creates")? {
        if glob_exists(&resolve(&c)) {
            return Ok(ModuleResult::ok().with("cmd", shown_cmd).with("rc", 0).with("stdout", format!("skipped, since {c} exists")).with("stdout_lines", json!([format!("skipped, since {c} exists")])).with("stderr", "").with("stderr_lines", json!([])).with_msg(format!("Did not run command since '{c}' exists")));
        }
    }
    if let Some(r) = args::opt_str(a, "removes")? {
        if !glob_exists(&resolve(&r)) {
            return Ok(ModuleResult::ok().with("cmd", shown_cmd).with("rc", 0).with("stdout", format!("skipped, since {r} does not exist")).with("stdout_lines", json!([format!("skipped, since {r} does not exist")])).with("stderr", "").with("stderr_lines", json!([])).with_msg(format!("Did not run command since '{r}' does not exist")));
        }
    }
    if ctx.check_mode {
        let mut r = ModuleResult::ok().with_msg("Command would have run if not in check mode");
        r.skipped = true;
        return Ok(r);
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some(d) = &chdir {
        if !Path::new(d).is_dir() {
            return Err(ModuleFail::new(format!("Unable to change directory before execution: [Errno 2] No such file or directory: '{d}'")).with("rc", 1));
        }
        cmd.current_dir(d);
    }
    if let Some(Value::Object(env)) = a.get("_environment") {
        for (k, v) in env {
            cmd.env(k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        }
    }
    let stdin = args::opt_str(a, "stdin")?;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = std::time::SystemTime::now();
    let t0 = std::time::Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = if e.kind() == std::io::ErrorKind::NotFound { format!("[Errno 2] No such file or directory: b'{}'", argv[0]) } else { format!("{e}: {}", argv[0]) };
            return Err(ModuleFail::new(msg).with("cmd", argv[0].clone()).with("rc", 2).with("changed", false));
        }
    };
    if let Some(mut text) = stdin {
        if args::bool_or(a, "stdin_add_newline", true)? {
            text.push('\n');
        }
        if let Some(mut pipe) = child.stdin.take() {
            // Feed stdin from a thread so a child that writes a lot before reading cannot
            // deadlock against us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
    }
    let out = child.wait_with_output().map_err(|e| ModuleFail::new(format!("waiting for {}: {e}", argv[0])))?;
    let elapsed = t0.elapsed();
    let end = std::time::SystemTime::now();
    let strip = args::bool_or(a, "strip_empty_ends", true)?;
    let text = |b: &[u8]| -> String {
        let s = String::from_utf8_lossy(b).into_owned();
        if strip { s.trim_end_matches(['\n', '\r']).to_string() } else { s }
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let rc = out.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        -out.status.signal().unwrap_or(0)
    });
    let mut r = ModuleResult::changed(true)
        .with("cmd", shown_cmd)
        .with("rc", rc)
        .with("stdout_lines", json!(stdout.lines().collect::<Vec<_>>()))
        .with("stderr_lines", json!(stderr.lines().collect::<Vec<_>>()))
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("start", stamp(start))
        .with("end", stamp(end))
        .with("delta", delta(elapsed));
    if rc != 0 {
        r.failed = true;
        r.msg = Some("non-zero return code".into());
    }
    Ok(r)
}

fn glob_exists(p: &Path) -> bool {
    let s = p.to_string_lossy();
    if s.contains(['*', '?', '[']) {
        glob::glob(&s).map(|mut g| g.next().is_some()).unwrap_or(false)
    } else {
        p.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_shlex() {
        assert_eq!(split_command(r#"echo 'a b' "c \"d\"" e\ f"#).unwrap(), vec!["echo", "a b", "c \"d\"", "e f"]);
        assert!(split_command("echo 'open").is_err());
    }
}

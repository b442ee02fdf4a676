//! The `pause` module: sleeps for `seconds`/`minutes`, or waits for the user to press enter
//! at a prompt (never blocking when stdin is not a terminal).

use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::args::{bool_or, check_known, opt_str};
use super::utils::files::{py_datetime, py_float};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};

const ARGS: &[&str] = &["seconds", "minutes", "prompt", "echo"];

/// An int argument the way pause reads it (`int()` of the value: floats truncate).
fn int_arg(args: &Args, key: &str) -> Result<Option<i64>, ModuleFail> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64))),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            ModuleFail::new(format!("argument '{key}' is of type str and we were unable to convert to int: invalid literal for int() with base 10: '{s}'"))
        }),
        Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to int", super::args::type_name(v)))),
    }
}

fn stdin_is_tty() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(0) == 1 }
}

/// Reads one line from the terminal on stdin, without echo when `echo` is false.
fn read_line(echo: bool) -> std::io::Result<String> {
    let mut saved: Option<libc::termios> = None;
    if !echo {
        // SAFETY: termios is plain data; fd 0 is a terminal (checked by the caller).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                saved = Some(t);
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restoring the settings read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs `pause`.
pub fn run(args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    check_known(args, "pause", ARGS)?;
    let minutes = int_arg(args, "minutes")?;
    let seconds_arg = int_arg(args, "seconds")?;
    if minutes.is_some() && seconds_arg.is_some() {
        return Err(ModuleFail::new("parameters are mutually exclusive: minutes|seconds"));
    }
    let prompt = opt_str(args, "prompt")?.filter(|p| !p.is_empty());
    let echo = bool_or(args, "echo", true)?;
    let echo_note = if echo { "" } else { " (output is hidden)" };
    let (mut seconds, unit) = match (minutes, seconds_arg) {
        (Some(m), _) => (Some(m * 60), "minutes"),
        (None, Some(s)) => (Some(s), "seconds"),
        (None, None) => (None, "minutes"),
    };

    let start_wall = SystemTime::now();
    let start = Instant::now();
    let mut user_input = String::new();
    let mut warnings: Vec<String> = Vec::new();
    if let Some(s) = seconds.as_mut() {
        if *s < 1 {
            *s = 1;
        }
        let mut err = std::io::stderr();
        if stdin_is_tty() {
            let _ = writeln!(err, "Pausing for {s} seconds{echo_note}");
            if let Some(p) = &prompt {
                let _ = writeln!(err, "{p}{echo_note}:");
            }
        }
        std::thread::sleep(Duration::from_secs(*s as u64));
    } else if stdin_is_tty() {
        let text = prompt.clone().unwrap_or_else(|| "Press enter to continue, Ctrl+C to interrupt".into());
        let mut err = std::io::stderr();
        let _ = writeln!(err, "{text}{echo_note}:");
        let _ = err.flush();
        user_input = read_line(echo).map_err(|e| ModuleFail::new(format!("failed to read from the terminal: {e}")))?;
    } else {
        warnings.push("Not waiting for response to prompt as stdin is not interactive".to_string());
    }
    let elapsed = start.elapsed();
    let duration = elapsed.as_secs_f64();
    let shown = if unit == "minutes" { duration / 60.0 } else { duration };
    let shown = (shown * 100.0).round() / 100.0;

    let mut r = ModuleResult::ok();
    if let Some(w) = warnings.first() {
        r.msg = Some(w.clone());
        r.data.insert("warnings".into(), warnings.clone().into());
    }
    r.data.insert("changed".into(), false.into());
    r.data.insert("rc".into(), 0.into());
    r.data.insert("stderr".into(), "".into());
    r.data.insert("stdout".into(), format!("Paused for {} {unit}", py_float(shown)).into());
    r.data.insert("start".into(), py_datetime(start_wall).into());
    r.data.insert("stop".into(), py_datetime(start_wall + elapsed).into());
    r.data.insert("delta".into(), elapsed.as_secs().into());
    r.data.insert("echo".into(), echo.into());
    r.data.insert("user_input".into(), user_input.into());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use serde_json::json;

    #[test]
    fn sleeps_and_does_not_block_without_a_terminal() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(true, d.path(), &pf);
        let t = Instant::now();
        let r = run(&args(json!({"seconds": 1})), &ctx).unwrap();
        assert!(t.elapsed() >= Duration::from_secs(1));
        // The measured time, rounded to hundredths as Ansible prints it (1.0, or a little more
        // on a busy machine).
        let stdout = r.data["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("Paused for 1.") && stdout.ends_with(" seconds"), "{stdout}");
        assert_eq!(r.data["delta"], 1);
        assert_eq!(r.data["user_input"], "");
        assert_eq!(r.data["echo"], true);
        assert!(!r.changed);
        // seconds < 1 is raised to 1, floats are truncated.
        let r = run(&args(json!({"seconds": "0"})), &ctx).unwrap();
        assert_eq!(r.data["delta"], 1);

        if !stdin_is_tty() {
            let r = run(&args(json!({"prompt": "Hit enter"})), &ctx).unwrap();
            assert_eq!(r.data["stdout"], "Paused for 0.0 minutes");
            assert_eq!(r.data["user_input"], "");
            assert_eq!(r.data["warnings"], json!(["Not waiting for response to prompt as stdin is not interactive"]));
        }
        assert_eq!(run(&args(json!({"seconds": 1, "minutes": 1})), &ctx).unwrap_err().msg, "parameters are mutually exclusive: minutes|seconds");
    }
}

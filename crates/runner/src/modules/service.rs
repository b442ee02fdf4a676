//! The `service` module: a service started, stopped, restarted or reloaded and enabled at boot,
//! by whatever manages services on the host: systemd when it runs (`/run/systemd/system`),
//! the same way as the `systemd` module; otherwise SysV init scripts (`/etc/init.d/NAME`,
//! through `service` when installed), enabled with `update-rc.d` or `chkconfig`.

use std::path::Path;
use std::time::Duration;

use super::systemd::{self, STATES, Want};
use super::utils::syscmd;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["name", "state", "enabled", "sleep", "arguments", "use"];

/// Runs `service`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "service", ALLOWED)?;
    let name = args::req_str(a, "name")?;
    let state = args::opt_choice(a, "state", STATES)?;
    let enabled = args::opt_bool(a, "enabled")?;
    if state.is_none() && enabled.is_none() {
        return Err(ModuleFail::new("one of the following is required: state, enabled"));
    }
    let use_ = args::opt_choice(a, "use", &["auto", "systemd", "sysvinit", "service"])?.unwrap_or_else(|| "auto".into());
    let systemd = match use_.as_str() {
        "systemd" => true,
        "auto" => systemd::is_running(),
        _ => false,
    };
    if systemd {
        let want = Want { name: Some(name), state, enabled, ..Want::default() };
        return systemd::manage(&want, ctx);
    }
    let sleep = args::opt_int(a, "sleep")?.unwrap_or(0).max(0) as u64;
    let arguments = args::opt_str(a, "arguments")?.unwrap_or_default();
    sysv(&name, state.as_deref(), enabled, sleep, &arguments, ctx)
}

/// The init-script path.
fn sysv(name: &str, state: Option<&str>, enabled: Option<bool>, sleep: u64, arguments: &str, ctx: &ModuleContext) -> ModuleOutcome {
    let script = format!("/etc/init.d/{name}");
    if name.contains('/') || !Path::new(&script).is_file() {
        return Err(ModuleFail::new(format!("Could not find the requested service {name}: no init script {script}, and systemd does not run on this host")));
    }
    let extra: Vec<&str> = arguments.split_whitespace().collect();
    let call = |action: &str| -> Result<syscmd::CmdOut, ModuleFail> {
        if syscmd::which("service") {
            let mut args = vec![name, action];
            args.extend(&extra);
            syscmd::run("service", &args, &[])
        } else {
            let mut args = vec![action];
            args.extend(&extra);
            syscmd::run(&script, &args, &[])
        }
    };
    let mut r = ModuleResult::changed(false).with("name", name);

    if let Some(want) = enabled {
        let is_enabled = enabled_at_boot(name);
        if is_enabled != want {
            r.changed = true;
            if !ctx.check_mode {
                let out = if syscmd::which("update-rc.d") {
                    // `defaults` makes the links the first time; enable/disable flips them.
                    let out = syscmd::run("update-rc.d", &[name, "defaults"], &[])?;
                    if out.ok() { syscmd::run("update-rc.d", &[name, if want { "enable" } else { "disable" }], &[])? } else { out }
                } else if syscmd::which("chkconfig") {
                    syscmd::run("chkconfig", &[name, if want { "on" } else { "off" }], &[])?
                } else {
                    return Err(ModuleFail::new(format!("cannot enable {name} at boot: neither update-rc.d nor chkconfig is on this host")));
                };
                if !out.ok() {
                    return Err(ModuleFail::new(format!("Unable to {} service {name}: {}", if want { "enable" } else { "disable" }, out.message())));
                }
            }
        }
        r = r.with("enabled", want);
    }

    if let Some(state) = state {
        // LSB: `status` exits 0 when the service runs.
        let running = call("status")?.ok();
        let actions: &[&str] = match state {
            "started" if !running => &["start"],
            "stopped" if running => &["stop"],
            "restarted" if running && sleep > 0 => &["stop", "sleep", "start"],
            "restarted" if running => &["restart"],
            "reloaded" if running => &["reload"],
            "restarted" | "reloaded" => &["start"],
            _ => &[],
        };
        if !actions.is_empty() {
            r.changed = true;
            if !ctx.check_mode {
                for action in actions {
                    if *action == "sleep" {
                        std::thread::sleep(Duration::from_secs(sleep));
                        continue;
                    }
                    let out = call(action)?;
                    if !out.ok() {
                        return Err(ModuleFail::new(format!("Unable to {action} service {name}: {}", out.message()))
                            .with("rc", out.rc)
                            .with("stdout", out.stdout)
                            .with("stderr", out.stderr));
                    }
                }
            }
        }
        r = r.with("state", state);
    }
    Ok(r)
}

/// Whether an init script starts at boot: an `S` link in a multi-user runlevel's directory
/// (Debian's /etc/rcN.d, Red Hat's /etc/rc.d/rcN.d).
fn enabled_at_boot(name: &str) -> bool {
    ["/etc/rc2.d", "/etc/rc3.d", "/etc/rc5.d", "/etc/rc.d/rc3.d", "/etc/rc.d/rc5.d"].iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let f = e.file_name().to_string_lossy().into_owned();
                f.starts_with('S') && f.trim_start_matches(|c: char| c == 'S' || c.is_ascii_digit()) == name
            })
        })
    })
}

//! The `systemd` module (also `systemd_service`): a systemd unit started, stopped, restarted
//! or reloaded, enabled or disabled, masked or unmasked, through `systemctl`, with Ansible's
//! decisions (a start only when the unit is not active, ...) and result keys (`name`,
//! `state`, `enabled`, `status`: the unit's `systemctl show` properties).

use serde_json::{Map, Value};

use super::utils::syscmd;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["name", "state", "enabled", "masked", "daemon_reload", "daemon_reexec", "no_block", "force", "scope"];

/// What a `systemd` (or, under systemd, `service`) task asks for.
#[derive(Debug, Default)]
pub struct Want {
    pub name: Option<String>,
    pub state: Option<String>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub no_block: bool,
    pub force: bool,
    /// `--user` or `--global`, or nothing for the system manager.
    pub scope_flag: Option<&'static str>,
}

/// The states a task may ask a service to reach.
pub const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];

/// Runs `systemd`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "systemd", ALLOWED)?;
    let scope = args::opt_choice(a, "scope", &["system", "user", "global"])?;
    let want = Want {
        name: args::opt_str(a, "name")?,
        state: args::opt_choice(a, "state", STATES)?,
        enabled: args::opt_bool(a, "enabled")?,
        masked: args::opt_bool(a, "masked")?,
        daemon_reload: args::bool_or(a, "daemon_reload", false)?,
        daemon_reexec: args::bool_or(a, "daemon_reexec", false)?,
        no_block: args::bool_or(a, "no_block", false)?,
        force: args::bool_or(a, "force", false)?,
        scope_flag: match scope.as_deref() {
            Some("user") => Some("--user"),
            Some("global") => Some("--global"),
            _ => None,
        },
    };
    if want.name.is_none() && (want.state.is_some() || want.enabled.is_some() || want.masked.is_some()) {
        return Err(ModuleFail::new("name is required when state, enabled or masked is given"));
    }
    if want.name.is_none() && !want.daemon_reload && !want.daemon_reexec {
        return Err(ModuleFail::new("one of the following is required: name, daemon_reload, daemon_reexec"));
    }
    manage(&want, ctx)
}

/// Whether systemd is this host's service manager (what `service` checks before using it).
pub fn is_running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// Brings a unit to what `want` asks, as Ansible's systemd module does.
pub fn manage(want: &Want, ctx: &ModuleContext) -> ModuleOutcome {
    if !syscmd::which("systemctl") {
        return Err(ModuleFail::new("systemctl is not on this host: the systemd module needs systemd (use `service` for init scripts)"));
    }
    let systemctl = |args: &[&str]| -> Result<syscmd::CmdOut, ModuleFail> {
        let mut all: Vec<&str> = want.scope_flag.into_iter().collect();
        all.extend_from_slice(args);
        syscmd::run("systemctl", &all, &[])
    };
    let mut r = ModuleResult::changed(false);
    // Both change the manager: not in check mode (as Ansible).
    for (asked, verb) in [(want.daemon_reexec, "daemon-reexec"), (want.daemon_reload, "daemon-reload")] {
        if asked && !ctx.check_mode {
            let out = systemctl(&[verb])?;
            if !out.ok() {
                return Err(ModuleFail::new(format!("failure {} running systemctl {verb}: {}", out.rc, out.message())));
            }
        }
    }
    let Some(unit) = want.name.as_deref() else { return Ok(r) };
    r = r.with("name", unit);
    let mut status = show(&systemctl, unit)?;
    let load = status.get("LoadState").and_then(Value::as_str).unwrap_or("").to_string();
    let found = !load.is_empty() && load != "not-found";
    let not_found = || {
        ModuleFail::new(format!(
            "Could not find the requested service {unit}: systemd has no such unit (LoadState={load}). Put its unit file in \
             /etc/systemd/system (then daemon_reload: true), or check the name"
        ))
    };

    if let Some(masked) = want.masked {
        let is_masked = load == "masked" || status.get("UnitFileState").and_then(Value::as_str) == Some("masked");
        if masked != is_masked {
            r.changed = true;
            if !ctx.check_mode {
                let verb = if masked { "mask" } else { "unmask" };
                let mut args = vec![verb, unit];
                if want.force {
                    args.insert(0, "--force");
                }
                let out = systemctl(&args)?;
                if !out.ok() {
                    return Err(ModuleFail::new(format!("Unable to {verb} service {unit}: {}", out.message())));
                }
                status = show(&systemctl, unit)?;
            }
        }
    }

    if let Some(enabled) = want.enabled {
        if !found {
            return Err(not_found());
        }
        let out = systemctl(&["is-enabled", unit])?;
        // rc 0: enabled, static, alias, indirect, generated...: the unit starts at boot.
        let is_enabled = out.ok();
        if is_enabled != enabled {
            r.changed = true;
            if !ctx.check_mode {
                let verb = if enabled { "enable" } else { "disable" };
                let mut args = vec![verb, unit];
                if want.force {
                    args.insert(0, "--force");
                }
                let out = systemctl(&args)?;
                if !out.ok() {
                    return Err(ModuleFail::new(format!("Unable to {verb} service {unit}: {}", out.message())));
                }
            }
        }
        r = r.with("enabled", enabled);
    }

    if let Some(state) = want.state.as_deref() {
        if !found {
            return Err(not_found());
        }
        let active = status.get("ActiveState").and_then(Value::as_str).unwrap_or("");
        let running = active == "active" || active == "activating";
        let action = match state {
            "started" => (!running).then_some("start"),
            "stopped" => (running || active == "deactivating").then_some("stop"),
            "restarted" => Some(if running { "restart" } else { "start" }),
            _ => Some(if running { "reload" } else { "start" }),
        };
        if let Some(action) = action {
            r.changed = true;
            if !ctx.check_mode {
                let mut args = vec![action, unit];
                if want.no_block {
                    args.insert(0, "--no-block");
                }
                let out = systemctl(&args)?;
                if !out.ok() {
                    return Err(ModuleFail::new(format!("Unable to {action} service {unit}: {} (see `journalctl -u {unit}` on the host)", out.message())));
                }
                status = show(&systemctl, unit)?;
            }
        }
        r = r.with("state", state);
    }
    r = r.with("status", Value::Object(status));
    Ok(r)
}

/// `systemctl show UNIT` as a dict of its properties.
fn show(systemctl: &dyn Fn(&[&str]) -> Result<syscmd::CmdOut, ModuleFail>, unit: &str) -> Result<Map<String, Value>, ModuleFail> {
    let out = systemctl(&["show", unit])?;
    if !out.ok() {
        return Err(ModuleFail::new(format!("failure {} running systemctl show for '{unit}': {}", out.rc, out.message())));
    }
    Ok(parse_show(&out.stdout))
}

/// `Key=value` lines as a dict (values with `=` in them kept whole).
fn parse_show(text: &str) -> Map<String, Value> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn show_output_becomes_a_dict() {
        let m = super::parse_show("Id=ssh.service\nActiveState=active\nExecStart={ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D }\n");
        assert_eq!(m["ActiveState"], "active");
        assert_eq!(m["ExecStart"], "{ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D }");
    }
}

//! The `package` module: packages installed, upgraded or removed by the host's own package
//! manager (dnf, yum or apt-get), as Ansible's generic module does through `dnf`/`yum`/`apt`.
//! What is installed is asked first (rpm, dpkg-query), so a package already there is `ok` and
//! the manager runs only for the rest; in check mode the manager is asked whether it could
//! (`dnf repoquery`, `apt-get install --simulate`) and nothing is installed.

use super::utils::syscmd;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["name", "state", "use"];

const APT_ENV: &[(&str, &str)] = &[("DEBIAN_FRONTEND", "noninteractive")];

/// A package manager.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Manager {
    /// dnf or yum (same commands, same rpm database).
    Rpm(&'static str),
    Apt,
}

/// Runs `package`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "package", ALLOWED)?;
    let names = args::opt_list(a, "name")?.unwrap_or_default();
    if names.is_empty() {
        return Err(ModuleFail::new("missing required arguments: name"));
    }
    let state = args::opt_choice(a, "state", &["present", "installed", "latest", "absent", "removed"])?.unwrap_or_else(|| "present".into());
    let use_ = args::opt_choice(a, "use", &["auto", "dnf", "yum", "apt"])?.unwrap_or_else(|| "auto".into());
    let mgr = match use_.as_str() {
        "dnf" => Manager::Rpm("dnf"),
        "yum" => Manager::Rpm("yum"),
        "apt" => Manager::Apt,
        _ => detect()?,
    };
    let tool = match mgr {
        Manager::Rpm(t) => t,
        Manager::Apt => "apt-get",
    };
    if !syscmd::which(tool) {
        return Err(ModuleFail::new(format!("use={use_}: {tool} is not installed on this host")));
    }
    let state = match state.as_str() {
        "installed" => "present",
        "removed" => "absent",
        s => s,
    };
    let before: Vec<Option<String>> = names.iter().map(|n| installed_version(mgr, n)).collect::<Result<_, _>>()?;
    let missing: Vec<&str> = names.iter().zip(&before).filter(|(_, v)| v.is_none()).map(|(n, _)| n.as_str()).collect();
    let present: Vec<&str> = names.iter().zip(&before).filter(|(_, v)| v.is_some()).map(|(n, _)| n.as_str()).collect();

    let mut r = ModuleResult::changed(false).with("use", tool);
    let mut results: Vec<String> = Vec::new();
    // The manager's commands this task runs, in order.
    let mut commands: Vec<Vec<String>> = Vec::new();
    match state {
        "present" | "latest" => {
            if ctx.check_mode {
                for n in &missing {
                    if !available(mgr, n)? {
                        return Err(ModuleFail::new(format!("No package matching '{n}' is available (to {tool} on this host: check its repositories)")));
                    }
                    results.push(format!("Would install: {n}"));
                }
                if state == "latest" {
                    for n in &present {
                        if upgradable(mgr, n)? {
                            results.push(format!("Would upgrade: {n}"));
                        }
                    }
                }
                r.changed = !results.is_empty();
            } else {
                if !missing.is_empty() {
                    commands.push(install_cmd(mgr, &missing));
                }
                if state == "latest" && !present.is_empty() {
                    commands.push(match mgr {
                        Manager::Rpm(t) => [t, "-y", "upgrade"].iter().chain(&present).map(|s| s.to_string()).collect(),
                        Manager::Apt => ["apt-get", "install", "-y", "-q", "--only-upgrade"].iter().chain(&present).map(|s| s.to_string()).collect(),
                    });
                }
            }
        }
        _ => {
            if ctx.check_mode {
                results.extend(present.iter().map(|n| format!("Would remove: {n}")));
                r.changed = !present.is_empty();
            } else if !present.is_empty() {
                commands.push(match mgr {
                    Manager::Rpm(t) => [t, "-y", "remove"].iter().chain(&present).map(|s| s.to_string()).collect(),
                    Manager::Apt => ["apt-get", "remove", "-y", "-q"].iter().chain(&present).map(|s| s.to_string()).collect(),
                });
            }
        }
    }

    let (mut stdout, mut stderr) = (String::new(), String::new());
    for cmd in &commands {
        let argv: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
        let env = if mgr == Manager::Apt { APT_ENV } else { &[] };
        let out = syscmd::run(&cmd[0], &argv, env)?;
        stdout.push_str(&out.stdout);
        stderr.push_str(&out.stderr);
        if !out.ok() {
            let what = if cmd.iter().any(|w| w == "remove") { "remove" } else { "install" };
            return Err(ModuleFail::new(format!(
                "Failed to {what} some of the specified packages with `{}`: {}",
                syscmd::cmdline(&cmd[0], &argv),
                out.message()
            ))
            .with("rc", out.rc)
            .with("stdout", out.stdout)
            .with("stderr", out.stderr)
            .with("cmd", syscmd::cmdline(&cmd[0], &argv)));
        }
    }
    if !commands.is_empty() {
        // What changed, from the package database, not from the manager's wording.
        for (n, old) in names.iter().zip(&before) {
            let new = installed_version(mgr, n)?;
            match (old, &new) {
                (None, Some(v)) => results.push(format!("Installed: {n} {v}")),
                (Some(v), None) => results.push(format!("Removed: {n} {v}")),
                (Some(a), Some(b)) if a != b => results.push(format!("Upgraded: {n} {a} -> {b}")),
                _ => {}
            }
        }
        if state != "absent"
            && let Some(n) = names.iter().find(|n| installed_version(mgr, n).ok().flatten().is_none())
        {
            return Err(ModuleFail::new(format!("{tool} reported success, but {n} is not installed")).with("stdout", stdout).with("stderr", stderr));
        }
        r.changed = !results.is_empty();
        r = r.with("rc", 0).with("stdout", stdout).with("stderr", stderr);
    }
    if !r.changed {
        r = r.with_msg(format!("Nothing to do: {}", names.join(", ")));
    }
    Ok(r.with("results", results))
}

/// The manager Ansible's `ansible_pkg_mgr` fact would name: by the distribution family in
/// /etc/os-release (a Debian host with dnf installed still uses apt), else the first of dnf,
/// yum, apt-get installed.
fn detect() -> Result<Manager, ModuleFail> {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let family: String = os
        .lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .map(|v| v.trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = family.split_whitespace().collect();
    let has = |w: &[&str]| words.iter().any(|x| w.contains(x));
    if has(&["debian", "ubuntu"]) && syscmd::which("apt-get") {
        return Ok(Manager::Apt);
    }
    if has(&["rhel", "fedora", "centos", "rocky", "almalinux", "amzn", "ol"]) {
        if syscmd::which("dnf") {
            return Ok(Manager::Rpm("dnf"));
        }
        if syscmd::which("yum") {
            return Ok(Manager::Rpm("yum"));
        }
    }
    for (tool, m) in [("dnf", Manager::Rpm("dnf")), ("yum", Manager::Rpm("yum")), ("apt-get", Manager::Apt)] {
        if syscmd::which(tool) {
            return Ok(m);
        }
    }
    Err(ModuleFail::new("no package manager found on this host: the package module needs dnf, yum or apt-get"))
}

fn install_cmd(mgr: Manager, names: &[&str]) -> Vec<String> {
    let head: &[&str] = match mgr {
        Manager::Rpm(t) => &[t, "-y", "install"],
        Manager::Apt => &["apt-get", "install", "-y", "-q"],
    };
    head.iter().chain(names).map(|s| s.to_string()).collect()
}

/// The installed version of a package (`name`, or `name=version` for apt, `name-version` for
/// rpm), None when it is not installed.
fn installed_version(mgr: Manager, spec: &str) -> Result<Option<String>, ModuleFail> {
    match mgr {
        Manager::Rpm(_) => {
            let out = syscmd::run("rpm", &["-q", "--qf", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n", spec], &[])?;
            Ok(out.ok().then(|| out.stdout.lines().next().unwrap_or("").to_string()))
        }
        Manager::Apt => {
            let (name, version) = spec.split_once('=').map_or((spec, None), |(n, v)| (n, Some(v)));
            let out = syscmd::run("dpkg-query", &["-W", "-f", "${Status}\\t${Version}\\n", name], &[])?;
            let line = out.stdout.lines().next().unwrap_or("");
            let (status, installed) = line.split_once('\t').unwrap_or((line, ""));
            let ok = out.ok() && status.ends_with(" installed") && version.is_none_or(|v| installed.starts_with(v.trim_end_matches('*')));
            Ok(ok.then(|| installed.to_string()))
        }
    }
}

/// Whether the manager could install a package (check mode).
fn available(mgr: Manager, spec: &str) -> Result<bool, ModuleFail> {
    match mgr {
        Manager::Rpm(t) => {
            let out = syscmd::run(t, &["-q", "repoquery", "--available", spec], &[])?;
            if !out.ok() {
                return Err(ModuleFail::new(format!("{t} repoquery {spec} failed: {}", out.message())));
            }
            Ok(!out.stdout.trim().is_empty())
        }
        Manager::Apt => Ok(syscmd::run("apt-get", &["install", "--simulate", "-q", spec], APT_ENV)?.ok()),
    }
}

/// Whether an installed package has a newer version in the repositories (check mode).
fn upgradable(mgr: Manager, spec: &str) -> Result<bool, ModuleFail> {
    match mgr {
        // check-update exits 100 when there are updates, 0 when none.
        Manager::Rpm(t) => Ok(syscmd::run(t, &["-q", "check-update", spec], &[])?.rc == 100),
        Manager::Apt => {
            let out = syscmd::run("apt-get", &["install", "--simulate", "-q", "--only-upgrade", spec], APT_ENV)?;
            Ok(out.stdout.lines().any(|l| l.starts_with("Inst ")))
        }
    }
}

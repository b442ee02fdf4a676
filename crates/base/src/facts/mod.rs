//! Facts about the local host, gathered natively (no Python): what `setup` gives playbooks.
//!
//! Everything comes from `/proc`, `/sys`, `/etc` and libc (`uname`, `getifaddrs`, `getpwuid_r`,
//! `statvfs`, `localtime_r`/`strftime`); no subprocess is started and nothing touches the
//! network. The names, types and formats follow ansible-core 2.19's Linux collectors; where
//! those run a command (`ip`, `lsb_release`, `lsblk`, `dmidecode`) the same data is read from the
//! kernel instead, and `fqdn` is resolved from `/etc/hosts` only (no DNS query).

mod distribution;
mod hardware;
mod network;
mod system;
mod virtualization;

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value, json};

pub use distribution::os_family;
use distribution::{distribution, lsb};
use hardware::{cpu, dmi, memory, mounts, storage_ids};
use network::{dns, network};
use system::{cmdline, date_time, is_chroot, local_facts, pkg_mgr, platform, selinux, service_mgr, user};
use virtualization::virtualization;

/// Gathers the local host's facts as Ansible names them (`ansible_hostname`,
/// `ansible_default_ipv4`, `ansible_os_family`, ...). Keys are without the `ansible_` prefix
/// inside `ansible_facts`; the caller injects both forms.
pub fn gather() -> Map<String, Value> {
    let mut f = Map::new();
    platform(&mut f);
    distribution(&mut f);
    pkg_mgr(&mut f);
    service_mgr(&mut f);
    user(&mut f);
    f.insert(
        "env".into(),
        Value::Object(std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), Value::String(v.to_string_lossy().into_owned()))).collect()),
    );
    f.insert("date_time".into(), Value::Object(date_time()));
    f.insert("dns".into(), Value::Object(dns()));
    selinux(&mut f);
    let apparmor = if Path::new("/sys/kernel/security/apparmor").exists() { "enabled" } else { "disabled" };
    f.insert("apparmor".into(), json!({ "status": apparmor }));
    f.insert("fips".into(), Value::Bool(read("/proc/sys/crypto/fips_enabled").as_deref() == Some("1")));
    if let Some(lsb) = lsb() {
        f.insert("lsb".into(), Value::Object(lsb));
    }
    cmdline(&mut f);
    if let Some(l) = read("/proc/loadavg") {
        let v: Vec<f64> = l.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
        if v.len() == 3 {
            f.insert("loadavg".into(), json!({"1m": v[0], "5m": v[1], "15m": v[2]}));
        }
    }
    if let Some(u) = read("/proc/uptime").and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok()) {
        f.insert("uptime_seconds".into(), Value::from(u as i64));
    }
    f.insert("is_chroot".into(), Value::Bool(is_chroot()));
    cpu(&mut f);
    memory(&mut f);
    dmi(&mut f);
    f.insert("mounts".into(), Value::Array(mounts()));
    network(&mut f);
    storage_ids(&mut f);
    virtualization(&mut f);
    f.insert("local".into(), Value::Object(local_facts()));
    f.insert("gather_subset".into(), json!(["all"]));
    f.insert("module_setup".into(), Value::Bool(true));
    f.sort_keys();
    f
}

// ----- helpers -----

/// Ansible's `get_file_content`: the stripped text of a file, `None` when it cannot be read or is
/// empty.
fn read(path: &str) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

fn cstr(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string from libc
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Ansible's `get_bin_path`: `PATH` plus the sbin directories.
fn bin_path(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':').filter(|d| !d.is_empty()).chain(["/sbin", "/usr/sbin", "/usr/local/sbin"]).map(|d| format!("{d}/{name}")).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// `KEY=value` lines with shell quoting (os-release, lsb-release, SELinux config).
fn parse_kv_file(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        let mut val = String::new();
        let mut chars = v.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => {
                    if let Some(n) = chars.next() {
                        val.push(n);
                    }
                }
                (None, c) if c.is_whitespace() => break,
                (_, c) => val.push(c),
            }
        }
        out.insert(k.trim().to_string(), val);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use regex::Regex;

    use super::*;

    #[test]
    fn gathers_the_main_facts() {
        let f = gather();
        for key in [
            "hostname",
            "nodename",
            "fqdn",
            "domain",
            "system",
            "kernel",
            "kernel_version",
            "machine",
            "architecture",
            "os_family",
            "distribution",
            "distribution_version",
            "distribution_major_version",
            "distribution_release",
            "pkg_mgr",
            "service_mgr",
            "processor_count",
            "processor_cores",
            "processor_vcpus",
            "memtotal_mb",
            "memfree_mb",
            "default_ipv4",
            "default_ipv6",
            "all_ipv4_addresses",
            "interfaces",
            "env",
            "user_id",
            "user_uid",
            "user_gid",
            "user_dir",
            "user_shell",
            "date_time",
            "selinux",
            "virtualization_type",
            "mounts",
        ] {
            assert!(f.contains_key(key), "missing {key}");
        }
        assert_eq!(f["system"], json!("Linux"));
        assert!(f["default_ipv4"].is_object());
        if let Some(addr) = f["default_ipv4"].get("address") {
            assert!(addr.as_str().unwrap().parse::<Ipv4Addr>().is_ok());
            assert!(f["default_ipv4"].get("interface").is_some());
        }
        assert!(f["processor_vcpus"].as_i64().unwrap() >= 1);
        assert!(f["memtotal_mb"].as_i64().unwrap() > 0);
        let dt = f["date_time"].as_object().unwrap();
        for k in ["epoch", "date", "time", "iso8601", "iso8601_micro", "tz", "tz_offset", "weekday"] {
            assert!(dt[k].as_str().is_some_and(|s| !s.is_empty()), "date_time.{k}");
        }
        assert!(Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap().is_match(dt["iso8601"].as_str().unwrap()));
        assert!(f["env"].get("PATH").is_some() || std::env::var_os("PATH").is_none());
        for iface in f["interfaces"].as_array().unwrap() {
            let key = iface.as_str().unwrap().replace('-', "_");
            assert!(f[&key]["device"].is_string() || key.contains('_'), "{key}");
        }
    }
}

//! Facts about the running system: platform (uname, host names), package and service
//! managers, the user, date and time, SELinux, the kernel command line, chroot, and local facts.

use std::ffi::CString;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::{bin_path, cstr, exists, parse_kv_file, read};

// ----- platform -----

fn uname() -> Option<[String; 5]> {
    // SAFETY: uname fills the zeroed struct
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    Some([cstr(u.sysname.as_ptr()), cstr(u.nodename.as_ptr()), cstr(u.release.as_ptr()), cstr(u.version.as_ptr()), cstr(u.machine.as_ptr())])
}

pub(super) fn platform(f: &mut Map<String, Value>) {
    let [system, node, release, version, machine] = uname().unwrap_or_default();
    f.insert("system".into(), Value::String(system));
    f.insert("kernel".into(), Value::String(release));
    f.insert("kernel_version".into(), Value::String(version));
    f.insert("machine".into(), Value::String(machine.clone()));
    let fqdn = fqdn(&node);
    f.insert("hostname".into(), Value::String(node.split('.').next().unwrap_or("").to_string()));
    f.insert("nodename".into(), Value::String(node.clone()));
    let domain = fqdn.split('.').skip(1).collect::<Vec<_>>().join(".");
    f.insert("fqdn".into(), Value::String(fqdn));
    f.insert("domain".into(), Value::String(domain));
    let bits = (usize::BITS).to_string();
    f.insert("userspace_bits".into(), Value::String(bits.clone()));
    let i86 = Regex::new(r"i([3456]86|86pc)").expect("regex");
    if machine == "x86_64" {
        f.insert("architecture".into(), Value::String(machine.clone()));
        let ua = if bits == "64" { "x86_64" } else { "i386" };
        f.insert("userspace_architecture".into(), Value::String(ua.into()));
    } else if i86.is_match(&machine) {
        f.insert("architecture".into(), Value::String("i386".into()));
        let ua = if bits == "64" { "x86_64" } else { "i386" };
        f.insert("userspace_architecture".into(), Value::String(ua.into()));
    } else {
        f.insert("architecture".into(), Value::String(machine));
    }
    if let Some(id) = read("/var/lib/dbus/machine-id").or_else(|| read("/etc/machine-id")) {
        f.insert("machine_id".into(), Value::String(id.lines().next().unwrap_or("").to_string()));
    }
}

/// Python's `socket.getfqdn()` answered from `/etc/hosts`: the host name's address, then the
/// first name of that address that contains a dot, else its canonical name. Without an entry,
/// the node name itself.
fn fqdn(node: &str) -> String {
    let Ok(hosts) = fs::read_to_string("/etc/hosts") else { return node.to_string() };
    let entries: Vec<(String, Vec<String>)> = hosts
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut it = l.split_whitespace();
            let ip = it.next()?.to_string();
            let names: Vec<String> = it.map(str::to_string).collect();
            (!names.is_empty()).then_some((ip, names))
        })
        .collect();
    let has = |(_, names): &&(String, Vec<String>)| names.iter().any(|n| n.eq_ignore_ascii_case(node));
    let ip = entries.iter().filter(has).find(|(ip, _)| ip.parse::<Ipv4Addr>().is_ok()).or_else(|| entries.iter().find(has)).map(|(ip, _)| ip.clone());
    let Some(ip) = ip else { return node.to_string() };
    let Some((_, names)) = entries.iter().find(|(i, _)| *i == ip) else { return node.to_string() };
    names.iter().find(|n| n.contains('.')).unwrap_or(&names[0]).clone()
}

// ----- package and service managers -----

const PKG_MGRS: &[(&str, &str)] = &[
    ("/usr/bin/rpm-ostree", "atomic_container"),
    ("/usr/bin/yum", "dnf"),
    ("/usr/bin/dnf-3", "dnf"),
    ("/usr/bin/dnf5", "dnf5"),
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/zypper", "zypper"),
    ("/usr/sbin/urpmi", "urpmi"),
    ("/usr/bin/pacman", "pacman"),
    ("/bin/opkg", "opkg"),
    ("/usr/pkg/bin/pkgin", "pkgin"),
    ("/opt/local/bin/pkgin", "pkgin"),
    ("/opt/tools/bin/pkgin", "pkgin"),
    ("/opt/local/bin/port", "macports"),
    ("/usr/local/bin/brew", "homebrew"),
    ("/opt/homebrew/bin/brew", "homebrew"),
    ("/sbin/apk", "apk"),
    ("/usr/sbin/pkg", "pkgng"),
    ("/usr/sbin/swlist", "swdepot"),
    ("/usr/bin/emerge", "portage"),
    ("/usr/sbin/pkgadd", "svr4pkg"),
    ("/usr/bin/pkg", "pkg5"),
    ("/usr/bin/xbps-install", "xbps"),
    ("/usr/local/sbin/pkg", "pkgng"),
    ("/usr/bin/swupd", "swupd"),
    ("/usr/sbin/sorcery", "sorcery"),
    ("/usr/bin/installp", "installp"),
];

pub(super) fn pkg_mgr(f: &mut Map<String, Value>) {
    let family = f.get("os_family").and_then(Value::as_str).unwrap_or("").to_string();
    let mut name = "unknown".to_string();
    for (path, mgr) in PKG_MGRS {
        if family == "Altlinux" && *path == "/usr/bin/pkg" {
            continue;
        }
        if exists(path) {
            name = mgr.to_string();
        }
    }
    if family == "RedHat" {
        name = if exists("/run/ostree-booted") {
            "atomic_container".into()
        } else {
            ["/usr/bin/dnf", "/usr/bin/microdnf"]
                .iter()
                .find(|p| exists(p))
                .map(|p| {
                    let real = fs::canonicalize(p).ok();
                    if real.as_deref() == Some(Path::new("/usr/bin/dnf5")) { "dnf5" } else { "dnf" }.to_string()
                })
                .unwrap_or_else(|| "unknown".into())
        };
    } else if family == "Debian" && name != "apt" {
        name = "apt".into();
    } else if family == "Altlinux" && name == "apt" {
        name = "apt_rpm".into();
    }
    f.insert("pkg_mgr".into(), Value::String(name));
}

pub(super) fn service_mgr(f: &mut Map<String, Value>) {
    let mut proc_1 = fs::read_to_string("/proc/1/comm").ok();
    if proc_1.as_deref() == Some("COMMAND\n") {
        proc_1 = None;
    }
    if proc_1.is_none()
        && let Ok(t) = fs::read_link("/sbin/init")
    {
        proc_1 = Some(t.to_string_lossy().into_owned());
    }
    let proc_1 = proc_1.map(|p| p.rsplit('/').next().unwrap_or("").trim().to_string()).filter(|p| !p.is_empty() && p != "init" && !p.ends_with("sh"));
    let name = if let Some(p) = proc_1 {
        match p.as_str() {
            "procd" => "openwrt_init".to_string(),
            "runit-init" => "runit".to_string(),
            "svscan" => "svc".to_string(),
            "openrc-init" => "openrc".to_string(),
            _ => p,
        }
    } else {
        let systemctl = bin_path("systemctl").is_some();
        let dist = f.get("distribution").and_then(Value::as_str).unwrap_or("");
        if dist == "OpenWrt" {
            "openwrt_init".into()
        } else if dist == "SMGL" {
            "simpleinit_msb".into()
        } else if systemctl && ["/run/systemd/system/", "/dev/.run/systemd/", "/dev/.systemd/"].iter().any(|p| exists(p)) {
            "systemd".into()
        } else if bin_path("initctl").is_some() && exists("/etc/init/") {
            "upstart".into()
        } else if exists("/sbin/openrc") {
            "openrc".into()
        } else if systemctl && fs::read_link("/sbin/init").is_ok_and(|t| t.file_name().is_some_and(|n| n == "systemd")) {
            "systemd".into()
        } else if exists("/etc/init.d/") {
            "sysvinit".into()
        } else if exists("/etc/dinit.d/") {
            "dinit".into()
        } else {
            "service".into()
        }
    };
    f.insert("service_mgr".into(), Value::String(name));
}

// ----- user, environment, time -----

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    gecos: String,
    dir: String,
    shell: String,
}

fn passwd(by_name: Option<&str>, uid: u32) -> Option<Passwd> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: the buffers outlive the calls; the result points into `pw`/`buf`
    let rc = match by_name {
        Some(n) => {
            let c = CString::new(n).ok()?;
            unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) }
        }
        None => unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) },
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(Passwd { name: cstr(pw.pw_name), uid: pw.pw_uid, gid: pw.pw_gid, gecos: cstr(pw.pw_gecos), dir: cstr(pw.pw_dir), shell: cstr(pw.pw_shell) })
}

pub(super) fn user(f: &mut Map<String, Value>) {
    // SAFETY: trivial libc getters
    let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
    // Python's getpass.getuser(): the environment first, then the password database
    let env_user = ["LOGNAME", "USER", "LNAME", "USERNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let pw_uid = passwd(None, uid);
    let user_id = env_user.or_else(|| pw_uid.as_ref().map(|p| p.name.clone())).unwrap_or_default();
    let pw = passwd(Some(&user_id), 0).or(pw_uid);
    f.insert("user_id".into(), Value::String(user_id));
    if let Some(pw) = pw {
        f.insert("user_uid".into(), Value::from(pw.uid));
        f.insert("user_gid".into(), Value::from(pw.gid));
        f.insert("user_gecos".into(), Value::String(pw.gecos));
        f.insert("user_dir".into(), Value::String(pw.dir));
        f.insert("user_shell".into(), Value::String(pw.shell));
    }
    f.insert("real_user_id".into(), Value::from(uid));
    f.insert("effective_user_id".into(), Value::from(euid));
    f.insert("real_group_id".into(), Value::from(gid));
    f.insert("effective_group_id".into(), Value::from(gid));
}

unsafe extern "C" {
    fn tzset();
    static tzname: [*const libc::c_char; 2];
}

fn strftime(fmt: &str, tm: &libc::tm) -> String {
    let Ok(cfmt) = CString::new(fmt) else { return String::new() };
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: buf is large enough for these formats; strftime NUL-terminates on success
    let n = unsafe { libc::strftime(buf.as_mut_ptr(), buf.len(), cfmt.as_ptr(), tm) };
    if n == 0 {
        return String::new();
    }
    cstr(buf.as_ptr())
}

/// Ansible's `date_time` facts: local time fields, UTC `iso8601*`, the zone names and offset.
pub(super) fn date_time() -> Map<String, Value> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    let micros = now.subsec_micros();
    let mut local: libc::tm = unsafe { std::mem::zeroed() };
    let mut utc: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: the out-structs are valid; tzset initialises tzname for localtime_r
    let dst_name = unsafe {
        tzset();
        libc::localtime_r(&secs, &mut local);
        libc::gmtime_r(&secs, &mut utc);
        cstr(tzname[1])
    };
    let l = |fmt: &str| Value::String(strftime(fmt, &local));
    let mut m = Map::new();
    m.insert("year".into(), l("%Y"));
    m.insert("month".into(), l("%m"));
    m.insert("weekday".into(), l("%A"));
    m.insert("weekday_number".into(), l("%w"));
    m.insert("weeknumber".into(), l("%W"));
    m.insert("day".into(), l("%d"));
    m.insert("hour".into(), l("%H"));
    m.insert("minute".into(), l("%M"));
    m.insert("second".into(), l("%S"));
    m.insert("epoch".into(), Value::String(secs.to_string()));
    m.insert("epoch_int".into(), Value::String(secs.to_string()));
    m.insert("date".into(), l("%Y-%m-%d"));
    m.insert("time".into(), l("%H:%M:%S"));
    m.insert("iso8601_micro".into(), Value::String(format!("{}.{micros:06}Z", strftime("%Y-%m-%dT%H:%M:%S", &utc))));
    m.insert("iso8601".into(), Value::String(strftime("%Y-%m-%dT%H:%M:%SZ", &utc)));
    m.insert("iso8601_basic".into(), Value::String(format!("{}{micros:06}", strftime("%Y%m%dT%H%M%S", &local))));
    m.insert("iso8601_basic_short".into(), l("%Y%m%dT%H%M%S"));
    m.insert("tz".into(), l("%Z"));
    m.insert("tz_dst".into(), Value::String(dst_name));
    m.insert("tz_offset".into(), l("%z"));
    m.sort_keys();
    m
}

pub(super) fn selinux(f: &mut Map<String, Value>) {
    f.insert("selinux_python_present".into(), Value::Bool(true));
    let enforce = read("/sys/fs/selinux/enforce");
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        f.insert("selinux".into(), json!({"status": "disabled"}));
        return;
    }
    let mut m = Map::new();
    m.insert("status".into(), json!("enabled"));
    if let Some(v) = read("/sys/fs/selinux/policyvers") {
        m.insert("policyvers".into(), v.parse::<i64>().map(Value::from).unwrap_or(json!("unknown")));
    }
    let cfg = fs::read_to_string("/etc/selinux/config").map(|t| parse_kv_file(&t)).unwrap_or_default();
    m.insert("config_mode".into(), json!(cfg.get("SELINUX").cloned().unwrap_or_else(|| "unknown".into())));
    let mode = match enforce.as_deref() {
        Some("1") => "enforcing",
        Some("0") => "permissive",
        _ => "unknown",
    };
    m.insert("mode".into(), json!(mode));
    m.insert("type".into(), json!(cfg.get("SELINUXTYPE").cloned().unwrap_or_else(|| "unknown".into())));
    f.insert("selinux".into(), Value::Object(m));
}

pub(super) fn cmdline(f: &mut Map<String, Value>) {
    let Some(data) = read("/proc/cmdline") else { return };
    let mut last = Map::new();
    let mut all = Map::new();
    for piece in data.split_whitespace() {
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (piece.to_string(), Value::Bool(true)),
        };
        last.insert(k.clone(), v.clone());
        match all.get_mut(&k) {
            Some(Value::Array(a)) => a.push(v),
            Some(old) => *old = Value::Array(vec![old.clone(), v]),
            None => {
                all.insert(k, v);
            }
        }
    }
    f.insert("cmdline".into(), Value::Object(last));
    f.insert("proc_cmdline".into(), Value::Object(all));
}

pub(super) fn is_chroot() -> bool {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os("debian_chroot").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    let Ok(root) = fs::metadata("/") else { return false };
    match fs::metadata("/proc/1/root/.") {
        Ok(p1) => root.ino() != p1.ino() || root.dev() != p1.dev(),
        Err(_) => {
            let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
            // SAFETY: valid path and out-struct
            let t = if unsafe { libc::statfs(c"/".as_ptr(), &mut sfs) } == 0 { sfs.f_type as i64 } else { 0 };
            let root_ino = match t {
                0x9123683E => 256, // btrfs
                0x58465342 => 128, // xfs
                _ => 2,
            };
            root.ino() != root_ino
        }
    }
}

/// `ansible_local`: `/etc/ansible/facts.d/*.fact` files holding JSON or INI (executable fact
/// scripts are not run).
pub(super) fn local_facts() -> Map<String, Value> {
    let mut out = Map::new();
    let Ok(rd) = fs::read_dir("/etc/ansible/facts.d") else { return out };
    let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for p in files {
        let Some(name) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".fact")) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(&p) else { continue };
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(v) => v,
            Err(_) => {
                let mut sections = Map::new();
                let mut current: Option<String> = None;
                for line in text.lines() {
                    let t = line.trim();
                    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                        continue;
                    }
                    if t.starts_with('[') && t.ends_with(']') {
                        let s = t[1..t.len() - 1].to_string();
                        sections.entry(s.clone()).or_insert_with(|| json!({}));
                        current = Some(s);
                    } else if let (Some(sec), Some((k, v))) = (&current, t.split_once(['=', ':']))
                        && let Some(Value::Object(m)) = sections.get_mut(sec)
                    {
                        m.insert(k.trim().to_lowercase(), json!(v.trim()));
                    }
                }
                if sections.is_empty() {
                    json!(format!("error loading facts as JSON or ini - please check content: {}", p.display()))
                } else {
                    Value::Object(sections)
                }
            }
        };
        out.insert(name.to_string(), value);
    }
    out
}

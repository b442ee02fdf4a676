//! Facts about the local host, gathered natively (no Python): what `setup` gives playbooks.
//!
//! Everything comes from `/proc`, `/sys`, `/etc` and libc (`uname`, `getifaddrs`, `getpwuid_r`,
//! `statvfs`, `localtime_r`/`strftime`); no subprocess is started and nothing touches the
//! network. The names, types and formats follow ansible-core 2.19's Linux collectors; where
//! those run a command (`ip`, `lsb_release`, `lsblk`, `dmidecode`) the same data is read from the
//! kernel instead, and `fqdn` is resolved from `/etc/hosts` only (no DNS query).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

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

// ----- platform -----

fn uname() -> Option<[String; 5]> {
    // SAFETY: uname fills the zeroed struct
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    Some([cstr(u.sysname.as_ptr()), cstr(u.nodename.as_ptr()), cstr(u.release.as_ptr()), cstr(u.version.as_ptr()), cstr(u.machine.as_ptr())])
}

fn platform(f: &mut Map<String, Value>) {
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

// ----- distribution -----

const OS_FAMILY_MAP: &[(&str, &[&str])] = &[
    (
        "RedHat",
        &[
            "RedHat",
            "RHEL",
            "Fedora",
            "CentOS",
            "Scientific",
            "SLC",
            "Ascendos",
            "CloudLinux",
            "PSBM",
            "OracleLinux",
            "OVS",
            "OEL",
            "Amazon",
            "Amzn",
            "Virtuozzo",
            "XenServer",
            "Alibaba",
            "EulerOS",
            "openEuler",
            "AlmaLinux",
            "Rocky",
            "TencentOS",
            "EuroLinux",
            "Kylin Linux Advanced Server",
            "MIRACLE",
        ],
    ),
    (
        "Debian",
        &[
            "Debian",
            "Ubuntu",
            "Raspbian",
            "Neon",
            "KDE neon",
            "Linux Mint",
            "SteamOS",
            "Devuan",
            "Kali",
            "Cumulus Linux",
            "Pop!_OS",
            "Parrot",
            "Pardus GNU/Linux",
            "Uos",
            "Deepin",
            "OSMC",
            "Linux Mint Debian Edition",
        ],
    ),
    (
        "Suse",
        &["SuSE", "SLES", "SLED", "openSUSE", "openSUSE Tumbleweed", "SLES_SAP", "SUSE_LINUX", "openSUSE Leap", "ALP-Dolomite", "SL-Micro", "openSUSE MicroOS"],
    ),
    ("Archlinux", &["Archlinux", "Antergos", "Manjaro"]),
    ("Mandrake", &["Mandrake", "Mandriva"]),
    ("Solaris", &["Solaris", "Nexenta", "OmniOS", "OpenIndiana", "SmartOS"]),
    ("Slackware", &["Slackware"]),
    ("Altlinux", &["Altlinux"]),
    ("SMGL", &["SMGL"]),
    ("Gentoo", &["Gentoo", "Funtoo"]),
    ("Alpine", &["Alpine"]),
    ("AIX", &["AIX"]),
    ("HP-UX", &["HPUX"]),
    ("Darwin", &["MacOSX"]),
    ("FreeBSD", &["FreeBSD", "TrueOS"]),
    ("ClearLinux", &["Clear Linux OS", "Clear Linux Mix"]),
    ("DragonFly", &["DragonflyBSD", "DragonFlyBSD", "Gentoo/DragonflyBSD", "Gentoo/DragonFlyBSD"]),
    ("NetBSD", &["NetBSD"]),
];

/// Ansible's `os_family` for a `distribution`: its family, or the distribution itself.
pub fn os_family(distribution: &str) -> String {
    OS_FAMILY_MAP.iter().find(|(_, names)| names.contains(&distribution)).map(|(fam, _)| fam.to_string()).unwrap_or_else(|| distribution.to_string())
}

/// Ansible's `DistributionFiles.OSDIST_LIST`: (path, name, allow empty).
const OSDIST_LIST: &[(&str, &str, bool)] = &[
    ("/etc/altlinux-release", "Altlinux", false),
    ("/etc/oracle-release", "OracleLinux", false),
    ("/etc/slackware-version", "Slackware", false),
    ("/etc/centos-release", "CentOS", false),
    ("/etc/redhat-release", "RedHat", false),
    ("/etc/vmware-release", "VMwareESX", true),
    ("/etc/openwrt_release", "OpenWrt", false),
    ("/etc/os-release", "Amazon", false),
    ("/etc/system-release", "Amazon", false),
    ("/etc/alpine-release", "Alpine", false),
    ("/etc/arch-release", "Archlinux", true),
    ("/etc/os-release", "Archlinux", false),
    ("/etc/os-release", "SUSE", false),
    ("/etc/SuSE-release", "SUSE", false),
    ("/etc/gentoo-release", "Gentoo", false),
    ("/etc/os-release", "Debian", false),
    ("/etc/lsb-release", "Debian", false),
    ("/etc/lsb-release", "Mandriva", false),
    ("/etc/sourcemage-release", "SMGL", false),
    ("/usr/lib/os-release", "ClearLinux", false),
    ("/etc/coreos/update.conf", "Coreos", false),
    ("/etc/os-release", "Flatcar", false),
    ("/etc/os-release", "NA", false),
];

fn os_release() -> HashMap<String, String> {
    fs::read_to_string("/etc/os-release").or_else(|_| fs::read_to_string("/usr/lib/os-release")).map(|t| parse_kv_file(&t)).unwrap_or_default()
}

/// Python's `str.capitalize`.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
        None => String::new(),
    }
}

/// The `distro` library's view that Ansible starts from: `(id, distribution, version,
/// codename)`.
fn distro_guess(osr: &HashMap<String, String>) -> (String, String, String, Option<String>) {
    let mut id = osr.get("ID").map(|s| s.to_lowercase().replace(' ', "_")).unwrap_or_default();
    if id.is_empty()
        && let Some(lsb) = fs::read_to_string("/etc/lsb-release").ok().map(|t| parse_kv_file(&t))
    {
        id = lsb.get("DISTRIB_ID").map(|s| s.to_lowercase().replace(' ', "_")).unwrap_or_default();
    }
    id = match id.as_str() {
        "ol" => "oracle".into(),
        "opensuse-leap" => "opensuse".into(),
        _ => id,
    };
    let mut dist = capitalize(&id);
    match dist.as_str() {
        "Amzn" => dist = "Amazon".into(),
        "Rhel" => dist = "Redhat".into(),
        "" => dist = "OtherLinux".into(),
        _ => {}
    }
    let mut version = osr.get("VERSION_ID").cloned().unwrap_or_default();
    if id == "centos" {
        // the best version: /etc/centos-release has the minor
        if let Some(c) = read("/etc/centos-release")
            && let Some(m) = Regex::new(r"release (\d[\d.]*)").expect("regex").captures(&c)
            && m[1].matches('.').count() >= version.matches('.').count()
        {
            version = m[1].split('.').take(2).collect::<Vec<_>>().join(".");
        }
    } else if id == "debian"
        && let Some(d) = read("/etc/debian_version")
        && Regex::new(r"^\d+(\.\d+)*$").expect("regex").is_match(&d)
        && d.matches('.').count() >= version.matches('.').count()
    {
        version = d;
    }
    let codename = osr
        .get("VERSION_CODENAME")
        .or_else(|| osr.get("UBUNTU_CODENAME"))
        .cloned()
        .or_else(|| {
            if id == "ubuntu" {
                let lsb = fs::read_to_string("/etc/lsb-release").ok().map(|t| parse_kv_file(&t))?;
                return lsb.get("DISTRIB_CODENAME").cloned();
            }
            None
        })
        .or_else(|| {
            let v = osr.get("VERSION")?;
            let c = Regex::new(r"\((\D+)\)|,\s*(\D+)").expect("regex").captures(v)?;
            c.get(1).or(c.get(2)).map(|m| m.as_str().to_string())
        })
        .filter(|c| !c.is_empty());
    (id, dist, version, codename)
}

fn distribution(f: &mut Map<String, Value>) {
    let osr = os_release();
    let (_id, dist, version, codename) = distro_guess(&osr);
    let mut d: BTreeMap<&str, Value> = BTreeMap::new();
    let version = if version.is_empty() { "NA".to_string() } else { version };
    d.insert("distribution", Value::String(dist));
    d.insert(
        "distribution_major_version",
        Value::String({
            let m = version.split('.').next().unwrap_or("");
            if m.is_empty() { "NA".into() } else { m.to_string() }
        }),
    );
    d.insert("distribution_version", Value::String(version));
    d.insert("distribution_release", Value::String(codename.unwrap_or_else(|| "NA".into())));

    for (path, name, allow_empty) in OSDIST_LIST {
        let Ok(meta) = fs::metadata(path) else { continue };
        if !meta.is_file() || (!allow_empty && meta.len() == 0) {
            continue;
        }
        if *allow_empty {
            d.insert("distribution", Value::String(name.to_string()));
            d.insert("distribution_file_path", Value::String(path.to_string()));
            d.insert("distribution_file_variety", Value::String(name.to_string()));
            break;
        }
        let content = read(path).unwrap_or_default();
        let content = content.trim_matches(['\'', '"', '\\']);
        if let Some(parsed) = parse_dist_file(name, content, path, &d) {
            d.insert("distribution", Value::String(name.to_string()));
            d.insert("distribution_file_path", Value::String(path.to_string()));
            d.insert("distribution_file_variety", Value::String(name.to_string()));
            d.insert("distribution_file_parsed", Value::Bool(true));
            for (k, v) in parsed {
                d.insert(k, v);
            }
            break;
        }
    }
    let fam = os_family(d["distribution"].as_str().unwrap_or(""));
    for (k, v) in d {
        f.insert(k.to_string(), v);
    }
    f.insert("os_family".into(), Value::String(fam));
}

type Facts = Vec<(&'static str, Value)>;

/// One of Ansible's `parse_distribution_file_*` (or its search-string rule): `None` when the
/// file does not belong to that distribution.
fn parse_dist_file(name: &str, data: &str, path: &str, collected: &BTreeMap<&str, Value>) -> Option<Facts> {
    let s = |v: &str| Value::String(v.to_string());
    let re = |p: &str| Regex::new(p).expect("regex");
    let search_string = match name {
        "OracleLinux" => Some("Oracle Linux"),
        "RedHat" => Some("Red Hat"),
        "Altlinux" => Some("ALT"),
        "SMGL" => Some("Source Mage GNU/Linux"),
        _ => None,
    };
    if let Some(ss) = search_string {
        return Some(if data.contains(ss) {
            vec![("distribution", s(name)), ("distribution_file_search_string", s(ss))]
        } else {
            vec![("distribution", s(data.split_whitespace().next().unwrap_or("")))]
        });
    }
    let mut out: Facts = Vec::new();
    match name {
        "Archlinux" => {
            return data.contains("Arch Linux").then(|| vec![("distribution", s("Archlinux"))]);
        }
        "Slackware" => {
            if !data.contains("Slackware") {
                return None;
            }
            out.push(("distribution", s(name)));
            if let Some(m) = re(r"\w+[.]\w+\+?").find(data) {
                out.push(("distribution_version", s(m.as_str())));
            }
        }
        "Amazon" => {
            if !data.contains("Amazon") {
                return None;
            }
            out.push(("distribution", s("Amazon")));
            if path == "/etc/os-release" {
                if let Some(c) = re(r#"VERSION_ID="(.*)""#).captures(data) {
                    let v = &c[1];
                    out.push(("distribution_version", s(v)));
                    let parts: Vec<&str> = v.split('.').collect();
                    out.push(("distribution_major_version", s(parts[0])));
                    out.push(("distribution_minor_version", s(if parts.len() > 1 { parts[1] } else { "NA" })));
                }
            } else {
                let v = data.split_whitespace().find(|w| w.chars().all(|c| c.is_ascii_digit())).unwrap_or("NA");
                out.push(("distribution_version", s(v)));
            }
        }
        "OpenWrt" => {
            if !data.contains("OpenWrt") {
                return None;
            }
            out.push(("distribution", s(name)));
            if let Some(c) = re(r#"DISTRIB_RELEASE="(.*)""#).captures(data) {
                out.push(("distribution_version", s(&c[1])));
            }
            if let Some(c) = re(r#"DISTRIB_CODENAME="(.*)""#).captures(data) {
                out.push(("distribution_release", s(&c[1])));
            }
        }
        "Alpine" => {
            out.push(("distribution", s("Alpine")));
            out.push(("distribution_version", s(data)));
        }
        "SUSE" => {
            let lower = data.to_lowercase();
            if !lower.contains("suse") {
                return None;
            }
            if path == "/etc/os-release" {
                for line in data.lines() {
                    if let Some(c) = re(r"^NAME=(.*)").captures(line) {
                        out.push(("distribution", s(c[1].trim_matches('"'))));
                    }
                    if let Some(c) = re(r#"^VERSION_ID="?([0-9]+\.?[0-9]*)"?"#).captures(line) {
                        out.push(("distribution_version", s(&c[1])));
                        out.push(("distribution_major_version", s(c[1].split('.').next().unwrap_or(""))));
                    }
                    let rel = re(r#"^VERSION_ID="?[0-9]+\.?([0-9]*)"?"#);
                    if lower.contains("open") {
                        if let Some(c) = rel.captures(line) {
                            out.push(("distribution_release", s(&c[1])));
                        }
                    } else if lower.contains("enterprise") && line.contains("VERSION_ID") {
                        let r = rel.captures(line).map(|c| c[1].to_string()).filter(|r| !r.is_empty());
                        out.push(("distribution_release", s(r.as_deref().unwrap_or("0"))));
                    }
                }
            } else if path == "/etc/SuSE-release" {
                let lines: Vec<&str> = data.lines().collect();
                if lower.contains("open") {
                    out.push(("distribution", s(lines.first().and_then(|l| l.split_whitespace().next()).unwrap_or(""))));
                    for line in &lines {
                        if let Some(c) = re(r"CODENAME *= *([^\n]+)").captures(line) {
                            out.push(("distribution_release", s(c[1].trim())));
                        }
                    }
                } else if lower.contains("enterprise") {
                    if data.contains("Server") {
                        out.push(("distribution", s("SLES")));
                    } else if data.contains("Desktop") {
                        out.push(("distribution", s("SLED")));
                    }
                    for line in &lines {
                        if let Some(c) = re(r"PATCHLEVEL = ([0-9]+)").captures(line) {
                            out.push(("distribution_release", s(&c[1])));
                            let base = collected.get("distribution_version").and_then(Value::as_str).unwrap_or("");
                            out.push(("distribution_version", s(&format!("{base}.{}", &c[1]))));
                        }
                    }
                }
            }
            if let Some(c) = re(r#"(?m)^VARIANT_ID="?([^"\n]*)"?"#).captures(data) {
                match &c[1] {
                    "server-sap" | "sles-sap" => out.push(("distribution", s("SLES_SAP"))),
                    "transactional" => out.push(("distribution", s("SL-Micro"))),
                    _ => {}
                }
            } else if let Ok(target) = fs::read_link("/etc/products.d/baseproduct") {
                let t = target.to_string_lossy();
                if t.ends_with("SLES_SAP.prod") {
                    out.push(("distribution", s("SLES_SAP")));
                } else if t.ends_with("SL-Micro.prod") {
                    out.push(("distribution", s("SL-Micro")));
                }
            }
        }
        "Debian" => {
            if data.contains("Debian") || data.contains("Raspbian") {
                out.push(("distribution", s("Debian")));
                if let Some(c) = re(r"PRETTY_NAME=[^(]+ \(?([^)]+?)\)").captures(data) {
                    out.push(("distribution_release", s(&c[1])));
                }
                if let Ok(dv) = fs::read_to_string("/etc/debian_version") {
                    for line in dv.lines() {
                        if let Some(c) = re(r"(\d+)\.(\d+)").captures(line.trim()) {
                            out.push(("distribution_minor_version", s(&c[2])));
                        }
                    }
                }
            } else if data.contains("Ubuntu") {
                out.push(("distribution", s("Ubuntu")));
            } else if data.contains("SteamOS") {
                out.push(("distribution", s("SteamOS")));
            } else if (path == "/etc/lsb-release" || path == "/etc/os-release") && (data.contains("Kali") || data.contains("Parrot")) {
                out.push(("distribution", s(if data.contains("Kali") { "Kali" } else { "Parrot" })));
                if let Some(c) = re(r"DISTRIB_RELEASE=(.*)").captures(data) {
                    out.push(("distribution_release", s(&c[1])));
                }
            } else if data.contains("Devuan") {
                out.push(("distribution", s("Devuan")));
                if let Some(c) = re(r#"PRETTY_NAME="?[^("]+ \(?([^) "]+)\)?"#).captures(data) {
                    out.push(("distribution_release", s(&c[1])));
                }
                if let Some(c) = re(r#"VERSION_ID="(.*)""#).captures(data) {
                    out.push(("distribution_version", s(&c[1])));
                    out.push(("distribution_major_version", s(&c[1])));
                }
            } else if data.contains("Cumulus") {
                out.push(("distribution", s("Cumulus Linux")));
                if let Some(c) = re(r"VERSION_ID=(.*)").captures(data) {
                    out.push(("distribution_version", s(&c[1])));
                    out.push(("distribution_major_version", s(c[1].split('.').next().unwrap_or(""))));
                }
                if let Some(c) = re(r#"VERSION="(.*)""#).captures(data) {
                    out.push(("distribution_release", s(&c[1])));
                }
            } else if data.contains("Mint") {
                out.push(("distribution", s("Linux Mint")));
                if let Some(c) = re(r#"VERSION_ID="(.*)""#).captures(data) {
                    out.push(("distribution_version", s(&c[1])));
                    out.push(("distribution_major_version", s(c[1].split('.').next().unwrap_or(""))));
                }
            } else if data.contains("UOS") || data.contains("Uos") || data.contains("uos") || data.contains("Deepin") || data.contains("deepin") {
                let uos = data.contains("UOS") || data.contains("Uos") || data.contains("uos");
                out.push(("distribution", s(if uos { "Uos" } else { "Deepin" })));
                if let Some(c) = re(r#"VERSION_CODENAME="?([^"]+)"?"#).captures(data) {
                    out.push(("distribution_release", s(&c[1])));
                }
                if let Some(c) = re(r#"VERSION_ID="(.*)""#).captures(data) {
                    out.push(("distribution_version", s(&c[1])));
                    out.push(("distribution_major_version", s(c[1].split('.').next().unwrap_or(""))));
                }
            } else if data.contains("LMDE") {
                out.push(("distribution", s("Linux Mint Debian Edition")));
            } else {
                return None;
            }
        }
        "Mandriva" => {
            if !data.contains("Mandriva") {
                return None;
            }
            if let Some(c) = re(r#"DISTRIB_RELEASE="(.*)""#).captures(data) {
                out.push(("distribution_version", s(&c[1])));
            }
            if let Some(c) = re(r#"DISTRIB_CODENAME="(.*)""#).captures(data) {
                out.push(("distribution_release", s(&c[1])));
            }
            out.push(("distribution", s(name)));
        }
        "NA" => {
            for line in data.lines() {
                if let Some(c) = re(r"^NAME=(.*)").captures(line) {
                    out.push(("distribution", s(c[1].trim_matches('"'))));
                }
                if let Some(c) = re(r"^VERSION=(.*)").captures(line)
                    && collected.get("distribution_version").and_then(Value::as_str) == Some("NA")
                {
                    out.push(("distribution_version", s(c[1].trim_matches('"'))));
                }
            }
        }
        "Coreos" | "Flatcar" => {
            let id = os_release().get("ID").cloned().unwrap_or_default().to_lowercase();
            if id != name.to_lowercase() || data.is_empty() {
                return None;
            }
            if name == "Coreos" {
                if let Some(c) = re(r"^GROUP=(.*)").captures(data) {
                    out.push(("distribution_release", s(c[1].trim_matches('"'))));
                }
            } else if let Some(c) = re(r"VERSION=(.*)").captures(data) {
                let v = c[1].trim_matches('"').to_string();
                out.push(("distribution_major_version", s(v.split('.').next().unwrap_or(""))));
                out.push(("distribution_version", s(&v)));
            }
        }
        "ClearLinux" => {
            if let Some(c) = re(r#"NAME="(.*)""#).captures(data) {
                if !c[1].contains("Clear Linux") {
                    return None;
                }
                out.push(("distribution", s(&c[1])));
            }
            if let Some(c) = re(r"VERSION_ID=(.*)").captures(data) {
                out.push(("distribution_major_version", s(&c[1])));
                out.push(("distribution_version", s(&c[1])));
            }
            if let Some(c) = re(r"ID=(.*)").captures(data) {
                out.push(("distribution_release", s(&c[1])));
            }
        }
        "CentOS" => {
            if data.contains("CentOS Stream") {
                out.push(("distribution_release", s("Stream")));
            } else if data.contains("TencentOS Server") {
                out.push(("distribution", s("TencentOS")));
            } else {
                return None;
            }
        }
        _ => return None,
    }
    Some(out)
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

fn pkg_mgr(f: &mut Map<String, Value>) {
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

fn service_mgr(f: &mut Map<String, Value>) {
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

fn user(f: &mut Map<String, Value>) {
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
fn date_time() -> Map<String, Value> {
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

fn dns() -> Map<String, Value> {
    let mut m = Map::new();
    let Ok(text) = fs::read_to_string("/etc/resolv.conf") else { return m };
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let rest = || Value::Array(tokens[1..].iter().map(|t| Value::String(t.to_string())).collect());
        match tokens[0] {
            "nameserver" => {
                let ns = m.entry("nameservers").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = ns {
                    a.extend(tokens[1..].iter().map(|t| Value::String(t.to_string())));
                }
            }
            "domain" if tokens.len() > 1 => {
                m.insert("domain".into(), Value::String(tokens[1].to_string()));
            }
            "search" => {
                m.insert("search".into(), rest());
            }
            "sortlist" => {
                m.insert("sortlist".into(), rest());
            }
            "options" => {
                let mut o = Map::new();
                for opt in &tokens[1..] {
                    match opt.split_once(':') {
                        Some((k, v)) => o.insert(k.to_string(), Value::String(v.to_string())),
                        None => o.insert(opt.to_string(), Value::Bool(true)),
                    };
                }
                m.insert("options".into(), Value::Object(o));
            }
            _ => {}
        }
    }
    m
}

fn selinux(f: &mut Map<String, Value>) {
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

/// `lsb` facts: `/etc/lsb-release`, or what `lsb_release -a` prints, taken from os-release.
fn lsb() -> Option<Map<String, Value>> {
    let mut m = Map::new();
    if let Some(lsb) = fs::read_to_string("/etc/lsb-release").ok().map(|t| parse_kv_file(&t)) {
        for (k, key) in [("DISTRIB_ID", "id"), ("DISTRIB_RELEASE", "release"), ("DISTRIB_DESCRIPTION", "description"), ("DISTRIB_CODENAME", "codename")] {
            if let Some(v) = lsb.get(k) {
                m.insert(key.into(), Value::String(v.clone()));
            }
        }
    } else if bin_path("lsb_release").is_some() {
        let osr = os_release();
        if let Some(n) = osr.get("NAME").and_then(|n| n.split_whitespace().next()) {
            m.insert("id".into(), json!(n));
        }
        if let Some(v) = osr.get("PRETTY_NAME") {
            m.insert("description".into(), json!(v));
        }
        if let Some(v) = osr.get("VERSION_ID") {
            m.insert("release".into(), json!(v));
        }
        if let Some(v) = osr.get("VERSION_CODENAME") {
            m.insert("codename".into(), json!(v));
        }
    }
    if let Some(r) = m.get("release").and_then(Value::as_str).map(|r| r.split('.').next().unwrap_or("").to_string()) {
        m.insert("major_release".into(), Value::String(r));
    }
    m.sort_keys();
    (!m.is_empty()).then_some(m)
}

fn cmdline(f: &mut Map<String, Value>) {
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

fn is_chroot() -> bool {
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

// ----- hardware -----

fn cpu(f: &mut Map<String, Value>) {
    let Ok(text) = fs::read_to_string("/proc/cpuinfo") else { return };
    let arch = f.get("architecture").and_then(Value::as_str).unwrap_or("").to_string();
    let xen = exists("/proc/xen") || read("/sys/hypervisor/type").as_deref() == Some("xen");
    let mut xen_paravirt = false;
    let mut processor: Vec<Value> = Vec::new();
    let (mut i, mut vendor_n, mut model_n, mut proc_n) = (0i64, 0i64, 0i64, 0i64);
    let mut physid = "0".to_string();
    let mut coreid = "0".to_string();
    let mut sockets: Vec<(String, i64)> = Vec::new();
    let mut cores: Vec<(String, i64)> = Vec::new();
    let (mut zp, mut zmt) = (0i64, 0i64);
    let set = |v: &mut Vec<(String, i64)>, k: &str, val: i64| match v.iter_mut().find(|(x, _)| x == k) {
        Some(e) => e.1 = val,
        None => v.push((k.to_string(), val)),
    };
    for line in text.lines() {
        let (key, val) = match line.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line.trim(), ""),
        };
        if xen && key == "flags" && !val.split_whitespace().any(|x| x == "vme") {
            xen_paravirt = true;
        }
        if key == "flags" {
            f.insert("flags".into(), Value::Array(val.split_whitespace().map(|x| json!(x)).collect()));
        }
        match key {
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(Value::String(val.to_string()));
                match key {
                    "vendor_id" => vendor_n += 1,
                    "model name" => model_n += 1,
                    "processor" => proc_n += 1,
                    _ => {}
                }
                i += 1;
            }
            "physical id" => {
                physid = val.to_string();
                if !sockets.iter().any(|(k, _)| *k == physid) {
                    sockets.push((physid.clone(), 1));
                }
            }
            "core id" => {
                coreid = val.to_string();
                // (sic) Ansible tests `sockets` here
                if !sockets.iter().any(|(k, _)| *k == coreid) {
                    set(&mut cores, &coreid, 1);
                }
            }
            "cpu cores" => {
                if let Ok(n) = val.parse() {
                    set(&mut sockets, &physid, n);
                }
            }
            "siblings" => {
                if let Ok(n) = val.parse() {
                    set(&mut cores, &coreid, n);
                }
            }
            "# processors" => zp = val.parse().unwrap_or(0),
            "max thread id" => zmt = val.parse::<i64>().unwrap_or(0) + 1,
            "ncpus active" => i = val.parse().unwrap_or(i),
            _ => {}
        }
    }
    if vendor_n > 0 && vendor_n == model_n {
        i = vendor_n;
    }
    if arch.starts_with("armv") || arch.starts_with("aarch") || arch.starts_with("ppc") {
        i = proc_n;
    }
    f.insert("processor".into(), Value::Array(processor));
    let py_round = |x: f64| -> i64 {
        // Python's round(): half to even
        let r = x.round();
        if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 { (r - x.signum()) as i64 } else { r as i64 }
    };
    let (count, ncores, tpc, vcpus, mut nproc);
    if arch == "s390x" {
        count = 1;
        ncores = if zmt > 0 { py_round(zp as f64 / zmt as f64) } else { 0 };
        tpc = zmt;
        vcpus = zp;
        nproc = zp;
    } else if xen_paravirt {
        (count, ncores, tpc, vcpus, nproc) = (i, i, 1, i, i);
    } else {
        count = if sockets.is_empty() { i } else { sockets.len() as i64 };
        ncores = match sockets.first() {
            Some((_, n)) if *n != 0 => *n,
            _ => 1,
        };
        tpc = match cores.first() {
            Some((_, n)) => py_round(*n as f64 / ncores as f64),
            None => py_round(1.0 / ncores as f64),
        };
        vcpus = tpc * count * ncores;
        nproc = proc_n;
    }
    // SAFETY: cpu_set_t is plain data
    let mut set_: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set_) } == 0 {
        nproc = unsafe { libc::CPU_COUNT(&set_) } as i64;
    }
    f.insert("processor_count".into(), Value::from(count));
    f.insert("processor_cores".into(), Value::from(ncores));
    f.insert("processor_threads_per_core".into(), Value::from(tpc));
    f.insert("processor_vcpus".into(), Value::from(vcpus));
    f.insert("processor_nproc".into(), Value::from(nproc));
}

fn memory(f: &mut Map<String, Value>) {
    let Ok(text) = fs::read_to_string("/proc/meminfo") else { return };
    let mut st: HashMap<&str, i64> = HashMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let Some(n) = v.split_whitespace().next().and_then(|n| n.parse::<i64>().ok()) else { continue };
        let mb = n / 1024;
        match k {
            "MemTotal" | "SwapTotal" | "MemFree" | "SwapFree" => {
                f.insert(format!("{}_mb", k.to_lowercase()), Value::from(mb));
            }
            _ => {}
        }
        if let Some(key) = ["MemTotal", "SwapTotal", "MemFree", "SwapFree", "Buffers", "Cached", "SwapCached"].iter().find(|x| **x == k) {
            st.insert(key, mb);
        }
    }
    let g = |k: &str| st.get(k).copied();
    let real_used = g("MemTotal").zip(g("MemFree")).map(|(t, f)| t - f);
    let nocache_free = match (g("Cached"), g("MemFree"), g("Buffers")) {
        (Some(c), Some(f), Some(b)) => Some(c + f + b),
        _ => None,
    };
    let nocache_used = g("MemTotal").zip(nocache_free).map(|(t, f)| t - f);
    let swap_used = g("SwapTotal").zip(g("SwapFree")).map(|(t, f)| t - f);
    f.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": g("MemTotal"), "used": real_used, "free": g("MemFree")},
            "nocache": {"free": nocache_free, "used": nocache_used},
            "swap": {"total": g("SwapTotal"), "free": g("SwapFree"), "used": swap_used, "cached": g("SwapCached")},
        }),
    );
}

fn dmi(f: &mut Map<String, Value>) {
    const FORM_FACTOR: [&str; 37] = [
        "Unknown",
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All In One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "Sub Chassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system",
        "CompactPCI",
        "AdvancedTCA",
        "Blade",
        "Blade Enclosure",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    let keys = [
        ("bios_date", "bios_date"),
        ("bios_vendor", "bios_vendor"),
        ("bios_version", "bios_version"),
        ("board_asset_tag", "board_asset_tag"),
        ("board_name", "board_name"),
        ("board_serial", "board_serial"),
        ("board_vendor", "board_vendor"),
        ("board_version", "board_version"),
        ("chassis_asset_tag", "chassis_asset_tag"),
        ("chassis_serial", "chassis_serial"),
        ("chassis_vendor", "chassis_vendor"),
        ("chassis_version", "chassis_version"),
        ("form_factor", "chassis_type"),
        ("product_name", "product_name"),
        ("product_serial", "product_serial"),
        ("product_uuid", "product_uuid"),
        ("product_version", "product_version"),
        ("system_vendor", "sys_vendor"),
    ];
    for (key, file) in keys {
        let v = match read(&format!("/sys/devices/virtual/dmi/id/{file}")) {
            Some(d) if key == "form_factor" => match d.parse::<usize>().ok().and_then(|i| FORM_FACTOR.get(i)) {
                Some(ff) => ff.to_string(),
                None => format!("unknown ({d})"),
            },
            Some(d) => d,
            None => "NA".to_string(),
        };
        f.insert(key.into(), Value::String(v));
    }
}

/// `\040`-style escapes of /proc/mounts.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts() -> Vec<Value> {
    let Ok(text) = fs::read_to_string("/proc/self/mounts") else { return Vec::new() };
    // bind mounts: a mount whose root inside its filesystem is not `/` (findmnt's `[/path]`)
    let roots: Vec<String> =
        fs::read_to_string("/proc/self/mountinfo").map(|t| t.lines().map(|l| l.split(' ').nth(3).unwrap_or("/").to_string()).collect()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let roots_match = roots.len() == lines.len();
    let uuids: HashMap<String, String> = fs::read_dir("/dev/disk/by-uuid")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let target = fs::canonicalize(e.path()).ok()?;
                    Some((target.to_string_lossy().into_owned(), e.file_name().to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        let fields: Vec<String> = line.split_whitespace().map(unescape_octal).collect();
        if fields.len() < 6 {
            continue;
        }
        let (device, mount, fstype, options) = (&fields[0], &fields[1], &fields[2], &fields[3]);
        if (!device.starts_with('/') && !device.starts_with('\\') && !device.contains(":/")) || fstype == "none" {
            continue;
        }
        let mut options = options.clone();
        if roots_match && roots[idx] != "/" && !options.contains("bind") {
            options.push_str(",bind");
        }
        let mut m = Map::new();
        m.insert("mount".into(), json!(mount));
        m.insert("device".into(), json!(device));
        m.insert("fstype".into(), json!(fstype));
        m.insert("options".into(), json!(options));
        m.insert("dump".into(), json!(fields[4].parse::<i64>().unwrap_or(0)));
        m.insert("passno".into(), json!(fields[5].parse::<i64>().unwrap_or(0)));
        // Network filesystems can hang statvfs; Ansible guards with a timeout, here they are
        // listed without sizes.
        let network = device.contains(":/") || device.starts_with("//") || fstype.starts_with("nfs") || fstype == "cifs";
        if !network && let Ok(c) = CString::new(mount.as_str()) {
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: valid path and out-struct
            if unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0 {
                let (frsize, blocks, bavail) = (s.f_frsize as u64, s.f_blocks as u64, s.f_bavail as u64);
                m.insert("size_total".into(), json!(frsize * blocks));
                m.insert("size_available".into(), json!(frsize * bavail));
                m.insert("block_size".into(), json!(s.f_bsize as u64));
                m.insert("block_total".into(), json!(blocks));
                m.insert("block_available".into(), json!(bavail));
                m.insert("block_used".into(), json!(blocks as i64 - bavail as i64));
                m.insert("inode_total".into(), json!(s.f_files as u64));
                m.insert("inode_available".into(), json!(s.f_favail as u64));
                m.insert("inode_used".into(), json!(s.f_files as i64 - s.f_favail as i64));
            }
        }
        let real = fs::canonicalize(device).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| device.clone());
        m.insert("uuid".into(), json!(uuids.get(&real).cloned().unwrap_or_else(|| "N/A".into())));
        m.sort_keys();
        out.push(Value::Object(m));
    }
    out
}

// ----- network -----

const INTERFACE_TYPE: [(&str, &str); 5] = [("1", "ether"), ("32", "infiniband"), ("512", "ppp"), ("772", "loopback"), ("65534", "tunnel")];

struct V4Addr {
    label: String,
    address: Ipv4Addr,
    netmask: Ipv4Addr,
    broadcast: Option<Ipv4Addr>,
}

/// IPv4 addresses by device (the part of the label before `:`), in kernel order.
fn ipv4_addresses() -> Vec<(String, V4Addr)> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free once
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let to_v4 = |sa: *mut libc::sockaddr| -> Option<Ipv4Addr> {
        if sa.is_null() || unsafe { (*sa).sa_family } as i32 != libc::AF_INET {
            return None;
        }
        let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    };
    let mut cur = ifap;
    while !cur.is_null() {
        let ifa = unsafe { &*cur };
        if let Some(address) = to_v4(ifa.ifa_addr) {
            let label = cstr(ifa.ifa_name);
            let device = label.split(':').next().unwrap_or("").to_string();
            let netmask = to_v4(ifa.ifa_netmask).unwrap_or(Ipv4Addr::UNSPECIFIED);
            let broadcast = if ifa.ifa_flags & libc::IFF_BROADCAST as u32 != 0 { to_v4(ifa.ifa_ifu) } else { None };
            out.push((device, V4Addr { label, address, netmask, broadcast }));
        }
        cur = ifa.ifa_next;
    }
    unsafe { libc::freeifaddrs(ifap) };
    out
}

struct V6Addr {
    address: Ipv6Addr,
    prefix: u32,
    scope: &'static str,
    scope_raw: u32,
}

fn ipv6_addresses() -> Vec<(String, V6Addr)> {
    let mut out = Vec::new();
    let Ok(text) = fs::read_to_string("/proc/net/if_inet6") else { return out };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0].len() != 32 {
            continue;
        }
        let Ok(raw) = u128::from_str_radix(f[0], 16) else { continue };
        let prefix = u32::from_str_radix(f[2], 16).unwrap_or(0);
        let scope_raw = u32::from_str_radix(f[3], 16).unwrap_or(0);
        let scope = match scope_raw & 0xf0 {
            0x00 => "global",
            0x10 => "host",
            0x20 => "link",
            0x40 => "site",
            _ => "compat",
        };
        out.push((f[5].to_string(), V6Addr { address: Ipv6Addr::from(raw), prefix, scope, scope_raw }));
    }
    out.sort_by_key(|(_, a)| a.scope_raw & 0xf0);
    out
}

fn prefix_len(mask: Ipv4Addr) -> u32 {
    u32::from(mask).count_ones()
}

fn v4_info(a: &V4Addr) -> Value {
    let network = Ipv4Addr::from(u32::from(a.address) & u32::from(a.netmask));
    json!({
        "address": a.address.to_string(),
        "broadcast": a.broadcast.map(|b| b.to_string()).unwrap_or_default(),
        "netmask": a.netmask.to_string(),
        "network": network.to_string(),
        "prefix": prefix_len(a.netmask).to_string(),
    })
}

/// The default IPv4 route: (interface, gateway) of the lowest metric.
fn default_route_v4() -> Option<(String, Option<Ipv4Addr>)> {
    let text = fs::read_to_string("/proc/net/route").ok()?;
    let mut best: Option<(u32, String, Option<Ipv4Addr>)> = None;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[1] != "00000000" || f[7] != "00000000" {
            continue;
        }
        let flags = u32::from_str_radix(f[3], 16).unwrap_or(0);
        if flags & 0x1 == 0 {
            continue; // not up
        }
        let metric: u32 = f[6].parse().unwrap_or(u32::MAX);
        let gw = u32::from_str_radix(f[2], 16).ok().map(|g| Ipv4Addr::from(u32::from_be(g)));
        let gw = if flags & 0x2 != 0 { gw.filter(|g| !g.is_unspecified()) } else { None };
        if best.as_ref().is_none_or(|(m, _, _)| metric < *m) {
            best = Some((metric, f[0].to_string(), gw));
        }
    }
    best.map(|(_, i, g)| (i, g))
}

fn default_route_v6() -> Option<(String, Option<Ipv6Addr>)> {
    let text = fs::read_to_string("/proc/net/ipv6_route").ok()?;
    let mut best: Option<(u32, String, Option<Ipv6Addr>)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[0] != "00000000000000000000000000000000" || f[1] != "00" {
            continue;
        }
        let flags = u32::from_str_radix(f[8], 16).unwrap_or(0);
        if flags & 0x1 == 0 || flags & 0x200 != 0 || f[9] == "lo" {
            continue; // down or unreachable
        }
        let metric = u32::from_str_radix(f[5], 16).unwrap_or(u32::MAX);
        let gw = u128::from_str_radix(f[4], 16).ok().filter(|g| *g != 0).map(Ipv6Addr::from);
        if best.as_ref().is_none_or(|(m, _, _)| metric < *m) {
            best = Some((metric, f[9].to_string(), gw));
        }
    }
    best.map(|(_, i, g)| (i, g))
}

fn network(f: &mut Map<String, Value>) {
    let sysnet = Path::new("/sys/class/net");
    let devices: Vec<String> =
        fs::read_dir(sysnet).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    let v4 = ipv4_addresses();
    let v6 = ipv6_addresses();
    let dr4 = default_route_v4();
    let dr6 = default_route_v6();
    let mut default_ipv4 = Map::new();
    let mut default_ipv6 = Map::new();
    if let Some((iface, gw)) = &dr4 {
        default_ipv4.insert("interface".into(), json!(iface));
        if let Some(gw) = gw {
            default_ipv4.insert("gateway".into(), json!(gw.to_string()));
        }
        if let Some((_, a)) = v4.iter().find(|(d, _)| d == iface) {
            default_ipv4.insert("address".into(), json!(a.address.to_string()));
        }
    }
    if let Some((iface, gw)) = &dr6 {
        default_ipv6.insert("interface".into(), json!(iface));
        if let Some(gw) = gw {
            default_ipv6.insert("gateway".into(), json!(gw.to_string()));
        }
        if let Some((_, a)) = v6.iter().find(|(d, a)| d == iface && a.scope == "global") {
            default_ipv6.insert("address".into(), json!(a.address.to_string()));
        }
    }
    let mut interfaces: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut all4: Vec<Value> = Vec::new();
    let mut all6: Vec<Value> = Vec::new();
    for dev in &devices {
        let p = sysnet.join(dev);
        if !p.is_dir() {
            continue;
        }
        let r = |name: &str| read(&p.join(name).to_string_lossy());
        let mut m = Map::new();
        m.insert("device".into(), json!(dev));
        let mac_raw = r("address").unwrap_or_default();
        if !mac_raw.is_empty() && mac_raw != "00:00:00:00:00:00" {
            m.insert("macaddress".into(), json!(mac_raw));
        }
        let mtu = r("mtu").and_then(|v| v.parse::<i64>().ok());
        if let Some(mtu) = mtu {
            m.insert("mtu".into(), json!(mtu));
        }
        if p.join("operstate").exists() {
            m.insert("active".into(), json!(r("operstate").as_deref() != Some("down")));
        }
        if let Ok(module) = fs::canonicalize(p.join("device/driver/module"))
            && let Some(n) = module.file_name()
        {
            m.insert("module".into(), json!(n.to_string_lossy()));
        }
        if p.join("type").exists() {
            let t = r("type").unwrap_or_default();
            let name = INTERFACE_TYPE.iter().find(|(k, _)| *k == t).map(|(_, v)| *v).unwrap_or("unknown");
            m.insert("type".into(), json!(name));
        }
        if p.join("bridge").exists() {
            m.insert("type".into(), json!("bridge"));
            let mut brif: Vec<String> = fs::read_dir(p.join("brif"))
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            brif.sort();
            m.insert("interfaces".into(), json!(brif));
            if p.join("bridge/bridge_id").exists() {
                m.insert("id".into(), json!(r("bridge/bridge_id").unwrap_or_default()));
            }
            if p.join("bridge/stp_state").exists() {
                m.insert("stp".into(), json!(r("bridge/stp_state").as_deref() == Some("1")));
            }
        }
        if p.join("bonding").exists() {
            m.insert("type".into(), json!("bonding"));
            let first = |v: Option<String>| v.unwrap_or_default().split_whitespace().next().unwrap_or("").to_string();
            m.insert("slaves".into(), json!(r("bonding/slaves").unwrap_or_default().split_whitespace().collect::<Vec<_>>()));
            m.insert("mode".into(), json!(first(r("bonding/mode"))));
            m.insert("miimon".into(), json!(first(r("bonding/miimon"))));
            m.insert("lacp_rate".into(), json!(first(r("bonding/lacp_rate"))));
            if let Some(primary) = r("bonding/primary") {
                m.insert("primary".into(), json!(primary));
                if p.join("bonding/all_slaves_active").exists() {
                    m.insert("all_slaves_active".into(), json!(r("bonding/all_slaves_active").as_deref() == Some("1")));
                }
            }
        }
        if p.join("bonding_slave").exists() {
            m.insert("perm_macaddress".into(), json!(r("bonding_slave/perm_hwaddr").unwrap_or_default()));
        }
        if let Ok(link) = fs::read_link(p.join("device"))
            && let Some(n) = link.file_name()
        {
            m.insert("pciid".into(), json!(n.to_string_lossy()));
        }
        if let Some(speed) = r("speed").and_then(|s| s.parse::<i64>().ok()) {
            m.insert("speed".into(), json!(speed));
        }
        if let Some(flags) = r("flags").and_then(|s| i64::from_str_radix(s.trim_start_matches("0x"), 16).ok()) {
            m.insert("promisc".into(), json!(flags & 0x100 != 0));
        }
        let itype = m.get("type").and_then(Value::as_str).unwrap_or("unknown").to_string();
        let mut aliases: Vec<(String, Map<String, Value>)> = Vec::new();
        for (d, a) in v4.iter().filter(|(d, _)| d == dev) {
            let _ = d;
            let info = v4_info(a);
            if a.label != *dev {
                let name = a.label.replace(':', "_");
                match aliases.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, am)) => am.entry("ipv4_secondaries").or_insert_with(|| json!([])).as_array_mut().expect("array").push(info.clone()),
                    None => {
                        let mut am = Map::new();
                        am.insert("ipv4".into(), info.clone());
                        aliases.push((name, am));
                    }
                }
            }
            if !m.contains_key("ipv4") {
                m.insert("ipv4".into(), info.clone());
            } else {
                m.entry("ipv4_secondaries").or_insert_with(|| json!([])).as_array_mut().expect("array").push(info.clone());
            }
            if default_ipv4.get("address").and_then(Value::as_str) == Some(&a.address.to_string()) {
                for k in ["broadcast", "netmask", "network", "prefix"] {
                    default_ipv4.insert(k.into(), info[k].clone());
                }
                default_ipv4.insert("macaddress".into(), json!(mac_raw));
                if let Some(mtu) = mtu {
                    default_ipv4.insert("mtu".into(), json!(mtu));
                }
                default_ipv4.insert("type".into(), json!(itype));
                default_ipv4.insert("alias".into(), json!(a.label));
            }
            if !a.address.to_string().starts_with("127.") {
                all4.push(json!(a.address.to_string()));
            }
        }
        for (_, a) in v6.iter().filter(|(d, _)| d == dev) {
            let addr = a.address.to_string();
            m.entry("ipv6").or_insert_with(|| json!([])).as_array_mut().expect("array").push(json!({
                "address": addr, "prefix": a.prefix.to_string(), "scope": a.scope,
            }));
            if default_ipv6.get("address").and_then(Value::as_str) == Some(addr.as_str()) {
                default_ipv6.insert("prefix".into(), json!(a.prefix.to_string()));
                default_ipv6.insert("scope".into(), json!(a.scope));
                default_ipv6.insert("macaddress".into(), json!(mac_raw));
                if let Some(mtu) = mtu {
                    default_ipv6.insert("mtu".into(), json!(mtu));
                }
                default_ipv6.insert("type".into(), json!(itype));
            }
            if addr != "::1" {
                all6.push(json!(addr));
            }
        }
        m.sort_keys();
        interfaces.push((dev.replace(':', "_"), m));
        interfaces.extend(aliases);
    }
    f.insert("interfaces".into(), Value::Array(interfaces.iter().map(|(n, _)| json!(n)).collect()));
    for (name, m) in interfaces {
        // fact names have `-` replaced (Ansible's namespace transform); the device keeps it
        f.insert(name.replace('-', "_"), Value::Object(m));
    }
    default_ipv4.sort_keys();
    default_ipv6.sort_keys();
    f.insert("default_ipv4".into(), Value::Object(default_ipv4));
    f.insert("default_ipv6".into(), Value::Object(default_ipv6));
    f.insert("all_ipv4_addresses".into(), Value::Array(all4));
    f.insert("all_ipv6_addresses".into(), Value::Array(all6));
}

/// `iscsi_iqn`, `hostnqn` and `fibre_channel_wwn`.
fn storage_ids(f: &mut Map<String, Value>) {
    let first_line = |path: &str, pick: &dyn Fn(&str) -> Option<String>| -> String {
        read(path).unwrap_or_default().lines().filter(|l| !(l.starts_with('#') || l.starts_with(';') || l.trim().is_empty())).find_map(pick).unwrap_or_default()
    };
    let iqn = first_line("/etc/iscsi/initiatorname.iscsi", &|l| l.strip_prefix("InitiatorName=").map(str::to_string));
    f.insert("iscsi_iqn".into(), Value::String(iqn));
    let nqn = first_line("/etc/nvme/hostnqn", &|l| l.starts_with("nqn.").then(|| l.to_string()));
    f.insert("hostnqn".into(), Value::String(nqn));
    let mut wwn = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/class/fc_host") {
        for e in rd.filter_map(|e| e.ok()) {
            if let Ok(t) = fs::read_to_string(e.path().join("port_name")) {
                for line in t.lines() {
                    wwn.push(json!(line.trim_end().get(2..).unwrap_or("")));
                }
            }
        }
    }
    f.insert("fibre_channel_wwn".into(), Value::Array(wwn));
}

// ----- virtualization -----

fn virtualization(f: &mut Map<String, Value>) {
    let mut vtype: Option<String> = None;
    let mut role: Option<String> = None;
    let mut found = false;
    let mut guest: Vec<String> = Vec::new();
    let mut host: Vec<String> = Vec::new();
    let add = |v: &mut Vec<String>, t: &str| {
        if !v.iter().any(|x| x == t) {
            v.push(t.to_string());
        }
    };
    let found_as = |t: &str, r: &str, vtype: &mut Option<String>, role: &mut Option<String>, found: &mut bool| {
        if !*found {
            *vtype = Some(t.to_string());
            *role = Some(r.to_string());
            *found = true;
        }
    };
    static DOCKER_CG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/docker(/|-[0-9a-f]+\.scope)").expect("regex"));
    if let Ok(cg) = fs::read_to_string("/proc/1/cgroup") {
        for line in cg.lines() {
            if DOCKER_CG.is_match(line) {
                add(&mut guest, "docker");
                found_as("docker", "guest", &mut vtype, &mut role, &mut found);
            }
            if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
                add(&mut guest, "lxc");
                found_as("lxc", "guest", &mut vtype, &mut role, &mut found);
            }
            if line.contains("/system.slice/containerd.service") {
                add(&mut guest, "containerd");
                found_as("containerd", "guest", &mut vtype, &mut role, &mut found);
            }
        }
    }
    if let Ok(env) = fs::read("/proc/1/environ") {
        for item in env.split(|b| *b == 0) {
            let item = String::from_utf8_lossy(item);
            if item.contains("container=lxc") {
                add(&mut guest, "lxc");
                found_as("lxc", "guest", &mut vtype, &mut role, &mut found);
            }
            if item.contains("container=podman") {
                add(&mut guest, "podman");
                found_as("podman", "guest", &mut vtype, &mut role, &mut found);
            }
            if item.starts_with("container=") && item.len() > "container=".len() {
                add(&mut guest, "container");
                found_as("container", "guest", &mut vtype, &mut role, &mut found);
            }
        }
    }
    if exists("/proc/vz") && !exists("/proc/lve") {
        vtype = Some("openvz".into());
        if exists("/proc/bc") {
            add(&mut host, "openvz");
            if !found {
                role = Some("host".into());
            }
        } else {
            add(&mut guest, "openvz");
            if !found {
                role = Some("guest".into());
            }
        }
        found = true;
    }
    let systemd_container = read("/run/systemd/container");
    if let Some(sc) = &systemd_container {
        add(&mut guest, sc);
        found_as(sc, "guest", &mut vtype, &mut role, &mut found);
    }
    if exists("/.dockerenv") || exists("/.dockerinit") {
        add(&mut guest, "docker");
        found_as("docker", "guest", &mut vtype, &mut role, &mut found);
    }
    if guest.iter().any(|g| ["docker", "lxc", "podman", "openvz", "containerd"].contains(&g.as_str())) || systemd_container.is_some() {
        add(&mut guest, "container");
    }
    if exists("/proc/xen") {
        let is_host = fs::read_to_string("/proc/xen/capabilities").is_ok_and(|c| c.contains("control_d"));
        if is_host {
            add(&mut host, "xen");
            found_as("xen", "host", &mut vtype, &mut role, &mut found);
        } else {
            found_as("xen", "guest", &mut vtype, &mut role, &mut found);
        }
        found = true;
    }
    let assumed_guest = !found;
    let dmi = |k: &str| read(&format!("/sys/devices/virtual/dmi/id/{k}"));
    let product_name = dmi("product_name");
    let sys_vendor = dmi("sys_vendor");
    let product_family = dmi("product_family");
    let bios_vendor = dmi("bios_vendor");
    let pn = product_name.as_deref().unwrap_or("");
    let sv = sys_vendor.as_deref().unwrap_or("");
    let bv = bios_vendor.as_deref().unwrap_or("");
    let dmi_hit = |tech: &str, t: &str, vtype: &mut Option<String>, found: &mut bool, guest: &mut Vec<String>| {
        if !guest.iter().any(|x| x == tech) {
            guest.push(tech.to_string());
        }
        if !*found {
            *vtype = Some(t.to_string());
            *found = true;
        }
    };
    if ["KVM", "KVM Server", "Bochs", "AHV", "CloudStack KVM Hypervisor"].contains(&pn) {
        dmi_hit("kvm", "kvm", &mut vtype, &mut found, &mut guest);
    }
    if sv == "oVirt" {
        dmi_hit("oVirt", "oVirt", &mut vtype, &mut found, &mut guest);
    }
    if sv == "Red Hat" {
        if product_family.as_deref() == Some("RHV") {
            dmi_hit("RHV", "RHV", &mut vtype, &mut found, &mut guest);
        } else if pn == "RHEV Hypervisor" {
            dmi_hit("RHEV", "RHEV", &mut vtype, &mut found, &mut guest);
        }
    }
    if pn.starts_with("VMware") {
        dmi_hit("VMware", "VMware", &mut vtype, &mut found, &mut guest);
    }
    if ["OpenStack Compute", "OpenStack Nova"].contains(&pn) {
        dmi_hit("openstack", "openstack", &mut vtype, &mut found, &mut guest);
    }
    if bv == "Xen" {
        dmi_hit("xen", "xen", &mut vtype, &mut found, &mut guest);
    }
    if bv == "innotek GmbH" {
        dmi_hit("virtualbox", "virtualbox", &mut vtype, &mut found, &mut guest);
    }
    if ["Amazon EC2", "DigitalOcean", "Hetzner", "Linode"].contains(&bv) {
        dmi_hit("kvm", "kvm", &mut vtype, &mut found, &mut guest);
    }
    if ["QEMU", "Amazon EC2", "DigitalOcean", "Google", "Scaleway", "Nutanix"].contains(&sv) {
        dmi_hit("kvm", "kvm", &mut vtype, &mut found, &mut guest);
    }
    if sv == "KubeVirt" {
        dmi_hit("KubeVirt", "KubeVirt", &mut vtype, &mut found, &mut guest);
    }
    if sv == "Microsoft Corporation" {
        dmi_hit("VirtualPC", "VirtualPC", &mut vtype, &mut found, &mut guest);
    }
    if sv == "Parallels Software International Inc." {
        dmi_hit("parallels", "parallels", &mut vtype, &mut found, &mut guest);
    }
    if sv == "OpenStack Foundation" {
        dmi_hit("openstack", "openstack", &mut vtype, &mut found, &mut guest);
    }
    if assumed_guest && found {
        role = Some("guest".into());
    }
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VxID:"))
    {
        let id = line["VxID:".len()..].trim();
        if id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() {
            if !found {
                vtype = Some("linux_vserver".into());
            }
            if id == "0" {
                add(&mut host, "linux_vserver");
                if !found {
                    role = Some("host".into());
                }
            } else {
                add(&mut guest, "linux_vserver");
                if !found {
                    role = Some("guest".into());
                }
            }
            found = true;
        }
    }
    if let Ok(cpuinfo) = fs::read_to_string("/proc/cpuinfo") {
        for line in cpuinfo.lines() {
            let tech = if line.starts_with("model name") && line.contains("QEMU Virtual CPU") {
                "kvm"
            } else if (line.starts_with("vendor_id") && line.contains("User Mode Linux")) || (line.starts_with("model name") && line.contains("UML")) {
                "uml"
            } else if line.starts_with("vendor_id") && line.contains("PowerVM Lx86") {
                "powervm_lx86"
            } else if line.starts_with("vendor_id") && line.contains("IBM/S390") {
                "ibm_systemz"
            } else {
                continue;
            };
            add(&mut guest, tech);
            if !found {
                vtype = Some(tech.to_string());
                role = Some("guest".into());
                found = true;
            }
        }
    }
    if let Ok(modules) = fs::read_to_string("/proc/modules") {
        let names: Vec<&str> = modules.lines().filter_map(|l| l.split(' ').next()).collect();
        if names.contains(&"kvm") {
            add(&mut host, "kvm");
            found_as("kvm", "host", &mut vtype, &mut role, &mut found);
            found = true;
        }
        if names.contains(&"vboxdrv") {
            add(&mut host, "virtualbox");
            found_as("virtualbox", "host", &mut vtype, &mut role, &mut found);
        }
        if names.contains(&"virtio") {
            add(&mut host, "kvm");
            found_as("kvm", "guest", &mut vtype, &mut role, &mut found);
        }
    }
    if exists("/dev/kvm") {
        add(&mut host, "kvm");
        found_as("kvm", "host", &mut vtype, &mut role, &mut found);
    }
    f.insert("virtualization_type".into(), json!(vtype.unwrap_or_else(|| "NA".into())));
    f.insert("virtualization_role".into(), json!(role.unwrap_or_else(|| "NA".into())));
    // Ansible's are sets: sorted here for a stable order
    guest.sort();
    host.sort();
    f.insert("virtualization_tech_guest".into(), json!(guest));
    f.insert("virtualization_tech_host".into(), json!(host));
}

/// `ansible_local`: `/etc/ansible/facts.d/*.fact` files holding JSON or INI (executable fact
/// scripts are not run).
fn local_facts() -> Map<String, Value> {
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

#[cfg(test)]
mod tests {
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

    #[test]
    fn families_and_dist_files() {
        assert_eq!(os_family("Rocky"), "RedHat");
        assert_eq!(os_family("Ubuntu"), "Debian");
        assert_eq!(os_family("openSUSE Leap"), "Suse");
        assert_eq!(os_family("Gentoo"), "Gentoo");
        assert_eq!(os_family("Something"), "Something");
        let none = BTreeMap::new();
        let d = parse_dist_file("RedHat", "Rocky Linux release 9.3 (Blue Onyx)", "/etc/redhat-release", &none).unwrap();
        assert_eq!(d, vec![("distribution", json!("Rocky"))]);
        let d = parse_dist_file("RedHat", "Red Hat Enterprise Linux release 9.3 (Plow)", "/etc/redhat-release", &none).unwrap();
        assert_eq!(d[0], ("distribution", json!("RedHat")));
        assert!(parse_dist_file("CentOS", "CentOS Linux release 7.9.2009 (Core)", "/etc/centos-release", &none).is_none());
        let d = parse_dist_file("CentOS", "CentOS Stream release 9", "/etc/centos-release", &none).unwrap();
        assert_eq!(d, vec![("distribution_release", json!("Stream"))]);
        let ubuntu = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian";
        assert_eq!(parse_dist_file("Debian", ubuntu, "/etc/os-release", &none).unwrap(), vec![("distribution", json!("Ubuntu"))]);
        assert!(parse_dist_file("SUSE", ubuntu, "/etc/os-release", &none).is_none());
        assert!(parse_dist_file("Amazon", ubuntu, "/etc/os-release", &none).is_none());
        let leap = "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"";
        let d = parse_dist_file("SUSE", leap, "/etc/os-release", &none).unwrap();
        assert!(d.contains(&("distribution", json!("openSUSE Leap"))));
        assert!(d.contains(&("distribution_version", json!("15.5"))));
        assert!(d.contains(&("distribution_release", json!("5"))));
        assert_eq!(capitalize("almalinux"), "Almalinux");
        let kv = parse_kv_file("A=\"x y\"\nB='q'\n# c\nC=plain\nD=\"esc\\\"aped\"\n");
        assert_eq!(kv["A"], "x y");
        assert_eq!(kv["B"], "q");
        assert_eq!(kv["C"], "plain");
        assert_eq!(kv["D"], "esc\"aped");
        assert_eq!(unescape_octal(r"/mnt/with\040space"), "/mnt/with space");
    }
}

//! The distribution facts: os-release, the distribution files Ansible probes, `os_family`,
//! and `lsb`.

use std::collections::{BTreeMap, HashMap};
use std::fs;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::{bin_path, parse_kv_file, read};

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

pub(super) fn distribution(f: &mut Map<String, Value>) {
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

/// `lsb` facts: `/etc/lsb-release`, or what `lsb_release -a` prints, taken from os-release.
pub(super) fn lsb() -> Option<Map<String, Value>> {
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

#[cfg(test)]
mod tests {
    use super::super::hardware::unescape_octal;
    use super::*;

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

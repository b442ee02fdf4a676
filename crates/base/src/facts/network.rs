//! Network facts: interfaces with their addresses, default routes, and DNS settings.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::{cstr, read};

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

pub(super) fn network(f: &mut Map<String, Value>) {
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

pub(super) fn dns() -> Map<String, Value> {
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

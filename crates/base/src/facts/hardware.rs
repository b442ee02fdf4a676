//! Hardware facts: processors, memory, DMI, mounts and storage identifiers.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;

use serde_json::{Map, Value, json};

use super::{exists, read};

pub(super) fn cpu(f: &mut Map<String, Value>) {
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

pub(super) fn memory(f: &mut Map<String, Value>) {
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

pub(super) fn dmi(f: &mut Map<String, Value>) {
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
pub(super) fn unescape_octal(s: &str) -> String {
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

pub(super) fn mounts() -> Vec<Value> {
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

/// `iscsi_iqn`, `hostnqn` and `fibre_channel_wwn`.
pub(super) fn storage_ids(f: &mut Map<String, Value>) {
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

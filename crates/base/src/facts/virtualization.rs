//! The virtualization facts: the type, the guest or host role, and the guest and host
//! technologies.

use std::fs;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::{exists, read};

pub(super) fn virtualization(f: &mut Map<String, Value>) {
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

//! A container as asked for (community.docker's options, in Docker's syntax), the create
//! request made from it, and its comparison with a running container.
//!
//! Only what was asked is compared, as community.docker does by default: lists of command
//! and entrypoint exactly; env, labels, published ports and volumes need the asked entries to
//! be there (the image's own env and labels, or more, may be too); restart policy, user,
//! working directory and read-only as values.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};
use serde_json::{Value, json};

use super::DockerError;

/// One published port: `[ip:][host_port:]container_port[/proto]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address; `0.0.0.0` when not given.
    pub host_ip: String,
    /// The host port; `None` lets Docker choose.
    pub host_port: Option<u16>,
    /// The container port.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

impl PublishedPort {
    /// Parses Docker's syntax: `5000:5000`, `0.0.0.0:8001:80`, `127.0.0.1:8002:8080/tcp`,
    /// `[::1]:80:80`, `8080` (host port chosen by Docker), `127.0.0.1::80`.
    pub fn parse(spec: &str) -> Result<PublishedPort, DockerError> {
        let bad = |why: &str| {
            DockerError::input(format!("published port '{spec}' {why}: write [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp], as in 127.0.0.1:8002:8080/tcp"))
        };
        let s = spec.trim();
        let (rest, protocol) = match s.rsplit_once('/') {
            Some((r, p)) if ["tcp", "udp", "sctp"].contains(&p.to_ascii_lowercase().as_str()) => (r, p.to_ascii_lowercase()),
            Some(_) => return Err(bad("has an unknown protocol")),
            None => (s, "tcp".to_string()),
        };
        // An IPv6 address in brackets may hold colons.
        let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (addr, after) = r.split_once(']').ok_or_else(|| bad("has no closing ]"))?;
            (Some(addr.to_string()), after.strip_prefix(':').ok_or_else(|| bad("needs :HOST_PORT:CONTAINER_PORT after the address"))?)
        } else {
            (None, rest)
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match (ip, parts.as_slice()) {
            (None, [c]) => (None, "", *c),
            (None, [h, c]) => (None, *h, *c),
            (None, [i, h, c]) => (Some(i.to_string()), *h, *c),
            (Some(i), [h, c]) => (Some(i), *h, *c),
            _ => return Err(bad("has too many parts (put an IPv6 address in brackets)")),
        };
        if host.contains('-') || container.contains('-') {
            return Err(bad("is a range, which airlock does not support: list each port"));
        }
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let container_port = port(container).ok_or_else(|| bad("has no valid container port"))?;
        let host_port = if host.is_empty() { None } else { Some(port(host).ok_or_else(|| bad("has no valid host port"))?) };
        let host_ip = match ip {
            Some(i) if i.parse::<std::net::IpAddr>().is_ok() => i,
            Some(i) if i.is_empty() => "0.0.0.0".to_string(),
            Some(i) => return Err(bad(&format!("binds to '{i}', which is not an IP address (hostnames are not allowed)"))),
            None => "0.0.0.0".to_string(),
        };
        Ok(PublishedPort { host_ip, host_port, container_port, protocol })
    }

    /// Docker's key for the container side: `8080/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

/// A volume: `/host:/ctr[:ro|rw]`, `name:/ctr[:mode]`, or `/ctr` (an anonymous volume).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    /// A bind mount or a named volume, as Docker's `Binds` writes it (`src:dst:mode`).
    Bind(String),
    /// An anonymous volume at this path in the container.
    Anonymous(String),
}

impl VolumeSpec {
    /// Parses a `volumes` entry, normalised as community.docker sends it (mode `rw` when
    /// none is given).
    pub fn parse(spec: &str) -> Result<VolumeSpec, DockerError> {
        let parts: Vec<&str> = spec.trim().split(':').collect();
        let bad = |why: &str| DockerError::input(format!("volume '{spec}' {why}: write /host/path:/container/path[:ro|rw]"));
        match parts.as_slice() {
            [ctr] if ctr.starts_with('/') => Ok(VolumeSpec::Anonymous(ctr.to_string())),
            [src, dst] if dst.starts_with('/') && !src.is_empty() => Ok(VolumeSpec::Bind(format!("{src}:{dst}:rw"))),
            [src, dst, mode] if dst.starts_with('/') && !src.is_empty() && !mode.is_empty() => Ok(VolumeSpec::Bind(format!("{src}:{dst}:{mode}"))),
            _ => Err(bad("is not understood")),
        }
    }
}

/// A container as asked for. `None` and empty lists mean "not asked": not set at creation
/// (the image's defaults apply) and not compared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSpec {
    /// The image, by name or ID.
    pub image: Option<String>,
    /// Cmd.
    pub command: Option<Vec<String>>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Published ports.
    pub published_ports: Vec<PublishedPort>,
    /// Volumes.
    pub volumes: Vec<VolumeSpec>,
    /// Environment, in the order given.
    pub env: Option<Vec<(String, String)>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// `no`, `on-failure`, `always`, `unless-stopped`.
    pub restart_policy: Option<String>,
    /// User (`uid[:gid]` or a name).
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Read-only root filesystem.
    pub read_only: Option<bool>,
    /// Seconds `docker stop` waits before killing.
    pub stop_timeout: Option<i64>,
}

fn restart_name(s: &str) -> RestartPolicyNameEnum {
    match s {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    }
}

/// Docker's `PortBindings` for `ports`.
fn port_bindings(ports: &[PublishedPort]) -> HashMap<String, Vec<(String, String)>> {
    let mut map: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for p in ports {
        map.entry(p.key()).or_default().push((p.host_ip.clone(), p.host_port.map(|h| h.to_string()).unwrap_or_default()));
    }
    map
}

impl ContainerSpec {
    /// The create request for image `image_id`.
    pub fn create_body(&self, image: &str) -> ContainerCreateBody {
        let binds: Vec<String> = self.volumes.iter().filter_map(|v| if let VolumeSpec::Bind(b) = v { Some(b.clone()) } else { None }).collect();
        let anonymous: Vec<String> = self.volumes.iter().filter_map(|v| if let VolumeSpec::Anonymous(a) = v { Some(a.clone()) } else { None }).collect();
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = port_bindings(&self.published_ports)
            .into_iter()
            .map(|(k, v)| (k, Some(v.into_iter().map(|(ip, port)| PortBinding { host_ip: Some(ip), host_port: Some(port) }).collect())))
            .collect();
        let mut exposed: Vec<String> = self.published_ports.iter().map(PublishedPort::key).collect();
        exposed.sort();
        exposed.dedup();
        let host_config = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            restart_policy: self.restart_policy.as_deref().map(|r| RestartPolicy { name: Some(restart_name(r)), maximum_retry_count: None }),
            readonly_rootfs: self.read_only,
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.as_ref().map(|e| e.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: self.labels.as_ref().map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            volumes: (!anonymous.is_empty()).then_some(anonymous),
            stop_timeout: self.stop_timeout,
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// What differs between this spec (with `image_id`, the image's ID, when an image was
    /// asked) and the container `c`: (option, asked, found), in option order.
    pub fn differences(&self, image_id: Option<&str>, c: &ContainerInspectResponse) -> Vec<(String, Value, Value)> {
        let cfg = c.config.clone().unwrap_or_default();
        let hc = c.host_config.clone().unwrap_or_default();
        let mut out: Vec<(String, Value, Value)> = Vec::new();
        let mut diff = |name: &str, asked: Value, found: Value, same: bool| {
            if !same {
                out.push((name.to_string(), asked, found));
            }
        };
        if let Some(id) = image_id {
            let found = c.image.clone().unwrap_or_default();
            diff("image", json!(id), json!(found), found == id);
        }
        if let Some(cmd) = &self.command {
            let found = cfg.cmd.clone().unwrap_or_default();
            diff("command", json!(cmd), json!(found), &found == cmd);
        }
        if let Some(ep) = &self.entrypoint {
            let found = cfg.entrypoint.clone().unwrap_or_default();
            diff("entrypoint", json!(ep), json!(found), &found == ep);
        }
        if let Some(env) = &self.env {
            let found = cfg.env.clone().unwrap_or_default();
            let asked: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let same = asked.iter().all(|a| found.contains(a));
            // Shown: the asked variables as the container has them.
            let keys: Vec<String> = env.iter().map(|(k, _)| format!("{k}=")).collect();
            let found: Vec<&String> = found.iter().filter(|f| keys.iter().any(|k| f.starts_with(k.as_str()))).collect();
            diff("env", json!(asked), json!(found), same);
        }
        if let Some(labels) = &self.labels {
            let found: BTreeMap<String, String> = cfg.labels.clone().unwrap_or_default().into_iter().collect();
            let same = labels.iter().all(|(k, v)| found.get(k) == Some(v));
            let found: BTreeMap<&String, &String> = found.iter().filter(|(k, _)| labels.contains_key(*k)).collect();
            diff("labels", json!(labels), json!(found), same);
        }
        if !self.published_ports.is_empty() {
            let asked = port_bindings(&self.published_ports);
            let found: HashMap<String, Vec<(String, String)>> = hc
                .port_bindings
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default().into_iter().map(|b| (b.host_ip.unwrap_or_default(), b.host_port.unwrap_or_default())).collect()))
                .collect();
            let same = asked.iter().all(|(k, v)| found.get(k).is_some_and(|f| f.len() == v.len() && v.iter().all(|b| f.contains(b))));
            let show = |m: &HashMap<String, Vec<(String, String)>>| -> Value {
                let sorted: BTreeMap<&String, Vec<String>> = m.iter().map(|(k, v)| (k, v.iter().map(|(ip, p)| format!("{ip}:{p}")).collect())).collect();
                json!(sorted)
            };
            diff("published_ports", show(&asked), show(&found), same);
        }
        let binds: Vec<&String> = self.volumes.iter().filter_map(|v| if let VolumeSpec::Bind(b) = v { Some(b) } else { None }).collect();
        if !binds.is_empty() {
            let found = hc.binds.clone().unwrap_or_default();
            let same = binds.iter().all(|b| found.contains(b));
            diff("volumes", json!(binds), json!(found), same);
        }
        let anonymous: Vec<&String> = self.volumes.iter().filter_map(|v| if let VolumeSpec::Anonymous(a) = v { Some(a) } else { None }).collect();
        if !anonymous.is_empty() {
            let found = cfg.volumes.clone().unwrap_or_default();
            let same = anonymous.iter().all(|a| found.contains(a));
            diff("volumes", json!(anonymous), json!(found), same);
        }
        if let Some(r) = &self.restart_policy {
            let found = hc.restart_policy.as_ref().and_then(|p| p.name).map(|n| n.to_string()).unwrap_or_default();
            let found = if found.is_empty() { "no".to_string() } else { found };
            diff("restart_policy", json!(r), json!(found), &found == r);
        }
        if let Some(u) = &self.user {
            let found = cfg.user.clone().unwrap_or_default();
            diff("user", json!(u), json!(found), &found == u);
        }
        if let Some(w) = &self.working_dir {
            let found = cfg.working_dir.clone().unwrap_or_default();
            diff("working_dir", json!(w), json!(found), &found == w);
        }
        if let Some(ro) = self.read_only {
            let found = hc.readonly_rootfs.unwrap_or(false);
            diff("read_only", json!(ro), json!(found), found == ro);
        }
        out
    }
}

/// The host ports a container holds (from its `PortBindings`), for the port checks of its
/// replacement.
pub fn held_host_ports(c: &ContainerInspectResponse) -> Vec<u16> {
    c.host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .into_iter()
        .flat_map(|m| m.values())
        .flatten()
        .flatten()
        .filter_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()))
        .collect()
}

/// The result community.docker returns for a container: its inspect data.
pub fn container_json(c: &ContainerInspectResponse) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_parse() {
        let p = |s: &str| PublishedPort::parse(s).unwrap();
        assert_eq!(p("5000:5000"), PublishedPort { host_ip: "0.0.0.0".into(), host_port: Some(5000), container_port: 5000, protocol: "tcp".into() });
        assert_eq!(p("0.0.0.0:8001:80").host_port, Some(8001));
        let q = p("127.0.0.1:8002:8080/tcp");
        assert_eq!((q.host_ip.as_str(), q.host_port, q.container_port, q.key().as_str()), ("127.0.0.1", Some(8002), 8080, "8080/tcp"));
        assert_eq!(p("8080").host_port, None);
        assert_eq!(p("127.0.0.1::80").host_port, None);
        assert_eq!(p("[::1]:8000:80").host_ip, "::1");
        assert_eq!(p("53:53/udp").key(), "53/udp");
        for bad in ["", "a:b", "1:2:3:4", "localhost:80:80", "8000-8001:80-81", "80/xyz", "0:80"] {
            assert!(PublishedPort::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_parse() {
        assert_eq!(VolumeSpec::parse("/srv:/www").unwrap(), VolumeSpec::Bind("/srv:/www:rw".into()));
        assert_eq!(VolumeSpec::parse("/srv:/www:ro").unwrap(), VolumeSpec::Bind("/srv:/www:ro".into()));
        assert_eq!(VolumeSpec::parse("data:/var/lib/registry").unwrap(), VolumeSpec::Bind("data:/var/lib/registry:rw".into()));
        assert_eq!(VolumeSpec::parse("/cache").unwrap(), VolumeSpec::Anonymous("/cache".into()));
        assert!(VolumeSpec::parse("relative").is_err());
    }

    #[test]
    fn only_what_was_asked_is_compared() {
        let spec = ContainerSpec {
            env: Some(vec![("A".into(), "1".into())]),
            published_ports: vec![PublishedPort::parse("127.0.0.1:8002:8080").unwrap()],
            restart_policy: Some("no".into()),
            ..Default::default()
        };
        let body = spec.create_body("sha256:abc");
        // What Docker shows for a container made from that body, plus the image's defaults.
        let c: ContainerInspectResponse = serde_json::from_value(json!({
            "Image": "sha256:abc",
            "Config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["/bin/sh"]},
            "HostConfig": {"PortBindings": serde_json::to_value(body.host_config.as_ref().unwrap().port_bindings.clone()).unwrap(), "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
        }))
        .unwrap();
        assert_eq!(spec.differences(Some("sha256:abc"), &c), vec![]);
        let changed = ContainerSpec { env: Some(vec![("A".into(), "2".into())]), command: Some(vec!["x".into()]), ..spec.clone() };
        let d: Vec<String> = changed.differences(Some("sha256:def"), &c).into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(d, ["image", "command", "env"]);
        let moved = ContainerSpec { published_ports: vec![PublishedPort::parse("127.0.0.1:8003:8080").unwrap()], ..spec };
        assert_eq!(moved.differences(None, &c).len(), 1);
    }
}

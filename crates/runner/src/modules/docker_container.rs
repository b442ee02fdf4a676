//! The `docker_container` module (`community.docker.docker_container`): create, start, stop or
//! remove a container of the local Docker Engine, re-creating it when what was asked differs
//! from what runs. Images must already be in Docker: nothing is pulled.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::docker_image::{connect, fail};
use super::{Args, Diff, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::docker::container::{ContainerSpec, PublishedPort, VolumeSpec, container_json, held_host_ports};
use airlock_content::docker::{Engine, ports};

const ALLOWED: &[&str] = &[
    "name",
    "image",
    "command",
    "entrypoint",
    "published_ports",
    "ports",
    "volumes",
    "env",
    "labels",
    "restart_policy",
    "state",
    "recreate",
    "pull",
    "user",
    "working_dir",
    "read_only",
    "stop_timeout",
    "docker_host",
];

/// A list of strings from a string (split as a shell would) or a list.
fn str_list(a: &Args, key: &str) -> Result<Option<Vec<String>>, ModuleFail> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => airlock_base::shlex::split(s).map(Some).map_err(|e| ModuleFail::new(format!("{key}: {e}"))),
        Some(Value::Array(items)) => Ok(Some(items.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect())),
        Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to list", args::type_name(v)))),
    }
}

/// A list of entries, each a string or a number (`- 8080`).
fn entries(a: &Args, key: &str) -> Result<Vec<String>, ModuleFail> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(ModuleFail::new(format!("each entry of '{key}' must be a string, got {other}"))),
            })
            .collect(),
        Some(Value::String(s)) => Ok(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
        Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to list", args::type_name(v)))),
    }
}

/// A mapping of strings; community.docker refuses other values rather than guess how
/// `yes` or `1.10` was meant.
fn str_map(a: &Args, key: &str, what: &str) -> Result<Option<Vec<(String, String)>>, ModuleFail> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ModuleFail::new(format!(
                    "Non-string value found for {what} option. Ambiguous {what} options must be wrapped in quotes to avoid them being interpreted when directly specified in YAML, or explicitly converted to strings when the option is templated. Key: {k}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to dict", args::type_name(v)))),
    }
}

/// The container asked for.
fn spec(a: &Args) -> Result<ContainerSpec, ModuleFail> {
    let mut ports = entries(a, "published_ports")?;
    ports.extend(entries(a, "ports")?);
    Ok(ContainerSpec {
        image: args::opt_str(a, "image")?,
        command: str_list(a, "command")?,
        entrypoint: str_list(a, "entrypoint")?,
        published_ports: ports.iter().map(|p| PublishedPort::parse(p)).collect::<Result<_, _>>().map_err(fail)?,
        volumes: entries(a, "volumes")?.iter().map(|v| VolumeSpec::parse(v)).collect::<Result<_, _>>().map_err(fail)?,
        env: str_map(a, "env", "env")?,
        labels: str_map(a, "labels", "labels")?.map(|l| l.into_iter().collect::<BTreeMap<_, _>>()),
        restart_policy: args::opt_choice(a, "restart_policy", &["no", "on-failure", "always", "unless-stopped"])?,
        user: args::opt_str(a, "user")?,
        working_dir: args::opt_str(a, "working_dir")?,
        read_only: args::opt_bool(a, "read_only")?,
        stop_timeout: args::opt_int(a, "stop_timeout")?,
    })
}

/// `pull`: only values that never pull are accepted.
fn check_pull(a: &Args) -> Result<(), ModuleFail> {
    let refuse = |v: &str| {
        Err(ModuleFail::new(format!(
            "pull: {v} is not supported: airlock never pulls images; load them with docker_image (source: load) and set pull: false (or never)"
        )))
    };
    match a.get("pull") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if matches!(s.as_str(), "never" | "missing") => Ok(()),
        Some(v) => match airlock_jinja::to_bool_strict(v) {
            Some(false) => Ok(()),
            Some(true) => refuse("true"),
            None => refuse(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
        },
    }
}

/// Who holds host port `p.host_port` (other than container `own`), if anyone: a container
/// of this Engine, or a process.
fn port_taken(engine: &Engine, p: &PublishedPort, own: &str, own_ports: &[u16]) -> Result<Option<String>, ModuleFail> {
    let Some(port) = p.host_port else { return Ok(None) };
    if p.protocol != "tcp" {
        return Ok(None);
    }
    // Two bindings of a port clash unless both name distinct, specific addresses.
    let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
    let clash = |ip: &str| any(ip) || any(&p.host_ip) || ip == p.host_ip;
    for c in engine.running_container_ports().map_err(fail)? {
        if c.name != own && c.ports.iter().any(|(hp, proto, ip)| *hp == port && proto == "tcp" && clash(ip)) {
            return Ok(Some(format!("container '{}'", c.name)));
        }
    }
    if own_ports.contains(&port) {
        return Ok(None);
    }
    Ok((!ports::is_free(&p.host_ip, port)).then(|| ports::describe_holders(port)))
}

fn taken_error(name: &str, p: &PublishedPort, by: &str) -> ModuleFail {
    let port = p.host_port.unwrap_or_default();
    ModuleFail::new(format!(
        "cannot publish port {port} ({}:{port} -> {}) for container {name}: port {port} is already in use by {by}; stop it or publish another host port",
        p.host_ip,
        p.key()
    ))
}

/// Starts container `name`; when Docker finds a published port taken, the error says by whom.
fn start_container(engine: &Engine, name: &str, spec: &ContainerSpec) -> Result<(), ModuleFail> {
    let Err(e) = engine.start_container(name) else { return Ok(()) };
    let text = e.message.to_ascii_lowercase();
    if text.contains("port is already allocated") || text.contains("address already in use") {
        for p in &spec.published_ports {
            if let Some(by) = port_taken(engine, p, name, &[])? {
                return Err(taken_error(name, p, &by));
            }
        }
    }
    Err(fail(e))
}

/// Runs `docker_container`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "docker_container", ALLOWED)?;
    let name = args::req_str(a, "name")?;
    let state = args::opt_choice(a, "state", &["started", "present", "stopped", "absent"])?.unwrap_or_else(|| "started".into());
    let recreate = args::bool_or(a, "recreate", false)?;
    check_pull(a)?;
    let spec = spec(a)?;
    let stop_timeout = spec.stop_timeout.map(|t| t.clamp(0, i32::MAX as i64) as i32);
    let engine = connect(a)?;
    let existing = engine.inspect_container(&name).map_err(fail)?;
    let verb = |done: &str, would: &str| if ctx.check_mode { would.to_string() } else { done.to_string() };

    if state == "absent" {
        let Some(c) = existing else {
            return Ok(ModuleResult::ok().with("container", json!({})).with_msg(format!("container {name} does not exist")));
        };
        if !ctx.check_mode {
            if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                engine.stop_container(&name, stop_timeout).map_err(fail)?;
            }
            engine.remove_container(&name).map_err(fail)?;
        }
        return Ok(ModuleResult::changed(true).with("container", json!({})).with_msg(format!("{} container {name}", verb("removed", "would remove"))));
    }

    let image = match &spec.image {
        Some(img) => match engine.inspect_image(img).map_err(fail)? {
            Some(i) => Some(i),
            None if ctx.check_mode => None,
            None => {
                return Err(ModuleFail::new(format!(
                    "image {img} is not in Docker; load it first with docker_image (source: load, load_path: the OCI layout or docker save archive): airlock never pulls"
                )));
            }
        },
        None => None,
    };
    let image_id = image.as_ref().and_then(|i| i.id.clone());
    if existing.is_none() && spec.image.is_none() {
        return Err(ModuleFail::new(format!("container {name} does not exist, and no image is given to create it from: set image")));
    }
    let diffs = match &existing {
        Some(c) => spec.differences(image_id.as_deref(), c),
        None => vec![],
    };
    let create = existing.is_none() || recreate || !diffs.is_empty();
    let running = existing.as_ref().and_then(|c| c.state.as_ref()).and_then(|s| s.running).unwrap_or(false);
    let mut result = ModuleResult::changed(false);
    if ctx.diff_mode && (create || !diffs.is_empty()) {
        let show = |pick: &dyn Fn(&(String, Value, Value)) -> Value| -> String {
            let m: serde_json::Map<String, Value> = diffs.iter().map(|d| (d.0.clone(), pick(d))).collect();
            if m.is_empty() { String::new() } else { format!("{}\n", serde_json::to_string_pretty(&m).unwrap_or_default()) }
        };
        let (before, after) = if existing.is_none() {
            (String::new(), format!("{}\n", serde_json::to_string_pretty(&json!({"image": spec.image, "state": state})).unwrap_or_default()))
        } else {
            (show(&|d| d.2.clone()), show(&|d| d.1.clone()))
        };
        result.diff.push(Diff { before_header: format!("container {name}"), after_header: format!("container {name}"), before, after });
    }

    let msg;
    if create {
        let why = match (&existing, recreate) {
            (None, _) => "created".to_string(),
            (Some(_), true) => "re-created (recreate: true)".to_string(),
            (Some(_), false) => format!("re-created ({} changed)", diffs.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(", ")),
        };
        // `present` keeps a running container running across its re-creation.
        let start = state == "started" || (state == "present" && running);
        msg = format!("container {name} {}{why}{}", if ctx.check_mode { "would be " } else { "" }, if start { " and started" } else { "" });
        result.changed = true;
        if !ctx.check_mode {
            let own_ports = match &existing {
                Some(c) if running => held_host_ports(c),
                _ => vec![],
            };
            if start {
                for p in &spec.published_ports {
                    if let Some(by) = port_taken(&engine, p, &name, &own_ports)? {
                        return Err(taken_error(&name, p, &by));
                    }
                }
            }
            if existing.is_some() {
                if running {
                    engine.stop_container(&name, stop_timeout).map_err(fail)?;
                }
                engine.remove_container(&name).map_err(fail)?;
            }
            let image_ref = image_id.clone().or_else(|| spec.image.clone()).unwrap_or_default();
            engine.create_container(&name, spec.create_body(&image_ref)).map_err(fail)?;
            if start && let Err(e) = start_container(&engine, &name, &spec) {
                // Nothing half-started is left behind.
                let _ = engine.remove_container(&name);
                return Err(ModuleFail::new(format!("{}; the container was removed again", e.msg)));
            }
        }
    } else if state == "started" && !running {
        result.changed = true;
        msg = format!("container {name} {}", verb("started", "would be started"));
        if !ctx.check_mode {
            start_container(&engine, &name, &spec)?;
        }
    } else if state == "stopped" && running {
        result.changed = true;
        msg = format!("container {name} {}", verb("stopped", "would be stopped"));
        if !ctx.check_mode {
            engine.stop_container(&name, stop_timeout).map_err(fail)?;
        }
    } else {
        msg = format!("container {name} is as asked");
    }
    let container = match engine.inspect_container(&name).map_err(fail)? {
        Some(c) => container_json(&c),
        None => json!({}),
    };
    Ok(result.with("container", container).with_msg(msg))
}

//! The `wait_for` module: waits for a TCP port to accept (or refuse) connections, a file to
//! appear (or go, or contain a pattern), connections to drain, or just for some seconds.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::args::{check_known, opt_choice, opt_int, opt_list, opt_str};
use super::utils::files::{self, expand_path};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};

const ARGS: &[&str] =
    &["host", "timeout", "connect_timeout", "delay", "port", "active_connection_states", "path", "search_regex", "state", "exclude_hosts", "sleep", "msg"];

const CONNECTION_STATES: &[(&str, &str)] = &[
    ("ESTABLISHED", "01"),
    ("SYN_SENT", "02"),
    ("SYN_RECV", "03"),
    ("FIN_WAIT1", "04"),
    ("FIN_WAIT2", "05"),
    ("TIME_WAIT", "06"),
    ("CLOSE", "07"),
    ("CLOSE_WAIT", "08"),
    ("LAST_ACK", "09"),
    ("LISTEN", "0A"),
    ("CLOSING", "0B"),
];

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    (host, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// One connection attempt to any address of host:port.
fn connect(host: &str, port: u16, timeout: Duration) -> Option<TcpStream> {
    let timeout = timeout.max(Duration::from_millis(100));
    resolve(host, port).into_iter().find_map(|a| TcpStream::connect_timeout(&a, timeout).ok())
}

/// Python's `match.groups()` and `match.groupdict()` for a regex match.
fn groups(re: &regex::bytes::Regex, caps: &regex::bytes::Captures) -> (Vec<Value>, Map<String, Value>) {
    let text = |m: Option<regex::bytes::Match>| m.map(|m| Value::String(String::from_utf8_lossy(m.as_bytes()).into_owned())).unwrap_or(Value::Null);
    let list: Vec<Value> = (1..caps.len()).map(|i| text(caps.get(i))).collect();
    let mut dict = Map::new();
    for name in re.capture_names().flatten() {
        dict.insert(name.to_string(), text(caps.name(name)));
    }
    (list, dict)
}

/// Active connections to `port` from /proc/net/tcp{,6}, as wait_for's drained state counts.
fn active_connections(port: u16, states: &[String], exclude: &[String]) -> usize {
    let wanted: Vec<&str> = states.iter().filter_map(|s| CONNECTION_STATES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, c)| *c)).collect();
    let mut count = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let local_port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port != Some(port) || !wanted.contains(&f[3]) {
                continue;
            }
            let remote = hex_ip(f[2].split(':').next().unwrap_or(""));
            if remote.as_ref().is_some_and(|r| exclude.iter().any(|e| e == r)) {
                continue;
            }
            count += 1;
        }
    }
    count
}

/// A /proc/net/tcp address (little-endian hex words) as text.
fn hex_ip(h: &str) -> Option<String> {
    if h.len() == 8 {
        let v = u32::from_str_radix(h, 16).ok()?;
        return Some(std::net::Ipv4Addr::from(v.swap_bytes()).to_string());
    }
    if h.len() == 32 {
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            let w = u32::from_str_radix(&h[i * 8..i * 8 + 8], 16).ok()?.swap_bytes();
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        let v6 = std::net::Ipv6Addr::from(bytes);
        return Some(v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_else(|| v6.to_string()));
    }
    None
}

/// Runs `wait_for`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    check_known(args, "wait_for", ARGS)?;
    if ctx.check_mode {
        let mut r = ModuleResult::ok().with_msg("remote module (wait_for) does not support check mode");
        r.skipped = true;
        return Ok(r);
    }
    let host = opt_str(args, "host")?.unwrap_or_else(|| "127.0.0.1".into());
    let timeout = opt_int(args, "timeout")?.unwrap_or(300).max(0) as u64;
    let connect_timeout = opt_int(args, "connect_timeout")?.unwrap_or(5).max(0) as u64;
    let delay = opt_int(args, "delay")?.unwrap_or(0).max(0) as u64;
    let sleep = Duration::from_secs(opt_int(args, "sleep")?.unwrap_or(1).max(0) as u64);
    let port = opt_int(args, "port")?;
    let path = opt_str(args, "path")?;
    let search_regex = opt_str(args, "search_regex")?;
    let state = opt_choice(args, "state", &["absent", "drained", "present", "started", "stopped"])?.unwrap_or_else(|| "started".into());
    let msg = opt_str(args, "msg")?;
    let exclude_hosts = opt_list(args, "exclude_hosts")?;
    let states = opt_list(args, "active_connection_states")?
        .unwrap_or_else(|| ["ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "SYN_RECV", "SYN_SENT", "TIME_WAIT"].iter().map(|s| s.to_string()).collect());

    let re = match &search_regex {
        Some(s) => Some(regex::bytes::RegexBuilder::new(s).multi_line(true).build().map_err(|e| ModuleFail::new(format!("Invalid regular expression: {e}")))?),
        None => None,
    };
    let fail0 = |m: &str| Err(ModuleFail::new(m).with("elapsed", 0));
    if port.is_some() && path.is_some() {
        return fail0("port and path parameter can not both be passed to wait_for");
    }
    if path.is_some() && state == "stopped" {
        return fail0("state=stopped should only be used for checking a port in the wait_for module");
    }
    if path.is_some() && state == "drained" {
        return fail0("state=drained should only be used for checking a port in the wait_for module");
    }
    if exclude_hosts.is_some() && state != "drained" {
        return fail0("exclude_hosts should only be with state=drained");
    }
    for s in &states {
        if !CONNECTION_STATES.iter().any(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Err(ModuleFail::new(format!("unknown active_connection_state ({s}) defined")).with("elapsed", 0));
        }
    }
    let port_u16 = match port {
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => return Err(ModuleFail::new(format!("port {p} is out of range"))),
        None => None,
    };
    let path_buf = path.as_ref().map(|p| expand_path(p));

    let start = Instant::now();
    if delay > 0 {
        std::thread::sleep(Duration::from_secs(delay));
    }
    let end = start + Duration::from_secs(timeout);
    let timed_out = |text: String| -> ModuleOutcome { Err(ModuleFail::new(msg.clone().unwrap_or(text)).with("elapsed", secs(start.elapsed()))) };
    let mut match_groups: Vec<Value> = Vec::new();
    let mut match_groupdict = Map::new();

    if port_u16.is_none() && path_buf.is_none() && state != "drained" {
        std::thread::sleep(Duration::from_secs(timeout).saturating_sub(start.elapsed()));
    } else if state == "absent" || state == "stopped" {
        let mut done = false;
        while Instant::now() < end {
            if let Some(p) = &path_buf {
                if std::fs::symlink_metadata(p).is_err() && !p.exists() {
                    done = true;
                    break;
                }
            } else if let Some(port) = port_u16 {
                match connect(&host, port, Duration::from_secs(connect_timeout)) {
                    Some(s) => {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            std::thread::sleep(sleep);
        }
        if !done {
            return timed_out(match (&path, port) {
                (_, Some(p)) => format!("Timeout when waiting for {host}:{p} to stop."),
                (Some(p), _) => format!("Timeout when waiting for {p} to be absent."),
                _ => "Timeout".into(),
            });
        }
    } else if state == "started" || state == "present" {
        let mut done = false;
        while Instant::now() < end {
            if let Some(p) = &path_buf {
                match std::fs::metadata(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(ModuleFail::new(msg.clone().unwrap_or_else(|| format!("Failed to stat {}, {e}", p.display())))
                            .with("elapsed", secs(start.elapsed())));
                    }
                    Err(_) => {}
                    Ok(_) => match &re {
                        None => {
                            done = true;
                            break;
                        }
                        Some(re) => {
                            if let Ok(data) = std::fs::read(p)
                                && let Some(c) = re.captures(&data)
                            {
                                (match_groups, match_groupdict) = groups(re, &c);
                                done = true;
                                break;
                            }
                        }
                    },
                }
            } else if let Some(port) = port_u16 {
                let remaining = end.saturating_duration_since(Instant::now());
                let ct = Duration::from_secs(connect_timeout).min(Duration::from_secs(remaining.as_secs_f64().ceil() as u64));
                if let Some(mut s) = connect(&host, port, ct) {
                    match &re {
                        None => {
                            let _ = s.shutdown(std::net::Shutdown::Both);
                            done = true;
                            break;
                        }
                        Some(re) => {
                            let mut data = Vec::new();
                            let mut buf = [0u8; 1024];
                            let mut matched = false;
                            while Instant::now() < end {
                                let left = end.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
                                let _ = s.set_read_timeout(Some(left));
                                match s.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        data.extend_from_slice(&buf[..n]);
                                        if let Some(c) = re.captures(&data) {
                                            (match_groups, match_groupdict) = groups(re, &c);
                                            matched = true;
                                            break;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                            let _ = s.shutdown(std::net::Shutdown::Both);
                            if matched {
                                done = true;
                                break;
                            }
                        }
                    }
                }
            }
            std::thread::sleep(sleep);
        }
        if !done {
            return timed_out(match (&path, port, &search_regex) {
                (_, Some(p), Some(r)) => format!("Timeout when waiting for search string {r} in {host}:{p}"),
                (_, Some(p), None) => format!("Timeout when waiting for {host}:{p}"),
                (Some(p), _, Some(r)) => format!("Timeout when waiting for search string {r} in {p}"),
                (Some(p), _, None) => format!("Timeout when waiting for file {p}"),
                _ => "Timeout".into(),
            });
        }
    } else if state == "drained" {
        let Some(port) = port_u16 else {
            return fail0("state=drained needs a port");
        };
        let exclude = exclude_hosts.clone().unwrap_or_default();
        let mut done = false;
        while Instant::now() < end {
            if active_connections(port, &states, &exclude) == 0 {
                done = true;
                break;
            }
            std::thread::sleep(sleep);
        }
        if !done {
            return timed_out(format!("Timeout when waiting for {host}:{port} to drain"));
        }
    }

    let mut r = ModuleResult::ok();
    r.data.insert("state".into(), state.into());
    r.data.insert("port".into(), port.map(Value::from).unwrap_or(Value::Null));
    r.data.insert("search_regex".into(), search_regex.map(Value::from).unwrap_or(Value::Null));
    r.data.insert("match_groups".into(), match_groups.into());
    r.data.insert("match_groupdict".into(), match_groupdict.into());
    r.data.insert("path".into(), path.clone().map(Value::from).unwrap_or(Value::Null));
    r.data.insert("elapsed".into(), secs(start.elapsed()).into());
    if let Some(p) = &path_buf
        && Path::new(p).exists()
    {
        // As in Ansible, the path's info (including its `state`) is added last.
        r.data.extend(files::path_info(p));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use serde_json::json;
    use std::io::Write;
    use std::net::TcpListener;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn ports() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6 hello\r\n");
            }
        });
        let r = run(&args(json!({"port": port, "timeout": 5})), &ctx).unwrap();
        assert_eq!(r.data["state"], "started");
        assert_eq!(r.data["port"], port);
        assert_eq!(r.data["elapsed"], 0);
        assert_eq!(r.data["match_groups"], json!([]));
        let r = run(&args(json!({"port": port, "search_regex": "OpenSSH_(\\d+)\\.(?P<minor>\\d+)", "timeout": 5})), &ctx).unwrap();
        assert_eq!(r.data["match_groups"], json!(["9", "6"]));
        assert_eq!(r.data["match_groupdict"], json!({"minor": "6"}));

        let closed = free_port();
        let f = run(&args(json!({"port": closed, "timeout": 1, "sleep": 1})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("Timeout when waiting for 127.0.0.1:{closed}"));
        assert_eq!(f.data["elapsed"], 1);
        let f = run(&args(json!({"port": closed, "timeout": 1, "msg": "custom"})), &ctx).unwrap_err();
        assert_eq!(f.msg, "custom");
        let r = run(&args(json!({"port": closed, "state": "stopped", "timeout": 2})), &ctx).unwrap();
        assert_eq!(r.data["state"], "stopped");
        let f = run(&args(json!({"port": port, "state": "stopped", "timeout": 1})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("Timeout when waiting for 127.0.0.1:{port} to stop."));
        let r = run(&args(json!({"port": closed, "state": "drained", "timeout": 2})), &ctx).unwrap();
        assert_eq!(r.data["state"], "drained");
    }

    #[test]
    fn paths_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let p = d.path().join("f.txt");
        let p2 = p.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(&p2, "hello world\nready: yes\n").unwrap();
        });
        let r = run(&args(json!({"path": p, "search_regex": "^ready: (\\w+)$", "timeout": 5})), &ctx).unwrap();
        assert_eq!(r.data["match_groups"], json!(["yes"]));
        assert_eq!(r.data["path"], p.display().to_string());
        assert_eq!(r.data["state"], "file");
        let f = run(&args(json!({"path": p, "search_regex": "nomatch", "timeout": 1})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("Timeout when waiting for search string nomatch in {}", p.display()));
        let f = run(&args(json!({"path": d.path().join("nope"), "timeout": 1})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("Timeout when waiting for file {}", d.path().join("nope").display()));
        let r = run(&args(json!({"path": d.path().join("nope"), "state": "absent", "timeout": 1})), &ctx).unwrap();
        assert_eq!(r.data["state"], "absent");
        let f = run(&args(json!({"path": p, "state": "absent", "timeout": 1})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("Timeout when waiting for {} to be absent.", p.display()));

        assert_eq!(run(&args(json!({"port": 1, "path": "/x"})), &ctx).unwrap_err().msg, "port and path parameter can not both be passed to wait_for");
        assert!(run(&args(json!({"path": "/x", "search_regex": "("})), &ctx).unwrap_err().msg.starts_with("Invalid regular expression"));
        let r = run(&args(json!({"timeout": 1})), &ctx).unwrap();
        assert_eq!(r.data["elapsed"], 1);
        let cctx = ctx_for(true, d.path(), &pf);
        assert!(run(&args(json!({"port": 1})), &cctx).unwrap().skipped);
    }
}

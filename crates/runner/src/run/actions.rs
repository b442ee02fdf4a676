//! Actions the executor runs itself because they need its state: debug, set_fact, assert,
//! fail, include_vars, meta, setup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::{PlayCtx, Runner, Task, TaskCall};
use airlock_jinja::Vars;

/// Runs an executor action with its templated `args`; `None` when the call's action is a
/// module from the registry.
pub(super) fn run_executor_action(
    runner: &mut Runner,
    pc: &mut PlayCtx,
    call: &TaskCall,
    args: &Map<String, Json>,
    vars: &Arc<Vars>,
    _check: bool,
) -> Option<Json> {
    let TaskCall { task, host, action, .. } = *call;
    Some(match action {
        "debug" => debug(runner, args, vars),
        "set_fact" => {
            let facts: Map<String, Json> = args.iter().filter(|(k, _)| *k != "cacheable" && *k != "_raw_params").map(|(k, v)| (k.clone(), v.clone())).collect();
            if facts.is_empty() {
                return Some(
                    json!({"changed": false, "failed": true, "msg": "No key/value pairs provided, at least one is required for this action to succeed"}),
                );
            }
            for k in facts.keys() {
                if !valid_var_name(k) {
                    return Some(
                        json!({"changed": false, "failed": true, "msg": format!("The variable name '{k}' is not valid. Variables must start with a letter or underscore character, and contain only letters, numbers and underscores.")}),
                    );
                }
            }
            json!({"changed": false, "ansible_facts": facts})
        }
        "assert" => assert(runner, args, vars),
        "fail" => {
            let msg = args.get("msg").cloned().unwrap_or(json!("Failed as requested from task"));
            json!({"changed": false, "failed": true, "msg": msg})
        }
        "include_vars" => include_vars(pc, task, args),
        "meta" => meta(runner, pc, host, args),
        "setup" | "gather_facts" => runner.gather_facts(pc, host),
        "noop" => json!({"changed": false}),
        _ => return None,
    })
}

fn valid_var_name(k: &str) -> bool {
    let mut c = k.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_') && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// `debug`: `msg` (templated, native types kept) or `var` (an expression), with `verbosity`.
fn debug(runner: &Runner, args: &Map<String, Json>, vars: &Arc<Vars>) -> Json {
    let ctx = vars.ctx();
    for k in args.keys() {
        if !matches!(k.as_str(), "msg" | "var" | "verbosity") {
            return json!({"changed": false, "failed": true, "msg": format!("Unsupported parameters for (debug) module: {k}. Supported parameters include: msg, var, verbosity.")});
        }
    }
    let verbosity = args.get("verbosity").and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0);
    if u64::from(runner.opts.verbosity) < verbosity {
        return json!({"changed": false, "skipped": true, "skipped_reason": "Verbosity threshold not met."});
    }
    if args.contains_key("msg") && args.contains_key("var") {
        return json!({"changed": false, "failed": true, "msg": "parameters are mutually exclusive: msg|var"});
    }
    if let Some(var) = args.get("var") {
        let expr = match var {
            Json::String(s) => airlock_jinja::lone_expression(s).unwrap_or(s).to_string(),
            other => other.to_string(),
        };
        let shown = match runner.templar.eval_expr(&expr, &ctx) {
            Ok(v) if v.is_undefined() => json!("VARIABLE IS NOT DEFINED!"),
            Ok(v) => {
                // A variable holding a template shows its templated value.
                let j = airlock_jinja::to_json(&v);
                match &j {
                    Json::String(s) if airlock_jinja::is_template(s) => runner.templar.template_str(s, &ctx).map(|x| airlock_jinja::to_json(&x)).unwrap_or(j),
                    _ => j,
                }
            }
            Err(e) => json!(format!("VARIABLE IS NOT DEFINED!: {}", e.msg)),
        };
        let key = match var {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut m = Map::new();
        m.insert(key, shown);
        m.insert("changed".into(), json!(false));
        return Json::Object(m);
    }
    let msg = args.get("msg").cloned().unwrap_or(json!("Hello world!"));
    match runner.templar.template_json(&msg, &ctx) {
        Ok(m) => json!({"changed": false, "msg": m}),
        Err(e) => json!({"changed": false, "failed": true, "msg": e.msg}),
    }
}

/// `assert`: every `that` condition must hold.
fn assert(runner: &Runner, args: &Map<String, Json>, vars: &Arc<Vars>) -> Json {
    let ctx = vars.ctx();
    for k in args.keys() {
        if !matches!(k.as_str(), "that" | "msg" | "fail_msg" | "success_msg" | "quiet") {
            return json!({"changed": false, "failed": true, "msg": format!("Unsupported parameters for (assert) module: {k}. Supported parameters include: fail_msg, quiet, success_msg, that.")});
        }
    }
    let Some(that) = args.get("that") else {
        return json!({"changed": false, "failed": true, "msg": "conditional required in \"that\" string"});
    };
    let conds: Vec<Json> = match that {
        Json::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let tmpl = |k: &str| args.get(k).map(|m| runner.templar.template_json(m, &ctx).unwrap_or_else(|e| json!(e.msg)));
    for c in &conds {
        match runner.templar.eval_cond(c, &ctx) {
            Ok(true) => {}
            Ok(false) => {
                let msg = tmpl("fail_msg").or_else(|| tmpl("msg")).unwrap_or(json!("Assertion failed"));
                return json!({"changed": false, "failed": true, "assertion": c, "evaluated_to": false, "msg": msg});
            }
            Err(e) => {
                return json!({"changed": false, "failed": true, "assertion": c, "msg": format!("The conditional check '{}' failed. The error was: {}", c.as_str().unwrap_or_default(), e.msg)});
            }
        }
    }
    let msg = tmpl("success_msg").unwrap_or(json!("All assertions passed"));
    json!({"changed": false, "msg": msg})
}

/// `include_vars`: a file (or a directory of files) into the host's variables.
fn include_vars(pc: &PlayCtx, task: &Task, args: &Map<String, Json>) -> Json {
    let s = |k: &str| args.get(k).and_then(Json::as_str).map(str::to_string);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = &task.role {
        dirs.push(r.path.join("vars"));
        dirs.push(r.path.clone());
    }
    if let Some(d) = task.pos.file.parent() {
        dirs.push(d.join("vars"));
        dirs.push(d.to_path_buf());
    }
    dirs.push(pc.play.dir.join("vars"));
    dirs.push(pc.play.dir.clone());
    let find = |name: &str| -> Option<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() {
            return p.exists().then(|| p.to_path_buf());
        }
        dirs.iter().map(|d| d.join(name)).find(|c| c.exists())
    };
    let mut files = Vec::new();
    if let Some(dir) = s("dir") {
        let Some(d) = find(&dir) else {
            return json!({"changed": false, "failed": true, "msg": format!("{dir} directory does not exist")});
        };
        let matching = s("files_matching").and_then(|p| regex::Regex::new(&p).ok());
        let ignore: Vec<String> = match args.get("ignore_files") {
            Some(Json::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(Json::String(x)) => vec![x.clone()],
            _ => vec![],
        };
        let exts: Vec<String> = match args.get("extensions") {
            Some(Json::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => vec!["json".into(), "yaml".into(), "yml".into()],
        };
        let mut stack = vec![d];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            let mut entries: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let ext_ok = p.extension().is_some_and(|e| exts.iter().any(|x| x == &e.to_string_lossy()));
                if !ext_ok || ignore.contains(&name) || matching.as_ref().is_some_and(|r| !r.is_match(&name)) {
                    continue;
                }
                files.push(p);
            }
        }
    } else {
        let Some(name) = s("file").or_else(|| s("_raw_params")) else {
            return json!({"changed": false, "failed": true, "msg": "include_vars needs 'file' or 'dir'"});
        };
        let Some(p) = find(&name) else {
            return json!({"changed": false, "failed": true, "msg": format!("Could not find or access '{name}' (searched {})", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))});
        };
        files.push(p);
    }
    let mut vars = Map::new();
    for f in &files {
        match crate::playbook::read_vars_file(f) {
            Ok(m) => vars.extend(m),
            Err(e) => return json!({"changed": false, "failed": true, "msg": e.to_string()}),
        }
    }
    let facts = match s("name") {
        Some(n) => Map::from_iter([(n, Json::Object(vars))]),
        None => vars,
    };
    json!({"changed": false, "ansible_facts": facts, "ansible_included_var_files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>()})
}

fn meta(runner: &mut Runner, pc: &mut PlayCtx, host: &str, args: &Map<String, Json>) -> Json {
    let what = args.get("_raw_params").and_then(Json::as_str).unwrap_or_default().trim().to_string();
    match what.as_str() {
        "flush_handlers" => {
            if let Err(super::Fatal(msg)) = runner.flush_handlers(pc) {
                return json!({"changed": false, "failed": true, "msg": msg});
            }
        }
        "end_play" | "end_batch" => pc.end_play = true,
        "end_host" => runner.host_state(host).ended = true,
        "clear_facts" => {
            let hs = runner.host_state(host);
            hs.facts = Arc::new(Map::new());
            hs.set_facts = Arc::new(Map::new());
        }
        "clear_host_errors" => {
            for h in pc.hosts.clone() {
                runner.host_state(&h).failed = false;
            }
        }
        "noop" | "refresh_inventory" | "reset_connection" => {}
        other => return json!({"changed": false, "failed": true, "msg": format!("invalid meta action requested: {other}")}),
    }
    json!({"changed": false, "_ansible_meta": true})
}

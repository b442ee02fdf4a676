//! `--list-vars`: the variables each play sees on each host when it starts, where each value
//! comes from and which lower-precedence values it overrides, so a site can see why a value is
//! what it is.
//!
//! The view is the one a play's first task has (what `debug: var=hostvars[inventory_hostname]`
//! would show, plus play vars, `vars_files` and extra vars), with the defaults and vars of every
//! role the play names: `roles:`, `import_role`, and `include_role` with a name known before the
//! run (those are visible to the included role's tasks only, and say so). Facts and what tasks set
//! while running (`set_fact`, `register`, `include_vars`, block and task `vars`) are not known
//! before the run and are not listed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::{Fatal, Inherit, PlayCtx, Runner, exit, push_role_layers};
use crate::playbook::{self, Body, Play, Playbook, Role, Task};
use crate::vars::{Layer, Layers, Level};
use airlock_base::yaml::{Node, NodeKind};

/// Host variables Ansible keeps out of listings (`ansible-inventory` hides them too).
const HIDDEN: [&str; 2] = ["inventory_file", "inventory_dir"];

/// Prints the variables of every play of the playbooks; returns the exit code.
pub(super) fn list(runner: &mut Runner, books: &[Playbook]) -> i32 {
    let mut lines = KeyLines::default();
    for book in books {
        runner.out.lock().line(&format!("\nplaybook: {}", shown_path(&book.path)));
        for play in &book.plays {
            if let Err(Fatal(msg)) = list_play(runner, play, &mut lines) {
                runner.out.lock().flush();
                eprintln!("ERROR! {msg}");
                return exit::ERROR;
            }
        }
    }
    runner.out.lock().line(
        "\nNot listed: facts (gathered when a play runs) and what tasks set while running (set_fact, register, include_vars, block and task vars, include params).",
    );
    exit::OK
}

fn list_play(runner: &mut Runner, play: &Play, lines: &mut KeyLines) -> Result<(), Fatal> {
    let hosts = runner.play_hosts(play)?;
    runner.out.lock().play_start(&play.name);
    if hosts.is_empty() {
        runner.out.lock().line("skipping: no hosts matched");
        return Ok(());
    }
    for h in &hosts {
        runner.hosts.entry(h.clone()).or_default();
    }
    let pc = runner.play_ctx(play, &hosts)?;
    let included = included_roles(runner, &pc);
    let mut roles: Vec<String> = pc.roles.iter().map(|r| r.name.clone()).collect();
    roles.extend(included.iter().map(|(r, at)| format!("{} (include_role at {at}: its defaults and vars reach its own tasks only)", r.name)));
    if !roles.is_empty() {
        runner.out.lock().line(&format!("roles: {}", roles.join(", ")));
    }
    for host in &hosts {
        let mut layers = runner.layers(&pc, host, None, &Inherit::default(), None);
        for (role, _) in &included {
            push_with_deps(&mut layers, role);
        }
        for r in pc.roles.iter().filter(|r| !r.params.is_empty()) {
            layers.push(Level::RoleParams, format!("role {} params (its tasks only)", r.name), r.params.clone());
        }
        runner.out.lock().banner(&format!("HOST [{host}]"));
        let vars = runner.context(&pc, host, None, runner.opts.check, &layers, None);
        // Listed values hide their secrets as task output does.
        runner.note_secrets(&serde_json::Map::new(), &vars);
        let ctx = vars.ctx();
        let ordered = layers.ordered();
        let names: BTreeSet<&str> = ordered.iter().flat_map(|l| l.vars.keys().map(String::as_str)).filter(|n| !HIDDEN.contains(n)).collect();
        for name in names {
            let mut defined = ordered.iter().filter(|l| l.vars.contains_key(name));
            let Some(winner) = defined.next() else { continue };
            let value = &winner.vars[name];
            let mut head = format!("{name} = {}", compact(value));
            if airlock_jinja::has_template(value)
                && let Ok(v) = runner.templar.template_json(value, &ctx)
                && &v != value
            {
                head.push_str(&format!(" => {}", compact(&v)));
            }
            runner.out.lock().line(&head);
            runner.out.lock().line(&format!("    {}", source(winner, name, play, lines)));
            for l in defined {
                runner.out.lock().line(&format!("    overrides {} from {}", compact(&l.vars[name]), source(l, name, play, lines)));
            }
        }
    }
    Ok(())
}

/// A role's defaults and vars, with those of its dependencies first (lower within the level).
fn push_with_deps(layers: &mut Layers, role: &Role) {
    for d in &role.deps {
        push_with_deps(layers, d);
    }
    push_role_layers(layers, role);
}

/// The roles `include_role` tasks of the play load, when their name is known before the run
/// (written out, or a template of play-level variables), each with where it is included.
/// Roles they include in turn are followed.
fn included_roles(runner: &mut Runner, pc: &PlayCtx) -> Vec<(Arc<Role>, String)> {
    let play = pc.play;
    let mut todo: Vec<Task> = Vec::new();
    for list in [&play.pre_tasks, &play.tasks, &play.post_tasks, &play.handlers] {
        flatten(list, &mut todo);
    }
    let layers = runner.layers(pc, &pc.hosts[0], None, &Inherit::default(), None);
    let ctx = runner.context(pc, &pc.hosts[0], None, runner.opts.check, &layers, None).ctx();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while let Some(task) = todo.pop() {
        let Body::Action { action, args } = &task.body else { continue };
        if !matches!(action.as_str(), "include_role" | "ansible.builtin.include_role") {
            continue;
        }
        let text = |k: &str| -> Option<String> {
            let v = args.get(k)?.as_str()?;
            if airlock_jinja::is_template(v) { runner.templar.render_str(v, &ctx).ok() } else { Some(v.to_string()) }
        };
        let Some(name) = text("name").or_else(|| text("role")) else { continue };
        let req = playbook::RoleRequest {
            name,
            tasks_from: text("tasks_from"),
            vars_from: text("vars_from"),
            defaults_from: text("defaults_from"),
            handlers_from: text("handlers_from"),
            params: Map::new(),
        };
        let key = format!("{}|{:?}|{:?}|{:?}", req.name, req.tasks_from, req.vars_from, req.defaults_from);
        if !seen.insert(key) {
            continue;
        }
        let at = format!("{}:{}", shown_path(&task.pos.file), task.pos.line);
        match playbook::load_role(&req, &play.dir, &runner.load_opts) {
            Ok((role, tasks, _)) => {
                flatten(&tasks, &mut todo);
                out.push((role, at));
            }
            Err(e) => runner.out.lock().warning(&format!("include_role at {at}: {e}; its variables are not listed")),
        }
    }
    out
}

/// Every task of a list, blocks opened, in reverse (for a stack).
fn flatten(tasks: &[Task], out: &mut Vec<Task>) {
    for t in tasks.iter().rev() {
        match &t.body {
            Body::Block { block, rescue, always } => {
                for l in [always, rescue, block] {
                    flatten(l, out);
                }
            }
            Body::Action { .. } => out.push(t.clone()),
        }
    }
}

/// Where a layer's value of `name` comes from: its label, and its file and line when known.
fn source(l: &Layer, name: &str, play: &Play, lines: &mut KeyLines) -> String {
    let Some(file) = &l.file else { return l.source.to_string() };
    let play_line = (l.level == Level::PlayVars).then_some(play.pos.line);
    let at = match lines.line(file, play_line, name) {
        Some(n) => format!("{}:{n}", shown_path(file)),
        None => shown_path(file),
    };
    match l.level {
        // Their label is already the file's name: say which level instead.
        Level::InventoryGroupVarsAll
        | Level::PlaybookGroupVarsAll
        | Level::InventoryGroupVarsFiles
        | Level::PlaybookGroupVarsFiles
        | Level::InventoryHostVarsFiles
        | Level::PlaybookHostVarsFiles => format!("{}, {at}", l.level.label()),
        _ => format!("{}, {at}", l.source),
    }
}

/// Variables' lines in the files they come from, each file parsed once.
#[derive(Default)]
struct KeyLines {
    files: HashMap<(PathBuf, Option<usize>), HashMap<String, usize>>,
}

impl KeyLines {
    /// The line of `name` in `file`: a top-level key of a variables file, or with `play_line`
    /// a key under `vars:` of the play starting on that line of the playbook.
    fn line(&mut self, file: &Path, play_line: Option<usize>, name: &str) -> Option<usize> {
        let map = self.files.entry((file.to_path_buf(), play_line)).or_insert_with(|| {
            let mut out = HashMap::new();
            let Ok(text) = std::fs::read_to_string(file) else { return out };
            let Ok(doc) = airlock_base::yaml::parse(&text) else { return out };
            match play_line {
                Some(at) => {
                    let plays = doc.as_seq().unwrap_or_default();
                    if let Some(vars) = plays.iter().find(|p| p.mark.line == at).and_then(|p| p.get("vars")) {
                        key_marks(vars, &mut out);
                    }
                }
                None => key_marks(&doc, &mut out),
            }
            out
        });
        map.get(name).copied()
    }
}

fn key_marks(map: &Node, out: &mut HashMap<String, usize>) {
    if let NodeKind::Map(entries) = &map.kind {
        for (k, _) in entries {
            out.entry(k.key_string().into_owned()).or_insert(k.mark.line);
        }
    }
}

/// A value as one line of JSON.
fn compact(v: &Json) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A path relative to the working directory when it is below it.
fn shown_path(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let abs = if p.is_absolute() { p.to_path_buf() } else { return p.display().to_string() };
    match cwd.as_deref().and_then(|c| abs.strip_prefix(c).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => abs.display().to_string(),
    }
}

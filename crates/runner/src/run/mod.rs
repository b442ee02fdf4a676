//! The executor: plays, blocks and tasks with when, loops, register, handlers, tags, check mode.
//!
//! Strategy is Ansible's `linear`: each task runs on every active host before the next task
//! starts, on up to `forks` hosts at once. Hosts are reached with the `local` or `ssh`
//! connection (see `connection`); `serial` splits a play's hosts into batches.
//!
//! By phase: `play` runs a play (hosts, batches, facts, its task lists), `includes` walks a task
//! list (blocks, include_tasks, include_role), `task` runs one task on its hosts (conditions,
//! retries, register, its result), `loops` runs a looped one item by item, `call` calls the
//! action on its target host, `handlers` notifies and flushes handlers, and `context` builds the
//! variables each of them templates with. This file holds the state they share.

mod actions;
mod call;
pub mod connection;
mod context;
pub mod escalate;
mod handlers;
mod includes;
mod list_vars;
mod listing;
mod loops;
pub mod output;
mod play;
mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use crate::inventory::Inventory;
use crate::playbook::{self, LoadOptions, Play, Role, Task};
use crate::vars::{Level, VarMap};
use airlock_jinja::Templar;
use context::push_role_layers;
use output::{Output, SharedOutput, Stats};

/// Exit codes as ansible-playbook's.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const HOST_FAILED: i32 = 2;
    pub const UNREACHABLE: i32 = 4;
    pub const PARSER_ERROR: i32 = 4;
    pub const BAD_OPTIONS: i32 = 5;
}

/// What `airlock playbook` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub inventory: Vec<String>,
    /// Every `-e` merged, later ones winning.
    pub extra_vars: Map<String, Json>,
    /// Each `-e` argument as written, with its variables, in order (for the sources
    /// `--list-vars` names). Empty when `extra_vars` has no such breakdown.
    pub extra_vars_from: Vec<(String, Map<String, Json>)>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub check: bool,
    pub diff: bool,
    pub limit: Option<String>,
    pub list_tasks: bool,
    pub list_tags: bool,
    /// `--list-vars`: print each play's variables per host with their sources, run nothing.
    pub list_vars: bool,
    pub syntax_check: bool,
    pub start_at_task: Option<String>,
    pub verbosity: u8,
    pub json_events: Option<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    /// `-c`: the connection when neither the host nor the play names one.
    pub connection: Option<String>,
    /// `-b`: become for every play.
    pub become_: bool,
    /// `-f`: how many hosts run a task at once (Ansible's default is 5).
    pub forks: usize,
}

/// Per-host state that lives across plays.
#[derive(Clone, Default)]
struct HostState {
    /// `ansible_facts` and the `ansible_*` names of each fact.
    facts: VarMap,
    facts_gathered: bool,
    /// set_fact and registered results.
    set_facts: VarMap,
    include_vars: VarMap,
    failed: bool,
    /// Could not be reached: out of the rest of the run.
    unreachable: bool,
    ended: bool,
    /// Handlers notified (by name or listen topic), in notification order.
    notified: Vec<String>,
}

/// Keywords a task gets from the blocks, roles and includes around it.
#[derive(Clone, Default)]
struct Inherit {
    when: Vec<Json>,
    tags: Vec<String>,
    block_vars: Vec<VarMap>,
    include_params: Vec<VarMap>,
    check_mode: Option<Json>,
    diff: Option<Json>,
    no_log: Option<Json>,
    become_: Option<Json>,
    become_user: Option<Json>,
    environment: Vec<Json>,
    ignore_errors: Option<Json>,
    any_errors_fatal: Option<Json>,
    delegate_to: Option<Json>,
    run_once: Option<Json>,
}

impl Inherit {
    /// This block's or task's keywords over the inherited ones (the nearer wins).
    fn child(&self, t: &Task) -> Inherit {
        let mut c = self.clone();
        c.when.extend(t.when.iter().cloned());
        c.tags.extend(t.tags.iter().cloned());
        if !t.vars.is_empty() {
            c.block_vars.push(t.vars.clone());
        }
        let over = |slot: &mut Option<Json>, v: &Option<Json>| {
            if v.is_some() {
                *slot = v.clone();
            }
        };
        over(&mut c.check_mode, &t.check_mode);
        over(&mut c.diff, &t.diff);
        over(&mut c.no_log, &t.no_log);
        over(&mut c.become_, &t.become_);
        over(&mut c.become_user, &t.become_user);
        over(&mut c.ignore_errors, &t.ignore_errors);
        over(&mut c.any_errors_fatal, &t.any_errors_fatal);
        over(&mut c.delegate_to, &t.delegate_to);
        over(&mut c.run_once, &t.run_once);
        if let Some(e) = &t.environment {
            c.environment.push(e.clone());
        }
        c
    }
}

/// State of the play being run.
#[derive(Clone)]
struct PlayCtx<'p> {
    play: &'p Play,
    hosts: Vec<String>,
    play_vars: VarMap,
    /// Each `vars_files` entry's file and variables, in order.
    vars_files: Vec<(Arc<Path>, VarMap)>,
    handlers: Vec<Task>,
    /// Roles whose defaults and vars are visible play-wide, in load order.
    roles: Vec<Arc<Role>>,
    /// `groups` as a template value, made once per play.
    groups_value: minijinja::Value,
    /// Every inventory host and play host, for `hostvars`.
    all_hosts: Vec<String>,
    end_play: bool,
    /// The play's keywords (become, environment, ...), which handlers inherit too.
    play_inherit: Inherit,
}

/// Runs playbooks; returns the process exit code.
pub fn run(playbooks: &[PathBuf], opts: RunOptions) -> i32 {
    let templar = Templar::new();
    let load_opts = LoadOptions { roles_path: opts.roles_path.clone(), extra_vars: opts.extra_vars.clone() };
    // Load everything before running anything.
    let mut books = Vec::new();
    for p in playbooks {
        if !p.exists() {
            eprintln!("ERROR! the playbook: {} could not be found", p.display());
            return exit::ERROR;
        }
        match playbook::load_playbook(p, &load_opts) {
            Ok(b) => books.push(b),
            Err(e) => {
                eprintln!("ERROR! {e}");
                return exit::PARSER_ERROR;
            }
        }
    }
    let inventory = match Inventory::load(&opts.inventory) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ERROR! {e}");
            return exit::ERROR;
        }
    };
    for b in &books {
        if let Some(dir) = b.path.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Err(e) = inventory.check_playbook_vars(dir) {
                eprintln!("ERROR! {e}");
                return exit::ERROR;
            }
        }
    }
    if opts.syntax_check {
        for b in &books {
            println!("\nplaybook: {}", b.path.display());
        }
        return exit::OK;
    }
    if opts.list_tasks || opts.list_tags {
        for b in &books {
            listing::list(b, &inventory, &opts);
        }
        return exit::OK;
    }
    let out = match Output::new(opts.verbosity, opts.diff, opts.json_events.as_deref()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ERROR! could not open the JSON events file: {e}");
            return exit::ERROR;
        }
    };
    let mut out = out;
    for w in &inventory.warnings {
        out.warning(w);
    }
    let out = SharedOutput::new(out);
    let forks = opts.forks.max(1);
    let extra_layers = extra_layers(&opts);
    let mut runner = Runner {
        templar,
        start_at: opts.start_at_task.clone(),
        extra_vars: Arc::new(opts.extra_vars.clone()),
        extra_layers,
        opts: Arc::new(opts),
        load_opts: Arc::new(load_opts),
        inventory: Arc::new(inventory),
        out,
        forks,
        connections: connection::Connections::default(),
        hosts: IndexMap::new(),
        stats: IndexMap::new(),
        inv_layers: std::collections::HashMap::new(),
        hostvars_cache: None,
    };
    if runner.opts.list_vars {
        let code = list_vars::list(&mut runner, &books);
        runner.out.lock().flush();
        return code;
    }
    let code = runner.run_books(&books);
    runner.out.lock().flush();
    code
}

/// The executor's state. Hosts run in parallel (`forks`) each in a copy of it (`fork`), whose
/// state for its own host is merged back when the task is done on every host.
#[derive(Clone)]
struct Runner {
    templar: Arc<Templar>,
    opts: Arc<RunOptions>,
    load_opts: Arc<LoadOptions>,
    inventory: Arc<Inventory>,
    out: SharedOutput,
    /// How many hosts run a task at once.
    forks: usize,
    /// Open SSH connections, shared by every copy.
    connections: connection::Connections,
    hosts: IndexMap<String, HostState>,
    stats: IndexMap<String, Stats>,
    extra_vars: VarMap,
    /// The extra vars as layers, one per `-e` when known.
    extra_layers: Vec<(Arc<str>, Option<Arc<Path>>, VarMap)>,
    start_at: Option<String>,
    /// The last `hostvars` value and the key it was built for.
    hostvars_cache: Option<(Vec<usize>, minijinja::Value)>,
    /// Inventory variable layers per host, read once per playbook directory.
    inv_layers: std::collections::HashMap<PathBuf, std::collections::HashMap<String, InvLayers>>,
}

/// A host's inventory variable layers, lowest precedence first, with their sources.
type InvLayers = Arc<Vec<(Level, Arc<str>, Option<Arc<Path>>, VarMap)>>;

/// The extra vars as layers: one per `-e` argument, labelled with what was written.
fn extra_layers(opts: &RunOptions) -> Vec<(Arc<str>, Option<Arc<Path>>, VarMap)> {
    if opts.extra_vars_from.is_empty() {
        return vec![(Arc::from("extra vars"), None, Arc::new(opts.extra_vars.clone()))];
    }
    opts.extra_vars_from
        .iter()
        .map(|(arg, vars)| {
            let arg = arg.trim();
            let file = arg.strip_prefix('@').map(|f| Arc::from(Path::new(f)));
            let label = match &file {
                Some(_) => "extra vars".to_string(),
                None if arg.chars().count() > 60 => format!("extra vars (-e {}...)", arg.chars().take(57).collect::<String>()),
                None => format!("extra vars (-e {arg})"),
            };
            (Arc::from(label), file, Arc::new(vars.clone()))
        })
        .collect()
}

/// A fatal error that stops the run (not a task failure).
struct Fatal(String);

/// One task on one host: what the steps that run it (retries, the action, an include, the
/// result's bookkeeping) share.
#[derive(Clone, Copy)]
struct TaskCall<'a> {
    task: &'a Task,
    /// The keywords of the blocks, roles and includes around the task.
    inh: &'a Inherit,
    host: &'a str,
    /// The action as written and its arguments, not templated yet.
    action: &'a str,
    args: &'a Map<String, Json>,
    /// The task's name in its result lines.
    name: &'a str,
    no_log: bool,
}

/// What every phase uses: running on the hosts in parallel, and the flags and conditions.
impl Runner {
    /// Runs `f` for each host, up to `forks` at once when `parallel`. Each parallel host runs
    /// in its own copy of the runner and play state; what it changed for its host (facts,
    /// registered results, stats, notified handlers, roles and handlers it included) is
    /// merged back in host order.
    fn on_hosts<'p, R: Send>(
        &mut self,
        pc: &mut PlayCtx<'p>,
        hosts: &[String],
        parallel: bool,
        f: impl Fn(&mut Runner, &mut PlayCtx<'p>, &str) -> R + Sync,
    ) -> Vec<R> {
        if !parallel || hosts.len() < 2 || self.forks < 2 {
            return hosts.iter().map(|h| f(self, pc, h)).collect();
        }
        let mut out = Vec::with_capacity(hosts.len());
        for chunk in hosts.chunks(self.forks) {
            let handlers_before = pc.handlers.len();
            let done: Vec<(Runner, PlayCtx<'p>, R)> = std::thread::scope(|s| {
                let f = &f;
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|h| {
                        let mut sub = self.clone();
                        let mut spc = pc.clone();
                        s.spawn(move || {
                            let r = f(&mut sub, &mut spc, h);
                            (sub, spc, r)
                        })
                    })
                    .collect();
                handles.into_iter().map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            });
            for ((sub, spc, r), h) in done.into_iter().zip(chunk) {
                self.merge_host(pc, h, sub, spc, handlers_before);
                out.push(r);
            }
        }
        out
    }

    /// Takes back what a parallel copy changed for `host`.
    fn merge_host(&mut self, pc: &mut PlayCtx, host: &str, mut sub: Runner, spc: PlayCtx, handlers_before: usize) {
        if let Some(hs) = sub.hosts.swap_remove(host) {
            self.hosts.insert(host.to_string(), hs);
        }
        if let Some(st) = sub.stats.swap_remove(host) {
            self.stats.insert(host.to_string(), st);
        }
        if sub.start_at.is_none() {
            self.start_at = None;
        }
        for (dir, layers) in sub.inv_layers {
            self.inv_layers.entry(dir).or_insert(layers);
        }
        for r in spc.roles {
            if !pc.roles.iter().any(|x| Arc::ptr_eq(x, &r)) {
                pc.roles.push(r);
            }
        }
        pc.handlers.extend(spc.handlers.into_iter().skip(handlers_before));
        pc.end_play |= spc.end_play;
    }

    fn check_mode(&self, inh: &Inherit, task: &Task) -> bool {
        let v = task.check_mode.as_ref().or(inh.check_mode.as_ref());
        match v.and_then(airlock_jinja::to_bool_strict) {
            Some(b) => b,
            None => self.opts.check,
        }
    }

    fn tags_selected(&self, tags: &[String]) -> bool {
        tags_selected(&self.opts.tags, &self.opts.skip_tags, tags)
    }

    fn active_hosts(&self, hosts: &[String]) -> Vec<String> {
        hosts.iter().filter(|h| self.hosts.get(*h).is_some_and(|s| !s.failed && !s.ended && !s.unreachable)).cloned().collect()
    }

    fn opt_bool(&self, v: Option<&Json>) -> Option<bool> {
        v.and_then(airlock_jinja::to_bool_strict)
    }

    fn eval_when(&self, conds: &[Json], ctx: &minijinja::Value) -> Result<bool, String> {
        for c in conds {
            if !self.templar.eval_cond(c, ctx).map_err(|e| e.msg)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn eval_bool_opt(&self, v: Option<&Json>, ctx: &minijinja::Value) -> Option<bool> {
        let v = v?;
        match v {
            Json::String(s) if airlock_jinja::is_template(s) => {
                self.templar.template_str(s, ctx).ok().map(|x| airlock_jinja::to_json(&x)).and_then(|j| airlock_jinja::to_bool_strict(&j))
            }
            other => airlock_jinja::to_bool_strict(other),
        }
    }
}

/// Ansible's tag selection (`Taggable.evaluate_tags`) for a task with these inherited + own
/// tags, given `--tags` and `--skip-tags`.
pub(crate) fn tags_selected(only_tags: &[String], skip_tags: &[String], tags: &[String]) -> bool {
    let has = |t: &str| tags.iter().any(|x| x == t);
    let untagged = tags.is_empty();
    let only: Vec<&str> = if only_tags.is_empty() { vec!["all"] } else { only_tags.iter().map(String::as_str).collect() };
    let skip: Vec<&str> = skip_tags.iter().map(String::as_str).collect();
    let mut run = has("always")
        || (only.contains(&"all") && !has("never"))
        || tags.iter().any(|t| only.contains(&t.as_str()))
        || (only.contains(&"tagged") && !untagged && !has("never"))
        || (only.contains(&"untagged") && untagged);
    if run && !skip.is_empty() {
        if skip.contains(&"all") {
            if !has("always") || skip.contains(&"always") {
                run = false;
            }
        } else if tags.iter().any(|t| skip.contains(&t.as_str())) || (skip.contains(&"tagged") && !untagged) || (skip.contains(&"untagged") && untagged) {
            run = false;
        }
    }
    run
}

/// How a task ended on one host, or what an include asks the caller to run next.
// One value per task and host, moved once: boxing the include's tasks would buy nothing.
#[allow(clippy::large_enum_variant)]
enum HostRun {
    Done { failed: bool },
    Include(Vec<Task>, Inherit, Option<Arc<Role>>),
}

/// A module's outcome in Ansible's result shape.
pub(crate) fn module_result_json(res: crate::modules::ModuleOutcome) -> Json {
    match res {
        Ok(r) => {
            let mut m = r.data;
            m.insert("changed".into(), json!(r.changed));
            if r.failed {
                m.insert("failed".into(), json!(true));
            }
            if r.skipped {
                m.insert("skipped".into(), json!(true));
            }
            if let Some(msg) = r.msg {
                m.insert("msg".into(), json!(msg));
            }
            if !r.diff.is_empty() {
                let diffs: Vec<Json> = r
                    .diff
                    .iter()
                    .map(|d| json!({"before": d.before, "after": d.after, "before_header": d.before_header, "after_header": d.after_header}))
                    .collect();
                m.insert("diff".into(), Json::Array(diffs));
            }
            Json::Object(m)
        }
        Err(f) => {
            let mut m = f.data;
            m.entry("changed").or_insert(json!(false));
            m.insert("failed".into(), json!(true));
            m.insert("msg".into(), json!(f.msg));
            Json::Object(m)
        }
    }
}

/// Exposes the executor pieces the actions module needs.
impl Runner {
    fn host_state(&mut self, host: &str) -> &mut HostState {
        self.hosts.get_mut(host).unwrap()
    }
}

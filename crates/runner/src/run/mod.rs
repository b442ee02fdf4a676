//! The executor: plays, blocks and tasks with when, loops, register, handlers, tags, check mode.
//!
//! Strategy is Ansible's `linear`: each task runs on every active host before the next task
//! starts, on up to `forks` hosts at once. Hosts are reached with the `local` or `ssh`
//! connection (see `connection`); `serial` splits a play's hosts into batches.

mod actions;
pub mod connection;
pub mod escalate;
mod list_vars;
mod listing;
pub mod output;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use crate::inventory::Inventory;
use crate::playbook::{self, Body, LoadOptions, LoopKind, Play, Role, Task};
use crate::vars::{Layers, Level, VarMap};
use airlock_jinja::{Templar, Vars};
use output::{Outcome, Output, SharedOutput, Stats};

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

impl Runner {
    fn run_books(&mut self, books: &[playbook::Playbook]) -> i32 {
        for b in books {
            self.out.lock().playbook_start(&b.path);
            for play in &b.plays {
                if let Err(Fatal(msg)) = self.run_play(play) {
                    let msg = self.out.lock().secrets.scrub(&msg).into_owned();
                    self.out.lock().flush();
                    eprintln!("ERROR! {msg}");
                    self.out.lock().recap(&self.stats);
                    return exit::ERROR;
                }
                if self.stats.values().any(|s| s.failed > 0 || s.unreachable > 0) && self.hosts.values().all(|h| h.failed || h.ended || h.unreachable) {
                    break;
                }
            }
        }
        let stats = self.stats.clone();
        self.out.lock().recap(&stats);
        if stats.values().any(|s| s.unreachable > 0) {
            exit::UNREACHABLE
        } else if stats.values().any(|s| s.failed > 0) || self.hosts.values().any(|h| h.failed) {
            exit::HOST_FAILED
        } else {
            exit::OK
        }
    }

    fn play_hosts(&mut self, play: &Play) -> Result<Vec<String>, Fatal> {
        let pattern = match &play.hosts {
            Json::String(s) => {
                let vars = Vars::new(self.templar.clone(), vec![self.extra_vars.clone(), play.vars.clone()]);
                self.templar.render_str(s, &vars.ctx()).map_err(|e| Fatal(format!("could not template the play's hosts: {}", e.msg)))?
            }
            Json::Null => String::new(),
            other => other.to_string(),
        };
        let mut hosts = self.inventory.pattern_hosts(&pattern).map_err(|e| Fatal(e.to_string()))?;
        if let Some(limit) = &self.opts.limit {
            let allowed = self.inventory.pattern_hosts(limit).map_err(|e| Fatal(e.to_string()))?;
            hosts.retain(|h| allowed.contains(h));
        }
        Ok(hosts)
    }

    fn run_play(&mut self, play: &Play) -> Result<(), Fatal> {
        let hosts = self.play_hosts(play)?;
        self.out.lock().play_start(&play.name);
        if hosts.is_empty() {
            self.out.lock().line("skipping: no hosts matched");
            return Ok(());
        }
        for h in &hosts {
            self.hosts.entry(h.clone()).or_default();
            self.stats.entry(h.clone()).or_default();
        }
        let serial = match &play.serial {
            Some(Json::String(t)) if airlock_jinja::is_template(t) => {
                let vars = Vars::new(self.templar.clone(), vec![self.extra_vars.clone(), play.vars.clone()]);
                Some(
                    self.templar
                        .template_json(&Json::String(t.clone()), &vars.ctx())
                        .map_err(|e| Fatal(format!("could not template the play's serial: {}", e.msg)))?,
                )
            }
            other => other.clone(),
        };
        let batches = serial_batches(serial.as_ref(), &hosts).map_err(|e| Fatal(format!("{e} (play '{}' at {})", play.name, play.pos)))?;
        for batch in batches {
            let active = self.active_hosts(&batch);
            if active.is_empty() {
                continue;
            }
            self.run_batch(play, &active)?;
            // Ansible stops the play when every host of a batch failed.
            if self.active_hosts(&batch).is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Runs a play on one batch of its hosts (all of them without `serial`).
    fn run_batch(&mut self, play: &Play, hosts: &[String]) -> Result<(), Fatal> {
        let hosts = hosts.to_vec();
        let mut pc = self.play_ctx(play, &hosts)?;
        let base = Inherit {
            tags: play.tags.clone(),
            check_mode: play.check_mode.clone(),
            diff: play.diff.clone(),
            become_: play.become_.clone().or_else(|| self.opts.become_.then_some(Json::Bool(true))),
            become_user: play.become_user.clone(),
            environment: play.environment.iter().cloned().collect(),
            ignore_errors: play.ignore_errors.clone(),
            any_errors_fatal: play.any_errors_fatal.clone(),
            ..Default::default()
        };
        pc.play_inherit = base.clone();
        // Facts first, as Ansible's implicit "Gathering Facts" task.
        let gather = match &play.gather_facts {
            None => true,
            Some(v) => airlock_jinja::to_bool_strict(v).unwrap_or(true),
        };
        if gather && self.tags_selected(&play.tags) {
            self.out.lock().task_start("Gathering Facts", false, &play.pos.to_string());
            self.on_hosts(&mut pc, &hosts, true, |me, pc, h| {
                let r = me.gather_facts(pc, h);
                me.record(h, "Gathering Facts", r);
            });
        }
        self.run_list(&mut pc, &play.pre_tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        self.run_list(&mut pc, &play.tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        self.run_list(&mut pc, &play.post_tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        Ok(())
    }

    /// Counts and prints a result of the executor's own (fact gathering): ok, failed, or
    /// unreachable (the host leaves the play).
    fn record(&mut self, host: &str, name: &str, r: Json) {
        let outcome = if r.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
            self.stats.get_mut(host).unwrap().unreachable += 1;
            self.hosts.get_mut(host).unwrap().unreachable = true;
            Outcome::Unreachable
        } else if r.get("failed").and_then(Json::as_bool).unwrap_or(false) {
            self.stats.get_mut(host).unwrap().failed += 1;
            self.hosts.get_mut(host).unwrap().failed = true;
            Outcome::Failed
        } else {
            self.stats.get_mut(host).unwrap().ok += 1;
            Outcome::Ok
        };
        self.out.lock().result(host, name, outcome, &r, None, false, false);
    }

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

    /// The state a play starts with on these hosts (not empty): its variables, `vars_files`
    /// read (templated for the first host, as Ansible does), roles and handlers.
    fn play_ctx<'p>(&mut self, play: &'p Play, hosts: &[String]) -> Result<PlayCtx<'p>, Fatal> {
        let groups = airlock_jinja::to_value(&Json::Object(self.inventory.groups_var()));
        let mut all_hosts: Vec<String> = self.inventory.hosts.keys().cloned().collect();
        for h in hosts {
            if !all_hosts.contains(h) {
                all_hosts.push(h.clone());
            }
        }
        let mut pc = PlayCtx {
            play,
            hosts: hosts.to_vec(),
            play_vars: play.vars.clone(),
            vars_files: Vec::new(),
            handlers: play.handlers.clone(),
            roles: play.roles.clone(),
            groups_value: groups,
            all_hosts,
            end_play: false,
            play_inherit: Inherit::default(),
        };
        pc.vars_files = self.load_vars_files(&pc, &hosts[0])?;
        Ok(pc)
    }

    /// The connection a host uses: its `ansible_connection` variable, else the play's
    /// `connection`, else `-c`, else `local` for localhost and `ssh` for anything else (the
    /// order Ansible applies).
    fn connection_of(&mut self, play: &Play, host: &str) -> String {
        let layers = self.inventory_layers(host, &play.dir);
        if let Some(c) = self
            .extra_vars
            .get("ansible_connection")
            .or_else(|| layers.iter().rev().find_map(|(_, _, _, m)| m.get("ansible_connection")))
            .and_then(Json::as_str)
        {
            return c.to_string();
        }
        if let Some(c) = play.connection.as_ref().or(self.opts.connection.as_ref()) {
            return c.clone();
        }
        if matches!(host, "localhost" | "127.0.0.1" | "::1") { "local".into() } else { "ssh".into() }
    }

    /// Gathers a host's facts where it runs (the `setup` module over SSH) and keeps them for
    /// the rest of the run. Returns the task result (unreachable when the host is).
    fn gather_facts(&mut self, pc: &PlayCtx, host: &str) -> Json {
        let facts = match self.connection_of(pc.play, host).as_str() {
            "local" => airlock_base::facts::gather(),
            "ssh" => {
                let ssh = match self.ssh_params(pc, host).and_then(|p| self.connections.ssh(&p)) {
                    Ok(c) => c,
                    Err(msg) => return json!({"changed": false, "failed": true, "msg": msg}),
                };
                let mut req = escalate::ModuleRequest { module: "setup".into(), ..Default::default() };
                let r = ssh.run_module(&mut req, None, &[]);
                match r.get("ansible_facts") {
                    Some(Json::Object(f)) => f.clone(),
                    _ => return r,
                }
            }
            other => {
                return connection::unreachable_result(&format!(
                    "connection '{other}' is not supported; airlock connects with: {}",
                    connection::SUPPORTED.join(", ")
                ));
            }
        };
        let mut layer = Map::with_capacity(facts.len() * 2 + 1);
        for (k, v) in &facts {
            layer.insert(format!("ansible_{k}"), v.clone());
        }
        layer.insert("ansible_facts".into(), Json::Object(facts));
        let hs = self.hosts.get_mut(host).unwrap();
        hs.facts = Arc::new(layer);
        hs.facts_gathered = true;
        json!({"changed": false})
    }

    /// `vars_files`: each entry a file, or a list whose first existing file is used.
    fn load_vars_files(&mut self, pc: &PlayCtx, host: &str) -> Result<Vec<(Arc<Path>, VarMap)>, Fatal> {
        let mut out = Vec::new();
        for entry in &pc.play.vars_files {
            let cands: Vec<Json> = match entry {
                Json::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let layers = self.layers(pc, host, None, &Inherit::default(), None);
            let vars = Vars::new(self.templar.clone(), layers.maps());
            let mut found = None;
            let mut tried = Vec::new();
            for c in &cands {
                let name = match c {
                    Json::String(s) => self.templar.render_str(s, &vars.ctx()).map_err(|e| Fatal(format!("vars_files: {}", e.msg)))?,
                    other => other.to_string(),
                };
                let p = if Path::new(&name).is_absolute() { PathBuf::from(&name) } else { pc.play.dir.join(&name) };
                if p.is_file() {
                    found = Some(p);
                    break;
                }
                tried.push(p.display().to_string());
            }
            let Some(p) = found else {
                return Err(Fatal(format!("vars file not found: {} (play '{}' at {})", tried.join(", "), pc.play.name, pc.play.pos)));
            };
            let m = playbook::read_vars_file(&p).map_err(|e| Fatal(e.to_string()))?;
            out.push((Arc::from(p.as_path()), Arc::new(m)));
        }
        Ok(out)
    }

    /// Inventory layers for a host, cached per playbook directory.
    fn inventory_layers(&mut self, host: &str, playbook_dir: &Path) -> InvLayers {
        if let Some(l) = self.inv_layers.get(playbook_dir).and_then(|m| m.get(host)) {
            return l.clone();
        }
        let sources = self.inventory.host_var_sources(host, Some(playbook_dir));
        let l: InvLayers = Arc::new(sources.into_iter().map(|s| (s.level, Arc::<str>::from(s.label), s.file.map(Arc::from), Arc::new(s.vars))).collect());
        self.inv_layers.entry(playbook_dir.to_path_buf()).or_default().insert(host.to_string(), l.clone());
        l
    }

    /// Every variable layer a task on `host` sees.
    fn layers(&mut self, pc: &PlayCtx, host: &str, role: Option<&Arc<Role>>, inh: &Inherit, task_vars: Option<&VarMap>) -> Layers {
        let mut l = Layers::new();
        // Roles: every play role's defaults/vars, with the current role (and its
        // dependencies) last so it wins within its level.
        let mut chain: Vec<&Arc<Role>> = Vec::new();
        if let Some(r) = role {
            for d in &r.deps {
                chain.push(d);
            }
            chain.push(r);
        }
        for r in pc.roles.iter().filter(|r| !chain.iter().any(|c| Arc::ptr_eq(c, r))).chain(chain.iter().copied()) {
            push_role_layers(&mut l, r);
        }
        for (level, label, file, vars) in self.inventory_layers(host, &pc.play.dir).iter() {
            l.push_from(*level, label.clone(), file.clone(), vars.clone());
        }
        let hs = &self.hosts[host];
        l.push(Level::Facts, "facts", hs.facts.clone());
        l.push_from(Level::PlayVars, "play vars", Some(pc.play.pos.file.as_path().into()), pc.play_vars.clone());
        for (file, vars) in &pc.vars_files {
            l.push_from(Level::PlayVarsFiles, "vars_files", Some(file.clone()), vars.clone());
        }
        for v in &inh.block_vars {
            l.push(Level::BlockVars, "block vars", v.clone());
        }
        if let Some(v) = task_vars {
            l.push(Level::TaskVars, "task vars", v.clone());
        }
        l.push(Level::IncludeVars, "include_vars", hs.include_vars.clone());
        l.push(Level::SetFacts, "set_fact/register", hs.set_facts.clone());
        if let Some(r) = role {
            l.push(Level::RoleParams, format!("role {} params", r.name), r.params.clone());
        }
        for v in &inh.include_params {
            l.push(Level::IncludeParams, "include params", v.clone());
        }
        for (label, file, vars) in &self.extra_layers {
            l.push_from(Level::ExtraVars, label.clone(), file.clone(), vars.clone());
        }
        l
    }

    /// The template context for a task on a host: variable layers plus magic variables.
    fn vars_for(&mut self, pc: &PlayCtx, host: &str, task: &Task, inh: &Inherit, top: Option<Map<String, Json>>) -> Arc<Vars> {
        let layers = self.layers(pc, host, task.role.as_ref(), inh, Some(&task.vars));
        let check_mode = self.check_mode(inh, task);
        self.context(pc, host, task.role.as_deref(), check_mode, &layers, top)
    }

    /// A template context: the layers under the magic variables (and `top`, the loop's).
    fn context(&mut self, pc: &PlayCtx, host: &str, role: Option<&Role>, check_mode: bool, layers: &Layers, top: Option<Map<String, Json>>) -> Arc<Vars> {
        let mut maps = Vec::with_capacity(20);
        let mut magic = Map::new();
        magic.insert("inventory_hostname".into(), json!(host));
        magic.insert("inventory_hostname_short".into(), json!(host.split('.').next().unwrap_or(host)));
        magic.insert("playbook_dir".into(), json!(pc.play.dir.display().to_string()));
        magic.insert("ansible_check_mode".into(), json!(check_mode));
        magic.insert("ansible_diff_mode".into(), json!(self.opts.diff));
        magic.insert("ansible_verbosity".into(), json!(self.opts.verbosity));
        magic.insert("ansible_play_name".into(), json!(pc.play.name));
        magic.insert("ansible_play_hosts".into(), json!(pc.hosts.iter().filter(|h| !self.hosts[*h].failed).collect::<Vec<_>>()));
        magic.insert("ansible_play_hosts_all".into(), json!(pc.hosts));
        magic.insert("ansible_play_batch".into(), json!(pc.hosts));
        magic.insert("play_hosts".into(), json!(pc.hosts));
        magic.insert("group_names".into(), json!(self.inventory.group_names(host)));
        magic.insert("omit".into(), json!(airlock_jinja::OMIT));
        magic.insert("ansible_run_tags".into(), json!(if self.opts.tags.is_empty() { vec!["all".to_string()] } else { self.opts.tags.clone() }));
        magic.insert("ansible_skip_tags".into(), json!(self.opts.skip_tags));
        // The airlock that runs this host's modules, for tasks that start it again (the
        // embedded mirrors' service): this one, or its copy on a host reached over SSH.
        static EXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let exe = if self.connection_of(pc.play, host) == "ssh" {
            self.ssh_params(pc, host).and_then(|p| self.connections.ssh(&p)).ok().and_then(|c| c.remote_binary())
        } else {
            EXE.get_or_init(|| std::env::current_exe().ok().map(|p| p.display().to_string())).clone()
        };
        if let Some(exe) = exe {
            magic.insert("airlock_executable".into(), json!(exe));
        }
        magic.insert("ansible_version".into(), json!({"full": "2.19.0", "major": 2, "minor": 19, "revision": 0, "string": "2.19.0 (airlock)"}));
        magic.insert("role_names".into(), json!(pc.roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>()));
        if let Some(dir) = self.inventory.dirs().first() {
            magic.insert("inventory_dir".into(), json!(dir.display().to_string()));
        }
        if let Some(r) = role {
            magic.insert("role_path".into(), json!(r.path.display().to_string()));
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("ansible_role_name".into(), json!(r.name));
        }
        if let Some(top) = top {
            maps.push(Arc::new(top));
        }
        maps.push(Arc::new(magic));
        maps.extend(layers.maps());
        let vars = Vars::new(self.templar.clone(), maps);
        vars.set_value("groups", pc.groups_value.clone());
        vars.set_value("hostvars", self.hostvars(pc));
        vars
    }

    /// `hostvars`: every host's variables (without task-level ones). Rebuilt only when a
    /// host's facts or registered variables, or the play's roles, changed: the snapshot holds
    /// the host maps, so any change to one makes a new map (copy on write) and a new key.
    fn hostvars(&mut self, pc: &PlayCtx) -> minijinja::Value {
        let mut key = Vec::with_capacity(pc.all_hosts.len() * 3 + 2);
        key.push(pc.play as *const Play as usize);
        key.push(pc.roles.len());
        for h in &pc.all_hosts {
            match self.hosts.get(h) {
                Some(hs) => key.extend([Arc::as_ptr(&hs.facts) as usize, Arc::as_ptr(&hs.set_facts) as usize, Arc::as_ptr(&hs.include_vars) as usize]),
                None => key.extend([0, 0, 0]),
            }
        }
        if let Some((k, v)) = &self.hostvars_cache
            && *k == key
        {
            return v.clone();
        }
        let mut hv = IndexMap::new();
        for h in pc.all_hosts.clone() {
            self.hosts.entry(h.clone()).or_default();
            let layers = self.layers(pc, &h, None, &Inherit::default(), None);
            let mut maps = vec![Arc::new(Map::from_iter([("inventory_hostname".to_string(), json!(h))]))];
            maps.extend(layers.maps());
            hv.insert(h, maps);
        }
        let v = minijinja::Value::from_object(HostVars { templar: self.templar.clone(), hosts: hv });
        self.hostvars_cache = Some((key, v.clone()));
        v
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

    fn run_list(&mut self, pc: &mut PlayCtx, tasks: &[Task], inh: &Inherit, handler: bool) -> Result<(), Fatal> {
        let hosts = pc.hosts.clone();
        self.run_list_on(pc, tasks, inh, handler, &hosts)
    }

    fn run_list_on(&mut self, pc: &mut PlayCtx, tasks: &[Task], inh: &Inherit, handler: bool, hosts: &[String]) -> Result<(), Fatal> {
        for task in tasks {
            if pc.end_play {
                return Ok(());
            }
            let active = self.active_hosts(hosts);
            if active.is_empty() {
                return Ok(());
            }
            match &task.body {
                Body::Block { .. } => {
                    let child = inh.child(task);
                    self.run_block(pc, task, &child, &active, handler)?;
                }
                Body::Action { .. } => self.run_task(pc, task, inh, &active, handler)?,
            }
        }
        Ok(())
    }

    /// A block's tasks, then its `rescue` on the hosts that failed, then its `always`; `inh` is
    /// the block's own keywords over the inherited ones.
    fn run_block(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, hosts: &[String], handler: bool) -> Result<(), Fatal> {
        let Body::Block { block, rescue, always } = &task.body else { unreachable!() };
        self.run_list_on(pc, block, inh, handler, hosts)?;
        let failed: Vec<String> = hosts.iter().filter(|h| self.hosts[*h].failed).cloned().collect();
        if !rescue.is_empty() && !failed.is_empty() {
            for h in &failed {
                self.hosts.get_mut(h).unwrap().failed = false;
            }
            self.run_list_on(pc, rescue, inh, handler, &failed)?;
            for h in &failed {
                if !self.hosts[h].failed {
                    let s = self.stats.get_mut(h).unwrap();
                    s.rescued += 1;
                    s.failed = s.failed.saturating_sub(1);
                }
            }
        }
        if !always.is_empty() {
            let still_failed: Vec<String> = hosts.iter().filter(|h| self.hosts[*h].failed).cloned().collect();
            for h in &still_failed {
                self.hosts.get_mut(h).unwrap().failed = false;
            }
            self.run_list_on(pc, always, inh, handler, hosts)?;
            for h in &still_failed {
                self.hosts.get_mut(h).unwrap().failed = true;
            }
        }
        Ok(())
    }

    /// Whether `--start-at-task` still hides this task.
    fn before_start(&mut self, task: &Task) -> bool {
        let Some(want) = &self.start_at else { return false };
        let names = [task.display_name(), task.name.clone().unwrap_or_default()];
        if names.iter().any(|n| n == want || glob::Pattern::new(want).is_ok_and(|p| p.matches(n))) {
            self.start_at = None;
            return false;
        }
        true
    }

    fn run_task(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, hosts: &[String], handler: bool) -> Result<(), Fatal> {
        let mut all_tags = inh.tags.clone();
        all_tags.extend(task.tags.iter().cloned());
        if !handler && !self.tags_selected(&all_tags) {
            return Ok(());
        }
        if !handler && self.before_start(task) {
            return Ok(());
        }
        let run_once = self.opt_bool(task.run_once.as_ref().or(inh.run_once.as_ref())).unwrap_or(false);
        let hosts: Vec<String> = if run_once { hosts.iter().take(1).cloned().collect() } else { hosts.to_vec() };
        let name = task.display_name();
        {
            // Templated names are rendered with the first host's vars (as Ansible does).
            let shown = if airlock_jinja::is_template(&name) {
                let vars = self.vars_for(pc, &hosts[0], task, inh, None);
                self.templar.render_str(&name, &vars.ctx()).unwrap_or(name.clone())
            } else {
                name.clone()
            };
            self.out.lock().task_start(&shown, handler, &task.pos.to_string());
        }
        let mut any_fatal = false;
        // Executor actions that act on the play as a whole stay one host at a time.
        let parallel = !matches!(task.action().map(|a| a.trim_start_matches("ansible.builtin.")), Some("meta" | "pause" | "add_host" | "group_by"));
        let results = self.on_hosts(pc, &hosts, parallel, |me, pc, host| -> Result<bool, Fatal> {
            match me.run_on_host(pc, task, inh, host, handler)? {
                HostRun::Done { failed, .. } => Ok(failed),
                HostRun::Include(tasks, child, role) => {
                    if let Some(role) = role
                        && !pc.roles.iter().any(|r| Arc::ptr_eq(r, &role))
                    {
                        pc.roles.push(role);
                    }
                    me.run_list_on(pc, &tasks, &child, handler, std::slice::from_ref(&host.to_string()))?;
                    Ok(false)
                }
            }
        });
        for r in results {
            if r? {
                any_fatal |= self.opt_bool(task.any_errors_fatal.as_ref().or(inh.any_errors_fatal.as_ref())).unwrap_or(false);
            }
        }
        if run_once {
            // run_once results apply to every host: copy the registered value.
            if let (Some(reg), Some(first)) = (&task.register, hosts.first())
                && let Some(v) = self.hosts[first].set_facts.get(reg).cloned()
            {
                for h in pc.hosts.clone() {
                    let hs = self.hosts.get_mut(&h).unwrap();
                    Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), v.clone());
                }
            }
        }
        if any_fatal {
            for h in pc.hosts.clone() {
                self.hosts.get_mut(&h).unwrap().failed = true;
            }
        }
        Ok(())
    }

    fn opt_bool(&self, v: Option<&Json>) -> Option<bool> {
        v.and_then(airlock_jinja::to_bool_strict)
    }

    /// Runs a task on one host: conditions, loop, retries, register, notify, output.
    fn run_on_host(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, host: &str, handler: bool) -> Result<HostRun, Fatal> {
        let Body::Action { action, args } = &task.body else { unreachable!() };
        let action = action.as_str();
        let name = task.display_name();
        let vars = self.vars_for(pc, host, task, inh, None);
        let ctx = vars.ctx();
        let no_log = self.eval_bool_opt(task.no_log.as_ref().or(inh.no_log.as_ref()), &ctx).unwrap_or(false);
        let call = TaskCall { task, inh, host, action, args, name: &name, no_log };
        let fail = |me: &mut Runner, msg: String| -> Result<HostRun, Fatal> {
            let result = json!({"changed": false, "failed": true, "msg": msg});
            me.finish(&call, result, false)
        };
        // Parent conditions (blocks, roles, imports) and then the task's own; with a loop,
        // the task's own `when` is evaluated per item.
        match self.eval_when(&inh.when, &ctx) {
            Ok(true) => {}
            Ok(false) => return self.skip(&call, &inh.when),
            Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
        }
        let items = match &task.loop_ {
            None => None,
            Some(spec) => match self.loop_items(spec, &ctx, task) {
                Ok(i) => Some(i),
                Err(e) => return fail(self, e),
            },
        };
        let Some(items) = items else {
            match self.eval_when(&task.when, &ctx) {
                Ok(true) => {}
                Ok(false) => return self.skip(&call, &task.when),
                Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
            }
            if matches!(action, "include_tasks" | "include_role") {
                return self.include(pc, &call, &vars, None);
            }
            let result = self.run_with_retries(pc, &call, &vars);
            return self.finish(&call, result, false);
        };
        if matches!(action, "include_tasks" | "include_role") {
            // A looped include runs the included tasks once per item, with the loop var set.
            let mut out = Vec::new();
            let loop_var = task.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
            for (i, item) in items.iter().enumerate() {
                let top = self.loop_top(task, item, i, items.len(), &loop_var);
                let ivars = self.vars_for(pc, host, task, inh, Some(top.clone()));
                match self.eval_when(&task.when, &ivars.ctx()) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
                }
                if let HostRun::Include(tasks, child, role) = self.include(pc, &call, &ivars, Some(top))? {
                    out.push((tasks, child, role));
                }
            }
            for (tasks, child, role) in out {
                if let Some(role) = role
                    && !pc.roles.iter().any(|r| Arc::ptr_eq(r, &role))
                {
                    pc.roles.push(role);
                }
                self.run_list_on(pc, &tasks, &child, handler, &[host.to_string()])?;
            }
            return Ok(HostRun::Done { failed: false });
        }
        let loop_var = task.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::with_capacity(items.len());
        let mut any_changed = false;
        let mut any_failed = false;
        let mut all_skipped = !items.is_empty();
        for (i, item) in items.iter().enumerate() {
            let top = self.loop_top(task, item, i, items.len(), &loop_var);
            let ivars = self.vars_for(pc, host, task, inh, Some(top));
            let ictx = ivars.ctx();
            let label = match &task.loop_control.label {
                Some(l) => match self.templar.template_json(l, &ictx) {
                    Ok(v) => json_label(&v),
                    Err(_) => json_label(item),
                },
                None => json_label(item),
            };
            let mut r = match self.eval_when(&task.when, &ictx) {
                Ok(false) => {
                    let mut r = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
                    if let Some(c) = task.when.first() {
                        r["false_condition"] = c.clone();
                    }
                    r
                }
                Ok(true) => {
                    all_skipped = false;
                    self.run_with_retries(pc, &call, &ivars)
                }
                Err(e) => {
                    all_skipped = false;
                    json!({"changed": false, "failed": true, "msg": format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)})
                }
            };
            if r.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
                return self.finish(&call, r, false);
            }
            r[&loop_var] = item.clone();
            r["ansible_loop_var"] = json!(loop_var);
            if let Some(iv) = &task.loop_control.index_var {
                r[iv] = json!(i);
                r["ansible_index_var"] = json!(iv);
            }
            if task.loop_control.label.is_some() {
                r["_ansible_item_label"] = json!(label);
            }
            let changed = r.get("changed").and_then(Json::as_bool).unwrap_or(false);
            let failed = r.get("failed").and_then(Json::as_bool).unwrap_or(false);
            let skipped = r.get("skipped").and_then(Json::as_bool).unwrap_or(false);
            any_changed |= changed;
            any_failed |= failed;
            if !failed && !skipped {
                self.apply_facts(task, host, &r);
            }
            let outcome = if failed {
                Outcome::Failed
            } else if skipped {
                Outcome::Skipped
            } else if changed {
                Outcome::Changed
            } else {
                Outcome::Ok
            };
            let shown = if no_log { censored(changed) } else { r.clone() };
            // As Ansible: with no_log, not even the item is shown.
            let label = if no_log { "None".to_string() } else { label };
            self.out.lock().result(host, &name, outcome, &shown, Some(&label), action == "debug", false);
            if let Some(p) = &task.loop_control.pause
                && let Some(secs) = p.as_f64().or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            results.push(r);
        }
        let mut result =
            json!({"changed": any_changed, "results": results, "msg": if any_failed { "One or more items failed" } else { "All items completed" }});
        if any_failed {
            result["failed"] = json!(true);
        }
        if all_skipped {
            result["skipped"] = json!(true);
        }
        self.finish(&call, result, true)
    }

    /// Facts a module, set_fact or include_vars returned, in place for the host's next task
    /// (and, in a loop, for the next item: `set_fact` accumulating over a loop works).
    fn apply_facts(&mut self, task: &Task, host: &str, result: &Json) {
        let Some(Json::Object(f)) = result.get("ansible_facts") else { return };
        let action = task.action().unwrap_or_default();
        let hs = self.hosts.get_mut(host).unwrap();
        if action == "set_fact" {
            Arc::make_mut(&mut hs.set_facts).extend(f.clone());
        } else if action == "include_vars" {
            Arc::make_mut(&mut hs.include_vars).extend(f.clone());
        } else {
            let facts = Arc::make_mut(&mut hs.facts);
            for (k, v) in f {
                facts.insert(k.clone(), v.clone());
            }
        }
    }

    fn loop_top(&self, task: &Task, item: &Json, i: usize, len: usize, loop_var: &str) -> Map<String, Json> {
        let mut top = Map::new();
        top.insert(loop_var.to_string(), item.clone());
        top.insert("ansible_loop_var".into(), json!(loop_var));
        if let Some(iv) = &task.loop_control.index_var {
            top.insert(iv.clone(), json!(i));
            top.insert("ansible_index_var".into(), json!(iv));
        }
        if task.loop_control.extended.as_ref().and_then(airlock_jinja::to_bool_strict).unwrap_or(false) {
            top.insert(
                "ansible_loop".into(),
                json!({"index": i + 1, "index0": i, "revindex": len - i, "revindex0": len - i - 1, "first": i == 0, "last": i + 1 == len, "length": len}),
            );
        }
        top
    }

    fn skip(&mut self, call: &TaskCall, conds: &[Json]) -> Result<HostRun, Fatal> {
        let TaskCall { task, host, name, no_log, .. } = *call;
        let mut r = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
        if let Some(c) = conds.first() {
            r["false_condition"] = c.clone();
        }
        self.stats.get_mut(host).unwrap().skipped += 1;
        let shown = if no_log { censored(false) } else { r.clone() };
        self.out.lock().result(host, name, Outcome::Skipped, &shown, None, false, false);
        if let Some(reg) = &task.register {
            let hs = self.hosts.get_mut(host).unwrap();
            Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), r);
        }
        Ok(HostRun::Done { failed: false })
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

    /// The items of a loop, from `loop:` or a `with_*` form.
    fn loop_items(&self, spec: &playbook::LoopSpec, ctx: &minijinja::Value, task: &Task) -> Result<Vec<Json>, String> {
        let v = match &spec.value {
            Json::String(s) if !airlock_jinja::is_template(s) && !matches!(spec.kind, LoopKind::Loop) => {
                // Bare strings in with_* are plain items (Ansible 2.x no longer treats them
                // as variable names).
                Json::String(s.clone())
            }
            other => self.templar.template_json(other, ctx).map_err(|e| e.msg)?,
        };
        let as_list = |v: Json| -> Result<Vec<Json>, String> {
            match v {
                Json::Array(a) => Ok(a),
                Json::Null => Ok(vec![]),
                other => Err(format!(
                    "Invalid data passed to 'loop', it requires a list, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.",
                    output::py_json(&other, None)
                )),
            }
        };
        Ok(match spec.kind {
            LoopKind::Loop => as_list(v)?,
            LoopKind::List => match v {
                Json::Array(a) => a,
                other => vec![other],
            },
            LoopKind::Items => {
                let list = match v {
                    Json::Array(a) => a,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for x in list {
                    match x {
                        Json::Array(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                out
            }
            LoopKind::Dict => match v {
                Json::Object(m) => m.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect(),
                other => return Err(format!("with_dict expects a dict, got {}", output::py_json(&other, None))),
            },
            LoopKind::IndexedItems => as_list(v)?.into_iter().enumerate().map(|(i, x)| json!([i, x])).collect(),
            LoopKind::Together => {
                let lists: Vec<Vec<Json>> = as_list(v)?
                    .into_iter()
                    .map(|l| match l {
                        Json::Array(a) => a,
                        other => vec![other],
                    })
                    .collect();
                let n = lists.iter().map(Vec::len).max().unwrap_or(0);
                (0..n).map(|i| Json::Array(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Json::Null)).collect())).collect()
            }
            LoopKind::Nested => {
                let lists: Vec<Vec<Json>> = as_list(v)?
                    .into_iter()
                    .map(|l| match l {
                        Json::Array(a) => a,
                        other => vec![other],
                    })
                    .collect();
                let mut acc: Vec<Vec<Json>> = vec![vec![]];
                for l in lists {
                    acc = acc
                        .into_iter()
                        .flat_map(|prefix| {
                            l.iter().map(move |x| {
                                let mut p = prefix.clone();
                                p.push(x.clone());
                                p
                            })
                        })
                        .collect();
                }
                acc.into_iter().map(Json::Array).collect()
            }
            LoopKind::Fileglob => {
                let pats = match v {
                    Json::Array(a) => a,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for p in pats {
                    let p = p.as_str().unwrap_or_default().to_string();
                    let mut bases = Vec::new();
                    if Path::new(&p).is_absolute() {
                        bases.push(PathBuf::from(&p));
                    } else {
                        if let Some(r) = &task.role {
                            bases.push(r.path.join("files").join(&p));
                        }
                        let pdir = task.pos.file.parent().map(Path::to_path_buf).unwrap_or_default();
                        bases.push(pdir.join("files").join(&p));
                        bases.push(pdir.join(&p));
                    }
                    for b in bases {
                        let mut found: Vec<String> = glob::glob(&b.to_string_lossy())
                            .map_err(|e| e.to_string())?
                            .filter_map(Result::ok)
                            .filter(|f| f.is_file())
                            .map(|f| f.display().to_string())
                            .collect();
                        if !found.is_empty() {
                            found.sort();
                            out.extend(found.into_iter().map(Json::String));
                            break;
                        }
                    }
                }
                out
            }
            LoopKind::Sequence => sequence_items(&v)?,
        })
    }

    /// Runs the action, repeating it while `until` is false (up to `retries`).
    fn run_with_retries(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, host, .. } = *call;
        let ctx = vars.ctx();
        let Some(until) = &task.until else {
            return self.run_action(pc, call, vars);
        };
        let retries = task
            .retries
            .as_ref()
            .and_then(|r| self.templar.template_json(r, &ctx).ok())
            .and_then(|r| r.as_i64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(3)
            .max(0);
        let delay = task
            .delay
            .as_ref()
            .and_then(|r| self.templar.template_json(r, &ctx).ok())
            .and_then(|r| r.as_f64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(5.0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut result = self.run_action(pc, call, vars);
            // `until` sees the result under the register name.
            let mut top = Map::new();
            if let Some(reg) = &task.register {
                top.insert(reg.clone(), result.clone());
            }
            let uvars = self.vars_for(pc, host, task, inh, Some(top));
            let ok = self.templar.eval_cond(until, &uvars.ctx());
            result["attempts"] = json!(attempt);
            match ok {
                Ok(true) => return result,
                Ok(false) if attempt <= retries => {
                    self.out.lock().line(&format!("FAILED - RETRYING: [{host}]: {} ({} retries left).", task.display_name(), retries + 1 - attempt));
                    self.out.lock().flush();
                    std::thread::sleep(std::time::Duration::from_secs_f64(delay.max(0.0)));
                }
                Ok(false) => {
                    result["failed"] = json!(true);
                    if result.get("msg").is_none() {
                        result["msg"] = json!("Retries exhausted");
                    }
                    return result;
                }
                Err(e) => return json!({"failed": true, "changed": false, "msg": format!("The conditional check '{}' failed: {}", until, e.msg)}),
            }
        }
    }

    /// Runs one action (module or executor action) once, after templating its arguments.
    fn run_action(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, host, .. } = *call;
        // delegate_to: the module runs on that host, through its connection, with this
        // host's variables (as Ansible does).
        let target = match task.delegate_to.as_ref().or(inh.delegate_to.as_ref()) {
            Some(d) => match self.templar.template_json(d, &vars.ctx()) {
                Ok(Json::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return json!({"changed": false, "failed": true, "msg": e.msg}),
            },
            None => host.to_string(),
        };
        let mut r = self.run_action_on(pc, call, &target, vars);
        // The output names both hosts (`ok: [node1 -> localhost]`), as Ansible's does.
        if target != host
            && let Json::Object(m) = &mut r
        {
            m.insert("_ansible_delegated_vars".into(), json!({"ansible_delegated_host": target}));
        }
        r
    }

    /// Runs the action on `target`: the task's host, or the one it is delegated to.
    fn run_action_on(&mut self, pc: &mut PlayCtx, call: &TaskCall, target: &str, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, action, args, .. } = *call;
        let ctx = vars.ctx();
        let check = self.check_mode(inh, task);
        let diff = match self.eval_bool_opt(task.diff.as_ref().or(inh.diff.as_ref()), &ctx) {
            Some(b) => b,
            None => self.opts.diff,
        };
        // Templating of arguments is the action's own business for a few actions (they need
        // the raw text, e.g. `debug: var=`, `assert: that=`).
        let raw_args_actions = ["debug", "assert"];
        let targs = if raw_args_actions.contains(&action) {
            args.clone()
        } else {
            match self.templar.template_json(&Json::Object(args.clone()), &ctx) {
                Ok(Json::Object(m)) => m.into_iter().filter(|(_, v)| v.as_str() != Some(airlock_jinja::OMIT)).collect(),
                Ok(_) => unreachable!(),
                Err(e) => return json!({"changed": false, "failed": true, "msg": format!("{} (task '{}' at {})", e.msg, task.display_name(), task.pos)}),
            }
        };
        self.note_secrets(&targs, vars);
        if let Some(mut r) = actions::run_executor_action(self, pc, call, &targs, vars, check) {
            // Template errors inside an action name the task and where it is written.
            if let Some(msg) = r.get("msg").and_then(Json::as_str).filter(|m| m.contains("is undefined") || m.starts_with("template error")) {
                let msg = format!("{msg} (task '{}' at {})", task.display_name(), task.pos);
                r["msg"] = json!(msg);
            }
            return r;
        }
        let Some(module) = crate::modules::lookup(action) else {
            return json!({"changed": false, "failed": true, "msg": format!("couldn't resolve module/action '{action}'")});
        };
        let mut targs = targs;
        // The task's environment, for modules that run commands.
        if !inh.environment.is_empty() || task.environment.is_some() {
            let mut env = Map::new();
            for e in inh.environment.iter().chain(task.environment.iter()) {
                if let Ok(Json::Object(m)) = self.templar.template_json(e, &ctx) {
                    env.extend(m);
                }
            }
            targs.insert("_environment".into(), Json::Object(env));
        }
        let mut search = Vec::new();
        if let Some(r) = &task.role {
            search.push(r.path.clone());
        }
        if let Some(d) = task.pos.file.parent() {
            search.push(d.to_path_buf());
        }
        search.push(pc.play.dir.clone());
        let templar = self.templar.clone();
        let render_vars = vars.clone();
        let render = move |p: &Path| -> Result<String, String> {
            let text = std::fs::read_to_string(p).map_err(|e| format!("could not read template {}: {e}", p.display()))?;
            templar.render_str(&text, &render_vars.ctx()).map_err(|e| format!("{} (in template {})", e.msg, p.display()))
        };
        // become: a child process under sudo when the target user is not who we are.
        let become_user = if self.eval_bool_opt(task.become_.as_ref().or(inh.become_.as_ref()), &ctx).unwrap_or(false) {
            match task.become_user.as_ref().or(inh.become_user.as_ref()) {
                Some(u) => match self.templar.template_json(u, &ctx) {
                    Ok(Json::String(s)) => Some(s),
                    Ok(other) => Some(other.to_string()),
                    Err(e) => return json!({"changed": false, "failed": true, "msg": e.msg}),
                },
                None => Some("root".to_string()),
            }
        } else {
            None
        };
        let progress = self.out.progress();
        let conn = self.connection_of(pc.play, target);
        let remote = conn != "local";
        if remote || become_user.as_deref().is_some_and(escalate::needs_switch) {
            // The module runs in a child, here under sudo or on the host: templates are
            // rendered here (the child has no variables), and over SSH the local files a
            // module reads are copied along.
            let mut rendered = std::collections::HashMap::new();
            let mut uploads = Vec::new();
            let probe = crate::modules::ModuleContext {
                check_mode: check,
                diff_mode: diff,
                search_paths: search.clone(),
                render_file: &render,
                progress: &progress,
                provided: &[],
            };
            let short = action.strip_prefix("ansible.builtin.").or_else(|| action.strip_prefix("ansible.legacy.")).unwrap_or(action);
            let src = targs.get("src").and_then(Json::as_str).map(str::to_string);
            if short == "template" {
                if let Some(path) = src.as_deref().and_then(|s| probe.find_file("templates", s)) {
                    match render(&path) {
                        Ok(text) => {
                            if remote {
                                targs.insert("src".into(), json!(path.display().to_string()));
                            }
                            rendered.insert(path, text);
                        }
                        Err(e) => return json!({"changed": false, "failed": true, "msg": e}),
                    }
                }
            } else if remote
                && matches!(short, "copy" | "unarchive")
                && !targs.get("remote_src").and_then(airlock_jinja::to_bool_strict).unwrap_or(false)
                && let Some(s) = src.as_deref()
            {
                let Some(path) = probe.find_file("files", s.trim_end_matches('/')) else {
                    return json!({"changed": false, "failed": true, "msg": format!("Could not find or access '{s}' on the Ansible Controller (searched files/ of {})", search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))});
                };
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "src".into());
                uploads.push((path, name));
            }
            let mut req = escalate::ModuleRequest {
                module: action.to_string(),
                args: targs,
                check_mode: check,
                diff_mode: diff,
                search_paths: if remote { Vec::new() } else { search },
                rendered,
            };
            if !remote {
                return escalate::run_as(become_user.as_deref().unwrap_or("root"), &req);
            }
            if conn != "ssh" {
                return connection::unreachable_result(&format!(
                    "connection '{conn}' of {target} is not supported; airlock connects with: {}",
                    connection::SUPPORTED.join(", ")
                ));
            }
            let ssh = match self.ssh_params(pc, target).and_then(|p| self.connections.ssh(&p)) {
                Ok(c) => c,
                Err(msg) => return json!({"changed": false, "failed": true, "msg": msg}),
            };
            return ssh.run_module(&mut req, become_user.as_deref(), &uploads);
        }
        let mctx = crate::modules::ModuleContext {
            check_mode: check,
            diff_mode: diff,
            search_paths: search,
            render_file: &render,
            progress: &progress,
            provided: &[],
        };
        let res = module(&targs, &mctx);
        module_result_json(res)
    }

    /// How to reach `host` over SSH, from its variables (templated in its own context).
    fn ssh_params(&mut self, pc: &PlayCtx, host: &str) -> Result<connection::SshParams, String> {
        let hv = self.hostvars(pc);
        let hvars = hv.get_item(&minijinja::Value::from(host)).ok().filter(|v| !v.is_undefined());
        let get = |names: &[&str]| -> Option<Json> {
            let hv = hvars.as_ref()?;
            names.iter().find_map(|n| {
                let v = hv.get_attr(n).ok().filter(|v| !v.is_undefined() && !v.is_none())?;
                serde_json::to_value(&v).ok()
            })
        };
        let text = |names: &[&str]| {
            get(names).map(|v| match v {
                Json::String(s) => s,
                other => other.to_string(),
            })
        };
        let args = |names: &[&str]| -> Result<Vec<String>, String> {
            match text(names) {
                Some(s) => crate::modules::command::shlex_split(&s).map_err(|e| format!("{}: {e}", names[0])),
                None => Ok(Vec::new()),
            }
        };
        let port = match text(&["ansible_port", "ansible_ssh_port"]) {
            Some(p) => Some(p.trim().parse::<u16>().map_err(|_| format!("ansible_port of {host} is '{p}', not a port number"))?),
            None => None,
        };
        if text(&["ansible_password", "ansible_ssh_pass"]).is_some() {
            return Err(format!(
                "{host} sets ansible_password: airlock's ssh connection logs in with keys only (ansible_ssh_private_key_file or the SSH agent)"
            ));
        }
        Ok(connection::SshParams {
            host: text(&["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| host.to_string()),
            port,
            user: text(&["ansible_user", "ansible_ssh_user"]),
            key: text(&["ansible_ssh_private_key_file", "ansible_private_key_file"]).map(|k| PathBuf::from(crate::modules::fileattrs::expand_user(&k))),
            common_args: args(&["ansible_ssh_common_args"])?,
            extra_args: args(&["ansible_ssh_extra_args"])?,
            timeout: text(&["ansible_ssh_timeout", "ansible_timeout"]).and_then(|t| t.trim().parse().ok()).unwrap_or(10),
            binary: text(&["airlock_remote_binary"]).map(PathBuf::from),
        })
    }

    /// Applies changed_when/failed_when/ignore_errors, registers, notifies, prints, counts.
    fn finish(&mut self, call: &TaskCall, mut result: Json, looped: bool) -> Result<HostRun, Fatal> {
        let TaskCall { task, inh, host, name, no_log, .. } = *call;
        if result.get("failed").is_none() {
            result["failed"] = json!(false);
        }
        // changed_when / failed_when see the result under the register name.
        if task.changed_when.is_some() || task.failed_when.is_some() {
            let mut top = Map::new();
            if let Some(reg) = &task.register {
                top.insert(reg.clone(), result.clone());
            }
            let ctx = self.result_ctx(task, host, &result, top);
            if let Some(cw) = &task.changed_when {
                match self.eval_conds_json(cw, &ctx) {
                    Ok(b) => result["changed"] = json!(b),
                    Err(e) => {
                        result["failed"] = json!(true);
                        result["msg"] = json!(format!("The conditional check '{}' failed. The error was: {}", cond_text(cw), e));
                    }
                }
            }
            if let Some(fw) = &task.failed_when {
                match self.eval_conds_json(fw, &ctx) {
                    Ok(b) => {
                        result["failed"] = json!(b);
                        result["failed_when_result"] = json!(b);
                    }
                    Err(e) => {
                        result["failed"] = json!(true);
                        result["msg"] = json!(format!("The conditional check '{}' failed. The error was: {}", cond_text(fw), e));
                    }
                }
            }
        }
        if result.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
            // The host is gone for the rest of the run: counted and shown as unreachable,
            // never rescued.
            self.record(host, name, result);
            return Ok(HostRun::Done { failed: true });
        }
        let failed = result.get("failed").and_then(Json::as_bool).unwrap_or(false);
        let changed = result.get("changed").and_then(Json::as_bool).unwrap_or(false);
        let skipped = result.get("skipped").and_then(Json::as_bool).unwrap_or(false);
        let ignore = failed && {
            let ctx = self.result_ctx(task, host, &result, Map::new());
            self.eval_bool_opt(task.ignore_errors.as_ref().or(inh.ignore_errors.as_ref()), &ctx).unwrap_or(false)
        };
        if let Some(reg) = &task.register {
            let mut stored = result.clone();
            if let Json::Object(m) = &mut stored {
                m.retain(|k, _| !k.starts_with("_ansible"));
            }
            let hs = self.hosts.get_mut(host).unwrap();
            Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), stored);
        }
        if !failed {
            self.apply_facts(task, host, &result);
        }
        let stats = self.stats.get_mut(host).unwrap();
        let outcome = if task.action() == Some("meta") && !failed {
            Outcome::Ok
        } else if failed {
            if ignore {
                // Ansible counts an ignored failure as ok (and changed when it changed).
                stats.ignored += 1;
                stats.ok += 1;
                if changed {
                    stats.changed += 1;
                }
            } else {
                stats.failed += 1;
            }
            Outcome::Failed
        } else if skipped {
            stats.skipped += 1;
            Outcome::Skipped
        } else if changed {
            stats.changed += 1;
            stats.ok += 1;
            Outcome::Changed
        } else {
            stats.ok += 1;
            Outcome::Ok
        };
        // A loop showed its items already; the task's own line follows only when it failed
        // or every item was skipped (as Ansible's default callback does).
        let is_meta = task.action() == Some("meta");
        if !is_meta && (!looped || outcome == Outcome::Failed || outcome == Outcome::Skipped) {
            let shown = if no_log { censored(changed) } else { result.clone() };
            let display = if looped { strip_results(&shown) } else { shown };
            let verbose_always = !looped && task.action() == Some("debug");
            self.out.lock().result(host, name, outcome, &display, None, verbose_always, ignore);
        }
        if changed && !failed && !task.notify.is_empty() {
            let hs = self.hosts.get_mut(host).unwrap();
            for n in &task.notify {
                if !hs.notified.contains(n) {
                    hs.notified.push(n.clone());
                }
            }
        }
        if failed && !ignore {
            self.hosts.get_mut(host).unwrap().failed = true;
            if let Json::Object(m) = &result {
                // For rescue: ansible_failed_task / ansible_failed_result.
                let hs = self.hosts.get_mut(host).unwrap();
                let sf = Arc::make_mut(&mut hs.set_facts);
                sf.insert("ansible_failed_result".into(), Json::Object(m.clone()));
                sf.insert(
                    "ansible_failed_task".into(),
                    json!({"name": task.display_name(), "action": task.action().unwrap_or_default(), "path": task.pos.to_string()}),
                );
            }
            return Ok(HostRun::Done { failed: true });
        }
        Ok(HostRun::Done { failed: false })
    }

    /// A context for changed_when/failed_when/ignore_errors: host-level vars plus the result.
    fn result_ctx(&mut self, task: &Task, host: &str, _result: &Json, top: Map<String, Json>) -> minijinja::Value {
        let hs = &self.hosts[host];
        let mut maps = vec![Arc::new(top), hs.set_facts.clone(), hs.include_vars.clone(), task.vars.clone(), hs.facts.clone(), self.extra_vars.clone()];
        if let Some(r) = &task.role {
            maps.push(r.params.clone());
            maps.push(r.vars.clone());
            maps.push(r.defaults.clone());
        }
        Vars::new(self.templar.clone(), maps).ctx()
    }

    fn eval_conds_json(&self, c: &Json, ctx: &minijinja::Value) -> Result<bool, String> {
        match c {
            Json::Array(a) => self.eval_when(a, ctx),
            other => self.templar.eval_cond(other, ctx).map_err(|e| e.msg),
        }
    }

    fn flush_handlers(&mut self, pc: &mut PlayCtx) -> Result<(), Fatal> {
        let handlers = pc.handlers.clone();
        // Unknown handler names are an error, as in Ansible.
        for h in pc.hosts.clone() {
            let notified = self.hosts[&h].notified.clone();
            for n in &notified {
                let known = handlers.iter().any(|t| handler_matches(t, n));
                if !known {
                    return Err(Fatal(format!(
                        "The requested handler '{n}' was not found in either the main handlers list nor in the listening handlers list"
                    )));
                }
            }
        }
        for handler in &handlers {
            let hosts: Vec<String> = pc
                .hosts
                .iter()
                .filter(|h| {
                    let hs = &self.hosts[*h];
                    !hs.failed && hs.notified.iter().any(|n| handler_matches(handler, n))
                })
                .cloned()
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let inherit = pc.play_inherit.clone();
            self.run_list_on(pc, std::slice::from_ref(handler), &inherit, true, &hosts)?;
        }
        for h in pc.hosts.clone() {
            self.hosts.get_mut(&h).unwrap().notified.clear();
        }
        Ok(())
    }

    /// include_tasks / include_role: loads what to run; the caller runs it on this host.
    fn include(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>, top: Option<Map<String, Json>>) -> Result<HostRun, Fatal> {
        // An include's own failures are shown whatever its no_log.
        let call = TaskCall { no_log: false, ..*call };
        let TaskCall { task, inh, host, args, .. } = call;
        let ctx = vars.ctx();
        let action = task.action().unwrap_or_default();
        let targs = match self.templar.template_json(&Json::Object(args.clone()), &ctx) {
            Ok(Json::Object(m)) => m,
            Ok(_) => unreachable!(),
            Err(e) => {
                let r = json!({"changed": false, "failed": true, "msg": e.msg});
                return self.finish(&call, r, false);
            }
        };
        // The included tasks inherit the include's surroundings, its `apply`, and its vars
        // (plus the loop variable) as include params; not its own tags or when.
        let mut child = inh.clone();
        let mut params = (*task.vars).clone();
        let item_suffix = top
            .as_ref()
            .and_then(|t| {
                let var = t.get("ansible_loop_var")?.as_str()?;
                let label = match &task.loop_control.label {
                    Some(l) => self.templar.template_json(l, &ctx).ok()?,
                    None => t.get(var)?.clone(),
                };
                Some(format!(" => (item={})", json_label(&label)))
            })
            .unwrap_or_default();
        if let Some(top) = top {
            params.extend(top);
        }
        if !params.is_empty() {
            child.include_params.push(Arc::new(params));
        }
        if let Some(Json::Object(apply)) = targs.get("apply") {
            if let Some(t) = apply.get("tags") {
                child.tags.extend(match t {
                    Json::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect(),
                    Json::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
                    _ => vec![],
                });
            }
            for (k, slot) in [
                ("become", &mut child.become_),
                ("become_user", &mut child.become_user),
                ("check_mode", &mut child.check_mode),
                ("diff", &mut child.diff),
                ("no_log", &mut child.no_log),
                ("ignore_errors", &mut child.ignore_errors),
            ] {
                if let Some(v) = apply.get(k) {
                    *slot = Some(v.clone());
                }
            }
            if let Some(w) = apply.get("when") {
                child.when.extend(match w {
                    Json::Array(a) => a.clone(),
                    other => vec![other.clone()],
                });
            }
            if let Some(e) = apply.get("environment") {
                child.environment.push(e.clone());
            }
        }
        let fail = |me: &mut Runner, msg: String| -> Result<HostRun, Fatal> {
            let r = json!({"changed": false, "failed": true, "msg": msg});
            me.finish(&call, r, false)
        };
        if action == "include_tasks" {
            let Some(file) = targs.get("_raw_params").or_else(|| targs.get("file")).and_then(Json::as_str) else {
                return fail(self, "include_tasks needs a file name".into());
            };
            match playbook::load_task_file(file, &task.pos.file, task.role.as_ref(), &pc.play.dir, &self.load_opts) {
                Ok((path, tasks)) => {
                    self.out.lock().line(&format!("included: {} for {host}{item_suffix}", path.display()));
                    self.stats.get_mut(host).unwrap().ok += 1;
                    Ok(HostRun::Include(tasks, child, None))
                }
                Err(e) => fail(self, format!("{e}")),
            }
        } else {
            let s = |k: &str| targs.get(k).and_then(Json::as_str).map(str::to_string);
            let Some(name) = s("name").or_else(|| s("role")) else {
                return fail(self, "'name' is a required field for include_role".into());
            };
            let req = playbook::RoleRequest {
                name,
                tasks_from: s("tasks_from"),
                vars_from: s("vars_from"),
                defaults_from: s("defaults_from"),
                handlers_from: s("handlers_from"),
                params: Map::new(),
            };
            match playbook::load_role(&req, &pc.play.dir, &self.load_opts) {
                Ok((role, tasks, handlers)) => {
                    for h in handlers {
                        pc.handlers.push(h);
                    }
                    self.stats.get_mut(host).unwrap().ok += 1;
                    let public = targs.get("public").and_then(airlock_jinja::to_bool_strict).unwrap_or(false);
                    Ok(HostRun::Include(tasks, child, if public { Some(role) } else { None }))
                }
                Err(e) => fail(self, format!("{e}")),
            }
        }
    }
}

/// Splits a play's hosts into the batches `serial` asks for: a number, a percentage of the
/// play's hosts (at least one), or a list of those, whose last entry repeats. None or 0 is
/// one batch of every host.
fn serial_batches(spec: Option<&Json>, hosts: &[String]) -> Result<Vec<Vec<String>>, String> {
    let sizes: Vec<Json> = match spec {
        None | Some(Json::Null) => return Ok(vec![hosts.to_vec()]),
        Some(Json::Array(a)) if a.is_empty() => return Ok(vec![hosts.to_vec()]),
        Some(Json::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
    };
    let size_of = |v: &Json| -> Result<usize, String> {
        let text = match v {
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.trim().to_string(),
            other => return Err(format!("serial must be a number, a percentage or a list of those, not {other}")),
        };
        let n = if let Some(pct) = text.strip_suffix('%') {
            let p: f64 = pct.trim().parse().map_err(|_| format!("serial: '{text}' is not a percentage"))?;
            ((p / 100.0) * hosts.len() as f64).floor().max(1.0) as usize
        } else {
            text.parse::<usize>().map_err(|_| format!("serial: '{text}' is not a number of hosts"))?
        };
        Ok(if n == 0 { hosts.len() } else { n })
    };
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = size_of(&sizes[i.min(sizes.len() - 1)])?.min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    Ok(out)
}

/// A role's defaults and vars as layers.
fn push_role_layers(l: &mut Layers, r: &Role) {
    l.push_from(Level::RoleDefaults, format!("role {} defaults", r.name), r.defaults_file.clone(), r.defaults.clone());
    l.push_from(Level::RoleVars, format!("role {} vars", r.name), r.vars_file.clone(), r.vars.clone());
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

fn handler_matches(handler: &Task, notified: &str) -> bool {
    handler.name.as_deref() == Some(notified) || handler.listen.iter().any(|l| l == notified) || (handler.role.is_some() && handler.display_name() == notified)
}

fn cond_text(c: &Json) -> String {
    match c {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Runner {
    /// Learns the secrets a task's arguments and variables hold, so that the output hides
    /// them (see [`crate::secrets`]). Variables whose secrets are templates are rendered here,
    /// with the task's variables; literal ones are found once per layer of variables.
    fn note_secrets(&self, targs: &Map<String, Json>, vars: &Arc<Vars>) {
        let mut found = crate::secrets::find_in(targs);
        let templated = self.out.lock().secrets.scan_layers(vars.layers());
        for name in templated {
            if let Some(v) = vars.resolve(&name)
                && let Ok(j) = serde_json::to_value(&v)
            {
                found.extend(crate::secrets::find(&json!({ name: j })));
            }
        }
        if !found.is_empty() {
            self.out.lock().secrets.add(found);
        }
    }
}

fn censored(changed: bool) -> Json {
    json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": changed})
}

fn strip_results(v: &Json) -> Json {
    let mut v = v.clone();
    if let Json::Object(m) = &mut v {
        m.remove("results");
    }
    v
}

/// How an item shows in `(item=...)`: Python's str() of it.
fn json_label(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => airlock_jinja::pyfmt::py_str(&airlock_jinja::to_value(other)),
    }
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

/// `with_sequence`: `start=1 end=5 stride=1 format=%d` or `count=`.
fn sequence_items(v: &Json) -> Result<Vec<Json>, String> {
    let text = v.as_str().ok_or("with_sequence takes a string like 'start=1 end=5'")?;
    let kv = playbook::parse_kv(text);
    let num = |k: &str| {
        kv.get(k)
            .and_then(|x| x.as_str())
            .map(|s| {
                if let Some(h) = s.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).map_err(|e| e.to_string())
                } else {
                    s.parse::<i64>().map_err(|e| e.to_string())
                }
            })
            .transpose()
    };
    let start = num("start")?.unwrap_or(1);
    let stride = num("stride")?.unwrap_or(1);
    let end = match (num("end")?, num("count")?) {
        (Some(e), _) => e,
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err("with_sequence needs 'end' or 'count'".into()),
    };
    if stride == 0 {
        return Err("with_sequence: stride must not be 0".into());
    }
    let fmt = kv.get("format").and_then(|x| x.as_str()).unwrap_or("%d").to_string();
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Json::String(fmt.replacen("%d", &i.to_string(), 1).replacen("%02d", &format!("{i:02}"), 1).replacen("%x", &format!("{i:x}"), 1)));
        i += stride;
    }
    Ok(out)
}

/// `hostvars`: a map from host name to that host's variables, templated lazily.
#[derive(Debug)]
struct HostVars {
    templar: Arc<Templar>,
    hosts: IndexMap<String, Vec<VarMap>>,
}

impl minijinja::value::Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let maps = self.hosts.get(key.as_str()?)?;
        Some(Vars::new(self.templar.clone(), maps.clone()).ctx())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.hosts.keys().map(|k| minijinja::Value::from(k.as_str())).collect())
    }
}

/// Exposes the executor pieces the actions module needs.
impl Runner {
    fn host_state(&mut self, host: &str) -> &mut HostState {
        self.hosts.get_mut(host).unwrap()
    }
}

#[cfg(test)]
mod serial_tests {
    use super::serial_batches;
    use serde_json::json;

    fn sizes(spec: serde_json::Value, n: usize) -> Vec<usize> {
        let hosts: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
        serial_batches(Some(&spec), &hosts).unwrap().iter().map(Vec::len).collect()
    }

    #[test]
    fn serial_numbers_percentages_and_lists() {
        assert_eq!(sizes(json!(2), 5), vec![2, 2, 1]);
        assert_eq!(sizes(json!("40%"), 5), vec![2, 2, 1]);
        assert_eq!(sizes(json!("10%"), 5), vec![1, 1, 1, 1, 1]);
        assert_eq!(sizes(json!([1, "50%"]), 6), vec![1, 3, 2]);
        assert_eq!(sizes(json!(0), 3), vec![3]);
        let hosts = vec!["a".to_string()];
        assert!(serial_batches(Some(&json!("many")), &hosts).unwrap_err().contains("not a number"));
        assert_eq!(serial_batches(None, &hosts).unwrap(), vec![hosts.clone()]);
    }
}

//! Loading: YAML text to the model, static imports and roles resolved, every key checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::{Body, LoadError, LoopControl, LoopKind, LoopSpec, Play, Playbook, Pos, Role, Task};
use airlock_base::yaml::{Mark, Node, NodeKind};

/// Settings that loading needs from the command line and configuration.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `roles_path` from ansible.cfg / `ANSIBLE_ROLES_PATH`, searched after the playbook's
    /// `roles/` and before the shipped roles.
    pub roles_path: Vec<PathBuf>,
    /// Extra vars, for templated names in static imports (`import_tasks: "{{ x }}.yml"`).
    pub extra_vars: Map<String, Json>,
}

/// Actions the executor implements itself (they need its state), besides the module registry.
pub const EXECUTOR_ACTIONS: &[&str] = &[
    "debug",
    "set_fact",
    "assert",
    "fail",
    "include_vars",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "meta",
    "setup",
    "gather_facts",
    "noop",
];

/// Actions whose free-form text is one raw parameter rather than `k=v` pairs.
const RAW_PARAM_ACTIONS: &[&str] = &["command", "shell", "include_tasks", "import_tasks", "include_vars", "meta", "raw", "script"];

/// `k=v` words pulled out of `command`/`shell` free-form text.
const COMMAND_KV: &[&str] = &["chdir", "creates", "removes", "executable", "stdin", "stdin_add_newline", "strip_empty_ends"];

const TASK_KEYWORDS: &[&str] = &[
    "name",
    "action",
    "local_action",
    "args",
    "when",
    "tags",
    "vars",
    "loop",
    "loop_control",
    "register",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "until",
    "retries",
    "delay",
    "notify",
    "listen",
    "check_mode",
    "diff",
    "no_log",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "become_exe",
    "environment",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "any_errors_fatal",
    "connection",
    "remote_user",
    "port",
    "timeout",
    "throttle",
    "async",
    "poll",
    "debugger",
    "collections",
    "module_defaults",
    "block",
    "rescue",
    "always",
];

const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "connection",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "vars",
    "vars_files",
    "vars_prompt",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "become_exe",
    "tags",
    "check_mode",
    "diff",
    "environment",
    "ignore_errors",
    "ignore_unreachable",
    "any_errors_fatal",
    "force_handlers",
    "serial",
    "strategy",
    "order",
    "max_fail_percentage",
    "remote_user",
    "port",
    "module_defaults",
    "collections",
    "run_once",
    "no_log",
    "throttle",
    "timeout",
    "debugger",
];

const ROLE_ENTRY_KEYWORDS: &[&str] = &[
    "role",
    "name",
    "tags",
    "when",
    "vars",
    "become",
    "become_user",
    "environment",
    "ignore_errors",
    "check_mode",
    "diff",
    "no_log",
    "delegate_to",
    "any_errors_fatal",
    "tasks_from",
    "vars_from",
    "defaults_from",
    "handlers_from",
];

/// Whether an action name is known (module registry or executor action), FQCN or not.
pub fn is_known_action(name: &str) -> bool {
    let short = short_action(name);
    crate::modules::lookup(short).is_some() || EXECUTOR_ACTIONS.contains(&short)
}

/// The short name of an action given as `ansible.builtin.x` or `ansible.legacy.x`.
pub fn short_action(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.").or_else(|| name.strip_prefix("ansible.legacy.")).unwrap_or(name)
}

/// Which part of a role to load, and with what parameters.
#[derive(Clone, Debug, Default)]
pub struct RoleRequest {
    pub name: String,
    pub tasks_from: Option<String>,
    pub vars_from: Option<String>,
    pub defaults_from: Option<String>,
    pub handlers_from: Option<String>,
    pub params: Map<String, Json>,
}

/// A role with its tasks and handlers, as one use of it loads them.
pub struct LoadedRole {
    pub role: Arc<Role>,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Dependencies' blocks, to run before `tasks`.
    pub dep_blocks: Vec<Task>,
    pub allow_duplicates: bool,
}

struct Ctx<'a> {
    opts: &'a LoadOptions,
    playbook_dir: PathBuf,
    /// Variables known at load time (play vars, extra vars) for templated import names.
    static_vars: Map<String, Json>,
    handlers: Vec<Task>,
    roles: Vec<Arc<Role>>,
    /// (name, params) of roles already placed in this play, for de-duplication.
    placed: Vec<(String, Map<String, Json>)>,
    depth: usize,
}

fn pos(file: &Arc<PathBuf>, mark: Mark) -> Pos {
    Pos { file: file.clone(), line: mark.line, col: mark.col }
}

fn err(file: &Arc<PathBuf>, node: &Node, msg: impl Into<String>) -> LoadError {
    LoadError::new(msg, Some(pos(file, node.mark)))
}

/// Reads and parses one YAML file.
fn read_yaml(path: &Path) -> Result<(Arc<PathBuf>, Node), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::new(format!("Could not read '{}': {e}", path.display()), None))?;
    parse_yaml(path, &text)
}

/// Parses the text of one YAML file, errors marked in `path`.
fn parse_yaml(path: &Path, text: &str) -> Result<(Arc<PathBuf>, Node), LoadError> {
    let file = Arc::new(path.to_path_buf());
    let node = airlock_base::yaml::parse(text).map_err(|e| {
        LoadError::new(
            format!(
                "We were unable to read either as JSON nor YAML, these are the errors we got from each:\nSyntax Error while loading YAML.\n  {}",
                e.message
            ),
            Some(pos(&file, e.mark)),
        )
    })?;
    Ok((file, node))
}

/// Reads a variables file (YAML or JSON) to a map; an empty file is an empty map.
pub fn read_vars_file(path: &Path) -> Result<Map<String, Json>, LoadError> {
    let (file, node) = read_yaml(path)?;
    if !matches!(node.kind, NodeKind::Map(_) | NodeKind::Null) {
        return Err(err(&file, &node, format!("vars file {} must contain a mapping of variable names to values", path.display())));
    }
    match node.into_json() {
        Json::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn map_entries(node: &Node) -> Option<&Vec<(Node, Node)>> {
    match &node.kind {
        NodeKind::Map(m) => Some(m),
        _ => None,
    }
}

fn key_str(node: &Node) -> String {
    match &node.kind {
        NodeKind::Str(s) => s.clone(),
        _ => match node.to_json() {
            Json::String(s) => s,
            other => other.to_string(),
        },
    }
}

fn node_str(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Str(s) => Some(s.clone()),
        NodeKind::Int(i) => Some(i.to_string()),
        NodeKind::Float(f) => Some(f.to_string()),
        NodeKind::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
        _ => None,
    }
}

fn str_list(file: &Arc<PathBuf>, node: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    match &node.kind {
        NodeKind::Null => Ok(vec![]),
        NodeKind::Seq(items) => items.iter().map(|n| node_str(n).ok_or_else(|| err(file, n, format!("{what} must be a list of strings")))).collect(),
        _ => Ok(node_str(node)
            .ok_or_else(|| err(file, node, format!("{what} must be a string or a list of strings")))?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()),
    }
}

fn vars_map(file: &Arc<PathBuf>, node: &Node) -> Result<Map<String, Json>, LoadError> {
    match node.to_json() {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Map::new()),
        Json::Array(items) => {
            // Ansible also takes a list of mappings.
            let mut out = Map::new();
            for it in items {
                match it {
                    Json::Object(m) => out.extend(m),
                    _ => return Err(err(file, node, "vars must be a mapping (or a list of mappings)")),
                }
            }
            Ok(out)
        }
        _ => Err(err(file, node, "vars must be a mapping of variable names to values")),
    }
}

fn when_list(node: &Node) -> Vec<Json> {
    match node.to_json() {
        Json::Array(a) => a,
        Json::Null => vec![],
        other => vec![other],
    }
}

/// Splits free-form text into words, keeping quoted parts together (quotes kept) as Ansible's
/// `split_args` does.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == '{' && matches!(chars.peek(), Some('{') | Some('%')) {
                    depth += 1;
                } else if (c == '}' || c == '%') && chars.peek() == Some(&'}') && depth > 0 {
                    depth -= 1;
                }
                if (c == '"' || c == '\'') && depth == 0 {
                    quote = Some(c);
                    cur.push(c);
                } else if c.is_whitespace() && depth == 0 {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                } else {
                    cur.push(c);
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        return s[1..s.len() - 1].to_string();
    }
    s.to_string()
}

/// Parses `k=v k2="v 2"` free-form text; with `raw`, words that are not recognised `k=v` form
/// `_raw_params`.
pub fn parse_free_form(text: &str, action: &str) -> Map<String, Json> {
    let short = short_action(action);
    let mut args = Map::new();
    if RAW_PARAM_ACTIONS.contains(&short) {
        if short == "command" || short == "shell" {
            let mut rest = Vec::new();
            for w in split_words(text) {
                match w.split_once('=') {
                    Some((k, v)) if COMMAND_KV.contains(&k) => {
                        args.insert(k.to_string(), Json::String(unquote(v)));
                    }
                    _ => rest.push(w),
                }
            }
            // Keep the text as written (quotes and spacing) except the pulled-out words.
            let raw = if rest.len() == split_words(text).len() { text.trim().to_string() } else { rest.join(" ") };
            args.insert("_raw_params".into(), Json::String(raw));
        } else {
            args.insert("_raw_params".into(), Json::String(text.trim().to_string()));
        }
        return args;
    }
    let mut rest = Vec::new();
    for w in split_words(text) {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                args.insert(k.to_string(), Json::String(unquote(v)));
            }
            _ => rest.push(w),
        }
    }
    if !rest.is_empty() {
        args.insert("_raw_params".into(), Json::String(rest.join(" ")));
    }
    args
}

/// Loads a playbook and everything it imports statically.
pub fn load_playbook(path: &Path, opts: &LoadOptions) -> Result<Playbook, LoadError> {
    let mut plays = Vec::new();
    load_playbook_into(path, None, opts, &mut plays, 0)?;
    Ok(Playbook { path: path.to_path_buf(), plays })
}

/// Loads a playbook from its text, as [`load_playbook`] does once it has read the file at
/// `path` (which names the playbook in errors and anchors its relative imports and roles;
/// those are still read from disk). The entry point for fuzzing the loader without a file
/// per input.
pub fn parse_playbook(text: &str, path: &Path, opts: &LoadOptions) -> Result<Playbook, LoadError> {
    let mut plays = Vec::new();
    load_playbook_into(path, Some(text), opts, &mut plays, 0)?;
    Ok(Playbook { path: path.to_path_buf(), plays })
}

/// Loads the plays of `path` (of `text` when given, else of the file) into `plays`.
fn load_playbook_into(path: &Path, text: Option<&str>, opts: &LoadOptions, plays: &mut Vec<Play>, depth: usize) -> Result<(), LoadError> {
    if depth > 20 {
        return Err(LoadError::new(format!("import_playbook nests too deeply at {}", path.display()), None));
    }
    let path = absolute(path);
    let (file, node) = match text {
        Some(text) => parse_yaml(&path, text)?,
        None => read_yaml(&path)?,
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let items = match &node.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => return Err(err(&file, &node, "Empty playbook, nothing to do")),
        _ => return Err(err(&file, &node, "A playbook must be a list of plays, got a mapping or a scalar instead")),
    };
    for item in items {
        let Some(entries) = map_entries(item) else {
            return Err(err(&file, item, "A play must be a mapping (with 'hosts'), or an 'import_playbook'"));
        };
        if let Some((_, target)) = entries.iter().find(|(k, _)| matches!(key_str(k).as_str(), "import_playbook" | "ansible.builtin.import_playbook")) {
            for (k, _) in entries {
                let k = key_str(k);
                if !matches!(k.as_str(), "import_playbook" | "ansible.builtin.import_playbook" | "name" | "vars" | "tags" | "when") {
                    return Err(err(&file, item, format!("'{k}' is not a valid attribute for an import_playbook")));
                }
            }
            let name = node_str(target).ok_or_else(|| err(&file, target, "import_playbook needs a file name"))?;
            let sub = resolve_rel(&dir, &name);
            if !sub.exists() {
                return Err(err(&file, target, format!("Unable to retrieve file contents: could not find or access '{}'", sub.display())));
            }
            load_playbook_into(&sub, None, opts, plays, depth + 1)?;
            continue;
        }
        plays.push(load_play(&file, item, entries, &dir, opts)?);
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()) }
}

fn resolve_rel(dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}

fn opt(entries: &[(Node, Node)], key: &str) -> Option<Json> {
    entries.iter().find(|(k, _)| key_str(k) == key).map(|(_, v)| v.to_json())
}

fn load_play(file: &Arc<PathBuf>, node: &Node, entries: &[(Node, Node)], dir: &Path, opts: &LoadOptions) -> Result<Play, LoadError> {
    for (k, _) in entries {
        let key = key_str(k);
        if !PLAY_KEYWORDS.contains(&key.as_str()) {
            return Err(err(file, k, format!("'{key}' is not a valid attribute for a Play")));
        }
    }
    let get = |key: &str| entries.iter().find(|(k, _)| key_str(k) == key).map(|(_, v)| v);
    let Some(hosts) = get("hosts") else {
        return Err(err(file, node, "the field 'hosts' is required but was not set"));
    };
    if get("vars_prompt").is_some_and(|n| !matches!(n.kind, NodeKind::Null)) {
        return Err(err(file, get("vars_prompt").unwrap(), "vars_prompt is not supported by airlock: pass the values with -e instead"));
    }
    let vars = match get("vars") {
        Some(n) => vars_map(file, n)?,
        None => Map::new(),
    };
    let mut static_vars = vars.clone();
    static_vars.extend(opts.extra_vars.clone());
    let mut ctx = Ctx { opts, playbook_dir: dir.to_path_buf(), static_vars, handlers: vec![], roles: vec![], placed: vec![], depth: 0 };
    let tags = match get("tags") {
        Some(n) => str_list(file, n, "tags")?,
        None => vec![],
    };
    let vars_files = match get("vars_files").map(|n| n.to_json()) {
        None | Some(Json::Null) => vec![],
        Some(Json::Array(a)) => a,
        Some(other) => vec![other],
    };
    let pre_tasks = match get("pre_tasks") {
        Some(n) => load_task_list(&mut ctx, file, n, None)?,
        None => vec![],
    };
    let mut tasks = Vec::new();
    if let Some(roles) = get("roles") {
        match &roles.kind {
            NodeKind::Null => {}
            NodeKind::Seq(items) => {
                for it in items {
                    tasks.extend(load_role_entry(&mut ctx, file, it)?.0);
                }
            }
            _ => return Err(err(file, roles, "roles must be a list")),
        }
    }
    if let Some(n) = get("tasks") {
        tasks.extend(load_task_list(&mut ctx, file, n, None)?);
    }
    let post_tasks = match get("post_tasks") {
        Some(n) => load_task_list(&mut ctx, file, n, None)?,
        None => vec![],
    };
    let mut handlers = std::mem::take(&mut ctx.handlers);
    if let Some(n) = get("handlers") {
        handlers.extend(load_task_list(&mut ctx, file, n, None)?);
    }
    let hosts_json = match hosts.to_json() {
        Json::Array(a) => Json::String(a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect::<Vec<_>>().join(",")),
        other => other,
    };
    let name = match get("name").and_then(node_str) {
        Some(n) => n,
        None => hosts_json.as_str().map(str::to_string).unwrap_or_default(),
    };
    Ok(Play {
        name,
        pos: pos(file, node.mark),
        hosts: hosts_json,
        connection: get("connection").and_then(node_str),
        gather_facts: opt(entries, "gather_facts"),
        vars: Arc::new(vars),
        vars_files,
        pre_tasks,
        tasks,
        post_tasks,
        handlers,
        roles: ctx.roles,
        tags,
        become_: opt(entries, "become"),
        become_user: opt(entries, "become_user"),
        check_mode: opt(entries, "check_mode"),
        diff: opt(entries, "diff"),
        environment: opt(entries, "environment"),
        ignore_errors: opt(entries, "ignore_errors"),
        any_errors_fatal: opt(entries, "any_errors_fatal"),
        force_handlers: opt(entries, "force_handlers"),
        serial: opt(entries, "serial"),
        dir: dir.to_path_buf(),
    })
}

fn load_task_list(ctx: &mut Ctx, file: &Arc<PathBuf>, node: &Node, role: Option<&Arc<Role>>) -> Result<Vec<Task>, LoadError> {
    match &node.kind {
        NodeKind::Null => Ok(vec![]),
        NodeKind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push(load_task(ctx, file, it, role)?);
            }
            Ok(out)
        }
        _ => Err(err(file, node, "A list of tasks was expected here, but got a mapping or a scalar instead")),
    }
}

fn empty_task(p: Pos, body: Body) -> Task {
    Task {
        name: None,
        pos: p,
        body,
        when: vec![],
        tags: vec![],
        vars: Arc::new(Map::new()),
        loop_: None,
        loop_control: LoopControl::default(),
        register: None,
        changed_when: None,
        failed_when: None,
        ignore_errors: None,
        until: None,
        retries: None,
        delay: None,
        notify: vec![],
        listen: vec![],
        check_mode: None,
        diff: None,
        no_log: None,
        become_: None,
        become_user: None,
        environment: None,
        delegate_to: None,
        run_once: None,
        any_errors_fatal: None,
        role: None,
        role_marker: false,
    }
}

fn load_task(ctx: &mut Ctx, file: &Arc<PathBuf>, node: &Node, role: Option<&Arc<Role>>) -> Result<Task, LoadError> {
    let Some(entries) = map_entries(node) else {
        return Err(err(file, node, "A task must be a mapping (e.g. '- name: x' then a module), got a scalar or a list"));
    };
    let mut task = empty_task(pos(file, node.mark), Body::Block { block: vec![], rescue: vec![], always: vec![] });
    task.role = role.cloned();
    let mut action: Option<(String, &Node, &Node)> = None;
    let mut extra_args: Option<Map<String, Json>> = None;
    let mut is_block = false;
    let mut block = (vec![], vec![], vec![]);
    for (k, v) in entries {
        let key = key_str(k);
        match key.as_str() {
            "name" => task.name = node_str(v),
            "when" => task.when = when_list(v),
            "tags" => task.tags = str_list(file, v, "tags")?,
            "vars" => task.vars = Arc::new(vars_map(file, v)?),
            "loop" => task.loop_ = Some(LoopSpec { kind: LoopKind::Loop, value: v.to_json() }),
            "loop_control" => {
                let m = match v.to_json() {
                    Json::Object(m) => m,
                    _ => return Err(err(file, v, "loop_control must be a mapping")),
                };
                for key in m.keys() {
                    if !matches!(key.as_str(), "loop_var" | "index_var" | "label" | "pause" | "extended" | "extended_allitems" | "break_when") {
                        return Err(err(file, v, format!("'{key}' is not a valid attribute for a LoopControl")));
                    }
                }
                task.loop_control = LoopControl {
                    loop_var: m.get("loop_var").and_then(|x| x.as_str()).map(str::to_string),
                    index_var: m.get("index_var").and_then(|x| x.as_str()).map(str::to_string),
                    label: m.get("label").cloned(),
                    pause: m.get("pause").cloned(),
                    extended: m.get("extended").cloned(),
                };
            }
            "register" => task.register = node_str(v),
            "changed_when" => task.changed_when = Some(v.to_json()),
            "failed_when" => task.failed_when = Some(v.to_json()),
            "ignore_errors" => task.ignore_errors = Some(v.to_json()),
            "until" => task.until = Some(v.to_json()),
            "retries" => task.retries = Some(v.to_json()),
            "delay" => task.delay = Some(v.to_json()),
            "notify" => task.notify = str_list(file, v, "notify")?,
            "listen" => task.listen = str_list(file, v, "listen")?,
            "check_mode" => task.check_mode = Some(v.to_json()),
            "diff" => task.diff = Some(v.to_json()),
            "no_log" => task.no_log = Some(v.to_json()),
            "become" => task.become_ = Some(v.to_json()),
            "become_user" => task.become_user = Some(v.to_json()),
            "environment" => task.environment = Some(v.to_json()),
            "delegate_to" => task.delegate_to = Some(v.to_json()),
            "run_once" => task.run_once = Some(v.to_json()),
            "any_errors_fatal" => task.any_errors_fatal = Some(v.to_json()),
            "args" => match v.to_json() {
                Json::Object(m) => extra_args = Some(m),
                _ => return Err(err(file, v, "args must be a mapping")),
            },
            "block" => {
                is_block = true;
                block.0 = load_task_list(ctx, file, v, role)?;
            }
            "rescue" => {
                is_block = true;
                block.1 = load_task_list(ctx, file, v, role)?;
            }
            "always" => {
                is_block = true;
                block.2 = load_task_list(ctx, file, v, role)?;
            }
            "action" | "local_action" => {
                // `action: module k=v` or `action: {module: x, ...}`
                match &v.kind {
                    NodeKind::Str(s) => {
                        let (m, rest) = s.trim().split_once(char::is_whitespace).unwrap_or((s.trim(), ""));
                        set_action(&mut action, file, k, m.to_string(), v, v)?;
                        let mut a = parse_free_form(rest, m);
                        if let Some(e) = extra_args.take() {
                            a.extend(e);
                        }
                        extra_args = Some(a);
                    }
                    NodeKind::Map(_) => {
                        let Json::Object(mut m) = v.to_json() else { unreachable!() };
                        let Some(Json::String(module)) = m.remove("module") else {
                            return Err(err(file, v, "action needs a 'module' key when given as a mapping"));
                        };
                        set_action(&mut action, file, k, module, v, v)?;
                        extra_args.get_or_insert_with(Map::new).extend(m);
                    }
                    _ => return Err(err(file, v, "action must be a string or a mapping")),
                }
                if key == "local_action" {
                    task.delegate_to = Some(Json::String("localhost".into()));
                }
            }
            other if other.starts_with("with_") => {
                let kind = match &other[5..] {
                    "items" => LoopKind::Items,
                    "list" => LoopKind::List,
                    "dict" => LoopKind::Dict,
                    "fileglob" => LoopKind::Fileglob,
                    "indexed_items" => LoopKind::IndexedItems,
                    "together" => LoopKind::Together,
                    "nested" | "cartesian" => LoopKind::Nested,
                    "sequence" => LoopKind::Sequence,
                    _ => {
                        return Err(err(
                            file,
                            k,
                            format!(
                                "'{other}' is not supported by airlock (supported: with_items, with_list, with_dict, with_fileglob, with_indexed_items, with_together, with_nested, with_sequence; or use loop)"
                            ),
                        ));
                    }
                };
                task.loop_ = Some(LoopSpec { kind, value: v.to_json() });
            }
            other if TASK_KEYWORDS.contains(&other) => {}
            other => {
                if !is_known_action(other) {
                    return Err(err(
                        file,
                        k,
                        format!("couldn't resolve module/action '{other}'. This often indicates a misspelling, missing collection, or incorrect module path."),
                    ));
                }
                set_action(&mut action, file, k, other.to_string(), k, v)?;
            }
        }
    }
    if is_block {
        if let Some((a, k, _)) = &action {
            return Err(err(file, k, format!("'{a}' cannot be used in a block; a block holds tasks under 'block:'")));
        }
        task.body = Body::Block { block: block.0, rescue: block.1, always: block.2 };
        return Ok(task);
    }
    let Some((name, _, value)) = action else {
        return Err(err(file, node, "no module/action detected in task."));
    };
    let mut args = match &value.kind {
        NodeKind::Null => Map::new(),
        NodeKind::Map(_) => match value.to_json() {
            Json::Object(m) => m,
            _ => unreachable!(),
        },
        NodeKind::Str(s) => parse_free_form(s, &name),
        _ => match value.to_json() {
            other @ (Json::Number(_) | Json::Bool(_)) => {
                let mut m = Map::new();
                m.insert("_raw_params".into(), Json::String(other.to_string()));
                m
            }
            _ => return Err(err(file, value, format!("the arguments of '{name}' must be a mapping or a string"))),
        },
    };
    if let Some(extra) = extra_args {
        for (k, v) in extra {
            args.entry(k).or_insert(v);
        }
    }
    let short = short_action(&name).to_string();
    match short.as_str() {
        "import_tasks" => return import_tasks(ctx, file, value, task, &args, role),
        "import_role" => return import_role(ctx, file, value, task, &args),
        "include" => return Err(err(file, node, "'include' was removed from Ansible; use include_tasks or import_tasks")),
        _ => {}
    }
    task.body = Body::Action { action: short, args };
    Ok(task)
}

fn set_action<'n>(
    slot: &mut Option<(String, &'n Node, &'n Node)>,
    file: &Arc<PathBuf>,
    key_node: &'n Node,
    name: String,
    _k: &'n Node,
    value: &'n Node,
) -> Result<(), LoadError> {
    if let Some((prev, _, _)) = slot {
        return Err(err(file, key_node, format!("conflicting action statements: {prev}, {name}")));
    }
    if !is_known_action(&name) {
        return Err(err(
            file,
            key_node,
            format!("couldn't resolve module/action '{name}'. This often indicates a misspelling, missing collection, or incorrect module path."),
        ));
    }
    *slot = Some((name, key_node, value));
    Ok(())
}

/// Templates a static import's file name with the vars known at load time.
fn static_name(ctx: &Ctx, file: &Arc<PathBuf>, node: &Node, name: &str) -> Result<String, LoadError> {
    if !airlock_jinja::is_template(name) {
        return Ok(name.to_string());
    }
    let templar = airlock_jinja::Templar::new();
    let vars = airlock_jinja::Vars::new(templar.clone(), vec![Arc::new(ctx.static_vars.clone())]);
    templar.render_str(name, &vars.ctx()).map_err(|e| {
        err(file, node, format!("could not template the name of a static import ({}); static imports only see play vars and extra vars: {}", name, e.msg))
    })
}

/// Where a task file named in `file` is: next to the including file, then in the role's
/// `tasks/`, then the playbook directory.
fn find_task_file(ctx: &Ctx, file: &Path, role: Option<&Arc<Role>>, name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let mut cands = Vec::new();
    if let Some(d) = file.parent() {
        cands.push(d.join(name));
    }
    if let Some(r) = role {
        cands.push(r.path.join("tasks").join(name));
    }
    cands.push(ctx.playbook_dir.join(name));
    cands.push(ctx.playbook_dir.join("tasks").join(name));
    cands.into_iter().find(|c| c.is_file())
}

fn import_tasks(
    ctx: &mut Ctx,
    file: &Arc<PathBuf>,
    node: &Node,
    mut task: Task,
    args: &Map<String, Json>,
    role: Option<&Arc<Role>>,
) -> Result<Task, LoadError> {
    let Some(name) = args.get("_raw_params").or_else(|| args.get("file")).and_then(|v| v.as_str()) else {
        return Err(err(file, node, "import_tasks needs a file name"));
    };
    let name = static_name(ctx, file, node, name)?;
    let Some(path) = find_task_file(ctx, file, role, &name) else {
        return Err(err(
            file,
            node,
            format!("Could not find or access '{name}' (import_tasks looks next to the including file, in the role's tasks/ and in the playbook directory)"),
        ));
    };
    ctx.depth += 1;
    if ctx.depth > 50 {
        return Err(err(file, node, "import_tasks nests too deeply (an import loop?)"));
    }
    let (sub_file, sub) = read_yaml(&path)?;
    let tasks = load_task_list(ctx, &sub_file, &sub, role)?;
    ctx.depth -= 1;
    task.body = Body::Block { block: tasks, rescue: vec![], always: vec![] };
    Ok(task)
}

fn import_role(ctx: &mut Ctx, file: &Arc<PathBuf>, node: &Node, mut task: Task, args: &Map<String, Json>) -> Result<Task, LoadError> {
    let req = role_request_from_args(file, node, args)?;
    let loaded = load_role_inner(ctx, &req, Some((file, node)))?;
    ctx.handlers.extend(loaded.handlers);
    let mut block = loaded.dep_blocks;
    block.extend(loaded.tasks);
    task.body = Body::Block { block, rescue: vec![], always: vec![] };
    task.role_marker = true;
    Ok(task)
}

/// Reads `include_role`/`import_role` arguments.
pub fn role_request_from_args(file: &Arc<PathBuf>, node: &Node, args: &Map<String, Json>) -> Result<RoleRequest, LoadError> {
    let s = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let Some(name) = s("name").or_else(|| s("role")) else {
        return Err(err(file, node, "'name' is a required field for import_role/include_role"));
    };
    for k in args.keys() {
        if !matches!(
            k.as_str(),
            "name" | "role" | "tasks_from" | "vars_from" | "defaults_from" | "handlers_from" | "public" | "apply" | "allow_duplicates" | "rolespec_validate"
        ) {
            return Err(err(file, node, format!("Invalid options for import_role/include_role: {k}")));
        }
    }
    Ok(RoleRequest {
        name,
        tasks_from: s("tasks_from"),
        vars_from: s("vars_from"),
        defaults_from: s("defaults_from"),
        handlers_from: s("handlers_from"),
        params: Map::new(),
    })
}

/// Loads one `roles:` (or meta dependency) entry: the block to run, unless it is a duplicate,
/// and the role.
fn load_role_entry(ctx: &mut Ctx, file: &Arc<PathBuf>, node: &Node) -> Result<(Option<Task>, Arc<Role>), LoadError> {
    let mut req = RoleRequest::default();
    let mut task = empty_task(pos(file, node.mark), Body::Block { block: vec![], rescue: vec![], always: vec![] });
    match &node.kind {
        NodeKind::Str(s) => req.name = s.clone(),
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                let key = key_str(k);
                match key.as_str() {
                    "role" | "name" => req.name = node_str(v).ok_or_else(|| err(file, v, "role name must be a string"))?,
                    "tags" => task.tags = str_list(file, v, "tags")?,
                    "when" => task.when = when_list(v),
                    "vars" => req.params.extend(vars_map(file, v)?),
                    "become" => task.become_ = Some(v.to_json()),
                    "become_user" => task.become_user = Some(v.to_json()),
                    "environment" => task.environment = Some(v.to_json()),
                    "ignore_errors" => task.ignore_errors = Some(v.to_json()),
                    "check_mode" => task.check_mode = Some(v.to_json()),
                    "diff" => task.diff = Some(v.to_json()),
                    "no_log" => task.no_log = Some(v.to_json()),
                    "delegate_to" => task.delegate_to = Some(v.to_json()),
                    "any_errors_fatal" => task.any_errors_fatal = Some(v.to_json()),
                    "tasks_from" => req.tasks_from = node_str(v),
                    "vars_from" => req.vars_from = node_str(v),
                    "defaults_from" => req.defaults_from = node_str(v),
                    "handlers_from" => req.handlers_from = node_str(v),
                    other => {
                        debug_assert!(!ROLE_ENTRY_KEYWORDS.contains(&other));
                        req.params.insert(other.to_string(), v.to_json());
                    }
                }
            }
            if req.name.is_empty() {
                return Err(err(file, node, "role definitions must contain a role name"));
            }
        }
        _ => return Err(err(file, node, "a role entry must be a name or a mapping with 'role'")),
    }
    let loaded = load_role_inner(ctx, &req, Some((file, node)))?;
    let dup = ctx.placed.iter().any(|(n, p)| *n == req.name && *p == req.params);
    ctx.handlers.extend(loaded.handlers);
    if dup && !loaded.allow_duplicates {
        return Ok((None, loaded.role));
    }
    ctx.placed.push((req.name.clone(), req.params.clone()));
    let mut block = loaded.dep_blocks;
    block.extend(loaded.tasks);
    task.body = Body::Block { block, rescue: vec![], always: vec![] };
    task.role = None;
    task.role_marker = true;
    task.name = Some(req.name.clone());
    Ok((Some(task), loaded.role))
}

/// A role that is on no folder of the search path.
#[derive(Debug, thiserror::Error)]
#[error("the role '{name}' was not found in {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))]
pub struct RoleNotFound {
    pub name: String,
    /// The folders looked in, in order.
    pub searched: Vec<PathBuf>,
}

/// Finds a role's directory on the search path.
pub fn find_role(name: &str, playbook_dir: &Path, roles_path: &[PathBuf]) -> Result<PathBuf, RoleNotFound> {
    let p = Path::new(name);
    if p.is_absolute() || name.contains('/') {
        let cand = resolve_rel(playbook_dir, name);
        if cand.is_dir() {
            return Ok(cand);
        }
    }
    let search = super::role_search_path(playbook_dir, roles_path);
    for dir in &search {
        let cand = dir.join(name);
        if cand.is_dir()
            && (cand.join("tasks").is_dir()
                || cand.join("meta").is_dir()
                || cand.join("defaults").is_dir()
                || cand.join("handlers").is_dir()
                || cand.join("vars").is_dir())
        {
            return Ok(cand);
        }
    }
    Err(RoleNotFound { name: name.to_string(), searched: search })
}

/// `main.yml`, `main.yaml`, `main.json` or `main` (or another base name) in a role folder.
fn role_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let cands = if Path::new(base).extension().is_some() {
        vec![dir.join(base)]
    } else {
        vec![dir.join(format!("{base}.yml")), dir.join(format!("{base}.yaml")), dir.join(format!("{base}.json")), dir.join(base)]
    };
    cands.into_iter().find(|c| c.is_file())
}

fn load_role_inner(ctx: &mut Ctx, req: &RoleRequest, at: Option<(&Arc<PathBuf>, &Node)>) -> Result<LoadedRole, LoadError> {
    let at_pos = at.map(|(f, n)| pos(f, n.mark));
    let path = find_role(&req.name, &ctx.playbook_dir, &ctx.opts.roles_path).map_err(|e| LoadError::new(e.to_string(), at_pos.clone()))?;
    ctx.depth += 1;
    if ctx.depth > 30 {
        return Err(LoadError::new(format!("role dependencies nest too deeply at role '{}' (a dependency loop?)", req.name), at_pos));
    }
    // The file read (if any) and its variables.
    type VarsOf = (Option<Arc<Path>>, Map<String, Json>);
    let load_vars = |sub: &str, base: Option<&String>| -> Result<VarsOf, LoadError> {
        let base = base.map(String::as_str).unwrap_or("main");
        match role_file(&path.join(sub), base) {
            Some(f) => Ok((Some(Arc::from(f.as_path())), read_vars_file(&f)?)),
            None if base != "main" => Err(LoadError::new(format!("Could not find specified file in role: {sub}/{base}"), at_pos.clone())),
            None => Ok((None, Map::new())),
        }
    };
    let (defaults_file, defaults) = load_vars("defaults", req.defaults_from.as_ref())?;
    let (vars_file, vars) = load_vars("vars", req.vars_from.as_ref())?;
    // meta/main.yml: dependencies and allow_duplicates.
    let mut deps = Vec::new();
    let mut dep_blocks = Vec::new();
    let mut allow_duplicates = false;
    if let Some(meta) = role_file(&path.join("meta"), "main") {
        let (mfile, mnode) = read_yaml(&meta)?;
        if let Some(entries) = map_entries(&mnode) {
            for (k, v) in entries {
                match key_str(k).as_str() {
                    "allow_duplicates" => allow_duplicates = matches!(v.kind, NodeKind::Bool(true)),
                    "dependencies" => {
                        if let NodeKind::Seq(items) = &v.kind {
                            for it in items {
                                let (block, dep) = load_role_entry(ctx, &mfile, it)?;
                                deps.push(dep);
                                dep_blocks.extend(block);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let role = Arc::new(Role {
        name: Path::new(&req.name).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| req.name.clone()),
        path: path.clone(),
        defaults: Arc::new(defaults),
        vars: Arc::new(vars),
        defaults_file,
        vars_file,
        params: Arc::new(req.params.clone()),
        deps,
    });
    ctx.roles.push(role.clone());
    let tasks_base = req.tasks_from.clone().unwrap_or_else(|| "main".into());
    let tasks = match role_file(&path.join("tasks"), &tasks_base) {
        Some(f) => {
            let (tfile, tnode) = read_yaml(&f)?;
            load_task_list(ctx, &tfile, &tnode, Some(&role))?
        }
        None if req.tasks_from.is_some() => {
            return Err(LoadError::new(
                format!("Could not find specified file in role: tasks/{tasks_base} (role '{}' at {})", req.name, path.display()),
                at_pos,
            ));
        }
        None => vec![],
    };
    let handlers_base = req.handlers_from.clone().unwrap_or_else(|| "main".into());
    let handlers = match role_file(&path.join("handlers"), &handlers_base) {
        Some(f) => {
            let (hfile, hnode) = read_yaml(&f)?;
            let mut sub = Ctx {
                opts: ctx.opts,
                playbook_dir: ctx.playbook_dir.clone(),
                static_vars: ctx.static_vars.clone(),
                handlers: vec![],
                roles: vec![],
                placed: vec![],
                depth: ctx.depth,
            };
            load_task_list(&mut sub, &hfile, &hnode, Some(&role))?
        }
        None => vec![],
    };
    ctx.depth -= 1;
    Ok(LoadedRole { role, tasks, handlers, dep_blocks, allow_duplicates })
}

/// A role loaded at run time: the role, its tasks, and its handlers.
pub type RoleTasks = (Arc<Role>, Vec<Task>, Vec<Task>);

/// Loads a role at run time (`include_role`): its tasks, handlers and dependency blocks.
pub fn load_role(req: &RoleRequest, playbook_dir: &Path, opts: &LoadOptions) -> Result<RoleTasks, LoadError> {
    let mut ctx =
        Ctx { opts, playbook_dir: playbook_dir.to_path_buf(), static_vars: opts.extra_vars.clone(), handlers: vec![], roles: vec![], placed: vec![], depth: 0 };
    let loaded = load_role_inner(&mut ctx, req, None)?;
    let mut tasks = loaded.dep_blocks;
    tasks.extend(loaded.tasks);
    let mut handlers = ctx.handlers;
    handlers.extend(loaded.handlers);
    Ok((loaded.role, tasks, handlers))
}

/// Loads a task file at run time (`include_tasks`), found as `import_tasks` finds files.
/// Gives the file's path with its tasks.
pub fn load_task_file(
    name: &str,
    including_file: &Path,
    role: Option<&Arc<Role>>,
    playbook_dir: &Path,
    opts: &LoadOptions,
) -> Result<(PathBuf, Vec<Task>), LoadError> {
    let mut ctx =
        Ctx { opts, playbook_dir: playbook_dir.to_path_buf(), static_vars: opts.extra_vars.clone(), handlers: vec![], roles: vec![], placed: vec![], depth: 0 };
    let Some(path) = find_task_file(&ctx, including_file, role, name) else {
        return Err(LoadError::new(
            format!("Could not find or access '{name}' (looked next to {}, in the role's tasks/ and in the playbook directory)", including_file.display()),
            None,
        ));
    };
    let (file, node) = read_yaml(&path)?;
    Ok((path.clone(), load_task_list(&mut ctx, &file, &node, role)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_form_kv_and_raw() {
        let a = parse_free_form("path=/tmp/x state=directory mode='0755'", "file");
        assert_eq!(a["path"], "/tmp/x");
        assert_eq!(a["mode"], "0755");
        let c = parse_free_form("echo 'a b' > out chdir=/tmp creates=/x", "command");
        assert_eq!(c["_raw_params"], "echo 'a b' > out");
        assert_eq!(c["chdir"], "/tmp");
        let d = parse_free_form("msg=\"hello {{ a }} world\"", "debug");
        assert_eq!(d["msg"], "hello {{ a }} world");
        let t = parse_free_form("echo {{ x | default('a b') }}", "shell");
        assert_eq!(t["_raw_params"], "echo {{ x | default('a b') }}");
    }

    #[test]
    fn playbooks_parse_from_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yml");
        let pb = parse_playbook("- hosts: all\n  tasks:\n    - debug: msg=hi\n", &path, &LoadOptions::default()).unwrap();
        assert_eq!(pb.plays.len(), 1);
        assert_eq!(pb.path, path);
        let e = parse_playbook("- hosts: all\n  bogus: 1\n", &path, &LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("'bogus' is not a valid attribute for a Play"), "{e}");
        assert!(parse_playbook("", &path, &LoadOptions::default()).unwrap_err().to_string().contains("Empty playbook"));
    }
}

//! The playbook language: the model (plays, blocks, tasks, roles) and its loading from YAML,
//! with errors that name file:line:column and show the offending line.

mod load;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

pub use load::{
    LoadOptions, RoleRequest, find_role, is_known_action, load_playbook, load_role, load_task_file, parse_playbook, read_vars_file, role_request_from_args,
    short_action,
};

/// Where something was written.
#[derive(Clone, Debug)]
pub struct Pos {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A load error: what is wrong, where, and the line it is on.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub msg: String,
    pub pos: Option<Pos>,
}

impl LoadError {
    pub fn new(msg: impl Into<String>, pos: Option<Pos>) -> Self {
        Self { msg: msg.into(), pos }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.msg)?;
        if let Some(pos) = &self.pos {
            write!(
                f,
                "\n\nThe error appears to be in '{}': line {}, column {}, but may\nbe elsewhere in the file depending on the exact syntax problem.",
                pos.file.display(),
                pos.line,
                pos.col
            )?;
            if let Ok(text) = std::fs::read_to_string(pos.file.as_path()) {
                let lines: Vec<&str> = text.lines().collect();
                if pos.line >= 1 && pos.line <= lines.len() {
                    write!(f, "\n\nThe offending line appears to be:\n\n")?;
                    if pos.line >= 2 {
                        writeln!(f, "{}", lines[pos.line - 2])?;
                    }
                    writeln!(f, "{}", lines[pos.line - 1])?;
                    write!(f, "{}^ here", " ".repeat(pos.col.saturating_sub(1)))?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A whole playbook: its plays in order, `import_playbook` already expanded.
#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// A role as loaded for one use: its variables and where it lives.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    pub defaults: Arc<Map<String, Json>>,
    pub vars: Arc<Map<String, Json>>,
    /// The files `defaults` and `vars` were read from (`defaults/main.yml`, or the
    /// `defaults_from`/`vars_from` file), when there was one.
    pub defaults_file: Option<Arc<Path>>,
    pub vars_file: Option<Arc<Path>>,
    /// Parameters given where the role is used (`roles:` entry keys, include_role vars).
    pub params: Arc<Map<String, Json>>,
    /// Roles this one depends on (meta/main.yml), already loaded; their variables are visible
    /// to this role's tasks.
    pub deps: Vec<Arc<Role>>,
}

/// Loop sources: `loop:` and the `with_*` forms Ansible keeps.
#[derive(Clone, Debug)]
pub enum LoopKind {
    Loop,
    Items,
    List,
    Dict,
    Fileglob,
    IndexedItems,
    Together,
    Nested,
    Sequence,
}

/// A task's loop.
#[derive(Clone, Debug)]
pub struct LoopSpec {
    pub kind: LoopKind,
    pub value: Json,
}

/// `loop_control` options.
#[derive(Clone, Debug, Default)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<Json>,
    pub pause: Option<Json>,
    pub extended: Option<Json>,
}

/// What a task does.
#[derive(Clone, Debug)]
pub enum Body {
    /// A module or action, with its arguments (not yet templated). Free-form text is in
    /// `_raw_params`.
    Action { action: String, args: Map<String, Json> },
    /// `block` with `rescue` and `always`.
    Block { block: Vec<Task>, rescue: Vec<Task>, always: Vec<Task> },
}

/// A task, handler or block, with the keywords that apply to it.
#[derive(Clone, Debug)]
pub struct Task {
    pub name: Option<String>,
    pub pos: Pos,
    pub body: Body,
    pub when: Vec<Json>,
    pub tags: Vec<String>,
    pub vars: Arc<Map<String, Json>>,
    pub loop_: Option<LoopSpec>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub changed_when: Option<Json>,
    pub failed_when: Option<Json>,
    pub ignore_errors: Option<Json>,
    pub until: Option<Json>,
    pub retries: Option<Json>,
    pub delay: Option<Json>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    pub check_mode: Option<Json>,
    pub diff: Option<Json>,
    pub no_log: Option<Json>,
    pub become_: Option<Json>,
    pub become_user: Option<Json>,
    pub environment: Option<Json>,
    pub delegate_to: Option<Json>,
    pub run_once: Option<Json>,
    pub any_errors_fatal: Option<Json>,
    /// The role whose task this is, for its variables, `role_path` and file lookups.
    pub role: Option<Arc<Role>>,
    /// Set on the block a `roles:` entry or `import_role` makes: the role is "run" here.
    pub role_marker: bool,
}

impl Task {
    /// What Ansible shows in `TASK [...]`: the name, else `role : action`.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.body) {
            (Some(n), _) => n.clone(),
            (None, Body::Action { action, .. }) => action.clone(),
            (None, Body::Block { .. }) => "block".to_string(),
        };
        match &self.role {
            Some(r) => format!("{} : {}", r.name, base),
            None => base,
        }
    }

    /// The action name when this is an action.
    pub fn action(&self) -> Option<&str> {
        match &self.body {
            Body::Action { action, .. } => Some(action),
            Body::Block { .. } => None,
        }
    }
}

/// One play, with its roles already expanded into blocks at the head of `tasks`.
#[derive(Debug)]
pub struct Play {
    pub name: String,
    pub pos: Pos,
    pub hosts: Json,
    pub connection: Option<String>,
    pub gather_facts: Option<Json>,
    pub vars: Arc<Map<String, Json>>,
    pub vars_files: Vec<Json>,
    pub pre_tasks: Vec<Task>,
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Every role this play uses statically (`roles:`, `import_role`), in load order.
    pub roles: Vec<Arc<Role>>,
    pub tags: Vec<String>,
    pub become_: Option<Json>,
    pub become_user: Option<Json>,
    pub check_mode: Option<Json>,
    pub diff: Option<Json>,
    pub environment: Option<Json>,
    pub ignore_errors: Option<Json>,
    pub any_errors_fatal: Option<Json>,
    pub force_handlers: Option<Json>,
    pub serial: Option<Json>,
    pub dir: PathBuf,
}

/// Names the play's own `roles/` folder, the configured roles path and the shipped roles, in
/// that order, with the playbook directory itself last (as Ansible also looks there).
pub fn role_search_path(playbook_dir: &Path, roles_path: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![playbook_dir.join("roles")];
    out.extend(roles_path.iter().cloned());
    out.extend(shipped_roles_dirs());
    out.push(playbook_dir.to_path_buf());
    out
}

/// Where the roles shipped with airlock are: `AIRLOCK_SHIPPED_ROLES`, then `roles/` beside the
/// installed binary's `share/airlock`, then the source tree's `roles/`.
pub fn shipped_roles_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(p) = std::env::var("AIRLOCK_SHIPPED_ROLES") {
        out.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        out.push(prefix.join("share/airlock/roles"));
    }
    // This crate sits at crates/runner of the workspace, whose root holds roles/.
    out.push(crate::config::normalize_lexically(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../roles")));
    out
}

/// Parses `k=v k2="v 2"` text (as `-e` and free-form module arguments take it); words that are
/// not `k=v` end up in `_raw_params`.
pub fn parse_kv(text: &str) -> serde_json::Map<String, Json> {
    load::parse_free_form(text, "set_fact")
}

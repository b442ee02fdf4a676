//! Inventories as Ansible reads them: a comma list (`localhost,`), INI and YAML files and
//! directories, groups with `children`, inline host variables, `group_vars/` and `host_vars/`.
//!
//! The rules follow ansible-core 2.19 (`inventory/data.py`, `inventory/manager.py`,
//! `plugins/inventory/{host_list,ini,yaml}.py`, `plugins/vars/host_group_vars.py`):
//!
//! * INI values are read with Python's `ast.literal_eval` rules (`x=1` is the int 1, `x=yes` the
//!   string "yes", `x=True` a boolean, `x=[1, 2]` a list); host lines are split like
//!   `shlex.split(line, comments=True)` first, so quotes are removed and `#` ends the line.
//! * Group names are kept as written, `[web-servers]` included (Ansible's default
//!   `TRANSFORM_INVALID_GROUP_CHARS=never`); such names only give a warning.
//! * A host that ends up in no group but `all` is put in `ungrouped`; a host in `ungrouped` and
//!   some other group is taken out of `ungrouped`. Every group without a parent is a child of `all`.
//! * Group variables apply lowest first: `all`, then the host's other groups sorted by depth
//!   (parents before children), `ansible_group_priority` and name.

mod addresses;
mod ini;
mod patterns;
mod pylit;
mod sources;
#[cfg(test)]
mod tests;
mod vars;
mod yaml;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use crate::vars::Level;

pub use ini::parse_ini_value;
pub use vars::load_vars_file;

/// The names Ansible treats as the local machine (`C.LOCALHOST`). A pattern that is one of these
/// and matches nothing else selects the implicit localhost.
pub const LOCALHOST_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// File extensions a YAML inventory or a vars file may have (`yaml_valid_extensions`,
/// `YAML_FILENAME_EXTENSIONS`).
const YAML_EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// Extensions skipped when a directory is the inventory source (`INVENTORY_IGNORE_EXTS`).
const INVENTORY_IGNORE_EXTS: [&str; 12] = [".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"];

/// One host and the variables set on it directly (inline or in the inventory's host entry).
///
/// As in Ansible, `vars` also holds `ansible_port` when the host was written `name:port`, and
/// `inventory_file` / `inventory_dir` of the first source that named the host (`ansible-inventory
/// --list` hides these two).
#[derive(Clone, Debug, Default)]
pub struct Host {
    pub name: String,
    pub vars: Map<String, Value>,
    /// The groups whose `hosts` list this host, in the order it joined them: the reverse of
    /// [`Group::hosts`], so membership is found without scanning every group's hosts.
    groups: Vec<String>,
}

/// One group: its own variables, direct hosts and child groups.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: String,
    pub vars: Map<String, Value>,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
}

/// Variables from one source, with a label naming where they came from (for errors and
/// `--list-vars`): a file path (relative to the working directory when below it, e.g.
/// `group_vars/all.yml`), `inventory (group web)`, `inventory (host web1)` or
/// `implicit localhost`.
#[derive(Clone, Debug)]
pub struct VarSource {
    /// Where these variables stand in Ansible's precedence.
    pub level: Level,
    pub label: String,
    /// The `group_vars/` or `host_vars/` file they were read from.
    pub file: Option<PathBuf>,
    pub vars: Map<String, Value>,
}

/// The hosts and groups of a run. `all` and `ungrouped` always exist; `localhost` is implicit
/// (matched by name, not by `all`) when no inventory lists it.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    /// The sources that were read, in order: absolute paths of files and directories (not
    /// resolved through symlinks), and comma lists as given.
    pub sources: Vec<String>,
    /// `ansible_group_priority` of the groups that set it (Ansible's default is 1). It orders
    /// group variables and is not itself a variable.
    pub group_priority: HashMap<String, i64>,
    /// Non-fatal problems met while loading, worded as Ansible's warnings.
    pub warnings: Vec<String>,
    /// Parsed `group_vars/` and `host_vars/` files, shared between clones.
    pub vars_cache: VarsCache,
}

/// Why an inventory cannot be loaded or a host pattern cannot be used, naming the file and the
/// line where one is known.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A line of an INI inventory.
    #[error("{path}:{line}: {problem}")]
    Line { path: String, line: usize, problem: String },
    /// YAML that does not parse.
    #[error("{path}:{line}:{col}: {message}")]
    Syntax { path: String, line: usize, col: usize, message: String },
    /// A source as a whole: unreadable, not UTF-8, a format airlock does not read, or a YAML
    /// inventory whose structure is wrong.
    #[error("{source_name}: {problem}")]
    Source { source_name: String, problem: String },
    /// A `host1,host2` list given as the inventory.
    #[error("Invalid data from string, could not parse: {0}")]
    HostList(String),
    /// A `group_vars/` or `host_vars/` file (the message names it).
    #[error("{0}")]
    VarsFile(String),
    /// A host pattern of a play or `--limit` with a subscript no host matches.
    #[error("No hosts matched the subscripted pattern '{0}'")]
    NoSubscriptMatch(String),
    /// A host pattern that is not a valid regular expression or glob.
    #[error("Invalid host list pattern: {0}")]
    Pattern(String),
}

/// A cache of parsed `group_vars/<name>` and `host_vars/<name>` files, keyed by directory and
/// name. Ansible caches these for the whole run too.
#[derive(Clone, Debug, Default)]
pub struct VarsCache(Arc<Mutex<HashMap<(PathBuf, String), EntityVars>>>);

/// Variables files, each non-empty one with its variables.
type VarsFiles = Vec<(PathBuf, Map<String, Value>)>;

/// The parsed files of one `group_vars/<name>` or `host_vars/<name>`, or the error reading them.
type EntityVars = Result<Arc<VarsFiles>, String>;

/// A parsed INI host line: the hosts, the port, the variables.
type HostLine = (Vec<String>, Option<i64>, Vec<(String, Value)>);

impl Inventory {
    /// An inventory with only the `all` and `ungrouped` groups (`ungrouped` a child of `all`).
    pub fn new() -> Inventory {
        let mut inv = Inventory::default();
        inv.ensure_base_groups();
        inv
    }

    /// Loads every `-i` source in order (files, directories, comma lists). `None` of them means
    /// an empty inventory with only the implicit localhost.
    ///
    /// A source that contains a comma and is not an existing path is a host list. A directory is
    /// read file by file in sorted order (skipping hidden files, `group_vars`, `host_vars` and the
    /// extensions of `INVENTORY_IGNORE_EXTS`). A file is YAML when its extension is `.yml`,
    /// `.yaml` or `.json`; without an extension it is YAML when it parses to a mapping and INI
    /// otherwise; anything else is INI. A source that does not exist gives a warning, as in Ansible
    /// (silently for the default `/etc/ansible/hosts`); unlike Ansible, which only warns, a source
    /// that cannot be parsed is an error naming the file and line.
    ///
    /// `group_vars/` and `host_vars/` next to the sources are read here for every group and host,
    /// so their errors surface at load time.
    pub fn load(sources: &[String]) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::new();
        let mut parsed = false;
        for source in sources {
            if source.is_empty() {
                continue;
            }
            if source.contains(',') && !Path::new(source).exists() {
                inv.sources.push(source.clone());
                inv.parse_host_list(source)?;
                parsed = true;
                continue;
            }
            let path = unfrack_path(source);
            if !path.exists() {
                // Ansible warns and goes on (`-i localhost` still gives the implicit localhost)
                if path != Path::new("/etc/ansible/hosts") {
                    inv.warnings.push(format!("Unable to parse {} as an inventory source", path.display()));
                }
                continue;
            }
            inv.sources.push(path.to_string_lossy().into_owned());
            inv.parse_source(&path)?;
            parsed = true;
        }
        if !parsed && sources.iter().any(|s| !s.is_empty() && s != "/etc/ansible/hosts") {
            inv.warnings.push("No inventory was parsed, only implicit localhost is available".to_string());
        }
        inv.reconcile();
        inv.preload_inventory_vars()?;
        Ok(inv)
    }

    /// The names of the groups a host belongs to (`group_names`), sorted, without `all`.
    /// `ungrouped` is included for hosts in no other group, as in Ansible; the implicit
    /// localhost has none.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self.host_groups(host).into_iter().filter(|g| g != "all").collect();
        names.sort();
        names
    }

    /// Every group with its hosts (`groups` magic variable), `all` included.
    pub fn groups_var(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for name in self.groups.keys() {
            let hosts = self.group_hosts(name).into_iter().map(Value::String).collect();
            out.insert(name.clone(), Value::Array(hosts));
        }
        out
    }

    /// Directories the inventory came from (for `inventory_dir`).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in &self.sources {
            let p = Path::new(s);
            if !p.is_absolute() || (s.contains(',') && !p.exists()) {
                continue; // a host list
            }
            let d = if p.is_dir() { p.to_path_buf() } else { p.parent().map(Path::to_path_buf).unwrap_or_default() };
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// Whether `host` is served by the implicit localhost: not in the inventory, and one of
    /// [`LOCALHOST_NAMES`].
    pub fn is_implicit_localhost(&self, host: &str) -> bool {
        !self.hosts.contains_key(host) && LOCALHOST_NAMES.contains(&host)
    }

    /// The hosts of a group and of its descendants, each once, in Ansible's order (the group's
    /// own hosts, then its children's, breadth first). Empty for an unknown group.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for g in self.descendants_ordered(group) {
            if let Some(grp) = self.groups.get(g) {
                for h in &grp.hosts {
                    if seen.insert(h.as_str()) {
                        out.push(h.clone());
                    }
                }
            }
        }
        out
    }

    /// Every group a host is in, directly or through child groups, `all` included (for a host
    /// of the inventory), in no particular order.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        if !self.hosts.contains_key(host) {
            return Vec::new();
        }
        let parents = self.parents_map();
        let mut out: Vec<String> = Vec::new();
        // The host's own groups in inventory order, as walking every group's hosts found them.
        let mut stack: Vec<&str> = self.hosts[host].groups.iter().map(String::as_str).collect();
        stack.sort_by_key(|g| self.groups.get_index_of(*g));
        let mut seen = HashSet::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            out.push(g.to_string());
            if let Some(ps) = parents.get(g) {
                stack.extend(ps.iter().copied());
            }
        }
        if !seen.contains("all") && self.groups.contains_key("all") {
            out.push("all".to_string());
        }
        out
    }

    // ----- building -----

    fn ensure_base_groups(&mut self) {
        for g in ["all", "ungrouped"] {
            if !self.groups.contains_key(g) {
                self.groups.insert(g.to_string(), Group { name: g.to_string(), ..Group::default() });
            }
        }
        let all = self.groups.get_mut("all").expect("all");
        if !all.children.iter().any(|c| c == "ungrouped") {
            all.children.push("ungrouped".to_string());
        }
    }

    fn add_group(&mut self, name: &str) -> Result<String, String> {
        if name.is_empty() {
            return Err(format!("Invalid empty/false group name provided: {name}"));
        }
        if !self.groups.contains_key(name) {
            if INVALID_VARIABLE_CHARS.is_match(name) {
                let w = "Invalid characters were found in group names but not replaced, use -vvvv to see details";
                if !self.warnings.iter().any(|x| x == w) {
                    self.warnings.push(w.to_string());
                }
            }
            self.groups.insert(name.to_string(), Group { name: name.to_string(), ..Group::default() });
        }
        Ok(name.to_string())
    }

    /// Ansible's `InventoryData.add_host`: a new host gets `ansible_port` (when given) and
    /// `inventory_file` / `inventory_dir`; the port of a host seen before is ignored.
    fn add_host(&mut self, name: &str, group: Option<&str>, port: Option<i64>, source: Option<&str>) -> Result<(), String> {
        if name.is_empty() {
            return Err("Invalid empty host name provided: ".to_string());
        }
        if let Some(g) = group
            && !self.groups.contains_key(g)
        {
            return Err(format!("Could not find group {g} in inventory"));
        }
        if !self.hosts.contains_key(name) {
            let mut vars = Map::new();
            if let Some(p) = port
                && p != 0
            {
                vars.insert("ansible_port".into(), Value::from(p));
            }
            match source {
                Some(src) => {
                    vars.insert("inventory_file".into(), Value::String(src.to_string()));
                    let dir = basedir(src);
                    vars.insert("inventory_dir".into(), dir.map(Value::String).unwrap_or(Value::Null));
                }
                None => {
                    vars.insert("inventory_file".into(), Value::Null);
                    vars.insert("inventory_dir".into(), Value::Null);
                }
            }
            self.hosts.insert(name.to_string(), Host { name: name.to_string(), vars, groups: Vec::new() });
        }
        if let Some(g) = group {
            self.add_member(g, name);
        }
        Ok(())
    }

    /// Lists the inventory host `host` in the existing group `group`, once.
    fn add_member(&mut self, group: &str, host: &str) {
        let (Some(g), Some(h)) = (self.groups.get_mut(group), self.hosts.get_mut(host)) else { return };
        if h.groups.iter().any(|name| name == group) {
            return;
        }
        h.groups.push(group.to_string());
        g.hosts.push(host.to_string());
    }

    fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), value);
        }
    }

    fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), String> {
        if key == "ansible_group_priority" {
            let p = python_int(&value).ok_or_else(|| format!("invalid ansible_group_priority for group {group}: {value}"))?;
            self.group_priority.insert(group.to_string(), p);
            return Ok(());
        }
        match self.groups.get_mut(group) {
            Some(g) => {
                g.vars.insert(key.to_string(), value);
                Ok(())
            }
            None => Err(format!("Could not identify group or host named {group}")),
        }
    }

    /// Makes `child` (a group, or else a host) a member of `group`, refusing loops.
    fn add_child(&mut self, group: &str, child: &str) -> Result<(), String> {
        if !self.groups.contains_key(group) {
            return Err(format!("{group} is not a known group"));
        }
        if self.groups.contains_key(child) {
            if group == child {
                return Err(format!("can't add group {group} to itself"));
            }
            if self.groups[group].children.iter().any(|c| c == child) {
                return Ok(());
            }
            // `child` must not be an ancestor of `group`: `group` must not be below `child`.
            if self.descendants_ordered(child).contains(&group) {
                return Err(format!("Adding group '{child}' as child to '{group}' creates a recursive dependency loop."));
            }
            self.groups.get_mut(group).expect("checked").children.push(child.to_string());
            Ok(())
        } else if self.hosts.contains_key(child) {
            self.add_member(group, child);
            Ok(())
        } else {
            Err(format!("{child} is not a known host nor group"))
        }
    }

    /// Ansible's `reconcile_inventory`: top-level groups become children of `all`; hosts in no
    /// group go to `ungrouped`, hosts in another group leave it.
    fn reconcile(&mut self) {
        self.ensure_base_groups();
        let parents = self.parents_map_owned();
        let orphans: Vec<String> =
            self.groups.keys().filter(|g| g.as_str() != "all" && parents.get(g.as_str()).is_none_or(|p| p.is_empty())).cloned().collect();
        for g in orphans {
            self.groups.get_mut("all").expect("all").children.push(g);
        }
        let mut leave: HashSet<String> = HashSet::new();
        let mut join: Vec<String> = Vec::new();
        for h in self.hosts.values() {
            let in_ungrouped = h.groups.iter().any(|g| g == "ungrouped");
            let others = h.groups.iter().any(|g| g != "all" && g != "ungrouped");
            if in_ungrouped {
                if others {
                    leave.insert(h.name.clone());
                }
            } else if !others {
                join.push(h.name.clone());
            }
        }
        // One pass over `ungrouped` for all the hosts that leave it, not one per host.
        if !leave.is_empty() {
            self.groups.get_mut("ungrouped").expect("ungrouped").hosts.retain(|x| !leave.contains(x));
            for name in &leave {
                if let Some(h) = self.hosts.get_mut(name) {
                    h.groups.retain(|g| g != "ungrouped");
                }
            }
        }
        for name in join {
            self.add_member("ungrouped", &name);
        }
        for g in self.groups.keys() {
            if self.hosts.contains_key(g) {
                self.warnings.push(format!("Found both group and host with same name: {g}"));
            }
        }
    }

    // ----- queries -----

    fn parents_map(&self) -> HashMap<&str, Vec<&str>> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for g in self.groups.values() {
            for c in &g.children {
                parents.entry(c.as_str()).or_default().push(g.name.as_str());
            }
        }
        parents
    }

    fn parents_map_owned(&self) -> HashMap<String, Vec<String>> {
        self.parents_map().into_iter().map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect())).collect()
    }

    /// A group followed by its descendants, breadth first (Ansible's `_walk_relationship` with
    /// `preserve_ordering`); a group may appear more than once.
    fn descendants_ordered<'a>(&'a self, group: &'a str) -> Vec<&'a str> {
        let Some(g) = self.groups.get(group) else { return Vec::new() };
        let mut ordered: Vec<&str> = vec![group];
        ordered.extend(g.children.iter().map(String::as_str));
        let mut seen: HashSet<&str> = HashSet::new();
        let mut unprocessed: Vec<&str> = Vec::new();
        for c in &g.children {
            if !unprocessed.contains(&c.as_str()) {
                unprocessed.push(c);
            }
        }
        while !unprocessed.is_empty() {
            seen.extend(unprocessed.iter().copied());
            let mut next: Vec<&str> = Vec::new();
            for u in &unprocessed {
                let Some(ug) = self.groups.get(*u) else { continue };
                for c in &ug.children {
                    if !seen.contains(c.as_str()) {
                        ordered.push(c);
                        if !next.contains(&c.as_str()) {
                            next.push(c);
                        }
                    }
                }
            }
            unprocessed = next;
        }
        ordered
    }

    /// The host's groups other than `all`, sorted as Ansible's `sort_groups`: by depth (length
    /// of the longest path from `all`), then `ansible_group_priority`, then name.
    fn sorted_host_groups(&self, host: &str) -> Vec<String> {
        let parents = self.parents_map();
        let mut depth_memo: HashMap<&str, usize> = HashMap::new();
        fn depth<'a>(g: &'a str, parents: &HashMap<&'a str, Vec<&'a str>>, memo: &mut HashMap<&'a str, usize>, guard: usize) -> usize {
            if g == "all" {
                return 0;
            }
            if let Some(d) = memo.get(g) {
                return *d;
            }
            let d = match parents.get(g) {
                Some(ps) if !ps.is_empty() && guard < 10_000 => ps.iter().map(|p| depth(p, parents, memo, guard + 1) + 1).max().unwrap_or(1),
                _ => 1,
            };
            memo.insert(g, d);
            d
        }
        let groups = self.host_groups(host);
        let mut keyed: Vec<(usize, i64, String)> = groups
            .into_iter()
            .filter(|g| g != "all")
            .map(|g| {
                let name: &str = self.groups.get_key_value(g.as_str()).map(|(k, _)| k.as_str()).unwrap_or("");
                let d = depth(name, &parents, &mut depth_memo, 0);
                let p = self.group_priority.get(&g).copied().unwrap_or(1);
                (d, p, g)
            })
            .collect();
        keyed.sort();
        keyed.into_iter().map(|(_, _, g)| g).collect()
    }
}

// ----- small helpers -----

static INVALID_VARIABLE_CHARS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\d\W]|[^\w]").expect("regex"));

fn python_int_str(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    t.replace('_', "").parse().ok().filter(|_| !t.starts_with('_') && !t.ends_with('_') && !t.contains("__"))
}

fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(*b as i64),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => python_int_str(s),
        _ => None,
    }
}

/// Python's `os.path.splitext(path)[1]`: the extension of the last component, with its dot;
/// leading dots of the name do not start an extension.
fn split_ext(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let trimmed = name.trim_start_matches('.');
    match trimmed.rfind('.') {
        Some(i) => trimmed[i..].to_string(),
        None => String::new(),
    }
}

/// Ansible's `basedir`: the directory of an inventory file, the directory itself, else `None`.
fn basedir(source: &str) -> Option<String> {
    let p = Path::new(source);
    if p.is_dir() {
        Some(source.to_string())
    } else if p.is_file() {
        p.parent().map(|d| d.to_string_lossy().into_owned())
    } else {
        None
    }
}

/// `~` expansion, absolute path and `.`/`..` removal without resolving symlinks (Ansible's
/// `unfrackpath(follow=False)`).
fn unfrack_path(s: &str) -> PathBuf {
    let expanded = match s.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest.trim_start_matches('/')),
            None => PathBuf::from(s),
        },
        _ => PathBuf::from(s),
    };
    let abs = if expanded.is_absolute() { expanded } else { std::env::current_dir().unwrap_or_default().join(expanded) };
    crate::config::normalize_lexically(&abs)
}

fn canonical_dir(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| unfrack_path(&p.to_string_lossy()))
}

/// A path as shown in labels and errors: relative to the working directory when below it.
fn display_path(p: &Path) -> String {
    static CWD: LazyLock<Option<PathBuf>> = LazyLock::new(|| std::env::current_dir().ok().and_then(|d| fs::canonicalize(d).ok()));
    if let Some(cwd) = CWD.as_ref()
        && let Ok(rel) = p.strip_prefix(cwd)
        && !rel.as_os_str().is_empty()
    {
        return rel.to_string_lossy().into_owned();
    }
    p.to_string_lossy().into_owned()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use crate::vars::Level;

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

/// An inventory error naming the file and line where one is known.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InventoryError(pub String);

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

    /// Hosts matched by a `hosts:` / `--limit` pattern, in inventory order.
    ///
    /// Patterns are separated by `,` (or `:` when that is not part of an address or range):
    /// `all` / `*`, group and host names, shell wildcards (`web*`), regular expressions (`~web\d+`,
    /// matched from the start of the name), `&x` to intersect, `!x` to exclude, and subscripts
    /// on a group (`web[0]`, `web[1:3]`, `web[-1]`). A name in [`LOCALHOST_NAMES`] that matches
    /// nothing else gives the implicit localhost (which `all` never includes). A pattern that
    /// matches nothing gives no hosts; an invalid regular expression or subscript is an error.
    pub fn pattern_hosts(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        let patterns = order_patterns(split_host_pattern(pattern));
        let mut hosts: Vec<String> = Vec::new();
        for p in &patterns {
            if self.hosts.contains_key(p.as_str()) {
                hosts.push(p.clone());
                continue;
            }
            let that = self.match_one_pattern(p)?;
            if let Some(_rest) = p.strip_prefix('!') {
                let that: HashSet<&String> = that.iter().collect();
                hosts.retain(|h| !that.contains(h));
            } else if p.starts_with('&') {
                let that: HashSet<&String> = that.iter().collect();
                hosts.retain(|h| that.contains(h));
            } else {
                let existing: HashSet<String> = hosts.iter().cloned().collect();
                hosts.extend(that.into_iter().filter(|h| !existing.contains(h)));
            }
        }
        let mut seen = HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        Ok(hosts)
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

    /// A host's inventory variables in Ansible's order, lowest precedence first:
    /// inventory group vars (all, then parents before children), inventory `group_vars/` files
    /// for the same groups, then inventory host vars, then inventory `host_vars/` files. With
    /// `playbook_dir`, `group_vars/` and `host_vars/` beside the playbook come after the
    /// inventory's of the same kind.
    ///
    /// Precisely (Ansible's default `VARIABLE_PRECEDENCE`): `all`'s inventory vars; the other
    /// groups' inventory vars; `group_vars/all` beside the inventory sources, then beside the
    /// playbook; the other groups' `group_vars/` beside the inventory sources, then beside the
    /// playbook; the host's inventory vars; `host_vars/<host>` beside the inventory sources, then
    /// beside the playbook. Sources without variables are left out. Files that cannot be read are
    /// skipped here; [`Inventory::check_playbook_vars`] reports them as errors.
    pub fn host_var_sources(&self, host: &str, playbook_dir: Option<&Path>) -> Vec<VarSource> {
        let mut out = Vec::new();
        let push = |out: &mut Vec<VarSource>, level: Level, label: String, vars: &Map<String, Value>| {
            if !vars.is_empty() {
                out.push(VarSource { level, label, file: None, vars: vars.clone() });
            }
        };
        if let Some(all) = self.groups.get("all") {
            push(&mut out, Level::InventoryGroupVars, "inventory (group all)".to_string(), &all.vars);
        }
        let groups = self.sorted_host_groups(host);
        for g in &groups {
            if let Some(group) = self.groups.get(g.as_str()) {
                push(&mut out, Level::InventoryGroupVars, format!("inventory (group {g})"), &group.vars);
            }
        }
        let inv_dirs = self.vars_dirs();
        let pb_dir = playbook_dir.map(canonical_dir);
        let files = |out: &mut Vec<VarSource>, level: Level, dir: &Path, kind: &str, name: &str| {
            if let Ok(found) = self.vars_cache.entity(dir, kind, name) {
                out.extend(found.iter().map(|(path, vars)| VarSource { level, label: display_path(path), file: Some(path.clone()), vars: vars.clone() }));
            }
        };
        for d in &inv_dirs {
            files(&mut out, Level::InventoryGroupVarsAll, d, "group_vars", "all");
        }
        if let Some(pb) = &pb_dir {
            files(&mut out, Level::PlaybookGroupVarsAll, pb, "group_vars", "all");
        }
        for d in &inv_dirs {
            for g in &groups {
                files(&mut out, Level::InventoryGroupVarsFiles, d, "group_vars", g);
            }
        }
        if let Some(pb) = &pb_dir {
            for g in &groups {
                files(&mut out, Level::PlaybookGroupVarsFiles, pb, "group_vars", g);
            }
        }
        match self.hosts.get(host) {
            Some(h) => push(&mut out, Level::InventoryHostVars, format!("inventory (host {host})"), &h.vars),
            None if LOCALHOST_NAMES.contains(&host) => push(&mut out, Level::InventoryHostVars, "implicit localhost".to_string(), &implicit_localhost_vars()),
            None => {}
        }
        for d in &inv_dirs {
            files(&mut out, Level::InventoryHostVarsFiles, d, "host_vars", host);
        }
        if let Some(pb) = &pb_dir {
            files(&mut out, Level::PlaybookHostVarsFiles, pb, "host_vars", host);
        }
        out
    }

    /// Reads `group_vars/` and `host_vars/` beside a playbook for every group and host of the
    /// inventory (and the implicit localhost names), so that a broken file is reported as an
    /// error naming it before [`Inventory::host_var_sources`] would silently skip it. The results
    /// are cached.
    pub fn check_playbook_vars(&self, playbook_dir: &Path) -> Result<(), InventoryError> {
        let dir = canonical_dir(playbook_dir);
        self.preload_dir(&dir, LOCALHOST_NAMES.iter().copied())
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

    // ----- sources -----

    fn parse_host_list(&mut self, list: &str) -> Result<(), InventoryError> {
        for h in list.split(',') {
            let h = h.trim();
            if h.is_empty() {
                continue;
            }
            let (host, port) = match parse_address(h, false) {
                Ok((host, port)) => (host, port),
                Err(_) => (h.to_string(), None),
            };
            if !self.hosts.contains_key(&host) {
                self.add_host(&host, Some("ungrouped"), port, Some(list))
                    .map_err(|e| InventoryError(format!("Invalid data from string, could not parse: {e}")))?;
            }
        }
        Ok(())
    }

    fn parse_source(&mut self, path: &Path) -> Result<(), InventoryError> {
        if path.is_dir() {
            let mut names: Vec<String> = fs::read_dir(path)
                .map_err(|e| InventoryError(format!("{}: {e}", path.display())))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                if name.starts_with('.')
                    || matches!(name.as_str(), "host_vars" | "group_vars" | "vars_plugins")
                    || INVENTORY_IGNORE_EXTS.iter().any(|x| name.ends_with(x))
                {
                    continue;
                }
                self.parse_source(&path.join(&name))?;
            }
            return Ok(());
        }
        let src = path.to_string_lossy().into_owned();
        let ext = split_ext(&src);
        if ext == ".toml" {
            return Err(InventoryError(format!("{src}: TOML inventories are not supported")));
        }
        let bytes = fs::read(path).map_err(|e| InventoryError(format!("{src}: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| InventoryError(format!("{src}: inventory file is not valid UTF-8")))?;
        if text.starts_with("#!") && is_executable(path) {
            return Err(InventoryError(format!("{src}: dynamic inventory scripts are not supported (the file is executable and starts with #!)")));
        }
        if YAML_EXTENSIONS.contains(&ext.as_str()) {
            let data = if ext == ".json" {
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v,
                    Err(_) => parse_yaml_text(&src, &text)?,
                }
            } else {
                parse_yaml_text(&src, &text)?
            };
            return self.parse_yaml_data(&src, &data);
        }
        if ext.is_empty() && could_be_yaml_mapping(&text) {
            let data = match serde_json::from_str::<Value>(&text) {
                Ok(v) => Ok(v),
                Err(_) => parse_yaml_text(&src, &text),
            };
            if let Ok(data @ Value::Object(_)) = data {
                return self.parse_yaml_data(&src, &data);
            }
        }
        self.parse_ini(&src, &text)
    }

    // ----- INI -----

    fn parse_ini(&mut self, path: &str, text: &str) -> Result<(), InventoryError> {
        let err = |line: usize, msg: String| InventoryError(format!("{path}:{line}: {msg}"));
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            Hosts,
            Vars,
            Children,
        }
        struct Pending {
            line: usize,
            state: State,
            name: String,
            parents: Vec<String>,
        }
        let mut pending: IndexMap<String, Pending> = IndexMap::new();
        let mut groupname = "ungrouped".to_string();
        let mut state = State::Hosts;

        fn add_pending_children(inv: &mut Inventory, group: &str, pending: &mut IndexMap<String, Pending>) -> Result<(), String> {
            let parents = pending.get(group).map(|p| p.parents.clone()).unwrap_or_default();
            for parent in parents {
                inv.add_child(&parent, group)?;
                if pending.get(&parent).is_some_and(|p| p.state == State::Children) {
                    add_pending_children(inv, &parent, pending)?;
                }
            }
            pending.shift_remove(group);
            Ok(())
        }

        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(caps) = INI_SECTION.captures(line) {
                let name = caps[1].to_string();
                let st = caps.get(2).map(|m| m.as_str()).unwrap_or("hosts");
                let st = match st {
                    "hosts" => State::Hosts,
                    "vars" => State::Vars,
                    "children" => State::Children,
                    other => {
                        return Err(err(lineno, format!("Section [{}:{other}] has unknown type: {other}", &caps[1])));
                    }
                };
                if !self.groups.contains_key(&name) {
                    if st == State::Vars && !pending.contains_key(&name) {
                        pending.insert(name.clone(), Pending { line: lineno, state: State::Vars, name: name.clone(), parents: Vec::new() });
                    }
                    self.add_group(&name).map_err(|e| err(lineno, e))?;
                }
                if st != State::Vars
                    && let Some(p) = pending.get(&name)
                {
                    match p.state {
                        State::Children => add_pending_children(self, &name, &mut pending).map_err(|e| err(lineno, e))?,
                        State::Vars => {
                            pending.shift_remove(&name);
                        }
                        State::Hosts => {}
                    }
                }
                groupname = name;
                state = st;
                continue;
            } else if line.starts_with('[') && line.ends_with(']') {
                return Err(err(
                    lineno,
                    format!(
                        "Invalid section entry: '{line}'. Please make sure that there are no spaces in the section \
                         entry, and that there are no other invalid characters"
                    ),
                ));
            }
            match state {
                State::Hosts => {
                    let (hosts, port, vars) = parse_ini_host_definition(line).map_err(|e| err(lineno, e))?;
                    for h in &hosts {
                        self.add_host(h, Some(&groupname), port, Some(path)).map_err(|e| err(lineno, e))?;
                        for (k, v) in &vars {
                            self.set_host_var(h, k, v.clone());
                        }
                    }
                }
                State::Vars => {
                    let Some((k, v)) = line.split_once('=') else {
                        return Err(err(lineno, format!("Expected key=value, got: {line}")));
                    };
                    let value = parse_ini_value(v.trim());
                    self.set_group_var(&groupname, k.trim(), value).map_err(|e| err(lineno, e))?;
                }
                State::Children => {
                    let Some(caps) = INI_GROUPNAME.captures(line) else {
                        return Err(err(lineno, format!("Expected group name, got: {line}")));
                    };
                    let child = caps[1].to_string();
                    if !self.groups.contains_key(&child) {
                        match pending.get_mut(&child) {
                            Some(p) => p.parents.push(groupname.clone()),
                            None => {
                                pending.insert(
                                    child.clone(),
                                    Pending { line: lineno, state: State::Children, name: child.clone(), parents: vec![groupname.clone()] },
                                );
                            }
                        }
                    } else {
                        self.add_child(&groupname, &child).map_err(|e| err(lineno, e))?;
                    }
                }
            }
        }
        if let Some((_, decl)) = pending.first() {
            let msg = match decl.state {
                State::Vars => format!("Section [{}:vars] not valid for undefined group '{}'.", decl.name, decl.name),
                _ => format!("Section [{}:children] includes undefined group '{}'.", decl.parents.last().map(String::as_str).unwrap_or(""), decl.name),
            };
            return Err(err(decl.line, msg));
        }
        Ok(())
    }

    // ----- YAML -----

    /// Reads a YAML inventory (`all: {hosts: ..., vars: ..., children: ...}`) already parsed to
    /// JSON data. `path` names the source in errors and in `inventory_file`.
    fn parse_yaml_data(&mut self, path: &str, data: &Value) -> Result<(), InventoryError> {
        let err = |msg: String| InventoryError(format!("{path}: {msg}"));
        let map = match data {
            Value::Null => return Err(err("Parsed empty YAML file".into())),
            Value::Object(m) if m.is_empty() => return Err(err("Parsed empty YAML file".into())),
            Value::Object(m) => m,
            other => {
                return Err(err(format!("YAML inventory has invalid structure, it should be a dictionary, got: {}", type_name(other))));
            }
        };
        if let Some(p) = map.get("plugin").filter(|p| is_truthy(p)) {
            return Err(err(format!(
                "inventory plugin configuration files are not supported (plugin: {})",
                p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string())
            )));
        }
        for (group, group_data) in map {
            self.parse_yaml_group(path, group, group_data).map_err(err)?;
        }
        Ok(())
    }

    fn parse_yaml_group(&mut self, path: &str, group: &str, group_data: &Value) -> Result<String, String> {
        let gd = match group_data {
            Value::Object(m) => Some(m),
            Value::Null => None,
            _ => {
                self.warnings.push(format!("Skipping '{group}' as this is not a valid group definition"));
                return Ok(group.to_string());
            }
        };
        let group = self.add_group(group).map_err(|e| format!("Unable to add group {group}: {e}"))?;
        let Some(gd) = gd else { return Ok(group) };
        // A section given as a string is a mapping with that one key.
        let mut gd = gd.clone();
        for section in ["vars", "children", "hosts"] {
            if let Some(v) = gd.get_mut(section) {
                if let Value::String(s) = v {
                    let mut m = Map::new();
                    m.insert(s.clone(), Value::Null);
                    *v = Value::Object(m);
                }
                if !matches!(v, Value::Object(_) | Value::Null) {
                    return Err(format!("Invalid \"{section}\" entry for \"{group}\" group, requires a dictionary, found \"{}\" instead.", type_name(v)));
                }
            }
        }
        for (key, value) in &gd {
            let m = match value {
                Value::Object(m) => m,
                Value::Null => continue,
                other => {
                    self.warnings.push(format!("Skipping key ({key}) in group ({group}) as it is not a mapping, it is a {}", type_name(other)));
                    continue;
                }
            };
            match key.as_str() {
                "vars" => {
                    for (k, v) in m {
                        self.set_group_var(&group, k, v.clone())?;
                    }
                }
                "children" => {
                    for (sub, sub_data) in m {
                        let sub = self.parse_yaml_group(path, sub, sub_data)?;
                        self.add_child(&group, &sub)?;
                    }
                }
                "hosts" => {
                    for (pattern, host_data) in m {
                        let (hosts, port) = expand_hostpattern(pattern)?;
                        let vars = match host_data {
                            Value::Object(v) => v.clone(),
                            v if !is_truthy(v) => Map::new(),
                            other => {
                                return Err(format!("Invalid data from file, expected dictionary and got:\n\n{other}"));
                            }
                        };
                        for h in &hosts {
                            self.add_host(h, Some(&group), port, Some(path))?;
                            for (k, v) in &vars {
                                self.set_host_var(h, k, v.clone());
                            }
                        }
                    }
                }
                other => {
                    self.warnings.push(format!("Skipping unexpected key ({other}) in group ({group}), only \"vars\", \"children\" and \"hosts\" are valid"))
                }
            }
        }
        Ok(group)
    }

    // ----- variables files -----

    /// The `group_vars/` / `host_vars/` base directories of the inventory sources: each source
    /// directory, or the directory of each source file, resolved through symlinks.
    fn vars_dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for d in self.dirs() {
            let d = canonical_dir(&d);
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    fn preload_inventory_vars(&self) -> Result<(), InventoryError> {
        for d in self.vars_dirs() {
            self.preload_dir(&d, LOCALHOST_NAMES.iter().copied())?;
        }
        Ok(())
    }

    fn preload_dir(&self, dir: &Path, extra_hosts: impl Iterator<Item = &'static str>) -> Result<(), InventoryError> {
        let gdir = dir.join("group_vars");
        if gdir.is_dir() {
            for g in self.groups.keys() {
                self.vars_cache.entity(dir, "group_vars", g).map_err(InventoryError)?;
            }
        }
        let hdir = dir.join("host_vars");
        if hdir.is_dir() {
            for h in self.hosts.keys().map(String::as_str) {
                self.vars_cache.entity(dir, "host_vars", h).map_err(InventoryError)?;
            }
            for h in extra_hosts {
                self.vars_cache.entity(dir, "host_vars", h).map_err(InventoryError)?;
            }
        }
        Ok(())
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

    fn match_one_pattern(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        let pattern = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
        let (expr, subscript) = split_subscript(pattern);
        let hosts = self.enumerate_matches(expr)?;
        apply_subscript(hosts, subscript).ok_or_else(|| InventoryError(format!("No hosts matched the subscripted pattern '{pattern}'")))
    }

    fn enumerate_matches(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        if pattern.is_empty() {
            return Ok(Vec::new());
        }
        let re = pattern_regex(pattern)?;
        let mut results: Vec<String> = Vec::new();
        let matching_groups: Vec<&String> = self.groups.keys().filter(|g| re.is_match(g)).collect();
        for g in &matching_groups {
            results.extend(self.group_hosts(g));
        }
        if matching_groups.is_empty() || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
            results.extend(self.hosts.keys().filter(|h| re.is_match(h)).cloned());
        }
        if results.is_empty() && LOCALHOST_NAMES.contains(&pattern) {
            // Ansible hands out the first localhost-like host of the inventory, if any, else
            // the implicit localhost.
            let named = self.hosts.keys().find(|h| LOCALHOST_NAMES.contains(&h.as_str()));
            results.push(named.cloned().unwrap_or_else(|| pattern.to_string()));
        }
        Ok(results)
    }
}

impl VarsCache {
    /// The variables files of `dir/<kind>/<name>` (`kind` is `group_vars` or `host_vars`), one
    /// source per non-empty file, parsed once.
    fn entity(&self, dir: &Path, kind: &str, name: &str) -> EntityVars {
        if name.starts_with('/') {
            return Ok(Arc::new(Vec::new()));
        }
        let opath = dir.join(kind);
        let key = (opath.clone(), name.to_string());
        if let Some(hit) = self.0.lock().expect("vars cache").get(&key) {
            return hit.clone();
        }
        let result = load_entity_files(&opath, name).map(Arc::new);
        self.0.lock().expect("vars cache").insert(key, result.clone());
        result
    }
}

fn load_entity_files(opath: &Path, name: &str) -> Result<VarsFiles, String> {
    if !opath.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for f in find_vars_files(opath, name) {
        if let Some(vars) = load_vars_file(&f)? {
            out.push((f, vars));
        }
    }
    Ok(out)
}

/// Ansible's `DataLoader.find_vars_files`: `<name>` (a file, or a directory read recursively in
/// sorted order), else `<name>.yml`, `<name>.yaml`, `<name>.json`; the first that exists wins.
fn find_vars_files(path: &Path, name: &str) -> Vec<PathBuf> {
    for ext in ["", ".yml", ".yaml", ".json"] {
        let full = path.join(format!("{name}{ext}"));
        if full.exists() {
            if full.is_dir() {
                return dir_vars_files(&full);
            }
            return vec![full];
        }
    }
    Vec::new()
}

fn dir_vars_files(path: &Path) -> Vec<PathBuf> {
    let mut names: Vec<String> = match fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => return Vec::new(),
    };
    names.sort();
    let mut found = Vec::new();
    for n in names {
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let ext = split_ext(&n);
        let full = path.join(&n);
        if full.is_dir() && ext.is_empty() {
            found.extend(dir_vars_files(&full));
        } else if full.is_file() && (ext.is_empty() || YAML_EXTENSIONS.contains(&ext.as_str())) {
            found.push(full);
        }
    }
    found
}

/// Reads one variables file: `None` when it is empty, an error naming the file (and line) when it
/// cannot be parsed or is not a mapping. JSON is tried first, as Ansible's loader does.
pub fn load_vars_file(path: &Path) -> Result<Option<Map<String, Value>>, String> {
    let shown = display_path(path);
    let bytes = fs::read(path).map_err(|e| format!("Could not read {shown}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: file is not valid UTF-8"))?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT") {
        return Err(format!("{shown}: vault-encrypted files are not supported"));
    }
    let json_first = split_ext(&path.to_string_lossy()) == ".json" || text.trim_start().starts_with('{');
    let value = match json_first.then(|| serde_json::from_str::<Value>(&text)) {
        Some(Ok(v)) => v,
        _ => parse_yaml_text(&shown, &text).map_err(|e| e.0)?,
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(m) if m.is_empty() => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(format!("{shown}: variables file must contain a dictionary, got {} instead", type_name(&other))),
    }
}

fn parse_yaml_text(path: &str, text: &str) -> Result<Value, InventoryError> {
    airlock_base::yaml::parse_json(text).map_err(|e| InventoryError(format!("{path}:{}:{}: {}", e.mark.line, e.mark.col, e.message)))
}

/// Whether a file without extension might be a YAML mapping, so worth trying as YAML before INI
/// (Ansible tries its YAML plugin first). INI files, whose first line is a section or whose lines
/// have no `key:` form, skip the YAML parser.
fn could_be_yaml_mapping(text: &str) -> bool {
    let mut first = true;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if first {
            if INI_SECTION.is_match(t) {
                return false;
            }
            if t.starts_with('{') || t == "---" || t.starts_with("--- ") || t.starts_with('%') {
                return true;
            }
            first = false;
        }
        if t.contains(": ") || t.ends_with(':') || t.contains(":\t") {
            return true;
        }
    }
    false
}

/// The variables of the implicit localhost: `ansible_connection: local` and a Python
/// interpreter (Ansible uses its own; here the system's `python3` when there is one).
fn implicit_localhost_vars() -> Map<String, Value> {
    static PY: LazyLock<Option<String>> = LazyLock::new(|| {
        ["/usr/bin/python3", "/usr/libexec/platform-python", "/usr/bin/python"].into_iter().find(|p| Path::new(p).exists()).map(str::to_string)
    });
    let mut m = Map::new();
    if let Some(py) = PY.as_ref() {
        m.insert("ansible_python_interpreter".into(), Value::String(py.clone()));
    }
    m.insert("ansible_connection".into(), Value::String("local".into()));
    m
}

// ----- patterns -----

static PATTERN_WITH_SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$").expect("regex"));

static PATTERN_SPLIT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("regex"));

/// Ansible's `split_host_pattern`: commas separate patterns; without a comma, a single address or
/// host range stays whole, else `:` separates.
fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if parse_address(pattern, true).is_ok() {
        vec![pattern.to_string()]
    } else {
        PATTERN_SPLIT.find_iter(pattern).map(|m| m.as_str().to_string()).collect()
    };
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// Plain patterns first, then `&` intersections, then `!` exclusions; `all` when there is no
/// plain pattern.
fn order_patterns(patterns: Vec<String>) -> Vec<String> {
    let mut regular = Vec::new();
    let mut inter = Vec::new();
    let mut excl = Vec::new();
    for p in patterns {
        if p.starts_with('!') {
            excl.push(p);
        } else if p.starts_with('&') {
            inter.push(p);
        } else {
            regular.push(p);
        }
    }
    if regular.is_empty() {
        regular.push("all".to_string());
    }
    regular.into_iter().chain(inter).chain(excl).collect()
}

enum Subscript {
    Index(i64),
    Range(i64, i64),
}

fn split_subscript(pattern: &str) -> (&str, Option<Subscript>) {
    if pattern.starts_with('~') {
        return (pattern, None);
    }
    let Some(c) = PATTERN_WITH_SUBSCRIPT.captures(pattern) else { return (pattern, None) };
    let base = c.get(1).expect("group 1").as_str();
    if let Some(idx) = c.get(2) {
        return (base, idx.as_str().parse().ok().map(Subscript::Index));
    }
    let start: i64 = c[3].parse().unwrap_or(0);
    let end: i64 = if c[5].is_empty() { -1 } else { c[5].parse().unwrap_or(-1) };
    (base, Some(Subscript::Range(start, end)))
}

/// Ansible's `_apply_subscript`; `None` when an index is out of range.
fn apply_subscript(hosts: Vec<String>, sub: Option<Subscript>) -> Option<Vec<String>> {
    let Some(sub) = sub else { return Some(hosts) };
    if hosts.is_empty() {
        return Some(hosts);
    }
    let len = hosts.len() as i64;
    let index = |i: i64| -> Option<String> {
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then(|| hosts[i as usize].clone())
    };
    match sub {
        Subscript::Index(i) => index(i).map(|h| vec![h]),
        // `[x:0]`: Ansible treats the end 0 as "no end" and returns the single host x.
        Subscript::Range(start, 0) => index(start).map(|h| vec![h]),
        Subscript::Range(start, end) => {
            let end = if end == -1 { len - 1 } else { end };
            let s = start.clamp(0, len) as usize;
            let e = (end + 1).clamp(0, len) as usize;
            Some(if s < e { hosts[s..e].to_vec() } else { Vec::new() })
        }
    }
}

/// The matcher for one pattern: `~regex` (anchored at the start, as Python's `re.match`) or a
/// shell wildcard (`fnmatch`, whole name, case-sensitive).
fn pattern_regex(pattern: &str) -> Result<Regex, InventoryError> {
    let src = match pattern.strip_prefix('~') {
        Some(re) => format!("^(?:{re})"),
        None => format!("^(?s:{})$", fnmatch_translate(pattern)),
    };
    Regex::new(&src).map_err(|_| InventoryError(format!("Invalid host list pattern: {pattern}")))
}

/// Python's `fnmatch.translate` to Rust regex syntax (without anchors).
fn fnmatch_translate(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(r"\[");
                } else {
                    let mut class = String::from("[");
                    let mut k = i;
                    if chars[k] == '!' {
                        class.push('^');
                        k += 1;
                    } else if chars[k] == '^' {
                        class.push_str(r"\^");
                        k += 1;
                    }
                    while k < j {
                        let ch = chars[k];
                        if matches!(ch, '\\' | '[' | ']' | '&' | '~') {
                            class.push('\\');
                        }
                        class.push(ch);
                        k += 1;
                    }
                    class.push(']');
                    out.push_str(&class);
                    i = j + 1;
                }
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

// ----- addresses and host ranges -----

const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

static BRACKETED_HOSTPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[(.+)\]:([0-9]+)$").expect("regex"));
static HOSTPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$").expect("regex"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!("(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
    Regex::new(&format!(r"(?i)^(?:{c}\.){{3}}{c}$")).expect("regex")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!("(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    let alts = [
        "(?:C:){7}C",
        "(?:C:){1,6}:",
        "(?:C:)(?::C){1,6}",
        "(?:C:){2}(?::C){1,5}",
        "(?:C:){3}(?::C){1,4}",
        "(?:C:){4}(?::C){1,3}",
        "(?:C:){5}(?::C){1,2}",
        "(?:C:){6}(?::C)",
        ":(?::C){1,6}",
        "C?::",
        r"(?:0:){6}(?:C\.){3}C",
        r"::(?:ffff:)?(?:C\.){3}C",
        r"(?:0:){5}ffff:(?:C\.){3}C",
    ];
    let body = alts.join("|").replace('C', &c);
    Regex::new(&format!("(?i)^(?:{body})$")).expect("regex")
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    // A label starts with a word character or range and does not end with `_` or `-`.
    let r = ALNUM_RANGE;
    let label = format!(r"(?:(?:[^\W_]|{r})|(?:\w|{r})(?:[\w-]|{r})*(?:[^\W_]|{r}))");
    Regex::new(&format!(r"(?i)^{label}(?:\.{label})*$")).expect("regex")
});
static INI_SECTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").expect("regex"));
static INI_GROUPNAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").expect("regex"));
static INVALID_VARIABLE_CHARS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\d\W]|[^\w]").expect("regex"));

/// Ansible's `parse_address`: a host (name, IPv4 or IPv6 address, with `[x:y]` ranges when
/// `allow_ranges`) and an optional `:port` (`[addr]:port` for IPv6).
fn parse_address(address: &str, allow_ranges: bool) -> Result<(String, Option<i64>), String> {
    let mut address = address.to_string();
    let mut port = None;
    for re in [&*BRACKETED_HOSTPORT, &*HOSTPORT] {
        if let Some(c) = re.captures(&address) {
            port = c[2].parse::<i64>().ok();
            address = c[1].to_string();
        }
    }
    if !(IPV4.is_match(&address) || IPV6.is_match(&address) || HOSTNAME.is_match(&address)) {
        return Err(format!("Not a valid network hostname: {address}"));
    }
    if !allow_ranges && address.contains('[') {
        return Err("Detected range in host but was asked to ignore ranges".into());
    }
    Ok((address, port))
}

/// The hosts a host pattern of an INI or YAML inventory stands for, and its port.
fn expand_hostpattern(hostpattern: &str) -> Result<(Vec<String>, Option<i64>), String> {
    let (pattern, port) = parse_address(hostpattern, true).unwrap_or_else(|_| (hostpattern.to_string(), None));
    let hosts = if pattern.contains('[') { expand_hostname_range(&pattern)? } else { vec![pattern] };
    Ok((hosts, port))
}

/// Ansible's `expand_hostname_range`: `db[01:10:2]-x`, `node[a:c]`, several ranges per name.
fn expand_hostname_range(line: &str) -> Result<Vec<String>, String> {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let [head, nrange, tail] = parts[..] else {
        return Err(format!("Invalid host range in '{line}'"));
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".into());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = bounds.get(2).copied().unwrap_or("1");
    if end.is_empty() {
        return Err("host range must specify end value".into());
    }
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err("host range must specify equal-length begin and end formats".into());
        }
        Some(beg.len())
    } else {
        None
    };
    let fill = |s: String| match width {
        Some(w) => zfill(&s, w),
        None => s,
    };
    let bad = || format!("Invalid host range in '{line}'");
    let seq: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end), step.trim().parse::<i64>()) {
        (Some(ib), Some(ie), Ok(st)) => {
            if ib > ie {
                return Err("host range must have begin <= end".into());
            }
            if st <= 0 {
                return Err(bad());
            }
            LETTERS[ib..=ie].chars().step_by(st as usize).map(|c| c.to_string()).collect()
        }
        _ => {
            let b: i64 = python_int_str(beg).ok_or_else(bad)?;
            let e: i64 = python_int_str(end).ok_or_else(bad)?;
            let st: i64 = python_int_str(step).ok_or_else(bad)?;
            if st == 0 {
                return Err(bad());
            }
            let count = if st > 0 { (e + 1 - b).max(0) / st } else { (b - e - 1).max(0) / -st };
            if count > 1_000_000 {
                return Err(format!("host range in '{line}' is too large"));
            }
            let mut v = Vec::new();
            let mut x = b;
            while (st > 0 && x < e + 1) || (st < 0 && x > e + 1) {
                v.push(x.to_string());
                x += st;
            }
            v
        }
    };
    let mut out = Vec::new();
    for r in seq {
        let name = format!("{head}{}{tail}", fill(r));
        if name.contains('[') {
            out.extend(expand_hostname_range(&name)?);
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

fn zfill(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    let (sign, digits) = match s.strip_prefix(['-', '+']) {
        Some(rest) => (&s[..1], rest),
        None => ("", s),
    };
    format!("{sign}{}{digits}", "0".repeat(width - n))
}

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

/// One host line of an INI inventory: the hosts of its pattern, the port, the variables.
fn parse_ini_host_definition(line: &str) -> Result<HostLine, String> {
    let tokens = shlex_split(line).map_err(|e| format!("Error parsing host definition '{line}': {e}"))?;
    let Some(first) = tokens.first() else {
        return Err(format!("Expected a host definition, got: {line}"));
    };
    let (hosts, port) = expand_hostpattern(first)?;
    if first.trim().ends_with(':') && port.is_none() {
        return Err(format!("Invalid host pattern '{first}' supplied, ending in ':' is not allowed, this character is reserved to provide a port."));
    }
    if hosts.iter().any(|h| h.trim() == "---") {
        return Err(format!("Invalid host pattern '{first}' supplied, '---' is normally a sign this is a YAML file."));
    }
    let mut vars = Vec::new();
    for t in &tokens[1..] {
        let Some((k, v)) = t.split_once('=') else {
            return Err(format!("Expected key=value host variable assignment, got: {t}"));
        };
        vars.push((k.to_string(), parse_ini_value(v)));
    }
    Ok((hosts, port, vars))
}

/// An INI value as Ansible reads it: a Python literal when `ast.literal_eval` accepts it, else the
/// text itself.
pub fn parse_ini_value(v: &str) -> Value {
    pylit::literal_eval(v).unwrap_or_else(|| Value::String(v.to_string()))
}

/// Python's `shlex.split(line, comments=True)` (POSIX mode).
fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    loop {
        // skip whitespace; `#` starts a comment to the end of the line
        while i < chars.len() && is_ws(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let mut token = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if is_ws(c) {
                break;
            }
            if c == '#' {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                break;
            }
            if c == '\\' {
                i += 1;
                if i >= chars.len() {
                    return Err("No escaped character".into());
                }
                token.push(chars[i]);
                i += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quoted = true;
                i += 1;
                loop {
                    if i >= chars.len() {
                        return Err("No closing quotation".into());
                    }
                    let q = chars[i];
                    if q == c {
                        i += 1;
                        break;
                    }
                    if c == '"' && q == '\\' {
                        i += 1;
                        if i >= chars.len() {
                            return Err("No escaped character".into());
                        }
                        let n = chars[i];
                        if n != '\\' && n != '"' {
                            token.push('\\');
                        }
                        token.push(n);
                        i += 1;
                        continue;
                    }
                    token.push(q);
                    i += 1;
                }
                continue;
            }
            token.push(c);
            i += 1;
        }
        if !token.is_empty() || quoted {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

// ----- small helpers -----

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

use airlock_base::pyfmt::json_type_name as type_name;

/// Python's `ast.literal_eval` for the values of INI inventories.
mod pylit {
    use serde_json::{Map, Number, Value};

    #[derive(Clone, Debug, PartialEq)]
    enum Lit {
        Int(i64),
        Float(f64),
        Complex,
        Str(String),
        Bytes(Vec<u8>),
        Bool(bool),
        None,
        Ellipsis,
        List(Vec<Lit>),
        Tuple(Vec<Lit>),
        Set(Vec<Lit>),
        Dict(Vec<(Lit, Lit)>),
    }

    struct P<'a> {
        s: &'a [char],
        i: usize,
        depth: usize,
    }

    /// The value of `src` when Python's `ast.literal_eval` accepts it (tuples and sets become
    /// lists, bytes text), else `None`. Complex numbers and integers beyond 64 bits give `None`.
    pub fn literal_eval(src: &str) -> Option<Value> {
        let src = src.trim_start_matches([' ', '\t']);
        let chars: Vec<char> = src.chars().collect();
        let mut p = P { s: &chars, i: 0, depth: 0 };
        let lit = p.testlist()?;
        p.ws();
        if p.i != chars.len() {
            return None;
        }
        to_json(&lit)
    }

    fn to_json(l: &Lit) -> Option<Value> {
        Some(match l {
            Lit::Int(i) => Value::from(*i),
            Lit::Float(f) => Value::Number(Number::from_f64(*f)?),
            Lit::Complex => return None,
            Lit::Str(s) => Value::String(s.clone()),
            Lit::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            Lit::Bool(b) => Value::Bool(*b),
            Lit::None => Value::Null,
            Lit::Ellipsis => Value::String("...".into()),
            Lit::List(v) | Lit::Tuple(v) => Value::Array(v.iter().map(to_json).collect::<Option<_>>()?),
            Lit::Set(v) => {
                let mut out: Vec<Value> = Vec::new();
                for x in v {
                    let j = to_json(x)?;
                    if !out.contains(&j) {
                        out.push(j);
                    }
                }
                Value::Array(out)
            }
            Lit::Dict(kv) => {
                let mut m = Map::new();
                for (k, v) in kv {
                    let key = match k {
                        Lit::List(_) | Lit::Dict(_) | Lit::Set(_) => return None, // unhashable
                        Lit::Str(s) => s.clone(),
                        other => match to_json(other)? {
                            Value::String(s) => s,
                            j => j.to_string(),
                        },
                    };
                    m.insert(key, to_json(v)?);
                }
                Value::Object(m)
            }
        })
    }

    fn is_ident_start(c: char) -> bool {
        c == '_' || c.is_alphabetic()
    }
    fn is_ident(c: char) -> bool {
        c == '_' || c.is_alphanumeric()
    }

    impl P<'_> {
        fn peek(&self) -> Option<char> {
            self.s.get(self.i).copied()
        }
        fn peek_at(&self, n: usize) -> Option<char> {
            self.s.get(self.i + n).copied()
        }
        fn ws(&mut self) {
            while let Some(c) = self.peek() {
                if c == ' ' || c == '\t' || c == '\x0c' || (self.depth > 0 && (c == '\n' || c == '\r')) {
                    self.i += 1;
                } else if c == '#' {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                } else if self.depth == 0 && (c == '\n' || c == '\r') && self.s[self.i..].iter().all(|c| c.is_whitespace()) {
                    self.i = self.s.len();
                } else {
                    break;
                }
            }
        }
        fn eat(&mut self, c: char) -> bool {
            self.ws();
            if self.peek() == Some(c) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        /// `expr (',' expr)* [',']` — a bare tuple when there is a comma.
        fn testlist(&mut self) -> Option<Lit> {
            let first = self.expr()?;
            self.ws();
            if self.peek() != Some(',') {
                return Some(first);
            }
            let mut items = vec![first];
            while self.eat(',') {
                self.ws();
                match self.peek() {
                    None | Some(')') | Some(']') | Some('}') => break,
                    _ => items.push(self.expr()?),
                }
            }
            Some(Lit::Tuple(items))
        }

        fn expr(&mut self) -> Option<Lit> {
            self.ws();
            let neg = match self.peek() {
                Some('-') => Some(true),
                Some('+') => Some(false),
                _ => None,
            };
            if let Some(neg) = neg {
                self.i += 1;
                let v = self.atom()?;
                self.no_binop()?;
                return match v {
                    Lit::Int(i) => Some(Lit::Int(if neg { i.checked_neg()? } else { i })),
                    Lit::Float(f) => Some(Lit::Float(if neg { -f } else { f })),
                    Lit::Complex => Some(Lit::Complex),
                    _ => None,
                };
            }
            let v = self.atom()?;
            self.no_binop()?;
            Some(v)
        }

        /// literal_eval only allows `+`/`-` between a real and an imaginary number; treat every
        /// binary operator as unsupported.
        fn no_binop(&mut self) -> Option<()> {
            self.ws();
            match self.peek() {
                Some('+' | '-' | '*' | '/' | '%' | '@' | '&' | '|' | '^' | '<' | '>' | '=' | '!' | '.' | '(' | '[') => None,
                _ => Some(()),
            }
        }

        fn atom(&mut self) -> Option<Lit> {
            self.ws();
            let c = self.peek()?;
            match c {
                '(' => {
                    self.i += 1;
                    self.depth += 1;
                    if self.depth > 200 {
                        return None;
                    }
                    if self.eat(')') {
                        self.depth -= 1;
                        return Some(Lit::Tuple(Vec::new()));
                    }
                    let v = self.testlist()?;
                    if !self.eat(')') {
                        return None;
                    }
                    self.depth -= 1;
                    Some(v)
                }
                '[' => {
                    self.i += 1;
                    self.depth += 1;
                    if self.depth > 200 {
                        return None;
                    }
                    let mut items = Vec::new();
                    loop {
                        if self.eat(']') {
                            break;
                        }
                        items.push(self.expr()?);
                        if self.eat(',') {
                            continue;
                        }
                        if !self.eat(']') {
                            return None;
                        }
                        break;
                    }
                    self.depth -= 1;
                    Some(Lit::List(items))
                }
                '{' => {
                    self.i += 1;
                    self.depth += 1;
                    if self.depth > 200 {
                        return None;
                    }
                    if self.eat('}') {
                        self.depth -= 1;
                        return Some(Lit::Dict(Vec::new()));
                    }
                    let first = self.expr()?;
                    if self.eat(':') {
                        let mut kv = vec![(first, self.expr()?)];
                        loop {
                            if self.eat('}') {
                                break;
                            }
                            if !self.eat(',') {
                                return None;
                            }
                            if self.eat('}') {
                                break;
                            }
                            let k = self.expr()?;
                            if !self.eat(':') {
                                return None;
                            }
                            kv.push((k, self.expr()?));
                        }
                        self.depth -= 1;
                        Some(Lit::Dict(kv))
                    } else {
                        let mut items = vec![first];
                        loop {
                            if self.eat('}') {
                                break;
                            }
                            if !self.eat(',') {
                                return None;
                            }
                            if self.eat('}') {
                                break;
                            }
                            items.push(self.expr()?);
                        }
                        self.depth -= 1;
                        Some(Lit::Set(items))
                    }
                }
                '.' if self.peek_at(1) == Some('.') && self.peek_at(2) == Some('.') => {
                    self.i += 3;
                    Some(Lit::Ellipsis)
                }
                '0'..='9' | '.' => self.number(),
                '\'' | '"' => self.strings(),
                c if is_ident_start(c) => {
                    let start = self.i;
                    while self.peek().is_some_and(is_ident) {
                        self.i += 1;
                    }
                    let word: String = self.s[start..self.i].iter().collect();
                    if matches!(self.peek(), Some('\'' | '"'))
                        && matches!(word.to_ascii_lowercase().as_str(), "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf")
                    {
                        self.i = start;
                        return self.strings();
                    }
                    match word.as_str() {
                        "True" => Some(Lit::Bool(true)),
                        "False" => Some(Lit::Bool(false)),
                        "None" => Some(Lit::None),
                        "set" => {
                            // only `set()`
                            if self.eat('(') && self.eat(')') { Some(Lit::Set(Vec::new())) } else { None }
                        }
                        _ => None,
                    }
                }
                _ => None,
            }
        }

        fn digitpart(&mut self, radix: u32) -> Option<String> {
            let mut out = String::new();
            let mut last_us = false;
            while let Some(c) = self.peek() {
                if c.is_digit(radix) {
                    out.push(c);
                    last_us = false;
                } else if c == '_' && !out.is_empty() && !last_us {
                    last_us = true;
                } else {
                    break;
                }
                self.i += 1;
            }
            if last_us {
                return None;
            }
            Some(out)
        }

        fn number(&mut self) -> Option<Lit> {
            if self.peek() == Some('0') && matches!(self.peek_at(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
                let radix = match self.peek_at(1)?.to_ascii_lowercase() {
                    'x' => 16,
                    'o' => 8,
                    _ => 2,
                };
                self.i += 2;
                if self.peek() == Some('_') {
                    self.i += 1;
                }
                let digits = self.digitpart(radix)?;
                if digits.is_empty() || self.peek().is_some_and(is_ident) {
                    return None;
                }
                return i64::from_str_radix(&digits, radix).ok().map(Lit::Int);
            }
            let int_part = self.digitpart(10)?;
            let mut is_float = false;
            let mut text = int_part.clone();
            if self.peek() == Some('.') {
                self.i += 1;
                is_float = true;
                let frac = if self.peek().is_some_and(|c| c.is_ascii_digit()) { self.digitpart(10)? } else { String::new() };
                if int_part.is_empty() && frac.is_empty() {
                    return None;
                }
                text.push('.');
                text.push_str(if frac.is_empty() { "0" } else { &frac });
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let save = self.i;
                self.i += 1;
                let mut exp = String::from("e");
                if let Some(s @ ('+' | '-')) = self.peek() {
                    exp.push(s);
                    self.i += 1;
                }
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    exp.push_str(&self.digitpart(10)?);
                    text.push_str(&exp);
                    is_float = true;
                } else {
                    self.i = save;
                    return None;
                }
            }
            if matches!(self.peek(), Some('j' | 'J')) {
                self.i += 1;
                if self.peek().is_some_and(is_ident) {
                    return None;
                }
                return Some(Lit::Complex);
            }
            if self.peek().is_some_and(is_ident) {
                return None;
            }
            if is_float {
                let t = if text.starts_with('.') { format!("0{text}") } else { text };
                let f: f64 = t.parse().ok()?;
                return f.is_finite().then_some(Lit::Float(f));
            }
            if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
                return None; // leading zeros are not allowed in decimal integers
            }
            int_part.parse::<i64>().ok().map(Lit::Int)
        }

        /// One or more adjacent string literals (concatenated).
        fn strings(&mut self) -> Option<Lit> {
            let mut acc: Option<Lit> = None;
            loop {
                self.ws();
                let start = self.i;
                let mut prefix = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphabetic() && prefix.len() < 2 {
                        prefix.push(c.to_ascii_lowercase());
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                if !matches!(self.peek(), Some('\'' | '"')) || !matches!(prefix.as_str(), "" | "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf") {
                    self.i = start;
                    break;
                }
                let lit = self.one_string(&prefix)?;
                acc = Some(match (acc, lit) {
                    (None, l) => l,
                    (Some(Lit::Str(a)), Lit::Str(b)) => Lit::Str(a + &b),
                    (Some(Lit::Bytes(mut a)), Lit::Bytes(b)) => {
                        a.extend(b);
                        Lit::Bytes(a)
                    }
                    _ => return None,
                });
            }
            acc
        }

        fn one_string(&mut self, prefix: &str) -> Option<Lit> {
            if prefix.contains('f') {
                return None; // f-strings are not literals
            }
            let raw = prefix.contains('r');
            let bytes = prefix.contains('b');
            let q = self.peek()?;
            let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
            self.i += if triple { 3 } else { 1 };
            let mut body: Vec<char> = Vec::new();
            loop {
                let c = self.peek()?;
                if c == q {
                    if !triple {
                        self.i += 1;
                        break;
                    }
                    if self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q) {
                        self.i += 3;
                        break;
                    }
                }
                if !triple && (c == '\n' || c == '\r') {
                    return None;
                }
                if c == '\\' {
                    body.push(c);
                    self.i += 1;
                    body.push(self.peek()?);
                    self.i += 1;
                    continue;
                }
                body.push(c);
                self.i += 1;
            }
            if bytes && body.iter().any(|c| !c.is_ascii()) {
                return None; // bytes literals hold ASCII characters only
            }
            let text: String = if raw { body.iter().collect() } else { unescape(&body, bytes)? };
            if bytes { Some(Lit::Bytes(text.chars().map(|c| c as u32 as u8).collect())) } else { Some(Lit::Str(text)) }
        }
    }

    fn unescape(body: &[char], bytes: bool) -> Option<String> {
        let mut out = String::new();
        let mut i = 0;
        let hex = |s: &[char]| -> Option<u32> {
            if s.iter().all(|c| c.is_ascii_hexdigit()) { u32::from_str_radix(&s.iter().collect::<String>(), 16).ok() } else { None }
        };
        while i < body.len() {
            let c = body[i];
            if c != '\\' {
                out.push(c);
                i += 1;
                continue;
            }
            let n = *body.get(i + 1)?;
            i += 2;
            match n {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut v = n.to_digit(8)?;
                    let mut k = 0;
                    while k < 2 && body.get(i).is_some_and(|c| c.is_digit(8)) {
                        v = v * 8 + body[i].to_digit(8)?;
                        i += 1;
                        k += 1;
                    }
                    out.push(char::from_u32(if bytes { v & 0xff } else { v })?);
                }
                'x' => {
                    let v = hex(body.get(i..i + 2)?)?;
                    i += 2;
                    out.push(char::from_u32(v)?);
                }
                'u' if !bytes => {
                    let v = hex(body.get(i..i + 4)?)?;
                    i += 4;
                    out.push(char::from_u32(v)?);
                }
                'U' if !bytes => {
                    let v = hex(body.get(i..i + 8)?)?;
                    i += 8;
                    out.push(char::from_u32(v)?);
                }
                'N' if !bytes => return None, // named characters: not supported
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ini(text: &str) -> Inventory {
        let mut inv = Inventory::new();
        inv.parse_ini("/x/hosts", text).expect("ini");
        inv.reconcile();
        inv
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ph(inv: &Inventory, p: &str) -> Vec<String> {
        inv.pattern_hosts(p).expect("pattern")
    }

    const SAMPLE: &str = r#"# comment
; other comment
host0 a=1 b=yes c="quoted str" d='x y' e=1.5 f=[1,2] g={'k':1} h=True i=None j=0x10 k=foo#bar l=012
[web]
web[01:03] http_port=80
www.example.com:2222

[db]
db-[a:c]
node[1:10:3]

[web:vars]
x=1
y=yes
z="quoted"
w=a b c
v = spaced
list=[1, 2]

[prod:children]
web
db

[prod:vars]
ansible_group_priority=5

[empty]
"#;

    #[test]
    fn ini_groups_ranges_and_values() {
        let inv = ini(SAMPLE);
        let h0 = &inv.hosts["host0"].vars;
        assert_eq!(h0["a"], json!(1));
        assert_eq!(h0["b"], json!("yes"));
        assert_eq!(h0["c"], json!("quoted str"));
        assert_eq!(h0["d"], json!("x y"));
        assert_eq!(h0["e"], json!(1.5));
        assert_eq!(h0["f"], json!([1, 2]));
        assert_eq!(h0["g"], json!("{k:1}")); // shlex removed the quotes
        assert_eq!(h0["h"], json!(true));
        assert_eq!(h0["i"], json!(null));
        assert_eq!(h0["j"], json!(16));
        assert_eq!(h0["k"], json!("foo")); // `#` ends the line
        assert!(!h0.contains_key("l"));
        assert_eq!(h0["inventory_file"], json!("/x/hosts"));

        assert_eq!(inv.groups["web"].hosts, names(&["web01", "web02", "web03", "www.example.com"]));
        assert_eq!(inv.hosts["www.example.com"].vars["ansible_port"], json!(2222));
        assert_eq!(inv.groups["db"].hosts, names(&["db-a", "db-b", "db-c", "node1", "node4", "node7", "node10"]));
        let web = &inv.groups["web"].vars;
        assert_eq!(web["x"], json!(1));
        assert_eq!(web["y"], json!("yes"));
        assert_eq!(web["z"], json!("quoted"));
        assert_eq!(web["w"], json!("a b c"));
        assert_eq!(web["v"], json!("spaced"));
        assert_eq!(web["list"], json!([1, 2]));
        assert_eq!(inv.groups["prod"].children, names(&["web", "db"]));
        assert!(inv.groups["prod"].vars.is_empty());
        assert_eq!(inv.group_priority["prod"], 5);
        assert_eq!(inv.groups["all"].children, names(&["ungrouped", "prod", "empty"]));
        assert_eq!(inv.groups["ungrouped"].hosts, names(&["host0"]));

        assert_eq!(inv.group_names("web01"), names(&["prod", "web"]));
        assert_eq!(inv.group_names("host0"), names(&["ungrouped"]));
        assert!(inv.group_names("localhost").is_empty());
        let groups = inv.groups_var();
        assert_eq!(groups["all"], json!(["host0", "web01", "web02", "web03", "www.example.com", "db-a", "db-b", "db-c", "node1", "node4", "node7", "node10"]));
        assert_eq!(groups["prod"].as_array().unwrap().len(), 11);
        assert_eq!(groups["empty"], json!([]));
        assert_eq!(groups["ungrouped"], json!(["host0"]));
    }

    #[test]
    fn ini_section_names_pending_and_errors() {
        let inv = ini("[a:children]\nb-c\n[b-c]\nh1\n[x-y:vars]\nk=v\n[x-y]\n");
        assert_eq!(inv.groups["a"].children, names(&["b-c"]));
        assert_eq!(inv.groups["b-c"].hosts, names(&["h1"]));
        assert_eq!(inv.groups["x-y"].vars["k"], json!("v"));
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);

        let inv = ini("[parent:children]\nkid\n[kid]\nh1\n");
        assert_eq!(inv.group_names("h1"), names(&["kid", "parent"]));
        assert_eq!(inv.groups["all"].children, names(&["ungrouped", "parent"]));

        let mut inv = Inventory::new();
        let e = inv.parse_ini("/x/h", "[a:children]\nmissing\n").unwrap_err();
        assert_eq!(e.0, "/x/h:2: Section [a:children] includes undefined group 'missing'.");
        let e = Inventory::new().parse_ini("/x/h", "\n[g:vars]\nk=v\n").unwrap_err();
        assert_eq!(e.0, "/x/h:2: Section [g:vars] not valid for undefined group 'g'.");
        let e = Inventory::new().parse_ini("/x/h", "[g]\nh1 novalue\n").unwrap_err();
        assert!(e.0.starts_with("/x/h:2: Expected key=value host variable assignment"), "{}", e.0);
        let e = Inventory::new().parse_ini("/x/h", "[g:vars]\n[g]\n[g:vars]\njunk\n").unwrap_err();
        assert_eq!(e.0, "/x/h:4: Expected key=value, got: junk");
        let e = Inventory::new().parse_ini("/x/h", "[g:bogus]\n").unwrap_err();
        assert!(e.0.contains("has unknown type: bogus"), "{}", e.0);
        let e = Inventory::new().parse_ini("/x/h", "[bad group]\n").unwrap_err();
        assert!(e.0.starts_with("/x/h:1: Invalid section entry"), "{}", e.0);
        let e = Inventory::new().parse_ini("/x/h", "[a:children]\nb\n[b:children]\na\n[b]\n").unwrap_err();
        assert!(e.0.contains("recursive dependency loop"), "{}", e.0);
        let e = Inventory::new().parse_ini("/x/h", "h1 x=\"open\n").unwrap_err();
        assert!(e.0.contains("No closing quotation"), "{}", e.0);
    }

    #[test]
    fn ini_host_in_ungrouped_and_group() {
        let inv = ini("h1\nh2\n[g]\nh1\n");
        assert_eq!(inv.groups["ungrouped"].hosts, names(&["h2"]));
        assert_eq!(inv.group_names("h1"), names(&["g"]));
    }

    #[test]
    fn big_inventory_lists_hosts_again_in_groups() {
        // Kubespray's shape: every host under `all.hosts`, then again by name in its groups;
        // a few also listed under `ungrouped`, which they leave for their other group.
        let n = 6000;
        let node = |i: usize| format!("node{i:04}");
        let mut all = Map::new();
        let (mut kube, mut gpu, mut ungrouped) = (Map::new(), Map::new(), Map::new());
        for i in 0..n {
            all.insert(node(i), json!({"ansible_host": format!("10.0.{}.{}", i / 256, i % 256)}));
            kube.insert(node(i), Value::Null);
            if i % 2 == 0 {
                gpu.insert(node(i), Value::Null);
            }
            if i % 1000 == 1 {
                ungrouped.insert(node(i), Value::Null);
            }
        }
        all.insert("spare".into(), Value::Null);
        ungrouped.insert("spare".into(), Value::Null);
        let data = json!({"all": {"hosts": all, "children": {
            "ungrouped": {"hosts": ungrouped},
            "kube_node": {"hosts": kube},
            "k8s_cluster": {"children": {"kube_node": {}, "gpu": {"hosts": gpu}}},
        }}});
        let mut inv = Inventory::new();
        inv.parse_yaml_data("/inv.yml", &data).unwrap();
        inv.reconcile();
        assert_eq!(inv.hosts.len(), n + 1);
        assert_eq!(inv.groups["kube_node"].hosts.len(), n);
        assert_eq!(inv.groups["gpu"].hosts.len(), n / 2);
        assert_eq!(inv.groups["ungrouped"].hosts, names(&["spare"]));
        assert_eq!(inv.groups["all"].hosts.len(), n + 1);
        assert_eq!(inv.group_names("node5998"), names(&["gpu", "k8s_cluster", "kube_node"]));
        assert_eq!(inv.group_names("node5999"), names(&["k8s_cluster", "kube_node"]));
        assert_eq!(inv.group_names("node5001"), names(&["k8s_cluster", "kube_node"]));
        assert_eq!(inv.group_names("spare"), names(&["ungrouped"]));
        assert_eq!(ph(&inv, "gpu:&kube_node").len(), n / 2);
        assert_eq!(ph(&inv, "k8s_cluster").len(), n);
    }

    #[test]
    fn python_literals() {
        let l = |s: &str| pylit::literal_eval(s);
        assert_eq!(l("1"), Some(json!(1)));
        assert_eq!(l("-3"), Some(json!(-3)));
        assert_eq!(l("+ 3"), Some(json!(3)));
        assert_eq!(l("1_000"), Some(json!(1000)));
        assert_eq!(l("0o17"), Some(json!(15)));
        assert_eq!(l("0b101"), Some(json!(5)));
        assert_eq!(l("012"), None);
        assert_eq!(l("00"), Some(json!(0)));
        assert_eq!(l("1e3"), Some(json!(1000.0)));
        assert_eq!(l(".5"), Some(json!(0.5)));
        assert_eq!(l("5."), Some(json!(5.0)));
        assert_eq!(l("1.e2"), Some(json!(100.0)));
        assert_eq!(l("yes"), None);
        assert_eq!(l("true"), None);
        assert_eq!(l("False"), Some(json!(false)));
        assert_eq!(l("'a' \"b\""), Some(json!("ab")));
        assert_eq!(l(r"'tab\there'"), Some(json!("tab\there")));
        assert_eq!(l(r"r'raw\t'"), Some(json!("raw\\t")));
        assert_eq!(l(r"'\x41\u00e9\101'"), Some(json!("Aé\u{41}")));
        assert_eq!(l("b'bytes'"), Some(json!("bytes")));
        assert_eq!(l("f'x'"), None);
        assert_eq!(l("'''tri'ple'''"), Some(json!("tri'ple")));
        assert_eq!(l("[1, 'a', [None]]"), Some(json!([1, "a", [null]])));
        assert_eq!(l("(1,)"), Some(json!([1])));
        assert_eq!(l("1, 2"), Some(json!([1, 2])));
        assert_eq!(l("()"), Some(json!([])));
        assert_eq!(l("(5)"), Some(json!(5)));
        assert_eq!(l("{'a': 1, 2: [3], }"), Some(json!({"a": 1, "2": [3]})));
        assert_eq!(l("{1, 1, 2}"), Some(json!([1, 2])));
        assert_eq!(l("set()"), Some(json!([])));
        assert_eq!(l("{}"), Some(json!({})));
        assert_eq!(l("..."), Some(json!("...")));
        assert_eq!(l("1 # comment"), Some(json!(1)));
        assert_eq!(l("  7"), Some(json!(7)));
        assert_eq!(l("1 + 2"), None);
        assert_eq!(l("-'a'"), None);
        assert_eq!(l("--1"), None);
        assert_eq!(l("1j"), None);
        assert_eq!(l("a b"), None);
        assert_eq!(l(""), None);
        assert_eq!(l("[1, 2"), None);
        assert_eq!(l("1abc"), None);
        assert_eq!(l("99999999999999999999"), None);
        assert_eq!(parse_ini_value("99999999999999999999"), json!("99999999999999999999"));
        assert_eq!(parse_ini_value("a=b"), json!("a=b"));
    }

    #[test]
    fn shlex_and_addresses() {
        assert_eq!(shlex_split(r#"h a="b c" d='e' f=g\ h i="x\"y\z""#).unwrap(), names(&["h", "a=b c", "d=e", "f=g h", "i=x\"y\\z"]));
        assert_eq!(shlex_split("h # c").unwrap(), names(&["h"]));
        assert_eq!(shlex_split("h a=\"\"").unwrap(), names(&["h", "a="]));
        assert_eq!(parse_address("host:22", false).unwrap(), ("host".to_string(), Some(22)));
        assert_eq!(parse_address("[::1]:22", false).unwrap(), ("::1".to_string(), Some(22)));
        assert_eq!(parse_address("fe80::1", false).unwrap(), ("fe80::1".to_string(), None));
        assert_eq!(parse_address("10.0.0.1:80", false).unwrap(), ("10.0.0.1".to_string(), Some(80)));
        assert!(parse_address("web*", true).is_err());
        assert!(parse_address("bad_", true).is_err());
        assert!(parse_address("node[1:3]", false).is_err());
        assert!(parse_address("node[1:3].x", true).is_ok());
        assert_eq!(
            expand_hostname_range("db[01:10:3]n[a:b]").unwrap(),
            names(&["db01na", "db01nb", "db04na", "db04nb", "db07na", "db07nb", "db10na", "db10nb"])
        );
        assert_eq!(expand_hostname_range("x[:2]").unwrap(), names(&["x0", "x1", "x2"]));
        assert!(expand_hostname_range("x[01:100]").is_err());
        assert!(expand_hostname_range("x[c:a]").is_err());
    }

    fn yaml_inventory() -> Inventory {
        let data = json!({
            "all": {
                "hosts": {"solo": null, "10.0.0.5:2200": {"ansible_user": "root"}},
                "vars": {"v": "all"},
                "children": {
                    "web": {
                        "hosts": {"web[1:2].example.com": {"role": "web"}},
                        "vars": {"http_port": 80},
                        "children": {"canary": {"hosts": "web1.example.com"}}
                    },
                    "db-servers": {"hosts": {"db1": null}},
                }
            },
            "extra": {"hosts": {"db1": {"extra": true}}, "bogus": {}},
            "odd": ["not", "a", "group"]
        });
        let mut inv = Inventory::new();
        inv.parse_yaml_data("/inv/hosts.yml", &data).expect("yaml");
        inv.reconcile();
        inv
    }

    #[test]
    fn yaml_inventory_from_json_values() {
        let inv = yaml_inventory();
        assert_eq!(inv.groups["all"].vars["v"], json!("all"));
        assert_eq!(inv.groups["all"].hosts, names(&["solo", "10.0.0.5"]));
        assert_eq!(inv.hosts["10.0.0.5"].vars["ansible_port"], json!(2200));
        assert_eq!(inv.hosts["10.0.0.5"].vars["ansible_user"], json!("root"));
        assert_eq!(inv.groups["web"].hosts, names(&["web1.example.com", "web2.example.com"]));
        assert_eq!(inv.hosts["web2.example.com"].vars["role"], json!("web"));
        assert_eq!(inv.groups["web"].children, names(&["canary"]));
        assert!(inv.groups.contains_key("db-servers")); // YAML names are kept
        assert_eq!(inv.hosts["db1"].vars["extra"], json!(true));
        assert_eq!(inv.groups["ungrouped"].hosts, names(&["solo", "10.0.0.5"]));
        assert_eq!(inv.group_names("web1.example.com"), names(&["canary", "web"]));
        assert_eq!(inv.group_names("db1"), names(&["db-servers", "extra"]));
        assert!(inv.warnings.iter().any(|w| w.contains("Skipping 'odd'")), "{:?}", inv.warnings);
        assert!(inv.warnings.iter().any(|w| w.contains("unexpected key (bogus)")), "{:?}", inv.warnings);
        assert_eq!(inv.groups["all"].children, names(&["ungrouped", "web", "db-servers", "extra"]));
        assert_eq!(ph(&inv, "all"), names(&["solo", "10.0.0.5", "web1.example.com", "web2.example.com", "db1"]));

        let mut bad = Inventory::new();
        let e = bad.parse_yaml_data("/i.yml", &json!({"all": {"hosts": ["a"]}})).unwrap_err();
        assert!(e.0.contains("Invalid \"hosts\" entry for \"all\" group"), "{}", e.0);
        let e = Inventory::new().parse_yaml_data("/i.yml", &json!(["x"])).unwrap_err();
        assert!(e.0.contains("should be a dictionary"), "{}", e.0);
        let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"all": {"children": {"odd": [1]}}})).unwrap_err();
        assert_eq!(e.0, "/i.yml: odd is not a known host nor group");
        let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"plugin": "aws_ec2"})).unwrap_err();
        assert!(e.0.contains("plugin"), "{}", e.0);
        let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"all": {"hosts": {"h": "str"}}})).unwrap_err();
        assert!(e.0.contains("expected dictionary"), "{}", e.0);
    }

    #[test]
    fn comma_lists() {
        let inv = Inventory::load(&["localhost,".to_string()]).unwrap();
        assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), vec!["localhost"]);
        assert_eq!(inv.groups["ungrouped"].hosts, names(&["localhost"]));
        assert_eq!(ph(&inv, "all"), names(&["localhost"]));
        assert!(inv.dirs().is_empty());
        // an explicit localhost is a normal host: no implicit connection
        let src = inv.host_var_sources("localhost", None);
        assert!(src.iter().all(|s| !s.vars.contains_key("ansible_connection")));

        let inv = Inventory::load(&["a, b:2222 ,c,a,,node[1:2]".to_string()]).unwrap();
        assert_eq!(inv.hosts.keys().cloned().collect::<Vec<_>>(), names(&["a", "b", "c", "node[1:2]"]));
        assert_eq!(inv.hosts["b"].vars["ansible_port"], json!(2222));
        assert_eq!(inv.hosts["a"].vars["inventory_file"], json!("a, b:2222 ,c,a,,node[1:2]"));
        assert_eq!(inv.hosts["a"].vars["inventory_dir"], json!(null));
        assert_eq!(inv.group_names("a"), names(&["ungrouped"]));
    }

    #[test]
    fn patterns() {
        let inv = ini("lone\n[web]\nweb1\nweb2\nweb10\n[db]\ndb1\nweb2\n[prod:children]\nweb\n[stage]\ndb1\n");
        // `all` walks its children breadth first: ungrouped, db, prod, stage, then web
        assert_eq!(ph(&inv, "all"), names(&["lone", "db1", "web2", "web1", "web10"]));
        assert_eq!(ph(&inv, "*"), ph(&inv, "all"));
        assert_eq!(ph(&inv, "web"), names(&["web1", "web2", "web10"]));
        assert_eq!(ph(&inv, "prod"), names(&["web1", "web2", "web10"]));
        assert_eq!(ph(&inv, "db1"), names(&["db1"]));
        assert_eq!(ph(&inv, "web:db"), names(&["web1", "web2", "web10", "db1"]));
        assert_eq!(ph(&inv, "prod:web1"), names(&["web1", "web2", "web10"]));
        assert_eq!(ph(&inv, "web[1:0]"), names(&["web2"]));
        assert_eq!(ph(&inv, "db,web"), names(&["db1", "web2", "web1", "web10"]));
        assert_eq!(ph(&inv, "web:&db"), names(&["web2"]));
        assert_eq!(ph(&inv, "web:!db"), names(&["web1", "web10"]));
        assert_eq!(ph(&inv, "!web"), names(&["lone", "db1"]));
        assert_eq!(ph(&inv, "all:!prod:&stage"), names(&["db1"]));
        assert_eq!(ph(&inv, "web?"), names(&["web1", "web2"]));
        assert_eq!(ph(&inv, "web*"), names(&["web1", "web2", "web10"]));
        assert_eq!(ph(&inv, "w[e]b1*"), names(&["web1", "web10"]));
        assert_eq!(ph(&inv, "~web\\d$"), names(&["web1", "web2"]));
        assert_eq!(ph(&inv, "~(web|db)1"), names(&["web1", "web10", "db1"]));
        assert_eq!(ph(&inv, "web[0]"), names(&["web1"]));
        assert_eq!(ph(&inv, "web[-1]"), names(&["web10"]));
        assert_eq!(ph(&inv, "web[1:]"), names(&["web2", "web10"]));
        assert_eq!(ph(&inv, "web[0:1]"), names(&["web1", "web2"]));
        assert!(inv.pattern_hosts("web[5]").is_err());
        assert!(inv.pattern_hosts("~web(").is_err());
        assert!(ph(&inv, "nothing").is_empty());
        assert!(ph(&inv, "nothing*").is_empty());
        // the implicit localhost: by name only, never via all
        assert_eq!(ph(&inv, "localhost"), names(&["localhost"]));
        assert_eq!(ph(&inv, "127.0.0.1"), names(&["127.0.0.1"]));
        assert_eq!(ph(&inv, "web1:localhost"), names(&["web1", "localhost"]));
        assert!(!ph(&inv, "all").contains(&"localhost".to_string()));
        assert!(ph(&inv, "local*").is_empty());
        assert!(inv.is_implicit_localhost("localhost"));
        let src = inv.host_var_sources("localhost", None);
        assert_eq!(src.last().unwrap().vars["ansible_connection"], json!("local"));

        // a localhost-like host of the inventory stands in for the others
        let inv = ini("127.0.0.1\n");
        assert_eq!(ph(&inv, "localhost"), names(&["127.0.0.1"]));
        assert!(!inv.is_implicit_localhost("127.0.0.1"));

        let empty = Inventory::load(&[]).unwrap();
        assert!(ph(&empty, "all").is_empty());
        assert_eq!(ph(&empty, "localhost"), names(&["localhost"]));
        assert_eq!(empty.groups_var(), serde_json::from_value::<Map<String, Value>>(json!({"all": [], "ungrouped": []})).unwrap());
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn var_precedence_with_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let inv_dir = root.join("inventory");
        write(
            &inv_dir.join("hosts.ini"),
            "[web]\nw1 x=host_inline\n[prod:children]\nweb\n[all:vars]\nx=all_inv\n[web:vars]\nx=web_inv\n\
             [prod:vars]\nx=prod_inv\n[zeta]\nw1\n[zeta:vars]\nansible_group_priority=0\n",
        );
        write(&inv_dir.join("group_vars/all.json"), r#"{"x": "inv_gv_all"}"#);
        write(&inv_dir.join("group_vars/web/b.json"), r#"{"x": "inv_gv_web_b"}"#);
        write(&inv_dir.join("group_vars/web/a.json"), r#"{"x": "inv_gv_web_a"}"#);
        write(&inv_dir.join("group_vars/web/skip~"), r#"{"x": "skipped"}"#);
        write(&inv_dir.join("group_vars/prod.json"), r#"{"x": "inv_gv_prod"}"#);
        write(&inv_dir.join("group_vars/empty.json"), "{}");
        write(&inv_dir.join("host_vars/w1.json"), r#"{"x": "inv_hv"}"#);
        let pb = root.join("play");
        write(&pb.join("group_vars/all.json"), r#"{"x": "pb_gv_all"}"#);
        write(&pb.join("group_vars/zeta.json"), r#"{"x": "pb_gv_zeta"}"#);
        write(&pb.join("host_vars/w1.json"), r#"{"x": "pb_hv"}"#);
        write(&pb.join("host_vars/localhost.json"), r#"{"x": "pb_hv_localhost"}"#);

        let inv = Inventory::load(&[inv_dir.to_string_lossy().into_owned()]).unwrap();
        assert_eq!(inv.dirs(), vec![inv_dir.clone()]);
        assert_eq!(inv.hosts["w1"].vars["inventory_file"], json!(inv_dir.join("hosts.ini").to_string_lossy()));
        assert_eq!(inv.hosts["w1"].vars["inventory_dir"], json!(inv_dir.to_string_lossy()));
        // groups sort by depth, then priority, then name: zeta (depth 1, priority 0),
        // prod (depth 1), then web (depth 2)
        assert_eq!(inv.sorted_host_groups("w1"), names(&["zeta", "prod", "web"]));
        inv.check_playbook_vars(&pb).unwrap();
        let sources = inv.host_var_sources("w1", Some(&pb));
        let got: Vec<(String, Value)> = sources.iter().map(|s| (s.label.clone(), s.vars.get("x").cloned().unwrap_or(Value::Null))).collect();
        let l = |p: &Path| display_path(p);
        let want = vec![
            ("inventory (group all)".to_string(), json!("all_inv")),
            ("inventory (group prod)".to_string(), json!("prod_inv")),
            ("inventory (group web)".to_string(), json!("web_inv")),
            (l(&inv_dir.join("group_vars/all.json")), json!("inv_gv_all")),
            (l(&pb.join("group_vars/all.json")), json!("pb_gv_all")),
            (l(&inv_dir.join("group_vars/prod.json")), json!("inv_gv_prod")),
            (l(&inv_dir.join("group_vars/web/a.json")), json!("inv_gv_web_a")),
            (l(&inv_dir.join("group_vars/web/b.json")), json!("inv_gv_web_b")),
            (l(&pb.join("group_vars/zeta.json")), json!("pb_gv_zeta")),
            ("inventory (host w1)".to_string(), json!("host_inline")),
            (l(&inv_dir.join("host_vars/w1.json")), json!("inv_hv")),
            (l(&pb.join("host_vars/w1.json")), json!("pb_hv")),
        ];
        assert_eq!(got, want);

        // the implicit localhost: all's vars and files, its own vars, its host_vars
        let sources = inv.host_var_sources("localhost", Some(&pb));
        let labels: Vec<&str> = sources.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels[0], "inventory (group all)");
        assert_eq!(labels[3], "implicit localhost");
        assert_eq!(sources.last().unwrap().vars["x"], json!("pb_hv_localhost"));
        assert_eq!(sources.len(), 5);

        // broken files are errors naming the file
        write(&inv_dir.join("group_vars/web/c.json"), "[1, 2]");
        let e = Inventory::load(&[inv_dir.to_string_lossy().into_owned()]).unwrap_err();
        assert!(e.0.contains("c.json") && e.0.contains("must contain a dictionary"), "{}", e.0);
    }

    #[test]
    fn directory_sources_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let d = root.join("inv");
        write(&d.join("01-hosts.ini"), "[web]\nw1\n");
        write(&d.join("02-more"), "[web]\nw2\n[db]\nd1\n");
        write(&d.join("03.json"), r#"{"db": {"hosts": {"d2": {"k": 1}}}}"#);
        write(&d.join("035-noext"), r#"{"db": {"hosts": {"d3": null}}}"#);
        write(&d.join("hosts.retry"), "junk junk\n");
        write(&d.join("notes.txt"), "[[[\n");
        write(&d.join("old.orig"), "[[[\n");
        write(&d.join(".hidden"), "[[[\n");
        write(&d.join("group_vars/web.json"), r#"{"g": 1}"#);
        write(&d.join("sub/04.ini"), "[sub]\ns1\n");
        let other = root.join("other.ini");
        write(&other, "[web]\nw3\n");
        let inv = Inventory::load(&[d.to_string_lossy().into_owned(), other.to_string_lossy().into_owned()]).unwrap();
        assert_eq!(inv.groups["web"].hosts, names(&["w1", "w2", "w3"]));
        assert_eq!(inv.groups["db"].hosts, names(&["d1", "d2", "d3"]));
        assert_eq!(inv.hosts["d2"].vars["k"], json!(1));
        assert_eq!(inv.groups["sub"].hosts, names(&["s1"]));
        assert_eq!(inv.dirs(), vec![d.clone(), root.clone()]);
        assert_eq!(inv.hosts["w2"].vars["inventory_file"], json!(d.join("02-more").to_string_lossy()));
        assert_eq!(inv.hosts["w3"].vars["inventory_dir"], json!(root.to_string_lossy()));
        let src = inv.host_var_sources("w3", None);
        assert!(src.iter().any(|s| s.vars.get("g") == Some(&json!(1))));

        let inv = Inventory::load(&[root.join("missing").to_string_lossy().into_owned()]).unwrap();
        assert!(inv.warnings[0].starts_with("Unable to parse") && inv.warnings[0].contains("missing"), "{:?}", inv.warnings);
        assert_eq!(inv.warnings[1], "No inventory was parsed, only implicit localhost is available");
        assert_eq!(ph(&inv, "localhost"), names(&["localhost"]));
        write(&root.join("bad.ini"), "ok\n[g:nope]\n");
        let e = Inventory::load(&[root.join("bad.ini").to_string_lossy().into_owned()]).unwrap_err();
        assert!(e.0.ends_with("bad.ini:2: Section [g:nope] has unknown type: nope"), "{}", e.0);
    }

    #[test]
    fn no_extension_heuristics() {
        assert!(!could_be_yaml_mapping("# c\n[web]\nh1 a=b\n"));
        assert!(!could_be_yaml_mapping("h1 ansible_host=1.2.3.4\nh2\n"));
        assert!(could_be_yaml_mapping("all:\n  hosts:\n    a:\n"));
        assert!(could_be_yaml_mapping("---\nall: {}\n"));
        assert!(could_be_yaml_mapping("h1 x=\"a: b\"\n"));
    }
}

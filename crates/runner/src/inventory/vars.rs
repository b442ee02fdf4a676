//! A host's variables by source in Ansible's precedence, and the `group_vars/` and `host_vars/`
//! files they come from (found, parsed and cached).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use airlock_base::pyfmt::json_type_name as type_name;
use serde_json::{Map, Value};

use super::sources::parse_yaml_text;
use super::{EntityVars, Inventory, InventoryError, LOCALHOST_NAMES, VarSource, VarsCache, VarsFiles, YAML_EXTENSIONS, canonical_dir, display_path, split_ext};
use crate::vars::Level;

impl Inventory {
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

    pub(super) fn preload_inventory_vars(&self) -> Result<(), InventoryError> {
        for d in self.vars_dirs() {
            self.preload_dir(&d, LOCALHOST_NAMES.iter().copied())?;
        }
        Ok(())
    }

    fn preload_dir(&self, dir: &Path, extra_hosts: impl Iterator<Item = &'static str>) -> Result<(), InventoryError> {
        let gdir = dir.join("group_vars");
        if gdir.is_dir() {
            for g in self.groups.keys() {
                self.vars_cache.entity(dir, "group_vars", g).map_err(InventoryError::VarsFile)?;
            }
        }
        let hdir = dir.join("host_vars");
        if hdir.is_dir() {
            for h in self.hosts.keys().map(String::as_str) {
                self.vars_cache.entity(dir, "host_vars", h).map_err(InventoryError::VarsFile)?;
            }
            for h in extra_hosts {
                self.vars_cache.entity(dir, "host_vars", h).map_err(InventoryError::VarsFile)?;
            }
        }
        Ok(())
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
        _ => parse_yaml_text(&shown, &text).map_err(|e| e.to_string())?,
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(m) if m.is_empty() => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(format!("{shown}: variables file must contain a dictionary, got {} instead", type_name(&other))),
    }
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

//! Variables: Ansible's precedence levels, and the layers a task sees, highest first.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

/// A set of variables shared between tasks without copying.
pub type VarMap = Arc<Map<String, Json>>;

/// Ansible's variable precedence, lowest first (the order of the "Understanding variable
/// precedence" table). A higher level replaces a lower one's value whole
/// (`hash_behaviour=replace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    RoleDefaults,
    InventoryGroupVars,
    InventoryGroupVarsAll,
    PlaybookGroupVarsAll,
    InventoryGroupVarsFiles,
    PlaybookGroupVarsFiles,
    InventoryHostVars,
    InventoryHostVarsFiles,
    PlaybookHostVarsFiles,
    Facts,
    PlayVars,
    PlayVarsPrompt,
    PlayVarsFiles,
    RoleVars,
    BlockVars,
    TaskVars,
    IncludeVars,
    SetFacts,
    RoleParams,
    IncludeParams,
    ExtraVars,
}

impl Level {
    /// How `--list-vars` and errors name the level.
    pub fn label(self) -> &'static str {
        match self {
            Level::RoleDefaults => "role defaults",
            Level::InventoryGroupVars => "inventory group vars",
            Level::InventoryGroupVarsAll => "inventory group_vars/all",
            Level::PlaybookGroupVarsAll => "playbook group_vars/all",
            Level::InventoryGroupVarsFiles => "inventory group_vars/*",
            Level::PlaybookGroupVarsFiles => "playbook group_vars/*",
            Level::InventoryHostVars => "inventory host vars",
            Level::InventoryHostVarsFiles => "inventory host_vars/*",
            Level::PlaybookHostVarsFiles => "playbook host_vars/*",
            Level::Facts => "host facts",
            Level::PlayVars => "play vars",
            Level::PlayVarsPrompt => "play vars_prompt",
            Level::PlayVarsFiles => "play vars_files",
            Level::RoleVars => "role vars",
            Level::BlockVars => "block vars",
            Level::TaskVars => "task vars",
            Level::IncludeVars => "include_vars",
            Level::SetFacts => "set_fact / register",
            Level::RoleParams => "role params",
            Level::IncludeParams => "include params",
            Level::ExtraVars => "extra vars",
        }
    }
}

/// One layer of variables with its level and a label naming its source.
#[derive(Clone, Debug)]
pub struct Layer {
    pub level: Level,
    pub source: Arc<str>,
    /// The file the variables were read from, when they come from one (`--list-vars` shows
    /// the line of each variable).
    pub file: Option<Arc<Path>>,
    pub vars: VarMap,
}

/// Layers collected for one task; `ordered()` gives them highest precedence first, keeping
/// the order of insertion within one level (later insertions win).
#[derive(Clone, Debug, Default)]
pub struct Layers {
    items: Vec<Layer>,
}

impl Layers {
    pub fn new() -> Self {
        Self { items: Vec::with_capacity(24) }
    }

    /// Adds a layer; within one level, a layer added later wins over earlier ones.
    pub fn push(&mut self, level: Level, source: impl Into<Arc<str>>, vars: VarMap) {
        self.push_from(level, source, None, vars);
    }

    /// Adds a layer read from a file (or not, with `None`).
    pub fn push_from(&mut self, level: Level, source: impl Into<Arc<str>>, file: Option<Arc<Path>>, vars: VarMap) {
        if !vars.is_empty() {
            self.items.push(Layer { level, source: source.into(), file, vars });
        }
    }

    /// The layers, highest precedence first.
    pub fn ordered(&self) -> Vec<&Layer> {
        let mut v: Vec<(usize, &Layer)> = self.items.iter().enumerate().collect();
        v.sort_by(|(ia, a), (ib, b)| b.level.cmp(&a.level).then(ib.cmp(ia)));
        v.into_iter().map(|(_, l)| l).collect()
    }

    /// The maps, highest precedence first, for a template context.
    pub fn maps(&self) -> Vec<VarMap> {
        self.ordered().into_iter().map(|l| l.vars.clone()).collect()
    }

    /// Where a variable's value comes from: the winning layer.
    pub fn source_of(&self, name: &str) -> Option<&Layer> {
        self.ordered().into_iter().find(|l| l.vars.contains_key(name))
    }
}

/// Parses one `-e` value: `@file` (YAML or JSON), inline JSON/YAML mapping, or `k=v` pairs.
pub fn parse_extra_vars(arg: &str) -> Result<Map<String, Json>, String> {
    let arg = arg.trim();
    if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path).map_err(|e| format!("could not read extra vars file {path}: {e}"))?;
        return match airlock_base::yaml::parse_json(&text) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(Json::Null) => Ok(Map::new()),
            Ok(_) => Err(format!("extra vars file {path} must hold a mapping")),
            Err(e) => Err(format!("could not parse extra vars file {path}: {e}")),
        };
    }
    if arg.starts_with('{') || arg.starts_with('[') {
        return match airlock_base::yaml::parse_json(arg) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(_) => Err(format!("extra vars must be a mapping: {arg}")),
            Err(e) => Err(format!("could not parse extra vars '{arg}': {e}")),
        };
    }
    let args = crate::playbook::parse_kv(arg);
    if args.contains_key("_raw_params") {
        return Err(format!("could not parse extra vars '{arg}': expected k=v pairs, a JSON/YAML mapping or @file"));
    }
    Ok(args)
}

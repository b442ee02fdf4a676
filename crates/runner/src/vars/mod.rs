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

/// Why a `-e` value cannot be used; each names the file or the text given.
#[derive(Debug, thiserror::Error)]
pub enum ExtraVarsError {
    #[error("could not read extra vars file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("extra vars file {path} must hold a mapping")]
    FileNotMapping { path: String },
    #[error("could not parse extra vars file {path}: {source}")]
    FileSyntax { path: String, source: airlock_base::yaml::YamlError },
    #[error("extra vars must be a mapping: {arg}")]
    NotMapping { arg: String },
    #[error("could not parse extra vars '{arg}': {source}")]
    Syntax { arg: String, source: airlock_base::yaml::YamlError },
    #[error("could not parse extra vars '{arg}': expected k=v pairs, a JSON/YAML mapping or @file")]
    NotKeyValue { arg: String },
}

/// Parses one `-e` value: `@file` (YAML or JSON), inline JSON/YAML mapping, or `k=v` pairs.
pub fn parse_extra_vars(arg: &str) -> Result<Map<String, Json>, ExtraVarsError> {
    let arg = arg.trim();
    if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path).map_err(|source| ExtraVarsError::Read { path: path.to_string(), source })?;
        return match airlock_base::yaml::parse_json(&text) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(Json::Null) => Ok(Map::new()),
            Ok(_) => Err(ExtraVarsError::FileNotMapping { path: path.to_string() }),
            Err(source) => Err(ExtraVarsError::FileSyntax { path: path.to_string(), source }),
        };
    }
    if arg.starts_with('{') || arg.starts_with('[') {
        return match airlock_base::yaml::parse_json(arg) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(_) => Err(ExtraVarsError::NotMapping { arg: arg.to_string() }),
            Err(source) => Err(ExtraVarsError::Syntax { arg: arg.to_string(), source }),
        };
    }
    let args = crate::playbook::parse_kv(arg);
    if args.contains_key("_raw_params") {
        return Err(ExtraVarsError::NotKeyValue { arg: arg.to_string() });
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_forms_and_their_errors() {
        assert_eq!(parse_extra_vars("a=1 b=two").unwrap()["b"], "two");
        assert_eq!(parse_extra_vars("{\"a\": [1]}").unwrap()["a"], serde_json::json!([1]));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.yml");
        std::fs::write(&f, "- a\n").unwrap();
        let at = format!("@{}", f.display());
        assert_eq!(parse_extra_vars(&at).unwrap_err().to_string(), format!("extra vars file {} must hold a mapping", f.display()));
        std::fs::write(&f, "k: v\n").unwrap();
        assert_eq!(parse_extra_vars(&at).unwrap()["k"], "v");
        assert!(matches!(parse_extra_vars("@/nonexistent/x.yml").unwrap_err(), ExtraVarsError::Read { .. }));
        assert_eq!(parse_extra_vars("[1]").unwrap_err().to_string(), "extra vars must be a mapping: [1]");
        assert!(parse_extra_vars("{a: [").unwrap_err().to_string().starts_with("could not parse extra vars '{a: [': "));
        assert_eq!(
            parse_extra_vars("just words").unwrap_err().to_string(),
            "could not parse extra vars 'just words': expected k=v pairs, a JSON/YAML mapping or @file"
        );
    }
}

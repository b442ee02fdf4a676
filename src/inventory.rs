//! Inventories as Ansible reads them: a comma list (`localhost,`), INI and YAML files and
//! directories, groups with `children`, inline host variables, `group_vars/` and `host_vars/`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// One host and the variables set on it directly (inline or in the inventory's host entry).
#[derive(Clone, Debug, Default)]
pub struct Host {
    pub name: String,
    pub vars: Map<String, Value>,
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
/// `--list-vars`), e.g. `group_vars/all.yml` or `inventory host vars`.
#[derive(Clone, Debug)]
pub struct VarSource {
    pub label: String,
    pub vars: Map<String, Value>,
}

/// The hosts and groups of a run. `all` and `ungrouped` always exist; `localhost` is implicit
/// (matched by name, not by `all`) when no inventory lists it.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
}

/// An inventory error naming the file and line where one is known.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InventoryError(pub String);

impl Inventory {
    /// Loads every `-i` source in order (files, directories, comma lists). `None` of them means
    /// an empty inventory with only the implicit localhost.
    pub fn load(_sources: &[String]) -> Result<Inventory, InventoryError> {
        Ok(Inventory::default())
    }

    /// Hosts matched by a `hosts:` / `--limit` pattern, in inventory order.
    pub fn pattern_hosts(&self, _pattern: &str) -> Result<Vec<String>, InventoryError> {
        Ok(vec!["localhost".to_string()])
    }

    /// The names of the groups a host belongs to (`group_names`), sorted, without `all`.
    pub fn group_names(&self, _host: &str) -> Vec<String> {
        Vec::new()
    }

    /// Every group with its hosts (`groups` magic variable), `all` included.
    pub fn groups_var(&self) -> Map<String, Value> {
        Map::new()
    }

    /// A host's inventory variables in Ansible's order, lowest precedence first:
    /// inventory group vars (all, then parents before children), inventory `group_vars/` files
    /// for the same groups, then inventory host vars, then inventory `host_vars/` files. With
    /// `playbook_dir`, `group_vars/` and `host_vars/` beside the playbook come after the
    /// inventory's of the same kind.
    pub fn host_var_sources(&self, _host: &str, _playbook_dir: Option<&Path>) -> Vec<VarSource> {
        Vec::new()
    }

    /// Directories the inventory came from (for `inventory_dir`).
    pub fn dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

//! INI inventories: sections, host lines split as `shlex` does, and values read as Python
//! literals.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value;

use super::addresses::expand_hostpattern;
use super::pylit;
use super::{HostLine, Inventory, InventoryError};

pub(super) static INI_SECTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").expect("regex"));
static INI_GROUPNAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").expect("regex"));

impl Inventory {
    pub(super) fn parse_ini(&mut self, path: &str, text: &str) -> Result<(), InventoryError> {
        let err = |line: usize, problem: String| InventoryError::Line { path: path.to_string(), line, problem };
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
}

/// One host line of an INI inventory: the hosts of its pattern, the port, the variables.
fn parse_ini_host_definition(line: &str) -> Result<HostLine, String> {
    let tokens = airlock_base::shlex::split_with_comments(line).map_err(|e| format!("Error parsing host definition '{line}': {e}"))?;
    let Some(first) = tokens.first() else {
        return Err(format!("Expected a host definition, got: {line}"));
    };
    let (hosts, port) = expand_hostpattern(first).map_err(|e| e.to_string())?;
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

//! YAML (and JSON) inventories: `all: {hosts: ..., vars: ..., children: ...}`.

use airlock_base::pyfmt::json_type_name as type_name;
use serde_json::{Map, Value};

use super::addresses::expand_hostpattern;
use super::{Inventory, InventoryError, is_truthy};

impl Inventory {
    /// Reads a YAML inventory (`all: {hosts: ..., vars: ..., children: ...}`) already parsed to
    /// JSON data. `path` names the source in errors and in `inventory_file`.
    pub(super) fn parse_yaml_data(&mut self, path: &str, data: &Value) -> Result<(), InventoryError> {
        let err = |problem: String| InventoryError::Source { source_name: path.to_string(), problem };
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
                        let (hosts, port) = expand_hostpattern(pattern).map_err(|e| e.to_string())?;
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
}

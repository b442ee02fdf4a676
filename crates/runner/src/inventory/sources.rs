//! Inventory sources: comma host lists, directories and files, and which format a file is in.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::addresses::parse_address;
use super::ini::INI_SECTION;
use super::{INVENTORY_IGNORE_EXTS, Inventory, InventoryError, YAML_EXTENSIONS, is_executable, split_ext};

impl Inventory {
    pub(super) fn parse_host_list(&mut self, list: &str) -> Result<(), InventoryError> {
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
                self.add_host(&host, Some("ungrouped"), port, Some(list)).map_err(InventoryError::HostList)?;
            }
        }
        Ok(())
    }

    pub(super) fn parse_source(&mut self, path: &Path) -> Result<(), InventoryError> {
        if path.is_dir() {
            let mut names: Vec<String> = fs::read_dir(path)
                .map_err(|e| InventoryError::Source { source_name: path.display().to_string(), problem: e.to_string() })?
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
            return Err(InventoryError::Source { source_name: src, problem: "TOML inventories are not supported".into() });
        }
        let bytes = fs::read(path).map_err(|e| InventoryError::Source { source_name: src.clone(), problem: e.to_string() })?;
        let text =
            String::from_utf8(bytes).map_err(|_| InventoryError::Source { source_name: src.clone(), problem: "inventory file is not valid UTF-8".into() })?;
        if text.starts_with("#!") && is_executable(path) {
            return Err(InventoryError::Source {
                source_name: src,
                problem: "dynamic inventory scripts are not supported (the file is executable and starts with #!)".into(),
            });
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
}

pub(super) fn parse_yaml_text(path: &str, text: &str) -> Result<Value, InventoryError> {
    airlock_base::yaml::parse_json(text).map_err(|e| InventoryError::Syntax { path: path.to_string(), line: e.mark.line, col: e.mark.col, message: e.message })
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn no_extension_heuristics() {
        assert!(!could_be_yaml_mapping("# c\n[web]\nh1 a=b\n"));
        assert!(!could_be_yaml_mapping("h1 ansible_host=1.2.3.4\nh2\n"));
        assert!(could_be_yaml_mapping("all:\n  hosts:\n    a:\n"));
        assert!(could_be_yaml_mapping("---\nall: {}\n"));
        assert!(could_be_yaml_mapping("h1 x=\"a: b\"\n"));
    }
}

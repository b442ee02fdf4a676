//! The role's variables stay documented: every top-level variable of
//! `roles/offline-repo-mirrors/defaults/main.yml` has a row in a table of
//! docs/site-customization.md ("The role's variables") giving its default, and a commented
//! `#name: value` line with that default in config.example/airgap/offline_repo_vars.yml; neither
//! names a variable the role does not have.

use std::collections::BTreeMap;
use std::path::Path;

/// The top-level variables of a defaults file, in order: each name with the text after `name:`
/// (empty for a value written on the following lines).
fn variables(defaults: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in defaults.lines() {
        if let Some((name, rest)) = top_level_key(line) {
            out.insert(name.to_string(), rest.trim().to_string());
        }
    }
    out
}

/// `name: rest` at the start of a line, `name` made of lowercase letters, digits and `_`.
fn top_level_key(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.split_once(':')?;
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some((name, rest))
}

/// A scalar as written, without its quotes: `"/tmp/deepops"` and `/tmp/deepops` compare equal.
fn unquoted(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// The rows of the tables under `## The role's variables`: the variable and its default cell.
fn documented(doc: &str) -> Vec<(String, String)> {
    doc.lines()
        .skip_while(|l| l.trim_end() != "## The role's variables")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells.get(1)?.trim_matches('`').to_string();
            let default = cells.get(2)?.to_string();
            Some((name, default))
        })
        .collect()
}

/// Every way the documentation and the example configuration are out of step with the
/// defaults, one sentence each.
fn problems(defaults: &str, doc: &str, example: &str) -> Vec<String> {
    let vars = variables(defaults);
    let mut out = Vec::new();
    let rows = documented(doc);
    for (name, rest) in &vars {
        match rows.iter().find(|(n, _)| n == name) {
            None => out.push(format!("docs/site-customization.md does not document `{name}` (add a row to a table under \"The role's variables\")")),
            Some((_, cell)) => {
                // A value on the same line is a scalar or a flow collection: the table shows it.
                if !rest.is_empty() && unquoted(cell.trim_matches('`')) != unquoted(rest) {
                    out.push(format!("docs/site-customization.md gives `{name}` the default {cell}, defaults/main.yml has {rest}"));
                }
            }
        }
        let line = format!("#{name}:");
        match example.lines().find(|l| l.starts_with(&line)) {
            None => out.push(format!("config.example/airgap/offline_repo_vars.yml lacks the commented setting `#{name}: ...`")),
            Some(l) => {
                if !rest.is_empty() && l[line.len()..].trim() != rest {
                    out.push(format!("config.example/airgap/offline_repo_vars.yml has `{l}`, defaults/main.yml has `{name}: {rest}`"));
                }
            }
        }
    }
    for (name, _) in &rows {
        if !vars.contains_key(name) {
            out.push(format!("docs/site-customization.md documents `{name}`, which defaults/main.yml does not have"));
        }
    }
    for l in example.lines() {
        if let Some((name, _)) = l.strip_prefix('#').and_then(top_level_key)
            && !vars.contains_key(name)
        {
            out.push(format!("config.example/airgap/offline_repo_vars.yml sets `{name}`, which defaults/main.yml does not have"));
        }
    }
    out
}

#[test]
fn every_role_variable_is_documented_and_in_the_example_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let defaults = read("roles/offline-repo-mirrors/defaults/main.yml");
    assert!(variables(&defaults).len() > 40, "the line scan found too few variables in defaults/main.yml");
    let p = problems(&defaults, &read("docs/site-customization.md"), &read("config.example/airgap/offline_repo_vars.yml"));
    assert!(p.is_empty(), "the role's variables are out of step with their documentation:\n{}", p.join("\n"));
}

#[test]
fn the_check_names_undocumented_stale_and_wrong_defaults() {
    let defaults = "---\n# comment\nport: 8001\nname: \"x\"\nlist:\n  - a\nnew_var: true\n";
    let doc = "## The role's variables\n\n| variable | default | meaning |\n|---|---|---|\n| `port` | `8000` | p |\n\
               | `name` | `x` | n |\n| `list` | a | l |\n| `gone` | `1` | g |\n\n## Recipes\n\n| `new_var` | `true` | not in a variables table |\n";
    let example = "---\n#port: 8001\n#name: \"y\"\n#list:\n#  - a\n#   old: 1\n#other: 2\n";
    assert_eq!(
        problems(defaults, doc, example),
        [
            "config.example/airgap/offline_repo_vars.yml has `#name: \"y\"`, defaults/main.yml has `name: \"x\"`",
            "docs/site-customization.md does not document `new_var` (add a row to a table under \"The role's variables\")",
            "config.example/airgap/offline_repo_vars.yml lacks the commented setting `#new_var: ...`",
            "docs/site-customization.md gives `port` the default `8000`, defaults/main.yml has 8001",
            "docs/site-customization.md documents `gone`, which defaults/main.yml does not have",
            "config.example/airgap/offline_repo_vars.yml sets `other`, which defaults/main.yml does not have",
        ]
    );
}

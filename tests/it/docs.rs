//! docs/modules.md documents exactly the arguments airlock's offline modules accept:
//! every name in a module's `const ALLOWED` list has a row in the Parameters table under the
//! module's `## <name>` heading, and every row names an argument the module accepts.

use std::collections::BTreeSet;
use std::path::Path;

const MODULES: &[&str] = &[
    "image_cache",
    "yum_sync",
    "pip_download",
    "helm_sync",
    "cache_files",
    "offline_archive",
    "offline_extract",
    "registry_import",
    "docker_image",
    "docker_container",
    "yum_repository",
    "apt_repository",
    "package",
    "systemd",
    "service",
    "slurp",
];

/// The names of `const ALLOWED: &[&str] = &["a", "b", ...];` in a module's source.
fn allowed(source: &str) -> Result<BTreeSet<String>, String> {
    let at = source.find("const ALLOWED").ok_or("no `const ALLOWED` list")?;
    let rest = &source[at..];
    let open = rest.find("= &[").ok_or("`const ALLOWED` is not `= &[...]`")? + "= &[".len();
    let close = open + rest[open..].find(']').ok_or("`const ALLOWED` has no closing `]`")?;
    // Between the brackets, every other piece split on quotes is a name.
    Ok(rest[open..close].split('"').skip(1).step_by(2).map(str::to_string).collect())
}

/// The lines of the Parameters table under `## <module>`.
fn parameter_rows<'a>(doc: &'a str, module: &str) -> Result<Vec<&'a str>, String> {
    let heading = format!("## {module}");
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != heading);
    if lines.next().is_none() {
        return Err(format!("no `{heading}` heading"));
    }
    let section: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let table: Vec<&str> = section
        .iter()
        .skip_while(|l| l.trim_end() != "### Parameters")
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect();
    if table.len() < 3 {
        return Err("no `### Parameters` table with rows".into());
    }
    // The header and the `|---|` line.
    Ok(table[2..].to_vec())
}

/// What is wrong with one module's Parameters table, each problem a sentence.
fn problems(module: &str, source: &str, doc: &str) -> Vec<String> {
    let allowed = match allowed(source) {
        Ok(a) => a,
        Err(e) => return vec![format!("crates/runner/src/modules/{module}.rs: {e}")],
    };
    let rows = match parameter_rows(doc, module) {
        Ok(r) => r,
        Err(e) => return vec![format!("docs/modules.md, {module}: {e}")],
    };
    let mut out = Vec::new();
    let mut documented = BTreeSet::new();
    for row in rows {
        let cell = row.split('|').nth(1).unwrap_or("");
        let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
        let Some(first) = names.first() else {
            out.push(format!("{module}: a parameter row names no `argument`: {row}"));
            continue;
        };
        // `images` / `repo` documents a key of each `images` entry.
        let sub_option = cell.contains('/');
        if !allowed.contains(*first) {
            out.push(format!("{module}: documents `{first}`, which the module does not accept (its ALLOWED: {allowed:?})"));
        } else if !sub_option && !documented.insert(first.to_string()) {
            out.push(format!("{module}: documents `{first}` twice"));
        }
    }
    for name in allowed.difference(&documented) {
        out.push(format!("{module}: accepts `{name}`, which its Parameters table in docs/modules.md does not document"));
    }
    out
}

#[test]
fn every_module_argument_is_documented_and_every_documented_one_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/modules.md")).expect("docs/modules.md");
    let mut all = Vec::new();
    for module in MODULES {
        let source = std::fs::read_to_string(root.join(format!("crates/runner/src/modules/{module}.rs"))).expect("the module's source");
        all.extend(problems(module, &source, &doc));
    }
    assert!(all.is_empty(), "docs/modules.md is out of step with the modules:\n{}", all.join("\n"));
}

#[test]
fn the_check_names_missing_unknown_and_repeated_parameters() {
    let source = r#"const ALLOWED: &[&str] = &["dest", "files", "timeout"];"#;
    let doc = "## other\n\n### Parameters\n\n| Parameter | Type |\n|---|---|\n| `timeout` | integer |\n\n\
               ## mod\n\n### Parameters\n\n| Parameter | Type |\n|---|---|\n| `dest` | path |\n| `dest` | path |\n\
               | `files` | list |\n| `files` / `url` | string |\n| `force` | boolean |\n\n### Notes\n\n| `retries` | x |\n";
    let p = problems("mod", source, doc);
    assert_eq!(
        p,
        [
            "mod: documents `dest` twice",
            r#"mod: documents `force`, which the module does not accept (its ALLOWED: {"dest", "files", "timeout"})"#,
            "mod: accepts `timeout`, which its Parameters table in docs/modules.md does not document",
        ],
        "{p:#?}"
    );
    assert_eq!(problems("absent", source, doc), ["docs/modules.md, absent: no `## absent` heading"]);
}

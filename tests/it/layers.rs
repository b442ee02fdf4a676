//! The crates' layering, as docs/architecture.md states it, against what their manifests say:
//! a new dependency between airlock crates has to be written into the table first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The airlock crates a manifest's `[dependencies]` names.
fn airlock_deps(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]" && line.starts_with("airlock-") {
            out.insert(line.split([' ', '=', '.']).next().unwrap().to_string());
        }
    }
    out
}

/// The table of docs/architecture.md: crate → (folder, the crates it may use).
fn documented() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| airlock")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let name = cells[0].to_string();
        let folder = cells[1].trim_matches('`').to_string();
        let may = match cells[cells.len() - 1] {
            "nothing of airlock" => BTreeSet::new(),
            "all" => BTreeSet::from(["*".to_string()]),
            list => list.split(", ").map(|c| format!("airlock-{c}")).collect(),
        };
        out.insert(name, (folder, may));
    }
    out
}

#[test]
fn crates_depend_only_on_the_layers_below_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = documented();
    let members: BTreeSet<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path().join("Cargo.toml")).unwrap();
            let name = text.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string();
            assert_eq!(
                doc.get(&name).map(|d| d.0.as_str()),
                Some(format!("crates/{}", e.file_name().to_string_lossy()).as_str()),
                "{name} is not in the table of docs/architecture.md with its folder"
            );
            name
        })
        .collect();
    let all: BTreeSet<String> = members.iter().cloned().collect();
    for (name, (folder, may)) in &doc {
        let manifest = if folder == "src/" { root.join("Cargo.toml") } else { root.join(folder).join("Cargo.toml") };
        let deps = airlock_deps(&manifest);
        let allowed = if may.contains("*") { all.clone() } else { may.clone() };
        let upward: Vec<_> = deps.difference(&allowed).collect();
        assert!(upward.is_empty(), "{name} depends on {upward:?}, which docs/architecture.md does not allow it");
        // Every lib.rs says its one job first.
        let lib = root.join(folder).join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(text.starts_with(&format!("//! {name}:")), "{} must start with `//! {name}: <its job>`", lib.display());
        }
    }
    // The table and the workspace agree on the crates.
    let documented_crates: BTreeSet<String> = doc.keys().filter(|k| k.as_str() != "airlock").cloned().collect();
    assert_eq!(documented_crates, members);
}

/// The order of airlock-runner's folders, bottom first, as docs/architecture.md states it;
/// each may use only those before it.
const RUNNER_ORDER: &[&str] = &["config", "secrets", "modules", "playbook", "vars", "inventory", "run"];

/// The runner's top-level modules a file's `crate::` paths name.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        out.insert(name);
    }
    out
}

#[test]
fn the_runner_folders_use_only_those_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runner/src");
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let stated = RUNNER_ORDER.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>();
    assert!(stated.iter().all(|m| doc.contains(m.as_str())), "docs/architecture.md must name the runner's folders {stated:?}");
    let mut seen = BTreeSet::new();
    for (rel, bytes) in crate::support::tree(&src) {
        let Some(file) = rel.strip_suffix(".rs") else { continue };
        let top = file.split('/').next().unwrap();
        if top == "lib" {
            continue;
        }
        let rank = RUNNER_ORDER
            .iter()
            .position(|m| *m == top)
            .unwrap_or_else(|| panic!("crates/runner/src/{rel}: a new folder in crates/runner/src needs its place in RUNNER_ORDER and docs/architecture.md"));
        seen.insert(top.to_string());
        for used in crate_paths(&String::from_utf8_lossy(&bytes)) {
            let Some(r) = RUNNER_ORDER.iter().position(|m| *m == used) else { continue };
            assert!(r <= rank, "crates/runner/src/{rel} uses crate::{used}, which sits above {top} in the runner's order");
        }
    }
    assert_eq!(seen, RUNNER_ORDER.iter().map(|s| s.to_string()).collect(), "RUNNER_ORDER names a folder crates/runner/src does not have");
}

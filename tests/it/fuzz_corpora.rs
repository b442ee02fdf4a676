//! Every committed fuzz input (fuzz/corpus/<target>/seed-*, and any crash pinned there)
//! replayed through the same check the fuzz target runs, so they are checked on every CI run
//! without a fuzzer.

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>`; there must be some.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    for f in files {
        let data = std::fs::read(&f).unwrap();
        eprintln!("{}", f.display());
        check(&data);
    }
}

#[test]
fn archive() {
    replay("archive", checks::archive::run);
}

#[test]
fn helm_index() {
    replay("helm_index", checks::helm_index::run);
}

#[test]
fn image_manifest() {
    replay("image_manifest", checks::image_manifest::run);
}

#[test]
fn playbook() {
    replay("playbook", checks::playbook::run);
}

#[test]
fn yum_repodata() {
    replay("yum_repodata", checks::yum_repodata::run);
}

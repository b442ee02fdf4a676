//! The offline archive reader on arbitrary bytes: inspect, verify, then extract into a fresh
//! destination inside a sandbox directory. Extraction must never write outside the
//! destination, never leave a link or special file behind, and never leave anything in
//! place (not even its staging directory) when it fails.

use std::fs;
use std::path::Path;

use airlock_content::archive::{ExtractOptions, extract_archive, inspect_archive, verify_archive};

/// Everything under `dir`, relative, with whether each is a directory; panics on anything
/// that is neither a regular file nor a directory (symlinks are not followed).
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) {
    for e in fs::read_dir(dir).expect("read dir") {
        let e = e.expect("dir entry");
        let ft = e.file_type().expect("file type");
        let rel = e.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        assert!(ft.is_file() || ft.is_dir(), "extraction left {rel}, neither a file nor a directory");
        out.push((rel, ft.is_dir()));
        if ft.is_dir() {
            walk(root, &e.path(), out);
        }
    }
}

/// One input, checked as the fuzz target and the corpus replay in tests/ check it.
pub fn run(data: &[u8]) {
    let sandbox = tempfile::tempdir().expect("temp dir");
    let archive = sandbox.path().join("in.tar");
    fs::write(&archive, data).expect("write input");
    let dest = sandbox.path().join("dest");

    let _ = inspect_archive(&archive);
    let _ = verify_archive(&archive);
    let result = extract_archive(&archive, &dest, ExtractOptions { skip_space_check: true, progress: None });

    // Nothing beside the input and the destination: no entry got out through `..`, an
    // absolute path or a link.
    let mut top: Vec<String> =
        fs::read_dir(sandbox.path()).expect("read sandbox").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    top.sort();
    assert!(top.iter().all(|n| n == "in.tar" || n == "dest"), "extraction wrote outside its destination: {top:?}");
    assert_eq!(fs::read(&archive).expect("read input"), data, "extraction changed its input");

    let mut found = Vec::new();
    if dest.exists() {
        walk(&dest, &dest, &mut found);
    }
    match result {
        // A failed extraction puts nothing in place, and removes its staging directory.
        Err(e) => assert!(found.is_empty(), "extraction failed ({e}) yet left {found:?}"),
        Ok(_) => {
            // Exactly the manifest's files (and their directories), each of its size.
            let m = airlock_content::archive::Manifest::load(&dest.join("manifest.json")).expect("extracted manifest reads back");
            let dirs = m.directories();
            for (rel, is_dir) in &found {
                if *is_dir {
                    assert!(dirs.contains(rel.as_str()), "extraction made directory {rel}, not one of the manifest's");
                } else if rel != "manifest.json" {
                    let a = m.get(rel).unwrap_or_else(|| panic!("extraction wrote {rel}, not in the manifest"));
                    assert_eq!(fs::metadata(dest.join(rel)).expect("stat").len(), a.size, "{rel} has the wrong size");
                }
            }
        }
    }
}

//! build-offline-mirrors: the archive verified and unpacked by `offline_extract`, then (with
//! Docker) the five mirrors started and used by real clients.

mod common;

use std::path::Path;

use common::Project;

/// Writes a cache of a few files and archives it (plain tar, so bytes can be flipped in place).
fn archive_of(p: &Project, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let cache = p.path("cache");
    for (rel, bytes) in files {
        let f = cache.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, bytes).unwrap();
    }
    let out = p.path("archive.tar");
    p.airlock(&["archive", "create", "--cache", cache.to_str().unwrap(), out.to_str().unwrap()]).success();
    out
}

/// Flips the first byte of `needle`'s occurrence in the archive.
fn flip(archive: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(archive).unwrap();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the content is in the archive");
    bytes[at] ^= 0x20;
    std::fs::write(archive, bytes).unwrap();
}

fn extract_play(archive: &Path, dest: &Path) -> String {
    format!(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - offline_extract:\n        src: \"{}\"\n        dest: \"{}\"\n",
        archive.display(),
        dest.display()
    )
}

#[test]
fn offline_extract_verifies_names_damage_and_skips_what_is_in_place() {
    let p = Project::new();
    let archive = archive_of(
        &p,
        &[("yum/base/Packages/a-1.rpm", b"first package bytes"), ("pip/b-1.whl", b"second wheel bytes"), ("misc-files/c.txt", b"plain file")],
    );
    let dest = p.path("opt/deepops");
    p.file("x.yml", &extract_play(&archive, &dest));

    // Two damaged artifacts: both named, nothing unpacked.
    let good = std::fs::read(&archive).unwrap();
    flip(&archive, b"first package bytes");
    flip(&archive, b"plain file");
    let bad = p.playbook("x.yml", &[]);
    bad.code(2).has("yum/base/Packages/a-1.rpm: damaged").has("misc-files/c.txt: damaged").has("nothing was unpacked");
    let leftovers: Vec<_> = walk(&p.path("opt"));
    assert!(leftovers.is_empty(), "a damaged archive left {leftovers:?}");

    // The good archive: unpacked, every file in place; a rerun changes nothing.
    std::fs::write(&archive, &good).unwrap();
    let first = p.playbook("x.yml", &[]);
    first.success();
    assert_eq!(first.recap("localhost").changed, 1);
    assert_eq!(std::fs::read(dest.join("pip/b-1.whl")).unwrap(), b"second wheel bytes");
    assert!(dest.join("manifest.json").is_file());
    let again = p.playbook("x.yml", &[]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);

    // A file damaged on disk after unpacking is put right on the next run.
    std::fs::write(dest.join("misc-files/c.txt"), b"plain fil3").unwrap();
    p.playbook("x.yml", &[]).success();
    assert_eq!(std::fs::read(dest.join("misc-files/c.txt")).unwrap(), b"plain file");

    // Check mode reports and writes nothing; a missing archive is a clear error.
    let other = p.path("elsewhere");
    p.file("y.yml", &extract_play(&archive, &other));
    p.playbook("y.yml", &["--check"]).success().has("changed");
    assert!(!other.exists());
    p.file("z.yml", &extract_play(&p.path("nope.tar"), &other));
    p.playbook("z.yml", &[]).code(2).has("nope.tar not found");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

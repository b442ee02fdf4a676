//! The shipped `playbooks/build-offline-mirrors.yml` given hostile archives: each one fails the
//! play with an error naming the problem, writes nothing outside `deepops_dest_path`, and leaves
//! what was already under `deepops_dest_path` exactly as it was. tests/it/archive.rs covers the same
//! archives at the library layer; this pins that the playbook path (offline_extract, then the
//! tasks after it) does not undo that safety, e.g. by going on to later tasks.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_content::archive::{Artifact, Manifest};

use crate::support::{Project, sha256_hex};

fn playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/build-offline-mirrors.yml")
}

/// One tar entry as written by hand, so names, types and sizes can lie.
struct Raw<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    link: &'a [u8],
    size: u64,
    data: &'a [u8],
}

fn file<'a>(name: &'a [u8], data: &'a [u8]) -> Raw<'a> {
    Raw { name, kind: tar::EntryType::Regular, link: b"", size: data.len() as u64, data }
}

fn art(path: &str, data: &[u8]) -> Artifact {
    Artifact { kind: "file".into(), path: path.into(), size: data.len() as u64, sha256: sha256_hex(data), source: "test".into(), name: None, version: None }
}

/// A tar whose first entry is a manifest of `arts` (not validated), then `entries` as given.
fn hostile(path: &Path, arts: Vec<Artifact>, entries: &[Raw]) {
    let manifest = Manifest::with_created(arts, "2026-12-02T00:00:00Z".into()).to_json();
    let mut out = std::fs::File::create(path).unwrap();
    let mut raw = |e: &Raw| {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.size);
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        out.write_all(h.as_bytes()).unwrap();
        out.write_all(e.data).unwrap();
        out.write_all(&vec![0; (512 - e.data.len() % 512) % 512]).unwrap();
    };
    raw(&file(b"manifest.json", manifest.as_bytes()));
    for e in entries {
        raw(e);
    }
    out.write_all(&[0; 1024]).unwrap();
}

/// What a directory holds: every entry (not following symbolic links) with its kind and, for
/// files, bytes; for links, the target. Directories count, so an empty one made is seen.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("symlink -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.is_file() {
                format!("file {}", String::from_utf8_lossy(&std::fs::read(&p).unwrap()))
            } else {
                format!("special {:?}", m.file_type())
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn build_offline_mirrors_refuses_hostile_archives_and_changes_nothing() {
    let p = Project::new();
    // `site` holds deepops_dest_path and the places hostile entries aim at, so one snapshot
    // sees both "written outside" and "changed inside".
    let site = p.path("site");
    let dest = site.join("opt/deepops");
    let outside = site.join("outside");
    // What an earlier good run left: a file the hostile archives also name, with other bytes.
    std::fs::create_dir_all(dest.join("good")).unwrap();
    std::fs::write(dest.join("good/ok.txt"), b"from the previous archive").unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"not the archive's").unwrap();
    let before = snapshot(&site);

    let evil: &[u8] = b"pwned";
    let ok = art("good/ok.txt", b"fine");
    let abs_target = outside.join("abs-evil");
    let abs = abs_target.to_str().unwrap().as_bytes().to_vec();
    let link_out = outside.to_str().unwrap().as_bytes().to_vec();
    let mut lying_hash = ok.clone();
    lying_hash.sha256 = sha256_hex(b"FINE");
    let mut bomb = art("big", b"x");
    bomb.size = 1 << 50;

    // (name, manifest, entries, what the error must say)
    let cases: Vec<(&str, Vec<Artifact>, Vec<Raw>, &str)> = vec![
        ("dotdot", vec![ok.clone()], vec![file(b"good/ok.txt", b"fine"), file(b"../../outside/evil", evil)], "'..' path component"),
        ("absolute", vec![ok.clone()], vec![file(b"good/ok.txt", b"fine"), file(&abs, evil)], "absolute path"),
        (
            "symlink-out",
            vec![art("lnk/evil", evil)],
            vec![Raw { name: b"lnk", kind: tar::EntryType::Symlink, link: &link_out, size: 0, data: b"" }, file(b"lnk/evil", evil)],
            "symbolic link",
        ),
        ("hardlink-out", vec![art("hl", b"")], vec![Raw { name: b"hl", kind: tar::EntryType::Link, link: b"/etc/passwd", size: 0, data: b"" }], "hard link"),
        ("chardev", vec![art("dev", b"")], vec![Raw { name: b"dev", kind: tar::EntryType::Char, link: b"", size: 0, data: b"" }], "character device"),
        ("lying-hash", vec![lying_hash], vec![file(b"good/ok.txt", b"fine")], "good/ok.txt: damaged"),
        ("bomb", vec![ok.clone(), bomb], vec![file(b"good/ok.txt", b"fine"), file(b"big", b"x")], "not enough free space"),
    ];

    let pb = playbook();
    let run_case = |name: &str, archive: &Path, want: &str| {
        p.file(
            "vars.yml",
            &format!(
                "tar_file_path: \"{}\"\ndeepops_dest_path: \"{}\"\nmirror_backend: embedded\nmirror_embedded_systemd: false\n",
                archive.display(),
                dest.display()
            ),
        );
        let r = p.playbook(pb.to_str().unwrap(), &["-e", "@vars.yml"]);
        // The play stops at the extraction (exit 2, a failed host), with the problem named.
        r.code(2).has("TASK [offline-repo-mirrors : Verify and unpack the archive]").has(want).has(&archive.display().to_string());
        // Nothing after the extraction ran: no mirror was started on a refused archive.
        r.lacks("TASK [offline-repo-mirrors : Put the cached images");
        // An archive built to escape is not called damaged: copying it again would not help.
        if ["dotdot", "absolute", "symlink-out", "hardlink-out", "chardev"].contains(&name) {
            r.has("holds entries airlock refuses").lacks("Copy the archive again");
        }
        assert_eq!(snapshot(&site), before, "{name}: the archive changed files under {}\n{}", site.display(), r.stdout);
    };
    for (name, arts, entries, want) in cases {
        let archive = p.path(&format!("{name}.tar"));
        hostile(&archive, arts, &entries);
        run_case(name, &archive, want);
    }

    // A truncated archive: a good one (whose file would replace good/ok.txt) cut in half.
    let cache = p.path("cache");
    std::fs::create_dir_all(cache.join("good")).unwrap();
    std::fs::write(cache.join("good/ok.txt"), vec![b'x'; 200_000]).unwrap();
    std::fs::write(cache.join("good/second.txt"), vec![b'y'; 200_000]).unwrap();
    let full = p.path("full.tar");
    p.airlock(&["archive", "create", "--cache", cache.to_str().unwrap(), full.to_str().unwrap()]).success();
    let bytes = std::fs::read(&full).unwrap();
    let cut = p.path("truncated.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    run_case("truncated", &cut, "truncated");
}

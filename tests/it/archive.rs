//! The offline archive: write, verify, inspect and extract, through the library and the real
//! `airlock` binary; GNU tar reads what airlock writes; hostile archives are refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_content::archive::{self, ArchiveError, Artifact, ExtractOptions, Manifest, ProblemKind, WriteOptions};

use crate::support::tree;

const BIG: &str = "images/blobs/sha256/4f/4f2a0c1e9b7d/data";
const LONG_DIR: &str = "files/a-very-long-directory-name-to-go-past-the-hundred-byte-ustar-name-field/and-another-level-below-it";

fn airlock(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock")).args(args).output().expect("run airlock");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Pseudo-random bytes (xorshift), the same for the same seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A cache tree like the offline build's: a 6 MiB image blob, RPMs and repodata, a Python
/// package, a chart, an empty file, a file of exactly one tar block, and a path over 100 bytes.
fn make_cache(root: &Path) -> Manifest {
    let files: Vec<(&str, String, Vec<u8>, &str)> = vec![
        ("blob", BIG.to_string(), noise(6 << 20, 1), "nvcr.io/nvidia/cuda@sha256:4f2a"),
        ("image", "images/index.json".into(), br#"{"manifests":[]}"#.to_vec(), "nvcr.io/nvidia/cuda:12.4"),
        ("rpm", "yum/base/Packages/kernel-devel-5.14.rpm".into(), noise(300_000, 2), "https://mirror/kernel-devel-5.14.rpm"),
        ("rpm", "yum/base/Packages/zlib-1.2.rpm".into(), noise(512, 3), "https://mirror/zlib-1.2.rpm"),
        ("repodata", "yum/base/repodata/repomd.xml".into(), b"<repomd/>\n".to_vec(), "https://mirror/repodata/repomd.xml"),
        ("python", "python/simple/ansible/ansible-9.0.tar.gz".into(), noise(70_001, 4), "https://pypi/ansible-9.0.tar.gz"),
        ("chart", "charts/gpu-operator-v24.tgz".into(), noise(4097, 5), "https://helm.ngc.nvidia.com/gpu-operator-v24.tgz"),
        ("file", "files/empty".into(), Vec::new(), "https://example/empty"),
        ("file", format!("{LONG_DIR}/kubectl"), noise(123_457, 6), "https://dl.k8s.io/kubectl"),
    ];
    let mut arts = Vec::new();
    for (kind, path, data, source) in files {
        put(root, &path, &data);
        arts.push(Artifact::from_file(root, &path, kind, source).unwrap());
    }
    arts[2].name = Some("kernel-devel".into());
    arts[2].version = Some("5.14".into());
    Manifest::with_created(arts, "2025-06-01T12:00:00Z".into())
}

fn assert_same_tree(cache: &Path, dest: &Path) {
    let mut got = tree(dest);
    assert!(got.remove("manifest.json").is_some(), "manifest.json missing in {}", dest.display());
    let want = tree(cache);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, v) in &want {
        assert!(got[k] == *v, "{k} differs");
    }
}

struct Setup {
    dir: tempfile::TempDir,
    manifest: Manifest,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let manifest = make_cache(&dir.path().join("cache"));
        Setup { dir, manifest }
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str) -> PathBuf {
        let out = self.p(name);
        archive::write_archive(&self.cache(), &self.manifest, &out, WriteOptions::default()).unwrap();
        out
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn round_trip_tar_gz_zst() {
    let t = Setup::new();
    let n = t.manifest.artifacts.len() as u64;
    for ext in ["tar", "tar.gz", "tar.zst"] {
        let out = t.p(&format!("offline.{ext}"));
        let calls = std::cell::Cell::new(0u64);
        let last = std::cell::Cell::new(None);
        let cb = |p: archive::Progress| {
            calls.set(calls.get() + 1);
            last.set(Some(p));
        };
        let r = archive::write_archive(&t.cache(), &t.manifest, &out, WriteOptions { progress: Some(&cb), ..Default::default() }).unwrap();
        assert_eq!(r.artifacts, n);
        assert_eq!(r.bytes, t.manifest.total_size());
        assert_eq!(r.archive_bytes, std::fs::metadata(&out).unwrap().len());
        assert!(!t.p(&format!("offline.{ext}.part")).exists());
        let last = last.get().unwrap();
        assert_eq!((last.bytes_done, last.bytes_total, last.files_done), (t.manifest.total_size(), t.manifest.total_size(), n));
        assert!(calls.get() >= 7, "progress called per buffer: {}", calls.get());

        let v = archive::verify_archive(&out).unwrap();
        assert!(v.is_ok(), "{ext}: {:?}", v.problems);
        assert_eq!(v.files_ok, n);
        assert_eq!(v.manifest, t.manifest);
        assert_eq!(
            v.compression.name(),
            match ext {
                "tar" => "none",
                "tar.gz" => "gzip",
                _ => "zstd",
            }
        );

        let (code, stdout, stderr) = airlock(&["archive", "verify", s(&out)]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.starts_with(&format!("OK: {n} artifacts")), "{stdout}");

        let dest = t.p(&format!("dest-{ext}"));
        let x = archive::extract_archive(&out, &dest, ExtractOptions::default()).unwrap();
        assert_eq!((x.written, x.skipped), (n, 0));
        assert_same_tree(&t.cache(), &dest);
        assert_eq!(Manifest::load(&dest.join("manifest.json")).unwrap(), t.manifest);
        // No staging directory is left behind.
        assert!(std::fs::read_dir(&dest).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".airlock")));

        // Re-running skips what is in place and verified; a changed or removed file is redone.
        let x = archive::extract_archive(&out, &dest, ExtractOptions::default()).unwrap();
        assert_eq!((x.written, x.skipped, x.bytes_written), (0, n, 0));
        std::fs::remove_file(dest.join(BIG)).unwrap();
        std::fs::write(dest.join("charts/gpu-operator-v24.tgz"), noise(4097, 99)).unwrap();
        let x = archive::extract_archive(&out, &dest, ExtractOptions::default()).unwrap();
        assert_eq!((x.written, x.skipped), (2, n - 2));
        assert_same_tree(&t.cache(), &dest);
    }
}

#[test]
fn deterministic_bytes() {
    let t = Setup::new();
    for ext in ["tar", "tar.gz", "tar.zst"] {
        let a = t.write(&format!("a.{ext}"));
        // The same inputs in another order, with another thread count, give the same bytes.
        let mut shuffled = t.manifest.clone();
        shuffled.artifacts.reverse();
        let b = t.p(&format!("b.{ext}"));
        archive::write_archive(&t.cache(), &shuffled, &b, WriteOptions { threads: Some(1), ..Default::default() }).unwrap();
        assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "{ext} differs");
    }
}

#[test]
fn gnu_tar_reads_the_plain_tar() {
    let t = Setup::new();
    let out = t.write("offline.tar");
    let list = Command::new("tar").arg("-tvf").arg(&out).env("TZ", "UTC").output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let list = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].ends_with(" manifest.json"), "{list}");
    assert!(lines[0].starts_with("-rw-r--r-- 0/0"), "{list}");
    assert!(list.contains(&format!("{LONG_DIR}/kubectl")), "{list}");
    let dir_line = lines.iter().find(|l| l.ends_with(&format!(" {LONG_DIR}/"))).unwrap_or_else(|| panic!("{list}"));
    assert!(dir_line.starts_with("drwxr-xr-x 0/0 ") && dir_line.contains(" 2025-06-01 12:00 "), "{dir_line}");
    let files: Vec<&str> = lines.iter().filter(|l| l.starts_with('-')).map(|l| l.rsplit(' ').next().unwrap()).collect();
    let mut want = vec!["manifest.json"];
    want.extend(t.manifest.artifacts.iter().map(|a| a.path.as_str()));
    assert_eq!(files, want, "manifest first, then the artifacts in path order");

    let x = t.p("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar").arg("-xf").arg(&out).arg("-C").arg(&x).status().unwrap();
    assert!(st.success());
    assert_same_tree(&t.cache(), &x);
}

#[test]
fn inspect_prints_kinds_and_header() {
    let t = Setup::new();
    let out = t.write("offline.tar.zst");
    let r = archive::inspect_archive(&out).unwrap();
    assert_eq!(r.total.count, 9);
    assert_eq!(r.by_kind["rpm"].count, 2);
    assert_eq!(r.by_kind["blob"].bytes, 6 << 20);
    let (code, stdout, stderr) = airlock(&["archive", "inspect", s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("created:         2025-06-01T12:00:00Z"), "{stdout}");
    assert!(stdout.contains("format version:  1"), "{stdout}");
    assert!(stdout.contains("(zstd, "), "{stdout}");
    let row = |k: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .unwrap_or_else(|| panic!("no {k} row: {stdout}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("blob"), "1 6.0 MiB");
    assert_eq!(row("rpm"), "2 293.5 KiB");
    assert_eq!(row("chart"), "1 4.0 KiB");
    assert_eq!(row("total").split(' ').next(), Some("9"));
    // The whole report as users read it.
    crate::support::redacted(&t.p(""), "[TMP]", || insta::assert_snapshot!("archive_inspect", stdout));
    let (code, _, stderr) = airlock(&["archive", "inspect", s(&t.p("nope.tar"))]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.tar"), "{stderr}");
}

/// Where an artifact's data starts in a plain tar.
fn data_offset(archive: &Path, path: &str) -> u64 {
    let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.path_bytes().as_ref() == path.as_bytes() {
            return e.raw_file_position();
        }
    }
    panic!("{path} not in {}", archive.display())
}

fn flip(archive: &Path, at: u64) {
    let mut bytes = std::fs::read(archive).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(archive, bytes).unwrap();
}

#[test]
fn verify_names_every_flipped_byte() {
    let t = Setup::new();
    let out = t.write("offline.tar");
    flip(&out, data_offset(&out, BIG) + (3 << 20) + 17);
    let (code, stdout, _) = airlock(&["archive", "verify", s(&out)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("{BIG}: damaged: sha256 ")), "{stdout}");
    assert!(stdout.contains("FAILED: 1 problem(s)"), "{stdout}");

    // A second one is reported too, not just the first.
    let kubectl = format!("{LONG_DIR}/kubectl");
    flip(&out, data_offset(&out, &kubectl) + 5);
    let r = archive::verify_archive(&out).unwrap();
    let damaged: Vec<&str> = r.problems.iter().filter(|p| matches!(p.kind, ProblemKind::Damaged { .. })).map(|p| p.path.as_str()).collect();
    assert_eq!(damaged, [kubectl.as_str(), BIG]);
    assert_eq!(r.problems.len(), 2);
    assert_eq!(r.files_ok, 7);

    // Extraction refuses it and puts nothing in place.
    let dest = t.p("dest");
    let e = archive::extract_archive(&out, &dest, ExtractOptions::default()).unwrap_err();
    assert!(e.to_string().contains("damaged"), "{e}");
    assert!(dest.is_dir() && tree(&dest).is_empty(), "{:?}", tree(&dest).keys());
    let (code, _, stderr) = airlock(&["archive", "extract", s(&out), s(&t.p("dest2"))]);
    assert_eq!(code, 1);
    assert!(stderr.contains("damaged"), "{stderr}");
}

#[test]
fn truncated_archives_are_refused() {
    let t = Setup::new();
    for ext in ["tar", "tar.gz", "tar.zst"] {
        let out = t.write(&format!("full.{ext}"));
        let bytes = std::fs::read(&out).unwrap();
        let cut = t.p(&format!("cut.{ext}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let r = archive::verify_archive(&cut).unwrap();
        assert!(r.problems.iter().any(|p| matches!(p.kind, ProblemKind::Truncated(_))), "{ext}: {:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.kind == ProblemKind::Missing), "{ext}: {:?}", r.problems);
        let (code, stdout, _) = airlock(&["archive", "verify", s(&cut)]);
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.contains("truncated archive"), "{stdout}");
        let dest = t.p(&format!("dest-{ext}"));
        let e = archive::extract_archive(&cut, &dest, ExtractOptions::default()).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{ext}: {e}");
        assert!(dest.is_dir() && tree(&dest).is_empty());
    }
    // Cut just before the end-of-archive marker: every file is there, the end is not.
    let out = t.write("full.tar");
    let bytes = std::fs::read(&out).unwrap();
    let cut = t.p("nomarker.tar");
    std::fs::write(&cut, &bytes[..bytes.len() - 1024]).unwrap();
    let r = archive::verify_archive(&cut).unwrap();
    assert_eq!(r.files_ok, 9);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].to_string().contains("end-of-archive marker is missing"), "{}", r.problems[0]);
    assert!(archive::extract_archive(&cut, &t.p("dest-nomarker"), ExtractOptions::default()).is_err());
    // Cut inside the manifest: not an archive at all.
    let cut = t.p("tiny.tar");
    std::fs::write(&cut, &bytes[..700]).unwrap();
    let e = archive::verify_archive(&cut).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
}

#[test]
fn writer_refuses_a_cache_that_does_not_match() {
    let t = Setup::new();
    let out = t.p("offline.tar.zst");
    let check = |what: &str, want: &str| {
        let e = archive::write_archive(&t.cache(), &t.manifest, &out, WriteOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{what}: {msg}");
        assert!(!out.exists() && !t.p("offline.tar.zst.part").exists(), "{what}: an archive was left behind");
    };
    let rpm = t.cache().join("yum/base/Packages/zlib-1.2.rpm");
    let good = std::fs::read(&rpm).unwrap();
    // Same size, other bytes.
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&rpm, &bad).unwrap();
    check("hash", "cache file yum/base/Packages/zlib-1.2.rpm does not match the manifest: sha256");
    std::fs::write(&rpm, &good[..500]).unwrap();
    check("size", "cache file yum/base/Packages/zlib-1.2.rpm does not match the manifest: size 500 in the cache, 512 in the manifest");
    std::fs::remove_file(&rpm).unwrap();
    check("missing", "cache file yum/base/Packages/zlib-1.2.rpm is missing");
    std::fs::write(&rpm, &good).unwrap();

    // The binary: same refusal, exit 1.
    let m = t.p("m.json");
    std::fs::write(&m, t.manifest.to_json()).unwrap();
    std::fs::write(t.cache().join(BIG), b"short").unwrap();
    let (code, _, stderr) = airlock(&["archive", "create", "--cache", s(&t.cache()), "--from-manifest", s(&m), s(&out)]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("cache file {BIG} does not match the manifest: size 5 in the cache")), "{stderr}");
    assert!(!out.exists());
    // Files not in the manifest are not written.
    std::fs::write(t.cache().join(BIG), noise(6 << 20, 1)).unwrap();
    put(&t.cache(), "stray/file", b"not in the manifest");
    let (code, stdout, stderr) = airlock(&["archive", "create", "--cache", s(&t.cache()), "--from-manifest", s(&m), s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("9 artifacts"), "{stdout}");
    assert!(!archive::verify_archive(&out).unwrap().manifest.artifacts.iter().any(|a| a.path.starts_with("stray")));
}

// ---- hostile archives, built by hand ----

enum E<'a> {
    /// A regular file with a raw name.
    File(&'a [u8], &'a [u8]),
    /// A header with a raw name, type, link name, declared size and the data that follows.
    Raw { name: &'a [u8], kind: tar::EntryType, link: &'a [u8], size: u64, data: &'a [u8] },
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn art(path: &str, data: &[u8]) -> Artifact {
    Artifact { kind: "file".into(), path: path.into(), size: data.len() as u64, sha256: sha(data), source: "test".into(), name: None, version: None }
}

/// A tar with `manifest` first (as given, not validated) and the entries after it.
fn hostile(path: &Path, manifest: &str, entries: &[E]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut raw = |name: &[u8], kind: tar::EntryType, link: &[u8], size: u64, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(size);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.get_mut().write_all(h.as_bytes()).unwrap();
        b.get_mut().write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        b.get_mut().write_all(&vec![0; pad]).unwrap();
    };
    use std::io::Write;
    raw(b"manifest.json", tar::EntryType::Regular, b"", manifest.len() as u64, manifest.as_bytes());
    for e in entries {
        match e {
            E::File(name, data) => raw(name, tar::EntryType::Regular, b"", data.len() as u64, data),
            E::Raw { name, kind, link, size, data } => raw(name, *kind, link, *size, data),
        }
    }
    b.finish().unwrap();
}

fn manifest_of(arts: Vec<Artifact>) -> String {
    Manifest::with_created(arts, "2025-06-01T12:00:00Z".into()).to_json()
}

/// Extracts into `root/dest`, expects an error containing `want`, and checks that nothing was
/// written: `root` holds only the archive and an empty `dest`, `outside` does not exist.
#[track_caller]
fn refused(archive: &Path, want: &str, outside: &Path) -> String {
    let root = archive.parent().unwrap();
    let dest = root.join("dest");
    let e = archive::extract_archive(archive, &dest, ExtractOptions::default()).expect_err("extraction should be refused");
    let msg = e.to_string();
    assert!(msg.contains(want), "expected {want:?} in: {msg}");
    let mut names: Vec<String> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["dest".to_string(), archive.file_name().unwrap().to_string_lossy().into_owned()]);
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0, "something was left in dest");
    assert!(!outside.exists(), "{} was written", outside.display());
    // verify reports it too.
    if let Ok(r) = archive::verify_archive(archive) {
        assert!(!r.is_ok());
    }
    msg
}

#[test]
fn hostile_archives_are_refused() {
    let top = tempfile::tempdir().unwrap();
    let case = |name: &str| {
        let d = top.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d.join("evil.tar")
    };
    let ok = art("good/ok.txt", b"fine");
    let evil = b"pwned";

    // `..` walking out of dest.
    let a = case("dotdot");
    hostile(&a, &manifest_of(vec![ok.clone()]), &[E::File(b"good/ok.txt", b"fine"), E::File(b"../evil", evil)]);
    let msg = refused(&a, "refusing archive entry \"../evil\": unsafe path ('..' path component)", &top.path().join("dotdot/../evil"));
    assert!(!top.path().join("evil").exists(), "{msg}");

    // `..` in the middle, listed in the manifest: the manifest itself is refused.
    let a = case("dotdot-manifest");
    hostile(&a, &manifest_of(vec![art("a/../../evil", evil)]), &[E::File(b"a/../../evil", evil)]);
    refused(&a, "'..' path component", &top.path().join("evil"));

    // An absolute path.
    let target = top.path().join("abs-target/evil");
    let a = case("absolute");
    let abs = target.to_str().unwrap().as_bytes().to_vec();
    hostile(&a, &manifest_of(vec![ok.clone()]), &[E::File(&abs, evil)]);
    refused(&a, "unsafe path (absolute path)", &target);

    // A symbolic link pointing out, then a file through it.
    let a = case("symlink");
    let out_dir = top.path().join("symlink-target");
    let link = out_dir.to_str().unwrap().as_bytes().to_vec();
    hostile(
        &a,
        &manifest_of(vec![art("lnk/evil", evil)]),
        &[E::Raw { name: b"lnk", kind: tar::EntryType::Symlink, link: &link, size: 0, data: b"" }, E::File(b"lnk/evil", evil)],
    );
    refused(&a, "refusing archive entry \"lnk\": symbolic link to", &out_dir);
    let a = case("symlink-dotdot");
    hostile(
        &a,
        &manifest_of(vec![ok.clone()]),
        &[E::Raw { name: b"good", kind: tar::EntryType::Symlink, link: b"../../..", size: 0, data: b"" }, E::File(b"good/ok.txt", b"fine")],
    );
    refused(&a, "symbolic link to \"../../..\"; only regular files and directories are allowed", &top.path().join("ok.txt"));

    // A hard link to a file outside.
    let a = case("hardlink");
    hostile(&a, &manifest_of(vec![art("hl", b"")]), &[E::Raw { name: b"hl", kind: tar::EntryType::Link, link: b"/etc/passwd", size: 0, data: b"" }]);
    refused(&a, "hard link to \"/etc/passwd\"", &top.path().join("nothing"));

    // Device files and a FIFO.
    for (name, kind, want) in
        [("chardev", tar::EntryType::Char, "character device"), ("blockdev", tar::EntryType::Block, "block device"), ("fifo", tar::EntryType::Fifo, "FIFO")]
    {
        let a = case(name);
        hostile(&a, &manifest_of(vec![art("dev", b"")]), &[E::Raw { name: b"dev", kind, link: b"", size: 0, data: b"" }]);
        refused(&a, want, &top.path().join("nothing"));
    }

    // The manifest lies about a size.
    let a = case("lying-size");
    let mut lie = art("good/ok.txt", b"fine");
    lie.size = 3;
    hostile(&a, &manifest_of(vec![lie]), &[E::File(b"good/ok.txt", b"fine")]);
    refused(&a, "good/ok.txt: size 4 in the archive, 3 in the manifest", &top.path().join("nothing"));

    // The manifest lies about a hash.
    let a = case("lying-hash");
    let mut lie = art("good/ok.txt", b"fine");
    lie.sha256 = sha(b"FINE");
    hostile(&a, &manifest_of(vec![lie]), &[E::File(b"good/ok.txt", b"fine")]);
    refused(&a, "good/ok.txt: damaged: sha256", &top.path().join("nothing"));

    // A huge declared size in the manifest (tar bomb): refused before anything is written.
    let a = case("bomb-manifest");
    let mut huge = art("big", b"x");
    huge.size = 1 << 50;
    hostile(&a, &manifest_of(vec![ok.clone(), huge]), &[E::File(b"good/ok.txt", b"fine"), E::File(b"big", b"x")]);
    refused(&a, "not enough free space", &top.path().join("nothing"));

    // A huge declared size in a tar header, with little data behind it.
    let a = case("bomb-header");
    hostile(&a, &manifest_of(vec![art("big", b"x")]), &[E::Raw { name: b"big", kind: tar::EntryType::Regular, link: b"", size: 1 << 40, data: b"x" }]);
    refused(&a, "big: size 1099511627776 in the archive, 1 in the manifest", &top.path().join("nothing"));

    // An entry the manifest does not list.
    let a = case("unexpected");
    hostile(&a, &manifest_of(vec![ok.clone()]), &[E::File(b"good/ok.txt", b"fine"), E::File(b"good/extra.sh", evil)]);
    refused(&a, "refusing archive entry \"good/extra.sh\": unexpected entry, not in the manifest", &top.path().join("nothing"));

    // A file listed twice.
    let a = case("duplicate");
    hostile(&a, &manifest_of(vec![ok.clone()]), &[E::File(b"good/ok.txt", b"fine"), E::File(b"good/ok.txt", b"fine")]);
    refused(&a, "appears more than once", &top.path().join("nothing"));

    // A manifest entry the archive lacks.
    let a = case("missing");
    hostile(&a, &manifest_of(vec![ok.clone(), art("gone", b"x")]), &[E::File(b"good/ok.txt", b"fine")]);
    refused(&a, "gone: missing from the archive", &top.path().join("nothing"));

    // No manifest first.
    let a = case("no-manifest");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&a).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "good/ok.txt", &b"fine"[..]).unwrap();
        b.finish().unwrap();
    }
    refused(&a, "not an airlock archive: the first entry is \"good/ok.txt\"", &top.path().join("nothing"));
}

#[test]
fn verify_lists_every_structural_problem() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("mixed.tar");
    let ok = art("good/ok.txt", b"fine");
    let mut lie = art("b.bin", b"12345");
    lie.size = 9;
    hostile(
        &a,
        &manifest_of(vec![ok, lie, art("gone", b"x")]),
        &[
            E::File(b"../evil", b"x"),
            E::Raw { name: b"good/", kind: tar::EntryType::Directory, link: b"", size: 0, data: b"" },
            E::File(b"good/ok.txt", b"fine"),
            E::Raw { name: b"lnk", kind: tar::EntryType::Symlink, link: b"/etc", size: 0, data: b"" },
            E::File(b"b.bin", b"12345"),
            E::File(b"stray", b"y"),
        ],
    );
    let (code, stdout, _) = airlock(&["archive", "verify", s(&a)]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "../evil: unsafe path ('..' path component)",
            "lnk: symbolic link to \"/etc\"; only regular files and directories are allowed",
            "b.bin: size 5 in the archive, 9 in the manifest",
            "stray: unexpected entry, not in the manifest",
            "gone: missing from the archive",
            &format!("FAILED: 5 problem(s) in {}; 1 of 3 artifacts OK", a.display()),
        ]
    );
}

#[test]
fn extract_refuses_symlinks_already_in_dest() {
    let t = Setup::new();
    let out = t.write("offline.tar");
    let dest = t.p("dest");
    let outside = t.p("outside");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("yum")).unwrap();
    let e = archive::extract_archive(&out, &dest, ExtractOptions::default()).unwrap_err();
    assert!(matches!(e, ArchiveError::Destination { .. }), "{e}");
    assert!(e.to_string().contains("is a symbolic link; refusing to write through it"), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn scan_and_create_through_the_binary() {
    let t = Setup::new();
    let (code, json, stderr) = airlock(&["archive", "scan", "--kind", "blob", s(&t.cache())]);
    assert_eq!(code, 0, "{stderr}");
    let m = Manifest::from_json(json.as_bytes()).unwrap();
    assert_eq!(m.artifacts.len(), 9);
    assert!(m.artifacts.iter().all(|a| a.kind == "blob"));
    assert_eq!(m.get(BIG).unwrap().sha256, t.manifest.get(BIG).unwrap().sha256);
    let out = t.p("scanned.tar.gz");
    let (code, stdout, stderr) = airlock(&["archive", "create", "--cache", s(&t.cache()), s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("9 artifacts"), "{stdout}");
    let (code, stdout, _) = airlock(&["archive", "extract", s(&out), s(&t.p("dest"))]);
    assert_eq!(code, 0, "{stdout}");
    assert_same_tree(&t.cache(), &t.p("dest"));
    let (code, _, stderr) = airlock(&["archive", "create", "--cache", s(&t.cache()), s(&t.p("x.zip"))]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unsupported archive name"), "{stderr}");
}

//! Yum repository sync against real repositories: packages built with rpmbuild, indexed with
//! createrepo_c, served by python3's http.server. Needs `bash .ci/setup-yum`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_content::sources::fetch::{FetchOptions, Fetcher};
use airlock_content::sources::yum::{self, Evr, FileKind, YumError, YumRepo, YumSync, rpmvercmp};

use crate::support::yumfix::*;
use crate::support::{run, sha256_hex, tree};

const NAME: &str = "testrepo";

fn fetcher() -> Fetcher {
    Fetcher::new(FetchOptions { retries: 1, timeout: Duration::from_secs(20), validate_certs: true, backoff: Duration::from_millis(20), ..Default::default() })
        .unwrap()
}

fn repo_of(up: &Upstream, newest_only: bool) -> YumRepo {
    YumRepo {
        name: NAME.into(),
        baseurl: up.baseurl(),
        gpgkey: Some(format!("{} ,{}", up.url("keys/RPM-GPG-KEY-outside"), up.url("repo/RPM-GPG-KEY-inside"))),
        newest_only,
    }
}

/// Syncs, returning the result and the bytes `on_bytes` reported.
fn sync(up: &Upstream, dest: &Path, newest_only: bool) -> (Result<YumSync, YumError>, u64) {
    let seen = AtomicU64::new(0);
    let r = yum::sync(&fetcher(), &repo_of(up, newest_only), dest, 3, &|n| {
        seen.fetch_add(n, Ordering::Relaxed);
    });
    (r, seen.into_inner())
}

/// The upstream repository as the mirror must hold it: everything under `repo/`, plus the key
/// from outside the repository under `gpgkeys/`.
fn expected_tree(up: &Upstream) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut t = tree(&up.repo());
    t.insert("gpgkeys/RPM-GPG-KEY-outside".to_string(), fs::read(up.www().join("keys/RPM-GPG-KEY-outside")).unwrap());
    t
}

#[track_caller]
fn assert_same_tree(up: &Upstream, dest: &Path) {
    let want = expected_tree(up);
    let got = tree(&dest.join(NAME));
    let want_names: BTreeSet<_> = want.keys().collect();
    let got_names: BTreeSet<_> = got.keys().collect();
    assert_eq!(got_names, want_names, "the mirror's files differ from upstream's");
    for (p, bytes) in &want {
        assert!(got[p] == *bytes, "{p} differs from upstream");
    }
    assert!(want.keys().any(|p| p.starts_with("repodata/") && p.contains("primary.xml")));
}

#[test]
fn sync_mirrors_upstream_byte_for_byte_and_resumes() {
    let up = Upstream::new(&[]);
    let dest = tempfile::tempdir().unwrap();
    let f = fetcher();

    // Check mode: everything to fetch, nothing written.
    let plan = yum::plan(&f, &repo_of(&up, false), dest.path(), 2).unwrap();
    assert!(!dest.path().join(NAME).exists(), "plan wrote files");
    assert_eq!(plan.packages, PACKAGES.len());
    assert!(plan.changes());
    assert!(plan.files.iter().all(|f| !f.present));
    assert_eq!(plan.download_size, plan.total_size);
    let upstream = expected_tree(&up);
    assert_eq!(plan.total_size, upstream.values().map(|b| b.len() as u64).sum::<u64>());
    assert_eq!(plan.files.len(), upstream.len());

    let (r, seen) = sync(&up, dest.path(), false);
    let s = r.unwrap();
    assert_same_tree(&up, dest.path());
    assert_eq!(s.packages, PACKAGES.len());
    let count = |k: FileKind| s.files.iter().filter(|f| f.kind == k).count();
    assert_eq!(count(FileKind::Rpm), PACKAGES.len());
    assert_eq!(count(FileKind::GpgKey), 2);
    assert_eq!(count(FileKind::Signature), 1);
    // primary, filelists, other, three sqlite databases, group, group_gz, updateinfo, repomd.xml
    assert_eq!(count(FileKind::Repodata), tree(&up.repo().join("repodata")).len() - 1);
    assert!(count(FileKind::Repodata) >= 10);
    for file in &s.files {
        let bytes = fs::read(dest.path().join(&file.path)).unwrap();
        assert_eq!(file.sha256, sha256_hex(&bytes), "{}", file.path.display());
        assert_eq!(file.size, bytes.len() as u64);
        assert!(file.downloaded);
        assert!(file.path.starts_with(NAME));
        assert!(file.url.starts_with("http://127.0.0.1:"), "{}", file.url);
    }
    let key_in = s.files.iter().find(|f| f.url.ends_with("RPM-GPG-KEY-inside")).unwrap();
    assert_eq!(key_in.path, Path::new(NAME).join("RPM-GPG-KEY-inside"));
    let alpha = s.files.iter().find(|f| f.path.ends_with("alpha-1.1-1.noarch.rpm")).unwrap();
    assert_eq!(alpha.path, Path::new(NAME).join("Packages/a/alpha-1.1-1.noarch.rpm"));
    assert_eq!(alpha.url, up.url("repo/Packages/a/alpha-1.1-1.noarch.rpm"));
    assert_eq!(s.bytes_downloaded, plan.total_size);
    assert_eq!(seen, s.bytes_downloaded);
    assert!(s.removed.is_empty());

    // Again: nothing downloaded or rewritten; only the index, signature and keys are fetched to compare.
    let mtimes = |d: &Path| -> Vec<_> { tree(d).keys().map(|p| fs::metadata(d.join(p)).unwrap().modified().unwrap()).collect() };
    let before = mtimes(&dest.path().join(NAME));
    let (r, seen) = sync(&up, dest.path(), false);
    let s2 = r.unwrap();
    assert_eq!(s2.bytes_downloaded, 0);
    assert!(s2.files.iter().all(|f| !f.downloaded));
    assert_eq!(s2.files.len(), s.files.len());
    let small: u64 =
        s2.files.iter().filter(|f| f.kind != FileKind::Rpm && (f.kind != FileKind::Repodata || f.path.ends_with("repomd.xml"))).map(|f| f.size).sum();
    assert_eq!(seen, small);
    assert_eq!(mtimes(&dest.path().join(NAME)), before);
    assert_same_tree(&up, dest.path());

    let plan = yum::plan(&f, &repo_of(&up, false), dest.path(), 2).unwrap();
    assert!(!plan.changes());
    assert_eq!(plan.download_size, 0);
}

#[test]
fn newest_only_keeps_the_newest_evr_of_each_package() {
    let up = Upstream::new(&[]);
    let dest = tempfile::tempdir().unwrap();
    let plan = yum::plan(&fetcher(), &repo_of(&up, true), dest.path(), 2).unwrap();
    assert_eq!(plan.packages, NEWEST.len());
    let s = sync(&up, dest.path(), true).0.unwrap();
    assert_eq!(s.packages, NEWEST.len());
    let want: BTreeSet<String> = NEWEST.iter().map(|s| s.to_string()).collect();
    assert_eq!(rpms_in(&dest.path().join(NAME)), want);
    // The metadata is upstream's, unchanged.
    assert_eq!(tree(&dest.path().join(NAME).join("repodata")), tree(&up.repo().join("repodata")));
    for n in NEWEST {
        let href = package_href(n);
        assert_eq!(fs::read(dest.path().join(NAME).join(&href)).unwrap(), fs::read(up.repo().join(&href)).unwrap());
    }
}

#[test]
fn upstream_update_fetches_only_what_changed_and_drops_old_metadata() {
    let mut up = Upstream::new(&[]);
    let dest = tempfile::tempdir().unwrap();
    sync(&up, dest.path(), false).0.unwrap();
    let old_repodata: BTreeSet<String> = tree(&dest.path().join(NAME).join("repodata")).into_keys().collect();

    up.add(&[&LATE]);
    up.index(&[]);
    up.sign();
    let plan = yum::plan(&fetcher(), &repo_of(&up, false), dest.path(), 2).unwrap();
    let missing_rpms: Vec<_> = plan.files.iter().filter(|f| !f.present && f.kind == FileKind::Rpm).map(|f| f.path.clone()).collect();
    assert_eq!(missing_rpms, [Path::new(NAME).join(package_href(&LATE.file_name()))]);

    let s = sync(&up, dest.path(), false).0.unwrap();
    assert_same_tree(&up, dest.path());
    let fetched_rpms: Vec<_> = s.files.iter().filter(|f| f.downloaded && f.kind == FileKind::Rpm).map(|f| f.path.clone()).collect();
    assert_eq!(fetched_rpms, missing_rpms);
    assert_eq!(s.packages, PACKAGES.len() + 1);
    // The files of the previous index that the new one does not list are gone.
    let new_repodata: BTreeSet<String> = tree(&dest.path().join(NAME).join("repodata")).into_keys().collect();
    let gone: BTreeSet<PathBuf> = old_repodata.difference(&new_repodata).map(|p| Path::new(NAME).join("repodata").join(p)).collect();
    assert!(!gone.is_empty());
    assert_eq!(s.removed.iter().cloned().collect::<BTreeSet<_>>(), gone);
}

/// Changes bytes in the middle of a file, keeping its size.
fn corrupt(path: &Path) {
    let mut b = fs::read(path).unwrap();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 16] {
        *x ^= 0x5a;
    }
    fs::write(path, b).unwrap();
}

fn no_part_files(dir: &Path) {
    let parts: Vec<_> = tree(dir).into_keys().filter(|p| p.ends_with(".part")).collect();
    assert!(parts.is_empty(), "left behind: {parts:?}");
}

#[test]
fn a_tampered_package_fails_naming_it_and_leaves_nothing_behind() {
    let up = Upstream::new(&[]);
    let href = package_href("alpha-1.1-1.noarch.rpm");
    let pristine = fs::read(up.repo().join(&href)).unwrap();
    corrupt(&up.repo().join(&href));
    let dest = tempfile::tempdir().unwrap();
    let mirror = dest.path().join(NAME);

    let err = sync(&up, dest.path(), false).0.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, YumError::Checksum { .. }), "{msg}");
    assert!(msg.contains("alpha-1.1-1.noarch"), "{msg}");
    assert!(msg.contains(NAME), "{msg}");
    assert!(msg.contains(&up.url(&format!("repo/{href}"))), "{msg}");
    assert!(!mirror.join(&href).exists());
    no_part_files(dest.path());
    // The index is not published over a mirror that lacks a package; the rest is kept for a resume.
    assert!(!mirror.join("repodata/repomd.xml").exists());
    assert_eq!(rpms_in(&mirror).len(), PACKAGES.len() - 1);

    // A file already in place (say, what the published index lists) is left as it was.
    fs::write(mirror.join(&href), b"what was there").unwrap();
    let err = sync(&up, dest.path(), false).0.unwrap_err();
    assert!(err.to_string().contains("alpha-1.1-1.noarch"), "{err}");
    assert_eq!(fs::read(mirror.join(&href)).unwrap(), b"what was there");
    no_part_files(dest.path());

    // Once upstream is fixed, the sync completes fetching only that package.
    fs::write(up.repo().join(&href), pristine).unwrap();
    let s = sync(&up, dest.path(), false).0.unwrap();
    let fetched: Vec<_> = s.files.iter().filter(|f| f.downloaded && f.kind == FileKind::Rpm).map(|f| f.path.clone()).collect();
    assert_eq!(fetched, [Path::new(NAME).join(&href)]);
    assert_same_tree(&up, dest.path());
}

#[test]
fn tampered_metadata_fails_naming_it() {
    let up = Upstream::new(&[]);
    let primary = tree(&up.repo().join("repodata")).into_keys().find(|p| p.ends_with("primary.xml.gz")).unwrap();
    corrupt(&up.repo().join("repodata").join(&primary));
    let dest = tempfile::tempdir().unwrap();
    let err = sync(&up, dest.path(), false).0.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("repodata primary") && msg.contains(&primary), "{msg}");
    assert!(!dest.path().join(NAME).join("repodata").join(&primary).exists());
    no_part_files(dest.path());
    assert!(rpms_in(&dest.path().join(NAME)).is_empty());
    let err = yum::plan(&fetcher(), &repo_of(&up, false), dest.path(), 2).unwrap_err();
    assert!(matches!(err, YumError::Checksum { .. }), "{err}");
}

#[test]
fn xz_metadata_from_createrepo_c() {
    let up = Upstream::new(&["--general-compress-type=xz"]);
    let repomd = fs::read_to_string(up.repo().join("repodata/repomd.xml")).unwrap();
    assert!(repomd.contains("-primary.xml.xz\""), "{repomd}");
    let dest = tempfile::tempdir().unwrap();
    let s = sync(&up, dest.path(), false).0.unwrap();
    assert_eq!(s.packages, PACKAGES.len());
    assert_same_tree(&up, dest.path());
}

/// createrepo_c 0.17 cannot write zstd (newer ones, and Fedora, do): recompress primary with
/// the zstd tool and update repomd.xml as createrepo_c would have written it.
#[test]
fn zstd_metadata() {
    let up = Upstream::new(&[]);
    let rd = up.repo().join("repodata");
    let gz_name = tree(&rd).into_keys().find(|p| p.ends_with("-primary.xml.gz")).unwrap();
    let gz_bytes = fs::read(rd.join(&gz_name)).unwrap();
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(&gz_bytes[..]).read_to_end(&mut xml).unwrap();
    let tmp = up.dir.path().join("primary.xml");
    fs::write(&tmp, &xml).unwrap();
    run(Command::new("zstd").arg("-q").arg("-19").arg("-f").arg(&tmp).arg("-o").arg(up.dir.path().join("primary.xml.zst")));
    let zst = fs::read(up.dir.path().join("primary.xml.zst")).unwrap();
    let (old_sum, new_sum) = (sha256_hex(&gz_bytes), sha256_hex(&zst));
    let zst_name = format!("{new_sum}-primary.xml.zst");
    fs::write(rd.join(&zst_name), &zst).unwrap();
    fs::remove_file(rd.join(&gz_name)).unwrap();
    let repomd = fs::read_to_string(rd.join("repomd.xml")).unwrap();
    let repomd = repomd
        .replace(&format!("{old_sum}-primary.xml.gz"), &zst_name)
        .replace(&format!(">{old_sum}<"), &format!(">{new_sum}<"))
        .replace(&format!("<size>{}</size>", gz_bytes.len()), &format!("<size>{}</size>", zst.len()));
    assert!(repomd.contains(&zst_name) && !repomd.contains(&old_sum));
    fs::write(rd.join("repomd.xml"), repomd).unwrap();
    up.sign();

    let dest = tempfile::tempdir().unwrap();
    let s = sync(&up, dest.path(), true).0.unwrap();
    assert_eq!(s.packages, NEWEST.len());
    assert_eq!(tree(&dest.path().join(NAME).join("repodata")), tree(&rd));
}

#[test]
fn bzip2_primary_is_a_clear_error() {
    let up = Upstream::new(&["--general-compress-type=bz2"]);
    let dest = tempfile::tempdir().unwrap();
    let err = sync(&up, dest.path(), false).0.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, YumError::Metadata { .. }), "{msg}");
    assert!(msg.contains(NAME) && msg.contains("bzip2") && msg.contains("primary.xml.bz2"), "{msg}");
}

#[test]
fn errors_name_the_repo_and_url() {
    let up = Upstream::new(&[]);
    let dest = tempfile::tempdir().unwrap();
    let f = fetcher();
    let mut repo = repo_of(&up, false);
    repo.baseurl = up.url("nowhere");
    let msg = yum::sync(&f, &repo, dest.path(), 2, &|_| {}).unwrap_err().to_string();
    assert!(msg.contains(NAME) && msg.contains(&up.url("nowhere/repodata/repomd.xml")) && msg.contains("404"), "{msg}");

    let mut repo = repo_of(&up, false);
    repo.gpgkey = Some(up.url("keys/missing.gpg"));
    let msg = yum::sync(&f, &repo, dest.path(), 2, &|_| {}).unwrap_err().to_string();
    assert!(msg.contains(NAME) && msg.contains(&up.url("keys/missing.gpg")), "{msg}");

    let mut repo = repo_of(&up, false);
    repo.baseurl = format!("{}/$basearch", up.baseurl());
    let msg = yum::sync(&f, &repo, dest.path(), 2, &|_| {}).unwrap_err().to_string();
    assert!(msg.contains("$basearch"), "{msg}");

    // Without a signature upstream, none is expected.
    fs::remove_file(up.repo().join("repodata/repomd.xml.asc")).unwrap();
    let s = yum::sync(&f, &repo_of(&up, false), dest.path(), 2, &|_| {}).unwrap();
    assert!(s.files.iter().all(|f| f.kind != FileKind::Signature));
    assert_same_tree(&up, dest.path());
}

/// A tiny deterministic generator (no rand crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn version(&mut self) -> String {
        const PARTS: &[&str] = &["0", "1", "2", "9", "10", "010", "a", "b", "rc", "git", ".", ".", "_", "+", "~", "^", "el8", "fc39"];
        (0..1 + self.next(6)).map(|_| PARTS[self.next(PARTS.len())]).collect()
    }
}

/// Results of rpm's own comparisons (`rpm.vercmp` / `rpm.ver`, through rpm's Lua), one
/// statement a line, in batches that fit a command line.
fn rpm_lua(lines: &[String]) -> Vec<i32> {
    let mut out = Vec::new();
    for batch in lines.chunks(500) {
        let text = String::from_utf8(run(Command::new("rpm").arg("--eval").arg(format!("%{{lua:{}}}", batch.concat())))).unwrap();
        out.extend(text.split_whitespace().map(|s| s.parse::<i32>().unwrap()));
    }
    out
}

#[test]
fn rpmvercmp_agrees_with_rpm() {
    require_tools();
    let mut g = Lcg(42);
    let pairs: Vec<(String, String)> = (0..3000)
        .map(|_| {
            let a = g.version();
            // Often a small edit of a, to exercise near-equal versions.
            let b = if g.next(2) == 0 { g.version() } else { format!("{a}{}", g.version()) };
            if g.next(2) == 0 { (a, b) } else { (b, a) }
        })
        .collect();
    let lines: Vec<String> = pairs.iter().map(|(a, b)| format!("print(rpm.vercmp([[{a}]],[[{b}]]),' ')\n")).collect();
    let want = rpm_lua(&lines);
    assert_eq!(want.len(), pairs.len());
    for ((a, b), w) in pairs.iter().zip(want) {
        assert_eq!(rpmvercmp(a, b) as i32, w.signum(), "rpmvercmp({a:?}, {b:?})");
    }

    let evrs: Vec<(String, String)> = (0..1000)
        .map(|_| {
            let mut evr = || {
                let e = if g.next(3) == 0 { format!("{}:", g.next(3)) } else { String::new() };
                let v: String = g.version().chars().filter(|c| *c != '-' && *c != ':').collect();
                let v = if v.is_empty() { "1".to_string() } else { v };
                format!("{e}{v}-{}", g.next(12))
            };
            (evr(), evr())
        })
        .collect();
    let lines: Vec<String> = evrs
        .iter()
        .map(|(a, b)| format!("do local a, b = rpm.ver([[{a}]]), rpm.ver([[{b}]]) print((a < b) and -1 or ((a == b) and 0 or 1), ' ') end\n"))
        .collect();
    let want = rpm_lua(&lines);
    assert_eq!(want.len(), evrs.len());
    for ((a, b), w) in evrs.iter().zip(want) {
        assert_eq!(Evr::parse(a).compare(&Evr::parse(b)) as i32, w, "EVR {a:?} vs {b:?}");
    }
}

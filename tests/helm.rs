//! Helm repository mirroring against real chart archives (laid out as `helm package` lays
//! them out) served by Python's `http.server` on 127.0.0.1.
//!
//! Debian has no `helm` package, so the Helm client side is checked by walking the written
//! index as Helm would (URLs resolved against the repository, digests, the Chart.yaml inside
//! each archive) and by mirroring the mirror itself from a static server.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock::sources::fetch::{FetchOptions, Fetcher};
use airlock::sources::helm::{self, HelmError, HelmRepo};
use common::sha256_hex;
use serde_json::Value as Json;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A chart archive as `helm package` writes it: a gzip stream (with Helm's extra header field
/// and the comment "Helm") of a tar whose entries are the chart's files under `<name>/`,
/// Chart.yaml first, regular files only, mode 0644.
fn chart_tgz(name: &str, version: &str) -> Vec<u8> {
    let files: Vec<(String, String)> = vec![
        ("Chart.yaml".into(), format!("apiVersion: v2\nname: {name}\ndescription: A test chart\ntype: application\nversion: {version}\nappVersion: \"1.16.0\"\n")),
        ("values.yaml".into(), format!("replicaCount: 1\ngreeting: hello from {name} {version}\n")),
        (
            "templates/configmap.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n".into(),
        ),
    ];
    let gz = flate2::GzBuilder::new().extra(b"+aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=".to_vec()).comment("Helm").write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, body) in &files {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("{name}/{path}")).unwrap();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// The files of an archive, path → content.
fn untar(tgz: &[u8]) -> Vec<(String, String)> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        out.push((p, s));
    }
    out
}

/// Python's static file server on a free loopback port, stopped when dropped.
struct StaticServer {
    child: Child,
    port: u16,
}

impl StaticServer {
    fn start(dir: &Path) -> StaticServer {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                .arg(dir)
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 runs");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return StaticServer { child, port };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("python3 -m http.server did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream Helm repository at `<root>/stable/`:
/// * alpha 0.1.0 at `stable/alpha-0.1.0.tgz` (URL relative: `alpha-0.1.0.tgz`),
/// * alpha 0.2.0 at `stable/sub/alpha-0.2.0.tgz` (URL relative: `sub/alpha-0.2.0.tgz`),
/// * beta 1.0.0 at `elsewhere/beta.tgz` (URL absolute, another file name).
struct Upstream {
    root: tempfile::TempDir,
    server: StaticServer,
    /// (name, version, archive bytes)
    charts: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl Upstream {
    fn new() -> Upstream {
        let root = tempfile::tempdir().unwrap();
        let server = StaticServer::start(root.path());
        let charts = vec![("alpha", "0.1.0", chart_tgz("alpha", "0.1.0")), ("alpha", "0.2.0", chart_tgz("alpha", "0.2.0")), ("beta", "1.0.0", chart_tgz("beta", "1.0.0"))];
        let beta_url = server.url("elsewhere/beta.tgz");
        let locations = [("stable/alpha-0.1.0.tgz", "alpha-0.1.0.tgz".to_string()), ("stable/sub/alpha-0.2.0.tgz", "sub/alpha-0.2.0.tgz".to_string()), ("elsewhere/beta.tgz", beta_url)];
        let mut index = String::from("apiVersion: v1\nentries:\n");
        let mut last = "";
        for ((name, version, bytes), (file, url)) in charts.iter().zip(&locations) {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            if *name != last {
                index.push_str(&format!("  {name}:\n"));
                last = name;
            }
            // As `helm repo index` writes an entry (versions newest first is not required).
            index.push_str(&format!(
                "  - apiVersion: v2\n    appVersion: 1.16.0\n    created: \"2024-05-01T10:00:00.000000000Z\"\n    description: A test chart\n    digest: {}\n    name: {name}\n    type: application\n    urls:\n    - {url}\n    version: {version}\n",
                sha256_hex(bytes)
            ));
        }
        index.push_str("generated: \"2024-05-01T10:00:00.000000000Z\"\n");
        std::fs::write(root.path().join("stable/index.yaml"), index).unwrap();
        Upstream { root, server, charts }
    }

    fn repo(&self, charts: Option<&[&str]>, versions: Option<&[&str]>) -> HelmRepo {
        HelmRepo {
            name: "stable".into(),
            url: self.server.url("stable"),
            charts: charts.map(|v| v.iter().map(|s| s.to_string()).collect()),
            versions: versions.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn bytes(&self, name: &str, version: &str) -> &[u8] {
        &self.charts.iter().find(|c| c.0 == name && c.1 == version).unwrap().2
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(FetchOptions { retries: 0, backoff: Duration::from_millis(10), ..Default::default() }).unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn names(s: &helm::HelmSync) -> Vec<String> {
    s.charts.iter().map(|c| format!("{}-{}", c.name, c.version)).collect()
}

/// Walks a mirror's index.yaml as a Helm client would: every entry's first URL resolved
/// against the repository, the archive's sha256 equal to `digest`, and the archive a chart
/// whose Chart.yaml names the entry's name and version. Returns the (name, version) pairs.
fn walk_index(repo_dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_dir.join("index.yaml")).unwrap();
    let index = airlock::yaml::parse_json(&text).unwrap();
    assert_eq!(index["apiVersion"], "v1");
    let mut seen = Vec::new();
    for (name, versions) in index["entries"].as_object().unwrap() {
        for e in versions.as_array().unwrap() {
            let version = e["version"].as_str().unwrap().to_string();
            let url = e["urls"][0].as_str().unwrap();
            assert!(!url.contains(':') && !url.starts_with('/'), "{url} is relative");
            let resolved = helm::resolve_url("http://mirror.invalid/charts", url).unwrap();
            let file = resolved.strip_prefix("http://mirror.invalid/charts/").unwrap();
            assert_eq!(file, format!("{name}-{version}.tgz"));
            let bytes = std::fs::read(repo_dir.join(file)).unwrap();
            assert_eq!(e["digest"].as_str().unwrap(), sha256_hex(&bytes), "{file}");
            let files = untar(&bytes);
            assert_eq!(files[0].0, format!("{name}/Chart.yaml"));
            let chart = airlock::yaml::parse_json(&files[0].1).unwrap();
            assert_eq!(chart["name"], Json::String(name.clone()));
            assert_eq!(chart["version"], Json::String(version.clone()));
            assert!(files.iter().any(|(p, _)| *p == format!("{name}/templates/configmap.yaml")));
            seen.push((name.clone(), version));
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn fixture_charts_are_helm_packages() {
    let tgz = chart_tgz("mychart", "1.2.3");
    assert_eq!(&tgz[..3], &[0x1f, 0x8b, 0x08]);
    assert_eq!(tgz[3] & 0x04, 0x04, "FEXTRA set, as helm package writes it");
    let files = untar(&tgz);
    let paths: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(paths, ["mychart/Chart.yaml", "mychart/values.yaml", "mychart/templates/configmap.yaml"]);
    let chart = airlock::yaml::parse_json(&files[0].1).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["version"], "1.2.3");
}

#[test]
fn sync_mirrors_verifies_and_resumes() {
    let up = Upstream::new();
    let dest = tempfile::tempdir().unwrap();
    let f = fetcher();
    let repo = up.repo(None, None);

    // Check mode: everything to fetch, sizes unknown.
    let plan = helm::plan(&f, &repo, dest.path()).unwrap();
    assert_eq!(plan.charts.len(), 3);
    assert!(plan.charts.iter().all(|c| !c.present && c.size.is_none()));
    assert_eq!(plan.charts[2].url, up.server.url("elsewhere/beta.tgz"));
    assert_eq!(plan.charts[1].url, up.server.url("stable/sub/alpha-0.2.0.tgz"));
    assert!(!dest.path().join("stable").exists(), "plan writes nothing");

    let counted = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        counted.fetch_add(n, Ordering::Relaxed);
    };
    let s = helm::sync(&f, &repo, dest.path(), 2, &on_bytes).unwrap();
    assert_eq!(names(&s), ["alpha-0.1.0", "alpha-0.2.0", "beta-1.0.0"]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let total: u64 = up.charts.iter().map(|c| c.2.len() as u64).sum();
    assert_eq!(s.bytes_downloaded, total);
    assert_eq!(counted.load(Ordering::Relaxed), total);
    assert!(s.index_changed && s.changed());
    for c in &s.charts {
        let want = up.bytes(&c.name, &c.version);
        assert!(c.downloaded);
        assert_eq!(c.path, PathBuf::from(format!("stable/{}-{}.tgz", c.name, c.version)));
        assert_eq!(std::fs::read(dest.path().join(&c.path)).unwrap(), want, "{} byte-identical", c.path.display());
        assert_eq!(c.size, want.len() as u64);
        assert_eq!(c.sha256, sha256_hex(want));
    }
    assert_eq!(
        files_under(dest.path()),
        ["stable/alpha-0.1.0.tgz", "stable/alpha-0.2.0.tgz", "stable/beta-1.0.0.tgz", "stable/index.upstream.yaml", "stable/index.yaml"]
    );
    assert_eq!(std::fs::read(dest.path().join("stable/index.upstream.yaml")).unwrap(), std::fs::read(up.root.path().join("stable/index.yaml")).unwrap());
    let walked = walk_index(&dest.path().join("stable"));
    assert_eq!(walked.len(), 3);
    // The rest of each entry is kept as upstream had it.
    let local = airlock::yaml::parse_json(&std::fs::read_to_string(dest.path().join("stable/index.yaml")).unwrap()).unwrap();
    assert_eq!(local["entries"]["alpha"][0]["created"], "2024-05-01T10:00:00.000000000Z");
    assert_eq!(local["entries"]["beta"][0]["appVersion"], "1.16.0");
    assert_eq!(local["generated"], "2024-05-01T10:00:00.000000000Z");

    // A second sync downloads nothing and rewrites nothing.
    let index_mtime = std::fs::metadata(dest.path().join("stable/index.yaml")).unwrap().modified().unwrap();
    let s2 = helm::sync(&f, &repo, dest.path(), 2, &on_bytes).unwrap();
    assert_eq!(s2.bytes_downloaded, 0);
    assert_eq!(counted.load(Ordering::Relaxed), total);
    assert!(s2.charts.iter().all(|c| !c.downloaded));
    assert!(!s2.index_changed && !s2.changed());
    assert_eq!(std::fs::metadata(dest.path().join("stable/index.yaml")).unwrap().modified().unwrap(), index_mtime);
    let plan = helm::plan(&f, &repo, dest.path()).unwrap();
    assert!(plan.charts.iter().all(|c| c.present && c.size.is_some()));
    assert_eq!(plan.to_download().count(), 0);

    // Resume: a missing chart and a corrupt one are fetched again, the rest is kept.
    std::fs::remove_file(dest.path().join("stable/alpha-0.1.0.tgz")).unwrap();
    std::fs::write(dest.path().join("stable/beta-1.0.0.tgz"), b"not a chart").unwrap();
    let plan = helm::plan(&f, &repo, dest.path()).unwrap();
    let todo: Vec<String> = plan.to_download().map(|c| format!("{}-{}", c.name, c.version)).collect();
    assert_eq!(todo, ["alpha-0.1.0", "beta-1.0.0"]);
    let s3 = helm::sync(&f, &repo, dest.path(), 1, &|_| {}).unwrap();
    assert_eq!(s3.bytes_downloaded, (up.bytes("alpha", "0.1.0").len() + up.bytes("beta", "1.0.0").len()) as u64);
    assert_eq!(std::fs::read(dest.path().join("stable/beta-1.0.0.tgz")).unwrap(), up.bytes("beta", "1.0.0"));
    assert!(!s3.index_changed);

    // The mirror is itself a Helm repository a static server can serve: mirror the mirror.
    let mirror_server = StaticServer::start(dest.path());
    let again = tempfile::tempdir().unwrap();
    let repo2 = HelmRepo { name: "copy".into(), url: mirror_server.url("stable/"), charts: None, versions: None };
    let s4 = helm::sync(&f, &repo2, again.path(), 3, &|_| {}).unwrap();
    assert_eq!(names(&s4), ["alpha-0.1.0", "alpha-0.2.0", "beta-1.0.0"]);
    assert_eq!(s4.charts[2].url, mirror_server.url("stable/beta-1.0.0.tgz"));
    for c in &s4.charts {
        assert_eq!(std::fs::read(again.path().join(&c.path)).unwrap(), up.bytes(&c.name, &c.version));
    }
    assert_eq!(std::fs::read(again.path().join("copy/index.yaml")).unwrap(), std::fs::read(dest.path().join("stable/index.yaml")).unwrap());
}

#[test]
fn filters_by_chart_and_version() {
    let up = Upstream::new();
    let f = fetcher();
    let run = |charts: Option<&[&str]>, versions: Option<&[&str]>| {
        let dest = tempfile::tempdir().unwrap();
        let r = helm::sync(&f, &up.repo(charts, versions), dest.path(), 4, &|_| {});
        (dest, r)
    };

    let (dest, s) = run(Some(&["alpha"]), None);
    assert_eq!(names(&s.unwrap()), ["alpha-0.1.0", "alpha-0.2.0"]);
    assert_eq!(files_under(dest.path()), ["stable/alpha-0.1.0.tgz", "stable/alpha-0.2.0.tgz", "stable/index.upstream.yaml", "stable/index.yaml"]);
    let walked = walk_index(&dest.path().join("stable"));
    assert_eq!(walked, [("alpha".to_string(), "0.1.0".to_string()), ("alpha".to_string(), "0.2.0".to_string())]);

    let (dest, s) = run(None, Some(&["0.1.0"]));
    assert_eq!(names(&s.unwrap()), ["alpha-0.1.0"]);
    assert_eq!(walk_index(&dest.path().join("stable")).len(), 1);

    let (_, s) = run(None, Some(&["0.2.0", "1.0.0"]));
    assert_eq!(names(&s.unwrap()), ["alpha-0.2.0", "beta-1.0.0"]);

    let (_, s) = run(Some(&["alpha"]), Some(&[">=0.2 <1"]));
    assert_eq!(names(&s.unwrap()), ["alpha-0.2.0"]);

    let (_, s) = run(None, Some(&["^0.1 || ~1.0"]));
    assert_eq!(names(&s.unwrap()), ["alpha-0.1.0", "beta-1.0.0"]);

    let (dest, s) = run(Some(&["alpha", "gamma"]), None);
    let e = s.unwrap_err();
    assert!(matches!(e, HelmError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("chart gamma not found"), "{e}");
    assert!(files_under(dest.path()).is_empty());

    let (_, s) = run(Some(&["beta"]), Some(&["0.1.0"]));
    let e = s.unwrap_err().to_string();
    assert!(e.contains("version 0.1.0 matches no version of charts beta"), "{e}");
}

#[test]
fn tampered_chart_fails_and_leaves_nothing() {
    let up = Upstream::new();
    // Same index, but the archive served for alpha 0.2.0 is not the one it describes.
    let mut bad = up.bytes("alpha", "0.2.0").to_vec();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    std::fs::write(up.root.path().join("stable/sub/alpha-0.2.0.tgz"), &bad).unwrap();

    let f = fetcher();
    let dest = tempfile::tempdir().unwrap();
    let err = helm::sync(&f, &up.repo(None, None), dest.path(), 2, &|_| {}).unwrap_err();
    match &err {
        HelmError::Digest { chart, version, expected, actual, .. } => {
            assert_eq!((chart.as_str(), version.as_str()), ("alpha", "0.2.0"));
            assert!(expected.contains(&sha256_hex(up.bytes("alpha", "0.2.0"))), "{expected}");
            assert!(actual.contains(&sha256_hex(&bad)), "{actual}");
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("chart alpha version 0.2.0") && msg.contains("digest mismatch"), "{msg}");
    // The good charts are in place; nothing of the bad one, no .part, no index.
    assert_eq!(files_under(dest.path()), ["stable/alpha-0.1.0.tgz", "stable/beta-1.0.0.tgz"]);

    // A stale copy at the chart's path is not kept either.
    std::fs::write(dest.path().join("stable/alpha-0.2.0.tgz"), b"old bytes").unwrap();
    let err = helm::sync(&f, &up.repo(Some(&["alpha"]), Some(&["0.2.0"])), dest.path(), 2, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("chart alpha version 0.2.0"), "{err}");
    assert_eq!(files_under(dest.path()), ["stable/alpha-0.1.0.tgz", "stable/beta-1.0.0.tgz"]);

    // Check mode does not download, so it cannot tell: it lists the chart to fetch.
    let plan = helm::plan(&f, &up.repo(None, None), dest.path()).unwrap();
    let todo: Vec<String> = plan.to_download().map(|c| format!("{}-{}", c.name, c.version)).collect();
    assert_eq!(todo, ["alpha-0.2.0"]);
}

#[test]
fn unreachable_or_invalid_repositories_fail_clearly() {
    let up = Upstream::new();
    let f = fetcher();
    let dest = tempfile::tempdir().unwrap();
    let missing = HelmRepo { name: "nope".into(), url: up.server.url("nope"), charts: None, versions: None };
    let e = helm::sync(&f, &missing, dest.path(), 1, &|_| {}).unwrap_err();
    assert!(matches!(e, HelmError::Index { .. }), "{e:?}");
    assert!(e.to_string().contains("/nope/index.yaml"), "{e}");

    std::fs::create_dir_all(up.root.path().join("junk")).unwrap();
    std::fs::write(up.root.path().join("junk/index.yaml"), "entries: {}\n").unwrap();
    let junk = HelmRepo { name: "junk".into(), url: up.server.url("junk"), charts: None, versions: None };
    let e = helm::sync(&f, &junk, dest.path(), 1, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("no apiVersion"), "{e}");

    let escape = HelmRepo { name: "../out".into(), url: up.server.url("stable"), charts: None, versions: None };
    let e = helm::sync(&f, &escape, dest.path(), 1, &|_| {}).unwrap_err();
    assert!(matches!(e, HelmError::Config { .. }), "{e:?}");
    assert!(files_under(dest.path()).is_empty());
}

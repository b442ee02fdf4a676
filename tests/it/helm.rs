//! Helm repository mirroring against charts the real Helm packaged and indexed (`helm
//! package`, `helm repo index --url/--merge`, run through Helm v4's Go SDK by
//! tests/it/support/helm_client.rs), served on loopback by Python's `http.server` or, at the
//! size of NVIDIA's repositories, by the chart-releaser fixture (index, GitHub releases,
//! CDN). What helm_sync mirrors is read and pulled back by the same real Helm client.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_content::sources::fetch::{FetchOptions, Fetcher};
use airlock_content::sources::helm::{self, HelmError, HelmRepo};
use serde_json::Value as Json;

use crate::support::chart_releases::{Host, ReleaseRepo};
use crate::support::helm_client::Spec;
use crate::support::{Project, StaticServer, chart_releases, helm_client, serve, sha256_hex};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// An upstream Helm repository at `<root>/stable/`, packaged and indexed by Helm:
/// * alpha 0.1.0 at `stable/alpha-0.1.0.tgz` (URL relative: `alpha-0.1.0.tgz`),
/// * alpha 0.2.0 at `stable/sub/alpha-0.2.0.tgz` (URL relative: `sub/alpha-0.2.0.tgz`),
/// * beta 1.0.0 at `elsewhere/beta.tgz` (URL absolute, another file name): indexed there with
///   `helm repo index --url`, and that index merged into stable's with `--merge`.
struct Upstream {
    root: tempfile::TempDir,
    server: StaticServer,
    /// (name, version, archive bytes)
    charts: Vec<(String, String, Vec<u8>)>,
}

impl Upstream {
    fn new() -> Upstream {
        let root = tempfile::tempdir().unwrap();
        let server = StaticServer::start(root.path());
        let made = helm_client::package(
            root.path(),
            &[Spec::new("alpha", "0.1.0").subdir("stable"), Spec::new("alpha", "0.2.0").subdir("stable/sub"), Spec::new("beta", "1.0.0").subdir("elsewhere")],
        );
        let elsewhere = root.path().join("elsewhere");
        std::fs::rename(elsewhere.join("beta-1.0.0.tgz"), elsewhere.join("beta.tgz")).unwrap();
        helm_client::index(&elsewhere, Some(&server.url("elsewhere")), None);
        helm_client::index(&root.path().join("stable"), None, Some(&elsewhere.join("index.yaml")));
        let charts = made.into_iter().map(|p| (p.name, p.version, p.bytes)).collect();
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

    fn index(&self) -> Json {
        airlock_base::yaml::parse_json(&std::fs::read_to_string(self.root.path().join("stable/index.yaml")).unwrap()).unwrap()
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

/// The real Helm reads a mirror directory as a repository (from a static server) and pulls
/// exactly `want`, each with upstream's bytes; every URL in the mirror's index is relative
/// (`<name>-<version>.tgz`), so the mirror can be served from anywhere.
#[track_caller]
fn helm_reads_mirror(up: &Upstream, repo_dir: &Path, want: &[(&str, &str)]) {
    let server = StaticServer::start(repo_dir);
    let expected: Vec<(&str, &str, &[u8])> = want.iter().map(|(n, v)| (*n, *v, up.bytes(n, v))).collect();
    for p in helm_client::assert_pulls_exactly(&server.url(""), &expected) {
        assert_eq!(p.urls, [format!("{}-{}.tgz", p.name, p.version)], "{} {}: the URL is relative", p.name, p.version);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

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
    assert_eq!(plan.charts[0].url, up.server.url("stable/sub/alpha-0.2.0.tgz"), "Helm lists the newest first");
    assert!(!dest.path().join("stable").exists(), "plan writes nothing");

    let counted = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        counted.fetch_add(n, Ordering::Relaxed);
    };
    let s = helm::sync(&f, &repo, dest.path(), 2, &on_bytes).unwrap();
    assert_eq!(names(&s), ["alpha-0.2.0", "alpha-0.1.0", "beta-1.0.0"]);
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
    helm_reads_mirror(&up, &dest.path().join("stable"), &[("alpha", "0.1.0"), ("alpha", "0.2.0"), ("beta", "1.0.0")]);
    // The rest of each entry is kept as upstream had it.
    let local = airlock_base::yaml::parse_json(&std::fs::read_to_string(dest.path().join("stable/index.yaml")).unwrap()).unwrap();
    let upstream = up.index();
    for (name, i) in [("alpha", 0), ("alpha", 1), ("beta", 0)] {
        let (l, u) = (&local["entries"][name][i], &upstream["entries"][name][i]);
        for key in ["version", "created", "digest", "appVersion", "description", "type"] {
            assert_eq!(l[key], u[key], "{name} {i} {key}");
        }
    }
    assert_eq!(local["entries"]["beta"][0]["appVersion"], "1.16.0");
    assert_eq!(local["generated"], upstream["generated"]);

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
    assert_eq!(names(&s4), ["alpha-0.2.0", "alpha-0.1.0", "beta-1.0.0"]);
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
    assert_eq!(names(&s.unwrap()), ["alpha-0.2.0", "alpha-0.1.0"]);
    assert_eq!(files_under(dest.path()), ["stable/alpha-0.1.0.tgz", "stable/alpha-0.2.0.tgz", "stable/index.upstream.yaml", "stable/index.yaml"]);
    helm_reads_mirror(&up, &dest.path().join("stable"), &[("alpha", "0.1.0"), ("alpha", "0.2.0")]);

    let (dest, s) = run(None, Some(&["0.1.0"]));
    assert_eq!(names(&s.unwrap()), ["alpha-0.1.0"]);
    helm_reads_mirror(&up, &dest.path().join("stable"), &[("alpha", "0.1.0")]);

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

/// A repository as big as NVIDIA's, published as chart-releaser publishes from GitHub: 3,000
/// versions of 30 charts in Helm's own index, every chart URL absolute on another host (the
/// releases) that redirects to a third (the CDN, signed URLs). helm_sync mirrors a selection
/// of it, downloading only what was selected; `airlock serve` serves the mirror, and the real
/// Helm reads it and pulls every chart, byte for byte. (A second run downloading nothing is
/// shown on the small repository above: reading this index costs seconds per run.)
#[test]
fn a_chart_releaser_repository_of_3000_versions_behind_redirects_is_mirrored_for_helm() {
    let up = ReleaseRepo::start();

    // The fixture as Helm sees it, and Helm's pull following the redirect to the CDN.
    let index = helm_client::repo_index(&up.url);
    let entries = index["entries"].as_object().unwrap();
    assert_eq!(entries.len(), chart_releases::CHARTS.len());
    let all: Vec<&Json> = entries.values().flat_map(|v| v.as_array().unwrap()).collect();
    assert_eq!(all.len(), chart_releases::VERSIONS);
    let releases = up.release_url("gpu-operator", "v2.1.0");
    let releases_host = &releases[..releases.find("/NVIDIA/").unwrap()];
    assert!(releases_host.starts_with("http://127.0.0.2:"), "{releases}");
    for e in &all {
        let url = e["urls"][0].as_str().unwrap();
        assert!(url.starts_with(&format!("{releases_host}/NVIDIA/helm-charts/releases/download/")), "{url}");
    }
    let pulled = helm_client::pull(&up.url, "gpu-operator", "v2.1.0");
    assert_eq!(pulled.sha256, sha256_hex(&up.chart("gpu-operator", "v2.1.0").bytes));
    let cdn = up.hits(Host::Cdn);
    assert_eq!(cdn.len(), 1, "{cdn:?}");
    assert!(cdn[0].contains("X-Amz-Signature="), "{}", cdn[0]);

    // helm_sync: three charts, one version pinned and a range (which leaves the release
    // candidate out).
    let p = Project::new();
    let root = p.path("mirror");
    p.file(
        "sync.yml",
        &format!(
            r#"- hosts: localhost
  gather_facts: false
  tasks:
    - name: NVIDIA's charts, pinned and ranged
      helm_sync:
        repos:
          - name: nvidia
            url: "{}"
            charts: [gpu-operator, network-operator, dcgm-exporter]
            versions: ["v2.1.0", "~1.3.0"]
        dest: "{}/helm"
      register: synced
    - debug:
        msg: "{{{{ synced.repos[0].charts }}}} {{{{ synced.repos[0].warnings | length }}}}"
"#,
            up.url,
            root.display()
        ),
    );
    let want: Vec<chart_releases::Version> = chart_releases::catalogue()
        .into_iter()
        .filter(|v| ["gpu-operator", "network-operator", "dcgm-exporter"].contains(&v.chart))
        .filter(|v| !v.prerelease && ((v.major, v.minor, v.patch) == (2, 1, 0) || (v.major, v.minor) == (1, 3)))
        .collect();
    assert_eq!(want.len(), 3 * (1 + 4), "2.1.0 and four of 1.3.x (1.3.1 is a release candidate) per chart");
    let first = p.playbook("sync.yml", &[]);
    first.success();
    assert_eq!(first.recap("localhost").changed, 1);
    assert_eq!(first.msgs(), [format!("\"{} 0\"", want.len())]);

    // Only the selection was downloaded: each chart once, through its release URL.
    let mut asked: Vec<String> = up.hits(Host::Releases).into_iter().skip(1).collect();
    asked.sort();
    let mut wanted: Vec<String> = want.iter().map(|v| up.release_url(v.chart, &v.version)[releases_host.len()..].to_string()).collect();
    wanted.sort();
    assert_eq!(asked, wanted);
    assert_eq!(up.hits(Host::Cdn).len(), 1 + want.len());
    let nvidia = root.join("helm/nvidia");
    let mut files: Vec<String> = want.iter().map(|v| format!("{}-{}.tgz", v.chart, v.version)).collect();
    files.extend(["index.upstream.yaml".to_string(), "index.yaml".to_string()]);
    files.sort();
    assert_eq!(files_under(&nvidia), files);
    assert_eq!(std::fs::read(nvidia.join("index.upstream.yaml")).unwrap(), std::fs::read(&up.index).unwrap());

    // The mirror, served by `airlock serve`, read and pulled by Helm.
    let s = serve::Serve::start_with(&root, &["--mirrors", "helm"]);
    let expected: Vec<(&str, &str, &[u8])> = want.iter().map(|v| (v.chart, v.version.as_str(), up.chart(v.chart, &v.version).bytes.as_slice())).collect();
    helm_client::assert_pulls_exactly(&format!("http://127.0.0.1:{}/nvidia", s.helm), &expected);

    assert_eq!(up.hits(Host::Pages).len(), 3, "Helm read the index twice (index, pull), helm_sync once");
}

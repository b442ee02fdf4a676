//! The real Helm client for tests: Helm v4's Go SDK (PyPI's helm-python-sdk, installed by
//! `.ci/setup-helm` into `target/helm-venv`), driven by `tests/it/support/helm_client.py`. It packages
//! charts and writes repository indexes the way `helm package` and `helm repo index` do, and
//! reads repositories, pulls and loads charts the way `helm pull` does. A missing SDK fails the
//! test naming the setup script; nothing is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value as Json, json};

const SETUP: &str = "run `bash .ci/setup-helm` (helm-python-sdk into target/helm-venv)";

/// The venv's Python: `AIRLOCK_TEST_HELM_PYTHON`, else `target/helm-venv/bin/python`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("AIRLOCK_TEST_HELM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/helm-venv/bin/python"));
    assert!(p.exists(), "the Helm SDK's Python is missing at {}: {SETUP}", p.display());
    p
}

/// What makes the charts: the driver's source and the SDK's installed version (its
/// `helm_python_sdk-<version>.dist-info` directory), for keys of cached fixtures.
pub fn identity() -> String {
    let driver = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/helm_client.py")).unwrap();
    let mut dist: Vec<String> = Vec::new();
    let lib = python().parent().unwrap().parent().unwrap().join("lib");
    for py in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        for e in std::fs::read_dir(py.path().join("site-packages")).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("helm_python_sdk-") {
                dist.push(name);
            }
        }
    }
    format!("{dist:?} {driver}")
}

/// Runs `steps` (see tests/it/support/helm_client.py) in one process; their answers, in order.
#[track_caller]
pub fn run(steps: Json) -> Vec<Json> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/helm_client.py");
    // Helm's repository cache goes under HOME (and the XDG directories): one of the run's own.
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(python())
        .arg(&script)
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env_remove("HELM_CACHE_HOME")
        .env_remove("HELM_CONFIG_HOME")
        .env_remove("HELM_DATA_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}: {SETUP}", python().display()));
    child.stdin.take().unwrap().write_all(steps.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "Helm ({}) failed ({}):\n{stderr}", script.display(), out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("helm_client.py printed no JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout)))
}

/// A chart to package: `helm create <name>`, Chart.yaml set to `metadata`, packaged as
/// `version` (and `app_version`) into the `subdir` of the destination.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub subdir: String,
    pub metadata: Json,
}

impl Spec {
    pub fn new(name: &str, version: &str) -> Spec {
        Spec { name: name.into(), version: version.into(), app_version: None, subdir: String::new(), metadata: json!({}) }
    }

    pub fn app_version(mut self, v: &str) -> Spec {
        self.app_version = Some(v.into());
        self
    }

    pub fn subdir(mut self, d: &str) -> Spec {
        self.subdir = d.into();
        self
    }

    /// Chart.yaml keys (`description`, `keywords`, `annotations`, ...).
    pub fn metadata(mut self, m: Json) -> Spec {
        self.metadata = m;
        self
    }

    fn to_json(&self) -> Json {
        let mut v = json!({"name": self.name, "version": self.version, "subdir": self.subdir, "metadata": self.metadata});
        if let Some(a) = &self.app_version {
            v["app_version"] = json!(a);
        }
        v
    }
}

/// A chart archive `helm package` wrote.
#[derive(Clone, Debug)]
pub struct Packaged {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

fn packaged(answer: &Json) -> Vec<Packaged> {
    answer["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let path = PathBuf::from(c["path"].as_str().unwrap());
            let bytes = std::fs::read(&path).unwrap();
            Packaged { name: c["name"].as_str().unwrap().into(), version: c["version"].as_str().unwrap().into(), path, bytes }
        })
        .collect()
}

fn package_step(dest: &Path, charts: &[Spec]) -> Json {
    json!({"op": "package", "dest": dest, "charts": charts.iter().map(Spec::to_json).collect::<Vec<_>>()})
}

fn index_step(dir: &Path, base_url: Option<&str>, merge: Option<&Path>) -> Json {
    let mut step = json!({"op": "index", "dir": dir});
    if let Some(u) = base_url {
        step["base_url"] = json!(u);
    }
    if let Some(m) = merge {
        step["merge"] = json!(m);
    }
    step
}

/// `helm package` of each chart into `dest` (or its `subdir`).
pub fn package(dest: &Path, charts: &[Spec]) -> Vec<Packaged> {
    packaged(&run(json!([package_step(dest, charts)]))[0])
}

/// `helm package` of `name`/`version` pairs into `dest`.
pub fn package_simple(dest: &Path, charts: &[(&str, &str)]) -> Vec<Packaged> {
    package(dest, &charts.iter().map(|(n, v)| Spec::new(n, v)).collect::<Vec<_>>())
}

/// `helm package` of each chart into `dir`, then `helm repo index dir [--url base_url]
/// [--merge merge]`, in one run of the SDK.
pub fn package_and_index(dir: &Path, charts: &[Spec], base_url: Option<&str>, merge: Option<&Path>) -> Vec<Packaged> {
    packaged(&run(json!([package_step(dir, charts), index_step(dir, base_url, merge)]))[0])
}

/// `helm repo index dir [--url base_url] [--merge merge]`.
pub fn index(dir: &Path, base_url: Option<&str>, merge: Option<&Path>) {
    run(json!([index_step(dir, base_url, merge)]));
}

/// The repository's index as Helm reads it: `{"apiVersion", "entries": {name: [{"version",
/// "digest", "urls", "appVersion", "created"}]}}`.
pub fn repo_index(repo_url: &str) -> Json {
    run(json!([{"op": "repo_index", "repo_url": repo_url}])).remove(0)
}

/// A chart `helm pull` fetched, as Helm loaded it.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub name: String,
    pub version: String,
    /// What the index says.
    pub digest: String,
    pub urls: Vec<String>,
    /// The file `helm pull` wrote, and the sha256 of its bytes.
    pub file: String,
    pub sha256: String,
    /// Chart.yaml as Helm loaded it from the archive.
    pub chart: Json,
    pub templates: Vec<String>,
}

fn pulled(p: &Json, name: &str, version: &str) -> Pulled {
    let s = |v: &Json| v.as_str().unwrap_or_default().to_string();
    Pulled {
        name: name.into(),
        version: version.into(),
        digest: s(&p["digest"]),
        urls: p["urls"].as_array().map(|u| u.iter().map(s).collect()).unwrap_or_default(),
        file: s(&p["file"]),
        sha256: s(&p["sha256"]),
        chart: p["chart"].clone(),
        templates: p["templates"].as_array().unwrap().iter().map(s).collect(),
    }
}

/// `helm pull <name> --repo <repo_url> --version <version>`, then the archive loaded.
pub fn pull(repo_url: &str, name: &str, version: &str) -> Pulled {
    let dest = tempfile::tempdir().unwrap();
    let a = run(json!([{"op": "pull", "repo_url": repo_url, "name": name, "version": version, "dest": dest.path()}])).remove(0);
    pulled(&a, name, version)
}

/// Helm reads the repository's index, then pulls every version of every chart it lists and
/// loads each archive.
pub fn pull_all(repo_url: &str) -> Vec<Pulled> {
    let dest = tempfile::tempdir().unwrap();
    let a = run(json!([{"op": "pull_all", "repo_url": repo_url, "dest": dest.path()}])).remove(0);
    assert_eq!(a["apiVersion"], "v1", "{repo_url}/index.yaml as Helm read it");
    a["pulled"].as_array().unwrap().iter().map(|p| pulled(p, p["name"].as_str().unwrap(), p["version"].as_str().unwrap())).collect()
}

/// Helm pulls every chart version the repository at `repo_url` lists, and they are exactly
/// `expected` (name, version, archive bytes): each listed once, pulled byte for byte (its
/// sha256 also the index's `digest`), saved as `<name>-<version>.tgz`, and loaded by Helm as
/// that chart and version with its templates. Returns what Helm pulled.
#[track_caller]
pub fn assert_pulls_exactly(repo_url: &str, expected: &[(&str, &str, &[u8])]) -> Vec<Pulled> {
    use sha2::Digest;
    let got = pull_all(repo_url);
    let mut seen: Vec<(String, String)> = got.iter().map(|p| (p.name.clone(), p.version.clone())).collect();
    seen.sort();
    let mut want: Vec<(String, String)> = expected.iter().map(|(n, v, _)| (n.to_string(), v.to_string())).collect();
    want.sort();
    assert_eq!(seen, want, "the chart versions Helm found in {repo_url}/index.yaml");
    for p in &got {
        let (_, _, bytes) = expected.iter().find(|(n, v, _)| *n == p.name && *v == p.version).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        assert_eq!(p.sha256, sha, "{} {}: helm pull from {repo_url} got other bytes", p.name, p.version);
        assert_eq!(p.digest, sha, "{} {}: the index's digest", p.name, p.version);
        assert_eq!(p.file, format!("{}-{}.tgz", p.name, p.version));
        assert_eq!((p.chart["name"].as_str(), p.chart["version"].as_str()), (Some(p.name.as_str()), Some(p.version.as_str())), "the chart Helm loaded");
        assert!(p.templates.iter().any(|t| t.ends_with("deployment.yaml")), "{} {}: Helm loaded no templates: {:?}", p.name, p.version, p.templates);
    }
    got
}

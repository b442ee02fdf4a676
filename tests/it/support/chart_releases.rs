//! A big chart repository published the way chart-releaser publishes one from GitHub, as
//! NVIDIA's and most community repositories are: thousands of versions (helm.ngc.nvidia.com
//! lists thousands) over a few dozen charts, packaged and indexed by the real Helm
//! (`tests/it/support/helm_client.rs`), on three loopback hosts:
//!
//! * the Pages host, 127.0.0.1: `/helm-charts/index.yaml`, as `helm repo index --url` wrote it;
//! * the releases host, 127.0.0.2: every chart URL of the index is absolute and points here,
//!   `/NVIDIA/helm-charts/releases/download/<chart>-<version>/<chart>-<version>.tgz`, which
//!   answers `302 Found` to a signed, expiring URL on the CDN;
//! * the CDN, 127.0.0.3: `/github-production-release-asset-2e65be/<asset id>?X-Amz-...`, the
//!   bytes when the signature matches, else `403` with S3's error document.
//!
//! Every request is recorded per host, so a test can tell what was downloaded.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::Digest;

use super::helm_client::{self, Packaged, Spec};

/// How many chart versions the repository lists.
pub const VERSIONS: usize = 3000;

/// The charts: (name, whether its versions carry a `v` as NGC's operators' do).
pub const CHARTS: &[(&str, bool)] = &[
    ("gpu-operator", true),
    ("network-operator", true),
    ("k8s-device-plugin", false),
    ("gpu-feature-discovery", false),
    ("dcgm-exporter", false),
    ("nvidia-dra-driver-gpu", false),
    ("k8s-nim-operator", true),
    ("nim-llm", false),
    ("nvidia-driver", false),
    ("mig-manager", false),
    ("node-feature-discovery", false),
    ("kai-scheduler", true),
    ("nvsm", false),
    ("gpu-telemetry", false),
    ("fabric-manager", false),
    ("nvidia-container-toolkit", false),
    ("triton-inference-server", false),
    ("riva-api", false),
    ("tao-toolkit-api", false),
    ("clara-parabricks", false),
    ("morpheus-ai-engine", false),
    ("rapids-notebook", false),
    ("nemo-framework", false),
    ("dgx-cloud-agent", false),
    ("bcm-exporter", false),
    ("ufm-telemetry", false),
    ("doca-platform", true),
    ("maintenance-operator", true),
    ("sriov-network-operator", true),
    ("ib-kubernetes", false),
];

/// One version of a chart: its `k`-th, `major = 1 + k/50`, `minor = k/5 % 10`,
/// `patch = k % 5`, and every 17th a release candidate (`-rc.1`) rather than a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub chart: &'static str,
    pub version: String,
    pub major: usize,
    pub minor: usize,
    pub patch: usize,
    pub prerelease: bool,
}

/// Every version, chart by chart: 61 to 115 per chart, and the rest (435) for the first.
pub fn catalogue() -> Vec<Version> {
    let counts: Vec<usize> = (0..CHARTS.len()).map(|i| 60 + (i * 41) % 81).collect();
    let rest: usize = counts[1..].iter().sum();
    assert!(rest < VERSIONS);
    let mut out = Vec::with_capacity(VERSIONS);
    for (i, (chart, v)) in CHARTS.iter().enumerate() {
        let n = if i == 0 { VERSIONS - rest } else { counts[i] };
        for k in 0..n {
            let (major, minor, patch) = (1 + k / 50, (k / 5) % 10, k % 5);
            let prerelease = k % 17 == 16;
            let version = format!("{}{major}.{minor}.{patch}{}", if *v { "v" } else { "" }, if prerelease { "-rc.1" } else { "" });
            out.push(Version { chart, version, major, minor, patch, prerelease });
        }
    }
    out
}

/// Which of the three hosts a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Pages,
    Releases,
    Cdn,
}

/// The running repository; its servers live until the test process ends.
pub struct ReleaseRepo {
    /// The repository URL, as `helm repo add` takes it.
    pub url: String,
    /// Every chart archive, as Helm packaged it.
    pub charts: Vec<Packaged>,
    /// The index as served.
    pub index: PathBuf,
    hits: Arc<Mutex<Vec<(Host, String)>>>,
    _dir: tempfile::TempDir,
}

const OWNER_REPO: &str = "/NVIDIA/helm-charts";
const ASSETS: &str = "/github-production-release-asset-2e65be/";
const SECRET: &str = "not-a-real-key";

fn signature(asset: &str, date: &str) -> String {
    hex::encode(sha2::Sha256::digest(format!("{SECRET}:{asset}:{date}")))
}

/// Bumped when what the cached fixture is made from changes in a way its key does not see.
const FIXTURE: &str = "chart-releases-1";
/// The releases host as the cached index names it; each run puts its own address there.
const PLACEHOLDER: &str = "http://releases.invalid";

/// The catalogue as Helm packaged and indexed it, made once and kept under
/// `target/helm-fixture/` (packaging and indexing 3,000 charts takes Helm tens of seconds on a
/// busy machine): `<chart>-<version>/<chart>-<version>.tgz` and `index.yaml`, whose URLs name
/// [`PLACEHOLDER`]. Keyed by what it is made from (the catalogue, the driver, the SDK's
/// version); made in a temporary directory and renamed into place, so tests running at once
/// never see half of it, and the copies of older keys removed.
fn cached_repository(specs: &[Spec]) -> PathBuf {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/helm-fixture");
    let key = hex::encode(sha2::Sha256::digest(format!("{FIXTURE} {specs:?} {}", helm_client::identity())));
    let dir = cache.join(format!("chart-releases-{}", &key[..16]));
    if !dir.join("index.yaml").is_file() {
        std::fs::create_dir_all(&cache).unwrap();
        let tmp = tempfile::tempdir_in(&cache).unwrap();
        helm_client::package_and_index(tmp.path(), specs, Some(&format!("{PLACEHOLDER}{OWNER_REPO}/releases/download")), None);
        // Another test may have made it meanwhile: then its copy stays and this one goes.
        let _ = std::fs::rename(tmp.path(), &dir);
        for e in std::fs::read_dir(&cache).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("chart-releases-") && e.path() != dir {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    dir
}

impl ReleaseRepo {
    /// Packages the catalogue with Helm, indexes it as chart-releaser does
    /// (`helm repo index --url https://github.com/<owner>/<repo>/releases/download`, one
    /// directory per release tag) and starts the three hosts.
    pub fn start() -> ReleaseRepo {
        let dir = tempfile::tempdir().unwrap();
        let pages = TcpListener::bind("127.0.0.1:0").unwrap();
        let releases = TcpListener::bind("127.0.0.2:0").unwrap();
        let cdn = TcpListener::bind("127.0.0.3:0").unwrap();
        let (pages_at, releases_at, cdn_at) = (pages.local_addr().unwrap(), releases.local_addr().unwrap(), cdn.local_addr().unwrap());

        let catalogue = catalogue();
        let specs: Vec<Spec> = catalogue
            .iter()
            .map(|v| {
                let app = v.version.trim_start_matches('v').split('-').next().unwrap().to_string();
                Spec::new(v.chart, &v.version).app_version(&app).subdir(&format!("{}-{}", v.chart, v.version)).metadata(json!({
                    "description": format!("{} for Kubernetes clusters with NVIDIA GPUs", v.chart),
                    "home": "https://github.com/NVIDIA/helm-charts",
                    "icon": "https://assets.nvidiagrid.net/ngc/logos/Infrastructure.png",
                    "sources": [format!("https://github.com/NVIDIA/{}", v.chart)],
                    "keywords": ["gpu", "nvidia", "kubernetes"],
                    "maintainers": [{"name": "NVIDIA", "url": "https://www.nvidia.com/"}],
                    "kubeVersion": ">= 1.16.0-0",
                    "annotations": {"artifacthub.io/license": "Apache-2.0"},
                }))
            })
            .collect();
        let assets = cached_repository(&specs);
        let charts: Vec<Packaged> = catalogue
            .iter()
            .map(|v| {
                let path = assets.join(format!("{0}-{1}/{0}-{1}.tgz", v.chart, v.version));
                Packaged { name: v.chart.into(), version: v.version.clone(), bytes: std::fs::read(&path).unwrap(), path }
            })
            .collect();
        // Only the host changes: the rest of the index stays as Helm wrote it.
        let index = dir.path().join("index.yaml");
        let text = std::fs::read_to_string(assets.join("index.yaml")).unwrap();
        assert_eq!(text.matches(PLACEHOLDER).count(), VERSIONS, "{}", assets.display());
        std::fs::write(&index, text.replace(PLACEHOLDER, &format!("http://{releases_at}"))).unwrap();

        // The CDN knows each release asset by a number of its own, as GitHub's storage does.
        let mut by_tag = HashMap::new();
        let mut by_asset = HashMap::new();
        for (i, c) in charts.iter().enumerate() {
            let file = c.path.file_name().unwrap().to_string_lossy().into_owned();
            let asset = format!("{}", 170_000_000 + i * 7);
            by_tag.insert(format!("{}-{}/{file}", c.name, c.version), (asset.clone(), file));
            by_asset.insert(asset, c.path.clone());
        }

        let hits = Arc::new(Mutex::new(Vec::new()));
        let index_file = index.clone();
        serve(pages, Host::Pages, hits.clone(), move |path| {
            if path == "/helm-charts/index.yaml" { Reply::ok(std::fs::read(&index_file).unwrap(), "application/x-yaml") } else { Reply::not_found() }
        });
        serve(releases, Host::Releases, hits.clone(), move |path| {
            let Some(release) = path.strip_prefix(&format!("{OWNER_REPO}/releases/download/")) else { return Reply::not_found() };
            let Some((asset, file)) = by_tag.get(release) else { return Reply::not_found() };
            let date = "20250301T120000Z";
            let location = format!(
                "http://{cdn_at}{ASSETS}{asset}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=releaseassetproduction%2F20250301%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=300&X-Amz-Signature={}&X-Amz-SignedHeaders=host&response-content-disposition=attachment%3B%20filename%3D{file}&response-content-type=application%2Foctet-stream",
                signature(asset, date)
            );
            Reply { status: 302, headers: vec![("Location".into(), location)], body: Vec::new() }
        });
        serve(cdn, Host::Cdn, hits.clone(), move |target| {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let Some(asset) = path.strip_prefix(ASSETS) else { return Reply::not_found() };
            let Some(file) = by_asset.get(asset) else { return Reply::not_found() };
            let param = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('='))).unwrap_or("");
            if param("X-Amz-Signature") != signature(asset, param("X-Amz-Date")) {
                let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>".to_vec();
                return Reply { status: 403, headers: vec![("Content-Type".into(), "application/xml".into())], body };
            }
            Reply::ok(std::fs::read(file).unwrap(), "application/octet-stream")
        });

        ReleaseRepo { url: format!("http://{pages_at}/helm-charts"), charts, index, hits, _dir: dir }
    }

    /// The paths (with queries) requested from `host`, in order.
    pub fn hits(&self, host: Host) -> Vec<String> {
        self.hits.lock().unwrap().iter().filter(|(h, _)| *h == host).map(|(_, p)| p.clone()).collect()
    }

    /// The archive of one chart version.
    pub fn chart(&self, name: &str, version: &str) -> &Packaged {
        self.charts.iter().find(|c| c.name == name && c.version == version).unwrap_or_else(|| panic!("no {name} {version}"))
    }

    /// The release URL of a chart version (what the index lists).
    pub fn release_url(&self, name: &str, version: &str) -> String {
        let text = std::fs::read_to_string(&self.index).unwrap();
        let tail = format!("/releases/download/{name}-{version}/{name}-{version}.tgz");
        text.lines().map(|l| l.trim().trim_start_matches("- ")).find(|l| l.ends_with(&tail)).unwrap_or_else(|| panic!("{tail} is not in the index")).to_string()
    }
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(body: Vec<u8>, content_type: &str) -> Reply {
        Reply { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body }
    }

    fn not_found() -> Reply {
        Reply { status: 404, headers: vec![("Content-Type".into(), "text/plain".into())], body: b"Not Found".to_vec() }
    }
}

/// Answers GET and HEAD on `listener`, one request per connection, with `answer(target)`.
fn serve(listener: TcpListener, host: Host, hits: Arc<Mutex<Vec<(Host, String)>>>, answer: impl Fn(&str) -> Reply + Send + Sync + 'static) {
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (answer, hits) = (answer.clone(), hits.clone());
            std::thread::spawn(move || handle(stream, host, &hits, &*answer));
        }
    });
}

fn handle(mut stream: TcpStream, host: Host, hits: &Mutex<Vec<(Host, String)>>, answer: &dyn Fn(&str) -> Reply) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(request) = super::read_request(&mut reader) else { return };
    let _ = reader.by_ref().take(request.content_length() as u64).read_to_end(&mut Vec::new());
    let (method, target) = (request.method.as_str(), request.target.as_str());
    hits.lock().unwrap().push((host, target.to_string()));
    let reply = if method == "GET" || method == "HEAD" { answer(target) } else { Reply { status: 405, headers: Vec::new(), body: Vec::new() } };
    let reason = match reply.status {
        200 => "OK",
        302 => "Found",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n", reply.status, reply.body.len());
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
}

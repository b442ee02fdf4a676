//! The cache build against upstreams shaped as the real ones are, not as a tidy test server
//! would be. Each runs on loopback addresses on the scripted server of
//! tests/it/support/scripted.rs, with pages and answers built here from what the real upstream
//! sends:
//!
//! - **pypi.org** (Warehouse and files.pythonhosted.org). The simple index on 127.0.0.1
//!   answers `/simple/` and `/simple/<project>/` as PEP 503 HTML or PEP 691 JSON by `Accept`
//!   (`text/html` when nothing else is asked for; pip asks for JSON first), with pypi.org's
//!   `X-PyPI-Last-Serial` and `Vary: Accept`. The files are on another host and port,
//!   127.0.0.2, as on files.pythonhosted.org: absolute URLs
//!   `/packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<file>` (b2 the file's BLAKE2b-256, as PyPI lays
//!   them out) with `#sha256=` fragments (JSON: `hashes`), `data-requires-python` from each
//!   wheel's `METADATA`, a yanked file (PEP 592: `data-yanked`, `"yanked": "<reason>"`), and
//!   every wheel's `METADATA` served beside it as `<file>.metadata`, announced as pypi.org
//!   announces it (PEP 658 and 714: `data-dist-info-metadata` and `data-core-metadata` in
//!   HTML; `core-metadata` and the misnamed `data-dist-info-metadata` PyPI still sends in
//!   JSON). The wheels are real ones from PyPI (`.ci/setup-pypi`): requests 2.31.0 and its
//!   dependencies, several platform wheels of charset-normalizer, idna 3.3 and 3.4 (3.4
//!   yanked here), and filelock 3.19.1 and 3.20.0 (which needs Python 3.10). The target is
//!   the role's default, CPython 3.9 on manylinux2014_x86_64 (RHEL 9's Python).
//! - **GitHub releases** (where Kubespray's binaries come from). On 127.0.0.1,
//!   `/<org>/<repo>/releases/download/<tag>/<file>` answers `302 Found` to an objects host
//!   on 127.0.0.3 (as objects.githubusercontent.com) at a path without the file name and a
//!   long signed query string (`X-Amz-Algorithm=...&X-Amz-Signature=...`); that host answers
//!   only the exact signed URL (403 without it, as S3 does), with `application/octet-stream`,
//!   `Content-Disposition: attachment; filename=<file>` and a chunked body (no
//!   `Content-Length`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::scripted::{Answer, Scripted};
use crate::support::{Project, pypiserver, run, serve, sha256_hex};

// ---------------------------------------------------------------------------------------------
// pypi.org

/// PEP 691's JSON, the form pip asks for first.
const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// One file on the fake pypi.org.
struct Dist {
    /// Normalised project name.
    project: String,
    version: String,
    file: String,
    bytes: Vec<u8>,
    /// The wheel's `*.dist-info/METADATA`, byte for byte (what PyPI serves as `.metadata`).
    metadata: Vec<u8>,
    requires_python: Option<String>,
    yanked: Option<&'static str>,
    /// Absolute, on the files host, without the fragment.
    url: String,
}

/// The reason given for the yanked file.
const YANKED: &str = "Broken release, use 3.3";

/// The files, from the two fixture directories `.ci/setup-pypi` fills: (directory, file, yanked).
fn dist_files() -> Vec<(PathBuf, &'static str, Option<&'static str>)> {
    let shared = pypiserver::fixture();
    let org = pypiserver::target_dir().join("pypi-org-fixture");
    let mut v: Vec<(PathBuf, &'static str, Option<&'static str>)> = [
        "requests-2.31.0-py3-none-any.whl",
        "urllib3-2.0.7-py3-none-any.whl",
        "idna-3.3-py3-none-any.whl",
        "certifi-2023.7.22-py3-none-any.whl",
        "charset_normalizer-3.3.2-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "charset_normalizer-3.3.2-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "charset_normalizer-3.3.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ]
    .into_iter()
    .map(|f| (shared.clone(), f, None))
    .collect();
    v.push((shared.clone(), "idna-3.4-py3-none-any.whl", Some(YANKED)));
    for f in [
        "charset_normalizer-3.3.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "filelock-3.19.1-py3-none-any.whl",
        "filelock-3.20.0-py3-none-any.whl",
    ] {
        assert!(org.join(f).is_file(), "fixture wheel {} is missing: {}", org.join(f).display(), pypiserver::SETUP);
        v.push((org.clone(), f, None));
    }
    v
}

/// What pip must resolve `requests==2.31.0` and `filelock` to for CPython 3.9 on x86_64: not
/// idna 3.4 (yanked), not filelock 3.20.0 (Requires-Python >=3.10), the cp39 wheel.
const RESOLVED: &[&str] = &[
    "certifi-2023.7.22-py3-none-any.whl",
    "charset_normalizer-3.3.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "filelock-3.19.1-py3-none-any.whl",
    "idna-3.3-py3-none-any.whl",
    "requests-2.31.0-py3-none-any.whl",
    "urllib3-2.0.7-py3-none-any.whl",
];

/// The `*.dist-info/METADATA` of a wheel.
fn wheel_metadata(file: &str, bytes: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let name = z
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .unwrap_or_else(|| panic!("{file} has no METADATA"))
        .into_owned();
    let mut out = Vec::new();
    z.by_name(&name).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// A header of core metadata (before the first blank line).
fn metadata_field(metadata: &[u8], field: &str) -> Option<String> {
    String::from_utf8_lossy(metadata)
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.split_once(": ").filter(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v.trim().to_string()))
}

/// BLAKE2b-256 of each file, hex, by Python's hashlib (the same digest PyPI's paths use).
fn blake2b_256(paths: &[PathBuf]) -> Vec<String> {
    let out = Command::new("python3")
        .args(["-c", "import hashlib, sys\nfor p in sys.argv[1:]:\n    print(hashlib.blake2b(open(p, 'rb').read(), digest_size=32).hexdigest())"])
        .args(paths)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// pypi.org on two hosts: the index and the files.
struct PyPiOrg {
    index: Scripted,
    files: Scripted,
    dists: Vec<Dist>,
}

impl PyPiOrg {
    /// With `json`, the index answers PEP 691 JSON to clients that ask for it, as pypi.org
    /// does; without, PEP 503 HTML to everyone (as simpler indexes and proxies of it do).
    fn start(json: bool) -> PyPiOrg {
        let list = dist_files();
        let hashes = blake2b_256(&list.iter().map(|(d, f, _)| d.join(f)).collect::<Vec<_>>());
        // The files host's address goes into the index's pages and into its own routes.
        let files_host = Scripted::bind("127.0.0.2");
        let files_base = files_host.base.clone();
        let mut dists = Vec::new();
        for ((dir, file, yanked), b2) in list.iter().zip(&hashes) {
            let bytes = fs::read(dir.join(file)).unwrap();
            let metadata = wheel_metadata(file, &bytes);
            let (project, version) = airlock_content::sources::pypi::parse_filename(file).unwrap();
            dists.push(Dist {
                project,
                version,
                file: file.to_string(),
                requires_python: metadata_field(&metadata, "Requires-Python"),
                metadata,
                bytes,
                yanked: *yanked,
                url: format!("{files_base}/packages/{}/{}/{}/{file}", &b2[..2], &b2[2..4], &b2[4..]),
            });
        }
        dists.sort_by(|a, b| (&a.project, &a.file).cmp(&(&b.project, &b.file)));

        // Files never change on PyPI, and its CDN says so.
        let file_headers: Vec<(String, String)> =
            [("Content-Type", "application/octet-stream"), ("Cache-Control", "max-age=365000000, immutable, public"), ("Accept-Ranges", "bytes")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let mut file_routes = Vec::new();
        for d in &dists {
            let path = d.url.strip_prefix(&files_base).unwrap().to_string();
            file_routes.push((format!("{path}.metadata"), vec![Answer::Headers { headers: file_headers.clone(), body: d.metadata.clone() }]));
            file_routes.push((path, vec![Answer::Headers { headers: file_headers.clone(), body: d.bytes.clone() }]));
        }
        let files = files_host.serve(file_routes);

        let mut projects: BTreeMap<&str, Vec<&Dist>> = BTreeMap::new();
        for d in &dists {
            projects.entry(d.project.as_str()).or_default().push(d);
        }
        let serial = 20_240_614;
        let headers = vec![("X-PyPI-Last-Serial".to_string(), serial.to_string()), ("Cache-Control".to_string(), "max-age=600, public".to_string())];
        let offers = |html: String, json_doc: serde_json::Value| {
            let html = html.into_bytes();
            let mut o = vec![("text/html".to_string(), html.clone()), ("application/vnd.pypi.simple.v1+html".to_string(), html)];
            if json {
                o.push((JSON.to_string(), serde_json::to_vec(&json_doc).unwrap()));
            }
            Answer::Negotiated { offers: o, headers: headers.clone() }
        };
        let mut index_routes = Vec::new();
        let mut root_html = String::from(
            "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
        );
        let mut root_json = Vec::new();
        for (name, ds) in &projects {
            root_html.push_str(&format!("    <a href=\"/simple/{name}/\">{name}</a>\n"));
            root_json.push(serde_json::json!({"name": name, "_last-serial": serial}));
            let mut html = format!(
                "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
            );
            let mut files_json = Vec::new();
            let mut versions: Vec<&str> = Vec::new();
            for d in ds {
                let sha = sha256_hex(&d.bytes);
                let meta_sha = sha256_hex(&d.metadata);
                let mut attrs = String::new();
                if let Some(rp) = &d.requires_python {
                    attrs.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
                }
                if let Some(reason) = d.yanked {
                    attrs.push_str(&format!(" data-yanked=\"{}\"", html_escape(reason)));
                }
                attrs.push_str(&format!(" data-dist-info-metadata=\"sha256={meta_sha}\" data-core-metadata=\"sha256={meta_sha}\""));
                html.push_str(&format!("    <a href=\"{}#sha256={sha}\"{attrs}>{}</a><br />\n", d.url, d.file));
                files_json.push(serde_json::json!({
                    "core-metadata": {"sha256": meta_sha},
                    "data-dist-info-metadata": {"sha256": meta_sha},
                    "filename": d.file,
                    "hashes": {"sha256": sha},
                    "provenance": null,
                    "requires-python": d.requires_python,
                    "size": d.bytes.len(),
                    "upload-time": "2023-10-17T17:46:22.187934Z",
                    "url": d.url,
                    "yanked": d.yanked.map(serde_json::Value::from).unwrap_or(serde_json::Value::Bool(false)),
                }));
                if !versions.contains(&d.version.as_str()) {
                    versions.push(&d.version);
                }
            }
            html.push_str(&format!("  </body>\n</html>\n<!--SERIAL {serial}-->"));
            let doc = serde_json::json!({"meta": {"_last-serial": serial, "api-version": "1.1"}, "name": name, "versions": versions, "files": files_json});
            index_routes.push((format!("/simple/{name}/"), vec![offers(html, doc)]));
        }
        root_html.push_str("  </body>\n</html>");
        index_routes.push((
            "/simple/".to_string(),
            vec![offers(root_html, serde_json::json!({"meta": {"_last-serial": serial, "api-version": "1.1"}, "projects": root_json}))],
        ));
        let index = Scripted::start(index_routes);
        PyPiOrg { index, files, dists }
    }

    /// The index URL as pypi.org's is written (`https://pypi.org/simple`).
    fn index_url(&self) -> String {
        self.index.url("/simple")
    }

    fn dist(&self, file: &str) -> &Dist {
        self.dists.iter().find(|d| d.file == file).unwrap_or_else(|| panic!("{file} is not on the index"))
    }

    /// The files (and `.metadata` files) requested from the files host, by file name.
    fn fetched(&self) -> Vec<String> {
        self.files.seen().iter().map(|s| s.target.rsplit('/').next().unwrap().to_string()).collect()
    }
}

/// pip from a venv, reading no configuration of this machine (its find-links, certificate
/// bundles or indexes) so that what it gets comes from the mirror alone.
fn venv_pip(venv: &Path) -> Command {
    let mut c = Command::new(venv.join("bin/pip"));
    c.env("PIP_CONFIG_FILE", "/dev/null").env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PIP_") && k != "PIP_CONFIG_FILE" && k != "PIP_DISABLE_PIP_VERSION_CHECK" {
            c.env_remove(k);
        }
    }
    c
}

#[track_caller]
/// The visible files of a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect();
    v.sort();
    v
}

/// A play with one pip_download task for RHEL 9's Python on x86_64, from `index`.
fn pip_play(index: &str, dest: &Path) -> String {
    format!(
        r#"- hosts: localhost
  gather_facts: false
  tasks:
    - name: Python packages for the offline hosts
      pip_download:
        requirements: ["requests==2.31.0", "filelock"]
        index_url: "{index}"
        python_version: "3.9"
        platforms: [manylinux2014_x86_64]
        dest: "{}"
"#,
        dest.display()
    )
}

/// Runs pip_download against `org`: checks the files, the manifest fragment and a rerun.
fn cache_from(org: &PyPiOrg, p: &Project) {
    let dest = p.path("cache/pip");
    p.file("pb.yml", &pip_play(&org.index_url(), &dest));
    let r = p.playbook("pb.yml", &[]);
    r.success();
    assert_eq!(r.recap("localhost").changed, 1, "{}", r.stdout);

    // The versions the request allows that pip may take: not the yanked idna 3.4, not filelock
    // 3.20.0 (Python >= 3.10), charset-normalizer's cp39 wheel; byte for byte PyPI's wheels.
    assert_eq!(listing(&dest), RESOLVED, "{}", r.stdout);
    for f in RESOLVED {
        assert!(fs::read(dest.join(f)).unwrap() == org.dist(f).bytes, "{f} differs from the upstream file");
    }

    // The manifest fragment: each file with its sha256, size, project, version and the URL it
    // came from on the files host (not the index's host, without the fragment).
    let fragment: Vec<serde_json::Value> = serde_json::from_str(&p.read("cache/.airlock/manifest.d/pip-pip.json")).unwrap();
    let mut by_path: BTreeMap<String, &serde_json::Value> = fragment.iter().map(|a| (a["path"].as_str().unwrap().to_string(), a)).collect();
    for f in RESOLVED {
        let d = org.dist(f);
        let a = by_path.remove(&format!("pip/{f}")).unwrap_or_else(|| panic!("pip/{f} is not in the fragment: {fragment:?}"));
        assert_eq!(a["kind"], "python", "{a}");
        assert_eq!(a["sha256"], sha256_hex(&d.bytes), "{a}");
        assert_eq!(a["size"], d.bytes.len(), "{a}");
        assert_eq!((a["name"].as_str(), a["version"].as_str()), (Some(d.project.as_str()), Some(d.version.as_str())), "{a}");
        assert_eq!(a["source"], d.url, "{a}");
        assert!(d.url.starts_with(&org.files.base), "{}", d.url);
    }
    assert!(by_path.is_empty(), "more in the fragment than was resolved: {by_path:?}");

    // Nothing of what pip must not take was fetched: not the yanked file, not the one for a
    // newer Python, not another platform's wheel, not even their metadata.
    let fetched = org.fetched();
    for f in &fetched {
        let wheel = f.strip_suffix(".metadata").unwrap_or(f);
        assert!(RESOLVED.contains(&wheel), "pip fetched {f}: {fetched:?}");
    }
    for f in RESOLVED {
        assert!(fetched.iter().any(|x| x == f), "{f} never came from the files host: {fetched:?}");
    }

    // A rerun asks neither host anything and changes nothing.
    let (index_before, files_before) = (org.index.seen().len(), org.files.seen().len());
    let again = p.playbook("pb.yml", &[]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);
    assert_eq!((org.index.seen().len(), org.files.seen().len()), (index_before, files_before));
}

#[test]
fn pip_download_from_pypi_org_json_and_the_mirror_serves_what_came() {
    let org = PyPiOrg::start(true);
    // The index negotiates as pypi.org does: HTML unless JSON is asked for.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let page = |accept: Option<&str>| {
        let mut req = reqwest::blocking::Client::new().get(org.index.url("/simple/idna/"));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let resp = req.send().unwrap();
        (resp.headers()["content-type"].to_str().unwrap().to_string(), resp.text().unwrap())
    };
    let (ctype, html) = page(None);
    assert_eq!(ctype, "text/html");
    let idna34 = org.dist("idna-3.4-py3-none-any.whl");
    assert!(
        html.contains(&format!("<a href=\"{}#sha256={}\" data-requires-python=\"&gt;=3.5\" data-yanked=\"{YANKED}\"", idna34.url, sha256_hex(&idna34.bytes))),
        "{html}"
    );
    let (ctype, json) = page(Some(JSON));
    assert_eq!(ctype, JSON);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["3.3", "3.4"]));
    assert_eq!(org.index.seen().len(), 2);

    let p = Project::new();
    cache_from(&org, &p);
    // pip asked for JSON and read JSON: every project page it got was PEP 691.
    let pages: Vec<_> = org.index.seen().into_iter().skip(2).collect();
    assert!(!pages.is_empty());
    for s in &pages {
        assert!(s.accept.as_deref().is_some_and(|a| a.starts_with(JSON)), "{s:?}");
        assert_eq!(s.content_type.as_deref(), Some(JSON), "{s:?}");
    }
    let mut asked: Vec<&str> = pages.iter().map(|s| s.target.as_str()).collect();
    asked.sort();
    asked.dedup();
    assert_eq!(asked, ["/simple/certifi/", "/simple/charset-normalizer/", "/simple/filelock/", "/simple/idna/", "/simple/requests/", "/simple/urllib3/"]);

    // What came is served by `airlock serve`'s PyPI mirror, and pip in a fresh venv takes the
    // very same files from it: for the target, and (the pure wheels) installed here.
    let s = serve::Serve::start_with(&p.path("cache"), &["--mirrors", "pip"]);
    let mirror = format!("http://127.0.0.1:{}/simple/", s.pip);
    let venv = p.path("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    let dl = p.path("from-mirror");
    let pins: Vec<String> = RESOLVED.iter().map(|f| format!("{}=={}", org.dist(f).project, org.dist(f).version)).collect();
    run(venv_pip(&venv)
        .args([
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.9",
            "--platform",
            "manylinux2014_x86_64",
            "--index-url",
            &mirror,
            "-d",
        ])
        .arg(&dl)
        .args(&pins));
    assert_eq!(listing(&dl), RESOLVED, "{}", s.log());
    for f in RESOLVED {
        assert!(fs::read(dl.join(f)).unwrap() == org.dist(f).bytes, "{f} from the mirror differs");
    }
    let pure: Vec<&String> = pins.iter().filter(|p| !p.starts_with("charset-normalizer")).collect();
    run(venv_pip(&venv).args(["install", "--no-deps", "--no-cache-dir", "--index-url", &mirror]).args(pure));
    let got = String::from_utf8(run(Command::new(venv.join("bin/python")).args([
        "-c",
        "import importlib.metadata as m, idna, urllib3, certifi, filelock\nprint(' '.join(m.version(n) for n in ['requests', 'urllib3', 'idna', 'certifi', 'filelock']))",
    ])))
    .unwrap();
    assert_eq!(got.trim(), "2.31.0 2.0.7 3.3 2023.7.22 3.19.1");
}

#[test]
fn pip_download_from_pypi_org_html() {
    let org = PyPiOrg::start(false);
    let p = Project::new();
    cache_from(&org, &p);
    for s in org.index.seen() {
        assert_eq!(s.content_type.as_deref(), Some("application/vnd.pypi.simple.v1+html"), "pip takes the HTML its Accept ranks next: {s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub releases

/// Bytes that differ at every position, so a shifted or spliced file cannot match.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed as u32).to_le_bytes()[1]).collect()
}

/// One release asset: where it is on github.com and the signed URL it redirects to.
struct Asset {
    /// `/<org>/<repo>/releases/download/<tag>/<file>`.
    release_path: String,
    file: &'static str,
    bytes: Vec<u8>,
    /// Path and signed query on the objects host.
    signed: String,
    /// The path alone (403 there, as S3 answers an unsigned request).
    unsigned: String,
}

impl Asset {
    fn new(org_repo: &str, repo_id: u32, tag: &str, file: &'static str, bytes: Vec<u8>) -> Asset {
        let sha = sha256_hex(&bytes);
        // Shaped as objects.githubusercontent.com's: no file name in the path, AWS Signature
        // Version 4 in the query, and the download's name and type in the response overrides.
        let unsigned =
            format!("/github-production-release-asset-2e65be/{repo_id}/{}-{}-{}-{}-{}", &sha[..8], &sha[8..12], &sha[12..16], &sha[16..20], &sha[20..32]);
        let signed = format!(
            "{unsigned}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAVCODYLSA53PQK4ZA%2F20240614%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240614T101010Z&X-Amz-Expires=300&X-Amz-Signature={}&X-Amz-SignedHeaders=host&actor_id=0&key_id=0&repo_id={repo_id}&response-content-disposition=attachment%3B%20filename%3D{file}&response-content-type=application%2Foctet-stream",
            sha256_hex(format!("{unsigned}{file}").as_bytes())
        );
        Asset { release_path: format!("/{org_repo}/releases/download/{tag}/{file}"), file, bytes, signed, unsigned }
    }

    /// The objects host's answer: a chunked octet stream named by Content-Disposition.
    fn download(&self, cut_after: Option<usize>) -> Answer {
        Answer::Chunked {
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Content-Disposition".into(), format!("attachment; filename={}", self.file)),
                ("Last-Modified".into(), "Fri, 14 Jun 2024 10:10:10 GMT".into()),
                ("ETag".into(), format!("\"0x8DC8C5{}\"", &sha256_hex(&self.bytes)[..10].to_ascii_uppercase())),
                ("x-ms-blob-type".into(), "BlockBlob".into()),
            ],
            body: self.bytes.clone(),
            chunk: 16 * 1024,
            cut_after,
        }
    }
}

#[test]
fn cache_files_follows_github_release_redirects_to_signed_chunked_downloads() {
    // crictl with Kubespray's kind of pinned sha256; nerdctl without a checksum, its first
    // download cut off in the middle: with no Content-Length, only the chunked framing (no
    // last chunk) says the body is incomplete.
    let crictl = Asset::new("kubernetes-sigs/cri-tools", 80_172_730, "v1.30.0", "crictl-v1.30.0-linux-amd64.tar.gz", payload(1_200_000, 1));
    let nerdctl = Asset::new("containerd/nerdctl", 143_223_512, "v1.7.6", "nerdctl-1.7.6-linux-amd64.tar.gz", payload(700_000, 2));
    let objects = Scripted::start_on(
        "127.0.0.3",
        vec![
            (crictl.signed.clone(), vec![crictl.download(None)]),
            (crictl.unsigned.clone(), vec![Answer::Status(403)]),
            (nerdctl.signed.clone(), vec![nerdctl.download(Some(300_000)), nerdctl.download(None)]),
            (nerdctl.unsigned.clone(), vec![Answer::Status(403)]),
        ],
    );
    let github = Scripted::start(vec![
        (crictl.release_path.clone(), vec![Answer::Redirect(objects.url(&crictl.signed))]),
        (nerdctl.release_path.clone(), vec![Answer::Redirect(objects.url(&nerdctl.signed))]),
    ]);
    let p = Project::new();
    let dest = p.path("cache/misc-files");
    let play = format!(
        r#"- hosts: localhost
  gather_facts: false
  tasks:
    - name: Kubespray's binaries from GitHub releases
      cache_files:
        dest: "{}"
        files:
          - url: "{}"
            checksum: "sha256:{}"
          - url: "{}"
"#,
        dest.display(),
        github.url(&crictl.release_path),
        sha256_hex(&crictl.bytes),
        github.url(&nerdctl.release_path)
    );
    p.file("pb.yml", &play);
    let r = p.playbook("pb.yml", &[]);
    r.success();
    assert_eq!(r.recap("localhost").changed, 1, "{}", r.stdout);

    // Each file under the name its release URL gives (not the objects host's path, not the
    // Content-Disposition), whole; nothing else is left.
    assert_eq!(listing(&dest), [crictl.file, nerdctl.file], "{}", r.stdout);
    for a in [&crictl, &nerdctl] {
        assert!(fs::read(dest.join(a.file)).unwrap() == a.bytes, "{} differs from the release asset", a.file);
    }
    assert_eq!(objects.count(&crictl.signed), 1);
    assert_eq!(objects.count(&nerdctl.signed), 2, "the cut download was retried");
    assert_eq!(objects.count(&crictl.unsigned) + objects.count(&nerdctl.unsigned), 0, "the signed query string was sent as given");
    assert_eq!(github.count(&crictl.release_path), 1);
    // A retry starts again from the release URL, which gives a fresh signature.
    assert_eq!(github.count(&nerdctl.release_path), 2);

    // The manifest records the release URL, which stays valid, not the signed one, which
    // expires in five minutes.
    let fragment: Vec<serde_json::Value> = serde_json::from_str(&p.read("cache/.airlock/manifest.d/files-misc-files.json")).unwrap();
    assert_eq!(fragment.len(), 2, "{fragment:?}");
    for a in [&crictl, &nerdctl] {
        let e = fragment.iter().find(|e| e["path"] == format!("misc-files/{}", a.file)).unwrap_or_else(|| panic!("{} is not in {fragment:?}", a.file));
        assert_eq!((e["kind"].as_str(), e["size"].as_u64()), (Some("file"), Some(a.bytes.len() as u64)), "{e}");
        assert_eq!(e["sha256"], sha256_hex(&a.bytes), "{e}");
        assert_eq!(e["source"], github.url(&a.release_path), "{e}");
    }

    // A rerun downloads nothing: neither host is asked anything.
    let (gh, ob) = (github.seen().len(), objects.seen().len());
    let again = p.playbook("pb.yml", &[]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);
    assert_eq!((github.seen().len(), objects.seen().len()), (gh, ob), "{:?}", github.seen());

    // cache_files takes digests, not the URL of a checksum file as get_url does (cri-tools
    // publishes `<file>.sha256` beside each asset): such an entry fails before anything is
    // fetched or written, naming the file and what to give instead.
    let sums_url = github.url(&format!("{}.sha256", crictl.release_path));
    let other = p.path("cache/other");
    p.file(
        "sums.yml",
        &play
            .replace(&dest.display().to_string(), &other.display().to_string())
            .replace(&format!("sha256:{}", sha256_hex(&crictl.bytes)), &format!("sha256:{sums_url}")),
    );
    let r = p.playbook("sums.yml", &[]);
    r.code(2);
    let line = r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_default();
    assert!(line.contains(&format!("files entry {}: checksum 'sha256:{sums_url}' is the URL of a checksum file", github.url(&crictl.release_path))), "{line}");
    assert!(line.contains("give the digest itself, '<algorithm>:<hex>'"), "{line}");
    assert_eq!((github.seen().len(), objects.seen().len()), (gh, ob), "{:?}", github.seen());
    assert!(!other.exists());
}

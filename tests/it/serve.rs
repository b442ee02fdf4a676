//! `airlock serve`: the mirror tree served without Docker, used by real clients (dnf, pip in a
//! fresh venv, Helm's own pull through its Go SDK, curl), and requests that try to leave the
//! root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::serve::Serve;
use crate::support::{helm_client, pypiserver, run, sha256_hex, yumfix};

/// pip from a venv, reading no configuration of this machine (its find-links, certificate
/// bundles or indexes) so that what it gets comes from the mirror alone.
fn pip(venv: &Path) -> Command {
    let mut c = Command::new(venv.join("bin/pip"));
    c.env("PIP_CONFIG_FILE", "/dev/null");
    for var in ["PIP_FIND_LINKS", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
        c.env_remove(var);
    }
    c
}

/// curl's status, headers and body for a request (`-i`), never following redirects; the path
/// is sent as written (`--path-as-is`).
fn curl(args: &[&str], url: &str) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--path-as-is", "--max-time", "30"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is missing: run `bash .ci/setup-docker`");
    assert!(out.status.success(), "curl {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let raw = out.stdout;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, raw[split..].to_vec())
}

/// A response header's value (names compared without case).
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {name} in\n{head}"))
}

/// A mirror tree as build-offline-mirrors lays it out, and a secret next to it that no
/// request may read.
fn mirror_root() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("deepops");
    for sub in ["yum", "helm", "pip", "misc-files/sub dir", "registry"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::write(d.path().join("secret"), "TOP-SECRET outside the root\n").unwrap();
    (d, root)
}

#[test]
fn yum_and_files_serve_dnf_and_curl_with_ranges_and_validators() {
    yumfix::require_tools();
    let (d, root) = mirror_root();
    // A Yum repository of real RPMs, indexed with createrepo_c.
    let rpms = yumfix::build_rpms(&[&yumfix::PACKAGES[4], &yumfix::PACKAGES[5]]);
    let repo = root.join("yum/fixture");
    for f in ["gamma-1.9-1.noarch.rpm", "gamma-1.10-1.noarch.rpm"] {
        let to = repo.join(yumfix::package_href(f));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(rpms.join(f), to).unwrap();
    }
    run(Command::new("createrepo_c").arg("--quiet").arg(&repo));
    let body: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    fs::write(root.join("misc-files/sub dir/kubectl"), &body).unwrap();
    fs::write(root.join("misc-files/notes.txt"), "hello\n").unwrap();
    let s = Serve::start(&root);

    // dnf: the newest gamma from the Yum mirror, byte for byte.
    let has_dnf = Command::new("dnf").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(has_dnf, "dnf is missing: run `bash .ci/setup-yum` (as root)");
    let dl = d.path().join("dnf-download");
    yumfix::dnf_download(&format!("http://127.0.0.1:{}/fixture/", s.yum), "gamma", &dl);
    let rpm = "gamma-1.10-1.noarch.rpm";
    assert_eq!(fs::read(dl.join(rpm)).unwrap(), fs::read(rpms.join(rpm)).unwrap(), "dnf downloaded other bytes");
    let y = format!("http://127.0.0.1:{}", s.yum);
    let (st, head, _) = curl(&["-I"], &format!("{y}/fixture/repodata/repomd.xml"));
    assert_eq!((st, header(&head, "content-type").as_str()), (200, "text/xml"));
    let (_, head, _) = curl(&["-I"], &format!("{y}/fixture/Packages/g/{rpm}"));
    assert_eq!(header(&head, "content-type"), "application/x-rpm");

    // Listings: directories redirect to their slash form, and list names with links.
    let (st, head, _) = curl(&[], &format!("{y}/fixture"));
    assert_eq!((st, header(&head, "location").as_str()), (301, "/fixture/"));
    let (st, _, page) = curl(&[], &format!("{y}/fixture/"));
    let page = String::from_utf8(page).unwrap();
    assert_eq!(st, 200);
    assert!(page.contains("<a href=\"repodata/\">repodata/</a>") && page.contains("<a href=\"Packages/\">"), "{page}");
    let f = format!("http://127.0.0.1:{}", s.files);
    let (_, _, page) = curl(&[], &format!("{f}/"));
    assert!(String::from_utf8(page).unwrap().contains("<a href=\"sub%20dir/\">sub dir/</a>"));

    // curl: whole, HEAD, one range, an unsatisfiable range, validators.
    let url = format!("{f}/sub%20dir/kubectl");
    let (st, head, got) = curl(&[], &url);
    assert_eq!((st, got == body), (200, true));
    assert_eq!(header(&head, "content-length"), body.len().to_string());
    assert_eq!(header(&head, "accept-ranges"), "bytes");
    let etag = header(&head, "etag");
    let modified = header(&head, "last-modified");
    let (st, head, got) = curl(&["-I"], &url);
    assert_eq!((st, got.len()), (200, 0));
    assert_eq!(header(&head, "content-length"), body.len().to_string());
    let (st, head, got) = curl(&["-H", "Range: bytes=1000-1999"], &url);
    assert_eq!((st, &got[..]), (206, &body[1000..2000]));
    assert_eq!(header(&head, "content-range"), format!("bytes 1000-1999/{}", body.len()));
    let (st, _, got) = curl(&["-H", "Range: bytes=-10"], &url);
    assert_eq!((st, &got[..]), (206, &body[body.len() - 10..]));
    let (st, head, _) = curl(&["-H", &format!("Range: bytes={}-", body.len())], &url);
    assert_eq!((st, header(&head, "content-range")), (416, format!("bytes */{}", body.len())));
    let (st, _, got) = curl(&["-H", "Range: bytes=0-1", "-H", "If-Range: \"other\""], &url);
    assert_eq!((st, got.len()), (200, body.len()));
    let (st, _, got) = curl(&["-H", &format!("If-None-Match: {etag}")], &url);
    assert_eq!((st, got.len()), (304, 0));
    let (st, _, _) = curl(&["-H", "If-None-Match: \"nope\""], &url);
    assert_eq!(st, 200);
    let (st, _, _) = curl(&["-H", &format!("If-Modified-Since: {modified}")], &url);
    assert_eq!(st, 304);
    let (st, _, _) = curl(&["-H", "If-Modified-Since: Thu, 01 Jan 2015 00:00:00 GMT"], &url);
    assert_eq!(st, 200);
    let (_, head, _) = curl(&["-I"], &format!("{f}/notes.txt"));
    assert_eq!(header(&head, "content-type"), "text/plain; charset=utf-8");
    let (st, _, _) = curl(&["-X", "POST"], &url);
    assert_eq!(st, 405);

    // One log line per request, and the startup table.
    let log = s.log();
    let table_row = log.lines().find(|l| l.trim_start().starts_with("files ")).unwrap_or_else(|| panic!("no startup table:\n{log}"));
    assert!(table_row.contains(&format!("127.0.0.1:{}", s.files)) && table_row.contains("misc-files"), "{table_row}");
    assert!(log.contains(" files 127.0.0.1 GET /sub%20dir/kubectl 206 1000 "), "{log}");
    assert!(log.contains(" yum 127.0.0.1 GET /fixture/repodata/repomd.xml 200 "), "{log}");
}

#[test]
fn pypi_serves_pip_in_a_fresh_venv_in_both_forms() {
    let fixture = pypiserver::fixture();
    let (d, root) = mirror_root();
    for f in pypiserver::FIXTURE_FILES {
        fs::copy(fixture.join(f), root.join("pip").join(f)).unwrap();
    }
    let s = Serve::start(&root);
    let base = format!("http://127.0.0.1:{}", s.pip);

    let venv = d.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(pip(&venv).args(["install", "--disable-pip-version-check", "--no-cache-dir", "--index-url", &format!("{base}/simple/"), "requests==2.31.0"]));
    run(Command::new(venv.join("bin/python")).args(["-c", "import requests, urllib3, idna, certifi, charset_normalizer"]));
    // Never a fallback: what is not here is not found.
    let out = pip(&venv)
        .args(["download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir", "-d"])
        .arg(d.path().join("dl"))
        .args(["--index-url", &format!("{base}/simple/"), "six"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "pip found six on the mirror");
    let (st, _, _) = curl(&[], &format!("{base}/simple/six/"));
    assert_eq!(st, 404);

    // HTML (PEP 503): sha256 fragments that match the files, Requires-Python from METADATA.
    let (st, head, page) = curl(&[], &format!("{base}/simple/idna/"));
    let page = String::from_utf8(page).unwrap();
    assert_eq!((st, header(&head, "content-type").as_str()), (200, "text/html"));
    for f in ["idna-3.4-py3-none-any.whl", "idna-3.3-py3-none-any.whl"] {
        let sha = sha256_hex(&fs::read(fixture.join(f)).unwrap());
        assert!(page.contains(&format!("href=\"../../packages/{f}#sha256={sha}\" data-requires-python=\"&gt;=3.5\"")), "{f}:\n{page}");
    }
    // JSON (PEP 691) by Accept; names normalised with a redirect.
    let json_accept = "Accept: application/vnd.pypi.simple.v1+json";
    let (st, head, body) = curl(&["-H", json_accept], &format!("{base}/simple/charset-normalizer/"));
    assert_eq!((st, header(&head, "content-type").as_str()), (200, "application/vnd.pypi.simple.v1+json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["meta"]["api-version"], "1.0");
    assert_eq!(v["name"], "charset-normalizer");
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        let name = f["filename"].as_str().unwrap();
        assert_eq!(f["hashes"]["sha256"], sha256_hex(&fs::read(fixture.join(name)).unwrap()).as_str());
        assert_eq!(f["requires-python"], ">=3.7.0", "{name}");
        let page = url::Url::parse(&format!("{base}/simple/charset-normalizer/")).unwrap();
        let (st, _, got) = curl(&[], page.join(f["url"].as_str().unwrap()).unwrap().as_str());
        assert_eq!((st, sha256_hex(&got)), (200, f["hashes"]["sha256"].as_str().unwrap().to_string()));
    }
    let (st, head, _) = curl(&["-H", json_accept], &format!("{base}/simple/Charset_Normalizer/"));
    assert_eq!((st, header(&head, "location").as_str()), (301, "/simple/charset-normalizer/"));
    let (_, head, _) = curl(&["-H", "Accept: application/vnd.pypi.simple.v1+html"], &format!("{base}/simple/idna/"));
    assert_eq!(header(&head, "content-type"), "application/vnd.pypi.simple.v1+html");
    let (st, _, _) = curl(&["-H", "Accept: application/xml"], &format!("{base}/simple/idna/"));
    assert_eq!(st, 406);
    let (_, _, body) = curl(&["-H", json_accept], &format!("{base}/simple/"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = v["projects"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["certifi", "charset-normalizer", "idna", "markupsafe", "requests", "urllib3"]);
}

#[test]
fn helm_serves_chartmuseum_index_and_api_rebuilt_on_change() {
    let (_d, root) = mirror_root();
    // Charts as `helm package` writes them, one repository per directory.
    let specs: Vec<helm_client::Spec> =
        [("stable", "app", "1.0.0"), ("stable", "app", "1.10.0"), ("stable", "app", "1.9.0-rc.1"), ("stable", "db", "0.1.0"), ("other", "tool", "2.0.0")]
            .iter()
            .map(|(repo, n, v)| helm_client::Spec::new(n, v).subdir(repo))
            .collect();
    let charts = helm_client::package(&root.join("helm"), &specs);
    fs::write(root.join("helm/stable/broken-1.0.0.tgz"), b"not a chart").unwrap();
    let s = Serve::start(&root);
    let base = format!("http://127.0.0.1:{}", s.helm);

    let (st, _, body) = curl(&[], &format!("{base}/health"));
    assert_eq!((st, &body[..]), (200, &b"{\"healthy\":true}"[..]));

    let (st, head, index) = curl(&[], &format!("{base}/stable/index.yaml"));
    assert_eq!((st, header(&head, "content-type").as_str()), (200, "application/x-yaml"));
    let index: serde_json::Value = airlock_base::yaml::parse_json(&String::from_utf8(index).unwrap()).unwrap();
    assert_eq!(index["apiVersion"], "v1");
    let versions: Vec<&str> = index["entries"]["app"].as_array().unwrap().iter().map(|e| e["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.10.0", "1.9.0-rc.1", "1.0.0"], "newest first");
    for e in index["entries"].as_object().unwrap().values().flat_map(|l| l.as_array().unwrap()) {
        assert_eq!((&e["apiVersion"], &e["appVersion"]), (&serde_json::json!("v2"), &serde_json::json!("1.16.0")), "from Chart.yaml: {e}");
    }
    let (st, head, _) = curl(&[], &format!("{base}/stable/charts/db-0.1.0.tgz"));
    assert_eq!((st, header(&head, "content-type").as_str()), (200, "application/x-tar"));

    // Helm reads each repository and pulls every chart it lists, byte for byte.
    let expect = |repo: &str| -> Vec<(&str, &str, &[u8])> {
        specs.iter().zip(&charts).filter(|(sp, _)| sp.subdir == repo).map(|(_, c)| (c.name.as_str(), c.version.as_str(), c.bytes.as_slice())).collect()
    };
    helm_client::assert_pulls_exactly(&format!("{base}/stable"), &expect("stable"));
    helm_client::assert_pulls_exactly(&format!("{base}/other"), &expect("other"));
    assert!(s.log().contains("broken-1.0.0.tgz: invalid chart package"), "{}", s.log());

    // ChartMuseum's API, per repository.
    let (_, _, body) = curl(&[], &format!("{base}/api/stable/charts"));
    let all: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), ["app", "db"]);
    let (_, _, body) = curl(&[], &format!("{base}/api/stable/charts?offset=1&limit=1"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap().as_object().unwrap().keys().collect::<Vec<_>>(), ["db"]);
    let (_, _, body) = curl(&[], &format!("{base}/api/stable/charts/app"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap().as_array().unwrap().len(), 3);
    let (_, _, body) = curl(&[], &format!("{base}/api/stable/charts/app/latest"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["version"], "1.10.0");
    let (st, _, body) = curl(&[], &format!("{base}/api/stable/charts/nope"));
    assert_eq!((st, &body[..]), (404, &b"{\"error\":\"chart not found\"}"[..]));
    let (_, _, body) = curl(&[], &format!("{base}/api/other/charts/tool/2.0.0"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["urls"][0], "charts/tool-2.0.0.tgz");
    let (st, _, _) = curl(&[], &format!("{base}/missing/index.yaml"));
    assert_eq!(st, 404);

    // A chart added later is in the next index.
    helm_client::package(&root.join("helm"), &[helm_client::Spec::new("db", "0.2.0").subdir("stable")]);
    let (_, _, body) = curl(&[], &format!("{base}/api/stable/charts/db"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["version"], "0.2.0");
    let added = sha256_hex(&fs::read(root.join("helm/stable/db-0.2.0.tgz")).unwrap());
    assert_eq!(v[0]["digest"], added.as_str());
    assert_eq!(helm_client::pull(&format!("{base}/stable"), "db", "0.2.0").sha256, added);
}

#[test]
fn requests_that_leave_the_root_get_400_or_404_and_no_byte_from_outside() {
    let (d, root) = mirror_root();
    let secret = d.path().join("secret");
    // Links pointing out of the root, in every mirror; and files that may be served.
    for sub in ["yum", "misc-files", "pip", "helm/stable"] {
        fs::create_dir_all(root.join(sub)).unwrap();
        std::os::unix::fs::symlink(&secret, root.join(sub).join("link")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join(sub).join("dirlink")).unwrap();
    }
    std::os::unix::fs::symlink(&secret, root.join("pip/evil-1.0-py3-none-any.whl")).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("helm/stable/evil-1.0.0.tgz")).unwrap();
    fs::write(root.join("misc-files/ok.txt"), "fine\n").unwrap();
    let s = Serve::start(&root);
    let attempts = [
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/.%2e/secret",
        "/sub%20dir/..%2f..%2fsecret",
        "/..%2fsecret",
        "/..%5csecret",
        "//../secret",
        "/link",
        "/dirlink/secret",
        "/dirlink/",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/ok.txt%00",
    ];
    let check = |port: u16, prefix: &str| {
        for a in attempts {
            let url = format!("http://127.0.0.1:{port}{prefix}{a}");
            let (st, _, body) = curl(&[], &url);
            assert!(st == 400 || st == 404, "{url}: {st}");
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("TOP-SECRET") && !text.contains("root:"), "{url} leaked:\n{text}");
        }
    };
    check(s.yum, "");
    check(s.files, "");
    check(s.pip, "/packages");
    check(s.helm, "/stable/charts");
    check(s.helm, "/api");
    // An absolute URL as the request target, and the files that are allowed, still served.
    let (st, _, _) = curl(&["--request-target", "http://127.0.0.1/../secret"], &format!("http://127.0.0.1:{}/", s.files));
    assert!(st == 400 || st == 404, "{st}");
    let (st, _, body) = curl(&[], &format!("http://127.0.0.1:{}/ok.txt", s.files));
    assert_eq!((st, &body[..]), (200, &b"fine\n"[..]));
    // Links pointing out are not listed, indexed or linked either.
    let (_, _, page) = curl(&[], &format!("http://127.0.0.1:{}/", s.files));
    assert!(!String::from_utf8_lossy(&page).contains("link"));
    let (st, _, page) = curl(&[], &format!("http://127.0.0.1:{}/simple/evil/", s.pip));
    assert!(st == 404 || !String::from_utf8_lossy(&page).contains("evil-1.0"), "{st}");
    let (_, _, index) = curl(&[], &format!("http://127.0.0.1:{}/stable/index.yaml", s.helm));
    assert!(!String::from_utf8_lossy(&index).contains("evil"));
}

#[test]
fn tls_with_a_self_signed_ca_or_given_files_serves_curl_and_pip() {
    let fixture = pypiserver::fixture();
    let (d, root) = mirror_root();
    fs::copy(fixture.join("idna-3.4-py3-none-any.whl"), root.join("pip/idna-3.4-py3-none-any.whl")).unwrap();
    fs::write(root.join("misc-files/ok.txt"), "fine\n").unwrap();
    let tls = d.path().join("tls");
    let tls_arg = tls.to_str().unwrap();
    let ca = tls.join("ca.pem");
    let ca_arg = ca.to_str().unwrap();
    let first_ca;
    {
        let s = Serve::start_with(&root, &["--tls-self-signed", tls_arg]);
        assert_eq!(s.scheme, "https");
        assert!(s.log().contains(&format!("clients trust the mirrors with {}", ca.display())), "{}", s.log());
        let (st, _, body) = curl(&["--cacert", ca_arg], &format!("https://localhost:{}/ok.txt", s.files));
        assert_eq!((st, &body[..]), (200, &b"fine\n"[..]));
        let (st, _, _) = curl(&["--cacert", ca_arg], &format!("https://127.0.0.1:{}/", s.yum));
        assert_eq!(st, 200);
        // Without the CA, curl refuses the certificate.
        let out = Command::new("curl").args(["-sS", &format!("https://127.0.0.1:{}/ok.txt", s.files)]).output().unwrap();
        assert!(!out.status.success(), "curl trusted the self-signed certificate without the CA");
        // pip, trusting the CA.
        let venv = d.path().join("venv");
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(pip(&venv)
            .args(["download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir", "--cert", ca_arg, "-d"])
            .arg(d.path().join("dl"))
            .args(["--index-url", &format!("https://127.0.0.1:{}/simple/", s.pip), "idna"]));
        assert!(d.path().join("dl/idna-3.4-py3-none-any.whl").is_file());
        first_ca = fs::read(&ca).unwrap();
    }
    // A restart keeps the CA clients already trust.
    {
        let s = Serve::start_with(&root, &["--tls-self-signed", tls_arg]);
        assert_eq!(fs::read(&ca).unwrap(), first_ca, "the CA was made again");
        let (st, _, _) = curl(&["--cacert", ca_arg], &format!("https://localhost:{}/ok.txt", s.files));
        assert_eq!(st, 200);
    }
    // The same certificate given as files.
    let s = Serve::start_with(&root, &["--tls-cert", tls.join("server.pem").to_str().unwrap(), "--tls-key", tls.join("server-key.pem").to_str().unwrap()]);
    let (st, _, _) = curl(&["--cacert", ca_arg], &format!("https://localhost:{}/health", s.helm));
    assert_eq!(st, 200);
    // A key that does not exist is named.
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", "--root"])
        .arg(&root)
        .args(["--tls-cert", ca_arg, "--tls-key", "/nonexistent/key.pem", "--files-port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the TLS key /nonexistent/key.pem"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `--mirrors` (the playbook's build_*_mirror switches): the others get no listener at all.
#[test]
fn only_the_mirrors_asked_for_listen() {
    let (_d, root) = mirror_root();
    let s = Serve::start_with(&root, &["--mirrors", "yum,files"]);
    assert_eq!(curl(&[], &format!("http://127.0.0.1:{}/", s.yum)).0, 200);
    assert_eq!(curl(&[], &format!("http://127.0.0.1:{}/", s.files)).0, 200);
    for port in [s.registry, s.helm, s.pip] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} listens:\n{}", s.log());
    }
    let log = s.log();
    assert!(log.contains("  yum ") && log.contains("  files ") && !log.contains("  pip ") && !log.contains("  registry "), "{log}");

    // A name that is not a mirror is refused, naming the ones there are.
    let out = Command::new(env!("CARGO_BIN_EXE_airlock")).args(["serve", "--root"]).arg(&root).args(["--mirrors", "yum,nginx"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nginx") && err.contains("registry, yum, helm, pip, files"), "{err}");
}

//! The registry of `airlock serve` (`registry_router`), run in-process on a loopback port over
//! a storage filled by `registry_import`, and driven by real clients: skopeo (pulls, copies of
//! every platform, pushes) and curl (headers, ranges, listings, errors, traversal). Where it
//! matters, answers are compared with Debian's `docker-registry` (distribution) serving the
//! same storage. Needs `bash .ci/setup-registry`; without it these tests fail, saying so.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_content::sources::registry_store::{ImportOptions, import};
use airlock_serve::registry::registry_router;
use serde_json::{Value, json};

use crate::support::registry::{Images, OCI_INDEX, OCI_MANIFEST, Registry, digest, require_tools, skopeo, try_skopeo};
use crate::support::sha256_hex;

/// Our registry on a free loopback port, stopped when dropped (with its runtime).
struct Served {
    port: u16,
    _rt: tokio::runtime::Runtime,
}

impl Served {
    fn start(storage: &Path, writable: bool) -> Served {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = registry_router(storage.to_path_buf(), writable);
        rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
        Served { port, _rt: rt }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn docker(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host())
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }
}

/// The fixture's images in an OCI layout, named as the cache names them (`example.com/test/app:v1`,
/// `example.com/test/multi:v1`), imported into `storage`.
struct Fixture {
    images: Images,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let images = Images::build(&dir.path().join("layout"));
    let index_path = images.dir().join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    for m in index["manifests"].as_array_mut().unwrap() {
        let name = m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string();
        m["annotations"]["org.opencontainers.image.ref.name"] = json!(format!("example.com/test/{name}:v1"));
    }
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let storage = dir.path().join("registry");
    import(images.dir(), &storage, None, &ImportOptions::default(), &mut |_| {}).unwrap();
    Fixture { images, storage, _dir: dir }
}

fn layout_bytes(images: &Images, digest: &str) -> Vec<u8> {
    fs::read(images.dir().join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())).unwrap()
}

fn raw_manifest(docker_ref: &str) -> Vec<u8> {
    skopeo(&["inspect", "--raw", "--tls-verify=false", docker_ref])
}

/// A curl answer: status, headers (lowercased names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_else(|| panic!("no error code: {self:?}")).to_string()
    }
}

/// Runs curl (`--path-as-is`, so `..` reaches the server as sent) with `args` and the URL.
fn curl(args: &[&str], url: &str) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-sS", "--path-as-is", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl ({e}): run `sudo bash .ci/setup-registry`"));
    assert!(out.status.success(), "curl {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let head = fs::read_to_string(&head).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Answer { status, headers, body: fs::read(&body).unwrap_or_default() }
}

/// Every blob of an OCI layout hashes to its name, and every descriptor of every manifest in
/// it names a blob that is there; the number of blobs.
fn verify_layout(layout: &Path) -> usize {
    let blobs = layout.join("blobs/sha256");
    let mut count = 0;
    for e in fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let bytes = fs::read(e.path()).unwrap();
        assert_eq!(sha256_hex(&bytes), e.file_name().to_str().unwrap(), "{} verifies", e.path().display());
        count += 1;
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            && v.get("schemaVersion").is_some()
        {
            let descs = v["manifests"].as_array().into_iter().flatten().chain(v["layers"].as_array().into_iter().flatten()).chain(v.get("config"));
            for d in descs {
                assert!(blobs.join(&digest(d)[7..]).is_file(), "{} names {} which was not copied", e.path().display(), digest(d));
            }
        }
    }
    count
}

#[test]
fn manifests_and_every_platform_copy_byte_identical_from_imported_storage() {
    let f = fixture();
    let ours = Served::start(&f.storage, false);
    let distribution = Registry::serve_storage(&f.storage);
    let (app, multi) = (digest(&f.images.app), digest(&f.images.multi));

    for (name, want) in [
        ("test/app:v1", layout_bytes(&f.images, &app)),
        ("test/multi:v1", layout_bytes(&f.images, &multi)),
        (&format!("test/app@{app}") as &str, layout_bytes(&f.images, &app)),
        (&format!("test/multi@{}", digest(&f.images.multi_arm64)), layout_bytes(&f.images, &digest(&f.images.multi_arm64))),
    ] {
        let got = raw_manifest(&ours.docker(name));
        assert_eq!(got, want, "{name}: the layout's bytes");
        assert_eq!(got, distribution.raw_manifest(name), "{name}: as distribution serves it");
    }
    // skopeo's own digest check of what it is given, and a whole multi-arch copy.
    let out = tempfile::tempdir().unwrap();
    let copied = out.path().join("multi");
    skopeo(&["copy", "--all", "--src-tls-verify=false", &ours.docker("test/multi:v1"), &format!("oci:{}:v1", copied.display())]);
    // The index, two manifests, two configs, the shared base and two platform layers.
    assert_eq!(verify_layout(&copied), 8);
    let copied_index: Value = serde_json::from_slice(&fs::read(copied.join("index.json")).unwrap()).unwrap();
    assert_eq!(copied_index["manifests"][0]["digest"], json!(multi), "the index digest is upstream's");
    // A single image too, by way of skopeo's dir: transport.
    let app_dir = out.path().join("app");
    skopeo(&["copy", "--src-tls-verify=false", &ours.docker("test/app:v1"), &format!("dir:{}", app_dir.display())]);
    assert_eq!(fs::read(app_dir.join("manifest.json")).unwrap(), layout_bytes(&f.images, &app));
}

#[test]
fn headers_ranges_and_errors_over_http() {
    let f = fixture();
    let ours = Served::start(&f.storage, false);
    let app = digest(&f.images.app);

    let base = curl(&[], &ours.url("/v2/"));
    assert_eq!((base.status, base.json()), (200, json!({})));
    assert_eq!(base.header("docker-distribution-api-version"), "registry/2.0");

    // HEAD and GET of a manifest: the same headers, the media type of the manifest.
    let head = curl(&["-I"], &ours.url("/v2/test/app/manifests/v1"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), OCI_MANIFEST);
    assert_eq!(head.header("docker-content-digest"), app);
    assert_eq!(head.header("etag"), format!("\"{app}\""));
    assert_eq!(head.header("content-length"), layout_bytes(&f.images, &app).len().to_string());
    let index = curl(&[], &ours.url("/v2/test/multi/manifests/v1"));
    assert_eq!((index.status, index.header("content-type")), (200, OCI_INDEX));

    // Blobs: HEAD, whole, ranges.
    let layer = digest(&f.images.app_layer.desc);
    let bytes = layout_bytes(&f.images, &layer);
    let len = bytes.len();
    let url = ours.url(&format!("/v2/test/app/blobs/{layer}"));
    let h = curl(&["-I"], &url);
    assert_eq!((h.status, h.header("content-length"), h.header("docker-content-digest")), (200, &*len.to_string(), &*layer));
    assert_eq!(h.header("content-type"), "application/octet-stream");
    let whole = curl(&[], &url);
    assert_eq!(whole.body, bytes);
    let part = curl(&["-H", "Range: bytes=10-109"], &url);
    assert_eq!((part.status, part.header("content-range")), (206, &*format!("bytes 10-109/{len}")));
    assert_eq!(part.body, bytes[10..110]);
    let tail = curl(&["-H", "Range: bytes=-5"], &url);
    assert_eq!((tail.status, &tail.body[..]), (206, &bytes[len - 5..]));
    let open = curl(&["-H", &format!("Range: bytes={}-", len - 3)], &url);
    assert_eq!((open.status, &open.body[..]), (206, &bytes[len - 3..]));
    let bad = curl(&["-H", &format!("Range: bytes={len}-")], &url);
    assert_eq!((bad.status, bad.header("content-range")), (416, &*format!("bytes */{len}")));

    // Unknown things: distribution's error bodies.
    let missing = curl(&[], &ours.url("/v2/test/app/manifests/nope"));
    assert_eq!((missing.status, missing.error_code()), (404, "MANIFEST_UNKNOWN".to_string()));
    // A manifest held by another repository only is unknown here, as is a blob.
    let other = curl(&[], &ours.url(&format!("/v2/test/multi/manifests/{app}")));
    assert_eq!((other.status, other.error_code()), (404, "MANIFEST_UNKNOWN".to_string()));
    let foreign = curl(&[], &ours.url(&format!("/v2/test/multi/blobs/{layer}")));
    assert_eq!((foreign.status, foreign.error_code()), (404, "BLOB_UNKNOWN".to_string()));
    let none = curl(&["-I"], &ours.url(&format!("/v2/test/app/blobs/sha256:{}", "0".repeat(64))));
    assert_eq!(none.status, 404);
    let invalid = curl(&[], &ours.url("/v2/test/app/blobs/md5:abc"));
    assert_eq!((invalid.status, invalid.error_code()), (400, "DIGEST_INVALID".to_string()));

    // Traversal: names outside the grammar never reach the filesystem.
    let hex = &layer[7..];
    for path in [
        "/v2/../../../etc/manifests/v1".to_string(),
        format!("/v2/test/../test/app/blobs/{layer}"),
        format!("/v2/%2e%2e/test/app/blobs/{layer}"),
        "/v2/test/app/manifests/..".to_string(),
        format!("/v2/test/app/blobs/sha256:{}", "../".repeat(20) + &hex[..4]),
        "/v2/Test/App/tags/list".to_string(),
    ] {
        let a = curl(&[], &ours.url(&path));
        assert!(a.status == 400 || a.status == 404, "{path}: {a:?}");
        assert!(a.json()["errors"].is_array(), "{path}: {a:?}");
        assert_ne!(a.body, bytes, "{path}");
    }
    let name_invalid = curl(&[], &ours.url("/v2/test/../app/manifests/v1"));
    assert_eq!((name_invalid.status, name_invalid.error_code()), (400, "NAME_INVALID".to_string()));

    // Nothing can be written.
    for (method, path) in [
        ("PUT", "/v2/test/app/manifests/v2".to_string()),
        ("POST", "/v2/test/app/blobs/uploads/".to_string()),
        ("DELETE", format!("/v2/test/app/manifests/{app}")),
        ("DELETE", format!("/v2/test/app/blobs/{layer}")),
    ] {
        let a = curl(&["-X", method, "--data-binary", "{}"], &ours.url(&path));
        assert_eq!((a.status, a.error_code()), (405, "UNSUPPORTED".to_string()), "{method} {path}");
    }
    let e = try_skopeo(&["copy", "--dest-tls-verify=false", &format!("oci:{}:app", f.images.dir().display()), &ours.docker("test/pushed:v1")]);
    assert!(e.is_err(), "a push into a read-only registry fails");
    assert!(!f.storage.join("docker/registry/v2/repositories/test/pushed").exists());
}

#[test]
fn tags_and_catalog_paginate_as_distribution_does() {
    let f = fixture();
    // More tags and repositories: the same images under other names.
    let index_path = f.images.dir().join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let app = index["manifests"][0].clone();
    for name in ["example.com/test/app:v2", "example.com/test/app:latest", "example.com/other/deep/name:1", "docker.io/library/busybox:1"] {
        let mut e = app.clone();
        e["annotations"]["org.opencontainers.image.ref.name"] = json!(name);
        index["manifests"].as_array_mut().unwrap().push(e);
    }
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    import(f.images.dir(), &f.storage, None, &ImportOptions::default(), &mut |_| {}).unwrap();
    let ours = Served::start(&f.storage, false);
    let distribution = Registry::serve_storage(&f.storage);
    let theirs = |path: &str| curl(&[], &format!("http://{}{path}", distribution.host()));

    let tags = curl(&[], &ours.url("/v2/test/app/tags/list"));
    assert_eq!(tags.json(), json!({"name": "test/app", "tags": ["latest", "v1", "v2"]}));
    assert_eq!(tags.json(), theirs("/v2/test/app/tags/list").json());
    let page = curl(&[], &ours.url("/v2/test/app/tags/list?n=2"));
    assert_eq!(page.json()["tags"], json!(["latest", "v1"]));
    assert_eq!(page.header("link"), "</v2/test/app/tags/list?last=v1&n=2>; rel=\"next\"");
    let next = curl(&[], &ours.url("/v2/test/app/tags/list?last=v1&n=2"));
    assert_eq!(next.json()["tags"], json!(["v2"]));
    assert!(!next.headers.contains_key("link"));
    let unknown = curl(&[], &ours.url("/v2/test/nothing/tags/list"));
    assert_eq!((unknown.status, unknown.error_code()), (404, "NAME_UNKNOWN".to_string()));

    let catalog = curl(&[], &ours.url("/v2/_catalog"));
    let all = json!(["busybox", "library/busybox", "other/deep/name", "test/app", "test/multi"]);
    assert_eq!(catalog.json(), json!({"repositories": all}));
    assert_eq!(catalog.json(), theirs("/v2/_catalog").json());
    let first = curl(&[], &ours.url("/v2/_catalog?n=3"));
    assert_eq!(first.json()["repositories"], json!(["busybox", "library/busybox", "other/deep/name"]));
    let link = first.header("link").to_string();
    assert!(link.starts_with("</v2/_catalog?last=other%2Fdeep%2Fname&n=3>"), "{link}");
    let rest = curl(&[], &ours.url(link.trim_start_matches('<').split('>').next().unwrap()));
    assert_eq!(rest.json()["repositories"], json!(["test/app", "test/multi"]));
    // Several path components, the manifest served under each name.
    assert_eq!(raw_manifest(&ours.docker("other/deep/name:1")), layout_bytes(&f.images, &digest(&f.images.app)));
    assert_eq!(raw_manifest(&ours.docker("library/busybox:1")), layout_bytes(&f.images, &digest(&f.images.app)));
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn skopeo_pushes_into_a_writable_registry_in_distributions_layout() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let images = Images::build(&dir.path().join("layout"));
    let storage = dir.path().join("registry");
    let ours = Served::start(&storage, true);
    let layout = |tag: &str| format!("oci:{}:{tag}", images.dir().display());
    skopeo(&["copy", "--all", "--dest-tls-verify=false", &layout("app"), &ours.docker("test/app:v1")]);
    skopeo(&["copy", "--all", "--dest-tls-verify=false", &layout("multi"), &ours.docker("test/multi:v1")]);
    // Converted to Docker media types on the way: a Docker manifest list.
    skopeo(&["copy", "--all", "--format=v2s2", "--dest-tls-verify=false", &layout("multi"), &ours.docker("test/docker-multi:v1")]);
    // A second push of the same is a no-op that succeeds (blobs found, mounted or skipped).
    skopeo(&["copy", "--all", "--dest-tls-verify=false", &layout("app"), &ours.docker("other/app:v1")]);

    assert_eq!(raw_manifest(&ours.docker("test/app:v1")), layout_bytes(&images, &digest(&images.app)));
    assert_eq!(raw_manifest(&ours.docker("test/multi:v1")), layout_bytes(&images, &digest(&images.multi)));
    assert_eq!(raw_manifest(&ours.docker("other/app:v1")), layout_bytes(&images, &digest(&images.app)));
    let docker_list: Value = serde_json::from_slice(&raw_manifest(&ours.docker("test/docker-multi:v1"))).unwrap();
    assert_eq!(docker_list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");

    // Distribution serves what was pushed, byte for byte, every platform verifying.
    let distribution = Registry::serve_storage(&storage);
    for name in ["test/app:v1", "test/multi:v1", "test/docker-multi:v1", "other/app:v1"] {
        assert_eq!(distribution.raw_manifest(name), raw_manifest(&ours.docker(name)), "{name}");
    }
    let out = tempfile::tempdir().unwrap();
    for name in ["test/multi:v1", "test/docker-multi:v1"] {
        let copied = out.path().join(name.replace([':', '/'], "-"));
        skopeo(&["copy", "--all", "--src-tls-verify=false", &distribution.docker(name), &format!("oci:{}:v1", copied.display())]);
        assert_eq!(verify_layout(&copied), 8, "{name}");
    }
    // Link files as distribution writes them; nothing staged or half-uploaded is left.
    let v2 = storage.join("docker/registry/v2");
    for (path, content) in files(&v2.join("repositories")) {
        assert!(path.ends_with("/link"), "{path} is a link file");
        let text = String::from_utf8(content).unwrap();
        assert!(text.len() == 71 && text.starts_with("sha256:"), "{path}: {text:?}");
        if !path.ends_with("current/link") {
            assert_eq!(&text[7..], path.rsplit('/').nth(1).unwrap(), "{path} names its own digest");
        }
    }
    assert!(fs::read_dir(&storage).unwrap().all(|e| e.unwrap().file_name() == "docker"), "no staged file is left");
    assert_eq!(fs::read(v2.join("repositories/test/multi/_manifests/tags/v1/current/link")).unwrap(), digest(&images.multi).into_bytes());
}

#[test]
fn chunked_uploads_mounts_and_refused_pushes_over_http() {
    let f = fixture();
    let ours = Served::start(&f.storage, true);
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = format!("sha256:{}", sha256_hex(&bytes));
    let chunks = tempfile::tempdir().unwrap();
    let (a, b) = (chunks.path().join("a"), chunks.path().join("b"));
    fs::write(&a, &bytes[..100_000]).unwrap();
    fs::write(&b, &bytes[100_000..]).unwrap();

    let start = curl(&["-X", "POST"], &ours.url("/v2/up/load/blobs/uploads/"));
    assert_eq!((start.status, start.header("range")), (202, "0-0"));
    let location = start.header("location").to_string();
    let first = curl(&["-X", "PATCH", "-H", "Content-Range: 0-99999", "--data-binary", &format!("@{}", a.display())], &ours.url(&location));
    assert_eq!((first.status, first.header("range")), (202, "0-99999"));
    // A chunk that does not start where the upload ends is refused.
    let gap = curl(&["-X", "PATCH", "-H", "Content-Range: 5-10", "--data-binary", "xxxxxx"], &ours.url(&location));
    assert_eq!(gap.status, 416);
    let status = curl(&[], &ours.url(&location));
    assert_eq!((status.status, status.header("range")), (204, "0-99999"));
    let done = curl(&["-X", "PUT", "--data-binary", &format!("@{}", b.display())], &ours.url(&format!("{location}?digest={d}")));
    assert_eq!((done.status, done.header("docker-content-digest")), (201, &*d));
    assert_eq!(curl(&[], &ours.url(&format!("/v2/up/load/blobs/{d}"))).body, bytes);
    assert_eq!(curl(&[], &ours.url(&location)).error_code(), "BLOB_UPLOAD_UNKNOWN", "a finished upload is gone");

    // A wrong digest: refused, nothing linked.
    let wrong = format!("sha256:{}", "1".repeat(64));
    let bad = curl(&["-X", "POST", "--data-binary", "hello"], &ours.url(&format!("/v2/up/load/blobs/uploads/?digest={wrong}")));
    assert_eq!((bad.status, bad.error_code()), (400, "DIGEST_INVALID".to_string()));
    assert_eq!(curl(&["-I"], &ours.url(&format!("/v2/up/load/blobs/{wrong}"))).status, 404);
    // Monolithic, then mounted into another repository; a mount from a repository that does
    // not link the blob starts an upload instead.
    let hello = format!("sha256:{}", sha256_hex(b"hello"));
    let mono = curl(&["-X", "POST", "--data-binary", "hello"], &ours.url(&format!("/v2/up/load/blobs/uploads/?digest={hello}")));
    assert_eq!(mono.status, 201);
    let mount = curl(&["-X", "POST"], &ours.url(&format!("/v2/else/where/blobs/uploads/?mount={hello}&from=up/load")));
    assert_eq!((mount.status, mount.header("location")), (201, &*format!("/v2/else/where/blobs/{hello}")));
    assert_eq!(curl(&[], &ours.url(&format!("/v2/else/where/blobs/{hello}"))).body, b"hello");
    let no_mount = curl(&["-X", "POST"], &ours.url(&format!("/v2/third/blobs/uploads/?mount={hello}&from=test/app")));
    assert_eq!(no_mount.status, 202);

    // A manifest naming a blob the repository lacks; one whose digest is not the URL's.
    let manifest = layout_bytes(&f.images, &digest(&f.images.app));
    let mfile = chunks.path().join("manifest");
    fs::write(&mfile, &manifest).unwrap();
    let put = |name: &str, reference: &str| {
        curl(
            &["-X", "PUT", "-H", &format!("Content-Type: {OCI_MANIFEST}"), "--data-binary", &format!("@{}", mfile.display())],
            &ours.url(&format!("/v2/{name}/manifests/{reference}")),
        )
    };
    let unknown = put("else/where", "v1");
    assert_eq!((unknown.status, unknown.error_code()), (400, "MANIFEST_BLOB_UNKNOWN".to_string()));
    let mismatch = put("test/app", &wrong);
    assert_eq!((mismatch.status, mismatch.error_code()), (400, "DIGEST_INVALID".to_string()));
    let ok = put("test/app", "v2");
    assert_eq!((ok.status, ok.header("docker-content-digest")), (201, &*digest(&f.images.app)));
    assert_eq!(raw_manifest(&ours.docker("test/app:v2")), manifest);
}

/// Runs the docker CLI; (success, stdout, stderr).
fn docker(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker").args(args).output().unwrap_or_else(|e| panic!("cannot run docker ({e}): run `sudo bash .ci/setup-docker`"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// Removes the test's container and images however the test ends.
struct DockerCleanup(Vec<String>);

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        for thing in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", thing]).output();
            let _ = Command::new("docker").args(["rmi", "-f", thing]).output();
        }
    }
}

#[test]
fn docker_engine_pulls_its_platform_of_an_index_and_pushes() {
    let (ok, _, err) = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(ok, "the Docker Engine does not answer ({err}): run `sudo bash .ci/setup-docker`");
    let f = fixture();
    let ours = Served::start(&f.storage, false);
    // The Engine takes 127.0.0.0/8 as an insecure registry: plain HTTP, as airlock serves it.
    let image = format!("{}/test/multi:v1", ours.host());
    let container = format!("airlock-serve-registry-{}", ours.port);
    let _cleanup = DockerCleanup(vec![container.clone(), image.clone()]);
    let (ok, out, err) = docker(&["pull", &image]);
    assert!(ok, "docker pull {image}: {out}\n{err}");
    let (_, digests, _) = docker(&["image", "inspect", "--format", "{{json .RepoDigests}}", &image]);
    assert!(digests.contains(&digest(&f.images.multi)), "the index digest is upstream's: {digests}");
    // Its platform's layer, unpacked by the Engine.
    let (ok, _, err) = docker(&["create", "--name", &container, &image, "/bin/true"]);
    assert!(ok, "{err}");
    let out = tempfile::tempdir().unwrap();
    let (ok, _, err) = docker(&["cp", &format!("{container}:/opt/arch"), &out.path().join("arch").to_string_lossy()]);
    assert!(ok, "{err}");
    let arch = if cfg!(target_arch = "aarch64") { "arm64\n" } else { "amd64\n" };
    assert_eq!(fs::read_to_string(out.path().join("arch")).unwrap(), arch);

    // Pushed by the Engine into a writable registry (chunked uploads without Content-Range),
    // then pulled from it by skopeo, blobs verifying.
    let storage = tempfile::tempdir().unwrap();
    let writable = Served::start(storage.path(), true);
    let pushed = format!("{}/pushed/multi:v1", writable.host());
    let _cleanup_pushed = DockerCleanup(vec![pushed.clone()]);
    assert!(docker(&["tag", &image, &pushed]).0);
    let (ok, out_text, err) = docker(&["push", &pushed]);
    assert!(ok, "docker push {pushed}: {out_text}\n{err}");
    let copied = out.path().join("copied");
    skopeo(&["copy", "--src-tls-verify=false", &writable.docker("pushed/multi:v1"), &format!("oci:{}:v1", copied.display())]);
    assert_eq!(verify_layout(&copied), 4, "manifest, config and two layers");
    let tags = curl(&[], &writable.url("/v2/pushed/multi/tags/list"));
    assert_eq!(tags.json(), json!({"name": "pushed/multi", "tags": ["v1"]}));
}

#[test]
fn the_router_merges_with_other_routes() {
    let f = fixture();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new().route("/other", axum::routing::get(|| async { "other" })).merge(registry_router(f.storage.clone(), false));
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    assert_eq!(curl(&[], &format!("http://127.0.0.1:{port}/other")).body, b"other");
    let tags = curl(&[], &format!("http://127.0.0.1:{port}/v2/test/app/tags/list"));
    assert_eq!(tags.json(), json!({"name": "test/app", "tags": ["v1"]}));
    assert_eq!(curl(&[], &format!("http://127.0.0.1:{port}/v2")).status, 200);
}

#[test]
fn docker_typed_images_of_a_cached_layout_are_served_as_upstream_serves_them() {
    use airlock_content::sources::fetch::{FetchOptions, Fetcher};
    use airlock_content::sources::oci::{self, ImageRef, OciOptions};
    let upstream = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    upstream.push(images.dir(), "multi", "test/docker-multi:v1", Some("v2s2"));
    upstream.push(images.dir(), "app", "test/docker-app:v1", Some("v2s2"));
    let names = ["test/docker-multi:v1", "test/docker-app:v1"];

    // The layout as image_cache writes it (index.json names the OCI-typed forms), imported.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let cfg = work.path().join("docker-config.json");
    fs::write(&cfg, "{}").unwrap();
    let fetcher = Fetcher::new(FetchOptions { retries: 1, ..Default::default() }).unwrap();
    let refs: Vec<ImageRef> = names.iter().map(|n| ImageRef::parse(&format!("{}/{n}", upstream.host())).unwrap()).collect();
    let pulled = oci::pull_all(&fetcher, &refs, &layout, &OciOptions { docker_config: Some(cfg), ..Default::default() }, &|_| {}).unwrap();
    assert!(pulled.iter().all(|p| p.layout_digest != p.digest), "both are named by an OCI-typed form");
    let storage = work.path().join("registry");
    import(&layout, &storage, None, &ImportOptions::default(), &mut |_| {}).unwrap();

    let ours = Served::start(&storage, false);
    let accept = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
    for (name, p) in names.iter().zip(&pulled) {
        let (repo, tag) = name.split_once(':').unwrap();
        let raw = upstream.raw_manifest(name);
        for reference in [tag, p.digest.as_str()] {
            for method in ["GET", "HEAD"] {
                let args: &[&str] = if method == "HEAD" { &["-I", "-H", accept] } else { &["-H", accept] };
                let a = curl(args, &ours.url(&format!("/v2/{repo}/manifests/{reference}")));
                assert_eq!(a.status, 200, "{method} {repo}:{reference}: {a:?}");
                assert_eq!(a.header("docker-content-digest"), p.digest, "{method} {repo}:{reference}");
                assert_eq!(a.header("content-type"), p.media_type, "{method} {repo}:{reference}");
                if method == "GET" {
                    assert_eq!(a.body, raw, "{repo}:{reference}: upstream's bytes");
                }
            }
        }
        // The OCI-typed form is not in the registry.
        let a = curl(&["-H", accept], &ours.url(&format!("/v2/{repo}/manifests/{}", p.layout_digest)));
        assert_eq!((a.status, a.error_code()), (404, "MANIFEST_UNKNOWN".to_string()), "{repo}@{}", p.layout_digest);
        // skopeo pulls it by upstream's digest, blobs verifying.
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("img");
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--override-os=linux",
            "--override-arch=amd64",
            &ours.docker(&format!("{repo}@{}", p.digest)),
            &format!("dir:{}", dir.display()),
        ]);
        let manifest: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json", "upstream's amd64 manifest");
        for d in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
            assert_eq!(sha256_hex(&fs::read(dir.join(&digest(d)[7..])).unwrap()), digest(d)[7..]);
        }
    }
}

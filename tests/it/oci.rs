//! The OCI registry client against a real registry (Debian's `docker-registry`) with images
//! pushed by `skopeo`, and the layout read back by `skopeo`. Needs `bash .ci/setup-registry`;
//! without it these tests fail, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_content::sources::fetch::{FetchOptions, Fetcher};
use airlock_content::sources::oci::{self, Credential, ImageRef, OciErrorKind, OciOptions, PulledImage};
use serde_json::{Value, json};

use crate::support::registry::{Images, Registry, digest, size, skopeo, skopeo_copy_to_dir};
use crate::support::{read_request, sha256_hex};

fn fetcher() -> Fetcher {
    Fetcher::new(FetchOptions { retries: 1, timeout: Duration::from_secs(30), backoff: Duration::from_millis(50), ..Default::default() }).unwrap()
}

/// Options that never read the machine's own Docker config.
fn opts(dir: &Path) -> OciOptions {
    let cfg = dir.join("docker-config.json");
    if !cfg.exists() {
        fs::write(&cfg, "{}").unwrap();
    }
    OciOptions { docker_config: Some(cfg), ..Default::default() }
}

fn pull(image: &str, layout: &Path, opts: &OciOptions) -> PulledImage {
    let counted = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        counted.fetch_add(n, Ordering::Relaxed);
    };
    let image = ImageRef::parse(image).unwrap();
    let p = oci::pull(&fetcher(), &image, layout, opts, &on_bytes).unwrap_or_else(|e| panic!("pull failed: {e}"));
    // Progress saw at least every blob byte that was newly stored (manifests are not reported).
    let manifest_bytes: u64 = p.blobs.iter().filter(|b| b.media_type.contains("manifest") || b.media_type.contains("index")).map(|b| b.size).sum();
    assert!(counted.load(Ordering::Relaxed) + manifest_bytes >= p.bytes_downloaded);
    p
}

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The index.json entry named `reference`.
fn entry(layout: &Path, reference: &str) -> Value {
    let idx = index_json(layout);
    let found: Vec<&Value> =
        idx["manifests"].as_array().unwrap().iter().filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference).collect();
    assert_eq!(found.len(), 1, "{reference} should be in index.json once: {idx:#}");
    found[0].clone()
}

fn blob_files(layout: &Path) -> BTreeSet<String> {
    fs::read_dir(layout.join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())).unwrap()
}

/// Every blob listed is in the layout with its digest and size.
#[track_caller]
fn assert_blobs_verified(p: &PulledImage) {
    for b in &p.blobs {
        let bytes = fs::read(&b.path).unwrap_or_else(|e| panic!("{}: {e}", b.path.display()));
        assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), b.digest, "{}", b.path.display());
        assert_eq!(bytes.len() as u64, b.size, "{}", b.path.display());
        assert!(b.path.ends_with(b.digest.strip_prefix("sha256:").unwrap()));
    }
    let digests: BTreeSet<&str> = p.blobs.iter().map(|b| b.digest.as_str()).collect();
    assert_eq!(digests.len(), p.blobs.len(), "blobs are listed once");
}

#[test]
fn single_images_byte_identical_deduplicated_and_resumed() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "app", "test/app:v1", None);
    // The same image converted to Docker schema 2 media types: same layers, other manifest.
    reg.push(images.dir(), "app", "test/docker-app:v1", Some("v2s2"));

    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let o = opts(work.path());
    let app_ref = format!("{}/test/app:v1", reg.host());
    let docker_ref = format!("{}/test/docker-app:v1", reg.host());

    let app = pull(&app_ref, &layout, &o);
    assert_eq!(app.reference, app_ref);
    assert_eq!(app.media_type, "application/vnd.oci.image.manifest.v1+json");
    let raw = reg.raw_manifest("test/app:v1");
    assert_eq!(blob(&layout, &app.digest), raw, "the manifest is stored byte for byte");
    assert_eq!(app.digest, format!("sha256:{}", sha256_hex(&raw)));
    assert_eq!(app.digest, digest(&images.app), "skopeo kept the pushed manifest");
    assert_eq!(blob(&layout, &app.blobs[1].digest), reg.raw_config("test/app:v1"), "the config is second and byte-identical");
    assert_eq!(app.blobs.len(), 4, "manifest, config and two layers: {:#?}", app.blobs);
    assert_blobs_verified(&app);
    let total: u64 = app.blobs.iter().map(|b| b.size).sum();
    assert_eq!(app.bytes_downloaded, total);

    // Docker media types: the layers are the same blobs, stored once.
    let docker = pull(&docker_ref, &layout, &o);
    assert_eq!(docker.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    let raw = reg.raw_manifest("test/docker-app:v1");
    assert_eq!(blob(&layout, &docker.digest), raw);
    assert_ne!(docker.digest, app.digest);
    assert_blobs_verified(&docker);
    let shared: u64 = docker.blobs.iter().filter(|b| app.blobs.iter().any(|a| a.digest == b.digest)).map(|b| b.size).sum();
    // skopeo's conversion keeps the config bytes too (only the media types change).
    assert_eq!(docker.blobs[1].digest, app.blobs[1].digest);
    assert_eq!(docker.blobs[1].media_type, "application/vnd.docker.container.image.v1+json");
    assert_eq!(shared, app.blobs[1].size + size(&images.base.desc) + size(&images.app_layer.desc), "config and layers are shared");
    assert_eq!(docker.bytes_downloaded, docker.blobs.iter().map(|b| b.size).sum::<u64>() - shared, "shared layers are not fetched again");
    let all: BTreeSet<String> = app.blobs.iter().chain(&docker.blobs).map(|b| b.digest[7..].to_string()).collect();
    assert_eq!(blob_files(&layout), all, "one file per distinct blob, nothing else");

    // The layout itself.
    assert_eq!(fs::read_to_string(layout.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let e = entry(&layout, &app_ref);
    assert_eq!(e["digest"], app.digest.as_str());
    assert_eq!(e["mediaType"], app.media_type.as_str());
    assert_eq!(e["size"].as_u64().unwrap(), app.blobs[0].size);
    assert_eq!(e["annotations"]["io.airlock.source"], format!("http://{}", reg.host()));
    assert!(e["annotations"].get("io.airlock.upstream.digest").is_none(), "an OCI image is named as upstream serves it: {e:#}");
    // The Docker-typed image is named by its OCI-typed form, upstream's manifest in the
    // annotations.
    assert_ne!(docker.layout_digest, docker.digest);
    let d = entry(&layout, &docker_ref);
    assert_eq!(d["digest"], docker.layout_digest.as_str());
    assert_eq!(d["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(d["size"].as_u64().unwrap(), blob(&layout, &docker.layout_digest).len() as u64);
    assert_eq!(d["annotations"]["io.airlock.upstream.digest"], docker.digest.as_str());
    assert_eq!(d["annotations"]["io.airlock.upstream.mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(d["annotations"]["io.airlock.upstream.size"], blob(&layout, &docker.digest).len().to_string());
    assert_eq!(docker.blobs.len(), 5, "manifest, config, two layers, and the OCI-typed manifest: {:#?}", docker.blobs);
    assert_eq!(docker.blobs[4].digest, docker.layout_digest);
    assert_eq!(docker.blobs[4].media_type, "application/vnd.oci.image.manifest.v1+json");
    // It names upstream's config and layers with OCI's media types.
    let upstream: Value = serde_json::from_slice(&blob(&layout, &docker.digest)).unwrap();
    let form: Value = serde_json::from_slice(&blob(&layout, &docker.layout_digest)).unwrap();
    assert_eq!(form["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(form["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(digest(&form["config"]), digest(&upstream["config"]));
    let layers = |m: &Value| m["layers"].as_array().unwrap().iter().map(|l| (digest(l), size(l))).collect::<Vec<_>>();
    assert_eq!(layers(&form), layers(&upstream));
    assert!(form["layers"].as_array().unwrap().iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{form:#}");

    // A second pull downloads nothing and keeps one entry per reference.
    let again = pull(&app_ref, &layout, &o);
    assert_eq!(again.bytes_downloaded, 0);
    assert!(!again.index_changed && app.index_changed);
    assert_eq!(again, PulledImage { bytes_downloaded: 0, index_changed: false, ..app.clone() });
    assert_eq!(index_json(&layout)["manifests"].as_array().unwrap().len(), 2);

    // A damaged layer is fetched again (and only it).
    let victim = &app.blobs[3];
    fs::write(&victim.path, b"truncated").unwrap();
    let resumed = pull(&app_ref, &layout, &o);
    assert_eq!(resumed.bytes_downloaded, victim.size);
    assert_blobs_verified(&resumed);

    // skopeo reads the layout by the full reference and copies the image back unchanged.
    let inspect: Value = serde_json::from_slice(&skopeo(&["inspect".to_string(), format!("oci:{}:{app_ref}", layout.display())])).unwrap();
    assert_eq!(inspect["Digest"], app.digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    skopeo(&["copy".to_string(), "--dest-tls-verify=false".into(), format!("oci:{}:{app_ref}", layout.display()), reg.docker("test/app-copy:v1")]);
    assert_eq!(reg.raw_manifest("test/app-copy:v1"), blob(&layout, &app.digest), "the OCI image round-trips");
    // The Docker-typed image by its name too (skopeo finds only OCI-typed entries by name):
    // its OCI-typed form, with upstream's config and layers.
    skopeo(&["copy".to_string(), "--dest-tls-verify=false".into(), format!("oci:{}:{docker_ref}", layout.display()), reg.docker("test/docker-app-copy:v1")]);
    assert_eq!(reg.raw_manifest("test/docker-app-copy:v1"), blob(&layout, &docker.layout_digest), "the Docker image copies as its OCI form");
    assert_eq!(reg.raw_config("test/docker-app-copy:v1"), reg.raw_config("test/docker-app:v1"), "with upstream's config");
}

#[test]
fn multi_arch_index_platform_selection_and_shared_layers() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "multi", "test/multi:v1", None);
    reg.push(images.dir(), "app", "test/app:v1", None);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let o = opts(work.path());
    let multi_ref = format!("{}/test/multi:v1", reg.host());

    // Default platforms: the index, the amd64 manifest, its config and layers.
    let p = pull(&multi_ref, &layout, &o);
    assert_eq!(p.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(blob(&layout, &p.digest), reg.raw_manifest("test/multi:v1"), "the index is stored byte for byte");
    assert_eq!(p.digest, digest(&images.multi));
    let amd64 = digest(&images.multi_amd64);
    let arm64 = digest(&images.multi_arm64);
    assert_eq!(blob(&layout, &amd64), reg.raw_manifest(&format!("test/multi@{amd64}")));
    let listed: Vec<&str> = p.blobs.iter().map(|b| b.digest.as_str()).collect();
    assert_eq!(listed.len(), 5, "index, manifest, config, two layers: {listed:?}");
    assert_eq!(listed[0], p.digest);
    assert_eq!(listed[1], amd64);
    for d in [&digest(&images.base.desc), &digest(&images.amd64_layer.desc)] {
        assert!(listed.contains(&d.as_str()));
    }
    assert_blobs_verified(&p);
    let files = blob_files(&layout);
    assert!(!files.contains(&arm64[7..]), "the arm64 manifest is not kept");
    assert!(!files.contains(&digest(&images.arm64_layer.desc)[7..]), "nor its layer");
    assert_eq!(files.len(), 5);

    // Another image sharing the base layer: only what is new is fetched.
    let app = pull(&format!("{}/test/app:v1", reg.host()), &layout, &o);
    let app_total: u64 = app.blobs.iter().map(|b| b.size).sum();
    assert_eq!(app.bytes_downloaded, app_total - size(&images.base.desc));
    assert_eq!(blob_files(&layout).len(), 5 + 3, "the base layer is stored once");

    // All platforms, into the same layout: the arm64 part is added, the entry replaced.
    let all = pull(&multi_ref, &layout, &OciOptions { platforms: vec!["all".into()], ..o.clone() });
    assert_eq!(all.digest, p.digest);
    assert_eq!(all.blobs.len(), 8, "index, 2 manifests, 2 configs, base + 2 arch layers");
    let arm64_new: u64 = all.blobs.iter().filter(|b| !p.blobs.contains(b)).map(|b| b.size).sum();
    assert_eq!(all.bytes_downloaded, arm64_new);
    assert!(arm64_new > size(&images.arm64_layer.desc));
    assert_blobs_verified(&all);
    assert_eq!(index_json(&layout)["manifests"].as_array().unwrap().len(), 2, "re-pulling replaces the entry");
    assert_eq!(entry(&layout, &multi_ref)["digest"], p.digest.as_str());

    // arm64 only, by variant-less name, in a fresh layout.
    let layout2 = work.path().join("arm");
    let arm = pull(&multi_ref, &layout2, &OciOptions { platforms: vec!["linux/arm64".into()], ..o.clone() });
    assert_eq!(arm.blobs[1].digest, arm64);
    assert!(!blob_files(&layout2).contains(&amd64[7..]));

    // A platform the image lacks: an error naming what it has.
    let e = oci::pull(&fetcher(), &ImageRef::parse(&multi_ref).unwrap(), &layout2, &OciOptions { platforms: vec!["linux/s390x".into()], ..o.clone() }, &|_| {})
        .unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Platform);
    let msg = e.to_string();
    for s in [multi_ref.as_str(), &format!("http://{}", reg.host()), "linux/s390x", "linux/amd64", "linux/arm64", "platforms"] {
        assert!(msg.contains(s), "{msg:?} lacks {s:?}");
    }

    // skopeo reads the layout back: the full index copies to the registry unchanged, and the
    // amd64-only layout yields the amd64 manifest.
    skopeo(&[
        "copy".to_string(),
        "--all".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:{multi_ref}", layout.display()),
        reg.docker("test/multi-copy:v1"),
    ]);
    assert_eq!(reg.raw_manifest("test/multi-copy:v1"), blob(&layout, &p.digest));
    let only_amd64 = work.path().join("amd64");
    pull(&multi_ref, &only_amd64, &o);
    skopeo(&[
        "copy".to_string(),
        "--override-os=linux".into(),
        "--override-arch=amd64".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:{multi_ref}", only_amd64.display()),
        reg.docker("test/multi-amd64:v1"),
    ]);
    assert_eq!(reg.raw_manifest("test/multi-amd64:v1"), blob(&layout, &amd64));
}

#[test]
fn pinned_digests_need_no_registry_once_stored() {
    let mut reg = Some(Registry::start());
    let r = reg.as_ref().unwrap();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    r.push(images.dir(), "app", "test/app:v1", None);
    r.push(images.dir(), "multi", "test/docker-multi:v1", Some("v2s2"));
    let host = r.host();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let o = OciOptions { concurrency: 1, ..opts(work.path()) };
    let pinned = format!("{host}/test/app@{}", digest(&images.app));
    let p = pull(&pinned, &layout, &o);
    assert_eq!(p.digest, digest(&images.app));
    assert_eq!(entry(&layout, &pinned)["digest"], p.digest.as_str());
    assert_blobs_verified(&p);
    // A Docker manifest list pinned by upstream's digest (the layout names its OCI-typed form).
    let list_digest = format!("sha256:{}", sha256_hex(&r.raw_manifest("test/docker-multi:v1")));
    let pinned_list = format!("{host}/test/docker-multi@{list_digest}");
    let list = pull(&pinned_list, &layout, &o);
    assert_eq!(list.digest, list_digest);
    assert_ne!(list.layout_digest, list_digest);
    assert_eq!(entry(&layout, &pinned_list)["annotations"]["io.airlock.upstream.digest"], list_digest.as_str());
    let index_before = fs::read(layout.join("index.json")).unwrap();
    let files_before = blob_files(&layout);

    // Missing tags and repositories: errors that name the image and the registry.
    let e = oci::pull(&fetcher(), &ImageRef::parse(&format!("{host}/test/app:nope")).unwrap(), &layout, &o, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{host}/test/app:nope")) && msg.contains(&format!("http://{host}")) && msg.contains("check the image name"), "{msg}");

    drop(reg.take());
    // With the registry gone, the pinned image is served from the layout.
    let again = pull(&pinned, &layout, &o);
    assert_eq!(again.bytes_downloaded, 0);
    assert_eq!(again.blobs, p.blobs);
    let again = pull(&pinned_list, &layout, &o);
    assert_eq!(again, PulledImage { bytes_downloaded: 0, index_changed: false, ..list });
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before, "index.json is not rewritten");
    assert_eq!(blob_files(&layout), files_before);
    // A tag needs the registry: the error says what to check.
    let e = oci::pull(&fetcher(), &ImageRef::parse(&format!("{host}/test/app:v1")).unwrap(), &layout, &o, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Network, "{e}");
    assert!(e.to_string().contains(&format!("http://{host}")) && e.to_string().contains("registry is running"), "{e}");
}

#[test]
fn basic_auth_with_explicit_and_docker_config_credentials() {
    let reg = Registry::start_with(Some(("alice", "s3cret-Pa55")));
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "multi", "private/multi:v1", None);
    let work = tempfile::tempdir().unwrap();
    let image = ImageRef::parse(&format!("{}/private/multi:v1", reg.host())).unwrap();
    let o = opts(work.path());

    // Anonymous: refused, saying what to do.
    let e = oci::pull(&fetcher(), &image, &work.path().join("a"), &o, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Auth);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("authentication required for {}", reg.host())) && msg.contains("docker_registry_credentials") && msg.contains("docker login"),
        "{msg}"
    );
    assert!(msg.contains(&format!("http://{}", reg.host())), "{msg}");

    // Wrong password: refused, and the password is nowhere in the message.
    let mut bad = o.clone();
    bad.credentials = BTreeMap::from([(reg.host(), Credential { username: "alice".into(), password: "wrong-Pa55word".into() })]);
    let e = oci::pull(&fetcher(), &image, &work.path().join("a"), &bad, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Auth);
    assert!(e.to_string().contains("not accepted") && !e.to_string().contains("wrong-Pa55word"), "{e}");
    assert!(!format!("{e:?} {bad:?}").contains("wrong-Pa55word"));

    // Explicit credentials (named with a scheme, as Docker's config may).
    let mut good = o.clone();
    good.credentials = BTreeMap::from([(format!("http://{}/", reg.host()), Credential { username: "alice".into(), password: "s3cret-Pa55".into() })]);
    let p = pull(&image.to_string(), &work.path().join("a"), &good);
    assert_eq!(blob(&work.path().join("a"), &p.digest), reg.raw_manifest("private/multi:v1"));
    assert_blobs_verified(&p);

    // The Docker config file's auths.<host>.auth.
    let cfg = work.path().join("config.json");
    let auth = base64_encode("alice:s3cret-Pa55");
    fs::write(&cfg, format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.host())).unwrap();
    let from_cfg = OciOptions { docker_config: Some(cfg), ..Default::default() };
    let p2 = pull(&image.to_string(), &work.path().join("b"), &from_cfg);
    assert_eq!(p2.digest, p.digest);
    assert_eq!(p2.bytes_downloaded, p.bytes_downloaded);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn docker_manifest_list_and_concurrent_pulls_into_one_layout() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "multi", "test/docker-multi:v1", Some("v2s2"));
    reg.push(images.dir(), "multi", "test/multi:v1", None);
    reg.push(images.dir(), "app", "test/app:v1", None);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let o = OciOptions { concurrency: 2, ..opts(work.path()) };
    let refs: Vec<String> = ["test/docker-multi:v1", "test/multi:v1", "test/app:v1"].iter().map(|n| format!("{}/{n}", reg.host())).collect();

    // Three pulls at once, sharing the base layer: each blob is written once, no entry is lost.
    let pulled: Vec<PulledImage> = std::thread::scope(|s| {
        let handles: Vec<_> = refs.iter().map(|r| s.spawn(|| pull(r, &layout, &o))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let list = &pulled[0];
    assert_eq!(list.media_type, "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(blob(&layout, &list.digest), reg.raw_manifest("test/docker-multi:v1"));
    assert_eq!(list.blobs[1].media_type, "application/vnd.docker.distribution.manifest.v2+json");
    let chosen: Value = serde_json::from_slice(&blob(&layout, &list.blobs[1].digest)).unwrap();
    let config: Value = serde_json::from_slice(&blob(&layout, chosen["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(list.blobs.len(), 7, "list, manifest, config, two layers, and the OCI-typed manifest and index: {:#?}", list.blobs);
    assert_eq!(list.layout_digest, list.blobs[6].digest);
    for p in &pulled {
        assert_blobs_verified(p);
        assert_eq!(entry(&layout, &p.reference)["digest"], p.layout_digest.as_str());
    }
    let idx = index_json(&layout);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 3);
    let all: BTreeSet<String> = pulled.iter().flat_map(|p| &p.blobs).map(|b| b.digest[7..].to_string()).collect();
    assert_eq!(blob_files(&layout), all, "one file per distinct blob, no temporary files left");
    let stored: u64 = all.iter().map(|h| fs::metadata(layout.join("blobs/sha256").join(h)).unwrap().len()).sum();
    assert_eq!(pulled.iter().map(|p| p.bytes_downloaded).sum::<u64>(), stored, "every byte stored was downloaded once");
}

/// A token server as Docker Hub, nvcr.io and quay.io run them: HTTP Basic credentials in,
/// a signed JWT out. Every query it is asked is recorded.
struct TokenServer {
    port: u16,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenServer {
    fn start(user: &str, password: &str, token: String) -> TokenServer {
        use base64::Engine;
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut BufReader::new(stream.try_clone().unwrap())) else { continue };
                let authorized = request.header("authorization") == Some(expected.as_str());
                log.lock().unwrap().push(request.line);
                let (status, body) =
                    if authorized { ("200 OK", format!(r#"{{"token": "{token}", "expires_in": 300}}"#)) } else { ("401 Unauthorized", "{}".to_string()) };
                let _ =
                    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        TokenServer { port, asked }
    }
}

/// A JWT as distribution's token auth wants it: RS256, the signing certificate in `x5c`, the
/// registry as audience, and the access granted. Signed with openssl.
fn registry_token(dir: &Path, service: &str, issuer: &str, repository: &str) -> (String, std::path::PathBuf) {
    use base64::Engine;
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key = dir.join("token.key");
    let cert = dir.join("token.pem");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "1",
        "-subj",
        "/CN=airlock-test-token",
    ]);
    let der = openssl(&["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"]);
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(der)]});
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "sub": "alice", "aud": service, "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "airlock-test",
        "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}],
    });
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signing = dir.join("signing-input");
    fs::write(&signing, &input).unwrap();
    let sig = openssl(&["dgst", "-sha256", "-sign", key.to_str().unwrap(), signing.to_str().unwrap()]);
    (format!("{input}.{}", b64url(&sig)), cert)
}

#[test]
fn bearer_token_auth_against_a_token_server() {
    let work = tempfile::tempdir().unwrap();
    let (service, issuer) = ("airlock-test-registry", "airlock-test-issuer");
    let (token, cert) = registry_token(work.path(), service, issuer, "private/app");
    let tokens = TokenServer::start("alice", "t0ken-Pa55", token);
    let reg = Registry::start_with_config(&format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
        tokens.port,
        cert.display()
    ));
    // skopeo goes through the same token flow to push.
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    skopeo(&[
        "copy".to_string(),
        "--dest-tls-verify=false".into(),
        "--dest-creds=alice:t0ken-Pa55".into(),
        format!("oci:{}:app", images.dir().display()),
        reg.docker("private/app:v1"),
    ]);
    let upstream =
        skopeo(&["inspect".to_string(), "--raw".into(), "--tls-verify=false".into(), "--creds=alice:t0ken-Pa55".into(), reg.docker("private/app:v1")]);
    let image = ImageRef::parse(&format!("{}/private/app:v1", reg.host())).unwrap();
    let o = opts(work.path());
    tokens.asked.lock().unwrap().clear();

    // Anonymous: the token server refuses, and the error says what to do.
    let e = oci::pull(&fetcher(), &image, &work.path().join("a"), &o, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("docker_registry_credentials"), "{e}");

    // Wrong password: refused by the token server, the password nowhere in the message.
    let mut bad = o.clone();
    bad.credentials = BTreeMap::from([(reg.host(), Credential { username: "alice".into(), password: "wrong-t0ken".into() })]);
    let e = oci::pull(&fetcher(), &image, &work.path().join("a"), &bad, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("refused the credentials") && !e.to_string().contains("wrong-t0ken"), "{e}");

    // The right credentials: a token for the repository's pull scope, then the image,
    // byte-identical.
    let mut good = o.clone();
    good.credentials = BTreeMap::from([(reg.host(), Credential { username: "alice".into(), password: "t0ken-Pa55".into() })]);
    let p = pull(&image.to_string(), &work.path().join("a"), &good);
    assert_eq!(blob(&work.path().join("a"), &p.digest), upstream);
    assert_blobs_verified(&p);
    let asked = tokens.asked.lock().unwrap().clone();
    let last = asked.last().expect("the token server was asked");
    assert!(
        last.starts_with("GET /token?") && last.contains(&format!("service={service}")) && last.contains("scope=repository%3Aprivate%2Fapp%3Apull"),
        "{asked:?}"
    );
    // One token serves the whole pull: manifests and every blob.
    assert!(asked.len() <= 3, "a token per request? {asked:?}");
}

#[test]
fn pull_all_fetches_shared_layers_once_and_names_the_images_that_arrived() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "app", "test/app:v1", None);
    reg.push(images.dir(), "multi", "test/multi:v1", None);
    let work = tempfile::tempdir().unwrap();
    let o = OciOptions { concurrency: 3, ..opts(work.path()) };
    let app = ImageRef::parse(&format!("{}/test/app:v1", reg.host())).unwrap();
    let multi = ImageRef::parse(&format!("{}/test/multi:v1", reg.host())).unwrap();
    let counted = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        counted.fetch_add(n, Ordering::Relaxed);
    };

    // Together, in the order given; the base layer both share is stored (and counted) once.
    let layout = work.path().join("images");
    let pulled = oci::pull_all(&fetcher(), &[app.clone(), multi.clone()], &layout, &o, &on_bytes).unwrap();
    let names: Vec<&str> = pulled.iter().map(|p| p.reference.as_str()).collect();
    assert_eq!(names, [app.to_string(), multi.to_string()]);
    let listed: Vec<String> = index_json(&layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, names);
    for p in &pulled {
        assert_blobs_verified(p);
        assert!(p.blobs.iter().any(|b| b.digest == digest(&images.base.desc)), "{} lists the shared base layer", p.reference);
    }
    let all: BTreeSet<String> = pulled.iter().flat_map(|p| &p.blobs).map(|b| b.digest[7..].to_string()).collect();
    assert_eq!(blob_files(&layout), all, "one file per distinct blob, no temporary files left");
    let stored: u64 = all.iter().map(|h| fs::metadata(layout.join("blobs/sha256").join(h)).unwrap().len()).sum();
    assert_eq!(pulled.iter().map(|p| p.bytes_downloaded).sum::<u64>(), stored, "every byte stored was downloaded once");
    // Progress saw every config and layer byte (manifests are not reported).
    let manifest_bytes: u64 =
        pulled.iter().flat_map(|p| &p.blobs).filter(|b| b.media_type.contains("manifest") || b.media_type.contains("index")).map(|b| b.size).sum();
    assert!(counted.load(Ordering::Relaxed) + manifest_bytes >= stored);

    // A missing image: its failure is returned before any layer is fetched, naming it.
    let missing = ImageRef::parse(&format!("{}/test/app:nope", reg.host())).unwrap();
    let fresh = work.path().join("fresh");
    let e = oci::pull_all(&fetcher(), &[app.clone(), missing.clone()], &fresh, &o, &|_| {}).unwrap_err();
    assert_eq!(e.kind, OciErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&missing.to_string()), "{e}");
    assert!(!fresh.join("index.json").exists() || index_json(&fresh)["manifests"].as_array().unwrap().is_empty());
    assert!(!blob_files(&fresh).contains(&digest(&images.app_layer.desc)[7..]), "no layer is fetched when a manifest fails");

    // A layer the registry lost: the image that needs it fails, naming it; the other is named.
    let lost = &digest(&images.amd64_layer.desc)[7..];
    let data = reg.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&lost[..2]).join(lost).join("data");
    fs::remove_file(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    let partial = work.path().join("partial");
    let e = oci::pull_all(&fetcher(), &[multi.clone(), app.clone()], &partial, &o, &|_| {}).unwrap_err();
    assert!(e.to_string().contains(&multi.to_string()) && e.to_string().contains(lost), "{e}");
    let listed: Vec<Value> = index_json(&partial)["manifests"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["annotations"]["org.opencontainers.image.ref.name"], app.to_string());
    assert!(!blob_files(&partial).iter().any(|f| f.ends_with(".part")), "no partial download is left");
}

#[test]
fn every_image_in_the_layout_reads_with_skopeo_whatever_media_types_upstream_used() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let mut images = Images::build(src.path());
    let (attested, [att_amd64, att_arm64]) = images.attested();
    reg.push_docker_hub_shapes(&images);
    assert_eq!(reg.raw_manifest("test/attested:v1"), blob(images.dir(), &digest(&attested)), "the index is pushed as built");

    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("images");
    let o = opts(work.path());
    let host = reg.host();
    let refs: Vec<ImageRef> =
        ["test/attested:v1", "test/docker-multi:v1", "test/docker-app:v1"].iter().map(|n| ImageRef::parse(&format!("{host}/{n}")).unwrap()).collect();
    let pulled = oci::pull_all(&fetcher(), &refs, &layout, &o, &|_| {}).unwrap();
    let (att, list, single) = (&pulled[0], &pulled[1], &pulled[2]);

    // The OCI index is named as upstream serves it, and only its amd64 manifest is held.
    assert_eq!(att.digest, digest(&attested));
    assert_eq!(att.layout_digest, att.digest);
    assert_eq!(entry(&layout, &att.reference)["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert!(!blob_files(&layout).contains(&digest(&att_amd64)[7..]), "attestations are not a platform wanted");
    // The Docker-typed ones are named by their OCI-typed forms, upstream's in the annotations.
    for (p, name, upstream_type, form_type) in [
        (list, "test/docker-multi:v1", "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json"),
        (single, "test/docker-app:v1", "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"),
    ] {
        assert_blobs_verified(p);
        let raw = reg.raw_manifest(name);
        assert_eq!(blob(&layout, &p.digest), raw, "{name}: upstream's bytes are kept");
        let e = entry(&layout, &p.reference);
        assert_eq!((e["mediaType"].as_str(), e["digest"].as_str()), (Some(form_type), Some(p.layout_digest.as_str())), "{e:#}");
        assert_eq!(e["size"].as_u64().unwrap(), blob(&layout, &p.layout_digest).len() as u64);
        assert_eq!(e["annotations"]["io.airlock.upstream.digest"], format!("sha256:{}", sha256_hex(&raw)));
        assert_eq!(e["annotations"]["io.airlock.upstream.mediaType"], upstream_type);
        assert_eq!(e["annotations"]["io.airlock.upstream.size"], raw.len().to_string());
        assert_eq!(e["annotations"]["org.opencontainers.image.ref.name"], format!("{host}/{name}"));
    }
    // The list's OCI index names the OCI form of the one platform held, with its platform.
    let form: Value = serde_json::from_slice(&blob(&layout, &list.layout_digest)).unwrap();
    let upstream: Value = serde_json::from_slice(&blob(&layout, &list.digest)).unwrap();
    assert_eq!(upstream["manifests"].as_array().unwrap().len(), 2);
    let held = form["manifests"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{form:#}");
    assert_eq!(held[0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(held[0]["platform"], json!({"architecture": "amd64", "os": "linux"}));
    let manifest: Value = serde_json::from_slice(&blob(&layout, &digest(&held[0]))).unwrap();
    let upstream_amd64: Value = serde_json::from_slice(&blob(&layout, &list.blobs[1].digest)).unwrap();
    assert_eq!(digest(&manifest["config"]), digest(&upstream_amd64["config"]));
    let layers = |m: &Value| m["layers"].as_array().unwrap().iter().map(digest).collect::<Vec<_>>();
    assert_eq!(layers(&manifest), layers(&upstream_amd64));
    let all: BTreeSet<String> = pulled.iter().flat_map(|p| &p.blobs).map(|b| b.digest[7..].to_string()).collect();
    assert_eq!(blob_files(&layout), all, "every file is listed as a blob of an image");

    // skopeo copies and inspects every image by its name.
    let arch_layers = vec![digest(&images.base.desc), digest(&images.amd64_layer.desc)];
    let app_layers = vec![digest(&images.base.desc), digest(&images.app_layer.desc)];
    for (p, amd64_layers) in [(att, &arch_layers), (list, &arch_layers), (single, &app_layers)] {
        let name = format!("oci:{}:{}", layout.display(), p.reference);
        let copied: Value = serde_json::from_slice(&skopeo_copy_to_dir(&name, &["--override-os=linux", "--override-arch=amd64"])).unwrap();
        assert_eq!(&copied["layers"].as_array().unwrap().iter().map(digest).collect::<Vec<_>>(), amd64_layers, "{}", p.reference);
        let inspect: Value = serde_json::from_slice(&skopeo(&["inspect", "--override-arch", "amd64", &name])).unwrap();
        assert_eq!(inspect["Architecture"], "amd64", "{inspect:#}");
        assert_eq!(&inspect["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect::<Vec<_>>(), amd64_layers);
    }

    // A rerun changes nothing: no download, no new file, index.json as it was; check mode
    // agrees.
    let index_before = fs::read(layout.join("index.json")).unwrap();
    let again = oci::pull_all(&fetcher(), &refs, &layout, &o, &|_| {}).unwrap();
    for (a, p) in again.iter().zip(&pulled) {
        assert_eq!(a, &PulledImage { bytes_downloaded: 0, index_changed: false, ..p.clone() });
    }
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    assert_eq!(blob_files(&layout), all);
    for (r, p) in refs.iter().zip(&pulled) {
        let plan = oci::plan(&fetcher(), r, &layout, &o).unwrap();
        assert_eq!((plan.layout_digest.as_str(), plan.missing.len()), (p.layout_digest.as_str(), 0), "{}", p.reference);
    }
    // A layout an earlier airlock wrote (entries naming upstream's Docker-typed manifests)
    // gets the entries naming the OCI-typed forms.
    let mut old: Value = serde_json::from_slice(&index_before).unwrap();
    for e in old["manifests"].as_array_mut().unwrap() {
        let a = e["annotations"].as_object_mut().unwrap();
        if let Some(d) = a.remove("io.airlock.upstream.digest") {
            let media_type = a.remove("io.airlock.upstream.mediaType").unwrap();
            let size: u64 = a.remove("io.airlock.upstream.size").unwrap().as_str().unwrap().parse().unwrap();
            e["mediaType"] = media_type;
            e["size"] = json!(size);
            e["digest"] = d;
        }
    }
    fs::write(layout.join("index.json"), serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let migrated = oci::pull_all(&fetcher(), &refs, &layout, &o, &|_| {}).unwrap();
    assert_eq!(migrated.iter().map(|p| p.index_changed).collect::<Vec<_>>(), [false, true, true]);
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);

    // Every platform, attestations included, into another layout: skopeo still picks amd64.
    let every = work.path().join("every");
    let all_platforms = OciOptions { platforms: vec!["all".into()], ..o.clone() };
    let pulled = oci::pull_all(&fetcher(), &refs, &every, &all_platforms, &|_| {}).unwrap();
    assert!(blob_files(&every).contains(&digest(&att_arm64)[7..]), "attestations are kept with all");
    let form: Value = serde_json::from_slice(&blob(&every, &pulled[1].layout_digest)).unwrap();
    assert_eq!(form["manifests"].as_array().unwrap().len(), 2, "both platforms of the list: {form:#}");
    for p in &pulled {
        let name = format!("oci:{}:{}", every.display(), p.reference);
        let inspect: Value = serde_json::from_slice(&skopeo(&["inspect", "--override-arch", "amd64", &name])).unwrap();
        assert_eq!(inspect["Architecture"], "amd64", "{inspect:#}");
        skopeo_copy_to_dir(&name, &["--override-os=linux", "--override-arch=arm64"]);
    }
}

//! `registry_import` end to end: images pushed by skopeo to a real registry (A) are pulled into
//! an OCI layout as the cache does, written by the module straight into a fresh storage
//! directory, and served from there by a second real registry (B) to skopeo, byte for byte.
//! Needs `bash .ci/setup-registry`; without it these tests fail, saying so.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_content::sources::fetch::{FetchOptions, Fetcher};
use airlock_content::sources::oci::{self, ImageRef, OciOptions};
use serde_json::{Value, json};

use crate::support::registry::{Images, Registry, digest, skopeo, skopeo_copy_to_dir, try_skopeo};
use crate::support::{Project, Run, sha256_hex, tree as files};

/// Registry A with the fixture's images: `test/app:v1` (one OCI manifest), `test/multi:v1`
/// (an OCI index, amd64 + arm64) and `test/docker-multi:v1` (the same as a Docker manifest
/// list).
struct Upstream {
    reg: Registry,
    images: Images,
    _src: tempfile::TempDir,
}

fn upstream() -> Upstream {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let images = Images::build(src.path());
    reg.push(images.dir(), "app", "test/app:v1", None);
    reg.push(images.dir(), "multi", "test/multi:v1", None);
    reg.push(images.dir(), "multi", "test/docker-multi:v1", Some("v2s2"));
    Upstream { reg, images, _src: src }
}

/// Pulls `names` (every platform) from `reg` into the layout `layout`, as `image_cache` does.
fn pull(reg: &Registry, names: &[&str], layout: &Path) {
    let fetcher =
        Fetcher::new(FetchOptions { retries: 1, timeout: Duration::from_secs(30), backoff: Duration::from_millis(50), ..Default::default() }).unwrap();
    fs::create_dir_all(layout).unwrap();
    let cfg = layout.with_extension("docker-config.json");
    fs::write(&cfg, "{}").unwrap();
    let opts = OciOptions { platforms: vec!["all".into()], docker_config: Some(cfg), ..Default::default() };
    for n in names {
        let image = ImageRef::parse(&format!("{}/{n}", reg.host())).unwrap();
        oci::pull(&fetcher, &image, layout, &opts, &|_| {}).unwrap_or_else(|e| panic!("pull {n}: {e}"));
    }
}

/// Adds an `index.json` entry naming `digest` (already in the layout) `name`.
fn name_in_layout(layout: &Path, name: &str, digest: &str) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let list = index["manifests"].as_array_mut().unwrap();
    let mut entry = list.iter().find(|m| m["digest"] == digest).unwrap_or_else(|| panic!("{digest} is not in {}", path.display())).clone();
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    list.push(entry);
    fs::write(&path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

fn layout_blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

/// The digest of the config of the manifest `digest` in the layout.
fn config_of(layout: &Path, digest: &str) -> String {
    let m: Value = serde_json::from_slice(&fs::read(layout_blob(layout, digest)).unwrap()).unwrap();
    m["config"]["digest"].as_str().unwrap().to_string()
}

/// The lines the import task printed (between its TASK header and the next one).
fn import_task(run: &Run) -> String {
    let mut lines = run.stdout.lines().skip_while(|l| !l.starts_with("TASK [import the cached images"));
    let header = lines.next().unwrap_or_else(|| panic!("the import task did not run:\n{}", run.stdout));
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("TASK [") && !l.starts_with("PLAY RECAP")).collect();
    format!("{header}\n{}", body.join("\n"))
}

fn v2(storage: &Path) -> PathBuf {
    storage.join("docker/registry/v2")
}

fn data(storage: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    v2(storage).join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
}

/// Runs `registry_import` in a playbook (`extra` adds arguments, indented 8) and returns the
/// run and the registered result, kept even in check mode.
fn import(p: &Project, layout: &Path, storage: &Path, extra: &str, flags: &[&str]) -> (Run, Value) {
    let result = p.path("result.json");
    let _ = fs::remove_file(&result);
    p.file(
        "import.yml",
        &format!(
            r#"- hosts: localhost
  gather_facts: false
  tasks:
    - name: import the cached images into the registry storage
      registry_import:
        layout: "{}"
        storage: "{}"
{extra}
      register: r
    - name: keep the result
      copy:
        content: "{{{{ r | to_json }}}}"
        dest: "{}"
      check_mode: false
"#,
            layout.display(),
            storage.display(),
            result.display()
        ),
    );
    let run = p.playbook("import.yml", flags);
    let value = fs::read(&result).map(|b| serde_json::from_slice(&b).unwrap()).unwrap_or(Value::Null);
    (run, value)
}

/// Every entry under `dir` (directories too) with its inode, mtime and size.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, i64, i64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::metadata(&d).unwrap();
        out.insert(d.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        if m.is_dir() {
            stack.extend(fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// `skopeo inspect`'s digest of an image.
fn inspect_digest(reg: &Registry, name: &str) -> String {
    let v: Value = serde_json::from_slice(&skopeo(&["inspect".to_string(), "--tls-verify=false".into(), reg.docker(name)])).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn imported_images_are_served_byte_identical_and_laid_out_as_a_push_would() {
    let up = upstream();
    let reg = &up.reg;
    let p = Project::new();
    let layout = p.path("cache/docker-images");
    pull(reg, &["test/app:v1", "test/multi:v1", "test/docker-multi:v1"], &layout);
    let app = digest(&up.images.app);
    // A Docker Hub official image (the layout names it as the cache would) and an image
    // pinned by digest only.
    name_in_layout(&layout, "docker.io/library/registry:2.8.3", &app);
    reg.push(up.images.dir(), "app", "test/pinned:v1", None);
    pull(reg, &[&format!("test/pinned@{app}")], &layout);

    let storage = p.path("registry");
    let (run, r) = import(&p, &layout, &storage, "", &[]);
    run.success().has("changed: [localhost]");
    assert_eq!(r["changed"], true);
    assert_eq!(r["blobs_copied"], 0, "{r:#}");
    let host = reg.host();
    let listed: Vec<(String, String, Value)> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["reference"].as_str().unwrap().to_string(), i["repository"].as_str().unwrap().to_string(), i["tag"].clone()))
        .collect();
    for want in [
        (format!("{host}/test/app:v1"), "test/app", json!("v1")),
        (format!("{host}/test/multi:v1"), "test/multi", json!("v1")),
        (format!("{host}/test/docker-multi:v1"), "test/docker-multi", json!("v1")),
        ("docker.io/library/registry:2.8.3".to_string(), "registry", json!("2.8.3")),
        ("docker.io/library/registry:2.8.3".to_string(), "library/registry", json!("2.8.3")),
        (format!("{host}/test/pinned@{app}"), "test/pinned", Value::Null),
    ] {
        assert!(listed.contains(&(want.0.clone(), want.1.to_string(), want.2.clone())), "{want:?} not in {listed:#?}");
    }
    assert_eq!(listed.len(), 6);

    // The link files are exactly those a push into a real registry wrote (registry A's own
    // storage), and each holds `sha256:<hex>` without a newline.
    for repo in ["test/app", "test/multi", "test/docker-multi"] {
        let ours = files(&v2(&storage).join("repositories").join(repo));
        let pushed = files(&v2(&reg.storage()).join("repositories").join(repo));
        assert!(ours.len() >= 5, "{repo}: {ours:?}");
        assert_eq!(ours.keys().collect::<Vec<_>>(), pushed.keys().collect::<Vec<_>>(), "{repo}: the same link files as a push");
        assert_eq!(ours, pushed, "{repo}: the same link contents as a push");
        for (path, content) in &ours {
            let text = std::str::from_utf8(content).unwrap();
            assert!(text.len() == 71 && text.starts_with("sha256:") && !text.ends_with('\n'), "{repo}/{path}: {text:?}");
            if !path.ends_with("current/link") {
                assert_eq!(&text[7..], path.rsplit('/').nth(1).unwrap(), "{repo}/{path} names its own digest");
            }
        }
    }
    let multi_links = files(&v2(&storage).join("repositories/test/multi"));
    for d in [digest(&up.images.multi), digest(&up.images.multi_amd64), digest(&up.images.multi_arm64)] {
        assert!(multi_links.contains_key(&format!("_manifests/revisions/sha256/{}/link", &d[7..])), "the index and both platforms' manifests have revisions");
    }
    assert_eq!(multi_links[&"_manifests/tags/v1/current/link".to_string()], digest(&up.images.multi).into_bytes());
    assert!(!v2(&storage).join("repositories/test/pinned/_manifests/tags").exists(), "an image by digest only gets no tag");
    // Blobs: what the push stored, as hard links to the layout's files.
    let blobs = files(&v2(&storage).join("blobs"));
    let pushed_blobs = files(&v2(&reg.storage()).join("blobs"));
    for (path, bytes) in &blobs {
        assert_eq!(pushed_blobs.get(path), Some(bytes), "blob {path} as the push stored it");
        let hex = path.rsplit('/').nth(1).unwrap();
        let (ours, theirs) = (fs::metadata(v2(&storage).join("blobs").join(path)).unwrap(), fs::metadata(layout.join("blobs/sha256").join(hex)).unwrap());
        assert_eq!((ours.dev(), ours.ino()), (theirs.dev(), theirs.ino()), "blob {hex} is a hard link to the layout's file");
    }
    assert_eq!(r["blobs_linked"].as_u64().unwrap() as usize, blobs.len());
    assert!(fs::read_dir(&storage).unwrap().all(|e| e.unwrap().file_name() == "docker"), "no staging directory is left");

    // Registry B serves the storage: manifests byte-identical, digests upstream's, every
    // platform copies with blobs that verify.
    let b = Registry::serve_storage(&storage);
    for name in ["test/app:v1", "test/multi:v1", "test/docker-multi:v1"] {
        assert_eq!(b.raw_manifest(name), reg.raw_manifest(name), "{name} byte-identical");
        assert_eq!(inspect_digest(&b, name), inspect_digest(reg, name), "{name} digest");
    }
    assert_eq!(skopeo_copy_to_dir(&b.docker("test/app:v1"), &[]), reg.raw_manifest("test/app:v1"));
    for name in ["test/multi", "test/docker-multi"] {
        let index: Value = serde_json::from_slice(&reg.raw_manifest(&format!("{name}:v1"))).unwrap();
        for m in index["manifests"].as_array().unwrap() {
            let arch = m["platform"]["architecture"].as_str().unwrap();
            let got = skopeo_copy_to_dir(&b.docker(&format!("{name}:v1")), &["--override-os=linux", &format!("--override-arch={arch}")]);
            assert_eq!(got, reg.raw_manifest(&format!("{name}@{}", digest(m))), "{name} {arch}");
        }
    }
    // Docker Hub's official image under DeepOps's name and under library/ (what Docker's
    // registry-mirrors and containerd's mirrors ask for).
    for name in ["registry:2.8.3", "library/registry:2.8.3"] {
        assert_eq!(b.raw_manifest(name), reg.raw_manifest("test/app:v1"), "{name}");
        skopeo_copy_to_dir(&b.docker(name), &[]);
    }
    // By digest only: served by digest, no tag.
    assert_eq!(b.raw_manifest(&format!("test/pinned@{app}")), reg.raw_manifest("test/app:v1"));
    let e = try_skopeo(&["inspect".to_string(), "--raw".into(), "--tls-verify=false".into(), b.docker("test/pinned:v1")]).unwrap_err();
    assert!(e.contains("manifest unknown"), "{e}");
}

#[test]
fn a_rerun_writes_nothing_and_a_lost_link_is_restored() {
    let up = upstream();
    let p = Project::new();
    let layout = p.path("cache/docker-images");
    pull(&up.reg, &["test/app:v1", "test/multi:v1", "test/docker-multi:v1"], &layout);
    let storage = p.path("registry");
    import(&p, &layout, &storage, "", &[]).0.success();
    let before = snapshot(&storage);

    let (run, r) = import(&p, &layout, &storage, "", &[]);
    run.success();
    assert!(import_task(&run).contains("ok: [localhost]"), "{}", run.stdout);
    assert_eq!(r["changed"], false);
    assert_eq!((r["blobs_linked"].as_u64(), r["blobs_copied"].as_u64(), r["links_written"].as_u64()), (Some(0), Some(0), Some(0)));
    assert!(r["blobs_present"].as_u64().unwrap() > 0);
    assert!(r["msg"].as_str().unwrap().contains("already in"), "{r:#}");
    assert_eq!(snapshot(&storage), before, "no file or directory was touched");
    // Without verification too.
    import(&p, &layout, &storage, "        verify: false", &[]).0.success();
    assert_eq!(snapshot(&storage), before);

    // A tag link lost: the rerun writes it, and only it.
    let tag = v2(&storage).join("repositories/test/app/_manifests/tags/v1/current/link");
    fs::remove_file(&tag).unwrap();
    let (run, r) = import(&p, &layout, &storage, "", &[]);
    run.success().has("changed: [localhost]");
    assert_eq!(r["links_written"], 1, "{r:#}");
    assert_eq!(fs::read(&tag).unwrap(), digest(&up.images.app).into_bytes());
}

#[test]
fn a_damaged_blob_fails_naming_image_and_digest_and_nothing_of_that_image_is_written() {
    let up = upstream();
    let p = Project::new();
    let layout = p.path("cache/docker-images");
    pull(&up.reg, &["test/app:v1", "test/multi:v1"], &layout);
    let layer = digest(&up.images.app_layer.desc);
    let path = layout_blob(&layout, &layer);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let storage = p.path("registry");
    let host = up.reg.host();
    // The good image first (a DeepOps entry), then the damaged one.
    let images = format!("        images:\n          - {{repo: \"{host}/\", image: test/multi, version: v1}}\n          - \"{host}/test/app:v1\"");
    let (run, _) = import(&p, &layout, &storage, &images, &[]);
    run.code(2).has(&format!("{host}/test/app:v1")).has(&layer).has("nothing of").has("extract the offline archive again");
    let app_repo = v2(&storage).join("repositories/test/app");
    assert!(!app_repo.exists(), "no link of the damaged image: {:?}", files(&app_repo).keys());
    for d in [digest(&up.images.app), config_of(&layout, &digest(&up.images.app)), layer.clone()] {
        assert!(!data(&storage, &d).exists(), "no blob of the damaged image: {d}");
    }
    assert!(fs::read_dir(&storage).unwrap().all(|e| e.unwrap().file_name() == "docker"), "no staging directory is left");
    // The image before it was imported whole.
    let b = Registry::serve_storage(&storage);
    assert_eq!(b.raw_manifest("test/multi:v1"), up.reg.raw_manifest("test/multi:v1"));

    // Repaired, the image imports.
    bytes[middle] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    import(&p, &layout, &storage, &images, &[]).0.success();
    assert_eq!(skopeo_copy_to_dir(&b.docker("test/app:v1"), &[]), up.reg.raw_manifest("test/app:v1"));
}

#[test]
fn blobs_on_another_filesystem_are_copied_and_verified() {
    let up = upstream();
    let p = Project::new();
    let layout = p.path("cache/docker-images");
    pull(&up.reg, &["test/app:v1", "test/multi:v1"], &layout);
    // /dev/shm is a tmpfs on Linux: another filesystem than the project's.
    let shm = tempfile::tempdir_in("/dev/shm").expect("this test needs /dev/shm (a tmpfs) for a second filesystem");
    assert_ne!(
        fs::metadata(shm.path()).unwrap().dev(),
        fs::metadata(&layout).unwrap().dev(),
        "this test needs /dev/shm on another filesystem than {}",
        layout.display()
    );
    let storage = shm.path().join("registry");

    // A flipped byte is caught while copying.
    let config = config_of(&layout, &digest(&up.images.app));
    let cpath = layout_blob(&layout, &config);
    let good = fs::read(&cpath).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 0x20;
    fs::write(&cpath, &bad).unwrap();
    let (run, _) = import(&p, &layout, &storage, &format!("        images: [\"{}/test/app:v1\"]", up.reg.host()), &[]);
    run.code(2).has(&config).has(&format!("{}/test/app:v1", up.reg.host()));
    assert!(!v2(&storage).join("repositories/test/app").exists());
    assert!(!data(&storage, &config).exists());
    fs::write(&cpath, &good).unwrap();

    let (run, r) = import(&p, &layout, &storage, "", &[]);
    run.success();
    assert_eq!(r["blobs_linked"], 0, "{r:#}");
    let blobs = files(&v2(&storage).join("blobs"));
    assert_eq!(r["blobs_copied"].as_u64().unwrap() as usize, blobs.len());
    assert_eq!(r["bytes_copied"].as_u64().unwrap(), blobs.values().map(|b| b.len() as u64).sum::<u64>());
    for (path, bytes) in &blobs {
        let hex = path.rsplit('/').nth(1).unwrap();
        assert_eq!(sha256_hex(bytes), hex, "{path}");
        let mode = fs::metadata(v2(&storage).join("blobs").join(path)).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o444, 0o444, "{path} is readable by the registry (mode {mode:o})");
    }
    let b = Registry::serve_storage(&storage);
    assert_eq!(skopeo_copy_to_dir(&b.docker("test/app:v1"), &[]), up.reg.raw_manifest("test/app:v1"));
    assert_eq!(b.raw_manifest("test/multi:v1"), up.reg.raw_manifest("test/multi:v1"));

    // The rerun verifies the copies and rewrites nothing.
    let before = snapshot(&storage);
    let (run, r) = import(&p, &layout, &storage, "", &[]);
    run.success();
    assert_eq!(r["changed"], false, "{r:#}");
    assert_eq!(snapshot(&storage), before);
}

#[test]
fn images_imported_while_the_registry_runs_are_served_at_once() {
    let up = upstream();
    let p = Project::new();
    let layout = p.path("cache/docker-images");
    pull(&up.reg, &["test/app:v1", "test/multi:v1"], &layout);
    let storage = p.path("registry");
    fs::create_dir_all(&storage).unwrap();
    let b = Registry::serve_storage(&storage);
    let host = up.reg.host();

    let e = try_skopeo(&["inspect".to_string(), "--raw".into(), "--tls-verify=false".into(), b.docker("test/multi:v1")]).unwrap_err();
    assert!(e.contains("manifest unknown") || e.contains("name unknown"), "{e}");
    import(&p, &layout, &storage, &format!("        images: [\"{host}/test/app:v1\"]"), &[]).0.success();
    assert_eq!(skopeo_copy_to_dir(&b.docker("test/app:v1"), &[]), up.reg.raw_manifest("test/app:v1"));
    // The multi-arch image, asked for already, as a DeepOps docker_image_list entry.
    let (run, r) =
        import(&p, &layout, &storage, &format!("        images:\n          - {{name: multi, repo: \"{host}/\", image: test/multi, version: v1}}"), &[]);
    run.success().has("changed: [localhost]");
    assert_eq!(
        r["images"],
        json!([{"reference": format!("{host}/test/multi:v1"), "repository": "test/multi", "tag": "v1", "digest": digest(&up.images.multi), "media_type": "application/vnd.oci.image.index.v1+json", "changed": true}])
    );
    assert_eq!(b.raw_manifest("test/multi:v1"), up.reg.raw_manifest("test/multi:v1"));
    let arm64 = skopeo_copy_to_dir(&b.docker("test/multi:v1"), &["--override-os=linux", "--override-arch=arm64"]);
    assert_eq!(arm64, up.reg.raw_manifest(&format!("test/multi@{}", digest(&up.images.multi_arm64))));
}

#[test]
fn check_mode_missing_images_and_conflicting_names() {
    let src = tempfile::tempdir().unwrap();
    let mut images = Images::build(src.path());
    let (app, multi) = (images.app.clone(), images.multi.clone());
    images.layout.tag("quay.io/team/app:1.0", &app);
    images.layout.tag("nvcr.io/nvidia/multi:2", &multi);
    let layout = images.dir().to_path_buf();
    let p = Project::new();
    let storage = p.path("registry");

    // Check mode: what would be written, and nothing is.
    let sel = "        images: [\"quay.io/team/app:1.0\", \"nvcr.io/nvidia/multi:2\"]";
    let (run, r) = import(&p, &layout, &storage, sel, &["--check"]);
    run.success().has("changed: [localhost]");
    assert_eq!(r["changed"], true);
    // The app: manifest, config, two layers; the index adds itself, two manifests, two
    // configs and the arch layers (the base layer is shared).
    assert_eq!(r["blobs_linked"], 4 + 7, "{r:#}");
    assert!(r["msg"].as_str().unwrap().contains("would be imported"), "{r:#}");
    assert_eq!(r["images"].as_array().unwrap().len(), 2);
    assert!(!storage.exists(), "check mode writes nothing");

    // An image the layout lacks: the error lists what it holds.
    let (run, _) = import(&p, &layout, &storage, "        images: [\"nvcr.io/nvidia/cuda:12.4.1-base\"]", &[]);
    run.code(2).has("nvcr.io/nvidia/cuda:12.4.1-base is not in the OCI layout").has("quay.io/team/app:1.0").has("nvcr.io/nvidia/multi:2");
    assert!(!storage.exists());

    // Two images wanting one repository:tag: an error naming both, and nothing written.
    images.layout.tag("docker.io/team/app:1.0", &multi);
    let (run, _) = import(&p, &layout, &storage, "", &[]);
    run.code(2).has("quay.io/team/app:1.0").has("docker.io/team/app:1.0").has("team/app:1.0 in the registry");
    assert!(!storage.exists());
    // The same content under two names is no conflict.
    images.layout.tag("ghcr.io/team/app:1.0", &app);
    let (run, r) = import(&p, &layout, &storage, "        images: [\"quay.io/team/app:1.0\", \"ghcr.io/team/app:1.0\"]", &[]);
    run.success();
    assert_eq!(r["images"].as_array().unwrap().len(), 2);
}

/// A GET of a manifest as Docker and containerd send it (every manifest type accepted):
/// the body, `Docker-Content-Digest` and `Content-Type`.
fn get_manifest(host: &str, name: &str, reference: &str) -> (Vec<u8>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let accept = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
    let url = format!("http://{host}/v2/{name}/manifests/{reference}");
    let out = std::process::Command::new("curl").args(["-sS", "-f", "-H", accept, "-D"]).arg(&head).arg("-o").arg(&body).arg(&url).output().expect("curl runs");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    let head = fs::read_to_string(&head).unwrap();
    let header = |n: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(n))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("{url}: no {n} in {head}"))
    };
    (fs::read(&body).unwrap(), header("docker-content-digest"), header("content-type"))
}

#[test]
fn docker_media_types_cached_archived_and_imported_keep_upstreams_bytes() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let mut images = Images::build(src.path());
    images.attested();
    reg.push_docker_hub_shapes(&images);
    let host = reg.host();
    let names = ["test/attested:v1", "test/docker-multi:v1", "test/docker-app:v1"];

    // image_cache in a playbook, then the archive, as build-offline-cache does.
    let p = Project::new();
    let list: Vec<String> = names.iter().map(|n| format!("          - \"{host}/{n}\"")).collect();
    p.file(
        "cache.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: cache the images\n      image_cache:\n        images:\n{}\n        dest: \"{{{{ playbook_dir }}}}/cache/docker-images\"\n        docker_config: \"{{{{ playbook_dir }}}}/docker-config.json\"\n      register: c\n    - copy:\n        content: \"{{{{ c | to_json }}}}\"\n        dest: \"{{{{ playbook_dir }}}}/cached.json\"\n      check_mode: false\n",
            list.join("\n")
        ),
    );
    p.file("docker-config.json", "{}");
    let run = p.playbook("cache.yml", &[]);
    run.success();
    let cached: Value = serde_json::from_str(&p.read("cached.json")).unwrap();
    let layout = p.path("cache/docker-images");
    let index_before = fs::read(layout.join("index.json")).unwrap();
    let files_before = files(&layout);
    let upstream: Vec<(String, String)> = names.iter().map(|n| (n.to_string(), format!("sha256:{}", sha256_hex(&reg.raw_manifest(n))))).collect();
    for (i, (name, d)) in upstream.iter().enumerate() {
        let img = &cached["images"][i];
        assert_eq!(img["reference"], format!("{host}/{name}"));
        assert_eq!(img["digest"], d.as_str(), "{name}: the digest reported is upstream's");
        // The OCI index is named as it is; the Docker-typed images by their OCI-typed forms.
        assert_eq!(img["layout_digest"] == img["digest"], i == 0, "{img:#}");
    }
    // The fragment lists every file of the layout, the OCI-typed forms among them, so the
    // archive carries them.
    let fragment: Vec<Value> = serde_json::from_str(&p.read("cache/.airlock/manifest.d/images-docker-images.json")).unwrap();
    let listed: BTreeMap<String, String> =
        fragment.iter().map(|a| (a["path"].as_str().unwrap().to_string(), a["sha256"].as_str().unwrap().to_string())).collect();
    let on_disk: BTreeMap<String, String> = files(&layout).into_iter().map(|(path, bytes)| (format!("docker-images/{path}"), sha256_hex(&bytes))).collect();
    assert_eq!(listed, on_disk);
    for img in cached["images"].as_array().unwrap() {
        let form = format!("docker-images/blobs/sha256/{}", &img["layout_digest"].as_str().unwrap()[7..]);
        assert!(listed.contains_key(&form), "{form} is listed");
    }

    // A rerun changes nothing, and check mode agrees (the task after it writes its result).
    let cache_task = |run: &Run| {
        let mut lines = run.stdout.lines().skip_while(|l| !l.starts_with("TASK [cache the images"));
        lines.nth(1).unwrap_or_else(|| panic!("the cache task did not run:\n{}", run.stdout)).to_string()
    };
    assert_eq!(cache_task(&run), "changed: [localhost]");
    let again = p.playbook("cache.yml", &[]);
    assert_eq!(cache_task(again.success()), "ok: [localhost]", "{}", again.stdout);
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    assert_eq!(files(&layout), files_before, "the layout is as it was");
    let check = p.playbook("cache.yml", &["--check"]);
    assert_eq!(cache_task(check.success()), "ok: [localhost]", "{}", check.stdout);

    // Archived, unpacked on the "offline" side, and imported into a registry's storage.
    p.file(
        "carry.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - offline_archive:\n        cache_dir: cache\n        dest: cache.tar\n    - offline_extract:\n        src: cache.tar\n        dest: offline\n",
    );
    p.playbook("carry.yml", &[]).success();
    let extracted = p.path("offline/docker-images");
    assert_eq!(files(&extracted), files(&layout), "the archive carries the whole layout");
    let storage = p.path("registry");
    let (run, r) = import(&p, &extracted, &storage, "", &[]);
    run.success();
    for (i, img) in r["images"].as_array().unwrap().iter().enumerate() {
        assert_eq!(img["digest"], upstream[i].1.as_str(), "{img:#}");
        let form = cached["images"][i]["layout_digest"].as_str().unwrap();
        assert_eq!(data(&storage, form).exists(), i == 0, "only upstream's manifests go to the registry: {form}");
    }

    // A registry serving the storage gives upstream's bytes and digests, by tag and by digest.
    let b = Registry::serve_storage(&storage);
    for (name, d) in &upstream {
        let (repo, tag) = name.split_once(':').unwrap();
        let raw = reg.raw_manifest(name);
        let media_type = serde_json::from_slice::<Value>(&raw).unwrap()["mediaType"].as_str().unwrap().to_string();
        for reference in [tag, d.as_str()] {
            let (body, digest_header, content_type) = get_manifest(&b.host(), repo, reference);
            assert_eq!(body, raw, "{repo}:{reference}");
            assert_eq!((digest_header.as_str(), content_type.as_str()), (d.as_str(), media_type.as_str()), "{repo}:{reference}");
        }
        let pulled = skopeo_copy_to_dir(&b.docker(&format!("{repo}@{d}")), &["--override-os=linux", "--override-arch=amd64"]);
        let m: Value = serde_json::from_slice(&pulled).unwrap();
        assert!(m["config"].is_object(), "{repo}: the amd64 image: {m:#}");
    }
    // And skopeo reads every image of the unpacked layout by its name.
    for (name, _) in &upstream {
        skopeo_copy_to_dir(&format!("oci:{}:{host}/{name}", extracted.display()), &["--override-os=linux", "--override-arch=amd64"]);
    }
}

//! The `image_cache` module: container images into one OCI image layout, over the registry
//! API (no Docker daemon), for the offline archive.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::utils::offline_cache::{self, rel};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::oci::{self, Credential, ImageRef, OciOptions};

const ALLOWED: &[&str] = &[
    "images",
    "dest",
    "cache_dir",
    "platforms",
    "insecure_registries",
    "credentials",
    "docker_config",
    "concurrency",
    "timeout",
    "retries",
    "validate_certs",
    "ca_path",
    "host_ca_paths",
    "docker_certs_dir",
];

/// One `images` entry: a reference string, or DeepOps's `{name, repo, image, version}`.
pub(super) fn image_ref(v: &Value) -> Result<ImageRef, ModuleFail> {
    match v {
        Value::String(s) => ImageRef::parse(s).map_err(|e| ModuleFail::new(e.to_string())),
        Value::Object(m) => {
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            if m.contains_key("image") {
                ImageRef::from_deepops(&s("repo"), &s("image"), &s("version")).map_err(|e| ModuleFail::new(e.to_string()))
            } else {
                Err(ModuleFail::new(format!("an images entry needs 'image' (with 'repo' and 'version'), got {v}")))
            }
        }
        other => Err(ModuleFail::new(format!("an images entry must be a reference string or a mapping, got {other}"))),
    }
}

/// Where Docker looks for a registry's CA certificates: `<dir>/<host[:port]>/*.crt`.
const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The CA certificates Docker would trust for the images' registries (`*.crt` under
/// `<certs_dir>/<registry>/`, as the Docker daemon reads them), for registries that
/// `host_ca_paths` does not name already.
fn docker_certs(certs_dir: &std::path::Path, refs: &[ImageRef], given: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for r in refs {
        let host = &r.registry;
        if given.iter().chain(&out).any(|(h, _)| h.eq_ignore_ascii_case(host)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(certs_dir.join(host)) else { continue };
        let mut crts: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
        crts.sort();
        out.extend(crts.into_iter().map(|p| (host.clone(), p)));
    }
    out
}

/// Runs `image_cache`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "image_cache", ALLOWED)?;
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let root = offline_cache::cache_root(a, &dest)?;
    let mut refs: Vec<ImageRef> = Vec::new();
    match a.get("images") {
        Some(Value::Array(items)) => {
            for i in items {
                let r = image_ref(i)?;
                if !refs.contains(&r) {
                    refs.push(r);
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => return Err(ModuleFail::new(format!("images must be a list of references or {{repo, image, version}} entries, got {other}"))),
    }
    let mut opts = OciOptions::default();
    if let Some(p) = args::opt_list(a, "platforms")? {
        opts.platforms = p;
    }
    opts.insecure_registries = args::opt_list(a, "insecure_registries")?.unwrap_or_default();
    opts.concurrency = offline_cache::concurrency(a)?;
    opts.docker_config = args::opt_str(a, "docker_config")?.map(PathBuf::from);
    if let Some(Value::Object(creds)) = a.get("credentials") {
        let mut m = BTreeMap::new();
        for (host, c) in creds {
            let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            m.insert(host.clone(), Credential { username: get("username"), password: get("password") });
        }
        opts.credentials = m;
    }
    let mut fetch = offline_cache::fetch_options(a)?;
    let certs_dir = PathBuf::from(args::opt_str(a, "docker_certs_dir")?.unwrap_or_else(|| DOCKER_CERTS_DIR.into()));
    fetch.host_ca_paths.extend(docker_certs(&certs_dir, &refs, &fetch.host_ca_paths));
    let fetcher = airlock_content::sources::fetch::Fetcher::new(fetch).map_err(|e| ModuleFail::new(e.to_string()))?;
    if ctx.check_mode {
        return plan(&fetcher, &refs, &dest, &opts);
    }
    let pb = offline_cache::bytes_bar(ctx, "images");
    let total = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        total.fetch_add(n, Ordering::Relaxed);
        pb.inc(n);
    };
    let mut artifacts = Vec::new();
    let mut pulled = Vec::new();
    let mut changed = false;
    pb.set_message(format!("{} image(s)", refs.len()));
    let images = oci::pull_all(&fetcher, &refs, &dest, &opts, &on_bytes).map_err(|e| ModuleFail::new(e.to_string()))?;
    for img in &images {
        for b in &img.blobs {
            artifacts.push(Artifact {
                kind: "blob".into(),
                path: rel(&root, &b.path)?,
                size: b.size,
                sha256: b.digest.trim_start_matches("sha256:").to_string(),
                source: img.reference.clone(),
                name: None,
                version: None,
            });
        }
        changed |= img.index_changed || img.bytes_downloaded > 0;
        pulled.push(json!({"reference": img.reference, "digest": img.digest, "media_type": img.media_type, "layout_digest": img.layout_digest, "blobs": img.blobs.len(), "bytes_downloaded": img.bytes_downloaded}));
    }
    pb.finish_and_clear();
    // Images no longer asked for leave the index (their blobs are not recorded for the archive).
    let keep: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
    let dropped = oci::prune_index(&dest, &keep).map_err(|e| ModuleFail::new(e.to_string()))?;
    changed |= !dropped.is_empty();
    // The layout's own files, as they are after every pull.
    for f in ["oci-layout", "index.json"] {
        let p = dest.join(f);
        if p.is_file() {
            let rp = rel(&root, &p)?;
            let a = Artifact::from_file(&root, &rp, "image", "oci layout").map_err(|e| ModuleFail::new(e.to_string()))?;
            artifacts.push(a);
        }
    }
    offline_cache::write_fragment(&root, &format!("images-{}", rel(&root, &dest)?), &artifacts)?;
    let downloaded = total.load(Ordering::Relaxed);
    Ok(ModuleResult::changed(changed || downloaded > 0)
        .with("images", Value::Array(pulled))
        .with("dropped", json!(dropped))
        .with("bytes_downloaded", downloaded)
        .with("dest", dest.display().to_string()))
}

/// Check mode: reads every image's manifests and reports what a pull would download, each
/// shared blob counted once, writing nothing.
fn plan(fetcher: &airlock_content::sources::fetch::Fetcher, refs: &[ImageRef], dest: &std::path::Path, opts: &OciOptions) -> ModuleOutcome {
    let plans = airlock_content::sources::fetch::parallel(refs.iter().collect(), opts.concurrency.max(1), |r| oci::plan(fetcher, r, dest, opts));
    let mut missing: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    let mut out = Vec::new();
    for p in plans {
        let p = p.map_err(|e| ModuleFail::new(e.to_string()))?;
        let image_missing: u64 = p.missing.iter().map(|(_, n)| n).sum();
        out.push(
            json!({"reference": p.reference, "digest": p.digest, "layout_digest": p.layout_digest, "total_size": p.total_size, "download_size": image_missing}),
        );
        total += p.total_size;
        missing.extend(p.missing);
    }
    let download: u64 = missing.values().sum();
    // The layout's index names every image once it is pulled, so an image not named there
    // (or named with another digest: an older form) is a change even when its blobs are all
    // present.
    let indexed = std::fs::read(dest.join("index.json")).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let named = |reference: &str, digest: &str| {
        indexed.as_ref().and_then(|i| i.get("manifests")).and_then(Value::as_array).is_some_and(|m| {
            m.iter().any(|e| {
                e.get("digest").and_then(Value::as_str) == Some(digest)
                    && e.get("annotations").and_then(|a| a.get(oci::ANNOTATION_REF_NAME)).and_then(Value::as_str) == Some(reference)
            })
        })
    };
    let changed = !missing.is_empty() || out.iter().any(|o| !named(o["reference"].as_str().unwrap_or(""), o["layout_digest"].as_str().unwrap_or("")));
    Ok(ModuleResult::changed(changed).with("images", Value::Array(out)).with("total_size", total).with("download_size", download).with_msg(format!(
        "{} image(s), {} to download",
        refs.len(),
        airlock_content::archive::human_size(download)
    )))
}

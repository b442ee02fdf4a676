//! The `yum_sync` module: what `dnf reposync --download-metadata` does, natively, for each of
//! DeepOps's `yum_repos`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::utils::offline_cache::{self, rel};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::yum::{self, YumRepo};

const ALLOWED: &[&str] = &["repos", "dest", "cache_dir", "concurrency", "timeout", "retries", "validate_certs", "ca_path", "host_ca_paths"];

fn repos(a: &Args) -> Result<Vec<YumRepo>, ModuleFail> {
    offline_cache::list_of_maps(a, "repos")?
        .into_iter()
        .map(|m| {
            let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            let name = s("name").ok_or_else(|| ModuleFail::new(format!("a repos entry needs 'name': {}", Value::Object(m.clone()))))?;
            let baseurl = s("baseurl").ok_or_else(|| ModuleFail::new(format!("repo '{name}' needs 'baseurl'")))?;
            let newest_only = m.get("newest_only").map(|v| airlock_jinja::to_bool_strict(v).unwrap_or(false)).unwrap_or(false);
            Ok(YumRepo { name, baseurl, gpgkey: s("gpgkey"), newest_only })
        })
        .collect()
}

/// One repository's line of `msg`: `cuda: 9 packages, 4 module streams`.
fn summary(repo: &str, packages: usize, streams: usize) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!("{repo}: {}, {}", plural(packages, "package"), plural(streams, "module stream"))
}

/// Runs `yum_sync`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "yum_sync", ALLOWED)?;
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let root = offline_cache::cache_root(a, &dest)?;
    let repos = repos(a)?;
    let fetcher = offline_cache::fetcher(a)?;
    let conc = offline_cache::concurrency(a)?;
    if ctx.check_mode {
        let mut out = Vec::new();
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut changes = false;
        for r in &repos {
            let p = yum::plan(&fetcher, r, &dest, conc).map_err(|e| ModuleFail::new(e.to_string()))?;
            bytes += p.download_size;
            changes |= p.changes();
            out.push(json!({"repo": r.name, "packages": p.packages, "module_streams": p.module_streams, "total_size": p.total_size, "download_size": p.download_size}));
            lines.push(summary(&r.name, p.packages, p.module_streams));
        }
        let msg = format!("{} to download; {}", airlock_content::archive::human_size(bytes), lines.join("; "));
        return Ok(ModuleResult::changed(changes).with("repos", Value::Array(out)).with("download_size", bytes).with_msg(msg));
    }
    let pb = offline_cache::bytes_bar(ctx, "yum");
    let total = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        total.fetch_add(n, Ordering::Relaxed);
        pb.inc(n);
    };
    let mut artifacts = Vec::new();
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut changed = false;
    for r in &repos {
        pb.set_message(r.name.clone());
        let s = yum::sync(&fetcher, r, &dest, conc, &on_bytes).map_err(|e| ModuleFail::new(e.to_string()))?;
        changed |= s.bytes_downloaded > 0 || !s.removed.is_empty();
        for f in &s.files {
            let kind = match f.kind.as_str() {
                "rpm" => "rpm",
                "repodata" => "repodata",
                _ => "file",
            };
            artifacts.push(Artifact {
                kind: kind.into(),
                path: rel(&root, &dest.join(&f.path))?,
                size: f.size,
                sha256: f.sha256.clone(),
                source: f.url.clone(),
                name: None,
                version: None,
            });
        }
        out.push(
            json!({"repo": r.name, "packages": s.packages, "module_streams": s.module_streams, "files": s.files.len(), "bytes_downloaded": s.bytes_downloaded}),
        );
        lines.push(summary(&r.name, s.packages, s.module_streams));
    }
    pb.finish_and_clear();
    offline_cache::write_fragment(&root, &format!("yum-{}", rel(&root, &dest)?), &artifacts)?;
    Ok(ModuleResult::changed(changed).with("repos", Value::Array(out)).with("bytes_downloaded", total.load(Ordering::Relaxed)).with_msg(lines.join("; ")))
}

//! The `helm_sync` module: Helm chart repositories for the offline ChartMuseum.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::utils::offline_cache::{self, rel};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::helm::{self, HelmRepo};

const ALLOWED: &[&str] = &["repos", "dest", "cache_dir", "concurrency", "timeout", "retries", "validate_certs", "ca_path", "host_ca_paths"];

/// Runs `helm_sync`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "helm_sync", ALLOWED)?;
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let root = offline_cache::cache_root(a, &dest)?;
    // YAML reads an unquoted 1.10 as the number 1.1: refuse numbers rather than guess.
    if let Some(Value::Array(entries)) = a.get("repos") {
        for e in entries {
            if let Some(n) = e.get("versions").and_then(Value::as_array).and_then(|vs| vs.iter().find(|v| v.is_number())) {
                let repo = e.get("name").and_then(Value::as_str).unwrap_or("?");
                return Err(ModuleFail::new(format!(
                    "repos: versions of '{repo}' must be strings: quote {n} (\"{n}\"), YAML reads an unquoted version as a number"
                )));
            }
        }
    }
    let repos: Vec<HelmRepo> = match a.get("repos") {
        Some(v @ Value::Array(_)) => {
            serde_json::from_value(v.clone()).map_err(|e| ModuleFail::new(format!("repos: each entry needs name and url (charts, versions optional): {e}")))?
        }
        _ => return Err(ModuleFail::new("repos must be a list of {name, url, charts, versions}")),
    };
    let fetcher = offline_cache::fetcher(a)?;
    if ctx.check_mode {
        let mut planned = Vec::new();
        for r in &repos {
            let p = helm::plan(&fetcher, r, &dest).map_err(|e| ModuleFail::new(e.to_string()))?;
            planned.push(json!({"repo": r.name, "charts": p.to_download().count()}));
        }
        let n: u64 = planned.iter().filter_map(|p| p["charts"].as_u64()).sum();
        return Ok(ModuleResult::changed(n > 0)
            .with("repos", Value::Array(planned))
            .with_msg(format!("{n} chart(s) would be downloaded (Helm indexes record no sizes)")));
    }
    let pb = offline_cache::bytes_bar(ctx, "helm charts");
    let total = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        total.fetch_add(n, Ordering::Relaxed);
        pb.inc(n);
    };
    let conc = offline_cache::concurrency(a)?;
    let mut artifacts = Vec::new();
    let mut changed = false;
    let mut out = Vec::new();
    for r in &repos {
        let s = helm::sync(&fetcher, r, &dest, conc, &on_bytes).map_err(|e| ModuleFail::new(e.to_string()))?;
        changed |= s.changed();
        for c in &s.charts {
            let p = dest.join(&c.path);
            artifacts.push(Artifact {
                kind: "chart".into(),
                path: rel(&root, &p)?,
                size: c.size,
                sha256: c.sha256.clone(),
                source: c.url.clone(),
                name: Some(c.name.clone()),
                version: Some(c.version.clone()),
            });
        }
        for f in ["index.yaml", "index.upstream.yaml"] {
            let p = dest.join(&r.name).join(f);
            if p.is_file() {
                artifacts.push(Artifact::from_file(&root, &rel(&root, &p)?, "file", &r.url).map_err(|e| ModuleFail::new(e.to_string()))?);
            }
        }
        out.push(json!({"repo": r.name, "charts": s.charts.len(), "bytes_downloaded": s.bytes_downloaded, "warnings": s.warnings}));
    }
    pb.finish_and_clear();
    offline_cache::write_fragment(&root, &format!("helm-{}", rel(&root, &dest)?), &artifacts)?;
    Ok(ModuleResult::changed(changed).with("repos", Value::Array(out)).with("bytes_downloaded", total.load(Ordering::Relaxed)))
}

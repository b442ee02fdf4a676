//! The `offline_archive` module: one archive of the offline cache, with a manifest of every
//! artifact the download modules recorded, written only when complete.

use std::path::PathBuf;

use serde_json::json;

use super::utils::offline_cache;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Manifest;
use airlock_content::archive::write::{WriteOptions, write_archive};

const ALLOWED: &[&str] = &["cache_dir", "dest", "force"];

/// Runs `offline_archive`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "offline_archive", ALLOWED)?;
    let root = PathBuf::from(args::req_str(a, "cache_dir")?);
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let artifacts = offline_cache::read_fragments(&root)?;
    if artifacts.is_empty() && ctx.check_mode {
        // In check mode the downloads before this task recorded nothing.
        return Ok(ModuleResult::changed(true)
            .with("dest", dest.display().to_string())
            .with_msg(format!("would write {} from what the downloads bring", dest.display())));
    }
    if artifacts.is_empty() {
        return Err(ModuleFail::new(format!("nothing recorded in {}: run the download tasks first", root.join(offline_cache::FRAGMENTS).display())));
    }
    let bytes: u64 = artifacts.iter().map(|a| a.size).sum();
    let manifest = Manifest::new(artifacts);
    // The same manifest as the archive already holds: nothing to do.
    let same = dest.is_file()
        && !args::bool_or(a, "force", false)?
        && airlock_content::archive::read::inspect_archive(&dest).is_ok_and(|r| sorted(r.manifest.artifacts) == sorted(manifest.artifacts.clone()));
    if same {
        return Ok(ModuleResult::changed(false).with("dest", dest.display().to_string()).with("artifacts", manifest.artifacts.len()));
    }
    if ctx.check_mode {
        return Ok(ModuleResult::changed(true)
            .with("dest", dest.display().to_string())
            .with("artifacts", manifest.artifacts.len())
            .with("bytes", bytes)
            .with_msg(format!("would write {} artifacts ({})", manifest.artifacts.len(), airlock_content::archive::human_size(bytes))));
    }
    let pb = ctx.progress.bar(bytes, "archive", true);
    let progress = |p: airlock_content::archive::Progress| pb.set_position(p.bytes_done);
    let report =
        write_archive(&root, &manifest, &dest, WriteOptions { progress: Some(&progress), ..Default::default() }).map_err(|e| ModuleFail::new(e.to_string()))?;
    pb.finish_and_clear();
    Ok(ModuleResult::changed(true)
        .with("dest", report.path.display().to_string())
        .with("artifacts", report.artifacts)
        .with("bytes", report.bytes)
        .with("archive_bytes", report.archive_bytes)
        .with(
            "kinds",
            json!(manifest.artifacts.iter().fold(std::collections::BTreeMap::<String, u64>::new(), |mut m, a| {
                *m.entry(a.kind.clone()).or_default() += 1;
                m
            })),
        ))
}

fn sorted(mut v: Vec<airlock_content::archive::manifest::Artifact>) -> Vec<airlock_content::archive::manifest::Artifact> {
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

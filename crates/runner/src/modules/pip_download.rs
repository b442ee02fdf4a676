//! The `pip_download` module: Python packages and their dependencies for the offline hosts'
//! Python and platforms, resolved by pip, recorded with exact versions and sha256.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::utils::offline_cache::{self, rel};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::pypi::{self, PipTarget};

const ALLOWED: &[&str] = &[
    "requirements",
    "index_url",
    "extra_index_urls",
    "python_version",
    "platforms",
    "implementation",
    "abi",
    "dest",
    "cache_dir",
    "python",
    "ca_path",
    "host_ca_paths",
    "timeout",
    "retries",
];

/// Runs `pip_download`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "pip_download", ALLOWED)?;
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let root = offline_cache::cache_root(a, &dest)?;
    let reqs = args::opt_list(a, "requirements")?.unwrap_or_default();
    let index = args::opt_str(a, "index_url")?.unwrap_or_else(|| "https://pypi.org/simple".into());
    let extra = args::opt_list(a, "extra_index_urls")?.unwrap_or_default();
    let target = PipTarget {
        python_version: args::opt_str(a, "python_version")?,
        platforms: args::opt_list(a, "platforms")?.unwrap_or_default(),
        implementation: args::opt_str(a, "implementation")?,
        abi: args::opt_str(a, "abi")?,
    };
    if ctx.check_mode {
        return Ok(ModuleResult::changed(!reqs.is_empty())
            .with("requirements", json!(reqs))
            .with_msg("pip would resolve and download these (sizes are known only after resolving)"));
    }
    let python = args::opt_str(a, "python")?;
    // The same parsing as the other download modules'.
    let fetch = offline_cache::fetch_options(a)?;
    let net = pypi::PipNet {
        ca_path: fetch.ca_path,
        more_cas: fetch.host_ca_paths.into_iter().map(|(_, p)| p).collect(),
        timeout: args::opt_int(a, "timeout")?.map(|t| t.max(1) as u64),
        retries: args::opt_int(a, "retries")?.map(|r| r.max(0) as u32),
    };
    let got = pypi::download_with(&reqs, &index, &extra, &target, &dest, python.as_deref().map(Path::new), pypi::Mode::Auto, &net)
        .map_err(|e| ModuleFail::new(e.to_string()))?;
    let mut artifacts = Vec::new();
    for f in &got.files {
        artifacts.push(Artifact {
            kind: "python".into(),
            path: rel(&root, &dest.join(&f.filename))?,
            size: f.size,
            sha256: f.sha256.clone(),
            source: f.url.clone().unwrap_or_else(|| index.clone()),
            name: Some(f.name.clone()),
            version: Some(f.version.clone()),
        });
    }
    offline_cache::write_fragment(&root, &format!("pip-{}", rel(&root, &dest)?), &artifacts)?;
    let files: Vec<_> = got.files.iter().map(|f| json!({"name": f.name, "version": f.version, "filename": f.filename, "sha256": f.sha256})).collect();
    Ok(ModuleResult::changed(got.downloaded).with("packages", json!(files)))
}

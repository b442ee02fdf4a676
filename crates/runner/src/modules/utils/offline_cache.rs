//! What the offline-cache modules share: where the cache root is, the manifest fragments each
//! module leaves for `offline_archive`, and the download client they all use.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{atomic_write, expand_user};
use crate::modules::{Args, ModuleContext, ModuleFail, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::fetch::{FetchOptions, Fetcher};

/// The folder under the cache root that holds manifest fragments (not archived itself).
pub const FRAGMENTS: &str = ".airlock/manifest.d";

/// The cache root: `cache_dir` when given, else the parent of `dest`.
pub fn cache_root(a: &Args, dest: &Path) -> Result<PathBuf, ModuleFail> {
    Ok(match args::opt_str(a, "cache_dir")? {
        Some(c) => PathBuf::from(c),
        None => dest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
    })
}

/// A path relative to the cache root with `/` separators, as the manifest records it.
pub fn rel(root: &Path, p: &Path) -> Result<String, ModuleFail> {
    let r = p.strip_prefix(root).map_err(|_| ModuleFail::new(format!("{} is not under the cache directory {}", p.display(), root.display())))?;
    Ok(r.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/"))
}

/// Writes one module's fragment of the manifest atomically (`<root>/.airlock/manifest.d/<key>.json`).
pub fn write_fragment(root: &Path, key: &str, artifacts: &[Artifact]) -> Result<(), ModuleFail> {
    let dir = root.join(FRAGMENTS);
    std::fs::create_dir_all(&dir).map_err(|e| ModuleFail::new(format!("{}: {e}", dir.display())))?;
    let safe: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    // Sources are URLs; a password in one must not reach the archive's manifest.
    let masked: Vec<Artifact> = artifacts.iter().map(|a| Artifact { source: airlock_base::http::mask_url(&a.source), ..a.clone() }).collect();
    let data = serde_json::to_vec_pretty(&masked).map_err(|e| ModuleFail::new(e.to_string()))?;
    // atomic_write's temporary files (`.<name>.*.airlock-tmp`) that a killed run left here go
    // first; fragments themselves never start with a dot.
    let (_lock, _) = airlock_base::staging::DirLock::acquire(&dir, ".").map_err(|e| ModuleFail::new(format!("{}: {e}", dir.display())))?;
    atomic_write(&dir.join(format!("{safe}.json")), &data)
}

/// Every fragment under a cache root, later files winning for the same path.
pub fn read_fragments(root: &Path) -> Result<Vec<Artifact>, ModuleFail> {
    let dir = root.join(FRAGMENTS);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect(),
        Err(_) => return Ok(vec![]),
    };
    files.sort();
    let mut by_path: indexmap::IndexMap<String, Artifact> = indexmap::IndexMap::new();
    for f in files {
        let text = std::fs::read(&f).map_err(|e| ModuleFail::new(format!("{}: {e}", f.display())))?;
        let list: Vec<Artifact> = serde_json::from_slice(&text).map_err(|e| ModuleFail::new(format!("{}: {e}", f.display())))?;
        for a in list {
            by_path.insert(a.path.clone(), a);
        }
    }
    Ok(by_path.into_values().collect())
}

/// The download client's options from the arguments: `timeout`, `retries`,
/// `validate_certs`, `ca_path` (CA certificates trusted for every host) and `host_ca_paths`
/// (a mapping of `host` or `host:port` to CA certificates trusted for that host).
pub fn fetch_options(a: &Args) -> Result<FetchOptions, ModuleFail> {
    let mut opts = FetchOptions::default();
    if let Some(t) = args::opt_int(a, "timeout")? {
        opts.timeout = std::time::Duration::from_secs(t.max(1) as u64);
    }
    opts.validate_certs = args::bool_or(a, "validate_certs", true)?;
    if let Some(r) = args::opt_int(a, "retries")? {
        opts.retries = r.max(0) as u32;
    }
    let path = |s: &str| PathBuf::from(expand_user(s));
    opts.ca_path = args::opt_str(a, "ca_path")?.filter(|s| !s.is_empty()).map(|s| path(&s));
    match a.get("host_ca_paths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (host, p) in m {
                match p {
                    Value::String(s) if !s.is_empty() => opts.host_ca_paths.push((host.clone(), path(s))),
                    other => return Err(ModuleFail::new(format!("host_ca_paths: the CA file for {host} must be a path, got {other}"))),
                }
            }
        }
        Some(other) => {
            return Err(ModuleFail::new(format!("host_ca_paths must be a mapping of host (or host:port) to a CA file, got {}", args::type_name(other))));
        }
    }
    Ok(opts)
}

/// The download client of [`fetch_options`].
pub fn fetcher(a: &Args) -> Result<Fetcher, ModuleFail> {
    Fetcher::new(fetch_options(a)?).map_err(|e| ModuleFail::new(e.to_string()))
}

/// `concurrency` (default 8).
pub fn concurrency(a: &Args) -> Result<usize, ModuleFail> {
    Ok(args::opt_int(a, "concurrency")?.unwrap_or(8).clamp(1, 64) as usize)
}

/// A byte-counting progress bar for a module's downloads.
pub fn bytes_bar(ctx: &ModuleContext, msg: &str) -> indicatif::ProgressBar {
    let pb = ctx.progress.bar(0, msg, true);
    pb.set_length(0);
    pb
}

/// A list argument of mappings.
pub fn list_of_maps(a: &Args, key: &str) -> Result<Vec<serde_json::Map<String, Value>>, ModuleFail> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Object(m) => Ok(m.clone()),
                other => Err(ModuleFail::new(format!("each entry of '{key}' must be a mapping, got {other}"))),
            })
            .collect(),
        Some(other) => Err(ModuleFail::new(format!("'{key}' must be a list, got {}", args::type_name(other)))),
    }
}

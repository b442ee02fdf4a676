//! The `cache_files` module: plain files (Kubespray's binaries among them) into the offline
//! cache, checksums verified when given, several at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::utils::offline_cache::{self, rel};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::manifest::Artifact;
use airlock_content::sources::fetch::{Checksum, parallel};

const ALLOWED: &[&str] = &["files", "dest", "cache_dir", "concurrency", "timeout", "retries", "validate_certs", "ca_path", "host_ca_paths"];

struct Job {
    url: String,
    dest: PathBuf,
    checksum: Option<Checksum>,
}

/// A files entry's `checksum`. get_url also takes the URL of a checksum file there (Ansible's
/// `sha256:https://.../SHA256SUMS`), so a task moved over from get_url is told what to give
/// instead of only that a URL is not hexadecimal.
fn parse_checksum(spec: &str, url: &str) -> Result<Checksum, ModuleFail> {
    let value = spec.split_once(':').map_or(spec, |(_, v)| v).trim();
    if value.starts_with("http://") || value.starts_with("https://") || value.starts_with("ftp://") || value.starts_with("file://") {
        return Err(ModuleFail::new(format!(
            "files entry {url}: checksum '{spec}' is the URL of a checksum file, which cache_files does not read: give the digest itself, '<algorithm>:<hex>' (e.g. sha256:<64 hex digits>, as Kubespray's checksums are)"
        )));
    }
    Checksum::parse(spec).map_err(|e| ModuleFail::new(format!("files entry {url}: {e}")))
}

/// Runs `cache_files`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "cache_files", ALLOWED)?;
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    let root = offline_cache::cache_root(a, &dest)?;
    let mut jobs = Vec::new();
    for f in offline_cache::list_of_maps(a, "files")? {
        let url = f
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ModuleFail::new(format!("a files entry needs 'url': {}", Value::Object(f.clone()))))?
            .to_string();
        let name = match f.get("dest").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => url
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(|s| s.split(['?', '#']).next().unwrap_or(s).to_string())
                .ok_or_else(|| ModuleFail::new(format!("cannot name the file for {url}: give 'dest'")))?,
        };
        if Path::new(&name).is_absolute() || name.split('/').any(|c| c == "..") {
            return Err(ModuleFail::new(format!("files entry dest '{name}' must be a relative path inside {}", dest.display())));
        }
        let checksum = f.get("checksum").and_then(Value::as_str).filter(|s| !s.is_empty()).map(|c| parse_checksum(c, &url)).transpose()?;
        jobs.push(Job { url, dest: dest.join(name), checksum });
    }
    let fetcher = offline_cache::fetcher(a)?;
    if ctx.check_mode {
        // Sizes from HEAD requests, the only metadata a plain file has.
        let missing: Vec<&Job> = jobs.iter().filter(|j| !j.dest.is_file()).collect();
        let sizes = parallel(missing.iter().map(|j| j.url.as_str()).collect(), offline_cache::concurrency(a)?, |u| fetcher.content_length(u));
        let mut files = Vec::new();
        let (mut bytes, mut unknown) = (0, 0);
        for (j, size) in missing.iter().zip(sizes) {
            let size = size.map_err(|e| ModuleFail::new(e.to_string()))?;
            match size {
                Some(n) => bytes += n,
                None => unknown += 1,
            }
            files.push(json!({"url": j.url, "size": size}));
        }
        let unknown_note = if unknown > 0 { format!(", {unknown} of unknown size") } else { String::new() };
        return Ok(ModuleResult::changed(!missing.is_empty()).with("files", Value::Array(files)).with("download_size", bytes).with_msg(format!(
            "{} file(s) would be downloaded, {}{unknown_note}",
            missing.len(),
            airlock_content::archive::human_size(bytes)
        )));
    }
    let pb = offline_cache::bytes_bar(ctx, "files");
    let total = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        total.fetch_add(n, Ordering::Relaxed);
        pb.inc(n);
    };
    let results = parallel(jobs, offline_cache::concurrency(a)?, |j: Job| {
        // Without a checksum a file already present is kept, as get_url does without force.
        if j.checksum.is_none() && j.dest.is_file() {
            return airlock_base::digest::sha256_file(&j.dest)
                .map(|(size, s)| (j.url.clone(), j.dest.clone(), size, s, false))
                .map_err(|e| format!("{}: {e}", j.dest.display()));
        }
        fetcher
            .download(&j.url, &j.dest, j.checksum.as_ref(), &HeaderMap::new(), &on_bytes)
            .map(|f| (j.url.clone(), f.path, f.size, f.sha256, f.downloaded))
            .map_err(|e| e.to_string())
    });
    pb.finish_and_clear();
    let mut artifacts = Vec::new();
    let mut failures = Vec::new();
    let mut changed = false;
    for r in results {
        match r {
            Ok((url, path, size, sha256, downloaded)) => {
                changed |= downloaded;
                artifacts.push(Artifact { kind: "file".into(), path: rel(&root, &path)?, size, sha256, source: url, name: None, version: None });
            }
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(ModuleFail::new(format!("{} of the files failed: {}", failures.len(), failures.join("; "))).with("failures", json!(failures)));
    }
    offline_cache::write_fragment(&root, &format!("files-{}", rel(&root, &dest)?), &artifacts)?;
    Ok(ModuleResult::changed(changed).with("files", artifacts.len()).with("bytes_downloaded", total.load(Ordering::Relaxed)))
}

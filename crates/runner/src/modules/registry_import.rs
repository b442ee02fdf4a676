//! The `registry_import` module: the cache's images (an OCI layout) written straight into the
//! storage of the offline registry (`registry:2` serving `/var/lib/registry`), instead of
//! DeepOps's `docker load` and `docker push` of every image.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::utils::offline_cache;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::human_size;
use airlock_content::sources::registry_store::{self, ImportOptions, Progress};

const ALLOWED: &[&str] = &["layout", "storage", "images", "verify"];

/// Runs `registry_import`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "registry_import", ALLOWED)?;
    let layout = PathBuf::from(args::req_str(a, "layout")?);
    let storage = PathBuf::from(args::req_str(a, "storage")?);
    let selection = match a.get("images") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items.iter().map(super::image_cache::image_ref).collect::<Result<Vec<_>, _>>()?),
        Some(Value::String(s)) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| super::image_cache::image_ref(&Value::String(r.to_string())))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(ModuleFail::new(format!(
                "images must be a list of image references or {{repo, image, version}} entries, got {}",
                args::type_name(other)
            )));
        }
    };
    let opts = ImportOptions { verify: args::bool_or(a, "verify", true)?, dry_run: ctx.check_mode };

    let pb = offline_cache::bytes_bar(ctx, "registry");
    let mut on_progress = |p: Progress<'_>| match p {
        Progress::Total(n) => pb.set_length(n),
        Progress::Image(r) => pb.set_message(r.to_string()),
        Progress::Bytes(n) => pb.inc(n),
    };
    let report = registry_store::import(&layout, &storage, selection.as_deref(), &opts, &mut on_progress);
    pb.finish_and_clear();
    let report = report.map_err(|e| ModuleFail::new(e.to_string()))?;

    let images: Vec<Value> =
        report.images.iter().map(|i| json!({"reference": i.reference, "repository": i.repository, "tag": i.tag, "digest": i.digest, "media_type": i.media_type, "changed": i.changed})).collect();
    let names: std::collections::BTreeSet<&str> = report.images.iter().map(|i| i.reference.as_str()).collect();
    let blobs = report.blobs_linked + report.blobs_copied;
    let msg = match (report.changed(), ctx.check_mode) {
        (false, _) => format!("{} image(s) already in {}", names.len(), storage.display()),
        (true, check) => format!(
            "{} image(s) {} {}: {blobs} blob(s) ({} linked, {} copied, {}), {} link file(s)",
            names.len(),
            if check { "would be imported into" } else { "imported into" },
            storage.display(),
            report.blobs_linked,
            report.blobs_copied,
            human_size(report.bytes_linked + report.bytes_copied),
            report.links_written
        ),
    };
    let mut r = ModuleResult::changed(report.changed())
        .with("images", Value::Array(images))
        .with("blobs_linked", report.blobs_linked)
        .with("blobs_copied", report.blobs_copied)
        .with("blobs_present", report.blobs_present)
        .with("bytes_linked", report.bytes_linked)
        .with("bytes_copied", report.bytes_copied)
        .with("links_written", report.links_written)
        .with("storage", storage.display().to_string())
        .with_msg(msg);
    r.skipped = false;
    Ok(r)
}

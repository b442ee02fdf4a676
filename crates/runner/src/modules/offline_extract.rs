//! The `offline_extract` module: the offline archive verified and unpacked under
//! `deepops_dest_path`, safely (no entry lands outside it) and only when every byte checks out.

use std::path::PathBuf;

use serde_json::json;

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::archive::{self, ArchiveError, ExtractOptions, ProblemKind, human_size};

const ALLOWED: &[&str] = &["src", "dest"];

/// Runs `offline_extract`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "offline_extract", ALLOWED)?;
    let src = PathBuf::from(args::req_str(a, "src")?);
    let dest = PathBuf::from(args::req_str(a, "dest")?);
    if !src.is_file() {
        return Err(ModuleFail::new(format!("archive {} not found: copy it here from the connected host, or set tar_file_path", src.display())));
    }
    if ctx.check_mode {
        // The manifest alone: what is not yet in place with its size would be written.
        let r = archive::inspect_archive(&src).map_err(|e| ModuleFail::new(e.to_string()))?;
        let todo: Vec<_> = r.manifest.artifacts.iter().filter(|x| std::fs::metadata(dest.join(&x.path)).map(|m| m.len() != x.size).unwrap_or(true)).collect();
        let bytes: u64 = todo.iter().map(|x| x.size).sum();
        return Ok(ModuleResult::changed(!todo.is_empty())
            .with("dest", dest.display().to_string())
            .with("artifacts", r.manifest.artifacts.len())
            .with("bytes", bytes)
            .with_msg(format!("would unpack {} of {} artifacts ({}) into {}", todo.len(), r.manifest.artifacts.len(), human_size(bytes), dest.display())));
    }
    let total = archive::inspect_archive(&src).map(|r| r.total.bytes).unwrap_or(0);
    let pb = ctx.progress.bar(total, "unpack", true);
    let progress = |p: archive::Progress| pb.set_position(p.bytes_done);
    let result = archive::extract_archive(&src, &dest, ExtractOptions { progress: Some(&progress), ..Default::default() });
    pb.finish_and_clear();
    match result {
        Ok(r) => Ok(ModuleResult::changed(r.written > 0)
            .with("dest", r.dest.display().to_string())
            .with("written", r.written)
            .with("bytes_written", r.bytes_written)
            .with("skipped", r.skipped)
            .with("bytes_skipped", r.bytes_skipped)
            .with_msg(format!(
                "{} artifacts unpacked ({}), {} already in place ({})",
                r.written,
                human_size(r.bytes_written),
                r.skipped,
                human_size(r.bytes_skipped)
            ))),
        // Extraction stops at the first bad entry; a full verification names every one.
        Err(e @ (ArchiveError::Verify(_) | ArchiveError::Io { .. } | ArchiveError::Unsafe { .. })) => match archive::verify_archive(&src) {
            Ok(v) if !v.is_ok() => {
                let names: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
                // Entries that would land outside dest, or are links or devices, are never
                // written by airlock: copying the same archive again will not help.
                let hostile = v.problems.iter().any(|p| matches!(p.kind, ProblemKind::UnsafePath(_) | ProblemKind::BadType(_)));
                let (what, fix) = if hostile {
                    (
                        "holds entries airlock refuses (paths outside the destination, links or devices)",
                        "airlock never writes such entries, so this archive was not made by build-offline-cache as it is: do not use it; rebuild it on the connected host",
                    )
                } else {
                    ("is damaged", "Copy the archive again, or rebuild it on the connected host")
                };
                Err(ModuleFail::new(format!(
                    "{} {what}, nothing was unpacked into {}: {} problem(s): {}. {fix}",
                    src.display(),
                    dest.display(),
                    names.len(),
                    names.join("; ")
                ))
                .with("problems", json!(names)))
            }
            _ => Err(refused(&src, &dest, &e)),
        },
        Err(e) => Err(refused(&src, &dest, &e)),
    }
}

/// The failure for an archive that was refused: the archive named (a run may unpack several,
/// and errors such as "not enough free space" name only `dest`), and what was left alone.
fn refused(src: &std::path::Path, dest: &std::path::Path, e: &ArchiveError) -> ModuleFail {
    let msg = e.to_string();
    let shown = src.display().to_string();
    let prefix = if msg.contains(&shown) { String::new() } else { format!("{shown}: ") };
    ModuleFail::new(format!("{prefix}{msg}; nothing was unpacked into {}", dest.display()))
}

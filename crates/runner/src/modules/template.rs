//! The `template` module: renders a Jinja template with the task's variables and writes it
//! through `copy`'s atomic, compare-first path.

use std::path::{Path, PathBuf};

use super::copy::write_file;
use super::utils::files::FileAttrs;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, args};

const ALLOWED: &[&str] = &[
    "src",
    "dest",
    "mode",
    "owner",
    "group",
    "backup",
    "force",
    "validate",
    "newline_sequence",
    "trim_blocks",
    "lstrip_blocks",
    "output_encoding",
    "follow",
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "unsafe_writes",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
];

/// Runs `template`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "template", ALLOWED)?;
    let src = args::req_str(a, "src")?;
    let dest = args::req_str(a, "dest")?;
    let path = ctx.find_file("templates", &src).ok_or_else(|| {
        ModuleFail::new(format!(
            "Could not find or access '{src}' (searched templates/ of {})",
            ctx.search_paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut text = (ctx.render_file)(&path).map_err(ModuleFail::new)?;
    if let Some(nl) = args::opt_choice(a, "newline_sequence", &["\\n", "\\r", "\\r\\n"])? {
        let want = nl.replace("\\n", "\n").replace("\\r", "\r");
        if want != "\n" {
            text = text.replace("\r\n", "\n").replace('\n', &want);
        }
    }
    let mut dest_path = PathBuf::from(&dest);
    if dest.ends_with('/') || dest_path.is_dir() {
        dest_path = dest_path.join(Path::new(&src).file_name().unwrap_or_default().to_string_lossy().trim_end_matches(".j2"));
    }
    let attrs = FileAttrs::from_args(a)?;
    let r = write_file(
        ctx,
        &dest_path,
        text.as_bytes(),
        &attrs,
        args::bool_or(a, "force", true)?,
        args::bool_or(a, "backup", false)?,
        args::opt_str(a, "validate")?.as_deref(),
        Some(&path),
    )?;
    Ok(r)
}

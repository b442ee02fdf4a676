//! The `copy` module: content or files (or whole directories) to a destination, atomically and
//! only when the bytes differ. `template` writes through the same path.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::utils::files::{self, FileAttrs};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &[
    "src",
    "content",
    "dest",
    "mode",
    "owner",
    "group",
    "backup",
    "force",
    "remote_src",
    "validate",
    "directory_mode",
    "follow",
    "local_follow",
    "checksum",
    "decrypt",
    "unsafe_writes",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
];

/// Runs `copy`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "copy", ALLOWED)?;
    let dest = args::req_str(a, "dest")?;
    let attrs = FileAttrs::from_args(a)?;
    let force = args::bool_or(a, "force", true)?;
    let backup = args::bool_or(a, "backup", false)?;
    let validate = args::opt_str(a, "validate")?;
    if let Some(content) = a.get("content") {
        if a.contains_key("src") {
            return Err(ModuleFail::new("parameters are mutually exclusive: content|src"));
        }
        let text = match content {
            serde_json::Value::String(s) => s.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        if dest.ends_with('/') || Path::new(&dest).is_dir() {
            return Err(ModuleFail::new("can not use content with a dir as dest"));
        }
        return write_file(ctx, Path::new(&dest), text.as_bytes(), &attrs, force, backup, validate.as_deref(), None);
    }
    let src = args::req_str(a, "src").map_err(|_| ModuleFail::new("src (or content) is required"))?;
    let remote_src = args::bool_or(a, "remote_src", false)?;
    let src_path = if remote_src || Path::new(&src).is_absolute() {
        PathBuf::from(&src)
    } else {
        ctx.find_file("files", &src).ok_or_else(|| {
            ModuleFail::new(format!(
                "Could not find or access '{src}' (searched files/ of {})",
                ctx.search_paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ))
        })?
    };
    if !src_path.exists() {
        return Err(ModuleFail::new(format!("Source {} not found", src_path.display())));
    }
    if src_path.is_dir() {
        return copy_dir(ctx, &src, &src_path, Path::new(&dest), &attrs, force);
    }
    let mut dest_path = PathBuf::from(&dest);
    if dest.ends_with('/') || dest_path.is_dir() {
        dest_path = dest_path.join(src_path.file_name().unwrap_or_default());
    }
    let data = fs::read(&src_path).map_err(|e| ModuleFail::new(format!("could not read {}: {e}", src_path.display())))?;
    write_file(ctx, &dest_path, &data, &attrs, force, backup, validate.as_deref(), Some(&src_path))
}

/// Writes `data` to `dest` when it differs, then applies attributes. Shared with `template`.
// The copy and template modules' own arguments, each passed through as Ansible names it.
#[allow(clippy::too_many_arguments)]
pub fn write_file(
    ctx: &ModuleContext,
    dest: &Path,
    data: &[u8],
    attrs: &FileAttrs,
    force: bool,
    backup: bool,
    validate: Option<&str>,
    src: Option<&Path>,
) -> ModuleOutcome {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // In check mode a missing directory is one an earlier task would have made (Ansible fails
    // here, which hides every later change of a --check run): the file is reported as new.
    let parent_missing = !parent.is_dir();
    if parent_missing && !ctx.check_mode {
        return Err(ModuleFail::new(format!("Destination directory {} does not exist", parent.display())).with("checksum", sha1_hex(data)));
    }
    // Compare sizes first; read the old bytes only when the sizes match or a diff is wanted.
    let (exists, differs, before) = match fs::metadata(dest) {
        Ok(md) if md.is_dir() => return Err(ModuleFail::new(format!("{} is a directory", dest.display()))),
        Ok(md) => {
            let same_size = md.len() as usize == data.len();
            let before = if same_size || ctx.diff_mode { Some(fs::read(dest).map_err(|e| ModuleFail::new(format!("{}: {e}", dest.display())))?) } else { None };
            (true, !same_size || before.as_deref() != Some(data), before)
        }
        Err(_) => (false, true, None),
    };
    let write = differs && (force || !exists);
    let mut result = ModuleResult::changed(false);
    if write {
        if let Some(cmd) = validate
            && !parent_missing
        {
            validate_content(cmd, data, parent)?;
        }
        if ctx.diff_mode {
            result.diff.push(files::content_diff(dest, before.as_deref(), data));
        }
        if !ctx.check_mode {
            if backup && exists {
                result = result.with(
                    "backup_file",
                    files::backup_file(dest).map_err(|e| ModuleFail::new(format!("could not back up {}: {e}", dest.display())))?.display().to_string(),
                );
            }
            files::atomic_write(dest, data)?;
        }
        result.changed = true;
    }
    let attr_changed = if ctx.check_mode && !dest.exists() { false } else { attrs.apply(dest, ctx.check_mode)? };
    result.changed |= attr_changed;
    let mut r = result.with("dest", dest.display().to_string()).with("checksum", sha1_hex(data)).with("size", data.len());
    if let Some(s) = src {
        r = r.with("src", s.display().to_string());
    }
    if dest.exists() {
        for (k, v) in files::path_info(dest) {
            if k != "size" || !ctx.check_mode {
                r.data.insert(k, v);
            }
        }
    }
    Ok(r)
}

fn sha1_hex(data: &[u8]) -> String {
    airlock_base::digest::hex_digest(airlock_base::digest::Algorithm::Sha1, data)
}

/// Runs `validate` (a command with `%s`) on the new content before it is put in place.
fn validate_content(cmd: &str, data: &[u8], dir: &Path) -> Result<(), ModuleFail> {
    if !cmd.contains("%s") {
        return Err(ModuleFail::new(format!("validate must contain %s: {cmd}")));
    }
    let tmp = tempfile::Builder::new().prefix(".airlock-validate-").tempfile_in(dir).map_err(|e| ModuleFail::new(e.to_string()))?;
    fs::write(tmp.path(), data).map_err(|e| ModuleFail::new(e.to_string()))?;
    let line = cmd.replace("%s", &tmp.path().display().to_string());
    let argv = airlock_base::shlex::split(&line).map_err(|e| ModuleFail::new(e.to_string()))?;
    let out = std::process::Command::new(&argv[0]).args(&argv[1..]).output().map_err(|e| ModuleFail::new(format!("failed to validate: {e}")))?;
    if !out.status.success() {
        return Err(ModuleFail::new(format!(
            "failed to validate: rc:{} error:{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .with("exit_status", out.status.code().unwrap_or(-1)));
    }
    Ok(())
}

/// Copies a directory: `src/` copies its contents into `dest`, `src` copies the directory
/// itself into `dest`.
fn copy_dir(ctx: &ModuleContext, src_arg: &str, src: &Path, dest: &Path, attrs: &FileAttrs, force: bool) -> ModuleOutcome {
    let target = if src_arg.ends_with('/') { dest.to_path_buf() } else { dest.join(src.file_name().unwrap_or_default()) };
    let mut changed = false;
    let mut stack = vec![(src.to_path_buf(), target.clone())];
    while let Some((from, to)) = stack.pop() {
        if !to.is_dir() {
            changed = true;
            if !ctx.check_mode {
                fs::create_dir_all(&to).map_err(|e| ModuleFail::new(format!("could not create {}: {e}", to.display())))?;
            }
        }
        let mut entries: Vec<_> = fs::read_dir(&from).map_err(|e| ModuleFail::new(format!("{}: {e}", from.display())))?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let (f, t) = (e.path(), to.join(e.file_name()));
            if f.is_dir() {
                stack.push((f, t));
            } else {
                let data = fs::read(&f).map_err(|e| ModuleFail::new(format!("{}: {e}", f.display())))?;
                if ctx.check_mode && !to.is_dir() {
                    continue;
                }
                let r = write_file(ctx, &t, &data, attrs, force, false, None, Some(&f))?;
                changed |= r.changed;
            }
        }
    }
    Ok(ModuleResult::changed(changed).with("dest", target.display().to_string()).with("src", src.display().to_string()).with("state", json!("directory")))
}

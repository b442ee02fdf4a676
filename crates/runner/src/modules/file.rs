//! The `file` module: directories, links, touch, absent, and attributes of what is there.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::utils::files::{self, FileAttrs};
use super::{Args, Diff, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &[
    "path",
    "dest",
    "name",
    "state",
    "mode",
    "owner",
    "group",
    "src",
    "recurse",
    "force",
    "follow",
    "modification_time",
    "access_time",
    "modification_time_format",
    "access_time_format",
    "unsafe_writes",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
];

fn current_state(p: &Path) -> &'static str {
    match fs::symlink_metadata(p) {
        Err(_) => "absent",
        Ok(md) if md.file_type().is_symlink() => "link",
        Ok(md) if md.is_dir() => "directory",
        Ok(md) if md.nlink() > 1 => "hard",
        Ok(_) => "file",
    }
}

/// Runs `file`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "file", ALLOWED)?;
    let path_s = args::opt_str(a, "path")?
        .or(args::opt_str(a, "dest")?)
        .or(args::opt_str(a, "name")?)
        .ok_or_else(|| ModuleFail::new("missing required arguments: path"))?;
    let path = PathBuf::from(&path_s);
    let before = current_state(&path);
    let state = args::opt_choice(a, "state", &["file", "directory", "link", "hard", "touch", "absent"])?.unwrap_or_else(|| match before {
        "absent" => "file".into(),
        s => {
            if s == "hard" {
                "file".into()
            } else {
                s.into()
            }
        }
    });
    let attrs = FileAttrs::from_args(a)?;
    let check = ctx.check_mode;
    let mut changed = false;
    match state.as_str() {
        "absent" => {
            if before != "absent" {
                changed = true;
                if !check {
                    let r = if before == "directory" { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
                    r.map_err(|e| ModuleFail::new(format!("rmtree failed: {e}")).with("path", path_s.clone()))?;
                }
            }
            let mut r = ModuleResult::changed(changed).with("path", path_s.clone()).with("state", "absent");
            if ctx.diff_mode && changed {
                r.diff.push(state_diff(&path_s, before, "absent"));
            }
            return Ok(r);
        }
        "file" => {
            if before == "absent" {
                return Err(ModuleFail::new(format!("file ({path_s}) is absent, cannot continue")).with("path", path_s.clone()).with("state", "absent"));
            }
            if before == "directory" {
                return Err(ModuleFail::new(format!("file ({path_s}) is directory, cannot continue")).with("path", path_s.clone()));
            }
            changed |= attrs.apply(&path, check)?;
        }
        "directory" => {
            match before {
                "absent" => {
                    changed = true;
                    if !check {
                        // Create each missing parent so that each gets the mode, as Ansible does.
                        let mut missing = Vec::new();
                        let mut cur = path.as_path();
                        while !cur.exists() {
                            missing.push(cur.to_path_buf());
                            match cur.parent() {
                                Some(p) if !p.as_os_str().is_empty() => cur = p,
                                _ => break,
                            }
                        }
                        for d in missing.iter().rev() {
                            fs::create_dir(d).map_err(|e| {
                                ModuleFail::new(format!("There was an issue creating {} as requested: {e}", d.display())).with("path", path_s.clone())
                            })?;
                            attrs.apply(d, false)?;
                        }
                    }
                }
                "directory" => {}
                other => return Err(ModuleFail::new(format!("{path_s} already exists as a {other}")).with("path", path_s.clone())),
            }
            if !(check && before == "absent") {
                changed |= attrs.apply(&path, check)?;
                if args::bool_or(a, "recurse", false)? {
                    changed |= recurse_attrs(&path, &attrs, check)?;
                }
            }
        }
        "touch" => {
            changed = true;
            if !check {
                if before == "absent" {
                    fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .map_err(|e| ModuleFail::new(format!("Error, could not touch target: {e}")).with("path", path_s.clone()))?;
                } else {
                    let now = filetime::FileTime::now();
                    filetime::set_symlink_file_times(&path, now, now).map_err(|e| ModuleFail::new(format!("Error while touching existing target: {e}")))?;
                }
                attrs.apply(&path, false)?;
            }
        }
        "link" | "hard" => {
            let src = args::opt_str(a, "src")?
                .ok_or_else(|| ModuleFail::new(format!("src is required for creating new {}s", if state == "link" { "symlink" } else { "hard link" })))?;
            let force = args::bool_or(a, "force", false)?;
            if state == "link" {
                let want = PathBuf::from(&src);
                let current = fs::read_link(&path).ok();
                if current.as_ref() != Some(&want) {
                    if before != "absent" && before != "link" && !force {
                        return Err(ModuleFail::new(format!("refusing to convert from {before} to symlink for {path_s}")).with("path", path_s.clone()));
                    }
                    let target = if want.is_absolute() { want.clone() } else { path.parent().unwrap_or(Path::new(".")).join(&want) };
                    if !target.exists() && !force {
                        return Err(ModuleFail::new(format!(
                            "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                            target.display()
                        ))
                        .with("path", path_s.clone())
                        .with("src", src.clone()));
                    }
                    changed = true;
                    if !check {
                        if before != "absent" {
                            let _ = if before == "directory" { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
                        }
                        std::os::unix::fs::symlink(&want, &path)
                            .map_err(|e| ModuleFail::new(format!("Error while linking: {e}")).with("path", path_s.clone()))?;
                    }
                }
            } else {
                let src_md = fs::metadata(&src).map_err(|e| ModuleFail::new(format!("src does not exist: {src}: {e}")))?;
                let same = fs::metadata(&path).map(|m| m.ino() == src_md.ino() && m.dev() == src_md.dev()).unwrap_or(false);
                if !same {
                    if before != "absent" && !force {
                        return Err(ModuleFail::new(format!("refusing to convert from {before} to hard link for {path_s}")));
                    }
                    changed = true;
                    if !check {
                        if before != "absent" {
                            let _ = fs::remove_file(&path);
                        }
                        fs::hard_link(&src, &path).map_err(|e| ModuleFail::new(format!("Error while linking: {e}")))?;
                    }
                }
            }
            if path.exists() || fs::symlink_metadata(&path).is_ok() {
                changed |= attrs.apply(&path, check)?;
            }
        }
        _ => unreachable!(),
    }
    let mut r = ModuleResult::changed(changed).with("path", path_s.clone());
    for (k, v) in files::path_info(&path) {
        r.data.insert(k, v);
    }
    if check && before == "absent" {
        r.data.insert("state".into(), json!(state));
    }
    if ctx.diff_mode && changed {
        r.diff.push(state_diff(&path_s, before, &state));
    }
    Ok(r)
}

fn state_diff(path: &str, before: &str, after: &str) -> Diff {
    Diff {
        before_header: path.into(),
        after_header: path.into(),
        before: format!("path: {path}\nstate: {before}\n"),
        after: format!("path: {path}\nstate: {after}\n"),
    }
}

fn recurse_attrs(dir: &Path, attrs: &FileAttrs, check: bool) -> Result<bool, ModuleFail> {
    let mut changed = false;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| ModuleFail::new(format!("{}: {e}", d.display())))?.filter_map(Result::ok) {
            let p = e.path();
            changed |= attrs.apply(&p, check)?;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    Ok(changed)
}

//! The `lineinfile` module: make sure one line is (or is not) in a file.

use std::fs;
use std::path::Path;

use super::utils::files::{self, FileAttrs};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_jinja::filters::{compile_py_regex, py_expand};

const ALLOWED: &[&str] = &[
    "path",
    "dest",
    "destfile",
    "name",
    "regexp",
    "regex",
    "search_string",
    "line",
    "value",
    "state",
    "insertafter",
    "insertbefore",
    "create",
    "backrefs",
    "backup",
    "firstmatch",
    "mode",
    "owner",
    "group",
    "validate",
    "unsafe_writes",
    "others",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
];

/// Runs `lineinfile`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "lineinfile", ALLOWED)?;
    let path_s = args::opt_str(a, "path")?
        .or(args::opt_str(a, "dest")?)
        .or(args::opt_str(a, "destfile")?)
        .or(args::opt_str(a, "name")?)
        .ok_or_else(|| ModuleFail::new("missing required arguments: path"))?;
    let path = Path::new(&path_s);
    let state = args::opt_choice(a, "state", &["present", "absent"])?.unwrap_or_else(|| "present".into());
    let regexp = args::opt_str(a, "regexp")?.or(args::opt_str(a, "regex")?);
    let search = args::opt_str(a, "search_string")?;
    let line = args::opt_str(a, "line")?.or(args::opt_str(a, "value")?);
    let insertafter = args::opt_str(a, "insertafter")?;
    let insertbefore = args::opt_str(a, "insertbefore")?;
    let backrefs = args::bool_or(a, "backrefs", false)?;
    let firstmatch = args::bool_or(a, "firstmatch", false)?;
    let create = args::bool_or(a, "create", false)?;
    let attrs = FileAttrs::from_args(a)?;
    if regexp.is_some() && search.is_some() {
        return Err(ModuleFail::new("parameters are mutually exclusive: regexp|search_string"));
    }
    if path.is_dir() {
        return Err(ModuleFail::new(format!("Path {path_s} is a directory !")).with("rc", 256));
    }
    let exists = path.exists();
    if !exists && state == "present" && !create {
        return Err(ModuleFail::new(format!("Destination {path_s} does not exist !")).with("rc", 257));
    }
    let before = if exists { fs::read(path).map_err(|e| ModuleFail::new(format!("{path_s}: {e}")))? } else { Vec::new() };
    let text = String::from_utf8_lossy(&before).into_owned();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let re = regexp.as_deref().map(|r| compile_py_regex(r, 0).map_err(|e| ModuleFail::new(e.to_string()))).transpose()?;
    let strip = |l: &str| l.trim_end_matches(['\r', '\n']).to_string();
    let (msg, changed);
    if state == "present" {
        let line = line.ok_or_else(|| ModuleFail::new("line is required with state=present"))?;
        if backrefs && re.is_none() {
            return Err(ModuleFail::new("regexp is required with backrefs=true"));
        }
        let ins_re = match (&insertafter, &insertbefore) {
            (Some(x), _) if x != "EOF" && x != "BOF" => Some(compile_py_regex(x, 0).map_err(|e| ModuleFail::new(e.to_string()))?),
            (None, Some(x)) if x != "BOF" => Some(compile_py_regex(x, 0).map_err(|e| ModuleFail::new(e.to_string()))?),
            _ => None,
        };
        let mut found: Option<(usize, Option<String>)> = None;
        let mut ins_idx: Option<usize> = None;
        let mut exact = false;
        for (i, cur) in lines.iter().enumerate() {
            let cur_s = strip(cur);
            let hit = match (&re, &search) {
                (Some(r), _) => match r.search(&cur_s) {
                    Some(m) => Some(Some(py_expand(r, &m, &cur_s, &line).map_err(|e| ModuleFail::new(e.to_string()))?)),
                    None => None,
                },
                (None, Some(s)) => cur_s.contains(s.as_str()).then_some(None),
                (None, None) => (cur_s == line).then_some(None),
            };
            if cur_s == line {
                exact = true;
            }
            if let Some(expanded) = hit {
                found = Some((i, expanded));
                if firstmatch {
                    break;
                }
            }
            if let Some(r) = &ins_re
                && r.is_match(&cur_s)
            {
                if insertafter.is_some() {
                    ins_idx = Some(i + 1);
                } else {
                    ins_idx = Some(i);
                }
                if firstmatch {
                    break;
                }
            }
        }
        if let Some((i, expanded)) = found {
            let new_line = if backrefs { expanded.unwrap_or_else(|| line.clone()) } else { line.clone() };
            let ending = if lines[i].ends_with('\n') { "\n" } else { "" };
            let replacement = format!("{new_line}{ending}");
            if strip(&lines[i]) != new_line {
                lines[i] = if ending.is_empty() { new_line } else { replacement };
                msg = "line replaced".to_string();
                changed = true;
            } else {
                msg = String::new();
                changed = false;
            }
        } else if backrefs || exact {
            msg = String::new();
            changed = false;
        } else {
            let newline = format!("{line}\n");
            if insertbefore.as_deref() == Some("BOF") || insertafter.as_deref() == Some("BOF") {
                lines.insert(0, newline);
            } else if insertafter.as_deref() == Some("EOF") || ins_idx.is_none() {
                if let Some(last) = lines.last_mut()
                    && !last.ends_with('\n')
                {
                    last.push('\n');
                }
                lines.push(newline);
            } else {
                lines.insert(ins_idx.unwrap(), newline);
            }
            msg = "line added".to_string();
            changed = true;
        }
    } else {
        if re.is_none() && search.is_none() && line.is_none() {
            return Err(ModuleFail::new("one of the following is required: line, regexp, search_string"));
        }
        let n0 = lines.len();
        lines.retain(|cur| {
            let cur_s = strip(cur);
            let hit = match (&re, &search) {
                (Some(r), _) => r.is_match(&cur_s),
                (None, Some(s)) => cur_s.contains(s.as_str()),
                (None, None) => Some(&cur_s) == line.as_ref(),
            };
            !hit
        });
        let removed = n0 - lines.len();
        changed = removed > 0;
        msg = if changed { format!("{removed} line(s) removed") } else { String::new() };
        if !exists {
            return Ok(ModuleResult::changed(false).with("found", 0).with_msg("file not present"));
        }
        let mut r = finish(ctx, path, &before, &lines, changed, &attrs, a)?;
        r = r.with("found", removed);
        r.msg = Some(msg);
        return Ok(r);
    }
    let mut r = finish(ctx, path, &before, &lines, changed, &attrs, a)?;
    r.msg = Some(msg);
    Ok(r)
}

fn finish(ctx: &ModuleContext, path: &Path, before: &[u8], lines: &[String], changed: bool, attrs: &FileAttrs, a: &Args) -> ModuleOutcome {
    let after = lines.concat();
    let mut r = ModuleResult::changed(false);
    if changed {
        if ctx.diff_mode {
            r.diff.push(files::content_diff(path, Some(before), after.as_bytes()));
        }
        if !ctx.check_mode {
            if args::bool_or(a, "backup", false)? && path.exists() {
                r = r.with(
                    "backup",
                    files::backup_file(path).map_err(|e| ModuleFail::new(format!("could not back up {}: {e}", path.display())))?.display().to_string(),
                );
            }
            files::atomic_write(path, after.as_bytes())?;
        }
        r.changed = true;
    }
    if path.exists() {
        r.changed |= attrs.apply(path, ctx.check_mode)?;
    }
    Ok(r)
}

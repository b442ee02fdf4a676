//! The `find` module: files matching names, contents, age, size and type.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::utils::files;
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args, stat};
use airlock_jinja::filters::{PyRegex, RE_ANCHORED, RE_M, compile_py_regex};

const ALLOWED: &[&str] = &[
    "paths",
    "path",
    "name",
    "patterns",
    "pattern",
    "excludes",
    "exclude",
    "contains",
    "file_type",
    "recurse",
    "hidden",
    "age",
    "age_stamp",
    "size",
    "depth",
    "follow",
    "get_checksum",
    "checksum_algorithm",
    "use_regex",
    "read_whole_file",
    "mode",
    "exact_mode",
    "encoding",
    "limit",
];

enum Matcher {
    Glob(Vec<glob::Pattern>),
    Regex(Vec<std::sync::Arc<PyRegex>>),
}

impl Matcher {
    fn new(pats: &[String], use_regex: bool) -> Result<Matcher, ModuleFail> {
        Ok(if use_regex {
            Matcher::Regex(pats.iter().map(|p| compile_py_regex(p, RE_ANCHORED).map_err(|e| ModuleFail::new(e.to_string()))).collect::<Result<_, _>>()?)
        } else {
            Matcher::Glob(pats.iter().map(|p| glob::Pattern::new(p).map_err(|e| ModuleFail::new(format!("bad pattern {p}: {e}")))).collect::<Result<_, _>>()?)
        })
    }
    fn any(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.iter().any(|p| p.matches(name)),
            Matcher::Regex(r) => r.iter().any(|p| p.is_match(name)),
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            Matcher::Glob(g) => g.is_empty(),
            Matcher::Regex(r) => r.is_empty(),
        }
    }
}

/// `1d`, `2w`, `-3h` (seconds); negative means "younger than".
fn parse_age(s: &str) -> Result<i64, ModuleFail> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| ModuleFail::new(format!("failed to process age: {s}")))?;
    let mul = match unit.chars().next().map(|c| c.to_ascii_lowercase()) {
        None | Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86400,
        Some('w') => 604800,
        _ => return Err(ModuleFail::new(format!("failed to process age: {s}"))),
    };
    Ok(n * mul)
}

/// `10k`, `-1m`, `2g` (bytes); negative means "smaller than".
fn parse_size(s: &str) -> Result<i64, ModuleFail> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| ModuleFail::new(format!("failed to process size: {s}")))?;
    let mul: i64 = match unit.chars().next().map(|c| c.to_ascii_lowercase()) {
        None | Some('b') => 1,
        Some('k') => 1024,
        Some('m') => 1024 * 1024,
        Some('g') => 1024 * 1024 * 1024,
        Some('t') => 1024_i64.pow(4),
        _ => return Err(ModuleFail::new(format!("failed to process size: {s}"))),
    };
    Ok(n * mul)
}

/// Runs `find`.
pub fn run(a: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "find", ALLOWED)?;
    let paths = args::opt_list(a, "paths")?
        .or(args::opt_list(a, "path")?)
        .or(args::opt_list(a, "name")?)
        .ok_or_else(|| ModuleFail::new("missing required arguments: paths"))?;
    let use_regex = args::bool_or(a, "use_regex", false)?;
    let patterns = Matcher::new(&args::opt_list(a, "patterns")?.or(args::opt_list(a, "pattern")?).unwrap_or_default(), use_regex)?;
    let excludes = Matcher::new(&args::opt_list(a, "excludes")?.or(args::opt_list(a, "exclude")?).unwrap_or_default(), use_regex)?;
    let contains = args::opt_str(a, "contains")?.map(|c| compile_py_regex(&c, RE_M).map_err(|e| ModuleFail::new(e.to_string()))).transpose()?;
    let file_type = args::opt_choice(a, "file_type", &["file", "directory", "link", "any"])?.unwrap_or_else(|| "file".into());
    let recurse = args::bool_or(a, "recurse", false)?;
    let hidden = args::bool_or(a, "hidden", false)?;
    let follow = args::bool_or(a, "follow", false)?;
    let depth = args::opt_int(a, "depth")?;
    let age = args::opt_str(a, "age")?.map(|s| parse_age(&s)).transpose()?;
    let age_stamp = args::opt_choice(a, "age_stamp", &["atime", "ctime", "mtime"])?.unwrap_or_else(|| "mtime".into());
    let size = args::opt_str(a, "size")?.map(|s| parse_size(&s)).transpose()?;
    let get_checksum = args::bool_or(a, "get_checksum", false)?;
    let limit = args::opt_int(a, "limit")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let mut files = Vec::new();
    let mut examined = 0u64;
    let mut skipped = serde_json::Map::new();
    for root in &paths {
        let root = files::expand_path(root);
        if !root.is_dir() {
            skipped.insert(
                root.display().to_string(),
                json!(format!("{} was skipped as it does not seem to be a valid directory or it cannot be accessed", root.display())),
            );
            continue;
        }
        let mut stack: Vec<(PathBuf, i64)> = vec![(root.clone(), 1)];
        while let Some((dir, level)) = stack.pop() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut entries: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if name.starts_with('.') && !hidden {
                    continue;
                }
                examined += 1;
                let md = if follow { fs::metadata(&p) } else { fs::symlink_metadata(&p) };
                let Ok(md) = md else { continue };
                let is_dir = md.is_dir();
                if is_dir && recurse && depth.is_none_or(|d| level < d) {
                    stack.push((p.clone(), level + 1));
                }
                let type_ok = match file_type.as_str() {
                    "file" => md.is_file(),
                    "directory" => is_dir,
                    "link" => md.file_type().is_symlink(),
                    _ => true,
                };
                if !type_ok || (!patterns.is_empty() && !patterns.any(&name)) || (!excludes.is_empty() && excludes.any(&name)) {
                    continue;
                }
                if let Some(age) = age {
                    let stamp = match age_stamp.as_str() {
                        "atime" => md.atime(),
                        "ctime" => md.ctime(),
                        _ => md.mtime(),
                    };
                    let elapsed = now - stamp;
                    if (age >= 0 && elapsed < age) || (age < 0 && elapsed > -age) {
                        continue;
                    }
                }
                if let Some(size) = size {
                    let s = md.size() as i64;
                    if (size >= 0 && s < size) || (size < 0 && s > -size) {
                        continue;
                    }
                }
                if let Some(re) = &contains
                    && (!md.is_file() || !fs::read(&p).map(|d| re.is_match(&String::from_utf8_lossy(&d))).unwrap_or(false))
                {
                    continue;
                }
                let mut st = stat::stat_path(&p, follow, get_checksum.then_some("sha1"))?;
                st.remove("exists");
                files.push(Value::Object(st));
                if limit.is_some_and(|l| files.len() as i64 >= l) {
                    break;
                }
            }
        }
    }
    let matched = files.len();
    let mut r =
        ModuleResult::changed(false).with("files", files).with("matched", matched).with("examined", examined).with("skipped_paths", Value::Object(skipped));
    r.msg = Some(String::new());
    let _ = Path::new("");
    Ok(r)
}

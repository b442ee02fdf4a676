//! The path filters, after Python's `posixpath`: `basename`, `dirname`, `expanduser`,
//! `realpath`, `relpath`, `path_join`, `fileglob` and the like.

use std::collections::HashMap;

use minijinja::{Error, Value};
use regex::Regex;

use super::{Args, Bound, bind, is_list, items, list, type_name};
use crate::pyfmt::py_str;

fn path_arg(b: &Bound, param: &str) -> Result<String, Error> {
    let v = b.defined(param)?;
    match v.as_str() {
        Some(s) => Ok(s.to_string()),
        None => Err(b.fail(format!("expected str, bytes or os.PathLike object, not {}", type_name(v)))),
    }
}

/// `posixpath.basename`.
pub fn py_basename(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// `posixpath.dirname`.
pub fn py_dirname(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..i];
    if !head.is_empty() && head.chars().any(|c| c != '/') { head.trim_end_matches('/').to_string() } else { head.to_string() }
}

/// `posixpath.normpath`.
pub fn py_normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(comp);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let s = "/".repeat(initial) + &comps.join("/");
    if s.is_empty() { ".".into() } else { s }
}

/// `posixpath.join`.
pub fn py_path_join(parts: &[String]) -> String {
    let mut path = String::new();
    for (i, b) in parts.iter().enumerate() {
        if b.starts_with('/') || i == 0 {
            path = b.clone();
        } else if path.is_empty() || path.ends_with('/') {
            path.push_str(b);
        } else {
            path.push('/');
            path.push_str(b);
        }
    }
    path
}

fn home_of(user: Option<&str>) -> Option<String> {
    match user {
        None => {
            if let Ok(h) = std::env::var("HOME") {
                return Some(h);
            }
            // SAFETY: getpwuid returns a pointer to static storage or null.
            unsafe {
                let pw = libc::getpwuid(libc::getuid());
                if pw.is_null() {
                    return None;
                }
                Some(std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned())
            }
        }
        Some(name) => {
            let cname = std::ffi::CString::new(name).ok()?;
            // SAFETY: getpwnam returns a pointer to static storage or null.
            unsafe {
                let pw = libc::getpwnam(cname.as_ptr());
                if pw.is_null() {
                    return None;
                }
                Some(std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned())
            }
        }
    }
}

/// `posixpath.expanduser`.
pub fn py_expanduser(p: &str) -> String {
    if !p.starts_with('~') {
        return p.to_string();
    }
    let i = p[1..].find('/').map_or(p.len(), |i| i + 1);
    let user = &p[1..i];
    let home = if user.is_empty() { home_of(None) } else { home_of(Some(user)) };
    match home {
        None => p.to_string(),
        Some(h) => {
            let h = h.trim_end_matches('/');
            let rv = format!("{h}{}", &p[i..]);
            if rv.is_empty() { "/".into() } else { rv }
        }
    }
}

/// `posixpath.expandvars`: `$NAME` and `${NAME}` of set variables.
pub fn py_expandvars(p: &str) -> String {
    static VAR: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| Regex::new(r"\$(?:([A-Za-z0-9_]+)|\{([^}]*)\})").unwrap());
    if !p.contains('$') {
        return p.to_string();
    }
    VAR.replace_all(p, |c: &regex::Captures<'_>| {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        std::env::var(name).unwrap_or_else(|_| c[0].to_string())
    })
    .into_owned()
}

fn cwd() -> String {
    std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into())
}

/// `posixpath.abspath`.
pub fn py_abspath(p: &str) -> String {
    if p.starts_with('/') { py_normpath(p) } else { py_normpath(&py_path_join(&[cwd(), p.to_string()])) }
}

/// `posixpath.realpath` (non-strict): symlinks resolved as far as the path exists.
pub fn py_realpath(p: &str) -> String {
    fn join_real(path: &str, rest: &str, seen: &mut HashMap<String, Option<String>>, depth: usize) -> (String, bool) {
        let mut path = path.to_string();
        let mut rest = rest.to_string();
        if rest.starts_with('/') {
            rest = rest[1..].to_string();
            path = "/".into();
        }
        while !rest.is_empty() {
            let (name, tail) = match rest.find('/') {
                Some(i) => (rest[..i].to_string(), rest[i + 1..].to_string()),
                None => (rest.clone(), String::new()),
            };
            rest = tail;
            if name.is_empty() || name == "." {
                continue;
            }
            if name == ".." {
                if path.is_empty() {
                    path = "..".into();
                } else if path == ".." || path.ends_with("/..") {
                    path.push_str("/..");
                } else {
                    path = py_dirname(&path);
                    if path.is_empty() {
                        path = String::new();
                    }
                }
                continue;
            }
            let newpath = py_path_join(&[path.clone(), name]);
            let is_link = std::fs::symlink_metadata(&newpath).map(|m| m.file_type().is_symlink()).unwrap_or(false);
            if !is_link || depth > 40 {
                path = newpath;
                continue;
            }
            if let Some(known) = seen.get(&newpath) {
                match known {
                    Some(p) => {
                        path = p.clone();
                        continue;
                    }
                    None => {
                        // a symlink loop: keep the rest unresolved
                        return (py_path_join(&[newpath, rest]), false);
                    }
                }
            }
            seen.insert(newpath.clone(), None);
            let target = std::fs::read_link(&newpath).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
            let (resolved, ok) = join_real(&path, &target, seen, depth + 1);
            if !ok {
                return (py_path_join(&[resolved, rest]), false);
            }
            seen.insert(newpath, Some(resolved.clone()));
            path = resolved;
        }
        (path, true)
    }
    let start = if p.starts_with('/') { String::new() } else { cwd() };
    let (path, _) = join_real(&start, p, &mut HashMap::new(), 0);
    py_abspath(&path)
}

/// `posixpath.splitext`.
pub fn py_splitext(p: &str) -> (String, String) {
    let sep = p.rfind('/').map_or(-1, |i| i as i64);
    let dot = p.rfind('.').map_or(-1, |i| i as i64);
    if dot > sep {
        let start = (sep + 1) as usize;
        if p[start..dot as usize].chars().any(|c| c != '.') {
            return (p[..dot as usize].to_string(), p[dot as usize..].to_string());
        }
    }
    (p.to_string(), String::new())
}

pub(super) fn f_basename(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "basename", args, &["path"], false, false)?;
    Ok(Value::from(py_basename(&path_arg(&b, "path")?)))
}

pub(super) fn f_dirname(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "dirname", args, &["path"], false, false)?;
    Ok(Value::from(py_dirname(&path_arg(&b, "path")?)))
}

pub(super) fn f_expanduser(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "expanduser", args, &["path"], false, false)?;
    Ok(Value::from(py_expanduser(&path_arg(&b, "path")?)))
}

pub(super) fn f_expandvars(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "expandvars", args, &["path"], false, false)?;
    Ok(Value::from(py_expandvars(&path_arg(&b, "path")?)))
}

pub(super) fn f_realpath(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "realpath", args, &["path"], false, false)?;
    Ok(Value::from(py_realpath(&path_arg(&b, "path")?)))
}

pub(super) fn f_normpath(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "normpath", args, &["path"], false, false)?;
    Ok(Value::from(py_normpath(&path_arg(&b, "path")?)))
}

pub(super) fn f_relpath(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "relpath", args, &["path", "start"], false, false)?;
    let path = path_arg(&b, "path")?;
    if path.is_empty() {
        return Err(b.fail("no path specified"));
    }
    let start = match b.opt("start") {
        Some(v) if !v.is_none() => py_str(v),
        _ => ".".into(),
    };
    let sl: Vec<String> = py_abspath(&start).split('/').filter(|x| !x.is_empty()).map(String::from).collect();
    let pl: Vec<String> = py_abspath(&path).split('/').filter(|x| !x.is_empty()).map(String::from).collect();
    let common = sl.iter().zip(pl.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); sl.len() - common];
    parts.extend(pl[common..].iter().cloned());
    Ok(Value::from(if parts.is_empty() { ".".to_string() } else { parts.join("/") }))
}

pub(super) fn f_splitext(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "splitext", args, &["path"], false, false)?;
    let (root, ext) = py_splitext(&path_arg(&b, "path")?);
    Ok(list(vec![Value::from(root), Value::from(ext)]))
}

pub(super) fn f_path_join(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "path_join", args, &["paths"], false, false)?;
    let paths = b.defined("paths")?;
    if let Some(s) = paths.as_str() {
        return Ok(Value::from(s));
    }
    if !is_list(paths) {
        return Err(b.fail(format!("|path_join expects string or sequence, got {} instead.", type_name(paths))));
    }
    let parts: Vec<String> = items(paths).iter().map(py_str).collect();
    if parts.is_empty() {
        return Err(b.fail("join() missing 1 required positional argument: 'a'"));
    }
    Ok(Value::from(py_path_join(&parts)))
}

pub(super) fn f_commonpath(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "commonpath", args, &["paths"], false, false)?;
    let paths = b.defined("paths")?;
    if !is_list(paths) {
        return Err(b.fail(format!("|commonpath expects sequence, got {} instead.", type_name(paths))));
    }
    let paths: Vec<String> = items(paths).iter().map(py_str).collect();
    if paths.is_empty() {
        return Err(b.fail("commonpath() arg is an empty sequence"));
    }
    let abs = paths[0].starts_with('/');
    if paths.iter().any(|p| p.starts_with('/') != abs) {
        return Err(b.fail("Can't mix absolute and relative paths"));
    }
    let split: Vec<Vec<&str>> = paths.iter().map(|p| p.split('/').filter(|c| !c.is_empty() && *c != ".").collect()).collect();
    let first = &split[0];
    let mut n = first.len();
    for s in &split[1..] {
        n = n.min(first.iter().zip(s.iter()).take_while(|(a, b)| a == b).count());
    }
    Ok(Value::from(format!("{}{}", if abs { "/" } else { "" }, first[..n].join("/"))))
}

pub(super) fn f_fileglob(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "fileglob", args, &["pathname"], false, false)?;
    let pattern = b.text("pathname", "")?;
    let opts = glob::MatchOptions { require_literal_leading_dot: true, ..Default::default() };
    let mut out = Vec::new();
    if let Ok(paths) = glob::glob_with(&pattern, opts) {
        for p in paths.flatten() {
            if p.is_file() {
                out.push(Value::from(p.to_string_lossy().into_owned()));
            }
        }
    }
    Ok(list(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::eval;
    use minijinja::context;

    #[test]
    fn path_filters() {
        assert_eq!(py_basename("/a/b/"), "");
        assert_eq!(py_dirname("/a/b/"), "/a/b");
        assert_eq!(py_dirname("//a"), "//");
        assert_eq!(py_normpath("/a/./b/../c"), "/a/c");
        assert_eq!(py_normpath("//a//b"), "//a/b");
        assert_eq!(py_splitext("a/.b.c"), ("a/.b".to_string(), ".c".to_string()));
        assert_eq!(py_path_join(&["a".into(), "/b".into(), "c".into()]), "/b/c");
        assert_eq!(py_expanduser("a/~/x"), "a/~/x");
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap().to_string_lossy().into_owned();
        std::fs::create_dir(format!("{base}/real")).unwrap();
        std::fs::write(format!("{base}/real/f.txt"), "x").unwrap();
        std::fs::write(format!("{base}/real/.hidden.txt"), "x").unwrap();
        std::os::unix::fs::symlink(format!("{base}/real"), format!("{base}/link")).unwrap();
        assert_eq!(py_realpath(&format!("{base}/link/f.txt")), format!("{base}/real/f.txt"));
        assert_eq!(py_realpath(&format!("{base}/link/../nope/x")), format!("{base}/nope/x"));
        assert_eq!(eval("p | fileglob", context! { p => format!("{base}/link/*.txt") }), format!("['{base}/link/f.txt']"));
        assert_eq!(eval("p | relpath(s)", context! { p => "/a/b/c", s => "/a/x" }), "../b/c");
    }
}

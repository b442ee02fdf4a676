//! Ansible's Jinja tests on minijinja (`is defined`, `is version`, `is succeeded`, ...).
//!
//! minijinja's builtins are kept where they match Jinja2 (`defined`, `undefined`, `none`,
//! `string`, `number`, `integer`, `float`, `boolean`, `mapping`, `iterable`, `sameas`, `in`,
//! `eq`/`equalto`, `lt`, ... `odd`, `even`, `divisibleby`); the rest are added here.

use std::cmp::Ordering;
use std::path::Path;

use minijinja::value::{Rest, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, Value};

use super::filters::{Bound, bind, compile_py_regex, undefined_error};
use super::pyfmt::py_str;

type Args = Rest<ValueOrKwargs>;

/// Adds Ansible's tests to the environment.
pub fn register(env: &mut Environment<'static>) {
    env.add_test("match", t_match);
    env.add_test("search", t_search);
    env.add_test("regex", t_regex);
    env.add_test("version", t_version);
    env.add_test("version_compare", t_version);
    env.add_test("failed", t_failed);
    env.add_test("failure", t_failed);
    env.add_test("succeeded", t_succeeded);
    env.add_test("success", t_succeeded);
    env.add_test("successful", t_succeeded);
    env.add_test("changed", t_changed);
    env.add_test("change", t_changed);
    env.add_test("skipped", t_skipped);
    env.add_test("skip", t_skipped);
    env.add_test("reachable", t_reachable);
    env.add_test("unreachable", t_unreachable);
    env.add_test("timedout", t_timedout);
    env.add_test("finished", t_finished);
    env.add_test("started", t_started);
    env.add_test("sequence", t_sequence);
    env.add_test("contains", t_contains);
    env.add_test("subset", t_subset);
    env.add_test("issubset", t_subset);
    env.add_test("superset", t_superset);
    env.add_test("issuperset", t_superset);
    env.add_test("truthy", t_truthy);
    env.add_test("falsy", t_falsy);
    env.add_test("any", t_any);
    env.add_test("all", t_all);
    env.add_test("nan", t_nan);
    env.add_test("isnan", t_nan);
    env.add_test("file", t_file);
    env.add_test("is_file", t_file);
    env.add_test("directory", t_directory);
    env.add_test("is_dir", t_directory);
    env.add_test("link", t_link);
    env.add_test("is_link", t_link);
    env.add_test("exists", t_exists);
    env.add_test("link_exists", t_link_exists);
    env.add_test("abs", t_abs);
    env.add_test("is_abs", t_abs);
    env.add_test("same_file", t_same_file);
    env.add_test("is_same_file", t_same_file);
    env.add_test("mount", t_mount);
    env.add_test("is_mount", t_mount);
    env.add_test("vault_encrypted", t_vault_encrypted);
}

// ---------------------------------------------------------------------------------------------
// Regular expressions
// ---------------------------------------------------------------------------------------------

fn regex_test(name: &'static str, args: Args, default_type: &str) -> Result<bool, Error> {
    let b = bind("test", name, args, &["value", "pattern", "ignorecase", "multiline", "match_type"], false, false)?;
    let value = b.defined("value")?;
    let value = py_str(value);
    let pattern = b.text("pattern", "")?;
    let match_type = b.text("match_type", default_type)?;
    let mut flags = 0;
    if b.truthy("ignorecase", false)? {
        flags |= 1;
    }
    if b.truthy("multiline", false)? {
        flags |= 2;
    }
    match match_type.as_str() {
        "match" => flags |= 4,
        "search" => {}
        "fullmatch" => {
            let re = compile_py_regex(&format!("(?:{pattern})\\Z"), flags | 4).map_err(|e| b.fail(e))?;
            return Ok(re.is_match(&value));
        }
        _ => {}
    }
    let re = compile_py_regex(&pattern, flags).map_err(|e| b.fail(e))?;
    Ok(re.is_match(&value))
}

fn t_match(args: Args) -> Result<bool, Error> {
    regex_test("match", args, "match")
}

fn t_search(args: Args) -> Result<bool, Error> {
    regex_test("search", args, "search")
}

fn t_regex(args: Args) -> Result<bool, Error> {
    regex_test("regex", args, "search")
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

/// Why two versions cannot be compared, in the words of Python's `distutils.version` (and
/// Ansible's `version` test); each variant names the versions or the type it is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// `LooseVersion`s that Python 3 cannot order: a number against a string at one place.
    #[error("'<' not supported between instances of '{left}' and '{right}'")]
    Unorderable { a: String, b: String, left: &'static str, right: &'static str },
    #[error("invalid version number '{version}'")]
    Strict { version: String },
    #[error("invalid semantic version '{version}'")]
    Semver { version: String },
    #[error("The pep440 version_type requires the Python 'packaging' library")]
    Pep440,
    #[error("Invalid version type ({version_type}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'")]
    Type { version_type: String },
}

/// A component of a `LooseVersion`.
#[derive(Clone, Debug, PartialEq)]
enum Loose {
    Num(u128),
    Str(String),
}

/// `LooseVersion(v).version`: runs of digits (as numbers) and of lowercase letters, and the
/// text between them; dots dropped.
fn loose_parse(v: &str) -> Vec<Loose> {
    let mut out = Vec::new();
    let mut other = String::new();
    let chars: Vec<char> = v.chars().collect();
    let mut i = 0;
    let flush = |other: &mut String, out: &mut Vec<Loose>| {
        if !other.is_empty() {
            out.push(Loose::Str(std::mem::take(other)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            flush(&mut other, &mut out);
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(s.parse().map(Loose::Num).unwrap_or(Loose::Str(s)));
        } else if c.is_ascii_lowercase() {
            flush(&mut other, &mut out);
            let start = i;
            while i < chars.len() && chars[i].is_ascii_lowercase() {
                i += 1;
            }
            out.push(Loose::Str(chars[start..i].iter().collect()));
        } else if c == '.' {
            flush(&mut other, &mut out);
            i += 1;
        } else {
            other.push(c);
            i += 1;
        }
    }
    flush(&mut other, &mut out);
    out
}

/// Compares two `LooseVersion`s like Python 3 compares their lists (a number against a
/// string cannot be ordered).
fn loose_cmp(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (x, y) = (loose_parse(a), loose_parse(b));
    if x == y {
        return Ok(Ordering::Equal);
    }
    for (p, q) in x.iter().zip(y.iter()) {
        if p == q {
            continue;
        }
        return match (p, q) {
            (Loose::Num(m), Loose::Num(n)) => Ok(m.cmp(n)),
            (Loose::Str(m), Loose::Str(n)) => Ok(m.cmp(n)),
            (Loose::Num(_), Loose::Str(_)) => Err(VersionError::Unorderable { a: a.to_string(), b: b.to_string(), left: "int", right: "str" }),
            (Loose::Str(_), Loose::Num(_)) => Err(VersionError::Unorderable { a: a.to_string(), b: b.to_string(), left: "str", right: "int" }),
        };
    }
    Ok(x.len().cmp(&y.len()))
}

type Strict = ((u64, u64, u64), Option<(char, u64)>);

fn strict_parse(v: &str) -> Result<Strict, VersionError> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r"^([0-9]+)\.([0-9]+)(\.([0-9]+))?([ab]([0-9]+))?$").unwrap());
    let bad = || VersionError::Strict { version: v.to_string() };
    let c = RE.captures(v).ok_or_else(bad)?;
    let num = |i: usize| -> Result<u64, VersionError> { c.get(i).map_or(Ok(0), |m| m.as_str().parse().map_err(|_| bad())) };
    let pre = match c.get(5) {
        Some(m) => Some((m.as_str().chars().next().unwrap(), num(6)?)),
        None => None,
    };
    Ok(((num(1)?, num(2)?, num(4)?), pre))
}

fn strict_cmp(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (x, y) = (strict_parse(a)?, strict_parse(b)?);
    Ok(match x.0.cmp(&y.0) {
        Ordering::Equal => match (x.1, y.1) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(p), Some(q)) => p.cmp(&q),
        },
        o => o,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SemId {
    Num(u128),
    Alpha(String),
}

impl PartialOrd for SemId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SemId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SemId::Num(a), SemId::Num(b)) => a.cmp(b),
            (SemId::Alpha(a), SemId::Alpha(b)) => a.cmp(b),
            (SemId::Num(_), SemId::Alpha(_)) => Ordering::Less,
            (SemId::Alpha(_), SemId::Num(_)) => Ordering::Greater,
        }
    }
}

/// A semantic version: the core and the pre-release identifiers (build metadata dropped).
type SemVer = ((u128, u128, u128), Vec<SemId>);

fn semver_parse(v: &str) -> Result<SemVer, VersionError> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(concat!(
            r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)",
            r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?",
            r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
        ))
        .unwrap()
    });
    let bad = || VersionError::Semver { version: v.to_string() };
    let c = RE.captures(v).ok_or_else(bad)?;
    let n = |i: usize| c[i].parse::<u128>().map_err(|_| bad());
    let pre = c.get(4).map_or(Vec::new(), |m| {
        m.as_str()
            .split('.')
            .map(|x| match x.parse::<u128>() {
                Ok(n) if x.chars().all(|c| c.is_ascii_digit()) => SemId::Num(n),
                _ => SemId::Alpha(x.to_string()),
            })
            .collect()
    });
    Ok(((n(1)?, n(2)?, n(3)?), pre))
}

fn semver_cmp(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (x, y) = (semver_parse(a)?, semver_parse(b)?);
    Ok(match x.0.cmp(&y.0) {
        Ordering::Equal => match (x.1.is_empty(), y.1.is_empty()) {
            (true, true) => Ordering::Equal,
            (false, true) => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, false) => x.1.cmp(&y.1),
        },
        o => o,
    })
}

/// Compares two version strings the way Ansible's `version` test does: `version_type` is
/// `loose` (the default, `LooseVersion`), `strict` (`StrictVersion`) or `semver`/`semantic`.
pub fn compare_versions(a: &str, b: &str, version_type: &str) -> Result<Ordering, VersionError> {
    match version_type {
        "loose" => loose_cmp(a, b),
        "strict" => strict_cmp(a, b),
        "semver" | "semantic" => semver_cmp(a, b),
        "pep440" => Err(VersionError::Pep440),
        other => Err(VersionError::Type { version_type: other.to_string() }),
    }
}

/// Ansible's `version_compare(value, version, operator='eq', strict=None, version_type=None)`
/// on bound arguments (shared by the `version` test and the `version_compare` filter).
pub(crate) fn version_compare_bound(b: &Bound) -> Result<bool, Error> {
    let value = b.defined("value")?;
    let version = b.opt("version").cloned().unwrap_or(Value::from(""));
    if version.is_undefined() {
        return Err(undefined_error(&version));
    }
    let operator = b.text("operator", "eq")?;
    let strict = b.opt("strict").filter(|v| !v.is_none());
    let version_type = b.opt("version_type").filter(|v| !v.is_none());
    if strict.is_some() && version_type.is_some() {
        return Err(b.fail("Cannot specify both 'strict' and 'version_type'"));
    }
    if !value.is_true() {
        return Err(b.fail("Input version value cannot be empty"));
    }
    if !version.is_true() {
        return Err(b.fail("Version parameter to compare against cannot be empty"));
    }
    let vtype = if strict.is_some_and(|s| s.is_true()) { "strict".to_string() } else { version_type.map(py_str).unwrap_or_else(|| "loose".into()) };
    let op = match operator.as_str() {
        "==" | "=" | "eq" => "eq",
        "<" | "lt" => "lt",
        "<=" | "le" => "le",
        ">" | "gt" => "gt",
        ">=" | "ge" => "ge",
        "!=" | "<>" | "ne" => "ne",
        other => {
            return Err(b.fail(format!(
                "Invalid operator type ({other}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"
            )));
        }
    };
    if !matches!(vtype.as_str(), "loose" | "strict" | "semver" | "semantic" | "pep440") {
        return Err(b.fail(format!("Invalid version type ({vtype}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'")));
    }
    let ord = compare_versions(&py_str(value), &py_str(&version), &vtype).map_err(|e| b.fail(format!("Version comparison failed: {e}")))?;
    Ok(match op {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn t_version(args: Args) -> Result<bool, Error> {
    let b = bind("test", "version", args, &["value", "version", "operator", "strict", "version_type"], false, false)?;
    version_compare_bound(&b)
}

// ---------------------------------------------------------------------------------------------
// Task results
// ---------------------------------------------------------------------------------------------

fn result_arg(name: &'static str, args: Args) -> Result<(Bound, Value), Error> {
    let b = bind("test", name, args, &["result"], false, false)?;
    let r = b.defined("result")?.clone();
    if r.kind() != ValueKind::Map {
        return Err(b.fail(format!("The '{name}' test expects a dictionary")));
    }
    Ok((b, r))
}

fn key(r: &Value, k: &str) -> Value {
    r.get_item(&Value::from(k)).unwrap_or(Value::UNDEFINED)
}

fn has_key(r: &Value, k: &str) -> bool {
    !key(r, k).is_undefined()
}

fn t_failed(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("failed", args)?;
    Ok(key(&r, "failed").is_true())
}

fn t_succeeded(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("succeeded", args)?;
    Ok(!key(&r, "failed").is_true())
}

fn t_unreachable(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("unreachable", args)?;
    Ok(key(&r, "unreachable").is_true())
}

fn t_reachable(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("reachable", args)?;
    Ok(!key(&r, "unreachable").is_true())
}

fn t_timedout(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("timedout", args)?;
    let t = key(&r, "timedout");
    Ok(t.is_true() && key(&t, "period").is_true())
}

fn t_changed(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("changed", args)?;
    if has_key(&r, "changed") {
        return Ok(key(&r, "changed").is_true());
    }
    let results = key(&r, "results");
    if results.kind() == ValueKind::Seq {
        let items: Vec<Value> = results.try_iter().map(|i| i.collect()).unwrap_or_default();
        if items.first().is_some_and(|f| f.kind() == ValueKind::Map) {
            return Ok(items.iter().any(|res| key(res, "changed").is_true()));
        }
    }
    Ok(false)
}

fn t_skipped(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("skipped", args)?;
    Ok(key(&r, "skipped").is_true())
}

fn t_finished(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("finished", args)?;
    Ok(if has_key(&r, "finished") { key(&r, "finished").is_true() } else { true })
}

fn t_started(args: Args) -> Result<bool, Error> {
    let (_, r) = result_arg("started", args)?;
    Ok(if has_key(&r, "started") { key(&r, "started").is_true() } else { true })
}

// ---------------------------------------------------------------------------------------------
// Collections and truthiness
// ---------------------------------------------------------------------------------------------

/// Jinja2's `sequence`: anything with a length and item access (strings, lists, dicts).
fn t_sequence(args: Args) -> Result<bool, Error> {
    let b = bind("test", "sequence", args, &["value"], false, false)?;
    let v = b.req("value")?;
    Ok(matches!(v.kind(), ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Bytes) || v.is_undefined())
}

/// Python's `item in container`.
pub(crate) fn py_contains(container: &Value, item: &Value) -> bool {
    match container.kind() {
        ValueKind::String => match item.as_str() {
            Some(s) => container.as_str().unwrap_or("").contains(s),
            None => false,
        },
        ValueKind::Map => !container.get_item(item).unwrap_or(Value::UNDEFINED).is_undefined(),
        _ => container.try_iter().map(|mut it| it.any(|x| &x == item)).unwrap_or(false),
    }
}

fn t_contains(args: Args) -> Result<bool, Error> {
    let b = bind("test", "contains", args, &["seq", "value"], false, false)?;
    let seq = b.defined("seq")?;
    Ok(py_contains(seq, b.req("value")?))
}

fn collection_items(b: &Bound, p: &str) -> Result<Vec<Value>, Error> {
    let v = b.defined(p)?;
    match v.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => Ok(v.try_iter().map(|i| i.collect()).unwrap_or_default()),
        _ => Err(b.fail(format!("'{}' object is not iterable", super::filters::type_name(v)))),
    }
}

fn t_subset(args: Args) -> Result<bool, Error> {
    let b = bind("test", "subset", args, &["a", "b"], false, false)?;
    let (a, c) = (collection_items(&b, "a")?, collection_items(&b, "b")?);
    Ok(a.iter().all(|x| c.contains(x)))
}

fn t_superset(args: Args) -> Result<bool, Error> {
    let b = bind("test", "superset", args, &["a", "b"], false, false)?;
    let (a, c) = (collection_items(&b, "a")?, collection_items(&b, "b")?);
    Ok(c.iter().all(|x| a.contains(x)))
}

/// `ansible.module_utils.parsing.convert_bool.boolean` (strict): `None` when not a boolean.
pub fn convert_bool(v: &Value) -> Option<bool> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true()),
        ValueKind::String => match v.as_str().unwrap_or("").trim().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        ValueKind::Number => {
            let x = f64::try_from(v.clone()).ok()?;
            if x == 1.0 {
                Some(true)
            } else if x == 0.0 {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn truthy(name: &'static str, args: Args) -> Result<bool, Error> {
    let b = bind("test", name, args, &["value", "convert_bool"], false, false)?;
    let v = b.defined("value")?;
    if b.truthy("convert_bool", false)?
        && let Some(x) = convert_bool(v)
    {
        return Ok(x);
    }
    Ok(v.is_true())
}

fn t_truthy(args: Args) -> Result<bool, Error> {
    truthy("truthy", args)
}

fn t_falsy(args: Args) -> Result<bool, Error> {
    truthy("falsy", args).map(|x| !x)
}

fn t_any(args: Args) -> Result<bool, Error> {
    let b = bind("test", "any", args, &["value"], false, false)?;
    Ok(collection_items(&b, "value")?.iter().any(Value::is_true))
}

fn t_all(args: Args) -> Result<bool, Error> {
    let b = bind("test", "all", args, &["value"], false, false)?;
    Ok(collection_items(&b, "value")?.iter().all(Value::is_true))
}

fn t_nan(args: Args) -> Result<bool, Error> {
    let b = bind("test", "nan", args, &["value"], false, false)?;
    let v = b.defined("value")?;
    Ok(v.kind() == ValueKind::Number && f64::try_from(v.clone()).is_ok_and(f64::is_nan))
}

fn t_vault_encrypted(args: Args) -> Result<bool, Error> {
    let b = bind("test", "vault_encrypted", args, &["value"], false, false)?;
    let _ = b.req("value")?;
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// Paths (on the machine running the playbook, like Ansible's)
// ---------------------------------------------------------------------------------------------

fn path_of(name: &'static str, args: Args) -> Result<String, Error> {
    let b = bind("test", name, args, &["path"], false, false)?;
    let v = b.defined("path")?;
    match v.as_str() {
        Some(s) => Ok(s.to_string()),
        None => Err(b.fail(format!("expected str, bytes or os.PathLike object, not {}", super::filters::type_name(v)))),
    }
}

fn t_file(args: Args) -> Result<bool, Error> {
    Ok(Path::new(&path_of("file", args)?).is_file())
}

fn t_directory(args: Args) -> Result<bool, Error> {
    Ok(Path::new(&path_of("directory", args)?).is_dir())
}

fn t_link(args: Args) -> Result<bool, Error> {
    let p = path_of("link", args)?;
    Ok(std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
}

fn t_exists(args: Args) -> Result<bool, Error> {
    Ok(Path::new(&path_of("exists", args)?).exists())
}

fn t_link_exists(args: Args) -> Result<bool, Error> {
    Ok(std::fs::symlink_metadata(path_of("link_exists", args)?).is_ok())
}

fn t_abs(args: Args) -> Result<bool, Error> {
    Ok(path_of("abs", args)?.starts_with('/'))
}

fn t_same_file(args: Args) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let b = bind("test", "same_file", args, &["f1", "f2"], false, false)?;
    let (f1, f2) = (b.text("f1", "")?, b.text("f2", "")?);
    let m1 = std::fs::metadata(&f1).map_err(|e| b.fail(format!("[Errno 2] {e}: '{f1}'")))?;
    let m2 = std::fs::metadata(&f2).map_err(|e| b.fail(format!("[Errno 2] {e}: '{f2}'")))?;
    Ok(m1.dev() == m2.dev() && m1.ino() == m2.ino())
}

fn t_mount(args: Args) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let p = path_of("mount", args)?;
    let Ok(m) = std::fs::symlink_metadata(&p) else { return Ok(false) };
    if m.file_type().is_symlink() {
        return Ok(false);
    }
    let parent = std::fs::metadata(format!("{p}/..")).ok();
    Ok(match parent {
        None => false,
        Some(pm) => pm.dev() != m.dev() || pm.ino() == m.ino(),
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use minijinja::context;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        crate::filters::register(&mut env);
        register(&mut env);
        env
    }

    fn check(env: &Environment<'static>, expr: &str, ctx: Value) -> Result<bool, String> {
        env.compile_expression(expr).and_then(|e| e.eval(ctx)).map(|v| v.is_true()).map_err(|e| e.to_string())
    }

    #[test]
    fn loose_versions_like_python() {
        use Ordering::*;
        // LooseVersion results from Python
        for (a, b, want) in [
            ("1.2.3", "1.2.10", Less),
            ("1.2", "1.2.0", Less),
            ("2.0a", "2.0", Greater),
            ("1.0-rc1", "1.0", Greater),
            ("2.6.32-754.el6", "2.6.32-754.el6", Equal),
            ("5.4.0-150-generic", "5.15", Less),
            ("1.A", "1.B", Less),
            ("22.04", "20.04", Greater),
        ] {
            assert_eq!(compare_versions(a, b, "loose"), Ok(want), "{a} vs {b}");
        }
        assert_eq!(compare_versions("1.a", "1.1", "loose").map_err(|e| e.to_string()), Err("'<' not supported between instances of 'str' and 'int'".into()));
        assert_eq!(compare_versions("1.10", "1.9", "strict"), Ok(Greater));
        assert_eq!(compare_versions("1.10a1", "1.10", "strict"), Ok(Less));
        assert_eq!(compare_versions("1.10.0", "1.10", "strict"), Ok(Equal));
        assert!(compare_versions("1.x", "1.9", "strict").is_err());
        assert_eq!(compare_versions("1.0.0-rc.2", "1.0.0-rc.10", "semver"), Ok(Less));
        assert_eq!(compare_versions("1.0.0-alpha", "1.0.0-1", "semver"), Ok(Greater));
        assert_eq!(compare_versions("1.0.0+b1", "1.0.0+b2", "semver"), Ok(Equal));
        assert!(compare_versions("1.0", "1.0.0", "semver").is_err());
        let e = compare_versions("1.x", "1.9", "strict").unwrap_err();
        assert_eq!((e.to_string(), &e), ("invalid version number '1.x'".to_string(), &VersionError::Strict { version: "1.x".into() }));
        assert_eq!(compare_versions("1.0.0", "1.0", "semver").unwrap_err().to_string(), "invalid semantic version '1.0'");
        assert_eq!(compare_versions("1", "2", "pep440").unwrap_err().to_string(), "The pep440 version_type requires the Python 'packaging' library");
        assert_eq!(
            compare_versions("1", "2", "bogus").unwrap_err().to_string(),
            "Invalid version type (bogus). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'"
        );
    }

    #[test]
    fn version_operators() {
        let env = env();
        for (expr, want) in [
            ("'1.0' is version('1.0.0', '<')", true),
            ("'1.0' is version('1.0', '==')", true),
            ("'1.0' is version('1.0', '=')", true),
            ("'1.0' is version('1.1', 'lt')", true),
            ("'1.0' is version('1.0', 'le')", true),
            ("'1.0' is version('0.9', '>')", true),
            ("'1.0' is version('1.0', '>=')", true),
            ("'1.0' is version('1.0.0', '!=')", true),
            ("'1.0' is version('1.0.0', '<>')", true),
            ("'1.0' is version('1.0', 'ne')", false),
            ("'1.0' is version_compare('0.9', 'gt')", true),
            ("'1.10' is version('1.9', 'gt', strict=True)", true),
            ("'1.0.0-rc.1' is version('1.0.0', 'lt', version_type='semver')", true),
            ("['1.2', '1.10'] | select('version', '1.5', '>') | list == ['1.10']", true),
        ] {
            assert_eq!(check(&env, expr, context! {}), Ok(want), "{expr}");
        }
        let err = check(&env, "'1.0' is version('1.0', 'bogus')", context! {}).unwrap_err();
        assert!(err.contains("The test plugin 'ansible.builtin.version' failed: Invalid operator type (bogus)"), "{err}");
        let err = check(&env, "'' is version('1.0')", context! {}).unwrap_err();
        assert!(err.contains("Input version value cannot be empty"), "{err}");
    }

    #[test]
    fn task_result_tests() {
        let env = env();
        let r = |j: serde_json::Value| context! { r => Value::from(minijinja::value::Serde(j)) };
        use serde_json::json;
        assert_eq!(check(&env, "r is changed", r(json!({"changed": true, "failed": false}))), Ok(true));
        assert_eq!(check(&env, "r is succeeded", r(json!({"changed": true, "failed": false}))), Ok(true));
        assert_eq!(check(&env, "r is success", r(json!({"failed": true}))), Ok(false));
        assert_eq!(check(&env, "r is failed", r(json!({"failed": true}))), Ok(true));
        assert_eq!(check(&env, "r is failure", r(json!({}))), Ok(false));
        assert_eq!(check(&env, "r is skipped", r(json!({"skipped": true}))), Ok(true));
        assert_eq!(check(&env, "r is skip", r(json!({}))), Ok(false));
        assert_eq!(check(&env, "r is change", r(json!({"results": [{"changed": false}, {"changed": true}]}))), Ok(true));
        assert_eq!(check(&env, "r is changed", r(json!({"results": [1]}))), Ok(false));
        let err = check(&env, "r is failed", r(json!("x"))).unwrap_err();
        assert!(err.contains("The 'failed' test expects a dictionary"), "{err}");
    }

    #[test]
    fn regex_tests_anchor_like_python() {
        let env = env();
        assert_eq!(check(&env, "'abc' is match('b')", context! {}), Ok(false));
        assert_eq!(check(&env, "'abc' is match('a')", context! {}), Ok(true));
        assert_eq!(check(&env, "'abc' is search('b')", context! {}), Ok(true));
        assert_eq!(check(&env, "'abc' is regex('B', ignorecase=true)", context! {}), Ok(true));
        assert_eq!(check(&env, "'abc' is regex('abc', match_type='fullmatch')", context! {}), Ok(true));
        assert_eq!(check(&env, "'abcd' is regex('abc', match_type='fullmatch')", context! {}), Ok(false));
        assert_eq!(check(&env, "x is search('^b', multiline=true)", context! { x => "a\nb" }), Ok(true));
        assert_eq!(check(&env, "x is search('^b')", context! { x => "a\nb" }), Ok(false));
        assert_eq!(check(&env, "x is match('a$')", context! { x => "a\n" }), Ok(true));
        assert_eq!(check(&env, "123 is match('12')", context! {}), Ok(true));
    }

    #[test]
    fn collection_and_truth_tests() {
        let env = env();
        for (expr, want) in [
            ("[1, 2] is subset([1, 2, 3])", true),
            ("[1, 4] is issubset([1, 2, 3])", false),
            ("[1, 2, 3] is superset([1])", true),
            ("[1, 2] is contains(1)", true),
            ("'abc' is contains('b')", true),
            ("{'a': 1} is contains('a')", true),
            ("'x' is sequence", true),
            ("{} is sequence", true),
            ("1 is sequence", false),
            ("'no' is truthy", true),
            ("'no' is truthy(convert_bool=True)", false),
            ("' Y ' is truthy(convert_bool=True)", true),
            ("'' is falsy", true),
            ("[0] is truthy", true),
            ("[1, 0] is any", true),
            ("[1, 0] is all", false),
            ("1.0 is nan", false),
            ("1 is number", true),
            ("1.0 is integer", false),
        ] {
            assert_eq!(check(&env, expr, context! {}), Ok(want), "{expr}");
        }
    }

    #[test]
    fn path_tests() {
        let env = env();
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_string_lossy().into_owned();
        let file = format!("{base}/f");
        let link = format!("{base}/l");
        let dangling = format!("{base}/d");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink(&file, &link).unwrap();
        std::os::unix::fs::symlink(format!("{base}/missing"), &dangling).unwrap();
        let ctx = || context! { base => &base, file => &file, link => &link, dangling => &dangling };
        for (expr, want) in [
            ("base is directory", true),
            ("base is is_dir", true),
            ("file is directory", false),
            ("file is file", true),
            ("link is is_file", true),
            ("link is link", true),
            ("file is is_link", false),
            ("dangling is exists", false),
            ("dangling is link_exists", true),
            ("file is exists", true),
            ("file is abs", true),
            ("'rel/x' is is_abs", false),
            ("link is same_file(file)", true),
            ("base is mount", false),
            ("'/' is mount", true),
        ] {
            assert_eq!(check(&env, expr, ctx()), Ok(want), "{expr}");
        }
    }
}

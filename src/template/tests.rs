//! Ansible's Jinja tests on minijinja (`is match`, `is version`, `is succeeded`, ...).

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::filters::compile_regex;
use super::pyfmt::py_str;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Adds Ansible's tests to the environment.
pub fn register(env: &mut Environment<'static>) {
    env.add_test("match", |v: Value, pattern: String, kwargs: Kwargs| -> Result<bool, Error> { regex_test(&v, &pattern, kwargs, "match") });
    env.add_test("search", |v: Value, pattern: String, kwargs: Kwargs| -> Result<bool, Error> { regex_test(&v, &pattern, kwargs, "search") });
    env.add_test("regex", |v: Value, pattern: String, kwargs: Kwargs| -> Result<bool, Error> {
        let mt: Option<String> = kwargs.get("match_type")?;
        let mt = mt.unwrap_or_else(|| "search".into());
        regex_test(&v, &pattern, kwargs, &mt)
    });
    for name in ["version", "version_compare"] {
        env.add_test(name, |v: Value, other: Value, op: Option<String>, kwargs: Kwargs| -> Result<bool, Error> {
            let kop: Option<String> = kwargs.get("operator")?;
            let _: Option<bool> = kwargs.get("strict")?;
            let _: Option<String> = kwargs.get("version_type")?;
            kwargs.assert_all_used()?;
            version_cmp(&py_str(&v), &py_str(&other), op.or(kop).as_deref().unwrap_or("eq"))
        });
    }
    for name in ["succeeded", "success"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { Ok(!result_flag(&v, "failed")?) });
    }
    for name in ["failed", "failure"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { result_flag(&v, "failed") });
    }
    for name in ["changed", "change"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { result_flag(&v, "changed") });
    }
    for name in ["skipped", "skip"] {
        env.add_test(name, |v: Value| -> Result<bool, Error> { result_flag(&v, "skipped") });
    }
    env.add_test("contains", |seq: Value, item: Value| -> bool { seq.try_iter().map(|mut it| it.any(|x| x == item)).unwrap_or(false) });
    env.add_test("subset", |a: Value, b: Value| -> bool {
        let bl: Vec<Value> = b.try_iter().map(Iterator::collect).unwrap_or_default();
        a.try_iter().map(|mut it| it.all(|x| bl.contains(&x))).unwrap_or(false)
    });
    env.add_test("superset", |a: Value, b: Value| -> bool {
        let al: Vec<Value> = a.try_iter().map(Iterator::collect).unwrap_or_default();
        b.try_iter().map(|mut it| it.all(|x| al.contains(&x))).unwrap_or(false)
    });
    env.add_test("file", |p: String| std::path::Path::new(&p).is_file());
    env.add_test("directory", |p: String| std::path::Path::new(&p).is_dir());
    env.add_test("link", |p: String| std::path::Path::new(&p).is_symlink());
    env.add_test("exists", |p: String| std::path::Path::new(&p).exists());
    env.add_test("abs", |p: String| p.starts_with('/'));
    env.add_test("truthy", |v: Value| v.is_true());
    env.add_test("falsy", |v: Value| !v.is_true());
    env.add_test("boolean", |v: Value| v.kind() == ValueKind::Bool);
    env.add_test("integer", |v: Value| v.kind() == ValueKind::Number && v.is_integer());
    env.add_test("float", |v: Value| v.kind() == ValueKind::Number && !v.is_integer());
}

/// `failed`/`changed`/`skipped` of a registered result (with loop results considered).
fn result_flag(v: &Value, key: &str) -> Result<bool, Error> {
    if v.kind() != ValueKind::Map {
        return Err(err(format!("The '{key}' test expects a dictionary (a registered result)")));
    }
    let direct = v.get_attr(key).map(|x| x.is_true()).unwrap_or(false);
    Ok(direct)
}

fn regex_test(v: &Value, pattern: &str, kwargs: Kwargs, how: &str) -> Result<bool, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    let _: Option<String> = kwargs.get("match_type")?;
    kwargs.assert_all_used()?;
    let re = compile_regex(pattern, ignorecase.unwrap_or(false), multiline.unwrap_or(false))?;
    let text = py_str(v);
    Ok(match how {
        "match" => re.find(&text).is_some_and(|m| m.start() == 0) || re.find_iter(&text).any(|m| m.start() == 0),
        "fullmatch" => re.find(&text).is_some_and(|m| m.start() == 0 && m.end() == text.len()),
        _ => re.is_match(&text),
    })
}

/// A part of a LooseVersion: numbers compare as numbers, words as text.
#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Part {
    Num(u64),
    Word(String),
}

fn loose_parts(v: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut num = None;
    for c in v.chars() {
        let is_digit = c.is_ascii_digit();
        if c == '.' || (num.is_some() && num != Some(is_digit)) {
            if !cur.is_empty() {
                out.push(if num == Some(true) { Part::Num(cur.parse().unwrap_or(0)) } else { Part::Word(std::mem::take(&mut cur)) });
                cur.clear();
            }
            num = None;
            if c == '.' {
                continue;
            }
        }
        cur.push(c);
        num = Some(is_digit);
    }
    if !cur.is_empty() {
        out.push(if num == Some(true) { Part::Num(cur.parse().unwrap_or(0)) } else { Part::Word(cur) });
    }
    out
}

/// Compares versions as Ansible's `version` test does by default (LooseVersion).
pub fn version_cmp(a: &str, b: &str, op: &str) -> Result<bool, Error> {
    let (x, y) = (loose_parts(a), loose_parts(b));
    let ord = x.cmp(&y);
    use std::cmp::Ordering::*;
    Ok(match op {
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        other => return Err(err(format!("Invalid operator type ({other})"))),
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn loose_versions() {
        assert!(version_cmp("1.10.0", "1.9", ">").unwrap());
        assert!(version_cmp("12.4", "12.10", "<").unwrap());
        assert!(version_cmp("2.19.1", "2.19.1", "eq").unwrap());
        assert!(version_cmp("1.2.3a", "1.2.3", ">").unwrap());
    }
}

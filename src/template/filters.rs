//! Ansible's filters on minijinja. Where minijinja's builtin already behaves as Ansible's, it
//! is kept; the ones that differ (bool, int, float, string, default, flatten, ...) are replaced.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::pyfmt::{float_repr, py_str};
use super::{to_json, to_value};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Adds Ansible's filters to the environment.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("bool", |v: Value| Value::from(ansible_bool(&v)));
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("string", |v: Value| Value::from(py_str(&v)));
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("basename", |s: String| s.rsplit('/').next().unwrap_or_default().to_string());
    env.add_filter("dirname", dirname);
    env.add_filter("expanduser", expanduser);
    env.add_filter("realpath", |s: String| std::fs::canonicalize(&s).map(|p| p.display().to_string()).unwrap_or(s));
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("to_json", to_json_filter);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", |s: String| serde_json::from_str::<Json>(&s).map(|j| to_value(&j)).map_err(|e| err(format!("from_json: {e}"))));
    env.add_filter("to_yaml", |v: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let indent: Option<usize> = kwargs.get("indent")?;
        let _: Option<Value> = kwargs.get("default_flow_style")?;
        let _: Option<Value> = kwargs.get("width")?;
        kwargs.assert_all_used()?;
        super::pyfmt::to_yaml(&v, indent.unwrap_or(2), false).map(Value::from).map_err(err)
    });
    env.add_filter("to_nice_yaml", |v: Value, kwargs: Kwargs| -> Result<Value, Error> {
        let indent: Option<usize> = kwargs.get("indent")?;
        let _: Option<Value> = kwargs.get("width")?;
        kwargs.assert_all_used()?;
        super::pyfmt::to_yaml(&v, indent.unwrap_or(4), true).map(Value::from).map_err(err)
    });
    env.add_filter("from_yaml", |s: String| crate::yaml::parse_json(&s).map(|j| to_value(&j)).map_err(|e| err(format!("from_yaml: {e}"))));
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("union", |a: Value, b: Value| -> Result<Value, Error> {
        let mut all = list_of(&a)?;
        all.extend(list_of(&b)?);
        Ok(Value::from(unique_vals(all)))
    });
    env.add_filter("intersect", |a: Value, b: Value| -> Result<Value, Error> {
        let bl = list_of(&b)?;
        Ok(Value::from(unique_vals(list_of(&a)?.into_iter().filter(|x| bl.contains(x)).collect())))
    });
    env.add_filter("difference", |a: Value, b: Value| -> Result<Value, Error> {
        let bl = list_of(&b)?;
        Ok(Value::from(unique_vals(list_of(&a)?.into_iter().filter(|x| !bl.contains(x)).collect())))
    });
    env.add_filter("symmetric_difference", |a: Value, b: Value| -> Result<Value, Error> {
        let (al, bl) = (list_of(&a)?, list_of(&b)?);
        let isect: Vec<Value> = al.iter().filter(|x| bl.contains(x)).cloned().collect();
        let mut all = al.clone();
        all.extend(bl);
        Ok(Value::from(unique_vals(all).into_iter().filter(|x| !isect.contains(x)).collect::<Vec<_>>()))
    });
    env.add_filter("flatten", flatten);
    env.add_filter("zip", |a: Value, rest: Rest<Value>| -> Result<Value, Error> { zip(a, rest.0, false) });
    env.add_filter("zip_longest", |a: Value, rest: Rest<Value>, kwargs: Kwargs| -> Result<Value, Error> {
        let _: Option<Value> = kwargs.get("fillvalue")?;
        zip(a, rest.0, true)
    });
    env.add_filter("ternary", |v: Value, t: Value, f: Value, n: Option<Value>| -> Value {
        match n {
            Some(n) if v.is_none() && !n.is_none() => n,
            _ => {
                if v.is_true() {
                    t
                } else {
                    f
                }
            }
        }
    });
    env.add_filter("mandatory", |v: Value, msg: Option<String>| -> Result<Value, Error> {
        if v.is_undefined() {
            return Err(Error::new(ErrorKind::UndefinedError, msg.unwrap_or_else(|| "Mandatory variable not defined.".into())));
        }
        Ok(v)
    });
    env.add_filter("b64encode", |s: String| base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
    env.add_filter("b64decode", |s: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim().as_bytes()).map_err(|e| err(format!("b64decode: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    });
    env.add_filter("hash", |v: Value, kind: Option<String>| hash(&py_str(&v), kind.as_deref().unwrap_or("sha1")));
    env.add_filter("checksum", |v: Value| hash(&py_str(&v), "sha1"));
    env.add_filter("sha1", |v: Value| hash(&py_str(&v), "sha1"));
    env.add_filter("md5", |v: Value| hash(&py_str(&v), "md5"));
    env.add_filter("quote", |v: Value| crate::modules::command::shlex_quote(&py_str(&v)));
    env.add_filter("urlsplit", urlsplit);
    env.add_filter("type_debug", |v: Value| super::py_type(&v).to_string());
    env.add_filter("split", |s: String, sep: Option<String>, maxsplit: Option<i64>| -> Value { Value::from(py_split(&s, sep.as_deref(), maxsplit.unwrap_or(-1))) });
    env.add_filter("human_to_bytes", human_to_bytes);
    env.add_filter("human_readable", human_readable);
    env.add_filter("version_compare", |a: Value, b: Value, op: Option<String>| -> Result<bool, Error> { super::tests::version_cmp(&py_str(&a), &py_str(&b), op.as_deref().unwrap_or("eq")) });
    env.add_filter("unique", |a: Value| -> Result<Value, Error> { Ok(Value::from(unique_vals(list_of(&a)?))) });
    env.add_filter("to_datetime", |s: String| -> Result<String, Error> { Err(err(format!("to_datetime is not supported by airlock ({s})"))) });
}

/// Ansible's `bool` filter: yes/on/true/1 (any case) and true/1 are True; everything else False.
pub fn ansible_bool(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => v.as_i64() == Some(1) || f64::try_from(v.clone()).ok() == Some(1.0),
        ValueKind::String => matches!(v.as_str().unwrap_or_default().to_lowercase().as_str(), "yes" | "on" | "true" | "1"),
        _ => false,
    }
}

/// `default(value, default='', boolean=False)`: only undefined is replaced, unless `boolean`.
fn default(v: Value, other: Option<Value>, boolean: Option<bool>) -> Value {
    if v.is_undefined() || (boolean.unwrap_or(false) && !v.is_true()) {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        v
    }
}

/// Jinja's `int(default=0, base=10)`.
fn int(v: Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let base: Option<u32> = kwargs.get("base")?;
    let kdefault: Option<Value> = kwargs.get("default")?;
    kwargs.assert_all_used()?;
    let default = default.or(kdefault).unwrap_or(Value::from(0));
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(i64::from(v.is_true())),
        ValueKind::Number => {
            if v.is_integer() {
                v
            } else {
                Value::from(f64::try_from(v.clone()).map(|f| f.trunc() as i64).unwrap_or(0))
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().trim().replace('_', "");
            let base = base.unwrap_or(10);
            let (neg, body) = match s.strip_prefix('-') {
                Some(r) => (true, r.to_string()),
                None => (false, s.strip_prefix('+').unwrap_or(&s).to_string()),
            };
            let body = match base {
                16 => body.trim_start_matches("0x").trim_start_matches("0X").to_string(),
                8 => body.trim_start_matches("0o").to_string(),
                2 => body.trim_start_matches("0b").to_string(),
                _ => body,
            };
            match i64::from_str_radix(&body, base) {
                Ok(i) => Value::from(if neg { -i } else { i }),
                Err(_) => match s.parse::<f64>() {
                    Ok(f) if base == 10 && f.is_finite() => Value::from(f.trunc() as i64),
                    _ => default,
                },
            }
        }
        _ => default,
    })
}

/// Jinja's `float(default=0.0)`.
fn float(v: Value, default: Option<Value>) -> Value {
    let default = default.unwrap_or(Value::from(0.0));
    match v.kind() {
        ValueKind::Bool => Value::from(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => Value::from(f64::try_from(v.clone()).unwrap_or(0.0)),
        ValueKind::String => v.as_str().unwrap_or_default().trim().parse::<f64>().map(Value::from).unwrap_or(default),
        _ => default,
    }
}

thread_local! {
    static REGEXES: RefCell<HashMap<(String, bool, bool), regex::Regex>> = RefCell::new(HashMap::new());
}

/// Compiles a Python regular expression (cached per thread).
pub fn compile_regex(pattern: &str, ignorecase: bool, multiline: bool) -> Result<regex::Regex, Error> {
    let key = (pattern.to_string(), ignorecase, multiline);
    if let Some(r) = REGEXES.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(r);
    }
    // Python's named groups `(?P<name>...)` are the regex crate's syntax too.
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| err(format!("invalid regular expression '{pattern}': {e}")))?;
    REGEXES.with(|m| m.borrow_mut().insert(key, re.clone()));
    Ok(re)
}

/// Python's `\1`, `\g<1>`, `\g<name>` in a replacement, as the regex crate writes them.
pub fn python_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(value: Value, pattern: String, replacement: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    let count: Option<usize> = kwargs.get("count")?;
    kwargs.assert_all_used()?;
    let re = compile_regex(&pattern, ignorecase.unwrap_or(false), multiline.unwrap_or(false))?;
    let rep = python_replacement(&replacement.unwrap_or_default());
    Ok(re.replacen(&py_str(&value), count.unwrap_or(0), rep.as_str()).into_owned())
}

fn regex_search(value: Value, pattern: String, groups: Rest<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    kwargs.assert_all_used()?;
    let re = compile_regex(&pattern, ignorecase.unwrap_or(false), multiline.unwrap_or(false))?;
    let text = py_str(&value);
    let Some(caps) = re.captures(&text) else { return Ok(Value::from(())) };
    if groups.0.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or_default()));
    }
    let mut out = Vec::new();
    for g in &groups.0 {
        let m = if let Some(name) = g.strip_prefix("\\g<").and_then(|x| x.strip_suffix('>')) {
            match name.parse::<usize>() {
                Ok(i) => caps.get(i),
                Err(_) => caps.name(name),
            }
        } else if let Some(n) = g.strip_prefix('\\').and_then(|x| x.parse::<usize>().ok()) {
            caps.get(n)
        } else {
            return Err(err("regex_search: Unknown argument"));
        };
        out.push(m.map(|m| Value::from(m.as_str())).unwrap_or(Value::from(())));
    }
    Ok(Value::from(out))
}

fn regex_findall(value: Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    kwargs.assert_all_used()?;
    let re = compile_regex(&pattern, ignorecase.unwrap_or(false), multiline.unwrap_or(false))?;
    let text = py_str(&value);
    let groups = re.captures_len() - 1;
    let out: Vec<Value> = re
        .captures_iter(&text)
        .map(|c| match groups {
            0 => Value::from(c.get(0).map(|m| m.as_str()).unwrap_or_default()),
            1 => Value::from(c.get(1).map(|m| m.as_str()).unwrap_or_default()),
            n => Value::from((1..=n).map(|i| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or_default())).collect::<Vec<_>>()),
        })
        .collect();
    Ok(Value::from(out))
}

/// Python's `os.path.dirname`.
fn dirname(s: String) -> String {
    match s.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &s[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() { head.to_string() } else { trimmed.to_string() }
        }
    }
}

fn expanduser(s: String) -> String {
    if (s == "~" || s.starts_with("~/"))
        && let Ok(h) = std::env::var("HOME") {
            return format!("{h}{}", &s[1..]);
        }
    s
}

/// Python's `os.path.splitext`, as a list.
fn splitext(s: String) -> Value {
    let base_start = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &s[base_start..];
    let dot = base.rfind('.').filter(|&i| base[..i].chars().any(|c| c != '.'));
    match dot {
        Some(i) => Value::from(vec![Value::from(&s[..base_start + i]), Value::from(&s[base_start + i..])]),
        None => Value::from(vec![Value::from(s.as_str()), Value::from("")]),
    }
}

/// Python's `os.path.join` of a list.
fn path_join(v: Value) -> Result<String, Error> {
    let parts: Vec<String> = if v.kind() == ValueKind::String { vec![py_str(&v)] } else { list_of(&v)?.iter().map(py_str).collect() };
    let mut out = String::new();
    for p in parts {
        if p.starts_with('/') {
            out = p;
        } else if out.is_empty() || out.ends_with('/') {
            out.push_str(&p);
        } else {
            out.push('/');
            out.push_str(&p);
        }
    }
    Ok(out)
}

fn to_json_filter(v: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    Ok(py_json_dumps(&to_json(&v), indent, sort_keys.unwrap_or(false), ensure_ascii.unwrap_or(true), indent.is_some()))
}

fn to_nice_json(v: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    Ok(py_json_dumps(&to_json(&v), Some(indent.unwrap_or(4)), sort_keys.unwrap_or(true), ensure_ascii.unwrap_or(true), true))
}

/// Python's `json.dumps`: `indent`, `sort_keys`, `ensure_ascii`; with `tight_items` the item
/// separator is `,` (as `to_nice_json` sets it), else `, ` (Python's default).
pub fn py_json_dumps(v: &Json, indent: Option<usize>, sort_keys: bool, ensure_ascii: bool, tight_items: bool) -> String {
    let mut out = String::new();
    dump(&mut out, v, indent, sort_keys, ensure_ascii, if tight_items { "," } else { ", " }, 0);
    out
}

fn dump(out: &mut String, v: &Json, indent: Option<usize>, sort: bool, ascii: bool, sep: &str, level: usize) {
    let nl = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    // With an indent, Python puts the separator's trailing space only where no newline follows.
    let item_sep = if indent.is_some() { sep.trim_end() } else { sep };
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                out.push_str(&match float_repr(f).as_str() {
                    "inf" => "Infinity".to_string(),
                    "-inf" => "-Infinity".to_string(),
                    "nan" => "NaN".to_string(),
                    s => s.to_string(),
                });
            } else {
                out.push_str(&n.to_string());
            }
        }
        Json::String(s) => json_str(out, s, ascii),
        Json::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                nl(out, level + 1);
                dump(out, x, indent, sort, ascii, sep, level + 1);
            }
            nl(out, level);
            out.push(']');
        }
        Json::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            if sort {
                keys.sort();
            }
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                nl(out, level + 1);
                json_str(out, k, ascii);
                out.push_str(": ");
                dump(out, &m[*k], indent, sort, ascii, sep, level + 1);
            }
            nl(out, level);
            out.push('}');
        }
    }
}

fn json_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Items of a list-like value.
fn list_of(v: &Value) -> Result<Vec<Value>, Error> {
    if v.is_undefined() || v.is_none() {
        return Ok(vec![]);
    }
    if v.kind() == ValueKind::String {
        return Ok(v.as_str().unwrap_or_default().chars().map(|c| Value::from(c.to_string())).collect());
    }
    Ok(v.try_iter().map_err(|e| err(format!("expected a list: {e}")))?.collect())
}

fn unique_vals(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn flatten(v: Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    let klevels: Option<i64> = kwargs.get("levels")?;
    let skip_nulls: Option<bool> = kwargs.get("skip_nulls")?;
    kwargs.assert_all_used()?;
    fn go(items: Vec<Value>, levels: Option<i64>, skip: bool, out: &mut Vec<Value>) -> Result<(), Error> {
        for x in items {
            if skip && (x.is_none() || matches!(x.as_str(), Some("None") | Some("null"))) {
                continue;
            }
            if matches!(x.kind(), ValueKind::Seq) {
                match levels {
                    None => go(list_of(&x)?, None, skip, out)?,
                    Some(l) if l >= 1 => go(list_of(&x)?, Some(l - 1), skip, out)?,
                    _ => out.push(x),
                }
            } else {
                out.push(x);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(list_of(&v)?, levels.or(klevels), skip_nulls.unwrap_or(true), &mut out)?;
    Ok(Value::from(out))
}

fn zip(a: Value, rest: Vec<Value>, longest: bool) -> Result<Value, Error> {
    let mut lists = vec![list_of(&a)?];
    for r in rest {
        lists.push(list_of(&r)?);
    }
    let n = if longest { lists.iter().map(Vec::len).max().unwrap_or(0) } else { lists.iter().map(Vec::len).min().unwrap_or(0) };
    Ok(Value::from((0..n).map(|i| Value::from(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Value::from(()))).collect::<Vec<_>>())).collect::<Vec<_>>()))
}

/// Ansible's `merge_hash`: `high` wins; dicts merge when `recursive`; lists per `list_merge`.
fn merge_hash(low: &Json, high: &Json, recursive: bool, list_merge: &str) -> Json {
    let (Json::Object(x), Json::Object(y)) = (low, high) else { return high.clone() };
    let mut out = x.clone();
    for (k, yv) in y {
        let merged = match (out.get(k), yv) {
            (Some(xv @ Json::Object(_)), Json::Object(_)) if recursive => merge_hash(xv, yv, recursive, list_merge),
            (Some(Json::Array(xl)), Json::Array(yl)) => match list_merge {
                "append" => Json::Array(xl.iter().chain(yl).cloned().collect()),
                "prepend" => Json::Array(yl.iter().chain(xl).cloned().collect()),
                "append_rp" => Json::Array(xl.iter().filter(|z| !yl.contains(z)).chain(yl).cloned().collect()),
                "prepend_rp" => Json::Array(yl.iter().cloned().chain(xl.iter().filter(|z| !yl.contains(z)).cloned()).collect()),
                "keep" => Json::Array(xl.clone()),
                _ => yv.clone(),
            },
            _ => yv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Json::Object(out)
}

fn combine(first: Value, rest: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive: Option<bool> = kwargs.get("recursive")?;
    let list_merge: Option<String> = kwargs.get("list_merge")?;
    kwargs.assert_all_used().map_err(|_| err("'recursive' and 'list_merge' are the only valid keyword arguments"))?;
    let lm = list_merge.unwrap_or_else(|| "replace".into());
    if !matches!(lm.as_str(), "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp") {
        return Err(err(format!("merge_hash: 'list_merge' argument can only be equal to 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp', got {lm}")));
    }
    let mut dicts = Vec::new();
    for t in std::iter::once(first).chain(rest.0) {
        match to_json(&t) {
            Json::Array(a) => dicts.extend(a),
            other => dicts.push(other),
        }
    }
    for d in &dicts {
        if !d.is_object() {
            return Err(err(format!("failed to combine variables, expected dicts but got a '{}'", crate::modules::args::type_name(d))));
        }
    }
    let mut acc = Json::Object(Default::default());
    for d in dicts {
        acc = merge_hash(&acc, &d, recursive.unwrap_or(false), &lm);
    }
    Ok(to_value(&acc))
}

fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key: Option<String> = kwargs.get("key_name")?;
    let val: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    let Json::Object(m) = to_json(&v) else { return Err(err("dict2items requires a dictionary")) };
    let (k, vn) = (key.unwrap_or_else(|| "key".into()), val.unwrap_or_else(|| "value".into()));
    Ok(to_value(&Json::Array(m.into_iter().map(|(a, b)| serde_json::json!({k.clone(): a, vn.clone(): b})).collect())))
}

fn items2dict(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key: Option<String> = kwargs.get("key_name")?;
    let val: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    let (k, vn) = (key.unwrap_or_else(|| "key".into()), val.unwrap_or_else(|| "value".into()));
    let Json::Array(items) = to_json(&v) else { return Err(err("items2dict requires a list")) };
    let mut out = serde_json::Map::new();
    for it in items {
        let (Some(a), Some(b)) = (it.get(&k), it.get(&vn)) else {
            return Err(err(format!("items2dict requires each item to have '{k}' and '{vn}' keys")));
        };
        let key = match a {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(key, b.clone());
    }
    Ok(to_value(&Json::Object(out)))
}

fn hash(s: &str, kind: &str) -> Result<String, Error> {
    use sha2::Digest;
    Ok(match kind {
        "sha1" => hex::encode(sha1::Sha1::digest(s.as_bytes())),
        "md5" => hex::encode(md5::Md5::digest(s.as_bytes())),
        "sha224" => hex::encode(sha2::Sha224::digest(s.as_bytes())),
        "sha256" => hex::encode(sha2::Sha256::digest(s.as_bytes())),
        "sha384" => hex::encode(sha2::Sha384::digest(s.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(s.as_bytes())),
        other => return Err(err(format!("hash: unsupported hash type '{other}'"))),
    })
}

/// Python's `urllib.parse.urlsplit`, whole or one part.
fn urlsplit(url: String, part: Option<String>) -> Result<Value, Error> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => (s.to_lowercase(), format!("//{r}")),
        _ => match url.split_once(':') {
            Some((s, r)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => (s.to_lowercase(), r.to_string()),
            _ => (String::new(), url.clone()),
        },
    };
    let (rest, fragment) = rest.split_once('#').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((rest.clone(), String::new()));
    let (rest, query) = rest.split_once('?').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((rest.clone(), String::new()));
    let (netloc, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (r[..i].to_string(), r[i..].to_string()),
            None => (r.to_string(), String::new()),
        },
        None => (String::new(), rest.clone()),
    };
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, netloc.clone()),
    };
    let (username, password) = match &userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Value::from(a), Value::from(b)),
            None => (Value::from(u.as_str()), Value::from(())),
        },
        None => (Value::from(()), Value::from(())),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        match h.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or("").to_string()),
            None => (h.to_string(), String::new()),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.clone(), String::new()),
        }
    };
    let hostname = if host.is_empty() { Value::from(()) } else { Value::from(host.to_lowercase()) };
    let port = if port.is_empty() { Value::from(()) } else { port.parse::<i64>().map(Value::from).map_err(|_| err(format!("Port could not be cast to integer value as '{port}'")))? };
    let pairs = vec![
        ("fragment", Value::from(fragment)),
        ("hostname", hostname),
        ("netloc", Value::from(netloc)),
        ("password", password),
        ("path", Value::from(path)),
        ("port", port),
        ("query", Value::from(query)),
        ("scheme", Value::from(scheme)),
        ("username", username),
    ];
    match part {
        None => Ok(Value::from_pairs(pairs.into_iter().map(|(k, v)| (Value::from(k), v)))),
        Some(p) => pairs.into_iter().find(|(k, _)| *k == p).map(|(_, v)| v).ok_or_else(|| err(format!("urlsplit: unknown URL component: {p}"))),
    }
}

/// Python's `str.split(sep, maxsplit)`.
pub fn py_split(s: &str, sep: Option<&str>, maxsplit: i64) -> Vec<Value> {
    let parts: Vec<String> = match sep {
        None | Some("") if sep.is_none() => {
            if maxsplit < 0 {
                s.split_whitespace().map(str::to_string).collect()
            } else {
                let mut out = Vec::new();
                let mut rest = s.trim_start();
                while !rest.is_empty() && (out.len() as i64) < maxsplit {
                    match rest.find(char::is_whitespace) {
                        Some(i) => {
                            out.push(rest[..i].to_string());
                            rest = rest[i..].trim_start();
                        }
                        None => {
                            out.push(rest.to_string());
                            rest = "";
                        }
                    }
                }
                if !rest.is_empty() {
                    out.push(rest.to_string());
                }
                out
            }
        }
        Some(sep) => {
            if maxsplit < 0 {
                s.split(sep).map(str::to_string).collect()
            } else {
                s.splitn(maxsplit as usize + 1, sep).map(str::to_string).collect()
            }
        }
        None => vec![],
    };
    parts.into_iter().map(Value::from).collect()
}

fn human_to_bytes(v: Value, default_unit: Option<String>, isbits: Option<bool>) -> Result<i64, Error> {
    let s = py_str(&v);
    let s = s.trim();
    let idx = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = (&s[..idx], s[idx..].trim());
    let n: f64 = num.parse().map_err(|_| err(format!("human_to_bytes() can't interpret following string: {s}")))?;
    let unit = if unit.is_empty() { default_unit.unwrap_or_default() } else { unit.to_string() };
    let letter = unit.chars().next().map(|c| c.to_ascii_uppercase()).unwrap_or('B');
    let power = match letter {
        'B' => 0,
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        'P' => 5,
        'E' => 6,
        'Z' => 7,
        'Y' => 8,
        _ => return Err(err(format!("human_to_bytes() failed to convert {s}: unknown unit"))),
    };
    let _ = isbits;
    Ok((n * 1024f64.powi(power)) as i64)
}

fn human_readable(v: Value, isbits: Option<bool>, unit: Option<String>) -> Result<String, Error> {
    let n = f64::try_from(v.clone()).or_else(|_| py_str(&v).parse::<f64>()).map_err(|_| err("human_readable() needs a number"))?;
    let _ = unit;
    let suffix = if isbits.unwrap_or(false) { "b" } else { "B" };
    let units = ["", "K", "M", "G", "T", "P", "E", "Z", "Y"];
    let mut i = 0;
    let mut x = n;
    while x >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    Ok(if i == 0 { format!("{x:.2} Bytes") } else { format!("{x:.2} {}{suffix}", units[i]) })
}

#[allow(dead_code)]
fn state_unused(_s: &State) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_forms() {
        let v = serde_json::json!({"b": [1, 2.5], "a": "é"});
        assert_eq!(py_json_dumps(&v, None, false, true, false), r#"{"b": [1, 2.5], "a": "\u00e9"}"#);
        assert_eq!(py_json_dumps(&v, Some(4), true, true, true), "{\n    \"a\": \"\\u00e9\",\n    \"b\": [\n        1,\n        2.5\n    ]\n}");
    }

    #[test]
    fn replacements_and_quoting() {
        assert_eq!(python_replacement(r"\2.\1 \g<name> $x"), "${2}.${1} ${name} $$x");
        assert_eq!(dirname("/a/b/c".into()), "/a/b");
        assert_eq!(dirname("/a".into()), "/");
    }
}

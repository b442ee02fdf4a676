//! The text filters: `lower`, `upper`, `replace`, `trim`, `join` and `split` (Python's
//! `str.split`).

use minijinja::{Error, Value};

use super::{Args, bind, list, type_name};
use crate::pyfmt::{self, py_str};

pub(super) fn f_lower(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "lower", args, &["s"], false, false)?;
    Ok(Value::from(py_str(b.defined("s")?).to_lowercase()))
}

pub(super) fn f_upper(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "upper", args, &["s"], false, false)?;
    Ok(Value::from(py_str(b.defined("s")?).to_uppercase()))
}

pub(super) fn f_replace(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "replace", args, &["s", "old", "new", "count"], false, false)?;
    let s = py_str(b.defined("s")?);
    let old = b.text("old", "")?;
    let new = b.text("new", "")?;
    Ok(Value::from(match b.int("count")? {
        Some(n) if n >= 0 => s.replacen(&old, &new, n as usize),
        _ => s.replace(&old, &new),
    }))
}

pub(super) fn f_trim(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "trim", args, &["value", "chars"], false, false)?;
    let s = py_str(b.defined("value")?);
    Ok(Value::from(match b.opt("chars") {
        Some(c) if !c.is_none() => {
            let chars: Vec<char> = py_str(c).chars().collect();
            s.trim_matches(&chars[..]).to_string()
        }
        _ => s.trim().to_string(),
    }))
}

pub(super) fn f_join(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "join", args, &["value", "d", "attribute"], false, false)?;
    let value = b.defined("value")?;
    let sep = b.text("d", "")?;
    let attr = b.opt("attribute").filter(|a| !a.is_none()).map(py_str);
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        let item = match &attr {
            Some(a) => item.get_attr(a).unwrap_or(Value::UNDEFINED),
            None => item,
        };
        out.push_str(&pyfmt::py_str(&item));
    }
    Ok(Value::from(out))
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
pub fn py_split(s: &str, sep: Option<&str>, maxsplit: i64) -> Vec<String> {
    let max = if maxsplit < 0 { usize::MAX } else { maxsplit as usize };
    match sep {
        Some(sep) => {
            if max == usize::MAX {
                s.split(sep).map(String::from).collect()
            } else {
                s.splitn(max.saturating_add(1), sep).map(String::from).collect()
            }
        }
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if out.len() == max {
                    out.push(rest.to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            out
        }
    }
}

pub(super) fn f_split(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "split", args, &["value", "sep", "maxsplit"], false, false)?;
    let v = b.defined("value")?;
    let Some(s) = v.as_str() else {
        return Err(b.fail(format!("descriptor 'split' for 'str' objects doesn't apply to a '{}' object", type_name(v))));
    };
    let sep = match b.opt("sep") {
        None => None,
        Some(x) if x.is_none() => None,
        Some(x) => Some(py_str(x)),
    };
    if sep.as_deref() == Some("") {
        return Err(b.fail("empty separator"));
    }
    let max = b.int("maxsplit")?.unwrap_or(-1);
    Ok(list(py_split(s, sep.as_deref(), max).into_iter().map(Value::from).collect()))
}

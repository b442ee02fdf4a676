//! The basic type filters: `default`, `bool`, `int`, `float`, `string`, `type_debug`,
//! `ternary` and `mandatory`, with Python's number parsing.

use minijinja::value::ValueKind;
use minijinja::{Error, Value};

use super::{Args, as_f64, bind, int_value, type_name};
use crate::pyfmt::{Shape, py_str, shape};

pub(super) fn f_default(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "default", args, &["value", "default_value", "boolean"], false, false)?;
    let value = b.opt("value").cloned().unwrap_or(Value::UNDEFINED);
    let default = b.opt("default_value").cloned().unwrap_or_else(|| Value::from(""));
    let boolean = match b.opt("boolean") {
        None => false,
        Some(v) if v.kind() == ValueKind::Bool => v.is_true(),
        Some(v) => return Err(b.fail(format!("The 'boolean' argument must be bool, not {}", type_name(v)))),
    };
    if value.is_undefined() || (boolean && !value.is_true()) { Ok(default) } else { Ok(value) }
}

/// Ansible's `bool` filter: `True` for a true boolean, for the strings yes/on/true/1 in any
/// case, and for the numbers 1 and 1.0; everything else (no/off/false/0, other strings, other
/// numbers, `None`, collections) is `False`.
pub fn ansible_bool(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::String => {
            matches!(v.as_str().unwrap_or("").to_lowercase().as_str(), "yes" | "on" | "true" | "1")
        }
        ValueKind::Number => as_f64(v) == Some(1.0),
        _ => false,
    }
}

pub(super) fn f_bool(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "bool", args, &["value"], false, false)?;
    Ok(Value::from(ansible_bool(b.defined("value")?)))
}

/// Python's `int(text, base)`: surrounding whitespace, a sign, a `0x`/`0o`/`0b` prefix
/// matching the base (any with base 0), and single underscores between digits.
pub(crate) fn py_parse_int(text: &str, base: u32) -> Option<i128> {
    let s = text.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = s.to_ascii_lowercase();
    let (base, digits) = {
        let prefixed = |p: &str| lower.starts_with(p);
        match base {
            0 if prefixed("0x") => (16, &s[2..]),
            0 if prefixed("0o") => (8, &s[2..]),
            0 if prefixed("0b") => (2, &s[2..]),
            0 => {
                // base 0 forbids leading zeros on non-zero decimals
                if s.len() > 1 && s.starts_with('0') && !s.trim_start_matches(['0', '_']).is_empty() {
                    return None;
                }
                (10, s)
            }
            16 if prefixed("0x") => (16, &s[2..]),
            8 if prefixed("0o") => (8, &s[2..]),
            2 if prefixed("0b") => (2, &s[2..]),
            b if (2..=36).contains(&b) => (b, s),
            _ => return None,
        }
    };
    // an underscore may follow the prefix, and separate digits
    let had_prefix = digits.len() != s.len();
    let digits = if had_prefix { digits.strip_prefix('_').unwrap_or(digits) } else { digits };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from_str_radix(&clean, base).ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `float(text)`: whitespace, signs, exponents, `inf`/`infinity`/`nan` in any case, and
/// single underscores between digits.
pub(crate) fn py_parse_float(text: &str) -> Option<f64> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let body = s.trim_start_matches(['+', '-']);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        if s.len() - body.len() > 1 {
            return None;
        }
        return s.parse::<f64>().ok();
    }
    if !s.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E' | '_')) {
        return None;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_' {
            let before = i > 0 && chars[i - 1].is_ascii_digit();
            let after = chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
            if !before || !after {
                return None;
            }
        }
    }
    let clean: String = chars.into_iter().filter(|c| *c != '_').collect();
    clean.parse::<f64>().ok()
}

pub(super) fn f_int(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "int", args, &["value", "default", "base"], false, false)?;
    let value = b.defined("value")?;
    let default = b.opt("default").cloned().unwrap_or(Value::from(0));
    let base = match b.int("base")? {
        None => 10,
        Some(n) if n == 0 || (2..=36).contains(&n) => n as u32,
        Some(_) => return Ok(default),
    };
    // Jinja2's do_int: int(value[, base]), then int(float(value)), then the default.
    let rv = match shape(value) {
        Shape::Str(s) => py_parse_int(&s, base).map(int_value).or_else(|| float_to_int(py_parse_float(&s)?)),
        Shape::Bool(x) => Some(Value::from(x as i64)),
        Shape::Int(_) => Some(value.clone()),
        Shape::Float(f) => float_to_int(f),
        _ => None,
    };
    Ok(rv.unwrap_or(default))
}

fn float_to_int(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    let t = f.trunc();
    if t.abs() < 1.7e38 { Some(int_value(t as i128)) } else { None }
}

pub(super) fn f_float(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "float", args, &["value", "default"], false, false)?;
    let value = b.defined("value")?;
    let default = b.opt("default").cloned().unwrap_or(Value::from(0.0));
    let rv = match shape(value) {
        Shape::Str(s) => py_parse_float(&s),
        Shape::Bool(x) => Some(if x { 1.0 } else { 0.0 }),
        Shape::Int(_) | Shape::Float(_) => as_f64(value),
        _ => None,
    };
    Ok(rv.map(Value::from).unwrap_or(default))
}

pub(super) fn f_string(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "string", args, &["value"], false, false)?;
    Ok(Value::from(py_str(b.defined("value")?)))
}

pub(super) fn f_type_debug(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "type_debug", args, &["obj"], false, false)?;
    Ok(Value::from(type_name(b.req("obj")?)))
}

pub(super) fn f_ternary(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "ternary", args, &["value", "true_val", "false_val", "none_val"], false, false)?;
    let value = b.defined("value")?;
    let pick = |p: &str| b.req(p).cloned();
    match b.opt("none_val") {
        Some(n) if value.is_none() && !n.is_none() => Ok(n.clone()),
        _ if value.is_true() => pick("true_val"),
        _ => pick("false_val"),
    }
}

pub(super) fn f_mandatory(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "mandatory", args, &["a", "msg"], false, false)?;
    let a = b.opt("a").cloned().unwrap_or(Value::UNDEFINED);
    if a.is_undefined() {
        if let Some(msg) = b.opt("msg").filter(|m| !m.is_none()) {
            return Err(b.fail(py_str(msg)));
        }
        // minijinja does not tell filters the name of an undefined variable.
        return Err(b.fail("Mandatory variable not defined."));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::eval;
    use minijinja::context;

    #[test]
    fn bool_rule() {
        for (v, want) in [
            (Value::from("yes"), true),
            (Value::from("On"), true),
            (Value::from("TRUE"), true),
            (Value::from("1"), true),
            (Value::from(1), true),
            (Value::from(1.0), true),
            (Value::from(true), true),
            (Value::from("y"), false),
            (Value::from("no"), false),
            (Value::from(2), false),
            (Value::from(""), false),
            (Value::from(()), false),
            (Value::from(vec![Value::from(1)]), false),
        ] {
            assert_eq!(ansible_bool(&v), want, "{v:?}");
        }
    }

    #[test]
    fn default_and_mandatory() {
        assert_eq!(eval("nope | default('d')", context! {}), "d");
        assert_eq!(eval("nope | d('d')", context! {}), "d");
        assert_eq!(eval("x | default('d')", context! { x => () }), "None");
        assert_eq!(eval("x | default('d', true)", context! { x => "" }), "d");
        assert_eq!(eval("x | default('d', boolean=true)", context! { x => 0 }), "d");
        assert!(eval("x | default('d', 'yes')", context! { x => 0 }).contains("must be bool"));
        assert_eq!(eval("'v' | mandatory", context! {}), "v");
        assert_eq!(
            eval("nope | mandatory", context! {}),
            "ERROR: invalid operation: The filter plugin 'ansible.builtin.mandatory' failed: Mandatory variable not defined. (in <expression>:1)"
        );
        assert!(eval("nope | mandatory('set nope')", context! {}).contains("failed: set nope"));
    }

    #[test]
    fn python_number_parsing() {
        assert_eq!(py_parse_int(" 0x1f ", 16), Some(31));
        assert_eq!(py_parse_int("0x_1f", 16), Some(31));
        assert_eq!(py_parse_int("1__0", 10), None);
        assert_eq!(py_parse_int("010", 0), None);
        assert_eq!(py_parse_int("0", 0), Some(0));
        assert_eq!(py_parse_int("-12", 10), Some(-12));
        assert_eq!(py_parse_float(" 1_0.5 "), Some(10.5));
        assert_eq!(py_parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(py_parse_float("1e"), None);
        assert_eq!(py_parse_float("--1"), None);
    }
}

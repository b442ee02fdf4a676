//! Python's `json.dumps`, for `to_json`/`to_nice_json` and for JSON data ([`json_dumps`]).

use std::fmt::Write as _;

use minijinja::Value;
use minijinja::value::ValueKind;

use super::{EmitError, Shape, py_float_repr, shape, to_value};

/// Options for [`to_json`], as Python's `json.dumps` takes them.
#[derive(Clone, Debug)]
pub struct JsonOptions {
    /// `None`: one line with `", "` and `": "` separators; `Some(n)`: one item a line,
    /// indented by `n` spaces a level, with `","` at line ends.
    pub indent: Option<usize>,
    pub sort_keys: bool,
    /// Escape non-ASCII characters as `\uXXXX` (Python's default).
    pub ensure_ascii: bool,
    /// Overrides the `(item, key)` separators.
    pub separators: Option<(String, String)>,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions { indent: None, sort_keys: false, ensure_ascii: true, separators: None }
    }
}

/// Python's `json.dumps` of a value (Ansible's `to_json`; `to_nice_json` is `indent=4,
/// sort_keys=True`). Floats print like Python (`1.0`, `1e+20`, `NaN`, `Infinity`).
pub fn to_json(v: &Value, opts: &JsonOptions) -> Result<String, EmitError> {
    let (item_sep, key_sep) = match &opts.separators {
        Some((a, b)) => (a.clone(), b.clone()),
        None if opts.indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let mut out = String::new();
    json_write(&mut out, v, opts, &item_sep, &key_sep, 0)?;
    Ok(out)
}

fn json_newline(out: &mut String, opts: &JsonOptions, level: usize) {
    if let Some(n) = opts.indent {
        out.push('\n');
        for _ in 0..n * level {
            out.push(' ');
        }
    }
}

fn json_write(out: &mut String, v: &Value, opts: &JsonOptions, item_sep: &str, key_sep: &str, level: usize) -> Result<(), EmitError> {
    if level > 500 {
        return Err(EmitError::TooDeep);
    }
    match shape(v) {
        Shape::Undefined => return Err(EmitError::UndefinedJson),
        Shape::None => out.push_str("null"),
        Shape::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Shape::Int(s) => out.push_str(&s),
        Shape::Float(f) => out.push_str(&json_float(f)),
        Shape::Str(s) => json_str(out, &s, opts.ensure_ascii),
        Shape::Other(s) => json_str(out, &s, opts.ensure_ascii),
        Shape::Seq(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                json_newline(out, opts, level + 1);
                json_write(out, item, opts, item_sep, key_sep, level + 1)?;
            }
            json_newline(out, opts, level);
            out.push(']');
        }
        Shape::Map(items) => {
            if items.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            let mut pairs = Vec::with_capacity(items.len());
            for (k, item) in items {
                let key = match shape(&k) {
                    Shape::Str(s) => s,
                    Shape::None => "null".into(),
                    Shape::Bool(b) => if b { "true" } else { "false" }.into(),
                    Shape::Int(s) => s,
                    Shape::Float(f) => json_float(f),
                    _ => return Err(EmitError::JsonKey { kind: k.kind() }),
                };
                pairs.push((key, k, item));
            }
            if opts.sort_keys {
                sort_pairs_python(&mut pairs)?;
            }
            out.push('{');
            for (i, (key, _, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                json_newline(out, opts, level + 1);
                json_str(out, key, opts.ensure_ascii);
                out.push_str(key_sep);
                json_write(out, item, opts, item_sep, key_sep, level + 1)?;
            }
            json_newline(out, opts, level);
            out.push('}');
        }
    }
    Ok(())
}

/// Sorts `(text, key, value)` triples the way Python's `sorted()` sorts the original keys:
/// strings by code point, numbers numerically; mixed kinds cannot be sorted.
fn sort_pairs_python(pairs: &mut [(String, Value, Value)]) -> Result<(), EmitError> {
    let all_str = pairs.iter().all(|p| p.1.kind() == ValueKind::String);
    let all_num = pairs.iter().all(|p| matches!(p.1.kind(), ValueKind::Number | ValueKind::Bool));
    if all_str {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
    } else if all_num {
        pairs.sort_by(|a, b| a.1.cmp(&b.1));
    } else if pairs.len() > 1 {
        return Err(EmitError::MixedKeys);
    }
    Ok(())
}

fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        py_float_repr(f)
    }
}

fn json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps` of JSON data (for results and request bodies, which are not template
/// values): `indent`, `sort_keys`, `ensure_ascii`.
pub fn json_dumps(v: &serde_json::Value, indent: Option<usize>, sort_keys: bool, ensure_ascii: bool) -> String {
    let opts = JsonOptions { indent, sort_keys, ensure_ascii, separators: None };
    to_json(&to_value(v), &opts).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyfmt::tests::val;

    #[test]
    fn json_like_python() {
        let v = val(r#"{"b": [1, 2.5, null, true], "a": "x", "c": {}}"#);
        assert_eq!(to_json(&v, &JsonOptions::default()).unwrap(), r#"{"b": [1, 2.5, null, true], "a": "x", "c": {}}"#);
        let nice = JsonOptions { indent: Some(4), sort_keys: true, ..Default::default() };
        assert_eq!(
            to_json(&v, &nice).unwrap(),
            "{\n    \"a\": \"x\",\n    \"b\": [\n        1,\n        2.5,\n        null,\n        true\n    ],\n    \"c\": {}\n}"
        );
        assert_eq!(to_json(&Value::from("é\u{1}😀"), &JsonOptions::default()).unwrap(), r#""\u00e9\u0001\ud83d\ude00""#);
        let raw = JsonOptions { ensure_ascii: false, ..Default::default() };
        assert_eq!(to_json(&Value::from("é"), &raw).unwrap(), "\"é\"");
        assert_eq!(to_json(&Value::from(1e20), &raw).unwrap(), "1e+20");
        assert_eq!(to_json(&Value::from(f64::NAN), &raw).unwrap(), "NaN");
        let int_keys = Value::from_pairs(vec![(Value::from(2), Value::from("b")), (Value::from(1), Value::from("a"))]);
        assert_eq!(to_json(&int_keys, &JsonOptions::default()).unwrap(), r#"{"2": "b", "1": "a"}"#);
        let sorted = JsonOptions { sort_keys: true, ..Default::default() };
        assert_eq!(to_json(&int_keys, &sorted).unwrap(), r#"{"1": "a", "2": "b"}"#);
        assert!(to_json(&Value::UNDEFINED, &sorted).is_err());
        assert_eq!(to_json(&Value::UNDEFINED, &sorted).unwrap_err().to_string(), "an undefined value cannot be serialized to JSON");
        let mixed = Value::from_pairs(vec![(Value::from(1), Value::from("a")), (Value::from("b"), Value::from("c"))]);
        assert_eq!(to_json(&mixed, &sorted), Err(EmitError::MixedKeys));
        assert_eq!(EmitError::MixedKeys.to_string(), "'<' not supported between keys of different types");
        let list_key = Value::from_pairs(vec![(Value::from(vec![1]), Value::from("a"))]);
        assert_eq!(to_json(&list_key, &sorted).unwrap_err().to_string(), "keys must be str, int, float, bool or None, not sequence");
    }
}

//! Python's text forms of values, as Ansible prints them: `str()` of a value inside a template
//! (`True`, `None`, `['a', 1]`, `{'k': 'v'}`), `json.dumps` for `to_json`/`to_nice_json`, and
//! PyYAML's dumper (libyaml's emitter, as Ansible uses `CSafeDumper`) for `to_yaml`/`to_nice_yaml`.
//!
//! This module walks values ([`shape`], [`map_items`], [`to_value`]); `repr`, `json` and
//! `yaml_emit` write them, and everything they export is re-exported here.

use minijinja::Value;
use minijinja::value::ValueKind;

mod json;
mod repr;
mod yaml_emit;

pub use self::json::{JsonOptions, json_dumps, to_json};
pub use self::repr::{py_float_repr, py_repr, py_str, py_str_repr, render_str};
pub use self::yaml_emit::{YamlOptions, resolves_to_non_str, to_yaml, to_yaml_with};

/// Why a value cannot be written as JSON ([`to_json`]) or YAML ([`to_yaml`]): the words of
/// Python's `json.dumps` and PyYAML's dumper, which filters and modules pass on as they are.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// Collections nested deeper than 500 levels (Python's recursion limit, near enough).
    #[error("maximum nesting depth exceeded")]
    TooDeep,
    /// An undefined template value given to `to_json`.
    #[error("an undefined value cannot be serialized to JSON")]
    UndefinedJson,
    /// An undefined template value given to `to_yaml`.
    #[error("an undefined value cannot be represented in YAML")]
    UndefinedYaml,
    /// A mapping key JSON cannot have (a list, a mapping...).
    #[error("keys must be str, int, float, bool or None, not {kind}")]
    JsonKey { kind: ValueKind },
    /// `sort_keys` over keys of different kinds, which Python cannot order.
    #[error("'<' not supported between keys of different types")]
    MixedKeys,
    /// The YAML emitter was given events out of order (a bug in the representer).
    #[error("expected {expected}")]
    Emitter { expected: &'static str },
}

/// Converts JSON data to a template value.
pub fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::from(a.iter().map(to_value).collect::<Vec<_>>()),
        serde_json::Value::Object(m) => Value::from_pairs(m.iter().map(|(k, v)| (Value::from(k.as_str()), to_value(v)))),
    }
}

// ---------------------------------------------------------------------------------------------
// Walking values
// ---------------------------------------------------------------------------------------------

/// The Python-side shape of a minijinja value.
pub enum Shape {
    Undefined,
    None,
    Bool(bool),
    /// An integer, in decimal.
    Int(String),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// Anything else (plain objects, invalid values): its display form.
    Other(String),
}

/// Classifies a value; sequences and maps are materialized.
pub fn shape(v: &Value) -> Shape {
    match v.kind() {
        ValueKind::Undefined => Shape::Undefined,
        ValueKind::None => Shape::None,
        ValueKind::Bool => Shape::Bool(v.is_true()),
        ValueKind::Number => {
            if v.is_integer() {
                Shape::Int(v.to_string())
            } else {
                Shape::Float(f64::try_from(v.clone()).unwrap_or(f64::NAN))
            }
        }
        ValueKind::String => Shape::Str(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => Shape::Str(String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned()),
        ValueKind::Seq | ValueKind::Iterable => match v.try_iter() {
            Ok(it) => Shape::Seq(it.collect()),
            Err(_) => Shape::Other(v.to_string()),
        },
        ValueKind::Map => Shape::Map(map_items(v)),
        _ => Shape::Other(v.to_string()),
    }
}

/// The `(key, value)` pairs of a map value, in its order.
pub fn map_items(v: &Value) -> Vec<(Value, Value)> {
    match v.try_iter() {
        Ok(keys) => keys
            .map(|k| {
                let val = v.get_item(&k).unwrap_or(Value::UNDEFINED);
                (k, val)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Python's name of a JSON value's type, as Ansible's messages use it.
pub fn json_type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::value::Serde;

    pub(super) fn val(json: &str) -> Value {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        Value::from(Serde(v))
    }

    /// Random values dumped by Ansible 2.19's `to_yaml`/`to_nice_yaml`/`to_json`/
    /// `to_nice_json` (PyYAML 6.0.3 on libyaml 0.2.5) and Python's `str()`.
    #[test]
    fn matches_pyyaml_and_python_on_recorded_cases() {
        let data = include_str!("../testdata/pyyaml_cases.jsonl");
        let mut checked = 0;
        for line in data.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let v = Value::from(Serde(&case["v"]));
            let nice_json = JsonOptions { indent: Some(4), sort_keys: true, ..Default::default() };
            let raw_json = JsonOptions { ensure_ascii: false, ..Default::default() };
            let outputs: [(&str, Option<String>); 8] = [
                ("yaml", to_yaml(&v, 2, false).ok()),
                ("yaml4", to_yaml(&v, 4, false).ok()),
                ("nice", to_yaml(&v, 4, true).ok()),
                ("nice2", to_yaml(&v, 2, true).ok()),
                ("json", to_json(&v, &JsonOptions::default()).ok()),
                ("nicejson", to_json(&v, &nice_json).ok()),
                ("json_u", to_json(&v, &raw_json).ok()),
                ("str", Some(py_str(&v))),
            ];
            for (name, got) in outputs {
                let want = case[name].as_str().map(str::to_string);
                assert_eq!(got, want, "{name} of {}", case["v"]);
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }
}

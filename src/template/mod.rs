//! The template layer: a minijinja environment with Ansible's filters, tests and lookups, and
//! rendering with Ansible's rules (native types for a lone `{{ expr }}`, Python-style output).

pub mod filters;
pub mod pyfmt;
pub mod tests;

use serde_json::Value;

/// Ansible's `bool` conversion for module arguments: yes/on/true/1 and no/off/false/0 (any case),
/// booleans, and the numbers 1 and 0. Anything else is not a boolean.
pub fn to_bool_strict(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x == 1.0 => Some(true),
            Some(x) if x == 0.0 => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "1" | "y" | "t" => Some(true),
            "no" | "off" | "false" | "0" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

//! YAML as Ansible reads it: PyYAML's YAML 1.1 resolver applied to every plain scalar,
//! with the position of every node kept so errors can name file:line:column.
//!
//! Syntax comes from `yaml-rust2`'s event parser; this module builds [`Node`]s from the
//! events and applies what PyYAML's `SafeLoader` (plus Ansible's `!unsafe`) would:
//!
//! * Plain scalars go through PyYAML's implicit resolver: booleans `yes/no/true/false/on/off`
//!   in lower, Title and UPPER case (`y`/`n` stay strings); null `~`, `null`, empty; ints
//!   `0b1010`, `0644` (octal), `0x1F`, `1_000`, `1:30` (base 60); floats only when they have a
//!   dot (`1.5`, `1.`, `.5`, `1.5e+3`, `1:30.5`) plus `.inf`, `-.inf`, `.nan` — so `1e3`,
//!   `1.5e3`, `0o644` and `-.5` are strings, as in PyYAML. Quoted and block scalars are strings.
//! * Tags: `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` (valued like PyYAML's constructors),
//!   `!!seq`, `!!map`, the non-specific `!`, and Ansible's `!unsafe` (the text as a string;
//!   the "unsafe" marking itself is not kept). Any other tag (`!vault`, `!!binary`, `!!set`,
//!   `!!omap`, `!!python/...`) is a [`YamlError`] naming the tag.
//! * Aliases are copies of their anchored node; merge keys (`<<: *a`, `<<: [*a, *b]`) and
//!   duplicate keys follow Python's dict semantics as PyYAML leaves them: a key keeps its first
//!   position and its last value, explicit keys beat merged ones, earlier merged mappings beat
//!   later ones, and `1`, `1.0` and `true` are the same key.
//! * Marks are 1-based line/column (columns count characters): a mapping key at the key, a
//!   block mapping at its first key, a block sequence at its first `-` (also when it is not
//!   indented under its key), a flow collection at its bracket, a block scalar at its `|`/`>`.
//!
//! Where this loader knowingly differs from PyYAML:
//! * Integers beyond `i64` become the nearest `f64` (`NodeKind::Float`), not big integers.
//! * Timestamps (`2024-01-01`) stay strings instead of `date`/`datetime` objects (their text is
//!   what Ansible prints for a date anyway).
//! * A plain `=` is the string `"="` (PyYAML fails on its "value" tag); `0b_`/`0x_` are strings
//!   (PyYAML fails in `int()`); a plain `<<` as a value is the string `"<<"`.
//! * A redefined anchor replaces the earlier one (YAML 1.2), where PyYAML refuses it; recursive
//!   aliases are an error; alias expansion is capped at [`MAX_ALIAS_NODES`] copied nodes and
//!   nesting at [`MAX_DEPTH`] levels (yaml-rust2 stops flow nesting at 255).
//! * yaml-rust2 is a YAML 1.2 scanner, so a few syntax corner cases differ (it accepts a tab
//!   before a block entry, for one) and syntax error messages are worded differently.
//! * A node with an anchor or tag is marked at its content, not at the `&anchor`/`!tag` (tag
//!   errors do point at the tag); an omitted value (`key:`) is marked at its key.

mod loader;
mod resolve;
mod source;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use loader::load_stream;
use resolve::python_float_repr;

/// A position in a YAML text, 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

/// A parsed YAML node with the position where it starts.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

/// The resolved value of a node.
#[derive(Clone, Debug)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; merge keys (`<<`) already applied.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with its position.
#[derive(Clone, Debug)]
pub struct YamlError {
    pub message: String,
    pub mark: Mark,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {}, column {})", self.message, self.mark.line, self.mark.col)
    }
}

impl std::error::Error for YamlError {}

/// Parses every document of a YAML stream; an empty stream (or one holding only
/// comments) gives an empty `Vec`.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    Ok(load_stream(text)?.into_iter().map(|(node, _)| node).collect())
}

/// Parses a single-document YAML text; an empty text is `Null`.
///
/// Like PyYAML's `safe_load` (and so Ansible), a stream holding more than one document
/// is an error ("expected a single document in the stream") marked at the second one.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut docs = load_stream(text)?;
    if docs.len() > 1 {
        return Err(YamlError { message: "expected a single document in the stream, but found another document".into(), mark: docs[1].1 });
    }
    Ok(match docs.pop() {
        Some((node, _)) => node,
        None => Node { kind: NodeKind::Null, mark: Mark { line: 1, col: 1 } },
    })
}

/// Parses YAML text straight to JSON data (for `from_yaml`, vars files, `-e @file`).
pub fn parse_json(text: &str) -> Result<serde_json::Value, YamlError> {
    Ok(parse(text)?.into_json())
}

impl Node {
    /// Converts to JSON data; non-string keys become their string form as in Ansible's output.
    ///
    /// Keys use [`Node::key_string`] (Python's `str()`: `True`, `None`, `1`, `1.5`).
    /// Finite floats stay JSON floats (`1.0` stays `1.0`); NaN and the infinities, which JSON
    /// cannot hold, become the strings `"nan"`, `"inf"` and `"-inf"`. Integers beyond the
    /// `i64` range were already read as floats by the loader (see the module docs).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => Value::String(python_float_repr(*f)),
            },
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(pairs) => {
                let mut map = serde_json::Map::with_capacity(pairs.len());
                for (k, v) in pairs {
                    map.insert(k.key_string().into_owned(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// [`Node::to_json`] taking the node, so strings move instead of being copied.
    pub fn into_json(self) -> serde_json::Value {
        use serde_json::Value;
        match self.kind {
            NodeKind::Str(s) => Value::String(s),
            NodeKind::Seq(items) => Value::Array(items.into_iter().map(Node::into_json).collect()),
            NodeKind::Map(pairs) => {
                let mut map = serde_json::Map::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let key = match k.kind {
                        NodeKind::Str(s) => s,
                        _ => k.key_string().into_owned(),
                    };
                    map.insert(key, v.into_json());
                }
                Value::Object(map)
            }
            _ => self.to_json(),
        }
    }

    /// The string a key becomes in JSON output: Python's `str()` of the value
    /// (`None`, `True`/`False`, `42`, `1.5`, `1e+16`, `inf`, `nan`; strings as they are).
    /// A sequence or mapping (which the loader never accepts as a key) is shown as its JSON text.
    pub fn key_string(&self) -> Cow<'_, str> {
        match &self.kind {
            NodeKind::Str(s) => Cow::Borrowed(s),
            NodeKind::Null => Cow::Borrowed("None"),
            NodeKind::Bool(true) => Cow::Borrowed("True"),
            NodeKind::Bool(false) => Cow::Borrowed("False"),
            NodeKind::Int(i) => Cow::Owned(i.to_string()),
            NodeKind::Float(f) => Cow::Owned(python_float_repr(*f)),
            NodeKind::Seq(_) | NodeKind::Map(_) => Cow::Owned(self.to_json().to_string()),
        }
    }

    /// The value for the string key `key` of a mapping (`None` for other nodes or a missing key).
    /// Only string keys match: `get("1")` does not find the integer key `1`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(pairs) => pairs.iter().find(|(k, _)| matches!(&k.kind, NodeKind::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string node (`None` for every other kind, including numbers).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a boolean node.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            NodeKind::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value of an integer node.
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            NodeKind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The items of a sequence node.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The key/value pairs of a mapping node, in document order.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// Whether the node is null (`~`, `null`, an empty value, `!!null`).
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The Python type name of the value as Ansible reports it in messages:
    /// `NoneType`, `bool`, `int`, `float`, `str`, `list` or `dict`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "NoneType",
            NodeKind::Bool(_) => "bool",
            NodeKind::Int(_) => "int",
            NodeKind::Float(_) => "float",
            NodeKind::Str(_) => "str",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "dict",
        }
    }
}

/// Deepest nesting of sequences/mappings accepted (PyYAML stops near Python's recursion limit).
pub const MAX_DEPTH: usize = 1000;
/// Most nodes that alias expansion may copy in one stream (guards against "billion laughs").
pub const MAX_ALIAS_NODES: usize = 1_000_000;

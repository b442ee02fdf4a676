//! YAML as Ansible reads it: PyYAML's YAML 1.1 resolver applied to every plain scalar,
//! with the position of every node kept so errors can name file:line:column.

use std::fmt;

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

/// Parses every document of a YAML stream.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder::default();
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    parser.load(&mut b, true).map_err(|e| YamlError {
        message: e.info().to_string(),
        mark: Mark { line: e.marker().line(), col: e.marker().col() + 1 },
    })?;
    if let Some(err) = b.error {
        return Err(err);
    }
    Ok(b.docs)
}

/// Parses a single-document YAML text; an empty text is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut docs = parse_documents(text)?;
    Ok(if docs.is_empty() { Node { kind: NodeKind::Null, mark: Mark { line: 1, col: 1 } } } else { docs.swap_remove(0) })
}

/// Parses YAML text straight to JSON data (for `from_yaml`, vars files, `-e @file`).
pub fn parse_json(text: &str) -> Result<serde_json::Value, YamlError> {
    Ok(parse(text)?.to_json())
}

impl Node {
    /// Converts to JSON data; non-string keys become their Python `str()` form, NaN and
    /// infinities become the strings Python prints for them.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            NodeKind::Null => J::Null,
            NodeKind::Bool(b) => J::Bool(*b),
            NodeKind::Int(i) => J::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or_else(|| {
                J::String(if f.is_nan() { "nan".into() } else if *f > 0.0 { "inf".into() } else { "-inf".into() })
            }),
            NodeKind::Str(s) => J::String(s.clone()),
            NodeKind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                let mut m = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(k.key_string(), v.to_json());
                }
                J::Object(m)
            }
        }
    }

    /// The text of a scalar used as a mapping key, as Python's `str()` shows it.
    pub fn key_string(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Null => "None".into(),
            NodeKind::Bool(true) => "True".into(),
            NodeKind::Bool(false) => "False".into(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => format!("{f:?}"),
            _ => self.to_json().to_string(),
        }
    }

    /// The value of `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().rev().find(|(k, _)| matches!(&k.kind, NodeKind::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Builds nodes from parser events, resolving scalars, aliases and merge keys.
#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: std::collections::HashMap<usize, Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key, _)) => match &mut parent.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => match pending_key.take() {
                    None => {
                        // The parser marks a block mapping where it saw the first `:`; the
                        // first key's position is what a user recognises.
                        if entries.is_empty() && node.mark != Mark::default() {
                            parent.mark = node.mark;
                        }
                        *pending_key = Some(node)
                    }
                    Some(k) => {
                        if matches!(&k.kind, NodeKind::Str(s) if s == "<<") && k.mark != Mark::default() {
                            merge_into(entries, node);
                        } else {
                            // PyYAML keeps the last value of a duplicated key, in the first
                            // key's place.
                            let ks = k.key_string();
                            if let Some(slot) = entries.iter_mut().find(|(ek, _)| ek.key_string() == ks) {
                                slot.1 = node;
                            } else {
                                entries.push((k, node));
                            }
                        }
                    }
                },
                _ => {}
            },
        }
    }
}

/// Applies a merge key: keys of the merged map(s) that the map does not have yet.
fn merge_into(entries: &mut Vec<(Node, Node)>, value: Node) {
    let maps: Vec<Node> = match value.kind {
        NodeKind::Seq(items) => items,
        _ => vec![value],
    };
    for m in maps {
        if let NodeKind::Map(src) = m.kind {
            for (k, v) in src {
                let ks = k.key_string();
                if !entries.iter().any(|(ek, _)| ek.key_string() == ks) {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: yaml_rust2::Event, marker: yaml_rust2::scanner::Marker) {
        use yaml_rust2::Event as E;
        if self.error.is_some() {
            return;
        }
        let mark = Mark { line: marker.line(), col: marker.col() + 1 };
        match ev {
            E::SequenceStart(anchor, tag) => {
                if let Err(e) = check_collection_tag(tag.as_ref(), "seq", mark) {
                    self.error = Some(e);
                    return;
                }
                self.stack.push((Node { kind: NodeKind::Seq(Vec::new()), mark }, None, anchor));
            }
            E::MappingStart(anchor, tag) => {
                if let Err(e) = check_collection_tag(tag.as_ref(), "map", mark) {
                    self.error = Some(e);
                    return;
                }
                self.stack.push((Node { kind: NodeKind::Map(Vec::new()), mark }, None, anchor));
            }
            E::SequenceEnd | E::MappingEnd => {
                if let Some((node, _, anchor)) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            E::Scalar(value, style, anchor, tag) => match resolve_scalar(value, style, tag.as_ref(), mark) {
                Ok(kind) => {
                    // A plain `<<` key is a merge key; marks tell it from a quoted "<<".
                    let node = Node { kind, mark };
                    let node = if matches!(&node.kind, NodeKind::Str(s) if s == "<<") && style != yaml_rust2::scanner::TScalarStyle::Plain {
                        Node { kind: NodeKind::Str("<<".into()), mark: Mark::default() }
                    } else {
                        node
                    };
                    self.push_value(node, anchor);
                }
                Err(e) => self.error = Some(e),
            },
            E::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let n = n.clone();
                    self.push_value(n, 0);
                }
                None => self.error = Some(YamlError { message: "found undefined alias".into(), mark }),
            },
            _ => {}
        }
    }
}

fn check_collection_tag(tag: Option<&yaml_rust2::parser::Tag>, kind: &str, mark: Mark) -> Result<(), YamlError> {
    let Some(t) = tag else { return Ok(()) };
    let full = format!("{}{}", t.handle, t.suffix);
    let ok = match kind {
        "seq" => matches!(full.as_str(), "!!seq" | "tag:yaml.org,2002:seq"),
        _ => matches!(full.as_str(), "!!map" | "tag:yaml.org,2002:map"),
    };
    if ok {
        Ok(())
    } else {
        Err(YamlError { message: format!("could not determine a constructor for the tag '{full}'"), mark })
    }
}

/// PyYAML's implicit resolution for plain scalars, and explicit tags.
fn resolve_scalar(value: String, style: yaml_rust2::scanner::TScalarStyle, tag: Option<&yaml_rust2::parser::Tag>, mark: Mark) -> Result<NodeKind, YamlError> {
    use yaml_rust2::scanner::TScalarStyle;
    if let Some(t) = tag {
        let full = format!("{}{}", t.handle, t.suffix);
        let name = full.strip_prefix("tag:yaml.org,2002:").map(|s| format!("!!{s}")).unwrap_or(full.clone());
        let bad = || YamlError { message: format!("could not convert '{value}' to {name}"), mark };
        return match name.as_str() {
            "!!str" | "!unsafe" | "!" => Ok(NodeKind::Str(value)),
            "!!int" => resolve_int(&value).map(NodeKind::Int).ok_or_else(bad),
            "!!float" => resolve_float(&value).or_else(|| resolve_int(&value).map(|i| i as f64)).map(NodeKind::Float).ok_or_else(bad),
            "!!bool" => resolve_bool(&value).map(NodeKind::Bool).ok_or_else(bad),
            "!!null" => Ok(NodeKind::Null),
            "!vault" => Err(YamlError { message: "Ansible Vault values (!vault) are not supported by airlock".into(), mark }),
            other => Err(YamlError { message: format!("could not determine a constructor for the tag '{other}'"), mark }),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(NodeKind::Str(value));
    }
    Ok(resolve_plain(value))
}

fn resolve_plain(v: String) -> NodeKind {
    match v.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        _ => {}
    }
    if let Some(b) = resolve_bool(&v) {
        return NodeKind::Bool(b);
    }
    let first = v.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(i) = resolve_int(&v) {
            return NodeKind::Int(i);
        }
        if let Some(f) = resolve_float(&v) {
            return NodeKind::Float(f);
        }
    }
    NodeKind::Str(v)
}

fn resolve_bool(v: &str) -> Option<bool> {
    match v {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// PyYAML's int regexp: `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) |
/// [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`.
fn resolve_int(v: &str) -> Option<i64> {
    let (neg, body) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if body.is_empty() {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let val: i64 = if let Some(b) = body.strip_prefix("0b") {
        if b.is_empty() || !b.chars().all(|c| c == '0' || c == '1' || c == '_') {
            return None;
        }
        i64::from_str_radix(&clean[2..], 2).ok()?
    } else if let Some(h) = body.strip_prefix("0x") {
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit() || c == '_') {
            return None;
        }
        i64::from_str_radix(&clean[2..], 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        if !body[1..].chars().all(|c| ('0'..='7').contains(&c) || c == '_') {
            return None;
        }
        if clean.len() == 1 { 0 } else { i64::from_str_radix(&clean[1..], 8).ok()? }
    } else if body.contains(':') {
        // Sexagesimal: 1:30 is 90.
        let mut parts = body.split(':');
        let head = parts.next()?;
        if head.is_empty() || head.starts_with('0') || !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return None;
        }
        let mut total: i64 = head.replace('_', "").parse().ok()?;
        for p in parts {
            if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<i64>().ok()? > 59 {
                return None;
            }
            total = total * 60 + p.parse::<i64>().ok()?;
        }
        total
    } else {
        if !body.chars().all(|c| c.is_ascii_digit() || c == '_') || body.starts_with('_') {
            return None;
        }
        clean.parse().ok()?
    };
    Some(if neg { -val } else { val })
}

/// PyYAML's float regexp: `[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? |
/// \.[0-9][0-9_]*(?:[eE][-+][0-9]+)? | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* |
/// [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)`.
fn resolve_float(v: &str) -> Option<f64> {
    let (neg, body) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let sign = if neg { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if v == body => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exp {
        let digits = e.strip_prefix('-').or_else(|| e.strip_prefix('+'))?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let (int_part, frac) = mantissa.split_once('.')?;
    if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    if int_part.is_empty() {
        // `.5` needs a digit first after the dot, and no sign in PyYAML's regexp.
        if neg || v.starts_with('+') || !frac.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
    } else if int_part.contains(':') {
        let mut parts = int_part.split(':');
        let head = parts.next()?;
        if head.is_empty() || !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return None;
        }
        let mut total: f64 = head.replace('_', "").parse().ok()?;
        for p in parts {
            if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            total = total * 60.0 + p.parse::<f64>().ok()?;
        }
        let f: f64 = format!("0.{}", frac.replace('_', "")).parse().unwrap_or(0.0);
        return Some(sign * (total + f));
    } else if !int_part.starts_with(|c: char| c.is_ascii_digit()) || !int_part.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    let text = format!("{}.{}{}", if int_part.is_empty() { "0" } else { int_part }, frac, exp.map(|e| format!("e{e}")).unwrap_or_default()).replace('_', "");
    let text = if text.contains(".e") || text.ends_with('.') { text.replace(".e", ".0e").trim_end_matches('.').to_string() } else { text };
    text.parse::<f64>().ok().map(|f| sign * f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn j(s: &str) -> serde_json::Value {
        parse_json(s).unwrap()
    }

    #[test]
    fn yaml_11_scalars_as_pyyaml() {
        assert_eq!(
            j("[yes, No, ON, off, TRUE, false, y, n, ~, null, '', 0644, 0o644, 0x1F, 0b101, 1_000, 1:30, 1.5, 1e3, 1.0e+3, .5, -.inf, '0644', \"yes\", 012345678, 3.]"),
            json!([true, false, true, false, true, false, "y", "n", null, null, "", 420, "0o644", 31, 5, 1000, 90, 1.5, "1e3", 1000.0, 0.5, "-inf", "0644", "yes", "012345678", 3.0])
        );
        assert_eq!(j("a:\nb: !!str 12\nc: !unsafe '{{ x }}'\nd: !!int '7'"), json!({"a": null, "b": "12", "c": "{{ x }}", "d": 7}));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = j("base: &b {x: 1, y: 2}\nother: &o {z: 3}\nm:\n  <<: [*b, *o]\n  y: 9\nlist: [*o]\n");
        assert_eq!(v["m"], json!({"y": 9, "x": 1, "z": 3}));
        assert_eq!(v["list"], json!([{"z": 3}]));
        assert_eq!(j("a: 1\na: 2\n"), json!({"a": 2}));
    }

    #[test]
    fn marks_point_at_nodes_and_errors() {
        let n = parse("- hosts: all\n  tasks:\n    - debug: msg=x\n").unwrap();
        let NodeKind::Seq(plays) = &n.kind else { panic!() };
        let NodeKind::Map(entries) = &plays[0].kind else { panic!() };
        assert_eq!(entries[1].0.mark, Mark { line: 2, col: 3 });
        let tasks = plays[0].get("tasks").unwrap();
        let NodeKind::Seq(t) = &tasks.kind else { panic!() };
        assert_eq!(t[0].mark, Mark { line: 3, col: 7 });
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.mark.line >= 1, "{e}");
        let e = parse("x: !vault abc\n").unwrap_err();
        assert!(e.message.contains("Vault"));
        assert_eq!(parse_documents("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(parse_documents("").unwrap().is_empty());
    }
}

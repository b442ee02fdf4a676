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
pub fn parse_documents(_text: &str) -> Result<Vec<Node>, YamlError> {
    unimplemented!("yaml loader")
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
    /// Converts to JSON data; non-string keys become their string form as in Ansible's output.
    pub fn to_json(&self) -> serde_json::Value {
        unimplemented!("yaml loader")
    }
}

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

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

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

// ---------------------------------------------------------------------------------------
// Loading: yaml-rust2 events -> Nodes
// ---------------------------------------------------------------------------------------

/// Deepest nesting of sequences/mappings accepted (PyYAML stops near Python's recursion limit).
pub const MAX_DEPTH: usize = 1000;
/// Most nodes that alias expansion may copy in one stream (guards against "billion laughs").
pub const MAX_ALIAS_NODES: usize = 1_000_000;

const YAML_TAG_PREFIX: &str = "tag:yaml.org,2002:";

fn to_mark(m: &Marker) -> Mark {
    // yaml-rust2 lines are 1-based, columns 0-based.
    Mark { line: m.line(), col: m.col() + 1 }
}

fn scan_error(e: &ScanError) -> YamlError {
    YamlError { message: e.info().to_string(), mark: to_mark(e.marker()) }
}

/// A key waiting for its value inside a mapping being built.
enum PendingKey {
    Normal(Node),
    /// A merge key (`<<`).
    Merge,
}

enum Frame {
    Seq {
        mark: Mark,
        /// Char index of `mark`.
        index: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        /// Pairs from merge keys, already in PyYAML's order (see `add_merge`).
        merged: Vec<(Node, Node)>,
        pairs: Vec<(Node, Node)>,
        key: Option<PendingKey>,
        seen_key: bool,
    },
}

struct Loader<'t> {
    text: &'t str,
    src: Source<'t>,
    docs: Vec<(Node, Mark)>,
    doc_mark: Mark,
    stack: Vec<Frame>,
    /// Anchored nodes of the current document by yaml-rust2 anchor id, with their node count.
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    /// Char index of the previous event (lower bound when looking for a tag's text).
    prev_index: usize,
}

/// What the loader knows about a finished node besides the node itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    /// A plain `<<` (or `!!merge`) scalar: a merge key when used as a key.
    Merge,
    /// An empty plain scalar (an omitted value), whose own mark points past it.
    Empty,
}

fn load_stream(text: &str) -> Result<Vec<(Node, Mark)>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut loader = Loader {
        text,
        src: Source::new(text),
        docs: Vec::new(),
        doc_mark: Mark { line: 1, col: 1 },
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        prev_index: 0,
    };
    loop {
        let (event, marker) = parser.next_token().map_err(|e| scan_error(&e))?;
        if loader.event(event, &marker)? {
            break;
        }
        loader.prev_index = marker.index();
    }
    Ok(loader.docs)
}

impl Loader<'_> {
    /// Handles one event; true at the end of the stream.
    fn event(&mut self, event: Event, marker: &Marker) -> Result<bool, YamlError> {
        let mark = to_mark(marker);
        match event {
            Event::StreamEnd => return Ok(true),
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart => {
                // Not `clear()`, which costs the map's capacity again for every later document.
                self.anchors = HashMap::new();
                self.doc_mark = mark;
            }
            Event::Alias(id) => {
                let Some((node, count)) = self.anchors.get(&id) else {
                    return Err(YamlError { message: "found an alias to an anchor that is not complete or not in this document".into(), mark });
                };
                self.alias_nodes += count;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(YamlError { message: format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"), mark });
                }
                let node = node.clone();
                self.add(node, Extra::None)?;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let (node, extra) = self.scalar(value, style, tag, mark, marker.index())?;
                self.anchor(anchor, &node);
                self.add(node, extra)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag, "sequence", mark, marker.index())?;
                self.check_depth(mark)?;
                self.stack.push(Frame::Seq { mark, index: marker.index(), anchor, items: Vec::new() });
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag, "mapping", mark, marker.index())?;
                self.check_depth(mark)?;
                self.stack.push(Frame::Map { mark, anchor, merged: Vec::new(), pairs: Vec::new(), key: None, seen_key: false });
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { mark, anchor, items, .. }) => {
                    let node = Node { kind: NodeKind::Seq(items), mark };
                    self.anchor(anchor, &node);
                    self.add(node, Extra::None)?;
                }
                _ => return Err(YamlError { message: "unexpected end of sequence".into(), mark }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { mark, anchor, merged, pairs, .. }) => {
                    let pairs = if merged.is_empty() {
                        dedupe(pairs)
                    } else {
                        let mut all = merged;
                        all.extend(pairs);
                        dedupe(all)
                    };
                    let node = Node { kind: NodeKind::Map(pairs), mark };
                    self.anchor(anchor, &node);
                    self.add(node, Extra::None)?;
                }
                _ => return Err(YamlError { message: "unexpected end of mapping".into(), mark }),
            },
        }
        Ok(false)
    }

    fn check_depth(&self, mark: Mark) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError { message: format!("sequences and mappings nested more than {MAX_DEPTH} deep"), mark });
        }
        Ok(())
    }

    fn anchor(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), count_nodes(node)));
        }
    }

    /// Puts a finished node into its parent (or makes it a document).
    fn add(&mut self, mut node: Node, extra: Extra) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.docs.push((node, self.doc_mark));
            return Ok(());
        };
        match frame {
            Frame::Seq { items, mark, index, .. } => {
                if items.is_empty()
                    && let Some(dash) = self.src.indentless_dash(*mark, *index, node.mark)
                {
                    *mark = dash;
                }
                items.push(node)
            }
            Frame::Map { mark, merged, pairs, key, seen_key, .. } => match key.take() {
                None => {
                    if !*seen_key {
                        // yaml-rust2 marks a block mapping one column after its first key.
                        *seen_key = true;
                        if (node.mark.line, node.mark.col) < (mark.line, mark.col) {
                            *mark = node.mark;
                        }
                    }
                    if extra == Extra::Merge {
                        *key = Some(PendingKey::Merge);
                    } else {
                        if matches!(node.kind, NodeKind::Seq(_) | NodeKind::Map(_)) {
                            return Err(YamlError {
                                message: format!("while constructing a mapping, found unhashable key ({})", with_article(node.type_name())),
                                mark: node.mark,
                            });
                        }
                        *key = Some(PendingKey::Normal(node));
                    }
                }
                Some(PendingKey::Normal(k)) => {
                    if extra == Extra::Empty {
                        node.mark = k.mark;
                    }
                    pairs.push((k, node));
                }
                Some(PendingKey::Merge) => add_merge(merged, node)?,
            },
        }
        Ok(())
    }

    /// Builds a scalar node from its text, style and tag.
    fn scalar(&self, value: String, style: TScalarStyle, tag: Option<Tag>, mark: Mark, index: usize) -> Result<(Node, Extra), YamlError> {
        let mark = match style {
            TScalarStyle::Literal | TScalarStyle::Folded => self.src.block_indicator(mark, index).unwrap_or(mark),
            _ => mark,
        };
        let node = |kind| Node { kind, mark };
        let Some(tag) = tag else {
            if style != TScalarStyle::Plain {
                return Ok((node(NodeKind::Str(value)), Extra::None));
            }
            return Ok(match value.as_str() {
                "<<" => (node(NodeKind::Str(value)), Extra::Merge),
                "" => (node(NodeKind::Null), Extra::Empty),
                _ => (node(resolve_plain(value)), Extra::None),
            });
        };
        if is_non_specific(&tag) {
            // `! value`: PyYAML resolves it as if plain, even when quoted.
            let extra = if value == "<<" { Extra::Merge } else { Extra::None };
            return Ok((node(resolve_plain(value)), extra));
        }
        let bad = |message: String| YamlError { message, mark: self.tag_mark(&tag, mark, index) };
        let kind = match core_tag(&tag) {
            Some("str") => NodeKind::Str(value),
            Some("null") => NodeKind::Null,
            Some("bool") => match value.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" => NodeKind::Bool(true),
                "no" | "false" | "off" => NodeKind::Bool(false),
                _ => return Err(bad(format!("invalid boolean for !!bool: {value:?}"))),
            },
            Some("int") => construct_int(&value).ok_or_else(|| bad(format!("invalid literal for !!int: {value:?}")))?,
            Some("float") => NodeKind::Float(construct_float(&value).ok_or_else(|| bad(format!("could not convert string to float for !!float: {value:?}")))?),
            Some("merge") => return Ok((node(NodeKind::Str(value)), Extra::Merge)),
            // PyYAML builds a datetime; we keep the text, which is how it prints.
            Some("timestamp") => NodeKind::Str(value),
            Some("seq" | "map" | "omap" | "pairs" | "set") => {
                return Err(YamlError {
                    message: format!("expected a collection for the tag '{}', but found a scalar", tag_name(&tag)),
                    mark: self.tag_mark(&tag, mark, index),
                });
            }
            _ if is_unsafe(&tag) => NodeKind::Str(value),
            _ => return Err(self.unknown_tag(&tag, mark, index)),
        };
        Ok((node(kind), Extra::None))
    }

    fn check_collection_tag(&self, tag: Option<Tag>, what: &str, mark: Mark, index: usize) -> Result<(), YamlError> {
        let Some(tag) = tag else { return Ok(()) };
        if is_non_specific(&tag) || is_unsafe(&tag) {
            return Ok(());
        }
        match (core_tag(&tag), what) {
            (Some("seq"), "sequence") | (Some("map"), "mapping") => Ok(()),
            (Some(t @ ("seq" | "map")), _) => Err(YamlError {
                message: format!("expected a {} for the tag '{}', but found a {what}", if t == "seq" { "sequence" } else { "mapping" }, tag_name(&tag)),
                mark: self.tag_mark(&tag, mark, index),
            }),
            (Some("str" | "int" | "float" | "bool" | "null" | "timestamp" | "binary"), _) => Err(YamlError {
                message: format!("expected a scalar for the tag '{}', but found a {what}", tag_name(&tag)),
                mark: self.tag_mark(&tag, mark, index),
            }),
            _ => Err(self.unknown_tag(&tag, mark, index)),
        }
    }

    fn unknown_tag(&self, tag: &Tag, mark: Mark, index: usize) -> YamlError {
        let name = tag_name(tag);
        let hint = if name == "!vault" { " (Ansible Vault data is not supported)" } else { "" };
        YamlError { message: format!("could not determine a constructor for the tag '{name}'{hint}"), mark: self.tag_mark(tag, mark, index) }
    }

    /// Where the tag is written: yaml-rust2 marks a node at its content, after its tag, so
    /// look back for the tag's text between the previous event and the node. Error path only.
    fn tag_mark(&self, tag: &Tag, mark: Mark, index: usize) -> Mark {
        let spelled = if tag.handle == YAML_TAG_PREFIX {
            format!("!!{}", tag.suffix)
        } else if tag.handle.is_empty() {
            format!("!<{}>", tag.suffix)
        } else if tag.handle.starts_with('!') {
            format!("{}{}", tag.handle, tag.suffix)
        } else {
            return mark; // a %TAG prefix: the written form is unknown
        };
        let start = self.src.byte_at_char(self.prev_index);
        let end = self.src.byte_at_char(index + 1).max(start);
        match self.text[start..end].rfind(&spelled) {
            Some(at) => self.src.mark_of(start + at),
            None => mark,
        }
    }
}

/// Adds the value of a merge key (`<<`) to the merged pairs the way PyYAML's
/// `flatten_mapping` does: a list of mappings is merged last-to-first, so once the
/// pairs are deduplicated (first position, last value) earlier mappings win.
fn add_merge(merged: &mut Vec<(Node, Node)>, value: Node) -> Result<(), YamlError> {
    let not_mapping = |found: &Node, what: &str| YamlError {
        message: format!("expected {what} for merging, but found {}", with_article(found.type_name())),
        mark: found.mark,
    };
    match value.kind {
        NodeKind::Map(pairs) => merged.extend(pairs),
        NodeKind::Seq(items) => {
            if let Some(bad) = items.iter().find(|n| !matches!(n.kind, NodeKind::Map(_))) {
                return Err(not_mapping(bad, "a mapping"));
            }
            for item in items.into_iter().rev() {
                if let NodeKind::Map(pairs) = item.kind {
                    merged.extend(pairs);
                }
            }
        }
        _ => return Err(not_mapping(&value, "a mapping or list of mappings")),
    }
    Ok(())
}

/// Identity of a key under Python's `==`/`hash` (so `1`, `1.0` and `True` are one key).
#[derive(Hash, PartialEq, Eq, Clone, Copy)]
enum KeyId<'a> {
    Null,
    Int(i64),
    Float(u64),
    Str(&'a str),
}

fn key_id(node: &Node) -> Option<KeyId<'_>> {
    Some(match &node.kind {
        NodeKind::Null => KeyId::Null,
        NodeKind::Bool(b) => KeyId::Int(*b as i64),
        NodeKind::Int(i) => KeyId::Int(*i),
        NodeKind::Float(f) => {
            if f.is_nan() {
                return None; // nan != nan
            } else if f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < -(i64::MIN as f64) {
                KeyId::Int(*f as i64)
            } else {
                KeyId::Float(f.to_bits())
            }
        }
        NodeKind::Str(s) => KeyId::Str(s),
        NodeKind::Seq(_) | NodeKind::Map(_) => return None,
    })
}

/// Applies Python dict semantics to a list of pairs: a repeated key keeps the position
/// (and key node) of its first occurrence and the value of its last.
fn dedupe(pairs: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let n = pairs.len();
    if n < 2 {
        return pairs;
    }
    // first[i]: index of the first pair with the same key as pair i.
    let mut first: Vec<usize> = Vec::new();
    let mut dup = false;
    if n <= 12 {
        // Small mappings (most of them): compare pairwise, allocating only on a duplicate.
        for i in 1..n {
            if let Some(id) = key_id(&pairs[i].0)
                && let Some(j) = (0..i).find(|&j| key_id(&pairs[j].0) == Some(id))
            {
                if !dup {
                    first = (0..n).collect();
                    dup = true;
                }
                first[i] = first[j];
            }
        }
    } else {
        first = (0..n).collect();
        let mut seen: HashMap<KeyId, usize> = HashMap::with_capacity(n);
        for (i, (k, _)) in pairs.iter().enumerate() {
            if let Some(id) = key_id(k) {
                let j = *seen.entry(id).or_insert(i);
                if j != i {
                    first[i] = j;
                    dup = true;
                }
            }
        }
    }
    if !dup {
        return pairs;
    }
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(n);
    let mut slot = vec![0usize; n];
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if first[i] == i {
            slot[i] = out.len();
            out.push((k, v));
        } else {
            out[slot[first[i]]].1 = v;
        }
    }
    out
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeKind::Map(pairs) => pairs.iter().map(|(k, v)| count_nodes(k) + count_nodes(v)).sum(),
        _ => 0,
    }
}

/// `a list`, `an int`.
fn with_article(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

fn tag_name(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// The `!` tag: resolve as a plain scalar.
fn is_non_specific(tag: &Tag) -> bool {
    (tag.handle.is_empty() && tag.suffix == "!") || (tag.handle == "!" && tag.suffix.is_empty())
}

/// Ansible's `!unsafe`.
fn is_unsafe(tag: &Tag) -> bool {
    tag.handle == "!" && tag.suffix == "unsafe"
}

/// The name after `tag:yaml.org,2002:` (`!!name` or the verbatim form).
fn core_tag(tag: &Tag) -> Option<&str> {
    if tag.handle == YAML_TAG_PREFIX {
        Some(&tag.suffix)
    } else if tag.handle.is_empty() {
        tag.suffix.strip_prefix(YAML_TAG_PREFIX)
    } else {
        None
    }
}

/// The text being loaded, for the few marks yaml-rust2 does not place where PyYAML does.
///
/// Converting between byte offsets, char indexes and marks goes through tables built on first
/// use in one pass over the text, so each conversion costs O(log n) whatever its place in the
/// text: counting from the start of the text for every fix-up made loading quadratic (a Helm
/// index puts an unindented list in every entry).
struct Source<'t> {
    text: &'t str,
    ascii: bool,
    /// Byte offset of each line's start (after each `\n`), built on first use.
    line_starts: OnceCell<Vec<usize>>,
    /// For a non-ASCII text, the byte offset of every [`CHAR_STEP`]-th char, built on first use.
    char_steps: OnceCell<Vec<usize>>,
}

/// Chars between two entries of [`Source::char_steps`]: a lookup walks at most this many.
const CHAR_STEP: usize = 64;

impl<'t> Source<'t> {
    fn new(text: &'t str) -> Self {
        Source { text, ascii: text.is_ascii(), line_starts: OnceCell::new(), char_steps: OnceCell::new() }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut starts = Vec::with_capacity(self.text.len() / 32 + 1);
            starts.push(0);
            starts.extend(self.text.match_indices('\n').map(|(i, _)| i + 1));
            starts
        })
    }

    fn char_steps(&self) -> &[usize] {
        self.char_steps.get_or_init(|| self.text.char_indices().step_by(CHAR_STEP).map(|(b, _)| b).collect())
    }

    /// The byte offset of the char with index `chars` (the text's length past its end).
    fn byte_at_char(&self, chars: usize) -> usize {
        if self.ascii {
            return chars.min(self.text.len());
        }
        let Some(&from) = self.char_steps().get(chars / CHAR_STEP) else { return self.text.len() };
        self.text[from..].char_indices().nth(chars % CHAR_STEP).map_or(self.text.len(), |(i, _)| from + i)
    }

    /// The index of the char starting at byte offset `byte` (a char boundary).
    fn char_at_byte(&self, byte: usize) -> usize {
        if self.ascii {
            return byte;
        }
        let steps = self.char_steps();
        let step = steps.partition_point(|&b| b <= byte).saturating_sub(1);
        let from = steps.get(step).copied().unwrap_or(0);
        step * CHAR_STEP + self.text[from..byte].chars().count()
    }

    /// The byte offset of a mark whose char index is `index` (clamped to the text).
    fn byte_of(&self, mark: Mark, index: usize) -> usize {
        if self.ascii {
            return index.min(self.text.len());
        }
        // Through the line and column, as always, not the index: the two disagree after a lone
        // `\r`, a line break to yaml-rust2 but not in `line_starts`.
        let Some(&start) = self.line_starts().get(mark.line.saturating_sub(1)) else { return self.text.len() };
        self.byte_at_char(self.char_at_byte(start) + mark.col.saturating_sub(1))
    }

    /// The mark (lines counted by `\n`, columns in chars) of the byte offset `byte`.
    fn mark_of(&self, byte: usize) -> Mark {
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= byte);
        let start = starts[line - 1];
        let col = if self.ascii { byte - start } else { self.char_at_byte(byte) - self.char_at_byte(start) };
        Mark { line, col: col + 1 }
    }

    /// yaml-rust2 marks a sequence that is not indented under its key (`key:\n- x`) after
    /// its first `- `, where its first item starts; PyYAML marks the `-`. Given the sequence's
    /// mark and its first item's, returns the dash's mark when that is the case.
    fn indentless_dash(&self, seq: Mark, seq_index: usize, first_item: Mark) -> Option<Mark> {
        let at = self.byte_of(seq, seq_index);
        let bytes = self.text.as_bytes();
        let here = bytes.get(at).copied();
        // A proper block sequence is marked at its `-`, a flow one at its `[`; an indentless
        // one at its first item (which may itself be a `-`, or an anchor/tag before it).
        if matches!(here, Some(b'-' | b'[')) && first_item != seq {
            return None;
        }
        let before = self.text[..at].trim_end_matches([' ', '\t']);
        before.ends_with('-').then(|| self.mark_of(before.len() - 1))
    }

    /// yaml-rust2 marks a block scalar (`|`, `>`) at its content; PyYAML at the indicator.
    /// Finds the indicator on the content's line (before it) or the last non-blank line above.
    fn block_indicator(&self, content: Mark, index: usize) -> Option<Mark> {
        let at = self.byte_of(content, index);
        let mut line_end = at;
        let mut line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        loop {
            let line = &self.text[line_start..line_end];
            if let Some(i) = block_header_indicator(line) {
                return Some(self.mark_of(line_start + i));
            }
            if line_start == 0 || (!line.trim().is_empty() && line_end != at) {
                return None;
            }
            line_end = line_start - 1;
            line_start = self.text[..line_end].rfind('\n').map_or(0, |i| i + 1);
        }
    }
}

/// The byte index of a block scalar indicator ending a header line such as
/// `key: !tag |2- # comment`.
fn block_header_indicator(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut found = None;
    for (i, &c) in b.iter().enumerate() {
        if c != b'|' && c != b'>' {
            continue;
        }
        if i > 0 && !matches!(b[i - 1], b' ' | b'\t' | b':' | b'-' | b'?') {
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && matches!(b[j], b'0'..=b'9' | b'+' | b'-') {
            j += 1;
        }
        let rest = line[j..].trim_start_matches([' ', '\t', '\r']);
        if rest.is_empty() || (rest.starts_with('#') && j < b.len() && b[j] != b'#') {
            found = Some(i);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------
// PyYAML's YAML 1.1 implicit resolver (resolver.py) and scalar constructors (constructor.py)
// ---------------------------------------------------------------------------------------

/// Resolves a plain scalar as PyYAML's `Resolver` does (bool, int, float, null, else str).
fn resolve_plain(value: String) -> NodeKind {
    let Some(&first) = value.as_bytes().first() else {
        return NodeKind::Null;
    };
    let kind = match first {
        b'~' if value.len() == 1 => Some(NodeKind::Null),
        b'n' | b'N' if matches!(value.as_str(), "null" | "Null" | "NULL") => Some(NodeKind::Null),
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' => match value.as_str() {
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(NodeKind::Bool(true)),
            "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(NodeKind::Bool(false)),
            _ => None,
        },
        b'-' | b'+' | b'.' | b'0'..=b'9' => match_int(&value).or_else(|| match_float(&value).map(NodeKind::Float)),
        _ => None,
    };
    kind.unwrap_or(NodeKind::Str(value))
}

/// An unsigned magnitude that turns into a float past `u64`.
#[derive(Clone, Copy)]
enum Mag {
    Exact(u64),
    Big(f64),
}

impl Mag {
    fn add(self, other: Mag) -> Mag {
        match (self, other) {
            (Mag::Exact(a), Mag::Exact(b)) if a.checked_add(b).is_some() => Mag::Exact(a + b),
            _ => Mag::Big(self.to_f64() + other.to_f64()),
        }
    }

    fn to_f64(self) -> f64 {
        match self {
            Mag::Exact(m) => m as f64,
            Mag::Big(f) => f,
        }
    }

    fn signed(self, negative: bool) -> NodeKind {
        match self {
            Mag::Exact(m) if !negative && m <= i64::MAX as u64 => NodeKind::Int(m as i64),
            Mag::Exact(m) if negative && m <= i64::MAX as u64 + 1 => NodeKind::Int((m as i64).wrapping_neg()),
            _ => NodeKind::Float(if negative { -self.to_f64() } else { self.to_f64() }),
        }
    }
}

/// Digits (with `_` separators allowed anywhere) in `radix`; `None` if another character
/// shows up, or if there is no digit at all and `empty` (its value) is `None`.
fn digits(s: &[u8], radix: u32, empty: Option<u64>) -> Option<Mag> {
    let mut acc: u64 = 0;
    let mut any = false;
    let mut overflow = false;
    for &c in s {
        if c == b'_' {
            continue;
        }
        let d = (c as char).to_digit(radix)?;
        any = true;
        if !overflow {
            match acc.checked_mul(radix as u64).and_then(|a| a.checked_add(d as u64)) {
                Some(a) => acc = a,
                None => overflow = true,
            }
        }
    }
    if !any {
        return empty.map(Mag::Exact);
    }
    if !overflow {
        return Some(Mag::Exact(acc));
    }
    // Past u64 (rare): the nearest float, as Python's float(int) gives.
    let clean: String = s.iter().filter(|&&c| c != b'_').map(|&c| c as char).collect();
    Some(Mag::Big(if radix == 10 { clean.parse().ok()? } else { clean.chars().fold(0.0, |f, c| f * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64) }))
}

fn split_sign(s: &[u8]) -> (bool, bool, &[u8]) {
    match s.first() {
        Some(b'-') => (true, true, &s[1..]),
        Some(b'+') => (false, true, &s[1..]),
        _ => (false, false, s),
    }
}

/// PyYAML's int regex:
/// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ |
/// [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`, valued as `construct_yaml_int` does.
/// `0b_`/`0x_` (no digits) match PyYAML's regex but then fail in `int()`; here they stay strings.
fn match_int(s: &str) -> Option<NodeKind> {
    let (negative, _, body) = split_sign(s.as_bytes());
    let mag = match body {
        [] => return None,
        [b'0'] => Mag::Exact(0),
        [b'0', b'b', rest @ ..] => digits(rest, 2, None)?,
        [b'0', b'x', rest @ ..] => digits(rest, 16, None)?,
        [b'0', rest @ ..] => digits(rest, 8, Some(0))?,
        [b'1'..=b'9', ..] => match body.iter().position(|&c| c == b':') {
            None => digits(body, 10, None)?,
            Some(colon) => {
                let mut mag = digits(&body[..colon], 10, None)?;
                for part in body[colon + 1..].split(|&c| c == b':') {
                    let d = match *part {
                        [d @ b'0'..=b'9'] => d - b'0',
                        [t @ b'0'..=b'5', u @ b'0'..=b'9'] => (t - b'0') * 10 + (u - b'0'),
                        _ => return None,
                    };
                    mag = mag_mul(mag, 60).add(Mag::Exact(d as u64));
                }
                mag
            }
        },
        _ => return None,
    };
    Some(mag.signed(negative))
}

fn mag_mul(m: Mag, by: u64) -> Mag {
    match m {
        Mag::Exact(a) => match a.checked_mul(by) {
            Some(p) => Mag::Exact(p),
            None => Mag::Big(a as f64 * by as f64),
        },
        Mag::Big(f) => Mag::Big(f * by as f64),
    }
}

/// PyYAML's float regex:
/// `[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)? |
/// [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)`.
/// Note that a dot is required: `1e3` is a string, and so are `-.5` and `1.5e3` (the
/// exponent needs a sign).
fn match_float(s: &str) -> Option<f64> {
    let (negative, signed, body) = split_sign(s.as_bytes());
    let sign = |f: f64| if negative { -f } else { f };
    match body {
        b".inf" | b".Inf" | b".INF" => return Some(sign(f64::INFINITY)),
        b".nan" | b".NaN" | b".NAN" if !signed => return Some(f64::NAN),
        _ => {}
    }
    let is_digit = |c: &u8| c.is_ascii_digit() || *c == b'_';
    let exponent_ok = |rest: &[u8]| match rest {
        [] => true,
        [b'e' | b'E', b'-' | b'+', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    match body.first() {
        Some(b'.') if !signed => {
            let rest = &body[1..];
            if !rest.first().is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let n = rest.iter().take_while(|c| is_digit(c)).count();
            if !exponent_ok(&rest[n..]) {
                return None;
            }
        }
        Some(b'0'..=b'9') => {
            let n = body.iter().take_while(|c| is_digit(c)).count();
            match body.get(n) {
                Some(b'.') => {
                    let rest = &body[n + 1..];
                    let m = rest.iter().take_while(|c| is_digit(c)).count();
                    if !exponent_ok(&rest[m..]) {
                        return None;
                    }
                }
                Some(b':') => {
                    // (?::[0-5]?[0-9])+\.[0-9_]*
                    let dot = body.iter().position(|&c| c == b'.')?;
                    for part in body[n + 1..dot].split(|&c| c == b':') {
                        if !matches!(*part, [b'0'..=b'9'] | [b'0'..=b'5', b'0'..=b'9']) {
                            return None;
                        }
                    }
                    if !body[dot + 1..].iter().all(is_digit) {
                        return None;
                    }
                    return sexagesimal_float(&s.replace('_', ""));
                }
                _ => return None,
            }
        }
        _ => return None,
    }
    s.replace('_', "").parse().ok()
}

/// `[-+]?a:b:c.d` -> the base-60 value, as PyYAML's `construct_yaml_float`.
fn sexagesimal_float(s: &str) -> Option<f64> {
    let (negative, _, body) = split_sign(s.as_bytes());
    let body = std::str::from_utf8(body).ok()?;
    let mut value = 0.0;
    for part in body.split(':') {
        value = value * 60.0 + part.trim().parse::<f64>().ok()?;
    }
    Some(if negative { -value } else { value })
}

/// PyYAML's `construct_yaml_int` for an explicit `!!int` (any text, not only what the
/// implicit resolver accepts): `_` removed, `0b`, `0x`, leading-`0` octal, `a:b` base 60.
fn construct_int(value: &str) -> Option<NodeKind> {
    let cleaned = value.trim().replace('_', "");
    let (negative, _, body) = split_sign(cleaned.as_bytes());
    let mag = match body {
        [] => return None,
        [b'0'] => Mag::Exact(0),
        [b'0', b'b' | b'B', rest @ ..] => digits(rest, 2, None)?,
        [b'0', b'x' | b'X', rest @ ..] => digits(rest, 16, None)?,
        [b'0', b'o' | b'O', rest @ ..] => digits(rest, 8, None)?,
        [b'0', rest @ ..] => digits(rest, 8, None)?,
        _ if body.contains(&b':') => {
            let mut mag = Mag::Exact(0);
            for part in body.split(|&c| c == b':') {
                mag = mag_mul(mag, 60).add(digits(part, 10, None)?);
            }
            mag
        }
        _ => digits(body, 10, None)?,
    };
    Some(mag.signed(negative))
}

/// PyYAML's `construct_yaml_float` for an explicit `!!float` (Python's `float()` after
/// removing `_`, plus `.inf`, `.nan` and base 60).
fn construct_float(value: &str) -> Option<f64> {
    let cleaned = value.trim().replace('_', "").to_ascii_lowercase();
    let (negative, _, body) = split_sign(cleaned.as_bytes());
    let sign = |f: f64| if negative { -f } else { f };
    match body {
        b".inf" => Some(sign(f64::INFINITY)),
        b".nan" => Some(f64::NAN),
        _ if body.contains(&b':') => sexagesimal_float(&cleaned),
        // Rust's float syntax is Python's (incl. inf/infinity/nan) minus `_`, removed above.
        _ => cleaned.parse().ok(),
    }
}

/// Python's `repr()`/`str()` of a float: shortest round-trip digits, scientific notation
/// when the exponent is below -4 or at least 16, `.0` on integral values.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f); // e.g. "-1.2345e-5", "1e16", "0e0"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{neg}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{neg}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("{neg}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let frac = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{neg}{}{frac}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are PyYAML 6.0's (`yaml.safe_load`) unless a test says otherwise.
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Node {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn js(text: &str) -> serde_json::Value {
        load(text).to_json()
    }

    /// The value of `a` in `a: <scalar>`.
    fn val(scalar: &str) -> NodeKind {
        let node = load(&format!("a: {scalar}"));
        node.get("a").unwrap_or_else(|| panic!("no a in {scalar:?}")).kind.clone()
    }

    fn err(text: &str) -> YamlError {
        match parse(text) {
            Ok(n) => panic!("{text:?} parsed as {:?}", n.to_json()),
            Err(e) => e,
        }
    }

    fn m(line: usize, col: usize) -> Mark {
        Mark { line, col }
    }

    fn is_str(k: &NodeKind, s: &str) -> bool {
        matches!(k, NodeKind::Str(x) if x == s)
    }

    #[test]
    fn booleans() {
        for t in ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"] {
            assert!(matches!(val(t), NodeKind::Bool(true)), "{t}");
        }
        for f in ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"] {
            assert!(matches!(val(f), NodeKind::Bool(false)), "{f}");
        }
        for s in ["y", "n", "Y", "N", "yEs", "FaLsE", "oN", "yes please", "truthy"] {
            assert!(is_str(&val(s), s), "{s}");
        }
        // Keys are resolved too: GitHub-style `on:` is the boolean True.
        assert_eq!(js("on: push"), json!({"True": "push"}));
    }

    #[test]
    fn nulls() {
        for n in ["~", "null", "Null", "NULL", ""] {
            assert!(matches!(val(n), NodeKind::Null), "{n:?}");
        }
        assert!(is_str(&val("nULL"), "nULL"));
        assert_eq!(js("- ~\n-\n- ''\n- 'null'\n- \"~\""), json!([null, null, "", "null", "~"]));
    }

    #[test]
    fn integers() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+1", 1),
            ("42", 42),
            ("-17", -17),
            ("1_000", 1000),
            ("1__0", 10),
            ("1_", 1),
            ("0b1010", 10),
            ("0b_1", 1),
            ("+0b11", 3),
            ("-0b11", -3),
            ("0644", 420),
            ("00", 0),
            ("0_1", 1),
            ("-0_", 0),
            ("07_7", 63),
            ("-012", -10),
            ("0x1F", 31),
            ("0x1f_", 31),
            ("0x_1F", 31),
            ("-0x1F", -31),
            ("1:30", 90),
            ("1:5", 65),
            ("-1:30", -90),
            ("1:30:00", 5400),
            ("190:20:30", 685230),
            ("1_0:30", 630),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, want) in cases {
            match val(text) {
                NodeKind::Int(i) => assert_eq!(i, *want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn strings_that_look_numeric() {
        for s in [
            "0o644", "0O17", "09", "0b", "0x", "0o", "-0b", "0b2", "0xg", "0X1F", "_1", "1:60", "0:30", "01:30", "1:30_", "1:3_0", "1e3", "1e+3", "1.0e3",
            "1.5e3", "12e03", "1.e3", "1e", "-.5", "+.5", ".", "._", "1.2.3", "+", "-.nan", "1:30:60", "1 2", "0x-1", "1.5e+", "0b_", "0x_",
        ] {
            assert!(is_str(&val(s), s), "{s} -> {:?}", val(s));
        }
    }

    #[test]
    fn floats() {
        let cases: &[(&str, f64)] = &[
            ("1.5", 1.5),
            ("1.", 1.0),
            ("0.", 0.0),
            ("1.0", 1.0),
            (".5", 0.5),
            ("-1_0.", -10.0),
            ("1_0.5", 10.5),
            ("1.5_0", 1.5),
            ("08.5", 8.5),
            ("1.5E+3", 1500.0),
            ("1.5e-3", 0.0015),
            (".1e+3", 100.0),
            ("+1.0e+3", 1000.0),
            ("1:30.5", 90.5),
            ("1:20.5", 80.5),
            ("1_0:3.", 603.0),
            ("-1:0.5", -60.5),
            ("1.0e+400", f64::INFINITY),
            (".inf", f64::INFINITY),
            (".Inf", f64::INFINITY),
            ("+.INF", f64::INFINITY),
            ("-.Inf", f64::NEG_INFINITY),
            ("-.inf", f64::NEG_INFINITY),
        ];
        for (text, want) in cases {
            match val(text) {
                NodeKind::Float(f) => assert_eq!(f, *want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for nan in [".nan", ".NaN", ".NAN"] {
            assert!(matches!(val(nan), NodeKind::Float(f) if f.is_nan()), "{nan}");
        }
    }

    #[test]
    fn big_integers_become_floats() {
        // PyYAML keeps Python's unbounded int; we give the nearest f64 past the i64 range.
        assert!(matches!(val("9223372036854775808"), NodeKind::Float(f) if f == 9223372036854775808.0));
        assert!(matches!(val("-9223372036854775809"), NodeKind::Float(f) if f == -9223372036854775809.0));
        assert!(matches!(val("123456789012345678901234567890"), NodeKind::Float(f) if f == 1.2345678901234568e29));
        assert!(matches!(val("0x1_0000_0000_0000_0000"), NodeKind::Float(f) if f == 18446744073709551616.0));
        assert_eq!(js("a: 123456789012345678901234567890"), json!({"a": 1.2345678901234568e29}));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(
            js("- 'yes'\n- \"123\"\n- '1.5'\n- \"null\"\n- '~'\n- |\n  yes\n- >\n  1\n- \"<<\""),
            json!(["yes", "123", "1.5", "null", "~", "yes\n", "1\n", "<<"])
        );
        assert_eq!(js("a: 'it''s'\nb: \"t\\tn\\n\\u00e9\""), json!({"a": "it's", "b": "t\tn\n\u{e9}"}));
        assert_eq!(js("a: b c d\nb: yes please\nc: a\n  b"), json!({"a": "b c d", "b": "yes please", "c": "a b"}));
    }

    #[test]
    fn explicit_tags() {
        assert!(is_str(&val("!!str 123"), "123"));
        assert!(is_str(&val("!!str yes"), "yes"));
        assert!(is_str(&val("!!str"), ""));
        assert!(matches!(val("!!int \"12\""), NodeKind::Int(12)));
        assert!(matches!(val("!!int 0o17"), NodeKind::Int(15)));
        assert!(matches!(val("!!int 017"), NodeKind::Int(15)));
        assert!(matches!(val("!!int -0b101"), NodeKind::Int(-5)));
        assert!(matches!(val("!!int +0x_f"), NodeKind::Int(15)));
        assert!(matches!(val("!!int 1:30"), NodeKind::Int(90)));
        assert!(matches!(val("!!int \" 12\""), NodeKind::Int(12)));
        assert!(matches!(val("!!bool \"yes\""), NodeKind::Bool(true)));
        assert!(matches!(val("!!bool TRUE"), NodeKind::Bool(true)));
        assert!(matches!(val("!!bool no"), NodeKind::Bool(false)));
        assert!(matches!(val("!!bool Off"), NodeKind::Bool(false)));
        assert!(matches!(val("!!float \"1\""), NodeKind::Float(f) if f == 1.0));
        assert!(matches!(val("!!float 1e3"), NodeKind::Float(f) if f == 1000.0));
        assert!(matches!(val("!!float 1:30"), NodeKind::Float(f) if f == 90.0));
        assert!(matches!(val("!!float \"1_000.5\""), NodeKind::Float(f) if f == 1000.5));
        assert!(matches!(val("!!float -.INF"), NodeKind::Float(f) if f == f64::NEG_INFINITY));
        assert!(matches!(val("!!float inf"), NodeKind::Float(f) if f == f64::INFINITY));
        assert!(matches!(val("!!float .NaN"), NodeKind::Float(f) if f.is_nan()));
        assert!(matches!(val("!!null \"\""), NodeKind::Null));
        assert!(matches!(val("!!null x"), NodeKind::Null));
        // Verbatim form, and the non-specific `!` which PyYAML resolves as plain even if quoted.
        assert!(matches!(val("!<tag:yaml.org,2002:int> '5'"), NodeKind::Int(5)));
        assert!(matches!(val("! 123"), NodeKind::Int(123)));
        assert!(matches!(val("! \"123\""), NodeKind::Int(123)));
        // Collection tags that agree with the node.
        assert_eq!(js("a: !!seq [1]\nb: !!map {x: 1}"), json!({"a": [1], "b": {"x": 1}}));
        // A timestamp stays its text (PyYAML builds a date; see module docs).
        assert!(is_str(&val("2024-01-01"), "2024-01-01"));
        assert!(is_str(&val("!!timestamp 2024-01-01"), "2024-01-01"));
    }

    #[test]
    fn explicit_tag_errors() {
        for (text, needle) in [
            ("a: !!int abc", "!!int"),
            ("a: !!int 1.5", "!!int"),
            ("a: !!int \"\"", "!!int"),
            ("a: !!float abc", "!!float"),
            ("a: !!bool y", "!!bool"),
            ("a: !!bool", "!!bool"),
            ("a: !!str [1]", "expected a scalar"),
            ("a: !!str {x: 1}", "expected a scalar"),
            ("a: !!map [1]", "expected a mapping"),
            ("a: !!seq {x: 1}", "expected a sequence"),
            ("a: !!seq x", "expected a collection"),
        ] {
            let e = err(text);
            assert!(e.message.contains(needle), "{text}: {e}");
            assert_eq!(e.mark, m(1, 4), "{text}: {e}");
        }
    }

    #[test]
    fn unsafe_tag_is_a_plain_string() {
        // Ansible's `!unsafe` (PyYAML alone rejects it): always a string, never resolved.
        assert_eq!(
            js("a: !unsafe \"{{ x }}\"\nb: !unsafe 123\nc: !unsafe yes\nd: !unsafe '{% raw %}'"),
            json!({"a": "{{ x }}", "b": "123", "c": "yes", "d": "{% raw %}"})
        );
        // On a collection the tag is accepted and the content loaded as usual.
        assert_eq!(js("a: !unsafe [1, x]"), json!({"a": [1, "x"]}));
    }

    #[test]
    fn unknown_tags_are_errors_naming_the_tag() {
        let e = err("- ok\n- !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031\n");
        assert!(e.message.contains("'!vault'"), "{e}");
        assert_eq!(e.mark, m(2, 3));
        let e = err("key:\n  nested: !foo bar");
        assert!(e.message.contains("'!foo'"), "{e}");
        assert_eq!(e.mark, m(2, 11));
        let e = err("a: !custom {x: 1}");
        assert!(e.message.contains("'!custom'"), "{e}");
        assert_eq!(e.mark, m(1, 4));
        let e = err("a: !!python/name:os.system x");
        assert!(e.message.contains("tag:yaml.org,2002:python/name:os.system"), "{e}");
        for unsupported in ["a: !!binary aGk=", "a: !!set {x, y}", "a: !!omap [{a: 1}]"] {
            assert!(err(unsupported).message.contains("could not determine a constructor"), "{unsupported}");
        }
    }

    #[test]
    fn anchors_and_aliases() {
        assert_eq!(
            js("x: &a [1, {k: v}]\ny: *a\nz: &s scalar\nw: [*s, *s]"),
            json!({"x": [1, {"k": "v"}], "y": [1, {"k": "v"}], "z": "scalar", "w": ["scalar", "scalar"]})
        );
        // An alias is a copy of the anchored node, mark included (PyYAML shares the node).
        let n = load("a: &x\n  k: 1\nb: *x");
        assert_eq!(n.get("b").unwrap().mark, m(2, 3));
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_i64(), Some(1));
        // A redefined anchor: later aliases see the new node (PyYAML refuses duplicate anchors).
        assert_eq!(js("[&a 1, *a, &a 2, *a]"), json!([1, 1, 2, 2]));
    }

    #[test]
    fn alias_errors() {
        let e = err("- *nope");
        assert_eq!(e.mark, m(1, 3));
        assert!(e.message.contains("unknown anchor"), "{e}");
        // Recursive structures are not supported.
        assert_eq!(err("[&a [*a]]").mark, m(1, 6));
        // Anchors do not cross documents.
        assert!(parse_documents("a: &x 1\n---\nb: *x").is_err());
        // "Billion laughs" stops at MAX_ALIAS_NODES copied nodes.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        assert!(err(&text).message.contains("aliases expand"));
    }

    #[test]
    fn merge_keys() {
        // Explicit keys win over merged ones, wherever `<<` stands; merged keys come first.
        assert_eq!(js("b: &x {a: 1, b: 2}\nc:\n  a: 9\n  <<: *x\n  d: 4"), json!({"b": {"a": 1, "b": 2}, "c": {"a": 9, "b": 2, "d": 4}}));
        assert_eq!(js("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 10"), json!({"base": {"x": 1, "y": 2}, "d": {"x": 10, "y": 2}}));
        // A list: earlier mappings win; keys ordered as PyYAML's flatten_mapping leaves them.
        let v = js("p: &p {x: 1}\nq: &q {y: 2, x: 3}\nr:\n  z: 0\n  <<: [*p, *q]");
        assert_eq!(v["r"], json!({"y": 2, "x": 1, "z": 0}));
        assert_eq!(v["r"].as_object().unwrap().keys().collect::<Vec<_>>(), ["y", "x", "z"]);
        // Merges of merges, and two `<<` keys in one mapping.
        assert_eq!(js("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}")["c"], json!({"x": 1, "y": 2, "z": 3}));
        assert_eq!(js("a: {<<: [{x: 1}, {x: 2, y: 3}], <<: {y: 9, q: 1}}")["a"], json!({"x": 1, "y": 9, "q": 1}));
        assert_eq!(js("a: {<<: {}, k: 1}\nb: {<<: []}"), json!({"a": {"k": 1}, "b": {}}));
        // Only a plain `<<` merges.
        assert_eq!(js("a: {'<<': {x: 1}}"), json!({"a": {"<<": {"x": 1}}}));
        assert_eq!(js("a: <<"), json!({"a": "<<"}));
        // An explicit `!!merge` tag merges as well.
        assert_eq!(js("a: {!!merge x: {k: 1}}"), json!({"a": {"k": 1}}));
    }

    #[test]
    fn merge_errors() {
        let e = err("a: &a 1\nb: {<<: *a}");
        assert!(e.message.contains("expected a mapping or list of mappings for merging"), "{e}");
        assert_eq!(e.mark, m(1, 7));
        let e = err("a: {<<: [{x: 1}, 2]}");
        assert!(e.message.contains("expected a mapping for merging, but found an int"), "{e}");
        assert_eq!(e.mark, m(1, 18));
        assert!(err("a: {<<: null}").message.contains("merging"));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_at_the_first_position() {
        let v = js("a: 1\nb: 2\na: 3");
        assert_eq!(v, json!({"a": 3, "b": 2}));
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(js("a: {x: 1, x: 2, y: 3}"), json!({"a": {"x": 2, "y": 3}}));
        // Python's dict: 1 == 1.0 == True, the first key object stays.
        assert_eq!(js("{1: a, true: b, 1.0: c}"), json!({"1": "c"}));
        assert_eq!(js("{0: a, false: b, -0.0: c, ~: d, null: e}"), json!({"0": "c", "None": "e"}));
        // Many keys take the hashing path.
        let mut text: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k7: last\n");
        let v = js(&text);
        assert_eq!(v.as_object().unwrap().len(), 40);
        assert_eq!(v["k7"], json!("last"));
        assert_eq!(v.as_object().unwrap().keys().nth(7).unwrap(), "k7");
    }

    #[test]
    fn unhashable_keys_are_errors() {
        let e = err("? [1, 2]\n: x");
        assert!(e.message.contains("unhashable key"), "{e}");
        assert_eq!(e.mark, m(1, 3));
        assert_eq!(err("[1,2]: x").mark, m(1, 1));
        assert!(err("? {a: 1}\n: x").message.contains("unhashable"));
    }

    #[test]
    fn documents() {
        assert!(parse_documents("").unwrap().is_empty());
        assert!(parse_documents("# only a comment\n\n").unwrap().is_empty());
        let docs = parse_documents("---\n").unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].is_null());
        let docs = parse_documents("a: 1\n---\n- x\n...\n--- 3\n").unwrap();
        assert_eq!(docs.iter().map(Node::to_json).collect::<Vec<_>>(), [json!({"a": 1}), json!(["x"]), json!(3)]);
        assert_eq!(docs[1].mark, m(3, 1));
        assert_eq!(docs[2].mark, m(5, 5));
        // `parse` wants a single document, as PyYAML's safe_load.
        assert!(parse("").unwrap().is_null());
        assert_eq!(parse("").unwrap().mark, m(1, 1));
        assert_eq!(js("---\na: 1\n...\n"), json!({"a": 1}));
        let e = err("a: 1\n---\nb: 2");
        assert!(e.message.contains("expected a single document"), "{e}");
        assert_eq!(e.mark, m(2, 1));
        assert_eq!(parse_json("x: [1, 2]").unwrap(), json!({"x": [1, 2]}));
    }

    #[test]
    fn syntax_errors_have_marks() {
        let e = err("key: value: other");
        assert_eq!(e.mark, m(1, 11));
        assert!(e.message.contains("mapping values are not allowed"), "{e}");
        let e = err("a:\n  b: 1\n c: 2");
        assert_eq!(e.mark.line, 3);
        assert!(e.message.contains("block mapping"), "{e}");
        let e = err("a: [1, 2\nb: 3\n");
        assert_eq!(e.mark.line, 2);
        assert_eq!(err("a: @x").mark, m(1, 4));
        assert_eq!(err("a: - 1").mark, m(1, 4));
        assert!(parse_json("{").is_err());
        // Display names the position.
        assert!(err("a: @x").to_string().ends_with("(line 1, column 4)"));
    }

    #[test]
    fn marks_of_nested_nodes() {
        let text = "\
# comment
- name: Install things
  vars:
    pkgs: [a, \"b\", {c: 1}]
    list:
    - x
    -   y
    nested:
    - - a
    lit: |2- # a > b
       text
    empty:
  tasks:
    - name: é ü
      when: >
        foo
    -   debug: msg=hi
";
        let n = load(text);
        assert_eq!(n.mark, m(2, 1)); // the root block sequence: its `-`
        let play = &n.as_seq().unwrap()[0];
        assert_eq!(play.mark, m(2, 3)); // block mapping: its first key
        let (k, v) = &play.as_map().unwrap()[0];
        assert_eq!((k.mark, v.mark), (m(2, 3), m(2, 9)));
        let vars = play.get("vars").unwrap();
        assert_eq!(vars.mark, m(4, 5));
        assert_eq!(play.as_map().unwrap()[1].0.mark, m(3, 3)); // the key `vars`
        let pkgs = vars.get("pkgs").unwrap();
        assert_eq!(pkgs.mark, m(4, 11)); // flow sequence: its `[`
        let items = pkgs.as_seq().unwrap();
        assert_eq!((items[0].mark, items[1].mark, items[2].mark), (m(4, 12), m(4, 15), m(4, 20)));
        assert_eq!(items[2].as_map().unwrap()[0].0.mark, m(4, 21));
        // A sequence not indented under its key starts at its `-` (as in PyYAML).
        let list = vars.get("list").unwrap();
        assert_eq!(list.mark, m(6, 5));
        assert_eq!(list.as_seq().unwrap()[1].mark, m(7, 9));
        let nested = vars.get("nested").unwrap();
        assert_eq!(nested.mark, m(9, 5));
        assert_eq!(nested.as_seq().unwrap()[0].mark, m(9, 7));
        // A block scalar starts at its indicator; an empty value at its key.
        assert_eq!(vars.get("lit").unwrap().mark, m(10, 10));
        assert!(is_str(&vars.get("lit").unwrap().kind, " text"));
        assert_eq!(vars.get("empty").unwrap().mark, m(12, 5));
        let tasks = play.get("tasks").unwrap().as_seq().unwrap();
        assert_eq!(tasks[0].mark, m(14, 7));
        assert_eq!(tasks[0].get("name").unwrap().mark, m(14, 13));
        // Columns count characters, not bytes.
        assert_eq!(tasks[0].as_map().unwrap()[1].0.mark, m(15, 7));
        assert_eq!(tasks[0].get("when").unwrap().mark, m(15, 13));
        assert_eq!(tasks[1].mark, m(17, 9));
        assert!(is_str(&tasks[1].get("debug").unwrap().kind, "msg=hi"));
    }

    #[test]
    fn marks_in_ascii_text() {
        // The same fix-ups as above on the ASCII fast path (char index = byte index).
        let n = load(
            "a:
- x
- - y
b:
  - &z k
c: >-
  text
d:
-   [1]
",
        );
        assert_eq!(n.mark, m(1, 1));
        assert_eq!(n.get("a").unwrap().mark, m(2, 1));
        assert_eq!(n.get("a").unwrap().as_seq().unwrap()[1].mark, m(3, 3));
        assert_eq!(n.get("b").unwrap().mark, m(5, 3));
        assert_eq!(n.get("c").unwrap().mark, m(6, 4));
        assert_eq!(n.get("d").unwrap().mark, m(9, 1));
        assert_eq!(n.get("d").unwrap().as_seq().unwrap()[0].mark, m(9, 5));
        let n = load(
            "k:
- &anchored v
",
        );
        assert_eq!(n.get("k").unwrap().mark, m(2, 1));
    }

    #[test]
    fn to_json_keys_and_numbers() {
        let v = js("2: a\n1.5: b\ntrue: c\nno: d\n~: e\n-1.5: f\n1.0e+20: g\n0.00001: h\n.inf: i\n-.inf: j\n.nan: k\n10.0: l");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["2", "1.5", "True", "False", "None", "-1.5", "1e+20", "1e-05", "inf", "-inf", "nan", "10.0"]);
        assert_eq!(js("- 1.0\n- 10.0\n- .nan\n- .inf\n- -.inf\n- -0.0\n- 3"), json!([1.0, 10.0, "nan", "inf", "-inf", -0.0, 3]));
        assert_eq!(serde_json::to_string(&js("a: 1.0")).unwrap(), r#"{"a":1.0}"#);
        // Document order is kept.
        let v = js("z: 1\na: 2\nm: 3");
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["z", "a", "m"]);
        // `into_json` (which `parse_json` uses) gives what `to_json` gives, key order included.
        for text in ["{1: a, '1': b, 2.5: c, ~: d, true: [x, {y: .nan}], s: -.inf}", "- [1, 2]\n- {a: {b: c}}\n- 0644"] {
            let (a, b) = (load(text).to_json(), parse_json(text).unwrap());
            assert_eq!(a.to_string(), b.to_string(), "{text}");
        }
    }

    #[test]
    fn python_float_strings() {
        for (f, s) in [
            (1.5, "1.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (1.5e300, "1.5e+300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(python_float_repr(f), s);
        }
    }

    #[test]
    fn helpers() {
        let n = load("s: text\ni: 3\nb: yes\nl: [1]\nm: {k: v}\nn:\nf: 1.5\n1: int key");
        assert_eq!(n.get("s").and_then(Node::as_str), Some("text"));
        assert_eq!(n.get("i").and_then(Node::as_i64), Some(3));
        assert_eq!(n.get("b").and_then(Node::as_bool), Some(true));
        assert_eq!(n.get("l").and_then(Node::as_seq).map(<[Node]>::len), Some(1));
        assert_eq!(n.get("m").and_then(Node::as_map).map(<[(Node, Node)]>::len), Some(1));
        assert!(n.get("n").unwrap().is_null());
        assert!(n.get("missing").is_none());
        assert!(n.get("1").is_none()); // only string keys match
        assert!(n.get("s").unwrap().get("x").is_none());
        let names: Vec<&str> = n.as_map().unwrap().iter().map(|(_, v)| v.type_name()).collect();
        assert_eq!(names, ["str", "int", "bool", "list", "dict", "NoneType", "float", "str"]);
        assert_eq!(n.as_map().unwrap()[7].0.key_string(), "1");
        assert_eq!(n.get("i").unwrap().as_str(), None);
    }

    #[test]
    fn nesting_limit() {
        let deep = "- ".repeat(MAX_DEPTH + 1) + "x";
        let e = err(&deep);
        assert!(e.message.contains("nested"), "{e}");
        assert_eq!(e.mark, m(1, 2 * MAX_DEPTH + 1));
        assert!(parse(&("- ".repeat(MAX_DEPTH) + "x")).is_ok());
        // yaml-rust2 itself stops flow collections at 255 levels.
        assert!(parse(&("[".repeat(300) + &"]".repeat(300))).is_err());
        assert!(parse(&("[".repeat(100) + &"]".repeat(100))).is_ok());
    }

    #[test]
    fn large_playbook_loads_with_merge_keys_and_marks_to_the_end() {
        let mut text = String::from("- hosts: all\n  vars:\n    base: &defaults {owner: root, mode: '0644'}\n  tasks:\n");
        for i in 0..2000 {
            text.push_str(&format!(
                "    - name: task {i}\n      copy:\n        <<: *defaults\n        src: files/{i}.conf\n        dest: /etc/app/{i}.conf\n      when: item_{i} is defined and on\n      tags: [a, b, 'c{i}']\n      retries: 3\n      delay: 1.5\n"
            ));
        }
        let n = parse(&text).unwrap();
        let tasks = n.as_seq().unwrap()[0].get("tasks").unwrap().as_seq().unwrap();
        assert_eq!(tasks.len(), 2000);
        let copy = tasks[1999].get("copy").unwrap();
        assert_eq!(copy.get("owner").and_then(Node::as_str), Some("root"));
        assert_eq!(copy.get("mode").and_then(Node::as_str), Some("0644"));
        assert_eq!(tasks[1999].mark.line, 4 + 1999 * 9 + 1);
        // Its speed is measured in benches/yaml.sh, not asserted here.
    }

    /// A repository index as `helm repo index` writes it (lists not indented under their key,
    /// `|-` for multi-line descriptions), `charts` charts of `versions` versions each, with
    /// a maintainer's name in non-ASCII letters. Also gives, for the last entry, the lines of
    /// its chart's first `-`, its first key, its `description`, and the first `-` of its
    /// `keywords` and of its `maintainers`.
    fn helm_index(charts: usize, versions: usize) -> (String, [usize; 5]) {
        use std::fmt::Write;
        let mut text = String::from("apiVersion: v1\nentries:\n");
        let mut line = 3;
        let mut last = [0; 5];
        for c in 0..charts {
            let name = format!("chart-{c:04}");
            writeln!(text, "  {name}:").unwrap();
            line += 1;
            last[0] = line;
            for v in (0..versions).rev() {
                let version = format!("{}.{v}.{}", 1 + c % 3, c % 7);
                last[1] = line;
                last[2] = line + 5;
                last[3] = line + 10;
                last[4] = line + 13;
                writeln!(
                    text,
                    "  - annotations:\n      category: GPU\n    apiVersion: v2\n    appVersion: {version}\n    \
                     created: \"2024-10-28T18:29:03.{c:05}{v:04}Z\"\n    description: |-\n      {name} {version} for GPUs.\n      \
                     Second line.\n    digest: {:064x}\n    keywords:\n    - gpu\n    - cuda\n    maintainers:\n    \
                     - email: jurgen@example.com\n      name: Jürgen Müller\n    name: {name}\n    urls:\n    \
                     - https://charts.example.com/{name}-{version}.tgz\n    version: {version}",
                    c * versions + v
                )
                .unwrap();
                line += 19;
            }
        }
        text.push_str("generated: \"2024-10-29T00:00:00Z\"\n");
        (text, last)
    }

    #[test]
    fn big_helm_index_keeps_its_marks_to_the_end() {
        let (text, [list_line, entry_line, description_line, keywords_line, maintainers_line]) = helm_index(400, 20);
        let index = load(&text);
        let entries = index.get("entries").unwrap().as_map().unwrap();
        assert_eq!(entries.len(), 400);
        assert_eq!(entries.iter().map(|(_, v)| v.as_seq().unwrap().len()).sum::<usize>(), 8000);
        let (key, versions) = entries.last().unwrap();
        assert_eq!(key.as_str(), Some("chart-0399"));
        // The unindented list of the last chart at its `-`, its last entry at its first key.
        assert_eq!(versions.mark, m(list_line, 3));
        let e = versions.as_seq().unwrap().last().unwrap();
        assert_eq!(e.mark, m(entry_line, 5));
        assert_eq!(e.get("version").and_then(Node::as_str), Some("1.0.0"));
        let d = e.get("description").unwrap();
        assert_eq!(d.mark, m(description_line, 18));
        assert_eq!(d.as_str(), Some("chart-0399 1.0.0 for GPUs.\nSecond line."));
        assert_eq!(e.get("keywords").unwrap().mark, m(keywords_line, 5));
        let maintainers = e.get("maintainers").unwrap();
        assert_eq!(maintainers.mark, m(maintainers_line, 5));
        let person = &maintainers.as_seq().unwrap()[0];
        assert_eq!(person.mark, m(maintainers_line, 7));
        assert_eq!(person.get("name").unwrap().mark, m(maintainers_line + 1, 13));
        assert_eq!(person.get("name").and_then(Node::as_str), Some("Jürgen Müller"));
        assert_eq!(index.get("generated").unwrap().mark.line, text.lines().count());
    }

    #[test]
    fn source_positions_agree_with_counting_from_the_start() {
        let long = format!("k: [{}]\n- ü\n", "é, x".repeat(3 * CHAR_STEP));
        for text in ["", "a", "a: b\n- c\r\nd\n\n", "é: ü\n  - 日本\r- x\n\n", "x\n\u{feff}é", long.as_str()] {
            let src = Source::new(text);
            let mut chars = 0;
            for byte in (0..=text.len()).filter(|&b| text.is_char_boundary(b)) {
                let before = &text[..byte];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let mark = m(before.matches('\n').count() + 1, before[line_start..].chars().count() + 1);
                assert_eq!(src.mark_of(byte), mark, "{text:?} at {byte}");
                assert_eq!(src.char_at_byte(byte), chars, "{text:?} at {byte}");
                assert_eq!(src.byte_at_char(chars), byte, "{text:?} at {byte}");
                assert_eq!(src.byte_of(mark, chars), byte, "{text:?} at {byte}");
                chars += 1;
            }
            // Past the end: the text's length.
            assert_eq!(src.byte_at_char(chars + CHAR_STEP), text.len());
            assert_eq!(src.byte_of(m(text.lines().count() + 2, 1), chars + 1), text.len());
        }
    }
}

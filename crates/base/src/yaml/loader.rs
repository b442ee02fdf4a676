//! The loader: turns yaml-rust2's events into [`Node`]s with PyYAML's tags, anchors and
//! aliases, merge keys and duplicate-key rules, and its marks.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::resolve::{construct_float, construct_int, resolve_plain};
use super::source::Source;
use super::{MAX_ALIAS_NODES, MAX_DEPTH, Mark, Node, NodeKind, YamlError};

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

pub(super) fn load_stream(text: &str) -> Result<Vec<(Node, Mark)>, YamlError> {
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

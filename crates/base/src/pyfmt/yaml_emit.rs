//! PyYAML's `yaml.dump` for `to_yaml`/`to_nice_yaml`: its SafeRepresenter and YAML 1.1
//! resolver, and a port of libyaml 0.2.5's emitter (Ansible uses `CSafeDumper`).

use minijinja::Value;
use minijinja::value::ValueKind;

use super::{EmitError, Shape, py_float_repr, shape};

/// Options for [`to_yaml_with`], as `yaml.dump` takes them.
#[derive(Clone, Debug)]
pub struct YamlOptions {
    /// Spaces per indentation level (2 to 9; anything else means 2).
    pub indent: usize,
    /// Preferred line width (folding of long scalars); negative means no limit.
    pub width: i64,
    /// `None`: collections holding only scalars in flow style (`[a, b]`), others in block
    /// style; `Some(true)`: everything in flow style; `Some(false)`: everything in block style.
    pub default_flow_style: Option<bool>,
    pub sort_keys: bool,
    pub allow_unicode: bool,
    pub explicit_start: bool,
    pub explicit_end: bool,
}

impl Default for YamlOptions {
    fn default() -> Self {
        YamlOptions { indent: 2, width: 80, default_flow_style: None, sort_keys: true, allow_unicode: true, explicit_start: false, explicit_end: false }
    }
}

/// PyYAML's `yaml.dump` as Ansible calls it: `to_yaml` is
/// `yaml.dump(v, allow_unicode=True, default_flow_style=None, indent=indent)` (leaf collections
/// in flow style); `to_nice_yaml` (`nice`) is block style. Keys are sorted, long plain scalars
/// fold at width 80, and the text ends with a newline.
pub fn to_yaml(v: &Value, indent: usize, nice: bool) -> Result<String, EmitError> {
    let opts = YamlOptions { indent, default_flow_style: if nice { Some(false) } else { None }, ..YamlOptions::default() };
    to_yaml_with(v, &opts)
}

/// [`to_yaml`] with all of `yaml.dump`'s options that Ansible users pass.
pub fn to_yaml_with(v: &Value, opts: &YamlOptions) -> Result<String, EmitError> {
    let node = represent(v, opts, 0)?;
    let mut events = Vec::new();
    events.push(Ev::StreamStart);
    events.push(Ev::DocStart { implicit: !opts.explicit_start });
    serialize(&node, &mut events);
    events.push(Ev::DocEnd { implicit: !opts.explicit_end });
    events.push(Ev::StreamEnd);
    let mut em = Emitter::new(opts);
    for i in 0..events.len() {
        em.emit(&events, i)?;
    }
    Ok(em.out)
}

enum Node {
    Scalar { value: String, plain_implicit: bool },
    Seq { items: Vec<Node>, flow: bool },
    Map { items: Vec<(Node, Node)>, flow: bool },
}

fn represent(v: &Value, opts: &YamlOptions, depth: usize) -> Result<Node, EmitError> {
    if depth > 500 {
        return Err(EmitError::TooDeep);
    }
    let scalar = |value: String| Node::Scalar { value, plain_implicit: true };
    Ok(match shape(v) {
        Shape::Undefined => return Err(EmitError::UndefinedYaml),
        Shape::None => scalar("null".into()),
        Shape::Bool(b) => scalar(if b { "true" } else { "false" }.into()),
        Shape::Int(s) => scalar(s),
        Shape::Float(f) => scalar(yaml_float(f)),
        Shape::Str(s) | Shape::Other(s) => {
            let plain_implicit = !resolves_to_non_str(&s);
            Node::Scalar { value: s, plain_implicit }
        }
        Shape::Seq(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            let mut best = true;
            for item in &items {
                let n = represent(item, opts, depth + 1)?;
                if !matches!(n, Node::Scalar { .. }) {
                    best = false;
                }
                nodes.push(n);
            }
            Node::Seq { items: nodes, flow: opts.default_flow_style.unwrap_or(best) }
        }
        Shape::Map(items) => {
            let mut items = items;
            if opts.sort_keys && items.len() > 1 {
                let all_str = items.iter().all(|p| p.0.kind() == ValueKind::String);
                let all_num = items.iter().all(|p| matches!(p.0.kind(), ValueKind::Number | ValueKind::Bool));
                if all_str {
                    items.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                } else if all_num {
                    items.sort_by(|a, b| a.0.cmp(&b.0));
                }
            }
            let mut nodes = Vec::with_capacity(items.len());
            let mut best = true;
            for (k, item) in &items {
                let kn = represent(k, opts, depth + 1)?;
                let vn = represent(item, opts, depth + 1)?;
                if !matches!(kn, Node::Scalar { .. }) || !matches!(vn, Node::Scalar { .. }) {
                    best = false;
                }
                nodes.push((kn, vn));
            }
            Node::Map { items: nodes, flow: opts.default_flow_style.unwrap_or(best) }
        }
    })
}

/// PyYAML's `represent_float`.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let r = py_float_repr(f).to_lowercase();
    if !r.contains('.') && r.contains('e') { r.replacen('e', ".0e", 1) } else { r }
}

mod resolver {
    use regex::Regex;
    use std::sync::LazyLock;

    pub static BOOL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$").unwrap());
    pub static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?",
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)",
            r"|\.(?:nan|NaN|NAN))$"
        ))
        .unwrap()
    });
    pub static INT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:[-+]?0b[0-1_]+",
            r"|[-+]?0[0-7_]+",
            r"|[-+]?(?:0|[1-9][0-9_]*)",
            r"|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
        ))
        .unwrap()
    });
    pub static NULL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").unwrap());
    pub static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?",
            r"(?:[Tt]|[ \t]+)[0-9][0-9]?",
            r":[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?",
            r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
        ))
        .unwrap()
    });
}

/// Whether PyYAML's YAML 1.1 resolver reads this plain scalar as something other than a
/// string (bool, int, float, null, timestamp, merge key `<<` or value key `=`).
pub fn resolves_to_non_str(s: &str) -> bool {
    // Python's `$` also matches before a final newline.
    let s = s.strip_suffix('\n').unwrap_or(s);
    s == "<<"
        || s == "="
        || resolver::NULL.is_match(s)
        || resolver::BOOL.is_match(s)
        || resolver::INT.is_match(s)
        || resolver::FLOAT.is_match(s)
        || resolver::TIMESTAMP.is_match(s)
}

enum Ev {
    StreamStart,
    StreamEnd,
    DocStart { implicit: bool },
    DocEnd { implicit: bool },
    Scalar { value: String, plain_implicit: bool },
    SeqStart { flow: bool },
    SeqEnd,
    MapStart { flow: bool },
    MapEnd,
}

fn serialize(node: &Node, events: &mut Vec<Ev>) {
    match node {
        Node::Scalar { value, plain_implicit } => events.push(Ev::Scalar { value: value.clone(), plain_implicit: *plain_implicit }),
        Node::Seq { items, flow } => {
            events.push(Ev::SeqStart { flow: *flow });
            for item in items {
                serialize(item, events);
            }
            events.push(Ev::SeqEnd);
        }
        Node::Map { items, flow } => {
            events.push(Ev::MapStart { flow: *flow });
            for (k, v) in items {
                serialize(k, events);
                serialize(v, events);
            }
            events.push(Ev::MapEnd);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    StreamStart,
    FirstDocumentStart,
    DocumentStart,
    DocumentContent,
    DocumentEnd,
    FlowSequenceFirstItem,
    FlowSequenceItem,
    FlowMappingFirstKey,
    FlowMappingKey,
    FlowMappingSimpleValue,
    FlowMappingValue,
    BlockSequenceFirstItem,
    BlockSequenceItem,
    BlockMappingFirstKey,
    BlockMappingKey,
    BlockMappingSimpleValue,
    BlockMappingValue,
    End,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
}

#[derive(Default)]
struct ScalarData {
    chars: Vec<char>,
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
}

struct Emitter {
    out: String,
    best_indent: i64,
    best_width: i64,
    unicode: bool,
    state: St,
    states: Vec<St>,
    indent: i64,
    indents: Vec<i64>,
    flow_level: i64,
    mapping_context: bool,
    simple_key_context: bool,
    column: i64,
    whitespace: bool,
    indention: bool,
    open_ended: i32,
    scalar: ScalarData,
    style: Style,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

fn is_printable(c: char) -> bool {
    let n = c as u32;
    n == 0x0a || (0x20..=0x7e).contains(&n) || (0xa0..=0xd7ff).contains(&n) || ((0xe000..=0xfffd).contains(&n) && n != 0xfeff)
}

impl Emitter {
    fn new(opts: &YamlOptions) -> Emitter {
        Emitter {
            out: String::new(),
            best_indent: opts.indent as i64,
            best_width: opts.width,
            unicode: opts.allow_unicode,
            state: St::StreamStart,
            states: Vec::new(),
            indent: -1,
            indents: Vec::new(),
            flow_level: 0,
            mapping_context: false,
            simple_key_context: false,
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: 0,
            scalar: ScalarData::default(),
            style: Style::Plain,
        }
    }

    // --- output primitives -------------------------------------------------------------------

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, ind: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { self.best_indent } else { 0 };
        } else if !indentless {
            self.indent += self.best_indent;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(St::End);
    }

    // --- analysis ------------------------------------------------------------------------------

    fn analyze_scalar(&mut self, value: &str) {
        let chars: Vec<char> = value.chars().collect();
        let mut d = ScalarData { chars, ..ScalarData::default() };
        if d.chars.is_empty() {
            d.multiline = false;
            d.flow_plain_allowed = false;
            d.block_plain_allowed = true;
            d.single_quoted_allowed = true;
            self.scalar = d;
            return;
        }
        let s = &d.chars;
        let (mut block_ind, mut flow_ind, mut line_breaks, mut special) = (false, false, false, false);
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        if (s.len() >= 3 && s[0] == '-' && s[1] == '-' && s[2] == '-') || (s.len() >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '.') {
            block_ind = true;
            flow_ind = true;
        }
        let mut preceded_by_ws = true;
        let mut followed_by_ws = is_blankz(s.get(1).copied());
        let n = s.len();
        for i in 0..n {
            let c = s[i];
            if i == 0 {
                if matches!(c, '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`') {
                    flow_ind = true;
                    block_ind = true;
                }
                if c == '?' || c == ':' {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                if c == '-' && followed_by_ws {
                    flow_ind = true;
                    block_ind = true;
                }
            } else {
                if matches!(c, ',' | '?' | '[' | ']' | '{' | '}') {
                    flow_ind = true;
                }
                if c == ':' {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                if c == '#' && preceded_by_ws {
                    flow_ind = true;
                    block_ind = true;
                }
            }
            if !is_printable(c) || (!c.is_ascii() && !self.unicode) {
                special = true;
            }
            if is_break(c) {
                line_breaks = true;
            }
            if c == ' ' {
                if i == 0 {
                    leading_space = true;
                }
                if i + 1 == n {
                    trailing_space = true;
                }
                if previous_break {
                    break_space = true;
                }
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                if i == 0 {
                    leading_break = true;
                }
                if i + 1 == n {
                    trailing_break = true;
                }
                if previous_space {
                    space_break = true;
                }
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_ws = is_blankz(Some(c));
            if i + 1 < n {
                followed_by_ws = is_blankz(s.get(i + 2).copied());
            }
        }
        d.multiline = line_breaks;
        d.flow_plain_allowed = true;
        d.block_plain_allowed = true;
        d.single_quoted_allowed = true;
        if leading_space || leading_break || trailing_space || trailing_break {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
        }
        if break_space {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
            d.single_quoted_allowed = false;
        }
        if space_break || special {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
            d.single_quoted_allowed = false;
        }
        if line_breaks {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
        }
        if flow_ind {
            d.flow_plain_allowed = false;
        }
        if block_ind {
            d.block_plain_allowed = false;
        }
        self.scalar = d;
    }

    fn check_empty_sequence(events: &[Ev], i: usize) -> bool {
        matches!(events.get(i), Some(Ev::SeqStart { .. })) && matches!(events.get(i + 1), Some(Ev::SeqEnd))
    }

    fn check_empty_mapping(events: &[Ev], i: usize) -> bool {
        matches!(events.get(i), Some(Ev::MapStart { .. })) && matches!(events.get(i + 1), Some(Ev::MapEnd))
    }

    fn check_simple_key(&self, events: &[Ev], i: usize) -> bool {
        // libyaml measures the length in bytes.
        let length = match &events[i] {
            Ev::Scalar { .. } => {
                if self.scalar.multiline {
                    return false;
                }
                self.scalar.chars.iter().map(|c| c.len_utf8()).sum::<usize>()
            }
            Ev::SeqStart { .. } => {
                if !Self::check_empty_sequence(events, i) {
                    return false;
                }
                0
            }
            Ev::MapStart { .. } => {
                if !Self::check_empty_mapping(events, i) {
                    return false;
                }
                0
            }
            _ => return false,
        };
        length <= 128
    }

    // --- state machine -------------------------------------------------------------------------

    fn emit(&mut self, events: &[Ev], i: usize) -> Result<(), EmitError> {
        if let Ev::Scalar { value, .. } = &events[i] {
            self.analyze_scalar(value);
        }
        match self.state {
            St::StreamStart => {
                if !matches!(events[i], Ev::StreamStart) {
                    return Err(EmitError::Emitter { expected: "STREAM-START" });
                }
                if self.best_indent < 2 || self.best_indent > 9 {
                    self.best_indent = 2;
                }
                if self.best_width >= 0 && self.best_width <= self.best_indent * 2 {
                    self.best_width = 80;
                }
                if self.best_width < 0 {
                    self.best_width = i64::MAX;
                }
                self.indent = -1;
                self.column = 0;
                self.whitespace = true;
                self.indention = true;
                self.state = St::FirstDocumentStart;
                Ok(())
            }
            St::FirstDocumentStart | St::DocumentStart => {
                let first = self.state == St::FirstDocumentStart;
                match events[i] {
                    Ev::DocStart { implicit } => {
                        let implicit = implicit && first;
                        self.open_ended = 0;
                        if !implicit {
                            self.write_indent();
                            self.write_indicator("---", true, false, false);
                        }
                        self.state = St::DocumentContent;
                        self.open_ended = 0;
                        Ok(())
                    }
                    Ev::StreamEnd => {
                        if self.open_ended == 2 {
                            self.write_indicator("...", true, false, false);
                            self.open_ended = 0;
                            self.write_indent();
                        }
                        self.state = St::End;
                        Ok(())
                    }
                    _ => Err(EmitError::Emitter { expected: "DOCUMENT-START or STREAM-END" }),
                }
            }
            St::DocumentContent => {
                self.states.push(St::DocumentEnd);
                self.emit_node(events, i, true, false, false, false)
            }
            St::DocumentEnd => match events[i] {
                Ev::DocEnd { implicit } => {
                    self.write_indent();
                    if !implicit {
                        self.write_indicator("...", true, false, false);
                        self.open_ended = 0;
                        self.write_indent();
                    } else if self.open_ended == 0 {
                        self.open_ended = 1;
                    }
                    self.state = St::DocumentStart;
                    Ok(())
                }
                _ => Err(EmitError::Emitter { expected: "DOCUMENT-END" }),
            },
            St::FlowSequenceFirstItem => self.emit_flow_sequence_item(events, i, true),
            St::FlowSequenceItem => self.emit_flow_sequence_item(events, i, false),
            St::FlowMappingFirstKey => self.emit_flow_mapping_key(events, i, true),
            St::FlowMappingKey => self.emit_flow_mapping_key(events, i, false),
            St::FlowMappingSimpleValue => self.emit_flow_mapping_value(events, i, true),
            St::FlowMappingValue => self.emit_flow_mapping_value(events, i, false),
            St::BlockSequenceFirstItem => self.emit_block_sequence_item(events, i, true),
            St::BlockSequenceItem => self.emit_block_sequence_item(events, i, false),
            St::BlockMappingFirstKey => self.emit_block_mapping_key(events, i, true),
            St::BlockMappingKey => self.emit_block_mapping_key(events, i, false),
            St::BlockMappingSimpleValue => self.emit_block_mapping_value(events, i, true),
            St::BlockMappingValue => self.emit_block_mapping_value(events, i, false),
            St::End => Err(EmitError::Emitter { expected: "nothing after STREAM-END" }),
        }
    }

    fn emit_flow_sequence_item(&mut self, events: &[Ev], i: usize, first: bool) -> Result<(), EmitError> {
        if first {
            self.write_indicator("[", true, true, false);
            self.increase_indent(true, false);
            self.flow_level += 1;
        }
        if matches!(events[i], Ev::SeqEnd) {
            self.flow_level -= 1;
            self.pop_indent();
            self.write_indicator("]", false, false, false);
            self.pop_state();
            return Ok(());
        }
        if !first {
            self.write_indicator(",", false, false, false);
        }
        if self.column > self.best_width {
            self.write_indent();
        }
        self.states.push(St::FlowSequenceItem);
        self.emit_node(events, i, false, true, false, false)
    }

    fn emit_flow_mapping_key(&mut self, events: &[Ev], i: usize, first: bool) -> Result<(), EmitError> {
        if first {
            self.write_indicator("{", true, true, false);
            self.increase_indent(true, false);
            self.flow_level += 1;
        }
        if matches!(events[i], Ev::MapEnd) {
            self.flow_level -= 1;
            self.pop_indent();
            self.write_indicator("}", false, false, false);
            self.pop_state();
            return Ok(());
        }
        if !first {
            self.write_indicator(",", false, false, false);
        }
        if self.column > self.best_width {
            self.write_indent();
        }
        if self.check_simple_key(events, i) {
            self.states.push(St::FlowMappingSimpleValue);
            self.emit_node(events, i, false, false, true, true)
        } else {
            self.write_indicator("?", true, false, false);
            self.states.push(St::FlowMappingValue);
            self.emit_node(events, i, false, false, true, false)
        }
    }

    fn emit_flow_mapping_value(&mut self, events: &[Ev], i: usize, simple: bool) -> Result<(), EmitError> {
        if simple {
            self.write_indicator(":", false, false, false);
        } else {
            if self.column > self.best_width {
                self.write_indent();
            }
            self.write_indicator(":", true, false, false);
        }
        self.states.push(St::FlowMappingKey);
        self.emit_node(events, i, false, false, true, false)
    }

    fn emit_block_sequence_item(&mut self, events: &[Ev], i: usize, first: bool) -> Result<(), EmitError> {
        if first {
            let indentless = self.mapping_context && !self.indention;
            self.increase_indent(false, indentless);
        }
        if matches!(events[i], Ev::SeqEnd) {
            self.pop_indent();
            self.pop_state();
            return Ok(());
        }
        self.write_indent();
        self.write_indicator("-", true, false, true);
        self.states.push(St::BlockSequenceItem);
        self.emit_node(events, i, false, true, false, false)
    }

    fn emit_block_mapping_key(&mut self, events: &[Ev], i: usize, first: bool) -> Result<(), EmitError> {
        if first {
            self.increase_indent(false, false);
        }
        if matches!(events[i], Ev::MapEnd) {
            self.pop_indent();
            self.pop_state();
            return Ok(());
        }
        self.write_indent();
        if self.check_simple_key(events, i) {
            self.states.push(St::BlockMappingSimpleValue);
            self.emit_node(events, i, false, false, true, true)
        } else {
            self.write_indicator("?", true, false, true);
            self.states.push(St::BlockMappingValue);
            self.emit_node(events, i, false, false, true, false)
        }
    }

    fn emit_block_mapping_value(&mut self, events: &[Ev], i: usize, simple: bool) -> Result<(), EmitError> {
        if simple {
            self.write_indicator(":", false, false, false);
        } else {
            self.write_indent();
            self.write_indicator(":", true, false, true);
        }
        self.states.push(St::BlockMappingKey);
        self.emit_node(events, i, false, false, true, false)
    }

    fn emit_node(&mut self, events: &[Ev], i: usize, _root: bool, _sequence: bool, mapping: bool, simple_key: bool) -> Result<(), EmitError> {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match &events[i] {
            Ev::Scalar { plain_implicit, .. } => {
                self.select_scalar_style(*plain_implicit);
                self.increase_indent(true, false);
                self.process_scalar();
                self.pop_indent();
                self.pop_state();
                Ok(())
            }
            Ev::SeqStart { flow } => {
                self.state =
                    if self.flow_level > 0 || *flow || Self::check_empty_sequence(events, i) { St::FlowSequenceFirstItem } else { St::BlockSequenceFirstItem };
                Ok(())
            }
            Ev::MapStart { flow } => {
                self.state =
                    if self.flow_level > 0 || *flow || Self::check_empty_mapping(events, i) { St::FlowMappingFirstKey } else { St::BlockMappingFirstKey };
                Ok(())
            }
            _ => Err(EmitError::Emitter { expected: "SCALAR, SEQUENCE-START, MAPPING-START, or ALIAS" }),
        }
    }

    fn select_scalar_style(&mut self, plain_implicit: bool) {
        let mut style = Style::Plain;
        if self.simple_key_context && self.scalar.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if (self.flow_level > 0 && !self.scalar.flow_plain_allowed) || (self.flow_level == 0 && !self.scalar.block_plain_allowed) {
                style = Style::Single;
            }
            if self.scalar.chars.is_empty() && (self.flow_level > 0 || self.simple_key_context) {
                style = Style::Single;
            }
            if !plain_implicit {
                style = Style::Single;
            }
        }
        if style == Style::Single && !self.scalar.single_quoted_allowed {
            style = Style::Double;
        }
        self.style = style;
    }

    fn process_scalar(&mut self) {
        let chars = std::mem::take(&mut self.scalar.chars);
        let allow_breaks = !self.simple_key_context;
        match self.style {
            Style::Plain => self.write_plain(&chars, allow_breaks),
            Style::Single => self.write_single(&chars, allow_breaks),
            Style::Double => self.write_double(&chars, allow_breaks),
        }
        self.scalar.chars = chars;
    }

    fn write_plain(&mut self, s: &[char], allow_breaks: bool) {
        if !self.whitespace && (!s.is_empty() || self.flow_level > 0) {
            self.put(' ');
        }
        let mut spaces = false;
        let mut breaks = false;
        let mut i = 0;
        while i < s.len() {
            let c = s[i];
            if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && s.get(i + 1) != Some(&' ') {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
            i += 1;
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single(&mut self, s: &[char], allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let mut spaces = false;
        let mut breaks = false;
        let n = s.len();
        for i in 0..n {
            let c = s[i];
            if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && i != 0 && i != n - 1 && s.get(i + 1) != Some(&' ') {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, s: &[char], allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let mut spaces = false;
        let n = s.len();
        for i in 0..n {
            let c = s[i];
            if !is_printable(c) || (!self.unicode && !c.is_ascii()) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let v = c as u32;
                match v {
                    0x00 => self.put('0'),
                    0x07 => self.put('a'),
                    0x08 => self.put('b'),
                    0x09 => self.put('t'),
                    0x0a => self.put('n'),
                    0x0b => self.put('v'),
                    0x0c => self.put('f'),
                    0x0d => self.put('r'),
                    0x1b => self.put('e'),
                    0x22 => self.put('"'),
                    0x5c => self.put('\\'),
                    0x85 => self.put('N'),
                    0xa0 => self.put('_'),
                    0x2028 => self.put('L'),
                    0x2029 => self.put('P'),
                    _ => {
                        let (letter, width) = if v <= 0xff {
                            ('x', 2)
                        } else if v <= 0xffff {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        let hex = format!("{v:0width$X}");
                        for h in hex.chars() {
                            self.put(h);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && i != 0 && i != n - 1 {
                    self.write_indent();
                    if s.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyfmt::tests::val;

    #[test]
    fn yaml_like_ansible() {
        let d = val(r#"{"b": 1, "a": [1, {"x": null}]}"#);
        assert_eq!(to_yaml(&d, 2, false).unwrap(), "a:\n- 1\n- {x: null}\nb: 1\n");
        assert_eq!(to_yaml(&d, 4, true).unwrap(), "a:\n- 1\n-   x: null\nb: 1\n");
        assert_eq!(to_yaml(&d, 2, true).unwrap(), "a:\n- 1\n- x: null\nb: 1\n");
        assert_eq!(to_yaml(&val(r#"{"b": 1, "a": 2}"#), 2, false).unwrap(), "{a: 2, b: 1}\n");
        let nested = val(r#"{"k": [1, 2], "z": {"a": [3]}}"#);
        assert_eq!(to_yaml(&nested, 2, true).unwrap(), "k:\n- 1\n- 2\nz:\n  a:\n  - 3\n");
        assert_eq!(to_yaml(&nested, 4, true).unwrap(), "k:\n- 1\n- 2\nz:\n    a:\n    - 3\n");
        // scalars at the top
        assert_eq!(to_yaml(&Value::from("foo"), 2, false).unwrap(), "foo\n");
        assert_eq!(to_yaml(&Value::from(""), 2, false).unwrap(), "''\n");
        assert_eq!(to_yaml(&Value::from("a\nb"), 2, false).unwrap(), "'a\n\n  b'\n");
        assert_eq!(to_yaml(&Value::from(()), 2, false).unwrap(), "null\n");
        assert_eq!(to_yaml(&val("[]"), 4, true).unwrap(), "[]\n");
        // floats as PyYAML writes them
        assert_eq!(to_yaml(&val("[1e-5, 1e20, -0.0, 0.1, 1.0]"), 2, false).unwrap(), "[1.0e-05, 1.0e+20, -0.0, 0.1, 1.0]\n");
        assert_eq!(to_yaml(&Value::from(f64::INFINITY), 2, false).unwrap(), ".inf\n");
        // quoting decided by the YAML 1.1 resolver and libyaml's scalar analysis
        let s = val(r##"{"a": "yes", "b": "123", "c": "1.5", "d": "null", "e": "", "f": "a: b", "g": "#x", "h": "x #y",
                "i": "- x", "j": "2001-12-14", "k": "tab\there", "l": "'q'", "m": "é😀", "n": " lead", "o": "~"}"##);
        assert_eq!(
            to_yaml(&s, 4, true).unwrap(),
            "a: 'yes'\nb: '123'\nc: '1.5'\nd: 'null'\ne: ''\nf: 'a: b'\ng: '#x'\nh: 'x #y'\ni: '- x'\n\
             j: '2001-12-14'\nk: \"tab\\there\"\nl: '''q'''\nm: \"é\\U0001F600\"\nn: ' lead'\no: '~'\n"
        );
        // long plain scalars fold at width 80
        let long = Value::from_pairs(vec![("b", Value::from("x ".repeat(50).trim_end().to_string()))]);
        let folded = to_yaml(&long, 2, false).unwrap();
        assert_eq!(folded, format!("{{b: {}\n    {}}}\n", "x ".repeat(39).trim_end(), "x ".repeat(11).trim_end()));
        let wide = YamlOptions { width: 1000, ..YamlOptions::default() };
        assert_eq!(to_yaml_with(&long, &wide).unwrap(), format!("{{b: {}}}\n", "x ".repeat(50).trim_end()));
        let unsorted = YamlOptions { sort_keys: false, ..YamlOptions::default() };
        assert_eq!(to_yaml_with(&val(r#"{"b": 1, "a": 2}"#), &unsorted).unwrap(), "{b: 1, a: 2}\n");
        let start = YamlOptions { explicit_start: true, explicit_end: true, ..YamlOptions::default() };
        assert_eq!(to_yaml_with(&val(r#"{"b": 1}"#), &start).unwrap(), "--- {b: 1}\n...\n");
        assert!(to_yaml(&Value::UNDEFINED, 2, false).is_err());
    }

    #[test]
    fn yaml_resolver() {
        for s in ["yes", "No", "ON", "null", "~", "", "123", "-1_000", "0x1F", "017", "1.5", ".5", "2001-12-14", "<<", "=", "1:30"] {
            assert!(resolves_to_non_str(s), "{s:?} is not a string in YAML 1.1");
        }
        for s in ["y", "n", "hello", "1e5", "1.2.3", "0b2", "0o17", "a: b"] {
            assert!(!resolves_to_non_str(s), "{s:?} is a string in YAML 1.1");
        }
    }
}

//! Python's text forms of values, as Ansible prints them: `str()` of a value inside a template
//! (`True`, `None`, `['a', 1]`, `{'k': 'v'}`) and PyYAML's dumper for `to_yaml`/`to_nice_yaml`.

use std::sync::LazyLock;

use minijinja::Value;
use minijinja::value::ValueKind;

/// Python's `str()` of a value: what `{{ value }}` prints inside a larger string.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => py_repr(v),
    }
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => {
            if let Some(i) = v.as_i64()
                && v.is_integer() {
                    out.push_str(&i.to_string());
                    return;
                }
            match f64::try_from(v.clone()) {
                Ok(f) if !v.is_integer() => out.push_str(&float_repr(f)),
                _ => out.push_str(&v.to_string()),
            }
        }
        ValueKind::String => out.push_str(&str_repr(v.as_str().unwrap_or_default())),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(it) = v.try_iter() {
                for (i, x) in it.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &x);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(it) = v.try_iter() {
                for (i, k) in it.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &k);
                    out.push_str(": ");
                    let val = v.get_item(&k).unwrap_or_default();
                    write_repr(out, &val);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// Python's `repr()` of a string.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (0x80..0xa0).contains(&(c as u32)) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a float: shortest round-trip digits, exponent form below 1e-4 and from
/// 1e16.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// PyYAML's `represent_float`.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let v = float_repr(f).to_lowercase();
    if !v.contains('.') && v.contains('e') { v.replacen('e', ".0e", 1) } else { v }
}

/// PyYAML's `yaml.dump` as Ansible calls it: `to_yaml` is `default_flow_style=None` (leaf
/// collections in flow style) with indent 2 unless given; `to_nice_yaml` is block style with
/// indent 4. Keys are sorted, width is 80, unicode is written as is.
pub fn to_yaml(v: &Value, indent: usize, nice: bool) -> Result<String, String> {
    let node = to_node(v)?;
    let mut e = Emitter { out: String::new(), column: 0, indent_step: indent.clamp(2, 9), flow_default: !nice, width: 80 };
    match &node {
        Node::Scalar(s) => {
            e.write_scalar(s, 0, false, false);
            e.out.push_str("\n...\n");
        }
        _ => {
            e.node(&node, 0, Ctx::Root);
            e.out.push('\n');
        }
    }
    Ok(e.out)
}

enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

struct Scalar {
    text: String,
    /// Whether the plain form would read back as this same value (a string that does not look
    /// like a bool, number, null, ...; or a non-string scalar written in its own form).
    plain_ok: bool,
}

fn to_node(v: &Value) -> Result<Node, String> {
    Ok(match v.kind() {
        ValueKind::Undefined => return Err("an undefined value cannot be written as YAML".into()),
        ValueKind::None => Node::Scalar(Scalar { text: "null".into(), plain_ok: true }),
        ValueKind::Bool => Node::Scalar(Scalar { text: if v.is_true() { "true" } else { "false" }.into(), plain_ok: true }),
        ValueKind::Number => {
            let text = if v.is_integer() { v.to_string() } else { yaml_float(f64::try_from(v.clone()).unwrap_or(0.0)) };
            Node::Scalar(Scalar { text, plain_ok: true })
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().to_string();
            let plain_ok = resolves_to_str(&s);
            Node::Scalar(Scalar { text: s, plain_ok })
        }
        ValueKind::Seq | ValueKind::Iterable => Node::Seq(v.try_iter().map_err(|e| e.to_string())?.map(|x| to_node(&x)).collect::<Result<_, _>>()?),
        ValueKind::Map => {
            let mut pairs: Vec<(Value, Value)> = v.try_iter().map_err(|e| e.to_string())?.map(|k| (k.clone(), v.get_item(&k).unwrap_or_default())).collect();
            // PyYAML sorts keys (sort_keys=True by default).
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Node::Map(pairs.iter().map(|(k, v)| Ok((to_node(k)?, to_node(v)?))).collect::<Result<_, String>>()?)
        }
        _ => Node::Scalar(Scalar { text: v.to_string(), plain_ok: resolves_to_str(&v.to_string()) }),
    })
}

static TIMESTAMP: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$").unwrap()
});

/// Whether PyYAML's resolver reads this plain text back as a string.
fn resolves_to_str(s: &str) -> bool {
    if s == "=" || s == "<<" {
        return false;
    }
    if !matches!(crate::yaml::parse_json(s), Ok(serde_json::Value::String(ref x)) if x == s) {
        // Anything that parses to another type (or does not parse as one plain scalar).
        return !looks_like_non_str(s);
    }
    !TIMESTAMP.is_match(s)
}

fn looks_like_non_str(s: &str) -> bool {
    // The text did not read back as itself: it is a bool/number/null, or YAML syntax.
    // Either way the plain form is not safe; the emitter's own analysis handles syntax.
    match crate::yaml::parse_json(s) {
        Ok(serde_json::Value::String(_)) => false,
        Ok(_) => true,
        Err(_) => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    MapValue,
    SeqItem,
}

struct Emitter {
    out: String,
    column: usize,
    indent_step: usize,
    flow_default: bool,
    width: usize,
}

fn is_leaf_collection(n: &Node) -> bool {
    match n {
        Node::Seq(items) => items.iter().all(|x| matches!(x, Node::Scalar(_))),
        Node::Map(pairs) => pairs.iter().all(|(k, v)| matches!(k, Node::Scalar(_)) && matches!(v, Node::Scalar(_))),
        Node::Scalar(_) => true,
    }
}

fn is_empty_collection(n: &Node) -> bool {
    matches!(n, Node::Seq(v) if v.is_empty()) || matches!(n, Node::Map(v) if v.is_empty())
}

impl Emitter {
    fn write(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn newline_indent(&mut self, indent: usize) {
        self.out.push('\n');
        self.out.push_str(&" ".repeat(indent));
        self.column = indent;
    }

    fn flow(&self, n: &Node) -> bool {
        is_empty_collection(n) || (self.flow_default && is_leaf_collection(n))
    }

    /// Writes a node whose first line continues the current one (after `- ` or `key:`).
    fn node(&mut self, n: &Node, indent: usize, ctx: Ctx) {
        match n {
            Node::Scalar(s) => {
                if ctx != Ctx::Root {
                    self.write(" ");
                }
                self.write_scalar(s, indent + self.indent_step, false, false);
            }
            _ if self.flow(n) => {
                if ctx != Ctx::Root {
                    self.write(" ");
                }
                self.write_flow(n, indent + self.indent_step);
            }
            Node::Seq(items) => {
                // In a mapping, a block sequence is not indented (PyYAML's indentless style).
                let base = match ctx {
                    Ctx::Root => 0,
                    Ctx::MapValue => indent,
                    Ctx::SeqItem => indent + self.indent_step,
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 || ctx == Ctx::MapValue {
                        self.newline_indent(base);
                    } else if ctx == Ctx::SeqItem {
                        self.pad_to(base);
                    }
                    self.write("-");
                    self.seq_item(item, base);
                }
            }
            Node::Map(pairs) => {
                let base = match ctx {
                    Ctx::Root => 0,
                    Ctx::MapValue | Ctx::SeqItem => indent + self.indent_step,
                };
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 || ctx == Ctx::MapValue {
                        self.newline_indent(base);
                    } else if ctx == Ctx::SeqItem {
                        self.pad_to(base);
                    }
                    self.key(k, base);
                    self.write(":");
                    self.node(v, base, Ctx::MapValue);
                }
            }
        }
    }

    fn pad_to(&mut self, col: usize) {
        if self.column < col {
            let n = col - self.column;
            self.write(&" ".repeat(n));
        } else {
            self.write(" ");
        }
    }

    fn seq_item(&mut self, item: &Node, base: usize) {
        match item {
            Node::Scalar(_) => self.node(item, base, Ctx::SeqItem),
            _ if self.flow(item) => self.node(item, base, Ctx::SeqItem),
            _ => self.node(item, base, Ctx::SeqItem),
        }
    }

    fn key(&mut self, k: &Node, indent: usize) {
        match k {
            Node::Scalar(s) => self.write_scalar(s, indent + self.indent_step, true, false),
            other => self.write_flow(other, indent + self.indent_step),
        }
    }

    fn write_flow(&mut self, n: &Node, indent: usize) {
        match n {
            Node::Scalar(s) => self.write_scalar(s, indent, false, true),
            Node::Seq(items) => {
                self.write("[");
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        self.write(", ");
                    }
                    self.write_flow(x, indent);
                }
                self.write("]");
            }
            Node::Map(pairs) => {
                self.write("{");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        self.write(", ");
                    }
                    self.write_flow(k, indent);
                    self.write(": ");
                    self.write_flow(v, indent);
                }
                self.write("}");
            }
        }
    }

    /// PyYAML's `choose_scalar_style` and writers.
    fn write_scalar(&mut self, s: &Scalar, indent: usize, simple_key: bool, in_flow: bool) {
        let a = analyze(&s.text);
        if s.plain_ok && !(simple_key && (a.empty || a.multiline)) && ((in_flow && a.allow_flow_plain) || (!in_flow && a.allow_block_plain)) {
            self.write_plain(&s.text, indent);
        } else if a.allow_single_quoted && !(simple_key && a.multiline) {
            self.write_single_quoted(&s.text, indent);
        } else {
            self.write_double_quoted(&s.text, indent);
        }
    }

    fn write_plain(&mut self, text: &str, indent: usize) {
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0, 0);
        let mut spaces = false;
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > self.width {
                        self.newline_indent(indent);
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if ch.is_none() || ch == Some(' ') {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &str, indent: usize) {
        self.write("'");
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0, 0);
        let (mut spaces, mut breaks) = (false, false);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > self.width && start != 0 && end != chars.len() {
                        self.newline_indent(indent);
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if breaks {
                if !matches!(ch, Some('\n')) {
                    if chars[start] == '\n' {
                        self.out.push('\n');
                    }
                    for _ in start..end {
                        self.out.push('\n');
                    }
                    self.out.push_str(&" ".repeat(indent));
                    self.column = indent;
                    start = end;
                }
            } else if (ch.is_none() || matches!(ch, Some(' ') | Some('\n') | Some('\''))) && start < end {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = c == '\n';
            }
            end += 1;
        }
        self.write("'");
    }

    fn write_double_quoted(&mut self, text: &str, indent: usize) {
        self.write("\"");
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            let needs_escape = match ch {
                None => true,
                Some(c) => matches!(c, '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}') || !((' '..='~').contains(&c) || ('\u{A0}'..='\u{D7FF}').contains(&c) || ('\u{E000}'..='\u{FFFD}').contains(&c)),
            };
            if needs_escape {
                if start < end {
                    let s: String = chars[start..end].iter().collect();
                    self.write(&s);
                    start = end;
                }
                if let Some(c) = ch {
                    let esc = match c {
                        '\0' => "\\0".to_string(),
                        '\x07' => "\\a".into(),
                        '\x08' => "\\b".into(),
                        '\t' => "\\t".into(),
                        '\n' => "\\n".into(),
                        '\x0B' => "\\v".into(),
                        '\x0C' => "\\f".into(),
                        '\r' => "\\r".into(),
                        '\x1B' => "\\e".into(),
                        '"' => "\\\"".into(),
                        '\\' => "\\\\".into(),
                        '\u{85}' => "\\N".into(),
                        '\u{A0}' => "\\_".into(),
                        '\u{2028}' => "\\L".into(),
                        '\u{2029}' => "\\P".into(),
                        c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.write(&esc);
                    start = end + 1;
                }
            }
            if end > 0 && end + 1 < chars.len() && (ch == Some(' ') || start >= end) && self.column + end.saturating_sub(start) > self.width {
                let mut s: String = if start < end { chars[start..end].iter().collect() } else { String::new() };
                s.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&s);
                self.newline_indent(indent);
                if chars.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
            end += 1;
        }
        self.write("\"");
    }
}

struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

/// PyYAML's `analyze_scalar`, for allow_unicode=True.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis { empty: true, multiline: false, allow_flow_plain: false, allow_block_plain: true, allow_single_quoted: true };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let is_ws = |c: char| matches!(c, '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let is_break = |c: char| matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let (mut block_ind, mut flow_ind) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_ws = true;
    let mut followed_ws = n == 1 || is_ws(chars[1]);
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    for (i, &ch) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_ind = true;
                block_ind = true;
            }
            if ch == '?' || ch == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if ch == '-' && followed_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_ind = true;
            }
            if ch == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if ch == '#' && preceded_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            let unicode_ok = (ch == '\u{85}' || ('\u{A0}'..='\u{D7FF}').contains(&ch) || ('\u{E000}'..='\u{FFFD}').contains(&ch) || ('\u{10000}'..'\u{10FFFF}').contains(&ch)) && ch != '\u{FEFF}';
            if !unicode_ok {
                special = true;
            }
        }
        if ch == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_ws(ch);
        followed_ws = i + 2 >= n || is_ws(chars[i + 2]);
    }
    let _ = space_break;
    let mut a = Analysis { empty: false, multiline: line_breaks, allow_flow_plain: true, allow_block_plain: true, allow_single_quoted: true };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_ind {
        a.allow_flow_plain = false;
    }
    if block_ind {
        a.allow_block_plain = false;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(j: serde_json::Value) -> Value {
        crate::template::to_value(&j)
    }

    #[test]
    fn python_str_and_repr() {
        assert_eq!(py_str(&v(serde_json::json!([1, "x", true, null, 1.5, {"k": "it's"}]))), "[1, 'x', True, None, 1.5, {'k': \"it's\"}]");
        assert_eq!(float_repr(1e20), "1e+20");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(0.00001), "1e-05");
        assert_eq!(float_repr(3.0), "3.0");
        assert_eq!(float_repr(123456.789), "123456.789");
    }

    #[test]
    fn yaml_like_pyyaml() {
        // Each expectation was produced by PyYAML (yaml.dump) as Ansible's filters call it.
        let d = serde_json::json!({"users": [{"name": "ann", "admin": true, "uid": 1}, {"name": "bob", "x": null}], "a": [1, 2], "e": [], "nested": {"k": [1, [2, 3]]}, "f": 1.5, "g": 1e20, "h": "null", "i": "", "j": " lead", "k": "-x", "l": "x #y", "z": "a\tb", "y": "@x", "w": "1.0", "v": "~", "uu": "0o7", "tt": "true", "ss": "é"});
        assert_eq!(
            to_yaml(&v(d.clone()), 2, false).unwrap(),
            "a: [1, 2]\ne: []\nf: 1.5\ng: 1.0e+20\nh: 'null'\ni: ''\nj: ' lead'\nk: -x\nl: 'x #y'\nnested:\n  k:\n  - 1\n  - [2, 3]\nss: é\ntt: 'true'\nusers:\n- {admin: true, name: ann, uid: 1}\n- {name: bob, x: null}\nuu: 0o7\nv: '~'\nw: '1.0'\ny: '@x'\nz: \"a\\tb\"\n"
        );
        let d2 = serde_json::json!({"users": [{"name": "ann", "admin": true, "uid": 1}, {"name": "bob", "x": null}], "a": [1, 2], "e": [], "f": {}, "s": "yes", "m": "multi\nline", "n": "12", "t": "a: b", "long": "word ".repeat(30), "q": "it's", "u": "ünï", "nested": {"k": [1, [2, 3]]}});
        assert_eq!(
            to_yaml(&v(d2), 4, true).unwrap(),
            "a:\n- 1\n- 2\ne: []\nf: {}\nlong: 'word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word '\nm: 'multi\n\n    line'\nn: '12'\nnested:\n    k:\n    - 1\n    -   - 2\n        - 3\nq: it's\ns: 'yes'\nt: 'a: b'\nu: ünï\nusers:\n-   admin: true\n    name: ann\n    uid: 1\n-   name: bob\n    x: null\n"
        );
        assert_eq!(to_yaml(&v(serde_json::json!("x")), 2, false).unwrap(), "x\n...\n");
        assert_eq!(to_yaml(&v(serde_json::json!([{"a": 1}])), 2, false).unwrap(), "- {a: 1}\n");
    }
}

//! Regular expressions: Python's `re` syntax and matching rules on the regex crate
//! ([`PyRegex`], cached per thread) and the `regex_*` filters.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use minijinja::{Error, Value};
use regex::Regex;

use super::{Args, bind, list};
use crate::pyfmt::py_str;

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<(String, u8), Arc<PyRegex>>> = RefCell::new(HashMap::new());
}

/// `re.I`.
pub const RE_I: u8 = 1;
/// `re.M`.
pub const RE_M: u8 = 2;
/// Anchored at the start, like `re.match`.
pub const RE_ANCHORED: u8 = 4;

/// Why a Python regular expression or `re.sub` replacement cannot be used: Python syntax the
/// regex crate has no translation for, or that Python itself refuses. Each variant carries the
/// pattern or replacement it is about; the message is Python's (or says what is missing).
#[derive(Clone, Debug, thiserror::Error)]
pub enum RegexError {
    #[error("bad escape (end of pattern)")]
    PatternEnd { pattern: String },
    #[error("backreferences (\\1) are not supported")]
    Backreference { pattern: String },
    #[error("backreferences ((?P=name)) are not supported")]
    NamedBackreference { pattern: String },
    #[error("look-ahead assertions are not supported")]
    LookAhead { pattern: String },
    #[error("look-behind assertions are not supported")]
    LookBehind { pattern: String },
    #[error("unterminated character set")]
    UnterminatedSet { pattern: String },
    /// The translated pattern does not compile.
    #[error("invalid regular expression {pattern:?}: {source}")]
    Invalid { pattern: String, source: regex::Error },
    #[error("bad escape (end of pattern)")]
    ReplacementEnd { replacement: String },
    /// `\g` not followed by `<`.
    #[error("missing <")]
    MissingLt { replacement: String },
    #[error("missing >, unterminated name")]
    MissingGt { replacement: String },
    /// A group number the pattern does not have, or a `\g<...>` that is no number.
    #[error("invalid group reference {group}")]
    GroupReference { replacement: String, group: String },
    #[error("unknown group name '{name}'")]
    UnknownGroupName { replacement: String, name: String },
    /// An escape of a letter Python does not know (`\q`).
    #[error("bad escape \\{escape}")]
    BadEscape { replacement: String, escape: char },
}

/// A Python `re` pattern compiled for the regex crate, with Python's group numbering and
/// Python's matching rules for `$` and for empty matches.
pub struct PyRegex {
    re: Regex,
    /// Python group number (0 = whole match) → regex crate group index.
    groups: Vec<usize>,
    /// Group indexes of the synthetic groups that let a non-multiline `$` match before a final
    /// newline (the newline is consumed by the regex and given back by us).
    dollar: Vec<usize>,
}

/// One match, in Python's terms: byte offsets of the whole match and of each group.
pub struct PyMatch {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Python group number → span, `None` when the group did not take part.
    pub(crate) groups: Vec<Option<(usize, usize)>>,
}

impl PyMatch {
    pub(crate) fn group<'t>(&self, text: &'t str, g: usize) -> Option<&'t str> {
        self.groups.get(g).copied().flatten().map(|(a, b)| &text[a..b])
    }
}

impl PyRegex {
    /// The number of groups in the pattern (Python's `re.groups`).
    pub(crate) fn ngroups(&self) -> usize {
        self.groups.len() - 1
    }

    /// The Python number of a named group.
    pub(crate) fn group_index(&self, name: &str) -> Option<usize> {
        let idx = self.re.capture_names().position(|x| x == Some(name))?;
        self.groups.iter().position(|g| *g == idx)
    }

    fn to_match(&self, caps: &regex::Captures<'_>, text: &str) -> PyMatch {
        let consumed = self.dollar.iter().any(|g| caps.get(*g).is_some());
        let limit = if consumed { text.len() - 1 } else { text.len() };
        let span = |g: usize| caps.get(g).map(|m| (m.start().min(limit), m.end().min(limit)));
        let whole = span(0).unwrap_or((0, 0));
        PyMatch { start: whole.0, end: whole.1, groups: self.groups.iter().map(|g| span(*g)).collect() }
    }

    /// `re.search`: the first match.
    pub fn search(&self, text: &str) -> Option<PyMatch> {
        self.re.captures(text).map(|c| self.to_match(&c, text))
    }

    /// Whether the pattern matches anywhere.
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    /// The matches `re.finditer`/`re.sub` visit, up to `limit` (0: all): an empty match is
    /// allowed right after a non-empty one, but not twice at one position.
    pub(crate) fn matches(&self, text: &str, limit: usize) -> Vec<PyMatch> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut must_advance = false;
        while pos <= text.len() && (limit == 0 || out.len() < limit) {
            let mut from = pos;
            let m = loop {
                let Some(c) = self.re.captures_at(text, from) else { break None };
                let m = self.to_match(&c, text);
                if must_advance && m.start == pos && m.end == pos {
                    // retry one character further on
                    match text[from..].chars().next() {
                        Some(ch) => from += ch.len_utf8(),
                        None => break None,
                    }
                    continue;
                }
                break Some(m);
            };
            let Some(m) = m else { break };
            must_advance = m.start == m.end;
            pos = m.end;
            out.push(m);
        }
        out
    }
}

/// Compiles a Python `re` pattern (translated to the regex crate's syntax), cached per thread.
/// `flags`: [`RE_I`], [`RE_M`], [`RE_ANCHORED`].
pub fn compile_py_regex(pattern: &str, flags: u8) -> Result<Arc<PyRegex>, RegexError> {
    let key = (pattern.to_string(), flags);
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(re);
    }
    let mut src = String::new();
    if flags & RE_I != 0 {
        src.push_str("(?i)");
    }
    if flags & RE_M != 0 {
        src.push_str("(?m)");
    }
    let multiline = flags & RE_M != 0 || has_inline_multiline(pattern);
    let t = translate_py_regex(pattern, !multiline)?;
    if flags & RE_ANCHORED != 0 {
        src.push_str("\\A(?:");
        src.push_str(&t.pattern);
        src.push(')');
    } else {
        src.push_str(&t.pattern);
    }
    let re = Regex::new(&src).map_err(|source| RegexError::Invalid { pattern: pattern.to_string(), source })?;
    let mut groups = vec![0];
    groups.extend((1..re.captures_len()).filter(|g| !t.dollar_groups.contains(g)));
    let re = Arc::new(PyRegex { re, groups, dollar: t.dollar_groups });
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 512 {
            c.clear();
        }
        c.insert(key, re.clone());
    });
    Ok(re)
}

fn has_inline_multiline(p: &str) -> bool {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| Regex::new(r"\(\?[aiLmsux]*m[aiLmsux-]*[:)]").unwrap());
    RE.is_match(p)
}

/// A translated pattern.
pub(crate) struct Translated {
    pub(crate) pattern: String,
    /// Group indexes of the groups added for `$`.
    pub(crate) dollar_groups: Vec<usize>,
}

/// Translates Python `re` syntax to the regex crate's: `\Z` is `\z`, a `{` that does not
/// start a repetition is a literal, `(?#...)` comments are dropped, `[` and `&&`/`~~`/`--` in
/// classes are literals, and (when `dollar_newline`) `$` also matches before a final newline.
/// Backreferences and look-around have no translation (an error).
pub(crate) fn translate_py_regex(p: &str, dollar_newline: bool) -> Result<Translated, RegexError> {
    let pattern = || p.to_string();
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut ngroups = 0;
    let mut dollar_groups = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\\' => {
                let Some(&n) = c.get(i + 1) else {
                    return Err(RegexError::PatternEnd { pattern: pattern() });
                };
                i += 2;
                match n {
                    'Z' => out.push_str("\\z"),
                    '0' => {
                        let mut v = 0u32;
                        let mut k = 0;
                        while k < 2 && c.get(i).is_some_and(|d| ('0'..='7').contains(d)) {
                            v = v * 8 + c[i].to_digit(8).unwrap();
                            i += 1;
                            k += 1;
                        }
                        out.push_str(&format!("\\x{{{v:x}}}"));
                    }
                    '1'..='9' => return Err(RegexError::Backreference { pattern: pattern() }),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                continue;
            }
            '[' => {
                out.push('[');
                i += 1;
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if c.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                let mut closed = false;
                while i < c.len() {
                    let d = c[i];
                    match d {
                        ']' => {
                            out.push(']');
                            i += 1;
                            closed = true;
                            break;
                        }
                        '\\' => {
                            let Some(&n) = c.get(i + 1) else {
                                return Err(RegexError::PatternEnd { pattern: pattern() });
                            };
                            match n {
                                'b' => out.push_str("\\x08"),
                                '0' => out.push_str("\\x00"),
                                _ => {
                                    out.push('\\');
                                    out.push(n);
                                }
                            }
                            i += 2;
                        }
                        '[' | '&' | '~' => {
                            out.push('\\');
                            out.push(d);
                            i += 1;
                        }
                        '-' if c.get(i + 1) == Some(&'-') => {
                            out.push_str("\\-");
                            i += 1;
                        }
                        _ => {
                            out.push(d);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    return Err(RegexError::UnterminatedSet { pattern: pattern() });
                }
                continue;
            }
            '(' => {
                if c.get(i + 1) != Some(&'?') {
                    ngroups += 1;
                    out.push('(');
                    i += 1;
                    continue;
                }
                match c.get(i + 2) {
                    Some('#') => {
                        while i < c.len() && c[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                        continue;
                    }
                    Some('P') if c.get(i + 3) == Some(&'=') => {
                        return Err(RegexError::NamedBackreference { pattern: pattern() });
                    }
                    Some('P') if c.get(i + 3) == Some(&'<') => ngroups += 1,
                    Some('<') if !matches!(c.get(i + 3), Some('=' | '!')) => ngroups += 1,
                    Some('=' | '!') => return Err(RegexError::LookAhead { pattern: pattern() }),
                    Some('<') => return Err(RegexError::LookBehind { pattern: pattern() }),
                    _ => {}
                }
                out.push('(');
                i += 1;
                continue;
            }
            '$' if dollar_newline => {
                ngroups += 1;
                dollar_groups.push(ngroups);
                out.push_str("(?:\\z|(\\n)\\z)");
            }
            '{' => {
                // a repetition is {m}, {m,}, {,n}, {m,n}; anything else is a literal brace
                let mut j = i + 1;
                let mut lo = String::new();
                while j < c.len() && c[j].is_ascii_digit() {
                    lo.push(c[j]);
                    j += 1;
                }
                let mut comma = false;
                let mut hi = String::new();
                if c.get(j) == Some(&',') {
                    comma = true;
                    j += 1;
                    while j < c.len() && c[j].is_ascii_digit() {
                        hi.push(c[j]);
                        j += 1;
                    }
                }
                if (comma || !lo.is_empty()) && c.get(j) == Some(&'}') {
                    out.push('{');
                    out.push_str(if lo.is_empty() { "0" } else { &lo });
                    if comma {
                        out.push(',');
                        out.push_str(&hi);
                    }
                    out.push('}');
                    i = j + 1;
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
                continue;
            }
            '}' => out.push_str("\\}"),
            _ => out.push(ch),
        }
        i += 1;
    }
    Ok(Translated { pattern: out, dollar_groups })
}

enum ReplPart {
    Lit(String),
    Group(usize),
}

/// Parses a Python `re.sub` replacement: `\1`, `\g<1>`, `\g<name>`, `\n`-style escapes.
fn parse_py_replacement(repl: &str, re: &PyRegex) -> Result<Vec<ReplPart>, RegexError> {
    let replacement = || repl.to_string();
    let c: Vec<char> = repl.chars().collect();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let ngroups = re.ngroups();
    let push_group = |lit: &mut String, parts: &mut Vec<ReplPart>, g: usize| -> Result<(), RegexError> {
        if g > ngroups {
            return Err(RegexError::GroupReference { replacement: replacement(), group: g.to_string() });
        }
        if !lit.is_empty() {
            parts.push(ReplPart::Lit(std::mem::take(lit)));
        }
        parts.push(ReplPart::Group(g));
        Ok(())
    };
    let mut i = 0;
    while i < c.len() {
        if c[i] != '\\' {
            lit.push(c[i]);
            i += 1;
            continue;
        }
        let Some(&n) = c.get(i + 1) else {
            return Err(RegexError::ReplacementEnd { replacement: replacement() });
        };
        i += 2;
        match n {
            'g' => {
                if c.get(i) != Some(&'<') {
                    return Err(RegexError::MissingLt { replacement: replacement() });
                }
                let end = c[i..].iter().position(|x| *x == '>').ok_or_else(|| RegexError::MissingGt { replacement: replacement() })?;
                let name: String = c[i + 1..i + end].iter().collect();
                i += end + 1;
                let g = if !name.is_empty() && name.chars().all(|d| d.is_ascii_digit()) {
                    name.parse::<usize>().map_err(|_| RegexError::GroupReference { replacement: replacement(), group: name.clone() })?
                } else {
                    re.group_index(&name).ok_or_else(|| RegexError::UnknownGroupName { replacement: replacement(), name: name.clone() })?
                };
                push_group(&mut lit, &mut parts, g)?;
            }
            '0' => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && c.get(i).is_some_and(|d| ('0'..='7').contains(d)) {
                    v = v * 8 + c[i].to_digit(8).unwrap();
                    i += 1;
                    k += 1;
                }
                lit.push(char::from_u32(v).unwrap_or('\0'));
            }
            '1'..='9' => {
                let octal =
                    ('1'..='3').contains(&n) && c.get(i).is_some_and(|d| ('0'..='7').contains(d)) && c.get(i + 1).is_some_and(|d| ('0'..='7').contains(d));
                if octal {
                    let v = n.to_digit(8).unwrap() * 64 + c[i].to_digit(8).unwrap() * 8 + c[i + 1].to_digit(8).unwrap();
                    lit.push(char::from_u32(v).unwrap_or('\0'));
                    i += 2;
                } else {
                    let mut g = n.to_digit(10).unwrap() as usize;
                    if let Some(d) = c.get(i).and_then(|d| d.to_digit(10)) {
                        g = g * 10 + d as usize;
                        i += 1;
                    }
                    push_group(&mut lit, &mut parts, g)?;
                }
            }
            'n' => lit.push('\n'),
            't' => lit.push('\t'),
            'r' => lit.push('\r'),
            'f' => lit.push('\u{c}'),
            'v' => lit.push('\u{b}'),
            'a' => lit.push('\u{7}'),
            'b' => lit.push('\u{8}'),
            '\\' => lit.push('\\'),
            x if x.is_ascii_alphabetic() => return Err(RegexError::BadEscape { replacement: replacement(), escape: x }),
            x => {
                lit.push('\\');
                lit.push(x);
            }
        }
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Lit(lit));
    }
    Ok(parts)
}

fn regex_flags(ignorecase: bool, multiline: bool) -> u8 {
    (if ignorecase { RE_I } else { 0 }) | (if multiline { RE_M } else { 0 })
}

/// Python's `Match.expand`: the replacement template filled from one match (lineinfile's
/// `backrefs`).
pub fn py_expand(re: &PyRegex, m: &PyMatch, text: &str, repl: &str) -> Result<String, RegexError> {
    let mut out = String::new();
    for p in parse_py_replacement(repl, re)? {
        match p {
            ReplPart::Lit(l) => out.push_str(&l),
            ReplPart::Group(g) => out.push_str(m.group(text, g).unwrap_or("")),
        }
    }
    Ok(out)
}

/// Python's `re.subn`: replaces up to `count` matches (0: all); returns the text and the
/// number of replacements.
pub(crate) fn py_re_subn(re: &PyRegex, repl: &str, text: &str, count: usize) -> Result<(String, usize), RegexError> {
    let parts = parse_py_replacement(repl, re)?;
    let matches = re.matches(text, count);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in &matches {
        out.push_str(&text[last..m.start]);
        for p in &parts {
            match p {
                ReplPart::Lit(l) => out.push_str(l),
                ReplPart::Group(g) => out.push_str(m.group(text, *g).unwrap_or("")),
            }
        }
        last = m.end;
    }
    out.push_str(&text[last..]);
    Ok((out, matches.len()))
}

pub(super) fn f_regex_replace(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "regex_replace", args, &["value", "pattern", "replacement", "ignorecase", "multiline", "count", "mandatory_count"], false, false)?;
    let value = b.text("value", "")?;
    let pattern = b.text("pattern", "")?;
    let replacement = b.text("replacement", "")?;
    let flags = regex_flags(b.truthy("ignorecase", false)?, b.truthy("multiline", false)?);
    let count = b.int("count")?.unwrap_or(0).max(0) as usize;
    let mandatory = b.int("mandatory_count")?.unwrap_or(0);
    let re = compile_py_regex(&pattern, flags).map_err(|e| b.fail(e))?;
    let (out, subs) = py_re_subn(&re, &replacement, &value, count).map_err(|e| b.fail(e))?;
    if mandatory != 0 && mandatory != subs as i64 {
        return Err(b.fail(format!("'{pattern}' should match {mandatory} times, but matches {subs} times in '{value}'")));
    }
    Ok(Value::from(out))
}

pub(super) fn f_regex_findall(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "regex_findall", args, &["value", "regex", "multiline", "ignorecase"], false, false)?;
    let value = b.text("value", "")?;
    let pattern = b.text("regex", "")?;
    let flags = regex_flags(b.truthy("ignorecase", false)?, b.truthy("multiline", false)?);
    let re = compile_py_regex(&pattern, flags).map_err(|e| b.fail(e))?;
    let ngroups = re.ngroups();
    let out = re
        .matches(&value, 0)
        .iter()
        .map(|m| {
            let group = |g: usize| Value::from(m.group(&value, g).unwrap_or(""));
            match ngroups {
                0 => group(0),
                1 => group(1),
                n => list((1..=n).map(group).collect()),
            }
        })
        .collect();
    Ok(list(out))
}

pub(super) fn f_regex_search(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "regex_search", args, &["value", "regex"], true, true)?;
    let value = b.text("value", "")?;
    let pattern = b.text("regex", "")?;
    enum G {
        Num(usize),
        Name(String),
    }
    let mut groups = Vec::new();
    for arg in &b.rest {
        let s = py_str(arg);
        if let Some(rest) = s.strip_prefix("\\g") {
            let name = rest
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .map(|(n, _)| n.to_string())
                .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
                .ok_or_else(|| b.fail("'NoneType' object has no attribute 'group'"))?;
            groups.push(G::Name(name));
        } else if let Some(rest) = s.strip_prefix('\\') {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let n = digits.parse::<usize>().map_err(|_| b.fail("'NoneType' object has no attribute 'group'"))?;
            groups.push(G::Num(n));
        } else {
            return Err(b.fail("Unknown argument"));
        }
    }
    let kw = |k: &str| b.kwargs.iter().find(|(n, _)| n == k).is_some_and(|(_, v)| v.is_true());
    let flags = regex_flags(kw("ignorecase"), kw("multiline"));
    let re = compile_py_regex(&pattern, flags).map_err(|e| b.fail(e))?;
    let Some(m) = re.search(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(m.group(&value, 0).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups {
        let idx = match g {
            G::Num(n) if n <= re.ngroups() => n,
            G::Num(_) => return Err(b.fail("no such group")),
            G::Name(name) => re.group_index(&name).ok_or_else(|| b.fail("no such group"))?,
        };
        out.push(m.group(&value, idx).map_or(Value::from(()), Value::from));
    }
    Ok(list(out))
}

/// Python's `re.escape` (3.7+): backslashes before `()[]{}?*+-|^$\.&~#`, whitespace.
pub fn py_re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn f_regex_escape(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "regex_escape", args, &["string", "re_type"], false, false)?;
    let s = b.text("string", "")?;
    match b.text("re_type", "python")?.as_str() {
        "python" => Ok(Value::from(py_re_escape(&s))),
        "posix_basic" => {
            let mut out = String::new();
            for c in s.chars() {
                if "].[^$*\\".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(Value::from(out))
        }
        "posix_extended" => Err(b.fail("Regex type (posix_extended) not yet implemented")),
        other => Err(b.fail(format!("Invalid regex type ({other})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::eval;
    use minijinja::context;

    #[test]
    fn regex_python_rules() {
        let v = |x: &str, p: &str, r: &str| eval("x | regex_replace(p, r)", context! { x => x, p => p, r => r });
        assert_eq!(v("foo bar", r"^(\w+) (\w+)$", r"\2 \1"), "bar foo");
        assert_eq!(v("2023-01-05", r"(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)", r"\g<d>/\g<m>/\g<y>"), "05/01/2023");
        assert_eq!(v("ab", "(x)?b", r"[\1]"), "a[]");
        assert_eq!(v("ab", "b", r"\n\t\\"), "a\n\t\\");
        assert_eq!(v("ab", "b", r"\&$1"), r"a\&$1");
        // Python's empty-match rule: an empty match may follow a non-empty one
        assert_eq!(v("abxd", "x*", "-"), "-a-b--d-");
        // a non-multiline `$` also matches before a final newline
        assert_eq!(v("ab\n", "b$", "X"), "aX\n");
        assert_eq!(v("ab\n", "$", "X"), "abX\nX");
        assert_eq!(v("ab  \n", r"\s+$", ""), "ab");
        assert_eq!(v("ab\nab\n", "b$", "X"), "ab\naX\n");
        // literal braces, `\Z`, classes
        assert_eq!(v("a{b}c", "{b}", "x"), "axc");
        assert_eq!(v("aaa", "a{,2}", "x"), "xxx");
        assert_eq!(v("ab\n", r"b\Z", "X"), "ab\n");
        assert_eq!(v("a[b]c", r"[[\]]", "-"), "a-b-c");
        assert_eq!(v("a&&b", "[&]+", "-"), "a-b");
        // errors
        assert!(v("ab", "b", r"\3").contains("invalid group reference 3"));
        assert!(v("ab", "b", r"\q").contains(r"bad escape \q"));
        assert!(v("abc", "a(?=b)", "X").contains("look-ahead assertions are not supported"));
        assert!(v("abc", "(?P<n>b)(?P=n)", "X").contains("backreferences"));
        assert_eq!(eval("'aaa' | regex_replace('a', 'b', count=2)", context! {}), "bba");
        assert!(eval("'abc' | regex_replace('b', 'X', mandatory_count=2)", context! {}).contains("should match 2 times"));
        let s = |x: &str, p: &str| eval("x | regex_search(p)", context! { x => x, p => p });
        assert_eq!(s("ab\ncd\n", r"(\w+)$"), "cd");
        assert_eq!(s("abc", "x"), "None");
        assert_eq!(eval("x | regex_search(p, '\\\\2', '\\\\1')", context! { x => "abc", p => "(b)(c)" }), "['c', 'b']");
        assert_eq!(eval("x | regex_findall(p)", context! { x => "a1b22c333", p => r"\d*" }), "['', '1', '', '22', '', '333', '']");
        assert_eq!(eval("x | regex_findall(p, ignorecase=true, multiline=true)", context! { x => "Foo=1\nfoo=2\nbar=3", p => r"^foo=(\d)$" }), "['1', '2']");
    }

    #[test]
    fn errors_name_what_they_are_about() {
        let e = compile_py_regex("a(?=b)", 0).err().unwrap();
        assert!(matches!(&e, RegexError::LookAhead { pattern } if pattern == "a(?=b)"), "{e:?}");
        assert_eq!(e.to_string(), "look-ahead assertions are not supported");
        assert_eq!(compile_py_regex("a(?<=b)", 0).err().unwrap().to_string(), "look-behind assertions are not supported");
        assert_eq!(compile_py_regex(r"(a)\1", 0).err().unwrap().to_string(), r"backreferences (\1) are not supported");
        assert_eq!(compile_py_regex("[ab", 0).err().unwrap().to_string(), "unterminated character set");
        assert_eq!(compile_py_regex("ab\\", 0).err().unwrap().to_string(), "bad escape (end of pattern)");
        let e = compile_py_regex("a{2,1}", 0).err().unwrap();
        assert!(matches!(&e, RegexError::Invalid { pattern, .. } if pattern == "a{2,1}"), "{e:?}");
        assert!(e.to_string().starts_with(r#"invalid regular expression "a{2,1}": "#), "{e}");
        let re = compile_py_regex("(?P<x>a)", 0).unwrap();
        let subn = |repl: &str| py_re_subn(&re, repl, "ab", 0).unwrap_err();
        let e = subn(r"\g<y>");
        assert!(matches!(&e, RegexError::UnknownGroupName { replacement, name } if replacement == r"\g<y>" && name == "y"), "{e:?}");
        assert_eq!(e.to_string(), "unknown group name 'y'");
        assert_eq!(subn(r"\g<2>").to_string(), "invalid group reference 2");
        assert_eq!(subn(r"\2").to_string(), "invalid group reference 2");
        assert_eq!(subn(r"\g").to_string(), "missing <");
        assert_eq!(subn(r"\g<x").to_string(), "missing >, unterminated name");
        assert_eq!(subn(r"\q").to_string(), r"bad escape \q");
        assert_eq!(subn("x\\").to_string(), "bad escape (end of pattern)");
    }

    #[test]
    fn regexes_are_cached() {
        let a = compile_py_regex("a+b", RE_I).unwrap();
        let b = compile_py_regex("a+b", RE_I).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = compile_py_regex("a+b", 0).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }
}

//! Python's `ast.literal_eval` for the values of INI inventories.

use serde_json::{Map, Number, Value};

#[derive(Clone, Debug, PartialEq)]
enum Lit {
    Int(i64),
    Float(f64),
    Complex,
    Str(String),
    Bytes(Vec<u8>),
    Bool(bool),
    None,
    Ellipsis,
    List(Vec<Lit>),
    Tuple(Vec<Lit>),
    Set(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

struct P<'a> {
    s: &'a [char],
    i: usize,
    depth: usize,
}

/// The value of `src` when Python's `ast.literal_eval` accepts it (tuples and sets become
/// lists, bytes text), else `None`. Complex numbers and integers beyond 64 bits give `None`.
pub fn literal_eval(src: &str) -> Option<Value> {
    let src = src.trim_start_matches([' ', '\t']);
    let chars: Vec<char> = src.chars().collect();
    let mut p = P { s: &chars, i: 0, depth: 0 };
    let lit = p.testlist()?;
    p.ws();
    if p.i != chars.len() {
        return None;
    }
    to_json(&lit)
}

fn to_json(l: &Lit) -> Option<Value> {
    Some(match l {
        Lit::Int(i) => Value::from(*i),
        Lit::Float(f) => Value::Number(Number::from_f64(*f)?),
        Lit::Complex => return None,
        Lit::Str(s) => Value::String(s.clone()),
        Lit::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Lit::Bool(b) => Value::Bool(*b),
        Lit::None => Value::Null,
        Lit::Ellipsis => Value::String("...".into()),
        Lit::List(v) | Lit::Tuple(v) => Value::Array(v.iter().map(to_json).collect::<Option<_>>()?),
        Lit::Set(v) => {
            let mut out: Vec<Value> = Vec::new();
            for x in v {
                let j = to_json(x)?;
                if !out.contains(&j) {
                    out.push(j);
                }
            }
            Value::Array(out)
        }
        Lit::Dict(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                let key = match k {
                    Lit::List(_) | Lit::Dict(_) | Lit::Set(_) => return None, // unhashable
                    Lit::Str(s) => s.clone(),
                    other => match to_json(other)? {
                        Value::String(s) => s,
                        j => j.to_string(),
                    },
                };
                m.insert(key, to_json(v)?);
            }
            Value::Object(m)
        }
    })
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}
fn is_ident(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl P<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.i + n).copied()
    }
    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' || c == '\x0c' || (self.depth > 0 && (c == '\n' || c == '\r')) {
                self.i += 1;
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            } else if self.depth == 0 && (c == '\n' || c == '\r') && self.s[self.i..].iter().all(|c| c.is_whitespace()) {
                self.i = self.s.len();
            } else {
                break;
            }
        }
    }
    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `expr (',' expr)* [',']` — a bare tuple when there is a comma.
    fn testlist(&mut self) -> Option<Lit> {
        let first = self.expr()?;
        self.ws();
        if self.peek() != Some(',') {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat(',') {
            self.ws();
            match self.peek() {
                None | Some(')') | Some(']') | Some('}') => break,
                _ => items.push(self.expr()?),
            }
        }
        Some(Lit::Tuple(items))
    }

    fn expr(&mut self) -> Option<Lit> {
        self.ws();
        let neg = match self.peek() {
            Some('-') => Some(true),
            Some('+') => Some(false),
            _ => None,
        };
        if let Some(neg) = neg {
            self.i += 1;
            let v = self.atom()?;
            self.no_binop()?;
            return match v {
                Lit::Int(i) => Some(Lit::Int(if neg { i.checked_neg()? } else { i })),
                Lit::Float(f) => Some(Lit::Float(if neg { -f } else { f })),
                Lit::Complex => Some(Lit::Complex),
                _ => None,
            };
        }
        let v = self.atom()?;
        self.no_binop()?;
        Some(v)
    }

    /// literal_eval only allows `+`/`-` between a real and an imaginary number; treat every
    /// binary operator as unsupported.
    fn no_binop(&mut self) -> Option<()> {
        self.ws();
        match self.peek() {
            Some('+' | '-' | '*' | '/' | '%' | '@' | '&' | '|' | '^' | '<' | '>' | '=' | '!' | '.' | '(' | '[') => None,
            _ => Some(()),
        }
    }

    fn atom(&mut self) -> Option<Lit> {
        self.ws();
        let c = self.peek()?;
        match c {
            '(' => {
                self.i += 1;
                self.depth += 1;
                if self.depth > 200 {
                    return None;
                }
                if self.eat(')') {
                    self.depth -= 1;
                    return Some(Lit::Tuple(Vec::new()));
                }
                let v = self.testlist()?;
                if !self.eat(')') {
                    return None;
                }
                self.depth -= 1;
                Some(v)
            }
            '[' => {
                self.i += 1;
                self.depth += 1;
                if self.depth > 200 {
                    return None;
                }
                let mut items = Vec::new();
                loop {
                    if self.eat(']') {
                        break;
                    }
                    items.push(self.expr()?);
                    if self.eat(',') {
                        continue;
                    }
                    if !self.eat(']') {
                        return None;
                    }
                    break;
                }
                self.depth -= 1;
                Some(Lit::List(items))
            }
            '{' => {
                self.i += 1;
                self.depth += 1;
                if self.depth > 200 {
                    return None;
                }
                if self.eat('}') {
                    self.depth -= 1;
                    return Some(Lit::Dict(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat(':') {
                    let mut kv = vec![(first, self.expr()?)];
                    loop {
                        if self.eat('}') {
                            break;
                        }
                        if !self.eat(',') {
                            return None;
                        }
                        if self.eat('}') {
                            break;
                        }
                        let k = self.expr()?;
                        if !self.eat(':') {
                            return None;
                        }
                        kv.push((k, self.expr()?));
                    }
                    self.depth -= 1;
                    Some(Lit::Dict(kv))
                } else {
                    let mut items = vec![first];
                    loop {
                        if self.eat('}') {
                            break;
                        }
                        if !self.eat(',') {
                            return None;
                        }
                        if self.eat('}') {
                            break;
                        }
                        items.push(self.expr()?);
                    }
                    self.depth -= 1;
                    Some(Lit::Set(items))
                }
            }
            '.' if self.peek_at(1) == Some('.') && self.peek_at(2) == Some('.') => {
                self.i += 3;
                Some(Lit::Ellipsis)
            }
            '0'..='9' | '.' => self.number(),
            '\'' | '"' => self.strings(),
            c if is_ident_start(c) => {
                let start = self.i;
                while self.peek().is_some_and(is_ident) {
                    self.i += 1;
                }
                let word: String = self.s[start..self.i].iter().collect();
                if matches!(self.peek(), Some('\'' | '"')) && matches!(word.to_ascii_lowercase().as_str(), "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf") {
                    self.i = start;
                    return self.strings();
                }
                match word.as_str() {
                    "True" => Some(Lit::Bool(true)),
                    "False" => Some(Lit::Bool(false)),
                    "None" => Some(Lit::None),
                    "set" => {
                        // only `set()`
                        if self.eat('(') && self.eat(')') { Some(Lit::Set(Vec::new())) } else { None }
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn digitpart(&mut self, radix: u32) -> Option<String> {
        let mut out = String::new();
        let mut last_us = false;
        while let Some(c) = self.peek() {
            if c.is_digit(radix) {
                out.push(c);
                last_us = false;
            } else if c == '_' && !out.is_empty() && !last_us {
                last_us = true;
            } else {
                break;
            }
            self.i += 1;
        }
        if last_us {
            return None;
        }
        Some(out)
    }

    fn number(&mut self) -> Option<Lit> {
        if self.peek() == Some('0') && matches!(self.peek_at(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
            let radix = match self.peek_at(1)?.to_ascii_lowercase() {
                'x' => 16,
                'o' => 8,
                _ => 2,
            };
            self.i += 2;
            if self.peek() == Some('_') {
                self.i += 1;
            }
            let digits = self.digitpart(radix)?;
            if digits.is_empty() || self.peek().is_some_and(is_ident) {
                return None;
            }
            return i64::from_str_radix(&digits, radix).ok().map(Lit::Int);
        }
        let int_part = self.digitpart(10)?;
        let mut is_float = false;
        let mut text = int_part.clone();
        if self.peek() == Some('.') {
            self.i += 1;
            is_float = true;
            let frac = if self.peek().is_some_and(|c| c.is_ascii_digit()) { self.digitpart(10)? } else { String::new() };
            if int_part.is_empty() && frac.is_empty() {
                return None;
            }
            text.push('.');
            text.push_str(if frac.is_empty() { "0" } else { &frac });
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.i;
            self.i += 1;
            let mut exp = String::from("e");
            if let Some(s @ ('+' | '-')) = self.peek() {
                exp.push(s);
                self.i += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                exp.push_str(&self.digitpart(10)?);
                text.push_str(&exp);
                is_float = true;
            } else {
                self.i = save;
                return None;
            }
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.i += 1;
            if self.peek().is_some_and(is_ident) {
                return None;
            }
            return Some(Lit::Complex);
        }
        if self.peek().is_some_and(is_ident) {
            return None;
        }
        if is_float {
            let t = if text.starts_with('.') { format!("0{text}") } else { text };
            let f: f64 = t.parse().ok()?;
            return f.is_finite().then_some(Lit::Float(f));
        }
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
            return None; // leading zeros are not allowed in decimal integers
        }
        int_part.parse::<i64>().ok().map(Lit::Int)
    }

    /// One or more adjacent string literals (concatenated).
    fn strings(&mut self) -> Option<Lit> {
        let mut acc: Option<Lit> = None;
        loop {
            self.ws();
            let start = self.i;
            let mut prefix = String::new();
            while let Some(c) = self.peek() {
                if c.is_ascii_alphabetic() && prefix.len() < 2 {
                    prefix.push(c.to_ascii_lowercase());
                    self.i += 1;
                } else {
                    break;
                }
            }
            if !matches!(self.peek(), Some('\'' | '"')) || !matches!(prefix.as_str(), "" | "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf") {
                self.i = start;
                break;
            }
            let lit = self.one_string(&prefix)?;
            acc = Some(match (acc, lit) {
                (None, l) => l,
                (Some(Lit::Str(a)), Lit::Str(b)) => Lit::Str(a + &b),
                (Some(Lit::Bytes(mut a)), Lit::Bytes(b)) => {
                    a.extend(b);
                    Lit::Bytes(a)
                }
                _ => return None,
            });
        }
        acc
    }

    fn one_string(&mut self, prefix: &str) -> Option<Lit> {
        if prefix.contains('f') {
            return None; // f-strings are not literals
        }
        let raw = prefix.contains('r');
        let bytes = prefix.contains('b');
        let q = self.peek()?;
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.i += if triple { 3 } else { 1 };
        let mut body: Vec<char> = Vec::new();
        loop {
            let c = self.peek()?;
            if c == q {
                if !triple {
                    self.i += 1;
                    break;
                }
                if self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q) {
                    self.i += 3;
                    break;
                }
            }
            if !triple && (c == '\n' || c == '\r') {
                return None;
            }
            if c == '\\' {
                body.push(c);
                self.i += 1;
                body.push(self.peek()?);
                self.i += 1;
                continue;
            }
            body.push(c);
            self.i += 1;
        }
        if bytes && body.iter().any(|c| !c.is_ascii()) {
            return None; // bytes literals hold ASCII characters only
        }
        let text: String = if raw { body.iter().collect() } else { unescape(&body, bytes)? };
        if bytes { Some(Lit::Bytes(text.chars().map(|c| c as u32 as u8).collect())) } else { Some(Lit::Str(text)) }
    }
}

fn unescape(body: &[char], bytes: bool) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    let hex = |s: &[char]| -> Option<u32> {
        if s.iter().all(|c| c.is_ascii_hexdigit()) { u32::from_str_radix(&s.iter().collect::<String>(), 16).ok() } else { None }
    };
    while i < body.len() {
        let c = body[i];
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let n = *body.get(i + 1)?;
        i += 2;
        match n {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = n.to_digit(8)?;
                let mut k = 0;
                while k < 2 && body.get(i).is_some_and(|c| c.is_digit(8)) {
                    v = v * 8 + body[i].to_digit(8)?;
                    i += 1;
                    k += 1;
                }
                out.push(char::from_u32(if bytes { v & 0xff } else { v })?);
            }
            'x' => {
                let v = hex(body.get(i..i + 2)?)?;
                i += 2;
                out.push(char::from_u32(v)?);
            }
            'u' if !bytes => {
                let v = hex(body.get(i..i + 4)?)?;
                i += 4;
                out.push(char::from_u32(v)?);
            }
            'U' if !bytes => {
                let v = hex(body.get(i..i + 8)?)?;
                i += 8;
                out.push(char::from_u32(v)?);
            }
            'N' if !bytes => return None, // named characters: not supported
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::inventory::{parse_ini_value, pylit};

    #[test]
    fn python_literals() {
        let l = |s: &str| pylit::literal_eval(s);
        assert_eq!(l("1"), Some(json!(1)));
        assert_eq!(l("-3"), Some(json!(-3)));
        assert_eq!(l("+ 3"), Some(json!(3)));
        assert_eq!(l("1_000"), Some(json!(1000)));
        assert_eq!(l("0o17"), Some(json!(15)));
        assert_eq!(l("0b101"), Some(json!(5)));
        assert_eq!(l("012"), None);
        assert_eq!(l("00"), Some(json!(0)));
        assert_eq!(l("1e3"), Some(json!(1000.0)));
        assert_eq!(l(".5"), Some(json!(0.5)));
        assert_eq!(l("5."), Some(json!(5.0)));
        assert_eq!(l("1.e2"), Some(json!(100.0)));
        assert_eq!(l("yes"), None);
        assert_eq!(l("true"), None);
        assert_eq!(l("False"), Some(json!(false)));
        assert_eq!(l("'a' \"b\""), Some(json!("ab")));
        assert_eq!(l(r"'tab\there'"), Some(json!("tab\there")));
        assert_eq!(l(r"r'raw\t'"), Some(json!("raw\\t")));
        assert_eq!(l(r"'\x41\u00e9\101'"), Some(json!("Aé\u{41}")));
        assert_eq!(l("b'bytes'"), Some(json!("bytes")));
        assert_eq!(l("f'x'"), None);
        assert_eq!(l("'''tri'ple'''"), Some(json!("tri'ple")));
        assert_eq!(l("[1, 'a', [None]]"), Some(json!([1, "a", [null]])));
        assert_eq!(l("(1,)"), Some(json!([1])));
        assert_eq!(l("1, 2"), Some(json!([1, 2])));
        assert_eq!(l("()"), Some(json!([])));
        assert_eq!(l("(5)"), Some(json!(5)));
        assert_eq!(l("{'a': 1, 2: [3], }"), Some(json!({"a": 1, "2": [3]})));
        assert_eq!(l("{1, 1, 2}"), Some(json!([1, 2])));
        assert_eq!(l("set()"), Some(json!([])));
        assert_eq!(l("{}"), Some(json!({})));
        assert_eq!(l("..."), Some(json!("...")));
        assert_eq!(l("1 # comment"), Some(json!(1)));
        assert_eq!(l("  7"), Some(json!(7)));
        assert_eq!(l("1 + 2"), None);
        assert_eq!(l("-'a'"), None);
        assert_eq!(l("--1"), None);
        assert_eq!(l("1j"), None);
        assert_eq!(l("a b"), None);
        assert_eq!(l(""), None);
        assert_eq!(l("[1, 2"), None);
        assert_eq!(l("1abc"), None);
        assert_eq!(l("99999999999999999999"), None);
        assert_eq!(parse_ini_value("99999999999999999999"), json!("99999999999999999999"));
        assert_eq!(parse_ini_value("a=b"), json!("a=b"));
    }
}

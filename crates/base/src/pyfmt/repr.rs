//! Python's `str()` and `repr()` of values, strings and floats, as Ansible prints them.

use std::fmt::Write as _;

use minijinja::Value;

use super::{Shape, shape};

/// Python's `str()` of a value: strings as they are, `True`/`False`, `None`, floats like Python
/// (`1.0`, `1e+20`), and containers in repr form (`['a', 1, True]`, `{'k': 'v'}`).
///
/// This is what `{{ x | string }}` gives. Inside a larger template Ansible 2.19 prints `None`
/// as an empty string instead; [`render_str`] does that.
pub fn py_str(v: &Value) -> String {
    match shape(v) {
        Shape::Undefined => String::new(),
        Shape::Str(s) => s,
        Shape::Other(s) => s,
        _ => py_repr(v),
    }
}

/// What `{{ x }}` prints inside a larger template in Ansible 2.19: [`py_str`], except that
/// `None` (and an undefined value) print as an empty string.
pub fn render_str(v: &Value) -> String {
    if v.is_none() || v.is_undefined() { String::new() } else { py_str(v) }
}

/// Python's `repr()` of a value: strings quoted (`'a'`, `"it's"`), containers recursively.
/// Tuples print as lists, as Ansible 2.19 turns them into lists.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v, 0);
    out
}

fn write_repr(out: &mut String, v: &Value, depth: usize) {
    if depth > 200 {
        out.push_str("...");
        return;
    }
    match shape(v) {
        Shape::Undefined => out.push_str("None"),
        Shape::None => out.push_str("None"),
        Shape::Bool(b) => out.push_str(if b { "True" } else { "False" }),
        Shape::Int(s) => out.push_str(&s),
        Shape::Float(f) => out.push_str(&py_float_repr(f)),
        Shape::Str(s) => out.push_str(&py_str_repr(&s)),
        Shape::Other(s) => out.push_str(&s),
        Shape::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, depth + 1);
            }
            out.push(']');
        }
        Shape::Map(items) => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, k, depth + 1);
                out.push_str(": ");
                write_repr(out, item, depth + 1);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the string has a single quote and no
/// double quote; backslash escapes for the quote, `\\`, `\n`, `\r`, `\t`, other control and
/// non-printable characters (`\x07`, `\u200b`, `\U000e0001`).
pub fn py_str_repr(s: &str) -> String {
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if py_isprintable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n <= 0xff {
                    let _ = write!(out, "\\x{n:02x}");
                } else if n <= 0xffff {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable()` for one non-ASCII character: control,
/// format, separator (other than the ASCII space), private-use and non-character code points
/// are not printable.
fn py_isprintable(c: char) -> bool {
    let n = c as u32;
    if c.is_control() || (c.is_whitespace() && c != ' ') {
        return false;
    }
    !matches!(n,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff | 0xfdd0..=0xfdef)
        && (n & 0xfffe) != 0xfffe
}

/// Python's `repr()` of a float: the shortest text that reads back to the same value, with
/// `.0` added to whole numbers and exponent form below `1e-4` and from `1e16` on (`1e-05`,
/// `1e+16`); `inf`, `-inf`, `nan`.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, like Python's repr.
    let s = format!("{f:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt as usize >= digits.len() {
            out.push_str(&digits);
            for _ in 0..(decpt as usize - digits.len()) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyfmt::tests::val;

    #[test]
    fn float_repr_like_python() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123_456_789.123_456_79, "123456789.12345679"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5e-7, "-2.5e-07"),
            (1e22, "1e+22"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (100.0, "100.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(*f), *want, "repr({f})");
        }
    }

    #[test]
    fn string_repr_like_python() {
        let cases: &[(&str, &str)] = &[
            ("a", "'a'"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' and \"", "'both \\' and \"'"),
            ("tab\there\n", "'tab\\there\\n'"),
            ("\u{0}\u{7f}\u{80}\u{a0}\u{ad}", "'\\x00\\x7f\\x80\\xa0\\xad'"),
            ("é日本😀", "'é日本😀'"),
            ("\u{200b}\u{2028}\u{feff}", "'\\u200b\\u2028\\ufeff'"),
            ("back\\slash", "'back\\\\slash'"),
        ];
        for (s, want) in cases {
            assert_eq!(py_str_repr(s), *want, "repr({s:?})");
        }
    }

    #[test]
    fn str_of_values() {
        assert_eq!(py_str(&Value::from(true)), "True");
        assert_eq!(py_str(&Value::from(())), "None");
        assert_eq!(render_str(&Value::from(())), "");
        assert_eq!(render_str(&Value::UNDEFINED), "");
        assert_eq!(render_str(&Value::from(false)), "False");
        assert_eq!(py_str(&Value::from(1.0)), "1.0");
        assert_eq!(py_str(&Value::from("plain")), "plain");
        assert_eq!(py_str(&val(r#"[1.0, "a", "it's", null, true, {"k": "v", "n": [1, 2]}]"#)), r#"[1.0, 'a', "it's", None, True, {'k': 'v', 'n': [1, 2]}]"#);
        assert_eq!(py_str(&val("{}")), "{}");
        assert_eq!(py_str(&val("[]")), "[]");
        // tuples (zip, items) print as lists, as Ansible 2.19 turns them into lists
        let pairs = Value::from(vec![Value::from(vec![Value::from(1), Value::from("a")])]);
        assert_eq!(py_str(&pairs), "[[1, 'a']]");
        assert_eq!(py_str(&Value::from(1i128 << 70)), "1180591620717411303424");
    }
}

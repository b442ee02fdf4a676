//! PyYAML's YAML 1.1 implicit resolver (resolver.py), its scalar constructors
//! (constructor.py) and Python's `repr()` of a float.

use super::NodeKind;

/// Resolves a plain scalar as PyYAML's `Resolver` does (bool, int, float, null, else str).
pub(super) fn resolve_plain(value: String) -> NodeKind {
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
pub(super) fn construct_int(value: &str) -> Option<NodeKind> {
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
pub(super) fn construct_float(value: &str) -> Option<f64> {
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
pub(super) fn python_float_repr(f: f64) -> String {
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
    use super::*;

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
}

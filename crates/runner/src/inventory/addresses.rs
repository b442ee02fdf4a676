//! Host addresses (names, IPv4 and IPv6 with a port) and host ranges (`db[01:10]`,
//! `node[a:c]`) as Ansible parses and expands them.

use std::sync::LazyLock;

use regex::Regex;

use super::python_int_str;

const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

static BRACKETED_HOSTPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[(.+)\]:([0-9]+)$").expect("regex"));
static HOSTPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$").expect("regex"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!("(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
    Regex::new(&format!(r"(?i)^(?:{c}\.){{3}}{c}$")).expect("regex")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!("(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    let alts = [
        "(?:C:){7}C",
        "(?:C:){1,6}:",
        "(?:C:)(?::C){1,6}",
        "(?:C:){2}(?::C){1,5}",
        "(?:C:){3}(?::C){1,4}",
        "(?:C:){4}(?::C){1,3}",
        "(?:C:){5}(?::C){1,2}",
        "(?:C:){6}(?::C)",
        ":(?::C){1,6}",
        "C?::",
        r"(?:0:){6}(?:C\.){3}C",
        r"::(?:ffff:)?(?:C\.){3}C",
        r"(?:0:){5}ffff:(?:C\.){3}C",
    ];
    let body = alts.join("|").replace('C', &c);
    Regex::new(&format!("(?i)^(?:{body})$")).expect("regex")
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    // A label starts with a word character or range and does not end with `_` or `-`.
    let r = ALNUM_RANGE;
    let label = format!(r"(?:(?:[^\W_]|{r})|(?:\w|{r})(?:[\w-]|{r})*(?:[^\W_]|{r}))");
    Regex::new(&format!(r"(?i)^{label}(?:\.{label})*$")).expect("regex")
});

/// Why a host address or range does not parse, in Ansible's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("Not a valid network hostname: {0}")]
    NotAHostname(String),
    #[error("Detected range in host but was asked to ignore ranges")]
    RangeNotAllowed,
    /// The range of this host pattern is malformed.
    #[error("Invalid host range in '{0}'")]
    InvalidRange(String),
    #[error("host range must be begin:end or begin:end:step")]
    RangeForm,
    #[error("host range must specify end value")]
    RangeNoEnd,
    #[error("host range must specify equal-length begin and end formats")]
    RangeWidths,
    #[error("host range must have begin <= end")]
    RangeOrder,
    /// More than a million hosts.
    #[error("host range in '{0}' is too large")]
    RangeTooLarge(String),
}

/// Ansible's `parse_address`: a host (name, IPv4 or IPv6 address, with `[x:y]` ranges when
/// `allow_ranges`) and an optional `:port` (`[addr]:port` for IPv6).
pub(super) fn parse_address(address: &str, allow_ranges: bool) -> Result<(String, Option<i64>), AddressError> {
    let mut address = address.to_string();
    let mut port = None;
    for re in [&*BRACKETED_HOSTPORT, &*HOSTPORT] {
        if let Some(c) = re.captures(&address) {
            port = c[2].parse::<i64>().ok();
            address = c[1].to_string();
        }
    }
    if !(IPV4.is_match(&address) || IPV6.is_match(&address) || HOSTNAME.is_match(&address)) {
        return Err(AddressError::NotAHostname(address));
    }
    if !allow_ranges && address.contains('[') {
        return Err(AddressError::RangeNotAllowed);
    }
    Ok((address, port))
}

/// The hosts a host pattern of an INI or YAML inventory stands for, and its port.
pub(super) fn expand_hostpattern(hostpattern: &str) -> Result<(Vec<String>, Option<i64>), AddressError> {
    let (pattern, port) = parse_address(hostpattern, true).unwrap_or_else(|_| (hostpattern.to_string(), None));
    let hosts = if pattern.contains('[') { expand_hostname_range(&pattern)? } else { vec![pattern] };
    Ok((hosts, port))
}

/// Ansible's `expand_hostname_range`: `db[01:10:2]-x`, `node[a:c]`, several ranges per name.
pub(super) fn expand_hostname_range(line: &str) -> Result<Vec<String>, AddressError> {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let [head, nrange, tail] = parts[..] else {
        return Err(AddressError::InvalidRange(line.to_string()));
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(AddressError::RangeForm);
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = bounds.get(2).copied().unwrap_or("1");
    if end.is_empty() {
        return Err(AddressError::RangeNoEnd);
    }
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err(AddressError::RangeWidths);
        }
        Some(beg.len())
    } else {
        None
    };
    let fill = |s: String| match width {
        Some(w) => zfill(&s, w),
        None => s,
    };
    let bad = || AddressError::InvalidRange(line.to_string());
    let seq: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end), step.trim().parse::<i64>()) {
        (Some(ib), Some(ie), Ok(st)) => {
            if ib > ie {
                return Err(AddressError::RangeOrder);
            }
            if st <= 0 {
                return Err(bad());
            }
            LETTERS[ib..=ie].chars().step_by(st as usize).map(|c| c.to_string()).collect()
        }
        _ => {
            let b: i64 = python_int_str(beg).ok_or_else(bad)?;
            let e: i64 = python_int_str(end).ok_or_else(bad)?;
            let st: i64 = python_int_str(step).ok_or_else(bad)?;
            if st == 0 {
                return Err(bad());
            }
            let count = if st > 0 { (e + 1 - b).max(0) / st } else { (b - e - 1).max(0) / -st };
            if count > 1_000_000 {
                return Err(AddressError::RangeTooLarge(line.to_string()));
            }
            let mut v = Vec::new();
            let mut x = b;
            while (st > 0 && x < e + 1) || (st < 0 && x > e + 1) {
                v.push(x.to_string());
                x += st;
            }
            v
        }
    };
    let mut out = Vec::new();
    for r in seq {
        let name = format!("{head}{}{tail}", fill(r));
        if name.contains('[') {
            out.extend(expand_hostname_range(&name)?);
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

fn zfill(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    let (sign, digits) = match s.strip_prefix(['-', '+']) {
        Some(rest) => (&s[..1], rest),
        None => ("", s),
    };
    format!("{sign}{}{digits}", "0".repeat(width - n))
}

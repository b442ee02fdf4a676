//! The host pattern language of `hosts:` and `--limit`: `,`/`:` lists, `&` intersections, `!`
//! exclusions, wildcards, `~regex` and subscripts.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::addresses::parse_address;
use super::{Inventory, InventoryError, LOCALHOST_NAMES};

impl Inventory {
    /// Hosts matched by a `hosts:` / `--limit` pattern, in inventory order.
    ///
    /// Patterns are separated by `,` (or `:` when that is not part of an address or range):
    /// `all` / `*`, group and host names, shell wildcards (`web*`), regular expressions (`~web\d+`,
    /// matched from the start of the name), `&x` to intersect, `!x` to exclude, and subscripts
    /// on a group (`web[0]`, `web[1:3]`, `web[-1]`). A name in [`LOCALHOST_NAMES`] that matches
    /// nothing else gives the implicit localhost (which `all` never includes). A pattern that
    /// matches nothing gives no hosts; an invalid regular expression or subscript is an error.
    pub fn pattern_hosts(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        let patterns = order_patterns(split_host_pattern(pattern));
        let mut hosts: Vec<String> = Vec::new();
        for p in &patterns {
            if self.hosts.contains_key(p.as_str()) {
                hosts.push(p.clone());
                continue;
            }
            let that = self.match_one_pattern(p)?;
            if let Some(_rest) = p.strip_prefix('!') {
                let that: HashSet<&String> = that.iter().collect();
                hosts.retain(|h| !that.contains(h));
            } else if p.starts_with('&') {
                let that: HashSet<&String> = that.iter().collect();
                hosts.retain(|h| that.contains(h));
            } else {
                let existing: HashSet<String> = hosts.iter().cloned().collect();
                hosts.extend(that.into_iter().filter(|h| !existing.contains(h)));
            }
        }
        let mut seen = HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        Ok(hosts)
    }

    fn match_one_pattern(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        let pattern = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
        let (expr, subscript) = split_subscript(pattern);
        let hosts = self.enumerate_matches(expr)?;
        apply_subscript(hosts, subscript).ok_or_else(|| InventoryError::NoSubscriptMatch(pattern.to_string()))
    }

    fn enumerate_matches(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        if pattern.is_empty() {
            return Ok(Vec::new());
        }
        let re = pattern_regex(pattern)?;
        let mut results: Vec<String> = Vec::new();
        let matching_groups: Vec<&String> = self.groups.keys().filter(|g| re.is_match(g)).collect();
        for g in &matching_groups {
            results.extend(self.group_hosts(g));
        }
        if matching_groups.is_empty() || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
            results.extend(self.hosts.keys().filter(|h| re.is_match(h)).cloned());
        }
        if results.is_empty() && LOCALHOST_NAMES.contains(&pattern) {
            // Ansible hands out the first localhost-like host of the inventory, if any, else
            // the implicit localhost.
            let named = self.hosts.keys().find(|h| LOCALHOST_NAMES.contains(&h.as_str()));
            results.push(named.cloned().unwrap_or_else(|| pattern.to_string()));
        }
        Ok(results)
    }
}

static PATTERN_WITH_SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$").expect("regex"));

static PATTERN_SPLIT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("regex"));

/// Ansible's `split_host_pattern`: commas separate patterns; without a comma, a single address or
/// host range stays whole, else `:` separates.
fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if parse_address(pattern, true).is_ok() {
        vec![pattern.to_string()]
    } else {
        PATTERN_SPLIT.find_iter(pattern).map(|m| m.as_str().to_string()).collect()
    };
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// Plain patterns first, then `&` intersections, then `!` exclusions; `all` when there is no
/// plain pattern.
fn order_patterns(patterns: Vec<String>) -> Vec<String> {
    let mut regular = Vec::new();
    let mut inter = Vec::new();
    let mut excl = Vec::new();
    for p in patterns {
        if p.starts_with('!') {
            excl.push(p);
        } else if p.starts_with('&') {
            inter.push(p);
        } else {
            regular.push(p);
        }
    }
    if regular.is_empty() {
        regular.push("all".to_string());
    }
    regular.into_iter().chain(inter).chain(excl).collect()
}

enum Subscript {
    Index(i64),
    Range(i64, i64),
}

fn split_subscript(pattern: &str) -> (&str, Option<Subscript>) {
    if pattern.starts_with('~') {
        return (pattern, None);
    }
    let Some(c) = PATTERN_WITH_SUBSCRIPT.captures(pattern) else { return (pattern, None) };
    let base = c.get(1).expect("group 1").as_str();
    if let Some(idx) = c.get(2) {
        return (base, idx.as_str().parse().ok().map(Subscript::Index));
    }
    let start: i64 = c[3].parse().unwrap_or(0);
    let end: i64 = if c[5].is_empty() { -1 } else { c[5].parse().unwrap_or(-1) };
    (base, Some(Subscript::Range(start, end)))
}

/// Ansible's `_apply_subscript`; `None` when an index is out of range.
fn apply_subscript(hosts: Vec<String>, sub: Option<Subscript>) -> Option<Vec<String>> {
    let Some(sub) = sub else { return Some(hosts) };
    if hosts.is_empty() {
        return Some(hosts);
    }
    let len = hosts.len() as i64;
    let index = |i: i64| -> Option<String> {
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then(|| hosts[i as usize].clone())
    };
    match sub {
        Subscript::Index(i) => index(i).map(|h| vec![h]),
        // `[x:0]`: Ansible treats the end 0 as "no end" and returns the single host x.
        Subscript::Range(start, 0) => index(start).map(|h| vec![h]),
        Subscript::Range(start, end) => {
            let end = if end == -1 { len - 1 } else { end };
            let s = start.clamp(0, len) as usize;
            let e = (end + 1).clamp(0, len) as usize;
            Some(if s < e { hosts[s..e].to_vec() } else { Vec::new() })
        }
    }
}

/// The matcher for one pattern: `~regex` (anchored at the start, as Python's `re.match`) or a
/// shell wildcard (`fnmatch`, whole name, case-sensitive).
fn pattern_regex(pattern: &str) -> Result<Regex, InventoryError> {
    let src = match pattern.strip_prefix('~') {
        Some(re) => format!("^(?:{re})"),
        None => format!("^(?s:{})$", fnmatch_translate(pattern)),
    };
    Regex::new(&src).map_err(|_| InventoryError::Pattern(pattern.to_string()))
}

/// Python's `fnmatch.translate` to Rust regex syntax (without anchors).
fn fnmatch_translate(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(r"\[");
                } else {
                    let mut class = String::from("[");
                    let mut k = i;
                    if chars[k] == '!' {
                        class.push('^');
                        k += 1;
                    } else if chars[k] == '^' {
                        class.push_str(r"\^");
                        k += 1;
                    }
                    while k < j {
                        let ch = chars[k];
                        if matches!(ch, '\\' | '[' | ']' | '&' | '~') {
                            class.push('\\');
                        }
                        class.push(ch);
                        k += 1;
                    }
                    class.push(']');
                    out.push_str(&class);
                    i = j + 1;
                }
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

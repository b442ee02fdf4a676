//! Sizes, math and versions: `human_readable`, `human_to_bytes`, `version_compare`, `log`,
//! `pow` and `root`.

use minijinja::{Error, Value};
use regex::Regex;

use super::{Args, Bound, as_f64, bind, int_value};
use crate::pyfmt::py_str;

const SIZE_RANGES: [(&str, f64); 9] = [
    ("Y", 1208925819614629174706176.0),
    ("Z", 1180591620717411303424.0),
    ("E", 1152921504606846976.0),
    ("P", 1125899906842624.0),
    ("T", 1099511627776.0),
    ("G", 1073741824.0),
    ("M", 1048576.0),
    ("K", 1024.0),
    ("B", 1.0),
];

/// Ansible's `bytes_to_human`: `'1.00 KB'`, `'1.43 MB'`, `'1.00 Bytes'` (bits: `Kb`, `bits`).
pub fn bytes_to_human(size: f64, isbits: bool, unit: Option<&str>) -> String {
    let base = if isbits { "bits" } else { "Bytes" };
    let mut chosen = SIZE_RANGES[SIZE_RANGES.len() - 1];
    for r in SIZE_RANGES {
        let hit = match unit {
            None => size >= r.1,
            Some(u) => u.to_uppercase().starts_with(r.0) && !u.is_empty(),
        };
        if hit {
            chosen = r;
            break;
        }
    }
    let suffix = if chosen.1 != 1.0 { format!("{}{}", chosen.0, &base[..1]) } else { base.to_string() };
    format!("{:.2} {}", size / chosen.1, suffix)
}

/// Why [`human_to_bytes`] cannot read a size; each variant names the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HumanSizeError {
    /// Not a number with an optional unit.
    #[error("human_to_bytes() can't interpret following string: {input}")]
    Unreadable { input: String },
    #[error("human_to_bytes() can't interpret following number: {number}")]
    Number { input: String, number: String },
    /// A unit whose first letter is none of the size prefixes.
    #[error("human_to_bytes() failed to convert {input} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B")]
    Suffix { input: String, unit: String },
    /// A longer unit that is not the prefix's (`MB`, `megabyte`; bits with `isbits`); `expect`
    /// says what would be.
    #[error("human_to_bytes() failed to convert {input}. Value is not a valid string ({expect})")]
    Unit { input: String, expect: String },
}

/// Ansible's `human_to_bytes`: `'1K'` → 1024, `'1.5 MB'` → 1572864, `'2Kb'` with `isbits`.
pub fn human_to_bytes(number: &str, default_unit: Option<&str>, isbits: bool) -> Result<i128, HumanSizeError> {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| Regex::new(r"^([0-9]*\.?[0-9]+)(?:\s*([A-Za-z]+))?\s*$").unwrap());
    let caps = RE.captures(number).ok_or_else(|| HumanSizeError::Unreadable { input: number.to_string() })?;
    let num: f64 = caps[1].parse().map_err(|_| HumanSizeError::Number { input: number.to_string(), number: caps[1].to_string() })?;
    let unit = caps.get(2).map(|m| m.as_str().to_string()).or_else(|| default_unit.map(String::from));
    let Some(unit) = unit else {
        return Ok(py_round_half_even(num) as i128);
    };
    let range_key = unit.chars().next().unwrap_or('B').to_ascii_uppercase().to_string();
    let limit =
        SIZE_RANGES.iter().find(|r| r.0 == range_key).map(|r| r.1).ok_or_else(|| HumanSizeError::Suffix { input: number.to_string(), unit: unit.clone() })?;
    let (unit_class, unit_class_name) = if isbits { ("b", "bit") } else { ("B", "byte") };
    if unit.chars().count() > 1 {
        let expect =
            if range_key == "B" { format!("expect {unit_class} or {unit_class_name}") } else { format!("expect {range_key}{unit_class} or {range_key}") };
        let names = [
            ("B", "byte", "bit"),
            ("K", "kilobyte", "kilobit"),
            ("M", "megabyte", "megabit"),
            ("G", "gigabyte", "gigabit"),
            ("T", "terabyte", "terabit"),
            ("P", "petabyte", "petabit"),
            ("E", "exabyte", "exabit"),
            ("Z", "zetabyte", "zetabit"),
            ("Y", "yottabyte", "yottabit"),
        ];
        let (_, bytename, bitname) = names.iter().find(|n| n.0 == range_key).copied().unwrap_or(("B", "byte", "bit"));
        let long = if isbits { bitname } else { bytename };
        let short = format!("{range_key}{unit_class}");
        if unit.to_lowercase() != long && unit != short {
            return Err(HumanSizeError::Unit { input: number.to_string(), expect });
        }
    }
    Ok(py_round_half_even(num * limit) as i128)
}

fn py_round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r }
}

pub(super) fn f_human_readable(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "human_readable", args, &["size", "isbits", "unit"], false, false)?;
    let size = b.defined("size")?;
    let n = as_f64(size).ok_or_else(|| b.fail("human_readable() failed on bad input"))?;
    let unit = b.opt("unit").filter(|u| !u.is_none()).map(py_str);
    Ok(Value::from(bytes_to_human(n, b.truthy("isbits", false)?, unit.as_deref())))
}

pub(super) fn f_human_to_bytes(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "human_to_bytes", args, &["size", "default_unit", "isbits"], false, false)?;
    let size = py_str(b.defined("size")?);
    let unit = b.opt("default_unit").filter(|u| !u.is_none()).map(py_str);
    human_to_bytes(&size, unit.as_deref(), b.truthy("isbits", false)?)
        .map(int_value)
        .map_err(|e| b.fail(format!("human_to_bytes() can't interpret the input: {e}")))
}

pub(super) fn f_version_compare(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "version_compare", args, &["value", "version", "operator", "strict", "version_type"], false, false)?;
    crate::is_tests::version_compare_bound(&b).map(Value::from)
}

fn num_arg(b: &Bound, p: &str, what: &str) -> Result<f64, Error> {
    let v = b.defined(p)?;
    as_f64(v).ok_or_else(|| b.fail(format!("{what}() can only be used on numbers")))
}

pub(super) fn f_log(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "log", args, &["x", "base"], false, false)?;
    let x = num_arg(&b, "x", "log")?;
    let rv = match b.opt("base") {
        None => x.ln(),
        Some(_) => {
            let base = num_arg(&b, "base", "log")?;
            if base == 10.0 { x.log10() } else { x.ln() / base.ln() }
        }
    };
    if x <= 0.0 {
        return Err(b.fail("math domain error"));
    }
    Ok(Value::from(rv))
}

pub(super) fn f_pow(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "pow", args, &["x", "y"], false, false)?;
    Ok(Value::from(num_arg(&b, "x", "pow")?.powf(num_arg(&b, "y", "pow")?)))
}

pub(super) fn f_root(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "root", args, &["x", "base"], false, false)?;
    let x = num_arg(&b, "x", "root")?;
    let base = if b.opt("base").is_some() { num_arg(&b, "base", "root")? } else { 2.0 };
    if x < 0.0 && base == 2.0 {
        return Err(b.fail("root() can only be used on numbers"));
    }
    Ok(Value::from(if base == 2.0 { x.sqrt() } else { x.powf(1.0 / base) }))
}

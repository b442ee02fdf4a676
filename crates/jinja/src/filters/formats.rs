//! The data format filters: `to_json`, `to_nice_json`, `from_json`, `to_yaml`,
//! `to_nice_yaml`, `from_yaml` and `from_yaml_all`.

use minijinja::value::Serde;
use minijinja::{Error, Value};

use super::{Args, Bound, as_f64, as_int, b_int, bind, items, list, type_name};
use crate::pyfmt::{self, JsonOptions, YamlOptions, py_str};

fn json_options(b: &Bound, mut opts: JsonOptions) -> Result<JsonOptions, Error> {
    for (k, v) in &b.kwargs {
        match k.as_str() {
            "indent" => {
                opts.indent =
                    if v.is_none() { None } else { Some(as_int(v).filter(|n| *n >= 0).ok_or_else(|| b.fail("'indent' must be an integer"))? as usize) }
            }
            "sort_keys" => opts.sort_keys = v.is_true(),
            "ensure_ascii" => opts.ensure_ascii = v.is_true(),
            "separators" => {
                let parts = items(v);
                if parts.len() != 2 {
                    return Err(b.fail("'separators' must be a pair of strings"));
                }
                opts.separators = Some((py_str(&parts[0]), py_str(&parts[1])));
            }
            "profile" | "vault_to_text" | "preprocess_unsafe" | "skipkeys" | "check_circular" | "allow_nan" => {}
            other => return Err(b.fail(format!("dumps() got an unexpected keyword argument '{other}'"))),
        }
    }
    Ok(opts)
}

pub(super) fn f_to_json(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "to_json", args, &["a"], false, true)?;
    let a = b.defined("a")?;
    let opts = json_options(&b, JsonOptions::default())?;
    pyfmt::to_json(a, &opts).map(Value::from).map_err(|e| b.fail(e))
}

pub(super) fn f_to_nice_json(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "to_nice_json", args, &["a", "indent", "sort_keys"], false, true)?;
    let a = b.defined("a")?;
    let indent = b.int("indent")?.unwrap_or(4).max(0) as usize;
    let sort_keys = b.truthy("sort_keys", true)?;
    let mut opts = json_options(&b, JsonOptions { indent: Some(indent), sort_keys, ..Default::default() })?;
    opts.separators = Some((",".into(), ": ".into()));
    pyfmt::to_json(a, &opts).map(Value::from).map_err(|e| b.fail(e))
}

pub(super) fn f_from_json(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "from_json", args, &["a", "profile"], false, true)?;
    let a = b.defined("a")?;
    let text = match a.as_str() {
        Some(s) => s,
        None => return Err(b.fail(format!("the JSON object must be str, bytes or bytearray, not {}", type_name(a)))),
    };
    let data: serde_json::Value = serde_json::from_str(text).map_err(|e| b.fail(e))?;
    Ok(Value::from(Serde(data)))
}

fn yaml_options(b: &Bound, mut opts: YamlOptions) -> Result<YamlOptions, Error> {
    for (k, v) in &b.kwargs {
        match k.as_str() {
            "indent" => opts.indent = b_int(b, v, "indent")? as usize,
            "width" => {
                opts.width = match as_f64(v) {
                    Some(f) if f.is_infinite() => -1,
                    _ => b_int(b, v, "width")?,
                }
            }
            "default_flow_style" => opts.default_flow_style = if v.is_none() { None } else { Some(v.is_true()) },
            "sort_keys" => opts.sort_keys = v.is_true(),
            "allow_unicode" => opts.allow_unicode = v.is_true(),
            "explicit_start" => opts.explicit_start = v.is_true(),
            "explicit_end" => opts.explicit_end = v.is_true(),
            "encoding" | "line_break" | "canonical" | "version" | "tags" => {}
            other => return Err(b.fail(format!("dump() got an unexpected keyword argument '{other}'"))),
        }
    }
    Ok(opts)
}

pub(super) fn f_to_yaml(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "to_yaml", args, &["a"], true, true)?;
    let a = b.defined("a")?;
    let opts = yaml_options(&b, YamlOptions::default())?;
    pyfmt::to_yaml_with(a, &opts).map(Value::from).map_err(|e| b.fail(e))
}

pub(super) fn f_to_nice_yaml(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "to_nice_yaml", args, &["a", "indent"], true, true)?;
    let a = b.defined("a")?;
    let indent = b.int("indent")?.unwrap_or(4);
    let opts = yaml_options(&b, YamlOptions { indent: indent.max(0) as usize, default_flow_style: Some(false), ..YamlOptions::default() })?;
    pyfmt::to_yaml_with(a, &opts).map(Value::from).map_err(|e| b.fail(e))
}

pub(super) fn f_from_yaml(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "from_yaml", args, &["data"], false, false)?;
    let data = b.defined("data")?;
    match data.as_str() {
        None => Ok(data.clone()),
        Some(text) => {
            let json = airlock_base::yaml::parse_json(text).map_err(|e| b.fail(e))?;
            Ok(Value::from(Serde(json)))
        }
    }
}

pub(super) fn f_from_yaml_all(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "from_yaml_all", args, &["data"], false, false)?;
    let data = b.defined("data")?;
    if data.is_none() {
        return Ok(list(Vec::new()));
    }
    match data.as_str() {
        None => Ok(data.clone()),
        Some(text) => {
            let docs = airlock_base::yaml::parse_documents(text).map_err(|e| b.fail(e))?;
            Ok(list(docs.iter().map(|d| Value::from(Serde(d.to_json()))).collect()))
        }
    }
}

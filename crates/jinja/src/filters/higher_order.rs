//! Jinja2's `map`, `select`, `reject`, `selectattr` and `rejectattr`, with a missing
//! attribute (or path) undefined rather than an error, calling the filters and tests registered.

use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, State, Value};

use super::{Args, list, plugin_error, type_name, undefined_error};
use crate::pyfmt::py_str;

/// Jinja2's attribute getter: a dotted path (`a.b`, `a.0`); anything missing is undefined.
pub(crate) fn lookup_path(item: &Value, path: &str) -> Value {
    let mut v = item.clone();
    for part in path.split('.') {
        if v.is_undefined() {
            return v;
        }
        let key = match part.parse::<i64>() {
            Ok(n) if part.chars().all(|c| c.is_ascii_digit()) => Value::from(n),
            _ => Value::from(part),
        };
        v = v.get_item(&key).unwrap_or(Value::UNDEFINED);
    }
    v
}

/// Splits the call into the piped value, the positional arguments and the keyword arguments
/// (kept as a kwargs value to pass on).
fn split_call(args: Args) -> (Value, Vec<Value>, Option<Value>) {
    let mut values = args.into_values();
    let kwargs = match values.last() {
        Some(last) if last.is_kwargs() => values.pop(),
        _ => None,
    };
    let mut it = values.into_iter();
    let value = it.next().unwrap_or(Value::UNDEFINED);
    (value, it.collect(), kwargs)
}

fn iter_input(name: &'static str, value: &Value) -> Result<Vec<Value>, Error> {
    if value.is_undefined() {
        return Err(undefined_error(value));
    }
    value.try_iter().map(|it| it.collect()).map_err(|_| plugin_error("filter", name, format!("'{}' object is not iterable", type_name(value))))
}

fn select_impl(state: &mut State, name: &'static str, args: Args, with_attr: bool, invert: bool) -> Result<Value, Error> {
    let (value, mut pos, kwargs) = split_call(args);
    let items_ = iter_input(name, &value)?;
    let attr = if with_attr {
        if pos.is_empty() {
            return Err(plugin_error("filter", name, "missing attribute argument"));
        }
        Some(py_str(&pos.remove(0)))
    } else {
        None
    };
    let test = if pos.is_empty() { None } else { Some(py_str(&pos.remove(0))) };
    let mut out = Vec::new();
    for item in items_ {
        let tv = match &attr {
            Some(a) => lookup_path(&item, a),
            None => item.clone(),
        };
        let passed = match &test {
            None => tv.is_true(),
            Some(t) => {
                let mut targs = Vec::with_capacity(pos.len() + 2);
                targs.push(tv);
                targs.extend(pos.iter().cloned());
                targs.extend(kwargs.iter().cloned());
                state.perform_test(t, &targs).map_err(|e| {
                    if e.kind() == ErrorKind::UnknownTest && e.detail().is_none() { plugin_error("filter", name, format!("No test named '{t}'.")) } else { e }
                })?
            }
        };
        if passed != invert {
            out.push(item);
        }
    }
    Ok(list(out))
}

pub(super) fn f_select(state: &mut State, args: Args) -> Result<Value, Error> {
    select_impl(state, "select", args, false, false)
}

pub(super) fn f_reject(state: &mut State, args: Args) -> Result<Value, Error> {
    select_impl(state, "reject", args, false, true)
}

pub(super) fn f_selectattr(state: &mut State, args: Args) -> Result<Value, Error> {
    select_impl(state, "selectattr", args, true, false)
}

pub(super) fn f_rejectattr(state: &mut State, args: Args) -> Result<Value, Error> {
    select_impl(state, "rejectattr", args, true, true)
}

pub(super) fn f_map(state: &mut State, args: Args) -> Result<Value, Error> {
    let (value, mut pos, kwargs) = split_call(args);
    let items_ = iter_input("map", &value)?;
    let kw = kwargs.as_ref().map(|k| Kwargs::try_from(k.clone())).transpose()?;
    if pos.is_empty() {
        if let Some(kw) = kw.as_ref().filter(|kw| kw.has("attribute")) {
            let attr = py_str(&kw.get::<Value>("attribute")?);
            let default = if kw.has("default") { Some(kw.get::<Value>("default")?) } else { None };
            if let Some(extra) = kw.args().find(|a| *a != "attribute" && *a != "default") {
                return Err(plugin_error("filter", "map", format!("Unexpected keyword argument '{extra}'")));
            }
            let mapped = items_.iter().map(|item| {
                let v = lookup_path(item, &attr);
                match (&default, v.is_undefined()) {
                    (Some(d), true) => d.clone(),
                    _ => v,
                }
            });
            return Ok(list(mapped.collect()));
        }
        return Err(plugin_error("filter", "map", "map requires a filter argument"));
    }
    let filter = py_str(&pos.remove(0));
    let mut out = Vec::with_capacity(items_.len());
    for item in items_ {
        let mut fargs = Vec::with_capacity(pos.len() + 2);
        fargs.push(item);
        fargs.extend(pos.iter().cloned());
        fargs.extend(kwargs.iter().cloned());
        out.push(state.apply_filter(&filter, &fargs).map_err(|e| {
            if e.kind() == ErrorKind::UnknownFilter && e.detail().is_none() { plugin_error("filter", "map", format!("No filter named '{filter}'.")) } else { e }
        })?);
    }
    Ok(list(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::eval;
    use minijinja::context;
    use minijinja::value::Serde;

    #[test]
    fn select_and_map_like_jinja() {
        let users = serde_json::json!([{"name": "a", "x": 1, "n": {"k": 1}}, {"name": "b"}]);
        let ctx = || context! { users => Value::from(Serde(&users)) };
        assert_eq!(eval("users | selectattr('x', 'defined') | map(attribute='name') | list", ctx()), "['a']");
        assert_eq!(eval("users | rejectattr('n.k', 'defined') | map(attribute='name') | list", ctx()), "['b']");
        assert_eq!(eval("users | selectattr('name', 'equalto', 'b') | map(attribute='name') | list", ctx()), "['b']");
        assert_eq!(eval("users | selectattr('name', 'match', '[ab]') | map(attribute='name') | list", ctx()), "['a', 'b']");
        assert_eq!(eval("users | map(attribute='x', default=0) | list", ctx()), "[1, 0]");
        assert_eq!(eval("users | map(attribute='name') | map('upper') | list", ctx()), "['A', 'B']");
        assert_eq!(eval("['1', '2'] | map('int') | select('gt', 1) | list", ctx()), "[2]");
        assert!(eval("[1] | map('attribute', 'x') | list", ctx()).contains("No filter named 'attribute'."));
        assert!(eval("[1] | select('nosuch') | list", ctx()).contains("No test named 'nosuch'."));
    }
}

//! Ansible's filters on minijinja.
//!
//! Filters take their arguments the Python way (positionally or by keyword, see [`bind`]) and
//! coerce non-string inputs with Python's `str()` where Ansible does. Undefined inputs are an
//! error (minijinja names the undefined expression), except for `default`, `mandatory` and
//! `type_debug`. Regular expressions use Python's `re` syntax and matching rules on the regex
//! crate (no look-around or backreferences), compiled once per thread and pattern.
//!
//! minijinja's builtins are kept where they already behave like Jinja2/Ansible (`length`,
//! `count`, `first`, `last`, `list`, `items`, `zip`, `sum`, `abs`, `round`, `groupby`,
//! `dictsort`, `batch`, `slice`, `attr`, `reverse`, `title`, `capitalize`, `indent`, `format`,
//! `urlencode`); the others are replaced or added here. `map`, `select`, `reject`,
//! `selectattr` and `rejectattr` are Jinja2's, with a missing attribute (or path) undefined
//! rather than an error, and they call the Ansible filters and tests registered here.
//!
//! The filters live in one submodule per family (`types`, `strings`, `collections`,
//! `higher_order`, `regex`, `paths`, `formats`, `encoding`, `math`, `random`); this module
//! registers them and holds what they share: argument binding (`bind`, `Bound`), the
//! error wording and the value helpers.

use std::fmt::Display;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::pyfmt::py_str;

mod collections;
mod encoding;
mod formats;
mod higher_order;
mod math;
mod paths;
mod random;
mod regex;
mod strings;
mod types;

pub use self::encoding::{UrlParts, UrlSplitError, hexdigest, shell_quote, unquote_plus, urlsplit, uuid5};
pub use self::math::{HumanSizeError, bytes_to_human, human_to_bytes};
pub use self::paths::{py_abspath, py_basename, py_dirname, py_expanduser, py_expandvars, py_normpath, py_path_join, py_realpath, py_splitext};
pub use self::random::PyRandom;
pub use self::regex::{PyMatch, PyRegex, RE_ANCHORED, RE_I, RE_M, RegexError, compile_py_regex, py_expand, py_re_escape};
pub use self::strings::py_split;
pub use self::types::ansible_bool;

type Args = Rest<ValueOrKwargs>;

/// Adds Ansible's filters to the environment.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("default", types::f_default);
    env.add_filter("d", types::f_default);
    env.add_filter("bool", types::f_bool);
    env.add_filter("int", types::f_int);
    env.add_filter("float", types::f_float);
    env.add_filter("string", types::f_string);
    env.add_filter("lower", strings::f_lower);
    env.add_filter("upper", strings::f_upper);
    env.add_filter("replace", strings::f_replace);
    env.add_filter("trim", strings::f_trim);
    env.add_filter("join", strings::f_join);
    env.add_filter("split", strings::f_split);
    env.add_filter("sort", collections::f_sort);
    env.add_filter("unique", collections::f_unique);
    env.add_filter("min", collections::f_min);
    env.add_filter("max", collections::f_max);
    env.add_filter("map", higher_order::f_map);
    env.add_filter("select", higher_order::f_select);
    env.add_filter("reject", higher_order::f_reject);
    env.add_filter("selectattr", higher_order::f_selectattr);
    env.add_filter("rejectattr", higher_order::f_rejectattr);
    env.add_filter("regex_replace", regex::f_regex_replace);
    env.add_filter("regex_search", regex::f_regex_search);
    env.add_filter("regex_findall", regex::f_regex_findall);
    env.add_filter("regex_escape", regex::f_regex_escape);
    env.add_filter("basename", paths::f_basename);
    env.add_filter("dirname", paths::f_dirname);
    env.add_filter("expanduser", paths::f_expanduser);
    env.add_filter("expandvars", paths::f_expandvars);
    env.add_filter("realpath", paths::f_realpath);
    env.add_filter("relpath", paths::f_relpath);
    env.add_filter("normpath", paths::f_normpath);
    env.add_filter("splitext", paths::f_splitext);
    env.add_filter("path_join", paths::f_path_join);
    env.add_filter("commonpath", paths::f_commonpath);
    env.add_filter("fileglob", paths::f_fileglob);
    env.add_filter("to_json", formats::f_to_json);
    env.add_filter("to_nice_json", formats::f_to_nice_json);
    env.add_filter("from_json", formats::f_from_json);
    env.add_filter("to_yaml", formats::f_to_yaml);
    env.add_filter("to_nice_yaml", formats::f_to_nice_yaml);
    env.add_filter("from_yaml", formats::f_from_yaml);
    env.add_filter("from_yaml_all", formats::f_from_yaml_all);
    env.add_filter("combine", collections::f_combine);
    env.add_filter("dict2items", collections::f_dict2items);
    env.add_filter("items2dict", collections::f_items2dict);
    env.add_filter("union", collections::f_union);
    env.add_filter("intersect", collections::f_intersect);
    env.add_filter("difference", collections::f_difference);
    env.add_filter("symmetric_difference", collections::f_symmetric_difference);
    env.add_filter("flatten", collections::f_flatten);
    env.add_filter("zip_longest", collections::f_zip_longest);
    env.add_filter("product", collections::f_product);
    env.add_filter("permutations", collections::f_permutations);
    env.add_filter("combinations", collections::f_combinations);
    env.add_filter("subelements", collections::f_subelements);
    env.add_filter("extract", collections::f_extract);
    env.add_filter("ternary", types::f_ternary);
    env.add_filter("mandatory", types::f_mandatory);
    env.add_filter("b64encode", encoding::f_b64encode);
    env.add_filter("b64decode", encoding::f_b64decode);
    env.add_filter("hash", encoding::f_hash);
    env.add_filter("checksum", encoding::f_sha1);
    env.add_filter("sha1", encoding::f_sha1);
    env.add_filter("md5", encoding::f_md5);
    env.add_filter("to_uuid", encoding::f_to_uuid);
    env.add_filter("quote", encoding::f_quote);
    env.add_filter("urlsplit", encoding::f_urlsplit);
    env.add_filter("urldecode", encoding::f_urldecode);
    env.add_filter("human_readable", math::f_human_readable);
    env.add_filter("human_to_bytes", math::f_human_to_bytes);
    env.add_filter("type_debug", types::f_type_debug);
    env.add_filter("version_compare", math::f_version_compare);
    env.add_filter("log", math::f_log);
    env.add_filter("pow", math::f_pow);
    env.add_filter("root", math::f_root);
    env.add_filter("random", random::f_random);
    env.add_filter("shuffle", random::f_shuffle);
}

// =============================================================================================
// Argument binding and errors
// =============================================================================================

/// Arguments bound to a plugin's parameters the way Python binds a call.
pub(crate) struct Bound {
    plugin: &'static str,
    name: &'static str,
    params: &'static [&'static str],
    vals: Vec<Option<Value>>,
    /// Positional arguments beyond the parameters (`*args`).
    pub(crate) rest: Vec<Value>,
    /// Keyword arguments not named by a parameter (`**kwargs`).
    pub(crate) kwargs: Vec<(String, Value)>,
}

/// Binds the arguments of a filter (`kind` "filter") or test (`kind` "test") call to the
/// parameter names, like Python: positional first, then keywords. Extra positional arguments
/// are an error unless `varargs`, unknown keywords unless `varkw`.
pub(crate) fn bind(kind: &'static str, name: &'static str, args: Args, params: &'static [&'static str], varargs: bool, varkw: bool) -> Result<Bound, Error> {
    let mut values = args.into_values();
    let kwargs = match values.last() {
        Some(last) if last.is_kwargs() => Some(Kwargs::try_from(values.pop().unwrap())?),
        _ => None,
    };
    let mut b = Bound { plugin: kind, name, params, vals: vec![None; params.len()], rest: Vec::new(), kwargs: Vec::new() };
    for (i, v) in values.into_iter().enumerate() {
        if i < params.len() {
            b.vals[i] = Some(v);
        } else if varargs {
            b.rest.push(v);
        } else {
            return Err(b.fail(format!("takes at most {} positional argument{} but more were given", params.len(), if params.len() == 1 { "" } else { "s" })));
        }
    }
    if let Some(kwargs) = kwargs {
        let names: Vec<String> = kwargs.args().map(|s| s.to_string()).collect();
        for k in names {
            let v: Value = kwargs.get(&k)?;
            match params.iter().position(|p| *p == k) {
                Some(i) if b.vals[i].is_some() => {
                    return Err(b.fail(format!("got multiple values for argument '{k}'")));
                }
                Some(i) => b.vals[i] = Some(v),
                None if varkw => b.kwargs.push((k, v)),
                None => return Err(b.fail(format!("got an unexpected keyword argument '{k}'"))),
            }
        }
    }
    Ok(b)
}

impl Bound {
    /// An error from this plugin, worded like Ansible's.
    pub(crate) fn fail(&self, msg: impl Display) -> Error {
        plugin_error(self.plugin, self.name, msg)
    }

    fn idx(&self, param: &str) -> usize {
        self.params.iter().position(|p| *p == param).expect("unknown parameter name")
    }

    /// The argument for `param`, if given.
    pub(crate) fn opt(&self, param: &str) -> Option<&Value> {
        self.vals[self.idx(param)].as_ref()
    }

    /// The argument for `param`, or an error naming it.
    pub(crate) fn req(&self, param: &str) -> Result<&Value, Error> {
        self.opt(param).ok_or_else(|| self.fail(format!("missing required argument '{param}'")))
    }

    /// The argument for `param`, which must be defined.
    pub(crate) fn defined(&self, param: &str) -> Result<&Value, Error> {
        let v = self.req(param)?;
        if v.is_undefined() { Err(undefined_error(v)) } else { Ok(v) }
    }

    /// The argument as a string (Python's `str()` of non-strings), or `default`.
    pub(crate) fn text(&self, param: &str, default: &str) -> Result<String, Error> {
        match self.opt(param) {
            None => Ok(default.to_string()),
            Some(v) if v.is_undefined() => Err(undefined_error(v)),
            Some(v) => Ok(py_str(v)),
        }
    }

    /// The argument's Python truthiness, or `default`.
    pub(crate) fn truthy(&self, param: &str, default: bool) -> Result<bool, Error> {
        match self.opt(param) {
            None => Ok(default),
            Some(v) if v.is_undefined() => Err(undefined_error(v)),
            Some(v) => Ok(v.is_true()),
        }
    }

    /// The argument as an integer (`None` when absent or `None`).
    pub(crate) fn int(&self, param: &str) -> Result<Option<i64>, Error> {
        match self.opt(param) {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => as_int(v).map(Some).ok_or_else(|| self.fail(format!("'{param}' must be an integer, not {}", type_name(v)))),
        }
    }
}

/// An error from a filter or test, worded like Ansible's:
/// "The filter plugin 'ansible.builtin.NAME' failed: MSG".
pub(crate) fn plugin_error(kind: &str, name: &str, msg: impl Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("The {kind} plugin 'ansible.builtin.{name}' failed: {msg}"))
}

/// The error for using an undefined value; minijinja names the undefined expression in it.
pub(crate) fn undefined_error(v: &Value) -> Error {
    match v.get_attr("__undefined__") {
        Err(e) => e,
        Ok(_) => Error::from(ErrorKind::UndefinedError),
    }
}

/// Python's type name of a value, as Ansible's `type_debug` gives it.
pub fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number => {
            if v.is_integer() {
                "int"
            } else {
                "float"
            }
        }
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::Iterable => "generator",
        _ => "object",
    }
}

/// An integer value (booleans count as 0/1, as in Python).
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true() as i64),
        ValueKind::Number if v.is_integer() => i64::try_from(v.clone()).ok(),
        _ => None,
    }
}

/// An integer argument of a keyword-style option (`name` in the error), from [`as_int`].
fn b_int(b: &Bound, v: &Value, name: &str) -> Result<i64, Error> {
    as_int(v).ok_or_else(|| b.fail(format!("'{name}' must be an integer")))
}

fn as_f64(v: &Value) -> Option<f64> {
    match v.kind() {
        ValueKind::Bool => Some(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(v.clone()).ok(),
        _ => None,
    }
}

fn int_value(i: i128) -> Value {
    match i64::try_from(i) {
        Ok(i) => Value::from(i),
        Err(_) => Value::from(i),
    }
}

fn items(v: &Value) -> Vec<Value> {
    match v.try_iter() {
        Ok(it) => it.collect(),
        Err(_) => Vec::new(),
    }
}

fn is_list(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
}

fn list(items: Vec<Value>) -> Value {
    Value::from(items)
}

#[cfg(test)]
mod tests {
    use super::encoding::parse_uuid;
    use super::*;
    use crate::pyfmt;
    use minijinja::context;
    use minijinja::value::Serde;

    pub(super) fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_debug(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        register(&mut env);
        crate::is_tests::register(&mut env);
        env
    }

    /// Evaluates an expression; strings as they are, other values in Python's repr, errors as
    /// `ERROR: ...`.
    pub(super) fn eval_with(env: &Environment<'static>, expr: &str, vars: Value) -> String {
        match env.compile_expression(expr).and_then(|e| e.eval(vars)) {
            Ok(v) => match v.as_str() {
                Some(s) => s.to_string(),
                None => pyfmt::py_repr(&v),
            },
            Err(e) => format!("ERROR: {e}"),
        }
    }

    pub(super) fn eval(expr: &str, vars: Value) -> String {
        eval_with(&env(), expr, vars)
    }
    /// Expressions evaluated by ansible-core 2.19 (`Templar.template('{{ expr }}')`), with
    /// the result or the error message Ansible gave.
    #[test]
    fn matches_ansible_on_recorded_expressions() {
        let env = env();
        let data = include_str!("../testdata/ansible_exprs.jsonl");
        let mut n = 0;
        for line in data.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let expr = case["expr"].as_str().unwrap();
            let vars = Value::from(Serde(case.get("vars").cloned().unwrap_or(serde_json::json!({}))));
            let got = eval_with(&env, expr, vars);
            if let Some(err) = case.get("error").and_then(|e| e.as_str()) {
                assert!(got.starts_with("ERROR"), "{expr}: expected an error, got {got}");
                assert!(got.contains(err), "{expr}: expected error {err:?}, got {got:?}");
            } else {
                assert_eq!(got, case["out"].as_str().unwrap(), "{expr}");
            }
            n += 1;
        }
        assert!(n > 500);
    }

    #[test]
    fn undefined_input_names_the_variable() {
        let err = eval("nope | lower", context! {});
        assert!(err.contains("`nope` is undefined"), "{err}");
        let err = eval("nope | regex_replace('a', 'b')", context! {});
        assert!(err.contains("`nope` is undefined"), "{err}");
        let err = eval("nope is match('a')", context! {});
        assert!(err.contains("`nope` is undefined"), "{err}");
    }

    #[test]
    fn intentional_differences() {
        // Ansible returns these in Python set order; we keep the order of first appearance.
        assert_eq!(eval("['c', 'b', 'a'] | union(['d', 'a'])", context! {}), "['c', 'b', 'a', 'd']");
        assert_eq!(eval("[3, 2, 1] | intersect([1, 2])", context! {}), "[2, 1]");
        // `version_compare` is also a filter here (only a test in Ansible).
        assert_eq!(eval("'1.2.3' | version_compare('1.2.10', '<')", context! {}), "True");
    }

    #[test]
    fn helpers() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a@b%c+d=e:f,g./h-i_j"), "a@b%c+d=e:f,g./h-i_j");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(py_split("  a  b  c  ", None, 1), vec!["a", "b  c  "]);
        assert_eq!(py_split("a,b,,c", Some(","), -1), vec!["a", "b", "", "c"]);
        assert_eq!(bytes_to_human(1500000.0, false, None), "1.43 MB");
        assert_eq!(human_to_bytes("1.5 MB", None, false), Ok(1572864));
        assert_eq!(human_to_bytes("x", None, false).unwrap_err().to_string(), "human_to_bytes() can't interpret following string: x");
        assert_eq!(
            human_to_bytes("1 Q", None, false).unwrap_err().to_string(),
            "human_to_bytes() failed to convert 1 Q (unit = Q). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
        );
        assert_eq!(human_to_bytes("1 Mb", None, false), Err(HumanSizeError::Unit { input: "1 Mb".into(), expect: "expect MB or M".into() }));
        assert_eq!(
            human_to_bytes("1 Mb", None, false).unwrap_err().to_string(),
            "human_to_bytes() failed to convert 1 Mb. Value is not a valid string (expect MB or M)"
        );
        assert_eq!(urlsplit("http://[::1/").unwrap_err().to_string(), "Invalid IPv6 URL");
        assert_eq!(urlsplit("http://h:8x/").unwrap_err().to_string(), "Port could not be cast to integer value as '8x'");
        assert_eq!(urlsplit("http://h:65536/"), Err(UrlSplitError::PortOutOfRange { url: "http://h:65536/".into(), port: "65536".into() }));
        assert_eq!(urlsplit("http://h:65536/").unwrap_err().to_string(), "Port out of range 0-65535");
        assert_eq!(unquote_plus("a%20b+c%2Fd%zz"), "a b c/d%zz");
        assert_eq!(uuid5(&parse_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap(), "www.example.com"), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
        let u = urlsplit("https://u:p@[::1]:8443/a?q#f").unwrap();
        assert_eq!((u.hostname.as_deref(), u.port, u.username.as_deref()), (Some("::1"), Some(8443), Some("u")));
        assert_eq!(hexdigest("sha256", b"hello").unwrap(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    }
}

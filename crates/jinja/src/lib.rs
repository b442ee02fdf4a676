//! airlock-jinja: templating as Ansible does it. A minijinja environment with Ansible's filters, tests and lookups, and
//! rendering with Ansible's rules (native types for a lone `{{ expr }}`, Python-style output,
//! variables templated lazily when they are used).
//!
//! Depends on airlock-base only; the runner hands it variables, never the other way round.

pub mod filters;
pub mod is_tests;

pub use airlock_base::pyfmt;
pub use airlock_base::pyfmt::to_value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use serde_json::Value as Json;

/// The value `{{ omit }}` gives; a module argument equal to it is dropped.
pub const OMIT: &str = "__omit_place_holder__a1rl0ck";

/// How deep variables may refer to variables before we call it a loop.
const MAX_DEPTH: usize = 64;

/// A template failure, worded for the user (names the undefined variable where known).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct TemplateError {
    pub msg: String,
}

impl TemplateError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self { msg: msg.into() }
    }
}

/// Ansible's `bool` conversion for module arguments: yes/on/true/1 and no/off/false/0 (any case),
/// booleans, and the numbers 1 and 0. Anything else is not a boolean.
pub fn to_bool_strict(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "1" | "y" | "t" => Some(true),
            "no" | "off" | "false" | "0" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a string holds template syntax and so must be rendered.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Whether any string inside a value holds template syntax.
pub fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(m) => m.iter().any(|(k, v)| is_template(k) || has_template(v)),
        _ => false,
    }
}

/// If `s` is exactly one `{{ expression }}`, the expression.
pub fn lone_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#") {
        return None;
    }
    Some(inner.trim())
}

/// How many `\n` a string ends with.
fn trailing_newlines(s: &str) -> usize {
    s.len() - s.trim_end_matches('\n').len()
}

/// Converts a template value back to JSON data; undefined parts become null.
pub fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// The template engine with Ansible's filters, tests, lookups and output rules.
pub struct Templar {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templar")
    }
}

impl Templar {
    /// Builds the environment once per run.
    pub fn new() -> Arc<Templar> {
        let mut env = Environment::new();
        // Chained lookups on undefined values stay undefined (`a.b is defined` works when `a`
        // is missing, as in Ansible); printing an undefined value fails in the formatter.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Ansible's Jinja settings: trim_blocks on, keep_trailing_newline off (Jinja drops a
        // template's last newline); render_str puts back what the source ended with, as
        // Ansible's templar does.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).keep_trailing_newline(false).build() {
            env.set_syntax(syntax);
        }
        env.set_debug(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() {
                return Err(Error::new(ErrorKind::UndefinedError, "an undefined value was printed"));
            }
            if let Some(s) = value.as_str() { out.write_str(s).map_err(Error::from) } else { out.write_str(&pyfmt::render_str(value)).map_err(Error::from) }
        });
        filters::register(&mut env);
        is_tests::register(&mut env);
        env.add_function("lookup", lookup);
        env.add_function("query", query);
        env.add_function("q", query);
        Arc::new(Templar { env })
    }

    /// Renders a template string to text.
    pub fn render_str(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        let fixed = literal_backslashes(src, false);
        let fixed = else_for_inline_if(&fixed);
        let tmpl = self.env.template_from_str(&fixed).map_err(|e| describe(e, src, ctx))?;
        let mut out = tmpl.render(ctx).map_err(|e| describe(e, src, ctx))?;
        // Ansible's templar: the output ends with at least as many newlines as the source, so
        // `{{ x | to_nice_yaml }}` on the last line (whose output ends with a newline of its
        // own) gives no blank line, while `text\n` keeps its newline.
        let missing = trailing_newlines(src).saturating_sub(trailing_newlines(&out));
        out.extend(std::iter::repeat_n('\n', missing));
        Ok(out)
    }

    /// Evaluates a bare expression as `{{ expr }}` would, giving the template value.
    pub fn eval_expr(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        self.eval(&literal_backslashes(expr, true), expr, ctx)
    }

    fn eval(&self, code: &str, shown: &str, ctx: &Value) -> Result<Value, TemplateError> {
        let compiled = self.env.compile_expression(code).map_err(|e| describe(e, shown, ctx))?;
        compiled.eval(ctx).map_err(|e| describe(e, shown, ctx))
    }

    /// Templates one string: a lone `{{ expr }}` keeps its native type, anything else renders
    /// to a string.
    pub fn template_str(&self, s: &str, ctx: &Value) -> Result<Value, TemplateError> {
        if let Some(expr) = lone_expression(s) {
            let v = self.eval_expr(expr, ctx)?;
            if v.is_undefined() {
                return Err(undefined_error(expr, ctx));
            }
            if let Some(s) = v.as_str() {
                // A string result that itself holds a template is left as it is (Ansible 2.19
                // does not re-template results).
                return Ok(Value::from(s));
            }
            return Ok(v);
        }
        Ok(Value::from(self.render_str(s, ctx)?))
    }

    /// Templates every string in a data structure (keys too).
    pub fn template_json(&self, v: &Json, ctx: &Value) -> Result<Json, TemplateError> {
        Ok(match v {
            Json::String(s) if is_template(s) => to_json(&self.template_str(s, ctx)?),
            Json::Array(a) => Json::Array(a.iter().map(|x| self.template_json(x, ctx)).collect::<Result<_, _>>()?),
            Json::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, x) in m {
                    let k = if is_template(k) { self.render_str(k, ctx)? } else { k.clone() };
                    out.insert(k, self.template_json(x, ctx)?);
                }
                Json::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Like `template_json`, but gives a template value (used by lazy variable lookup).
    fn template_to_value(&self, v: &Json, ctx: &Value) -> Result<Value, TemplateError> {
        if !has_template(v) {
            return Ok(to_value(v));
        }
        Ok(match v {
            Json::String(s) => self.template_str(s, ctx)?,
            other => to_value(&self.template_json(other, ctx)?),
        })
    }

    /// Evaluates a conditional as Ansible 2.19 does: a boolean, or an expression (with or
    /// without `{{ }}`) whose result must be a boolean.
    pub fn eval_cond(&self, cond: &Json, ctx: &Value) -> Result<bool, TemplateError> {
        match cond {
            Json::Bool(b) => Ok(*b),
            Json::Null => Err(TemplateError::new("Conditional is empty (null); conditionals must give a boolean")),
            Json::String(s) => {
                let expr = lone_expression(s.trim()).unwrap_or(s.trim());
                // Conditionals read escapes in string literals as Python does (there 'a\nb'
                // has 3 characters), unlike `{{ }}` elsewhere.
                let v = self.eval(expr, expr, ctx)?;
                if v.is_undefined() {
                    return Err(undefined_error(expr, ctx));
                }
                match v.kind() {
                    minijinja::value::ValueKind::Bool => Ok(v.is_true()),
                    _ => Err(TemplateError::new(format!(
                        "Conditional result ({}) was derived from value of type '{}' in '{}'. Conditionals must have a boolean result.",
                        pyfmt::py_str(&v),
                        py_type(&v),
                        s
                    ))),
                }
            }
            other => Err(TemplateError::new(format!(
                "Conditional result ({other}) was of type '{}'. Conditionals must have a boolean result.",
                airlock_base::pyfmt::json_type_name(other)
            ))),
        }
    }
}

/// Ansible 2.19 reads string literals inside `{{ }}` and `{% %}` without processing escapes:
/// `'a\nb'` is four characters there and `'\1'` stays a back-reference for `regex_replace`.
/// minijinja would process them, so every backslash inside a string literal is doubled.
fn literal_backslashes(src: &str, whole_is_expr: bool) -> std::borrow::Cow<'_, str> {
    if !src.contains('\\') {
        return std::borrow::Cow::Borrowed(src);
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 8);
    let mut in_code = whole_is_expr;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !in_code {
            if c == b'{' && matches!(b.get(i + 1), Some(b'{') | Some(b'%')) {
                in_code = true;
                out.push_str(&src[i..i + 2]);
                i += 2;
                continue;
            }
        } else if let Some(q) = quote {
            if c == b'\\' && b.get(i + 1) == Some(&q) {
                // An escaped quote stays an escaped quote.
                out.push_str(&src[i..i + 2]);
                i += 2;
                continue;
            } else if c == b'\\' {
                out.push_str("\\\\");
                i += 1;
                continue;
            } else if c == q {
                quote = None;
            }
        } else if c == b'\'' || c == b'"' {
            quote = Some(c);
        } else if !whole_is_expr && (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') {
            in_code = false;
            out.push_str(&src[i..i + 2]);
            i += 2;
            continue;
        }
        let len = src[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        out.push_str(&src[i..i + len]);
        i += len;
    }
    std::borrow::Cow::Owned(out)
}

/// Gives every `{{ x if cond }}` printed in a template an `else ''`: Jinja2 (and so Ansible)
/// prints an inline `if` without `else` whose condition is false as nothing, where minijinja
/// would print an undefined value. Only the top level of each `{{ }}` is looked at, outside
/// strings and brackets.
fn else_for_inline_if(src: &str) -> std::borrow::Cow<'_, str> {
    if !src.contains(" if ") {
        return std::borrow::Cow::Borrowed(src);
    }
    let b = src.as_bytes();
    let mut inserts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if !(b[i] == b'{' && b[i + 1] == b'{') {
            i += 1;
            continue;
        }
        i += 2;
        let (mut depth, mut quote, mut ifs, mut elses) = (0i32, None::<u8>, 0, 0);
        while i < b.len() {
            let c = b[i];
            if let Some(q) = quote {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            } else if c == b'\'' || c == b'"' {
                quote = Some(c);
            } else if matches!(c, b'(' | b'[' | b'{') {
                depth += 1;
            } else if matches!(c, b')' | b']') || (c == b'}' && depth > 0) {
                depth -= 1;
            } else if c == b'}' && b.get(i + 1) == Some(&b'}') {
                if ifs > elses {
                    let end = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
                    inserts.push(end);
                }
                i += 2;
                break;
            } else if depth == 0 && c.is_ascii_alphabetic() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.')) {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                match &src[start..i] {
                    "if" => ifs += 1,
                    "else" => elses += 1,
                    _ => {}
                }
                continue;
            }
            i += 1;
        }
    }
    if inserts.is_empty() {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + inserts.len() * 9);
    let mut last = 0;
    for at in inserts {
        out.push_str(&src[last..at]);
        out.push_str(" else '' ");
        last = at;
    }
    out.push_str(&src[last..]);
    std::borrow::Cow::Owned(out)
}

/// Python's name for a value's type, for messages.
pub(crate) fn py_type(v: &Value) -> &'static str {
    use minijinja::value::ValueKind as K;
    match v.kind() {
        K::Undefined => "AnsibleUndefined",
        K::None => "NoneType",
        K::Bool => "bool",
        K::Number => {
            if v.is_integer() {
                "int"
            } else {
                "float"
            }
        }
        K::String => "str",
        K::Seq => "list",
        K::Map => "dict",
        _ => "object",
    }
}

/// Words a minijinja error for the user: the undefined variable's name when we know it.
fn describe(e: Error, src: &str, ctx: &Value) -> TemplateError {
    if e.kind() == ErrorKind::UndefinedError {
        if let Some(detail) = e.detail().filter(|d| d.contains("is undefined")) {
            return TemplateError::new(format!("{}. In template: {src}", detail.replace('`', "'")));
        }
        return undefined_error(src, ctx);
    }
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", kind_words(e.kind())),
        None => kind_words(e.kind()).to_string(),
    };
    if let Some(src_err) = std::error::Error::source(&e) {
        msg.push_str(&format!(" ({src_err})"));
    }
    TemplateError::new(format!("template error while templating string: {msg}. String: {src}"))
}

fn kind_words(k: ErrorKind) -> String {
    let s = format!("{k}");
    s
}

/// An error for an undefined result, naming the variable the lookup missed where known.
fn undefined_error(src: &str, ctx: &Value) -> TemplateError {
    let missed = ctx.downcast_object_ref::<Vars>().and_then(|v| v.last_miss());
    match missed {
        Some(name) => TemplateError::new(format!("'{name}' is undefined. In template: {src}")),
        None => TemplateError::new(format!("an undefined value was used in: {src}")),
    }
}

/// The variables a template sees: layers of raw data, highest precedence first, templated
/// lazily when a name is read, and cached for the life of this object (one task).
pub struct Vars {
    templar: Arc<Templar>,
    layers: Vec<Arc<serde_json::Map<String, Json>>>,
    cache: Mutex<HashMap<String, Value>>,
    misses: Mutex<Vec<String>>,
    depth: AtomicUsize,
    extra: Mutex<HashMap<String, Value>>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("vars")
    }
}

impl Vars {
    /// Makes a template context from layers given highest precedence first.
    pub fn new(templar: Arc<Templar>, layers: Vec<Arc<serde_json::Map<String, Json>>>) -> Arc<Vars> {
        Arc::new(Vars {
            templar,
            layers,
            cache: Mutex::new(HashMap::new()),
            misses: Mutex::new(Vec::new()),
            depth: AtomicUsize::new(0),
            extra: Mutex::new(HashMap::new()),
        })
    }

    /// Sets a ready template value that wins over every layer (`hostvars`, `vars`).
    pub fn set_value(&self, name: &str, v: Value) {
        self.extra.lock().unwrap().insert(name.to_string(), v);
    }

    /// The layers of raw data, highest precedence first.
    pub fn layers(&self) -> &[Arc<serde_json::Map<String, Json>>] {
        &self.layers
    }

    /// The raw (untemplated) data of a variable.
    pub fn raw(&self, name: &str) -> Option<&Json> {
        self.layers.iter().find_map(|l| l.get(name))
    }

    /// Every variable name visible, highest layer first, without duplicates.
    pub fn names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for l in &self.layers {
            for k in l.keys() {
                if seen.insert(k.as_str()) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    fn last_miss(&self) -> Option<String> {
        self.misses.lock().unwrap().last().cloned()
    }

    /// Resolves a variable to its templated value.
    pub fn resolve(self: &Arc<Self>, name: &str) -> Option<Value> {
        if let Some(v) = self.extra.lock().unwrap().get(name) {
            return Some(v.clone());
        }
        if let Some(v) = self.cache.lock().unwrap().get(name) {
            return Some(v.clone());
        }
        let Some(raw) = self.raw(name) else {
            if name == "vars" {
                return Some(Value::from_dyn_object(self.clone()));
            }
            self.misses.lock().unwrap().push(name.to_string());
            return None;
        };
        if self.depth.fetch_add(1, Ordering::SeqCst) > MAX_DEPTH {
            self.depth.fetch_sub(1, Ordering::SeqCst);
            return Some(Value::from(Error::new(ErrorKind::InvalidOperation, format!("recursive loop detected in template for variable '{name}'"))));
        }
        let ctx = Value::from_dyn_object(self.clone());
        let v = match self.templar.template_to_value(raw, &ctx) {
            Ok(v) => v,
            Err(e) => Value::from(Error::new(ErrorKind::InvalidOperation, format!("while templating '{name}': {}", e.msg))),
        };
        self.depth.fetch_sub(1, Ordering::SeqCst);
        self.cache.lock().unwrap().insert(name.to_string(), v.clone());
        Some(v)
    }

    /// The context value to render templates with.
    pub fn ctx(self: &Arc<Self>) -> Value {
        Value::from_dyn_object(self.clone())
    }
}

impl Object for Vars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.resolve(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names().into_iter().map(Value::from).collect())
    }
}

/// Search paths for the `file` lookup: the role's `files/`, the role, then the playbook's
/// `files/` and the playbook directory.
fn lookup_paths(state: &State) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for var in ["role_path", "playbook_dir"] {
        if let Some(p) = state.lookup(var).and_then(|v| v.as_str().map(PathBuf::from)) {
            out.push(p.join("files"));
            out.push(p);
        }
    }
    out
}

fn run_lookup(state: &State, name: &str, terms: &[Value], kwargs: &minijinja::value::Kwargs) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let terms: Vec<String> = terms
        .iter()
        .flat_map(|t| if let Ok(it) = t.try_iter() { if t.as_str().is_none() { it.collect::<Vec<_>>() } else { vec![t.clone()] } } else { vec![t.clone()] })
        .map(|t| t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string()))
        .collect();
    match name {
        "env" | "ansible.builtin.env" => {
            let default: Option<Value> = kwargs.get("default")?;
            for t in &terms {
                match std::env::var(t) {
                    Ok(v) => out.push(Value::from(v)),
                    Err(_) => out.push(default.clone().unwrap_or_else(|| Value::from(""))),
                }
            }
        }
        "file" | "ansible.builtin.file" => {
            let rstrip: Option<bool> = kwargs.get("rstrip")?;
            let lstrip: Option<bool> = kwargs.get("lstrip")?;
            let paths = lookup_paths(state);
            for t in &terms {
                let p = Path::new(t);
                let found = if p.is_absolute() { p.exists().then(|| p.to_path_buf()) } else { paths.iter().map(|d| d.join(t)).find(|c| c.exists()) };
                let Some(found) = found else {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "The 'file' lookup could not find '{t}' (searched {})",
                            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                let mut text =
                    std::fs::read_to_string(&found).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("could not read {}: {e}", found.display())))?;
                if rstrip.unwrap_or(true) {
                    text = text.trim_end().to_string();
                }
                if lstrip.unwrap_or(false) {
                    text = text.trim_start().to_string();
                }
                out.push(Value::from(text));
            }
        }
        "vars" | "ansible.builtin.vars" => {
            let default: Option<Value> = kwargs.get("default")?;
            for t in &terms {
                match state.lookup(t).filter(|v| !v.is_undefined()) {
                    Some(v) => out.push(v),
                    None => match &default {
                        Some(d) => out.push(d.clone()),
                        None => return Err(Error::new(ErrorKind::UndefinedError, format!("No variable found with this name: {t}"))),
                    },
                }
            }
        }
        "items" | "list" | "ansible.builtin.items" | "ansible.builtin.list" => {
            out.extend(terms.into_iter().map(Value::from));
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("lookup plugin '{other}' is not supported by airlock (supported: env, file, vars, items, list)"),
            ));
        }
    }
    kwargs.assert_all_used().ok();
    Ok(out)
}

/// `lookup(name, terms...)`: one result gives that value, several give a comma-joined string
/// (as Ansible does without `wantlist=True`).
fn lookup(state: &State, name: String, terms: minijinja::value::Rest<Value>, kwargs: minijinja::value::Kwargs) -> Result<Value, Error> {
    let wantlist: Option<bool> = kwargs.get("wantlist")?;
    let out = run_lookup(state, &name, &terms, &kwargs)?;
    if wantlist.unwrap_or(false) {
        return Ok(Value::from(out));
    }
    Ok(match out.len() {
        1 => out.into_iter().next().unwrap(),
        _ => Value::from(out.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect::<Vec<_>>().join(",")),
    })
}

/// `query(name, terms...)`: always a list.
fn query(state: &State, name: String, terms: minijinja::value::Rest<Value>, kwargs: minijinja::value::Kwargs) -> Result<Value, Error> {
    let _: Option<bool> = kwargs.get("wantlist")?;
    Ok(Value::from(run_lookup(state, &name, &terms, &kwargs)?))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    fn vars(t: &Arc<Templar>, v: Json) -> Arc<Vars> {
        let Json::Object(m) = v else { panic!() };
        Vars::new(t.clone(), vec![Arc::new(m)])
    }

    #[test]
    fn lone_expression_keeps_native_type() {
        let t = Templar::new();
        let v = vars(&t, json!({"xs": [1, 2], "n": "{{ xs | length }}"}));
        assert_eq!(to_json(&t.template_str("{{ xs }}", &v.ctx()).unwrap()), json!([1, 2]));
        assert_eq!(to_json(&t.template_str("{{ n }}", &v.ctx()).unwrap()), json!(2));
        // Ansible 2.19 prints None as nothing inside a larger string.
        assert_eq!(t.render_str("n={{ n }} {{ true }} {{ none }}", &v.ctx()).unwrap(), "n=2 True ");
    }

    #[test]
    fn lazy_and_recursive_variables() {
        let t = Templar::new();
        let v = vars(&t, json!({"a": "{{ b }}-x", "b": "{{ c }}", "c": "deep", "loop": "{{ loop }}"}));
        assert_eq!(t.render_str("{{ a }}", &v.ctx()).unwrap(), "deep-x");
        let err = t.render_str("{{ loop }}", &v.ctx()).unwrap_err();
        assert!(err.msg.contains("recursive loop"), "{}", err.msg);
    }

    #[test]
    fn undefined_names_the_variable() {
        let t = Templar::new();
        let v = vars(&t, json!({"a": 1}));
        let err = t.render_str("x {{ missing_var }}", &v.ctx()).unwrap_err();
        assert!(err.msg.contains("missing_var"), "{}", err.msg);
        let err = t.template_str("{{ other_missing }}", &v.ctx()).unwrap_err();
        assert!(err.msg.contains("other_missing"), "{}", err.msg);
        assert!(t.eval_cond(&json!("missing is defined"), &v.ctx()).map(|b| !b).unwrap());
        assert!(t.eval_cond(&json!("missing.attr is undefined"), &v.ctx()).unwrap());
    }

    #[test]
    fn conditionals_must_be_boolean() {
        let t = Templar::new();
        let v = vars(&t, json!({"s": "text", "n": 3}));
        assert!(t.eval_cond(&json!("n > 2"), &v.ctx()).unwrap());
        assert!(t.eval_cond(&json!("{{ n == 3 }}"), &v.ctx()).unwrap());
        let err = t.eval_cond(&json!("s"), &v.ctx()).unwrap_err();
        assert!(err.msg.contains("boolean"), "{}", err.msg);
    }

    #[test]
    fn python_methods_and_lookups() {
        let t = Templar::new();
        unsafe { std::env::set_var("AIRLOCK_TEST_ENV", "val") };
        let v = vars(&t, json!({"s": "a,b", "d": {"k": 1}}));
        assert_eq!(t.render_str("{{ s.split(',') | length }} {{ s.startswith('a') }} {{ d.get('k') }} {{ d.get('z', 5) }}", &v.ctx()).unwrap(), "2 True 1 5");
        assert_eq!(t.render_str("{{ lookup('env', 'AIRLOCK_TEST_ENV') }}", &v.ctx()).unwrap(), "val");
        // Back-references stay as written inside string literals, as in Ansible.
        assert_eq!(t.render_str(r"{{ 'ab' | regex_replace('(a)(b)', '\2\1') }} \1", &v.ctx()).unwrap(), r"ba \1");
        assert_eq!(t.render_str(r"{{ '\2' | length }} {{ 'a\nb' | length }}", &v.ctx()).unwrap(), "2 4");
        assert!(t.eval_cond(&serde_json::json!(r"'a\nb' | length == 3"), &v.ctx()).unwrap());
        assert_eq!(t.render_str(r"{{ 'it\'s' }}", &v.ctx()).unwrap(), "it's");
    }
}

//! The list and dict filters: `sort`, `unique`, `min`, `max`, `combine`, `dict2items`,
//! `items2dict`, the set operations, `flatten`, `zip_longest`, `product`, `permutations`,
//! `combinations`, `subelements` and `extract`.

use indexmap::IndexMap;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, State, Value};

use super::{Args, Bound, b_int, bind, is_list, items, list, type_name, undefined_error};
use crate::pyfmt::{self, py_str};

/// Passes Jinja2's positional parameters on to a minijinja builtin that takes keywords only.
fn kwargs_of(b: &Bound, names: &[&'static str]) -> Kwargs {
    Kwargs::from_iter(names.iter().filter_map(|n| b.opt(n).filter(|v| !v.is_none() && !v.is_undefined()).map(|v| (*n, v.clone()))))
}

pub(super) fn f_sort(state: &State, args: Args) -> Result<Value, Error> {
    let b = bind("filter", "sort", args, &["value", "reverse", "case_sensitive", "attribute"], false, false)?;
    let value = b.defined("value")?.clone();
    minijinja::filters::sort(state, value, kwargs_of(&b, &["reverse", "case_sensitive", "attribute"]))
}

pub(super) fn f_unique(state: &State, args: Args) -> Result<Value, Error> {
    let b = bind("filter", "unique", args, &["a", "case_sensitive", "attribute"], false, false)?;
    let value = b.defined("a")?.clone();
    minijinja::filters::unique(state, value, kwargs_of(&b, &["case_sensitive", "attribute"]))
}

pub(super) fn f_min(state: &State, args: Args) -> Result<Value, Error> {
    let b = bind("filter", "min", args, &["value", "case_sensitive", "attribute"], false, false)?;
    let value = b.defined("value")?.clone();
    minijinja::filters::min(state, value, kwargs_of(&b, &["case_sensitive", "attribute"]))
}

pub(super) fn f_max(state: &State, args: Args) -> Result<Value, Error> {
    let b = bind("filter", "max", args, &["value", "case_sensitive", "attribute"], false, false)?;
    let value = b.defined("value")?.clone();
    minijinja::filters::max(state, value, kwargs_of(&b, &["case_sensitive", "attribute"]))
}

type Dict = IndexMap<Value, Value>;

fn to_dict(v: &Value) -> Dict {
    pyfmt::map_items(v).into_iter().collect()
}

fn from_dict(d: Dict) -> Value {
    Value::from_pairs(d)
}

/// Ansible's `merge_hash`: `y` merged into `x`, `y` winning; `recursive` merges nested dicts,
/// `list_merge` says what to do with two lists.
pub(crate) fn merge_hash(x: &Value, y: &Value, recursive: bool, list_merge: &str) -> Value {
    if x.len() == Some(0) || x == y {
        return y.clone();
    }
    if y.len() == Some(0) {
        return x.clone();
    }
    let mut out = to_dict(x);
    let ymap = pyfmt::map_items(y);
    if !recursive && list_merge == "replace" {
        for (k, v) in ymap {
            out.insert(k, v);
        }
        return from_dict(out);
    }
    for (k, yv) in ymap {
        let Some(xv) = out.get(&k).cloned() else {
            out.insert(k, yv);
            continue;
        };
        if xv.kind() == ValueKind::Map && yv.kind() == ValueKind::Map {
            let merged = if recursive { merge_hash(&xv, &yv, recursive, list_merge) } else { yv };
            out.insert(k, merged);
            continue;
        }
        if xv.kind() == ValueKind::Seq && yv.kind() == ValueKind::Seq {
            let xl = items(&xv);
            let yl = items(&yv);
            let merged = match list_merge {
                "append" => xl.into_iter().chain(yl).collect(),
                "prepend" => yl.into_iter().chain(xl).collect(),
                "append_rp" => xl.into_iter().filter(|z| !yl.contains(z)).chain(yl.iter().cloned()).collect(),
                "prepend_rp" => {
                    let keep: Vec<Value> = xl.into_iter().filter(|z| !yl.contains(z)).collect();
                    yl.into_iter().chain(keep).collect()
                }
                "keep" => xl,
                _ => yl,
            };
            out.insert(k, list(merged));
            continue;
        }
        out.insert(k, yv);
    }
    from_dict(out)
}

/// Ansible's `flatten`: nested lists flattened (`levels` deep, all by default), `None`,
/// `'None'` and `'null'` items dropped when `skip_nulls`.
pub(crate) fn flatten_values(list_: &[Value], levels: Option<i64>, skip_nulls: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for el in list_ {
        if skip_nulls && (el.is_none() || matches!(el.as_str(), Some("None" | "null"))) {
            continue;
        }
        if is_list(el) {
            match levels {
                None => out.extend(flatten_values(&items(el), None, skip_nulls)),
                Some(l) if l >= 1 => out.extend(flatten_values(&items(el), Some(l - 1), skip_nulls)),
                _ => out.push(el.clone()),
            }
        } else {
            out.push(el.clone());
        }
    }
    out
}

pub(super) fn f_flatten(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "flatten", args, &["mylist", "levels", "skip_nulls"], false, false)?;
    let l = b.defined("mylist")?;
    let levels = b.int("levels")?;
    let skip = b.truthy("skip_nulls", true)?;
    Ok(list(flatten_values(&items(l), levels, skip)))
}

pub(super) fn f_combine(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "combine", args, &[], true, true)?;
    let mut recursive = false;
    let mut list_merge = "replace".to_string();
    for (k, v) in &b.kwargs {
        match k.as_str() {
            "recursive" => recursive = v.is_true(),
            "list_merge" => list_merge = py_str(v),
            _ => return Err(b.fail("'recursive' and 'list_merge' are the only valid keyword arguments")),
        }
    }
    if !matches!(list_merge.as_str(), "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp") {
        return Err(b.fail("merge_hash: 'list_merge' argument can only be equal to 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp'"));
    }
    for t in &b.rest {
        if t.is_undefined() {
            return Err(undefined_error(t));
        }
    }
    let dicts = flatten_values(&b.rest, Some(1), true);
    if dicts.is_empty() {
        return Ok(Value::from_pairs(Vec::<(Value, Value)>::new()));
    }
    for (i, d) in dicts.iter().enumerate() {
        if d.kind() != ValueKind::Map {
            let other = if i == 0 { dicts.get(1) } else { dicts.get(i - 1) }.unwrap_or(d);
            let (x, y) = if i == 0 { (d, other) } else { (other, d) };
            return Err(b.fail(format!("failed to combine variables, expected dicts but got a '{}' and a '{}'.", type_name(x), type_name(y))));
        }
    }
    let mut it = dicts.iter().rev();
    let mut result = it.next().unwrap().clone();
    for d in it {
        result = merge_hash(d, &result, recursive, &list_merge);
    }
    Ok(result)
}

pub(super) fn f_dict2items(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "dict2items", args, &["mydict", "key_name", "value_name"], false, false)?;
    let d = b.defined("mydict")?;
    if d.kind() != ValueKind::Map {
        return Err(b.fail(format!("dict2items requires a dictionary, got <class '{}'> instead.", type_name(d))));
    }
    let kn = Value::from(b.text("key_name", "key")?);
    let vn = Value::from(b.text("value_name", "value")?);
    Ok(list(pyfmt::map_items(d).into_iter().map(|(k, v)| Value::from_pairs(vec![(kn.clone(), k), (vn.clone(), v)])).collect()))
}

pub(super) fn f_items2dict(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "items2dict", args, &["mylist", "key_name", "value_name"], false, false)?;
    let l = b.defined("mylist")?;
    if !is_list(l) {
        return Err(b.fail(format!("items2dict requires a list, got <class '{}'> instead.", type_name(l))));
    }
    let kn = Value::from(b.text("key_name", "key")?);
    let vn = Value::from(b.text("value_name", "value")?);
    let mut out = Dict::new();
    for item in items(l) {
        if item.kind() != ValueKind::Map {
            return Err(b.fail(format!("items2dict requires a list of dictionaries, got {} instead.", pyfmt::py_repr(l))));
        }
        let k = item.get_item(&kn).unwrap_or(Value::UNDEFINED);
        let v = item.get_item(&vn).unwrap_or(Value::UNDEFINED);
        if k.is_undefined() || v.is_undefined() {
            return Err(b.fail(format!(
                "items2dict requires each dictionary in the list to contain the keys '{}' and '{}', got {} instead.",
                py_str(&kn),
                py_str(&vn),
                pyfmt::py_repr(l)
            )));
        }
        out.insert(k, v);
    }
    Ok(from_dict(out))
}

/// The unique items of a list, in first-seen order (values compared with `==`).
fn unique_values(vals: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in vals {
        // maps and lists hash by content too, so a set works for every kind
        if seen.insert(v.clone()) {
            out.push(v);
        }
    }
    out
}

fn two_lists(b: &Bound) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let a = b.defined("a")?;
    let c = b.defined("b")?;
    Ok((items(a), items(c)))
}

pub(super) fn f_union(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "union", args, &["a", "b"], false, false)?;
    let (a, c) = two_lists(&b)?;
    Ok(list(unique_values(a.into_iter().chain(c))))
}

pub(super) fn f_intersect(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "intersect", args, &["a", "b"], false, false)?;
    let (a, c) = two_lists(&b)?;
    Ok(list(unique_values(a.into_iter().filter(|x| c.contains(x)))))
}

pub(super) fn f_difference(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "difference", args, &["a", "b"], false, false)?;
    let (a, c) = two_lists(&b)?;
    Ok(list(unique_values(a.into_iter().filter(|x| !c.contains(x)))))
}

pub(super) fn f_symmetric_difference(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "symmetric_difference", args, &["a", "b"], false, false)?;
    let (a, c) = two_lists(&b)?;
    let both: Vec<Value> = a.iter().filter(|x| c.contains(x)).cloned().collect();
    Ok(list(unique_values(a.into_iter().chain(c).filter(|x| !both.contains(x)))))
}

pub(super) fn f_zip_longest(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "zip_longest", args, &[], true, true)?;
    let mut fill = Value::from(());
    for (k, v) in &b.kwargs {
        match k.as_str() {
            "fillvalue" => fill = v.clone(),
            other => return Err(b.fail(format!("zip_longest() got an unexpected keyword argument '{other}'"))),
        }
    }
    let lists: Vec<Vec<Value>> = b.rest.iter().map(items).collect();
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(list((0..n).map(|i| list(lists.iter().map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone())).collect())).collect()))
}

pub(super) fn f_product(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "product", args, &[], true, true)?;
    let mut repeat = 1;
    for (k, v) in &b.kwargs {
        match k.as_str() {
            "repeat" => repeat = b_int(&b, v, "repeat")?.max(0) as usize,
            other => return Err(b.fail(format!("product() got an unexpected keyword argument '{other}'"))),
        }
    }
    let mut pools: Vec<Vec<Value>> = Vec::new();
    for _ in 0..repeat {
        pools.extend(b.rest.iter().map(items));
    }
    let mut result: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in &pools {
        let mut next = Vec::with_capacity(result.len() * pool.len());
        for r in &result {
            for item in pool {
                let mut t = r.clone();
                t.push(item.clone());
                next.push(t);
            }
        }
        result = next;
    }
    Ok(list(result.into_iter().map(list).collect()))
}

pub(super) fn f_permutations(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "permutations", args, &["iterable", "r"], false, false)?;
    let pool = items(b.defined("iterable")?);
    let n = pool.len();
    let r = b.int("r")?.map_or(n, |r| r.max(0) as usize);
    let mut out = Vec::new();
    if r <= n {
        // itertools.permutations order: lexicographic by index
        fn rec(pool: &[Value], r: usize, used: &mut Vec<bool>, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
            if cur.len() == r {
                out.push(Value::from(cur.clone()));
                return;
            }
            for i in 0..pool.len() {
                if !used[i] {
                    used[i] = true;
                    cur.push(pool[i].clone());
                    rec(pool, r, used, cur, out);
                    cur.pop();
                    used[i] = false;
                }
            }
        }
        rec(&pool, r, &mut vec![false; n], &mut Vec::new(), &mut out);
    }
    Ok(list(out))
}

pub(super) fn f_combinations(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "combinations", args, &["iterable", "r"], false, false)?;
    let pool = items(b.defined("iterable")?);
    let r = b.int("r")?.ok_or_else(|| b.fail("combinations() missing required argument 'r'"))?.max(0) as usize;
    let mut out = Vec::new();
    fn rec(pool: &[Value], r: usize, start: usize, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
        if cur.len() == r {
            out.push(Value::from(cur.clone()));
            return;
        }
        for i in start..pool.len() {
            cur.push(pool[i].clone());
            rec(pool, r, i + 1, cur, out);
            cur.pop();
        }
    }
    if r <= pool.len() {
        rec(&pool, r, 0, &mut Vec::new(), &mut out);
    }
    Ok(list(out))
}

pub(super) fn f_subelements(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "subelements", args, &["obj", "subelements", "skip_missing"], false, false)?;
    let obj = b.defined("obj")?;
    let elements = match obj.kind() {
        ValueKind::Map => pyfmt::map_items(obj).into_iter().map(|(_, v)| v).collect(),
        ValueKind::Seq => items(obj),
        _ => return Err(b.fail("obj must be a list of dicts or a nested dict")),
    };
    let sub = b.defined("subelements")?;
    let path: Vec<Value> = if let Some(s) = sub.as_str() {
        s.split('.').map(Value::from).collect()
    } else if sub.kind() == ValueKind::Seq {
        items(sub)
    } else {
        return Err(b.fail("subelements must be a list or a string"));
    };
    let skip_missing = b.truthy("skip_missing", false)?;
    let mut out = Vec::new();
    for el in elements {
        let mut values = el.clone();
        let mut skipped = false;
        for key in &path {
            if values.kind() != ValueKind::Map {
                return Err(b.fail(format!("the key {} should point to a dictionary, got '{}'", py_str(key), py_str(&values))));
            }
            let next = values.get_item(key).unwrap_or(Value::UNDEFINED);
            if next.is_undefined() {
                if skip_missing {
                    skipped = true;
                    break;
                }
                return Err(b.fail(format!("could not find {} key in iterated item {}", pyfmt::py_repr(key), pyfmt::py_repr(&values))));
            }
            values = next;
        }
        if skipped {
            continue;
        }
        if values.kind() != ValueKind::Seq {
            return Err(b.fail(format!(
                "the key {} should point to a list, got {}",
                pyfmt::py_repr(path.last().unwrap_or(&Value::from(""))),
                pyfmt::py_repr(&values)
            )));
        }
        for v in items(&values) {
            out.push(list(vec![el.clone(), v]));
        }
    }
    Ok(list(out))
}

pub(super) fn f_extract(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "extract", args, &["item", "container", "morekeys"], false, false)?;
    let item = b.req("item")?.clone();
    let mut keys = vec![item];
    match b.opt("morekeys") {
        None => {}
        Some(m) if m.is_none() => {}
        Some(m) if m.kind() == ValueKind::Seq => keys.extend(items(m)),
        Some(m) => keys.push(m.clone()),
    }
    let mut value = b.req("container")?.clone();
    for key in keys {
        value = value.get_item(&key).unwrap_or(Value::UNDEFINED);
        if value.is_undefined() {
            break;
        }
    }
    Ok(value)
}

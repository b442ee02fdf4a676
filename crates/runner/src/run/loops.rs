//! Loops: `loop` and the `with_*` forms turned into items, `loop_control`, and a looped task
//! or include run once per item.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::output::Outcome;
use super::task::censored;
use super::{Fatal, HostRun, PlayCtx, Runner, TaskCall, output};
use crate::playbook::{self, LoopKind, Task};

impl Runner {
    /// A looped include: the included tasks run once per item, with the loop variable set.
    pub(super) fn include_loop(&mut self, pc: &mut PlayCtx, call: &TaskCall, items: &[Json], handler: bool) -> Result<HostRun, Fatal> {
        let TaskCall { task, inh, host, .. } = *call;
        let fail = |me: &mut Runner, msg: String| -> Result<HostRun, Fatal> {
            let result = json!({"changed": false, "failed": true, "msg": msg});
            me.finish(call, result, false)
        };
        let mut out = Vec::new();
        let loop_var = task.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
        for (i, item) in items.iter().enumerate() {
            let top = self.loop_top(task, item, i, items.len(), &loop_var);
            let ivars = self.vars_for(pc, host, task, inh, Some(top.clone()));
            match self.eval_when(&task.when, &ivars.ctx()) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
            }
            if let HostRun::Include(tasks, child, role) = self.include(pc, call, &ivars, Some(top))? {
                out.push((tasks, child, role));
            }
        }
        for (tasks, child, role) in out {
            if let Some(role) = role
                && !pc.roles.iter().any(|r| Arc::ptr_eq(r, &role))
            {
                pc.roles.push(role);
            }
            self.run_list_on(pc, &tasks, &child, handler, &[host.to_string()])?;
        }
        Ok(HostRun::Done { failed: false })
    }

    /// A looped task: the action once per item (each with its own `when`), each item's line
    /// shown, then the task's result holding every item's.
    pub(super) fn run_loop(&mut self, pc: &mut PlayCtx, call: &TaskCall, items: &[Json]) -> Result<HostRun, Fatal> {
        let TaskCall { task, inh, host, action, name, no_log, .. } = *call;
        let loop_var = task.loop_control.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::with_capacity(items.len());
        let mut any_changed = false;
        let mut any_failed = false;
        let mut all_skipped = !items.is_empty();
        for (i, item) in items.iter().enumerate() {
            let top = self.loop_top(task, item, i, items.len(), &loop_var);
            let ivars = self.vars_for(pc, host, task, inh, Some(top));
            let ictx = ivars.ctx();
            let label = match &task.loop_control.label {
                Some(l) => match self.templar.template_json(l, &ictx) {
                    Ok(v) => json_label(&v),
                    Err(_) => json_label(item),
                },
                None => json_label(item),
            };
            let mut r = match self.eval_when(&task.when, &ictx) {
                Ok(false) => {
                    let mut r = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
                    if let Some(c) = task.when.first() {
                        r["false_condition"] = c.clone();
                    }
                    r
                }
                Ok(true) => {
                    all_skipped = false;
                    self.run_with_retries(pc, call, &ivars)
                }
                Err(e) => {
                    all_skipped = false;
                    json!({"changed": false, "failed": true, "msg": format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)})
                }
            };
            if r.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
                return self.finish(call, r, false);
            }
            r[&loop_var] = item.clone();
            r["ansible_loop_var"] = json!(loop_var);
            if let Some(iv) = &task.loop_control.index_var {
                r[iv] = json!(i);
                r["ansible_index_var"] = json!(iv);
            }
            if task.loop_control.label.is_some() {
                r["_ansible_item_label"] = json!(label);
            }
            let changed = r.get("changed").and_then(Json::as_bool).unwrap_or(false);
            let failed = r.get("failed").and_then(Json::as_bool).unwrap_or(false);
            let skipped = r.get("skipped").and_then(Json::as_bool).unwrap_or(false);
            any_changed |= changed;
            any_failed |= failed;
            if !failed && !skipped {
                self.apply_facts(task, host, &r);
            }
            let outcome = if failed {
                Outcome::Failed
            } else if skipped {
                Outcome::Skipped
            } else if changed {
                Outcome::Changed
            } else {
                Outcome::Ok
            };
            let shown = if no_log { censored(changed) } else { r.clone() };
            // As Ansible: with no_log, not even the item is shown.
            let label = if no_log { "None".to_string() } else { label };
            self.out.lock().result(host, name, outcome, &shown, Some(&label), action == "debug", false);
            if let Some(p) = &task.loop_control.pause
                && let Some(secs) = p.as_f64().or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            results.push(r);
        }
        let mut result =
            json!({"changed": any_changed, "results": results, "msg": if any_failed { "One or more items failed" } else { "All items completed" }});
        if any_failed {
            result["failed"] = json!(true);
        }
        if all_skipped {
            result["skipped"] = json!(true);
        }
        self.finish(call, result, true)
    }

    fn loop_top(&self, task: &Task, item: &Json, i: usize, len: usize, loop_var: &str) -> Map<String, Json> {
        let mut top = Map::new();
        top.insert(loop_var.to_string(), item.clone());
        top.insert("ansible_loop_var".into(), json!(loop_var));
        if let Some(iv) = &task.loop_control.index_var {
            top.insert(iv.clone(), json!(i));
            top.insert("ansible_index_var".into(), json!(iv));
        }
        if task.loop_control.extended.as_ref().and_then(airlock_jinja::to_bool_strict).unwrap_or(false) {
            top.insert(
                "ansible_loop".into(),
                json!({"index": i + 1, "index0": i, "revindex": len - i, "revindex0": len - i - 1, "first": i == 0, "last": i + 1 == len, "length": len}),
            );
        }
        top
    }

    /// The items of a loop, from `loop:` or a `with_*` form.
    pub(super) fn loop_items(&self, spec: &playbook::LoopSpec, ctx: &minijinja::Value, task: &Task) -> Result<Vec<Json>, String> {
        let v = match &spec.value {
            Json::String(s) if !airlock_jinja::is_template(s) && !matches!(spec.kind, LoopKind::Loop) => {
                // Bare strings in with_* are plain items (Ansible 2.x no longer treats them
                // as variable names).
                Json::String(s.clone())
            }
            other => self.templar.template_json(other, ctx).map_err(|e| e.msg)?,
        };
        let as_list = |v: Json| -> Result<Vec<Json>, String> {
            match v {
                Json::Array(a) => Ok(a),
                Json::Null => Ok(vec![]),
                other => Err(format!(
                    "Invalid data passed to 'loop', it requires a list, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.",
                    output::py_json(&other, None)
                )),
            }
        };
        Ok(match spec.kind {
            LoopKind::Loop => as_list(v)?,
            LoopKind::List => match v {
                Json::Array(a) => a,
                other => vec![other],
            },
            LoopKind::Items => {
                let list = match v {
                    Json::Array(a) => a,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for x in list {
                    match x {
                        Json::Array(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                out
            }
            LoopKind::Dict => match v {
                Json::Object(m) => m.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect(),
                other => return Err(format!("with_dict expects a dict, got {}", output::py_json(&other, None))),
            },
            LoopKind::IndexedItems => as_list(v)?.into_iter().enumerate().map(|(i, x)| json!([i, x])).collect(),
            LoopKind::Together => {
                let lists: Vec<Vec<Json>> = as_list(v)?
                    .into_iter()
                    .map(|l| match l {
                        Json::Array(a) => a,
                        other => vec![other],
                    })
                    .collect();
                let n = lists.iter().map(Vec::len).max().unwrap_or(0);
                (0..n).map(|i| Json::Array(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Json::Null)).collect())).collect()
            }
            LoopKind::Nested => {
                let lists: Vec<Vec<Json>> = as_list(v)?
                    .into_iter()
                    .map(|l| match l {
                        Json::Array(a) => a,
                        other => vec![other],
                    })
                    .collect();
                let mut acc: Vec<Vec<Json>> = vec![vec![]];
                for l in lists {
                    acc = acc
                        .into_iter()
                        .flat_map(|prefix| {
                            l.iter().map(move |x| {
                                let mut p = prefix.clone();
                                p.push(x.clone());
                                p
                            })
                        })
                        .collect();
                }
                acc.into_iter().map(Json::Array).collect()
            }
            LoopKind::Fileglob => {
                let pats = match v {
                    Json::Array(a) => a,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for p in pats {
                    let p = p.as_str().unwrap_or_default().to_string();
                    let mut bases = Vec::new();
                    if Path::new(&p).is_absolute() {
                        bases.push(PathBuf::from(&p));
                    } else {
                        if let Some(r) = &task.role {
                            bases.push(r.path.join("files").join(&p));
                        }
                        let pdir = task.pos.file.parent().map(Path::to_path_buf).unwrap_or_default();
                        bases.push(pdir.join("files").join(&p));
                        bases.push(pdir.join(&p));
                    }
                    for b in bases {
                        let mut found: Vec<String> = glob::glob(&b.to_string_lossy())
                            .map_err(|e| e.to_string())?
                            .filter_map(Result::ok)
                            .filter(|f| f.is_file())
                            .map(|f| f.display().to_string())
                            .collect();
                        if !found.is_empty() {
                            found.sort();
                            out.extend(found.into_iter().map(Json::String));
                            break;
                        }
                    }
                }
                out
            }
            LoopKind::Sequence => sequence_items(&v)?,
        })
    }
}

/// How an item shows in `(item=...)`: Python's str() of it.
pub(super) fn json_label(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => airlock_jinja::pyfmt::py_str(&airlock_jinja::to_value(other)),
    }
}

/// `with_sequence`: `start=1 end=5 stride=1 format=%d` or `count=`.
fn sequence_items(v: &Json) -> Result<Vec<Json>, String> {
    let text = v.as_str().ok_or("with_sequence takes a string like 'start=1 end=5'")?;
    let kv = playbook::parse_kv(text);
    let num = |k: &str| {
        kv.get(k)
            .and_then(|x| x.as_str())
            .map(|s| {
                if let Some(h) = s.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).map_err(|e| e.to_string())
                } else {
                    s.parse::<i64>().map_err(|e| e.to_string())
                }
            })
            .transpose()
    };
    let start = num("start")?.unwrap_or(1);
    let stride = num("stride")?.unwrap_or(1);
    let end = match (num("end")?, num("count")?) {
        (Some(e), _) => e,
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err("with_sequence needs 'end' or 'count'".into()),
    };
    if stride == 0 {
        return Err("with_sequence: stride must not be 0".into());
    }
    let fmt = kv.get("format").and_then(|x| x.as_str()).unwrap_or("%d").to_string();
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Json::String(fmt.replacen("%d", &i.to_string(), 1).replacen("%02d", &format!("{i:02}"), 1).replacen("%x", &format!("{i:x}"), 1)));
        i += stride;
    }
    Ok(out)
}

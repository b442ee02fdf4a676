//! One task on its hosts: tags, `--start-at-task`, `run_once`, conditionals, `retries`/`until`,
//! `register`, `changed_when`/`failed_when`/`ignore_errors`, and its result counted and shown.

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::output::Outcome;
use super::{Fatal, HostRun, Inherit, PlayCtx, Runner, TaskCall};
use crate::playbook::{Body, Task};
use airlock_jinja::Vars;

impl Runner {
    /// Whether `--start-at-task` still hides this task.
    fn before_start(&mut self, task: &Task) -> bool {
        let Some(want) = &self.start_at else { return false };
        let names = [task.display_name(), task.name.clone().unwrap_or_default()];
        if names.iter().any(|n| n == want || glob::Pattern::new(want).is_ok_and(|p| p.matches(n))) {
            self.start_at = None;
            return false;
        }
        true
    }

    pub(super) fn run_task(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, hosts: &[String], handler: bool) -> Result<(), Fatal> {
        let mut all_tags = inh.tags.clone();
        all_tags.extend(task.tags.iter().cloned());
        if !handler && !self.tags_selected(&all_tags) {
            return Ok(());
        }
        if !handler && self.before_start(task) {
            return Ok(());
        }
        let run_once = self.opt_bool(task.run_once.as_ref().or(inh.run_once.as_ref())).unwrap_or(false);
        let hosts: Vec<String> = if run_once { hosts.iter().take(1).cloned().collect() } else { hosts.to_vec() };
        let name = task.display_name();
        {
            // Templated names are rendered with the first host's vars (as Ansible does).
            let shown = if airlock_jinja::is_template(&name) {
                let vars = self.vars_for(pc, &hosts[0], task, inh, None);
                self.templar.render_str(&name, &vars.ctx()).unwrap_or(name.clone())
            } else {
                name.clone()
            };
            self.out.lock().task_start(&shown, handler, &task.pos.to_string());
        }
        let mut any_fatal = false;
        // Executor actions that act on the play as a whole stay one host at a time.
        let parallel = !matches!(task.action().map(|a| a.trim_start_matches("ansible.builtin.")), Some("meta" | "pause" | "add_host" | "group_by"));
        let results = self.on_hosts(pc, &hosts, parallel, |me, pc, host| -> Result<bool, Fatal> {
            match me.run_on_host(pc, task, inh, host, handler)? {
                HostRun::Done { failed, .. } => Ok(failed),
                HostRun::Include(tasks, child, role) => {
                    if let Some(role) = role
                        && !pc.roles.iter().any(|r| Arc::ptr_eq(r, &role))
                    {
                        pc.roles.push(role);
                    }
                    me.run_list_on(pc, &tasks, &child, handler, std::slice::from_ref(&host.to_string()))?;
                    Ok(false)
                }
            }
        });
        for r in results {
            if r? {
                any_fatal |= self.opt_bool(task.any_errors_fatal.as_ref().or(inh.any_errors_fatal.as_ref())).unwrap_or(false);
            }
        }
        if run_once {
            // run_once results apply to every host: copy the registered value.
            if let (Some(reg), Some(first)) = (&task.register, hosts.first())
                && let Some(v) = self.hosts[first].set_facts.get(reg).cloned()
            {
                for h in pc.hosts.clone() {
                    let hs = self.hosts.get_mut(&h).unwrap();
                    Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), v.clone());
                }
            }
        }
        if any_fatal {
            for h in pc.hosts.clone() {
                self.hosts.get_mut(&h).unwrap().failed = true;
            }
        }
        Ok(())
    }

    /// Runs a task on one host: conditions, loop, retries, register, notify, output.
    fn run_on_host(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, host: &str, handler: bool) -> Result<HostRun, Fatal> {
        let Body::Action { action, args } = &task.body else { unreachable!() };
        let action = action.as_str();
        let name = task.display_name();
        let vars = self.vars_for(pc, host, task, inh, None);
        let ctx = vars.ctx();
        let no_log = self.eval_bool_opt(task.no_log.as_ref().or(inh.no_log.as_ref()), &ctx).unwrap_or(false);
        let call = TaskCall { task, inh, host, action, args, name: &name, no_log };
        let fail = |me: &mut Runner, msg: String| -> Result<HostRun, Fatal> {
            let result = json!({"changed": false, "failed": true, "msg": msg});
            me.finish(&call, result, false)
        };
        // Parent conditions (blocks, roles, imports) and then the task's own; with a loop,
        // the task's own `when` is evaluated per item.
        match self.eval_when(&inh.when, &ctx) {
            Ok(true) => {}
            Ok(false) => return self.skip(&call, &inh.when),
            Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
        }
        let items = match &task.loop_ {
            None => None,
            Some(spec) => match self.loop_items(spec, &ctx, task) {
                Ok(i) => Some(i),
                Err(e) => return fail(self, e),
            },
        };
        let Some(items) = items else {
            match self.eval_when(&task.when, &ctx) {
                Ok(true) => {}
                Ok(false) => return self.skip(&call, &task.when),
                Err(e) => return fail(self, format!("The conditional check failed: {e} (task '{}' at {})", task.display_name(), task.pos)),
            }
            if matches!(action, "include_tasks" | "include_role") {
                return self.include(pc, &call, &vars, None);
            }
            let result = self.run_with_retries(pc, &call, &vars);
            return self.finish(&call, result, false);
        };
        if matches!(action, "include_tasks" | "include_role") {
            return self.include_loop(pc, &call, &items, handler);
        }
        self.run_loop(pc, &call, &items)
    }

    /// Facts a module, set_fact or include_vars returned, in place for the host's next task
    /// (and, in a loop, for the next item: `set_fact` accumulating over a loop works).
    pub(super) fn apply_facts(&mut self, task: &Task, host: &str, result: &Json) {
        let Some(Json::Object(f)) = result.get("ansible_facts") else { return };
        let action = task.action().unwrap_or_default();
        let hs = self.hosts.get_mut(host).unwrap();
        if action == "set_fact" {
            Arc::make_mut(&mut hs.set_facts).extend(f.clone());
        } else if action == "include_vars" {
            Arc::make_mut(&mut hs.include_vars).extend(f.clone());
        } else {
            let facts = Arc::make_mut(&mut hs.facts);
            for (k, v) in f {
                facts.insert(k.clone(), v.clone());
            }
        }
    }

    fn skip(&mut self, call: &TaskCall, conds: &[Json]) -> Result<HostRun, Fatal> {
        let TaskCall { task, host, name, no_log, .. } = *call;
        let mut r = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
        if let Some(c) = conds.first() {
            r["false_condition"] = c.clone();
        }
        self.stats.get_mut(host).unwrap().skipped += 1;
        let shown = if no_log { censored(false) } else { r.clone() };
        self.out.lock().result(host, name, Outcome::Skipped, &shown, None, false, false);
        if let Some(reg) = &task.register {
            let hs = self.hosts.get_mut(host).unwrap();
            Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), r);
        }
        Ok(HostRun::Done { failed: false })
    }

    /// Runs the action, repeating it while `until` is false (up to `retries`).
    pub(super) fn run_with_retries(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, host, .. } = *call;
        let ctx = vars.ctx();
        let Some(until) = &task.until else {
            return self.run_action(pc, call, vars);
        };
        let retries = task
            .retries
            .as_ref()
            .and_then(|r| self.templar.template_json(r, &ctx).ok())
            .and_then(|r| r.as_i64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(3)
            .max(0);
        let delay = task
            .delay
            .as_ref()
            .and_then(|r| self.templar.template_json(r, &ctx).ok())
            .and_then(|r| r.as_f64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(5.0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut result = self.run_action(pc, call, vars);
            // `until` sees the result under the register name.
            let mut top = Map::new();
            if let Some(reg) = &task.register {
                top.insert(reg.clone(), result.clone());
            }
            let uvars = self.vars_for(pc, host, task, inh, Some(top));
            let ok = self.templar.eval_cond(until, &uvars.ctx());
            result["attempts"] = json!(attempt);
            match ok {
                Ok(true) => return result,
                Ok(false) if attempt <= retries => {
                    self.out.lock().line(&format!("FAILED - RETRYING: [{host}]: {} ({} retries left).", task.display_name(), retries + 1 - attempt));
                    self.out.lock().flush();
                    std::thread::sleep(std::time::Duration::from_secs_f64(delay.max(0.0)));
                }
                Ok(false) => {
                    result["failed"] = json!(true);
                    if result.get("msg").is_none() {
                        result["msg"] = json!("Retries exhausted");
                    }
                    return result;
                }
                Err(e) => return json!({"failed": true, "changed": false, "msg": format!("The conditional check '{}' failed: {}", until, e.msg)}),
            }
        }
    }

    /// Applies changed_when/failed_when/ignore_errors, registers, notifies, prints, counts.
    pub(super) fn finish(&mut self, call: &TaskCall, mut result: Json, looped: bool) -> Result<HostRun, Fatal> {
        let TaskCall { task, inh, host, name, no_log, .. } = *call;
        if result.get("failed").is_none() {
            result["failed"] = json!(false);
        }
        // changed_when / failed_when see the result under the register name.
        if task.changed_when.is_some() || task.failed_when.is_some() {
            let mut top = Map::new();
            if let Some(reg) = &task.register {
                top.insert(reg.clone(), result.clone());
            }
            let ctx = self.result_ctx(task, host, &result, top);
            if let Some(cw) = &task.changed_when {
                match self.eval_conds_json(cw, &ctx) {
                    Ok(b) => result["changed"] = json!(b),
                    Err(e) => {
                        result["failed"] = json!(true);
                        result["msg"] = json!(format!("The conditional check '{}' failed. The error was: {}", cond_text(cw), e));
                    }
                }
            }
            if let Some(fw) = &task.failed_when {
                match self.eval_conds_json(fw, &ctx) {
                    Ok(b) => {
                        result["failed"] = json!(b);
                        result["failed_when_result"] = json!(b);
                    }
                    Err(e) => {
                        result["failed"] = json!(true);
                        result["msg"] = json!(format!("The conditional check '{}' failed. The error was: {}", cond_text(fw), e));
                    }
                }
            }
        }
        if result.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
            // The host is gone for the rest of the run: counted and shown as unreachable,
            // never rescued.
            self.record(host, name, result);
            return Ok(HostRun::Done { failed: true });
        }
        let failed = result.get("failed").and_then(Json::as_bool).unwrap_or(false);
        let changed = result.get("changed").and_then(Json::as_bool).unwrap_or(false);
        let skipped = result.get("skipped").and_then(Json::as_bool).unwrap_or(false);
        let ignore = failed && {
            let ctx = self.result_ctx(task, host, &result, Map::new());
            self.eval_bool_opt(task.ignore_errors.as_ref().or(inh.ignore_errors.as_ref()), &ctx).unwrap_or(false)
        };
        if let Some(reg) = &task.register {
            let mut stored = result.clone();
            if let Json::Object(m) = &mut stored {
                m.retain(|k, _| !k.starts_with("_ansible"));
            }
            let hs = self.hosts.get_mut(host).unwrap();
            Arc::make_mut(&mut hs.set_facts).insert(reg.clone(), stored);
        }
        if !failed {
            self.apply_facts(task, host, &result);
        }
        let stats = self.stats.get_mut(host).unwrap();
        let outcome = if task.action() == Some("meta") && !failed {
            Outcome::Ok
        } else if failed {
            if ignore {
                // Ansible counts an ignored failure as ok (and changed when it changed).
                stats.ignored += 1;
                stats.ok += 1;
                if changed {
                    stats.changed += 1;
                }
            } else {
                stats.failed += 1;
            }
            Outcome::Failed
        } else if skipped {
            stats.skipped += 1;
            Outcome::Skipped
        } else if changed {
            stats.changed += 1;
            stats.ok += 1;
            Outcome::Changed
        } else {
            stats.ok += 1;
            Outcome::Ok
        };
        // A loop showed its items already; the task's own line follows only when it failed
        // or every item was skipped (as Ansible's default callback does).
        let is_meta = task.action() == Some("meta");
        if !is_meta && (!looped || outcome == Outcome::Failed || outcome == Outcome::Skipped) {
            let shown = if no_log { censored(changed) } else { result.clone() };
            let display = if looped { strip_results(&shown) } else { shown };
            let verbose_always = !looped && task.action() == Some("debug");
            self.out.lock().result(host, name, outcome, &display, None, verbose_always, ignore);
        }
        if changed && !failed && !task.notify.is_empty() {
            self.notify(host, task);
        }
        if failed && !ignore {
            self.hosts.get_mut(host).unwrap().failed = true;
            if let Json::Object(m) = &result {
                // For rescue: ansible_failed_task / ansible_failed_result.
                let hs = self.hosts.get_mut(host).unwrap();
                let sf = Arc::make_mut(&mut hs.set_facts);
                sf.insert("ansible_failed_result".into(), Json::Object(m.clone()));
                sf.insert(
                    "ansible_failed_task".into(),
                    json!({"name": task.display_name(), "action": task.action().unwrap_or_default(), "path": task.pos.to_string()}),
                );
            }
            return Ok(HostRun::Done { failed: true });
        }
        Ok(HostRun::Done { failed: false })
    }

    /// A context for changed_when/failed_when/ignore_errors: host-level vars plus the result.
    fn result_ctx(&mut self, task: &Task, host: &str, _result: &Json, top: Map<String, Json>) -> minijinja::Value {
        let hs = &self.hosts[host];
        let mut maps = vec![Arc::new(top), hs.set_facts.clone(), hs.include_vars.clone(), task.vars.clone(), hs.facts.clone(), self.extra_vars.clone()];
        if let Some(r) = &task.role {
            maps.push(r.params.clone());
            maps.push(r.vars.clone());
            maps.push(r.defaults.clone());
        }
        Vars::new(self.templar.clone(), maps).ctx()
    }

    fn eval_conds_json(&self, c: &Json, ctx: &minijinja::Value) -> Result<bool, String> {
        match c {
            Json::Array(a) => self.eval_when(a, ctx),
            other => self.templar.eval_cond(other, ctx).map_err(|e| e.msg),
        }
    }
}

fn cond_text(c: &Json) -> String {
    match c {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn censored(changed: bool) -> Json {
    json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": changed})
}

fn strip_results(v: &Json) -> Json {
    let mut v = v.clone();
    if let Json::Object(m) = &mut v {
        m.remove("results");
    }
    v
}

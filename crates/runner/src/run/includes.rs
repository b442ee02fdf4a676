//! Task lists and what nests tasks at run time: blocks (with `rescue` and `always`) and
//! `include_tasks` / `include_role` (imports are expanded when the playbook is loaded).

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::loops::json_label;
use super::{Fatal, HostRun, Inherit, PlayCtx, Runner, TaskCall};
use crate::playbook::{self, Body, Task};
use airlock_jinja::Vars;

impl Runner {
    pub(super) fn run_list(&mut self, pc: &mut PlayCtx, tasks: &[Task], inh: &Inherit, handler: bool) -> Result<(), Fatal> {
        let hosts = pc.hosts.clone();
        self.run_list_on(pc, tasks, inh, handler, &hosts)
    }

    pub(super) fn run_list_on(&mut self, pc: &mut PlayCtx, tasks: &[Task], inh: &Inherit, handler: bool, hosts: &[String]) -> Result<(), Fatal> {
        for task in tasks {
            if pc.end_play {
                return Ok(());
            }
            let active = self.active_hosts(hosts);
            if active.is_empty() {
                return Ok(());
            }
            match &task.body {
                Body::Block { .. } => {
                    let child = inh.child(task);
                    self.run_block(pc, task, &child, &active, handler)?;
                }
                Body::Action { .. } => self.run_task(pc, task, inh, &active, handler)?,
            }
        }
        Ok(())
    }

    /// A block's tasks, then its `rescue` on the hosts that failed, then its `always`; `inh` is
    /// the block's own keywords over the inherited ones.
    fn run_block(&mut self, pc: &mut PlayCtx, task: &Task, inh: &Inherit, hosts: &[String], handler: bool) -> Result<(), Fatal> {
        let Body::Block { block, rescue, always } = &task.body else { unreachable!() };
        self.run_list_on(pc, block, inh, handler, hosts)?;
        let failed: Vec<String> = hosts.iter().filter(|h| self.hosts[*h].failed).cloned().collect();
        if !rescue.is_empty() && !failed.is_empty() {
            for h in &failed {
                self.hosts.get_mut(h).unwrap().failed = false;
            }
            self.run_list_on(pc, rescue, inh, handler, &failed)?;
            for h in &failed {
                if !self.hosts[h].failed {
                    let s = self.stats.get_mut(h).unwrap();
                    s.rescued += 1;
                    s.failed = s.failed.saturating_sub(1);
                }
            }
        }
        if !always.is_empty() {
            let still_failed: Vec<String> = hosts.iter().filter(|h| self.hosts[*h].failed).cloned().collect();
            for h in &still_failed {
                self.hosts.get_mut(h).unwrap().failed = false;
            }
            self.run_list_on(pc, always, inh, handler, hosts)?;
            for h in &still_failed {
                self.hosts.get_mut(h).unwrap().failed = true;
            }
        }
        Ok(())
    }

    /// include_tasks / include_role: loads what to run; the caller runs it on this host.
    pub(super) fn include(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>, top: Option<Map<String, Json>>) -> Result<HostRun, Fatal> {
        // An include's own failures are shown whatever its no_log.
        let call = TaskCall { no_log: false, ..*call };
        let TaskCall { task, inh, host, args, .. } = call;
        let ctx = vars.ctx();
        let action = task.action().unwrap_or_default();
        let targs = match self.templar.template_json(&Json::Object(args.clone()), &ctx) {
            Ok(Json::Object(m)) => m,
            Ok(_) => unreachable!(),
            Err(e) => {
                let r = json!({"changed": false, "failed": true, "msg": e.msg});
                return self.finish(&call, r, false);
            }
        };
        // The included tasks inherit the include's surroundings, its `apply`, and its vars
        // (plus the loop variable) as include params; not its own tags or when.
        let mut child = inh.clone();
        let mut params = (*task.vars).clone();
        let item_suffix = top
            .as_ref()
            .and_then(|t| {
                let var = t.get("ansible_loop_var")?.as_str()?;
                let label = match &task.loop_control.label {
                    Some(l) => self.templar.template_json(l, &ctx).ok()?,
                    None => t.get(var)?.clone(),
                };
                Some(format!(" => (item={})", json_label(&label)))
            })
            .unwrap_or_default();
        if let Some(top) = top {
            params.extend(top);
        }
        if !params.is_empty() {
            child.include_params.push(Arc::new(params));
        }
        if let Some(Json::Object(apply)) = targs.get("apply") {
            if let Some(t) = apply.get("tags") {
                child.tags.extend(match t {
                    Json::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect(),
                    Json::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
                    _ => vec![],
                });
            }
            for (k, slot) in [
                ("become", &mut child.become_),
                ("become_user", &mut child.become_user),
                ("check_mode", &mut child.check_mode),
                ("diff", &mut child.diff),
                ("no_log", &mut child.no_log),
                ("ignore_errors", &mut child.ignore_errors),
            ] {
                if let Some(v) = apply.get(k) {
                    *slot = Some(v.clone());
                }
            }
            if let Some(w) = apply.get("when") {
                child.when.extend(match w {
                    Json::Array(a) => a.clone(),
                    other => vec![other.clone()],
                });
            }
            if let Some(e) = apply.get("environment") {
                child.environment.push(e.clone());
            }
        }
        let fail = |me: &mut Runner, msg: String| -> Result<HostRun, Fatal> {
            let r = json!({"changed": false, "failed": true, "msg": msg});
            me.finish(&call, r, false)
        };
        if action == "include_tasks" {
            let Some(file) = targs.get("_raw_params").or_else(|| targs.get("file")).and_then(Json::as_str) else {
                return fail(self, "include_tasks needs a file name".into());
            };
            match playbook::load_task_file(file, &task.pos.file, task.role.as_ref(), &pc.play.dir, &self.load_opts) {
                Ok((path, tasks)) => {
                    self.out.lock().line(&format!("included: {} for {host}{item_suffix}", path.display()));
                    self.stats.get_mut(host).unwrap().ok += 1;
                    Ok(HostRun::Include(tasks, child, None))
                }
                Err(e) => fail(self, format!("{e}")),
            }
        } else {
            let s = |k: &str| targs.get(k).and_then(Json::as_str).map(str::to_string);
            let Some(name) = s("name").or_else(|| s("role")) else {
                return fail(self, "'name' is a required field for include_role".into());
            };
            let req = playbook::RoleRequest {
                name,
                tasks_from: s("tasks_from"),
                vars_from: s("vars_from"),
                defaults_from: s("defaults_from"),
                handlers_from: s("handlers_from"),
                params: Map::new(),
            };
            match playbook::load_role(&req, &pc.play.dir, &self.load_opts) {
                Ok((role, tasks, handlers)) => {
                    for h in handlers {
                        pc.handlers.push(h);
                    }
                    self.stats.get_mut(host).unwrap().ok += 1;
                    let public = targs.get("public").and_then(airlock_jinja::to_bool_strict).unwrap_or(false);
                    Ok(HostRun::Include(tasks, child, if public { Some(role) } else { None }))
                }
                Err(e) => fail(self, format!("{e}")),
            }
        }
    }
}

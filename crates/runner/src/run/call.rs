//! Calling a task's action on a host: `delegate_to`, templated arguments, the executor's own
//! actions or a module, run here, in a child under `become`, or over SSH.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::{PlayCtx, Runner, TaskCall, actions, connection, escalate, module_result_json};
use crate::playbook::Play;
use airlock_jinja::Vars;

impl Runner {
    /// Runs one action (module or executor action) once, after templating its arguments.
    pub(super) fn run_action(&mut self, pc: &mut PlayCtx, call: &TaskCall, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, host, .. } = *call;
        // delegate_to: the module runs on that host, through its connection, with this
        // host's variables (as Ansible does).
        let target = match task.delegate_to.as_ref().or(inh.delegate_to.as_ref()) {
            Some(d) => match self.templar.template_json(d, &vars.ctx()) {
                Ok(Json::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return json!({"changed": false, "failed": true, "msg": e.msg}),
            },
            None => host.to_string(),
        };
        let mut r = self.run_action_on(pc, call, &target, vars);
        // The output names both hosts (`ok: [node1 -> localhost]`), as Ansible's does.
        if target != host
            && let Json::Object(m) = &mut r
        {
            m.insert("_ansible_delegated_vars".into(), json!({"ansible_delegated_host": target}));
        }
        r
    }

    /// Runs the action on `target`: the task's host, or the one it is delegated to.
    fn run_action_on(&mut self, pc: &mut PlayCtx, call: &TaskCall, target: &str, vars: &Arc<Vars>) -> Json {
        let TaskCall { task, inh, action, args, .. } = *call;
        let ctx = vars.ctx();
        let check = self.check_mode(inh, task);
        let diff = match self.eval_bool_opt(task.diff.as_ref().or(inh.diff.as_ref()), &ctx) {
            Some(b) => b,
            None => self.opts.diff,
        };
        // Templating of arguments is the action's own business for a few actions (they need
        // the raw text, e.g. `debug: var=`, `assert: that=`).
        let raw_args_actions = ["debug", "assert"];
        let targs = if raw_args_actions.contains(&action) {
            args.clone()
        } else {
            match self.templar.template_json(&Json::Object(args.clone()), &ctx) {
                Ok(Json::Object(m)) => m.into_iter().filter(|(_, v)| v.as_str() != Some(airlock_jinja::OMIT)).collect(),
                Ok(_) => unreachable!(),
                Err(e) => return json!({"changed": false, "failed": true, "msg": format!("{} (task '{}' at {})", e.msg, task.display_name(), task.pos)}),
            }
        };
        self.note_secrets(&targs, vars);
        if let Some(mut r) = actions::run_executor_action(self, pc, call, &targs, vars, check) {
            // Template errors inside an action name the task and where it is written.
            if let Some(msg) = r.get("msg").and_then(Json::as_str).filter(|m| m.contains("is undefined") || m.starts_with("template error")) {
                let msg = format!("{msg} (task '{}' at {})", task.display_name(), task.pos);
                r["msg"] = json!(msg);
            }
            return r;
        }
        let Some(module) = crate::modules::lookup(action) else {
            return json!({"changed": false, "failed": true, "msg": format!("couldn't resolve module/action '{action}'")});
        };
        let mut targs = targs;
        // The task's environment, for modules that run commands.
        if !inh.environment.is_empty() || task.environment.is_some() {
            let mut env = Map::new();
            for e in inh.environment.iter().chain(task.environment.iter()) {
                if let Ok(Json::Object(m)) = self.templar.template_json(e, &ctx) {
                    env.extend(m);
                }
            }
            targs.insert("_environment".into(), Json::Object(env));
        }
        let mut search = Vec::new();
        if let Some(r) = &task.role {
            search.push(r.path.clone());
        }
        if let Some(d) = task.pos.file.parent() {
            search.push(d.to_path_buf());
        }
        search.push(pc.play.dir.clone());
        let templar = self.templar.clone();
        let render_vars = vars.clone();
        let render = move |p: &Path| -> Result<String, String> {
            let text = std::fs::read_to_string(p).map_err(|e| format!("could not read template {}: {e}", p.display()))?;
            templar.render_str(&text, &render_vars.ctx()).map_err(|e| format!("{} (in template {})", e.msg, p.display()))
        };
        // become: a child process under sudo when the target user is not who we are.
        let become_user = if self.eval_bool_opt(task.become_.as_ref().or(inh.become_.as_ref()), &ctx).unwrap_or(false) {
            match task.become_user.as_ref().or(inh.become_user.as_ref()) {
                Some(u) => match self.templar.template_json(u, &ctx) {
                    Ok(Json::String(s)) => Some(s),
                    Ok(other) => Some(other.to_string()),
                    Err(e) => return json!({"changed": false, "failed": true, "msg": e.msg}),
                },
                None => Some("root".to_string()),
            }
        } else {
            None
        };
        let progress = self.out.progress();
        let conn = self.connection_of(pc.play, target);
        let remote = conn != "local";
        if remote || become_user.as_deref().is_some_and(escalate::needs_switch) {
            // The module runs in a child, here under sudo or on the host: templates are
            // rendered here (the child has no variables), and over SSH the local files a
            // module reads are copied along.
            let mut rendered = std::collections::HashMap::new();
            let mut uploads = Vec::new();
            let probe = crate::modules::ModuleContext {
                check_mode: check,
                diff_mode: diff,
                search_paths: search.clone(),
                render_file: &render,
                progress: &progress,
                provided: &[],
            };
            let short = action.strip_prefix("ansible.builtin.").or_else(|| action.strip_prefix("ansible.legacy.")).unwrap_or(action);
            let src = targs.get("src").and_then(Json::as_str).map(str::to_string);
            if short == "template" {
                if let Some(path) = src.as_deref().and_then(|s| probe.find_file("templates", s)) {
                    match render(&path) {
                        Ok(text) => {
                            if remote {
                                targs.insert("src".into(), json!(path.display().to_string()));
                            }
                            rendered.insert(path, text);
                        }
                        Err(e) => return json!({"changed": false, "failed": true, "msg": e}),
                    }
                }
            } else if remote
                && matches!(short, "copy" | "unarchive")
                && !targs.get("remote_src").and_then(airlock_jinja::to_bool_strict).unwrap_or(false)
                && let Some(s) = src.as_deref()
            {
                let Some(path) = probe.find_file("files", s.trim_end_matches('/')) else {
                    return json!({"changed": false, "failed": true, "msg": format!("Could not find or access '{s}' on the Ansible Controller (searched files/ of {})", search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))});
                };
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "src".into());
                uploads.push((path, name));
            }
            let mut req = escalate::ModuleRequest {
                module: action.to_string(),
                args: targs,
                check_mode: check,
                diff_mode: diff,
                search_paths: if remote { Vec::new() } else { search },
                rendered,
            };
            if !remote {
                return escalate::run_as(become_user.as_deref().unwrap_or("root"), &req);
            }
            if conn != "ssh" {
                return connection::unreachable_result(&format!(
                    "connection '{conn}' of {target} is not supported; airlock connects with: {}",
                    connection::SUPPORTED.join(", ")
                ));
            }
            let ssh = match self.ssh_params(pc, target).and_then(|p| self.connections.ssh(&p)) {
                Ok(c) => c,
                Err(e) => return json!({"changed": false, "failed": true, "msg": e.to_string()}),
            };
            return ssh.run_module(&mut req, become_user.as_deref(), &uploads);
        }
        let mctx = crate::modules::ModuleContext {
            check_mode: check,
            diff_mode: diff,
            search_paths: search,
            render_file: &render,
            progress: &progress,
            provided: &[],
        };
        let res = module(&targs, &mctx);
        module_result_json(res)
    }

    /// The connection a host uses: its `ansible_connection` variable, else the play's
    /// `connection`, else `-c`, else `local` for localhost and `ssh` for anything else (the
    /// order Ansible applies).
    pub(super) fn connection_of(&mut self, play: &Play, host: &str) -> String {
        let layers = self.inventory_layers(host, &play.dir);
        if let Some(c) = self
            .extra_vars
            .get("ansible_connection")
            .or_else(|| layers.iter().rev().find_map(|(_, _, _, m)| m.get("ansible_connection")))
            .and_then(Json::as_str)
        {
            return c.to_string();
        }
        if let Some(c) = play.connection.as_ref().or(self.opts.connection.as_ref()) {
            return c.clone();
        }
        if matches!(host, "localhost" | "127.0.0.1" | "::1") { "local".into() } else { "ssh".into() }
    }

    /// How to reach `host` over SSH, from its variables (templated in its own context).
    pub(super) fn ssh_params(&mut self, pc: &PlayCtx, host: &str) -> Result<connection::SshParams, connection::ConnectionSetupError> {
        self.ssh_params_inner(pc, host).map_err(connection::ConnectionSetupError::Variable)
    }

    fn ssh_params_inner(&mut self, pc: &PlayCtx, host: &str) -> Result<connection::SshParams, String> {
        let hv = self.hostvars(pc);
        let hvars = hv.get_item(&minijinja::Value::from(host)).ok().filter(|v| !v.is_undefined());
        let get = |names: &[&str]| -> Option<Json> {
            let hv = hvars.as_ref()?;
            names.iter().find_map(|n| {
                let v = hv.get_attr(n).ok().filter(|v| !v.is_undefined() && !v.is_none())?;
                serde_json::to_value(&v).ok()
            })
        };
        let text = |names: &[&str]| {
            get(names).map(|v| match v {
                Json::String(s) => s,
                other => other.to_string(),
            })
        };
        let args = |names: &[&str]| -> Result<Vec<String>, String> {
            match text(names) {
                Some(s) => airlock_base::shlex::split(&s).map_err(|e| format!("{}: {e}", names[0])),
                None => Ok(Vec::new()),
            }
        };
        let port = match text(&["ansible_port", "ansible_ssh_port"]) {
            Some(p) => Some(p.trim().parse::<u16>().map_err(|_| format!("ansible_port of {host} is '{p}', not a port number"))?),
            None => None,
        };
        if text(&["ansible_password", "ansible_ssh_pass"]).is_some() {
            return Err(format!(
                "{host} sets ansible_password: airlock's ssh connection logs in with keys only (ansible_ssh_private_key_file or the SSH agent)"
            ));
        }
        Ok(connection::SshParams {
            host: text(&["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| host.to_string()),
            port,
            user: text(&["ansible_user", "ansible_ssh_user"]),
            key: text(&["ansible_ssh_private_key_file", "ansible_private_key_file"]).map(|k| PathBuf::from(crate::modules::utils::files::expand_user(&k))),
            common_args: args(&["ansible_ssh_common_args"])?,
            extra_args: args(&["ansible_ssh_extra_args"])?,
            timeout: text(&["ansible_ssh_timeout", "ansible_timeout"]).and_then(|t| t.trim().parse().ok()).unwrap_or(10),
            binary: text(&["airlock_remote_binary"]).map(PathBuf::from),
        })
    }
}

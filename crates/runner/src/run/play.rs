//! Running a play: its hosts, `serial` batches, the play's variables and `vars_files`, fact
//! gathering, and its task lists and handler flushes in order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::output::Outcome;
use super::{Fatal, Inherit, PlayCtx, Runner, connection, escalate, exit};
use crate::playbook::{self, Play};
use crate::vars::VarMap;
use airlock_jinja::Vars;

impl Runner {
    pub(super) fn run_books(&mut self, books: &[playbook::Playbook]) -> i32 {
        for b in books {
            self.out.lock().playbook_start(&b.path);
            for play in &b.plays {
                if let Err(Fatal(msg)) = self.run_play(play) {
                    let msg = self.out.lock().secrets.scrub(&msg).into_owned();
                    self.out.lock().flush();
                    eprintln!("ERROR! {msg}");
                    self.out.lock().recap(&self.stats);
                    return exit::ERROR;
                }
                if self.stats.values().any(|s| s.failed > 0 || s.unreachable > 0) && self.hosts.values().all(|h| h.failed || h.ended || h.unreachable) {
                    break;
                }
            }
        }
        let stats = self.stats.clone();
        self.out.lock().recap(&stats);
        if stats.values().any(|s| s.unreachable > 0) {
            exit::UNREACHABLE
        } else if stats.values().any(|s| s.failed > 0) || self.hosts.values().any(|h| h.failed) {
            exit::HOST_FAILED
        } else {
            exit::OK
        }
    }

    pub(super) fn play_hosts(&mut self, play: &Play) -> Result<Vec<String>, Fatal> {
        let pattern = match &play.hosts {
            Json::String(s) => {
                let vars = Vars::new(self.templar.clone(), vec![self.extra_vars.clone(), play.vars.clone()]);
                self.templar.render_str(s, &vars.ctx()).map_err(|e| Fatal(format!("could not template the play's hosts: {}", e.msg)))?
            }
            Json::Null => String::new(),
            other => other.to_string(),
        };
        let mut hosts = self.inventory.pattern_hosts(&pattern).map_err(|e| Fatal(e.to_string()))?;
        if let Some(limit) = &self.opts.limit {
            let allowed = self.inventory.pattern_hosts(limit).map_err(|e| Fatal(e.to_string()))?;
            hosts.retain(|h| allowed.contains(h));
        }
        Ok(hosts)
    }

    fn run_play(&mut self, play: &Play) -> Result<(), Fatal> {
        let hosts = self.play_hosts(play)?;
        self.out.lock().play_start(&play.name);
        if hosts.is_empty() {
            self.out.lock().line("skipping: no hosts matched");
            return Ok(());
        }
        for h in &hosts {
            self.hosts.entry(h.clone()).or_default();
            self.stats.entry(h.clone()).or_default();
        }
        let serial = match &play.serial {
            Some(Json::String(t)) if airlock_jinja::is_template(t) => {
                let vars = Vars::new(self.templar.clone(), vec![self.extra_vars.clone(), play.vars.clone()]);
                Some(
                    self.templar
                        .template_json(&Json::String(t.clone()), &vars.ctx())
                        .map_err(|e| Fatal(format!("could not template the play's serial: {}", e.msg)))?,
                )
            }
            other => other.clone(),
        };
        let batches = serial_batches(serial.as_ref(), &hosts).map_err(|e| Fatal(format!("{e} (play '{}' at {})", play.name, play.pos)))?;
        for batch in batches {
            let active = self.active_hosts(&batch);
            if active.is_empty() {
                continue;
            }
            self.run_batch(play, &active)?;
            // Ansible stops the play when every host of a batch failed.
            if self.active_hosts(&batch).is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Runs a play on one batch of its hosts (all of them without `serial`).
    fn run_batch(&mut self, play: &Play, hosts: &[String]) -> Result<(), Fatal> {
        let hosts = hosts.to_vec();
        let mut pc = self.play_ctx(play, &hosts)?;
        let base = Inherit {
            tags: play.tags.clone(),
            check_mode: play.check_mode.clone(),
            diff: play.diff.clone(),
            become_: play.become_.clone().or_else(|| self.opts.become_.then_some(Json::Bool(true))),
            become_user: play.become_user.clone(),
            environment: play.environment.iter().cloned().collect(),
            ignore_errors: play.ignore_errors.clone(),
            any_errors_fatal: play.any_errors_fatal.clone(),
            ..Default::default()
        };
        pc.play_inherit = base.clone();
        // Facts first, as Ansible's implicit "Gathering Facts" task.
        let gather = match &play.gather_facts {
            None => true,
            Some(v) => airlock_jinja::to_bool_strict(v).unwrap_or(true),
        };
        if gather && self.tags_selected(&play.tags) {
            self.out.lock().task_start("Gathering Facts", false, &play.pos.to_string());
            self.on_hosts(&mut pc, &hosts, true, |me, pc, h| {
                let r = me.gather_facts(pc, h);
                me.record(h, "Gathering Facts", r);
            });
        }
        self.run_list(&mut pc, &play.pre_tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        self.run_list(&mut pc, &play.tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        self.run_list(&mut pc, &play.post_tasks, &base, false)?;
        self.flush_handlers(&mut pc)?;
        Ok(())
    }

    /// Counts and prints a result of the executor's own (fact gathering): ok, failed, or
    /// unreachable (the host leaves the play).
    pub(super) fn record(&mut self, host: &str, name: &str, r: Json) {
        let outcome = if r.get("unreachable").and_then(Json::as_bool).unwrap_or(false) {
            self.stats.get_mut(host).unwrap().unreachable += 1;
            self.hosts.get_mut(host).unwrap().unreachable = true;
            Outcome::Unreachable
        } else if r.get("failed").and_then(Json::as_bool).unwrap_or(false) {
            self.stats.get_mut(host).unwrap().failed += 1;
            self.hosts.get_mut(host).unwrap().failed = true;
            Outcome::Failed
        } else {
            self.stats.get_mut(host).unwrap().ok += 1;
            Outcome::Ok
        };
        self.out.lock().result(host, name, outcome, &r, None, false, false);
    }

    /// The state a play starts with on these hosts (not empty): its variables, `vars_files`
    /// read (templated for the first host, as Ansible does), roles and handlers.
    pub(super) fn play_ctx<'p>(&mut self, play: &'p Play, hosts: &[String]) -> Result<PlayCtx<'p>, Fatal> {
        let groups = airlock_jinja::to_value(&Json::Object(self.inventory.groups_var()));
        let mut all_hosts: Vec<String> = self.inventory.hosts.keys().cloned().collect();
        for h in hosts {
            if !all_hosts.contains(h) {
                all_hosts.push(h.clone());
            }
        }
        let mut pc = PlayCtx {
            play,
            hosts: hosts.to_vec(),
            play_vars: play.vars.clone(),
            vars_files: Vec::new(),
            handlers: play.handlers.clone(),
            roles: play.roles.clone(),
            groups_value: groups,
            all_hosts,
            end_play: false,
            play_inherit: Inherit::default(),
        };
        pc.vars_files = self.load_vars_files(&pc, &hosts[0])?;
        Ok(pc)
    }

    /// Gathers a host's facts where it runs (the `setup` module over SSH) and keeps them for
    /// the rest of the run. Returns the task result (unreachable when the host is).
    pub(super) fn gather_facts(&mut self, pc: &PlayCtx, host: &str) -> Json {
        let facts = match self.connection_of(pc.play, host).as_str() {
            "local" => airlock_base::facts::gather(),
            "ssh" => {
                let ssh = match self.ssh_params(pc, host).and_then(|p| self.connections.ssh(&p)) {
                    Ok(c) => c,
                    Err(e) => return json!({"changed": false, "failed": true, "msg": e.to_string()}),
                };
                let mut req = escalate::ModuleRequest { module: "setup".into(), ..Default::default() };
                let r = ssh.run_module(&mut req, None, &[]);
                match r.get("ansible_facts") {
                    Some(Json::Object(f)) => f.clone(),
                    _ => return r,
                }
            }
            other => {
                return connection::unreachable_result(&format!(
                    "connection '{other}' is not supported; airlock connects with: {}",
                    connection::SUPPORTED.join(", ")
                ));
            }
        };
        let mut layer = Map::with_capacity(facts.len() * 2 + 1);
        for (k, v) in &facts {
            layer.insert(format!("ansible_{k}"), v.clone());
        }
        layer.insert("ansible_facts".into(), Json::Object(facts));
        let hs = self.hosts.get_mut(host).unwrap();
        hs.facts = Arc::new(layer);
        hs.facts_gathered = true;
        json!({"changed": false})
    }

    /// `vars_files`: each entry a file, or a list whose first existing file is used.
    fn load_vars_files(&mut self, pc: &PlayCtx, host: &str) -> Result<Vec<(Arc<Path>, VarMap)>, Fatal> {
        let mut out = Vec::new();
        for entry in &pc.play.vars_files {
            let cands: Vec<Json> = match entry {
                Json::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let layers = self.layers(pc, host, None, &Inherit::default(), None);
            let vars = Vars::new(self.templar.clone(), layers.maps());
            let mut found = None;
            let mut tried = Vec::new();
            for c in &cands {
                let name = match c {
                    Json::String(s) => self.templar.render_str(s, &vars.ctx()).map_err(|e| Fatal(format!("vars_files: {}", e.msg)))?,
                    other => other.to_string(),
                };
                let p = if Path::new(&name).is_absolute() { PathBuf::from(&name) } else { pc.play.dir.join(&name) };
                if p.is_file() {
                    found = Some(p);
                    break;
                }
                tried.push(p.display().to_string());
            }
            let Some(p) = found else {
                return Err(Fatal(format!("vars file not found: {} (play '{}' at {})", tried.join(", "), pc.play.name, pc.play.pos)));
            };
            let m = playbook::read_vars_file(&p).map_err(|e| Fatal(e.to_string()))?;
            out.push((Arc::from(p.as_path()), Arc::new(m)));
        }
        Ok(out)
    }
}

/// Splits a play's hosts into the batches `serial` asks for: a number, a percentage of the
/// play's hosts (at least one), or a list of those, whose last entry repeats. None or 0 is
/// one batch of every host.
fn serial_batches(spec: Option<&Json>, hosts: &[String]) -> Result<Vec<Vec<String>>, String> {
    let sizes: Vec<Json> = match spec {
        None | Some(Json::Null) => return Ok(vec![hosts.to_vec()]),
        Some(Json::Array(a)) if a.is_empty() => return Ok(vec![hosts.to_vec()]),
        Some(Json::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
    };
    let size_of = |v: &Json| -> Result<usize, String> {
        let text = match v {
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.trim().to_string(),
            other => return Err(format!("serial must be a number, a percentage or a list of those, not {other}")),
        };
        let n = if let Some(pct) = text.strip_suffix('%') {
            let p: f64 = pct.trim().parse().map_err(|_| format!("serial: '{text}' is not a percentage"))?;
            ((p / 100.0) * hosts.len() as f64).floor().max(1.0) as usize
        } else {
            text.parse::<usize>().map_err(|_| format!("serial: '{text}' is not a number of hosts"))?
        };
        Ok(if n == 0 { hosts.len() } else { n })
    };
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = size_of(&sizes[i.min(sizes.len() - 1)])?.min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod serial_tests {
    use super::serial_batches;
    use serde_json::json;

    fn sizes(spec: serde_json::Value, n: usize) -> Vec<usize> {
        let hosts: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
        serial_batches(Some(&spec), &hosts).unwrap().iter().map(Vec::len).collect()
    }

    #[test]
    fn serial_numbers_percentages_and_lists() {
        assert_eq!(sizes(json!(2), 5), vec![2, 2, 1]);
        assert_eq!(sizes(json!("40%"), 5), vec![2, 2, 1]);
        assert_eq!(sizes(json!("10%"), 5), vec![1, 1, 1, 1, 1]);
        assert_eq!(sizes(json!([1, "50%"]), 6), vec![1, 3, 2]);
        assert_eq!(sizes(json!(0), 3), vec![3]);
        let hosts = vec!["a".to_string()];
        assert!(serial_batches(Some(&json!("many")), &hosts).unwrap_err().contains("not a number"));
        assert_eq!(serial_batches(None, &hosts).unwrap(), vec![hosts.clone()]);
    }
}

//! The variables a task on a host sees: inventory, role, play, block, task, fact and extra-vars
//! layers, the magic variables, `hostvars`, and the secrets they hold.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use super::{Inherit, InvLayers, PlayCtx, Runner};
use crate::playbook::{Play, Role, Task};
use crate::vars::{Layers, Level, VarMap};
use airlock_jinja::{Templar, Vars};

impl Runner {
    /// Inventory layers for a host, cached per playbook directory.
    pub(super) fn inventory_layers(&mut self, host: &str, playbook_dir: &Path) -> InvLayers {
        if let Some(l) = self.inv_layers.get(playbook_dir).and_then(|m| m.get(host)) {
            return l.clone();
        }
        let sources = self.inventory.host_var_sources(host, Some(playbook_dir));
        let l: InvLayers = Arc::new(sources.into_iter().map(|s| (s.level, Arc::<str>::from(s.label), s.file.map(Arc::from), Arc::new(s.vars))).collect());
        self.inv_layers.entry(playbook_dir.to_path_buf()).or_default().insert(host.to_string(), l.clone());
        l
    }

    /// Every variable layer a task on `host` sees.
    pub(super) fn layers(&mut self, pc: &PlayCtx, host: &str, role: Option<&Arc<Role>>, inh: &Inherit, task_vars: Option<&VarMap>) -> Layers {
        let mut l = Layers::new();
        // Roles: every play role's defaults/vars, with the current role (and its
        // dependencies) last so it wins within its level.
        let mut chain: Vec<&Arc<Role>> = Vec::new();
        if let Some(r) = role {
            for d in &r.deps {
                chain.push(d);
            }
            chain.push(r);
        }
        for r in pc.roles.iter().filter(|r| !chain.iter().any(|c| Arc::ptr_eq(c, r))).chain(chain.iter().copied()) {
            push_role_layers(&mut l, r);
        }
        for (level, label, file, vars) in self.inventory_layers(host, &pc.play.dir).iter() {
            l.push_from(*level, label.clone(), file.clone(), vars.clone());
        }
        let hs = &self.hosts[host];
        l.push(Level::Facts, "facts", hs.facts.clone());
        l.push_from(Level::PlayVars, "play vars", Some(pc.play.pos.file.as_path().into()), pc.play_vars.clone());
        for (file, vars) in &pc.vars_files {
            l.push_from(Level::PlayVarsFiles, "vars_files", Some(file.clone()), vars.clone());
        }
        for v in &inh.block_vars {
            l.push(Level::BlockVars, "block vars", v.clone());
        }
        if let Some(v) = task_vars {
            l.push(Level::TaskVars, "task vars", v.clone());
        }
        l.push(Level::IncludeVars, "include_vars", hs.include_vars.clone());
        l.push(Level::SetFacts, "set_fact/register", hs.set_facts.clone());
        if let Some(r) = role {
            l.push(Level::RoleParams, format!("role {} params", r.name), r.params.clone());
        }
        for v in &inh.include_params {
            l.push(Level::IncludeParams, "include params", v.clone());
        }
        for (label, file, vars) in &self.extra_layers {
            l.push_from(Level::ExtraVars, label.clone(), file.clone(), vars.clone());
        }
        l
    }

    /// The template context for a task on a host: variable layers plus magic variables.
    pub(super) fn vars_for(&mut self, pc: &PlayCtx, host: &str, task: &Task, inh: &Inherit, top: Option<Map<String, Json>>) -> Arc<Vars> {
        let layers = self.layers(pc, host, task.role.as_ref(), inh, Some(&task.vars));
        let check_mode = self.check_mode(inh, task);
        self.context(pc, host, task.role.as_deref(), check_mode, &layers, top)
    }

    /// A template context: the layers under the magic variables (and `top`, the loop's).
    pub(super) fn context(
        &mut self,
        pc: &PlayCtx,
        host: &str,
        role: Option<&Role>,
        check_mode: bool,
        layers: &Layers,
        top: Option<Map<String, Json>>,
    ) -> Arc<Vars> {
        let mut maps = Vec::with_capacity(20);
        let mut magic = Map::new();
        magic.insert("inventory_hostname".into(), json!(host));
        magic.insert("inventory_hostname_short".into(), json!(host.split('.').next().unwrap_or(host)));
        magic.insert("playbook_dir".into(), json!(pc.play.dir.display().to_string()));
        magic.insert("ansible_check_mode".into(), json!(check_mode));
        magic.insert("ansible_diff_mode".into(), json!(self.opts.diff));
        magic.insert("ansible_verbosity".into(), json!(self.opts.verbosity));
        magic.insert("ansible_play_name".into(), json!(pc.play.name));
        magic.insert("ansible_play_hosts".into(), json!(pc.hosts.iter().filter(|h| !self.hosts[*h].failed).collect::<Vec<_>>()));
        magic.insert("ansible_play_hosts_all".into(), json!(pc.hosts));
        magic.insert("ansible_play_batch".into(), json!(pc.hosts));
        magic.insert("play_hosts".into(), json!(pc.hosts));
        magic.insert("group_names".into(), json!(self.inventory.group_names(host)));
        magic.insert("omit".into(), json!(airlock_jinja::OMIT));
        magic.insert("ansible_run_tags".into(), json!(if self.opts.tags.is_empty() { vec!["all".to_string()] } else { self.opts.tags.clone() }));
        magic.insert("ansible_skip_tags".into(), json!(self.opts.skip_tags));
        // The airlock that runs this host's modules, for tasks that start it again (the
        // embedded mirrors' service): this one, or its copy on a host reached over SSH.
        static EXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let exe = if self.connection_of(pc.play, host) == "ssh" {
            self.ssh_params(pc, host).and_then(|p| self.connections.ssh(&p)).ok().and_then(|c| c.remote_binary())
        } else {
            EXE.get_or_init(|| std::env::current_exe().ok().map(|p| p.display().to_string())).clone()
        };
        if let Some(exe) = exe {
            magic.insert("airlock_executable".into(), json!(exe));
        }
        magic.insert("ansible_version".into(), json!({"full": "2.19.0", "major": 2, "minor": 19, "revision": 0, "string": "2.19.0 (airlock)"}));
        magic.insert("role_names".into(), json!(pc.roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>()));
        if let Some(dir) = self.inventory.dirs().first() {
            magic.insert("inventory_dir".into(), json!(dir.display().to_string()));
        }
        if let Some(r) = role {
            magic.insert("role_path".into(), json!(r.path.display().to_string()));
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("ansible_role_name".into(), json!(r.name));
        }
        if let Some(top) = top {
            maps.push(Arc::new(top));
        }
        maps.push(Arc::new(magic));
        maps.extend(layers.maps());
        let vars = Vars::new(self.templar.clone(), maps);
        vars.set_value("groups", pc.groups_value.clone());
        vars.set_value("hostvars", self.hostvars(pc));
        vars
    }

    /// `hostvars`: every host's variables (without task-level ones). Rebuilt only when a
    /// host's facts or registered variables, or the play's roles, changed: the snapshot holds
    /// the host maps, so any change to one makes a new map (copy on write) and a new key.
    pub(super) fn hostvars(&mut self, pc: &PlayCtx) -> minijinja::Value {
        let mut key = Vec::with_capacity(pc.all_hosts.len() * 3 + 2);
        key.push(pc.play as *const Play as usize);
        key.push(pc.roles.len());
        for h in &pc.all_hosts {
            match self.hosts.get(h) {
                Some(hs) => key.extend([Arc::as_ptr(&hs.facts) as usize, Arc::as_ptr(&hs.set_facts) as usize, Arc::as_ptr(&hs.include_vars) as usize]),
                None => key.extend([0, 0, 0]),
            }
        }
        if let Some((k, v)) = &self.hostvars_cache
            && *k == key
        {
            return v.clone();
        }
        let mut hv = IndexMap::new();
        for h in pc.all_hosts.clone() {
            self.hosts.entry(h.clone()).or_default();
            let layers = self.layers(pc, &h, None, &Inherit::default(), None);
            let mut maps = vec![Arc::new(Map::from_iter([("inventory_hostname".to_string(), json!(h))]))];
            maps.extend(layers.maps());
            hv.insert(h, maps);
        }
        let v = minijinja::Value::from_object(HostVars { templar: self.templar.clone(), hosts: hv });
        self.hostvars_cache = Some((key, v.clone()));
        v
    }
}

impl Runner {
    /// Learns the secrets a task's arguments and variables hold, so that the output hides
    /// them (see [`crate::secrets`]). Variables whose secrets are templates are rendered here,
    /// with the task's variables; literal ones are found once per layer of variables.
    pub(super) fn note_secrets(&self, targs: &Map<String, Json>, vars: &Arc<Vars>) {
        let mut found = crate::secrets::find_in(targs);
        let templated = self.out.lock().secrets.scan_layers(vars.layers());
        for name in templated {
            if let Some(v) = vars.resolve(&name)
                && let Ok(j) = serde_json::to_value(&v)
            {
                found.extend(crate::secrets::find(&json!({ name: j })));
            }
        }
        if !found.is_empty() {
            self.out.lock().secrets.add(found);
        }
    }
}

/// A role's defaults and vars as layers.
pub(super) fn push_role_layers(l: &mut Layers, r: &Role) {
    l.push_from(Level::RoleDefaults, format!("role {} defaults", r.name), r.defaults_file.clone(), r.defaults.clone());
    l.push_from(Level::RoleVars, format!("role {} vars", r.name), r.vars_file.clone(), r.vars.clone());
}

/// `hostvars`: a map from host name to that host's variables, templated lazily.
#[derive(Debug)]
struct HostVars {
    templar: Arc<Templar>,
    hosts: IndexMap<String, Vec<VarMap>>,
}

impl minijinja::value::Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let maps = self.hosts.get(key.as_str()?)?;
        Some(Vars::new(self.templar.clone(), maps.clone()).ctx())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.hosts.keys().map(|k| minijinja::Value::from(k.as_str())).collect())
    }
}

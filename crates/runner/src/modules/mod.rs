//! Modules: one file per module, each a thin adapter that parses its arguments, does the work
//! (or, in check mode, works out what it would do) and reports changed/failed.
//!
//! Modules that need the executor's state (set_fact, include_*, import_*, meta, debug, assert,
//! fail, include_vars) are handled in `run/` and are not in this registry.

pub mod apt_repository;
pub mod archive;
pub mod cache_files;
pub mod command;
pub mod copy;
pub mod docker_container;
pub mod docker_image;
pub mod file;
pub mod find;
pub mod get_url;
pub mod helm_sync;
pub mod image_cache;
pub mod lineinfile;
pub mod offline_archive;
pub mod offline_extract;
pub mod package;
pub mod pause;
pub mod pip_download;
pub mod registry_import;
pub mod service;
pub mod setup;
pub mod shell;
pub mod slurp;
pub mod stat;
pub mod systemd;
pub mod template;
pub mod unarchive;
pub mod uri;
pub mod utils;
pub mod wait_for;
pub mod yum_repository;
pub mod yum_sync;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// A module's arguments after templating. Free-form text (`command: ls -l`) arrives as
/// `_raw_params`.
pub type Args = Map<String, Value>;

/// One file change shown by `--diff`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// What a module reports. `data` holds the module-specific keys of Ansible's result
/// (rc, stdout, stdout_lines, path, mode, stat, ...) and goes into `register`.
#[derive(Clone, Debug, Default)]
pub struct ModuleResult {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    pub diff: Vec<Diff>,
    pub data: Map<String, Value>,
}

impl ModuleResult {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed(changed: bool) -> Self {
        Self { changed, ..Self::default() }
    }
    /// Adds one key of the result.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
}

/// A module failure: Ansible reports these as `failed: true` with `msg`, plus any data.
#[derive(Clone, Debug, Default)]
pub struct ModuleFail {
    pub msg: String,
    pub data: Map<String, Value>,
}

impl ModuleFail {
    pub fn new(msg: impl Into<String>) -> Self {
        Self { msg: msg.into(), data: Map::new() }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
}

pub type ModuleOutcome = Result<ModuleResult, ModuleFail>;

/// What a module may use of the run around it.
pub struct ModuleContext<'a> {
    /// `--check` or `check_mode: true`: report what would change, change nothing.
    pub check_mode: bool,
    /// `--diff` or `diff: true`: fill `ModuleResult::diff` for changed files.
    pub diff_mode: bool,
    /// Directories searched, in order, for relative `src` paths: the role's directory first,
    /// then the playbook's. `find_file` appends `files/` or `templates/` as Ansible does.
    pub search_paths: Vec<PathBuf>,
    /// Renders a template file with the task's variables (for the `template` module).
    pub render_file: &'a dyn Fn(&Path) -> Result<String, String>,
    /// Creates progress bars for long work; hidden when output is not a terminal.
    pub progress: &'a airlock_base::progress::ProgressFactory,
    /// Files the controller sent along with the request (templates it rendered): found by
    /// their path even where they do not exist (on a host reached over SSH).
    pub provided: &'a [PathBuf],
}

impl ModuleContext<'_> {
    /// Finds `name` as Ansible does for `src`: absolute paths as they are; relative ones in
    /// `<search path>/<subdir>/name`, then `<search path>/name`, for each search path in order.
    pub fn find_file(&self, subdir: &str, name: &str) -> Option<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() {
            return (self.provided.iter().any(|f| f == p) || p.exists()).then(|| p.to_path_buf());
        }
        for base in &self.search_paths {
            for cand in [base.join(subdir).join(name), base.join(name)] {
                if cand.exists() {
                    return Some(cand);
                }
            }
        }
        None
    }
}

/// A module's entry point.
pub type ModuleFn = fn(&Args, &ModuleContext) -> ModuleOutcome;

/// Finds a module by its short name or its `ansible.builtin.`/`ansible.legacy.` name (and the
/// Docker modules by their `community.docker.` name).
pub fn lookup(name: &str) -> Option<ModuleFn> {
    if let Some(docker) = name.strip_prefix("community.docker.") {
        return match docker {
            "docker_image" => Some(docker_image::run),
            "docker_container" => Some(docker_container::run),
            _ => None,
        };
    }
    let short = name.strip_prefix("ansible.builtin.").or_else(|| name.strip_prefix("ansible.legacy.")).unwrap_or(name);
    let f: ModuleFn = match short {
        "command" => command::run,
        "shell" => shell::run,
        "file" => file::run,
        "copy" => copy::run,
        "template" => template::run,
        "lineinfile" => lineinfile::run,
        "stat" => stat::run,
        "find" => find::run,
        "get_url" => get_url::run,
        "uri" => uri::run,
        "unarchive" => unarchive::run,
        "archive" => archive::run,
        "wait_for" => wait_for::run,
        "pause" => pause::run,
        "image_cache" => image_cache::run,
        "offline_extract" => offline_extract::run,
        "yum_sync" => yum_sync::run,
        "pip_download" => pip_download::run,
        "helm_sync" => helm_sync::run,
        "cache_files" => cache_files::run,
        "offline_archive" => offline_archive::run,
        "registry_import" => registry_import::run,
        "docker_image" => docker_image::run,
        "docker_container" => docker_container::run,
        "setup" => setup::run,
        "slurp" => slurp::run,
        "yum_repository" => yum_repository::run,
        "apt_repository" => apt_repository::run,
        "systemd" | "systemd_service" => systemd::run,
        "service" => service::run,
        "package" => package::run,
        _ => return None,
    };
    Some(f)
}

/// Helpers to read and check arguments, giving Ansible's messages.
pub mod args {
    use super::{Args, ModuleFail};
    use serde_json::Value;

    /// Fails on any argument not in `allowed` (Ansible: "Unsupported parameters").
    pub fn check_known(args: &Args, module: &str, allowed: &[&str]) -> Result<(), ModuleFail> {
        let mut unknown: Vec<&str> = args.keys().map(String::as_str).filter(|k| !allowed.contains(k) && !k.starts_with('_')).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let mut supported: Vec<&str> = allowed.to_vec();
        supported.sort();
        Err(ModuleFail::new(format!(
            "Unsupported parameters for ({module}) module: {}. Supported parameters include: {}.",
            unknown.join(", "),
            supported.join(", ")
        )))
    }

    /// An optional string argument; numbers and booleans are given as their text.
    pub fn opt_str(args: &Args, key: &str) -> Result<Option<String>, ModuleFail> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(if *b { "True" } else { "False" }.to_string())),
            Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to str", type_name(v)))),
        }
    }

    /// A required string argument.
    pub fn req_str(args: &Args, key: &str) -> Result<String, ModuleFail> {
        opt_str(args, key)?.ok_or_else(|| ModuleFail::new(format!("missing required arguments: {key}")))
    }

    /// An optional boolean with Ansible's conversion (yes/no/on/off/true/false/1/0).
    pub fn opt_bool(args: &Args, key: &str) -> Result<Option<bool>, ModuleFail> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => airlock_jinja::to_bool_strict(v)
                .map(Some)
                .ok_or_else(|| ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to bool", type_name(v)))),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(args: &Args, key: &str, default: bool) -> Result<bool, ModuleFail> {
        Ok(opt_bool(args, key)?.unwrap_or(default))
    }

    /// An optional integer; numeric strings are accepted.
    pub fn opt_int(args: &Args, key: &str) -> Result<Option<i64>, ModuleFail> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or_else(|| ModuleFail::new(format!("argument '{key}' is not an integer")))
            }
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ModuleFail::new(format!("argument '{key}' is of type str and we were unable to convert to int: '{s}'"))),
            Some(v) => Err(ModuleFail::new(format!("argument '{key}' is of type {} and we were unable to convert to int", type_name(v)))),
        }
    }

    /// An optional list of strings; a comma-separated string is split as Ansible does.
    pub fn opt_list(args: &Args, key: &str) -> Result<Option<Vec<String>>, ModuleFail> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())),
            Some(Value::Array(a)) => Ok(Some(
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            )),
            Some(v) => Ok(Some(vec![v.to_string()])),
        }
    }

    /// An optional choice among `choices`.
    pub fn opt_choice(args: &Args, key: &str, choices: &[&str]) -> Result<Option<String>, ModuleFail> {
        let v = opt_str(args, key)?;
        if let Some(s) = &v
            && !choices.contains(&s.as_str())
        {
            return Err(ModuleFail::new(format!("value of {key} must be one of: {}, got: {s}", choices.join(", "))));
        }
        Ok(v)
    }

    pub use airlock_base::pyfmt::json_type_name as type_name;
}

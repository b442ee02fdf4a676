//! `ansible.cfg` as Ansible finds it (`ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg`) and
//! the matching `ANSIBLE_*` environment variables, which win over the file.

use std::path::{Path, PathBuf};

/// The settings airlock reads.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// `[defaults] inventory` / `ANSIBLE_INVENTORY`.
    pub inventory: Vec<String>,
    /// `[defaults] roles_path` / `ANSIBLE_ROLES_PATH`, colon-separated.
    pub roles_path: Vec<PathBuf>,
    /// `[defaults] forks` / `ANSIBLE_FORKS`.
    pub forks: Option<usize>,
}

impl Config {
    /// Finds and reads the configuration; a missing file is no error.
    pub fn load() -> Config {
        let mut cfg = Config::default();
        let candidates: Vec<PathBuf> = [
            std::env::var_os("ANSIBLE_CONFIG").map(PathBuf::from),
            Some(PathBuf::from("ansible.cfg")),
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".ansible.cfg")),
            Some(PathBuf::from("/etc/ansible/ansible.cfg")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(file) = candidates.into_iter().find(|p| p.is_file()) {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
                cfg.apply_ini(&text, &base);
            }
            cfg.file = Some(file);
        }
        if let Ok(v) = std::env::var("ANSIBLE_INVENTORY") {
            cfg.inventory = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        }
        if let Ok(v) = std::env::var("ANSIBLE_ROLES_PATH") {
            cfg.roles_path = split_path(&v, Path::new("."));
        }
        if let Some(n) = std::env::var("ANSIBLE_FORKS").ok().and_then(|v| v.parse().ok()) {
            cfg.forks = Some(n);
        }
        cfg
    }

    fn apply_ini(&mut self, text: &str, base: &Path) {
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().to_string();
                continue;
            }
            if section != "defaults" {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else { continue };
            let v = v.trim();
            match k.trim() {
                "inventory" | "hostfile" => {
                    self.inventory = v.split(',').filter(|s| !s.is_empty()).map(|s| expand(s.trim(), base).display().to_string()).collect();
                }
                "roles_path" => self.roles_path = split_path(v, base),
                "forks" => self.forks = v.parse().ok(),
                _ => {}
            }
        }
    }
}

fn split_path(v: &str, base: &Path) -> Vec<PathBuf> {
    v.split(':').filter(|s| !s.is_empty()).map(|s| expand(s, base)).collect()
}

/// `~` expanded; relative paths are taken from the config file's directory.
fn expand(s: &str, base: &Path) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(h) = std::env::var_os("HOME") {
            return Path::new(&h).join(rest);
        }
    let p = PathBuf::from(s);
    if p.is_absolute() { p } else { base.join(p) }
}

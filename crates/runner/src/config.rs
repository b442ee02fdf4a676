//! `ansible.cfg` as Ansible finds it (`ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg`,
//! `/etc/ansible/ansible.cfg`) and the matching `ANSIBLE_*` environment variables, which win
//! over the file.
//!
//! The rules follow ansible-core 2.19 (`config/manager.py`, `config/base.yml`): the first
//! readable file is the only one read; `ANSIBLE_CONFIG` may name a directory holding
//! `ansible.cfg`; a world-writable working directory's `ansible.cfg` is ignored with a warning;
//! the file is read as Python's `configparser` reads it (`key = value` or `key: value`, `#` and
//! `;` comment lines, `;` inline comments after whitespace); path settings expand `$VARS` and
//! `~`, and relative paths are taken from the file's directory (from the working directory when
//! they come from the environment).

use std::path::{Component, Path, PathBuf};

/// The settings airlock reads.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// `[defaults] inventory` / `ANSIBLE_INVENTORY`, comma-separated.
    pub inventory: Vec<String>,
    /// `[defaults] roles_path` / `ANSIBLE_ROLES_PATH`, colon-separated. Ansible's default when
    /// neither is set: `~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles`
    /// (`~/.ansible` being `ANSIBLE_HOME` when that is set).
    pub roles_path: Vec<PathBuf>,
    /// `[defaults] forks` / `ANSIBLE_FORKS`.
    pub forks: Option<usize>,
    /// Problems worth telling the user, worded as Ansible's warnings.
    pub warnings: Vec<String>,
}

impl Config {
    /// Finds and reads the configuration; a missing file is no error.
    pub fn load() -> Config {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let mut cfg = Config::default();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("ANSIBLE_CONFIG") {
            let p = resolve(&p.to_string_lossy(), &cwd);
            candidates.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
        }
        let cwd_cfg = cwd.join("ansible.cfg");
        if world_writable(&cwd) {
            if cwd_cfg.exists() {
                cfg.warnings.push(format!(
                    "Ansible is being run in a world writable directory ({}), ignoring it as an ansible.cfg source. For more information see https://docs.ansible.com/ansible/devel/reference_appendices/config.html#cfg-in-world-writable-dir",
                    cwd.display()
                ));
            }
        } else {
            candidates.push(cwd_cfg);
        }
        candidates.push(resolve("~/.ansible.cfg", &cwd));
        candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
        if let Some(file) = candidates.into_iter().find(|p| p.exists()) {
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let base = file.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.clone());
                    cfg.apply_ini(&text, &base);
                }
                Err(e) => cfg.warnings.push(format!("Could not read the configuration file {}: {e}", file.display())),
            }
            cfg.file = Some(file);
        }
        if let Ok(v) = std::env::var("ANSIBLE_INVENTORY") {
            cfg.inventory = split_inventory(&v, &cwd);
        }
        if let Ok(v) = std::env::var("ANSIBLE_ROLES_PATH") {
            cfg.roles_path = split_path(&v, &cwd);
        } else if cfg.roles_path.is_empty() {
            let home = std::env::var("ANSIBLE_HOME").unwrap_or_else(|_| "~/.ansible".into());
            cfg.roles_path = split_path(&format!("{home}/roles:/usr/share/ansible/roles:/etc/ansible/roles"), &cwd);
        }
        if let Some(n) = std::env::var("ANSIBLE_FORKS").ok().and_then(|v| v.trim().parse().ok()) {
            cfg.forks = Some(n);
        }
        cfg
    }

    fn apply_ini(&mut self, text: &str, base: &Path) {
        let mut section = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if let Some(s) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().to_string();
                continue;
            }
            if section != "defaults" {
                continue;
            }
            // configparser splits at the first `=` or `:`, whichever comes first.
            let Some(at) = trimmed.find(['=', ':']) else { continue };
            let (k, v) = (trimmed[..at].trim(), strip_inline_comment(&trimmed[at + 1..]));
            let v = unquote(v.trim());
            match k.to_ascii_lowercase().as_str() {
                "inventory" | "hostfile" => self.inventory = split_inventory(v, base),
                "roles_path" => self.roles_path = split_path(v, base),
                "forks" => self.forks = v.parse().ok(),
                _ => {}
            }
        }
    }
}

/// `inventory` is a `pathlist`: comma-separated, each entry a path resolved against `base`. A
/// value ending in a comma is a host list, kept whole as `-i host1,host2,` takes it.
fn split_inventory(v: &str, base: &Path) -> Vec<String> {
    let v = v.trim();
    if v.ends_with(',') {
        return vec![v.to_string()];
    }
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| resolve(s, base).display().to_string()).collect()
}

/// `roles_path` is a `pathspec`: colon-separated, each resolved.
fn split_path(v: &str, base: &Path) -> Vec<PathBuf> {
    v.split(':').filter(|s| !s.trim().is_empty()).map(|s| resolve(s.trim(), base)).collect()
}

/// Ansible's `unfrackpath(follow=False)`: `$VARS` and `~` expanded, made absolute against `base`,
/// normalised (`.` and `..` folded) without resolving symlinks.
fn resolve(s: &str, base: &Path) -> PathBuf {
    let s = expand_vars(s);
    let p = match s.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(format!("{}{rest}", h.to_string_lossy())),
            None => PathBuf::from(&s),
        },
        _ => PathBuf::from(&s),
    };
    let p = if p.is_absolute() { p } else { base.join(p) };
    normalize_lexically(&p)
}

/// `.` and `..` removed without resolving symlinks (Ansible's `unfrackpath(follow=False)`).
pub(crate) fn normalize_lexically(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Python's `os.path.expandvars`: `$NAME` and `${NAME}` of set variables; others stay as written.
fn expand_vars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        match (!name.is_empty()).then(|| std::env::var(name).ok()).flatten() {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// configparser's `inline_comment_prefixes=(';',)`: a `;` after whitespace starts a comment.
fn strip_inline_comment(v: &str) -> &str {
    let bytes = v.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b';' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &v[..i];
        }
    }
    v
}

/// Ansible unquotes string values that come from an INI file.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn world_writable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o002 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_values_as_configparser_reads_them() {
        let mut c = Config::default();
        let base = Path::new("/site/config");
        c.apply_ini(
            "# comment\n; other comment\n[defaults]\nroles_path: ./roles:../shared/roles ; site roles first\ninventory = inventory, /abs/hosts.yml\nforks=\"7\"\n[ssh_connection]\nforks = 99\n",
            base,
        );
        assert_eq!(c.roles_path, vec![PathBuf::from("/site/config/roles"), PathBuf::from("/site/shared/roles")]);
        assert_eq!(c.inventory, vec!["/site/config/inventory".to_string(), "/abs/hosts.yml".to_string()]);
        assert_eq!(c.forks, Some(7));
        let mut c = Config::default();
        c.apply_ini("[defaults]\ninventory = localhost,\n", base);
        assert_eq!(c.inventory, vec!["localhost,".to_string()]);
    }

    #[test]
    fn paths_expand_variables_and_home() {
        // SAFETY: tests of this module are the only readers of these variables.
        unsafe { std::env::set_var("AIRLOCK_CFG_TEST_DIR", "/srv/site") };
        assert_eq!(resolve("$AIRLOCK_CFG_TEST_DIR/roles", Path::new("/x")), PathBuf::from("/srv/site/roles"));
        assert_eq!(resolve("${AIRLOCK_CFG_TEST_DIR}/a/../b", Path::new("/x")), PathBuf::from("/srv/site/b"));
        assert_eq!(resolve("$AIRLOCK_CFG_TEST_UNSET/r", Path::new("/x")), PathBuf::from("/x/$AIRLOCK_CFG_TEST_UNSET/r"));
        assert_eq!(strip_inline_comment("a;b ; c"), "a;b ");
    }
}

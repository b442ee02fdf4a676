//! The `apt_repository` module: a one-line APT source (`deb [options] uri suite [components]`)
//! in `/etc/apt/sources.list.d/<filename>.list`, as Ansible's module manages it: a source
//! already enabled in any of APT's `.list` files is left alone; `state: absent` removes it
//! from every file (a file left with no lines is removed); `apt-get update` runs only when
//! something changed.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::utils::files::{FileAttrs, parse_mode};
use super::utils::{files, syscmd};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["repo", "state", "filename", "mode", "update_cache"];

/// APT's configuration directory; sources are `sources.list` and `sources.list.d/*.list`.
const APT_DIR: &str = "/etc/apt";

/// Runs `apt_repository`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "apt_repository", ALLOWED)?;
    let repo = args::req_str(a, "repo")?;
    let state = args::opt_choice(a, "state", &["present", "absent"])?.unwrap_or_else(|| "present".into());
    let update_cache = args::bool_or(a, "update_cache", true)?;
    let source = Source::parse(&repo).ok_or_else(|| {
        ModuleFail::new(format!(
            "Invalid repository string: {repo} (want one line `deb [options] URI SUITE [COMPONENT...]`, or `deb-src ...`; \
             e.g. `deb [trusted=yes] http://mirror:8004/debs ./`)"
        ))
    })?;
    let filename = match args::opt_str(a, "filename")? {
        Some(f) => format!("{}.list", f.trim_end_matches(".list")),
        None => suggest_filename(&repo),
    };
    let dir = Path::new(APT_DIR);
    let target = dir.join("sources.list.d").join(&filename);
    let mode = a.get("mode").filter(|v| !v.is_null()).cloned();

    // Every `.list` file APT reads, with its text.
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut paths = vec![dir.join("sources.list")];
    if let Ok(rd) = fs::read_dir(dir.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "list")).collect();
        more.sort();
        paths.extend(more);
    }
    for p in paths {
        match fs::read_to_string(&p) {
            Ok(t) => files.push((p, t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ModuleFail::new(format!("could not read {}: {e}", p.display()))),
        }
    }
    let enabled_in = |text: &str| text.lines().any(|l| Source::parse(l).is_some_and(|s| s == source));

    // (path, before, after): after None removes the file.
    let mut changes: Vec<(PathBuf, Option<String>, Option<String>)> = Vec::new();
    let (mut added, mut removed) = (Vec::<String>::new(), Vec::<String>::new());
    if state == "present" {
        if !files.iter().any(|(_, t)| enabled_in(t)) {
            let before = files.iter().find(|(p, _)| *p == target).map(|(_, t)| t.clone());
            let mut after = before.clone().unwrap_or_default();
            if !after.is_empty() && !after.ends_with('\n') {
                after.push('\n');
            }
            after.push_str(&source.line());
            after.push('\n');
            added.push(target.display().to_string());
            changes.push((target.clone(), before, Some(after)));
        }
    } else {
        for (p, text) in &files {
            if !enabled_in(text) {
                continue;
            }
            let kept: String = text.split_inclusive('\n').filter(|l| !Source::parse(l).is_some_and(|s| s == source)).collect();
            removed.push(p.display().to_string());
            let after = if kept.trim().is_empty() && p.parent().is_some_and(|d| d.ends_with("sources.list.d")) { None } else { Some(kept) };
            changes.push((p.clone(), Some(text.clone()), after));
        }
    }

    let mut r = ModuleResult::changed(!changes.is_empty())
        .with("repo", repo.clone())
        .with("state", state.clone())
        .with("sources_added", added)
        .with("sources_removed", removed);
    for (p, before, after) in &changes {
        if ctx.diff_mode {
            let mut d = files::content_diff(p, before.as_deref().map(str::as_bytes), after.as_deref().unwrap_or("").as_bytes());
            // As Ansible: a new file's "before" is /dev/null, a removed file's "after".
            if before.is_none() {
                d.before_header = "/dev/null".into();
            }
            if after.is_none() {
                d.after_header = "/dev/null".into();
            }
            r.diff.push(d);
        }
        if ctx.check_mode {
            continue;
        }
        match after {
            Some(text) => {
                let new = before.is_none();
                files::atomic_write(p, text.as_bytes())?;
                if new {
                    // APT reads sources as any user (apt-get's _apt sandbox): 0644 unless told.
                    let m = parse_mode(mode.as_ref().unwrap_or(&Value::from("0644")), 0o644, false)?;
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(p, fs::Permissions::from_mode(m))
                        .map_err(|e| ModuleFail::new(format!("could not set the mode of {}: {e}", p.display())))?;
                }
            }
            None => fs::remove_file(p).map_err(|e| ModuleFail::new(format!("could not remove {}: {e}", p.display())))?,
        }
    }
    // `mode` also applies to our file when the source was already there.
    if state == "present" && mode.is_some() && changes.is_empty() && target.exists() {
        r.changed |= FileAttrs { mode: mode.clone(), owner: None, group: None }.apply(&target, ctx.check_mode)?;
    }
    if r.changed && update_cache && !ctx.check_mode {
        let out = syscmd::run("apt-get", &["update", "-q"], &[("DEBIAN_FRONTEND", "noninteractive")])?;
        // apt-get update exits 0 with `W:` lines for a source it cannot read; an `E:` fails.
        if !out.ok() || out.stderr.lines().any(|l| l.starts_with("E:") || l.starts_with("W: Failed to fetch")) {
            return Err(ModuleFail::new(format!("Failed to update apt cache after changing {}: {}", target.display(), out.message()))
                .with("rc", out.rc)
                .with("stdout", out.stdout)
                .with("stderr", out.stderr));
        }
    }
    Ok(r)
}

/// One enabled one-line source, in APT's terms.
#[derive(Debug, PartialEq, Eq)]
struct Source {
    kind: String,
    options: Vec<String>,
    uri: String,
    suite: String,
    components: Vec<String>,
}

impl Source {
    /// Parses an enabled source line; None for comments, blank and malformed lines.
    fn parse(line: &str) -> Option<Source> {
        let line = line.split('#').next().unwrap_or("").trim();
        let (kind, rest) = line.split_once(char::is_whitespace)?;
        if kind != "deb" && kind != "deb-src" {
            return None;
        }
        let mut rest = rest.trim_start();
        let mut options = Vec::new();
        if let Some(r) = rest.strip_prefix('[') {
            let (opts, after) = r.split_once(']')?;
            options = opts.split_whitespace().map(str::to_string).collect();
            rest = after;
        }
        let mut words = rest.split_whitespace();
        let uri = words.next()?.to_string();
        let suite = words.next()?.to_string();
        let components: Vec<String> = words.map(str::to_string).collect();
        // An exact suite path ends in `/` and takes no components; a distribution needs one.
        if !uri.contains(':') || (suite.ends_with('/') != components.is_empty()) {
            return None;
        }
        Some(Source { kind: kind.to_string(), options, uri: uri.trim_end_matches('/').to_string(), suite, components })
    }

    /// The source as one normalised line.
    fn line(&self) -> String {
        let mut s = self.kind.clone();
        if !self.options.is_empty() {
            s.push_str(&format!(" [{}]", self.options.join(" ")));
        }
        s.push_str(&format!(" {} {}", self.uri, self.suite));
        for c in &self.components {
            s.push(' ');
            s.push_str(c);
        }
        s
    }
}

/// Ansible's file name for a source: its URI's host and path, options, scheme and user
/// dropped, every run of other characters an `_` (`deb http://mirror:8004/debs ./` ->
/// `mirror_8004_debs.list`).
fn suggest_filename(repo: &str) -> String {
    let mut line = String::new();
    let mut depth = 0;
    for c in repo.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => line.push(c),
            _ => {}
        }
    }
    let first = line.split_whitespace().find(|w| *w != "deb" && *w != "deb-src").unwrap_or("");
    let first = first.split_once("://").map_or(first, |(_, r)| r);
    let first = first.rsplit_once('@').map_or(first, |(_, r)| r);
    let words: Vec<&str> = first.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{}.list", words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_lines_parse_and_normalise() {
        let s = Source::parse("deb   [ trusted=yes arch=amd64 ]  http://m:8004/debs/   ./ ").unwrap();
        assert_eq!(s.line(), "deb [trusted=yes arch=amd64] http://m:8004/debs ./");
        assert_eq!(Source::parse(&s.line()), Some(s));
        assert!(Source::parse("deb http://deb.debian.org/debian bookworm main contrib").is_some());
        for bad in [
            "",
            "# deb http://x ./",
            "rpm http://x ./",
            "deb http://x",
            "deb http://x bookworm",
            "deb http://x ./ main",
            "deb [trusted=yes http://x ./",
            "deb nouri ./",
        ] {
            assert_eq!(Source::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names_follow_ansible() {
        assert_eq!(suggest_filename("deb http://archive.canonical.com/ubuntu hardy partner"), "archive_canonical_com_ubuntu.list");
        assert_eq!(suggest_filename("deb [trusted=yes] file:/srv/debs ./"), "file_srv_debs.list");
        assert_eq!(suggest_filename("deb https://user:pw@mirror:8004/debs ./"), "mirror_8004_debs.list");
    }
}

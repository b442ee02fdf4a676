//! The `yum_repository` module: one `[section]` of a `.repo` file in `/etc/yum.repos.d`, as
//! Ansible writes it (keys sorted, `key = value`, booleans as 1/0, lists space-separated,
//! `description` as the repository's `name`). Other sections of the same file are kept as
//! they are; the file is rewritten only when the section's settings differ.

use std::fs;
use std::path::{Path, PathBuf};

use super::utils::files;
use super::utils::files::{FILE_COMMON_ARGS, FileAttrs};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

/// How an argument is written into the section.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Bool,
    /// Space-separated (exclude, includepkgs).
    List,
    /// One per line (baseurl, gpgkey): configparser's continuation lines, `\n\t`.
    Lines,
}

/// The repository settings the module writes: argument (= key in the file) and kind.
const SETTINGS: &[(&str, Kind)] = &[
    ("baseurl", Kind::Lines),
    ("mirrorlist", Kind::Str),
    ("metalink", Kind::Str),
    ("enabled", Kind::Bool),
    ("gpgcheck", Kind::Bool),
    ("gpgkey", Kind::Lines),
    ("repo_gpgcheck", Kind::Bool),
    ("module_hotfixes", Kind::Bool),
    ("priority", Kind::Str),
    ("cost", Kind::Str),
    ("sslverify", Kind::Bool),
    ("sslcacert", Kind::Str),
    ("sslclientcert", Kind::Str),
    ("sslclientkey", Kind::Str),
    ("proxy", Kind::Str),
    ("proxy_username", Kind::Str),
    ("proxy_password", Kind::Str),
    ("username", Kind::Str),
    ("password", Kind::Str),
    ("exclude", Kind::List),
    ("includepkgs", Kind::List),
    ("metadata_expire", Kind::Str),
    ("skip_if_unavailable", Kind::Bool),
    ("timeout", Kind::Str),
];

const ALLOWED: &[&str] = &[
    "name",
    "description",
    "file",
    "reposdir",
    "state",
    "baseurl",
    "mirrorlist",
    "metalink",
    "enabled",
    "gpgcheck",
    "gpgkey",
    "repo_gpgcheck",
    "module_hotfixes",
    "priority",
    "cost",
    "sslverify",
    "sslcacert",
    "sslclientcert",
    "sslclientkey",
    "proxy",
    "proxy_username",
    "proxy_password",
    "username",
    "password",
    "exclude",
    "includepkgs",
    "metadata_expire",
    "skip_if_unavailable",
    "timeout",
    "mode",
    "owner",
    "group",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
    "unsafe_writes",
];

/// Runs `yum_repository`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "yum_repository", ALLOWED)?;
    debug_assert!(FILE_COMMON_ARGS.iter().all(|k| ALLOWED.contains(k)));
    let name = args::req_str(a, "name")?;
    if name.is_empty() || name.contains(['[', ']', '\n']) || name.chars().any(char::is_whitespace) {
        return Err(ModuleFail::new(format!("name '{name}' is not a valid repository id: use letters, digits and -_.:")));
    }
    let state = args::opt_choice(a, "state", &["present", "absent"])?.unwrap_or_else(|| "present".into());
    let file = args::opt_str(a, "file")?.unwrap_or_else(|| name.clone());
    let reposdir = args::opt_str(a, "reposdir")?.unwrap_or_else(|| "/etc/yum.repos.d".into());
    if !Path::new(&reposdir).is_dir() {
        return Err(ModuleFail::new(format!("Repo directory '{reposdir}' does not exist.")));
    }
    let path: PathBuf = Path::new(&reposdir).join(format!("{file}.repo"));
    let attrs = FileAttrs::from_args(a)?;

    let before = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ModuleFail::new(format!("could not read {}: {e}", path.display()))),
    };
    let mut chunks = split_sections(before.as_deref().unwrap_or(""));
    let at = chunks.iter().position(|c| c.section.as_deref() == Some(name.as_str()));

    let after: Option<String> = if state == "present" {
        let wanted = settings(a, &name)?;
        if at.is_some_and(|i| parse_keys(&chunks[i].text) == flatten(&wanted)) {
            before.clone()
        } else {
            let text = render(&name, &wanted);
            match at {
                Some(i) => chunks[i].text = text,
                None => {
                    // Keep a blank line between the last section and the new one.
                    if let Some(last) = chunks.last_mut() {
                        if !last.text.ends_with('\n') {
                            last.text.push('\n');
                        }
                        if !last.text.ends_with("\n\n") && last.text.trim() != "" {
                            last.text.push('\n');
                        }
                    }
                    chunks.push(Chunk { section: Some(name.clone()), text });
                }
            }
            Some(chunks.iter().map(|c| c.text.as_str()).collect())
        }
    } else {
        match at {
            None => before.clone(),
            Some(i) => {
                chunks.remove(i);
                // A file with no section left is removed, as Ansible does.
                chunks.iter().any(|c| c.section.is_some()).then(|| chunks.iter().map(|c| c.text.as_str()).collect())
            }
        }
    };

    let mut r = ModuleResult::changed(false).with("repo", name.clone()).with("state", state.clone());
    if after != before {
        r.changed = true;
        if ctx.diff_mode {
            // Headers are the file's path, new or removed, as Ansible's.
            r.diff.push(files::content_diff(&path, before.as_deref().map(str::as_bytes), after.as_deref().unwrap_or("").as_bytes()));
        }
        if !ctx.check_mode {
            match &after {
                Some(text) => files::atomic_write(&path, text.as_bytes())?,
                None => fs::remove_file(&path).map_err(|e| ModuleFail::new(format!("could not remove {}: {e}", path.display())))?,
            }
        }
    }
    if after.is_some() && path.exists() {
        r.changed |= attrs.apply(&path, ctx.check_mode)?;
    }
    Ok(r)
}

/// The section's settings, as (key, value) sorted by key, from the arguments.
fn settings(a: &Args, name: &str) -> Result<Vec<(String, String)>, ModuleFail> {
    let description = args::opt_str(a, "description")?
        .ok_or_else(|| ModuleFail::new(format!("state is present but all of the following are missing: description (repository '{name}')")))?;
    let mut out = vec![("name".to_string(), description)];
    for (key, kind) in SETTINGS {
        let value = match kind {
            Kind::Str => args::opt_str(a, key)?,
            Kind::Bool => args::opt_bool(a, key)?.map(|b| if b { "1" } else { "0" }.to_string()),
            Kind::List => args::opt_list(a, key)?.filter(|l| !l.is_empty()).map(|l| l.join(" ")),
            Kind::Lines => args::opt_list(a, key)?.filter(|l| !l.is_empty()).map(|l| l.join("\n\t")),
        };
        if let Some(v) = value {
            if v.contains('\n') && *kind != Kind::Lines {
                return Err(ModuleFail::new(format!("argument '{key}' of repository '{name}' contains a newline")));
            }
            out.push((key.to_string(), v));
        }
    }
    if !out.iter().any(|(k, _)| ["baseurl", "mirrorlist", "metalink"].contains(&k.as_str())) {
        return Err(ModuleFail::new(format!("state is present but any of the following are missing: baseurl, mirrorlist, metalink (repository '{name}')")));
    }
    out.sort();
    Ok(out)
}

/// Settings with multi-line values as `parse_keys` reads them back (one space between lines).
fn flatten(settings: &[(String, String)]) -> Vec<(String, String)> {
    settings.iter().map(|(k, v)| (k.clone(), v.split("\n\t").collect::<Vec<_>>().join(" "))).collect()
}

/// One section as Ansible (Python's configparser) writes it, with the blank line after it.
fn render(name: &str, settings: &[(String, String)]) -> String {
    let mut s = format!("[{name}]\n");
    for (k, v) in settings {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s.push('\n');
    s
}

/// A piece of a `.repo` file: the text before the first section (`section` None), or one
/// section from its `[header]` line to the next header.
#[derive(Debug)]
struct Chunk {
    section: Option<String>,
    text: String,
}

fn split_sections(text: &str) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            chunks.push(Chunk { section: Some(t[1..t.len() - 1].trim().to_string()), text: String::new() });
        } else if chunks.is_empty() {
            chunks.push(Chunk { section: None, text: String::new() });
        }
        chunks.last_mut().unwrap().text.push_str(line);
    }
    chunks
}

/// A section's settings as Yum reads them (`key = value` or `key: value`, continuation lines
/// joined with a space, comments skipped), sorted by key, for comparing with the wanted ones.
fn parse_keys(section: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in section.lines().skip(1) {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(t);
            }
            continue;
        }
        let split = t.find(['=', ':']).map(|i| (&t[..i], &t[i + 1..]));
        if let Some((k, v)) = split {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_section_is_written_as_ansible_writes_it() {
        // Compared with ansible-core 2.19's output for the same arguments.
        let a = args(
            json!({"name": "mirror", "description": "Offline mirror", "baseurl": ["http://a/x", "http://b/x"], "gpgcheck": false, "enabled": "yes", "priority": 10, "exclude": ["a", "b"]}),
        );
        let s = settings(&a, "mirror").unwrap();
        assert_eq!(
            render("mirror", &s),
            "[mirror]\nbaseurl = http://a/x\n\thttp://b/x\nenabled = 1\nexclude = a b\ngpgcheck = 0\nname = Offline mirror\npriority = 10\n\n"
        );
        assert_eq!(parse_keys(&render("mirror", &s)), flatten(&s));
    }

    #[test]
    fn sections_split_and_compare_regardless_of_layout() {
        let text = "# header\n[a]\nname=A\nbaseurl=http://a\n  http://a2\n\n[b]\nname: B\n";
        let chunks = split_sections(text);
        assert_eq!(chunks.iter().map(|c| c.section.clone()).collect::<Vec<_>>(), [None, Some("a".into()), Some("b".into())]);
        assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<String>(), text);
        assert_eq!(parse_keys(&chunks[1].text), [("baseurl".to_string(), "http://a http://a2".to_string()), ("name".into(), "A".into())]);
    }

    #[test]
    fn missing_url_or_description_is_an_error_naming_the_repository() {
        let e = settings(&args(json!({"description": "x"})), "r").unwrap_err();
        assert!(e.msg.contains("missing: baseurl, mirrorlist, metalink") && e.msg.contains("'r'"), "{}", e.msg);
        let e = settings(&args(json!({"baseurl": "http://x"})), "r").unwrap_err();
        assert!(e.msg.contains("missing: description"), "{}", e.msg);
    }
}

//! Secrets kept out of everything airlock prints or writes: registry passwords, tokens, NGC API
//! keys, passwords in URLs.
//!
//! Ansible hides the values of module parameters marked `no_log` wherever they appear in a
//! result. airlock goes further, because its users put NGC API keys in variables that many tasks
//! see: every string found under a secret-sounding name (`password`, `token`, `api_key`, ...)
//! in a task's arguments or in the variables, and every password written into a URL, is
//! replaced by `********` in the terminal output, the JSON event stream, `--diff` and error
//! messages. What modules receive is untouched.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use base64::Engine;
use serde_json::{Map, Value as Json};

/// What a secret is replaced with, as Ansible writes it.
pub const MASK: &str = "********";

/// Shorter values are not hidden: masking every `ab` in the output would garble it, and no
/// registry or index accepts such a password.
const MIN_LEN: usize = 4;

/// Whether a variable or argument name holds a secret: `password`, `url_password`,
/// `ngc_api_key`, `registry_token`, `Authorization`, ... but not `password_file`,
/// `token_url` or `ansible_ssh_private_key_file`, which name where a secret is, not the secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let Some(last) = words.last() else { return false };
    if matches!(*last, "file" | "path" | "dir" | "url" | "uri" | "name" | "type" | "env" | "var" | "length" | "expire" | "expires") {
        return false;
    }
    let secret_word = |w: &str| matches!(w, "password" | "passwd" | "pass" | "passphrase" | "secret" | "token" | "apikey" | "authorization" | "credential");
    // `pwd` is a password in `db_pwd` or `pwd_admin`, but alone it is the shell's working
    // directory (`PWD`, in every gathered `ansible_env`), which must print as it is.
    if words.iter().any(|w| secret_word(w)) || (words.len() > 1 && words.contains(&"pwd")) {
        return true;
    }
    // `api_key`, `ngc_api_key`, `access_key`, `secret_key`, `private_key`: a key's value.
    words.windows(2).any(|p| p[1] == "key" && matches!(p[0], "api" | "access" | "secret" | "private" | "auth" | "ngc"))
}

/// The secret strings held by a value found under a secret name: itself when a string, every
/// string inside when a list or mapping.
fn strings_in(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => out.push(s.clone()),
        Json::Array(a) => a.iter().for_each(|x| strings_in(x, out)),
        Json::Object(m) => m.values().for_each(|x| strings_in(x, out)),
        _ => {}
    }
}

/// The password of a URL with credentials (`https://user:secret@host/`), as written and
/// percent-decoded.
fn url_password(s: &str) -> Vec<String> {
    if !s.contains('@') || !s.contains("://") {
        return Vec::new();
    }
    // The URL may be inside longer text (an error message, a pip command line).
    let mut out = Vec::new();
    for word in s.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',') {
        if let Ok(u) = url::Url::parse(word)
            && let Some(p) = u.password()
        {
            out.push(p.to_string());
            if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
                out.push(decoded.into_owned());
            }
        }
    }
    out
}

/// Every secret in a value: strings under secret names, URL passwords anywhere, the bearer
/// or basic credentials of an `Authorization` value, and the base64 `user:password` pair that
/// Docker's `config.json` and HTTP basic auth carry.
pub fn find(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut out);
    out.retain(|s| s.len() >= MIN_LEN);
    out
}

/// [`find`] over a mapping (a task's arguments) without copying it into a value.
pub fn find_in(m: &Map<String, Json>) -> Vec<String> {
    let mut out = Vec::new();
    walk_map(m, &mut out);
    out.retain(|s| s.len() >= MIN_LEN);
    out
}

fn walk(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => out.extend(url_password(s)),
        Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
        Json::Object(m) => walk_map(m, out),
        _ => {}
    }
}

fn walk_map(m: &Map<String, Json>, out: &mut Vec<String>) {
    for (k, x) in m {
        if is_secret_name(k) {
            let start = out.len();
            strings_in(x, out);
            // A template is not the secret; its rendered value is (see scan_layers).
            let literal: Vec<String> = out.drain(start..).filter(|s| !is_template(s)).collect();
            out.extend(literal);
            // `Bearer abc`, `Basic dXNlcjpwdw==`: the credential alone too.
            let extra: Vec<String> = out[start..].iter().filter_map(|s| s.split_once(' ').map(|(_, c)| c.trim().to_string())).collect();
            out.extend(extra);
        } else {
            walk(x, out);
        }
    }
    if let (Some(Json::String(u)), Some(Json::String(p))) = (m.get("username"), m.get("password"))
        && !is_template(u)
        && !is_template(p)
    {
        out.push(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    }
}

/// Whether a raw (untemplated) value under a secret name is a template, so that only its
/// rendered value tells the secret.
fn templated_secret(v: &Json) -> bool {
    match v {
        Json::Array(a) => a.iter().any(templated_secret),
        Json::Object(m) => m.iter().any(|(k, x)| if is_secret_name(k) { has_template(x) } else { templated_secret(x) }),
        _ => false,
    }
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

/// What a layer of variables holds: its literal secrets, and the names of the variables whose
/// secrets are templates (rendered per task, where their values are known).
struct Scanned {
    layer: Weak<Map<String, Json>>,
    templated: Vec<String>,
}

/// The secrets of one run, and the replacing of them.
#[derive(Default)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<String>,
    layers: HashMap<usize, Scanned>,
}

impl Secrets {
    /// Adds secrets (duplicates and short values are ignored).
    pub fn add(&mut self, found: impl IntoIterator<Item = String>) {
        let mut grew = false;
        for s in found {
            if s.len() >= MIN_LEN && !s.contains(MASK) && !self.values.contains(&s) {
                self.values.push(s);
                grew = true;
            }
        }
        if grew {
            self.values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
    }

    /// Scans layers of variables not seen before for literal secrets; returns the names of
    /// variables whose secrets are templates, for the caller to render and [`find`].
    pub fn scan_layers(&mut self, layers: &[Arc<Map<String, Json>>]) -> Vec<String> {
        let mut templated = Vec::new();
        for l in layers {
            let key = Arc::as_ptr(l) as usize;
            if let Some(s) = self.layers.get(&key)
                && s.layer.upgrade().is_some_and(|live| Arc::ptr_eq(&live, l))
            {
                templated.extend(s.templated.iter().cloned());
                continue;
            }
            let mut names = Vec::new();
            let mut found = Vec::new();
            for (k, v) in l.iter() {
                let wrapped = Json::Object(Map::from_iter([(k.clone(), v.clone())]));
                if templated_secret(&wrapped) {
                    names.push(k.clone());
                }
                found.extend(find(&wrapped));
            }
            self.add(found);
            templated.extend(names.iter().cloned());
            self.layers.insert(key, Scanned { layer: Arc::downgrade(l), templated: names });
        }
        // Layers that are gone free their entries.
        if self.layers.len() > 4 * layers.len() + 64 {
            self.layers.retain(|_, s| s.layer.strong_count() > 0);
        }
        templated.sort();
        templated.dedup();
        templated
    }

    /// Whether any secret is known (output need not be scanned otherwise).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `s` with every secret replaced by [`MASK`].
    pub fn scrub<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if !self.values.iter().any(|v| s.contains(v.as_str())) {
            return Cow::Borrowed(s);
        }
        let mut out = s.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        Cow::Owned(out)
    }

    /// Every string (and key) of `v` scrubbed.
    pub fn scrub_json(&self, v: &mut Json) {
        if self.values.is_empty() {
            return;
        }
        match v {
            Json::String(s) => {
                if let Cow::Owned(o) = self.scrub(s) {
                    *s = o;
                }
            }
            Json::Array(a) => a.iter_mut().for_each(|x| self.scrub_json(x)),
            Json::Object(m) => {
                let keys_dirty = m.keys().any(|k| matches!(self.scrub(k), Cow::Owned(_)));
                if keys_dirty {
                    let old = std::mem::take(m);
                    for (k, x) in old {
                        m.insert(self.scrub(&k).into_owned(), x);
                    }
                }
                m.values_mut().for_each(|x| self.scrub_json(x));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_and_the_names_of_where_secrets_are() {
        for n in [
            "password",
            "url_password",
            "ngc_api_key",
            "NGC_API_KEY",
            "registry_token",
            "Authorization",
            "client_secret",
            "become_pass",
            "ansible_become_password",
            "apikey",
            "private_key",
            "docker_registry_credential",
            "db_pwd",
            "PWD_ADMIN",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "password_file",
            "token_url",
            "ansible_ssh_private_key_file",
            "username",
            "keyring",
            "monkey",
            "key",
            "pip_index_url",
            "passwords_path",
            "bypass_checks",
            "PWD",
            "pwd",
            "OLDPWD",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn finds_secrets_under_names_in_urls_headers_and_docker_auth() {
        let v = json!({
            "docker_registry_credentials": {"nvcr.io": {"username": "$oauthtoken", "password": "nvapi-abcdef"}},
            "index_url": "https://pypi-user:p%40ss-word@pypi.example/simple",
            "headers": {"Authorization": "Bearer tok-123456"},
            "short": {"password": "ab"},
            "plain": "nothing here",
        });
        let mut found = find(&v);
        found.sort();
        let auth = base64::engine::general_purpose::STANDARD.encode("$oauthtoken:nvapi-abcdef");
        let mut want = vec!["nvapi-abcdef".to_string(), "p%40ss-word".into(), "p@ss-word".into(), "Bearer tok-123456".into(), "tok-123456".into(), auth];
        want.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn scrubbing_text_json_and_keys() {
        let mut s = Secrets::default();
        s.add(["nvapi-abcdef".to_string(), "nvapi-abc".to_string(), "xy".to_string()]);
        assert_eq!(s.scrub("key nvapi-abcdef and nvapi-abc, xy"), "key ******** and ********, xy");
        assert!(matches!(s.scrub("clean"), Cow::Borrowed(_)));
        let mut v = json!({"msg": "login with nvapi-abcdef failed", "nvapi-abc": [1, "nvapi-abc"]});
        s.scrub_json(&mut v);
        assert_eq!(v, json!({"msg": "login with ******** failed", "********": [1, "********"]}));
    }

    #[test]
    fn layers_are_scanned_once_and_templated_secrets_named() {
        let mut s = Secrets::default();
        let layer = Arc::new(Map::from_iter([
            ("ngc_api_key".to_string(), json!("nvapi-literal")),
            ("docker_registry_credentials".to_string(), json!({"nvcr.io": {"username": "u", "password": "{{ ngc_api_key }}"}})),
            ("other".to_string(), json!("{{ 1 + 1 }}")),
        ]));
        assert_eq!(s.scan_layers(std::slice::from_ref(&layer)), vec!["docker_registry_credentials".to_string()]);
        assert_eq!(s.values, vec!["nvapi-literal".to_string()]);
        // Seen before: not walked again, the same names back.
        assert_eq!(s.scan_layers(&[layer]), vec!["docker_registry_credentials".to_string()]);
    }

    #[test]
    fn urls_masked_for_disk() {
        use airlock_base::http::mask_url;
        assert_eq!(mask_url("https://u:secret@h.example/simple/"), "https://u:********@h.example/simple/");
        assert_eq!(mask_url("https://h.example/simple/"), "https://h.example/simple/");
        assert_eq!(mask_url("not a url"), "not a url");
    }
}

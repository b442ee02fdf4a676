//! What a pull is told: [`OciOptions`] (platforms, concurrency, insecure registries) and
//! registry credentials, given or read from a Docker config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::{fmt, fs};

use base64::Engine;
use serde_json::Value;

use super::manifest::Platform;
use super::reference::ImageRef;

/// A user name and password (or token) for a registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or access token; never printed.
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).field("password", &"********").finish()
    }
}

/// How [`pull`](fn@super::pull) behaves.
#[derive(Clone, Debug)]
pub struct OciOptions {
    /// Platforms kept from multi-arch indexes, as `os/arch[/variant]` (`linux/amd64`,
    /// `linux/arm64/v8`); `all` keeps every manifest. Default `["linux/amd64"]`.
    pub platforms: Vec<String>,
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback registries (localhost,
    /// 127.0.0.0/8, ::1) always are.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry (`nvcr.io`, `docker.io`, `https://index.docker.io/v1/`...); they
    /// win over the Docker config file.
    pub credentials: BTreeMap<String, Credential>,
    /// The Docker config file read for `auths.<registry>.auth`; `None` means
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, when present.
    pub docker_config: Option<PathBuf>,
    /// How many blobs download at once. Default 4.
    pub concurrency: usize,
}

impl Default for OciOptions {
    fn default() -> Self {
        OciOptions {
            platforms: vec!["linux/amd64".to_string()],
            insecure_registries: Vec::new(),
            credentials: BTreeMap::new(),
            docker_config: None,
            concurrency: 4,
        }
    }
}

/// `host[:port]` of a registry named any way Docker names it (with scheme, path, or as
/// Docker Hub's aliases), lowercase; Docker Hub is `docker.io`.
pub(super) fn registry_key(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let s = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match s.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => s,
    }
}

/// Whether a registry `host[:port]` is on the loopback interface.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if registry.matches(':').count() == 1 {
        registry.split(':').next().unwrap_or("")
    } else {
        registry
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl OciOptions {
    /// The base URL of the registry API for `image`: `https://nvcr.io`,
    /// `https://registry-1.docker.io`, or `http://` for loopback and insecure registries.
    pub fn registry_url(&self, image: &ImageRef) -> String {
        let key = registry_key(&image.registry);
        let insecure = is_loopback(&image.registry)
            || self.insecure_registries.iter().any(|r| {
                let r = registry_key(r);
                r == key || r == image.api_host()
            });
        format!("{}://{}", if insecure { "http" } else { "https" }, image.api_host())
    }

    /// The platform filter: `None` for `all`.
    pub(super) fn platform_filter(&self) -> Result<Option<Vec<Platform>>, String> {
        if self.platforms.iter().any(|p| p.trim().eq_ignore_ascii_case("all")) {
            return Ok(None);
        }
        let list: Vec<Platform> = self.platforms.iter().map(|p| Platform::parse(p)).collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err("platforms is empty: list os/arch entries such as linux/amd64, or all".into());
        }
        Ok(Some(list))
    }
}

/// The Docker config file used when none is given.
pub(super) fn default_docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// A credential found for a registry, and a hint when none could be used (a credential
/// helper, an identity token).
pub(super) type Found = (Option<Credential>, Option<String>);

/// Credentials for a registry found in a Docker config file, with a hint when the file
/// points at something airlock cannot use (a credential helper, an identity token).
pub(super) fn docker_config_credential(path: &Path, key: &str) -> Result<Found, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read the Docker config {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("the Docker config {} is not valid JSON ({e}): fix or remove it", path.display()))?;
    let mut hint = None;
    if let Some(auths) = doc.get("auths").and_then(Value::as_object) {
        for (k, entry) in auths {
            if registry_key(k) != key {
                continue;
            }
            if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim().trim_end_matches('=')))
                    .map_err(|_| format!("auths.{k}.auth in {} is not base64 of user:password", path.display()))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("auths.{k}.auth in {} is not UTF-8", path.display()))?;
                let (user, pass) = raw.split_once(':').ok_or_else(|| format!("auths.{k}.auth in {} is not base64 of user:password", path.display()))?;
                return Ok((Some(Credential { username: user.to_string(), password: pass.to_string() }), None));
            }
            if let (Some(u), Some(p)) = (entry.get("username").and_then(Value::as_str), entry.get("password").and_then(Value::as_str)) {
                return Ok((Some(Credential { username: u.to_string(), password: p.to_string() }), None));
            }
            if entry.get("identitytoken").is_some() {
                hint = Some(format!("{} holds an identity token for {key}, which airlock cannot use", path.display()));
            }
        }
    }
    if hint.is_none() {
        let helper = doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.iter().find(|(k, _)| registry_key(k) == key).map(|(_, v)| v.clone()))
            .or_else(|| doc.get("credsStore").cloned());
        if let Some(name) = helper.as_ref().and_then(Value::as_str) {
            hint = Some(format!("{} keeps credentials in the credential helper docker-credential-{name}, which airlock does not run", path.display()));
        }
    }
    Ok((None, hint))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    #[test]
    fn transport_choice() {
        let o = OciOptions { insecure_registries: vec!["http://mirror.lan:5000/".into()], ..Default::default() };
        let url = |s: &str| o.registry_url(&ImageRef::parse(s).unwrap());
        assert_eq!(url("nvcr.io/nvidia/cuda"), "https://nvcr.io");
        assert_eq!(url("ubuntu"), "https://registry-1.docker.io");
        assert_eq!(url("127.0.0.1:5000/a"), "http://127.0.0.1:5000");
        assert_eq!(url("127.1.2.3:5000/a"), "http://127.1.2.3:5000");
        assert_eq!(url("localhost/a"), "http://localhost");
        assert_eq!(url("[::1]:5000/a"), "http://[::1]:5000");
        assert_eq!(url("mirror.lan:5000/a"), "http://mirror.lan:5000");
        assert_eq!(url("mirror.lan/a"), "https://mirror.lan");
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("user:pa:ss");
        fs::write(
            &path,
            json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}, "nvcr.io": {"identitytoken": "x"}}, "credHelpers": {"gcr.io": "gcloud"}})
                .to_string(),
        )
        .unwrap();
        let (c, _) = docker_config_credential(&path, "docker.io").unwrap();
        assert_eq!(c, Some(Credential { username: "user".into(), password: "pa:ss".into() }));
        let (c, hint) = docker_config_credential(&path, "nvcr.io").unwrap();
        assert!(c.is_none() && hint.unwrap().contains("identity token"));
        let (c, hint) = docker_config_credential(&path, "gcr.io").unwrap();
        assert!(c.is_none() && hint.unwrap().contains("docker-credential-gcloud"));
        assert_eq!(docker_config_credential(&path, "quay.io").unwrap(), (None, None));
        assert!(!format!("{:?}", Credential { username: "u".into(), password: "secret".into() }).contains("secret"));
    }
}

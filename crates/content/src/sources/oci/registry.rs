//! One pull's conversation with a registry: `WWW-Authenticate` challenges, tokens from their
//! realms and Basic credentials, and the requests for manifests and blobs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde_json::Value;

use super::layout::{InFlight, blob_path, sha256_of, store_blob_bytes};
use super::manifest::{Descriptor, Manifest, decode_manifest};
use super::options::{Credential, Found, OciOptions, default_docker_config, docker_config_credential, registry_key};
use super::reference::{ImageRef, sha256_hex};
use super::{OciError, OciErrorKind};
use crate::sources::fetch::{Checksum, FetchError, Fetched, Fetcher};

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How many times one request is sent again after a 401 with a fresh token. One is enough for
/// the first challenge; more are needed when tokens expire in the middle of a long pull
/// (Docker Hub's last five minutes, some registries' less), as parallel downloads can meet
/// the expiry of the token another download has just fetched.
const MAX_AUTH_RETRIES: usize = 4;

/// One `WWW-Authenticate` challenge: the scheme (lowercase) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: BTreeMap<String, String>,
}

/// Parses `WWW-Authenticate` values: `Bearer realm="...",service="...",scope="..."`, `Basic
/// realm="..."`, several challenges in one value.
fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_sep = |c: u8| c == b' ' || c == b'\t' || c == b',';
    while i < b.len() {
        while i < b.len() && is_sep(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !is_sep(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let token = &header[start..i];
        if token.is_empty() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut chars = header[i..].char_indices();
                let mut end = header.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + k + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                i = end;
            } else {
                let vs = i;
                while i < b.len() && !is_sep(b[i]) {
                    i += 1;
                }
                value.push_str(&header[vs..i]);
            }
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge { scheme: token.to_ascii_lowercase(), params: BTreeMap::new() });
        }
    }
    out
}

/// One pull's conversation with one registry: its URL, the current `Authorization` value
/// and the credentials it may use.
pub(super) struct Session<'a> {
    fetcher: &'a Fetcher,
    pub(super) image: &'a ImageRef,
    opts: &'a OciOptions,
    name: String,
    pub(super) base: String,
    /// The Authorization header in use (a Bearer token or Basic credentials); never printed.
    auth: Mutex<Option<HeaderValue>>,
    /// Held while a token is refreshed, so parallel downloads refresh it once.
    refreshing: Mutex<()>,
    /// Authorization values the registry has accepted at least once. A 401 to one of them
    /// means it expired, and a new one is worth asking for; a 401 to a value never accepted
    /// means the credentials do not reach the repository, and asking again would not help.
    accepted: Mutex<Vec<HeaderValue>>,
    credential: OnceLock<Result<Found, String>>,
}

impl<'a> Session<'a> {
    pub(super) fn new(fetcher: &'a Fetcher, image: &'a ImageRef, opts: &'a OciOptions) -> Session<'a> {
        Session {
            fetcher,
            image,
            opts,
            name: image.to_string(),
            base: opts.registry_url(image),
            auth: Mutex::new(None),
            refreshing: Mutex::new(()),
            accepted: Mutex::new(Vec::new()),
            credential: OnceLock::new(),
        }
    }

    pub(super) fn err(&self, kind: OciErrorKind, message: impl Into<String>) -> OciError {
        OciError::new(kind, self.name.clone(), self.base.clone(), message)
    }

    fn url(&self, what: &str, reference: &str) -> String {
        format!("{}/v2/{}/{what}/{reference}", self.base, self.image.repository)
    }

    /// Notes that a request with `used` succeeded.
    fn accept(&self, used: &Option<HeaderValue>) {
        if let Some(v) = used {
            let mut a = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            if !a.contains(v) {
                a.push(v.clone());
            }
        }
    }

    /// Whether a request that got a 401 with `used`, on its `attempt`-th try (from 0), should
    /// be sent again after [`Session::authenticate`]: always the first time; later only while
    /// the registry keeps expiring tokens it accepted (or another download has fetched a newer
    /// one meanwhile), and at most [`MAX_AUTH_RETRIES`] times. Credentials that never reach
    /// the repository still fail after one token, as before.
    fn retry_after_401(&self, used: &Option<HeaderValue>, attempt: usize) -> bool {
        if attempt == 0 {
            return true;
        }
        if attempt >= MAX_AUTH_RETRIES {
            return false;
        }
        let expired = used.as_ref().is_some_and(|v| self.accepted.lock().unwrap_or_else(|e| e.into_inner()).contains(v));
        expired || self.current_auth() != *used
    }

    fn current_auth(&self) -> Option<HeaderValue> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn headers(&self, accept: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(ACCEPT, HeaderValue::from_str(a).expect("valid header"));
        }
        if let Some(v) = self.current_auth() {
            h.insert(AUTHORIZATION, v);
        }
        h
    }

    /// The credential for this registry: explicit ones first, then the Docker config file
    /// (read once, only when the registry asks for authentication).
    fn credential(&self) -> Result<Found, OciError> {
        self.credential
            .get_or_init(|| {
                let key = registry_key(&self.image.registry);
                if let Some((_, c)) = self.opts.credentials.iter().find(|(k, _)| registry_key(k) == key) {
                    return Ok((Some(c.clone()), None));
                }
                match &self.opts.docker_config {
                    Some(p) if !p.is_file() => Err(format!("the Docker config {} does not exist: fix docker_config", p.display())),
                    Some(p) => docker_config_credential(p, &key),
                    None => match default_docker_config().filter(|p| p.is_file()) {
                        Some(p) => docker_config_credential(&p, &key),
                        None => Ok((None, None)),
                    },
                }
            })
            .clone()
            .map_err(|m| self.err(OciErrorKind::Credentials, m))
    }

    fn has_credential(&self) -> bool {
        matches!(self.credential.get(), Some(Ok((Some(_), _))))
    }

    /// The message for a 401 that authentication did not cure.
    fn auth_failed(&self) -> OciError {
        let reg = &self.image.registry;
        let repo = &self.image.repository;
        if self.has_credential() {
            return self.err(
                OciErrorKind::Auth,
                format!("the credentials for {reg} were not accepted for {repo} (or it does not exist): check docker_registry_credentials or run docker login {reg} again"),
            );
        }
        let hint = match self.credential.get() {
            Some(Ok((None, Some(h)))) => format!(" ({h})"),
            _ => String::new(),
        };
        self.err(
            OciErrorKind::Auth,
            format!(
                "authentication required for {reg} (or the repository {repo} does not exist): set docker_registry_credentials or run docker login {reg}{hint}"
            ),
        )
    }

    /// Answers a 401 for `url`: asks the registry for its challenge and gets a Bearer token
    /// (anonymous, or with the credential) or uses Basic credentials. `used` is the
    /// Authorization value the failed request carried; when another thread has refreshed it
    /// since, nothing is done.
    fn authenticate(&self, url: &str, used: Option<HeaderValue>) -> Result<(), OciError> {
        let _guard = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        if self.current_auth() != used {
            return Ok(());
        }
        let challenges = self.challenges(url)?;
        let (cred, _) = self.credential()?;
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.token(c, cred.as_ref())?;
            let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| self.err(OciErrorKind::Auth, "the token server sent a token that is not a valid header value"))?;
            v.set_sensitive(true);
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(c) = cred else { return Err(self.auth_failed()) };
            if used.is_some() {
                // Basic credentials were sent already and refused.
                return Err(self.auth_failed());
            }
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            let mut v = HeaderValue::from_str(&format!("Basic {raw}")).expect("base64 is a valid header value");
            v.set_sensitive(true);
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            return Ok(());
        }
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        Err(self.err(
            OciErrorKind::Auth,
            if schemes.is_empty() {
                format!("{url} answered 401 without a WWW-Authenticate challenge: check the registry address")
            } else {
                format!("the registry asks for {} authentication, which airlock does not support", schemes.join("/"))
            },
        ))
    }

    /// The challenges the registry sends for an unauthenticated request to `url` (a HEAD, so
    /// no body moves), or else for `/v2/`.
    fn challenges(&self, url: &str) -> Result<Vec<Challenge>, OciError> {
        let collect = |resp: &reqwest::blocking::Response| -> Vec<Challenge> {
            resp.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).flat_map(parse_challenges).collect()
        };
        let send = |u: &str, head: bool| {
            let rb = if head { self.fetcher.client_for(u).head(u) } else { self.fetcher.client_for(u).get(u) };
            rb.header(ACCEPT, ACCEPT_MANIFESTS).send().map_err(|e| self.fetch_error(self.fetcher.send_error(u, &e), "the registry's API"))
        };
        let resp = send(url, true)?;
        let found = if resp.status().as_u16() == 401 { collect(&resp) } else { Vec::new() };
        if !found.is_empty() {
            return Ok(found);
        }
        let ping = format!("{}/v2/", self.base);
        let resp = send(&ping, false)?;
        Ok(if resp.status().as_u16() == 401 { collect(&resp) } else { Vec::new() })
    }

    /// Gets a pull token from a Bearer challenge's realm.
    fn token(&self, challenge: &Challenge, cred: Option<&Credential>) -> Result<String, OciError> {
        let realm =
            challenge.params.get("realm").ok_or_else(|| self.err(OciErrorKind::Auth, "the registry's Bearer challenge names no realm (token server)"))?;
        let mut url = url::Url::parse(realm).map_err(|_| self.err(OciErrorKind::Auth, format!("the registry's token server '{realm}' is not a URL")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &format!("repository:{}:pull", self.image.repository));
            if let Some(c) = cred {
                q.append_pair("account", &c.username);
            }
        }
        let host = url.host_str().unwrap_or("").to_string();
        let mut headers = HeaderMap::new();
        if let Some(c) = cred {
            if url.scheme() != "https" && self.base.starts_with("https:") {
                return Err(self.err(
                    OciErrorKind::Auth,
                    format!("the token server {host} is plain HTTP; airlock does not send credentials for {} there", self.image.registry),
                ));
            }
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            let mut v = HeaderValue::from_str(&format!("Basic {raw}")).expect("base64 is a valid header value");
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let (body, _) = self.fetcher.get(url.as_str(), &headers).map_err(|e| match e {
            FetchError::Http { status: Some(401 | 403), .. } if cred.is_some() => self.err(
                OciErrorKind::Auth,
                format!(
                    "the token server {host} refused the credentials for {}: check docker_registry_credentials or run docker login {} again",
                    self.image.registry, self.image.registry
                ),
            ),
            FetchError::Http { status: Some(401 | 403), .. } => self.auth_failed(),
            FetchError::Http { status, msg, .. } => {
                self.err(OciErrorKind::Network, format!("the token server {host} failed ({}): retry later", status.map(|s| format!("HTTP {s}")).unwrap_or(msg)))
            }
            other => self.err(OciErrorKind::Network, other.to_string()),
        })?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| self.err(OciErrorKind::Auth, format!("the token server {host} did not answer with JSON")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.err(OciErrorKind::Auth, format!("the token server {host} sent no token")))
    }

    // -----------------------------------------------------------------------------------------
    // Requests

    fn network_error(&self, url: &str, msg: &str) -> OciError {
        let hint = if self.base.starts_with("https:") {
            format!("check that the registry is reachable; if it serves plain HTTP, list {} in insecure_registries", self.image.registry)
        } else {
            format!("check that the registry is running; if it serves HTTPS, remove {} from insecure_registries", self.image.registry)
        };
        self.err(OciErrorKind::Network, format!("{url}: {msg}: {hint}"))
    }

    /// An `OciError` for a failed fetch of `what` (a manifest or blob).
    fn fetch_error(&self, e: FetchError, what: &str) -> OciError {
        match e {
            FetchError::Http { status: Some(401), .. } => self.auth_failed(),
            FetchError::Http { status: Some(403), url, .. } => {
                self.err(OciErrorKind::Auth, format!("access to {what} was denied ({url}): check docker_registry_credentials for {}", self.image.registry))
            }
            FetchError::Http { status: Some(404), url, .. } if what.starts_with("blob") => self.err(
                OciErrorKind::NotFound,
                format!("{what} is missing from the registry although the manifest names it ({url}): the image there is broken; re-push it"),
            ),
            FetchError::Http { status: Some(404), url, .. } => {
                self.err(OciErrorKind::NotFound, format!("{what} not found ({url}): check the image name and tag"))
            }
            FetchError::Http { status: Some(429), msg, .. } => self.err(
                OciErrorKind::Network,
                format!(
                    "{} is rate-limiting pulls ({msg}): retry later, raise download_retries, or log in (docker_registry_credentials) for a higher limit",
                    self.image.registry
                ),
            ),
            FetchError::Http { status: Some(s), url, .. } => {
                self.err(OciErrorKind::Network, format!("{what}: HTTP {s} from {url}: retry later or check the registry"))
            }
            FetchError::Http { status: None, url, msg, .. } => self.network_error(&url, &msg),
            // Not the scheme: insecure_registries would mean plain HTTP, which this is not.
            FetchError::Tls { msg, .. } => self.err(OciErrorKind::Network, msg),
            // The registry answered, so its address and scheme are right: no hint about them.
            FetchError::Body { url, msg } | FetchError::Redirect { url, msg } => self.err(OciErrorKind::Network, format!("{what}: {url}: {msg}")),
            FetchError::Checksum { expected, actual, .. } => self.err(
                OciErrorKind::Integrity,
                format!("{what} does not match its digest (expected {expected}, got {actual}): the registry or a proxy corrupted it; retry"),
            ),
            FetchError::Io { path, msg } => self.err(OciErrorKind::Layout, format!("cannot write {path}: {msg}")),
        }
    }

    /// GETs a manifest by tag or digest, authenticating on a 401.
    fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, HeaderMap), OciError> {
        let url = self.url("manifests", reference);
        let mut attempt = 0;
        loop {
            let used = self.current_auth();
            match self.fetcher.get(&url, &self.headers(Some(ACCEPT_MANIFESTS))) {
                Ok(v) => {
                    self.accept(&used);
                    return Ok(v);
                }
                Err(FetchError::Http { status: Some(401), .. }) if self.retry_after_401(&used, attempt) => self.authenticate(&url, used)?,
                Err(e) => return Err(self.fetch_error(e, &format!("manifest {reference}"))),
            }
            attempt += 1;
        }
    }

    /// A manifest or index by tag or digest: from the layout when pinned by a digest whose blob
    /// is there and verifies, else from the registry, checked against the digest asked for,
    /// `Docker-Content-Digest` and the descriptor's size, and stored byte for byte. The bool
    /// says whether it was newly stored.
    ///
    /// With `store` false nothing is written (check mode), and the bool says whether it would be.
    pub(super) fn manifest(&self, layout: &Path, reference: &str, desc: Option<&Descriptor>, store: bool) -> Result<(Manifest, bool), OciError> {
        let pinned = if reference.contains(':') { Some(sha256_hex(reference).map_err(|(k, m)| self.err(k, m))?.to_string()) } else { None };
        let mut from_disk = None;
        if let Some(hex) = &pinned
            && let Ok(bytes) = fs::read(blob_path(layout, reference))
            && &sha256_of(&bytes) == hex
        {
            from_disk = Some(bytes);
        }
        let (bytes, content_type) = match from_disk.take() {
            Some(b) => (b, None),
            None => {
                let (bytes, headers) = self.get_manifest(reference)?;
                let actual = sha256_of(&bytes);
                if let Some(hex) = &pinned
                    && &actual != hex
                {
                    return Err(self.err(
                        OciErrorKind::Integrity,
                        format!("manifest {reference} arrived with digest sha256:{actual}: the registry or a proxy altered it; retry"),
                    ));
                }
                if let Some(hd) = headers.get("docker-content-digest").and_then(|v| v.to_str().ok())
                    && let Some(h) = hd.trim().strip_prefix("sha256:")
                    && h != actual
                {
                    return Err(self.err(
                        OciErrorKind::Integrity,
                        format!("manifest {reference}: Docker-Content-Digest says {hd} but the bytes are sha256:{actual}; retry"),
                    ));
                }
                let ct = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.split(';').next().unwrap_or("").trim().to_string());
                (bytes, ct)
            }
        };
        let hex = sha256_of(&bytes);
        let digest = format!("sha256:{hex}");
        if let Some(d) = desc
            && d.size != bytes.len() as u64
        {
            return Err(self
                .err(OciErrorKind::Integrity, format!("manifest {digest} is {} bytes but its index says {}: the index is inconsistent", bytes.len(), d.size)));
        }
        let (json, media_type) = decode_manifest(&bytes, reference, desc.map(|d| d.media_type.as_str()), content_type).map_err(|(k, m)| self.err(k, m))?;
        let path = blob_path(layout, &digest);
        let stored_new = if store {
            store_blob_bytes(&path, &hex, &bytes).map_err(|e| self.err(OciErrorKind::Layout, format!("cannot write {}: {e}", path.display())))?
        } else {
            fs::read(&path).map(|b| sha256_of(&b) != hex).unwrap_or(true)
        };
        Ok((Manifest { bytes, digest, media_type, json }, stored_new))
    }

    /// Downloads one blob into the layout (nothing when it is there and verifies), retrying
    /// with a fresh token on a 401 (see [`Session::retry_after_401`]).
    pub(super) fn blob(&self, layout: &Path, d: &Descriptor, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<Fetched, OciError> {
        let dest = blob_path(layout, &d.digest);
        let _guard = InFlight::acquire(&dest);
        let url = self.url("blobs", &d.digest);
        let sum = Checksum::sha256(&d.hex);
        let what = format!("blob {}", d.digest);
        let mut attempt = 0;
        loop {
            let used = self.current_auth();
            // The first bytes of the body show the registry took `used`: noted at once, not
            // when the blob is complete, so parallel downloads that meet its expiry meanwhile
            // know it was a working token that expired.
            let started = std::sync::atomic::AtomicBool::new(false);
            let counted = |n: u64| {
                if !started.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    self.accept(&used);
                }
                on_bytes(n)
            };
            match self.fetcher.download(&url, &dest, Some(&sum), &self.headers(None), &counted) {
                Ok(f) if f.size != d.size => {
                    return Err(
                        self.err(OciErrorKind::Integrity, format!("{what} is {} bytes but its manifest says {}: the manifest is inconsistent", f.size, d.size))
                    );
                }
                Ok(f) => {
                    if f.downloaded {
                        self.accept(&used);
                    }
                    return Ok(f);
                }
                Err(FetchError::Http { status: Some(401), .. }) if self.retry_after_401(&used, attempt) => self.authenticate(&url, used)?,
                Err(e) => return Err(self.fetch_error(e, &what)),
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn challenges_parse() {
        let c = parse_challenges(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/ubuntu:pull,push");
        let c = parse_challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(c, vec![Challenge { scheme: "basic".into(), params: BTreeMap::from([("realm".into(), "basic-realm".into())]) }]);
        let c = parse_challenges(r#"Bearer realm="https://nvcr.io/proxy_auth", service=ngc , Basic realm="a \"q\"""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["service"], "ngc");
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(c[1].params["realm"], "a \"q\"");
    }
}

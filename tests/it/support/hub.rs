//! An upstream registry shaped like Docker Hub, on host names of its own (`.ci/setup-hosts` maps
//! them to loopback addresses), all three speaking HTTPS with certificates of a private CA made
//! for the test:
//!
//! * `registry.airlock.test` (127.0.0.1): the registry API. Every request without a token gets
//!   a 401 whose Bearer challenge names a realm on another host, as registry-1.docker.io's
//!   names auth.docker.io. Manifests are forwarded to a real registry behind it; the next N
//!   manifest GETs can be made to answer `429 Too Many Requests` with a `Retry-After`, as
//!   Docker Hub does past its pull limit. Blobs answer `307` to the CDN with a signed query.
//! * `auth.airlock.test` (127.0.0.2): the token service; anonymous pulls get a token.
//! * `cdn.airlock.test` (127.0.0.3): serves blobs from the registry's storage, and refuses a
//!   request that carries an `Authorization` header besides its signed query, as S3-style CDNs
//!   do, so a client that forwards its registry token across the redirect fails.
//!
//! Behind them, Debian's docker-registry (the `registry` fixture beside this module) holds the
//! images, pushed with skopeo.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::registry::Registry;

pub const REGISTRY_HOST: &str = "registry.airlock.test";
pub const AUTH_HOST: &str = "auth.airlock.test";
pub const CDN_HOST: &str = "cdn.airlock.test";
/// The name `airlock serve` answers as when it stands in for the other upstreams over HTTPS.
pub const MIRROR_HOST: &str = "mirror.airlock.test";

/// Fails (never skips) when the test host names do not resolve to loopback.
#[track_caller]
pub fn require_hosts() {
    for host in [REGISTRY_HOST, AUTH_HOST, CDN_HOST, MIRROR_HOST] {
        let ok = (host, 443).to_socket_addrs().map(|mut a| a.all(|a| a.ip().is_loopback())).unwrap_or(false);
        assert!(ok, "{host} does not resolve to a loopback address: run `bash .ci/setup-hosts` (as root)");
    }
}

/// A private CA and one server certificate for the four test host names.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA's certificate (PEM): what a site gives as `ca_path`.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    config: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Airlock Test Lab Root CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let names: Vec<String> = [REGISTRY_HOST, AUTH_HOST, CDN_HOST, MIRROR_HOST].iter().map(|s| s.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, REGISTRY_HOST);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (ca, cert_path, key_path) = (dir.path().join("ca.crt"), dir.path().join("server.crt"), dir.path().join("server.key"));
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![cert.der().clone()];
        let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, der_key)
            .unwrap();
        Pki { dir, ca, cert: cert_path, key: key_path, config: Arc::new(config) }
    }

    /// The system's CA bundle with the test CA appended, for `SSL_CERT_FILE`.
    pub fn bundle_with_system(&self) -> PathBuf {
        let mut data = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        data.push(b'\n');
        data.extend(std::fs::read(&self.ca).unwrap());
        let p = self.dir.path().join("bundle.pem");
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// One request one of the three servers answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `registry`, `auth` or `cdn`.
    pub server: &'static str,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Whether it carried an `Authorization` header.
    pub authorization: bool,
    pub status: u16,
    pub at: Instant,
}

/// What the three servers share.
struct State {
    internal: u16,
    storage: PathBuf,
    cdn_port: AtomicUsize,
    auth_port: AtomicUsize,
    tokens: Mutex<HashSet<String>>,
    issued: AtomicUsize,
    /// The next this many manifest GETs answer 429 with this Retry-After.
    rate_limit: Mutex<(usize, String)>,
    seen: Mutex<Vec<Seen>>,
    connections: Mutex<BTreeMap<&'static str, usize>>,
    stop: AtomicBool,
}

/// The running upstream; its servers stop when dropped.
pub struct Hub {
    /// The real registry behind the front, on plain HTTP on 127.0.0.1.
    pub reg: Registry,
    pub port: u16,
    pub auth_port: u16,
    pub cdn_port: u16,
    state: Arc<State>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for (ip, port) in [("127.0.0.1", self.port), ("127.0.0.2", self.auth_port), ("127.0.0.3", self.cdn_port)] {
            let _ = TcpStream::connect((ip, port));
        }
    }
}

struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
}

struct Response {
    status: u16,
    reason: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, reason: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, reason, headers: Vec::new(), body: body.into() }
    }
    fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

impl Hub {
    /// Starts the registry behind, then the three servers with `pki`'s certificate.
    pub fn start(pki: &Pki) -> Hub {
        require_hosts();
        // reqwest (forwarding to the registry behind) runs on rustls with no provider chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let reg = Registry::start();
        let state = Arc::new(State {
            internal: reg.port,
            storage: reg.storage(),
            cdn_port: AtomicUsize::new(0),
            auth_port: AtomicUsize::new(0),
            tokens: Mutex::new(HashSet::new()),
            issued: AtomicUsize::new(0),
            rate_limit: Mutex::new((0, String::new())),
            seen: Mutex::new(Vec::new()),
            connections: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        });
        let port = listen("127.0.0.1", "registry", pki, &state, front);
        let auth_port = listen("127.0.0.2", "auth", pki, &state, auth);
        let cdn_port = listen("127.0.0.3", "cdn", pki, &state, cdn);
        state.auth_port.store(auth_port as usize, Ordering::SeqCst);
        state.cdn_port.store(cdn_port as usize, Ordering::SeqCst);
        Hub { reg, port, auth_port, cdn_port, state }
    }

    /// `registry.airlock.test:<port>`, the registry as image references name it.
    pub fn host(&self) -> String {
        format!("{REGISTRY_HOST}:{}", self.port)
    }

    /// `auth.airlock.test:<port>` and `cdn.airlock.test:<port>`.
    pub fn auth_host(&self) -> String {
        format!("{AUTH_HOST}:{}", self.auth_port)
    }
    pub fn cdn_host(&self) -> String {
        format!("{CDN_HOST}:{}", self.cdn_port)
    }

    /// Pushes `oci:<layout>:<tag>` (all platforms) to `<name>` in the registry behind;
    /// `format` as skopeo's (`v2s2` for Docker media types).
    pub fn push(&self, layout: &Path, tag: &str, name: &str, format: Option<&str>) {
        self.reg.push(layout, tag, name, format);
    }

    /// The manifest bytes the registry behind holds for `<name>` (tag or `@digest`).
    pub fn raw_manifest(&self, name: &str) -> Vec<u8> {
        self.reg.raw_manifest(name)
    }

    /// The next `n` manifest GETs answer 429 with `Retry-After: retry_after`.
    pub fn rate_limit(&self, n: usize, retry_after: &str) {
        *self.state.rate_limit.lock().unwrap() = (n, retry_after.to_string());
    }

    /// Every request answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.state.seen.lock().unwrap().clear();
        self.state.connections.lock().unwrap().clear();
    }

    /// TCP connections accepted by `server` (`registry`, `auth`, `cdn`), including those whose
    /// TLS handshake failed.
    pub fn connections(&self, server: &str) -> usize {
        self.state.connections.lock().unwrap().get(server).copied().unwrap_or(0)
    }
}

type Handler = fn(&State, &Request) -> Response;

fn listen(ip: &str, name: &'static str, pki: &Pki, state: &Arc<State>, handler: Handler) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = pki.config.clone();
    let state = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if state.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            *state.connections.lock().unwrap().entry(name).or_default() += 1;
            let (config, state) = (config.clone(), state.clone());
            std::thread::spawn(move || serve_one(stream, name, config, &state, handler));
        }
    });
    port
}

/// One TLS connection, one request (`Connection: close`, as the clients cope with).
fn serve_one(stream: TcpStream, name: &'static str, config: Arc<rustls::ServerConfig>, state: &State, handler: Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return, // a failed handshake lands here
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 65536 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let headers: BTreeMap<String, String> =
        lines.take_while(|l| !l.is_empty()).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let req = Request { method, target, headers };
    let resp = handler(state, &req);
    state.seen.lock().unwrap().push(Seen {
        server: name,
        method: req.method.clone(),
        target: req.target.clone(),
        authorization: req.headers.contains_key("authorization"),
        status: resp.status,
        at: Instant::now(),
    });
    let mut out = format!("HTTP/1.1 {} {}\r\nConnection: close\r\n", resp.status, resp.reason);
    let has_length = resp.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    out.push_str("\r\n");
    let _ = tls.write_all(out.as_bytes());
    if req.method != "HEAD" {
        let _ = tls.write_all(&resp.body);
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn json_error(status: u16, reason: &'static str, code: &str, message: &str) -> Response {
    Response::new(status, reason, format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#))
        .header("Content-Type", "application/json")
}

/// registry.airlock.test: tokens checked, manifests forwarded (or rate-limited), blobs sent to
/// the CDN.
fn front(state: &State, req: &Request) -> Response {
    let path = req.target.split('?').next().unwrap_or("");
    let token = req.headers.get("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    let authorized = token.is_some_and(|t| state.tokens.lock().unwrap().contains(&t));
    let realm = format!("https://{AUTH_HOST}:{}/token", state.auth_port.load(Ordering::SeqCst));
    let Some(rest) = path.strip_prefix("/v2/") else { return Response::new(404, "Not Found", "404 page not found\n") };
    let split = ["/manifests/", "/blobs/", "/tags/"].iter().find_map(|k| rest.find(k).map(|i| (&rest[..i], *k, &rest[i + k.len()..])));
    let challenge = |scope: Option<&str>| {
        let mut c = format!(r#"Bearer realm="{realm}",service="{REGISTRY_HOST}""#);
        if let Some(name) = scope {
            c.push_str(&format!(r#",scope="repository:{name}:pull""#));
        }
        json_error(401, "Unauthorized", "UNAUTHORIZED", "authentication required")
            .header("Www-Authenticate", &c)
            .header("Docker-Distribution-Api-Version", "registry/2.0")
    };
    let Some((name, kind, reference)) = split else {
        if rest.is_empty() {
            return if authorized { Response::new(200, "OK", "{}").header("Content-Type", "application/json") } else { challenge(None) };
        }
        return json_error(404, "Not Found", "NAME_UNKNOWN", "repository name not known to registry");
    };
    if !authorized {
        return challenge(Some(name));
    }
    if kind == "/manifests/" && req.method == "GET" {
        let mut limit = state.rate_limit.lock().unwrap();
        if limit.0 > 0 {
            limit.0 -= 1;
            return json_error(429, "Too Many Requests", "TOOMANYREQUESTS", "You have reached your unauthenticated pull rate limit.")
                .header("Retry-After", &limit.1);
        }
    }
    if kind == "/blobs/" && req.method == "GET" {
        let Some(hex) = reference.strip_prefix("sha256:") else { return json_error(400, "Bad Request", "DIGEST_INVALID", "invalid digest") };
        let location = format!(
            "https://{CDN_HOST}:{}/registry-v2/docker/registry/v2/blobs/sha256/{}/{hex}/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261207%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261207T000000Z&X-Amz-Expires=1200&X-Amz-SignedHeaders=host&X-Amz-Signature=9f2c{}",
            state.cdn_port.load(Ordering::SeqCst),
            &hex[..2.min(hex.len())],
            &hex[..8.min(hex.len())]
        );
        return Response::new(307, "Temporary Redirect", "").header("Location", &location).header("Docker-Distribution-Api-Version", "registry/2.0");
    }
    // Forward to the registry behind, as it answers.
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("http://127.0.0.1:{}{}", state.internal, req.target);
    let mut rb = if req.method == "HEAD" { client.head(&url) } else { client.get(&url) };
    if let Some(a) = req.headers.get("accept") {
        rb = rb.header("Accept", a);
    }
    let Ok(r) = rb.send() else { return Response::new(502, "Bad Gateway", "") };
    let mut resp = Response::new(r.status().as_u16(), if r.status().is_success() { "OK" } else { "Error" }, Vec::new());
    for k in ["content-type", "docker-content-digest", "content-length", "etag"] {
        if let Some(v) = r.headers().get(k).and_then(|v| v.to_str().ok()) {
            resp = resp.header(k, v);
        }
    }
    resp.body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
    resp.header("Docker-Distribution-Api-Version", "registry/2.0")
}

/// auth.airlock.test: a token for anyone who asks with a service and a scope.
fn auth(state: &State, req: &Request) -> Response {
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    if !req.target.starts_with("/token") || !query.contains("service=") {
        return Response::new(400, "Bad Request", r#"{"details":"service is required"}"#).header("Content-Type", "application/json");
    }
    let n = state.issued.fetch_add(1, Ordering::SeqCst);
    let token = format!("hub-token-{n}-{}", std::process::id());
    state.tokens.lock().unwrap().insert(token.clone());
    Response::new(200, "OK", format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300,"issued_at":"2026-12-07T00:00:00Z"}}"#))
        .header("Content-Type", "application/json")
}

/// cdn.airlock.test: blobs from the registry's storage, for signed URLs without an
/// Authorization header.
fn cdn(state: &State, req: &Request) -> Response {
    if req.headers.contains_key("authorization") {
        return Response::new(
            400,
            "Bad Request",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message><ArgumentName>Authorization</ArgumentName></Error>",
        )
        .header("Content-Type", "application/xml");
    }
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    if !query.contains("X-Amz-Signature=") {
        return Response::new(403, "Forbidden", "<Error><Code>AccessDenied</Code></Error>").header("Content-Type", "application/xml");
    }
    let Some(rel) = path.strip_prefix("/registry-v2/") else { return Response::new(404, "Not Found", "") };
    if rel.contains("..") {
        return Response::new(400, "Bad Request", "");
    }
    match std::fs::read(state.storage.join(rel)) {
        Ok(bytes) => Response::new(200, "OK", bytes).header("Content-Type", "application/octet-stream").header("Cache-Control", "public, max-age=14400"),
        Err(_) => Response::new(404, "Not Found", "<Error><Code>NoSuchKey</Code></Error>").header("Content-Type", "application/xml"),
    }
}

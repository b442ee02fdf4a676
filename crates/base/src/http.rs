//! The HTTP client shared by get_url, uri and unarchive: one place that builds the reqwest
//! blocking client (TLS provider, certificate roots, redirects, timeouts) and turns responses
//! and errors into the pieces of Ansible's results (`OK (N bytes)`, `HTTP Error 404: ...`).

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

/// Why a file of CA certificates (`ca_path`, a host's CA) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read the CA certificates {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not a PEM file of CA certificates: {source}", path.display())]
    NotPem { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{} holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)", path.display())]
    Empty { path: PathBuf },
}

/// Why a client could not be built or a request could not be sent, in the words Ansible's
/// modules use (`Request failed: <urlopen error ...>`).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `follow_redirects` is none of Ansible's values.
    #[error("value of follow_redirects must be one of: all, no, none, safe, urllib2, yes, got: {value}")]
    FollowRedirects { value: String },
    /// A proxy variable of the task's or the process's environment is not a proxy URL.
    #[error("invalid {var} in the environment: {source}")]
    Proxy { var: &'static str, source: reqwest::Error },
    /// A CA file given to trust cannot be used.
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    /// A CA certificate read from a file that the platform verifier refuses.
    #[error("a CA certificate cannot be used: {source}")]
    CaCertificate { source: reqwest::Error },
    /// A CA certificate read from a file that rustls refuses as a root.
    #[error("a CA certificate cannot be used: {source}")]
    CaRoot { source: rustls::Error },
    #[error("TLS setup failed: {source}")]
    TlsSetup { source: rustls::Error },
    #[error("failed to set up the HTTP client: {}", describe_error(source))]
    Client { source: reqwest::Error },
    #[error("invalid HTTP method {method}")]
    Method { method: String },
    /// The URL does not parse; `url` has its password masked.
    #[error("Request failed: <urlopen error unknown url type: {url} ({source})>")]
    Url { url: String, source: url::ParseError },
    #[error("invalid header name {name:?}")]
    HeaderName { name: String },
    #[error("invalid value for header {name}")]
    HeaderValue { name: String },
    /// The request got no answer (refused, timed out, certificate not trusted); `url` has
    /// its password masked.
    #[error("{}", request_failed(source))]
    Request { url: String, source: reqwest::Error },
}

/// Installs the ring crypto provider for rustls once per process.
pub fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// When to follow redirects, as Ansible's `follow_redirects`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Redirects {
    /// `none`/`no`: never.
    Never,
    /// `safe`: only for GET and HEAD.
    #[default]
    Safe,
    /// `all`/`yes`/`urllib2`: always.
    All,
}

impl Redirects {
    pub fn parse(s: Option<&str>, default: Redirects) -> Result<Redirects, HttpError> {
        Ok(match s.map(|s| s.to_ascii_lowercase()) {
            None => default,
            Some(s) => match s.as_str() {
                "none" | "no" | "false" => Redirects::Never,
                "safe" => Redirects::Safe,
                "all" | "yes" | "true" | "urllib2" => Redirects::All,
                other => return Err(HttpError::FollowRedirects { value: other.to_string() }),
            },
        })
    }
    fn follows(self, method: &Method) -> bool {
        match self {
            Redirects::Never => false,
            Redirects::Safe => method == Method::GET || method == Method::HEAD,
            Redirects::All => true,
        }
    }
}

/// How to build a client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Socket timeout (connect and each read), as Python's.
    pub timeout: Option<Duration>,
    pub validate_certs: bool,
    pub follow_redirects: bool,
    pub use_proxy: bool,
    pub user_agent: String,
    /// The task's `environment:`; proxy variables in it (http_proxy, https_proxy, all_proxy,
    /// no_proxy, any case) override the process's own, as they would for an Ansible module.
    pub env: Vec<(String, String)>,
    /// PEM files of CA certificates trusted besides the system's (Ansible's `ca_path`).
    pub ca_paths: Vec<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Some(Duration::from_secs(10)),
            validate_certs: true,
            follow_redirects: true,
            use_proxy: true,
            user_agent: "ansible-httpget".to_string(),
            env: Vec::new(),
            ca_paths: Vec::new(),
        }
    }
}

/// A blocking client with `timeout` (connect and read) and certificate checking as asked.
pub fn http_client(timeout: Option<Duration>, validate_certs: bool) -> Result<Client, HttpError> {
    build_client(&ClientOptions { timeout, validate_certs, ..ClientOptions::default() })
}

/// Whether the system has a CA bundle the platform verifier can use.
fn system_roots_available() -> bool {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return true;
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
        "/etc/pki/tls/cacert.pem",
    ]
    .iter()
    .any(|p| Path::new(p).is_file())
}

/// The certificates of a PEM file of CA certificates, or why it cannot be used.
pub fn load_ca_file(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, CaFileError> {
    use rustls::pki_types::pem::PemObject;
    let data = std::fs::read(path).map_err(|source| CaFileError::Read { path: path.to_path_buf(), source })?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CaFileError::NotPem { path: path.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty { path: path.to_path_buf() });
    }
    Ok(certs)
}

/// Why a request failed on the server's certificate (not trusted, expired, for another
/// name), when that is what failed.
pub fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    // rustls's error sits deep in the chain, behind hyper's and an io::Error whose source()
    // skips it; its text is what every layer passes on.
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if let Some(at) = text.find("invalid peer certificate: ") {
            let why = text[at + "invalid peer certificate: ".len()..].trim();
            return Some(
                match why {
                    w if w.starts_with("UnknownIssuer") => "signed by an unknown CA",
                    w if w.starts_with("Expired") => "expired",
                    w if w.starts_with("NotValidForName") => "issued for another name",
                    w if w.starts_with("BadSignature") => "its signature does not verify",
                    w => w,
                }
                .to_string(),
            );
        }
        cur = err.source();
    }
    None
}

/// Builds a client from `opts`.
pub fn build_client(opts: &ClientOptions) -> Result<Client, HttpError> {
    ensure_crypto_provider();
    let mut b = Client::builder().timeout(opts.timeout).user_agent(opts.user_agent.clone()).redirect(if opts.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    });
    if let Some(t) = opts.timeout {
        b = b.connect_timeout(t);
    }
    let env_var = |name: &str| opts.env.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    if !opts.use_proxy {
        b = b.no_proxy();
    } else if ["http_proxy", "https_proxy", "all_proxy", "no_proxy"].iter().any(|n| env_var(n).is_some()) {
        // Proxies from the task's environment, falling back to the process's for the rest.
        let get = |n: &str| env_var(n).or_else(|| std::env::var(n).ok()).or_else(|| std::env::var(n.to_uppercase()).ok());
        let no_proxy = get("no_proxy").and_then(|v| reqwest::NoProxy::from_string(&v));
        b = b.no_proxy();
        let bad = |var: &'static str, source: reqwest::Error| HttpError::Proxy { var, source };
        if let Some(u) = get("http_proxy") {
            b = b.proxy(reqwest::Proxy::http(&u).map_err(|e| bad("http_proxy", e))?.no_proxy(no_proxy.clone()));
        }
        if let Some(u) = get("https_proxy") {
            b = b.proxy(reqwest::Proxy::https(&u).map_err(|e| bad("https_proxy", e))?.no_proxy(no_proxy.clone()));
        }
        if let Some(u) = get("all_proxy") {
            b = b.proxy(reqwest::Proxy::all(&u).map_err(|e| bad("all_proxy", e))?.no_proxy(no_proxy.clone()));
        }
    }
    let mut extra = Vec::new();
    if opts.validate_certs {
        for p in &opts.ca_paths {
            extra.extend(load_ca_file(p)?);
        }
    }
    if !opts.validate_certs {
        b = b.tls_danger_accept_invalid_certs(true);
    } else if system_roots_available() {
        // The system's roots (and SSL_CERT_FILE / SSL_CERT_DIR) through the platform
        // verifier, with the site's CAs added.
        let certs =
            extra.iter().map(|d| reqwest::Certificate::from_der(d)).collect::<Result<Vec<_>, _>>().map_err(|source| HttpError::CaCertificate { source })?;
        b = b.tls_certs_merge(certs);
    } else {
        // No CA bundle on this host: fall back to the Mozilla roots compiled in.
        let provider = rustls::crypto::CryptoProvider::get_default().cloned().unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()));
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for d in extra {
            roots.add(d).map_err(|source| HttpError::CaRoot { source })?;
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| HttpError::TlsSetup { source })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        b = b.tls_backend_preconfigured(cfg);
    }
    b.build().map_err(|source| HttpError::Client { source })
}

/// One request, with Ansible's credential handling.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Send credentials up front instead of waiting for a 401 challenge.
    pub force_basic_auth: bool,
    pub follow: Redirects,
}

/// Sends `req` with a client built from `opts` (redirects decided by `req.follow` and the
/// method). Credentials are sent after a 401 challenge, or at once with `force_basic_auth`,
/// as Python's urllib does.
pub fn send(opts: &ClientOptions, req: &HttpRequest) -> Result<Response, HttpError> {
    let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| HttpError::Method { method: req.method.clone() })?;
    let mut opts = opts.clone();
    opts.follow_redirects = req.follow.follows(&method);
    let client = build_client(&opts)?;
    let url = reqwest::Url::parse(&req.url).map_err(|source| HttpError::Url { url: mask_url(&req.url), source })?;
    let mut headers = HeaderMap::new();
    for (k, v) in &req.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| HttpError::HeaderName { name: k.clone() })?;
        let value = HeaderValue::from_str(v).map_err(|_| HttpError::HeaderValue { name: k.clone() })?;
        headers.append(name, value);
    }
    let has_auth = headers.contains_key(reqwest::header::AUTHORIZATION);
    let creds = req.username.as_ref().filter(|u| !u.is_empty()).map(|u| (u.clone(), req.password.clone()));
    let build = |with_auth: bool| {
        let mut rb = client.request(method.clone(), url.clone()).headers(headers.clone());
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        if with_auth
            && !has_auth
            && let Some((u, p)) = &creds
        {
            rb = rb.basic_auth(u, p.as_ref());
        }
        rb
    };
    let first_with_auth = req.force_basic_auth && creds.is_some();
    let failed = |source: reqwest::Error| HttpError::Request { url: mask_url(&req.url), source };
    let resp = build(first_with_auth).send().map_err(failed)?;
    if resp.status() == StatusCode::UNAUTHORIZED && creds.is_some() && !first_with_auth && !has_auth {
        return build(true).send().map_err(failed);
    }
    Ok(resp)
}

/// Ansible's "Request failed" message for a request that got no answer; for a certificate
/// that is not trusted, with how to trust it.
fn request_failed(e: &reqwest::Error) -> String {
    match certificate_problem(e) {
        Some(why) => format!(
            "Request failed: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {why}>: if the server uses a private CA, set ca_path to that CA's certificate (PEM), or add it to the system's trust store or SSL_CERT_FILE"
        ),
        None => format!("Request failed: <urlopen error {}>", describe_error(e)),
    }
}

/// A short description of a reqwest error: the innermost cause, as Python words it.
pub fn describe_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    if e.is_redirect() {
        return "too many redirects (more than 10)".to_string();
    }
    let mut cur: &dyn std::error::Error = e;
    let mut io_err: Option<&std::io::Error> = None;
    let mut last = e.to_string();
    while let Some(src) = cur.source() {
        if let Some(io) = src.downcast_ref::<std::io::Error>() {
            io_err = Some(io);
        }
        last = src.to_string();
        cur = src;
    }
    if let Some(io) = io_err {
        if let Some(code) = io.raw_os_error() {
            let text = io.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            return format!("[Errno {code}] {text}");
        }
        if io.kind() == std::io::ErrorKind::TimedOut {
            return "timed out".to_string();
        }
    }
    last
}

/// Why reading a response's body failed, in words a user can act on: a timeout (with the
/// `timeout` that fired), a reset, or a server that closed the connection early, each with how
/// many bytes had arrived of how many promised. reqwest reports all of these as "request or
/// response body error", which says nothing; the cause is further down the error's sources.
pub fn describe_body_error(e: &std::io::Error, timeout: Option<Duration>, received: u64, expected: Option<u64>) -> String {
    let of = match expected {
        Some(n) => format!("{received} of {n} bytes"),
        None => format!("{received} bytes"),
    };
    let mut timed_out = e.kind() == std::io::ErrorKind::TimedOut;
    let mut reset = e.kind() == std::io::ErrorKind::ConnectionReset;
    let mut closed = e.kind() == std::io::ErrorKind::UnexpectedEof;
    let mut last = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            timed_out |= r.is_timeout();
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            closed |= h.is_incomplete_message();
            timed_out |= h.is_timeout();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
            reset |= matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::BrokenPipe);
            closed |= io.kind() == std::io::ErrorKind::UnexpectedEof;
        }
        last = err.to_string();
        cur = err.source();
    }
    if timed_out {
        let secs = timeout.map(|t| format!(" after {} s", t.as_secs_f64())).unwrap_or_default();
        format!("timed out{secs} reading the body ({of} arrived): the server stopped sending; raise timeout if it is only slow")
    } else if reset {
        format!("the connection was reset after {of} of the body: retry, or check the proxy or server")
    } else if closed {
        format!("the server closed the connection after {of} of the body: retry, or check the proxy or server")
    } else {
        format!("reading the body failed after {of}: {last}")
    }
}

/// Where copying a response body stopped: in reading the body (the server's or the network's
/// doing) or in writing it out (this host's).
#[derive(Debug)]
pub enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies a response body into `out`, giving each chunk to `each` (hashers, a progress bar)
/// after it is written; the bytes copied, or where it stopped and how many bytes had arrived.
pub fn copy_body(body: &mut dyn std::io::Read, out: &mut dyn std::io::Write, mut each: impl FnMut(&[u8])) -> Result<u64, (CopyError, u64)> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut size = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(size),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((CopyError::Read(e), size)),
        };
        out.write_all(&buf[..n]).map_err(|e| (CopyError::Write(e), size))?;
        size += n as u64;
        each(&buf[..n]);
    }
}

/// Why a request got no answer: a timeout (naming the `timeout` that fired) or the usual
/// [`describe_error`] text.
pub fn describe_send_error(e: &reqwest::Error, timeout: Option<Duration>) -> String {
    if e.is_timeout() {
        let secs = timeout.map(|t| format!(" after {} s", t.as_secs_f64())).unwrap_or_default();
        return format!("timed out{secs} waiting for an answer: the server accepted the connection and said nothing; raise timeout if it is only slow");
    }
    if e.is_redirect() {
        return "too many redirects (more than 10; a redirect loop?): check the URL".to_string();
    }
    describe_error(e)
}

/// Ansible's `mask_url`: the password of `user:pass@` replaced by `********`.
pub fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `OK (N bytes)` from the Content-Length header, as fetch_url's message.
pub fn ok_msg(headers: &HeaderMap) -> String {
    let len = headers.get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    format!("OK ({len} bytes)")
}

/// `HTTP Error 404: Not Found`, as urllib's HTTPError.
pub fn http_error_msg(status: StatusCode) -> String {
    format!("HTTP Error {}: {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

/// The `filename` parameter of a Content-Disposition header, without any directory part.
pub fn disposition_filename(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(reqwest::header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let mut found: Option<String> = None;
    for part in split_params(v).into_iter().skip(1) {
        let Some((k, val)) = part.split_once('=') else { continue };
        let k = k.trim().to_ascii_lowercase();
        let val = val.trim();
        if k == "filename*" {
            // RFC 5987: charset'lang'percent-encoded
            let enc = val.splitn(3, '\'').nth(2).unwrap_or(val);
            let dec: String =
                url::form_urlencoded::parse(format!("x={}", enc.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
            found = Some(dec);
            break;
        }
        if k == "filename" {
            let val = if val.len() >= 2 && val.starts_with('"') && val.ends_with('"') {
                val[1..val.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
            } else {
                val.to_string()
            };
            found = Some(val);
        }
    }
    let f = found?;
    let base = f.rsplit(['/', '\\']).next().unwrap_or("").to_string();
    (!base.is_empty() && base != "." && base != "..").then_some(base)
}

/// Splits a header value at `;` outside double quotes.
fn split_params(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut esc = false;
    for c in v.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' if in_q => {
                cur.push(c);
                esc = true;
            }
            '"' => {
                in_q = !in_q;
                cur.push(c);
            }
            ';' if !in_q => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// get_url's `url_filename`: the last path segment, or `index.html`.
pub fn url_filename(url: &str) -> String {
    let path = match reqwest::Url::parse(url) {
        Ok(u) => u.path().to_string(),
        Err(_) => url.to_string(),
    };
    let base = path.rsplit('/').next().unwrap_or("");
    if base.is_empty() { "index.html".to_string() } else { base.to_string() }
}

/// Headers as Ansible returns them: names lowercased with `-` turned to `_`, repeated
/// headers joined with `, `.
pub fn headers_to_result(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for (name, value) in headers {
        let key = name.as_str().to_ascii_lowercase().replace('-', "_");
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match m.get_mut(&key) {
            Some(serde_json::Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                m.insert(key, v.into());
            }
        }
    }
    m
}

#[cfg(any(test, feature = "test-support"))]
pub mod testserver {
    //! A tiny HTTP/1.1 server on 127.0.0.1 for the modules' tests: built for this crate's
    //! tests and, with the `test-support` feature, for the tests of the crates above.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A canned response.
    #[derive(Clone, Debug)]
    pub struct Canned {
        pub status: u16,
        pub reason: &'static str,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Canned {
        pub fn ok(body: &[u8], ctype: &str) -> Self {
            Canned { status: 200, reason: "OK", headers: vec![("Content-Type".into(), ctype.into())], body: body.to_vec() }
        }
        pub fn status(status: u16, reason: &'static str) -> Self {
            Canned { status, reason, headers: vec![("Content-Type".into(), "text/plain".into())], body: reason.as_bytes().to_vec() }
        }
        pub fn redirect(to: &str) -> Self {
            Canned { status: 302, reason: "Found", headers: vec![("Location".into(), to.into())], body: vec![] }
        }
        pub fn header(mut self, k: &str, v: &str) -> Self {
            self.headers.push((k.into(), v.into()));
            self
        }
    }

    /// A request as the server saw it.
    #[derive(Clone, Debug, Default)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub headers: HashMap<String, String>,
        pub body: Vec<u8>,
    }

    pub struct Server {
        pub base: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
    }

    /// Serves `routes` (path -> response; a path of "/auth/..." demands basic auth user:pass)
    /// until the process ends.
    pub fn serve(routes: Vec<(&str, Canned)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Canned> = routes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let routes = routes.clone();
                let seen = seen2.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let path = parts.next().unwrap_or("").to_string();
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                        let mut body = vec![0u8; len];
                        reader.read_exact(&mut body).unwrap();
                        seen.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), headers: headers.clone(), body });
                        let mut resp = routes.get(&path).cloned().unwrap_or(Canned::status(404, "Not Found"));
                        if path.starts_with("/auth/") && headers.get("authorization").map(String::as_str) != Some("Basic dXNlcjpwYXNz") {
                            resp = Canned::status(401, "Unauthorized").header("WWW-Authenticate", "Basic realm=\"x\"");
                        }
                        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, resp.reason);
                        for (k, v) in &resp.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
                        let mut bytes = out.into_bytes();
                        if method != "HEAD" {
                            bytes.extend_from_slice(&resp.body);
                        }
                        if stream.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Server { base, seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames() {
        let mut h = HeaderMap::new();
        h.insert("content-disposition", HeaderValue::from_static("attachment; filename=\"../x/evil.tar.gz\""));
        assert_eq!(disposition_filename(&h).as_deref(), Some("evil.tar.gz"));
        h.insert("content-disposition", HeaderValue::from_static("attachment; filename*=UTF-8''na%20me.txt"));
        assert_eq!(disposition_filename(&h).as_deref(), Some("na me.txt"));
        h.insert("content-disposition", HeaderValue::from_static("inline"));
        assert_eq!(disposition_filename(&h), None);
        assert_eq!(url_filename("http://h/a/b.tgz?x=1"), "b.tgz");
        assert_eq!(url_filename("http://h/"), "index.html");
        assert_eq!(mask_url("http://u:secret@h/x"), "http://u:********@h/x");
        assert_eq!(http_error_msg(StatusCode::NOT_FOUND), "HTTP Error 404: Not Found");
    }

    #[test]
    fn basic_auth_after_challenge() {
        let srv = testserver::serve(vec![("/auth/x", testserver::Canned::ok(b"secret", "text/plain"))]);
        let req = HttpRequest {
            method: "GET".into(),
            url: format!("{}/auth/x", srv.base),
            username: Some("user".into()),
            password: Some("pass".into()),
            ..Default::default()
        };
        let r = send(&ClientOptions::default(), &req).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "secret");
        let r = send(&ClientOptions::default(), &HttpRequest { username: None, ..req }).unwrap();
        assert_eq!(r.status(), 401);
    }

    #[test]
    fn proxy_from_task_environment() {
        // The "proxy" is a plain server that answers every request; the URL's host does not exist.
        let srv = testserver::serve(vec![("http://nonexistent.invalid/x", testserver::Canned::ok(b"via proxy", "text/plain"))]);
        let opts = ClientOptions { env: vec![("HTTP_PROXY".into(), srv.base.clone())], ..ClientOptions::default() };
        let req = HttpRequest { method: "GET".into(), url: "http://nonexistent.invalid/x".into(), ..Default::default() };
        let r = send(&opts, &req).unwrap();
        assert_eq!(r.text().unwrap(), "via proxy");
        let opts =
            ClientOptions { env: vec![("http_proxy".into(), srv.base.clone()), ("no_proxy".into(), "nonexistent.invalid".into())], ..ClientOptions::default() };
        assert!(send(&opts, &req).is_err());
    }

    #[test]
    fn error_messages() {
        let e = Redirects::parse(Some("Sometimes"), Redirects::Safe).unwrap_err();
        assert_eq!(e.to_string(), "value of follow_redirects must be one of: all, no, none, safe, urllib2, yes, got: sometimes");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_ca_file(&missing).unwrap_err();
        assert!(matches!(&e, CaFileError::Read { path, .. } if *path == missing), "{e:?}");
        assert!(e.to_string().starts_with(&format!("cannot read the CA certificates {}: ", missing.display())), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let opts = ClientOptions { ca_paths: vec![empty.clone()], ..ClientOptions::default() };
        let e = build_client(&opts).unwrap_err();
        assert!(matches!(&e, HttpError::CaFile(CaFileError::Empty { path }) if *path == empty), "{e:?}");
        assert_eq!(e.to_string(), format!("{} holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)", empty.display()));
        let req =
            |method: &str, url: &str, headers: Vec<(String, String)>| HttpRequest { method: method.into(), url: url.into(), headers, ..Default::default() };
        let e = send(&ClientOptions::default(), &req("GE T", "http://127.0.0.1/", vec![])).unwrap_err();
        assert_eq!(e.to_string(), "invalid HTTP method GE T");
        let e = send(&ClientOptions::default(), &req("GET", "http://exa mple/", vec![])).unwrap_err();
        assert!(matches!(&e, HttpError::Url { url, .. } if url == "http://exa mple/"), "{e:?}");
        assert_eq!(e.to_string(), "Request failed: <urlopen error unknown url type: http://exa mple/ (invalid international domain name)>");
        let e = send(&ClientOptions::default(), &req("GET", "http://127.0.0.1/", vec![("a b".into(), "v".into())])).unwrap_err();
        assert_eq!(e.to_string(), "invalid header name \"a b\"");
        let e = send(&ClientOptions::default(), &req("GET", "http://127.0.0.1/", vec![("a".into(), "v\n".into())])).unwrap_err();
        assert_eq!(e.to_string(), "invalid value for header a");
    }

    #[test]
    fn clients_build() {
        assert!(http_client(Some(Duration::from_secs(1)), true).is_ok());
        assert!(http_client(None, false).is_ok());
    }

    #[test]
    fn connection_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let req = HttpRequest { method: "GET".into(), url: format!("http://127.0.0.1:{port}/"), ..Default::default() };
        let err = send(&ClientOptions::default(), &req).unwrap_err();
        assert!(matches!(err, HttpError::Request { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("Request failed: <urlopen error"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
    }
}

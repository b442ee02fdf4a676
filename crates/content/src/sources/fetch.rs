//! Downloads every source uses: retries with backoff and jitter (honouring `Retry-After` up to
//! a cap), checksums verified while streaming, atomic writes (a `.part` file renamed into place
//! only when verified), skipping what is already in place and verified, bounded concurrency,
//! and the certificate authorities a site trusts (one bundle for every host, or per host).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use airlock_base::digest::{self, Hasher};
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;

/// A digest algorithm of a checksum (a checksum text names sha256, sha512, sha1 or md5).
pub use airlock_base::digest::Algorithm as Algo;

/// An expected digest, as `sha256:<hex>` (also sha512, sha1, md5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub algo: Algo,
    pub hex: String,
}

/// Why a checksum text does not parse; it names the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    #[error("unsupported checksum algorithm '{algo}' in '{spec}'")]
    Algorithm { algo: String, spec: String },
    #[error("checksum '{spec}' is not hexadecimal")]
    NotHex { spec: String },
}

impl Checksum {
    /// Parses `algo:hex`; a bare 64-hex string is sha256.
    pub fn parse(s: &str) -> Result<Checksum, ChecksumError> {
        let (algo, hex) = match s.split_once(':') {
            Some((a, h)) => (a.to_ascii_lowercase(), h.trim().to_ascii_lowercase()),
            None => ("sha256".to_string(), s.trim().to_ascii_lowercase()),
        };
        let algo = match algo.as_str() {
            "sha256" => Algo::Sha256,
            "sha512" => Algo::Sha512,
            "sha1" | "sha" => Algo::Sha1,
            "md5" => Algo::Md5,
            other => return Err(ChecksumError::Algorithm { algo: other.to_string(), spec: s.to_string() }),
        };
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ChecksumError::NotHex { spec: s.to_string() });
        }
        Ok(Checksum { algo, hex })
    }

    pub fn sha256(hex: &str) -> Checksum {
        Checksum { algo: Algo::Sha256, hex: hex.to_ascii_lowercase() }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.hex)
    }
}

/// Hashes a file: its sha256 and, when `algo` is another, that digest too.
pub fn hash_file(path: &Path, algo: Algo) -> std::io::Result<(String, String)> {
    if algo == Algo::Sha256 {
        let (_, s) = digest::sha256_file(path)?;
        return Ok((s.clone(), s));
    }
    let (_, mut hexes) = digest::hash_file(path, &[Algo::Sha256, algo])?;
    let other = hexes.pop().expect("two digests");
    Ok((hexes.pop().expect("two digests"), other))
}

/// A download failure, naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {msg}")]
    Http {
        url: String,
        status: Option<u16>,
        msg: String,
        /// How long the server asked to wait (`Retry-After` of a 429 or 503).
        retry_after: Option<Duration>,
    },
    #[error("{url}: checksum mismatch for {dest}: expected {expected}, got {actual}")]
    Checksum { url: String, dest: String, expected: String, actual: String },
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// A body that stopped short (reset, early close, stall) after the headers came: retried,
    /// and told apart from a server that cannot be reached, whose fix differs.
    #[error("{url}: {msg}")]
    Body { url: String, msg: String },
    /// Redirects that never end: not retried, as the next attempt would loop the same way.
    #[error("{url}: {msg}")]
    Redirect { url: String, msg: String },
    /// A server certificate that is not trusted: not retried, the message says how to trust it.
    #[error("{url}: {msg}")]
    Tls { url: String, msg: String },
}

impl FetchError {
    /// Whether another try may go better: a connection that failed or a body cut off, or an
    /// HTTP 408, 429 or 5xx. Not a 4xx, a checksum, a local write, or a redirect loop.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => retryable(*status),
            FetchError::Body { .. } => true,
            FetchError::Checksum { .. } | FetchError::Io { .. } | FetchError::Redirect { .. } | FetchError::Tls { .. } => false,
        }
    }
}

/// Why a [`Fetcher`] could not be set up: a client could not be built (a CA file that cannot be
/// used, a proxy variable that is not a URL).
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// The client for every host.
    #[error(transparent)]
    Client(airlock_base::http::HttpError),
    /// The client for a host of `host_ca_paths`.
    #[error("{source} (a CA given for {host})")]
    HostClient { host: String, source: airlock_base::http::HttpError },
}

/// What a download did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// False when the file was already in place and verified.
    pub downloaded: bool,
}

/// The longest `Retry-After` waited for by default: a server asking for more is reported at
/// once ("retry later") rather than holding the run for an unbounded time.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How a `Fetcher` behaves.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub retries: u32,
    pub timeout: Duration,
    pub validate_certs: bool,
    /// First delay between retries; doubles each time, with jitter.
    pub backoff: Duration,
    /// The longest `Retry-After` to wait for; a longer one fails the download at once.
    pub max_retry_after: Duration,
    /// CA certificates (a PEM bundle) trusted for every host, besides the system's.
    pub ca_path: Option<PathBuf>,
    /// CA certificates trusted for one host, as `host` or `host:port`, besides the system's
    /// and `ca_path`.
    pub host_ca_paths: Vec<(String, PathBuf)>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            retries: 3,
            timeout: Duration::from_secs(60),
            validate_certs: true,
            backoff: Duration::from_millis(500),
            max_retry_after: MAX_RETRY_AFTER,
            ca_path: None,
            host_ca_paths: Vec::new(),
        }
    }
}

/// A shared HTTP client for downloads.
pub struct Fetcher {
    /// The client for hosts without a CA of their own.
    pub client: Client,
    /// Clients for the hosts of `host_ca_paths`, keyed as written there.
    host_clients: Vec<(String, Client)>,
    pub opts: FetchOptions,
}

fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The error for an HTTP status that is not a success.
fn status_error(url: &str, status: reqwest::StatusCode, headers: &HeaderMap) -> FetchError {
    let retry_after = if matches!(status.as_u16(), 429 | 503) { retry_after(headers) } else { None };
    FetchError::Http { url: url.to_string(), status: Some(status.as_u16()), msg: format!("HTTP {status}"), retry_after }
}

/// `host:port` and `host` of a URL, as `host_ca_paths` and Docker's certs.d name them.
fn host_keys(url: &str) -> Option<(String, String)> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let with_port = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    Some((with_port, host))
}

impl Fetcher {
    pub fn new(opts: FetchOptions) -> Result<Fetcher, FetcherError> {
        use airlock_base::http::{ClientOptions, build_client};
        let base = ClientOptions {
            timeout: Some(opts.timeout),
            validate_certs: opts.validate_certs,
            ca_paths: opts.ca_path.iter().cloned().collect(),
            ..Default::default()
        };
        let client = build_client(&base).map_err(FetcherError::Client)?;
        let mut host_clients: Vec<(String, Client)> = Vec::new();
        for (host, _) in &opts.host_ca_paths {
            let key = host.to_ascii_lowercase();
            if host_clients.iter().any(|(h, _)| *h == key) {
                continue;
            }
            // Every file given for the host (Docker's certs.d may hold several `*.crt`).
            let mut o = base.clone();
            o.ca_paths.extend(opts.host_ca_paths.iter().filter(|(h, _)| h.eq_ignore_ascii_case(host)).map(|(_, p)| p.clone()));
            let c = build_client(&o).map_err(|source| FetcherError::HostClient { host: host.clone(), source })?;
            host_clients.push((key, c));
        }
        Ok(Fetcher { client, host_clients, opts })
    }

    /// The client for `url`: the one of its `host:port` or host in `host_ca_paths`, else the
    /// shared one.
    pub fn client_for(&self, url: &str) -> &Client {
        if self.host_clients.is_empty() {
            return &self.client;
        }
        let Some((with_port, host)) = host_keys(url) else { return &self.client };
        let find = |k: &str| self.host_clients.iter().find(|(h, _)| h.eq_ignore_ascii_case(k)).map(|(_, c)| c);
        find(&with_port).or_else(|| find(&host)).unwrap_or(&self.client)
    }

    /// A request that got no answer, said with the timeout that fired when one did; a
    /// certificate that is not trusted says how to trust it.
    pub fn send_error(&self, url: &str, e: &reqwest::Error) -> FetchError {
        if let Some(why) = airlock_base::http::certificate_problem(e) {
            // The host that failed may be one a redirect led to (a CDN).
            let failed = e.url().map(|u| u.as_str()).unwrap_or(url);
            let host = host_keys(failed).map(|(hp, _)| hp).unwrap_or_else(|| failed.to_string());
            return FetchError::Tls { url: url.to_string(), msg: certificate_advice(&host, &why) };
        }
        let msg = airlock_base::http::describe_send_error(e, Some(self.opts.timeout));
        if e.is_redirect() {
            return FetchError::Redirect { url: url.to_string(), msg };
        }
        FetchError::Http { url: url.to_string(), status: e.status().map(|s| s.as_u16()), msg, retry_after: None }
    }

    /// A body that stopped short: a reset, an early close or a timeout, with the bytes that
    /// arrived. Retryable: the next attempt starts from the first byte.
    fn body_error(&self, url: &str, e: &std::io::Error, received: u64, expected: Option<u64>) -> FetchError {
        FetchError::Body { url: url.to_string(), msg: airlock_base::http::describe_body_error(e, Some(self.opts.timeout), received, expected) }
    }

    /// Runs `f` with retries while it fails with a retryable error: after the wait a
    /// `Retry-After` asks for (up to `max_retry_after`), else after an exponential backoff
    /// with jitter, so that parallel downloads turned away together do not come back together.
    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T, FetchError>) -> Result<T, FetchError> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.opts.retries && e.is_retryable() => {
                    attempt += 1;
                    let asked = match &e {
                        FetchError::Http { retry_after: Some(d), .. } => Some(*d),
                        _ => None,
                    };
                    let wait = match asked {
                        Some(d) if d > self.opts.max_retry_after => return Err(too_long(e, d, self.opts.max_retry_after)),
                        Some(d) => d,
                        None => jittered(self.opts.backoff.saturating_mul(1 << (attempt - 1).min(16))),
                    };
                    let why = match asked {
                        Some(_) => "as its Retry-After asks".to_string(),
                        None => "before trying again".to_string(),
                    };
                    // On stderr, so that a long wait is never silent, with or without a terminal.
                    eprintln!("  {e}; waiting {:.1} s {why} (retry {attempt} of {})", wait.as_secs_f64(), self.opts.retries);
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// GETs a (small) document, with retries; returns its bytes and headers.
    pub fn get(&self, url: &str, headers: &HeaderMap) -> Result<(Vec<u8>, HeaderMap), FetchError> {
        self.with_retries(|| {
            let mut resp = self.client_for(url).get(url).headers(headers.clone()).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(status_error(url, status, resp.headers()));
            }
            let h = resp.headers().clone();
            let expected = resp.content_length();
            // Read, not bytes(): a failure then says how much arrived, and a stall is caught
            // by the per-read timeout rather than cut off by a whole-body one.
            let mut body = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match resp.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.body_error(url, &e, body.len() as u64, expected)),
                }
            }
            Ok((body, h))
        })
    }

    /// The size a download of `url` would have, from a HEAD request's `Content-Length` (None
    /// when the server does not say). For check mode: nothing is downloaded.
    pub fn content_length(&self, url: &str) -> Result<Option<u64>, FetchError> {
        self.with_retries(|| {
            let resp = self.client_for(url).head(url).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(status_error(url, status, resp.headers()));
            }
            Ok(resp.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()))
        })
    }

    /// Downloads `url` to `dest`. When `dest` already exists and matches `expected`, nothing
    /// is fetched. The bytes go to `dest.part`, are hashed while they stream, and are renamed
    /// to `dest` only when they match; a mismatch removes them and fails naming the file.
    /// `on_bytes` is called with each chunk's length (for progress bars).
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expected: Option<&Checksum>,
        headers: &HeaderMap,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Fetched, FetchError> {
        let io = |e: std::io::Error, p: &Path| FetchError::Io { path: p.display().to_string(), msg: e.to_string() };
        if let Some(exp) = expected
            && dest.is_file()
        {
            let (s256, other) = hash_file(dest, exp.algo).map_err(|e| io(e, dest))?;
            if other == exp.hex {
                let size = fs::metadata(dest).map_err(|e| io(e, dest))?.len();
                return Ok(Fetched { path: dest.to_path_buf(), size, sha256: s256, downloaded: false });
            }
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
        }
        let part = part_path(dest);
        let result = self.with_retries(|| {
            let mut resp = self.client_for(url).get(url).headers(headers.clone()).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(status_error(url, status, resp.headers()));
            }
            // Read before the body: reqwest derives it from the body's remaining size.
            let content_length = resp.content_length();
            let mut file = fs::File::create(&part).map_err(|e| io(e, &part))?;
            let mut s256 = Hasher::new(Algo::Sha256);
            let mut other = expected.map(|c| c.algo).filter(|a| *a != Algo::Sha256).map(Hasher::new);
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            loop {
                let n = match resp.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.body_error(url, &e, size, content_length)),
                };
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n]).map_err(|e| io(e, &part))?;
                s256.update(&buf[..n]);
                if let Some(h) = other.as_mut() {
                    h.update(&buf[..n]);
                }
                size += n as u64;
                on_bytes(n as u64);
            }
            if let Some(len) = content_length
                && len != size
            {
                return Err(FetchError::Body {
                    url: url.to_string(),
                    msg: format!("the server closed the connection after {size} of {len} bytes of the body: retry, or check the proxy or server"),
                });
            }
            file.sync_all().map_err(|e| io(e, &part))?;
            let s = s256.hex();
            let o = other.map(Hasher::hex).unwrap_or_else(|| s.clone());
            Ok((size, s, o))
        });
        let (size, sha256, other) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&part);
                return Err(e);
            }
        };
        if let Some(exp) = expected
            && other != exp.hex
        {
            let _ = fs::remove_file(&part);
            return Err(FetchError::Checksum {
                url: url.to_string(),
                dest: dest.display().to_string(),
                expected: exp.to_string(),
                actual: format!("{}", Checksum { algo: exp.algo, hex: other }),
            });
        }
        fs::rename(&part, dest).map_err(|e| io(e, dest))?;
        Ok(Fetched { path: dest.to_path_buf(), size, sha256, downloaded: true })
    }
}

/// A backoff delay with jitter: between half of `d` and all of it.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// A `Retry-After` longer than airlock waits: the download fails now, saying so.
fn too_long(e: FetchError, asked: Duration, cap: Duration) -> FetchError {
    match e {
        FetchError::Http { url, status, msg, retry_after } => FetchError::Http {
            url,
            status,
            msg: format!("{msg}: the server asks to wait {} s (Retry-After), longer than airlock waits ({} s): retry later", asked.as_secs(), cap.as_secs()),
            retry_after,
        },
        other => other,
    }
}

/// What to do about a server certificate that is not trusted, for the modules that download.
pub fn certificate_advice(host: &str, why: &str) -> String {
    format!(
        "the certificate of {host} is not trusted ({why}): if {host} uses a private CA, give that CA's certificate (PEM) as ca_path, or for this host in host_ca_paths ({{\"{host}\": /path/ca.crt}}; the role's download_ca_path and download_host_ca_paths), put it in /etc/docker/certs.d/{host}/ca.crt for a registry, or add it to the system's trust store or SSL_CERT_FILE"
    )
}

/// The temporary name a download is written under.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Runs `f` on every item with at most `concurrency` at once; results in item order.
pub fn parallel<T: Send, R: Send>(items: Vec<T>, concurrency: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..concurrency.max(1).min(n.max(1)) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_parse() {
        assert_eq!(Checksum::parse("SHA256:AB").unwrap(), Checksum { algo: Algo::Sha256, hex: "ab".into() });
        assert_eq!(Checksum::parse("crc32:00").unwrap_err().to_string(), "unsupported checksum algorithm 'crc32' in 'crc32:00'");
        assert_eq!(Checksum::parse("sha256:zz").unwrap_err().to_string(), "checksum 'sha256:zz' is not hexadecimal");
    }

    #[test]
    fn a_ca_that_cannot_be_used_is_named_with_its_host() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let opts = FetchOptions { host_ca_paths: vec![("Registry.example:5000".into(), missing.clone())], ..Default::default() };
        let e = Fetcher::new(opts).err().unwrap();
        assert!(matches!(&e, FetcherError::HostClient { host, .. } if host == "Registry.example:5000"), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("cannot read the CA certificates {}: ", missing.display())), "{text}");
        assert!(text.ends_with(" (a CA given for Registry.example:5000)"), "{text}");
        let e = Fetcher::new(FetchOptions { ca_path: Some(missing.clone()), ..Default::default() }).err().unwrap();
        assert!(matches!(&e, FetcherError::Client(_)), "{e:?}");
        assert!(e.to_string().starts_with(&format!("cannot read the CA certificates {}: ", missing.display())), "{e}");
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "10".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(10)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(reqwest::header::RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let d = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        assert!(waits.iter().all(|w| *w >= d / 2 && *w <= d));
        assert!(waits.iter().any(|w| *w != waits[0]), "the waits differ");
    }

    #[test]
    fn host_keys_with_and_without_port() {
        assert_eq!(host_keys("https://reg.lan:5443/v2/"), Some(("reg.lan:5443".into(), "reg.lan".into())));
        assert_eq!(host_keys("https://Reg.lan/x"), Some(("reg.lan".into(), "reg.lan".into())));
        assert_eq!(host_keys("http://[::1]:8080/x"), Some(("[::1]:8080".into(), "[::1]".into())));
    }

    #[test]
    fn parallel_keeps_order() {
        let out = parallel((0..50).collect(), 4, |i: i32| i * 2);
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }
}

//! Downloads every source uses: retries with backoff, checksums verified while streaming,
//! atomic writes (a `.part` file renamed into place only when verified), skipping what is
//! already in place and verified, and bounded concurrency.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use sha2::Digest;

/// A digest algorithm of a checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Sha256,
    Sha512,
    Sha1,
    Md5,
}

/// An expected digest, as `sha256:<hex>` (also sha512, sha1, md5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub algo: Algo,
    pub hex: String,
}

impl Checksum {
    /// Parses `algo:hex`; a bare 64-hex string is sha256.
    pub fn parse(s: &str) -> Result<Checksum, String> {
        let (algo, hex) = match s.split_once(':') {
            Some((a, h)) => (a.to_ascii_lowercase(), h.trim().to_ascii_lowercase()),
            None => ("sha256".to_string(), s.trim().to_ascii_lowercase()),
        };
        let algo = match algo.as_str() {
            "sha256" => Algo::Sha256,
            "sha512" => Algo::Sha512,
            "sha1" | "sha" => Algo::Sha1,
            "md5" => Algo::Md5,
            other => return Err(format!("unsupported checksum algorithm '{other}' in '{s}'")),
        };
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("checksum '{s}' is not hexadecimal"));
        }
        Ok(Checksum { algo, hex })
    }

    pub fn sha256(hex: &str) -> Checksum {
        Checksum { algo: Algo::Sha256, hex: hex.to_ascii_lowercase() }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = match self.algo {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
            Algo::Sha1 => "sha1",
            Algo::Md5 => "md5",
        };
        write!(f, "{a}:{}", self.hex)
    }
}

/// Hashes a file: its sha256 and, when `algo` is another, that digest too.
pub fn hash_file(path: &Path, algo: Algo) -> std::io::Result<(String, String)> {
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut s256 = sha2::Sha256::new();
    let mut other = OtherHasher::new(algo);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s256.update(&buf[..n]);
        other.update(&buf[..n]);
    }
    let s = hex::encode(s256.finalize());
    let o = other.finish().unwrap_or_else(|| s.clone());
    Ok((s, o))
}

enum OtherHasher {
    None,
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
}

impl OtherHasher {
    fn new(algo: Algo) -> Self {
        match algo {
            Algo::Sha256 => OtherHasher::None,
            Algo::Sha512 => OtherHasher::Sha512(sha2::Sha512::new()),
            Algo::Sha1 => OtherHasher::Sha1(sha1::Sha1::new()),
            Algo::Md5 => OtherHasher::Md5(md5::Md5::new()),
        }
    }
    fn update(&mut self, d: &[u8]) {
        match self {
            OtherHasher::None => {}
            OtherHasher::Sha512(h) => h.update(d),
            OtherHasher::Sha1(h) => h.update(d),
            OtherHasher::Md5(h) => h.update(d),
        }
    }
    fn finish(self) -> Option<String> {
        match self {
            OtherHasher::None => None,
            OtherHasher::Sha512(h) => Some(hex::encode(h.finalize())),
            OtherHasher::Sha1(h) => Some(hex::encode(h.finalize())),
            OtherHasher::Md5(h) => Some(hex::encode(h.finalize())),
        }
    }
}

/// A download failure, naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {msg}")]
    Http { url: String, status: Option<u16>, msg: String },
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
}

impl FetchError {
    /// Whether another try may go better: a connection that failed or a body cut off, or an
    /// HTTP 408, 429 or 5xx. Not a 4xx, a checksum, a local write, or a redirect loop.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => retryable(*status),
            FetchError::Body { .. } => true,
            FetchError::Checksum { .. } | FetchError::Io { .. } | FetchError::Redirect { .. } => false,
        }
    }
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

/// How a `Fetcher` behaves.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub retries: u32,
    pub timeout: Duration,
    pub validate_certs: bool,
    /// First delay between retries; doubles each time.
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions { retries: 3, timeout: Duration::from_secs(60), validate_certs: true, backoff: Duration::from_millis(500) }
    }
}

/// A shared HTTP client for downloads.
pub struct Fetcher {
    pub client: Client,
    pub opts: FetchOptions,
}

fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

impl Fetcher {
    pub fn new(opts: FetchOptions) -> Result<Fetcher, String> {
        let client = crate::modules::http::build_client(&crate::modules::http::ClientOptions {
            timeout: Some(opts.timeout),
            validate_certs: opts.validate_certs,
            ..Default::default()
        })?;
        Ok(Fetcher { client, opts })
    }

    /// A request that got no answer, said with the timeout that fired when one did.
    fn send_error(&self, url: &str, e: &reqwest::Error) -> FetchError {
        let msg = crate::modules::http::describe_send_error(e, Some(self.opts.timeout));
        if e.is_redirect() {
            return FetchError::Redirect { url: url.to_string(), msg };
        }
        FetchError::Http { url: url.to_string(), status: e.status().map(|s| s.as_u16()), msg }
    }

    /// A body that stopped short: a reset, an early close or a timeout, with the bytes that
    /// arrived. Retryable: the next attempt starts from the first byte.
    fn body_error(&self, url: &str, e: &std::io::Error, received: u64, expected: Option<u64>) -> FetchError {
        FetchError::Body { url: url.to_string(), msg: crate::modules::http::describe_body_error(e, Some(self.opts.timeout), received, expected) }
    }

    /// Runs `f` with retries and exponential backoff while it fails with a retryable error.
    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T, FetchError>) -> Result<T, FetchError> {
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.opts.retries && e.is_retryable() => {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// GETs a (small) document, with retries; returns its bytes and headers.
    pub fn get(&self, url: &str, headers: &HeaderMap) -> Result<(Vec<u8>, HeaderMap), FetchError> {
        self.with_retries(|| {
            let mut resp = self.client.get(url).headers(headers.clone()).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(FetchError::Http { url: url.to_string(), status: Some(status.as_u16()), msg: format!("HTTP {status}") });
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
            let resp = self.client.head(url).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(FetchError::Http { url: url.to_string(), status: Some(status.as_u16()), msg: format!("HTTP {status}") });
            }
            Ok(resp.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()))
        })
    }

    /// Downloads `url` to `dest`. When `dest` already exists and matches `expected`, nothing
    /// is fetched. The bytes go to `dest.part`, are hashed while they stream, and are renamed
    /// to `dest` only when they match; a mismatch removes them and fails naming the file.
    /// `on_bytes` is called with each chunk's length (for progress bars).
    pub fn download(&self, url: &str, dest: &Path, expected: Option<&Checksum>, headers: &HeaderMap, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<Fetched, FetchError> {
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
            let mut resp = self.client.get(url).headers(headers.clone()).send().map_err(|e| self.send_error(url, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(FetchError::Http { url: url.to_string(), status: Some(status.as_u16()), msg: format!("HTTP {status}") });
            }
            // Read before the body: reqwest derives it from the body's remaining size.
            let content_length = resp.content_length();
            let mut file = fs::File::create(&part).map_err(|e| io(e, &part))?;
            let mut s256 = sha2::Sha256::new();
            let mut other = OtherHasher::new(expected.map(|c| c.algo).unwrap_or(Algo::Sha256));
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
                other.update(&buf[..n]);
                size += n as u64;
                on_bytes(n as u64);
            }
            if let Some(len) = content_length
                && len != size
            {
                return Err(FetchError::Body { url: url.to_string(), msg: format!("the server closed the connection after {size} of {len} bytes of the body: retry, or check the proxy or server") });
            }
            file.sync_all().map_err(|e| io(e, &part))?;
            let s = hex::encode(s256.finalize());
            let o = other.finish().unwrap_or_else(|| s.clone());
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
            return Err(FetchError::Checksum { url: url.to_string(), dest: dest.display().to_string(), expected: exp.to_string(), actual: format!("{}", Checksum { algo: exp.algo, hex: other }) });
        }
        fs::rename(&part, dest).map_err(|e| io(e, dest))?;
        Ok(Fetched { path: dest.to_path_buf(), size, sha256, downloaded: true })
    }
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
        assert!(Checksum::parse("crc32:00").is_err());
        assert!(Checksum::parse("sha256:zz").is_err());
    }

    #[test]
    fn parallel_keeps_order() {
        let out = parallel((0..50).collect(), 4, |i: i32| i * 2);
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }
}

//! Static files as nginx serves the Yum and files mirrors: directory listings (`autoindex`),
//! `HEAD`, one `Range`, `ETag`/`Last-Modified` with conditional requests, content types.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{PathError, cache, open_beneath, resolve, segments, text};

/// The routes of a static mirror of `dir`: every path is a file or a directory listing.
pub fn router(dir: &Path) -> Router {
    let dir = Arc::new(dir.to_path_buf());
    Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let dir = dir.clone();
        async move { static_request(&dir, &method, &uri, &headers).await }
    })
}

async fn static_request(dir: &Path, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed();
    }
    let segs = match segments(uri.path()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let file = match open_beneath(dir, &segs) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let Ok(meta) = file.metadata() else { return PathError::NotFound.into_response() };
    if meta.is_dir() {
        if !uri.path().ends_with('/') {
            let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            return redirect(&format!("{}/{q}", uri.path()));
        }
        return listing(dir, &segs, uri.path(), method);
    }
    if !meta.is_file() {
        return PathError::NotFound.into_response();
    }
    let ctype = content_type(Path::new(segs.last().map(String::as_str).unwrap_or("")));
    serve_open(file, &meta, method, headers, ctype).await
}

/// `405` naming what is allowed.
pub fn method_not_allowed() -> Response {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// A permanent redirect to `location` (a path on the same server).
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, v)]).into_response(),
        Err(_) => PathError::Bad.into_response(),
    }
}

/// The media type of a mirror file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    let ext = name.rsplit('.').next().unwrap_or("");
    match ext {
        "rpm" | "drpm" => "application/x-rpm",
        "xml" => "text/xml",
        "gz" | "tgz" => "application/gzip",
        "zst" => "application/zstd",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "tar" => "application/x-tar",
        "zip" | "whl" => "application/zip",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "repo" | "asc" | "sha256" | "sha256sum" | "md5" | "sig" | "cfg" | "conf" => "text/plain; charset=utf-8",
        "sh" => "text/x-shellscript",
        "gpg" | "key" | "pub" => "application/pgp-keys",
        "sqlite" => "application/vnd.sqlite3",
        "iso" => "application/x-iso9660-image",
        "prov" => "application/pgp-signature",
        _ => "application/octet-stream",
    }
}

/// What a conditional or ranged request gets from a file of `size` bytes last changed at
/// `mtime` (seconds).
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    NotModified,
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// nginx's ETag: mtime and size in hex.
fn etag(mtime: u64, size: u64) -> String {
    format!("\"{mtime:x}-{size:x}\"")
}

fn answer(headers: &HeaderMap, tag: &str, mtime: u64, size: u64) -> Answer {
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(inm) = h(header::IF_NONE_MATCH) {
        if inm.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == tag || t == "*") {
            return Answer::NotModified;
        }
    } else if let Some(ims) = h(header::IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok())
        && mtime <= ims.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    {
        return Answer::NotModified;
    }
    let Some(range) = h(header::RANGE) else { return Answer::Full };
    if let Some(ir) = h(header::IF_RANGE) {
        let same_date = httpdate::parse_http_date(ir).ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).is_some_and(|d| d.as_secs() == mtime);
        if ir != tag && !same_date {
            return Answer::Full;
        }
    }
    parse_range(range, size)
}

/// One `bytes=` range; several ranges or a malformed one are ignored (the whole file), as
/// RFC 9110 allows.
fn parse_range(range: &str, size: u64) -> Answer {
    let Some(spec) = range.trim().strip_prefix("bytes=") else { return Answer::Full };
    if spec.contains(',') {
        return Answer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Answer::Full };
    let num = |s: &str| if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) { None } else { s.parse::<u64>().ok() };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => Answer::Full,
            Some(0) => Answer::Unsatisfiable,
            Some(_) if size == 0 => Answer::Unsatisfiable,
            Some(n) => Answer::Partial(size - n.min(size), size - 1),
        },
        (a, "") => match num(a) {
            None => Answer::Full,
            Some(a) if a >= size => Answer::Unsatisfiable,
            Some(a) => Answer::Partial(a, size - 1),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    Answer::Unsatisfiable
                } else {
                    Answer::Partial(a, b.min(size - 1))
                }
            }
            _ => Answer::Full,
        },
    }
}

/// A file's bytes (or part of them) with the headers clients rely on to cache and resume.
/// `path` must already be checked against the mirror's root ([`resolve`]).
pub async fn serve_file(path: &Path, method: &Method, headers: &HeaderMap, ctype: &'static str) -> Response {
    let Ok(file) = super::open_file(path) else { return PathError::NotFound.into_response() };
    let Ok(meta) = file.metadata() else { return PathError::NotFound.into_response() };
    if !meta.is_file() {
        return PathError::NotFound.into_response();
    }
    serve_open(file, &meta, method, headers, ctype).await
}

/// [`serve_file`] for a file already opened (beneath the root) and stated.
///
/// Opening, stating and reading a small file take microseconds on a warm page cache, less
/// than a trip to the blocking pool or even `block_in_place`: they run in place. Files up to
/// 256 KiB are kept in memory between requests (the `cache` module), and their bodies go out
/// as shared `Bytes`, never copied.
pub async fn serve_open(file: std::fs::File, meta: &std::fs::Metadata, method: &Method, headers: &HeaderMap, ctype: &'static str) -> Response {
    let size = meta.len();
    // HEAD and conditional requests are answered from the metadata alone; the bytes of a small
    // file are read (and cached) when a body needs them.
    let (c, loaded) = match cache::get(meta) {
        Some(c) => (c, true),
        None => (validators(meta, Bytes::new()), false),
    };
    let mut b = Response::builder()
        .header(header::ETAG, c.etag.clone())
        .header(header::LAST_MODIFIED, c.last_modified.clone())
        .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let tag = c.etag.to_str().unwrap_or_default();
    let (status, start, len) = match answer(headers, tag, c.mtime, size) {
        Answer::NotModified => return b.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default(),
        Answer::Unsatisfiable => {
            return b
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from("range not satisfiable\n"))
                .unwrap_or_default();
        }
        Answer::Full => (StatusCode::OK, 0, size),
        Answer::Partial(a, z) => {
            b = b.header(header::CONTENT_RANGE, format!("bytes {a}-{z}/{size}"));
            (StatusCode::PARTIAL_CONTENT, a, z - a + 1)
        }
    };
    b = b.status(status).header(header::CONTENT_TYPE, HeaderValue::from_static(ctype)).header(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return b.body(Body::empty()).unwrap_or_default();
    }
    if size <= cache::MAX_FILE {
        let body = if loaded {
            c.body
        } else {
            let mut buf = vec![0u8; size as usize];
            if std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 0).is_err() {
                return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n");
            }
            let c = cache::Cached { body: Bytes::from(buf), ..c };
            cache::put(meta, &c);
            c.body
        };
        return b.body(Body::from(body.slice(start as usize..(start + len) as usize))).unwrap_or_default();
    }
    if len <= WHOLE_READ {
        // Up to 1 MiB: one positioned read, one body. block_in_place lets the runtime move
        // other connections off this thread while it reads.
        let read = tokio::task::block_in_place(|| {
            let mut buf = vec![0u8; len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, start).map(|_| buf)
        });
        return match read {
            Ok(buf) => b.body(Body::from(buf)).unwrap_or_default(),
            _ => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n"),
        };
    }
    let mut f = tokio::fs::File::from_std(file);
    if start > 0 && f.seek(SeekFrom::Start(start)).await.is_err() {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n");
    }
    b.body(file_body(f.take(len))).unwrap_or_default()
}

/// The validators of a file (nginx's ETag and Last-Modified, from its mtime and size), with
/// `body` as its bytes.
fn validators(meta: &std::fs::Metadata, body: Bytes) -> cache::Cached {
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime = modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let hv = |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""));
    let last_modified = hv(httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(mtime)));
    cache::Cached { body, mtime, etag: hv(etag(mtime, meta.len())), last_modified }
}

/// Bodies up to this size are read in one go; larger ones are streamed.
const WHOLE_READ: u64 = 1 << 20;

/// The bytes of a reader as a streamed body, 1 MiB at a time; a read error ends the body
/// early, which the client sees as a short read against Content-Length.
fn file_body(reader: tokio::io::Take<tokio::fs::File>) -> Body {
    let stream = futures_util::stream::unfold(Some(reader), |state| async move {
        let mut r = state?;
        // Never more than is left: small files are the common case (repodata, charts).
        let mut buf = vec![0u8; r.limit().clamp(1, WHOLE_READ) as usize];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(r)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(stream)
}

/// An nginx-like `autoindex` page of the directory `segs` names under `root`. Dot files are
/// left out, as nginx does, and so are links that point outside the root.
fn listing(root: &Path, segs: &[String], url_path: &str, method: &Method) -> Response {
    let dir: PathBuf = segs.iter().fold(root.to_path_buf(), |p, s| p.join(s));
    let Ok(rd) = std::fs::read_dir(&dir) else { return PathError::NotFound.into_response() };
    let mut rows: Vec<(String, bool, u64, SystemTime)> = Vec::new();
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let mut child = segs.to_vec();
        child.push(name.clone());
        let Ok(real) = resolve(root, &child) else { continue };
        let Ok(meta) = std::fs::metadata(&real) else { continue };
        rows.push((name, meta.is_dir(), meta.len(), meta.modified().unwrap_or(UNIX_EPOCH)));
    }
    rows.sort_by(|a, b| (!a.1, &a.0).cmp(&(!b.1, &b.0)));
    let title = html_escape(&percent_encoding::percent_decode_str(url_path).decode_utf8_lossy());
    let mut html = format!("<html>\n<head><title>Index of {title}</title></head>\n<body>\n<h1>Index of {title}</h1><hr><pre><a href=\"../\">../</a>\n");
    for (name, is_dir, size, mtime) in &rows {
        let shown = if *is_dir { format!("{name}/") } else { name.clone() };
        let href = format!("{}{}", url_escape(name), if *is_dir { "/" } else { "" });
        let pad = 51usize.saturating_sub(shown.chars().count());
        let size = if *is_dir { "-".to_string() } else { size.to_string() };
        html.push_str(&format!("<a href=\"{href}\">{}</a>{:pad$}{} {size:>19}\n", html_escape(&shown), "", listing_date(*mtime)));
    }
    html.push_str("</pre><hr></body>\n</html>\n");
    let len = html.len();
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(html) };
    Response::builder().header(header::CONTENT_TYPE, "text/html; charset=utf-8").header(header::CONTENT_LENGTH, len).body(body).unwrap_or_default()
}

/// `23-Nov-2026 14:05` (UTC), nginx's listing date.
fn listing_date(t: SystemTime) -> String {
    // "Mon, 23 Nov 2026 14:05:09 GMT"
    let d = httpdate::fmt_http_date(t);
    let p: Vec<&str> = d.split(' ').collect();
    if p.len() < 5 {
        return d;
    }
    format!("{}-{}-{} {}", p[1], p[2], p[3], &p[4][..5])
}

/// Text safe inside HTML elements and attribute values.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A file name as one URL path segment.
pub fn url_escape(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'+');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        assert_eq!(parse_range("bytes=0-9", 100), Answer::Partial(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Answer::Partial(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Answer::Partial(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Answer::Partial(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Answer::Partial(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Answer::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Answer::Unsatisfiable);
        assert_eq!(parse_range("bytes=9-0", 100), Answer::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Answer::Full);
        assert_eq!(parse_range("items=0-1", 100), Answer::Full);
    }

    #[test]
    fn types_of_mirror_files() {
        assert_eq!(content_type(Path::new("a/b-1.0.rpm")), "application/x-rpm");
        assert_eq!(content_type(Path::new("repodata/repomd.xml")), "text/xml");
        assert_eq!(content_type(Path::new("x-primary.xml.zst")), "application/zstd");
        assert_eq!(content_type(Path::new("kubectl")), "application/octet-stream");
    }
}

//! `airlock serve`: the offline mirrors that `build-offline-mirrors.yml` lays out under
//! `/opt/deepops`, served without Docker on DeepOps's ports: Yum (nginx-like static files),
//! Helm (ChartMuseum's read API), PyPI (the simple API) and plain files.
//!
//! Every mirror resolves request paths with [`resolve`], which refuses anything that would leave
//! its root, and answers through the same static-file code ([`files::serve_file`]) with `HEAD`,
//! single `Range`s, `ETag` and `Last-Modified`.

pub mod files;
pub mod registry;
pub mod helm;
pub mod pypi;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// The mirrors' names, as `--mirrors` takes them.
pub const MIRRORS: [&str; 5] = ["registry", "yum", "helm", "pip", "files"];

/// What `airlock serve` serves, and where.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The mirror tree (`deepops_dest_path`, `/opt/deepops`).
    pub root: PathBuf,
    /// The address every listener binds.
    pub bind: IpAddr,
    pub registry_port: u16,
    pub yum_port: u16,
    pub helm_port: u16,
    pub pip_port: u16,
    pub files_port: u16,
    /// Accept pushes on the registry.
    pub registry_writable: bool,
    /// The mirrors to serve, by name (see [`MIRRORS`]).
    pub mirrors: Vec<String>,
    /// Serve every mirror over HTTPS with this certificate.
    pub tls: Option<tls::TlsSource>,
}

/// One listener: a mirror's name, its port, the directory it serves and its routes.
struct Mirror {
    name: &'static str,
    port: u16,
    dir: PathBuf,
    what: &'static str,
    router: Router,
}

/// Runs the mirrors until the process is stopped; an error names the listener or directory at
/// fault and the flag that fixes it.
pub fn run(opts: &ServeOptions) -> Result<(), String> {
    let root = opts.root.canonicalize().map_err(|e| format!("cannot serve {}: {e}; give the mirror tree with --root (build-offline-mirrors.yml lays it out under /opt/deepops)", opts.root.display()))?;
    if !root.is_dir() {
        return Err(format!("cannot serve {}: not a directory", root.display()));
    }
    let yum = root.join("yum");
    let helm = root.join("helm");
    let pip = root.join("pip");
    let misc = root.join("misc-files");
    let mut mirrors = vec![
        Mirror { name: "registry", port: opts.registry_port, router: registry::registry_router(root.join("registry"), opts.registry_writable), dir: root.join("registry"), what: "container images (distribution API)" },
        Mirror { name: "yum", port: opts.yum_port, router: files::router(&yum), dir: yum, what: "Yum repositories (static, listings)" },
        Mirror { name: "helm", port: opts.helm_port, router: helm::router(&helm), dir: helm, what: "Helm charts (ChartMuseum API, one repo per directory)" },
        Mirror { name: "pip", port: opts.pip_port, router: pypi::router(&pip), dir: pip, what: "Python packages (simple API, /simple/)" },
        Mirror { name: "files", port: opts.files_port, router: files::router(&misc), dir: misc, what: "plain files (static, listings)" },
    ];
    // The site's build_*_mirror switches: a mirror not asked for has no listener at all.
    mirrors.retain(|m| opts.mirrors.iter().any(|n| n == m.name));
    if mirrors.is_empty() {
        return Err(format!("no mirror to serve: --mirrors names none of {}", MIRRORS.join(", ")));
    }

    let tls = match &opts.tls {
        Some(src) => Some(tls::acceptor(src, opts.bind)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some((_, Some(ca))) = &tls {
        eprintln!("airlock serve: {}", tls::trust_hint(ca));
    }
    let mut listeners = Vec::new();
    for m in &mirrors {
        let addr = SocketAddr::new(opts.bind, m.port);
        let l = std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} for the {} mirror: {e}; choose another port with --{}-port or another address with --bind", m.name, m.name))?;
        l.set_nonblocking(true).map_err(|e| format!("{addr}: {e}"))?;
        listeners.push(l);
    }

    eprintln!("airlock serve: {} ({scheme})", root.display());
    eprintln!("  {:<9} {:<22} {:<40} serves", "mirror", "address", "directory");
    for m in &mirrors {
        let missing = if m.dir.is_dir() { "" } else { "  (missing: answers 404)" };
        eprintln!("  {:<9} {:<22} {:<40} {}{missing}", m.name, SocketAddr::new(opts.bind, m.port).to_string(), m.dir.display().to_string(), m.what);
    }

    let acceptor = tls.as_ref().map(|(a, _)| a.clone());

    let rt = tokio::runtime::Builder::new_multi_thread().enable_io().enable_time().build().map_err(|e| format!("cannot start the server runtime: {e}"))?;
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (m, l) in mirrors.into_iter().zip(listeners) {
            let listener = tokio::net::TcpListener::from_std(l).map_err(|e| format!("{}: {e}", m.name))?;
            let name = m.name;
            let app = m.router.layer(middleware::from_fn(move |req, next| log_request(name, req, next)));
            let acceptor = acceptor.clone();
            tasks.push(tokio::spawn(async move {
                match acceptor {
                    Some(a) => tls::serve(listener, app, a).await,
                    None => axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.map_err(|e| format!("the {name} mirror stopped: {e}")),
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| format!("a mirror failed: {e}"))??;
        }
        Ok(())
    })
}

/// One line per request on stderr: time, mirror, client, method, path, status, the body bytes
/// sent and the milliseconds until the last of them (written when the body is done or dropped,
/// so a download cut short logs what was really sent).
async fn log_request(mirror: &'static str, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "-".into());
    let when = crate::bundle::manifest::rfc3339_utc(std::time::SystemTime::now());
    let (parts, body) = next.run(req).await.into_parts();
    let line = format!("{when} {mirror} {client} {method} {path} {}", parts.status.as_u16());
    Response::from_parts(parts, Body::new(LoggedBody { inner: body, sent: 0, line, start }))
}

/// A response body that counts what goes out and logs the request when it is dropped.
struct LoggedBody {
    inner: Body,
    sent: u64,
    line: String,
    start: Instant,
}

impl http_body::Body for LoggedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        eprintln!("{} {} {:.1}ms", self.line, self.sent, self.start.elapsed().as_secs_f64() * 1000.0);
    }
}

/// Why a request path cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// Malformed or trying to leave the root (`..`, encoded slashes, NUL): 400.
    Bad,
    /// Nothing there, or it resolves outside the root (a link pointing out): 404.
    NotFound,
}

impl IntoResponse for PathError {
    fn into_response(self) -> Response {
        match self {
            PathError::Bad => text(StatusCode::BAD_REQUEST, "bad request path\n"),
            PathError::NotFound => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// The segments of a raw (still percent-encoded) URL path, decoded one by one. A segment that
/// decodes to `..`, or holds a slash, backslash or NUL once decoded, makes the path bad: an
/// encoded slash must not become a separator after the check. Empty and `.` segments drop.
pub fn segments(raw_path: &str) -> Result<Vec<String>, PathError> {
    let mut out = Vec::new();
    for seg in raw_path.split('/') {
        let dec = percent_encoding::percent_decode_str(seg).decode_utf8().map_err(|_| PathError::Bad)?;
        if dec.contains(['/', '\\', '\0']) || dec == ".." {
            return Err(PathError::Bad);
        }
        if dec.is_empty() || dec == "." {
            continue;
        }
        out.push(dec.into_owned());
    }
    Ok(out)
}

/// The file or directory `segs` name under `root`, after following links: a path that does
/// not exist, or whose real location is outside the real `root`, is not found.
pub fn resolve(root: &Path, segs: &[String]) -> Result<PathBuf, PathError> {
    let mut p = root.to_path_buf();
    for s in segs {
        // `segments` already refused separators; this also keeps out `C:`-like prefixes.
        if Path::new(s).components().count() != 1 || !matches!(Path::new(s).components().next(), Some(Component::Normal(_))) {
            return Err(PathError::Bad);
        }
        p.push(s);
    }
    let real_root = real_root(root).ok_or(PathError::NotFound)?;
    let real = p.canonicalize().map_err(|_| PathError::NotFound)?;
    if !real.starts_with(&real_root) {
        return Err(PathError::NotFound);
    }
    Ok(real)
}

/// A mirror root's real path, found once per root and thread (it is on every request's path).
fn real_root(root: &Path) -> Option<PathBuf> {
    thread_local! {
        static ROOTS: std::cell::RefCell<std::collections::HashMap<PathBuf, PathBuf>> = Default::default();
    }
    ROOTS.with(|m| {
        if let Some(r) = m.borrow().get(root) {
            return Some(r.clone());
        }
        let real = root.canonicalize().ok()?;
        m.borrow_mut().insert(root.to_path_buf(), real.clone());
        Some(real)
    })
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_refuse_what_would_leave_the_root() {
        assert_eq!(segments("/a/./b//c").unwrap(), ["a", "b", "c"]);
        assert_eq!(segments("/a%20b/").unwrap(), ["a b"]);
        for bad in ["/../etc", "/a/%2e%2e/b", "/a/%2E%2e", "/a%2fb", "/a%2Fb", "/a%5cb", "/a%00", "/%ff"] {
            assert_eq!(segments(bad), Err(PathError::Bad), "{bad}");
        }
    }

    #[test]
    fn links_pointing_out_are_not_found() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(d.path().join("secret"), "x").unwrap();
        std::fs::write(root.join("sub/in"), "y").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/in", root.join("inside")).unwrap();
        assert_eq!(resolve(&root, &["out".into()]), Err(PathError::NotFound));
        assert!(resolve(&root, &["inside".into()]).is_ok());
        assert_eq!(resolve(&root, &["nothing".into()]), Err(PathError::NotFound));
    }
}

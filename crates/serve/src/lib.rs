//! airlock-serve: `airlock serve`, the offline mirrors that `build-offline-mirrors.yml` lays out under
//! `/opt/deepops`, served without Docker on DeepOps's ports: Yum (nginx-like static files),
//! Helm (ChartMuseum's read API), PyPI (the simple API) and plain files.
//!
//! Every mirror opens request paths with [`open_beneath`] or resolves them with [`resolve`],
//! both of which refuse anything that would leave its root, and answers through the same
//! static-file code ([`files::serve_file`], [`files::serve_open`]) with `HEAD`, single
//! `Range`s, `ETag` and `Last-Modified`; small files come from memory (the `cache` module)
//! while they are unchanged.
//!
//! Depends on airlock-base and airlock-content (the registry store, the manifest's formats);
//! it serves what the content crate wrote on disk and never fetches from an upstream.

mod cache;
pub mod files;
pub mod helm;
mod log;
pub mod pypi;
pub mod registry;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
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

/// Why `airlock serve` cannot start or stopped: each message names the directory, address or
/// file at fault and the flag that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot serve {}: {source}; give the mirror tree with --root (build-offline-mirrors.yml lays it out under /opt/deepops)",
        root.display()
    )]
    Root { root: PathBuf, source: std::io::Error },
    #[error("cannot serve {}: not a directory", root.display())]
    NotADirectory { root: PathBuf },
    /// `--mirrors` (given here) names none of [`MIRRORS`].
    #[error("no mirror to serve: --mirrors names none of {}", MIRRORS.join(", "))]
    NoMirror { asked: Vec<String> },
    #[error(transparent)]
    Tls(tls::TlsError),
    #[error("cannot listen on {addr} for the {mirror} mirror: {source}; choose another port with --{mirror}-port or another address with --bind")]
    Listen { mirror: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("{addr}: {source}")]
    Nonblocking { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the server runtime: {source}")]
    Runtime { source: std::io::Error },
    #[error("cannot start the signal thread: {source}")]
    SignalThread { source: std::io::Error },
    /// A listener cannot be handed to the runtime.
    #[error("{mirror}: {source}")]
    Listener { mirror: &'static str, source: std::io::Error },
    /// A mirror's task panicked or was cancelled.
    #[error("a mirror failed: {source}")]
    Mirror { source: tokio::task::JoinError },
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
pub fn run(opts: &ServeOptions) -> Result<(), ServeError> {
    let root = opts.root.canonicalize().map_err(|source| ServeError::Root { root: opts.root.clone(), source })?;
    if !root.is_dir() {
        return Err(ServeError::NotADirectory { root });
    }
    let yum = root.join("yum");
    let helm = root.join("helm");
    let pip = root.join("pip");
    let misc = root.join("misc-files");
    let mut mirrors = vec![
        Mirror {
            name: "registry",
            port: opts.registry_port,
            router: registry::registry_router(root.join("registry"), opts.registry_writable),
            dir: root.join("registry"),
            what: "container images (distribution API)",
        },
        Mirror { name: "yum", port: opts.yum_port, router: files::router(&yum), dir: yum, what: "Yum repositories (static, listings)" },
        Mirror { name: "helm", port: opts.helm_port, router: helm::router(&helm), dir: helm, what: "Helm charts (ChartMuseum API, one repo per directory)" },
        Mirror { name: "pip", port: opts.pip_port, router: pypi::router(&pip), dir: pip, what: "Python packages (simple API, /simple/)" },
        Mirror { name: "files", port: opts.files_port, router: files::router(&misc), dir: misc, what: "plain files (static, listings)" },
    ];
    // The site's build_*_mirror switches: a mirror not asked for has no listener at all.
    mirrors.retain(|m| opts.mirrors.iter().any(|n| n == m.name));
    if mirrors.is_empty() {
        return Err(ServeError::NoMirror { asked: opts.mirrors.clone() });
    }

    let tls = match &opts.tls {
        Some(src) => Some(tls::acceptor(src, opts.bind).map_err(ServeError::Tls)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some((_, Some(ca))) = &tls {
        eprintln!("airlock serve: {}", tls::trust_hint(ca));
    }
    let mut listeners = Vec::new();
    for m in &mirrors {
        let addr = SocketAddr::new(opts.bind, m.port);
        let l = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Listen { mirror: m.name, addr, source })?;
        l.set_nonblocking(true).map_err(|source| ServeError::Nonblocking { addr, source })?;
        listeners.push(l);
    }

    eprintln!("airlock serve: {} ({scheme})", root.display());
    eprintln!("  {:<9} {:<22} {:<40} serves", "mirror", "address", "directory");
    for m in &mirrors {
        let missing = if m.dir.is_dir() { "" } else { "  (missing: answers 404)" };
        eprintln!("  {:<9} {:<22} {:<40} {}{missing}", m.name, SocketAddr::new(opts.bind, m.port).to_string(), m.dir.display().to_string(), m.what);
    }

    let acceptor = tls.as_ref().map(|(a, _)| a.clone());

    // Before any thread starts, so that every thread inherits the mask and only the signal
    // thread sees SIGTERM and SIGINT.
    let stop = stop_signals();
    log::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_io().enable_time().build().map_err(|source| ServeError::Runtime { source })?;
    if let Some(set) = stop {
        std::thread::Builder::new().name("airlock-signals".into()).spawn(move || flush_log_on(set)).map_err(|source| ServeError::SignalThread { source })?;
    }
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (m, l) in mirrors.into_iter().zip(listeners) {
            let listener = tokio::net::TcpListener::from_std(l).map_err(|source| ServeError::Listener { mirror: m.name, source })?;
            tasks.push(tokio::spawn(accept(listener, m.name, m.router, acceptor.clone())));
        }
        for t in tasks {
            t.await.map_err(|source| ServeError::Mirror { source })?;
        }
        Ok(())
    })
}

/// SIGTERM and SIGINT, blocked in this thread (and so in every thread started after), for
/// [`flush_log_on`] to take; `None` if they cannot be blocked (they then end the process as
/// before, with up to one batch of log lines unwritten).
fn stop_signals() -> Option<libc::sigset_t> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls only read and
    // write the set given and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        (libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0).then_some(set)
    }
}

/// Waits for a signal of `set`, writes the log lines still queued, and lets the signal end
/// the process as it would have without the wait (same exit status for systemd and shells).
fn flush_log_on(set: libc::sigset_t) {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is an initialised signal set and `sig` a valid place for the answer.
    if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
        return;
    }
    log::flush();
    // SAFETY: restoring the default action and re-raising the signal, unblocked for this
    // thread only, ends the process the way the signal does by default.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::raise(sig);
    }
}

/// Accepts connections for one mirror until the process ends, over TLS when `tls` is given;
/// an accept or handshake that fails only ends that connection.
async fn accept(listener: tokio::net::TcpListener, mirror: &'static str, router: Router, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, mostly: wait for connections to close rather than spin.
                eprintln!("airlock serve: accept failed on the {mirror} mirror: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses are written whole (headers and body in one writev); Nagle's algorithm
        // would only hold back their last segment until the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let client = peer.ip();
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| handle(router.clone(), mirror, client, req));
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await,
                Some(a) => match a.accept(tcp).await {
                    Ok(s) => http.serve_connection(hyper_util::rt::TokioIo::new(s), svc).await,
                    Err(_) => return,
                },
            };
        });
    }
}

/// Runs one request through the mirror's router; its log line is written when the body is
/// done or dropped ([`LoggedBody`]).
async fn handle(
    mut router: Router,
    mirror: &'static str,
    client: IpAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Response<LoggedBody>, std::convert::Infallible> {
    let start = Instant::now();
    let when = std::time::SystemTime::now();
    let method = req.method().clone();
    // A clone of the request's URI shares its bytes.
    let uri = req.uri().clone();
    let response = match <Router as tower::Service<hyper::Request<hyper::body::Incoming>>>::call(&mut router, req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let (parts, inner) = response.into_parts();
    let status = parts.status.as_u16();
    Ok(Response::from_parts(parts, LoggedBody { inner, sent: 0, start, when, mirror, client, method, uri, status }))
}

/// A response body that counts what goes out and logs the request when it is dropped: time,
/// mirror, client, method, path, status, the body bytes sent and the milliseconds until the
/// last of them (so a download cut short logs what was really sent).
pub struct LoggedBody {
    inner: Body,
    sent: u64,
    start: Instant,
    when: std::time::SystemTime,
    mirror: &'static str,
    client: IpAddr,
    method: axum::http::Method,
    uri: axum::http::Uri,
    status: u16,
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
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        with_timestamp(self.when, |when| {
            log::line(format_args!("{when} {} {} {} {path} {} {} {ms:.1}ms", self.mirror, self.client, self.method, self.status, self.sent));
        });
    }
}

/// Calls `f` with `t` in RFC 3339 (UTC, seconds), formatted once per second and thread.
fn with_timestamp(t: std::time::SystemTime, f: impl FnOnce(&str)) {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    LAST.with_borrow_mut(|(s, text)| {
        if *s != secs {
            *s = secs;
            *text = airlock_content::archive::manifest::rfc3339_utc(t);
        }
        f(text);
    });
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
        check_segment(s)?;
        p.push(s);
    }
    let real_root = real_root(root).ok_or(PathError::NotFound)?;
    let real = p.canonicalize().map_err(|_| PathError::NotFound)?;
    if !real.starts_with(&real_root) {
        return Err(PathError::NotFound);
    }
    Ok(real)
}

/// Opens the file or directory `segs` name under `root` without leaving it: the kernel walks
/// the path beneath an open `root` (openat2 with `RESOLVE_BENEATH`), following links only
/// while they stay inside, and never through `/proc`'s magic links. One call replaces a
/// per-component walk, and there is no gap between the check and the open for a swapped link
/// to slip through. Links given as absolute paths (which `RESOLVE_BENEATH` refuses even when
/// they point inside) and kernels without openat2 go through [`resolve`] instead.
pub fn open_beneath(root: &Path, segs: &[String]) -> Result<std::fs::File, PathError> {
    use std::os::fd::FromRawFd;
    let mut rel = Vec::with_capacity(segs.iter().map(|s| s.len() + 1).sum::<usize>() + 2);
    for s in segs {
        check_segment(s)?;
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(s.as_bytes());
    }
    if rel.is_empty() {
        rel.push(b'.');
    }
    let rel = std::ffi::CString::new(rel).map_err(|_| PathError::Bad)?;
    let Some(dir) = root_dir(root) else { return Err(PathError::NotFound) };
    // SAFETY: open_how is plain data; zero is "no mode" and no other field is left unset.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    // O_NONBLOCK: a FIFO under the root must not hold a worker thread until a writer comes.
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads the path and `how` (of the size given) and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dir, rel.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>()) };
    if fd >= 0 {
        // SAFETY: a descriptor openat2 just returned, owned by nobody else.
        return Ok(unsafe { std::fs::File::from_raw_fd(fd as i32) });
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // A link leaves the root or is absolute; or openat2 is missing or filtered (ENOSYS,
        // or EPERM from a seccomp profile): decide by the real paths.
        Some(libc::EXDEV | libc::ENOSYS | libc::EPERM) => open_file(&resolve(root, segs)?).map_err(|_| PathError::NotFound),
        _ => Err(PathError::NotFound),
    }
}

/// A descriptor of the directory `root` names, opened (`O_PATH`) once a second per thread
/// and root: a mirror directory replaced while the server runs is served within a second,
/// without the two extra system calls per request of opening it every time. The descriptor
/// stays open until the next call on this thread.
fn root_dir(root: &Path) -> Option<std::os::fd::RawFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    thread_local! {
        static DIRS: std::cell::RefCell<Vec<(PathBuf, OwnedFd, Instant)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    DIRS.with_borrow_mut(|dirs| {
        let now = Instant::now();
        // A handful of roots per process: a list is quicker than a map.
        let i = dirs.iter().position(|(p, _, _)| p == root);
        if let Some(i) = i
            && now.duration_since(dirs[i].2) < FRESH
        {
            return Some(dirs[i].1.as_raw_fd());
        }
        let opened = std::ffi::CString::new(root.as_os_str().as_bytes()).ok().and_then(|c| {
            // SAFETY: a NUL-terminated path; the descriptor returned is owned below.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
            // SAFETY: a descriptor just opened, owned by nobody else.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        });
        if let Some(i) = i {
            dirs.swap_remove(i);
        }
        let fd = opened?;
        let raw = fd.as_raw_fd();
        dirs.push((root.to_path_buf(), fd, now));
        Some(raw)
    })
}

/// Opens a path that [`resolve`] checked, for reading, as [`open_beneath`] opens files.
pub fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK).open(path)
}

/// One decoded path segment, as [`segments`] gives them: a plain name (`segments` already
/// refused separators; this also keeps out `C:`-like prefixes).
fn check_segment(s: &str) -> Result<(), PathError> {
    let mut c = Path::new(s).components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(PathError::Bad),
    }
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

    fn options(root: &Path, mirrors: &[&str]) -> ServeOptions {
        ServeOptions {
            root: root.to_path_buf(),
            bind: IpAddr::from([127, 0, 0, 1]),
            registry_port: 0,
            yum_port: 0,
            helm_port: 0,
            pip_port: 0,
            files_port: 0,
            registry_writable: false,
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
            tls: None,
        }
    }

    #[test]
    fn errors_before_listening_name_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing");
        let e = run(&options(&missing, &MIRRORS)).unwrap_err();
        assert!(matches!(&e, ServeError::Root { root, .. } if *root == missing), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("cannot serve {}: ", missing.display())), "{text}");
        assert!(text.ends_with("; give the mirror tree with --root (build-offline-mirrors.yml lays it out under /opt/deepops)"), "{text}");
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(run(&options(&file, &MIRRORS)).unwrap_err().to_string(), format!("cannot serve {}: not a directory", file.display()));
        assert_eq!(run(&options(d.path(), &["nope"])).unwrap_err().to_string(), "no mirror to serve: --mirrors names none of registry, yum, helm, pip, files");
    }

    #[test]
    fn segments_refuse_what_would_leave_the_root() {
        assert_eq!(segments("/a/./b//c").unwrap(), ["a", "b", "c"]);
        assert_eq!(segments("/a%20b/").unwrap(), ["a b"]);
        for bad in ["/../etc", "/a/%2e%2e/b", "/a/%2E%2e", "/a%2fb", "/a%2Fb", "/a%5cb", "/a%00", "/%ff"] {
            assert_eq!(segments(bad), Err(PathError::Bad), "{bad}");
        }
    }

    /// `<tmp>/root` holding `sub/in` ("y") and `out`, a link to `<tmp>/secret` ("x") beside it.
    fn root_with_a_secret_beside() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(d.path().join("secret"), "x").unwrap();
        std::fs::write(root.join("sub/in"), "y").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("out")).unwrap();
        (d, root)
    }

    #[test]
    fn links_pointing_out_are_not_found() {
        let (_d, root) = root_with_a_secret_beside();
        std::os::unix::fs::symlink("sub/in", root.join("inside")).unwrap();
        assert_eq!(resolve(&root, &["out".into()]), Err(PathError::NotFound));
        assert!(resolve(&root, &["inside".into()]).is_ok());
        assert_eq!(resolve(&root, &["nothing".into()]), Err(PathError::NotFound));
    }

    #[test]
    fn open_beneath_follows_links_only_while_they_stay_inside() {
        let (d, root) = root_with_a_secret_beside();
        std::os::unix::fs::symlink("../secret", root.join("up")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();
        std::os::unix::fs::symlink("sub/in", root.join("inside")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/in"), root.join("absolute-inside")).unwrap();
        let open =
            |p: &[&str]| open_beneath(&root, &p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|f| std::io::read_to_string(f).unwrap_or_default());
        for out in [&["out"][..], &["up"], &["dirlink", "secret"], &["magic"], &["nothing"]] {
            assert_eq!(open(out), Err(PathError::NotFound), "{out:?}");
        }
        assert_eq!(open(&["inside"]).unwrap(), "y");
        assert_eq!(open(&["absolute-inside"]).unwrap(), "y");
        assert_eq!(open(&["sub", "in"]).unwrap(), "y");
        assert!(open_beneath(&root, &[]).unwrap().metadata().unwrap().is_dir());
        // A FIFO opens at once (and is then refused as not a file) instead of waiting for a writer.
        let fifo = std::ffi::CString::new(root.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(!open_beneath(&root, &["fifo".to_string()]).unwrap().metadata().unwrap().is_file());
    }
}

//! The registry of `airlock serve`: the OCI distribution API (Docker's Registry HTTP API V2)
//! over the storage of Docker's distribution registry, as `registry_import` writes it and
//! `registry:2` reads it (see [`airlock_content::sources::registry_store`] for the layout), so one
//! storage directory can be served by either.
//!
//! Read-only by default: manifests by tag or digest, blobs (streamed, with `Range`), tag
//! lists and the catalog. Only what a repository links is served from it, as distribution
//! does: a blob in the shared `blobs/` directory is unknown to a repository that has no
//! `_layers` (or revision) link to it. With `writable`, pushes are taken too (monolithic and
//! chunked blob uploads, cross-repository mounts, manifests), written into the same layout:
//! blobs verified and renamed into place before any link names them, tag links last.

use airlock_base::digest::sha256_hex_of as sha256_hex;
use std::fs;
use std::io::{self, SeekFrom, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use futures_util::StreamExt as _;
use regex::Regex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use airlock_content::sources::registry_store::v2_root;

const API_VERSION: &str = "Docker-Distribution-API-Version";
const CONTENT_DIGEST: &str = "Docker-Content-Digest";
const UPLOAD_UUID: &str = "Docker-Upload-UUID";
/// The largest manifest taken in a push (distribution's limit too).
const MAX_MANIFEST: usize = 4 << 20;

/// A repository name, as distribution's reference grammar has it: lowercase components
/// separated by `/`, so `.`, `..` and empty components never reach the filesystem.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*";
    Regex::new(&format!("^{component}(?:/{component})*$")).expect("valid regex")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("valid regex"));

/// The router answering `/v2/...` from the registry storage `storage_root` (the directory
/// distribution is given as `rootdirectory`; the layout is under `docker/registry/v2/`).
/// With `writable` false every write answers 405 `UNSUPPORTED`. It routes `/v2` and what is
/// under it only, without a fallback, so it merges (`Router::merge`) with the mirrors' routes.
pub fn registry_router(storage_root: PathBuf, writable: bool) -> Router {
    let v2 = v2_root(&storage_root);
    let store = Arc::new(Store { root: storage_root, v2, writable });
    // One handler parses the raw path itself: names have any number of components, and
    // axum's path parameters would be percent-decoded (`%2e%2e`) before they are checked.
    Router::new().route("/v2", any(handle)).route("/v2/", any(handle)).route("/v2/{*rest}", any(handle)).with_state(store)
}

struct Store {
    root: PathBuf,
    v2: PathBuf,
    writable: bool,
}

/// The endpoints, parsed from the raw (not percent-decoded) path.
#[derive(Debug)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        return Some(Route::UploadStart(name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Route::Manifest(name, last)),
        "blobs" => Some(Route::Blob(name, last)),
        "uploads" => name.strip_suffix("/blobs").map(|n| Route::Upload(n, last)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn error(status: StatusCode, code: &str, message: &str, detail: Value) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": detail}]});
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("JSON serialises")))
        .expect("valid response")
}

fn internal(what: &str, path: &Path, e: &io::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &format!("cannot {what} {}: {e}", path.display()), Value::Null)
}

fn unsupported(message: &str) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message, Value::Null)
}

fn read_only() -> Response {
    unsupported("this registry is served read-only: serve it writable to push")
}

fn manifest_unknown(name: &str, reference: &str) -> Response {
    error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown", json!({"name": name, "reference": reference}))
}

fn blob_unknown(digest: &str) -> Response {
    error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry", json!({"digest": digest}))
}

fn digest_invalid(digest: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "provided digest did not match uploaded content or is not a sha256 digest", json!({"digest": digest}))
}

fn json_response(value: &Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(value).expect("JSON serialises")))
        .expect("valid response")
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("header values built here are ASCII")
}

// ---------------------------------------------------------------------------------------------
// Storage paths and links

impl Store {
    fn repo_dir(&self, name: &str) -> PathBuf {
        name.split('/').fold(self.v2.join("repositories"), |p, c| p.join(c))
    }

    fn data_path(&self, hex: &str) -> PathBuf {
        self.v2.join("blobs").join("sha256").join(&hex[..2]).join(hex).join("data")
    }

    fn layer_link(&self, name: &str, hex: &str) -> PathBuf {
        self.repo_dir(name).join("_layers").join("sha256").join(hex).join("link")
    }

    fn revision_link(&self, name: &str, hex: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("revisions").join("sha256").join(hex).join("link")
    }

    fn tag_dir(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("tags").join(tag)
    }

    /// Where a blob upload of `name` collects its bytes, as distribution keeps them.
    fn upload_dir(&self, name: &str, id: &str) -> PathBuf {
        self.repo_dir(name).join("_uploads").join(id)
    }
}

/// The digest a link file holds, when it holds one.
async fn read_link(path: &Path) -> Option<String> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    sha256_hex(text.trim()).map(|h| format!("sha256:{h}"))
}

async fn link_holds(path: &Path, digest: &str) -> bool {
    read_link(path).await.as_deref() == Some(digest)
}

/// A manifest's media type: its `mediaType`, else what its shape says (as distribution infers).
/// Public, as the manifest fuzz target feeds it.
pub fn media_type_of(bytes: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return "application/octet-stream".into();
    };
    if let Some(t) = v.get("mediaType").and_then(Value::as_str) {
        return t.to_string();
    }
    if v.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return "application/vnd.docker.distribution.manifest.v1+prettyjws".into();
    }
    if v.get("manifests").is_some() {
        return "application/vnd.oci.image.index.v1+json".into();
    }
    let docker_config = v.pointer("/config/mediaType").and_then(Value::as_str) == Some("application/vnd.docker.container.image.v1+json");
    if docker_config { "application/vnd.docker.distribution.manifest.v2+json".into() } else { "application/vnd.oci.image.manifest.v1+json".into() }
}

// ---------------------------------------------------------------------------------------------
// Dispatch

async fn handle(State(store): State<Arc<Store>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let mut resp = dispatch(&store, &method, &uri, &headers, body).await;
    resp.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn dispatch(store: &Arc<Store>, method: &Method, uri: &Uri, headers: &HeaderMap, body: Body) -> Response {
    let Some(route) = route(uri.path()) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not an endpoint of the registry API", json!({"path": uri.path()}));
    };
    let name = match &route {
        Route::Base | Route::Catalog => None,
        Route::Tags(n) | Route::Manifest(n, _) | Route::Blob(n, _) | Route::UploadStart(n) | Route::Upload(n, _) => Some(*n),
    };
    if let Some(n) = name
        && (n.len() > 255 || !NAME.is_match(n))
    {
        return error(StatusCode::BAD_REQUEST, "NAME_INVALID", "invalid repository name", json!({"name": n}));
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    if !read && !store.writable {
        return read_only();
    }
    let head = *method == Method::HEAD;
    let q = query(uri);
    match (route, method.clone()) {
        (Route::Base, _) if read => json_response(&json!({})),
        (Route::Catalog, Method::GET) => catalog(store, &q).await,
        (Route::Tags(name), Method::GET) => tags(store, name, &q).await,
        (Route::Manifest(name, reference), _) if read => get_manifest(store, name, reference, head).await,
        (Route::Blob(name, digest), _) if read => get_blob(store, name, digest, headers, head).await,
        (Route::Manifest(name, reference), Method::PUT) => put_manifest(store, name, reference, body).await,
        (Route::UploadStart(name), Method::POST) => start_upload(store, name, &q, body).await,
        (Route::Upload(name, id), m) => upload(store, name, id, &m, headers, &q, body).await,
        _ => unsupported("this method is not supported on this endpoint"),
    }
}

// ---------------------------------------------------------------------------------------------
// Pulls

async fn get_manifest(store: &Store, name: &str, reference: &str, head: bool) -> Response {
    let digest = if reference.contains(':') {
        match sha256_hex(reference) {
            Some(_) => reference.to_string(),
            None => return digest_invalid(reference),
        }
    } else if TAG.is_match(reference) {
        match read_link(&store.tag_dir(name, reference).join("current").join("link")).await {
            Some(d) => d,
            None => return manifest_unknown(name, reference),
        }
    } else {
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", "manifest tag did not match URI", json!({"tag": reference}));
    };
    let hex = &digest[7..];
    // A digest is served only where the repository has a revision for it, as distribution does.
    if !link_holds(&store.revision_link(name, hex), &digest).await {
        return manifest_unknown(name, reference);
    }
    let path = store.data_path(hex);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return manifest_unknown(name, reference),
        Err(e) => return internal("read", &path, &e),
    };
    let etag = format!("\"{digest}\"");
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, header_value(&media_type_of(&bytes)))
        .header(header::CONTENT_LENGTH, bytes.len())
        .header(CONTENT_DIGEST, header_value(&digest))
        .header(header::ETAG, header_value(&etag));
    builder.body(if head { Body::empty() } else { Body::from(bytes) }).expect("valid response")
}

/// A single `bytes=` range of a `len`-byte blob: `Ok(None)` for the whole blob (no range, or
/// one this server does not take, such as several ranges, which the whole answers too),
/// `Err(())` when unsatisfiable.
fn parse_range(value: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (start, end) => {
            let start: u64 = start.parse().map_err(|_| ())?;
            let end = if end.is_empty() { len.saturating_sub(1) } else { end.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1)) };
            if start >= len || end < start {
                return Err(());
            }
            (start, end)
        }
    };
    Ok(Some(range))
}

async fn get_blob(store: &Store, name: &str, digest: &str, headers: &HeaderMap, head: bool) -> Response {
    let Some(hex) = sha256_hex(digest) else { return digest_invalid(digest) };
    let linked = link_holds(&store.layer_link(name, hex), digest).await || link_holds(&store.revision_link(name, hex), digest).await;
    if !linked {
        return blob_unknown(digest);
    }
    let path = store.data_path(hex);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return blob_unknown(digest),
        Err(e) => return internal("open", &path, &e),
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return internal("read", &path, &e),
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(CONTENT_DIGEST, header_value(digest))
        .header(header::ETAG, header_value(&format!("\"{digest}\"")));
    let (start, count) = match parse_range(headers.get(header::RANGE), len) {
        Ok(None) => (0, len),
        Ok(Some((start, end))) => {
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (start, end - start + 1)
        }
        Err(()) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .expect("valid response");
        }
    };
    builder = builder.header(header::CONTENT_LENGTH, count);
    if head {
        return builder.body(Body::empty()).expect("valid response");
    }
    if start > 0
        && let Err(e) = file.seek(SeekFrom::Start(start)).await
    {
        return internal("read", &path, &e);
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 << 10);
    builder.body(Body::from_stream(stream)).expect("valid response")
}

/// `n` and `last` applied to a sorted list: the page and, when more follow, the `Link` header;
/// or the error answering an `n` that is not a number.
fn paginate(mut items: Vec<String>, q: &[(String, String)], path: &str) -> Result<(Vec<String>, Option<String>), Box<Response>> {
    if let Some(last) = query_get(q, "last") {
        items.retain(|i| i.as_str() > last);
    }
    let Some(n) = query_get(q, "n") else { return Ok((items, None)) };
    let n: usize =
        n.parse().map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", json!({"n": n}))))?;
    if items.len() <= n {
        return Ok((items, None));
    }
    items.truncate(n);
    let link = items.last().map(|last| {
        let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
        format!("<{path}?last={last}&n={n}>; rel=\"next\"")
    });
    Ok((items, link))
}

fn listing(key: &str, extra: Option<(&str, &str)>, items: Vec<String>, link: Option<String>) -> Response {
    let mut body = serde_json::Map::new();
    if let Some((k, v)) = extra {
        body.insert(k.into(), json!(v));
    }
    body.insert(key.into(), json!(items));
    let mut resp = json_response(&Value::Object(body));
    if let Some(link) = link {
        resp.headers_mut().insert(header::LINK, header_value(&link));
    }
    resp
}

async fn tags(store: &Store, name: &str, q: &[(String, String)]) -> Response {
    let manifests = store.repo_dir(name).join("_manifests");
    if !tokio::fs::metadata(&manifests).await.is_ok_and(|m| m.is_dir()) {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry", json!({"name": name}));
    }
    let mut list = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(manifests.join("tags")).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let Some(tag) = e.file_name().to_str().map(str::to_string) else { continue };
            if TAG.is_match(&tag) && read_link(&e.path().join("current").join("link")).await.is_some() {
                list.push(tag);
            }
        }
    }
    list.sort();
    match paginate(list, q, &format!("/v2/{name}/tags/list")) {
        Ok((page, link)) => listing("tags", Some(("name", name)), page, link),
        Err(resp) => *resp,
    }
}

/// Every repository under `dir`: a directory holding `_manifests`, as distribution walks them.
fn walk_repositories(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Some(file) = e.file_name().to_str().map(str::to_string) else { continue };
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if file == "_manifests" {
            if NAME.is_match(prefix) {
                out.push(prefix.to_string());
            }
        } else if !file.starts_with('_') {
            let name = if prefix.is_empty() { file } else { format!("{prefix}/{file}") };
            walk_repositories(&e.path(), &name, out);
        }
    }
}

async fn catalog(store: &Store, q: &[(String, String)]) -> Response {
    let root = store.v2.join("repositories");
    let mut list = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        walk_repositories(&root, "", &mut out);
        out
    })
    .await
    .unwrap_or_default();
    list.sort();
    match paginate(list, q, "/v2/_catalog") {
        Ok((page, link)) => listing("repositories", None, page, link),
        Err(resp) => *resp,
    }
}

// ---------------------------------------------------------------------------------------------
// Pushes

fn storage_error(e: io::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &format!("cannot write the registry storage: {e}: check that it is writable and has room"), Value::Null)
}

/// Runs blocking filesystem work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// A new file beside `docker/` (so on the storage's filesystem, where the registry never
/// reads), mode 0644 as the registry's own files, to be renamed into place.
fn staged(root: &Path, bytes: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    fs::create_dir_all(root)?;
    let mut tmp = tempfile::Builder::new().prefix(".airlock-serve-").tempfile_in(root)?;
    tmp.write_all(bytes)?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
    Ok(tmp)
}

/// Writes a link file (`sha256:<hex>`, no newline) atomically, unless it holds `digest`.
fn write_link(root: &Path, path: &Path, digest: &str) -> io::Result<()> {
    if fs::read(path).is_ok_and(|b| b == digest.as_bytes()) {
        return Ok(());
    }
    let tmp = staged(root, digest.as_bytes())?;
    fs::create_dir_all(path.parent().expect("links have a directory"))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// The `Range` of an upload holding `len` bytes, as distribution writes it.
fn upload_range(len: u64) -> String {
    format!("0-{}", len.saturating_sub(1))
}

fn upload_progress(status: StatusCode, name: &str, id: &str, len: u64) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, header_value(&upload_location(name, id)))
        .header(header::RANGE, header_value(&upload_range(len)))
        .header(UPLOAD_UUID, header_value(id))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn blob_created(name: &str, digest: &str) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, header_value(&format!("/v2/{name}/blobs/{digest}")))
        .header(CONTENT_DIGEST, header_value(digest))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

/// Appends a request body to an upload's file, as it arrives; the file's length after.
async fn append(path: &Path, body: Body) -> io::Result<u64> {
    let mut f = tokio::fs::OpenOptions::new().append(true).open(path).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        f.write_all(&chunk.map_err(io::Error::other)?).await?;
    }
    f.flush().await?;
    Ok(f.metadata().await?.len())
}

/// A new upload of `name`: its id (random, the name of its directory).
async fn new_upload(store: &Store, name: &str) -> io::Result<String> {
    let parent = store.repo_dir(name).join("_uploads");
    blocking(move || {
        fs::create_dir_all(&parent)?;
        let dir = tempfile::Builder::new().prefix("").rand_bytes(32).tempdir_in(&parent)?.keep();
        fs::OpenOptions::new().write(true).create_new(true).open(dir.join("data"))?.set_permissions(fs::Permissions::from_mode(0o644))?;
        Ok(dir.file_name().and_then(|n| n.to_str()).expect("random names are ASCII").to_string())
    })
    .await
}

async fn start_upload(store: &Store, name: &str, q: &[(String, String)], body: Body) -> Response {
    // A cross-repository mount: only of a blob the other repository links.
    if let (Some(digest), Some(from)) = (query_get(q, "mount"), query_get(q, "from"))
        && let Some(hex) = sha256_hex(digest)
        && NAME.is_match(from)
        && link_holds(&store.layer_link(from, hex), digest).await
        && tokio::fs::metadata(store.data_path(hex)).await.is_ok()
    {
        let (root, link, digest_owned) = (store.root.clone(), store.layer_link(name, hex), digest.to_string());
        return match blocking(move || write_link(&root, &link, &digest_owned)).await {
            Ok(()) => blob_created(name, digest),
            Err(e) => storage_error(e),
        };
    }
    let id = match new_upload(store, name).await {
        Ok(id) => id,
        Err(e) => return storage_error(e),
    };
    match query_get(q, "digest") {
        // A monolithic upload: the blob is the body.
        Some(digest) => {
            let dir = store.upload_dir(name, &id);
            if let Err(e) = append(&dir.join("data"), body).await {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return storage_error(e);
            }
            finish_upload(store, name, &id, digest).await
        }
        None => upload_progress(StatusCode::ACCEPTED, name, &id, 0),
    }
}

/// Verifies an upload against `digest`, puts the blob in place and links it in `name`.
async fn finish_upload(store: &Store, name: &str, id: &str, digest: &str) -> Response {
    let dir = store.upload_dir(name, id);
    let Some(hex) = sha256_hex(digest) else {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return digest_invalid(digest);
    };
    let data = dir.join("data");
    let (root, dest, link, digest_owned, hex_owned) =
        (store.root.clone(), store.data_path(hex), store.layer_link(name, hex), digest.to_string(), hex.to_string());
    let done = blocking(move || {
        let actual = airlock_base::digest::sha256_file(&data)?.1;
        if actual != hex_owned {
            fs::remove_dir_all(&dir)?;
            return Ok(false);
        }
        fs::File::open(&data)?.sync_all()?;
        // Content-addressed: a blob already in place is the same bytes.
        if fs::metadata(&dest).is_err() {
            fs::create_dir_all(dest.parent().expect("blob paths have a directory"))?;
            fs::rename(&data, &dest)?;
        }
        fs::remove_dir_all(&dir)?;
        write_link(&root, &link, &digest_owned)?;
        Ok(true)
    })
    .await;
    match done {
        Ok(true) => blob_created(name, digest),
        Ok(false) => digest_invalid(digest),
        Err(e) => storage_error(e),
    }
}

async fn upload(store: &Store, name: &str, id: &str, method: &Method, headers: &HeaderMap, q: &[(String, String)], body: Body) -> Response {
    let unknown = || error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", json!({"uuid": id}));
    // Ids are the random directory names `new_upload` makes: nothing else reaches the disk.
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return unknown();
    }
    let dir = store.upload_dir(name, id);
    let data = dir.join("data");
    let Ok(meta) = tokio::fs::metadata(&data).await else { return unknown() };
    match *method {
        Method::GET => upload_progress(StatusCode::NO_CONTENT, name, id, meta.len()),
        Method::DELETE => match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("valid response"),
            Err(e) => storage_error(e),
        },
        Method::PATCH | Method::PUT => {
            // A chunk must start where the upload ends.
            if let Some(range) = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok())
                && let Some((start, _)) = range.trim().trim_start_matches("bytes ").split_once('-')
                && start.parse::<u64>().ok() != Some(meta.len())
            {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::LOCATION, header_value(&upload_location(name, id)))
                    .header(header::RANGE, header_value(&upload_range(meta.len())))
                    .header(UPLOAD_UUID, header_value(id))
                    .body(Body::empty())
                    .expect("valid response");
            }
            let len = match append(&data, body).await {
                Ok(len) => len,
                Err(e) => return storage_error(e),
            };
            if *method == Method::PATCH {
                return upload_progress(StatusCode::ACCEPTED, name, id, len);
            }
            match query_get(q, "digest") {
                Some(digest) => finish_upload(store, name, id, digest).await,
                None => digest_invalid(""),
            }
        }
        _ => unsupported("this method is not supported on an upload"),
    }
}

/// What a manifest or index names that the repository must hold first: (digest, whether it
/// is a manifest).
fn references(manifest: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for m in manifest.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        if let Some(d) = m.get("digest").and_then(Value::as_str) {
            out.push((d.to_string(), true));
        }
    }
    let blobs = manifest.get("config").into_iter().chain(manifest.get("layers").and_then(Value::as_array).into_iter().flatten());
    for b in blobs {
        // Foreign layers are fetched from their URLs, never pushed.
        if b.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty()) {
            continue;
        }
        if let Some(d) = b.get("digest").and_then(Value::as_str) {
            out.push((d.to_string(), false));
        }
    }
    out
}

/// Why a pushed manifest is refused (the MANIFEST_INVALID message).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not JSON: {source}")]
    NotJson { source: serde_json::Error },
    #[error("only schema 2 manifests and indexes (Docker and OCI) are taken")]
    NotSchema2,
}

/// What a pushed manifest or index names that the repository must hold first (digest,
/// whether it is a manifest), once it is known to be JSON of schema 2; the error is the
/// MANIFEST_INVALID message. Public, as the manifest fuzz target feeds it.
pub fn pushed_references(bytes: &[u8]) -> Result<Vec<(String, bool)>, ManifestError> {
    let manifest: Value = serde_json::from_slice(bytes).map_err(|source| ManifestError::NotJson { source })?;
    if manifest.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ManifestError::NotSchema2);
    }
    Ok(references(&manifest))
}

async fn put_manifest(store: &Store, name: &str, reference: &str, body: Body) -> Response {
    let invalid = |message: &str| error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message, Value::Null);
    let bytes = match axum::body::to_bytes(body, MAX_MANIFEST).await {
        Ok(b) => b,
        Err(_) => return invalid(&format!("manifest larger than {MAX_MANIFEST} bytes, or not received whole")),
    };
    let digest = format!("sha256:{}", airlock_base::digest::sha256_hex(&bytes));
    let tag = if reference.contains(':') {
        if reference != digest {
            return digest_invalid(reference);
        }
        None
    } else if TAG.is_match(reference) {
        Some(reference.to_string())
    } else {
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", "manifest tag did not match URI", json!({"tag": reference}));
    };
    let refs = match pushed_references(&bytes) {
        Ok(r) => r,
        Err(e) => return invalid(&e.to_string()),
    };
    for (d, is_manifest) in refs {
        let Some(hex) = sha256_hex(&d) else { return digest_invalid(&d) };
        let link = if is_manifest { store.revision_link(name, hex) } else { store.layer_link(name, hex) };
        if !link_holds(&link, &d).await {
            return error(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", json!({"digest": d}));
        }
    }
    let hex = digest[7..].to_string();
    let (root, dest, revision) = (store.root.clone(), store.data_path(&hex), store.revision_link(name, &hex));
    let tag_dir = tag.as_deref().map(|t| store.tag_dir(name, t));
    let digest_owned = digest.clone();
    let written = blocking(move || {
        if !fs::read(&dest).is_ok_and(|b| b == bytes) {
            let tmp = staged(&root, &bytes)?;
            tmp.as_file().sync_all()?;
            fs::create_dir_all(dest.parent().expect("blob paths have a directory"))?;
            tmp.persist(&dest).map_err(|e| e.error)?;
        }
        write_link(&root, &revision, &digest_owned)?;
        if let Some(dir) = tag_dir {
            write_link(&root, &dir.join("index").join("sha256").join(&hex).join("link"), &digest_owned)?;
            write_link(&root, &dir.join("current").join("link"), &digest_owned)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = written {
        return storage_error(e);
    }
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, header_value(&format!("/v2/{name}/manifests/{digest}")))
        .header(CONTENT_DIGEST, header_value(&digest))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_manifests_refused_with_the_reason() {
        let e = pushed_references(b"{").unwrap_err();
        assert!(matches!(e, ManifestError::NotJson { .. }), "{e:?}");
        assert!(e.to_string().starts_with("manifest is not JSON: "), "{e}");
        assert_eq!(pushed_references(br#"{"schemaVersion": 1}"#).unwrap_err().to_string(), "only schema 2 manifests and indexes (Docker and OCI) are taken");
        assert_eq!(pushed_references(br#"{"schemaVersion": 2, "layers": [{"digest": "sha256:ab"}]}"#).unwrap(), [("sha256:ab".to_string(), false)]);
    }
}

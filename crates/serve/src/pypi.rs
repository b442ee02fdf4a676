//! The PyPI mirror: the simple repository API over `pip/` (a flat directory of wheels and
//! sdists, as pypiserver serves it), in both forms: PEP 503 HTML and PEP 691 JSON, chosen by
//! `Accept`. Links carry `#sha256=` and `data-requires-python` (from a wheel's METADATA or an
//! sdist's PKG-INFO). A project that is not here is a 404: there is never a fallback.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::files::{html_escape, method_not_allowed, redirect, url_escape};
use super::{PathError, resolve, segments, text};
use airlock_content::sources::pypi::{normalize_name, parse_filename};

const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";

/// What the index knows of one distribution file.
#[derive(Clone)]
struct FileInfo {
    sha256: String,
    requires_python: Option<String>,
}

/// size and modification time (ns): a file whose stamp is unchanged is not hashed again.
type Stamp = (u64, u128);

struct Index {
    root: PathBuf,
    cache: Mutex<HashMap<String, (Stamp, FileInfo)>>,
}

/// The PyPI mirror's routes over `dir` (`/opt/deepops/pip`).
pub fn router(dir: &Path) -> Router {
    let index = Arc::new(Index { root: dir.to_path_buf(), cache: Mutex::new(HashMap::new()) });
    Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let ix = index.clone();
        async move { route(ix, &method, &uri, &headers).await }
    })
}

async fn route(ix: Arc<Index>, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed();
    }
    let segs = match segments(uri.path()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => redirect("/simple/"),
        ["packages", file] => match resolve(&ix.root, &[file.to_string()]) {
            Ok(p) => super::files::serve_file(&p, method, headers, super::files::content_type(&p)).await,
            Err(e) => e.into_response(),
        },
        ["simple"] | ["simple", _] => {
            let Some(form) = negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) else {
                return text(
                    StatusCode::NOT_ACCEPTABLE,
                    "the simple API is served as application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html\n",
                );
            };
            if let ["simple", name] = s.as_slice() {
                let norm = normalize_name(name);
                if norm != *name || !uri.path().ends_with('/') {
                    return redirect(&format!("/simple/{}/", url_escape(&norm)));
                }
                project_page(&ix, &norm, form).await
            } else {
                if !uri.path().ends_with('/') {
                    return redirect("/simple/");
                }
                root_page(&ix, form)
            }
        }
        _ => PathError::NotFound.into_response(),
    }
}

/// The media type to answer with, from `Accept` (PEP 691): the highest `q` among the forms
/// served, the first listed on a tie; HTML when there is no `Accept`; `None` when nothing
/// acceptable is served (406).
fn negotiate(accept: Option<&str>) -> Option<&'static str> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some("text/html") };
    let mut best: Option<(f32, &'static str)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let served = match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => JSON_V1,
            "application/vnd.pypi.simple.v1+html" | "application/vnd.pypi.simple.latest+html" => HTML_V1,
            "text/html" | "text/*" | "*/*" => "text/html",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, served));
        }
    }
    best.map(|(_, m)| m)
}

fn page(form: &'static str, body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, HeaderValue::from_static(form))], Body::from(body)).into_response();
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// Every distribution file in the directory, by normalized project name.
fn projects(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(root) else { return out };
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()) {
            continue;
        }
        if let Some((project, _)) = parse_filename(&name) {
            out.entry(project).or_default().push(name);
        }
    }
    for files in out.values_mut() {
        files.sort();
    }
    out
}

fn root_page(ix: &Index, form: &'static str) -> Response {
    let names: Vec<String> = projects(&ix.root).into_keys().collect();
    if form == JSON_V1 {
        let list: Vec<Json> = names.iter().map(|n| json!({ "name": n })).collect();
        return page(form, json!({ "meta": { "api-version": "1.0" }, "projects": list }).to_string());
    }
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    for n in &names {
        html.push_str(&format!("    <a href=\"{}/\">{}</a><br>\n", url_escape(n), html_escape(n)));
    }
    html.push_str("  </body>\n</html>\n");
    page(form, html)
}

async fn project_page(ix: &Arc<Index>, project: &str, form: &'static str) -> Response {
    let Some(files) = projects(&ix.root).remove(project) else { return text(StatusCode::NOT_FOUND, "no such project on this mirror\n") };
    let ix2 = ix.clone();
    let infos =
        tokio::task::spawn_blocking(move || files.into_iter().filter_map(|f| ix2.info(&f).map(|i| (f, i))).collect::<Vec<_>>()).await.unwrap_or_default();
    if infos.is_empty() {
        return text(StatusCode::NOT_FOUND, "no such project on this mirror\n");
    }
    if form == JSON_V1 {
        let list: Vec<Json> = infos
            .iter()
            .map(|(f, i)| {
                let mut o = json!({ "filename": f, "url": format!("../../packages/{}", url_escape(f)), "hashes": { "sha256": i.sha256 } });
                if let Some(rp) = &i.requires_python {
                    o["requires-python"] = Json::String(rp.clone());
                }
                o
            })
            .collect();
        return page(form, json!({ "meta": { "api-version": "1.0" }, "name": project, "files": list }).to_string());
    }
    let title = html_escape(project);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Links for {title}</title>\n  </head>\n  <body>\n    <h1>Links for {title}</h1>\n"
    );
    for (f, i) in &infos {
        let rp = i.requires_python.as_ref().map(|r| format!(" data-requires-python=\"{}\"", html_escape(r))).unwrap_or_default();
        html.push_str(&format!("    <a href=\"../../packages/{}#sha256={}\"{rp}>{}</a><br>\n", url_escape(f), i.sha256, html_escape(f)));
    }
    html.push_str("  </body>\n</html>\n");
    page(form, html)
}

impl Index {
    /// The hash and Requires-Python of a file, from the cache when its stamp is unchanged;
    /// `None` when it cannot be read (or is a link pointing out of the root).
    fn info(&self, file: &str) -> Option<FileInfo> {
        let path = resolve(&self.root, &[file.to_string()]).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        let stamp = (meta.len(), meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos());
        if let Some((s, i)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(file)
            && *s == stamp
        {
            return Some(i.clone());
        }
        let (_, sha256) = airlock_base::digest::sha256_file(&path).ok()?;
        let info = FileInfo { sha256, requires_python: requires_python(&path, file) };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(file.to_string(), (stamp, info.clone()));
        Some(info)
    }
}

/// `Requires-Python` from the core metadata inside a wheel (`*.dist-info/METADATA`) or an
/// sdist (`<top>/PKG-INFO`, .tar.gz or .zip); `None` when absent or unreadable.
fn requires_python(path: &Path, file: &str) -> Option<String> {
    let meta = if file.ends_with(".whl") || file.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
        let want = |n: &str| {
            let parts: Vec<&str> = n.split('/').collect();
            parts.len() == 2 && ((parts[0].ends_with(".dist-info") && parts[1] == "METADATA") || parts[1] == "PKG-INFO")
        };
        let name = z.file_names().filter_map(Result::ok).find(|n| want(n))?.into_owned();
        let mut s = String::new();
        z.by_name(&name).ok()?.take(1 << 20).read_to_string(&mut s).ok()?;
        s
    } else if file.ends_with(".tar.gz") || file.ends_with(".tgz") {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(path).ok()?));
        let mut found = None;
        for e in tar.entries().ok()? {
            let mut e = e.ok()?;
            let p = e.path().ok()?.into_owned();
            if p.components().count() == 2 && p.file_name().is_some_and(|n| n == "PKG-INFO") {
                let mut s = String::new();
                (&mut e).take(1 << 20).read_to_string(&mut s).ok()?;
                found = Some(s);
                break;
            }
        }
        found?
    } else {
        return None;
    };
    // Headers end at the first empty line (the description follows).
    meta.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.eq_ignore_ascii_case("Requires-Python")).then(|| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_form() {
        assert_eq!(negotiate(None), Some("text/html"));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json")), Some(JSON_V1));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")), Some(JSON_V1));
        assert_eq!(negotiate(Some("text/html;q=0.5, application/vnd.pypi.simple.v1+html")), Some(HTML_V1));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.latest+json")), Some(JSON_V1));
        assert_eq!(negotiate(Some("*/*")), Some("text/html"));
        assert_eq!(negotiate(Some("application/xml")), None);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0")), None);
    }
}

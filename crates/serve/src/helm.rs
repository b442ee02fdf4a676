//! The Helm mirror: ChartMuseum's read API over `helm/<repo>/*.tgz`, one repository per
//! directory (ChartMuseum with `DEPTH=1`, as the Docker mirror runs it). Each repository's
//! `index.yaml` is built from the charts present (the `Chart.yaml` inside each archive) and
//! rebuilt when the `.tgz` files change; an unchanged chart is never read twice.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use super::{PathError, resolve, segments};
use airlock_content::sources::helm::semver::Version;

/// Chart.yaml keys that Helm's chart.Metadata keeps; ChartMuseum's index has only these.
const METADATA_KEYS: &[&str] = &[
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
];

const WELCOME: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to ChartMuseum!</title>\n</head>\n<body>\n<h1>Welcome to ChartMuseum!</h1>\n<p>airlock serve: ChartMuseum's read API, one repository per directory.</p>\n</body>\n</html>\n";

/// Why a repository's index cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot write index.yaml for {}: {source}", dir.display())]
    Emit { dir: PathBuf, source: airlock_base::pyfmt::EmitError },
}

/// Why a chart archive is left out of the index (reported with its path, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The archive cannot be read.
    #[error(transparent)]
    Read(std::io::Error),
    /// The archive is not a gzipped tar.
    #[error(transparent)]
    Archive(std::io::Error),
    #[error("Chart.yaml: {source}")]
    ReadChartYaml { source: std::io::Error },
    #[error("no Chart.yaml in the chart's top directory")]
    NoChartYaml,
    #[error("Chart.yaml: {source}")]
    ChartYaml { source: airlock_base::yaml::YamlError },
    #[error("Chart.yaml is not a mapping")]
    NotMapping,
    #[error("chart.metadata.name is required")]
    NoName,
    #[error("chart.metadata.version {version:?} is not a valid SemVerV2")]
    Version { version: String },
}

/// A file's identity for the caches: size and modification time in nanoseconds.
type Stamp = (u64, u128);

/// One repository's index as last built.
#[derive(Default)]
struct Repo {
    /// The `.tgz` files and their stamps the index was built from.
    fingerprint: Vec<(String, Stamp)>,
    /// file name -> (stamp, entry, or None when the chart is invalid).
    seen: HashMap<String, (Stamp, Option<Map<String, Json>>)>,
    /// chart name -> versions, newest first.
    entries: BTreeMap<String, Vec<Json>>,
    raw: Arc<String>,
}

struct Museum {
    root: PathBuf,
    repos: Mutex<HashMap<String, Arc<Mutex<Repo>>>>,
}

/// The Helm mirror's routes over `dir` (`/opt/deepops/helm`).
pub fn router(dir: &Path) -> Router {
    let museum = Arc::new(Museum { root: dir.to_path_buf(), repos: Mutex::new(HashMap::new()) });
    Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let m = museum.clone();
        async move { route(m, &method, &uri, &headers).await }
    })
}

fn json_reply(status: StatusCode, v: &Json) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], Body::from(v.to_string())).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    json_reply(status, &json!({ "error": msg }))
}

async fn route(m: Arc<Museum>, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "airlock serve's Helm mirror is read-only: only GET and HEAD are served");
    }
    match uri.path() {
        "/" => return ([(header::CONTENT_TYPE, "text/html")], WELCOME).into_response(),
        "/health" => return json_reply(StatusCode::OK, &json!({ "healthy": true })),
        _ => {}
    }
    let segs = match segments(uri.path()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [repo, "index.yaml"] => match index(&m, repo).await {
            Ok((_, raw)) => ([(header::CONTENT_TYPE, "application/x-yaml")], raw.as_str().to_owned()).into_response(),
            Err(r) => r,
        },
        [repo, "charts", file] => {
            // ChartMuseum answers 500 here; a 404 says the same without suggesting a fault.
            if !(file.ends_with(".tgz") || file.ends_with(".prov")) {
                return error(StatusCode::NOT_FOUND, "object not found: only .tgz and .prov files are served");
            }
            let ctype = if file.ends_with(".tgz") { "application/x-tar" } else { "application/pgp-signature" };
            match resolve(&m.root, &[repo.to_string(), file.to_string()]) {
                Ok(p) => super::files::serve_file(&p, method, headers, ctype).await,
                Err(PathError::Bad) => PathError::Bad.into_response(),
                Err(PathError::NotFound) => error(StatusCode::NOT_FOUND, "object not found"),
            }
        }
        ["api", repo, "charts", rest @ ..] => {
            let entries = match index(&m, repo).await {
                Ok((e, _)) => e,
                Err(r) => return r,
            };
            api_charts(&entries, rest, uri.query().unwrap_or(""))
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn api_charts(entries: &BTreeMap<String, Vec<Json>>, rest: &[&str], query: &str) -> Response {
    match rest {
        [] => {
            let mut offset = 0usize;
            let mut limit: Option<usize> = None;
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                match &*k {
                    "offset" => match v.parse() {
                        Ok(n) => offset = n,
                        Err(_) => return error(StatusCode::BAD_REQUEST, "offset is not a valid non-negative integer"),
                    },
                    "limit" => match v.parse::<usize>() {
                        Ok(n) if n > 0 => limit = Some(n),
                        _ => return error(StatusCode::BAD_REQUEST, "limit is not a valid positive integer"),
                    },
                    _ => {}
                }
            }
            let page: Map<String, Json> =
                entries.iter().skip(offset).take(limit.unwrap_or(usize::MAX)).map(|(k, v)| (k.clone(), Json::Array(v.clone()))).collect();
            json_reply(StatusCode::OK, &Json::Object(page))
        }
        [name] => match entries.get(*name) {
            Some(v) if !v.is_empty() => json_reply(StatusCode::OK, &Json::Array(v.clone())),
            _ => error(StatusCode::NOT_FOUND, "chart not found"),
        },
        [name, version] => {
            let Some(versions) = entries.get(*name) else { return error(StatusCode::NOT_FOUND, "no chart name found") };
            let v = |e: &&Json| e["version"].as_str().unwrap_or("").to_string();
            let found = if *version == "latest" {
                versions.iter().find(|e| !v(e).split('+').next().unwrap_or("").contains('-'))
            } else {
                versions.iter().find(|e| v(e) == *version)
            };
            match found {
                Some(e) => json_reply(StatusCode::OK, e),
                None => error(StatusCode::NOT_FOUND, &format!("no chart version found for {name}-{}", if *version == "latest" { "" } else { version })),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The repository's entries and `index.yaml`, rebuilt first if its charts changed.
async fn index(m: &Arc<Museum>, repo: &str) -> Result<(BTreeMap<String, Vec<Json>>, Arc<String>), Response> {
    let dir = match resolve(&m.root, &[repo.to_string()]) {
        Ok(d) if d.is_dir() => d,
        Ok(_) | Err(PathError::NotFound) => return Err(error(StatusCode::NOT_FOUND, "not found")),
        Err(PathError::Bad) => return Err(PathError::Bad.into_response()),
    };
    let cell = m.repos.lock().unwrap_or_else(|e| e.into_inner()).entry(repo.to_string()).or_default().clone();
    let built = tokio::task::spawn_blocking(move || {
        let mut r = cell.lock().unwrap_or_else(|e| e.into_inner());
        refresh(&dir, &mut r).map(|()| (r.entries.clone(), r.raw.clone()))
    })
    .await;
    match built {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, &format!("index build failed: {e}"))),
    }
}

/// Rescans `dir`; reads only the charts that are new or changed, and rewrites the index only
/// when the set of charts changed.
fn refresh(dir: &Path, r: &mut Repo) -> Result<(), IndexError> {
    let mut files: Vec<(String, Stamp)> = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| IndexError::ReadDir { dir: dir.to_path_buf(), source })?;
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if !name.ends_with(".tgz") {
            continue;
        }
        // Charts are read where they really are, so a link pointing out is skipped.
        let Ok(real) = resolve(dir, std::slice::from_ref(&name)) else { continue };
        let Ok(meta) = std::fs::metadata(&real) else { continue };
        if meta.is_file() {
            let ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
            files.push((name, (meta.len(), ns)));
        }
    }
    files.sort();
    if files == r.fingerprint && !r.raw.is_empty() {
        return Ok(());
    }
    let mut seen = HashMap::new();
    for (name, stamp) in &files {
        if let Some(old) = r.seen.remove(name)
            && old.0 == *stamp
        {
            seen.insert(name.clone(), old);
            continue;
        }
        let entry = match chart_entry(&dir.join(name), name, stamp.1) {
            Ok(e) => Some(e),
            Err(msg) => {
                eprintln!("airlock serve: helm: {}: invalid chart package, left out of the index: {msg}", dir.join(name).display());
                None
            }
        };
        seen.insert(name.clone(), (*stamp, entry));
    }
    let mut entries: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for (_, e) in seen.values() {
        if let Some(e) = e {
            let name = e["name"].as_str().unwrap_or("").to_string();
            entries.entry(name).or_default().push(Json::Object(e.clone()));
        }
    }
    for versions in entries.values_mut() {
        // Newest first; versions that do not parse go last, as Helm's SortEntries orders them.
        versions.sort_by(|a, b| {
            let p = |e: &Json| Version::parse(e["version"].as_str().unwrap_or(""));
            p(b).cmp(&p(a))
        });
    }
    let index = json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": airlock_content::archive::manifest::rfc3339_utc(std::time::SystemTime::now()),
        "serverInfo": {},
    });
    let opts = airlock_base::pyfmt::YamlOptions { default_flow_style: Some(false), sort_keys: true, width: -1, ..Default::default() };
    let raw = airlock_base::pyfmt::to_yaml_with(&airlock_base::pyfmt::to_value(&index), &opts)
        .map_err(|source| IndexError::Emit { dir: dir.to_path_buf(), source })?;
    eprintln!("airlock serve: helm: {}: index regenerated ({} charts)", dir.display(), entries.values().map(Vec::len).sum::<usize>());
    *r = Repo { fingerprint: files, seen, entries, raw: Arc::new(raw) };
    Ok(())
}

/// A time as Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped), as ChartMuseum
/// writes `created`.
fn rfc3339_nano(ns: u128) -> String {
    let secs = (ns / 1_000_000_000) as u64;
    let frac = ns % 1_000_000_000;
    let base = airlock_content::archive::manifest::rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    if frac == 0 {
        return base;
    }
    let f = format!("{frac:09}");
    format!("{}.{}Z", base.trim_end_matches('Z'), f.trim_end_matches('0'))
}

/// The index entry of one chart archive, as ChartMuseum's ChartVersionFromStorageObject makes it.
fn chart_entry(path: &Path, file: &str, mtime_ns: u128) -> Result<Map<String, Json>, ChartError> {
    let content = std::fs::read(path).map_err(ChartError::Read)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&content[..]));
    let mut chart_yaml = None;
    for entry in tar.entries().map_err(ChartError::Archive)? {
        let mut entry = entry.map_err(ChartError::Archive)?;
        let p = entry.path().map_err(ChartError::Archive)?.into_owned();
        let parts: Vec<_> = p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
        if parts.len() == 2 && parts[1].as_os_str() == "Chart.yaml" && entry.header().entry_type().is_file() {
            let mut s = String::new();
            entry.read_to_string(&mut s).map_err(|source| ChartError::ReadChartYaml { source })?;
            chart_yaml = Some(s);
            break;
        }
    }
    let text = chart_yaml.ok_or(ChartError::NoChartYaml)?;
    let Json::Object(meta) = airlock_base::yaml::parse_json(&text).map_err(|source| ChartError::ChartYaml { source })? else {
        return Err(ChartError::NotMapping);
    };
    let mut e = Map::new();
    for k in METADATA_KEYS {
        let Some(v) = meta.get(*k) else { continue };
        let v = match (k, v) {
            (&("name" | "version" | "apiVersion" | "appVersion" | "kubeVersion" | "description"), Json::Number(n)) => Json::String(n.to_string()),
            (&("name" | "version" | "apiVersion" | "appVersion" | "kubeVersion" | "description"), Json::Bool(b)) => Json::String(b.to_string()),
            _ => v.clone(),
        };
        let empty = match &v {
            Json::Null | Json::Bool(false) => true,
            Json::String(s) => s.is_empty(),
            Json::Array(a) => a.is_empty(),
            Json::Object(o) => o.is_empty(),
            Json::Number(_) | Json::Bool(true) => false,
        };
        if !empty {
            e.insert(k.to_string(), v);
        }
    }
    // Helm assumes a v1 chart when Chart.yaml has no apiVersion.
    e.entry("apiVersion").or_insert_with(|| Json::String("v1".into()));
    if !e.get("name").is_some_and(Json::is_string) {
        return Err(ChartError::NoName);
    }
    let version = e.get("version").and_then(Json::as_str).unwrap_or("");
    if Version::parse(version).is_none() {
        return Err(ChartError::Version { version: version.to_string() });
    }
    e.insert("urls".into(), json!([format!("charts/{file}")]));
    e.insert("created".into(), Json::String(rfc3339_nano(mtime_ns)));
    e.insert("digest".into(), Json::String(airlock_base::digest::sha256_hex(&content)));
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_as_go_writes_it() {
        assert_eq!(rfc3339_nano(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(1_700_000_000_120_000_000), "2023-11-14T22:13:20.12Z");
    }

    fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn invalid_charts_say_why() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-1.0.0.tgz");
        assert!(matches!(chart_entry(&p, "c-1.0.0.tgz", 0), Err(ChartError::Read(_))));
        std::fs::write(&p, b"not gzip").unwrap();
        assert!(matches!(chart_entry(&p, "c-1.0.0.tgz", 0), Err(ChartError::Archive(_))));
        let why = |files: &[(&str, &str)]| {
            std::fs::write(&p, tgz(files)).unwrap();
            chart_entry(&p, "c-1.0.0.tgz", 0).map(|e| e["name"].clone()).map_err(|e| e.to_string())
        };
        assert_eq!(why(&[("c/values.yaml", "")]), Err("no Chart.yaml in the chart's top directory".into()));
        assert_eq!(why(&[("c/Chart.yaml", "- a\n")]), Err("Chart.yaml is not a mapping".into()));
        assert_eq!(why(&[("c/Chart.yaml", "version: 1.0.0\n")]), Err("chart.metadata.name is required".into()));
        assert_eq!(why(&[("c/Chart.yaml", "name: c\nversion: one\n")]), Err("chart.metadata.version \"one\" is not a valid SemVerV2".into()));
        assert!(why(&[("c/Chart.yaml", "name: [c\n")]).unwrap_err().starts_with("Chart.yaml: "));
        assert_eq!(why(&[("c/Chart.yaml", "name: c\nversion: 1.0.0\n")]), Ok(json!("c")));
        let missing = d.path().join("missing");
        let e = refresh(&missing, &mut Repo::default()).unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{e}");
    }
}

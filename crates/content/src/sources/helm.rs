//! Helm chart repositories mirrored for ChartMuseum (and for any static web server).
//!
//! A Helm repository is an `index.yaml` beside the chart archives it names:
//!
//! ```yaml
//! apiVersion: v1
//! entries:
//!   mychart:
//!     - name: mychart
//!       version: 1.2.0
//!       urls: [charts/mychart-1.2.0.tgz]     # relative to the repository URL, or absolute
//!       digest: 5f1c…                        # sha256 of the .tgz, hex
//!       created: "2024-01-01T00:00:00Z"
//! generated: "2024-01-01T00:00:00Z"
//! ```
//!
//! [`sync`] reads `<url>/index.yaml`, selects entries by the [`HelmRepo`] filters and downloads
//! each selected chart's first URL (resolved as Helm resolves it) into
//! `<dest>/<repo name>/<name>-<version>.tgz`, the flat layout ChartMuseum serves its storage
//! from and the file name `helm package` and ChartMuseum give a chart, whatever the upstream
//! URL's file name. Each archive is checked against the entry's `digest` while it streams and
//! only renamed into place when it matches, so the mirror holds nothing unverified; a chart
//! already in place with the right digest is not fetched again. Beside the charts it writes:
//!
//! * `index.yaml`: the selected entries, unchanged but for `urls`, which name the local files
//!   (relative), so a plain static server can serve the directory as a Helm repository too
//!   (ChartMuseum ignores it and builds its own index from the archives);
//! * `index.upstream.yaml`: the upstream index as it was fetched, for the record.
//!
//! Both are written only when every selected chart is in place and verified, and only when
//! their content changes (a re-run leaves them untouched).
//!
//! Selection, like `helm pull --version`: `charts` keeps only the charts named (each must be in
//! the index); `versions` keeps, per chart, the version equal to an item when the chart has
//! it, and otherwise every version satisfying the item read as a Masterminds semver
//! constraint (`>=1.2 <2`, `>=1.2, <2`, `~1.2`, `^1.2.3`, `1.2.x`, `1.2 - 1.4`, `!=1.3.0`,
//! `||`); as in Helm, a constraint without a prerelease never matches a prerelease version.
//! Each `versions` item must select something in some chart, or the sync fails naming it.
//!
//! Entries Helm would skip as invalid (no name, no version, a name with a path separator) and
//! entries whose version is unsafe as a file name are skipped and reported in `warnings`; a
//! second entry with the same name and version is skipped the same way.
//!
//! Known limits:
//! * A chart without a `digest` in the index is downloaded unverified (and again on every
//!   sync, since there is nothing to check the local copy against); the written index carries
//!   the digest computed from the download.
//! * Charts dropped from the selection (or from upstream) are not deleted from the mirror;
//!   they are only left out of the written index.
//! * Unquoted numbers in the upstream index are re-emitted as YAML numbers (an unquoted
//!   `appVersion: 1.10` becomes `1.1`); indexes written by Helm and ChartMuseum quote them.
//! * No authentication, provenance (`.prov`) files or OCI registries.
#![allow(clippy::result_large_err)] // errors are rare and name what failed in full

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::fetch::{self, Checksum, FetchError, Fetcher};

/// One Helm chart repository to mirror (a DeepOps-style `helm_chart_repos` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmRepo {
    /// The mirror's directory name under `dest` (one path component).
    pub name: String,
    /// The repository URL, the one `helm repo add` takes (without `/index.yaml`).
    pub url: String,
    /// Only these chart names; all charts when `None`.
    #[serde(default)]
    pub charts: Option<Vec<String>>,
    /// Only these versions, exact or semver constraints (see the module docs); all when `None`.
    #[serde(default)]
    pub versions: Option<Vec<String>>,
}

/// A chart in the mirror after [`sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedChart {
    pub name: String,
    pub version: String,
    /// Relative to `dest`: `<repo name>/<name>-<version>.tgz`.
    pub path: PathBuf,
    pub size: u64,
    /// The archive's sha256, hex (equal to the index's `digest` when it had one).
    pub sha256: String,
    /// The absolute URL it was (or would have been) downloaded from.
    pub url: String,
    /// False when the verified file was already in place.
    pub downloaded: bool,
}

/// What [`sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelmSync {
    /// Every selected chart, in index order.
    pub charts: Vec<SyncedChart>,
    /// Bytes of the archives downloaded in this run (0 when everything was in place).
    pub bytes_downloaded: u64,
    /// Whether `index.yaml` or `index.upstream.yaml` was (re)written.
    pub index_changed: bool,
    /// Entries skipped as invalid, one line each.
    pub warnings: Vec<String>,
}

impl HelmSync {
    /// Whether the run changed anything on disk.
    pub fn changed(&self) -> bool {
        self.index_changed || self.charts.iter().any(|c| c.downloaded)
    }
}

/// A chart [`plan`] selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedChart {
    pub name: String,
    pub version: String,
    /// Relative to `dest`.
    pub path: PathBuf,
    /// The absolute URL it would be downloaded from.
    pub url: String,
    /// The index's `digest` (sha256 hex), when it has one.
    pub digest: Option<String>,
    /// True when the file is in place and matches `digest` (a sync would not fetch it).
    pub present: bool,
    /// The local file's size when `present`. A Helm index carries no sizes, so what a
    /// download would cost is unknown until it is made: `None` for every chart to fetch.
    pub size: Option<u64>,
}

/// What [`sync`] would do (check mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelmPlan {
    pub charts: Vec<PlannedChart>,
    /// Entries skipped as invalid, one line each.
    pub warnings: Vec<String>,
}

impl HelmPlan {
    /// The charts a sync would download.
    pub fn to_download(&self) -> impl Iterator<Item = &PlannedChart> {
        self.charts.iter().filter(|c| !c.present)
    }
}

/// Why a Helm repository could not be mirrored.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The repository entry itself is unusable (name, URL).
    #[error("helm repository '{repo}': {msg}")]
    Config { repo: String, msg: String },
    /// The URL of `index.yaml` cannot be made from the repository's.
    #[error("helm repository '{repo}': {source}")]
    IndexUrl { repo: String, source: ResolveError },
    /// `index.yaml` could not be fetched.
    #[error("helm repository '{repo}': {url}: {source}")]
    Index { repo: String, url: String, source: FetchError },
    /// `index.yaml` is not a Helm index.
    #[error("helm repository '{repo}': {url}: {source}")]
    IndexInvalid { repo: String, url: String, source: IndexError },
    /// A chart or version the filters name is not in the index.
    #[error("helm repository '{repo}': {msg}")]
    NotFound { repo: String, msg: String },
    /// A selected entry cannot be downloaded (no URLs, a bad digest).
    #[error("helm repository '{repo}': chart {chart} version {version}: {msg}")]
    Entry { repo: String, chart: String, version: String, msg: String },
    /// A selected entry's URL cannot be resolved against the repository's.
    #[error("helm repository '{repo}': chart {chart} version {version}: {source}")]
    EntryUrl { repo: String, chart: String, version: String, source: ResolveError },
    /// The downloaded archive is not the one the index describes; nothing was kept.
    #[error("helm repository '{repo}': chart {chart} version {version}: digest mismatch for {url}: the index says {expected}, the download is {actual}")]
    Digest { repo: String, chart: String, version: String, url: String, expected: String, actual: String },
    /// The download failed.
    #[error("helm repository '{repo}': chart {chart} version {version}: {source}")]
    Download {
        repo: String,
        chart: String,
        version: String,
        #[source]
        source: FetchError,
    },
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// Several charts failed; each is named.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<HelmError>),
}

/// Why a URL cannot be resolved against a repository's ([`resolve_url`]).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("'{base}' is not a URL: {source}")]
    Base { base: String, source: url::ParseError },
    #[error("cannot resolve '{reference}' against '{base}': {source}")]
    Reference { base: String, reference: String, source: url::ParseError },
}

/// Why the bytes of an `index.yaml` are not a Helm index ([`parse_index`]).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("not UTF-8: {source}")]
    NotUtf8 { source: std::str::Utf8Error },
    #[error("empty index.yaml")]
    Empty,
    #[error("not a Helm index: {source}")]
    Yaml { source: airlock_base::yaml::YamlError },
    #[error("not a Helm index: not a mapping")]
    NotMapping,
    #[error("not a Helm index: no apiVersion")]
    NoApiVersion,
    #[error("not a Helm index: 'entries' is not a mapping")]
    EntriesNotMapping,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> HelmError {
    HelmError::Io { path: path.display().to_string(), msg: e.to_string() }
}

/// Mirrors `repo` into `dest/<repo.name>/`: fetches its index, downloads the selected charts
/// (at most `concurrency` at once, each verified against its `digest`, those already in place
/// and verified skipped), then writes `index.yaml` (local URLs) and `index.upstream.yaml`.
/// `on_bytes` is called with the length of each chunk downloaded (for progress bars).
///
/// Every selected chart is attempted; when any fails, the error names each failed chart and
/// version, no unverified file or `.part` is left at its path, and the indexes are not
/// rewritten.
pub fn sync(fetcher: &Fetcher, repo: &HelmRepo, dest: &Path, concurrency: usize, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<HelmSync, HelmError> {
    let dir = repo_dir(repo, dest)?;
    let (raw, index) = fetch_index(fetcher, repo)?;
    let sel = select(repo, &index)?;
    let headers = HeaderMap::new();

    let results = fetch::parallel(sel.charts.iter().collect(), concurrency, |c: &Selected| {
        let file = dir.join(&c.file_name);
        match fetcher.download(&c.url, &file, c.digest.as_ref(), &headers, on_bytes) {
            Ok(got) => Ok(SyncedChart {
                name: c.name.clone(),
                version: c.version.clone(),
                path: Path::new(&repo.name).join(&c.file_name),
                size: got.size,
                sha256: got.sha256,
                url: c.url.clone(),
                downloaded: got.downloaded,
            }),
            Err(e) => {
                // A file at the path that did not match before the download is not the chart
                // the index describes either: the mirror keeps only verified archives.
                if c.digest.is_some() {
                    let _ = fs::remove_file(&file);
                }
                let _ = fs::remove_file(fetch::part_path(&file));
                Err(match e {
                    FetchError::Checksum { url, expected, actual, .. } => {
                        HelmError::Digest { repo: repo.name.clone(), chart: c.name.clone(), version: c.version.clone(), url, expected, actual }
                    }
                    other => HelmError::Download { repo: repo.name.clone(), chart: c.name.clone(), version: c.version.clone(), source: other },
                })
            }
        }
    });

    let mut charts = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => charts.push(c),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.pop().unwrap());
    } else if !errors.is_empty() {
        return Err(HelmError::Many(errors));
    }

    let local = local_index(&index, &sel, &charts);
    let text = emit_index(&local)?;
    let mut index_changed = write_if_changed(&dir.join("index.upstream.yaml"), &raw)?;
    index_changed |= write_if_changed(&dir.join("index.yaml"), text.as_bytes())?;
    let bytes_downloaded = charts.iter().filter(|c| c.downloaded).map(|c| c.size).sum();
    Ok(HelmSync { charts, bytes_downloaded, index_changed, warnings: sel.warnings })
}

/// What [`sync`] would download, without downloading or writing anything (check mode): the
/// index is fetched (a read-only GET), the filters applied, and local files hashed to tell
/// which are already in place and verified. Sizes of charts still to fetch are unknown,
/// because a Helm index does not record them.
pub fn plan(fetcher: &Fetcher, repo: &HelmRepo, dest: &Path) -> Result<HelmPlan, HelmError> {
    let dir = repo_dir(repo, dest)?;
    let (_, index) = fetch_index(fetcher, repo)?;
    let sel = select(repo, &index)?;
    let mut charts = Vec::with_capacity(sel.charts.len());
    for c in &sel.charts {
        let file = dir.join(&c.file_name);
        let mut size = None;
        if let (Some(d), true) = (&c.digest, file.is_file()) {
            let (_, got) = fetch::hash_file(&file, d.algo).map_err(|e| io_err(&file, e))?;
            if got == d.hex {
                size = Some(fs::metadata(&file).map_err(|e| io_err(&file, e))?.len());
            }
        }
        charts.push(PlannedChart {
            name: c.name.clone(),
            version: c.version.clone(),
            path: Path::new(&repo.name).join(&c.file_name),
            url: c.url.clone(),
            digest: c.digest.as_ref().map(|d| d.hex.clone()),
            present: size.is_some(),
            size,
        });
    }
    Ok(HelmPlan { charts, warnings: sel.warnings })
}

/// Resolves `reference` against a repository URL as Helm's `ResolveReferenceURL` does: an
/// absolute reference is kept as it is; otherwise the base gets a trailing `/`, the
/// reference is resolved against it, and the base's query string is kept (signed URLs).
pub fn resolve_url(base: &str, reference: &str) -> Result<String, ResolveError> {
    if let Ok(abs) = url::Url::parse(reference) {
        return Ok(abs.to_string());
    }
    let mut b = url::Url::parse(base).map_err(|source| ResolveError::Base { base: base.to_string(), source })?;
    let query = b.query().map(str::to_string);
    let path = format!("{}/", b.path().trim_end_matches('/'));
    b.set_path(&path);
    b.set_query(None);
    let mut r = b.join(reference).map_err(|source| ResolveError::Reference { base: base.to_string(), reference: reference.to_string(), source })?;
    r.set_query(query.as_deref());
    Ok(r.to_string())
}

// ---------------------------------------------------------------------------------------------
// Index reading and selection
// ---------------------------------------------------------------------------------------------

fn repo_dir(repo: &HelmRepo, dest: &Path) -> Result<PathBuf, HelmError> {
    if !safe_component(&repo.name) {
        return Err(HelmError::Config { repo: repo.name.clone(), msg: "the name must be one directory name (no '/', not '.' or '..')".into() });
    }
    url::Url::parse(&repo.url).map_err(|e| HelmError::Config { repo: repo.name.clone(), msg: format!("url '{}' is not a URL: {e}", repo.url) })?;
    Ok(dest.join(&repo.name))
}

/// A name that is safe as one path component.
fn safe_component(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && !s.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

fn fetch_index(fetcher: &Fetcher, repo: &HelmRepo) -> Result<(Vec<u8>, Json), HelmError> {
    let url = resolve_url(&repo.url, "index.yaml").map_err(|source| HelmError::IndexUrl { repo: repo.name.clone(), source })?;
    let (raw, _) = fetcher.get(&url, &HeaderMap::new()).map_err(|source| HelmError::Index { repo: repo.name.clone(), url: url.clone(), source })?;
    let index = parse_index(&raw).map_err(|source| HelmError::IndexInvalid { repo: repo.name.clone(), url: url.clone(), source })?;
    Ok((raw, index))
}

/// Parses the bytes of a repository's `index.yaml` to its data, checked to be a Helm index
/// (a mapping with an `apiVersion` and a mapping of `entries`); the message says what is
/// wrong. Public as the entry point the index fuzz target feeds.
pub fn parse_index(raw: &[u8]) -> Result<Json, IndexError> {
    let text = std::str::from_utf8(raw).map_err(|source| IndexError::NotUtf8 { source })?;
    if text.trim().is_empty() {
        return Err(IndexError::Empty);
    }
    let index = airlock_base::yaml::parse_json(text).map_err(|source| IndexError::Yaml { source })?;
    let Json::Object(top) = &index else { return Err(IndexError::NotMapping) };
    match top.get("apiVersion") {
        Some(Json::String(s)) if !s.is_empty() => {}
        _ => return Err(IndexError::NoApiVersion),
    }
    match top.get("entries") {
        None | Some(Json::Null) | Some(Json::Object(_)) => {}
        Some(_) => return Err(IndexError::EntriesNotMapping),
    }
    Ok(index)
}

/// What [`select_offline`] gives: (chart file name, URL) pairs, warnings, the index text.
pub type OfflineSelection = (Vec<(String, String)>, Vec<String>, String);

/// What [`sync`] would keep of a parsed index for `repo`, without fetching anything: the
/// selected charts' file names and download URLs, the warnings about skipped entries, and
/// the local `index.yaml` text written as if every chart had been downloaded with an empty
/// digest. Public so the fuzz target runs the selection and the index writer on arbitrary
/// indexes.
pub fn select_offline(repo: &HelmRepo, index: &Json) -> Result<OfflineSelection, HelmError> {
    let sel = select(repo, index)?;
    let synced: Vec<SyncedChart> = sel
        .charts
        .iter()
        .map(|c| SyncedChart {
            name: c.name.clone(),
            version: c.version.clone(),
            path: PathBuf::from(&c.file_name),
            size: 0,
            sha256: String::new(),
            url: c.url.clone(),
            downloaded: false,
        })
        .collect();
    let text = emit_index(&local_index(index, &sel, &synced))?;
    let files = sel.charts.iter().map(|c| (c.file_name.clone(), c.url.clone())).collect();
    Ok((files, sel.warnings, text))
}

/// A selected index entry.
#[derive(Debug)]
struct Selected {
    name: String,
    version: String,
    /// Absolute download URL.
    url: String,
    /// `<name>-<version>.tgz`.
    file_name: String,
    digest: Option<Checksum>,
    entry: Map<String, Json>,
}

struct Selection {
    charts: Vec<Selected>,
    warnings: Vec<String>,
}

fn scalar_string(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn select(repo: &HelmRepo, index: &Json) -> Result<Selection, HelmError> {
    let empty = Map::new();
    let entries = index.get("entries").and_then(Json::as_object).unwrap_or(&empty);
    let mut warnings = Vec::new();

    if let Some(names) = &repo.charts {
        let missing: Vec<&str> = names.iter().filter(|n| !entries.contains_key(n.as_str())).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(HelmError::NotFound { repo: repo.name.clone(), msg: format!("chart {} not found in {}", missing.join(", "), repo.url) });
        }
    }
    let constraints: Vec<(String, Option<semver::Constraints>)> = repo.versions.iter().flatten().map(|v| (v.clone(), semver::Constraints::parse(v))).collect();
    let mut used = vec![false; constraints.len()];
    let mut charts = Vec::new();

    for (key, versions) in entries {
        if repo.charts.as_ref().is_some_and(|names| !names.iter().any(|n| n == key)) {
            continue;
        }
        let list: &[Json] = match versions {
            Json::Array(a) => a,
            Json::Null => &[],
            _ => {
                warnings.push(format!("chart {key}: skipped: its entry is not a list of versions"));
                continue;
            }
        };
        // Valid entries of this chart, in index order.
        let mut valid: Vec<(String, &Map<String, Json>)> = Vec::new();
        let mut seen = HashSet::new();
        for e in list {
            let Some(e) = e.as_object() else {
                warnings.push(format!("chart {key}: skipped an entry that is not a mapping"));
                continue;
            };
            let version = scalar_string(e.get("version")).unwrap_or_default();
            let name = scalar_string(e.get("name")).unwrap_or_default();
            let why = if name.is_empty() {
                Some("it has no name".to_string())
            } else if name != *key {
                Some(format!("its name '{name}' is not its key"))
            } else if !safe_component(&name) {
                Some("its name is not a plain file name".to_string())
            } else if version.is_empty() {
                Some("it has no version".to_string())
            } else if !safe_component(&version) {
                Some("its version is not usable in a file name".to_string())
            } else if !seen.insert(version.clone()) {
                Some("the same version is listed earlier".to_string())
            } else {
                None
            };
            match why {
                Some(why) => warnings.push(format!("chart {key} version {}: skipped: {why}", if version.is_empty() { "?" } else { &version })),
                None => valid.push((version, e)),
            }
        }

        let chosen: Vec<bool> = if constraints.is_empty() {
            vec![true; valid.len()]
        } else {
            let mut chosen = vec![false; valid.len()];
            let parsed: Vec<Option<semver::Version>> = valid.iter().map(|(v, _)| semver::Version::parse(v)).collect();
            for (ci, (item, cons)) in constraints.iter().enumerate() {
                // As `helm pull --version`: an exact version first, else the constraint.
                if let Some(i) = valid.iter().position(|(v, _)| v == item) {
                    chosen[i] = true;
                    used[ci] = true;
                    continue;
                }
                let Some(cons) = cons else { continue };
                for (i, p) in parsed.iter().enumerate() {
                    if p.as_ref().is_some_and(|p| cons.matches(p)) {
                        chosen[i] = true;
                        used[ci] = true;
                    }
                }
            }
            chosen
        };

        for ((version, e), keep) in valid.into_iter().zip(chosen) {
            if !keep {
                continue;
            }
            let entry_err = |msg: String| HelmError::Entry { repo: repo.name.clone(), chart: key.clone(), version: version.clone(), msg };
            let first = match e.get("urls") {
                Some(Json::Array(u)) => u.first().and_then(Json::as_str),
                _ => None,
            };
            let Some(first) = first.filter(|u| !u.is_empty()) else { return Err(entry_err("it has no downloadable URLs".into())) };
            let url = resolve_url(&repo.url, first).map_err(|source| HelmError::EntryUrl {
                repo: repo.name.clone(),
                chart: key.clone(),
                version: version.clone(),
                source,
            })?;
            let digest = match scalar_string(e.get("digest")).filter(|d| !d.is_empty()) {
                Some(d) => Some(Checksum::parse(&d).map_err(|m| entry_err(format!("bad digest: {m}")))?),
                None => None,
            };
            charts.push(Selected { name: key.clone(), file_name: format!("{key}-{version}.tgz"), version, url, digest, entry: e.clone() });
        }
    }

    let unused: Vec<&str> = constraints.iter().zip(&used).filter(|(_, u)| !**u).map(|((v, _), _)| v.as_str()).collect();
    if !unused.is_empty() {
        let within = match &repo.charts {
            Some(n) => format!("charts {}", n.join(", ")),
            None => "any chart".to_string(),
        };
        return Err(HelmError::NotFound {
            repo: repo.name.clone(),
            msg: format!("version {} matches no version of {within} in {}", unused.join(", "), repo.url),
        });
    }
    Ok(Selection { charts, warnings })
}

// ---------------------------------------------------------------------------------------------
// The local index
// ---------------------------------------------------------------------------------------------

/// Characters kept as they are in a relative URL; others are percent-encoded.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The upstream index reduced to the selected entries, their `urls` naming the local files.
fn local_index(upstream: &Json, sel: &Selection, synced: &[SyncedChart]) -> Json {
    let mut entries: Map<String, Json> = Map::new();
    for (c, s) in sel.charts.iter().zip(synced) {
        let mut e = c.entry.clone();
        e.insert("urls".into(), Json::Array(vec![Json::String(url_escape(&c.file_name))]));
        if c.digest.is_none() {
            e.insert("digest".into(), Json::String(s.sha256.clone()));
        }
        let list = entries.entry(c.name.clone()).or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(a) = list {
            a.push(Json::Object(e));
        }
    }
    let mut top = Map::new();
    for key in ["apiVersion", "entries", "generated", "annotations"] {
        if key == "entries" {
            top.insert(key.into(), Json::Object(std::mem::take(&mut entries)));
        } else if let Some(v) = upstream.get(key).filter(|v| !v.is_null()) {
            top.insert(key.into(), v.clone());
        }
    }
    Json::Object(top)
}

/// YAML text for an index, checked to read back as the same data.
fn emit_index(index: &Json) -> Result<String, HelmError> {
    let opts = airlock_base::pyfmt::YamlOptions { default_flow_style: Some(false), sort_keys: false, width: -1, ..Default::default() };
    let bad = |msg: String| HelmError::Io { path: "index.yaml".into(), msg };
    let text =
        airlock_base::pyfmt::to_yaml_with(&airlock_base::pyfmt::to_value(index), &opts).map_err(|e| bad(format!("cannot write the index as YAML: {e}")))?;
    let back = airlock_base::yaml::parse_json(&text).map_err(|e| bad(format!("the written index does not parse: {e}")))?;
    if back != *index {
        return Err(bad("the written index does not read back as the data written".into()));
    }
    Ok(text)
}

/// Writes `data` to `path` atomically unless it already holds exactly that; true when written.
fn write_if_changed(path: &Path, data: &[u8]) -> Result<bool, HelmError> {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    let part = fetch::part_path(path);
    fs::write(&part, data).map_err(|e| io_err(&part, e))?;
    fs::rename(&part, path).map_err(|e| {
        let _ = fs::remove_file(&part);
        io_err(path, e)
    })?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Semantic versions and constraints, as Helm reads them (Masterminds semver v3)
// ---------------------------------------------------------------------------------------------

/// Helm's (Masterminds semver v3) versions and constraints, also used to order a served index.
pub mod semver {
    use std::cmp::Ordering;

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ident {
        Num(u64),
        Alpha(String),
    }

    impl Ord for Ident {
        fn cmp(&self, other: &Self) -> Ordering {
            match (self, other) {
                (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
                (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
                (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
                (Ident::Alpha(a), Ident::Alpha(b)) => a.cmp(b),
            }
        }
    }

    impl PartialOrd for Ident {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    /// A version; build metadata is dropped (it does not take part in comparisons).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Version {
        major: u64,
        minor: u64,
        patch: u64,
        pre: Vec<Ident>,
    }

    impl Ord for Version {
        fn cmp(&self, other: &Self) -> Ordering {
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
        }
    }

    impl PartialOrd for Version {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    fn parse_idents(s: &str) -> Option<Vec<Ident>> {
        s.split('.')
            .map(|p| {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    None
                } else if p.chars().all(|c| c.is_ascii_digit()) {
                    p.parse().ok().map(Ident::Num)
                } else {
                    Some(Ident::Alpha(p.to_string()))
                }
            })
            .collect()
    }

    /// Splits `[v]1.2.3[-pre][+build]` into its numeric parts (each a number or, when
    /// `wild` is allowed, `x`/`X`/`*` as `None`; missing ones `None`) and prerelease.
    fn parse_parts(s: &str, wild: bool) -> Option<([Option<u64>; 3], usize, Vec<Ident>)> {
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        let s = match s.split_once('+') {
            Some((v, build)) => {
                parse_idents(build)?;
                v
            }
            None => s,
        };
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, parse_idents(p)?),
            None => (s, Vec::new()),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return None;
        }
        let mut nums = [None; 3];
        let mut wildcard = false;
        for (i, p) in parts.iter().enumerate() {
            if wild && matches!(*p, "x" | "X" | "*") {
                wildcard = true;
            } else if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
                if !wildcard {
                    nums[i] = Some(p.parse().ok()?);
                }
            } else {
                return None;
            }
        }
        Some((nums, parts.len(), pre))
    }

    impl Version {
        /// Parses leniently, as Masterminds' `NewVersion`: `v` prefix, missing minor/patch.
        pub fn parse(s: &str) -> Option<Version> {
            let (n, _, pre) = parse_parts(s.trim(), false)?;
            Some(Version { major: n[0]?, minor: n[1].unwrap_or(0), patch: n[2].unwrap_or(0), pre })
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Op {
        /// `=` or no operator: equal, or within the wildcard's range when parts are missing.
        Eq,
        Ne,
        Gt,
        Ge,
        Lt,
        Le,
        Tilde,
        Caret,
    }

    /// One constraint's version, parts missing or wild as `None`.
    #[derive(Clone, Debug)]
    struct Partial {
        nums: [Option<u64>; 3],
        pre: Vec<Ident>,
    }

    impl Partial {
        fn dirty(&self) -> bool {
            self.nums.iter().any(Option::is_none)
        }
        fn floor(&self) -> Version {
            Version { major: self.nums[0].unwrap_or(0), minor: self.nums[1].unwrap_or(0), patch: self.nums[2].unwrap_or(0), pre: self.pre.clone() }
        }
        /// The first version past every version the partial stands for (`1.2` → `1.3.0`);
        /// `None` for `*`.
        fn past(&self) -> Option<Version> {
            let v = |major, minor, patch| Some(Version { major, minor, patch, pre: Vec::new() });
            match self.nums {
                [None, ..] => None,
                [Some(m), None, _] => v(m + 1, 0, 0),
                [Some(m), Some(n), None] => v(m, n + 1, 0),
                [Some(m), Some(n), Some(p)] => v(m, n, p + 1),
            }
        }
        /// The upper bound of `~` (`~1` → `2.0.0`, `~1.2.3` → `1.3.0`).
        fn tilde_end(&self) -> Option<Version> {
            let v = |major, minor| Some(Version { major, minor, patch: 0, pre: Vec::new() });
            match self.nums {
                [None, ..] => None,
                [Some(m), None, _] => v(m + 1, 0),
                [Some(m), Some(n), _] => v(m, n + 1),
            }
        }
        /// The upper bound of `^` (`^1.2` → `2.0.0`, `^0.2` → `0.3.0`, `^0.0.3` → `0.0.4`).
        fn caret_end(&self) -> Option<Version> {
            let v = |major, minor, patch| Some(Version { major, minor, patch, pre: Vec::new() });
            match self.nums {
                [None, ..] => None,
                [Some(m), ..] if m > 0 => v(m + 1, 0, 0),
                [Some(0), None, _] => v(1, 0, 0),
                [Some(0), Some(n), _] if n > 0 => v(0, n + 1, 0),
                [Some(0), Some(0), None] => v(0, 1, 0),
                [Some(0), Some(0), Some(p)] => v(0, 0, p + 1),
                _ => unreachable!(),
            }
        }
    }

    #[derive(Clone, Debug)]
    struct Constraint {
        op: Op,
        ver: Partial,
    }

    impl Constraint {
        fn matches(&self, v: &Version) -> bool {
            let c = &self.ver;
            // A prerelease only satisfies constraints that mention prereleases (Masterminds
            // leaves out only an exact `!=`).
            if !v.pre.is_empty() && c.pre.is_empty() && (self.op != Op::Ne || c.dirty()) {
                return false;
            }
            let zero = |p: &Partial| p.nums.iter().all(|n| n.is_none_or(|n| n == 0)) && p.nums[1].is_some() && p.nums[2].is_some();
            let within = |lo: Version, hi: Option<Version>| *v >= lo && hi.is_none_or(|h| *v < h);
            match self.op {
                Op::Eq if c.dirty() => within(c.floor(), c.tilde_end()),
                Op::Eq => *v == c.floor(),
                Op::Ne if c.dirty() => !within(c.floor(), c.tilde_end()),
                Op::Ne => *v != c.floor(),
                Op::Gt if c.nums[0].is_none() => *v > c.floor(),
                Op::Gt if c.dirty() => c.past().is_some_and(|p| *v >= p),
                Op::Gt => *v > c.floor(),
                Op::Ge => *v >= c.floor(),
                Op::Lt => *v < c.floor() && c.nums[0].is_some(),
                Op::Le if c.dirty() => c.past().is_none_or(|p| *v < p),
                Op::Le => *v <= c.floor(),
                // `~0.0.0` is any version.
                Op::Tilde if zero(c) => true,
                Op::Tilde => within(c.floor(), c.tilde_end()),
                Op::Caret => within(c.floor(), c.caret_end()),
            }
        }
    }

    /// Alternatives (`||`) of constraints that must all hold.
    #[derive(Clone, Debug)]
    pub struct Constraints {
        any: Vec<Vec<Constraint>>,
    }

    fn split_op(tok: &str) -> (Op, &str) {
        for (p, op) in [
            (">=", Op::Ge),
            ("=>", Op::Ge),
            ("<=", Op::Le),
            ("=<", Op::Le),
            ("!=", Op::Ne),
            ("~>", Op::Tilde),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
            ("~", Op::Tilde),
            ("^", Op::Caret),
        ] {
            if let Some(rest) = tok.strip_prefix(p) {
                return (op, rest);
            }
        }
        (Op::Eq, tok)
    }

    fn partial(s: &str) -> Option<Partial> {
        let (nums, _, pre) = parse_parts(s, true)?;
        Some(Partial { nums, pre })
    }

    impl Constraints {
        /// Parses `>=1.2 <2`, `>=1.2, <2`, `~1.2 || ^2`, `1.2 - 1.4`, `1.x`, `*`.
        pub fn parse(s: &str) -> Option<Constraints> {
            let mut any = Vec::new();
            for alt in s.split("||") {
                let toks: Vec<&str> = alt.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).collect();
                if toks.is_empty() {
                    return None;
                }
                let mut all = Vec::new();
                let mut i = 0;
                while i < toks.len() {
                    // A hyphen range: `1.2 - 1.4.5` is `>=1.2 <=1.4.5`.
                    if toks.get(i + 1) == Some(&"-") {
                        let lo = partial(toks[i])?;
                        let hi = partial(toks.get(i + 2)?)?;
                        all.push(Constraint { op: Op::Ge, ver: lo });
                        all.push(Constraint { op: Op::Le, ver: hi });
                        i += 3;
                        continue;
                    }
                    let (op, mut rest) = split_op(toks[i]);
                    i += 1;
                    if rest.is_empty() {
                        // An operator apart from its version: `>= 1.2`.
                        rest = toks.get(i)?;
                        i += 1;
                    }
                    all.push(Constraint { op, ver: partial(rest)? });
                }
                any.push(all);
            }
            Some(Constraints { any })
        }

        pub fn matches(&self, v: &Version) -> bool {
            self.any.iter().any(|all| all.iter().all(|c| c.matches(v)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::semver::{Constraints, Version};
    use super::*;

    fn m(c: &str, v: &str) -> bool {
        Constraints::parse(c).unwrap_or_else(|| panic!("constraint {c}")).matches(&Version::parse(v).unwrap_or_else(|| panic!("version {v}")))
    }

    #[test]
    fn constraints_as_helm_reads_them() {
        assert!(m("1.2.3", "1.2.3"));
        assert!(m("1.2.3", "v1.2.3"));
        assert!(!m("1.2.3", "1.2.4"));
        assert!(m(">=1.2 <2", "1.2.0"));
        assert!(m(">=1.2 <2", "1.9.9"));
        assert!(!m(">=1.2 <2", "2.0.0"));
        assert!(!m(">=1.2 <2", "1.1.9"));
        assert!(m(">=1.2, <2", "1.5.0"));
        assert!(m(">= 1.2, < 2", "1.5.0"));
        assert!(!m(">=1.2 <2", "1.5.0-rc.1"));
        // Every constraint of a group must mention a prerelease for one to match.
        assert!(!m(">=1.2.0-0 <2", "1.5.0-rc.1"));
        assert!(m(">=1.2.0-0 <2.0.0-0", "1.5.0-rc.1"));
        assert!(m("!=1.3.0", "1.4.0-rc.1"));
        assert!(!m("!=1.3", "1.4.0-rc.1"));
        assert!(m("~0.0.0", "5.0.0"));
        assert!(m(">*", "0.0.1"));
        assert!(m("~1.2", "1.2.9"));
        assert!(!m("~1.2", "1.3.0"));
        assert!(m("~1.2.3", "1.2.5"));
        assert!(!m("~1.2.3", "1.2.2"));
        assert!(m("^1.2.3", "1.9.0"));
        assert!(!m("^1.2.3", "2.0.0"));
        assert!(m("^0.2.3", "0.2.9"));
        assert!(!m("^0.2.3", "0.3.0"));
        assert!(m("^0.0.3", "0.0.3"));
        assert!(!m("^0.0.3", "0.0.4"));
        assert!(m("1.2.x", "1.2.7"));
        assert!(!m("1.2.x", "1.3.0"));
        assert!(m("1.2", "1.2.7"));
        assert!(m("*", "3.0.0"));
        assert!(!m("*", "3.0.0-beta"));
        assert!(m(">1.2", "1.3.0"));
        assert!(!m(">1.2", "1.2.9"));
        assert!(m("<=1.2", "1.2.9"));
        assert!(!m("<=1.2", "1.3.0"));
        assert!(m("1.2 - 1.4.5", "1.4.5"));
        assert!(!m("1.2 - 1.4.5", "1.4.6"));
        assert!(m("~1.2 || ^3", "3.4.0"));
        assert!(!m("~1.2 || ^3", "2.0.0"));
        assert!(m("!=1.3.0", "1.3.1"));
        assert!(!m("!=1.3.0", "1.3.0"));
        assert!(Constraints::parse("latest").is_none());
        assert!(Constraints::parse(">=").is_none());
    }

    #[test]
    fn prerelease_order() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("1.0.0+build.5"), v("1.0.0"));
    }

    #[test]
    fn urls_resolve_as_helm_resolves_them() {
        assert_eq!(resolve_url("https://h/charts", "index.yaml").unwrap(), "https://h/charts/index.yaml");
        assert_eq!(resolve_url("https://h/charts/", "index.yaml").unwrap(), "https://h/charts/index.yaml");
        assert_eq!(resolve_url("https://h/charts", "sub/a-1.0.0.tgz").unwrap(), "https://h/charts/sub/a-1.0.0.tgz");
        assert_eq!(resolve_url("https://h/charts", "/other/a.tgz").unwrap(), "https://h/other/a.tgz");
        assert_eq!(resolve_url("https://h/charts", "https://cdn/a.tgz").unwrap(), "https://cdn/a.tgz");
        assert_eq!(resolve_url("https://h/charts?sig=1", "index.yaml").unwrap(), "https://h/charts/index.yaml?sig=1");
        assert_eq!(resolve_url("https://h", "a.tgz").unwrap(), "https://h/a.tgz");
        let e = resolve_url("not a url", "a.tgz").unwrap_err();
        assert!(matches!(&e, ResolveError::Base { base, .. } if base == "not a url"), "{e:?}");
        assert_eq!(e.to_string(), "'not a url' is not a URL: relative URL without a base");
    }

    #[test]
    fn selection_by_name_and_version() {
        let index = airlock_base::yaml::parse_json(
            "apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.2.0, urls: [a-1.2.0.tgz]}\n  - {name: a, version: 1.1.0, urls: [a-1.1.0.tgz]}\n  - {name: a, version: 2.0.0-rc.1, urls: [a-2.0.0-rc.1.tgz]}\n  - {name: a, version: 1.1.0, urls: [dup.tgz]}\n  - {version: 9.9.9, urls: [x.tgz]}\n  b:\n  - {name: b, version: '1.2', urls: [b.tgz]}\n  - {name: b, version: 1.2.5, urls: [b2.tgz]}\n",
        )
        .unwrap();
        let repo = |charts: Option<&[&str]>, versions: Option<&[&str]>| HelmRepo {
            name: "r".into(),
            url: "http://h/r".into(),
            charts: charts.map(|c| c.iter().map(|s| s.to_string()).collect()),
            versions: versions.map(|c| c.iter().map(|s| s.to_string()).collect()),
        };
        let names = |s: Selection| s.charts.iter().map(|c| format!("{}-{}", c.name, c.version)).collect::<Vec<_>>();
        let all = select(&repo(None, None), &index).unwrap();
        assert_eq!(all.warnings.len(), 2, "{:?}", all.warnings);
        assert_eq!(names(all), ["a-1.2.0", "a-1.1.0", "a-2.0.0-rc.1", "b-1.2", "b-1.2.5"]);
        assert_eq!(names(select(&repo(Some(&["b"]), None), &index).unwrap()), ["b-1.2", "b-1.2.5"]);
        // An exact version wins over reading it as a range, per chart.
        assert_eq!(names(select(&repo(None, Some(&["1.2"])), &index).unwrap()), ["a-1.2.0", "b-1.2"]);
        assert_eq!(names(select(&repo(None, Some(&[">=1.1 <2"])), &index).unwrap()), ["a-1.2.0", "a-1.1.0", "b-1.2", "b-1.2.5"]);
        assert_eq!(names(select(&repo(Some(&["a"]), Some(&["2.0.0-rc.1"])), &index).unwrap()), ["a-2.0.0-rc.1"]);
        let e = select(&repo(Some(&["a", "zz"]), None), &index).err().unwrap().to_string();
        assert!(e.contains("chart zz not found"), "{e}");
        let e = select(&repo(Some(&["a"]), Some(&["1.2.0", "7.0.0"])), &index).err().unwrap().to_string();
        assert!(e.contains("version 7.0.0 matches no version"), "{e}");
    }

    #[test]
    fn local_index_reads_back() {
        let index = airlock_base::yaml::parse_json("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: '1.10'\n    appVersion: 'yes'\n    created: 2024-01-02T03:04:05.123Z\n    digest: '0123'\n    urls: [https://x/a.tgz]\n    description: \"a: b # c\"\ngenerated: 2024-01-02T03:04:05Z\n").unwrap();
        let repo = HelmRepo { name: "r".into(), url: "http://h/r".into(), ..Default::default() };
        let sel = select(&repo, &index).unwrap();
        let synced = vec![SyncedChart {
            name: "a".into(),
            version: "1.10".into(),
            path: "r/a-1.10.tgz".into(),
            size: 1,
            sha256: "0123".into(),
            url: "https://x/a.tgz".into(),
            downloaded: true,
        }];
        let local = local_index(&index, &sel, &synced);
        let text = emit_index(&local).unwrap();
        let back = airlock_base::yaml::parse_json(&text).unwrap();
        assert_eq!(back["entries"]["a"][0]["urls"][0], "a-1.10.tgz");
        assert_eq!(back["entries"]["a"][0]["version"], "1.10");
        assert_eq!(back["entries"]["a"][0]["appVersion"], "yes");
        assert_eq!(back["generated"], "2024-01-02T03:04:05Z");
    }

    #[test]
    fn index_parses_and_selects_offline() {
        assert!(parse_index(b"").unwrap_err().to_string().contains("empty"));
        assert!(parse_index(b"entries: {}").unwrap_err().to_string().contains("no apiVersion"));
        assert!(parse_index(b"apiVersion: v1\nentries: []").unwrap_err().to_string().contains("not a mapping"));
        assert_eq!(parse_index(b"- a").unwrap_err().to_string(), "not a Helm index: not a mapping");
        assert_eq!(parse_index(b"entries: {}").unwrap_err().to_string(), "not a Helm index: no apiVersion");
        assert_eq!(parse_index(b"apiVersion: v1\nentries: []").unwrap_err().to_string(), "not a Helm index: 'entries' is not a mapping");
        assert_eq!(parse_index(b" \n").unwrap_err().to_string(), "empty index.yaml");
        assert!(parse_index(b"\xff").unwrap_err().to_string().starts_with("not UTF-8: "));
        assert!(matches!(parse_index(b"a: [").unwrap_err(), IndexError::Yaml { .. }));
        let index =
            parse_index(b"apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0, urls: [a-1.0.0.tgz]}\n  - {name: b, version: 2.0.0}\n").unwrap();
        let repo = HelmRepo { name: "r".into(), url: "http://h/charts".into(), charts: None, versions: None };
        let (files, warnings, text) = select_offline(&repo, &index).unwrap();
        assert_eq!(files, [("a-1.0.0.tgz".to_string(), "http://h/charts/a-1.0.0.tgz".to_string())]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(text.contains("- a-1.0.0.tgz"), "{text}");
    }
}

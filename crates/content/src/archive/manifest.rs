//! `manifest.json`: every artifact of an offline archive with its size, sha256 and source.
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "created": "2025-06-01T12:00:00Z",
//!   "airlock_version": "0.1.0",
//!   "artifacts": [
//!     { "kind": "rpm", "path": "yum/base/Packages/a.rpm", "size": 123, "sha256": "…",
//!       "source": "https://mirror/…/a.rpm", "name": "a", "version": "1.0" }
//!   ]
//! }
//! ```
//!
//! Paths are relative to the cache root with `/` separators, never `..`, `.` or empty
//! components, never absolute; `manifest.json` itself is reserved.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ArchiveError, FORMAT_VERSION, KindTotal, MANIFEST_NAME, io_err};

/// Well-known artifact kinds; any other string is accepted too.
pub mod kind {
    pub const IMAGE: &str = "image";
    pub const BLOB: &str = "blob";
    pub const RPM: &str = "rpm";
    pub const REPODATA: &str = "repodata";
    pub const PYTHON: &str = "python";
    pub const CHART: &str = "chart";
    pub const FILE: &str = "file";
}

/// One file of the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// `image`, `blob`, `rpm`, `repodata`, `python`, `chart`, `file`, ...
    pub kind: String,
    /// Relative to the cache root, `/` separators.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// Where it came from: a URL or an image reference.
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Artifact {
    /// Describes the cache file `cache_root/path`, hashing it.
    pub fn from_file(cache_root: &Path, path: &str, kind: &str, source: &str) -> Result<Artifact, ArchiveError> {
        let full = cache_root.join(path);
        let (size, sha256) = hash_file(&full)?;
        Ok(Artifact { kind: kind.to_string(), path: path.to_string(), size, sha256, source: source.to_string(), name: None, version: None })
    }
}

/// Size and lowercase hex sha256 of a file, read once through a bounded buffer.
pub fn hash_file(path: &Path) -> Result<(u64, String), ArchiveError> {
    airlock_base::digest::sha256_file(path).map_err(io_err(path))
}

/// The archive's table of contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// RFC 3339, UTC (`2025-06-01T12:00:00Z`).
    pub created: String,
    pub airlock_version: String,
    pub artifacts: Vec<Artifact>,
}

/// What is wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError(pub String);

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ValidationError> for ArchiveError {
    fn from(e: ValidationError) -> Self {
        ArchiveError::Manifest(e.0)
    }
}

impl Manifest {
    /// A manifest created now by this airlock, artifacts sorted by path.
    pub fn new(artifacts: Vec<Artifact>) -> Manifest {
        Manifest::with_created(artifacts, rfc3339_utc(std::time::SystemTime::now()))
    }

    /// As [`Manifest::new`] with a given creation time (for reproducible archives).
    pub fn with_created(artifacts: Vec<Artifact>, created: String) -> Manifest {
        let mut m = Manifest { format_version: FORMAT_VERSION, created, airlock_version: env!("CARGO_PKG_VERSION").to_string(), artifacts };
        m.sort();
        m
    }

    /// Sorts artifacts by path (byte order), the order they are written in.
    pub fn sort(&mut self) {
        self.artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// Whether the artifacts are sorted by path.
    pub fn is_sorted(&self) -> bool {
        self.artifacts.windows(2).all(|w| w[0].path <= w[1].path)
    }

    /// The artifact with this path (binary search when sorted, a scan otherwise).
    pub fn get(&self, path: &str) -> Option<&Artifact> {
        if self.is_sorted() {
            self.artifacts.binary_search_by(|a| a.path.as_str().cmp(path)).ok().map(|i| &self.artifacts[i])
        } else {
            self.artifacts.iter().find(|a| a.path == path)
        }
    }

    /// Path → index into `artifacts`, for many look-ups.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.artifacts.iter().enumerate().map(|(i, a)| (a.path.as_str(), i)).collect()
    }

    /// Every directory that holds an artifact (`a`, `a/b` for `a/b/c.rpm`).
    pub fn directories(&self) -> HashSet<&str> {
        let mut dirs = HashSet::new();
        for a in &self.artifacts {
            let mut p = a.path.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !dirs.insert(p) {
                    break;
                }
            }
        }
        dirs
    }

    pub fn total_size(&self) -> u64 {
        self.artifacts.iter().fold(0u64, |s, a| s.saturating_add(a.size))
    }

    /// Count and total size per kind, by kind name.
    pub fn by_kind(&self) -> BTreeMap<String, KindTotal> {
        let mut m: BTreeMap<String, KindTotal> = BTreeMap::new();
        for a in &self.artifacts {
            let t = m.entry(a.kind.clone()).or_default();
            t.count += 1;
            t.bytes = t.bytes.saturating_add(a.size);
        }
        m
    }

    /// Checks the format version, every path, every sha256, duplicates, and that no path is
    /// both a file and a directory.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.format_version == 0 || self.format_version > FORMAT_VERSION {
            return Err(ValidationError(format!("format_version {} is not supported (this airlock reads up to {FORMAT_VERSION})", self.format_version)));
        }
        let mut seen = HashSet::with_capacity(self.artifacts.len());
        for a in &self.artifacts {
            check_path(&a.path).map_err(|why| ValidationError(format!("artifact path {:?}: {why}", a.path)))?;
            if a.path == MANIFEST_NAME {
                return Err(ValidationError(format!("artifact path {MANIFEST_NAME:?} is reserved for the manifest")));
            }
            if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(ValidationError(format!("artifact {:?}: sha256 {:?} is not 64 lowercase hex digits", a.path, a.sha256)));
            }
            if a.kind.is_empty() {
                return Err(ValidationError(format!("artifact {:?}: empty kind", a.path)));
            }
            if !seen.insert(a.path.as_str()) {
                return Err(ValidationError(format!("artifact path {:?} is listed twice", a.path)));
            }
        }
        let dirs = self.directories();
        if let Some(a) = self.artifacts.iter().find(|a| dirs.contains(a.path.as_str())) {
            return Err(ValidationError(format!("artifact path {:?} is also a directory of other artifacts", a.path)));
        }
        Ok(())
    }

    /// Pretty JSON with a final newline; the same manifest gives the same bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        s.push('\n');
        s
    }

    pub fn from_json(s: &[u8]) -> Result<Manifest, ArchiveError> {
        serde_json::from_slice(s).map_err(|e| ArchiveError::Manifest(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Manifest, ArchiveError> {
        let data = std::fs::read(path).map_err(io_err(path))?;
        Manifest::from_json(&data).map_err(|e| match e {
            ArchiveError::Manifest(m) => ArchiveError::Manifest(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// Describes every regular file under `cache_root` (symlinks are not followed), hashing
    /// each; `classify` gives a relative path's kind and source.
    pub fn scan(cache_root: &Path, classify: &dyn Fn(&str) -> (String, String)) -> Result<Manifest, ArchiveError> {
        let mut paths = Vec::new();
        walk(cache_root, "", &mut paths)?;
        let mut artifacts = Vec::with_capacity(paths.len());
        for p in paths {
            let (kind, source) = classify(&p);
            artifacts.push(Artifact::from_file(cache_root, &p, &kind, &source)?);
        }
        Ok(Manifest::new(artifacts))
    }
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), ArchiveError> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let rd = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
    for e in rd {
        let e = e.map_err(io_err(&dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return Err(ArchiveError::Manifest(format!("{}: file name is not UTF-8", e.path().display())));
        };
        let p = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let ft = e.file_type().map_err(io_err(&e.path()))?;
        if ft.is_dir() {
            walk(root, &p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// A safe relative path: no leading `/`, no empty, `.` or `..` components, no NUL.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty path");
    }
    if p.starts_with('/') {
        return Err("absolute path");
    }
    if p.contains('\0') {
        return Err("NUL in path");
    }
    for c in p.split('/') {
        match c {
            "" => return Err("empty path component"),
            "." => return Err("'.' path component"),
            ".." => return Err("'..' path component"),
            _ => {}
        }
    }
    Ok(())
}

/// `2025-06-01T12:00:00Z` for a time (UTC, seconds).
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since 1970 of an RFC 3339 time (`2025-06-01T12:00:00Z`, `...12:00:00.5+02:00`);
/// `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r.clone()).filter(|t| t.bytes().all(|c| c.is_ascii_digit())).and_then(|t| t.parse().ok()) };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && rest.as_bytes()[3] == b':' => {
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            let o = hh * 3600 + mm * 60;
            if rest.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Howard Hinnant's civil-to-days: day count since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil: proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(path: &str, kind: &str, size: u64) -> Artifact {
        Artifact { kind: kind.into(), path: path.into(), size, sha256: "0".repeat(64), source: String::new(), name: None, version: None }
    }

    #[test]
    fn dates() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_748_779_200 + 3661)), "2025-06-01T13:01:01Z");
        assert_eq!(parse_rfc3339("2025-06-01T13:01:01Z"), Some(1_748_779_200 + 3661));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00.250Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("2025-06-01T14:01:01+01:00"), Some(1_748_779_200 + 3661));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2025-13-01T00:00:00Z"), None);
        for t in [0u64, 86_399, 951_782_400, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339_utc(UNIX_EPOCH + Duration::from_secs(t))), Some(t as i64));
        }
    }

    #[test]
    fn sorted_lookup_and_kinds() {
        let m = Manifest::with_created(vec![art("b/x.rpm", "rpm", 5), art("a.tgz", "chart", 7), art("b/y.rpm", "rpm", 1)], "2025-01-01T00:00:00Z".into());
        assert_eq!(m.artifacts.iter().map(|a| a.path.as_str()).collect::<Vec<_>>(), ["a.tgz", "b/x.rpm", "b/y.rpm"]);
        assert_eq!(m.get("b/y.rpm").unwrap().size, 1);
        assert!(m.get("b").is_none());
        let k = m.by_kind();
        assert_eq!(k["rpm"], KindTotal { count: 2, bytes: 6 });
        assert_eq!(m.total_size(), 13);
        m.validate().unwrap();
        let back = Manifest::from_json(m.to_json().as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.directories(), HashSet::from(["b"]));
    }

    #[test]
    fn invalid_manifests() {
        let bad = |arts: Vec<Artifact>| Manifest::with_created(arts, String::new()).validate().unwrap_err().0;
        assert!(bad(vec![art("../x", "file", 1)]).contains("'..'"));
        assert!(bad(vec![art("/etc/passwd", "file", 1)]).contains("absolute"));
        assert!(bad(vec![art("a//b", "file", 1)]).contains("empty path component"));
        assert!(bad(vec![art("a", "file", 1), art("a", "file", 1)]).contains("twice"));
        assert!(bad(vec![art("a", "file", 1), art("a/b", "file", 1)]).contains("also a directory"));
        assert!(bad(vec![art("manifest.json", "file", 1)]).contains("reserved"));
        let mut a = art("x", "file", 1);
        a.sha256 = "ABC".into();
        assert!(bad(vec![a]).contains("sha256"));
    }
}

//! Yum/DNF repositories: what `dnf reposync --download-metadata` does, natively.
//!
//! A repository is mirrored into `<dest>/<repo name>/` with upstream's layout, so the mirror
//! side can serve that tree as is:
//!
//! * every file `repodata/repomd.xml` lists (primary, filelists, other, their sqlite
//!   databases, comps, updateinfo, modules, ...), each verified against its checksum;
//! * every package `primary.xml` lists (or, with `newest_only`, what `dnf reposync
//!   --newest-only` keeps: the newest epoch:version-release of each name and architecture, and
//!   the packages of the newest version of every module stream, see [`select`]), at its
//!   `location href`, verified;
//! * `repomd.xml.asc` when upstream has one, and the repository's GPG keys.
//!
//! `repomd.xml` is written last, so an interrupted sync never leaves a mirror whose index
//! names files it lacks, and files of older metadata that the new `repomd.xml` no longer
//! lists are removed from `repodata/` (as dnf replaces the whole directory). Files already in
//! place and verified are not fetched again. Packages that left upstream are kept.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use reqwest::header::HeaderMap;

use super::fetch::{Algo, Checksum, FetchError, Fetcher, hash_file, parallel, part_path};

/// One entry of DeepOps's `yum_repos`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YumRepo {
    /// The repository id; also the directory it is mirrored into under `dest`.
    pub name: String,
    /// The repository's URL (http or https), with `$basearch`/`$releasever` already expanded.
    pub baseurl: String,
    /// GPG key URLs, separated by spaces or commas (http, https or file).
    pub gpgkey: Option<String>,
    /// Only the newest epoch:version-release of each package name and architecture, and of
    /// each module stream (see [`select`]).
    pub newest_only: bool,
}

/// What a mirrored file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Rpm,
    Repodata,
    GpgKey,
    Signature,
}

impl FileKind {
    /// `rpm`, `repodata`, `gpgkey` or `signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Rpm => "rpm",
            FileKind::Repodata => "repodata",
            FileKind::GpgKey => "gpgkey",
            FileKind::Signature => "signature",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file of the mirror, after a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedFile {
    /// Relative to `dest`: `<repo name>/<location href>`.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub url: String,
    pub kind: FileKind,
    /// False when the file was already in place and verified (or identical).
    pub downloaded: bool,
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YumSync {
    /// Every file of the mirrored repository, `repomd.xml` included, in a stable order:
    /// repodata, packages, keys, signature, `repomd.xml`.
    pub files: Vec<SyncedFile>,
    /// How many packages the mirror holds for this repository (after `newest_only`).
    pub packages: usize,
    /// How many module streams (`name:stream` of the `modules` metadata) those packages serve.
    pub module_streams: usize,
    /// Bytes written because they were new or changed. `repomd.xml`, its signature and the
    /// keys are fetched every time to compare, and count only when they changed.
    pub bytes_downloaded: u64,
    /// Files of older metadata removed from `repodata/`, relative to `dest`.
    pub removed: Vec<PathBuf>,
}

/// A file a sync would hold, from the metadata (check mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative to `dest`.
    pub path: PathBuf,
    pub url: String,
    pub kind: FileKind,
    /// The size the metadata gives (or the size fetched, for keys and signatures).
    pub size: Option<u64>,
    pub checksum: Option<Checksum>,
    /// Already in place and verified: a sync would not fetch it.
    pub present: bool,
}

/// What a sync would do, without writing anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YumPlan {
    /// Same order as `YumSync::files`.
    pub files: Vec<PlannedFile>,
    pub packages: usize,
    /// As [`YumSync::module_streams`].
    pub module_streams: usize,
    /// The sum of every known size.
    pub total_size: u64,
    /// The sum of the known sizes of the files not yet present.
    pub download_size: u64,
}

impl YumPlan {
    /// Whether a sync would change anything.
    pub fn changes(&self) -> bool {
        self.files.iter().any(|f| !f.present)
    }
}

/// A sync failure; each names the repository, and the URL or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum YumError {
    #[error("yum repo '{repo}': {msg}")]
    Config { repo: String, msg: String },
    #[error("yum repo '{repo}': {source}")]
    Fetch {
        repo: String,
        #[source]
        source: FetchError,
    },
    #[error("yum repo '{repo}': {url}: {msg}")]
    Metadata { repo: String, url: String, msg: String },
    #[error("yum repo '{repo}': checksum mismatch for {item} from {url}: expected {expected}, got {actual}")]
    Checksum { repo: String, item: String, url: String, expected: String, actual: String },
    #[error("yum repo '{repo}': {path}: {msg}")]
    Io { repo: String, path: String, msg: String },
    #[error("yum repo '{repo}': {} downloads failed: {}", .errors.len(), .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several { repo: String, errors: Vec<YumError> },
}

// ---------------------------------------------------------------------------------------------
// rpm version comparison

/// Compares two version (or release) strings as rpm's `rpmvercmp` does: alternating runs of
/// ASCII digits and ASCII letters compared segment by segment (numbers numerically, letters
/// in byte order, a number beats letters), other characters only separating segments, `~`
/// sorting before anything (even the end: `1.0~rc1 < 1.0`) and `^` after the end but before
/// anything else (`1.0 < 1.0^git1 < 1.0.1`).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // A tilde sorts before everything else, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // A caret is like a tilde, except that the end of the string sorts before it.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let class = |c: u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let (si, sj) = (i, j);
        while i < a.len() && class(a[i]) {
            i += 1;
        }
        while j < b.len() && class(b[j]) {
            j += 1;
        }
        let (mut sa, mut sb) = (&a[si..i], &b[sj..j]);
        // Segments of different types: a number is newer than letters.
        if sb.is_empty() {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// An epoch:version-release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Evr {
    /// Empty means 0.
    pub epoch: String,
    pub version: String,
    pub release: String,
}

impl Evr {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.to_string(), r),
            _ => (String::new(), s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v.to_string(), r.to_string()),
            None => (rest.to_string(), String::new()),
        };
        Evr { epoch, version, release }
    }

    /// Compares as rpm does: epochs as numbers (missing is 0), then versions, then releases
    /// with `rpmvercmp`.
    pub fn compare(&self, other: &Evr) -> Ordering {
        let epoch = |e: &str| {
            let t = e.trim_start_matches('0');
            if t.is_empty() { "0".to_string() } else { t.to_string() }
        };
        let (ea, eb) = (epoch(&self.epoch), epoch(&other.epoch));
        let by_epoch = if ea.bytes().all(|c| c.is_ascii_digit()) && eb.bytes().all(|c| c.is_ascii_digit()) {
            ea.len().cmp(&eb.len()).then_with(|| ea.cmp(&eb))
        } else {
            rpmvercmp(&ea, &eb)
        };
        by_epoch.then_with(|| rpmvercmp(&self.version, &other.version)).then_with(|| rpmvercmp(&self.release, &other.release))
    }
}

impl std::fmt::Display for Evr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.epoch.is_empty() && self.epoch.bytes().any(|c| c != b'0') {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}-{}", self.version, self.release)
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// One `<data>` entry of `repomd.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoData {
    /// `primary`, `filelists`, `other`, `primary_db`, `group`, `updateinfo`, `modules`, ...
    pub kind: String,
    pub href: String,
    /// `xml:base` of the location, when the file lives elsewhere.
    pub base: Option<String>,
    pub checksum: Checksum,
    pub size: Option<u64>,
}

/// A package of `primary.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub arch: String,
    pub evr: Evr,
    pub href: String,
    /// `xml:base` of the location, when the package lives elsewhere.
    pub base: Option<String>,
    pub checksum: Checksum,
    /// The package file's size.
    pub size: Option<u64>,
}

impl Package {
    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.0 == name {
            return Ok(Some(a.normalized_value(XmlVersion::Implicit1_0).map_err(|e| e.to_string())?.into_owned()));
        }
    }
    Ok(None)
}

fn checksum_of(kind: Option<String>, hex: &str) -> Result<Checksum, String> {
    let kind = kind.ok_or("a checksum without a type")?;
    Checksum::parse(&format!("{kind}:{}", hex.trim()))
}

/// Appends the text of a text-like event to `text`.
fn push_text(ev: &Event, text: &mut String) -> Result<(), String> {
    match ev {
        Event::Text(t) => text.push_str(&t.xml10_content()),
        Event::CData(t) => text.push_str(&t.xml10_content()),
        Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| e.to_string())? {
            Some(c) => text.push(c),
            None => match quick_xml::escape::resolve_predefined_entity(r) {
                Some(s) => text.push_str(s),
                None => return Err(format!("unknown entity &{};", &**r)),
            },
        },
        _ => {}
    }
    Ok(())
}

/// Parses `repomd.xml`.
pub fn parse_repomd(xml: &[u8]) -> Result<Vec<RepoData>, String> {
    #[derive(Default)]
    struct Cur {
        kind: String,
        href: Option<String>,
        base: Option<String>,
        sum_type: Option<String>,
        sum: Option<String>,
        size: Option<u64>,
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<Cur> = None;
    let mut depth = 0usize;
    let mut data_depth = 0usize;
    let mut field: Option<String> = None;
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| format!("invalid repomd.xml at byte {}: {e}", reader.buffer_position()))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != "repomd" {
                        return Err(format!("not a repomd.xml: the root element is <{name}>"));
                    }
                    saw_root = true;
                }
                match (&mut cur, name) {
                    (None, "data") if depth == 1 => {
                        let kind = attr(e, "type")?.ok_or("a <data> without a type")?;
                        cur = Some(Cur { kind, ..Default::default() });
                        data_depth = depth;
                    }
                    (Some(c), "location") if depth == data_depth + 1 => {
                        c.href = attr(e, "href")?;
                        c.base = attr(e, "xml:base")?;
                    }
                    (Some(c), "checksum" | "size") if depth == data_depth + 1 && !empty => {
                        if name == "checksum" {
                            c.sum_type = attr(e, "type")?;
                        }
                        field = Some(name.to_string());
                        text.clear();
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name();
                if let Some(f) = field.take_if(|f| f == name.as_ref()) {
                    let c = cur.as_mut().expect("fields are inside <data>");
                    if f == "checksum" {
                        c.sum = Some(text.trim().to_string());
                    } else {
                        c.size = Some(text.trim().parse().map_err(|_| format!("<data type=\"{}\">: size '{}' is not a number", c.kind, text.trim()))?);
                    }
                } else if name.as_ref() == "data" && depth == data_depth && cur.is_some() {
                    let c = cur.take().unwrap();
                    let href = c.href.ok_or_else(|| format!("<data type=\"{}\"> has no location", c.kind))?;
                    let sum = c.sum.ok_or_else(|| format!("<data type=\"{}\"> has no checksum", c.kind))?;
                    let checksum = checksum_of(c.sum_type, &sum).map_err(|e| format!("<data type=\"{}\">: {e}", c.kind))?;
                    out.push(RepoData { kind: c.kind, href, base: c.base, checksum, size: c.size });
                }
            }
            Event::Eof => break,
            other => {
                if field.is_some() {
                    push_text(other, &mut text)?;
                }
            }
        }
        buf.clear();
    }
    if !saw_root {
        return Err("not a repomd.xml: empty document".into());
    }
    if depth != 0 {
        return Err("repomd.xml ends early: truncated?".into());
    }
    Ok(out)
}

/// Parses `primary.xml` (uncompressed) as it streams, calling `each` with every package.
/// Only the current package is held in memory.
pub fn parse_primary<R: BufRead>(input: R, mut each: impl FnMut(Package)) -> Result<usize, String> {
    #[derive(Default)]
    struct Cur {
        name: Option<String>,
        arch: Option<String>,
        evr: Option<Evr>,
        href: Option<String>,
        base: Option<String>,
        sum_type: Option<String>,
        sum: Option<String>,
        size: Option<u64>,
    }
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::with_capacity(4096);
    let mut cur: Option<Cur> = None;
    let mut depth = 0usize;
    let mut pkg_depth = 0usize;
    let mut field: Option<&'static str> = None;
    let mut text = String::new();
    let mut count = 0usize;
    let mut saw_root = false;
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| format!("invalid primary.xml at byte {}: {e}", reader.buffer_position()))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != "metadata" {
                        return Err(format!("not a primary.xml: the root element is <{name}>"));
                    }
                    saw_root = true;
                }
                if cur.is_none() && name == "package" && depth == 1 {
                    cur = Some(Cur::default());
                    pkg_depth = depth;
                } else if let Some(c) = cur.as_mut().filter(|_| depth == pkg_depth + 1) {
                    match name {
                        "name" | "arch" | "checksum" if !empty => {
                            if name == "checksum" {
                                c.sum_type = attr(e, "type")?;
                            }
                            field = Some(match name {
                                "name" => "name",
                                "arch" => "arch",
                                _ => "checksum",
                            });
                            text.clear();
                        }
                        "version" => {
                            c.evr = Some(Evr {
                                epoch: attr(e, "epoch")?.unwrap_or_default(),
                                version: attr(e, "ver")?.unwrap_or_default(),
                                release: attr(e, "rel")?.unwrap_or_default(),
                            });
                        }
                        "location" => {
                            c.href = attr(e, "href")?;
                            c.base = attr(e, "xml:base")?;
                        }
                        "size" => {
                            if let Some(s) = attr(e, "package")? {
                                c.size = Some(s.trim().parse().map_err(|_| format!("package size '{s}' is not a number"))?);
                            }
                        }
                        _ => {}
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name();
                if let Some(f) = field.take_if(|f| *f == name.as_ref()) {
                    let c = cur.as_mut().expect("fields are inside <package>");
                    let v = Some(text.trim().to_string());
                    match f {
                        "name" => c.name = v,
                        "arch" => c.arch = v,
                        _ => c.sum = v,
                    }
                } else if name.as_ref() == "package" && depth == pkg_depth && cur.is_some() {
                    let c = cur.take().unwrap();
                    let name = c.name.ok_or("a <package> without a name")?;
                    let what = |m: &str| format!("package {name}: {m}");
                    let arch = c.arch.ok_or_else(|| what("no arch"))?;
                    let evr = c.evr.ok_or_else(|| what("no version"))?;
                    let href = c.href.ok_or_else(|| what("no location"))?;
                    let sum = c.sum.ok_or_else(|| what("no checksum"))?;
                    let checksum = checksum_of(c.sum_type, &sum).map_err(|e| what(&e))?;
                    each(Package { name, arch, evr, href, base: c.base, checksum, size: c.size });
                    count += 1;
                }
            }
            Event::Eof => break,
            other => {
                if field.is_some() {
                    push_text(other, &mut text)?;
                }
            }
        }
        buf.clear();
    }
    if !saw_root {
        return Err("not a primary.xml: empty document".into());
    }
    if depth != 0 {
        return Err(format!("primary.xml ends early (after {count} packages): truncated?"));
    }
    Ok(count)
}

/// A compression of a metadata file, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    Zchunk,
    Unknown,
}

/// Recognises gzip, zstd, xz, bzip2 and zchunk by their magic numbers; `<` starts plain XML.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(b"\0ZCK1") {
        Compression::Zchunk
    } else {
        let t = head.trim_ascii_start();
        let t = t.strip_prefix(b"\xef\xbb\xbf".as_slice()).unwrap_or(t);
        if t.first() == Some(&b'<') || head.is_empty() { Compression::None } else { Compression::Unknown }
    }
}

/// Runs `f` on the decompressed content of `input` (gzip, zstd, xz or none), streaming.
pub fn with_decompressed<R: BufRead + Send, T>(mut input: R, f: impl FnOnce(&mut dyn BufRead) -> Result<T, String>) -> Result<T, String> {
    let head = input.fill_buf().map_err(|e| e.to_string())?.to_vec();
    match detect_compression(&head) {
        Compression::None => f(&mut input),
        Compression::Gzip => f(&mut BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(input))),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| format!("zstd: {e}"))?;
            f(&mut BufReader::with_capacity(1 << 16, d))
        }
        Compression::Xz => {
            // lzma-rs decodes xz into a writer: run it on a thread feeding a pipe.
            let (rd, mut wr) = std::io::pipe().map_err(|e| e.to_string())?;
            std::thread::scope(|s| {
                let decoder = s.spawn(move || {
                    let r = lzma_rs::xz_decompress(&mut input, &mut wr);
                    drop(wr);
                    r
                });
                let mut reader = BufReader::with_capacity(1 << 16, rd);
                let parsed = f(&mut reader);
                // Closing the pipe stops the decoder if the parser gave up early.
                drop(reader);
                let decoded = decoder.join().map_err(|_| "the xz decoder panicked".to_string())?;
                match (parsed, decoded) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(format!("xz: {e}")),
                    // A decoding error explains a parsing one better than the reverse.
                    (Err(p), Err(e)) if !matches!(e, lzma_rs::error::Error::IoError(_)) => Err(format!("xz: {e} ({p})")),
                    (Err(p), _) => Err(p),
                }
            })
        }
        Compression::Bzip2 => Err("bzip2-compressed metadata is not supported (only gzip, zstd, xz or none)".into()),
        Compression::Zchunk => Err("zchunk-compressed metadata is not supported (only gzip, zstd, xz or none)".into()),
        Compression::Unknown => {
            Err(format!("unknown compression (first bytes {}); only gzip, zstd, xz or none are supported", hex::encode(&head[..head.len().min(6)])))
        }
    }
}

/// Reads a (compressed) `primary.xml` into its packages.
pub fn read_primary<R: BufRead + Send>(input: R) -> Result<Vec<Package>, String> {
    with_decompressed(input, |r| {
        let mut out = Vec::new();
        parse_primary(r, |p| out.push(p))?;
        Ok(out)
    })
}

/// For the packages `among` picks out of `packages` (by index), the indices of those of the
/// newest epoch:version-release of their name and architecture, in the order given.
fn newest_among(packages: &[Package], among: &[usize]) -> Vec<usize> {
    let mut best: HashMap<(&str, &str), &Evr> = HashMap::new();
    for &i in among {
        let p = &packages[i];
        let e = best.entry((&p.name, &p.arch)).or_insert(&p.evr);
        if p.evr.compare(e) == Ordering::Greater {
            *e = &p.evr;
        }
    }
    among.iter().copied().filter(|&i| packages[i].evr.compare(best[&(packages[i].name.as_str(), packages[i].arch.as_str())]) == Ordering::Equal).collect()
}

/// Keeps, for each name and architecture, the packages of the newest epoch:version-release
/// (all of them when several share it), in their original order.
pub fn newest(packages: Vec<Package>) -> Vec<Package> {
    let all: Vec<usize> = (0..packages.len()).collect();
    let keep: HashSet<usize> = newest_among(&packages, &all).into_iter().collect();
    packages.into_iter().enumerate().filter_map(|(i, p)| keep.contains(&i).then_some(p)).collect()
}

// ---------------------------------------------------------------------------------------------
// Modules (modules.yaml)

/// One `modulemd` document of a repository's `modules` metadata: one version (and context)
/// of a module stream, and the packages it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleVersion {
    /// `data.name`: `nvidia-driver`.
    pub name: String,
    /// `data.stream`: `550-dkms`, `latest-dkms`, `open-dkms`.
    pub stream: String,
    /// `data.version`: newer builds of a stream have higher numbers.
    pub version: u64,
    /// `data.context`, empty when there is none.
    pub context: String,
    /// `data.artifacts.rpms`: NEVRAs with their epoch, `nvidia-driver-3:550.54.15-1.el9.x86_64`.
    pub artifacts: Vec<String>,
}

impl ModuleVersion {
    /// `name:stream`, as `dnf module` spells a stream.
    pub fn name_stream(&self) -> String {
        format!("{}:{}", self.name, self.stream)
    }
}

/// Parses `modules.yaml` (uncompressed): a YAML stream of `modulemd` documents (version 1 or
/// 2), which are returned in order, and of `modulemd-defaults`, `modulemd-obsoletes` and
/// `modulemd-translations` documents, which say nothing about what a stream holds and are
/// skipped.
pub fn parse_modules(text: &str) -> Result<Vec<ModuleVersion>, String> {
    use airlock_base::yaml::{Node, NodeKind};
    let docs = airlock_base::yaml::parse_documents(text).map_err(|e| format!("invalid modules.yaml: {e}"))?;
    // Scalars as text: YAML 1.1 reads a stream `550` as a number, the modulemd spec means a string.
    let text_of = |n: &Node| match n.kind {
        NodeKind::Str(_) | NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => Some(n.key_string().into_owned()),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let at = |m: &str| format!("modules.yaml document {} (line {}): {m}", i + 1, doc.mark.line);
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("document").and_then(|n| n.as_str()).ok_or_else(|| at("not a modulemd document (no `document:` key)"))?;
        if kind != "modulemd" {
            continue;
        }
        let version = doc.get("version").and_then(Node::as_i64);
        if !matches!(version, Some(1 | 2)) {
            let shown = doc.get("version").map(|n| n.to_json().to_string()).unwrap_or_else(|| "none".into());
            return Err(at(&format!("modulemd version {shown} is not supported (only 1 and 2)")));
        }
        let data = doc.get("data").filter(|d| d.as_map().is_some()).ok_or_else(|| at("a modulemd document without a `data` mapping"))?;
        let field = |k: &str| data.get(k).and_then(text_of).filter(|s| !s.is_empty());
        let name = field("name").ok_or_else(|| at("no module `name`"))?;
        let stream = field("stream").ok_or_else(|| at(&format!("module {name} has no `stream`")))?;
        let what = |m: &str| at(&format!("module stream {name}:{stream}: {m}"));
        let version = match data.get("version") {
            Some(n) => match &n.kind {
                NodeKind::Int(v) if *v >= 0 => *v as u64,
                NodeKind::Str(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
                    s.parse().map_err(|_| what(&format!("version {s} is too large")))?
                }
                _ => return Err(what(&format!("version {} is not a whole number", n.to_json()))),
            },
            None => return Err(what("no `version`")),
        };
        let context = field("context").unwrap_or_default();
        let rpms = data.get("artifacts").and_then(|a| a.get("rpms"));
        let artifacts = match rpms {
            None => Vec::new(),
            Some(n) if n.is_null() => Vec::new(),
            Some(n) => n
                .as_seq()
                .ok_or_else(|| what("`artifacts.rpms` is not a list"))?
                .iter()
                .map(|a| a.as_str().map(str::to_string).ok_or_else(|| what(&format!("artifact {} is not a NEVRA string", a.to_json()))))
                .collect::<Result<_, _>>()?,
        };
        out.push(ModuleVersion { name, stream, version, context, artifacts });
    }
    Ok(out)
}

/// Reads a (compressed) `modules.yaml`.
pub fn read_modules<R: BufRead + Send>(input: R) -> Result<Vec<ModuleVersion>, String> {
    with_decompressed(input, |r| {
        let mut text = String::new();
        r.read_to_string(&mut text).map_err(|e| format!("modules.yaml: {e}"))?;
        parse_modules(&text)
    })
}

/// `name-epoch:version-release.arch` with the epoch always written (0 when there is none),
/// which is how `modules.yaml` names packages.
fn nevra_key(name: &str, arch: &str, evr: &Evr) -> String {
    let e = evr.epoch.trim_start_matches('0');
    format!("{name}-{}:{}-{}.{arch}", if e.is_empty() { "0" } else { e }, evr.version, evr.release)
}

/// The canonical form ([`nevra_key`]) of a NEVRA written `name-[epoch:]version-release.arch`;
/// `None` when it has no architecture, release or version.
fn normalize_nevra(s: &str) -> Option<String> {
    let (rest, arch) = s.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, ev) = rest.rsplit_once('-')?;
    if name.is_empty() || arch.is_empty() || release.is_empty() || ev.is_empty() {
        return None;
    }
    if ev.split_once(':').is_some_and(|(e, _)| e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let evr = Evr::parse(&format!("{ev}-{release}"));
    if evr.version.is_empty() {
        return None;
    }
    Some(nevra_key(name, arch, &evr))
}

/// Which packages a mirror keeps, and how many module streams they serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub packages: Vec<Package>,
    /// Module streams (`name:stream`) with at least one package among `packages`.
    pub module_streams: usize,
}

/// Chooses the packages of a repository. Without `newest_only`, all of them. With it, what
/// `dnf reposync --newest-only` keeps, so that every stream a client can enable still
/// installs:
///
/// * of the packages no module lists (in any version), the newest epoch:version-release of
///   each name and architecture ([`newest`]);
/// * for each module stream, every package listed by its newest version (all contexts of
///   that version), and by the newest version that lists the newest package of each name and
///   architecture among all the stream's packages (normally that same version).
///
/// Packages listed only by older versions of their streams are left out. A module's
/// artifacts match packages by name, architecture and epoch:version-release (a missing epoch
/// is 0). The order of `packages` is kept.
pub fn select(packages: Vec<Package>, modules: &[ModuleVersion], newest_only: bool) -> Selection {
    let keys: Vec<String> = packages.iter().map(|p| nevra_key(&p.name, &p.arch, &p.evr)).collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_key.entry(k).or_default().push(i);
    }
    // Per stream, per version: the canonical NEVRAs listed (every context together).
    let mut streams: BTreeMap<(&str, &str), BTreeMap<u64, HashSet<String>>> = BTreeMap::new();
    let mut modular: HashSet<String> = HashSet::new();
    for m in modules {
        let listed = streams.entry((&m.name, &m.stream)).or_default().entry(m.version).or_default();
        for k in m.artifacts.iter().filter_map(|a| normalize_nevra(a)) {
            modular.insert(k.clone());
            listed.insert(k);
        }
    }
    let mut keep = vec![!newest_only; packages.len()];
    if newest_only {
        let plain: Vec<usize> = (0..packages.len()).filter(|&i| !modular.contains(&keys[i])).collect();
        for i in newest_among(&packages, &plain) {
            keep[i] = true;
        }
    }
    let mut module_streams = 0;
    for versions in streams.values() {
        let mut chosen: BTreeSet<u64> = versions.keys().next_back().into_iter().copied().collect();
        if newest_only {
            let mut listed: Vec<usize> = versions.values().flatten().filter_map(|k| by_key.get(k.as_str())).flatten().copied().collect();
            listed.sort_unstable();
            listed.dedup();
            for i in newest_among(&packages, &listed) {
                if let Some((v, _)) = versions.iter().rev().find(|(_, ks)| ks.contains(&keys[i])) {
                    chosen.insert(*v);
                }
            }
        } else {
            chosen = versions.keys().copied().collect();
        }
        let mut any = false;
        for k in chosen.iter().flat_map(|v| &versions[v]) {
            for &i in by_key.get(k.as_str()).into_iter().flatten() {
                keep[i] = true;
                any = true;
            }
        }
        module_streams += usize::from(any);
    }
    let packages = packages.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p)).collect();
    Selection { packages, module_streams }
}

// ---------------------------------------------------------------------------------------------
// Sync

/// One file to fetch, with where it goes.
#[derive(Clone, Debug)]
struct Item {
    /// Relative to the repository directory.
    rel: PathBuf,
    url: String,
    kind: FileKind,
    checksum: Checksum,
    size: Option<u64>,
    /// What to call it in errors.
    label: String,
}

/// A small file fetched whole (keys, signature).
struct Small {
    rel: PathBuf,
    url: String,
    kind: FileKind,
    bytes: Vec<u8>,
}

struct Ctx<'a> {
    fetcher: &'a Fetcher,
    repo: &'a YumRepo,
    /// The base URL, ending with `/`.
    base: url::Url,
    /// `<dest>/<repo name>`.
    root: PathBuf,
    /// `<repo name>`, the prefix of reported paths.
    prefix: PathBuf,
}

impl<'a> Ctx<'a> {
    fn new(fetcher: &'a Fetcher, repo: &'a YumRepo, dest: &Path) -> Result<Ctx<'a>, YumError> {
        let cfg = |msg: String| YumError::Config { repo: repo.name.clone(), msg };
        let n = repo.name.as_str();
        if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.contains('\\') || n.contains('\0') {
            return Err(cfg(format!("the name '{n}' cannot be a directory name")));
        }
        if let Some(v) = repo.baseurl.find('$') {
            return Err(cfg(format!("baseurl {} has an unexpanded variable at '{}'", repo.baseurl, &repo.baseurl[v..])));
        }
        let mut s = repo.baseurl.trim().to_string();
        if !s.ends_with('/') {
            s.push('/');
        }
        let base = url::Url::parse(&s).map_err(|e| cfg(format!("baseurl {}: {e}", repo.baseurl)))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(cfg(format!("baseurl {}: only http and https are supported", repo.baseurl)));
        }
        Ok(Ctx { fetcher, repo, base, root: dest.join(n), prefix: PathBuf::from(n) })
    }

    fn repo(&self) -> String {
        self.repo.name.clone()
    }

    fn fetch_err(&self, e: FetchError) -> YumError {
        YumError::Fetch { repo: self.repo(), source: e }
    }

    fn io_err(&self, path: &Path, e: impl std::fmt::Display) -> YumError {
        YumError::Io { repo: self.repo(), path: path.display().to_string(), msg: e.to_string() }
    }

    fn meta_err(&self, url: &str, msg: impl Into<String>) -> YumError {
        YumError::Metadata { repo: self.repo(), url: url.to_string(), msg: msg.into() }
    }

    fn repomd_url(&self) -> String {
        self.base.join("repodata/repomd.xml").expect("a relative path joins").to_string()
    }

    /// The URL of an href (relative to the repository, or to `xml:base`).
    fn url_of(&self, href: &str, base: Option<&str>, from: &str) -> Result<String, YumError> {
        let base = match base {
            Some(b) => {
                let mut b = b.to_string();
                if !b.ends_with('/') {
                    b.push('/');
                }
                url::Url::parse(&b).map_err(|e| self.meta_err(from, format!("xml:base {b}: {e}")))?
            }
            None => self.base.clone(),
        };
        // `a:b.rpm` would read as a URL of scheme `a`.
        let relative = if href.split('/').next().is_some_and(|s| s.contains(':')) { Cow::Owned(format!("./{href}")) } else { Cow::Borrowed(href) };
        base.join(&relative).map(|u| u.to_string()).map_err(|e| self.meta_err(from, format!("location {href}: {e}")))
    }

    /// Checks that an href stays inside the repository directory.
    fn rel_of(&self, href: &str, from: &str) -> Result<PathBuf, YumError> {
        let p = Path::new(href);
        let ok = !href.is_empty()
            && !href.contains('\\')
            && !href.contains('\0')
            && !href.contains("://")
            && p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && p.components().any(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(self.meta_err(from, format!("location '{href}' is not a path inside the repository")));
        }
        Ok(p.components().filter(|c| matches!(c, Component::Normal(_))).collect())
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, YumError> {
        self.fetcher.get(url, &HeaderMap::new()).map(|(b, _)| b).map_err(|e| self.fetch_err(e))
    }

    /// `repomd.xml`: its bytes and entries.
    fn repomd(&self) -> Result<(String, Vec<u8>, Vec<RepoData>), YumError> {
        let url = self.repomd_url();
        let bytes = self.get(&url)?;
        let data = parse_repomd(&bytes).map_err(|e| self.meta_err(&url, e))?;
        Ok((url, bytes, data))
    }

    /// The repodata files to fetch, which of them is primary, and which the modules (when
    /// there are any).
    fn repodata_items(&self, data: &[RepoData], repomd_url: &str) -> Result<(Vec<Item>, usize, Option<usize>), YumError> {
        let mut items: Vec<Item> = Vec::new();
        let mut primary = None;
        let mut modules = None;
        for d in data {
            let rel = self.rel_of(&d.href, repomd_url)?;
            if rel == Path::new("repodata/repomd.xml") || rel == Path::new("repodata/repomd.xml.asc") {
                return Err(self.meta_err(repomd_url, format!("<data type=\"{}\"> points at {}", d.kind, d.href)));
            }
            let idx = match items.iter().position(|i| i.rel == rel) {
                Some(i) if items[i].checksum == d.checksum => i,
                Some(_) => return Err(self.meta_err(repomd_url, format!("{} is listed twice with different checksums", d.href))),
                None => {
                    let url = self.url_of(&d.href, d.base.as_deref(), repomd_url)?;
                    items.push(Item {
                        rel,
                        url,
                        kind: FileKind::Repodata,
                        checksum: d.checksum.clone(),
                        size: d.size,
                        label: format!("repodata {} ({})", d.kind, d.href),
                    });
                    items.len() - 1
                }
            };
            match d.kind.as_str() {
                "primary" => primary = Some(idx),
                "modules" => modules = Some(idx),
                _ => {}
            }
        }
        let primary = primary.ok_or_else(|| self.meta_err(repomd_url, "no primary metadata listed"))?;
        Ok((items, primary, modules))
    }

    /// The packages to fetch (see [`select`]), and how many module streams they serve.
    fn package_items(&self, packages: Vec<Package>, modules: &[ModuleVersion], primary_url: &str) -> Result<(Vec<Item>, usize), YumError> {
        let Selection { packages, module_streams } = select(packages, modules, self.repo.newest_only);
        let mut seen = BTreeSet::new();
        let mut items = Vec::with_capacity(packages.len());
        for p in packages {
            let rel = self.rel_of(&p.href, primary_url)?;
            if !seen.insert(rel.clone()) {
                continue;
            }
            let url = self.url_of(&p.href, p.base.as_deref(), primary_url)?;
            items.push(Item {
                rel,
                url,
                kind: FileKind::Rpm,
                checksum: p.checksum.clone(),
                size: p.size,
                label: format!("package {} ({})", p.nevra(), p.href),
            });
        }
        Ok((items, module_streams))
    }

    /// A metadata file the sync has put in place.
    fn open(&self, item: &Item) -> Result<BufReader<fs::File>, YumError> {
        let path = self.root.join(&item.rel);
        let file = fs::File::open(&path).map_err(|e| self.io_err(&path, e))?;
        Ok(BufReader::with_capacity(1 << 16, file))
    }

    /// For check mode, a metadata file: the mirror's copy when it is there and verified, else
    /// fetched into memory and verified.
    fn open_or_fetch(&self, item: &Item) -> Result<Box<dyn BufRead + Send>, YumError> {
        if verified_local(&self.root.join(&item.rel), &item.checksum).is_some() {
            return Ok(Box::new(self.open(item)?));
        }
        let bytes = self.get(&item.url)?;
        let (_, other) = hash_bytes(&bytes, &item.checksum);
        if other != item.checksum.hex {
            return Err(YumError::Checksum {
                repo: self.repo(),
                item: item.label.clone(),
                url: item.url.clone(),
                expected: item.checksum.to_string(),
                actual: Checksum { algo: item.checksum.algo, hex: other }.to_string(),
            });
        }
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }

    /// Fetches the GPG keys and `repomd.xml.asc` (absent is fine).
    fn smalls(&self, used: &BTreeSet<PathBuf>) -> Result<Vec<Small>, YumError> {
        let mut out: Vec<Small> = Vec::new();
        let mut taken = used.clone();
        for key in self.repo.gpgkey.iter().flat_map(|k| k.split(|c: char| c.is_whitespace() || c == ',')).filter(|k| !k.is_empty()) {
            let u = url::Url::parse(key).map_err(|e| YumError::Config { repo: self.repo(), msg: format!("gpgkey {key}: {e}") })?;
            let bytes = match u.scheme() {
                "http" | "https" => self.get(key)?,
                "file" => {
                    let p = u.to_file_path().map_err(|_| YumError::Config { repo: self.repo(), msg: format!("gpgkey {key}: not a local path") })?;
                    fs::read(&p).map_err(|e| self.io_err(&p, format!("gpgkey {key}: {e}")))?
                }
                other => return Err(YumError::Config { repo: self.repo(), msg: format!("gpgkey {key}: unsupported scheme {other}") }),
            };
            // A key inside the repository keeps its place; others go to gpgkeys/.
            let inside = u
                .as_str()
                .strip_prefix(self.base.as_str())
                .filter(|_| u.query().is_none())
                .and_then(|r| self.rel_of(r, key).ok())
                .filter(|r| !taken.contains(r));
            let rel = match inside {
                Some(r) => r,
                None => {
                    let stem =
                        u.path_segments().and_then(|mut s| s.next_back()).filter(|s| !s.is_empty() && *s != "." && *s != "..").unwrap_or("gpgkey").to_string();
                    let mut rel = PathBuf::from("gpgkeys").join(&stem);
                    let mut n = 2;
                    while taken.contains(&rel) {
                        rel = PathBuf::from("gpgkeys").join(format!("{stem}-{n}"));
                        n += 1;
                    }
                    rel
                }
            };
            taken.insert(rel.clone());
            out.push(Small { rel, url: key.to_string(), kind: FileKind::GpgKey, bytes });
        }
        let asc = self.base.join("repodata/repomd.xml.asc").expect("a relative path joins").to_string();
        match self.fetcher.get(&asc, &HeaderMap::new()) {
            Ok((bytes, _)) => out.push(Small { rel: PathBuf::from("repodata/repomd.xml.asc"), url: asc, kind: FileKind::Signature, bytes }),
            Err(FetchError::Http { status: Some(404 | 403 | 410), .. }) => {}
            Err(e) => return Err(self.fetch_err(e)),
        }
        Ok(out)
    }

    /// Fails when a package would land on a metadata file or a key.
    fn check_clashes(&self, packages: &[Item], used: &BTreeSet<PathBuf>, smalls: &[Small], primary_url: &str) -> Result<(), YumError> {
        for p in packages {
            if used.contains(&p.rel) || smalls.iter().any(|s| s.rel == p.rel) {
                return Err(self.meta_err(primary_url, format!("{} would overwrite metadata or a key at {}", p.label, p.rel.display())));
            }
        }
        Ok(())
    }

    /// Downloads items with bounded concurrency; on a checksum mismatch nothing of the bad
    /// download is left behind.
    fn download_all(&self, items: &[Item], concurrency: usize, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<Vec<SyncedFile>, YumError> {
        let results = parallel(items.iter().collect(), concurrency, |it: &Item| {
            let dest = self.root.join(&it.rel);
            match self.fetcher.download(&it.url, &dest, Some(&it.checksum), &HeaderMap::new(), on_bytes) {
                Ok(f) => Ok(SyncedFile {
                    path: self.prefix.join(&it.rel),
                    size: f.size,
                    sha256: f.sha256,
                    url: it.url.clone(),
                    kind: it.kind,
                    downloaded: f.downloaded,
                }),
                Err(FetchError::Checksum { expected, actual, .. }) => {
                    // The bad bytes never reached `dest` (download removes its .part). A
                    // file already there is kept: the published repomd.xml, not updated
                    // after a failure, may still list it.
                    let _ = fs::remove_file(part_path(&dest));
                    Err(YumError::Checksum { repo: self.repo(), item: it.label.clone(), url: it.url.clone(), expected, actual })
                }
                Err(e) => Err(self.fetch_err(e)),
            }
        });
        let mut ok = Vec::with_capacity(results.len());
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(f) => ok.push(f),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(ok),
            1 => Err(errors.pop().unwrap()),
            _ => Err(YumError::Several { repo: self.repo(), errors }),
        }
    }

    /// Writes a small file atomically unless it already holds these bytes.
    fn write_small(&self, rel: &Path, bytes: &[u8]) -> Result<bool, YumError> {
        let dest = self.root.join(rel);
        if fs::read(&dest).is_ok_and(|b| b == bytes) {
            return Ok(false);
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| self.io_err(parent, e))?;
        }
        let part = part_path(&dest);
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&part)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&part, &dest)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&part);
            self.io_err(&dest, e)
        })?;
        Ok(true)
    }

    fn small_file(&self, rel: &Path, url: &str, kind: FileKind, bytes: &[u8], downloaded: bool) -> SyncedFile {
        use sha2::Digest;
        SyncedFile {
            path: self.prefix.join(rel),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            url: url.to_string(),
            kind,
            downloaded,
        }
    }
}

/// `path` when it exists and matches `sum`.
fn verified_local(path: &Path, sum: &Checksum) -> Option<PathBuf> {
    let (_, other) = hash_file(path, sum.algo).ok()?;
    (other == sum.hex).then(|| path.to_path_buf())
}

/// Mirrors `repo` into `<dest>/<repo.name>/` as `dnf reposync --download-metadata` would:
/// every repodata file `repomd.xml` lists, every package of `primary.xml` (with `newest_only`,
/// those [`select`] keeps: the newest of each name and architecture and of each module stream), `repomd.xml.asc` when upstream has one and the
/// GPG keys, all verified against their checksums, at upstream's paths. Files already in
/// place and verified are not fetched again; at most `concurrency` downloads run at once;
/// `on_bytes` receives the length of every chunk received. `repomd.xml` is written last,
/// then files of older metadata are removed from `repodata/`.
///
/// A package whose bytes do not match its checksum fails the sync with
/// [`YumError::Checksum`] naming it, and leaves neither those bytes nor a `.part` behind
/// (other downloads still complete, so a later sync resumes); `repomd.xml` is then not
/// updated, so the published mirror stays the previous, consistent one.
pub fn sync(fetcher: &Fetcher, repo: &YumRepo, dest: &Path, concurrency: usize, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<YumSync, YumError> {
    let ctx = Ctx::new(fetcher, repo, dest)?;
    let (repomd_url, repomd, data) = ctx.repomd()?;
    on_bytes(repomd.len() as u64);
    let (repodata, primary, modules) = ctx.repodata_items(&data, &repomd_url)?;
    let mut used: BTreeSet<PathBuf> = repodata.iter().map(|i| i.rel.clone()).collect();
    used.insert(PathBuf::from("repodata/repomd.xml"));
    // Keys and signature now, with the index they go with, and before the long part.
    let smalls = ctx.smalls(&used)?;
    for s in &smalls {
        on_bytes(s.bytes.len() as u64);
    }
    let mut files = ctx.download_all(&repodata, concurrency, on_bytes)?;

    let primary_item = &repodata[primary];
    let packages = read_primary(ctx.open(primary_item)?).map_err(|e| ctx.meta_err(&primary_item.url, e))?;
    let streams = match modules.map(|m| &repodata[m]) {
        Some(m) => read_modules(ctx.open(m)?).map_err(|e| ctx.meta_err(&m.url, e))?,
        None => Vec::new(),
    };
    let (pkg_items, module_streams) = ctx.package_items(packages, &streams, &primary_item.url)?;
    ctx.check_clashes(&pkg_items, &used, &smalls, &primary_item.url)?;
    let pkgs = ctx.download_all(&pkg_items, concurrency, on_bytes)?;
    let n_packages = pkgs.len();
    files.extend(pkgs);
    used.extend(pkg_items.iter().map(|i| i.rel.clone()));

    let mut bytes_downloaded: u64 = files.iter().filter(|f| f.downloaded).map(|f| f.size).sum();
    // Keys first, then the signature, then the index it signs.
    for s in &smalls {
        let changed = ctx.write_small(&s.rel, &s.bytes)?;
        if changed {
            bytes_downloaded += s.bytes.len() as u64;
        }
        used.insert(s.rel.clone());
        files.push(ctx.small_file(&s.rel, &s.url, s.kind, &s.bytes, changed));
    }
    let asc = Path::new("repodata/repomd.xml.asc");
    if !smalls.iter().any(|s| s.kind == FileKind::Signature) {
        // Upstream no longer signs: a stale signature would not match the new index.
        let p = ctx.root.join(asc);
        if p.exists() {
            fs::remove_file(&p).map_err(|e| ctx.io_err(&p, e))?;
        }
    }
    let repomd_rel = Path::new("repodata/repomd.xml");
    let changed = ctx.write_small(repomd_rel, &repomd)?;
    if changed {
        bytes_downloaded += repomd.len() as u64;
    }
    files.push(ctx.small_file(repomd_rel, &repomd_url, FileKind::Repodata, &repomd, changed));

    // Remove what the new index no longer lists from repodata/.
    let mut removed = Vec::new();
    let rd = ctx.root.join("repodata");
    if let Ok(entries) = fs::read_dir(&rd) {
        for e in entries.flatten() {
            let rel = Path::new("repodata").join(e.file_name());
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && !used.contains(&rel) {
                fs::remove_file(e.path()).map_err(|err| ctx.io_err(&e.path(), err))?;
                removed.push(ctx.prefix.join(&rel));
            }
        }
    }
    removed.sort();
    Ok(YumSync { files, packages: n_packages, module_streams, bytes_downloaded, removed })
}

/// What [`sync`] would do, without writing anything: fetches `repomd.xml`, the primary
/// metadata (from the mirror when a verified copy is there, else into memory), the keys and
/// the signature, and checks which files are already in place and verified (hashing them,
/// `concurrency` at a time).
pub fn plan(fetcher: &Fetcher, repo: &YumRepo, dest: &Path, concurrency: usize) -> Result<YumPlan, YumError> {
    let ctx = Ctx::new(fetcher, repo, dest)?;
    let (repomd_url, repomd, data) = ctx.repomd()?;
    let (repodata, primary, modules) = ctx.repodata_items(&data, &repomd_url)?;
    let primary_item = &repodata[primary];
    let packages = read_primary(ctx.open_or_fetch(primary_item)?).map_err(|e| ctx.meta_err(&primary_item.url, e))?;
    let streams = match modules.map(|m| &repodata[m]) {
        Some(m) => read_modules(ctx.open_or_fetch(m)?).map_err(|e| ctx.meta_err(&m.url, e))?,
        None => Vec::new(),
    };
    let (pkg_items, module_streams) = ctx.package_items(packages, &streams, &primary_item.url)?;
    let n_packages = pkg_items.len();
    let mut used: BTreeSet<PathBuf> = repodata.iter().map(|i| i.rel.clone()).collect();
    used.insert(PathBuf::from("repodata/repomd.xml"));
    let smalls = ctx.smalls(&used)?;
    ctx.check_clashes(&pkg_items, &used, &smalls, &primary_item.url)?;

    let items: Vec<Item> = repodata.into_iter().chain(pkg_items).collect();
    let present = parallel(items.iter().collect(), concurrency, |it: &Item| verified_local(&ctx.root.join(&it.rel), &it.checksum).is_some());
    let mut files: Vec<PlannedFile> = items
        .into_iter()
        .zip(present)
        .map(|(it, present)| PlannedFile { path: ctx.prefix.join(&it.rel), url: it.url, kind: it.kind, size: it.size, checksum: Some(it.checksum), present })
        .collect();
    let same = |rel: &Path, bytes: &[u8]| fs::read(ctx.root.join(rel)).is_ok_and(|b| b == bytes);
    for s in &smalls {
        files.push(PlannedFile {
            path: ctx.prefix.join(&s.rel),
            url: s.url.clone(),
            kind: s.kind,
            size: Some(s.bytes.len() as u64),
            checksum: Some(sha256_of(&s.bytes)),
            present: same(&s.rel, &s.bytes),
        });
    }
    let repomd_rel = Path::new("repodata/repomd.xml");
    files.push(PlannedFile {
        path: ctx.prefix.join(repomd_rel),
        url: repomd_url,
        kind: FileKind::Repodata,
        size: Some(repomd.len() as u64),
        checksum: Some(sha256_of(&repomd)),
        present: same(repomd_rel, &repomd),
    });
    let total_size = files.iter().filter_map(|f| f.size).sum();
    let download_size = files.iter().filter(|f| !f.present).filter_map(|f| f.size).sum();
    Ok(YumPlan { files, packages: n_packages, module_streams, total_size, download_size })
}

fn sha256_of(bytes: &[u8]) -> Checksum {
    use sha2::Digest;
    Checksum::sha256(&hex::encode(sha2::Sha256::digest(bytes)))
}

/// The sha256 of `bytes` and their digest in `sum`'s algorithm.
fn hash_bytes(bytes: &[u8], sum: &Checksum) -> (String, String) {
    use sha2::Digest;
    let s = hex::encode(sha2::Sha256::digest(bytes));
    let o = match sum.algo {
        Algo::Sha256 => s.clone(),
        Algo::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        Algo::Sha1 => hex::encode(sha1::Sha1::digest(bytes)),
        Algo::Md5 => hex::encode(md5::Md5::digest(bytes)),
    };
    (s, o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rpm's own cases (tests/rpmvercmp.at), checked against rpm 4.18's `rpm.vercmp`.
    const RPMVERCMP_CASES: &str = "
1.0 1.0 0
1.0 2.0 -1
2.0 1.0 1
2.0.1 2.0.1 0
2.0 2.0.1 -1
2.0.1 2.0 1
2.0.1a 2.0.1a 0
2.0.1a 2.0.1 1
2.0.1 2.0.1a -1
5.5p1 5.5p1 0
5.5p1 5.5p2 -1
5.5p2 5.5p1 1
5.5p10 5.5p10 0
5.5p1 5.5p10 -1
5.5p10 5.5p1 1
10xyz 10.1xyz -1
10.1xyz 10xyz 1
xyz10 xyz10 0
xyz10 xyz10.1 -1
xyz10.1 xyz10 1
xyz.4 xyz.4 0
xyz.4 8 -1
8 xyz.4 1
xyz.4 2 -1
2 xyz.4 1
5.5p2 5.6p1 -1
5.6p1 5.5p2 1
5.6p1 6.5p1 -1
6.5p1 5.6p1 1
6.0.rc1 6.0 1
6.0 6.0.rc1 -1
10b2 10a1 1
10a2 10b2 -1
1.0aa 1.0aa 0
1.0a 1.0aa -1
1.0aa 1.0a 1
10.0001 10.0001 0
10.0001 10.1 0
10.1 10.0001 0
10.0001 10.0039 -1
10.0039 10.0001 1
4.999.9 5.0 -1
5.0 4.999.9 1
20101121 20101121 0
20101121 20101122 -1
20101122 20101121 1
2_0 2_0 0
2.0 2_0 0
2_0 2.0 0
a a 0
a+ a+ 0
a+ a_ 0
a_ a+ 0
+a +a 0
+a _a 0
_a +a 0
+_ +_ 0
_+ +_ 0
_+ _ 0
+ _ 0
+ +_ 0
1.0~rc1 1.0~rc1 0
1.0~rc1 1.0 -1
1.0 1.0~rc1 1
1.0~rc1 1.0~rc2 -1
1.0~rc2 1.0~rc1 1
1.0~rc1~git123 1.0~rc1~git123 0
1.0~rc1~git123 1.0~rc1 -1
1.0~rc1 1.0~rc1~git123 1
1.0^ 1.0^ 0
1.0^ 1.0 1
1.0 1.0^ -1
1.0^git1 1.0^git1 0
1.0^git1 1.0 1
1.0 1.0^git1 -1
1.0^git1 1.0^git2 -1
1.0^git2 1.0^git1 1
1.0^git1 1.01 -1
1.01 1.0^git1 1
1.0^20160101 1.0^20160101 0
1.0^20160101 1.0.1 -1
1.0.1 1.0^20160101 1
1.0^20160101^git1 1.0^20160101^git1 0
1.0^20160102 1.0^20160101^git1 1
1.0^20160101^git1 1.0^20160102 -1
1.0~rc1^git1 1.0~rc1^git1 0
1.0~rc1^git1 1.0~rc1 1
1.0~rc1 1.0~rc1^git1 -1
1.0^git1~pre 1.0^git1~pre 0
1.0^git1 1.0^git1~pre 1
1.0^git1~pre 1.0^git1 -1
1b.fc17 1b.fc17 0
1b.fc17 1.fc17 -1
1.fc17 1b.fc17 1
1g.fc17 1g.fc17 0
1g.fc17 1.fc17 1
1.fc17 1g.fc17 -1
1.1.α 1.1.α 0
1.1.α 1.1.β 0
1.1.β 1.1.α 0
1.1.αα 1.1.α 0
1.1.α 1.1.ββ 0
1.1.ββ 1.1.αα 0
";

    #[test]
    fn rpmvercmp_matches_rpm_test_suite() {
        let mut n = 0;
        for line in RPMVERCMP_CASES.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let want = match f[2] {
                "-1" => Ordering::Less,
                "0" => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(rpmvercmp(f[0], f[1]), want, "rpmvercmp({}, {})", f[0], f[1]);
            n += 1;
        }
        assert_eq!(n, 103);
    }

    #[test]
    fn rpmvercmp_edge_cases() {
        assert_eq!(rpmvercmp("", ""), Ordering::Equal);
        assert_eq!(rpmvercmp("", "1"), Ordering::Less);
        assert_eq!(rpmvercmp("1", ""), Ordering::Greater);
        assert_eq!(rpmvercmp("~", ""), Ordering::Less);
        // Numbers longer than any integer type.
        assert_eq!(rpmvercmp("1.123456789012345678901234567890", "1.123456789012345678901234567891"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0.0", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.el8", "1.el8_5"), Ordering::Less);
        assert_eq!(rpmvercmp("2.el9", "10.el9"), Ordering::Less);
    }

    #[test]
    fn evr_compare_and_display() {
        let e = Evr::parse;
        assert_eq!(e("1:1.0-1").compare(&e("2.0-1")), Ordering::Greater);
        assert_eq!(e("0:1.0-1").compare(&e("1.0-1")), Ordering::Equal);
        assert_eq!(e("1.0-2").compare(&e("1.0-10")), Ordering::Less);
        assert_eq!(e("10:1-1").compare(&e("9:2-1")), Ordering::Greater);
        assert_eq!(e("1.0-1.el8").compare(&e("1.0~rc1-1.el8")), Ordering::Greater);
        assert_eq!(e("2:1.0-1").to_string(), "2:1.0-1");
        assert_eq!(e("0:1.0-1").to_string(), "1.0-1");
        assert_eq!(e("1.2.3-4.el9_1").version, "1.2.3");
        assert_eq!(e("1.2.3-4.el9_1").release, "4.el9_1");
    }

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1795424304</revision>
  <tags><content>binary-x86_64</content></tags>
  <data type="primary">
    <checksum type="sha256">ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6</checksum>
    <open-checksum type="sha256">ff417ec8f43a4d46493ca9f2f618bee646ad89f699eebe84a72295ca08f77335</open-checksum>
    <location href="repodata/ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6-primary.xml.gz"/>
    <timestamp>1795424304</timestamp>
    <size>532</size>
    <open-size>1017</open-size>
  </data>
  <data type="primary_zck">
    <checksum type="sha256">aaaa</checksum>
    <open-checksum type="sha256">bbbb</open-checksum>
    <header-checksum type="sha256">cccc</header-checksum>
    <location href="repodata/aaaa-primary.xml.zck"/>
    <size>100</size>
    <header-size>10</header-size>
  </data>
  <data type="group">
    <checksum type="sha">0123456789abcdef0123456789abcdef01234567</checksum>
    <location xml:base="https://other.example/x/" href="repodata/comps &amp; more.xml"/>
  </data>
</repomd>
"#;

    #[test]
    fn repomd_parses() {
        let d = parse_repomd(REPOMD.as_bytes()).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].kind, "primary");
        assert_eq!(d[0].href, "repodata/ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6-primary.xml.gz");
        assert_eq!(d[0].checksum, Checksum::sha256("ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6"));
        assert_eq!(d[0].size, Some(532));
        assert_eq!(d[0].base, None);
        // The header checksum of zchunk data is not the file's.
        assert_eq!(d[1].checksum.hex, "aaaa");
        assert_eq!(d[2].checksum.algo, Algo::Sha1);
        assert_eq!(d[2].href, "repodata/comps & more.xml");
        assert_eq!(d[2].base.as_deref(), Some("https://other.example/x/"));
        assert_eq!(d[2].size, None);
    }

    #[test]
    fn repomd_errors() {
        assert!(parse_repomd(b"").unwrap_err().contains("empty"));
        assert!(parse_repomd(b"<metadata/>").unwrap_err().contains("<metadata>"));
        assert!(parse_repomd(b"<repomd><data type=\"x\"><location href=\"a\"/></data></repomd>").unwrap_err().contains("no checksum"));
        assert!(
            parse_repomd(b"<repomd><data type=\"x\"><checksum type=\"crc32\">00</checksum><location href=\"a\"/></data></repomd>")
                .unwrap_err()
                .contains("crc32")
        );
        assert!(parse_repomd(b"<repomd><data type=\"x\"><checksum type=\"sha256\">00</checksum></data>").is_err());
    }

    fn primary_xml(n: usize) -> String {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"1\">\n",
        );
        for i in 0..n {
            s.push_str(&format!(
                r#"<package type="rpm">
  <name>pkg{i}</name>
  <arch>x86_64</arch>
  <version epoch="{e}" ver="1.{i}" rel="1.el9"/>
  <checksum type="sha256" pkgid="YES">{sum:064x}</checksum>
  <summary>Package &lt;{i}&gt; &amp; co</summary>
  <description>test</description>
  <packager></packager>
  <url></url>
  <time file="1795424304" build="1795424304"/>
  <size package="{size}" installed="3" archive="260"/>
  <location href="Packages/p/pkg{i}-1.{i}-1.el9.x86_64.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:sourcerpm>pkg{i}-1.0-1.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="5921"/>
    <rpm:provides>
      <rpm:entry name="name" flags="EQ" epoch="0" ver="9" rel="9"/>
    </rpm:provides>
    <file>/usr/bin/name</file>
    <file type="dir">/usr/share/arch</file>
  </format>
</package>
"#,
                e = i % 3,
                sum = i,
                size = 1000 + i
            ));
        }
        s.push_str("</metadata>\n");
        s
    }

    #[test]
    fn primary_parses() {
        let pk = read_primary(primary_xml(3).as_bytes()).unwrap();
        assert_eq!(pk.len(), 3);
        let p = &pk[2];
        assert_eq!(p.name, "pkg2");
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.evr, Evr { epoch: "2".into(), version: "1.2".into(), release: "1.el9".into() });
        assert_eq!(p.href, "Packages/p/pkg2-1.2-1.el9.x86_64.rpm");
        assert_eq!(p.checksum, Checksum::sha256(&format!("{:064x}", 2)));
        assert_eq!(p.size, Some(1002));
        assert_eq!(p.nevra(), "pkg2-2:1.2-1.el9.x86_64");
        assert_eq!(pk[0].nevra(), "pkg0-1.0-1.el9.x86_64");
    }

    #[test]
    fn primary_errors() {
        let bad = primary_xml(1).replace("<checksum type=\"sha256\"", "<checksum type=\"crc\"");
        assert!(read_primary(bad.as_bytes()).unwrap_err().contains("package pkg0"));
        let bad = primary_xml(1).replace("<location href=\"Packages/p/pkg0-1.0-1.el9.x86_64.rpm\"/>", "");
        assert!(read_primary(bad.as_bytes()).unwrap_err().contains("no location"));
        assert!(read_primary(&b"<repomd/>"[..]).unwrap_err().contains("not a primary.xml"));
        let truncated = &primary_xml(2)[..900];
        let e = read_primary(truncated.as_bytes()).unwrap_err();
        assert!(e.contains("ends early") || e.contains("invalid primary.xml"), "{e}");
        let truncated = &primary_xml(2)[..primary_xml(2).rfind("</package>").unwrap()];
        assert!(read_primary(truncated.as_bytes()).unwrap_err().contains("ends early (after 1 packages)"));
        assert!(parse_repomd(&REPOMD.as_bytes()[..600]).unwrap_err().contains("ends early"));
    }

    #[test]
    fn primary_decompresses_gzip_zstd_xz() {
        let xml = primary_xml(2000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(xml.as_bytes(), 3).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut xml.as_bytes(), &mut xz).unwrap();
        for (what, bytes) in [("plain", xml.as_bytes()), ("gzip", &gz[..]), ("zstd", &zst[..]), ("xz", &xz[..])] {
            let pk = read_primary(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(pk.len(), 2000, "{what}");
            assert_eq!(pk[1999].name, "pkg1999", "{what}");
        }
        assert_eq!(detect_compression(&gz), Compression::Gzip);
        assert_eq!(detect_compression(&zst), Compression::Zstd);
        assert_eq!(detect_compression(&xz), Compression::Xz);
        // A corrupt xz stream fails rather than hanging.
        let mut bad = xz.clone();
        let mid = bad.len() / 2;
        bad.truncate(mid);
        assert!(read_primary(&bad[..]).is_err());
        let mut bz = b"BZh91AY&SY".to_vec();
        bz.extend([0u8; 20]);
        assert!(read_primary(&bz[..]).unwrap_err().contains("bzip2"));
        assert!(read_primary(&b"\x00\x01\x02garbage"[..]).unwrap_err().contains("unknown compression"));
    }

    fn pkg(name: &str, arch: &str, evr: &str) -> Package {
        Package {
            name: name.into(),
            arch: arch.into(),
            evr: Evr::parse(evr),
            href: format!("{name}-{evr}.{arch}.rpm"),
            base: None,
            checksum: Checksum::sha256("00"),
            size: None,
        }
    }

    #[test]
    fn newest_per_name_and_arch() {
        let all = vec![
            pkg("a", "x86_64", "1.0-1"),
            pkg("a", "x86_64", "1.10-1"),
            pkg("a", "x86_64", "1.9-1"),
            pkg("a", "i686", "1.0-1"),
            pkg("b", "noarch", "1:0.1-1"),
            pkg("b", "noarch", "9.0-1"),
            pkg("c", "noarch", "2.0~rc1-1"),
            pkg("c", "noarch", "2.0-1"),
            pkg("c", "noarch", "2.0-1"),
        ];
        let kept: Vec<String> = newest(all).iter().map(|p| format!("{}-{}.{}", p.name, p.evr, p.arch)).collect();
        assert_eq!(kept, ["a-1.10-1.x86_64", "a-1.0-1.i686", "b-1:0.1-1.noarch", "c-2.0-1.noarch", "c-2.0-1.noarch"]);
    }

    /// Shaped like NVIDIA's CUDA repository: several streams of `nvidia-driver`, several
    /// versions of a stream with NVIDIA's per-version contexts, and the defaults document.
    const MODULES_YAML: &str = r#"---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550-dkms
    version: 20240301120000
    context: 6c1b2ed3a1
    arch: x86_64
    summary: Nvidia driver for 550-dkms branch
    description: >-
        This package provides the most recent NVIDIA display driver.
    license:
        module:
            - MIT
    artifacts:
        rpms:
            - nvidia-driver-3:550.54.14-1.el9.x86_64
            - kmod-nvidia-latest-dkms-3:550.54.14-1.el9.x86_64
    profiles:
        default:
            description: Default installation
            rpms:
                - nvidia-driver
                - kmod-nvidia-latest-dkms
...
---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550-dkms
    version: 20240601120000
    context: 0e5c8f01b7
    arch: x86_64
    summary: Nvidia driver for 550-dkms branch
    license:
        module: [MIT]
    artifacts:
        rpms:
            - nvidia-driver-3:550.54.14-1.el9.x86_64
            - nvidia-driver-3:550.90.07-1.el9.x86_64
            - kmod-nvidia-latest-dkms-3:550.90.07-1.el9.x86_64
            - dnf-plugin-nvidia-0:2.0-1.el9.noarch
...
---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550
    version: "20240601120000"
    arch: x86_64
    summary: Nvidia driver for 550 branch
    license:
        module: [MIT]
    artifacts:
        rpms: [nvidia-driver-3:550.90.07-1.el9.x86_64]
...
---
document: modulemd-defaults
version: 1
data:
    module: nvidia-driver
    stream: latest-dkms
    profiles:
        550: [default]
        550-dkms: [default]
...
"#;

    #[test]
    fn modules_yaml_parses_modulemd_and_skips_defaults() {
        let m = parse_modules(MODULES_YAML).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name_stream(), "nvidia-driver:550-dkms");
        assert_eq!((m[0].version, m[0].context.as_str()), (20240301120000, "6c1b2ed3a1"));
        assert_eq!(m[0].artifacts, ["nvidia-driver-3:550.54.14-1.el9.x86_64", "kmod-nvidia-latest-dkms-3:550.54.14-1.el9.x86_64"]);
        assert_eq!(m[1].artifacts.len(), 4);
        // A stream and a version YAML would read as numbers are the strings the spec means.
        assert_eq!((m[2].stream.as_str(), m[2].version, m[2].context.as_str()), ("550", 20240601120000, ""));
        assert!(parse_modules("").unwrap().is_empty());
        // modulemd version 1 has the same fields, no context.
        let v1 = parse_modules("document: modulemd\nversion: 1\ndata: {name: m, stream: s, version: 7, artifacts: {rpms: [m-0:1-1.noarch]}}\n").unwrap();
        assert_eq!(v1, [ModuleVersion { name: "m".into(), stream: "s".into(), version: 7, context: String::new(), artifacts: vec!["m-0:1-1.noarch".into()] }]);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(MODULES_YAML.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut MODULES_YAML.as_bytes(), &mut xz).unwrap();
        for bytes in [gz, xz, zstd::stream::encode_all(MODULES_YAML.as_bytes(), 3).unwrap()] {
            assert_eq!(read_modules(bytes.as_slice()).unwrap(), m);
        }
    }

    #[test]
    fn modules_yaml_errors_name_the_document_and_the_problem() {
        let doc = |data: &str| {
            format!(
                "---\ndocument: modulemd-defaults\nversion: 1\ndata: {{module: x, stream: a}}\n...\n---\ndocument: modulemd\nversion: 2\ndata:\n{data}...\n"
            )
        };
        let cases = [
            (doc("  name: m\n  stream: s\n  version: 1\n  artifacts: {rpms: [[a]]}\n"), "module stream m:s: artifact [\"a\"] is not a NEVRA string"),
            (doc("  name: m\n  stream: s\n  version: 1.5\n"), "version 1.5 is not a whole number"),
            (doc("  name: m\n  stream: s\n"), "m:s: no `version`"),
            (doc("  name: m\n  version: 1\n"), "module m has no `stream`"),
            (doc("  stream: s\n"), "no module `name`"),
            (doc("  name: m\n  stream: s\n  version: 1\n  artifacts: {rpms: a}\n"), "`artifacts.rpms` is not a list"),
            ("document: modulemd\nversion: 3\ndata: {}\n".into(), "modulemd version 3 is not supported"),
            ("name: m\n".into(), "no `document:` key"),
            ("document: modulemd\nversion: 2\ndata: [1]\n".into(), "without a `data` mapping"),
            ("document: modulemd\ndata: [\n".into(), "invalid modules.yaml"),
        ];
        for (text, want) in cases {
            let e = parse_modules(&text).unwrap_err();
            assert!(e.contains(want), "{e:?} lacks {want:?} for\n{text}");
        }
        let e = parse_modules(&doc("  name: m\n")).unwrap_err();
        assert!(e.starts_with("modules.yaml document 2 (line 7)"), "{e}");
        assert!(read_modules(&b"\xff\xfe not text"[..]).is_err());
    }

    #[test]
    fn nevras_normalize_with_their_epoch() {
        let n = |s: &str| normalize_nevra(s);
        assert_eq!(n("nvidia-driver-3:550.54.15-1.el9.x86_64").as_deref(), Some("nvidia-driver-3:550.54.15-1.el9.x86_64"));
        assert_eq!(n("kmod-nvidia-latest-dkms-550.54.15-1.el9.x86_64").as_deref(), Some("kmod-nvidia-latest-dkms-0:550.54.15-1.el9.x86_64"));
        assert_eq!(n("a-00:1-1.noarch").as_deref(), Some("a-0:1-1.noarch"));
        assert_eq!(n("a-010:1-1.noarch").as_deref(), Some("a-10:1-1.noarch"));
        for bad in ["nvidia-driver", "a-1.noarch", "-1-1.noarch", "a-1-1.", "a-x:1-1.noarch", "a-:1-1.noarch"] {
            assert_eq!(n(bad), None, "{bad}");
        }
        assert_eq!(nevra_key("a", "noarch", &Evr::parse("1.0-1")), "a-0:1.0-1.noarch");
    }

    fn kept(s: &Selection) -> Vec<String> {
        s.packages.iter().map(Package::nevra).collect()
    }

    fn module(stream: &str, version: u64, context: &str, artifacts: &[&str]) -> ModuleVersion {
        ModuleVersion {
            name: "nvidia-driver".into(),
            stream: stream.into(),
            version,
            context: context.into(),
            artifacts: artifacts.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn newest_only_keeps_the_newest_version_of_every_stream() {
        let all = vec![
            pkg("nvidia-driver", "x86_64", "3:550.54.14-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:550.90.07-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:560.28.03-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:560.35.03-1.el9"),
            pkg("kmod-nvidia-open-dkms", "x86_64", "3:550.90.07-1.el9"),
            pkg("kmod-nvidia-open-dkms", "x86_64", "3:560.35.03-1.el9"),
            pkg("cuda-toolkit-config-common", "noarch", "12.4.127-1"),
            pkg("cuda-toolkit-config-common", "noarch", "12.6.77-1"),
            // Listed by no module: an ordinary package, even with a modular name.
            pkg("nvidia-driver", "i686", "3:550.54.14-1.el9"),
            pkg("nvidia-driver", "i686", "3:550.90.07-1.el9"),
        ];
        let modules = vec![
            module("550-dkms", 1, "a1", &["nvidia-driver-3:550.54.14-1.el9.x86_64"]),
            // The newest version lists an older driver too: all of it is kept.
            module("550-dkms", 2, "b2", &["nvidia-driver-3:550.54.14-1.el9.x86_64", "nvidia-driver-3:550.90.07-1.el9.x86_64"]),
            module("560-dkms", 1, "c3", &["nvidia-driver-3:560.28.03-1.el9.x86_64"]),
            module("560-dkms", 2, "d4", &["nvidia-driver-3:560.35.03-1.el9.x86_64", "nvidia-driver-3:560.99.99-1.el9.x86_64"]),
            // Two contexts of the newest version: both kept.
            module("open-dkms", 1, "e5", &["kmod-nvidia-open-dkms-3:550.90.07-1.el9.x86_64"]),
            module("open-dkms", 2, "f6", &["kmod-nvidia-open-dkms-3:560.35.03-1.el9.x86_64"]),
            module("open-dkms", 2, "f7", &["nvidia-driver-3:560.35.03-1.el9.x86_64"]),
            // A stream none of whose packages are in this repository.
            module("470", 1, "g8", &["nvidia-driver-3:470.256.02-1.el9.x86_64", "not a nevra"]),
        ];
        let s = select(all.clone(), &modules, true);
        assert_eq!(
            kept(&s),
            [
                "nvidia-driver-3:550.54.14-1.el9.x86_64",
                "nvidia-driver-3:550.90.07-1.el9.x86_64",
                "nvidia-driver-3:560.35.03-1.el9.x86_64",
                "kmod-nvidia-open-dkms-3:560.35.03-1.el9.x86_64",
                "cuda-toolkit-config-common-12.6.77-1.noarch",
                "nvidia-driver-3:550.90.07-1.el9.i686",
            ]
        );
        assert_eq!(s.module_streams, 3);
        // Without modules, only the newest of each name and architecture, as before.
        assert_eq!(kept(&select(all.clone(), &[], true)), kept(&Selection { packages: newest(all.clone()), module_streams: 0 }));
        assert_eq!(kept(&select(all.clone(), &[], true)).len(), 4);
        // Without newest_only, everything; the streams count those with packages here.
        let s = select(all.clone(), &modules, false);
        assert_eq!(s.packages, all);
        assert_eq!(s.module_streams, 3);
    }

    #[test]
    fn newest_only_keeps_the_stream_version_that_holds_a_streams_newest_package() {
        // As dnf reposync: version 3 is the newest, but the newest driver of the stream is only
        // in version 2, so version 2 is kept too (not version 1).
        let driver = |evr: &str| pkg("nvidia-driver", "x86_64", evr);
        let mut all = vec![driver("3:550.54.14-1.el9"), driver("3:550.90.07-1.el9"), driver("3:550.100-1.el9")];
        let mut modules = vec![
            module("550", 1, "a", &["nvidia-driver-3:550.90.07-1.el9.x86_64"]),
            module("550", 2, "a", &["nvidia-driver-3:550.100-1.el9.x86_64"]),
            module("550", 3, "a", &["nvidia-driver-3:550.54.14-1.el9.x86_64"]),
        ];
        let s = select(all.clone(), &modules, true);
        assert_eq!(kept(&s), ["nvidia-driver-3:550.54.14-1.el9.x86_64", "nvidia-driver-3:550.100-1.el9.x86_64"]);
        assert_eq!(s.module_streams, 1);
        // A name only an old version lists is that name's newest package: its version stays.
        all.push(pkg("nvidia-libs", "x86_64", "3:550.1-1.el9"));
        modules[0].artifacts.push("nvidia-libs-3:550.1-1.el9.x86_64".into());
        assert_eq!(select(all, &modules, true).packages.len(), 4);
    }

    #[test]
    fn hrefs_stay_inside_the_repository() {
        let f = Fetcher::new(Default::default()).unwrap();
        let repo = YumRepo { name: "r".into(), baseurl: "http://h/x".into(), gpgkey: None, newest_only: false };
        let ctx = Ctx::new(&f, &repo, Path::new("/tmp")).unwrap();
        assert_eq!(ctx.rel_of("Packages/./a.rpm", "u").unwrap(), PathBuf::from("Packages/a.rpm"));
        for bad in ["../a.rpm", "/etc/passwd", "a/../../b", "", "http://x/a.rpm", "."] {
            assert!(ctx.rel_of(bad, "u").is_err(), "{bad}");
        }
        assert_eq!(ctx.url_of("Packages/a b+c.rpm", None, "u").unwrap(), "http://h/x/Packages/a%20b+c.rpm");
        assert_eq!(ctx.url_of("a.rpm", Some("http://o/y"), "u").unwrap(), "http://o/y/a.rpm");
        assert_eq!(ctx.url_of("1:a.rpm", None, "u").unwrap(), "http://h/x/1:a.rpm");
        for (name, url) in [("a/b", "http://h/"), ("..", "http://h/"), ("r", "ftp://h/"), ("r", "http://h/$basearch/")] {
            let repo = YumRepo { name: name.into(), baseurl: url.into(), gpgkey: None, newest_only: false };
            assert!(matches!(Ctx::new(&f, &repo, Path::new("/tmp")), Err(YumError::Config { .. })), "{name} {url}");
        }
    }
}

//! Mirroring a repository: [`sync`] downloads (metadata, packages, keys, signature) and
//! [`plan`] for check mode.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};

use reqwest::header::HeaderMap;

use super::modules::{ModuleVersion, read_modules};
use super::repodata::{Package, RepoData, parse_repomd, read_primary};
use super::selection::{Selection, select};
use super::{FileKind, PlannedFile, SyncedFile, YumError, YumPlan, YumRepo, YumSync};
use crate::sources::fetch::{Algo, Checksum, FetchError, Fetcher, hash_file, parallel, part_path};

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

    fn meta_err(&self, url: &str, msg: impl std::fmt::Display) -> YumError {
        YumError::Metadata { repo: self.repo(), url: url.to_string(), msg: msg.to_string() }
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
        SyncedFile {
            path: self.prefix.join(rel),
            size: bytes.len() as u64,
            sha256: airlock_base::digest::sha256_hex(bytes),
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
    Checksum::sha256(&airlock_base::digest::sha256_hex(bytes))
}

/// The sha256 of `bytes` and their digest in `sum`'s algorithm.
fn hash_bytes(bytes: &[u8], sum: &Checksum) -> (String, String) {
    let s = airlock_base::digest::sha256_hex(bytes);
    let o = if sum.algo == Algo::Sha256 { s.clone() } else { airlock_base::digest::hex_digest(sum.algo, bytes) };
    (s, o)
}

#[cfg(test)]
mod tests {
    use super::*;
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

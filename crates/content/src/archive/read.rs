//! Reading an archive: verify every entry against the manifest, inspect the manifest, and
//! extract safely on the offline host.
//!
//! Every reader streams the archive once, `manifest.json` first. The archive may hold only
//! the manifest, the regular files it lists and the directories above them. Compression is
//! told from the first bytes (zstd, gzip or none), not the file name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{check_path, hash_file};
use super::{ArchiveError, BUF_SIZE, Compression, MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, Progress, io_err};

/// Count and total size of one kind of artifact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTotal {
    pub count: u64,
    pub bytes: u64,
}

/// One thing wrong with an archive, naming the entry or artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The entry's or artifact's path; `(archive)` for the archive as a whole.
    pub path: String,
    pub kind: ProblemKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The data's sha256 is not the manifest's.
    Damaged { expected: String, actual: String },
    /// The entry's size is not the manifest's.
    SizeMismatch { manifest: u64, archive: u64 },
    /// In the manifest, not in the archive.
    Missing,
    /// In the archive, not in the manifest.
    Unexpected,
    /// In the archive twice.
    Duplicate,
    /// Absolute, `..`, `.` or empty components, not UTF-8.
    UnsafePath(String),
    /// Not a regular file or directory (symbolic or hard link, device, FIFO, ...).
    BadType(String),
    /// The archive ends early.
    Truncated(String),
    /// The archive cannot be read on from here.
    Corrupt(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.path;
        match &self.kind {
            ProblemKind::Damaged { expected, actual } => write!(f, "{p}: damaged: sha256 {actual}, the manifest says {expected}"),
            ProblemKind::SizeMismatch { manifest, archive } => write!(f, "{p}: size {archive} in the archive, {manifest} in the manifest"),
            ProblemKind::Missing => write!(f, "{p}: missing from the archive"),
            ProblemKind::Unexpected => write!(f, "{p}: unexpected entry, not in the manifest"),
            ProblemKind::Duplicate => write!(f, "{p}: appears more than once"),
            ProblemKind::UnsafePath(why) => write!(f, "{p}: unsafe path ({why})"),
            ProblemKind::BadType(t) => write!(f, "{p}: {t}; only regular files and directories are allowed"),
            ProblemKind::Truncated(why) => write!(f, "{p}: truncated archive: {why}"),
            ProblemKind::Corrupt(why) => write!(f, "{p}: corrupt archive: {why}"),
        }
    }
}

const WHOLE: &str = "(archive)";

fn problem(path: impl Into<String>, kind: ProblemKind) -> Problem {
    Problem { path: path.into(), kind }
}

/// What [`verify_archive`] found.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub compression: Compression,
    pub manifest: Manifest,
    /// Artifacts whose size and sha256 matched.
    pub files_ok: u64,
    /// Artifact bytes read and hashed.
    pub bytes_checked: u64,
    /// Every problem, in archive order, then the missing artifacts in manifest order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What [`inspect_archive`] read.
#[derive(Clone, Debug)]
pub struct InspectReport {
    pub path: PathBuf,
    pub compression: Compression,
    /// Size of the archive file.
    pub archive_bytes: u64,
    pub manifest: Manifest,
    pub by_kind: BTreeMap<String, KindTotal>,
    pub total: KindTotal,
}

/// How [`extract_archive`] behaves.
#[derive(Clone, Copy, Default)]
pub struct ExtractOptions<'a> {
    /// Do not compare the bytes to write with the free space of the destination.
    pub skip_space_check: bool,
    /// Called after each buffer written.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

/// What [`extract_archive`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractReport {
    pub dest: PathBuf,
    /// Artifacts written (verified, then moved into place).
    pub written: u64,
    pub bytes_written: u64,
    /// Artifacts already in place with the right size and sha256.
    pub skipped: u64,
    pub bytes_skipped: u64,
}

type Stream = Box<dyn Read>;

/// Opens an archive for streaming, decompressing as its first bytes say.
fn open(path: &Path) -> Result<(Compression, u64, tar::Archive<Stream>), ArchiveError> {
    let f = File::open(path).map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::with_capacity(BUF_SIZE, f);
    let c = Compression::sniff(r.fill_buf().map_err(io_err(path))?);
    let s: Stream = match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io_err(path))?),
    };
    Ok((c, size, tar::Archive::new(s)))
}

/// Reads and validates the first entry, which must be `manifest.json`.
fn read_manifest<R: Read>(entries: &mut tar::Entries<'_, R>, path: &Path) -> Result<Manifest, ArchiveError> {
    let not = |why: String| ArchiveError::NotArchive { path: path.display().to_string(), why };
    let mut e = match entries.next() {
        None => return Err(not("the archive is empty".into())),
        Some(Err(e)) => return Err(not(format!("cannot read the first entry: {e}"))),
        Some(Ok(e)) => e,
    };
    let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
    if name != MANIFEST_NAME || e.header().entry_type() != tar::EntryType::Regular {
        return Err(not(format!("the first entry is {name:?}, not a regular file {MANIFEST_NAME}")));
    }
    let size = e.size();
    if size > MAX_MANIFEST_BYTES {
        return Err(not(format!("{MANIFEST_NAME} declares {size} bytes, over the limit of {MAX_MANIFEST_BYTES}")));
    }
    let mut data = Vec::with_capacity(size as usize);
    (&mut e).take(size).read_to_end(&mut data).map_err(|err| not(format!("reading {MANIFEST_NAME}: {err}")))?;
    if (data.len() as u64) < size {
        return Err(not(format!("{MANIFEST_NAME} is cut short ({} of {size} bytes): truncated archive", data.len())));
    }
    let m = Manifest::from_json(&data)
        .map_err(|e| ArchiveError::Manifest(format!("{MANIFEST_NAME} in {}: {}", path.display(), e.to_string().trim_start_matches("invalid manifest: "))))?;
    m.validate().map_err(|e| ArchiveError::Manifest(format!("{MANIFEST_NAME} in {}: {e}", path.display())))?;
    Ok(m)
}

/// What an entry is, once its path and type are checked.
enum Class {
    Dir,
    File(usize),
}

/// The entry's path (without a directory's trailing `/`) and what it is, or why it is not
/// allowed.
fn classify<R: Read>(e: &tar::Entry<'_, R>, index: &HashMap<&str, usize>, dirs: &HashSet<&str>) -> Result<(String, Class), Problem> {
    let raw = e.path_bytes();
    let Ok(name) = std::str::from_utf8(&raw) else {
        return Err(problem(String::from_utf8_lossy(&raw), ProblemKind::UnsafePath("not UTF-8".into())));
    };
    let et = e.header().entry_type();
    let is_dir = et == tar::EntryType::Directory;
    let name = if is_dir { name.strip_suffix('/').unwrap_or(name) } else { name };
    check_path(name).map_err(|why| problem(name, ProblemKind::UnsafePath(why.into())))?;
    let link = || e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
    let bad = match et {
        tar::EntryType::Regular | tar::EntryType::Directory => None,
        tar::EntryType::Symlink => Some(format!("symbolic link to {:?}", link())),
        tar::EntryType::Link => Some(format!("hard link to {:?}", link())),
        tar::EntryType::Char => Some("character device".into()),
        tar::EntryType::Block => Some("block device".into()),
        tar::EntryType::Fifo => Some("FIFO".into()),
        tar::EntryType::GNUSparse => Some("sparse file".into()),
        tar::EntryType::XGlobalHeader => Some("pax global header".into()),
        other => Some(format!("entry of type {:?}", other.as_byte() as char)),
    };
    if let Some(t) = bad {
        return Err(problem(name, ProblemKind::BadType(t)));
    }
    if is_dir {
        return if dirs.contains(name) { Ok((name.to_string(), Class::Dir)) } else { Err(problem(name, ProblemKind::Unexpected)) };
    }
    match index.get(name) {
        Some(&i) => Ok((name.to_string(), Class::File(i))),
        None => Err(problem(name, ProblemKind::Unexpected)),
    }
}

/// Reads up to `size` bytes of an entry, hashing them and writing them to `out`; returns the
/// bytes read (fewer than `size` when the archive ends early) and the hex sha256.
/// Errors reading the archive are `Err(Ok(e))`, errors writing `out` are `Err(Err(e))`.
fn stream_entry(
    e: &mut dyn Read,
    size: u64,
    buf: &mut [u8],
    mut out: Option<&mut File>,
    mut on_bytes: impl FnMut(u64),
) -> Result<(u64, String), Result<io::Error, io::Error>> {
    let mut h = Sha256::new();
    let mut got = 0u64;
    while got < size {
        let want = (size - got).min(buf.len() as u64) as usize;
        let n = match e.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Ok(err)),
        };
        h.update(&buf[..n]);
        if let Some(f) = out.as_deref_mut() {
            f.write_all(&buf[..n]).map_err(Err)?;
        }
        got += n as u64;
        on_bytes(n as u64);
    }
    Ok((got, hex::encode(h.finalize())))
}

/// After the last entry: what is left must be the rest of the end-of-archive marker (zeros,
/// at least one more 512-byte block).
fn check_end(rest: &mut dyn Read) -> Result<(), ProblemKind> {
    let mut buf = vec![0u8; 64 << 10];
    let mut zeros = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProblemKind::Truncated(e.to_string())),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(ProblemKind::Corrupt("data after the end-of-archive marker".into()));
        }
        zeros += n as u64;
    }
    if zeros < 512 {
        return Err(ProblemKind::Truncated("the end-of-archive marker is missing".into()));
    }
    Ok(())
}

/// An error from the archive's reader, at an entry (`at`) or after one.
fn entry_error(at: String, e: io::Error) -> Problem {
    let msg = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof || msg.contains("failed to read entire block") || msg.contains("unexpected EOF") || msg.contains("incomplete") {
        problem(at, ProblemKind::Truncated(msg))
    } else {
        problem(at, ProblemKind::Corrupt(msg))
    }
}

/// Streams the archive once and checks every entry against the manifest: each damaged,
/// mis-sized, missing, unexpected, duplicated, unsafe or non-regular entry is reported by
/// name. Errors only when the archive cannot be opened or has no valid manifest.
pub fn verify_archive(path: &Path) -> Result<VerifyReport, ArchiveError> {
    let (compression, _, mut archive) = open(path)?;
    let mut problems = Vec::new();
    let mut files_ok = 0u64;
    let mut bytes_checked = 0u64;
    let mut complete = true;
    let manifest;
    let mut seen;
    {
        let mut entries = archive.entries().map_err(io_err(path))?;
        manifest = read_manifest(&mut entries, path)?;
        let index = manifest.index();
        let dirs = manifest.directories();
        seen = vec![false; manifest.artifacts.len()];
        let mut seen_dirs: HashSet<String> = HashSet::new();
        let mut buf = vec![0u8; BUF_SIZE];
        let mut last = MANIFEST_NAME.to_string();
        for e in entries.by_ref() {
            let mut e = match e {
                Ok(e) => e,
                Err(err) => {
                    problems.push(entry_error(format!("after {last}"), err));
                    complete = false;
                    break;
                }
            };
            let (name, class) = match classify(&e, &index, &dirs) {
                Ok(c) => c,
                Err(p) => {
                    last = p.path.clone();
                    problems.push(p);
                    continue;
                }
            };
            last.clone_from(&name);
            let i = match class {
                Class::Dir => {
                    if !seen_dirs.insert(name.clone()) {
                        problems.push(problem(name, ProblemKind::Duplicate));
                    }
                    continue;
                }
                Class::File(i) => i,
            };
            if std::mem::replace(&mut seen[i], true) {
                problems.push(problem(name, ProblemKind::Duplicate));
                continue;
            }
            let a = &manifest.artifacts[i];
            if e.size() != a.size {
                problems.push(problem(name, ProblemKind::SizeMismatch { manifest: a.size, archive: e.size() }));
                continue;
            }
            match stream_entry(&mut e, a.size, &mut buf, None, |n| bytes_checked += n) {
                Ok((got, _)) if got < a.size => {
                    problems.push(problem(name, ProblemKind::Truncated(format!("{got} of {} bytes", a.size))));
                    complete = false;
                    break;
                }
                Ok((_, sha)) if sha != a.sha256 => problems.push(problem(name, ProblemKind::Damaged { expected: a.sha256.clone(), actual: sha })),
                Ok(_) => files_ok += 1,
                Err(Ok(err)) | Err(Err(err)) => {
                    problems.push(entry_error(name, err));
                    complete = false;
                    break;
                }
            }
        }
    }
    if complete {
        let mut rest = archive.into_inner();
        if let Err(kind) = check_end(&mut rest) {
            problems.push(problem(WHOLE, kind));
        }
    }
    for (a, _) in manifest.artifacts.iter().zip(&seen).filter(|(_, s)| !**s) {
        problems.push(problem(a.path.clone(), ProblemKind::Missing));
    }
    Ok(VerifyReport { path: path.to_path_buf(), compression, manifest, files_ok, bytes_checked, problems })
}

/// The manifest and its totals by kind, reading only the first entry of the archive.
pub fn inspect_archive(path: &Path) -> Result<InspectReport, ArchiveError> {
    let (compression, archive_bytes, mut archive) = open(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    let manifest = read_manifest(&mut entries, path)?;
    let by_kind = manifest.by_kind();
    let total = KindTotal { count: manifest.artifacts.len() as u64, bytes: manifest.total_size() };
    Ok(InspectReport { path: path.to_path_buf(), compression, archive_bytes, manifest, by_kind, total })
}

/// Free bytes for an unprivileged user on the file system holding `p` (statvfs).
pub fn free_space(p: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; `s` is plain data written by statvfs.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// Flushes the file system holding `dir` to disk (one `syncfs` rather than an fsync per file).
fn sync_fs(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    // SAFETY: a valid open descriptor.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where `rel` stands under `dest`: every existing parent must be a real directory (never a
/// symbolic link, so nothing is written outside `dest`); returns the target's metadata when
/// it exists as a regular file.
fn dest_state(dest: &Path, rel: &str) -> Result<Option<std::fs::Metadata>, ArchiveError> {
    let refuse = |p: &Path, why: &str| ArchiveError::Destination { dest: dest.display().to_string(), why: format!("{} {why}", p.display()) };
    let mut p = dest.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&p)(e)),
        };
        let last = i + 1 == parts.len();
        if m.file_type().is_symlink() {
            if last {
                return Ok(None); // replaced by the rename, never followed
            }
            return Err(refuse(&p, "is a symbolic link; refusing to write through it"));
        }
        if last {
            if m.is_dir() {
                return Err(refuse(&p, "is a directory where the archive has a file"));
            }
            return Ok(m.is_file().then_some(m));
        }
        if !m.is_dir() {
            return Err(refuse(&p, "is not a directory"));
        }
    }
    Ok(None)
}

/// Creates the missing parents of `dest/rel` (mode 0755), refusing symbolic links.
fn make_parents(dest: &Path, rel: &str) -> Result<(), ArchiveError> {
    let mut p = dest.to_path_buf();
    let Some((dirs, _)) = rel.rsplit_once('/') else { return Ok(()) };
    for c in dirs.split('/') {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ArchiveError::Destination { dest: dest.display().to_string(), why: format!("{} is not a directory", p.display()) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::DirBuilder::new().mode(0o755).create(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) => {}
                Err(e) => return Err(io_err(&p)(e)),
            },
            Err(e) => return Err(io_err(&p)(e)),
        }
    }
    Ok(())
}

fn unsafe_entry(p: Problem) -> ArchiveError {
    match p.kind {
        ProblemKind::UnsafePath(_) | ProblemKind::BadType(_) | ProblemKind::Unexpected | ProblemKind::Duplicate => {
            ArchiveError::Unsafe { entry: p.path.clone(), why: p.to_string().trim_start_matches(&format!("{}: ", p.path)).to_string() }
        }
        _ => ArchiveError::Verify(vec![p]),
    }
}

/// The staging directory of an extraction under its destination.
const STAGING_PREFIX: &str = ".airlock-staging-";

/// Extracts the archive under `dest` (created if needed), verifying as it goes.
///
/// 1. The manifest is read and validated; artifacts already in place under `dest` with the
///    right size and sha256 are skipped; the bytes left to write are compared with the free
///    space of `dest` (statvfs) before anything is written.
/// 2. Entries are streamed into a staging directory under `dest`, each checked for a safe
///    path, an allowed type (regular file or directory), its size and its sha256. Any
///    problem stops the extraction with an error naming the entry, and the staging
///    directory is removed: nothing is put in place from a bad archive.
/// 3. Once the whole archive has been read and every artifact found, the files are flushed
///    to disk and renamed into place; `manifest.json` is written last, at `dest`'s root.
pub fn extract_archive(path: &Path, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport, ArchiveError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    if !std::fs::metadata(dest).map_err(io_err(dest))?.is_dir() {
        return Err(ArchiveError::Destination { dest: dest.display().to_string(), why: "not a directory".into() });
    }
    // One extraction at a time into dest; the staging directory of one that was killed goes
    // first (it may be as large as the archive, and the free space check needs that room).
    let (_lock, _) = airlock_base::staging::DirLock::acquire(dest, STAGING_PREFIX).map_err(io_err(dest))?;
    let (_, _, mut archive) = open(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    let manifest = read_manifest(&mut entries, path)?;

    // What is already in place, and what is left to write.
    let mut todo = vec![true; manifest.artifacts.len()];
    let mut report = ExtractReport { dest: dest.to_path_buf(), written: 0, bytes_written: 0, skipped: 0, bytes_skipped: 0 };
    let mut needed = manifest.to_json().len() as u64;
    for (i, a) in manifest.artifacts.iter().enumerate() {
        if let Some(m) = dest_state(dest, &a.path)?
            && m.len() == a.size
            && hash_file(&dest.join(&a.path))?.1 == a.sha256
        {
            todo[i] = false;
            report.skipped += 1;
            report.bytes_skipped += a.size;
            continue;
        }
        needed = needed.saturating_add(a.size);
    }
    if !opts.skip_space_check {
        let available = free_space(dest).map_err(io_err(dest))?;
        if needed > available {
            return Err(ArchiveError::NoSpace { dest: dest.display().to_string(), needed, available });
        }
    }

    let staging = tempfile::Builder::new().prefix(STAGING_PREFIX).tempdir_in(dest).map_err(io_err(dest))?;
    let stage = staging.path();
    let mut progress = Progress { bytes_done: 0, bytes_total: needed, files_done: 0, files_total: todo.iter().filter(|t| **t).count() as u64 };
    if progress.files_total > 0 {
        let index = manifest.index();
        let dirs = manifest.directories();
        let mut seen = vec![false; manifest.artifacts.len()];
        let mut seen_dirs: HashSet<String> = HashSet::new();
        let mut buf = vec![0u8; BUF_SIZE];
        let mut last = MANIFEST_NAME.to_string();
        for e in entries.by_ref() {
            let mut e = e.map_err(|err| ArchiveError::Verify(vec![entry_error(format!("after {last}"), err)]))?;
            let (name, class) = classify(&e, &index, &dirs).map_err(unsafe_entry)?;
            let i = match class {
                Class::Dir => {
                    if !seen_dirs.insert(name.clone()) {
                        return Err(unsafe_entry(problem(name, ProblemKind::Duplicate)));
                    }
                    last = name;
                    continue;
                }
                Class::File(i) => i,
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(unsafe_entry(problem(name, ProblemKind::Duplicate)));
            }
            let a = &manifest.artifacts[i];
            if e.size() != a.size {
                return Err(ArchiveError::Verify(vec![problem(name, ProblemKind::SizeMismatch { manifest: a.size, archive: e.size() })]));
            }
            last.clone_from(&name);
            if !todo[i] {
                continue; // already in place; the reader skips the data
            }
            let target = stage.join(&a.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&target).map_err(io_err(&target))?;
            let cb = opts.progress;
            let (got, sha) = stream_entry(&mut e, a.size, &mut buf, Some(&mut f), |n| {
                progress.bytes_done += n;
                if let Some(cb) = cb {
                    cb(progress);
                }
            })
            .map_err(|err| match err {
                Ok(read) => ArchiveError::Verify(vec![entry_error(name.clone(), read)]),
                Err(write) => io_err(&target)(write),
            })?;
            if got < a.size {
                return Err(ArchiveError::Verify(vec![problem(name, ProblemKind::Truncated(format!("{got} of {} bytes", a.size)))]));
            }
            if sha != a.sha256 {
                return Err(ArchiveError::Verify(vec![problem(name, ProblemKind::Damaged { expected: a.sha256.clone(), actual: sha })]));
            }
            progress.files_done += 1;
        }
        check_end(&mut archive.into_inner()).map_err(|kind| ArchiveError::Verify(vec![problem(WHOLE, kind)]))?;
        let missing: Vec<Problem> = manifest
            .artifacts
            .iter()
            .zip(&seen)
            .zip(&todo)
            .filter(|((_, s), t)| **t && !**s)
            .map(|((a, _), _)| problem(a.path.clone(), ProblemKind::Missing))
            .collect();
        if !missing.is_empty() {
            return Err(ArchiveError::Verify(missing));
        }
        sync_fs(stage).map_err(io_err(stage))?;

        // Everything read and verified: into place.
        for (a, _) in manifest.artifacts.iter().zip(&todo).filter(|(_, t)| **t) {
            make_parents(dest, &a.path)?;
            dest_state(dest, &a.path)?;
            let target = dest.join(&a.path);
            std::fs::rename(stage.join(&a.path), &target).map_err(io_err(&target))?;
            report.written += 1;
            report.bytes_written += a.size;
        }
    }
    let m = stage.join(MANIFEST_NAME);
    std::fs::write(&m, manifest.to_json()).map_err(io_err(&m))?;
    dest_state(dest, MANIFEST_NAME)?;
    std::fs::rename(&m, dest.join(MANIFEST_NAME)).map_err(io_err(dest))?;
    sync_fs(dest).map_err(io_err(dest))?;
    staging.close().map_err(io_err(dest))?;
    Ok(report)
}

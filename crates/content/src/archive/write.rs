//! Writing the archive: `manifest.json` first, then every artifact in path order (each
//! preceded by the directory entries it needs), checked against the manifest while it is
//! streamed, each file read once through one bounded buffer.
//!
//! Deterministic: entries sorted by path, mtime fixed (the manifest's creation time unless
//! told), uid/gid 0, no user or
//! group names, mode 0644 for files and 0755 for directories, GNU long-name entries for paths
//! over 100 bytes, gzip without a time stamp, zstd with a fixed worker setting. The same
//! manifest and cache give the same bytes.
//!
//! Atomic: written to `<out>.part` in the same directory, flushed to disk, renamed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ArchiveError, BUF_SIZE, Compression, MANIFEST_NAME, Manifest, Progress, io_err};

/// How [`write_archive`] compresses and reports.
#[derive(Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    /// Compression level; `None`: zstd 3, gzip 6. Ignored for a plain `.tar`.
    pub level: Option<i32>,
    /// zstd worker threads; `None`: the number of CPUs (at most 8). At least 1 is always used,
    /// so the output does not depend on this number.
    pub threads: Option<u32>,
    /// The modification time of every entry (seconds since 1970); `None`: the manifest's
    /// `created` time (0 if it cannot be read), so the archive depends on its inputs only.
    pub mtime: Option<u64>,
    /// Called after each buffer of artifact data, and once at the end.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

/// What [`write_archive`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteReport {
    pub path: PathBuf,
    pub compression: Compression,
    pub artifacts: u64,
    pub directories: u64,
    /// Sum of the artifacts' sizes.
    pub bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

impl Sink {
    fn new(file: File, compression: Compression, opts: &WriteOptions) -> io::Result<Sink> {
        let w = BufWriter::with_capacity(BUF_SIZE, file);
        Ok(match compression {
            Compression::None => Sink::Plain(w),
            Compression::Gzip => {
                let level = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                Sink::Gzip(flate2::GzBuilder::new().mtime(0).write(w, flate2::Compression::new(level)))
            }
            Compression::Zstd => {
                let level = opts.level.unwrap_or(3);
                let mut z = zstd::stream::write::Encoder::new(w, level)?;
                let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1).min(8);
                z.multithread(opts.threads.unwrap_or(cpus).max(1))?;
                z.include_checksum(true)?;
                if level <= 9 {
                    // zstd's default job (4 windows, 8 MiB at level 3) keeps ~130 MiB in flight
                    // for 2 workers; 2 MiB jobs need ~55 MiB, at the same speed and ratio.
                    z.set_parameter(zstd::stream::raw::CParameter::JobSize(2 << 20))?;
                }
                Sink::Zstd(z)
            }
        })
    }

    fn finish(self) -> io::Result<File> {
        let w = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        w.into_inner().map_err(|e| e.into_error())
    }
}

/// Removes the `.part` file unless the archive was completed.
struct PartGuard(Option<PathBuf>);

impl Drop for PartGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes the files `manifest` names, read from `cache_root`, into the archive `out`
/// (`.tar`, `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`). The manifest is written sorted by path.
/// A cache file that is missing, or whose size or sha256 differs from the manifest, is an
/// error naming it, and no archive is left behind.
pub fn write_archive(cache_root: &Path, manifest: &Manifest, out: &Path, opts: WriteOptions) -> Result<WriteReport, ArchiveError> {
    let compression = Compression::from_path(out)?;
    let manifest: Cow<Manifest> = if manifest.is_sorted() {
        Cow::Borrowed(manifest)
    } else {
        let mut m = manifest.clone();
        m.sort();
        Cow::Owned(m)
    };
    manifest.validate()?;
    let json = manifest.to_json();
    let mtime = opts.mtime.unwrap_or_else(|| super::manifest::parse_rfc3339(&manifest.created).map_or(0, |t| t.max(0) as u64));

    let part = crate::sources::fetch::part_path(out);
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&part).map_err(io_err(&part))?;
    let mut guard = PartGuard(Some(part.clone()));
    let sink = Sink::new(file, compression, &opts).map_err(io_err(&part))?;
    let mut tar = tar::Builder::new(sink);

    let wio = |e: io::Error| io_err(&part)(e);
    let mut h = header(tar::EntryType::Regular, 0o644, json.len() as u64, mtime);
    tar.append_data(&mut h, MANIFEST_NAME, json.as_bytes()).map_err(wio)?;

    let total = manifest.total_size();
    let mut dirs: HashSet<String> = HashSet::new();
    std::thread::scope(|scope| -> Result<(), ArchiveError> {
        // Hashing runs beside reading and writing: full buffers go to the hasher thread and
        // come back empty (at most POOL of them); each file's sum is checked once it is ready,
        // and always before the archive is completed.
        const POOL: usize = 4;
        let (data_tx, data_rx) = std::sync::mpsc::sync_channel::<ToHasher>(POOL);
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let (sum_tx, sum_rx) = std::sync::mpsc::channel::<(usize, String)>();
        scope.spawn(move || {
            let mut h = Sha256::new();
            for m in data_rx {
                match m {
                    ToHasher::Data(buf, n) => {
                        h.update(&buf[..n]);
                        let _ = free_tx.send(buf);
                    }
                    ToHasher::End(i) => {
                        let _ = sum_tx.send((i, hex::encode(h.finalize_reset())));
                    }
                }
            }
        });
        let check = |i: usize, sha: String| {
            let a = &manifest.artifacts[i];
            if sha == a.sha256 {
                Ok(())
            } else {
                Err(ArchiveError::CacheMismatch { path: a.path.clone(), what: format!("sha256 {sha} in the cache, {} in the manifest", a.sha256) })
            }
        };
        let hasher_gone = || ArchiveError::Io { path: part.display().to_string(), source: io::Error::other("the hashing thread stopped") };
        let mut made = 0;
        let mut sums = 0;
        let mut progress = Progress { bytes_done: 0, bytes_total: total, files_done: 0, files_total: manifest.artifacts.len() as u64 };
        for (idx, a) in manifest.artifacts.iter().enumerate() {
            // Parent directories, outermost first, each once.
            let mut at = 0;
            while let Some(i) = a.path[at..].find('/') {
                let d = &a.path[..at + i];
                if !dirs.contains(d) {
                    let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
                    tar.append_data(&mut h, format!("{d}/"), io::empty()).map_err(wio)?;
                    dirs.insert(d.to_string());
                }
                at += i + 1;
            }

            let src = cache_root.join(&a.path);
            let mut f = match File::open(&src) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ArchiveError::CacheMissing { path: a.path.clone() }),
                Err(e) => return Err(io_err(&src)(e)),
            };
            let meta = f.metadata().map_err(io_err(&src))?;
            if !meta.is_file() {
                return Err(ArchiveError::CacheMismatch { path: a.path.clone(), what: "not a regular file".into() });
            }
            if meta.len() != a.size {
                return Err(ArchiveError::CacheMismatch {
                    path: a.path.clone(),
                    what: format!("size {} in the cache, {} in the manifest", meta.len(), a.size),
                });
            }
            // The header (and a GNU long-name entry when needed) goes through the builder; the
            // data is streamed here, in large blocks, so that each file is read once.
            let mut h = header(tar::EntryType::Regular, 0o644, a.size, mtime);
            tar.append_data(&mut h, &a.path, io::empty()).map_err(wio)?;
            let w = tar.get_mut();
            let mut left = a.size;
            while left > 0 {
                let mut buf = match free_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if made < POOL => {
                        made += 1;
                        vec![0u8; BUF_SIZE]
                    }
                    Err(_) => free_rx.recv().map_err(|_| hasher_gone())?,
                };
                let want = left.min(buf.len() as u64) as usize;
                let n = match f.read(&mut buf[..want]) {
                    Ok(0) => {
                        return Err(ArchiveError::CacheMismatch {
                            path: a.path.clone(),
                            what: format!("file shrank while being read ({} of {} bytes)", a.size - left, a.size),
                        });
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        let _ = data_tx.send(ToHasher::Data(buf, 0));
                        continue;
                    }
                    Err(e) => return Err(io_err(&src)(e)),
                };
                w.write_all(&buf[..n]).map_err(wio)?;
                data_tx.send(ToHasher::Data(buf, n)).map_err(|_| hasher_gone())?;
                left -= n as u64;
                progress.bytes_done += n as u64;
                if let Some(cb) = opts.progress {
                    cb(progress);
                }
            }
            let pad = (512 - a.size % 512) % 512;
            w.write_all(&[0u8; 512][..pad as usize]).map_err(wio)?;
            data_tx.send(ToHasher::End(idx)).map_err(|_| hasher_gone())?;
            while let Ok((i, sha)) = sum_rx.try_recv() {
                check(i, sha)?;
                sums += 1;
            }
            progress.files_done += 1;
        }
        drop(data_tx);
        for (i, sha) in sum_rx.iter() {
            check(i, sha)?;
            sums += 1;
        }
        if sums != manifest.artifacts.len() {
            return Err(hasher_gone());
        }
        if let Some(cb) = opts.progress {
            cb(progress);
        }
        Ok(())
    })?;

    let sink = tar.into_inner().map_err(wio)?;
    let file = sink.finish().map_err(wio)?;
    file.sync_all().map_err(wio)?;
    let archive_bytes = file.metadata().map_err(wio)?.len();
    drop(file);
    std::fs::rename(&part, out).map_err(io_err(out))?;
    guard.0 = None;
    // The rename itself reaches the disk with the directory.
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(WriteReport {
        path: out.to_path_buf(),
        compression,
        artifacts: manifest.artifacts.len() as u64,
        directories: dirs.len() as u64,
        bytes: total,
        archive_bytes,
    })
}

enum ToHasher {
    /// A buffer and how many of its bytes to hash.
    Data(Vec<u8>, usize),
    /// The end of the artifact with this index in the manifest.
    End(usize),
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

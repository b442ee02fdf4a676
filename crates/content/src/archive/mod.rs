//! The offline archive: on the connected host the filled cache directory (images, Yum repos,
//! Python packages, Helm charts, files) is written into ONE tar archive; on the offline host
//! the archive is verified and unpacked (under /opt/deepops, as DeepOps does).
//!
//! - [`manifest`]: what the archive holds (`manifest.json`, its first entry): every artifact's
//!   path, size, sha256 and source. The manifest is the truth: the archive holds exactly the
//!   files it names, and nothing else but their parent directories.
//! - [`write`]: [`write_archive`] streams the cache into `.tar`, `.tar.gz` or `.tar.zst`,
//!   checking every file against the manifest while reading it once; deterministic bytes;
//!   the archive appears only when complete.
//! - [`read`]: [`verify_archive`] (every damaged, missing or unexpected entry, by name),
//!   [`inspect_archive`] (reads the manifest only) and [`extract_archive`] (verified, staged,
//!   refuses hostile archives).

pub mod manifest;
pub mod read;
pub mod write;

use std::path::Path;

pub use manifest::{Artifact, Manifest, ValidationError};
pub use read::{ExtractOptions, ExtractReport, InspectReport, KindTotal, Problem, ProblemKind, VerifyReport, extract_archive, inspect_archive, verify_archive};
pub use write::{WriteOptions, WriteReport, write_archive};

/// The name of the manifest entry, first in every archive.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The manifest format this airlock writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest `manifest.json` a reader accepts (a guard against a decompression bomb).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// The buffer every file is streamed through.
pub(crate) const BUF_SIZE: usize = 1 << 20;

/// Bytes done so far against the total, given to progress callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub files_done: u64,
    pub files_total: u64,
}

/// How an archive's bytes are compressed; chosen from the file name when writing, from the
/// first bytes when reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// `.tar` plain, `.tar.gz`/`.tgz` gzip, `.tar.zst`/`.tzst` zstd.
    pub fn from_path(path: &Path) -> Result<Compression, ArchiveError> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        if name.ends_with(".tar") {
            Ok(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Ok(Compression::Gzip)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Ok(Compression::Zstd)
        } else {
            Err(ArchiveError::BadName(path.display().to_string()))
        }
    }

    /// From an archive's first bytes (magic numbers); anything else is read as a plain tar.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Why writing, reading or extracting an archive failed. Every variant names the file, entry
/// or artifact concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}: unsupported archive name (use .tar, .tar.gz/.tgz or .tar.zst/.tzst)")]
    BadName(String),
    #[error("invalid manifest: {0}")]
    Manifest(String),
    #[error("cache file {path} is missing (listed in the manifest)")]
    CacheMissing { path: String },
    #[error("cache file {path} does not match the manifest: {what}")]
    CacheMismatch { path: String, what: String },
    #[error("{path}: not an airlock archive: {why}")]
    NotArchive { path: String, why: String },
    #[error("refusing archive entry {entry:?}: {why}")]
    Unsafe { entry: String, why: String },
    #[error("refusing to extract into {dest}: {why}")]
    Destination { dest: String, why: String },
    #[error("not enough free space in {dest}: the manifest declares {needed} bytes to write ({}), {available} bytes ({}) are available", human_size(*needed), human_size(*available))]
    NoSpace { dest: String, needed: u64, available: u64 },
    #[error("archive does not match its manifest: {}", join_problems(.0))]
    Verify(Vec<Problem>),
}

fn join_problems(p: &[Problem]) -> String {
    const SHOWN: usize = 20;
    let mut s = p.iter().take(SHOWN).map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
    if p.len() > SHOWN {
        s.push_str(&format!("; and {} more", p.len() - SHOWN));
    }
    s
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.display().to_string(), source }
}

/// `1.5 GiB`, `12.0 MiB`, `512 B`: binary units, one decimal.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536 << 20), "1.5 GiB");
    }

    #[test]
    fn names() {
        assert_eq!(Compression::from_path(Path::new("/x/a.tar")).unwrap(), Compression::None);
        assert_eq!(Compression::from_path(Path::new("a.TAR.ZST")).unwrap(), Compression::Zstd);
        assert_eq!(Compression::from_path(Path::new("a.tgz")).unwrap(), Compression::Gzip);
        assert!(Compression::from_path(Path::new("a.zip")).is_err());
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(Compression::sniff(b"manifest.json"), Compression::None);
    }
}

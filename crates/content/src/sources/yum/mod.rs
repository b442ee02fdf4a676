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

mod modules;
mod repodata;
mod selection;
mod sync;
mod version;

use std::path::PathBuf;

use crate::sources::fetch::{Checksum, FetchError};

pub use modules::{ModuleVersion, parse_modules, read_modules};
pub use repodata::{Compression, Package, RepoData, RepodataError, detect_compression, parse_primary, parse_repomd, read_primary, with_decompressed};
pub use selection::{Selection, newest, select};
pub use sync::{plan, sync};
pub use version::{Evr, rpmvercmp};

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

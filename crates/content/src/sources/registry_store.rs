//! Images from an OCI image layout written straight into the storage of Docker's distribution
//! registry (`registry:2`, Debian's `docker-registry`), as its filesystem driver lays it out,
//! so the registry serves them without a `docker load` and `docker push` of every image.
//!
//! Under the directory the registry is given as `rootdirectory` (`/var/lib/registry` in the
//! `registry:2` container):
//!
//! ```text
//! docker/registry/v2/blobs/sha256/<hex[..2]>/<hex>/data          every blob, manifests too
//! docker/registry/v2/repositories/<name>/
//!   _layers/sha256/<hex>/link                                   configs and layers
//!   _manifests/revisions/sha256/<hex>/link                      every manifest and index
//!   _manifests/tags/<tag>/current/link                          what the tag names
//!   _manifests/tags/<tag>/index/sha256/<hex>/link               every digest the tag named
//! ```
//!
//! A link file holds `sha256:<hex>` and no newline, mode 0644, as the registry writes it.
//! Blobs are hard links to the layout's files when both are on one filesystem, else copies;
//! either way a blob is in place before any link names it, and tag links come last, so a
//! registry running meanwhile never serves a tag whose content is not all there.
//!
//! Manifests are the layout's bytes, so digests are upstream's: for an image with Docker
//! media types, whose `index.json` entry names an OCI-typed form, the entry's
//! `io.airlock.upstream.*` annotations lead to upstream's manifest or index, and the OCI-typed
//! form is left out. An index keeps every manifest
//! it names; the ones the layout holds (the platforms the cache kept) are served, the others
//! answer "manifest unknown", as they would from a registry the index was pushed to partially.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use airlock_base::digest::{self, Algorithm, Hasher, sha256_hex_of};
use serde_json::Value;

use super::oci::{ANNOTATION_REF_NAME, ImageRef, blob_path, upstream_descriptor};

/// How deep indexes may nest (an index naming indexes), as `oci::pull` allows.
const MAX_INDEX_DEPTH: usize = 4;

/// How [`import`] behaves.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Hash every blob an image needs (the layout's, or the copy already in the storage)
    /// before its links are written. Turn off only when the layout was verified already (the
    /// offline archive is, when it is extracted). Manifests are always verified: they are
    /// read anyway.
    pub verify: bool,
    /// Work out what would be written and write nothing (blobs are not hashed then).
    pub dry_run: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { verify: true, dry_run: false }
    }
}

/// What [`import`] reports while it works.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// The bytes that will be read (hashed or copied), known once the layout is planned.
    Total(u64),
    /// An image is being imported (its reference).
    Image(&'a str),
    /// Bytes read since the last report.
    Bytes(u64),
}

/// One image under one repository name of the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    /// The reference the layout names it by: `nvcr.io/nvidia/k8s-device-plugin:v0.17.1`.
    pub reference: String,
    /// The repository in the registry: `nvidia/k8s-device-plugin`.
    pub repository: String,
    /// The tag; `None` for an image the layout holds by digest only.
    pub tag: Option<String>,
    /// Digest of its manifest or index, as upstream's.
    pub digest: String,
    /// Media type of its manifest or index.
    pub media_type: String,
    /// Whether anything of the image was written (or, in a dry run, would be).
    pub changed: bool,
}

/// What [`import`] did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Every image under every repository name it got.
    pub images: Vec<ImportedImage>,
    /// Blobs put in place as hard links to the layout's files.
    pub blobs_linked: usize,
    /// Blobs copied (the layout is on another filesystem, or linking was refused).
    pub blobs_copied: usize,
    /// Blobs that were in the storage already.
    pub blobs_present: usize,
    /// Bytes of the blobs linked.
    pub bytes_linked: u64,
    /// Bytes of the blobs copied.
    pub bytes_copied: u64,
    /// Link files written (layer, revision and tag links).
    pub links_written: usize,
}

impl ImportReport {
    /// Whether anything was written (or would be).
    pub fn changed(&self) -> bool {
        self.blobs_linked + self.blobs_copied + self.links_written > 0
    }
}

/// A failed import. Each message names the image, the file or digest, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The layout cannot be read, is incomplete, or holds something not supported.
    #[error("{0}")]
    Layout(String),
    /// An image asked for is not in the layout.
    #[error("{image} is not in the OCI layout {}: it holds {}; add the image to docker_image_list and rebuild the offline cache, or fix the name", layout.display(), list_or_nothing(available))]
    NotInLayout {
        /// The image asked for.
        image: String,
        /// The layout directory.
        layout: PathBuf,
        /// Every image the layout names.
        available: Vec<String>,
    },
    /// Two images want the same repository and tag.
    #[error("{first} and {second} would both be {target} in the registry: import only one of them")]
    Conflict {
        /// `repository:tag`.
        target: String,
        /// The first image: its reference and digest.
        first: String,
        /// The second image.
        second: String,
    },
    /// A blob does not match its digest or size; nothing of the image was written.
    #[error("{image}: blob {digest} ({}) {problem}; nothing of {image} was written to the registry storage: the layout is damaged, extract the offline archive again or rebuild the cache", path.display())]
    Integrity {
        /// The image (its reference).
        image: String,
        /// The blob's digest.
        digest: String,
        /// The file read.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Writing the registry's storage failed.
    #[error("cannot {what} {}: {source}: check that the registry storage is writable and has room", path.display())]
    Storage {
        /// What was being done: `create`, `write`, `read`, `clean up in`, `write in`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        source: io::Error,
    },
}

fn list_or_nothing(list: &[String]) -> String {
    if list.is_empty() { "no named image".to_string() } else { list.join(", ") }
}

/// The repository names an image gets in the registry, as DeepOps pulls from its mirror
/// (`<mirror>:5000/<path without the registry host>`): `nvcr.io/nvidia/k8s-device-plugin`
/// is `nvidia/k8s-device-plugin`. A Docker Hub official image is also stored with
/// `library/` (`registry` and `library/registry`), the name Docker's `registry-mirrors` and
/// containerd's mirrors ask for.
pub fn repositories_for(image: &ImageRef) -> Vec<String> {
    let mut names = Vec::new();
    if image.registry == "docker.io"
        && let Some(short) = image.repository.strip_prefix("library/")
        && !short.contains('/')
    {
        names.push(short.to_string());
    }
    names.push(image.repository.clone());
    names
}

/// `<storage>/docker/registry/v2`, the root of the filesystem driver's layout.
pub fn v2_root(storage: &Path) -> PathBuf {
    storage.join("docker").join("registry").join("v2")
}

fn data_path(v2: &Path, hex: &str) -> PathBuf {
    v2.join("blobs").join("sha256").join(&hex[..2]).join(hex).join("data")
}

fn repo_dir(v2: &Path, repository: &str) -> PathBuf {
    repository.split('/').fold(v2.join("repositories"), |p, c| p.join(c))
}

fn layer_link(v2: &Path, repository: &str, hex: &str) -> PathBuf {
    repo_dir(v2, repository).join("_layers").join("sha256").join(hex).join("link")
}

fn revision_link(v2: &Path, repository: &str, hex: &str) -> PathBuf {
    repo_dir(v2, repository).join("_manifests").join("revisions").join("sha256").join(hex).join("link")
}

fn tag_dir(v2: &Path, repository: &str, tag: &str) -> PathBuf {
    repo_dir(v2, repository).join("_manifests").join("tags").join(tag)
}

// ---------------------------------------------------------------------------------------------
// Reading the layout

/// An `index.json` entry with a name.
#[derive(Clone, Debug)]
struct Entry {
    reference: String,
    image: ImageRef,
    hex: String,
    size: u64,
}

/// A blob an image needs: its hex digest, size and file in the layout.
#[derive(Clone, Debug)]
struct Blob {
    hex: String,
    size: u64,
    path: PathBuf,
}

/// An image as it will be written.
#[derive(Debug)]
struct Plan {
    entry: Entry,
    media_type: String,
    /// Every manifest and index the layout holds, nested ones before those naming them.
    manifests: Vec<Blob>,
    /// Configs and layers.
    layers: Vec<Blob>,
    /// (repository, tag) pairs.
    targets: Vec<(String, Option<String>)>,
}

/// The named entries of `index.json`.
fn read_index(layout: &Path) -> Result<Vec<Entry>, ImportError> {
    let path = layout.join("index.json");
    let bytes = fs::read(&path).map_err(|e| {
        ImportError::Layout(format!("cannot read {} ({e}): is {} an OCI image layout (the cache's docker-images)?", path.display(), layout.display()))
    })?;
    let index: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ImportError::Layout(format!("{} is not valid JSON ({e}): extract the offline archive again", path.display())))?;
    let mut out = Vec::new();
    for m in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = m.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str) else {
            continue;
        };
        let image =
            ImageRef::parse(name).map_err(|e| ImportError::Layout(format!("{} names an image '{name}' that is not a valid reference: {e}", path.display())))?;
        // Upstream's bytes, not the OCI-typed form the entry may name: the registry serves
        // the digests clients pinned.
        let upstream =
            upstream_descriptor(m).map_err(|e| ImportError::Layout(format!("{}: {name}: {e}: rebuild the cache with image_cache", path.display())))?;
        let digest = upstream.digest.as_str();
        let hex = sha256_hex_of(digest).ok_or_else(|| ImportError::Layout(format!("{}: {name} has digest '{digest}', not sha256:<hex>", path.display())))?;
        let size = upstream.size.ok_or_else(|| ImportError::Layout(format!("{}: {name} has no size", path.display())))?;
        out.push(Entry { reference: name.to_string(), image, hex: hex.to_string(), size });
    }
    Ok(out)
}

/// Walks an image's manifests in the layout, collecting what it needs.
struct Walker<'a> {
    layout: &'a Path,
    reference: &'a str,
    seen: HashSet<String>,
    manifests: Vec<Blob>,
    layers: Vec<Blob>,
}

impl Walker<'_> {
    fn missing(&self, digest: &str, path: &Path) -> ImportError {
        ImportError::Layout(format!(
            "{}: blob {digest} is missing from the OCI layout {} (expected at {}): the layout is incomplete; extract the offline archive again or rebuild the cache",
            self.reference,
            self.layout.display(),
            path.display()
        ))
    }

    fn integrity(&self, digest: &str, path: &Path, problem: String) -> ImportError {
        ImportError::Integrity { image: self.reference.to_string(), digest: digest.to_string(), path: path.to_path_buf(), problem }
    }

    /// A descriptor's digest hex and size.
    fn descriptor(&self, d: &Value, within: &str) -> Result<(String, u64, bool), ImportError> {
        let digest = d.get("digest").and_then(Value::as_str).unwrap_or("");
        let hex = sha256_hex_of(digest).ok_or_else(|| {
            ImportError::Layout(format!("{}: manifest {within} names '{digest}', which is not a sha256 digest the registry storage can hold", self.reference))
        })?;
        let size = d
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| ImportError::Layout(format!("{}: manifest {within} names {digest} without a size", self.reference)))?;
        // Foreign layers (Windows base layers) are fetched from their URLs, never from a registry.
        let foreign = d.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
        Ok((hex.to_string(), size, foreign))
    }

    /// Reads and verifies a manifest or index, then what it names. A manifest an index names
    /// may be absent (`optional`): the cache keeps only some platforms.
    fn manifest(&mut self, hex: &str, size: u64, depth: usize, optional: bool) -> Result<Option<String>, ImportError> {
        let digest = format!("sha256:{hex}");
        if !self.seen.insert(hex.to_string()) {
            return Ok(None);
        }
        let path = blob_path(self.layout, &digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && optional => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.missing(&digest, &path)),
            Err(e) => return Err(ImportError::Layout(format!("{}: cannot read {}: {e}", self.reference, path.display()))),
        };
        if bytes.len() as u64 != size {
            return Err(self.integrity(&digest, &path, format!("is {} bytes, but {size} are named", bytes.len())));
        }
        let actual = digest::sha256_hex(&bytes);
        if actual != hex {
            return Err(self.integrity(&digest, &path, format!("does not match its digest (its sha256 is {actual})")));
        }
        let json: Value =
            serde_json::from_slice(&bytes).map_err(|e| ImportError::Layout(format!("{}: manifest {digest} is not JSON ({e})", self.reference)))?;
        if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
            return Err(ImportError::Layout(format!("{}: manifest {digest} is Docker schema 1, which is not supported: cache a newer tag", self.reference)));
        }
        if let Some(children) = json.get("manifests").and_then(Value::as_array) {
            if depth >= MAX_INDEX_DEPTH {
                return Err(ImportError::Layout(format!("{}: indexes nest more than {MAX_INDEX_DEPTH} deep below {digest}", self.reference)));
            }
            for c in children {
                let (child, child_size, _) = self.descriptor(c, &digest)?;
                self.manifest(&child, child_size, depth + 1, true)?;
            }
        } else {
            let descs = json.get("config").into_iter().chain(json.get("layers").and_then(Value::as_array).into_iter().flatten());
            for d in descs {
                let (h, s, foreign) = self.descriptor(d, &digest)?;
                if !self.seen.insert(h.clone()) {
                    continue;
                }
                let bdigest = format!("sha256:{h}");
                let p = blob_path(self.layout, &bdigest);
                match fs::metadata(&p) {
                    Ok(m) if m.len() != s => {
                        return Err(self.integrity(&bdigest, &p, format!("is {} bytes, but {s} are named", m.len())));
                    }
                    Ok(_) => self.layers.push(Blob { hex: h, size: s, path: p }),
                    Err(e) if e.kind() == io::ErrorKind::NotFound && foreign => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.missing(&bdigest, &p)),
                    Err(e) => return Err(ImportError::Layout(format!("{}: cannot read {}: {e}", self.reference, p.display()))),
                }
            }
        }
        self.manifests.push(Blob { hex: hex.to_string(), size, path });
        let media_type = json.get("mediaType").and_then(Value::as_str).map(str::to_string);
        Ok(Some(
            media_type
                .unwrap_or_else(|| if json.get("manifests").is_some() { super::oci::MEDIA_OCI_INDEX } else { super::oci::MEDIA_OCI_MANIFEST }.to_string()),
        ))
    }
}

fn plan_image(layout: &Path, entry: &Entry) -> Result<Plan, ImportError> {
    let mut w = Walker { layout, reference: &entry.reference, seen: HashSet::new(), manifests: Vec::new(), layers: Vec::new() };
    let media_type = w.manifest(&entry.hex, entry.size, 0, false)?.unwrap_or_default();
    let tag = entry.image.tag.clone();
    let targets = repositories_for(&entry.image).into_iter().map(|r| (r, tag.clone())).collect();
    Ok(Plan { entry: entry.clone(), media_type, manifests: w.manifests, layers: w.layers, targets })
}

/// The entries to import: `selection` looked up by reference, or every named entry.
fn select(layout: &Path, entries: Vec<Entry>, selection: Option<&[ImageRef]>) -> Result<Vec<Entry>, ImportError> {
    let Some(wanted) = selection else { return Ok(entries) };
    let mut out: Vec<Entry> = Vec::new();
    for w in wanted {
        let found: Vec<&Entry> = entries.iter().filter(|e| &e.image == w).collect();
        if found.is_empty() {
            let mut available: Vec<String> = entries.iter().map(|e| e.image.to_string()).collect();
            available.sort();
            available.dedup();
            return Err(ImportError::NotInLayout { image: w.to_string(), layout: layout.to_path_buf(), available });
        }
        for e in found {
            if !out.iter().any(|o| o.reference == e.reference && o.hex == e.hex) {
                out.push(e.clone());
            }
        }
    }
    Ok(out)
}

/// Fails when two images want one repository:tag (the same content twice is fine).
fn check_conflicts(plans: &[Plan]) -> Result<(), ImportError> {
    let mut owners: BTreeMap<(String, String), &Entry> = BTreeMap::new();
    for p in plans {
        for (repo, tag) in &p.targets {
            let Some(tag) = tag else { continue };
            match owners.get(&(repo.clone(), tag.clone())) {
                Some(first) if first.hex != p.entry.hex => {
                    let named = |e: &Entry| format!("{} (sha256:{})", e.reference, e.hex);
                    return Err(ImportError::Conflict { target: format!("{repo}:{tag}"), first: named(first), second: named(&p.entry) });
                }
                Some(_) => {}
                None => {
                    owners.insert((repo.clone(), tag.clone()), &p.entry);
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing the storage

fn storage_err(what: &'static str, path: &Path, source: io::Error) -> ImportError {
    ImportError::Storage { what, path: path.to_path_buf(), source }
}

const STAGING_PREFIX: &str = ".airlock-import-";

/// Where new files are written before they are renamed into place: a directory of the
/// storage root, beside `docker/` (so on its filesystem), which the registry never reads.
/// Created on first use, so a run that writes nothing touches nothing; removed when dropped.
struct Staging<'a> {
    storage: &'a Path,
    dir: Option<tempfile::TempDir>,
    next: u64,
    /// Held while `dir` exists (dropped after it), so a later import knows any other staging
    /// directory belongs to a run that was killed, and removes it.
    lock: Option<airlock_base::staging::DirLock>,
}

impl Staging<'_> {
    fn file(&mut self) -> Result<PathBuf, ImportError> {
        if self.dir.is_none() {
            fs::create_dir_all(self.storage).map_err(|e| storage_err("create", self.storage, e))?;
            let (lock, _) = airlock_base::staging::DirLock::acquire(self.storage, STAGING_PREFIX).map_err(|e| storage_err("clean up in", self.storage, e))?;
            self.lock = Some(lock);
            let d = tempfile::Builder::new().prefix(STAGING_PREFIX).tempdir_in(self.storage).map_err(|e| storage_err("write in", self.storage, e))?;
            self.dir = Some(d);
        }
        self.next += 1;
        Ok(self.dir.as_ref().expect("created above").path().join(self.next.to_string()))
    }
}

/// Renames a staged file into place, creating its directory.
fn put_in_place(staged: &Path, dest: &Path) -> Result<(), ImportError> {
    let dir = dest.parent().expect("storage paths have a parent");
    fs::create_dir_all(dir).map_err(|e| storage_err("create", dir, e))?;
    fs::rename(staged, dest).map_err(|e| storage_err("write", dest, e))
}

fn new_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path)
}

/// The sha256 of a file, reporting bytes as they are read.
fn hash_file(path: &Path, progress: &mut dyn FnMut(Progress<'_>)) -> io::Result<String> {
    let mut h = Hasher::new(Algorithm::Sha256);
    digest::read_chunks(path, |chunk| {
        h.update(chunk);
        progress(Progress::Bytes(chunk.len() as u64));
        Ok(())
    })?;
    Ok(h.hex())
}

/// Copies `src` to the new file `dest`, flushed to disk; the sha256 of what was copied.
fn copy_hashed(src: &Path, dest: &Path, progress: &mut dyn FnMut(Progress<'_>)) -> io::Result<String> {
    let mut from = fs::File::open(src)?;
    let mut to = new_file(dest)?;
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        progress(Progress::Bytes(n as u64));
    }
    to.sync_all()?;
    Ok(h.hex())
}

/// Whether a link file already holds `digest`.
fn link_holds(path: &Path, digest: &str) -> bool {
    fs::read(path).is_ok_and(|b| b == digest.as_bytes())
}

/// The device of `path` or of its nearest existing ancestor.
fn device_of(path: &Path) -> Option<u64> {
    path.ancestors().find_map(|p| fs::metadata(p).ok()).map(|m| m.dev())
}

/// Whether the storage holds a blob with its size (a hard link to the layout's file, or a
/// copy); one of another size is put in place again.
fn in_storage(v2: &Path, b: &Blob) -> bool {
    fs::metadata(data_path(v2, &b.hex)).is_ok_and(|m| m.len() == b.size)
}

/// The import's running state across images.
struct Writer<'a> {
    v2: PathBuf,
    opts: &'a ImportOptions,
    staging: Staging<'a>,
    /// Blobs known to be in place and good (or, in a dry run, that would be).
    done: HashSet<String>,
    /// The storage's device, to tell in a dry run whether blobs would be linked or copied.
    storage_dev: Option<u64>,
    report: ImportReport,
}

impl Writer<'_> {
    /// Writes a link file unless it holds `digest` already; whether it was (or would be) written.
    fn link(&mut self, path: &Path, digest: &str) -> Result<bool, ImportError> {
        if link_holds(path, digest) {
            return Ok(false);
        }
        if !self.opts.dry_run {
            let tmp = self.staging.file()?;
            let mut f = new_file(&tmp).map_err(|e| storage_err("write", &tmp, e))?;
            f.write_all(digest.as_bytes()).map_err(|e| storage_err("write", &tmp, e))?;
            drop(f);
            put_in_place(&tmp, path)?;
        }
        self.report.links_written += 1;
        Ok(true)
    }

    /// Puts an image's blobs in place (all verified before any is), then its links: layers
    /// and configs, manifests (nested before the index naming them), tags last. Whether
    /// anything was (or would be) written.
    fn image(&mut self, plan: &Plan, progress: &mut dyn FnMut(Progress<'_>)) -> Result<bool, ImportError> {
        let reference = plan.entry.reference.as_str();
        let integrity = |b: &Blob, problem: String| ImportError::Integrity {
            image: reference.to_string(),
            digest: format!("sha256:{}", b.hex),
            path: b.path.clone(),
            problem,
        };
        // Staged files, and whether each is a hard link.
        let mut staged: Vec<(&Blob, PathBuf, bool)> = Vec::new();
        let mut present = 0;
        for b in plan.manifests.iter().chain(&plan.layers) {
            if self.done.contains(&b.hex) {
                continue;
            }
            let mut present_here = in_storage(&self.v2, b);
            if present_here && self.opts.verify && !self.opts.dry_run {
                // A hard link shares the layout's file, so this verifies both at once.
                let data = data_path(&self.v2, &b.hex);
                present_here = hash_file(&data, progress).map_err(|e| storage_err("read", &data, e))? == b.hex;
            }
            if present_here {
                present += 1;
                continue;
            }
            if self.opts.dry_run {
                let linkable = fs::metadata(&b.path).is_ok_and(|m| Some(m.dev()) == self.storage_dev);
                staged.push((b, PathBuf::new(), linkable));
                continue;
            }
            let tmp = self.staging.file()?;
            // link(2) does not follow a symlink it is given: link what it points to.
            let source = fs::canonicalize(&b.path).unwrap_or_else(|_| b.path.clone());
            let linked = fs::hard_link(&source, &tmp).is_ok();
            let actual = if linked {
                if self.opts.verify {
                    Some(hash_file(&tmp, progress).map_err(|e| storage_err("read", &b.path, e))?)
                } else {
                    progress(Progress::Bytes(b.size));
                    None
                }
            } else {
                // Another filesystem, or links refused (fs.protected_hardlinks): a copy,
                // verified as it is made.
                Some(copy_hashed(&b.path, &tmp, progress).map_err(|e| storage_err("copy", &b.path, e))?)
            };
            if let Some(actual) = actual
                && actual != b.hex
            {
                return Err(integrity(b, format!("does not match its digest (its sha256 is {actual})")));
            }
            staged.push((b, tmp, linked));
        }
        let mut changed = !staged.is_empty();
        for (b, tmp, linked) in staged {
            if !self.opts.dry_run {
                put_in_place(&tmp, &data_path(&self.v2, &b.hex))?;
            }
            if linked {
                self.report.blobs_linked += 1;
                self.report.bytes_linked += b.size;
            } else {
                self.report.blobs_copied += 1;
                self.report.bytes_copied += b.size;
            }
            self.done.insert(b.hex.clone());
        }
        for b in plan.manifests.iter().chain(&plan.layers) {
            self.done.insert(b.hex.clone());
        }
        self.report.blobs_present += present;

        let v2 = self.v2.clone();
        for (repo, _) in &plan.targets {
            for b in &plan.layers {
                changed |= self.link(&layer_link(&v2, repo, &b.hex), &format!("sha256:{}", b.hex))?;
            }
        }
        for (repo, _) in &plan.targets {
            for m in &plan.manifests {
                changed |= self.link(&revision_link(&v2, repo, &m.hex), &format!("sha256:{}", m.hex))?;
            }
        }
        let top = format!("sha256:{}", plan.entry.hex);
        for (repo, tag) in &plan.targets {
            if let Some(tag) = tag {
                let dir = tag_dir(&v2, repo, tag);
                changed |= self.link(&dir.join("index").join("sha256").join(&plan.entry.hex).join("link"), &top)?;
                changed |= self.link(&dir.join("current").join("link"), &top)?;
            }
        }
        Ok(changed)
    }
}

/// Flushes the storage's filesystem, so links renamed into place are on disk with the
/// blobs they name (one `syncfs` rather than one fsync per link).
fn sync_storage(storage: &Path) -> Result<(), ImportError> {
    use std::os::fd::AsRawFd;
    let d = fs::File::open(storage).map_err(|e| storage_err("open", storage, e))?;
    // SAFETY: syncfs on a descriptor this function owns.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(storage_err("flush", storage, io::Error::last_os_error()));
    }
    Ok(())
}

/// Imports images of the OCI layout `layout` into the registry storage `storage` (the
/// directory the registry serves as `rootdirectory`, created when missing): `selection`, or
/// every image `index.json` names. Idempotent: what is in place is left untouched (a rerun
/// writes nothing and reports nothing changed); a tag naming another digest is moved, as a
/// push would.
///
/// Every image is planned first (its manifests read and verified, every blob present with
/// its size, no two images wanting one repository:tag), so a layout that cannot be imported
/// writes nothing. Then, image by image, blobs are verified (`options.verify`) and staged
/// before any is put in place, so an image with a damaged blob is not written at all, and
/// tag links are written last.
pub fn import(
    layout: &Path,
    storage: &Path,
    selection: Option<&[ImageRef]>,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ImportReport, ImportError> {
    let entries = select(layout, read_index(layout)?, selection)?;
    let plans: Vec<Plan> = entries.iter().map(|e| plan_image(layout, e)).collect::<Result<_, _>>()?;
    check_conflicts(&plans)?;

    let v2 = v2_root(storage);
    if !options.dry_run {
        let mut seen = HashSet::new();
        let mut total = 0;
        for b in plans.iter().flat_map(|p| p.manifests.iter().chain(&p.layers)) {
            if seen.insert(&b.hex) && (options.verify || !in_storage(&v2, b)) {
                total += b.size;
            }
        }
        progress(Progress::Total(total));
    }
    let mut w = Writer {
        v2,
        opts: options,
        staging: Staging { storage, dir: None, next: 0, lock: None },
        done: HashSet::new(),
        storage_dev: device_of(storage),
        report: ImportReport::default(),
    };
    let mut images = Vec::new();
    for p in &plans {
        progress(Progress::Image(&p.entry.reference));
        let changed = w.image(p, progress)?;
        for (repo, tag) in &p.targets {
            images.push(ImportedImage {
                reference: p.entry.reference.clone(),
                repository: repo.clone(),
                tag: tag.clone(),
                digest: format!("sha256:{}", p.entry.hex),
                media_type: p.media_type.clone(),
                changed,
            });
        }
    }
    let mut report = std::mem::take(&mut w.report);
    report.images = images;
    if report.changed() && !options.dry_run {
        sync_storage(storage)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repos(s: &str) -> Vec<String> {
        repositories_for(&ImageRef::parse(s).unwrap())
    }

    #[test]
    fn repository_names_as_deepops_pulls_them() {
        assert_eq!(repos("nvcr.io/nvidia/k8s-device-plugin:v0.17.1"), ["nvidia/k8s-device-plugin"]);
        assert_eq!(repos("127.0.0.1:41234/team/app:1.0"), ["team/app"]);
        assert_eq!(repos("docker.io/library/registry:2.8.3"), ["registry", "library/registry"]);
        assert_eq!(repos("registry:2"), ["registry", "library/registry"]);
        assert_eq!(repos("grafana/grafana:10.0.0"), ["grafana/grafana"]);
        assert_eq!(repos("quay.io/library/thing:1"), ["library/thing"], "library/ is Docker Hub's alone");
    }

    #[test]
    fn storage_errors_name_the_path_and_the_fix() {
        let e = storage_err("write", Path::new("/r/docker/x"), io::Error::from_raw_os_error(28));
        assert_eq!(
            e.to_string(),
            format!("cannot write /r/docker/x: {}: check that the registry storage is writable and has room", io::Error::from_raw_os_error(28))
        );
    }

    #[test]
    fn storage_paths() {
        let v2 = v2_root(Path::new("/var/lib/registry"));
        let hex = "ab".repeat(32);
        assert_eq!(data_path(&v2, &hex), Path::new(&format!("/var/lib/registry/docker/registry/v2/blobs/sha256/ab/{hex}/data")));
        assert_eq!(
            layer_link(&v2, "nvidia/k8s-device-plugin", &hex),
            Path::new(&format!("/var/lib/registry/docker/registry/v2/repositories/nvidia/k8s-device-plugin/_layers/sha256/{hex}/link"))
        );
        assert_eq!(
            revision_link(&v2, "registry", &hex),
            Path::new(&format!("/var/lib/registry/docker/registry/v2/repositories/registry/_manifests/revisions/sha256/{hex}/link"))
        );
        assert_eq!(tag_dir(&v2, "a/b", "1.0"), Path::new("/var/lib/registry/docker/registry/v2/repositories/a/b/_manifests/tags/1.0"));
    }
}

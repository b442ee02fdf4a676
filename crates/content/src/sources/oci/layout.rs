//! The OCI image layout on disk: blob paths, atomic writes, blobs being written, `oci-layout`
//! and `index.json` entries.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde_json::{Value, json};

use super::{ANNOTATION_REF_NAME, ANNOTATION_UPSTREAM_DIGEST, ANNOTATION_UPSTREAM_MEDIA_TYPE, ANNOTATION_UPSTREAM_SIZE, MEDIA_OCI_INDEX};

/// What [`pull`](fn@super::pull) stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where it is: `<layout>/blobs/sha256/<hex>`.
    pub path: PathBuf,
    /// Its media type as the referring descriptor (or the manifest itself) gives it.
    pub media_type: String,
}

/// An image pulled into a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledImage {
    /// The full reference, as `index.json` names it: `nvcr.io/nvidia/cuda:12.4.1-base`.
    pub reference: String,
    /// Digest of the top manifest or index.
    pub digest: String,
    /// Media type of the top manifest or index.
    pub media_type: String,
    /// The digest `index.json` names the image by: `digest`, or for an image with Docker
    /// media types the OCI-typed form written for it (see [`pull`](fn@super::pull)).
    pub layout_digest: String,
    /// Every blob of the image: the top manifest or index, the selected manifests, their
    /// configs and layers, then the OCI-typed manifests and index written for Docker media
    /// types, each once.
    pub blobs: Vec<BlobInfo>,
    /// Bytes newly stored in the layout (0 when everything was already there): downloads, and
    /// OCI-typed forms written.
    pub bytes_downloaded: u64,
    /// Whether `index.json` changed (the image was not named there, or named another digest).
    pub index_changed: bool,
}

/// What is wrong with an image layout on disk or an entry of its `index.json`; each names the
/// file or annotation, and says how to fix it where it can.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A file or directory of the layout cannot be read, written, created or locked.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A file of the layout is not what an OCI layout holds there.
    #[error("{} {problem}", path.display())]
    Invalid { path: PathBuf, problem: &'static str },
    /// An entry's `io.airlock.upstream.*` annotation is malformed.
    #[error("annotation {annotation} {problem}")]
    Annotation { annotation: &'static str, problem: &'static str },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LayoutError + 'a {
    move |source| LayoutError::Io { action, path: path.to_path_buf(), source }
}

/// The descriptor of upstream's manifest or index for an `index.json` entry: from the
/// entry's `io.airlock.upstream.*` annotations when airlock named the image's OCI-typed form
/// there, else the entry's own digest, media type and size. Err says what is malformed.
pub fn upstream_descriptor(entry: &Value) -> Result<UpstreamDescriptor, LayoutError> {
    let annotation = |k: &str| entry.get("annotations").and_then(|a| a.get(k));
    let Some(digest) = annotation(ANNOTATION_UPSTREAM_DIGEST) else {
        return Ok(UpstreamDescriptor {
            digest: entry.get("digest").and_then(Value::as_str).unwrap_or("").to_string(),
            media_type: entry.get("mediaType").and_then(Value::as_str).unwrap_or("").to_string(),
            size: entry.get("size").and_then(Value::as_u64),
        });
    };
    let digest = digest.as_str().ok_or(LayoutError::Annotation { annotation: ANNOTATION_UPSTREAM_DIGEST, problem: "is not a string" })?;
    let size = annotation(ANNOTATION_UPSTREAM_SIZE)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(LayoutError::Annotation { annotation: ANNOTATION_UPSTREAM_SIZE, problem: "is missing or not a decimal number" })?;
    let media_type = annotation(ANNOTATION_UPSTREAM_MEDIA_TYPE).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(UpstreamDescriptor { digest: digest.to_string(), media_type, size: Some(size) })
}

/// Upstream's manifest or index of an image in a layout, as [`upstream_descriptor`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamDescriptor {
    /// `sha256:<hex>`, as given (not checked here); empty when the entry has none.
    pub digest: String,
    /// Its media type; empty when not given.
    pub media_type: String,
    /// Its size, when given.
    pub size: Option<u64>,
}

/// Where a `sha256:<hex>` blob lives in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(algo).join(hex)
}

pub(super) use airlock_base::digest::sha256_hex as sha256_of;

/// Blob paths being written by this process, so two pulls sharing a layer never write the
/// same file at once.
static IN_FLIGHT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static IN_FLIGHT_DONE: Condvar = Condvar::new();

pub(super) struct InFlight(PathBuf);

impl InFlight {
    pub(super) fn acquire(path: &Path) -> InFlight {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        while set.get_or_insert_with(HashSet::new).contains(path) {
            set = IN_FLIGHT_DONE.wait(set).unwrap_or_else(|e| e.into_inner());
        }
        set.get_or_insert_with(HashSet::new).insert(path.to_path_buf());
        InFlight(path.to_path_buf())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = set.as_mut() {
            s.remove(&self.0);
        }
        IN_FLIGHT_DONE.notify_all();
    }
}

/// The name of [`write_atomic`]'s temporary files.
pub(super) const TMP_PREFIX: &str = ".tmp-";

/// Removes the temporary files a killed run left in `dir`.
pub(super) fn remove_temporaries(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) && e.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(e.path()) {
                // Gone already: renamed into place by whoever wrote it.
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file renamed into place.
fn write_atomic(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Stores a manifest's bytes under its digest; false when it was there already.
pub(super) fn store_blob_bytes(path: &Path, hex: &str, bytes: &[u8]) -> std::io::Result<bool> {
    let _guard = InFlight::acquire(path);
    if let Ok(existing) = fs::read(path)
        && sha256_of(&existing) == hex
    {
        return Ok(false);
    }
    write_atomic(path, bytes)?;
    Ok(true)
}

/// Creates `oci-layout` and `blobs/sha256` when missing; refuses a directory whose
/// `oci-layout` is not one.
pub(super) fn init_layout(layout: &Path) -> Result<(), LayoutError> {
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
    let marker = layout.join("oci-layout");
    match fs::read(&marker) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if v.get("imageLayoutVersion").and_then(Value::as_str).is_none() {
                return Err(LayoutError::Invalid { path: marker, problem: "is not an OCI layout marker: remove it or choose another directory" });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err("write", &marker)),
        Err(e) => Err(io_err("read", &marker)(e)),
    }
}

/// Adds (or replaces, by reference name) an entry of `index.json`, atomically and under a lock
/// on `oci-layout`, so concurrent pulls into one layout do not lose entries.
/// Names `entry` in `index.json` under `ref_name`, replacing an entry of that name; false when
/// the same entry was there already (nothing written).
pub(super) fn update_index(layout: &Path, entry: Value, ref_name: &str) -> Result<bool, LayoutError> {
    let marker = layout.join("oci-layout");
    let _lock = airlock_base::staging::FileLock::lock(&marker).map_err(io_err("lock", &marker))?;
    let path = layout.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| LayoutError::Invalid { path: path.clone(), problem: "is not a valid image index: fix or remove it" })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let obj = index.as_object_mut().expect("checked above");
    obj.entry("schemaVersion").or_insert(json!(2));
    let manifests = obj.entry("manifests").or_insert_with(|| json!([]));
    if !manifests.is_array() {
        return Err(LayoutError::Invalid { path, problem: "holds manifests that are not a list: fix or remove it" });
    }
    let list = manifests.as_array_mut().expect("checked above");
    let named = |m: &Value| m.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str) == Some(ref_name);
    if list.iter().filter(|m| named(m)).eq([&entry]) {
        return Ok(false);
    }
    list.retain(|m| !named(m));
    list.push(entry);
    write_index(&path, &index)?;
    Ok(true)
}

fn write_index(path: &Path, index: &Value) -> Result<(), LayoutError> {
    let mut text = serde_json::to_vec_pretty(index).expect("JSON serialises");
    text.push(b'\n');
    write_atomic(path, &text).map_err(io_err("write", path))
}

/// Drops the `index.json` entries not named in `keep` (images no longer asked for), so the
/// layout names only images whose blobs the cache records. Their blobs stay on disk. Returns
/// the names dropped.
pub fn prune_index(layout: &Path, keep: &[String]) -> Result<Vec<String>, LayoutError> {
    let marker = layout.join("oci-layout");
    if !marker.is_file() {
        return Ok(Vec::new());
    }
    let _lock = airlock_base::staging::FileLock::lock(&marker).map_err(io_err("lock", &marker))?;
    let path = layout.join("index.json");
    let Ok(bytes) = fs::read(&path) else { return Ok(Vec::new()) };
    let mut index: Value =
        serde_json::from_slice(&bytes).map_err(|_| LayoutError::Invalid { path: path.clone(), problem: "is not a valid image index: fix or remove it" })?;
    let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else { return Ok(Vec::new()) };
    let mut dropped = Vec::new();
    list.retain(|m| {
        let name = m.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str).unwrap_or("");
        let kept = keep.iter().any(|k| k == name);
        if !kept {
            dropped.push(name.to_string());
        }
        kept
    });
    if !dropped.is_empty() {
        write_index(&path, &index)?;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::super::{MEDIA_DOCKER_LIST, MEDIA_OCI_MANIFEST};
    use super::*;
    #[test]
    fn index_entries_merge() {
        let dir = tempfile::tempdir().unwrap();
        init_layout(dir.path()).unwrap();
        let e = |name: &str, d: &str| json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": d, "size": 1, "annotations": {ANNOTATION_REF_NAME: name}});
        update_index(dir.path(), e("a:1", "sha256:1"), "a:1").unwrap();
        update_index(dir.path(), e("b:1", "sha256:2"), "b:1").unwrap();
        update_index(dir.path(), e("a:1", "sha256:3"), "a:1").unwrap();
        let v: Value = serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        let digests: Vec<&str> = v["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
        assert_eq!(digests, ["sha256:2", "sha256:3"]);
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(fs::read_to_string(dir.path().join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    }

    #[test]
    fn upstream_descriptors_of_entries() {
        let d = format!("sha256:{}", "a".repeat(64));
        let plain = json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": d, "size": 12, "annotations": {ANNOTATION_REF_NAME: "x:1"}});
        assert_eq!(upstream_descriptor(&plain).unwrap(), UpstreamDescriptor { digest: d.clone(), media_type: MEDIA_OCI_MANIFEST.into(), size: Some(12) });
        let e = format!("sha256:{}", "b".repeat(64));
        let named = json!({"mediaType": MEDIA_OCI_INDEX, "digest": e, "size": 99, "annotations": {
            ANNOTATION_UPSTREAM_DIGEST: d, ANNOTATION_UPSTREAM_MEDIA_TYPE: MEDIA_DOCKER_LIST, ANNOTATION_UPSTREAM_SIZE: "345"}});
        assert_eq!(upstream_descriptor(&named).unwrap(), UpstreamDescriptor { digest: d.clone(), media_type: MEDIA_DOCKER_LIST.into(), size: Some(345) });
        let bad = json!({"digest": e, "annotations": {ANNOTATION_UPSTREAM_DIGEST: d, ANNOTATION_UPSTREAM_SIZE: "many"}});
        assert_eq!(upstream_descriptor(&bad).unwrap_err().to_string(), format!("annotation {ANNOTATION_UPSTREAM_SIZE} is missing or not a decimal number"));
    }
}

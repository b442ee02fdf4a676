//! What `docker load` reads: a `docker save` archive (`manifest.json` naming each image's
//! config, tags and layers), read in place or built on the fly from an OCI image layout.
//!
//! Docker Engines before 25 do not load OCI archives, and every Engine loads the
//! `manifest.json` form, with gzip layers too; so an image from a layout is streamed as such an
//! archive whose files are the layout's blobs, byte for byte. The loaded image's ID is then the
//! config digest, as with `docker pull`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};

use super::{DockerError, EnginePlatform, normalise_arch};
use crate::sources::oci::{ANNOTATION_REF_NAME, ImageRef, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, upstream_descriptor};

/// Size of the chunks streamed to Docker; at most [`CHUNKS_IN_FLIGHT`] are held at once.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// How deep indexes may nest in a layout.
const MAX_INDEX_DEPTH: usize = 4;

/// Sends each write as one chunk over a bounded channel, so the writer waits while Docker
/// reads.
struct ChannelWriter(tokio::sync::mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.blocking_send(Bytes::copy_from_slice(buf)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "Docker stopped reading the archive"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body stream fed by `write` on a thread of its own, and that thread.
pub(super) fn byte_stream<W>(write: W) -> (impl Stream<Item = io::Result<Bytes>> + Send + 'static, std::thread::JoinHandle<io::Result<()>>)
where
    W: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let handle = std::thread::spawn(move || {
        let mut w = io::BufWriter::with_capacity(CHUNK, ChannelWriter(tx));
        write(&mut w)?;
        w.flush()
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) });
    (stream, handle)
}

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedImage {
    /// The tags it will get, as written (`registry:2.8.3`).
    pub repo_tags: Vec<String>,
    /// The image ID Docker will give it (`sha256:<config digest>`), when the config's file
    /// name tells it (`<hex>.json` or `blobs/sha256/<hex>`).
    pub id: Option<String>,
}

/// The images of a `docker save` archive (plain or gzip), from its `manifest.json`.
pub fn read_archive(path: &Path) -> Result<Vec<ArchivedImage>, DockerError> {
    let bad = |why: String| DockerError::input(format!("{} is not an image archive (docker save): {why}", path.display()));
    let mut file = File::open(path).map_err(|e| DockerError::input(format!("cannot read {}: {e}", path.display())))?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic).map_err(|e| bad(e.to_string()))? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let file = File::open(path).map_err(|e| DockerError::input(format!("cannot read {}: {e}", path.display())))?;
    let manifest = if gz {
        find_manifest(tar::Archive::new(flate2::read::GzDecoder::new(file)).entries().map_err(|e| bad(e.to_string()))?)
    } else {
        // Seeking skips the layers instead of reading them.
        find_manifest(tar::Archive::new(file).entries_with_seek().map_err(|e| bad(e.to_string()))?)
    }
    .map_err(|e| bad(e.to_string()))?
    .ok_or_else(|| bad("it has no manifest.json (an OCI layout is a directory: give the directory as load_path)".to_string()))?;
    let list: Vec<Value> = serde_json::from_slice::<Vec<Value>>(&manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
    Ok(list
        .iter()
        .map(|m| {
            let repo_tags = m.get("RepoTags").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
            let id = m.get("Config").and_then(Value::as_str).and_then(config_id);
            ArchivedImage { repo_tags, id }
        })
        .collect())
}

fn find_manifest<R: Read>(entries: tar::Entries<'_, R>) -> io::Result<Option<Vec<u8>>> {
    for entry in entries {
        let mut entry = entry?;
        let p = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
        if p == "manifest.json" {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf)?;
            return Ok(Some(buf));
        }
    }
    Ok(None)
}

/// `sha256:<hex>` from a config's path in an archive: `<hex>.json` or `blobs/sha256/<hex>`.
fn config_id(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Whether `tag` (as Docker writes RepoTags) names the same image as `want`.
pub fn same_reference(tag: &str, want: &ImageRef) -> bool {
    ImageRef::parse(tag).is_ok_and(|r| r.registry == want.registry && r.repository == want.repository && r.tag == want.tag)
}

/// An image found in an OCI layout, ready to stream as a `docker save` archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutImage {
    /// The layout's name for it (`docker.io/library/registry:2.8.3`).
    pub reference: String,
    /// The digest of the image manifest chosen (for an index, the platform's manifest).
    pub manifest_digest: String,
    /// The config digest: the image ID Docker will give it.
    pub config_digest: String,
    /// The platform of the chosen manifest (`linux/amd64`), when the index gave one.
    pub platform: Option<String>,
    /// The config blob.
    pub config: PathBuf,
    /// The layer blobs, bottom first, with their sizes.
    pub layers: Vec<(PathBuf, u64)>,
}

impl LayoutImage {
    /// Writes the `docker save` archive: `manifest.json` naming the image `tag`, then the
    /// config and each layer once, under `blobs/sha256/`, copied from the layout as they are
    /// read.
    pub fn write_archive(&self, tag: &str, out: &mut dyn Write) -> io::Result<()> {
        let name = |p: &Path| format!("blobs/sha256/{}", p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
        let mut layer_names: Vec<String> = Vec::new();
        for (p, _) in &self.layers {
            layer_names.push(name(p));
        }
        let manifest = json!([{"Config": name(&self.config), "RepoTags": [tag], "Layers": layer_names}]);
        let mut tar = tar::Builder::new(out);
        let manifest = serde_json::to_vec(&manifest)?;
        append(&mut tar, "manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        let mut written = std::collections::HashSet::new();
        let config_len = std::fs::metadata(&self.config)?.len();
        for (p, size) in std::iter::once((&self.config, config_len)).chain(self.layers.iter().map(|(p, s)| (p, *s))) {
            let n = name(p);
            if !written.insert(n.clone()) {
                continue;
            }
            let mut f = File::open(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            append(&mut tar, &n, size, &mut f)?;
        }
        tar.finish()
    }
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    // A blob that changed size under us would make a corrupt archive: take exactly `size`.
    let mut limited = data.take(size);
    tar.append_data(&mut h, name, &mut limited)
}

/// What the layout's `index.json` holds: its entries' names.
fn layout_names(index: &Value) -> Vec<String> {
    index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn read_json(path: &Path, what: &str) -> Result<Value, DockerError> {
    let bytes = std::fs::read(path).map_err(|e| DockerError::input(format!("cannot read {what} {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| DockerError::input(format!("{what} {} is not valid JSON: {e}", path.display())))
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, DockerError> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(layout.join("blobs/sha256").join(hex)),
        _ => Err(DockerError::input(format!("the OCI layout {} names a blob '{digest}' that is not sha256:<hex>", layout.display()))),
    }
}

/// Finds `want` in the OCI layout at `layout` and, for a multi-arch index, the manifest for
/// `platform`. Every blob the archive needs must be in the layout with its recorded size.
pub fn resolve_layout(layout: &Path, want: &ImageRef, platform: &EnginePlatform) -> Result<LayoutImage, DockerError> {
    if !layout.join("oci-layout").is_file() || !layout.join("index.json").is_file() {
        return Err(DockerError::input(format!(
            "{} is not an OCI image layout (no oci-layout and index.json): give a directory written by image_cache or `skopeo copy ... oci:DIR`, or a docker save archive",
            layout.display()
        )));
    }
    let index = read_json(&layout.join("index.json"), "OCI index")?;
    let entries: Vec<&Value> = index.get("manifests").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let entry = entries
        .iter()
        .find(|m| m.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str).is_some_and(|n| same_reference(n, want)))
        .ok_or_else(|| {
            let names = layout_names(&index);
            DockerError::input(format!(
                "image {want} is not in the OCI layout {}; it holds: {}",
                layout.display(),
                if names.is_empty() { "no named images".to_string() } else { names.join(", ") }
            ))
        })?;
    let reference = entry.get("annotations").and_then(|a| a.get(ANNOTATION_REF_NAME)).and_then(Value::as_str).unwrap_or_default().to_string();
    // Upstream's manifests, as `docker pull` would have them (the OCI-typed form an entry may
    // name for Docker media types has the same config and layers).
    let upstream = upstream_descriptor(entry)
        .map_err(|m| DockerError::input(format!("{}: image {reference}: {m}: fetch it again (image_cache)", layout.join("index.json").display())))?;
    let mut desc = json!({"mediaType": upstream.media_type, "digest": upstream.digest});
    let mut chosen_platform = None;
    for _ in 0..=MAX_INDEX_DEPTH {
        let media = desc.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let digest = desc.get("digest").and_then(Value::as_str).unwrap_or("").to_string();
        let path = blob_path(layout, &digest)?;
        let doc = read_json(&path, &format!("manifest of {reference}"))
            .map_err(|e| DockerError::input(format!("{e}: the layout is incomplete, fetch {reference} again (image_cache)")))?;
        let media = if media.is_empty() { doc.get("mediaType").and_then(Value::as_str).unwrap_or("") } else { media };
        let is_index = media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_LIST || (doc.get("manifests").is_some() && doc.get("config").is_none());
        if !is_index {
            return manifest_image(layout, reference, digest, chosen_platform, &doc);
        }
        let manifests: Vec<&Value> = doc.get("manifests").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
        let matches = |m: &&&Value| {
            m.get("platform").is_some_and(|p| {
                p.get("os").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case(&platform.os))
                    && p.get("architecture").and_then(Value::as_str).is_some_and(|a| normalise_arch(a) == platform.arch)
            })
        };
        let present = |m: &&&Value| m.get("digest").and_then(Value::as_str).and_then(|d| blob_path(layout, d).ok()).is_some_and(|p| p.is_file());
        // A layout may hold only some platforms of an index: take one that is there.
        let next = manifests.iter().filter(matches).find(present).or_else(|| {
            // Nested indexes carry no platform of their own.
            manifests.iter().filter(|m| m.get("platform").is_none()).find(present)
        });
        match next {
            Some(m) => {
                if let Some(p) = m.get("platform") {
                    chosen_platform = Some(crate::sources::oci::describe_platform(p));
                }
                desc = (*m).clone();
            }
            None => {
                let listed: Vec<String> = manifests.iter().filter_map(|m| m.get("platform").map(crate::sources::oci::describe_platform)).collect();
                let held: Vec<String> =
                    manifests.iter().filter(present).filter_map(|m| m.get("platform").map(crate::sources::oci::describe_platform)).collect();
                let wanted_but_missing = manifests.iter().any(|m| matches(&m));
                return Err(DockerError::input(if wanted_but_missing {
                    format!(
                        "image {reference} in {} has a manifest for {platform} (the Docker Engine's platform), but the layout does not hold it (it holds {}): fetch the image again with platforms including {platform} (image_cache)",
                        layout.display(),
                        if held.is_empty() { "none".to_string() } else { held.join(", ") }
                    )
                } else {
                    format!(
                        "image {reference} in {} has no manifest for {platform} (the Docker Engine's platform); it has {}",
                        layout.display(),
                        if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
                    )
                }));
            }
        }
    }
    Err(DockerError::input(format!("image {reference} in {}: indexes nest more than {MAX_INDEX_DEPTH} deep", layout.display())))
}

fn manifest_image(layout: &Path, reference: String, manifest_digest: String, platform: Option<String>, doc: &Value) -> Result<LayoutImage, DockerError> {
    let missing = |what: String| DockerError::input(format!("image {reference} in {}: {what}: fetch it again (image_cache)", layout.display()));
    let config = doc.get("config").ok_or_else(|| missing(format!("manifest {manifest_digest} has no config")))?;
    let config_digest = config.get("digest").and_then(Value::as_str).unwrap_or("").to_string();
    let config_path = blob_path(layout, &config_digest)?;
    if !config_path.is_file() {
        return Err(missing(format!("its config {config_digest} is not in the layout")));
    }
    let mut layers = Vec::new();
    for l in doc.get("layers").and_then(Value::as_array).into_iter().flatten() {
        let digest = l.get("digest").and_then(Value::as_str).unwrap_or("");
        let media = l.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if media.contains("zstd") {
            return Err(DockerError::input(format!(
                "image {reference} in {} has a zstd-compressed layer ({digest}), which docker load does not read: fetch a gzip variant of the image",
                layout.display()
            )));
        }
        let path = blob_path(layout, digest)?;
        let size = l.get("size").and_then(Value::as_u64);
        match std::fs::metadata(&path) {
            Ok(m) if size.is_none_or(|s| s == m.len()) => layers.push((path, m.len())),
            Ok(m) => return Err(missing(format!("layer {digest} is {} bytes, the manifest says {}", m.len(), size.unwrap_or(0)))),
            Err(_) => return Err(missing(format!("layer {digest} is not in the layout"))),
        }
    }
    Ok(LayoutImage { reference, manifest_digest, config_digest, platform, config: config_path, layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn config_ids() {
        assert_eq!(config_id(&format!("{}.json", hex('a'))), Some(format!("sha256:{}", hex('a'))));
        assert_eq!(config_id(&format!("blobs/sha256/{}", hex('b'))), Some(format!("sha256:{}", hex('b'))));
        assert_eq!(config_id("config.json"), None);
    }

    #[test]
    fn references_match_short_and_full() {
        let want = ImageRef::parse("registry:2.8.3").unwrap();
        assert!(same_reference("docker.io/library/registry:2.8.3", &want));
        assert!(same_reference("registry:2.8.3", &want));
        assert!(!same_reference("127.0.0.1:5000/registry:2.8.3", &want));
        assert!(!same_reference("registry:2", &want));
        let local = ImageRef::parse("127.0.0.1:5000/registry:2.8.3").unwrap();
        assert!(same_reference("127.0.0.1:5000/registry:2.8.3", &local));
    }

    #[test]
    fn archive_streams_blobs_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let (c, l) = (blobs.join(hex('c')), blobs.join(hex('d')));
        std::fs::write(&c, b"{}").unwrap();
        std::fs::write(&l, vec![7u8; 3000]).unwrap();
        let img = LayoutImage {
            reference: "x".into(),
            manifest_digest: String::new(),
            config_digest: String::new(),
            platform: None,
            config: c,
            layers: vec![(l.clone(), 3000), (l, 3000)],
        };
        let mut out = Vec::new();
        img.write_archive("app:1", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<(String, u64)> = a.entries().unwrap().map(|e| e.unwrap()).map(|e| (e.path().unwrap().display().to_string(), e.size())).collect();
        assert_eq!(names, vec![("manifest.json".into(), names[0].1), (format!("blobs/sha256/{}", hex('c')), 2), (format!("blobs/sha256/{}", hex('d')), 3000)]);
        let archive_path = dir.path().join("a.tar");
        std::fs::write(&archive_path, &out).unwrap();
        let read = read_archive(&archive_path).unwrap();
        assert_eq!(read, vec![ArchivedImage { repo_tags: vec!["app:1".into()], id: Some(format!("sha256:{}", hex('c'))) }]);
    }
}

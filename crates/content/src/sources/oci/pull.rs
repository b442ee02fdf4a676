//! Pulling: resolving an image's manifests, then [`pull`], [`pull_all`] and [`plan`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::layout::{BlobInfo, PulledImage, TMP_PREFIX, blob_path, init_layout, remove_temporaries, store_blob_bytes, update_index};
use super::manifest::{Converted, Descriptor, Manifest, describe_platform, oci_form};
use super::options::OciOptions;
use super::reference::ImageRef;
use super::registry::Session;
use super::{
    ANNOTATION_REF_NAME, ANNOTATION_SOURCE, ANNOTATION_UPSTREAM_DIGEST, ANNOTATION_UPSTREAM_MEDIA_TYPE, ANNOTATION_UPSTREAM_SIZE, MAX_INDEX_DEPTH,
    MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, OciError, OciErrorKind,
};
use crate::sources::fetch::{Fetched, Fetcher, parallel};

/// An image's manifests as [`pull`] selects them, and the configs and layers they name.
struct Resolved {
    top: Manifest,
    /// Every blob of the image, each once; manifests first.
    blobs: Vec<BlobInfo>,
    /// The configs and layers (not manifests), each once.
    content: Vec<Descriptor>,
    /// Manifests newly stored (or, without `store`, that would be): digest and size.
    new_manifests: Vec<(String, u64)>,
    /// For Docker media types, the OCI-typed form `index.json` names (see [`oci_form`]),
    /// and every manifest and index of it, to be written.
    oci: Option<(Converted, Vec<Converted>)>,
}

impl Resolved {
    /// The digest `index.json` names the image by.
    fn layout_digest(&self) -> &str {
        self.oci.as_ref().map_or(&self.top.digest, |(top, _)| &top.digest)
    }
}

/// Walks an image from its tag or digest: the top manifest or index, for an index the
/// manifests of `opts.platforms`, and the configs and layers they name. Manifests are stored
/// in the layout as they arrive when `store` is set.
fn resolve(s: &Session, image: &ImageRef, layout: &Path, opts: &OciOptions, store: bool) -> Result<Resolved, OciError> {
    let wanted = opts.platform_filter().map_err(|m| s.err(OciErrorKind::Reference, m))?;
    let mut blobs: Vec<BlobInfo> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut new_manifests: Vec<(String, u64)> = Vec::new();
    // Adds a blob to the image's list once; false when it was listed already.
    let record = |seen: &mut HashSet<String>, blobs: &mut Vec<BlobInfo>, digest: &str, size: u64, media_type: &str| -> bool {
        if !seen.insert(digest.to_string()) {
            return false;
        }
        blobs.push(BlobInfo { digest: digest.to_string(), size, path: blob_path(layout, digest), media_type: media_type.to_string() });
        true
    };

    let (top, new) = s.manifest(layout, image.manifest_reference(), None, store)?;
    if new {
        new_manifests.push((top.digest.clone(), top.bytes.len() as u64));
    }
    record(&mut seen, &mut blobs, &top.digest, top.bytes.len() as u64, &top.media_type);

    // Indexes are walked breadth first; image manifests are collected, and every manifest
    // held by digest, for the OCI-typed form.
    let mut held: HashMap<String, Manifest> = HashMap::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    let mut queue: VecDeque<(Manifest, usize)> = VecDeque::from([(top.clone(), 0)]);
    while let Some((m, depth)) = queue.pop_front() {
        if !m.is_index() {
            manifests.push(m);
            continue;
        }
        if depth >= MAX_INDEX_DEPTH {
            return Err(s.err(OciErrorKind::Unsupported, format!("indexes nest more than {MAX_INDEX_DEPTH} deep below {}", top.digest)));
        }
        let descs: Vec<Descriptor> = m
            .json
            .get("manifests")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Descriptor::parse).collect::<Result<Vec<_>, _>>())
            .transpose()
            .map_err(|(k, msg)| s.err(k, format!("index {}: {msg}", m.digest)))?
            .unwrap_or_default();
        let any_platform = descs.iter().any(|d| d.platform.is_some());
        let selected: Vec<&Descriptor> = descs
            .iter()
            .filter(|d| match (&wanted, &d.platform) {
                (None, _) => true,
                (Some(list), Some(p)) => list.iter().any(|w| w.matches(p)),
                // Without platforms, nested indexes are followed, and everything is kept
                // when the index gives no platform at all.
                (Some(_), None) => d.media_type == MEDIA_OCI_INDEX || d.media_type == MEDIA_DOCKER_LIST || !any_platform,
            })
            .collect();
        if selected.is_empty() {
            let mut available: Vec<String> = descs.iter().filter_map(|d| d.platform.as_ref().map(describe_platform)).collect();
            available.dedup();
            return Err(s.err(
                OciErrorKind::Platform,
                format!(
                    "no manifest for {} (the image has {}): set platforms to one of those, or all",
                    opts.platforms.join(", "),
                    if available.is_empty() { "none".to_string() } else { available.join(", ") }
                ),
            ));
        }
        for d in selected {
            if seen.contains(&d.digest) {
                continue;
            }
            let (child, new) = s.manifest(layout, &d.digest, Some(d), store)?;
            if new {
                new_manifests.push((child.digest.clone(), child.bytes.len() as u64));
            }
            record(&mut seen, &mut blobs, &child.digest, child.bytes.len() as u64, &child.media_type);
            held.insert(child.digest.clone(), child.clone());
            queue.push_back((child, depth + 1));
        }
    }

    // Configs and layers of every selected manifest, each once.
    let mut content: Vec<Descriptor> = Vec::new();
    for m in &manifests {
        let mut descs = Vec::new();
        match m.json.get("config") {
            Some(c) => descs.push(c),
            None => {
                return Err(s.err(OciErrorKind::Unsupported, format!("manifest {} has no config: it is not an image manifest", m.digest)));
            }
        }
        descs.extend(m.json.get("layers").and_then(Value::as_array).into_iter().flatten());
        for v in descs {
            let d = Descriptor::parse(v).map_err(|(k, msg)| s.err(k, format!("manifest {}: {msg}", m.digest)))?;
            if d.foreign {
                continue;
            }
            if record(&mut seen, &mut blobs, &d.digest, d.size, &d.media_type) {
                content.push(d);
            }
        }
    }
    let mut forms = Vec::new();
    let oci = oci_form(&top, &held, 0, &mut forms).map(|t| (t, forms));
    for c in oci.iter().flat_map(|(_, forms)| forms) {
        record(&mut seen, &mut blobs, &c.digest, c.bytes.len() as u64, c.media_type);
    }
    Ok(Resolved { top, blobs, content, new_manifests, oci })
}

/// Pulls `image` into the OCI layout at `layout` (created when missing): its manifest or
/// index, for an index the manifests of `opts.platforms`, then every config and layer, at
/// most `opts.concurrency` at once, each verified against its digest and skipped when already
/// stored. `index.json` then names the image by its full reference (replacing an entry of the
/// same name). `on_bytes` is called as blob bytes arrive. An image with a single manifest is
/// kept whatever its platform; `platforms` only chooses among the manifests of an index.
///
/// An image upstream serves with Docker media types (a manifest list, a schema 2 manifest)
/// is kept byte for byte too, and also gets an OCI-typed form (see [`oci_form`]) that
/// `index.json` names, so that skopeo finds it by name; the entry's
/// `io.airlock.upstream.*` annotations give upstream's digest, media type and size, which
/// [`upstream_descriptor`](super::upstream_descriptor) reads back (the registry storage and `docker load` use upstream's).
///
/// The registry is tried anonymously first; on a 401 its challenge is answered with a Bearer
/// token (anonymous or with credentials) or Basic credentials, from `opts.credentials` or
/// the Docker config file. Credentials never appear in errors.
pub fn pull(fetcher: &Fetcher, image: &ImageRef, layout: &Path, opts: &OciOptions, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<PulledImage, OciError> {
    let mut pulled = pull_all(fetcher, std::slice::from_ref(image), layout, opts, on_bytes)?;
    Ok(pulled.pop().expect("one image pulled"))
}

/// Pulls several images into the layout at `layout`, each as [`pull`] does, but together:
/// the manifests of every image first (`opts.concurrency` images at once), then the configs
/// and layers of all of them in one pool of `opts.concurrency` downloads, so that an image
/// never waits for the previous one's largest layer, and a blob several images share is
/// fetched (or verified) once. `index.json` then names, in the order given, every image whose
/// blobs all arrived; the result lists them in that order.
///
/// When a manifest fails, no config or layer is downloaded and the first such failure (in
/// the order given) is returned. When blobs fail, the images that got all theirs are still
/// named, and the failure of the first image that did not is returned: a rerun fetches only
/// what is missing.
///
/// Pulls into one layout (from threads or processes) take turns, each holding a lock on its
/// `blobs/sha256` directory, and each removes first the temporary files a killed pull left.
pub fn pull_all(
    fetcher: &Fetcher,
    images: &[ImageRef],
    layout: &Path,
    opts: &OciOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<PulledImage>, OciError> {
    let sessions: Vec<Session> = images.iter().map(|i| Session::new(fetcher, i, opts)).collect();
    let Some(first) = sessions.first() else { return Ok(Vec::new()) };
    opts.platform_filter().map_err(|m| first.err(OciErrorKind::Reference, m))?;
    // One pull at a time into a layout; the temporary files of one that was killed (see
    // write_atomic) go first, from the blobs and from the layout's root. The layout's marker
    // is written under the lock too: its temporary file would be one of those.
    let blobs_dir = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(|e| first.err(OciErrorKind::Layout, format!("cannot create {}: {e}", blobs_dir.display())))?;
    let (_lock, _) = airlock_base::staging::DirLock::acquire(&blobs_dir, TMP_PREFIX)
        .map_err(|e| first.err(OciErrorKind::Layout, format!("cannot clean up {}: {e}", blobs_dir.display())))?;
    remove_temporaries(layout).map_err(|e| first.err(OciErrorKind::Layout, format!("cannot clean up {}: {e}", layout.display())))?;
    init_layout(layout).map_err(|e| first.err(OciErrorKind::Layout, e.to_string()))?;
    let concurrency = opts.concurrency.max(1);
    let resolved = parallel(sessions.iter().collect(), concurrency, |s| resolve(s, s.image, layout, opts, true)).into_iter().collect::<Result<Vec<_>, _>>()?;

    // Every blob once, fetched through the first image that names it.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut tasks: Vec<(usize, &Descriptor)> = Vec::new();
    for (i, r) in resolved.iter().enumerate() {
        for d in &r.content {
            if !owner.contains_key(d.digest.as_str()) {
                owner.insert(&d.digest, i);
                tasks.push((i, d));
            }
        }
    }
    let fetched: HashMap<&str, Result<Fetched, OciError>> =
        parallel(tasks, concurrency, |(i, d)| (d.digest.as_str(), sessions[i].blob(layout, d, on_bytes))).into_iter().collect();

    let mut pulled = Vec::with_capacity(images.len());
    let mut first_error = None;
    for (i, (s, r)) in sessions.iter().zip(&resolved).enumerate() {
        let mut bytes_downloaded: u64 = r.new_manifests.iter().map(|(_, n)| n).sum();
        let mut failed = None;
        for d in &r.content {
            match &fetched[d.digest.as_str()] {
                Ok(f) if f.downloaded && owner[d.digest.as_str()] == i => bytes_downloaded += f.size,
                Ok(_) => {}
                Err(e) => {
                    failed = Some(e.clone());
                    break;
                }
            }
        }
        // The OCI-typed form goes in once everything it names is there.
        let forms = if failed.is_none() { r.oci.as_ref().map(|(_, forms)| forms.as_slice()).unwrap_or_default() } else { &[] };
        for c in forms {
            let path = blob_path(layout, &c.digest);
            match store_blob_bytes(&path, &c.hex, &c.bytes) {
                Ok(true) => bytes_downloaded += c.bytes.len() as u64,
                Ok(false) => {}
                Err(e) => {
                    failed = Some(s.err(OciErrorKind::Layout, format!("cannot write {}: {e}", path.display())));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            first_error.get_or_insert(e);
            continue;
        }
        let reference = s.image.to_string();
        let entry = match &r.oci {
            None => json!({
                "mediaType": r.top.media_type,
                "digest": r.top.digest,
                "size": r.top.bytes.len(),
                "annotations": {
                    ANNOTATION_REF_NAME: reference,
                    ANNOTATION_SOURCE: s.base,
                },
            }),
            Some((top, _)) => json!({
                "mediaType": top.media_type,
                "digest": top.digest,
                "size": top.bytes.len(),
                "annotations": {
                    ANNOTATION_REF_NAME: reference,
                    ANNOTATION_SOURCE: s.base,
                    ANNOTATION_UPSTREAM_DIGEST: r.top.digest,
                    ANNOTATION_UPSTREAM_MEDIA_TYPE: r.top.media_type,
                    ANNOTATION_UPSTREAM_SIZE: r.top.bytes.len().to_string(),
                },
            }),
        };
        let index_changed = match update_index(layout, entry, &reference) {
            Ok(c) => c,
            Err(m) => {
                first_error.get_or_insert(s.err(OciErrorKind::Layout, m.to_string()));
                continue;
            }
        };
        pulled.push(PulledImage {
            reference,
            digest: r.top.digest.clone(),
            media_type: r.top.media_type.clone(),
            layout_digest: r.layout_digest().to_string(),
            blobs: r.blobs.clone(),
            bytes_downloaded,
            index_changed,
        });
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(pulled),
    }
}

/// What pulling an image would fetch, found from its manifests alone (check mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePlan {
    /// The full reference.
    pub reference: String,
    /// Digest of the top manifest or index.
    pub digest: String,
    /// The digest `index.json` will name the image by (see [`PulledImage::layout_digest`]).
    pub layout_digest: String,
    /// Bytes of every blob of the image (manifests, configs, layers, OCI-typed forms).
    pub total_size: u64,
    /// The blobs not yet in the layout, digest and size: images sharing layers list them each.
    pub missing: Vec<(String, u64)>,
}

/// Reads an image's manifests from its registry (or the layout, when pinned and stored) and
/// tells what [`pull`] would download into `layout`, writing nothing. A blob counts as present
/// when its file has the expected size; `pull` verifies its digest.
pub fn plan(fetcher: &Fetcher, image: &ImageRef, layout: &Path, opts: &OciOptions) -> Result<ImagePlan, OciError> {
    let s = Session::new(fetcher, image, opts);
    let r = resolve(&s, image, layout, opts, false)?;
    let total_size = r.blobs.iter().map(|b| b.size).sum();
    let mut missing = r.new_manifests.clone();
    let forms = r.oci.iter().flat_map(|(_, forms)| forms).map(|c| (&c.digest, c.bytes.len() as u64));
    missing.extend(
        r.content
            .iter()
            .map(|d| (&d.digest, d.size))
            .chain(forms)
            .filter(|(digest, size)| fs::metadata(blob_path(layout, digest)).map(|m| m.len() != *size).unwrap_or(true))
            .map(|(digest, size)| (digest.clone(), size)),
    );
    let layout_digest = r.layout_digest().to_string();
    Ok(ImagePlan { reference: image.to_string(), digest: r.top.digest, layout_digest, total_size, missing })
}

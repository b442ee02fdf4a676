//! Manifests and indexes: platforms, descriptors, media types, [`parse_manifest`], and the
//! OCI-typed form of an image upstream serves with Docker media types.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::layout::sha256_of;
use super::options::OciOptions;
use super::reference::sha256_hex;
use super::{
    MAX_INDEX_DEPTH, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, OciError,
    OciErrorKind,
};

/// A wanted platform: `linux/amd64`, `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

fn normalise_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "i386" | "i686" => "386".to_string(),
        other => other.to_string(),
    }
}

/// arm64 without a variant is v8, as containerd's matcher has it.
fn normalise_variant(arch: &str, variant: Option<&str>) -> Option<String> {
    match (arch, variant.filter(|v| !v.is_empty())) {
        ("arm64", None) => Some("v8".to_string()),
        (_, v) => v.map(|v| v.to_ascii_lowercase()),
    }
}

impl Platform {
    pub(super) fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!("platform '{s}' is not os/arch[/variant] (such as linux/amd64) or all"));
        }
        let arch = normalise_arch(parts[1]);
        Ok(Platform { os: parts[0].to_ascii_lowercase(), variant: parts.get(2).map(|v| v.to_ascii_lowercase()), arch })
    }

    /// Whether a descriptor's `platform` object is this platform (any variant when this one
    /// names none).
    pub(super) fn matches(&self, p: &Value) -> bool {
        let os = p.get("os").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        let arch = normalise_arch(p.get("architecture").and_then(Value::as_str).unwrap_or(""));
        if os != self.os || arch != self.arch {
            return false;
        }
        match &self.variant {
            None => true,
            Some(v) => normalise_variant(&arch, p.get("variant").and_then(Value::as_str)) == normalise_variant(&self.arch, Some(v)),
        }
    }
}

/// `os/architecture[/variant]` of an OCI platform object.
pub fn describe_platform(p: &Value) -> String {
    let get = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let mut s = format!("{}/{}", get("os"), get("architecture"));
    if !get("variant").is_empty() {
        s.push('/');
        s.push_str(get("variant"));
    }
    s
}

/// A content descriptor of a manifest or index.
#[derive(Clone, Debug)]
pub(super) struct Descriptor {
    pub(super) media_type: String,
    pub(super) digest: String,
    pub(super) hex: String,
    pub(super) size: u64,
    pub(super) platform: Option<Value>,
    /// Foreign/non-distributable layers (with `urls`) are not served by registries.
    pub(super) foreign: bool,
}

impl Descriptor {
    pub(super) fn parse(v: &Value) -> Result<Descriptor, (OciErrorKind, String)> {
        let digest = v.get("digest").and_then(Value::as_str).ok_or((OciErrorKind::Unsupported, "a descriptor has no digest".to_string()))?;
        let hex = sha256_hex(digest)?.to_string();
        let size = v.get("size").and_then(Value::as_u64).ok_or((OciErrorKind::Unsupported, format!("descriptor {digest} has no size")))?;
        let media_type = v.get("mediaType").and_then(Value::as_str).unwrap_or("").to_string();
        let foreign = (media_type.contains("nondistributable") || media_type.contains("foreign"))
            && v.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
        Ok(Descriptor { media_type, digest: digest.to_string(), hex, size, platform: v.get("platform").cloned(), foreign })
    }
}

/// A manifest's JSON and media type: its `mediaType`, else the referring descriptor's, else
/// the Content-Type when it names a manifest or index, else what its shape says. Docker
/// schema 1 is refused.
pub(super) fn decode_manifest(
    bytes: &[u8],
    reference: &str,
    desc_media_type: Option<&str>,
    content_type: Option<String>,
) -> Result<(Value, String), (OciErrorKind, String)> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| (OciErrorKind::Unsupported, format!("manifest {reference} is not JSON ({e})")))?;
    if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Err((
            OciErrorKind::Unsupported,
            format!("manifest {reference} is Docker schema 1, which is deprecated and not supported: pull a newer tag or re-push the image"),
        ));
    }
    let media_type = json
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| desc_media_type.filter(|m| !m.is_empty()).map(str::to_string))
        .or(content_type.filter(|c| c.contains("manifest") || c.contains("index")))
        .unwrap_or_else(|| if json.get("manifests").is_some() { MEDIA_OCI_INDEX } else { MEDIA_OCI_MANIFEST }.to_string());
    Ok((json, media_type))
}

/// A descriptor as [`parse_manifest`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// `os/architecture[/variant]` for an index entry that names its platform.
    pub platform: Option<String>,
    /// Whether the default platforms ([`OciOptions::default`]) keep it, as a pull chooses
    /// among an index's manifests; true when it names no platform.
    pub default_platform: bool,
    /// A foreign layer, fetched from its URLs rather than the registry.
    pub foreign: bool,
}

/// What [`parse_manifest`] read from a manifest or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub is_index: bool,
    /// An index's manifests, or an image manifest's config then layers.
    pub refs: Vec<ManifestRef>,
}

/// Reads a manifest or index from its bytes as [`pull`](fn@super::pull) does once they have arrived: the
/// media type, then an index's manifest descriptors or an image manifest's config and
/// layer descriptors, each checked as a pull checks them. Public as the entry point the
/// manifest fuzz target feeds.
pub fn parse_manifest(bytes: &[u8]) -> Result<ParsedManifest, OciError> {
    let err = |(kind, message): (OciErrorKind, String)| OciError::new(kind, "", "", message);
    let (json, media_type) = decode_manifest(bytes, "(input)", None, None).map_err(err)?;
    let is_index = media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST;
    let values: Vec<&Value> = if is_index {
        json.get("manifests").and_then(Value::as_array).into_iter().flatten().collect()
    } else {
        let config =
            json.get("config").ok_or((OciErrorKind::Unsupported, "manifest (input) has no config: it is not an image manifest".to_string())).map_err(err)?;
        std::iter::once(config).chain(json.get("layers").and_then(Value::as_array).into_iter().flatten()).collect()
    };
    let wanted = OciOptions::default().platform_filter().map_err(|m| err((OciErrorKind::Reference, m)))?;
    let mut refs = Vec::new();
    for v in values {
        let d = Descriptor::parse(v).map_err(err)?;
        let platform = d.platform.as_ref().map(describe_platform);
        let default_platform = match (&wanted, &d.platform) {
            (Some(list), Some(p)) => list.iter().any(|w| w.matches(p)),
            _ => true,
        };
        refs.push(ManifestRef { digest: d.digest, size: d.size, media_type: d.media_type, platform, default_platform, foreign: d.foreign });
    }
    Ok(ParsedManifest { media_type, is_index, refs })
}

/// A manifest or index as received.
#[derive(Clone, Debug)]
pub(super) struct Manifest {
    pub(super) bytes: Vec<u8>,
    pub(super) digest: String,
    pub(super) media_type: String,
    pub(super) json: Value,
}

impl Manifest {
    pub(super) fn is_index(&self) -> bool {
        self.media_type == MEDIA_OCI_INDEX || self.media_type == MEDIA_DOCKER_LIST
    }
}

/// The OCI media type for content a Docker media type names (containerd's list of Docker's
/// types); other types are kept.
fn oci_media_type(media_type: &str) -> &str {
    match media_type {
        MEDIA_DOCKER_MANIFEST => MEDIA_OCI_MANIFEST,
        MEDIA_DOCKER_LIST => MEDIA_OCI_INDEX,
        MEDIA_DOCKER_CONFIG => MEDIA_OCI_CONFIG,
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar" => "application/vnd.oci.image.layer.nondistributable.v1.tar",
        other => other,
    }
}

/// A descriptor with its media type made OCI's; everything else (digest, size, platform,
/// urls, annotations) kept.
fn oci_descriptor(d: &Value) -> Value {
    let mut d = d.clone();
    if let Some(m) = d.get("mediaType").and_then(Value::as_str).map(|m| oci_media_type(m).to_string()) {
        d["mediaType"] = Value::String(m);
    }
    d
}

/// A manifest or index written with OCI media types for an image upstream serves with
/// Docker's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Converted {
    pub(super) digest: String,
    pub(super) hex: String,
    pub(super) bytes: Vec<u8>,
    pub(super) media_type: &'static str,
}

/// The OCI-typed form of `m`, when it or a manifest it names (of those in `held`) has Docker
/// media types; `None` when `m` is OCI-typed through and through. The forms written are
/// appended to `out` once each, manifests before the index naming them.
///
/// containers/image (skopeo, podman) finds an `index.json` entry by name only when its media
/// type is OCI's, and reads OCI manifests only from an OCI index. The converted manifests
/// name the same config and layer blobs (a Docker image config is an OCI one with extra
/// fields), so nothing is fetched or stored twice; a converted index lists the manifests the
/// layout holds (the platforms pulled), since the others could not be converted.
pub(super) fn oci_form(m: &Manifest, held: &HashMap<String, Manifest>, depth: usize, out: &mut Vec<Converted>) -> Option<Converted> {
    let doc = if m.is_index() {
        if depth > MAX_INDEX_DEPTH {
            return None;
        }
        let mut changed = m.media_type != MEDIA_OCI_INDEX;
        let mut children = Vec::new();
        for d in m.json.get("manifests").and_then(Value::as_array).into_iter().flatten() {
            let Some(child) = d.get("digest").and_then(Value::as_str).and_then(|digest| held.get(digest)) else { continue };
            match oci_form(child, held, depth + 1, out) {
                Some(c) => {
                    changed = true;
                    let mut d = d.clone();
                    d["mediaType"] = json!(c.media_type);
                    d["digest"] = json!(c.digest);
                    d["size"] = json!(c.bytes.len());
                    children.push(d);
                }
                None => children.push(d.clone()),
            }
        }
        if !changed {
            return None;
        }
        let mut doc = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": children});
        if let Some(a) = m.json.get("annotations") {
            doc["annotations"] = a.clone();
        }
        doc
    } else {
        if m.media_type != MEDIA_DOCKER_MANIFEST {
            return None;
        }
        let layers: Vec<Value> = m.json.get("layers").and_then(Value::as_array).into_iter().flatten().map(oci_descriptor).collect();
        let mut doc = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": oci_descriptor(m.json.get("config").unwrap_or(&Value::Null)),
            "layers": layers,
        });
        if let Some(a) = m.json.get("annotations") {
            doc["annotations"] = a.clone();
        }
        doc
    };
    let bytes = serde_json::to_vec(&doc).expect("JSON serialises");
    let hex = sha256_of(&bytes);
    let c = Converted { digest: format!("sha256:{hex}"), hex, bytes, media_type: if m.is_index() { MEDIA_OCI_INDEX } else { MEDIA_OCI_MANIFEST } };
    if !out.contains(&c) {
        out.push(c.clone());
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn platforms_match() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let d = |v: Value| v;
        assert!(p("linux/amd64").matches(&d(json!({"os": "linux", "architecture": "amd64"}))));
        assert!(!p("linux/amd64").matches(&d(json!({"os": "linux", "architecture": "arm64"}))));
        assert!(p("linux/arm64").matches(&d(json!({"os": "linux", "architecture": "arm64", "variant": "v8"}))));
        assert!(p("linux/arm64/v8").matches(&d(json!({"os": "linux", "architecture": "arm64"}))));
        assert!(!p("linux/arm/v7").matches(&d(json!({"os": "linux", "architecture": "arm", "variant": "v6"}))));
        assert!(p("linux/x86_64").matches(&d(json!({"os": "linux", "architecture": "amd64"}))));
        assert!(Platform::parse("amd64").is_err());
        let o = OciOptions { platforms: vec!["linux/amd64".into(), "All".into()], ..Default::default() };
        assert_eq!(o.platform_filter().unwrap(), None);
    }

    fn manifest(doc: Value) -> Manifest {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let (json, media_type) = decode_manifest(&bytes, "(test)", None, None).unwrap();
        Manifest { digest: format!("sha256:{}", sha256_of(&bytes)), bytes, media_type, json }
    }

    #[test]
    fn oci_forms_of_docker_media_types() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let docker = manifest(json!({"schemaVersion": 2, "mediaType": MEDIA_DOCKER_MANIFEST,
        "config": {"mediaType": MEDIA_DOCKER_CONFIG, "digest": d('c'), "size": 3},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('1'), "size": 4},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d('2'), "size": 5, "urls": ["https://example.com/l"]},
            {"mediaType": "application/vnd.example.unknown", "digest": d('3'), "size": 6},
        ]}));
        let oci = manifest(json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": d('c'), "size": 3}, "layers": []}));
        let none = HashMap::new();
        assert_eq!(oci_form(&oci, &none, 0, &mut Vec::new()), None, "an OCI manifest is kept as it is");
        let mut out = Vec::new();
        let form = oci_form(&docker, &none, 0, &mut out).unwrap();
        assert_eq!(out, std::slice::from_ref(&form));
        assert_eq!(form.digest, format!("sha256:{}", sha256_of(&form.bytes)));
        let v: Value = serde_json::from_slice(&form.bytes).unwrap();
        assert_eq!(v["mediaType"], MEDIA_OCI_MANIFEST);
        assert_eq!(v["config"], json!({"mediaType": MEDIA_OCI_CONFIG, "digest": d('c'), "size": 3}));
        assert_eq!(v["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(
            v["layers"][1],
            json!({"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": d('2'), "size": 5, "urls": ["https://example.com/l"]})
        );
        assert_eq!(v["layers"][2]["mediaType"], "application/vnd.example.unknown", "unknown types are kept");

        // An OCI index naming a Docker manifest: rewritten, listing only what is held; the
        // OCI child and its annotations as they are.
        let platform = |a: &str| json!({"os": "linux", "architecture": a});
        let index = manifest(json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "annotations": {"a": "b"}, "manifests": [
            {"mediaType": MEDIA_DOCKER_MANIFEST, "digest": docker.digest, "size": docker.bytes.len(), "platform": platform("amd64")},
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": oci.digest, "size": oci.bytes.len(), "platform": platform("arm64"), "annotations": {"x": "y"}},
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": d('9'), "size": 7, "platform": platform("s390x")},
        ]}));
        let held = HashMap::from([(docker.digest.clone(), docker.clone()), (oci.digest.clone(), oci.clone())]);
        let mut out = Vec::new();
        let top = oci_form(&index, &held, 0, &mut out).unwrap();
        assert_eq!(out.iter().map(|c| c.media_type).collect::<Vec<_>>(), [MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX]);
        assert_eq!(out[1], top);
        let v: Value = serde_json::from_slice(&top.bytes).unwrap();
        assert_eq!(v["annotations"], json!({"a": "b"}));
        assert_eq!(
            v["manifests"],
            json!([
                {"mediaType": MEDIA_OCI_MANIFEST, "digest": form.digest, "size": form.bytes.len(), "platform": platform("amd64")},
                {"mediaType": MEDIA_OCI_MANIFEST, "digest": oci.digest, "size": oci.bytes.len(), "platform": platform("arm64"), "annotations": {"x": "y"}},
            ])
        );
        // The same index of OCI manifests only is kept as it is, whatever it names.
        let oci_only = HashMap::from([(oci.digest.clone(), oci.clone())]);
        assert_eq!(oci_form(&index, &oci_only, 0, &mut Vec::new()), None);
        // A Docker list is rewritten even when its manifests need nothing.
        let list = manifest(json!({"schemaVersion": 2, "mediaType": MEDIA_DOCKER_LIST, "manifests": [
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": oci.digest, "size": oci.bytes.len(), "platform": platform("arm64")}]}));
        let form = oci_form(&list, &oci_only, 0, &mut Vec::new()).unwrap();
        let v: Value = serde_json::from_slice(&form.bytes).unwrap();
        assert_eq!((v["mediaType"].as_str(), v["manifests"][0]["digest"].as_str()), (Some(MEDIA_OCI_INDEX), Some(oci.digest.as_str())));
    }

    #[test]
    fn manifests_parse_from_bytes() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = json!({"schemaVersion": 2, "manifests": [
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": d('a'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": d('b'), "size": 2, "platform": {"os": "linux", "architecture": "arm64"}},
        ]});
        let m = parse_manifest(index.to_string().as_bytes()).unwrap();
        assert!(m.is_index);
        assert_eq!(m.media_type, MEDIA_OCI_INDEX);
        assert_eq!(
            m.refs.iter().map(|r| (r.platform.as_deref(), r.default_platform)).collect::<Vec<_>>(),
            [(Some("linux/amd64"), true), (Some("linux/arm64"), false)]
        );
        let image =
            json!({"schemaVersion": 2, "mediaType": MEDIA_DOCKER_MANIFEST, "config": {"digest": d('c'), "size": 3}, "layers": [{"digest": d('e'), "size": 4}]});
        let m = parse_manifest(image.to_string().as_bytes()).unwrap();
        assert_eq!(m.refs.iter().map(|r| r.size).collect::<Vec<_>>(), [3, 4]);
        assert!(parse_manifest(b"{\"schemaVersion\": 1}").unwrap_err().message.contains("schema 1"));
        assert!(parse_manifest(b"{\"schemaVersion\": 2}").unwrap_err().message.contains("no config"));
        assert!(parse_manifest(b"{\"manifests\": [{\"digest\": \"sha256:../x\", \"size\": 1}]}").is_err());
        assert!(parse_manifest(b"[").is_err());
    }
}

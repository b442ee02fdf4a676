//! Container images pulled over the registry HTTP API (no Docker daemon) into one
//! content-addressed OCI image layout, so a layer shared by many images is stored once.
//!
//! The layout is the one `skopeo copy oci:<dir>:<ref>` reads:
//!
//! ```text
//! <dir>/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! <dir>/index.json            one descriptor per pulled image, named by its full reference
//! <dir>/blobs/sha256/<hex>    manifests, indexes, configs and layers, byte for byte
//! ```
//!
//! Manifests are stored exactly as the registry served them (their digest is checked against
//! the reference and `Docker-Content-Digest`); every blob is verified while it streams. For a
//! multi-arch index, the index itself is kept with the manifests of the wanted platforms only,
//! so the layout's index may name manifests it does not hold (tools then pick a platform that
//! is there, as `skopeo copy` without `--all` does).
//!
//! An image with Docker media types (a manifest list, a schema 2 manifest) is kept as served
//! too, but `index.json` names an OCI-typed copy of its manifests (same config and layers),
//! since skopeo's OCI transport skips entries of other media types; the entry's
//! `io.airlock.upstream.*` annotations lead to upstream's bytes ([`upstream_descriptor`]).

mod layout;
mod manifest;
mod options;
mod pull;
mod reference;
mod registry;

pub use layout::{BlobInfo, PulledImage, UpstreamDescriptor, blob_path, prune_index, upstream_descriptor};
pub use manifest::{ManifestRef, ParsedManifest, describe_platform, parse_manifest};
pub use options::{Credential, OciOptions};
pub use pull::{ImagePlan, plan, pull, pull_all};
pub use reference::ImageRef;

/// Media type of an OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Docker manifest list (multi-arch).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of a Docker image manifest, schema 2.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The annotation of `index.json` entries that names the image (`nvcr.io/nvidia/cuda:12.4.1-base`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation of `index.json` entries that records the registry URL an image came from.
pub const ANNOTATION_SOURCE: &str = "io.airlock.source";
/// The annotation of an `index.json` entry naming the OCI-typed form of a Docker-typed image:
/// the digest of upstream's manifest or index, which the layout holds byte for byte.
pub const ANNOTATION_UPSTREAM_DIGEST: &str = "io.airlock.upstream.digest";
/// With [`ANNOTATION_UPSTREAM_DIGEST`]: upstream's media type.
pub const ANNOTATION_UPSTREAM_MEDIA_TYPE: &str = "io.airlock.upstream.mediaType";
/// With [`ANNOTATION_UPSTREAM_DIGEST`]: upstream's size in bytes, as a decimal string
/// (annotation values are strings).
pub const ANNOTATION_UPSTREAM_SIZE: &str = "io.airlock.upstream.size";
/// Media type of a Docker image config.
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Media type of an OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How deep indexes may nest (an index naming indexes).
const MAX_INDEX_DEPTH: usize = 4;

// ---------------------------------------------------------------------------------------------
// Errors

/// What kind of failure an [`OciError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OciErrorKind {
    /// The image reference (or a platform) is malformed.
    Reference,
    /// The registry wants credentials, or refused the ones given.
    Auth,
    /// The repository, tag or a blob does not exist.
    NotFound,
    /// The registry could not be reached or answered with an error.
    Network,
    /// Content did not match its digest or size.
    Integrity,
    /// A manifest format or digest algorithm airlock does not handle.
    Unsupported,
    /// No manifest of the index matches the wanted platforms.
    Platform,
    /// Reading or writing the layout directory failed.
    Layout,
    /// Credentials could not be read (Docker config file).
    Credentials,
}

/// A failed pull. The message names the image and the registry URL and says what to do.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{image}{}: {message}", if registry.is_empty() { String::new() } else { format!(" from {registry}") })]
pub struct OciError {
    /// The kind of failure, for callers that react to some.
    pub kind: OciErrorKind,
    /// The image, as referenced.
    pub image: String,
    /// The registry URL (`https://nvcr.io`); empty when the reference did not parse.
    pub registry: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl OciError {
    fn new(kind: OciErrorKind, image: impl Into<String>, registry: impl Into<String>, message: impl Into<String>) -> OciError {
        OciError { kind, image: image.into(), registry: registry.into(), message: message.into() }
    }
}

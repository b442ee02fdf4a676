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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::Digest as _;

use super::fetch::{Checksum, FetchError, Fetched, Fetcher, parallel};

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

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How deep indexes may nest (an index naming indexes).
const MAX_INDEX_DEPTH: usize = 4;
/// How many times one request is sent again after a 401 with a fresh token. One is enough for
/// the first challenge; more are needed when tokens expire in the middle of a long pull
/// (Docker Hub's last five minutes, some registries' less), as parallel downloads can meet
/// the expiry of the token another download has just fetched.
const MAX_AUTH_RETRIES: usize = 4;

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

// ---------------------------------------------------------------------------------------------
// References

/// A parsed image reference, normalised as Docker does: `ubuntu` is
/// `docker.io/library/ubuntu:latest`, `nvcr.io/nvidia/cuda:12.4.1-base` keeps its registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The registry as references name it: `docker.io`, `nvcr.io`, `127.0.0.1:5000` (lowercase).
    pub registry: String,
    /// The repository path: `library/ubuntu`, `nvidia/cuda`.
    pub repository: String,
    /// The tag; `latest` when the reference has neither a tag nor a digest.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pins a digest (then the digest is what is pulled).
    pub digest: Option<String>,
}

fn re(cell: &'static OnceLock<regex::Regex>, pattern: &str) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("valid regex"))
}

fn valid_path_component(s: &str) -> bool {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    re(&R, r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").is_match(s)
}

fn valid_tag(s: &str) -> bool {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    re(&R, r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").is_match(s)
}

fn valid_registry(s: &str) -> bool {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    re(&R, r"^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$").is_match(s)
}

/// The hex of a `sha256:<64 hex>` digest, or why it is not one.
fn sha256_hex(digest: &str) -> Result<&str, (OciErrorKind, String)> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(hex),
        Some(("sha256", _)) => Err((OciErrorKind::Reference, format!("digest '{digest}' is not sha256:<64 lowercase hex digits>"))),
        Some((algo, _)) if !algo.is_empty() => Err((OciErrorKind::Unsupported, format!("digest algorithm '{algo}' is not supported (only sha256)"))),
        _ => Err((OciErrorKind::Reference, format!("'{digest}' is not a digest (sha256:<hex>)"))),
    }
}

impl ImageRef {
    /// Parses a reference as Docker does: `[registry/]repository[:tag][@sha256:<hex>]`. The
    /// first path component is a registry when it has a `.` or `:`, is `localhost`, or has
    /// uppercase letters; otherwise the registry is `docker.io`, where one-component names get
    /// `library/`. Without tag or digest the tag is `latest`.
    pub fn parse(reference: &str) -> Result<ImageRef, OciError> {
        let s = reference.trim();
        let bad = |why: String| OciError::new(OciErrorKind::Reference, format!("'{reference}'"), "", format!("invalid image reference: {why}"));
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if s.contains("://") {
            return Err(bad("write it without a URL scheme, as registry/repository:tag".into()));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace".into()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            sha256_hex(d).map_err(|(kind, why)| OciError { kind, ..bad(why) })?;
        }
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, remainder)) if first.contains('.') || first.contains(':') || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) => {
                (first.to_ascii_lowercase(), remainder.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" { "docker.io".to_string() } else { registry };
        if !valid_registry(&registry) {
            return Err(bad(format!("'{registry}' is not a registry host[:port]")));
        }
        let repository = if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        if repository.is_empty() {
            return Err(bad("the repository name is missing".into()));
        }
        for component in repository.split('/') {
            if !valid_path_component(component) {
                return Err(bad(format!("repository '{repository}' must be lowercase letters, digits and separators (. _ __ -) between slashes")));
            }
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("the name is longer than 255 characters".into()));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(format!("tag '{t}' must be up to 128 letters, digits, _ . - (not starting with . or -)")));
        }
        let tag = tag.map(str::to_string).or_else(|| digest.is_none().then(|| "latest".to_string()));
        Ok(ImageRef { registry, repository, tag, digest: digest.map(str::to_string) })
    }

    /// The reference of an entry of DeepOps's `docker_image_list` (`{name, repo, image,
    /// version}`): `repo` is a registry prefix with its slash (`nvcr.io/`, `""` for Docker
    /// Hub), `image` the repository and `version` the tag (or a `sha256:` digest; empty means
    /// `latest`).
    pub fn from_deepops(repo: &str, image: &str, version: &str) -> Result<ImageRef, OciError> {
        let (repo, image, version) = (repo.trim(), image.trim().trim_start_matches('/'), version.trim());
        let mut s = String::new();
        if !repo.is_empty() {
            s.push_str(repo.trim_end_matches('/'));
            s.push('/');
        }
        s.push_str(image);
        let version = version.trim_start_matches([':', '@']);
        if !version.is_empty() {
            s.push(if version.starts_with("sha256:") { '@' } else { ':' });
            s.push_str(version);
        }
        ImageRef::parse(&s)
    }

    /// The host the registry API answers on: `registry-1.docker.io` for `docker.io`, else the
    /// registry itself.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" { "registry-1.docker.io" } else { &self.registry }
    }

    /// What the manifest is fetched by: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    /// The full, normalised reference: `docker.io/library/ubuntu:22.04`,
    /// `nvcr.io/nvidia/cuda@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = OciError;
    /// As [`ImageRef::parse`].
    fn from_str(s: &str) -> Result<ImageRef, OciError> {
        ImageRef::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Options and credentials

/// A user name and password (or token) for a registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or access token; never printed.
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).field("password", &"********").finish()
    }
}

/// How [`pull`] behaves.
#[derive(Clone, Debug)]
pub struct OciOptions {
    /// Platforms kept from multi-arch indexes, as `os/arch[/variant]` (`linux/amd64`,
    /// `linux/arm64/v8`); `all` keeps every manifest. Default `["linux/amd64"]`.
    pub platforms: Vec<String>,
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback registries (localhost,
    /// 127.0.0.0/8, ::1) always are.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry (`nvcr.io`, `docker.io`, `https://index.docker.io/v1/`...); they
    /// win over the Docker config file.
    pub credentials: BTreeMap<String, Credential>,
    /// The Docker config file read for `auths.<registry>.auth`; `None` means
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, when present.
    pub docker_config: Option<PathBuf>,
    /// How many blobs download at once. Default 4.
    pub concurrency: usize,
}

impl Default for OciOptions {
    fn default() -> Self {
        OciOptions {
            platforms: vec!["linux/amd64".to_string()],
            insecure_registries: Vec::new(),
            credentials: BTreeMap::new(),
            docker_config: None,
            concurrency: 4,
        }
    }
}

/// `host[:port]` of a registry named any way Docker names it (with scheme, path, or as
/// Docker Hub's aliases), lowercase; Docker Hub is `docker.io`.
fn registry_key(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let s = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match s.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => s,
    }
}

/// Whether a registry `host[:port]` is on the loopback interface.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if registry.matches(':').count() == 1 {
        registry.split(':').next().unwrap_or("")
    } else {
        registry
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl OciOptions {
    /// The base URL of the registry API for `image`: `https://nvcr.io`,
    /// `https://registry-1.docker.io`, or `http://` for loopback and insecure registries.
    pub fn registry_url(&self, image: &ImageRef) -> String {
        let key = registry_key(&image.registry);
        let insecure = is_loopback(&image.registry)
            || self.insecure_registries.iter().any(|r| {
                let r = registry_key(r);
                r == key || r == image.api_host()
            });
        format!("{}://{}", if insecure { "http" } else { "https" }, image.api_host())
    }

    /// The platform filter: `None` for `all`.
    fn platform_filter(&self) -> Result<Option<Vec<Platform>>, String> {
        if self.platforms.iter().any(|p| p.trim().eq_ignore_ascii_case("all")) {
            return Ok(None);
        }
        let list: Vec<Platform> = self.platforms.iter().map(|p| Platform::parse(p)).collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err("platforms is empty: list os/arch entries such as linux/amd64, or all".into());
        }
        Ok(Some(list))
    }
}

/// The Docker config file used when none is given.
fn default_docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// A credential found for a registry, and a hint when none could be used (a credential
/// helper, an identity token).
type Found = (Option<Credential>, Option<String>);

/// Credentials for a registry found in a Docker config file, with a hint when the file
/// points at something airlock cannot use (a credential helper, an identity token).
fn docker_config_credential(path: &Path, key: &str) -> Result<Found, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read the Docker config {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("the Docker config {} is not valid JSON ({e}): fix or remove it", path.display()))?;
    let mut hint = None;
    if let Some(auths) = doc.get("auths").and_then(Value::as_object) {
        for (k, entry) in auths {
            if registry_key(k) != key {
                continue;
            }
            if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim().trim_end_matches('=')))
                    .map_err(|_| format!("auths.{k}.auth in {} is not base64 of user:password", path.display()))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("auths.{k}.auth in {} is not UTF-8", path.display()))?;
                let (user, pass) = raw.split_once(':').ok_or_else(|| format!("auths.{k}.auth in {} is not base64 of user:password", path.display()))?;
                return Ok((Some(Credential { username: user.to_string(), password: pass.to_string() }), None));
            }
            if let (Some(u), Some(p)) = (entry.get("username").and_then(Value::as_str), entry.get("password").and_then(Value::as_str)) {
                return Ok((Some(Credential { username: u.to_string(), password: p.to_string() }), None));
            }
            if entry.get("identitytoken").is_some() {
                hint = Some(format!("{} holds an identity token for {key}, which airlock cannot use", path.display()));
            }
        }
    }
    if hint.is_none() {
        let helper = doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.iter().find(|(k, _)| registry_key(k) == key).map(|(_, v)| v.clone()))
            .or_else(|| doc.get("credsStore").cloned());
        if let Some(name) = helper.as_ref().and_then(Value::as_str) {
            hint = Some(format!("{} keeps credentials in the credential helper docker-credential-{name}, which airlock does not run", path.display()));
        }
    }
    Ok((None, hint))
}

// ---------------------------------------------------------------------------------------------
// Platforms and descriptors

/// A wanted platform: `linux/amd64`, `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Platform {
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
    fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!("platform '{s}' is not os/arch[/variant] (such as linux/amd64) or all"));
        }
        let arch = normalise_arch(parts[1]);
        Ok(Platform { os: parts[0].to_ascii_lowercase(), variant: parts.get(2).map(|v| v.to_ascii_lowercase()), arch })
    }

    /// Whether a descriptor's `platform` object is this platform (any variant when this one
    /// names none).
    fn matches(&self, p: &Value) -> bool {
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
struct Descriptor {
    media_type: String,
    digest: String,
    hex: String,
    size: u64,
    platform: Option<Value>,
    /// Foreign/non-distributable layers (with `urls`) are not served by registries.
    foreign: bool,
}

impl Descriptor {
    fn parse(v: &Value) -> Result<Descriptor, (OciErrorKind, String)> {
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
fn decode_manifest(
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

/// Reads a manifest or index from its bytes as [`pull`] does once they have arrived: the
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
struct Manifest {
    bytes: Vec<u8>,
    digest: String,
    media_type: String,
    json: Value,
}

impl Manifest {
    fn is_index(&self) -> bool {
        self.media_type == MEDIA_OCI_INDEX || self.media_type == MEDIA_DOCKER_LIST
    }
}

// ---------------------------------------------------------------------------------------------
// The layout

/// What [`pull`] stored.
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
    /// media types the OCI-typed form written for it (see [`pull`]).
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

/// The descriptor of upstream's manifest or index for an `index.json` entry: from the
/// entry's `io.airlock.upstream.*` annotations when airlock named the image's OCI-typed form
/// there, else the entry's own digest, media type and size. Err says what is malformed.
pub fn upstream_descriptor(entry: &Value) -> Result<UpstreamDescriptor, String> {
    let annotation = |k: &str| entry.get("annotations").and_then(|a| a.get(k));
    let Some(digest) = annotation(ANNOTATION_UPSTREAM_DIGEST) else {
        return Ok(UpstreamDescriptor {
            digest: entry.get("digest").and_then(Value::as_str).unwrap_or("").to_string(),
            media_type: entry.get("mediaType").and_then(Value::as_str).unwrap_or("").to_string(),
            size: entry.get("size").and_then(Value::as_u64),
        });
    };
    let digest = digest.as_str().ok_or_else(|| format!("annotation {ANNOTATION_UPSTREAM_DIGEST} is not a string"))?;
    let size = annotation(ANNOTATION_UPSTREAM_SIZE)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| format!("annotation {ANNOTATION_UPSTREAM_SIZE} is missing or not a decimal number"))?;
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
struct Converted {
    digest: String,
    hex: String,
    bytes: Vec<u8>,
    media_type: &'static str,
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
fn oci_form(m: &Manifest, held: &HashMap<String, Manifest>, depth: usize, out: &mut Vec<Converted>) -> Option<Converted> {
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

/// Where a `sha256:<hex>` blob lives in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(algo).join(hex)
}

fn sha256_of(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Blob paths being written by this process, so two pulls sharing a layer never write the
/// same file at once.
static IN_FLIGHT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static IN_FLIGHT_DONE: Condvar = Condvar::new();

struct InFlight(PathBuf);

impl InFlight {
    fn acquire(path: &Path) -> InFlight {
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
const TMP_PREFIX: &str = ".tmp-";

/// Removes the temporary files a killed run left in `dir`.
fn remove_temporaries(dir: &Path) -> std::io::Result<()> {
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
fn store_blob_bytes(path: &Path, hex: &str, bytes: &[u8]) -> std::io::Result<bool> {
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
fn init_layout(layout: &Path) -> Result<(), String> {
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| format!("cannot create {}: {e}", blobs.display()))?;
    let marker = layout.join("oci-layout");
    match fs::read(&marker) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if v.get("imageLayoutVersion").and_then(Value::as_str).is_none() {
                return Err(format!("{} is not an OCI layout marker: remove it or choose another directory", marker.display()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| format!("cannot write {}: {e}", marker.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", marker.display())),
    }
}

/// Adds (or replaces, by reference name) an entry of `index.json`, atomically and under a lock
/// on `oci-layout`, so concurrent pulls into one layout do not lose entries.
/// Names `entry` in `index.json` under `ref_name`, replacing an entry of that name; false when
/// the same entry was there already (nothing written).
fn update_index(layout: &Path, entry: Value, ref_name: &str) -> Result<bool, String> {
    let marker = layout.join("oci-layout");
    let _lock = airlock_base::staging::FileLock::lock(&marker).map_err(|e| format!("cannot lock {}: {e}", marker.display()))?;
    let path = layout.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("{} is not a valid image index: fix or remove it", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let obj = index.as_object_mut().expect("checked above");
    obj.entry("schemaVersion").or_insert(json!(2));
    let manifests = obj.entry("manifests").or_insert_with(|| json!([]));
    if !manifests.is_array() {
        return Err(format!("{}: manifests is not a list: fix or remove it", path.display()));
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

fn write_index(path: &Path, index: &Value) -> Result<(), String> {
    let mut text = serde_json::to_vec_pretty(index).expect("JSON serialises");
    text.push(b'\n');
    write_atomic(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Drops the `index.json` entries not named in `keep` (images no longer asked for), so the
/// layout names only images whose blobs the cache records. Their blobs stay on disk. Returns
/// the names dropped.
pub fn prune_index(layout: &Path, keep: &[String]) -> Result<Vec<String>, String> {
    let marker = layout.join("oci-layout");
    if !marker.is_file() {
        return Ok(Vec::new());
    }
    let _lock = airlock_base::staging::FileLock::lock(&marker).map_err(|e| format!("cannot lock {}: {e}", marker.display()))?;
    let path = layout.join("index.json");
    let Ok(bytes) = fs::read(&path) else { return Ok(Vec::new()) };
    let mut index: Value = serde_json::from_slice(&bytes).map_err(|_| format!("{} is not a valid image index: fix or remove it", path.display()))?;
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

// ---------------------------------------------------------------------------------------------
// Authentication

/// One `WWW-Authenticate` challenge: the scheme (lowercase) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: BTreeMap<String, String>,
}

/// Parses `WWW-Authenticate` values: `Bearer realm="...",service="...",scope="..."`, `Basic
/// realm="..."`, several challenges in one value.
fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_sep = |c: u8| c == b' ' || c == b'\t' || c == b',';
    while i < b.len() {
        while i < b.len() && is_sep(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !is_sep(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let token = &header[start..i];
        if token.is_empty() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut chars = header[i..].char_indices();
                let mut end = header.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + k + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                i = end;
            } else {
                let vs = i;
                while i < b.len() && !is_sep(b[i]) {
                    i += 1;
                }
                value.push_str(&header[vs..i]);
            }
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge { scheme: token.to_ascii_lowercase(), params: BTreeMap::new() });
        }
    }
    out
}

/// One pull's conversation with one registry: its URL, the current `Authorization` value
/// and the credentials it may use.
struct Session<'a> {
    fetcher: &'a Fetcher,
    image: &'a ImageRef,
    opts: &'a OciOptions,
    name: String,
    base: String,
    /// The Authorization header in use (a Bearer token or Basic credentials); never printed.
    auth: Mutex<Option<HeaderValue>>,
    /// Held while a token is refreshed, so parallel downloads refresh it once.
    refreshing: Mutex<()>,
    /// Authorization values the registry has accepted at least once. A 401 to one of them
    /// means it expired, and a new one is worth asking for; a 401 to a value never accepted
    /// means the credentials do not reach the repository, and asking again would not help.
    accepted: Mutex<Vec<HeaderValue>>,
    credential: OnceLock<Result<Found, String>>,
}

impl<'a> Session<'a> {
    fn new(fetcher: &'a Fetcher, image: &'a ImageRef, opts: &'a OciOptions) -> Session<'a> {
        Session {
            fetcher,
            image,
            opts,
            name: image.to_string(),
            base: opts.registry_url(image),
            auth: Mutex::new(None),
            refreshing: Mutex::new(()),
            accepted: Mutex::new(Vec::new()),
            credential: OnceLock::new(),
        }
    }

    fn err(&self, kind: OciErrorKind, message: impl Into<String>) -> OciError {
        OciError::new(kind, self.name.clone(), self.base.clone(), message)
    }

    fn url(&self, what: &str, reference: &str) -> String {
        format!("{}/v2/{}/{what}/{reference}", self.base, self.image.repository)
    }

    /// Notes that a request with `used` succeeded.
    fn accept(&self, used: &Option<HeaderValue>) {
        if let Some(v) = used {
            let mut a = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            if !a.contains(v) {
                a.push(v.clone());
            }
        }
    }

    /// Whether a request that got a 401 with `used`, on its `attempt`-th try (from 0), should
    /// be sent again after [`Session::authenticate`]: always the first time; later only while
    /// the registry keeps expiring tokens it accepted (or another download has fetched a newer
    /// one meanwhile), and at most [`MAX_AUTH_RETRIES`] times. Credentials that never reach
    /// the repository still fail after one token, as before.
    fn retry_after_401(&self, used: &Option<HeaderValue>, attempt: usize) -> bool {
        if attempt == 0 {
            return true;
        }
        if attempt >= MAX_AUTH_RETRIES {
            return false;
        }
        let expired = used.as_ref().is_some_and(|v| self.accepted.lock().unwrap_or_else(|e| e.into_inner()).contains(v));
        expired || self.current_auth() != *used
    }

    fn current_auth(&self) -> Option<HeaderValue> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn headers(&self, accept: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(ACCEPT, HeaderValue::from_str(a).expect("valid header"));
        }
        if let Some(v) = self.current_auth() {
            h.insert(AUTHORIZATION, v);
        }
        h
    }

    /// The credential for this registry: explicit ones first, then the Docker config file
    /// (read once, only when the registry asks for authentication).
    fn credential(&self) -> Result<Found, OciError> {
        self.credential
            .get_or_init(|| {
                let key = registry_key(&self.image.registry);
                if let Some((_, c)) = self.opts.credentials.iter().find(|(k, _)| registry_key(k) == key) {
                    return Ok((Some(c.clone()), None));
                }
                match &self.opts.docker_config {
                    Some(p) if !p.is_file() => Err(format!("the Docker config {} does not exist: fix docker_config", p.display())),
                    Some(p) => docker_config_credential(p, &key),
                    None => match default_docker_config().filter(|p| p.is_file()) {
                        Some(p) => docker_config_credential(&p, &key),
                        None => Ok((None, None)),
                    },
                }
            })
            .clone()
            .map_err(|m| self.err(OciErrorKind::Credentials, m))
    }

    fn has_credential(&self) -> bool {
        matches!(self.credential.get(), Some(Ok((Some(_), _))))
    }

    /// The message for a 401 that authentication did not cure.
    fn auth_failed(&self) -> OciError {
        let reg = &self.image.registry;
        let repo = &self.image.repository;
        if self.has_credential() {
            return self.err(
                OciErrorKind::Auth,
                format!("the credentials for {reg} were not accepted for {repo} (or it does not exist): check docker_registry_credentials or run docker login {reg} again"),
            );
        }
        let hint = match self.credential.get() {
            Some(Ok((None, Some(h)))) => format!(" ({h})"),
            _ => String::new(),
        };
        self.err(
            OciErrorKind::Auth,
            format!(
                "authentication required for {reg} (or the repository {repo} does not exist): set docker_registry_credentials or run docker login {reg}{hint}"
            ),
        )
    }

    /// Answers a 401 for `url`: asks the registry for its challenge and gets a Bearer token
    /// (anonymous, or with the credential) or uses Basic credentials. `used` is the
    /// Authorization value the failed request carried; when another thread has refreshed it
    /// since, nothing is done.
    fn authenticate(&self, url: &str, used: Option<HeaderValue>) -> Result<(), OciError> {
        let _guard = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        if self.current_auth() != used {
            return Ok(());
        }
        let challenges = self.challenges(url)?;
        let (cred, _) = self.credential()?;
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.token(c, cred.as_ref())?;
            let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| self.err(OciErrorKind::Auth, "the token server sent a token that is not a valid header value"))?;
            v.set_sensitive(true);
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(c) = cred else { return Err(self.auth_failed()) };
            if used.is_some() {
                // Basic credentials were sent already and refused.
                return Err(self.auth_failed());
            }
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            let mut v = HeaderValue::from_str(&format!("Basic {raw}")).expect("base64 is a valid header value");
            v.set_sensitive(true);
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            return Ok(());
        }
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        Err(self.err(
            OciErrorKind::Auth,
            if schemes.is_empty() {
                format!("{url} answered 401 without a WWW-Authenticate challenge: check the registry address")
            } else {
                format!("the registry asks for {} authentication, which airlock does not support", schemes.join("/"))
            },
        ))
    }

    /// The challenges the registry sends for an unauthenticated request to `url` (a HEAD, so
    /// no body moves), or else for `/v2/`.
    fn challenges(&self, url: &str) -> Result<Vec<Challenge>, OciError> {
        let collect = |resp: &reqwest::blocking::Response| -> Vec<Challenge> {
            resp.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).flat_map(parse_challenges).collect()
        };
        let send = |u: &str, head: bool| {
            let rb = if head { self.fetcher.client_for(u).head(u) } else { self.fetcher.client_for(u).get(u) };
            rb.header(ACCEPT, ACCEPT_MANIFESTS).send().map_err(|e| self.fetch_error(self.fetcher.send_error(u, &e), "the registry's API"))
        };
        let resp = send(url, true)?;
        let found = if resp.status().as_u16() == 401 { collect(&resp) } else { Vec::new() };
        if !found.is_empty() {
            return Ok(found);
        }
        let ping = format!("{}/v2/", self.base);
        let resp = send(&ping, false)?;
        Ok(if resp.status().as_u16() == 401 { collect(&resp) } else { Vec::new() })
    }

    /// Gets a pull token from a Bearer challenge's realm.
    fn token(&self, challenge: &Challenge, cred: Option<&Credential>) -> Result<String, OciError> {
        let realm =
            challenge.params.get("realm").ok_or_else(|| self.err(OciErrorKind::Auth, "the registry's Bearer challenge names no realm (token server)"))?;
        let mut url = url::Url::parse(realm).map_err(|_| self.err(OciErrorKind::Auth, format!("the registry's token server '{realm}' is not a URL")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &format!("repository:{}:pull", self.image.repository));
            if let Some(c) = cred {
                q.append_pair("account", &c.username);
            }
        }
        let host = url.host_str().unwrap_or("").to_string();
        let mut headers = HeaderMap::new();
        if let Some(c) = cred {
            if url.scheme() != "https" && self.base.starts_with("https:") {
                return Err(self.err(
                    OciErrorKind::Auth,
                    format!("the token server {host} is plain HTTP; airlock does not send credentials for {} there", self.image.registry),
                ));
            }
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            let mut v = HeaderValue::from_str(&format!("Basic {raw}")).expect("base64 is a valid header value");
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let (body, _) = self.fetcher.get(url.as_str(), &headers).map_err(|e| match e {
            FetchError::Http { status: Some(401 | 403), .. } if cred.is_some() => self.err(
                OciErrorKind::Auth,
                format!(
                    "the token server {host} refused the credentials for {}: check docker_registry_credentials or run docker login {} again",
                    self.image.registry, self.image.registry
                ),
            ),
            FetchError::Http { status: Some(401 | 403), .. } => self.auth_failed(),
            FetchError::Http { status, msg, .. } => {
                self.err(OciErrorKind::Network, format!("the token server {host} failed ({}): retry later", status.map(|s| format!("HTTP {s}")).unwrap_or(msg)))
            }
            other => self.err(OciErrorKind::Network, other.to_string()),
        })?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| self.err(OciErrorKind::Auth, format!("the token server {host} did not answer with JSON")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.err(OciErrorKind::Auth, format!("the token server {host} sent no token")))
    }

    // -----------------------------------------------------------------------------------------
    // Requests

    fn network_error(&self, url: &str, msg: &str) -> OciError {
        let hint = if self.base.starts_with("https:") {
            format!("check that the registry is reachable; if it serves plain HTTP, list {} in insecure_registries", self.image.registry)
        } else {
            format!("check that the registry is running; if it serves HTTPS, remove {} from insecure_registries", self.image.registry)
        };
        self.err(OciErrorKind::Network, format!("{url}: {msg}: {hint}"))
    }

    /// An `OciError` for a failed fetch of `what` (a manifest or blob).
    fn fetch_error(&self, e: FetchError, what: &str) -> OciError {
        match e {
            FetchError::Http { status: Some(401), .. } => self.auth_failed(),
            FetchError::Http { status: Some(403), url, .. } => {
                self.err(OciErrorKind::Auth, format!("access to {what} was denied ({url}): check docker_registry_credentials for {}", self.image.registry))
            }
            FetchError::Http { status: Some(404), url, .. } if what.starts_with("blob") => self.err(
                OciErrorKind::NotFound,
                format!("{what} is missing from the registry although the manifest names it ({url}): the image there is broken; re-push it"),
            ),
            FetchError::Http { status: Some(404), url, .. } => {
                self.err(OciErrorKind::NotFound, format!("{what} not found ({url}): check the image name and tag"))
            }
            FetchError::Http { status: Some(429), msg, .. } => self.err(
                OciErrorKind::Network,
                format!(
                    "{} is rate-limiting pulls ({msg}): retry later, raise download_retries, or log in (docker_registry_credentials) for a higher limit",
                    self.image.registry
                ),
            ),
            FetchError::Http { status: Some(s), url, .. } => {
                self.err(OciErrorKind::Network, format!("{what}: HTTP {s} from {url}: retry later or check the registry"))
            }
            FetchError::Http { status: None, url, msg, .. } => self.network_error(&url, &msg),
            // Not the scheme: insecure_registries would mean plain HTTP, which this is not.
            FetchError::Tls { msg, .. } => self.err(OciErrorKind::Network, msg),
            // The registry answered, so its address and scheme are right: no hint about them.
            FetchError::Body { url, msg } | FetchError::Redirect { url, msg } => self.err(OciErrorKind::Network, format!("{what}: {url}: {msg}")),
            FetchError::Checksum { expected, actual, .. } => self.err(
                OciErrorKind::Integrity,
                format!("{what} does not match its digest (expected {expected}, got {actual}): the registry or a proxy corrupted it; retry"),
            ),
            FetchError::Io { path, msg } => self.err(OciErrorKind::Layout, format!("cannot write {path}: {msg}")),
        }
    }

    /// GETs a manifest by tag or digest, authenticating on a 401.
    fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, HeaderMap), OciError> {
        let url = self.url("manifests", reference);
        let mut attempt = 0;
        loop {
            let used = self.current_auth();
            match self.fetcher.get(&url, &self.headers(Some(ACCEPT_MANIFESTS))) {
                Ok(v) => {
                    self.accept(&used);
                    return Ok(v);
                }
                Err(FetchError::Http { status: Some(401), .. }) if self.retry_after_401(&used, attempt) => self.authenticate(&url, used)?,
                Err(e) => return Err(self.fetch_error(e, &format!("manifest {reference}"))),
            }
            attempt += 1;
        }
    }

    /// A manifest or index by tag or digest: from the layout when pinned by a digest whose blob
    /// is there and verifies, else from the registry, checked against the digest asked for,
    /// `Docker-Content-Digest` and the descriptor's size, and stored byte for byte. The bool
    /// says whether it was newly stored.
    ///
    /// With `store` false nothing is written (check mode), and the bool says whether it would be.
    fn manifest(&self, layout: &Path, reference: &str, desc: Option<&Descriptor>, store: bool) -> Result<(Manifest, bool), OciError> {
        let pinned = if reference.contains(':') { Some(sha256_hex(reference).map_err(|(k, m)| self.err(k, m))?.to_string()) } else { None };
        let mut from_disk = None;
        if let Some(hex) = &pinned
            && let Ok(bytes) = fs::read(blob_path(layout, reference))
            && &sha256_of(&bytes) == hex
        {
            from_disk = Some(bytes);
        }
        let (bytes, content_type) = match from_disk.take() {
            Some(b) => (b, None),
            None => {
                let (bytes, headers) = self.get_manifest(reference)?;
                let actual = sha256_of(&bytes);
                if let Some(hex) = &pinned
                    && &actual != hex
                {
                    return Err(self.err(
                        OciErrorKind::Integrity,
                        format!("manifest {reference} arrived with digest sha256:{actual}: the registry or a proxy altered it; retry"),
                    ));
                }
                if let Some(hd) = headers.get("docker-content-digest").and_then(|v| v.to_str().ok())
                    && let Some(h) = hd.trim().strip_prefix("sha256:")
                    && h != actual
                {
                    return Err(self.err(
                        OciErrorKind::Integrity,
                        format!("manifest {reference}: Docker-Content-Digest says {hd} but the bytes are sha256:{actual}; retry"),
                    ));
                }
                let ct = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.split(';').next().unwrap_or("").trim().to_string());
                (bytes, ct)
            }
        };
        let hex = sha256_of(&bytes);
        let digest = format!("sha256:{hex}");
        if let Some(d) = desc
            && d.size != bytes.len() as u64
        {
            return Err(self
                .err(OciErrorKind::Integrity, format!("manifest {digest} is {} bytes but its index says {}: the index is inconsistent", bytes.len(), d.size)));
        }
        let (json, media_type) = decode_manifest(&bytes, reference, desc.map(|d| d.media_type.as_str()), content_type).map_err(|(k, m)| self.err(k, m))?;
        let path = blob_path(layout, &digest);
        let stored_new = if store {
            store_blob_bytes(&path, &hex, &bytes).map_err(|e| self.err(OciErrorKind::Layout, format!("cannot write {}: {e}", path.display())))?
        } else {
            fs::read(&path).map(|b| sha256_of(&b) != hex).unwrap_or(true)
        };
        Ok((Manifest { bytes, digest, media_type, json }, stored_new))
    }

    /// Downloads one blob into the layout (nothing when it is there and verifies), retrying
    /// with a fresh token on a 401 (see [`Session::retry_after_401`]).
    fn blob(&self, layout: &Path, d: &Descriptor, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<Fetched, OciError> {
        let dest = blob_path(layout, &d.digest);
        let _guard = InFlight::acquire(&dest);
        let url = self.url("blobs", &d.digest);
        let sum = Checksum::sha256(&d.hex);
        let what = format!("blob {}", d.digest);
        let mut attempt = 0;
        loop {
            let used = self.current_auth();
            // The first bytes of the body show the registry took `used`: noted at once, not
            // when the blob is complete, so parallel downloads that meet its expiry meanwhile
            // know it was a working token that expired.
            let started = std::sync::atomic::AtomicBool::new(false);
            let counted = |n: u64| {
                if !started.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    self.accept(&used);
                }
                on_bytes(n)
            };
            match self.fetcher.download(&url, &dest, Some(&sum), &self.headers(None), &counted) {
                Ok(f) if f.size != d.size => {
                    return Err(
                        self.err(OciErrorKind::Integrity, format!("{what} is {} bytes but its manifest says {}: the manifest is inconsistent", f.size, d.size))
                    );
                }
                Ok(f) => {
                    if f.downloaded {
                        self.accept(&used);
                    }
                    return Ok(f);
                }
                Err(FetchError::Http { status: Some(401), .. }) if self.retry_after_401(&used, attempt) => self.authenticate(&url, used)?,
                Err(e) => return Err(self.fetch_error(e, &what)),
            }
            attempt += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pulling

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
/// [`upstream_descriptor`] reads back (the registry storage and `docker load` use upstream's).
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
    init_layout(layout).map_err(|m| first.err(OciErrorKind::Layout, m))?;
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
                first_error.get_or_insert(s.err(OciErrorKind::Layout, m));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(r("ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(r("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
        assert_eq!(r("grafana/grafana:10.0.0"), "docker.io/grafana/grafana:10.0.0");
        assert_eq!(r("docker.io/ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(r("index.docker.io/library/ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(r("nvcr.io/nvidia/cuda:12.4.1-base"), "nvcr.io/nvidia/cuda:12.4.1-base");
        assert_eq!(r("localhost/foo"), "localhost/foo:latest");
        assert_eq!(r("localhost:5000/foo/bar:1"), "localhost:5000/foo/bar:1");
        assert_eq!(r("127.0.0.1:5000/test/app"), "127.0.0.1:5000/test/app:latest");
        assert_eq!(r("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
        assert_eq!(r("[::1]:5000/x:y"), "[::1]:5000/x:y");
        let d = format!("sha256:{}", "a".repeat(64));
        let i = ImageRef::parse(&format!("quay.io/prometheus/node-exporter@{d}")).unwrap();
        assert_eq!(i.tag, None);
        assert_eq!(i.digest.as_deref(), Some(d.as_str()));
        assert_eq!(i.manifest_reference(), d);
        let i = ImageRef::parse(&format!("nginx:1.25@{d}")).unwrap();
        assert_eq!(i.tag.as_deref(), Some("1.25"));
        assert_eq!(i.manifest_reference(), d);
        assert_eq!(i.to_string(), format!("docker.io/library/nginx:1.25@{d}"));
        assert_eq!(ImageRef::parse("ubuntu").unwrap().api_host(), "registry-1.docker.io");
        assert_eq!(ImageRef::parse("nvcr.io/nvidia/cuda").unwrap().api_host(), "nvcr.io");
        // Uppercase in the first component makes it a registry.
        assert_eq!(ImageRef::parse("MyHost/foo").unwrap().registry, "myhost");
    }

    #[test]
    fn bad_references() {
        for s in ["", "Ubuntu", "https://nvcr.io/nvidia/cuda", "ubuntu:", "ubuntu:-x", "a b", "nvcr.io/", "foo@sha256:abc", "foo/../bar"] {
            let e = ImageRef::parse(s).unwrap_err();
            assert_eq!(e.kind, OciErrorKind::Reference, "{s}: {e}");
            assert!(e.to_string().contains("invalid image reference"), "{e}");
        }
        let e = ImageRef::parse(&format!("foo@sha512:{}", "a".repeat(128))).unwrap_err();
        assert_eq!(e.kind, OciErrorKind::Unsupported);
    }

    #[test]
    fn deepops_entries() {
        let i = ImageRef::from_deepops("nvcr.io/", "nvidia/cuda", "12.4.1-base").unwrap();
        assert_eq!(i.to_string(), "nvcr.io/nvidia/cuda:12.4.1-base");
        assert_eq!(ImageRef::from_deepops("", "registry", "2").unwrap().to_string(), "docker.io/library/registry:2");
        assert_eq!(ImageRef::from_deepops("nvcr.io", "nvidia/k8s/dcgm-exporter", "").unwrap().to_string(), "nvcr.io/nvidia/k8s/dcgm-exporter:latest");
        let d = format!("sha256:{}", "b".repeat(64));
        assert_eq!(ImageRef::from_deepops("quay.io/", "coreos/etcd", &d).unwrap().digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn transport_choice() {
        let o = OciOptions { insecure_registries: vec!["http://mirror.lan:5000/".into()], ..Default::default() };
        let url = |s: &str| o.registry_url(&ImageRef::parse(s).unwrap());
        assert_eq!(url("nvcr.io/nvidia/cuda"), "https://nvcr.io");
        assert_eq!(url("ubuntu"), "https://registry-1.docker.io");
        assert_eq!(url("127.0.0.1:5000/a"), "http://127.0.0.1:5000");
        assert_eq!(url("127.1.2.3:5000/a"), "http://127.1.2.3:5000");
        assert_eq!(url("localhost/a"), "http://localhost");
        assert_eq!(url("[::1]:5000/a"), "http://[::1]:5000");
        assert_eq!(url("mirror.lan:5000/a"), "http://mirror.lan:5000");
        assert_eq!(url("mirror.lan/a"), "https://mirror.lan");
    }

    #[test]
    fn challenges_parse() {
        let c = parse_challenges(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/ubuntu:pull,push");
        let c = parse_challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(c, vec![Challenge { scheme: "basic".into(), params: BTreeMap::from([("realm".into(), "basic-realm".into())]) }]);
        let c = parse_challenges(r#"Bearer realm="https://nvcr.io/proxy_auth", service=ngc , Basic realm="a \"q\"""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["service"], "ngc");
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(c[1].params["realm"], "a \"q\"");
    }

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

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("user:pa:ss");
        fs::write(
            &path,
            json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}, "nvcr.io": {"identitytoken": "x"}}, "credHelpers": {"gcr.io": "gcloud"}})
                .to_string(),
        )
        .unwrap();
        let (c, _) = docker_config_credential(&path, "docker.io").unwrap();
        assert_eq!(c, Some(Credential { username: "user".into(), password: "pa:ss".into() }));
        let (c, hint) = docker_config_credential(&path, "nvcr.io").unwrap();
        assert!(c.is_none() && hint.unwrap().contains("identity token"));
        let (c, hint) = docker_config_credential(&path, "gcr.io").unwrap();
        assert!(c.is_none() && hint.unwrap().contains("docker-credential-gcloud"));
        assert_eq!(docker_config_credential(&path, "quay.io").unwrap(), (None, None));
        assert!(!format!("{:?}", Credential { username: "u".into(), password: "secret".into() }).contains("secret"));
    }

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
    fn upstream_descriptors_of_entries() {
        let d = format!("sha256:{}", "a".repeat(64));
        let plain = json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": d, "size": 12, "annotations": {ANNOTATION_REF_NAME: "x:1"}});
        assert_eq!(upstream_descriptor(&plain).unwrap(), UpstreamDescriptor { digest: d.clone(), media_type: MEDIA_OCI_MANIFEST.into(), size: Some(12) });
        let e = format!("sha256:{}", "b".repeat(64));
        let named = json!({"mediaType": MEDIA_OCI_INDEX, "digest": e, "size": 99, "annotations": {
            ANNOTATION_UPSTREAM_DIGEST: d, ANNOTATION_UPSTREAM_MEDIA_TYPE: MEDIA_DOCKER_LIST, ANNOTATION_UPSTREAM_SIZE: "345"}});
        assert_eq!(upstream_descriptor(&named).unwrap(), UpstreamDescriptor { digest: d.clone(), media_type: MEDIA_DOCKER_LIST.into(), size: Some(345) });
        let bad = json!({"digest": e, "annotations": {ANNOTATION_UPSTREAM_DIGEST: d, ANNOTATION_UPSTREAM_SIZE: "many"}});
        assert!(upstream_descriptor(&bad).unwrap_err().contains(ANNOTATION_UPSTREAM_SIZE));
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

//! Image references: parsing and Docker's normalisation (`ubuntu` is
//! `docker.io/library/ubuntu:latest`), and digest checks.

use std::fmt;
use std::sync::OnceLock;

use super::{OciError, OciErrorKind};

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
pub(super) fn sha256_hex(digest: &str) -> Result<&str, (OciErrorKind, String)> {
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
}

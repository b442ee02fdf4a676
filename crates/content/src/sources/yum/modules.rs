//! Module streams: `modules.yaml` and the NEVRAs its artifacts name.

use std::io::BufRead;

use super::repodata::{RepodataError, with_decompressed};
use super::version::Evr;

/// One `modulemd` document of a repository's `modules` metadata: one version (and context)
/// of a module stream, and the packages it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleVersion {
    /// `data.name`: `nvidia-driver`.
    pub name: String,
    /// `data.stream`: `550-dkms`, `latest-dkms`, `open-dkms`.
    pub stream: String,
    /// `data.version`: newer builds of a stream have higher numbers.
    pub version: u64,
    /// `data.context`, empty when there is none.
    pub context: String,
    /// `data.artifacts.rpms`: NEVRAs with their epoch, `nvidia-driver-3:550.54.15-1.el9.x86_64`.
    pub artifacts: Vec<String>,
}

impl ModuleVersion {
    /// `name:stream`, as `dnf module` spells a stream.
    pub fn name_stream(&self) -> String {
        format!("{}:{}", self.name, self.stream)
    }
}

/// Parses `modules.yaml` (uncompressed): a YAML stream of `modulemd` documents (version 1 or
/// 2), which are returned in order, and of `modulemd-defaults`, `modulemd-obsoletes` and
/// `modulemd-translations` documents, which say nothing about what a stream holds and are
/// skipped.
pub fn parse_modules(text: &str) -> Result<Vec<ModuleVersion>, RepodataError> {
    modulemd(text).map_err(RepodataError::Modules)
}

/// [`parse_modules`], its messages naming the document and its line.
fn modulemd(text: &str) -> Result<Vec<ModuleVersion>, String> {
    use airlock_base::yaml::{Node, NodeKind};
    let docs = airlock_base::yaml::parse_documents(text).map_err(|e| format!("invalid modules.yaml: {e}"))?;
    // Scalars as text: YAML 1.1 reads a stream `550` as a number, the modulemd spec means a string.
    let text_of = |n: &Node| match n.kind {
        NodeKind::Str(_) | NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => Some(n.key_string().into_owned()),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let at = |m: &str| format!("modules.yaml document {} (line {}): {m}", i + 1, doc.mark.line);
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("document").and_then(|n| n.as_str()).ok_or_else(|| at("not a modulemd document (no `document:` key)"))?;
        if kind != "modulemd" {
            continue;
        }
        let version = doc.get("version").and_then(Node::as_i64);
        if !matches!(version, Some(1 | 2)) {
            let shown = doc.get("version").map(|n| n.to_json().to_string()).unwrap_or_else(|| "none".into());
            return Err(at(&format!("modulemd version {shown} is not supported (only 1 and 2)")));
        }
        let data = doc.get("data").filter(|d| d.as_map().is_some()).ok_or_else(|| at("a modulemd document without a `data` mapping"))?;
        let field = |k: &str| data.get(k).and_then(text_of).filter(|s| !s.is_empty());
        let name = field("name").ok_or_else(|| at("no module `name`"))?;
        let stream = field("stream").ok_or_else(|| at(&format!("module {name} has no `stream`")))?;
        let what = |m: &str| at(&format!("module stream {name}:{stream}: {m}"));
        let version = match data.get("version") {
            Some(n) => match &n.kind {
                NodeKind::Int(v) if *v >= 0 => *v as u64,
                NodeKind::Str(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
                    s.parse().map_err(|_| what(&format!("version {s} is too large")))?
                }
                _ => return Err(what(&format!("version {} is not a whole number", n.to_json()))),
            },
            None => return Err(what("no `version`")),
        };
        let context = field("context").unwrap_or_default();
        let rpms = data.get("artifacts").and_then(|a| a.get("rpms"));
        let artifacts = match rpms {
            None => Vec::new(),
            Some(n) if n.is_null() => Vec::new(),
            Some(n) => n
                .as_seq()
                .ok_or_else(|| what("`artifacts.rpms` is not a list"))?
                .iter()
                .map(|a| a.as_str().map(str::to_string).ok_or_else(|| what(&format!("artifact {} is not a NEVRA string", a.to_json()))))
                .collect::<Result<_, _>>()?,
        };
        out.push(ModuleVersion { name, stream, version, context, artifacts });
    }
    Ok(out)
}

/// Reads a (compressed) `modules.yaml`.
pub fn read_modules<R: BufRead + Send>(input: R) -> Result<Vec<ModuleVersion>, RepodataError> {
    with_decompressed(input, |r| {
        let mut text = String::new();
        r.read_to_string(&mut text).map_err(|e| RepodataError::Modules(format!("modules.yaml: {e}")))?;
        parse_modules(&text)
    })
}

/// `name-epoch:version-release.arch` with the epoch always written (0 when there is none),
/// which is how `modules.yaml` names packages.
pub(super) fn nevra_key(name: &str, arch: &str, evr: &Evr) -> String {
    let e = evr.epoch.trim_start_matches('0');
    format!("{name}-{}:{}-{}.{arch}", if e.is_empty() { "0" } else { e }, evr.version, evr.release)
}

/// The canonical form ([`nevra_key`]) of a NEVRA written `name-[epoch:]version-release.arch`;
/// `None` when it has no architecture, release or version.
pub(super) fn normalize_nevra(s: &str) -> Option<String> {
    let (rest, arch) = s.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, ev) = rest.rsplit_once('-')?;
    if name.is_empty() || arch.is_empty() || release.is_empty() || ev.is_empty() {
        return None;
    }
    if ev.split_once(':').is_some_and(|(e, _)| e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let evr = Evr::parse(&format!("{ev}-{release}"));
    if evr.version.is_empty() {
        return None;
    }
    Some(nevra_key(name, arch, &evr))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    /// Shaped like NVIDIA's CUDA repository: several streams of `nvidia-driver`, several
    /// versions of a stream with NVIDIA's per-version contexts, and the defaults document.
    const MODULES_YAML: &str = r#"---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550-dkms
    version: 20240301120000
    context: 6c1b2ed3a1
    arch: x86_64
    summary: Nvidia driver for 550-dkms branch
    description: >-
        This package provides the most recent NVIDIA display driver.
    license:
        module:
            - MIT
    artifacts:
        rpms:
            - nvidia-driver-3:550.54.14-1.el9.x86_64
            - kmod-nvidia-latest-dkms-3:550.54.14-1.el9.x86_64
    profiles:
        default:
            description: Default installation
            rpms:
                - nvidia-driver
                - kmod-nvidia-latest-dkms
...
---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550-dkms
    version: 20240601120000
    context: 0e5c8f01b7
    arch: x86_64
    summary: Nvidia driver for 550-dkms branch
    license:
        module: [MIT]
    artifacts:
        rpms:
            - nvidia-driver-3:550.54.14-1.el9.x86_64
            - nvidia-driver-3:550.90.07-1.el9.x86_64
            - kmod-nvidia-latest-dkms-3:550.90.07-1.el9.x86_64
            - dnf-plugin-nvidia-0:2.0-1.el9.noarch
...
---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: 550
    version: "20240601120000"
    arch: x86_64
    summary: Nvidia driver for 550 branch
    license:
        module: [MIT]
    artifacts:
        rpms: [nvidia-driver-3:550.90.07-1.el9.x86_64]
...
---
document: modulemd-defaults
version: 1
data:
    module: nvidia-driver
    stream: latest-dkms
    profiles:
        550: [default]
        550-dkms: [default]
...
"#;

    #[test]
    fn modules_yaml_parses_modulemd_and_skips_defaults() {
        let m = parse_modules(MODULES_YAML).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name_stream(), "nvidia-driver:550-dkms");
        assert_eq!((m[0].version, m[0].context.as_str()), (20240301120000, "6c1b2ed3a1"));
        assert_eq!(m[0].artifacts, ["nvidia-driver-3:550.54.14-1.el9.x86_64", "kmod-nvidia-latest-dkms-3:550.54.14-1.el9.x86_64"]);
        assert_eq!(m[1].artifacts.len(), 4);
        // A stream and a version YAML would read as numbers are the strings the spec means.
        assert_eq!((m[2].stream.as_str(), m[2].version, m[2].context.as_str()), ("550", 20240601120000, ""));
        assert!(parse_modules("").unwrap().is_empty());
        // modulemd version 1 has the same fields, no context.
        let v1 = parse_modules("document: modulemd\nversion: 1\ndata: {name: m, stream: s, version: 7, artifacts: {rpms: [m-0:1-1.noarch]}}\n").unwrap();
        assert_eq!(v1, [ModuleVersion { name: "m".into(), stream: "s".into(), version: 7, context: String::new(), artifacts: vec!["m-0:1-1.noarch".into()] }]);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(MODULES_YAML.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut MODULES_YAML.as_bytes(), &mut xz).unwrap();
        for bytes in [gz, xz, zstd::stream::encode_all(MODULES_YAML.as_bytes(), 3).unwrap()] {
            assert_eq!(read_modules(bytes.as_slice()).unwrap(), m);
        }
    }

    #[test]
    fn modules_yaml_errors_name_the_document_and_the_problem() {
        let doc = |data: &str| {
            format!(
                "---\ndocument: modulemd-defaults\nversion: 1\ndata: {{module: x, stream: a}}\n...\n---\ndocument: modulemd\nversion: 2\ndata:\n{data}...\n"
            )
        };
        let cases = [
            (doc("  name: m\n  stream: s\n  version: 1\n  artifacts: {rpms: [[a]]}\n"), "module stream m:s: artifact [\"a\"] is not a NEVRA string"),
            (doc("  name: m\n  stream: s\n  version: 1.5\n"), "version 1.5 is not a whole number"),
            (doc("  name: m\n  stream: s\n"), "m:s: no `version`"),
            (doc("  name: m\n  version: 1\n"), "module m has no `stream`"),
            (doc("  stream: s\n"), "no module `name`"),
            (doc("  name: m\n  stream: s\n  version: 1\n  artifacts: {rpms: a}\n"), "`artifacts.rpms` is not a list"),
            ("document: modulemd\nversion: 3\ndata: {}\n".into(), "modulemd version 3 is not supported"),
            ("name: m\n".into(), "no `document:` key"),
            ("document: modulemd\nversion: 2\ndata: [1]\n".into(), "without a `data` mapping"),
            ("document: modulemd\ndata: [\n".into(), "invalid modules.yaml"),
        ];
        for (text, want) in cases {
            let e = parse_modules(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?} for\n{text}");
        }
        let e = parse_modules(&doc("  name: m\n")).unwrap_err().to_string();
        assert!(e.starts_with("modules.yaml document 2 (line 7)"), "{e}");
        assert!(read_modules(&b"\xff\xfe not text"[..]).is_err());
    }

    #[test]
    fn nevras_normalize_with_their_epoch() {
        let n = |s: &str| normalize_nevra(s);
        assert_eq!(n("nvidia-driver-3:550.54.15-1.el9.x86_64").as_deref(), Some("nvidia-driver-3:550.54.15-1.el9.x86_64"));
        assert_eq!(n("kmod-nvidia-latest-dkms-550.54.15-1.el9.x86_64").as_deref(), Some("kmod-nvidia-latest-dkms-0:550.54.15-1.el9.x86_64"));
        assert_eq!(n("a-00:1-1.noarch").as_deref(), Some("a-0:1-1.noarch"));
        assert_eq!(n("a-010:1-1.noarch").as_deref(), Some("a-10:1-1.noarch"));
        for bad in ["nvidia-driver", "a-1.noarch", "-1-1.noarch", "a-1-1.", "a-x:1-1.noarch", "a-:1-1.noarch"] {
            assert_eq!(n(bad), None, "{bad}");
        }
        assert_eq!(nevra_key("a", "noarch", &Evr::parse("1.0-1")), "a-0:1.0-1.noarch");
    }
}

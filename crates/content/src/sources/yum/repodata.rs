//! Repository metadata: `repomd.xml`, `primary.xml` (streamed), and the compressions
//! metadata files come in.

use std::io::{BufRead, BufReader};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::version::Evr;
use crate::sources::fetch::{Checksum, ChecksumError};

/// One `<data>` entry of `repomd.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoData {
    /// `primary`, `filelists`, `other`, `primary_db`, `group`, `updateinfo`, `modules`, ...
    pub kind: String,
    pub href: String,
    /// `xml:base` of the location, when the file lives elsewhere.
    pub base: Option<String>,
    pub checksum: Checksum,
    pub size: Option<u64>,
}

/// A package of `primary.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub arch: String,
    pub evr: Evr,
    pub href: String,
    /// `xml:base` of the location, when the package lives elsewhere.
    pub base: Option<String>,
    pub checksum: Checksum,
    /// The package file's size.
    pub size: Option<u64>,
}

impl Package {
    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

/// Why Yum metadata cannot be read; each message names the file, and the element where there
/// is one.
#[derive(Debug, thiserror::Error)]
pub enum RepodataError {
    /// Not well-formed XML.
    #[error("invalid {file} at byte {at}: {source}")]
    Xml { file: &'static str, at: u64, source: quick_xml::Error },
    /// An attribute or an entity reference that does not parse.
    #[error("{0}")]
    Markup(String),
    /// Well-formed, but not the document it should be: another root element, empty, cut short.
    #[error("{0}")]
    Document(String),
    /// An element without something the format requires, or with a bad value.
    #[error("{0}")]
    Element(String),
    /// The checksum of an element does not parse; `element` names it.
    #[error("{element}: {source}")]
    Checksum { element: String, source: ChecksumError },
    /// Compressed in a way airlock does not read, or the decompressor failed.
    #[error("{0}")]
    Compression(String),
    /// `modules.yaml` is not YAML or not the modulemd format; the message has the document
    /// and its line.
    #[error("{0}")]
    Modules(String),
    /// Reading the metadata failed.
    #[error("{0}")]
    Io(std::io::Error),
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, RepodataError> {
    for a in e.attributes() {
        let a = a.map_err(|e| RepodataError::Markup(e.to_string()))?;
        if a.key.0 == name {
            return Ok(Some(a.normalized_value(XmlVersion::Implicit1_0).map_err(|e| RepodataError::Markup(e.to_string()))?.into_owned()));
        }
    }
    Ok(None)
}

/// The checksum of `element` (`<data type="primary">`, `package kernel`).
fn checksum_of(kind: Option<String>, hex: &str, element: &str) -> Result<Checksum, RepodataError> {
    let kind = kind.ok_or_else(|| RepodataError::Element(format!("{element}: a checksum without a type")))?;
    Checksum::parse(&format!("{kind}:{}", hex.trim())).map_err(|source| RepodataError::Checksum { element: element.to_string(), source })
}

/// Appends the text of a text-like event to `text`.
fn push_text(ev: &Event, text: &mut String) -> Result<(), RepodataError> {
    match ev {
        Event::Text(t) => text.push_str(&t.xml10_content()),
        Event::CData(t) => text.push_str(&t.xml10_content()),
        Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| RepodataError::Markup(e.to_string()))? {
            Some(c) => text.push(c),
            None => match quick_xml::escape::resolve_predefined_entity(r) {
                Some(s) => text.push_str(s),
                None => return Err(RepodataError::Markup(format!("unknown entity &{};", &**r))),
            },
        },
        _ => {}
    }
    Ok(())
}

/// Parses `repomd.xml`.
pub fn parse_repomd(xml: &[u8]) -> Result<Vec<RepoData>, RepodataError> {
    #[derive(Default)]
    struct Cur {
        kind: String,
        href: Option<String>,
        base: Option<String>,
        sum_type: Option<String>,
        sum: Option<String>,
        size: Option<u64>,
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<Cur> = None;
    let mut depth = 0usize;
    let mut data_depth = 0usize;
    let mut field: Option<String> = None;
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|source| RepodataError::Xml { file: "repomd.xml", at: reader.buffer_position(), source })?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != "repomd" {
                        return Err(RepodataError::Document(format!("not a repomd.xml: the root element is <{name}>")));
                    }
                    saw_root = true;
                }
                match (&mut cur, name) {
                    (None, "data") if depth == 1 => {
                        let kind = attr(e, "type")?.ok_or_else(|| RepodataError::Element("a <data> without a type".into()))?;
                        cur = Some(Cur { kind, ..Default::default() });
                        data_depth = depth;
                    }
                    (Some(c), "location") if depth == data_depth + 1 => {
                        c.href = attr(e, "href")?;
                        c.base = attr(e, "xml:base")?;
                    }
                    (Some(c), "checksum" | "size") if depth == data_depth + 1 && !empty => {
                        if name == "checksum" {
                            c.sum_type = attr(e, "type")?;
                        }
                        field = Some(name.to_string());
                        text.clear();
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name();
                if let Some(f) = field.take_if(|f| f == name.as_ref()) {
                    let c = cur.as_mut().expect("fields are inside <data>");
                    if f == "checksum" {
                        c.sum = Some(text.trim().to_string());
                    } else {
                        c.size = Some(
                            text.trim()
                                .parse()
                                .map_err(|_| RepodataError::Element(format!("<data type=\"{}\">: size '{}' is not a number", c.kind, text.trim())))?,
                        );
                    }
                } else if name.as_ref() == "data" && depth == data_depth && cur.is_some() {
                    let c = cur.take().unwrap();
                    let href = c.href.ok_or_else(|| RepodataError::Element(format!("<data type=\"{}\"> has no location", c.kind)))?;
                    let sum = c.sum.ok_or_else(|| RepodataError::Element(format!("<data type=\"{}\"> has no checksum", c.kind)))?;
                    let checksum = checksum_of(c.sum_type, &sum, &format!("<data type=\"{}\">", c.kind))?;
                    out.push(RepoData { kind: c.kind, href, base: c.base, checksum, size: c.size });
                }
            }
            Event::Eof => break,
            other => {
                if field.is_some() {
                    push_text(other, &mut text)?;
                }
            }
        }
        buf.clear();
    }
    if !saw_root {
        return Err(RepodataError::Document("not a repomd.xml: empty document".into()));
    }
    if depth != 0 {
        return Err(RepodataError::Document("repomd.xml ends early: truncated?".into()));
    }
    Ok(out)
}

/// Parses `primary.xml` (uncompressed) as it streams, calling `each` with every package.
/// Only the current package is held in memory.
pub fn parse_primary<R: BufRead>(input: R, mut each: impl FnMut(Package)) -> Result<usize, RepodataError> {
    #[derive(Default)]
    struct Cur {
        name: Option<String>,
        arch: Option<String>,
        evr: Option<Evr>,
        href: Option<String>,
        base: Option<String>,
        sum_type: Option<String>,
        sum: Option<String>,
        size: Option<u64>,
    }
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::with_capacity(4096);
    let mut cur: Option<Cur> = None;
    let mut depth = 0usize;
    let mut pkg_depth = 0usize;
    let mut field: Option<&'static str> = None;
    let mut text = String::new();
    let mut count = 0usize;
    let mut saw_root = false;
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|source| RepodataError::Xml { file: "primary.xml", at: reader.buffer_position(), source })?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                if depth == 0 {
                    if name != "metadata" {
                        return Err(RepodataError::Document(format!("not a primary.xml: the root element is <{name}>")));
                    }
                    saw_root = true;
                }
                if cur.is_none() && name == "package" && depth == 1 {
                    cur = Some(Cur::default());
                    pkg_depth = depth;
                } else if let Some(c) = cur.as_mut().filter(|_| depth == pkg_depth + 1) {
                    match name {
                        "name" | "arch" | "checksum" if !empty => {
                            if name == "checksum" {
                                c.sum_type = attr(e, "type")?;
                            }
                            field = Some(match name {
                                "name" => "name",
                                "arch" => "arch",
                                _ => "checksum",
                            });
                            text.clear();
                        }
                        "version" => {
                            c.evr = Some(Evr {
                                epoch: attr(e, "epoch")?.unwrap_or_default(),
                                version: attr(e, "ver")?.unwrap_or_default(),
                                release: attr(e, "rel")?.unwrap_or_default(),
                            });
                        }
                        "location" => {
                            c.href = attr(e, "href")?;
                            c.base = attr(e, "xml:base")?;
                        }
                        "size" => {
                            if let Some(s) = attr(e, "package")? {
                                c.size = Some(s.trim().parse().map_err(|_| RepodataError::Element(format!("package size '{s}' is not a number")))?);
                            }
                        }
                        _ => {}
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name();
                if let Some(f) = field.take_if(|f| *f == name.as_ref()) {
                    let c = cur.as_mut().expect("fields are inside <package>");
                    let v = Some(text.trim().to_string());
                    match f {
                        "name" => c.name = v,
                        "arch" => c.arch = v,
                        _ => c.sum = v,
                    }
                } else if name.as_ref() == "package" && depth == pkg_depth && cur.is_some() {
                    let c = cur.take().unwrap();
                    let name = c.name.ok_or_else(|| RepodataError::Element("a <package> without a name".into()))?;
                    let what = |m: &str| RepodataError::Element(format!("package {name}: {m}"));
                    let arch = c.arch.ok_or_else(|| what("no arch"))?;
                    let evr = c.evr.ok_or_else(|| what("no version"))?;
                    let href = c.href.ok_or_else(|| what("no location"))?;
                    let sum = c.sum.ok_or_else(|| what("no checksum"))?;
                    let checksum = checksum_of(c.sum_type, &sum, &format!("package {name}"))?;
                    each(Package { name, arch, evr, href, base: c.base, checksum, size: c.size });
                    count += 1;
                }
            }
            Event::Eof => break,
            other => {
                if field.is_some() {
                    push_text(other, &mut text)?;
                }
            }
        }
        buf.clear();
    }
    if !saw_root {
        return Err(RepodataError::Document("not a primary.xml: empty document".into()));
    }
    if depth != 0 {
        return Err(RepodataError::Document(format!("primary.xml ends early (after {count} packages): truncated?")));
    }
    Ok(count)
}

/// A compression of a metadata file, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    Zchunk,
    Unknown,
}

/// Recognises gzip, zstd, xz, bzip2 and zchunk by their magic numbers; `<` starts plain XML.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(b"\0ZCK1") {
        Compression::Zchunk
    } else {
        let t = head.trim_ascii_start();
        let t = t.strip_prefix(b"\xef\xbb\xbf".as_slice()).unwrap_or(t);
        if t.first() == Some(&b'<') || head.is_empty() { Compression::None } else { Compression::Unknown }
    }
}

/// Runs `f` on the decompressed content of `input` (gzip, zstd, xz or none), streaming.
pub fn with_decompressed<R: BufRead + Send, T>(mut input: R, f: impl FnOnce(&mut dyn BufRead) -> Result<T, RepodataError>) -> Result<T, RepodataError> {
    let head = input.fill_buf().map_err(RepodataError::Io)?.to_vec();
    match detect_compression(&head) {
        Compression::None => f(&mut input),
        Compression::Gzip => f(&mut BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(input))),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| RepodataError::Compression(format!("zstd: {e}")))?;
            f(&mut BufReader::with_capacity(1 << 16, d))
        }
        Compression::Xz => {
            // lzma-rs decodes xz into a writer: run it on a thread feeding a pipe.
            let (rd, mut wr) = std::io::pipe().map_err(RepodataError::Io)?;
            std::thread::scope(|s| {
                let decoder = s.spawn(move || {
                    let r = lzma_rs::xz_decompress(&mut input, &mut wr);
                    drop(wr);
                    r
                });
                let mut reader = BufReader::with_capacity(1 << 16, rd);
                let parsed = f(&mut reader);
                // Closing the pipe stops the decoder if the parser gave up early.
                drop(reader);
                let decoded = decoder.join().map_err(|_| RepodataError::Compression("the xz decoder panicked".into()))?;
                match (parsed, decoded) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(RepodataError::Compression(format!("xz: {e}"))),
                    // A decoding error explains a parsing one better than the reverse.
                    (Err(p), Err(e)) if !matches!(e, lzma_rs::error::Error::IoError(_)) => Err(RepodataError::Compression(format!("xz: {e} ({p})"))),
                    (Err(p), _) => Err(p),
                }
            })
        }
        Compression::Bzip2 => Err(RepodataError::Compression("bzip2-compressed metadata is not supported (only gzip, zstd, xz or none)".into())),
        Compression::Zchunk => Err(RepodataError::Compression("zchunk-compressed metadata is not supported (only gzip, zstd, xz or none)".into())),
        Compression::Unknown => Err(RepodataError::Compression(format!(
            "unknown compression (first bytes {}); only gzip, zstd, xz or none are supported",
            hex::encode(&head[..head.len().min(6)])
        ))),
    }
}

/// Reads a (compressed) `primary.xml` into its packages.
pub fn read_primary<R: BufRead + Send>(input: R) -> Result<Vec<Package>, RepodataError> {
    with_decompressed(input, |r| {
        let mut out = Vec::new();
        parse_primary(r, |p| out.push(p))?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::sources::fetch::Algo;

    use super::*;
    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1795424304</revision>
  <tags><content>binary-x86_64</content></tags>
  <data type="primary">
    <checksum type="sha256">ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6</checksum>
    <open-checksum type="sha256">ff417ec8f43a4d46493ca9f2f618bee646ad89f699eebe84a72295ca08f77335</open-checksum>
    <location href="repodata/ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6-primary.xml.gz"/>
    <timestamp>1795424304</timestamp>
    <size>532</size>
    <open-size>1017</open-size>
  </data>
  <data type="primary_zck">
    <checksum type="sha256">aaaa</checksum>
    <open-checksum type="sha256">bbbb</open-checksum>
    <header-checksum type="sha256">cccc</header-checksum>
    <location href="repodata/aaaa-primary.xml.zck"/>
    <size>100</size>
    <header-size>10</header-size>
  </data>
  <data type="group">
    <checksum type="sha">0123456789abcdef0123456789abcdef01234567</checksum>
    <location xml:base="https://other.example/x/" href="repodata/comps &amp; more.xml"/>
  </data>
</repomd>
"#;

    #[test]
    fn repomd_parses() {
        let d = parse_repomd(REPOMD.as_bytes()).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].kind, "primary");
        assert_eq!(d[0].href, "repodata/ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6-primary.xml.gz");
        assert_eq!(d[0].checksum, Checksum::sha256("ca4c0c242c6f24860b7715969112d6149b273e03885ad7c4ffce83903963c5d6"));
        assert_eq!(d[0].size, Some(532));
        assert_eq!(d[0].base, None);
        // The header checksum of zchunk data is not the file's.
        assert_eq!(d[1].checksum.hex, "aaaa");
        assert_eq!(d[2].checksum.algo, Algo::Sha1);
        assert_eq!(d[2].href, "repodata/comps & more.xml");
        assert_eq!(d[2].base.as_deref(), Some("https://other.example/x/"));
        assert_eq!(d[2].size, None);
    }

    #[test]
    fn repomd_errors() {
        assert!(parse_repomd(b"").unwrap_err().to_string().contains("empty"));
        assert!(parse_repomd(b"<metadata/>").unwrap_err().to_string().contains("<metadata>"));
        assert!(parse_repomd(b"<repomd><data type=\"x\"><location href=\"a\"/></data></repomd>").unwrap_err().to_string().contains("no checksum"));
        assert!(
            parse_repomd(b"<repomd><data type=\"x\"><checksum type=\"crc32\">00</checksum><location href=\"a\"/></data></repomd>")
                .unwrap_err()
                .to_string()
                .contains("crc32")
        );
        assert!(parse_repomd(b"<repomd><data type=\"x\"><checksum type=\"sha256\">00</checksum></data>").is_err());
    }

    fn primary_xml(n: usize) -> String {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"1\">\n",
        );
        for i in 0..n {
            s.push_str(&format!(
                r#"<package type="rpm">
  <name>pkg{i}</name>
  <arch>x86_64</arch>
  <version epoch="{e}" ver="1.{i}" rel="1.el9"/>
  <checksum type="sha256" pkgid="YES">{sum:064x}</checksum>
  <summary>Package &lt;{i}&gt; &amp; co</summary>
  <description>test</description>
  <packager></packager>
  <url></url>
  <time file="1795424304" build="1795424304"/>
  <size package="{size}" installed="3" archive="260"/>
  <location href="Packages/p/pkg{i}-1.{i}-1.el9.x86_64.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:sourcerpm>pkg{i}-1.0-1.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="5921"/>
    <rpm:provides>
      <rpm:entry name="name" flags="EQ" epoch="0" ver="9" rel="9"/>
    </rpm:provides>
    <file>/usr/bin/name</file>
    <file type="dir">/usr/share/arch</file>
  </format>
</package>
"#,
                e = i % 3,
                sum = i,
                size = 1000 + i
            ));
        }
        s.push_str("</metadata>\n");
        s
    }

    #[test]
    fn primary_parses() {
        let pk = read_primary(primary_xml(3).as_bytes()).unwrap();
        assert_eq!(pk.len(), 3);
        let p = &pk[2];
        assert_eq!(p.name, "pkg2");
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.evr, Evr { epoch: "2".into(), version: "1.2".into(), release: "1.el9".into() });
        assert_eq!(p.href, "Packages/p/pkg2-1.2-1.el9.x86_64.rpm");
        assert_eq!(p.checksum, Checksum::sha256(&format!("{:064x}", 2)));
        assert_eq!(p.size, Some(1002));
        assert_eq!(p.nevra(), "pkg2-2:1.2-1.el9.x86_64");
        assert_eq!(pk[0].nevra(), "pkg0-1.0-1.el9.x86_64");
    }

    #[test]
    fn primary_errors() {
        let bad = primary_xml(1).replace("<checksum type=\"sha256\"", "<checksum type=\"crc\"");
        assert!(read_primary(bad.as_bytes()).unwrap_err().to_string().contains("package pkg0"));
        let bad = primary_xml(1).replace("<location href=\"Packages/p/pkg0-1.0-1.el9.x86_64.rpm\"/>", "");
        assert!(read_primary(bad.as_bytes()).unwrap_err().to_string().contains("no location"));
        assert!(read_primary(&b"<repomd/>"[..]).unwrap_err().to_string().contains("not a primary.xml"));
        let truncated = &primary_xml(2)[..900];
        let e = read_primary(truncated.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("ends early") || e.contains("invalid primary.xml"), "{e}");
        let truncated = &primary_xml(2)[..primary_xml(2).rfind("</package>").unwrap()];
        assert!(read_primary(truncated.as_bytes()).unwrap_err().to_string().contains("ends early (after 1 packages)"));
        assert!(parse_repomd(&REPOMD.as_bytes()[..600]).unwrap_err().to_string().contains("ends early"));
    }

    #[test]
    fn primary_decompresses_gzip_zstd_xz() {
        let xml = primary_xml(2000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(xml.as_bytes(), 3).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut xml.as_bytes(), &mut xz).unwrap();
        for (what, bytes) in [("plain", xml.as_bytes()), ("gzip", &gz[..]), ("zstd", &zst[..]), ("xz", &xz[..])] {
            let pk = read_primary(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(pk.len(), 2000, "{what}");
            assert_eq!(pk[1999].name, "pkg1999", "{what}");
        }
        assert_eq!(detect_compression(&gz), Compression::Gzip);
        assert_eq!(detect_compression(&zst), Compression::Zstd);
        assert_eq!(detect_compression(&xz), Compression::Xz);
        // A corrupt xz stream fails rather than hanging.
        let mut bad = xz.clone();
        let mid = bad.len() / 2;
        bad.truncate(mid);
        assert!(read_primary(&bad[..]).is_err());
        let mut bz = b"BZh91AY&SY".to_vec();
        bz.extend([0u8; 20]);
        assert!(read_primary(&bz[..]).unwrap_err().to_string().contains("bzip2"));
        assert!(read_primary(&b"\x00\x01\x02garbage"[..]).unwrap_err().to_string().contains("unknown compression"));
    }
}

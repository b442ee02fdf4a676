//! Encodings, hashes and quoting: `b64encode`/`b64decode`, `hash`, `checksum`/`sha1`, `md5`,
//! `to_uuid`, `quote`, `urlsplit` and `urldecode`.

use base64::Engine as _;
use minijinja::{Error, Value};

use super::{Args, Bound, bind};
use crate::pyfmt::py_str;

fn encode_text(b: &Bound, s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    let enc = encoding.to_ascii_lowercase().replace('_', "-");
    Ok(match enc.as_str() {
        "utf-8" | "utf8" | "u8" => s.as_bytes().to_vec(),
        "utf-16-le" | "utf-16le" => s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        "utf-16-be" | "utf-16be" => s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
        "utf-16" | "utf16" => [0xff, 0xfe].into_iter().chain(s.encode_utf16().flat_map(|u| u.to_le_bytes())).collect(),
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "ascii" | "us-ascii" => {
            let max = if enc.contains("ascii") { 0x7f } else { 0xff };
            let mut out = Vec::with_capacity(s.len());
            for c in s.chars() {
                if c as u32 > max {
                    return Err(b.fail(format!("'{encoding}' codec can't encode character {c:?}")));
                }
                out.push(c as u8);
            }
            out
        }
        _ => return Err(b.fail(format!("unknown encoding: {encoding}"))),
    })
}

fn decode_text(b: &Bound, bytes: &[u8], encoding: &str) -> Result<String, Error> {
    let enc = encoding.to_ascii_lowercase().replace('_', "-");
    let utf16 = |le: bool, bytes: &[u8]| {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| {
                let pair = [c[0], *c.get(1).unwrap_or(&0)];
                if le { u16::from_le_bytes(pair) } else { u16::from_be_bytes(pair) }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    Ok(match enc.as_str() {
        "utf-8" | "utf8" | "u8" => String::from_utf8_lossy(bytes).into_owned(),
        "utf-16-le" | "utf-16le" => utf16(true, bytes),
        "utf-16-be" | "utf-16be" => utf16(false, bytes),
        "utf-16" | "utf16" => match bytes {
            [0xff, 0xfe, rest @ ..] => utf16(true, rest),
            [0xfe, 0xff, rest @ ..] => utf16(false, rest),
            _ => utf16(true, bytes),
        },
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "ascii" | "us-ascii" => bytes.iter().map(|&c| c as char).collect(),
        _ => return Err(b.fail(format!("unknown encoding: {encoding}"))),
    })
}

fn b64_engine(urlsafe: bool) -> base64::engine::GeneralPurpose {
    let cfg = base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical);
    let alphabet = if urlsafe { &base64::alphabet::URL_SAFE } else { &base64::alphabet::STANDARD };
    base64::engine::GeneralPurpose::new(alphabet, cfg)
}

pub(super) fn f_b64encode(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "b64encode", args, &["string", "encoding", "urlsafe"], false, false)?;
    let s = py_str(b.defined("string")?);
    let bytes = encode_text(&b, &s, &b.text("encoding", "utf-8")?)?;
    Ok(Value::from(b64_engine(b.truthy("urlsafe", false)?).encode(bytes)))
}

pub(super) fn f_b64decode(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "b64decode", args, &["string", "encoding", "urlsafe"], false, false)?;
    let s = py_str(b.defined("string")?);
    let urlsafe = b.truthy("urlsafe", false)?;
    // Python drops characters outside the alphabet before decoding.
    let (x, y) = if urlsafe { ('-', '_') } else { ('+', '/') };
    let clean: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == x || *c == y || *c == '=').collect();
    let data = clean.trim_end_matches('=');
    let pad = data.len() % 4;
    if pad == 1 {
        return Err(b.fail(format!("Invalid base64-encoded string: number of data characters ({}) cannot be 1 more than a multiple of 4", data.len())));
    }
    let have_pad = clean.len() - data.len();
    if pad != 0 && have_pad < 4 - pad || data.contains('=') {
        return Err(b.fail("Incorrect padding"));
    }
    let padded = format!("{data}{}", "=".repeat(if pad == 0 { 0 } else { 4 - pad }));
    let bytes = b64_engine(urlsafe).decode(padded).map_err(|e| b.fail(e))?;
    Ok(Value::from(decode_text(&b, &bytes, &b.text("encoding", "utf-8")?)?))
}

/// The hex digest of `data` with one of md5, sha1, sha224, sha256, sha384, sha512.
pub fn hexdigest(hashtype: &str, data: &[u8]) -> Option<String> {
    airlock_base::digest::Algorithm::from_name(hashtype).map(|a| airlock_base::digest::hex_digest(a, data))
}

pub(super) fn f_hash(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "hash", args, &["data", "hashtype"], false, false)?;
    let data = py_str(b.defined("data")?);
    let t = b.text("hashtype", "sha1")?;
    hexdigest(&t.to_ascii_lowercase(), data.as_bytes()).map(Value::from).ok_or_else(|| b.fail(format!("unsupported hash type {t}")))
}

pub(super) fn f_sha1(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "sha1", args, &["data"], false, false)?;
    Ok(Value::from(hexdigest("sha1", py_str(b.defined("data")?).as_bytes()).unwrap_or_default()))
}

pub(super) fn f_md5(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "md5", args, &["data"], false, false)?;
    Ok(Value::from(hexdigest("md5", py_str(b.defined("data")?).as_bytes()).unwrap_or_default()))
}

pub(super) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim().trim_start_matches("urn:").trim_start_matches("uuid:");
    let s = s.trim_matches(|c| c == '{' || c == '}');
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    if hexs.len() != 32 {
        return None;
    }
    let bytes = hex::decode(hexs).ok()?;
    bytes.try_into().ok()
}

/// Python's `uuid.uuid5(namespace, name)` as text.
pub fn uuid5(namespace: &[u8; 16], name: &str) -> String {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(namespace);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x50;
    u[8] = (u[8] & 0x3f) | 0x80;
    let x = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

pub(super) fn f_to_uuid(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "to_uuid", args, &["string", "namespace"], false, false)?;
    let s = py_str(b.defined("string")?);
    let ns = b.text("namespace", "361E6D51-FAEC-444A-9079-341386DA8E2E")?;
    let nsb = parse_uuid(&ns).ok_or_else(|| b.fail(format!("Invalid value '{ns}' for 'namespace': badly formed hexadecimal UUID string")))?;
    Ok(Value::from(uuid5(&nsb, &s)))
}

/// Python's `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

pub(super) fn f_quote(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "quote", args, &["a"], false, false)?;
    let a = b.defined("a")?;
    Ok(Value::from(if a.is_none() { "''".to_string() } else { shell_quote(&py_str(a)) }))
}

/// The parts of a URL as Python's `urllib.parse.urlsplit` gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlParts {
    pub scheme: String,
    pub netloc: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
}

/// Why [`urlsplit`] refuses a URL, in Python's words; each variant holds the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlSplitError {
    /// A `[` without its `]` (or the other way round) in the network location.
    #[error("Invalid IPv6 URL")]
    Ipv6 { url: String },
    #[error("Port could not be cast to integer value as '{port}'")]
    PortNotInteger { url: String, port: String },
    #[error("Port out of range 0-65535")]
    PortOutOfRange { url: String, port: String },
}

/// Python's `urllib.parse.urlsplit` (with `username`, `password`, `hostname` and `port`).
pub fn urlsplit(url: &str) -> Result<UrlParts, UrlSplitError> {
    let given = url;
    let mut url: String = url.trim_start_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect();
    let mut scheme = String::new();
    if let Some(i) = url.find(':') {
        let cand = &url[..i];
        if i > 0 && cand.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && cand.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            scheme = cand.to_ascii_lowercase();
            url = url[i + 1..].to_string();
        }
    }
    let mut netloc = String::new();
    if let Some(rest) = url.strip_prefix("//") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        netloc = rest[..end].to_string();
        url = rest[end..].to_string();
        if netloc.contains('[') != netloc.contains(']') {
            return Err(UrlSplitError::Ipv6 { url: given.to_string() });
        }
    }
    let mut fragment = String::new();
    if let Some(i) = url.find('#') {
        fragment = url[i + 1..].to_string();
        url.truncate(i);
    }
    let mut query = String::new();
    if let Some(i) = url.find('?') {
        query = url[i + 1..].to_string();
        url.truncate(i);
    }
    let (userinfo, hostport) = match netloc.rfind('@') {
        Some(i) => (Some(&netloc[..i]), &netloc[i + 1..]),
        None => (None, netloc.as_str()),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((a, p)) => (Some(a.to_string()), Some(p.to_string())),
            None => (Some(u.to_string()), None),
        },
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, after)) => (h.to_string(), after.split_once(':').map(|(_, p)| p.to_string())),
            None => (rest.to_string(), None),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (hostport.to_string(), None),
        }
    };
    let hostname = if host.is_empty() { None } else { Some(host.to_lowercase()) };
    let port = match port {
        None => None,
        Some(p) if p.is_empty() => None,
        Some(p) => {
            if !p.chars().all(|c| c.is_ascii_digit()) {
                return Err(UrlSplitError::PortNotInteger { url: given.to_string(), port: p });
            }
            let out_of_range = || UrlSplitError::PortOutOfRange { url: given.to_string(), port: p.clone() };
            let n: u64 = p.parse().map_err(|_| out_of_range())?;
            if n > 65535 {
                return Err(out_of_range());
            }
            Some(n as u16)
        }
    };
    Ok(UrlParts { scheme, netloc, path: url, query, fragment, username, password, hostname, port })
}

pub(super) fn f_urlsplit(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "urlsplit", args, &["value", "query"], false, false)?;
    let url = b.text("value", "")?;
    let p = urlsplit(&url).map_err(|e| b.fail(e))?;
    let opt = |o: Option<String>| o.map_or(Value::from(()), Value::from);
    let fields: Vec<(&str, Value)> = vec![
        ("fragment", Value::from(p.fragment)),
        ("hostname", opt(p.hostname)),
        ("netloc", Value::from(p.netloc)),
        ("password", opt(p.password)),
        ("path", Value::from(p.path)),
        ("port", p.port.map_or(Value::from(()), Value::from)),
        ("query", Value::from(p.query)),
        ("scheme", Value::from(p.scheme)),
        ("username", opt(p.username)),
    ];
    let query = b.text("query", "")?;
    if query.is_empty() {
        return Ok(Value::from_pairs(fields));
    }
    match fields.into_iter().find(|(k, _)| *k == query) {
        Some((_, v)) => Ok(v),
        None => Err(b.fail(format!("urlsplit: unknown URL component: {query}"))),
    }
}

/// Python's `urllib.parse.unquote_plus`.
pub fn unquote_plus(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit()) {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn f_urldecode(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "urldecode", args, &["string"], false, false)?;
    Ok(Value::from(unquote_plus(&b.text("string", "")?)))
}

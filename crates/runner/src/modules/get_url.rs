//! The `get_url` module: downloads a file over HTTP(S) (or copies a `file://` URL), streaming
//! into a temporary file beside the destination, checking the checksum, then renaming it
//! into place.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use super::args::{bool_or, check_known, opt_int, opt_str};
use super::utils::files::{self, FileAttrs, HASH_ALGORITHMS, Hasher, expand_path};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};
use airlock_base::http::{self, ClientOptions, HttpRequest, Redirects};

const ARGS: &[&str] = &[
    "url",
    "dest",
    "backup",
    "checksum",
    "force",
    "timeout",
    "headers",
    "tmp_dest",
    "url_username",
    "username",
    "url_password",
    "password",
    "force_basic_auth",
    "validate_certs",
    "use_proxy",
    "ca_path",
    "http_agent",
    "decompress",
    "use_netrc",
    "unredirected_headers",
    "follow_redirects",
];

/// What a download needs besides the URL.
#[derive(Clone, Debug, Default)]
pub(crate) struct FetchOptions {
    pub client: ClientOptions,
    pub headers: Vec<(String, String)>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub force_basic_auth: bool,
    pub follow: Redirects,
}

impl FetchOptions {
    /// The url_* arguments shared by get_url and unarchive.
    pub(crate) fn from_args(args: &Args, default_timeout: i64) -> Result<Self, ModuleFail> {
        let timeout = opt_int(args, "timeout")?.unwrap_or(default_timeout);
        Ok(FetchOptions {
            client: ClientOptions {
                timeout: (timeout > 0).then(|| Duration::from_secs(timeout as u64)),
                validate_certs: bool_or(args, "validate_certs", true)?,
                follow_redirects: true,
                use_proxy: bool_or(args, "use_proxy", true)?,
                user_agent: opt_str(args, "http_agent")?.unwrap_or_else(|| "ansible-httpget".into()),
                env: super::command::task_environment(args),
                ca_paths: opt_str(args, "ca_path")?.map(|p| super::utils::files::expand_user(&p).into()).into_iter().collect(),
            },
            headers: parse_headers(args)?,
            username: opt_str(args, "url_username")?.or(opt_str(args, "username")?),
            password: opt_str(args, "url_password")?.or(opt_str(args, "password")?),
            force_basic_auth: bool_or(args, "force_basic_auth", false)?,
            follow: Redirects::parse(opt_str(args, "follow_redirects")?.as_deref(), Redirects::Safe).map_err(|e| ModuleFail::new(e.to_string()))?,
        })
    }

    fn request(&self, method: &str, url: &str) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: self.headers.clone(),
            body: None,
            username: self.username.clone(),
            password: self.password.clone(),
            force_basic_auth: self.force_basic_auth,
            follow: self.follow,
        }
    }
}

/// The `headers` argument: a mapping, or `k=v, k2=v2` / `k:v` text.
pub(crate) fn parse_headers(args: &Args) -> Result<Vec<(String, String)>, ModuleFail> {
    match args.get("headers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => s
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.split_once('=')
                    .or_else(|| part.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| ModuleFail::new(format!("argument 'headers' is of type str and we were unable to convert to dict: {s}")))
            })
            .collect(),
        Some(v) => Err(ModuleFail::new(format!("argument 'headers' is of type {} and we were unable to convert to dict", super::args::type_name(v)))),
    }
}

/// A finished download in a temporary file.
pub(crate) struct Fetched {
    pub tmp: tempfile::NamedTempFile,
    pub status: u16,
    pub msg: String,
    pub final_url: String,
    pub headers: HeaderMap,
    pub size: u64,
    pub sha1: String,
    pub md5: String,
    /// The digest with the algorithm asked for, if any.
    pub digest: Option<String>,
}

fn is_file_url(url: &str) -> bool {
    url.len() >= 7 && url[..7].eq_ignore_ascii_case("file://")
}

fn file_url_path(url: &str) -> Result<PathBuf, ModuleFail> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| ModuleFail::new(format!("Request failed: <urlopen error invalid file URL {url}>")))
}

/// Failure data for a request that did not give 200.
fn request_failed(url: &str, status: u16, response: String) -> ModuleFail {
    ModuleFail::new(format!("Request failed: {response} ({})", http::mask_url(url)))
        .with("status_code", status)
        .with("response", response)
        .with("url", http::mask_url(url))
}

/// Downloads `url` into a new temporary file in `tmp_dir`, hashing as it goes and showing a
/// progress bar. The file is deleted if anything fails.
pub(crate) fn fetch_to_temp(url: &str, opts: &FetchOptions, tmp_dir: &Path, algo: Option<&str>, ctx: &ModuleContext) -> Result<Fetched, ModuleFail> {
    let name = http::url_filename(url);
    let mut tmp =
        files::temp_file_for(tmp_dir, &name).map_err(|e| ModuleFail::new(format!("failed to create temporary content file in {}: {e}", tmp_dir.display())))?;
    let (mut reader, status, headers, final_url, len): (Box<dyn Read>, u16, HeaderMap, String, Option<u64>) = if is_file_url(url) {
        let p = file_url_path(url)?;
        let f = fs::File::open(&p).map_err(|e| ModuleFail::new(format!("Request failed: <urlopen error {e}: {}>", p.display())).with("url", url))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), 200, HeaderMap::new(), url.to_string(), len)
    } else {
        let resp = http::send(&opts.client, &opts.request("GET", url))
            .map_err(|m| ModuleFail::new(format!("{m} ({})", http::mask_url(url))).with("url", http::mask_url(url)))?;
        let status = resp.status();
        if status.as_u16() != 200 {
            return Err(request_failed(url, status.as_u16(), http::http_error_msg(status)));
        }
        let headers = resp.headers().clone();
        let final_url = resp.url().to_string();
        let len = headers.get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        (Box::new(resp), 200, headers, final_url, len)
    };
    let msg = if is_file_url(url) { format!("OK ({} bytes)", len.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into())) } else { http::ok_msg(&headers) };
    let pb = ctx.progress.bar(len.unwrap_or(0), &name, true);
    let mut sha1 = Hasher::named("sha1").expect("sha1");
    let mut md5 = Hasher::named("md5").expect("md5");
    let mut other = algo.filter(|a| *a != "sha1" && *a != "md5").and_then(Hasher::named);
    let copied = http::copy_body(&mut reader, tmp.as_file_mut(), |chunk| {
        sha1.update(chunk);
        md5.update(chunk);
        if let Some(h) = other.as_mut() {
            h.update(chunk);
        }
        pb.inc(chunk.len() as u64);
    });
    pb.finish_and_clear();
    // Ansible's words for any failure while copying the body, then what really happened.
    let failed =
        |why: String| ModuleFail::new(format!("failed to create temporary content file: {why} ({})", http::mask_url(url))).with("url", http::mask_url(url));
    let size = match copied {
        Ok(n) => n,
        Err((http::CopyError::Read(e), got)) => return Err(failed(http::describe_body_error(&e, opts.client.timeout, got, len))),
        Err((http::CopyError::Write(e), _)) => return Err(failed(e.to_string())),
    };
    tmp.as_file_mut().flush().and_then(|_| tmp.as_file().sync_all()).map_err(|e| failed(e.to_string()))?;
    let encoded = headers.get(reqwest::header::CONTENT_ENCODING).is_some();
    if let Some(cl) = len
        && cl != size
        && !encoded
    {
        return Err(ModuleFail::new(format!(
            "Incomplete read of {}: expected {cl} bytes, got {size}; failed to read remaining {} bytes",
            http::mask_url(url),
            cl.saturating_sub(size)
        )));
    }
    let sha1 = sha1.hex();
    let md5 = md5.hex();
    let digest = match algo {
        Some("sha1") => Some(sha1.clone()),
        Some("md5") => Some(md5.clone()),
        Some(_) => other.map(Hasher::hex),
        None => None,
    };
    Ok(Fetched { tmp, status, msg, final_url, headers, size, sha1, md5, digest })
}

/// A HEAD request for check mode: status, headers, final URL.
fn probe(url: &str, opts: &FetchOptions) -> Result<(String, HeaderMap, String), ModuleFail> {
    if is_file_url(url) {
        let p = file_url_path(url)?;
        let m = fs::metadata(&p).map_err(|e| ModuleFail::new(format!("Request failed: <urlopen error {e}: {}>", p.display())))?;
        return Ok((format!("OK ({} bytes)", m.len()), HeaderMap::new(), url.to_string()));
    }
    let resp = http::send(&opts.client, &opts.request("HEAD", url))
        .map_err(|m| ModuleFail::new(format!("{m} ({})", http::mask_url(url))).with("url", http::mask_url(url)))?;
    if resp.status().as_u16() != 200 {
        return Err(request_failed(url, resp.status().as_u16(), http::http_error_msg(resp.status())));
    }
    Ok((http::ok_msg(resp.headers()), resp.headers().clone(), resp.url().to_string()))
}

/// Fetches a small text (a checksum file) into memory.
fn fetch_text(url: &str, opts: &FetchOptions) -> Result<String, ModuleFail> {
    if is_file_url(url) {
        let p = file_url_path(url)?;
        return fs::read_to_string(&p).map_err(|e| ModuleFail::new(format!("Request failed: <urlopen error {e}: {}>", p.display())));
    }
    let resp = http::send(&opts.client, &opts.request("GET", url)).map_err(|m| ModuleFail::new(format!("{m} ({})", http::mask_url(url))))?;
    let status = resp.status();
    if status.as_u16() != 200 {
        return Err(request_failed(url, status.as_u16(), http::http_error_msg(status)));
    }
    resp.text().map_err(|e| ModuleFail::new(format!("Request failed: {} ({})", http::describe_error(&e), http::mask_url(url))))
}

/// get_url's `parse_digest_lines`: (digest, filename) pairs from a checksum file.
pub(crate) fn parse_digest_lines(filename: &str, text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 && lines[0].split_whitespace().count() == 1 {
        return vec![(lines[0].trim().to_string(), filename.to_string())];
    }
    let bsd = regex::Regex::new(r"^(\w+) ?\((?P<path>.+)\) ?= (?P<digest>[\w.]+)$").expect("regex");
    let gnu = regex::Regex::new(r"^(?P<digest>[\w.]+)\s+(\*|\./|\.)?(?P<path>.+)$").expect("regex");
    let mut out = Vec::new();
    for line in lines {
        if let Some(c) = bsd.captures(line) {
            out.push((c["digest"].to_string(), c["path"].to_string()));
        } else if let Some(c) = gnu.captures(line) {
            out.push((c["digest"].to_string(), c["path"].trim_start_matches(['.', '/']).to_string()));
        }
    }
    out
}

fn is_url(s: &str) -> bool {
    match reqwest::Url::parse(s) {
        Ok(u) => matches!(u.scheme(), "http" | "https" | "ftp" | "file"),
        Err(_) => false,
    }
}

/// Parses `algorithm:checksum` (the checksum may be a URL of a checksum file).
fn parse_checksum(spec: &str, url: &str, opts: &FetchOptions) -> Result<(String, String), ModuleFail> {
    let Some((algo, value)) = spec.split_once(':') else {
        return Err(ModuleFail::new("The checksum parameter has to be in format <algorithm>:<checksum>"));
    };
    let algo = algo.trim().to_ascii_lowercase();
    if !HASH_ALGORITHMS.contains(&algo.as_str()) {
        return Err(ModuleFail::new(format!("Could not hash file with algorithm '{algo}'. Available algorithms: {}", HASH_ALGORITHMS.join(", "))));
    }
    let mut value = value.to_string();
    if is_url(&value) {
        let text = fetch_text(&value, opts)?;
        let filename = http::url_filename(url);
        let found = parse_digest_lines(&filename, &text).into_iter().find(|(_, f)| *f == filename).map(|(d, _)| d);
        match found {
            Some(d) => value = d,
            None => {
                return Err(ModuleFail::new(format!("Unable to find a checksum for file '{filename}' in '{}'", http::mask_url(&value))));
            }
        }
    }
    let cleaned: String = value.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect::<String>().to_lowercase();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ModuleFail::new("The checksum format is invalid"));
    }
    Ok((algo, cleaned))
}

fn writable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: c is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Renames `tmp` onto `dest`; across file systems, copies into a temporary file beside
/// `dest` first so the final step is still a rename.
pub(crate) fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), ModuleFail> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match tmp.persist(dest) {
        Ok(_) => Ok(()),
        Err(e) if e.error.raw_os_error() == Some(libc::EXDEV) => {
            let src = e.file;
            let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut local = files::temp_file_for(dir, &name).map_err(|e| ModuleFail::new(format!("failed to copy to {}: {e}", dest.display())))?;
            let mut r = src.reopen().map_err(|e| ModuleFail::new(format!("failed to copy to {}: {e}", dest.display())))?;
            io::copy(&mut r, local.as_file_mut()).map_err(|e| ModuleFail::new(format!("failed to copy to {}: {e}", dest.display())))?;
            let perms = fs::metadata(src.path()).map(|m| m.permissions());
            if let Ok(p) = perms {
                let _ = fs::set_permissions(local.path(), p);
            }
            local.persist(dest).map_err(|e| ModuleFail::new(format!("failed to move into {}: {}", dest.display(), e.error)))?;
            Ok(())
        }
        Err(e) => Err(ModuleFail::new(format!("failed to move into {}: {}", dest.display(), e.error))),
    }
}

/// Runs `get_url`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    let allowed: Vec<&str> = ARGS.iter().chain(files::FILE_COMMON_ARGS).copied().collect();
    check_known(args, "get_url", &allowed)?;
    let url = opt_str(args, "url")?;
    let dest_s = opt_str(args, "dest")?;
    let missing: Vec<&str> = [("url", &url), ("dest", &dest_s)].iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
    if !missing.is_empty() {
        return Err(ModuleFail::new(format!("missing required arguments: {}", missing.join(", "))));
    }
    let url = url.unwrap_or_default();
    let mut dest = expand_path(&dest_s.unwrap_or_default());
    let backup = bool_or(args, "backup", false)?;
    let force = bool_or(args, "force", false)?;
    let checksum_spec = opt_str(args, "checksum")?.unwrap_or_default();
    let tmp_dest = opt_str(args, "tmp_dest")?.filter(|s| !s.is_empty()).map(|s| expand_path(&s));
    let attrs = FileAttrs::from_args(args)?;
    let opts = FetchOptions::from_args(args, 10)?;
    let masked = http::mask_url(&url);

    let mut result = Map::new();
    result.insert("changed".into(), false.into());
    result.insert("checksum_dest".into(), Value::Null);
    result.insert("checksum_src".into(), Value::Null);
    result.insert("dest".into(), dest.display().to_string().into());
    result.insert("elapsed".into(), 0.into());
    result.insert("url".into(), masked.clone().into());
    let fail = |mut f: ModuleFail, result: &Map<String, Value>| {
        for (k, v) in result {
            f.data.entry(k.clone()).or_insert(v.clone());
        }
        f
    };

    if url.starts_with("ftp://") || url.starts_with("FTP://") {
        return Err(fail(ModuleFail::new(format!("ftp URLs are not supported: {masked}")), &result));
    }

    let dest_is_dir = dest.is_dir();
    let checksum = if checksum_spec.is_empty() { None } else { Some(parse_checksum(&checksum_spec, &url, &opts).map_err(|f| fail(f, &result))?) };

    // An existing file is kept unless forced, or unless its checksum does not match.
    if !dest_is_dir && !force && fs::symlink_metadata(&dest).is_ok() {
        let mismatch = match &checksum {
            Some((algo, expected)) => {
                let actual = files::file_digest(&dest, algo)
                    .map_err(|e| fail(ModuleFail::new(format!("Destination {} is not readable: {e}", dest.display())), &result))?;
                &actual != expected
            }
            None => false,
        };
        if !mismatch {
            let changed = attrs.apply(&dest, ctx.check_mode)?;
            let msg = if changed { "file already exists but file attributes changed" } else { "file already exists" };
            result.insert("changed".into(), changed.into());
            result.extend(files::path_info(&dest));
            let mut r = ModuleResult::changed(changed).with_msg(msg);
            r.data = result;
            return Ok(r);
        }
    }

    // Where the file goes, and where the temporary file is made.
    let dest_dir = if dest_is_dir {
        dest.clone()
    } else {
        dest.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    };
    if !dest_dir.exists() {
        return Err(fail(ModuleFail::new(format!("Destination {} does not exist", dest_dir.display())), &result));
    }
    if !ctx.check_mode && !writable(&dest_dir) {
        return Err(fail(ModuleFail::new(format!("Destination {} is not writable", dest_dir.display())), &result));
    }
    let tmp_dir = match &tmp_dest {
        Some(t) if t.is_dir() => t.clone(),
        Some(t) if t.exists() => {
            return Err(fail(ModuleFail::new(format!("{} is a file but should be a directory.", t.display())), &result));
        }
        Some(t) => return Err(fail(ModuleFail::new(format!("{} directory does not exist.", t.display())), &result)),
        None => dest_dir.clone(),
    };

    let start = Instant::now();
    if ctx.check_mode {
        let (msg, headers, final_url) = probe(&url, &opts).map_err(|f| fail(f, &result))?;
        if dest_is_dir {
            let name = http::disposition_filename(&headers).unwrap_or_else(|| http::url_filename(&final_url));
            dest = dest.join(name);
            result.insert("dest".into(), dest.display().to_string().into());
        }
        if dest.is_file()
            && let Ok(s) = files::file_digest(&dest, "sha1")
        {
            result.insert("checksum_dest".into(), s.into());
        }
        result.insert("elapsed".into(), start.elapsed().as_secs().into());
        result.insert("changed".into(), true.into());
        let mut r = ModuleResult::changed(true).with_msg(msg);
        r.data = result;
        return Ok(r);
    }

    let algo = checksum.as_ref().map(|(a, _)| a.as_str());
    let fetched = fetch_to_temp(&url, &opts, &tmp_dir, algo, ctx).map_err(|f| fail(f, &result))?;
    result.insert("elapsed".into(), start.elapsed().as_secs().into());
    if dest_is_dir {
        let name = http::disposition_filename(&fetched.headers).unwrap_or_else(|| http::url_filename(&fetched.final_url));
        dest = dest.join(name);
        result.insert("dest".into(), dest.display().to_string().into());
    }
    result.insert("checksum_src".into(), fetched.sha1.clone().into());

    if let Some((_, expected)) = &checksum {
        let actual = fetched.digest.clone().unwrap_or_default();
        if &actual != expected {
            drop(fetched.tmp);
            return Err(fail(ModuleFail::new(format!("The checksum for {} did not match {expected}; it was {actual}.", dest.display())), &result));
        }
    }

    let dest_exists = fs::symlink_metadata(&dest).is_ok();
    if dest_exists {
        if dest.is_dir() {
            return Err(fail(ModuleFail::new(format!("Destination {} is a directory", dest.display())), &result));
        }
        let sum =
            files::file_digest(&dest, "sha1").map_err(|e| fail(ModuleFail::new(format!("Destination {} is not readable: {e}", dest.display())), &result))?;
        result.insert("checksum_dest".into(), sum.into());
    }

    let mut changed = false;
    if result["checksum_src"] != result["checksum_dest"] {
        if backup && dest_exists {
            let b = files::backup_file(&dest).map_err(|e| fail(ModuleFail::new(format!("Could not make a backup of {}: {e}", dest.display())), &result))?;
            result.insert("backup_file".into(), b.display().to_string().into());
        }
        files::match_dest_perms(fetched.tmp.path(), &dest)
            .map_err(|e| fail(ModuleFail::new(format!("failed to set permissions on the download for {}: {e}", dest.display())), &result))?;
        persist(fetched.tmp, &dest).map_err(|f| fail(f, &result))?;
        changed = true;
    }
    changed |= attrs.apply(&dest, false).map_err(|f| fail(f, &result))?;
    result.insert("changed".into(), changed.into());
    result.insert("md5sum".into(), fetched.md5.into());
    result.insert("status_code".into(), fetched.status.into());
    result.extend(files::path_info(&dest));
    let _ = fetched.size;
    let mut r = ModuleResult::changed(changed).with_msg(fetched.msg);
    r.data = result;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use airlock_base::http::testserver::{Canned, serve};
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    const BODY: &[u8] = b"hello world\n";
    const SHA256: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

    fn server() -> airlock_base::http::testserver::Server {
        serve(vec![
            ("/hello.txt", Canned::ok(BODY, "text/plain")),
            ("/dl", Canned::ok(BODY, "application/octet-stream").header("Content-Disposition", "attachment; filename=\"named.bin\"")),
            ("/SHA256SUMS", Canned::ok(format!("{SHA256}  hello.txt\n0000  other.txt\n").as_bytes(), "text/plain")),
            ("/moved", Canned::redirect("/hello.txt")),
            ("/auth/hello.txt", Canned::ok(BODY, "text/plain")),
        ])
    }

    #[test]
    fn downloads_and_is_idempotent() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let dest = d.path().join("h.txt");
        let a = args(json!({"url": format!("{}/hello.txt", srv.base), "dest": dest, "mode": "0600"}));
        let r = run(&a, &ctx).unwrap();
        assert!(r.changed, "{:?}", r);
        assert_eq!(r.msg.as_deref(), Some("OK (12 bytes)"));
        assert_eq!(r.data["status_code"], 200);
        assert_eq!(r.data["checksum_src"], "22596363b3de40b06f981fb85d82312e8c0ed511");
        assert_eq!(r.data["checksum_dest"], Value::Null);
        assert_eq!(r.data["md5sum"], "6f5902ac237024bdd0c176cb93063dc4");
        assert_eq!(r.data["size"], 12);
        assert_eq!(r.data["mode"], "0600");
        assert_eq!(fs::read(&dest).unwrap(), BODY);
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
        // No leftovers.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);

        // Exists, no force, no checksum: not downloaded again.
        let before = srv.seen.lock().unwrap().len();
        let r = run(&a, &ctx).unwrap();
        assert!(!r.changed);
        assert_eq!(r.msg.as_deref(), Some("file already exists"));
        assert_eq!(srv.seen.lock().unwrap().len(), before);

        // force: downloaded, same content: not changed.
        let mut f = a.clone();
        f.insert("force".into(), json!(true));
        let r = run(&f, &ctx).unwrap();
        assert!(!r.changed);
        assert_eq!(r.data["checksum_dest"], r.data["checksum_src"]);
        assert_eq!(srv.seen.lock().unwrap().len(), before + 1);

        // Attribute change only.
        let mut m = a.clone();
        m.insert("mode".into(), json!("0644"));
        let r = run(&m, &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(r.msg.as_deref(), Some("file already exists but file attributes changed"));
    }

    #[test]
    fn checksums() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let dest = d.path().join("h.txt");
        let url = format!("{}/hello.txt", srv.base);
        let r = run(&args(json!({"url": url, "dest": dest, "checksum": format!("sha256:{}/SHA256SUMS", srv.base)})), &ctx).unwrap();
        assert!(r.changed);
        // Matching checksum on disk: no request at all.
        let before = srv.seen.lock().unwrap().len();
        let r = run(&args(json!({"url": url, "dest": dest, "checksum": format!("sha256:{SHA256}")})), &ctx).unwrap();
        assert!(!r.changed);
        assert_eq!(r.msg.as_deref(), Some("file already exists"));
        assert_eq!(srv.seen.lock().unwrap().len(), before);

        // Mismatch: fails, no file, no temp left.
        let dest2 = d.path().join("h2.txt");
        let f = run(&args(json!({"url": url, "dest": dest2, "checksum": "sha256:abcd"})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("The checksum for {} did not match abcd; it was {SHA256}.", dest2.display()));
        assert!(!dest2.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);

        // Existing file with a wrong checksum is replaced.
        fs::write(&dest2, "old").unwrap();
        let r = run(&args(json!({"url": url, "dest": dest2, "checksum": format!("sha256:{}", SHA256.to_uppercase())})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(fs::read(&dest2).unwrap(), BODY);

        let f = run(&args(json!({"url": url, "dest": dest2, "checksum": "sha256"})), &ctx).unwrap_err();
        assert_eq!(f.msg, "The checksum parameter has to be in format <algorithm>:<checksum>");
        let f = run(&args(json!({"url": url, "dest": dest2, "checksum": "sha256:xyz"})), &ctx).unwrap_err();
        assert_eq!(f.msg, "The checksum format is invalid");
        let f = run(
            &args(json!({"url": format!("{}/other", srv.base), "dest": dest2, "force": true, "checksum": format!("sha256:{}/SHA256SUMS", srv.base)})),
            &ctx,
        )
        .unwrap_err();
        assert!(f.msg.starts_with("Unable to find a checksum for file 'other'"), "{}", f.msg);
    }

    #[test]
    fn directory_dest_redirects_errors_and_auth() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"url": format!("{}/dl", srv.base), "dest": d.path()})), &ctx).unwrap();
        assert_eq!(r.data["dest"], d.path().join("named.bin").display().to_string());
        assert!(d.path().join("named.bin").exists());
        let r = run(&args(json!({"url": format!("{}/moved", srv.base), "dest": d.path()})), &ctx).unwrap();
        assert_eq!(r.data["dest"], d.path().join("hello.txt").display().to_string());

        let f = run(&args(json!({"url": format!("{}/missing", srv.base), "dest": d.path().join("m")})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Request failed: HTTP Error 404: Not Found"), "{}", f.msg);
        assert!(f.msg.contains("/missing"));
        assert_eq!(f.data["status_code"], 404);
        assert!(!d.path().join("m").exists());

        let f = run(&args(json!({"url": format!("{}/auth/hello.txt", srv.base), "dest": d.path().join("a")})), &ctx).unwrap_err();
        assert_eq!(f.data["status_code"], 401);
        let r = run(
            &args(json!({"url": format!("{}/auth/hello.txt", srv.base), "dest": d.path().join("a"), "url_username": "user", "url_password": "pass"})),
            &ctx,
        )
        .unwrap();
        assert!(r.changed);

        let f = run(&args(json!({"url": format!("{}/hello.txt", srv.base), "dest": d.path().join("nodir/x")})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Destination ") && f.msg.ends_with("does not exist"), "{}", f.msg);
    }

    #[test]
    fn check_mode_and_file_urls() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let cctx = ctx_for(true, d.path(), &pf);
        let dest = d.path().join("h.txt");
        let r = run(&args(json!({"url": format!("{}/hello.txt", srv.base), "dest": dest})), &cctx).unwrap();
        assert!(r.changed);
        assert!(!dest.exists());
        {
            let seen = srv.seen.lock().unwrap();
            let last = seen.last().unwrap();
            assert_eq!((last.method.as_str(), last.path.as_str()), ("HEAD", "/hello.txt"));
            assert_eq!(last.headers["user-agent"], "ansible-httpget");
        }

        let ctx = ctx_for(false, d.path(), &pf);
        let src = d.path().join("src.bin");
        fs::write(&src, BODY).unwrap();
        let r = run(&args(json!({"url": format!("file://{}", src.display()), "dest": dest, "checksum": format!("sha256:{SHA256}")})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(fs::read(&dest).unwrap(), BODY);
    }
}

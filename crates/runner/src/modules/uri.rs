//! The `uri` module: one HTTP request, its status checked against `status_code`, the response
//! headers, content and JSON returned as Ansible does, optionally saved to `dest`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::args::{bool_or, check_known, opt_int, opt_str};
use super::get_url::{parse_headers, persist};
use super::utils::files::{self, FileAttrs, Hasher, expand_path};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};
use airlock_base::http::{self, ClientOptions, HttpRequest, Redirects};

const ARGS: &[&str] = &[
    "url",
    "dest",
    "url_username",
    "user",
    "url_password",
    "password",
    "force_basic_auth",
    "body",
    "body_format",
    "src",
    "method",
    "return_content",
    "follow_redirects",
    "creates",
    "removes",
    "status_code",
    "timeout",
    "headers",
    "remote_src",
    "validate_certs",
    "use_proxy",
    "ca_path",
    "http_agent",
    "decompress",
    "use_netrc",
    "unredirected_headers",
    "force",
];

const JSON_CANDIDATES: &[&str] = &["json", "javascript"];

/// Python's `json.dumps` with its default separators (`", "`, `": "`) and `ensure_ascii`.
pub fn py_json_dumps(v: &Value) -> String {
    airlock_base::pyfmt::json_dumps(v, None, false, true)
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn py_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
        other => py_json_dumps(other),
    }
}

/// uri's `form_urlencoded`: a mapping or a list of pairs, list values repeated.
pub fn form_urlencoded(body: &Value) -> Result<String, String> {
    let pairs: Vec<(String, Value)> = match body {
        Value::String(s) => return Ok(s.clone()),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(a) => a
            .iter()
            .map(|item| match item {
                Value::Array(kv) if kv.len() == 2 => Ok((py_text(&kv[0]), kv[1].clone())),
                _ => Err("cannot form-urlencode body, expect list of key-value pairs or dict".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("cannot form-urlencode body, expect list or dict".into()),
    };
    let mut parts = Vec::new();
    for (k, v) in pairs {
        let values: Vec<Value> = match v {
            Value::Array(a) => a,
            Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
            other => vec![other],
        };
        for value in values {
            if value.is_null() {
                continue;
            }
            parts.push(format!("{}={}", quote_plus(&k), quote_plus(&py_text(&value))));
        }
    }
    Ok(parts.join("&"))
}

/// The `status_code` argument: an int, numeric text, a comma list or a list.
fn parse_status_codes(args: &Args) -> Result<Vec<i64>, ModuleFail> {
    let bad = |v: &str| ModuleFail::new(format!("Elements value for option 'status_code' is of type str and we were unable to convert to int: '{v}'"));
    let conv = |v: &Value| -> Result<i64, ModuleFail> {
        match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(|| bad(&n.to_string())),
            Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad(s)),
            other => Err(bad(&other.to_string())),
        }
    };
    match args.get("status_code") {
        None | Some(Value::Null) => Ok(vec![200]),
        Some(Value::Array(a)) => a.iter().map(conv).collect(),
        Some(Value::String(s)) => s.split(',').filter(|x| !x.trim().is_empty()).map(|x| conv(&Value::String(x.to_string()))).collect(),
        Some(v) => Ok(vec![conv(v)?]),
    }
}

fn py_int_list(v: &[i64]) -> String {
    format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
}

/// (content type, sub type, charset) as uri's `parse_content_type`.
fn parse_content_type(headers: &reqwest::header::HeaderMap) -> (String, String) {
    let raw = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = raw.split(';').next().unwrap_or("").split(',').next().unwrap_or("").trim().to_ascii_lowercase();
    let media = if media.contains('/') { media } else { "application/octet-stream".into() };
    let sub = media.split_once('/').map(|(_, s)| s.to_string()).unwrap_or_default();
    (media, sub)
}

fn maybe_json(sub_type: &str) -> bool {
    let t = match sub_type.split_once('+') {
        Some((_, suffix)) => suffix,
        None => sub_type,
    };
    JSON_CANDIDATES.contains(&t.to_ascii_lowercase().as_str())
}

/// Cookies from Set-Cookie headers: name -> value, in response order.
fn cookies(headers: &reqwest::header::HeaderMap) -> (Map<String, Value>, String) {
    let mut dict = Map::new();
    let mut list = Vec::new();
    for v in headers.get_all(reqwest::header::SET_COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        let first = v.split(';').next().unwrap_or("");
        if let Some((name, value)) = first.split_once('=') {
            let (name, value) = (name.trim().to_string(), value.trim().trim_matches('"').to_string());
            dict.insert(name.clone(), value.clone().into());
            list.push(format!("{name}={value}"));
        }
    }
    (dict, list.join("; "))
}

/// The file name for a `dest` directory: Content-Disposition, else the URL's last segment.
fn response_filename(headers: &reqwest::header::HeaderMap, final_url: &str) -> String {
    if let Some(f) = http::disposition_filename(headers) {
        return f;
    }
    let path = reqwest::Url::parse(final_url).map(|u| u.path().to_string()).unwrap_or_default();
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    let decoded: String =
        url::form_urlencoded::parse(format!("x={}", base.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    if decoded.is_empty() { "index.html".into() } else { decoded }
}

/// Runs `uri`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    let allowed: Vec<&str> = ARGS.iter().chain(files::FILE_COMMON_ARGS).copied().collect();
    check_known(args, "uri", &allowed)?;
    if ctx.check_mode {
        let mut r = ModuleResult::ok().with_msg("This action (uri) does not support check mode.");
        r.skipped = true;
        return Ok(r);
    }
    let url = super::args::req_str(args, "url")?;
    let masked = http::mask_url(&url);
    let method = opt_str(args, "method")?.unwrap_or_else(|| "GET".into()).to_uppercase();
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ModuleFail::new("Parameter 'method' needs to be a single word in uppercase, like GET or POST."));
    }
    let body_format = opt_str(args, "body_format")?.unwrap_or_else(|| "raw".into()).to_lowercase();
    if !["raw", "json", "form-urlencoded", "form-multipart"].contains(&body_format.as_str()) {
        return Err(ModuleFail::new(format!("value of body_format must be one of: form-urlencoded, json, raw, form-multipart, got: {body_format}")));
    }
    let status_codes = parse_status_codes(args)?;
    let return_content = bool_or(args, "return_content", false)?;
    let dest = opt_str(args, "dest")?.map(|s| expand_path(&s));
    let creates = opt_str(args, "creates")?;
    let removes = opt_str(args, "removes")?;
    let src = opt_str(args, "src")?;
    let timeout = opt_int(args, "timeout")?.unwrap_or(30);
    let attrs = FileAttrs::from_args(args)?;
    let mut headers = parse_headers(args)?;
    let has_ctype = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let body_arg = args.get("body").filter(|v| !v.is_null());
    if body_arg.is_some() && src.is_some() {
        return Err(ModuleFail::new("parameters are mutually exclusive: body|src"));
    }

    let mut body: Option<Vec<u8>> = match (body_format.as_str(), body_arg) {
        (_, None) => None,
        ("json", Some(Value::String(s))) => Some(s.clone().into_bytes()),
        ("json", Some(v)) => Some(py_json_dumps(v).into_bytes()),
        ("form-urlencoded", Some(v)) => {
            Some(form_urlencoded(v).map_err(|e| ModuleFail::new(format!("failed to parse body as form_urlencoded: {e}")).with("elapsed", 0))?.into_bytes())
        }
        ("form-multipart", Some(_)) => {
            return Err(ModuleFail::new("body_format form-multipart is not supported by airlock; use raw with a prepared body"));
        }
        (_, Some(v)) => Some(py_text(v).into_bytes()),
    };
    match body_format.as_str() {
        "json" if !has_ctype => headers.push(("Content-Type".into(), "application/json".into())),
        "form-urlencoded" if !has_ctype => headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into())),
        _ => {}
    }

    if let Some(c) = &creates
        && expand_path(c).exists()
    {
        return Ok(ModuleResult::ok().with("stdout", format!("skipped, since '{c}' exists")));
    }
    if let Some(r) = &removes
        && !expand_path(r).exists()
    {
        return Ok(ModuleResult::ok().with("stdout", format!("skipped, since '{r}' does not exist")));
    }
    if let Some(s) = &src {
        let p = ctx.find_file("files", s).unwrap_or_else(|| expand_path(s));
        body = Some(fs::read(&p).map_err(|_| ModuleFail::new(format!("Unable to open source file {}", p.display())).with("elapsed", 0))?);
    }

    let opts = ClientOptions {
        timeout: (timeout > 0).then(|| Duration::from_secs(timeout as u64)),
        validate_certs: bool_or(args, "validate_certs", true)?,
        follow_redirects: true,
        use_proxy: bool_or(args, "use_proxy", true)?,
        user_agent: opt_str(args, "http_agent")?.unwrap_or_else(|| "ansible-httpget".into()),
        env: super::command::task_environment(args),
        ca_paths: opt_str(args, "ca_path")?.map(|p| super::utils::files::expand_user(&p).into()).into_iter().collect(),
    };
    let req = HttpRequest {
        method: method.clone(),
        url: url.clone(),
        headers,
        body,
        username: opt_str(args, "url_username")?.or(opt_str(args, "user")?),
        password: opt_str(args, "url_password")?.or(opt_str(args, "password")?),
        force_basic_auth: bool_or(args, "force_basic_auth", false)?,
        follow: Redirects::parse(opt_str(args, "follow_redirects")?.as_deref(), Redirects::Safe).map_err(|e| ModuleFail::new(e.to_string()))?,
    };

    let start = Instant::now();
    let mut resp = match http::send(&opts, &req) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            let mut data = Map::new();
            data.insert("elapsed".into(), start.elapsed().as_secs().into());
            data.insert("redirected".into(), false.into());
            data.insert("status".into(), (-1).into());
            data.insert("url".into(), masked.clone().into());
            if status_codes.contains(&-1) {
                let mut r = ModuleResult::ok().with_msg(msg);
                r.data = data;
                return Ok(r);
            }
            return Err(ModuleFail { msg: format!("Status code was -1 and not {}: {msg}", py_int_list(&status_codes)), data });
        }
    };

    let status = resp.status();
    let code = status.as_u16() as i64;
    let resp_headers = resp.headers().clone();
    let final_url = http::mask_url(resp.url().as_str());
    let normalized_req = reqwest::Url::parse(&url).map(|u| http::mask_url(u.as_str())).unwrap_or(masked.clone());
    let (_, sub_type) = parse_content_type(&resp_headers);
    let is_json = maybe_json(&sub_type);
    let ok_status = status_codes.contains(&code);
    let success = status.is_success();
    let maybe_output = is_json || return_content || !ok_status;

    let mut data = Map::new();
    data.insert("redirected".into(), (final_url != normalized_req).into());
    data.extend(http::headers_to_result(&resp_headers));
    if success {
        let (dict, s) = cookies(&resp_headers);
        data.insert("cookies".into(), dict.into());
        data.insert("cookies_string".into(), s.into());
    }
    let msg = if success { http::ok_msg(&resp_headers) } else { http::http_error_msg(status) };
    data.insert("url".into(), if success { final_url.clone() } else { masked.clone() }.into());
    data.insert("status".into(), code.into());
    if let Some(Value::String(loc)) = data.get("location").cloned()
        && let Ok(base) = reqwest::Url::parse(&url)
        && let Ok(j) = base.join(&loc)
    {
        data.insert("location".into(), http::mask_url(j.as_str()).into());
    }

    let mut changed = false;
    let mut content: Option<Vec<u8>> = None;
    let write_dest = dest.is_some() && ok_status && code != 304;
    if write_dest {
        let mut dest = dest.clone().unwrap_or_default();
        if dest.is_dir() {
            dest = dest.join(response_filename(&resp_headers, resp.url().as_str()));
        }
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fail_with = |m: String, data: &Map<String, Value>| ModuleFail { msg: m, data: data.clone() };
        let mut tmp =
            files::temp_file_for(&dir, &name).map_err(|e| fail_with(format!("Failed to create temporary content file in {}: {e}", dir.display()), &data))?;
        let declared = resp.content_length();
        let len = declared.unwrap_or(0);
        let pb = ctx.progress.bar(len, &name, true);
        let mut sha1 = Hasher::named("sha1").expect("sha1");
        let mut kept = Vec::new();
        let copied = http::copy_body(&mut resp, tmp.as_file_mut(), |chunk| {
            sha1.update(chunk);
            if maybe_output {
                kept.extend_from_slice(chunk);
            }
            pb.inc(chunk.len() as u64);
        });
        pb.finish_and_clear();
        // The body's failures (server, network) are told apart from the temporary file's.
        let failed = |why: String| fail_with(format!("Failed to create temporary content file: {why} ({masked})"), &data);
        match copied {
            Ok(_) => {}
            Err((http::CopyError::Read(e), got)) => return Err(failed(http::describe_body_error(&e, opts.timeout, got, declared))),
            Err((http::CopyError::Write(e), _)) => return Err(failed(e.to_string())),
        }
        tmp.as_file_mut().flush().map_err(|e| failed(e.to_string()))?;
        let new_sum = sha1.hex();
        let old_sum = if dest.is_file() { files::file_digest(&dest, "sha1").ok() } else { None };
        if old_sum.as_deref() != Some(new_sum.as_str()) {
            files::match_dest_perms(tmp.path(), &dest).map_err(|e| fail_with(format!("failed to copy to {}: {e}", dest.display()), &data))?;
            persist(tmp, &dest).map_err(|f| fail_with(f.msg, &data))?;
            changed = true;
        }
        changed |= attrs.apply(&dest, false).map_err(|f| fail_with(f.msg, &data))?;
        data.insert("path".into(), dest.display().to_string().into());
        if maybe_output {
            content = Some(kept);
        }
    } else {
        if let Some(d) = &dest {
            data.insert("path".into(), d.display().to_string().into());
        }
        if maybe_output {
            let mut v = Vec::new();
            let declared = resp.content_length();
            resp.read_to_end(&mut v).map_err(|e| ModuleFail {
                msg: format!("HTTP Error while fetching {masked}: {}", http::describe_body_error(&e, opts.timeout, v.len() as u64, declared)),
                data: data.clone(),
            })?;
            content = Some(v);
        }
    }
    data.insert("elapsed".into(), start.elapsed().as_secs().into());
    data.insert("changed".into(), changed.into());

    let text = content.map(|c| String::from_utf8_lossy(&c).into_owned());
    if is_json
        && let Some(t) = &text
        && let Ok(j) = serde_json::from_str::<Value>(t)
    {
        data.insert("json".into(), j);
    }
    if return_content {
        data.insert("content".into(), text.clone().unwrap_or_default().into());
    }
    if !ok_status {
        return Err(ModuleFail { msg: format!("Status code was {code} and not {}: {msg}", py_int_list(&status_codes)), data });
    }
    let mut r = ModuleResult::changed(changed).with_msg(msg);
    r.data = data;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use airlock_base::http::testserver::{Canned, serve};
    use serde_json::json;

    fn server() -> airlock_base::http::testserver::Server {
        serve(vec![
            ("/d.json", Canned::ok(br#"{"a": 1, "b": [1, 2]}"#, "application/json").header("Set-Cookie", "sid=abc; Path=/")),
            ("/page", Canned::ok(b"hi\n", "text/html; charset=utf-8").header("X-Thing", "1").header("X-Thing", "2")),
            ("/moved", Canned::redirect("/page")),
            ("/post", Canned::ok(b"{}", "application/vnd.api+json")),
            ("/err", Canned::status(500, "Internal Server Error")),
            ("/auth/x", Canned::ok(b"secret", "text/plain")),
        ])
    }

    #[test]
    fn get_json_and_headers() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"url": format!("{}/d.json", srv.base)})), &ctx).unwrap();
        assert!(!r.changed);
        assert_eq!(r.msg.as_deref(), Some("OK (21 bytes)"));
        assert_eq!(r.data["status"], 200);
        assert_eq!(r.data["json"], json!({"a": 1, "b": [1, 2]}));
        assert_eq!(r.data["content_type"], "application/json");
        assert_eq!(r.data["content_length"], "21");
        assert_eq!(r.data["redirected"], false);
        assert_eq!(r.data["cookies"], json!({"sid": "abc"}));
        assert_eq!(r.data["cookies_string"], "sid=abc");
        assert!(r.data.get("content").is_none());

        let r = run(&args(json!({"url": format!("{}/moved", srv.base), "return_content": true})), &ctx).unwrap();
        assert_eq!(r.data["content"], "hi\n");
        assert_eq!(r.data["redirected"], true);
        assert_eq!(r.data["url"], format!("{}/page", srv.base));
        assert_eq!(r.data["x_thing"], "1, 2");
        assert!(r.data.get("json").is_none());
    }

    #[test]
    fn status_failures() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let f = run(&args(json!({"url": format!("{}/nope", srv.base)})), &ctx).unwrap_err();
        assert_eq!(f.msg, "Status code was 404 and not [200]: HTTP Error 404: Not Found");
        assert_eq!(f.data["status"], 404);
        let f = run(&args(json!({"url": format!("{}/err", srv.base), "status_code": [200, 201], "return_content": true})), &ctx).unwrap_err();
        assert_eq!(f.msg, "Status code was 500 and not [200, 201]: HTTP Error 500: Internal Server Error");
        assert_eq!(f.data["content"], "Internal Server Error");
        let r = run(&args(json!({"url": format!("{}/nope", srv.base), "status_code": "200, 404"})), &ctx).unwrap();
        assert_eq!(r.data["status"], 404);
        // No redirect following when asked not to.
        let r = run(&args(json!({"url": format!("{}/moved", srv.base), "follow_redirects": "none", "status_code": 302})), &ctx).unwrap();
        assert_eq!(r.data["location"], format!("{}/page", srv.base));

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let f = run(&args(json!({"url": format!("http://127.0.0.1:{port}/x")})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Status code was -1 and not [200]: Request failed: <urlopen error"), "{}", f.msg);
        assert_eq!(f.data["status"], -1);
    }

    #[test]
    fn bodies_auth_and_dest() {
        let srv = server();
        let d = tempfile::tempdir().unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r =
            run(&args(json!({"url": format!("{}/post", srv.base), "method": "post", "body_format": "json", "body": {"k": "v", "n": [1, 2]}})), &ctx).unwrap();
        assert_eq!(r.data["json"], json!({}));
        {
            let seen = srv.seen.lock().unwrap();
            let last = seen.last().unwrap();
            assert_eq!(last.method, "POST");
            assert_eq!(String::from_utf8_lossy(&last.body), r#"{"k": "v", "n": [1, 2]}"#);
            assert_eq!(last.headers["content-type"], "application/json");
        }
        run(
            &args(json!({"url": format!("{}/post", srv.base), "method": "PUT", "body_format": "form-urlencoded", "body": {"a b": "c&d", "l": [1, true]}})),
            &ctx,
        )
        .unwrap();
        {
            let seen = srv.seen.lock().unwrap();
            let last = seen.last().unwrap();
            assert_eq!(String::from_utf8_lossy(&last.body), "a+b=c%26d&l=1&l=True");
            assert_eq!(last.headers["content-type"], "application/x-www-form-urlencoded");
        }
        let r = run(&args(json!({"url": format!("{}/auth/x", srv.base), "url_username": "user", "url_password": "pass", "force_basic_auth": true, "return_content": true})), &ctx).unwrap();
        assert_eq!(r.data["content"], "secret");

        let dest = d.path().join("page.html");
        let r = run(&args(json!({"url": format!("{}/page", srv.base), "dest": dest})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hi\n");
        let r = run(&args(json!({"url": format!("{}/page", srv.base), "dest": dest})), &ctx).unwrap();
        assert!(!r.changed);
        let r = run(&args(json!({"url": format!("{}/page", srv.base), "dest": d.path()})), &ctx).unwrap();
        assert_eq!(r.data["path"], d.path().join("page").display().to_string());
        // Nothing written for a failed status.
        let _ = run(&args(json!({"url": format!("{}/nope", srv.base), "dest": d.path().join("nope")})), &ctx).unwrap_err();
        assert!(!d.path().join("nope").exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);

        assert_eq!(
            run(&args(json!({"url": "http://x/", "method": "GET ME"})), &ctx).unwrap_err().msg,
            "Parameter 'method' needs to be a single word in uppercase, like GET or POST."
        );
        let r = run(&args(json!({"url": "http://127.0.0.1:1/", "creates": d.path()})), &ctx).unwrap();
        assert!(!r.changed);
        let cctx = ctx_for(true, d.path(), &pf);
        let r = run(&args(json!({"url": format!("{}/page", srv.base)})), &cctx).unwrap();
        assert!(r.skipped);
        assert_eq!(r.msg.as_deref(), Some("This action (uri) does not support check mode."));
    }

    #[test]
    fn python_json() {
        assert_eq!(py_json_dumps(&json!({"a": [1, "é"], "b": null})), r#"{"a": [1, "\u00e9"], "b": null}"#);
    }
}

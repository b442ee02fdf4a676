//! Upstreams that misbehave: a connection reset in the middle of a body, a server that stalls,
//! 404 and 500 answers, bodies longer or shorter than their `Content-Length`, a redirect loop,
//! a registry whose tokens expire mid-pull. Each case runs against a small raw-TCP server on
//! 127.0.0.1 that misbehaves on purpose (no HTTP library would), through the real binary
//! (get_url, cache_files, helm_sync) or the registry client's library API as tests/it/oci.rs
//! drives it. Each ends in a clear error naming the URL, or in a retry that succeeds; never in
//! a file with wrong bytes at its destination.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::scripted::{Answer, Scripted};
use crate::support::{self, Project, read_request, sha256_hex, yumfix};

/// Bytes that differ at every position, so a shifted or spliced file cannot match.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed as u32).to_le_bytes()[1]).collect()
}

/// Every file under `dir` (relative paths), to show nothing half-written is left.
fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = support::tree(dir).into_keys().collect();
    out.sort();
    out
}

fn play(tasks: &str) -> String {
    format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n{tasks}")
}

// ---------------------------------------------------------------------------------------------
// cache_files: the shared downloader (retries, .part files, checksums)

/// One cache_files task for `files` (url, checksum) into `dest`, with a 1 s timeout.
fn cache_files_task(dest: &Path, files: &[(String, Option<String>)], retries: u32) -> String {
    let mut list = String::new();
    for (url, sum) in files {
        list.push_str(&format!("          - url: \"{url}\"\n"));
        if let Some(s) = sum {
            list.push_str(&format!("            checksum: \"sha256:{s}\"\n"));
        }
    }
    play(&format!(
        "    - cache_files:\n        dest: \"{}\"\n        timeout: 1\n        retries: {retries}\n        concurrency: 2\n        files:\n{list}",
        dest.display()
    ))
}

#[test]
fn cache_files_retries_resets_500s_and_short_bodies_until_the_server_recovers() {
    let a = payload(300_000, 1);
    let b = payload(200_000, 2);
    let c = payload(100_000, 3);
    let d = payload(50_000, 4);
    let e = payload(70_000, 5);
    let srv = Scripted::start(vec![
        ("/reset", vec![Answer::Reset { body: a.clone(), after: 100_000 }, Answer::Ok(a.clone())]),
        ("/busy", vec![Answer::Status(500), Answer::Status(503), Answer::Ok(b.clone())]),
        ("/short", vec![Answer::Short { body: c.clone(), after: 60_000 }, Answer::Ok(c.clone())]),
        // Without a checksum only Content-Length can tell a short body from a whole one.
        ("/short-unsummed", vec![Answer::Short { body: d.clone(), after: 1000 }, Answer::Ok(d.clone())]),
        // A stall is retried too: the second answer comes at once.
        ("/stall", vec![Answer::Stall { body: e.clone(), after: 10 }, Answer::Ok(e.clone())]),
    ]);
    let p = Project::new();
    let dest = p.path("cache/files");
    let list = vec![
        (srv.url("/reset"), Some(sha256_hex(&a))),
        (srv.url("/busy"), Some(sha256_hex(&b))),
        (srv.url("/short"), Some(sha256_hex(&c))),
        (srv.url("/short-unsummed"), None),
        (srv.url("/stall"), Some(sha256_hex(&e))),
    ];
    p.file("pb.yml", &cache_files_task(&dest, &list, 3));
    p.playbook("pb.yml", &[]).success();
    assert_eq!(std::fs::read(dest.join("reset")).unwrap(), a);
    assert_eq!(std::fs::read(dest.join("busy")).unwrap(), b);
    assert_eq!(std::fs::read(dest.join("short")).unwrap(), c);
    assert_eq!(std::fs::read(dest.join("short-unsummed")).unwrap(), d);
    assert_eq!(std::fs::read(dest.join("stall")).unwrap(), e);
    assert_eq!((srv.count("/reset"), srv.count("/busy"), srv.count("/short"), srv.count("/short-unsummed"), srv.count("/stall")), (2, 3, 2, 2, 2));
    assert_eq!(files(&dest), ["busy", "reset", "short", "short-unsummed", "stall"], "no .part file is left");
}

/// Runs one cache_files task for `path` on `srv` that must fail; returns the failure line.
fn cache_files_fails(srv: &Scripted, path: &str, checksum: Option<String>, retries: u32) -> String {
    let p = Project::new();
    let dest = p.path("cache/files");
    p.file("pb.yml", &cache_files_task(&dest, &[(srv.url(path), checksum)], retries));
    let r = p.playbook("pb.yml", &[]);
    r.code(2);
    let line = r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_default().to_string();
    assert!(line.contains(&srv.url(path)), "the error names the URL: {line}");
    // Nothing at the destination: not the file, not a .part.
    assert_eq!(files(&p.path("cache")), Vec::<String>::new(), "{line}");
    line
}

/// A server that fails each path its own way, every time: 404, 500, a reset, an early close
/// and a stall after 30000 bytes of `body`, no answer at all, and a redirect loop.
fn every_fault(body: &[u8]) -> Vec<(&'static str, Vec<Answer>)> {
    let body = body.to_vec();
    vec![
        ("/missing", vec![Answer::Status(404)]),
        ("/broken", vec![Answer::Status(500)]),
        ("/reset", vec![Answer::Reset { body: body.clone(), after: 30_000 }]),
        ("/short", vec![Answer::Short { body: body.clone(), after: 30_000 }]),
        ("/stall-body", vec![Answer::Stall { body: body.clone(), after: 30_000 }]),
        ("/stall-headers", vec![Answer::Silent]),
        ("/loop-a", vec![Answer::Redirect("/loop-b".into())]),
        ("/loop-b", vec![Answer::Redirect("/loop-a".into())]),
    ]
}

#[test]
fn cache_files_gives_up_with_errors_that_name_the_url_and_what_happened() {
    let body = payload(100_000, 7);
    let sum = Some(sha256_hex(&body));
    let srv = Scripted::start(every_fault(&body));

    // A 404 is not retried: asking again will not make the file exist.
    let line = cache_files_fails(&srv, "/missing", sum.clone(), 2);
    assert!(line.contains("404"), "{line}");
    assert_eq!(srv.count("/missing"), 1);
    // A 500 is retried, then reported.
    let line = cache_files_fails(&srv, "/broken", sum.clone(), 1);
    assert!(line.contains("500"), "{line}");
    assert_eq!(srv.count("/broken"), 2);

    let line = cache_files_fails(&srv, "/reset", sum.clone(), 1);
    assert!(line.contains("connection") && line.contains("reset"), "{line}");
    assert_eq!(srv.count("/reset"), 2);
    let line = cache_files_fails(&srv, "/short", None, 1);
    assert!(line.contains("30000 of 100000 bytes"), "{line}");
    assert_eq!(srv.count("/short"), 2);

    // A stall: the timeout the task set (1 s) fires, and says so.
    let line = cache_files_fails(&srv, "/stall-body", sum.clone(), 0);
    assert!(line.contains("timed out after 1 s reading the body"), "{line}");
    let line = cache_files_fails(&srv, "/stall-headers", sum.clone(), 0);
    assert!(line.contains("timed out after 1 s waiting for an answer"), "{line}");

    // A redirect loop is not retried: it will loop again.
    let line = cache_files_fails(&srv, "/loop-a", sum, 3);
    assert!(line.contains("redirect"), "{line}");
    assert!(srv.count("/loop-a") <= 11, "the loop was retried: {} requests", srv.count("/loop-a"));
}

#[test]
fn cache_files_takes_content_length_and_keeps_the_connection_sane_after_a_long_body() {
    // The server sends 1000 bytes more than it declares, on a connection it keeps open, then
    // the next file is asked for (concurrency 1: on that same connection). The declared bytes
    // are the file; the extra ones must not end up in it or in the next file.
    let a = payload(50_000, 11);
    let b = payload(40_000, 12);
    let srv = Scripted::start(vec![("/long", vec![Answer::Long { body: a.clone(), extra: payload(1000, 13) }]), ("/next", vec![Answer::Ok(b.clone())])]);
    let p = Project::new();
    let dest = p.path("cache/files");
    let task = cache_files_task(&dest, &[(srv.url("/long"), Some(sha256_hex(&a))), (srv.url("/next"), Some(sha256_hex(&b)))], 2)
        .replace("concurrency: 2", "concurrency: 1");
    p.file("pb.yml", &task);
    p.playbook("pb.yml", &[]).success();
    assert_eq!(std::fs::read(dest.join("long")).unwrap(), a);
    assert_eq!(std::fs::read(dest.join("next")).unwrap(), b);
    assert_eq!(files(&dest), ["long", "next"]);
}

// ---------------------------------------------------------------------------------------------
// get_url: Ansible's module, no retries of its own (`until`/`retries` are the playbook's)

fn get_url_task(url: &str, dest: &Path, extra: &str) -> String {
    play(&format!("    - get_url:\n        url: \"{url}\"\n        dest: \"{}\"\n        timeout: 1\n{extra}", dest.display()))
}

/// Runs get_url on `path`, which must fail; returns the failure line. Nothing may be left
/// in the destination directory.
fn get_url_fails(srv: &Scripted, path: &str) -> String {
    let p = Project::new();
    let dir = p.path("dl");
    std::fs::create_dir_all(&dir).unwrap();
    p.file("pb.yml", &get_url_task(&srv.url(path), &dir.join("file"), ""));
    let r = p.playbook("pb.yml", &[]);
    r.code(2);
    let line = r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_default().to_string();
    assert!(line.contains(&srv.url(path)), "the error names the URL: {line}");
    assert_eq!(files(&dir), Vec::<String>::new(), "{line}");
    line
}

#[test]
fn get_url_fails_clearly_and_leaves_nothing_behind() {
    let body = payload(100_000, 21);
    let srv = Scripted::start(every_fault(&body));
    let line = get_url_fails(&srv, "/missing");
    assert!(line.contains("HTTP Error 404: Not Found"), "{line}");
    let line = get_url_fails(&srv, "/broken");
    assert!(line.contains("HTTP Error 500: Internal Server Error"), "{line}");
    let line = get_url_fails(&srv, "/reset");
    assert!(line.contains("connection") && line.contains("reset"), "{line}");
    let line = get_url_fails(&srv, "/short");
    assert!(line.contains("30000 of 100000 bytes"), "{line}");
    let line = get_url_fails(&srv, "/stall-body");
    assert!(line.contains("timed out after 1 s reading the body"), "{line}");
    let line = get_url_fails(&srv, "/stall-headers");
    assert!(line.contains("timed out"), "{line}");
    let line = get_url_fails(&srv, "/loop-a");
    assert!(line.contains("redirect"), "{line}");
}

#[test]
fn get_url_with_until_retries_a_reset_and_a_500_and_keeps_the_old_file_meanwhile() {
    let old = b"the previous download".to_vec();
    let body = payload(200_000, 31);
    let srv = Scripted::start(vec![(
        "/file",
        vec![
            Answer::Reset { body: body.clone(), after: 50_000 },
            Answer::Status(500),
            Answer::Short { body: body.clone(), after: 10 },
            Answer::Ok(body.clone()),
        ],
    )]);
    let p = Project::new();
    let dest = p.path("dl/file");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, &old).unwrap();
    // force: the file is replaced; until/retries: the playbook's way to retry in Ansible.
    // Between the failed attempts the old file stays whole (checked by the register below).
    p.file(
        "pb.yml",
        &get_url_task(
            &srv.url("/file"),
            &dest,
            &format!(
                "        force: true\n        checksum: \"sha256:{}\"\n      register: r\n      until: r is succeeded\n      retries: 4\n      delay: 0\n",
                sha256_hex(&body)
            ),
        ),
    );
    let r = p.playbook("pb.yml", &[]);
    r.success().has("FAILED - RETRYING");
    assert_eq!(srv.count("/file"), 4);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(files(&p.path("dl")), ["file"]);
}

// ---------------------------------------------------------------------------------------------
// helm_sync: an index that fails first, a chart cut off

#[test]
fn helm_sync_retries_its_index_and_charts_and_names_a_chart_that_never_arrives() {
    let chart = payload(30_000, 41);
    let broken = payload(30_000, 42);
    let index = |base: &str| {
        format!(
            "apiVersion: v1\nentries:\n  good:\n    - name: good\n      version: 1.0.0\n      urls: [\"{base}/charts/good-1.0.0.tgz\"]\n      digest: {}\n  bad:\n    - name: bad\n      version: 2.0.0\n      urls: [\"{base}/charts/bad-2.0.0.tgz\"]\n      digest: {}\n",
            sha256_hex(&chart),
            sha256_hex(&broken)
        )
    };
    // The index is served by a second server that knows the first's address.
    let charts = Scripted::start(vec![
        ("/charts/good-1.0.0.tgz", vec![Answer::Reset { body: chart.clone(), after: 10_000 }, Answer::Ok(chart.clone())]),
        ("/charts/bad-2.0.0.tgz", vec![Answer::Short { body: broken.clone(), after: 5 }]),
    ]);
    let idx: &'static [u8] = Box::leak(index(&charts.base).into_bytes().into_boxed_slice());
    let repo = Scripted::start(vec![("/index.yaml", vec![Answer::Status(503), Answer::Ok(idx.to_vec())])]);
    let p = Project::new();
    let dest = p.path("cache/helm");
    p.file(
        "pb.yml",
        &play(&format!(
            "    - helm_sync:\n        dest: \"{}\"\n        timeout: 1\n        retries: 1\n        repos:\n          - name: stable\n            url: \"{}\"\n",
            dest.display(),
            repo.base
        )),
    );
    let r = p.playbook("pb.yml", &[]);
    r.code(2);
    let line = r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_default();
    assert!(line.contains("bad") && line.contains("2.0.0") && line.contains(&charts.url("/charts/bad-2.0.0.tgz")), "{line}");
    assert!(line.contains("5 of 30000 bytes"), "{line}");
    assert_eq!(repo.count("/index.yaml"), 2);
    assert_eq!(charts.count("/charts/good-1.0.0.tgz"), 2);
    // The good chart is kept for the next run; nothing of the bad one is.
    assert_eq!(std::fs::read(dest.join("stable/good-1.0.0.tgz")).unwrap(), chart);
    assert!(files(&dest).iter().all(|f| !f.contains("bad-2.0.0")), "{:?}", files(&dest));

    // An index that stalls halfway: documents are read with the same per-read timeout as
    // downloads, and the failure names the index's URL and the timeout.
    let stalled = Scripted::start(vec![("/index.yaml", vec![Answer::Stall { body: idx.to_vec(), after: 20 }])]);
    let dest2 = p.path("cache2/helm");
    p.file("pb2.yml", &play(&format!("    - helm_sync:\n        dest: \"{}\"\n        timeout: 1\n        retries: 0\n        repos:\n          - name: stable\n            url: \"{}\"\n", dest2.display(), stalled.base)));
    let r = p.playbook("pb2.yml", &[]);
    r.code(2).has(&stalled.url("/index.yaml")).has("timed out after 1 s reading the body (20 of");
    assert_eq!(files(&p.path("cache2")), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// A registry whose Bearer tokens expire in the middle of a pull

/// A registry with its own token server (`/token`), as Docker Hub and nvcr.io run them, whose
/// tokens say `expires_in: 1` and are honoured for `uses` requests each: after that, and for
/// any token but the newest, the registry answers 401 with its challenge. Counting uses
/// instead of seconds gives the same expiry in the middle of a pull on every machine.
struct ExpiringRegistry {
    host: String,
    tokens_issued: Arc<Mutex<u32>>,
}

impl ExpiringRegistry {
    fn start(blobs: BTreeMap<String, Vec<u8>>, manifest: Vec<u8>, uses: u32) -> ExpiringRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let issued = Arc::new(Mutex::new(0u32));
        // (newest token number, requests it has served)
        let state = Arc::new(Mutex::new((0u32, 0u32)));
        let (h, i) = (host.clone(), issued.clone());
        let (blobs, manifest) = (Arc::new(blobs), Arc::new(manifest));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, i, state, blobs, manifest) = (h.clone(), i.clone(), state.clone(), blobs.clone(), manifest.clone());
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    while let Some(request) = read_request(&mut reader) {
                        let auth = request.header("authorization").unwrap_or_default().to_string();
                        let head = request.method == "HEAD";
                        let path = request.target.clone();
                        let respond = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
                            let _ = write!(stream, "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n", body.len());
                            if !head {
                                let _ = stream.write_all(body);
                            }
                        };
                        if path.starts_with("/token?") {
                            let n = {
                                let mut n = i.lock().unwrap();
                                *n += 1;
                                *n
                            };
                            *state.lock().unwrap() = (n, 0);
                            let body = format!(r#"{{"token": "tok-{n}", "expires_in": 1}}"#);
                            respond(&mut stream, "200 OK", "Content-Type: application/json\r\n", body.as_bytes());
                            continue;
                        }
                        // Honoured: the newest token, not yet used up.
                        let valid = {
                            let mut s = state.lock().unwrap();
                            let ok = s.0 > 0 && auth == format!("Bearer tok-{}", s.0) && s.1 < uses;
                            if ok {
                                s.1 += 1;
                            }
                            ok
                        };
                        if !valid {
                            let challenge = format!(
                                "WWW-Authenticate: Bearer realm=\"http://{h}/token\",service=\"expiring\",scope=\"repository:test/app:pull\"\r\nContent-Type: application/json\r\n"
                            );
                            respond(&mut stream, "401 Unauthorized", &challenge, br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
                            continue;
                        }
                        if path == "/v2/test/app/manifests/v1" {
                            let digest = format!("sha256:{}", sha256_hex(&manifest));
                            let headers = format!("Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {digest}\r\n");
                            respond(&mut stream, "200 OK", &headers, &manifest);
                        } else if let Some(b) = path.strip_prefix("/v2/test/app/blobs/").and_then(|d| blobs.get(d)) {
                            respond(&mut stream, "200 OK", "Content-Type: application/octet-stream\r\n", b);
                        } else {
                            respond(&mut stream, "404 Not Found", "", b"");
                        }
                    }
                });
            }
        });
        ExpiringRegistry { host, tokens_issued: issued }
    }
}

#[test]
fn a_pull_goes_on_with_a_new_token_when_the_registry_expires_the_old_one() {
    use airlock_content::sources::fetch::{FetchOptions, Fetcher};
    use airlock_content::sources::oci::{self, ImageRef, OciOptions};

    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layers: Vec<Vec<u8>> = (0..12).map(|i| payload(40_000 + i * 1000, 50 + i as u8)).collect();
    let desc = |media: &str, b: &[u8]| format!(r#"{{"mediaType":"{media}","digest":"sha256:{}","size":{}}}"#, sha256_hex(b), b.len());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
        desc("application/vnd.oci.image.config.v1+json", &config),
        layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>().join(",")
    )
    .into_bytes();
    let mut blobs = BTreeMap::new();
    for b in layers.iter().chain([&config]) {
        blobs.insert(format!("sha256:{}", sha256_hex(b)), b.clone());
    }
    // Each token serves five requests: the pull (a manifest, a config, twelve layers, four at
    // a time) outlives several tokens, and parallel downloads meet an expired one together.
    // Five is one more than the downloads that run at once: then some download has had an
    // answer with a token before any request with it is refused, which is how a client can
    // tell a token that expired from one that never worked (a real token lasts minutes, so
    // always has). Fewer uses than that would test a registry no client can pull from.
    let reg = ExpiringRegistry::start(blobs.clone(), manifest.clone(), 5);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let cfg = work.path().join("docker-config.json");
    std::fs::write(&cfg, "{}").unwrap();
    let opts = OciOptions { docker_config: Some(cfg), concurrency: 4, ..Default::default() };
    let fetcher = Fetcher::new(FetchOptions { retries: 1, timeout: Duration::from_secs(3), backoff: Duration::from_millis(50), ..Default::default() }).unwrap();
    let image = ImageRef::parse(&format!("{}/test/app:v1", reg.host)).unwrap();
    let pulled = oci::pull(&fetcher, &image, &layout, &opts, &|_| {}).unwrap_or_else(|e| panic!("the pull failed on an expired token: {e}"));
    assert!(*reg.tokens_issued.lock().unwrap() >= 3, "tokens expired mid-pull, so more were issued: {}", reg.tokens_issued.lock().unwrap());
    // Every blob arrived whole; nothing else (no .part) is in the layout's blobs.
    for (digest, bytes) in &blobs {
        assert_eq!(&std::fs::read(oci::blob_path(&layout, digest)).unwrap(), bytes, "{digest}");
    }
    assert_eq!(std::fs::read(oci::blob_path(&layout, &pulled.digest)).unwrap(), manifest);
    assert_eq!(std::fs::read_dir(layout.join("blobs/sha256")).unwrap().count(), blobs.len() + 1);
}

// ---------------------------------------------------------------------------------------------
// uri: a body cut off, to a file or into the result

#[test]
fn uri_names_a_body_that_stops_and_writes_no_file() {
    let body = payload(80_000, 61);
    let srv = Scripted::start(vec![
        ("/reset", vec![Answer::Reset { body: body.clone(), after: 20_000 }]),
        ("/stall", vec![Answer::Stall { body: body.clone(), after: 20_000 }]),
        ("/broken", vec![Answer::Status(500)]),
    ]);
    let p = Project::new();
    let dir = p.path("out");
    std::fs::create_dir_all(&dir).unwrap();
    let task = |path: &str, extra: &str| play(&format!("    - uri:\n        url: \"{}\"\n        timeout: 1\n{extra}", srv.url(path)));
    let fails = |pb: &str| {
        p.file("pb.yml", pb);
        let r = p.playbook("pb.yml", &[]);
        r.code(2);
        r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_default().to_string()
    };
    let line = fails(&task("/reset", &format!("        dest: \"{}\"\n", dir.join("f").display())));
    assert!(line.contains("connection was reset after 20000 of 80000 bytes") && line.contains(&srv.url("/reset")), "{line}");
    let line = fails(&task("/stall", "        return_content: true\n"));
    assert!(line.contains("timed out after 1 s reading the body (20000 of 80000 bytes arrived)") && line.contains(&srv.url("/stall")), "{line}");
    let line = fails(&task("/broken", ""));
    assert!(line.contains("Status code was 500"), "{line}");
    assert_eq!(files(&dir), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// A registry whose blobs are cut off

#[test]
fn a_registry_blob_cut_off_is_fetched_again_and_one_that_never_arrives_is_named() {
    use airlock_content::sources::fetch::{FetchOptions, Fetcher};
    use airlock_content::sources::oci::{self, ImageRef, OciOptions};

    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = payload(120_000, 71);
    let desc = |media: &str, b: &[u8]| format!(r#"{{"mediaType":"{media}","digest":"sha256:{}","size":{}}}"#, sha256_hex(b), b.len());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
        desc("application/vnd.oci.image.config.v1+json", &config),
        desc("application/vnd.oci.image.layer.v1.tar+gzip", &layer)
    )
    .into_bytes();
    let blob_path = |b: &[u8]| -> &'static str { Box::leak(format!("/v2/test/app/blobs/sha256:{}", sha256_hex(b)).into_boxed_str()) };
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("docker-config.json");
    std::fs::write(&cfg, "{}").unwrap();
    let opts = OciOptions { docker_config: Some(cfg), ..Default::default() };
    let fetcher = Fetcher::new(FetchOptions { retries: 2, timeout: Duration::from_secs(1), backoff: Duration::from_millis(50), ..Default::default() }).unwrap();

    // The layer is reset halfway once, then served whole: the pull succeeds, the blob verifies.
    let srv = Scripted::start(vec![
        ("/v2/test/app/manifests/v1", vec![Answer::Ok(manifest.clone())]),
        (blob_path(&config), vec![Answer::Ok(config.clone())]),
        (blob_path(&layer), vec![Answer::Reset { body: layer.clone(), after: 50_000 }, Answer::Ok(layer.clone())]),
    ]);
    let image = ImageRef::parse(&format!("{}/test/app:v1", srv.base.trim_start_matches("http://"))).unwrap();
    let layout = work.path().join("a");
    oci::pull(&fetcher, &image, &layout, &opts, &|_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(oci::blob_path(&layout, &format!("sha256:{}", sha256_hex(&layer)))).unwrap(), layer);
    assert_eq!(srv.count(blob_path(&layer)), 2);

    // The layer stalls every time: the error names the blob, its URL and the timeout, and
    // gives no hint about the registry's address (it answered); no blob file is left for it.
    let srv = Scripted::start(vec![
        ("/v2/test/app/manifests/v1", vec![Answer::Ok(manifest.clone())]),
        (blob_path(&config), vec![Answer::Ok(config.clone())]),
        (blob_path(&layer), vec![Answer::Stall { body: layer.clone(), after: 50_000 }]),
    ]);
    let image = ImageRef::parse(&format!("{}/test/app:v1", srv.base.trim_start_matches("http://"))).unwrap();
    let layout = work.path().join("b");
    let e = oci::pull(&fetcher, &image, &layout, &opts, &|_| {}).unwrap_err().to_string();
    assert!(e.contains(&format!("blob sha256:{}", sha256_hex(&layer))) && e.contains(&srv.url(blob_path(&layer))), "{e}");
    assert!(e.contains("timed out after 1 s reading the body (50000 of 120000 bytes arrived)"), "{e}");
    assert!(!e.contains("insecure_registries"), "{e}");
    assert_eq!(srv.count(blob_path(&layer)), 3, "tried once and retried twice");
    let hex = sha256_hex(&layer);
    let left: Vec<String> = support::tree(&layout).into_keys().filter(|k| k.contains(&hex)).collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------------------------------------
// yum_sync: a real repository (rpmbuild, createrepo_c) served by a faulty server

#[test]
fn yum_sync_rides_out_faults_on_metadata_and_packages_and_names_a_package_that_never_arrives() {
    let up = yumfix::Upstream::new(&[]);
    let repo: BTreeMap<String, Vec<u8>> = support::tree(&up.repo());
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let primary = repo.keys().find(|k| k.starts_with("repodata/") && k.contains("primary.xml")).expect("primary metadata").clone();
    let rpms: Vec<String> = repo.keys().filter(|k| k.ends_with(".rpm")).cloned().collect();
    let (reset_rpm, stall_rpm) = (rpms[0].clone(), rpms[1].clone());
    // Every file served whole, but: repomd.xml fails with 503 first, the primary metadata is
    // cut short first, one package is reset and another stalls before arriving whole.
    let routes = |broken: Option<&str>| -> Vec<(&'static str, Vec<Answer>)> {
        repo.iter()
            .map(|(rel, bytes)| {
                let ok = Answer::Ok(bytes.clone());
                let half = bytes.len() / 2;
                let script = if Some(rel.as_str()) == broken {
                    vec![Answer::Short { body: bytes.clone(), after: half }]
                } else if broken.is_some() {
                    vec![ok]
                } else if rel == "repodata/repomd.xml" {
                    vec![Answer::Status(503), ok]
                } else if *rel == primary {
                    vec![Answer::Short { body: bytes.clone(), after: half }, ok]
                } else if *rel == reset_rpm {
                    vec![Answer::Reset { body: bytes.clone(), after: half }, ok]
                } else if *rel == stall_rpm {
                    vec![Answer::Stall { body: bytes.clone(), after: half }, ok]
                } else {
                    vec![ok]
                };
                (leak(format!("/repo/{rel}")), script)
            })
            .collect()
    };
    let task = |base: &str, dest: &Path| {
        play(&format!(
            "    - yum_sync:\n        dest: \"{}\"\n        timeout: 1\n        retries: 2\n        repos:\n          - name: fixture\n            baseurl: \"{base}/repo\"\n",
            dest.display()
        ))
    };
    let srv = Scripted::start(routes(None));
    let p = Project::new();
    let dest = p.path("cache/yum");
    p.file("pb.yml", &task(&srv.base, &dest));
    p.playbook("pb.yml", &[]).success();
    let mirror = support::tree(&dest.join("fixture"));
    for (rel, bytes) in repo.iter().filter(|(r, _)| r.starts_with("repodata/") || r.ends_with(".rpm")) {
        assert_eq!(mirror.get(rel), Some(bytes), "{rel}");
    }
    assert!(mirror.keys().all(|k| !k.ends_with(".part")), "{:?}", mirror.keys());
    for path in ["/repo/repodata/repomd.xml".to_string(), format!("/repo/{primary}"), format!("/repo/{reset_rpm}"), format!("/repo/{stall_rpm}")] {
        assert_eq!(srv.count(&path), 2, "{path} was retried once");
    }

    // A package that is cut short every time: the task fails naming its URL and what
    // happened, and nothing of it is at its path.
    let srv = Scripted::start(routes(Some(&reset_rpm)));
    let dest = p.path("cache2/yum");
    p.file("pb2.yml", &task(&srv.base, &dest));
    let r = p.playbook("pb2.yml", &[]);
    r.code(2).has(&srv.url(&format!("/repo/{reset_rpm}"))).has("the server closed the connection after");
    let name = Path::new(&reset_rpm).file_name().unwrap().to_str().unwrap();
    assert!(support::tree(&dest).keys().all(|k| !k.contains(name)), "{:?}", support::tree(&dest).keys());
}

//! What the integration tests share, one copy of each: the test project that runs the real
//! `airlock` binary (`project`), the upstreams on loopback shaped like the real ones (a Docker
//! registry, pypiserver, Yum repositories, Helm repositories made by the real Helm, a Docker
//! Hub stand-in, scripted faulty servers), `airlock serve` itself, SSH nodes, and small helpers
//! (hashes, file trees, free ports).

pub mod chart_releases;
pub mod helm_client;
pub mod hub;
pub mod nodes;
mod project;
pub mod pypiserver;
pub mod registry;
pub mod scripted;
pub mod serve;
pub mod sshd;
pub mod upstreams;
pub mod yumfix;

pub use project::{Project, Run, ansible_playbook_exe};

use std::path::Path;

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests: each route is (path, status, body). It serves
/// until the test process ends. Returns the base URL.
pub fn serve_routes(routes: Vec<(&'static str, u16, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                let mut content_length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        content_length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body_in = vec![0u8; content_length];
                let _ = std::io::Read::read_exact(&mut reader, &mut body_in);
                let mut parts = request.split_whitespace();
                let method = parts.next().unwrap_or("");
                let path = parts.next().unwrap_or("/").to_string();
                let (status, body) = match routes.iter().find(|(p, _, _)| *p == path) {
                    Some((_, s, b)) => (*s, if path == "/echo" { body_in.clone() } else { b.clone() }),
                    None => (404, b"not found".to_vec()),
                };
                let reason = match status {
                    200 => "OK",
                    201 => "Created",
                    404 => "Not Found",
                    500 => "Internal Server Error",
                    _ => "Status",
                };
                let ctype = if body.first() == Some(&b'{') { "application/json" } else { "application/octet-stream" };
                let head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes());
                if method != "HEAD" {
                    let _ = stream.write_all(&body);
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// sha256 of bytes, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every file under `dir` with its bytes, by path relative to `dir` (directories left out).
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `n` distinct free ports on 127.0.0.1. The listeners are held until all are picked: ports
/// picked one at a time, each listener dropped at once, can come back twice.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

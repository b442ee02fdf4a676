//! Small HTTP servers on 127.0.0.1: fixed answers by path, and Python's static file server.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The head of an HTTP/1.1 request, as the tests' small servers read it.
pub struct Request {
    /// The request line, trimmed (`GET /path HTTP/1.1`).
    pub line: String,
    pub method: String,
    /// The request target, `/` when the line has none.
    pub target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The (first) value of header `name`, any case, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, 0 when absent or not a number.
    pub fn content_length(&self) -> usize {
        self.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// Reads a request's line and headers (not its body); None when the connection ends or fails
/// before the blank line that ends them.
pub fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    Some(Request { line: line.trim().to_string(), method, target, headers })
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests: each route is (path, status, body). It serves
/// until the test process ends. Returns the base URL.
pub fn serve_routes(routes: Vec<(&'static str, u16, Vec<u8>)>) -> String {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some(request) = read_request(&mut reader) else { return };
                let mut body_in = vec![0u8; request.content_length()];
                let _ = std::io::Read::read_exact(&mut reader, &mut body_in);
                let (method, path) = (request.method.as_str(), request.target.clone());
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

/// `python3 -m http.server` serving `dir` on a free port of 127.0.0.1, killed when dropped.
pub struct StaticServer {
    pub port: u16,
    child: Child,
}

impl StaticServer {
    pub fn start(dir: &Path) -> StaticServer {
        let port = super::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut server = StaticServer { port, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("python3 -m http.server exited: {status}");
            }
            assert!(start.elapsed() < Duration::from_secs(20), "python3 -m http.server did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The URL of `path` (relative, no leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

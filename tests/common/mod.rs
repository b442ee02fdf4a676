//! A test project: a temporary directory with files, and the real `airlock` binary run in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The counts of one host's `PLAY RECAP` line.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Recap {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl Run {
    /// Asserts exit code 0, showing the output otherwise.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts a given exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts stdout contains `s`.
    #[track_caller]
    pub fn has(&self, s: &str) -> &Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts stdout does not contain `s`.
    #[track_caller]
    pub fn lacks(&self, s: &str) -> &Self {
        assert!(!self.stdout.contains(s), "stdout has {s:?}\n--- stdout\n{}", self.stdout);
        self
    }

    /// Asserts stderr contains `s`.
    #[track_caller]
    pub fn err_has(&self, s: &str) -> &Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// The recap of `host`.
    #[track_caller]
    pub fn recap(&self, host: &str) -> Recap {
        let line = self
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("PLAY RECAP"))
            .find(|l| l.split_whitespace().next() == Some(host))
            .unwrap_or_else(|| panic!("no recap line for {host}\n{}\n{}", self.stdout, self.stderr));
        let mut r = Recap::default();
        for part in line.split_whitespace() {
            if let Some((k, v)) = part.split_once('=') {
                let v: u32 = v.parse().unwrap();
                match k {
                    "ok" => r.ok = v,
                    "changed" => r.changed = v,
                    "unreachable" => r.unreachable = v,
                    "failed" => r.failed = v,
                    "skipped" => r.skipped = v,
                    "rescued" => r.rescued = v,
                    "ignored" => r.ignored = v,
                    _ => {}
                }
            }
        }
        r
    }

    /// Lines printed by debug `msg` results, in order (`"msg": ...` values as JSON text).
    pub fn msgs(&self) -> Vec<String> {
        self.stdout.lines().filter_map(|l| l.trim_start().strip_prefix("\"msg\": ")).map(|s| s.to_string()).collect()
    }
}

impl Project {
    pub fn new() -> Project {
        Project { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating folders), returning self for chaining.
    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Runs `airlock ARGS` in the project directory.
    pub fn airlock(&self, args: &[&str]) -> Run {
        self.command(Path::new(env!("CARGO_BIN_EXE_airlock")), args, &[])
    }

    /// Runs `airlock playbook -i localhost, PLAYBOOK ARGS`.
    pub fn playbook(&self, pb: &str, args: &[&str]) -> Run {
        let mut all = vec!["playbook", "-i", "localhost,", pb];
        all.extend_from_slice(args);
        self.airlock(&all)
    }

    pub fn command(&self, exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(exe);
        cmd.args(args).current_dir(self.dir.path()).env("NO_COLOR", "1").env("ANSIBLE_NOCOLOR", "1").env_remove("ANSIBLE_CONFIG").env("HOME", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs ansible-playbook 2.19 (installed by `.ci/setup-ansible`) on the same playbook.
    pub fn ansible_playbook(&self, pb: &str, args: &[&str]) -> Run {
        let exe = ansible_playbook_exe();
        let mut all = vec!["-i", "localhost,", "-c", "local", pb];
        all.extend_from_slice(args);
        let python = exe.with_file_name("python");
        self.command(
            &exe,
            &all,
            &[("ANSIBLE_LOCALHOST_WARNING", "False"), ("ANSIBLE_DEPRECATION_WARNINGS", "False"), ("ANSIBLE_PYTHON_INTERPRETER", python.to_str().unwrap())],
        )
    }
}

/// Where ansible-playbook is: `AIRLOCK_TEST_ANSIBLE`, else `target/ansible/bin/ansible-playbook`.
pub fn ansible_playbook_exe() -> PathBuf {
    let p = std::env::var_os("AIRLOCK_TEST_ANSIBLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible/bin/ansible-playbook"));
    assert!(p.exists(), "ansible-playbook not found at {}: run `bash .ci/setup-ansible` once", p.display());
    p
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests: each route is (path, status, body). It serves
/// until the test process ends. Returns the base URL.
pub fn serve(routes: Vec<(&'static str, u16, Vec<u8>)>) -> String {
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

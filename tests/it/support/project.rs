//! A test project: a temporary directory with files, and the real `airlock` binary run in it.

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

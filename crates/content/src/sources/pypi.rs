//! Python packages for an offline PyPI mirror: the wheels (and, for the host's own Python,
//! sdists) that a requirement list resolves to for a TARGET Python version and platform, in one
//! flat directory that pypiserver serves as it is.
//!
//! pip does the resolving and the downloading, so its resolver, its wheel-tag rules, its
//! configuration (certificates, proxies, credentials, keyring) and its hash checks are the ones
//! the offline hosts will meet. Two pip runs:
//!
//! 1. `pip install --dry-run --ignore-installed --target <tmp> --report <tmp>/report.json` (pip >=
//!    22.2) resolves the whole set for the target and says, for each distribution, its name,
//!    version, URL and sha256. (`pip download` has no `--report`, up to pip 26 at least.)
//! 2. `pip download --no-deps --require-hashes` of exactly those pins fetches the very files the
//!    resolver chose (hash-checking mode makes pip take the file with that hash) into a
//!    temporary directory inside `dest`; each is hashed again here and renamed into `dest`.
//!    Files already in `dest` with the resolved sha256 are not fetched again.
//!
//! With an older pip (no `--report`), one `pip download` resolves and fetches; names and
//! versions then come from the file names, and URLs from pip's "Downloading <url>" lines where
//! pip prints a whole URL (it prints only the file name for files on pypi.org), else `None`.
//!
//! **Wheels or sdists.** When the target names anything (a Python version, a platform, an
//! implementation or an ABI), pip is run with `--only-binary=:all:`: an sdist would have to be
//! built on this host, for this host, and pip refuses target options without it. A project
//! with no wheel for the target then fails, quoting pip. When the target is left empty, the
//! running interpreter is the target; then `--prefer-binary` is used and sdists are allowed for
//! projects without a matching wheel. The implementation defaults to `cp` as soon as the target
//! names anything, so a PyPy or other connected host still fetches CPython wheels.
//!
//! **Reruns.** `<dest>/.airlock-pip.json` records the inputs (requirements, index URLs, target)
//! and the resolved files. When the inputs are the same and every recorded file is in `dest`
//! with its size and sha256, nothing runs: not even Python. Changed inputs resolve again; files
//! of an earlier set are left in `dest` (pypiserver serves them too; nothing here deletes files
//! it cannot be sure it owns). The state and the temporary directory start with a dot, which
//! pypiserver does not list.
//!
//! **Environment.** The indexes are the ones given: `PIP_*` variables that would change what is
//! resolved or where it goes (`PIP_FIND_LINKS`, `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`,
//! `PIP_NO_DEPS`, `PIP_TARGET`, ...) are removed for the pip runs; those about connecting
//! (`PIP_CERT`, `PIP_PROXY`, `PIP_TRUSTED_HOST`, timeouts, retries, cache, keyring, config
//! file) are kept. pip configuration files are read as usual. An `http://` index is passed to
//! pip with `--trusted-host` for its host (naming a plain-HTTP index is taken as trusting it).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::fetch::parallel;
use airlock_base::digest::sha256_file;

/// The name of the state file in `dest`.
pub const STATE_FILE: &str = ".airlock-pip.json";

/// The interpreter the packages are for (not the one running pip).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipTarget {
    /// `"3.10"` (pip's `--python-version`); `None`: the running interpreter's.
    pub python_version: Option<String>,
    /// Platform tags, most preferred first, e.g. `["manylinux2014_x86_64", "linux_x86_64"]`
    /// (each a `--platform`); empty: the running host's.
    pub platforms: Vec<String>,
    /// `"cp"` (pip's `--implementation`); `None`: `cp` when anything else is set.
    pub implementation: Option<String>,
    /// ABI tags, comma-separated for several (each a `--abi`); `None`: derived by pip from the
    /// implementation and Python version.
    pub abi: Option<String>,
}

impl PipTarget {
    /// True when the target names nothing: the running interpreter is the target.
    pub fn is_host(&self) -> bool {
        self.python_version.as_deref().is_none_or(|s| s.trim().is_empty())
            && self.platforms.iter().all(|p| p.trim().is_empty())
            && self.implementation.as_deref().is_none_or(|s| s.trim().is_empty())
            && self.abi.as_deref().is_none_or(|s| s.trim().is_empty())
    }

    /// The same target with blanks dropped and the implementation defaulted.
    fn normalized(&self) -> PipTarget {
        let clean = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if self.is_host() {
            return PipTarget::default();
        }
        PipTarget {
            python_version: clean(&self.python_version),
            platforms: self.platforms.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
            implementation: Some(clean(&self.implementation).unwrap_or_else(|| "cp".to_string())),
            abi: clean(&self.abi),
        }
    }

    /// For messages: `for cp 3.10 manylinux2014_x86_64 (wheels only)` (already normalized).
    fn describe(&self) -> String {
        if self.is_host() {
            return "for the Python running pip".to_string();
        }
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(self.implementation.as_deref());
        parts.extend(self.python_version.as_deref());
        parts.extend(self.abi.as_deref());
        parts.extend(self.platforms.iter().map(String::as_str));
        format!("for {} (wheels only)", parts.join(" "))
    }

    /// pip's options for this target (already normalized).
    fn args(&self) -> Vec<String> {
        if self.is_host() {
            return vec!["--prefer-binary".into()];
        }
        let mut a = vec!["--only-binary=:all:".to_string()];
        if let Some(i) = &self.implementation {
            a.extend(["--implementation".into(), i.clone()]);
        }
        if let Some(v) = &self.python_version {
            a.extend(["--python-version".into(), v.clone()]);
        }
        for p in &self.platforms {
            a.extend(["--platform".into(), p.clone()]);
        }
        if let Some(abi) = &self.abi {
            for x in abi.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                a.extend(["--abi".into(), x.to_string()]);
            }
        }
        a
    }
}

/// One file in `dest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipFile {
    /// The file name in `dest`, e.g. `requests-2.31.0-py3-none-any.whl`.
    pub filename: String,
    /// The project name, normalized as PEP 503 does (`charset-normalizer`, `markupsafe`).
    pub name: String,
    /// The version, as the distribution's metadata (or its file name) gives it.
    pub version: String,
    /// Lowercase hex, computed here from the bytes in `dest`.
    pub sha256: String,
    pub size: u64,
    /// Where pip got it (credentials removed, as pip reports it); `None` when not known (an old
    /// pip that prints only file names).
    pub url: Option<String>,
}

/// What [`download`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipDownload {
    /// Every file of the resolved set, sorted by name, then file name.
    pub files: Vec<PipFile>,
    /// False when nothing new was put in `dest` (all there and verified already).
    pub downloaded: bool,
}

/// Why [`download`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PipError {
    /// No usable Python, or no pip in it.
    #[error("{python}: {msg}")]
    Python { python: String, msg: String },
    /// pip failed; `lines` are pip's own lines that explain why.
    /// `what`: `resolve <requirements> for <target>` or `download ...`.
    #[error("pip could not {what} from {index}:\n{}", lines.join("\n"))]
    Pip { what: String, index: String, status: Option<i32>, lines: Vec<String> },
    /// pip succeeded but its result is not what was asked for.
    #[error("{0}")]
    Unexpected(String),
    #[error("{filename}: sha256 {actual} does not match {expected} from {url}")]
    Checksum { filename: String, url: String, expected: String, actual: String },
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// A CA file given to trust (`ca_path`, a host's CA) cannot be used.
    #[error(transparent)]
    Ca(airlock_base::http::CaFileError),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PipError + '_ {
    move |e| PipError::Io { path: path.display().to_string(), msg: e.to_string() }
}

/// What a rerun is compared on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Inputs {
    requirements: Vec<String>,
    index_url: String,
    extra_index_urls: Vec<String>,
    target: PipTarget,
}

impl Inputs {
    /// The inputs as the state file keeps them: without the passwords of index URLs, which
    /// do not change what is downloaded and must not sit in the cache (it goes into the
    /// archive's tree).
    fn on_disk(&self) -> Inputs {
        Inputs {
            index_url: airlock_base::http::mask_url(&self.index_url),
            extra_index_urls: self.extra_index_urls.iter().map(|u| airlock_base::http::mask_url(u)).collect(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    inputs: Inputs,
    files: Vec<PipFile>,
}

/// How to learn what pip resolved.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--report` when pip has it (>= 22.2), else file names.
    Auto,
    /// One `pip download`, names and versions from file names (what an old pip gets).
    FileNames,
}

/// Downloads what `requirements` (pip requirement strings, e.g. `requests==2.31.0`,
/// `kubernetes>=28`) resolve to, dependencies included, for `target`, from `index_url` and
/// `extra_index_urls`, into the flat directory `dest`. `python` is the interpreter that runs
/// pip (`python3` on `PATH` when `None`); it need not match the target. A rerun with the same
/// inputs whose files are all in place and verified runs nothing and returns
/// `downloaded: false`. See the module documentation for wheels vs sdists and what is kept.
pub fn download(
    requirements: &[String],
    index_url: &str,
    extra_index_urls: &[String],
    target: &PipTarget,
    dest: &Path,
    python: Option<&Path>,
) -> Result<PipDownload, PipError> {
    download_with(requirements, index_url, extra_index_urls, target, dest, python, Mode::Auto, &PipNet::default())
}

/// How pip connects: the site's CA certificates, its timeout and retries (the same
/// `ca_path`, `timeout` and `retries` the other download modules take).
#[derive(Clone, Debug, Default)]
pub struct PipNet {
    /// CA certificates (PEM) trusted besides the system's: pip gets a bundle of both as
    /// `PIP_CERT` (and `REQUESTS_CA_BUNDLE`, which would win over it), since its `--cert`
    /// replaces the bundle it would use.
    pub ca_path: Option<PathBuf>,
    /// More CA files, from `host_ca_paths`: pip cannot trust a CA for one host only, so these
    /// join the same bundle.
    pub more_cas: Vec<PathBuf>,
    /// pip's `--timeout`, seconds per socket operation.
    pub timeout: Option<u64>,
    /// pip's `--retries`.
    pub retries: Option<u32>,
}

/// [`download`] with [`PipNet`] settings for how pip connects, and `mode` for how its result
/// is read ([`Mode::Auto`] but in tests of the old-pip path).
// pip download's own options, one argument each, as the module takes them.
#[allow(clippy::too_many_arguments)]
pub fn download_with(
    requirements: &[String],
    index_url: &str,
    extra_index_urls: &[String],
    target: &PipTarget,
    dest: &Path,
    python: Option<&Path>,
    mode: Mode,
    net: &PipNet,
) -> Result<PipDownload, PipError> {
    let inputs = Inputs {
        requirements: requirements.iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect(),
        index_url: index_url.trim().to_string(),
        extra_index_urls: extra_index_urls.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
        target: target.normalized(),
    };
    if inputs.requirements.is_empty() {
        return Ok(PipDownload { files: Vec::new(), downloaded: false });
    }
    if inputs.index_url.is_empty() {
        return Err(PipError::Unexpected("pip index URL is empty".into()));
    }
    let state_path = dest.join(STATE_FILE);
    if let Some(files) = unchanged(&state_path, &inputs.on_disk(), dest) {
        return Ok(PipDownload { files, downloaded: false });
    }

    let python = python.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("python3"));
    let mut pip = Pip::probe(&python, &inputs)?;
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    // One run at a time in dest; what a killed run left there goes first.
    let (_lock, _) = airlock_base::staging::DirLock::acquire(dest, TMP_PREFIX).map_err(io_err(dest))?;
    let tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempdir_in(dest).map_err(io_err(dest))?;
    pip.env = net_env(net, tmp.path())?;
    let use_report = mode == Mode::Auto && pip.version >= (22, 2);
    let (files, downloaded) = if use_report { pip.via_report(tmp.path(), dest)? } else { pip.via_file_names(tmp.path(), dest)? };
    let mut files = files;
    files.sort_by(|a, b| (&a.name, &a.filename).cmp(&(&b.name, &b.filename)));
    write_state(&state_path, &State { inputs: inputs.on_disk(), files: files.clone() })?;
    Ok(PipDownload { files, downloaded })
}

/// The recorded files, when the inputs are the same and every file is in place and verified.
fn unchanged(state_path: &Path, inputs: &Inputs, dest: &Path) -> Option<Vec<PipFile>> {
    let state: State = serde_json::from_slice(&fs::read(state_path).ok()?).ok()?;
    if &state.inputs != inputs || state.files.is_empty() {
        return None;
    }
    let ok = parallel(state.files.iter().collect(), 4, |f: &PipFile| verified(&dest.join(&f.filename), f.size, &f.sha256));
    ok.into_iter().all(|b| b).then_some(state.files)
}

/// True when `path` is a file of `size` bytes (unless `size` is 0) with this sha256.
fn verified(path: &Path, size: u64, sha256: &str) -> bool {
    match fs::metadata(path) {
        Ok(m) if m.is_file() && (size == 0 || m.len() == size) => {}
        _ => return false,
    }
    sha256_file(path).map(|(_, s)| s.eq_ignore_ascii_case(sha256)).unwrap_or(false)
}

fn write_state(path: &Path, state: &State) -> Result<(), PipError> {
    let part = super::fetch::part_path(path);
    let text = serde_json::to_vec_pretty(state).map_err(|e| PipError::Unexpected(e.to_string()))?;
    fs::write(&part, text).map_err(io_err(&part))?;
    fs::rename(&part, path).map_err(io_err(path))
}

/// Runs `program` (its arguments added by the caller) under `sh`, in a process group of its
/// own, such that the whole group ends when airlock dies, even by SIGKILL: pip left running
/// after a killed run would go on downloading into a directory nothing reads, and pip's own
/// children (and a pyenv shim's) are grandchildren, which the kernel's parent-death signal
/// does not reach. So `sh` gets SIGTERM when airlock dies and passes it to its group.
///
/// SIGTERM first, so that what cleans up on exit can; whatever is still there a second later
/// gets SIGKILL.
fn die_with_airlock(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    // `wait` returns as soon as a trapped signal arrives, so the trap runs at once; the trap
    // ignores TERM first so that the TERM it sends its group does not run it again. The
    // script's status is pip's.
    const GUARD: &str = "trap 'trap \"\" TERM; kill -TERM 0; sleep 1; kill -KILL 0' TERM; \"$@\" & wait $!";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", GUARD, "sh"]).arg(program);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // airlock died before the signal was asked for: do not start at all.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("airlock exited"));
            }
            Ok(())
        });
    }
    cmd
}

/// pip's work directory in dest, renamed from when done (see [`airlock_base::staging`]).
const TMP_PREFIX: &str = ".airlock-pip-";

/// A Python with pip, and what to run it on.
struct Pip<'a> {
    python: PathBuf,
    version: (u32, u32),
    inputs: &'a Inputs,
    /// Settings of [`PipNet`] as pip's environment variables.
    env: Vec<(String, OsString)>,
}

/// The system's CA bundle, as OpenSSL would find it: `SSL_CERT_FILE`, else the usual paths.
fn system_ca_bundle() -> Option<PathBuf> {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(f);
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// pip's environment for `net`; a CA bundle (the system's and the site's CAs) is written in
/// `tmp`, which lives as long as the pip runs.
fn net_env(net: &PipNet, tmp: &Path) -> Result<Vec<(String, OsString)>, PipError> {
    let mut env = Vec::new();
    let cas: Vec<&PathBuf> = net.ca_path.iter().chain(&net.more_cas).collect();
    if !cas.is_empty() {
        let mut bundle = Vec::new();
        if let Some(system) = system_ca_bundle() {
            bundle = fs::read(&system).map_err(io_err(&system))?;
            bundle.push(b'\n');
        }
        for ca in cas {
            airlock_base::http::load_ca_file(ca).map_err(PipError::Ca)?;
            bundle.extend(fs::read(ca).map_err(io_err(ca))?);
            bundle.push(b'\n');
        }
        let path = tmp.join("ca-bundle.pem");
        fs::write(&path, bundle).map_err(io_err(&path))?;
        // requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE win over pip's own `--cert`
        // (psf/requests#3829), and many hosts set them: they get the same bundle.
        for var in ["PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
            env.push((var.to_string(), path.clone().into_os_string()));
        }
    }
    if let Some(t) = net.timeout {
        env.push(("PIP_TIMEOUT".to_string(), t.to_string().into()));
    }
    if let Some(r) = net.retries {
        env.push(("PIP_RETRIES".to_string(), r.to_string().into()));
    }
    Ok(env)
}

/// `PIP_*` variables passed on to pip; the others are removed (see the module documentation).
const KEPT_PIP_VARS: &[&str] = &[
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_PROXY",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_TIMEOUT",
    "PIP_RETRIES",
    "PIP_CACHE_DIR",
    "PIP_NO_CACHE_DIR",
    "PIP_KEYRING_PROVIDER",
    "PIP_CONFIG_FILE",
    "PIP_LOG",
    "PIP_LOG_FILE",
];

impl<'a> Pip<'a> {
    /// Checks that pip imports, and learns its version (faster than `python -m pip --version`).
    fn probe(python: &Path, inputs: &'a Inputs) -> Result<Pip<'a>, PipError> {
        let shown = python.display().to_string();
        let out = Command::new(python)
            .args(["-c", "import sys, pip; print(pip.__version__); print(sys.executable)"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| PipError::Python {
                python: shown.clone(),
                msg: if e.kind() == std::io::ErrorKind::NotFound {
                    "not found: install Python 3 with pip, or give the pip_download module a `python` that has pip".to_string()
                } else {
                    format!("cannot run it: {e}")
                },
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(PipError::Python {
                python: shown,
                msg: format!(
                    "pip is not available ({why}): install pip for it (`{} -m ensurepip`, or the distribution's python3-pip package), or give the pip_download module a `python` that has pip",
                    python.display()
                ),
            });
        }
        let version =
            parse_pip_version(&stdout).ok_or_else(|| PipError::Python { python: shown, msg: format!("unexpected pip version {:?}", stdout.trim()) })?;
        // pip runs on the interpreter itself, not through a wrapper such as pyenv's shim: the
        // shim runs `pyenv rehash` after `pip install`, which holds a machine-wide lock file
        // that a killed run (see die_with_airlock) would leave behind, failing every later pip.
        let real = stdout.lines().nth(1).map(str::trim).filter(|p| !p.is_empty() && Path::new(p).is_file()).map(PathBuf::from);
        Ok(Pip { python: real.unwrap_or_else(|| python.to_path_buf()), version, inputs, env: Vec::new() })
    }

    /// `python -m pip` with a cleaned environment, in a process group that dies with airlock
    /// (see [`die_with_airlock`]).
    fn command(python: &Path) -> Command {
        let mut cmd = die_with_airlock(python);
        cmd.args(["-m", "pip"]);
        for (k, _) in std::env::vars_os() {
            let Some(key) = k.to_str() else { continue };
            if key.to_ascii_uppercase().starts_with("PIP_") && !KEPT_PIP_VARS.contains(&key.to_ascii_uppercase().as_str()) {
                cmd.env_remove(&k);
            }
        }
        cmd.env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_NO_COLOR", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONUNBUFFERED", "1");
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    /// The index options: `--index-url`, `--extra-index-url`s and `--trusted-host` for http ones.
    fn index_args(&self) -> Vec<String> {
        let mut a = vec!["--index-url".to_string(), self.inputs.index_url.clone()];
        for u in &self.inputs.extra_index_urls {
            a.extend(["--extra-index-url".into(), u.clone()]);
        }
        let mut trusted: Vec<String> = Vec::new();
        for u in std::iter::once(&self.inputs.index_url).chain(&self.inputs.extra_index_urls) {
            if let Ok(parsed) = url::Url::parse(u)
                && parsed.scheme() == "http"
                && let Some(host) = parsed.host_str()
            {
                let h = match parsed.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                if !trusted.contains(&h) {
                    trusted.push(h);
                }
            }
        }
        for h in trusted {
            a.extend(["--trusted-host".into(), h]);
        }
        a
    }

    /// The indexes, credentials hidden, for messages.
    fn index_desc(&self) -> String {
        let mut s = redact(&self.inputs.index_url);
        if !self.inputs.extra_index_urls.is_empty() {
            s.push_str(" (extra: ");
            s.push_str(&self.inputs.extra_index_urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", "));
            s.push(')');
        }
        s
    }

    /// Runs pip with `args`; on failure, quotes pip's explanation.
    fn run(&self, action: &str, requirements: &str, args: &[OsString]) -> Result<String, PipError> {
        let out = Self::command(&self.python)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .output()
            .map_err(|e| PipError::Python { python: self.python.display().to_string(), msg: format!("cannot run it: {e}") })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut lines = explain(&stderr);
        if lines.is_empty() {
            lines = explain(&stdout);
        }
        if lines.is_empty() {
            // No `ERROR:` line (a traceback, a killed interpreter): pip's last words instead.
            lines.push(format!("pip exited with {}", out.status));
            let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).filter(|l| !l.trim().is_empty()).collect();
            lines.extend(tail[tail.len().saturating_sub(8)..].iter().map(|l| l.to_string()));
        }
        Err(PipError::Pip {
            what: format!("{action} {requirements} {}", self.inputs.target.describe()),
            index: self.index_desc(),
            status: out.status.code(),
            lines,
        })
    }

    fn requirement_list(&self) -> String {
        self.inputs.requirements.join(", ")
    }

    /// Resolves with `pip install --dry-run --report`, then downloads exactly that set.
    fn via_report(&self, tmp: &Path, dest: &Path) -> Result<(Vec<PipFile>, bool), PipError> {
        let report = tmp.join("report.json");
        let mut args: Vec<OsString> = ["install", "--dry-run", "--ignore-installed", "--quiet", "--progress-bar", "off"].map(OsString::from).to_vec();
        args.extend([OsString::from("--target"), tmp.join("target").into(), "--report".into(), report.clone().into()]);
        args.extend(self.inputs.target.args().into_iter().map(OsString::from));
        args.extend(self.index_args().into_iter().map(OsString::from));
        args.push("--".into());
        args.extend(self.inputs.requirements.iter().map(OsString::from));
        self.run("resolve", &self.requirement_list(), &args)?;
        let text = fs::read(&report).map_err(io_err(&report))?;
        let resolved = parse_report(&text)?;
        if resolved.is_empty() {
            return Err(PipError::Unexpected(format!("pip resolved {} to nothing", self.requirement_list())));
        }

        // What is already in dest with the resolved hash is kept; the rest is fetched.
        let have = parallel(resolved.iter().collect(), 4, |r: &Resolved| r.sha256.as_deref().is_some_and(|h| verified(&dest.join(&r.filename), 0, h)));
        let missing: Vec<&Resolved> = resolved.iter().zip(&have).filter(|(_, h)| !**h).map(|(r, _)| r).collect();
        let dl = tmp.join("dl");
        if !missing.is_empty() {
            // Hash-checking mode is all or nothing, so pins with and without hashes go apart.
            let (hashed, plain): (Vec<&Resolved>, Vec<&Resolved>) = missing.iter().partition(|r| r.sha256.is_some());
            for (i, group) in [hashed, plain].into_iter().enumerate() {
                if group.is_empty() {
                    continue;
                }
                let pins = tmp.join(format!("pins-{i}.txt"));
                let text: String = group.iter().map(|r| r.pin() + "\n").collect();
                fs::write(&pins, text).map_err(io_err(&pins))?;
                let mut args: Vec<OsString> = ["download", "--no-deps", "--progress-bar", "off"].map(OsString::from).to_vec();
                if i == 0 {
                    args.push("--require-hashes".into());
                }
                args.extend([OsString::from("--dest"), dl.clone().into()]);
                args.extend(self.inputs.target.args().into_iter().map(OsString::from));
                args.extend(self.index_args().into_iter().map(OsString::from));
                args.extend([OsString::from("-r"), pins.into()]);
                let what = group.iter().map(|r| format!("{}=={}", r.name, r.version)).collect::<Vec<_>>().join(", ");
                self.run("download", &what, &args)?;
            }
        }

        let mut files = Vec::new();
        for (r, had) in resolved.iter().zip(&have) {
            let target = dest.join(&r.filename);
            let (size, sha256) = if *had {
                sha256_file(&target).map_err(io_err(&target))?
            } else {
                let got = dl.join(&r.filename);
                if !got.is_file() {
                    let there: Vec<String> =
                        fs::read_dir(&dl).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
                    return Err(PipError::Unexpected(format!(
                        "pip did not download {} (resolved from {}); it saved: {}",
                        r.filename,
                        r.url,
                        if there.is_empty() { "nothing".to_string() } else { there.join(", ") }
                    )));
                }
                let (size, s) = sha256_file(&got).map_err(io_err(&got))?;
                if let Some(exp) = &r.sha256
                    && !exp.eq_ignore_ascii_case(&s)
                {
                    return Err(PipError::Checksum { filename: r.filename.clone(), url: r.url.clone(), expected: exp.clone(), actual: s });
                }
                (size, s)
            };
            files.push(PipFile {
                filename: r.filename.clone(),
                name: normalize_name(&r.name),
                version: r.version.clone(),
                sha256,
                size,
                url: Some(r.url.clone()),
            });
        }
        // Everything verified: move the new files in.
        for (r, had) in resolved.iter().zip(&have) {
            if !*had {
                let target = dest.join(&r.filename);
                fs::rename(dl.join(&r.filename), &target).map_err(io_err(&target))?;
            }
        }
        Ok((files, !missing.is_empty()))
    }

    /// One `pip download` that resolves and fetches; names and versions from file names.
    fn via_file_names(&self, tmp: &Path, dest: &Path) -> Result<(Vec<PipFile>, bool), PipError> {
        let dl = tmp.join("dl");
        let mut args: Vec<OsString> = ["download", "--progress-bar", "off"].map(OsString::from).to_vec();
        args.extend([OsString::from("--dest"), dl.clone().into()]);
        args.extend(self.inputs.target.args().into_iter().map(OsString::from));
        args.extend(self.index_args().into_iter().map(OsString::from));
        args.push("--".into());
        args.extend(self.inputs.requirements.iter().map(OsString::from));
        let stdout = self.run("download", &self.requirement_list(), &args)?;
        let urls = logged_urls(&stdout);
        let mut names: Vec<String> = match fs::read_dir(&dl) {
            Ok(d) => d.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        if names.is_empty() {
            return Err(PipError::Unexpected(format!("pip downloaded nothing for {}", self.requirement_list())));
        }
        let mut files = Vec::new();
        for f in &names {
            let path = dl.join(f);
            let (size, sha256) = sha256_file(&path).map_err(io_err(&path))?;
            let (name, version) = parse_filename(f).ok_or_else(|| PipError::Unexpected(format!("cannot tell the project and version of {f}")))?;
            files.push(PipFile { filename: f.clone(), name, version, sha256, size, url: urls.get(f).cloned() });
        }
        for f in &names {
            let target = dest.join(f);
            fs::rename(dl.join(f), &target).map_err(io_err(&target))?;
        }
        Ok((files, true))
    }
}

/// One distribution of pip's report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    name: String,
    version: String,
    url: String,
    filename: String,
    sha256: Option<String>,
    /// Given as `name @ url` rather than found on an index.
    direct: bool,
}

impl Resolved {
    /// Its line in a requirements file for `pip download --no-deps`.
    fn pin(&self) -> String {
        let mut s = if self.direct { format!("{} @ {}", self.name, self.url) } else { format!("{}=={}", self.name, self.version) };
        if let Some(h) = &self.sha256 {
            s.push_str(" --hash=sha256:");
            s.push_str(h);
        }
        s
    }
}

/// The distributions in a `pip install --report` (format version 1).
fn parse_report(text: &[u8]) -> Result<Vec<Resolved>, PipError> {
    let bad = |m: &str| PipError::Unexpected(format!("pip's installation report: {m}"));
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| bad(&e.to_string()))?;
    let items = v.get("install").and_then(|i| i.as_array()).ok_or_else(|| bad("no \"install\" list"))?;
    let mut out = Vec::new();
    for it in items {
        let name = it.pointer("/metadata/name").and_then(|s| s.as_str()).ok_or_else(|| bad("an entry without metadata.name"))?;
        let version = it.pointer("/metadata/version").and_then(|s| s.as_str()).ok_or_else(|| bad(&format!("{name} has no metadata.version")))?;
        let info = it.get("download_info").ok_or_else(|| bad(&format!("{name} has no download_info")))?;
        let url = info.get("url").and_then(|s| s.as_str()).ok_or_else(|| bad(&format!("{name} has no download URL")))?;
        if info.get("vcs_info").is_some() || info.pointer("/dir_info").is_some() {
            return Err(PipError::Unexpected(format!("{name} {version} comes from {url}, a VCS checkout or a local directory, not a file a mirror can serve")));
        }
        let sha256 = info
            .pointer("/archive_info/hashes/sha256")
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .or_else(|| info.pointer("/archive_info/hash").and_then(|s| s.as_str()).and_then(|h| h.strip_prefix("sha256=")).map(str::to_string))
            .map(|h| h.to_ascii_lowercase());
        let filename = url_filename(url).ok_or_else(|| bad(&format!("cannot tell the file name of {url}")))?;
        out.push(Resolved {
            name: name.to_string(),
            version: version.to_string(),
            url: url.to_string(),
            filename,
            sha256,
            direct: it.get("is_direct").and_then(|b| b.as_bool()).unwrap_or(false),
        });
    }
    Ok(out)
}

/// The last path segment of a URL, percent-decoded.
fn url_filename(u: &str) -> Option<String> {
    let parsed = url::Url::parse(u).ok()?;
    let last = parsed.path_segments()?.next_back()?.to_string();
    let name = percent_decode(&last);
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `23.2.1` → (23, 2).
fn parse_pip_version(s: &str) -> Option<(u32, u32)> {
    let v = s.split_whitespace().next()?;
    let mut parts = v.split('.');
    let num = |p: Option<&str>| -> Option<u32> {
        let d: String = p?.chars().take_while(|c| c.is_ascii_digit()).collect();
        d.parse().ok()
    };
    let major = num(parts.next())?;
    Some((major, num(parts.next()).unwrap_or(0)))
}

/// A project name as PEP 503 normalizes it.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The (normalized) project name and version of a wheel or sdist file name.
pub fn parse_filename(f: &str) -> Option<(String, String)> {
    if let Some(stem) = f.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() < 5 {
            return None;
        }
        return Some((normalize_name(parts[0]), parts[1].to_string()));
    }
    let stem = [".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"].iter().find_map(|ext| f.strip_suffix(ext))?;
    // The version starts at the first '-' followed by a digit: `python-dateutil-2.8.2`.
    let b = stem.as_bytes();
    let at = (0..b.len().saturating_sub(1)).find(|&i| b[i] == b'-' && b[i + 1].is_ascii_digit())?;
    Some((normalize_name(&stem[..at]), stem[at + 1..].to_string()))
}

/// file name → URL, from pip's "Downloading <url> (size)" and "Using cached <url>" lines where
/// pip prints a whole URL.
fn logged_urls(stdout: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in stdout.lines() {
        let l = line.trim();
        let Some(rest) = l.strip_prefix("Downloading ").or_else(|| l.strip_prefix("Using cached ")) else { continue };
        let u = rest.split_whitespace().next().unwrap_or("");
        if u.contains("://")
            && let Some(f) = url_filename(u)
        {
            m.insert(f, u.to_string());
        }
    }
    m
}

/// The lines of pip's output that explain a failure: its warnings (an index ignored, retries),
/// then everything from the first error on; at most 40 lines. Empty when pip said nothing of
/// the kind.
fn explain(output: &str) -> Vec<String> {
    let mut warnings: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for line in output.lines() {
        let l = line.trim_end();
        if l.trim().is_empty() {
            continue;
        }
        let t = l.trim_start();
        if errors.is_empty() && !(t.starts_with("ERROR:") || t.starts_with("error:")) {
            if t.starts_with("WARNING:") && !warnings.iter().any(|w| w == t) {
                warnings.push(t.to_string());
            }
            continue;
        }
        errors.push(l.to_string());
    }
    if errors.is_empty() {
        return Vec::new();
    }
    if warnings.len() > 5 {
        let n = warnings.len();
        warnings.drain(2..n - 3);
    }
    let mut all = warnings;
    all.extend(errors);
    all.truncate(40);
    all
}

/// A URL with its password (and a user name that could be a token) hidden.
fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("****"));
            } else {
                let _ = parsed.set_username("****");
            }
            parsed.to_string()
        }
        _ => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_file_names() {
        assert_eq!(normalize_name("Charset_Normalizer"), "charset-normalizer");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("a__-b"), "a-b");
        assert_eq!(parse_filename("MarkupSafe-2.1.3-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"), Some(("markupsafe".into(), "2.1.3".into())));
        assert_eq!(parse_filename("requests-2.31.0-py3-none-any.whl"), Some(("requests".into(), "2.31.0".into())));
        assert_eq!(parse_filename("foo-1.0-1-py3-none-any.whl"), Some(("foo".into(), "1.0".into())));
        assert_eq!(parse_filename("python-dateutil-2.8.2.tar.gz"), Some(("python-dateutil".into(), "2.8.2".into())));
        assert_eq!(parse_filename("PyYAML-6.0.1.zip"), Some(("pyyaml".into(), "6.0.1".into())));
        assert_eq!(parse_filename("notes.txt"), None);
        assert_eq!(parse_filename("bad.whl"), None);
    }

    #[test]
    fn pip_versions() {
        assert_eq!(parse_pip_version("23.2.1\n"), Some((23, 2)));
        assert_eq!(parse_pip_version("9.0.1"), Some((9, 0)));
        assert_eq!(parse_pip_version("24.1b1"), Some((24, 1)));
        assert_eq!(parse_pip_version("26"), Some((26, 0)));
        assert!(parse_pip_version("").is_none());
    }

    #[test]
    fn urls_and_redaction() {
        assert_eq!(url_filename("https://h/packages/a/b/My%2BPkg-1.0.tar.gz#sha256=00").as_deref(), Some("My+Pkg-1.0.tar.gz"));
        assert_eq!(url_filename("https://h/").as_deref(), None);
        assert_eq!(redact("https://user:secret@h/simple"), "https://user:****@h/simple");
        assert_eq!(redact("https://token@h/simple"), "https://****@h/simple");
        assert_eq!(redact("https://pypi.org/simple"), "https://pypi.org/simple");
        let m = logged_urls(
            "Collecting x\n  Downloading http://127.0.0.1:1/packages/x-1.0-py3-none-any.whl (62 kB)\n  Using cached y-2.0-py3-none-any.whl (10 kB)\n",
        );
        assert_eq!(m.get("x-1.0-py3-none-any.whl").map(String::as_str), Some("http://127.0.0.1:1/packages/x-1.0-py3-none-any.whl"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn explanations() {
        let err = "WARNING: Retrying (Retry(total=4)) after connection broken: /simple/x/\nWARNING: Retrying (Retry(total=4)) after connection broken: /simple/x/\nERROR: Could not find a version that satisfies the requirement x (from versions: none)\nERROR: No matching distribution found for x\n";
        assert_eq!(
            explain(err),
            vec![
                "WARNING: Retrying (Retry(total=4)) after connection broken: /simple/x/",
                "ERROR: Could not find a version that satisfies the requirement x (from versions: none)",
                "ERROR: No matching distribution found for x",
            ]
        );
        let conflict = "ERROR: Cannot install a and b because these package versions have conflicting dependencies.\n\nThe conflict is caused by:\n    a 1 depends on c==1\n";
        assert_eq!(explain(conflict).len(), 3);
        assert!(explain("Collecting x\n").is_empty());
    }

    #[test]
    fn targets() {
        let t = PipTarget {
            python_version: Some("3.10".into()),
            platforms: vec!["manylinux2014_x86_64".into(), " ".into()],
            implementation: None,
            abi: Some("cp310, abi3".into()),
        };
        assert_eq!(
            t.normalized().args(),
            [
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                "3.10",
                "--platform",
                "manylinux2014_x86_64",
                "--abi",
                "cp310",
                "--abi",
                "abi3"
            ]
        );
        let host = PipTarget { platforms: vec!["".into()], ..Default::default() };
        assert!(host.is_host());
        assert_eq!(host.normalized().args(), ["--prefer-binary"]);
    }

    #[test]
    fn report_parsing() {
        let r = br#"{"version": "1", "install": [
          {"metadata": {"name": "MarkupSafe", "version": "2.1.3"}, "is_direct": false, "requested": true,
           "download_info": {"url": "http://127.0.0.1:9/packages/MarkupSafe-2.1.3-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                             "archive_info": {"hash": "sha256=AB", "hashes": {"sha256": "ab"}}}},
          {"metadata": {"name": "x", "version": "1"}, "download_info": {"url": "https://h/x-1.tar.gz", "archive_info": {"hash": "sha256=CD"}}}]}"#;
        let v = parse_report(r).unwrap();
        assert_eq!(v[0].filename, "MarkupSafe-2.1.3-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
        assert_eq!(v[0].pin(), "MarkupSafe==2.1.3 --hash=sha256:ab");
        assert_eq!(v[1].sha256.as_deref(), Some("cd"));
        assert!(parse_report(b"{}").is_err());
    }
}

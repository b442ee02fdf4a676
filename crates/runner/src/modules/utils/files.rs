//! Shared file helpers for the modules that write files (copy, template, lineinfile,
//! get_url, uri, unarchive, archive): Ansible's `mode`/`owner`/`group` handling, its path
//! info keys, digests, `~`/`$VAR` expansion, Python-style time formatting, and writing a
//! file atomically (a temporary file beside the destination, flushed, renamed over it) with
//! `--diff` output of the change.

use std::ffi::{CStr, CString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_base::digest::{self, Algorithm};
use serde_json::{Map, Value};

use crate::modules::{Args, Diff, ModuleFail, args};

/// The `mode`, `owner` and `group` arguments common to file-writing modules.
#[derive(Clone, Debug, Default)]
pub struct FileAttrs {
    pub mode: Option<Value>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// The argument names `FileAttrs::from_args` reads, plus the file-common ones accepted and
/// ignored (SELinux contexts, attributes, unsafe_writes).
pub const FILE_COMMON_ARGS: &[&str] = &["mode", "owner", "group", "seuser", "serole", "setype", "selevel", "attributes", "unsafe_writes"];

impl FileAttrs {
    pub fn from_args(args: &Args) -> Result<Self, ModuleFail> {
        let mode = match args.get("mode") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            Some(v) => {
                return Err(ModuleFail::new(format!("argument 'mode' is of type {} and we were unable to convert to raw", args::type_name(v))));
            }
        };
        Ok(Self { mode, owner: args::opt_str(args, "owner")?, group: args::opt_str(args, "group")? })
    }

    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }

    /// Sets mode/owner/group on `path` where they differ; returns whether anything differed.
    /// In check mode nothing is changed, only reported.
    pub fn apply(&self, path: &Path, check_mode: bool) -> Result<bool, ModuleFail> {
        if self.is_empty() {
            return Ok(false);
        }
        let meta = fs::metadata(path).map_err(|e| ModuleFail::new(format!("{}: {e}", path.display())))?;
        let mut changed = false;
        let uid = match &self.owner {
            Some(o) => Some(lookup_uid(o)?),
            None => None,
        };
        let gid = match &self.group {
            Some(g) => Some(lookup_gid(g)?),
            None => None,
        };
        let want_uid = uid.filter(|u| *u != meta.uid());
        let want_gid = gid.filter(|g| *g != meta.gid());
        if want_uid.is_some() || want_gid.is_some() {
            changed = true;
            if !check_mode {
                chown(path, want_uid, want_gid)
                    .map_err(|e| ModuleFail::new(format!("chown failed: {e}: {}", path.display())).with("path", path.display().to_string()))?;
            }
        }
        if let Some(mode) = &self.mode {
            let cur = meta.mode() & 0o7777;
            let new = parse_mode(mode, cur, meta.is_dir())?;
            if new != cur {
                changed = true;
                if !check_mode {
                    fs::set_permissions(path, fs::Permissions::from_mode(new))
                        .map_err(|e| ModuleFail::new(format!("chmod failed: {e}: {}", path.display())).with("path", path.display().to_string()))?;
                }
            }
        }
        Ok(changed)
    }
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let u = uid.map(|u| u as libc::uid_t).unwrap_or(libc::uid_t::MAX);
    let g = gid.map(|g| g as libc::gid_t).unwrap_or(libc::gid_t::MAX);
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), u, g) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A user name or numeric id to a uid.
pub fn lookup_uid(owner: &str) -> Result<u32, ModuleFail> {
    if let Some(uid) = user_by_name(owner) {
        return Ok(uid);
    }
    owner.parse::<u32>().map_err(|_| ModuleFail::new(format!("chown failed: failed to look up user {owner}")))
}

/// A group name or numeric id to a gid.
pub fn lookup_gid(group: &str) -> Result<u32, ModuleFail> {
    if let Some(gid) = group_by_name(group) {
        return Ok(gid);
    }
    group.parse::<u32>().map_err(|_| ModuleFail::new(format!("chgrp failed: failed to look up group {group}")))
}

fn user_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives the use of pw.
    let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    (rc == 0 && !res.is_null()).then_some(pw.pw_uid)
}

fn group_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut res) };
    (rc == 0 && !res.is_null()).then_some(gr.gr_gid)
}

/// The name of a uid, or the number as text.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc == 0 && !res.is_null() {
        // SAFETY: pw_name points into buf, NUL-terminated.
        return unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned();
    }
    uid.to_string()
}

/// The name of a gid, or the number as text.
pub fn group_name(gid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc == 0 && !res.is_null() {
        // SAFETY: gr_name points into buf, NUL-terminated.
        return unsafe { CStr::from_ptr(gr.gr_name) }.to_string_lossy().into_owned();
    }
    gid.to_string()
}

/// A home directory for `~user`.
fn home_of(user: &str) -> Option<String> {
    let c = CString::new(user).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc == 0 && !res.is_null() {
        // SAFETY: pw_dir points into buf, NUL-terminated.
        return Some(unsafe { CStr::from_ptr(pw.pw_dir) }.to_string_lossy().into_owned());
    }
    None
}

/// Ansible's mode argument: an integer (already the mode bits), an octal string, or a
/// symbolic mode (`u+rwx,g-w,o=r`) applied to `current`.
pub fn parse_mode(mode: &Value, current: u32, is_dir: bool) -> Result<u32, ModuleFail> {
    let bad = || {
        ModuleFail::new(format!(
            "mode must be in octal or symbolic form: {}",
            match mode {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        ))
    };
    match mode {
        Value::Number(n) => {
            let m = n.as_u64().ok_or_else(bad)?;
            if m > 0o7777 {
                return Err(bad());
            }
            Ok(m as u32)
        }
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c)) {
                let m = u32::from_str_radix(s, 8).map_err(|_| bad())?;
                if m > 0o7777 {
                    return Err(bad());
                }
                return Ok(m);
            }
            symbolic_mode(s, current, is_dir).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn symbolic_mode(s: &str, current: u32, is_dir: bool) -> Option<u32> {
    let mut mode = current & 0o7777;
    for clause in s.split(',') {
        let bytes: Vec<char> = clause.chars().collect();
        let mut i = 0;
        let mut who = 0u32;
        while i < bytes.len() && "ugoa".contains(bytes[i]) {
            who |= match bytes[i] {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        if who == 0 {
            who = 0o7777;
        }
        if i >= bytes.len() {
            return None;
        }
        while i < bytes.len() {
            let op = bytes[i];
            if !"+-=".contains(op) {
                return None;
            }
            i += 1;
            let mut perm = 0u32;
            // Copying another class's bits: g=u etc.
            if i < bytes.len() && "ugo".contains(bytes[i]) {
                let src = bytes[i];
                i += 1;
                let bits = match src {
                    'u' => (mode >> 6) & 7,
                    'g' => (mode >> 3) & 7,
                    _ => mode & 7,
                };
                perm = bits << 6 | bits << 3 | bits;
            } else {
                while i < bytes.len() && "rwxXst".contains(bytes[i]) {
                    perm |= match bytes[i] {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' => {
                            if is_dir || mode & 0o111 != 0 {
                                0o111
                            } else {
                                0
                            }
                        }
                        's' => 0o6000,
                        _ => 0o1000,
                    };
                    i += 1;
                }
            }
            let bits = perm & who;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => {
                    // `=` clears the class's rwx bits (and the special bit it owns), then sets.
                    mode &= !(who & 0o7777);
                    mode |= bits;
                }
            }
        }
    }
    Some(mode)
}

/// Ansible's path info keys (`add_path_info`): uid, gid, owner, group, mode, size, state.
pub fn path_info(path: &Path) -> Map<String, Value> {
    let mut m = Map::new();
    let Ok(lmeta) = fs::symlink_metadata(path) else {
        m.insert("state".into(), "absent".into());
        return m;
    };
    let meta = fs::metadata(path).unwrap_or_else(|_| lmeta.clone());
    let state = if lmeta.file_type().is_symlink() {
        "link"
    } else if meta.is_dir() {
        "directory"
    } else if meta.nlink() > 1 {
        "hard"
    } else {
        "file"
    };
    m.insert("gid".into(), meta.gid().into());
    m.insert("group".into(), group_name(meta.gid()).into());
    m.insert("mode".into(), format!("{:04o}", meta.mode() & 0o7777).into());
    m.insert("owner".into(), user_name(meta.uid()).into());
    m.insert("size".into(), meta.size().into());
    m.insert("state".into(), state.into());
    m.insert("uid".into(), meta.uid().into());
    m
}

/// The hash algorithms Ansible's `checksum` arguments accept.
pub const HASH_ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

pub use airlock_base::digest::Hasher;

/// The hex digest of a file with `algo` (one of `HASH_ALGORITHMS`).
pub fn file_digest(path: &Path, algo: &str) -> io::Result<String> {
    let algo = Algorithm::from_name(algo).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown hash algorithm {algo}")))?;
    let (_, mut hex) = digest::hash_file(path, &[algo])?;
    Ok(hex.remove(0))
}

/// The process umask, read without changing it.
pub fn umask() -> u32 {
    if let Ok(s) = fs::read_to_string("/proc/self/status") {
        for line in s.lines() {
            if let Some(v) = line.strip_prefix("Umask:")
                && let Ok(m) = u32::from_str_radix(v.trim(), 8)
            {
                return m;
            }
        }
    }
    0o022
}

/// Python's `os.path.expanduser`.
pub fn expand_user(s: &str) -> String {
    if !s.starts_with('~') {
        return s.to_string();
    }
    let end = s.find('/').unwrap_or(s.len());
    let user = &s[1..end];
    let home = if user.is_empty() { std::env::var("HOME").ok().or_else(|| home_of(&user_name(unsafe { libc::getuid() }))) } else { home_of(user) };
    match home {
        Some(h) => {
            let h = if h.len() > 1 { h.trim_end_matches('/').to_string() } else { h };
            format!("{h}{}", &s[end..])
        }
        None => s.to_string(),
    }
}

/// Python's `os.path.expandvars` with a lookup function: `$name` and `${name}`, unknown
/// variables left as they are.
pub fn expand_vars(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            if let Some(close) = inner.find('}') {
                let name = &inner[..close];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[pos..pos + 2 + close + 1]),
                }
                rest = &inner[close + 1..];
                continue;
            }
            out.push('$');
            rest = after;
            continue;
        }
        let len: usize = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum();
        if len == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let name = &after[..len];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                out.push('$');
                out.push_str(name);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// A path argument as Ansible's `type='path'`: `~` and `$VAR` expanded.
pub fn expand_path(s: &str) -> PathBuf {
    PathBuf::from(expand_user(&expand_vars(s, &|n| std::env::var(n).ok())))
}

/// Python's `str(datetime.datetime.now())` for a time: local, microseconds omitted when zero.
pub fn py_datetime(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as libc::time_t;
    let micros = d.subsec_micros();
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let base = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if micros == 0 { base } else { format!("{base}.{micros:06}") }
}

/// Python's `str(timedelta)`: `0:00:00.001234`, `1 day, 2:03:04`.
pub fn py_timedelta(d: Duration) -> String {
    let total = d.as_secs();
    let micros = d.subsec_micros();
    let days = total / 86400;
    let rem = total % 86400;
    let mut s = String::new();
    if days > 0 {
        s.push_str(&format!("{days} day{}, ", if days == 1 { "" } else { "s" }));
    }
    s.push_str(&format!("{}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60));
    if micros != 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    s
}

/// Python's `str(float)` for the simple values modules print (`1.0`, `0.25`).
pub fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 { format!("{f:.1}") } else { format!("{f}") }
}

/// A temporary file in `dir`, named after `dest` so a leftover is recognisable; removed when
/// dropped unless persisted. It is locked while open, and those a killed run left in `dir`
/// (unlocked) are removed first.
pub fn temp_file_for(dir: &Path, dest_name: &str) -> io::Result<tempfile::NamedTempFile> {
    let name = if dest_name.is_empty() { "tmp" } else { dest_name };
    airlock_base::staging::remove_stale_files(dir, ".airlock-tmp");
    let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".airlock-tmp").tempfile_in(dir)?;
    airlock_base::staging::lock_file(tmp.as_file())?;
    Ok(tmp)
}

/// Gives a freshly written temporary file the permissions the destination should end with:
/// the existing destination's mode (and owner when we may), else 0666 minus the umask,
/// as Ansible's `atomic_move` does.
pub fn match_dest_perms(tmp: &Path, dest: &Path) -> io::Result<()> {
    match fs::metadata(dest) {
        Ok(m) => {
            fs::set_permissions(tmp, fs::Permissions::from_mode(m.mode() & 0o7777))?;
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                let _ = chown(tmp, Some(m.uid()), Some(m.gid()));
            }
            Ok(())
        }
        Err(_) => fs::set_permissions(tmp, fs::Permissions::from_mode(0o666 & !umask())),
    }
}

/// Ansible's backup file name: `dest.PID.YYYY-MM-DD@HH:MM:SS~`, made by copying.
pub fn backup_file(dest: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let stamp = format!("{:04}-{:02}-{:02}@{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    let backup = PathBuf::from(format!("{}.{}.{stamp}~", dest.display(), std::process::id()));
    fs::copy(dest, &backup)?;
    Ok(backup)
}

// ---------------------------------------------------------------------------------------------
// Writing files atomically, with `--diff` output
// ---------------------------------------------------------------------------------------------
/// Writes `data` to `dest` atomically. An existing file's mode and owner are kept; a new file
/// gets 0666 less the umask (set a `mode` afterwards to change it).
pub fn atomic_write(dest: &Path, data: &[u8]) -> Result<(), ModuleFail> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fail = |e: std::io::Error| ModuleFail::new(format!("could not write {}: {e}", dest.display()));
    let mut tmp = temp_file_for(dir, &name).map_err(fail)?;
    tmp.write_all(data).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    match_dest_perms(tmp.path(), dest).map_err(fail)?;
    tmp.persist(dest).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Whether bytes are fit for a text diff (UTF-8, no NUL, at most 100 KiB).
pub fn diffable(data: &[u8]) -> bool {
    data.len() <= 100 * 1024 && !data.contains(&0) && std::str::from_utf8(data).is_ok()
}

/// The `--diff` entry for a file's content change.
pub fn content_diff(dest: &Path, before: Option<&[u8]>, after: &[u8]) -> Diff {
    let header = dest.display().to_string();
    let before = before.unwrap_or_default();
    if diffable(before) && diffable(after) {
        Diff {
            before_header: header.clone(),
            after_header: header,
            before: String::from_utf8_lossy(before).into_owned(),
            after: String::from_utf8_lossy(after).into_owned(),
        }
    } else {
        Diff { before_header: header.clone(), after_header: header, before: String::new(), after: "(binary or large content not shown)\n".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&json!(420), 0, false).unwrap(), 0o644);
        assert_eq!(parse_mode(&json!("0755"), 0, false).unwrap(), 0o755);
        assert_eq!(parse_mode(&json!("644"), 0, false).unwrap(), 0o644);
        assert_eq!(parse_mode(&json!("u=rw,g=r,o=r"), 0o777, false).unwrap(), 0o644);
        assert_eq!(parse_mode(&json!("u+x"), 0o644, false).unwrap(), 0o744);
        assert_eq!(parse_mode(&json!("a-w"), 0o664, false).unwrap(), 0o444);
        assert_eq!(parse_mode(&json!("+X"), 0o644, true).unwrap(), 0o755);
        assert_eq!(parse_mode(&json!("go="), 0o755, false).unwrap(), 0o700);
        assert!(parse_mode(&json!("rwx"), 0, false).is_err());
        assert!(parse_mode(&json!("99"), 0, false).is_err());
    }

    #[test]
    fn expansion() {
        let look = |n: &str| (n == "FOO").then(|| "bar".to_string());
        assert_eq!(expand_vars("a$FOO/${FOO}x $NOPE ${NOPE} $ $1", &look), "abar/barx $NOPE ${NOPE} $ $1");
        assert_eq!(expand_user("x~"), "x~");
        assert!(!expand_user("~/a").starts_with('~'));
    }

    #[test]
    fn times() {
        assert_eq!(py_timedelta(Duration::from_micros(1234)), "0:00:00.001234");
        assert_eq!(py_timedelta(Duration::from_secs(3661)), "1:01:01");
        assert_eq!(py_timedelta(Duration::from_secs(86400 * 2 + 5)), "2 days, 0:00:05");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.02), "0.02");
        let s = py_datetime(SystemTime::now());
        assert!(s.len() >= 19);
    }

    #[test]
    fn digests() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, "hello world\n").unwrap();
        assert_eq!(file_digest(&p, "sha1").unwrap(), "22596363b3de40b06f981fb85d82312e8c0ed511");
        assert_eq!(file_digest(&p, "md5").unwrap(), "6f5902ac237024bdd0c176cb93063dc4");
        assert_eq!(file_digest(&p, "sha256").unwrap(), "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
        let info = path_info(&p);
        assert_eq!(info["state"], "file");
        assert_eq!(info["size"], 12);
    }
}

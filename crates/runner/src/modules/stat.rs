//! The `stat` module: facts about one path.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::utils::files::{self, group_name, user_name};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["path", "follow", "get_checksum", "checksum_algorithm", "get_mime", "get_attributes", "get_selinux_context"];

/// Runs `stat`.
pub fn run(a: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "stat", ALLOWED)?;
    let path = args::req_str(a, "path")?;
    let follow = args::bool_or(a, "follow", false)?;
    let get_checksum = args::bool_or(a, "get_checksum", true)?;
    let algo = args::opt_choice(a, "checksum_algorithm", files::HASH_ALGORITHMS)?.unwrap_or_else(|| "sha1".into());
    let p = files::expand_path(&path);
    Ok(ModuleResult::changed(false).with("stat", Value::Object(stat_path(&p, follow, get_checksum.then_some(algo.as_str()))?)))
}

/// The `stat` dict Ansible returns for a path (`exists: false` when it is not there).
pub fn stat_path(p: &Path, follow: bool, checksum: Option<&str>) -> Result<Map<String, Value>, ModuleFail> {
    let md = if follow { fs::metadata(p) } else { fs::symlink_metadata(p) };
    let mut m = Map::new();
    let Ok(md) = md else {
        m.insert("exists".into(), json!(false));
        return Ok(m);
    };
    let mode = md.mode();
    let ft = md.file_type();
    let islnk = ft.is_symlink();
    m.insert("exists".into(), json!(true));
    m.insert("path".into(), json!(p.display().to_string()));
    m.insert("mode".into(), json!(format!("{:04o}", mode & 0o7777)));
    m.insert("isdir".into(), json!(ft.is_dir()));
    m.insert("isreg".into(), json!(ft.is_file()));
    m.insert("islnk".into(), json!(islnk));
    use std::os::unix::fs::FileTypeExt;
    m.insert("isblk".into(), json!(ft.is_block_device()));
    m.insert("ischr".into(), json!(ft.is_char_device()));
    m.insert("isfifo".into(), json!(ft.is_fifo()));
    m.insert("issock".into(), json!(ft.is_socket()));
    m.insert("uid".into(), json!(md.uid()));
    m.insert("gid".into(), json!(md.gid()));
    m.insert("pw_name".into(), json!(user_name(md.uid())));
    m.insert("gr_name".into(), json!(group_name(md.gid())));
    m.insert("size".into(), json!(md.size()));
    m.insert("inode".into(), json!(md.ino()));
    m.insert("dev".into(), json!(md.dev()));
    m.insert("nlink".into(), json!(md.nlink()));
    m.insert("mtime".into(), json!(md.mtime() as f64 + md.mtime_nsec() as f64 / 1e9));
    m.insert("atime".into(), json!(md.atime() as f64 + md.atime_nsec() as f64 / 1e9));
    m.insert("ctime".into(), json!(md.ctime() as f64 + md.ctime_nsec() as f64 / 1e9));
    for (k, bit) in
        [("rusr", 0o400), ("wusr", 0o200), ("xusr", 0o100), ("rgrp", 0o40), ("wgrp", 0o20), ("xgrp", 0o10), ("roth", 0o4), ("woth", 0o2), ("xoth", 0o1)]
    {
        m.insert(k.into(), json!(mode & bit != 0));
    }
    m.insert("isuid".into(), json!(mode & 0o4000 != 0));
    m.insert("isgid".into(), json!(mode & 0o2000 != 0));
    let access = |flag: libc::c_int| -> bool {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return false };
        // SAFETY: c is a valid NUL-terminated path.
        unsafe { libc::access(c.as_ptr(), flag) == 0 }
    };
    m.insert("readable".into(), json!(access(libc::R_OK)));
    m.insert("writeable".into(), json!(access(libc::W_OK)));
    m.insert("executable".into(), json!(access(libc::X_OK)));
    if islnk && let Ok(t) = fs::read_link(p) {
        m.insert("lnk_target".into(), json!(t.display().to_string()));
        let src = fs::canonicalize(p).map(|c| c.display().to_string()).unwrap_or_else(|_| t.display().to_string());
        m.insert("lnk_source".into(), json!(src));
    }
    if let Some(algo) = checksum
        && ft.is_file()
        && md.permissions().mode() & 0o444 != 0
        && let Ok(sum) = files::file_digest(p, algo)
    {
        m.insert("checksum".into(), json!(sum));
    }
    Ok(m)
}

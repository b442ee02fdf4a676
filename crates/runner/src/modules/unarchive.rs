//! The `unarchive` module: unpacks a .tar or .tar.gz/.tgz into an existing directory, after
//! checking every member stays inside it, and only when the members differ from what is on
//! disk.

use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::args::{bool_or, check_known, opt_bool, opt_list, opt_str};
use super::get_url::{FetchOptions, fetch_to_temp};
use super::utils::files::{self, FileAttrs, expand_path, expand_user};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};

const ARGS: &[&str] = &[
    "src",
    "dest",
    "remote_src",
    "creates",
    "list_files",
    "keep_newer",
    "exclude",
    "include",
    "extra_opts",
    "validate_certs",
    "io_buffer_size",
    "copy",
    "decrypt",
];

/// The archive formats this module can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Tar,
    TarGz,
}

impl Format {
    fn handler(self) -> &'static str {
        match self {
            Format::Tar => "TarArchive",
            Format::TarGz => "TgzArchive",
        }
    }
}

fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    // Old (v7) tar: check the header checksum.
    let field = &block[148..156];
    let text: String = field.iter().take_while(|b| **b != 0 && **b != b' ').map(|b| *b as char).collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else { return false };
    let sum: u32 = block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { b' ' as u32 } else { *b as u32 }).sum();
    sum == stored && block[0] != 0
}

/// Works out the format from the content, as Ansible's handlers do.
pub(crate) fn detect(path: &Path) -> Result<Format, ModuleFail> {
    let unsupported = |what: &str| {
        ModuleFail::new(format!(
            "Failed to find handler for \"{}\": unsupported archive format ({what}); airlock unpacks .tar and .tar.gz/.tgz archives only",
            path.display()
        ))
    };
    let mut f = fs::File::open(path).map_err(|e| ModuleFail::new(format!("Source '{}' not readable, {e}", path.display())))?;
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ModuleFail::new(format!("Source '{}' not readable, {e}", path.display()))),
        }
    }
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut gz = flate2::read::MultiGzDecoder::new(fs::File::open(path).map_err(|e| ModuleFail::new(e.to_string()))?);
        let mut block = vec![0u8; 512];
        let mut m = 0;
        while m < 512 {
            match gz.read(&mut block[m..]) {
                Ok(0) => break,
                Ok(k) => m += k,
                Err(_) => return Err(unsupported("corrupt gzip data")),
            }
        }
        block.truncate(m);
        return if looks_like_tar(&block) { Ok(Format::TarGz) } else { Err(unsupported("gzip-compressed data that is not a tar archive")) };
    }
    if head.starts_with(b"BZh") {
        return Err(unsupported("bzip2"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(unsupported("xz"));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(unsupported("zstd"));
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Err(unsupported("zip"));
    }
    if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Err(unsupported("7z"));
    }
    if looks_like_tar(&head) {
        return Ok(Format::Tar);
    }
    Err(unsupported("not a tar archive"))
}

/// Opens an archive for reading its members.
pub(crate) fn open(path: &Path, format: Format) -> io::Result<tar::Archive<Box<dyn Read>>> {
    let f = BufReader::with_capacity(256 * 1024, fs::File::open(path)?);
    let r: Box<dyn Read> = match format {
        Format::Tar => Box::new(f),
        Format::TarGz => Box::new(flate2::read::MultiGzDecoder::new(f)),
    };
    Ok(tar::Archive::new(r))
}

/// A member name made relative and checked: `None` if it names dest itself (`./`), an error
/// if it is absolute or climbs out with `..`.
fn safe_relative(name: &str) -> Result<Option<PathBuf>, String> {
    if name.starts_with('/') {
        return Err(format!("absolute path '{name}'"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("path '{name}' contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(format!("absolute path '{name}'")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Where a symlink at `rel` pointing to `target` ends up, relative to dest; `None` if outside.
fn link_target_inside(rel: &Path, target: &Path) -> Option<PathBuf> {
    if target.is_absolute() {
        return None;
    }
    let mut stack: Vec<std::ffi::OsString> = rel.parent().map(|p| p.iter().map(|c| c.to_os_string()).collect()).unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(p) => stack.push(p.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                stack.pop()?;
            }
            _ => return None,
        }
    }
    Some(stack.iter().collect())
}

/// One member's header facts.
struct Member {
    raw: String,
    rel: Option<PathBuf>,
    kind: EntryType,
    size: u64,
    mode: u32,
    mtime: u64,
    uid: u32,
    gid: u32,
    link: Option<PathBuf>,
}

fn member_of<R: Read>(entry: &tar::Entry<R>) -> io::Result<Member> {
    let h = entry.header();
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let link = entry.link_name()?.map(|c| c.into_owned());
    let uid = h.username().ok().flatten().and_then(|n| files::lookup_uid(n).ok()).unwrap_or_else(|| h.uid().unwrap_or(0) as u32);
    let gid = h.groupname().ok().flatten().and_then(|n| files::lookup_gid(n).ok()).unwrap_or_else(|| h.gid().unwrap_or(0) as u32);
    Ok(Member {
        rel: None,
        raw,
        kind: h.entry_type(),
        size: entry.size(),
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        mtime: h.mtime().unwrap_or(0),
        uid,
        gid,
        link,
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The mode a member gets on disk: as stored for root, else with the umask applied (tar's
/// defaults).
fn disk_mode(mode: u32, umask: u32) -> u32 {
    if is_root() { mode & 0o7777 } else { mode & 0o777 & !umask }
}

/// Include/exclude filtering as Ansible's `files_in_archive`.
struct Filter {
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
}

impl Filter {
    fn wants(&self, name: &str) -> bool {
        let trimmed = name.trim_end_matches('/');
        let m = |p: &glob::Pattern| p.matches(name) || p.matches(trimmed);
        if self.exclude.iter().any(m) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(m)
    }
}

/// Checks the parents of `rel` under `dest`: none may be a symlink leading outside dest.
fn check_parents(dest_real: &Path, dest: &Path, rel: &Path) -> Result<(), String> {
    let mut p = dest.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let real = fs::canonicalize(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                if !real.starts_with(dest_real) {
                    return Err(format!("{} is a symlink leading outside {}", p.display(), dest.display()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether the member is already on disk as the archive has it. `attrs` given by the task
/// are applied afterwards, so differences in them do not count.
fn matches_disk<R: Read>(m: &Member, entry: &mut tar::Entry<R>, path: &Path, attrs: &FileAttrs, keep_newer: bool, umask: u32) -> io::Result<bool> {
    let Ok(meta) = fs::symlink_metadata(path) else { return Ok(false) };
    let ft = meta.file_type();
    if is_root() && attrs.owner.is_none() && !ft.is_symlink() && meta.uid() != m.uid {
        return Ok(false);
    }
    if is_root() && attrs.group.is_none() && !ft.is_symlink() && meta.gid() != m.gid {
        return Ok(false);
    }
    match m.kind {
        EntryType::Directory => {
            let is_dir = ft.is_dir() || (ft.is_symlink() && path.is_dir());
            Ok(is_dir && (attrs.mode.is_some() || ft.is_symlink() || meta.mode() & 0o7777 == disk_mode(m.mode, umask)))
        }
        EntryType::Symlink => Ok(ft.is_symlink() && fs::read_link(path).ok().as_deref() == m.link.as_deref()),
        EntryType::Link => Ok(ft.is_file()),
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            if !ft.is_file() {
                return Ok(false);
            }
            if keep_newer && meta.mtime() as u64 > m.mtime {
                return Ok(true);
            }
            if meta.len() != m.size {
                return Ok(false);
            }
            if attrs.mode.is_none() && meta.mode() & 0o7777 != disk_mode(m.mode, umask) {
                return Ok(false);
            }
            if meta.mtime() as u64 == m.mtime {
                return Ok(true);
            }
            same_content(entry, path)
        }
        _ => Ok(true),
    }
}

fn same_content<R: Read>(entry: &mut R, path: &Path) -> io::Result<bool> {
    let mut f = BufReader::new(fs::File::open(path)?);
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(entry, &mut a)?;
        let m = read_full(&mut f, &mut b[..n.max(1)])?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn set_owner(path: &Path, uid: u32, gid: u32, follow: bool) {
    use std::os::unix::ffi::OsStrExt;
    if !is_root() {
        return;
    }
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: valid NUL-terminated path.
        unsafe {
            if follow {
                libc::chown(c.as_ptr(), uid, gid);
            } else {
                libc::lchown(c.as_ptr(), uid, gid);
            }
        }
    }
}

/// Removes whatever is at `path` unless it is a directory.
fn clear_non_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a directory", path.display()))),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// Extracts one member (already checked) to `path`.
fn extract_one<R: Read>(
    m: &Member,
    entry: &mut tar::Entry<R>,
    dest: &Path,
    dest_real: &Path,
    path: &Path,
    umask: u32,
    dirs: &mut Vec<(PathBuf, u32, u64)>,
) -> io::Result<()> {
    let outside = |what: String| io::Error::new(io::ErrorKind::PermissionDenied, format!("refusing {what}: it leads outside {}", dest.display()));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match m.kind {
        EntryType::Directory => {
            match fs::symlink_metadata(path) {
                Ok(md) if md.is_dir() => {}
                Ok(md) if md.file_type().is_symlink() && path.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(path)?;
                    fs::create_dir(path)?;
                }
                Err(_) => fs::create_dir(path)?,
            }
            set_owner(path, m.uid, m.gid, true);
            dirs.push((path.to_path_buf(), disk_mode(m.mode, umask), m.mtime));
        }
        EntryType::Symlink => {
            let target = m.link.clone().unwrap_or_default();
            let parent = path.parent().unwrap_or(dest);
            // Checked lexically before; now against where the link really is, since its
            // parents may be links themselves.
            let real_parent = fs::canonicalize(parent)?;
            let mut resolved = real_parent.clone();
            for c in target.components() {
                match c {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(x) => resolved.push(x),
                    Component::CurDir => {}
                    _ => return Err(outside(format!("symlink {} -> {}", m.raw, target.display()))),
                }
            }
            if !resolved.starts_with(dest_real) {
                return Err(outside(format!("symlink {} -> {}", m.raw, target.display())));
            }
            let tmp = parent.join(format!(".{name}.{}.airlock-link", std::process::id()));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp)?;
            if let Err(e) = clear_non_dir(path).and_then(|_| fs::rename(&tmp, path)) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            set_owner(path, m.uid, m.gid, false);
        }
        EntryType::Link => {
            let target = m.link.as_deref().and_then(|t| safe_relative(&t.to_string_lossy()).ok().flatten()).unwrap_or_default();
            let src = dest.join(target);
            if !fs::canonicalize(&src)?.starts_with(dest_real) {
                return Err(outside(format!("hard link {} -> {}", m.raw, src.display())));
            }
            clear_non_dir(path)?;
            fs::hard_link(&src, path)?;
        }
        _ => {
            let parent = path.parent().unwrap_or(dest);
            let mut tmp = files::temp_file_for(parent, &name)?;
            io::copy(entry, tmp.as_file_mut())?;
            tmp.as_file().set_permissions(fs::Permissions::from_mode(disk_mode(m.mode, umask)))?;
            let mtime = filetime::FileTime::from_unix_time(m.mtime as i64, 0);
            filetime::set_file_handle_times(tmp.as_file(), Some(mtime), Some(mtime))?;
            set_owner(tmp.path(), m.uid, m.gid, true);
            if fs::symlink_metadata(path).map(|md| md.is_dir()).unwrap_or(false) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a directory", path.display())));
            }
            tmp.persist(path).map_err(|e| e.error)?;
        }
    }
    Ok(())
}

/// Runs `unarchive`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    let allowed: Vec<&str> = ARGS.iter().chain(files::FILE_COMMON_ARGS).copied().collect();
    check_known(args, "unarchive", &allowed)?;
    let (Some(src_arg), Some(dest_arg)) = (opt_str(args, "src")?, opt_str(args, "dest")?) else {
        return Err(ModuleFail::new("src (or content) and dest are required"));
    };
    let mut remote_src = bool_or(args, "remote_src", false)?;
    if let Some(copy) = opt_bool(args, "copy")? {
        if args.get("remote_src").is_some_and(|v| !v.is_null()) {
            return Err(ModuleFail::new("parameters are mutually exclusive: ('copy', 'remote_src')"));
        }
        remote_src = !copy;
    }
    let include = opt_list(args, "include")?.unwrap_or_default();
    let exclude = opt_list(args, "exclude")?.unwrap_or_default();
    if !include.is_empty() && !exclude.is_empty() {
        return Err(ModuleFail::new("parameters are mutually exclusive: include|exclude"));
    }
    let list_files = bool_or(args, "list_files", false)?;
    let keep_newer = bool_or(args, "keep_newer", false)?;
    let attrs = FileAttrs::from_args(args)?;

    if let Some(c) = opt_str(args, "creates")?
        && expand_path(&c).exists()
    {
        let mut r = ModuleResult::ok().with_msg(format!("skipped, since {c} exists"));
        r.skipped = true;
        return Ok(r);
    }

    let dest = expand_path(&dest_arg);
    let dest = if dest.is_absolute() { dest } else { std::env::current_dir().map(|d| d.join(&dest)).unwrap_or(dest) };

    // Keeps a downloaded archive alive until the end.
    let mut _download: Option<tempfile::NamedTempFile> = None;
    let src: PathBuf = if !remote_src {
        if src_arg.contains("://") {
            return Err(ModuleFail::new(format!(
                "Unsupported option, an URI src ({}) is only supported when remote_src is True",
                airlock_base::http::mask_url(&src_arg)
            )));
        }
        let name = expand_user(&src_arg);
        match ctx.find_file("files", &name) {
            Some(p) => p,
            None => {
                let mut searched = String::new();
                if !Path::new(&name).is_absolute() {
                    for base in &ctx.search_paths {
                        searched.push_str(&format!("\n\t{}", base.join("files").join(&name).display()));
                        searched.push_str(&format!("\n\t{}", base.join(&name).display()));
                    }
                }
                return Err(ModuleFail::new(format!(
                    "Could not find or access '{src_arg}'\nSearched in:{searched} on the Ansible Controller.\nIf you are using a module and expect the file to exist on the remote, see the remote_src option"
                )));
            }
        }
    } else {
        PathBuf::new()
    };

    let meta = fs::metadata(&dest);
    if !meta.map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ModuleFail::new(format!("dest '{dest_arg}' must be an existing dir")));
    }

    let src = if remote_src {
        let p = expand_path(&src_arg);
        if p.exists() {
            p
        } else if src_arg.contains("://") {
            let mut fetch_args = Args::new();
            for k in ["validate_certs", "_environment"] {
                if let Some(v) = args.get(k) {
                    fetch_args.insert(k.to_string(), v.clone());
                }
            }
            let opts = FetchOptions::from_args(&fetch_args, 10)?;
            let fetched = fetch_to_temp(&src_arg, &opts, &std::env::temp_dir(), None, ctx)
                .map_err(|f| ModuleFail::new(format!("Failure downloading {}, {}", airlock_base::http::mask_url(&src_arg), f.msg)))?;
            let p = fetched.tmp.path().to_path_buf();
            _download = Some(fetched.tmp);
            p
        } else {
            return Err(ModuleFail::new(format!("Source '{src_arg}' does not exist")));
        }
    } else {
        src
    };
    let src = if src.is_absolute() { src } else { std::env::current_dir().map(|d| d.join(&src)).unwrap_or(src) };
    match fs::metadata(&src) {
        Ok(m) if m.len() == 0 => return Err(ModuleFail::new(format!("Invalid archive '{}', the file is 0 bytes", src.display()))),
        Ok(_) => {}
        Err(e) => return Err(ModuleFail::new(format!("Source '{}' not readable, {e}", src.display()))),
    }
    let format = detect(&src)?;

    let pattern = |p: &String| glob::Pattern::new(p).map_err(|e| ModuleFail::new(format!("invalid pattern '{p}': {e}")));
    let filter = Filter { include: include.iter().map(pattern).collect::<Result<_, _>>()?, exclude: exclude.iter().map(pattern).collect::<Result<_, _>>()? };
    let umask = files::umask();
    let dest_real = fs::canonicalize(&dest).unwrap_or(dest.clone());
    let read_err = |e: io::Error| ModuleFail::new(format!("Failed to read archive {}: {e}", src.display()));

    // Pass 1: list, check safety, compare with disk.
    let mut files: Vec<String> = Vec::new();
    let mut rels: Vec<Option<PathBuf>> = Vec::new();
    let mut unarchived = true;
    {
        let mut ar = open(&src, format).map_err(read_err)?;
        for entry in ar.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let mut m = member_of(&entry).map_err(read_err)?;
            if matches!(m.kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
                continue;
            }
            if !filter.wants(&m.raw) {
                continue;
            }
            let refuse = |why: String| ModuleFail::new(format!("Refusing to unpack {}: member {why} would escape {}", src.display(), dest.display()));
            m.rel = safe_relative(&m.raw).map_err(refuse)?;
            match m.kind {
                EntryType::Symlink => {
                    let target = m.link.clone().unwrap_or_default();
                    let rel = m.rel.clone().unwrap_or_default();
                    if link_target_inside(&rel, &target).is_none() {
                        return Err(refuse(format!("'{}' is a symlink to '{}' which", m.raw, target.display())));
                    }
                }
                EntryType::Link => {
                    let target = m.link.clone().unwrap_or_default().to_string_lossy().into_owned();
                    if !matches!(safe_relative(&target), Ok(Some(_))) {
                        return Err(refuse(format!("'{}' is a hard link to '{target}' which", m.raw)));
                    }
                }
                _ => {}
            }
            if let Some(rel) = &m.rel {
                check_parents(&dest_real, &dest, rel).map_err(|e| ModuleFail::new(format!("Refusing to unpack {}: {e}", src.display())))?;
            }
            files.push(m.raw.clone());
            rels.push(m.rel.clone());
            if unarchived
                && let Some(rel) = &m.rel
                && !matches_disk(&m, &mut entry, &dest.join(rel), &attrs, keep_newer, umask).map_err(read_err)?
            {
                unarchived = false;
            }
        }
    }

    let mut changed = !unarchived;
    let mut warnings: Vec<String> = Vec::new();
    if !ctx.check_mode && !unarchived {
        let pb = ctx.progress.bar(files.len() as u64, &format!("unarchive {}", src.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()), false);
        let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
        let mut ar = open(&src, format).map_err(read_err)?;
        for entry in ar.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let mut m = member_of(&entry).map_err(read_err)?;
            if matches!(m.kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
                continue;
            }
            if !filter.wants(&m.raw) {
                continue;
            }
            // Checked in pass 1; the archive is read again, so check again.
            m.rel = safe_relative(&m.raw).map_err(|e| ModuleFail::new(format!("Refusing to unpack {}: member {e}", src.display())))?;
            let Some(rel) = m.rel.clone() else { continue };
            if matches!(m.kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
                warnings.push(format!("skipped special file {} in {}", m.raw, src.display()));
                continue;
            }
            if m.kind == EntryType::Symlink && link_target_inside(&rel, m.link.as_deref().unwrap_or(Path::new(""))).is_none() {
                return Err(ModuleFail::new(format!("Refusing to unpack {}: symlink {} points outside {}", src.display(), m.raw, dest.display())));
            }
            check_parents(&dest_real, &dest, &rel).map_err(|e| ModuleFail::new(format!("Refusing to unpack {}: {e}", src.display())))?;
            let path = dest.join(&rel);
            if keep_newer
                && m.kind == EntryType::Regular
                && let Ok(md) = fs::symlink_metadata(&path)
                && md.is_file()
                && md.mtime() as u64 > m.mtime
            {
                continue;
            }
            extract_one(&m, &mut entry, &dest, &dest_real, &path, umask, &mut dirs).map_err(|e| {
                ModuleFail::new(format!("failed to unpack {} to {}: {}: {e}", src.display(), dest.display(), m.raw))
                    .with("handler", format.handler())
                    .with("dest", dest.display().to_string())
                    .with("src", src.display().to_string())
            })?;
            pb.inc(1);
        }
        // Directory modes and times last, so read-only directories do not block their files.
        for (p, mode, mtime) in dirs.iter().rev() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(*mode));
            let t = filetime::FileTime::from_unix_time(*mtime as i64, 0);
            let _ = filetime::set_file_mtime(p, t);
        }
        pb.finish_and_clear();
    }

    if !ctx.check_mode && !attrs.is_empty() {
        let mut top: Vec<PathBuf> = Vec::new();
        for rel in rels.iter().flatten() {
            let p = dest.join(rel);
            if fs::symlink_metadata(&p).map(|m| m.file_type().is_symlink()).unwrap_or(true) {
                continue;
            }
            changed |= attrs.apply(&p, false)?;
            if let Some(first) = rel.components().next() {
                let t = PathBuf::from(first.as_os_str());
                if rel.components().count() > 1 && !top.contains(&t) {
                    top.push(t);
                }
            }
        }
        for t in top {
            let p = dest.join(t);
            if p.is_dir() && !fs::symlink_metadata(&p).map(|m| m.file_type().is_symlink()).unwrap_or(true) {
                changed |= attrs.apply(&p, false)?;
            }
        }
    }

    let mut r = ModuleResult::changed(changed);
    r.data.insert("handler".into(), format.handler().into());
    r.data.insert("dest".into(), dest_arg.clone().into());
    r.data.insert("src".into(), if remote_src && src_arg.contains("://") { src_arg.clone() } else { src.display().to_string() }.into());
    r.data.extend(files::path_info(&dest));
    if list_files {
        r.data.insert("files".into(), files.into());
    }
    if !warnings.is_empty() {
        r.data.insert("warnings".into(), warnings.into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use serde_json::json;

    /// Builds a tar(.gz) with entries given as (name, content or None for a dir).
    pub(crate) fn make_tar(path: &Path, gz: bool, entries: &[(&str, Option<&str>)]) {
        let f = fs::File::create(path).unwrap();
        let w: Box<dyn io::Write> = if gz { Box::new(flate2::write::GzEncoder::new(f, flate2::Compression::default())) } else { Box::new(f) };
        let mut b = tar::Builder::new(w);
        for (name, content) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_600_000_000);
            h.set_uid(0);
            h.set_gid(0);
            // Names stored exactly as given (GNU tar keeps `./`), which append_data would not do.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            match content {
                Some(c) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(c.len() as u64);
                    h.set_cksum();
                    b.append(&h, c.as_bytes()).unwrap();
                }
                None => {
                    h.set_entry_type(EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap().flush().unwrap();
    }

    fn raw_entry(b: &mut tar::Builder<fs::File>, name: &str, kind: EntryType, link: Option<&str>) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o777);
        h.set_size(0);
        // Bypass the crate's own path checks to build hostile archives.
        let bytes = h.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            bytes.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    use std::io::Write;

    #[test]
    fn extracts_lists_and_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let files = d.path().join("files");
        fs::create_dir(&files).unwrap();
        make_tar(&files.join("t.tgz"), true, &[("./", None), ("./a.txt", Some("one\n")), ("./d/", None), ("./d/b.txt", Some("two\n"))]);
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let a = args(json!({"src": "t.tgz", "dest": out, "list_files": true}));

        let cctx = ctx_for(true, d.path(), &pf);
        let r = run(&a, &cctx).unwrap();
        assert!(r.changed);
        assert!(!out.join("a.txt").exists());

        let r = run(&a, &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(r.data["handler"], "TgzArchive");
        assert_eq!(r.data["files"], json!(["./", "./a.txt", "./d/", "./d/b.txt"]));
        assert_eq!(fs::read_to_string(out.join("d/b.txt")).unwrap(), "two\n");
        assert_eq!(fs::metadata(out.join("a.txt")).unwrap().mtime(), 1_600_000_000);

        let r = run(&a, &ctx).unwrap();
        assert!(!r.changed, "second run must not change");
        let r = run(&a, &cctx).unwrap();
        assert!(!r.changed);

        // Same content but touched: still unchanged (content compared).
        filetime::set_file_mtime(out.join("a.txt"), filetime::FileTime::from_unix_time(1, 0)).unwrap();
        assert!(!run(&a, &ctx).unwrap().changed);
        // Changed content: extracted again.
        fs::write(out.join("a.txt"), "ONE\n").unwrap();
        assert!(run(&a, &ctx).unwrap().changed);
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "one\n");

        // creates
        let mut c = a.clone();
        c.insert("creates".into(), json!(out.join("a.txt")));
        let r = run(&c, &ctx).unwrap();
        assert!(r.skipped);

        // mode applied to members.
        let mut m = a.clone();
        m.insert("mode".into(), json!("u+rwX,g-rwx,o-rwx"));
        assert!(run(&m, &ctx).unwrap().changed);
        assert_eq!(fs::metadata(out.join("a.txt")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(out.join("d")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(!run(&m, &ctx).unwrap().changed);
    }

    #[test]
    fn plain_tar_include_exclude_remote_src() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t.tar");
        make_tar(&t, false, &[("top/", None), ("top/a.txt", Some("a")), ("top/b.log", Some("b"))]);
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"src": t, "dest": out, "remote_src": true, "exclude": ["*.log"], "list_files": true})), &ctx).unwrap();
        assert_eq!(r.data["handler"], "TarArchive");
        assert_eq!(r.data["files"], json!(["top/", "top/a.txt"]));
        assert!(out.join("top/a.txt").exists() && !out.join("top/b.log").exists());
        let r = run(&args(json!({"src": t, "dest": out, "remote_src": true, "include": ["top/b.log"]})), &ctx).unwrap();
        assert!(r.changed);
        assert!(out.join("top/b.log").exists());

        let f = run(&args(json!({"src": t, "dest": d.path().join("nope"), "remote_src": true})), &ctx).unwrap_err();
        assert_eq!(f.msg, format!("dest '{}' must be an existing dir", d.path().join("nope").display()));
        let f = run(&args(json!({"src": "missing.tgz", "dest": out})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Could not find or access 'missing.tgz'"), "{}", f.msg);
        let f = run(&args(json!({"src": "http://x/y.tgz", "dest": out})), &ctx).unwrap_err();
        assert!(f.msg.starts_with("Unsupported option, an URI src"));
    }

    #[test]
    fn gnu_tar_archives() {
        // Archives made by the system's tar, when there is one.
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("a.txt"), "one\n").unwrap();
        fs::write(src.join("d/b.txt"), "two\n").unwrap();
        std::os::unix::fs::symlink("b.txt", src.join("d/l")).unwrap();
        let t = d.path().join("t.tgz");
        let ok = std::process::Command::new("tar")
            .args(["czf", t.to_str().unwrap(), "-C", src.to_str().unwrap(), "."])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return;
        }
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let a = args(json!({"src": t, "dest": out, "remote_src": true, "list_files": true}));
        let r = run(&a, &ctx).unwrap();
        assert!(r.changed);
        let mut files: Vec<String> = r.data["files"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        files.sort();
        assert_eq!(files, vec!["./", "./a.txt", "./d/", "./d/b.txt", "./d/l"]);
        assert_eq!(fs::read_link(out.join("d/l")).unwrap(), PathBuf::from("b.txt"));
        assert_eq!(fs::metadata(out.join("a.txt")).unwrap().mtime(), fs::metadata(src.join("a.txt")).unwrap().mtime());
        assert!(!run(&a, &ctx).unwrap().changed);
        // GNU tar agrees the tree matches.
        let diff = std::process::Command::new("tar").args(["--diff", "-C", out.to_str().unwrap(), "-zf", t.to_str().unwrap()]).output().unwrap();
        assert!(diff.status.success(), "{}", String::from_utf8_lossy(&diff.stdout));
    }

    #[test]
    fn remote_url() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t.tgz");
        make_tar(&t, true, &[("x.txt", Some("x"))]);
        let body = fs::read(&t).unwrap();
        let srv = airlock_base::http::testserver::serve(vec![(
            "/t.tgz",
            airlock_base::http::testserver::Canned { status: 200, reason: "OK", headers: vec![], body },
        )]);
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(&args(json!({"src": format!("{}/t.tgz", srv.base), "dest": out, "remote_src": true})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(fs::read_to_string(out.join("x.txt")).unwrap(), "x");
    }

    #[test]
    fn refuses_escapes_and_unsupported_formats() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        for (name, kind, link) in [
            ("../evil.txt", EntryType::Regular, None),
            ("/etc/evil.txt", EntryType::Regular, None),
            ("a/../../evil.txt", EntryType::Regular, None),
            ("lnk", EntryType::Symlink, Some("../../etc")),
            ("lnk", EntryType::Symlink, Some("/etc/passwd")),
            ("hard", EntryType::Link, Some("../outside")),
        ] {
            let p = d.path().join("evil.tar");
            let mut b = tar::Builder::new(fs::File::create(&p).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(2);
            b.append_data(&mut h, "fine.txt", &b"ok"[..]).unwrap();
            raw_entry(&mut b, name, kind, link);
            b.into_inner().unwrap().flush().unwrap();
            let f = run(&args(json!({"src": p, "dest": out, "remote_src": true})), &ctx).unwrap_err();
            assert!(f.msg.starts_with("Refusing to unpack"), "{name}: {}", f.msg);
            // Nothing at all was extracted.
            assert!(!out.join("fine.txt").exists(), "{name}");
        }
        // A link inside dest is fine.
        let p = d.path().join("ok.tar");
        let mut b = tar::Builder::new(fs::File::create(&p).unwrap());
        raw_entry(&mut b, "sub/", EntryType::Directory, None);
        raw_entry(&mut b, "sub/lnk", EntryType::Symlink, Some("../target"));
        b.into_inner().unwrap().flush().unwrap();
        run(&args(json!({"src": p, "dest": out, "remote_src": true})), &ctx).unwrap();
        assert_eq!(fs::read_link(out.join("sub/lnk")).unwrap(), PathBuf::from("../target"));
        assert!(!run(&args(json!({"src": p, "dest": out, "remote_src": true})), &ctx).unwrap().changed);

        // A link whose parent is a link to "." cannot climb out either.
        let p = d.path().join("climb.tar");
        let mut b = tar::Builder::new(fs::File::create(&p).unwrap());
        raw_entry(&mut b, "a", EntryType::Symlink, Some("."));
        raw_entry(&mut b, "a/a/a/s", EntryType::Symlink, Some("../../../x"));
        b.into_inner().unwrap().flush().unwrap();
        let f = run(&args(json!({"src": p, "dest": out, "remote_src": true})), &ctx).unwrap_err();
        assert!(f.msg.contains("leads outside"), "{}", f.msg);
        assert!(fs::symlink_metadata(out.join("s")).is_err());

        // A pre-existing symlink in dest leading outside is not written through.
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("esc")).unwrap();
        let p = d.path().join("through.tar");
        make_tar(&p, false, &[("esc/x.txt", Some("x"))]);
        let f = run(&args(json!({"src": p, "dest": out, "remote_src": true})), &ctx).unwrap_err();
        assert!(f.msg.contains("symlink leading outside"), "{}", f.msg);
        assert!(!outside.join("x.txt").exists());

        let z = d.path().join("x.zip");
        fs::write(&z, b"PK\x03\x04rest").unwrap();
        let f = run(&args(json!({"src": z, "dest": out, "remote_src": true})), &ctx).unwrap_err();
        assert!(f.msg.contains("unsupported archive format (zip)") && f.msg.contains("x.zip"), "{}", f.msg);
        let e = d.path().join("empty.tgz");
        fs::write(&e, b"").unwrap();
        let f = run(&args(json!({"src": e, "dest": out, "remote_src": true})), &ctx).unwrap_err();
        assert!(f.msg.ends_with("the file is 0 bytes"));
    }
}

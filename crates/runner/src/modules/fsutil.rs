//! Writing files the way the file modules must: atomically (a temporary file beside the
//! destination, flushed, renamed over it) and with `--diff` output of the change.

use std::io::Write;
use std::path::Path;

use super::fileattrs::{match_dest_perms, temp_file_for};
use super::{Diff, ModuleFail};

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

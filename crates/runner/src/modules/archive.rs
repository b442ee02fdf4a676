//! The `archive` module (community.general.archive): packs files and trees into a .tar or
//! .tar.gz, or gzips a single file. The archive is written to a temporary file beside `dest`
//! and renamed into place, and only when its members would differ from the existing one.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::args::{bool_or, check_known, opt_list, opt_str};
use super::unarchive;
use super::utils::files::{self, FileAttrs, Hasher, expand_user};
use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult};

const ARGS: &[&str] = &["path", "dest", "format", "exclude_path", "exclusion_patterns", "force_archive", "remove"];
const FORMATS: &[&str] = &["bz2", "gz", "tar", "xz", "zip", "zstd"];

/// One archive member as compared: name, type, size, mode, mtime, uid, gid, link, content.
type Summary = BTreeSet<(String, char, u64, u32, u64, u64, u64, String, String)>;

/// Python's `os.path.commonprefix` of the parents, as the module's `common_path`: always ends
/// with `/`.
fn common_path(paths: &[PathBuf]) -> String {
    let parents: Vec<String> = paths
        .iter()
        .map(|p| {
            let parent = p.parent().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
            if parent.ends_with('/') { parent } else { format!("{parent}/") }
        })
        .collect();
    let Some(first) = parents.first() else { return String::new() };
    let mut len = first.len();
    for p in &parents[1..] {
        len = first.bytes().zip(p.bytes()).take(len).take_while(|(a, b)| a == b).count();
    }
    let mut prefix = &first[..len];
    while !prefix.is_char_boundary(prefix.len()) {
        prefix = &prefix[..prefix.len() - 1];
    }
    // os.path.dirname, then join with "".
    let dir = match prefix.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => prefix[..i].to_string(),
        None => String::new(),
    };
    if dir.is_empty() || dir.ends_with('/') { dir } else { format!("{dir}/") }
}

fn is_archive_name(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    [".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz2", ".tzst", ".zip"].iter().any(|s| n.ends_with(s))
}

/// Expands globs (sorted); returns the paths and whether any were globs.
fn expand_paths(paths: &[String]) -> Result<(Vec<PathBuf>, bool), ModuleFail> {
    let mut out = Vec::new();
    let mut globby = false;
    for p in paths {
        let p = expand_user(p);
        if p.contains('*') || p.contains('?') {
            globby = true;
            let mut found: Vec<PathBuf> =
                glob::glob(&p).map_err(|e| ModuleFail::new(format!("invalid glob pattern '{p}': {e}")))?.filter_map(Result::ok).collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(PathBuf::from(p));
        }
    }
    Ok((out, globby))
}

/// A file or directory to put in the archive, with its name there.
struct Item {
    path: PathBuf,
    name: String,
}

/// The members for `targets`, in os.walk order: a directory target contributes what is
/// below it (not itself), as the Python module does.
fn collect_items(targets: &[PathBuf], root: &str, skip: &[PathBuf], patterns: &[glob::Pattern]) -> io::Result<Vec<Item>> {
    let name_of = |p: &Path| {
        let s = p.to_string_lossy();
        s.strip_prefix(root).unwrap_or(&s).to_string()
    };
    let mut items = Vec::new();
    let push = |p: PathBuf, items: &mut Vec<Item>| {
        if skip.contains(&p) {
            return;
        }
        let name = name_of(&p);
        if patterns.iter().any(|pat| pat.matches(&name)) {
            return;
        }
        items.push(Item { path: p, name });
    };
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        entries.sort();
        let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|p| fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false));
        out.extend(dirs.iter().cloned());
        out.extend(files);
        for d in dirs {
            walk(&d, out)?;
        }
        Ok(())
    }
    for t in targets {
        if t.is_dir() {
            let mut found = Vec::new();
            walk(t, &mut found)?;
            for p in found {
                push(p, &mut items);
            }
        } else {
            push(t.clone(), &mut items);
        }
    }
    Ok(items)
}

fn file_sha1(path: &Path) -> io::Result<String> {
    files::file_digest(path, "sha1")
}

/// What the archive would hold, from the files on disk.
fn summary_of_items(items: &[Item]) -> io::Result<Summary> {
    let mut s = Summary::new();
    for it in items {
        let m = fs::symlink_metadata(&it.path)?;
        let ft = m.file_type();
        let name = it.name.trim_end_matches('/').to_string();
        let (kind, size, link, sum) = if ft.is_symlink() {
            ('l', 0, fs::read_link(&it.path)?.to_string_lossy().into_owned(), String::new())
        } else if ft.is_dir() {
            ('d', 0, String::new(), String::new())
        } else {
            ('f', m.len(), String::new(), file_sha1(&it.path)?)
        };
        s.insert((name, kind, size, m.mode() & 0o7777, m.mtime().max(0) as u64, m.uid() as u64, m.gid() as u64, link, sum));
    }
    Ok(s)
}

/// What an existing tar(.gz) holds; `None` if it cannot be read as one.
fn summary_of_archive(path: &Path) -> Option<Summary> {
    let format = unarchive::detect(path).ok()?;
    let mut ar = unarchive::open(path, format).ok()?;
    let mut s = Summary::new();
    for e in ar.entries().ok()? {
        let mut e = e.ok()?;
        let h = e.header().clone();
        let name = String::from_utf8_lossy(&e.path_bytes()).trim_end_matches('/').to_string();
        let link = e.link_name().ok()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let (kind, size, sum) = match h.entry_type() {
            tar::EntryType::Directory => ('d', 0, String::new()),
            tar::EntryType::Symlink => ('l', 0, String::new()),
            tar::EntryType::Link => ('h', 0, String::new()),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => {
                let mut hs = Hasher::named("sha1")?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = e.read(&mut buf).ok()?;
                    if n == 0 {
                        break;
                    }
                    hs.update(&buf[..n]);
                }
                ('f', e.size(), hs.hex())
            }
        };
        s.insert((name, kind, size, h.mode().ok()? & 0o7777, h.mtime().ok()?, h.uid().ok()?, h.gid().ok()?, link, sum));
    }
    Some(s)
}

/// The sha1 of a gzip file's uncompressed content; `None` if it is not gzip.
fn gunzip_sha1(path: &Path) -> Option<String> {
    let f = fs::File::open(path).ok()?;
    let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(f));
    let mut h = Hasher::named("sha1")?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = gz.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(h.hex())
}

/// Writes the tar (gzipped when `gz`) of `items` to `w`.
fn write_tar<W: Write>(w: W, items: &[Item], gz: bool) -> io::Result<()> {
    let w: Box<dyn Write> = if gz {
        // mtime 0 and no name: the same input gives the same bytes.
        Box::new(flate2::GzBuilder::new().mtime(0).write(w, flate2::Compression::default()))
    } else {
        Box::new(w)
    };
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    for it in items {
        let m = fs::symlink_metadata(&it.path)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        h.set_mode(m.mode() & 0o7777);
        let _ = h.set_username(&files::user_name(m.uid()));
        let _ = h.set_groupname(&files::group_name(m.gid()));
        let ft = m.file_type();
        let name = it.name.trim_end_matches('/');
        if ft.is_symlink() {
            h.set_size(0);
            let target = fs::read_link(&it.path)?;
            b.append_link(&mut h, name, target)?;
        } else if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        } else if ft.is_file() {
            let f = fs::File::open(&it.path)?;
            h.set_size(m.len());
            b.append_data(&mut h, name, f.take(m.len()))?;
        }
        // Sockets, fifos and devices are left out.
    }
    let mut inner = b.into_inner()?;
    inner.flush()?;
    drop(inner);
    Ok(())
}

fn remove_path(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn strs(v: &[PathBuf]) -> Vec<String> {
    v.iter().map(|p| p.to_string_lossy().into_owned()).collect()
}

/// Runs `archive`.
pub fn run(args: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    let allowed: Vec<&str> = ARGS.iter().chain(files::FILE_COMMON_ARGS).copied().collect();
    check_known(args, "archive", &allowed)?;
    let paths_arg = opt_list(args, "path")?.filter(|v| !v.is_empty()).ok_or_else(|| ModuleFail::new("missing required arguments: path"))?;
    let format = opt_str(args, "format")?.unwrap_or_else(|| "gz".into());
    if !FORMATS.contains(&format.as_str()) {
        return Err(ModuleFail::new(format!("value of format must be one of: {}, got: {format}", FORMATS.join(", "))));
    }
    let mut dest = opt_str(args, "dest")?.map(|d| PathBuf::from(expand_user(&d)));
    let exclude_arg = opt_list(args, "exclude_path")?.unwrap_or_default();
    let patterns: Vec<glob::Pattern> = opt_list(args, "exclusion_patterns")?
        .unwrap_or_default()
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| ModuleFail::new(format!("invalid pattern '{p}': {e}"))))
        .collect::<Result<_, _>>()?;
    let mut must_archive = bool_or(args, "force_archive", false)?;
    let remove = bool_or(args, "remove", false)?;
    let attrs = FileAttrs::from_args(args)?;

    let (expanded, globby) = expand_paths(&paths_arg)?;
    let (excluded, _) = expand_paths(&exclude_arg)?;
    let paths: Vec<PathBuf> = expanded.iter().filter(|p| !excluded.contains(p)).cloned().collect::<BTreeSet<_>>().into_iter().collect();
    if paths.is_empty() {
        return Err(ModuleFail::new("Error, no source paths were found")
            .with("path", paths_arg.join(", "))
            .with("expanded_paths", strs(&expanded).join(", "))
            .with("expanded_exclude_paths", strs(&excluded).join(", ")));
    }
    let root = common_path(&paths);
    if !must_archive {
        must_archive = globby || paths[0].is_dir() || paths.len() > 1;
    }
    if dest.is_none() && !must_archive {
        dest = Some(PathBuf::from(format!("{}.{format}", paths[0].display())));
    }
    let Some(dest) = dest else {
        return Err(ModuleFail::new("Error, must specify \"dest\" when archiving multiple files or trees")
            .with("dest", Value::Null)
            .with("path", paths_arg.join(", ")));
    };
    if !["gz", "tar"].contains(&format.as_str()) {
        return Err(ModuleFail::new(format!("Archive format '{format}' is not supported by airlock (supported: gz, tar); cannot create {}", dest.display())));
    }
    if remove {
        for p in &paths {
            if p.is_dir() && dest.starts_with(p) {
                return Err(
                    ModuleFail::new("Error, created archive can not be contained in source paths when remove=true").with("path", strs(&paths).join(", "))
                );
            }
        }
    }

    let (targets, missing): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| fs::symlink_metadata(p).is_ok());
    let dest_exists = fs::symlink_metadata(&dest).is_ok();
    let dest_dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let dest_name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let wrap = |e: io::Error, what: &str| ModuleFail::new(format!("Error when writing {what} archive at {}: {e}", dest.display()));
    let archive_kind = if format == "tar" { "tar" } else { "tar.gz" };

    let mut changed = false;
    let mut archived: Vec<PathBuf> = Vec::new();
    let dest_state;
    if targets.is_empty() {
        dest_state = if dest_exists { if is_archive_name(&dest) { "archive" } else { "compress" } } else { "absent" };
    } else if must_archive || format == "tar" {
        let skip = vec![dest.clone()];
        let items = collect_items(&targets, &root, &skip, &patterns).map_err(|e| wrap(e, archive_kind))?;
        // Skip our own temporary files if dest is inside a source tree.
        let items: Vec<Item> = items.into_iter().filter(|it| !(it.path.parent() == Some(dest_dir.as_path()) && it.name.ends_with(".airlock-tmp"))).collect();
        archived = items.iter().map(|i| i.path.clone()).collect();
        changed = if dest_exists {
            let want = summary_of_items(&items).map_err(|e| wrap(e, archive_kind))?;
            summary_of_archive(&dest).as_ref() != Some(&want)
        } else {
            true
        };
        if changed && !ctx.check_mode {
            if !dest_dir.is_dir() {
                return Err(ModuleFail::new(format!("Destination directory {} does not exist", dest_dir.display())));
            }
            let mut tmp = files::temp_file_for(&dest_dir, &dest_name).map_err(|e| wrap(e, archive_kind))?;
            write_tar(io::BufWriter::new(tmp.as_file_mut()), &items, format == "gz").map_err(|e| wrap(e, archive_kind))?;
            files::match_dest_perms(tmp.path(), &dest).map_err(|e| wrap(e, archive_kind))?;
            tmp.persist(&dest).map_err(|e| wrap(e.error, archive_kind))?;
        }
        dest_state = if missing.is_empty() { "archive" } else { "incomplete" };
    } else {
        // One file, gzip-compressed (not archived).
        let src = &targets[0];
        let want = file_sha1(src).map_err(|e| ModuleFail::new(format!("Unable to write to compressed file: {e}")).with("path", src.display().to_string()))?;
        changed = !dest_exists || gunzip_sha1(&dest).as_deref() != Some(want.as_str());
        if changed && !ctx.check_mode {
            let fail = |e: io::Error| {
                ModuleFail::new(format!("Unable to write to compressed file: {e}"))
                    .with("path", src.display().to_string())
                    .with("dest", dest.display().to_string())
            };
            let mut tmp = files::temp_file_for(&dest_dir, &dest_name).map_err(fail)?;
            {
                let mut enc = flate2::GzBuilder::new().mtime(0).write(io::BufWriter::new(tmp.as_file_mut()), flate2::Compression::default());
                let mut f = fs::File::open(src).map_err(fail)?;
                io::copy(&mut f, &mut enc).map_err(fail)?;
                enc.finish().map_err(fail)?.flush().map_err(fail)?;
            }
            files::match_dest_perms(tmp.path(), &dest).map_err(fail)?;
            tmp.persist(&dest).map_err(|e| fail(e.error))?;
        }
        archived.push(src.clone());
        dest_state = "compress";
    }

    if remove && !targets.is_empty() && !ctx.check_mode {
        let mut errors = Vec::new();
        for p in archived.iter().rev().chain(targets.iter()) {
            if let Err(e) = remove_path(p) {
                errors.push(format!("{}: {e}", p.display()));
            }
        }
        if !errors.is_empty() {
            return Err(ModuleFail::new("Error deleting some source files: ").with("dest", dest.display().to_string()).with("files", errors));
        }
    }

    if fs::symlink_metadata(&dest).is_ok() {
        changed |= attrs.apply(&dest, ctx.check_mode)?;
    }

    let mut data = Map::new();
    data.insert("archived".into(), strs(&archived).into());
    data.insert("dest".into(), dest.display().to_string().into());
    data.insert("dest_state".into(), dest_state.into());
    data.insert("state".into(), dest_state.into());
    data.insert("changed".into(), changed.into());
    data.insert("arcroot".into(), root.into());
    data.insert("missing".into(), strs(&missing).into());
    data.insert("expanded_paths".into(), strs(&expanded).into());
    data.insert("expanded_exclude_paths".into(), strs(&excluded).into());
    let mut r = ModuleResult::changed(changed);
    r.data = data;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::command::tests::{args, ctx_for};
    use serde_json::json;

    fn tree(d: &Path) -> PathBuf {
        let src = d.join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("a.txt"), "one\n").unwrap();
        fs::write(src.join("d/b.txt"), "two\n").unwrap();
        fs::write(src.join("d/c.log"), "log\n").unwrap();
        src
    }

    fn names(p: &Path) -> Vec<String> {
        let mut ar = unarchive::open(p, unarchive::detect(p).unwrap()).unwrap();
        ar.entries().unwrap().map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned()).collect()
    }

    #[test]
    fn archives_a_tree_idempotently() {
        let d = tempfile::tempdir().unwrap();
        let src = tree(d.path());
        let dest = d.path().join("o.tgz");
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let a = args(json!({"path": src, "dest": dest}));

        let cctx = ctx_for(true, d.path(), &pf);
        assert!(run(&a, &cctx).unwrap().changed);
        assert!(!dest.exists());

        let r = run(&a, &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(r.data["arcroot"], format!("{}/", d.path().display()));
        assert_eq!(r.data["dest_state"], "archive");
        assert_eq!(r.data["state"], "archive");
        assert_eq!(r.data["missing"], json!([]));
        assert_eq!(names(&dest), vec!["src/d", "src/a.txt", "src/d/b.txt", "src/d/c.log"]);
        assert_eq!(r.data["archived"].as_array().unwrap().len(), 4);

        let r = run(&a, &ctx).unwrap();
        assert!(!r.changed);
        assert!(!run(&a, &cctx).unwrap().changed);
        // A changed file changes the archive.
        fs::write(src.join("a.txt"), "ONE\n").unwrap();
        assert!(run(&a, &cctx).unwrap().changed);
        assert!(run(&a, &ctx).unwrap().changed);
        assert!(!run(&a, &ctx).unwrap().changed);
        // No temporary files left beside dest.
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");

        // GNU tar reads it and finds the tree unchanged.
        if let Ok(o) = std::process::Command::new("tar").args(["--diff", "-C", d.path().to_str().unwrap(), "-zf", dest.to_str().unwrap()]).output() {
            assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        }

        // And it unpacks with unarchive.
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        crate::modules::unarchive::run(&args(json!({"src": dest, "dest": out, "remote_src": true})), &ctx).unwrap();
        assert_eq!(fs::read_to_string(out.join("src/d/b.txt")).unwrap(), "two\n");
    }

    #[test]
    fn globs_excludes_tar_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let src = tree(d.path());
        let dest = d.path().join("o.tar");
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let r = run(
            &args(json!({
                "path": [format!("{}/*", src.display()), d.path().join("missing")],
                "exclude_path": [src.join("a.txt")],
                "exclusion_patterns": ["*.log"],
                "dest": dest,
                "format": "tar"
            })),
            &ctx,
        )
        .unwrap();
        assert!(r.changed);
        assert_eq!(r.data["dest_state"], "incomplete");
        assert_eq!(r.data["missing"], json!([d.path().join("missing")]));
        assert_eq!(r.data["arcroot"], format!("{}/", d.path().display()));
        assert_eq!(names(&dest), vec!["src/d/b.txt"]);
        assert_eq!(unarchive::detect(&dest).unwrap(), unarchive::Format::Tar);
    }

    #[test]
    fn single_file_compress_remove_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let src = tree(d.path());
        let pf = Default::default();
        let ctx = ctx_for(false, d.path(), &pf);
        let f = src.join("a.txt");
        let r = run(&args(json!({"path": f})), &ctx).unwrap();
        assert!(r.changed);
        assert_eq!(r.data["dest"], format!("{}.gz", f.display()));
        assert_eq!(r.data["dest_state"], "compress");
        assert_eq!(r.data["arcroot"], format!("{}/", src.display()));
        let mut gz = flate2::read::GzDecoder::new(fs::File::open(format!("{}.gz", f.display())).unwrap());
        let mut s = String::new();
        gz.read_to_string(&mut s).unwrap();
        assert_eq!(s, "one\n");
        assert!(!run(&args(json!({"path": f})), &ctx).unwrap().changed);

        let dest = d.path().join("d.tgz");
        let r = run(&args(json!({"path": src.join("d"), "dest": dest, "remove": true, "mode": "0600"})), &ctx).unwrap();
        assert!(r.changed);
        assert!(!src.join("d").exists());
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o600);

        let f2 = run(&args(json!({"path": [src.join("a.txt"), src.join("x")]})), &ctx).unwrap_err();
        assert_eq!(f2.msg, "Error, must specify \"dest\" when archiving multiple files or trees");
        let f3 = run(&args(json!({"path": d.path().join("nothing*")})), &ctx).unwrap_err();
        assert_eq!(f3.msg, "Error, no source paths were found");
        let f4 = run(&args(json!({"path": src, "dest": d.path().join("o.zip"), "format": "zip"})), &ctx).unwrap_err();
        assert!(f4.msg.contains("'zip' is not supported") && f4.msg.contains("o.zip"), "{}", f4.msg);
        let f5 = run(&args(json!({"path": src, "dest": src.join("in.tgz"), "remove": true})), &ctx).unwrap_err();
        assert_eq!(f5.msg, "Error, created archive can not be contained in source paths when remove=true");
    }

    #[test]
    fn common_paths() {
        assert_eq!(common_path(&[PathBuf::from("/tmp/ab/x"), PathBuf::from("/tmp/ac/y")]), "/tmp/");
        assert_eq!(common_path(&[PathBuf::from("/a/b/c")]), "/a/b/");
        assert_eq!(common_path(&[PathBuf::from("/x")]), "/");
    }
}

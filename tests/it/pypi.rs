//! PyPI downloads against a real pypiserver (fallback to pypi.org off) serving real wheels, with
//! the real pip. pypiserver and the wheels come from `bash .ci/setup-pypi`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use airlock_content::sources::pypi::{self, Mode, PipError, PipTarget};

use crate::support::pypiserver::{Server, fixture};

fn sha256(path: &Path) -> String {
    airlock_base::digest::sha256_file(path).unwrap().1
}

fn target(py: &str, platforms: &[&str]) -> PipTarget {
    PipTarget { python_version: Some(py.into()), platforms: platforms.iter().map(|s| s.to_string()).collect(), implementation: Some("cp".into()), abi: None }
}

fn reqs(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

/// name → version of a result.
fn versions(d: &pypi::PipDownload) -> BTreeMap<String, String> {
    d.files.iter().map(|f| (f.name.clone(), f.version.clone())).collect()
}

/// Every file is in `dest`, byte for byte the fixture's, with the sha256 and size reported.
#[track_caller]
fn check_files(d: &pypi::PipDownload, dest: &Path) {
    let fixture = fixture();
    for f in &d.files {
        let got = dest.join(&f.filename);
        let want = fixture.join(&f.filename);
        assert!(want.is_file(), "{} is not a fixture file", f.filename);
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want).unwrap(), "{} differs from the fixture", f.filename);
        assert_eq!(f.sha256, sha256(&want), "{}", f.filename);
        assert_eq!(f.size, std::fs::metadata(&want).unwrap().len(), "{}", f.filename);
    }
}

/// The visible entries of `dest` (what pypiserver would serve), sorted.
fn listing(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dest).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect();
    v.sort();
    v
}

/// No temporary directories left behind.
#[track_caller]
fn no_leftovers(dest: &Path) {
    for e in std::fs::read_dir(dest).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with(".airlock-pip-") && !n.ends_with(".part"), "left behind: {n}");
    }
}

const NO_PYTHON: &str = "/nonexistent/airlock-test/python3";

#[test]
fn requirement_with_dependencies_then_reruns() {
    let srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("pypi");
    let t = target("3.10", &["manylinux2014_x86_64", "linux_x86_64"]);
    let d = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, None).unwrap_or_else(|e| panic!("{e}\n{}", srv.log_text()));
    assert!(d.downloaded);
    let want: BTreeMap<String, String> =
        [("certifi", "2023.7.22"), ("charset-normalizer", "3.3.2"), ("idna", "3.4"), ("requests", "2.31.0"), ("urllib3", "2.0.7")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(versions(&d), want);
    check_files(&d, &dest);
    let cn = d.files.iter().find(|f| f.name == "charset-normalizer").unwrap();
    assert_eq!(cn.filename, "charset_normalizer-3.3.2-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
    for f in &d.files {
        assert_eq!(f.url.as_deref(), Some(format!("{}/packages/{}", srv.url, f.filename).as_str()));
    }
    let mut names: Vec<String> = d.files.iter().map(|f| f.filename.clone()).collect();
    names.sort();
    assert_eq!(listing(&dest), names, "dest holds exactly the resolved files");
    assert!(dest.join(pypi::STATE_FILE).is_file());
    no_leftovers(&dest);

    // Rerun, same inputs: nothing runs (the Python given does not even exist).
    let again = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, Some(Path::new(NO_PYTHON))).expect("a rerun needs no pip");
    assert!(!again.downloaded);
    assert_eq!(again.files, d.files);

    // A file damaged: pip resolves again and only that file is fetched anew.
    let idna = dest.join("idna-3.4-py3-none-any.whl");
    std::fs::write(&idna, b"damaged").unwrap();
    let before = std::fs::metadata(dest.join("requests-2.31.0-py3-none-any.whl")).unwrap().modified().unwrap();
    assert!(pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, Some(Path::new(NO_PYTHON))).is_err(), "a damaged file must not pass");
    let fixed = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, None).unwrap();
    assert!(fixed.downloaded);
    assert_eq!(fixed.files, d.files);
    check_files(&fixed, &dest);
    assert_eq!(std::fs::metadata(dest.join("requests-2.31.0-py3-none-any.whl")).unwrap().modified().unwrap(), before, "an intact file was replaced");

    // Changed inputs: resolved again (so the missing Python is noticed), then the new set.
    let changed = reqs(&["requests==2.31.0", "idna<3.4"]);
    let e = pypi::download(&changed, &srv.index(), &[], &t, &dest, Some(Path::new(NO_PYTHON))).unwrap_err();
    assert!(matches!(e, PipError::Python { .. }), "{e}");
    assert!(e.to_string().contains("not found") && e.to_string().contains("a `python` that has pip"), "{e}");
    let d2 = pypi::download(&changed, &srv.index(), &[], &t, &dest, None).unwrap();
    assert_eq!(versions(&d2).get("idna").map(String::as_str), Some("3.3"));
    check_files(&d2, &dest);
    assert!(d2.files.iter().all(|f| f.filename != "idna-3.4-py3-none-any.whl"));
    // All the rest was in place already.
    let unchanged = pypi::download(&changed, &srv.index(), &[], &t, &dest, Some(Path::new(NO_PYTHON))).unwrap();
    assert!(!unchanged.downloaded);
    no_leftovers(&dest);
}

#[test]
fn the_target_platform_and_python_decide_the_wheel() {
    let srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("3.10", "manylinux2014_x86_64", "MarkupSafe-2.1.3-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        ("3.10", "manylinux2014_aarch64", "MarkupSafe-2.1.3-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
        ("3.11", "manylinux2014_x86_64", "MarkupSafe-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    ];
    for (i, (py, plat, file)) in cases.iter().enumerate() {
        let dest = tmp.path().join(format!("d{i}"));
        let d =
            pypi::download(&reqs(&["MarkupSafe==2.1.3"]), &srv.index(), &[], &target(py, &[plat]), &dest, None).unwrap_or_else(|e| panic!("{py} {plat}: {e}"));
        assert_eq!(d.files.len(), 1, "{py} {plat}: {:?}", d.files);
        assert_eq!(d.files[0].filename, *file, "{py} {plat}");
        assert_eq!((d.files[0].name.as_str(), d.files[0].version.as_str()), ("markupsafe", "2.1.3"));
        check_files(&d, &dest);
        assert_eq!(listing(&dest), vec![file.to_string()]);
    }

    // A dependency with a platform wheel follows the target too.
    let dest = tmp.path().join("arm");
    let d = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &target("3.10", &["manylinux2014_aarch64"]), &dest, None).unwrap();
    let cn = d.files.iter().find(|f| f.name == "charset-normalizer").expect("charset-normalizer resolved");
    assert_eq!(cn.filename, "charset_normalizer-3.3.2-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl");
    check_files(&d, &dest);

    // No wheel for the target: pip's reason, the project and the index are in the error.
    let dest = tmp.path().join("win");
    let e = pypi::download(&reqs(&["MarkupSafe==2.1.3"]), &srv.index(), &[], &target("3.10", &["win_amd64"]), &dest, None).unwrap_err().to_string();
    assert!(e.contains("No matching distribution found for MarkupSafe==2.1.3"), "{e}");
    assert!(e.contains(&srv.index()) && e.contains("for cp 3.10 win_amd64 (wheels only)"), "{e}");
}

#[test]
fn a_missing_package_fails_naming_it() {
    let srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("pypi");
    let e = pypi::download(
        &reqs(&["requests==2.31.0", "no-such-package-airlock==1.0"]),
        &srv.index(),
        &[],
        &target("3.10", &["manylinux2014_x86_64"]),
        &dest,
        None,
    )
    .unwrap_err();
    let PipError::Pip { lines, index, .. } = &e else { panic!("not a pip error: {e}") };
    assert_eq!(index, &srv.index());
    assert!(lines.iter().any(|l| l.contains("No matching distribution found for no-such-package-airlock")), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("no-such-package-airlock") && msg.contains(&srv.index()), "{msg}");
    // Nothing half-done is left.
    assert!(listing(&dest).is_empty(), "{:?}", listing(&dest));
    assert!(!dest.join(pypi::STATE_FILE).exists());
    no_leftovers(&dest);

    // A version that does not exist, from an extra index too: both indexes are named.
    let e =
        pypi::download(&reqs(&["idna==9.9"]), &srv.index(), &[format!("{}/extra/simple", srv.url)], &target("3.10", &[]), &dest, None).unwrap_err().to_string();
    assert!(e.contains("idna==9.9") && e.contains("(from versions: 3.3, 3.4)"), "{e}");
    assert!(e.contains(&format!("extra: {}/extra/simple", srv.url)), "{e}");
}

#[test]
fn without_a_report_names_come_from_file_names() {
    let srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let t = target("3.10", &["manylinux2014_x86_64"]);
    let with_report = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &tmp.path().join("a"), None).unwrap();
    let dest = tmp.path().join("b");
    let d = pypi::download_with(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, None, Mode::FileNames, &pypi::PipNet::default()).unwrap();
    assert!(d.downloaded);
    assert_eq!(d.files, with_report.files, "both ways find the same files, names, versions, hashes and URLs");
    check_files(&d, &dest);
    no_leftovers(&dest);
    let again =
        pypi::download_with(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &t, &dest, Some(Path::new(NO_PYTHON)), Mode::FileNames, &pypi::PipNet::default())
            .unwrap();
    assert!(!again.downloaded);
}

#[test]
fn the_host_python_as_target() {
    // An empty target: the running interpreter decides; a pure wheel suits any.
    let srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("pypi");
    let d = pypi::download(&reqs(&["idna"]), &srv.index(), &[], &PipTarget::default(), &dest, None).unwrap();
    assert_eq!(versions(&d), [("idna".to_string(), "3.4".to_string())].into_iter().collect());
    check_files(&d, &dest);
}

#[test]
fn python_without_pip_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    let st = Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&venv).status().expect("python3 on PATH");
    assert!(st.success());
    let py = venv.join("bin/python3");
    let e =
        pypi::download(&reqs(&["idna"]), "http://127.0.0.1:9/simple", &[], &PipTarget::default(), &tmp.path().join("d"), Some(&py)).unwrap_err().to_string();
    assert!(e.contains("No module named 'pip'") && e.contains("a `python` that has pip") && e.contains(py.to_str().unwrap()), "{e}");
    let e = pypi::download(&reqs(&["idna"]), "http://127.0.0.1:9/simple", &[], &PipTarget::default(), &tmp.path().join("d"), Some(Path::new(NO_PYTHON)))
        .unwrap_err()
        .to_string();
    assert!(e.contains(NO_PYTHON) && e.contains("not found"), "{e}");
}

#[test]
fn an_index_without_hashes() {
    // No `#sha256=` on the links. pip hashes the files it fetched while resolving and reports
    // that, so the pins still carry hashes; the files must come out the same.
    let srv = Server::start_with(&["--hash-algo", "off"]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("pypi");
    let d = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &target("3.10", &["manylinux2014_aarch64"]), &dest, None).unwrap();
    assert_eq!(d.files.len(), 5, "{:?}", d.files);
    check_files(&d, &dest);
    assert!(d.files.iter().any(|f| f.filename.contains("charset_normalizer") && f.filename.contains("aarch64")));
    let again = pypi::download(&reqs(&["requests==2.31.0"]), &srv.index(), &[], &target("3.10", &["manylinux2014_aarch64"]), &dest, Some(Path::new(NO_PYTHON)))
        .unwrap();
    assert!(!again.downloaded);
}

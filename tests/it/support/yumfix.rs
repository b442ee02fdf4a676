//! Real Yum repositories for the sync tests: RPMs built with `rpmbuild`, indexed with
//! `createrepo_c`, served by `python3 -m http.server` on 127.0.0.1.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::StaticServer;

/// Fails (never skips) when a tool the tests need is missing.
#[track_caller]
pub fn require_tools() {
    for tool in ["rpmbuild", "createrepo_c", "python3", "zstd"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(found, "`{tool}` is missing: the Yum tests need rpmbuild, createrepo_c, zstd and python3; run `bash .ci/setup-yum` (as root)");
    }
}

/// A package to build: name, epoch, version, release.
pub struct Spec {
    pub name: &'static str,
    pub epoch: Option<u32>,
    pub version: &'static str,
    pub release: &'static str,
}

impl Spec {
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.noarch.rpm", self.name, self.version, self.release)
    }
}

/// The packages of the test repository: two versions of each name where the newest is not the
/// one a string comparison would pick (epoch, 1.10 vs 1.9, a tilde pre-release).
pub const PACKAGES: &[Spec] = &[
    Spec { name: "alpha", epoch: None, version: "1.0", release: "1" },
    Spec { name: "alpha", epoch: None, version: "1.1", release: "1" },
    Spec { name: "beta", epoch: None, version: "1.0", release: "1" },
    Spec { name: "beta", epoch: Some(1), version: "0.5", release: "1" },
    Spec { name: "gamma", epoch: None, version: "1.9", release: "1" },
    Spec { name: "gamma", epoch: None, version: "1.10", release: "1" },
    Spec { name: "delta", epoch: None, version: "2.0~rc1", release: "1" },
    Spec { name: "delta", epoch: None, version: "2.0", release: "1" },
];

/// Built later, by the update test.
pub const LATE: Spec = Spec { name: "epsilon", epoch: None, version: "1.0", release: "1" };

/// The newest of each name in `PACKAGES`.
pub const NEWEST: &[&str] = &["alpha-1.1-1.noarch.rpm", "beta-0.5-1.noarch.rpm", "gamma-1.10-1.noarch.rpm", "delta-2.0-1.noarch.rpm"];

fn spec_text(s: &Spec) -> String {
    let epoch = s.epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    format!(
        "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: airlock test package {name}\nLicense: MIT\nBuildArch: noarch\n\
         %description\nA package for airlock's Yum sync tests.\n\
         %install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho '{name} {version}-{release}' > %{{buildroot}}/usr/share/{name}/VERSION\n\
         %files\n/usr/share/{name}/VERSION\n",
        name = s.name,
        version = s.version,
        release = s.release,
    )
}

/// Builds RPMs with `rpmbuild -bb` (one process per spec, in parallel) and returns the
/// directory holding them. They are kept under cargo's test tmpdir, keyed by the spec texts
/// and rpmbuild's version, so other tests and later runs reuse them.
pub fn build_rpms(specs: &[&Spec]) -> PathBuf {
    build_spec_files(&specs.iter().map(|s| (s.file_name(), spec_text(s))).collect::<Vec<_>>())
}

/// As [`build_rpms`], from spec texts: each `(file name rpmbuild makes, spec text)`.
pub fn build_spec_files(specs: &[(String, String)]) -> PathBuf {
    use sha2::Digest;
    let version = super::run(Command::new("rpmbuild").arg("--version"));
    let mut h = sha2::Sha256::new();
    h.update(&version);
    for (_, text) in specs {
        h.update(text.as_bytes());
        h.update([0]);
    }
    let tmp_root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp_root.join(format!("yum-rpms-{}", &hex::encode(h.finalize())[..16]));
    if dir.is_dir() {
        return dir;
    }
    fs::create_dir_all(tmp_root).unwrap();
    let work = tempfile::Builder::new().prefix("yum-rpmbuild").tempdir_in(tmp_root).unwrap();
    let out = work.path().join("out");
    fs::create_dir_all(&out).unwrap();
    std::thread::scope(|scope| {
        for (i, (_, text)) in specs.iter().enumerate() {
            let top = work.path().join(format!("top{i}"));
            scope.spawn(move || {
                fs::create_dir_all(top.join("SPECS")).unwrap();
                let spec = top.join("SPECS").join("package.spec");
                fs::write(&spec, text).unwrap();
                super::run(Command::new("rpmbuild").arg("-bb").arg("--quiet").arg("--define").arg(format!("_topdir {}", top.display())).arg(&spec));
            });
        }
    });
    for (i, (file, _)) in specs.iter().enumerate() {
        // rpmbuild puts a package under RPMS/<its architecture>/.
        let arch = file.trim_end_matches(".rpm").rsplit('.').next().unwrap();
        let built = work.path().join(format!("top{i}/RPMS/{arch}")).join(file);
        assert!(built.is_file(), "rpmbuild did not make {file}");
        fs::rename(&built, out.join(file)).unwrap();
    }
    // Another test may have finished first: then its copy is used.
    if fs::rename(&out, &dir).is_err() {
        assert!(dir.is_dir(), "could not keep the built RPMs in {}", dir.display());
    }
    dir
}

/// Where a package lives in the test repository: `Packages/<first letter>/<file>`.
pub fn package_href(file: &str) -> String {
    format!("Packages/{}/{file}", &file[..1])
}

/// An upstream repository served over HTTP: `<dir>/www` is served, `www/repo` is the
/// repository and `www/keys` holds a key outside it.
pub struct Upstream {
    pub dir: tempfile::TempDir,
    pub server: Option<StaticServer>,
}

pub const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>airlock-test</id>
    <name>Airlock test</name>
    <description>Test group</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">alpha</packagereq>
    </packagelist>
  </group>
</comps>
"#;

pub const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="test@example.com" status="stable" type="bugfix" version="2.0">
    <id>AIRLOCK-2024-1</id>
    <title>alpha update</title>
    <issued date="2024-01-01 00:00:00"/>
    <description>Fixes alpha.</description>
    <pkglist>
      <collection short="test">
        <name>test</name>
        <package name="alpha" version="1.1" release="1" epoch="0" arch="noarch">
          <filename>alpha-1.1-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
"#;

impl Upstream {
    /// Copies the built packages into a repository and indexes it with `createrepo_c`
    /// (`extra` are more createrepo_c arguments), with comps, updateinfo (modifyrepo_c), a
    /// `repomd.xml.asc` and two keys; then serves it.
    pub fn new(extra: &[&str]) -> Upstream {
        require_tools();
        let dir = tempfile::Builder::new().prefix("airlock-yum-upstream").tempdir().unwrap();
        fs::write(dir.path().join("comps.xml"), COMPS).unwrap();
        let mut up = Upstream { dir, server: None };
        up.add(&PACKAGES.iter().collect::<Vec<_>>());
        up.index(extra);
        let updateinfo = up.dir.path().join("updateinfo.xml");
        fs::write(&updateinfo, UPDATEINFO).unwrap();
        super::run(Command::new("modifyrepo_c").arg("--mdtype=updateinfo").arg(&updateinfo).arg(up.repo().join("repodata")));
        fs::create_dir_all(up.www().join("keys")).unwrap();
        fs::write(up.www().join("keys/RPM-GPG-KEY-outside"), "-----BEGIN PGP PUBLIC KEY BLOCK-----\noutside\n-----END PGP PUBLIC KEY BLOCK-----\n").unwrap();
        fs::write(up.repo().join("RPM-GPG-KEY-inside"), "-----BEGIN PGP PUBLIC KEY BLOCK-----\ninside\n-----END PGP PUBLIC KEY BLOCK-----\n").unwrap();
        up.sign();
        up.server = Some(StaticServer::start(&up.www()));
        up
    }

    /// Builds packages and puts them in the repository (not indexed yet).
    pub fn add(&self, specs: &[&Spec]) {
        let rpms = build_rpms(specs);
        for s in specs {
            let href = self.repo().join(package_href(&s.file_name()));
            fs::create_dir_all(href.parent().unwrap()).unwrap();
            fs::copy(rpms.join(s.file_name()), href).unwrap();
        }
    }

    /// (Re)indexes the repository with `createrepo_c`, with the comps file.
    pub fn index(&mut self, extra: &[&str]) {
        let mut cmd = Command::new("createrepo_c");
        cmd.arg("--quiet").arg("--groupfile").arg(self.dir.path().join("comps.xml")).args(extra).arg(self.repo());
        super::run(&mut cmd);
    }

    /// A stand-in detached signature of the current `repomd.xml` (its bytes are never checked).
    pub fn sign(&self) {
        let repomd = fs::read(self.repo().join("repodata/repomd.xml")).unwrap();
        fs::write(self.repo().join("repodata/repomd.xml.asc"), format!("-----BEGIN PGP SIGNATURE-----\n{} bytes\n-----END PGP SIGNATURE-----\n", repomd.len()))
            .unwrap();
    }

    /// The served directory.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    pub fn repo(&self) -> PathBuf {
        self.www().join("repo")
    }

    pub fn url(&self, path: &str) -> String {
        self.server.as_ref().unwrap().url(path)
    }

    pub fn baseurl(&self) -> String {
        self.url("repo")
    }
}

/// `dnf download` of `package` from the repository at `baseurl` into `dest`, reading nothing of
/// this machine's dnf configuration: a fresh install root, no repository files, no GPG checks.
pub fn dnf_download(baseurl: &str, package: &str, dest: &Path) {
    let dnf_root = tempfile::tempdir().unwrap();
    super::run(Command::new("dnf").args([
        "-y",
        // No release to detect in an empty root; the repository's URL does not use one.
        "--releasever=airlock-test",
        &format!("--installroot={}", dnf_root.path().display()),
        "--setopt=reposdir=/nonexistent",
        // A cache of its own: dnf keeps `<repo id>.solv` there whatever the URL, so tests running
        // at once with one cache would read each other's package lists.
        &format!("--setopt=cachedir={}/cache", dnf_root.path().display()),
        "--nogpgcheck",
        &format!("--repofrompath=mirror,{baseurl}"),
        "--repo=mirror",
        "download",
        &format!("--destdir={}", dest.display()),
        package,
    ]));
}

/// The file names of the RPMs under `dir`.
pub fn rpms_in(dir: &Path) -> BTreeSet<String> {
    super::tree(dir)
        .keys()
        .map(Path::new)
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

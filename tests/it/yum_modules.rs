//! `yum_sync` with `newest_only` on a repository shaped like NVIDIA's CUDA repository: the
//! module `nvidia-driver` with the streams `550-dkms`, `560-dkms`, `latest-dkms` (the default)
//! and `open-dkms`, several module versions per stream and several driver versions per module
//! version, non-modular packages, sqlite databases, a comps file, RPMs and `repomd.xml`
//! signed with a GPG key made here. The mirror must keep what `dnf reposync --newest-only`
//! keeps, so that a node pinning a driver branch (`dnf module install nvidia-driver:550-dkms`)
//! installs from it with every GPG check on.
//!
//! Needs `bash .ci/setup-yum` (rpmbuild, rpmsign, createrepo_c, modifyrepo_c, gpg, dnf with
//! its reposync plugin) and, for the node, `bash .ci/build-node-image`.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use airlock_content::sources::yum;
use serde_json::Value;

use crate::support::{self, Project, run, serve, yumfix};

/// The repository's id in the mirror, as the role names it.
const REPO: &str = "cuda-rhel9-x86_64";

/// One package of the fixture repository.
struct Rpm {
    name: &'static str,
    epoch: Option<u32>,
    version: &'static str,
    release: &'static str,
    arch: &'static str,
}

const fn driver(name: &'static str, version: &'static str) -> Rpm {
    // NVIDIA's driver packages carry epoch 3.
    Rpm { name, epoch: Some(3), version, release: "1.el9", arch: "x86_64" }
}

const ND: &str = "nvidia-driver";
const KMOD: &str = "kmod-nvidia-latest-dkms";
const OPEN: &str = "kmod-nvidia-open-dkms";
const CONFIG: &str = "cuda-toolkit-config-common";

const RPMS: &[Rpm] = &[
    driver(ND, "550.54.14"),
    driver(ND, "550.54.15"),
    driver(ND, "550.90.07"),
    driver(ND, "560.28.03"),
    driver(ND, "560.35.03"),
    driver(KMOD, "550.54.15"),
    driver(KMOD, "550.90.07"),
    driver(KMOD, "560.28.03"),
    driver(KMOD, "560.35.03"),
    driver(OPEN, "550.90.07"),
    driver(OPEN, "560.35.03"),
    // Not in any module.
    Rpm { name: CONFIG, epoch: None, version: "12.4.127", release: "1", arch: "noarch" },
    Rpm { name: CONFIG, epoch: None, version: "12.6.77", release: "1", arch: "noarch" },
];

impl Rpm {
    fn file_name(&self) -> String {
        format!("{}-{}-{}.{}.rpm", self.name, self.version, self.release, self.arch)
    }

    fn spec(&self) -> (String, String) {
        let epoch = self.epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
        let text = format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: airlock test package {name}\nLicense: MIT\nBuildArch: {arch}\n\
             %description\nA package shaped like NVIDIA's, for airlock's module stream tests.\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho '{version}' > %{{buildroot}}/usr/share/{name}/VERSION\n\
             %files\n/usr/share/{name}/VERSION\n",
            name = self.name,
            version = self.version,
            release = self.release,
            arch = self.arch,
        );
        (self.file_name(), text)
    }
}

/// The NEVRA of a driver package as `modules.yaml` lists it: `name-epoch:version-release.arch`.
fn d(name: &str, version: &str) -> String {
    format!("{name}-3:{version}-1.el9.x86_64")
}

/// One module version of the `modules.yaml`: stream, version, context, artifacts.
struct ModuleVersion {
    stream: &'static str,
    version: u64,
    context: &'static str,
    artifacts: Vec<String>,
}

/// Two versions per stream, as NVIDIA's repository gains one each time it is regenerated (its
/// contexts hash the version, so they differ too). Newer versions list every driver of the
/// branch still offered; `560-dkms`, `latest-dkms` and `open-dkms` dropped some.
fn module_versions() -> Vec<ModuleVersion> {
    let m = |stream, version, context, artifacts: Vec<String>| ModuleVersion { stream, version, context, artifacts };
    vec![
        m("550-dkms", 20240301093000, "8c1e2d7fa0", vec![d(ND, "550.54.14"), d(ND, "550.54.15"), d(KMOD, "550.54.15")]),
        m(
            "550-dkms",
            20240612101500,
            "2b9d04ce51",
            vec![d(ND, "550.54.14"), d(ND, "550.54.15"), d(ND, "550.90.07"), d(KMOD, "550.54.15"), d(KMOD, "550.90.07")],
        ),
        m("560-dkms", 20240801120000, "f03a6b12c4", vec![d(ND, "560.28.03"), d(KMOD, "560.28.03")]),
        m("560-dkms", 20240920083000, "5d7e9a0b33", vec![d(ND, "560.35.03"), d(KMOD, "560.35.03")]),
        m("latest-dkms", 20240801120000, "a4c2f81e07", vec![d(ND, "560.28.03"), d(KMOD, "560.28.03")]),
        m("latest-dkms", 20240920083000, "9e61b0d2fa", vec![d(ND, "560.35.03"), d(KMOD, "560.35.03")]),
        m("open-dkms", 20240612101500, "c7d35e9041", vec![d(ND, "550.90.07"), d(OPEN, "550.90.07")]),
        m("open-dkms", 20240920083000, "0f4b8c6d2e", vec![d(ND, "560.35.03"), d(OPEN, "560.35.03")]),
    ]
}

/// What `newest_only` must keep: the newest non-modular package, and every package of each
/// stream's newest module version.
const KEPT: &[&str] = &[
    "cuda-toolkit-config-common-12.6.77-1.noarch.rpm",
    "kmod-nvidia-latest-dkms-550.54.15-1.el9.x86_64.rpm",
    "kmod-nvidia-latest-dkms-550.90.07-1.el9.x86_64.rpm",
    "kmod-nvidia-latest-dkms-560.35.03-1.el9.x86_64.rpm",
    "kmod-nvidia-open-dkms-560.35.03-1.el9.x86_64.rpm",
    "nvidia-driver-550.54.14-1.el9.x86_64.rpm",
    "nvidia-driver-550.54.15-1.el9.x86_64.rpm",
    "nvidia-driver-550.90.07-1.el9.x86_64.rpm",
    "nvidia-driver-560.35.03-1.el9.x86_64.rpm",
];

/// `modules.yaml` as NVIDIA's generator writes it (four-space indentation, `...` and `---`
/// between documents, the defaults document last).
fn modules_yaml() -> String {
    let mut out = String::new();
    for m in module_versions() {
        let dkms = "kmod-nvidia-latest-dkms";
        let kmod = if m.stream == "open-dkms" { OPEN } else { dkms };
        let branch_pkgs = [ND, kmod];
        let list = |pkgs: &[&str]| pkgs.iter().map(|p| format!("                - {p}\n")).collect::<String>();
        out.push_str(&format!(
            "document: modulemd\nversion: 2\ndata:\n    name: nvidia-driver\n    stream: {stream}\n    version: {version}\n    context: {context}\n    arch: x86_64\n\
             \x20   summary: Nvidia driver for {stream} branch\n    description: >-\n        This package provides the most recent NVIDIA display driver which allows for\n\
             \x20       hardware accelerated rendering with recent NVIDIA chipsets.\n    license:\n        module:\n            - MIT\n\
             \x20   artifacts:\n        rpms:\n{artifacts}    profiles:\n\
             \x20       default:\n            description: Default installation\n            rpms:\n{default}\
             \x20       src:\n            description: Source headers for compilation\n            rpms:\n                - nvidia-kmod-headers\n\
             \x20       fm:\n            description: FabricManager installation\n            rpms:\n{fm}\
             \x20       ks:\n            description: Installation via kickstart\n            rpms:\n{ks}...\n---\n",
            stream = m.stream,
            version = m.version,
            context = m.context,
            artifacts = m.artifacts.iter().map(|a| format!("            - {a}\n")).collect::<String>(),
            default = list(&branch_pkgs),
            fm = list(&[ND, kmod, "nvidia-fabric-manager"]),
            ks = list(&branch_pkgs),
        ));
    }
    out.push_str("document: modulemd-defaults\nversion: 1\ndata:\n    module: nvidia-driver\n    stream: latest-dkms\n    profiles:\n");
    for s in ["latest-dkms", "560-dkms", "550-dkms", "open-dkms"] {
        out.push_str(&format!("        {s}: [default]\n"));
    }
    out.push_str("...\n");
    out
}

const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>cuda-tools</id>
    <name>CUDA Tools</name>
    <description>CUDA configuration files</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">cuda-toolkit-config-common</packagereq>
    </packagelist>
  </group>
</comps>
"#;

/// A GnuPG home with one signing key, made with `gpg --batch`; its agent is stopped when dropped.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        // Short: the agent's socket path must fit in a sockaddr_un.
        let home = tempfile::Builder::new().prefix("airlock-gpg").tempdir_in("/tmp").unwrap();
        let g = Gpg { home };
        run(g.cmd().args(["--passphrase", "", "--quick-gen-key", "airlock CUDA test <cuda-test@airlock.invalid>", "rsa2048", "sign", "never"]));
        g
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(self.home.path()).args(["--batch", "--quiet", "--pinentry-mode", "loopback"]);
        c
    }

    /// The key's fingerprint.
    fn fingerprint(&self) -> String {
        let out = String::from_utf8(run(self.cmd().args(["--with-colons", "--list-secret-keys"]))).unwrap();
        out.lines().find_map(|l| l.strip_prefix("fpr:")).map(|l| l.trim_matches(':').to_string()).expect("gpg lists the key's fingerprint")
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").arg("--homedir").arg(self.home.path()).args(["--kill", "all"]).status();
    }
}

/// Where a tool is on PATH.
fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("`{tool}` is missing: run `bash .ci/setup-yum` (as root)"))
}

/// The upstream repository, served by python3's http.server at `/repo/`.
struct Upstream {
    dir: tempfile::TempDir,
    server: support::StaticServer,
    key_file: String,
    _gpg: Gpg,
}

impl Upstream {
    /// Builds (or reuses) the RPMs, signs copies of them with a new key, indexes them with
    /// `createrepo_c -g comps.xml` (sqlite databases included), adds `modules.yaml` with
    /// `modifyrepo_c` (xz, as the module metadata may come), signs `repomd.xml` and publishes
    /// the public key beside the packages, as NVIDIA does.
    fn new() -> Upstream {
        yumfix::require_tools();
        let built = yumfix::build_spec_files(&RPMS.iter().map(Rpm::spec).collect::<Vec<_>>());
        let gpg = Gpg::new();
        let dir = tempfile::Builder::new().prefix("airlock-cuda-upstream").tempdir().unwrap();
        let repo = dir.path().join("www/repo");
        fs::create_dir_all(&repo).unwrap();
        let mut rpms = Vec::new();
        for r in RPMS {
            fs::copy(built.join(r.file_name()), repo.join(r.file_name())).unwrap();
            rpms.push(repo.join(r.file_name()));
        }
        run(Command::new(which("rpmsign"))
            .arg("--addsign")
            .arg("--define")
            .arg(format!("__gpg {}", which("gpg").display()))
            .arg("--define")
            .arg(format!("_gpg_path {}", gpg.home.path().display()))
            .arg("--define")
            .arg("_gpg_name cuda-test@airlock.invalid")
            .args(&rpms)
            .stdin(std::process::Stdio::null()));
        fs::write(dir.path().join("comps.xml"), COMPS).unwrap();
        run(Command::new("createrepo_c").arg("--quiet").arg("-g").arg(dir.path().join("comps.xml")).arg(&repo));
        let modules = dir.path().join("modules.yaml");
        fs::write(&modules, modules_yaml()).unwrap();
        run(Command::new("modifyrepo_c").args(["--mdtype=modules", "--compress-type=xz"]).arg(&modules).arg(repo.join("repodata")));
        run(gpg.cmd().args(["--yes", "--armor", "--detach-sign"]).arg(repo.join("repodata/repomd.xml")));
        let fpr = gpg.fingerprint();
        let key_file = format!("{}.pub", fpr[fpr.len() - 8..].to_ascii_uppercase());
        fs::write(repo.join(&key_file), run(gpg.cmd().args(["--armor", "--export", &fpr]))).unwrap();
        let server = support::StaticServer::start(&dir.path().join("www"));
        Upstream { dir, server, key_file, _gpg: gpg }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("www/repo")
    }

    fn baseurl(&self) -> String {
        self.server.url("repo")
    }

    fn key_url(&self) -> String {
        format!("{}/{}", self.baseurl(), self.key_file)
    }
}

/// A project whose playbook syncs the upstream into `cache/yum/` with `newest_only: true`.
fn project(up: &Upstream) -> Project {
    let p = Project::new();
    p.file(
        "sync.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: CUDA for RHEL 9\n      yum_sync:\n        dest: \"{{{{ playbook_dir }}}}/cache/yum\"\n\
             \x20       repos:\n          - name: {REPO}\n            baseurl: {}\n            gpgkey: {}\n            newest_only: true\n",
            up.baseurl(),
            up.key_url()
        ),
    );
    p
}

/// The result the task printed with `-v`.
#[track_caller]
fn task_result(r: &support::Run) -> Value {
    let line = r.stdout.lines().find_map(|l| l.strip_prefix("changed: [localhost] => ").or_else(|| l.strip_prefix("ok: [localhost] => ")));
    let line = line.unwrap_or_else(|| panic!("no task result in\n{}", r.stdout));
    serde_json::from_str(line).unwrap()
}

/// What the host's `dnf reposync --newest-only` (dnf-plugins-core) downloads from `baseurl`.
fn dnf_reposync_newest_only(baseurl: &str) -> BTreeSet<String> {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    run(Command::new(which("dnf")).args([
        "-y",
        "-q",
        "--releasever=9",
        &format!("--installroot={}", root.path().join("root").display()),
        "--setopt=reposdir=/nonexistent",
        &format!("--setopt=cachedir={}/cache", root.path().display()),
        "--setopt=module_platform_id=platform:el9",
        "--nogpgcheck",
        &format!("--repofrompath=cuda,{baseurl}"),
        "--repo=cuda",
        "reposync",
        "--newest-only",
        &format!("--download-path={}", out.display()),
    ]));
    yumfix::rpms_in(&out)
}

#[test]
fn newest_only_keeps_each_module_streams_newest_version_as_dnf_reposync_does() {
    let up = Upstream::new();
    let p = project(&up);
    let mirror = p.path("cache/yum").join(REPO);
    let want: BTreeSet<String> = KEPT.iter().map(|s| s.to_string()).collect();

    // Check mode: the selection and its size, nothing written.
    let r = p.playbook("sync.yml", &["--check", "-v"]);
    r.success();
    let check = task_result(&r);
    assert!(!p.path("cache").exists(), "check mode wrote files");
    assert_eq!(check["repos"][0]["packages"], KEPT.len(), "{check}");
    assert_eq!(check["repos"][0]["module_streams"], 4, "{check}");
    assert!(check["msg"].as_str().unwrap().contains(&format!("{REPO}: 9 packages, 4 module streams")), "{check}");

    // The real run keeps every stream's newest version.
    let r = p.playbook("sync.yml", &["-v"]);
    r.success();
    let res = task_result(&r);
    assert_eq!(res["changed"], true);
    assert_eq!(res["repos"][0]["packages"], KEPT.len(), "{res}");
    assert_eq!(res["repos"][0]["module_streams"], 4, "{res}");
    assert_eq!(res["msg"], format!("{REPO}: 9 packages, 4 module streams"));
    assert_eq!(yumfix::rpms_in(&mirror), want);
    // The same selection (and bytes) as check mode announced.
    let tree = support::tree(&mirror);
    assert_eq!(check["repos"][0]["total_size"], tree.values().map(|b| b.len() as u64).sum::<u64>(), "check mode's size differs from the mirror's");
    assert_eq!(res["repos"][0]["files"], tree.len());

    // The metadata is upstream's, byte for byte: xz modules, sqlite databases, comps, signature.
    let upstream_rd = support::tree(&up.repo().join("repodata"));
    let names: Vec<String> = upstream_rd.keys().cloned().collect();
    for kind in ["modules.yaml.xz", "primary.sqlite", "comps.xml", "repomd.xml.asc"] {
        assert!(names.iter().any(|n| n.contains(kind)), "the fixture lacks {kind}: {names:?}");
    }
    assert_eq!(support::tree(&mirror.join("repodata")), upstream_rd, "the mirror's repodata differs from upstream's");
    assert_eq!(fs::read(mirror.join(&up.key_file)).unwrap(), fs::read(up.repo().join(&up.key_file)).unwrap());

    // The archive gets exactly these packages (offline_archive reads the fragment).
    let fragment: Value = serde_json::from_str(&p.read("cache/.airlock/manifest.d/yum-yum.json")).unwrap();
    let recorded: BTreeSet<String> = fragment
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "rpm")
        .map(|a| a["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(recorded, want);

    // dnf itself keeps the same packages.
    assert_eq!(dnf_reposync_newest_only(&up.baseurl()), want, "dnf reposync --newest-only keeps other packages than yum_sync");

    // The old selection, the newest of each name, would have left the 550 branch out, so
    // that `dnf module install nvidia-driver:550-dkms` found its stream but no package.
    let primary = fs::read_dir(mirror.join("repodata")).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with("primary.xml.gz")).unwrap();
    let all = yum::read_primary(std::io::BufReader::new(fs::File::open(primary).unwrap())).unwrap();
    assert_eq!(all.len(), RPMS.len());
    let old: BTreeSet<String> = yum::newest(all).iter().map(|p| p.href.clone()).collect();
    assert_eq!(old.len(), 4, "{old:?}");
    for stream_pkg in
        ["nvidia-driver-550.54.14-1.el9.x86_64.rpm", "nvidia-driver-550.90.07-1.el9.x86_64.rpm", "kmod-nvidia-latest-dkms-550.90.07-1.el9.x86_64.rpm"]
    {
        assert!(!old.contains(stream_pkg), "{stream_pkg} was newest of its name already");
        assert!(mirror.join(stream_pkg).is_file(), "{stream_pkg} of 550-dkms is not in the mirror");
    }
    // Packages only older module versions list are left out, as dnf leaves them.
    for gone in
        ["nvidia-driver-560.28.03-1.el9.x86_64.rpm", "kmod-nvidia-open-dkms-550.90.07-1.el9.x86_64.rpm", "cuda-toolkit-config-common-12.4.127-1.noarch.rpm"]
    {
        assert!(up.repo().join(gone).is_file() && !mirror.join(gone).exists(), "{gone}");
    }

    // A rerun changes nothing, and check mode then has nothing to download.
    let r = p.playbook("sync.yml", &["-v"]);
    r.success();
    assert_eq!(task_result(&r)["changed"], false);
    let r = p.playbook("sync.yml", &["--check", "-v"]);
    let again = task_result(r.success());
    assert_eq!((again["changed"].clone(), again["download_size"].clone()), (Value::Bool(false), Value::from(0)));
    assert_eq!(again["repos"][0]["total_size"], check["repos"][0]["total_size"]);
}

/// Runs a shell script on a node container (`airlock-test/node:bookworm`: Debian's dnf with
/// libmodulemd), on the host's network so that it reaches the mirror on 127.0.0.1.
fn on_node(env: &[(&str, &str)], script: &str) -> std::process::Output {
    let image_ok = Command::new("docker").args(["image", "inspect", "airlock-test/node:bookworm"]).output().is_ok_and(|o| o.status.success());
    assert!(image_ok, "the image airlock-test/node:bookworm is missing: run `sudo bash .ci/build-node-image` first");
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "host"]);
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.args(["airlock-test/node:bookworm", "sh", "-c", script]);
    cmd.output().expect("running docker")
}

/// The text printed between `== <name>` and the next `== ` line.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out.find(&format!("== {name}\n")).unwrap_or_else(|| panic!("no section {name} in\n{out}")) + name.len() + 4;
    let rest = &out[start..];
    &rest[..rest.find("\n== ").map(|i| i + 1).unwrap_or(rest.len())]
}

#[test]
fn a_node_installs_a_non_default_driver_stream_from_the_mirror_with_gpg_checks_on() {
    let up = Upstream::new();
    let p = project(&up);
    p.playbook("sync.yml", &[]).success();
    let mirror = serve::Serve::start_with(&p.path("cache"), &["--mirrors", "yum"]);
    let base = format!("http://127.0.0.1:{}/{REPO}/", mirror.yum);
    let repo_file = format!(
        "[{REPO}]\nname=CUDA (offline mirror)\nbaseurl={base}\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey={base}{}\nskip_if_unavailable=0\n",
        up.key_file
    );
    let script = r#"set -e
printf '%s' "$REPO_FILE" > /etc/yum.repos.d/cuda.repo
dnf="dnf -y --setopt=module_platform_id=platform:el9"
echo "== repos"; ls /etc/yum.repos.d; $dnf -q repolist
echo "== module list"; $dnf module list nvidia-driver
echo "== module install"; $dnf module install nvidia-driver:550-dkms
echo "== installed"; rpm -q --qf '%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{RSAHEADER:pgpsig}\n' nvidia-driver kmod-nvidia-latest-dkms; cat /usr/share/nvidia-driver/VERSION
echo "== enabled"; $dnf module list --enabled
echo "== group list"; $dnf group list
echo "== install"; $dnf install cuda-toolkit-config-common
rpm -q cuda-toolkit-config-common
echo "== end"
"#;
    let out = on_node(&[("REPO_FILE", &repo_file)], script);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dnf on the node failed:\n{text}\n--- airlock serve\n{}", mirror.log());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();

    // The mirror is the node's only repository.
    assert_eq!(section(&stdout, "repos").lines().filter(|l| l.ends_with(".repo")).collect::<Vec<_>>(), ["cuda.repo"]);
    // Every stream is listed, latest-dkms the default.
    let list = section(&stdout, "module list");
    for stream in ["550-dkms", "560-dkms", "latest-dkms [d]", "open-dkms"] {
        assert!(list.lines().any(|l| l.starts_with("nvidia-driver") && l.contains(stream)), "{stream} is not listed:\n{list}");
    }
    // The 550 branch, not the newest driver: its newest version and its dkms module.
    let installed = section(&stdout, "installed");
    assert!(installed.contains("nvidia-driver 3:550.90.07-1.el9 RSA/"), "{installed}");
    assert!(installed.contains("kmod-nvidia-latest-dkms 3:550.90.07-1.el9 RSA/"), "{installed}");
    assert!(installed.lines().any(|l| l == "550.90.07"), "{installed}");
    assert!(section(&stdout, "enabled").lines().any(|l| l.starts_with("nvidia-driver") && l.contains("550-dkms [e]")), "{stdout}");
    assert!(section(&stdout, "group list").contains("CUDA Tools"), "{stdout}");
    assert!(section(&stdout, "install").contains("cuda-toolkit-config-common-12.6.77-1.noarch"), "{stdout}");
    // Both signatures were checked: repomd.xml's and the packages'.
    assert!(text.contains("Importing GPG key"), "{text}");
}

#[test]
fn a_modules_yaml_that_does_not_parse_fails_naming_its_url_and_publishes_no_index() {
    let up = yumfix::Upstream::new(&[]);
    let bad = up.dir.path().join("modules.yaml");
    // The second document's artifacts are a mapping, not a list.
    fs::write(&bad, "---\ndocument: modulemd\nversion: 2\ndata:\n  name: alpha\n  stream: '1'\n  version: 1\n  artifacts:\n    rpms: [alpha-0:1.0-1.noarch]\n...\n---\ndocument: modulemd\nversion: 2\ndata:\n  name: alpha\n  stream: '2'\n  version: 1\n  artifacts:\n    rpms: {alpha: 1.1}\n...\n").unwrap();
    run(Command::new("modifyrepo_c").arg("--mdtype=modules").arg(&bad).arg(up.repo().join("repodata")));
    up.sign();
    let p = Project::new();
    p.file(
        "sync.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - yum_sync:\n        dest: \"{{{{ playbook_dir }}}}/cache/yum\"\n        repos:\n          - name: fixture\n            baseurl: {}\n            newest_only: true\n",
            up.baseurl()
        ),
    );
    let modules_url = format!("{}/repodata/", up.baseurl());
    for check in [true, false] {
        let r = p.playbook("sync.yml", if check { &["--check"] } else { &[] });
        r.code(2);
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(out.contains(&modules_url) && out.contains("-modules.yaml.gz"), "the error does not name the modules URL:\n{out}");
        assert!(out.contains("modules.yaml document 2 (line 12): module stream alpha:2: `artifacts.rpms` is not a list"), "{out}");
    }
    assert!(!p.path("cache/yum/fixture/repodata/repomd.xml").exists(), "a repomd.xml was published");
    assert!(yumfix::rpms_in(&p.path("cache/yum/fixture")).is_empty(), "packages were downloaded");
}

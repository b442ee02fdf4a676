//! build-offline-mirrors: the archive verified and unpacked by `offline_extract`, then (with
//! Docker) the five mirrors started and used by real clients.

use std::path::Path;
use std::process::Command;

use crate::support::upstreams::Upstreams;
use crate::support::{self, Project, helm_client, nodes, run, sha256_hex, upstreams, yumfix};

/// Writes a cache of a few files and archives it (plain tar, so bytes can be flipped in place).
fn archive_of(p: &Project, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let cache = p.path("cache");
    for (rel, bytes) in files {
        let f = cache.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, bytes).unwrap();
    }
    let out = p.path("archive.tar");
    p.airlock(&["archive", "create", "--cache", cache.to_str().unwrap(), out.to_str().unwrap()]).success();
    out
}

/// Flips the first byte of `needle`'s occurrence in the archive.
fn flip(archive: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(archive).unwrap();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the content is in the archive");
    bytes[at] ^= 0x20;
    std::fs::write(archive, bytes).unwrap();
}

fn extract_play(archive: &Path, dest: &Path) -> String {
    format!(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - offline_extract:\n        src: \"{}\"\n        dest: \"{}\"\n",
        archive.display(),
        dest.display()
    )
}

#[test]
fn offline_extract_verifies_names_damage_and_skips_what_is_in_place() {
    let p = Project::new();
    let archive =
        archive_of(&p, &[("yum/base/Packages/a-1.rpm", b"first package bytes"), ("pip/b-1.whl", b"second wheel bytes"), ("misc-files/c.txt", b"plain file")]);
    let dest = p.path("opt/deepops");
    p.file("x.yml", &extract_play(&archive, &dest));

    // Two damaged artifacts: both named, nothing unpacked.
    let good = std::fs::read(&archive).unwrap();
    flip(&archive, b"first package bytes");
    flip(&archive, b"plain file");
    let bad = p.playbook("x.yml", &[]);
    bad.code(2).has("yum/base/Packages/a-1.rpm: damaged").has("misc-files/c.txt: damaged").has("nothing was unpacked");
    let leftovers: Vec<_> = walk(&p.path("opt"));
    assert!(leftovers.is_empty(), "a damaged archive left {leftovers:?}");

    // The good archive: unpacked, every file in place; a rerun changes nothing.
    std::fs::write(&archive, &good).unwrap();
    let first = p.playbook("x.yml", &[]);
    first.success();
    assert_eq!(first.recap("localhost").changed, 1);
    assert_eq!(std::fs::read(dest.join("pip/b-1.whl")).unwrap(), b"second wheel bytes");
    assert!(dest.join("manifest.json").is_file());
    let again = p.playbook("x.yml", &[]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);

    // A file damaged on disk after unpacking is put right on the next run.
    std::fs::write(dest.join("misc-files/c.txt"), b"plain fil3").unwrap();
    p.playbook("x.yml", &[]).success();
    assert_eq!(std::fs::read(dest.join("misc-files/c.txt")).unwrap(), b"plain file");

    // Check mode reports and writes nothing; a missing archive is a clear error.
    let other = p.path("elsewhere");
    p.file("y.yml", &extract_play(&archive, &other));
    p.playbook("y.yml", &["--check"]).success().has("changed");
    assert!(!other.exists());
    p.file("z.yml", &extract_play(&p.path("nope.tar"), &other));
    p.playbook("z.yml", &[]).code(2).has("nope.tar not found");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// End to end, with Docker

/// The mirror service images `.ci/build-service-images` builds from Debian's binaries (the
/// real images cannot be pulled here), each with the contract of the image it stands in for.
/// ChartMuseum cannot be had at all: its stand-in serves the same read API.
const SERVICE_IMAGES: &[(&str, &str, &str, &str)] = &[
    // (mirror_images name, local image, image path upstream, version)
    ("registry", "airlock-test/registry:2.8.3", "library/registry", "2.8.3"),
    ("nginx", "airlock-test/nginx:1.27-alpine", "library/nginx", "1.27-alpine"),
    ("chartmuseum", "airlock-test/chartmuseum-standin:v0.16.2", "helm/chartmuseum-standin", "v0.16.2"),
    ("pypiserver", "airlock-test/pypiserver:v2.3.2", "pypiserver/pypiserver", "v2.3.2"),
];

/// Removes the test's containers (and their images' tags) however the test ends.
struct Containers(Vec<String>, Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = Command::new("docker").arg("rm").arg("-f").args(&self.0).output();
        let _ = Command::new("docker").arg("rmi").args(&self.1).output();
    }
}

/// A container's address on Docker's network, which this machine reaches directly.
fn container_ip(container: &str) -> String {
    let out = run(Command::new("docker").args(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container]));
    String::from_utf8_lossy(&out).split_whitespace().next().expect("the container has an address").to_string()
}

fn curl(url: &str) -> Vec<u8> {
    run(Command::new("curl").args(["-fsS", "--max-time", "30", url]))
}

/// Stops the detached `airlock serve` the embedded backend started, however the test ends.
struct Served(std::path::PathBuf);

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("airlock-serve.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

#[test]
fn build_offline_mirrors_serves_every_kind_to_real_clients() {
    end_to_end(Backend::Docker);
}

/// The same clients against `mirror_backend: embedded` (airlock serve, no Docker).
#[test]
fn build_offline_mirrors_embedded_serves_every_kind_to_real_clients() {
    end_to_end(Backend::Embedded);
}

/// The same clients against the embedded backend run by systemd, on a node (a container with
/// systemd as PID 1) that the playbook reaches over SSH, with DeepOps's own ports.
#[test]
fn build_offline_mirrors_embedded_under_systemd_on_a_node_serves_every_kind() {
    end_to_end(Backend::EmbeddedSystemdOnNode);
}

#[derive(PartialEq)]
enum Backend {
    Docker,
    Embedded,
    EmbeddedSystemdOnNode,
}

fn end_to_end(backend: Backend) {
    let docker = backend == Backend::Docker;
    if docker {
        for (_, local, _, _) in SERVICE_IMAGES {
            let ok = Command::new("docker").args(["image", "inspect", local]).output().is_ok_and(|o| o.status.success());
            assert!(ok, "image {local} is missing: run `bash .ci/build-service-images` (and check that Docker runs)");
        }
    }
    // The connected side: every upstream, plus (for Docker) the service images pushed to the
    // registry.
    let up = Upstreams::start();
    let host = up.reg.host();
    let services = if docker { SERVICE_IMAGES } else { &[] };
    for (_, local, path, version) in services {
        run(Command::new("skopeo").args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            &format!("docker-daemon:{local}"),
            &format!("docker://{host}/{path}:{version}"),
        ]));
    }
    let p = Project::new();
    let cache = p.path("cache");
    let archive = p.path("deepops-archive.tar");
    p.file("config.yml", &up.config(&cache, &archive, "3.11"));
    let mut mirror_images = String::from(if docker { "mirror_images:\n" } else { "mirror_images: []\n" });
    for (name, _, path, version) in services {
        mirror_images.push_str(&format!("  - {{name: {name}, repo: \"{host}/\", image: \"{path}\", version: \"{version}\"}}\n"));
    }
    p.file("images.yml", &mirror_images);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache_pb = root.join("playbooks/build-offline-cache.yml");
    p.airlock(&["playbook", cache_pb.to_str().unwrap(), "-e", "@config.yml", "-e", "@images.yml"]).success();

    // What the clients must get: the upstream manifests, packages, charts and files.
    let manifests: Vec<(&str, Vec<u8>)> = ["test/app:v1", "test/multi:v1"].iter().map(|n| (*n, up.reg.raw_manifest(n))).collect();
    let rpm_name = "gamma-1.10-1.noarch.rpm";
    let rpm = std::fs::read(up.yum.repo().join(yumfix::package_href(rpm_name))).unwrap();
    let charts: Vec<(&str, &str, Vec<u8>)> =
        upstreams::CHARTS.iter().map(|(n, v)| (*n, *v, std::fs::read(up.stable().join(format!("{n}-{v}.tgz"))).unwrap())).collect();
    let kubectl = up.kubectl.clone();
    // The offline side has no upstream at all.
    drop(up);

    let pid = std::process::id();
    let names: Vec<String> = ["registry", "yum", "helm", "pip", "misc"].iter().map(|n| format!("airlock-e2e-{pid}-{n}")).collect();
    let ports: Vec<u16> = support::free_ports(5);
    let loaded: Vec<String> = services.iter().map(|(_, _, path, version)| format!("{host}/{path}:{version}")).collect();
    let _guard = Containers(if docker { names.clone() } else { Vec::new() }, loaded);
    let on_node = backend == Backend::EmbeddedSystemdOnNode;
    // On a node: the archive copied there, the mirrors on DeepOps's ports of the node's
    // address, the playbook over SSH with become.
    let node = on_node.then(|| nodes::Nodes::start(1));
    let (mirror, ports) = match &node {
        Some(n) => {
            let node = &n.nodes[0];
            node.copy_in(&archive, "/tmp/deepops-archive.tar");
            (container_ip(&node.container), vec![5000, 8001, 8002, 8003, 8004])
        }
        None => ("127.0.0.1".to_string(), ports),
    };
    if let Some(n) = &node {
        p.file("inventory.ini", &n.inventory());
    }
    let dest = if on_node { std::path::PathBuf::from("/opt/deepops") } else { p.path("opt/deepops") };
    let _served = Served(if on_node { p.path("none") } else { dest.clone() });
    let backend_vars = match backend {
        Backend::Docker => "mirror_backend: docker\n",
        Backend::Embedded => "mirror_backend: embedded\nmirror_embedded_systemd: false\n",
        Backend::EmbeddedSystemdOnNode => "mirror_backend: embedded\ntar_file_path: /tmp/deepops-archive.tar\n",
    };
    let bind = if on_node { "0.0.0.0" } else { "127.0.0.1" };
    p.file(
        "mirrors.yml",
        &format!(
            "deepops_dest_path: \"{}\"\nmirror_bind_address: {bind}\ndeepops_mirror_host: {mirror}\n\
             docker_local_registry_name: {}\nyum_mirror_name: {}\nhelm_mirror_name: {}\npip_mirror_name: {}\nnginx_misc_name: {}\n\
             docker_local_registry_port: {}\nyum_mirror_port: {}\nhelm_port: {}\npip_port: {}\nnginx_misc_port: {}\n{backend_vars}",
            dest.display(),
            names[0],
            names[1],
            names[2],
            names[3],
            names[4],
            ports[0],
            ports[1],
            ports[2],
            ports[3],
            ports[4],
        ),
    );
    let mirrors_pb = root.join("playbooks/build-offline-mirrors.yml");
    let mut args = vec!["playbook", mirrors_pb.to_str().unwrap(), "-e", "@config.yml", "-e", "@images.yml", "-e", "@mirrors.yml"];
    if on_node {
        args.extend(["-i", "inventory.ini", "-e", "offline_mirror_hosts=node1", "--become"]);
    }
    let first = p.airlock(&args);
    first.success();
    for port in &ports {
        first.has(&format!("{mirror}:{port}"));
    }
    if let Some(n) = &node {
        // systemd runs the service, from the airlock copied to the node.
        let node = &n.nodes[0];
        assert_eq!(node.exec_ok("systemctl is-active airlock-mirrors.service").trim(), "active");
        assert_eq!(node.exec_ok("systemctl is-enabled airlock-mirrors.service").trim(), "enabled");
        let unit = node.read_file("/etc/systemd/system/airlock-mirrors.service").unwrap();
        assert!(unit.contains("/home/deploy/.airlock/bin/airlock-") && unit.contains("--registry-port 5000"), "{unit}");
    }

    // skopeo: the images from the registry, manifests byte for byte, every blob verified.
    for (name, raw) in &manifests {
        let got = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{mirror}:{}/{name}", ports[0])]));
        assert_eq!(&got, raw, "{name}: the mirror's manifest differs from upstream");
        let out = p.path(&format!("pulled-{}", name.replace([':', '/'], "-")));
        run(Command::new("skopeo").args([
            "copy",
            "--all",
            "--insecure-policy",
            "--src-tls-verify=false",
            &format!("docker://{mirror}:{}/{name}", ports[0]),
            &format!("oci:{}:x", out.display()),
        ]));
        let digest = format!("sha256:{}", sha256_hex(raw));
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], digest.as_str(), "{name} copied with another digest");
    }

    // dnf: a package from the Yum mirror, the upstream's bytes.
    let dl = p.path("dnf-download");
    yumfix::dnf_download(&format!("http://{mirror}:{}/fixture/", ports[1]), "gamma", &dl);
    assert_eq!(std::fs::read(dl.join(rpm_name)).unwrap(), rpm, "dnf downloaded other bytes");

    // pip: requests and its dependencies into a fresh venv, from the mirror only.
    let venv = p.path("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--index-url",
        &format!("http://{mirror}:{}/simple/", ports[3]),
        "--trusted-host",
        &mirror,
        "requests==2.31.0",
    ]));
    run(Command::new(venv.join("bin/python")).args(["-c", "import requests, urllib3, idna, certifi, charset_normalizer"]));

    // Helm: the real client reads the mirror's index and pulls every chart, upstream's bytes.
    let expected: Vec<(&str, &str, &[u8])> = charts.iter().map(|(n, v, b)| (*n, *v, b.as_slice())).collect();
    helm_client::assert_pulls_exactly(&format!("http://{mirror}:{}/stable", ports[2]), &expected);

    // curl: the files.
    assert_eq!(curl(&format!("http://{mirror}:{}/kubectl", ports[4])), kubectl);

    // The clients' configuration names the mirrors.
    let cfg = |rel: &str| match &node {
        Some(n) => n.nodes[0].read_file(&format!("{}/client-config/{rel}", dest.display())).unwrap(),
        None => std::fs::read_to_string(dest.join("client-config").join(rel)).unwrap(),
    };
    assert!(cfg("yum.repos.d/fixture.repo").contains(&format!("baseurl=http://{mirror}:{}/fixture/", ports[1])));
    assert!(cfg("pip.conf").contains(&format!("index-url = http://{mirror}:{}/simple/", ports[3])));
    let daemon: serde_json::Value = serde_json::from_str(&cfg("docker-daemon.json")).unwrap();
    assert_eq!(daemon["insecure-registries"][0], format!("{mirror}:{}", ports[0]).as_str());
    assert!(cfg("containerd/certs.d/_default/hosts.toml").contains(&format!("[host.\"http://{mirror}:{}\"]", ports[0])));
    assert!(cfg("helm-repos.sh").contains(&format!("helm repo add stable http://{mirror}:{}/stable", ports[2])));
    assert!(cfg("offline_repo_vars.yml").contains(&format!("deepops_misc_mirror: \"http://{mirror}:{}\"", ports[4])));

    // A second run changes nothing (the embedded server is restarted, and serves again).
    let again = p.airlock(&args);
    again.success();
    assert_eq!(again.recap(if on_node { "node1" } else { "localhost" }).changed, if docker { 0 } else { 1 }, "{}", again.stdout);
    assert_eq!(curl(&format!("http://{mirror}:{}/kubectl", ports[4])), kubectl);
}

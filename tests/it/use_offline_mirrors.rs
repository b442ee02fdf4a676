//! `playbooks/use-offline-mirrors.yml` against two real nodes (containers of the node image,
//! reached over SSH: tests/it/support/nodes.rs), with the mirrors served by `airlock serve` on
//! this machine: a Yum repository of an rpmbuild package and a flat apt repository of a
//! dpkg-deb package. The nodes' own clients (dnf, apt-get) install from the mirror afterwards.

use std::path::Path;
use std::process::Command;

use crate::support::{self, Project, nodes, serve, yumfix};

/// The mirror tree: `yum/offline-test/` (one RPM, createrepo_c) and `misc-files/apt/` (one
/// .deb with a Packages index written here, as dpkg-scanpackages would).
fn mirror_tree(root: &Path) {
    let rpms = yumfix::build_rpms(&[&yumfix::Spec { name: "airlock-hello", epoch: None, version: "1.0", release: "1" }]);
    let repo = root.join("yum/offline-test");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::copy(rpms.join("airlock-hello-1.0-1.noarch.rpm"), repo.join("airlock-hello-1.0-1.noarch.rpm")).unwrap();
    support::run(Command::new("createrepo_c").arg("--quiet").arg(&repo));

    let pkg = root.join("build/airlock-hello-deb");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/share/airlock-hello-deb")).unwrap();
    std::fs::write(pkg.join("usr/share/airlock-hello-deb/VERSION"), "1.0\n").unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: airlock-hello-deb\nVersion: 1.0\nArchitecture: all\nMaintainer: airlock tests <tests@example.invalid>\nDescription: a package from the offline mirror\n",
    )
    .unwrap();
    let apt = root.join("misc-files/apt");
    std::fs::create_dir_all(&apt).unwrap();
    let deb = apt.join("airlock-hello-deb_1.0_all.deb");
    support::run(Command::new("dpkg-deb").args(["--root-owner-group", "-Zgzip", "--build"]).arg(&pkg).arg(&deb));
    let bytes = std::fs::read(&deb).unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let control = std::fs::read_to_string(pkg.join("DEBIAN/control")).unwrap();
    std::fs::write(apt.join("Packages"), format!("{}Filename: ./airlock-hello-deb_1.0_all.deb\nSize: {}\nSHA256: {sha}\n\n", control, bytes.len())).unwrap();
}

/// The address the containers reach this machine by: their network's gateway.
fn gateway(container: &str) -> String {
    let out = Command::new("docker").args(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}", container]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("the node has a network gateway").to_string()
}

#[test]
fn use_offline_mirrors_configures_both_nodes_then_changes_nothing() {
    let nodes = nodes::Nodes::start(2);
    let (node1, node2) = (&nodes.nodes[0], &nodes.nodes[1]);
    let p = Project::new();
    let root = p.dir.path().join("mirror");
    mirror_tree(&root);
    // On every address: the nodes reach it through Docker's bridge.
    let mirror = serve::Serve::start_on(&root, "0.0.0.0", &[]);
    let host = gateway(&node1.container);

    // node1 takes the Yum repositories (it has dnf), node2 apt sources (Debian's default).
    // node1 already has Docker settings of its own, which must survive.
    node1.exec_ok("mkdir -p /etc/docker /etc/yum.repos.d");
    node1.write_file("/etc/docker/daemon.json", "{\"log-driver\": \"json-file\", \"registry-mirrors\": [\"http://other.example:5000\"]}\n");
    node1.write_file("/etc/yum.repos.d/internet.repo", "[internet]\nname=Internet\nbaseurl=http://mirror.example.invalid/el9/\n");
    let apt_before = node2.exec_ok("ls /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true");
    let mut inv = nodes.inventory();
    inv = inv.replacen("node1 ", "node1 mirror_client_repo_type=yum ", 1);
    p.file("inventory.ini", &inv);
    p.file(
        "site-vars.yml",
        &format!(
            "deepops_mirror_host: \"{host}\"\nyum_mirror_port: {}\nnginx_misc_port: {}\ndocker_local_registry_port: {}\npip_port: {}\nyum_repos:\n  - name: offline-test\n    baseurl: http://upstream.example/offline-test/\napt_mirror_repos:\n  - \"deb [trusted=yes] http://{host}:{}/apt ./\"\n",
            mirror.yum, mirror.files, mirror.registry, mirror.pip, mirror.files
        ),
    );
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/use-offline-mirrors.yml");
    let pb = playbook.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["playbook", "-i", "inventory.ini", pb, "-e", "@site-vars.yml"];
        args.extend_from_slice(extra);
        p.airlock(&args)
    };

    // --check --diff: every change shown, none made.
    let r = run(&["--check", "--diff"]);
    r.success().has("registry-mirrors").has(&format!("http://{host}:{}/simple/", mirror.pip)).has("offline-test");
    assert!(r.recap("node1").changed >= 5 && r.recap("node2").changed >= 5, "{}", r.stdout);
    assert_eq!(node1.read_file("/etc/pip.conf"), None, "check mode wrote pip.conf");
    assert!(node1.read_file("/etc/docker/daemon.json").unwrap().contains("other.example"));
    assert!(node1.read_file("/etc/yum.repos.d/internet.repo").is_some(), "check mode moved a repo");

    // The real run.
    let r = run(&[]);
    r.success();
    assert!(
        r.stdout.contains("RUNNING HANDLER [offline-repo-mirrors : refresh the package cache]")
            || r.stdout.contains("RUNNING HANDLER [refresh the package cache]"),
        "{}",
        r.stdout
    );

    // node1: the Internet repo is aside, the mirror's repo works with dnf.
    assert_eq!(node1.read_file("/etc/yum.repos.d/internet.repo"), None);
    assert!(node1.read_file("/etc/yum.repos.d/internet.repo.airlock-disabled").unwrap().contains("[internet]"));
    let repo = node1.read_file("/etc/yum.repos.d/offline-test.repo").expect("the mirror's .repo");
    assert!(
        repo.contains(&format!("baseurl = http://{host}:{}/offline-test/", mirror.yum))
            || repo.contains(&format!("baseurl=http://{host}:{}/offline-test/", mirror.yum)),
        "{repo}"
    );
    node1.exec_ok("dnf -y --setopt=install_weak_deps=False install airlock-hello && test -f /usr/share/airlock-hello/VERSION");
    // Docker's other settings are kept; the mirror comes first.
    let daemon: serde_json::Value = serde_json::from_str(&node1.read_file("/etc/docker/daemon.json").unwrap()).unwrap();
    assert_eq!(daemon["log-driver"], "json-file");
    assert_eq!(daemon["registry-mirrors"], serde_json::json!([format!("http://{host}:{}", mirror.registry), "http://other.example:5000"]));
    assert_eq!(daemon["insecure-registries"], serde_json::json!([format!("{host}:{}", mirror.registry)]));

    // node2: apt installs from the mirror, and only from it.
    assert!(node2.read_file("/etc/apt/sources.list.d/offline-mirror.list").unwrap().contains(&format!("http://{host}:{}/apt", mirror.files)));
    let apt_after = node2.exec_ok("ls /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true");
    assert_ne!(apt_before, apt_after);
    node2.exec_ok("apt-get install -y airlock-hello-deb && test -f /usr/share/airlock-hello-deb/VERSION");

    for n in [node1, node2] {
        let pip = n.read_file("/etc/pip.conf").expect("pip.conf");
        assert!(pip.contains(&format!("index-url = http://{host}:{}/simple/", mirror.pip)), "{pip}");
        let default = n.read_file("/etc/containerd/certs.d/_default/hosts.toml").expect("containerd's _default hosts.toml");
        assert!(default.contains(&format!("[host.\"http://{host}:{}\"]", mirror.registry)), "{default}");
        assert!(n.read_file(&format!("/etc/containerd/certs.d/{host}:{}/hosts.toml", mirror.registry)).is_some());
    }

    // Again: nothing to change on either node.
    let r = run(&[]);
    r.success();
    assert_eq!(r.recap("node1").changed, 0, "{}", r.stdout);
    assert_eq!(r.recap("node2").changed, 0, "{}", r.stdout);
}

#[test]
fn use_offline_mirrors_without_the_mirror_address_stops_with_the_fix() {
    let nodes = nodes::Nodes::start(1);
    let p = Project::new();
    p.file("inventory.ini", &nodes.inventory());
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/use-offline-mirrors.yml");
    let r = p.airlock(&["playbook", "-i", "inventory.ini", playbook.to_str().unwrap()]);
    r.code(2).has("deepops_mirror_host is empty");
    assert_eq!(nodes.nodes[0].read_file("/etc/pip.conf"), None);
}

//! The test nodes themselves (tests/it/support/nodes.rs): they start, ssh with the throwaway key
//! reaches deploy, who has passwordless sudo, and a stopped node refuses connections.

use crate::support::nodes;
use crate::support::nodes::Nodes;

#[test]
fn two_nodes_answer_ssh_with_sudo_and_a_stopped_one_refuses() {
    let nodes = Nodes::start(2);
    assert_eq!(nodes.nodes.len(), 2);
    assert_ne!(nodes[0].port, nodes[1].port);
    for node in &nodes.nodes {
        // The same command line a user would type, not the fixture's helper.
        let out = std::process::Command::new("ssh")
            .arg("-i")
            .arg(&nodes.key)
            .args(["-p", &node.port.to_string(), "-o", "BatchMode=yes"])
            .args(nodes::SSH_COMMON_ARGS.split(' '))
            .args(["deploy@127.0.0.1", "sudo -n true && id -un && hostname"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", node.name, String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().collect::<Vec<_>>(), ["deploy", node.container.as_str()]);
        // systemd runs sshd; a node has no python to lean on, but has dnf and apt.
        assert_eq!(node.exec_ok("systemctl is-active ssh").trim(), "active");
        assert!(!node.ssh("command -v python3 || command -v python").status.success(), "python on {}", node.name);
        node.exec_ok("command -v dnf && command -v rpm && command -v apt-get");
    }
    // Another key is refused: the node takes only the one made for this run.
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("k");
    assert!(std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other_key).status().unwrap().success());
    let out = std::process::Command::new("ssh")
        .arg("-i")
        .arg(&other_key)
        .args(["-p", &nodes[0].port.to_string(), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(nodes::SSH_COMMON_ARGS.split(' '))
        .args(["deploy@127.0.0.1", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{}", String::from_utf8_lossy(&out.stderr));

    nodes[1].stop();
    let out = nodes[1].ssh("true");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Connection refused") || err.contains("Connection reset") || err.contains("closed"), "{err}");
    // The other node is unaffected, and the stopped one comes back on the same port.
    assert!(nodes[0].ssh("true").status.success());
    nodes[1].start();
    assert!(nodes[1].ssh("sudo -n true").status.success());
}

#[test]
fn inventory_names_the_nodes_and_how_to_reach_them() {
    let nodes = Nodes::start_without_systemd(1);
    let inv = nodes.inventory();
    let line = inv.lines().nth(1).unwrap();
    assert!(line.starts_with(&format!("node1 ansible_host=127.0.0.1 ansible_port={} ansible_user=deploy ", nodes[0].port)), "{inv}");
    // Without systemd, sshd is PID 1.
    assert_eq!(nodes[0].exec_ok("cat /proc/1/comm").trim(), "sshd");
    assert!(nodes[0].ssh("sudo -n true").status.success());
    // Our inventory parser reads it as Ansible does: quotes removed, the ssh options one string.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts"), &inv).unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"{{ hostvars.node1.ansible_port }}|{{ hostvars.node1.ansible_ssh_common_args }}|{{ hostvars.node1.ansible_ssh_private_key_file }}|{{ groups.nodes }}\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock")).args(["playbook", "-i", "hosts", "site.yml"]).current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let want = format!("{}|{}|{}|['node1']", nodes[0].port, nodes::SSH_COMMON_ARGS, nodes.key.display());
    assert!(stdout.contains(&want), "want {want} in\n{stdout}");
}

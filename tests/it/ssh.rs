//! Remote hosts over SSH: real sshd servers on loopback (tests/it/support/sshd.rs) reached
//! through the system's OpenSSH client, with the executor's linear strategy, forks, serial,
//! run_once, delegate_to, any_errors_fatal and unreachable hosts.

use crate::support::Project;
use crate::support::sshd::SshNodes;

fn project(nodes: &SshNodes, playbook: &str) -> Project {
    let p = Project::new();
    p.file("inventory.ini", &nodes.inventory());
    p.file("site.yml", &playbook.replace("SHARED", &nodes.shared.display().to_string()));
    p
}

/// The server port `SSH_CONNECTION` names in a file a task wrote there.
fn port_in(path: &std::path::Path) -> u16 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split_whitespace().nth(3).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no SSH_CONNECTION in {text:?}"))
}

#[test]
fn modules_run_on_the_target_as_its_user_and_become_root_there() {
    let nodes = SshNodes::start(2);
    let p = project(
        &nodes,
        r#"
- hosts: nodes
  tasks:
    - name: who runs modules there
      command: id -un
      register: who
    - name: and with become
      command: id -u
      become: true
      register: root
    - name: which node ran it
      shell: echo "$SSH_CONNECTION" > SHARED/conn-{{ inventory_hostname }}
    - copy:
        src: motd
        dest: SHARED/motd-{{ inventory_hostname }}
        mode: "0640"
    - template:
        src: node.conf.j2
        dest: SHARED/node-{{ inventory_hostname }}.conf
    - copy:
        src: motd
        dest: /root/airlock-ssh-{{ inventory_hostname }}
      become: true
    - stat:
        path: SHARED/motd-{{ inventory_hostname }}
      register: st
    - assert:
        that:
          - who.stdout == 'airlock-test'
          - root.stdout == '0'
          - ansible_user_id == 'airlock-test'
          - st.stat.pw_name == 'airlock-test'
          - st.stat.mode == '0640'

- hosts: nodes
  gather_facts: false
  become: true
  tasks:
    - command: "true"
      notify: as root
  handlers:
    - name: as root
      shell: id -u > SHARED/handler-{{ inventory_hostname }}
"#,
    );
    p.file("files/motd", "welcome to the cluster\n");
    p.file("templates/node.conf.j2", "name={{ inventory_hostname }} port={{ ansible_port }}\n");
    let r = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml"]);
    r.success();
    for n in &nodes.nodes {
        assert_eq!(port_in(&nodes.shared.join(format!("conn-{}", n.name))), n.port, "{}'s command ran on another node", n.name);
        assert_eq!(std::fs::read_to_string(nodes.shared.join(format!("motd-{}", n.name))).unwrap(), "welcome to the cluster\n");
        assert_eq!(std::fs::read_to_string(nodes.shared.join(format!("node-{}.conf", n.name))).unwrap(), format!("name={} port={}\n", n.name, n.port));
        // Handlers run with the play's become.
        assert_eq!(std::fs::read_to_string(nodes.shared.join(format!("handler-{}", n.name))).unwrap().trim(), "0");
        let root_copy = std::path::PathBuf::from(format!("/root/airlock-ssh-{}", n.name));
        assert_eq!(std::fs::read_to_string(&root_copy).unwrap(), "welcome to the cluster\n");
        // One login per node for the whole play: every task went through the master connection.
        assert_eq!(n.logins(), 1, "{} was logged into more than once:\n{}", n.name, n.log());
    }
    // A second run changes nothing on either node.
    let r = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml"]);
    r.success();
    for n in ["node1", "node2"] {
        let recap = r.recap(n);
        // The four commands and the handler always report changed; copy and template do not.
        assert_eq!(recap.changed, 5, "{n}: {recap:?}\n{}", r.stdout);
        let _ = std::fs::remove_file(format!("/root/airlock-ssh-{n}"));
    }
}

#[test]
fn a_stopped_node_is_unreachable_while_the_other_completes() {
    let mut nodes = SshNodes::start(2);
    nodes.node("node2").stop();
    let p = project(
        &nodes,
        "- hosts: nodes\n  tasks:\n    - command: touch SHARED/one-{{ inventory_hostname }}\n    - command: touch SHARED/two-{{ inventory_hostname }}\n",
    );
    let r = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml"]);
    r.code(4).has("fatal: [node2]: UNREACHABLE!").has("Connection refused");
    assert_eq!(r.recap("node2").unreachable, 1);
    assert_eq!(r.recap("node2").failed, 0);
    assert_eq!(r.recap("node1").changed, 2);
    assert!(nodes.shared.join("two-node1").exists());
    assert!(!nodes.shared.join("one-node2").exists());
}

#[test]
fn forks_run_hosts_at_once_and_one_fork_runs_them_in_turn() {
    let nodes = SshNodes::start(3);
    // Each host waits (up to 5 s) until every host of the play has started the task: only
    // possible when they run at the same time.
    let p = project(
        &nodes,
        r#"
- hosts: nodes
  gather_facts: false
  tasks:
    - shell: |
        touch SHARED/{{ run }}-{{ inventory_hostname }}
        for i in $(seq 50); do
          [ "$(ls SHARED | grep -c '^{{ run }}-')" -ge {{ ansible_play_hosts | length }} ] && exit 0
          sleep 0.1
        done
        exit 1
"#,
    );
    p.airlock(&["playbook", "-i", "inventory.ini", "site.yml", "-f", "5", "-e", "run=a"]).success();
    let r = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml", "-f", "1", "-l", "node1,node2", "-e", "run=b"]);
    r.code(2);
    assert_eq!(r.recap("node1").failed, 1, "with one fork the first host waits alone\n{}", r.stdout);
    assert_eq!(r.recap("node2").changed, 1, "node2 starts after node1 gave up, and finds both markers\n{}", r.stdout);
    // ANSIBLE_FORKS is read too.
    let r = p.command(
        std::path::Path::new(env!("CARGO_BIN_EXE_airlock")),
        &["playbook", "-i", "inventory.ini", "site.yml", "-e", "run=c"],
        &[("ANSIBLE_FORKS", "3")],
    );
    r.success();
}

#[test]
fn linear_strategy_serial_batches_run_once_and_delegate_to() {
    let nodes = SshNodes::start(3);
    let p = project(
        &nodes,
        r#"
- hosts: nodes
  gather_facts: false
  serial: "{{ batch }}"
  tasks:
    - shell: echo "first {{ inventory_hostname }}" >> SHARED/order-{{ batch }}
    - shell: echo "second {{ inventory_hostname }}" >> SHARED/order-{{ batch }}
    - shell: echo "$SSH_CONNECTION" > SHARED/once-{{ batch }}-{{ inventory_hostname }}
      run_once: true
    - shell: echo "$SSH_CONNECTION" > SHARED/delegated-{{ batch }}-{{ inventory_hostname }}
      delegate_to: node3
"#,
    );
    let order = |b: &str| -> Vec<String> { std::fs::read_to_string(nodes.shared.join(format!("order-{b}"))).unwrap().lines().map(str::to_string).collect() };
    // Without batches (serial 0): each task on every host before the next task.
    let run = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml", "-e", "batch=0"]);
    run.success().has("changed: [node1 -> node3]").has("changed: [node2 -> node3]").has("changed: [node3]\n");
    let o = order("0");
    assert!(o[..3].iter().all(|l| l.starts_with("first")) && o[3..].iter().all(|l| l.starts_with("second")), "{o:?}");
    // serial: 1 -> the whole play on node1, then node2, then node3.
    p.airlock(&["playbook", "-i", "inventory.ini", "site.yml", "-e", "batch=1"]).success();
    assert_eq!(order("1"), ["first node1", "second node1", "first node2", "second node2", "first node3", "second node3"]);
    // run_once: once per batch, on the batch's first host.
    let once: Vec<_> = std::fs::read_dir(&nodes.shared)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("once-0-"))
        .collect();
    assert_eq!(once, ["once-0-node1"]);
    // delegate_to: node3 ran every host's command, with each host's variables.
    for n in ["node1", "node2", "node3"] {
        assert_eq!(port_in(&nodes.shared.join(format!("delegated-0-{n}"))), nodes.nodes[2].port);
    }
}

#[test]
fn any_errors_fatal_stops_every_host() {
    let nodes = SshNodes::start(2);
    let p = project(
        &nodes,
        r#"
- hosts: nodes
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - command: "{{ 'false' if inventory_hostname == 'node1' else 'true' }}"
    - command: touch SHARED/after-{{ inventory_hostname }}
"#,
    );
    let r = p.airlock(&["playbook", "-i", "inventory.ini", "site.yml"]);
    r.code(2);
    assert!(!nodes.shared.join("after-node2").exists(), "node2 went on after node1 failed");
    assert_eq!(r.recap("node1").failed, 1);
}

#[test]
fn airlock_remote_binary_is_what_runs_modules_on_the_host() {
    let nodes = SshNodes::start(1);
    let p = project(&nodes, "- hosts: nodes\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n");
    // A binary that is not airlock: the host cannot run modules, and the error says so.
    p.file("fake-airlock", "#!/bin/sh\necho not airlock >&2\nexit 1\n");
    let r =
        p.airlock(&["playbook", "-i", "inventory.ini", "site.yml", "-e", &format!("airlock_remote_binary={}", p.dir.path().join("fake-airlock").display())]);
    r.code(2).has("the module failed to run: not airlock");
}

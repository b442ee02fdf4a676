//! Modules driven through playbooks: real files, real commands, real HTTP on loopback.

use crate::support::{Project, serve_routes, sha256_hex};

#[test]
fn file_copy_lineinfile_stat_find() {
    let p = Project::new();
    p.file("files/static.txt", "static content\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    d: "{{ playbook_dir }}/work"
  tasks:
    - file: {path: "{{ d }}/sub", state: directory, mode: "0750"}
    - copy: {src: static.txt, dest: "{{ d }}/sub/"}
    - copy: {content: "a=1\nb=2\n", dest: "{{ d }}/conf", mode: "0640", force: false}
    - lineinfile: {path: "{{ d }}/conf", regexp: "^b=", line: "b=3"}
    - lineinfile: {path: "{{ d }}/conf", line: "c=4", insertafter: "^a="}
    - file: {path: "{{ d }}/touched", state: touch}
    - file: {path: "{{ d }}/gone", state: absent}
    - stat: {path: "{{ d }}/conf"}
      register: st
    - find: {paths: "{{ d }}", patterns: "*.txt", recurse: true}
      register: found
    - assert:
        that:
          - st.stat.exists
          - st.stat.mode == '0640'
          - st.stat.size == 12
          - found.matched == 1
          - found.files[0].path is search('static.txt')
"#,
    );
    p.playbook("site.yml", &[]).success();
    assert_eq!(p.read("work/conf"), "a=1\nc=4\nb=3\n");
    assert_eq!(p.read("work/sub/static.txt"), "static content\n");
    let again = p.playbook("site.yml", &[]);
    again.success();
    // `touch` always reports a change, as in Ansible; nothing else may.
    assert_eq!(again.recap("localhost").changed, 1, "{}", again.stdout);
}

#[test]
fn command_and_shell_results() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - shell: "echo out; echo err >&2; exit 0"
      register: sh
    - command: echo {{ word }}
      args:
        chdir: /
      vars:
        word: hi
      register: cmd
    - command: "cat {{ playbook_dir }}/missing"
      args:
        creates: "{{ playbook_dir }}/site.yml"
      register: skipped_by_creates
    - shell: "echo $GREETING"
      environment:
        GREETING: from-env
      register: envd
    - assert:
        that:
          - sh.stdout == 'out'
          - sh.stderr == 'err'
          - sh.rc == 0
          - sh.stdout_lines == ['out']
          - cmd.stdout == 'hi'
          - cmd.cmd == ['echo', 'hi']
          - not skipped_by_creates.changed
          - envd.stdout == 'from-env'
"#,
    );
    p.playbook("site.yml", &[]).success();
}

#[test]
fn get_url_uri_with_checksums() {
    let body = b"binary payload for kubeadm".to_vec();
    let sum = sha256_hex(&body);
    let base = serve_routes(vec![("/kubeadm", 200, body.clone()), ("/api", 200, br#"{"ok": true, "n": 3}"#.to_vec()), ("/broken", 500, b"oops".to_vec())]);
    let p = Project::new();
    p.file(
        "site.yml",
        &format!(
            r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - get_url:
        url: "{base}/kubeadm"
        dest: "{{{{ playbook_dir }}}}/kubeadm"
        checksum: "sha256:{sum}"
        mode: "0755"
    - get_url:
        url: "{base}/kubeadm"
        dest: "{{{{ playbook_dir }}}}/bad"
        checksum: "sha256:{bad}"
      register: mismatch
      ignore_errors: true
    - uri:
        url: "{base}/api"
        return_content: true
      register: api
    - uri:
        url: "{base}/broken"
      register: broken
      ignore_errors: true
    - assert:
        that:
          - mismatch is failed
          - "'did not match' in mismatch.msg"
          - api.json.n == 3
          - api.status == 200
          - broken.status == 500
"#,
            bad = "0".repeat(64)
        ),
    );
    let r = p.playbook("site.yml", &[]);
    r.success();
    assert_eq!(std::fs::read(p.path("kubeadm")).unwrap(), body);
    assert!(!p.path("bad").exists(), "a file failing its checksum must not be left behind");
    let again = p.playbook("site.yml", &[]);
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);
}

#[test]
fn archive_unarchive_round_trip() {
    let p = Project::new();
    p.file("src/a.txt", "A\n");
    p.file("src/sub/b.txt", "B\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - archive:
        path: "{{ playbook_dir }}/src"
        dest: "{{ playbook_dir }}/bundle.tar.gz"
        format: gz
    - file: {path: "{{ playbook_dir }}/out", state: directory}
    - unarchive:
        src: "{{ playbook_dir }}/bundle.tar.gz"
        dest: "{{ playbook_dir }}/out"
"#,
    );
    p.playbook("site.yml", &[]).success();
    assert_eq!(p.read("out/src/sub/b.txt"), "B\n");
    let again = p.playbook("site.yml", &[]);
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);
}

#[test]
fn wait_for_pause_and_include_vars() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = Project::new();
    p.file("vars/extra.yml", "loaded_value: 17\n");
    p.file(
        "site.yml",
        &format!(
            r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - wait_for: {{port: {port}, timeout: 5}}
    - wait_for: {{path: "{{{{ playbook_dir }}}}/site.yml", timeout: 5}}
    - wait_for: {{port: 1, timeout: 1}}
      register: closed
      ignore_errors: true
    - pause: {{seconds: 1}}
    - include_vars: extra.yml
    - include_vars: {{file: vars/extra.yml, name: bag}}
    - assert:
        that:
          - closed is failed
          - loaded_value == 17
          - bag.loaded_value == 17
"#
        ),
    );
    p.playbook("site.yml", &[]).success();
    drop(listener);
}

#[test]
fn check_mode_changes_nothing_and_diff_shows_each_file_change() {
    let p = Project::new();
    p.file("templates/t.j2", "value={{ v }}\n");
    p.file("existing.conf", "keep=1\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    v: 42
    d: "{{ playbook_dir }}/made"
  tasks:
    - file: {path: "{{ d }}", state: directory}
    - name: into the directory the task above would make
      template: {src: t.j2, dest: "{{ d }}/inside.conf"}
    - copy: {content: "x\n", dest: "{{ playbook_dir }}/copied"}
    - template: {src: t.j2, dest: "{{ playbook_dir }}/templated"}
    - lineinfile: {path: "{{ playbook_dir }}/existing.conf", line: "added=2"}
    - file: {path: "{{ playbook_dir }}/existing.conf", mode: "0600"}
    - get_url: {url: "http://127.0.0.1:9/never", dest: "{{ playbook_dir }}/never"}
      ignore_errors: true
    - archive: {path: "{{ playbook_dir }}/existing.conf", dest: "{{ playbook_dir }}/a.tar.gz"}
    - command: "touch {{ playbook_dir }}/cmd"
    - shell: "touch {{ playbook_dir }}/sh"
"#,
    );
    let before: Vec<_> = std::fs::read_dir(p.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let r = p.playbook("site.yml", &["--check", "--diff"]);
    r.success().has("+value=42").has("+added=2").has("+x").has("inside.conf");
    assert_eq!(r.recap("localhost").failed, 0);
    let after: Vec<_> = std::fs::read_dir(p.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), after.len(), "check mode created files: {after:?}");
    assert_eq!(p.read("existing.conf"), "keep=1\n");
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(p.path("existing.conf")).unwrap().permissions().mode() & 0o777, 0o600);
}

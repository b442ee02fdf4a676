//! What users read, pinned whole as insta snapshots (tests/it/snapshots/*.snap): task lines and
//! the PLAY RECAP, errors with the caret under the offending line, `--list-vars`. A change to
//! any of them shows as a diff to review (`cargo insta review`, or compare the `.snap.new`
//! file insta writes beside the snapshot) instead of drifting unseen. Under `CI=true` a
//! missing or different snapshot fails the test.

use crate::support::{Project, redacted};

#[test]
fn task_lines_and_play_recap() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"- name: Snapshot play
  hosts: localhost
  gather_facts: false
  vars:
    greeting: hello
  tasks:
    - name: Say hello
      debug:
        msg: "{{ greeting }} world"
    - name: Change something
      file:
        path: "{{ playbook_dir }}/made"
        state: directory
    - name: Skipped
      debug: msg=never
      when: false
    - name: Loop
      debug:
        msg: "item {{ item }}"
      loop: [1, 2]
    - name: Fails but ignored
      fail:
        msg: "site check failed"
      ignore_errors: true
    - name: Rescued
      block:
        - name: Inner failure
          fail:
            msg: boom
      rescue:
        - name: Recover
          debug:
            msg: recovered
"#,
    );
    let r = p.playbook("site.yml", &["-i", "localhost,"]);
    r.success();
    redacted(&p.path(""), "[PROJECT]", || insta::assert_snapshot!("task_lines_and_play_recap", r.stdout));
}

#[test]
fn yaml_error_points_at_the_line() {
    let p = Project::new();
    p.file("bad.yml", "- hosts: localhost\n  tasks:\n    - name: x\n      debug: {msg: \"a\"\n    - b\n");
    let r = p.playbook("bad.yml", &["-i", "localhost,"]);
    r.code(4);
    redacted(&p.path(""), "[PROJECT]", || insta::assert_snapshot!("yaml_error_points_at_the_line", r.stderr));
}

#[test]
fn undefined_variable_names_the_task_and_the_variable() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: Use a variable nobody set\n      debug:\n        msg: \"{{ registry_mirror_host }}:5000\"\n",
    );
    let r = p.playbook("site.yml", &["-i", "localhost,"]);
    r.code(2);
    redacted(&p.path(""), "[PROJECT]", || {
        insta::assert_snapshot!("undefined_variable_names_the_task_and_the_variable", format!("--- stdout\n{}--- stderr\n{}", r.stdout, r.stderr))
    });
}

#[test]
fn list_vars_shows_values_and_where_they_come_from() {
    let p = Project::new();
    p.file("inventory", "[offline_mirror]\nlocalhost ansible_connection=local\n");
    p.file("group_vars/all.yml", "offline_repo_mirror_port: 8001\nsite_name: lab\n");
    p.file("group_vars/offline_mirror.yml", "site_name: gpu-lab\n");
    p.file("site.yml", "- hosts: offline_mirror\n  gather_facts: false\n  vars:\n    tar_file_path: /srv/deepops-archive.tar\n  tasks:\n    - debug: msg=hi\n");
    let r = p.playbook("site.yml", &["-i", "inventory", "--list-vars", "-e", "offline_repo_mirror_port=9001"]);
    r.success();
    redacted(&p.path(""), "[PROJECT]", || insta::assert_snapshot!("list_vars_shows_values_and_where_they_come_from", r.stdout));
}

//! The playbook runner end to end: the real binary on real playbooks.

use crate::support::Project;

#[test]
fn output_is_shaped_like_ansible() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- name: First play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Say hello
      debug:
        msg: "hello {{ inventory_hostname }}"
    - command: "true"
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success()
        .has("PLAY [First play] ****")
        .has("TASK [Say hello] ****")
        .has("ok: [localhost] => {\n    \"msg\": \"hello localhost\"\n}")
        .has("TASK [command] ****")
        .has("changed: [localhost]")
        .has("PLAY RECAP ****");
    let banner = r.stdout.lines().find(|l| l.starts_with("TASK [Say hello]")).unwrap();
    assert_eq!(banner.len(), 80, "banners fill 80 columns as Ansible's do when piped: {banner:?}");
    assert!(
        r.stdout.contains("localhost                  : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0"),
        "{}",
        r.stdout
    );
}

#[test]
fn yaml_11_booleans_and_python_printing() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: no
  vars:
    a: no
    b: Yes
    c: "no"
    d: 0644
    e: ~
    f: y
  tasks:
    - debug:
        msg: "{{ a }} {{ b }} {{ c }} {{ d }} {{ e }} {{ f }} {{ [1, 'x', true] }} {{ {'k': none} }}"
    - debug:
        msg: "not a"
      when: not a
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success();
    // Inside a larger string, Ansible 2.19 prints None as nothing.
    assert_eq!(r.msgs(), vec![r#""False True no 420  y [1, 'x', True] {'k': None}""#, r#""not a""#]);
}

#[test]
fn lone_expressions_keep_native_types() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    nums: [3, 1, 2]
    count: "{{ nums | length }}"
    doubled: "{{ nums | map('int') | list }}"
  tasks:
    - set_fact:
        total: "{{ count | int + 1 }}"
        as_list: "{{ nums }}"
    - assert:
        that:
          - total == 4
          - as_list is sequence
          - as_list[0] == 3
          - count is integer
"#,
    );
    p.playbook("site.yml", &[]).success();
}

#[test]
fn extra_vars_in_every_form_and_precedence() {
    let p = Project::new();
    p.file("vars.yml", "from_file: file\nshared: file\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    shared: play
    kv: play
  tasks:
    - debug:
        msg: "{{ kv }} {{ from_file }} {{ json_var }} {{ shared }}"
"#,
    );
    let r = p.playbook("site.yml", &["-e", "kv=cli", "-e", "@vars.yml", "-e", r#"{"json_var": [1, 2]}"#]);
    r.success();
    assert_eq!(r.msgs(), vec![r#""cli file [1, 2] file""#]);
}

#[test]
fn loops_register_and_results_shape() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - command: "echo {{ item }}"
      loop: [a, b]
      register: out
    - command: "echo {{ thing.name }}-{{ idx }}"
      loop: [{name: x}, {name: y}]
      loop_control:
        loop_var: thing
        index_var: idx
        label: "{{ thing.name }}"
      register: labelled
    - debug:
        msg: "{{ item }}"
      with_items:
        - [1, 2]
        - 3
    - debug:
        msg: "{{ item.key }}={{ item.value }}"
      with_dict: {k1: v1}
    - assert:
        that:
          - out.results | length == 2
          - out.results[1].stdout == 'b'
          - out.results[0].item == 'a'
          - out.changed
          - out.msg == 'All items completed'
          - labelled.results | map(attribute='stdout') | list == ['x-0', 'y-1']
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().has("changed: [localhost] => (item=a)").has("changed: [localhost] => (item=x)").has("ok: [localhost] => (item=3)").has("\"msg\": \"k1=v1\"");
}

#[test]
fn when_changed_when_failed_when_ignore_errors_until() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    flag: true
  tasks:
    - name: skipped by a list of conditions
      debug: msg=never
      when:
        - flag
        - 1 > 2
    - name: changed_when false
      command: "true"
      changed_when: false
    - name: failed_when on rc
      shell: "exit 3"
      register: r
      failed_when: r.rc != 3
    - name: ignored failure
      command: "false"
      ignore_errors: true
    - name: retry until
      shell: "echo $(( $(cat count 2>/dev/null || echo 0) + 1 )) > count; cat count"
      register: tries
      until: tries.stdout | int >= 3
      retries: 5
      delay: 0
    - assert:
        that: tries.attempts == 3
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().has("skipping: [localhost]").has("...ignoring").has("FAILED - RETRYING");
    let rc = r.recap("localhost");
    assert_eq!((rc.skipped, rc.ignored, rc.failed), (1, 1, 0), "{}", r.stdout);
}

#[test]
fn block_rescue_always() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - block:
        - command: /bin/false
          name: breaks
        - debug: msg=not-reached
      rescue:
        - debug:
            msg: "rescued {{ ansible_failed_task.name }} rc={{ ansible_failed_result.rc }}"
      always:
        - debug: msg=always-ran
    - debug: msg=after
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().lacks("not-reached");
    assert_eq!(r.msgs(), vec!["\"rescued breaks rc=1\"", "\"always-ran\"", "\"after\""]);
    let rc = r.recap("localhost");
    assert_eq!((rc.failed, rc.rescued), (0, 1), "{}", r.stdout);
}

#[test]
fn failure_stops_the_host_with_exit_2() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - fail:
        msg: boom
    - debug: msg=unreached
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.code(2).has("fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"boom\"}").lacks("unreached");
    assert_eq!(r.recap("localhost").failed, 1);
}

#[test]
fn handlers_run_once_in_definition_order_and_listen() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - command: "true"
      notify: [second, first]
    - command: "true"
      notify: first
    - meta: flush_handlers
    - debug: msg=between
    - command: "true"
      notify: topic
  handlers:
    - name: first
      debug: msg=h-first
    - name: second
      debug: msg=h-second
    - name: listener
      debug: msg=h-listen
      listen: topic
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().has("RUNNING HANDLER [first]");
    assert_eq!(r.msgs(), vec!["\"h-first\"", "\"h-second\"", "\"between\"", "\"h-listen\""]);
}

#[test]
fn tags_always_never_and_listing() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - debug: msg=one
      tags: [one]
    - debug: msg=two
      tags: two
    - debug: msg=always
      tags: always
    - debug: msg=never
      tags: [never, debugonly]
    - debug: msg=untagged
"#,
    );
    let r = p.playbook("site.yml", &["--tags", "one"]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"one\"", "\"always\""]);
    let r = p.playbook("site.yml", &["--skip-tags", "one,always"]);
    assert_eq!(r.msgs(), vec!["\"two\"", "\"untagged\""]);
    let r = p.playbook("site.yml", &["-t", "debugonly"]);
    assert_eq!(r.msgs(), vec!["\"always\"", "\"never\""]);
    let r = p.playbook("site.yml", &["--list-tags"]);
    r.success().has("TASK TAGS: [always, debugonly, never, one, two]");
    let r = p.playbook("site.yml", &["--list-tasks"]);
    r.success().has("debug\tTAGS: [one]").lacks("msg=");
}

#[test]
fn check_mode_and_diff_change_nothing() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - copy:
        dest: "{{ playbook_dir }}/out.txt"
        content: "new line\n"
    - debug:
        msg: "check={{ ansible_check_mode }}"
"#,
    );
    p.file("out.txt", "old line\n");
    let r = p.playbook("site.yml", &["--check", "--diff"]);
    r.success().has("changed: [localhost]").has("-old line").has("+new line").has("check=True");
    assert_eq!(p.read("out.txt"), "old line\n");
    p.playbook("site.yml", &[]).success();
    assert_eq!(p.read("out.txt"), "new line\n");
}

#[test]
fn second_run_of_an_idempotent_playbook_changes_nothing() {
    let p = Project::new();
    p.file("templates/conf.j2", "name={{ name }}\n{% for x in items %}\nitem {{ x }}\n{% endfor %}\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    name: demo
    items: [a, b]
    out: "{{ playbook_dir }}/out"
  tasks:
    - file: { path: "{{ out }}", state: directory, mode: "0750" }
    - copy: { dest: "{{ out }}/c.txt", content: "x\n", mode: "0600" }
    - template: { src: conf.j2, dest: "{{ out }}/conf" }
    - lineinfile: { path: "{{ out }}/lines.txt", line: "added", create: true }
    - file: { path: "{{ out }}/link", src: "{{ out }}/conf", state: link }
"#,
    );
    let first = p.playbook("site.yml", &[]);
    first.success();
    assert_eq!(first.recap("localhost").changed, 5, "{}", first.stdout);
    assert_eq!(p.read("out/conf"), "name=demo\nitem a\nitem b\n");
    let second = p.playbook("site.yml", &[]);
    second.success();
    assert_eq!(second.recap("localhost").changed, 0, "{}", second.stdout);
}

#[test]
fn load_errors_name_file_line_and_column_and_run_nothing() {
    let p = Project::new();
    p.file(
        "bad_key.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: first\n      command: touch ran\n    - name: typo\n      debug: msg=x\n      whne: true\n",
    );
    let r = p.playbook("bad_key.yml", &[]);
    assert_ne!(r.code, 0);
    r.err_has("bad_key.yml': line 8, column 7").err_has("whne");
    assert!(!p.path("ran").exists(), "nothing may run when the playbook does not load");

    p.file("bad_module.yml", "- hosts: localhost\n  tasks:\n    - copyy:\n        dest: /tmp/x\n");
    p.playbook("bad_module.yml", &[]).err_has("couldn't resolve module/action 'copyy'").err_has("line 3, column 7");

    p.file("bad_yaml.yml", "- hosts: localhost\n  tasks:\n    - debug: msg=x\n   bad: [\n");
    let r = p.playbook("bad_yaml.yml", &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    r.err_has("bad_yaml.yml': line");
}

#[test]
fn undefined_variable_names_variable_task_and_file() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - name: uses an undefined variable
      debug:
        msg: "value is {{ no_such_var }}"
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.code(2).has("no_such_var").has("uses an undefined variable").has("site.yml");
}

#[test]
fn facts_are_gathered_when_asked() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  tasks:
    - assert:
        that:
          - ansible_hostname | length > 0
          - ansible_facts.hostname == ansible_hostname
          - ansible_os_family is string
          - ansible_distribution_major_version is defined
          - ansible_architecture is defined
"#,
    );
    p.playbook("site.yml", &[]).success().has("TASK [Gathering Facts]");
}

#[test]
fn json_events_stream() {
    let p = Project::new();
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=hi\n");
    p.playbook("site.yml", &["--json-events", "events.jsonl"]).success();
    let text = p.read("events.jsonl");
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["playbook_start", "play_start", "task_start", "runner_on_ok", "stats"]);
    assert_eq!(events[3]["result"]["msg"], "hi");
    assert_eq!(events[4]["stats"]["localhost"]["ok"], 1);
}

#[test]
fn no_log_hides_results() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=s3cr3t-value\n      no_log: true\n    - fail: msg=s3cr3t-fail\n      no_log: true\n",
    );
    let r = p.playbook("site.yml", &["-v", "--json-events", "ev.jsonl"]);
    r.code(2).lacks("s3cr3t").has("censored");
    assert!(!p.read("ev.jsonl").contains("s3cr3t"));
}

#[test]
fn start_at_task_limit_syntax_check_and_bad_options() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: first\n      debug: msg=1\n    - name: second\n      debug: msg=2\n    - name: third\n      debug: msg=3\n",
    );
    let r = p.playbook("site.yml", &["--start-at-task", "second"]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"2\"", "\"3\""]);
    let r = p.playbook("site.yml", &["--start-at-task", "th*"]);
    assert_eq!(r.msgs(), vec!["\"3\""]);
    let r = p.playbook("site.yml", &["--limit", "nohost"]);
    r.success().lacks("TASK [first]");
    p.playbook("site.yml", &["--syntax-check"]).success().has("playbook: site.yml").lacks("TASK");
    p.playbook("site.yml", &["-e", "{not: [valid"]).code(5).err_has("extra vars");
    p.playbook("missing.yml", &[]).code(1).err_has("could not be found");
}

#[test]
fn verbose_shows_results_and_task_paths() {
    let p = Project::new();
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - set_fact:\n        answer: 42\n");
    let r = p.playbook("site.yml", &["-vv"]);
    r.success().has("ok: [localhost] => {\"ansible_facts\": {\"answer\": 42}, \"changed\": false}").has("task path: ");
}

#[test]
fn remote_hosts_are_unreachable_not_run_here() {
    let p = Project::new();
    p.file("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: touch ran-{{ inventory_hostname }}\n    - debug: msg=after\n");
    // node1 does not resolve: ssh fails, the host is unreachable and leaves the play.
    let r = p.airlock(&["playbook", "-i", "node1,localhost", "site.yml"]);
    r.code(4).has("fatal: [node1]: UNREACHABLE!").has("Failed to connect to the host via ssh");
    assert_eq!(r.recap("node1").unreachable, 1);
    assert_eq!(r.recap("node1").ok, 0, "an unreachable host runs nothing more");
    assert_eq!(r.recap("localhost").ok, 2);
    assert!(!p.dir.path().join("ran-node1").exists(), "node1's command must not run here");
}

/// `become` from an unprivileged user through sudo (the user and sudo come from
/// `.ci/setup-become`).
#[test]
fn become_runs_modules_as_root_through_sudo() {
    let user = "airlock-test";
    let has_user = std::process::Command::new("id").arg(user).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(has_user, "user {user} missing: run `bash .ci/setup-become` (as root) once");
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - command: id -u
      register: plain
    - command: id -u
      become: true
      register: elevated
    - copy:
        dest: /root/airlock-become-test.txt
        content: "written as root\n"
      become: yes
    - assert:
        that:
          - plain.stdout != '0'
          - elevated.stdout == '0'
"#,
    );
    let _ = std::fs::remove_file("/root/airlock-become-test.txt");
    std::process::Command::new("chmod").args(["-R", "a+rwX", p.dir.path().to_str().unwrap()]).status().unwrap();
    let exe = env!("CARGO_BIN_EXE_airlock");
    let r = p.command(std::path::Path::new("runuser"), &["-u", user, "--", exe, "playbook", "-i", "localhost,", "site.yml"], &[]);
    r.success();
    assert_eq!(std::fs::read_to_string("/root/airlock-become-test.txt").unwrap(), "written as root\n");
    let _ = std::fs::remove_file("/root/airlock-become-test.txt");
}

#[test]
fn fileglob_sequence_extended_loops_and_per_task_check_mode() {
    let p = Project::new();
    p.file("files/a.conf", "a");
    p.file("files/b.conf", "b");
    p.file("files/c.txt", "c");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - debug:
        msg: "{{ item | basename }}"
      with_fileglob: "*.conf"
    - debug:
        msg: "{{ item }}"
      with_sequence: start=1 end=3 format=n%02d
    - debug:
        msg: "{{ ansible_loop.index }}/{{ ansible_loop.length }} first={{ ansible_loop.first }}"
      loop: [x, y]
      loop_control:
        extended: true
    - name: runs even in check mode
      command: "touch {{ playbook_dir }}/made-in-check"
      check_mode: false
    - name: does not run in check mode
      command: "touch {{ playbook_dir }}/never"
"#,
    );
    let r = p.playbook("site.yml", &["--check"]);
    r.success();
    let msgs = r.msgs();
    assert_eq!(msgs, vec!["\"a.conf\"", "\"b.conf\"", "\"n01\"", "\"n02\"", "\"n03\"", "\"1/2 first=True\"", "\"2/2 first=False\""]);
    assert!(p.path("made-in-check").exists());
    assert!(!p.path("never").exists());
}

#[test]
fn lookups_env_and_file_and_hostvars() {
    let p = Project::new();
    p.file("files/motd.txt", "welcome\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    mine: 5
  tasks:
    - debug:
        msg: "{{ lookup('file', 'motd.txt') }} {{ lookup('env', 'AIRLOCK_LOOKUP_TEST') }} {{ hostvars['localhost']['mine'] }} {{ hostvars[inventory_hostname].mine + 1 }}"
"#,
    );
    let r =
        p.command(std::path::Path::new(env!("CARGO_BIN_EXE_airlock")), &["playbook", "-i", "localhost,", "site.yml"], &[("AIRLOCK_LOOKUP_TEST", "from-env")]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"welcome from-env 5 6\""]);
}

#[test]
fn delegate_to_localhost_runs_here_and_to_an_unreachable_host_is_reported() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n      delegate_to: localhost\n    - command: \"true\"\n      delegate_to: node9\n",
    );
    let r = p.playbook("site.yml", &[]);
    // Both hosts named, as Ansible's output does; no arrow when a host delegates to itself.
    r.code(4).has("changed: [localhost]\n").has("fatal: [localhost -> node9]: UNREACHABLE!").has("Failed to connect to the host via ssh");
}

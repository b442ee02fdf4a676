//! The same playbooks through ansible-playbook (ansible-core 2.19) and airlock: what they print
//! must agree. ansible-core comes from `.ci/setup-ansible`.

use crate::support::Project;

/// Every `"msg": ...` block the debug tasks print, as text.
fn messages(stdout: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in stdout.lines() {
        if let Some(c) = &mut cur {
            if line == "}" {
                out.push(cur.take().unwrap());
            } else {
                c.push_str(line);
                c.push('\n');
            }
        } else if line.starts_with("ok: [") && line.ends_with("=> {") {
            cur = Some(String::new());
        }
    }
    out
}

fn compare(playbook: &str, args: &[&str]) {
    let p = Project::new();
    p.file("site.yml", playbook);
    let ours = p.playbook("site.yml", args);
    let theirs = p.ansible_playbook("site.yml", args);
    assert_eq!(theirs.code, ours.code, "exit codes differ\n--- ansible\n{}\n{}\n--- airlock\n{}\n{}", theirs.stdout, theirs.stderr, ours.stdout, ours.stderr);
    let (a, b) = (messages(&theirs.stdout), messages(&ours.stdout));
    assert!(!a.is_empty(), "ansible printed no messages:\n{}\n{}", theirs.stdout, theirs.stderr);
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        assert_eq!(x, y, "message {i} differs (left: ansible, right: airlock)");
    }
    assert_eq!(a.len(), b.len(), "message counts differ\n--- ansible\n{}\n--- airlock\n{}", theirs.stdout, ours.stdout);
}

#[test]
fn filters_match_ansible() {
    compare(
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    words: [b, a, c, a]
    nums: [3, 1, 2]
    users:
      - {name: ann, admin: true, uid: 1}
      - {name: bob, admin: false, uid: 2}
    d1: {a: 1, nested: {x: 1, y: [1]}}
    d2: {b: 2, nested: {y: [2], z: 3}}
    path: /opt/deepops/registry/data.tar.gz
    url: "https://user@nvcr.io:443/v2/nvidia/cuda/manifests/12.4?x=1#frag"
    yes_str: "yes"
  tasks:
    - debug: {msg: "{{ undefined_thing | default('fallback') }} {{ '' | default('empty', true) }} {{ none | d('dflt', true) }}"}
    - debug: {msg: "{{ yes_str | bool }} {{ 'off' | bool }} {{ '42' | int + 1 }} {{ '3.5' | float }} {{ 12 | string }} {{ 'x1' | int(7) }}"}
    - debug: {msg: "{{ 'Hello' | lower }} {{ 'Hello' | upper }} {{ 'a-b-c' | replace('-', '+') }}"}
    - debug: {msg: "{{ 'ver 1.2.3' | regex_replace('(\\d+)\\.(\\d+)', '\\2.\\1') }} {{ 'abc123' | regex_search('[0-9]+') }}"}
    - debug: {msg: "{{ 'k=v' | regex_search('(\\w)=(\\w)', '\\2', '\\1') }}"}
    - debug: {msg: "{{ path | basename }} {{ path | dirname }}"}
    - debug: {msg: "{{ d1 | to_json }}"}
    - debug: {msg: "{{ d1 | to_nice_json }}"}
    - debug: {msg: "{{ '{\"k\": [1, 2]}' | from_json }}"}
    - debug: {msg: "{{ users | to_yaml }}"}
    - debug: {msg: "{{ users | to_nice_yaml }}"}
    - debug: {msg: "{{ d1 | to_nice_yaml }}"}
    - debug: {msg: "{{ 'a: 1\nb: [x, yes]' | from_yaml }}"}
    - debug: {msg: "{{ d1 | combine(d2) }}"}
    - debug: {msg: "{{ d1 | combine(d2, recursive=true) }}"}
    - debug: {msg: "{{ d1 | combine(d2, recursive=true, list_merge='append') }}"}
    - debug: {msg: "{{ d2 | dict2items }}"}
    - debug: {msg: "{{ [{'key': 'a', 'value': 1}] | items2dict }}"}
    - debug: {msg: "{{ users | selectattr('admin') | map(attribute='name') | list }}"}
    - debug: {msg: "{{ users | rejectattr('admin') | map(attribute='uid') | list }}"}
    - debug: {msg: "{{ users | selectattr('name', 'equalto', 'bob') | first }}"}
    - debug: {msg: "{{ words | map('upper') | list }} {{ nums | select('odd') | list }} {{ nums | reject('odd') | list }}"}
    - debug: {msg: "{{ words | first }} {{ words | last }} {{ words | length }} {{ words | unique }}"}
    # ansible-core builds these through Python sets (hash order varies per process): sorted.
    - debug: {msg: "{{ words | union(['z']) | sort }} {{ words | difference(['a']) | sort }} {{ words | intersect(['a', 'q']) }}"}
    - debug: {msg: "{{ [1, [2, [3, [4]]]] | flatten }} {{ [1, [2, [3]]] | flatten(levels=1) }}"}
    - debug: {msg: "{{ nums | zip(words) | list }}"}
    - debug: {msg: "{{ (1 > 2) | ternary('yes', 'no') }} {{ none | ternary('t', 'f', 'n') }}"}
    - debug: {msg: "{{ 'airlock' | b64encode }} {{ 'YWlybG9jaw==' | b64decode }}"}
    - debug: {msg: "{{ 'airlock' | hash('sha1') }} {{ 'airlock' | hash('md5') }} {{ 'airlock' | checksum }}"}
    - debug: {msg: "{{ \"it's a test\" | quote }} {{ 'plain' | quote }}"}
    - debug: {msg: "{{ url | urlsplit('hostname') }} {{ url | urlsplit('port') }} {{ url | urlsplit('path') }}"}
    - debug: {msg: "{{ url | urlsplit }}"}
    - debug: {msg: "{{ nums | sort }} {{ nums | max }} {{ nums | min }} {{ nums | sum }} {{ words | join(',') }}"}
    - debug: {msg: "{{ nums }}"}
    - debug: {msg: "{{ d1 }}"}
    - debug: {msg: "{{ [true, none, 1.5, 'q'] }} and {{ {'k': [true, none]} }}"}
"#,
        &[],
    );
}

#[test]
fn tests_and_methods_match_ansible() {
    compare(
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    s: "alpha,beta,gamma"
    d: {one: 1, two: 2}
    maybe: null
  tasks:
    - command: "true"
      register: ran
    - command: "false"
      register: broke
      ignore_errors: true
    - debug: {msg: "{{ ran is succeeded }} {{ ran is changed }} {{ broke is failed }} {{ ran is skipped }} {{ broke is success }}"}
    - debug: {msg: "{{ nope is defined }} {{ nope is undefined }} {{ maybe is none }} {{ d.one is defined }} {{ d.zzz is undefined }}"}
    - debug: {msg: "{{ 'abc' is match('ab') }} {{ 'abc' is match('bc') }} {{ 'abc' is search('bc') }}"}
    - debug: {msg: "{{ '1.10.0' is version('1.9', '>') }} {{ '2.19.1' is version('2.19.1', 'eq') }} {{ '12.4' is version_compare('12.10', '<') }}"}
    - debug: {msg: "{{ s.split(',') }} {{ s.startswith('alp') }} {{ s.endswith('x') }} {{ s.upper() }} {{ ' x '.strip() }}"}
    - debug: {msg: "{{ d.items() | list }} {{ d.keys() | list }} {{ d.get('one') }} {{ d.get('three', 'none') }} {{ d.values() | list }}"}
    - debug: {msg: "{{ s | split(',') | length }} {{ 'a b' is string }} {{ 5 is number }} {{ d is mapping }} {{ [1] is iterable }}"}
"#,
        &[],
    );
}

#[test]
fn recap_and_result_lines_match_ansible() {
    let p = Project::new();
    p.file(
        "site.yml",
        r#"
- name: compat
  hosts: localhost
  gather_facts: false
  tasks:
    - name: a command
      command: echo hi
    - name: skipped one
      debug: msg=x
      when: false
    - name: looped
      debug:
        msg: "{{ item }}"
      loop: [1, 2]
    - name: ignored
      command: /bin/false
      ignore_errors: true
"#,
    );
    let ours = p.playbook("site.yml", &[]);
    let theirs = p.ansible_playbook("site.yml", &[]);
    let keep = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                l.starts_with("ok:")
                    || l.starts_with("changed:")
                    || l.starts_with("skipping:")
                    || l.starts_with("PLAY")
                    || l.starts_with("TASK")
                    || l.starts_with("localhost ")
                    || l.starts_with("...ignoring")
            })
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    assert_eq!(keep(&theirs.stdout), keep(&ours.stdout), "\n--- ansible\n{}\n--- airlock\n{}", theirs.stdout, ours.stdout);
}

/// Facts set by an item are seen by the next one: set_fact accumulating over a loop, as the
/// offline-repo-mirrors role does to name its images.
#[test]
fn set_fact_accumulates_over_a_loop_as_in_ansible() {
    compare(
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    xs: [{name: a, v: 1}, {name: b, v: 2}, {name: c, v: 3}]
  tasks:
    - set_fact:
        acc: "{{ acc | default({}) | combine({item.name: item.v}) }}"
        seen: "{{ (seen | default([])) + [item.name] }}"
      loop: "{{ xs }}"
      loop_control:
        label: "{{ item.name }}"
    - debug:
        msg: "{{ acc }} {{ seen }}"
"#,
        &[],
    );
}

/// An inline `if` without `else` prints nothing when false, in a larger template.
#[test]
fn inline_if_without_else_prints_nothing() {
    compare(
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    xs: [a, b, c]
  tasks:
    - debug:
        msg: "x{{ ' ' if false }}y{{ 'z' if true }}"
    - debug:
        msg: "{% for x in xs %}{{ x }}{{ ', ' if not loop.last }}{% endfor %}."
    - debug:
        msg: "[{{ 'q' if xs | length > 5 else 'r' }}] [{{ 'w' if 'if' in xs }}]"
    - debug:
        msg: "{{ {'k': 1 if true else 2}['k'] }}-{{ 'no' if missing is defined -}} end"
"#,
        &[],
    );
}

/// Templates end as Ansible's do: Jinja drops the source's last newline and the templar puts
/// back only the newlines the output lacks, so a last line whose filter ends with a newline of
/// its own (`to_nice_yaml`) gives no blank line.
#[test]
fn template_files_end_with_the_newlines_ansible_writes() {
    let cases: &[(&str, &str)] = &[
        ("nice_yaml.j2", "# managed\n{{ extra | to_nice_yaml }}\n"),
        ("nice_yaml_no_newline.j2", "{{ extra | to_nice_yaml }}"),
        ("plain.j2", "name={{ name }}\n"),
        ("two_newlines.j2", "name={{ name }}\n\n"),
        ("three_after_yaml.j2", "{{ extra | to_nice_yaml }}\n\n\n"),
        ("no_newline.j2", "name={{ name }}"),
        ("loop.j2", "{% for k in extra %}\n{{ k }}\n{% endfor %}\n"),
        ("crlf.j2", "a={{ name }}\r\n"),
    ];
    let mut tasks = String::new();
    for (name, _) in cases {
        for tool in ["ansible", "airlock"] {
            tasks.push_str(&format!("    - template: {{src: {name}, dest: \"{{{{ playbook_dir }}}}/out/{tool}/{name}\"}}\n      when: tool == '{tool}'\n"));
        }
    }
    let play = format!(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n    name: gpu01\n    extra: {{registry: 'mirror:5000', ports: [8001, 8002]}}\n  tasks:\n    - file: {{path: \"{{{{ playbook_dir }}}}/out/{{{{ tool }}}}\", state: directory}}\n{tasks}"
    );
    let p = Project::new();
    p.file("site.yml", &play);
    for (name, text) in cases {
        p.file(&format!("templates/{name}"), text);
    }
    let ours = p.playbook("site.yml", &["-e", "tool=airlock"]);
    let theirs = p.ansible_playbook("site.yml", &["-e", "tool=ansible"]);
    assert_eq!(theirs.code, 0, "ansible-playbook failed\n{}\n{}", theirs.stdout, theirs.stderr);
    assert_eq!(ours.code, 0, "airlock failed\n{}\n{}", ours.stdout, ours.stderr);
    for (name, _) in cases {
        let a = std::fs::read(p.path(&format!("out/ansible/{name}"))).unwrap();
        let b = std::fs::read(p.path(&format!("out/airlock/{name}"))).unwrap();
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "{name} differs (left: ansible, right: airlock)");
    }
}

//! Roles, imports and includes, and variable precedence across them.

use crate::support::Project;

fn role(p: &Project, name: &str, files: &[(&str, &str)]) {
    for (rel, text) in files {
        p.file(&format!("roles/{name}/{rel}"), text);
    }
}

#[test]
fn roles_with_defaults_vars_params_handlers_templates_and_dependencies() {
    let p = Project::new();
    role(&p, "base", &[("tasks/main.yml", "- debug:\n    msg: \"base {{ base_greeting }}\"\n"), ("defaults/main.yml", "base_greeting: hi\n")]);
    role(
        &p,
        "web",
        &[
            ("meta/main.yml", "dependencies:\n  - role: base\n"),
            ("defaults/main.yml", "port: 80\nname_default: from-default\nshown: default\n"),
            ("vars/main.yml", "shown: role-vars\n"),
            (
                "tasks/main.yml",
                "- template:\n    src: site.conf.j2\n    dest: \"{{ out }}\"\n  notify: reload\n- debug:\n    msg: \"{{ role_name }} {{ port }} {{ shown }} {{ role_path | basename }}\"\n",
            ),
            ("templates/site.conf.j2", "listen {{ port }}\n"),
            ("handlers/main.yml", "- name: reload\n  debug:\n    msg: web reloaded\n"),
        ],
    );
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    out: "{{ playbook_dir }}/site.conf"
    shown: play
  roles:
    - role: web
      port: 8080
  tasks:
    - debug:
        msg: "after roles {{ name_default }}"
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().has("TASK [base : debug]").has("TASK [web : template]").has("RUNNING HANDLER [web : reload]");
    assert_eq!(r.msgs(), vec!["\"base hi\"", "\"web 8080 role-vars web\"", "\"after roles from-default\"", "\"web reloaded\""]);
    assert_eq!(p.read("site.conf"), "listen 8080\n");
}

#[test]
fn import_and_include_role_with_from_files() {
    let p = Project::new();
    role(
        &p,
        "multi",
        &[
            ("tasks/main.yml", "- debug: msg=main\n"),
            ("tasks/other.yml", "- debug:\n    msg: \"other {{ flavour }}\"\n"),
            ("vars/alt.yml", "flavour: alt-vars\n"),
            ("defaults/main.yml", "flavour: default\n"),
            ("defaults/alt.yml", "flavour: alt-default\n"),
        ],
    );
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - import_role:
        name: multi
        tasks_from: other
        defaults_from: alt
    - include_role:
        name: multi
        tasks_from: other.yml
        vars_from: alt
    - include_role:
        name: multi
      when: false
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"other alt-default\"", "\"other alt-vars\""]);
    assert_eq!(r.recap("localhost").skipped, 1);
}

#[test]
fn import_tasks_is_static_and_include_tasks_is_dynamic() {
    let p = Project::new();
    p.file("tasks/static.yml", "- debug:\n    msg: \"static {{ v }}\"\n");
    p.file("tasks/dyn.yml", "- debug:\n    msg: \"dynamic {{ v }} {{ item }}\"\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - import_tasks: tasks/static.yml
      vars:
        v: imported
      tags: imp
    - include_tasks: "tasks/{{ which }}.yml"
      vars:
        v: included
        which: dyn
      loop: [1, 2]
"#,
    );
    let r = p.playbook("site.yml", &[]);
    r.success().has("tasks/dyn.yml for localhost => (item=1)");
    assert_eq!(r.msgs(), vec!["\"static imported\"", "\"dynamic included 1\"", "\"dynamic included 2\""]);
    // Tags on an import reach the imported tasks; the listing sees them before any run.
    p.playbook("site.yml", &["--list-tasks"]).success().has("debug\tTAGS: [imp]");
    let r = p.playbook("site.yml", &["--tags", "imp"]);
    assert_eq!(r.msgs(), vec!["\"static imported\""]);
}

#[test]
fn import_playbook_and_vars_files() {
    let p = Project::new();
    p.file("vars/common.yml", "from_vars_file: yes-it-is\n");
    p.file(
        "inner.yml",
        "- hosts: localhost\n  gather_facts: false\n  vars_files:\n    - vars/missing.yml\n    - [vars/nope.yml, vars/common.yml]\n  tasks: []\n",
    );
    p.file(
        "inner2.yml",
        "- name: inner\n  hosts: localhost\n  gather_facts: false\n  vars_files: [vars/common.yml]\n  tasks:\n    - debug:\n        msg: \"{{ from_vars_file }}\"\n",
    );
    p.file("site.yml", "- import_playbook: inner2.yml\n- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=outer\n");
    let r = p.playbook("site.yml", &[]);
    r.success().has("PLAY [inner]");
    assert_eq!(r.msgs(), vec!["\"yes-it-is\"", "\"outer\""]);
    p.playbook("inner.yml", &[]).code(1).err_has("vars/missing.yml");
}

#[test]
fn variable_precedence_follows_ansible() {
    let p = Project::new();
    role(
        &p,
        "prec",
        &[
            ("defaults/main.yml", "v_default: role-default\nv_play: role-default\nv_rolevars: role-default\n"),
            ("vars/main.yml", "v_rolevars: role-vars\nv_block: role-vars\n"),
            (
                "tasks/main.yml",
                r#"- block:
    - debug:
        msg: "{{ v_default }}|{{ v_play }}|{{ v_rolevars }}|{{ v_block }}|{{ v_task }}|{{ v_fact }}|{{ v_param }}|{{ v_extra }}"
      vars:
        v_task: task
        v_fact: task
  vars:
    v_block: block
    v_task: block
"#,
            ),
        ],
    );
    p.file("group_vars/all.yml", "v_play: group-all\nv_inv: group-all\n");
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    v_play: play
    v_rolevars: play
    v_param: play
    v_extra: play
  pre_tasks:
    - set_fact:
        v_fact: set-fact
        v_param: set-fact
  roles:
    - role: prec
      v_param: param
"#,
    );
    let r = p.playbook("site.yml", &["-e", "v_extra=extra", "-e", "v_param=extra-wins"]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"role-default|play|role-vars|block|task|set-fact|extra-wins|extra\""]);
}

#[test]
fn roles_path_from_config_and_environment() {
    let p = Project::new();
    p.file("elsewhere/shared_role/tasks/main.yml", "- debug: msg=from-roles-path\n");
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  roles: [shared_role]\n");
    let r = p.command(
        std::path::Path::new(env!("CARGO_BIN_EXE_airlock")),
        &["playbook", "-i", "localhost,", "site.yml"],
        &[("ANSIBLE_ROLES_PATH", p.path("elsewhere").to_str().unwrap())],
    );
    r.success();
    assert_eq!(r.msgs(), vec!["\"from-roles-path\""]);
    p.file("ansible.cfg", "[defaults]\nroles_path = ./elsewhere\n");
    let r = p.playbook("site.yml", &[]);
    assert_eq!(r.msgs(), vec!["\"from-roles-path\""]);
    std::fs::remove_file(p.path("ansible.cfg")).unwrap();
    p.playbook("site.yml", &[]).code(4).err_has("the role 'shared_role' was not found");
}

#[test]
fn inventory_group_and_host_vars_take_their_places() {
    let p = Project::new();
    p.file(
        "inventory/hosts.ini",
        "[mirrors]\nlocalhost ansible_connection=local from_host_inline=inline v_host=inline\n\n[mirrors:vars]\nv_group=ini-group\nv_all=ini-group\n",
    );
    p.file("inventory/group_vars/all.yml", "v_all: inv-all\nv_group: inv-all\nv_play: inv-all\n");
    p.file("inventory/group_vars/mirrors.yml", "v_group: inv-mirrors\n");
    p.file("inventory/host_vars/localhost.yml", "v_host: host-file\n");
    p.file(
        "site.yml",
        r#"
- hosts: mirrors
  gather_facts: false
  vars:
    v_play: play
  tasks:
    - debug:
        msg: "{{ v_all }} {{ v_group }} {{ v_host }} {{ v_play }} {{ from_host_inline }} {{ group_names }}"
  post_tasks:
    - debug:
        msg: post
"#,
    );
    let r = p.airlock(&["playbook", "-i", "inventory/hosts.ini", "site.yml"]);
    r.success();
    assert_eq!(r.msgs(), vec!["\"inv-all inv-mirrors host-file play inline ['mirrors']\"", "\"post\""]);
    let r = p.airlock(&["playbook", "-i", "inventory/hosts.ini", "site.yml", "-e", "v_play=extra"]);
    assert!(r.msgs()[0].contains(" extra "), "{:?}", r.msgs());
}

#[test]
fn role_files_are_found_role_relative_first() {
    let p = Project::new();
    role(
        &p,
        "shipper",
        &[("tasks/main.yml", "- copy:\n    src: payload.txt\n    dest: \"{{ playbook_dir }}/out.txt\"\n"), ("files/payload.txt", "from the role\n")],
    );
    p.file("files/payload.txt", "from the playbook\n");
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  roles: [shipper]\n  tasks:\n    - copy:\n        src: payload.txt\n        dest: \"{{ playbook_dir }}/out2.txt\"\n");
    p.playbook("site.yml", &[]).success();
    assert_eq!(p.read("out.txt"), "from the role\n");
    assert_eq!(p.read("out2.txt"), "from the playbook\n");
}

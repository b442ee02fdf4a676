//! Per-site customisation: inventories, group_vars and host_vars in Ansible's precedence
//! (compared with ansible-playbook 2.19 from `.ci/setup-ansible`), ansible.cfg and `ANSIBLE_*`,
//! a site's role replacing or wrapping the shipped `offline-repo-mirrors` with the real shipped
//! playbook, and `--list-vars`.

use std::path::Path;

use crate::support::{self, Project, Run};

fn shipped(playbook: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks").join(playbook).display().to_string()
}

fn airlock_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
    p.command(Path::new(env!("CARGO_BIN_EXE_airlock")), args, env)
}

/// ansible-playbook with exactly these arguments (no `-i` added).
fn ansible_playbook(p: &Project, args: &[&str]) -> Run {
    let exe = support::ansible_playbook_exe();
    let python = exe.with_file_name("python");
    p.command(
        &exe,
        args,
        &[("ANSIBLE_LOCALHOST_WARNING", "False"), ("ANSIBLE_DEPRECATION_WARNINGS", "False"), ("ANSIBLE_PYTHON_INTERPRETER", python.to_str().unwrap())],
    )
}

/// Each debug result as (host, the `"msg": ...` text).
fn host_msgs(stdout: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut host = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("ok: [") {
            host = rest.split(']').next().map(str::to_string);
        } else if let (Some(h), Some(msg)) = (&host, line.trim_start().strip_prefix("\"msg\": ")) {
            out.push((h.clone(), msg.to_string()));
            host = None;
        }
    }
    out
}

/// A site inventory (a directory: INI and YAML files) with `group_vars/` as files and as a
/// directory of files, `host_vars/`, and the same beside the playbook.
fn precedence_project() -> Project {
    let p = Project::new();
    p.file(
        "inventory/hosts.ini",
        "[mirrors]\nmirror1 v_host=mirror1-inline\n\n[all:vars]\nansible_connection=local\nv_all=all-ini\nv_group=all-ini\nv_child=all-ini\nv_gvall=all-ini\n",
    );
    p.file(
        "inventory/cluster.yml",
        "cluster:\n  children:\n    gpu:\n      hosts:\n        gpu1: {v_host: gpu1-inline, v_hostfile: gpu1-inline}\n        gpu2:\n      vars:\n        v_child: gpu-yaml\n  vars:\n    v_group: cluster-yaml\n    v_child: cluster-yaml\n",
    );
    p.file("inventory/group_vars/all/10-base.yml", "v_gvall: inv-gv-all\nv_dirorder: \"10\"\nv_gvgroup: inv-gv-all\nv_pbgroup: inv-gv-all\n");
    p.file("inventory/group_vars/all/20-site.yml", "v_dirorder: \"20\"\n");
    p.file("inventory/group_vars/cluster.yml", "v_gvgroup: inv-gv-cluster\nv_pbgroup: inv-gv-cluster\nv_hostfile: inv-gv-cluster\n");
    p.file("inventory/group_vars/gpu.yml", "v_gvgroup: inv-gv-gpu\n");
    p.file("inventory/host_vars/gpu1.yml", "v_hostfile: inv-hv-gpu1\nv_play: inv-hv-gpu1\n");
    p.file("group_vars/all.yml", "v_gvall: pb-gv-all\nv_pbgroup: pb-gv-all\n");
    p.file("group_vars/gpu.yml", "v_pbgroup: pb-gv-gpu\n");
    p.file("host_vars/gpu2.yml", "v_hostfile: pb-hv-gpu2\n");
    p.file("extra.yml", "v_extra: extra-file\nv_playext: extra-file\n");
    p.file(
        "site.yml",
        r#"- hosts: all
  gather_facts: false
  vars:
    v_play: play
    v_playext: play
  tasks:
    - debug:
        msg: "all={{ v_all }} group={{ v_group }} child={{ v_child }} gvall={{ v_gvall }} dirorder={{ v_dirorder }} gvgroup={{ v_gvgroup }} pbgroup={{ v_pbgroup }} host={{ v_host | default('-') }} hostfile={{ v_hostfile | default('-') }} play={{ v_play }} playext={{ v_playext }} extra={{ v_extra }} groups={{ group_names }}"
"#,
    );
    p
}

#[test]
fn precedence_of_inventory_playbook_and_extra_vars_matches_ansible() {
    let p = precedence_project();
    let args = ["playbook", "-f", "1", "-i", "inventory", "site.yml", "-e", "@extra.yml", "-e", "v_extra=cli"];
    let ours = p.airlock(&args);
    ours.success();
    let want = [
        (
            "mirror1",
            "all=all-ini group=all-ini child=all-ini gvall=pb-gv-all dirorder=20 gvgroup=inv-gv-all pbgroup=pb-gv-all host=mirror1-inline hostfile=- play=play playext=extra-file extra=cli groups=['mirrors']",
        ),
        // gpu is a child of cluster: its values win over cluster's at each level; the inventory's
        // group_vars/<group> win over the playbook's group_vars/all, the playbook's
        // group_vars/<group> over the inventory's; host_vars over group_vars; play vars over
        // host_vars; extra vars over everything, the last -e winning.
        (
            "gpu1",
            "all=all-ini group=cluster-yaml child=gpu-yaml gvall=pb-gv-all dirorder=20 gvgroup=inv-gv-gpu pbgroup=pb-gv-gpu host=gpu1-inline hostfile=inv-hv-gpu1 play=play playext=extra-file extra=cli groups=['cluster', 'gpu']",
        ),
        (
            "gpu2",
            "all=all-ini group=cluster-yaml child=gpu-yaml gvall=pb-gv-all dirorder=20 gvgroup=inv-gv-gpu pbgroup=pb-gv-gpu host=- hostfile=pb-hv-gpu2 play=play playext=extra-file extra=cli groups=['cluster', 'gpu']",
        ),
    ];
    let mut got = host_msgs(&ours.stdout);
    got.sort();
    let mut want: Vec<(String, String)> = want.iter().map(|(h, m)| (h.to_string(), format!("\"{m}\""))).collect();
    want.sort();
    assert_eq!(got, want, "\n{}", ours.stdout);

    let theirs = ansible_playbook(&p, &args[1..]);
    theirs.success();
    let mut ansible = host_msgs(&theirs.stdout);
    ansible.sort();
    assert_eq!(ansible, got, "airlock and ansible-playbook disagree\n--- ansible\n{}\n--- airlock\n{}", theirs.stdout, ours.stdout);

    // --limit narrows the play's hosts the same way.
    for limit in ["cluster:!gpu2", "mirror*", "gpu[1]"] {
        let mut limited = args.to_vec();
        limited.extend(["--limit", limit]);
        let ours = p.airlock(&limited);
        let theirs = ansible_playbook(&p, &limited[1..]);
        assert_eq!(ours.code, theirs.code, "--limit {limit}\n{}\n{}", ours.stdout, theirs.stdout);
        let hosts = |r: &Run| host_msgs(&r.stdout).into_iter().map(|(h, _)| h).collect::<Vec<_>>();
        assert_eq!(hosts(&ours), hosts(&theirs), "--limit {limit}");
        assert_eq!(hosts(&ours).len(), 1, "--limit {limit}\n{}", ours.stdout);
    }
}

#[test]
fn role_search_order_matches_ansible() {
    let p = Project::new();
    p.file("roles/common/tasks/main.yml", "- debug: msg=\"common from the playbook's roles/\"\n");
    p.file("site-roles/common/tasks/main.yml", "- debug: msg=\"common from roles_path\"\n");
    p.file("site-roles/extra/tasks/main.yml", "- debug: msg=\"extra from roles_path\"\n");
    p.file("ansible.cfg", "[defaults]\nroles_path = ./site-roles\n");
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  roles: [common, extra]\n");
    let ours = p.playbook("site.yml", &[]);
    ours.success();
    assert_eq!(ours.msgs(), ["\"common from the playbook's roles/\"", "\"extra from roles_path\""]);
    let theirs = ansible_playbook(&p, &["-i", "localhost,", "-c", "local", "site.yml"]);
    theirs.success();
    assert_eq!(theirs.msgs(), ours.msgs(), "\n--- ansible\n{}", theirs.stdout);
}

/// A site role named like the shipped one, in `config/roles/`.
fn site_role(p: &Project) {
    p.file("config/roles/offline-repo-mirrors/defaults/main.yml", "tar_file_path: /site/deepops-archive.tar\n");
    p.file(
        "config/roles/offline-repo-mirrors/tasks/build-cache.yml",
        "- name: The site's own build\n  debug:\n    msg: \"site build-cache {{ tar_file_path }} {{ site_note | default('-') }}\"\n",
    );
}

#[test]
fn a_site_role_earlier_on_roles_path_replaces_the_shipped_one() {
    let p = Project::new();
    site_role(&p);
    let pb = shipped("build-offline-cache.yml");
    let env = [("ANSIBLE_ROLES_PATH", "config/roles")];
    let r = airlock_env(&p, &["playbook", &pb], &env);
    r.success().lacks("Create the cache directories");
    assert_eq!(r.msgs(), ["\"site build-cache /site/deepops-archive.tar -\""]);
    // --list-vars names the defaults file that was read.
    let r = airlock_env(&p, &["playbook", &pb, "--list-vars"], &env);
    r.success()
        .has("tar_file_path = \"/site/deepops-archive.tar\"\n    role offline-repo-mirrors defaults, config/roles/offline-repo-mirrors/defaults/main.yml:1\n");
    // Without it, the shipped role.
    let r = p.airlock(&["playbook", &pb, "--list-vars"]);
    let shipped_defaults = Path::new(env!("CARGO_MANIFEST_DIR")).join("roles/offline-repo-mirrors/defaults/main.yml");
    r.success().has(&format!("role offline-repo-mirrors defaults, {}:", shipped_defaults.display()));

    // The site configuration as config.example ships it, read through ANSIBLE_CONFIG naming the
    // directory: its ansible.cfg gives the inventory and the roles path, relative to config/.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example");
    for f in ["ansible.cfg", "inventory", "group_vars/all.yml", "airgap/offline_repo_vars.yml"] {
        p.file(&format!("config/{f}"), &std::fs::read_to_string(example.join(f)).unwrap());
    }
    p.file("config/group_vars/offline_mirror.yml", "site_note: from-group-vars\n");
    let r = airlock_env(&p, &["playbook", &pb, "-e", "@config/airgap/offline_repo_vars.yml"], &[("ANSIBLE_CONFIG", "config")]);
    r.success();
    assert_eq!(r.msgs(), ["\"site build-cache /site/deepops-archive.tar from-group-vars\""]);
}

#[test]
fn a_site_role_wraps_the_shipped_one() {
    let files = support::serve_routes(vec![("/licence.txt", 200, b"site licence\n".to_vec()), ("/tool.bin", 200, b"tool\n".to_vec())]);
    let p = Project::new();
    p.file(
        "config/roles/offline-repo-mirrors/tasks/build-cache.yml",
        &format!(
            r#"- name: Site step before
  cache_files:
    files:
      - {{url: "{files}/licence.txt"}}
    dest: "{{{{ offline_cache_dir }}}}/misc-files/site"
    cache_dir: "{{{{ offline_cache_dir }}}}"

- name: The shipped build-cache
  include_role:
    name: "{{{{ playbook_dir }}}}/../roles/offline-repo-mirrors"
    tasks_from: build-cache
    public: true

- name: Site step after
  template:
    src: note.txt.j2
    dest: "{{{{ offline_cache_dir | dirname }}}}/note.txt"
"#
        ),
    );
    p.file(
        "config/roles/offline-repo-mirrors/templates/note.txt.j2",
        "{{ tar_file_path | basename }} concurrency {{ download_concurrency }} yum port {{ yum_mirror_port }}\n",
    );
    let cache = p.path("cache");
    let archive = p.path("deepops-archive.tar");
    p.file(
        "offline.yml",
        &format!(
            "offline_cache_dir: \"{}\"\ntar_file_path: \"{}\"\nmirror_images: []\ndownload_docker_images: false\ndownload_yum_repos: false\ndownload_pip_packages: false\ndownload_helm_repos: false\ndownload_kubespray_deps: false\nmisc_files:\n  - {{url: \"{files}/tool.bin\"}}\n",
            cache.display(),
            archive.display()
        ),
    );
    let pb = shipped("build-offline-cache.yml");
    let env = [("ANSIBLE_ROLES_PATH", "config/roles")];
    let run = airlock_env(&p, &["playbook", &pb, "-e", "@offline.yml"], &env);
    run.success();
    // The site's steps run around the shipped role's tasks, in order.
    let at = |s: &str| run.stdout.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{}", run.stdout));
    let order = [
        "TASK [offline-repo-mirrors : Site step before]",
        "TASK [offline-repo-mirrors : Create the cache directories]",
        "TASK [offline-repo-mirrors : Write the archive]",
        "TASK [offline-repo-mirrors : Site step after]",
    ];
    for w in order.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} should come before {}\n{}", w[0], w[1], run.stdout);
    }
    // After an include with `public: true`, the shipped defaults reach the site's template,
    // found in the wrapping role's templates/.
    assert_eq!(p.read("note.txt"), "deepops-archive.tar concurrency 8 yum port 8001\n");
    // The archive carries what the site's step put into the cache, with the shipped files.
    let listing = std::process::Command::new("tar").arg("-tf").arg(&archive).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for f in ["misc-files/site/licence.txt", "misc-files/tool.bin", "manifest.json"] {
        assert!(listing.lines().any(|l| l == f), "{f} not in the archive:\n{listing}");
    }
    p.airlock(&["archive", "verify", archive.to_str().unwrap()]).success();
}

#[test]
fn list_vars_shows_values_sources_and_overrides_with_limit_and_extra_vars() {
    let p = Project::new();
    p.file("inventory/hosts.ini", "[web]\nw1 ansible_connection=local port=81\nw2 ansible_connection=local\n\n[db]\nd1 ansible_connection=local\n");
    p.file("inventory/group_vars/web.yml", "# web servers\nport: 82\n");
    p.file("roles/web/defaults/main.yml", "port: 80\nroot: \"{{ base }}/www\"\n");
    p.file("roles/web/tasks/main.yml", "- debug: msg=web\n");
    p.file("roles/inc/defaults/main.yml", "inc_var: from-inc\n");
    p.file("roles/inc/tasks/main.yml", "- debug: msg=inc\n");
    p.file("vars/common.yml", "base: /srv\n");
    p.file("extra.yml", "# the site\nport: 8080\n");
    p.file(
        "site.yml",
        r#"- name: Web
  hosts: web:db
  gather_facts: false
  vars_files: [vars/common.yml]
  vars:
    greeting: hello
    port: 83
  roles: [web]
  tasks:
    - include_role:
        name: inc
    - file:
        path: should-not-exist
        state: touch
"#,
    );
    let r = p.airlock(&["playbook", "-i", "inventory", "site.yml", "--list-vars", "--limit", "web", "-e", "@extra.yml", "-e", "greeting=hi"]);
    r.success().has("PLAY [Web]").has("HOST [w1]").has("HOST [w2]").lacks("HOST [d1]").lacks("PLAY RECAP");
    assert!(!p.path("should-not-exist").exists(), "--list-vars ran a task");
    r.has("roles: web, inc (include_role at site.yml:10: its defaults and vars reach its own tasks only)\n");
    let w1 = &r.stdout[r.stdout.find("HOST [w1]").unwrap()..r.stdout.find("HOST [w2]").unwrap()];
    for block in [
        // Every level that sets `port`, highest first, with its file and line.
        "port = 8080\n    extra vars, extra.yml:2\n    overrides 83 from play vars, site.yml:7\n    overrides 81 from inventory (host w1)\n    overrides 82 from inventory group_vars/*, inventory/group_vars/web.yml:2\n    overrides 80 from role web defaults, roles/web/defaults/main.yml:1\n",
        "greeting = \"hi\"\n    extra vars (-e greeting=hi)\n    overrides \"hello\" from play vars, site.yml:6\n",
        // A template shows what it gives.
        "root = \"{{ base }}/www\" => \"/srv/www\"\n    role web defaults, roles/web/defaults/main.yml:2\n",
        "base = \"/srv\"\n    vars_files, vars/common.yml:1\n",
        "inc_var = \"from-inc\"\n    role inc defaults, roles/inc/defaults/main.yml:1\n",
        "ansible_connection = \"local\"\n    inventory (host w1)\n",
    ] {
        assert!(w1.contains(block), "w1 lacks\n{block}\n--- in\n{w1}");
    }
    let w2 = &r.stdout[r.stdout.find("HOST [w2]").unwrap()..];
    assert!(
        w2.contains("port = 8080\n    extra vars, extra.yml:2\n    overrides 83 from play vars, site.yml:7\n    overrides 82 from inventory group_vars/*"),
        "{w2}"
    );
    // Without -e and --limit: the play's value, and every host.
    let r = p.airlock(&["playbook", "-i", "inventory", "site.yml", "--list-vars"]);
    r.success().has("HOST [d1]").has("port = 83\n    play vars, site.yml:7\n    overrides 80 from role web defaults");
}

#[test]
fn ansible_cfg_and_ansible_inventory_choose_the_inventory() {
    let p = Project::new();
    p.file("hosts.ini", "[cfg]\nfrom-cfg ansible_connection=local\n");
    p.file("other.ini", "[env]\nfrom-env ansible_connection=local\n");
    // configparser's forms: `key: value`, an inline `;` comment.
    p.file("ansible.cfg", "# site settings\n[defaults]\ninventory: hosts.ini ; the site's hosts\nforks = 3\n");
    p.file("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg={{ inventory_hostname }}\n");
    let hosts = |r: &Run| host_msgs(&r.stdout).into_iter().map(|(h, _)| h).collect::<Vec<_>>();
    let r = p.airlock(&["playbook", "site.yml"]);
    r.success();
    assert_eq!(hosts(&r), ["from-cfg"]);
    let theirs = ansible_playbook(&p, &["site.yml"]);
    assert_eq!(hosts(&theirs), ["from-cfg"], "ansible-playbook:\n{}\n{}", theirs.stdout, theirs.stderr);
    let r = airlock_env(&p, &["playbook", "site.yml"], &[("ANSIBLE_INVENTORY", "other.ini")]);
    assert_eq!(hosts(&r), ["from-env"]);
    let r = airlock_env(&p, &["playbook", "-i", "other.ini", "site.yml"], &[("ANSIBLE_INVENTORY", "hosts.ini")]);
    assert_eq!(hosts(&r), ["from-env"], "-i wins over ANSIBLE_INVENTORY");
    // An ansible.cfg in a world-writable directory is ignored, with Ansible's warning.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = p.airlock(&["playbook", "site.yml"]);
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    r.success().err_has("world writable directory").err_has("ignoring it as an ansible.cfg source");
    assert!(hosts(&r).is_empty(), "{}", r.stdout);
}

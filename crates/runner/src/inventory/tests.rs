//! Tests of inventories as a whole: INI, YAML and comma-list sources, directories, host
//! patterns and variable precedence.

use serde_json::json;

use super::addresses::{AddressError, expand_hostname_range, parse_address};
use super::*;

fn ini(text: &str) -> Inventory {
    let mut inv = Inventory::new();
    inv.parse_ini("/x/hosts", text).expect("ini");
    inv.reconcile();
    inv
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn ph(inv: &Inventory, p: &str) -> Vec<String> {
    inv.pattern_hosts(p).expect("pattern")
}

const SAMPLE: &str = r#"# comment
; other comment
host0 a=1 b=yes c="quoted str" d='x y' e=1.5 f=[1,2] g={'k':1} h=True i=None j=0x10 k=foo#bar l=012
[web]
web[01:03] http_port=80
www.example.com:2222

[db]
db-[a:c]
node[1:10:3]

[web:vars]
x=1
y=yes
z="quoted"
w=a b c
v = spaced
list=[1, 2]

[prod:children]
web
db

[prod:vars]
ansible_group_priority=5

[empty]
"#;

#[test]
fn ini_groups_ranges_and_values() {
    let inv = ini(SAMPLE);
    let h0 = &inv.hosts["host0"].vars;
    assert_eq!(h0["a"], json!(1));
    assert_eq!(h0["b"], json!("yes"));
    assert_eq!(h0["c"], json!("quoted str"));
    assert_eq!(h0["d"], json!("x y"));
    assert_eq!(h0["e"], json!(1.5));
    assert_eq!(h0["f"], json!([1, 2]));
    assert_eq!(h0["g"], json!("{k:1}")); // shlex removed the quotes
    assert_eq!(h0["h"], json!(true));
    assert_eq!(h0["i"], json!(null));
    assert_eq!(h0["j"], json!(16));
    assert_eq!(h0["k"], json!("foo")); // `#` ends the line
    assert!(!h0.contains_key("l"));
    assert_eq!(h0["inventory_file"], json!("/x/hosts"));

    assert_eq!(inv.groups["web"].hosts, names(&["web01", "web02", "web03", "www.example.com"]));
    assert_eq!(inv.hosts["www.example.com"].vars["ansible_port"], json!(2222));
    assert_eq!(inv.groups["db"].hosts, names(&["db-a", "db-b", "db-c", "node1", "node4", "node7", "node10"]));
    let web = &inv.groups["web"].vars;
    assert_eq!(web["x"], json!(1));
    assert_eq!(web["y"], json!("yes"));
    assert_eq!(web["z"], json!("quoted"));
    assert_eq!(web["w"], json!("a b c"));
    assert_eq!(web["v"], json!("spaced"));
    assert_eq!(web["list"], json!([1, 2]));
    assert_eq!(inv.groups["prod"].children, names(&["web", "db"]));
    assert!(inv.groups["prod"].vars.is_empty());
    assert_eq!(inv.group_priority["prod"], 5);
    assert_eq!(inv.groups["all"].children, names(&["ungrouped", "prod", "empty"]));
    assert_eq!(inv.groups["ungrouped"].hosts, names(&["host0"]));

    assert_eq!(inv.group_names("web01"), names(&["prod", "web"]));
    assert_eq!(inv.group_names("host0"), names(&["ungrouped"]));
    assert!(inv.group_names("localhost").is_empty());
    let groups = inv.groups_var();
    assert_eq!(groups["all"], json!(["host0", "web01", "web02", "web03", "www.example.com", "db-a", "db-b", "db-c", "node1", "node4", "node7", "node10"]));
    assert_eq!(groups["prod"].as_array().unwrap().len(), 11);
    assert_eq!(groups["empty"], json!([]));
    assert_eq!(groups["ungrouped"], json!(["host0"]));
}

#[test]
fn ini_section_names_pending_and_errors() {
    let inv = ini("[a:children]\nb-c\n[b-c]\nh1\n[x-y:vars]\nk=v\n[x-y]\n");
    assert_eq!(inv.groups["a"].children, names(&["b-c"]));
    assert_eq!(inv.groups["b-c"].hosts, names(&["h1"]));
    assert_eq!(inv.groups["x-y"].vars["k"], json!("v"));
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);

    let inv = ini("[parent:children]\nkid\n[kid]\nh1\n");
    assert_eq!(inv.group_names("h1"), names(&["kid", "parent"]));
    assert_eq!(inv.groups["all"].children, names(&["ungrouped", "parent"]));

    let mut inv = Inventory::new();
    let e = inv.parse_ini("/x/h", "[a:children]\nmissing\n").unwrap_err();
    assert_eq!(e.to_string(), "/x/h:2: Section [a:children] includes undefined group 'missing'.");
    let e = Inventory::new().parse_ini("/x/h", "\n[g:vars]\nk=v\n").unwrap_err();
    assert_eq!(e.to_string(), "/x/h:2: Section [g:vars] not valid for undefined group 'g'.");
    let e = Inventory::new().parse_ini("/x/h", "[g]\nh1 novalue\n").unwrap_err();
    assert!(e.to_string().starts_with("/x/h:2: Expected key=value host variable assignment"), "{}", e.to_string());
    let e = Inventory::new().parse_ini("/x/h", "[g:vars]\n[g]\n[g:vars]\njunk\n").unwrap_err();
    assert_eq!(e.to_string(), "/x/h:4: Expected key=value, got: junk");
    let e = Inventory::new().parse_ini("/x/h", "[g:bogus]\n").unwrap_err();
    assert!(e.to_string().contains("has unknown type: bogus"), "{}", e.to_string());
    let e = Inventory::new().parse_ini("/x/h", "[bad group]\n").unwrap_err();
    assert!(e.to_string().starts_with("/x/h:1: Invalid section entry"), "{}", e.to_string());
    let e = Inventory::new().parse_ini("/x/h", "[a:children]\nb\n[b:children]\na\n[b]\n").unwrap_err();
    assert!(e.to_string().contains("recursive dependency loop"), "{}", e.to_string());
    let e = Inventory::new().parse_ini("/x/h", "h1 x=\"open\n").unwrap_err();
    assert!(e.to_string().contains("No closing quotation"), "{}", e.to_string());
}

#[test]
fn ini_host_in_ungrouped_and_group() {
    let inv = ini("h1\nh2\n[g]\nh1\n");
    assert_eq!(inv.groups["ungrouped"].hosts, names(&["h2"]));
    assert_eq!(inv.group_names("h1"), names(&["g"]));
}

#[test]
fn big_inventory_lists_hosts_again_in_groups() {
    // Kubespray's shape: every host under `all.hosts`, then again by name in its groups;
    // a few also listed under `ungrouped`, which they leave for their other group.
    let n = 6000;
    let node = |i: usize| format!("node{i:04}");
    let mut all = Map::new();
    let (mut kube, mut gpu, mut ungrouped) = (Map::new(), Map::new(), Map::new());
    for i in 0..n {
        all.insert(node(i), json!({"ansible_host": format!("10.0.{}.{}", i / 256, i % 256)}));
        kube.insert(node(i), Value::Null);
        if i % 2 == 0 {
            gpu.insert(node(i), Value::Null);
        }
        if i % 1000 == 1 {
            ungrouped.insert(node(i), Value::Null);
        }
    }
    all.insert("spare".into(), Value::Null);
    ungrouped.insert("spare".into(), Value::Null);
    let data = json!({"all": {"hosts": all, "children": {
        "ungrouped": {"hosts": ungrouped},
        "kube_node": {"hosts": kube},
        "k8s_cluster": {"children": {"kube_node": {}, "gpu": {"hosts": gpu}}},
    }}});
    let mut inv = Inventory::new();
    inv.parse_yaml_data("/inv.yml", &data).unwrap();
    inv.reconcile();
    assert_eq!(inv.hosts.len(), n + 1);
    assert_eq!(inv.groups["kube_node"].hosts.len(), n);
    assert_eq!(inv.groups["gpu"].hosts.len(), n / 2);
    assert_eq!(inv.groups["ungrouped"].hosts, names(&["spare"]));
    assert_eq!(inv.groups["all"].hosts.len(), n + 1);
    assert_eq!(inv.group_names("node5998"), names(&["gpu", "k8s_cluster", "kube_node"]));
    assert_eq!(inv.group_names("node5999"), names(&["k8s_cluster", "kube_node"]));
    assert_eq!(inv.group_names("node5001"), names(&["k8s_cluster", "kube_node"]));
    assert_eq!(inv.group_names("spare"), names(&["ungrouped"]));
    assert_eq!(ph(&inv, "gpu:&kube_node").len(), n / 2);
    assert_eq!(ph(&inv, "k8s_cluster").len(), n);
}

#[test]
fn addresses() {
    assert_eq!(parse_address("host:22", false).unwrap(), ("host".to_string(), Some(22)));
    assert_eq!(parse_address("[::1]:22", false).unwrap(), ("::1".to_string(), Some(22)));
    assert_eq!(parse_address("fe80::1", false).unwrap(), ("fe80::1".to_string(), None));
    assert_eq!(parse_address("10.0.0.1:80", false).unwrap(), ("10.0.0.1".to_string(), Some(80)));
    assert_eq!(parse_address("web*", true).unwrap_err().to_string(), "Not a valid network hostname: web*");
    assert!(parse_address("bad_", true).is_err());
    assert_eq!(parse_address("node[1:3]", false).unwrap_err(), AddressError::RangeNotAllowed);
    assert!(parse_address("node[1:3].x", true).is_ok());
    assert_eq!(expand_hostname_range("db[01:10:3]n[a:b]").unwrap(), names(&["db01na", "db01nb", "db04na", "db04nb", "db07na", "db07nb", "db10na", "db10nb"]));
    assert_eq!(expand_hostname_range("x[:2]").unwrap(), names(&["x0", "x1", "x2"]));
    assert_eq!(expand_hostname_range("x[01:100]").unwrap_err().to_string(), "host range must specify equal-length begin and end formats");
    assert_eq!(expand_hostname_range("x[c:a]").unwrap_err(), AddressError::RangeOrder);
}

fn yaml_inventory() -> Inventory {
    let data = json!({
        "all": {
            "hosts": {"solo": null, "10.0.0.5:2200": {"ansible_user": "root"}},
            "vars": {"v": "all"},
            "children": {
                "web": {
                    "hosts": {"web[1:2].example.com": {"role": "web"}},
                    "vars": {"http_port": 80},
                    "children": {"canary": {"hosts": "web1.example.com"}}
                },
                "db-servers": {"hosts": {"db1": null}},
            }
        },
        "extra": {"hosts": {"db1": {"extra": true}}, "bogus": {}},
        "odd": ["not", "a", "group"]
    });
    let mut inv = Inventory::new();
    inv.parse_yaml_data("/inv/hosts.yml", &data).expect("yaml");
    inv.reconcile();
    inv
}

#[test]
fn yaml_inventory_from_json_values() {
    let inv = yaml_inventory();
    assert_eq!(inv.groups["all"].vars["v"], json!("all"));
    assert_eq!(inv.groups["all"].hosts, names(&["solo", "10.0.0.5"]));
    assert_eq!(inv.hosts["10.0.0.5"].vars["ansible_port"], json!(2200));
    assert_eq!(inv.hosts["10.0.0.5"].vars["ansible_user"], json!("root"));
    assert_eq!(inv.groups["web"].hosts, names(&["web1.example.com", "web2.example.com"]));
    assert_eq!(inv.hosts["web2.example.com"].vars["role"], json!("web"));
    assert_eq!(inv.groups["web"].children, names(&["canary"]));
    assert!(inv.groups.contains_key("db-servers")); // YAML names are kept
    assert_eq!(inv.hosts["db1"].vars["extra"], json!(true));
    assert_eq!(inv.groups["ungrouped"].hosts, names(&["solo", "10.0.0.5"]));
    assert_eq!(inv.group_names("web1.example.com"), names(&["canary", "web"]));
    assert_eq!(inv.group_names("db1"), names(&["db-servers", "extra"]));
    assert!(inv.warnings.iter().any(|w| w.contains("Skipping 'odd'")), "{:?}", inv.warnings);
    assert!(inv.warnings.iter().any(|w| w.contains("unexpected key (bogus)")), "{:?}", inv.warnings);
    assert_eq!(inv.groups["all"].children, names(&["ungrouped", "web", "db-servers", "extra"]));
    assert_eq!(ph(&inv, "all"), names(&["solo", "10.0.0.5", "web1.example.com", "web2.example.com", "db1"]));

    let mut bad = Inventory::new();
    let e = bad.parse_yaml_data("/i.yml", &json!({"all": {"hosts": ["a"]}})).unwrap_err();
    assert!(e.to_string().contains("Invalid \"hosts\" entry for \"all\" group"), "{}", e.to_string());
    let e = Inventory::new().parse_yaml_data("/i.yml", &json!(["x"])).unwrap_err();
    assert!(e.to_string().contains("should be a dictionary"), "{}", e.to_string());
    let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"all": {"children": {"odd": [1]}}})).unwrap_err();
    assert_eq!(e.to_string(), "/i.yml: odd is not a known host nor group");
    let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"plugin": "aws_ec2"})).unwrap_err();
    assert!(e.to_string().contains("plugin"), "{}", e.to_string());
    let e = Inventory::new().parse_yaml_data("/i.yml", &json!({"all": {"hosts": {"h": "str"}}})).unwrap_err();
    assert!(e.to_string().contains("expected dictionary"), "{}", e.to_string());
}

#[test]
fn comma_lists() {
    let inv = Inventory::load(&["localhost,".to_string()]).unwrap();
    assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), vec!["localhost"]);
    assert_eq!(inv.groups["ungrouped"].hosts, names(&["localhost"]));
    assert_eq!(ph(&inv, "all"), names(&["localhost"]));
    assert!(inv.dirs().is_empty());
    // an explicit localhost is a normal host: no implicit connection
    let src = inv.host_var_sources("localhost", None);
    assert!(src.iter().all(|s| !s.vars.contains_key("ansible_connection")));

    let inv = Inventory::load(&["a, b:2222 ,c,a,,node[1:2]".to_string()]).unwrap();
    assert_eq!(inv.hosts.keys().cloned().collect::<Vec<_>>(), names(&["a", "b", "c", "node[1:2]"]));
    assert_eq!(inv.hosts["b"].vars["ansible_port"], json!(2222));
    assert_eq!(inv.hosts["a"].vars["inventory_file"], json!("a, b:2222 ,c,a,,node[1:2]"));
    assert_eq!(inv.hosts["a"].vars["inventory_dir"], json!(null));
    assert_eq!(inv.group_names("a"), names(&["ungrouped"]));
}

#[test]
fn patterns() {
    let inv = ini("lone\n[web]\nweb1\nweb2\nweb10\n[db]\ndb1\nweb2\n[prod:children]\nweb\n[stage]\ndb1\n");
    // `all` walks its children breadth first: ungrouped, db, prod, stage, then web
    assert_eq!(ph(&inv, "all"), names(&["lone", "db1", "web2", "web1", "web10"]));
    assert_eq!(ph(&inv, "*"), ph(&inv, "all"));
    assert_eq!(ph(&inv, "web"), names(&["web1", "web2", "web10"]));
    assert_eq!(ph(&inv, "prod"), names(&["web1", "web2", "web10"]));
    assert_eq!(ph(&inv, "db1"), names(&["db1"]));
    assert_eq!(ph(&inv, "web:db"), names(&["web1", "web2", "web10", "db1"]));
    assert_eq!(ph(&inv, "prod:web1"), names(&["web1", "web2", "web10"]));
    assert_eq!(ph(&inv, "web[1:0]"), names(&["web2"]));
    assert_eq!(ph(&inv, "db,web"), names(&["db1", "web2", "web1", "web10"]));
    assert_eq!(ph(&inv, "web:&db"), names(&["web2"]));
    assert_eq!(ph(&inv, "web:!db"), names(&["web1", "web10"]));
    assert_eq!(ph(&inv, "!web"), names(&["lone", "db1"]));
    assert_eq!(ph(&inv, "all:!prod:&stage"), names(&["db1"]));
    assert_eq!(ph(&inv, "web?"), names(&["web1", "web2"]));
    assert_eq!(ph(&inv, "web*"), names(&["web1", "web2", "web10"]));
    assert_eq!(ph(&inv, "w[e]b1*"), names(&["web1", "web10"]));
    assert_eq!(ph(&inv, "~web\\d$"), names(&["web1", "web2"]));
    assert_eq!(ph(&inv, "~(web|db)1"), names(&["web1", "web10", "db1"]));
    assert_eq!(ph(&inv, "web[0]"), names(&["web1"]));
    assert_eq!(ph(&inv, "web[-1]"), names(&["web10"]));
    assert_eq!(ph(&inv, "web[1:]"), names(&["web2", "web10"]));
    assert_eq!(ph(&inv, "web[0:1]"), names(&["web1", "web2"]));
    assert!(inv.pattern_hosts("web[5]").is_err());
    assert!(inv.pattern_hosts("~web(").is_err());
    assert!(ph(&inv, "nothing").is_empty());
    assert!(ph(&inv, "nothing*").is_empty());
    // the implicit localhost: by name only, never via all
    assert_eq!(ph(&inv, "localhost"), names(&["localhost"]));
    assert_eq!(ph(&inv, "127.0.0.1"), names(&["127.0.0.1"]));
    assert_eq!(ph(&inv, "web1:localhost"), names(&["web1", "localhost"]));
    assert!(!ph(&inv, "all").contains(&"localhost".to_string()));
    assert!(ph(&inv, "local*").is_empty());
    assert!(inv.is_implicit_localhost("localhost"));
    let src = inv.host_var_sources("localhost", None);
    assert_eq!(src.last().unwrap().vars["ansible_connection"], json!("local"));

    // a localhost-like host of the inventory stands in for the others
    let inv = ini("127.0.0.1\n");
    assert_eq!(ph(&inv, "localhost"), names(&["127.0.0.1"]));
    assert!(!inv.is_implicit_localhost("127.0.0.1"));

    let empty = Inventory::load(&[]).unwrap();
    assert!(ph(&empty, "all").is_empty());
    assert_eq!(ph(&empty, "localhost"), names(&["localhost"]));
    assert_eq!(empty.groups_var(), serde_json::from_value::<Map<String, Value>>(json!({"all": [], "ungrouped": []})).unwrap());
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn var_precedence_with_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let inv_dir = root.join("inventory");
    write(
        &inv_dir.join("hosts.ini"),
        "[web]\nw1 x=host_inline\n[prod:children]\nweb\n[all:vars]\nx=all_inv\n[web:vars]\nx=web_inv\n\
             [prod:vars]\nx=prod_inv\n[zeta]\nw1\n[zeta:vars]\nansible_group_priority=0\n",
    );
    write(&inv_dir.join("group_vars/all.json"), r#"{"x": "inv_gv_all"}"#);
    write(&inv_dir.join("group_vars/web/b.json"), r#"{"x": "inv_gv_web_b"}"#);
    write(&inv_dir.join("group_vars/web/a.json"), r#"{"x": "inv_gv_web_a"}"#);
    write(&inv_dir.join("group_vars/web/skip~"), r#"{"x": "skipped"}"#);
    write(&inv_dir.join("group_vars/prod.json"), r#"{"x": "inv_gv_prod"}"#);
    write(&inv_dir.join("group_vars/empty.json"), "{}");
    write(&inv_dir.join("host_vars/w1.json"), r#"{"x": "inv_hv"}"#);
    let pb = root.join("play");
    write(&pb.join("group_vars/all.json"), r#"{"x": "pb_gv_all"}"#);
    write(&pb.join("group_vars/zeta.json"), r#"{"x": "pb_gv_zeta"}"#);
    write(&pb.join("host_vars/w1.json"), r#"{"x": "pb_hv"}"#);
    write(&pb.join("host_vars/localhost.json"), r#"{"x": "pb_hv_localhost"}"#);

    let inv = Inventory::load(&[inv_dir.to_string_lossy().into_owned()]).unwrap();
    assert_eq!(inv.dirs(), vec![inv_dir.clone()]);
    assert_eq!(inv.hosts["w1"].vars["inventory_file"], json!(inv_dir.join("hosts.ini").to_string_lossy()));
    assert_eq!(inv.hosts["w1"].vars["inventory_dir"], json!(inv_dir.to_string_lossy()));
    // groups sort by depth, then priority, then name: zeta (depth 1, priority 0),
    // prod (depth 1), then web (depth 2)
    assert_eq!(inv.sorted_host_groups("w1"), names(&["zeta", "prod", "web"]));
    inv.check_playbook_vars(&pb).unwrap();
    let sources = inv.host_var_sources("w1", Some(&pb));
    let got: Vec<(String, Value)> = sources.iter().map(|s| (s.label.clone(), s.vars.get("x").cloned().unwrap_or(Value::Null))).collect();
    let l = |p: &Path| display_path(p);
    let want = vec![
        ("inventory (group all)".to_string(), json!("all_inv")),
        ("inventory (group prod)".to_string(), json!("prod_inv")),
        ("inventory (group web)".to_string(), json!("web_inv")),
        (l(&inv_dir.join("group_vars/all.json")), json!("inv_gv_all")),
        (l(&pb.join("group_vars/all.json")), json!("pb_gv_all")),
        (l(&inv_dir.join("group_vars/prod.json")), json!("inv_gv_prod")),
        (l(&inv_dir.join("group_vars/web/a.json")), json!("inv_gv_web_a")),
        (l(&inv_dir.join("group_vars/web/b.json")), json!("inv_gv_web_b")),
        (l(&pb.join("group_vars/zeta.json")), json!("pb_gv_zeta")),
        ("inventory (host w1)".to_string(), json!("host_inline")),
        (l(&inv_dir.join("host_vars/w1.json")), json!("inv_hv")),
        (l(&pb.join("host_vars/w1.json")), json!("pb_hv")),
    ];
    assert_eq!(got, want);

    // the implicit localhost: all's vars and files, its own vars, its host_vars
    let sources = inv.host_var_sources("localhost", Some(&pb));
    let labels: Vec<&str> = sources.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels[0], "inventory (group all)");
    assert_eq!(labels[3], "implicit localhost");
    assert_eq!(sources.last().unwrap().vars["x"], json!("pb_hv_localhost"));
    assert_eq!(sources.len(), 5);

    // broken files are errors naming the file
    write(&inv_dir.join("group_vars/web/c.json"), "[1, 2]");
    let e = Inventory::load(&[inv_dir.to_string_lossy().into_owned()]).unwrap_err();
    assert!(e.to_string().contains("c.json") && e.to_string().contains("must contain a dictionary"), "{}", e.to_string());
}

#[test]
fn directory_sources_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let d = root.join("inv");
    write(&d.join("01-hosts.ini"), "[web]\nw1\n");
    write(&d.join("02-more"), "[web]\nw2\n[db]\nd1\n");
    write(&d.join("03.json"), r#"{"db": {"hosts": {"d2": {"k": 1}}}}"#);
    write(&d.join("035-noext"), r#"{"db": {"hosts": {"d3": null}}}"#);
    write(&d.join("hosts.retry"), "junk junk\n");
    write(&d.join("notes.txt"), "[[[\n");
    write(&d.join("old.orig"), "[[[\n");
    write(&d.join(".hidden"), "[[[\n");
    write(&d.join("group_vars/web.json"), r#"{"g": 1}"#);
    write(&d.join("sub/04.ini"), "[sub]\ns1\n");
    let other = root.join("other.ini");
    write(&other, "[web]\nw3\n");
    let inv = Inventory::load(&[d.to_string_lossy().into_owned(), other.to_string_lossy().into_owned()]).unwrap();
    assert_eq!(inv.groups["web"].hosts, names(&["w1", "w2", "w3"]));
    assert_eq!(inv.groups["db"].hosts, names(&["d1", "d2", "d3"]));
    assert_eq!(inv.hosts["d2"].vars["k"], json!(1));
    assert_eq!(inv.groups["sub"].hosts, names(&["s1"]));
    assert_eq!(inv.dirs(), vec![d.clone(), root.clone()]);
    assert_eq!(inv.hosts["w2"].vars["inventory_file"], json!(d.join("02-more").to_string_lossy()));
    assert_eq!(inv.hosts["w3"].vars["inventory_dir"], json!(root.to_string_lossy()));
    let src = inv.host_var_sources("w3", None);
    assert!(src.iter().any(|s| s.vars.get("g") == Some(&json!(1))));

    let inv = Inventory::load(&[root.join("missing").to_string_lossy().into_owned()]).unwrap();
    assert!(inv.warnings[0].starts_with("Unable to parse") && inv.warnings[0].contains("missing"), "{:?}", inv.warnings);
    assert_eq!(inv.warnings[1], "No inventory was parsed, only implicit localhost is available");
    assert_eq!(ph(&inv, "localhost"), names(&["localhost"]));
    write(&root.join("bad.ini"), "ok\n[g:nope]\n");
    let e = Inventory::load(&[root.join("bad.ini").to_string_lossy().into_owned()]).unwrap_err();
    assert!(e.to_string().ends_with("bad.ini:2: Section [g:nope] has unknown type: nope"), "{}", e.to_string());
}

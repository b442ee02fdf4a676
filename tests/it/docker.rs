//! docker_image and docker_container against the real Docker Engine of this machine. The test
//! images are made here from Debian's static busybox, as OCI layouts written by hand (no
//! registry, nothing pulled). Every image and container is named `airlock-test-<pid>-<test>`
//! and removed by a guard, so parallel tests and reruns do not collide. Needs
//! `bash .ci/setup-docker`; without it these tests fail, saying so.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::Digest;

use crate::support::registry::{LayoutBuilder, OCI_INDEX, OCI_MANIFEST};
use crate::support::{Project, Run, free_port, registry, sha256_hex};

const BUSYBOX: &str = "/bin/busybox";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Runs the docker CLI; (success, stdout, stderr).
fn docker(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker").args(args).output().unwrap_or_else(|e| panic!("cannot run docker ({e}): run `sudo bash .ci/setup-docker`"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// Fails (never skips) without the Engine or busybox.
#[track_caller]
fn require_docker() {
    assert!(Path::new(BUSYBOX).is_file(), "{BUSYBOX} is missing: run `sudo bash .ci/setup-docker`");
    let (ok, _, err) = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(ok, "the Docker Engine does not answer ({err}): run `sudo bash .ci/setup-docker`");
}

/// The Engine's architecture, as images name it.
fn engine_arch() -> String {
    let (_, arch, _) = docker(&["version", "--format", "{{.Server.Arch}}"]);
    arch
}

/// The test's unique names, and removal of everything made under them when dropped.
struct Names {
    prefix: String,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Names {
    fn new(test: &str) -> Names {
        require_docker();
        Names { prefix: format!("airlock-test-{}-{test}", std::process::id()), containers: Default::default() }
    }

    /// A container name, removed at the end.
    fn container(&self, what: &str) -> String {
        let n = format!("{}-{what}", self.prefix);
        self.containers.borrow_mut().push(n.clone());
        n
    }

    /// An image repository (`airlock-test-1234-x/what`).
    fn image(&self, what: &str) -> String {
        format!("{}/{what}", self.prefix)
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter() {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        let (_, tags, _) = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        for t in tags.lines().filter(|t| t.contains(&self.prefix)) {
            let _ = docker(&["rmi", "-f", t]);
        }
    }
}

/// An OCI image layout written by hand (registry.rs's builder), holding busybox images.
struct Layout(LayoutBuilder);

impl Layout {
    fn new(dir: &Path) -> Layout {
        Layout(LayoutBuilder::new(dir))
    }

    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        self.0.blob(media_type, bytes)
    }

    /// A gzip layer with busybox, its applets as links, and `/www/index.html` saying `page`;
    /// (descriptor, diff ID).
    fn busybox_layer(&self, page: &str, docker_media: bool) -> (Value, String) {
        let mut tar = tar::Builder::new(Vec::new());
        let dir = |tar: &mut tar::Builder<Vec<u8>>, p: &str| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(1_700_000_000);
            tar.append_data(&mut h, p, std::io::empty()).unwrap();
        };
        dir(&mut tar, "bin/");
        dir(&mut tar, "www/");
        let bin = fs::read(BUSYBOX).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(bin.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, "bin/busybox", &bin[..]).unwrap();
        for applet in ["sh", "httpd", "cat", "sleep", "env"] {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_mtime(1_700_000_000);
            tar.append_link(&mut h, format!("bin/{applet}"), "busybox").unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(page.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, "www/index.html", page.as_bytes()).unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let media = if docker_media { "application/vnd.docker.image.rootfs.diff.tar.gzip" } else { "application/vnd.oci.image.layer.v1.tar+gzip" };
        (self.blob(media, &gz.finish().unwrap()), format!("sha256:{}", sha256_hex(&raw)))
    }

    /// An image manifest for `arch` (config labelled `label`, so each test's image ID is its
    /// own); (manifest descriptor with platform, config digest).
    fn image(&self, arch: &str, label: &str, page: &str, docker_media: bool) -> (Value, String) {
        let (layer, diff_id) = self.busybox_layer(page, docker_media);
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"airlock.test": label}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let config_media = if docker_media { "application/vnd.docker.container.image.v1+json" } else { "application/vnd.oci.image.config.v1+json" };
        let config = self.blob(config_media, serde_json::to_string(&config).unwrap().as_bytes());
        let config_digest = config["digest"].as_str().unwrap().to_string();
        let media = if docker_media { DOCKER_MANIFEST } else { OCI_MANIFEST };
        let manifest = json!({"schemaVersion": 2, "mediaType": media, "config": config, "layers": [layer]});
        let mut d = self.blob(media, serde_json::to_string(&manifest).unwrap().as_bytes());
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        (d, config_digest)
    }

    /// An index of `manifests` (plus, with `absent_arch`, a manifest for that platform that
    /// the layout does not hold, as image_cache leaves unwanted platforms).
    fn index(&self, manifests: &[&Value], absent_arch: Option<&str>, docker_media: bool) -> Value {
        let mut list: Vec<Value> = manifests.iter().map(|m| (*m).clone()).collect();
        if let Some(arch) = absent_arch {
            list.push(json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "e".repeat(64)), "size": 1234, "platform": {"architecture": arch, "os": "linux"}}));
        }
        let media = if docker_media { DOCKER_LIST } else { OCI_INDEX };
        self.blob(media, serde_json::to_string(&json!({"schemaVersion": 2, "mediaType": media, "manifests": list})).unwrap().as_bytes())
    }

    /// Names `desc` `reference` in index.json, as image_cache does.
    fn tag(&mut self, reference: &str, desc: &Value) {
        self.0.tag(reference, desc);
    }
}

/// Writes a layer (uncompressed tar) holding one file of `size` zero bytes into `layout`
/// without holding it in memory; its descriptor (digest = diff ID).
fn big_layer(layout: &Path, size: u64) -> Value {
    struct Hashing(fs::File, sha2::Sha256, u64);
    impl Write for Hashing {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = self.0.write(b)?;
            self.1.update(&b[..n]);
            self.2 += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }
    let tmp = layout.join("blobs/sha256/big.partial");
    let mut tar = tar::Builder::new(Hashing(fs::File::create(&tmp).unwrap(), sha2::Sha256::new(), 0));
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    tar.append_data(&mut h, "big.bin", std::io::repeat(0).take(size)).unwrap();
    let Hashing(_, hasher, len) = tar.into_inner().unwrap();
    let hex = hex::encode(hasher.finalize());
    fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{hex}"), "size": len})
}

/// The image's ID and tags, or None.
fn inspect_image(name: &str) -> Option<(String, Vec<String>)> {
    let (ok, out, _) = docker(&["image", "inspect", name]);
    if !ok {
        return None;
    }
    let v: Value = serde_json::from_str(&out).unwrap();
    let id = v[0]["Id"].as_str().unwrap().to_string();
    let tags = v[0]["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    Some((id, tags))
}

/// The container's inspect data, or None.
fn inspect_container(name: &str) -> Option<Value> {
    let (ok, out, _) = docker(&["container", "inspect", name]);
    ok.then(|| serde_json::from_str::<Value>(&out).unwrap()[0].clone())
}

/// The failure message of the first failed task.
fn fatal(r: &Run) -> String {
    r.stdout.lines().find(|l| l.contains("FAILED!")).unwrap_or_else(|| panic!("no failed task\n{}\n{}", r.stdout, r.stderr)).to_string()
}

/// A layout in `dir` with a busybox image named `reference`; its config digest.
fn simple_layout(dir: &Path, reference: &str, label: &str) -> String {
    let mut l = Layout::new(dir);
    let (m, config) = l.image(&engine_arch(), label, "hello from airlock\n", false);
    l.tag(reference, &m);
    config
}

#[test]
fn loads_from_oci_layouts_single_and_multi_arch_and_reruns_are_ok() {
    let n = Names::new("oci");
    let p = Project::new();
    let arch = engine_arch();
    let other = if arch == "amd64" { "arm64" } else { "amd64" };
    let mut l = Layout::new(&p.path("images"));
    let (single, single_cfg) = l.image(&arch, &n.prefix, "single\n", false);
    l.tag(&format!("docker.io/{}:1.0", n.image("single")), &single);
    // A multi-arch OCI index whose other platform the layout does not hold.
    let (m_oci, multi_cfg) = l.image(&arch, &format!("{}-multi", n.prefix), "multi\n", false);
    let idx = l.index(&[&m_oci], Some(other), false);
    l.tag(&format!("docker.io/{}:2.0", n.image("multi")), &idx);
    // Docker media types, named for a local registry.
    let (m_docker, docker_cfg) = l.image(&arch, &format!("{}-docker", n.prefix), "docker\n", true);
    let list = l.index(&[&m_docker], Some(other), true);
    let local = format!("127.0.0.1:5000/{}", n.image("reg"));
    l.tag(&format!("{local}:3.0"), &list);

    let pb = format!(
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - name: short name, single manifest
      community.docker.docker_image:
        name: {single}
        tag: "1.0"
        source: load
        load_path: "{{{{ playbook_dir }}}}/images"
      register: s
    - name: full name with tag, OCI index
      docker_image:
        name: docker.io/{multi}:2.0
        source: load
        load_path: "{{{{ playbook_dir }}}}/images"
      register: m
    - name: local registry name, Docker manifest list
      docker_image:
        name: {local}:3.0
        source: load
        load_path: images
      register: d
    - debug:
        msg: "{{{{ s.image.Id }}}} {{{{ m.image.Id }}}} {{{{ d.image.Id }}}} {{{{ s.image.RepoTags | join(',') }}}}"
"#,
        single = n.image("single"),
        multi = n.image("multi"),
    );
    p.file("load.yml", &pb);
    let r = p.playbook("load.yml", &[]);
    r.success();
    assert_eq!(r.recap("localhost").changed, 3, "{}", r.stdout);
    r.has(&format!("\"{single_cfg} {multi_cfg} {docker_cfg} {}:1.0\"", n.image("single")));
    // The image IDs are the config digests, and the images run.
    assert_eq!(inspect_image(&format!("{}:1.0", n.image("single"))).unwrap().0, single_cfg);
    assert_eq!(inspect_image(&format!("{}:2.0", n.image("multi"))).unwrap().0, multi_cfg);
    let (id, tags) = inspect_image(&format!("{local}:3.0")).unwrap();
    assert_eq!((id, tags), (docker_cfg, vec![format!("{local}:3.0")]));
    let (ok, out, err) = docker(&["run", "--rm", &format!("{}:2.0", n.image("multi")), "cat", "/www/index.html"]);
    assert!(ok, "{err}");
    assert_eq!(out, "multi");

    let again = p.playbook("load.yml", &[]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "a rerun loads nothing: {}", again.stdout);
}

#[test]
fn an_image_missing_from_the_layout_or_its_platform_is_a_clear_error() {
    let n = Names::new("missing");
    let p = Project::new();
    let present = format!("docker.io/{}:1", n.image("present"));
    simple_layout(&p.path("images"), &present, &n.prefix);
    // An index with only another platform's manifest.
    let mut l = Layout::new(&p.path("foreign"));
    let idx = l.index(&[], Some("s390x"), false);
    l.tag("docker.io/library/foreign:1", &idx);
    p.file(
        "missing.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {}:9\n        source: load\n        load_path: images\n",
            n.image("absent")
        ),
    );
    let r = p.playbook("missing.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("image docker.io/{}:9 is not in the OCI layout", n.image("absent"))), "{msg}");
    assert!(msg.contains(&format!("it holds: {present}")), "{msg}");
    assert!(inspect_image(&format!("{}:9", n.image("absent"))).is_none());

    p.file(
        "foreign.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: foreign:1\n        source: load\n        load_path: foreign\n",
    );
    let r = p.playbook("foreign.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("has no manifest for linux/{}", engine_arch())) && msg.contains("it has linux/s390x"), "{msg}");
}

#[test]
fn loads_a_docker_save_archive_idempotently_and_removes_it() {
    let n = Names::new("archive");
    let p = Project::new();
    let name = format!("{}:1", n.image("saved"));
    let config = simple_layout(&p.path("images"), &format!("docker.io/{name}"), &n.prefix);
    let yml = |src: &str, state: &str| {
        format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {name}\n        source: load\n        load_path: {src}\n        state: {state}\n      register: r\n    - debug: var=r.actions\n"
        )
    };
    p.file("oci.yml", &yml("images", "present"));
    p.playbook("oci.yml", &[]).success();
    let tar = p.path("saved.tar");
    let (ok, _, err) = docker(&["save", "-o", tar.to_str().unwrap(), &name]);
    assert!(ok, "{err}");
    let (ok, _, err) = docker(&["rmi", &name]);
    assert!(ok, "{err}");

    p.file("tar.yml", &yml("saved.tar", "present"));
    let r = p.playbook("tar.yml", &[]);
    r.success().has("Loaded image");
    assert_eq!(r.recap("localhost").changed, 1);
    assert_eq!(inspect_image(&name).unwrap().0, config);
    let again = p.playbook("tar.yml", &[]);
    assert_eq!(again.success().recap("localhost").changed, 0, "{}", again.stdout);

    // A name the archive does not hold.
    p.file("other.yml", &yml("saved.tar", "present").replace(&name, &format!("{}:2", n.image("saved"))));
    let r = p.playbook("other.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("does not contain image {}:2", n.image("saved"))) && msg.contains(&name), "{msg}");

    // Check mode removes nothing; state: absent removes the tag.
    p.file("absent.yml", &yml("saved.tar", "absent"));
    let r = p.playbook("absent.yml", &["--check"]);
    assert_eq!(r.success().recap("localhost").changed, 1);
    assert!(inspect_image(&name).is_some(), "check mode removed the image");
    assert_eq!(p.playbook("absent.yml", &[]).success().recap("localhost").changed, 1);
    assert!(inspect_image(&name).is_none());
    assert_eq!(p.playbook("absent.yml", &[]).success().recap("localhost").changed, 0);
}

#[test]
fn check_mode_loads_nothing() {
    let n = Names::new("check");
    let p = Project::new();
    let name = format!("{}:1", n.image("app"));
    simple_layout(&p.path("images"), &format!("docker.io/{name}"), &n.prefix);
    p.file("load.yml", &format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {name}\n        source: load\n        load_path: images\n      register: r\n    - debug: var=r.actions\n"));
    let r = p.playbook("load.yml", &["--check"]);
    r.success().has(&format!("Loaded image {name} from images"));
    assert_eq!(r.recap("localhost").changed, 1);
    assert!(inspect_image(&name).is_none(), "check mode loaded the image");
}

/// A playbook running busybox httpd from `image`, serving `www` on 127.0.0.1:`port`.
fn web_playbook(container: &str, image: &str, port: u16, greeting: &str, extra: &str) -> String {
    format!(
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - community.docker.docker_container:
        name: {container}
        image: {image}
        command: httpd -f -p 8080 -h /www
        published_ports:
          - "127.0.0.1:{port}:8080/tcp"
        volumes:
          - "{{{{ playbook_dir }}}}/www:/www:ro"
        env:
          GREETING: "{greeting}"
        labels:
          airlock.test: "yes"
        restart_policy: "no"
        stop_timeout: 1
        pull: false
{extra}      register: c
    - debug:
        msg: "{{{{ c.container.Name }}}} {{{{ c.container.State.Status }}}} {{{{ c.container.Id }}}}"
"#
    )
}

fn curl(port: u16) -> String {
    for _ in 0..50 {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", &format!("http://127.0.0.1:{port}/")])
            .output()
            .expect("curl runs (bash .ci/setup-docker installs it)");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing answers on 127.0.0.1:{port}");
}

#[test]
fn a_container_serves_stays_put_and_is_recreated_on_change() {
    let n = Names::new("web");
    let p = Project::new();
    let image = format!("{}:1", n.image("web"));
    simple_layout(&p.path("images"), &format!("docker.io/{image}"), &n.prefix);
    p.file(
        "load.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {image}\n        source: load\n        load_path: images\n"
        ),
    );
    p.playbook("load.yml", &[]).success();
    p.file("www/index.html", "served from a volume\n");
    let container = n.container("web");
    let port = free_port();

    p.file("web.yml", &web_playbook(&container, &image, port, "hello", ""));
    let r = p.playbook("web.yml", &[]);
    assert_eq!(r.success().recap("localhost").changed, 1);
    r.has(&format!("/{container} running"));
    assert_eq!(curl(port), "served from a volume\n");
    let id = inspect_container(&container).unwrap()["Id"].as_str().unwrap().to_string();

    let again = p.playbook("web.yml", &[]);
    assert_eq!(again.success().recap("localhost").changed, 0, "{}", again.stdout);
    assert_eq!(inspect_container(&container).unwrap()["Id"], id.as_str());

    // Check mode with a change: reported, nothing done.
    p.file("env.yml", &web_playbook(&container, &image, port, "changed", ""));
    let r = p.playbook("env.yml", &["--check", "--diff"]);
    assert_eq!(r.success().recap("localhost").changed, 1);
    r.has("-    \"GREETING=hello\"").has("+    \"GREETING=changed\"");
    assert_eq!(inspect_container(&container).unwrap()["Id"], id.as_str(), "check mode re-created the container");

    // A changed env re-creates it.
    let r = p.playbook("env.yml", &[]);
    assert_eq!(r.success().recap("localhost").changed, 1);
    let c = inspect_container(&container).unwrap();
    assert_ne!(c["Id"], id.as_str());
    assert!(c["Config"]["Env"].as_array().unwrap().contains(&json!("GREETING=changed")), "{c:#}");
    assert_eq!(curl(port), "served from a volume\n");

    // A changed port re-creates it on the new port.
    let port2 = free_port();
    p.file("port.yml", &web_playbook(&container, &image, port2, "changed", ""));
    let r = p.playbook("port.yml", &[]);
    assert_eq!(r.success().recap("localhost").changed, 1);
    assert_eq!(curl(port2), "served from a volume\n");
    assert_eq!(p.playbook("port.yml", &[]).success().recap("localhost").changed, 0);

    // Stopped, then started again, then removed.
    p.file("stopped.yml", &web_playbook(&container, &image, port2, "changed", "        state: stopped\n"));
    assert_eq!(p.playbook("stopped.yml", &[]).success().recap("localhost").changed, 1);
    assert_eq!(inspect_container(&container).unwrap()["State"]["Running"], false);
    assert_eq!(p.playbook("port.yml", &[]).success().recap("localhost").changed, 1);
    assert_eq!(curl(port2), "served from a volume\n");
    p.file("absent.yml", &format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: {container}\n        state: absent\n        stop_timeout: 1\n"));
    assert_eq!(p.playbook("absent.yml", &["--check"]).success().recap("localhost").changed, 1);
    assert!(inspect_container(&container).is_some(), "check mode removed the container");
    assert_eq!(p.playbook("absent.yml", &[]).success().recap("localhost").changed, 1);
    assert!(inspect_container(&container).is_none());
    assert_eq!(p.playbook("absent.yml", &[]).success().recap("localhost").changed, 0);
}

#[test]
fn a_taken_port_names_the_process_or_container_and_leaves_nothing_behind() {
    let n = Names::new("taken");
    let p = Project::new();
    let image = format!("{}:1", n.image("web"));
    simple_layout(&p.path("images"), &format!("docker.io/{image}"), &n.prefix);
    p.file(
        "load.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {image}\n        source: load\n        load_path: images\n"
        ),
    );
    p.playbook("load.yml", &[]).success();
    p.file("www/index.html", "x\n");

    // A process of ours holds the port.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let container = n.container("blocked");
    p.file("web.yml", &web_playbook(&container, &image, port, "hello", ""));
    let r = p.playbook("web.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    let me = std::process::id();
    let comm = fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
    assert!(msg.contains(&format!("port {port} is already in use by process {} (pid {me})", comm.trim())), "{msg}");
    let (_, left, _) = docker(&["ps", "-a", "--filter", &format!("name={container}"), "--format", "{{.Names}}"]);
    assert_eq!(left, "", "a container was left behind");
    drop(listener);

    // Another container holds it.
    let first = n.container("first");
    p.file("first.yml", &web_playbook(&first, &image, port, "hello", ""));
    p.playbook("first.yml", &[]).success();
    let r = p.playbook("web.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("port {port} is already in use by container '{first}'")), "{msg}");
    assert!(inspect_container(&container).is_none(), "a container was left behind");
}

#[test]
fn images_never_pulled_and_values_checked() {
    let n = Names::new("refuse");
    let p = Project::new();
    let container = n.container("c");
    p.file(
        "missing.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: {container}\n        image: {}:1\n",
            n.image("nowhere")
        ),
    );
    let r = p.playbook("missing.yml", &[]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("image {}:1 is not in Docker; load it first with docker_image (source: load", n.image("nowhere"))), "{msg}");

    p.file("pull.yml", &format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: {container}\n        image: busybox\n        pull: always\n"));
    let msg = fatal(p.playbook("pull.yml", &[]).code(2));
    assert!(msg.contains("pull: always is not supported: airlock never pulls"), "{msg}");

    p.file("env.yml", &format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: {container}\n        image: busybox\n        env:\n          PORT: 5000\n"));
    let msg = fatal(p.playbook("env.yml", &[]).code(2));
    assert!(msg.contains("Non-string value found for env option") && msg.contains("Key: PORT"), "{msg}");
    assert!(inspect_container(&container).is_none());
}

#[test]
fn a_dead_docker_host_is_a_clear_error() {
    let p = Project::new();
    p.file("pb.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: registry:2\n        source: local\n");
    let exe = Path::new(env!("CARGO_BIN_EXE_airlock"));
    let args = ["playbook", "-i", "localhost,", "pb.yml"];
    // A socket file nobody listens on.
    let sock = p.path("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let host = format!("unix://{}", sock.display());
    let r = p.command(exe, &args, &[("DOCKER_HOST", &host)]);
    r.code(2);
    let msg = fatal(&r);
    assert!(msg.contains(&format!("Docker is not running at {host}")) && msg.contains("systemctl start docker"), "{msg}");
    // No socket at all, and a TCP port nobody listens on.
    let gone = format!("unix://{}", p.path("gone.sock").display());
    let msg = fatal(p.command(exe, &args, &[("DOCKER_HOST", &gone)]).code(2));
    assert!(msg.contains(&format!("Docker is not running at {gone}: the socket")) && msg.contains("does not exist"), "{msg}");
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let msg = fatal(p.command(exe, &args, &[("DOCKER_HOST", &tcp)]).code(2));
    assert!(msg.contains(&format!("Docker is not running at {tcp}")), "{msg}");
}

#[test]
fn tags_and_pushes_to_a_local_registry_through_the_engine() {
    let n = Names::new("push");
    let reg = registry::Registry::start();
    let p = Project::new();
    let image = format!("{}:1", n.image("app"));
    let config = simple_layout(&p.path("images"), &format!("docker.io/{image}"), &n.prefix);
    let repo_path = format!("{}/pushed", n.prefix);
    let target = format!("{}/{repo_path}", reg.host());
    p.file(
        "push.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {image}\n        source: load\n        load_path: images\n        repository: {target}\n        tag: \"7\"\n        push: true\n      register: r\n    - debug: var=r.actions\n"
        ),
    );
    let r = p.playbook("push.yml", &[]);
    r.success().has(&format!("Tagged image {image} to {target}:1")).has(&format!("Pushed image {target}:1"));
    assert_eq!(r.recap("localhost").changed, 1);
    assert_eq!(inspect_image(&format!("{target}:1")).unwrap().0, config);
    // The registry serves it, with the same config.
    let manifest: Value = serde_json::from_slice(&reg.raw_manifest(&format!("{repo_path}:1"))).unwrap();
    assert_eq!(manifest["config"]["digest"], config.as_str(), "{manifest:#}");
    let again = p.playbook("push.yml", &[]);
    assert_eq!(again.success().recap("localhost").changed, 0, "the registry has every layer: {}", again.stdout);
}

#[test]
fn loading_streams_the_archive_in_little_memory() {
    let n = Names::new("stream");
    let p = Project::new();
    let dir = p.path("images");
    let mut l = Layout::new(&dir);
    const SIZE: u64 = 192 << 20;
    let layer = big_layer(&dir, SIZE);
    let cfg = json!({"architecture": engine_arch(), "os": "linux", "config": {"Labels": {"airlock.test": n.prefix}}, "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}});
    let cfg = l.blob("application/vnd.oci.image.config.v1+json", serde_json::to_string(&cfg).unwrap().as_bytes());
    let manifest = l.blob(
        OCI_MANIFEST,
        serde_json::to_string(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": [layer]})).unwrap().as_bytes(),
    );
    let name = format!("{}:big", n.image("big"));
    l.tag(&format!("docker.io/{name}"), &manifest);
    p.file(
        "load.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - docker_image:\n        name: {name}\n        source: load\n        load_path: images\n"
        ),
    );

    // Reaped by wait4 below, which std's Child cannot do.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["playbook", "-i", "localhost,", "load.yml"])
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", p.dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait4 gives this child's own peak memory.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the load failed (status {status})");
    assert_eq!(inspect_image(&name).unwrap().0, cfg["digest"].as_str().unwrap());
    let peak_mib = usage.ru_maxrss as u64 / 1024;
    assert!(peak_mib < 64, "airlock peaked at {peak_mib} MiB loading a {} MiB layer: the archive is not streamed", SIZE >> 20);
}

#[test]
fn loads_docker_typed_images_that_image_cache_pulled() {
    let n = Names::new("dockertyped");
    let reg = registry::Registry::start();
    let p = Project::new();
    let arch = engine_arch();
    // Upstream: busybox images pushed with Docker media types, one a manifest list.
    let mut l = Layout::new(&p.path("upstream"));
    let (single, single_cfg) = l.image(&arch, &format!("{}-single", n.prefix), "single\n", false);
    l.tag("single", &single);
    let (m, multi_cfg) = l.image(&arch, &format!("{}-multi", n.prefix), "multi\n", false);
    let idx = l.index(&[&m], None, false);
    l.tag("multi", &idx);
    reg.push(&p.path("upstream"), "single", &format!("{}/single:1", n.prefix), Some("v2s2"));
    reg.push(&p.path("upstream"), "multi", &format!("{}/multi:2", n.prefix), Some("v2s2"));
    let (single_ref, multi_ref) = (format!("{}/{}/single:1", reg.host(), n.prefix), format!("{}/{}/multi:2", reg.host(), n.prefix));
    let list: Value = serde_json::from_slice(&reg.raw_manifest(&format!("{}/multi:2", n.prefix))).unwrap();
    assert_eq!(list["mediaType"], DOCKER_LIST);

    p.file("docker-config.json", "{}");
    p.file(
        "load.yml",
        &format!(
            r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - image_cache:
        images: ["{single_ref}", "{multi_ref}"]
        dest: "{{{{ playbook_dir }}}}/cache/docker-images"
        platforms: [linux/{arch}]
        docker_config: "{{{{ playbook_dir }}}}/docker-config.json"
    - docker_image:
        name: {single_ref}
        source: load
        load_path: cache/docker-images
      register: s
    - docker_image:
        name: {multi_ref}
        source: load
        load_path: cache/docker-images
      register: m
    - debug:
        msg: "{{{{ s.image.Id }}}} {{{{ m.image.Id }}}}"
"#
        ),
    );
    let r = p.playbook("load.yml", &[]);
    r.success().has(&format!("\"{single_cfg} {multi_cfg}\""));
    // The layout names both by their OCI-typed forms, upstream's manifests in annotations.
    let index: Value = serde_json::from_slice(&fs::read(p.path("cache/docker-images/index.json")).unwrap()).unwrap();
    for e in index["manifests"].as_array().unwrap() {
        let upstream = e["annotations"]["io.airlock.upstream.mediaType"].as_str().unwrap_or_else(|| panic!("{e:#}"));
        assert!([DOCKER_LIST, DOCKER_MANIFEST].contains(&upstream), "{e:#}");
        assert!([OCI_INDEX, OCI_MANIFEST].contains(&e["mediaType"].as_str().unwrap()), "{e:#}");
    }
    // The image IDs are the config digests, and the images run.
    assert_eq!(inspect_image(&single_ref).unwrap().0, single_cfg);
    assert_eq!(inspect_image(&multi_ref).unwrap().0, multi_cfg);
    for (image, page) in [(&single_ref, "single"), (&multi_ref, "multi")] {
        let (ok, out, err) = docker(&["run", "--rm", image, "cat", "/www/index.html"]);
        assert!(ok, "{err}");
        assert_eq!(out, page);
    }
    let again = p.playbook("load.yml", &[]);
    assert_eq!(again.success().recap("localhost").changed, 0, "a rerun pulls and loads nothing: {}", again.stdout);
}

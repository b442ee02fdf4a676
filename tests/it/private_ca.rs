//! Upstreams behind a site's private CA, and a registry that rate-limits: the download modules
//! and the shipped role against a registry shaped like Docker Hub (tests/it/support/hub.rs: token
//! realm on another host, blobs redirected to a CDN that refuses an `Authorization` header, 429
//! with `Retry-After`, all over HTTPS with a private CA) and `airlock serve` over HTTPS with the
//! same CA standing in for the Yum, PyPI, Helm and file upstreams. Needs `.ci/setup-registry`,
//! `.ci/setup-hosts`, `.ci/setup-yum`, `.ci/setup-pypi` and `.ci/setup-helm`.

use std::path::Path;
use std::time::Duration;

use crate::support::hub::{Hub, Pki};
use crate::support::registry::Images;
use crate::support::{Project, Run, helm_client, hub, pypiserver, serve, sha256_hex, upstreams, yumfix};

/// A hub with `test/app:v1` (Docker schema 2, as many Docker Hub images still are) and
/// `test/multi:v1` (an OCI index of amd64 and arm64).
fn hub_with_images(pki: &Pki) -> (Hub, tempfile::TempDir) {
    let hub = Hub::start(pki);
    let dir = tempfile::tempdir().unwrap();
    let images = Images::build(dir.path());
    hub.push(images.dir(), "app", "test/app:v1", Some("v2s2"));
    hub.push(images.dir(), "multi", "test/multi:v1", None);
    (hub, dir)
}

/// A playbook with one image_cache task pulling both images into `dest`, with `extra`
/// arguments (YAML lines, indented for the task's arguments).
fn image_play(hub: &Hub, dest: &Path, extra: &str) -> String {
    format!(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: Pull from the hub\n      image_cache:\n        images:\n          - {h}/test/app:v1\n          - {h}/test/multi:v1\n        platforms: [linux/amd64, linux/arm64]\n        dest: \"{d}\"\n{extra}",
        h = hub.host(),
        d = dest.display()
    )
}

fn output(r: &Run) -> String {
    format!("{}\n{}", r.stdout, r.stderr)
}

/// The tag's manifest in the layout is the registry's, byte for byte.
fn assert_pulled(hub: &Hub, layout: &Path) {
    for (name, tag) in [("test/app", "v1"), ("test/multi", "v1")] {
        let upstream = hub.raw_manifest(&format!("{name}:{tag}"));
        let blob = layout.join("blobs/sha256").join(sha256_hex(&upstream));
        assert_eq!(std::fs::read(&blob).ok().as_deref(), Some(&upstream[..]), "{name}:{tag}: upstream's manifest is in the layout");
    }
}

#[test]
fn image_cache_trusts_a_private_ca_in_each_documented_way_and_says_how_when_it_does_not() {
    let pki = Pki::new();
    let (hub, _images) = hub_with_images(&pki);
    let p = Project::new();

    // Nothing trusted: the first request fails on the certificate, once (no retry), naming the
    // host and every way to trust its CA, and not insecure_registries (plain HTTP).
    p.file("none.yml", &image_play(&hub, &p.path("none"), ""));
    let r = p.playbook("none.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    let out = output(&r);
    let host = hub.host();
    assert!(out.contains(&format!("the certificate of {host} is not trusted (signed by an unknown CA)")), "{out}");
    for fix in ["ca_path", "host_ca_paths", "download_ca_path", &format!("/etc/docker/certs.d/{host}/ca.crt"), "SSL_CERT_FILE"] {
        assert!(out.contains(fix), "the message names {fix}:\n{out}");
    }
    assert!(!out.contains("insecure_registries"), "a certificate problem is no reason for plain HTTP:\n{out}");
    assert!(!out.contains("waiting"), "not retried:\n{out}");
    assert!(hub.connections("registry") <= 2, "one attempt per image, no retries: {}", hub.connections("registry"));
    assert!(hub.seen().is_empty(), "no request got through the handshake");

    // ca_path: trusted for every host (registry, token realm, CDN).
    hub.clear();
    p.file("ca_path.yml", &image_play(&hub, &p.path("ca_path"), &format!("        ca_path: \"{}\"\n", pki.ca.display())));
    let r = p.playbook("ca_path.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("ca_path"));
    let seen = hub.seen();
    assert!(seen.iter().any(|s| s.server == "auth"), "a token came from the realm on the other host: {seen:?}");
    let cdn: Vec<_> = seen.iter().filter(|s| s.server == "cdn").collect();
    assert!(!cdn.is_empty(), "blobs came from the CDN: {seen:?}");
    assert!(cdn.iter().all(|s| !s.authorization && s.status == 200), "the registry's token never crossed to the CDN: {cdn:?}");
    assert!(seen.iter().filter(|s| s.server == "registry" && s.target.contains("/blobs/")).all(|s| s.status == 307), "{seen:?}");

    // host_ca_paths: per host; the CDN is reached by a redirect from the registry, whose CA
    // goes with it.
    p.file(
        "hosts.yml",
        &image_play(
            &hub,
            &p.path("hosts"),
            &format!("        host_ca_paths:\n          \"{}\": \"{ca}\"\n          \"{}\": \"{ca}\"\n", hub.host(), hub.auth_host(), ca = pki.ca.display()),
        ),
    );
    let r = p.playbook("hosts.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("hosts"));

    // Keyed by host alone, without the port, as well.
    p.file(
        "hostonly.yml",
        &image_play(
            &hub,
            &p.path("hostonly"),
            &format!(
                "        host_ca_paths:\n          \"{}\": \"{ca}\"\n          \"{}\": \"{ca}\"\n",
                hub::REGISTRY_HOST,
                hub::AUTH_HOST,
                ca = pki.ca.display()
            ),
        ),
    );
    let r = p.playbook("hostonly.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("hostonly"));

    // A CA given for another host does not make this one trusted.
    p.file("other.yml", &image_play(&hub, &p.path("other"), &format!("        host_ca_paths:\n          \"{}\": \"{}\"\n", hub.cdn_host(), pki.ca.display())));
    let r = p.playbook("other.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert!(output(&r).contains("is not trusted"), "{}", output(&r));

    // Docker's certs.d for the registry (the token realm on its own host is named too).
    let certs = p.path("certs.d");
    std::fs::create_dir_all(certs.join(hub.host())).unwrap();
    std::fs::copy(&pki.ca, certs.join(hub.host()).join("ca.crt")).unwrap();
    p.file(
        "certsd.yml",
        &image_play(
            &hub,
            &p.path("certsd"),
            &format!(
                "        docker_certs_dir: \"{}\"\n        host_ca_paths:\n          \"{}\": \"{}\"\n",
                certs.display(),
                hub.auth_host(),
                pki.ca.display()
            ),
        ),
    );
    let r = p.playbook("certsd.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("certsd"));

    // SSL_CERT_FILE: the system's bundle with the CA added, as OpenSSL users do.
    p.file("env.yml", &image_play(&hub, &p.path("env"), ""));
    let bundle = pki.bundle_with_system();
    let r = p.command(Path::new(env!("CARGO_BIN_EXE_airlock")), &["playbook", "-i", "localhost,", "env.yml"], &[("SSL_CERT_FILE", bundle.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("env"));

    // A ca_path that is not a certificate fails naming it.
    p.file("bad.pem", "not a certificate\n");
    p.file("bad.yml", &image_play(&hub, &p.path("bad"), &format!("        ca_path: \"{}\"\n", p.path("bad.pem").display())));
    let r = p.playbook("bad.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert!(output(&r).contains("bad.pem holds no certificate"), "{}", output(&r));
    assert!(!p.path("bad").exists(), "nothing written");
}

#[test]
fn a_rate_limited_registry_is_waited_for_as_its_retry_after_asks_up_to_a_cap() {
    let pki = Pki::new();
    let (hub, _images) = hub_with_images(&pki);
    let p = Project::new();
    let ca = format!("        ca_path: \"{}\"\n", pki.ca.display());

    // Two 429s asking for 2 s each: waited for, said on the output, then the pull goes on.
    hub.rate_limit(2, "2");
    p.file("wait.yml", &image_play(&hub, &p.path("wait"), &ca));
    let r = p.playbook("wait.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert_pulled(&hub, &p.path("wait"));
    assert_eq!(r.stderr.matches("HTTP 429 Too Many Requests; waiting 2.0 s as its Retry-After asks (retry 1 of 3)").count(), 2, "{}", r.stderr);
    let manifests: Vec<_> = hub.seen().into_iter().filter(|s| s.server == "registry" && s.method == "GET" && s.target.contains("/manifests/")).collect();
    let limited: Vec<_> = manifests.iter().filter(|s| s.status == 429).collect();
    assert_eq!(limited.len(), 2, "{manifests:?}");
    let next = manifests.iter().find(|s| s.status == 200 && s.at > limited[1].at).expect("a manifest came after the limit");
    assert!(next.at.duration_since(limited[1].at) >= Duration::from_millis(1900), "the next request waited for Retry-After: {manifests:?}");

    // An HTTP-date Retry-After is honoured too.
    hub.clear();
    hub.rate_limit(1, &httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2)));
    p.file("date.yml", &image_play(&hub, &p.path("date"), &ca));
    let r = p.playbook("date.yml", &[]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert!(r.stderr.contains("as its Retry-After asks (retry 1 of 3)"), "{}", r.stderr);

    // Asked to wait an hour: airlock does not hang; it fails at once, saying why and what to do.
    hub.clear();
    hub.rate_limit(1, "3600");
    p.file("hour.yml", &image_play(&hub, &p.path("hour"), &ca));
    let r = p.playbook("hour.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    let out = output(&r);
    assert!(
        out.contains("is rate-limiting pulls") && out.contains("asks to wait 3600 s (Retry-After), longer than airlock waits (300 s): retry later"),
        "{out}"
    );
    assert_eq!(hub.seen().iter().filter(|s| s.status == 429).count(), 1, "given up at once");

    // retries: 0 gives up on the first 429.
    hub.clear();
    hub.rate_limit(1, "1");
    p.file("noretry.yml", &image_play(&hub, &p.path("noretry"), &format!("{ca}        retries: 0\n")));
    let r = p.playbook("noretry.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert!(output(&r).contains("is rate-limiting pulls (HTTP 429 Too Many Requests)"), "{}", output(&r));
}

/// The other upstreams over HTTPS with the private CA: `airlock serve` with the test
/// certificate, serving a Yum repository, real wheels, charts and a file.
struct TlsMirror {
    _root: tempfile::TempDir,
    serve: serve::Serve,
    _yum: yumfix::Upstream,
    kubectl: Vec<u8>,
}

impl TlsMirror {
    fn start(pki: &Pki) -> TlsMirror {
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().join("root");
        let yum = yumfix::Upstream::new(&[]);
        copy_tree(&yum.repo(), &root.join("yum/fixture"));
        let stable = root.join("helm/stable");
        std::fs::create_dir_all(&stable).unwrap();
        helm_client::package_simple(&stable, upstreams::CHARTS);
        copy_tree(&pypiserver::fixture(), &root.join("pip"));
        let kubectl = b"#!/bin/sh\necho kubectl from the lab mirror\n".to_vec();
        std::fs::create_dir_all(root.join("misc-files/bin")).unwrap();
        std::fs::write(root.join("misc-files/bin/kubectl"), &kubectl).unwrap();
        let serve = serve::Serve::start_with(
            &root,
            &["--tls-cert", pki.cert.to_str().unwrap(), "--tls-key", pki.key.to_str().unwrap(), "--mirrors", "yum,helm,pip,files"],
        );
        TlsMirror { _root: root_dir, serve, _yum: yum, kubectl }
    }

    fn url(&self, port: u16, path: &str) -> String {
        format!("https://{}:{port}/{path}", hub::MIRROR_HOST)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn build_offline_cache_behind_a_private_ca_takes_the_roles_download_variables() {
    let pki = Pki::new();
    let (hub, _images) = hub_with_images(&pki);
    let mirror = TlsMirror::start(&pki);
    let p = Project::new();
    let cache = p.path("cache");
    let archive = p.path("offline.tar");
    p.file(
        "site.yml",
        &format!(
            r#"offline_cache_dir: "{cache}"
tar_file_path: "{archive}"
download_kubespray_deps: false
mirror_images: []
image_platforms: ["linux/amd64", "linux/arm64"]
docker_image_list:
  - {{name: app, repo: "{reg}/", image: test/app, version: v1}}
  - {{name: multi, repo: "{reg}/", image: test/multi, version: v1}}
yum_repos:
  - {{name: fixture, baseurl: "{yum}"}}
helm_chart_repos:
  - {{name: stable, url: "{helm}"}}
pip_index_url: "{pip}"
pip_package_list:
  - {{name: "requests==2.31.0"}}
pip_python_version: "3.11"
pip_platforms: ["manylinux2014_x86_64"]
misc_files:
  - {{url: "{files}", checksum: "sha256:{sum}"}}
"#,
            cache = cache.display(),
            archive = archive.display(),
            reg = hub.host(),
            yum = mirror.url(mirror.serve.yum, "fixture"),
            helm = mirror.url(mirror.serve.helm, "stable"),
            pip = mirror.url(mirror.serve.pip, "simple/"),
            files = mirror.url(mirror.serve.files, "bin/kubectl"),
            sum = sha256_hex(&mirror.kubectl),
        ),
    );
    let pb = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/build-offline-cache.yml");
    let pb = pb.to_str().unwrap();

    // Without the CA: the first download stops the run with the way out.
    let r = p.airlock(&["playbook", pb, "-e", "@site.yml"]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert!(output(&r).contains("download_ca_path"), "{}", output(&r));
    assert!(!archive.exists());

    // download_retries reaches image_cache: with 0, one 429 fails the run.
    hub.rate_limit(1, "1");
    let ca = format!("download_ca_path={}", pki.ca.display());
    let r = p.airlock(&["playbook", pb, "-e", "@site.yml", "-e", &ca, "-e", "download_retries=0"]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert!(output(&r).contains("rate-limiting pulls"), "{}", output(&r));

    // download_ca_path reaches every module (each would fail on the certificate otherwise), and
    // the default retries ride out a 429.
    hub.rate_limit(1, "1");
    let r = p.airlock(&["playbook", pb, "-e", "@site.yml", "-e", &ca, "-e", "download_timeout=30"]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert!(r.stderr.contains("as its Retry-After asks"), "{}", r.stderr);
    let manifest = String::from_utf8(std::process::Command::new("tar").arg("-xOf").arg(&archive).arg("manifest.json").output().unwrap().stdout).unwrap();
    for kind in ["\"image\"", "\"rpm\"", "\"python\"", "\"chart\"", "\"file\""] {
        assert!(manifest.contains(kind), "the archive holds kind {kind}:\n{manifest}");
    }
    assert_pulled(&hub, &cache.join("docker-images"));

    // A private CA per host works the same through the role.
    let hosts = p.path("hosts.yml");
    std::fs::write(
        &hosts,
        format!(
            "download_host_ca_paths:\n  \"{}\": \"{ca}\"\n  \"{}\": \"{ca}\"\n  \"mirror.airlock.test\": \"{ca}\"\n",
            hub.host(),
            hub.auth_host(),
            ca = pki.ca.display()
        ),
    )
    .unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_file(&archive).unwrap();
    let r = p.airlock(&["playbook", pb, "-e", "@site.yml", "-e", &format!("@{}", hosts.display())]);
    assert_eq!(r.code, 0, "{}", output(&r));
    assert!(archive.is_file());
}

#[test]
fn get_url_and_uri_take_ansibles_ca_path() {
    let pki = Pki::new();
    hub::require_hosts();
    let mirror = TlsMirror::start(&pki);
    let url = mirror.url(mirror.serve.files, "bin/kubectl");
    let p = Project::new();
    p.file(
        "site.yml",
        &format!(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - get_url: {{url: \"{url}\", dest: \"{{{{ playbook_dir }}}}/kubectl\", ca_path: \"{ca}\"}}\n    - uri: {{url: \"{url}\", return_content: true, ca_path: \"{ca}\"}}\n      register: r\n    - assert: {{that: [\"'lab mirror' in r.content\"]}}\n    - get_url: {{url: \"{url}\", dest: \"{{{{ playbook_dir }}}}/untrusted\"}}\n",
            ca = pki.ca.display()
        ),
    );
    let r = p.playbook("site.yml", &[]);
    assert_eq!(r.code, 2, "{}", output(&r));
    assert_eq!(std::fs::read(p.path("kubectl")).unwrap(), mirror.kubectl);
    let out = output(&r);
    assert!(out.contains("ok=3"), "get_url and uri with ca_path worked:\n{out}");
    assert!(out.contains("CERTIFICATE_VERIFY_FAILED") && out.contains("set ca_path to that CA's certificate"), "{out}");
    assert!(!p.path("untrusted").exists());
}

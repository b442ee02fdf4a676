//! build-offline-cache end to end: the shipped playbook against upstreams on 127.0.0.1 that
//! the project did not write (Debian's docker-registry with images pushed by skopeo, a Yum
//! repository of rpmbuild RPMs indexed by createrepo_c, a Helm repository of real charts,
//! plain files), then the archive checked against the upstreams byte for byte.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::upstreams::Upstreams;
use crate::support::{Project, pypiserver, read_request, sha256_hex, tree};

fn playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/build-offline-cache.yml")
}

#[test]
fn build_offline_cache_against_loopback_upstreams() {
    let up = Upstreams::start();
    let (reg, yum, kubectl, files, stable) = (&up.reg, &up.yum, &up.kubectl, &up.files, up.stable());
    let p = Project::new();
    let cache = p.path("cache");
    let archive = p.path("deepops-archive.tar");
    let config = up.config(&cache, &archive, "3.10");
    p.file("config.yml", &config);
    let pb = playbook();
    // --check: what would be downloaded, with the sizes metadata gives, and nothing written.
    let check = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml", "--check", "-v"]);
    check.success();
    check.has("2 image(s)").has(&format!("1 file(s) would be downloaded, {} B", kubectl.len()));
    assert!(!cache.exists() && !archive.exists(), "--check wrote files\n{}", check.stdout);

    let run = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml"]);
    run.success();
    assert!(archive.is_file(), "no archive written\n{}", run.stdout);

    // What --check announced for the images is what the run stored.
    let stored: u64 = std::fs::read_dir(cache.join("docker-images/blobs/sha256")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let line = check.stdout.lines().find(|l| l.contains("2 image(s),")).expect("the image task's result");
    assert!(line.contains(&format!("\"download_size\": {stored}")), "--check announced {line}, the run stored {stored} bytes");

    // The archive verifies and lists every kind.
    p.airlock(&["archive", "verify", archive.to_str().unwrap()]).success();
    let inspect = p.airlock(&["archive", "inspect", archive.to_str().unwrap()]);
    inspect.success();
    for kind in ["blob", "rpm", "repodata", "chart", "file", "python"] {
        inspect.has(kind);
    }

    // Unpacked with GNU tar, it holds the upstreams byte for byte.
    let out = p.path("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    let st = std::process::Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&out).status().unwrap();
    assert!(st.success());
    let unpacked = tree(&out);
    let manifest: serde_json::Value = serde_json::from_slice(&unpacked["manifest.json"]).unwrap();
    assert!(manifest["artifacts"].as_array().unwrap().len() > 10);
    // Everything the repository publishes: its metadata and its packages.
    for (rel, bytes) in tree(&yum.repo()).into_iter().filter(|(r, _)| r.starts_with("repodata/") || r.ends_with(".rpm")) {
        assert_eq!(unpacked.get(&format!("yum/fixture/{rel}")), Some(&bytes), "yum file {rel}");
    }
    for name in ["test/app:v1", "test/multi:v1"] {
        let raw = reg.raw_manifest(name);
        let path = format!("docker-images/blobs/sha256/{}", sha256_hex(&raw));
        assert_eq!(unpacked.get(&path), Some(&raw), "manifest of {name}");
    }
    assert_eq!(unpacked.get("misc-files/kubectl"), Some(kubectl));
    let wheels = pypiserver::fixture();
    for w in [
        "requests-2.31.0-py3-none-any.whl",
        "urllib3-2.0.7-py3-none-any.whl",
        "idna-3.4-py3-none-any.whl",
        "certifi-2023.7.22-py3-none-any.whl",
        "charset_normalizer-3.3.2-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ] {
        assert_eq!(unpacked.get(&format!("pip/{w}")), Some(&std::fs::read(wheels.join(w)).unwrap()), "wheel {w}");
    }
    for (name, version) in [("alpha", "0.1.0"), ("beta", "1.0.0")] {
        let up = std::fs::read(stable.join(format!("{name}-{version}.tgz"))).unwrap();
        assert_eq!(unpacked.get(&format!("helm/stable/{name}-{version}.tgz")), Some(&up));
    }

    // A second run downloads nothing and changes nothing.
    let again = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml"]);
    again.success();
    assert_eq!(again.recap("localhost").changed, 0, "{}", again.stdout);

    // A file whose bytes do not match its checksum: the run fails naming it, and the bad
    // bytes are in neither the cache nor a new archive.
    let before = std::fs::read(&archive).unwrap();
    p.file("bad.yml", &format!("misc_files:\n  - {{url: \"{files}/bad\", checksum: \"sha256:{}\"}}\n", "0".repeat(64)));
    let bad = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml", "-e", "@bad.yml"]);
    bad.code(2).has("/bad").has("checksum");
    assert!(!cache.join("misc-files/bad").exists() && !cache.join("misc-files/bad.part").exists());
    assert_eq!(std::fs::read(&archive).unwrap(), before, "the archive is left as it was");

    // archive verify catches a flipped byte.
    let mut damaged = before.clone();
    let pos = find(&damaged, kubectl).expect("kubectl's bytes are in the plain tar");
    damaged[pos] ^= 0xff;
    let dpath = p.path("damaged.tar");
    std::fs::write(&dpath, &damaged).unwrap();
    let v = p.airlock(&["archive", "verify", dpath.to_str().unwrap()]);
    assert_ne!(v.code, 0);
    assert!(v.stdout.contains("misc-files/kubectl") || v.stderr.contains("misc-files/kubectl"), "{}\n{}", v.stdout, v.stderr);
    let _ = std::fs::File::open(&dpath).unwrap().read(&mut [0u8; 1]);

    // An image taken off the list leaves the layout's index (and so the archive's).
    p.file("fewer.yml", &format!("docker_image_list:\n  - {{name: app, repo: \"{}/\", image: test/app, version: v1}}\n", reg.host()));
    let fewer = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml", "-e", "@fewer.yml", "-v"]);
    fewer.success().has(&format!("\"dropped\": [\"{}/test/multi:v1\"]", reg.host()));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(cache.join("docker-images/index.json")).unwrap()).unwrap();
    let names: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap()).collect();
    assert_eq!(names, [format!("{}/test/app:v1", reg.host())]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A file server that counts requests per path and serves `/big` slowly the first time, so a
/// run can be killed in the middle of that download.
fn counting_server(files: Vec<(&'static str, Vec<u8>)>) -> (String, std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>) {
    use std::io::{BufReader, Write};
    let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let c = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            let c = c.clone();
            std::thread::spawn(move || {
                let Some(request) = read_request(&mut BufReader::new(stream.try_clone().unwrap())) else { return };
                let path = request.target;
                let n = {
                    let mut m = c.lock().unwrap();
                    let e = m.entry(path.clone()).or_insert(0);
                    *e += 1;
                    *e
                };
                let Some((_, body)) = files.iter().find(|(p, _)| *p == path) else {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                };
                let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
                if path == "/big" && n == 1 {
                    // The first time: a trickle, long enough to be interrupted.
                    for chunk in body.chunks(4096) {
                        if stream.write_all(chunk).is_err() {
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                } else {
                    let _ = stream.write_all(body);
                }
            });
        }
    });
    (base, counts)
}

#[test]
fn an_interrupted_run_resumes_fetching_only_what_is_missing() {
    let small1 = b"first small file\n".to_vec();
    let small2 = b"second small file\n".to_vec();
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let (base, counts) = counting_server(vec![("/small1", small1.clone()), ("/small2", small2.clone()), ("/big", big.clone())]);
    let p = Project::new();
    let cache = p.path("cache");
    let archive = p.path("out.tar");
    p.file(
        "config.yml",
        &format!(
            "offline_cache_dir: \"{}\"\ntar_file_path: \"{}\"\ndownload_kubespray_deps: false\ndownload_docker_images: false\nmirror_images: []\nyum_repos: []\npip_package_list: []\nhelm_chart_repos: []\ndownload_concurrency: 1\nmisc_files:\n  - {{url: \"{base}/small1\", checksum: \"sha256:{}\"}}\n  - {{url: \"{base}/small2\", checksum: \"sha256:{}\"}}\n  - {{url: \"{base}/big\", checksum: \"sha256:{}\"}}\n",
            cache.display(),
            archive.display(),
            sha256_hex(&small1),
            sha256_hex(&small2),
            sha256_hex(&big)
        ),
    );
    let pb = playbook();
    // First run: killed (SIGKILL) while /big trickles in.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["playbook", "-i", "localhost,", pb.to_str().unwrap(), "-e", "@config.yml"])
        .current_dir(p.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part = cache.join("misc-files/big.part");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(part.is_file() && std::fs::metadata(&part).map(|m| m.len() > 100_000).unwrap_or(false)) {
        assert!(std::time::Instant::now() < deadline, "the big download never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!cache.join("misc-files/big").exists(), "an unfinished download must not appear under its name");
    assert!(!archive.exists(), "no archive from an interrupted run");
    assert_eq!(std::fs::read(cache.join("misc-files/small1")).unwrap(), small1);

    // The rerun completes, fetching only what was missing.
    let r = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml"]);
    r.success();
    let c = counts.lock().unwrap().clone();
    assert_eq!(c.get("/small1"), Some(&1), "{c:?}");
    assert_eq!(c.get("/small2"), Some(&1), "{c:?}");
    assert_eq!(c.get("/big"), Some(&2), "{c:?}");
    assert_eq!(std::fs::read(cache.join("misc-files/big")).unwrap(), big);
    p.airlock(&["archive", "verify", archive.to_str().unwrap()]).success();
}

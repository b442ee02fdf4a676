//! Every kind of upstream build-offline-cache reads, on 127.0.0.1, from software the project
//! did not write: Debian's docker-registry with images pushed by skopeo (one multi-arch), a
//! Yum repository of rpmbuild RPMs indexed by createrepo_c, pypiserver with real wheels, a
//! Helm repository packaged and indexed by the real Helm (`helm package`, `helm repo index`),
//! and plain files, from the fixtures beside this module.

use std::path::{Path, PathBuf};

use super::registry::{Images, Registry};
use super::{StaticServer, serve_routes, sha256_hex};
use super::{helm_client, pypiserver, registry, yumfix};

/// The charts of the Helm repository `stable`.
pub const CHARTS: &[(&str, &str)] = &[("alpha", "0.1.0"), ("beta", "1.0.0")];

/// The running upstreams; each stops when dropped.
pub struct Upstreams {
    pub reg: Registry,
    _images_dir: tempfile::TempDir,
    pub yum: yumfix::Upstream,
    helm_dir: tempfile::TempDir,
    pub helm: StaticServer,
    pub pypi: pypiserver::Server,
    /// Base URL of the file server (`/bin/kubectl`, and `/bad`, whose bytes match no checksum).
    pub files: String,
    pub kubectl: Vec<u8>,
}

impl Upstreams {
    /// Starts them all, with `test/app:v1` and `test/multi:v1` (amd64 + arm64) in the registry.
    pub fn start() -> Upstreams {
        registry::require_tools();
        yumfix::require_tools();
        let reg = Registry::start();
        let images_dir = tempfile::tempdir().unwrap();
        let images = Images::build(images_dir.path());
        reg.push(images.dir(), "app", "test/app:v1", None);
        reg.push(images.dir(), "multi", "test/multi:v1", None);
        let yum = yumfix::Upstream::new(&[]);
        let helm_dir = tempfile::tempdir().unwrap();
        let specs: Vec<helm_client::Spec> = CHARTS.iter().map(|(n, v)| helm_client::Spec::new(n, v)).collect();
        helm_client::package_and_index(&helm_dir.path().join("stable"), &specs, None, None);
        let helm = StaticServer::start(helm_dir.path());
        let pypi = pypiserver::Server::start();
        let kubectl = b"#!/bin/sh\necho kubectl\n".to_vec();
        let files = serve_routes(vec![("/bin/kubectl", 200, kubectl.clone()), ("/bad", 200, b"tampered".to_vec())]);
        Upstreams { reg, _images_dir: images_dir, yum, helm_dir, helm, pypi, files, kubectl }
    }

    /// The Helm repository's directory.
    pub fn stable(&self) -> PathBuf {
        self.helm_dir.path().join("stable")
    }

    /// Variables for build-offline-cache reading every upstream: a cache at `cache`, the
    /// archive at `archive`, Python packages for `python_version` (requests and its four
    /// dependencies), no Kubespray data and no mirror images.
    pub fn config(&self, cache: &Path, archive: &Path, python_version: &str) -> String {
        format!(
            r#"
offline_cache_dir: "{cache}"
tar_file_path: "{archive}"
download_kubespray_deps: false
pip_index_url: "{pypi}"
pip_package_list:
  - {{name: "requests==2.31.0"}}
pip_python_version: "{python_version}"
pip_platforms: ["manylinux2014_x86_64"]
mirror_images: []
image_platforms: ["linux/amd64", "linux/arm64"]
docker_image_list:
  - {{name: app, repo: "{host}/", image: test/app, version: v1}}
  - {{name: multi, repo: "{host}/", image: test/multi, version: v1}}
yum_repos:
  - {{name: fixture, baseurl: "{yum}"}}
helm_chart_repos:
  - {{name: stable, url: "http://127.0.0.1:{helm_port}/stable"}}
misc_files:
  - {{url: "{files}/bin/kubectl", checksum: "sha256:{kubectl_sum}"}}
"#,
            cache = cache.display(),
            archive = archive.display(),
            host = self.reg.host(),
            yum = self.yum.baseurl(),
            helm_port = self.helm.port,
            files = self.files,
            kubectl_sum = sha256_hex(&self.kubectl),
            pypi = self.pypi.index(),
        )
    }
}

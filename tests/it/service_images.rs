//! The images the offline mirrors run from, as `.ci/build-service-images` builds them for the
//! tests (`airlock-test/registry:2.8.3`, `airlock-test/nginx:1.27-alpine`,
//! `airlock-test/pypiserver:v2.3.2`, `airlock-test/chartmuseum-standin:v0.16.2`): each runs in
//! Docker the way DeepOps runs the real image (volumes at the image's paths, its ports, its
//! entrypoint conventions) and is checked with real clients (skopeo, pip, Helm's own pull
//! through its Go SDK, an HTTP client), and
//! all of them can be pushed from the Docker daemon to a registry, as the offline archive needs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::sha256_hex;
use crate::support::{helm_client, pypiserver, registry};

const REGISTRY_IMAGE: &str = "airlock-test/registry:2.8.3";
const NGINX_IMAGE: &str = "airlock-test/nginx:1.27-alpine";
const PYPISERVER_IMAGE: &str = "airlock-test/pypiserver:v2.3.2";
const CHARTMUSEUM_IMAGE: &str = "airlock-test/chartmuseum-standin:v0.16.2";
const BUILD: &str = "run `sudo bash .ci/build-service-images` first";

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap_or_else(|e| panic!("cannot run docker ({e}): Docker Engine and its CLI are needed"))
}

/// Fails (never skips) when the image is not in the local Docker daemon.
#[track_caller]
fn require_image(tag: &str) {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
    assert!(out.status.success(), "image {tag} is missing: {BUILD}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The image's configuration (`.Config` of `docker image inspect`) and platform.
fn image_config(tag: &str) -> (Json, String) {
    require_image(tag);
    let out = docker(&["image", "inspect", tag]);
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    (v[0]["Config"].clone(), format!("{}/{}", v[0]["Os"].as_str().unwrap(), v[0]["Architecture"].as_str().unwrap()))
}

/// A container started with `docker run -d`, removed (with its anonymous volumes) when dropped.
struct Container {
    name: String,
}

impl Container {
    /// `docker run -d --name <unique> OPTIONS IMAGE ARGS`.
    fn run(image: &str, options: &[&str], args: &[&str]) -> Container {
        static N: AtomicU32 = AtomicU32::new(0);
        require_image(image);
        let name = format!("airlock-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let mut cmd: Vec<&str> = vec!["run", "-d", "--name", &name];
        cmd.extend(options);
        cmd.push(image);
        cmd.extend(args);
        let out = docker(&cmd);
        let shown = cmd.join(" ");
        // Removed when dropped, even when `docker run` created it and then failed to start it.
        let c = Container { name };
        assert!(out.status.success(), "docker {shown} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        c
    }

    /// The 127.0.0.1 port Docker published `container_port` on.
    fn port(&self, container_port: u16) -> u16 {
        let out = docker(&["port", &self.name, &format!("{container_port}/tcp")]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next().unwrap_or_else(|| panic!("{}: port {container_port} is not published\n{}", self.name, self.logs()));
        line.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn running(&self) -> bool {
        String::from_utf8_lossy(&docker(&["inspect", "--format", "{{.State.Running}}", &self.name]).stdout).trim() == "true"
    }

    /// `http://127.0.0.1:<port>` once something answers `GET path` there (within 60 s).
    fn wait_http(&self, container_port: u16, path: &str) -> String {
        let port = self.port(container_port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while pypiserver::http_status(port, path).is_none() {
            assert!(self.running(), "{} exited:\n{}", self.name, self.logs());
            assert!(Instant::now() < deadline, "nothing answered GET {path} on 127.0.0.1:{port} within 60 s:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    }

    /// `docker exec` in the container; stdout.
    fn exec(&self, args: &[&str]) -> String {
        let mut cmd = vec!["exec", self.name.as_str()];
        cmd.extend(args);
        let out = docker(&cmd);
        assert!(out.status.success(), "docker {} failed:\n{}", cmd.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// A temporary directory that the images' unprivileged users (nginx, uid 1000) can read, as
/// the directories a site mounts are.
fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn volume(host: &Path, container: &str) -> String {
    format!("{}:{container}", host.display())
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

fn http() -> reqwest::blocking::Client {
    airlock_base::http::ensure_crypto_provider();
    reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build().unwrap()
}

/// Status, headers and body of one request.
fn request(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().unwrap().to_vec())
}

fn get(url: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = request(reqwest::Method::GET, url, &[]);
    (status, body)
}

fn get_text(url: &str) -> String {
    let (status, body) = get(url);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "GET {url}:\n{text}");
    text
}

fn get_json(url: &str) -> Json {
    serde_json::from_str(&get_text(url)).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().unwrap_or_else(|e| panic!("cannot run skopeo ({e}): run `sudo bash .ci/setup-registry`"));
    assert!(out.status.success(), "skopeo {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Pushes an image from the Docker daemon to a registry on loopback, as the offline side does.
fn push_from_daemon(tag: &str, dest: &str) {
    skopeo(&["copy", "--quiet", "--dest-tls-verify=false", &format!("docker-daemon:{tag}"), &format!("docker://{dest}")]);
}

// ---------------------------------------------------------------------------------------------
// The images' configuration
// ---------------------------------------------------------------------------------------------

/// What `docker_container` tasks written for the real images rely on: entrypoint, command,
/// ports, volumes, user, working directory and environment, as the real images set them.
#[test]
fn images_carry_the_configuration_of_the_images_they_stand_for() {
    let env = |c: &Json| -> Vec<String> { c["Env"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default() };
    let keys = |v: &Json| -> Vec<String> { v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };

    for (tag, stands_for) in [
        (REGISTRY_IMAGE, "registry:2.8.3"),
        (NGINX_IMAGE, "nginx:1.27-alpine"),
        (PYPISERVER_IMAGE, "pypiserver/pypiserver:v2.3.2"),
        (CHARTMUSEUM_IMAGE, "ghcr.io/helm/chartmuseum:v0.16.2"),
    ] {
        let (c, platform) = image_config(tag);
        assert_eq!(platform, "linux/amd64", "{tag}");
        assert_eq!(c["Labels"]["io.airlock.test-standin"], "true", "{tag}: {c}");
        assert_eq!(c["Labels"]["io.airlock.stands-for"], stands_for, "{tag}: {c}");
        assert!(c["Labels"]["org.opencontainers.image.title"].as_str().is_some_and(|t| !t.is_empty()), "{tag}: {c}");
        assert!(c["Labels"]["io.airlock.inputs"].as_str().is_some_and(|h| h.len() == 64), "{tag}: {c}");
    }

    let (c, _) = image_config(REGISTRY_IMAGE);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/entrypoint.sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["/etc/docker/registry/config.yml"]));
    assert_eq!(keys(&c["ExposedPorts"]), ["5000/tcp"]);
    assert_eq!(keys(&c["Volumes"]), ["/var/lib/registry"]);

    let (c, _) = image_config(NGINX_IMAGE);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/docker-entrypoint.sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["nginx", "-g", "daemon off;"]));
    assert_eq!(keys(&c["ExposedPorts"]), ["80/tcp"]);
    assert_eq!(c["StopSignal"], "SIGQUIT");

    let (c, _) = image_config(PYPISERVER_IMAGE);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/entrypoint.sh"]));
    assert!(c["Cmd"].is_null(), "pypiserver's image has no CMD: {c}");
    assert_eq!(keys(&c["ExposedPorts"]), ["8080/tcp"]);
    assert_eq!(keys(&c["Volumes"]), ["/data/packages"]);
    assert_eq!(c["WorkingDir"], "/data");
    for var in ["PYPISERVER_PORT=8080", "PORT=8080", "PYTHONUNBUFFERED=t"] {
        assert!(env(&c).iter().any(|e| e == var), "{var} not in {c}");
    }

    let (c, _) = image_config(CHARTMUSEUM_IMAGE);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/chartmuseum"]));
    assert!(c["Cmd"].is_null(), "{c}");
    assert_eq!(c["User"], "1000:1000");
}

// ---------------------------------------------------------------------------------------------
// registry:2.8.3
// ---------------------------------------------------------------------------------------------

/// The registry as DeepOps runs it (`-p 5000:5000`, storage in a volume at
/// /var/lib/registry): it answers /v2/, takes a push from the Docker daemon and gives the same
/// image back; REGISTRY_* variables override its config.yml.
#[test]
fn registry_image_answers_v2_and_takes_a_push_and_a_pull() {
    require_image(NGINX_IMAGE);
    let data = shared_dir();
    let reg = Container::run(REGISTRY_IMAGE, &["-p", "127.0.0.1::5000", "-v", &volume(data.path(), "/var/lib/registry")], &[]);
    let url = reg.wait_http(5000, "/v2/");
    let (status, headers, body) = request(reqwest::Method::GET, &format!("{url}/v2/"), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");
    assert_eq!(headers["x-content-type-options"], "nosniff", "the image's config.yml sets it");

    let host = url.trim_start_matches("http://");
    push_from_daemon(NGINX_IMAGE, &format!("{host}/library/nginx:1.27-alpine"));
    assert!(
        data.path().join("docker/registry/v2/repositories/library/nginx/_manifests/tags/1.27-alpine").is_dir(),
        "the pushed image is not in the volume at /var/lib/registry:\n{}",
        reg.logs()
    );
    let tags = get_json(&format!("{url}/v2/library/nginx/tags/list"));
    assert_eq!(tags["tags"], serde_json::json!(["1.27-alpine"]));

    // Pulled back as it is stored (skopeo's dir: transport): the image's own config (its
    // digest is the image ID) and layers matching their digests.
    let pulled = tempfile::tempdir().unwrap();
    skopeo(&["copy", "--quiet", "--src-tls-verify=false", &format!("docker://{host}/library/nginx:1.27-alpine"), &format!("dir:{}", pulled.path().display())]);
    let manifest: Json = serde_json::from_slice(&fs::read(pulled.path().join("manifest.json")).unwrap()).unwrap();
    let image_id = String::from_utf8(docker(&["image", "inspect", "--format", "{{.Id}}", NGINX_IMAGE]).stdout).unwrap();
    assert_eq!(manifest["config"]["digest"].as_str().unwrap(), image_id.trim());
    for blob in manifest["layers"].as_array().unwrap().iter().chain([&manifest["config"]]) {
        let digest = blob["digest"].as_str().unwrap();
        let bytes = fs::read(pulled.path().join(&digest[7..])).unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);
    }

    // The environment overrides config.yml, as in the real image.
    let other = shared_dir();
    let reg2 = Container::run(
        REGISTRY_IMAGE,
        &[
            "-p",
            "127.0.0.1::5001",
            "-e",
            "REGISTRY_HTTP_ADDR=:5001",
            "-e",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/registry",
            "-v",
            &volume(other.path(), "/srv/registry"),
        ],
        &[],
    );
    let url2 = reg2.wait_http(5001, "/v2/");
    push_from_daemon(NGINX_IMAGE, &format!("{}/mirror/nginx:1.27-alpine", url2.trim_start_matches("http://")));
    assert!(other.path().join("docker/registry/v2/repositories/mirror/nginx").is_dir(), "{}", reg2.logs());
}

// ---------------------------------------------------------------------------------------------
// nginx:1.27-alpine
// ---------------------------------------------------------------------------------------------

/// nginx with a mounted conf.d file that turns autoindex on and a mounted directory (DeepOps's
/// files mirror): listings, files, HEAD and byte ranges; logs on the container's stdout.
#[test]
fn nginx_image_serves_a_mounted_directory_with_a_mounted_conf_d_file() {
    let html = shared_dir();
    fs::write(html.path().join("kubectl.sha256"), "0123456789").unwrap();
    fs::create_dir(html.path().join("pool")).unwrap();
    fs::set_permissions(html.path().join("pool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(html.path().join("pool/pkg.rpm"), vec![7u8; 4096]).unwrap();
    let conf = shared_dir();
    fs::write(
        conf.path().join("files.conf"),
        "server {\n    listen 80;\n    server_name _;\n    location / {\n        root /usr/share/nginx/html;\n        autoindex on;\n    }\n}\n",
    )
    .unwrap();

    let c = Container::run(
        NGINX_IMAGE,
        &[
            "-p",
            "127.0.0.1::80",
            "-v",
            &format!("{}:ro", volume(html.path(), "/usr/share/nginx/html")),
            "-v",
            &format!("{}:ro", volume(&conf.path().join("files.conf"), "/etc/nginx/conf.d/default.conf")),
        ],
        &[],
    );
    let url = c.wait_http(80, "/");

    let listing = get_text(&format!("{url}/"));
    assert!(listing.contains("Index of /") && listing.contains("href=\"kubectl.sha256\"") && listing.contains("href=\"pool/\""), "{listing}");
    assert!(get_text(&format!("{url}/pool/")).contains("href=\"pkg.rpm\""));
    assert_eq!(get(&format!("{url}/pool/pkg.rpm")), (200, vec![7u8; 4096]));

    let (status, headers, body) = request(reqwest::Method::HEAD, &format!("{url}/kubectl.sha256"), &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], "10");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(body.is_empty());

    let (status, headers, body) = request(reqwest::Method::GET, &format!("{url}/kubectl.sha256"), &[("Range", "bytes=2-5")]);
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], "bytes 2-5/10");
    assert_eq!(body, b"2345");

    assert_eq!(get(&format!("{url}/missing")).0, 404);
    let logs = c.logs();
    assert!(logs.contains("\"GET /pool/pkg.rpm HTTP/1.1\" 200"), "access log is not on stdout:\n{logs}");
    // Workers run as the image's nginx user.
    let ps = c.exec(&["ps", "-o", "user,args"]);
    assert!(ps.lines().any(|l| l.starts_with("nginx") && l.contains("worker process")), "{ps}");
}

/// The image's own default.conf, as DeepOps's Yum mirror uses it: the mounted directory's files
/// on port 80 (no listing without autoindex).
#[test]
fn nginx_image_default_server_serves_the_mounted_html_directory() {
    let html = shared_dir();
    fs::create_dir_all(html.path().join("cuda/repodata")).unwrap();
    for d in ["cuda", "cuda/repodata"] {
        fs::set_permissions(html.path().join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(html.path().join("cuda/repodata/repomd.xml"), "<repomd/>").unwrap();
    let c = Container::run(NGINX_IMAGE, &["-p", "127.0.0.1::80", "-v", &format!("{}:ro", volume(html.path(), "/usr/share/nginx/html"))], &[]);
    let url = c.wait_http(80, "/");
    assert_eq!(get_text(&format!("{url}/cuda/repodata/repomd.xml")), "<repomd/>");
    let (status, headers, _) = request(reqwest::Method::GET, &format!("{url}/cuda/repodata/repomd.xml"), &[]);
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "text/xml"), "mime.types is read");
    assert_eq!(get(&format!("{url}/cuda/")).0, 403, "no autoindex in the default server");
}

// ---------------------------------------------------------------------------------------------
// pypiserver/pypiserver:v2.3.2
// ---------------------------------------------------------------------------------------------

/// Runs pip against an index: `pip download --no-deps` of `requirement` into a fresh directory;
/// the names of the files it fetched.
fn pip_download(index: &str, requirement: &str, dest: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args(["-m", "pip", "--isolated", "download", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "--no-deps", "--index-url"])
        .arg(index)
        .arg("--dest")
        .arg(dest)
        .arg(requirement)
        .output()
        .expect("python3 with pip is needed");
    assert!(out.status.success(), "pip download {requirement} from {index} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = fs::read_dir(dest).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn packages_dir() -> tempfile::TempDir {
    let fixture = pypiserver::fixture();
    let dir = shared_dir();
    for f in ["requests-2.31.0-py3-none-any.whl", "idna-3.4-py3-none-any.whl", "idna-3.3-py3-none-any.whl"] {
        fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// pypiserver with DeepOps's kind of command line (`run -p PORT --disable-fallback
/// /data/packages`, packages mounted at /data/packages): pip fetches the very wheel, and an
/// unknown project is a 404 rather than a redirect to pypi.org.
#[test]
fn pypiserver_image_serves_mounted_wheels_to_pip_without_fallback() {
    let packages = packages_dir();
    let c = Container::run(
        PYPISERVER_IMAGE,
        &["-p", "127.0.0.1::8003", "-v", &volume(packages.path(), "/data/packages")],
        &["run", "-p", "8003", "--disable-fallback", "/data/packages"],
    );
    let url = c.wait_http(8003, "/simple/");
    let simple = get_text(&format!("{url}/simple/"));
    assert!(simple.contains("requests") && simple.contains("idna"), "{simple}");

    let dest = tempfile::tempdir().unwrap();
    assert_eq!(pip_download(&format!("{url}/simple/"), "requests==2.31.0", dest.path()), ["requests-2.31.0-py3-none-any.whl"]);
    let name = "requests-2.31.0-py3-none-any.whl";
    assert_eq!(sha256_hex(&fs::read(dest.path().join(name)).unwrap()), sha256_hex(&fs::read(packages.path().join(name)).unwrap()));
    let dest = tempfile::tempdir().unwrap();
    assert_eq!(pip_download(&format!("{url}/simple/"), "idna", dest.path()), ["idna-3.4-py3-none-any.whl"], "the newest version");

    assert_eq!(get(&format!("{url}/simple/no-such-project-airlock/")).0, 404, "fallback is off:\n{}", c.logs());
    // The server runs as the image's pypiserver user, not root.
    assert!(c.exec(&["cat", "/proc/1/status"]).lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("9898")));
}

/// With no arguments the image runs its default, `run -p $PYPISERVER_PORT --server gunicorn`,
/// serving /data/packages on 8080.
#[test]
fn pypiserver_image_default_command_serves_data_packages_on_8080() {
    let packages = packages_dir();
    let c = Container::run(PYPISERVER_IMAGE, &["-p", "127.0.0.1::8080", "-v", &volume(packages.path(), "/data/packages")], &[]);
    let url = c.wait_http(8080, "/simple/");
    let dest = tempfile::tempdir().unwrap();
    assert_eq!(pip_download(&format!("{url}/simple/"), "idna==3.3", dest.path()), ["idna-3.3-py3-none-any.whl"]);
    let cmdline = c.exec(&["cat", "/proc/1/cmdline"]).replace('\0', " ");
    assert!(cmdline.contains("pypi-server run -p 8080 --server gunicorn"), "{cmdline}");
}

// ---------------------------------------------------------------------------------------------
// ChartMuseum stand-in
// ---------------------------------------------------------------------------------------------

/// `helm package` of one chart version into `dir` (Chart.yaml with a keyword, as NVIDIA's
/// charts have): the file name and bytes.
fn write_chart(dir: &Path, name: &str, version: &str) -> (String, Vec<u8>) {
    let made = helm_client::package(dir, &[helm_client::Spec::new(name, version).metadata(serde_json::json!({"keywords": ["gpu"]}))]).remove(0);
    (made.path.file_name().unwrap().to_string_lossy().into_owned(), made.bytes)
}

fn index_yaml(url: &str) -> Yaml {
    let (status, headers, body) = request(reqwest::Method::GET, url, &[]);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "GET {url}:\n{text}");
    assert_eq!(headers["content-type"], "application/x-yaml");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{url} is not YAML ({e}):\n{text}")).remove(0)
}

fn versions(index: &Yaml, name: &str) -> Vec<String> {
    index["entries"][name].as_vec().map(|v| v.iter().map(|e| e["version"].as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The stand-in started as DeepOps starts ChartMuseum (entrypoint `/chartmuseum --port=8002
/// --storage=local --storage-local-rootdir=/charts`, charts mounted at /charts): index.yaml
/// lists the charts present with their digests, follows new files, and the API and /health
/// answer.
#[test]
fn chartmuseum_standin_serves_an_index_of_the_charts_present() {
    let charts = shared_dir();
    let (file, tgz) = write_chart(charts.path(), "gpu-operator", "24.9.0");
    let c = Container::run(
        CHARTMUSEUM_IMAGE,
        &["-p", "127.0.0.1::8002", "-v", &format!("{}:rw", volume(charts.path(), "/charts")), "--entrypoint", "/chartmuseum"],
        &["--port=8002", "--storage=local", "--storage-local-rootdir=/charts", "--debug"],
    );
    let url = c.wait_http(8002, "/health");
    assert_eq!(get_json(&format!("{url}/health")), serde_json::json!({"healthy": true}));

    let index = index_yaml(&format!("{url}/index.yaml"));
    assert_eq!(index["apiVersion"].as_str(), Some("v1"));
    let entry = &index["entries"]["gpu-operator"][0];
    assert_eq!(entry["name"].as_str(), Some("gpu-operator"));
    assert_eq!(entry["version"].as_str(), Some("24.9.0"));
    assert_eq!(entry["apiVersion"].as_str(), Some("v2"), "apiVersion comes from Chart.yaml");
    assert_eq!(entry["appVersion"].as_str(), Some("1.16.0"));
    assert_eq!(entry["digest"].as_str(), Some(sha256_hex(&tgz).as_str()));
    assert_eq!(entry["urls"][0].as_str(), Some(format!("charts/{file}").as_str()));
    assert_eq!(entry["keywords"][0].as_str(), Some("gpu"));
    assert!(entry["created"].as_str().is_some_and(|t| t.ends_with('Z')), "{entry:?}");
    assert!(index["generated"].as_str().is_some());

    let (status, body) = get(&format!("{url}/charts/{file}"));
    assert_eq!((status, body == tgz), (200, true), "the archive is served byte for byte");
    assert_eq!(get(&format!("{url}/charts/nope-1.0.0.tgz")).0, 404);

    helm_client::assert_pulls_exactly(&url, &[("gpu-operator", "24.9.0", &tgz)]);

    // Charts added later show up, newest version first, and Helm pulls each.
    let (_, rc) = write_chart(charts.path(), "gpu-operator", "24.10.0-rc.1");
    let (_, newest) = write_chart(charts.path(), "gpu-operator", "24.10.0");
    let index = index_yaml(&format!("{url}/index.yaml"));
    assert_eq!(versions(&index, "gpu-operator"), ["24.10.0", "24.10.0-rc.1", "24.9.0"]);
    helm_client::assert_pulls_exactly(&url, &[("gpu-operator", "24.9.0", &tgz), ("gpu-operator", "24.10.0-rc.1", &rc), ("gpu-operator", "24.10.0", &newest)]);

    let all = get_json(&format!("{url}/api/charts"));
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(names, ["gpu-operator"]);
    let chart = get_json(&format!("{url}/api/charts/gpu-operator"));
    assert_eq!(chart.as_array().unwrap().len(), 3);
    assert_eq!(get_json(&format!("{url}/api/charts/gpu-operator/latest"))["version"], "24.10.0");
    assert_eq!(get_json(&format!("{url}/api/charts/gpu-operator/24.9.0"))["digest"], sha256_hex(&tgz).as_str());
    assert_eq!(get(&format!("{url}/api/charts/network-operator")), (404, br#"{"error":"chart not found"}"#.to_vec()));
}

/// The same stand-in configured from the environment (STORAGE, STORAGE_LOCAL_ROOTDIR, DEPTH=1,
/// DISABLE_API, default PORT 8080): one repository per directory, no /api.
#[test]
fn chartmuseum_standin_takes_its_options_from_the_environment() {
    let charts = shared_dir();
    let stable = charts.path().join("stable");
    fs::create_dir(&stable).unwrap();
    fs::set_permissions(&stable, fs::Permissions::from_mode(0o755)).unwrap();
    let (_, tgz) = write_chart(&stable, "dcgm-exporter", "3.3.0");
    let c = Container::run(
        CHARTMUSEUM_IMAGE,
        &[
            "-p",
            "127.0.0.1::8080",
            "-e",
            "STORAGE=local",
            "-e",
            "STORAGE_LOCAL_ROOTDIR=/charts",
            "-e",
            "DEPTH=1",
            "-e",
            "DISABLE_API=true",
            "-v",
            &volume(charts.path(), "/charts"),
        ],
        &[],
    );
    let url = c.wait_http(8080, "/health");
    let index = index_yaml(&format!("{url}/stable/index.yaml"));
    assert_eq!(index["entries"]["dcgm-exporter"][0]["digest"].as_str(), Some(sha256_hex(&tgz).as_str()));
    assert_eq!(get(&format!("{url}/stable/charts/dcgm-exporter-3.3.0.tgz")), (200, tgz.clone()));
    helm_client::assert_pulls_exactly(&format!("{url}/stable"), &[("dcgm-exporter", "3.3.0", &tgz)]);
    assert_eq!(get(&format!("{url}/index.yaml")).0, 404, "DEPTH=1: no repository at the root");
    assert_eq!(get(&format!("{url}/api/stable/charts")).0, 404, "DISABLE_API");

    // ChartMuseum refuses what it does not know, and so does the stand-in.
    let out = docker(&["run", "--rm", CHARTMUSEUM_IMAGE, "--storage=local", "--storage-local-rootdir=/tmp/c", "--bearer-auth"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("flag provided but not defined: -bearer-auth"), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// Into the offline archive
// ---------------------------------------------------------------------------------------------

/// All four images go from the Docker daemon to Debian's registry with skopeo, under the real
/// images' names, with their labels and platform.
#[test]
fn all_images_push_from_the_docker_daemon_to_a_registry() {
    let reg = registry::Registry::start();
    let mut pushed = BTreeMap::new();
    for (tag, dest) in [
        (REGISTRY_IMAGE, "library/registry:2.8.3"),
        (NGINX_IMAGE, "library/nginx:1.27-alpine"),
        (PYPISERVER_IMAGE, "pypiserver/pypiserver:v2.3.2"),
        (CHARTMUSEUM_IMAGE, "helm/chartmuseum:v0.16.2"),
    ] {
        require_image(tag);
        push_from_daemon(tag, &format!("{}/{dest}", reg.host()));
        let inspect: Json = serde_json::from_slice(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{}/{dest}", reg.host())])).unwrap();
        assert_eq!((inspect["Os"].as_str(), inspect["Architecture"].as_str()), (Some("linux"), Some("amd64")), "{dest}: {inspect}");
        assert_eq!(inspect["Labels"]["io.airlock.test-standin"], "true", "{dest}: {inspect}");
        pushed.insert(dest, inspect["Digest"].as_str().unwrap().to_string());
    }
    let catalog = get_json(&format!("http://{}/v2/_catalog", reg.host()));
    assert_eq!(catalog["repositories"], serde_json::json!(["helm/chartmuseum", "library/nginx", "library/registry", "pypiserver/pypiserver"]));
    assert_eq!(pushed.len(), 4);
}

//! The local Docker Engine, over its HTTP API (bollard): load images from a `docker save`
//! archive or from an OCI image layout, tag, push and remove them, and run containers. Nothing
//! here ever pulls.
//!
//! bollard is asynchronous; airlock's executor is not, so an [`Engine`] owns a current-thread
//! tokio runtime and blocks on each call.

pub mod container;
pub mod image;
pub mod ports;

use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ImageInspect};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, PushImageOptions, RemoveContainerOptions, RemoveImageOptions,
    StartContainerOptions, StopContainerOptions, TagImageOptions,
};
use futures_util::StreamExt;

/// Where Docker listens when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long one ordinary API call may take (stopping a container waits for its timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// How long loading or pushing an image may take: Docker answers only once it has read the
/// whole archive, and images of many gigabytes exist.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What kind of failure a [`DockerError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DockerErrorKind {
    /// The Engine cannot be reached (not running, socket missing or not ours to use).
    Unreachable,
    /// The image or container does not exist (HTTP 404).
    NotFound,
    /// The Engine refused the request (HTTP 409: in use, name taken...).
    Conflict,
    /// Any other error the Engine answered with, or the connection broke mid-call.
    Api,
    /// What was asked cannot be done with the input given (bad archive, image not in layout).
    Input,
}

/// A failed Docker operation, with a message that says what to do.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct DockerError {
    /// The kind of failure, for callers that react to some.
    pub kind: DockerErrorKind,
    /// What went wrong, naming the image, container or socket, and the fix.
    pub message: String,
}

impl DockerError {
    /// An error of `kind`.
    pub fn new(kind: DockerErrorKind, message: impl Into<String>) -> DockerError {
        DockerError { kind, message: message.into() }
    }

    /// An error about the input (archive, layout, arguments).
    pub fn input(message: impl Into<String>) -> DockerError {
        DockerError::new(DockerErrorKind::Input, message)
    }

    /// Whether the Engine said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == DockerErrorKind::NotFound
    }
}

/// The text Docker gave for an error, and its HTTP status when it answered at all.
fn describe(e: &bollard::errors::Error) -> (Option<u16>, String) {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { status_code, message } => (Some(*status_code), message.trim().to_string()),
        B::DockerStreamError { error } => (None, error.trim().to_string()),
        B::RequestTimeoutError => (None, "the Docker Engine did not answer in time".to_string()),
        other => {
            // The useful part of a transport error is its innermost cause.
            let mut text = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                text = s.to_string();
                src = s.source();
            }
            (None, text)
        }
    }
}

/// The io::Error at the root of a transport failure, if any.
fn io_cause(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = c.source();
    }
    None
}

/// An error from a call about `what` (`image registry:2`, `container mirror`).
fn api_error(what: &str, e: bollard::errors::Error) -> DockerError {
    let (status, text) = describe(&e);
    let kind = match status {
        Some(404) => DockerErrorKind::NotFound,
        Some(409) => DockerErrorKind::Conflict,
        _ => DockerErrorKind::Api,
    };
    DockerError::new(kind, format!("{what}: {text}"))
}

/// The operating system and CPU architecture of the Engine, as image platforms name them
/// (`linux`, `amd64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnginePlatform {
    /// `linux`, `windows`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `ppc64le`, `s390x`.
    pub arch: String,
}

impl std::fmt::Display for EnginePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)
    }
}

/// Go's name of an architecture, whatever spelling `uname` or an image used.
pub fn normalise_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "i386" | "i686" => "386".to_string(),
        "armhf" | "armv7l" => "arm".to_string(),
        other => other.to_string(),
    }
}

/// A connection to a Docker Engine, with the runtime its calls run on.
pub struct Engine {
    rt: tokio::runtime::Runtime,
    api: Docker,
    /// Where the Engine was reached: `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2375`.
    pub host: String,
    /// The Engine's platform, from `GET /version`.
    pub platform: EnginePlatform,
    /// The Engine's version (`20.10.24`, `28.2.2`).
    pub version: String,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (`unix://PATH` or `tcp://HOST:PORT`), else
    /// `unix:///var/run/docker.sock`, and checks that the Engine answers.
    pub fn connect() -> Result<Engine, DockerError> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_string());
        Engine::connect_to(host.trim())
    }

    /// Connects to `host` and checks that the Engine answers.
    pub fn connect_to(host: &str) -> Result<Engine, DockerError> {
        let fix = "start it with `systemctl start docker`, or set DOCKER_HOST to where it listens";
        let not_running = |why: String| DockerError::new(DockerErrorKind::Unreachable, format!("Docker is not running at {host}: {why}: {fix}"));
        let secs = CALL_TIMEOUT.as_secs();
        let api = if let Some(path) = host.strip_prefix("unix://") {
            match std::fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_running(format!("the socket {path} does not exist"))),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(permission_denied(host, path)),
                _ => {}
            }
            Docker::connect_with_unix(host, secs, bollard::API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
                return Err(DockerError::new(
                    DockerErrorKind::Unreachable,
                    format!("DOCKER_TLS_VERIFY is set, but airlock speaks to the Docker Engine at {host} without TLS only: use a unix:// socket (over SSH, forward it), or unset DOCKER_TLS_VERIFY for a plain tcp:// Engine"),
                ));
            }
            Docker::connect_with_http(host, secs, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(DockerError::new(
                DockerErrorKind::Unreachable,
                format!("DOCKER_HOST={host} is not supported: use unix:///path/to/docker.sock or tcp://host:port"),
            ));
        }
        .map_err(|e| not_running(describe(&e).1))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DockerError::new(DockerErrorKind::Api, format!("cannot start the runtime for Docker calls: {e}")))?;
        let unreachable = |e: bollard::errors::Error| {
            if let Some(path) = host.strip_prefix("unix://")
                && io_cause(&e) == Some(std::io::ErrorKind::PermissionDenied)
            {
                return permission_denied(host, path);
            }
            not_running(describe(&e).1)
        };
        // Speak the Engine's API version when it is older than bollard's, as the docker CLI does.
        let api = rt.block_on(api.negotiate_version()).map_err(unreachable)?;
        let version = rt.block_on(api.version()).map_err(unreachable)?;
        let platform = EnginePlatform {
            os: version.os.clone().unwrap_or_else(|| "linux".to_string()).to_ascii_lowercase(),
            arch: normalise_arch(version.arch.as_deref().unwrap_or(std::env::consts::ARCH)),
        };
        Ok(Engine { rt, api, host: host.to_string(), platform, version: version.version.unwrap_or_default() })
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The image named `name` (`registry:2`, an ID), or `None` when Docker does not have it.
    pub fn inspect_image(&self, name: &str) -> Result<Option<ImageInspect>, DockerError> {
        match self.block_on(self.api.inspect_image(name)) {
            Ok(i) => Ok(Some(i)),
            Err(e) => {
                let err = api_error(&format!("inspecting image {name}"), e);
                if err.is_not_found() { Ok(None) } else { Err(err) }
            }
        }
    }

    /// Tags image `source` (name or ID) as `repo:tag`, replacing a tag of that name.
    pub fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let opts = TagImageOptions { repo: Some(repo.to_string()), tag: Some(tag.to_string()) };
        self.block_on(self.api.tag_image(source, Some(opts))).map_err(|e| api_error(&format!("tagging {source} as {repo}:{tag}"), e))
    }

    /// Removes the image or tag `name`. Docker removes the image itself once its last tag
    /// goes and no container uses it.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<(), DockerError> {
        let opts = RemoveImageOptions { force, noprune: false, ..Default::default() };
        self.block_on(self.api.remove_image(name, Some(opts), None)).map(|_| ()).map_err(|e| {
            let err = api_error(&format!("removing image {name}"), e);
            if err.kind == DockerErrorKind::Conflict {
                DockerError::new(err.kind, format!("{}: remove the containers that use it first (docker_container state: absent)", err.message))
            } else {
                err
            }
        })
    }

    /// Pushes `repo:tag` to its registry through the Engine (which knows its own credentials
    /// and insecure registries). Returns whether any layer was sent (false when the registry
    /// had them all).
    pub fn push_image(&self, repo: &str, tag: &str) -> Result<bool, DockerError> {
        let opts = PushImageOptions { tag: Some(tag.to_string()), ..Default::default() };
        self.block_on(async {
            let api = self.api.clone().with_timeout(TRANSFER_TIMEOUT);
            let mut stream = api.push_image(repo, Some(opts), None);
            let mut sent = false;
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| api_error(&format!("pushing {repo}:{tag}"), e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(DockerError::new(DockerErrorKind::Api, format!("pushing {repo}:{tag}: {err}")));
                }
                if info.status.as_deref().is_some_and(|s| s == "Pushed" || s == "Pushing") {
                    sent = true;
                }
            }
            Ok(sent)
        })
    }

    /// Streams a `docker save` archive to `POST /images/load`; the bytes come from `write`,
    /// run on a thread of its own, so nothing is held whole in memory. Returns the lines
    /// Docker printed (`Loaded image: registry:2`).
    pub fn load_image<W>(&self, what: &str, write: W) -> Result<Vec<String>, DockerError>
    where
        W: FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'static,
    {
        let (body, producer) = image::byte_stream(write);
        let api = self.api.clone().with_timeout(TRANSFER_TIMEOUT);
        let opts = bollard::query_parameters::ImportImageOptions { quiet: true, ..Default::default() };
        let result: Result<Vec<String>, DockerError> = self.block_on(async {
            let mut stream = api.import_image_stream(opts, body, None);
            let mut lines = Vec::new();
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| api_error(&format!("loading {what}"), e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(DockerError::new(DockerErrorKind::Api, format!("loading {what}: {err}")));
                }
                if let Some(s) = info.stream {
                    lines.extend(s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string));
                }
            }
            Ok(lines)
        });
        // The producer's own error (an unreadable blob) explains a failed load best.
        match producer.join() {
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(DockerError::input(format!("loading {what}: {e}")));
            }
            Err(_) => return Err(DockerError::input(format!("loading {what}: the archive writer panicked"))),
            _ => {}
        }
        result
    }

    /// The container named `name`, or `None`.
    pub fn inspect_container(&self, name: &str) -> Result<Option<ContainerInspectResponse>, DockerError> {
        match self.block_on(self.api.inspect_container(name, None::<InspectContainerOptions>)) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                let err = api_error(&format!("inspecting container {name}"), e);
                if err.is_not_found() { Ok(None) } else { Err(err) }
            }
        }
    }

    /// Creates container `name` from `body`; its ID.
    pub fn create_container(&self, name: &str, body: bollard::models::ContainerCreateBody) -> Result<String, DockerError> {
        let opts = CreateContainerOptions { name: Some(name.to_string()), ..Default::default() };
        self.block_on(self.api.create_container(Some(opts), body)).map(|r| r.id).map_err(|e| api_error(&format!("creating container {name}"), e))
    }

    /// Starts container `name`.
    pub fn start_container(&self, name: &str) -> Result<(), DockerError> {
        self.block_on(self.api.start_container(name, None::<StartContainerOptions>)).map_err(|e| api_error(&format!("starting container {name}"), e))
    }

    /// Stops container `name`, killing it after `timeout` seconds (Docker's default, 10, when
    /// `None`).
    pub fn stop_container(&self, name: &str, timeout: Option<i32>) -> Result<(), DockerError> {
        let opts = StopContainerOptions { t: timeout, ..Default::default() };
        self.block_on(self.api.stop_container(name, Some(opts))).map_err(|e| api_error(&format!("stopping container {name}"), e))
    }

    /// Removes container `name` (killing it if it runs) with its anonymous volumes.
    pub fn remove_container(&self, name: &str) -> Result<(), DockerError> {
        let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.block_on(self.api.remove_container(name, Some(opts))) {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = api_error(&format!("removing container {name}"), e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// The running containers with the host ports they publish.
    pub fn running_container_ports(&self) -> Result<Vec<PublishingContainer>, DockerError> {
        let list = self
            .block_on(self.api.list_containers(Some(ListContainersOptions { all: false, ..Default::default() })))
            .map_err(|e| api_error("listing containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| PublishingContainer {
                name: c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default(),
                ports: c
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| Some((p.public_port?, p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".to_string()), p.ip.unwrap_or_default())))
                    .collect(),
            })
            .collect())
    }
}

/// A running container and the host ports it publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishingContainer {
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// (host port, protocol, host address) of each published port.
    pub ports: Vec<(u16, String, String)>,
}

/// The error for a socket we may not use.
fn permission_denied(host: &str, path: &str) -> DockerError {
    DockerError::new(
        DockerErrorKind::Unreachable,
        format!(
            "Docker is running at {host}, but this user may not use {path} (permission denied): run airlock as root (or with become: true), or add the user to the docker group (`usermod -aG docker USER`, then log in again), or set DOCKER_HOST"
        ),
    )
}

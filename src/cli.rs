//! The command line: `airlock playbook` with ansible-playbook's flags, and `airlock archive`
//! for offline archives.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use airlock_runner::run::{self, RunOptions};

/// airlock runs Ansible-style playbooks and builds offline mirrors for air-gapped clusters.
#[derive(Parser, Debug)]
#[command(name = "airlock", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run playbooks, as ansible-playbook does (local and ssh connections).
    Playbook(PlaybookArgs),
    /// Offline archives: inspect and verify.
    Archive(ArchiveArgs),
    /// Serve the offline mirrors under --root without Docker, on DeepOps's ports.
    Serve(ServeArgs),
    /// Internal: runs one module from a JSON request on stdin (used by `become` and on hosts
    /// reached over SSH).
    #[command(name = "__module", hide = true)]
    InternalModule,
}

/// `airlock archive ...`
#[derive(Args, Debug)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Print the manifest header and the artifacts' count and size by kind (reads only the manifest).
    Inspect {
        /// The archive (.tar, .tar.gz or .tar.zst).
        path: PathBuf,
    },
    /// Check every entry's size and sha256 against the manifest; list each problem and exit 1 if any.
    Verify {
        /// The archive (.tar, .tar.gz or .tar.zst).
        path: PathBuf,
    },
    /// Internal (benchmarks, tests): write an archive of a cache directory. The manifest comes
    /// from --from-manifest, or from hashing every file of the cache (kind `file`).
    #[command(hide = true)]
    Create {
        /// The cache directory the manifest's paths are relative to.
        #[arg(long)]
        cache: PathBuf,
        /// A manifest.json to write the archive from.
        #[arg(long = "from-manifest", value_name = "MANIFEST")]
        from_manifest: Option<PathBuf>,
        /// Compression level (zstd default 3, gzip default 6).
        #[arg(long)]
        level: Option<i32>,
        /// zstd worker threads (default: the number of CPUs).
        #[arg(long)]
        threads: Option<u32>,
        /// The archive to write: .tar, .tar.gz/.tgz or .tar.zst/.tzst.
        out: PathBuf,
    },
    /// Internal (benchmarks, tests): print a manifest of every file under a cache directory.
    #[command(hide = true)]
    Scan {
        cache: PathBuf,
        /// The kind given to every artifact.
        #[arg(long, default_value = "file")]
        kind: String,
    },
    /// Internal (tests) until the offline playbooks use it: verify and extract under DEST.
    #[command(hide = true)]
    Extract { path: PathBuf, dest: PathBuf },
}

/// `airlock serve`: the mirror tree that build-offline-mirrors.yml lays out, on DeepOps's ports
/// (docker_local_registry_port, yum_mirror_port, helm_port, pip_port, nginx_misc_port).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The mirror tree (deepops_dest_path): yum/, helm/, pip/, misc-files/, registry/.
    #[arg(long, default_value = "/opt/deepops")]
    pub root: PathBuf,
    /// The address every mirror listens on (mirror_bind_address).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,
    /// The Docker registry's port (docker_local_registry_port).
    #[arg(long, default_value_t = 5000)]
    pub registry_port: u16,
    /// The Yum mirror's port (yum_mirror_port).
    #[arg(long, default_value_t = 8001)]
    pub yum_port: u16,
    /// The Helm (ChartMuseum) mirror's port (helm_port).
    #[arg(long, default_value_t = 8002)]
    pub helm_port: u16,
    /// The PyPI mirror's port (pip_port).
    #[arg(long, default_value_t = 8003)]
    pub pip_port: u16,
    /// The files mirror's port (nginx_misc_port).
    #[arg(long, default_value_t = 8004)]
    pub files_port: u16,
    /// Accept image pushes on the registry (read-only by default).
    #[arg(long)]
    pub registry_writable: bool,
    /// The mirrors to serve, comma-separated (the build_*_mirror switches); the others get no
    /// listener.
    #[arg(long, value_delimiter = ',', default_value = "registry,yum,helm,pip,files", value_parser = clap::builder::PossibleValuesParser::new(airlock_serve::MIRRORS))]
    pub mirrors: Vec<String>,
    /// Serve HTTPS with this certificate (PEM, the chain after it).
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a CA and server certificate kept in DIR (made on first use); prints
    /// how clients trust the CA.
    #[arg(long, value_name = "DIR")]
    pub tls_self_signed: Option<PathBuf>,
}

/// ansible-playbook's everyday flags, with the same meaning.
#[derive(Args, Debug, Default)]
pub struct PlaybookArgs {
    /// Playbook files to run, in order.
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Inventory file or directory, or a comma-separated host list (`localhost,`). Repeatable.
    #[arg(short = 'i', long = "inventory", alias = "inventory-file", value_name = "INVENTORY")]
    pub inventory: Vec<String>,
    /// Extra variables: `key=value` pairs, a JSON/YAML mapping, or `@file`. Repeatable; later wins.
    #[arg(short = 'e', long = "extra-vars", value_name = "EXTRA_VARS")]
    pub extra_vars: Vec<String>,
    /// Only run plays and tasks tagged with these values (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Only run plays and tasks whose tags do not match these values.
    #[arg(long = "skip-tags", value_name = "SKIP_TAGS")]
    pub skip_tags: Vec<String>,
    /// Don't make any changes; predict some of the changes that may occur.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// When changing (small) files and templates, show the differences.
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    /// Further limit selected hosts to an additional pattern.
    #[arg(short = 'l', long = "limit", value_name = "SUBSET")]
    pub limit: Option<String>,
    /// List all tasks that would be executed.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List all available tags.
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    /// List the variables each play sees on each host (after --limit, with -e), where each
    /// value comes from and what it overrides; run nothing.
    #[arg(long = "list-vars")]
    pub list_vars: bool,
    /// Perform a syntax check on the playbook, but do not execute it.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// Start the playbook at the task matching this name.
    #[arg(long = "start-at-task", value_name = "START_AT_TASK")]
    pub start_at_task: Option<String>,
    /// Verbose mode (-vvv for more).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write every event as a JSON line to this file.
    #[arg(long = "json-events", value_name = "FILE")]
    pub json_events: Option<PathBuf>,
    /// How many hosts run a task at once (default 5, or `forks` in ansible.cfg / ANSIBLE_FORKS).
    #[arg(short = 'f', long = "forks", value_name = "FORKS")]
    pub forks: Option<usize>,
    /// Connection type when neither the host nor the play names one: `local` or `ssh`.
    #[arg(short = 'c', long = "connection", value_name = "CONNECTION")]
    pub connection: Option<String>,
    /// Run operations with become (a no-op when already root).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
}

/// Parses the command line and runs; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Playbook(a) => playbook(a),
        Command::Archive(a) => archive(a.command),
        Command::Serve(a) => serve(a),
        Command::InternalModule => run::escalate::child_main(),
    }
}

fn serve(a: ServeArgs) -> i32 {
    let opts = airlock_serve::ServeOptions {
        root: a.root,
        bind: a.bind,
        registry_port: a.registry_port,
        yum_port: a.yum_port,
        helm_port: a.helm_port,
        pip_port: a.pip_port,
        files_port: a.files_port,
        registry_writable: a.registry_writable,
        mirrors: a.mirrors,
        tls: match (a.tls_cert, a.tls_key, a.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(airlock_serve::tls::TlsSource::Files { cert, key }),
            (_, _, Some(dir)) => Some(airlock_serve::tls::TlsSource::SelfSigned(dir)),
            _ => None,
        },
    };
    match airlock_serve::run(&opts) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("ERROR! {msg}");
            1
        }
    }
}

fn split_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn playbook(a: PlaybookArgs) -> i32 {
    let mut extra = serde_json::Map::new();
    let mut extra_from = Vec::new();
    for e in &a.extra_vars {
        match airlock_runner::vars::parse_extra_vars(e) {
            Ok(m) => {
                extra.extend(m.clone());
                extra_from.push((e.clone(), m));
            }
            Err(msg) => {
                eprintln!("ERROR! {msg}");
                return run::exit::BAD_OPTIONS;
            }
        }
    }
    if let Some(c) = &a.connection
        && !run::connection::SUPPORTED.contains(&c.as_str())
    {
        eprintln!("ERROR! connection '{c}' is not supported; airlock connects with: {}", run::connection::SUPPORTED.join(", "));
        return run::exit::BAD_OPTIONS;
    }
    if a.forks == Some(0) {
        eprintln!("ERROR! --forks must be at least 1");
        return run::exit::BAD_OPTIONS;
    }
    let config = airlock_runner::config::Config::load();
    for w in &config.warnings {
        eprintln!("[WARNING]: {w}");
    }
    let mut inventory = a.inventory.clone();
    if inventory.is_empty() {
        inventory = config.inventory.clone();
    }
    let opts = RunOptions {
        inventory,
        extra_vars: extra,
        extra_vars_from: extra_from,
        tags: split_list(&a.tags),
        skip_tags: split_list(&a.skip_tags),
        check: a.check,
        diff: a.diff,
        limit: a.limit,
        list_tasks: a.list_tasks,
        list_tags: a.list_tags,
        list_vars: a.list_vars,
        syntax_check: a.syntax_check,
        start_at_task: a.start_at_task,
        verbosity: a.verbose,
        json_events: a.json_events,
        roles_path: config.roles_path,
        become_: a.become_,
        connection: a.connection.clone(),
        forks: a.forks.or(config.forks).unwrap_or(5),
    };
    run::run(&a.playbooks, opts)
}

fn archive(cmd: ArchiveCommand) -> i32 {
    use airlock_content::archive::{self, human_size};
    let fail = |e: archive::ArchiveError| {
        eprintln!("ERROR! {e}");
        1
    };
    match cmd {
        ArchiveCommand::Inspect { path } => match archive::inspect_archive(&path) {
            Ok(r) => {
                let m = &r.manifest;
                println!("archive:         {} ({}, {})", path.display(), r.compression.name(), human_size(r.archive_bytes));
                println!("format version:  {}", m.format_version);
                println!("created:         {}", m.created);
                println!("airlock version: {}", m.airlock_version);
                println!("artifacts:       {} ({})", r.total.count, human_size(r.total.bytes));
                println!();
                let mut rows: Vec<(String, String, String)> = r.by_kind.iter().map(|(k, t)| (k.clone(), t.count.to_string(), human_size(t.bytes))).collect();
                rows.push(("total".into(), r.total.count.to_string(), human_size(r.total.bytes)));
                let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
                let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(5);
                let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(4);
                println!("{:<w0$}  {:>w1$}  {:>w2$}", "KIND", "COUNT", "SIZE");
                for (i, (k, c, s)) in rows.iter().enumerate() {
                    if i + 1 == rows.len() {
                        println!("{}", "-".repeat(w0 + w1 + w2 + 4));
                    }
                    println!("{k:<w0$}  {c:>w1$}  {s:>w2$}");
                }
                0
            }
            Err(e) => fail(e),
        },
        ArchiveCommand::Verify { path } => match archive::verify_archive(&path) {
            Ok(r) if r.is_ok() => {
                let kinds: Vec<String> = r.manifest.by_kind().iter().map(|(k, t)| format!("{k} {}", t.count)).collect();
                println!("OK: {} artifacts, {} verified in {} ({})", r.files_ok, human_size(r.bytes_checked), path.display(), kinds.join(", "));
                0
            }
            Ok(r) => {
                for p in &r.problems {
                    println!("{p}");
                }
                println!("FAILED: {} problem(s) in {}; {} of {} artifacts OK", r.problems.len(), path.display(), r.files_ok, r.manifest.artifacts.len());
                1
            }
            Err(e) => fail(e),
        },
        ArchiveCommand::Create { cache, from_manifest, level, threads, out } => {
            let manifest = match from_manifest {
                Some(p) => archive::Manifest::load(&p),
                None => archive::Manifest::scan(&cache, &|p| ("file".to_string(), format!("file:{p}"))),
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => return fail(e),
            };
            let opts = archive::WriteOptions { level, threads, ..Default::default() };
            match archive::write_archive(&cache, &manifest, &out, opts) {
                Ok(r) => {
                    println!(
                        "wrote {}: {} artifacts, {} ({}), archive {}",
                        r.path.display(),
                        r.artifacts,
                        human_size(r.bytes),
                        r.compression.name(),
                        human_size(r.archive_bytes)
                    );
                    0
                }
                Err(e) => fail(e),
            }
        }
        ArchiveCommand::Scan { cache, kind } => match archive::Manifest::scan(&cache, &|p| (kind.clone(), format!("file:{p}"))) {
            Ok(m) => {
                print!("{}", m.to_json());
                0
            }
            Err(e) => fail(e),
        },
        ArchiveCommand::Extract { path, dest } => match archive::extract_archive(&path, &dest, Default::default()) {
            Ok(r) => {
                println!(
                    "extracted into {}: {} written ({}), {} already in place ({})",
                    r.dest.display(),
                    r.written,
                    human_size(r.bytes_written),
                    r.skipped,
                    human_size(r.bytes_skipped)
                );
                0
            }
            Err(e) => fail(e),
        },
    }
}

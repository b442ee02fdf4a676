//! Killed runs: `airlock` SIGKILLed at many points of build-offline-cache and of
//! build-offline-mirrors (during unpacking and during registry population), then run again.
//! After every kill, no file of the cache (or of the unpacked tree, or of the registry storage)
//! may hold bytes other than the ones its checksum names, no half-written archive may sit at
//! `tar_file_path`, and no process of the killed run may go on; every rerun must complete, and
//! its result must verify. The upstreams are the real ones of `support/upstreams.rs`.
//!
//! The kill points are a deterministic spread over the run plus a seeded jitter; the seed is
//! printed (set `AIRLOCK_FAULTS_SEED` to replay one). The counts are printed for
//! docs/reliability.md; the tests assert there was no failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::upstreams::Upstreams;
use crate::support::{self, Project, registry, sha256_hex};

fn playbook(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks").join(name)
}

/// A small seeded generator (xorshift64*): the jitter must be reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("AIRLOCK_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
        eprintln!("{test}: seed {seed} (replay with AIRLOCK_FAULTS_SEED={seed})");
        Rng(seed.max(1))
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the fault runs did, printed at the end and asserted on.
#[derive(Default)]
struct Tally {
    /// Every airlock run started (killed ones and reruns).
    runs: usize,
    /// Runs that SIGKILL actually interrupted (not those that finished first).
    kills: usize,
    /// Files found holding bytes their checksum does not name (after a kill or a rerun).
    bad_files: usize,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        eprintln!("FAILURE: {what}");
        self.failures.push(what);
    }

    fn report(&self, scenario: &str) {
        eprintln!(
            "{scenario}: {} runs, {} kills injected, {} failures, {} files left holding bad bytes",
            self.runs,
            self.kills,
            self.failures.len(),
            self.bad_files
        );
        for f in &self.failures {
            eprintln!("  - {f}");
        }
    }
}

/// Starts `airlock ARGS` in the project directory as `Project::airlock` would, output to files.
fn spawn(p: &Project, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env_remove("ANSIBLE_CONFIG")
        .env("HOME", p.dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// SIGKILLs `child` once `ready` holds and `delay` more has passed; false when it exited first
/// (then nothing was interrupted).
fn kill_when(child: &mut Child, ready: &dyn Fn() -> bool, delay: Duration) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    // Polled without sleeping: the windows asked for (registry population) are milliseconds.
    while !ready() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "the run never reached the kill point");
        std::thread::yield_now();
    }
    let at = Instant::now() + delay;
    while Instant::now() < at {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200).min(at.saturating_duration_since(Instant::now())));
    }
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    true
}

/// Processes (other than this test) whose command line names `dir` three seconds after the
/// kill: what a killed run left running. (The kernel tells airlock's children of its death;
/// they get a moment to end their own.) They are killed (they descend from this test's runs),
/// and returned for the report.
fn orphans_under(dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found = processes_naming(dir, false);
        if found.is_empty() || Instant::now() > deadline {
            return processes_naming(dir, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn processes_naming(dir: &Path, kill: bool) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        // A zombie has no command line; a live process of a killed run names its files. The
        // mirrors' `airlock serve` is detached on purpose (its pid file stops it).
        if cmd.contains(&needle) && !cmd.contains(" serve --root ") {
            found.push(format!("pid {pid}: {}", cmd.trim()));
            if kill {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
            }
        }
    }
    found
}

/// Every file under `dir` with its path relative to `dir`.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), p));
            }
        }
    }
    out.sort();
    out
}

/// Whether a path is one of the temporaries a run writes before renaming into place: download
/// `.part`s, `tempfile`'s `.tmp*`, the file modules' `.*.airlock-tmp`, pip's work directory, extraction's staging, the registry
/// import's staging.
fn temporary(rel: &str) -> bool {
    rel.split('/').any(|c| {
        c.ends_with(".part")
            || c.starts_with(".tmp")
            || c.ends_with(".airlock-tmp")
            || c.starts_with(".airlock-pip-")
            || c.starts_with(".airlock-staging-")
            || c.starts_with(".airlock-import-")
    })
}

/// path -> (size, sha256) of an archive's manifest.
type Expected = BTreeMap<String, (u64, String)>;

fn archive_manifest(archive: &Path) -> Expected {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut first = tar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_string_lossy(), "manifest.json");
    let m: serde_json::Value = serde_json::from_reader(&mut first).unwrap();
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["path"].as_str().unwrap().to_string(), (a["size"].as_u64().unwrap(), a["sha256"].as_str().unwrap().to_string())))
        .collect()
}

fn file_sha(p: &Path) -> Option<String> {
    std::fs::read(p).ok().map(|b| sha256_hex(&b))
}

/// Checks the files under `root` after a kill (or a rerun): each one the manifest lists holds
/// its bytes; a content-addressed blob holds the bytes of its name; any other is JSON that
/// parses (a torn index or fragment would not) or one of `known` (what a full run leaves beside
/// the artifacts). Temporaries are counted, not judged: nothing reads them.
fn check_tree(root: &Path, expected: &Expected, known: &dyn Fn(&str) -> bool, when: &str, t: &mut Tally) -> usize {
    let mut temps = 0;
    for (rel, path) in files(root) {
        if temporary(&rel) {
            temps += 1;
            continue;
        }
        if let Some((size, sha)) = expected.get(&rel) {
            let got = file_sha(&path);
            if got.as_deref() != Some(sha.as_str()) {
                t.bad_files += 1;
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                t.fail(format!("{when}: {} holds {len} bytes with sha256 {got:?}, the manifest says {size} bytes {sha}", path.display()));
            }
        } else if let Some(hex) = rel.strip_prefix("docker-images/blobs/sha256/") {
            if file_sha(&path).as_deref() != Some(hex) {
                t.bad_files += 1;
                t.fail(format!("{when}: blob {} does not hash to its name", path.display()));
            }
        } else if rel.ends_with(".json") || rel.ends_with("oci-layout") {
            if serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap()).is_err() {
                t.bad_files += 1;
                t.fail(format!("{when}: {} is not whole JSON", path.display()));
            }
        } else if !known(&rel) {
            t.fail(format!("{when}: unexpected file {} (neither an artifact nor what a full run leaves)", path.display()));
        }
    }
    temps
}

// ---------------------------------------------------------------------------------------------
// build-offline-cache

#[test]
fn build_offline_cache_survives_sigkill_anywhere() {
    let up = Upstreams::start();
    let p = Project::new();
    let pb = playbook("build-offline-cache.yml");
    let pb = pb.to_str().unwrap();
    let mut t = Tally::default();
    let mut rng = Rng::from_env("build-offline-cache");

    // The reference: one full run, timed. Its archive's manifest is what every file must match.
    let base = p.path("base");
    std::fs::create_dir_all(&base).unwrap();
    let cfg = |dir: &Path| {
        let rel = dir.strip_prefix(p.dir.path()).unwrap().join("config.yml");
        std::fs::write(p.path(rel.to_str().unwrap()), up.config(&dir.join("cache"), &dir.join("archive.tar"), "3.10")).unwrap();
        rel.to_string_lossy().into_owned()
    };
    // Timed twice, into two fresh caches: the first run also fills pip's own cache (in HOME),
    // which makes every later run faster; the second is what a kill point is a fraction of.
    let mut duration = Duration::ZERO;
    for warm in [false, true] {
        let dir = if warm { p.path("base-warm") } else { base.clone() };
        std::fs::create_dir_all(&dir).unwrap();
        let config = cfg(&dir);
        let started = Instant::now();
        let mut child = spawn(&p, &["playbook", "-i", "localhost,", pb, "-e", &format!("@{config}")], &dir.join("log"));
        assert!(child.wait().unwrap().success(), "the reference run failed:\n{}", std::fs::read_to_string(dir.join("log")).unwrap());
        duration = started.elapsed();
        t.runs += 1;
    }
    let expected = archive_manifest(&base.join("archive.tar"));
    let known: BTreeSet<String> = files(&base.join("cache")).into_iter().map(|(r, _)| r).filter(|r| !expected.contains_key(r)).collect();
    eprintln!("reference run: {duration:?}, {} artifacts; also left: {known:?}", expected.len());
    assert!(expected.len() > 10);

    // Kill points spread over the whole run (and a little past its start), each jittered within
    // its slot; every fourth point's rerun is killed again before the run that completes.
    const POINTS: usize = 22;
    for i in 0..POINTS {
        let dir = p.path(&format!("k{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = cfg(&dir);
        let args = ["playbook", "-i", "localhost,", pb, "-e", &format!("@{config}")];
        let cache = dir.join("cache");
        let archive = dir.join("archive.tar");
        let frac = (i as f64 + 0.2 + 0.6 * rng.unit()) / POINTS as f64;
        let kills_here = if i % 4 == 3 { 2 } else { 1 };
        for k in 0..kills_here {
            // The second kill lands earlier in its run: it has less left to do.
            let at = duration.mul_f64(if k == 0 { frac } else { frac * rng.unit() });
            let mut tries = 0;
            let mut killed_at = None;
            loop {
                let after = at.mul_f64(0.85f64.powi(tries));
                let mut child = spawn(&p, &args, &dir.join(format!("log-{k}-{tries}")));
                t.runs += 1;
                if kill_when(&mut child, &|| true, after) {
                    t.kills += 1;
                    killed_at = Some(after);
                    break;
                }
                // The run finished before the kill point (this one was faster than the
                // reference). A first kill starts again from an empty cache, a little
                // earlier; a second kill is simply not had (its run completed the cache).
                tries += 1;
                if k > 0 || tries == 8 {
                    break;
                }
                std::fs::remove_dir_all(&cache).unwrap();
                let _ = std::fs::remove_file(&archive);
            }
            eprintln!("point {i}, kill {k}: {}", killed_at.map(|a| format!("killed {a:?} in")).unwrap_or_else(|| "the run finished first".into()));
            let when = format!("point {i} (kill {k} at {at:?})");
            for o in orphans_under(&dir) {
                t.fail(format!("{when}: a process of the killed run lives on: {o}"));
            }
            check_tree(&cache, &expected, &|r| known.contains(r), &format!("{when}, after the kill"), &mut t);
            // tar_file_path holds a complete archive or nothing.
            if archive.exists() {
                let v = p.airlock(&["archive", "verify", archive.to_str().unwrap()]);
                if v.code != 0 {
                    t.fail(format!("{when}: a half-written archive at {}: {}{}", archive.display(), v.stdout, v.stderr));
                }
            }
        }
        let rerun = p.airlock(&args);
        t.runs += 1;
        if rerun.code != 0 {
            t.fail(format!("point {i}: the rerun failed (exit {}):\n{}\n{}", rerun.code, rerun.stdout, rerun.stderr));
            continue;
        }
        let when = format!("point {i}, after the rerun");
        let temps = check_tree(&cache, &expected, &|r| known.contains(r), &when, &mut t);
        if temps > 0 {
            let left: Vec<String> = files(&cache).into_iter().map(|(r, _)| r).filter(|r| temporary(r)).collect();
            t.fail(format!("{when}: temporaries of the killed run are left in the cache for good: {left:?}"));
        }
        let v = p.airlock(&["archive", "verify", archive.to_str().unwrap()]);
        if v.code != 0 {
            t.fail(format!("{when}: the archive does not verify: {}{}", v.stdout, v.stderr));
        } else if archive_manifest(&archive) != expected {
            t.fail(format!("{when}: the archive lists other artifacts than the reference run's"));
        }
    }
    t.report("build-offline-cache");
    assert!(t.kills >= 20, "only {} kills landed before the runs ended", t.kills);
    assert!(t.failures.is_empty(), "{} failures (listed above)", t.failures.len());
}

// ---------------------------------------------------------------------------------------------
// build-offline-mirrors

/// Stops the detached `airlock serve` a mirrors run started (embedded backend), however the
/// test ends; by the pid the playbook recorded.
struct Served(PathBuf);

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("airlock-serve.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

/// Where a killed mirrors run was, seen from what it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    BeforeUnpacking,
    Unpacking,
    BetweenSteps,
    RegistryPopulation,
    After,
}

/// The registry storage's files: every blob's `data` hashes to its directory's name, every
/// link names `sha256:<hex>` of a blob that is there. A link to a missing or torn blob is a
/// registry serving broken content. Returns the tags whose `current/link` is in place.
fn check_storage(storage: &Path, when: &str, t: &mut Tally) -> BTreeSet<String> {
    let v2 = storage.join("docker/registry/v2");
    let mut tags = BTreeSet::new();
    for (rel, path) in files(storage) {
        if temporary(&rel) {
            continue;
        }
        let Some(rel) = rel.strip_prefix("docker/registry/v2/") else {
            t.fail(format!("{when}: unexpected file {} in the registry storage", path.display()));
            continue;
        };
        if let Some(rest) = rel.strip_prefix("blobs/sha256/") {
            let hex = rest.split('/').nth(1).unwrap_or("");
            if file_sha(&path).as_deref() != Some(hex) {
                t.bad_files += 1;
                t.fail(format!("{when}: registry blob {} does not hash to its name", path.display()));
            }
        } else if rel.ends_with("/link") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let hex = text.strip_prefix("sha256:").unwrap_or("");
            let blob = v2.join("blobs/sha256").join(hex.get(..2).unwrap_or("")).join(hex).join("data");
            if hex.len() != 64 || file_sha(&blob).as_deref() != Some(hex) {
                t.bad_files += 1;
                t.fail(format!("{when}: link {} holds {text:?}, which names no whole blob", path.display()));
            }
            if let Some(tag) = rel.strip_suffix("/current/link") {
                tags.insert(tag.replace("/_manifests/tags/", ":").replace("repositories/", ""));
            }
        }
    }
    tags
}

#[test]
fn build_offline_mirrors_survives_sigkill_while_unpacking_and_populating_the_registry() {
    let up = Upstreams::start();
    let p = Project::new();
    let mut t = Tally::default();
    let mut rng = Rng::from_env("build-offline-mirrors");

    // The archive, with one large file so that unpacking lasts long enough to be interrupted
    // at several points.
    let big: Vec<u8> = (0..48u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let big_sum = sha256_hex(&big);
    let big_url = support::serve_routes(vec![("/big.bin", 200, big)]);
    p.file("config.yml", &up.config(&p.path("cache"), &p.path("deepops-archive.tar"), "3.10"));
    p.file(
        "files.yml",
        &format!(
            "misc_files:\n  - {{url: \"{}/bin/kubectl\", checksum: \"sha256:{}\"}}\n  - {{url: \"{big_url}/big.bin\", checksum: \"sha256:{big_sum}\"}}\n",
            up.files,
            sha256_hex(&up.kubectl)
        ),
    );
    let cache_pb = playbook("build-offline-cache.yml");
    p.playbook(cache_pb.to_str().unwrap(), &["-e", "@config.yml", "-e", "@files.yml"]).success();
    let archive = p.path("deepops-archive.tar");
    let expected = archive_manifest(&archive);
    let images: Vec<(String, Vec<u8>)> = ["test/app:v1", "test/multi:v1"].iter().map(|n| (n.to_string(), up.reg.raw_manifest(n))).collect();
    drop(up);

    let mirrors_pb = playbook("build-offline-mirrors.yml");
    let mirrors_pb = mirrors_pb.to_str().unwrap().to_string();
    let setup = |dir: &Path| -> (Vec<String>, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let dest = dir.join("opt/deepops");
        let rel = dir.strip_prefix(p.dir.path()).unwrap().join("mirrors.yml");
        let ports: Vec<u16> = support::free_ports(5);
        std::fs::write(
            p.path(rel.to_str().unwrap()),
            format!(
                "deepops_dest_path: \"{}\"\nmirror_bind_address: 127.0.0.1\ndeepops_mirror_host: 127.0.0.1\nmirror_backend: embedded\nmirror_embedded_systemd: false\n\
                 docker_local_registry_port: {}\nyum_mirror_port: {}\nhelm_port: {}\npip_port: {}\nnginx_misc_port: {}\n",
                dest.display(),
                ports[0], ports[1], ports[2], ports[3], ports[4]
            ),
        )
        .unwrap();
        let args = vec![
            "playbook".into(),
            "-i".into(),
            "localhost,".into(),
            mirrors_pb.clone(),
            "-e".into(),
            "@config.yml".into(),
            "-e".into(),
            format!("@{}", rel.display()),
        ];
        (args, dest)
    };
    let storage_of = |dest: &Path| dest.join("registry");
    let staging_in =
        |dest: &Path| std::fs::read_dir(dest).map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".airlock-staging-"))).unwrap_or(false);
    let phase = |dest: &Path| -> Phase {
        let v2 = storage_of(dest).join("docker/registry/v2");
        let tags = images.iter().filter(|(n, _)| {
            let (repo, tag) = n.split_once(':').unwrap();
            v2.join("repositories").join(repo).join("_manifests/tags").join(tag).join("current/link").is_file()
        });
        if !dest.join("manifest.json").is_file() {
            if staging_in(dest) { Phase::Unpacking } else { Phase::BeforeUnpacking }
        } else if !v2.exists() {
            Phase::BetweenSteps
        } else if tags.count() < images.len() {
            Phase::RegistryPopulation
        } else {
            Phase::After
        }
    };

    // The reference run: how many files a complete registry population writes.
    let base = p.path("m-base");
    let (args, dest) = setup(&base);
    let served = Served(dest.clone());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    p.airlock(&a).success();
    t.runs += 1;
    assert_eq!(phase(&dest), Phase::After, "the reference run left its storage incomplete");
    let storage_files = |storage: &Path| files(storage).iter().filter(|(r, _)| !temporary(r)).count();
    let population = storage_files(&storage_of(&dest));
    drop(served);
    let to_unpack: u64 = expected.values().map(|(size, _)| size).sum();
    let staged = |dest: &Path| -> u64 {
        files(dest).iter().filter(|(r, _)| r.starts_with(".airlock-staging-")).map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
    };
    eprintln!("reference run: {to_unpack} bytes to unpack, {population} files in the registry storage");

    // What the mirrors run writes beside the unpacked artifacts: the registry storage (checked
    // by check_storage), the clients' configuration, airlock serve's pid file and log.
    let beside_artifacts = |r: &str| r.starts_with("registry/") || r.starts_with("client-config/") || r.starts_with("airlock-serve.");
    // Kill points by progress, which timing on a loaded machine cannot give for steps this
    // short: K spread over the bytes unpacked into staging, K over the files the registry
    // population puts in place; each point jittered within its slot.
    const K: usize = 6;
    let mut landed: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut n = 0;
    // A few more after the population, while the playbook restarts airlock serve: a rerun
    // has to take over from whatever a killed run started.
    for (target, points) in [(Phase::Unpacking, K), (Phase::RegistryPopulation, K), (Phase::After, 3)] {
        // The population takes milliseconds, and a kill often lands after it on a busy machine:
        // its points go on (up to 4 rounds) until 3 have landed in it.
        let rounds = if target == Phase::RegistryPopulation { 4 } else { 1 };
        for j in 0..points * rounds {
            if j >= points && landed.get(&target).copied().unwrap_or(0) >= 3 {
                break;
            }
            let j = j % points;
            let dir = p.path(&format!("m{n:02}"));
            n += 1;
            let (args, dest) = setup(&dir);
            let _served = Served(dest.clone());
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let frac = (j as f64 + rng.unit()) / points as f64;
            let storage = storage_of(&dest);
            let (ready, point): (Box<dyn Fn() -> bool>, String) = match target {
                Phase::Unpacking => {
                    let bytes = (to_unpack as f64 * frac) as u64;
                    let dest = dest.clone();
                    (Box::new(move || staged(&dest) > bytes), format!("{bytes} of {to_unpack} bytes staged"))
                }
                Phase::After => {
                    let dest = dest.clone();
                    (Box::new(move || phase(&dest) == Phase::After), format!("{:?} after the population", Duration::from_millis(300).mul_f64(frac)))
                }
                _ => {
                    // Over the first half of the files: by the time the tree is walked to count
                    // them, the population has gone on.
                    let files = (population as f64 * frac / 2.0) as usize;
                    let storage = storage.clone();
                    (Box::new(move || storage_files(&storage) > files), format!("{files} of {population} storage files in place"))
                }
            };
            let storage = storage_of(&dest);
            let mut child = spawn(&p, &a, &dir.join("log"));
            t.runs += 1;
            let when = format!("{target:?} point {j} ({point})");
            let delay = if target == Phase::After { Duration::from_millis(300).mul_f64(frac) } else { Duration::ZERO };
            if kill_when(&mut child, &*ready, delay) {
                t.kills += 1;
                let at = phase(&dest);
                *landed.entry(at).or_default() += 1;
                eprintln!("{when}: killed during {at:?}");
            } else {
                eprintln!("{when}: the run finished first");
            }
            for o in orphans_under(&dir) {
                t.fail(format!("{when}: a process of the killed run lives on: {o}"));
            }
            check_tree(&dest, &expected, &beside_artifacts, &format!("{when}, after the kill"), &mut t);
            check_storage(&storage, &format!("{when}, after the kill"), &mut t);

            let rerun = p.airlock(&a);
            t.runs += 1;
            if rerun.code != 0 {
                // airlock serve's log says why a mirror did not answer (a port taken, ...).
                let serve_log = std::fs::read_to_string(dest.join("airlock-serve.log")).unwrap_or_default();
                t.fail(format!("{when}: the rerun failed (exit {}):\n{}\n{}\n--- airlock-serve.log\n{serve_log}", rerun.code, rerun.stdout, rerun.stderr));
                continue;
            }
            let when = format!("{when}, after the rerun");
            // Everything unpacked, byte for byte; nothing but what the rerun writes beside it.
            for (rel, (_, sha)) in &expected {
                if file_sha(&dest.join(rel)).as_deref() != Some(sha.as_str()) {
                    t.fail(format!("{when}: {} is missing or differs from the archive", dest.join(rel).display()));
                }
            }
            let leftovers: Vec<String> = files(&dest).into_iter().map(|(r, _)| r).filter(|r| temporary(r)).collect();
            if !leftovers.is_empty() {
                t.fail(format!("{when}: temporaries of the killed run are left under {} for good: {leftovers:?}", dest.display()));
            }
            let tags = check_storage(&storage, &when, &mut t);
            if tags.len() != images.len() {
                t.fail(format!("{when}: the registry storage tags {tags:?}, not all of {:?}", images.iter().map(|i| &i.0).collect::<Vec<_>>()));
            }
            // The real registry serves every image from that storage, manifests byte for
            // byte, every blob (skopeo checks each digest as it copies).
            let reg = registry::Registry::serve_storage(&storage);
            for (name, raw) in &images {
                let served = registry::try_skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/{name}", reg.host())]);
                if served.as_ref().ok() != Some(raw) {
                    t.fail(format!("{when}: the registry does not serve {name}'s manifest byte for byte: {served:?}"));
                    continue;
                }
                let out = dir.join(format!("pulled-{}", name.replace([':', '/'], "-")));
                if let Err(e) = registry::try_skopeo(&[
                    "copy",
                    "--all",
                    "--src-tls-verify=false",
                    &format!("docker://{}/{name}", reg.host()),
                    &format!("oci:{}:x", out.display()),
                ]) {
                    t.fail(format!("{when}: {name} does not copy whole from the registry: {e}"));
                }
            }
        }
    }
    eprintln!("kills landed in: {landed:?}");
    t.report("build-offline-mirrors");
    assert!(landed.get(&Phase::Unpacking).copied().unwrap_or(0) >= 3, "too few kills landed during unpacking: {landed:?}");
    assert!(landed.get(&Phase::RegistryPopulation).copied().unwrap_or(0) >= 3, "too few kills landed during registry population: {landed:?}");
    assert!(t.failures.is_empty(), "{} failures (listed above)", t.failures.len());
}

//! The `docker_image` module (`community.docker.docker_image`): load an image into the local
//! Docker Engine from a `docker save` archive or an OCI image layout, tag it, push it, or
//! remove it. It never pulls or builds.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};
use airlock_content::docker::image::{self, LayoutImage, same_reference};
use airlock_content::docker::{DockerError, Engine};
use airlock_content::sources::oci::ImageRef;

const ALLOWED: &[&str] = &["name", "tag", "source", "load_path", "repository", "push", "force_source", "force_tag", "force_absent", "state", "docker_host"];

/// The Engine named by `docker_host`, else the task's or airlock's `DOCKER_HOST`, else the
/// default socket (as community.docker finds it).
pub(super) fn connect(a: &Args) -> Result<Engine, ModuleFail> {
    let from_task = super::command::task_environment(a).into_iter().find(|(k, _)| k == "DOCKER_HOST").map(|(_, v)| v);
    let host = args::opt_str(a, "docker_host")?.or(from_task).filter(|h| !h.trim().is_empty());
    match host {
        Some(h) => Engine::connect_to(h.trim()),
        None => Engine::connect(),
    }
    .map_err(fail)
}

/// `name[:tag]` split as community.docker does: a tag in the name wins over `tag`.
fn split_name(name: &str, tag: &str) -> (String, String) {
    let last_slash = name.rfind('/');
    match name.rfind(':') {
        Some(i) if last_slash.is_none_or(|j| i > j) => (name[..i].to_string(), name[i + 1..].to_string()),
        _ => (name.to_string(), tag.to_string()),
    }
}

pub(super) fn fail(e: DockerError) -> ModuleFail {
    ModuleFail::new(e.message)
}

fn image_json(engine: &Engine, name: &str) -> Result<Value, ModuleFail> {
    Ok(engine.inspect_image(name).map_err(fail)?.map(|i| serde_json::to_value(i).unwrap_or(Value::Null)).unwrap_or_else(|| json!({})))
}

/// Where an image is loaded from, and the ID it will have.
enum Load {
    Archive { path: PathBuf, id: Option<String> },
    Layout { image: Box<LayoutImage> },
}

/// Finds `want` in `load_path` (a layout directory or an archive file) before anything is
/// sent to Docker.
fn plan_load(load_path: &str, want: &ImageRef, shown: &str, engine: &Engine) -> Result<Load, ModuleFail> {
    let path = PathBuf::from(load_path);
    if path.is_dir() {
        let img = image::resolve_layout(&path, want, &engine.platform).map_err(fail)?;
        return Ok(Load::Layout { image: Box::new(img) });
    }
    if !path.is_file() {
        return Err(ModuleFail::new(format!("Error loading image {shown}. Specified path {load_path} does not exist.")));
    }
    let images = image::read_archive(&path).map_err(fail)?;
    let found = images.iter().find(|i| i.repo_tags.iter().any(|t| same_reference(t, want)));
    match found {
        Some(i) => Ok(Load::Archive { path, id: i.id.clone() }),
        None => {
            let tags: Vec<String> = images.iter().flat_map(|i| i.repo_tags.clone()).collect();
            Err(ModuleFail::new(format!(
                "The archive {load_path} does not contain image {shown}; it holds {}",
                if tags.is_empty() { "only untagged images".to_string() } else { tags.join(", ") }
            )))
        }
    }
}

/// Runs `docker_image`.
pub fn run(a: &Args, ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "docker_image", ALLOWED)?;
    let state = args::opt_choice(a, "state", &["present", "absent"])?.unwrap_or_else(|| "present".into());
    let source = args::opt_choice(a, "source", &["build", "load", "pull", "local"])?;
    if let Some(s @ ("pull" | "build")) = source.as_deref() {
        return Err(ModuleFail::new(format!(
            "source: {s} is not supported: airlock never pulls or builds images; load them with source: load (load_path: an OCI layout from image_cache, or a docker save archive)"
        )));
    }
    let (repo, tag) = split_name(&args::req_str(a, "name")?, &args::opt_str(a, "tag")?.unwrap_or_else(|| "latest".into()));
    let shown = format!("{repo}:{tag}");
    let want = ImageRef::parse(&shown).map_err(|e| ModuleFail::new(e.to_string()))?;
    let force_source = args::bool_or(a, "force_source", false)?;
    let force_tag = args::bool_or(a, "force_tag", false)?;
    let push = args::bool_or(a, "push", false)?;
    let engine = connect(a)?;

    if state == "absent" {
        let existing = engine.inspect_image(&shown).map_err(fail)?;
        let Some(img) = existing else {
            return Ok(ModuleResult::ok().with("image", json!({})).with("actions", json!([])).with_msg(format!("image {shown} is not in Docker")));
        };
        if !ctx.check_mode {
            engine.remove_image(&shown, args::bool_or(a, "force_absent", false)?).map_err(fail)?;
        }
        let mut image = serde_json::to_value(img).unwrap_or(Value::Null);
        image["state"] = json!("Deleted");
        let verb = if ctx.check_mode { "Would remove" } else { "Removed" };
        return Ok(ModuleResult::changed(true)
            .with("image", image)
            .with("actions", json!([format!("Removed image {shown}")]))
            .with_msg(format!("{verb} image {shown}")));
    }

    let mut actions: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let existing = engine.inspect_image(&shown).map_err(fail)?;
    let existing_id = existing.as_ref().and_then(|i| i.id.clone());
    match source.as_deref() {
        Some("load") => {
            let load_path = args::opt_str(a, "load_path")?
                .ok_or_else(|| ModuleFail::new("state is present but all of the following are missing: load_path (source: load needs it)"))?;
            let plan = plan_load(&load_path, &want, &shown, &engine)?;
            let expected = match &plan {
                Load::Archive { id, .. } => id.clone(),
                Load::Layout { image } => Some(image.config_digest.clone()),
            };
            let up_to_date = existing_id.is_some() && expected.is_some() && existing_id == expected;
            if !up_to_date || force_source {
                actions.push(format!("Loaded image {shown} from {load_path}"));
                if !ctx.check_mode {
                    let lines = match plan {
                        Load::Archive { path, .. } => engine
                            .load_image(&format!("{} into Docker", path.display()), move |w| {
                                let mut f = std::fs::File::open(&path)?;
                                std::io::copy(&mut f, w).map(|_| ())
                            })
                            .map_err(fail)?,
                        Load::Layout { image } => {
                            let tag = shown.clone();
                            let what = format!(
                                "{} ({}) from {load_path} into Docker",
                                image.reference,
                                image.platform.clone().unwrap_or_else(|| "single platform".into())
                            );
                            engine.load_image(&what, move |w| image.write_archive(&tag, w)).map_err(fail)?
                        }
                    };
                    let loaded = engine.inspect_image(&shown).map_err(fail)?;
                    let loaded_id = loaded.as_ref().and_then(|i| i.id.clone());
                    match (&loaded_id, &expected) {
                        (None, _) => {
                            return Err(ModuleFail::new(format!(
                                "Docker loaded {load_path} but has no image {shown} afterwards; it said: {}",
                                lines.join("; ")
                            )));
                        }
                        (Some(got), Some(want_id)) if got != want_id => {
                            return Err(ModuleFail::new(format!(
                                "after loading {load_path}, image {shown} has ID {got}, but its config digest is {want_id}: the Docker Engine ({}) stores images differently (containerd image store?); the image is loaded, check it with `docker image inspect {shown}`",
                                engine.version
                            )));
                        }
                        _ => {}
                    }
                    if existing_id.is_some() && existing_id == loaded_id {
                        // Reloaded (force_source) with the same content.
                        actions.pop();
                    }
                }
            }
        }
        _ => {
            if existing.is_none() {
                let hint = if source.is_none() { " (set source: load with load_path to load it)" } else { "" };
                return Err(ModuleFail::new(format!("Cannot find the image {shown} locally{hint}.")));
            }
        }
    }

    let mut pushed = shown.clone();
    if let Some(repository) = args::opt_str(a, "repository")? {
        let (trepo, ttag) = split_name(&repository, &tag);
        ImageRef::parse(&format!("{trepo}:{ttag}")).map_err(|e| ModuleFail::new(e.to_string()))?;
        let target = format!("{trepo}:{ttag}");
        pushed = target.clone();
        let source_id = if ctx.check_mode && !actions.is_empty() { None } else { engine.inspect_image(&shown).map_err(fail)?.and_then(|i| i.id) };
        let current = engine.inspect_image(&target).map_err(fail)?.and_then(|i| i.id);
        let same = current.is_some() && current == source_id;
        if !same {
            if current.is_none() || force_tag {
                actions.push(format!("Tagged image {shown} to {target}"));
                if !ctx.check_mode {
                    engine.tag_image(&shown, &trepo, &ttag).map_err(fail)?;
                }
            } else {
                notes.push(format!("{target} already names another image; set force_tag: true to move it"));
            }
        }
    }
    if push {
        if ctx.check_mode {
            actions.push(format!("Pushed image {pushed}"));
        } else {
            let (prepo, ptag) = split_name(&pushed, "latest");
            if engine.push_image(&prepo, &ptag).map_err(fail)? {
                actions.push(format!("Pushed image {pushed}"));
            }
        }
    }

    let changed = !actions.is_empty();
    let image = if ctx.check_mode && existing.is_none() { json!({}) } else { image_json(&engine, &shown)? };
    let mut msg = if changed {
        let verb = if ctx.check_mode { "would be done" } else { "done" };
        format!("{}: {verb}", actions.join(", "))
    } else {
        format!("image {shown} is present")
    };
    for n in &notes {
        msg.push_str("; ");
        msg.push_str(n);
    }
    Ok(ModuleResult::changed(changed).with("image", image).with("actions", json!(actions)).with_msg(msg))
}

#[cfg(test)]
mod tests {
    use super::split_name;

    #[test]
    fn names_split_as_community_docker() {
        let s = |n: &str, t: &str| split_name(n, t);
        assert_eq!(s("registry:2.8.3", "latest"), ("registry".into(), "2.8.3".into()));
        assert_eq!(s("registry", "2"), ("registry".into(), "2".into()));
        assert_eq!(s("127.0.0.1:5000/registry", "2"), ("127.0.0.1:5000/registry".into(), "2".into()));
        assert_eq!(s("127.0.0.1:5000/registry:2.8.3", "x"), ("127.0.0.1:5000/registry".into(), "2.8.3".into()));
    }
}

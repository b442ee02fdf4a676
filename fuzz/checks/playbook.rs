//! The playbook loader on arbitrary text: the YAML 1.1 reader (every document of the stream,
//! then each node's JSON form), then the loader from text to plays, blocks, tasks and roles.

use std::path::PathBuf;
use std::sync::OnceLock;

use airlock_runner::playbook::{LoadOptions, parse_playbook};

/// One directory for every run: the loader anchors relative imports and `roles/` at the
/// playbook's directory, and an empty one keeps inputs from reaching the repository's files
/// through a relative name.
fn playbook_path() -> &'static PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path().join("site.yml"))
}

/// One input, checked as the fuzz target and the corpus replay in tests/ check it.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(docs) = airlock_base::yaml::parse_documents(text) {
        for d in &docs {
            let _ = d.to_json();
        }
    }
    let _ = airlock_base::yaml::parse_json(text);
    let _ = parse_playbook(text, playbook_path(), &LoadOptions::default());
}

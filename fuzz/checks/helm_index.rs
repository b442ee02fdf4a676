//! The Helm repository index on arbitrary bytes: parsed and checked as a sync reads
//! `index.yaml`, then the chart selection (all charts, and by name and version constraint)
//! and the local index written back, as a sync without downloads would.

use airlock_content::sources::helm::{HelmRepo, parse_index, select_offline};

/// One input, checked as the fuzz target and the corpus replay in tests/ check it.
pub fn run(data: &[u8]) {
    let Ok(index) = parse_index(data) else { return };
    let all = HelmRepo { name: "stable".into(), url: "https://charts.example.com/stable".into(), charts: None, versions: None };
    let _ = select_offline(&all, &index);
    // Constraints taken from the index itself, so selection by version gets exercised on
    // names and versions the input really holds.
    let entries = index.get("entries").and_then(|e| e.as_object());
    if let Some((name, versions)) = entries.and_then(|e| e.iter().next()) {
        let version = versions.get(0).and_then(|v| v.get("version")).and_then(|v| v.as_str()).unwrap_or("*").to_string();
        let picky = HelmRepo {
            name: "picky".into(),
            url: "http://127.0.0.1:8080/charts/".into(),
            charts: Some(vec![name.clone()]),
            versions: Some(vec![version, ">=1.0.0 <2.0.0".into(), "~0.1".into()]),
        };
        let _ = select_offline(&picky, &index);
    }
}

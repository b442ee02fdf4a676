//! The `setup` module: the host's facts, gathered where the module runs. The executor's
//! implicit "Gathering Facts" task runs it on hosts reached over SSH; a playbook may call it
//! too (`setup: filter=ansible_distribution*`).

use serde_json::{Map, Value};

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome, ModuleResult, args};

const ALLOWED: &[&str] = &["filter", "gather_subset", "gather_timeout", "fact_path"];

/// Runs `setup`.
pub fn run(a: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    args::check_known(a, "setup", ALLOWED)?;
    let filters = args::opt_list(a, "filter")?.unwrap_or_default();
    let patterns = filters
        .iter()
        .map(|f| glob::Pattern::new(f.strip_prefix("ansible_").unwrap_or(f)).map_err(|e| ModuleFail::new(format!("filter '{f}' is not a valid pattern: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let facts: Map<String, Value> =
        airlock_base::facts::gather().into_iter().filter(|(k, _)| patterns.is_empty() || patterns.iter().any(|p| p.matches(k))).collect();
    Ok(ModuleResult::changed(false).with("ansible_facts", Value::Object(facts)))
}

//! The `copy` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `copy`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module copy is not implemented yet"))
}

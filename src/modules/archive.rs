//! The `archive` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `archive`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module archive is not implemented yet"))
}

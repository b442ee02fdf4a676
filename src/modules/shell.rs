//! The `shell` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `shell`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module shell is not implemented yet"))
}

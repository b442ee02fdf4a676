//! The `command` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `command`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module command is not implemented yet"))
}

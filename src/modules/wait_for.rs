//! The `wait_for` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `wait_for`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module wait_for is not implemented yet"))
}

//! The `pause` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `pause`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module pause is not implemented yet"))
}

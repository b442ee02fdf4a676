//! The `stat` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `stat`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module stat is not implemented yet"))
}

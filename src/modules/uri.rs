//! The `uri` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `uri`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module uri is not implemented yet"))
}

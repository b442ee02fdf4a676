//! The `unarchive` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `unarchive`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module unarchive is not implemented yet"))
}

//! The `template` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `template`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module template is not implemented yet"))
}

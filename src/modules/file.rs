//! The `file` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `file`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module file is not implemented yet"))
}

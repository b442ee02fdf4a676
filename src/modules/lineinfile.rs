//! The `lineinfile` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `lineinfile`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module lineinfile is not implemented yet"))
}

//! The `get_url` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `get_url`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module get_url is not implemented yet"))
}

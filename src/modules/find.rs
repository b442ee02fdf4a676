//! The `find` module.

use super::{Args, ModuleContext, ModuleFail, ModuleOutcome};

/// Runs `find`.
pub fn run(_args: &Args, _ctx: &ModuleContext) -> ModuleOutcome {
    Err(ModuleFail::new("module find is not implemented yet"))
}

//! The executor: plays, blocks and tasks with when, loops, register, handlers, tags, check mode.

pub mod output;

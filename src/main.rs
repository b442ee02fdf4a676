//! The `airlock` command: parses the command line and hands each subcommand to its crate.

mod cli;

fn main() {
    std::process::exit(cli::main());
}

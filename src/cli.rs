//! The command line: `airlock playbook` with ansible-playbook's flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::run::{self, RunOptions};

/// airlock runs Ansible-style playbooks and builds offline mirrors for air-gapped clusters.
#[derive(Parser, Debug)]
#[command(name = "airlock", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run playbooks, as ansible-playbook does (local connection).
    Playbook(PlaybookArgs),
    /// Internal: runs one module from a JSON request on stdin (used by `become`).
    #[command(name = "__module", hide = true)]
    InternalModule,
}

/// ansible-playbook's everyday flags, with the same meaning.
#[derive(Args, Debug, Default)]
pub struct PlaybookArgs {
    /// Playbook files to run, in order.
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Inventory file or directory, or a comma-separated host list (`localhost,`). Repeatable.
    #[arg(short = 'i', long = "inventory", alias = "inventory-file", value_name = "INVENTORY")]
    pub inventory: Vec<String>,
    /// Extra variables: `key=value` pairs, a JSON/YAML mapping, or `@file`. Repeatable; later wins.
    #[arg(short = 'e', long = "extra-vars", value_name = "EXTRA_VARS")]
    pub extra_vars: Vec<String>,
    /// Only run plays and tasks tagged with these values (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Only run plays and tasks whose tags do not match these values.
    #[arg(long = "skip-tags", value_name = "SKIP_TAGS")]
    pub skip_tags: Vec<String>,
    /// Don't make any changes; predict some of the changes that may occur.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// When changing (small) files and templates, show the differences.
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    /// Further limit selected hosts to an additional pattern.
    #[arg(short = 'l', long = "limit", value_name = "SUBSET")]
    pub limit: Option<String>,
    /// List all tasks that would be executed.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List all available tags.
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    /// Perform a syntax check on the playbook, but do not execute it.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// Start the playbook at the task matching this name.
    #[arg(long = "start-at-task", value_name = "START_AT_TASK")]
    pub start_at_task: Option<String>,
    /// Verbose mode (-vvv for more).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write every event as a JSON line to this file.
    #[arg(long = "json-events", value_name = "FILE")]
    pub json_events: Option<PathBuf>,
    /// Accepted for compatibility; hosts run one after another for now.
    #[arg(short = 'f', long = "forks", value_name = "FORKS")]
    pub forks: Option<usize>,
    /// Connection type; only `local` is supported for now.
    #[arg(short = 'c', long = "connection", value_name = "CONNECTION")]
    pub connection: Option<String>,
    /// Run operations with become (a no-op when already root).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
}

/// Parses the command line and runs; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Playbook(a) => playbook(a),
        Command::InternalModule => run::escalate::child_main(),
    }
}

fn split_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn playbook(a: PlaybookArgs) -> i32 {
    let mut extra = serde_json::Map::new();
    for e in &a.extra_vars {
        match crate::vars::parse_extra_vars(e) {
            Ok(m) => extra.extend(m),
            Err(msg) => {
                eprintln!("ERROR! {msg}");
                return run::exit::BAD_OPTIONS;
            }
        }
    }
    if let Some(c) = &a.connection
        && c != "local" {
            eprintln!("ERROR! connection '{c}' is not supported yet; airlock runs plays with the local connection");
            return run::exit::BAD_OPTIONS;
        }
    let config = crate::config::Config::load();
    let mut inventory = a.inventory.clone();
    if inventory.is_empty() {
        inventory = config.inventory.clone();
    }
    let opts = RunOptions {
        inventory,
        extra_vars: extra,
        tags: split_list(&a.tags),
        skip_tags: split_list(&a.skip_tags),
        check: a.check,
        diff: a.diff,
        limit: a.limit,
        list_tasks: a.list_tasks,
        list_tags: a.list_tags,
        syntax_check: a.syntax_check,
        start_at_task: a.start_at_task,
        verbosity: a.verbose,
        json_events: a.json_events,
        roles_path: config.roles_path,
        become_: a.become_,
        connection: a.connection.clone(),
    };
    run::run(&a.playbooks, opts)
}

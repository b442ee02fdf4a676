//! `--list-tasks` and `--list-tags`, laid out as ansible-playbook prints them.

use std::collections::BTreeSet;

use crate::inventory::Inventory;
use crate::playbook::{Body, Playbook, Task};

use super::{RunOptions, tags_selected};

/// Prints the tasks or tags of every play of a playbook.
pub(super) fn list(book: &Playbook, _inventory: &Inventory, opts: &RunOptions) {
    println!("\nplaybook: {}", book.path.display());
    for (i, play) in book.plays.iter().enumerate() {
        let hosts = match &play.hosts {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("\n  play #{} ({}): {}\tTAGS: [{}]", i + 1, hosts, play.name, play.tags.join(", "));
        let mut lines = Vec::new();
        let mut all_tags = BTreeSet::new();
        for list in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
            walk(list, &play.tags, opts, &mut lines, &mut all_tags);
        }
        if opts.list_tasks {
            println!("    tasks:");
            for l in &lines {
                println!("      {l}");
            }
        }
        if opts.list_tags {
            println!("      TASK TAGS: [{}]", all_tags.into_iter().collect::<Vec<_>>().join(", "));
        }
    }
}

fn walk(tasks: &[Task], inherited: &[String], opts: &RunOptions, lines: &mut Vec<String>, all_tags: &mut BTreeSet<String>) {
    for t in tasks {
        let mut tags: Vec<String> = inherited.to_vec();
        tags.extend(t.tags.iter().cloned());
        match &t.body {
            Body::Block { block, rescue, always } => {
                for l in [block, rescue, always] {
                    walk(l, &tags, opts, lines, all_tags);
                }
            }
            Body::Action { action, .. } => {
                if action == "meta" {
                    continue;
                }
                let set: BTreeSet<String> = tags.iter().cloned().collect();
                // --list-tags shows every tag; --list-tasks only the tasks that would run.
                all_tags.extend(set.iter().cloned());
                if !tags_selected(&opts.tags, &opts.skip_tags, &tags) {
                    continue;
                }
                lines.push(format!("{}\tTAGS: [{}]", t.display_name(), set.into_iter().collect::<Vec<_>>().join(", ")));
            }
        }
    }
}

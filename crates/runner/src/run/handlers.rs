//! Handlers: what a changed task notifies, and flushing the notified handlers (by name or
//! `listen` topic) on the hosts that notified them.

use super::{Fatal, PlayCtx, Runner};
use crate::playbook::Task;

impl Runner {
    /// A changed task notifies its handlers (by name or listen topic) on its host, each once,
    /// in notification order.
    pub(super) fn notify(&mut self, host: &str, task: &Task) {
        let hs = self.hosts.get_mut(host).unwrap();
        for n in &task.notify {
            if !hs.notified.contains(n) {
                hs.notified.push(n.clone());
            }
        }
    }

    pub(super) fn flush_handlers(&mut self, pc: &mut PlayCtx) -> Result<(), Fatal> {
        let handlers = pc.handlers.clone();
        // Unknown handler names are an error, as in Ansible.
        for h in pc.hosts.clone() {
            let notified = self.hosts[&h].notified.clone();
            for n in &notified {
                let known = handlers.iter().any(|t| handler_matches(t, n));
                if !known {
                    return Err(Fatal(format!(
                        "The requested handler '{n}' was not found in either the main handlers list nor in the listening handlers list"
                    )));
                }
            }
        }
        for handler in &handlers {
            let hosts: Vec<String> = pc
                .hosts
                .iter()
                .filter(|h| {
                    let hs = &self.hosts[*h];
                    !hs.failed && hs.notified.iter().any(|n| handler_matches(handler, n))
                })
                .cloned()
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let inherit = pc.play_inherit.clone();
            self.run_list_on(pc, std::slice::from_ref(handler), &inherit, true, &hosts)?;
        }
        for h in pc.hosts.clone() {
            self.hosts.get_mut(&h).unwrap().notified.clear();
        }
        Ok(())
    }
}

fn handler_matches(handler: &Task, notified: &str) -> bool {
    handler.name.as_deref() == Some(notified) || handler.listen.iter().any(|l| l == notified) || (handler.role.is_some() && handler.display_name() == notified)
}

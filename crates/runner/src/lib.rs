//! airlock-runner: Ansible's semantics. The playbook model and its loading (`playbook`),
//! inventories, variables and their precedence (`vars`), the executor with its output,
//! connections and privilege escalation (`run`), the modules (`modules`: parse arguments,
//! call a client of airlock-content, report), ansible.cfg (`config`) and the secrets that
//! output must never show (`secrets`).
//!
//! The top library floor: depends on airlock-base, airlock-jinja and airlock-content, and is
//! used only by the binary.

pub mod config;
pub mod inventory;
pub mod modules;
pub mod playbook;
pub mod run;
pub mod secrets;
pub mod vars;

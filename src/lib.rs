//! airlock: Ansible-style playbooks for building offline mirrors in air-gapped sites.

pub mod bundle;
pub mod cli;
pub mod config;
pub mod docker;
pub mod inventory;
pub mod leftovers;
pub mod modules;
pub mod playbook;
pub mod run;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod template;
pub mod vars;
pub mod yaml;

//! Ecosystem clients: container registries, Yum repositories, PyPI, Helm repositories and
//! plain files. They know nothing about playbooks, so a module, the CLI and a test can all
//! drive them.

pub mod fetch;
pub mod helm;
pub mod oci;
pub mod pypi;
pub mod registry_store;
pub mod yum;

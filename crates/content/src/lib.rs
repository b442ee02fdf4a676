//! airlock-content: the ecosystems, with no knowledge of playbooks. Clients for container
//! registries, Yum repositories, PyPI, Helm repositories and plain files (`sources`), the
//! offline archive with its manifest (`archive`), and the local Docker Engine (`docker`).
//!
//! Depends on airlock-base only. A new content kind (conda, Julia, apt) adds its client here
//! as `sources/<kind>.rs`.

pub mod archive;
pub mod docker;
pub mod sources;

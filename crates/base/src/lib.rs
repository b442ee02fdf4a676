//! airlock-base: what every other airlock crate may use and which knows nothing of playbooks,
//! ecosystems or mirrors: YAML loaded with Ansible's rules, Python's text forms of values
//! (repr, JSON, PyYAML's emitter), Python's shlex, digests of bytes and files, the HTTP client
//! and its error messages, staging directories and locks, progress bars, and the host's facts.
//!
//! The lowest floor: it depends on no other airlock crate.

pub mod digest;
pub mod facts;
pub mod http;
pub mod progress;
pub mod pyfmt;
pub mod shlex;
pub mod staging;
pub mod yaml;

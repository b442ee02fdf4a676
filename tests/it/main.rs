//! airlock's integration tests, one binary: each module is one subject (its tests run the real
//! `airlock` binary or the library against real programs on loopback), and `support` holds
//! what they share. Run one subject with `cargo nextest run -E 'test(/^faults::/)'`.

mod support;

mod archive;
mod compat;
mod docker;
mod docs;
mod faults;
mod fuzz_corpora;
mod helm;
mod hostile_archives;
mod layers;
mod modules;
mod node_modules;
mod nodes;
mod oci;
mod offline_cache;
mod offline_mirrors;
mod private_ca;
mod pypi;
mod registry_import;
mod roles;
mod runner;
mod secrets;
mod serve;
mod serve_registry;
mod service_images;
mod site;
mod site_docs;
mod snapshots;
mod ssh;
mod upstream_faults;
mod upstreams_real;
mod use_offline_mirrors;
mod yum;
mod yum_modules;

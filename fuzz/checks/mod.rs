//! What each fuzz target checks of one input, as plain functions: the fuzz targets in
//! fuzz_targets/ call them under libFuzzer, and the main test suite replays every file of
//! fuzz/corpus through them, so the seeds and every crash pinned there are checked on each CI
//! run without a fuzzer.

pub mod archive;
pub mod helm_index;
pub mod image_manifest;
pub mod playbook;
pub mod yum_repodata;

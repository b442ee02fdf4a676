//! libFuzzer's entry for `checks/image_manifest.rs`; the corpus replays through the same function in
//! the main test suite (tests/it/fuzz_corpora.rs).
#![no_main]

#[path = "../checks/image_manifest.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));

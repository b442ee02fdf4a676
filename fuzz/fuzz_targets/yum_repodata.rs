//! libFuzzer's entry for `checks/yum_repodata.rs`; the corpus replays through the same function in
//! the main test suite (tests/it/fuzz_corpora.rs).
#![no_main]

#[path = "../checks/yum_repodata.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));

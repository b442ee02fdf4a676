//! The Yum metadata readers on arbitrary bytes: `repomd.xml`, and `primary.xml` through the
//! decompression a mirror applies (gzip, zstd, xz or none), then the newest-version choice
//! that compares every package's epoch:version-release.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = airlock_content::sources::yum::parse_repomd(data);
    if let Ok(packages) = airlock_content::sources::yum::read_primary(data) {
        for p in &packages {
            let _ = p.nevra();
        }
        let _ = airlock_content::sources::yum::newest(packages);
    }
});

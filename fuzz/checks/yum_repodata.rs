//! The Yum metadata readers on arbitrary bytes: `repomd.xml`, and `primary.xml` through the
//! decompression a mirror applies (gzip, zstd, xz or none), then the newest-version choice
//! that compares every package's epoch:version-release.

/// One input, checked as the fuzz target and the corpus replay in tests/ check it.
pub fn run(data: &[u8]) {
    let _ = airlock_content::sources::yum::parse_repomd(data);
    if let Ok(packages) = airlock_content::sources::yum::read_primary(data) {
        for p in &packages {
            let _ = p.nevra();
        }
        let _ = airlock_content::sources::yum::newest(packages);
    }
}

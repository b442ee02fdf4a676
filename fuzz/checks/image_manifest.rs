//! Image manifests and indexes on arbitrary bytes: as a pull reads them (media type,
//! descriptors, platforms) and as the registry mirror takes a pushed one (media type,
//! referenced digests).

/// One input, checked as the fuzz target and the corpus replay in tests/ check it.
pub fn run(data: &[u8]) {
    if let Ok(m) = airlock_content::sources::oci::parse_manifest(data) {
        for r in &m.refs {
            // Every descriptor a pull accepts names a blob path inside the layout.
            let path = airlock_content::sources::oci::blob_path(std::path::Path::new("/layout"), &r.digest);
            assert!(path.starts_with("/layout/blobs/sha256/"), "{} escapes the layout", path.display());
            assert!(!path.components().any(|c| c == std::path::Component::ParentDir), "{} escapes the layout", path.display());
        }
    }
    let _ = airlock_serve::registry::media_type_of(data);
    let _ = airlock_serve::registry::pushed_references(data);
}

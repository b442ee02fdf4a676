//! Small files kept in memory between requests, so a hot repodata file or chart is answered
//! without reading it again.
//!
//! The cache never decides *which* file a request gets: the handler resolves and opens the
//! path first (so the root checks run on every request) and looks the open file up by device
//! and inode. An entry is only used while the file's size, mtime and ctime are still those it
//! was read with; any write or replacement changes at least the ctime, which user space cannot
//! set back. A file changed less than [`SETTLE`] ago is served but not kept: its timestamps
//! are as coarse as the kernel's clock tick, so a second write in the same tick could leave
//! them as they were.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::HeaderValue;

/// Files up to this size are cached.
pub const MAX_FILE: u64 = 256 << 10;
/// The cache's bound: the bytes of all entries together.
const MAX_TOTAL: u64 = 64 << 20;
/// How long a file must have been left alone before it is cached.
const SETTLE: Duration = Duration::from_secs(2);

/// What a file answers with: its bytes and the validators derived from its metadata.
#[derive(Clone)]
pub struct Cached {
    pub body: Bytes,
    /// mtime in seconds, for `If-Modified-Since` and `If-Range`.
    pub mtime: u64,
    /// `"mtime-size"` in hex, nginx's form.
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
}

/// Identifies a version of a file: equal stamps mean unchanged contents.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp { size: meta.size(), mtime: (meta.mtime(), meta.mtime_nsec()), ctime: (meta.ctime(), meta.ctime_nsec()) }
    }
}

type Key = (u64, u64);

struct Entry {
    stamp: Stamp,
    data: Cached,
    /// When it was last used, a key into `Lru::order`.
    tick: u64,
}

/// Entries by device and inode, and their keys from least to most recently used.
#[derive(Default)]
struct Lru {
    map: HashMap<Key, Entry>,
    order: BTreeMap<u64, Key>,
    tick: u64,
    total: u64,
}

impl Lru {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(&e.tick);
            self.total -= e.data.body.len() as u64;
        }
    }

    fn get(&mut self, key: Key, stamp: Stamp) -> Option<Cached> {
        let e = self.map.get_mut(&key)?;
        if e.stamp != stamp {
            self.remove(&key);
            return None;
        }
        self.tick += 1;
        self.order.remove(&e.tick);
        e.tick = self.tick;
        self.order.insert(self.tick, key);
        Some(e.data.clone())
    }

    /// Adds an entry, first dropping the least recently used ones until it fits in `max_total`.
    fn insert(&mut self, key: Key, stamp: Stamp, data: Cached, max_total: u64) {
        let size = data.body.len() as u64;
        self.remove(&key);
        while self.total + size > max_total {
            let Some(oldest) = self.order.first_key_value().map(|(_, k)| *k) else { break };
            self.remove(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.total += size;
        self.map.insert(key, Entry { stamp, data, tick: self.tick });
    }
}

/// One cache for all mirrors: entries are keyed by the file, not by the URL that named it.
static LRU: LazyLock<Mutex<Lru>> = LazyLock::new(Default::default);

fn lru() -> MutexGuard<'static, Lru> {
    // Every step that changes the maps is panic-free, so a poisoned lock still holds them whole.
    LRU.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cached answer for the open file whose metadata is `meta`, if it is still current.
pub fn get(meta: &std::fs::Metadata) -> Option<Cached> {
    if meta.size() > MAX_FILE {
        return None;
    }
    lru().get((meta.dev(), meta.ino()), Stamp::of(meta))
}

/// Keeps `data`, read from the file of `meta` (taken before the read), unless the file is too
/// big or changed too recently; the least recently used entries make room.
pub fn put(meta: &std::fs::Metadata, data: &Cached) {
    put_at(meta, data, SystemTime::now());
}

fn put_at(meta: &std::fs::Metadata, data: &Cached, now: SystemTime) {
    let size = data.body.len() as u64;
    if size > MAX_FILE || size != meta.size() || !settled(meta, now) {
        return;
    }
    lru().insert((meta.dev(), meta.ino()), Stamp::of(meta), data.clone(), MAX_TOTAL);
}

/// Whether the file's last change is far enough in the past that its timestamps will show the
/// next one.
fn settled(meta: &std::fs::Metadata, now: SystemTime) -> bool {
    let Ok(now) = now.duration_since(UNIX_EPOCH) else { return false };
    let latest = meta.mtime().max(meta.ctime());
    latest >= 0 && Duration::from_secs(latest as u64 + 1) + SETTLE <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(body: &'static [u8]) -> Cached {
        Cached { body: Bytes::from_static(body), mtime: 0, etag: HeaderValue::from_static("\"x\""), last_modified: HeaderValue::from_static("x") }
    }

    #[test]
    fn a_changed_file_is_never_answered_from_the_cache() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "one").unwrap();
        let meta = || std::fs::metadata(&p).unwrap();
        // Just written: served, not kept.
        put(&meta(), &cached(b"one"));
        assert!(get(&meta()).is_none());
        // Seen from a moment when it had settled: kept, and answered while unchanged.
        let later = SystemTime::now() + Duration::from_secs(10);
        put_at(&meta(), &cached(b"one"), later);
        assert_eq!(get(&meta()).unwrap().body, &b"one"[..]);
        // Rewritten with the same size and its mtime set back: the ctime still tells.
        let mtime = filetime::FileTime::from_last_modification_time(&meta());
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&p, "two").unwrap();
        filetime::set_file_mtime(&p, mtime).unwrap();
        assert!(get(&meta()).is_none());
        // Replaced by another file: another inode.
        put_at(&meta(), &cached(b"two"), later);
        std::fs::write(d.path().join("g"), "new").unwrap();
        std::fs::rename(d.path().join("g"), &p).unwrap();
        assert_eq!(get(&meta()).map(|c| c.body), None);
    }

    #[test]
    fn the_least_recently_used_entries_make_room() {
        let mut l = Lru::default();
        let s = Stamp { size: 3, mtime: (0, 0), ctime: (0, 0) };
        l.insert((1, 1), s, cached(b"one"), 6);
        l.insert((1, 2), s, cached(b"two"), 6);
        assert!(l.get((1, 1), s).is_some());
        l.insert((1, 3), s, cached(b"new"), 6);
        assert!(l.get((1, 2), s).is_none(), "the least recently used goes");
        assert!(l.get((1, 1), s).is_some() && l.get((1, 3), s).is_some());
        assert_eq!((l.total, l.map.len(), l.order.len()), (6, 2, 2));
    }
}

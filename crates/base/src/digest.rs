//! Digests of bytes and files in the algorithms Ansible's `checksum` arguments and `hash`
//! filter name and the ecosystems use (md5, sha1, sha224, sha256, sha384, sha512): one hasher
//! and one read loop for every caller, and the check of an OCI `sha256:<hex>` digest.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::Digest as _;

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order Ansible lists them.
    pub const ALL: [Algorithm; 6] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha224, Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];

    /// The algorithm of a name as hashlib takes it (`sha256`, `SHA1`).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let name = name.to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Its lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha224 => "sha224",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// A running digest.
#[derive(Clone)]
pub struct Hasher(Running);

#[derive(Clone)]
enum Running {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: Algorithm) -> Hasher {
        Hasher(match algo {
            Algorithm::Md5 => Running::Md5(md5::Md5::new()),
            Algorithm::Sha1 => Running::Sha1(sha1::Sha1::new()),
            Algorithm::Sha224 => Running::Sha224(sha2::Sha224::new()),
            Algorithm::Sha256 => Running::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Running::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Running::Sha512(sha2::Sha512::new()),
        })
    }

    /// A hasher for an algorithm given by name; `None` for a name not in [`Algorithm::ALL`].
    pub fn named(name: &str) -> Option<Hasher> {
        Algorithm::from_name(name).map(Hasher::new)
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Running::Md5(h) => h.update(data),
            Running::Sha1(h) => h.update(data),
            Running::Sha224(h) => h.update(data),
            Running::Sha256(h) => h.update(data),
            Running::Sha384(h) => h.update(data),
            Running::Sha512(h) => h.update(data),
        }
    }

    /// The digest in lowercase hex.
    pub fn hex(self) -> String {
        match self.0 {
            Running::Md5(h) => hex::encode(h.finalize()),
            Running::Sha1(h) => hex::encode(h.finalize()),
            Running::Sha224(h) => hex::encode(h.finalize()),
            Running::Sha256(h) => hex::encode(h.finalize()),
            Running::Sha384(h) => hex::encode(h.finalize()),
            Running::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The lowercase hex digest of `data`.
pub fn hex_digest(algo: Algorithm, data: &[u8]) -> String {
    let mut h = Hasher::new(algo);
    h.update(data);
    h.hex()
}

/// The lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// How much a file read takes at a time.
const CHUNK: usize = 1 << 20;

/// Reads the file at `path` once, start to end, through one bounded buffer, handing each
/// chunk to `each` (which may fail, e.g. writing a copy); returns the size read.
pub fn read_chunks(path: &Path, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(size),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        each(&buf[..n])?;
        size += n as u64;
    }
}

/// The size of a file and its hex digest in each of `algos`, read once.
pub fn hash_file(path: &Path, algos: &[Algorithm]) -> io::Result<(u64, Vec<String>)> {
    let mut hashers: Vec<Hasher> = algos.iter().map(|a| Hasher::new(*a)).collect();
    let size = read_chunks(path, |chunk| {
        hashers.iter_mut().for_each(|h| h.update(chunk));
        Ok(())
    })?;
    Ok((size, hashers.into_iter().map(Hasher::hex).collect()))
}

/// The size of a file and its hex sha256, read once.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let (size, mut hex) = hash_file(path, &[Algorithm::Sha256])?;
    Ok((size, hex.remove(0)))
}

/// The hex part of an OCI digest `sha256:<64 lowercase hex digits>`; `None` for anything
/// else (another algorithm, upper case, a wrong length), so it can name a file safely.
pub fn sha256_hex_of(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are Python's hashlib on the same input.
    #[test]
    fn digests_as_hashlib() {
        let want = [
            ("md5", "900150983cd24fb0d6963f7d28e17f72"),
            ("sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            ("sha224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
            ("sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("sha384", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
            ("sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        ];
        for (name, hex) in want {
            let algo = Algorithm::from_name(&name.to_ascii_uppercase()).unwrap();
            assert_eq!(algo.name(), name);
            assert_eq!(hex_digest(algo, b"abc"), hex, "{name}");
            let mut h = Hasher::named(name).unwrap();
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(h.hex(), hex, "{name} in two parts");
        }
        assert!(Hasher::named("crc32").is_none());
        assert_eq!(sha256_hex(b"abc"), want[3].1);
    }

    #[test]
    fn files_are_read_once_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK * 2 + 7)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (size, hexes) = hash_file(&path, &[Algorithm::Sha256, Algorithm::Md5]).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(hexes, vec![sha256_hex(&data), hex_digest(Algorithm::Md5, &data)]);
        assert_eq!(sha256_file(&path).unwrap(), (data.len() as u64, sha256_hex(&data)));
        let mut chunks = 0;
        let err = read_chunks(&path, |_| {
            chunks += 1;
            if chunks == 2 { Err(io::Error::other("stop")) } else { Ok(()) }
        });
        assert_eq!(err.unwrap_err().to_string(), "stop");
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn oci_digests() {
        let hex = "a".repeat(64);
        assert_eq!(sha256_hex_of(&format!("sha256:{hex}")), Some(hex.as_str()));
        assert_eq!(sha256_hex_of(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(sha256_hex_of(&format!("sha512:{hex}")), None);
        assert_eq!(sha256_hex_of("sha256:../../etc"), None);
    }
}

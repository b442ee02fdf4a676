//! `random` and `shuffle` on Python's Mersenne Twister ([`PyRandom`]), so seeded results
//! match Ansible's.

use minijinja::value::ValueKind;
use minijinja::{Error, Value};

use super::{Args, as_int, bind, int_value, items, list};
use crate::pyfmt::py_str;

/// Python's `random.Random` (MT19937 with Python's seeding), enough for `randrange`,
/// `choice` and `shuffle`.
pub struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    fn init_genrand(s: u32) -> PyRandom {
        let mut mt = [0u32; 624];
        mt[0] = s;
        for i in 1..624 {
            mt[i] = 1812433253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        PyRandom { mt, index: 624 }
    }

    fn init_by_array(key: &[u32]) -> PyRandom {
        let mut r = PyRandom::init_genrand(19650218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        let n = 624;
        let mut k = n.max(key.len());
        while k > 0 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1664525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
            k -= 1;
        }
        k = n - 1;
        while k > 0 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1566083941)).wrapping_sub(i as u32);
            i += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
            k -= 1;
        }
        mt[0] = 0x80000000;
        r
    }

    /// `random.Random(seed)` for an integer seed.
    pub fn from_int(seed: i128) -> PyRandom {
        let mut n = seed.unsigned_abs();
        let mut key = Vec::new();
        while n > 0 {
            key.push(n as u32);
            n >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        PyRandom::init_by_array(&key)
    }

    /// `random.Random(seed)` for a string seed (Python's version 2 seeding: the text plus its
    /// SHA-512 digest as one big-endian integer).
    pub fn from_text(seed: &str) -> PyRandom {
        use sha2::Digest as _;
        let mut bytes = seed.as_bytes().to_vec();
        bytes.extend_from_slice(&sha2::Sha512::digest(seed.as_bytes()));
        // little-endian 32-bit words of the big-endian integer, leading zero words dropped
        let mut key = Vec::new();
        let mut end = bytes.len();
        while end > 0 {
            let start = end.saturating_sub(4);
            let mut w = 0u32;
            for &byte in &bytes[start..end] {
                w = (w << 8) | byte as u32;
            }
            key.push(w);
            end = start;
        }
        while key.len() > 1 && *key.last().unwrap() == 0 {
            key.pop();
        }
        PyRandom::init_by_array(&key)
    }

    /// A generator seeded from the operating system.
    pub fn from_entropy() -> PyRandom {
        let mut buf = [0u8; 32];
        let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_ok();
        if !ok {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            buf[..16].copy_from_slice(&t.to_le_bytes());
        }
        let key: Vec<u32> = buf.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        PyRandom::init_by_array(&key)
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for kk in 0..624 {
                let y = (self.mt[kk] & 0x80000000) | (self.mt[(kk + 1) % 624] & 0x7fffffff);
                let mut v = self.mt[(kk + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908b0df;
                }
                self.mt[kk] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >> 18;
        y
    }

    /// `getrandbits(k)`.
    pub fn getrandbits(&mut self, k: u32) -> u128 {
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return (self.next_u32() >> (32 - k)) as u128;
        }
        let mut rv: u128 = 0;
        let mut shift = 0;
        let mut left = k;
        while left > 0 && shift < 128 {
            let mut r = self.next_u32();
            if left < 32 {
                r >>= 32 - left;
            }
            rv |= (r as u128) << shift;
            shift += 32;
            left = left.saturating_sub(32);
        }
        rv
    }

    /// `_randbelow(n)` for `n > 0`.
    pub fn randbelow(&mut self, n: u128) -> u128 {
        let k = 128 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }
}

fn rng_for(seed: Option<&Value>) -> PyRandom {
    match seed {
        None => PyRandom::from_entropy(),
        Some(s) if s.is_none() => PyRandom::from_entropy(),
        Some(s) => match as_int(s) {
            Some(i) if s.kind() == ValueKind::Number => PyRandom::from_int(i as i128),
            _ => PyRandom::from_text(&py_str(s)),
        },
    }
}

pub(super) fn f_random(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "random", args, &["end", "start", "step", "seed"], false, false)?;
    let end = b.defined("end")?;
    let mut r = rng_for(b.opt("seed"));
    if end.is_integer() {
        let end = i128::try_from(end.clone()).map_err(|e| b.fail(e))?;
        let start = b.int("start")?.unwrap_or(0) as i128;
        let step = match b.int("step")? {
            None | Some(0) => 1,
            Some(s) => s as i128,
        };
        let width = end - start;
        let n = if step == 1 {
            width
        } else if step > 0 {
            (width + step - 1).div_euclid(step)
        } else {
            (width + step + 1).div_euclid(step)
        };
        if n <= 0 {
            return Err(b.fail(format!("empty range for randrange() ({start}, {end}, {step})")));
        }
        return Ok(int_value(start + step * r.randbelow(n as u128) as i128));
    }
    if b.int("start")?.unwrap_or(0) != 0 || b.int("step")?.unwrap_or(0) != 0 {
        return Err(b.fail("start and step can only be used with integer values"));
    }
    if end.kind() == ValueKind::Number || end.kind() == ValueKind::Bool {
        return Err(b.fail("random can only be used on sequences and integers"));
    }
    let pool = items(end);
    if pool.is_empty() {
        return Err(b.fail("Cannot choose from an empty sequence"));
    }
    Ok(pool[r.randbelow(pool.len() as u128) as usize].clone())
}

pub(super) fn f_shuffle(args: Args) -> Result<Value, Error> {
    let b = bind("filter", "shuffle", args, &["mylist", "seed"], false, false)?;
    let mut l = items(b.defined("mylist")?);
    let mut r = match b.opt("seed") {
        Some(s) if s.is_true() => rng_for(Some(s)),
        _ => PyRandom::from_entropy(),
    };
    for i in (1..l.len()).rev() {
        let j = r.randbelow(i as u128 + 1) as usize;
        l.swap(i, j);
    }
    Ok(list(l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::eval;
    use minijinja::context;

    #[test]
    fn seeded_random_matches_python() {
        // values from Python's random.Random(seed)
        let mut r = PyRandom::from_int(42);
        assert_eq!(r.randbelow(100), 81);
        let mut r = PyRandom::from_text("host1");
        assert_eq!(r.randbelow(60), 31);
        assert_eq!(eval("59 | random(seed=inventory_hostname)", context! { inventory_hostname => "web01.example.com" }), "38");
        let unseeded = eval("10 | random", context! {});
        assert!(unseeded.parse::<u32>().unwrap() < 10);
    }
}

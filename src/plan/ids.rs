//! A fast, stable hash for task ids and file bytes, and maps keyed by ids that use it. The
//! standard library's SipHash guards against hash flooding, which plan ids from the user's own
//! files do not need; it was a visible part of reading a large plan.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A 64-bit hash of `bytes` (word-at-a-time multiply-rotate, then a final avalanche). Stable
/// across versions and machines: `orchPlanDigest` in status files stores it.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = IdHasher::default();
    h.write(bytes);
    h.finish()
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The [`Hasher`] of [`hash_bytes`].
#[derive(Clone, Copy, Debug)]
pub struct IdHasher {
    h: u64,
}

impl Default for IdHasher {
    fn default() -> Self {
        Self {
            h: 0x243F_6A88_85A3_08D3,
        }
    }
}

impl IdHasher {
    fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(
                c.try_into().expect("chunks_exact(8) gives 8 bytes"),
            ));
        }
        // The rest as the low bytes of a word (what copying them into a zeroed word gives,
        // without the call to `memcpy` that copy was: ids are mostly shorter than a word).
        self.word(tail_word(chunks.remainder()));
    }

    fn write_u8(&mut self, n: u8) {
        self.word(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.word(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.word(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.word(n as u64);
    }

    fn finish(&self) -> u64 {
        // fmix64 (MurmurHash3's finalizer).
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The (fewer than eight) bytes of `rest` as the low bytes of a zeroed word: two overlapping
/// loads of the first and last bytes, or-ed (the bytes they share are the same).
#[inline(always)]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    let two = |a: u64, b: u64, width: usize| a | (b << (8 * (n - width)));
    if let (Some(a), Some(b)) = (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
        two(
            u64::from(u32::from_le_bytes(*a)),
            u64::from(u32::from_le_bytes(*b)),
            4,
        )
    } else if let (Some(a), Some(b)) = (rest.first_chunk::<2>(), rest.last_chunk::<2>()) {
        two(
            u64::from(u16::from_le_bytes(*a)),
            u64::from(u16::from_le_bytes(*b)),
            2,
        )
    } else {
        rest.first().map_or(0, |&b| u64::from(b))
    }
}

/// A `HashMap` hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An empty [`IdMap`] with room for `n` entries.
pub fn id_map<K, V>(n: usize) -> IdMap<K, V> {
    IdMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads() {
        // Written into status files (`orchPlanDigest`): it must never change.
        assert_eq!(hash_bytes(b""), 14_628_951_436_045_091_960);
        assert_eq!(
            hash_bytes(b"# Plan\n\n## Phase 1: A\n"),
            10_983_818_864_623_063_767
        );
        assert_ne!(hash_bytes(b"1.1"), hash_bytes(b"1.2"));
        assert_ne!(hash_bytes(b"abcdefgh1"), hash_bytes(b"abcdefgh2"));
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        // The tail of every length, as a zero-padded word.
        let text: Vec<u8> = (1..=40u8).map(|b| b.wrapping_mul(151)).collect();
        for len in 0..=text.len() {
            let bytes = &text[..len];
            let mut padded = bytes.to_vec();
            padded.resize((len / 8 + 1) * 8, 0);
            let mut h = IdHasher::default();
            h.word(len as u64);
            for w in padded.chunks_exact(8) {
                h.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
            }
            assert_eq!(hash_bytes(bytes), h.finish(), "{len}");
        }
    }
}

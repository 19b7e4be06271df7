//! A fast, stable hash for task ids and file bytes, and maps keyed by ids that use it. The
//! standard library's SipHash guards against hash flooding, which plan ids from the user's own
//! files do not need; it was a visible part of reading a large plan.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A 64-bit hash of `bytes` (word-at-a-time multiply-rotate, then a final avalanche). Stable
/// across versions and machines: `orchPlanDigest` in status files stores it.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = IdHasher::default();
    h.write(bytes);
    h.finish()
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The [`Hasher`] of [`hash_bytes`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHasher {
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

/// A hash of an id for the in-memory index ([`IdIndex`]): a
/// multiply per word, a fifth of the work of [`hash_bytes`]. Not stable, not for files.
#[inline(always)]
fn quick_hash(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("chunks_exact(8) gives 8 bytes")))
            .wrapping_mul(K)
            .rotate_left(23);
    }
    h = (h ^ tail_word(chunks.remainder())).wrapping_mul(K);
    // The high half, where every byte of the last word counts, into the low bits the
    // indexes use.
    h ^ (h >> 32)
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

/// The positions of ids in a list the caller keeps (a plan's tasks), by id: open addressing
/// over [`hash_bytes`], the ids read from the list (`id_of(position)`) rather than copied, and
/// compared in line. Cheaper than an [`IdMap`] of `&str` for the one-shot indexes of a long plan.
#[derive(Clone, Debug)]
pub(crate) struct IdIndex {
    /// Positions, `EMPTY` where free; a power of two long, at most half full.
    slots: Vec<u32>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

/// `a == b` for ids, short ones compared in line (not through `memcmp`).
#[inline(always)]
pub(crate) fn same_id(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= 16 {
            a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a == b
        }
}

impl IdIndex {
    /// An empty index with room for `n` ids.
    pub(crate) fn with_capacity(n: usize) -> Self {
        IdIndex {
            slots: vec![EMPTY; (2 * n).next_power_of_two().max(16)],
            len: 0,
        }
    }

    /// The slot of `key`: where it is, or the free one where it goes.
    #[inline]
    fn slot<'a>(&self, key: &str, id_of: &impl Fn(usize) -> &'a str) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = quick_hash(key.as_bytes()) as usize & mask;
        loop {
            match self.slots[at] {
                EMPTY => return at,
                i if same_id(id_of(i as usize).as_bytes(), key.as_bytes()) => return at,
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow<'a>(&mut self, id_of: &impl Fn(usize) -> &'a str) {
        let bigger = vec![EMPTY; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, bigger);
        for i in old.into_iter().filter(|&i| i != EMPTY) {
            let at = self.slot(id_of(i as usize), id_of);
            self.slots[at] = i;
        }
    }

    /// Adds `key` at `position` unless it is there: then the position it has (the first one
    /// stays). Positions beyond `u32` are not kept.
    pub(crate) fn insert_first<'a>(
        &mut self,
        key: &str,
        position: usize,
        id_of: impl Fn(usize) -> &'a str,
    ) -> Option<usize> {
        self.put(key, position, &id_of, false)
    }

    /// Adds `key` at `position`, or moves it there (the last one stays, as in a map).
    pub(crate) fn insert_last<'a>(
        &mut self,
        key: &str,
        position: usize,
        id_of: impl Fn(usize) -> &'a str,
    ) {
        self.put(key, position, &id_of, true);
    }

    fn put<'a>(
        &mut self,
        key: &str,
        position: usize,
        id_of: &impl Fn(usize) -> &'a str,
        last: bool,
    ) -> Option<usize> {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow(id_of);
        }
        let Ok(p) = u32::try_from(position) else {
            return None;
        };
        let at = self.slot(key, id_of);
        match self.slots[at] {
            EMPTY => {
                self.slots[at] = p;
                self.len += 1;
                None
            }
            i if last => {
                self.slots[at] = p;
                Some(i as usize)
            }
            i => Some(i as usize),
        }
    }

    /// The position of `key`.
    pub(crate) fn get<'a>(&self, key: &str, id_of: impl Fn(usize) -> &'a str) -> Option<usize> {
        match self.slots[self.slot(key, &id_of)] {
            EMPTY => None,
            i => Some(i as usize),
        }
    }
}

/// A `HashMap` hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An empty [`IdMap`] with room for `n` entries.
pub(crate) fn id_map<K, V>(n: usize) -> IdMap<K, V> {
    IdMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index answers as maps keeping the first and the last position of each id, through
    /// growth, duplicates and ids that are not there.
    #[test]
    fn index_answers_as_a_map() {
        let ids: Vec<String> = (0..300)
            .map(|i| format!("{}.{}", i % 97, i % 7))
            .chain(["".to_string(), "a-long-id-of-more-than-16".to_string()])
            .collect();
        let id_of = |i: usize| ids[i].as_str();
        let mut first_map: HashMap<&str, usize> = HashMap::new();
        let mut last_map: HashMap<&str, usize> = HashMap::new();
        let (mut first, mut last) = (IdIndex::with_capacity(3), IdIndex::with_capacity(3));
        for (i, id) in ids.iter().enumerate() {
            let was = first_map.get(id.as_str()).copied();
            assert_eq!(first.insert_first(id, i, id_of), was, "{id}");
            first_map.entry(id).or_insert(i);
            last.insert_last(id, i, id_of);
            last_map.insert(id, i);
        }
        for key in ids.iter().map(String::as_str).chain(["9.9", "1.1.1", "x"]) {
            assert_eq!(first.get(key, id_of), first_map.get(key).copied(), "{key}");
            assert_eq!(last.get(key, id_of), last_map.get(key).copied(), "{key}");
        }
    }

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

//! The keys a status file's entries usually have, recognised by their bytes: `"name":` as orch
//! writes a key (no escape, no space before the colon) is one or two masked word comparisons
//! instead of reading the key as a string and comparing it with each name (what a scan of a
//! 10,000-entry file did 77,000 times). Anything else (other keys, other spacing, escapes) is
//! read the general way by [`super::scan::Scan::object_known`].

/// `"name":` as two little-endian words and their masks.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    words: [u64; 2],
    masks: [u64; 2],
    /// Bytes from the opening quote to the colon, both included.
    len: usize,
}

/// Candidates per slot of [`slot`].
const PER_SLOT: usize = 2;

/// Where a key is looked for: by its first letter (the low five bits) and two bits of the byte
/// after its second letter (its third letter, or the closing quote of a two-letter name), which
/// part `description`, `dependencies` and `duration`.
const fn slot(first: u8, third: u8) -> usize {
    (first & 0x1f) as usize | (((third & 3) as usize) << 5)
}

/// Up to 16 names, each of at most 13 bytes of letters.
#[derive(Debug)]
pub(crate) struct KnownKeys<const N: usize> {
    names: [&'static str; N],
    patterns: [Pattern; N],
    /// By [`slot`]: the indexes of the names there, `u8::MAX` for none.
    by_slot: [[u8; PER_SLOT]; 128],
}

impl<const N: usize> KnownKeys<N> {
    /// Panics (at compile time, in a `const`) for a name that is empty, longer than 13 bytes,
    /// not ASCII letters, or one name too many for its [`slot`].
    pub const fn new(names: [&'static str; N]) -> Self {
        assert!(N < u8::MAX as usize);
        let empty = Pattern {
            words: [0; 2],
            masks: [0; 2],
            len: 0,
        };
        let mut patterns = [empty; N];
        let mut by_slot = [[u8::MAX; PER_SLOT]; 128];
        let mut n = 0;
        while n < N {
            let name = names[n].as_bytes();
            assert!(!name.is_empty() && name.len() + 3 <= 16);
            let mut p = empty;
            p.len = name.len() + 3;
            let mut k = 0;
            while k < p.len {
                let c = if k == 0 || k == name.len() + 1 {
                    b'"'
                } else if k <= name.len() {
                    assert!(name[k - 1].is_ascii_alphabetic());
                    name[k - 1]
                } else {
                    b':'
                };
                p.words[k / 8] |= (c as u64) << ((k % 8) * 8);
                p.masks[k / 8] |= 0xff << ((k % 8) * 8);
                k += 1;
            }
            patterns[n] = p;
            let third = (p.words[0] >> 24) as u8;
            let at = &mut by_slot[slot(name[0], third)];
            let mut j = 0;
            while at[j] != u8::MAX {
                j += 1;
                assert!(j < PER_SLOT);
            }
            at[j] = n as u8;
            n += 1;
        }
        KnownKeys {
            names,
            patterns,
            by_slot,
        }
    }

    /// Which name `"name":` opens `bytes` (from a key's opening quote), and the length of
    /// that text; `None` when none does or fewer than 16 bytes are left.
    #[inline(always)]
    pub fn find(&self, bytes: &[u8]) -> Option<(usize, usize)> {
        let (w0, rest) = bytes.split_first_chunk::<8>()?;
        let w1 = rest.first_chunk::<8>()?;
        let (w0, w1) = (u64::from_le_bytes(*w0), u64::from_le_bytes(*w1));
        let at = self.by_slot.get(slot((w0 >> 8) as u8, (w0 >> 24) as u8))?;
        for &n in at {
            let p = self.patterns.get(usize::from(n))?;
            if w0 & p.masks[0] == p.words[0] && w1 & p.masks[1] == p.words[1] {
                return Some((usize::from(n), p.len));
            }
        }
        None
    }

    /// The index of `name`, if it is one of the names.
    pub fn index_of(&self, name: &[u8]) -> Option<usize> {
        self.names.iter().position(|n| n.as_bytes() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: KnownKeys<5> = KnownKeys::new(["id", "status", "startedAt", "abcdefghijklm", "a"]);

    #[test]
    fn finds_a_name_written_as_orch_writes_a_key_and_nothing_else() {
        let pad = "                ";
        let cases: [(&str, Option<(usize, usize)>); 14] = [
            ("\"id\": \"1.1\"", Some((0, 5))),
            ("\"status\":\"pending\"", Some((1, 9))),
            ("\"startedAt\": null", Some((2, 12))),
            ("\"abcdefghijklm\": 1", Some((3, 16))),
            ("\"a\":1", Some((4, 4))),
            ("\"ab\": 1", None),
            ("\"id\" : 1", None),
            ("\"idx\": 1", None),
            ("\"i\": 1", None),
            ("\"Id\": 1", None),
            ("\"st\\u0061tus\": 1", None),
            ("\"stat\": 1", None),
            ("\"startedAtX\": 1", None),
            ("id\": 1", None),
        ];
        for (text, want) in cases {
            let padded = format!("{text}{pad}");
            assert_eq!(KEYS.find(padded.as_bytes()), want, "{text:?}");
        }
        // Fewer than 16 bytes: left to the general way.
        assert_eq!(KEYS.find(b"\"id\": 1"), None);
        assert_eq!(KEYS.index_of(b"startedAt"), Some(2));
        assert_eq!(KEYS.index_of(b"started"), None);
    }
}

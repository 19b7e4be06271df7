//! A validating JSON scanner for the status readers' fast paths: one pass over the bytes that
//! checks the syntax and hands out the spans of values, without building them.
//!
//! It is deliberately stricter than serde_json: whatever it is unsure of (an invalid document, a
//! `\u` escape of a surrogate, a document nested deeper than [`MAX_DEPTH`], bytes that are not
//! UTF-8) makes it give up (`None`), and the caller takes serde_json's path, which then either
//! reads the document the same way or reports the error with its line and column. So a document
//! the scanner accepts is one serde_json accepts, and the fast paths never change what a command
//! reads or which errors it reports.

use super::known_keys::KnownKeys;

/// Deeper documents are left to serde_json (its own limit is 128).
const MAX_DEPTH: u32 = 100;

/// A string value as written: its raw contents between the quotes, and whether they hold
/// escapes (then [`Str::decode`] unescapes them through serde_json). Bytes of a document the
/// scanner checked to be UTF-8, cut at quotes: [`Str::as_str`] never fails on them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Str<'a> {
    /// The contents, without the quotes.
    pub raw: &'a [u8],
    /// The string with its quotes, as JSON text.
    pub json: &'a [u8],
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The contents as text (escapes as written).
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.raw).ok()
    }

    /// The string's value.
    pub fn decode(&self) -> Option<String> {
        if self.escaped {
            serde_json::from_slice(self.json).ok()
        } else {
            self.as_str().map(str::to_string)
        }
    }
}

/// An object's key as written: the bytes between the quotes, and whether they hold escapes.
/// (Bytes, not `&str`: comparing them with the known keys needs no char boundary checks.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key<'a> {
    pub raw: &'a [u8],
    pub escaped: bool,
}

/// The cursor over a document's text (bytes checked to be UTF-8).
pub(crate) struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

const fn repeat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

const HIGH: u64 = repeat(0x80);

/// Where in `x` (eight bytes, little-endian) a string's plain run ends: the first `"`, `\\`
/// or control character (< 0x20), if any.
///
/// Each of the three tests is the short one, `(y - 0x01..) & !y & 0x80..` for "a byte of `y`
/// is zero" (`y - 0x20..` for "below 0x20"): it marks every byte it looks for, and may also
/// mark bytes above one of those (its borrow), never below. So the lowest mark is exact. The
/// three share `!x & 0x80..`, as none of `"`, `\\`, 0x20 has its high bit.
fn first_special(x: u64) -> Option<usize> {
    let mask = ((x ^ repeat(b'"')).wrapping_sub(repeat(1))
        | (x ^ repeat(b'\\')).wrapping_sub(repeat(1))
        | x.wrapping_sub(repeat(0x20)))
        & !x
        & HIGH;
    (mask != 0).then(|| mask.trailing_zeros() as usize / 8)
}

/// Whether a byte ends a string's plain run.
fn special(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// The eight bytes of `b` from `i` as a little-endian word, if there are eight.
#[inline]
fn word(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..)?
        .first_chunk::<8>()
        .map(|w| u64::from_le_bytes(*w))
}

/// Where the whitespace from `i` ends: spaces after a newline eight at a time.
fn ws_from(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
        // Then a run of spaces, eight bytes at a time.
        while let Some(w) = word(b, i) {
            let other = w ^ repeat(b' ');
            if other != 0 {
                // The first byte that is not a space.
                i += other.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
    }
    i
}

/// Where the plain run of a string's text from `i` ends (its closing quote, an escape, a
/// control character or the end of the text): eight bytes at a time, then one by one near the
/// end of the text.
#[inline(always)]
fn plain_from(b: &[u8], mut i: usize) -> usize {
    // Over the rest of the text as a slice: one length test per word, no index checks.
    let mut rest = b.get(i..).unwrap_or_default();
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        if let Some(at) = first_special(u64::from_le_bytes(*w)) {
            return i + at;
        }
        i += 8;
        rest = tail;
    }
    i + rest.iter().take_while(|&&c| !special(c)).count()
}

/// The end of the array at `i` (its `[`) if it holds strings without escapes only, with any
/// whitespace around them: what the general way reads of such an array. `None` for any other
/// array (or none).
fn strings_array(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut i = ws_from(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        i = plain_from(b, i + 1);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        i = ws_from(b, i + 1);
        match b.get(i)? {
            b',' => i = ws_from(b, i + 1),
            b']' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Whether `b` is ASCII: the bytes of each 256-byte chunk or-ed together (a loop the compiler
/// vectorises), a tenth of the work of `str::from_utf8`'s ASCII path.
fn is_ascii(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(256);
    for c in &mut chunks {
        if c.iter().fold(0u8, |a, &x| a | x) >= 0x80 {
            return false;
        }
    }
    chunks.remainder().is_ascii()
}

impl<'a> Scan<'a> {
    /// A scanner over `bytes`; `None` when they are not UTF-8. (A status file is ASCII but for
    /// its notes: ASCII is checked in wide chunks, the full check runs on the others.)
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        if !is_ascii(bytes) {
            std::str::from_utf8(bytes).ok()?;
        }
        Some(Scan {
            b: bytes,
            i: 0,
            depth: 0,
        })
    }

    #[cfg(test)]
    pub fn from_str(text: &'a str) -> Self {
        Scan {
            b: text.as_bytes(),
            i: 0,
            depth: 0,
        }
    }

    /// The byte offset of the cursor.
    pub fn pos(&self) -> usize {
        self.i
    }

    /// Skips whitespace. Most tokens follow none; the rest, in a pretty-printed status file,
    /// follow a newline and a run of spaces, passed eight bytes at a time.
    #[inline(always)]
    fn ws(&mut self) {
        // Every whitespace byte is at most b' '.
        match self.b.get(self.i) {
            Some(&c) if c > b' ' => return,
            // One space, as after a colon.
            Some(b' ') if self.b.get(self.i + 1).is_some_and(|&c| c > b' ') => {
                self.i += 1;
                return;
            }
            // A newline, then fewer than eight spaces and a token: a line of a pretty-printed
            // file, its indentation passed as one word.
            Some(b'\n') => {
                if let Some(w) = word(self.b, self.i + 1) {
                    let at = (w ^ repeat(b' ')).trailing_zeros() / 8;
                    if at < 8 && (w >> (at * 8)) as u8 > b' ' {
                        self.i += 1 + at as usize;
                        return;
                    }
                }
            }
            _ => {}
        }
        self.ws_run();
    }

    fn ws_run(&mut self) {
        self.i = ws_from(self.b, self.i);
    }

    /// The next byte after whitespace (not consumed).
    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// A string at the cursor.
    #[inline(always)]
    pub fn string(&mut self) -> Option<Str<'a>> {
        let (start, escaped) = self.quoted()?;
        let json = self.b.get(start - 1..self.i)?;
        Some(Str {
            raw: json.get(1..json.len() - 1)?,
            json,
            escaped,
        })
    }

    /// An object's key at the cursor.
    #[inline(always)]
    fn key(&mut self) -> Option<Key<'a>> {
        let (start, escaped) = self.quoted()?;
        Some(Key {
            raw: self.b.get(start..self.i - 1)?,
            escaped,
        })
    }

    /// Passes the string at the cursor: where its text starts, and whether it holds escapes.
    #[inline(always)]
    fn quoted(&mut self) -> Option<(usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        Some((start, self.skip_string()?))
    }

    /// Skips the string whose opening quote is at the cursor; whether it holds escapes.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<bool> {
        self.i += 1;
        self.plain_run();
        if self.b.get(self.i) == Some(&b'"') {
            self.i += 1;
            return Some(false);
        }
        self.escaped_rest()
    }

    /// The rest of a string whose plain run stopped at something other than its closing quote:
    /// an escape, a control character or the end of the text.
    #[inline(never)]
    fn escaped_rest(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            let mut v = 0;
                            for &h in hex {
                                v = v * 16 + char::from(h).to_digit(16)?;
                            }
                            if (0xD800..0xE000).contains(&v) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                // A control character (the run stops only at these three kinds of byte).
                _ => return None,
            }
            self.plain_run();
        }
    }

    /// Moves the cursor to the end of a string's plain run: eight bytes at a time, then one by
    /// one near the end of the text.
    #[inline(always)]
    fn plain_run(&mut self) {
        self.i = plain_from(self.b, self.i);
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        self.unsigned()
    }

    /// A number without its sign, at the cursor.
    #[inline(always)]
    fn unsigned(&mut self) -> Option<()> {
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips any value, checking it; returns its text.
    pub fn value(&mut self) -> Option<&'a [u8]> {
        self.peek()?;
        let start = self.i;
        self.skip()?;
        self.b.get(start..self.i)
    }

    /// [`Scan::skip`] with strings and numbers without sign (most values) passed in line.
    #[inline(always)]
    pub fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string().map(|_| ()),
            b'0'..=b'9' => self.unsigned(),
            _ => self.skip(),
        }
    }

    /// [`Scan::value`] without its text: checks and passes one value.
    pub fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.skip_string()?;
            }
            b'{' => self.object(|s, _| s.skip())?,
            b'[' => self.array(|s| s.skip_value())?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(())
    }

    /// Whether the value at the cursor is `null` (consumed if so).
    pub fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Opens an object or array (`open`, one level deeper); true when it is empty, closed by
    /// `close` at once (and left).
    #[inline(always)]
    fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        self.enter()?;
        if self.peek()? != close {
            return Some(false);
        }
        self.i += 1;
        self.depth -= 1;
        Some(true)
    }

    /// After a member: a `,` before the next one (false), or `close` ending the object or
    /// array (true, and left).
    #[inline(always)]
    fn next_member(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(false)
            }
            c if c == close => {
                self.i += 1;
                self.depth -= 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// An object at the cursor: `field(scanner, key)` must consume each key's value.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Key<'a>) -> Option<()>,
    ) -> Option<()> {
        if self.open(b'{', b'}')? {
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            field(self, key)?;
            if self.next_member(b'}')? {
                return Some(());
            }
        }
    }

    /// [`Scan::object`] whose keys are first looked for among `known` by their bytes:
    /// `field(scanner, index, key)` gets the index of a known key written as orch writes keys
    /// (then `key` is that name), else `None` and the key as read the general way. The values
    /// of the known keys in `pass` (a bit per index), after the first member, are checked and
    /// passed here, without `field`.
    #[inline(always)]
    pub fn object_known<const N: usize>(
        &mut self,
        known: &KnownKeys<N>,
        pass: u64,
        mut field: impl FnMut(&mut Self, Option<usize>, Key<'a>) -> Option<()>,
    ) -> Option<()> {
        if self.open(b'{', b'}')? {
            return Some(());
        }
        let mut first = true;
        loop {
            self.ws();
            let rest = self.b.get(self.i..).unwrap_or_default();
            // One call of `field` (inlined once, not once per way of reading the key).
            let (n, key) = match known.find(rest) {
                Some((n, len)) if !first && (pass >> n) & 1 == 1 => {
                    self.i += len;
                    self.pass_value()?;
                    // A comma right after the value (as orch writes), else the general way.
                    if self.b.get(self.i) == Some(&b',') {
                        self.i += 1;
                    } else if self.next_member(b'}')? {
                        return Some(());
                    }
                    continue;
                }
                Some((n, len)) => {
                    let key = Key {
                        raw: rest.get(1..len - 2)?,
                        escaped: false,
                    };
                    self.i += len;
                    (Some(n), key)
                }
                None => {
                    let key = self.key()?;
                    self.eat(b':')?;
                    (None, key)
                }
            };
            first = false;
            field(self, n, key)?;
            if self.next_member(b'}')? {
                return Some(());
            }
        }
    }

    /// [`Scan::skip_value`] with the cursor kept in a local for a string or a number after one
    /// space (a member's value as orch writes it): what the general way checks, in one place.
    #[inline(always)]
    fn pass_value(&mut self) -> Option<()> {
        let b = self.b;
        let mut i = self.i;
        if b.get(i) == Some(&b' ') {
            i += 1;
        }
        match b.get(i) {
            Some(b'"') => {
                let i = plain_from(b, i + 1);
                self.i = i;
                if b.get(i) == Some(&b'"') {
                    self.i = i + 1;
                } else {
                    self.escaped_rest()?;
                }
                Some(())
            }
            Some(b'0'..=b'9') => {
                self.i = i;
                self.unsigned()
            }
            Some(b'[') => {
                self.i = i;
                self.pass_array()
            }
            _ => {
                self.i = i;
                self.skip()
            }
        }
    }

    /// [`Scan::skip`] of the array at the cursor, an array of strings without escapes (an
    /// entry's `dependencies`, `dependents`) passed in one loop; any other the general way,
    /// from its start.
    #[inline(never)]
    fn pass_array(&mut self) -> Option<()> {
        if self.depth < MAX_DEPTH
            && let Some(end) = strings_array(self.b, self.i)
        {
            self.i = end;
            return Some(());
        }
        self.skip()
    }

    /// An array at the cursor: `element(scanner)` must consume each element.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.open(b'[', b']')? {
            return Some(());
        }
        loop {
            element(self)?;
            if self.next_member(b']')? {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests;

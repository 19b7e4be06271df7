//! Line classification: which construct a line of a plan is (checkbox, task id, phase heading,
//! bold keys, VERIFY markers, list items). Pure functions over one line's text.

use crate::plan::model::{id_parts, is_task_id};

const LOW_BITS: u64 = u64::from_le_bytes([1; 8]);
const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);

/// The bytes of `w` equal to `c` marked by their high bit (and maybe bytes above a marked one,
/// through the borrow, never below: the lowest mark is exact).
#[inline(always)]
fn marks(w: u64, c: u8) -> u64 {
    let x = w ^ (LOW_BITS * u64::from(c));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Where the first `a` or `b` is in `bytes`, a word at a time: for short texts (a line, a
/// description), where a vector search costs more to set up than it saves.
pub(super) fn find2(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let (mut rest, mut i) = (bytes, 0);
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        let w = u64::from_le_bytes(*w);
        let m = marks(w, a) | marks(w, b);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
        rest = tail;
    }
    if rest.is_empty() {
        return None;
    }
    // The last bytes: the last word of the text, which overlaps words without a mark.
    match bytes.last_chunk::<8>() {
        Some(w) => {
            let w = u64::from_le_bytes(*w);
            let m = marks(w, a) | marks(w, b);
            (m != 0).then(|| bytes.len() - 8 + (m.trailing_zeros() / 8) as usize)
        }
        None => rest.iter().position(|&c| c == a || c == b).map(|p| i + p),
    }
}

/// Where the first `\n` is: a word at a time over the first 64 bytes (most lines of a plan
/// are shorter), then the `memchr` crate's vector search.
pub(super) fn find_newline(bytes: &[u8]) -> Option<usize> {
    const HEAD: usize = 64;
    match bytes.split_at_checked(HEAD) {
        None => find2(bytes, b'\n', b'\n'),
        Some((head, tail)) => {
            find2(head, b'\n', b'\n').or_else(|| memchr::memchr(b'\n', tail).map(|p| p + HEAD))
        }
    }
}

/// `[ ] rest` / `[x] rest` / `[X] rest` (the text after `- [`): the mark and what follows.
pub(super) fn checkbox(rest: &str) -> Option<(bool, &str)> {
    let mut chars = rest.chars();
    let mark = chars.next()?;
    let done = match mark {
        ' ' => false,
        'x' | 'X' => true,
        _ => return None,
    };
    let after = chars.as_str().strip_prefix(']')?;
    if after.is_empty() {
        return Some((done, after));
    }
    after.strip_prefix([' ', '\t']).map(|a| (done, a))
}

/// `1.2 description` → (`1.2`, `description`); the id must be `N.M` or `N.M.K`.
pub(super) fn task_id(after: &str) -> Option<(&str, &str)> {
    // One pass for the usual id (parts of 1 to 9 digits, then a space, a tab or the end);
    // anything else is read the general way.
    let b = after.as_bytes();
    let (mut i, mut parts, mut run) = (0, 1, 0);
    loop {
        match b.get(i) {
            Some(c) if c.is_ascii_digit() && run < 9 => run += 1,
            Some(b'.') if run > 0 && parts < 3 => {
                parts += 1;
                run = 0;
            }
            Some(b' ' | b'\t') | None if run > 0 && parts >= 2 => {
                return Some((&after[..i], &after[i..]));
            }
            _ => break,
        }
        i += 1;
    }
    task_id_general(after)
}

/// [`task_id`] for any id [`is_task_id`] accepts.
fn task_id_general(after: &str) -> Option<(&str, &str)> {
    let end = after
        .bytes()
        .position(|b| b == b' ' || b == b'\t')
        .unwrap_or(after.len());
    let id = &after[..end];
    if !is_task_id(id) {
        return None;
    }
    Some((id, &after[end..]))
}

/// `**VERIFY 2**: text` / `**VERIFY 2:** text` / `**VERIFY Phase 2:** text` after a checkbox.
pub(super) fn checkbox_verify(after: &str) -> Option<(u32, &str)> {
    let rest = after.trim_start().strip_prefix("**VERIFY")?;
    verify_marker_rest(rest).map(|(phase, text)| (phase, text.trim()))
}

/// What follows `**VERIFY`: ` Phase 2:** text`, ` 2**: text`, ` 4.1:** text` → (phase, text).
pub(super) fn verify_marker_rest(rest: &str) -> Option<(u32, &str)> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("Phase").unwrap_or(rest).trim_start();
    let num_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, after) = rest.split_at(num_len);
    let text = after
        .strip_prefix(":**")
        .or_else(|| after.strip_prefix("**:"))
        .or_else(|| after.strip_prefix("**"))?;
    Some((verify_phase_number(num)?, text))
}

/// `2` → 2; `4.1` / `4.1.2` (a VERIFY written for a task group) → its phase, 4.
pub(super) fn verify_phase_number(num: &str) -> Option<u32> {
    num.split('.').next()?.parse().ok()
}

/// `3: Title` → (3, `Title`).
pub(super) fn phase_heading(rest: &str) -> Option<(u32, &str)> {
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].parse().ok()?;
    let title = rest[digits..].trim_start().strip_prefix(':')?;
    Some((number, title.trim()))
}

/// Splits `(pipeline-start: when 1.3 completes)` off a phase title.
/// Returns the clean title and, if the clause is present, its trigger (None if malformed).
pub(super) fn split_inline_pipeline(title: &str) -> (String, Option<Option<String>>) {
    let Some(pos) = title.find("(pipeline-start:") else {
        return (title.to_string(), None);
    };
    let clause_start = pos + "(pipeline-start:".len();
    let Some(end) = title[clause_start..].find(')') else {
        return (title.to_string(), Some(None));
    };
    let inner = &title[clause_start..clause_start + end];
    let clean = format!(
        "{} {}",
        title[..pos].trim_end(),
        title[clause_start + end + 1..].trim()
    );
    (clean.trim().to_string(), Some(pipeline_trigger(inner)))
}

/// `when 1.3 completes` → `1.3`.
pub(super) fn pipeline_trigger(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_prefix("when").unwrap_or(t).trim();
    let id = t.split_whitespace().next()?;
    let id = id.trim_end_matches([',', '.', ')']);
    id_parts(id).map(|_| id.to_string())
}

/// `**Execution Note:** rest` → `rest` (also accepts `**Execution Note**:`).
pub(super) fn strip_bold_key<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("**")?.strip_prefix(key)?;
    rest.strip_prefix(":**")
        .or_else(|| rest.strip_prefix("**:"))
        .map(str::trim)
}

/// `**VERIFY…` → what follows `**VERIFY`.
pub(super) fn strip_bold_label<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    line.strip_prefix("**")?.strip_prefix(label)
}

/// A markdown list item's text (`- x`, `* x`, `+ x`, `1. x`).
pub(super) fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
    {
        return Some(rest);
    }
    let digits = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
    if digits > 0 {
        return line[digits..].strip_prefix(". ");
    }
    None
}

#[cfg(test)]
mod task_id_tests {
    use super::{task_id, task_id_general};

    /// The one-pass reading of an id is the general one.
    #[test]
    fn task_id_reads_like_the_general_way() {
        let ids = [
            "1.2",
            "1.2.3",
            "1.2.3.4",
            "1",
            "1.",
            ".1",
            "1..2",
            "12345678.1",
            "123456789.1",
            "1234567890.1",
            "1.1234567890",
            "4294967295.1",
            "4294967296.1",
            "+1.2",
            "1.+2",
            "1.2x",
            "x1.2",
            "",
            "1.2.",
            "01.02",
            "١.٢",
            "1.2é",
            "V1",
        ];
        for id in ids {
            for after in ["", " desc", "\tdesc", "  two", "x", "\u{a0}y"] {
                let line = format!("{id}{after}");
                assert_eq!(task_id(&line), task_id_general(&line), "{line:?}");
            }
        }
    }
}

#[cfg(test)]
mod find_tests {
    use super::{find_newline, find2};

    /// The word search finds the first of the two bytes, as a byte-by-byte search does, among
    /// their neighbours and high-bit twins, at every length.
    #[test]
    fn find2_is_a_byte_search() {
        let alphabet = [
            b'(',
            b'[',
            b'\n',
            b'(' ^ 0x80,
            b'[' ^ 0x80,
            0x0a ^ 0x80,
            b')',
            0,
            0xff,
            b'a',
            0x27,
            0x29,
            0x5a,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 150) as usize;
            let text: Vec<u8> = (0..len)
                .map(|k| alphabet[((seed >> (k % 50)) as usize + k * 7) % alphabet.len()])
                .collect();
            let naive = text.iter().position(|&c| c == b'(' || c == b'[');
            assert_eq!(find2(&text, b'(', b'['), naive, "{text:?}");
            let naive = text.iter().position(|&c| c == b'\n');
            assert_eq!(find_newline(&text), naive, "{text:?}");
        }
    }
}

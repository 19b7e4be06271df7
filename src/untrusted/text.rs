//! Text that came from an agent or a landed branch, as orch shows it: its control characters
//! escaped, so that it never drives the terminal (clears the screen, sets the title, writes
//! the clipboard with OSC 52, moves the cursor, overwrites a line with a carriage return or a
//! backspace) and never reorders what is around it.
//!
//! Escaped: every control character (C0, DEL and the C1 range, `U+009B` included, which some
//! terminals take as a CSI), the bidirectional overrides and isolates (`U+202A`-`U+202E`,
//! `U+2066`-`U+2069`, the marks `U+200E`, `U+200F`, `U+061C`) and the line and paragraph
//! separators (`U+2028`, `U+2029`), and the characters a person does not see but a model
//! reads (text hidden in them reaches a lead agent as an instruction): the tag characters
//! (`U+E0000`-`U+E007F`, "ASCII smuggling"), the zero-width ones (`U+200B`-`U+200D`,
//! `U+2060`-`U+2064`, `U+FEFF`, `U+180E`), the soft hyphen (`U+00AD`) and the variation
//! selectors that carry hidden bytes (`U+FE00`-`U+FE0D`, `U+E0100`-`U+E01EF`; `U+FE0E` and
//! `U+FE0F`, which choose between a symbol's text and emoji forms, are kept). Each is written
//! as Rust writes it in a string: `\u{1b}`, `\r`, `\u{202e}`. Everything else, non-ASCII
//! letters included, is kept.
//!
//! The commands' writers of text (`commands::output::println_safe`, `eprintln_safe`, the
//! `error:` lines, `orch up`'s progress, `orch top`'s frame) pass what they print through
//! [`escaped_lines`], so text of any origin is escaped there whether its caller thought of it
//! or not; [`Shown`] and [`escaped`] are for one line of it (where a newline would break the
//! layout), [`json_safe`] for JSON (whose own escaping leaves C1 and bidi characters raw).

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is shown escaped (see the module's list).
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{00ad}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200d}'
                | '\u{2060}'..='\u{2064}'
                | '\u{feff}'
                | '\u{fe00}'..='\u{fe0d}'
                | '\u{e0000}'..='\u{e007f}'
                | '\u{e0100}'..='\u{e01ef}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.extend(c.escape_unicode());
    }
}

/// Whether the UTF-8 `bytes` may hold a character of the module's list (newline and tab
/// aside when `lines`): a byte below space or DEL, or the first byte of a C1 control or the
/// soft hyphen (`0xC2`), of a bidi control, separator or zero-width character (`0xE2`), of
/// `U+061C` (`0xD8`), of `U+180E` (`0xE1`), of `U+FEFF` or a variation selector (`0xEF`), of a
/// tag character or a supplementary variation selector (`0xF3`). A byte loop the compiler
/// vectorises, so that the common text (a 5 MB `status --json`) costs one pass and no copy.
fn may_hold_unsafe(bytes: &[u8], lines: bool) -> bool {
    bytes.iter().fold(false, |any, &b| {
        let kept = lines && (b == b'\n' || b == b'\t');
        any | ((b < 0x20) & !kept)
            | (b == 0x7f)
            | (b == 0xc2)
            | (b == 0xe2)
            | (b == 0xd8)
            | (b == 0xe1)
            | (b == 0xef)
            | (b == 0xf3)
    })
}

fn escape_with(s: &str, lines: bool) -> Cow<'_, str> {
    if !may_hold_unsafe(s.as_bytes(), lines) {
        return Cow::Borrowed(s);
    }
    let unsafe_at = |c: char| is_unsafe(c) && !(lines && (c == '\n' || c == '\t'));
    let Some(first) = s.find(unsafe_at) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if unsafe_at(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` on one line: every character of the module's list escaped, newlines and tabs too.
pub(crate) fn escaped(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

/// `s` as lines: newlines and tabs kept, every other character of the module's list escaped.
pub(crate) fn escaped_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, true)
}

/// Untrusted text whose `Display` is [`escaped`]: `format!("{}", Shown(&cause))`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escaped(self.0))
    }
}

/// JSON text (as serde_json writes it) with the characters of the module's list that JSON
/// leaves raw (DEL, C1 controls, bidi controls, line separators; C0 ones are escaped already)
/// written as `\uXXXX` escapes: the same JSON value, safe to print (the text writers then find
/// nothing to escape, so they never write a `\u{7f}` that is no JSON). Such characters can
/// only be inside strings, where the escape means the same character.
pub(crate) fn json_safe(json: String) -> String {
    // JSON escapes C0 controls itself; DEL and the rest it leaves raw.
    let raw_in_json = |c: char| is_unsafe(c) && (!c.is_ascii() || c == '\u{7f}');
    if !may_hold_unsafe(json.as_bytes(), true) || !json.contains(raw_in_json) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw_in_json(c) {
            // JSON's `\uXXXX` holds 16 bits: a character beyond them is its UTF-16 pair.
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequences a hostile text uses to drive a terminal, each shown as visible text.
    #[test]
    fn every_way_to_drive_a_terminal_is_shown_escaped() {
        let cases = [
            ("\u{1b}[2J\u{1b}[H", "\\u{1b}[2J\\u{1b}[H"), // clear the screen
            ("\u{1b}]52;c;cm0gLXJm\u{7}", "\\u{1b}]52;c;cm0gLXJm\\u{7}"), // OSC 52 clipboard
            ("\u{1b}]0;owned\u{1b}\\", "\\u{1b}]0;owned\\u{1b}\\"), // title, ST-terminated
            ("a\u{1b}[3A\u{1b}[1;1H", "a\\u{1b}[3A\\u{1b}[1;1H"), // cursor moves
            ("done\rfailed", "done\\rfailed"),
            ("ok\u{8}\u{8}no", "ok\\u{8}\\u{8}no"),
            ("\u{9b}2J", "\\u{9b}2J"), // C1 CSI
            ("\u{9d}0;t\u{9c}", "\\u{9d}0;t\\u{9c}"),
            ("\u{7f}", "\\u{7f}"),
            ("abc\u{202e}fed\u{202c}", "abc\\u{202e}fed\\u{202c}"), // bidi override
            ("\u{2066}x\u{2069}\u{200f}", "\\u{2066}x\\u{2069}\\u{200f}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("two\nlines\tand tab", "two\\nlines\\tand tab"),
            ("plain ünïcödé → ok `code`", "plain ünïcödé → ok `code`"),
            // What a person does not see and a model reads.
            (
                "Which DB?\u{e0072}\u{e0075}\u{e006e}",
                "Which DB?\\u{e0072}\\u{e0075}\\u{e006e}",
            ),
            (
                "a\u{200b}b\u{200d}c\u{2060}d\u{feff}e\u{ad}f",
                "a\\u{200b}b\\u{200d}c\\u{2060}d\\u{feff}e\\u{ad}f",
            ),
            (
                "x\u{fe00}\u{e0100}\u{180e}",
                "x\\u{fe00}\\u{e0100}\\u{180e}",
            ),
            (
                "\u{2764}\u{fe0f} 한국어 ＡＢ",
                "\u{2764}\u{fe0f} 한국어 ＡＢ",
            ),
        ];
        for (raw, shown) in cases {
            assert_eq!(escaped(raw), shown, "{raw:?}");
            assert_eq!(Shown(raw).to_string(), shown);
            assert!(!escaped(raw).contains(is_unsafe));
        }
        assert_eq!(
            escaped_lines("a\tb\nc\u{1b}[31m\r\n"),
            "a\tb\nc\\u{1b}[31m\\r\n"
        );
        assert!(matches!(escaped("clean"), Cow::Borrowed(_)));
        assert!(matches!(escaped_lines("a\tb\nc"), Cow::Borrowed(_)));
        assert_eq!(escaped("a\tb\nc"), "a\\tb\\nc");
    }

    /// DEL is the one ASCII character JSON leaves raw that the text writers escape: made a JSON
    /// escape first, so that what `orch status --json` prints (through the escaping writer)
    /// is JSON of the same value, whatever control characters an agent's note holds.
    #[test]
    fn json_of_del_and_every_control_character_stays_json_through_the_writer() {
        let texts = [
            "note\u{7f}",
            "\u{7f}\u{7f}a\u{7f}",
            "x\u{1b}[2J\u{7f}\u{9b}\u{202e}\r\n\t\u{0}",
            "only ascii",
        ];
        for t in texts {
            let v = serde_json::json!({"note": t, "list": [t, t]});
            let safe = json_safe(serde_json::to_string(&v).expect("json"));
            let printed = escaped_lines(&safe);
            let back: serde_json::Value =
                serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{t:?}: {e}: {printed}"));
            assert_eq!(back, v, "{t:?}");
            assert!(!printed.contains('\u{7f}'), "{t:?}");
        }
    }

    #[test]
    fn json_of_hidden_characters_beyond_16_bits_is_still_json() {
        let v = serde_json::json!({"q": "ok\u{e0041}\u{200b}"});
        let text = json_safe(serde_json::to_string(&v).expect("json"));
        assert!(!text.contains(is_unsafe), "{text}");
        assert!(text.contains("\\udb40\\udc41"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, v);
    }

    #[test]
    fn json_stays_the_same_value_with_nothing_raw() {
        let v = serde_json::json!({"cause": "\u{1b}[2J\u{9b}31m\u{202e}x\u{2028}é"});
        let text = json_safe(serde_json::to_string(&v).expect("json"));
        assert!(!text.contains(is_unsafe), "{text}");
        assert!(
            text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, v);
    }
}

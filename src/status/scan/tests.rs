//! The scanner reads and refuses what serde_json reads and refuses.

use super::*;

fn valid(text: &str) -> bool {
    let mut s = Scan::from_str(text);
    s.value().is_some() && s.end().is_some()
}

/// Whatever the scanner accepts, serde_json accepts, and it reads the same spans.
#[test]
fn accepts_only_what_serde_json_accepts() {
    let cases = [
        "{}",
        "[]",
        r#"{"a": [1, -2.5e+3, 0, true, false, null, "x\"y\\z\n\u00e9"], "b": {"c": {}}}"#,
        "  {\"a\"  :\t1 }\n",
        "\"caf\u{e9}\"",
        "01",
        "1.",
        "-",
        "1e",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1: 2}",
        "[1 2]",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\u12\"",
        "\"a\u{1}b\"",
        "\"tab\there\"",
        "tru",
        "nul",
        "{\"a\": 1} x",
        "[[[[",
        "\"unterminated",
        "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\\"aaaaaaaaaaaaaaaaaa\"]",
    ];
    for text in cases {
        let serde_ok = serde_json::from_str::<serde_json::Value>(text).is_ok();
        if valid(text) {
            assert!(
                serde_ok,
                "scanner accepted what serde_json rejects: {text:?}"
            );
        }
    }
    assert!(valid(cases[2]));
    assert!(valid(cases[3]));
    assert!(valid(cases[24]));
    assert!(!valid("\"\\ud800\""), "surrogates are left to serde_json");
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert!(!valid(&deep));
}

#[test]
fn runs_end_at_the_first_special_byte() {
    for len in 0..20 {
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for fill in [
                b'a',
                0xc3,
                0x7f,
                0x20,
                0xff,
                0x21,
                0x5d,
                0x01 + 0x20,
                0x23,
                0x5b,
                0x80,
                0xa0,
                0xa2,
                0xdc,
                0x9f,
            ] {
                let mut text = vec![fill; len];
                text.push(special);
                text.extend_from_slice(b"\"xyz\\");
                let mut s = Scan {
                    b: &text,
                    i: 0,
                    depth: 0,
                };
                s.plain_run();
                assert_eq!(s.i, len, "{fill:#x} x {len} then {special:#x}");
            }
        }
    }
}

/// The word test marks the first special byte of any word: against a byte-by-byte search
/// on words mixing specials, their high-bit twins and their neighbours.
#[test]
fn the_word_test_finds_the_first_special_byte() {
    let bytes = [
        b'"',
        b'\\',
        0x00,
        0x1f,
        b'\n',
        0x20,
        0x21,
        0x23,
        0x5b,
        0x5d,
        0x5c ^ 0x80,
        0x22 ^ 0x80,
        0xa0,
        0x9f,
        0xff,
        0x80,
        0x7f,
        b'a',
        0x01,
        0xc3,
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut w = [0u8; 8];
        for (k, b) in w.iter_mut().enumerate() {
            *b = bytes[((seed >> (k * 5)) % bytes.len() as u64) as usize];
        }
        let naive = w.iter().position(|&c| special(c));
        assert_eq!(first_special(u64::from_le_bytes(w)), naive, "{w:x?}");
    }
}

/// Whitespace runs of every kind and length, between every token and at the ends, read as
/// serde_json reads them (the spaces are passed a word at a time).
#[test]
fn whitespace_runs_read_like_serde_json() {
    let runs = [
        "",
        " ",
        "  ",
        "\n",
        "\n      ",
        "\r\n        ",
        "\t",
        "\n\t \r ",
        "         ",
        "                  x",
        "\n                 \n  ",
        " \u{b}",
        "\u{a0}",
        " \u{c}",
    ];
    for run in runs {
        let text = format!(
            "{run}{{{run}\"a\"{run}:{run}[{run}1{run},{run}\"x\"{run},{run}{{}}{run}]{run},{run}\"b\"{run}:{run}null{run}}}{run}"
        );
        let serde_ok = serde_json::from_str::<serde_json::Value>(&text).is_ok();
        assert_eq!(valid(&text), serde_ok, "{text:?}");
        let mut s = Scan::from_str(&text);
        if let Some(v) = s.value() {
            assert_eq!(
                v,
                text.trim_matches([' ', '\n', '\r', '\t']).as_bytes(),
                "{text:?}"
            );
        }
    }
}

/// The chunked ASCII test is `is_ascii`, and a scanner is made of UTF-8 bytes only: a
/// non-ASCII byte anywhere (in a chunk or the tail) is found.
#[test]
fn only_utf8_is_scanned() {
    for len in [0usize, 1, 255, 256, 257, 600] {
        for at in [0, len / 2, len.saturating_sub(1)] {
            let mut b = vec![b' '; len];
            assert!(is_ascii(&b));
            if len == 0 {
                continue;
            }
            for bad in [0x80u8, 0xff, 0xc3] {
                b[at] = bad;
                assert!(!is_ascii(&b), "{len} {at} {bad:#x}");
                assert!(Scan::new(&b).is_none(), "{len} {at} {bad:#x}");
            }
            b[at] = b' ';
        }
    }
    let text = "{\"a\": \"caf\u{e9}\"}".repeat(30);
    assert!(Scan::new(text.as_bytes()).is_some());
}

/// An array of plain strings read in one loop ends where the general way ends it; any
/// other array (other elements, escapes, bad syntax) is left to the general way.
#[test]
fn string_arrays_end_where_the_general_way_ends_them() {
    let plain = [
        "[]",
        "[ ]",
        "[\n  ]",
        "[\"a\"]",
        "[\"a\",\"b\"]",
        "[\n        \"2.5\",\n        \"3.1\"\n      ]",
        "[\t\"x\"\r\n]",
        "[\"a\"] ",
    ];
    let other = [
        "[\"a\",]",
        "[\"a\" \"b\"]",
        "[\"a\\\"b\"]",
        "[1]",
        "[\"a\", 1]",
        "[\"a\"",
        "[\"a",
        "[",
        "[\"\u{1}\"]",
        "[[]]",
        "x",
    ];
    for (texts, handled) in [(&plain[..], true), (&other[..], false)] {
        for text in texts {
            let mut general = Scan::from_str(text);
            let end = general.skip().map(|()| general.i);
            let fast = strings_array(text.as_bytes(), 0);
            assert_eq!(fast.is_some(), handled, "{text:?}");
            if handled {
                assert_eq!(fast, end, "{text:?}");
            }
        }
    }
}

#[test]
fn strings_and_spans() {
    let text = r#"{"id": "1.1", "note": "a \"b\"", "n": [1, 2]}"#;
    let mut s = Scan::from_str(text);
    let mut got = Vec::new();
    s.object(|s, k| {
        if s.peek()? == b'"' {
            let v = s.string()?;
            got.push((
                String::from_utf8(k.raw.to_vec()).ok()?,
                v.decode()?,
                v.escaped,
            ));
        } else {
            let v = s.value()?;
            got.push((
                String::from_utf8(k.raw.to_vec()).ok()?,
                String::from_utf8(v.to_vec()).ok()?,
                false,
            ));
        }
        Some(())
    })
    .expect("object");
    assert_eq!(
        got,
        [
            ("id".to_string(), "1.1".to_string(), false),
            ("note".to_string(), "a \"b\"".to_string(), true),
            ("n".to_string(), "[1, 2]".to_string(), false),
        ]
    );
}

//! Durations as written in the manifest and in plans: `90s`, `30m`, `2h`, `1h30m`, `1d`.

use std::time::Duration;

/// Parses a duration made of `<integer><unit>` parts, units `d`, `h`, `m`, `s`, each at most once
/// and largest first (`1h30m`, not `30m1h`). Zero is accepted here; callers decide whether it
/// makes sense.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let bad = |why: &str| {
        Err(format!(
            "invalid duration `{s}`: {why} (write e.g. \"90s\", \"30m\", \"2h\" or \"1h30m\")"
        ))
    };
    if s.is_empty() {
        return bad("it is empty");
    }
    let mut total: u64 = 0;
    let mut rest = s;
    // Index into UNITS of the next unit allowed: units come largest first, each once.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return bad("expected a number");
        }
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return bad("a number has no unit (`s`, `m`, `h` or `d`)");
        };
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return bad(&format!("unknown unit `{unit}`"));
        };
        if pos < next_unit {
            return bad("units must appear once each, largest first");
        }
        next_unit = pos + 1;
        let Ok(n) = number.parse::<u64>() else {
            return bad("the number is too large");
        };
        let Some(secs) = n
            .checked_mul(UNITS[pos].1)
            .and_then(|v| v.checked_add(total))
        else {
            return bad("the number is too large");
        };
        total = secs;
        rest = &after[unit.len_utf8()..];
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the manifest's units, largest first: `1h30m`, `45s`; under a second, `250ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_largest_unit_first() {
        for (secs, want) in [
            (0, "0ms"),
            (45, "45s"),
            (90, "1m30s"),
            (3600, "1h"),
            (5410, "1h30m10s"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), want);
        }
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn duration_table() {
        let good = [
            ("90s", 90),
            ("30m", 1_800),
            ("2h", 7_200),
            ("1h30m", 5_400),
            ("1h30m15s", 5_415),
            ("1d", 86_400),
            ("1d2h", 93_600),
            ("0s", 0),
            ("2h5s", 7_205),
        ];
        for (text, secs) in good {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        let bad = [
            ("", "empty"),
            ("90", "no unit"),
            ("h", "expected a number"),
            ("1x", "unknown unit `x`"),
            ("30m1h", "largest first"),
            ("1h1h", "largest first"),
            ("1.5h", "unknown unit `.`"),
            (" 2h", "expected a number"),
            ("2h ", "expected a number"),
            ("-1h", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("999999999999999d", "too large"),
        ];
        for (text, fragment) in bad {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }
}

//! What kind of failure a client's words describe: one a person must fix (a login, the
//! flags), a usage or rate limit and when it resets, or an ordinary one.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Class, Fatal, MAX_WAIT};

/// What kind of failure a client's message (or an agent's last lines) describes.
pub(crate) fn classify(text: &str, now: DateTime<Utc>) -> Class {
    // `usage_limit_reached`, `rate-limit exceeded`: a client's codes and words alike.
    let words = |t: &str| t.to_ascii_lowercase().replace(['_', '-'], " ");
    let lower = words(text);
    let has = |k: &&str| lower.contains(words(k).as_str());
    const AUTH: &[&str] = &[
        "invalid api key",
        "invalid x-api-key",
        "invalid_api_key",
        "incorrect api key",
        "api key not valid",
        "authentication_error",
        "authentication_failed",
        "authentication failed",
        "please run /login",
        "not logged in",
        "401 unauthorized",
    ];
    const LIMIT: &[&str] = &[
        "usage limit",
        "rate limit exceeded",
        "rate limit reached",
        "rate limited",
        "rate_limit_error",
        "rate_limit_exceeded",
        "too many requests",
        "quota exceeded",
        "exceeded your current quota",
        "insufficient_quota",
        "hit your limit",
        "limit reached|",
        "overloaded_error",
    ];
    const FLAGS: &[&str] = &[
        "unexpected argument",
        "unknown option",
        "unrecognized option",
        "unknown flag",
        "unrecognized arguments",
        "unknown argument",
        "unknown command",
    ];
    if AUTH.iter().any(has) || status_code(&lower, "401") {
        return Class::Fatal(Fatal::Auth);
    }
    if LIMIT.iter().any(has) || status_code(&lower, "429") {
        return Class::Limit(reset_wait(text, now));
    }
    if FLAGS.iter().any(has) {
        return Class::Fatal(Fatal::RejectedFlags);
    }
    Class::Ordinary
}

/// Whether `code` stands as an HTTP status on a line that speaks of an error, status or API.
fn status_code(lower: &str, code: &str) -> bool {
    lower.lines().any(|line| {
        let words = ["error", "status", "http", "api"];
        words.iter().any(|w| line.contains(w))
            && line.match_indices(code).any(|(i, _)| {
                let before = line[..i].chars().next_back();
                let after = line[i + code.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric())
            })
    })
}

/// How long until the limit a message names resets: `…|1735689600` (Claude Code's epoch
/// seconds), `reset(s) at <RFC 3339 time>`, `try again in 2 hours 5 minutes`, `retry after 30s`,
/// `resets in 20 seconds`, `retry-after: 30`. `None` when it names no time (or one too far off).
pub(crate) fn reset_wait(text: &str, now: DateTime<Utc>) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let at = |t: DateTime<Utc>| {
        let secs = (t - now).num_milliseconds();
        Some(Duration::from_millis(
            u64::try_from(secs.max(0)).unwrap_or(0),
        ))
    };
    // Claude Code: "Claude AI usage limit reached|1735689600".
    if let Some(i) = lower.find("limit reached|") {
        let digits: String = lower[i + "limit reached|".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Some(t) = digits
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
        {
            return at(t).filter(|d| *d <= MAX_WAIT);
        }
    }
    for key in ["reset", "retry", "try again"] {
        for (i, _) in lower.match_indices(key) {
            let rest = &text[i + key.len()..];
            let window: String = rest.chars().take(60).collect();
            // An RFC 3339 time within the next words.
            for (j, c) in window.char_indices() {
                if c.is_ascii_digit()
                    && let Some(t) = rfc3339_prefix(&window[j..])
                {
                    return at(t).filter(|d| *d <= MAX_WAIT);
                }
            }
            // A clock time, local (Codex: "Try again at 7:49 AM.").
            if let Some((hour, minute)) = clock_time(&window.to_ascii_lowercase()) {
                let local = now.with_timezone(&chrono::Local).fixed_offset();
                return clock_wait(hour, minute, local).filter(|d| *d <= MAX_WAIT);
            }
            if let Some(d) = spelled_duration(&window.to_ascii_lowercase()) {
                return Some(d).filter(|d| *d <= MAX_WAIT);
            }
        }
    }
    None
}

/// ` at 7:49 AM`, ` at 19:49`: (hour 0-23, minute) of a clock time after "at".
pub(super) fn clock_time(s: &str) -> Option<(u32, u32)> {
    let rest = s.trim_start();
    let rest = rest
        .strip_prefix("at")
        .or_else(|| rest.strip_prefix("AT"))?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let (h, rest) = rest.split_once(':')?;
    let hour: u32 = h.parse().ok().filter(|h| *h < 24)?;
    let m: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let minute: u32 = Some(&m)
        .filter(|m| m.len() == 2)
        .and_then(|m| m.parse().ok())
        .filter(|m| *m < 60)?;
    let after = rest[m.len()..].trim_start().to_ascii_lowercase();
    let twelve = || Some(hour % 12).filter(|_| (1..=12).contains(&hour));
    let hour = if after.starts_with("am") || after.starts_with("a.m.") {
        twelve()?
    } else if after.starts_with("pm") || after.starts_with("p.m.") {
        twelve()? + 12
    } else {
        hour
    };
    Some((hour, minute))
}

/// How long from `now` until the end of the next minute `hour:minute` on `now`'s clock. A
/// clock time names a minute, and the reset lies within it: waiting until its end never
/// relaunches early. A time a few minutes past is a reset already over (no wait); one further
/// past is tomorrow's.
pub(super) fn clock_wait(
    hour: u32,
    minute: u32,
    now: DateTime<chrono::FixedOffset>,
) -> Option<Duration> {
    let start = now
        .date_naive()
        .and_hms_opt(hour, minute, 0)?
        .and_local_timezone(*now.offset())
        .single()?;
    let mut end = start + chrono::Duration::seconds(60);
    if end <= now - chrono::Duration::minutes(5) {
        end += chrono::Duration::days(1);
    }
    let ms = (end - now).num_milliseconds().max(0);
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// An RFC 3339 time at the start of `s` (`2026-11-23T10:00:00Z`, with optional fraction and
/// offset).
fn rfc3339_prefix(s: &str) -> Option<DateTime<Utc>> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+')))
        .map_or(s.len(), |(i, _)| i);
    let cand = s[..end].trim_end_matches('.');
    DateTime::parse_from_rfc3339(cand)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `in 2 hours 5 minutes`, `after 30s`, `: 30` (seconds): the first number-and-unit pairs.
fn spelled_duration(s: &str) -> Option<Duration> {
    let digit = s.find(|c: char| c.is_ascii_digit())?;
    let lead = s[..digit].trim_matches(|c: char| c.is_whitespace() || c == ':' || c == '-');
    if !["", "in", "after", "s in", "s after"].contains(&lead) {
        return None;
    }
    let mut rest = &s[digit..];
    let mut total = 0f64;
    let mut found = false;
    loop {
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let Ok(n) = num.parse::<f64>() else { break };
        let after = rest[num.len()..].trim_start();
        let unit: String = after
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let secs = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "ms" => 0.001,
            _ => break,
        };
        total += n * secs;
        found = true;
        rest = after[unit.len()..]
            .trim_start_matches(|c: char| c == ',' || c.is_whitespace())
            .trim_start_matches("and ")
            .trim_start();
        if unit.is_empty() {
            break;
        }
    }
    (found && total.is_finite()).then(|| Duration::from_secs_f64(total.max(0.0)))
}

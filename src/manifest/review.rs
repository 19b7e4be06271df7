//! The review loop's keys (`orch pr --watch`), in `[defaults]` and in a `[[plan]]` (the plan's
//! winning): `review_poll` (how often GitHub is asked, `"30s"`), `review_rounds` (rounds before
//! a person takes over, `3`), `review_from` (whose comments become tasks: logins and
//! `@org/team`s; unset: everyone with write access, as GitHub reports it), `review_label` (the
//! label of a pull request handed to a person, `"needs-person"`).

use std::time::Duration;

use super::raw::RawReview;
use super::spans::{Bad, Reporter};
use super::values::{at_least_one, duration};

/// The review keys, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Review {
    pub(crate) poll: Duration,
    pub(crate) rounds: u32,
    /// `None`: whoever has write access.
    pub(crate) from: Option<Vec<String>>,
    pub(crate) label: String,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(30),
            rounds: 3,
            from: None,
            label: "needs-person".into(),
        }
    }
}

/// A `review_from` entry: a login or `@org/team`.
fn reviewer(ctx: &str) -> impl Fn(&String) -> Result<String, Bad> + '_ {
    move |v| {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'))
        };
        let ok = match v.strip_prefix('@') {
            Some(team) => team
                .split_once('/')
                .is_some_and(|(org, t)| name_ok(org) && name_ok(t)),
            None => name_ok(v),
        };
        if ok {
            Ok(v.clone())
        } else {
            Err(Bad::new(format!(
                "`{ctx}` entry \"{v}\" is neither a GitHub login nor `@org/team`"
            ))
            .hint("write logins and teams: review_from = [\"some-login\", \"@org/reviewers\"]"))
        }
    }
}

/// `raw` over `base`, each bad value reported at its place (`ctx`: `defaults` or `plan`).
pub(crate) fn resolve(
    r: &mut Reporter<'_>,
    ctx: &str,
    raw: &RawReview<'_>,
    base: &Review,
) -> Review {
    let mut out = base.clone();
    let poll = format!("{ctx}.review_poll");
    r.set(&mut out.poll, raw.poll, duration(&poll, false));
    let rounds = format!("{ctx}.review_rounds");
    if let Some(n) = r.check(raw.rounds, at_least_one(&rounds)) {
        out.rounds = u32::try_from(n).unwrap_or(u32::MAX);
    }
    let from = format!("{ctx}.review_from");
    if let Some(list) = r.each(raw.from, reviewer(&from)) {
        out.from = Some(list);
    }
    let label = format!("{ctx}.review_label");
    r.set(&mut out.label, raw.label, |v: &String| {
        if v.trim().is_empty() || v.len() > 50 || v.chars().any(char::is_control) {
            Err(Bad::new(format!(
                "`{label}` must be a label's name (1 to 50 characters, no control characters)"
            )))
        } else {
            Ok(v.clone())
        }
    });
    out
}

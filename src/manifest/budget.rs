//! `budget`: the most a run (`[defaults]`) or a plan (`[[plan]]`) may spend, in US dollars
//! and/or tokens, as the agents' clients report them.

/// A spending limit; `None` parts are unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    /// In millionths of a US dollar.
    pub(crate) micro_usd: Option<u64>,
    pub(crate) tokens: Option<u64>,
}

impl Budget {
    pub(crate) fn is_set(&self) -> bool {
        self.micro_usd.is_some() || self.tokens.is_some()
    }

    /// `$5.00`, `2M tokens`, `$5.00 or 2M tokens`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.micro_usd {
            parts.push(crate::agent_output::format_usd(
                crate::agent_output::micro_to_usd(m),
            ));
        }
        if let Some(t) = self.tokens {
            parts.push(format!("{} tokens", crate::agent_output::short_count(t)));
        }
        parts.join(" or ")
    }

    /// What `spent` (millionths of a dollar, tokens) reached of this budget, in words, if
    /// anything.
    pub(crate) fn reached(&self, micro_usd: u64, tokens: u64) -> Option<String> {
        use crate::agent_output::{format_usd, micro_to_usd, short_count};
        if let Some(limit) = self.micro_usd
            && micro_usd >= limit
        {
            return Some(format!(
                "{} spent of a budget of {}",
                format_usd(micro_to_usd(micro_usd)),
                format_usd(micro_to_usd(limit))
            ));
        }
        if let Some(limit) = self.tokens
            && tokens >= limit
        {
            return Some(format!(
                "{} tokens used of a budget of {}",
                short_count(tokens),
                short_count(limit)
            ));
        }
        None
    }
}

/// Parses `"$5"`, `"2.50 usd"`, `"500k tokens"`, `"2M tokens"`, or both separated by a comma
/// (`"$5, 2M tokens"`).
pub(crate) fn parse_budget(s: &str) -> Result<Budget, String> {
    let bad = |part: &str| {
        Err(format!(
            "`{part}` is not an amount: write \"$5\", \"2.50 usd\", \"500k tokens\" or both, \"$5, 2M tokens\""
        ))
    };
    let mut out = Budget::default();
    if s.trim().is_empty() {
        return bad(s);
    }
    for part in s.split(',') {
        let p = part.trim().to_ascii_lowercase();
        if let Some(num) = p
            .strip_prefix('$')
            .or_else(|| p.strip_suffix("usd"))
            .map(str::trim)
        {
            match num.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && out.micro_usd.is_none() => {
                    out.micro_usd = Some(crate::agent_output::usd_to_micro(v));
                }
                _ => return bad(part.trim()),
            }
        } else if let Some(num) = p
            .strip_suffix("tokens")
            .or_else(|| p.strip_suffix("token"))
            .map(str::trim)
        {
            let (digits, mult) = match num.chars().last() {
                Some('k') => (&num[..num.len() - 1], 1e3),
                Some('m') => (&num[..num.len() - 1], 1e6),
                Some('g' | 'b') => (&num[..num.len() - 1], 1e9),
                _ => (num, 1.0),
            };
            match digits.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && out.tokens.is_none() => {
                    out.tokens = Some((v * mult).round() as u64);
                }
                _ => return bad(part.trim()),
            }
        } else {
            return bad(part.trim());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        let usd = |m| Budget {
            micro_usd: Some(m),
            tokens: None,
        };
        assert_eq!(parse_budget("$5"), Ok(usd(5_000_000)));
        assert_eq!(parse_budget("2.50 USD"), Ok(usd(2_500_000)));
        assert_eq!(
            parse_budget("500k tokens"),
            Ok(Budget {
                micro_usd: None,
                tokens: Some(500_000)
            })
        );
        assert_eq!(
            parse_budget("$0.01, 2M tokens"),
            Ok(Budget {
                micro_usd: Some(10_000),
                tokens: Some(2_000_000)
            })
        );
        for bad in ["", "5", "$", "$-1", "lots", "$1, $2", "x tokens"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
        let b = usd(1_000_000);
        assert_eq!(b.reached(999_999, 0), None);
        assert_eq!(
            b.reached(1_200_000, 0).as_deref(),
            Some("$1.20 spent of a budget of $1.00")
        );
        assert_eq!(
            parse_budget("$5, 2M tokens").map(|b| b.describe()),
            Ok("$5.00 or 2.0M tokens".into())
        );
    }
}

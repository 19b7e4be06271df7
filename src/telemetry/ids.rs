//! The run's trace id and the span ids of its parts, derived, not stored: the span of attempt 2
//! of task 1.2 of plan `api` is known when the attempt is launched (its `TRACEPARENT`) and again
//! when the sink turns its events into a span, from the same four values.

/// A run's trace: 16 random bytes drawn when `orch up` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceId(pub(crate) [u8; 16]);

/// Which part of the run a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    Run,
    Plan(&'a str),
    Task(&'a str, &'a str),
    Attempt(&'a str, &'a str, u32),
    /// A step of an attempt (`check`, `commit`) or of a plan (`merge`, `setup`), with its
    /// attempt (0 for a plan's).
    Step(&'static str, &'a str, &'a str, u32),
}

impl TraceId {
    /// A fresh trace id (never all zeros, as W3C trace context requires).
    pub(crate) fn random() -> Self {
        let mut b = [0u8; 16];
        if rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).is_err() {
            // No randomness: the clock and the pid still tell runs apart.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            b = (now ^ (u128::from(std::process::id()) << 64)).to_be_bytes();
        }
        if b == [0; 16] {
            b[15] = 1;
        }
        Self(b)
    }

    pub(crate) fn hex(&self) -> String {
        hex(&self.0)
    }

    /// The span id of `part` of this run: FNV-1a (64 bits) of the trace id and the part's
    /// fields, each length-prefixed (no two parts share one); never all zeros.
    pub(crate) fn span(&self, part: Part<'_>) -> [u8; 8] {
        let mut h = Fnv::new();
        h.bytes(&self.0);
        match part {
            Part::Run => h.field(b"run"),
            Part::Plan(p) => {
                h.field(b"plan");
                h.field(p.as_bytes());
            }
            Part::Task(p, t) => {
                h.field(b"task");
                h.field(p.as_bytes());
                h.field(t.as_bytes());
            }
            Part::Attempt(p, t, n) => {
                h.field(b"attempt");
                h.field(p.as_bytes());
                h.field(t.as_bytes());
                h.field(&n.to_be_bytes());
            }
            Part::Step(kind, p, t, n) => {
                h.field(b"step");
                h.field(kind.as_bytes());
                h.field(p.as_bytes());
                h.field(t.as_bytes());
                h.field(&n.to_be_bytes());
            }
        }
        let v = h.0.to_be_bytes();
        if v == [0; 8] {
            [0, 0, 0, 0, 0, 0, 0, 1]
        } else {
            v
        }
    }

    /// The W3C `traceparent` of `part` (sampled): `00-<trace>-<span>-01`.
    pub(crate) fn traceparent(&self, part: Part<'_>) -> String {
        format!("00-{}-{}-01", self.hex(), hex(&self.span(part)))
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn field(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_be_bytes());
        self.bytes(b);
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// `s` percent-encoded for a value of `OTEL_RESOURCE_ATTRIBUTES` (W3C baggage syntax): every
/// byte but ASCII letters, digits and `-._~` as `%XX`, so that a name can hold neither a `,` nor
/// an `=` that would start another attribute.
pub(crate) fn percent_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `OTEL_RESOURCE_ATTRIBUTES` of an attempt: `orch.plan=…,orch.task=…,orch.attempt=…`.
pub(crate) fn resource_attributes(plan: &str, task: &str, attempt: u32) -> String {
    format!(
        "orch.plan={},orch.task={},orch.attempt={attempt}",
        percent_encoded(plan),
        percent_encoded(task)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_stable_and_distinct() {
        let t = TraceId([7; 16]);
        let a = t.span(Part::Attempt("api", "1.2", 2));
        assert_eq!(a, t.span(Part::Attempt("api", "1.2", 2)));
        assert_ne!(a, t.span(Part::Attempt("api", "1.2", 3)));
        assert_ne!(a, t.span(Part::Attempt("api1", ".2", 2)));
        assert_ne!(t.span(Part::Plan("a")), t.span(Part::Task("a", "")));
        assert_ne!(a, TraceId([8; 16]).span(Part::Attempt("api", "1.2", 2)));
        let tp = t.traceparent(Part::Run);
        assert_eq!(tp.len(), 55);
        assert!(tp.starts_with("00-0707"));
        assert!(tp.ends_with("-01"));
    }

    #[test]
    fn names_are_percent_encoded() {
        for (plan, task, want) in [
            ("api", "1.2", "orch.plan=api,orch.task=1.2,orch.attempt=3"),
            (
                "a,b=c",
                "x y",
                "orch.plan=a%2Cb%3Dc,orch.task=x%20y,orch.attempt=3",
            ),
            ("é", "%", "orch.plan=%C3%A9,orch.task=%25,orch.attempt=3"),
            ("a\nb", ";", "orch.plan=a%0Ab,orch.task=%3B,orch.attempt=3"),
        ] {
            assert_eq!(resource_attributes(plan, task, 3), want);
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(TraceId::random(), TraceId::random());
    }
}

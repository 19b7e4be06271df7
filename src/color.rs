//! Whether orch writes colour: one decision for the whole process, made from `--color` (set
//! once by the command line, before anything is printed) and the environment. Everything that
//! colours its output asks [`enabled`]: clap's help and errors, orch's `error:`/`hint:` lines,
//! `orch top`, the `RUST_LOG` diagnostics.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

/// `--color auto|always|never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum When {
    /// Colour on a terminal, unless `NO_COLOR` is set (to anything but the empty string);
    /// `CLICOLOR_FORCE` (not empty, not `0`) colours a pipe too.
    #[default]
    Auto,
    /// Always, whatever the environment says.
    Always,
    /// Never.
    Never,
}

/// Where the coloured text goes: colour in `auto` depends on it being a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// Records the process's `--color` (the command line calls it as it reads the option).
pub(crate) fn choose(when: When) {
    CHOSEN.store(when as u8, Ordering::Relaxed);
}

/// The process's `--color`; `Auto` until [`choose`] is called.
pub(crate) fn chosen() -> When {
    match CHOSEN.load(Ordering::Relaxed) {
        x if x == When::Always as u8 => When::Always,
        x if x == When::Never as u8 => When::Never,
        _ => When::Auto,
    }
}

/// Whether `stream` is a terminal (where a spinner or a bar may be drawn).
pub(crate) fn is_terminal(stream: Stream) -> bool {
    match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    }
}

/// Whether to colour what is written to `stream`, by [`decide`] on this process's choice and
/// environment.
pub(crate) fn enabled(stream: Stream) -> bool {
    let terminal = is_terminal(stream);
    decide(
        chosen(),
        set("NO_COLOR"),
        std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0"),
        terminal,
    )
}

/// The rule: `always` and `never` win; in `auto`, a non-empty `NO_COLOR` turns colour off,
/// else `CLICOLOR_FORCE` turns it on, else a terminal does.
pub(crate) fn decide(when: When, no_color: bool, force: bool, terminal: bool) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => !no_color && (force || terminal),
    }
}

/// `text` in bold `sgr` colour (an SGR parameter: `31` red, `33` yellow, `36` cyan) when
/// `on`, else as it is.
pub(crate) fn paint(on: bool, sgr: &str, text: &str) -> String {
    if on {
        format!("\x1b[1;{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        use When::*;
        // Explicit choices win over everything.
        for (no_color, force, terminal) in [(true, false, true), (false, false, false)] {
            assert!(decide(Always, no_color, force, terminal));
            assert!(!decide(Never, no_color, force, terminal));
        }
        assert!(decide(Auto, false, false, true));
        assert!(!decide(Auto, false, false, false));
        assert!(!decide(Auto, true, false, true), "NO_COLOR");
        assert!(
            !decide(Auto, true, true, true),
            "NO_COLOR over CLICOLOR_FORCE"
        );
        assert!(decide(Auto, false, true, false), "CLICOLOR_FORCE");
    }

    #[test]
    fn paint_only_when_on() {
        assert_eq!(paint(false, "31", "error:"), "error:");
        assert_eq!(paint(true, "31", "error:"), "\x1b[1;31merror:\x1b[0m");
    }
}

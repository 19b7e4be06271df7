//! The agent's client CLI in a plan's container: the image's own when it has one (its `PATH`,
//! asked once at the start of the run), else this machine's, mounted read-only when it is an
//! executable of its own (an ELF file: Claude Code's, opencode's) and
//! refused before anything runs when it is a script for an interpreter the image may lack
//! (Gemini CLI, Qwen Code, Copilot CLI: `node`; aider: `python`).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::podman;
use crate::error::CliError;

/// Where a client from this machine is mounted in the container.
const INSIDE: &str = "/usr/local/libexec/orch-client";

/// This machine's client program, mounted into the container.
#[derive(Clone, Debug)]
pub(super) struct Client {
    /// The program's name as the agent's command gives it (`claude`).
    name: String,
    /// The file on this machine (links resolved).
    pub(super) host: PathBuf,
}

impl Client {
    /// Where it is in the container.
    pub(super) fn inside(&self) -> PathBuf {
        Path::new(INSIDE).join(&self.name)
    }

    /// The attempt's `argv` with the client started from its mount: the program orch's
    /// `wrap` found on the container's `PATH` (`/usr/bin/env NAME`) replaced by it.
    pub(super) fn in_argv(&self, mut argv: Vec<String>) -> Vec<String> {
        if let Some(i) = argv
            .windows(2)
            .position(|w| w[0] == "/usr/bin/env" && w[1] == self.name)
        {
            argv.splice(i..i + 2, [self.inside().display().to_string()]);
        }
        argv
    }
}

/// Where the start of the run found a plan's client.
pub(super) enum Found {
    /// In the image, at this path.
    Image(String),
    /// On this machine, to be mounted.
    Mounted(Client),
}

impl Found {
    /// The line the start of the run prints about plan `plan`.
    pub(super) fn note(&self, plan: &str, image: &str) -> String {
        match self {
            Found::Image(path) => {
                format!("plan `{plan}` runs its client from its image `{image}` ({path})")
            }
            Found::Mounted(c) => format!(
                "plan `{plan}` runs its client `{}` from this machine ({}), mounted read-only into its container: the image `{image}` has none",
                c.name,
                c.host.display()
            ),
        }
    }

    pub(super) fn mounted(self) -> Option<Client> {
        match self {
            Found::Mounted(c) => Some(c),
            Found::Image(_) => None,
        }
    }
}

/// Finds plan `plan`'s client `program` (a bare name of a client orch knows) for a container of
/// `image`: in the image, else on this machine. `None` when `program` is no client orch knows
/// (the image must have it, as any other program). Refused (exit 2) when neither has one that
/// can run there.
pub(super) fn find(
    plan: &str,
    image: &str,
    program: &str,
    cwd: &Path,
) -> Result<Option<Found>, CliError> {
    if crate::manifest::KnownCli::of(&[program.to_string()]).is_none() {
        return Ok(None);
    }
    if let Some(path) = in_image(image, program)? {
        return Ok(Some(Found::Image(path)));
    }
    let hint = format!(
        "install `{program}` in the image `{image}` (its PATH), or set `image` to one that has it"
    );
    let Some(host) = crate::process::resolve_program(program, cwd) else {
        return Err(CliError::invalid(anyhow!(
            "plan `{plan}` runs `{program}` in a container, but neither its image `{image}` nor this machine has it"
        ))
        .with_hint(hint));
    };
    let real = host.canonicalize().unwrap_or(host);
    if !is_elf(&real) {
        return Err(CliError::invalid(anyhow!(
            "plan `{plan}` runs `{program}` in a container: its image `{image}` has none, and this machine's (`{}`) is a script, whose interpreter the image may lack",
            real.display()
        ))
        .with_hint(hint));
    }
    Ok(Some(Found::Mounted(Client {
        name: program.to_string(),
        host: real,
    })))
}

/// The path of `program` on the `PATH` of `image` (`command -v` in a container of it, removed
/// after), or `None`; asked once per image and program in a run of orch.
fn in_image(image: &str, program: &str) -> Result<Option<String>, CliError> {
    type Asked = std::collections::BTreeMap<(String, String), Option<String>>;
    static ASKED: std::sync::Mutex<Asked> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let key = (image.to_string(), program.to_string());
    if let Some(found) = ASKED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let found = ask_image(image, program)?;
    ASKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, found.clone());
    Ok(found)
}

fn ask_image(image: &str, program: &str) -> Result<Option<String>, CliError> {
    let mut argv = vec![
        podman::program(),
        "run".into(),
        "--rm".into(),
        "--network".into(),
        "none".into(),
    ];
    argv.extend(podman::ulimits());
    argv.extend([
        "--entrypoint".into(),
        "sh".into(),
        image.to_string(),
        "-c".into(),
        "command -v -- \"$1\" || true".into(),
        "sh".into(),
        program.to_string(),
    ]);
    let out = podman::output(&argv).map_err(|e| {
        CliError::new(
            crate::exit::FAILURE,
            anyhow!("cannot look for `{program}` in the image `{image}`: {e}"),
        )
    })?;
    // The image's words: bounded, and shown escaped.
    let path: String = out.trim().chars().take(4096).collect();
    Ok((!path.is_empty()).then(|| crate::untrusted::text::escaped(&path).into_owned()))
}

/// Whether `path` is an ELF executable (its first four bytes).
fn is_elf(path: &Path) -> bool {
    crate::untrusted::read::head(path, 4).is_ok_and(|magic| magic == b"\x7fELF")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_found_on_the_containers_path_is_replaced_by_the_mount() {
        let c = Client {
            name: "claude".into(),
            host: PathBuf::from("/opt/claude.exe"),
        };
        let argv: Vec<String> = ["/o", "sandbox-exec", "--", "/usr/bin/env", "claude", "-p"]
            .map(String::from)
            .into();
        assert_eq!(
            c.in_argv(argv),
            [
                "/o",
                "sandbox-exec",
                "--",
                "/usr/local/libexec/orch-client/claude",
                "-p"
            ]
        );
        // Another program is left alone.
        let argv: Vec<String> = ["/usr/bin/env", "cargo", "test"].map(String::from).into();
        assert_eq!(c.in_argv(argv.clone()), argv);
    }
}

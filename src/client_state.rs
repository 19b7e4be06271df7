//! A confined agent's private copy of its client's state (a local attempt's, made by the
//! supervisor, `crate::supervisor::client_state`; a remote attempt's, made on its host by orch's
//! copy there, `crate::executor::ssh::remote_run`): Claude Code, Codex and
//! Gemini CLI keep their login, settings, hooks, MCP servers and `notify` commands in the user's
//! HOME, and run what they find there in the user's next, unconfined, session. A confined agent
//! therefore never writes there: each confined attempt of a client orch knows
//! ([`KnownCli::private_state`]) gets `<state_dir>/.clients/<plan>/<unit>-<attempt>/`, made
//! fresh by orch, seeded from the user's state (never from an earlier attempt's copy, which its
//! agent wrote), named by the client's own variable (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`,
//! `GEMINI_CLI_HOME`) and writable for that attempt only; it is removed when the attempt ends.
//! A user with no state yet (a fresh HOME with an API key) gets an empty one.
//!
//! Seeding reads the user's state: a symlink the user made at the top (a `settings.json` kept
//! with their dotfiles) is read through; inside a copied directory, symlinks are copied as
//! symlinks, never followed. Every file is created anew (`create_new`) in a directory orch has
//! just made, so no write follows a link.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::manifest::{KnownCli, StateHome};

/// The directory under the state directory that holds the private copies (a name no plan can
/// have: plan names begin with a letter or a digit, so no plan's status directory is this one).
pub(crate) const DIR: &str = crate::state_layout::CLIENTS.name;
/// The directory in [`DIR`] of the sessions kept between a task's attempts
/// (`crate::supervisor::resume::kept_dir`): not a plan's (no plan's name begins with a `.`).
pub(crate) const KEPT: &str = ".kept";

/// Where attempt `attempt` of `unit` (a task id, or `plan`) of plan `plan` keeps its client's
/// state; `state_dir` is the run's state directory.
pub(crate) fn dir(state_dir: &Path, plan: &str, unit: &str, attempt: u32) -> PathBuf {
    state_dir
        .join(DIR)
        .join(plan)
        .join(format!("{unit}-{attempt}"))
}

/// What a confined attempt's client is given: its variables, each set to the private copy or a
/// directory of it (which the attempt may write, and which is removed when it ends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Prepared {
    pub(crate) vars: Vec<(&'static str, PathBuf)>,
    pub(crate) dir: PathBuf,
}

/// Makes `dir` afresh (whatever was there, an earlier run's copy included, is removed first),
/// seeded from the user's state of `cli`; `env` reads `orch up`'s environment (the user's
/// `CLAUDE_CONFIG_DIR`, `HOME`). `None` for a client without a variable for its state.
pub(crate) fn prepare(
    cli: KnownCli,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> io::Result<Option<Prepared>> {
    let Some(spec) = cli.private_state() else {
        return Ok(None);
    };
    fresh_dir(dir)?;
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let mut vars = Vec::new();
    // `base/name` made (mode 0700), or `base` itself for an empty name.
    let made = |base: &Path, name: &str| -> io::Result<PathBuf> {
        let d = base.join(name);
        if !name.is_empty() {
            fs::DirBuilder::new().mode(0o700).create(&d)?;
        }
        Ok(d)
    };
    for (i, h) in spec.homes.iter().enumerate() {
        let named = made(dir, h.at)?;
        let state = made(&named, h.sub)?;
        let home_files = if i == 0 { spec.home_files } else { &[] };
        for (from, to) in sources(h, home_files, env, home.as_deref()) {
            copy_entry(&from, &state.join(to))?;
        }
        vars.push((h.var, named));
    }
    Ok(Some(Prepared {
        vars,
        dir: dir.to_path_buf(),
    }))
}

/// Removes an attempt's private copy (its agent's files: nothing in it is followed, however
/// deep; bounded in time, what is left removed by `orch up`'s next start or `orch clean`).
pub(crate) fn remove(dir: &Path) {
    let _ = crate::untrusted::remove::remove_path(dir);
}

/// The user's files of one state variable to copy, with where each goes relative to the
/// private state directory; `home_files` are copied only when the variable is not set.
fn sources(
    spec: &StateHome,
    home_files: &[(&str, &str)],
    env: &dyn Fn(&str) -> Option<OsString>,
    home: Option<&Path>,
) -> Vec<(PathBuf, PathBuf)> {
    let expand = |p: &str| -> Option<PathBuf> {
        if p == "~" {
            home.map(Path::to_path_buf)
        } else if let Some(rest) = p.strip_prefix("~/") {
            home.map(|h| h.join(rest))
        } else {
            Some(PathBuf::from(p))
        }
    };
    let set = env(spec.var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = set.clone().or_else(|| expand(spec.default));
    let mut out = Vec::new();
    if let Some(base) = base {
        let user_state = if spec.sub.is_empty() {
            base
        } else {
            base.join(spec.sub)
        };
        // The user's state itself must be the user's: a variable naming a relative path is
        // taken as unset rather than resolved against orch's directory.
        if user_state.is_absolute() {
            out.extend(
                spec.entries
                    .iter()
                    .map(|e| (user_state.join(e), PathBuf::from(e))),
            );
        }
    }
    if set.is_none() {
        out.extend(
            home_files
                .iter()
                .filter_map(|(from, to)| Some((expand(from)?, PathBuf::from(to)))),
        );
    }
    out
}

/// `dir` made anew with mode 0700 (its parents as needed); what was there is removed, without
/// following a symlink in its place.
fn fresh_dir(dir: &Path) -> io::Result<()> {
    remove(dir);
    if let Some(parent) = dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    fs::DirBuilder::new().mode(0o700).create(dir)
}

/// Copies one entry of the user's state: a file (read through a symlink the user made), or a
/// directory (its files copied, its symlinks copied as symlinks). A missing entry is skipped.
fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let meta = match fs::metadata(from) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(named(e, from)),
    };
    if meta.is_dir() {
        copy_tree(from, to)
    } else if meta.is_file() {
        copy_file(from, to, meta.permissions().mode())
    } else {
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(to)?;
    for entry in fs::read_dir(from).map_err(|e| named(e, from))? {
        let entry = entry.map_err(|e| named(e, from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| named(e, &src))?;
        if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| named(e, &src))?;
            std::os::unix::fs::symlink(target, &dst)?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            let mode = entry
                .metadata()
                .map_err(|e| named(e, &src))?
                .permissions()
                .mode();
            copy_file(&src, &dst, mode)?;
        }
    }
    Ok(())
}

/// A new file `to` (never an existing one, never through a link) with `from`'s bytes and
/// permission bits (at most the user's own).
fn copy_file(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    let mut src = fs::File::open(from).map_err(|e| named(e, from))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o700)
        .open(to)?;
    io::copy(&mut src, &mut dst).map_err(|e| named(e, from))?;
    Ok(())
}

/// An I/O error that names the user's file it is about.
fn named(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: Vec<(&'static str, PathBuf)>) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone().into_os_string())
        }
    }

    #[test]
    fn a_fresh_home_gets_an_empty_private_state() {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().join("home");
        fs::create_dir(&home).expect("home");
        let dir = dir(&tmp.path().join("state"), "p", "1.1", 1);
        let env = env_of(vec![("HOME", home.clone())]);
        for cli in [
            KnownCli::Claude,
            KnownCli::Codex,
            KnownCli::Qwen,
            KnownCli::Copilot,
            KnownCli::Opencode,
            KnownCli::Gemini,
        ] {
            let got = prepare(cli, &dir, &env)
                .expect("prepare")
                .expect("a variable");
            let var = cli.private_state().expect("private state").homes[0].var;
            assert_eq!((got.vars[0].0, &got.dir), (var, &dir));
            assert!(dir.is_dir(), "{cli:?}");
            if cli == KnownCli::Opencode {
                // Each XDG variable names a directory of its own in the copy, with
                // `opencode` made inside it.
                let names: Vec<_> = got.vars.iter().map(|(v, d)| (*v, d.clone())).collect();
                assert_eq!(names[1], ("XDG_DATA_HOME", dir.join("data")));
                for (_, d) in &names {
                    assert!(d.join("opencode").is_dir(), "{}", d.display());
                }
            }
        }
        assert_eq!(
            fs::read_dir(dir.join(".gemini")).expect("gemini").count(),
            0
        );
        assert_eq!(prepare(KnownCli::Aider, &dir, &env).expect("aider"), None);
        assert_eq!(
            fs::read_dir(&home).expect("home").count(),
            0,
            "HOME untouched"
        );
    }

    #[test]
    fn the_copy_is_made_anew_from_the_users_state_without_following_links() {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().join("home");
        let claude = home.join(".claude");
        fs::create_dir_all(claude.join("commands")).expect("mkdir");
        let dotfiles = tmp.path().join("dotfiles-settings.json");
        fs::write(&dotfiles, "{\"model\":\"m\"}").expect("write");
        std::os::unix::fs::symlink(&dotfiles, claude.join("settings.json")).expect("link");
        fs::write(claude.join(".credentials.json"), "token").expect("write");
        fs::write(home.join(".claude.json"), "{\"userID\":\"u\"}").expect("write");
        fs::write(claude.join("commands/x.md"), "x").expect("write");
        let secret = tmp.path().join("secret");
        fs::write(&secret, "s").expect("write");
        std::os::unix::fs::symlink(&secret, claude.join("commands/link.md")).expect("link");
        fs::create_dir_all(claude.join("projects/old")).expect("history");

        let dir = dir(&tmp.path().join("state"), "p", "1.1", 1);
        // What an earlier attempt left there (a hook, a link to the user's file) is gone.
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("settings.json"), "{\"hooks\":{}}").expect("plant");
        let env = env_of(vec![("HOME", home.clone())]);
        prepare(KnownCli::Claude, &dir, &env).expect("prepare");
        assert_eq!(
            fs::read_to_string(dir.join("settings.json")).expect("settings"),
            "{\"model\":\"m\"}"
        );
        assert!(
            !fs::symlink_metadata(dir.join("settings.json"))
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_to_string(dir.join(".claude.json")).expect("json"),
            "{\"userID\":\"u\"}"
        );
        assert_eq!(
            fs::read_to_string(dir.join(".credentials.json")).expect("cred"),
            "token"
        );
        assert_eq!(
            fs::read_link(dir.join("commands/link.md")).expect("still a link"),
            secret
        );
        assert!(!dir.join("projects").exists(), "history is not copied");
        let mode = fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        // With CLAUDE_CONFIG_DIR set, `.claude.json` is the one inside it.
        let own = tmp.path().join("own");
        fs::create_dir_all(&own).expect("mkdir");
        fs::write(own.join(".claude.json"), "{\"userID\":\"own\"}").expect("write");
        let env = env_of(vec![("HOME", home.clone()), ("CLAUDE_CONFIG_DIR", own)]);
        prepare(KnownCli::Claude, &dir, &env).expect("prepare");
        assert_eq!(
            fs::read_to_string(dir.join(".claude.json")).expect("json"),
            "{\"userID\":\"own\"}"
        );
        assert!(!dir.join("settings.json").exists());
        remove(&dir);
        assert!(!dir.exists());
        assert!(dotfiles.exists() && secret.exists() && home.join(".claude.json").exists());
    }
}

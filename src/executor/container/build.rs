//! A dev container's image built from its Dockerfile (`build` of `devcontainer.json`): `podman
//! build` of the Dockerfile and the context as committed on the repository's checked-out branch
//! (`HEAD`), copied into a directory of orch's (regular files only: a link is refused, a
//! submodule left out), tagged `localhost/orch-devcontainer:<hash>` by a SHA-256 of the
//! Dockerfile's and the context's git ids and the build arguments, and built once: an image of
//! that tag is used as it is.
//!
//! The Dockerfile and its context are the agents' work once it has landed, so the build gets
//! nothing of this machine: `--network none` (its `RUN`s reach nothing), `--pull=never` (its
//! `FROM` is an image podman has), no volume, no secret, no ssh agent; a Dockerfile that asks
//! for more (`RUN --mount`/`--network`/`--security`, an `ADD` of a URL or a git repository) is
//! refused before anything runs, naming its line. A failed build changes nothing (`--force-rm`)
//! and is an error naming the file, with the end of the build's output (escaped).

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use super::devcontainer::{Build, FILE};
use super::podman;

/// The name of the images orch builds (each tagged by its hash).
pub(crate) const REPOSITORY: &str = "localhost/orch-devcontainer";

/// The label of such an image: its hash.
pub(crate) const LABEL: &str = "dev.orch-cli.build";

/// The most of the Dockerfile and context copied for a build.
const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// The lines of a failed build's output shown.
const TAIL_LINES: usize = 15;

/// One build at a time (two plans of one repository would build the same image).
static BUILDING: Mutex<()> = Mutex::new(());

/// The tag of `b`'s image in `repo_root`, built now unless podman has it; a note when it was
/// built now.
pub(crate) fn image(repo_root: &Path, b: &Build) -> Result<(String, Option<String>), String> {
    let file = repo_root.join(FILE);
    let named = |e: String| {
        format!(
            "`{}` builds its image from `{}`: {e}",
            file.display(),
            b.dockerfile.display()
        )
    };
    // No engine (an unknown `ORCH_CONTAINER_ENGINE`, none installed): nothing is asked of one.
    podman::engine().map_err(|e| named(e.to_string()))?;
    let (context_id, dockerfile_id) =
        crate::git::head_ids(repo_root, &b.context, &b.dockerfile).map_err(named)?;
    let mut h = Sha256::new();
    h.update(format!(
        "orch dev container build 1\0{dockerfile_id}\0{context_id}\0"
    ));
    for (k, v) in &b.args {
        h.update(format!("{k}={v}\0"));
    }
    let hash: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let tag = format!("{REPOSITORY}:{}", &hash[..24]);
    let _one = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    if exists(&tag) {
        return Ok((tag, None));
    }
    let dir =
        std::env::temp_dir().join(format!("orch-build-{}-{}", std::process::id(), &hash[..24]));
    let _ = std::fs::remove_dir_all(&dir);
    let built = build_in(repo_root, b, &dir, (&tag, &hash));
    let _ = std::fs::remove_dir_all(&dir);
    built.map(|secs| {
        let note = format!(
            "built the dev container's image `{tag}` from `{}` (context `{}`) in {secs:.1}s; later runs use it as it is",
            b.dockerfile.display(),
            if b.context.as_os_str().is_empty() { ".".to_string() } else { b.context.display().to_string() }
        );
        (tag, Some(note))
    }).map_err(named)
}

/// Whether the engine has image `tag`.
fn exists(tag: &str) -> bool {
    podman::has_image(tag)
}

/// Builds `b` as `tag` in the directory `dir` of orch's: its seconds.
fn build_in(
    repo_root: &Path,
    b: &Build,
    dir: &Path,
    (tag, hash): (&str, &str),
) -> Result<f64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make `{}`: {e}", dir.display()))?;
    let (context, dockerfile) = (dir.join("context"), dir.join("Dockerfile"));
    crate::git::head_export(
        repo_root,
        (&b.context, &context),
        (&b.dockerfile, &dockerfile),
        MAX_BYTES,
    )?;
    let text = crate::untrusted::read::text(&dockerfile, crate::untrusted::read::PLAN)
        .map_err(|e| e.to_string())?;
    refused(&text)?;
    let log = dir.join("build.log");
    let out =
        std::fs::File::create(&log).map_err(|e| format!("cannot make `{}`: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut argv: Vec<String> = vec!["build".into(), "--network".into(), "none".into()];
    // docker's build has neither `--pull=never` nor `--no-hosts`: its `FROM` takes a local
    // image, and one it lacks is asked of a registry, which `--network none` does not stop:
    // every `FROM` must name an image docker has ([`missing_base`]).
    if !podman::is_docker() {
        argv.extend(["--pull=never".into(), "--no-hosts".into()]);
    }
    argv.extend([
        "--force-rm".into(),
        "--label".into(),
        format!("{LABEL}={hash}"),
        "--tag".into(),
        tag.into(),
        "--file".into(),
        dockerfile.display().to_string(),
    ]);
    if podman::is_docker()
        && let Some(base) = missing_base(&text, &b.args)
    {
        return Err(format!(
            "its `FROM {}` names an image docker does not have here; orch's build pulls nothing (build or load it first)",
            crate::untrusted::text::escaped(&base)
        ));
    }
    argv.extend(podman::ulimits());
    for (k, v) in &b.args {
        argv.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    argv.push(context.display().to_string());
    let started = Instant::now();
    let status = crate::agent_env::command(podman::program())
        .args(&argv)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", podman::program()))?;
    if status.success() {
        return Ok(started.elapsed().as_secs_f64());
    }
    let end = crate::untrusted::read::tail(&log, 0, 16 * 1024)
        .map(|(_, b)| b)
        .unwrap_or_default();
    let end = String::from_utf8_lossy(&end);
    let lines: Vec<&str> = end.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut why = format!(
        "`{} build` failed ({status}); the end of its output:",
        podman::name()
    );
    for l in &lines[lines.len().saturating_sub(TAIL_LINES)..] {
        why.push_str("\n    ");
        why.push_str(&crate::untrusted::text::escaped(l));
    }
    Err(why)
}

/// The first image a `FROM` of the Dockerfile `text` names that the engine does not have (its
/// build arguments `args` and the `ARG` defaults before it put in), or one it cannot tell (a
/// variable left): docker's build would ask a registry for it. Earlier stages and `scratch`
/// are not images.
fn missing_base(text: &str, args: &[(String, String)]) -> Option<String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("").to_ascii_uppercase();
        if first == "ARG" && !seen_from {
            if let Some((k, v)) = words.next().and_then(|w| w.split_once('=')) {
                vars.push((k.to_string(), v.trim_matches('"').to_string()));
            }
            continue;
        }
        if first != "FROM" {
            continue;
        }
        seen_from = true;
        let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = rest.first() else {
            continue;
        };
        let mut image = image.to_string();
        // The build's arguments first: they override the defaults.
        for (k, v) in args.iter().chain(vars.iter()) {
            image = image
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
        let local = image == "scratch" || stages.contains(&image.to_ascii_lowercase());
        if let (Some(as_), Some(stage)) = (rest.get(1), rest.get(2))
            && as_.eq_ignore_ascii_case("as")
        {
            stages.push(stage.to_ascii_lowercase());
        }
        if !local && (image.contains('$') || !podman::has_image(&image)) {
            return Some(image);
        }
    }
    None
}

/// Why the Dockerfile `text` asks for more than orch's build gives, naming its line; `Ok` when
/// it does not.
fn refused(text: &str) -> Result<(), String> {
    let mut start = 0;
    let mut joined = String::new();
    for (n, line) in text.lines().enumerate() {
        if joined.is_empty() {
            start = n + 1;
            if line.trim_start().starts_with('#') {
                continue;
            }
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                continue;
            }
            None => joined.push_str(line),
        }
        let instr = std::mem::take(&mut joined);
        let mut words = instr.split_whitespace();
        let mut first = words.next().unwrap_or("").to_ascii_uppercase();
        if first == "ONBUILD" {
            first = words.next().unwrap_or("").to_ascii_uppercase();
        }
        let rest: Vec<&str> = words.collect();
        let why = match first.as_str() {
            "RUN" if rest.first().is_some_and(|w| w.starts_with("--")) => Some(
                "a `RUN` with options (`--mount`, `--network`, `--security`): orch's build gives it nothing of this machine",
            ),
            "ADD"
                if rest
                    .iter()
                    .any(|w| w.contains("://") || w.starts_with("git@")) =>
            {
                Some("an `ADD` of a URL or a git repository: orch's build reaches no network")
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err(format!("its line {start} is refused: {why}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_dockerfile_may_not_ask_is_refused_naming_its_line() {
        assert!(
            refused(
                "FROM localhost/x\n# RUN --mount=x\nRUN echo --mount\nADD a.txt /a\nCOPY . /src\n"
            )
            .is_ok()
        );
        for (text, line) in [
            ("FROM x\nRUN --network=host curl x\n", 2),
            (
                "FROM x\n\nRUN \\\n  --mount=type=bind,source=/,target=/h cat /h/etc/shadow\n",
                3,
            ),
            ("FROM x\nadd https://example.com/x /x\n", 2),
            ("FROM x\nADD --chmod=644 git@github.com:a/b /b\n", 2),
            ("FROM x\nONBUILD RUN --security=insecure id\n", 2),
            (
                "FROM x\nrun --mount=type=secret,id=k cat /run/secrets/k\n",
                2,
            ),
        ] {
            let e = refused(text).expect_err(text);
            assert!(e.contains(&format!("line {line} ")), "{text}: {e}");
        }
    }
}

//! What a plan's image must have, asked at the start of `orch up` before anything runs: the
//! image itself (the engine has it: a removed one is not pulled, nor an attempt failed on it), and
//! in it `/usr/bin/env` (each attempt's program is found through it), `sh` and the agent's
//! program on its `PATH` (a client orch knows is looked for by [`super::client`], which mounts
//! this machine's when it can). One throwaway container per image and program, `--network
//! none`; a refusal names the plan, the image, the tool and the fix (exit 6: a person must fix
//! the image; nothing ran, no retry was spent).

use anyhow::anyhow;

use super::podman;
use crate::error::CliError;
use crate::exit;

/// Refuses plan `plan` when its image `image` is missing, or lacks a tool its attempts need
/// (`program`: its agent's program, a bare name, unless a client orch mounts).
pub(super) fn check(plan: &str, image: &str, program: Option<&str>) -> Result<(), CliError> {
    type Asked = std::collections::BTreeMap<(String, Option<String>), Option<String>>;
    static ASKED: std::sync::Mutex<Asked> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let key = (image.to_string(), program.map(str::to_string));
    let known = ASKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let missing = match known {
        Some(m) => m,
        None => {
            let m = missing(image, program)?;
            ASKED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, m.clone());
            m
        }
    };
    let Some(tool) = missing else {
        return Ok(());
    };
    Err(CliError::new(
        exit::AGENT,
        anyhow!("plan `{plan}` runs in a container of the image `{image}`, which has no `{tool}`"),
    )
    .with_hint(format!(
        "install `{tool}` in the image `{image}` (on its PATH), or set `image` to one that has it"
    )))
}

/// The first tool of the image's that is missing, if any; an error when the engine has no such
/// image, or cannot run it.
fn missing(image: &str, program: Option<&str>) -> Result<Option<String>, CliError> {
    if !podman::has_image(image) {
        let engine = podman::name();
        return Err(CliError::new(
            exit::AGENT,
            anyhow!("{engine} has no image `{image}` (removed, or never built or pulled)"),
        )
        .with_hint(format!(
            "build it or pull it (`{engine} pull {image}`), or set `image` to one that `{engine} images` lists"
        )));
    }
    let mut argv = vec![
        podman::program(),
        "run".into(),
        "--rm".into(),
        "--pull=never".into(),
        "--network".into(),
        "none".into(),
    ];
    argv.extend(podman::ulimits());
    argv.extend([
        "--entrypoint".into(),
        "/usr/bin/env".into(),
        image.to_string(),
        "sh".into(),
        "-c".into(),
        "for t; do command -v -- \"$t\" > /dev/null || { echo \"$t\"; exit 0; }; done".into(),
        "sh".into(),
    ]);
    argv.extend(program.map(str::to_string));
    match podman::output(&argv) {
        Ok(out) => {
            let tool: String = out.lines().next().unwrap_or("").chars().take(256).collect();
            Ok((!tool.trim().is_empty())
                .then(|| crate::untrusted::text::escaped(tool.trim()).into_owned()))
        }
        // Its entry point, or the shell it starts, not found.
        Err(e) if e.contains("\"/usr/bin/env\"") || e.contains("/usr/bin/env: not found") => {
            Ok(Some("/usr/bin/env".into()))
        }
        Err(e) if e.contains("/usr/bin/env:") && e.contains("sh") => Ok(Some("sh".into())),
        Err(e) => Err(CliError::new(
            exit::FAILURE,
            anyhow!("cannot look for the tools of plans in the image `{image}`: {e}"),
        )),
    }
}

//! The image of a repository's dev container, from `.devcontainer/devcontainer.json` (JSON with
//! comments and trailing commas, read bounded): its `image`, or the image built from its
//! Dockerfile (`build.dockerfile`, `build.context`, `build.args`, and the legacy `dockerFile` and
//! `context`: [`super::build`]). Every other key is ignored; the ones that would set up the
//! container (`features`, the lifecycle commands) are named in a note at the start
//! ([`not_done_note`]).

use std::path::{Component, Path, PathBuf};

/// Where the dev container's settings are, relative to the repository.
pub(crate) const FILE: &str = ".devcontainer/devcontainer.json";

/// The most of the file read.
const MAX: u64 = 256 * 1024;

/// Where a dev container's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// An image, as podman names it.
    Image(String),
    /// Built from a Dockerfile of the repository.
    Build(Build),
}

/// A dev container's build: its Dockerfile and context, relative to the repository's root (the
/// context empty for the root itself), and its build arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Build {
    pub(crate) dockerfile: PathBuf,
    pub(crate) context: PathBuf,
    pub(crate) args: Vec<(String, String)>,
}

/// The image of `repo_root`'s dev container (built now unless it was: [`super::build`]), or why
/// there is none to use.
pub(crate) fn image(repo_root: &Path) -> Result<String, String> {
    image_noted(repo_root).map(|(i, _)| i)
}

/// [`image`], and a note when it was built now.
pub(crate) fn image_noted(repo_root: &Path) -> Result<(String, Option<String>), String> {
    match source(repo_root)? {
        Source::Image(i) => Ok((i, None)),
        Source::Build(b) => super::build::image(repo_root, &b),
    }
}

/// The keys of the dev container's settings that set up a container and that orch does not
/// do: its `features` and its lifecycle commands.
const NOT_DONE: &[&str] = &[
    "features",
    "initializeCommand",
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
];

/// A note naming what `repo_root`'s dev container asks that orch does not do (its `features`,
/// its lifecycle commands), so that a tool they would have added is not missed silently; `None`
/// when it asks none of them (or there is no such file).
pub(crate) fn not_done_note(repo_root: &Path) -> Option<String> {
    let v = settings(repo_root).ok()?;
    let mut said = Vec::new();
    for key in NOT_DONE {
        let Some(value) = v.get(*key) else { continue };
        let empty = value.is_null()
            || value.as_object().is_some_and(serde_json::Map::is_empty)
            || value.as_str().is_some_and(str::is_empty)
            || value.as_array().is_some_and(Vec::is_empty);
        if empty {
            continue;
        }
        if *key == "features" {
            let names: Vec<String> = value
                .as_object()
                .map(|m| {
                    m.keys()
                        .take(5)
                        .map(|k| format!("`{}`", crate::untrusted::text::escaped(k)))
                        .collect()
                })
                .unwrap_or_default();
            let more = value.as_object().map_or(0, |m| m.len().saturating_sub(5));
            let mut list = names.join(", ");
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            said.push(format!("its `features` ({list})"));
        } else {
            said.push(format!("its `{key}`"));
        }
    }
    (!said.is_empty()).then(|| {
        format!(
            "`{FILE}` asks for {}, which orch does not do: its containers run the image as it is (a tool a feature would add is missing unless the image or its Dockerfile has it; a plan's `setup` runs commands in its container)",
            said.join(" and ")
        )
    })
}

/// `repo_root`'s dev container settings, read bounded.
fn settings(repo_root: &Path) -> Result<serde_json::Value, String> {
    let path = repo_root.join(FILE);
    let limit = crate::untrusted::read::Limit {
        bytes: MAX,
        what: "a dev container's settings",
    };
    let bytes = match crate::untrusted::read::optional(&path, limit) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(format!(
                "no `image` is set and `{}` does not exist",
                path.display()
            ));
        }
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    crate::untrusted::jsonc::parse(&text)
        .ok_or_else(|| format!("`{}` is not valid JSON with comments", path.display()))
}

/// What `repo_root`'s dev container says its image is.
pub(crate) fn source(repo_root: &Path) -> Result<Source, String> {
    let path = repo_root.join(FILE);
    let v = settings(repo_root)?;
    let bad = |what: String| format!("`{}`: {what}", path.display());
    let build = v.get("build");
    let legacy = v.get("dockerFile").or_else(|| v.get("dockerfile"));
    if build.is_some() || legacy.is_some() {
        let at = |key: &str| {
            build
                .and_then(|b| b.get(key))
                .or_else(|| v.get(key).filter(|_| legacy.is_some()))
        };
        let dockerfile = build
            .and_then(|b| b.get("dockerfile").or_else(|| b.get("dockerFile")))
            .or(legacy)
            .ok_or_else(|| bad("`build` names no `dockerfile`".into()))?;
        let dockerfile = dockerfile
            .as_str()
            .ok_or_else(|| bad("`dockerfile` is not a string".into()))?;
        let context = match at("context") {
            None => ".",
            Some(c) => c
                .as_str()
                .ok_or_else(|| bad("`context` is not a string".into()))?,
        };
        let mut args = Vec::new();
        if let Some(a) = build.and_then(|b| b.get("args")) {
            let a = a
                .as_object()
                .ok_or_else(|| bad("`build.args` is not an object".into()))?;
            for (k, val) in a {
                let ok_key = k
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                let val = val.as_str().filter(|s| !s.contains('\0'));
                match (ok_key, val) {
                    (true, Some(val)) => args.push((k.clone(), val.to_string())),
                    _ => {
                        return Err(bad(format!(
                            "`build.args` `{k}` is not a name with a string"
                        )));
                    }
                }
            }
        }
        return Ok(Source::Build(Build {
            dockerfile: inside(dockerfile)
                .map_err(|e| bad(format!("`dockerfile` \"{dockerfile}\" {e}")))?,
            context: inside(context).map_err(|e| bad(format!("`context` \"{context}\" {e}")))?,
            args,
        }));
    }
    match v.get("image").and_then(serde_json::Value::as_str) {
        Some(i)
            if !i.is_empty() && !i.starts_with('-') && i.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(Source::Image(i.to_string()))
        }
        Some(i) => Err(bad(format!("`image` \"{i}\" is not an image reference"))),
        None => Err(format!("`{}` names no `image`", path.display())),
    }
}

/// `rel`, a path relative to the dev container's directory (`.devcontainer/`), as a path
/// relative to the repository's root that stays in it (read as written: `..` goes up).
fn inside(rel: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    let base = Path::new(FILE).parent().unwrap_or(Path::new(""));
    for c in base.join(rel).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err("leads out of the repository".to_string());
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("is not a path inside the repository".to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(d.path().join(".devcontainer")).expect("dir");
        std::fs::write(d.path().join(FILE), text).expect("write");
        d
    }

    /// What orch does not do is named (features by name, escaped; lifecycle commands by key);
    /// nothing when the file asks none of it.
    #[test]
    fn features_and_lifecycle_commands_are_named_in_a_note() {
        let d = write(
            "{ \"image\": \"x\", \"features\": { \"ghcr.io/devcontainers/features/node:1\": {}, \"./local\\u001b[31m\": {} }, \"postCreateCommand\": \"npm ci\", \"onCreateCommand\": \"\" }",
        );
        let note = not_done_note(d.path()).expect("a note");
        assert!(
            note.contains("`ghcr.io/devcontainers/features/node:1`"),
            "{note}"
        );
        assert!(note.contains("`postCreateCommand`"), "{note}");
        assert!(!note.contains("onCreateCommand"), "{note}");
        assert!(!note.contains('\u{1b}'), "{note}");
        for quiet in [
            "{ \"image\": \"x\" }",
            "{ \"image\": \"x\", \"features\": {}, \"postStartCommand\": [] }",
        ] {
            assert_eq!(not_done_note(write(quiet).path()), None, "{quiet}");
        }
        let many: Vec<String> = (0..8).map(|i| format!("\"f{i}\": {{}}")).collect();
        let d = write(&format!("{{ \"features\": {{ {} }} }}", many.join(", ")));
        let note = not_done_note(d.path()).expect("a note");
        assert!(note.contains("and 3 more"), "{note}");
        assert_eq!(
            not_done_note(tempfile::tempdir().expect("tmp").path()),
            None
        );
    }

    #[test]
    fn the_image_of_a_commented_devcontainer() {
        let d = write(
            "{\n  // the toolchain\n  \"name\": \"x // not a comment\",\n  /* block */ \"image\": \"localhost/dev:1\",\n  \"features\": {},\n}\n",
        );
        assert_eq!(image(d.path()).expect("image"), "localhost/dev:1");
    }

    #[test]
    fn a_built_devcontainer_is_read_and_one_that_leads_out_or_none_is_refused_naming_the_file() {
        let d = write(
            "{ \"build\": { \"dockerfile\": \"Dockerfile\", \"context\": \"..\", \"args\": { \"V\": \"1\" } }, \"image\": \"x\" }",
        );
        assert_eq!(
            source(d.path()).expect("build"),
            Source::Build(Build {
                dockerfile: ".devcontainer/Dockerfile".into(),
                context: PathBuf::new(),
                args: vec![("V".into(), "1".into())],
            })
        );
        let d = write("{ \"dockerFile\": \"../docker/Dev\", \"context\": \"ctx\" }");
        assert_eq!(
            source(d.path()).expect("legacy"),
            Source::Build(Build {
                dockerfile: "docker/Dev".into(),
                context: ".devcontainer/ctx".into(),
                args: Vec::new(),
            })
        );
        for bad in [
            "{ \"build\": { \"dockerfile\": \"../../Dockerfile\" } }",
            "{ \"build\": { \"dockerfile\": \"/etc/passwd\" } }",
            "{ \"build\": { \"dockerfile\": \"D\", \"context\": \"../..\" } }",
            "{ \"build\": { \"dockerfile\": \"D\", \"args\": { \"A B\": \"1\" } } }",
            "{ \"build\": { \"context\": \".\" } }",
        ] {
            let d = write(bad);
            let e = source(d.path()).expect_err(bad);
            assert!(e.contains("devcontainer.json"), "{bad}: {e}");
        }
        let d = write("{ \"name\": \"x\" }");
        assert!(
            image(d.path())
                .expect_err("none")
                .contains("names no `image`")
        );
        let d = write("{ \"image\": \"--privileged\" }");
        assert!(image(d.path()).is_err());
        let d = tempfile::tempdir().expect("tmp");
        assert!(
            image(d.path())
                .expect_err("missing")
                .contains("does not exist")
        );
    }
}

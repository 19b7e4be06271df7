//! The image of a repository's dev container: the `image` key of
//! `.devcontainer/devcontainer.json` (JSON with comments and trailing commas), read bounded. A
//! dev container built from a Dockerfile (`build`, `dockerFile`) is refused for now; every
//! other key is ignored.

use std::path::Path;

/// Where the dev container's settings are, relative to the repository.
pub(crate) const FILE: &str = ".devcontainer/devcontainer.json";

/// The most of the file read.
const MAX: u64 = 256 * 1024;

/// The image named by `repo_root`'s dev container, or why there is none to use.
pub(crate) fn image(repo_root: &Path) -> Result<String, String> {
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
    let v = crate::untrusted::jsonc::parse(&text)
        .ok_or_else(|| format!("`{}` is not valid JSON with comments", path.display()))?;
    if v.get("build").is_some() || v.get("dockerFile").is_some() || v.get("dockerfile").is_some() {
        return Err(format!(
            "`{}` builds its image (`build`/`dockerFile`), which orch does not do yet: build it yourself (`podman build -t NAME .devcontainer`) and set `image = \"NAME\"` in plans.toml",
            path.display()
        ));
    }
    match v.get("image").and_then(serde_json::Value::as_str) {
        Some(i)
            if !i.is_empty() && !i.starts_with('-') && i.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(i.to_string())
        }
        Some(i) => Err(format!(
            "`{}`: `image` \"{i}\" is not an image reference",
            path.display()
        )),
        None => Err(format!("`{}` names no `image`", path.display())),
    }
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

    #[test]
    fn the_image_of_a_commented_devcontainer() {
        let d = write(
            "{\n  // the toolchain\n  \"name\": \"x // not a comment\",\n  /* block */ \"image\": \"localhost/dev:1\",\n  \"features\": {},\n}\n",
        );
        assert_eq!(image(d.path()).expect("image"), "localhost/dev:1");
    }

    #[test]
    fn a_built_devcontainer_or_none_is_refused_naming_the_file() {
        let d = write("{ \"build\": { \"dockerfile\": \"Dockerfile\" } }");
        let e = image(d.path()).expect_err("build");
        assert!(
            e.contains("devcontainer.json") && e.contains("image ="),
            "{e}"
        );
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

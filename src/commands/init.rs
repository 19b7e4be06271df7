//! `orch init`: a commented `plans.toml`, the prompt templates, an example plan and a
//! `.gitignore` entry, written into a directory without overwriting anything.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow};

use super::output::println_safe;
use crate::error::{CliError, CliResult, exit};
use crate::manifest::{MANIFEST_NAME, check_ref_name};
use crate::prompt::{PLAN_FILE, PLAN_TEMPLATE, TASK_FILE, TASK_TEMPLATE};

/// The commented manifest `orch init` writes (its `target` is replaced by the current branch).
pub(crate) const MANIFEST_TEMPLATE: &str = include_str!("../../assets/init/plans.toml");
/// The example plan the manifest lists.
pub(crate) const EXAMPLE_PLAN: &str = include_str!("../../assets/init/example.md");
/// Where the example plan goes.
pub(crate) const EXAMPLE_PATH: &str = "docs/plans/example.md";
/// The templates directory, as `defaults.templates` says by default.
pub(crate) const TEMPLATES_DIR: &str = "orch/templates";
/// The `.gitignore` line that keeps orch's worktrees, state and logs out of git.
pub(crate) const GITIGNORE_ENTRY: &str = "/.orch/";

/// Writes the files into `dir` (the current directory when `None`).
pub(crate) fn run(dir: Option<&Path>) -> CliResult<u8> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let target = current_branch(&dir);
    let files = files(target.as_deref());

    // Check everything before writing anything.
    let existing: Vec<&str> = files
        .iter()
        .map(|(rel, _)| rel.as_str())
        .filter(|rel| dir.join(rel).symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        let list = existing
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CliError::new(
            exit::REFUSED,
            anyhow!(
                "refusing to overwrite {list} in `{}`; nothing was written",
                dir.display()
            ),
        )
        .with_hint("move those files away, or run `orch init --dir NEW_DIR` elsewhere"));
    }

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory `{}`", parent.display()))?;
        }
        // `create_new`: a file that appeared since the check is still not overwritten.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        println_safe(&format!("wrote {rel}"));
    }
    let gitignore = update_gitignore(&dir.join(".gitignore"))?;
    println_safe(&gitignore);
    if let Some(t) = &target {
        println_safe(&format!(
            "target branch: `{t}` (the current branch; `defaults.target` in plans.toml)"
        ));
    }
    println_safe(
        "\nnext steps:\n  \
         orch check    validate plans.toml and the example plan\n  \
         orch up       run it with the `claude` preset (`agent` in plans.toml)\n  \
         orch demo     a scripted run in a temporary repository, no agent needed",
    );
    Ok(exit::OK)
}

/// Every file `init` writes, relative to the directory, with its contents.
pub(crate) fn files(target: Option<&str>) -> Vec<(String, String)> {
    vec![
        (MANIFEST_NAME.to_string(), manifest_text(target)),
        (format!("{TEMPLATES_DIR}/{TASK_FILE}"), TASK_TEMPLATE.into()),
        (format!("{TEMPLATES_DIR}/{PLAN_FILE}"), PLAN_TEMPLATE.into()),
        (EXAMPLE_PATH.to_string(), EXAMPLE_PLAN.into()),
    ]
}

/// The manifest with `target` set to `branch` when one is given.
pub(crate) fn manifest_text(branch: Option<&str>) -> String {
    match branch {
        Some(b) if b != "main" => {
            let quoted = toml::Value::String(b.to_string()).to_string();
            MANIFEST_TEMPLATE.replacen(
                "\ntarget = \"main\"\n",
                &format!("\ntarget = {quoted}\n"),
                1,
            )
        }
        _ => MANIFEST_TEMPLATE.to_string(),
    }
}

/// The branch checked out in the git repository containing `dir` (also an unborn one), if any.
fn current_branch(dir: &Path) -> Option<String> {
    let start = if dir.exists() {
        dir.to_path_buf()
    } else {
        dir.ancestors().find(|a| a.exists())?.to_path_buf()
    };
    let name = crate::git::current_branch_at(&start)?;
    check_ref_name(&name).ok()?;
    Some(name)
}

/// Appends [`GITIGNORE_ENTRY`] unless the file already ignores `.orch`; returns what it did.
fn update_gitignore(path: &Path) -> CliResult<String> {
    // Tracked, so possibly landed from an agent's branch: read as untrusted.
    let existing = match crate::untrusted::read::text(path, crate::untrusted::read::MANIFEST) {
        Ok(text) => Some(text),
        Err(e) if e.is_missing() => None,
        Err(e) => Err(anyhow::anyhow!(e))?,
    };
    let ignored = existing.as_deref().is_some_and(|text| {
        text.lines()
            .map(str::trim)
            .any(|l| matches!(l, "/.orch/" | "/.orch" | ".orch/" | ".orch"))
    });
    if ignored {
        return Ok(format!(".gitignore already ignores {GITIGNORE_ENTRY}"));
    }
    let sep = match existing.as_deref() {
        Some(t) if !t.is_empty() && !t.ends_with('\n') => "\n",
        _ => "",
    };
    let add =
        format!("{sep}# orch: plan worktrees, status files and agent logs\n{GITIGNORE_ENTRY}\n");
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(add.as_bytes()))
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(if existing.is_some() {
        format!("appended {GITIGNORE_ENTRY} to .gitignore")
    } else {
        format!("wrote .gitignore ({GITIGNORE_ENTRY})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{TEMPLATE_VARS, agent_keys, defaults_keys, plan_keys};
    use std::path::PathBuf;

    fn manifest_path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_NAME)
    }

    fn write_all(dir: &Path, target: Option<&str>) {
        for (rel, text) in files(target) {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
    }

    #[test]
    fn the_manifest_documents_every_key() {
        let text = MANIFEST_TEMPLATE;
        let written = |key: &str| {
            text.lines().any(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{key} = "))
            })
        };
        for key in defaults_keys()
            .iter()
            .chain(plan_keys())
            .chain(agent_keys())
        {
            assert!(written(key), "plans.toml written by init lacks `{key}`");
        }
        for table in ["[defaults]", "[[plan]]"] {
            assert!(text.lines().any(|l| l == table), "{table}");
        }
        // The preset by name, never a copy of its argv (which would not follow a fixed preset).
        assert!(text.lines().any(|l| l == "agent = \"claude\""), "{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("[agents.")),
            "init writes no agent table: {text}"
        );
        for var in TEMPLATE_VARS {
            assert!(
                text.contains(var),
                "template variable `{var}` not mentioned"
            );
        }
        // Every setting has a comment right above it (or is itself a commented example).
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains(" = ") && !l.starts_with('#') && !l.starts_with("name") {
                let above = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|a| !a.is_empty())
                    .any(|a| a.starts_with('#'));
                let grouped =
                    i > 0 && lines[i - 1].contains(" = ") && !lines[i - 1].starts_with('#');
                assert!(above || grouped, "no comment for `{l}`");
            }
        }
    }

    #[test]
    fn the_written_files_load_as_a_valid_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(dir.path(), None);
        let m = crate::manifest::load(&manifest_path(dir.path())).expect("valid manifest");
        assert_eq!(m.defaults.target, "main");
        assert_eq!(m.defaults.templates, PathBuf::from(TEMPLATES_DIR));
        assert_eq!(m.plans.len(), 1);
        let p = &m.plans[0];
        assert_eq!(
            (p.name.as_str(), p.file.as_path()),
            ("example", Path::new(EXAMPLE_PATH))
        );
        assert_eq!((p.priority, p.retries, p.parallel), (10, 1, 2));
        let plan = crate::plan::parse_file(&p.abs_file).expect("plan");
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
        let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["1.1", "1.2", "1.3", "V1", "2.1"]);
        assert_eq!(plan.phases.len(), 2);
        assert_eq!(
            plan.task("1.3").expect("1.3").dependencies(),
            ["1.1", "1.2"]
        );
        assert_eq!(
            plan.task("1.2").expect("1.2").body,
            "- one line, ending with a newline"
        );
        // The templates written are the built-in ones, and they pass the check.
        let t = crate::prompt::Templates::load(&m.root, &m.defaults.templates).expect("load");
        assert!(matches!(t.task_origin(), crate::prompt::Origin::File(_)));
        t.check().expect("templates valid");
    }

    #[test]
    fn the_target_follows_the_current_branch() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(dir.path(), Some("trunk"));
        let m = crate::manifest::load(&manifest_path(dir.path())).expect("valid");
        assert_eq!(m.defaults.target, "trunk");
        assert_eq!(manifest_text(Some("main")), MANIFEST_TEMPLATE);
        assert!(manifest_text(Some("release/1.x")).contains("\ntarget = \"release/1.x\"\n"));
    }
}

//! orch's own paths in a repository: its directories (`worktree_root`, `state_dir`, `log_dir`)
//! and the files it copies into each worktree from the main checkout (`copy`, `warm`, the
//! entries of `.worktreeinclude`). Neither is ever a plan's work: no commit orch makes stages
//! one and no landing takes a tree that changes one ([`own_path`]), whatever the branch's
//! `.gitignore` says, so a copied secret an agent un-ignored is never committed, and a landed
//! tree never writes over the lead's copy or into orch's state.

use std::path::{Component, Path, PathBuf};

use super::trusted::WORKTREE_INCLUDE;

/// Whether the repository path `path` is at or below one of orch's own paths `own`
/// ([`super::Guarded::own`]), or is a directory above one (`.orch` of `.orch/state`). The last
/// component of an entry may hold wildcards (`*`, `?`: a `copy` entry `config/*.local`).
pub(crate) fn own_path(own: &[String], path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return false;
    }
    // In any spelling a filesystem that folds case takes for it (`.ORCH` is `.orch` there).
    let path = super::fold(path);
    let p: Vec<&str> = path.split('/').collect();
    own.iter().any(|d| {
        let d = super::fold(d);
        let d: Vec<&str> = d.split('/').collect();
        d.iter().zip(&p).all(|(d, p)| {
            wildcard_match(d, p) || (!d.contains(['*', '?']) && super::names_component(d, p))
        })
    })
}

/// Matches `name` against `glob` where `*` is any run of characters and `?` any one.
pub(crate) fn wildcard_match(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// The entries of `.worktreeinclude` at `repo_root` as written (comments, blank lines and
/// negations left out; a leading or trailing `/` dropped), read bounded as untrusted (the file
/// is tracked); none when it is absent.
pub(crate) fn worktree_include(repo_root: &Path) -> std::io::Result<Vec<String>> {
    let include = repo_root.join(WORKTREE_INCLUDE);
    let text = match crate::untrusted::read::text(&include, crate::untrusted::read::MANIFEST)
        .map_err(std::io::Error::from)
    {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .map(str::trim)
        // Comments, blank lines; negations are not supported (gitignore syntax).
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        // A leading `/` anchors at the repository root, as in `.gitignore`.
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_string())
        .collect())
}

/// `p` as `/`-separated normal components, or `None` for a path that leaves the repository or
/// names its root (such a `copy` entry is refused when a worktree is made).
fn plain(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// orch's own paths (see [`super::Manifest::own_dirs`]) in the repository at `repo_root` of
/// `manifest`, or the defaults of its directories without one (orch used as a tracker).
pub(crate) fn own_dirs_of(manifest: Option<&super::Manifest>, repo_root: &Path) -> Vec<String> {
    match manifest {
        Some(m) => m.own_dirs(repo_root),
        None => {
            let d = super::model::Defaults::default();
            [d.worktree_root, d.state_dir, d.log_dir]
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        }
    }
}

/// The directory orch's directories lie in by default (`.orch/worktrees`, `.orch/state`,
/// `.orch/logs`), with its slash.
pub(crate) const OWN_TOP_SLASH: &str = ".orch/";

/// The file that makes `.orch/` ignore itself (`*`), written by orch
/// (`git::repo::ignore_own_dir`): one of orch's own paths when its directories lie there.
pub(crate) const OWN_IGNORE: &str = ".orch/.gitignore";

impl super::Manifest {
    /// orch's own paths in the repository at `repo_root`, `/`-separated, relative to its root:
    /// its directories (`worktree_root`, `state_dir`, `log_dir`; the manifest's own repository
    /// has them below the manifest's directory, another repository (`[[repo]]`) at the same
    /// relative places below its work dir), then what it copies into each worktree from the
    /// main checkout: every plan's `copy` and `warm` entries and those of the repository's
    /// `.worktreeinclude` (an unreadable one adds none; making a worktree reports it).
    pub(crate) fn own_dirs(&self, repo_root: &Path) -> Vec<String> {
        let mut out = self.orch_dirs(repo_root);
        for c in self.copied(repo_root) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// orch's directories alone (see [`Self::own_dirs`]).
    fn orch_dirs(&self, repo_root: &Path) -> Vec<String> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let root = abs(repo_root);
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: String| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        for d in [
            &self.defaults.worktree_root,
            &self.defaults.state_dir,
            &self.defaults.log_dir,
        ] {
            let here = abs(&self.root.join(d));
            let rel = match here.strip_prefix(&root) {
                Ok(r) => r.to_path_buf(),
                Err(_) if d.is_relative() => d.clone(),
                Err(_) => continue,
            };
            if let Some(s) = plain(&rel) {
                if s.starts_with(OWN_TOP_SLASH) {
                    push(OWN_IGNORE.to_string());
                }
                push(s);
            }
        }
        out
    }

    /// What no confined process of this manifest reads, whatever its `sandbox_deny_read`:
    /// every repository's `worktree_root` (the other plans' worktrees, the resolutions' and the
    /// landings' staging worktrees: a process's own worktree is in its write set, which Landlock
    /// lets it read). Absolute. Nothing inside a state directory: Landlock's "all but" is made
    /// of the entries its parents hold when the process starts, and a state directory gains a
    /// plan's status directory whenever a plan starts, which the agents' `orch task` and
    /// `orch next` read ([`Self::orch_dirs_to_make`] makes the parents first).
    pub(crate) fn hidden_from_agents(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let roots = std::iter::once(self.root.as_path())
            .chain(self.repos.iter().map(|r| r.abs_path.as_path()));
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        for root in roots {
            let p = abs(root.join(&self.defaults.worktree_root));
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// orch's directories of every repository (`worktree_root`, `state_dir`, `log_dir`): made
    /// before any agent is confined, so that the entries of the directories above a hidden
    /// worktree root are all there when its rules are made (one made later would not be
    /// readable to it).
    pub(crate) fn orch_dirs_to_make(&self) -> Vec<PathBuf> {
        let roots = std::iter::once(self.root.as_path())
            .chain(self.repos.iter().map(|r| r.abs_path.as_path()));
        let mut out = Vec::new();
        for root in roots {
            for d in [
                &self.defaults.worktree_root,
                &self.defaults.state_dir,
                &self.defaults.log_dir,
            ] {
                let p = root.join(d);
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// What orch copies into each worktree from the main checkout (see [`Self::own_dirs`]):
    /// never the work, so never staged; a worktree may show them changed (a tracked file the
    /// lead changed locally, one the branch's `.gitignore` does not ignore) without that being
    /// an error, but no commit and no landing carries them.
    pub(crate) fn copied(&self, repo_root: &Path) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: String| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        let copies = self
            .defaults
            .copy
            .iter()
            .chain(self.plans.iter().flat_map(|p| &p.copy))
            .chain(self.defaults.warm.iter().map(|w| &w.path))
            .chain(self.plans.iter().flat_map(|p| &p.warm).map(|w| &w.path));
        for c in copies {
            if let Some(s) = plain(c) {
                push(s);
            }
        }
        for line in worktree_include(repo_root).unwrap_or_default() {
            if let Some(s) = plain(Path::new(&line)) {
                push(s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn an_own_path_is_at_below_or_above_an_entry() {
        let o = own(&[".orch/state", ".env", "config/*.local", "target"]);
        for (p, yes) in [
            (".orch/state", true),
            (".orch/state/x", true),
            (".orch", true),
            (".orch/", true),
            (".orchestra", false),
            (".orch/worktrees", false),
            (".env", true),
            (".env/x", true),
            (".env.example", false),
            ("a/.env", false),
            ("config", true),
            ("config/db.local", true),
            ("config/db.local/inner", true),
            ("config/db.toml", false),
            ("target", true),
            ("target/debug/x", true),
            ("targets", false),
            ("", false),
        ] {
            assert_eq!(own_path(&o, p), yes, "{p}");
        }
    }
}

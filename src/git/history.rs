//! A small repository made and shown by `orch demo`: made with its first commits (`init`,
//! [`commit_files`]), and its branches' commits and files read back ([`History`]).

use std::path::Path;

use git2::{BranchType, Commit, Oid, Repository, RepositoryInitOptions, Signature, Sort};

/// `git init` in `dir` on branch `head`, with `user.name` and `user.email` set in its config.
/// The error is one line: what failed and libgit2's message.
pub(crate) fn init_repo(dir: &Path, head: &str, name: &str, email: &str) -> Result<(), String> {
    let git = |what: &str, e: git2::Error| format!("{what}: {}", e.message());
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head(head);
    let create = format!("cannot create a repository in `{}`", dir.display());
    let repo = Repository::init_opts(dir, &opts).map_err(|e| git(&create, e))?;
    let mut config = repo
        .config()
        .map_err(|e| git("cannot open git config", e))?;
    config
        .set_str("user.name", name)
        .and_then(|()| config.set_str("user.email", email))
        .map_err(|e| git("cannot write git config", e))
}

/// Commits `files` (paths relative to `dir`) on top of HEAD (or as the first commit), by
/// `name <email>`. The error is one line (`cannot commit: ...`).
pub(crate) fn commit_files(
    dir: &Path,
    files: &[&str],
    message: &str,
    name: &str,
    email: &str,
) -> Result<(), String> {
    let commit = || -> Result<Oid, git2::Error> {
        let repo = Repository::open(dir)?;
        let mut index = repo.index()?;
        for f in files {
            index.add_path(Path::new(f))?;
        }
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let sig = Signature::now(name, email)?;
        let parent = match repo.head() {
            Ok(head) => Some(head.peel_to_commit()?),
            Err(_) => None,
        };
        let parents: Vec<&Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
    };
    commit()
        .map(|_| ())
        .map_err(|e| format!("cannot commit: {}", e.message()))
}

/// A repository's history, read for display.
pub(crate) struct History {
    repo: Repository,
}

impl History {
    /// The repository at `dir`; the error is one line.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        Repository::open(dir)
            .map(|repo| Self { repo })
            .map_err(|e| format!("cannot open `{}`: {}", dir.display(), e.message()))
    }

    /// The commit a local branch points at.
    pub(crate) fn branch_tip(&self, branch: &str) -> Option<Oid> {
        self.repo
            .find_branch(branch, BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
    }

    /// `git log --oneline <hide>..<tip>`, newest first (`<short id> <summary>`).
    pub(crate) fn ahead(&self, tip: Oid, hide: Option<Oid>) -> Result<Vec<String>, String> {
        let walk = || -> Result<Vec<String>, git2::Error> {
            let mut walk = self.repo.revwalk()?;
            walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
            walk.push(tip)?;
            if let Some(h) = hide {
                walk.hide(h)?;
            }
            let mut out = Vec::new();
            for oid in walk {
                out.push(oneline(&self.repo.find_commit(oid?)?));
            }
            Ok(out)
        };
        walk().map_err(|e| e.message().to_string())
    }

    /// The first-parent line from `branch`'s tip, at most `n` commits (`<short id> <summary>`).
    pub(crate) fn first_parent_line(&self, branch: &str, n: usize) -> Vec<String> {
        let Some(tip) = self.branch_tip(branch) else {
            return Vec::new();
        };
        let Ok(mut walk) = self.repo.revwalk() else {
            return Vec::new();
        };
        if walk.push(tip).is_err() || walk.simplify_first_parent().is_err() {
            return Vec::new();
        }
        walk.take(n)
            .flatten()
            .filter_map(|oid| self.repo.find_commit(oid).ok())
            .map(|c| oneline(&c))
            .collect()
    }

    /// The text (lossy UTF-8) of the file `rel` in the tree of the commit `tip`.
    pub(crate) fn file_at(&self, tip: Oid, rel: &str) -> Option<String> {
        let tree = self.repo.find_commit(tip).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(rel)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }
}

/// `<7-digit id> <summary>`.
fn oneline(c: &Commit<'_>) -> String {
    let id = c.id().to_string();
    format!(
        "{} {}",
        &id[..7.min(id.len())],
        c.summary().ok().flatten().unwrap_or("")
    )
}

/// The branch HEAD names (also an unborn one) in the repository containing `start`, if any.
pub(crate) fn current_branch_at(start: &Path) -> Option<String> {
    let repo = Repository::discover(start).ok()?;
    let head = repo.find_reference("HEAD").ok()?;
    let target = head.symbolic_target().ok()??;
    Some(target.strip_prefix("refs/heads/")?.to_string())
}

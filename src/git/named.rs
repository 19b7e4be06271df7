//! The files a command line names: the words of an argv that are files of a tree (the check's,
//! `verify`'s, `setup`'s, a `[[notify]]` command's program, script and data), as repository
//! paths; and what a later run trusts ([`crate::manifest::Guarded`]) resolved in a tree, then
//! compared with what a plan branch holds. What the protected-paths rules guard.

use std::path::{Path, PathBuf};

use super::repo::branch_commit;
use crate::manifest::{
    Guarded, Kind, View, ancestors, anywhere_patterns, at_or_below, fold, is_pattern,
    names_component, pattern_at_or_above, pattern_covers, same_name, stored_path,
    strip_prefix_folded,
};

/// The path inside the repository that the word `word` of a command line names (relative to
/// `cwd`, or absolute inside `cwd` or `repo_root`), as git spells it (normalised lexically:
/// `hooks//x.sh` and `docs/../hooks/x.sh` are `hooks/x.sh`); `None` for an option or a path
/// that leaves the repository.
fn repo_path(word: &str, cwd: &Path, repo_root: &Path) -> Option<PathBuf> {
    crate::manifest::repo_path_of(word, &[cwd, repo_root]).map(PathBuf::from)
}

/// Whether `tree` has a file (not a directory) at `rel`.
fn file_in(tree: &git2::Tree<'_>, rel: &Path) -> bool {
    tree.get_path(rel)
        .is_ok_and(|e| e.kind() != Some(git2::ObjectType::Tree))
}

/// Of `paths` (repository paths), those whose entry differs between `from` and `to`: added,
/// removed, or another blob or mode.
pub(crate) fn changed_between(
    from: &git2::Tree<'_>,
    to: &git2::Tree<'_>,
    paths: &[String],
) -> Vec<String> {
    paths
        .iter()
        .filter(|p| entry(from, p) != entry(to, p))
        .cloned()
        .collect()
}

/// The object and mode at `p` in `t`, if any.
fn entry(t: &git2::Tree<'_>, p: &str) -> Option<(git2::Oid, i32)> {
    t.get_path(Path::new(p))
        .ok()
        .map(|e| (e.id(), e.filemode()))
}

/// git's mode of a symbolic link.
const LINK_MODE: i32 = 0o120_000;

/// What a later run trusts, resolved in a tree: the paths it protects whatever `protect` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Protected {
    /// [`Guarded::files`], and the program and script of each command line that is a file of
    /// the tree where the work started or of the work itself (a script a task makes is one).
    pub(crate) trusted: Vec<String>,
    /// Of `trusted`, those protected only because orch does not know the grammar of the program
    /// a command line hands them to ([`Guarded::unknown_grammar_paths`]): perhaps data, which
    /// a plan's `allow_protected` lets its tasks change.
    pub(crate) unknown_grammar: Vec<String>,
}

impl Protected {
    /// `guarded` resolved with `base` (the tree where the work started, of `repo`) and `work`
    /// (what the work holds), words relative to `cwd` or `repo_root`: the files its command
    /// lines name, the code they load without naming it ([`Guarded::loaded`], read in `base`
    /// first, then in the work) and the files protected at any depth (patterns `**/…`).
    fn resolve(
        guarded: &Guarded,
        (repo, base): (&git2::Repository, &git2::Tree<'_>),
        work: &dyn View,
        (cwd, repo_root): (&Path, &Path),
    ) -> Self {
        let in_either = |w: &str| {
            repo_path(w, cwd, repo_root)
                .filter(|rel| {
                    file_in(base, rel)
                        || rel
                            .to_str()
                            .is_some_and(|r| work.kind(r).is_some_and(|k| k != Kind::Dir))
                })
                .map(|rel| rel.to_string_lossy().into_owned())
        };
        let base_view = TreeView { repo, tree: base };
        let both = Union(&base_view, work);
        let mut trusted = guarded.paths(&in_either);
        for l in guarded.loaded(&in_either, &both) {
            if !trusted.contains(&l.path) {
                trusted.push(l.path);
            }
        }
        for p in anywhere_patterns() {
            if !trusted.contains(&p) {
                trusted.push(p);
            }
        }
        Self {
            trusted,
            unknown_grammar: guarded.unknown_grammar_paths(&in_either),
        }
    }

    /// Whether `path` is one of `paths` or inside one of them (a protected directory), in any
    /// spelling a checkout may give it: case folded ([`crate::manifest::fold`]), a Windows
    /// short name, trailing dots, an NTFS stream, HFS+'s ignored code points
    /// ([`names_component`]). A pattern `**/NAME` among `paths` covers `NAME` at any depth
    /// ([`pattern_covers`]).
    pub(crate) fn covers(paths: &[String], path: &str) -> bool {
        paths.iter().any(|p| {
            same_name(path, p)
                || strip_prefix_folded(path, p).is_some_and(|r| r.starts_with('/'))
                || (!is_pattern(p) && at_or_below(p, path))
                || pattern_covers(p, path)
        })
    }

    /// Whether `path` is a directory above one of `paths` (in any spelling), or where a pattern
    /// among them matches or above ([`pattern_at_or_above`]): a link there makes the
    /// protected file another one.
    pub(crate) fn above(paths: &[String], path: &str) -> bool {
        paths.iter().any(|p| {
            if is_pattern(p) {
                pattern_at_or_above(p, path)
            } else {
                strip_prefix_folded(p, path).is_some_and(|r| r.starts_with('/'))
                    || strictly_above(path, p)
            }
        })
    }
}

/// [`Protected::covers`] and [`Protected::above`] of one list of protected paths, for the many
/// paths a branch changes: each path first asked whether one of its components may name a
/// component of the list at all (the same folded, folded as a checkout stores it, a Windows
/// short name, an ending of a `*.ext` pattern: one hash lookup per component), compared in
/// full only then. A tree of 300,000 files is read in a linear pass, not 300,000 times the
/// list's hundred-odd comparisons that allocate.
#[derive(Clone, Debug)]
pub(crate) struct Cover {
    paths: Vec<String>,
    /// Every component of `paths`, folded ([`crate::manifest::fold`]), and folded as stored
    /// ([`crate::manifest::stored_path`]).
    names: std::collections::HashSet<String>,
    /// The folded endings of the `*.ext` components of patterns.
    endings: Vec<String>,
}

impl Cover {
    pub(crate) fn new(paths: &[String]) -> Self {
        let mut names = std::collections::HashSet::new();
        let mut endings = Vec::new();
        for p in paths {
            for c in p.split('/') {
                names.insert(fold(c).into_owned());
                names.insert(fold(&stored_path(c)).into_owned());
                if let Some(ext) = c.strip_prefix('*') {
                    let ext = fold(ext).into_owned();
                    if !endings.contains(&ext) {
                        endings.push(ext);
                    }
                }
            }
        }
        Self {
            paths: paths.to_vec(),
            names,
            endings,
        }
    }

    /// Whether some component of `path` may name a component of one of the paths: false only
    /// when neither [`Protected::covers`] nor [`Protected::above`] can hold.
    fn may_name(&self, path: &str) -> bool {
        path.split('/').any(|c| {
            let stored = fold(&stored_path(c)).into_owned();
            stored.contains('~')
                || self.names.contains(fold(c).as_ref())
                || self.names.contains(&stored)
                || self
                    .endings
                    .iter()
                    .any(|e| stored.len() > e.len() && stored.ends_with(e.as_str()))
        })
    }

    /// [`Protected::covers`] of the paths.
    pub(crate) fn covers(&self, path: &str) -> bool {
        self.may_name(path) && Protected::covers(&self.paths, path)
    }

    /// [`Protected::above`] of the paths.
    pub(crate) fn above(&self, path: &str) -> bool {
        self.may_name(path) && Protected::above(&self.paths, path)
    }
}

/// Whether the directory `dir` lies strictly above `path`, component by component in any
/// spelling a checkout may give them ([`names_component`]).
fn strictly_above(dir: &str, path: &str) -> bool {
    let (d, p): (Vec<&str>, Vec<&str>) = (dir.split('/').collect(), path.split('/').collect());
    d.len() < p.len() && p.iter().zip(&d).all(|(p, d)| names_component(p, d))
}

/// [`Protected`] for the work in the worktree `worktree`, which started at the commit `base`
/// (hex; a plan's base: a file an earlier task of the plan made is the plan's work, not the
/// command's reference), or at `worktree`'s HEAD when `base` cannot be read.
pub(crate) fn protected_at(
    guarded: &Guarded,
    worktree: &Path,
    base: &str,
    repo_root: &Path,
) -> Result<Protected, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    Ok(Protected::resolve(
        guarded,
        (&repo, &tree),
        &DiskView(worktree),
        (worktree, repo_root),
    ))
}

/// [`Protected`] of a resolution: in the tree `tree` (the plan branch's side, which is what the
/// resolver starts from and changes).
pub(crate) fn protected_in(
    guarded: &Guarded,
    (repo, tree): (&git2::Repository, &git2::Tree<'_>),
    repo_root: &Path,
) -> Protected {
    Protected::resolve(guarded, (repo, tree), &Nothing, (repo_root, repo_root))
}

/// The links the worktree `worktree` holds at a protected path or above one (a directory of
/// it: `.claude` where `.claude/settings.json` goes) that the tree where the work started,
/// the commit `base` (or HEAD), did not hold as they are: a link there makes the protected file
/// another one. Each as its repository path.
pub(crate) fn new_links_at(
    dirt: &super::status::Dirt<'_>,
    base: &str,
    paths: &[String],
) -> Result<Vec<String>, String> {
    let worktree = dirt.dir();
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        // From the root down: below a link, the path is the link's.
        for a in ancestors(p).chain(std::iter::once(p.as_str())) {
            let Ok(meta) = std::fs::symlink_metadata(worktree.join(a)) else {
                break;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(worktree.join(a)).ok();
                let same = entry(&tree, a)
                    .filter(|(_, mode)| *mode == LINK_MODE)
                    .is_some_and(|(id, _)| {
                        let blob = repo.find_blob(id).ok();
                        let was = blob.as_ref().map(git2::Blob::content);
                        let now = target.as_ref().map(|t| t.as_os_str().as_encoded_bytes());
                        was.is_some() && was == now
                    });
                if !same && !out.iter().any(|o| o == a) {
                    out.push(a.to_string());
                }
                break;
            }
            if !meta.is_dir() {
                break;
            }
        }
    }
    // The patterns (`**/.claude/settings.json`): every link the work holds where one matches,
    // or at a directory above such a place (`docs/.claude`); and the paths in any other
    // spelling (`.Claude` where `.claude/settings.json` goes is `.claude` where names fold):
    // found in git's status (its paths compared without case), then each compared folded.
    let mut specs: Vec<String> = Vec::new();
    for p in paths {
        let parts: Vec<&str> = p.split('/').collect();
        let first = if is_pattern(p) { 2 } else { 1 };
        for n in first..=parts.len() {
            let spec = parts[..n].join("/");
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    if !specs.is_empty() {
        let dirty = dirt.among(&specs).map_err(|e| e.to_string())?;
        for d in dirty {
            let d = d.trim_end_matches('/').to_string();
            let is_link = std::fs::symlink_metadata(worktree.join(&d))
                .is_ok_and(|m| m.file_type().is_symlink());
            if is_link
                && (Protected::above(paths, &d) || Protected::covers(paths, &d))
                && !out.contains(&d)
            {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// The files (not directories, not links: [`new_links_at`]) the worktree `worktree` holds at a
/// directory above a protected path (`orch` where `orch/templates/task.md` goes) where the tree
/// of the commit `base` (or HEAD) held none: such a file leaves the protected path unreadable to
/// every later run (`cannot read template …: Not a directory`). Each as its repository path.
pub(crate) fn new_files_above(
    worktree: &Path,
    base: &str,
    paths: &[String],
) -> Result<Vec<String>, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    let mut out: Vec<String> = Vec::new();
    for p in paths.iter().filter(|p| !is_pattern(p)) {
        for a in ancestors(p) {
            let Ok(meta) = std::fs::symlink_metadata(worktree.join(a)) else {
                break;
            };
            if meta.is_dir() {
                continue;
            }
            if !meta.file_type().is_symlink()
                && !file_in(&tree, Path::new(a))
                && !out.iter().any(|o| o == a)
            {
                out.push(a.to_string());
            }
            break;
        }
    }
    Ok(out)
}

/// What plan branch `branch` changes of what a later run trusts since it left `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedChanges {
    /// The protected paths whose entry differs between where the branch left `target` and its
    /// tip (added, removed, changed, another mode).
    pub(crate) changed: Vec<String>,
    /// The links the tip holds at a protected path or at a directory above one, where the fork
    /// did not hold that link: never landed, whatever is allowed.
    pub(crate) links: Vec<String>,
    /// What the branch changes at or below orch's own directories, or at a directory above one
    /// ([`Guarded::own`]): never landed, whatever a task names or a person allows.
    pub(crate) own: Vec<String>,
}

/// [`TrustedChanges`] of `branch` (none when it does not exist): `guarded` resolved where the
/// branch left `target` (their merge base) and at its tip (a script the branch adds for a
/// command line is one).
pub(crate) fn changed_since_fork(
    repo_root: &Path,
    target: &str,
    branch: &str,
    guarded: &Guarded,
) -> Result<TrustedChanges, String> {
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let target_tip = branch_commit(&repo, target)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("target branch `{target}` does not exist"))?;
    let Some(tip) = branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(TrustedChanges::default());
    };
    let (base, tip) = super::bases::merge_base(&repo, target_tip.id(), tip.id())
        .and_then(|base| repo.find_commit(base))
        .and_then(|base| Ok((base.tree()?, tip.tree()?)))
        .map_err(|e| format!("cannot read where `{branch}` left `{target}`: {e}"))?;
    let tip_view = TreeView {
        repo: &repo,
        tree: &tip,
    };
    let paths =
        Protected::resolve(guarded, (&repo, &base), &tip_view, (repo_root, repo_root)).trusted;
    let mut links: Vec<String> = Vec::new();
    for p in &paths {
        for a in ancestors(p).chain(std::iter::once(p.as_str())) {
            let now = entry(&tip, a);
            // A link there, or a file at a directory above the path (`orch` where
            // `orch/templates/task.md` goes), that the fork did not hold.
            let file_above = a != p.as_str() && now.is_some_and(|(_, mode)| mode != 0o040_000);
            if (now.is_some_and(|(_, mode)| mode == LINK_MODE) || file_above)
                && now != entry(&base, a)
                && !links.iter().any(|l| l == a)
            {
                links.push(a.to_string());
            }
            if now.is_none_or(|(_, mode)| mode != 0o040_000) {
                break;
            }
        }
    }
    let own =
        super::own::own_changes_between(&repo, Some(&base), &tip, &guarded.own).map_err(|e| {
            format!("cannot read what `{branch}` changes of orch's own directories: {e}")
        })?;
    // Each file the branch changes that a protected path covers (a directory of code a command
    // loads, a pattern at any depth), named as itself; a link where a pattern matches or above.
    let mut changed = changed_between(&base, &tip, &paths)
        .into_iter()
        .filter(|p| !is_dir_in(&base, p) && !is_dir_in(&tip, p))
        .collect::<Vec<_>>();
    // Each delta once, against the list compiled once: linear in what the branch changes.
    let cover = Cover::new(&paths);
    let mut named: std::collections::HashSet<String> = changed.iter().cloned().collect();
    let mut linked: std::collections::HashSet<String> = links.iter().cloned().collect();
    let diff = repo
        .diff_tree_to_tree(Some(&base), Some(&tip), None)
        .map_err(|e| format!("cannot read what `{branch}` changes: {e}"))?;
    for d in diff.deltas() {
        for (file, new) in [(d.old_file(), false), (d.new_file(), true)] {
            let Some(path) = file.path().and_then(Path::to_str) else {
                continue;
            };
            if !named.contains(path) && cover.covers(path) {
                named.insert(path.to_string());
                changed.push(path.to_string());
            }
            // A new link at a protected path or above one, in any spelling (`.Claude` where
            // `.claude/settings.json` goes is `.claude` where names fold).
            let link = new && file.mode() == git2::FileMode::Link;
            if link && !linked.contains(path) && (cover.above(path) || cover.covers(path)) {
                linked.insert(path.to_string());
                links.push(path.to_string());
            }
        }
    }
    // A `.gitignore` above orch's own paths or the files it copies, changed otherwise than to
    // ignore more: it could un-ignore them for a person's `git add -A` (super::ignores).
    let over: Vec<String> = guarded.own.iter().chain(&guarded.copied).cloned().collect();
    let ignores = super::ignores::ignore_files_over(&over);
    for f in super::ignores::unignoring_changes(&repo, &base, &tip, &ignores)
        .map_err(|e| format!("cannot read what `{branch}` changes of `.gitignore`: {e}"))?
    {
        if named.insert(f.clone()) {
            changed.push(f);
        }
    }
    Ok(TrustedChanges {
        changed,
        links,
        own,
    })
}

/// Whether `tree` holds a directory at `p`.
fn is_dir_in(tree: &git2::Tree<'_>, p: &str) -> bool {
    tree.get_path(Path::new(p))
        .is_ok_and(|e| e.kind() == Some(git2::ObjectType::Tree))
}

/// A tree of `repo` read as a [`View`].
struct TreeView<'a> {
    repo: &'a git2::Repository,
    tree: &'a git2::Tree<'a>,
}

impl TreeView<'_> {
    fn entry(&self, rel: &str) -> Option<git2::TreeEntry<'static>> {
        self.tree.get_path(Path::new(rel)).ok()
    }
}

impl View for TreeView<'_> {
    fn kind(&self, rel: &str) -> Option<Kind> {
        let e = self.entry(rel)?;
        Some(match (e.kind(), e.filemode()) {
            (Some(git2::ObjectType::Tree), _) => Kind::Dir,
            (_, LINK_MODE) => Kind::Link,
            _ => Kind::File,
        })
    }

    fn names(&self, dir: &str) -> Vec<String> {
        let sub;
        let tree = if dir.is_empty() {
            self.tree
        } else {
            let Some(t) = self
                .entry(dir)
                .and_then(|e| e.to_object(self.repo).ok())
                .and_then(|o| o.into_tree().ok())
            else {
                return Vec::new();
            };
            sub = t;
            &sub
        };
        tree.iter()
            .take(crate::manifest::MAX_NAMES)
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect()
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        if self.kind(rel) != Some(Kind::File) {
            return None;
        }
        let blob = self.repo.find_blob(self.entry(rel)?.id()).ok()?;
        (blob.size() as u64 <= crate::manifest::MAX_READ).then(|| blob.content().to_vec())
    }
}

/// A worktree on disk read as a [`View`]: never through a link, bounded.
struct DiskView<'a>(&'a Path);

impl View for DiskView<'_> {
    fn kind(&self, rel: &str) -> Option<Kind> {
        // A link on the way makes the path another one: nothing orch reads.
        for a in ancestors(rel) {
            let m = std::fs::symlink_metadata(self.0.join(a)).ok()?;
            if !m.is_dir() {
                return None;
            }
        }
        let m = std::fs::symlink_metadata(self.0.join(rel)).ok()?;
        Some(if m.file_type().is_symlink() {
            Kind::Link
        } else if m.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        })
    }

    fn names(&self, dir: &str) -> Vec<String> {
        if !dir.is_empty() && self.kind(dir) != Some(Kind::Dir) {
            return Vec::new();
        }
        std::fs::read_dir(self.0.join(dir))
            .map(|entries| {
                entries
                    .flatten()
                    .take(crate::manifest::MAX_NAMES)
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n != ".git")
                    .collect()
            })
            .unwrap_or_default()
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        if self.kind(rel) != Some(Kind::File) {
            return None;
        }
        let limit = crate::untrusted::read::Limit {
            bytes: crate::manifest::MAX_READ,
            what: "script or makefile",
        };
        crate::untrusted::read::optional_beneath(self.0, Path::new(rel), limit)
            .ok()
            .flatten()
    }
}

/// Two views as one: what either holds, read in the first (the trusted tree) first.
struct Union<'a>(&'a dyn View, &'a dyn View);

impl View for Union<'_> {
    fn kind(&self, rel: &str) -> Option<Kind> {
        self.0.kind(rel).or_else(|| self.1.kind(rel))
    }

    fn names(&self, dir: &str) -> Vec<String> {
        let mut out = self.0.names(dir);
        for n in self.1.names(dir) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        self.0.read(rel).or_else(|| self.1.read(rel))
    }
}

/// A view of nothing (a resolution's tree is read alone).
struct Nothing;

impl View for Nothing {
    fn kind(&self, _: &str) -> Option<Kind> {
        None
    }

    fn names(&self, _: &str) -> Vec<String> {
        Vec::new()
    }

    fn read(&self, _: &str) -> Option<Vec<u8>> {
        None
    }
}

/// The main checkout at `root` read as a [`View`] (for `orch check`).
pub(crate) fn disk_view(root: &Path) -> impl View + '_ {
    DiskView(root)
}

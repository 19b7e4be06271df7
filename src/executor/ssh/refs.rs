//! The refs of the lead's repository that hold remote attempts' snapshots while they come back
//! (`refs/orch/remote/<plan>/<unit>/<attempt>`, [`super::records::local_ref`]), pruned once the
//! attempt's work is safe here: when the supervisor has settled the attempt ([`settled`]), and
//! at the next start for those an earlier run left ([`leftovers`]). A snapshot is safe when
//! every path it changed on its base is as it left it on the plan branch, or in a ref of the
//! task under `refs/orch/attempts/` (where orch saves a failed attempt's work); one that is not
//! is saved there (`…/remote-<attempt>`) before its ref goes, so pruning never loses work.
//! Everything is decided from orch's own refs and the commits git checked on the way in.

use std::path::Path;

use crate::git::GitTarget;

/// Where the remote attempts' snapshots are fetched.
const PREFIX: &str = "refs/orch/remote/";

/// The most refs looked at in one call (a repository's own refs, made by orch).
const MAX_REFS: usize = 10_000;

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    super::lead::git_bytes(GitTarget::WorkTree(root), args)
}

pub(super) fn text(root: &Path, args: &[&str]) -> Result<String, String> {
    git(root, args).map(|o| String::from_utf8_lossy(&o).trim().to_string())
}

/// The paths that differ between `a` and `b` (`-z`, no renames).
fn changed(root: &Path, a: &str, b: &str) -> Result<Vec<Vec<u8>>, String> {
    let out = git(
        root,
        &[
            "diff",
            "--no-renames",
            "--no-ext-diff",
            "--name-only",
            "-z",
            a,
            b,
            "--",
        ],
    )?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Whether every path `snap` changed on its parent is as `snap` has it in `at`.
fn kept_in(root: &Path, snap: &str, work: &[Vec<u8>], at: &str) -> bool {
    match changed(root, snap, at) {
        Ok(differ) => !work.iter().any(|p| differ.contains(p)),
        Err(_) => false,
    }
}

/// Prunes the snapshot ref `name` (at `snap`) of plan `plan` (branch `branch`), task or plan
/// agent `unit`, attempt `attempt`: deleted when its work is safe here, else saved under
/// `refs/orch/attempts/<plan>/<unit>/remote-<attempt>` first. `Some(saved ref)` when it was
/// saved; `Err` leaves the ref as it is.
fn prune_one(
    root: &Path,
    (plan, branch): (&str, &str),
    (unit, attempt): (&str, &str),
    (name, snap): (&str, &str),
) -> Result<Option<String>, String> {
    let parent = text(root, &["rev-parse", "--verify", &format!("{snap}^1")])?;
    let work = changed(root, &parent, snap)?;
    let saved_prefix = format!("refs/orch/attempts/{plan}/{unit}/");
    let mut safe = work.is_empty();
    if !safe && let Ok(Some(tip)) = crate::git::branch_tip(root, branch) {
        safe = kept_in(root, snap, &work, &tip);
    }
    if !safe {
        let saved = text(
            root,
            &["for-each-ref", "--format=%(objectname)", &saved_prefix],
        )?;
        safe = saved
            .lines()
            .take(MAX_REFS)
            .any(|id| kept_in(root, snap, &work, id));
    }
    let mut kept = None;
    if !safe {
        let to = format!("{saved_prefix}remote-{attempt}");
        text(root, &["update-ref", &to, snap])?;
        kept = Some(to);
    }
    text(root, &["update-ref", "-d", name, snap])?;
    Ok(kept)
}

/// The attempt `attempt` of `unit` of plan `plan` (branch `branch`) is settled: its snapshot
/// ref pruned. A note when its work had to be saved, or the ref could not be pruned.
pub(crate) fn settled(
    root: &Path,
    (plan, branch): (&str, &str),
    unit: &str,
    attempt: u32,
) -> Option<String> {
    let name = super::records::local_ref(plan, unit, attempt);
    let snap = text(
        root,
        &["rev-parse", "--verify", "-q", &format!("{name}^{{commit}}")],
    )
    .ok()?;
    if snap.is_empty() {
        return None;
    }
    match prune_one(
        root,
        (plan, branch),
        (unit, &attempt.to_string()),
        (&name, &snap),
    ) {
        Ok(None) => None,
        Ok(Some(saved)) => Some(format!(
            "the host's snapshot of task `{unit}` attempt {attempt} is saved as `{saved}` (its work is not on the plan branch)"
        )),
        Err(e) => Some(format!("cannot prune `{name}`: {e}")),
    }
}

/// At start: prunes the snapshot refs of plan `plan` (branch `branch`) an earlier run left,
/// but those of `running` (`(unit, attempt)` of attempts adopted, still coming back). Notes.
pub(crate) fn leftovers(
    root: &Path,
    (plan, branch): (&str, &str),
    running: &[(String, u32)],
) -> Vec<String> {
    let prefix = format!("{PREFIX}{plan}/");
    let Ok(listed) = text(
        root,
        &["for-each-ref", "--format=%(objectname) %(refname)", &prefix],
    ) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for line in listed.lines().take(MAX_REFS) {
        let Some((snap, name)) = line.split_once(' ') else {
            continue;
        };
        // `<unit>/<attempt>`; a plan whose name has a `/` has its units one level deeper.
        let Some((unit, attempt)) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.rsplit_once('/'))
        else {
            continue;
        };
        if unit.contains('/') || attempt.parse::<u32>().is_err() {
            continue;
        }
        if running
            .iter()
            .any(|(u, a)| u == unit && a.to_string() == attempt)
        {
            continue;
        }
        match prune_one(root, (plan, branch), (unit, attempt), (name, snap)) {
            Ok(None) => {}
            Ok(Some(saved)) => notes.push(format!(
                "plan `{plan}`: the snapshot an earlier run brought back from a host for task `{unit}` attempt {attempt} was not on the plan branch: saved as `{saved}`"
            )),
            Err(e) => notes.push(format!("plan `{plan}`: cannot prune `{name}`: {e}")),
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(root: &Path, args: &[&str]) -> String {
        let o = std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// A commit on `base` with `file` = `content`, not on any branch.
    fn snapshot(root: &Path, base: &str, file: &str, content: &str) -> String {
        let blob = {
            std::fs::write(root.join(".blob"), content).expect("blob");
            run(root, &["hash-object", "-w", ".blob"])
        };
        std::fs::remove_file(root.join(".blob")).expect("rm");
        let idx = root.join(".git/snap.index");
        let o = std::process::Command::new("sh")
            .current_dir(root)
            .arg("-c")
            .arg(format!(
                "GIT_INDEX_FILE={i} git read-tree {base} && GIT_INDEX_FILE={i} git update-index --add --cacheinfo 100644,{blob},{file} && GIT_INDEX_FILE={i} git write-tree",
                i = idx.display()
            ))
            .output()
            .expect("sh");
        let tree = String::from_utf8_lossy(&o.stdout).trim().to_string();
        run(root, &["commit-tree", &tree, "-p", base, "-m", "snap"])
    }

    #[test]
    fn a_snapshot_ref_goes_once_its_work_is_safe_and_is_saved_first_when_it_is_not() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        run(root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "a\n").expect("a");
        run(root, &["add", "a.txt"]);
        run(root, &["commit", "-qm", "base"]);
        let base = run(root, &["rev-parse", "HEAD"]);
        run(root, &["branch", "plan/p"]);
        // 1.1: its work landed on the plan branch (a commit of orch's with the same content).
        let s1 = snapshot(root, &base, "one.txt", "1\n");
        run(
            root,
            &[
                "update-ref",
                &super::super::records::local_ref("p", "1.1", 1),
                &s1,
            ],
        );
        std::fs::write(root.join("one.txt"), "1\n").expect("one");
        run(root, &["checkout", "-q", "plan/p"]);
        run(root, &["add", "one.txt"]);
        run(root, &["commit", "-qm", "p 1.1"]);
        // 1.2: its work saved under refs/orch/attempts/.
        let s2 = snapshot(root, &base, "two.txt", "2\n");
        run(
            root,
            &[
                "update-ref",
                &super::super::records::local_ref("p", "1.2", 1),
                &s2,
            ],
        );
        run(root, &["update-ref", "refs/orch/attempts/p/1.2/1", &s2]);
        // 1.3: its work nowhere else; 1.4: no work at all; 1.5: still coming back.
        let s3 = snapshot(root, &base, "three.txt", "3\n");
        run(
            root,
            &[
                "update-ref",
                &super::super::records::local_ref("p", "1.3", 2),
                &s3,
            ],
        );
        let empty = run(
            root,
            &[
                "commit-tree",
                &format!("{base}^{{tree}}"),
                "-p",
                &base,
                "-m",
                "e",
            ],
        );
        run(
            root,
            &[
                "update-ref",
                &super::super::records::local_ref("p", "1.4", 1),
                &empty,
            ],
        );
        run(
            root,
            &[
                "update-ref",
                &super::super::records::local_ref("p", "1.5", 1),
                &s3,
            ],
        );
        assert_eq!(settled(root, ("p", "plan/p"), "1.1", 1), None);
        let notes = leftovers(root, ("p", "plan/p"), &[("1.5".to_string(), 1)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("refs/orch/attempts/p/1.3/remote-2"),
            "{notes:?}"
        );
        let left = run(
            root,
            &["for-each-ref", "--format=%(refname)", "refs/orch/remote/"],
        );
        assert_eq!(left, "refs/orch/remote/p/1.5/1");
        assert_eq!(
            run(root, &["rev-parse", "refs/orch/attempts/p/1.3/remote-2"]),
            s3
        );
        // Nothing else was saved.
        let saved = run(
            root,
            &["for-each-ref", "--format=%(refname)", "refs/orch/attempts/"],
        );
        assert_eq!(saved.lines().count(), 2, "{saved}");
    }
}

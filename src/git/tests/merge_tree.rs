//! libgit2's merge against `git merge-tree --write-tree` on real histories made with the git
//! CLI: where they agree, and the two cases where they differ (why orch's merges are git's).

use std::process::Command;

use super::*;
use crate::git::{Keep, TreeMerge, merge_commits};

/// A repository made by `script` (sh, run in it after `git init -b main`), with branches `ours`
/// and `theirs` to merge.
fn history(script: &str) -> TempDir {
    let tmp = TempDir::new().unwrap();
    let prelude = "git init -q -b main . && c() { git add -A && git commit -qm \"$1\"; } && \
                   lines() { seq 1 40 | sed 's/^/line /'; }\n";
    let out = Command::new("sh")
        .arg("-ec")
        .arg(format!("{prelude}{script}"))
        .current_dir(tmp.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", tmp.path())
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmp
}

fn sides(repo: &Repository) -> (git2::Commit<'_>, git2::Commit<'_>) {
    let tip = |b: &str| {
        repo.find_reference(&format!("refs/heads/{b}"))
            .unwrap()
            .peel_to_commit()
            .unwrap()
    };
    (tip("ours"), tip("theirs"))
}

/// libgit2 alone: the conflicting paths, or the result tree.
fn libgit2(repo: &Repository) -> Result<Oid, Vec<String>> {
    let (ours, theirs) = sides(repo);
    let mut index = repo.merge_commits(&ours, &theirs, None).unwrap();
    if index.has_conflicts() {
        Err(crate::git::task_tree::index_conflicts(&index).unwrap())
    } else {
        Ok(index.write_tree_to(repo).unwrap())
    }
}

/// orch's merge: the conflicting paths, or the result tree.
fn orch(repo: &Repository, keep: Keep) -> Result<Oid, Vec<String>> {
    let (ours, theirs) = sides(repo);
    match merge_commits(repo, ours.id(), theirs.id(), keep).unwrap() {
        TreeMerge::Clean(tree) => Ok(tree),
        TreeMerge::Conflict(paths) => Err(paths),
    }
}

/// git's own answer, from the command line.
fn git_cli(dir: &Path) -> Result<Oid, Vec<String>> {
    let out = Command::new("git")
        .args([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "ours",
            "theirs",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let tree = oid(lines.next().unwrap());
    match out.status.code() {
        Some(0) => Ok(tree),
        Some(1) => Err(lines.map(str::to_string).collect()),
        other => panic!("git merge-tree: {other:?}"),
    }
}

const BIG_RENAMES: &str = "mkdir d; awk 'BEGIN { for (i = 1; i <= 1100; i++) { f = \"d/f\" i \".txt\"; print \"header \" i > f; for (j = 1; j <= 30; j++) print \"row \" i \" \" j > f; close(f) } }'; c base; \
    git branch theirs; git checkout -qb ours; git mv d e; for f in e/*.txt; do echo footer >> $f; done; c renamed; \
    git checkout -q theirs; sed -i 's/row 7 20$/ROW 7 20/' d/f7.txt; c edited";

#[test]
fn more_renames_than_libgit2_follows_merge_as_git_merges_them() {
    let tmp = history(BIG_RENAMES);
    let repo = Repository::open(tmp.path()).unwrap();
    // libgit2 stops looking for renames after 1,000 and sees a modify/delete conflict.
    assert_eq!(libgit2(&repo), Err(vec!["d/f7.txt".to_string()]));
    let git = git_cli(tmp.path()).expect("git merges it");
    assert_eq!(orch(&repo, Keep::Nothing), Ok(git));
    assert_eq!(orch(&repo, Keep::Objects), Ok(git));
    let tree = repo.find_tree(git).unwrap();
    let blob = tree.get_path(Path::new("e/f7.txt")).unwrap().id();
    let text = String::from_utf8(repo.find_blob(blob).unwrap().content().to_vec()).unwrap();
    assert!(
        text.contains("ROW 7 20") && text.ends_with("footer\n"),
        "{text}"
    );
}

#[test]
fn a_file_added_to_a_directory_the_other_side_renamed_conflicts_as_in_git() {
    let tmp = history(
        "mkdir d; for i in 1 2 3; do lines > d/f$i.txt; done; c base; git branch theirs; \
         git checkout -qb ours; git mv d e; c renamed; git checkout -q theirs; lines > d/new.txt; c added",
    );
    let repo = Repository::open(tmp.path()).unwrap();
    // libgit2 merges it, leaving the new file in the directory that is gone.
    let tree = repo.find_tree(libgit2(&repo).unwrap()).unwrap();
    assert!(tree.get_path(Path::new("d/new.txt")).is_ok());
    assert_eq!(git_cli(tmp.path()), Err(vec!["e/new.txt".to_string()]));
    // A merge orch writes and a read-only check both take git's verdict.
    for keep in [Keep::Objects, Keep::Nothing] {
        assert_eq!(orch(&repo, keep), Err(vec!["e/new.txt".to_string()]));
    }
}

#[test]
fn whitespace_renames_and_criss_cross_histories_merge_alike_in_both() {
    let cases: &[(&str, &str)] = &[
        (
            "whitespace only, next to a change",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/^line 10$/  line 10/' a.txt; c ws; git checkout -q theirs; sed -i 's/^line 11$/line eleven/' a.txt; c mod",
        ),
        (
            "trailing whitespace against an edit of the line",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/^line 10$/line 10   /' a.txt; c ws; git checkout -q theirs; sed -i 's/^line 10$/line ten/' a.txt; c mod",
        ),
        (
            "CRLF line endings against an edit",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/$/\\r/' a.txt; c crlf; git checkout -q theirs; sed -i 's/^line 30$/line thirty/' a.txt; c mod",
        ),
        (
            "whitespace far from an edit",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/^line 5$/\\tline 5/' a.txt; c ws; git checkout -q theirs; sed -i 's/^line 30$/line thirty/' a.txt; c mod",
        ),
        (
            "a rename against an edit",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt b.txt; c ren; git checkout -q theirs; sed -i 's/line 20/LINE 20/' a.txt; c mod",
        ),
        (
            "a rename with a large edit against an edit",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt b.txt; sed -i '1,18d' b.txt; c ren; git checkout -q theirs; sed -i 's/line 30/LINE 30/' a.txt; c mod",
        ),
        (
            "the same rename on both sides",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt b.txt; c ren; git checkout -q theirs; git mv a.txt b.txt; sed -i 's/line 3$/three/' b.txt; c ren2",
        ),
        (
            "a rename against a delete",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt b.txt; c ren; git checkout -q theirs; git rm -q a.txt; c del",
        ),
        (
            "a rename whose old name is reused",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt b.txt; lines | sed 's/line/other/' > a.txt; c ren; git checkout -q theirs; sed -i 's/line 20/LINE 20/' a.txt; c mod",
        ),
        (
            "a criss-cross merge",
            "lines > a.txt; lines > b.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/line 5$/ours 5/' a.txt; c o1; git checkout -q theirs; sed -i 's/line 30$/theirs 30/' a.txt; c t1; git checkout -q ours; git merge -q theirs -m m1; git checkout -q theirs; git merge -q ours~1 -m m2; git checkout -q ours; sed -i 's/line 10$/ours 10/' b.txt; c o2; git checkout -q theirs; sed -i 's/line 35$/theirs 35/' b.txt; c t2",
        ),
        (
            "a criss-cross merge over a rename",
            "lines > a.txt; lines | sed s/^/b/ > b.txt; c base; git branch theirs; git checkout -qb ours; git mv a.txt c.txt; c o1; git checkout -q theirs; sed -i 's/^bline 5$/B5/' b.txt; c t1; git checkout -q ours; git merge -q theirs -m m1; git checkout -q theirs; git merge -q ours~1 -m m2; git checkout -q ours; sed -i 's/^line 30$/thirty/' c.txt; c o2; git checkout -q theirs; sed -i 's/^line 10$/ten/' c.txt; c t2",
        ),
        (
            "a criss-cross merge whose bases conflict",
            "echo base > a.txt; c base; git branch theirs; git checkout -qb ours; echo ours > a.txt; c o1; git checkout -q theirs; echo theirs > a.txt; c t1; git checkout -q ours; git merge -q theirs -m m1 || { echo ours > a.txt; c m1; }; git checkout -q theirs; git merge -q ours~1 -m m2 || { echo ours > a.txt; c m2; }; git checkout -q ours; echo x > o.txt; c o2; git checkout -q theirs; echo y > t.txt; c t2",
        ),
        (
            "an edit against a delete",
            "lines > a.txt; c base; git branch theirs; git checkout -qb ours; git rm -q a.txt; c del; git checkout -q theirs; sed -i 's/line 2$/two/' a.txt; c mod",
        ),
        (
            "a mode change against an edit",
            "lines > a.sh; c base; git branch theirs; git checkout -qb ours; chmod +x a.sh; c mode; git checkout -q theirs; sed -i 's/line 2$/two/' a.sh; c mod",
        ),
    ];
    for (what, script) in cases {
        let tmp = history(script);
        let repo = Repository::open(tmp.path()).unwrap();
        let git = git_cli(tmp.path());
        let mut lg = libgit2(&repo);
        if let Err(paths) = &mut lg {
            paths.dedup();
        }
        // Conflicts are compared by path set: libgit2 names every side, git the result's name.
        match (&git, &lg) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: trees differ"),
            (Err(_), Err(_)) => {}
            _ => panic!("{what}: git {git:?}, libgit2 {lg:?}"),
        }
        assert_eq!(orch(&repo, Keep::Objects).is_ok(), git.is_ok(), "{what}");
        if let Ok(tree) = git {
            assert_eq!(orch(&repo, Keep::Objects), Ok(tree), "{what}");
            assert!(
                repo.find_tree(tree).is_ok(),
                "{what}: the tree is in the repository"
            );
        }
    }
}

#[test]
fn commits_only_in_memory_are_merged_by_git_without_writing_to_the_repository() {
    let tmp = history(BIG_RENAMES);
    let objects = tmp.path().join(".git").join("objects");
    let before = walk(&objects);
    let repo = crate::git::inspect::open_read_only(tmp.path()).unwrap();
    let (ours, theirs) = sides(&repo);
    // A commit that exists only in memory (as a dry run's virtual target does), on top of ours.
    let sig = fixed_sig();
    let virtual_tip = repo
        .commit(None, &sig, &sig, "virtual", &ours.tree().unwrap(), &[&ours])
        .unwrap();
    let virtual_tip = repo.find_commit(virtual_tip).unwrap();
    match merge_commits(&repo, virtual_tip.id(), theirs.id(), Keep::Objects).unwrap() {
        TreeMerge::Clean(tree) => {
            let tree = repo.find_tree(tree).unwrap();
            assert!(tree.get_path(Path::new("e/f7.txt")).is_ok());
        }
        TreeMerge::Conflict(paths) => panic!("git merges it: {paths:?}"),
    }
    assert_eq!(
        walk(&objects),
        before,
        "objects were written to the repository"
    );
}

#[test]
fn git_answers_through_a_scratch_repository() {
    let tmp = history(
        "lines > a.txt; c base; git branch theirs; git checkout -qb ours; sed -i 's/^line 10$/ten/' a.txt; c o; git checkout -q theirs; sed -i 's/^line 11$/eleven/' a.txt; c t",
    );
    let repo = Repository::open(tmp.path()).unwrap();
    let (ours, theirs) = sides(&repo);
    assert_eq!(
        merge_commits(&repo, ours.id(), theirs.id(), Keep::Objects).unwrap(),
        TreeMerge::Conflict(vec!["a.txt".to_string()])
    );
}

/// A landing's pick of `theirs`'s changes (since the merge base) onto `ours`: `pick_onto`'s tree
/// when it takes the case, else `None`; and the three-tree merge's tree (libgit2), to compare.
fn pick(repo: &Repository) -> (Option<Oid>, Option<Oid>) {
    let (ours, theirs) = sides(repo);
    let base = repo
        .find_commit(repo.merge_base(ours.id(), theirs.id()).unwrap())
        .unwrap();
    let (b, t, o) = (
        base.tree().unwrap(),
        theirs.tree().unwrap(),
        ours.tree().unwrap(),
    );
    let picked = crate::git::merge_tree::pick_onto(repo, &b, &t, &o).unwrap();
    let mut index = repo.merge_trees(&b, &o, &t, None).unwrap();
    let merged = (!index.has_conflicts()).then(|| index.write_tree_to(repo).unwrap());
    (picked, merged)
}

#[test]
fn a_pick_of_changes_ours_did_not_touch_is_the_merge_itself() {
    let cases = [
        // A new file beside one ours changed.
        "mkdir d && lines > d/a && echo b > d/b && c base && git branch theirs && \
         git checkout -qb ours && echo a2 >> d/a && c o && \
         git checkout -q theirs && echo new > d/new && c t",
        // New directories, deep.
        "echo a > a && c base && git branch theirs && git checkout -qb ours && echo o > o && c o && \
         git checkout -q theirs && mkdir -p x/y/z && echo n > x/y/z/n && c t",
        // The last file of a directory deleted: the directory goes.
        "mkdir -p k/l && echo k > k/l/only && echo a > a && c base && git branch theirs && \
         git checkout -qb ours && echo a2 > a && c o && \
         git checkout -q theirs && git rm -q k/l/only && c t",
        // A mode change and a symlink.
        "echo s > s.sh && echo a > a && c base && git branch theirs && git checkout -qb ours && \
         echo a2 > a && c o && git checkout -q theirs && chmod +x s.sh && ln -s a link && c t",
    ];
    for script in cases {
        let tmp = history(script);
        let repo = Repository::open(tmp.path()).unwrap();
        let (picked, merged) = pick(&repo);
        assert!(picked.is_some(), "{script}");
        assert_eq!(picked, merged, "{script}");
    }
}

#[test]
fn a_pick_leaves_to_the_merge_every_path_ours_changed_too() {
    let cases = [
        // Both changed the same file.
        "lines > a && c base && git branch theirs && git checkout -qb ours && \
         sed -i 's/line 1$/one/' a && c o && git checkout -q theirs && echo end >> a && c t",
        // Both added the same file with the same content.
        "echo a > a && c base && git branch theirs && git checkout -qb ours && echo x > x && c o && \
         git checkout -q theirs && echo x > x && c t",
        // theirs adds a file under `p/`, where ours made `p` a file.
        "echo a > a && c base && git branch theirs && git checkout -qb ours && echo p > p && c o && \
         git checkout -q theirs && mkdir p && echo n > p/n && c t",
        // ours renamed the directory theirs adds a file to.
        "mkdir d && echo a > d/a && c base && git branch theirs && git checkout -qb ours && \
         git mv d e && c o && git checkout -q theirs && echo n > d/n && c t",
        // theirs deletes a file ours changed.
        "echo a > a && echo b > b && c base && git branch theirs && git checkout -qb ours && \
         echo a2 > a && c o && git checkout -q theirs && git rm -q a && c t",
    ];
    for script in cases {
        let tmp = history(script);
        let repo = Repository::open(tmp.path()).unwrap();
        assert_eq!(pick(&repo).0, None, "{script}");
    }
}

/// One git process for many merges (`orch conflicts`, the start-up warning): the same answers,
/// in the order asked, as one merge each: clean, conflicting, the same pair twice, a commit
/// only in memory; and an answer of another shape is refused (the caller asks pair by pair).
#[test]
fn many_merges_from_one_git_process_answer_as_one_merge_each() {
    let tmp = history(
        "lines > a.txt; c base; git branch theirs; git branch other; git checkout -qb ours; sed -i 's/^line 10$/ten/' a.txt; c o; git checkout -q theirs; sed -i 's/^line 10$/TEN/' a.txt; c t; git checkout -q other; echo new > b.txt; c b",
    );
    let repo = crate::git::inspect::open_read_only(tmp.path()).unwrap();
    let (ours, theirs) = sides(&repo);
    let other = repo.revparse_single("other").unwrap().id();
    let sig = fixed_sig();
    let virtual_tip = repo
        .commit(None, &sig, &sig, "virtual", &ours.tree().unwrap(), &[&ours])
        .unwrap();
    let pairs = [
        (ours.id(), theirs.id()),
        (ours.id(), other),
        (theirs.id(), other),
        (ours.id(), theirs.id()),
        (virtual_tip, theirs.id()),
        (virtual_tip, other),
    ];
    let many = merge_many(&repo, &pairs).unwrap();
    let one: Vec<TreeMerge> = pairs
        .iter()
        .map(|&(a, b)| merge_commits(&repo, a, b, Keep::Nothing).unwrap())
        .collect();
    assert_eq!(many, one);
    let conflicts: Vec<bool> = many
        .iter()
        .map(|m| matches!(m, TreeMerge::Conflict(_)))
        .collect();
    assert_eq!(conflicts, [true, false, false, true, true, false]);
    assert_eq!(merge_many(&repo, &[]).unwrap(), Vec::new());
    let parse = crate::git::merge_tree::parse_many;
    assert!(parse(b"2\0abc\0\0").is_none(), "an unknown status");
    assert!(parse(b"1\0not-a-tree\0\0").is_none(), "no tree id");
    assert_eq!(parse(b"").unwrap(), Vec::new());
}

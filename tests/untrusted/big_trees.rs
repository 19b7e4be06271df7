//! A directory of many entries is a tree object as large as a file (300,000 names: 28 MB), which
//! the limits on files did not see: an agent could land one under any `max_file_size`. Every
//! tree a change brings (the root's and those of the directories its files lie in) is held to
//! `max_file_size` by its object header, like a blob: orch's own commit of the attempt's work,
//! the agent's own commits, `orch merge` of a branch made by hand. Sandbox on and off.

use crate::big_files::{largest_object, plan_p, up_fails_naming};
use crate::support;

/// The limit of these tests, and how many names pass it: each entry of a tree of files named
/// `fNNN` is about 34 bytes, so 700 of them make a tree of about 23 KiB.
const LIMIT: &str = "max_file_size = \"16KiB\"";
const MAKE_WIDE: &str =
    "mkdir -p wide && i=0; while [ $i -lt 700 ]; do : > wide/f$i; i=$((i+1)); done";
const MAKE_WIDE_ROOT: &str = "i=0; while [ $i -lt 700 ]; do : > f$i; i=$((i+1)); done";
const OWN_COMMIT: &str = "git add -A && git -c user.name=a -c user.email=a@a commit -qm mine";

/// Seen failing on the code before: the task `completed` with the 23 KiB tree on `plan/p`.
#[test]
fn big_trees_a_directory_of_too_many_names_is_never_committed() {
    for sandbox in support::sandboxes() {
        for (script, named) in [
            // Left for orch's commit: in a new directory, at the root.
            (MAKE_WIDE.to_string(), "(the directory wide"),
            (MAKE_WIDE_ROOT.to_string(), "(the directory ."),
            // Committed by the agent itself (orch may take its commit back into the worktree
            // first: the directory is named either way).
            (format!("{MAKE_WIDE}; {OWN_COMMIT}"), "(the directory wide"),
            (
                format!(
                    "mkdir -p a/b && {}; {OWN_COMMIT}",
                    MAKE_WIDE.replace("wide", "a/b")
                ),
                "(the directory a/b",
            ),
        ] {
            let what = format!("{script} (sandbox {sandbox})");
            let repo = plan_p(&script, &format!("{LIMIT}\nsandbox = \"{sandbox}\""), "");
            let error = up_fails_naming(&repo, &what, named);
            assert!(error.contains("max_file_size"), "{what}: {error}");
        }
    }
}

/// A plan branch given a wide directory by hand after the plan finished (buried under a later
/// commit that removes it, too): `orch merge p` refuses it, exit 4, naming the directory; `main`
/// unmoved, and no tree over the limit reached `main`.
#[test]
fn big_trees_orch_merge_refuses_a_branch_that_holds_a_wide_directory() {
    for bury in [false, true] {
        let repo = plan_p("true", "", LIMIT);
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let tree = repo.worktree("p");
        support::shell_in(&tree, &format!("{MAKE_WIDE}; {OWN_COMMIT}"));
        if bury {
            support::shell_in(
                &tree,
                "git rm -rq wide && git -c user.name=a -c user.email=a@a commit -qm gone",
            );
        }
        let main = repo.rev("main");
        let (code, out, err) = repo.run(&["merge", "p"]);
        assert_eq!(code, 4, "bury {bury}\n{out}\n{err}");
        assert!(
            err.contains("plan `p`") && err.contains("(the directory wide of commit"),
            "bury {bury}: {err}"
        );
        assert_eq!(repo.rev("main"), main, "bury {bury}: main moved");
        let main_largest = repo
            .git(&["ls-tree", "-r", "-t", "-l", "main"])
            .lines()
            .count();
        assert!(
            main_largest < 50,
            "bury {bury}: main holds {main_largest} entries"
        );
        // The wide tree is in the repository (the hand-made commit), not on `main`.
        assert!(
            largest_object(&repo) > 16 << 10,
            "bury {bury}: the test made no wide tree"
        );
    }
}

/// Red team 6: many small files in many directories, each tree under `max_file_size`: 200,000
/// files and 10.8 MB of trees landed under a `max_change_size` of 1 MiB (137 s of `orch up`).
/// A change touches at most `max_change_files` files (counted from the names git lists, before
/// anything is hashed), and the trees the agent's own commits bring count towards
/// `max_change_size`. Variants: left for orch's commit, committed by the agent (sandbox on and
/// off), and the trees' sum alone. A change left over the limits is not saved either (never
/// hashed: the save had hashed all of it, 34 s for 120,000 files): no attempt ref, the worktree
/// reset for the next attempt, and the failure says so.
#[test]
fn big_trees_a_change_of_too_many_files_or_trees_too_large_together_is_refused() {
    let many = "i=0; while [ $i -lt 30 ]; do mkdir -p d$i; j=0; while [ $j -lt 20 ]; do : > d$i/f$j; j=$((j+1)); done; i=$((i+1)); done";
    let wide = "i=0; while [ $i -lt 8 ]; do mkdir -p w$i; j=0; while [ $j -lt 300 ]; do : > w$i/name-of-length-$i-$j; j=$((j+1)); done; i=$((i+1)); done";
    let half = "i=0; while [ $i -lt 300 ]; do mkdir -p h$((i % 15)); : > h$((i % 15))/f$i; i=$((i+1)); done";
    let other_half = "i=0; while [ $i -lt 300 ]; do mkdir -p k$((i % 15)); : > k$((i % 15))/f$i; i=$((i+1)); done";
    let half_bytes = "for n in 0 1 2 3 4 5 6 7 8 9; do head -c 12000 /dev/urandom > c$n.bin; done";
    let other_half_bytes =
        "for n in 0 1 2 3 4 5 6 7 8 9; do head -c 12000 /dev/urandom > l$n.bin; done";
    let copies =
        "head -c 12000 /dev/urandom > c0.bin; for n in $(seq 1 19); do cp c0.bin c$n.bin; done";
    let bomb = "set -e\n\
        b=$(head -c 12000 /dev/urandom | git hash-object -w --stdin)\n\
        t=$(printf '100644 blob %s\\tf\\n' $b | git mktree)\n\
        for level in 1 2 3; do t=$(for i in 0 1 2 3 4 5 6 7 8 9; do printf '040000 tree %s\\td%s\\n' $t $i; done | git mktree); done\n\
        root=$( (git ls-tree HEAD; printf '040000 tree %s\\tbomb\\n' $t) | git mktree)\n\
        c=$(git -c user.name=a -c user.email=a@a commit-tree $root -p HEAD -m bomb)\n\
        git update-ref HEAD $c";
    let messages = "for i in $(seq 1 30); do head -c 12000 /dev/zero | tr '\\0' m | git -c user.name=a -c user.email=a@a commit -q --allow-empty -F -; done";
    // Red team 11: a merge of the branch and a side chain of 20,000 empty commits dated 1970
    // (the first-parent chain is one commit long), made with git's plumbing.
    let side_chain = "set -e; h=$(git rev-parse HEAD)\n\
        awk -v h=$h 'BEGIN { for (i = 1; i <= 20000; i++) { printf \"commit refs/heads/side\\nmark :%d\\ncommitter a <a@a> 0 +0000\\ndata 2\\nc\\n\", i; if (i == 1) printf \"from %s\\n\", h; printf \"\\n\" }\n\
        printf \"commit refs/heads/side\\ncommitter a <a@a> 1 +0000\\ndata 2\\nm\\nfrom %s\\nmerge :20000\\n\\n\", h }' | git fast-import --quiet\n\
        git reset -q --hard side";
    // Red team 12: a mesh, 30 merges in a chain on the branch, each naming the same 20 root
    // commits: 50 commits, within the limit of 500 entries, but 630 parents, over it.
    let octopus = "set -e; h=$(git rev-parse HEAD)\n\
        awk -v h=$h 'BEGIN { for (i = 1; i <= 20; i++) printf \"reset refs/heads/r\\ncommit refs/heads/r\\nmark :%d\\ncommitter a <a@a> 0 +0000\\ndata 2\\nr\\n\\n\", i;\n\
        for (m = 1; m <= 30; m++) { printf \"commit refs/heads/side\\ncommitter a <a@a> %d +0000\\ndata 2\\nm\\n\", m; if (m == 1) printf \"from %s\\n\", h; for (i = 1; i <= 20; i++) printf \"merge :%d\\n\", i; printf \"\\n\" } }' | git fast-import --quiet\n\
        git reset -q --hard side";
    for sandbox in support::sandboxes() {
        for (script, keys, named) in [
            (
                many.to_string(),
                "max_change_files = 500",
                "`max_change_files`",
            ),
            (
                format!("{many}; {OWN_COMMIT}"),
                "max_change_files = 500",
                "`max_change_files`",
            ),
            // Red team 7: half of the change committed by the agent, half left for orch's
            // commit, each within the limits, over them together.
            (
                format!("{half}; {OWN_COMMIT}; {other_half}"),
                "max_change_files = 500",
                "`max_change_files`",
            ),
            (
                format!("{half_bytes}; {OWN_COMMIT}; {other_half_bytes}"),
                "max_change_size = \"200KiB\"",
                "`max_change_size`",
            ),
            // Red team 9: twenty copies of one file (one blob) are twenty files on disk.
            (
                format!("{copies}; {OWN_COMMIT}"),
                "max_change_size = \"200KiB\"",
                "`max_change_size`",
            ),
            // Red team 9: a thousand directories sharing one tree of one blob, made with git's
            // plumbing and never checked out (the index left alone): 12 MB of checkout.
            (
                bomb.to_string(),
                "max_change_size = \"200KiB\"",
                "`max_change_size`",
            ),
            // Red team 10: thirty empty commits of 12,000-byte messages, each under the file
            // limit, 360 KB together.
            (
                messages.to_string(),
                "max_change_size = \"200KiB\"",
                "`max_change_size`",
            ),
            (
                side_chain.to_string(),
                "max_change_files = 500",
                "`max_change_files`",
            ),
            (
                octopus.to_string(),
                "max_change_files = 500",
                "`max_change_files`",
            ),
            // Eight trees of about 15 KiB each, under a file limit of 16 KiB, over a change
            // limit of 64 KiB together.
            (
                format!("{wide}; {OWN_COMMIT}"),
                "max_change_size = \"64KiB\"",
                "`max_change_size`",
            ),
        ] {
            // A confined agent cannot write git's objects (its commit fails, orch commits
            // instead): the plumbing-made commit needs the sandbox off.
            if (script.contains("commit-tree")
                || script.contains("--allow-empty")
                || script.contains("fast-import"))
                && sandbox != "off"
            {
                continue;
            }
            let what = format!("{script} {keys} (sandbox {sandbox})");
            let repo = plan_p(
                &script,
                &format!("{LIMIT}\n{keys}\nsandbox = \"{sandbox}\""),
                "",
            );
            let error = up_fails_naming(&repo, &what, named);
            // Nothing of it left in the worktree (`plan/p` did not move: `up_fails_naming`).
            assert!(
                !repo.worktree("p").join("bomb").exists(),
                "{what}: written out"
            );
            if !script.contains(OWN_COMMIT)
                && !script.contains("commit-tree")
                && !script.contains("--allow-empty")
                && !script.contains("fast-import")
            {
                assert!(error.contains("not saved"), "{what}: {error}");
                let saved = repo.git(&["for-each-ref", "refs/orch/attempts/"]);
                assert_eq!(saved.trim(), "", "{what}: saved");
                assert!(!repo.worktree("p").join("d0").exists(), "{what}: left");
            }
        }
    }
}

/// Within the limits, the same agent's work lands: the limits refuse only what is over them.
#[test]
fn big_trees_a_change_within_the_file_count_completes() {
    let repo = plan_p(
        "i=0; while [ $i -lt 30 ]; do : > f$i; i=$((i+1)); done",
        "max_change_files = 40",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    assert!(repo.tree_files("plan/p").iter().any(|f| f == "f29"));
}

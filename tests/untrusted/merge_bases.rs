//! Red team 13: a history whose two sides share thousands of merge bases, each side within
//! `max_change_files` (one plan lands an octopus merge of K side commits, another plan's branch
//! is one commit naming those K commits as its parents), made one landing cost minutes of CPU
//! and GiBs (6,000 bases: 222-300 s, 788 MB), git merging the bases one after the other. orch
//! merges two commits only when they share at most 16 merge bases; more is refused before git
//! is asked, with an error that says so, and nothing moves. Variants: `orch merge` of the branch,
//! its dry run, the merge train of `orch up`, the conflict report; 16 bases still merge.

use crate::big_files::plan_p;

/// Makes `main` an octopus merge of `k` side commits of its tip (as a plan's landing leaves it)
/// and, in `dir` (plan `p`'s worktree), a commit on `p`'s branch naming those side commits and
/// its own tip as its parents.
fn wide_history(repo: &crate::support::Repo, dir: &std::path::Path, k: usize) {
    let main = repo.rev("main");
    let script = format!(
        "set -e; t=$(git rev-parse {main}^{{tree}}); : > ../sides\n\
         i=0; while [ $i -lt {k} ]; do git commit-tree $t -p {main} -m side$i >> ../sides; i=$((i+1)); done\n\
         m=$(git commit-tree $t -p {main} $(sed 's/^/-p /' ../sides) -m octopus)\n\
         git update-ref refs/heads/main $m\n\
         h=$(git rev-parse HEAD)\n\
         c=$(git commit-tree $(git rev-parse HEAD^{{tree}}) -p $h $(sed 's/^/-p /' ../sides) -m wide)\n\
         git update-ref HEAD $c"
    );
    crate::support::shell_in(dir, &script);
}

#[test]
fn merge_bases_a_history_too_wide_is_never_merged() {
    for (k, refused) in [(16, false), (17, true), (300, true)] {
        let repo = plan_p("true", "integrate = \"off\"", "");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}\n{err}");
        wide_history(&repo, &repo.worktree("p"), k);
        let main = repo.rev("main");
        let branch = repo.rev("plan/p");
        // The dry run and the conflict report say so too.
        let (code, out, err) = repo.run(&["merge", "--dry-run", "p"]);
        if refused {
            assert_ne!(code, 0, "k {k}: the dry run passed\n{out}\n{err}");
            assert!(
                format!("{out}{err}").contains("more than 16 merge bases"),
                "k {k}: {out}\n{err}"
            );
        } else {
            assert_eq!(code, 0, "k {k}\n{out}\n{err}");
        }
        let (_, out, err) = repo.run(&["conflicts"]);
        assert_eq!(
            format!("{out}{err}").contains("more than 16 merge bases"),
            refused,
            "k {k}: {out}\n{err}"
        );
        let (code, out, err) = repo.run(&["merge", "p"]);
        if refused {
            assert_ne!(code, 0, "k {k}: merged\n{out}\n{err}");
            assert!(err.contains("more than 16 merge bases"), "k {k}: {err}");
            assert_eq!(repo.rev("main"), main, "k {k}: main moved");
        } else {
            assert_eq!(code, 0, "k {k}: not merged\n{out}\n{err}");
            repo.git(&["merge-base", "--is-ancestor", &branch, "main"]);
        }
        assert_eq!(repo.rev("plan/p"), branch, "k {k}: plan/p moved");
    }
}

/// The merge train of `orch up` (`auto_merge`), as the red team ran it: plan `wide` lands an
/// octopus merge of 40 side commits; plan `bases`, started from the same `main`, waits until
/// `main` holds them and makes a commit naming them all as its parents. Both agents run with the
/// sandbox off (a confined one cannot write git's objects). The second landing is refused with
/// the reason, `main` keeps the first plan's work only, the run ends.
#[test]
fn merge_bases_the_merge_train_refuses_a_history_too_wide() {
    use crate::support::{Repo, one_task, toml_array};
    let repo = Repo::builder().identity_in_config().build();
    let wide = "set -e; t=$(git rev-parse HEAD^{tree}); h=$(git rev-parse HEAD); : > ../sides\n\
        i=0; while [ $i -lt 40 ]; do git commit-tree $t -p $h -m side$i >> ../sides; i=$((i+1)); done\n\
        c=$(git commit-tree $t -p $h $(sed 's/^/-p /' ../sides) -m octopus); git update-ref HEAD $c\n\
        echo wide > wide.txt";
    let bases = "set -e; i=0\n\
        while [ -z \"$(git rev-list --grep='^octopus$' main)\" ]; do i=$((i+1)); [ $i -lt 1200 ] || exit 9; sleep 0.1; done\n\
        s=$(git rev-list --grep='^side' main); t=$(git rev-parse HEAD^{tree})\n\
        c=$(git commit-tree $t -p HEAD $(echo \"$s\" | sed 's/^/-p /') -m bases); git update-ref HEAD $c\n\
        echo bases > bases.txt";
    let mut manifest = String::from(
        "[defaults]\nretries = 0\nintegrate = \"off\"\nauto_merge = true\nsandbox = \"off\"\nmax_agents = 2\n",
    );
    for (name, script) in [("wide", wide), ("bases", bases)] {
        repo.write(&format!("docs/plans/{name}.md"), &one_task("W", "Work"));
        manifest.push_str(&format!(
            "\n[agents.{name}]\ncommand = {}\n\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\nagent = \"{name}\"\n",
            toml_array(&["sh", "-c", script])
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env_remove("ORCH_SANDBOX"));
    let all = format!("{out}\n{err}");
    assert!(
        all.contains("more than 16 merge bases"),
        "code {code}\n{all}"
    );
    // `wide` landed, `bases` did not.
    let landed = repo.git(&["log", "--format=%s", "main"]);
    assert!(landed.contains("octopus"), "{landed}\n{all}");
    assert!(!landed.lines().any(|l| l == "bases"), "{landed}\n{all}");
    assert_eq!(repo.task("bases", "1.1")["status"], "completed", "{all}");
    assert_eq!(repo.git(&["show", "main:wide.txt"]), "wide");
    assert!(repo.git_out(&["show", "main:bases.txt"]).stdout.is_empty());
}

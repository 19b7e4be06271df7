//! Red team 14: an unconfined agent of plan `alpha` merged plan `victim`'s finished branch into
//! its own with `git merge -s ours` (none of its changes). `orch merge` landed alpha, then called
//! victim "already merged" (its tip was in main's history), and `orch clean` removed victim's
//! branch and worktree: its work was in no branch of `main`. A branch that holds commits of
//! another plan's branch that the target does not is refused (exit 4, naming both, nothing
//! moved), whoever allows it; that plan then lands, and the branch after it (as git merges it:
//! its merge of the other's commits is its own change, shown by the landing). Variants: `-s ours`, a merge
//! commit made with git's plumbing, and (allowed) a plan that declares the other as its
//! upstream and merges it, landing after it in the same `orch merge`.

use crate::support::{Repo, one_task, toml_array};

/// Waits (bounded) for `plan/victim` to move off the base, then does `how` with its tip `$v`.
fn alpha_script(how: &str) -> String {
    format!(
        "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=a \
         GIT_COMMITTER_EMAIL=a@example.com; base=$(git rev-parse HEAD); i=0; \
         while [ $i -lt 600 ]; do v=$(git rev-parse -q --verify refs/heads/plan/victim); \
         [ -n \"$v\" ] && [ \"$v\" != \"$base\" ] && break; sleep 0.1; i=$((i+1)); done; \
         echo alpha > alpha.txt && git add alpha.txt && git commit -qm 'alpha: its work' && {how}"
    )
}

fn repo_with(how: &str, alpha_extra: &str) -> Repo {
    let repo = Repo::bare_minimum();
    for p in ["alpha", "victim"] {
        repo.write(&format!("docs/plans/{p}.md"), &one_task("P", "Work"));
    }
    let manifest = format!(
        "[defaults]\nretries = 0\nmax_agents = 2\nintegrate = \"off\"\n\n\
         [agents.evil]\ncommand = {}\nreport = \"exit\"\nsandbox = \"off\"\n\n\
         [agents.honest]\ncommand = {}\nreport = \"exit\"\n\n\
         [[plan]]\nname = \"alpha\"\nfile = \"docs/plans/alpha.md\"\nagent = \"evil\"\n{alpha_extra}\n\n\
         [[plan]]\nname = \"victim\"\nfile = \"docs/plans/victim.md\"\nagent = \"honest\"\n",
        toml_array(&["sh", "-c", &alpha_script(how)]),
        toml_array(&["sh", "-c", "echo victim > victim.txt"]),
    );
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{how}\n{out}\n{err}");
    for p in ["alpha", "victim"] {
        assert_eq!(repo.task(p, "1.1")["status"], "completed", "{how}: {p}");
    }
    repo
}

#[test]
fn foreign_history_a_branch_holding_another_plans_commits_waits_for_that_plan() {
    for how in [
        "git merge -q -s ours --no-edit -m 'alpha: tidy' \"$v\"",
        "t=$(git commit-tree -p HEAD -p \"$v\" -m 'alpha: tidy' HEAD^{tree}) && git reset -q --hard \"$t\"",
    ] {
        let repo = repo_with(how, "");
        let main = repo.rev("main");
        for args in [
            &["merge"][..],
            &["merge", "alpha"],
            &["merge", "--allow-protected"],
        ] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 4, "{how}: {args:?} landed\n{out}\n{err}");
            assert!(
                err.contains("plan `alpha`") && err.contains("holds commits of plan `victim`"),
                "{how}: {err}"
            );
            assert_eq!(repo.rev("main"), main, "{how}: main moved");
        }
        // Victim is not called merged: it lands, its work in main.
        let (code, out, err) = repo.run(&["merge", "victim"]);
        assert_eq!(code, 0, "{how}\n{out}\n{err}");
        assert!(!out.contains("already merged"), "{how}: {out}");
        assert_eq!(repo.git(&["show", "main:victim.txt"]).trim(), "victim");
        // Then alpha lands as git merges it (its merge of victim's commits is its change).
        let (code, out, err) = repo.run(&["merge", "alpha"]);
        assert_eq!(code, 0, "{how}\n{out}\n{err}");
        assert_eq!(repo.git(&["show", "main:alpha.txt"]).trim(), "alpha");
    }
}

#[test]
fn foreign_history_a_plan_that_merges_its_upstream_lands_after_it() {
    let repo = repo_with(
        "git merge -q --no-edit -m 'alpha: with victim' \"$v\"",
        "depends_on = [\"victim\"]",
    );
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for f in ["alpha.txt", "victim.txt"] {
        assert!(
            !repo.git(&["show", &format!("main:{f}")]).is_empty(),
            "{f} not in main"
        );
    }
}

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

/// Red team 15: plan `thief` gets plan `victim`'s committed work into its own branch while
/// victim is unfinished (its 1.1 done, its 1.2 failed): by copying victim's files out of the
/// repository's objects (confined: `git show`, `git cat-file`), or, unconfined, by moving its
/// branch onto victim's tip. `orch merge thief` lands, and victim's changes are then in main.
/// `orch clean` called victim merged (by content, or by its tip in main's history) and removed
/// its branch and worktree. Now orch's records decide: a plan with tasks not done that
/// `orch merge` did not land is kept, saying why; `--force` removes it.
#[test]
fn foreign_history_an_unfinished_plan_whose_changes_came_another_way_is_kept_by_clean() {
    for (how, sandbox) in [
        ("git show \"$v:victim.txt\" > victim.txt", "on"),
        ("git cat-file -p \"$v:victim.txt\" > victim.txt", "on"),
        ("git merge -q --ff-only \"$v\"", "off"),
    ] {
        let repo = Repo::bare_minimum();
        repo.write(
            "docs/plans/victim.md",
            "# V\n\n## Phase 1: Work\n- [ ] 1.1 write\n- [ ] 1.2 more\n",
        );
        repo.write("docs/plans/thief.md", &one_task("T", "Work"));
        let thief = format!(
            "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t \
             GIT_COMMITTER_EMAIL=t@example.com; base=$(git rev-parse HEAD); i=0; \
             while [ $i -lt 600 ]; do v=$(git rev-parse -q --verify refs/heads/plan/victim); \
             [ -n \"$v\" ] && [ \"$v\" != \"$base\" ] && break; sleep 0.1; i=$((i+1)); done; \
             {how} && echo thief > thief.txt"
        );
        let manifest = format!(
            "[defaults]\nretries = 0\nmax_agents = 2\nintegrate = \"off\"\n\n\
             [agents.thief]\ncommand = {}\nreport = \"exit\"\nsandbox = \"{sandbox}\"\n\n\
             [agents.victim]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"thief\"\nfile = \"docs/plans/thief.md\"\nagent = \"thief\"\n\n\
             [[plan]]\nname = \"victim\"\nfile = \"docs/plans/victim.md\"\nagent = \"victim\"\n",
            toml_array(&["sh", "-c", &thief]),
            toml_array(&[
                "sh",
                "-c",
                "[ \"$ORCH_TASK\" = 1.2 ] && exit 1; echo victim > victim.txt",
            ]),
        );
        repo.write("plans.toml", &manifest);
        repo.commit_all("plans");
        let (code, out, err) = repo.run(&["up"]);
        assert_ne!(code, 0, "{how}: victim's 1.2 fails\n{out}\n{err}");
        assert_eq!(repo.task("victim", "1.1")["status"], "completed", "{how}");
        assert_eq!(repo.task("victim", "1.2")["status"], "failed", "{how}");
        assert_eq!(repo.task("thief", "1.1")["status"], "completed", "{how}");
        let (code, out, err) = repo.run(&["merge", "thief"]);
        assert_eq!(code, 0, "{how}: thief lands\n{out}\n{err}");
        assert_eq!(
            repo.git(&["show", "main:victim.txt"]).trim(),
            "victim",
            "{how}"
        );
        let victim_tip = repo.rev("plan/victim");

        // Plain clean, and its dry run: victim kept, saying why; its branch and worktree stay.
        for args in [&["clean", "--dry-run", "--json"][..], &["clean", "--json"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 5, "{how}: {args:?} kept a plan\n{out}\n{err}");
            let v: serde_json::Value = serde_json::from_str(&out).expect("json");
            let victim = v["plans"]
                .as_array()
                .expect("plans")
                .iter()
                .find(|p| p["plan"] == "victim")
                .expect("victim")
                .clone();
            assert_eq!(victim["outcome"], "kept", "{how}: {args:?} {victim}");
            assert!(
                victim["reasons"].to_string().contains("1.2")
                    && victim["reasons"].to_string().contains("not done"),
                "{how}: {victim}"
            );
        }
        assert_eq!(
            repo.rev("plan/victim"),
            victim_tip,
            "{how}: victim's branch kept"
        );
        assert!(
            repo.root().join(".orch/worktrees/victim").is_dir(),
            "{how}: worktree kept"
        );

        // A person's --force removes it (its tip saved when it is not in main's history).
        let (code, out, err) = repo.run(&["clean", "--force", "victim"]);
        assert_eq!(code, 0, "{how}\n{out}\n{err}");
        assert!(
            !repo.root().join(".orch/worktrees/victim").exists(),
            "{how}"
        );
    }
}

/// `n` commits on `branch` (each changing one of 50 small files), then, with `side`, a merge
/// of a side line of `side` commits: made with `git fast-import`, as a plan-mode or unconfined
/// agent could.
fn lengthen(repo: &Repo, branch: &str, n: usize, side: usize) {
    use std::io::Write as _;
    let tip = repo.rev(branch);
    let mut stream = String::new();
    let mut mark = 0;
    let mut commit = |stream: &mut String, from: &str, merge: Option<String>, i: usize| {
        mark += 1;
        // Each message its own (the mark), or the side line's commits would be the main line's.
        stream.push_str(&format!(
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter t <t@example.com> 1700000000 +0000\ndata 6\nm{:05}\nfrom {from}\n",
            mark % 100_000
        ));
        if let Some(m) = merge {
            stream.push_str(&format!("merge {m}\n"));
        }
        stream.push_str(&format!(
            "M 644 inline f{}.txt\ndata 6\nv{:04}\n\n",
            i % 50,
            i % 10000
        ));
        mark
    };
    let mut side_tip = tip.clone();
    for i in 0..side {
        let m = commit(&mut stream, &side_tip, None, i);
        side_tip = format!(":{m}");
    }
    let mut from = tip.clone();
    for i in 0..n {
        let merge = (i == n - 1 && side > 0).then(|| side_tip.clone());
        let m = commit(&mut stream, &from, merge, i);
        from = format!(":{m}");
    }
    let mut child = std::process::Command::new("git")
        .args(["fast-import", "--quiet", "--force"])
        .current_dir(repo.root())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write");
    let status =
        crate::support::wait_within(child, std::time::Duration::from_secs(120), "fast-import")
            .status;
    assert!(status.success(), "fast-import");
}

/// Red team 15: a plan's branch of 300,000 small commits made every look at a landing read
/// each of them (71 s for a dry run, 99 s for `orch merge`, the plans behind it waiting). A
/// branch with more commits than a landing examines (20,000) is refused (exit 4, naming it,
/// nothing moved) before any commit is read; one under it lands.
#[test]
fn foreign_history_a_branch_longer_than_a_landing_examines_is_refused_before_reading_it() {
    for (n, side, refused) in [(20_001, 0, true), (19_990, 11, true), (19_000, 0, false)] {
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/long.md", &one_task("L", "Work"));
        let manifest = format!(
            "[defaults]\nretries = 0\nintegrate = \"off\"\n\n\
             [agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"long\"\nfile = \"docs/plans/long.md\"\nagent = \"a\"\n",
            toml_array(&["sh", "-c", "echo long > long.txt"]),
        );
        repo.write("plans.toml", &manifest);
        repo.commit_all("plans");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}\n{err}");
        lengthen(&repo, "plan/long", n, side);
        let main = repo.rev("main");
        for args in [&["merge", "--dry-run"][..], &["merge"]] {
            let (code, out, err) = repo.run(args);
            if refused {
                assert_ne!(code, 0, "{n}+{side}: {args:?} landed\n{out}\n{err}");
                assert!(
                    format!("{out}{err}").contains("more than 20000 commits"),
                    "{n}+{side}: {args:?}\n{out}\n{err}"
                );
                assert_eq!(repo.rev("main"), main, "{n}+{side}: main moved");
            } else {
                assert_eq!(code, 0, "{n}: {args:?}\n{out}\n{err}");
            }
        }
        if !refused {
            assert_eq!(repo.git(&["show", "main:long.txt"]).trim(), "long");
        }
    }
}

/// Red team 16: orch's record of an earlier landing stood for more than that landing. (1) Plan
/// `p` landed, then went on (a person added tasks; one failed) while plan `q`'s agent copied its
/// new committed work, which landed with q: `orch clean` took the old record for a landing of
/// p's new tip and removed the unfinished plan. (2) A person reset `main` to undo p's landing:
/// `orch merge p` said "already merged" and landed nothing. A record counts for the tip it
/// landed, and while its landing commit is in the target.
#[test]
fn foreign_history_an_old_landing_record_speaks_for_that_landing_only() {
    // (1) The record of an earlier tip.
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "make p1.1"));
    repo.write("docs/plans/q.md", &one_task("Q", "copy"));
    let p_agent = toml_array(&[
        "sh",
        "-c",
        "case $ORCH_TASK in 1.3) exit 1;; *) echo p-$ORCH_TASK > p$ORCH_TASK.txt;; esac",
    ]);
    let q_agent = toml_array(&[
        "sh",
        "-c",
        "i=0; until git show plan/p:p1.2.txt > p1.2.txt 2>/dev/null || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done",
    ]);
    let head = format!(
        "[defaults]\nretries = 0\nmax_agents = 2\nintegrate = \"off\"\n\n\
         [agents.pa]\ncommand = {p_agent}\nreport = \"exit\"\n\n\
         [agents.qa]\ncommand = {q_agent}\nreport = \"exit\"\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"pa\"\n"
    );
    repo.write("plans.toml", &head);
    repo.commit_all("plans");
    for args in [&["up"][..], &["merge"], &["clean"]] {
        let (code, out, err) = repo.run(args);
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
    }
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 make p1.1\n- [ ] 1.2 more\n- [ ] 1.3 fails\n",
    );
    repo.write(
        "plans.toml",
        &format!("{head}\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"qa\"\n"),
    );
    repo.commit_all("more of p, and q");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "p's 1.3 fails\n{out}\n{err}");
    assert_eq!(repo.task("p", "1.3")["status"], "failed");
    let (_, out, err) = repo.run(&["merge"]);
    assert_eq!(
        repo.git(&["show", "main:p1.2.txt"]).trim(),
        "p-1.2",
        "{out}\n{err}"
    );
    let tip = repo.rev("plan/p");
    let (code, out, err) = repo.run(&["clean"]);
    assert_eq!(code, 5, "p kept\n{out}\n{err}");
    assert!(
        out.contains("`1.3`") || err.contains("`1.3`"),
        "{out}\n{err}"
    );
    assert_eq!(repo.rev("plan/p"), tip, "p's branch kept");

    // (2) The landing undone by a person.
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "work"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nintegrate = \"off\"\n\n[agents.pa]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"pa\"\n",
            toml_array(&["sh", "-c", "echo p > p.txt"])
        ),
    );
    repo.commit_all("plans");
    let before = repo.rev("main");
    for args in [&["up"][..], &["merge", "p"]] {
        let (code, out, err) = repo.run(args);
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
    }
    repo.git(&["reset", "-q", "--hard", &before]);
    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("already merged"), "{out}");
    assert_eq!(
        repo.git(&["show", "main:p.txt"]).trim(),
        "p",
        "landed again"
    );
}

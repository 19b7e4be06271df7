//! Resolution by agent (`resolve`, issue 37) end to end: real repositories in temp dirs, plans
//! finished by a real `orch up` whose scripted agents write the same file, `orch merge` and
//! `orch resolve` handing the conflicts to a scripted resolver (`tests/fixtures/agents/
//! resolver.sh`), and what a user checks: the target and plan branches, the merge commits and
//! their messages, the files, the saved attempts, the status records, the exit codes.

mod support;

use serde_json::Value;
use support::{Repo, agent, fixtures, toml_array};

/// Every plan's agent writes `shared.txt` (`<plan> 1.1`): any two plans conflict (add/add).
const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write shared.txt\n";

/// The check and verify commands: each fails when a resolved `.txt` file holds its word.
fn grep_not(word: &str) -> String {
    toml_array(&["sh", "-c", &format!("! grep -rq {word} --include=*.txt .")])
}

/// A repository whose plans `names` are finished (each wrote `shared.txt`), with `resolve`
/// set to the scripted resolver in `mode`, `check` and `verify` that refuse its breakage, and
/// `extra` lines in `[defaults]`.
fn finished(names: &[&str], mode: &str, extra: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let write = fixtures().join("write.sh");
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nmax_agents = 3\nintegrate = \"off\"\nresolve = \"fixer\"\n\
         check = {check}\nverify = {verify}\n{extra}\n\
         [agents.w]\ncommand = {w}\n\n[agents.fixer]\ncommand = {fixer}\n",
        check = grep_not("BREAKS-CHECK"),
        verify = grep_not("BREAKS-VERIFY"),
        w = toml_array(&["sh", write.to_str().expect("utf8"), "shared.txt"]),
        fixer = agent("resolver.sh", &[mode]),
    );
    for name in names {
        repo.write(&format!("docs/plans/{name}.md"), PLAN);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    repo
}

fn merge_json(repo: &Repo, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["merge", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = repo.run(&all);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr:\n{err}"));
    (code, v, err)
}

fn step<'v>(v: &'v Value, plan: &str) -> &'v Value {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["plan"] == plan)
        .unwrap_or_else(|| panic!("no step for `{plan}` in {v:#}"))
}

/// `git show -s --format=%B REV`.
fn message(repo: &Repo, rev: &str) -> String {
    repo.git(&["show", "-s", "--format=%B", rev])
}

#[test]
fn three_plans_editing_one_file_pairwise_are_all_merged_each_resolution_on_its_branch() {
    let repo = finished(&["a", "b", "c"], "ok", "");
    let tips: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|p| repo.rev(&format!("plan/{p}")))
        .collect();
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    for p in ["a", "b", "c"] {
        assert_eq!(step(&v, p)["result"], "merged", "{v:#}");
    }
    // The target holds every plan's line, no marker.
    let shared = repo.git(&["show", "main:shared.txt"]);
    for p in ["a", "b", "c"] {
        assert!(shared.contains(&format!("{p} 1.1")), "{shared}");
    }
    assert!(
        !shared.contains("<<<<<<<") && !shared.contains(">>>>>>>"),
        "{shared}"
    );
    // The first plan merged cleanly; the two others each got a resolution commit on their
    // branch: a merge of the target's tip then and the plan's tip, saying who resolved it.
    let resolved: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .zip(&tips)
        .filter(|(p, tip)| repo.rev(&format!("plan/{p}")) != **tip)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    for p in resolved {
        let branch = format!("plan/{p}");
        let msg = message(&repo, &branch);
        assert!(msg.contains("resolved by agent `fixer`"), "{msg}");
        assert!(msg.contains("Resolved-by: fixer"), "{msg}");
        assert_eq!(
            repo.rev(&format!("{branch}^1")),
            tips[["a", "b", "c"].iter().position(|x| *x == p).expect("p")]
        );
        // Its merge with the target is in the target's history.
        assert!(repo.git_ok(&["merge-base", "--is-ancestor", &branch, "main"]));
    }
    // The resolution worktrees are gone.
    let left: Vec<String> = repo
        .worktrees()
        .into_iter()
        .filter(|w| w.contains(".resolve-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

//! A hostile resolver (`resolve`): the agent orch hands a conflict to works in a
//! resolution worktree orch made, confined; everything it leaves is untrusted. orch decides from
//! its own records (the conflicted paths git gave it, the files read as bytes, the protected
//! configuration) and builds the merge commit itself: a resolver that edits `plans.toml`, leaves
//! a symlink where the conflicted file was, or writes its git admin files and refs to move
//! `main` lands nothing of it, and nothing outside its write set changes.

use std::path::Path;

use serde_json::Value;

use crate::landlock;
use crate::support::{Repo, agent, fixtures, toml_array};

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write shared.txt\n";

/// Plans `a` and `b` (each writes `shared.txt`) finished and `a` merged, confined
/// (`sandbox = "on"`), `resolve` set to `resolver.sh MODE ARGS`: `b` conflicts with `main`.
fn b_conflicts(mode: &str, args: &[&Path]) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let write = fixtures().join("write.sh");
    let mut fixer = vec![mode.to_string()];
    fixer.extend(args.iter().map(|a| a.display().to_string()));
    let fixer: Vec<&str> = fixer.iter().map(String::as_str).collect();
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nsandbox = \"on\"\nintegrate = \"off\"\nresolve = \"fixer\"\n\n\
         [agents.w]\ncommand = {}\n\n[agents.fixer]\ncommand = {}\n",
        toml_array(&["sh", write.to_str().expect("utf8"), "shared.txt"]),
        agent("resolver.sh", &fixer),
    );
    for name in ["a", "b"] {
        repo.write(&format!("docs/plans/{name}.md"), PLAN);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = merge(&repo, "a");
    assert_eq!(code, 0, "{out}\n{err}");
    repo
}

fn merge(repo: &Repo, plan: &str) -> (i32, String, String) {
    repo.run_cmd(
        repo.orch(&["merge", "--json", plan])
            .env_remove("ORCH_SANDBOX"),
    )
}

fn step_b(out: &str) -> Value {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["steps"][0].clone()
}

/// Nothing of `b` landed: `main` and `plan/b` where they were, `plans.toml` on both unchanged.
fn nothing_landed(repo: &Repo, main: &str, plan_b: &str) {
    assert_eq!(repo.rev("main"), main, "main moved");
    assert_eq!(repo.rev("plan/b"), plan_b, "plan/b moved");
    assert!(!repo.git(&["show", "main:plans.toml"]).contains("hostile"));
    assert!(!repo.git(&["show", "plan/b:plans.toml"]).contains("hostile"));
}

#[test]
fn resolve_a_resolver_that_edits_plans_toml_lands_nothing() {
    if !landlock() {
        return;
    }
    let repo = b_conflicts("manifest", &[]);
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = merge(&repo, "b");
    assert_eq!(code, 5, "{out}\n{err}");
    let s = step_b(&out);
    let reason = s["reason"].as_str().expect("reason");
    assert!(
        reason.contains("changed `plans.toml`, which is protected"),
        "{reason}"
    );
    nothing_landed(&repo, &main, &plan_b);
    // The main work tree's plans.toml is the lead's.
    assert!(!String::from_utf8_lossy(&repo.read("plans.toml")).contains("hostile"));
}

#[test]
fn resolve_a_symlink_where_the_conflicted_file_was_lands_nothing() {
    if !landlock() {
        return;
    }
    let secret = {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.keep().join("secret.txt");
        std::fs::write(&p, "the user's secret\n").expect("secret");
        p
    };
    let repo = b_conflicts("symlink", &[&secret]);
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = merge(&repo, "b");
    assert_eq!(code, 5, "{out}\n{err}");
    let reason = step_b(&out)["reason"].as_str().expect("reason").to_string();
    assert!(
        reason.contains("left a symbolic link at `shared.txt`"),
        "{reason}"
    );
    nothing_landed(&repo, &main, &plan_b);
    // The attempt is saved with the link as a link: the secret was never read into git.
    let saved = repo.refs_under("refs/orch/attempts/b/resolve/");
    assert_eq!(saved.len(), 1, "{saved:?}");
    let mode = repo.git(&["ls-tree", "refs/orch/attempts/b/resolve/1", "shared.txt"]);
    assert!(mode.starts_with("120000"), "{mode}");
    let all = repo.git(&["log", "--all", "-p", "--format=%H"]);
    assert!(!all.contains("the user's secret"), "{all}");
    assert_eq!(
        std::fs::read_to_string(&secret).expect("secret"),
        "the user's secret\n"
    );
}

#[test]
fn resolve_a_resolver_writing_its_git_admin_files_and_refs_moves_nothing_but_orchs_merge() {
    if !landlock() {
        return;
    }
    let repo = b_conflicts("admin", &[]);
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = merge(&repo, "b");
    // Its files were resolved (the admin writes were denied): orch lands its own merge.
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(step_b(&out)["result"], "merged");
    // `plan/b` is orch's merge commit of the old tips; `main` orch's merge of it.
    assert_eq!(repo.rev("plan/b^1"), plan_b);
    assert_eq!(repo.rev("plan/b^2"), main);
    assert!(
        repo.git(&["show", "-s", "--format=%B", "plan/b"])
            .contains("resolved by agent `fixer`")
    );
    assert_eq!(repo.rev("main^1"), main);
    assert_eq!(repo.rev("main^2"), repo.rev("plan/b"));
    // No commit of the agent's is anywhere.
    assert_eq!(
        repo.git(&["log", "--all", "--grep", "hostile", "--format=%H"]),
        ""
    );
}

#[test]
fn resolve_a_fifo_where_the_conflicted_file_was_hangs_nothing_and_lands_nothing() {
    if !landlock() {
        return;
    }
    // Its explanation is a link to a file that names README.md: orch does not follow it.
    let named = {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.keep().join("names.txt");
        std::fs::write(&p, "README.md\n").expect("write");
        p
    };
    let repo = b_conflicts("fifo", &[&named]);
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = merge(&repo, "b");
    assert_eq!(code, 5, "{out}\n{err}");
    let reason = step_b(&out)["reason"].as_str().expect("reason").to_string();
    assert!(
        reason.contains("left something other than a file at `shared.txt`"),
        "{reason}"
    );
    nothing_landed(&repo, &main, &plan_b);
}

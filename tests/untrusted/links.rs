//! Writes that never follow an agent's symlinks, and checks
//! that fail closed ("Fail-open checks"). Each test is a hostile agent of
//! `tests/fixtures/agents/hostile_link_*.sh` against the real `orch`; a decoy directory outside
//! the repository (a stand-in for `$HOME`, with a `.bashrc`) must stay byte for byte as it was.

use std::path::{Path, PathBuf};

use super::landlock;
use super::support::{self, Repo, agent_at, disk_snapshot};

/// A decoy `$HOME` outside the repository: a `.bashrc` and a `.profile`.
fn decoy(repo: &Repo) -> PathBuf {
    let d = repo.outside("decoy-home");
    std::fs::create_dir_all(&d).expect("mkdir decoy");
    std::fs::write(d.join(".bashrc"), "# the user's own bashrc\n").expect("bashrc");
    std::fs::write(d.join(".profile"), "# the user's own profile\n").expect("profile");
    d
}

/// A repository whose main has the tracked directory `conf/` (a `.bashrc` with the branch's text,
/// and `settings`), a decoy HOME beside it, and one plan `p` of one task run by the fixture
/// `script` given the decoy, with `defaults` (and `plan` lines).
fn repo_with_conf(script: &str, defaults: &str, plan: &str) -> (Repo, PathBuf) {
    let repo = Repo::bare_minimum();
    let decoy = decoy(&repo);
    repo.write("conf/.bashrc", "echo branch text > /tmp/owned\n");
    repo.write("conf/settings", "kept\n");
    repo.write(
        "docs/plans/p.md",
        &support::one_task("P", "Change the settings"),
    );
    repo.manifest(&agent_at(script, &[&decoy]), "", defaults, &[("p", plan)]);
    repo.commit_all("plans");
    (repo, decoy)
}

/// What the reset must leave: `conf` a real directory again with the branch's files.
fn assert_conf_restored(tree: &Path) {
    let meta = std::fs::symlink_metadata(tree.join("conf")).expect("conf");
    assert!(
        meta.is_dir() && !meta.file_type().is_symlink(),
        "conf is not the branch's directory again: {meta:?}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("conf/.bashrc")).expect("conf/.bashrc"),
        "echo branch text > /tmp/owned\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("conf/settings")).expect("conf/settings"),
        "kept\n"
    );
}

/// The agent's change is saved where orch saves a failed attempt's leftovers: `conf` a symlink
/// to the decoy in the saved commit.
fn assert_saved(repo: &Repo, decoy: &Path) {
    let saved = "refs/orch/attempts/p/1.1/1";
    assert!(
        repo.git_ok(&["rev-parse", "--verify", "--quiet", saved]),
        "nothing saved under {saved}: {}",
        repo.refs()
    );
    let entry = repo.git(&["ls-tree", saved, "conf"]);
    assert!(entry.starts_with("120000 "), "conf in {saved}: {entry}");
    assert_eq!(
        repo.git(&["cat-file", "blob", &format!("{saved}:conf")]),
        decoy.display().to_string()
    );
}

fn fails_with_reset(repo: &Repo, decoy: &Path, tree: &Path) {
    let before = disk_snapshot(decoy);
    let main = repo.rev("main");
    let ev = repo.up_events(&[], 5);
    assert_eq!(support::named(&ev, "task_failed").len(), 1, "{ev:?}");
    assert_eq!(
        disk_snapshot(decoy),
        before,
        "orch wrote through the agent's link"
    );
    assert_conf_restored(tree);
    assert_saved(repo, decoy);
    assert_eq!(repo.rev("main"), main, "main moved");
    assert_eq!(
        repo.statuses("p"),
        [("1.1".to_string(), "failed".to_string())]
    );
}

#[test]
fn links_a_failed_attempts_reset_does_not_write_through_a_symlinked_directory() {
    let (repo, decoy) = repo_with_conf("hostile_link_reset.sh", "retries = 0", "");
    fails_with_reset(&repo, &decoy, &repo.worktree("p"));
}

#[test]
fn links_a_confined_agents_link_is_not_followed_by_the_reset() {
    if !landlock() {
        return;
    }
    let (repo, decoy) =
        repo_with_conf("hostile_link_reset.sh", "retries = 0\nsandbox = \"on\"", "");
    fails_with_reset(&repo, &decoy, &repo.worktree("p"));
}

#[test]
fn links_a_pool_slots_reset_does_not_write_through_a_symlinked_directory() {
    let (repo, decoy) =
        repo_with_conf("hostile_link_reset.sh", "retries = 0", "parallel_tasks = 2");
    fails_with_reset(&repo, &decoy, &repo.worktree("p+pool1"));
}

#[test]
fn links_copy_and_warm_into_a_new_pool_worktree_do_not_follow_a_committed_link() {
    let repo = Repo::bare_minimum();
    let decoy = decoy(&repo);
    let marks = repo.outside("marks");
    std::fs::create_dir_all(&marks).expect("mkdir marks");
    // The main work tree's `cache/`: an untracked file to copy and ignored build output to warm.
    repo.write(".gitignore", "/cache/local.env\n/cache/build/\n");
    repo.write("cache/local.env", "TOKEN=from-main\n");
    repo.write("cache/build/out.bin", "built\n");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Link\n- [ ] 1.1 Link the cache\n\n\
         ## Phase 2: Work\n- [ ] 2.1 First\n- [ ] 2.2 Second\n",
    );
    repo.manifest(
        &agent_at("hostile_link_copy.sh", &[&decoy, &marks]),
        "",
        "retries = 0\ncopy = [\"cache/local.env\"]\nwarm = [\"cache/build\"]",
        &[("p", "parallel_tasks = 2")],
    );
    repo.commit_all("plans");
    let before = disk_snapshot(&decoy);
    let main = repo.rev("main");
    let (_code, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    assert_eq!(
        disk_snapshot(&decoy),
        before,
        "orch copied into the decoy through the committed link\n{out}\n{err}"
    );
    // The link is never committed: `cache` is a directory above the files orch copies in
    // (`copy`, `warm`), and a link there would move them. Task 1.1 fails naming it, so no pool
    // worktree is ever made beneath it. (Before the files orch copies in were its own, the link
    // was committed and the new pool worktree's copy refused it.)
    assert!(
        repo.git(&["ls-tree", "plan/p", "cache"]).is_empty(),
        "a link at cache was committed\n{out}\n{err}"
    );
    let failed = support::named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{out}\n{err}");
    assert_eq!(failed[0]["task"], "1.1", "{out}\n{err}");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(
        error.contains("files it copies into each worktree") && error.contains("cache"),
        "{error}"
    );
    assert!(
        support::named(&ev, "task_finished").is_empty(),
        "{out}\n{err}"
    );
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// Removes, when dropped, the links a test's agent planted in orch's private directory (where
/// they would outlive the test's temp directory).
struct Planted(Vec<PathBuf>);

impl Drop for Planted {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.is_symlink() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Plan `p` of one task run by `hostile_link_plant.sh` (retried once), with `defaults`: the
/// decoy directory the links point into must stay as it was, and the run must end. The agent
/// plants at the locks of the status file and the ports where orch takes them (its private
/// directory, the paths computed as orch computes them) and where they lay before (beside the
/// files). Confined, the agent cannot write the status directory, the state directory nor orch's
/// private directory at all (it reports through its own directory).
fn plants_links(defaults: &str, confined: bool) {
    let repo = Repo::bare_minimum();
    let decoy = decoy(&repo);
    // Canonical, as orch names the directories whose locks it takes (they do not exist yet).
    let root = std::fs::canonicalize(repo.root()).expect("root");
    let old_lock = root.join(".orch/state/p/status.json.lock");
    let old_ports = root.join(".orch/state/ports.lock");
    let lock = orch::sandbox::private_lock_path(&old_lock).expect("status lock's place");
    let ports = orch::sandbox::private_lock_path(&old_ports).expect("ports lock's place");
    let _planted = Planted(vec![lock.clone(), ports.clone()]);
    repo.write("docs/plans/p.md", &support::one_task("P", "Plant links"));
    repo.manifest(
        &agent_at("hostile_link_plant.sh", &[&decoy, &lock, &ports]),
        "",
        &format!("retries = 1\n{defaults}"),
        &[("p", "")],
    );
    repo.commit_all("plans");
    let before = disk_snapshot(&decoy);
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(
        disk_snapshot(&decoy),
        before,
        "orch created a file through a planted link\n{out}\n{err}"
    );
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(support::named(&support::events(&out), "task_finished").is_empty());
    assert_eq!(repo.rev("main"), main, "main moved");
    if confined {
        // Neither the status directory, nor the state directory, nor orch's private directory
        // is the agent's to write: no link was planted.
        for p in [&lock, &ports, &old_lock, &old_ports] {
            assert!(
                !p.is_symlink(),
                "a confined agent planted a link at `{}`\n{out}\n{err}",
                p.display()
            );
        }
        return;
    }
    // Unconfined, the agent planted them all; what orch could not write through is named (the
    // status lock, where it took it to record the failure).
    for p in [&lock, &ports, &old_lock, &old_ports] {
        assert!(
            p.is_symlink(),
            "not planted: `{}`\n{out}\n{err}",
            p.display()
        );
    }
    assert!(
        format!("{out}{err}").contains(&format!("`{}` is a symbolic link", lock.display())),
        "{out}\n{err}"
    );
}

#[test]
fn links_dangling_links_at_the_status_lock_log_and_prompt_file_are_not_followed() {
    plants_links("", false);
}

#[test]
fn links_a_confined_agents_link_at_the_status_lock_is_not_followed() {
    if !landlock() {
        return;
    }
    plants_links("sandbox = \"on\"", true);
}

#[test]
fn links_a_link_planted_at_the_next_attempts_tmpdir_is_not_given_to_the_agent() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let decoy = decoy(&repo);
    let marks = repo.outside("marks");
    std::fs::create_dir_all(&marks).expect("mkdir marks");
    let tmpfile = repo.root().join(".orch/state/a/tmpdir");
    repo.write("docs/plans/a.md", &support::one_task("A", "Use the TMPDIR"));
    repo.write("docs/plans/b.md", &support::one_task("B", "Plant a link"));
    let a_agent = agent_at("hostile_link_tmp_wait.sh", &[&marks]);
    let b_agent = agent_at("hostile_link_tmp_plant.sh", &[&tmpfile, &decoy, &marks]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 1\nmax_agents = 4\n\n\
             [agents.a]\ncommand = {a_agent}\nsandbox = \"on\"\n\n\
             [agents.b]\ncommand = {b_agent}\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"b\"\n"
        ),
    );
    repo.commit_all("plans");
    let before = disk_snapshot(&decoy);
    let main = repo.rev("main");
    let (_code, out, err) = repo.run(&["up", "--json"]);
    assert!(
        marks.join("planted").exists(),
        "never planted\n{out}\n{err}"
    );
    assert_eq!(
        disk_snapshot(&decoy),
        before,
        "the confined agent wrote into the link's target through its TMPDIR\n{out}\n{err}"
    );
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/a/1.1.log")).unwrap_or_default();
    assert!(
        log.contains("wrote "),
        "attempt 2 never wrote to its TMPDIR\n{log}"
    );
    assert_eq!(repo.rev("main"), main, "main moved");
}

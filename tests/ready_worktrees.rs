//! Ready worktrees: the plan's `setup` also runs in task worktrees (`parallel_tasks` > 1), and
//! every worktree gets `ORCH_PORT`, a block of ports of its own, the same for its setup and its
//! agent. Through the real binary, with two agents that meet (so both task worktrees exist at
//! once).

use crate::support;

use std::collections::BTreeMap;

use support::{Repo, agent, events, named};

const TWO: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n";

/// Plan `p` with two independent tasks, `parallel_tasks = 2`, the recording setup (failing in
/// task worktrees when `fail`) and the meeting agent; returns the repository and the journal.
fn repo(fail: bool) -> (Repo, std::path::PathBuf) {
    let repo = Repo::builder().identity_in_config().build();
    let journal = repo.outside("journal");
    let meet = repo.outside("meet");
    std::fs::create_dir_all(&meet).expect("mkdir");
    let (j, m) = (journal.display().to_string(), meet.display().to_string());
    let mut setup_args = vec![j.as_str()];
    if fail {
        setup_args.push("fail");
    }
    repo.write("docs/plans/p.md", TWO);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 2\nretries = 0\nports = 5\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\nparallel_tasks = 2\nsetup = {}\n",
            agent("port_agent.sh", &[&j, &m, "30"]),
            agent("port_setup.sh", &setup_args),
        ),
    );
    repo.commit_all("plans");
    (repo, journal)
}

/// Journal lines `<who> <task> <port> <cwd>` by (who, task).
fn journal(path: &std::path::Path) -> BTreeMap<(String, String), (u16, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            Some((
                (f[0].to_string(), f[1].to_string()),
                (f[2].parse().ok()?, f[3].to_string()),
            ))
        })
        .collect()
}

#[test]
fn two_task_worktrees_both_run_setup_and_get_disjoint_port_blocks() {
    let (repo, path) = repo(false);
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let j = journal(&path);
    let get = |who: &str, task: &str| {
        j.get(&(who.to_string(), task.to_string()))
            .unwrap_or_else(|| panic!("no `{who} {task}` in {j:?}"))
            .clone()
    };
    let (plan_port, plan_dir) = get("setup", "plan");
    let (s1, d1) = get("setup", "1.1");
    let (s2, d2) = get("setup", "1.2");
    let (a1, w1) = get("agent", "1.1");
    let (a2, w2) = get("agent", "1.2");
    // Setup ran in each task worktree, where each agent then worked, with the same port.
    assert_ne!(d1, d2);
    assert_eq!((s1, d1.as_str()), (a1, w1.as_str()));
    assert_eq!((s2, d2.as_str()), (a2, w2.as_str()));
    assert!(plan_dir.ends_with(".orch/worktrees/p"), "{plan_dir}");
    // Three worktrees at once, three disjoint blocks of 5 ports.
    let mut starts = [plan_port, s1, s2];
    starts.sort_unstable();
    assert!(
        starts[1] >= starts[0] + 5 && starts[2] >= starts[1] + 5,
        "{starts:?}"
    );
    // The two agents met (their worktrees existed at once), and both tasks landed.
    for task in ["1.1", "1.2"] {
        assert!(
            repo.outside("meet").join(format!("{task}.met")).exists(),
            "{task} met"
        );
    }
    let log = repo.git(&["log", "--format=%s", "plan/p"]);
    assert!(
        log.contains("p 1.1: One") && log.contains("p 1.2: Two"),
        "{log}"
    );
}

#[test]
fn a_setup_that_fails_in_a_task_worktree_fails_that_attempt_with_its_output() {
    let (repo, _path) = repo(true);
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    let ev = events(&out);
    let failed = named(&ev, "task_failed");
    assert!(!failed.is_empty(), "{out}");
    for f in &failed {
        let error = f["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the setup command `sh ")
                && error.contains("failed in the task worktree (exit status 3: cannot install the dependencies for"),
            "{f}"
        );
    }
    // The agents never ran.
    assert!(
        !std::fs::read_to_string(repo.outside("journal"))
            .unwrap_or_default()
            .contains("agent ")
    );
}

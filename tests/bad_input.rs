//! Bad input a user can really produce, run against the real binary in a real repository. Each
//! case of [`CASES`] asserts the documented exit code, a message naming the file and line (or the
//! plan, task or branch), and that nothing on disk changed: every file of the repository (`.git`
//! and the state directory included), compared before and after, and every ref. The agent cases
//! at the end assert the documented outcome instead: the task's status, the exit code, and no
//! process left behind.

mod support;

use std::time::{Duration, Instant};

use support::{Repo, agent, disk_snapshot, pids_with_env, process_alive, wait};

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n";

/// Lines 1–6; the first `[[plan]]` is at line 7.
const HEAD: &str = "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n";

/// Plan `p` at lines 7–9, then `more` from line 10.
fn with_p(more: &str) -> String {
    format!("{HEAD}[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{more}")
}

/// One plan at lines 7–9 named `name`, with `extra` lines from line 10.
fn named(name: &str, extra: &str) -> String {
    format!("{HEAD}[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/p.md\"\n{extra}")
}

/// A second plan `q` (on `q.md`) with the given lines, from line 10.
fn plan_q(file_text: &'static str, extra: &str) -> (String, Vec<(&'static str, Vec<u8>)>) {
    (
        with_p(&format!(
            "\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\n{extra}"
        )),
        vec![("docs/plans/q.md", file_text.as_bytes().to_vec())],
    )
}

struct Case {
    name: &'static str,
    /// `check` or `up`.
    command: &'static str,
    manifest: String,
    /// Files written and committed besides `plans.toml` and `docs/plans/p.md`.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Run after the commit (a dirty tree, a foreign branch...).
    setup: fn(&Repo),
    code: i32,
    /// Each must appear in stderr (or stdout).
    expect: &'static [&'static str],
}

fn none(_: &Repo) {}

fn case(
    name: &'static str,
    command: &'static str,
    manifest: String,
    code: i32,
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        command,
        manifest,
        files: Vec::new(),
        setup: none,
        code,
        expect,
    }
}

fn big_plan() -> Vec<u8> {
    let mut s = String::from("# Big\n");
    for p in 1..=500 {
        s.push_str(&format!("\n## Phase {p}: Part {p}\n"));
        for t in 1..=100 {
            s.push_str(&format!(
                "- [ ] {p}.{t} Task {t} of phase {p}, padded so the file is large: {}\n",
                "x".repeat(40)
            ));
        }
    }
    s.into_bytes()
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let mut v = vec![
        // Malformed TOML.
        case(
            "toml: unclosed table header",
            "check",
            "[defaults\nagent = \"a\"\n".into(),
            2,
            &["plans.toml:1:10", "unclosed table"],
        ),
        case(
            "toml: unterminated string",
            "check",
            format!("{HEAD}[[plan]]\nname = \"p\nfile = \"docs/plans/p.md\"\n"),
            2,
            &["plans.toml:8:"],
        ),
        case(
            "toml: duplicate key",
            "check",
            with_p("name = \"again\"\n"),
            2,
            &["plans.toml:10:", "duplicate key"],
        ),
        case(
            "toml: missing `=`",
            "check",
            format!("{HEAD}[[plan]]\nname \"p\"\n"),
            2,
            &["plans.toml:8:"],
        ),
        case(
            "toml: not UTF-8",
            "check",
            String::new(),
            2,
            &["plans.toml:2:13", "not valid UTF-8"],
        ),
        // Unknown keys.
        case(
            "unknown top-level key",
            "check",
            format!("foo = 1\n{}", with_p("")),
            2,
            &["plans.toml:1:1", "unknown key `foo` at the top level"],
        ),
        case(
            "unknown key in [defaults]",
            "check",
            with_p("").replacen("agent = \"a\"\n", "agent = \"a\"\ntiemout = \"1h\"\n", 1),
            2,
            &[
                "plans.toml:3:1",
                "unknown key `tiemout`",
                "did you mean `timeout`?",
            ],
        ),
        case(
            "unknown key in an agent",
            "check",
            with_p("").replacen(
                "command = [\"true\"]\n",
                "command = [\"true\"]\nmoed = \"task\"\n",
                1,
            ),
            2,
            &["plans.toml:6:1", "unknown key `moed` in `[agents.a]`"],
        ),
        case(
            "unknown key in a plan",
            "check",
            with_p("prio = 3\n"),
            2,
            &["plans.toml:10:1", "unknown key `prio` in `[[plan]]`"],
        ),
        // Wrong types.
        case(
            "max_agents is a string",
            "check",
            with_p("").replacen(
                "agent = \"a\"\n",
                "agent = \"a\"\nmax_agents = \"four\"\n",
                1,
            ),
            2,
            &[
                "plans.toml:3:14",
                "`defaults.max_agents` must be an integer",
            ],
        ),
        case(
            "agent command is a shell string",
            "check",
            with_p("").replacen("[\"true\"]", "\"claude -p --yes\"", 1),
            2,
            &[
                "plans.toml:5:11",
                "must be an array of strings",
                "never shell strings",
            ],
        ),
        case(
            "priority is a string",
            "check",
            with_p("priority = \"high\"\n"),
            2,
            &["plans.toml:10:12", "`plan.priority` must be an integer"],
        ),
        case(
            "depends_on is a string",
            "check",
            with_p("depends_on = \"q\"\n"),
            2,
            &["plans.toml:10:14", "`plan.depends_on`"],
        ),
        case(
            "plan is a table, not an array",
            "check",
            format!("{HEAD}[plan]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"),
            2,
            &["plans.toml:7:", "`plan` must be an array of tables"],
        ),
        case(
            "malformed timeout",
            "check",
            with_p("").replacen("agent = \"a\"\n", "agent = \"a\"\ntimeout = \"soon\"\n", 1),
            2,
            &["plans.toml:3:", "timeout"],
        ),
        // Plans and their files.
        case(
            "missing plan file",
            "check",
            named("p", "").replace("p.md", "missing.md"),
            2,
            &[
                "plans.toml:9:8",
                "plan file `docs/plans/missing.md` does not exist",
            ],
        ),
        case(
            "plan without a name",
            "check",
            format!("{HEAD}[[plan]]\nfile = \"docs/plans/p.md\"\n"),
            2,
            &["plans.toml:7:", "name"],
        ),
        case(
            "duplicate plan names",
            "check",
            with_p("\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"),
            2,
            &[
                "plans.toml:12:8",
                "duplicate plan name `p` (first defined at line 8)",
            ],
        ),
        case(
            "cross-plan cycle",
            "check",
            with_p(
                "depends_on = [\"q\"]\n\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/p.md\"\ndepends_on = [\"p:1\"]\n",
            ),
            2,
            &["plans.toml:", "dependency cycle", "`p`", "`q`"],
        ),
        case(
            "depends on an unknown plan",
            "check",
            with_p("depends_on = [\"nope\"]\n"),
            2,
            &["plans.toml:10:", "unknown plan `nope`"],
        ),
        case(
            "depends on a missing phase",
            "check",
            with_p(
                "\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/p.md\"\ndepends_on = [\"p:7\"]\n",
            ),
            2,
            &["plans.toml:14:15", "plan `p` has no phase 7"],
        ),
        case(
            "depends on a missing task",
            "check",
            with_p(
                "\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/p.md\"\ndepends_on = [\"p:1.9\"]\n",
            ),
            2,
            &["plans.toml:14:15", "plan `p` has no task 1.9"],
        ),
        case(
            "plan agent not defined",
            "check",
            with_p("agent = \"nope\"\n"),
            2,
            &["plans.toml:10:", "`nope`"],
        ),
        // Names that would become paths or refs.
        case(
            "plan name with ../",
            "check",
            named("../x", ""),
            2,
            &["plans.toml:8:8", "plan name `../x` is not allowed"],
        ),
        case(
            "plan name with /",
            "check",
            named("a/b", ""),
            2,
            &["plans.toml:8:8", "plan name `a/b` is not allowed"],
        ),
        case(
            "plan name with a space",
            "check",
            named("a b", ""),
            2,
            &["plans.toml:8:8", "plan name `a b` is not allowed"],
        ),
        case(
            "plan name with a leading -",
            "check",
            named("-x", ""),
            2,
            &[
                "plans.toml:8:8",
                "plan name `-x` is not allowed",
                "begin with a letter or a digit",
            ],
        ),
        case(
            "branch a..b",
            "check",
            with_p("branch = \"a..b\"\n"),
            2,
            &["plans.toml:10:10", "branch `a..b` of plan `p` is not valid"],
        ),
        case(
            "branch x.lock",
            "check",
            with_p("branch = \"x.lock\"\n"),
            2,
            &[
                "plans.toml:10:10",
                "branch `x.lock` of plan `p` is not valid",
            ],
        ),
        case(
            "branch with @{",
            "check",
            with_p("branch = \"a@{1}\"\n"),
            2,
            &[
                "plans.toml:10:10",
                "branch `a@{1}` of plan `p` is not valid",
            ],
        ),
        case(
            "branch with a trailing /",
            "check",
            with_p("branch = \"plan/\"\n"),
            2,
            &[
                "plans.toml:10:10",
                "branch `plan/` of plan `p` is not valid",
            ],
        ),
        // Plan files.
        case(
            "task cycle in a plan",
            "check",
            String::new(),
            2,
            &[
                "docs/plans/q.md:4",
                "dependency cycle: `q:1.1` → `q:1.2` → `q:1.1`",
            ],
        ),
        case(
            "task depends on a missing task",
            "check",
            String::new(),
            2,
            &[
                "docs/plans/q.md:4",
                "depends on `9.9`, which is not a task of this plan",
            ],
        ),
        case(
            "duplicate task id",
            "check",
            String::new(),
            2,
            &["docs/plans/q.md:5", "1.1"],
        ),
        case(
            "plan file not UTF-8",
            "check",
            String::new(),
            2,
            &["docs/plans/q.md", "not valid UTF-8", "line 4"],
        ),
        case(
            "a 6 MB plan file",
            "check",
            String::new(),
            0,
            &["plan `q` (docs/plans/q.md): 500 phases, 50000 tasks"],
        ),
        // `orch up` preflight.
        case(
            "target branch that does not exist",
            "up",
            with_p("").replacen("agent = \"a\"\n", "agent = \"a\"\ntarget = \"nosuch\"\n", 1),
            2,
            &["target branch `nosuch` does not exist"],
        ),
        case(
            "agent program missing",
            "up",
            with_p("").replacen("[\"true\"]", "[\"no-such-agent-xyz\", \"{{ prompt }}\"]", 1),
            2,
            &["program `no-such-agent-xyz` was not found"],
        ),
        case(
            "broken prompt template",
            "up",
            with_p(""),
            2,
            &["template `orch/templates/task.md`:1:"],
        ),
        case(
            "uncommitted plan file",
            "up",
            with_p(""),
            4,
            &["plan file `docs/plans/p.md` of plan `p` differs from its version on `main`"],
        ),
        case(
            "foreign branch plan/p",
            "up",
            with_p(""),
            4,
            &["branch `plan/p`", "plan `p`"],
        ),
        case(
            "foreign directory at the worktree path",
            "up",
            with_p(""),
            4,
            &[".orch/worktrees/p` exists and is not a worktree of this repository"],
        ),
    ];
    let mut set = |name: &str, f: &dyn Fn(&mut Case)| {
        let c = v.iter_mut().find(|c| c.name == name).expect("case");
        f(c);
    };
    set("toml: not UTF-8", &|c| {
        c.files
            .push(("plans.toml", b"[defaults]\nagent = \"caf\xe9\"\n".to_vec()));
    });
    let q = |text: &'static str| plan_q(text, "");
    set("task cycle in a plan", &|c| {
        (c.manifest, c.files) =
            q("# Q\n\n## Phase 1: W\n- [ ] 1.1 A (depends: 1.2)\n- [ ] 1.2 B (depends: 1.1)\n");
    });
    set("task depends on a missing task", &|c| {
        (c.manifest, c.files) = q("# Q\n\n## Phase 1: W\n- [ ] 1.1 A (depends: 9.9)\n");
    });
    set("duplicate task id", &|c| {
        (c.manifest, c.files) = q("# Q\n\n## Phase 1: W\n- [ ] 1.1 A\n- [ ] 1.1 B\n");
    });
    set("plan file not UTF-8", &|c| {
        (c.manifest, _) = q("");
        c.files = vec![(
            "docs/plans/q.md",
            b"# Q\n\n## Phase 1: W\n- [ ] 1.1 caf\xe9\n".to_vec(),
        )];
    });
    set("a 6 MB plan file", &|c| {
        (c.manifest, _) = q("");
        c.files = vec![("docs/plans/q.md", big_plan())];
    });
    set("broken prompt template", &|c| {
        c.files
            .push(("orch/templates/task.md", b"Task {{ task_id }\n".to_vec()));
    });
    set("uncommitted plan file", &|c| {
        c.setup = |r| {
            r.write(
                "docs/plans/p.md",
                "# P\n\n## Phase 1: Work\n- [ ] 1.1 Changed\n",
            )
        };
    });
    set("foreign branch plan/p", &|c| {
        c.setup = |r| {
            r.git(&["branch", "plan/p"]);
        };
    });
    set("foreign directory at the worktree path", &|c| {
        c.setup = |r| r.write(".orch/worktrees/p/notes.txt", "mine\n");
    });
    v
}

/// Runs orch with its output in files outside the repository (a pipe nobody reads would stall a
/// command that prints a lot), with the test deadline.
fn run_to_files(repo: &Repo, command: &str) -> (i32, String, String) {
    let out = tempfile::NamedTempFile::new().expect("stdout file");
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let mut cmd = repo.orch(&[command]);
    cmd.stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"));
    let status = wait(cmd.spawn().expect("spawn orch")).status;
    let read = |f: &tempfile::NamedTempFile| {
        String::from_utf8_lossy(&std::fs::read(f.path()).expect("read output")).into_owned()
    };
    (status.code().unwrap_or(-1), read(&out), read(&err))
}

fn run_case(c: &Case) -> Result<(), String> {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", PLAN);
    repo.write("plans.toml", &c.manifest);
    for (path, bytes) in &c.files {
        let p = repo.root().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }
    repo.commit_all("plans");
    (c.setup)(&repo);
    let disk = disk_snapshot(repo.root());
    let refs = repo.refs();
    let started = Instant::now();
    let (code, out, err) = run_to_files(&repo, c.command);
    let took = started.elapsed();
    let all = format!("{out}{err}");
    let mut problems = Vec::new();
    if code != c.code {
        problems.push(format!("exit code {code}, expected {}", c.code));
    }
    for fragment in c.expect {
        if !all.contains(fragment) {
            problems.push(format!("output lacks `{fragment}`"));
        }
    }
    if all.contains("panicked") {
        problems.push("orch panicked".into());
    }
    if took > Duration::from_secs(20) {
        problems.push(format!("took {took:?}"));
    }
    if repo.refs() != refs {
        problems.push("refs changed".into());
    }
    let after = disk_snapshot(repo.root());
    if after != disk {
        let changed: Vec<_> = after.symmetric_difference(&disk).take(5).collect();
        problems.push(format!("files changed: {changed:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "case `{}` (orch {}):\n  {}\n  stdout: {}\n  stderr: {}",
            c.name,
            c.command,
            problems.join("\n  "),
            out.chars().take(600).collect::<String>(),
            err.chars().take(1500).collect::<String>()
        ))
    }
}

#[test]
fn bad_input_gets_its_exit_code_and_location_and_changes_nothing() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|c| run_case(c).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A repository with plan `p` (`text`) run by agent `a` (`command`, TOML) with `defaults`.
fn agent_repo(text: &str, command: &str, defaults: &str) -> Repo {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", text);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n[agents.a]\ncommand = {command}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

/// An agent (TOML command) that deletes its worktree.
const DELETE_WORKTREE: &str = "[\"sh\", \"-c\", \"rm -rf \\\"$ORCH_WORKTREE\\\"\"]";

/// A pid (as an agent wrote it) of a live process.
fn alive(pid: &str) -> bool {
    pid.parse().is_ok_and(process_alive)
}

/// Processes whose environment names this repository's worktree (an agent or its children).
fn agents_left(repo: &Repo) -> Vec<u32> {
    let needle = format!("ORCH_WORKTREE={}", repo.worktree("p").display());
    pids_with_env(|kv| kv == needle.as_bytes())
}

#[test]
fn an_agent_that_exits_at_once_completes_its_task_with_an_empty_commit() {
    let repo = agent_repo(PLAN, "[\"true\"]", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed");
    let commit = t["commit"].as_str().expect("commit").to_string();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "plan/p"]),
        "p 1.1: Something"
    );
    assert_eq!(repo.git(&["rev-parse", "plan/p"]), commit);
    // Empty: the same tree as its parent.
    assert_eq!(
        repo.git(&["rev-parse", &format!("{commit}^{{tree}}")]),
        repo.git(&["rev-parse", &format!("{commit}~1^{{tree}}")])
    );
}

#[test]
fn a_plan_with_no_tasks_is_accepted_and_completes_with_nothing_to_do() {
    let repo = agent_repo("# Notes\n\nNo phases, no tasks.\n", "[\"true\"]", "");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 phases, 0 tasks"), "{out}");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("completed  0/0"), "{out}");
}

#[test]
fn a_hanging_agent_is_timed_out_and_killed() {
    let pids = tempfile::NamedTempFile::new().expect("pids");
    let cmd = agent("hang.sh", &[pids.path().to_str().expect("utf8")]);
    let repo = agent_repo(PLAN, &cmd, "timeout = \"1s\"\ngrace = \"1s\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed");
    assert!(
        t["lastError"].as_str().expect("error").contains("1s"),
        "{t}"
    );
    let pid = std::fs::read_to_string(pids.path()).expect("pid");
    assert!(!alive(pid.trim()), "the agent is still running");
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn an_agent_that_ignores_sigterm_and_forks_is_killed_with_its_children() {
    let pids = tempfile::tempdir().expect("dir");
    let file = pids.path().join("pids");
    let cmd = agent("stubborn.sh", &[file.to_str().expect("utf8")]);
    let repo = agent_repo(PLAN, &cmd, "timeout = \"1s\"\ngrace = \"1s\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "failed");
    let both = std::fs::read_to_string(&file).expect("pids");
    assert_eq!(both.lines().count(), 2);
    for pid in both.lines() {
        assert!(!alive(pid), "pid {pid} is still running");
    }
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn an_agent_printing_20_mb_does_not_block_orch_and_its_log_has_it_all() {
    let cmd = "[\"sh\", \"-c\", \"head -c 20000000 /dev/zero | tr '\\\\0' x; echo; echo END\"]";
    let repo = agent_repo(PLAN, cmd, "");
    let out_file = tempfile::NamedTempFile::new().expect("out");
    let mut c = repo.orch(&["up"]);
    c.stdout(out_file.reopen().expect("reopen"));
    let mut child = c.spawn().expect("spawn");
    // orch's peak memory, sampled while it runs.
    let mut peak_kb = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "orch did not finish");
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = wait(child);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    let log = std::fs::read(repo.root().join(".orch/logs/p/1.1.log")).expect("log");
    assert!(log.len() > 20_000_000, "{}", log.len());
    assert!(String::from_utf8_lossy(&log[log.len() - 2000..]).contains("END"));
    assert!(peak_kb < 100_000, "orch peaked at {peak_kb} kB");
}

#[test]
fn an_agent_printing_past_log_max_keeps_the_beginning_and_the_end_of_it() {
    // 3 MiB of numbered lines under a cap of 1 MiB: the first half MiB and the last half MiB
    // are kept, with one line saying how much was dropped between them.
    let cmd = "[\"sh\", \"-c\", \"echo BEGIN; seq 1 400000; echo END\"]";
    let repo = agent_repo(PLAN, cmd, "log_max = \"1MiB\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).expect("log");
    let output: usize = log
        .lines()
        .filter(|l| !l.starts_with("=== orch"))
        .map(|l| l.len() + 1)
        .sum();
    assert!(output <= (1 << 20) + 2, "{output} bytes of output kept");
    let begin = log.find("BEGIN\n1\n2\n3\n").expect("the beginning is kept");
    let end = log.find("399999\n400000\nEND\n").expect("the end is kept");
    let dropped = log
        .find("bytes of output dropped here (log_max = 1048576")
        .expect("a line says what was dropped");
    assert!(begin < dropped && dropped < end, "{}", &log[..2000]);
    // The attempt's footer still follows.
    let footer = log
        .rfind(": exit status 0 ===")
        .expect("the attempt's footer");
    assert!(end < footer, "{}", &log[log.len() - 500..]);
}

/// Regression: a task whose agent deleted the worktree stayed `in_progress` in the status file
/// (with the pid of a dead agent) although the run reported it failed, and the next task's error
/// blamed `/usr/bin/sh` for the missing directory.
#[test]
fn an_agent_that_deletes_its_worktree_fails_its_task_clearly() {
    let repo = agent_repo(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Delete it\n- [ ] 1.2 Then this (depends: 1.1)\n- [ ] 1.3 Unrelated (depends: 1.1)\n",
        DELETE_WORKTREE,
        "max_agents = 1\n",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["orchRun"].is_null(), "{t}");
    assert!(
        t["lastError"]
            .as_str()
            .expect("error")
            .contains("cannot commit task `1.1`"),
        "{t}"
    );
    assert_eq!(repo.task("p", "1.2")["status"], "pending");
    // No half state: main untouched, the branch at its base, nothing running.
    assert_eq!(
        repo.git(&["rev-parse", "plan/p"]),
        repo.git(&["rev-parse", "main"])
    );
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn a_missing_worktree_directory_is_reported_not_blamed_on_the_agent_program() {
    // Two independent tasks, one agent at a time: the first deletes the worktree, the second
    // must be told the worktree is gone.
    let repo = agent_repo(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Delete it\n- [ ] 1.2 Independent\n",
        DELETE_WORKTREE,
        "max_agents = 1\n",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.2");
    assert_eq!(t["status"], "failed", "{t}");
    let e = t["lastError"].as_str().expect("error");
    assert!(e.contains("of plan `p` is gone"), "{e}");
    assert_eq!(repo.task("p", "1.1")["status"], "failed");
}

#[test]
fn a_locked_worktree_is_reused_and_stays_locked() {
    let repo = agent_repo(PLAN, "[\"true\"]", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    repo.git(&["worktree", "lock", "--reason", "mine", ".orch/worktrees/p"]);
    repo.write(
        "docs/plans/p.md",
        &format!("{PLAN}\n## Phase 2: More\n- [ ] 2.1 More work\n"),
    );
    repo.commit_all("more");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("worktree reused"), "{out}");
    assert_eq!(repo.task("p", "2.1")["status"], "completed");
    assert!(
        repo.git(&["worktree", "list", "--porcelain"])
            .contains("locked mine")
    );
}

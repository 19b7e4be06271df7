//! Bad input a user can really produce, run against the real binary in a real repository. Each
//! case of [`CASES`] asserts the documented exit code, a message naming the file and line (or the
//! plan, task or branch), and that nothing on disk changed: every file of the repository (`.git`
//! and the state directory included), compared before and after, and every ref. Agents that
//! misbehave are in `tests/bad_agents.rs`.

use crate::support;

use std::time::{Duration, Instant};

use support::{Repo, disk_snapshot, wait};

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
            "allow_protected leaves the repository",
            "up",
            with_p("allow_protected = [\"plans.toml\", \"../elsewhere/plans.toml\"]\n"),
            2,
            &[
                "plans.toml:10:34",
                "`plan.allow_protected` entry `../elsewhere/plans.toml` leaves the repository",
            ],
        ),
        case(
            "allow_protected is not a glob",
            "check",
            with_p("").replacen(
                "agent = \"a\"\n",
                "agent = \"a\"\nallow_protected = [\"docs/[\"]\n",
                1,
            ),
            2,
            &[
                "plans.toml:3:20",
                "`defaults.allow_protected` entry `docs/[` is not a valid glob",
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

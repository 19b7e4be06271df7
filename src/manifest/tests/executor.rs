//! The `executor` key and the Slurm tables: resolution plan over agent over defaults, and bad
//! values reported at their location.

use super::*;

#[test]
fn executor_resolves_plan_over_agent_over_defaults_and_slurm_tables_merge() {
    use crate::manifest::ExecutorKind;
    let repo = Repo::new();
    let m = repo
        .load(
            r#"[defaults]
executor = "slurm"

[slurm]
partition = "batch"
account = "proj-1"
time_limit = "90m"
cpus = 2
memory = "8G"
sbatch_args = ["--qos=high", "--constraint", "avx2"]
poll = "2s"

[agents.here]
command = ["sh", "agent.sh"]
executor = "local"

[[plan]]
name = "a"
file = "docs/a.md"
slurm = { cpus = 16, memory = "64G" }

[[plan]]
name = "b"
file = "docs/b.md"
agent = "here"

[[plan]]
name = "c"
file = "docs/c.md"
agent = "here"
executor = "slurm"
"#,
        )
        .expect("valid");
    assert_eq!(m.defaults.executor, ExecutorKind::Slurm);
    assert_eq!(m.slurm_poll, Duration::from_secs(2));
    let a = m.plan("a").expect("a");
    assert_eq!(a.executor, ExecutorKind::Slurm);
    assert_eq!(a.slurm.partition.as_deref(), Some("batch"));
    assert_eq!(a.slurm.account.as_deref(), Some("proj-1"));
    assert_eq!(a.slurm.time_limit, Some(Duration::from_secs(5400)));
    assert_eq!(
        (a.slurm.cpus, a.slurm.memory.as_deref()),
        (Some(16), Some("64G"))
    );
    assert_eq!(a.slurm.sbatch_args, ["--qos=high", "--constraint", "avx2"]);
    let b = m.plan("b").expect("b");
    assert_eq!(
        b.executor,
        ExecutorKind::Local,
        "the agent's executor wins over defaults"
    );
    assert_eq!(
        (b.slurm.cpus, b.slurm.memory.as_deref()),
        (Some(2), Some("8G"))
    );
    assert_eq!(
        m.plan("c").expect("c").executor,
        ExecutorKind::Slurm,
        "the plan's wins"
    );
    assert!(m.uses_slurm());

    let plain = repo
        .load("[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n")
        .expect("valid");
    assert_eq!(plain.plans[0].executor, ExecutorKind::Local);
    assert!(!plain.uses_slurm());
    assert_eq!(plain.slurm_poll, Duration::from_secs(5));
}

#[test]
fn executor_and_slurm_keys_report_bad_values_at_their_location() {
    let repo = Repo::new();
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let cases: &[(String, usize, usize, &str)] = &[
        (
            "[defaults]\nexecutor = \"kubernetes\"\n".to_string(),
            2,
            12,
            "`defaults.executor` must be \"local\", \"slurm\", \"ssh\" or \"container\", found \"kubernetes\"",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nexecutor = \"k8s\"\n".to_string(),
            3,
            12,
            "`agents.x.executor` must be \"local\", \"slurm\", \"ssh\" or \"container\"",
        ),
        (
            format!("{plan}executor = 1\n"),
            4,
            12,
            "`plan.executor` must be a string",
        ),
        (
            "[slurm]\npartiton = \"batch\"\n".to_string(),
            2,
            1,
            "unknown key `partiton` in `slurm`",
        ),
        (
            "[slurm]\npartition = \"a b\"\n".to_string(),
            2,
            13,
            "`slurm.partition` \"a b\" is not a Slurm partition name",
        ),
        (
            "[slurm]\naccount = \"\"\n".to_string(),
            2,
            11,
            "`slurm.account` \"\" is not a Slurm account name",
        ),
        (
            "[slurm]\ntime_limit = \"30s\"\n".to_string(),
            2,
            14,
            "`slurm.time_limit` \"30s\" is under a minute",
        ),
        (
            "[slurm]\ntime_limit = \"soon\"\n".to_string(),
            2,
            14,
            "`slurm.time_limit`",
        ),
        (
            "[slurm]\ncpus = 0\n".to_string(),
            2,
            8,
            "`slurm.cpus` must be at least 1, found 0",
        ),
        (
            "[slurm]\nmemory = \"lots\"\n".to_string(),
            2,
            10,
            "`slurm.memory` \"lots\" is not a Slurm memory size",
        ),
        (
            "[slurm]\nmemory = \"8GG\"\n".to_string(),
            2,
            10,
            "is not a Slurm memory size",
        ),
        (
            "[slurm]\nsbatch_args = \"--qos=high\"\n".to_string(),
            2,
            15,
            "`slurm.sbatch_args` must be an array of strings",
        ),
        (
            "[slurm]\nsbatch_args = [\"qos\"]\n".to_string(),
            2,
            16,
            "`slurm.sbatch_args` must begin with an option, found \"qos\"",
        ),
        (
            "[slurm]\nsbatch_args = [\"--qos=high\", \"--output=/tmp/x\"]\n".to_string(),
            2,
            30,
            "element \"--output=/tmp/x\" sets `--output`, which orch sets itself",
        ),
        (
            "[slurm]\nsbatch_args = [\"--wrap\", \"rm -rf /\"]\n".to_string(),
            2,
            16,
            "sets `--wrap`, which orch sets itself: orch runs the agent's argv, never a shell string",
        ),
        (
            "[slurm]\nsbatch_args = [\"--mem-per-cpu=2G\"]\n".to_string(),
            2,
            16,
            "sets memory: use `memory` in `[slurm]`",
        ),
        (
            "[slurm]\npoll = \"0s\"\n".to_string(),
            2,
            8,
            "`slurm.poll` must be greater than zero",
        ),
        (
            format!("{plan}slurm = {{ poll = \"1s\" }}\n"),
            4,
            11,
            "unknown key `poll` in `plan.slurm`",
        ),
        (
            format!("{plan}slurm = {{ cpus = -2 }}\n"),
            4,
            18,
            "`plan.slurm.cpus` must be at least 1, found -2",
        ),
        (
            format!("{plan}slurm = \"big\"\n"),
            4,
            9,
            "`plan.slurm` must be a table",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}

#[test]
fn a_plan_mode_agent_in_a_container_is_refused_at_the_executor() {
    let repo = Repo::new();
    // Through the defaults' executor (at the plan's name), the agent's, the plan's own.
    for (defaults, agent, plan, at) in [
        ("executor = \"container\"\n", "", "", (11, 8)),
        ("", "executor = \"container\"\n", "", (11, 8)),
        ("", "", "executor = \"container\"\n", (12, 12)),
    ] {
        let text = format!(
            "[defaults]\n{defaults}agent = \"p\"\nimage = \"localhost/x\"\n\n[agents.p]\ncommand = [\"sh\", \"agent.sh\"]\nmode = \"plan\"\n{agent}\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n{plan}"
        );
        let d = repo.one_error(
            &text,
            at.0,
            at.1,
            "runs its plan-mode agent `p` in a container",
        );
        assert!(d.to_string().contains("task-mode agent"), "{d}");
    }
    // A task-mode agent there: accepted.
    let text = "[defaults]\nexecutor = \"container\"\nagent = \"p\"\nimage = \"localhost/x\"\n\n[agents.p]\ncommand = [\"sh\", \"agent.sh\"]\nmode = \"task\"\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    repo.load(text).unwrap_or_else(|e| panic!("{e}"));
}

/// A container plan keeps its code in a container: no task worktrees on this machine
/// (`parallel_tasks` above 1, from the plan or the defaults), and no plan outside a container
/// builds on it (here, on a host, in a Slurm job; a whole-plan or a task dependency), since its
/// work would be merged there and run. A container plan building on another is accepted.
#[test]
fn a_container_plans_code_stays_in_containers() {
    let repo = Repo::new();
    let head = "[defaults]\nagent = \"p\"\nimage = \"localhost/x\"\n\n[agents.p]\ncommand = [\"sh\", \"agent.sh\"]\n\n[[host]]\nname = \"h\"\nssh = \"h\"\ndir = \"/tmp/h\"\n\n";
    let c = "[[plan]]\nname = \"c\"\nfile = \"docs/c.md\"\nexecutor = \"container\"\n";
    // (the second plan, the line and column of the error, what it says)
    for (l, at, says) in [
        (
            "[[plan]]\nname = \"l\"\nfile = \"docs/b.md\"\ndepends_on = [\"c\"]\n",
            (21, 15),
            "plan `l` depends on `c`, which runs in a container, but `l` runs on this machine",
        ),
        (
            "[[plan]]\nname = \"l\"\nfile = \"docs/b.md\"\ndepends_on = [\"c:1.1\"]\n",
            (21, 15),
            "but `l` runs on this machine",
        ),
        (
            "[[plan]]\nname = \"l\"\nfile = \"docs/b.md\"\nexecutor = \"ssh\"\nhosts = [\"h\"]\ndepends_on = [\"c\"]\n",
            (23, 15),
            "but `l` runs on a `[[host]]`",
        ),
        (
            "[[plan]]\nname = \"l\"\nfile = \"docs/b.md\"\nexecutor = \"slurm\"\ndepends_on = [\"c\"]\n",
            (22, 15),
            "but `l` runs in a Slurm job",
        ),
    ] {
        let text = format!("{head}{c}\n{l}");
        let d = repo.one_error(&text, at.0, at.1, says);
        assert!(d.to_string().contains("executor = \"container\""), "{d}");
    }
    for (plan, at) in [
        (format!("{c}parallel_tasks = 2\n"), (17, 18)),
        (c.to_string(), (14, 8)),
    ] {
        let defaults = if at.0 == 14 {
            "parallel_tasks = 3\n"
        } else {
            ""
        };
        let text = format!(
            "{}{}",
            head.replacen("[defaults]\n", &format!("[defaults]\n{defaults}"), 1),
            plan
        );
        let at = if at.0 == 14 { (15, 8) } else { at };
        repo.one_error(&text, at.0, at.1, "with `parallel_tasks =");
    }
    let ok = format!(
        "{head}{c}\n[[plan]]\nname = \"l\"\nfile = \"docs/b.md\"\nexecutor = \"container\"\ndepends_on = [\"c\"]\nparallel = 2\n"
    );
    repo.load(&ok).unwrap_or_else(|e| panic!("{e}"));
}

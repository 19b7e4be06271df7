//! `[[host]]` tables and `hosts = [...]`: resolution plan over agent over every host, and bad
//! values reported at their location.

use super::*;

const HOSTS: &str = r#"[[host]]
name = "build1"
ssh = "ci@build1.example.com"
port = 2222
slots = 4
dir = "/srv/orch"

[[host]]
name = "build2"
ssh = "build2"
sandbox = "off"
"#;

#[test]
fn hosts_resolve_plan_over_agent_over_every_host() {
    use crate::manifest::ExecutorKind;
    let repo = Repo::new();
    repo.write("docs/d.md", "# plan\n");
    let m = repo
        .load(&format!(
            r#"{HOSTS}
[defaults]
executor = "ssh"

[agents.pinned]
command = ["sh", "agent.sh"]
hosts = ["build2"]

[agents.here]
command = ["sh", "agent.sh"]
executor = "local"

[[plan]]
name = "a"
file = "docs/a.md"

[[plan]]
name = "b"
file = "docs/b.md"
agent = "pinned"

[[plan]]
name = "c"
file = "docs/c.md"
agent = "pinned"
hosts = ["build1", "build1"]

[[plan]]
name = "d"
file = "docs/d.md"
agent = "here"
"#
        ))
        .expect("valid");
    assert_eq!(m.hosts.len(), 2);
    let b1 = &m.hosts[0];
    assert_eq!(
        (b1.name.as_str(), b1.ssh.as_str(), b1.port, b1.slots),
        ("build1", "ci@build1.example.com", Some(2222), 4)
    );
    assert_eq!(
        (b1.dir.as_str(), b1.confined, b1.line),
        ("/srv/orch", true, 1)
    );
    let b2 = &m.hosts[1];
    assert_eq!((b2.port, b2.slots, b2.confined), (None, 1, false));
    assert_eq!(b2.dir, crate::manifest::DEFAULT_HOST_DIR);
    let hosts = |p: &str| m.plan(p).expect("plan").hosts.clone();
    assert_eq!(m.plan("a").expect("a").executor, ExecutorKind::Ssh);
    assert_eq!(hosts("a"), ["build1", "build2"], "every host");
    assert_eq!(hosts("b"), ["build2"], "the agent's");
    assert_eq!(hosts("c"), ["build1"], "the plan's, once each");
    assert_eq!(m.plan("d").expect("d").executor, ExecutorKind::Local);
    assert!(hosts("d").is_empty(), "a local plan has none");
}

#[test]
fn bad_host_input_is_refused_at_its_location() {
    let repo = Repo::new();
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let host = "[[host]]\nname = \"h1\"\nssh = \"h1\"\n";
    let cases: &[(String, usize, usize, &str)] = &[
        (
            format!("{host}slots = 0\n"),
            4,
            9,
            "`host.slots` must be at least 1, found 0",
        ),
        (
            "[[host]]\nname = \"h1\"\nslots = 2\n".to_string(),
            1,
            1,
            "a `[[host]]` table needs `ssh`",
        ),
        (
            "[[host]]\nssh = \"h1\"\n".to_string(),
            1,
            1,
            "a `[[host]]` table needs `name`",
        ),
        (
            format!("{host}\n[[host]]\nname = \"h1\"\nssh = \"h2\"\n"),
            6,
            8,
            "host `h1` is defined twice",
        ),
        (
            format!("{host}\n[defaults]\nexecutor = \"ssh\"\n\n{plan}hosts = [\"h1\", \"h9\"]\n"),
            11,
            16,
            "`plan.hosts` names unknown host `h9`",
        ),
        (
            format!("{host}\n[agents.x]\ncommand = [\"x\"]\nhosts = [\"nope\"]\n"),
            7,
            10,
            "`agents.x.hosts` names unknown host `nope`",
        ),
        (
            format!("{host}\n{plan}hosts = [\"h1\"]\n"),
            8,
            9,
            "plan `a` has `hosts` but runs with executor \"local\"",
        ),
        (
            format!("[defaults]\nexecutor = \"ssh\"\n\n{plan}"),
            2,
            12,
            "`executor = \"ssh\"` needs at least one `[[host]]`",
        ),
        (
            "[[host]]\nname = \"h1\"\nssh = \"-oProxyCommand=touch /tmp/x\"\n".to_string(),
            3,
            7,
            "`host.ssh` `-oProxyCommand=touch /tmp/x` is not an ssh destination",
        ),
        (
            format!("{host}port = 70000\n"),
            4,
            8,
            "`host.port` must be 1 to 65535, found 70000",
        ),
        (
            format!("{host}dir = \"orch\"\n"),
            4,
            7,
            "`host.dir` `orch` is not allowed",
        ),
        (
            format!("{host}sandbox = \"auto\"\n"),
            4,
            11,
            "`host.sandbox` must be \"on\" or \"off\"",
        ),
        (
            "[[host]]\nname = \"../x\"\nssh = \"h\"\n".to_string(),
            2,
            8,
            "host name `../x` is not allowed",
        ),
        (
            format!("{host}user = \"ci\"\n"),
            4,
            1,
            "unknown key `user` in `[[host]]`",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}

#[test]
fn a_plan_mode_agent_on_a_host_is_refused_at_the_plans_executor() {
    let repo = Repo::new();
    // Through the defaults' executor (at the plan's name), the agent's, the plan's own.
    for (defaults, agent, plan, at) in [
        ("executor = \"ssh\"\n", "", "", (22, 8)),
        ("", "executor = \"ssh\"\n", "", (22, 8)),
        ("", "", "executor = \"ssh\"\n", (23, 12)),
    ] {
        let text = format!(
            "{HOSTS}\n[defaults]\n{defaults}agent = \"p\"\n\n[agents.p]\ncommand = [\"sh\", \"agent.sh\"]\nmode = \"plan\"\n{agent}\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n{plan}"
        );
        let d = repo.one_error(
            &text,
            at.0,
            at.1,
            "runs its plan-mode agent `p` on a `[[host]]`",
        );
        assert!(d.to_string().contains("task-mode agent"), "{d}");
    }
    // A task-mode agent there, or a plan-mode agent here or in a Slurm job: accepted.
    for (mode, executor) in [("task", "ssh"), ("plan", "local"), ("plan", "slurm")] {
        let text = format!(
            "{HOSTS}\n[defaults]\nexecutor = \"{executor}\"\nagent = \"p\"\n\n[agents.p]\ncommand = [\"sh\", \"agent.sh\"]\nmode = \"{mode}\"\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n"
        );
        repo.load(&text)
            .unwrap_or_else(|e| panic!("{mode} {executor}: {e}"));
    }
}

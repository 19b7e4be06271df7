//! The network of an ssh plan's attempts, which orch's proxy does not confine on the host: such
//! a plan runs only when its agent says `network = "open"` (the lead turning the rule off), and
//! without it `orch check` and `orch up` refuse it before anything is made.

use crate::support;

use super::remote::{plan, up};
use support::{Repo, sshd};

/// The manifest of one plan `p` on the lab's host, its agent writing a file per task:
/// `executor = "ssh"` said in `at` (`defaults`, `agent` or `plan`), with `defaults` and `agent`
/// added to those tables (their `network`).
fn one_plan_on_a_host(lab: &sshd::Lab, at: &str, defaults: &str, agent: &str) -> String {
    let ssh = |here: &str| {
        if here == at {
            "executor = \"ssh\"\n"
        } else {
            ""
        }
    };
    format!(
        "{}[defaults]\nretries = 0\nagent = \"a\"\n{}{defaults}\n\
         [agents.a]\ncommand = [\"sh\", \"-c\", \"echo \\\"$ORCH_TASK\\\" > \\\"task-$ORCH_TASK.txt\\\"\"]\nreport = \"exit\"\n{}{agent}\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{}",
        lab.host_toml(2),
        ssh("defaults"),
        ssh("agent"),
        ssh("plan"),
    )
}

/// Issue 62's rule on a host: orch's proxy does not run there, so a plan on a `[[host]]` runs
/// only when its agent's network is `open`, the lead's word. Unset (wherever `executor` is
/// said), `confined`, `none`, or an agent's `confined` over `[defaults]`' `open`: `orch check`
/// says so at the plan's line, and `orch up` refuses (exit 6, naming the plan, its executor
/// and the fix) before anything is made (no branch, no worktree, nothing in `.git`, nothing on
/// the host). With `open` (in `[defaults]`, on the agent, or `ORCH_NETWORK=open`) it runs there
/// and lands.
#[test]
fn a_plan_on_a_host_runs_only_with_network_open_and_nothing_is_made_without() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let open = "network = \"open\"\n";
    // A fallback agent runs its attempts there with its own network: it needs its own `open`.
    let fallback = |b: &str| {
        format!(
            "network = \"open\"\nfallback = [\"b\"]\n\n[agents.b]\ncommand = [\"true\"]\nreport = \"exit\"\n{b}"
        )
    };
    let refused = [
        ("defaults", "", "".to_string(), "a"),
        ("agent", "", "".to_string(), "a"),
        ("plan", "", "".to_string(), "a"),
        ("defaults", "", "network = \"confined\"\n".to_string(), "a"),
        ("plan", "", "network = \"none\"\n".to_string(), "a"),
        (
            "defaults",
            open,
            "network = \"confined\"\n".to_string(),
            "a",
        ),
        ("plan", "", fallback(""), "b"),
        ("defaults", "", fallback("network = \"none\"\n"), "b"),
    ];
    for (at, defaults, agent, named) in refused {
        let agent = agent.as_str();
        let what = format!("executor in {at}, [defaults] {defaults:?}, agent {agent:?}");
        let repo = Repo::builder().identity_in_config().build();
        repo.write("docs/plans/p.md", &plan(1));
        let toml = one_plan_on_a_host(&lab, at, defaults, agent);
        let line = toml
            .lines()
            .position(|l| l == "name = \"p\"")
            .expect("the plan's line")
            + 1;
        repo.write("plans.toml", &toml);
        repo.commit_all("plans");
        let mut check = repo.orch(&["check"]);
        check.env("PATH", lab.path());
        let (code, out, err) = repo.run_cmd(&mut check);
        assert_eq!(code, 2, "{what}: orch check\n{out}\n{err}");
        assert!(
            err.contains(&format!("plans.toml:{line}: error"))
                && err.contains("plan `p`")
                && err.contains(&format!("agent `{named}`")),
            "{what}: {err}"
        );
        let before = repo.git_dir_listing();
        let (code, out, err) = up(&repo, &lab);
        assert_eq!(code, 6, "{what}\nstdout:\n{out}\nstderr:\n{err}");
        for part in [
            "plan `p`",
            &format!("agent `{named}`"),
            "`executor = \"ssh\"`",
            "`network = \"open\"`",
        ] {
            assert!(err.contains(part), "{what}: {part} in\n{err}");
        }
        assert!(
            repo.git(&["branch", "--list", "plan/p"]).trim().is_empty(),
            "{what}: a branch was made"
        );
        assert_eq!(repo.git_dir_listing(), before, "{what}: .git changed");
        assert!(!repo.root().join(".orch").exists(), "{what}: .orch made");
        assert!(
            !lab.server("h1").dir.join("attempts").exists(),
            "{what}: something ran on the host"
        );
    }
    // With `open`: in `[defaults]`, on the agent (the executor said on the plan), or from
    // `ORCH_NETWORK` (which stands in for `[defaults]`' key).
    let runs: [(&str, &str, &str, Option<&str>); 3] = [
        ("defaults", open, "", None),
        ("plan", "", open, None),
        ("agent", "", "", Some("open")),
    ];
    for (at, defaults, agent, env) in runs {
        let what =
            format!("executor in {at}, [defaults] {defaults:?}, agent {agent:?}, env {env:?}");
        let repo = Repo::builder().identity_in_config().build();
        repo.write("docs/plans/p.md", &plan(2));
        repo.write("plans.toml", &one_plan_on_a_host(&lab, at, defaults, agent));
        repo.commit_all("plans");
        let mut check = repo.orch(&["check"]);
        check.env("PATH", lab.path());
        if let Some(v) = env {
            check.env("ORCH_NETWORK", v);
        }
        let (code, out, err) = repo.run_cmd(&mut check);
        assert_eq!(code, 0, "{what}: orch check\n{out}\n{err}");
        let mut cmd = repo.orch(&["up", "--json"]);
        cmd.env("PATH", lab.path());
        if let Some(v) = env {
            cmd.env("ORCH_NETWORK", v);
        }
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "{what}\nstdout:\n{out}\nstderr:\n{err}");
        let ev = support::events(&out);
        let started = support::named(&ev, "run_started");
        assert_eq!(started.len(), 1, "{what}: {out}");
        assert_eq!(started[0]["network"], "open", "{what}: {started:?}");
        let on_host = support::named(&ev, "task_on_host");
        assert_eq!(on_host.len(), 2, "{what}: {out}");
        let statuses = repo.statuses("p");
        assert_eq!(statuses.len(), 2, "{what}: {statuses:?}");
        assert!(
            statuses.iter().all(|(_, s)| s == "completed"),
            "{what}: {statuses:?}"
        );
        assert_eq!(
            repo.git(&["show", "plan/p:task-1.2.txt"]).trim(),
            "1.2",
            "{what}"
        );
    }
}

//! The real Claude Code and Codex presets where a plan may live and run other than the home
//! repository on this machine: a plan of another repository (a `[[repo]]` beside the home one)
//! and a plan run on a `[[host]]` (`executor = "ssh"`, a real `sshd` on loopback).
//! Also a plan run in a container (`executor = "container"`) whose image has no client: this
//! machine's is mounted (Claude Code, opencode) or the start refused (Codex, Gemini CLI).
//! Each cell is a real `orch up` of a one-task plan through the real CLI (`ORCH_TEST_CLIS`, pinned by
//! `.ci/agent-clis`) against the fake model API of `tests/support/fake_api/`, then its landing
//! with `orch merge`: the task completed by the agent's own `orch task done` (its note), its
//! file committed on the plan branch of the plan's own repository and merged into that
//! repository's `main`, nothing in the other.
//!
//! On the host the client gets what a host user's environment gives it (sshd's `SetEnv`: the
//! API's address and key, a HOME of the test's own with the client's settings, the CLIs on
//! PATH), never `orch up`'s; and its network is `open` there (orch refuses to confine a
//! network it does not run: exit 6), its files confined by the sandbox as locally.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::clis::{RUN_TIMEOUT, client_env, clis_with, logs};
use support::fake_api::{Behaviour, FakeApi};
use support::three::{Three, repo_table};
use support::{Repo, code_out_err, sshd, toml_array, wait_within};

const PLAN: &str = "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n";

/// What the plan's agent left: its task completed by its own report, `alpha.txt` committed on
/// `r`'s plan branch `p` and merged into `r`'s `main` by `orch merge` (run from `home`).
fn landed(home: &Repo, r: &Repo, agent: &str, context: &dyn Fn() -> String) {
    let t = r.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{t}\n{}", context());
    assert_eq!(
        t["notes"],
        "wrote alpha.txt",
        "not reported by {agent}: {t}\n{}",
        context()
    );
    let text = r.git(&["show", "plan/p:alpha.txt"]);
    assert_eq!(
        text.trim_end(),
        "alpha.txt written by task 1.1",
        "{}",
        context()
    );
    let (code, out, err) = home.run(&["merge", "p"]);
    assert_eq!(code, 0, "orch merge: {out}{err}\n{}", context());
    let merged = r.git(&["show", "main:alpha.txt"]);
    assert_eq!(merged.trim_end(), "alpha.txt written by task 1.1");
}

/// A plan `p` of the repository `api` beside the home one, run by the preset `agent` locally
/// (the sandbox and the network as the preset's defaults: confined).
fn in_another_repository(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api_server = FakeApi::start(Behaviour::Normal);
    let t = Three::new();
    t.home.write("plans/p.md", PLAN);
    let api_main = t.api.rev("main");
    t.home.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\n{}\n[[plan]]\nname = \"p\"\nrepo = \"api\"\nfile = \"plans/p.md\"\n",
            repo_table("api", &Three::rel(&t.api))
        ),
    );
    t.home.commit_all("plans");
    let home_main = t.home.rev("main");
    let mut cmd = t.home.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api_server, t.home.home());
    cmd.env_remove("ORCH_SANDBOX");
    let context = up_to_the_end(&mut cmd, &t.home, &api_server);
    landed(&t.home, &t.api, agent, &context);
    assert_ne!(
        t.api.rev("main"),
        api_main,
        "api's main moved by the landing"
    );
    assert_eq!(t.home.rev("main"), home_main, "the home repository moved");
    assert!(
        !support::three::exists(&t.home, "plan/p"),
        "a plan branch in the home repository"
    );
}

/// Runs `cmd` (an `orch up` of `repo`) to its end, which must be exit 0; what a failure
/// message shows of it (its output, `repo`'s logs, what the fake API was asked).
fn up_to_the_end<'a>(
    cmd: &mut Command,
    repo: &'a Repo,
    api: &'a FakeApi,
) -> impl Fn() -> String + 'a {
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = move || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nlogs:\n{}\nfake API requests: {:?}",
            logs(repo),
            api.requests()
        )
    };
    assert_eq!(code, 0, "{}", context());
    context
}

/// `SetEnv` of sshd for what [`client_env`] gives a local run: the host user's environment.
fn host_env(clis: &Path, api: &FakeApi, home: &Path) -> String {
    let mut probe = Command::new("true");
    client_env(&mut probe, clis, api, home);
    let mut line = String::from("SetEnv");
    for (k, v) in probe.get_envs() {
        let (Some(k), Some(v)) = (k.to_str(), v.and_then(|v| v.to_str())) else {
            continue;
        };
        assert!(!v.contains(['"', ' ']), "{k}={v}: sshd_config quoting");
        line.push_str(&format!(" {k}={v}"));
    }
    line
}

/// A plan `p` of the home repository run by the preset `agent` on the host `h1`.
fn on_a_host(agent: &str) {
    if !sshd::available() {
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api_server = FakeApi::start(Behaviour::Normal);
    let host_home = tempfile::tempdir().expect("host home");
    let lab = sshd::Lab::start_with(&["h1"], &host_env(&clis, &api_server, host_home.path()));
    let repo = Repo::builder()
        .timeout(RUN_TIMEOUT)
        .identity_in_config()
        .build();
    repo.write("plans/p.md", PLAN);
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nagent = \"{agent}\"\nexecutor = \"ssh\"\nnetwork = \"open\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\n",
            lab.host_toml(1)
        ),
    );
    repo.commit_all("plans");
    // orch up's own environment has no key, no API address and no CLI: only the host's does.
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
    for k in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "CODEX_HOME",
    ] {
        cmd.env_remove(k);
    }
    let context = up_to_the_end(&mut cmd, &repo, &api_server);
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).unwrap_or_default();
    assert!(
        log.contains("=== orch: on host `h1` ==="),
        "the task ran on h1: {}",
        context()
    );
    landed(&repo, &repo, agent, &context);
    assert!(
        !api_server.requests().is_empty(),
        "the client on the host reached the fake API"
    );
}

#[test]
fn claude_preset_runs_a_plan_of_another_repository() {
    in_another_repository("claude");
}

#[test]
fn codex_preset_runs_a_plan_of_another_repository() {
    in_another_repository("codex");
}

#[test]
fn claude_preset_runs_a_plan_on_an_ssh_host() {
    on_a_host("claude");
}

#[test]
fn codex_preset_runs_a_plan_on_an_ssh_host() {
    on_a_host("codex");
}

/// A repository whose plan `p` (one task) is run by the preset `agent` in a container of the
/// tests' image, `defaults` added to its `[defaults]`.
fn container_repo(agent: &str, defaults: &str) -> Repo {
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write("plans/p.md", PLAN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\nexecutor = \"container\"\nimage = \"{}\"\n{defaults}\n\
             [[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\n",
            support::podman::IMAGE
        ),
    );
    repo.commit_all("plans");
    repo
}

/// A plan `p` run by the preset `agent` in a container of the tests' image (`executor =
/// "container"`), its files and its network confined as the preset's defaults are (the proxy's
/// sockets in the container's namespace reach the fake API). The image has no client: orch
/// mounts this machine's, read-only, and says so.
fn in_a_container(agent: &str) {
    if !support::podman::available() || !support::landlock() {
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api_server = FakeApi::start(Behaviour::Normal);
    let repo = container_repo(agent, "");
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api_server, repo.home());
    cmd.env_remove("ORCH_SANDBOX");
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nlogs:\n{}\nfake API requests: {:?}",
            logs(&repo),
            api_server.requests()
        )
    };
    assert_eq!(code, 0, "{}", context());
    assert!(
        err.contains(&format!(
            "plan `p` runs its client `{agent}` from this machine"
        )) && err.contains("mounted read-only into its container"),
        "{}",
        context()
    );
    assert!(out.contains("\"sandbox\":\"on\""), "{}", context());
    landed(&repo, &repo, agent, &context);
    assert!(!api_server.requests().is_empty(), "{}", context());
    assert_eq!(support::podman::mounting(repo.root()), Vec::<String>::new());
}

#[test]
fn claude_preset_runs_a_plan_in_a_container() {
    in_a_container("claude");
}

/// Codex's and Gemini CLI's programs on this machine are scripts for `node`, which the tests'
/// image lacks: refused before anything runs, with the fix, nothing made.
#[test]
fn a_client_the_image_lacks_and_this_machine_has_as_a_script_is_refused_at_start() {
    if !support::podman::available() {
        return;
    }
    for agent in ["codex", "gemini"] {
        let Some(clis) = clis_with(agent) else {
            return;
        };
        let api_server = FakeApi::start(Behaviour::Normal);
        let repo = container_repo(agent, "network = \"none\"\n");
        let mut cmd = repo.orch(&["up", "--json"]);
        client_env(&mut cmd, &clis, &api_server, repo.home());
        let (code, out, err) = code_out_err(&wait_within(
            cmd.spawn().expect("spawn orch up"),
            RUN_TIMEOUT,
            "orch up",
        ));
        assert_eq!(code, 2, "{agent}: {out}{err}");
        assert!(
            err.contains(&format!("plan `p` runs `{agent}` in a container"))
                && err.contains("is a script")
                && err.contains(&format!("install `{agent}` in the image")),
            "{agent}: {err}"
        );
        assert!(
            !support::three::exists(&repo, "plan/p"),
            "{agent}: a branch was made"
        );
        assert!(api_server.requests().is_empty(), "{agent}");
        assert_eq!(support::podman::mounting(repo.root()), Vec::<String>::new());
    }
}

#[test]
fn opencode_preset_runs_a_plan_in_a_container() {
    in_a_container("opencode");
}

/// The real Claude Code in a container plan with a `[[service]]` (the tests' PostgreSQL, in
/// the plan's network) whose check needs the service: the task's check asks the database on
/// the address orch gives it and passes; the work lands.
#[test]
fn claude_preset_runs_a_container_plan_whose_check_needs_its_service() {
    if !support::podman::postgres_available() || !support::landlock() {
        return;
    }
    let Some(clis) = clis_with("claude") else {
        return;
    };
    let api_server = FakeApi::start(Behaviour::Normal);
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write("plans/p.md", PLAN);
    let check = toml_array(&[
        "sh",
        "-c",
        "psql -X -v ON_ERROR_STOP=1 -h \"$ORCH_SERVICE_DB_HOST\" -p \"$ORCH_SERVICE_DB_PORT\" -U postgres -tAc 'select 41 + 1' | grep -qx 42",
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"claude\"\nexecutor = \"container\"\nimage = \"{}\"\ncheck = {check}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\nservices = [\"db\"]\n\n\
             [[service]]\nname = \"db\"\nimage = \"{}\"\nenv = {{ PGPORT = \"${{ORCH_SERVICE_PORT}}\" }}\n\
             ready = [\"pg_isready\", \"-h\", \"127.0.0.1\", \"-U\", \"postgres\", \"-q\"]\nready_timeout = \"60s\"\n",
            support::podman::POSTGRES,
            support::podman::POSTGRES
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api_server, repo.home());
    cmd.env_remove("ORCH_SANDBOX");
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nlogs:\n{}\nfake API requests: {:?}",
            logs(&repo),
            api_server.requests()
        )
    };
    assert_eq!(code, 0, "{}", context());
    // The check ran (and passed: a failing one fails the task, which `landed` refuses).
    let events = support::events(&out);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "task_checking" && e["task"] == "1.1"),
        "the check did not run: {}",
        context()
    );
    landed(&repo, &repo, "claude", &context);
    assert!(!api_server.requests().is_empty(), "{}", context());
    assert_eq!(support::podman::mounting(repo.root()), Vec::<String>::new());
}

//! The real agent CLIs, end to end: `orch up` with `agent = "claude"` (or `"codex"`,
//! `"gemini"`, `"aider"`, `"opencode"`, `"qwen"`, `"copilot"`) and nothing else configured runs a
//! two-task plan through the real Claude Code (Codex, Gemini CLI, aider, opencode, Qwen Code,
//! GitHub Copilot CLI) CLI, installed by `.ci/agent-clis` at pinned versions (the npm registry;
//! aider from PyPI into a venv), against the fake model API of
//! `tests/support/fake_api/` on 127.0.0.1. Each run has its own HOME (and CODEX_HOME), so
//! nothing of the machine's configuration leaks in.
//!
//! `ORCH_TEST_CLIS=DIR` names the installation (`DIR/bin/claude`, `DIR/bin/codex`,
//! `DIR/bin/gemini`, `DIR/bin/aider`); without it these tests skip, unless
//! `ORCH_REQUIRE_AGENT_CLIS=1` (set by `.ci/run`) makes that a failure.
//!
//! What each CLI prints for the outcomes orch must tell apart: tests/agents_real_prints.rs.

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::clis::{RUN_TIMEOUT, client_env, clis_with, logs, up_in_fresh_home};
use support::fake_api::{Behaviour, FakeApi, USAGE_INPUT};
use support::{Repo, code_out_err, read_status, task_in, wait_within};

const PLAN: &str = "# Two files\n\n## Phase 1: Files\n\
- [ ] 1.1 Create `alpha.txt`\n\
- [ ] 1.2 Create `beta.txt` (depends: 1.1)\n";

/// A repository with a two-task plan run by the preset `agent`, nothing else configured.
fn two_task_repo(agent: &str) -> Repo {
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write("docs/plans/two.md", PLAN);
    repo.write(
        "run-tests.sh",
        "echo passed > tests-ran.txt\necho 'all tests passed'\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\n\n[[plan]]\nname = \"two\"\nfile = \"docs/plans/two.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

/// The presets whose client, unconfined, refuses to run the repository's tests (the preset lets
/// its shell run orch alone): their two-task run starts each task with the model asking for
/// `sh run-tests.sh`, which must be refused, and the task still completes by the agent's report.
const REFUSES_TESTS_UNCONFINED: [&str; 4] = ["claude", "opencode", "qwen", "copilot"];

/// `orch up` of the two-task plan through the preset `agent`, not confined, which must end with
/// both tasks completed (by the agent's own report, for a preset with `report = "orch"`; by its
/// exit 0, for aider's `report = "exit"`), each task's file committed on the plan branch, exit
/// 0. (Confined: `each_client_runs_confined_in_a_fresh_home_with_only_an_api_key`.)
fn two_tasks_through(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let reports = orch::manifest::presets()[agent].report == orch::manifest::ReportMode::Orch;
    let refuses = REFUSES_TESTS_UNCONFINED.contains(&agent);
    let api = FakeApi::start(if refuses {
        Behaviour::RunsFirst("sh run-tests.sh".into())
    } else {
        Behaviour::Normal
    });
    let repo = two_task_repo(agent);
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nfake API requests: {:?}\ntool results: {:#?}",
            logs(&repo),
            api.requests(),
            api.tool_results()
        )
    };
    assert_eq!(code, 0, "orch up through {agent}: {}", context());

    // Both tasks completed, each by the agent's own `orch task done` (its note is recorded).
    let status = read_status(&repo.root().join(".orch/state/two/status.json"))
        .unwrap_or_else(|| panic!("no status file: {}", context()));
    for (id, file) in [("1.1", "alpha.txt"), ("1.2", "beta.txt")] {
        let t = task_in(&status, id);
        assert_eq!(t["status"], "completed", "task {id}: {t}\n{}", context());
        if !reports {
            continue;
        }
        assert_eq!(
            t["notes"],
            format!("wrote {file}"),
            "task {id} was not reported by the agent: {t}\n{}",
            context()
        );
        // Its usage, from the client's own figures (Copilot CLI's from the usage file, which a
        // confined attempt may write).
        assert!(
            t["orchUsage"]["inputTokens"].as_u64().unwrap_or(0) >= USAGE_INPUT,
            "task {id} has no usage: {t}\n{}",
            context()
        );
    }

    // Each task's file is committed on the plan branch, by its own commit.
    for (id, file) in [("1.1", "alpha.txt"), ("1.2", "beta.txt")] {
        let text = repo.git(&["show", &format!("plan/two:{file}")]);
        assert_eq!(
            text.trim_end(),
            format!("{file} written by task {id}"),
            "{}",
            context()
        );
        let subject = repo.git(&["log", "-1", "--format=%s", "plan/two", "--", file]);
        assert!(
            subject.starts_with(&format!("two {id}:")),
            "{subject}\n{}",
            context()
        );
        // Only the task's file: the client left nothing of its own in the worktree.
        let files = repo.git(&[
            "show",
            "--format=",
            "--name-only",
            &format!("plan/two^{{/^two {id}:}}"),
        ]);
        assert_eq!(files.trim(), file, "{}", context());
    }

    if !reports {
        // aider: one model call per task, no tool calls.
        assert_eq!(api.model_calls(), 2, "{}", context());
        assert!(api.tool_results().is_empty(), "{}", context());
        return;
    }

    // The tests were refused (each time the model asked), and never ran.
    let results = api.tool_results();
    let (tests, results): (Vec<_>, Vec<_>) = results
        .into_iter()
        .partition(|r| r.call.contains("run-tests.sh"));
    if refuses {
        assert!(!tests.is_empty(), "the model never asked: {}", context());
        assert!(
            tests.iter().all(|r| r.error),
            "unconfined, {agent} ran the tests: {tests:?}\n{}",
            context()
        );
        assert!(!repo.git_ok(&["cat-file", "-e", "plan/two:tests-ran.txt"]));
    }
    // The fake model saw every other tool call succeed: the file written, the report accepted.
    let failed: Vec<_> = results.iter().filter(|r| r.error).collect();
    assert!(
        failed.is_empty(),
        "tool calls failed: {failed:#?}\n{}",
        context()
    );
    let reports: Vec<_> = results
        .iter()
        .filter(|r| r.call.contains(" task done "))
        .collect();
    assert_eq!(reports.len(), 2, "{}", context());
    for r in reports {
        let orch = env!("CARGO_BIN_EXE_orch");
        assert!(
            r.call.starts_with(orch),
            "the report runs orch by its path: {r:?}"
        );
    }
}

#[test]
fn claude_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("claude");
}

#[test]
fn codex_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("codex");
}

#[test]
fn gemini_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("gemini");
}

#[test]
fn opencode_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("opencode");
}

#[test]
fn qwen_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("qwen");
}

#[test]
fn copilot_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("copilot");
}

/// A fresh HOME that holds only an API key (CI, a container): each client, confined by orch,
/// makes no state directory there (the user's HOME is not writable for it), runs in the private
/// state orch made for the attempt (gone with it), and completes its task by its own report,
/// with its usage. Claude Code, Codex, Gemini CLI, opencode, Qwen Code and Copilot CLI first run
/// the repository's tests through their shell tool, which their presets allow confined: the
/// script's file is in the task's one commit beside the task's file, and nothing else is.
#[test]
fn each_client_runs_confined_in_a_fresh_home_with_only_an_api_key() {
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    for agent in [
        "claude", "codex", "gemini", "aider", "opencode", "qwen", "copilot",
    ] {
        let Some(run) = up_in_fresh_home(agent) else {
            continue;
        };
        let support::clis::FreshRun {
            repo,
            code,
            out,
            err,
            new_in_home,
            api,
        } = &run;
        let context = || {
            format!(
                "{agent}: exit {code}\nstdout:\n{out}\nstderr:\n{err}\ntool results: {:#?}",
                api.tool_results()
            )
        };
        assert_eq!(*code, 0, "{}", context());
        // (Codex here is an `[agents.codex]` table of the user's, not the preset; aider's preset
        // runs no shell, and has no confined form of its own.)
        assert!(
            ["codex", "aider"].contains(&agent)
                || err.contains(&format!("agent `{agent}`: confined by orch")),
            "{}",
            context()
        );
        assert!(out.contains("\"sandbox\":\"on\""), "{}", context());
        // Its network confined too, with nothing in `network_allow`: the fake API it was pointed
        // at is its own endpoint, reached directly or through orch's proxy, never refused.
        assert!(out.contains("\"network\":\"confined\""), "{}", context());
        let log = String::from_utf8_lossy(&repo.read(".orch/logs/one/1.1.log")).into_owned();
        assert!(
            !log.lines()
                .any(|l| l.contains("network: refused 127.0.0.1:")),
            "{agent}: the fake API was refused\n{log}"
        );
        assert_eq!(
            repo.statuses("one"),
            [("1.1".to_string(), "completed".to_string())],
            "{}",
            context()
        );
        let finished = support::named(&support::events(out), "task_finished").len();
        assert_eq!(finished, 1, "{}", context());
        // The attempt's private client state is gone with it.
        assert!(
            !repo.root().join(".orch/state/.clients/one/1.1-1").exists(),
            "{}",
            context()
        );
        // Its work in the task's one commit: the file the task names, and the tests' mark.
        assert_eq!(
            repo.git(&["show", "plan/one:alpha.txt"]).trim_end(),
            "alpha.txt written by task 1.1",
            "{}",
            context()
        );
        let runs_tests = support::clis::RUNS_TESTS_CONFINED.contains(&agent);
        if runs_tests {
            assert_eq!(
                repo.git(&["show", "plan/one:tests-ran.txt"]).trim_end(),
                "passed",
                "{}",
                context()
            );
        }
        let subject = repo.git(&["log", "-1", "--format=%s", "plan/one"]);
        assert!(subject.starts_with("one 1.1:"), "{subject}\n{}", context());
        let mut files: Vec<String> = repo
            .git(&["show", "--format=", "--name-only", "plan/one"])
            .lines()
            .map(str::to_string)
            .collect();
        files.sort();
        let want: &[&str] = if runs_tests {
            &["alpha.txt", "tests-ran.txt"]
        } else {
            &["alpha.txt"]
        };
        assert_eq!(files, want, "{}", context());
        // By its own report (aider reports by its exit), through orch by its path, every tool
        // call the model made succeeded, and its usage counted.
        if orch::manifest::presets()[agent].report == orch::manifest::ReportMode::Orch {
            let t = repo.task("one", "1.1");
            assert_eq!(t["notes"], "wrote alpha.txt", "{t}\n{}", context());
            assert!(
                t["orchUsage"]["inputTokens"].as_u64().unwrap_or(0) >= USAGE_INPUT,
                "no usage: {t}\n{}",
                context()
            );
            let results = api.tool_results();
            assert!(results.iter().all(|r| !r.error), "{}", context());
            let reports: Vec<_> = results
                .iter()
                .filter(|r| r.call.contains(" task done "))
                .collect();
            assert_eq!(reports.len(), 1, "{}", context());
            assert!(
                reports[0].call.starts_with(env!("CARGO_BIN_EXE_orch")),
                "the report runs orch by its path: {:?}",
                reports[0]
            );
        }
        // Nothing of the client's in HOME, but what orch's preflight (`--version`, `--help`,
        // unconfined, before any agent runs) makes there: Gemini CLI's `~/.gemini` (temporary
        // files of its `projects.json`), opencode's empty XDG directories and log, Copilot
        // CLI's unpacked package in `~/.cache/copilot`. No session of a confined agent.
        if ["opencode", "copilot"].contains(&agent) {
            let sessions = preflight_only(repo.home());
            assert!(sessions.is_empty(), "{agent} left {sessions:?} in HOME");
            continue;
        }
        for p in new_in_home {
            let preflight = |e: &std::fs::DirEntry| {
                e.file_name().to_string_lossy().starts_with("projects.json")
            };
            assert!(
                agent == "gemini"
                    && p.ends_with(".gemini")
                    && std::fs::read_dir(p).is_ok_and(|d| d.flatten().all(|e| preflight(&e))),
                "{agent} left {} in HOME",
                p.display()
            );
        }
    }
}

/// What in `home` is not what the preflight of opencode or Copilot CLI makes: any file but
/// opencode's logs and Copilot CLI's unpacked package (a session database, settings, a
/// `~/.copilot`).
fn preflight_only(home: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(home).unwrap_or(&p).to_path_buf();
            let allowed = rel.starts_with(".cache/copilot/pkg")
                || rel.starts_with(".local/share/opencode/log")
                || rel.starts_with(".cache/opencode/bin");
            if allowed {
                continue;
            }
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out
}

#[test]
fn aider_preset_runs_a_two_task_plan_against_the_fake_api() {
    two_tasks_through("aider");
}

/// Best of N through the real `agent` preset (or, with `agents`, the presets in
/// turn): a one-task plan with `attempts = 2`, `attempts_stop = "all"`: both attempts run to
/// their own `orch task done`, one is picked and committed as the task's one commit (its
/// message names the pick), the other is saved under `refs/orch/attempts/one/1.1/<attempt>`;
/// usage counts both.
fn best_of_2_through(agent: &str, agents: Option<&str>) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    if let Some(list) = agents
        && list.contains("codex")
        && clis_with("codex").is_none()
    {
        return;
    }
    // Two presets sharing the task also land it through the merge train (`auto_merge`).
    let train = agents.is_some();
    let api = FakeApi::start(Behaviour::Normal);
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write(
        "docs/plans/one.md",
        "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\nauto_merge = {train}\n\n[[plan]]\nname = \"one\"\n\
             file = \"docs/plans/one.md\"\nattempts = 2\nattempts_stop = \"all\"\n{}",
            agents
                .map(|a| format!("agents = {a}\n"))
                .unwrap_or_default()
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nfake API requests: {:?}",
            logs(&repo),
            api.requests(),
        )
    };
    assert_eq!(code, 0, "best of 2 through {agent}: {}", context());
    let ev = support::events(&out);
    // Both attempts ran, each reported done through its own report directory.
    let started = support::named(&ev, "task_started");
    assert_eq!(started.len(), 2, "{}", context());
    let attempts = support::named(&ev, "attempt_finished");
    assert_eq!(attempts.len(), 2, "{}", context());
    let picked: Vec<&&Value> = attempts.iter().filter(|e| e["picked"] == true).collect();
    assert_eq!(picked.len(), 1, "{}", context());
    let loser = attempts
        .iter()
        .find(|e| e["picked"] == false)
        .expect("a loser");
    assert!(
        loser["cause"]
            .as_str()
            .is_some_and(|c| c.starts_with("not picked")),
        "the other attempt was a candidate too: {loser}\n{}",
        context()
    );
    // One commit, the task's, with the pick in its message (landed on `main` by the train:
    // then the plan's branch holds nothing `main` does not).
    let subjects = repo.subjects("plan/one");
    let want = if train {
        Vec::new()
    } else {
        vec!["one 1.1: Create `alpha.txt`".to_string()]
    };
    assert_eq!(subjects, want, "{}", context());
    let body = repo.git(&["log", "-1", "--format=%b", "--grep=^one 1.1: ", "plan/one"]);
    assert!(body.starts_with("best of N: attempt "), "{body}");
    assert_eq!(
        repo.git(&["show", "plan/one:alpha.txt"]).trim_end(),
        "alpha.txt written by task 1.1"
    );
    // The other attempt's work is saved.
    let k = loser["attempt"].as_u64().expect("attempt");
    let saved = format!("refs/orch/attempts/one/1.1/{k}");
    assert_eq!(
        repo.git(&["show", &format!("{saved}:alpha.txt")])
            .trim_end(),
        "alpha.txt written by task 1.1",
        "{}",
        context()
    );
    // With the merge train, the picked attempt's work is on `main`, landed by orch itself.
    if train {
        let merged = support::named(&ev, "plan_merged");
        assert_eq!(merged.len(), 1, "{}", context());
        assert_eq!(merged[0]["plan"], "one", "{}", context());
        assert_eq!(
            repo.git(&["show", "main:alpha.txt"]).trim_end(),
            "alpha.txt written by task 1.1",
            "{}",
            context()
        );
    }
    // The task's usage counts both attempts.
    let status = read_status(&repo.root().join(".orch/state/one/status.json")).expect("status");
    let t = task_in(&status, "1.1");
    assert_eq!(t["status"], "completed");
    assert!(
        t["orchUsage"]["inputTokens"].as_u64().unwrap_or(0) >= 2 * USAGE_INPUT,
        "{t}\n{}",
        context()
    );
}

#[test]
fn claude_preset_runs_a_best_of_2_task_against_the_fake_api() {
    best_of_2_through("claude", None);
}

#[test]
fn codex_preset_runs_a_best_of_2_task_against_the_fake_api() {
    best_of_2_through("codex", None);
}

/// Best of 2 across two presets, landed by the merge train.
#[test]
fn claude_and_codex_share_a_best_of_2_task_against_the_fake_api() {
    best_of_2_through("claude", Some("[\"claude\", \"codex\"]"));
}

/// Resolution by agent (`resolve`) through the preset `agent`: plans `a` and `b` (run
/// by a scripted agent) both write `shared.txt`; `a` is merged; `orch merge b` hands the
/// conflict to the preset, whose fake model writes the resolved file through the client's write
/// tool (Codex: a shell command). The merge commit is on `plan/b`, `main` holds the model's
/// file, no marker.
fn resolves_a_two_plan_conflict(agent: &str, confined: bool) {
    if confined && !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    let repo = Repo::builder()
        .timeout(RUN_TIMEOUT)
        .identity_in_config()
        .build();
    let write = support::fixtures().join("write.sh");
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nresolve = \"{agent}\"\nintegrate = \"off\"\n\n[agents.w]\ncommand = {}\n",
        support::toml_array(&["sh", write.to_str().expect("utf8"), "shared.txt"])
    );
    for name in ["a", "b"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write `shared.txt`\n",
        );
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = repo.run(&["merge", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let mut cmd = repo.orch(&["merge", "--json", "b"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    if confined {
        // Confined by orch (the resolution worktree, its private client state).
        cmd.env_remove("ORCH_SANDBOX");
    }
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch merge"),
        RUN_TIMEOUT,
        "orch merge",
    ));
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/b/resolve.log")).into_owned();
    let context = format!(
        "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nresolve.log:\n{log}\nrequests: {:?}\ntool results: {:#?}",
        api.requests(),
        api.tool_results()
    );
    assert_eq!(code, 0, "{context}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["steps"][0]["result"], "merged", "{context}");
    assert_eq!(repo.rev("plan/b^1"), plan_b, "{context}");
    assert_eq!(repo.rev("plan/b^2"), main, "{context}");
    let msg = repo.git(&["show", "-s", "--format=%B", "plan/b"]);
    assert!(
        msg.contains(&format!("resolved by agent `{agent}`")),
        "{msg}"
    );
    assert_eq!(
        repo.git(&["show", "main:shared.txt"]),
        "shared.txt resolved by the model: both sides kept",
        "{context}"
    );
    assert!(api.model_calls() >= 1, "{context}");
    // What the resolver spent is the plan's: recorded in its status file, in `orch status`.
    let spent = &repo.status_file("b")["orchResolveUsage"];
    assert!(
        spent["inputTokens"].as_u64().unwrap_or(0) >= USAGE_INPUT,
        "{spent:#}\n{context}"
    );
    let (_, st, _) = repo.run(&["status", "--json", "--plan", "b"]);
    let st: Value = serde_json::from_str(&st).expect("status json");
    assert!(
        st["usage"]["input_tokens"].as_u64().unwrap_or(0) >= USAGE_INPUT,
        "{st:#}"
    );
    if confined {
        assert!(
            log.contains("confined (Landlock): writes only beneath"),
            "{context}"
        );
        // The private client state of the resolver is gone.
        assert!(
            !repo
                .root()
                .join(".orch/state/.clients/b/resolve-1")
                .exists(),
            "{context}"
        );
    }
}

#[test]
fn claude_preset_resolves_a_two_plan_conflict_against_the_fake_api() {
    resolves_a_two_plan_conflict("claude", false);
}

#[test]
fn claude_preset_resolves_a_two_plan_conflict_confined_against_the_fake_api() {
    resolves_a_two_plan_conflict("claude", true);
}

#[test]
fn codex_preset_resolves_a_two_plan_conflict_confined_against_the_fake_api() {
    resolves_a_two_plan_conflict("codex", true);
}

#[test]
fn codex_preset_resolves_a_two_plan_conflict_against_the_fake_api() {
    resolves_a_two_plan_conflict("codex", false);
}

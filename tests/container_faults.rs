//! Faults of a container plan that are not its agent's, and the bounds of one plan's container,
//! end to end through a real `orch up` and real podman (the local image
//! `localhost/orch-test-base`; skipped with a message without them, unless
//! `ORCH_REQUIRE_PODMAN` is set). A container removed or stopped by a person under an
//! attempt loses the attempt without spending a retry, the container is made anew and the task
//! completes; an agent that fills its container's memory (sandbox on and off) fails its task,
//! counted, "out of memory" said, while another plan completes; an agent's processes stop at
//! its plan's `pids`; bad `memory` and `pids` are refused at their line.

use crate::support;

use std::process::Stdio;

use support::podman::{IMAGE, of_plan};
use support::{Repo, toml_array};

/// `podman ARGS`, quiet: whether it succeeded.
fn podman(args: &[&str]) -> bool {
    std::process::Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A container plan `plan` (no network) of tasks 1.1 and 1.2 whose agent runs `script`.
fn two_tasks(plan: &str, script: &str) -> Repo {
    support::podman::repo(
        &[(plan, "")],
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
        &toml_array(&["sh", "-c", script]),
        "network = \"none\"",
        IMAGE,
        "",
        "",
    )
}

/// `orch up --json` started in `repo`, its output piped.
fn up(repo: &Repo) -> std::process::Child {
    repo.orch(&["up", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Ends the one container of plan `plan` (not a service's) as a person would: `podman rm` or
/// `podman stop` (`how`).
fn end_container(plan: &str, how: &str) {
    let made: Vec<String> = of_plan(plan)
        .into_iter()
        .filter(|(_, _, s)| s.is_empty())
        .map(|(n, _, _)| n)
        .collect();
    assert_eq!(made.len(), 1, "{how}: {made:?}");
    let args: Vec<&str> = match how {
        "rm" => vec!["rm", "-f", "-t", "0", &made[0]],
        _ => vec!["stop", "-t", "5", &made[0]],
    };
    assert!(podman(&args), "{how}: podman {args:?}");
}

/// `orch up` (`child`) of plan `plan` (tasks 1.1 and 1.2, each writing `task-<id>.txt`) ended:
/// 0, both completed with one commit each (their files on the plan branch), no task failed.
/// Its console.
fn both_completed(repo: &Repo, plan: &str, child: std::process::Child, how: &str) -> String {
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    let all = format!("{stdout}{stderr}");
    assert_eq!(code, 0, "{how}: {all}");
    for id in ["1.1", "1.2"] {
        assert_eq!(
            repo.task(plan, id)["status"],
            "completed",
            "{how} {id}: {all}"
        );
        assert_eq!(
            repo.git(&["show", &format!("plan/{plan}:task-{id}.txt")]),
            id,
            "{how}"
        );
    }
    // One commit per task: a lost attempt left nothing.
    assert_eq!(repo.subjects(&format!("plan/{plan}")).len(), 2, "{how}");
    let failed = support::events(&stdout)
        .iter()
        .filter(|e| e["event"] == "task_failed")
        .count();
    assert_eq!(failed, 0, "{how}: {all}");
    all
}

#[test]
fn a_container_removed_or_stopped_under_an_attempt_costs_the_agent_nothing() {
    if !support::podman::available() {
        return;
    }
    // Task 1.1's first attempt marks that it runs (in the plan's report directory, which the
    // test reads) and waits; the test then ends its container as a person would. Its next
    // attempt (the mark is there) and task 1.2 write their work. `retries = 0`: a counted loss
    // would fail the task.
    for how in ["rm", "stop"] {
        let plan = format!("lost{how}");
        let script = "if [ \"$ORCH_TASK\" = 1.1 ] && [ ! -e \"$ORCH_REPORT_DIR/../held\" ]; then \
                        touch \"$ORCH_REPORT_DIR/../held\"; sleep 600; fi; \
                      echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"";
        let repo = two_tasks(&plan, script);
        let mark = repo
            .root()
            .join(format!(".orch/state/.reports/{plan}/held"));
        let child = up(&repo);
        support::process::wait_for("the first attempt to run", || mark.exists());
        end_container(&plan, how);
        let all = both_completed(&repo, &plan, child, how);
        let why = match how {
            "rm" => "was removed under the attempt",
            _ => "was stopped from outside under the attempt",
        };
        let said = all
            .lines()
            .find(|l| l.contains("attempt lost (not counted"))
            .unwrap_or_else(|| {
                panic!("{how}: the console does not say the attempt was lost:\n{all}")
            });
        assert!(
            said.contains(&format!("the container of plan `{plan}` {why}")),
            "{how}: {why:?} not in {said}"
        );
        // Made anew for the next attempt, removed with the run.
        assert_eq!(of_plan(&plan), Vec::new(), "{how}");
    }
}

/// A container removed or stopped by a person between two tasks (no attempt runs in it: the plan
/// is paused after its first task, the container ended, the plan resumed): the next task gets a
/// container made anew and completes, no retry spent (`retries = 0`), one commit per task, the
/// container removed with the run.
#[test]
fn a_container_removed_or_stopped_between_two_tasks_costs_the_next_nothing() {
    if !support::podman::available() {
        return;
    }
    for how in ["rm", "stop"] {
        let plan = format!("gap{how}");
        // Task 1.1 marks that it runs and waits for the test's word (the plan is paused in
        // between, so that 1.2 does not start at once).
        let script = "if [ \"$ORCH_TASK\" = 1.1 ]; then touch \"$ORCH_REPORT_DIR/../held\"; \
                        while [ ! -e \"$ORCH_REPORT_DIR/../go\" ]; do sleep 0.1; done; fi; \
                      echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"";
        let repo = two_tasks(&plan, script);
        let reports = repo.root().join(format!(".orch/state/.reports/{plan}"));
        let child = up(&repo);
        support::process::wait_for("the first task to run", || reports.join("held").exists());
        let (code, out, err) = repo.run(&["pause", &plan]);
        assert_eq!(code, 0, "{how}: {out}{err}");
        std::fs::write(reports.join("go"), "").expect("go");
        support::process::wait_for("the first task to complete", || {
            repo.task(&plan, "1.1")["status"] == "completed"
        });
        end_container(&plan, how);
        assert_eq!(repo.task(&plan, "1.2")["status"], "pending", "{how}");
        let (code, out, err) = repo.run(&["resume", &plan]);
        assert_eq!(code, 0, "{how}: {out}{err}");
        let all = both_completed(&repo, &plan, child, how);
        // Task 1.2 ran once.
        assert_eq!(repo.task(&plan, "1.2")["attempts"], 1, "{how}: {all}");
        assert_eq!(of_plan(&plan), Vec::new(), "{how}");
    }
}

/// A container removed or stopped by a person while a task's `check` runs in it: the check did
/// not fail, its place did; the attempt is lost without spending a retry (`retries = 0`), the
/// container made anew, and the task completes, said on the console. The check holds on its
/// first run (an ignored mark in the worktree, which a save keeps). Seen failing on the code
/// before: the task failed, its only try spent ("the check … failed").
#[test]
fn a_container_removed_or_stopped_under_a_check_costs_the_task_nothing() {
    if !support::podman::available() {
        return;
    }
    for how in ["rm", "stop"] {
        let plan = format!("chk{how}");
        let check = toml_array(&[
            "sh",
            "-c",
            "if [ ! -e held ]; then touch held; sleep 600; fi; test -s work.txt",
        ]);
        let repo = support::podman::repo(
            &[(&plan, &format!("check = {check}"))],
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n",
            &toml_array(&["sh", "-c", "echo \"$ORCH_TASK\" > work.txt"]),
            "network = \"none\"",
            IMAGE,
            "",
            "",
        );
        repo.write(".gitignore", "held\n");
        repo.commit_all("ignore the mark");
        let mark = repo.root().join(format!(".orch/worktrees/{plan}/held"));
        let child = up(&repo);
        support::process::wait_for("the check to run", || mark.exists());
        end_container(&plan, how);
        let out = support::wait_within(child, repo.timeout(), "orch up");
        let (code, stdout, stderr) = support::code_out_err(&out);
        let all = format!("{stdout}{stderr}");
        assert_eq!(code, 0, "{how}: {all}");
        assert_eq!(
            repo.task(&plan, "1.1")["status"],
            "completed",
            "{how}: {all}"
        );
        assert_eq!(
            repo.git(&["show", &format!("plan/{plan}:work.txt")]),
            "1.1",
            "{how}"
        );
        assert_eq!(repo.subjects(&format!("plan/{plan}")).len(), 1, "{how}");
        assert!(
            all.lines()
                .any(|l| l.contains("attempt lost (not counted")
                    && l.contains("did not run to its end")),
            "{how}: the console does not say the attempt was lost:\n{all}"
        );
        assert_eq!(of_plan(&plan), Vec::new(), "{how}");
    }
}

/// An agent of plan `hog` that fills memory (python, half a GiB in pages it touches), one of
/// any other plan that writes its work.
const HOG: &str = "if [ \"$ORCH_PLAN\" = hog ]; then \
                   python3 -c 'b = bytearray(512 << 20)' || exit 1; fi; \
                   echo \"$ORCH_PLAN\" > work.txt";

#[test]
fn an_agent_that_fills_its_containers_memory_fails_its_task_and_hurts_no_other_plan() {
    if !support::podman::available() {
        return;
    }
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        let repo = support::podman::repo(
            &[("hog", "memory = \"128MiB\""), ("calm", "")],
            &support::one_task("P", "Work"),
            &toml_array(&["sh", "-c", HOG]),
            "network = \"none\"",
            IMAGE,
            &format!("sandbox = \"{sandbox}\""),
            "",
        );
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        let all = format!("{out}{err}");
        // orch itself ended, by itself: one task failed.
        assert_ne!(code, 0, "sandbox {sandbox}: {all}");
        assert!(code < 128, "sandbox {sandbox}: orch killed? {code}\n{all}");
        let task = repo.task("hog", "1.1");
        assert_eq!(task["status"], "failed", "sandbox {sandbox}: {all}");
        assert!(
            all.contains("out of memory: the kernel killed")
                && all.contains("container of plan `hog`, which reached its bound of 128MiB"),
            "sandbox {sandbox}: out of memory not said:\n{all}"
        );
        assert!(!all.contains("attempt lost"), "sandbox {sandbox}: {all}");
        assert_eq!(repo.task("calm", "1.1")["status"], "completed", "{all}");
        assert_eq!(repo.git(&["show", "plan/calm:work.txt"]), "calm");
        assert_eq!(of_plan("hog"), Vec::new());
        assert_eq!(of_plan("calm"), Vec::new());
    }
}

/// Forks children that sleep until it has made 300 or a fork fails; writes how many it made.
const FORKS: &str = r#"
import os, signal, time
kids = []
for i in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
open("work.txt", "w").write(str(len(kids)))
"#;

#[test]
fn an_agents_processes_stop_at_its_plans_pids() {
    if !support::podman::available() {
        return;
    }
    let repo = support::podman::repo(
        &[("forks", "pids = 64")],
        &support::one_task("P", "Work"),
        &toml_array(&["python3", "-c", FORKS]),
        "network = \"none\"",
        IMAGE,
        "",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let made: u32 = repo
        .git(&["show", "plan/forks:work.txt"])
        .trim()
        .parse()
        .expect("a count");
    // The container's own processes (orch's keeper and wrappers, the agent) count too.
    assert!(
        (1..64).contains(&made),
        "made {made} processes under pids = 64"
    );
}

#[test]
fn bad_memory_and_pids_are_refused_naming_their_line() {
    // No podman needed: refused while reading plans.toml.
    let repo = Repo::new();
    repo.write("docs/plans/p.md", &support::one_task("P", "x"));
    let container = format!("executor = \"container\"\nimage = \"{IMAGE}\"");
    let cases: Vec<(String, &str, &str, &str)> = vec![
        // (defaults, plan lines, the offending text, what the error says)
        (
            container.clone(),
            "memory = \"lots\"",
            "memory = \"lots\"",
            "`plan.memory` \"lots\" is not a size",
        ),
        (
            format!("{container}\nmemory = \"1M\""),
            "",
            "memory = \"1M\"",
            "`defaults.memory` must be at least 64MiB",
        ),
        (
            container.clone(),
            "pids = 0",
            "pids = 0",
            "`plan.pids` must be between 16",
        ),
        (
            container.clone(),
            "pids = \"many\"",
            "pids = \"many\"",
            "pids",
        ),
        (
            "executor = \"local\"".into(),
            "memory = \"4GiB\"",
            "memory = \"4GiB\"",
            "bounds its container, but the plan runs with executor = \"local\"",
        ),
    ];
    for (defaults, plan, at, want) in cases {
        let text = format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n\n[agents.a]\ncommand = [\"true\"]\nreport = \"exit\"\nnetwork = \"none\"\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{plan}\n"
        );
        let line = text[..text.find(at).unwrap_or_else(|| panic!("{at:?} in\n{text}"))]
            .matches('\n')
            .count()
            + 1;
        repo.write("plans.toml", &text);
        repo.commit_all("plans");
        let before = support::disk_snapshot(repo.root());
        let (code, out, err) = repo.run(&["up"]);
        let all = format!("{out}{err}");
        assert_eq!(code, 2, "{want}: exit {code}\n{all}");
        assert!(all.contains(want), "wanted {want:?} in\n{all}");
        assert!(
            all.contains(&format!("plans.toml:{line}:")),
            "{want}: wanted line {line} in\n{all}"
        );
        assert!(!repo.worktree("p").exists(), "{want}");
        let strip = |s: &std::collections::BTreeSet<(String, String)>| -> Vec<(String, String)> {
            s.iter()
                .filter(|(p, _)| !p.starts_with(".git/"))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&before), strip(&after_of(&repo)), "{want}");
    }
}

fn after_of(repo: &Repo) -> std::collections::BTreeSet<(String, String)> {
    support::disk_snapshot(repo.root())
}

/// Makes image `tag` of the test image with `paths` removed (`podman build`, offline), unless
/// podman has it.
fn image_without(tag: &str, paths: &[&str]) {
    if podman(&["image", "exists", tag]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rm: Vec<String> = ["/usr/bin/rm", "-f"]
        .iter()
        .map(|s| format!("\"{s}\""))
        .chain(paths.iter().map(|p| format!("\"{p}\"")))
        .collect();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN [{}]\n", rm.join(", ")),
    )
    .expect("Dockerfile");
    let built = std::process::Command::new("sh")
        .args([
            "-c",
            "podman build -q --pull=never --network none --ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=32768:32768 -t \"$1\" \"$2\"",
            "sh",
            tag,
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("podman build");
    assert!(
        built.status.success(),
        "podman build {tag}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
}

#[test]
fn an_image_without_a_tool_or_removed_is_refused_at_start_and_nothing_runs() {
    if !support::podman::available() {
        return;
    }
    // A tag of the test image, removed below as a person's `podman rmi` would.
    let gone = format!("localhost/orch-test-gone-{}:latest", std::process::id());
    assert!(podman(&["tag", IMAGE, &gone]), "podman tag");
    image_without(
        "localhost/orch-test-nosh:latest",
        &["/usr/bin/sh", "/usr/bin/dash"],
    );
    image_without("localhost/orch-test-noenv:latest", &["/usr/bin/env"]);
    let cases: [(&str, &str, &str, &str); 4] = [
        // (image, agent program, what is said, the fix)
        (
            IMAGE,
            "no-such-agent",
            "has no `no-such-agent`",
            "install `no-such-agent` in the image",
        ),
        (
            "localhost/orch-test-nosh:latest",
            "python3",
            "has no `sh`",
            "install `sh` in the image",
        ),
        (
            "localhost/orch-test-noenv:latest",
            "python3",
            "has no `/usr/bin/env`",
            "install `/usr/bin/env` in the image",
        ),
        (&gone, "python3", "podman has no image", "podman pull"),
    ];
    for (image, program, said, fix) in cases {
        if image == gone {
            assert!(podman(&["rmi", &gone]), "podman rmi");
        }
        let repo = support::podman::repo(
            &[("tools", "")],
            &support::one_task("P", "Work"),
            &toml_array(&[program, "-c", "open('work.txt', 'w').write('x')"]),
            "network = \"none\"",
            image,
            "",
            "",
        );
        let before = support::disk_snapshot(repo.root());
        let (code, out, err) = repo.run(&["up"]);
        let all = format!("{out}{err}");
        assert_eq!(code, 6, "{image} {program}: {all}");
        assert!(all.contains(said), "{said:?} not in\n{all}");
        assert!(all.contains(fix), "{fix:?} not in\n{all}");
        assert!(all.contains("plan `tools`") || image == gone, "{all}");
        assert!(all.contains(image), "the image not named:\n{all}");
        // Nothing ran: no worktree, no branch, no container.
        assert!(!repo.worktree("tools").exists(), "{image}: {all}");
        assert_eq!(repo.git(&["branch", "--list", "plan/tools"]), "", "{image}");
        assert_eq!(of_plan("tools").len(), 0, "{image}");
        let after = support::disk_snapshot(repo.root());
        let strip = |s: &std::collections::BTreeSet<(String, String)>| -> Vec<(String, String)> {
            s.iter()
                .filter(|(p, _)| !p.starts_with(".git/") && !p.starts_with(".orch/"))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&before), strip(&after), "{image}");
    }
}

//! `orch up` runs a real Spec Kit `tasks.md` end to end: a file of ../shared/corpus-speckit/,
//! unchanged, with a scripted agent (`report = "exit"`); every command that names a task does so
//! by its Spec Kit id (`T014`). Without ../shared the test says so and passes, unless
//! `ORCH_REQUIRE_SHARED` is set.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use orch::plan::parse;
use serde_json::Value;
use support::{Repo, agent};

/// 50 tasks, 3 ticked (`[x]`), 19 `[P]`, stories US1 to US5 (`[US3/US5]` too), "after T002" in
/// T004's line and "T007 depends on T006" in its dependency section.
const FILE: &str = "jflowers__get-out__specs_003-distribution_tasks.md";
const AT: &str = "specs/003-distribution/tasks.md";

/// (task, attempt, start ns, end ns) of each attempt that ended, from the agent's journal.
fn attempts(journal: &Path) -> Vec<(String, u32, u128, Option<u128>)> {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut out: Vec<(String, u32, u128, Option<u128>)> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let [kind, task, attempt, ns] = f[..] else {
            continue;
        };
        let (Ok(attempt), Ok(ns)) = (attempt.parse(), ns.parse()) else {
            continue;
        };
        match kind {
            "start" => out.push((task.to_string(), attempt, ns, None)),
            "end" => {
                if let Some(a) = out
                    .iter_mut()
                    .find(|a| a.0 == task && a.1 == attempt && a.3.is_none())
                {
                    a.3 = Some(ns);
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn orch_up_runs_a_real_spec_kit_file_by_its_ids() {
    let Some(dir) = support::require_shared("corpus-speckit") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join(FILE)).expect("corpus file");
    let plan = parse(Path::new(AT), &text);
    assert_eq!(plan.tasks.len(), 50);
    let open: Vec<&str> = plan
        .tasks
        .iter()
        .filter(|t| !t.done)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(open.len(), 47);

    // 47 tasks: minutes on a loaded machine.
    let repo = Repo::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build();
    let journal = repo.root().join(".git/journal");
    let j = journal.display().to_string();
    // T002/T003 and T005/T006 ([P]) each wait for the other's start; T045 fails once.
    let rules = [
        "T002=T003",
        "T003=T002",
        "T005=T006",
        "T006=T005",
        "T045=fail1",
    ];
    let mut args = vec![j.as_str()];
    args.extend(rules);
    repo.write(AT, &text);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\nparallel_tasks = 2\n",
            agent("speckit_agent.sh", &args)
        ),
    );
    repo.commit_all("plans");

    // The first run: T045 fails, what waits for it does not start.
    let (code, first, err) = repo.run(&["up", "--json"]);
    assert_ne!(code, 0, "{first}\n{err}");
    assert_eq!(repo.task("p", "T045")["status"], "failed", "{err}");
    assert_eq!(repo.task("p", "T046")["status"], "pending");
    let (code, status, err) = repo.run(&["status", "--plan", "p"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        status
            .lines()
            .any(|l| l.contains("T045") && l.contains("failed")),
        "{status}"
    );
    let (code, log, err) = repo.run(&["logs", "p", "T045"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("task T045 fails its first attempt"), "{log}");
    let (code, next, err) = repo.run(&["next", "--why", "p:T046"]);
    assert_eq!(code, 0, "{next}\n{err}");
    assert!(next.contains("T045"), "T046 waits for T045:\n{next}");
    // The boxes of what the first run completed are ticked in the checkout's file, as Spec
    // Kit's `/implement` ticks them; T045's and those of the tasks that wait for it are not.
    let ticked_first = std::fs::read_to_string(repo.root().join(AT)).expect("tasks.md");
    let after_first = parse(Path::new(AT), &ticked_first);
    for t in &after_first.tasks {
        let completed = repo.task("p", &t.id)["status"] == "completed";
        assert_eq!(t.done, completed, "{}: box against status", t.id);
    }
    assert!(!after_first.tasks.iter().any(|t| t.id == "T045" && t.done));
    let events_first = support::events(first.trim_end());
    let ticked_n = after_first.tasks.iter().filter(|t| t.done).count() - 3;
    assert!(
        events_first.iter().any(|e| e["event"] == "note"
            && e["plan"] == "p"
            && e["message"] == format!("ticked {ticked_n} completed tasks in `{AT}`")),
        "{first}"
    );
    let (code, out, err) = repo.run(&["retry", "p", "T045"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "T045")["status"], "pending", "{out}");
    let out = repo.up(&[]);

    // Every open task completed by its agent (its event in one of the two runs), its work committed on plan/p as `p T014: …`.
    let events = support::events(&format!("{}\n{}", first.trim_end(), out.trim_end()));
    let subjects = repo.subjects("plan/p");
    for t in plan.tasks.iter().filter(|t| !t.done) {
        let id = t.id.as_str();
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}");
        let file = repo.git(&["show", &format!("plan/p:{id}.txt")]);
        assert_eq!(file.trim(), id, "ORCH_TASK of {id}");
        assert_eq!(
            subjects
                .iter()
                .filter(|s| s.starts_with(&format!("p {id}: ")))
                .count(),
            1,
            "{id}: {subjects:?}"
        );
        assert!(
            events.iter().any(|e| e["event"] == "task_finished"
                && e["task"] == id
                && e["commit"].is_string()),
            "{id}"
        );
    }
    for t in plan.tasks.iter().filter(|t| t.done) {
        assert!(!repo.git_ok(&["cat-file", "-e", &format!("plan/p:{}.txt", t.id)]));
    }
    // The commits follow the order: each after those of the tasks it depends on.
    let position: BTreeMap<String, usize> = subjects
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s.strip_prefix("p ")?.split(':').next()?.to_string(), i)))
        .collect();

    // From the journal: each attempt started after every attempt of the tasks it waits for
    // ended (the file's order, "after T002", "T007 depends on T006"); [P] pairs side by side;
    // never more than `parallel_tasks` at once.
    let ran = attempts(&journal);
    let done_at =
        |id: &str| -> Option<u128> { ran.iter().filter(|a| a.0 == id).filter_map(|a| a.3).max() };
    for t in plan.tasks.iter().filter(|t| !t.done) {
        let started = ran
            .iter()
            .filter(|a| a.0 == t.id)
            .map(|a| a.2)
            .min()
            .unwrap_or_else(|| panic!("{} never started", t.id));
        for d in t.dependencies() {
            if let Some(end) = done_at(d) {
                assert!(started > end, "{} started before {d} ended", t.id);
            }
            if let (Some(a), Some(b)) = (position.get(d), position.get(&t.id)) {
                assert!(a < b, "{d}'s commit after {}'s", t.id);
            }
        }
    }
    let deps = |id: &str| {
        plan.tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.dependencies().to_vec())
    };
    assert_eq!(deps("T004"), Some(vec!["T002".into(), "T003".into()]));
    assert_eq!(deps("T007"), Some(vec!["T005".into(), "T006".into()]));
    for (a, b) in [("T002", "T003"), ("T005", "T006")] {
        let span = |id: &str| {
            let r = ran.iter().find(|x| x.0 == id).expect("ran");
            (r.2, r.3.expect("ended"))
        };
        let (sa, ea) = span(a);
        let (sb, eb) = span(b);
        assert!(sa < eb && sb < ea, "{a} and {b} side by side");
    }
    for a in &ran {
        let at_once = ran
            .iter()
            .filter(|b| b.2 <= a.2 && b.3.is_none_or(|e| e > a.2))
            .count();
        assert!(at_once <= 2, "{} ran beside {} others", a.0, at_once - 1);
    }
    // The failed attempt of T045 and its retry, in the journal and the status file.
    assert_eq!(ran.iter().filter(|a| a.0 == "T045").count(), 2);
    assert_eq!(
        repo.task("p", "T045")["attempts"],
        2,
        "{}",
        repo.task("p", "T045")
    );

    // `orch status` names the tasks by their ids, text and JSON.
    let statuses = repo.statuses("p");
    assert_eq!(statuses.len(), 50);
    assert!(
        statuses.iter().all(|(_, s)| s == "completed"),
        "{statuses:?}"
    );
    assert_eq!(statuses[13].0, "T014");
    let (code, log, err) = repo.run(&["logs", "p", "T014"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("wrote T014.txt"), "{log}");

    // Every box is ticked now, in the file's own spelling (it had `[x]` only: `[x]`), and
    // nothing else of the file changed: the same bytes but one per ticked box.
    let ticked = std::fs::read_to_string(repo.root().join(AT)).expect("tasks.md");
    assert_eq!(ticked.len(), text.len());
    let changed: Vec<(usize, u8, u8)> = text
        .bytes()
        .zip(ticked.bytes())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i, a, b))
        .collect();
    assert_eq!(changed.len(), 47, "one byte per task the runs completed");
    assert!(changed.iter().all(|&(i, a, b)| a == b' '
        && b == b'x'
        && text.as_bytes()[i - 1] == b'['
        && text.as_bytes()[i + 1] == b']'));
    let again = parse(Path::new(AT), &ticked);
    assert_eq!(again.tasks.len(), plan.tasks.len());
    for (a, b) in plan.tasks.iter().zip(&again.tasks) {
        assert_eq!(
            (&a.id, &a.description, a.dependencies()),
            (&b.id, &b.description, b.dependencies())
        );
        assert!(b.done, "{} ticked", b.id);
    }
    // A run with nothing left to tick says nothing of it and changes nothing.
    let out = repo.up(&[]);
    assert!(!out.contains("ticked"), "{out}");
    assert_eq!(
        std::fs::read_to_string(repo.root().join(AT)).expect("tasks.md"),
        ticked
    );
}

/// A person's `orch task done T003` and `orch task fail`, `orch task reset`: the commands that take a
/// task id take a Spec Kit id, lettered ones too; an id that could name a path is no task.
#[test]
fn the_task_commands_take_spec_kit_ids() {
    let repo = Repo::new();
    repo.write(
        AT,
        "# Tasks\n\n## Phase 1: Setup\n\n- [ ] T001 One\n- [ ] T001a [P] Lettered\n- [ ] T002 Two\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\n"
        ),
    );
    repo.commit_all("plans");
    for (args, id, want) in [
        (
            vec!["task", "start", "T001", "--plan", "p"],
            "T001",
            "in_progress",
        ),
        (
            vec!["task", "done", "T001", "--plan", "p"],
            "T001",
            "completed",
        ),
        (
            vec!["task", "fail", "T001a", "--plan", "p", "--error", "no"],
            "T001a",
            "failed",
        ),
    ] {
        let (code, out, err) = repo.run(&args);
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        assert_eq!(repo.task("p", id)["status"], want, "{args:?}");
    }
    let (code, out, err) = repo.run(&["retry", "p", "T001a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "T001a")["status"], "pending");
    let before = std::fs::read(repo.status_path("p")).expect("status file");
    for id in ["T001/../x", "../T001", "t001", "T003", "1.1"] {
        let (code, out, err) = repo.run(&["task", "done", id, "--plan", "p"]);
        assert_eq!(code, 2, "{id}\n{out}\n{err}");
        assert!(err.contains(id), "{id}: {err}");
    }
    assert_eq!(
        std::fs::read(repo.status_path("p")).expect("status"),
        before
    );
    let v: Value = repo.status_file("p");
    assert!(v.to_string().contains("T001a"));
}

/// `depends_on` names a Spec Kit task as `plan:T014`; a task the plan lacks is an error naming
/// plans.toml, the line and the plan's tasks (exit 2); an id that is none is no dependency.
#[test]
fn depends_on_names_a_spec_kit_task() {
    for (dep, code, want) in [
        ("p:T001a", 0, ""),
        (
            "p:T009",
            2,
            "plan `p` has no task T009 (its tasks: T001 … T002 (3))",
        ),
        ("p:T001/../x", 2, "dependency `p:T001/../x` is not"),
        ("p:t001", 2, "dependency `p:t001` is not"),
    ] {
        let repo = Repo::new();
        repo.write(
            AT,
            "# Tasks\n\n## Phase 1: Setup\n\n- [ ] T001 One\n- [ ] T001a [P] Lettered\n- [ ] T002 Two\n",
        );
        repo.write("docs/q.md", "# Q\n\n## Phase 1: A\n\n- [ ] 1.1 Do it\n");
        repo.write(
            "plans.toml",
            &format!(
                "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\n\n\
                 [[plan]]\nname = \"q\"\nfile = \"docs/q.md\"\nagent = \"a\"\ndepends_on = [\"{dep}\"]\n"
            ),
        );
        repo.commit_all("plans");
        let (got, out, err) = repo.run(&["check"]);
        assert_eq!(got, code, "{dep}\n{out}\n{err}");
        assert!(err.contains(want), "{dep}: {err}");
        if code != 0 {
            assert!(err.contains("plans.toml:13"), "{dep}: {err}");
        }
    }
}

const STORIES: &str = "# Tasks\n\n## Phase 1: Stories\n\n- [ ] T001 [US1] One\n- [ ] T002 [US3/US5] Two\n- [ ] T003 Three\n";

/// `depends_on = ["p:US1"]`: plan q waits for every task of story US1 of p, and for nothing
/// else of it (p's T002 waits for q's task to start, so the run finishes only if q starts before
/// p is done); a story p lacks is an error naming plans.toml and the line, nothing written.
#[test]
fn depends_on_names_a_story() {
    let repo = Repo::new();
    let journal = repo.root().join(".git/journal");
    let j = journal.display().to_string();
    repo.write(AT, STORIES);
    repo.write("docs/q.md", "# Q\n\n## Phase 1: A\n\n- [ ] 1.1 Do it\n");
    let manifest = |dep: &str| {
        format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"q\"\nfile = \"docs/q.md\"\nagent = \"a\"\ndepends_on = [\"{dep}\"]\n",
            agent("speckit_agent.sh", &[&j, "T002=1.1"])
        )
    };
    for (dep, want) in [
        (
            "p:US9",
            "plan `p` has no story US9 (it has stories US1, US3, US5)",
        ),
        ("p:US1x", "dependency `p:US1x` is not"),
    ] {
        repo.write("plans.toml", &manifest(dep));
        repo.commit_all("plans");
        for cmd in ["check", "up"] {
            let (code, out, err) = repo.run(&[cmd]);
            assert_eq!(code, 2, "{dep}\n{out}\n{err}");
            assert!(err.contains(want), "{dep}: {err}");
            assert!(err.contains("plans.toml:18"), "{dep}: {err}");
        }
        assert!(!repo.root().join(".orch/state").exists(), "{dep}");
    }
    repo.write("plans.toml", &manifest("p:US1"));
    repo.commit_all("plans");
    repo.up(&[]);
    let ran = attempts(&journal);
    let span = |id: &str| {
        let r = ran.iter().find(|x| x.0 == id).expect("ran");
        (r.2, r.3.expect("ended"))
    };
    assert!(span("1.1").0 > span("T001").1, "q after US1's T001");
    assert!(span("1.1").0 < span("T002").1, "q before the end of p");
    for id in ["T001", "T002", "T003"] {
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}");
    }
}

/// `orch status` shows a Spec Kit task's stories: `[US1]` after its id in the text, `story` (the
/// first) and `stories` in the JSON, `story: null` for a task without one; orch's own tasks have
/// neither key.
#[test]
fn status_shows_the_stories() {
    let repo = Repo::new();
    repo.write(AT, STORIES);
    repo.write("docs/q.md", "# Q\n\n## Phase 1: A\n\n- [ ] 1.1 Do it\n");
    repo.write(
        "plans.toml",
        &format!(
            "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"q\"\nfile = \"docs/q.md\"\nagent = \"a\"\n"
        ),
    );
    repo.commit_all("plans");
    for id in ["T001", "T002"] {
        let (code, out, err) = repo.run(&["task", "fail", id, "--plan", "p", "--error", "no"]);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    let (code, text, err) = repo.run(&["status", "--plan", "p"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("failed T001 [US1] One"), "{text}");
    assert!(text.contains("failed T002 [US3/US5] Two"), "{text}");
    let (_, json, _) = repo.run(&["status", "--plan", "p", "--json"]);
    let v: Value = serde_json::from_str(&json).expect("json");
    let tasks = v["tasks"].as_array().expect("tasks");
    assert_eq!(tasks[0]["story"], "US1");
    assert_eq!(tasks[0]["stories"], serde_json::json!(["US1"]));
    assert_eq!(tasks[1]["story"], "US3");
    assert_eq!(tasks[1]["stories"], serde_json::json!(["US3", "US5"]));
    assert!(tasks[2]["story"].is_null() && tasks[2].get("story").is_some());
    let (_, json, _) = repo.run(&["status", "--plan", "q", "--json"]);
    let v: Value = serde_json::from_str(&json).expect("json");
    assert!(v["tasks"][0].get("story").is_none(), "{v}");
}

/// `orch init --from tasks.md` writes a plans.toml that runs it (`orch check` passes, the plan
/// read as Spec Kit's); a plans.toml already there (exit 4), a file that is not Spec Kit's or
/// lies outside the directory (exit 2) are refused, nothing written.
#[test]
fn init_from_writes_the_manifest_of_a_tasks_md() {
    let repo = Repo::new();
    let _ = std::fs::remove_file(repo.root().join("plans.toml"));
    repo.write(AT, STORIES);
    repo.write("docs/q.md", "# Q\n\n## Phase 1: A\n\n- [ ] 1.1 Do it\n");
    std::fs::write(repo.outside("t.md"), STORIES).expect("write");
    let outside = repo.outside("t.md").display().to_string();
    for (from, want) in [
        ("docs/q.md", "is not a Spec Kit tasks.md"),
        ("specs/none/tasks.md", "specs/none/tasks.md"),
        (outside.as_str(), "is not inside"),
    ] {
        let (code, out, err) = repo.run(&["init", "--from", from]);
        assert_eq!(code, 2, "{from}\n{out}\n{err}");
        assert!(err.contains(want), "{from}: {err}");
        assert!(!repo.root().join("plans.toml").exists(), "{from}");
    }
    let (code, out, err) = repo.run(&["init", "--from", AT]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("plan `003-distribution`"), "{out}");
    let text = String::from_utf8(repo.read("plans.toml")).expect("utf-8");
    assert!(text.contains("format = \"speckit\""), "{text}");
    assert!(text.contains(&format!("file = \"{AT}\"")), "{text}");
    let (code, out, err) = repo.run(&["check", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["plans"][0]["format"], "speckit", "{v}");
    assert_eq!(v["plans"][0]["name"], "003-distribution", "{v}");
    let (code, _, err) = repo.run(&["init", "--from", AT]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(
        String::from_utf8(repo.read("plans.toml")).expect("utf-8"),
        text
    );
}

/// The boxes are ticked only in a regular file reached inside the checkout without a link on
/// the way (a landed branch may have made `specs` a link): a plan file read through a link to a
/// directory outside the repository, or to another directory of it, is read and run, but no
/// byte of it is written; the run says why, and the status file has the tasks completed.
#[test]
fn the_boxes_are_ticked_only_in_the_checkouts_own_file() {
    const TASKS: &str = "# Tasks\n\n## Phase 1: Setup\n\n- [ ] T001 Make the thing\n- [ ] T002 [P] Test the thing\n";
    // (where `specs` leads, relative to the repository: outside it, or inside it)
    for (case, target) in [("outside", "../elsewhere"), ("inside", "docs/specs")] {
        let repo = Repo::new();
        let real = repo.root().join(target);
        std::fs::create_dir_all(&real).expect("mkdir");
        std::fs::write(real.join("tasks.md"), TASKS).expect("write");
        std::os::unix::fs::symlink(&real, repo.root().join("specs")).expect("symlink");
        let journal = repo.root().join(".git/journal").display().to_string();
        repo.write(
            "plans.toml",
            &format!(
                "[agents.a]\ncommand = {}\nreport = \"exit\"\n\n[[plan]]\nname = \"p\"\nfile = \"specs/tasks.md\"\nagent = \"a\"\n",
                agent("speckit_agent.sh", &[journal.as_str()])
            ),
        );
        repo.commit_all("plans");
        let (code, out, err) = repo.run(&["up", "--json"]);
        if code != 0 {
            // Refused at load (a plan file through a link): nothing ran, nothing was written.
            assert_eq!(
                std::fs::read_to_string(real.join("tasks.md")).expect("read"),
                TASKS,
                "{case}"
            );
            continue;
        }
        for id in ["T001", "T002"] {
            assert_eq!(
                repo.task("p", id)["status"],
                "completed",
                "{case} {id}\n{err}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(real.join("tasks.md")).expect("read"),
            TASKS,
            "{case}: written through the link"
        );
        let events = support::events(out.trim_end());
        assert!(
            events.iter().any(|e| e["event"] == "note"
                && e["message"].as_str().is_some_and(
                    |m| m.starts_with("cannot tick the completed tasks in `specs/tasks.md`")
                )),
            "{case}: {out}"
        );
    }
}

/// `orch merge` lands beside the boxes `orch up` ticked in the checkout (the file stays as
/// ticked, still uncommitted), and any other change to the plan file is refused as before (exit
/// 4, naming the file, nothing moved).
#[test]
fn orch_merge_lands_beside_the_ticked_boxes_and_nothing_else() {
    const TASKS: &str = "# Tasks\n\n## Phase 1: Setup\n\n- [ ] T001 Make the thing\n- [ ] T002 [P] Test the thing\n- [ ] a checklist item\n";
    const AT: &str = "specs/tasks.md";
    let repo = Repo::new();
    let journal = repo.root().join(".git/journal").display().to_string();
    repo.write(AT, TASKS);
    repo.write(
        "plans.toml",
        &format!(
            "[agents.a]\ncommand = {}\nreport = \"exit\"\n\n[[plan]]\nname = \"p\"\nfile = \"{AT}\"\nagent = \"a\"\n",
            agent("speckit_agent.sh", &[journal.as_str()])
        ),
    );
    repo.commit_all("plans");
    repo.up(&[]);
    let ticked = TASKS.replace("[ ] T00", "[X] T00");
    assert_eq!(repo.read(AT), ticked.as_bytes());
    let tip = repo.rev("main");
    for (what, other) in [
        (
            "a word",
            ticked.replace("the thing\n- [ ] a", "the thinq\n- [ ] a"),
        ),
        (
            "a checklist item ticked",
            ticked.replace("[ ] a checklist", "[X] a checklist"),
        ),
        ("a line added", format!("{ticked}- [ ] T003 More\n")),
        (
            "a box unticked",
            TASKS
                .replacen("[ ] T001", "[X] T001", 1)
                .replacen("T002", "T00X", 1),
        ),
    ] {
        repo.write(AT, &other);
        let (code, out, err) = repo.run(&["merge"]);
        assert_eq!(code, 4, "{what}: {out}\n{err}");
        assert!(
            err.contains(&format!("uncommitted changes: `{AT}`")),
            "{what}: {err}"
        );
        assert_eq!(repo.rev("main"), tip, "{what}");
    }
    repo.write(AT, &ticked);
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_ne!(repo.rev("main"), tip);
    for id in ["T001", "T002"] {
        assert_eq!(repo.git(&["show", &format!("main:{id}.txt")]).trim(), id);
    }
    assert_eq!(repo.read(AT), ticked.as_bytes());
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=no"])
            .trim(),
        format!("M {AT}")
    );
}

//! Protected paths, end to end through a real `orch up`: a task that changes the check's own
//! script (or a `protect` glob's file) fails with the path named, nothing committed, its
//! changes saved, whatever its text names; a plan whose `allow_protected` names the file may
//! change it. Bad globs are errors.

use crate::support;

use support::{Repo, toml_array};

fn setup(repo: &Repo, task: &str, agent: &[&str], defaults: &str) {
    setup_plan(repo, task, agent, defaults, "");
}

/// [`setup`] with `plan_keys` in plan `p`'s table.
fn setup_plan(repo: &Repo, task: &str, agent: &[&str], defaults: &str, plan_keys: &str) {
    repo.write("ci/check.sh", "test -f done.txt\n");
    repo.write(
        "docs/plans/p.md",
        &format!("# P\n\n## Phase 1: Work\n- [ ] 1.1 {task}\n"),
    );
    repo.manifest(
        &toml_array(agent),
        "",
        &format!("retries = 0\ncheck = [\"sh\", \"ci/check.sh\"]\n{defaults}"),
        &[("p", plan_keys)],
    );
    repo.commit_all("plans");
}

fn status_json(repo: &Repo) -> serde_json::Value {
    let (code, out, err) = repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0, "{err}");
    support::json(&out)
}

#[test]
fn an_agent_that_edits_the_checks_script_fails_and_nothing_is_committed() {
    let repo = Repo::bare_minimum();
    setup(
        &repo,
        "Make the check pass",
        &["sh", "-c", "echo 'exit 0' > ci/check.sh"],
        "",
    );
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{ev:?}");
    assert_eq!(
        failed[0]["error"], "changed protected paths: ci/check.sh",
        "{failed:?}"
    );
    let task = &status_json(&repo)["tasks"][0];
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("changed protected paths: ci/check.sh"),
        "{task}"
    );
    assert!(repo.subjects("plan/p").is_empty(), "nothing committed");
    let saved = repo.git(&["show", "refs/orch/attempts/p/1.1/1:ci/check.sh"]);
    assert_eq!(saved, "exit 0", "the change is saved");
}

/// A task whose text names the file may not change it (an agent wrote that text, or could
/// have shaped it); a plan whose `allow_protected` names it (a glob here) may. Seen failing on
/// main: the task naming the file committed it.
#[test]
fn a_plan_whose_allow_protected_names_the_file_may_change_it() {
    let repo = Repo::bare_minimum();
    setup(
        &repo,
        "Rewrite `ci/check.sh` to test nothing",
        &["sh", "-c", "echo 'exit 0' > ci/check.sh"],
        "",
    );
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(
        failed[0]["error"], "changed protected paths: ci/check.sh",
        "{failed:?}"
    );
    assert!(repo.subjects("plan/p").is_empty(), "nothing committed");

    let repo = Repo::bare_minimum();
    setup_plan(
        &repo,
        "Rewrite `ci/check.sh` to test nothing",
        &["sh", "-c", "echo 'exit 0' > ci/check.sh"],
        "",
        "allow_protected = [\"ci/*.sh\"]",
    );
    repo.up(&[]);
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: Rewrite `ci/check.sh` to test nothing"]
    );
    assert_eq!(repo.git(&["show", "plan/p:ci/check.sh"]), "exit 0");
}

#[test]
fn a_protect_glob_guards_its_files_and_not_the_checks() {
    let repo = Repo::bare_minimum();
    setup(
        &repo,
        "Do the work",
        &[
            "sh",
            "-c",
            "mkdir -p tests && echo x > tests/x.rs && touch done.txt",
        ],
        "protect = [\"tests/**\"]\n",
    );
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(
        failed[0]["error"], "changed protected paths: tests/x.rs",
        "{failed:?}"
    );
    assert!(repo.subjects("plan/p").is_empty());
}

#[test]
fn bad_protect_globs_are_errors_with_their_location() {
    let repo = Repo::bare_minimum();
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Work\n",
    );
    // `allow_protected` takes the same globs, with the same errors.
    for (key, at) in [
        ("protect", "plans.toml:10:12"),
        ("allow_protected", "plans.toml:10:20"),
    ] {
        for (value, message) in [
            ("\"tests/[\"", "is not a valid glob"),
            ("\"../x\"", "leaves the repository"),
            ("\"/etc/passwd\"", "leaves the repository"),
        ] {
            repo.write(
                "plans.toml",
                &format!(
                    "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n\
                     [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{key} = [{value}]\n"
                ),
            );
            let (code, out, err) = repo.run(&["up"]);
            assert_eq!(code, 2, "{key} {value}\n{out}\n{err}");
            assert!(err.contains(at), "{key} {value}\n{err}");
            assert!(
                err.contains(message) && err.contains(&format!("`plan.{key}` entry")),
                "{key} {value}\n{err}"
            );
            assert!(!repo.root().join(".orch/worktrees").exists());
        }
    }
}

/// A check that compares the task's output with a file of the repository:
/// `sh ci/compare.sh data/expected.txt out.txt`.
fn compare_setup(repo: &Repo, task: &str, agent: &str) {
    repo.write("ci/compare.sh", "cmp -s \"$1\" \"$2\"\n");
    repo.write("data/expected.txt", "42\n");
    repo.write(
        "docs/plans/p.md",
        &format!("# P\n\n## Phase 1: Work\n- [ ] 1.1 {task}\n"),
    );
    repo.manifest(
        &toml_array(&["sh", "-c", agent]),
        "",
        "retries = 0\ncheck = [\"sh\", \"ci/compare.sh\", \"data/expected.txt\", \"out.txt\"]\n",
        &[("p", "")],
    );
    repo.commit_all("plans");
}

/// The data a check is handed is the task's work: a task extends the expected output (or the
/// test file a check runs, the commonest real task) and lands, whatever its text names; only
/// `protect` keeps such a file, and `orch check` says which files each gate protects. Seen
/// failing on main: "changed protected paths: data/expected.txt" after the check passed. Data
/// is what orch knows to be data (an interpreter's arguments after its script, a test
/// runner's): what a program whose grammar it does not know is handed may be code, protected
/// until the plan's `allow_protected` says otherwise.
#[test]
fn the_data_a_check_is_handed_is_the_tasks_to_change_unless_protect_names_it() {
    // Unset `protect`: the data changes with the work, the task lands.
    for (task, agent) in [
        (
            "Compute the answer",
            "echo 41 > out.txt && echo 41 > data/expected.txt",
        ),
        (
            "Extend the expected output",
            "printf '42\\n43\\n' > out.txt && printf '42\\n43\\n' > data/expected.txt",
        ),
    ] {
        let repo = Repo::bare_minimum();
        compare_setup(&repo, task, agent);
        let ev = repo.up_events(&[], 0);
        assert!(
            support::named(&ev, "task_failed").is_empty(),
            "{task}: {ev:?}"
        );
        assert_eq!(
            repo.git(&["show", "plan/p:data/expected.txt"]),
            repo.git(&["show", "plan/p:out.txt"]),
            "{task}"
        );
        assert_eq!(repo.subjects("plan/p").len(), 1, "{task}");
    }

    // A check whose program is a script of the repository: orch does not know its grammar, so
    // the file it is handed may be code and is protected as its script is (fail closed); the
    // refusal and `orch check` name the lead's way to say it is data, the plan's
    // `allow_protected`, and with it the task extends the file and lands.
    for allowed in [false, true] {
        let repo = Repo::bare_minimum();
        repo.write("ci/run-tests", "#!/bin/sh\ngrep -q ok \"$1\"\n");
        repo.write("tests/cases.txt", "ok\n");
        repo.git(&["update-index", "--add", "--chmod=+x", "ci/run-tests"]);
        std::fs::set_permissions(
            repo.root().join("ci/run-tests"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Add a case\n",
        );
        let plan_extra = if allowed {
            "allow_protected = [\"tests/cases.txt\"]"
        } else {
            ""
        };
        repo.manifest(
            &toml_array(&["sh", "-c", "echo 'ok again' >> tests/cases.txt"]),
            "",
            "retries = 0\ncheck = [\"ci/run-tests\", \"tests/cases.txt\"]\n",
            &[("p", plan_extra)],
        );
        repo.commit_all("plans");
        let (code, out, err) = repo.run(&["check"]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(
            out.contains("  check (p): ci/run-tests tests/cases.txt\n"),
            "{out}"
        );
        assert!(
            out.contains("    protects: ci/run-tests, tests/cases.txt\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "    protected as code, orch not knowing the grammar of the program they are handed to: tests/cases.txt (if data, name it in the plan's `allow_protected` to let its tasks change it)\n"
            ),
            "{out}"
        );
        if allowed {
            assert!(
                out.contains(
                    "  allow_protected (its tasks may change these protected paths): tests/cases.txt\n"
                ),
                "{out}"
            );
            repo.up(&[]);
            assert_eq!(
                repo.git(&["show", "plan/p:tests/cases.txt"]),
                "ok\nok again"
            );
            assert_eq!(repo.subjects("plan/p").len(), 1);
        } else {
            let ev = repo.up_events(&[], 5);
            let failed = support::named(&ev, "task_failed");
            assert_eq!(
                failed[0]["error"],
                "changed protected paths: tests/cases.txt (tests/cases.txt is protected: a gate's or hook's command line hands it to a program whose grammar orch does not know, which may run it; if it is data, name it in the plan's `allow_protected`)",
                "{failed:?}"
            );
            assert!(repo.subjects("plan/p").is_empty());
            assert_eq!(repo.git(&["show", "plan/p:tests/cases.txt"]), "ok");
        }
    }

    // `protect` names the data: kept, for every way of naming it.
    for glob in ["\"data/expected.txt\"", "\"data/**\"", "\"data/*.txt\""] {
        let repo = Repo::bare_minimum();
        compare_setup(
            &repo,
            "Compute the answer",
            "echo 41 > out.txt && echo 41 > data/expected.txt",
        );
        let text = String::from_utf8_lossy(&repo.read("plans.toml")).replace(
            "retries = 0\n",
            &format!("retries = 0\nprotect = [{glob}]\n"),
        );
        repo.write("plans.toml", &text);
        repo.commit_all("protect");
        let (code, out, err) = repo.run(&["check", "--json"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        let gate = &v["gates"][0];
        assert_eq!(gate["key"], "check", "{v}");
        assert_eq!(
            gate["protects"],
            serde_json::json!(["ci/compare.sh", "data/expected.txt"]),
            "{glob}: {v}"
        );
        assert_eq!(gate["free"], serde_json::json!([]), "{glob}: {v}");
        let ev = repo.up_events(&[], 5);
        let failed = support::named(&ev, "task_failed");
        assert_eq!(
            failed[0]["error"], "changed protected paths: data/expected.txt",
            "{glob}: {failed:?}"
        );
        assert!(repo.subjects("plan/p").is_empty(), "{glob}");
    }

    // Honest: out.txt, named by the check too, is made by the task: never listed, never kept.
    let repo = Repo::bare_minimum();
    compare_setup(&repo, "Compute the answer", "echo 42 > out.txt");
    let (_, out, _) = repo.run(&["check"]);
    assert!(!out.contains("out.txt ("), "{out}");
    repo.up(&[]);
    assert_eq!(repo.git(&["show", "plan/p:out.txt"]), "42");
}

/// orch's own configuration is protected whatever `protect` says: the files of `verify` (as of
/// `setup` and `[[notify]]` commands), `plans.toml` and the prompt templates.
#[test]
fn the_verify_script_is_protected_even_with_protect_globs() {
    let repo = Repo::bare_minimum();
    repo.write("ci/verify.sh", "exit 0\n");
    setup(
        &repo,
        "Do the work",
        &[
            "sh",
            "-c",
            "echo 'exit 0' >> ci/verify.sh && touch done.txt",
        ],
        "protect = [\"tests/**\"]\nverify = [\"sh\", \"ci/verify.sh\"]\nintegrate = \"off\"\n",
    );
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(
        failed[0]["error"], "changed protected paths: ci/verify.sh",
        "{failed:?}"
    );
    assert!(repo.subjects("plan/p").is_empty());
}

/// `allow_protected` of `[defaults]` lets every plan's tasks change `plans.toml`; without it,
/// a task whose text names `plans.toml` fails naming it. Seen failing on main: the task naming
/// it committed it.
#[test]
fn allow_protected_of_the_defaults_lets_a_task_change_plans_toml() {
    let agent = [
        "sh",
        "-c",
        "sed -i 's/^retries = 0$/retries = 1/' plans.toml && touch done.txt",
    ];
    let repo = Repo::bare_minimum();
    setup(&repo, "Raise the retries in `plans.toml`", &agent, "");
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(
        failed[0]["error"], "changed protected paths: plans.toml",
        "{failed:?}"
    );
    assert!(repo.subjects("plan/p").is_empty(), "nothing committed");

    let repo = Repo::bare_minimum();
    setup(
        &repo,
        "Raise the retries in `plans.toml`",
        &agent,
        "allow_protected = [\"plans.toml\"]\n",
    );
    repo.up(&[]);
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: Raise the retries in `plans.toml`"]
    );
    assert!(
        repo.git(&["show", "plan/p:plans.toml"])
            .contains("retries = 1")
    );
}

/// Whether `protect` is set or not (`[]`: nothing more), the data a check is handed is free to
/// change (a task extends the expected output) while the check's own script stays protected:
/// what a later run trusts is never dropped by `protect`. Seen failing on main: the script's
/// change was committed once `protect` was set.
#[test]
fn whatever_protect_says_the_checks_data_is_free_and_its_script_is_not() {
    for protect in ["", "[]", "[\"tests/**\"]"] {
        let data = |repo: &Repo, agent: &str| {
            compare_setup(repo, "Compute the answer", agent);
            let line = if protect.is_empty() {
                String::new()
            } else {
                format!("protect = {protect}\n")
            };
            let text = String::from_utf8_lossy(&repo.read("plans.toml"))
                .replace("retries = 0\n", &format!("retries = 0\n{line}"));
            if !line.is_empty() {
                repo.write("plans.toml", &text);
                repo.commit_all("protect");
            }
        };
        let repo = Repo::bare_minimum();
        data(&repo, "echo 41 > out.txt && echo 41 > data/expected.txt");
        repo.up(&[]);
        assert_eq!(
            repo.git(&["show", "plan/p:data/expected.txt"]),
            "41",
            "{protect}"
        );

        let repo = Repo::bare_minimum();
        data(&repo, "echo 42 > out.txt && echo 'exit 0' > ci/compare.sh");
        let ev = repo.up_events(&[], 5);
        let failed = support::named(&ev, "task_failed");
        assert_eq!(
            failed[0]["error"], "changed protected paths: ci/compare.sh",
            "{protect}: {failed:?}"
        );
        assert!(repo.subjects("plan/p").is_empty(), "{protect}");
    }
}

/// `orch check` shows the exemptions each plan has (`allow_protected`, the defaults' and its
/// own), in its text and in its JSON; a plan without one shows none.
#[test]
fn orch_check_shows_the_exemptions_a_plan_has() {
    let repo = Repo::bare_minimum();
    repo.write("ci/check.sh", "exit 0\n");
    for p in ["p", "q"] {
        repo.write(
            &format!("docs/plans/{p}.md"),
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Work\n",
        );
    }
    repo.manifest(
        &toml_array(&["true"]),
        "",
        "allow_protected = [\".gitmodules\"]\n",
        &[
            ("p", "allow_protected = [\"plans.toml\", \"ci/*.sh\"]"),
            ("q", ""),
        ],
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "plan `p` (docs/plans/p.md): 1 phase, 1 task, 0 verification steps\n  \
             allow_protected (its tasks may change these protected paths): .gitmodules, plans.toml, ci/*.sh\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "plan `q` (docs/plans/q.md): 1 phase, 1 task, 0 verification steps\n  \
             allow_protected (its tasks may change these protected paths): .gitmodules\n"
        ),
        "{out}"
    );
    let (code, out, err) = repo.run(&["check", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["plans"][0]["allow_protected"],
        serde_json::json!([".gitmodules", "plans.toml", "ci/*.sh"]),
        "{v}"
    );
    assert_eq!(
        v["plans"][1]["allow_protected"],
        serde_json::json!([".gitmodules"]),
        "{v}"
    );

    // Without the key: nothing shown, an empty list.
    let repo = Repo::bare_minimum();
    setup(&repo, "Work", &["true"], "");
    let (_, out, _) = repo.run(&["check"]);
    assert!(!out.contains("  allow_protected ("), "{out}");
    let (_, out, _) = repo.run(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["plans"][0]["allow_protected"],
        serde_json::json!([]),
        "{v}"
    );
}

/// `orch check` lists what each gate and hook loads without naming it, with why (`loads` in
/// JSON), and the files protected at any depth (`protected_anywhere`).
#[test]
fn orch_check_lists_the_code_a_gate_loads_without_naming_it() {
    let repo = Repo::bare_minimum();
    repo.write("ci/__init__.py", "");
    repo.write("ci/notify.py", "import sys\n");
    repo.write("Makefile", "include mk/rules.mk\ntest:\n\ttrue\n");
    repo.write("mk/rules.mk", "");
    repo.write("setup.py", "");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    repo.manifest(
        &toml_array(&["true"]),
        "\n[[notify]]\nevents = [\"run_finished\"]\ncommand = [\"python3\", \"-m\", \"ci.notify\"]\n",
        "retries = 0\ncheck = [\"make\", \"test\"]\n",
        &[("p", "")],
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["check", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let loads = |key: &str| -> Vec<String> {
        let gates = v["gates"].as_array().expect("gates");
        let gate = gates.iter().find(|g| g["key"] == key).expect(key);
        gate["loads"]
            .as_array()
            .expect("loads")
            .iter()
            .map(|l| {
                assert!(l["why"].as_str().is_some_and(|w| !w.is_empty()), "{l}");
                l["path"].as_str().expect("path").to_string()
            })
            .collect()
    };
    let check = loads("check");
    for want in ["Makefile", "GNUmakefile", "makefile", "mk/rules.mk"] {
        assert!(check.iter().any(|p| p == want), "{want}: {check:?}");
    }
    let notify = loads("notify");
    for want in ["ci", "ci.py", "setup.py"] {
        assert!(notify.iter().any(|p| p == want), "{want}: {notify:?}");
    }
    let anywhere = v["protected_anywhere"].as_array().expect("anywhere");
    for want in [
        "**/.claude/settings.json",
        "**/.claude/commands",
        "**/.github/hooks",
        "**/.vscode/tasks.json",
        "**/rust-toolchain.toml",
        "**/.cargo/config.toml",
        "**/.env",
    ] {
        assert!(anywhere.iter().any(|p| p == want), "{want}: {v}");
    }
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("  notify: python3 -m ci.notify\n    loads without naming it (protected as its script is):\n      ci: the package of `-m ci.notify`\n"),
        "{out}"
    );
}

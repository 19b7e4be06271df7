//! Live re-planning's pieces on real files in temp dirs.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const A: &str = "# Plan a\n\n## Phase 1: One\n- [ ] 1.1 First\n- [ ] 1.2 Second\n- [ ] 1.3 Third\n";
const B: &str = "# Plan b\n\n## Phase 1: One\n- [ ] 1.1 Only\n";

/// A repository directory with `plans.toml` naming plans `a` and `b`.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(manifest: &str) -> Self {
        let repo = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        repo.write("docs/a.md", A);
        repo.write("docs/b.md", B);
        repo.write("plans.toml", manifest);
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn manifest(&self) -> PathBuf {
        self.path("plans.toml")
    }

    fn load(&self) -> Workspace {
        match load_candidate(&self.manifest()) {
            Ok(ws) => ws,
            Err(e) => panic!("invalid: {e:?}"),
        }
    }

    fn invalid(&self) -> Invalid {
        match load_candidate(&self.manifest()) {
            Ok(_) => panic!("loaded an invalid configuration"),
            Err(e) => e,
        }
    }
}

const TWO: &str = "[defaults]\nmax_agents = 1\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\n";

#[test]
fn inputs_are_the_manifest_its_plans_and_the_templates() {
    let repo = Repo::new(TWO);
    let ws = repo.load();
    let root = std::path::absolute(repo.dir.path()).expect("absolute");
    assert_eq!(
        inputs_of(&ws),
        [
            root.join("plans.toml"),
            root.join("docs/a.md"),
            root.join("docs/b.md"),
            root.join("orch/templates/task.md"),
            root.join("orch/templates/plan.md"),
            root.join("orch/templates"),
        ]
    );
}

#[test]
fn missing_directories_are_watched_through_the_nearest_existing_one() {
    let repo = Repo::new(TWO);
    let inputs = inputs_of(&repo.load());
    let (dirs, names) = watched(&inputs);
    let root = std::path::absolute(repo.dir.path()).expect("absolute");
    // No `orch/templates`: the root reports `orch` being made.
    assert_eq!(
        dirs.into_iter().collect::<Vec<_>>(),
        [root.clone(), root.join("docs")]
    );
    for n in [
        "plans.toml",
        "a.md",
        "b.md",
        "task.md",
        "plan.md",
        "templates",
        "orch",
    ] {
        assert!(names.contains(std::ffi::OsStr::new(n)), "{n}: {names:?}");
    }
    repo.write("orch/templates/task.md", "{{ task_id }}\n");
    let (dirs, _) = watched(&inputs);
    assert!(dirs.contains(&root.join("orch/templates")), "{dirs:?}");
    assert!(dirs.contains(&root.join("orch")), "{dirs:?}");
}

#[tokio::test]
async fn a_file_renamed_over_an_input_is_reported() {
    let repo = Repo::new(TWO);
    let inputs = inputs_of(&repo.load());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _watcher = watch_inputs(&inputs, tx).expect("watch");
    // As an editor saves: a new file renamed over the old one.
    repo.write("docs/.a.md.swp", &format!("{A}- [ ] 1.4 Fourth\n"));
    std::fs::rename(repo.path("docs/.a.md.swp"), repo.path("docs/a.md")).expect("rename");
    let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
    assert_eq!(got.ok().flatten(), Some(()));
}

#[test]
fn a_fingerprint_changes_with_content_only() {
    let repo = Repo::new(TWO);
    let inputs = inputs_of(&repo.load());
    let before = fingerprint(&inputs);
    assert_eq!(before.len(), inputs.len());
    assert!(before[0].1.is_some(), "the manifest is read");
    assert_eq!(before[3].1, None, "no task.md");
    assert_eq!(before[5].1, None, "no templates directory");
    // A touch, or a burst of writes that ends where it began, is no change.
    repo.write("docs/a.md", "# scratch\n");
    repo.write("docs/a.md", A);
    assert_eq!(fingerprint(&inputs), before);
    assert!(changed_files(&before, &fingerprint(&inputs)).is_empty());
    repo.write("docs/b.md", &format!("{B}- [ ] 1.2 More\n"));
    repo.write("orch/templates/task.md", "{{ task_id }}\n");
    let after = fingerprint(&inputs);
    let root = std::path::absolute(repo.dir.path()).expect("absolute");
    assert_eq!(
        changed_files(&before, &after),
        [
            root.join("docs/b.md"),
            root.join("orch/templates/task.md"),
            root.join("orch/templates"),
        ]
    );
    assert_eq!(after[5].1, Some(Digest::DIR));
    // An input dropped from the list (a plan removed) is a changed file too.
    assert_eq!(
        changed_files(&after, &after[..2].to_vec()),
        [
            root.join("docs/b.md"),
            root.join("orch/templates/task.md"),
            root.join("orch/templates/plan.md"),
            root.join("orch/templates"),
        ]
    );
}

/// The first error's text: `<manifest>:line:col: error: …`.
fn first_error(invalid: &Invalid) -> &str {
    invalid.errors.first().map_or("", String::as_str)
}

#[test]
fn an_unknown_upstream_plan_is_invalid_at_its_place_in_the_manifest() {
    let repo = Repo::new(&format!("{TWO}depends_on = [\"c\"]\n"));
    let invalid = repo.invalid();
    assert_eq!(invalid.file, repo.manifest());
    let want = format!(
        "{}:11:15: error: plan `b` depends on unknown plan `c`",
        repo.manifest().display()
    );
    assert!(first_error(&invalid).starts_with(&want), "{invalid:?}");
    assert_eq!(invalid.errors.len(), 1, "{invalid:?}");
}

#[test]
fn a_dependency_cycle_is_invalid() {
    let manifest = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\ndepends_on = [\"b\"]\n\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\ndepends_on = [\"a:1\"]\n";
    let invalid = Repo::new(manifest).invalid();
    assert!(invalid.file.ends_with("plans.toml"), "{invalid:?}");
    assert!(
        first_error(&invalid).contains(": error: dependency cycle: "),
        "{invalid:?}"
    );
}

#[test]
fn a_toml_syntax_error_is_invalid_with_its_line() {
    let repo = Repo::new("[[plan]]\nname = \"a\"\nfile = \"docs/a.md\n");
    let invalid = repo.invalid();
    assert_eq!(invalid.file, repo.manifest());
    let at = format!("{}:3:", repo.manifest().display());
    assert!(first_error(&invalid).starts_with(&at), "{invalid:?}");
    assert!(first_error(&invalid).contains(": error: "), "{invalid:?}");
}

#[test]
fn an_error_in_a_plan_names_the_plan_file_and_keeps_its_hint() {
    let repo = Repo::new(TWO);
    repo.write(
        "docs/b.md",
        "# Plan b\n\n## Phase 1: One\n- [ ] 1.1 Only\n- [ ] 1.1 Again\n",
    );
    let invalid = repo.invalid();
    assert_eq!(
        invalid.file,
        std::path::absolute(repo.path("docs/b.md")).expect("absolute")
    );
    assert!(
        first_error(&invalid).starts_with("docs/b.md:5:"),
        "{invalid:?}"
    );
    assert!(
        first_error(&invalid).contains("duplicate task id `1.1`"),
        "{invalid:?}"
    );
    assert_eq!(
        invalid.event(),
        Event::ManifestInvalid {
            file: invalid.file.clone(),
            errors: invalid.errors.clone(),
        }
    );
}

#[test]
fn a_template_that_does_not_render_is_invalid() {
    let repo = Repo::new(TWO);
    repo.write("orch/templates/task.md", "line one\n{{ tsak_id }}\n");
    let invalid = repo.invalid();
    assert!(
        invalid.file.ends_with("orch/templates/task.md"),
        "{invalid:?}"
    );
    assert!(
        first_error(&invalid).starts_with("orch/templates/task.md:2: error: "),
        "{invalid:?}"
    );
    assert!(
        first_error(&invalid).contains("\n  hint: see `orch init`"),
        "{invalid:?}"
    );
}

#[test]
fn a_missing_manifest_is_invalid() {
    let repo = Repo::new(TWO);
    std::fs::remove_file(repo.manifest()).expect("rm");
    let invalid = repo.invalid();
    assert_eq!(invalid.file, repo.manifest());
    assert!(
        first_error(&invalid).contains("does not exist"),
        "{invalid:?}"
    );
}

#[test]
fn nothing_changed_is_no_change() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    // Lines moved down by a comment, the same keys in another order.
    repo.write(
        "plans.toml",
        "# comment\n\n[[plan]]\nfile = \"docs/a.md\"\nname = \"a\"\n\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\n\n[defaults]\nmax_agents = 1\n",
    );
    repo.write("docs/a.md", &format!("\n\n{A}"));
    assert_eq!(changes(&old, &repo.load()), Vec::<String>::new());
}

#[test]
fn changes_name_keys_plans_and_tasks() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    repo.write("docs/c.md", B);
    repo.write(
        "plans.toml",
        "[defaults]\nmax_agents = 3\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\ndepends_on = [\"c\"]\ntimeout = \"1h\"\n\n[[plan]]\nname = \"c\"\nfile = \"docs/c.md\"\npriority = 5\n",
    );
    repo.write(
        "docs/a.md",
        "# Plan a\n\n## Phase 1: One\n- [ ] 1.1 First\n- [ ] 1.2 Second, better\n- [ ] 1.4 Fourth\n",
    );
    let new = repo.load();
    assert_eq!(
        changes(&old, &new),
        [
            "max_agents 1 → 3",
            "plan a: depends_on [] → [c]",
            "plan a: timeout 2h → 1h",
            "plan a: task 1.2 changed",
            "plan a: task 1.4 added",
            "plan a: task 1.3 removed",
            "plan c: added",
            "plan b: removed",
        ]
    );
    // And back: the same lines the other way.
    assert_eq!(
        changes(&new, &old),
        [
            "max_agents 3 → 1",
            "plan a: depends_on [c] → []",
            "plan a: timeout 1h → 2h",
            "plan a: task 1.2 changed",
            "plan a: task 1.3 added",
            "plan a: task 1.4 removed",
            "plan b: added",
            "plan c: removed",
        ]
    );
}

#[test]
fn a_default_changed_is_not_repeated_for_every_plan() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    repo.write(
        "plans.toml",
        &TWO.replace(
            "max_agents = 1",
            "max_agents = 1\ntimeout = \"30m\"\nretries = 0",
        )
        .replace("name = \"b\"", "name = \"b\"\nretries = 4"),
    );
    assert_eq!(
        changes(&old, &repo.load()),
        ["timeout 2h → 30m", "retries 2 → 0", "plan b: retries 2 → 4",]
    );
}

#[test]
fn plans_and_tasks_reordered_and_many_tasks_counted() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    repo.write(
        "plans.toml",
        "[defaults]\nmax_agents = 1\n\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n",
    );
    let mut a = "# Plan a\n\n## Phase 1: One\n- [ ] 1.3 Third\n- [ ] 1.2 Second\n- [ ] 1.1 First\n"
        .to_string();
    for i in 4..=10 {
        a.push_str(&format!("- [ ] 1.{i} More\n"));
    }
    repo.write("docs/a.md", &a);
    assert_eq!(
        changes(&old, &repo.load()),
        [
            "plan a: tasks 7 added",
            "plan a: tasks reordered",
            "plans reordered",
        ]
    );
}

#[test]
fn a_template_among_the_changed_files_is_said() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    let inputs = inputs_of(&old);
    let before = fingerprint(&inputs);
    repo.write("orch/templates/plan.md", "Work on {{ plan }}.\n");
    let new = repo.load();
    let files = changed_files(&before, &fingerprint(&inputs));
    assert_eq!(changes_of(&old, &new, &files), ["templates changed"]);
    let plan_only = [std::path::absolute(repo.path("docs/a.md")).expect("absolute")];
    assert!(changes_of(&old, &new, &plan_only).is_empty());
}

#[test]
fn a_plan_file_read_failure_names_the_plan_file() {
    let repo = Repo::new(TWO);
    std::fs::write(repo.path("docs/b.md"), b"# Plan b\n\xff\n").expect("write");
    let invalid = repo.invalid();
    assert!(invalid.file.ends_with("docs/b.md"), "{invalid:?}");
    assert!(
        first_error(&invalid).contains("not valid UTF-8"),
        "{invalid:?}"
    );
}

#[test]
fn a_plan_title_phases_and_notes_are_changes() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    repo.write(
        "docs/a.md",
        "# Plan a, renamed\n\n## Phase 1: Uno\n**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - one file\n- [ ] 1.1 First\n- [ ] 1.2 Second\n- [ ] 1.3 Third\n",
    );
    assert_eq!(
        changes(&old, &repo.load()),
        [
            "plan a: title changed",
            "plan a: phases changed",
            "plan a: execution notes changed",
        ]
    );
}

#[test]
fn agents_and_notify_hooks_are_changes() {
    let repo = Repo::new(TWO);
    let old = repo.load();
    repo.write(
        "plans.toml",
        &format!(
            "{TWO}agent = \"script\"\n\n[agents.script]\ncommand = [\"sh\", \"agent.sh\", \"{{{{ task }}}}\"]\n\n[[notify]]\ncommand = [\"true\"]\n"
        ),
    );
    assert_eq!(
        changes(&old, &repo.load()),
        [
            "agent script: added",
            "notify changed",
            "plan b: agent claude → script",
        ]
    );
}

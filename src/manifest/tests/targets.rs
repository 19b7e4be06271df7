//! Dependency targets and cycles between plans.

use super::*;

fn shape(phases: &[u32], tasks: &[&str]) -> PlanShape {
    PlanShape {
        stories: Vec::new(),
        phases: phases.to_vec(),
        tasks: tasks.iter().map(|t| (*t).to_string()).collect(),
    }
}

#[test]
fn check_targets_reports_missing_phase_and_task() {
    let repo = Repo::new();
    let m = repo
        .load(
            "[[plan]]\nname = \"auth\"\nfile = \"docs/a.md\"\n\n[[plan]]\nname = \"api\"\nfile = \"docs/b.md\"\ndepends_on = [\"auth:9\", \"auth:2.7\", \"auth:2\", \"auth:2.1\", \"auth\", \"auth:4.1\"]\n",
        )
        .expect("valid");
    let mut shapes = HashMap::new();
    shapes.insert(
        "auth".to_string(),
        shape(&[1, 2, 3], &["1.1", "2.1", "2.2", "3.1"]),
    );
    let errors = check_targets(&m, &shapes);
    let got: Vec<(usize, Option<usize>, &str)> = errors
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                8,
                Some(15),
                "plan `auth` has no phase 9 (its phases: 1, 2, 3)"
            ),
            (
                8,
                Some(25),
                "plan `auth` has no task 2.7 (tasks of its phase 2: 2.1, 2.2)"
            ),
            (
                8,
                Some(67),
                "plan `auth` has no task 4.1 and no phase 4 (its phases: 1, 2, 3)"
            ),
        ]
    );
    assert_eq!(errors[0].path, m.path);
    // A plan whose file failed to parse is absent from the map: nothing is checked.
    assert!(check_targets(&m, &HashMap::new()).is_empty());
}

#[test]
fn three_plan_cycle_is_reported_with_its_path() {
    let repo = Repo::new();
    let manifest = r#"[[plan]]
name = "a"
file = "docs/a.md"
depends_on = ["b:1"]

[[plan]]
name = "b"
file = "docs/b.md"
depends_on = ["c"]

[[plan]]
name = "c"
file = "docs/c.md"
depends_on = ["a:1.2"]
"#;
    repo.one_error(manifest, 14, 15, "dependency cycle: `a` → `b` → `c` → `a`");
}

#[test]
fn two_separate_cycles_and_no_false_positives() {
    let repo = Repo::new();
    let manifest = r#"[[plan]]
name = "a"
file = "docs/a.md"
depends_on = ["b"]

[[plan]]
name = "b"
file = "docs/b.md"
depends_on = ["a"]

[[plan]]
name = "c"
file = "docs/c.md"
depends_on = ["a", "b"]
"#;
    let d = repo.one_error(manifest, 9, 15, "dependency cycle: `a` → `b` → `a`");
    assert!(d.is_error());
    // A diamond is not a cycle.
    let diamond = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\ndepends_on = [\"a\"]\n[[plan]]\nname = \"c\"\nfile = \"docs/c.md\"\ndepends_on = [\"a\", \"b:1\"]\n";
    repo.load(diamond).expect("diamond is fine");
}

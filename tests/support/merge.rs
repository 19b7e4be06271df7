//! What the `orch merge` tests share (tests/merge.rs, tests/merge_verify.rs): plans `a`, `b`, `c`
//! finished by a real `orch up` with a scripted agent, `orch merge --json`'s steps, and a snapshot
//! of what a refused merge must leave as it was.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Repo, fixtures, toml_array};

/// A repository with `README.md` whose committer identity is in its config: verify commands in
/// these tests commit with the git CLI, outside the test's env.
pub fn new_repo() -> Repo {
    Repo::builder().identity_in_config().build()
}

/// `orch merge --json ARGS`: exit code and the printed object.
pub fn merge_json(repo: &Repo, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["merge", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = repo.run(&all);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr:\n{err}"));
    (code, v, err)
}

/// The state a failed or refused merge must leave exactly as it was.
pub fn snapshot(repo: &Repo) -> Snapshot {
    let mut files = BTreeMap::new();
    for rel in ["README.md", "a.txt", "b.txt", "c.txt"] {
        files.insert(rel.to_string(), repo.read(rel));
    }
    Snapshot {
        refs: repo.refs(),
        index: repo.read(".git/index"),
        files,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub refs: String,
    pub index: Vec<u8>,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A plan: name, its markdown, extra `[[plan]]` lines.
pub type PlanSpec<'a> = (&'a str, &'a str, &'a str);

pub const A: &str =
    "# A\n\n## Phase 1: Work\n- [ ] 1.1 Start a\n- [ ] 1.2 Finish a (depends: 1.1)\n";
pub const B: &str = "# B\n\n## Phase 1: Work\n- [ ] 1.1 Do b\n";
pub const C: &str = "# C\n\n## Phase 1: Work\n- [ ] 1.1 Do c\n";

/// The usual three: `a` (two tasks), `b` depending on `a` (and of higher priority), `c` on its
/// own. Each plan's agent writes `<plan>.txt`.
pub const ABC: [PlanSpec; 3] = [
    ("a", A, ""),
    ("b", B, "priority = 10\ndepends_on = [\"a\"]\n"),
    ("c", C, ""),
];

/// Writes the manifest (with `defaults` lines added) and plans, commits them, and runs
/// `orch up` for the plans named in `up` (all when empty) to completion.
pub fn finished(plans: &[PlanSpec], defaults: &str, up: &[&str]) -> Repo {
    let repo = new_repo();
    let ok = fixtures().join("ok.sh");
    // These runs only finish the plans for `orch merge`: no integration preview (with `verify`
    // set it would run the verify command at the run's end; tests/integrate*.rs test it).
    let preview = if defaults.contains("integrate") {
        ""
    } else {
        "integrate = \"off\"\n"
    };
    let mut manifest = format!(
        "[defaults]\nagent = \"ok\"\nmax_agents = 3\n{preview}{defaults}\n[agents.ok]\ncommand = {}\n",
        toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"])
    );
    for (name, text, extra) in plans {
        repo.write(&format!("docs/plans/{name}.md"), text);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let mut args = vec!["up"];
    args.extend_from_slice(up);
    let (code, out, err) = repo.run(&args);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    repo
}

pub fn step<'v>(v: &'v Value, plan: &str) -> &'v Value {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["plan"] == plan)
        .unwrap_or_else(|| panic!("no step for `{plan}` in {v:#}"))
}

pub fn results(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["plan"].as_str().expect("plan").to_string(),
                s["result"].as_str().expect("result").to_string(),
            )
        })
        .collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

//! Three real repositories side by side in one temp dir (home with plans.toml, api, client)
//! and the manifest of the end-to-end runs of plans across repositories (`tests/repos*.rs`).

use std::path::Path;

use serde_json::Value;

use super::{Repo, disk_snapshot};

/// Three repositories in one directory: `home` (plans.toml), `api`, `client`.
pub struct Three {
    _dir: tempfile::TempDir,
    pub home: Repo,
    pub api: Repo,
    pub client: Repo,
}

impl Three {
    pub fn new() -> Self {
        Self::in_dir(tempfile::tempdir().expect("tempdir"))
    }

    /// The three under `parent` (for plans that run through Slurm: [`super::slurm::disk_dir`]).
    pub fn under(parent: &Path) -> Self {
        Self::in_dir(tempfile::tempdir_in(parent).expect("tempdir"))
    }

    fn in_dir(dir: tempfile::TempDir) -> Self {
        let make = || Repo::builder().under(dir.path()).canonical().build();
        let (home, api, client) = (make(), make(), make());
        Three {
            _dir: dir,
            home,
            api,
            client,
        }
    }

    /// `../<dir name>` of `repo`, as plans.toml names it.
    pub fn rel(repo: &Repo) -> String {
        let name = repo.root().file_name().expect("name").to_string_lossy();
        format!("../{name}")
    }

    /// Every file and ref of the three repositories.
    pub fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in [&self.home, &self.api, &self.client] {
            out.push(format!("{:?}", disk_snapshot(r.root())));
            out.push(r.refs());
        }
        out
    }
}

pub const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n";

pub fn repo_table(name: &str, path: &str) -> String {
    format!("\n[[repo]]\nname = \"{name}\"\npath = \"{path}\"\n")
}

pub fn plan_table(name: &str, file: &str, extra: &str) -> String {
    format!("\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{file}.md\"\n{extra}")
}

/// The manifest of the end-to-end runs: plan `v2` in api (two phases), `client-v2` in client
/// (`client_deps` its extra lines), `docs` in the home repository; every agent
/// `repos_agent.sh` recording into `journal`.
pub fn run_manifest(t: &Three, journal: &Path, defaults: &str, client_deps: &str) {
    let two = "# V2\n\n## Phase 1: Endpoint\n- [ ] 1.1 Add the endpoint\n\n## Phase 2: Docs\n- [ ] 2.1 Document it\n";
    t.home.write("plans/v2.md", two);
    t.home.write("plans/client.md", PLAN);
    t.home.write("plans/docs.md", PLAN);
    let toml = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n[agents.a]\ncommand = {}\n{}{}{}{}{}",
        super::agent_at("repos_agent.sh", &[journal]),
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "v2", "repo = \"api\"\n"),
        plan_table(
            "client-v2",
            "client",
            &format!("repo = \"client\"\n{client_deps}")
        ),
        plan_table("docs", "docs", ""),
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
}

pub fn exists(r: &Repo, rev: &str) -> bool {
    r.git_ok(&["rev-parse", "--verify", "-q", rev])
}

/// The three repositories with every plan finished by `orch up`: `v2` (api), `client-v2`
/// (client, waiting for `v2:1`), `docs` (home); `defaults` lines added (`verify_all`).
pub fn finished_three(defaults: &str) -> (Three, tempfile::TempDir) {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(&t, journal.path(), defaults, "depends_on = [\"v2:1\"]\n");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    (t, journal)
}

/// The tips of api's and client's `main`.
pub fn mains(t: &Three) -> (String, String) {
    (t.api.rev("main"), t.client.rev("main"))
}

pub fn no_landing_left(t: &Three) {
    for r in [&t.api, &t.client, &t.home] {
        assert!(r.refs_under("refs/orch/landing").is_empty(), "{}", r.refs());
    }
    assert!(!t.home.root().join(".orch/state/.landing.json").exists());
}

/// The first JSON document of `orch merge --json`'s output (the groups').
pub fn groups_doc(out: &str) -> Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON document: {out}"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The `orchMerge` record of `plan`, in repository `r`'s status file.
pub fn record(r: &Repo, plan: &str) -> Value {
    let path = r.root().join(format!(".orch/state/{plan}/status.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("status json");
    v["orchMerge"].clone()
}

/// Nothing of a resolution is left: no resolution worktree in any of the three repositories.
pub fn no_resolution_left(t: &Three) {
    for r in [&t.home, &t.api, &t.client] {
        assert!(
            !r.worktrees().iter().any(|w| w.contains(".resolve-")),
            "{:?}",
            r.worktrees()
        );
    }
}

/// The plans of a group that `orch up --merge --json` merged (`plan_merged` events), in order;
/// the home repository's own plan `docs` left out.
pub fn merged_in_order(ev: &[Value]) -> Vec<String> {
    super::named(ev, "plan_merged")
        .iter()
        .filter_map(|e| e["plan"].as_str())
        .filter(|p| *p != "docs")
        .map(str::to_string)
        .collect()
}

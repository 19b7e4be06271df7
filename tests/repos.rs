//! Several repositories, one manifest: `[[repo]]` tables, a plan's `repo`, `land_with` and
//! `verify_all`, run against the real binary in three real repositories side by side (home, api,
//! client) in one temp dir.

mod support;

use support::{Repo, disk_snapshot};

/// Three repositories in one directory: `home` (plans.toml), `api`, `client`.
struct Three {
    _dir: tempfile::TempDir,
    home: Repo,
    api: Repo,
    client: Repo,
}

impl Three {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
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
    fn rel(repo: &Repo) -> String {
        let name = repo.root().file_name().expect("name").to_string_lossy();
        format!("../{name}")
    }

    /// Every file and ref of the three repositories.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in [&self.home, &self.api, &self.client] {
            out.push(format!("{:?}", disk_snapshot(r.root())));
            out.push(r.refs());
        }
        out
    }
}

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n";

/// `[defaults]` and one agent: lines 1–5.
const HEAD: &str = "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n";

/// Writes `toml` as the home repository's plans.toml with plan files `p`, `q`, `r`, commits,
/// runs `orch check` and asserts exit 2, each of `expect` in its output, and nothing changed in
/// any of the three repositories.
fn refused(three: &Three, toml: &str, expect: &[&str]) {
    for f in ["p", "q", "r"] {
        three.home.write(&format!("plans/{f}.md"), PLAN);
    }
    three.home.write("plans.toml", toml);
    three.home.commit_all("plans");
    let before = three.snapshot();
    let (code, out, err) = three.home.run(&["check"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "orch check:\n{all}\n--- plans.toml:\n{toml}");
    for e in expect {
        assert!(
            all.contains(e),
            "lacks `{e}`:\n{all}\n--- plans.toml:\n{toml}"
        );
    }
    assert!(!all.contains("panicked"), "{all}");
    assert_eq!(three.snapshot(), before, "orch check changed something");
}

fn repo_table(name: &str, path: &str) -> String {
    format!("\n[[repo]]\nname = \"{name}\"\npath = \"{path}\"\n")
}

fn plan_table(name: &str, file: &str, extra: &str) -> String {
    format!("\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{file}.md\"\n{extra}")
}

#[test]
fn check_accepts_plans_of_three_repositories() {
    let t = Three::new();
    let toml = format!(
        "[defaults]\nverify_all = [\"true\"]\n{}{}{}{}{}{}",
        &HEAD["[defaults]\n".len()..],
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\n"),
        plan_table(
            "client-v2",
            "q",
            "repo = \"client\"\ndepends_on = [\"v2:1\"]\nland_with = [\"v2\"]\n"
        ),
        plan_table("docs", "r", ""),
    );
    for f in ["p", "q", "r"] {
        t.home.write(&format!("plans/{f}.md"), PLAN);
    }
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
    let (code, out, err) = t.home.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_refuses_an_unknown_repository() {
    // Lines: HEAD 1–5, [[repo]] api 7–9, [[plan]] 11–14 (`repo` at 14).
    let t = Three::new();
    for name in ["nope", "API", "client", "api/../api", ""] {
        let toml = format!(
            "{HEAD}{}{}",
            repo_table("api", &Three::rel(&t.api)),
            plan_table("p", "p", &format!("repo = \"{name}\"\n")),
        );
        let what = format!("names unknown repository `{name}`");
        refused(&t, &toml, &["plans.toml:14:8", &what, "`api`"]);
    }
}

#[test]
fn check_refuses_a_path_that_is_not_a_git_repository() {
    let t = Three::new();
    let parent = t.api.root().parent().expect("parent").to_path_buf();
    std::fs::create_dir_all(parent.join("plain")).expect("mkdir");
    std::fs::write(parent.join("a-file"), "x").expect("file");
    std::fs::create_dir_all(t.api.root().join("sub")).expect("mkdir");
    std::fs::write(t.api.root().join("sub/keep"), "x").expect("file");
    let cases = [
        ("../plain".to_string(), "is not a git repository"),
        ("../a-file".to_string(), "is not a directory"),
        ("../missing".to_string(), "does not exist"),
        (
            format!("{}/sub", Three::rel(&t.api)),
            "is not a git repository",
        ),
        (".".to_string(), "is the repository of plans.toml itself"),
    ];
    for (path, why) in cases {
        // The `path` value is at line 9, column 8.
        let toml = format!(
            "{HEAD}{}{}",
            repo_table("api", &path),
            plan_table("p", "p", "repo = \"api\"\n"),
        );
        refused(&t, &toml, &["plans.toml:9:8", why]);
    }
}

#[test]
fn check_refuses_a_cycle_of_repositories() {
    let t = Three::new();
    // api's `v2` waits for client's `c1`, client's `c2` waits for api's `v2`: no plan cycle, but
    // api must land before client and client before api.
    let toml = format!(
        "{HEAD}{}{}{}{}{}",
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\ndepends_on = [\"c1\"]\n"),
        plan_table("c1", "q", "repo = \"client\"\n"),
        plan_table("c2", "r", "repo = \"client\"\ndepends_on = [\"v2:1\"]\n"),
    );
    refused(&t, &toml, &["plans.toml:", "cycle of repositories"]);
    // Three repositories in a ring, through the home repository.
    let toml = format!(
        "{HEAD}{}{}{}{}{}",
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\ndepends_on = [\"h\"]\n"),
        plan_table("c1", "q", "repo = \"client\"\ndepends_on = [\"v2\"]\n"),
        plan_table("h", "r", "depends_on = [\"c1:1\"]\n"),
    );
    refused(&t, &toml, &["cycle"]);
}

#[test]
fn check_refuses_duplicate_repository_names() {
    let t = Three::new();
    let api = Three::rel(&t.api);
    let client = Three::rel(&t.client);
    let dup = format!(
        "{HEAD}{}{}",
        repo_table("api", &api),
        repo_table("api", &client)
    );
    // The second `name` is at line 12.
    refused(
        &t,
        &dup,
        &[
            "plans.toml:12:8",
            "duplicate repository name `api` (first defined at line 8)",
        ],
    );
    let same_var = format!(
        "{HEAD}{}{}",
        repo_table("web-api", &api),
        repo_table("web_api", &client)
    );
    refused(&t, &same_var, &["plans.toml:12:8", "ORCH_REPO_WEB_API"]);
    let same_path = format!("{HEAD}{}{}", repo_table("api", &api), repo_table("b", &api));
    refused(
        &t,
        &same_path,
        &["plans.toml:13:8", "has the path of repository `api`"],
    );
    let home = format!("{HEAD}{}", repo_table("home", &api));
    refused(&t, &home, &["plans.toml:8:8", "`home`"]);
    let bad_land = format!(
        "{HEAD}{}{}",
        repo_table("api", &api),
        plan_table("p", "p", "repo = \"api\"\nland_with = [\"ghost\"]\n")
    );
    refused(
        &t,
        &bad_land,
        &["plans.toml:15:", "lands with unknown plan `ghost`"],
    );
}

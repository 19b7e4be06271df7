//! `orch pr` with plans of several repositories: one pull request per plan in its own
//! repository (pushed to that repository's remote, `gh` run there), each linking the others of
//! its group and saying the order to merge. Three real repositories, a bare remote each, and the
//! fake `gh` of tests/fixtures/gh on PATH.

use crate::support;

use std::path::{Path, PathBuf};

use support::Repo;
use support::three::{Three, finished_three};

/// A bare repository beside `r`, its `origin`.
fn with_remote(r: &Repo, name: &str) -> PathBuf {
    let remote = r.outside(&format!("{name}-remote.git"));
    r.git(&["init", "-q", "--bare", remote.to_str().expect("utf8")]);
    r.git(&["remote", "add", "origin", remote.to_str().expect("utf8")]);
    remote
}

fn remote_tip(r: &Repo, remote: &Path, branch: &str) -> Option<String> {
    let out = r.git_in(
        remote,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `orch pr ARGS` in the home repository with the fake gh first on PATH.
fn pr(t: &Three, state: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["pr"];
    all.extend_from_slice(args);
    let mut cmd = t.home.orch(&all);
    let gh_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gh");
    let path = format!(
        "{}:{}",
        gh_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("GH_LOG", state.join("gh.log"))
        .env("GH_STATE", state.join("gh-state"))
        .env("GH_CWD_LOG", state.join("gh-cwd.log"));
    t.home.run_cmd(&mut cmd)
}

/// `(directory, argv)` of every `gh` call.
fn gh_calls(state: &Path) -> Vec<(PathBuf, Vec<String>)> {
    std::fs::read_to_string(state.join("gh-cwd.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (dir, rest) = l.split_once('\t')?;
            let argv = rest
                .trim_end_matches('\t')
                .split('\t')
                .map(str::to_string)
                .collect();
            Some((PathBuf::from(dir), argv))
        })
        .collect()
}

fn flag<'c>(call: &'c [String], name: &str) -> &'c str {
    let i = call
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("no {name} in {call:?}"));
    &call[i + 1]
}

#[test]
fn each_plan_gets_its_pull_request_in_its_repository_linking_its_group() {
    let (t, _journal) = finished_three("");
    let remotes = [
        with_remote(&t.home, "home"),
        with_remote(&t.api, "api"),
        with_remote(&t.client, "client"),
    ];
    let state = tempfile::tempdir().expect("state");
    let (code, out, err) = pr(&t, state.path(), &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Each branch pushed to its own repository's remote, and only there.
    for (r, remote, branch) in [
        (&t.home, &remotes[0], "plan/docs"),
        (&t.api, &remotes[1], "plan/v2"),
        (&t.client, &remotes[2], "plan/client-v2"),
    ] {
        assert_eq!(
            remote_tip(r, remote, branch),
            Some(r.rev(branch)),
            "{branch}"
        );
        for other in &remotes {
            if other != remote {
                assert_eq!(
                    remote_tip(r, other, branch),
                    None,
                    "{branch} pushed elsewhere"
                );
            }
        }
    }
    // Each pull request opened in its repository, on its repository's target: the api plan is
    // no base of the client's (another repository).
    let calls = gh_calls(state.path());
    let creates: Vec<&(PathBuf, Vec<String>)> =
        calls.iter().filter(|(_, a)| a[1] == "create").collect();
    assert_eq!(creates.len(), 3, "{calls:?}");
    let create_of = |branch: &str| {
        creates
            .iter()
            .find(|(_, a)| flag(a, "--head") == branch)
            .unwrap_or_else(|| panic!("no pull request for {branch}: {calls:?}"))
    };
    for (r, branch) in [
        (&t.home, "plan/docs"),
        (&t.api, "plan/v2"),
        (&t.client, "plan/client-v2"),
    ] {
        let (dir, argv) = create_of(branch);
        assert_eq!(dir, r.root(), "{branch} opened in {}", dir.display());
        assert_eq!(flag(argv, "--base"), "main", "{argv:?}");
    }
    // Upstream first.
    let pos = |b: &str| creates.iter().position(|(_, a)| flag(a, "--head") == b);
    assert!(pos("plan/v2") < pos("plan/client-v2"));
    // Each body of the group names the other with its link, and the order to merge.
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let number = |plan: &str| {
        v["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|p| p["plan"] == plan)
            .and_then(|p| p["number"].as_u64())
            .unwrap_or_else(|| panic!("no number for {plan}: {v}"))
    };
    let body = |plan: &str| {
        std::fs::read_to_string(state.path().join(format!("gh-state/body-{}", number(plan))))
            .expect("body")
    };
    let (api_n, client_n) = (number("v2"), number("client-v2"));
    let api_body = body("v2");
    let client_body = body("client-v2");
    for b in [&api_body, &client_body] {
        assert!(b.contains("## Lands together"), "{b}");
        assert!(b.contains("Merge them in this order"), "{b}");
        let first = b.find("1. `v2` in repository `api`").expect("v2 first");
        let second = b
            .find("2. `client-v2` in repository `client`")
            .expect("client second");
        assert!(first < second, "{b}");
    }
    assert!(
        api_body.contains(&format!("https://github.com/o/r/pull/{client_n}")),
        "{api_body}"
    );
    assert!(
        client_body.contains(&format!("https://github.com/o/r/pull/{api_n}")),
        "{client_body}"
    );
    assert!(
        api_body.contains("`v2` in repository `api` (this one)"),
        "{api_body}"
    );
    // The api PR's body was written again (in api) once the client's link was known.
    assert!(
        calls
            .iter()
            .any(|(dir, a)| a[1] == "edit" && a[2] == api_n.to_string() && dir == t.api.root()),
        "{calls:?}"
    );
    // The home plan alone says nothing of a group.
    assert!(!body("docs").contains("Lands together"));
    // Again: every pull request updated in its repository, none opened twice.
    let (code, out, err) = pr(&t, state.path(), &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let calls = gh_calls(state.path());
    assert_eq!(calls.iter().filter(|(_, a)| a[1] == "create").count(), 3);
}

#[test]
fn the_review_loop_never_follows_a_pull_request_of_another_repository_at_home() {
    let (t, _journal) = finished_three("");
    for (r, n) in [(&t.home, "home"), (&t.api, "api"), (&t.client, "client")] {
        with_remote(r, n);
    }
    let state = tempfile::tempdir().expect("state");
    let (code, out, err) = pr(&t, state.path(), &["--watch", "--once", "--json"]);
    let all = format!("{out}\n{err}");
    for (plan, repo) in [("v2", "api"), ("client-v2", "client")] {
        assert!(
            all.contains(&format!(
                "plan `{plan}` changes repository `{repo}`: the review loop follows pull requests of the home repository only"
            )),
            "{all}"
        );
    }
    assert_eq!(code, 1, "{all}");
    // No `gh pr view` of their numbers ran in the home repository.
    let calls = gh_calls(state.path());
    let views: Vec<_> = calls.iter().filter(|(_, a)| a[1] == "view").collect();
    assert!(
        views.iter().all(|(dir, _)| dir == t.home.root()),
        "{calls:?}"
    );
    assert!(views.len() <= 1, "only the home plan's: {calls:?}");
}

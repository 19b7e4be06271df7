//! An attempt's report directory that is not the one orch made. An agent of plan `p*` with
//! `sandbox = "off"` (in its plan's container, which mounts its plan's report directories
//! read-write, or here) swaps its attempt's directory for a link to plan q's attempt's
//! directory or to a directory of the host holding reports, moves another directory of its own
//! into its place, swaps its plan's whole report directory for a link (here), or makes a
//! person's directory (`person-x/report.json`) beside it; meanwhile plan q's agent (confined in
//! its container) reports `orch task done 1.1`. q's task completes by q's own report, and q's
//! agent hears its own answer; every forged report is refused (one note per swapped directory,
//! nothing for a `person-*` that is nobody's); nothing behind a link is read, renamed or
//! written (the host directories are as they were, byte for byte), a directory that is not
//! orch's is left as the agent made it, and no plan p's status says anything of q's report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Repo, named, toml_array};

/// The report every forgery carries: task 1.1 done.
const FORGED: &str = r#"{"seq":"evil","transition":"done","id":"1.1","note":"forged"}"#;

/// A directory of the host holding reports (`report.json`, as an attempt's directory would,
/// and `1.1.1/report.json`, as a plan's report directory would) and a file of its own.
fn host_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(d.join("1.1.1")).expect("host dir");
    std::fs::write(d.join("report.json"), FORGED).expect("report");
    std::fs::write(d.join("1.1.1/report.json"), FORGED).expect("report");
    std::fs::write(d.join("keep.txt"), "keep").expect("keep");
    d
}

/// Plan q (honest) and one hostile plan per `(name, what, argument)`, each a one-task plan run
/// by `hostile_report_dir.sh` (copied into the repository: a container sees only the
/// worktree); `container`: in containers of the test image, q's agent confined there.
fn hostile_repo(evil: &[(&str, &str, &Path)], container: bool) -> Repo {
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    let script = std::fs::read_to_string(support::fixtures().join("hostile_report_dir.sh"))
        .expect("fixture");
    repo.write("scripts/report_dir.sh", &script);
    let executor = if container {
        format!(
            "executor = \"container\"\nimage = \"{}\"\n",
            support::podman::IMAGE
        )
    } else {
        String::new()
    };
    let mut toml =
        format!("[defaults]\nretries = 0\nmax_agents = 8\ntimeout = \"4m\"\n{executor}\n");
    for (name, what, arg) in evil {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &support::one_task("P", "never does its work"),
        );
        let argv = toml_array(&["sh", "scripts/report_dir.sh", what, support::utf8(arg)]);
        toml.push_str(&format!(
            "[agents.{name}]\ncommand = {argv}\nreport = \"orch\"\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\nagent = \"{name}\"\n\n"
        ));
    }
    // Plan q last: the run looks at the hostile plans' directories first.
    let q_sandbox = if container { "on" } else { "off" };
    toml.push_str(&format!(
        "[agents.honest]\ncommand = {}\nreport = \"orch\"\nsandbox = \"{q_sandbox}\"\n\n\
         [[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"honest\"\n",
        toml_array(&["sh", "scripts/report_dir.sh", "honest"])
    ));
    repo.write("docs/plans/q.md", &support::one_task("Q", "honest task"));
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    repo
}

/// Runs `orch up` with the hostile plans `evil` of `repo`: once each has done what it does
/// (`swapped` in its worktree), q's agent is let go; once q's task has ended, the others are.
/// Every event of the run.
fn run_hostile(repo: &Repo, evil: &[(&str, &str, &Path)], container: bool) -> Vec<Value> {
    let tree = |plan: &str| repo.root().join(format!(".orch/worktrees/{plan}"));
    let err = std::fs::File::create(repo.outside("up.err")).expect("stderr file");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.stderr(Stdio::from(err));
    if container {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let mut child = cmd.spawn().expect("spawn orch up");
    let lines = support::read_lines(&mut child);
    support::process::wait_for("the hostile agents to do what they do", || {
        evil.iter()
            .all(|(p, _, _)| tree(p).join("swapped").exists())
    });
    for (p, what, _) in evil {
        let swapped = std::fs::read_to_string(tree(p).join("swapped")).unwrap_or_default();
        assert_eq!(
            swapped.trim(),
            format!("0 {what}"),
            "plan {p} did not do it"
        );
    }
    std::fs::write(tree("q").join("go"), "").expect("go");
    let mut seen = Vec::new();
    support::wait_line(&lines, &mut seen, |v| {
        v["plan"] == "q" && (v["event"] == "task_finished" || v["event"] == "task_failed")
    });
    for (p, _, _) in evil {
        std::fs::write(tree(p).join("release"), "").expect("release");
    }
    let out = support::wait_within(child, Duration::from_secs(240), "orch up");
    seen.extend(lines.try_iter());
    eprintln!(
        "orch up: {:?}\n{}",
        out.status,
        std::fs::read_to_string(repo.outside("up.err")).unwrap_or_default()
    );
    seen
}

/// What holds for every variant: q completed by its own report, and its agent heard its own
/// answer; each hostile plan's task not completed, its status silent on q's report and on the
/// forgery; one note for each swapped directory, none for q; no report of q refused.
fn nothing_was_taken(repo: &Repo, evil: &[(&str, &str, &Path)], ev: &[Value]) {
    let all = format!("{ev:#?}");
    let q = repo.task("q", "1.1");
    assert_eq!(q["status"], "completed", "{q}\n{all}");
    assert_eq!(q["notes"], "q honest report", "{q}");
    let heard = repo.git(&["show", "plan/q:q-report.txt"]);
    assert!(
        heard.contains("q: task `1.1`") && heard.contains("rc=0"),
        "q's agent heard another answer: {heard}"
    );
    for (p, _, _) in evil {
        assert!(!heard.contains(&format!("{p}:")), "{heard}");
    }
    for (p, what, _) in evil {
        let status = repo.task(p, "1.1");
        assert_ne!(
            status["status"], "completed",
            "{p} ({what}): {status}\n{all}"
        );
        let text = std::fs::read_to_string(repo.status_path(p)).expect("status");
        assert!(
            !text.contains("q honest report") && !text.contains("forged"),
            "{p} ({what}): {text}"
        );
        let notes: Vec<&Value> = named(ev, "note")
            .into_iter()
            .filter(|e| {
                e["plan"] == *p
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("is not the one orch made"))
            })
            .collect();
        let expected = usize::from(*what != "person");
        assert_eq!(notes.len(), expected, "{p} ({what}): {notes:?}\n{all}");
    }
    assert!(
        named(ev, "report_refused").iter().all(|e| e["plan"] != "q"),
        "{all}"
    );
}

/// The entries of a directory of the reports, by name.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After the run: the directory moved into an attempt's place and a `person-x` directory are
/// as the agent made them (their report neither taken nor answered), and the links are gone
/// (removed themselves).
fn left_as_made(repo: &Repo, evil: &[(&str, &str, &Path)]) {
    let reports = repo.root().join(".orch/state/.reports");
    for (p, what, _) in evil {
        let dir = reports.join(p);
        let kept = match *what {
            "moved" => dir.join("1.1.1"),
            "person" => dir.join("person-x"),
            "link-plan" | "link-host" => {
                assert!(
                    std::fs::symlink_metadata(dir.join("1.1.1")).is_err(),
                    "{p}: the link is left"
                );
                continue;
            }
            _ => continue,
        };
        assert_eq!(
            names(&kept),
            BTreeSet::from(["report.json".to_string()]),
            "{p} ({what})"
        );
        assert_eq!(
            std::fs::read_to_string(kept.join("report.json")).expect("report"),
            FORGED
        );
    }
}

/// In containers: p1 links its attempt's directory to q's, p2 to a host directory, p3 moves
/// another directory into its place, p4 makes a person's directory beside it.
#[test]
fn report_dirs_a_container_agent_that_swaps_its_report_directory_takes_nothing() {
    if !support::podman::available() || !support::landlock() {
        return;
    }
    let host = tempfile::tempdir().expect("tmp");
    let h = host_dir(host.path(), "host");
    let before = support::disk_snapshot(host.path());
    let none = Path::new("-");
    let evil: [(&str, &str, &Path); 4] = [
        ("p1", "link-plan", none),
        ("p2", "link-host", &h),
        ("p3", "moved", none),
        ("p4", "person", none),
    ];
    let repo = hostile_repo(&evil, true);
    let ev = run_hostile(&repo, &evil, true);
    nothing_was_taken(&repo, &evil, &ev);
    assert_eq!(
        support::disk_snapshot(host.path()),
        before,
        "the host directory changed"
    );
    left_as_made(&repo, &evil);
    assert_eq!(support::podman::mounting(repo.root()), Vec::<String>::new());
}

/// Here, unconfined: the same, and p5 swaps its plan's whole report directory for a link to a
/// host directory that holds an attempt's directory with a report.
#[test]
fn report_dirs_a_local_agent_that_swaps_its_report_directory_touches_nothing_there() {
    let host = tempfile::tempdir().expect("tmp");
    let h = host_dir(host.path(), "host");
    let h2 = host_dir(host.path(), "plan");
    let before = support::disk_snapshot(host.path());
    let none = Path::new("-");
    let evil: [(&str, &str, &Path); 5] = [
        ("p1", "link-plan", none),
        ("p2", "link-host", &h),
        ("p3", "moved", none),
        ("p4", "person", none),
        ("p5", "parent", &h2),
    ];
    let repo = hostile_repo(&evil, false);
    let ev = run_hostile(&repo, &evil, false);
    nothing_was_taken(&repo, &evil, &ev);
    assert_eq!(
        support::disk_snapshot(host.path()),
        before,
        "the host directories changed"
    );
    left_as_made(&repo, &evil);
}

/// Adopted: `orch up` is killed (`kill -9`) once p1's agent has swapped its directory for a
/// link to a host directory; the next `orch up` adopts p1's agent and finds a link where its
/// directory was: it records no directory for it (not a directory of its own), refuses its
/// reports with one note, and reads and writes nothing behind the link; q (adopted or run
/// again) completes by its own report.
#[test]
fn report_dirs_an_adopted_attempt_whose_directory_is_a_link_takes_nothing() {
    let host = tempfile::tempdir().expect("tmp");
    let h = host_dir(host.path(), "host");
    let before = support::disk_snapshot(host.path());
    let evil: [(&str, &str, &Path); 1] = [("p1", "link-host", &h)];
    let repo = hostile_repo(&evil, false);
    let tree = |plan: &str| repo.root().join(format!(".orch/worktrees/{plan}"));
    let started = |plan: &str| {
        support::read_status(&repo.status_path(plan))
            .is_some_and(|d| d["tasks"][0]["status"] == "in_progress")
    };
    let mut first = repo
        .orch(&["up", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn orch up");
    support::process::wait_for("p1's swap and both tasks started", || {
        tree("p1").join("swapped").exists() && started("p1") && started("q")
    });
    first.kill().expect("kill -9");
    let _ = first.wait();

    let mut next = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = support::read_lines(&mut next);
    let mut seen = Vec::new();
    support::wait_line(&lines, &mut seen, |v| {
        v["event"] == "note"
            && v["plan"] == "p1"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not the one orch made"))
    });
    std::fs::write(tree("q").join("go"), "").expect("go");
    support::wait_line(&lines, &mut seen, |v| {
        v["plan"] == "q" && (v["event"] == "task_finished" || v["event"] == "task_failed")
    });
    std::fs::write(tree("p1").join("release"), "").expect("release");
    let out = support::wait_within(next, Duration::from_secs(240), "orch up");
    seen.extend(lines.try_iter());
    eprintln!("orch up: {:?}", out.status);
    assert!(
        named(&seen, "task_adopted")
            .iter()
            .any(|e| e["plan"] == "p1"),
        "{seen:#?}"
    );
    nothing_was_taken(&repo, &evil, &seen);
    assert_eq!(
        support::disk_snapshot(host.path()),
        before,
        "the host directory changed"
    );
    left_as_made(&repo, &evil);
}

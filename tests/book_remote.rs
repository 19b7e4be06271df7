//! The book's "Remote hosts" page, run as written: from what `orch init` wrote, its `[[host]]`
//! table is added and its `executor = "ssh"` put in the `[defaults]` table the manifest already
//! has (as the page says); the host is the page's alias `build1` (an `ssh` config entry, as the
//! page's step 1 makes, for a real `sshd` on loopback). `orch check` takes it, `orch hosts`
//! answers as the page shows, and `orch up` runs the example plan there. The tables are read
//! from the page itself: a page that changes them changes this test. The one change made to
//! them is `dir` (the page's `/srv/orch` is the reader's choice; here the test's own).

use std::path::Path;

use crate::support::{Repo, sshd};

/// The ```` ```toml ```` blocks of a markdown page, their indentation (a list item's) removed.
fn toml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in md.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if trimmed == "```toml" => open = Some((indent, String::new())),
            Some((_, text)) if trimmed == "```" => {
                out.push(std::mem::take(text));
                open = None;
            }
            Some((n, text)) => {
                text.push_str(line.get(*n..).unwrap_or(trimmed));
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_remote_hosts_page_runs_as_written() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["build1"]);
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/remote-hosts.md"),
    )
    .expect("the page");
    let blocks = toml_blocks(&page);
    let host = blocks
        .iter()
        .find(|b| b.contains("[[host]]"))
        .expect("the page's [[host]] table");
    let executor = blocks
        .iter()
        .find(|b| b.starts_with("executor = \"ssh\"\n"))
        .expect("the page's executor line");
    // The page's second line: the network of an agent on a host is the lead's to open.
    assert!(
        executor
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("network = \"open\"")),
        "{executor}"
    );
    assert!(host.contains("dir = \"/srv/orch\""), "{host}");
    let host = host.replace("/srv/orch", &lab.server("build1").dir.display().to_string());

    let repo = Repo::bare_minimum();
    let mut init = repo.orch(&["init"]);
    init.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut init);
    assert_eq!(code, 0, "orch init\n{out}\n{err}");
    let written = String::from_utf8(repo.read("plans.toml")).expect("utf-8");
    // The page: `executor = "ssh"` in the `[defaults]` table `orch init` wrote (which says
    // "local"); the host table added. An agent of the test's instead of the `claude` preset.
    assert_eq!(written.matches("\nexecutor = \"local\"\n").count(), 1);
    let manifest = written
        .replace("\nexecutor = \"local\"\n", &format!("\n{executor}"))
        .replace("\nagent = \"claude\"\n", "\nagent = \"w\"\n")
        + &format!(
            "\n{host}\n[agents.w]\ncommand = [\"sh\", \"-c\", \"echo \\\"$ORCH_TASK\\\" >> done.txt\"]\nreport = \"exit\"\n"
        );
    repo.write("plans.toml", &manifest);
    repo.commit_all("build1, as the book says");

    let run = |args: &[&str]| {
        let mut c = repo.orch(args);
        c.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
        repo.run_cmd(&mut c)
    };
    // Without the page's `network` line, `orch check` and `orch up` refuse the plan, as the
    // page says, and `orch up` makes nothing.
    let without: String = manifest
        .lines()
        .filter(|l| !l.starts_with("network = \"open\""))
        .map(|l| format!("{l}\n"))
        .collect();
    repo.write("plans.toml", &without);
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 2, "orch check\n{out}\n{err}");
    assert!(
        err.contains("plan `example`") && err.contains("network = \"open\""),
        "{err}"
    );
    let (code, out, err) = run(&["up"]);
    assert_eq!(code, 6, "orch up\n{out}\n{err}");
    assert!(
        repo.git(&["branch", "--list", "plan/example"])
            .trim()
            .is_empty(),
        "a branch was made"
    );
    repo.write("plans.toml", &manifest);
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 0, "orch check\n{out}\n{err}");
    let (code, out, err) = run(&["hosts"]);
    assert_eq!(code, 0, "orch hosts\n{out}\n{err}");
    // The page: `build1  ready  Landlock ABI 6  git version 2.39.5  812.4 GiB free  clients: …`.
    let line = out
        .lines()
        .find(|l| l.starts_with("build1 "))
        .unwrap_or_else(|| panic!("no line for build1\n{out}\n{err}"));
    assert!(line.starts_with("build1  ready  Landlock ABI "), "{line}");
    // (`clients: …`, or `no preset's client` where the host's PATH has none.)
    for part in ["  git version ", " GiB free  ", "  orch copied"] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    let (code, out, err) = run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    let on_host: Vec<_> = crate::support::events(&out)
        .into_iter()
        .filter(|e| e["event"] == "task_on_host")
        .collect();
    assert!(!on_host.is_empty(), "nothing ran on a host\n{out}");
    assert!(on_host.iter().all(|e| e["host"] == "build1"), "{on_host:?}");
    let tasks = repo.statuses("example");
    assert!(!tasks.is_empty());
    for (id, status) in &tasks {
        assert_eq!(status, "completed", "task {id}");
    }
    let done = repo.git(&["show", "plan/example:done.txt"]);
    assert_eq!(done.lines().count(), tasks.len(), "{done}");
}

//! `orch up` with `executor = "slurm"`, against a real Slurm cluster: `.ci/slurm start` brings up
//! a single-node one (CI does). Agents are batch jobs; the tests check what a user checks: task
//! statuses, commits, the jobs Slurm ran (`scontrol`, `squeue`) and the jobs' own journal.
//!
//! Without a cluster these tests say so and pass, unless `ORCH_REQUIRE_SLURM` is set (CI sets
//! it after starting the cluster): then a missing cluster fails them.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::slurm::cluster;
use support::{
    Repo, agent_at, events, journal, kill, max_overlap, named, read_lines, spans, utf8, wait,
    wait_for, wait_line,
};

/// `scontrol show job -o ID`: its fields.
fn job_fields(id: &str) -> BTreeMap<String, String> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .expect("scontrol");
    assert!(out.status.success(), "scontrol show job {id}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The jobs Slurm lists whose comment (orch's tag) names a file under `root`: id → state.
fn jobs_under(root: &Path) -> BTreeMap<String, String> {
    let out = Command::new("squeue")
        .args(["-h", "--states=all", "-o", "%i|%T|%k"])
        .output()
        .expect("squeue");
    assert!(out.status.success(), "squeue: {out:?}");
    let root = utf8(root).to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '|');
            let (id, state, tag) = (f.next()?, f.next()?, f.next()?);
            tag.contains(&root)
                .then(|| (id.to_string(), state.to_string()))
        })
        .collect()
}

/// The `$journal.jobs` lines: (plan, task, attempt, job id).
fn jobs_journal(journal: &Path) -> Vec<(String, String, String, String)> {
    std::fs::read_to_string(format!("{}.jobs", journal.display()))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "torn line {l:?}");
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

/// A repository whose orch runs get `secs` seconds, and the path of the jobs' journal.
fn slurm_repo(secs: u64) -> (Repo, std::path::PathBuf) {
    let repo = Repo::builder()
        .under(&support::slurm::disk_dir())
        .timeout(Duration::from_secs(secs))
        .build();
    let journal = repo.outside("journal");
    (repo, journal)
}

/// Writes and commits the manifest: `defaults` lines, a `[slurm]` table, the agent `a` running
/// `slurm_agent.sh JOURNAL ARGS…`, and plans `(name, text, extra lines)`.
fn commit_manifest(
    repo: &Repo,
    journal: &Path,
    args: &[&str],
    defaults: &str,
    slurm: &str,
    plans: &[(&str, &str, &str)],
) {
    let mut argv = vec![utf8(journal)];
    argv.extend_from_slice(args);
    let argv: Vec<&Path> = argv.iter().map(Path::new).collect();
    let mut text = format!(
        "[defaults]\nagent = \"a\"\nexecutor = \"slurm\"\nnetwork = \"open\"\n{defaults}\n\n[slurm]\npoll = \"1s\"\n{slurm}\n\n\
         [agents.a]\ncommand = {}\n",
        agent_at("slurm_agent.sh", &argv)
    );
    for (name, plan, extra) in plans {
        repo.write(&format!("docs/plans/{name}.md"), plan);
        text.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}\n"
        ));
    }
    repo.write("plans.toml", &text);
    repo.commit_all("plans");
}

const AUTH: &str = "# Auth\n\n## Phase 1: Model\n- [ ] 1.1 Add the user table\n- [ ] 1.2 Hash passwords (depends: 1.1)\n\n## Phase 2: Login\n- [ ] 2.1 Add the login endpoint\n";
const API: &str = "# API\n\n## Phase 1: Routes\n- [ ] 1.1 Add the routes\n- [ ] 1.2 Document the routes (depends: 1.1)\n";
const DOCS: &str = "# Docs\n\n## Phase 1: Guide\n- [ ] 1.1 Write the guide\n";
const ONE: &str = "# One\n\n## Phase 1: Work\n- [ ] 1.1 Do the work\n";

#[test]
fn three_plans_run_as_slurm_jobs_with_gating_and_the_agent_limit() {
    if !cluster() {
        return;
    }
    let (repo, journal_path) = slurm_repo(240);
    commit_manifest(
        &repo,
        &journal_path,
        &["ok"],
        "max_agents = 2",
        "",
        &[
            ("auth", AUTH, "priority = 10"),
            ("api", API, "depends_on = [\"auth:1\"]"),
            ("docs", DOCS, ""),
        ],
    );
    let out = repo.up(&[]);
    let ev = events(&out);

    // Every task completed with one commit of its own, in dependency order.
    for plan in ["auth", "api", "docs"] {
        let doc = repo.status_file(plan);
        for t in doc["tasks"].as_array().expect("tasks") {
            assert_eq!(t["status"], "completed", "{plan} {}", t["id"]);
            assert!(t["commit"].is_string(), "{plan} {} has no commit", t["id"]);
        }
    }
    assert_eq!(
        repo.subjects("plan/auth"),
        [
            "auth 1.1: Add the user table",
            "auth 1.2: Hash passwords",
            "auth 2.1: Add the login endpoint"
        ]
    );
    assert_eq!(repo.subjects("plan/docs"), ["docs 1.1: Write the guide"]);
    let api: Vec<String> = repo
        .subjects("plan/api")
        .into_iter()
        .filter(|s| s.starts_with("api "))
        .collect();
    assert_eq!(
        api,
        ["api 1.1: Add the routes", "api 1.2: Document the routes"]
    );
    // The work was done inside the jobs: each commit's line names its job.
    let auth_txt = repo.git(&["show", "plan/auth:auth.txt"]);
    assert_eq!(auth_txt.matches("in job ").count(), 3, "{auth_txt}");

    // Each task ran as exactly one Slurm job, named after plan and task, that completed.
    let started = named(&ev, "task_started");
    assert_eq!(started.len(), 6, "{ev:?}");
    let mut ids = BTreeSet::new();
    for e in &started {
        assert_eq!(e["pid"], 0, "{e}");
        let id = e["job_id"].as_str().expect("job_id").to_string();
        let fields = job_fields(&id);
        assert_eq!(
            fields["JobName"],
            format!(
                "orch:{}:{}",
                e["plan"].as_str().expect("plan"),
                e["task"].as_str().expect("task")
            )
        );
        assert_eq!(fields["JobState"], "COMPLETED", "{fields:?}");
        assert_eq!(fields["ExitCode"], "0:0");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 6, "a job per task");
    let ran: BTreeSet<String> = jobs_journal(&journal_path)
        .into_iter()
        .map(|(_, _, _, job)| job)
        .collect();
    assert_eq!(ran, ids, "the jobs that ran are the jobs orch submitted");

    // Gating: api's first job started after auth 1.2's job ended.
    let marks = journal(&journal_path);
    let auth_12_end = marks
        .iter()
        .find(|m| !m.start && m.plan == "auth" && m.task == "1.2")
        .expect("auth 1.2 ran")
        .at;
    let api_first = marks
        .iter()
        .filter(|m| m.start && m.plan == "api")
        .map(|m| m.at)
        .min()
        .expect("api ran");
    assert!(
        api_first > auth_12_end,
        "api started before auth's phase 1 was done"
    );
    // The agent limit, from the jobs' own start and end marks (the `pid` field is the job id).
    let spans: Vec<(u128, u128)> = spans(&marks)
        .into_iter()
        .map(|(_, _, s, e)| (s, e))
        .collect();
    assert_eq!(spans.len(), 6);
    assert!(
        max_overlap(&spans) <= 2,
        "more than max_agents = 2 jobs ran at once: {spans:?}"
    );
    // Nothing of the run is left in the queue.
    assert!(
        jobs_under(repo.root()).values().all(|s| s == "COMPLETED"),
        "{:?}",
        jobs_under(repo.root())
    );
}

#[test]
fn kill_9_while_jobs_run_then_up_again_reattaches_without_submitting_twice() {
    if !cluster() {
        return;
    }
    let (repo, journal_path) = slurm_repo(240);
    let gate = repo.outside("gate");
    commit_manifest(
        &repo,
        &journal_path,
        &["gate", utf8(&gate)],
        "max_agents = 3",
        "",
        &[("a", ONE, ""), ("b", ONE, ""), ("c", ONE, "")],
    );
    let mut first = repo.orch(&["up", "--json"]).spawn().expect("spawn");
    wait_for("three jobs to run", || {
        jobs_journal(&journal_path).len() == 3
    });
    // The jobs' ids are recorded (the journal line comes from inside the job, after sbatch).
    wait_for("the job ids to be recorded", || {
        ["a", "b", "c"]
            .iter()
            .all(|p| repo.status_file(p)["tasks"][0]["orchRun"]["jobId"].is_string())
    });
    first.kill().expect("kill -9");
    let _ = first.wait();
    let submitted: BTreeMap<String, String> = jobs_journal(&journal_path)
        .into_iter()
        .map(|(plan, _, _, job)| (plan, job))
        .collect();
    let queue = jobs_under(repo.root());
    for job in submitted.values() {
        assert_eq!(
            queue.get(job).map(String::as_str),
            Some("RUNNING"),
            "{queue:?}"
        );
    }
    // As if the supervisor had died between `sbatch` and recording plan c's job: the restart
    // finds that one by its tag.
    let c_status = repo.status_path("c");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&c_status).expect("status")).expect("json");
    doc["tasks"][0]["orchRun"]
        .as_object_mut()
        .expect("orchRun")
        .remove("jobId");
    std::fs::write(&c_status, serde_json::to_string_pretty(&doc).expect("json")).expect("write");

    let mut second = repo.orch(&["up", "--json"]).spawn().expect("spawn");
    let lines = read_lines(&mut second);
    let mut seen = Vec::new();
    let mut adopted = BTreeMap::new();
    while adopted.len() < 3 {
        wait_line(&lines, &mut seen, |e| e["event"] == "task_adopted");
        let e = seen.last().expect("event");
        adopted.insert(
            e["plan"].as_str().expect("plan").to_string(),
            e["job_id"].as_str().expect("job_id").to_string(),
        );
    }
    assert_eq!(
        adopted, submitted,
        "each job was adopted, none submitted again"
    );
    std::fs::write(&gate, "").expect("gate");
    let out = wait(second);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(l);
    }
    assert!(
        named(&seen, "task_started").is_empty(),
        "a job was submitted again: {seen:?}"
    );
    for plan in ["a", "b", "c"] {
        assert_eq!(
            repo.statuses(plan),
            [("1.1".to_string(), "completed".to_string())]
        );
        assert_eq!(
            repo.subjects(&format!("plan/{plan}")),
            [format!("{plan} 1.1: Do the work")]
        );
    }
    // Three jobs in all, each run once.
    assert_eq!(jobs_journal(&journal_path).len(), 3);
    assert_eq!(journal(&journal_path).iter().filter(|m| m.start).count(), 3);
    for job in submitted.values() {
        assert_eq!(job_fields(job)["JobState"], "COMPLETED");
    }
}

#[test]
fn ctrl_c_cancels_queued_jobs_then_every_job() {
    if !cluster() {
        return;
    }
    let (repo, journal_path) = slurm_repo(240);
    commit_manifest(
        &repo,
        &journal_path,
        &["hang"],
        "max_agents = 3\ngrace = \"1s\"",
        "",
        &[
            ("a", ONE, ""),
            ("b", ONE, ""),
            // A job that waits in the queue: it may not begin for an hour.
            (
                "later",
                ONE,
                "slurm = { sbatch_args = [\"--begin=now+3600\"] }",
            ),
        ],
    );
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn");
    let orch = child.id();
    let lines = read_lines(&mut child);
    let mut seen = Vec::new();
    wait_for("two jobs to run", || jobs_journal(&journal_path).len() == 2);
    let mut started = BTreeMap::new();
    while started.len() < 3 {
        wait_line(&lines, &mut seen, |e| e["event"] == "task_started");
        let e = seen.last().expect("event");
        started.insert(
            e["plan"].as_str().expect("plan").to_string(),
            e["job_id"].as_str().expect("job_id").to_string(),
        );
    }
    assert_eq!(job_fields(&started["later"])["JobState"], "PENDING");

    // First Ctrl-C: the queued job is cancelled, the running ones go on.
    assert!(kill("INT", orch));
    wait_line(&lines, &mut seen, |e| {
        e["event"] == "interrupted" && e["immediate"] == false
    });
    wait_for("the queued job to be cancelled", || {
        job_fields(&started["later"])["JobState"] == "CANCELLED"
    });
    for plan in ["a", "b"] {
        assert_eq!(job_fields(&started[plan])["JobState"], "RUNNING");
    }
    // Second: every job is cancelled, and orch waits for that.
    assert!(kill("INT", orch));
    let out = wait(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queue = jobs_under(repo.root());
    assert_eq!(queue.len(), 3, "{queue:?}");
    for (job, state) in &queue {
        assert_eq!(state, "CANCELLED", "job {job}: {queue:?}");
    }
    // The tasks are pending again, ready for the next `orch up`.
    for plan in ["a", "b", "later"] {
        assert_eq!(
            repo.statuses(plan),
            [("1.1".to_string(), "pending".to_string())]
        );
    }
}

#[test]
fn a_job_over_its_time_limit_is_a_failed_attempt_and_is_retried() {
    if !cluster() {
        return;
    }
    // Slurm's limits are whole minutes, checked every 30 s: this takes one to two minutes.
    let (repo, journal_path) = slurm_repo(400);
    commit_manifest(
        &repo,
        &journal_path,
        &["late-once"],
        "retries = 1\nbackoff = \"0s\"\ntimeout = \"30m\"",
        "time_limit = \"1m\"",
        &[("p", ONE, "")],
    );
    let out = repo.up(&[]);
    let ev = events(&out);
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{ev:?}");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(error.contains("TIMEOUT"), "{error}");
    assert!(failed[0]["retry_in_ms"].is_u64(), "{}", failed[0]);
    let started = named(&ev, "task_started");
    assert_eq!(started.len(), 2);
    let first = started[0]["job_id"].as_str().expect("job_id");
    let fields = job_fields(first);
    assert_eq!(fields["JobState"], "TIMEOUT", "{fields:?}");
    assert_eq!(fields["TimeLimit"], "00:01:00");
    // The second attempt did the task.
    let doc = repo.status_file("p");
    assert_eq!(doc["tasks"][0]["status"], "completed");
    assert_eq!(doc["tasks"][0]["attempts"], 2);
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Do the work"]);
    let txt = repo.git(&["show", "plan/p:p.txt"]);
    assert!(txt.contains("done by attempt 2"), "{txt}");
    assert!(!txt.contains("attempt 1"), "{txt}");
}

#[test]
fn a_repository_on_tmpfs_is_refused_for_slurm_and_nothing_is_made() {
    // No cluster needed: the check comes first.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    let repo = Repo::builder().under(shm).build();
    let journal_path = repo.outside("journal");
    commit_manifest(&repo, &journal_path, &["ok"], "", "", &[("p", ONE, "")]);
    let before = repo.git_dir_listing();
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("`defaults.worktree_root`"), "{err}");
    assert!(err.contains("is on tmpfs"), "{err}");
    assert!(err.contains("plans.toml"), "{err}");
    assert_eq!(
        repo.git_dir_listing(),
        before,
        "orch changed the repository"
    );
    assert!(!repo.root().join(".orch").exists());
}

#[test]
fn orchs_own_timeout_cancels_the_job_and_fails_the_task() {
    if !cluster() {
        return;
    }
    let (repo, journal_path) = slurm_repo(240);
    commit_manifest(
        &repo,
        &journal_path,
        &["hang"],
        "retries = 0\ntimeout = \"4s\"\ngrace = \"1s\"",
        "",
        &[("p", ONE, "")],
    );
    let ev = repo.up_events(&[], 5);
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{ev:?}");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(error.contains("timed out after 4s"), "{error}");
    assert!(failed[0]["retry_in_ms"].is_null());
    let job = named(&ev, "task_started")[0]["job_id"]
        .as_str()
        .expect("job_id")
        .to_string();
    // orch cancelled the job and waited for it: it is over, not left running.
    assert_eq!(job_fields(&job)["JobState"], "CANCELLED");
    assert_eq!(
        repo.statuses("p"),
        [("1.1".to_string(), "failed".to_string())]
    );
    // The agent never got to write its file: nothing was committed.
    assert!(repo.subjects("plan/p").is_empty());
}

#[test]
fn a_plan_mode_agent_runs_as_one_job_and_gets_one_commit_per_task() {
    if !cluster() {
        return;
    }
    let (repo, journal_path) = slurm_repo(240);
    repo.write(
        "docs/plans/pl.md",
        "# Planned\n\n## Phase 1: First\n- [ ] 1.1 Lay the ground\n- [ ] 1.2 Build on it (depends: 1.1)\n\n## Phase 2: Second\n- [ ] 2.1 Finish it\n",
    );
    repo.manifest(
        &agent_at("plan_agent.sh", &[&journal_path]),
        "mode = \"plan\"\nexecutor = \"slurm\"\nnetwork = \"open\"",
        "",
        &[("pl", "")],
    );
    repo.commit_all("plans");
    let ev = repo.up_events(&[], 0);
    for (id, status) in repo.statuses("pl") {
        assert_eq!(status, "completed", "task {id}");
    }
    assert_eq!(
        repo.subjects("plan/pl"),
        [
            "pl 1.1: Lay the ground",
            "pl 1.2: Build on it",
            "pl 2.1: Finish it"
        ]
    );
    let started = named(&ev, "task_started");
    assert_eq!(started.len(), 1, "{ev:?}");
    let job = started[0]["job_id"].as_str().expect("job_id");
    let fields = job_fields(job);
    assert_eq!(fields["JobName"], "orch:pl:plan");
    assert_eq!(fields["JobState"], "COMPLETED");
    assert_eq!(named(&ev, "task_finished").len(), 3, "{ev:?}");
}

/// A confined agent of a Slurm job (`sandbox = "on"`): the same rules as a local attempt, applied
/// on its node by orch's wrapper. It tries to write outside its worktree (a file beside the
/// repository, the main checkout, another plan's worktree, the state directory, `$HOME`), to
/// read a denied path (`~/.ssh`) into its work, and to list orch's private directory; then does
/// its task. Every write outside is refused (the files are not there, the main checkout and
/// the other plan's worktree are unchanged), the secret is not in its commit, and the task
/// lands. Before, a Slurm job ran unconfined whatever `sandbox` said.
#[test]
fn a_confined_slurm_job_writes_only_its_worktree() {
    if !cluster() || !orch_landlock() {
        return;
    }
    let (repo, _journal) = slurm_repo(240);
    let outside = repo.outside("outside.txt");
    let ssh = repo.home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("~/.ssh");
    std::fs::write(ssh.join("id_test"), "SECRET-KEY\n").expect("key");
    let agent = repo.outside("escape.sh");
    std::fs::write(
        &agent,
        r#"root=$1; outside=$2; home=$3
echo x > "$outside" 2>/dev/null && echo "wrote outside" >> tried.txt
echo x >> "$root/README.md" 2>/dev/null && echo "wrote main" >> tried.txt
echo x > "$root/.orch/worktrees/other/planted.txt" 2>/dev/null && echo "wrote other" >> tried.txt
echo x > "$root/.orch/state/planted.txt" 2>/dev/null && echo "wrote state" >> tried.txt
echo x > "$home/planted.txt" 2>/dev/null && echo "wrote home" >> tried.txt
chmod 000 "$root/README.md" 2>/dev/null && echo "chmod main" >> tried.txt
chmod 000 "$root/.orch/state" 2>/dev/null && echo "chmod state" >> tried.txt
touch -d 2000-01-01 "$root/README.md" 2>/dev/null && echo "touched main" >> tried.txt
cat "$home/.ssh/id_test" >> stolen.txt 2>/dev/null
for d in "/tmp/orch-$(id -u)" "/run/user/$(id -u)/orch"; do ls -A "$d" >> private.txt 2>/dev/null; done
echo "$ORCH_TASK done in job ${SLURM_JOB_ID:-none}" >> work.txt
"#,
    )
    .expect("agent");
    repo.write("README.md", "readme\n");
    let argv = support::toml_array(&[
        "sh".to_string(),
        agent.display().to_string(),
        repo.root().display().to_string(),
        outside.display().to_string(),
        repo.home().display().to_string(),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nexecutor = \"slurm\"\nnetwork = \"open\"\nsandbox = \"on\"\nretries = 0\n\n[slurm]\npoll = \"1s\"\n\n\
             [agents.a]\ncommand = {argv}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"one\"\nfile = \"docs/plans/one.md\"\n\n\
             [[plan]]\nname = \"other\"\nfile = \"docs/plans/other.md\"\nexecutor = \"local\"\nagent = \"b\"\n\n\
             [agents.b]\ncommand = [\"sh\", \"-c\", \"echo b > b.txt\"]\nreport = \"exit\"\nsandbox = \"off\"\n"
        ),
    );
    repo.write("docs/plans/one.md", ONE);
    repo.write("docs/plans/other.md", ONE);
    repo.commit_all("plans");
    let readme_mode = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(repo.root().join("README.md"))
            .expect("readme")
            .mode()
            & 0o777
    };
    let mut cmd = repo.orch(&["up"]);
    cmd.env_remove("ORCH_SANDBOX");
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("one", "1.1")["status"], "completed", "{err}");
    let files = repo.tree_files("plan/one");
    assert!(files.contains(&"work.txt".to_string()), "{files:?}");
    // Nothing written outside the worktree.
    assert!(!outside.exists(), "wrote beside the repository");
    assert_eq!(
        std::fs::read_to_string(repo.root().join("README.md")).expect("readme"),
        "readme\n"
    );
    // Nor its mode or its time changed (Landlock alone does not control them).
    use std::os::unix::fs::MetadataExt as _;
    let readme = std::fs::metadata(repo.root().join("README.md")).expect("readme");
    assert_eq!(
        readme.mode() & 0o777,
        readme_mode,
        "README.md's mode changed"
    );
    assert!(readme.mtime() > 946_684_800 + 86_400, "README.md touched");
    assert!(!repo.root().join(".orch/state/planted.txt").exists());
    assert!(!repo.home().join("planted.txt").exists());
    assert!(!repo.worktree("other").join("planted.txt").exists());
    let show = |f: &str| {
        String::from_utf8_lossy(&repo.git_out(&["show", &format!("plan/one:{f}")]).stdout)
            .into_owned()
    };
    assert_eq!(show("tried.txt"), "", "a write outside went through");
    // The denied key was not read; orch's private directory shows nothing.
    assert!(!show("stolen.txt").contains("SECRET-KEY"));
    assert_eq!(
        show("private.txt").trim(),
        "",
        "orch's private directory listed"
    );
}

/// Whether this kernel confines with Landlock (`ORCH_REQUIRE_LANDLOCK` makes a missing one fail).
fn orch_landlock() -> bool {
    let ok = orch::sandbox::supported();
    assert!(
        ok || std::env::var_os("ORCH_REQUIRE_LANDLOCK").is_none(),
        "ORCH_REQUIRE_LANDLOCK is set, but this kernel does not support Landlock"
    );
    ok
}

/// Issue 62's rule in a Slurm job: orch's proxy does not run on the node, so a Slurm plan runs
/// only when its agent's network is `open`, the lead's word. Unset (in `[defaults]` or with the
/// executor said on the plan), `confined` or `none` on the agent (over `[defaults]`' `open`
/// too): `orch check` says so at the plan's line, and `orch up` refuses (exit 6, naming the
/// plan, its executor and the fix) before anything is made: no branch, no worktree, nothing in
/// `.git`, no job (no cluster needed for this part: the refusal comes first). With `open` the
/// plan runs as jobs and lands.
#[test]
fn a_slurm_plan_runs_only_with_network_open_and_nothing_is_made_without() {
    let open = "network = \"open\"\n";
    let exec = "executor = \"slurm\"\n";
    // What is done to the manifest `commit_manifest` writes (`executor` and `network = "open"`
    // in `[defaults]`): (what it is, [(from, to)]).
    let refused: [(&str, &[(&str, &str)]); 5] = [
        ("unset", &[(open, "")]),
        (
            "unset, the executor said on the plan",
            &[
                (open, ""),
                (exec, ""),
                (
                    "file = \"docs/plans/p.md\"\n",
                    "file = \"docs/plans/p.md\"\nexecutor = \"slurm\"\n",
                ),
            ],
        ),
        (
            "confined on the agent",
            &[
                (open, ""),
                ("[agents.a]\n", "[agents.a]\nnetwork = \"confined\"\n"),
            ],
        ),
        (
            "none on the agent",
            &[
                (open, ""),
                ("[agents.a]\n", "[agents.a]\nnetwork = \"none\"\n"),
            ],
        ),
        (
            "confined on the agent over [defaults]' open",
            &[("[agents.a]\n", "[agents.a]\nnetwork = \"confined\"\n")],
        ),
    ];
    for (what, edits) in refused {
        let (repo, journal_path) = slurm_repo(240);
        commit_manifest(
            &repo,
            &journal_path,
            &["ok"],
            "retries = 0",
            "",
            &[("p", ONE, "")],
        );
        let mut toml = String::from_utf8(repo.read("plans.toml")).expect("utf-8");
        for (from, to) in edits {
            assert_eq!(toml.matches(from).count(), 1, "{what}: {from:?} in\n{toml}");
            toml = toml.replace(from, to);
        }
        repo.write("plans.toml", &toml);
        repo.commit_all(what);
        let line = toml
            .lines()
            .position(|l| l == "name = \"p\"")
            .expect("the plan's line")
            + 1;
        let (code, out, err) = repo.run(&["check"]);
        assert_eq!(code, 2, "{what}: orch check\n{out}\n{err}");
        assert!(
            err.contains(&format!("plans.toml:{line}: error")) && err.contains("plan `p`"),
            "{what}: {err}"
        );
        let before = repo.git_dir_listing();
        let (code, out, err) = repo.run(&["up", "--json"]);
        assert_eq!(code, 6, "{what}\nstdout:\n{out}\nstderr:\n{err}");
        for part in [
            "plan `p`",
            "agent `a`",
            "`executor = \"slurm\"`",
            "`network = \"open\"`",
        ] {
            assert!(err.contains(part), "{what}: {part} in\n{err}");
        }
        assert!(
            repo.git(&["branch", "--list", "plan/p"]).trim().is_empty(),
            "{what}: a branch was made"
        );
        assert_eq!(repo.git_dir_listing(), before, "{what}: .git changed");
        assert!(!repo.root().join(".orch").exists(), "{what}: .orch made");
        assert!(!journal_path.exists(), "{what}: the agent ran");
        if cluster() {
            assert!(
                jobs_under(repo.root()).is_empty(),
                "{what}: a job was submitted"
            );
        }
    }
    if !cluster() {
        return;
    }
    // `network = "open"` on the agent (none in `[defaults]`): it runs, as a job.
    let (repo, journal_path) = slurm_repo(240);
    commit_manifest(
        &repo,
        &journal_path,
        &["ok"],
        "retries = 0",
        "",
        &[("p", ONE, "")],
    );
    let toml = String::from_utf8(repo.read("plans.toml"))
        .expect("utf-8")
        .replace(open, "")
        .replace("[agents.a]\n", "[agents.a]\nnetwork = \"open\"\n");
    repo.write("plans.toml", &toml);
    repo.commit_all("open on the agent");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "orch check\n{out}\n{err}");
    let out = repo.up(&[]);
    let ev = events(&out);
    let started = named(&ev, "run_started");
    assert_eq!(started.len(), 1, "{out}");
    assert_eq!(started[0]["network"], "open", "{started:?}");
    let doc = repo.status_file("p");
    let tasks = doc["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["status"], "completed", "{doc}");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Do the work"]);
    assert!(
        repo.git(&["show", "plan/p:p.txt"]).contains("in job "),
        "the work was not done in a job"
    );
}

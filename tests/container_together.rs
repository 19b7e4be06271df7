//! The code of a plan whose agents run in a container, tested with other plans' work, runs in a
//! container of its image, never on this machine: the integration preview (`orch integrate`,
//! and `orch up`'s preview whose output reaches the agent's next prompt) and a group's landing
//! (`orch merge` of plans of several repositories), through real podman in the local image
//! `localhost/orch-test-base` (skipped with a message when podman or the image is missing,
//! unless `ORCH_REQUIRE_PODMAN` is set).
//!
//! A probe in the plans' work says where it runs (`/run/.containerenv`) and tries to read a file
//! of this machine that no container mounts (in orch's `HOME`). With the sandbox on, a verify
//! on this machine is Landlock-confined, which lets it read everything: the probe there prints
//! the file (the control case shows it does).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::podman::{IMAGE, available};
use support::{Repo, toml_array};

/// Another image (`.ci/podman images` builds it too). No container of it is ever started here:
/// a combination with plans of both images is refused before podman is asked.
const OTHER: &str = "localhost/orch-test-postgres:latest";

/// A file of this machine outside every mount, and what it holds.
fn secret(repo: &Repo) -> (PathBuf, String) {
    let path = repo.outside("host-secret.txt");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let text = format!("host-secret-{}-{nanos}", std::process::id());
    std::fs::create_dir_all(path.parent().expect("parent")).expect("home");
    std::fs::write(&path, &text).expect("secret");
    (path, text)
}

/// A POSIX sh probe: a line saying where it runs, one with what it read of `secret`; it fails
/// (`fails`) or passes only in a container.
fn probe(secret: &Path, fails: bool) -> String {
    let end = if fails {
        "exit 1"
    } else {
        "test -e /run/.containerenv"
    };
    format!(
        "if test -e /run/.containerenv; then echo PROBE-where=container; else echo PROBE-where=host; fi\n\
         if s=$(cat {} 2>/dev/null); then echo \"PROBE-secret=$s\"; else echo PROBE-secret=unreadable; fi\n\
         {end}\n",
        secret.display()
    )
}

/// The sandbox values to try: off, and on where the kernel has Landlock.
fn sandboxes() -> Vec<&'static str> {
    let mut out = vec!["off"];
    if support::landlock() {
        out.push("on");
    }
    out
}

/// Asserts that `text` (a log, an output, a prompt) shows the probe ran in a container and did
/// not read the secret.
fn ran_in_a_container(text: &str, secret: &str, what: &str) {
    assert!(text.contains("PROBE-where=container"), "{what}: {text}");
    assert!(!text.contains("PROBE-where=host"), "{what}: {text}");
    assert!(text.contains("PROBE-secret=unreadable"), "{what}: {text}");
    assert!(
        !text.contains(secret),
        "{what}: the host's file was read: {text}"
    );
}

// ---- the integration preview (`orch integrate`): plan branches made by hand ----

/// What `verify` runs (`sh ci/verify.sh`, the repository's): the probe where the work holds
/// one (`tests/` is the plans' data: an agent may change it).
const VERIFY_SH: &str = "test ! -f tests/probe.sh || sh tests/probe.sh\n";

/// A repository whose plans `plans` (name, its `[[plan]]` lines) have branches with a commit of
/// their own each; `verify` runs `ci/verify.sh`.
fn preview_repo(plans: &[(&str, String)]) -> Repo {
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    for (name, _) in plans {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &support::one_task("P", "Work"),
        );
    }
    let entries: Vec<(&str, &str)> = plans.iter().map(|(n, e)| (*n, e.as_str())).collect();
    repo.manifest(
        &toml_array(&["true"]),
        "report = \"exit\"\nnetwork = \"none\"",
        "retries = 0\nverify = [\"sh\", \"ci/verify.sh\"]",
        &entries,
    );
    repo.write("ci/verify.sh", VERIFY_SH);
    repo.commit_all("plans");
    for (name, _) in plans {
        repo.git(&["checkout", "-q", "-b", &format!("plan/{name}")]);
        repo.write(&format!("{name}.txt"), name);
        repo.commit_all(&format!("work of {name}"));
        repo.git(&["checkout", "-q", "main"]);
    }
    repo
}

/// The probe (failing) added to plan `plan`'s branch, reading `secret`.
fn add_probe(repo: &Repo, plan: &str, secret: &Path) {
    repo.git(&["checkout", "-q", &format!("plan/{plan}")]);
    repo.write("tests/probe.sh", &probe(secret, true));
    repo.commit_all("the probe");
    repo.git(&["checkout", "-q", "main"]);
}

fn container(image: &str) -> String {
    format!("executor = \"container\"\nimage = \"{image}\"")
}

/// `orch integrate --json` with the sandbox `sandbox`: exit code, its report, and the log of
/// the last trial's verify.
fn integrate(repo: &Repo, sandbox: &str) -> (i32, Value, String) {
    let started = Instant::now();
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["integrate", "--json"])
            .env("ORCH_SANDBOX", sandbox),
    );
    eprintln!(
        "orch integrate (sandbox {sandbox}): {:.2?}",
        started.elapsed()
    );
    let report: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    let log =
        String::from_utf8_lossy(&repo.read(".orch/logs/.integration-verify.log")).into_owned();
    (code, report, log)
}

#[test]
fn the_preview_runs_the_combined_work_of_container_plans_in_a_container_of_their_image() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        // Two container plans of one image; a container plan with a plan run here. The probe
        // is the container plan's work either way, and fails: its output is the report's.
        let cases = [
            (
                "two of one image",
                vec![("a", container(IMAGE)), ("b", container(IMAGE))],
                "b",
            ),
            (
                "with a local plan",
                vec![("a", String::new()), ("b", container(IMAGE))],
                "b",
            ),
        ];
        for (case, plans, probe_in) in cases {
            let what = format!("sandbox {sandbox}, {case}");
            let repo = preview_repo(&plans);
            let (path, text) = secret(&repo);
            add_probe(&repo, probe_in, &path);
            let main = repo.rev("main");
            let (code, report, log) = integrate(&repo, sandbox);
            assert_eq!(code, 5, "{what}: {report}");
            assert_eq!(report["result"], "red", "{what}: {report}");
            assert_eq!(report["verified"], true, "{what}: {report}");
            let failure = &report["failure"];
            assert_eq!(failure["culprit"], probe_in, "{what}: {report}");
            assert_eq!(failure["verify"]["image"], IMAGE, "{what}: {report}");
            let lines = failure["verify"]["last_lines"].to_string();
            ran_in_a_container(&lines, &text, &what);
            ran_in_a_container(&log, &text, &what);
            // Nothing moved; no container of this repository is left.
            assert_eq!(repo.rev("main"), main, "{what}");
            assert_eq!(
                support::podman::mounting(repo.root()),
                Vec::<String>::new(),
                "{what}"
            );
        }
    }
}

#[test]
fn the_preview_of_plans_run_here_runs_here_and_the_probe_sees_this_machine() {
    // The control: the same probe, plans that run here, so the preview runs here and reads the
    // host's file (with the sandbox on too: Landlock confines writes, not reads).
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let repo = preview_repo(&[("a", String::new()), ("b", String::new())]);
        let (path, text) = secret(&repo);
        add_probe(&repo, "b", &path);
        let (code, report, log) = integrate(&repo, sandbox);
        assert_eq!(code, 5, "{sandbox}: {report}");
        assert_eq!(
            report["failure"]["verify"]["image"],
            Value::Null,
            "{report}"
        );
        assert!(log.contains("PROBE-where=host"), "{sandbox}: {log}");
        assert!(log.contains(&text), "{sandbox}: {log}");
    }
}

#[test]
fn the_preview_of_container_plans_of_two_images_runs_no_verify_and_says_why() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        for plans in [
            vec![("a", container(IMAGE)), ("b", container(OTHER))],
            vec![
                ("a", container(IMAGE)),
                ("b", container(OTHER)),
                ("c", String::new()),
            ],
        ] {
            let names: Vec<&str> = plans.iter().map(|(n, _)| *n).collect();
            let what = format!("sandbox {sandbox}, plans {names:?}");
            let repo = preview_repo(&plans);
            let (path, text) = secret(&repo);
            add_probe(&repo, "a", &path);
            let (code, report, log) = integrate(&repo, sandbox);
            // No textual conflict, no verify: nothing red, and the note names the plans and
            // their images.
            assert_eq!(code, 0, "{what}: {report}");
            assert_eq!(report["verified"], false, "{what}: {report}");
            assert_eq!(report["failure"], Value::Null, "{what}: {report}");
            let note = report["verify_skipped"].as_str().unwrap_or_default();
            assert!(
                note.contains(&format!("`a` in `{IMAGE}`"))
                    && note.contains(&format!("`b` in `{OTHER}`")),
                "{what}: {report}"
            );
            // The probe never ran, anywhere.
            assert!(!log.contains("PROBE"), "{what}: {log}");
            assert!(!report.to_string().contains(&text), "{what}");
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["integrate"]).env("ORCH_SANDBOX", sandbox));
            assert_eq!(code, 0, "{out}{err}");
            assert!(
                out.contains("textual conflicts only: verify not run on plans `a`, `b`"),
                "{what}: {out}"
            );
        }
    }
}

// ---- the preview of `orch up`: its output in the agent's next prompt ----

/// Plan `p`'s agent, in a container: task 1.1 writes the probe (which fails), 1.2 waits for
/// the harness's go (a file in its worktree, written once the preview reported), 1.3 records
/// its prompt.
fn feedback_agent(secret: &Path) -> String {
    format!(
        "case \"$ORCH_TASK\" in\n\
         1.1) mkdir -p tests; cat > tests/probe.sh <<'EOF'\n{}EOF\n;;\n\
         1.2) i=0; while [ ! -f go ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; rm -f go ;;\n\
         1.3) printf '%s\\n' \"$1\" > prompt.txt ;;\n\
         esac\n",
        probe(secret, true)
    )
}

fn spawn_up(repo: &Repo, sandbox: &str) -> (Child, std::sync::mpsc::Receiver<Value>) {
    let mut child = repo
        .orch(&["up", "--json"])
        .env("ORCH_SANDBOX", sandbox)
        .spawn()
        .expect("spawn orch up");
    let lines = support::read_lines(&mut child);
    (child, lines)
}

#[test]
fn the_preview_feeds_a_container_plan_only_output_of_code_that_ran_in_a_container() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
        let (path, text) = secret(&repo);
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write the tests\n- [ ] 1.2 Wait (depends: 1.1)\n- [ ] 1.3 Read (depends: 1.2)\n",
        );
        let command = toml_array(&["sh", "-c", &feedback_agent(&path), "sh", "{{ prompt }}"]);
        repo.manifest(
            &command,
            "report = \"exit\"\nnetwork = \"none\"",
            &format!(
                "retries = 0\nexecutor = \"container\"\nimage = \"{IMAGE}\"\nintegrate = \"0s\"\nverify = [\"sh\", \"ci/verify.sh\"]"
            ),
            &[("p", "")],
        );
        repo.write("ci/verify.sh", VERIFY_SH);
        repo.commit_all("plans");
        let started = Instant::now();
        let (child, lines) = spawn_up(&repo, sandbox);
        let mut seen = Vec::new();
        support::wait_line(&lines, &mut seen, |v| v["event"] == "integration_failed");
        std::fs::write(repo.worktree("p").join("go"), "").expect("go");
        let out = support::wait_within(child, repo.timeout(), "orch up");
        eprintln!("sandbox {sandbox}: orch up {:.2?}", started.elapsed());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let what = format!("sandbox {sandbox}");
        let failed = seen
            .iter()
            .find(|v| v["event"] == "integration_failed")
            .expect("reported");
        assert_eq!(failed["verify"]["image"], IMAGE, "{what}: {failed}");
        // What the agent read in its next prompt: the probe's output from the container.
        let prompt = repo.git(&["show", "plan/p:prompt.txt"]);
        assert!(prompt.contains("integration test"), "{what}: {prompt}");
        ran_in_a_container(&prompt, &text, &what);
        assert_eq!(repo.task("p", "1.3")["status"], "completed", "{what}");
        assert_eq!(
            support::podman::mounting(repo.root()),
            Vec::<String>::new(),
            "{what}"
        );
    }
}

// ---- a group's landing (`orch merge` of plans of two repositories) ----

/// The home repository and `api` side by side, each with a long deadline.
struct Two {
    _dir: tempfile::TempDir,
    home: Repo,
    api: Repo,
}

impl Two {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let make = || {
            Repo::builder()
                .under(dir.path())
                .canonical()
                .timeout(Duration::from_secs(300))
                .build()
        };
        let (home, api) = (make(), make());
        Two {
            _dir: dir,
            home,
            api,
        }
    }

    fn mains(&self) -> (String, String) {
        (self.home.rev("main"), self.api.rev("main"))
    }
}

/// Plan `box` of repository `api` in a container of [`IMAGE`], whose agent writes the probe
/// (passing only in a container), and plan `h` of the home repository (`h_lines`: its executor
/// and image), landing with it. `api`'s `verify` (`ci/verify.sh` of `api`) and `verify_all`
/// (`api/ci/verify.sh` from the directory of both candidates) run the probe.
fn landing(two: &Two, probe_text: &str, h_lines: &str) {
    let api = format!(
        "../{}",
        two.api.root().file_name().expect("name").to_string_lossy()
    );
    for f in ["box", "h"] {
        two.home
            .write(&format!("plans/{f}.md"), &support::one_task("P", "Work"));
    }
    let box_agent = toml_array(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p tests; cat > tests/probe.sh <<'EOF'\n{probe_text}EOF\necho box > box.txt"
        ),
    ]);
    let h_agent = toml_array(&["sh", "-c", "echo h > h.txt"]);
    let verify_all = toml_array(&["sh", "-c", "cd \"$ORCH_REPO_API\" && sh ci/verify.sh"]);
    let toml = format!(
        "[defaults]\nretries = 0\nintegrate = \"off\"\nverify_all = {verify_all}\n\n\
         [agents.box]\ncommand = {box_agent}\nreport = \"exit\"\nnetwork = \"none\"\n\n\
         [agents.h]\ncommand = {h_agent}\nreport = \"exit\"\nnetwork = \"none\"\n\n\
         [[repo]]\nname = \"api\"\npath = \"{api}\"\nverify = [\"sh\", \"ci/verify.sh\"]\n\n\
         [[plan]]\nname = \"box\"\nfile = \"plans/box.md\"\nagent = \"box\"\nrepo = \"api\"\n{}\n\n\
         [[plan]]\nname = \"h\"\nfile = \"plans/h.md\"\nagent = \"h\"\nland_with = [\"box\"]\n{h_lines}\n",
        container(IMAGE)
    );
    two.home.write("plans.toml", &toml);
    two.home.commit_all("plans");
    two.api.write("ci/verify.sh", VERIFY_SH);
    two.api.commit_all("verify");
}

/// `orch up` of both plans with the sandbox `sandbox`; it must complete.
fn up_two(two: &Two, sandbox: &str) {
    let (code, out, err) = two.home.run_cmd(
        two.home
            .orch(&["up", "--json"])
            .env("ORCH_SANDBOX", sandbox),
    );
    assert_eq!(code, 0, "orch up (sandbox {sandbox}):\n{out}\n{err}");
}

/// The log of the group's verify commands: of its landing (`land`) or of its preview
/// (`integration`).
fn group_log(two: &Two, kind: &str) -> String {
    String::from_utf8_lossy(
        &two.home
            .read(&format!(".orch/logs/.{kind}-box/merge-verify.log")),
    )
    .into_owned()
}

fn landing_log(two: &Two) -> String {
    group_log(two, "land")
}

#[test]
fn a_group_with_container_plans_lands_after_its_verify_ran_in_a_container_of_their_image() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        for (case, h_lines) in [
            ("two of one image", container(IMAGE)),
            ("with a local plan", String::new()),
        ] {
            let what = format!("sandbox {sandbox}, {case}");
            let two = Two::new();
            let (path, text) = secret(&two.home);
            landing(&two, &probe(&path, false), &h_lines);
            up_two(&two, sandbox);
            let before = two.mains();
            // The group's preview first: verified as its landing is, moving nothing.
            let (code, out, err) = two.home.run_cmd(
                two.home
                    .orch(&["integrate", "--json"])
                    .env("ORCH_SANDBOX", sandbox),
            );
            assert_eq!(code, 0, "{what}: {out}\n{err}");
            assert_eq!(two.mains(), before, "{what}");
            let preview = group_log(&two, "integration");
            assert_eq!(
                preview.matches("PROBE-where=container").count(),
                2,
                "{what}: {preview}"
            );
            ran_in_a_container(&preview, &text, &what);
            let started = Instant::now();
            let (code, out, err) = two
                .home
                .run_cmd(two.home.orch(&["merge"]).env("ORCH_SANDBOX", sandbox));
            eprintln!("{what}: orch merge {:.2?}", started.elapsed());
            let log = landing_log(&two);
            assert_eq!(code, 0, "{what}: {out}\n{err}\n{log}");
            assert!(out.contains("landed together: box"), "{what}: {out}");
            // Both targets moved, with each plan's work.
            let (home, api) = two.mains();
            assert_ne!(home, before.0, "{what}");
            assert_ne!(api, before.1, "{what}");
            assert_eq!(two.api.git(&["show", "main:box.txt"]), "box", "{what}");
            assert_eq!(two.home.git(&["show", "main:h.txt"]), "h", "{what}");
            // `api`'s verify and verify_all: each ran the probe in the container.
            assert_eq!(
                log.matches("PROBE-where=container").count(),
                2,
                "{what}: {log}"
            );
            ran_in_a_container(&log, &text, &what);
            assert!(!out.contains(&text) && !err.contains(&text), "{what}");
            for r in [&two.home, &two.api] {
                assert_eq!(
                    support::podman::mounting(r.root()),
                    Vec::<String>::new(),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn a_group_of_container_plans_of_two_images_is_refused_and_nothing_moves() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let two = Two::new();
        let (path, text) = secret(&two.home);
        // Both run in the test image; then the manifest gives `h` another image: the landing
        // must choose one, and cannot.
        landing(&two, &probe(&path, false), &container(IMAGE));
        up_two(&two, sandbox);
        let toml = std::fs::read_to_string(two.home.root().join("plans.toml")).expect("toml");
        let at = toml.rfind(IMAGE).expect("h's image");
        let toml = format!("{}{OTHER}{}", &toml[..at], &toml[at + IMAGE.len()..]);
        two.home.write("plans.toml", &toml);
        two.home.commit_all("h in another image");
        let before = two.mains();
        let refs = (two.home.refs(), two.api.refs());
        // The preview: the group's verify not run, and why.
        let (code, out, err) = two.home.run_cmd(
            two.home
                .orch(&["integrate", "--json"])
                .env("ORCH_SANDBOX", sandbox),
        );
        assert_eq!(code, 0, "sandbox {sandbox}: {out}\n{err}");
        let report: Value = serde_json::from_str(out.trim()).expect("report");
        let note = report["verify_skipped"].as_str().unwrap_or_default();
        assert!(
            note.contains("verify not run on group `box`")
                && note.contains(&format!("`box` in `{IMAGE}`"))
                && note.contains(&format!("`h` in `{OTHER}`")),
            "sandbox {sandbox}: {report}"
        );
        assert_eq!(report["failure"], Value::Null, "{report}");
        assert!(!group_log(&two, "integration").contains("PROBE"));
        let (code, out, err) = two
            .home
            .run_cmd(two.home.orch(&["merge"]).env("ORCH_SANDBOX", sandbox));
        let all = format!("{out}{err}");
        assert_eq!(code, 5, "sandbox {sandbox}: {all}");
        assert!(all.contains("not landed: box"), "{all}");
        assert!(
            all.contains(&format!("`box` in `{IMAGE}`"))
                && all.contains(&format!("`h` in `{OTHER}`"))
                && all.contains("nothing was landed"),
            "{all}"
        );
        assert_eq!(two.mains(), before, "sandbox {sandbox}: a target moved");
        assert_eq!(
            (two.home.refs(), two.api.refs()),
            refs,
            "sandbox {sandbox}: a ref changed"
        );
        // The probe never ran.
        assert!(
            !landing_log(&two).contains("PROBE"),
            "{}",
            landing_log(&two)
        );
        assert!(!all.contains(&text));
    }
}

/// A killed `orch integrate` (kill -9 while its verify runs the plans' code, which never ends)
/// leaves its one-shot container running; the next `orch integrate` removes it before its own
/// starts, and nothing of it runs after (the services red team's hole 7: only a later `orch
/// up` removed it). Sandbox off and on.
#[test]
fn a_killed_previews_container_is_gone_when_the_next_preview_starts() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let what = format!("sandbox {sandbox}");
        let repo = preview_repo(&[("a", container(IMAGE)), ("b", container(IMAGE))]);
        // b's work: a test that says it started, then never ends.
        repo.git(&["checkout", "-q", "plan/b"]);
        repo.write("tests/probe.sh", "echo PROBE-forever\nexec sleep 1000\n");
        repo.commit_all("a test that never ends");
        repo.git(&["checkout", "-q", "main"]);
        let mut first = repo
            .orch(&["integrate", "--json"])
            .env("ORCH_SANDBOX", sandbox)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn orch integrate");
        let log = repo.root().join(".orch/logs/.integration-verify.log");
        support::wait_for("the verify to run the endless test", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("PROBE-forever"))
        });
        let left = support::podman::mounting(repo.root());
        assert!(!left.is_empty(), "{what}: no container runs the verify");
        first.kill().expect("kill -9");
        let _ = first.wait();
        // Still there after the kill, unless another orch of this machine (a test running beside
        // this one) already swept it: any orch removes the containers of runs that are dead.
        let after = support::podman::mounting(repo.root());
        assert!(
            after == left || after.is_empty(),
            "{what}: after the kill {after:?}, before {left:?}"
        );
        // The endless test gone from b's branch: the next preview passes and leaves nothing.
        repo.git(&["checkout", "-q", "plan/b"]);
        repo.write("tests/probe.sh", "echo PROBE-done\n");
        repo.commit_all("the test ends");
        repo.git(&["checkout", "-q", "main"]);
        let (code, report, _) = integrate(&repo, sandbox);
        assert_eq!(code, 0, "{what}: {report}");
        assert_eq!(
            support::podman::mounting(repo.root()),
            Vec::<String>::new(),
            "{what}: the killed preview's container is left"
        );
    }
}

//! A confined remote agent's client state, against a real `sshd` on loopback (`support::sshd`):
//! as locally, each confined attempt of a client orch knows (Claude Code, Codex, Gemini CLI) gets
//! a private copy of the client's state on its host, under the attempt's own directory in the
//! host's `dir`, seeded from the host user's state and removed when the attempt ends. The agent
//! cannot write the host user's own state, nor read or write another attempt's.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use support::{Repo, sshd};

fn one_task() -> String {
    "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step\n".to_string()
}

/// The host user's client state (in the host's HOME): `(path, bytes)`.
fn host_state(home: &Path) -> Vec<(PathBuf, String)> {
    let files = [
        (".claude/settings.json", "{\"model\":\"host-user-claude\"}"),
        (".claude.json", "{\"userID\":\"host-user\"}"),
        (".codex/config.toml", "model = \"host-user-codex\"\n"),
    ];
    files
        .iter()
        .map(|(rel, text)| {
            let p = home.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
            (p, (*text).to_string())
        })
        .collect()
}

/// Polls `cond` until it holds (120 s).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every file named `secret` under `dir` (no link followed).
fn secrets(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "secret" {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_confined_remote_agent_gets_a_private_client_state_on_its_host_and_nothing_else() {
    if !sshd::available() {
        return;
    }
    let home_dir = tempfile::tempdir().expect("home");
    let home = home_dir.path().to_path_buf();
    let users = host_state(&home);
    let lab = sshd::Lab::start_with(&["h1"], &format!("SetEnv HOME={}", home.display()));
    let dir = lab.server("h1").dir.clone();
    let signals = lab.tmp.path().join("signals");
    std::fs::create_dir_all(&signals).expect("signals");
    let go = signals.join("go");
    let bin = lab.tmp.path().join("clients");
    std::fs::create_dir_all(&bin).expect("bin");
    let script =
        std::fs::read(support::fixtures().join("remote_client_state.sh")).expect("fixture");
    for name in ["claude", "codex", "gemini"] {
        let p = bin.join(name);
        std::fs::write(&p, &script).expect("client");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let plans = [
        ("c", "claude", "-p"),
        ("x", "codex", "exec"),
        ("g", "gemini", "-p"),
    ];
    let repo = Repo::builder().identity_in_config().build();
    let mut toml = format!(
        "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 8\nretries = 0\nsandbox = \"on\"\n\n",
        lab.host_toml(3)
    );
    for (plan, program, first) in plans {
        repo.write(&format!("docs/plans/{plan}.md"), &one_task());
        let argv = [
            bin.join(program).display().to_string(),
            first.to_string(),
            go.display().to_string(),
            dir.display().to_string(),
        ];
        toml.push_str(&format!(
            "[agents.{plan}]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"{plan}\"\nfile = \"docs/plans/{plan}.md\"\nagent = \"{plan}\"\n\n",
            support::toml_array(&argv)
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
    let child = cmd.spawn().expect("orch up");
    // Each attempt wrote its secret in its own state on the host: the test tells them all.
    let attempts = dir.join("attempts");
    wait_for("each attempt's private state", || {
        secrets(&attempts).len() == plans.len()
    });
    let found = secrets(&attempts);
    for s in &found {
        assert!(s.starts_with(&attempts), "{}", s.display());
    }
    let list: String = found.iter().map(|p| format!("{}\n", p.display())).collect();
    let tmp = signals.join("go.tmp");
    std::fs::write(&tmp, list).expect("go");
    std::fs::rename(&tmp, &go).expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let mut states = Vec::new();
    for (plan, program, _) in plans {
        assert_eq!(
            repo.statuses(plan),
            vec![("1.1".to_string(), "completed".to_string())],
            "{plan}"
        );
        let seen = repo.git(&["show", &format!("plan/{plan}:seen.txt")]);
        let tried = repo.git(&["show", &format!("plan/{plan}:tried.txt")]);
        // A private state under the attempt's own directory on the host, seeded from the host
        // user's (gemini's is empty there).
        let state = seen
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("state="))
            .unwrap_or_default()
            .to_string();
        assert!(
            state.starts_with(&attempts.display().to_string()),
            "{plan}: {seen}"
        );
        match program {
            "claude" => assert!(seen.contains("host-user-claude"), "{plan}: {seen}"),
            "codex" => assert!(seen.contains("host-user-codex"), "{plan}: {seen}"),
            _ => {}
        }
        states.push(state);
        assert!(tried.contains("own done"), "{plan}: {tried}");
        for way in [
            "home-claude",
            "home-claude-json",
            "home-codex",
            "home-gemini",
        ] {
            assert!(
                tried.contains(&format!("{way} denied")),
                "{plan} {way}: {tried}"
            );
        }
        // Two other attempts' states: neither read nor written.
        assert_eq!(
            tried.matches("read-other denied").count(),
            2,
            "{plan}: {tried}"
        );
        assert_eq!(
            tried.matches("write-other denied").count(),
            2,
            "{plan}: {tried}"
        );
        assert!(!tried.contains("secret-"), "{plan}: {tried}");
    }
    states.sort();
    states.dedup();
    assert_eq!(states.len(), plans.len(), "{states:?}");
    // The host user's own state is as it was; the private states are gone with their attempts.
    for (p, text) in &users {
        assert_eq!(&std::fs::read_to_string(p).expect("host state"), text);
    }
    assert!(!home.join(".gemini").exists());
    let left: Vec<_> = std::fs::read_dir(&attempts)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

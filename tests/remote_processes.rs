//! What a remote agent leaves running ends with its attempt on the host, as a local agent's
//! does: a daemon in a session of its own that keeps the agent's output open, a double fork, a
//! child in the agent's group that ignores SIGTERM. Before, the host's side ended only the
//! agent's process group and then waited for its output to close: a daemon of its own session
//! holding that output kept the attempt from ever ending. Real `sshd` on loopback
//! (`support::sshd`); the hosts are this machine, so the test sees the processes.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Repo, process_alive, sshd};

/// Leaves one process running the way its first argument says, which keeps the agent's output
/// open and prints `leftover PID` into it first.
const LEAVER: &str = r#"
import os, signal, sys, time
how = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    if how in ("session", "double"):
        os.setsid()
    if how == "double" and os.fork() != 0:
        os._exit(0)
    if how == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.write(w, str(os.getpid()).encode())
    os.close(w)
    time.sleep(300)
    os._exit(0)
os.close(w)
print("leftover", os.read(r, 32).decode(), flush=True)
"#;

const HOWS: [&str; 3] = ["session", "double", "deaf"];

/// The pids the leaver printed into the attempts' logs.
fn leftovers(repo: &Repo, plans: &[&str]) -> Vec<u32> {
    plans
        .iter()
        .flat_map(|p| {
            let log = repo.root().join(format!(".orch/logs/{p}/1.1.log"));
            let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).to_string();
            text.lines()
                .filter_map(|l| l.strip_prefix("leftover "))
                .filter_map(|n| n.trim().parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn what_a_remote_agent_leaves_running_ends_with_its_attempt() {
    if !sshd::available() {
        return;
    }
    for sandbox in ["on", "off"] {
        let lab = sshd::Lab::start(&["h1"]);
        let bin = lab.tmp.path().join("agents");
        std::fs::create_dir_all(&bin).expect("agents");
        let leaver = bin.join("leaver.py");
        std::fs::write(&leaver, LEAVER).expect("leaver");
        let repo = Repo::builder().identity_in_config().build();
        let mut toml = format!(
            "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 8\nretries = 0\ntimeout = \"60s\"\n\n",
            lab.host_toml(3)
        );
        for how in HOWS {
            let agent = agent_script(&bin, how, &leaver);
            toml.push_str(&format!(
                "[agents.{how}]\ncommand = [\"sh\", \"{agent}\"]\nreport = \"exit\"\nsandbox = \"{sandbox}\"\n\n"
            ));
            repo.write(
                &format!("docs/plans/{how}.md"),
                "# P\n\n## Phase 1: One\n- [ ] 1.1 Leave something running\n",
            );
            toml.push_str(&format!(
                "[[plan]]\nname = \"{how}\"\nfile = \"docs/plans/{how}.md\"\nagent = \"{how}\"\n\n"
            ));
        }
        repo.write("plans.toml", &toml);
        repo.commit_all("plans");
        let mut cmd = repo.orch(&["up", "--json"]);
        cmd.env("PATH", lab.path());
        let (code, out, err) = repo.run_cmd(&mut cmd);
        let pids = leftovers(&repo, &HOWS);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| process_alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| process_alive(p)).collect();
        for &p in &alive {
            let _ = std::process::Command::new("kill")
                .args(["-9", &p.to_string()])
                .status();
        }
        assert_eq!(code, 0, "sandbox {sandbox}\nstdout:\n{out}\nstderr:\n{err}");
        for how in HOWS {
            assert_eq!(
                repo.task(how, "1.1")["status"],
                "completed",
                "{how}, sandbox {sandbox}\n{out}\n{err}"
            );
            assert_eq!(
                repo.git(&["show", &format!("plan/{how}:{how}.txt")]),
                how,
                "{how}, sandbox {sandbox}"
            );
        }
        assert_eq!(pids.len(), HOWS.len(), "sandbox {sandbox}: {pids:?}");
        assert!(
            alive.is_empty(),
            "sandbox {sandbox}: left running: {alive:?}"
        );
    }
}

/// An agent that writes `<how>.txt` and leaves a process running the way `how` says.
fn agent_script(dir: &Path, how: &str, leaver: &Path) -> String {
    let p = dir.join(format!("{how}.sh"));
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho {how} > {how}.txt\npython3 {} {how}\n",
            leaver.display()
        ),
    )
    .expect("agent");
    p.display().to_string()
}

//! The lead's terminal and the lead's System V IPC: neither is a file Landlock controls by its
//! write rules. A red team's confined root agent opened the lead's `/dev/pts/0` by its name and
//! read what the lead typed, and read, overwrote and removed the lead's shared memory segment.
//! Now every confined process has terminals of its own (a new `devpts` instance) and IPC of its
//! own (a new IPC namespace). Here the test holds a terminal with keystrokes waiting in it and a
//! shared memory segment, and a confined agent and its check try each: list the terminals, open
//! the lead's by name and every other one, read and write them, attach the segment, remove it,
//! list it. Every try is refused; the segment and the keystrokes are still the lead's.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::landlock;
use crate::support::{Repo, fixtures, toml_array};

/// A terminal held by a process of the test, with a line waiting to be read on it: its path,
/// and the process (killed when dropped).
struct Held {
    path: String,
    child: std::process::Child,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hold_a_terminal() -> Held {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import os, sys\nm, s = os.openpty()\nprint(os.ttyname(s), flush=True)\n\
             os.write(m, b'SECRET-TYPED-BY-LEAD\\n')\nsys.stdin.read()\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its terminal");
    Held {
        path: line.trim().to_string(),
        child,
    }
}

/// A shared memory segment of the test's (mode 0600): its id.
fn a_segment() -> String {
    let out = Command::new("ipcmk")
        .args(["-M", "4096", "-p", "0600"])
        .output()
        .expect("ipcmk");
    let text = String::from_utf8_lossy(&out.stdout);
    text.rsplit(' ')
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| s.parse::<u32>().is_ok())
        .unwrap_or_else(|| panic!("ipcmk: {text}"))
}

fn segment_exists(id: &str) -> bool {
    Command::new("ipcs")
        .args(["-m", "-i", id])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn terminals_and_ipc_of_the_lead_are_out_of_a_confined_agents_reach() {
    if !landlock() {
        return;
    }
    let held = hold_a_terminal();
    let shm = a_segment();
    let repo = Repo::bare_minimum();
    let out = repo.outside("findings");
    std::fs::create_dir_all(&out).expect("findings");
    let hostile = |file: &str| {
        toml_array(&[
            "python3".to_string(),
            fixtures()
                .join("hostile_terminals.py")
                .display()
                .to_string(),
            out.join(file).display().to_string(),
            held.path.clone(),
            shm.clone(),
        ])
    };
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Listen in\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {}\nreport = \"exit\"\nsandbox_write = [{:?}]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\ncheck = {}\n",
            hostile("agent.txt"),
            out.display().to_string(),
            hostile("check.txt"),
        ),
    );
    repo.commit_all("plans");
    let mut up = repo.orch(&["up"]);
    up.env_remove("ORCH_SANDBOX");
    let (code, o, e) = repo.run_cmd(&mut up);
    let there = segment_exists(&shm);
    let _ = Command::new("ipcrm").args(["-m", &shm]).status();
    assert_eq!(code, 0, "orch up\n{o}\n{e}");
    assert!(there, "the lead's segment was removed");
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    for who in ["agent.txt", "check.txt"] {
        let text = std::fs::read_to_string(out.join(who))
            .unwrap_or_else(|e| panic!("{who}: no findings: {e}"));
        let tries: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            tries
                .iter()
                .any(|l| l.starts_with(&format!("open {} ", held.path))),
            "{who}: the lead's terminal not tried\n{text}"
        );
        for t in &tries {
            assert!(
                t.split(' ').nth(1) == Some("denied") || t.split(' ').nth(2) == Some("denied"),
                "{who}: {t}\n{text}"
            );
            assert!(!t.contains("SECRET"), "{who}: {t}");
        }
        for name in ["sees-lead-pty", "shmat", "shmrm", "ipcs-sees-lead"] {
            assert!(
                tries
                    .iter()
                    .any(|l| l.starts_with(&format!("{name} denied"))),
                "{who}: {name}\n{text}"
            );
        }
    }
}

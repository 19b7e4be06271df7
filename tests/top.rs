//! `orch top` in a real pseudo-terminal beside a running `orch up` (scripted agents that wait for
//! a go from the test), its screen read through a terminal emulator (`vt100`): what a person sees,
//! and what its keys do.

use crate::support;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;
use support::{Repo, agent_at, read_lines, wait_for, wait_line, wait_within};

const THREE_TASKS: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n- [ ] 1.3 third (depends: 1.2)\n";
const ONE_TASK: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n";

/// A terminal running `orch top`, with the screen as a terminal would show it.
pub(crate) struct Screen {
    parser: vt100::Parser,
    bytes: Receiver<Vec<u8>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Screen {
    pub(crate) fn start(repo: &Repo) -> Self {
        Self::start_with(repo, &[], &[])
    }

    /// `orch ARGS top` with `env` added.
    fn start_with(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_sized(repo, args, env, 80)
    }

    /// [`Self::start_with`] in a terminal `cols` wide.
    fn start_sized(repo: &Repo, args: &[&str], env: &[(&str, &str)], cols: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_orch"));
        cmd.args(args);
        cmd.arg("top");
        cmd.cwd(repo.root());
        cmd.env_clear();
        cmd.env("PWD", repo.root());
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.env("HOME", repo.home());
        cmd.env("TERM", "xterm-256color");
        cmd.env("GIT_CONFIG_NOSYSTEM", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn orch top");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let (tx, bytes) = channel();
        std::thread::spawn(move || {
            let _keep = pair.master;
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Screen {
            parser: vt100::Parser::new(
                std::num::NonZero::new(24).expect("rows"),
                std::num::NonZero::new(cols).expect("cols"),
                0,
            ),
            bytes,
            writer,
            child,
        }
    }

    /// Some character on the screen is drawn in a colour.
    fn coloured(&self) -> bool {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        (0..rows.get()).any(|r| {
            (0..cols.get()).any(|c| {
                screen
                    .cell(r, c)
                    .is_some_and(|cell| cell.fgcolor() != vt100::Color::Default)
            })
        })
    }

    pub(crate) fn text(&self) -> String {
        self.parser.screen().contents()
    }

    /// Reads the terminal until `pred` holds for the screen (or fails after the deadline).
    pub(crate) fn wait(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + support::TIMEOUT;
        loop {
            if pred(&self.text()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; screen:\n{}",
                self.text()
            );
            if let Ok(b) = self
                .bytes
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                self.parser.process(&b);
            }
        }
    }

    /// The selected line (marked `>`).
    fn marked(&self) -> Option<String> {
        self.text()
            .lines()
            .find(|l| l.starts_with('>'))
            .map(str::to_string)
    }

    /// Moves the selection down (`j`) until the marked line satisfies `pred`.
    fn select(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        self.select_by(b"j", what, pred);
    }

    /// Moves the selection with `key` until the marked line satisfies `pred`.
    fn select_by(&mut self, key: &[u8], what: &str, pred: impl Fn(&str) -> bool) {
        for _ in 0..20 {
            let now = self.marked().unwrap_or_default();
            if pred(&now) {
                return;
            }
            self.key(key);
            self.wait(what, |s| {
                s.lines().find(|l| l.starts_with('>')).unwrap_or_default() != now
            });
        }
        panic!("cannot select {what}; screen:\n{}", self.text());
    }

    fn key(&mut self, k: &[u8]) {
        self.writer.write_all(k).expect("key");
        self.writer.flush().expect("flush");
    }

    /// Waits for the process to exit; reads what it wrote until then.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + support::TIMEOUT;
        loop {
            while let Ok(b) = self.bytes.try_recv() {
                self.parser.process(&b);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // What it wrote last (leaving the alternate screen).
                while let Ok(b) = self.bytes.recv_timeout(Duration::from_millis(300)) {
                    self.parser.process(&b);
                }
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "orch top did not exit");
            if let Ok(b) = self.bytes.recv_timeout(Duration::from_millis(50)) {
                self.parser.process(&b);
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn touch(gate: &Path, name: &str) {
    std::fs::write(gate.join(name), "").expect("touch");
}

/// The screen line of plan `name` (the plan table's rows start with the name after a space
/// or the selection mark).
fn plan_line<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        l.get(1..)
            .is_some_and(|r| r.starts_with(&format!("{name} ")))
            && l.contains('[')
    })
}

/// The row of task `plan id` in the screen's FAILED section (without its selection mark). Rows
/// elsewhere can hold the same words: the running row's last log line, the event lines.
fn failed_row(screen: &str, plan: &str, id: &str) -> Option<String> {
    screen
        .lines()
        .skip_while(|l| !l.contains("FAILED ("))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.get(1..))
        .find(|r| {
            let mut words = r.split_whitespace();
            words.next() == Some(plan) && words.next() == Some(id)
        })
        .map(str::to_string)
}

#[test]
fn top_shows_the_run_pauses_a_plan_and_quits_restoring_the_terminal() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = Repo::new();
    let cmd = agent_at("gated.sh", &[g, Path::new("60")]);
    repo.plans(&[
        ("alpha", cmd.clone(), THREE_TASKS),
        ("beta", cmd.clone(), ONE_TASK),
    ]);
    let mut up = repo.orch(&["up", "--json"]).spawn().expect("orch up");
    let lines = read_lines(&mut up);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["plan"] == "alpha" && v["task"] == "1.1"
    });

    let mut top = Screen::start(&repo);
    top.wait("both plans and the running agent", |s| {
        plan_line(s, "alpha").is_some()
            && plan_line(s, "beta").is_some()
            && s.contains("orch up running")
            && s.lines()
                .any(|l| l.contains("alpha") && l.contains("1.1") && l.contains("waiting for a go"))
    });
    // alpha 1.1 goes from running to done: its plan shows 1/2.
    touch(g, "alpha-1.1.go");
    top.wait("alpha 1.1 done", |s| {
        plan_line(s, "alpha").is_some_and(|l| l.contains("1/3"))
    });
    // `?` lists the keys; esc closes the list.
    top.key(b"?");
    top.wait("the keys", |s| {
        s.contains("pause / resume the selected plan")
    });
    top.key(b"\x1b");
    top.wait("the keys closed", |s| {
        !s.contains("pause / resume the selected plan")
    });
    // The first line selected is alpha: `p` pauses it.
    assert!(
        plan_line(&top.text(), "alpha").is_some_and(|l| l.starts_with('>')),
        "{}",
        top.text()
    );
    top.key(b"p");
    top.wait("alpha paused on screen", |s| {
        plan_line(s, "alpha").is_some_and(|l| l.contains("PAUSED"))
            && s.contains("plan alpha paused")
    });
    wait_for("the status file to say paused", || {
        repo.status_file("alpha").get("orchPlanPaused").is_some()
    });
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "plan_paused" && v["plan"] == "alpha"
    });
    // `enter` on the plan: its unfinished tasks, and what the waiting one waits for.
    top.key(b"\r");
    top.wait("the plan's waits", |s| {
        s.contains("alpha: tasks not finished")
            && s.lines()
                .any(|l| l.starts_with("1.3") && l.contains("pending"))
            && s.contains("waits for")
            && s.contains("1.2")
    });
    top.key(b"\x1b");
    top.wait("the plan list again", |s| plan_line(s, "beta").is_some());
    // `x` on the running alpha 1.2 stops it: failed with the cause `stopped`, no retry.
    top.select("alpha 1.2 running", |l| {
        l.contains("alpha") && l.contains("1.2") && l.contains("waiting for a go")
    });
    top.key(b"x");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_stopped" && v["plan"] == "alpha" && v["task"] == "1.2"
    });
    top.wait("alpha 1.2 failed, stopped", |s| {
        failed_row(s, "alpha", "1.2").is_some_and(|r| r.trim_end().ends_with("stopped"))
    });
    assert_eq!(repo.task("alpha", "1.2")["error"], "stopped");
    // `r` may land before the supervisor has seen the stopped attempt end: the retry is kept
    // for the attempt's end (`a_retry_while_the_stopped_attempt_is_still_ending_is_kept`).
    // `r` on it: pending again (the plan is paused: nothing starts); `p` resumes the plan and
    // it runs as attempt 2. The row selected must be the failed one, not the running row it
    // was (whose last log line says the attempt was stopped).
    let failed = failed_row(&top.text(), "alpha", "1.2").expect("the failed row");
    top.select("alpha 1.2 failed", |l| l.get(1..) == Some(failed.as_str()));
    top.key(b"r");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_retried" && v["plan"] == "alpha" && v["task"] == "1.2"
    });
    assert_eq!(repo.task("alpha", "1.2")["status"], "pending");
    top.select_by(b"k", "the plan alpha", |l| {
        l.starts_with(">alpha ") && l.contains('[')
    });
    top.key(b"p");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "plan_resumed" && v["plan"] == "alpha"
    });
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started"
            && v["plan"] == "alpha"
            && v["task"] == "1.2"
            && v["attempt"] == 2
    });
    top.wait("alpha resumed on screen", |s| {
        plan_line(s, "alpha").is_some_and(|l| !l.contains("PAUSED"))
    });
    // `q`: exit 0, the alternate screen left.
    assert!(
        top.parser.screen().alternate_screen(),
        "drawn on the alternate screen"
    );
    top.key(b"q");
    assert_eq!(top.exit_code(), 0);
    assert!(
        !top.parser.screen().alternate_screen(),
        "the terminal was not restored"
    );

    // The run goes on to its end.
    touch(g, "all.go");
    wait_line(&lines, &mut seen, |v: &Value| v["event"] == "run_finished");
    let out = wait_within(up, support::TIMEOUT, "orch up");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(repo.task("alpha", "1.3")["status"], "completed");
}

#[test]
fn top_without_a_terminal_says_so() {
    let repo = Repo::new();
    repo.plans(&[(
        "alpha",
        agent_at("ok.sh", &[Path::new("/dev/null")]),
        ONE_TASK,
    )]);
    let (code, _, err) = repo.run(&["top"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a terminal"), "{err}");
}

/// `orch top` colours its screen unless `--color never` or `NO_COLOR` (without `--color
/// always`) says otherwise.
#[test]
fn top_follows_color_and_no_color() {
    let repo = Repo::new();
    repo.plans(&[("alpha", support::toml_array(&["true"]), ONE_TASK)]);
    for (args, env, want) in [
        (&[][..], &[][..], true),
        (&["--color", "never"][..], &[][..], false),
        (&[][..], &[("NO_COLOR", "1")][..], false),
        (&["--color=always"][..], &[("NO_COLOR", "1")][..], true),
    ] {
        let mut top = Screen::start_with(&repo, args, env);
        top.wait("the last state", |s| {
            s.contains("no run going") && s.contains("alpha")
        });
        assert_eq!(top.coloured(), want, "{args:?} {env:?}:\n{}", top.text());
        top.key(b"q");
        assert_eq!(top.exit_code(), 0);
    }
}

/// Plans of other repositories are named with their repository (`@api`), whole at 80 columns.
#[test]
fn top_names_the_repository_of_a_plan() {
    let (t, _journal) = support::three::finished_three("");
    let mut screen = Screen::start_sized(&t.home, &[], &[], 80);
    screen.wait("every plan with its repository", |s| {
        s.contains("@api") && s.contains("@client")
    });
    let text = screen.text();
    let line = |plan: &str| {
        text.lines()
            .find(|l| {
                l.split_whitespace()
                    .any(|w| w.trim_start_matches('>') == plan)
            })
            .unwrap_or_else(|| panic!("no line for {plan}:\n{text}"))
            .to_string()
    };
    assert!(line("v2").contains("  @api done"), "{text}");
    assert!(line("client-v2").contains("  @client done"), "{text}");
    assert!(!line("docs").contains('@'), "{text}");
    screen.key(b"q");
    assert_eq!(screen.exit_code(), 0);
}

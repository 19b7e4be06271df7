//! `orch serve`'s page at 1,000 tasks (10 plans of 100, in chains of ten), in a real headless
//! Chromium over WebDriver (`tests/support/webdriver.rs`): its first paint (from the start of
//! the navigation to the end of the first render of every plan, task row, graph node), and the
//! event-to-screen delay (from a task's event appended to `<state_dir>/.events.jsonl`, its
//! status recorded just before with `orch task done`, to the render that shows it done: the
//! watcher, the server-sent event, `orch status --json` again, the render). Also the time of
//! one `GET /api/status` at that size, which the delay is mostly made of.
//!
//! Run: `cargo bench --bench serve` (`-- --tasks N` for another size, `-- --events N` for more
//! delays). `cargo test` runs 30 tasks and 3 events and checks the page shows them. Without
//! chromedriver it skips, unless `ORCH_REQUIRE_CHROMIUM` is set.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
#[path = "../tests/support/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use serde_json::json;
use support::{full_size, git, median};

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn orch() -> String {
    std::env::var("ORCH_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_orch").to_string())
}

/// `plans` plans of `per` tasks each, every task after the one before it in chains of ten.
fn setup(root: &Path, plans: usize, per: usize) {
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join(".gitignore"), ".orch/\n").expect("write");
    std::fs::create_dir_all(root.join("plans")).expect("mkdir");
    let mut manifest = String::from(
        "[defaults]\nagent = \"noop\"\n\n[agents.noop]\ncommand = [\"true\"]\nreport = \"exit\"\n",
    );
    for p in 0..plans {
        let mut text = format!("# Plan {p}\n\n## Phase 1: Work\n");
        for t in 1..=per {
            if t % 10 == 1 {
                text.push_str(&format!("- [ ] 1.{t} Task {t} of plan {p}\n"));
            } else {
                text.push_str(&format!(
                    "- [ ] 1.{t} Task {t} of plan {p} (depends: 1.{})\n",
                    t - 1
                ));
            }
        }
        std::fs::write(root.join(format!("plans/p{p}.md")), text).expect("plan");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(root.join("plans.toml"), manifest).expect("manifest");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "bench plans"]);
}

/// One `GET path` to `authority`: milliseconds and the body's length.
fn get(authority: &str, token: &str, path: &str) -> (f64, usize) {
    let t0 = Instant::now();
    let mut s = std::net::TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out[..out.len().min(300)])
    );
    (t0.elapsed().as_secs_f64() * 1000.0, out.len())
}

/// A child killed when dropped, a panic's unwinding included.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let full = full_size();
    let tasks = arg("--tasks", if full { 1000 } else { 30 });
    let events = arg("--events", if full { 10 } else { 3 });
    let per = tasks.min(100);
    let plans = tasks.div_ceil(per);
    let Some(driver) = webdriver::Driver::start() else {
        return;
    };
    let dir = support::scratch("orch-bench-serve");
    let root = dir.path();
    setup(root, plans, per);

    let mut serve = Killed(
        Command::new(orch())
            .current_dir(root)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("orch serve"),
    );
    let mut line = String::new();
    BufReader::new(serve.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address");
    // The page's address, with the token in its fragment.
    let url = line.trim().trim_start_matches("orch serve: ").to_string();
    let (bare, token) = url.split_once("#token=").expect("a token printed");
    let authority = bare
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let mut api = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let (ms, n) = get(&authority, token, "/api/status");
        api.push(ms);
        size = n;
    }

    // First paint: navigation start to the end of the first whole render.
    let page = driver.session();
    page.goto(&url);
    let wait = Duration::from_secs(120);
    page.wait_until(
        "every task row",
        wait,
        &format!("return document.querySelectorAll('tr.task').length === {} && document.querySelectorAll('#graph .node').length === {};", plans * per, plans * per),
    );
    let paint = page
        .execute(
            "return Number(document.body.getAttribute('data-rendered-at')) - performance.timeOrigin;",
            json!([]),
        )
        .as_f64()
        .expect("first paint");

    // Event to screen: a task done, its event appended, the time until the page shows it.
    let state = root.join(".orch/state");
    let mut delays = Vec::new();
    for k in 0..events {
        // The first task of a chain (it waits for none), each once.
        let chains = per.div_ceil(10);
        assert!(
            events <= plans * chains,
            "at most {} events at this size",
            plans * chains
        );
        let (plan, task) = (
            format!("p{}", k % plans),
            format!("1.{}", 1 + (k / plans) * 10),
        );
        let out = Command::new(orch())
            .current_dir(root)
            .env("ORCH_PLAN", &plan)
            .args(["task", "done", &task])
            .stdin(Stdio::null())
            .output()
            .expect("orch task done");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let before = page
            .execute(
                "return Number(document.body.getAttribute('data-renders'));",
                json!([]),
            )
            .as_u64()
            .unwrap_or(0);
        let t0 = now_ms();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join(".events.jsonl"))
            .expect("events");
        writeln!(
            log,
            "{}",
            json!({"event": "task_finished", "plan": plan, "task": task, "at": chrono::Utc::now().to_rfc3339()})
        )
        .expect("append");
        drop(log);
        let key = format!("{plan}:{task}");
        page.wait_until(
            &format!("{key} shown done"),
            wait,
            &format!("const r = document.querySelector('tr[data-task=\"{key}\"]'); return r && r.getAttribute('data-status') === 'completed' && Number(document.body.getAttribute('data-renders')) > {before};"),
        );
        let shown = page
            .execute(
                "return Number(document.body.getAttribute('data-rendered-at'));",
                json!([]),
            )
            .as_f64()
            .expect("rendered at");
        delays.push(shown - t0);
    }
    drop(serve);
    let first_delay = delays.first().copied().unwrap_or(0.0);
    let max_delay = delays.iter().copied().fold(0.0, f64::max);
    println!(
        "orch serve, {} tasks ({plans} plans): GET /api/status {:.0} ms median ({} KiB); first paint {paint:.0} ms; event to screen {:.0} ms median, {max_delay:.0} ms max over {} events (first {first_delay:.0} ms)",
        plans * per,
        median(&mut api),
        size / 1024,
        median(&mut delays),
        delays.len(),
    );
    assert!(
        paint > 0.0 && delays.iter().all(|d| *d > 0.0),
        "figures sane"
    );
}

//! What each agent client adds to an attempt's start: the real CLIs (installed by
//! `.ci/agent-clis`, found through `ORCH_TEST_CLIS`) run by their preset's argv against the fake
//! model API of `tests/support/fake_api/`, which answers at once with a final message. Per
//! client, the time from the spawn to its first model request (its own start) and to its exit
//! (one model call and the client's shutdown): on the first run in a fresh HOME (what a new
//! user, a container or CI pays: Copilot CLI unpacks itself there, opencode makes its
//! database) and warm (the same HOME again), medians of `--runs N` (default 5).
//!
//! Run: `ORCH_TEST_CLIS=$(.ci/agent-clis) cargo bench --bench clients` (`-- --runs N`,
//! `-- --only opencode,qwen`). Not run by `cargo test`: it needs the CLIs and takes a minute.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/support/fake_api/mod.rs"]
mod fake_api;

use fake_api::{Behaviour, FakeApi};

const CLIENTS: [&str; 7] = [
    "claude", "codex", "gemini", "aider", "opencode", "qwen", "copilot",
];

/// One run: (time to the first model request, time to exit).
fn run_once(clis: &Path, agent: &str, home: &Path, work: &Path) -> (Duration, Duration) {
    let api = FakeApi::start(Behaviour::Refuse("nothing to do".into()));
    let prompt = "## Task 1.1: Say done\n\nNothing to change; answer in one line.\n";
    let prompt_file = home.join("prompt.md");
    std::fs::write(&prompt_file, prompt).expect("prompt");
    let presets = orch::manifest::presets();
    let preset = &presets[agent];
    let argv: Vec<String> = preset
        .command
        .iter()
        .map(|a| {
            orch::manifest::render_template(a, |v| match v {
                "prompt" => prompt.to_string(),
                "orch" => "true".to_string(),
                "orch_dir" => "/usr/bin".to_string(),
                "usage_file" => home.join("usage.json").display().to_string(),
                "status_file" => home.join("state/status.json").display().to_string(),
                _ => String::new(),
            })
            .expect("render")
        })
        .collect();
    let stdin = if preset.stdin == orch::manifest::StdinMode::Prompt {
        Stdio::from(std::fs::File::open(&prompt_file).expect("prompt"))
    } else {
        Stdio::null()
    };
    let mut cmd = Command::new(clis.join("bin").join(&argv[0]));
    cmd.args(&argv[1..])
        .current_dir(work)
        .env_clear()
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    fake_api::env::client_env(&mut cmd, clis, &api, home);
    if let Some(cli) = orch::manifest::KnownCli::of(&argv) {
        cmd.envs(cli.env(Some(false), "true", |_| None));
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the client");
    let mut first = None;
    let deadline = start + Duration::from_secs(180);
    loop {
        if first.is_none() && api.model_calls() > 0 {
            first = Some(start.elapsed());
        }
        if let Some(_status) = child.try_wait().expect("wait") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{agent} did not end within 180 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = start.elapsed();
    (first.unwrap_or(total), total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let runs: usize = arg("--runs").and_then(|n| n.parse().ok()).unwrap_or(5);
    let only: Option<Vec<String>> =
        arg("--only").map(|l| l.split(',').map(str::to_string).collect());
    let Some(clis) = std::env::var_os("ORCH_TEST_CLIS").map(std::path::PathBuf::from) else {
        eprintln!(
            "ORCH_TEST_CLIS is not set: run `ORCH_TEST_CLIS=$(.ci/agent-clis) cargo bench --bench clients`"
        );
        std::process::exit(2);
    };
    println!(
        "client start against the fake model API (one model call), medians of {runs} runs\n\
         | client | first run: to its first request | first run: to its exit | warm: to its first request | warm: to its exit |\n\
         |---|---|---|---|---|"
    );
    for agent in CLIENTS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|a| a == agent)) {
            continue;
        }
        if !clis.join("bin").join(agent).exists() {
            println!("| {agent} | not installed | | | |");
            continue;
        }
        let (mut cold_first, mut cold_total, mut warm_first, mut warm_total) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let home = tempfile::tempdir().expect("home");
            let work = tempfile::tempdir().expect("work");
            let ok = Command::new("git")
                .args(["init", "-q", "-b", "main"])
                .current_dir(work.path())
                .status()
                .expect("git")
                .success();
            assert!(ok, "git init");
            let (f, t) = run_once(&clis, agent, home.path(), work.path());
            cold_first.push(f);
            cold_total.push(t);
            let (f, t) = run_once(&clis, agent, home.path(), work.path());
            warm_first.push(f);
            warm_total.push(t);
        }
        println!(
            "| {agent} | {} | {} | {} | {} |",
            secs(median(cold_first)),
            secs(median(cold_total)),
            secs(median(warm_first)),
            secs(median(warm_total))
        );
    }
}

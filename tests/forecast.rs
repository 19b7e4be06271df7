//! Forecasts from history end to end: scripted agents that sleep a duration derived
//! from a seed and their task (`seeded_sleep.sh`, a tenth to a third of a second) build the
//! history through real `orch up` runs; later commands forecast from it.

use crate::support;

use serde_json::Value;
use support::events::named;
use support::{Repo, agent};

/// Plans `w1`, `w2` (six independent tasks each) and `b` (a chain of three, then one more),
/// all run by the agent `sleeper`; the seed is read from `seed_file` at each attempt.
fn setup(repo: &Repo, seed_file: &std::path::Path, slow: Option<&str>) {
    let six = "# W\n\n## Phase 1: Work\n- [ ] 1.1 one\n- [ ] 1.2 two\n- [ ] 1.3 three\n\
               - [ ] 1.4 four\n- [ ] 1.5 five\n- [ ] 1.6 six\n";
    let b = "# B\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n\
             - [ ] 1.3 third (depends: 1.2)\n- [ ] 1.4 fourth (est: 20m)\n";
    repo.write("docs/plans/w1.md", six);
    repo.write("docs/plans/w2.md", six);
    repo.write("docs/plans/b.md", b);
    let seed = seed_file.to_str().expect("utf8");
    let command = match slow {
        Some(task) => agent("seeded_sleep.sh", &[seed, "200", "100", task, "2500"]),
        None => agent("seeded_sleep.sh", &[seed, "200", "100"]),
    };
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"sleeper\"\nmax_agents = 3\nretries = 0\n\n\
             [agents.sleeper]\ncommand = {command}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"w1\"\nfile = \"docs/plans/w1.md\"\n\n\
             [[plan]]\nname = \"w2\"\nfile = \"docs/plans/w2.md\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\n"
        ),
    );
    repo.commit_all("plans");
}

fn json_of(repo: &Repo, args: &[&str]) -> Value {
    let (code, out, err) = repo.run(args);
    assert_eq!(code, 0, "orch {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("orch {args:?}: not JSON ({e}): {out}"))
}

/// Two runs (`w1` with seed 1, `w2` with seed 2) build a history of twelve attempts.
fn two_runs(repo: &Repo, seed_file: &std::path::Path) {
    std::fs::write(seed_file, "1").expect("seed");
    repo.up(&["w1"]);
    std::fs::write(seed_file, "2").expect("seed");
    repo.up(&["w2"]);
}

#[test]
fn runs_build_a_history_that_status_forecasts_from() {
    let repo = Repo::bare_minimum();
    let seed_file = repo.outside("seed");
    setup(&repo, &seed_file, None);
    two_runs(&repo, &seed_file);

    let h = json_of(&repo, &["history", "--json"]);
    let records = h["records"].as_array().expect("records");
    assert_eq!(records.len(), 12, "{h:#}");
    for r in records {
        assert_eq!(r["agent"], "sleeper");
        assert_eq!(r["outcome"], "done");
        let ms = r["duration_ms"].as_u64().expect("duration");
        // The agent slept 100–300 ms; orch's own work around it is added.
        assert!((100..5_000).contains(&ms), "{r}");
    }
    assert_eq!(h["summary"][0]["attempts"], 6);

    // `orch clean --force` removes the plans' worktrees and keeps the history (it lives in the
    // state directory).
    let (code, out, err) = repo.run(&["clean", "--force", "w1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!repo.worktree("w1").exists());
    let again = json_of(&repo, &["history", "--json"]);
    assert_eq!(again["records"].as_array().map(Vec::len), Some(12));

    // Plan b has not run: its tasks get ranges from the agent's twelve attempts; the task with
    // `(est: 20m)` too (history wins over an estimate once there is enough of it).
    let s = json_of(&repo, &["status", "--json"]);
    let f = &s["forecast"];
    for key in ["eta_p50", "eta_p90"] {
        let t = f[key].as_str().unwrap_or_else(|| panic!("{key} in {s:#}"));
        chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339");
    }
    let b = s["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["plan"] == "b")
        .expect("plan b");
    assert!(b["forecast"]["eta_p50"].is_string(), "{b:#}");
    for t in b["tasks"].as_array().expect("tasks") {
        let tf = &t["forecast"];
        assert_eq!(tf["samples"], 12, "{t:#}");
        assert_eq!(tf["basis"], "agent");
        let (p50, p90) = (
            tf["duration_p50_s"].as_f64().expect("p50"),
            tf["duration_p90_s"].as_f64().expect("p90"),
        );
        assert!(p50 <= p90 && p90 < 60.0, "{tf}");
        assert!(tf["cost_p50"].is_null(), "the sleeper names no cost: {tf}");
    }
    // Finished plans' tasks have no task forecast.
    let w1 = &s["plans"][0];
    assert!(w1["tasks"][0].get("forecast").is_none(), "{w1:#}");

    // The text: a line for plan b and one for the run.
    let (code, text, _) = repo.run(&["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("  forecast: ends "), "{text}");
    assert!(text.contains("forecast: all plans ends "), "{text}");
    forecast_in_local_time(&repo);

    // `orch simulate --history` forecasts the same plan before a run.
    let sim = json_of(&repo, &["simulate", "b", "--json", "--history"]);
    assert_eq!(sim["forecast"]["tasks"], 4, "{sim:#}");
    assert_eq!(sim["forecast"]["tasks_from_history"], 4);
    let p50 = sim["forecast"]["duration_p50_s"].as_f64().expect("p50");
    assert!(
        p50 < 60.0,
        "three in a chain and one beside: about a second: {sim:#}"
    );

    // The backtest replays the twelve attempts.
    let bt = json_of(&repo, &["history", "--json", "--backtest"]);
    assert_eq!(
        bt["backtest"]["tasks"]["forecasts"], 11,
        "{:#}",
        bt["backtest"]
    );
    let (code, text, _) = repo.run(&["history", "--backtest"]);
    assert_eq!(code, 0);
    assert!(text.contains("under p90"), "{text}");
}

#[test]
fn an_attempt_far_longer_than_its_history_is_reported_slow_once() {
    let repo = Repo::bare_minimum();
    let seed_file = repo.outside("seed");
    setup(&repo, &seed_file, Some("b 1.2"));
    two_runs(&repo, &seed_file);

    let ev = repo.up_events(&["b"], 0);
    // Once for the slow attempt (another attempt may also pass its p90 on a loaded machine:
    // that is what the event says, so only 1.2's are counted).
    let slow: Vec<&Value> = named(&ev, "task_slow")
        .into_iter()
        .filter(|e| e["task"] == "1.2")
        .collect();
    assert_eq!(slow.len(), 1, "{slow:?}");
    let s = slow[0];
    assert_eq!(s["plan"], "b");
    assert!(s["elapsed_ms"].as_u64() > s["p90_ms"].as_u64(), "{s}");
    // The twelve attempts of the earlier runs, and b 1.1 of this run (1.2 depends on it): the
    // run learns as its attempts settle.
    assert_eq!(s["samples"], 13);
    // A signal, not a kill: the task finished and was committed.
    let done = named(&ev, "task_finished");
    assert!(done.iter().any(|e| e["task"] == "1.2"), "{done:?}");
    // The run's forecast at its start, told against its end, before `run_finished`.
    let rf = named(&ev, "run_forecast");
    assert_eq!(rf.len(), 1, "{ev:?}");
    chrono::DateTime::parse_from_rfc3339(rf[0]["eta_p90"].as_str().expect("eta")).expect("time");
    // The slow attempt joined the history, for the next forecasts.
    let h = json_of(&repo, &["history", "--json"]);
    assert_eq!(h["records"].as_array().map(Vec::len), Some(16));
}

#[test]
fn orch_top_shows_the_run_forecast_and_a_running_task_past_its_p90_as_slow() {
    let repo = Repo::bare_minimum();
    let seed_file = repo.outside("seed");
    setup(&repo, &seed_file, None);
    two_runs(&repo, &seed_file);
    // Task b 1.1 in progress (as a person's `orch task start` records it).
    let (code, out, err) = repo.run(&["task", "start", "1.1", "--plan", "b"]);
    assert_eq!(code, 0, "{out}{err}");

    let sel = orch::workspace::Selection {
        manifest: Some(repo.root().join("plans.toml")),
        plan: None,
    };
    let ws = orch::workspace::load(&sel).expect("workspace");
    let mut source = orch::top::model::Source::new(ws);
    // Just started: a range, not slow.
    let now = chrono::Utc::now();
    let snap = source.read(now);
    assert!(snap.forecast.starts_with("ends "), "{:?}", snap.forecast);
    let b = snap.plans.iter().find(|p| p.name == "b").expect("plan b");
    assert!(b.forecast.starts_with("ends "), "{b:?}");
    let w1 = snap.plans.iter().find(|p| p.name == "w1").expect("plan w1");
    assert_eq!(w1.forecast, "", "a finished plan has no end to forecast");
    let t = snap
        .running
        .iter()
        .find(|t| t.id == "1.1")
        .expect("running");
    assert!(t.forecast.contains('–') && !t.slow, "{t:?}");
    // A minute later (the history's attempts took well under a second): slow, and its range
    // starts past the minute.
    let later = source.read(now + chrono::Duration::seconds(60));
    let t = later
        .running
        .iter()
        .find(|t| t.id == "1.1")
        .expect("running");
    assert!(t.slow, "{t:?}");
    assert!(
        t.forecast.starts_with("1m1") || t.forecast.starts_with("1m"),
        "{t:?}"
    );
    // `orch status --json` says the same of the task: its range above its elapsed time.
    let s = json_of(&repo, &["status", "--json", "--plan", "b"]);
    let task = &s["tasks"][0]["forecast"];
    assert!(
        task["duration_p90_s"].as_f64() >= task["duration_p50_s"].as_f64(),
        "{s:#}"
    );
    assert!(s["forecast"]["eta_p90"].is_string(), "{s:#}");
}

#[test]
fn history_without_a_manifest_is_refused_and_simulate_history_says_where_its_figures_come_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.md"),
        "# P\n\n## Phase 1: W\n- [ ] 1.1 a (est: 5m)\n",
    )
    .expect("plan");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["history"])
        .current_dir(dir.path())
        .env("PWD", dir.path())
        .env_remove("OLDPWD")
        .env("NO_COLOR", "1")
        .output()
        .expect("orch");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no `plans.toml` found"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing written: {names:?}");

    // A plan file alone: no history, so the estimate (5 minutes), 0 tasks from history.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args([
            "simulate",
            "--plan",
            "p.md",
            "--history",
            "--policy",
            "orch",
        ])
        .current_dir(dir.path())
        .env("PWD", dir.path())
        .env_remove("OLDPWD")
        .env("NO_COLOR", "1")
        .output()
        .expect("orch");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("from the history (0 attempts; 0 of 1 tasks left have a history"),
        "{text}"
    );
    assert!(text.contains("takes 5m"), "{text}");
}

/// The run's forecast in `orch status`'s text is in local time (the `TZ` of the process, as
/// `orch up`'s own lines), not UTC: under `TZ=Asia/Tokyo` (UTC+9, no summer time) it names the
/// JSON's `eta_p50` as Tokyo's clock shows it, never as UTC's; a range within one minute is
/// said as one time (`ends about 15:10`).
fn forecast_in_local_time(repo: &Repo) {
    use chrono::{DateTime, Duration, FixedOffset};
    if !std::path::Path::new("/usr/share/zoneinfo/Asia/Tokyo").exists() {
        eprintln!("skipped: no time zone data for Asia/Tokyo");
        return;
    }
    let tz = [("TZ", "Asia/Tokyo")];
    let (code, json, err) = repo.run_cmd(repo.orch(&["status", "--json"]).envs(tz));
    assert_eq!(code, 0, "{err}");
    let (code, text, err) = repo.run_cmd(repo.orch(&["status"]).envs(tz));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json).expect("json");
    let at = |key: &str| {
        DateTime::parse_from_rfc3339(v["forecast"][key].as_str().expect("a time"))
            .expect("RFC 3339")
    };
    let tokyo = FixedOffset::east_opt(9 * 3600).expect("offset");
    let utc = FixedOffset::east_opt(0).expect("offset");
    let line = text
        .lines()
        .find(|l| l.contains("forecast: all plans ends "))
        .unwrap_or_else(|| panic!("{text}"));
    // The two calls may straddle a minute: the text's is the JSON's or the next one.
    let clock = |t: DateTime<FixedOffset>, tz: FixedOffset| {
        [t, t + Duration::minutes(1)].map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
    };
    let (p50, p90) = (at("eta_p50"), at("eta_p90"));
    assert!(
        clock(p50, tokyo)
            .iter()
            .any(|c| line.contains(&format!(" {c}"))),
        "not Tokyo's time of {p50}: {line}"
    );
    assert!(
        !clock(p50, utc)
            .iter()
            .any(|c| line.contains(&format!(" {c}"))),
        "UTC's time of {p50}: {line}"
    );
    if clock(p50, tokyo)[0] == clock(p90, tokyo)[0] {
        assert!(
            line.contains("ends about "),
            "one minute said as a range: {line}"
        );
    }
}

//! The JSON lines `orch up --json` prints.

use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use serde_json::Value;

use super::TIMEOUT;

/// Every line of `stdout` as a JSON event; fails the test on a line that is not JSON.
pub fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The events called `name`.
pub fn named<'a>(ev: &'a [Value], name: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event"] == name).collect()
}

/// The `run_finished` summary's entry for `plan`.
pub fn outcome<'a>(ev: &'a [Value], plan: &str) -> &'a Value {
    let finished = named(ev, "run_finished");
    assert_eq!(finished.len(), 1, "one run_finished event: {ev:?}");
    finished[0]["summary"]["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["plan"] == plan)
        .unwrap_or_else(|| panic!("no outcome for `{plan}`: {}", finished[0]))
}

/// Reads a child's stdout line by line on a thread, as JSON events.
pub fn read_lines(child: &mut Child) -> Receiver<Value> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Waits (with the default deadline) for an event matching `pred`, keeping every line seen.
pub fn wait_line(lines: &Receiver<Value>, seen: &mut Vec<Value>, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(v) => {
                let hit = pred(&v);
                seen.push(v);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no matching event; seen: {seen:?}"),
        }
    }
}

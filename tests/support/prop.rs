//! What every property test file shares: proptest's configuration, a property run that prints
//! how many inputs it ran, and a deadline that tells a hang from a slow input.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Longest time one input may take (parse, graph, round trip) before it counts as a hang.
pub const DEADLINE: Duration = Duration::from_secs(5);

pub fn config() -> Config {
    // `Config::default()` reads PROPTEST_CASES (default 256).
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs a property and prints how many inputs it executed (shrinking included).
pub fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), String>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config());
    let count = AtomicU64::new(0);
    let start = Instant::now();
    let result = runner.run(&strategy, |value| {
        count.fetch_add(1, Ordering::Relaxed);
        test(value).map_err(TestCaseError::fail)
    });
    eprintln!(
        "fuzz {name}: {} executions in {:.2?}",
        count.load(Ordering::Relaxed),
        start.elapsed()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Runs `f` on its own thread; a run longer than [`DEADLINE`] is a hang. Panics propagate.
pub fn within_deadline<T: Send + 'static>(
    input: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => {
            let _ = handle.join();
            Ok(v)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "no result within {DEADLINE:?} (hang) for input {input:?}"
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => Err("worker ended without a result".into()),
        },
    }
}

//! What some tests read from `../shared` beside the clone: the corpus of real plans
//! (`../shared/corpus`) and the earlier system's status schema
//! (`../shared/compat/plan-status.schema.json`).
//!
//! Without it those tests say so and pass, unless `ORCH_REQUIRE_SHARED` is set (CI sets it):
//! then a test that cannot find what it needs fails with the path it looked for.

use std::path::{Path, PathBuf};

/// The environment variable that makes a missing `../shared` a failure.
pub const REQUIRE_SHARED: &str = "ORCH_REQUIRE_SHARED";

/// `../shared`, beside the clone.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// Whether `ORCH_REQUIRE_SHARED` is set (to anything but empty or `0`).
pub fn shared_required() -> bool {
    std::env::var(REQUIRE_SHARED).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `what` (a path under `../shared`) when it exists. When it does not: fails the test with the
/// reason if `ORCH_REQUIRE_SHARED` is set, else prints that the test is skipped and gives
/// `None`.
pub fn require_shared(what: &str) -> Option<PathBuf> {
    let path = shared_dir().join(what);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !shared_required(),
        "{REQUIRE_SHARED} is set but `{}` does not exist (the tree `../shared` beside the clone \
         holds the corpus and the status schema)",
        path.display()
    );
    eprintln!(
        "skipped: `{}` not present (set {REQUIRE_SHARED}=1 to make this a failure)",
        path.display()
    );
    None
}

/// `../shared/corpus` (see [`require_shared`]).
pub fn corpus_dir() -> Option<PathBuf> {
    require_shared("corpus")
}

/// Every `.md` file under `dir`, sorted.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read corpus dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every corpus plan with its text, sorted by path; empty when the corpus is absent and not
/// required (see [`require_shared`]).
pub fn corpus_plans() -> Vec<(PathBuf, String)> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    let files = corpus_files(&dir);
    assert!(!files.is_empty(), "no plan in `{}`", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("corpus plan `{}`: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// `../shared/compat/plan-status.schema.json`, parsed (see [`require_shared`]).
pub fn status_schema() -> Option<serde_json::Value> {
    let path = require_shared("compat/plan-status.schema.json")?;
    let text = std::fs::read_to_string(&path).expect("read the status schema");
    Some(serde_json::from_str(&text).expect("the status schema is JSON"))
}

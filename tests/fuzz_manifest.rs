//! Property tests (proptest) for the manifest loader: it never panics or hangs on arbitrary
//! TOML-ish text, arbitrary strings, or structured manifests with random keys, values and types.
//! `PROPTEST_CASES=10000 cargo test --release --test fuzz_manifest -- --nocapture` for a long run.

use crate::support;

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use support::prop::{run, within_deadline};

// ---------------------------------------------------------------------------------------------
// Manifest properties

/// A directory with a manifest path and two plan files, shared by the manifest properties.
fn manifest_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let plans = dir.path().join("plans");
        std::fs::create_dir_all(&plans).expect("mkdir");
        for name in ["a.md", "b.md"] {
            std::fs::write(
                plans.join(name),
                "# P\n\n## Phase 1: One\n\n- [ ] 1.1 Do it\n- [ ] 1.2 Then (depends: 1.1)\n",
            )
            .expect("write plan");
        }
        dir
    })
    .path()
}

fn check_manifest_text(text: &str) -> Result<(), String> {
    let owned = text.to_string();
    let path = manifest_dir().join("plans.toml");
    within_deadline(text, move || {
        let _ = orch::manifest::parse_str(&path, &owned);
    })
}

fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-5i64..100).prop_map(|n| n.to_string()),
        Just("9223372036854775807".to_string()),
        Just("1.5".to_string()),
        prop::bool::ANY.prop_map(|b| b.to_string()),
        prop_oneof![
            Just("plans/a.md"),
            Just("plans/b.md"),
            Just("missing.md"),
            Just("../escape.md"),
            Just("a"),
            Just("b"),
            Just("a:1"),
            Just("b:phase-1"),
            Just("a:1.2"),
            Just("claude"),
            Just("codex"),
            Just("5m"),
            Just("30s"),
            Just("1h30m"),
            Just("-1s"),
            Just(""),
            Just("main"),
            Just("squash"),
            Just("rebase"),
            Just("merge"),
            Just("{{prompt}}"),
            Just("{{ nope"),
            Just("bad name/with..dots"),
        ]
        .prop_map(|s| format!("{s:?}")),
        "[a-z0-9 ._/:-]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

fn key(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        5 => prop::sample::select(known).prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ]
}

fn entries(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec((key(known), toml_value()), 0..6).prop_map(|kv| {
        let mut seen = std::collections::HashSet::new();
        kv.into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    })
}

fn structured_manifest() -> impl Strategy<Value = String> {
    use orch::manifest::{agent_keys, defaults_keys, plan_keys};
    (
        prop::option::of(entries(defaults_keys())),
        prop::collection::vec(("[a-z]{1,6}", entries(agent_keys())), 0..3),
        prop::collection::vec(entries(plan_keys()), 0..4),
        prop::option::weighted(0.2, entries(&["bogus", "defaults", "plan"])),
    )
        .prop_map(|(defaults, agents, plans, top)| {
            let mut s = top.unwrap_or_default();
            if let Some(d) = defaults {
                s.push_str(&format!("[defaults]\n{d}\n"));
            }
            let mut seen = std::collections::HashSet::new();
            for (name, body) in agents {
                if seen.insert(name.clone()) {
                    s.push_str(&format!("[agents.{name}]\n{body}\n"));
                }
            }
            for p in plans {
                s.push_str(&format!("[[plan]]\n{p}\n"));
            }
            s
        })
}

#[test]
fn manifest_loader_survives_arbitrary_text() {
    run(
        "manifest/toml-soup",
        "[a-z_=\\[\\]\"'{}.,0-9 \n#:/-]{0,400}",
        |s| check_manifest_text(&s),
    );
}

#[test]
fn manifest_loader_survives_arbitrary_strings() {
    run("manifest/arbitrary-string", any::<String>(), |s| {
        check_manifest_text(&s)
    });
}

#[test]
fn manifest_loader_survives_structured_manifests() {
    run("manifest/structured", structured_manifest(), |s| {
        check_manifest_text(&s)
    });
}

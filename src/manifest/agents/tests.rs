use super::*;

#[test]
fn templates() {
    assert_eq!(
        parse_template("--file={{prompt_file}}!"),
        Ok(vec![
            TemplatePart::Text("--file="),
            TemplatePart::Var("prompt_file"),
            TemplatePart::Text("!"),
        ])
    );
    assert_eq!(
        parse_template("{{ task }}"),
        Ok(vec![TemplatePart::Var("task")])
    );
    assert_eq!(
        parse_template("plain"),
        Ok(vec![TemplatePart::Text("plain")])
    );
    let err = parse_template("{{ nope }}").expect_err("unknown");
    assert!(
        err.contains("unknown template variable `{{ nope }}`"),
        "{err}"
    );
    let err = parse_template("x {{ prompt").expect_err("unclosed");
    assert!(err.contains("unclosed `{{`"), "{err}");
    assert_eq!(
        render_template("a-{{ plan }}-{{task}}", |v| v.to_uppercase()),
        Ok("a-PLAN-TASK".to_string())
    );
}

#[test]
fn the_status_dir_is_the_status_files_directory() {
    let got = render_template("--add-dir={{ status_dir }}", |v| match v {
        "status_file" => "/r/.orch/state/api/status.json".to_string(),
        _ => String::new(),
    });
    assert_eq!(got, Ok("--add-dir=/r/.orch/state/api".to_string()));
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_string()).collect()
}

#[test]
fn the_presets_have_no_known_problem() {
    for (name, spec) in presets() {
        let cli = KnownCli::of(&spec.command).expect("a known CLI");
        assert_eq!(cli.name(), name);
        assert_eq!(cli.problems(&spec.command), Vec::new(), "{name}");
    }
    assert_eq!(
        KnownCli::flags(&owned(CODEX_PRESET)),
        ["--sandbox", "--add-dir", "--json"]
    );
    assert_eq!(
        KnownCli::Codex.help_args(&owned(CODEX_PRESET)),
        ["exec", "--help"]
    );
}

#[test]
fn argvs_known_not_to_work_are_found_with_their_fix() {
    let old_codex = owned(&["codex", "exec", "--full-auto", "{{ prompt }}"]);
    let p = KnownCli::Codex.problems(&old_codex);
    assert!(p[0].message.contains("`--full-auto`"), "{p:?}");
    assert!(p[0].fix.contains("--sandbox workspace-write"), "{p:?}");
    assert!(
        p.iter()
            .any(|x| x.fix.contains("--add-dir {{ status_dir }}")),
        "{p:?}"
    );
    let old_claude = owned(&[
        "claude",
        "-p",
        "{{ prompt }}",
        "--permission-mode",
        "acceptEdits",
    ]);
    let p = KnownCli::Claude.problems(&old_claude);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].message.contains("`orch task done`"), "{p:?}");
    assert!(p[0].fix.contains("Bash({{ orch }} *)"), "{p:?}");
    let root = owned(&[
        "/usr/bin/claude",
        "--print",
        "x",
        "--dangerously-skip-permissions",
    ]);
    assert!(KnownCli::of(&root) == Some(KnownCli::Claude));
    assert!(KnownCli::Claude.problems(&root)[0].message.contains("root"));
    let file = owned(&[
        "claude",
        "-p",
        "{{ prompt_file }}",
        "--allowedTools",
        "Bash",
    ]);
    let p = KnownCli::Claude.problems(&file);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].message.contains("outside its working directory"),
        "{p:?}"
    );
    assert_eq!(KnownCli::of(&owned(&["sh", "agent.sh"])), None);
}

#[test]
fn confined_variants_replace_only_the_presets_own_argv() {
    let claude = owned(CLAUDE_PRESET);
    assert_eq!(confined_variant(&claude), Some(CLAUDE_CONFINED));
    assert_eq!(confined_variant(&owned(CODEX_PRESET)), Some(CODEX_CONFINED));
    assert_eq!(
        confined_variant(&owned(GEMINI_PRESET)),
        Some(GEMINI_CONFINED)
    );
    assert_eq!(confined_variant(&owned(AIDER_PRESET)), None);
    let mut own = claude.clone();
    own.push("--model".into());
    assert_eq!(confined_variant(&own), None);
    assert_eq!(confined_variant(&owned(QWEN_PRESET)), Some(QWEN_CONFINED));
    assert_eq!(
        confined_variant(&owned(COPILOT_PRESET)),
        Some(COPILOT_CONFINED)
    );
    assert_eq!(confined_variant(&owned(OPENCODE_PRESET)), None);
    for v in [
        CLAUDE_CONFINED,
        CODEX_CONFINED,
        GEMINI_CONFINED,
        QWEN_CONFINED,
        COPILOT_CONFINED,
    ] {
        let v = owned(v);
        let cli = KnownCli::of(&v).expect("known");
        assert_eq!(cli.problems(&v), Vec::new(), "{v:?}");
    }
}

const ALL: [KnownCli; 7] = [
    KnownCli::Claude,
    KnownCli::Codex,
    KnownCli::Gemini,
    KnownCli::Aider,
    KnownCli::Opencode,
    KnownCli::Qwen,
    KnownCli::Copilot,
];

#[test]
fn every_client_but_aider_has_a_private_state_named_by_its_own_variables() {
    let vars = |c: KnownCli| {
        c.private_state()
            .map(|s| s.homes.iter().map(|h| h.var).collect::<Vec<_>>())
    };
    assert_eq!(vars(KnownCli::Claude), Some(vec!["CLAUDE_CONFIG_DIR"]));
    assert_eq!(vars(KnownCli::Codex), Some(vec!["CODEX_HOME"]));
    assert_eq!(vars(KnownCli::Gemini), Some(vec!["GEMINI_CLI_HOME"]));
    assert_eq!(vars(KnownCli::Qwen), Some(vec!["QWEN_HOME"]));
    assert_eq!(vars(KnownCli::Copilot), Some(vec!["COPILOT_HOME"]));
    assert_eq!(
        vars(KnownCli::Opencode),
        Some(vec![
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME"
        ])
    );
    assert_eq!(vars(KnownCli::Aider), None);
    for c in ALL.into_iter().filter(|c| *c != KnownCli::Aider) {
        let s = c.private_state().expect("private state");
        // Several variables point at distinct directories of the copy.
        let ats: std::collections::BTreeSet<&str> = s.homes.iter().map(|h| h.at).collect();
        assert_eq!(ats.len(), s.homes.len(), "{c:?}");
        for h in s.homes {
            // Only names inside the state directory: nothing is copied from elsewhere but
            // the files the client keeps beside it.
            for e in h.entries {
                assert!(!e.contains('/') && !e.starts_with('~') && *e != "..", "{e}");
            }
            // What a session writes is not copied.
            for history in ["projects", "sessions", "history", "history.jsonl", "tmp"] {
                assert!(!h.entries.contains(&history), "{c:?}: {history}");
            }
        }
        // The user's own state directories are never writable for a confined agent.
        assert!(!c.state_paths().is_empty(), "{c:?}");
    }
    // A variable the user set names their state: `$XDG_CONFIG_HOME/opencode`.
    let env = |k: &str| (k == "XDG_CONFIG_HOME").then(|| std::ffi::OsString::from("/u/cfg"));
    assert_eq!(
        KnownCli::Opencode.state_dirs_from_env(env),
        vec![std::path::PathBuf::from("/u/cfg/opencode")]
    );
    assert_eq!(
        KnownCli::Claude.state_dirs_from_env(env),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn opencode_gets_its_permission_rules_and_keeps_the_users_configuration() {
    let orch = "/opt/orch/bin/orch";
    let env = KnownCli::Opencode.env(Some(false), orch, |k| {
        (k == "OPENCODE_CONFIG_CONTENT")
            .then(|| r#"{"model":"fake/m","snapshot":true}"#.to_string())
    });
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).expect("json"))
            .expect(k)
    };
    let perm = get("OPENCODE_PERMISSION");
    assert_eq!(perm["bash"]["*"], "deny");
    assert_eq!(perm["bash"][format!("{orch} *")], "allow");
    assert_eq!(perm["edit"], "allow");
    let config = get("OPENCODE_CONFIG_CONTENT");
    assert_eq!(
        config["model"], "fake/m",
        "the user's configuration is kept"
    );
    assert_eq!(config["snapshot"], false);
    let confined = KnownCli::Opencode.env(Some(true), orch, |_| None);
    let perm: serde_json::Value = serde_json::from_str(
        &confined
            .iter()
            .find(|(n, _)| n == "OPENCODE_PERMISSION")
            .expect("rules")
            .1,
    )
    .expect("json");
    assert_eq!(
        perm["bash"], "allow",
        "confined: orch's rules are the limit"
    );
    assert!(KnownCli::Qwen.env(Some(false), orch, |_| None).is_empty());
    let claude = KnownCli::Claude.env(Some(false), orch, |_| None);
    assert_eq!(
        claude,
        [("CLAUDE_CODE_MAX_RETRIES".to_string(), "0".to_string())]
    );
    assert!(
        KnownCli::Claude
            .env(Some(false), orch, |k| (k == "CLAUDE_CODE_MAX_RETRIES")
                .then(|| "3".into()))
            .is_empty(),
        "the user's own setting is kept"
    );
    // A configuration orch cannot read is passed on as the user wrote it.
    let jsonc = KnownCli::Opencode.env(Some(false), orch, |k| {
        (k == "OPENCODE_CONFIG_CONTENT").then(|| "{ // mine\n}".to_string())
    });
    assert!(
        jsonc.iter().all(|(k, _)| k != "OPENCODE_CONFIG_CONTENT"),
        "{jsonc:?}"
    );
    // An opencode command of the user's own keeps the user's rules.
    let own = KnownCli::Opencode.env(None, orch, |_| None);
    assert!(
        own.iter().all(|(k, _)| k != "OPENCODE_PERMISSION"),
        "{own:?}"
    );
    assert!(preset_with_rules(&owned(OPENCODE_PRESET)));
    assert!(!preset_with_rules(&owned(&["opencode", "run"])));
}

#[test]
fn argvs_of_the_new_clients_known_not_to_work_are_found() {
    let p = KnownCli::Opencode.problems(&owned(&["opencode", "run", "{{ prompt }}"]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].fix.contains("stdin = \"prompt\""), "{p:?}");
    let p = KnownCli::Copilot.problems(&owned(&["copilot", "-p", "{{ prompt }}"]));
    assert!(p[0].fix.contains("shell({{ orch }}:*)"), "{p:?}");
    let p = KnownCli::Qwen.problems(&owned(&["qwen", "{{ prompt }}"]));
    assert!(p[0].fix.contains("run_shell_command({{ orch }})"), "{p:?}");
    assert_eq!(
        KnownCli::of(&owned(&["/usr/local/bin/opencode", "run"])),
        Some(KnownCli::Opencode)
    );
}

#[test]
fn presets_are_valid_templates() {
    let presets = presets();
    assert_eq!(presets.len(), 7);
    assert_eq!(presets["opencode"].stdin, StdinMode::Prompt);
    for spec in presets.values() {
        assert_eq!(spec.mode, AgentMode::Task);
        for arg in &spec.command {
            assert!(parse_template(arg).is_ok(), "{arg}");
        }
    }
}

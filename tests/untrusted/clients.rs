//! The clients' own state: a confined agent whose program is a client orch knows (Claude Code,
//! Codex) gets a private copy of that client's state for its attempt, seeded from the user's;
//! the user's own state is not writable. What it plants there (a hook, an MCP server, a
//! `notify` command) never reaches the user's next unconfined session of the client, nor the
//! next attempt. And a fresh HOME with only an API key works: orch makes the private state.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::landlock;
use crate::support::clis::clis_with;
use crate::support::{self, Repo};

/// `tests/fixtures/agents/hostile_client_state.sh` installed as `DIR/bin/claude` and
/// `DIR/bin/codex`: orch knows a client by its program's name.
fn install_hostile_clients(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script =
        std::fs::read(support::fixtures().join("hostile_client_state.sh")).expect("fixture");
    for name in ["claude", "codex", "opencode", "qwen", "copilot"] {
        let p = bin.join(name);
        std::fs::write(&p, &script).expect("write client");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

/// The user's client state: `(path, bytes)`, written.
fn user_state(files: &[(&Path, &str)]) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .iter()
        .map(|(p, text)| {
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write user state");
            (p.to_path_buf(), text.as_bytes().to_vec())
        })
        .collect()
}

/// Every file under `dir` named `name` (no symlink followed).
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p);
            }
        }
    }
    out
}

/// Two plans, `c` run by a hostile `claude` and `x` by a hostile `codex`, confined, one retry;
/// each agent attacks `targets` (the user's files) and its own state, fails its first attempt
/// and reports done on its second. `env`: set for `orch up` (the user's own variables).
fn hostile_run(repo: &Repo, targets: &[&Path], env: &[(&str, &Path)]) -> PathBuf {
    hostile_run_of(
        repo,
        &[("c", "claude", "-p"), ("x", "codex", "exec")],
        targets,
        env,
    )
}

/// [`hostile_run`] with plans of its own: `(plan, client program, its first argument)`.
fn hostile_run_of(
    repo: &Repo,
    plans: &[(&str, &str, &str)],
    targets: &[&Path],
    env: &[(&str, &Path)],
) -> PathBuf {
    let bin = install_hostile_clients(&repo.outside("clients"));
    let mark = repo.outside("planted-program-ran");
    let command = |program: &str, first: &str| {
        let mut argv = vec![
            bin.join(program).display().to_string(),
            first.to_string(),
            mark.display().to_string(),
        ];
        argv.extend(targets.iter().map(|t| t.display().to_string()));
        support::toml_array(&argv)
    };
    let mut manifest = "[defaults]\nretries = 1\nsandbox = \"on\"\n\n".to_string();
    for (plan, program, first) in plans {
        repo.write(
            &format!("docs/plans/{plan}.md"),
            &support::one_task(&plan.to_uppercase(), &format!("Work as {program}")),
        );
        manifest.push_str(&format!(
            "[agents.{plan}]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"{plan}\"\nfile = \"docs/plans/{plan}.md\"\nagent = \"{plan}\"\n\n",
            command(program, first)
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env_remove("ORCH_SANDBOX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "orch up\nstdout:\n{out}\nstderr:\n{err}");
    let started = support::events(&out)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["sandbox"], "on", "{started}");
    mark
}

/// The user's next session of the real Claude Code, unconfined, after the run (when the CLIs
/// are installed): `claude -p` with the user's HOME and `env`, against an endpoint that is not
/// there. It runs the SessionStart hooks and starts the MCP servers it finds in its state
/// before it calls the model: a planted one would create `mark`.
fn users_next_claude_session(repo: &Repo, env: &[(&str, &Path)], mark: &Path) {
    let Some(clis) = clis_with("claude") else {
        return;
    };
    let mut cmd = std::process::Command::new(clis.join("bin/claude"));
    cmd.args(["-p", "hello", "--output-format", "stream-json", "--verbose"])
        .current_dir(repo.root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.home())
        .env("ANTHROPIC_API_KEY", "sk-ant-fake")
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = support::wait_within(cmd.spawn().expect("spawn claude"), repo.timeout(), "claude");
    assert!(
        !mark.exists(),
        "the user's next claude session ran a planted program\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// What the second attempt of plan `plan` saw in its own client state, and what it planted.
fn second_attempt(repo: &Repo, plan: &str) -> (String, String) {
    let show = |f: &str| repo.git(&["show", &format!("plan/{plan}:{f}")]);
    (show("seen-2.txt"), show("planted-2.txt"))
}

/// The checks every hostile run shares: the user's files byte for byte as they were, no planted
/// program ran, both tasks completed on their second attempt, the second attempt's state seeded
/// from the user's files, not from what the first planted, and no copy of a credential left
/// behind in orch's state.
fn assert_held(repo: &Repo, mark: &Path, user: &[(PathBuf, Vec<u8>)], targets: &[&Path]) {
    assert_held_of(repo, &["c", "x"], mark, user, targets);
}

/// [`assert_held`] for the plans `plans`.
fn assert_held_of(
    repo: &Repo,
    plans: &[&str],
    mark: &Path,
    user: &[(PathBuf, Vec<u8>)],
    targets: &[&Path],
) {
    for (path, bytes) in user {
        let now = std::fs::read(path).unwrap_or_default();
        assert!(
            &now == bytes,
            "the user's {} changed: now {:?}",
            path.display(),
            String::from_utf8_lossy(&now)
        );
    }
    assert!(!mark.exists(), "a planted program ran");
    for &plan in plans {
        assert_eq!(
            repo.statuses(plan),
            [("1.1".to_string(), "completed".to_string())]
        );
        let (seen, planted) = second_attempt(repo, plan);
        for planted_text in ["SessionStart", "mcpServers", "notify", "hooks"] {
            assert!(
                !seen.contains(planted_text),
                "plan {plan}'s second attempt was seeded from what the first planted:\n{seen}"
            );
        }
        // Its own copy was writable: what the first attempt planted went there, and was gone
        // for the second.
        assert!(
            planted
                .lines()
                .any(|l| l.starts_with("planted ") && l.contains("/.orch/state/.clients/")),
            "plan {plan}: {planted}"
        );
        for path in targets {
            assert!(
                planted.contains(&format!("denied {}", path.display())),
                "plan {plan}: {}\n{planted}",
                path.display()
            );
        }
    }
    let state = repo.root().join(".orch");
    assert_eq!(
        files_named(&state, ".credentials.json"),
        Vec::<PathBuf>::new()
    );
    assert_eq!(files_named(&state, "auth.json"), Vec::<PathBuf>::new());
}

#[test]
fn clients_a_hostile_client_cannot_plant_in_the_users_default_client_state() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let home = repo.home();
    let settings = home.join(".claude/settings.json");
    let credentials = home.join(".claude/.credentials.json");
    let claude_json = home.join(".claude.json");
    let codex_config = home.join(".codex/config.toml");
    let codex_auth = home.join(".codex/auth.json");
    let user = user_state(&[
        (&settings, "{\"model\": \"user-model\"}\n"),
        (&credentials, "{\"claudeAiOauth\": \"user-token\"}\n"),
        (&claude_json, "{\"userID\": \"user-id\"}\n"),
        (&codex_config, "model = \"user-codex-model\"\n"),
        (&codex_auth, "{\"OPENAI_API_KEY\": \"user-key\"}\n"),
    ]);
    let targets: [&Path; 3] = [&settings, &claude_json, &codex_config];
    let mark = hostile_run(&repo, &targets, &[]);
    assert_held(&repo, &mark, &user, &targets);
    users_next_claude_session(&repo, &[], &mark);
    let (claude_seen, _) = second_attempt(&repo, "c");
    for want in ["user-model", "user-token", "user-id"] {
        assert!(claude_seen.contains(want), "{claude_seen}");
    }
    let (codex_seen, _) = second_attempt(&repo, "x");
    for want in ["user-codex-model", "user-key"] {
        assert!(codex_seen.contains(want), "{codex_seen}");
    }
}

#[test]
fn clients_a_hostile_client_cannot_plant_in_the_state_the_users_variables_name() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let claude_dir = repo.outside("config/claude");
    let codex_dir = repo.outside("config/codex");
    let settings = claude_dir.join("settings.json");
    let claude_json = claude_dir.join(".claude.json");
    let codex_config = codex_dir.join("config.toml");
    let user = user_state(&[
        (&settings, "{\"model\": \"user-model\"}\n"),
        (&claude_json, "{\"userID\": \"user-id\"}\n"),
        (&codex_config, "model = \"user-codex-model\"\n"),
    ]);
    let targets: [&Path; 3] = [&settings, &claude_json, &codex_config];
    let mark = hostile_run(
        &repo,
        &targets,
        &[
            ("CLAUDE_CONFIG_DIR", &claude_dir),
            ("CODEX_HOME", &codex_dir),
        ],
    );
    assert_held(&repo, &mark, &user, &targets);
    users_next_claude_session(&repo, &[("CLAUDE_CONFIG_DIR", &claude_dir)], &mark);
    let (claude_seen, _) = second_attempt(&repo, "c");
    assert!(claude_seen.contains("user-model"), "{claude_seen}");
    assert!(claude_seen.contains("user-id"), "{claude_seen}");
    let (codex_seen, _) = second_attempt(&repo, "x");
    assert!(codex_seen.contains("user-codex-model"), "{codex_seen}");
}

/// A plan-mode agent (one process for the whole plan) gets a private copy too.
#[test]
fn clients_a_hostile_plan_mode_client_cannot_plant_in_the_users_client_state() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let settings = repo.home().join(".claude/settings.json");
    let claude_json = repo.home().join(".claude.json");
    let user = user_state(&[
        (&settings, "{\"model\": \"user-model\"}\n"),
        (&claude_json, "{\"userID\": \"user-id\"}\n"),
    ]);
    let bin = install_hostile_clients(&repo.outside("clients"));
    let mark = repo.outside("planted-program-ran");
    let argv: Vec<String> = [
        bin.join("claude").display().to_string(),
        "-p".to_string(),
        mark.display().to_string(),
        settings.display().to_string(),
        claude_json.display().to_string(),
    ]
    .to_vec();
    repo.write(
        "docs/plans/p.md",
        &support::one_task("P", "Work as a plan agent"),
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 1\nsandbox = \"on\"\n\n\
             [agents.c]\ncommand = {}\nmode = \"plan\"\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"c\"\n",
            support::toml_array(&argv)
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env_remove("ORCH_SANDBOX");
    // Whether the plan agent can commit on the run that makes its worktree is the git
    // surface's: its second attempt's files are on the plan branch, or saved
    // with the failed attempt.
    let (_, out, err) = repo.run_cmd(&mut cmd);
    assert!(out.contains("\"sandbox\":\"on\""), "{out}");
    for (path, bytes) in &user {
        assert_eq!(
            &std::fs::read(path).unwrap_or_default(),
            bytes,
            "{}",
            path.display()
        );
    }
    let show = |f: &str| {
        ["plan/p", "refs/orch/attempts/p/plan/2"]
            .iter()
            .find_map(|r| {
                let o = repo.git_out(&["show", &format!("{r}:{f}")]);
                o.status
                    .success()
                    .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
            })
            .unwrap_or_else(|| panic!("no {f} from the second attempt\n{out}\n{err}"))
    };
    let seen = show("seen-2.txt");
    assert!(
        seen.contains("user-model") && seen.contains("user-id"),
        "{seen}"
    );
    assert!(
        !seen.contains("SessionStart") && !seen.contains("mcpServers"),
        "{seen}"
    );
    let planted = show("planted-2.txt");
    for path in [&settings, &claude_json] {
        assert!(
            planted.contains(&format!("denied {}", path.display())),
            "{planted}"
        );
    }
    assert!(
        planted.contains("/.orch/state/.clients/p/plan-2/"),
        "{planted}"
    );
    users_next_claude_session(&repo, &[], &mark);
}

/// opencode, Qwen Code and Copilot CLI (hostile programs named like them), confined: each
/// attempt gets a private copy of its client's state (opencode's four XDG directories, `QWEN_HOME`,
/// `COPILOT_HOME`) seeded from the user's; what it plants there (an opencode plugin and
/// configuration, Qwen Code hooks, a Copilot CLI MCP server) is gone for the next attempt, and the
/// user's own files, Copilot CLI's unpacked code in `~/.cache/copilot` included, are not
/// writable.
#[test]
fn clients_hostile_opencode_qwen_and_copilot_cannot_plant_in_the_users_client_state() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let home = repo.home();
    let opencode_json = home.join(".config/opencode/opencode.json");
    let opencode_auth = home.join(".local/share/opencode/auth.json");
    let opencode_plugin = home.join(".config/opencode/plugin/evil.js");
    let qwen_settings = home.join(".qwen/settings.json");
    let copilot_config = home.join(".copilot/config.json");
    let copilot_mcp = home.join(".copilot/mcp-config.json");
    let copilot_code = home.join(".cache/copilot/pkg/linux-x64/index.js");
    let user = user_state(&[
        (&opencode_json, "{\"model\": \"user-opencode-model\"}\n"),
        (
            &opencode_auth,
            "{\"fake\": {\"key\": \"user-opencode-key\"}}\n",
        ),
        (
            &qwen_settings,
            "{\"model\": {\"name\": \"user-qwen-model\"}}\n",
        ),
        (&copilot_config, "{\"model\": \"user-copilot-model\"}\n"),
        (&copilot_code, "// the client's own code\n"),
    ]);
    let targets: [&Path; 6] = [
        &opencode_json,
        &opencode_plugin,
        &qwen_settings,
        &copilot_config,
        &copilot_mcp,
        &copilot_code,
    ];
    let plans = [
        ("o", "opencode", "run"),
        ("q", "qwen", "-p"),
        ("p", "copilot", "-p"),
    ];
    let mark = hostile_run_of(&repo, &plans, &targets, &[]);
    assert_held_of(&repo, &["o", "q", "p"], &mark, &user, &targets);
    assert!(!opencode_plugin.exists() && !copilot_mcp.exists());
    // Each second attempt was seeded from the user's state.
    for (plan, want) in [
        ("o", "user-opencode-model"),
        ("q", "user-qwen-model"),
        ("p", "user-copilot-model"),
    ] {
        let (seen, _) = second_attempt(&repo, plan);
        assert!(seen.contains(want), "{plan}: {seen}");
    }
    // opencode's login was copied into its private data directory, and is gone with it.
    assert_eq!(
        files_named(&repo.root().join(".orch"), "auth.json"),
        Vec::<PathBuf>::new()
    );
}

/// Red team 14: a confined agent denied the user's client state (`sandbox_deny_read`) read the
/// same tokens from another plan's attempt's private copy of it, under the state directory
/// every confined agent could read. Every attempt's copy is denied to every other confined
/// process: the reader (a plain agent, and another `claude` whose own copy it may read) lists
/// and reads the copies while a `claude` of another plan holds its own; it finds none it can
/// read, and no secret lands on its branch.
#[test]
fn clients_an_agent_cannot_read_another_attempts_copy_of_its_clients_state() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let secret = "sk-ant-oat01-USER-SECRET-7d1e";
    user_state(&[
        (
            &repo.home().join(".claude/.credentials.json"),
            &format!("{{\"claudeAiOauth\": {{\"accessToken\": \"{secret}\"}}}}\n"),
        ),
        (&repo.home().join(".claude.json"), "{\"userID\": \"u\"}\n"),
    ]);
    let clients = repo.root().join(".orch/state/.clients");
    let done = |plan: &str| {
        repo.root()
            .join(format!(".orch/worktrees/{plan}/result.txt"))
    };
    // The holder: a client orch knows (`claude`), which keeps its copy until both readers wrote.
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let holder = bin.join("claude");
    std::fs::write(
        &holder,
        format!(
            "#!/bin/sh\ncase \"$1\" in --*) echo 2.0.0; exit 0;; esac\n\
             touch ready.flag\ni=0\nwhile [ $i -lt 600 ] && ! {{ [ -e {r1} ] && [ -e {r2} ]; }}; do sleep 0.1; i=$((i+1)); done\n\
             echo held > work.txt\n",
            r1 = done("r").display(),
            r2 = done("s").display()
        ),
    )
    .expect("write holder");
    std::fs::set_permissions(&holder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The readers: wait for the holder's copy, then read every file beneath the copies.
    let ready = repo.root().join(".orch/worktrees/h/ready.flag");
    let reader = format!(
        "i=0; while [ $i -lt 600 ] && ! [ -e {ready} ]; do sleep 0.1; i=$((i+1)); done; \
         ls -R {c}/h > listing.txt 2>&1; \
         find {c}/h -type f -exec cat {{}} + > read.txt 2>&1; \
         cat {c}/h/1.1-1/.credentials.json {c}/h/1.1-1/.claude.json >> read.txt 2>&1; \
         echo end > result.txt",
        c = clients.display(),
        ready = ready.display()
    );
    let mut reader_as_claude = bin.join("reader");
    reader_as_claude.push("claude");
    std::fs::create_dir_all(reader_as_claude.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &reader_as_claude,
        format!("#!/bin/sh\ncase \"$1\" in --*) echo 2.0.0; exit 0;; esac\n{reader}\n"),
    )
    .expect("write");
    std::fs::set_permissions(&reader_as_claude, std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for plan in ["h", "r", "s"] {
        repo.write(
            &format!("docs/plans/{plan}.md"),
            &support::one_task(&plan.to_uppercase(), "Work"),
        );
    }
    let manifest = format!(
        "[defaults]\nretries = 0\nsandbox = \"on\"\nmax_agents = 3\nintegrate = \"off\"\n\n\
         [agents.h]\ncommand = [{h:?}, \"-p\"]\nreport = \"exit\"\n\n\
         [agents.r]\ncommand = [\"sh\", \"-c\", {reader:?}]\nreport = \"exit\"\n\
         sandbox_deny_read = [\"~/.claude\", \"~/.claude.json\"]\n\n\
         [agents.s]\ncommand = [{s:?}, \"-p\"]\nreport = \"exit\"\n\n\
         [[plan]]\nname = \"h\"\nfile = \"docs/plans/h.md\"\nagent = \"h\"\n\n\
         [[plan]]\nname = \"r\"\nfile = \"docs/plans/r.md\"\nagent = \"r\"\n\n\
         [[plan]]\nname = \"s\"\nfile = \"docs/plans/s.md\"\nagent = \"s\"\n",
        h = holder.display().to_string(),
        s = reader_as_claude.display().to_string(),
    );
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "{out}\n{err}");
    for plan in ["r", "s"] {
        let read = repo.git(&["show", &format!("plan/{plan}:read.txt")]);
        assert!(!read.contains(secret), "{plan} read the copy:\n{read}");
        let listing = repo.git(&["show", &format!("plan/{plan}:listing.txt")]);
        assert!(
            read.contains("Permission denied"),
            "{plan}: nothing was tried:\n{read}\n{listing}"
        );
    }
    // The holder's own copy held the secret: it was there to be read.
    assert_eq!(repo.git(&["show", "plan/h:work.txt"]).trim(), "held");
}
